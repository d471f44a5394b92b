"""The fair long-range sweep: RNN, clipped RNN, IRNN, LSTM and GRU against sequence length.

One command regenerates the stored results that chapters 5 and 6 draw::

    .venv/bin/python -m experiments.long_range_sweep          # both tasks, ~10 min, 2 cores

It writes ``companion/data/results/long_range_sweep.json`` (the adding problem) and
``companion/data/results/temporal_order_sweep.json`` (the temporal-order problem),
loaded in notebooks with ``companion.data.results.load_results(name)``.

What makes the comparison fair (see ``EXPERIMENTS.md`` of the course):

* the same budget for every model: steps, batch size, hidden size, the same data
  streams; parameter counts are stored and printed;
* every model on its own learning-rate grid (log-spaced), all seeds at every value;
  one learning rate per model is chosen on a *validation* set (rule below) and the
  results are reported on a separate *test* set; whether the chosen value sits at the
  edge of its grid is printed and stored;
* matched initialisation choices: LSTM forget-gate bias +1 and GRU update-gate bias +1
  (both keep sigmoid(1) = 0.73 of the old state per step at initialisation); the IRNN
  (ReLU, identity recurrent matrix, zero biases; Le et al. 2015) is the ungated
  cell's answer to the same problem;
* clipping: "rnn" is the plain tanh RNN without clipping, every other model clips each
  run's gradient to global norm 1 (so "rnn" vs "rnn_clip" isolates clipping);
* a trivial baseline (the constant predictor) scored on the same test set;
* the mechanism measured in the same runs: the norm of ``dL/dh_t`` against the distance
  ``T - 1 - t`` from the read-out, at initialisation and after training.

Every (task, length, cell) is ONE batched ensemble (``companion.nn.ensemble``) holding
all seeds x learning rates (x clipping, for the tanh cell) of that cell: member
(model, lr, seed) starts from exactly the weights of the single model seeded ``seed``
and sees the data stream of ``seed`` (streams are per seed, shared across learning
rates and models, so the models are compared on the same data).

Two stages, so that the curves get both ends inside the time budget:

1. **Selection.** At the task's *selection lengths* (adding 10, 20, 40; temporal order
   20, 40) every model trains at every value of its grid with every seed. Selection
   rule (the same for every model and both tasks): for each learning rate, the median
   over seeds of the validation score (adding: fraction of sequences solved; temporal
   order: accuracy) is averaged over the selection lengths; the learning rate with the
   highest average wins, ties broken by the lower average validation loss. The
   per-length winners are stored too (``chosen_lr_per_length``), to show how much the
   choice matters.
2. **Extension.** Each model then continues at its chosen learning rate, all seeds,
   doubling the length (adding 80 ... 640; temporal order 80 ... 320) for as long as
   at least one seed succeeded at the previous length. A model stops at the first
   length where no seed succeeds (its far end); longer lengths are not run for it
   and are marked ``stopped`` in the summary (assumed failures: a model that cannot
   bridge T steps is not expected to bridge 2T with the same budget). A model that
   still succeeds at the longest length has ``far_end_reached: false``.

Saturated ties (the tie arm). When several rates of one model share the highest
selection score (every median seed solves every selection length: a saturated score),
the rule above picks one of them by the validation loss, and the far end of the curve
is the far end of that one rate. The tie arm runs the extension rule (the same
lengths, all seeds, go on while one seed succeeded) at every *other* tied rate, so the
far end can be read at each of them::

    .venv/bin/python -m experiments.long_range_sweep --ties --tasks adding          # ~6 min, 2 cores
    .venv/bin/python -m experiments.long_range_sweep --ties --tasks temporal_order  # ~5 min, 2 cores

They read the stored sweep of the task and write ``long_range_ties.json`` (adding) and
``temporal_order_ties.json`` (temporal order); the chosen rate's rows are copied from the
stored sweep, so each file holds the whole curve at every tied rate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

#: model name -> (cell kind of companion.nn.ensemble, clipping by global norm, label)
MODELS = {
    "rnn": ("rnn", math.inf, "RNN"),
    "rnn_clip": ("rnn", 1.0, "RNN + clipping"),
    "irnn": ("irnn", 1.0, "IRNN"),
    "lstm": ("lstm", 1.0, "LSTM"),
    "gru": ("gru", 1.0, "GRU"),
}
#: learning-rate grids per model: four log-spaced values (a factor of about 3 apart)
#: around the best value of pilot runs and of an earlier sweep with wider grids (the
#: IRNN, LSTM and GRU chose the top of their first grids; their grids moved up until
#: the winner sat inside). Whether the chosen value is at an edge is stored and printed.
LR_GRIDS = {
    "rnn": (3e-4, 1e-3, 3e-3, 1e-2),
    "rnn_clip": (3e-4, 1e-3, 3e-3, 1e-2),
    "irnn": (3e-4, 1e-3, 3e-3, 1e-2),
    "lstm": (3e-3, 1e-2, 3e-2, 1e-1),
    "gru": (1e-2, 3e-2, 1e-1, 3e-1),
}
TASKS = {
    "adding": {
        "name": "long_range_sweep", "input_size": 2, "output_size": 1,
        "lengths": (10, 20, 40), "extend_lengths": (80, 160, 320, 640),
        "success_fraction": 0.8,
        "description": "adding problem (Hochreiter & Schmidhuber 1997), fixed length; "
                       "score = fraction of sequences with |prediction - target| < 0.04",
    },
    "temporal_order": {
        "name": "temporal_order_sweep", "input_size": 8, "output_size": 4,
        "lengths": (20, 40), "extend_lengths": (80, 160, 320),
        "success_fraction": 0.95,
        "description": "temporal-order problem (Hochreiter & Schmidhuber 1997, task 6a), "
                       "4 classes; score = accuracy",
    },
}
DEFAULTS = {"seeds": (0, 1, 2, 3, 4), "steps": 1000, "batch": 32, "hidden": 32,
            "n_valid": 500, "n_test": 1000, "n_probe": 64, "gate_bias": 1.0}
RESULTS_DIR = Path(__file__).resolve().parents[1] / "companion" / "data" / "results"


def _task_data(task: str, n: int, length: int, rng):
    from companion.data.synthetic import adding_problem, temporal_order

    gen = adding_problem if task == "adding" else temporal_order
    return gen(n, length, rng=rng)


def _stream_rng(task: str, length: int, seed: int, purpose: int):
    """Independent streams: purpose 0 training (per seed), 1 validation, 2 test."""
    return np.random.default_rng([list(TASKS).index(task), length, seed, purpose])


def distance_grid(length: int) -> list[int]:
    """Distances at which gradient norms are stored: 0, 1, 2, 3, 5, 8, ... up to T - 1."""
    d = np.unique(np.round(np.geomspace(1, length - 1, 16)).astype(int))
    return [0] + [int(v) for v in d if v > 0]


def run_job(task: str, length: int, cell: str, models, grids, seeds, cfg: dict) -> dict:
    """Train one batched ensemble: every (model, lr, seed) of one cell at one length."""
    import torch
    import torch.nn.functional as F

    from companion.nn.ensemble import Ensemble, state_gradient_norms, train_ensemble

    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    spec = TASKS[task]
    members = [(m, lr, s) for m in models for lr in grids[m] for s in seeds]
    seed_index = torch.tensor([seeds.index(s) for _, _, s in members])
    ens = Ensemble(cell, spec["input_size"], cfg["hidden"], spec["output_size"],
                   seeds=[s for _, _, s in members], gate_bias=cfg["gate_bias"])
    lrs = [lr for _, lr, _ in members]
    clips = [MODELS[m][1] for m, _, _ in members]
    ytype = torch.float32 if task == "adding" else torch.long
    rngs = [_stream_rng(task, length, s, 0) for s in seeds]

    def batch_fn(step):
        xs, ys = zip(*(_task_data(task, cfg["batch"], length, r) for r in rngs))
        x = torch.as_tensor(np.stack(xs), dtype=torch.float32)[seed_index]  # (M, N, T, D)
        y = torch.as_tensor(np.stack(ys), dtype=ytype)[seed_index]  # (M, N)
        return x, y

    def per_sequence_loss(out, y):  # (M, N); y is (M, N) or (N,) shared
        y = y.expand(out.shape[:2]) if y.dim() == 1 else y
        if task == "adding":
            return (out[..., 0] - y) ** 2
        M, N, K = out.shape
        return F.cross_entropy(out.reshape(M * N, K), y.reshape(M * N),
                               reduction="none").view(M, N)

    def loss_fn(out, y):
        return per_sequence_loss(out, y).mean(dim=1)

    xv, yv = _task_data(task, cfg["n_valid"], length, _stream_rng(task, length, 0, 1))
    xt, yt = _task_data(task, cfg["n_test"], length, _stream_rng(task, length, 0, 2))
    xv_t = torch.as_tensor(xv, dtype=torch.float32)
    probe_x, probe_y = xv_t[:cfg["n_probe"]], torch.as_tensor(yv[:cfg["n_probe"]], dtype=ytype)
    dist = distance_grid(length)
    cols = [length - 1 - d for d in dist]

    def grad_profile():
        g = state_gradient_norms(ens, probe_x, lambda out: per_sequence_loss(out, probe_y))
        return np.median(g, axis=1)[:, cols]  # (M, len(dist)), median over sequences

    g_init = grad_profile()
    hist = train_ensemble(ens, batch_fn, loss_fn, steps=cfg["steps"], lr=lrs, clip_norm=clips)
    g_final = grad_profile()

    def score(x, y):
        out = ens.predict(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
        if task == "adding":
            pred = out[..., 0]
            with np.errstate(invalid="ignore"):
                frac = (np.abs(pred - y[None]) < 0.04).mean(axis=1)
                loss = ((pred - y[None]) ** 2).mean(axis=1)
        else:
            frac = (out.argmax(-1) == y[None]).mean(axis=1)
            z = out - out.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            loss = -np.take_along_axis(logp, y[None, :, None], -1)[..., 0].mean(axis=1)
        return frac, loss

    vf, vl = score(xv, yv)
    tf, tl = score(xt, yt)
    tail = np.nanmean(hist.loss[-50:], axis=0) if not np.all(np.isnan(hist.loss[-50:])) else None
    runs, grads = [], []

    def num(v, digits=6):
        v = float(v)
        return round(v, digits) if math.isfinite(v) else None

    for i, (m, lr, s) in enumerate(members):
        runs.append({
            "model": m, "length": length, "lr": lr, "seed": s,
            "valid_fraction": num(vf[i], 4), "valid_loss": num(vl[i]),
            "test_fraction": num(tf[i], 4), "test_loss": num(tl[i]),
            "final_train_loss": num(tail[i]) if tail is not None else None,
            "diverged": bool(hist.diverged[i]),
            "diverged_step": int(hist.diverged_step[i]),
            "success": bool(not hist.diverged[i] and tf[i] >= spec["success_fraction"]),
        })
        grads.append({"model": m, "length": length, "lr": lr, "seed": s,
                      "init": [float(f"{v:.3g}") for v in g_init[i]],
                      "final": [float(f"{v:.3g}") if math.isfinite(v) else None
                                for v in g_final[i]]})
    best = max(tf[i] for i in range(len(members)))
    print(f"  {task} T={length} {cell}: {len(members)} members, best test score {best:.3f}, "
          f"{time.process_time() - c0:.0f} s CPU", file=sys.stderr, flush=True)
    return {"task": task, "length": length, "cell": cell, "runs": runs, "grads": grads,
            "distances": dist, "param_count": ens.parameter_count(), "models": list(models),
            "members": len(members), "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}


def _run(job):
    return run_job(*job)


def baseline(task: str, length: int, cfg: dict) -> dict:
    """The constant predictor on the test set: the training targets' mean / majority class."""
    xt, yt = _task_data(task, cfg["n_test"], length, _stream_rng(task, length, 0, 2))
    _, ytr = _task_data(task, 10_000, length, _stream_rng(task, length, 0, 0))
    if task == "adding":
        c = float(ytr.mean())
        return {"length": length, "prediction": round(c, 4),
                "test_fraction": round(float((np.abs(c - yt) < 0.04).mean()), 4),
                "test_loss": round(float(((c - yt) ** 2).mean()), 6)}
    counts = np.bincount(ytr, minlength=4)
    p = counts / counts.sum()
    return {"length": length, "prediction": int(counts.argmax()),
            "test_fraction": round(float((yt == counts.argmax()).mean()), 4),
            "test_loss": round(float(-np.log(p[yt]).mean()), 6)}


