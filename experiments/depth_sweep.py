"""Accuracy, parameters and time against depth on two tagging tasks (chapter 11).

Run from the repository root::

    .venv/bin/python -m experiments.depth_sweep          # writes depth_sweep.json

Tasks (:func:`companion.data.tagging.word_parity`, ``T=16``, ``V=4``): ``hier``, the
running parity of a nonlinear bit computed from each two-token word (a feature of a
feature), and ``flat``, the running parity of the count of zero tokens (one level).
Models: stacked GRUs of hidden size 8 with 1, 2, 3 and 4 layers (``depth1..4``), a
4-layer stack with residual connections between layers (``res4``), and one layer of
hidden size 20 (``wide1``), whose parameter count matches ``depth4``, to separate
depth from size. Linear read-out at every step. torch's GRU layers (the function
``companion.nn.stacked.StackedRNN`` reproduces exactly).
Fairness: same data, steps and batch for all; each model its own learning-rate grid
(``LR_GRID``) with every seed; the learning rate with the highest median validation
accuracy is chosen per model and task; test accuracy is reported. Success: test
accuracy >= 0.95. Baseline: the most frequent label. Cost: CPU seconds per training
step (batch 32, forward and backward), median over a model's runs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np
import torch

from companion.data.tagging import majority_baseline, word_parity
from companion.nn.stacked import Tagger, count_parameters, tagging_accuracy, train_tagger

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
TASKS = {"hier": True, "flat": False}
LENGTH, VOCAB = 16, 4
MODELS = {"depth1": {"layers": 1, "hidden": 8, "residual": False},
          "depth2": {"layers": 2, "hidden": 8, "residual": False},
          "depth3": {"layers": 3, "hidden": 8, "residual": False},
          "depth4": {"layers": 4, "hidden": 8, "residual": False},
          "res4": {"layers": 4, "hidden": 8, "residual": True},
          "wide1": {"layers": 1, "hidden": 20, "residual": False}}
LR_GRID = [3e-3, 1e-2, 3e-2]
SUCCESS = 0.95


def make_model(name, seed, scale=1):
    torch.manual_seed(seed)
    spec = MODELS[name]
    return Tagger("gru", VOCAB, max(1, spec["hidden"] // scale), 2,
                  num_layers=spec["layers"], residual=spec["residual"], impl="torch")


def sweep(cfg):
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    runs, chosen, summary, baseline = [], {}, [], {}
    for task, hier in TASKS.items():
        d = {split: word_parity(cfg[f"n_{split}"], LENGTH, hierarchical=hier, vocab=VOCAB,
                                seed=200 + i + 10 * hier)
             for i, split in enumerate(("train", "valid", "test"))}
        baseline[task] = majority_baseline(d["train"][1], d["test"][1])
        for name in MODELS:
            for lr in cfg["lr_grid"]:
                for seed in cfg["seeds"]:
                    model = make_model(name, seed, cfg["scale"])
                    t_run = time.process_time()
                    losses = train_tagger(model, *d["train"], steps=cfg["steps"], lr=lr,
                                          batch_size=cfg["batch"], seed=seed)
                    t_run = (time.process_time() - t_run) / cfg["steps"]
                    runs.append({"task": task, "model": name, "lr": lr, "seed": seed,
                                 "final_loss": round(float(np.mean(losses[-20:])), 6),
                                 "valid_acc": round(tagging_accuracy(model, *d["valid"]), 6),
                                 "test_acc": round(tagging_accuracy(model, *d["test"]), 6),
                                 "cpu_s_per_step": round(t_run, 6)})
            mine = [r for r in runs if r["task"] == task and r["model"] == name]
            med = {lr: np.median([r["valid_acc"] for r in mine if r["lr"] == lr])
                   for lr in cfg["lr_grid"]}
            lr = max(cfg["lr_grid"], key=lambda v: (med[v], -v))
            chosen[f"{task}/{name}"] = lr
            test = [r["test_acc"] for r in mine if r["lr"] == lr]
            summary.append({"task": task, "model": name, "lr": lr,
                            "k": int(sum(a >= SUCCESS for a in test)), "n": len(test),
                            "median": float(np.median(test)), "min": min(test),
                            "max": max(test),
                            "cpu_s_per_step": float(np.median([r["cpu_s_per_step"]
                                                               for r in mine])),
                            "params": count_parameters(make_model(name, 0, cfg["scale"]))})
    wall, cpu = time.time() - t0, time.process_time() - c0
    return {"name": "depth_sweep",
            "config": {**cfg, "tasks": TASKS, "length": LENGTH, "vocab": VOCAB,
                       "models": MODELS, "success": SUCCESS, "cell": "gru"},
            "runs": runs, "chosen_lr": chosen, "summary": summary, "baseline": baseline,
            "timing": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__}}


def table(res) -> str:
    lines = [f"{'task':<6}{'model':<8}{'lr':>7}{'params':>8}{'k/n':>6}{'median':>8}"
             f"{'min-max':>13}"]
    for s in res["summary"]:
        lines.append(f"{s['task']:<6}{s['model']:<8}{s['lr']:>7.0e}{s['params']:>8}"
                     f"{str(s['k']) + '/' + str(s['n']):>6}{s['median']:>8.2f}"
                     f"{s['min']:>7.2f}-{s['max']:.2f}")
    lines.append("most frequent label: " + ", ".join(
        f"{t} {v:.2f}" for t, v in res["baseline"].items()))
    return "\n".join(lines)


FULL = {"steps": 300, "batch": 32, "n_train": 2000, "n_valid": 500, "n_test": 1000,
        "seeds": [0, 1, 2, 3, 4], "lr_grid": LR_GRID, "scale": 1}
TINY = {"steps": 2, "batch": 4, "n_train": 20, "n_valid": 10, "n_test": 10,
        "seeds": [0], "lr_grid": [1e-2], "scale": 4}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL)
    out = pathlib.Path(args.out_dir) / "depth_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(table(res))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
