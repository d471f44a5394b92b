"""Learning curves and scaling plots: measured numbers in, a Figure out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_shape
from companion.scratch.forward import softmax

__all__ = ["linear_fit", "loss_curve_figure", "scaling_figure", "temperature_figure"]


def _smooth(y, window):
    if window <= 1 or len(y) < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def _steps_as_float(steps):
    arr = np.asarray(steps)
    return arr.astype(np.float64) if arr.dtype.kind in "iu" else steps


def loss_curve_figure(steps, train, *, eval_steps=None, eval_values=None,
                      baseline: float | None = None, baseline_label: str = "baseline",
                      ylabel: str = "loss", title: str = "", smooth: int = 1) -> Figure:
    """Training loss against step, optionally a held-out curve and a horizontal baseline.

    Parameters
    ----------
    steps, train : (S,) floats.
    eval_steps, eval_values : (E,) floats, optional.
    baseline : a reference value drawn as a dashed line (e.g. the unigram model).
    smooth : moving-average window for the (noisy) training curve.
    """
    steps = as_float_array("steps", _steps_as_float(steps))  # integer step numbers are fine
    train = as_float_array("train", train)
    dims = check_shape("steps", steps, ("S",))
    check_shape("train", train, ("S",), dims)
    if (eval_steps is None) != (eval_values is None):
        raise ValueError("eval_steps and eval_values must be given together.")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    w = int(smooth)
    ax.plot(steps[w - 1:] if w > 1 and len(train) >= w else steps, _smooth(train, w), lw=1.3,
            label="training batches" + (f" (mean of {w})" if w > 1 else ""))
    if eval_steps is not None:
        es = as_float_array("eval_steps", _steps_as_float(eval_steps))
        ev = as_float_array("eval_values", eval_values)
        check_shape("eval_values", ev, es.shape)
        ax.plot(es, ev, "o-", ms=4, lw=1.5, label="held-out text")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls="--", lw=1, label=baseline_label)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def linear_fit(x, y):
    """Least-squares line ``y = slope * x + intercept`` and its R^2: ``(slope, intercept, r2)``."""
    x = as_float_array("x", x)
    y = as_float_array("y", y)
    dims = check_shape("x", x, ("P",))
    check_shape("y", y, ("P",), dims)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 points to fit a line; got {len(x)}.")
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return float(slope), float(intercept), r2


def scaling_figure(x, ys, *, labels, xlabel: str, ylabels, title: str = "",
                   fit=True) -> Figure:
    """One panel per measured quantity against ``x`` (e.g. sequence length), with a line fit.

    Parameters
    ----------
    x : (P,) floats.
    ys : (C, P) floats, one row per quantity (one panel each).
    labels : C panel titles.
    ylabels : C y-axis labels.
    fit : overlay the least-squares line and print its R^2 in the legend; one bool for
        every panel, or C bools (e.g. a line for an exact count, none for a noisy timing).
    """
    x = as_float_array("x", x)
    Y = as_float_array("ys", ys)
    if Y.ndim == 1:
        Y = Y[None]
    dims = check_shape("x", x, ("P",))
    check_shape("ys", Y, ("C", "P"), dims, hint="One row per quantity, one column per x.")
    if len(labels) != len(Y) or len(ylabels) != len(Y):
        raise ValueError(f"labels and ylabels need one entry per row of ys ({len(Y)}).")
    fits = [bool(fit)] * len(Y) if isinstance(fit, (bool, np.bool_)) else list(fit)
    if len(fits) != len(Y):
        raise ValueError(f"fit must be one bool or one per row of ys ({len(Y)}); got "
                         f"{len(fits)}.")
    fig, axes = plt.subplots(1, len(Y), figsize=(4.6 * len(Y), 3.6), squeeze=False)
    for ax, y, lab, ylab, fit_this in zip(axes[0], Y, labels, ylabels, fits):
        ax.plot(x, y, "o" if fit_this else "o-", ms=5, label="measured")
        if fit_this:
            s, c, r2 = linear_fit(x, y)
            xx = np.linspace(0, x.max(), 50)
            ax.plot(xx, s * xx + c, "-", lw=1, color="grey", label=f"line fit, $R^2$ = {r2:.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylab)
        ax.set_title(lab, fontsize=10)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def temperature_figure(logits, labels, temperatures, *, top: int = 12, title: str = "") -> Figure:
    """Bar charts of ``softmax(logits / kappa)`` for each temperature ``kappa``, one panel each.

    The book writes the sampling temperature as :math:`\\kappa` (``T`` is the sequence
    length); the code calls it ``temperature``.

    Parameters
    ----------
    logits : (K,) floats, e.g. a language model's scores for the next character.
    labels : K strings naming the classes (characters are shown with ``repr``-like escapes).
    temperatures : sequence of positive numbers.
    top : how many classes to show, the most likely at temperature 1 first.
    """
    o = as_float_array("logits", logits)
    dims = check_shape("logits", o, ("K",))
    if len(labels) != dims["K"]:
        raise ValueError(f"labels must have one entry per logit ({dims['K']}); got {len(labels)}.")
    temps = [float(t) for t in temperatures]
    if not temps or any(not t > 0 for t in temps):
        raise ValueError(
            f"temperatures must be a non-empty list of positive numbers; got {temperatures!r}."
        )
    top = min(int(top), dims["K"])
    order = np.argsort(-o)[:top]  # the same classes, in the same order, in every panel
    names = [_show(labels[i]) for i in order]
    fig, axes = plt.subplots(1, len(temps), figsize=(4.2 * len(temps), 3.4), squeeze=False,
                             sharey=True)
    probs = [softmax(o / t) for t in temps]  # the tempered distributions
    ymax = min(1.0, 1.15 * max(float(p[order].max()) for p in probs))
    for ax, t, p in zip(axes[0], temps, probs):
        ax.bar(range(top), p[order], color="#74a9cf")
        ax.set_xticks(range(top), names, fontsize=9)
        ax.set_xlabel(f"next character (top {top} of {dims['K']})")
        ax.set_title(rf"temperature $\kappa$ = {t:g}: top-{top} mass {p[order].sum():.2f}",
                     fontsize=10)
        ax.set_ylim(0, ymax)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("probability")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _show(ch: str) -> str:
    return {" ": "␣", "\n": "\\n", "$": "\\$"}.get(ch, ch)
