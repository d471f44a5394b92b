"""Figures for stored sweeps: success against length, gradient norms by distance, tuning.

Pure functions: arrays in, a new matplotlib ``Figure`` out. No torch. The arrays come
from a stored sweep through the helpers of :mod:`companion.data.results`
(``sweep_fractions``, ``gradient_profiles``, ``lr_grid_scores``).

success_length_figure     fraction solved against length, one line per model, k/n at each point
gradient_distance_figure  median ||dL/dh_t|| against distance from the loss, before/after training
lr_grid_figure            one panel per model: validation score against learning rate
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_shape

__all__ = ["success_length_figure", "gradient_distance_figure", "lr_grid_figure", "model_color"]


#: One colour per model of the stored sweeps, so that a model keeps its colour from figure
#: to figure whichever subset is drawn; other labels take the remaining tab10 colours.
MODEL_COLORS = {"RNN": 0, "RNN + clipping": 1, "IRNN": 2, "LSTM": 3, "GRU": 4}


def model_color(label: str):
    """The colour of a sweep model (``"RNN"``, ``"RNN + clipping"``, ``"IRNN"``, ``"LSTM"``,
    ``"GRU"``) in every figure of this module, as an RGBA tuple; pass it to other figures
    (``colors=``) so that a model keeps one colour across a chapter.

    >>> model_color("GRU") == model_color("GRU")
    True
    >>> model_color("LSTM") != model_color("GRU")
    True
    """
    if label not in MODEL_COLORS:
        raise ValueError(f"label must be one of {list(MODEL_COLORS)}; got {label!r}. For "
                         f"a variant of a model (other biases, another set-up) pass the "
                         f"model's own name and tell the variant by line style.")
    return tuple(float(v) for v in plt.cm.tab10(MODEL_COLORS[label]))


def _colors(labels):
    tab = plt.cm.tab10(np.arange(10))
    free = iter(i for i in range(10) if i not in MODEL_COLORS.values())
    return [tab[MODEL_COLORS[lab]] if lab in MODEL_COLORS else tab[next(free) % 10]
            for lab in labels]


def _check_labels(name, labels, n):
    if labels is None or isinstance(labels, str) or len(labels) != n:
        got = "none" if labels is None else (1 if isinstance(labels, str) else len(labels))
        raise ValueError(f"{name} must have one entry per model ({n}); got {got}.")


def _lr_text(lr) -> str:
    return f"{float(lr):.0e}".replace("e-0", "e-")


def _log2_axis(ax, x):
    ax.set_xscale("log", base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([str(int(v)) if float(v).is_integer() else str(v) for v in x])
    ax.minorticks_off()


def success_length_figure(lengths, fractions, *, labels, lrs=None, threshold: float | None = 0.8,
                          baseline=None, title: str = "",
                          ylabel: str = "fraction of test sequences solved") -> Figure:
    """Success against sequence length: one line per model, k/n seeds written at each point.

    Parameters
    ----------
    lengths : (P,) the sequence lengths (log-2 axis).
    fractions : (C, P, S) test score of each model (C) at each length (P) for each seed
        (S), at the learning rate chosen for that model. NaN marks a missing run; a
        length where every seed is NaN (not run) ends the model's line.
    labels : C model names.
    lrs : optional C learning rates, shown in the legend ("LSTM (lr 3e-3)").
    threshold : the success criterion; a run with score >= threshold succeeds. The
        number of successes k out of n seeds is written next to each point. ``None``:
        no threshold line and no k/n.
    baseline : optional (P,) score of the trivial (constant) predictor, drawn dotted.

    The line is the median over seeds; the shaded band spans the minimum to maximum.
    """
    x = as_float_array("lengths", lengths, allow_int=True)
    F = as_float_array("fractions", fractions, finite=False)
    if F.ndim == 2:
        F = F[..., None]
    dims = check_shape("lengths", x, ("P",))
    check_shape("fractions", F, ("C", "P", "S"), dims,
                hint="One row per model, one column per length, one slice per seed.")
    _check_labels("labels", labels, len(F))
    if lrs is not None:
        _check_labels("lrs", lrs, len(F))
    base = None
    if baseline is not None:
        base = as_float_array("baseline", baseline)
        check_shape("baseline", base, ("P",), dims)
    fig, ax = plt.subplots(figsize=(9.0, 4.3))
    colors = _colors(labels)
    markers = "osD^v<>ph*"
    n = len(F)
    for i, (f, label, col) in enumerate(zip(F, labels, colors)):
        xi = x * 2 ** (0.06 * (i - (n - 1) / 2))  # spread the models apart
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # lengths not run: all NaN
            med = np.nanmedian(f, axis=1)
            lo, hi = np.nanmin(f, axis=1), np.nanmax(f, axis=1)
        name = label if lrs is None else f"{label} (lr {_lr_text(lrs[i])})"
        ax.fill_between(xi, lo, hi, color=col, alpha=0.13, lw=0)
        ax.plot(xi, med, "-", marker=markers[i % len(markers)], color=col, lw=1.8, ms=5,
                label=name)
        if threshold is not None:
            for xv, col_f, m in zip(xi, f, med):
                ok = ~np.isnan(col_f)
                k, tot = int((col_f[ok] >= threshold).sum()), int(ok.sum())
                if tot == 0:  # not run (the model had stopped at a shorter length)
                    continue
                ax.annotate(f"{k}/{tot}", (xv, m), textcoords="offset points",
                            xytext=(0, 6 if i % 2 == 0 else -11), ha="center", fontsize=7,
                            color=col)
    if base is not None:
        ax.plot(x, base, ":", color="grey", lw=1.5, label="constant predictor")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"success threshold {threshold}")
    _log2_axis(ax, x)
    ax.set_ylim(-0.05, 1.08)
    ax.set_xlabel("sequence length $T$")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Success against length (line: median over seeds, band: min-max, "
                          "k/n: seeds that succeed)", fontsize=9)
    ax.grid(alpha=0.3)
    # outside the axes: inside, it would cover the lines at the constant predictor's level
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def gradient_distance_figure(distances, init_norms, final_norms, *, labels, title: str = "",
                             ylabel: str = r"median $\|\partial L / \partial h^{(t)}\|$",
                             floor: float = 1e-30) -> Figure:
    """Gradient norm against distance from the loss, at initialisation and after training.

    Parameters
    ----------
    distances : (P,) distances ``d = T - 1 - t`` of the state from the read-out (0: last state).
    init_norms, final_norms : (C, P) median norms per model (C) at each distance, before
        and after training. NaN (a diverged run) leaves a gap; values below ``floor``
        are drawn at ``floor``.
    labels : C model names.

    Two panels side by side, sharing a log y axis, one line per model.
    """
    d = as_float_array("distances", distances, allow_int=True)
    A = as_float_array("init_norms", init_norms, finite=False)
    B = as_float_array("final_norms", final_norms, finite=False)
    A, B = (Y[None] if Y.ndim == 1 else Y for Y in (A, B))
    dims = check_shape("distances", d, ("P",))
    check_shape("init_norms", A, ("C", "P"), dims, hint="One row per model, one column per distance.")
    check_shape("final_norms", B, ("C", "P"), dims, hint="Same shape as init_norms.")
    _check_labels("labels", labels, len(A))
    fig, axes = plt.subplots(1, 2, figsize=(8.8, 3.8), sharey=True)
    colors = _colors(labels)
    markers = "osD^v<>ph*"
    for ax, Y, when in zip(axes, (A, B), ("at initialisation", "after training")):
        for i, (y, label, col) in enumerate(zip(Y, labels, colors)):
            ax.plot(d, np.maximum(y, floor), "-", marker=markers[i % len(markers)], ms=3.5,
                    color=col, lw=1.6, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("distance from the loss $T - t$ (steps)")
        ax.set_title(when)
        ax.grid(alpha=0.3, which="major")
    axes[0].set_ylabel(ylabel)
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def lr_grid_figure(grids, scores, *, labels, lengths, chosen=None, title: str = "",
                   ylabel: str = "validation score (median over seeds)") -> Figure:
    """The tuning made visible: one panel per model, score against learning rate.

    Parameters
    ----------
    grids : C sequences, the learning-rate grid of each model (grids may differ).
    scores : C arrays of shape (G_c, P, S): validation score of model c at each of its
        G_c learning rates, each length (P) and each seed (S).
    labels : C model names.  lengths : (P,) the lengths (one line per length).
    chosen : optional C learning rates, marked by a vertical dashed line.

    Each line is the median over seeds; error bars span the minimum to maximum.
    """
    _check_labels("labels", labels, len(grids))
    _check_labels("scores", scores, len(grids))
    if chosen is not None:
        _check_labels("chosen", chosen, len(grids))
    L = as_float_array("lengths", lengths, allow_int=True)
    dims = check_shape("lengths", L, ("P",))
    n = len(grids)
    fig, axes = plt.subplots(1, n, figsize=(2.5 * n + 0.8, 3.3), sharey=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(L)))
    for c, ax in enumerate(axes[0]):
        g = as_float_array(f"grids[{c}]", grids[c])
        S = as_float_array(f"scores[{c}]", scores[c], finite=False)
        check_shape(f"scores[{c}]", S, (len(g), "P", "S"), dict(dims),
                    hint="One row per learning rate of that model's grid.")
        with np.errstate(all="ignore"):
            med, lo, hi = (np.nanmedian(S, 2), np.nanmin(S, 2), np.nanmax(S, 2))
        for p, (length, col) in enumerate(zip(L, colors)):
            ax.errorbar(g, med[:, p], yerr=[med[:, p] - lo[:, p], hi[:, p] - med[:, p]],
                        fmt="-o", ms=3.5, color=col, lw=1.4, capsize=2,
                        label=f"T={int(length)}")
        if chosen is not None:
            ax.axvline(float(chosen[c]), color="black", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(g)
        ax.set_xticklabels([_lr_text(v) for v in g], fontsize=7)
        ax.minorticks_off()
        ax.set_title(labels[c], fontsize=9)
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, title="length" + (" (dashed: chosen lr)" if chosen is not None
                                                     else ""), title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
