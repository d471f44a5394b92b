"""Pointer network against a vocabulary decoder on sorting, at lengths up to 3x the longest
seen in training (chapter 12).

Run from the repository root::

    .venv/bin/python -m experiments.pointer_sweep          # writes pointer_sweep.json

Task: :func:`companion.nn.pointer.sort_task`, distinct integers from ``{0..K-1}`` with
``K = 50``, each shown as its value and its one-hot code. One number in five
(2, 7, ..., 47) is held out: training, validation and the length tests draw only from the
other 40; a last test (lengths 5 and 10) draws from all 50, and scores separately the
output positions whose answer is a held-out number. Training lengths are drawn
uniformly from 5 to 10 at every step (fresh batches of 64, drawn from each seed's own
generator); validation uses 100 sequences of each length 5..10; the test sets have 500
sequences at each of the lengths 5, 10, 15, 20 and 30 (15 and beyond were never seen).
Models (:class:`companion.nn.pointer.PointerSorter`, hidden size 32, the same GRU
encoder, GRU decoder and additive attention, and the same initial weights for the same
seed): ``pointer`` emits a distribution over input positions, ``vocab`` a distribution
over the K values. Fairness: same data, steps, batch and sizes; each model its own
learning-rate grid (four log-spaced values), every value run with every seed, all of one
model trained as one batched ensemble; the rate with the best median validation exact
match (ties: best median per-position accuracy, then the smaller rate) is chosen per
model, and ``inside`` says whether it lies strictly inside the grid (a first run, before
numbers were held out, with the pointer's grid at 1e-3..3e-2, chose its top, so 1e-1 was
added and 1e-3 dropped).
Greedy decoding,
no masking of positions already chosen. Baseline: the input order as the answer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np
import torch

from companion.nn.pointer import (PointerSorter, identity_baseline, sort_scores, sort_task,
                                  train_sorter)

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
MODELS = ("pointer", "vocab")


def evaluate(model, sets, held_out=None):
    """{length: (exact (M,), per-position (M,)[, held-out (M,)])} on {length: (tokens, order)}.

    With ``held_out`` (numbers never drawn in training), a third score: the accuracy on
    the output positions whose answer is a held-out number."""
    out = {}
    for n, (tok, order) in sets.items():
        pred = model.decode(torch.as_tensor(tok)).numpy()
        em, pp = sort_scores(pred, tok, order)
        out[n] = (np.asarray(em, dtype=float), np.asarray(pp, dtype=float))
        if held_out is not None:
            target = np.take_along_axis(tok, order, 1)
            where = np.isin(target, held_out)
            out[n] += ((pred == target)[:, where].mean(axis=1),)
    return out


def held_out_values(cfg):
    K, every = cfg["K"], cfg["hold_out_every"]
    held = [k for k in range(K) if k % every == every // 2]
    return held, [k for k in range(K) if k not in held]


def sweep(cfg):
    torch.set_num_threads(1)
    K = cfg["K"]
    held, seen = held_out_values(cfg)
    valid = {n: sort_task(cfg["n_valid"], n, K, np.random.default_rng(500 + n), values=seen)
             for n in range(cfg["train_lengths"][0], cfg["train_lengths"][1] + 1)}
    test = {n: sort_task(cfg["n_test"], n, K, np.random.default_rng(700 + n), values=seen)
            for n in cfg["test_lengths"]}
    unseen = {n: sort_task(cfg["n_test"], n, K, np.random.default_rng(900 + n))
              for n in cfg["unseen_lengths"]}
    t0, c0 = time.time(), time.process_time()
    runs, cpu, params = [], {}, {}
    for name in MODELS:
        grid = cfg["lr_grid"][name]
        members = [(lr, s) for lr in grid for s in cfg["seeds"]]
        model = PointerSorter(cfg["hidden"], K, output=name, seeds=[s for _, s in members])
        params[name] = model.parameter_count()
        c_model = time.process_time()
        losses = train_sorter(model, steps=cfg["steps"], lr=[lr for lr, _ in members],
                              lengths=tuple(cfg["train_lengths"]), batch=cfg["batch"],
                              values=seen)
        v, t = evaluate(model, valid), evaluate(model, test)
        u = evaluate(model, unseen, held_out=held)
        cpu[name] = round(time.process_time() - c_model, 1)
        for m, (lr, s) in enumerate(members):
            diverged = bool(np.isnan(losses[-1, m]))
            runs.append({
                "model": name, "lr": lr, "seed": s, "diverged": diverged,
                "final_loss": None if diverged else round(float(np.mean(losses[-50:, m])), 5),
                "valid_exact": round(float(np.mean([v[n][0][m] for n in v])), 5),
                "valid_position": round(float(np.mean([v[n][1][m] for n in v])), 5),
                "test_exact": {str(n): round(float(t[n][0][m]), 5) for n in t},
                "test_position": {str(n): round(float(t[n][1][m]), 5) for n in t},
                "unseen_exact": {str(n): round(float(u[n][0][m]), 5) for n in u},
                "unseen_position": {str(n): round(float(u[n][1][m]), 5) for n in u},
                "unseen_heldout_position": {str(n): round(float(u[n][2][m]), 5) for n in u},
                "loss_curve": [None if np.isnan(x) else round(float(x), 4)
                               for x in losses[::cfg["curve_every"], m]]})
    wall, total_cpu = time.time() - t0, time.process_time() - c0
    chosen, summary = {}, {}
    for name in MODELS:
        grid = cfg["lr_grid"][name]
        score = {lr: (np.median([r["valid_exact"] for r in runs
                                 if r["model"] == name and r["lr"] == lr]),
                      np.median([r["valid_position"] for r in runs
                                 if r["model"] == name and r["lr"] == lr])) for lr in grid}
        best = max(grid, key=lambda lr: (score[lr], -lr))
        chosen[name] = best
        sel = [r for r in runs if r["model"] == name and r["lr"] == best]
        summary[name] = {
            "lr": best, "inside": grid[0] < best < grid[-1],
            "valid_median": {str(lr): [float(score[lr][0]), float(score[lr][1])]
                             for lr in grid},
            "params": params[name], "n": len(sel),
            "test_exact": {str(n): [float(np.median([r["test_exact"][str(n)] for r in sel])),
                                    float(min(r["test_exact"][str(n)] for r in sel)),
                                    float(max(r["test_exact"][str(n)] for r in sel))]
                           for n in cfg["test_lengths"]},
            "test_position": {str(n): [float(np.median([r["test_position"][str(n)]
                                                        for r in sel])),
                                       float(min(r["test_position"][str(n)] for r in sel)),
                                       float(max(r["test_position"][str(n)] for r in sel))]
                              for n in cfg["test_lengths"]}}
        for key in ("unseen_exact", "unseen_position", "unseen_heldout_position"):
            summary[name][key] = {str(n): [float(np.median([r[key][str(n)] for r in sel])),
                                           float(min(r[key][str(n)] for r in sel)),
                                           float(max(r[key][str(n)] for r in sel))]
                                  for n in cfg["unseen_lengths"]}
    baseline = {str(n): identity_baseline(*test[n]) for n in cfg["test_lengths"]}
    share = {str(n): float(np.isin(unseen[n][0], held).mean()) for n in cfg["unseen_lengths"]}
    return {
        "name": "pointer_sweep", "config": {**cfg, "models": list(MODELS)},
        "runs": runs, "chosen_lr": chosen, "summary": summary,
        "baseline": {"input_order": {n: [round(a, 5), round(b, 5)]
                                     for n, (a, b) in baseline.items()}},
        "held_out_values": held, "unseen_share": share,
        "timing": {"wall_s": round(wall, 1), "cpu_s": round(total_cpu, 1), "cpu_by_model": cpu},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
    }


def table(res) -> str:
    lengths = res["config"]["test_lengths"]
    lines = [f"{'model':<9}{'lr':>7}{'inside':>7}{'params':>7}  "
             + "".join(f"{'n=' + str(n):>12}" for n in lengths)
             + "   (median exact match / per-position accuracy)"]
    for name, s in res["summary"].items():
        lines.append(f"{name:<9}{s['lr']:>7.0e}{'yes' if s['inside'] else 'NO':>7}"
                     f"{s['params']:>7}  " + "".join(
                         f"{s['test_exact'][str(n)][0]:>6.2f}/{s['test_position'][str(n)][0]:.2f}"
                         for n in lengths))
    lines.append("numbers never seen in training (median exact / per position / on the "
                 "held-out numbers):")
    for name, s in res["summary"].items():
        lines.append(f"{name:<9}" + "".join(
            f"   n={n}: {s['unseen_exact'][str(n)][0]:.2f}/{s['unseen_position'][str(n)][0]:.2f}"
            f"/{s['unseen_heldout_position'][str(n)][0]:.2f}"
            for n in res["config"]["unseen_lengths"]))
    b = res["baseline"]["input_order"]
    lines.append(f"{'input order':<30}" + "".join(f"{b[str(n)][0]:>6.2f}/{b[str(n)][1]:.2f}"
                                                   for n in lengths))
    return "\n".join(lines)


FULL = {"K": 50, "hidden": 32, "steps": 2000, "batch": 64, "train_lengths": [5, 10],
        "test_lengths": [5, 10, 15, 20, 30], "unseen_lengths": [5, 10], "hold_out_every": 5,
        "n_valid": 100, "n_test": 500, "seeds": [0, 1, 2, 3, 4], "curve_every": 20,
        "lr_grid": {"pointer": [3e-3, 1e-2, 3e-2, 1e-1], "vocab": [1e-3, 3e-3, 1e-2, 3e-2]}}
TINY = {"K": 12, "hidden": 4, "steps": 3, "batch": 4, "train_lengths": [3, 4],
        "test_lengths": [3, 6], "unseen_lengths": [3], "hold_out_every": 4, "n_valid": 5,
        "n_test": 5, "seeds": [0, 1], "curve_every": 1,
        "lr_grid": {"pointer": [1e-2, 3e-2], "vocab": [1e-2, 3e-2]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL)
    out = pathlib.Path(args.out_dir) / "pointer_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(table(res))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
