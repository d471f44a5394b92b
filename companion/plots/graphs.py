"""Computational-graph diagrams drawn by code: the circuit with its delay, and its unfolding.

Every diagram in the book is produced here, so a reader can redraw it with other
settings (``tau=7``, no outputs, an autonomous system...). All functions are pure:
they take settings and return a new :class:`matplotlib.figure.Figure`.

Drawing conventions (the same in every figure):

* circles are variables: inputs in blue, states in orange, outputs in green,
  losses and targets in grey;
* an arrow is a dependency, labelled by the parameter matrix it multiplies;
* the small black square on the recurrent loop is a *delay of one time step*:
  what goes in at time ``t`` comes out at time ``t + 1``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

from companion.checks import check_positive_int

__all__ = ["circuit_diagram", "unrolled_graph", "unfolding_figure", "COLORS"]

#: Fill colours by kind of node (colour-blind-safe palette).
COLORS = {
    "input": "#9ecae1",
    "state": "#fdae6b",
    "output": "#a1d99b",
    "loss": "#d9d9d9",
    "target": "#f0f0f0",
}
_R = 0.32  # node radius, in data units


def _node(ax, xy, label, kind, *, fontsize=12):
    circle = Circle(xy, _R, facecolor=COLORS[kind], edgecolor="black", lw=1.2, zorder=3)
    ax.add_patch(circle)
    ax.text(*xy, label, ha="center", va="center", fontsize=fontsize, zorder=4)
    return circle


def _edge(ax, a, b, label=None, *, rad=0.0, label_offset=(0.12, 0.0), fontsize=11, style="-|>",
          trim=(True, True)):
    """Arrow from node centre ``a`` to node centre ``b``, stopping at the circles' rims."""
    (ax0, ay0), (bx0, by0) = a, b
    dist = ((bx0 - ax0) ** 2 + (by0 - ay0) ** 2) ** 0.5 or 1.0
    ux, uy = (bx0 - ax0) / dist, (by0 - ay0) / dist
    start = (ax0 + _R * ux, ay0 + _R * uy) if trim[0] else a
    end = (bx0 - _R * ux, by0 - _R * uy) if trim[1] else b
    arrow = FancyArrowPatch(
        start,
        end,
        arrowstyle=style,
        mutation_scale=14,
        lw=1.3,
        color="black",
        shrinkA=0,
        shrinkB=0,
        connectionstyle=f"arc3,rad={rad}",
        zorder=2,
    )
    ax.add_patch(arrow)
    if label:
        mx, my = (ax0 + bx0) / 2 + label_offset[0], (ay0 + by0) / 2 + label_offset[1]
        ax.text(mx, my, label, fontsize=fontsize, ha="left", va="center", zorder=4)


def _rows(with_input, with_output, with_loss):
    """Vertical positions of the node rows that are present."""
    rows, y = {}, 0.0
    if with_input:
        rows["x"] = y
        y += 1.4
    rows["h"] = y
    y += 1.4
    if with_output:
        rows["o"] = y
        y += 1.4
        if with_loss:
            rows["L"] = y
    return rows


def _draw_circuit(ax, x0, *, state, with_input, with_output, with_loss, fontsize):
    rows = _rows(with_input, with_output, with_loss)
    hy = rows["h"]
    s = state
    _node(ax, (x0, hy), rf"${s}$", "state", fontsize=fontsize)
    # Recurrent loop: out of the right side, through the delay square, back in.
    sq = 0.18
    loop_x = x0 + 1.0
    ax.add_patch(Rectangle((loop_x - sq / 2, hy - sq / 2), sq, sq, color="black", zorder=3))
    _edge(ax, (x0 + _R * 0.7, hy + _R * 0.7), (loop_x, hy + sq / 2), None, rad=-0.8,
          style="-", trim=(False, False))
    _edge(ax, (loop_x, hy - sq / 2), (x0 + _R * 0.7, hy - _R * 0.7), None, rad=-0.8,
          trim=(False, False))
    ax.text(loop_x + 0.2, hy, "$W$", fontsize=fontsize - 1, va="center")
    if with_input:
        _node(ax, (x0, rows["x"]), "$x$", "input", fontsize=fontsize)
        _edge(ax, (x0, rows["x"]), (x0, hy), "$U$", fontsize=fontsize - 1)
    if with_output:
        _node(ax, (x0, rows["o"]), "$o$", "output", fontsize=fontsize)
        _edge(ax, (x0, hy), (x0, rows["o"]), "$V$", fontsize=fontsize - 1)
        if with_loss:
            _node(ax, (x0, rows["L"]), "$L$", "loss", fontsize=fontsize)
            _edge(ax, (x0, rows["o"]), (x0, rows["L"]))
    return rows


