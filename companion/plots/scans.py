"""Figures for chapter 12, "Linear recurrences and parallel scans".

Pure functions: numbers in, a new matplotlib ``Figure`` out. No torch.

scan_tree_figure
    Blelloch's up-sweep and down-sweep on T positions, drawn from the schedule the
    scan itself runs (``companion.scratch.scan``)
work_depth_figure
    combines (work) and levels (depth) against T, loop vs scans
speedup_figure
    measured loop/scan time ratios against T, and the cost of one combine against H,
    dense vs diagonal
scan_benchmark_figure
    the stored benchmark: CPU time per element and step of every loop and scan, against
    T and against the number of channels H, compiled loop and bound included; and the
    cost of one combine, dense vs diagonal
lru_result_figure
    the stored LRU-vs-tanh-RNN sweep: test fraction per seed at each length, with the
    constant predictor
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from companion.checks import as_float_array, check_positive_int

__all__ = ["lru_result_figure", "scan_benchmark_figure", "scan_tree_figure", "speedup_figure",
           "work_depth_figure"]

#: One style per way of evaluating the recurrence (colour, marker, line style), shared by
#: every panel: compiled code in solid lines, vectorised scans dashed, interpreted loops
#: dotted.
METHOD_STYLES = {
    "c_triad": ("triad (no dependence, C)", "0.45", "", "-"),
    "c_loop": ("loop, compiled C", "black", "o", "-"),
    "c_blelloch": ("Blelloch, compiled C", "tab:purple", "D", "-"),
    "numpy_blelloch": ("Blelloch, NumPy", "tab:blue", "s", "--"),
    "torch_scan": ("doubling scan, torch", "tab:orange", "^", "--"),
    "numpy_logspace": ("log space, NumPy", "tab:green", "v", "--"),
    "numpy_loop": ("loop, NumPy", "tab:red", "x", ":"),
    "torch_loop": ("loop, torch", "tab:brown", "+", ":"),
}


def scan_tree_figure(T: int = 8) -> Figure:
    """Blelloch's scan on ``T`` positions: one row per level, an arrow per combine.

    Up-sweep levels (blue) build partial compositions of blocks of 2, 4, 8, ...
    elements; down-sweep levels (orange) hand each position the complete prefix to its
    left. Every arrow goes from the position absorbed to the position that absorbs it;
    arrows on one row are independent and run at the same time.
    """
    from companion.scratch.scan import blelloch_schedule

    T = check_positive_int("T", T, minimum=2)
    if T > 32:
        raise ValueError(f"T must be at most 32 to be legible; got {T}.")
    levels = blelloch_schedule(T)
    fig, ax = plt.subplots(figsize=(0.8 * T + 2.5, 0.7 * len(levels) + 1.6))
    colors = {"up": "tab:blue", "down": "tab:orange"}
    for t in range(T):
        ax.plot([t, t], [0, len(levels)], color="0.85", lw=1, zorder=1)
        ax.text(t, len(levels) + 0.35, f"$e_{{{t + 1}}}$", ha="center", va="bottom")
        ax.text(t, -0.45, f"$h^{{({t + 1})}}$", ha="center", va="top")
    for k, lev in enumerate(levels):
        y = len(levels) - k - 0.5
        for left, right in lev["pairs"]:
            ax.annotate("", xy=(right, y - 0.25), xytext=(left, y + 0.25),
                        arrowprops={"arrowstyle": "->", "color": colors[lev["phase"]],
                                    "lw": 1.6}, zorder=3)
            ax.plot([right], [y - 0.25], "o", color=colors[lev["phase"]], ms=5, zorder=4)
        ax.text(-0.8, y, f"{lev['phase']}-sweep, level {k + 1}", ha="right", va="center",
                color=colors[lev["phase"]], fontsize=9)
    work = sum(len(lev["pairs"]) for lev in levels)
    ax.set_title(f"Blelloch's scan on T = {T}: {work} combines in {len(levels)} levels "
                 f"(the loop: {T - 1} in {T - 1})")
    ax.set_xlim(-4.2, T - 0.4)
    ax.set_ylim(-1.2, len(levels) + 1.0)
    ax.axis("off")
    fig.tight_layout()
    return fig


def work_depth_figure(lengths, counts: dict) -> Figure:
    """Work (combines) and depth (levels) against the length, log-log, one line per method.

    ``counts``: ``{method: (combines array, levels array)}`` measured on ``lengths``.
    """
    T = as_float_array("lengths", lengths, allow_int=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (work, depth) in counts.items():
        work = as_float_array(f"counts[{name!r}] work", work, allow_int=True)
        depth = as_float_array(f"counts[{name!r}] depth", depth, allow_int=True)
        axes[0].loglog(T, work, "o-", ms=3, label=name)
        axes[1].loglog(T, depth, "o-", ms=3, label=name)
    axes[0].set(xlabel="sequence length T", ylabel="combines (work)", title="Work")
    axes[1].set(xlabel="sequence length T", ylabel="dependent levels (depth)", title="Depth")
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def speedup_figure(lengths, ratios: dict, H_values, dense, diagonal, *, channels: int) -> Figure:
    """Left: loop time / scan time against T (above 1: the scan is faster).
    Right: CPU time of one combine against the state size H, dense vs diagonal, with
    reference slopes H^3 and H."""
    T = as_float_array("lengths", lengths, allow_int=True)
    Hs = as_float_array("H_values", H_values, allow_int=True)
    dense = as_float_array("dense", dense)
    diagonal = as_float_array("diagonal", diagonal)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in ratios.items():
        axes[0].loglog(T, as_float_array(name, r), "o-", ms=3, label=name)
    axes[0].axhline(1.0, color="black", lw=1, ls="--")
    axes[0].text(T[0], 1.08, "break-even", fontsize=9)
    axes[0].set(xlabel="sequence length T", ylabel="loop time / scan time",
                title=f"Speed-up over the loop ({channels} channels, CPU time)")
    axes[0].legend(fontsize=9)
    axes[1].loglog(Hs, dense * 1e6, "o-", label="dense: $A_2A_1$, $A_2b_1+b_2$")
    axes[1].loglog(Hs, diagonal * 1e6, "s-", label="diagonal: $a_2a_1$, $a_2b_1+b_2$")
    ref = Hs[-3:]
    axes[1].loglog(ref, dense[-1] * 1e6 * (ref / ref[-1]) ** 3, "k:", label="slope 3")
    axes[1].loglog(ref, diagonal[-1] * 1e6 * (ref / ref[-1]), "k--", label="slope 1")
    axes[1].set(xlabel="state size H", ylabel="CPU time per combine (µs)",
                title="Cost of one combine")
    axes[1].legend(fontsize=9)
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def scan_benchmark_figure(bench: dict) -> Figure:
    """The stored ``lru_scan_benchmark``: CPU time per element and step (time / (T H)),
    log-log, of every method against T (left, at the stored number of channels) and
    against H (middle, at T = 4096), and the time of one combine against the state size,
    dense vs diagonal (right). Methods absent from the run (no compiler) are left out."""
    if not isinstance(bench, dict) or not {"lengths", "widths", "combine", "H"} <= set(bench):
        raise ValueError("bench must be the dict of load_results('lru_scan_benchmark'); "
                         f"got {type(bench).__name__} without its keys.")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    H0 = bench["H"]
    T0 = bench["widths"][0]["T"]
    for ax, rows, key, label in [(axes[0], bench["lengths"], "T", "sequence length T"),
                                 (axes[1], bench["widths"], "H", "channels H")]:
        x = np.array([r.get(key, H0) for r in rows], dtype=float)
        for m, (name, color, marker, ls) in METHOD_STYLES.items():
            if any(r.get(m) is None for r in rows):
                continue
            per = np.array([r[m] / (r["T"] * r.get("H", H0)) for r in rows]) * 1e9
            ax.loglog(x, per, color=color, marker=marker or None, ls=ls, ms=4,
                      lw=2.2 if m == "c_loop" else 1.4, label=name)
        ax.set(xlabel=label, ylabel="CPU ns per element and step")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_title(f"Against the length ({H0} channels)")
    axes[1].set_title(f"Against the width (T = {T0})")
    Hs = np.array([r["H"] for r in bench["combine"]], dtype=float)
    dense = np.array([r["dense"] for r in bench["combine"]]) * 1e6
    diag = np.array([r["diagonal"] for r in bench["combine"]]) * 1e6
    axes[2].loglog(Hs, dense, "o-", color="tab:red", label="dense: $A_2A_1$, $A_2b_1+b_2$")
    axes[2].loglog(Hs, diag, "s--", color="tab:blue", label="diagonal: $a_2a_1$, $a_2b_1+b_2$")
    ref = Hs[-3:]
    axes[2].loglog(ref, dense[-1] * (ref / ref[-1]) ** 3, "k:", label="slope 3")
    axes[2].loglog(ref, diag[-1] * (ref / ref[-1]), "k-.", label="slope 1")
    axes[2].set(xlabel="state size H", ylabel="CPU µs per combine", title="Cost of one combine")
    axes[2].grid(True, which="major", alpha=0.3)
    axes[2].legend(fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    return fig


def lru_result_figure(results: dict) -> Figure:
    """The stored ``lru_sweep``: each seed's test fraction at the chosen learning rate,
    per model and length, with the 0.8 success line and the constant predictor."""
    if not isinstance(results, dict) or "summary" not in results:
        raise ValueError("results must be the dict of load_results('lru_sweep').")
    lengths = results["config"]["lengths"]
    models = list(results["config"]["models"])
    fig, axes = plt.subplots(1, len(lengths), figsize=(5 * len(lengths), 3.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, L in zip(axes, lengths):
        for i, m in enumerate(models):
            cell = next(s for s in results["summary"] if s["model"] == m and s["length"] == L)
            fr = [v if v is not None else 0.0 for v in cell["test_fraction"]]
            ax.plot(np.full(len(fr), i) + np.linspace(-0.15, 0.15, len(fr)), fr, "o",
                    label=None)
            ax.text(i, 1.04, f"{cell['k']}/{cell['n']}", ha="center")
        base = next(b for b in results["baseline"] if b["length"] == L)["test_fraction"]
        ax.axhline(base, color="gray", ls=":", label="constant predictor")
        ax.axhline(results["config"]["success_fraction"], color="black", ls="--", lw=1,
                   label="success threshold")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels([results["config"]["models"][m]["label"].replace(" + ", "\n+ ")
                            for m in models])
        ax.set(title=f"adding problem, T = {L}", ylim=(0, 1.12))
        ax.legend(loc="center right", fontsize=8)
    axes[0].set_ylabel("test fraction solved (|error| < 0.04)")
    fig.tight_layout()
    return fig
