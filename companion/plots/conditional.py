"""Diagrams of RNN design patterns and of the four kinds of conditional distribution.

Drawn with the primitives of :mod:`companion.plots.graphs` (same colours: inputs blue,
states orange, outputs green, losses grey), so that every figure of the book speaks
the same visual language.

* :func:`pattern_diagram`: the design patterns of Goodfellow et al. (2016, section 10.2):
  hidden-to-hidden recurrence, output-to-hidden recurrence, sequence-to-vector.
* :func:`conditional_diagram` / :func:`conditional_types_figure`: what the network
  models, :math:`P(y \\mid x)` with ``x`` and ``y`` each a sequence or a single vector:
  sequence-to-vector, aligned sequence-to-sequence, vector-to-sequence and unaligned
  sequence-to-sequence (encoder-decoder). Vector-to-sequence comes in two variants:
  ``"vec2seq"`` without output-to-state edges (the outputs are then conditionally
  independent given ``x``) and ``"vec2seq-feedback"`` with the edges
  :math:`y^{(t)} \to h^{(t+1)}` that make them dependent (Goodfellow et al., 10.2.4);
  :func:`vec2seq_variants_figure` draws both side by side. The encoder-decoder's
  decoder (states :math:`h'^{(t)}`) is drawn with its outputs fed back,
  :math:`y^{(t)} \to h'^{(t+1)}`, as a decoder that generates needs.
* :func:`graphical_model_figure`: the RNN as a directed graphical model over the
  outputs, with and without the hidden states that summarise the past.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from companion.checks import check_positive_int
from companion.plots.graphs import _edge, _node

__all__ = ["CONDITIONAL_KINDS", "PATTERN_KINDS", "conditional_diagram",
           "conditional_types_figure", "graphical_model_figure", "pattern_diagram",
           "vec2seq_variants_figure"]

#: The design patterns :func:`pattern_diagram` draws.
PATTERN_KINDS = ("hidden-to-hidden", "output-to-hidden", "sequence-to-vector")
#: The conditional-distribution types :func:`conditional_diagram` draws.
CONDITIONAL_KINDS = ("seq2vec", "aligned", "vec2seq", "vec2seq-feedback", "seq2seq")

_TITLES = {
    "seq2vec": r"sequence $\to$ vector: $P(y \mid x^{(1)}, \dots, x^{(\tau)})$",
    "aligned": r"aligned sequence $\to$ sequence: $P(y^{(t)} \mid x^{(1)}, \dots, x^{(t)})$",
    "vec2seq": r"vector $\to$ sequence, no feedback: $\prod_t P(y^{(t)} \mid x)$",
    "vec2seq-feedback": (r"vector $\to$ sequence, outputs fed back: "
                         r"$\prod_t P(y^{(t)} \mid y^{(<t)}, x)$"),
    "seq2seq": r"unaligned sequence $\to$ sequence (encoder-decoder)",
}
_DX, _DY, _FS = 1.6, 1.4, 10


def _check_tau(tau, lo=2, hi=8):
    tau = check_positive_int("tau", tau)
    if not lo <= tau <= hi:
        raise ValueError(f"tau must be between {lo} and {hi} for a legible diagram; got {tau}.")
    return tau


def _chain(ax, tau, *, x0=0.0, y=_DY, name="h", label="$W$", initial=True):
    pts = []
    prev = None
    if initial:
        prev = (x0 - _DX, y)
        _node(ax, prev, rf"${name}^{{(0)}}$", "state", fontsize=_FS)
    for t in range(1, tau + 1):
        cur = (x0 + _DX * (t - 1), y)
        _node(ax, cur, rf"${name}^{{({t})}}$", "state", fontsize=_FS)
        if prev is not None:
            _edge(ax, prev, cur, label, label_offset=(-0.12, 0.2), fontsize=_FS)
        pts.append(cur)
        prev = cur
    return pts


def _inputs(ax, pts, y=0.0, name="x"):
    for t, (px, py) in enumerate(pts, start=1):
        _node(ax, (px, y), rf"${name}^{{({t})}}$", "input", fontsize=_FS)
        _edge(ax, (px, y), (px, py), "$U$", fontsize=_FS)


def _outputs(ax, pts, *, with_loss, y=2 * _DY, name="o"):
    outs = []
    for t, (px, py) in enumerate(pts, start=1):
        _node(ax, (px, y), rf"${name}^{{({t})}}$", "output", fontsize=_FS)
        _edge(ax, (px, py), (px, y), "$V$", fontsize=_FS)
        if with_loss:
            _node(ax, (px, y + _DY), rf"$L^{{({t})}}$", "loss", fontsize=_FS)
            _edge(ax, (px, y), (px, y + _DY))
        outs.append((px, y))
    return outs


def _finish(ax, xmin, xmax, ymin, ymax, title):
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def _draw_pattern(ax, kind, tau):
    if kind == "hidden-to-hidden":
        pts = _chain(ax, tau)
        _inputs(ax, pts)
        _outputs(ax, pts, with_loss=True)
        title = r"hidden-to-hidden recurrence ($W$: $h^{(t-1)} \to h^{(t)}$)"
    elif kind == "output-to-hidden":
        pts = [(_DX * (t - 1), _DY) for t in range(1, tau + 1)]
        for t, p in enumerate(pts, start=1):
            _node(ax, p, rf"$h^{{({t})}}$", "state", fontsize=_FS)
        _inputs(ax, pts)
        outs = _outputs(ax, pts, with_loss=True)
        for a, b in zip(outs[:-1], pts[1:]):
            _edge(ax, a, b, "$W$", label_offset=(0.05, 0.25), fontsize=_FS)
        title = r"output-to-hidden recurrence ($W$: $o^{(t-1)} \to h^{(t)}$)"
    elif kind == "sequence-to-vector":
        pts = _chain(ax, tau)
        _inputs(ax, pts)
        px, py = pts[-1]
        _node(ax, (px, 2 * _DY), "$o$", "output", fontsize=_FS)
        _edge(ax, (px, py), (px, 2 * _DY), "$V$", fontsize=_FS)
        _node(ax, (px, 3 * _DY), "$L$", "loss", fontsize=_FS)
        _edge(ax, (px, 2 * _DY), (px, 3 * _DY))
        title = r"sequence-to-vector (one output at $t = \tau$)"
    else:
        raise ValueError(f"kind must be one of {PATTERN_KINDS}; got {kind!r}.")
    xmin = -0.8 if kind == "output-to-hidden" else -_DX - 0.6  # no h^(0) drawn there
    _finish(ax, xmin, _DX * (tau - 1) + 0.8, -0.6, 3 * _DY + 0.6, title)


def pattern_diagram(kind: str, tau: int = 3) -> Figure:
    """One design pattern unrolled for ``tau`` steps (``kind`` in :data:`PATTERN_KINDS`)."""
    tau = _check_tau(tau)
    fig, ax = plt.subplots(figsize=(1.4 * (tau + 1) + 0.8, 4.2))
    _draw_pattern(ax, kind, tau)
    fig.tight_layout()
    return fig


def _draw_conditional(ax, kind, tau):
    top = 2 * _DY
    if kind == "seq2vec":
        pts = _chain(ax, tau)
        _inputs(ax, pts)
        px, py = pts[-1]
        _node(ax, (px, top), "$y$", "output", fontsize=_FS)
        _edge(ax, (px, py), (px, top), "$V$", fontsize=_FS)
        xmax = _DX * (tau - 1) + 0.8
    elif kind == "aligned":
        pts = _chain(ax, tau)
        _inputs(ax, pts)
        _outputs(ax, pts, with_loss=False, name="y")
        xmax = _DX * (tau - 1) + 0.8
    elif kind in ("vec2seq", "vec2seq-feedback"):
        pts = _chain(ax, tau)
        vx = (_DX * (tau - 1)) / 2
        _node(ax, (vx, 0.0), "$x$", "input", fontsize=_FS)
        for p in pts:
            _edge(ax, (vx, 0.0), p, None)
        ax.text(vx + 0.4, 0.1, r"$R$ (every step)", fontsize=_FS - 1)
        outs = _outputs(ax, pts, with_loss=False, name="y")
        if kind == "vec2seq-feedback":  # y^(t) -> h^(t+1): the outputs become dependent
            for o, p in zip(outs[:-1], pts[1:]):
                _edge(ax, o, p, None)
        xmax = _DX * (tau - 1) + 0.8
    elif kind == "seq2seq":
        enc = _chain(ax, tau)
        _inputs(ax, enc)
        cx = _DX * tau
        _node(ax, (cx, _DY), "$C$", "state", fontsize=_FS + 1)
        _edge(ax, enc[-1], (cx, _DY))
        n_out = max(2, tau - 1)
        dec = [(cx + _DX * j, _DY) for j in range(1, n_out + 1)]
        prev = (cx, _DY)
        for j, p in enumerate(dec, start=1):
            _node(ax, p, rf"$h'^{{({j})}}$", "state", fontsize=_FS)  # decoder states: h'
            _edge(ax, prev, p)
            _node(ax, (p[0], top), rf"$y^{{({j})}}$", "output", fontsize=_FS)
            _edge(ax, p, (p[0], top))
            if j > 1:  # y^(j-1) -> h'^(j): a decoder that generates reads its own outputs
                _edge(ax, (prev[0], top), p, None)
            prev = p
        ax.text(_DX * (tau - 1) / 2, top + 0.1, "encoder", ha="center", fontsize=_FS)
        ax.text(cx, top + 0.1, "context", ha="center", fontsize=_FS - 1)
        xmax = dec[-1][0] + 0.8
    else:
        raise ValueError(f"kind must be one of {CONDITIONAL_KINDS}; got {kind!r}.")
    _finish(ax, -_DX - 0.6, xmax, -0.6, top + 0.6, _TITLES[kind])


def conditional_diagram(kind: str, tau: int = 3) -> Figure:
    """One of the four conditional-distribution types (``kind`` in :data:`CONDITIONAL_KINDS`)."""
    tau = _check_tau(tau)
    width = 1.4 * (tau + 1) + (1.4 * tau if kind == "seq2seq" else 0.8)
    fig, ax = plt.subplots(figsize=(width, 3.2))
    _draw_conditional(ax, kind, tau)
    fig.tight_layout()
    return fig


def conditional_types_figure(tau: int = 3) -> Figure:
    """All four conditional-distribution types in a 2 x 2 grid."""
    tau = _check_tau(tau, 2, 5)
    fig, axes = plt.subplots(2, 2, figsize=(13, 6.4),
                             gridspec_kw={"width_ratios": [tau + 1, 2 * tau + 1]})
    for ax, kind in zip(axes.ravel(), ("seq2vec", "seq2seq", "aligned", "vec2seq")):
        _draw_conditional(ax, kind, tau)
    fig.tight_layout()
    return fig


def vec2seq_variants_figure(tau: int = 3) -> Figure:
    """Vector-to-sequence without (left) and with (right) the edges y^(t) -> h^(t+1).

    Without them every ``h^(t)`` is a deterministic function of ``x`` alone, so the
    outputs are conditionally independent given ``x``; with them each output is also
    conditioned on the earlier ones.
    """
    tau = _check_tau(tau, 2, 5)
    fig, axes = plt.subplots(1, 2, figsize=(2.9 * (tau + 1), 3.4))
    for ax, kind in zip(axes, ("vec2seq", "vec2seq-feedback")):
        _draw_conditional(ax, kind, tau)
    fig.tight_layout()
    return fig


def graphical_model_figure(tau: int = 4) -> Figure:
    """Outputs as a directed graphical model: every past ``y`` as a parent (left) versus
    the RNN's chain of hidden states that summarises the past (right)."""
    tau = _check_tau(tau, 2, 6)
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(2.3 * tau + 1, 3.4))
    pts = [(_DX * (t - 1), 0.0) for t in range(1, tau + 1)]
    for t, p in enumerate(pts, start=1):
        _node(ax_l, p, rf"$y^{{({t})}}$", "output", fontsize=_FS)
    for i in range(tau):
        for j in range(i + 1, tau):
            rad = -0.25 - 0.12 * (j - i - 1) if j - i > 1 else 0.0
            _edge(ax_l, pts[i], pts[j], None, rad=rad)
    n_edges = tau * (tau - 1) // 2
    _finish(ax_l, -0.6, _DX * (tau - 1) + 0.6, -0.6, 2.0,
            f"fully connected: {n_edges} edges, parameters grow with $\\tau$")
    hs = [(_DX * (t - 1), 0.0) for t in range(1, tau + 1)]
    for t, p in enumerate(hs, start=1):
        _node(ax_r, p, rf"$h^{{({t})}}$", "state", fontsize=_FS)
        _node(ax_r, (p[0], _DY), rf"$y^{{({t})}}$", "output", fontsize=_FS)
        _edge(ax_r, p, (p[0], _DY))
        if t < tau:
            _edge(ax_r, p, hs[t], None)
            _edge(ax_r, (p[0], _DY), hs[t], None)
    _finish(ax_r, -0.6, _DX * (tau - 1) + 0.6, -0.6, _DY + 0.6,
            "with hidden states: same parameters at every step")
    fig.tight_layout()
    return fig
