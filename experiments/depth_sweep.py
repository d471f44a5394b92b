"""Accuracy, parameters and time against depth on two tagging tasks (chapter 11).

Run from the repository root::

    .venv/bin/python -m experiments.depth_sweep          # writes depth_sweep.json
    .venv/bin/python -m experiments.depth_sweep --merge  # reuse stored runs, run the rest
    .venv/bin/python -m experiments.depth_sweep --budget-probe   # depth_budget_probe.json

``--budget-probe`` asks whether the depth verdict is an artefact of the short budget: on
the ``hier`` task only, ``depth1``, ``wide1`` and ``depth3`` get three times the steps
(900), each on the grid {3e-3, 1e-2, 3e-2, 1e-1} with the same 5 seeds, chosen and
reported as in the main sweep (3e-3 was added after a first probe on {1e-2, 3e-2, 1e-1}
put the one-layer models' choice at 1e-2, the bottom edge; ``--merge`` works here too).

Tasks (:func:`companion.data.tagging.word_parity`, ``T=16``, ``V=4``): ``hier``, the
running parity of a nonlinear bit computed from each two-token word (a feature of a
feature), and ``flat``, the running parity of the count of zero tokens (one level).
Models: stacked GRUs of hidden size 8 with 1, 2, 3 and 4 layers (``depth1..4``), a
4-layer stack with residual connections between layers (``res4``), and one layer of
hidden size 20 (``wide1``), whose parameter count matches ``depth4``, to separate
depth from size. Linear read-out at every step. torch's GRU layers (the function
``companion.nn.stacked.StackedRNN`` reproduces exactly).
Fairness: same data, steps and batch for all; each model its own learning-rate grid
(``LR_GRID``, per task) with every seed; the learning rate with the highest median
validation accuracy is chosen per model and task (ties go to the smallest; ``ties`` and
``inside`` say which values reached the best median and whether one is strictly inside
the grid); test accuracy is reported. The ``hier`` grid has 1e-1 on top because a first
run with {3e-3, 1e-2, 3e-2} put every model's choice at 3e-2, the top edge. A run whose
loss stops being finite counts as accuracy 0 (``diverged``). ``--merge`` reuses the
stored runs whose settings match and runs only the missing ones (the result is the same
as a full run: every run is seeded and single-threaded); ``timing.cpu_s_all_runs`` sums
every run's own CPU time, the cost of regenerating the sweep from scratch. Success: test
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
LR_GRID = {"hier": [3e-3, 1e-2, 3e-2, 1e-1], "flat": [3e-3, 1e-2, 3e-2]}
SUCCESS = 0.95


def make_model(name, seed, scale=1):
    torch.manual_seed(seed)
    spec = MODELS[name]
    return Tagger("gru", VOCAB, max(1, spec["hidden"] // scale), 2,
                  num_layers=spec["layers"], residual=spec["residual"], impl="torch")


def _key(task, name, lr, seed):
    return (task, name, float(lr), int(seed))


def sweep(cfg, reuse=None):
    """``reuse``: runs of an earlier result with the same settings, keyed by ``_key``."""
    reuse = reuse or {}
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    runs, chosen, summary, baseline = [], {}, [], {}
    for task, hier in TASKS.items():
        d = {split: word_parity(cfg[f"n_{split}"], LENGTH, hierarchical=hier, vocab=VOCAB,
                                seed=200 + i + 10 * hier)
             for i, split in enumerate(("train", "valid", "test"))}
        baseline[task] = majority_baseline(d["train"][1], d["test"][1])
        for name in MODELS:
            for lr in cfg["lr_grid"][task]:
                for seed in cfg["seeds"]:
                    old = reuse.get(_key(task, name, lr, seed))
                    if old is not None:
                        runs.append(old)
                        continue
                    model = make_model(name, seed, cfg["scale"])
                    c_run = time.process_time()
                    try:
                        losses = train_tagger(model, *d["train"], steps=cfg["steps"],
                                              lr=lr, batch_size=cfg["batch"], seed=seed)
                        t_run = (time.process_time() - c_run) / cfg["steps"]
                        run = {"final_loss": round(float(np.mean(losses[-20:])), 6),
                               "valid_acc": round(tagging_accuracy(model, *d["valid"]), 6),
                               "test_acc": round(tagging_accuracy(model, *d["test"]), 6),
                               "diverged": False}
                    except FloatingPointError:
                        t_run = (time.process_time() - c_run) / cfg["steps"]
                        run = {"final_loss": None, "valid_acc": 0.0, "test_acc": 0.0,
                               "diverged": True}
                    runs.append({"task": task, "model": name, "lr": lr, "seed": seed, **run,
                                 "cpu_s_per_step": round(t_run, 6),
                                 "cpu_s": round(time.process_time() - c_run, 3)})
            grid = cfg["lr_grid"][task]
            mine = [r for r in runs if r["task"] == task and r["model"] == name]
            med = {lr: np.median([r["valid_acc"] for r in mine if r["lr"] == lr])
                   for lr in grid}
            lr = max(grid, key=lambda v: (med[v], -v))
            ties = [v for v in grid if med[v] == med[lr]]
            chosen[f"{task}/{name}"] = lr
            test = [r["test_acc"] for r in mine if r["lr"] == lr]
            summary.append({"task": task, "model": name, "lr": lr, "ties": ties,
                            "inside": any(grid[0] < v < grid[-1] for v in ties),
                            "valid_median": {str(v): float(med[v]) for v in grid},
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
            "timing": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                       "reused_runs": sum(1 for r in runs if _key(r["task"], r["model"],
                                                                 r["lr"], r["seed"]) in reuse),
                       "cpu_s_all_runs": round(sum(
                           r.get("cpu_s", r["cpu_s_per_step"] * cfg["steps"])
                           for r in runs), 1)},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__}}


def table(res) -> str:
    lines = [f"{'task':<6}{'model':<8}{'lr':>7}{'inside':>7}{'params':>8}{'k/n':>6}"
             f"{'median':>8}{'min-max':>13}"]
    for s in res["summary"]:
        lines.append(f"{s['task']:<6}{s['model']:<8}{s['lr']:>7.0e}"
                     f"{'yes' if s['inside'] else 'NO':>7}{s['params']:>8}"
                     f"{str(s['k']) + '/' + str(s['n']):>6}{s['median']:>8.2f}"
                     f"{s['min']:>7.2f}-{s['max']:.2f}")
    lines.append("most frequent label: " + ", ".join(
        f"{t} {v:.2f}" for t, v in res["baseline"].items()))
    return "\n".join(lines)


FULL = {"steps": 300, "batch": 32, "n_train": 2000, "n_valid": 500, "n_test": 1000,
        "seeds": [0, 1, 2, 3, 4], "lr_grid": LR_GRID, "scale": 1}
TINY = {"steps": 2, "batch": 4, "n_train": 20, "n_valid": 10, "n_test": 10,
        "seeds": [0], "lr_grid": {"hier": [1e-2], "flat": [1e-2]}, "scale": 4}


PROBE = {**FULL, "steps": 900, "lr_grid": {"hier": [3e-3, 1e-2, 3e-2, 1e-1]},
         "models": ["depth1", "wide1", "depth3"]}
TINY_PROBE = {**TINY, "lr_grid": {"hier": [1e-2]}, "models": ["depth1", "depth3"]}


def budget_probe(cfg, reuse=None):
    """The main sweep restricted to the ``hier`` task and ``cfg["models"]``."""
    global TASKS, MODELS
    saved = TASKS, MODELS
    try:
        TASKS = {"hier": True}
        MODELS = {m: saved[1][m] for m in cfg["models"]}
        res = sweep(cfg, reuse)
    finally:
        TASKS, MODELS = saved
    res["name"] = "depth_budget_probe"
    return res


def _stored_runs(out, cfg, **expected) -> dict:
    """The runs stored in ``out``, keyed by :func:`_key`, if its settings match ``cfg`` (and
    the ``expected`` config entries); otherwise nothing is reused."""
    if not out.exists():
        return {}
    old = json.loads(out.read_text())
    same = ("steps", "batch", "n_train", "n_valid", "n_test", "scale")
    if not all(old["config"].get(k) == cfg[k] for k in same):
        return {}
    if any(old["config"].get(k) != v for k, v in expected.items()):
        return {}
    return {_key(r["task"], r["model"], r["lr"], r["seed"]): r for r in old["runs"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    parser.add_argument("--merge", action="store_true",
                        help="reuse the runs stored in OUT_DIR/depth_sweep.json whose "
                             "settings match, run only the missing ones")
    parser.add_argument("--budget-probe", action="store_true",
                        help="hier task, depth1/wide1/depth3 at 3x the steps; writes "
                             "depth_budget_probe.json")
    args = parser.parse_args(argv)
    if args.budget_probe:
        cfg = TINY_PROBE if args.tiny else PROBE
        out = pathlib.Path(args.out_dir) / "depth_budget_probe.json"
        reuse = _stored_runs(out, cfg) if args.merge else {}
        res = budget_probe(cfg, reuse)
    else:
        cfg = TINY if args.tiny else FULL
        out = pathlib.Path(args.out_dir) / "depth_sweep.json"
        reuse = _stored_runs(out, cfg, models=MODELS, length=LENGTH) if args.merge else {}
        res = sweep(cfg, reuse)
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(table(res))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
