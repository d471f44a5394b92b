"""Figures of chapter 7: conditioning diagrams, the beam-search tree, error curves.

Pure functions: settings or arrays in, a new :class:`matplotlib.figure.Figure` out; no
torch. Node colours follow :mod:`companion.plots.graphs` (inputs blue, states orange,
outputs green).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_positive_int
from companion.plots.graphs import _edge, _node

__all__ = ["beam_tree_figure", "conditioning_figure", "position_error_figure",
           "range_figure", "search_error_figure", "temperature_sweep_figure"]

_CONDITIONING = {"init": "x as the initial state",
                 "input": r"x as an input at every step ($x^\top R$)",
                 "both": "both"}


def _draw_conditioning(ax, mode, tau):
    dx, top = 1.5, 3.0
    hs = [(dx * t, 1.5) for t in range(1, tau + 1)]
    ys = [(dx * t, top) for t in range(1, tau + 1)]
    for t, (h, y) in enumerate(zip(hs, ys), start=1):
        _node(ax, h, rf"$h^{{({t})}}$", "state", fontsize=11)
        _node(ax, y, rf"$y^{{({t})}}$", "output", fontsize=11)
        _edge(ax, h, y, "$V$" if t == 1 else None, fontsize=10)
    h0 = (0.0, 1.5)
    _node(ax, h0, "$h^{(0)}$", "state", fontsize=11)
    for a, b in zip([h0] + hs[:-1], hs):
        _edge(ax, a, b, "$W$" if a == h0 else None, label_offset=(-0.1, 0.18), fontsize=10)
    # the feedback edges y(t) -> h(t+1): previous output in, through the embedding E and U
    for t, (y, h) in enumerate(zip(ys[:-1], hs[1:]), start=1):
        _edge(ax, y, h, "$U$" if t == 1 else None, fontsize=10, label_offset=(0.05, 0.15))
    xpos = (0.0, 0.0) if mode == "init" else (dx * (tau + 1) / 2, 0.0)
    _node(ax, xpos, "$x$", "input", fontsize=12)
    if mode in ("init", "both"):
        _edge(ax, xpos if mode == "init" else (dx * (tau + 1) / 2, 0.0), h0, "$W_0$",
              fontsize=10, label_offset=(-0.35, 0.0) if mode == "init" else (0.0, -0.25))
    if mode in ("input", "both"):
        for t, h in enumerate(hs, start=1):
            _edge(ax, xpos, h, "$R$" if t == tau else None, fontsize=10)
    ax.set_xlim(-0.7, dx * tau + 0.7)
    ax.set_ylim(-0.6, top + 0.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(_CONDITIONING[mode], fontsize=11)


def conditioning_figure(tau: int = 3, modes=("init", "input", "both")) -> Figure:
    """The generator conditioned on ``x`` three ways (Goodfellow et al. 10.2.4), unrolled.

    Every panel has the feedback edges ``y(t) -> h(t+1)`` (the previous output is the
    next input) and differs only in where ``x`` enters: ``h(0)`` through ``P``, every
    hidden unit at every step through ``R``, or both.
    """
    tau = check_positive_int("tau", tau, minimum=2)
    if tau > 5:
        raise ValueError(f"tau must be between 2 and 5 for a readable diagram; got {tau}.")
    modes = list(modes)
    bad = [m for m in modes if m not in _CONDITIONING]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty list from {list(_CONDITIONING)}; got {modes}.")
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.4))
    for ax, mode in zip(np.atleast_1d(axes), modes):
        _draw_conditioning(ax, mode, tau)
    fig.tight_layout()
    return fig


def beam_tree_figure(levels, *, title: str = "") -> Figure:
    """A beam-search tree: every candidate expansion, the survivors highlighted.

    ``levels`` is a list over steps; each step is a list of candidates, dicts with keys
    ``"label"`` (the token), ``"parent"`` (index into the *previous* step's list, or -1
    for the root), ``"log_prob"`` (the hypothesis' total) and ``"kept"`` (bool: in the
    beam after this step). :func:`companion.nn.decoding.beam_trace` returns this form.
    """
    if not isinstance(levels, (list, tuple)) or not levels:
        raise TypeError("levels must be a non-empty list of steps, each a list of candidate "
                        "dicts; use companion.nn.decoding.beam_trace(...) to make one.")
    for t, level in enumerate(levels):
        for c in level:
            if not isinstance(c, dict) or not {"label", "parent", "log_prob", "kept"} <= set(c):
                raise ValueError(f"levels[{t}] entries must be dicts with keys label, parent, "
                                 f"log_prob, kept; got {c!r}.")
    width = max(len(level) for level in levels)
    fig, ax = plt.subplots(figsize=(2.0 + 1.9 * len(levels), 0.9 + 0.42 * width))
    pos = [[(t + 1, (len(level) - 1) / 2 - i) for i, _ in enumerate(level)]
           for t, level in enumerate(levels)]
    ax.text(0, 0, "<bos>", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#fdae6b"))
    for t, level in enumerate(levels):
        for i, c in enumerate(level):
            x, y = pos[t][i]
            px, py = (0, 0) if t == 0 else pos[t - 1][c["parent"]]
            ax.plot([px + 0.25, x - 0.4], [py, y], color="black" if c["kept"] else "#bbbbbb",
                    lw=1.4 if c["kept"] else 0.7, zorder=1)
            ax.text(x, y, f"{c['label']}  {c['log_prob']:.2f}", ha="center", va="center",
                    fontsize=8, zorder=2, color="black" if c["kept"] else "#888888",
                    bbox=dict(boxstyle="round", fc="#a1d99b" if c["kept"] else "white",
                              ec="black" if c["kept"] else "#cccccc"))
    ax.set_xlim(-0.5, len(levels) + 0.7)
    ax.set_ylim(-(width + 1) / 2, (width + 1) / 2)
    ax.axis("off")
    ax.set_title(title or "beam search: every expansion, the kept hypotheses in green "
                 "(total log-probability beside each token)", fontsize=10)
    fig.tight_layout()
    return fig


def position_error_figure(curves, *, labels, title: str = "",
                          ylabel: str = "error rate at position") -> Figure:
    """Error rate against output position, one line per curve (positions start at 1)."""
    curves = [as_float_array(f"curves[{i}]", c, finite=False) for i, c in enumerate(curves)]
    if len(labels) != len(curves):
        raise ValueError(f"labels must have one entry per curve ({len(curves)}); "
                         f"got {len(labels)}.")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    styles = ["-o", "--s", "-^", ":v", "-.d", "-x"]
    for i, (c, lab) in enumerate(zip(curves, labels)):
        ax.plot(np.arange(1, len(c) + 1), c, styles[i % len(styles)], label=lab, ms=4)
    ax.set_xlabel("output position t")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def range_figure(labels, medians, lows, highs, *, xlabel: str, baselines=None,
                 title: str = "") -> Figure:
    """Medians with min-max ranges, one row per contender; dashed lines for baselines."""
    med = as_float_array("medians", medians)
    lo, hi = as_float_array("lows", lows), as_float_array("highs", highs)
    if not (len(labels) == len(med) == len(lo) == len(hi)):
        raise ValueError(f"labels, medians, lows and highs need the same length; got "
                         f"{len(labels)}, {len(med)}, {len(lo)}, {len(hi)}.")
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.5 * len(labels)))
    y = np.arange(len(labels))[::-1]
    ax.errorbar(med, y, xerr=[med - lo, hi - med], fmt="o", color="black", capsize=4)
    ax.set_yticks(y, labels)
    for i, (name, v) in enumerate((baselines or {}).items()):
        ax.axvline(v, ls="--", color=f"C{i}", label=name)
    if baselines:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def search_error_figure(widths, missed, mean_gap, *, labels=None, title: str = "") -> Figure:
    """Search error against beam width: how often beam search misses the exact argmax
    (left) and by how much log-probability on average (right). ``missed`` and
    ``mean_gap`` are (len(widths),) or (n_curves, len(widths))."""
    w = as_float_array("widths", widths, allow_int=True)
    ms = np.atleast_2d(as_float_array("missed", missed))
    gs = np.atleast_2d(as_float_array("mean_gap", mean_gap))
    if ms.shape[1] != len(w) or gs.shape != ms.shape:
        raise ValueError(f"missed and mean_gap must be (n_curves, len(widths)={len(w)}); got "
                         f"{ms.shape} and {gs.shape}.")
    labels = labels or [None] * len(ms)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for m, g, lab in zip(ms, gs, labels):
        axes[0].plot(w, m, "-o", label=lab)
        axes[1].plot(w, g, "-o", label=lab)
    axes[0].set_ylabel("fraction missing the argmax")
    axes[1].set_ylabel("mean log-prob. gap (nats)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(w, [f"{int(v)}" for v in w])
        ax.set_xlabel("beam width")
        ax.set_ylim(bottom=0)
    if labels[0] is not None:
        axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def temperature_sweep_figure(temperatures, accuracy, distinct, *, highlight=None,
                             title: str = "") -> Figure:
    """Sampling at temperature kappa: fraction of correct captions and number of distinct
    captions among the samples, against kappa (log axis)."""
    t = as_float_array("temperatures", temperatures)
    acc = as_float_array("accuracy", accuracy, allow_int=True)
    dis = as_float_array("distinct", distinct, allow_int=True)
    if not (len(t) == len(acc) == len(dis)):
        raise ValueError("temperatures, accuracy and distinct need the same length; got "
                         f"{len(t)}, {len(acc)}, {len(dis)}.")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(t, acc, "-o", color="C0", label="correct captions (fraction)")
    ax.set_xscale("log")
    ax.set_xlabel(r"temperature $\kappa$")
    ax.set_ylabel("fraction correct", color="C0")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.plot(t, dis, "--s", color="C1", label="distinct captions")
    ax2.set_ylabel("distinct captions", color="C1")
    ax2.set_ylim(bottom=0)
    if highlight is not None:
        ax.axvline(float(highlight), color="grey", lw=0.8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
