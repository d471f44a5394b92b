"""Figures of chapter 9: attention heatmaps, accuracy against length, the cost of attention.

Pure functions: arrays in, a new :class:`matplotlib.figure.Figure` out; no torch.
Heatmaps put the source tokens on the x axis and the output tokens on the y axis
(row ``t`` is output step ``t``'s weights over the source), as in Bahdanau et al.'s
alignment figures transposed to read top-down.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from companion.checks import as_float_array

__all__ = ["attention_heatmap", "attention_heatmaps_figure", "attention_step_figure",
           "cost_figure", "length_accuracy_figure"]


def _check_tokens(name, tokens, n):
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"{name} must be a list of token strings; got {type(tokens).__name__}.")
    if len(tokens) != n:
        raise ValueError(f"{name} must have {n} tokens, one per heatmap "
                         f"{'column' if name == 'src_tokens' else 'row'}; got {len(tokens)}.")


def _draw_heatmap(ax, w, src_tokens, tgt_tokens, gold, title, fontsize):
    L, S = w.shape
    im = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), src_tokens, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(L), tgt_tokens, fontsize=fontsize)
    ax.set_xlabel("source token (attended to)")
    ax.set_ylabel("output token (being written)")
    for i, j in gold or ():
        if 0 <= i < S and 0 <= j < L:
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, lw=1.6,
                                   edgecolor="tab:orange"))
    if title:
        ax.set_title(title, fontsize=10)
    return im


def attention_heatmap(weights, src_tokens, tgt_tokens, *, gold=None, title: str = "",
                      fontsize: int = 9) -> Figure:
    """One heatmap of weights (L, S), tokens on both axes.

    ``gold``: pairs ``(source position, output position)`` outlined in orange (the gold
    alignment, where known).
    """
    w = as_float_array("weights", weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be (L, S) for one sentence; got {w.shape}. "
                         f"Pick one row of the batch: weights[n, :L_n, :S_n].")
    _check_tokens("src_tokens", src_tokens, w.shape[1])
    _check_tokens("tgt_tokens", tgt_tokens, w.shape[0])
    fig, ax = plt.subplots(figsize=(1.2 + 0.32 * w.shape[1], 1.2 + 0.3 * w.shape[0]))
    im = _draw_heatmap(ax, w, src_tokens, tgt_tokens, gold, title, fontsize)
    fig.colorbar(im, ax=ax, fraction=0.04, label="weight")
    fig.tight_layout()
    return fig


def attention_heatmaps_figure(panels, *, fontsize: int = 9, gold_label: bool = True) -> Figure:
    """Several heatmaps side by side; ``panels`` is a list of dicts with keys
    ``weights`` (L, S), ``src`` and ``tgt`` (token lists), optional ``gold`` and ``title``."""
    if not isinstance(panels, (list, tuple)) or not panels:
        raise ValueError("panels must be a non-empty list of dicts with keys weights, src, tgt.")
    ws = []
    for k, p in enumerate(panels):
        if not isinstance(p, dict) or not {"weights", "src", "tgt"} <= set(p):
            raise ValueError(f"panels[{k}] must be a dict with keys weights, src, tgt "
                             f"(and optionally gold, title); got {p!r:.80}.")
        w = as_float_array(f"panels[{k}]['weights']", p["weights"])
        if w.ndim != 2:
            raise ValueError(f"panels[{k}]['weights'] must be (L, S); got {w.shape}.")
        _check_tokens("src_tokens", list(p["src"]), w.shape[1])
        _check_tokens("tgt_tokens", list(p["tgt"]), w.shape[0])
        ws.append(w)
    widths = [1.0 + 0.3 * w.shape[1] for w in ws]
    height = 1.6 + 0.28 * max(w.shape[0] for w in ws)
    fig, axes = plt.subplots(1, len(ws), figsize=(sum(widths) + 1.0, height),
                             gridspec_kw={"width_ratios": [w.shape[1] + 2 for w in ws]},
                             squeeze=False)
    for ax, w, p in zip(axes[0], ws, panels):
        im = _draw_heatmap(ax, w, list(p["src"]), list(p["tgt"]), p.get("gold"),
                           p.get("title", ""), fontsize)
    if gold_label and any(p.get("gold") for p in panels):
        axes[0][-1].plot([], [], "s", mfc="none", mec="tab:orange", label="gold alignment")
        axes[0][-1].legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.06))
    fig.colorbar(im, ax=list(axes[0]), fraction=0.02, label="attention weight")
    return fig


def length_accuracy_figure(lengths, curves, *, train_range=None, baseline=None,
                           ylabel: str = "test exact match", title: str = "") -> Figure:
    """Accuracy against source length: ``curves`` maps a label to ``(median, low, high)``
    arrays over ``lengths`` (medians as lines, min-max as bands)."""
    x = as_float_array("lengths", lengths, allow_int=True)
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict label -> (median, low, high).")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if train_range is not None:
        ax.axvspan(train_range[0] - 0.5, train_range[1] + 0.5, color="0.92",
                   label="training lengths")
    for i, (label, (med, lo, hi)) in enumerate(curves.items()):
        med = as_float_array(f"curves[{label!r}] median", med, allow_int=True)
        if med.shape != x.shape:
            raise ValueError(f"curves[{label!r}] has {med.shape[0]} points; lengths has "
                             f"{x.shape[0]}.")
        ax.plot(x, med, "o-", color=f"C{i}", label=label)
        ax.fill_between(x, as_float_array("low", lo, allow_int=True),
                        as_float_array("high", hi, allow_int=True),
                        color=f"C{i}", alpha=0.2)
    if baseline is not None:
        ax.plot(x, as_float_array("baseline", baseline, allow_int=True), ":", color="0.3",
                label="trivial baseline")
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


_STYLES = ("o-", "s--", "^-.", "D:")


def cost_figure(lengths, series, *, ylabels, title: str = "", slopes=(2,),
                xlabel: str = "length (source = output)") -> Figure:
    """Log-log panels of cost against length; ``series`` is a list (one per panel) of dicts
    label -> values, ``ylabels`` one label per panel. Each series has its own colour and
    marker/line style; dotted guides of the given ``slopes`` (default: slope 2) pass
    through the first series' last point."""
    x = as_float_array("lengths", lengths, allow_int=True)
    fig, axes = plt.subplots(1, len(series), figsize=(4.0 * len(series), 3.4), squeeze=False)
    for ax, panel, yl in zip(axes[0], series, ylabels):
        for i, (label, ys) in enumerate(panel.items()):
            ys = as_float_array(label, ys, allow_int=True)
            ax.loglog(x, ys, _STYLES[i % len(_STYLES)], color=f"C{i}", label=label)
        first = as_float_array("y", list(panel.values())[0], allow_int=True)
        for k, slope in enumerate(slopes):
            ax.loglog(x, first[-1] * (x / x[-1]) ** slope, ":", color=("0.4", "0.65")[k % 2],
                      label=f"slope {slope:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(yl)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def attention_step_figure(weights, *, src_tokens, query_label: str = r"$h'^{(t-1)}$") -> Figure:
    """A diagram of one attention step: encoder states, their weights (bar heights, also
    printed) and the context vector they average into."""
    w = as_float_array("weights", weights)
    if w.ndim != 1:
        raise ValueError(f"weights must be (S,) for one step; got {w.shape}.")
    _check_tokens("src_tokens", list(src_tokens), w.shape[0])
    S = w.shape[0]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * S, 3.6))
    xs = np.arange(S)
    ax.bar(xs, w, width=0.5, bottom=1.05, color="tab:orange", alpha=0.8)
    for j in range(S):
        ax.text(j, 0.5, rf"$h^{{({j + 1})}}$", ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round", fc="#cfe2f3", ec="black"))
        ax.text(j, 0.0, src_tokens[j], ha="center", va="center", fontsize=10)
        ax.text(j, 1.1 + w[j], rf"$\alpha={w[j]:.2f}$", ha="center", fontsize=8)
        ax.annotate("", xy=((S - 1) / 2, 2.75), xytext=(j, 1.35 + w[j]),
                    arrowprops=dict(arrowstyle="-|>", color="0.5", lw=0.6 + 3 * w[j]))
    ax.text((S - 1) / 2, 2.95, r"context $C^{(t)}=\sum_j \alpha_{t,j}\, h^{(j)}$",
            ha="center", fontsize=11, bbox=dict(boxstyle="round", fc="#d9ead3", ec="black"))
    ax.text(-0.9, 1.55, f"query\n{query_label}", ha="center", fontsize=10,
            bbox=dict(boxstyle="round", fc="#fde9d9", ec="black"))
    # the query is scored against every encoder state; the softmax of the scores gives
    # the weights (the bars)
    ax.annotate("", xy=(-0.3, 0.5), xytext=(-0.9, 1.45),
                arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=1.2,
                                connectionstyle="arc3,rad=0.25"))
    ax.annotate("", xy=(-0.3, 1.35), xytext=(-0.45, 0.75),
                arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=1.2, ls="--"))
    ax.text(-0.9, 2.35, "scores\n" + r"$e_{t,j}=\mathrm{score}(h'^{(t-1)}, h^{(j)})$" + "\nthen softmax",
            ha="center", fontsize=8, color="tab:red")
    ax.text(-0.9, 1.05, "weights\n" + r"$\alpha_{t,j}$", ha="center", va="top", fontsize=9,
            color="tab:orange")
    ax.set_xlim(-1.5, S - 0.4)
    ax.set_ylim(-0.3, 3.3)
    ax.axis("off")
    fig.tight_layout()
    return fig
