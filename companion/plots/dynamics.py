"""Figures of state trajectories: how a recurrence moves its state through time."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_shape

__all__ = ["trajectory_figure", "curves_figure"]


def trajectory_figure(states, *, labels=None, title: str = "", log_norm: bool = False,
                      plane_lim: float | None = None) -> Figure:
    """Two panels: the path of a 2-D state in the plane, and its norm against time.

    Parameters
    ----------
    states : (T + 1, 2) floats, or (M, T + 1, 2) for M trajectories (e.g. several
        initial states); ``states[..., t, :]`` is :math:`s^{(t)}`.
    labels : optional list of M legend labels (shown in both panels).
    title : optional figure title.
    log_norm : draw the norm on a log axis, so that a decay and a growth that differ
        by orders of magnitude stay readable side by side.
    plane_lim : optional float > 0; show the plane panel on the square
        ``[-plane_lim, plane_lim]^2`` (paths that leave it are clipped), so that one
        growing path does not shrink the others to a dot. ``None`` fits every path.
    """
    S = as_float_array("states", states)
    if S.ndim == 2:
        S = S[None]  # (1, T+1, 2)
    check_shape("states", S, ("M", "T1", 2), hint="Pass (T + 1, 2) or (M, T + 1, 2).")
    if labels is not None and len(labels) != len(S):
        raise ValueError(
            f"labels must have one entry per trajectory ({len(S)}); got {len(labels)}."
        )
    if plane_lim is not None and not (isinstance(plane_lim, (int, float, np.floating))
                                      and np.isfinite(plane_lim) and plane_lim > 0):
        raise ValueError(f"plane_lim must be a positive number or None; got {plane_lim!r}.")
    fig, (ax_plane, ax_norm) = plt.subplots(1, 2, figsize=(9, 3.6))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(S)))
    styles = ["-", "--", "-.", ":"]  # lines differ by style too, not only by colour
    t = np.arange(S.shape[1])
    for i, (traj, col) in enumerate(zip(S, colors)):
        label = labels[i] if labels is not None else None
        ls = styles[i % len(styles)]
        ax_plane.plot(traj[:, 0], traj[:, 1], ls, color=col, lw=1.2, label=label)
        ax_plane.plot(traj[0, 0], traj[0, 1], "o", color=col, ms=5)
        ax_norm.plot(t, np.linalg.norm(traj, axis=1), ls, color=col, lw=1.5, label=label)
    ax_plane.plot(0, 0, "k+", ms=10)
    ax_plane.set_xlabel("$s_1$ (first state component)")
    ax_plane.set_ylabel("$s_2$ (second state component)")
    ax_plane.set_title("state in the plane (dot = $s^{(0)}$)")
    if plane_lim is None:
        ax_plane.set_aspect("equal", adjustable="datalim")
    else:
        ax_plane.set_xlim(-plane_lim, plane_lim)
        ax_plane.set_ylim(-plane_lim, plane_lim)
        ax_plane.set_aspect("equal", adjustable="box")
    ax_norm.set_xlabel("time step $t$")
    ax_norm.set_ylabel(r"$\|s^{(t)}\|$")
    ax_norm.set_title("distance from the origin" + (" (log scale)" if log_norm else ""))
    if log_norm:
        ax_norm.set_yscale("log")
    ax_norm.grid(alpha=0.3)
    if labels is not None:
        ax_plane.legend(fontsize=8)
        ax_norm.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves_figure(x, ys, *, labels, xlabel: str, ylabel: str, title: str = "",
                  logy: bool = False, hline: float | None = None, hline_label: str = "",
                  markers=True, colors=None, styles=None) -> Figure:
    """Several labelled curves against a common x axis (the workhorse of experiments).

    Parameters
    ----------
    x : (P,) floats.
    ys : (C, P) floats, one row per curve.
    labels : C strings.
    xlabel, ylabel, title : text.
    logy : log-scale y axis.
    hline : optional horizontal reference line (e.g. a baseline), with ``hline_label``.
    markers : True (a dot at every point), False (lines only) or C marker strings, one
        per curve, drawn at about ten points of each (so that curves differ by marker).
    colors : optional C matplotlib colours, one per curve (e.g. one colour per model
        across a chapter's figures, :func:`companion.plots.sweeps.model_color`).
    styles : optional C line styles, one per curve (``"-"``, ``"--"``, ``"-."``, ``":"``).
    """
    x = as_float_array("x", x, allow_int=True)
    Y = as_float_array("ys", ys, allow_int=True)
    if Y.ndim == 1:
        Y = Y[None]
    dims = check_shape("x", x, ("P",))
    check_shape("ys", Y, ("C", "P"), dims, hint="One row per curve, one column per x value.")
    if len(labels) != len(Y):
        raise ValueError(f"labels must have one entry per curve ({len(Y)}); got {len(labels)}.")
    for name, given in (("colors", colors), ("styles", styles),
                        ("markers", None if isinstance(markers, bool) else markers)):
        if given is not None and (isinstance(given, str) or len(given) != len(Y)):
            n = "a string" if isinstance(given, str) else len(given)
            raise ValueError(f"{name} must have one entry per curve ({len(Y)}); got {n}.")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    every = max(1, len(x) // 10)
    for k, (y, label) in enumerate(zip(Y, labels)):
        style = {"ls": "-" if styles is None else styles[k], "ms": 3.5, "lw": 1.5}
        if colors is not None:
            style["color"] = colors[k]
        if isinstance(markers, bool):
            style["marker"] = "o" if markers else None
        else:
            style.update(marker=markers[k], markevery=(k * every // len(Y), every), ms=4.5)
        ax.plot(x, y, label=label, **style)
    if hline is not None:
        ax.axhline(hline, color="grey", ls="--", lw=1, label=hline_label or None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
