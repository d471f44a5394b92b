"""Figures for chapter 12's first page: pointer networks and zoneout.

Pure functions: numbers in, a new matplotlib ``Figure`` out. No torch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array

__all__ = ["pointer_diagram", "pointer_attention_figure", "regulariser_curves_figure",
           "regulariser_rates_figure", "sort_length_figure"]

_MODEL_COLORS = {"pointer": "tab:blue", "vocab": "tab:orange", "none": "tab:gray",
                 "zoneout": "tab:green", "dropout": "tab:purple"}


def _box(ax, xy, text, color, w=0.8, h=0.6):
    ax.add_patch(plt.Rectangle((xy[0] - w / 2, xy[1] - h / 2), w, h, facecolor=color,
                               edgecolor="black", zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=4)


def pointer_diagram(values=(0.7, 0.1, 0.4)) -> Figure:
    """Two decoders side by side: the pointer's output is a distribution over the input
    positions (arrows back into the input), the vocabulary decoder's over a fixed list
    of values (a softmax box of size K)."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n < 2:
        raise ValueError(f"values must hold at least 2 numbers; got {n}.")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, kind in zip(axes, ("pointer", "vocab")):
        for j, v in enumerate(vals):
            _box(ax, (j, 0), f"{v:g}", "#eeeeee")
            _box(ax, (j, 1.1), f"$h^{{({j + 1})}}$", "#cfe3f7")
            ax.annotate("", xy=(j, 0.8), xytext=(j, 0.3),
                        arrowprops={"arrowstyle": "->", "lw": 1.2})
            if j:
                ax.annotate("", xy=(j - 0.4, 1.1), xytext=(j - 0.6, 1.1),
                            arrowprops={"arrowstyle": "->", "lw": 1.2})
        d = (n + 0.6, 1.1)
        _box(ax, d, "$h'^{(i)}$", "#fbd9b5")
        ax.annotate("", xy=(d[0] - 0.4, 1.1), xytext=(n - 0.6, 1.1),
                    arrowprops={"arrowstyle": "->", "lw": 1.2})
        order = np.argsort(vals)
        pick = int(order[0])
        if kind == "pointer":
            for j in range(n):
                ax.annotate("", xy=(j, -0.32), xytext=(d[0], 0.8),
                            arrowprops={"arrowstyle": "->", "color": "tab:blue",
                                        "lw": 3.0 if j == pick else 0.8,
                                        "connectionstyle": "arc3,rad=-0.45"})
            ax.text(d[0] + 0.6, 0.3, "output: softmax over the\n"
                    f"{n} input positions\n(here it points at {vals[pick]:g})",
                    fontsize=10, color="tab:blue", ha="left", va="center")
            ax.set_title("pointer network: attention IS the output")
        else:
            _box(ax, (d[0], 2.5), "softmax over K values", "#d8f0d2", w=2.4)
            ax.annotate("", xy=(d[0], 2.2), xytext=(d[0], 1.4),
                        arrowprops={"arrowstyle": "->", "lw": 1.2})
            for j in range(n):
                ax.annotate("", xy=(d[0] - 0.35, 1.25), xytext=(j + 0.2, 1.4),
                            arrowprops={"arrowstyle": "->", "color": "tab:orange",
                                        "lw": 0.8, "connectionstyle": "arc3,rad=-0.3"})
            ax.text(d[0] - 0.9, 3.1, "attention only builds a context $C^{(i)}$;\n"
                    "the output is a class out of a fixed list",
                    fontsize=10, color="tab:orange", ha="center", va="bottom")
            ax.set_title("attention decoder with a vocabulary")
        ax.set_xlim(-0.8, n + 3.2)
        ax.set_ylim(-1.6, 3.8)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    return fig


