"""Figures for long-term dependencies: gradient norms, clipping, success against length.

Pure functions: measured arrays in, a new matplotlib ``Figure`` out. No torch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_shape

__all__ = ["gradient_norm_figure", "clipping_figure", "success_figure"]


def _labels(name, labels, n):
    if labels is None or len(labels) != n:
        got = "none" if labels is None else len(labels)
        raise ValueError(f"{name} must have one entry per curve ({n}); got {got}.")


def gradient_norm_figure(distances, norms, *, labels, bounds=None, title: str = "",
                         ylabel: str = r"$\|\partial h^{(T)} / \partial h^{(T-d)}\|_2$",
                         ylim=(1e-12, 1e8)) -> Figure:
    """Norm of the Jacobian product against the distance ``d``, log scale, one curve per setting.

    Parameters
    ----------
    distances : (P,) floats, e.g. ``0..T``.
    norms : (C, P) floats, one row per setting (e.g. per spectral radius), typically the
        median over a batch of sequences. Zeros are drawn at the bottom of the axis.
    labels : C strings.
    bounds : optional (C, P) floats, an upper bound per setting drawn dashed in the
        same colour (e.g. :func:`companion.scratch.longterm.pascanu_bound`).
    ylim : limits of the log axis (values outside are clipped for display only).
    """
    d = as_float_array("distances", distances, allow_int=True)
    Y = as_float_array("norms", norms)
    if Y.ndim == 1:
        Y = Y[None]  # (1, P)
    dims = check_shape("distances", d, ("P",))
    check_shape("norms", Y, ("C", "P"), dims, hint="One row per setting, one column per distance.")
    _labels("labels", labels, len(Y))
    B = None
    if bounds is not None:
        B = as_float_array("bounds", bounds, finite=False)
        if B.ndim == 1:
            B = B[None]
        check_shape("bounds", B, ("C", "P"), dims)
    lo, hi = ylim
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(Y)))
    for i, (y, label, col) in enumerate(zip(Y, labels, colors)):
        ax.plot(d, np.clip(y, lo, hi), "-", color=col, lw=1.8, label=label)
        if B is not None:
            ax.plot(d, np.clip(B[i], lo, hi), "--", color=col, lw=1.0)
    if B is not None:
        ax.plot([], [], "k--", lw=1.0, label=r"bound $\sigma_{\max}(W)^d$")
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ax.set_xlabel("distance $d = T - k$ (time steps back)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "How much of a gradient survives $d$ steps back")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def clipping_figure(losses, *, labels, grad_norms=None, title: str = "",
                    ylabel: str = "training loss (MSE, log scale)", colors=None) -> Figure:
    """Loss curves of runs that differ only in clipping; non-finite steps marked with x.

    Runs differ in colour, line style and marker (readable in grey scale); the first
    non-finite step of a run is an ``x`` on the top edge of both panels.

    Parameters
    ----------
    losses : (C, S) positive floats, one row per run, drawn on a log axis; NaN/inf
        allowed (drawn as a gap, with an ``x`` on the top edge at the first non-finite step).
    labels : C strings.
    grad_norms : optional (C, S) floats, gradient norms before clipping, drawn in a
        second panel (log scale).
    colors : optional C matplotlib colours, one per run (default: tab10 in order), e.g.
        :func:`companion.plots.sweeps.model_color` to keep one colour per model.
    """
    L = as_float_array("losses", losses, finite=False)
    if L.ndim == 1:
        L = L[None]
    dims = check_shape("losses", L, ("C", "S"), hint="One row per run, one column per step.")
    _labels("labels", labels, len(L))
    G = None
    if grad_norms is not None:
        G = as_float_array("grad_norms", grad_norms, finite=False)
        if G.ndim == 1:
            G = G[None]
        check_shape("grad_norms", G, ("C", "S"), dims)
    ncols = 1 if G is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6.4 * ncols * 0.8, 3.8), squeeze=False)
    ax = axes[0, 0]
    steps = np.arange(L.shape[1])
    finite_vals = L[np.isfinite(L) & (L > 0)]
    # cap the axis well above the typical loss so that one spike does not flatten the rest
    top = 1.0
    if finite_vals.size:
        top = float(min(finite_vals.max() * 3, np.median(finite_vals) * 1e4))
    bottom = float(finite_vals.min()) / 3 if finite_vals.size else 1e-3
    if colors is None:
        colors = plt.cm.tab10(np.arange(len(L)))
    elif isinstance(colors, str) or len(colors) != len(L):
        n = "a string" if isinstance(colors, str) else len(colors)
        raise ValueError(f"colors must have one entry per run ({len(L)}); got {n}.")
    styles = ["-", "--", ":", "-."]
    marks = ["o", "s", "^", "D", "v"]
    every = max(1, L.shape[1] // 10)
    firsts = []
    for k, (y, label, col) in enumerate(zip(L, labels, colors)):
        ok = np.isfinite(y)
        ax.plot(steps, np.where(ok, y, np.nan), lw=1.0, color=col, ls=styles[k % 4],
                marker=marks[k % 5], markevery=(k * every // max(len(L), 1), every), ms=4,
                label=label)
        first = None if ok.all() else int(np.argmax(~ok))
        firsts.append(first)
        if first is not None:
            ax.plot([first], [top], "x", color=col, ms=10, mew=2.5, clip_on=False, zorder=5)
    if any(f is not None for f in firsts):
        ax.plot([], [], "kx", ms=8, mew=2, ls="none", label="first non-finite loss")
    ax.set_yscale("log")  # spikes and small losses on one axis
    ax.set_ylim(bottom, top)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Same model, same data: clipping or not")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if G is not None:
        ax2 = axes[0, 1]
        for k, (g, label, col) in enumerate(zip(G, labels, colors)):
            ax2.plot(steps, np.where(np.isfinite(g), g, np.nan), lw=0.8, color=col,
                     ls=styles[k % 4], marker=marks[k % 5],
                     markevery=(k * every // max(len(L), 1), every), ms=4, label=label)
        ax2.set_yscale("log")
        finite_g = G[np.isfinite(G) & (G > 0)]
        if finite_g.size:
            gtop = float(finite_g.max()) * 3
            ax2.set_ylim(float(finite_g.min()) / 3, gtop)
            for first, col in zip(firsts, colors):
                if first is not None:
                    ax2.plot([first], [gtop], "x", color=col, ms=10, mew=2.5, clip_on=False,
                             zorder=5)
        ax2.set_xlabel("training step")
        ax2.set_ylabel("gradient norm before clipping")
        ax2.set_title("gradient norm (x: loss became non-finite)" if any(
            f is not None for f in firsts) else "gradient norm")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def success_figure(lengths, fractions, *, labels, threshold: float | None = None,
                   title: str = "", ylabel: str = "fraction of test sequences solved") -> Figure:
    """Success against sequence length: per-seed points and their mean, one colour per model.

    Parameters
    ----------
    lengths : (P,) floats, the sequence lengths (drawn on a log-2 axis).
    fractions : (C, P, S) floats, the score of each model at each length for each seed.
    labels : C strings.
    threshold : optional horizontal line (the success criterion).
    """
    x = as_float_array("lengths", lengths, allow_int=True)
    F = as_float_array("fractions", fractions)
    if F.ndim == 2:
        F = F[..., None]  # a single seed: (C, P) -> (C, P, 1)
    dims = check_shape("lengths", x, ("P",))
    check_shape("fractions", F, ("C", "P", "S"), dims,
                hint="One row per model, one column per length, one slice per seed.")
    _labels("labels", labels, len(F))
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    colors = plt.cm.tab10(np.arange(len(F)))
    n = len(F)
    for i, (f, label, col) in enumerate(zip(F, labels, colors)):
        jitter = 1.0 + 0.04 * (i - (n - 1) / 2)  # spread models apart on the log axis
        for s in range(f.shape[1]):
            ax.plot(x * jitter, f[:, s], "o", color=col, alpha=0.45, ms=4)
        ax.plot(x * jitter, f.mean(axis=1), "-", color=col, lw=1.8, label=f"{label} (mean)")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label="success threshold")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([str(int(v)) if float(v).is_integer() else str(v) for v in x])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("sequence length $T$")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Who solves the adding problem, by length (dots: seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
