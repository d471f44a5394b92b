"""Figures for chapter 8 (the encoder-decoder): the unrolled graph and length curves.

Pure functions: numbers and strings in, a new matplotlib ``Figure`` out. No torch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array

__all__ = ["encoder_decoder_figure", "length_curves_figure"]


def _node(ax, xy, text, color, r=0.3):
    ax.add_patch(plt.Circle(xy, r, facecolor=color, edgecolor="black", zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=12, zorder=4)


def _arrow(ax, a, b, color="black", shrink=0.32, **kw):
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / np.linalg.norm(b - a)
    ax.annotate("", xy=b - shrink * d, xytext=a + shrink * d,
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.3, **kw}, zorder=2)


def _check_tokens(name, tokens):
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens) or not tokens:
        raise TypeError(f"{name} must be a non-empty list of token strings; got {tokens!r}.")
    return list(tokens)


def encoder_decoder_figure(src, tgt, *, context: str = "init") -> Figure:
    """The unrolled encoder-decoder on one pair of token lists.

    Encoder states ``h`` (blue) read the source; the last one is the context ``C``; decoder
    states ``h'`` (green) read ``<bos>`` and then their own previous output. With
    ``context="init"`` C enters the first decoder state only; with ``"input"`` it is fed
    to every decoder step (dashed); ``"both"`` draws both.
    """
    src = _check_tokens("src", src)
    tgt = _check_tokens("tgt", tgt) + ["<eos>"]
    if context not in ("init", "input", "both"):
        raise ValueError(f"context must be 'init', 'input' or 'both'; got {context!r}.")
    S, L = len(src), len(tgt)
    gap = 1.3
    xs_enc = [k * gap for k in range(S)]
    x_c = S * gap + 0.4
    xs_dec = [x_c + 1.4 + k * gap for k in range(L)]
    fig, ax = plt.subplots(figsize=(0.95 * (S + L) + 2.5, 4.0))
    for k, (x, tok) in enumerate(zip(xs_enc, src)):
        ax.text(x, 0, tok, ha="center", va="center", fontsize=13)
        _node(ax, (x, 1.3), f"$h^{{({k + 1})}}$", "#cfe3f7")
        _arrow(ax, (x, 0.15), (x, 1.3), shrink=0.3)
        if k:
            _arrow(ax, (xs_enc[k - 1], 1.3), (x, 1.3), "tab:blue")
    _node(ax, (x_c, 1.3), "$C$", "#f3d2e4", r=0.34)
    _arrow(ax, (xs_enc[-1], 1.3), (x_c, 1.3), "tab:purple")
    inputs = ["<bos>"] + tgt[:-1]
    for k, (x, tok, inp) in enumerate(zip(xs_dec, tgt, inputs)):
        ax.text(x, 0, inp, ha="center", va="center", fontsize=12, color="0.35")
        _node(ax, (x, 1.3), f"$h'^{{({k + 1})}}$", "#d8f0d2")
        _arrow(ax, (x, 0.15), (x, 1.3), shrink=0.3)
        ax.text(x, 2.7, tok, ha="center", va="center", fontsize=13)
        _arrow(ax, (x, 1.3), (x, 2.6), shrink=0.3)
        if k:
            _arrow(ax, (xs_dec[k - 1], 1.3), (x, 1.3), "tab:green")
            _arrow(ax, (xs_dec[k - 1] + 0.15, 2.55), (x - 0.2, 0.15), "0.6", shrink=0.05,
                   linestyle=":")
        if context in ("input", "both"):
            ax.annotate("", xy=(x - 0.12, 1.58), xytext=(x_c + 0.1, 1.62),
                        arrowprops={"arrowstyle": "->", "color": "tab:purple", "lw": 0.9,
                                    "linestyle": "--",
                                    "connectionstyle": f"arc3,rad=-{0.25 + 0.02 * k}"},
                        zorder=1)
    if context in ("init", "both"):
        _arrow(ax, (x_c, 1.3), (xs_dec[0], 1.3), "tab:purple")
    ax.text(np.mean(xs_enc), -0.6, "encoder", ha="center", color="tab:blue", fontsize=13)
    ax.text(np.mean(xs_dec), -0.6, "decoder", ha="center", color="tab:green", fontsize=13)
    ax.set_xlim(-0.8, xs_dec[-1] + 0.8)
    ax.set_ylim(-0.9, 3.4 if context == "init" else 3.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"context as the decoder's {'initial state' if context == 'init' else ''}"
                 f"{'input at every step' if context == 'input' else ''}"
                 f"{'initial state and input at every step' if context == 'both' else ''}",
                 fontsize=13)
    fig.tight_layout()
    return fig


def length_curves_figure(lengths, curves: dict, *, train_range=None, baseline=None,
                         metrics=("token accuracy", "exact match"), styles=None) -> Figure:
    """Accuracy against source length, one line per model (median over seeds, min-max band).

    ``curves`` maps a label to a dict ``{metric: array (seeds, len(lengths))}`` for each of
    ``metrics`` (one panel per metric). ``train_range`` ``(lo, hi)`` shades the lengths
    seen in training; ``baseline`` ``{metric: array (len(lengths),)}`` is drawn dotted.
    ``styles`` (optional) maps a label to matplotlib line options (``color``,
    ``linestyle``, ``marker``) that replace the default colour and ``"o-"`` for that line.
    """
    if styles is not None and not isinstance(styles, dict):
        raise TypeError(f"styles must be a dict {{label: line options}} or None; got "
                        f"{type(styles).__name__}.")
    unknown = sorted(set(styles or {}) - set(curves if isinstance(curves, dict) else {}))
    if unknown:
        raise ValueError(f"styles has labels that are not in curves: {unknown}; use the "
                         f"labels of curves.")
    lengths = as_float_array("lengths", lengths, allow_int=True)
    if lengths.ndim != 1 or len(lengths) < 2:
        raise ValueError(f"lengths must be 1-D with at least two entries; got shape "
                         f"{lengths.shape}.")
    if not isinstance(curves, dict) or not curves:
        raise TypeError("curves must be a non-empty dict {label: {metric: (seeds, lengths)}}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, len(curves)))
    for ax, metric in zip(axes[0], metrics):
        if train_range is not None:
            ax.axvspan(train_range[0] - 0.5, train_range[1] + 0.5, color="0.92", zorder=0,
                       label="trained lengths")
        for colour, (label, per_metric) in zip(colours, curves.items()):
            if metric not in per_metric:
                raise ValueError(f"curves[{label!r}] has no entry for metric {metric!r}.")
            vals = as_float_array(f"curves[{label!r}][{metric!r}]", per_metric[metric])
            if vals.ndim != 2 or vals.shape[1] != len(lengths):
                raise ValueError(f"curves[{label!r}][{metric!r}] must be (seeds, "
                                 f"{len(lengths)}); got {vals.shape}.")
            med = np.median(vals, axis=0)
            style = {"color": colour, "linestyle": "-", "marker": "o",
                     **((styles or {}).get(label) or {})}
            ax.fill_between(lengths, vals.min(0), vals.max(0), color=style["color"], alpha=0.2)
            ax.plot(lengths, med, ms=3.5, label=label, **style)
        if baseline is not None and metric in baseline:
            ax.plot(lengths, as_float_array("baseline", baseline[metric]), ":", color="0.3",
                    label="positional majority")
        ax.set_xlabel("source length (tokens)")
        ax.set_ylabel(f"test {metric}")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