def sort_length_figure(lengths, scores: dict, *, baseline=None, train_max=None) -> Figure:
    """Exact match and per-position accuracy against length, one curve per model.

    Parameters
    ----------
    lengths : (P,) test lengths.
    scores : ``{label: (exact, position)}`` with each an array (P, S) over S seeds; the
        curve is the median, the band the min-max.
    baseline : optional ``(exact (P,), position (P,))`` of the trivial answer.
    train_max : optional longest training length (the region beyond it is shaded).
    """
    L = as_float_array("lengths", lengths, allow_int=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    for k, (ax, what) in enumerate(zip(axes, ("exact match (whole sequence)",
                                              "per-position accuracy"))):
        for label, pair in scores.items():
            arr = as_float_array(f"scores[{label!r}]", pair[k])
            if arr.ndim != 2 or arr.shape[0] != L.shape[0]:
                raise ValueError(f"scores[{label!r}] must hold two (P, S) arrays with "
                                 f"P={L.shape[0]}; got {arr.shape}.")
            color = _MODEL_COLORS.get(label.split()[0], None)
            ax.plot(L, np.median(arr, 1), "o-", color=color, label=label)
            ax.fill_between(L, arr.min(1), arr.max(1), color=color, alpha=0.2)
        if baseline is not None:
            ax.plot(L, as_float_array("baseline", baseline[k], allow_int=True), "s:", color="gray",
                    label="input order (baseline)")
        if train_max is not None:
            ax.axvspan(float(train_max) + 0.5, L.max() + 1, color="0.92", zorder=0)
            ax.text(float(train_max) + 1, 1.04, "longer than any training sequence",
                    fontsize=9, va="bottom")
        ax.set_xlabel("sequence length $n$")
        ax.set_ylabel(what)
        ax.set_ylim(-0.02, 1.12)
        ax.set_xlim(L.min() - 1, L.max() + 1)
    axes[1].legend(loc="lower left")
    fig.tight_layout()
    return fig


def pointer_attention_figure(probs, inputs, outputs) -> Figure:
    """The pointer's output distribution as a grid: row i = output step, column j = input.

    probs : (n_out, n_in) probabilities; inputs / outputs : the numbers, used as labels.
    """
    p = as_float_array("probs", probs)
    if p.ndim != 2 or p.shape != (len(outputs), len(inputs)):
        raise ValueError(f"probs must be (len(outputs), len(inputs)) = ({len(outputs)}, "
                         f"{len(inputs)}); got {p.shape}.")
    fig, ax = plt.subplots(figsize=(0.45 * len(inputs) + 2.5, 0.45 * len(outputs) + 1.8))
    im = ax.imshow(p, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(inputs)), [str(v) for v in inputs])
    ax.set_yticks(range(len(outputs)), [str(v) for v in outputs])
    ax.set_xlabel("input (position j, labelled by its number)")
    ax.set_ylabel("output step i (labelled by the number emitted)")
    fig.colorbar(im, ax=ax, label="probability of pointing at j")
    fig.tight_layout()
    return fig


def regulariser_curves_figure(steps, curves: dict, *, train_curves=None) -> Figure:
    """Held-out bits per character against training step, one curve per regulariser
    (median over seeds, min-max band); optionally the training-slice curves dashed.

    curves / train_curves : ``{label: array (S, E)}`` for E evaluation steps.
    """
    st = as_float_array("steps", steps, allow_int=True)
    fig, ax = plt.subplots(figsize=(7.5, 4.3))
    for label, arr in curves.items():
        a = as_float_array(f"curves[{label!r}]", arr)
        if a.ndim != 2 or a.shape[1] != st.shape[0]:
            raise ValueError(f"curves[{label!r}] must be (S, E) with E={st.shape[0]}; got "
                             f"{a.shape}.")
        color = _MODEL_COLORS.get(label.split()[0], None)
        ax.plot(st, np.median(a, 0), "-", color=color, label=f"{label}: held out")
        ax.fill_between(st, a.min(0), a.max(0), color=color, alpha=0.2)
        if train_curves is not None and label in train_curves:
            t = as_float_array(f"train_curves[{label!r}]", train_curves[label])
            ax.plot(st, np.median(t, 0), "--", color=color, label=f"{label}: training slice")
    ax.set_xlabel("training step")
    ax.set_ylabel("bits per character")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def regulariser_rates_figure(rates: dict, scores: dict, *, none=None) -> Figure:
    """Validation bits per character against the regulariser's rate (median over seeds at
    each rate's best learning rate, min-max bars); ``none``: the unregularised median."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, r in rates.items():
        r = as_float_array(f"rates[{label!r}]", r, allow_int=True)
        s = as_float_array(f"scores[{label!r}]", scores[label])
        if s.ndim != 2 or s.shape[0] != r.shape[0]:
            raise ValueError(f"scores[{label!r}] must be (R, S) with R={r.shape[0]}; got "
                             f"{s.shape}.")
        med = np.median(s, 1)
        ax.errorbar(r, med, yerr=[med - s.min(1), s.max(1) - med], fmt="o-", capsize=3,
                    color=_MODEL_COLORS.get(label, None), label=label)
    if none is not None:
        ax.axhline(float(none), ls=":", color="gray", label="no regulariser")
    ax.set_xlabel("rate (zoneout probability $z$ or dropout probability $p$)")
    ax.set_ylabel("validation bits per character")
    ax.legend()
    fig.tight_layout()
    return fig
