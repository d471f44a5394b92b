"""Figures of chapter 12's section on learning online (RTRL and UORO)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["cost_figure", "online_curves_figure", "uoro_variance_figure"]

_COLORS = {"rtrl": "C0", "uoro": "C1", "tbptt2": "C2", "tbptt8": "C3", "reset": "C4",
           "bptt": "C2"}


def _ticks(ax, values):
    """Label a log x-axis with the plotted values themselves, as plain integers."""
    ax.set_xticks(list(values))
    ax.set_xticks([], minor=True)
    ax.set_xticklabels([str(v) for v in values])


def _check_same_length(**arrays):
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"these arguments must have the same length: {lengths}.")


def cost_figure(sizes, rtrl_floats, uoro_floats, lengths, bptt_floats, H_bptt):
    """Floats carried by RTRL and UORO against H (left), stored by BPTT against T (right).

    ``sizes`` and the two float counts have one entry per hidden size; ``lengths`` and
    ``bptt_floats`` one per sequence length, at hidden size ``H_bptt``.
    """
    _check_same_length(sizes=sizes, rtrl_floats=rtrl_floats, uoro_floats=uoro_floats)
    _check_same_length(lengths=lengths, bptt_floats=bptt_floats)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    a.loglog(sizes, rtrl_floats, "o-", color=_COLORS["rtrl"], label="RTRL: influence matrix")
    a.loglog(sizes, uoro_floats, "s-", color=_COLORS["uoro"], label="UORO: two vectors")
    a.set_xlabel("hidden size H")
    a.set_ylabel("floats carried from step to step")
    a.set_title("online methods: independent of the length")
    _ticks(a, sizes)
    a.legend()
    b.loglog(lengths, bptt_floats, "^-", color=_COLORS["bptt"], label=f"BPTT, H = {H_bptt}")
    b.set_xlabel(r"sequence length $\tau$")
    b.set_ylabel("floats stored for the backward pass")
    b.set_title("BPTT: grows with the length")
    b.legend()
    fig.tight_layout()
    return fig


def online_curves_figure(curves, block, baseline, labels=None, floor=1e-4):
    """Online loss per block of steps: median over seeds (line) and min-max (band).

    ``curves`` maps a method name to an array (seeds, blocks) of mean losses per block of
    ``block`` steps; ``baseline`` is the trivial predictor's loss (dashed line). The
    vertical axis is logarithmic; losses below ``floor`` are drawn at ``floor``.
    """
    if not curves:
        raise ValueError("curves must map at least one method name to (seeds, blocks) losses.")
    labels = labels or {}
    fig, ax = plt.subplots(figsize=(9.0, 3.8))
    for name, c in curves.items():
        c = np.asarray(c, dtype=float)
        if c.ndim != 2:
            raise ValueError(f"curves[{name!r}] must be (seeds, blocks); got shape {c.shape}.")
        c = np.maximum(c, floor)
        steps = block * (np.arange(c.shape[1]) + 1)
        color = _COLORS.get(name)
        ax.plot(steps, np.median(c, axis=0), color=color, label=labels.get(name, name))
        ax.fill_between(steps, c.min(axis=0), c.max(axis=0), color=color, alpha=0.2)
    ax.axhline(baseline, color="k", ls="--", lw=1, label="uniform guess")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 3.0)
    ax.set_xlabel("step of the stream")
    ax.set_ylabel(f"mean loss per step (nats)\nblocks of {block}, floor {floor:g}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def uoro_variance_figure(sizes, var_H, lengths, var_T, H_fixed, T_fixed):
    """UORO's relative variance ``E|g~ - g|^2 / |g|^2`` against H (left) and T (right)."""
    _check_same_length(sizes=sizes, var_H=var_H)
    _check_same_length(lengths=lengths, var_T=var_T)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    a.loglog(sizes, var_H, "o-", color=_COLORS["uoro"])
    a.set_xlabel("hidden size H")
    a.set_ylabel("relative variance of one estimate")
    a.set_title(rf"$\tau$ = {T_fixed}")
    b.loglog(lengths, var_T, "o-", color=_COLORS["uoro"])
    b.set_xlabel(r"sequence length $\tau$")
    b.set_title(f"H = {H_fixed}")
    _ticks(a, sizes)
    _ticks(b, lengths)
    for ax in (a, b):
        ax.axhline(1.0, color="k", ls=":", lw=1)
    fig.tight_layout()
    return fig