def select_lr(runs, model, grid, lengths):
    """The selection rule of the module docstring; returns (lr, table of scores)."""
    table = []
    for lr in grid:
        fr, ls = [], []
        for L in lengths:
            cell = [r for r in runs if r["model"] == model and r["lr"] == lr and r["length"] == L]
            fr.append(float(np.median([r["valid_fraction"] or 0.0 for r in cell])))
            ls.append(float(np.median([r["valid_loss"] if r["valid_loss"] is not None
                                       else np.inf for r in cell])))
        table.append((float(np.mean(fr)), -float(np.mean(ls)), lr))
    best = max(table)
    return best[2], [{"lr": lr, "mean_median_valid_fraction": round(f, 4)}
                     for f, _, lr in table]


def summarise(task, result_jobs, cfg, models, grids, seeds, lengths, extend_lengths) -> dict:
    runs = [r for j in result_jobs for r in j["runs"]]
    grads = [g for j in result_jobs for g in j["grads"]]
    distances = {str(j["length"]): j["distances"] for j in result_jobs}
    param_counts = {}
    for j in result_jobs:
        for m in j["models"]:
            param_counts[m] = j["param_count"]
    return summarise_runs(task, runs, grads, distances, param_counts, cfg, models, grids,
                          seeds, lengths, extend_lengths)


