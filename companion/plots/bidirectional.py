"""Figures for chapters 10 and 11: bidirectional graphs, depth diagrams, results.

Pure functions: numbers in, a new matplotlib ``Figure`` out. No torch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_positive_int

__all__ = ["bidirectional_graph_figure", "depth_graph_figure", "lookahead_figure",
           "depth_results_figure", "gradient_depth_figure"]


def _node(ax, xy, text, color):
    ax.add_patch(plt.Circle(xy, 0.28, facecolor=color, edgecolor="black", zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=4)


def _arrow(ax, a, b, color="black", shrink=0.3):
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / np.linalg.norm(b - a)
    ax.annotate("", xy=b - shrink * d, xytext=a + shrink * d,
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.3}, zorder=2)


def bidirectional_graph_figure(steps: int = 4) -> Figure:
    """The unrolled bidirectional RNN: inputs, forward states h, backward states g, outputs.

    Forward states are linked left to right (blue), backward states right to left
    (orange); every output ``o^(t)`` receives both ``h^(t)`` and ``g^(t)``.
    """
    T = check_positive_int("steps", steps, minimum=2)
    fig, ax = plt.subplots(figsize=(1.7 * T + 1.5, 4.2))
    rows = {"x": 0.0, "h": 1.3, "g": 2.4, "o": 3.7}
    for t in range(T):
        s = str(t + 1)
        _node(ax, (t * 1.7, rows["x"]), f"$x^{{({s})}}$", "#eeeeee")
        _node(ax, (t * 1.7, rows["h"]), f"$h^{{({s})}}$", "#cfe3f7")
        _node(ax, (t * 1.7, rows["g"]), f"$g^{{({s})}}$", "#fbd9b5")
        _node(ax, (t * 1.7, rows["o"]), f"$o^{{({s})}}$", "#d8f0d2")
        _arrow(ax, (t * 1.7, rows["x"]), (t * 1.7, rows["h"]), "tab:blue")
        ax.annotate("", xy=(t * 1.7 + 0.35, rows["g"] - 0.2),
                    xytext=(t * 1.7 + 0.2, rows["x"] + 0.25),
                    arrowprops={"arrowstyle": "->", "color": "tab:orange", "lw": 1.3,
                                "connectionstyle": "arc3,rad=0.25"})
        ax.annotate("", xy=(t * 1.7 - 0.3, rows["o"] - 0.2),
                    xytext=(t * 1.7 - 0.25, rows["h"] + 0.25),
                    arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 1.3,
                                "connectionstyle": "arc3,rad=-0.3"})
        _arrow(ax, (t * 1.7, rows["g"]), (t * 1.7, rows["o"]), "tab:orange")
        if t < T - 1:
            _arrow(ax, (t * 1.7, rows["h"]), ((t + 1) * 1.7, rows["h"]), "tab:blue")
            _arrow(ax, ((t + 1) * 1.7, rows["g"]), (t * 1.7, rows["g"]), "tab:orange")
    ax.text(-1.0, rows["h"], "forward\n(reads 1..t)", ha="right", va="center", color="tab:blue")
    ax.text(-1.0, rows["g"], "backward\n(reads t..τ)", ha="right", va="center",
            color="tab:orange")
    ax.set_xlim(-2.6, (T - 1) * 1.7 + 0.6)
    ax.set_ylim(-0.5, 4.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Bidirectional RNN unrolled: $o^{(t)}$ sees $h^{(t)}$ (past) and "
                 "$g^{(t)}$ (future)")
    fig.tight_layout()
    return fig


def depth_graph_figure(steps: int = 3, layers: int = 3, transition_depth: int = 3) -> Figure:
    """Two ways to be deep: stacked layers (left) and a deep transition (right).

    Left: ``layers`` rows of states ``h_l^(t)``, each layer's state feeding the layer
    above at the same step and itself at the next step. Right: one layer whose step
    from ``h^(t-1)`` (with ``x^(t)`` entering the first stage) passes through
    ``transition_depth - 1`` intermediate nodes (squares) before the new state, plus a
    deep read-out (one hidden node before ``o``).
    """
    T = check_positive_int("steps", steps, minimum=2)
    L = check_positive_int("layers", layers)
    K = check_positive_int("transition_depth", transition_depth)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for t in range(T):
        x0 = t * 1.6
        _node(a1, (x0, 0), f"$x^{{({t + 1})}}$", "#eeeeee")
        for layer in range(L):
            y = 1.2 * (layer + 1)
            _node(a1, (x0, y), f"$h_{layer + 1}^{{({t + 1})}}$", "#cfe3f7")
            _arrow(a1, (x0, y - 1.2), (x0, y), "tab:green")
            if t < T - 1:
                _arrow(a1, (x0, y), (x0 + 1.6, y), "tab:blue")
        _node(a1, (x0, 1.2 * (L + 1)), f"$o^{{({t + 1})}}$", "#d8f0d2")
        _arrow(a1, (x0, 1.2 * L), (x0, 1.2 * (L + 1)), "tab:green")
    a1.set_title(f"stacked: {L} layers;\ndepth per step (green), depth in time (blue)",
                 fontsize=10)
    gap = 0.9 * K
    _node(a2, (0, 1.4), "$h^{(0)}$", "#cfe3f7")
    for t in range(T):
        x0 = (t + 1) * gap  # position of h^(t+1)
        prev = np.array([t * gap, 1.4])
        first = None
        for j in range(1, K):  # intermediate transition nodes (squares)
            q = np.array([t * gap + gap * j / K, 0.75])
            a2.add_patch(plt.Rectangle(q - 0.15, 0.3, 0.3, facecolor="#e6d7f2",
                                       edgecolor="black", zorder=3))
            _arrow(a2, prev, q, "tab:blue", shrink=0.25)
            prev, first = q, (q if first is None else first)
        _arrow(a2, prev, (x0, 1.4), "tab:blue", shrink=0.25)
        target = first if first is not None else np.array([x0, 1.4])
        _node(a2, (x0 - gap / 2, -0.4), f"$x^{{({t + 1})}}$", "#eeeeee")
        _arrow(a2, (x0 - gap / 2, -0.4), target, "tab:green", shrink=0.25)
        _node(a2, (x0, 1.4), f"$h^{{({t + 1})}}$", "#cfe3f7")
        a2.add_patch(plt.Rectangle((x0 - 0.18, 2.45), 0.36, 0.36, facecolor="#e6d7f2",
                                   edgecolor="black", zorder=3))
        _arrow(a2, (x0, 1.4), (x0, 2.63), "tab:purple")
        _node(a2, (x0, 3.8), f"$o^{{({t + 1})}}$", "#d8f0d2")
        _arrow(a2, (x0, 2.63), (x0, 3.8), "tab:purple")
    a2.set_title(f"deep transition: {K - 1} hidden layers inside each step (blue);\n"
                 "deep read-out: one hidden layer before $o$ (purple)", fontsize=10)
    for ax in (a1, a2):
        ax.set_aspect("equal")
        ax.axis("off")
        ax.autoscale_view()
    a1.set_xlim(-0.6, (T - 1) * 1.6 + 0.6)
    a1.set_ylim(-0.5, 1.2 * (L + 1) + 0.5)
    a2.set_xlim(-0.6, T * gap + 0.6)
    a2.set_ylim(-0.9, 4.3)
    fig.tight_layout()
    return fig


def lookahead_figure(latency, accuracy, labels, *, ceiling=None, baseline=None) -> Figure:
    """Test accuracy (every seed as a dot, median as a bar) against latency in steps.

    Parameters
    ----------
    latency : (C,) steps each model waits before it labels a token (the largest wait).
    accuracy : (C, S) test accuracy of every seed at the model's chosen learning rate.
    labels : C strings.
    ceiling : optional (C,) best accuracy reachable from what the model has read.
    baseline : optional float, the trivial predictor's accuracy (dotted line).
    """
    lat = as_float_array("latency", latency, allow_int=True)
    acc = as_float_array("accuracy", accuracy)
    if acc.ndim != 2 or acc.shape[0] != lat.shape[0] or len(labels) != lat.shape[0]:
        raise ValueError(f"accuracy must be (C, S) and labels C long with C={lat.shape[0]} "
                         f"(one per latency); got {acc.shape} and {len(labels)} labels.")
    fig, ax = plt.subplots(figsize=(7, 4))
    for c in range(len(lat)):
        ax.plot(np.full(acc.shape[1], lat[c]), acc[c], "o", color="tab:blue", alpha=0.5)
        ax.plot([lat[c] - 0.25, lat[c] + 0.25], [np.median(acc[c])] * 2, color="black", lw=2)
        ax.annotate(labels[c], (lat[c], np.median(acc[c])), textcoords="offset points",
                    xytext=(8, -16 if c % 2 else 8), fontsize=9)  # alternate: no overlap
    if ceiling is not None:
        ceil = as_float_array("ceiling", ceiling)
        ax.plot(lat, ceil, "s--", color="tab:red", mfc="none",
                label="ceiling from what was read")
    if baseline is not None:
        ax.axhline(float(baseline), ls=":", color="gray", label="most frequent label")
    ax.set_xlabel("latency: steps between reading $x^{(t)}$ and emitting its label (max)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.12)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def depth_results_figure(depths, accuracy, labels, *, params=None, times=None) -> Figure:
    """Accuracy against depth, one curve per task (median, min-max band); optionally
    parameters and time per step against depth in a second panel.

    accuracy : (C, P, S) for C tasks, P depths, S seeds.
    params, times : optional (P,) arrays, drawn relative to depth 1 (both start at 1).
    """
    d = as_float_array("depths", depths, allow_int=True)
    acc = as_float_array("accuracy", accuracy)
    if acc.ndim != 3 or acc.shape[1] != d.shape[0] or len(labels) != acc.shape[0]:
        raise ValueError(f"accuracy must be (C, P={d.shape[0]}, S) with C labels; "
                         f"got {acc.shape} and {len(labels)} labels.")
    two = params is not None or times is not None
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(11 if two else 6, 4))
    ax = axes[0] if two else axes
    for c in range(acc.shape[0]):
        med = np.median(acc[c], axis=1)
        line, = ax.plot(d, med, "o-", label=labels[c])
        ax.fill_between(d, acc[c].min(axis=1), acc[c].max(axis=1), alpha=0.2,
                        color=line.get_color())
    ax.set_xlabel("number of stacked layers")
    ax.set_ylabel("test accuracy (median, min-max over seeds)")
    ax.set_xticks(d)
    ax.set_ylim(0.4, 1.02)
    ax.legend()
    if two:
        ax2 = axes[1]
        if params is not None:
            p = as_float_array("params", params, allow_int=True)
            ax2.plot(d, p / p[0], "s-", label="parameters")
        if times is not None:
            tt = as_float_array("times", times)
            ax2.plot(d, tt / tt[0], "^-", label="CPU time per training step")
        ax2.set_xlabel("number of stacked layers")
        ax2.set_ylabel("relative to one layer")
        ax2.set_xticks(d)
        ax2.legend()
    fig.tight_layout()
    return fig


def gradient_depth_figure(depths, norms, labels) -> Figure:
    """Gradient norm reaching the bottom layer against depth, log scale.

    norms : (C, P) for C settings (e.g. plain and residual) and P depths.
    """
    d = as_float_array("depths", depths, allow_int=True)
    Y = as_float_array("norms", norms)
    if Y.ndim != 2 or Y.shape[1] != d.shape[0] or len(labels) != Y.shape[0]:
        raise ValueError(f"norms must be (C, P={d.shape[0]}) with C labels; got {Y.shape}.")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for c in range(Y.shape[0]):
        ax.semilogy(d, Y[c], "o-", label=labels[c])
    ax.set_xlabel("number of stacked layers")
    ax.set_ylabel(r"$\|\nabla_{U_1} L\|$ (bottom layer's input weights)")
    ax.set_xticks(d)
    ax.legend()
    fig.tight_layout()
    return fig
