"""Uni- vs bidirectional GRU taggers, and look-ahead by delayed output (chapter 10).

Run from the repository root::

    .venv/bin/python -m experiments.bidir_sweep          # writes bidir_sweep.json

Task: :func:`companion.data.tagging.lookahead_tagging` with ``T=12``, ``ahead=2``,
``behind=2``, ``V=4``: the label of step ``t`` is the pair ``(x[t-2], x[t+2])``
(16 classes). Models (one GRU layer, hidden size 24, linear read-out, torch's GRU, whose
function ``companion.nn.stacked.StackedRNN`` reproduces exactly): ``uni`` (left to
right, label of step ``t`` read at step ``t``), ``delay1..3`` (the same model reads
``k`` padding steps more and labels step ``t`` at step ``t + k``), ``bi`` (bidirectional).
Fairness: same data, steps, batch and hidden size for all; each model its own
learning-rate grid (``LR_GRID``, four log-spaced values; extended after a first run with
{3e-3, 1e-2, 3e-2} put every model's choice at an edge), every value run with every
seed; the learning rate with the highest median validation accuracy is chosen per model
(ties go to the smallest; ``ties`` lists every value that reached the best median), and
``inside`` says whether the choice is strictly inside the model's grid or a tie that
includes an inside value. A run whose loss stops being finite counts as accuracy 0
(``diverged``). Test accuracy is reported. Success: test accuracy >= 0.95. Baselines:
the most frequent label, and the causal ceiling (best accuracy possible from what a
model has read).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np
import torch

from companion.data.tagging import causal_ceiling, lookahead_tagging, majority_baseline
from companion.nn.stacked import Tagger, count_parameters, tagging_accuracy, train_tagger

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
TASK = {"length": 12, "ahead": 2, "behind": 2, "vocab": 4}
MODELS = {"uni": {"delay": 0, "bidirectional": False},
          "delay1": {"delay": 1, "bidirectional": False},
          "delay2": {"delay": 2, "bidirectional": False},
          "delay3": {"delay": 3, "bidirectional": False},
          "bi": {"delay": 0, "bidirectional": True}}
# Per model: the causal models (whose best was the top of {3e-3, 1e-2, 3e-2}) get 1e-1 on
# top; uni and bi (whose best was the bottom, by a tie) get 1e-3 below.
LR_GRID = {"uni": [1e-3, 3e-3, 1e-2, 3e-2], "delay1": [3e-3, 1e-2, 3e-2, 1e-1],
           "delay2": [3e-3, 1e-2, 3e-2, 1e-1], "delay3": [3e-3, 1e-2, 3e-2, 1e-1],
           "bi": [1e-3, 3e-3, 1e-2, 3e-2]}
SUCCESS = 0.95


def data(cfg):
    kw = {k: TASK[k] for k in ("ahead", "behind", "vocab")}
    T = TASK["length"]
    return {"train": lookahead_tagging(cfg["n_train"], T, seed=100, **kw),
            "valid": lookahead_tagging(cfg["n_valid"], T, seed=101, **kw),
            "test": lookahead_tagging(cfg["n_test"], T, seed=102, **kw)}


def make_model(name, cfg, seed):
    torch.manual_seed(seed)
    spec = MODELS[name]
    return Tagger("gru", TASK["vocab"], cfg["hidden"], TASK["vocab"] ** 2, impl="torch",
                  delay=spec["delay"], bidirectional=spec["bidirectional"])


def latency(name):
    """Steps between reading x[t] and emitting the label of step t: (mean, max) over t."""
    T, spec = TASK["length"], MODELS[name]
    if spec["bidirectional"]:
        waits = [T - 1 - t for t in range(T)]  # the backward pass needs x[T-1] first
    else:
        waits = [spec["delay"]] * T
    return float(np.mean(waits)), int(max(waits))


def sweep(cfg):
    torch.set_num_threads(1)
    d = data(cfg)
    t0, c0 = time.time(), time.process_time()
    runs = []
    for name in MODELS:
        for lr in cfg["lr_grid"][name]:
            for seed in cfg["seeds"]:
                model = make_model(name, cfg, seed)
                c_run = time.process_time()
                try:
                    losses = train_tagger(model, *d["train"], steps=cfg["steps"], lr=lr,
                                          batch_size=cfg["batch"], seed=seed)
                    run = {"final_loss": round(float(np.mean(losses[-20:])), 6),
                           "valid_acc": round(tagging_accuracy(model, *d["valid"]), 6),
                           "test_acc": round(tagging_accuracy(model, *d["test"]), 6),
                           "diverged": False}
                except FloatingPointError:
                    run = {"final_loss": None, "valid_acc": 0.0, "test_acc": 0.0,
                           "diverged": True}
                runs.append({"model": name, "lr": lr, "seed": seed, **run,
                             "cpu_s": round(time.process_time() - c_run, 3)})
    wall, cpu = time.time() - t0, time.process_time() - c0
    chosen, summary = {}, []
    for name in MODELS:
        grid = cfg["lr_grid"][name]
        med = {lr: np.median([r["valid_acc"] for r in runs
                              if r["model"] == name and r["lr"] == lr])
               for lr in grid}
        chosen[name] = max(grid, key=lambda lr: (med[lr], -lr))
        ties = [lr for lr in grid if med[lr] == med[chosen[name]]]
        test = [r["test_acc"] for r in runs if r["model"] == name and r["lr"] == chosen[name]]
        mean_wait, max_wait = latency(name)
        summary.append({
            "model": name, "lr": chosen[name], "ties": ties,
            "inside": any(grid[0] < lr < grid[-1] for lr in ties),
            "valid_median": {str(lr): float(med[lr]) for lr in grid},
            "k": int(sum(a >= SUCCESS for a in test)),
            "n": len(test), "median": float(np.median(test)), "min": min(test),
            "max": max(test), "params": count_parameters(make_model(name, cfg, 0)),
            "ceiling": causal_ceiling(TASK["length"], ahead=TASK["ahead"],
                                      vocab=TASK["vocab"], delay=MODELS[name]["delay"])
            if not MODELS[name]["bidirectional"] else 1.0,
            "latency_mean": mean_wait, "latency_max": max_wait})
    return {
        "name": "bidir_sweep",
        "config": {**cfg, "task": TASK, "models": MODELS, "success": SUCCESS, "cell": "gru"},
        "runs": runs, "chosen_lr": chosen, "summary": summary,
        "baseline": {"majority": majority_baseline(d["train"][1], d["test"][1])},
        "timing": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
    }


def table(res) -> str:
    lines = [f"{'model':<8}{'lr':>7}{'inside':>7}{'params':>8}{'k/n':>6}{'median':>8}"
             f"{'min-max':>13}{'ceiling':>9}{'wait':>6}"]
    for s in res["summary"]:
        lines.append(f"{s['model']:<8}{s['lr']:>7.0e}{'yes' if s['inside'] else 'NO':>7}"
                     f"{s['params']:>8}"
                     f"{str(s['k']) + '/' + str(s['n']):>6}{s['median']:>8.2f}"
                     f"{s['min']:>7.2f}-{s['max']:.2f}{s['ceiling']:>9.2f}"
                     f"{s['latency_max']:>6}")
    lines.append(f"most frequent label: {res['baseline']['majority']:.2f}")
    return "\n".join(lines)


FULL = {"hidden": 24, "steps": 300, "batch": 32, "n_train": 2000, "n_valid": 500,
        "n_test": 1000, "seeds": [0, 1, 2, 3, 4], "lr_grid": LR_GRID}
TINY = {"hidden": 4, "steps": 3, "batch": 4, "n_train": 20, "n_valid": 10, "n_test": 10,
        "seeds": [0, 1], "lr_grid": {m: [1e-2, 3e-2] for m in MODELS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL)
    out = pathlib.Path(args.out_dir) / "bidir_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(table(res))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
