"""Accuracy, parameters and time against depth on two tagging tasks (chapter 11).

Run from the repository root::

    .venv/bin/python -m experiments.depth_sweep          # writes depth_sweep.json
    .venv/bin/python -m experiments.depth_sweep --merge  # reuse stored runs, run the rest
    .venv/bin/python -m experiments.depth_sweep --budget-probe   # depth_budget_probe.json
    .venv/bin/python -m experiments.depth_sweep --budget-4x --jobs 2   # depth_budget_4x.json

``--budget-probe`` asks whether the depth verdict is an artefact of the short budget: on
the ``hier`` task only, ``depth1``, ``wide1`` and ``depth3`` get three times the steps
(900), each on the grid {3e-3, 1e-2, 3e-2, 1e-1} with the same 5 seeds, chosen and
reported as in the main sweep (3e-3 was added after a first probe on {1e-2, 3e-2, 1e-1}
put the one-layer models' choice at 1e-2, the bottom edge; ``--merge`` works here too).

``--budget-4x`` is the budget arm at four times the sweep's steps (1200): ``depth1``,
``wide1``, ``depth3``, ``depth4`` and ``res4`` on the ``hier`` task, each on {3e-3, 1e-2,
3e-2} (1e-1 was never any model's best at 300 or at 900 steps) with the same 5
seeds. Every run is evaluated after 300, 600, 900 and 1200 steps, and the selection rule
is applied at each of these budgets, so one command gives the verdict at four budgets
(``train_logged`` follows ``train_tagger`` step for step; the 300- and 900-step rows are
a second run of the sweep's and the probe's protocol at those rates, not a copy of their
stored runs: a re-run reproduces some of those runs exactly and differs in others, since
float32 training is chaotic). Each run also logs the norm of the
gradient reaching the input weights of its bottom and top layers before clipping (median
over each 100 steps). About 700 CPU seconds in all; ``--jobs 2`` runs two single-threaded
workers (the result does not depend on the number of workers).

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
validation accuracy is chosen per model and task; a tie (several rates saturating at a
median of 1.000) goes to the highest mean validation accuracy, which counts a stalled
seed that the median ignores, and a tie in that to the smallest rate (``TIE_BREAK``;
``ties`` and ``inside`` say which values reached the best median and whether one is
strictly inside the grid); test accuracy is reported at the chosen rate and, in
``test_by_lr``, at every rate. The ``hier`` grid has 1e-1 on top because a first
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


TIE_BREAK = ("highest median validation accuracy; a tie (equal medians, as when several "
             "rates saturate at 1.000) goes to the highest mean validation accuracy, a tie "
             "in that to the smallest rate")


def choose_lr(valid: dict):
    """The selection rule of every depth sweep. ``valid``: {lr: [validation accuracy of
    each seed]}. Returns ``(lr, ties)``: the chosen rate and the rates that share the
    best median (``TIE_BREAK`` says how a tie is broken)."""
    if not valid or any(len(v) == 0 for v in valid.values()):
        raise ValueError("valid must map every learning rate to a non-empty list of "
                         f"validation accuracies; got {valid!r}.")
    med = {lr: float(np.median(v)) for lr, v in valid.items()}
    best = max(med.values())
    ties = sorted(lr for lr in valid if med[lr] == best)
    return max(ties, key=lambda v: (float(np.mean(valid[v])), -v)), ties


def _test_row(test) -> dict:
    return {"k": int(sum(a >= SUCCESS for a in test)), "n": len(test),
            "median": float(np.median(test)), "min": min(test), "max": max(test)}


def summarise(mine, grid, valid_key="valid_acc", test_key="test_acc") -> dict:
    """Selection and report for one model's runs ``mine`` over the rates ``grid``:
    the chosen rate, its test k/n, median, min and max, and the same test row at every
    rate (``test_by_lr``), so a reader sees what a tied rate would have given."""
    valid = {lr: [r[valid_key] for r in mine if r["lr"] == lr] for lr in grid}
    lr, ties = choose_lr(valid)
    by_lr = {str(v): _test_row([r[test_key] for r in mine if r["lr"] == v]) for v in grid}
    return {"lr": lr, "ties": ties, "inside": any(grid[0] < v < grid[-1] for v in ties),
            "valid_median": {str(v): float(np.median(valid[v])) for v in grid},
            "valid_mean": {str(v): round(float(np.mean(valid[v])), 6) for v in grid},
            **by_lr[str(lr)], "test_by_lr": by_lr}


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
            row = summarise(mine, grid)
            chosen[f"{task}/{name}"] = row["lr"]
            summary.append({"task": task, "model": name, **row,
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


def arm_table(res) -> str:
    lines = [f"{'model':<8}{'steps':>6}{'lr':>7}{'ties':>18}{'k/n':>6}{'median':>8}"
             f"{'min':>7}"]
    for s in res["summary"]:
        ties = ",".join(f"{v:.0e}" for v in s["ties"])
        lines.append(f"{s['model']:<8}{s['steps']:>6}{s['lr']:>7.0e}{ties:>18}"
                     f"{str(s['k']) + '/' + str(s['n']):>6}{s['median']:>8.3f}"
                     f"{s['min']:>7.3f}")
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


# --- the budget arm: 4x the sweep's steps, with learning curves and gradient norms

ARM = {**FULL, "steps": 1200, "checkpoint_every": 300, "grad_window": 100,
       "lr_grid": {"hier": [3e-3, 1e-2, 3e-2]},
       "models": ["depth1", "wide1", "depth3", "depth4", "res4"]}
TINY_ARM = {**TINY, "steps": 4, "checkpoint_every": 2, "grad_window": 2,
            "lr_grid": {"hier": [1e-2, 3e-2]}, "models": ["depth1", "res4"]}


def input_weights(model):
    """The input-to-hidden weights (U_1 and U_L) of the bottom and top layers of a torch
    ``Tagger`` encoder, plain (``nn.GRU(num_layers=L)``) or residual (one module per
    layer)."""
    enc = model.encoder
    if hasattr(enc, "layers"):
        return enc.layers[0].weight_ih_l0, enc.layers[-1].weight_ih_l0
    if hasattr(enc, "weight_ih_l0"):
        return enc.weight_ih_l0, getattr(enc, f"weight_ih_l{enc.num_layers - 1}")
    raise TypeError(f"expected a Tagger with impl='torch'; got encoder {type(enc).__name__}.")


def train_logged(model, tokens, labels, *, steps, lr, batch_size, seed, every, window,
                 evaluate):
    """``companion.nn.stacked.train_tagger`` step for step (the same batches, Adam,
    clipping at norm 1, so the same trajectory), and in addition: the norms of the
    gradients reaching the bottom and the top layer's input weights before clipping,
    median over each ``window`` steps, and ``evaluate(model)`` after every ``every``
    steps. Returns ``(losses, checkpoints, grad_bottom, grad_top)``."""
    rng = np.random.default_rng(seed)
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    labels = torch.as_tensor(labels, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bottom, top = input_weights(model)
    model.train()
    losses, checkpoints, gb, gt, wb, wt = [], [], [], [], [], []
    for step in range(steps):
        idx = torch.as_tensor(rng.integers(0, tokens.shape[0], size=batch_size))
        logits = model(tokens[idx])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 labels[idx].reshape(-1))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is not finite at step {step}; lower lr={lr}.")
        opt.zero_grad()
        loss.backward()
        wb.append(float(bottom.grad.norm()))
        wt.append(float(top.grad.norm()))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % window == 0:
            gb.append(float(np.median(wb)))
            gt.append(float(np.median(wt)))
            wb, wt = [], []
        if (step + 1) % every == 0:
            checkpoints.append({"step": step + 1, **evaluate(model)})
    return losses, checkpoints, gb, gt


def _arm_data(cfg):
    return {split: word_parity(cfg[f"n_{split}"], LENGTH, hierarchical=True, vocab=VOCAB,
                               seed=200 + i + 10)
            for i, split in enumerate(("train", "valid", "test"))}


def _arm_run(job):
    cfg, name, lr, seed = job
    torch.set_num_threads(1)
    d = _arm_data(cfg)
    model = make_model(name, seed, cfg["scale"])
    c_run = time.process_time()

    def evaluate(m):
        return {"valid_acc": round(tagging_accuracy(m, *d["valid"]), 6),
                "test_acc": round(tagging_accuracy(m, *d["test"]), 6)}

    n_ck = cfg["steps"] // cfg["checkpoint_every"]
    try:
        losses, ck, gb, gt = train_logged(
            model, *d["train"], steps=cfg["steps"], lr=lr, batch_size=cfg["batch"],
            seed=seed, every=cfg["checkpoint_every"], window=cfg["grad_window"],
            evaluate=evaluate)
        run = {"final_loss": round(float(np.mean(losses[-20:])), 6), "diverged": False,
               "checkpoints": ck, "grad_bottom": [round(g, 8) for g in gb],
               "grad_top": [round(g, 8) for g in gt]}
    except FloatingPointError:
        run = {"final_loss": None, "diverged": True, "grad_bottom": [], "grad_top": [],
               "checkpoints": [{"step": (i + 1) * cfg["checkpoint_every"], "valid_acc": 0.0,
                                "test_acc": 0.0} for i in range(n_ck)]}
    return {"task": "hier", "model": name, "lr": lr, "seed": seed, **run,
            "cpu_s": round(time.process_time() - c_run, 3)}


def budget_arm(cfg, jobs=1):
    """``cfg["models"]`` on the ``hier`` task at ``cfg["steps"]`` steps, each on its grid
    with every seed, evaluated every ``cfg["checkpoint_every"]`` steps; the selection rule
    (:func:`choose_lr`) is applied at every checkpoint, so each row is the verdict the
    protocol gives at that budget. ``jobs`` worker processes (the runs are independent
    and single-threaded, so the result does not depend on ``jobs``)."""
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes; got {jobs}.")
    grid = cfg["lr_grid"]["hier"]
    todo = [(cfg, m, lr, s) for m in cfg["models"] for lr in grid for s in cfg["seeds"]]
    t0 = time.time()
    if jobs == 1:
        runs = [_arm_run(j) for j in todo]
    else:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(jobs) as pool:
            runs = pool.map(_arm_run, todo, chunksize=1)
    d = _arm_data(cfg)
    summary = []
    for name in cfg["models"]:
        mine = [r for r in runs if r["model"] == name]
        for i, step in enumerate(range(cfg["checkpoint_every"], cfg["steps"] + 1,
                                       cfg["checkpoint_every"])):
            flat = [{"lr": r["lr"], **r["checkpoints"][i]} for r in mine]
            summary.append({"model": name, "steps": step, **summarise(flat, grid),
                            "params": count_parameters(make_model(name, 0, cfg["scale"]))})
    cpu_runs = sum(r["cpu_s"] for r in runs)
    return {"name": "depth_budget_4x",
            "config": {**cfg, "length": LENGTH, "vocab": VOCAB, "cell": "gru",
                       "models": {m: MODELS[m] for m in cfg["models"]}, "success": SUCCESS,
                       "selection": TIE_BREAK, "jobs": jobs},
            "runs": runs, "summary": summary,
            "baseline": {"hier": majority_baseline(d["train"][1], d["test"][1])},
            "timing": {"wall_s": round(time.time() - t0, 1), "cpu_s": round(cpu_runs, 1),
                       "cpu_s_all_runs": round(cpu_runs, 1)},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__}}


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
    parser.add_argument("--budget-4x", action="store_true",
                        help="hier task, depth1/wide1/depth3/depth4/res4 at 4x the steps, "
                             "with learning curves and gradient norms; writes "
                             "depth_budget_4x.json")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes for --budget-4x (default 1)")
    args = parser.parse_args(argv)
    if args.budget_4x:
        cfg = TINY_ARM if args.tiny else ARM
        out = pathlib.Path(args.out_dir) / "depth_budget_4x.json"
        res = budget_arm(cfg, args.jobs)
        out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
        print(arm_table(res))
        print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
        return 0
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