def summarise_runs(task, runs, grads, distances, param_counts, cfg, models, grids, seeds,
                   lengths, extend_lengths=()) -> dict:
    """The stored dict from every run's numbers: selection, summary, baseline, config."""
    import torch

    order = {m: i for i, m in enumerate(MODELS)}
    runs = sorted(runs, key=lambda r: (order[r["model"]], r["length"], r["lr"], r["seed"]))
    grads = sorted(grads, key=lambda r: (order[r["model"]], r["length"], r["lr"], r["seed"]))
    all_lengths = list(lengths) + list(extend_lengths)
    chosen, per_length, scores, edge = {}, {}, {}, {}
    for m in models:
        chosen[m], scores[m] = select_lr(runs, m, grids[m], lengths)
        per_length[m] = {str(L): select_lr(runs, m, grids[m], [L])[0] for L in lengths}
        i = grids[m].index(chosen[m])
        edge[m] = "low" if i == 0 else "high" if i == len(grids[m]) - 1 else "inside"
    summary, far_end = [], {}
    for m in models:
        last_k = None
        for L in all_lengths:
            cell = [r for r in runs if r["model"] == m and r["length"] == L
                    and r["lr"] == chosen[m]]
            k = sum(r["success"] for r in cell)
            summary.append({"model": m, "length": L, "lr": chosen[m], "k": k, "n": len(cell),
                            "stopped": not cell,
                            "test_fraction": [r["test_fraction"] for r in cell]})
            if cell:
                last_k = k
        far_end[m] = last_k == 0
    spec = TASKS[task]
    return {
        "name": spec["name"], "task": spec["description"],
        "command": "python -m experiments.long_range_sweep",
        "config": {
            "steps": cfg["steps"], "batch": cfg["batch"], "hidden": cfg["hidden"],
            "n_valid": cfg["n_valid"], "n_test": cfg["n_test"], "n_probe": cfg["n_probe"],
            "lengths": all_lengths, "selection_lengths": list(lengths),
            "extension_lengths": list(extend_lengths), "seeds": list(seeds),
            "success_fraction": spec["success_fraction"], "optimizer": "adam",
            "models": {m: {"cell": MODELS[m][0], "label": MODELS[m][2],
                           "clip_norm": None if math.isinf(MODELS[m][1]) else MODELS[m][1],
                           "lr_grid": list(grids[m])} for m in models},
            "gate_bias": cfg["gate_bias"],
            "init": "torch defaults U(-1/sqrt(H), 1/sqrt(H)); lstm forget-gate bias +1; "
                    "gru update-gate bias +1 (matched); irnn W_hh = I, biases 0",
            "selection_rule": "per model, one lr: highest mean over the selection lengths "
                              "of the median over seeds of the validation score; ties: "
                              "lower mean median validation loss",
            "extension_rule": "at the chosen lr, all seeds, the next extension length is "
                              "run while at least one seed succeeded at the previous "
                              "length; 'stopped' cells were not run",
            "data": "training stream per (length, seed), shared by all models and lrs; "
                    "one validation set and one test set per length, shared by all runs",
            "gradient_norms": "||dL_n/dh_t|| for the n_probe first validation sequences, "
                              "median over sequences, at distances T-1-t, per member, "
                              "at initialisation and after training",
        },
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
        "param_counts": {m: param_counts[m] for m in models if m in param_counts},
        "baseline": [baseline(task, L, cfg) for L in all_lengths],
        "chosen_lr": chosen, "chosen_lr_edge": edge, "lr_scores": scores,
        "chosen_lr_per_length": per_length, "far_end_reached": far_end,
        "summary": summary, "runs": runs,
        "grad_norms": {"distances": {str(L): distances[str(L)] for L in all_lengths
                                     if str(L) in distances},
                       "records": grads},
    }