def _draw_unrolled(ax, x0, tau, *, state, with_input, with_output, with_loss,
                   show_initial, fontsize, dx=1.6):
    rows = _rows(with_input, with_output, with_loss)
    hy = rows["h"]
    s = state
    xs = [x0 + dx * (t - 1) for t in range(1, tau + 1)]
    prev = None
    if show_initial:
        prev = (x0 - dx, hy)
        _node(ax, prev, rf"${s}^{{(0)}}$", "state", fontsize=fontsize)
    for t, xt in zip(range(1, tau + 1), xs):
        cur = (xt, hy)
        _node(ax, cur, rf"${s}^{{({t})}}$", "state", fontsize=fontsize)
        if prev is not None:
            _edge(ax, prev, cur, "$W$" if s == "h" else r"$f$", label_offset=(-0.1, 0.17),
                  fontsize=fontsize - 1)
        if with_input:
            _node(ax, (xt, rows["x"]), rf"$x^{{({t})}}$", "input", fontsize=fontsize)
            _edge(ax, (xt, rows["x"]), cur, "$U$", fontsize=fontsize - 1)
        if with_output:
            _node(ax, (xt, rows["o"]), rf"$o^{{({t})}}$", "output", fontsize=fontsize)
            _edge(ax, cur, (xt, rows["o"]), "$V$", fontsize=fontsize - 1)
            if with_loss:
                _node(ax, (xt, rows["L"]), rf"$L^{{({t})}}$", "loss", fontsize=fontsize)
                _edge(ax, (xt, rows["o"]), (xt, rows["L"]))
        prev = cur
    return rows, xs


def _finish(ax, xmin, xmax, rows):
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(min(rows.values()) - 0.6, max(rows.values()) + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")


def _validate(tau, state):
    tau = check_positive_int("tau", tau)
    if tau > 30:
        raise ValueError(f"tau must be at most 30 to stay legible; got {tau}.")
    if state not in ("h", "s"):
        raise ValueError(f"state must be 'h' (an RNN) or 's' (a dynamical system); got {state!r}.")
    return tau


def circuit_diagram(*, state: str = "h", with_input: bool = True, with_output: bool = True,
                    with_loss: bool = False) -> Figure:
    """The recurrent network as a circuit: one node per variable, a loop with a delay.

    Parameters
    ----------
    state : ``"h"`` for an RNN's hidden state, ``"s"`` for a generic system state.
    with_input, with_output, with_loss : which rows to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _validate(1, state)
    rows = _rows(with_input, with_output, with_loss)
    fig, ax = plt.subplots(figsize=(2.8, 1.1 + 1.05 * len(rows)))
    _draw_circuit(ax, 0.0, state=state, with_input=with_input, with_output=with_output,
                  with_loss=with_loss, fontsize=13)
    _finish(ax, -0.8, 1.8, rows)
    fig.suptitle("circuit (delay = black square)", fontsize=10)
    return fig


def unrolled_graph(tau: int, *, state: str = "h", with_input: bool = True,
                   with_output: bool = True, with_loss: bool = False,
                   show_initial: bool = True) -> Figure:
    """The same network unfolded for ``tau`` time steps: a directed acyclic graph.

    Every column is one time step; every arrow labelled ``W`` carries the *same*
    matrix. Without inputs (``with_input=False``) and with ``state="s"`` this is
    the autonomous system :math:`s^{(t)} = f(s^{(t-1)}; \\theta)`.

    Parameters
    ----------
    tau : int in [1, 30], number of time steps.
    state, with_input, with_output, with_loss : as in :func:`circuit_diagram`.
    show_initial : draw the initial state :math:`h^{(0)}`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    tau = _validate(tau, state)
    rows = _rows(with_input, with_output, with_loss)
    fontsize = 12 if tau <= 8 else 9 if tau <= 16 else 7
    width = 1.6 * (tau + (1 if show_initial else 0))
    fig, ax = plt.subplots(figsize=(min(1.1 + 0.9 * width, 16), 1.1 + 1.05 * len(rows)))
    _draw_unrolled(ax, 0.0, tau, state=state, with_input=with_input, with_output=with_output,
                   with_loss=with_loss, show_initial=show_initial, fontsize=fontsize)
    xmin = -1.6 - 0.6 if show_initial else -0.6
    _finish(ax, xmin, 1.6 * (tau - 1) + 0.6, rows)
    fig.suptitle(rf"unfolded for $\tau = {tau}$ steps", fontsize=10)
    return fig


def unfolding_figure(tau: int = 3, *, state: str = "h", with_input: bool = True,
                     with_output: bool = True, with_loss: bool = False) -> Figure:
    """Circuit on the left, an arrow labelled *unfold*, the unrolled graph on the right."""
    tau = _validate(tau, state)
    if tau > 12:
        raise ValueError(f"tau must be at most 12 in the side-by-side figure; got {tau}.")
    rows = _rows(with_input, with_output, with_loss)
    fig, ax = plt.subplots(figsize=(2.2 + 1.45 * (tau + 2), 1.1 + 1.05 * len(rows)))
    _draw_circuit(ax, 0.0, state=state, with_input=with_input, with_output=with_output,
                  with_loss=with_loss, fontsize=12)
    hy = rows["h"]
    start = 4.2
    ax.annotate("", xy=(start - 1.0, hy), xytext=(1.6, hy),
                arrowprops=dict(arrowstyle="-|>", lw=2, color="#555555"))
    ax.text((1.6 + start - 1.0) / 2, hy + 0.25, "unfold", ha="center", fontsize=10,
            color="#555555")
    _draw_unrolled(ax, start + 1.6, tau, state=state, with_input=with_input,
                   with_output=with_output, with_loss=with_loss, show_initial=True, fontsize=12)
    _finish(ax, -0.8, start + 1.6 * tau + 0.6, rows)
    return fig
