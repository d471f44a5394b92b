"""Pointer network against a vocabulary decoder on sorting: length and density apart, and
the real-valued setting (chapter 12).

Run from the repository root::

    .venv/bin/python -m experiments.pointer_density_sweep    # writes pointer_density_sweep.json

In ``pointer_sweep`` every sequence draws from the same 40 numbers, so a longer sequence
is also a denser one (the gaps between sorted neighbours shrink). Here the two are set
apart. **Integer arms**: numbers from ``{0..K-1}``, ``K = 150``; one in five (2, 7, ...)
is held out, leaving 120. Each sequence of length ``n`` is drawn from its own run of
``W`` consecutive allowed numbers (:func:`companion.nn.pointer.sort_task` with
``window=W``, the run's start uniform); its *density* is ``n / W``. Training: lengths 5
to 10 (a new one each step), ``W = 4n`` (density 0.25 at every length), fresh batches of
64, 2000 Adam steps, gradient norm clipped at 1. Test cells of 500 sequences: density
0.25 at n = 5, 10, 15, 20, 30 (``W`` grows with ``n``: the gaps stay those of training,
only the length changes); density 0.5 at the same lengths; density 0.77 (``W = 13``) at
n = 10, a training length. Unseen numbers: lengths 5 and 10 drawn from runs of ``5n``
consecutive numbers of all 150 (the same span and spacing as in training), scored also at
the output positions whose answer is a held-out number. Models (hidden size 32, same
encoder, decoder and attention as ``pointer_sweep``): ``pointer`` and ``vocab`` see each
number as its value and its one-hot code; ``pointer_value`` sees the value alone, so a
held-out number reaches it through the same single input weight as every other number.
**Real arm** (``pointer_real``, Vinyals et al.'s setting): numbers uniform in [0, 1),
value alone, no vocabulary possible; the same training lengths, steps and batches, test
at n = 5, 10, 15, 20, 30 (here length and density rise together, as the values fill
[0, 1)). Baseline: the input order as the answer.

Fairness: every arm its own learning-rate grid (three log-spaced values), 5 seeds at
every value, all members of an arm trained as one batched ensemble; the rate with the
best median validation exact match (validation: 100 sequences of each training length,
drawn as in training; ties: median per-position accuracy, then the smaller rate) is
chosen per arm, and every rate's test scores are stored, so a near-tie can be shown.
Mechanism, measured on the same runs (pointer arms, teacher forcing, the first 200
sequences of each cell): the probability given to the right position, the share of steps
whose most probable position is right, the spread (max - min) of the logits over the
input positions, ``||w||_1`` of the attention vector (which bounds every logit), and for
wrong steps how far the chosen number lies from the right one (in ranks and in values);
under greedy decoding, the share of outputs that point twice at one position and the
exact match when that is forbidden. The arms run on ``--workers`` processes (default 2).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import pathlib
import platform
import time

import numpy as np
import torch

from companion.nn.pointer import (PointerSorter, identity_baseline, real_sort_task,
                                  sort_scores, sort_task, train_sorter)

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
ARMS = {"pointer": ("pointer", "value+code"), "vocab": ("vocab", "value+code"),
        "pointer_value": ("pointer", "value"), "pointer_real": ("pointer", "value")}


def cell_key(n, W=None):
    return str(n) if W is None else f"{n}/{W}"


def held_out_values(cfg):
    K, every = cfg["K"], cfg["hold_out_every"]
    held = [k for k in range(K) if k % every == every // 2]
    return held, [k for k in range(K) if k not in held]


def _window_sampler(K, values, per, b, n, r):
    return sort_task(b, n, K, r, values=values, window=int(round(per * n)))


def _real_sampler(b, n, r):
    return real_sort_task(b, n, r)


def data_sets(cfg, arm):
    """(sampler, validation, test cells, unseen cells) of one arm."""
    lo, hi = cfg["train_lengths"]
    if arm == "pointer_real":
        valid = {cell_key(n): real_sort_task(cfg["n_valid"], n, np.random.default_rng(500 + n))
                 for n in range(lo, hi + 1)}
        test = {cell_key(n): real_sort_task(cfg["n_test"], n, np.random.default_rng(700 + n))
                for n in cfg["real_lengths"]}
        return _real_sampler, valid, test, {}
    K = cfg["K"]
    held, seen = held_out_values(cfg)
    per = 1.0 / cfg["train_density"]
    sampler = functools.partial(_window_sampler, K, seen, per)
    valid = {cell_key(n): sampler(cfg["n_valid"], n, np.random.default_rng(500 + n))
             for n in range(lo, hi + 1)}
    test = {cell_key(n, W): sort_task(cfg["n_test"], n, K, np.random.default_rng(7000 + 97 * n + W),
                                      values=seen, window=W) for n, W in cfg["cells"]}
    unseen = {cell_key(n): sort_task(cfg["n_test"], n, K, np.random.default_rng(900 + n),
                                     window=int(round(per * n * cfg["hold_out_every"]
                                                      / (cfg["hold_out_every"] - 1))))
              for n in cfg["unseen_lengths"]}
    return sampler, valid, test, unseen


def scores(model, sets, held=None):
    out = {}
    for key, (tok, order) in sets.items():
        pred = model.decode(torch.as_tensor(tok)).numpy()
        em, pp = sort_scores(pred, tok, order)
        out[key] = [np.asarray(em, float), np.asarray(pp, float)]
        if held is not None:
            target = np.take_along_axis(tok, order, 1)
            where = np.isin(target, held)
            out[key].append((pred == target)[:, where].mean(axis=1))
    return out


@torch.no_grad()
def diagnose(model, tok, order):
    """Per-member mechanism statistics on one cell (teacher forcing, then greedy)."""
    t, o = torch.as_tensor(tok), torch.as_tensor(order)
    logits = model(t, o).double()                           # (M, N, n, n)
    p = torch.softmax(logits, -1)
    right = torch.gather(p, 3, o.expand(logits.shape[:3])[..., None])[..., 0]
    choice = logits.argmax(-1)                              # (M, N, n)
    hit = choice == o
    spread = (logits.max(-1).values - logits.min(-1).values)
    rank = np.argsort(order, axis=1)                        # rank[r, j]: rank of position j
    ch = choice.numpy()
    chosen_rank = np.take_along_axis(np.broadcast_to(rank, ch.shape), ch, 2)
    true_rank = np.broadcast_to(np.arange(tok.shape[1]), ch.shape)
    chosen_val = np.take_along_axis(np.broadcast_to(tok, ch.shape), ch, 2)
    true_val = np.broadcast_to(np.take_along_axis(tok, order, 1), ch.shape)
    plain = model.decode(t).numpy()
    masked = model.decode(t, mask_chosen=True).numpy()
    target = np.take_along_axis(tok, order, 1)
    out = []
    for m in range(model.members):
        wrong = ~hit[m].numpy()
        dr = (chosen_rank[m] - true_rank[m])[wrong]
        dv = (chosen_val[m] - true_val[m])[wrong].astype(float)
        out.append({
            "p_right": round(float(right[m].mean()), 4),
            "step_accuracy": round(float(hit[m].double().mean()), 4),
            "median_spread": round(float(spread[m].median()), 3),
            "w_l1": round(float(model.att_v[m].abs().sum()), 3),
            "errors": int(wrong.sum()),
            "median_rank_error": None if not wrong.any() else float(np.median(dr)),
            "share_errors_next_rank": None if not wrong.any()
            else round(float(np.mean(np.abs(dr) == 1)), 4),
            "median_value_error": None if not wrong.any() else round(float(np.median(dv)), 5),
            "repeat_share": round(float(np.mean([len(set(row)) < tok.shape[1]
                                                 for row in plain[m].tolist()])), 4),
            "exact_masked": round(float((masked[m] == target).all(axis=1).mean()), 4)})
    return out


def run_arm(cfg, arm):
    torch.set_num_threads(1)
    output, inputs = ARMS[arm]
    sampler, valid, test, unseen = data_sets(cfg, arm)
    held = held_out_values(cfg)[0]
    grid = cfg["lr_grid"][arm]
    members = [(lr, s) for lr in grid for s in cfg["seeds"]]
    c0 = time.process_time()
    model = PointerSorter(cfg["hidden"], 2 if arm == "pointer_real" else cfg["K"],
                          output=output, inputs=inputs, seeds=[s for _, s in members])
    losses = train_sorter(model, steps=cfg["steps"], lr=[lr for lr, _ in members],
                          lengths=tuple(cfg["train_lengths"]), batch=cfg["batch"],
                          sampler=sampler)
    v, t = scores(model, valid), scores(model, test)
    u = scores(model, unseen, held=held)
    diag = {}
    if output == "pointer":
        for key in cfg["diagnose_real" if arm == "pointer_real" else "diagnose"]:
            tok, order = test[key]
            diag[key] = diagnose(model, tok[:cfg["n_diag"]], order[:cfg["n_diag"]])
    runs = []
    for m, (lr, s) in enumerate(members):
        diverged = bool(np.isnan(losses[-1, m]))
        runs.append({
            "model": arm, "lr": lr, "seed": s, "diverged": diverged,
            "final_loss": None if diverged else round(float(np.mean(losses[-50:, m])), 5),
            "valid_exact": round(float(np.mean([v[k][0][m] for k in v])), 5),
            "valid_position": round(float(np.mean([v[k][1][m] for k in v])), 5),
            "test_exact": {k: round(float(t[k][0][m]), 5) for k in t},
            "test_position": {k: round(float(t[k][1][m]), 5) for k in t},
            "unseen_exact": {k: round(float(u[k][0][m]), 5) for k in u},
            "unseen_position": {k: round(float(u[k][1][m]), 5) for k in u},
            "unseen_heldout_position": {k: round(float(u[k][2][m]), 5) for k in u},
            "diagnostics": {k: diag[k][m] for k in diag}})
    baseline = {k: [round(x, 5) for x in identity_baseline(*test[k])] for k in test}
    share = {k: round(float(np.isin(unseen[k][0], held).mean()), 4) for k in unseen}
    return {"arm": arm, "runs": runs, "params": model.parameter_count(), "baseline": baseline,
            "unseen_share": share, "cpu_s": round(time.process_time() - c0, 1)}


def med(xs):
    return [float(np.median(xs)), float(min(xs)), float(max(xs))]


def summarise(cfg, arm, runs):
    grid = cfg["lr_grid"][arm]
    mine = [r for r in runs if r["model"] == arm]
    score = {lr: (float(np.median([r["valid_exact"] for r in mine if r["lr"] == lr])),
                  float(np.median([r["valid_position"] for r in mine if r["lr"] == lr])))
             for lr in grid}
    best = max(grid, key=lambda lr: (score[lr], -lr))
    out = {"lr": best, "inside": grid[0] < best < grid[-1],
           "valid_median": {str(lr): list(score[lr]) for lr in grid}, "by_lr": {}}
    for lr in grid:
        sel = [r for r in mine if r["lr"] == lr]
        entry = {"n": len(sel), "diverged": sum(r["diverged"] for r in sel)}
        for key in ("test_exact", "test_position", "unseen_exact", "unseen_position",
                    "unseen_heldout_position"):
            entry[key] = {k: med([r[key][k] for r in sel]) for k in sel[0][key]}
        entry["diagnostics"] = {
            k: {stat: (None if any(r["diagnostics"][k][stat] is None for r in sel)
                       else float(np.median([r["diagnostics"][k][stat] for r in sel])))
                for stat in sel[0]["diagnostics"][k]}
            for k in sel[0]["diagnostics"]}
        out["by_lr"][str(lr)] = entry
    return out


def sweep(cfg, workers=2):
    t0 = time.time()
    arms = list(cfg["arms"])
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(min(workers, len(arms))) as pool:
            parts = pool.starmap(run_arm, [(cfg, a) for a in arms], chunksize=1)
    else:
        parts = [run_arm(cfg, a) for a in arms]
    wall = time.time() - t0
    runs = [r for p in parts for r in p["runs"]]
    held, _ = held_out_values(cfg)
    return {
        "name": "pointer_density_sweep", "config": cfg, "runs": runs,
        "chosen_lr": {a: summarise(cfg, a, runs)["lr"] for a in arms},
        "summary": {a: summarise(cfg, a, runs) for a in arms},
        "params": {p["arm"]: p["params"] for p in parts},
        "baseline": {"input_order": {p["arm"]: p["baseline"] for p in parts}},
        "unseen_share": {p["arm"]: p["unseen_share"] for p in parts if p["unseen_share"]},
        "held_out_values": held,
        "timing": {"wall_s": round(wall, 1), "cpu_s": round(sum(p["cpu_s"] for p in parts), 1),
                   "cpu_by_arm": {p["arm"]: p["cpu_s"] for p in parts}, "workers": workers},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
    }


def table(res) -> str:
    lines = []
    for arm, s in res["summary"].items():
        e = s["by_lr"][str(s["lr"])]
        lines.append(f"{arm} lr {s['lr']:.0e} ({'inside' if s['inside'] else 'EDGE'}), "
                     f"valid {s['valid_median']}")
        lines.append("  " + "  ".join(f"{k}: {e['test_exact'][k][0]:.2f}/"
                                       f"{e['test_position'][k][0]:.2f}"
                                       for k in e["test_exact"]))
        if e["unseen_exact"]:
            lines.append("  unseen " + "  ".join(
                f"{k}: {e['unseen_exact'][k][0]:.2f}/{e['unseen_heldout_position'][k][0]:.2f}"
                for k in e["unseen_exact"]))
        for k, d in e["diagnostics"].items():
            lines.append(f"  diag {k}: {d}")
    return "\n".join(lines)


DENSITY_CELLS = [[5, 20], [10, 40], [15, 60], [20, 80], [30, 120],
                 [5, 10], [10, 20], [15, 30], [20, 40], [30, 60], [10, 13]]
FULL = {"K": 150, "hold_out_every": 5, "hidden": 32, "steps": 2000, "batch": 64,
        "train_lengths": [5, 10], "train_density": 0.25, "cells": DENSITY_CELLS,
        "unseen_lengths": [5, 10], "real_lengths": [5, 10, 15, 20, 30],
        "diagnose": ["10/40", "15/60", "20/80", "30/120", "10/20", "10/13"],
        "diagnose_real": ["10", "15", "20", "30"], "n_diag": 200,
        "n_valid": 100, "n_test": 500, "seeds": [0, 1, 2, 3, 4],
        "arms": ["vocab", "pointer", "pointer_value", "pointer_real"],
        "lr_grid": {"pointer": [3e-3, 1e-2, 3e-2], "vocab": [3e-3, 1e-2, 3e-2],
                    "pointer_value": [3e-3, 1e-2, 3e-2], "pointer_real": [3e-3, 1e-2, 3e-2]}}
TINY = {"K": 40, "hold_out_every": 5, "hidden": 4, "steps": 3, "batch": 4,
        "train_lengths": [3, 4], "train_density": 0.25, "cells": [[3, 12], [6, 24], [4, 8]],
        "unseen_lengths": [3], "real_lengths": [3, 6], "diagnose": ["3/12", "4/8"],
        "diagnose_real": ["6"], "n_diag": 3, "n_valid": 5, "n_test": 5, "seeds": [0, 1],
        "arms": ["vocab", "pointer", "pointer_value", "pointer_real"],
        "lr_grid": {a: [1e-2, 3e-2] for a in ARMS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL, workers=args.workers)
    out = pathlib.Path(args.out_dir) / "pointer_density_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(table(res))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