def print_report(res: dict) -> None:
    cfg = res["config"]
    lengths = cfg["lengths"]
    print(f"\n{res['name']}: {cfg['steps']} steps, batch {cfg['batch']}, hidden "
          f"{cfg['hidden']}, {len(cfg['seeds'])} seeds")
    print("parameters: " + ", ".join(f"{m} {n}" for m, n in res["param_counts"].items()))
    print(f"{'model':<10}{'lr':>8}{'edge':>8}" + "".join(f"{'T=' + str(L):>9}" for L in lengths)
          + "  far end")
    for m in cfg["models"]:
        cells = {r["length"]: "-" if r["stopped"] else f"{r['k']}/{r['n']}"
                 for r in res["summary"] if r["model"] == m}
        print(f"{m:<10}{res['chosen_lr'][m]:>8.0e}{res['chosen_lr_edge'][m]:>8}"
              + "".join(f"{cells[L]:>9}" for L in lengths)
              + ("  reached" if res["far_end_reached"][m] else "  NOT reached"))
    print(f"{'constant':<26}" + "".join(f"{b['test_fraction']:>9.3f}" for b in res["baseline"])
          + "   (fraction solved / accuracy of the constant predictor)")
    print("(-: not run, the model failed with every seed at a shorter length)")


#: relative cost of one member-step per cell (measured), to start the longest jobs first
_COST = {"rnn": 1.0, "irnn": 1.0, "lstm": 6.0, "gru": 5.0}


def sweep(tasks=("adding", "temporal_order"), *, workers: int = 2, lengths=None,
          extend_lengths=None, seeds=DEFAULTS["seeds"], models=tuple(MODELS), grids=None,
          **overrides) -> dict:
    """Run the two-stage sweep; return ``{task: results dict}`` (also timing).

    Every job is one batched ensemble seeded on its own, so its numbers do not depend
    on the order in which jobs run or on which other jobs ran beside it.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    cfg = dict(DEFAULTS)
    cfg.update(overrides)
    cfg.pop("seeds", None)
    seeds = list(seeds)
    grids = {m: tuple((grids or LR_GRIDS)[m]) for m in models}
    sel = {t: list(lengths or TASKS[t]["lengths"]) for t in tasks}
    ext = {t: list(TASKS[t]["extend_lengths"] if extend_lengths is None else extend_lengths)
           for t in tasks}
    stage1 = []
    for task in tasks:
        for L in sel[task]:
            for cell in dict.fromkeys(MODELS[m][0] for m in models):
                ms = [m for m in models if MODELS[m][0] == cell]
                stage1.append((task, L, cell, ms, grids, seeds, cfg))
    # the GRU and LSTM stage-1 jobs first: their extensions are the longest chains
    stage1.sort(key=lambda j: -(_COST[j[2]] * 1000 + j[1] * len(j[3])))
    pending = {(j[0], j[2]): len([k for k in stage1 if (k[0], k[2]) == (j[0], j[2])])
               for j in stage1}
    done: list[dict] = []
    t0, c0 = time.perf_counter(), time.process_time()
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None

    def submit(job):
        if pool is None:
            return _Done(_run(job))
        return pool.submit(_run, job)

    def extend(task, model, lr, after_length):
        nxt = [L for L in ext[task] if L > after_length]
        if not nxt:
            return None
        return (task, nxt[0], MODELS[model][0], [model], {model: (lr,)}, seeds, cfg)

    futures = {submit(j): j for j in stage1}
    while futures:
        if pool is None:
            finished = [next(iter(futures))]
        else:
            finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        for f in finished:
            job = futures.pop(f)
            res = f.result()
            done.append(res)
            task, L, cell, ms = job[:4]
            new_jobs = []
            if L in sel[task]:  # stage 1: select once every selection length is in
                pending[(task, cell)] -= 1
                if pending[(task, cell)] == 0:
                    runs = [r for d in done if d["task"] == task and d["cell"] == cell
                            and d["length"] in sel[task] for r in d["runs"]]
                    for m in ms:
                        lr, _ = select_lr(runs, m, grids[m], sel[task])
                        last = [r for r in runs if r["model"] == m and r["lr"] == lr
                                and r["length"] == max(sel[task])]
                        if any(r["success"] for r in last):
                            new_jobs.append(extend(task, m, lr, max(sel[task])))
            elif any(r["success"] for r in res["runs"]):  # stage 2: go on while it works
                m = ms[0]
                new_jobs.append(extend(task, m, job[4][m][0], L))
            for nj in new_jobs:
                if nj is not None:
                    futures[submit(nj)] = nj
    if pool is not None:
        pool.shutdown()
    wall = time.perf_counter() - t0
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (cpu_children.ru_utime + cpu_children.ru_stime
                                      if workers > 1 else 0.0)
    out = {}
    for task in tasks:
        res = summarise(task, [j for j in done if j["task"] == task], cfg, models, grids,
                        seeds, sel[task], ext[task])
        res["timing"] = {
            "sweep_wall_s": round(wall, 1), "sweep_cpu_s": round(cpu, 1), "workers": workers,
            "jobs_cpu_s": round(sum(j["cpu_s"] for j in done if j["task"] == task), 1),
            "note": "wall and CPU of the whole command (all tasks); jobs_cpu_s: this "
                    "task's ensembles only.",
        }
        out[task] = res
    return out


def tied_rates(res: dict, model: str) -> list[float]:
    """The rates of ``model`` whose selection score equals the chosen rate's (as stored).

    A tie here is exact: the same mean median validation score over the selection
    lengths, which happens when the score saturates (every median seed solves them all).

    >>> res = {"chosen_lr": {"gru": 0.03}, "lr_scores": {"gru": [
    ...     {"lr": 0.01, "mean_median_valid_fraction": 1.0},
    ...     {"lr": 0.03, "mean_median_valid_fraction": 1.0},
    ...     {"lr": 0.3, "mean_median_valid_fraction": 0.64}]}}
    >>> tied_rates(res, "gru")
    [0.01, 0.03]
    """
    if model not in res.get("chosen_lr", {}):
        raise ValueError(f"model must be one of {sorted(res.get('chosen_lr', {}))}; "
                         f"got {model!r}.")
    scores = {row["lr"]: row["mean_median_valid_fraction"] for row in res["lr_scores"][model]}
    best = scores[res["chosen_lr"][model]]
    return sorted(lr for lr, v in scores.items() if v == best)


def tie_arm(task: str, res: dict, *, workers: int = 2, models=None, steps=None) -> dict:
    """Run the extension rule at every tied, unchosen rate of each model; return the dict.

    ``res`` is the stored sweep of ``task`` (its configuration is reused: budget, seeds,
    lengths, data streams). ``steps`` overrides the budget (smoke tests only).
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}; got {task!r}.")
    c = res["config"]
    cfg = {k: c[k] for k in ("steps", "batch", "hidden", "n_valid", "n_test", "n_probe",
                             "gate_bias")}
    if steps is not None:
        cfg["steps"] = int(steps)
    seeds = list(c["seeds"])
    sel, ext = list(c["selection_lengths"]), list(c["extension_lengths"])
    models = list(models or c["models"])
    ties, rows, new_runs = {}, [], []
    jobs = []
    for m in models:
        tied = tied_rates(res, m)
        if len(tied) < 2:
            continue
        others = [lr for lr in tied if lr != res["chosen_lr"][m]]
        ties[m] = {"chosen_lr": res["chosen_lr"][m], "tied_lrs": tied,
                   "selection_score": next(r["mean_median_valid_fraction"]
                                           for r in res["lr_scores"][m]
                                           if r["lr"] == res["chosen_lr"][m])}
        last = {lr: [r for r in res["runs"] if r["model"] == m and r["lr"] == lr
                     and r["length"] == max(sel)] for lr in others}
        for lr in others:  # one chain per rate, so that two workers share the work
            if any(r["success"] for r in last[lr]) and ext:
                jobs.append((task, ext[0], MODELS[m][0], [m], {m: (lr,)}, seeds, cfg))
    t0, c0 = time.perf_counter(), time.process_time()
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None

    def submit(job):
        return _Done(_run(job)) if pool is None else pool.submit(_run, job)

    futures = {submit(j): j for j in sorted(jobs, key=lambda j: -_COST[j[2]])}  # slow first
    done = []
    while futures:
        if pool is None:
            finished = [next(iter(futures))]
        else:
            finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        for f in finished:
            job = futures.pop(f)
            out = f.result()
            done.append(out)
            m, L = job[3][0], job[1]
            alive = tuple(lr for lr in job[4][m]
                          if any(r["success"] for r in out["runs"] if r["lr"] == lr))
            nxt = [x for x in ext if x > L]
            if alive and nxt:
                nj = (task, nxt[0], job[2], [m], {m: alive}, seeds, cfg)
                futures[submit(nj)] = nj
    if pool is not None:
        pool.shutdown()
    wall = time.perf_counter() - t0
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (ch.ru_utime + ch.ru_stime if workers > 1 else 0.0)
    new_runs = [r for d in done for r in d["runs"]]
    stored = {(r["model"], r["lr"], r["length"]): [] for r in res["runs"]}
    for r in res["runs"]:
        stored[(r["model"], r["lr"], r["length"])].append(r)
    fresh = {}
    for r in new_runs:
        fresh.setdefault((r["model"], r["lr"], r["length"]), []).append(r)
    far_end = {}
    for m, t in ties.items():
        far_end[m] = {}
        for lr in t["tied_lrs"]:
            source = stored if lr == t["chosen_lr"] else {**stored, **fresh}
            last_ok = None
            for L in sel + ext:
                cell = sorted(source.get((m, lr, L), []), key=lambda r: r["seed"])
                k = sum(r["success"] for r in cell)
                rows.append({"model": m, "lr": lr, "length": L, "k": k, "n": len(cell),
                             "stopped": not cell, "chosen": lr == t["chosen_lr"],
                             "test_fraction": [r["test_fraction"] for r in cell]})
                if cell and k > 0:
                    last_ok = L
            last_run = max(L for L in sel + ext if source.get((m, lr, L)))
            far_end[m][str(lr)] = {"longest_solved": last_ok,
                                   "first_failed": None if last_ok == last_run else last_run}
    return {
        "name": TASKS[task]["name"].replace("_sweep", "") + "_ties",
        "task": TASKS[task]["description"],
        "command": f"python -m experiments.long_range_sweep --ties --tasks {task}",
        "config": {**cfg, "seeds": seeds, "selection_lengths": sel,
                   "extension_lengths": ext, "success_fraction": c["success_fraction"],
                   "sweep": res["name"],
                   "tie_rule": "a rate is tied when its mean median validation score over "
                               "the selection lengths equals the chosen rate's; each tied, "
                               "unchosen rate runs the sweep's extension rule (all seeds, "
                               "next length while one seed succeeded); the chosen rate's "
                               "rows are copied from the stored sweep"},
        "ties": ties, "far_end": far_end, "summary": rows,
        "runs": sorted(new_runs, key=lambda r: (list(MODELS).index(r["model"]), r["lr"],
                                                r["length"], r["seed"])),
        "timing": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "workers": workers,
                   "jobs_cpu_s": round(sum(d["cpu_s"] for d in done), 1)},
    }


def print_ties(res: dict) -> None:
    print(f"\n{res['name']}: far ends at every tied rate ({len(res['config']['seeds'])} seeds)")
    for m, t in res["ties"].items():
        for lr in t["tied_lrs"]:
            cells = [f"T={r['length']} {r['k']}/{r['n']}" for r in res["summary"]
                     if r["model"] == m and r["lr"] == lr and not r["stopped"]]
            tag = " (chosen)" if lr == t["chosen_lr"] else ""
            print(f"  {m:<8} lr {lr:<6g}{tag:<10} " + ", ".join(cells))


class _Done:
    """A finished job in the shape of a future (one worker: no pool)."""

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value

    def done(self):
        return True


def _write(path: Path, res: dict) -> None:
    """Store one task's results compactly (no NaN: missing numbers are null), and report."""
    os.makedirs(path.parent, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(res, fh, indent=None, separators=(",", ":"), allow_nan=False)
        fh.write("\n")
    print_report(res)
    print(f"written to {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--out-dir", default=str(RESULTS_DIR),
                        help="folder for NAME.json (default: the package's results folder)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="override the selection lengths of every task")
    parser.add_argument("--extend-lengths", type=int, nargs="*", default=None,
                        help="override the extension lengths of every task (none: no "
                             "extension stage)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULTS["seeds"]))
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    parser.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    parser.add_argument("--n-valid", type=int, default=DEFAULTS["n_valid"])
    parser.add_argument("--n-test", type=int, default=DEFAULTS["n_test"])
    parser.add_argument("--n-probe", type=int, default=DEFAULTS["n_probe"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--lrs", type=float, nargs="+", default=None,
                        help="one grid for every model (pilot and smoke runs only)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ties", action="store_true",
                        help="run the tie arm (extension at every tied, unchosen rate) "
                             "from the stored sweep of each task in --tasks")
    args = parser.parse_args(argv)
    if args.ties:
        from companion.data.results import load_results

        for task in args.tasks:
            out = tie_arm(task, load_results(TASKS[task]["name"]), workers=args.workers)
            os.makedirs(args.out_dir, exist_ok=True)
            path = Path(args.out_dir) / f"{out['name']}.json"
            with open(path, "w") as fh:
                json.dump(out, fh, indent=None, separators=(",", ":"), allow_nan=False)
                fh.write("\n")
            print_ties(out)
            print(f"written to {path} ({out['timing']['cpu_s']:.0f} s CPU, "
                  f"{out['timing']['wall_s']:.0f} s wall)")
        return 0
    if args.lengths and min(args.lengths) < 10:
        parser.error("--lengths must all be >= 10 (the temporal-order problem needs room)")
    grids = {m: tuple(args.lrs) for m in MODELS} if args.lrs else None
    res = sweep(args.tasks, workers=args.workers, lengths=args.lengths,
                extend_lengths=args.extend_lengths, seeds=args.seeds,
                models=args.models, grids=grids, steps=args.steps, batch=args.batch,
                hidden=args.hidden, n_valid=args.n_valid, n_test=args.n_test,
                n_probe=args.n_probe)
    os.makedirs(args.out_dir, exist_ok=True)
    for r in res.values():
        path = Path(args.out_dir) / f"{r['name']}.json"
        _write(path, r)
    t = next(iter(res.values()))["timing"]
    print(f"\nsweep: {t['sweep_wall_s']:.0f} s wall, {t['sweep_cpu_s']:.0f} s CPU "
          f"({t['workers']} workers)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
