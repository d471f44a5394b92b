"""A diagonal linear recurrent model (LRU) against the tanh RNN on the adding problem (ch. 12).

One command regenerates the stored results that the page "Linear recurrences and parallel
scans" draws::

    .venv/bin/python -m experiments.lru_sweep --jobs 2          # everything, 2 processes
    .venv/bin/python -m experiments.lru_sweep --ablation-only   # only the ablation arms,
                                                                # merged into the stored file
    .venv/bin/python -m experiments.lru_sweep --smoke           # tiny, seconds (smoke test)

It writes ``companion/data/results/lru_sweep.json``, loaded with
``companion.data.results.load_results("lru_sweep")``.

The budget is the one of the stored long-range sweep of chapters 5 and 6
(``experiments/long_range_sweep.py``): 1000 Adam steps, batch 32, hidden (state) size 32,
the same training streams per (length, seed), the same validation (500) and test (1000)
sets, 5 seeds, the same success rule (a run succeeds when at least 80% of the test
sequences have ``|error| < 0.04``) and the same selection rule (per model, one learning
rate: the highest mean over lengths of the median over seeds of the validation fraction;
ties by the lower validation loss). The lengths are 80 and 160, where every tanh RNN of
that sweep failed.

Models, each on its own learning-rate grid:

* ``rnn``: the tanh RNN of ``companion.nn.ensemble`` (torch's initialisation), unclipped,
  grid 1e-3, 3e-3, 1e-2 (the upper three values of the stored sweep's grid, which also
  has 3e-4; its choice there, 3e-3, made at lengths 10 to 40, is inside it). At 80 and
  160 the three rates tie at the constant predictor's level: the notebook prints "tied";
* ``rnn_clip``: the same with clipping by global norm 1;
* ``lru``: ``companion.nn.linear_recurrence.LRUNetwork`` (state 32 complex channels,
  width 8, ring [0.9, 0.999], phases in [0, pi/10]), clipping by global norm 1 as
  ``rnn_clip``; grid 3e-3, 1e-2, 3e-2, 1e-1 (a pilot at T = 160 chose the top of
  1e-3, 3e-3, 1e-2, so the grid was moved up one step and extended).

Ablation (stored under ``"ablation"``, with its own selection, summary and runs), the
same protocol, each arm on its own grid of three rates, 5 seeds:

* ``wrapped_tanh``: :class:`companion.nn.linear_recurrence.WrappedTanhRNN`, the LRU
  network's encoder, MLP read-out and head around a tanh RNN core of 32 channels
  (torch's initialisation, clipping by global norm 1), grid 1e-3, 3e-3, 1e-2, at 80 and
  160: does the wrapper, rather than the linear recurrence, solve the task?
* ``lru_gamma1``: the LRU without its normalisation (gamma = 1), at 160 only;
* ``lru_far_ring``: the LRU with its eigenvalues initialised on the ring [0.5, 0.7] instead
  of [0.9, 0.999] (|lambda|^159 below 1e-24 in every channel at the start), at 160 only;
  both LRU arms on the grid 1e-2, 3e-2, 1e-1 around the full LRU's choice, 3e-2.

Measured CPU time (one thread per process): 431.5 s for the main arms, 518.2 s for the
ablation. With ``--jobs 2`` the cells run in two processes, so on an idle 2-core machine
the whole sweep takes about 8 minutes of wall time (estimated from the CPU time; the
stored wall times were measured on a loaded shared machine).

The LRU reads out only the last position, so it is trained with its closed-form last
state (``scan="last"``), which equals the parallel scan's last state to rounding error
(``tests/test_linear_recurrence.py``) at a fraction of the cost. Stored with every run:
validation and test fraction and loss; for the LRU, the moduli of its eigenvalues
after training (the mechanism: how much of a signal the state keeps over T steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from experiments import long_range_sweep

MODELS = {
    "rnn": {"label": "tanh RNN", "clip_norm": None, "lr_grid": (1e-3, 3e-3, 1e-2)},
    "rnn_clip": {"label": "tanh RNN + clipping", "clip_norm": 1.0,
                 "lr_grid": (1e-3, 3e-3, 1e-2)},
    "lru": {"label": "LRU", "clip_norm": 1.0, "lr_grid": (3e-3, 1e-2, 3e-2, 1e-1)},
}
LRU = {"state_size": 32, "width": 8, "r_min": 0.9, "r_max": 0.999, "max_phase": math.pi / 10}
ABLATION = {
    "wrapped_tanh": {"label": "tanh RNN in the LRU's wrapper", "clip_norm": 1.0,
                     "lr_grid": (1e-3, 3e-3, 1e-2), "lengths": (80, 160)},
    "lru_gamma1": {"label": "LRU, gamma = 1", "clip_norm": 1.0,
                   "lr_grid": (1e-2, 3e-2, 1e-1), "lengths": (160,), "normalise": False},
    "lru_far_ring": {"label": "LRU, ring [0.5, 0.7]", "clip_norm": 1.0,
                     "lr_grid": (1e-2, 3e-2, 1e-1), "lengths": (160,),
                     "r_min": 0.5, "r_max": 0.7},
}
SMOKE_ABLATION_LENGTHS = (8,)
DEFAULTS = {"seeds": (0, 1, 2, 3, 4), "steps": 1000, "batch": 32, "hidden": 32,
            "n_valid": 500, "n_test": 1000, "lengths": (80, 160), "success_fraction": 0.8}
SMOKE = {"seeds": (0, 1), "steps": 3, "batch": 4, "hidden": 4, "n_valid": 20, "n_test": 20,
         "lengths": (8,), "success_fraction": 0.8}
RESULTS = Path(__file__).resolve().parents[1] / "companion" / "data" / "results"


def _stream_rng(length: int, seed: int, purpose: int):
    """The streams of ``experiments.long_range_sweep`` for the adding problem:
    purpose 0 training (per seed), 1 validation, 2 test."""
    return long_range_sweep._stream_rng("adding", length, seed, purpose)


def run_cell(model: str, length: int, cfg: dict) -> list[dict]:
    """Train every (lr, seed) of one model (main or ablation arm) at one length as one
    batched ensemble."""
    import torch

    from companion.data.synthetic import adding_problem
    from companion.nn.ensemble import Ensemble, train_batched, train_ensemble
    from companion.nn.linear_recurrence import (LRUNetwork, WrappedTanhRNN,
                                                train_lru_ensemble)

    torch.set_num_threads(1)
    spec = MODELS[model] if model in MODELS else ABLATION[model]
    seeds, grid = list(cfg["seeds"]), spec["lr_grid"]
    members = [(lr, s) for lr in grid for s in seeds]
    seed_index = torch.tensor([seeds.index(s) for _, s in members])
    clip = spec["clip_norm"] or math.inf
    lrs = [lr for lr, _ in members]
    rngs = [_stream_rng(length, s, 0) for s in seeds]

    def batch_fn(step):
        xs, ys = zip(*(adding_problem(cfg["batch"], length, rng=r) for r in rngs))
        x = torch.as_tensor(np.stack(xs), dtype=torch.float32)[seed_index]
        return x, torch.as_tensor(np.stack(ys), dtype=torch.float32)[seed_index]

    def loss_fn(out, y):
        return ((out[..., 0] - y) ** 2).mean(dim=1)

    if model.startswith("lru"):
        net = LRUNetwork(2, cfg["hidden"], LRU["width"], 1, seeds=[s for _, s in members],
                         r_min=spec.get("r_min", LRU["r_min"]),
                         r_max=spec.get("r_max", LRU["r_max"]), max_phase=LRU["max_phase"],
                         scan="last", normalise=spec.get("normalise", True))
        losses, div_step = train_lru_ensemble(net, batch_fn, loss_fn, steps=cfg["steps"],
                                              lr=lrs, clip_norm=clip)
        moduli = net.eigenvalues().abs().detach().double().numpy()  # (M, H)
    elif model == "wrapped_tanh":
        net = WrappedTanhRNN(2, cfg["hidden"], LRU["width"], 1, seeds=[s for _, s in members])
        hist = train_batched(net, batch_fn, loss_fn, steps=cfg["steps"], lr=lrs,
                             clip_norm=clip)
        losses, div_step, moduli = hist.loss, hist.diverged_step, None
    else:
        net = Ensemble("rnn", 2, cfg["hidden"], 1, seeds=[s for _, s in members])
        hist = train_ensemble(net, batch_fn, loss_fn, steps=cfg["steps"], lr=lrs,
                              clip_norm=clip)
        losses, div_step, moduli = hist.loss, hist.diverged_step, None

    def score(n, purpose):
        x, y = adding_problem(n, length, rng=_stream_rng(length, 0, purpose))
        pred = net.predict(torch.as_tensor(x, dtype=torch.float32)).double().numpy()[..., 0]
        with np.errstate(invalid="ignore"):
            return (np.abs(pred - y[None]) < 0.04).mean(axis=1), ((pred - y[None]) ** 2).mean(1)

    vf, vl = score(cfg["n_valid"], 1)
    tf, tl = score(cfg["n_test"], 2)

    def num(v, digits=6):
        v = float(v)
        return round(v, digits) if math.isfinite(v) else None

    runs = []
    for i, (lr, s) in enumerate(members):
        diverged = bool(div_step[i] >= 0)
        run = {"model": model, "length": length, "lr": lr, "seed": s,
               "valid_fraction": num(vf[i], 4), "valid_loss": num(vl[i]),
               "test_fraction": num(tf[i], 4), "test_loss": num(tl[i]),
               "final_train_loss": num(np.nanmean(losses[-50:, i])) if not diverged else None,
               "diverged": diverged,
               "success": bool(not diverged and tf[i] >= cfg["success_fraction"])}
        if moduli is not None:
            run["eig_moduli"] = [round(float(v), 6) for v in np.sort(moduli[i])]
        runs.append(run)
    return runs


def baseline(length: int, cfg: dict) -> dict:
    """The constant predictor (the mean of 10,000 training targets) on the test set, as
    in ``experiments.long_range_sweep``."""
    return long_range_sweep.baseline("adding", length, cfg)


def select_lr(runs, model, lengths):
    """The selection rule of ``experiments.long_range_sweep``: (chosen lr, edge, scores)."""
    grid = list((MODELS[model] if model in MODELS else ABLATION[model])["lr_grid"])
    lr, table = long_range_sweep.select_lr(runs, model, grid, lengths)
    i = grid.index(lr)
    edge = "low" if i == 0 else "high" if i == len(grid) - 1 else "inside"
    return lr, edge, table


def param_counts(cfg: dict) -> dict:
    from companion.nn.ensemble import Ensemble
    from companion.nn.linear_recurrence import LRUNetwork

    rnn = Ensemble("rnn", 2, cfg["hidden"], 1, seeds=[0]).parameter_count()
    lru = LRUNetwork(2, cfg["hidden"], LRU["width"], 1, seeds=[0]).parameter_count()
    return {"rnn": rnn, "rnn_clip": rnn, "lru": lru}


def ablation_param_counts(cfg: dict) -> dict:
    from companion.nn.linear_recurrence import LRUNetwork, WrappedTanhRNN

    lru = LRUNetwork(2, cfg["hidden"], LRU["width"], 1, seeds=[0]).parameter_count()
    return {"wrapped_tanh": WrappedTanhRNN(2, cfg["hidden"], LRU["width"], 1,
                                           seeds=[0]).parameter_count(),
            "lru_gamma1": LRUNetwork(2, cfg["hidden"], LRU["width"], 1, seeds=[0],
                                     normalise=False).parameter_count(),
            "lru_far_ring": lru}


def _timed_cell(job):
    model, length, cfg = job
    c = time.process_time()
    runs = run_cell(model, length, cfg)
    return runs, {"model": model, "length": length, "cpu_s": round(time.process_time() - c, 1)}


def _run_cells(jobs, n_jobs: int):
    """Every (model, length, cfg) cell, in ``n_jobs`` processes; results in job order."""
    if n_jobs <= 1:
        out = []
        for j in jobs:
            out.append(_timed_cell(j))
            print(f"  {j[0]:<13} T={j[1]:<4} {out[-1][1]['cpu_s']:7.1f} s CPU", flush=True)
        return out
    import multiprocessing as mp

    # the longest cells first, so that the two processes finish together
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1])
    with mp.get_context("fork").Pool(n_jobs) as pool:
        done = pool.map(_timed_cell, [jobs[i] for i in order], chunksize=1)
    out = [None] * len(jobs)
    for i, r in zip(order, done):
        out[i] = r
        print(f"  {jobs[i][0]:<13} T={jobs[i][1]:<4} {r[1]['cpu_s']:7.1f} s CPU", flush=True)
    return out


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def ablation(cfg: dict, *, smoke: bool = False, n_jobs: int = 1) -> dict:
    """The ablation arms (``ABLATION``): their runs, selection and summary, one dict."""
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    jobs = [(m, L, cfg) for m, spec in ABLATION.items()
            for L in (SMOKE_ABLATION_LENGTHS if smoke else spec["lengths"])]
    results = _run_cells(jobs, n_jobs)
    runs = [r for rs, _ in results for r in rs]
    chosen, edge, scores, summary = {}, {}, {}, []
    for m, spec in ABLATION.items():
        lengths = list(SMOKE_ABLATION_LENGTHS if smoke else spec["lengths"])
        chosen[m], edge[m], scores[m] = select_lr(runs, m, lengths)
        for L in lengths:
            cell = [r for r in runs if r["model"] == m and r["lr"] == chosen[m]
                    and r["length"] == L]
            summary.append({"model": m, "length": L, "lr": chosen[m],
                            "k": sum(r["success"] for r in cell), "n": len(cell),
                            "test_fraction": [r["test_fraction"] for r in cell]})
    return {
        "models": {m: {**spec, "lr_grid": list(spec["lr_grid"]),
                       "lengths": list(SMOKE_ABLATION_LENGTHS if smoke else spec["lengths"])}
                   for m, spec in ABLATION.items()},
        "param_counts": ablation_param_counts(cfg),
        "chosen_lr": chosen, "chosen_lr_edge": edge, "lr_scores": scores,
        "summary": summary, "runs": runs,
        "timing": {"wall_s": round(time.perf_counter() - t0, 1),
                   "cpu_s": round(time.process_time() - c0 + _children_cpu() - k0, 1),
                   "cells": [t for _, t in results], "jobs": n_jobs,
                   "note": "one thread per process, on a shared 2-core machine"},
    }


def sweep(cfg: dict, *, n_jobs: int = 1) -> dict:
    import torch

    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    results = _run_cells([(m, L, cfg) for L in cfg["lengths"] for m in MODELS], n_jobs)
    runs = [r for rs, _ in results for r in rs]
    cell_cpu = [t for _, t in results]
    lengths = list(cfg["lengths"])
    chosen, edge, scores, summary = {}, {}, {}, []
    for m in MODELS:
        chosen[m], edge[m], scores[m] = select_lr(runs, m, lengths)
        for L in lengths:
            cell = [r for r in runs if r["model"] == m and r["lr"] == chosen[m]
                    and r["length"] == L]
            summary.append({"model": m, "length": L, "lr": chosen[m],
                            "k": sum(r["success"] for r in cell), "n": len(cell),
                            "test_fraction": [r["test_fraction"] for r in cell]})
    return {
        "name": "lru_sweep",
        "task": "adding problem (Hochreiter & Schmidhuber 1997), fixed length; score = "
                "fraction of sequences with |prediction - target| < 0.04",
        "command": "python -m experiments.lru_sweep",
        "config": {**{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                   "optimizer": "adam",
                   "models": {m: {**MODELS[m], "lr_grid": list(MODELS[m]["lr_grid"])}
                              for m in MODELS},
                   "lru": LRU,
                   "init": "rnn: torch defaults U(-1/sqrt(H), 1/sqrt(H)); lru: eigenvalues "
                           "on the ring (|lambda|^2 uniform on [r_min^2, r_max^2], phase "
                           "uniform on [0, max_phase]), gamma = sqrt(1 - |lambda|^2), "
                           "B, C complex Gaussian, MLPs as torch.nn.Linear",
                   "selection_rule": "per model, one lr: highest mean over lengths of the "
                                     "median over seeds of the validation fraction; ties: "
                                     "lower mean median validation loss",
                   "data": "the streams of experiments.long_range_sweep: training stream "
                           "per (length, seed), shared by all models and lrs; its "
                           "validation and test sets"},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
        "param_counts": param_counts(cfg),
        "baseline": [baseline(L, cfg) for L in lengths],
        "chosen_lr": chosen, "chosen_lr_edge": edge, "lr_scores": scores,
        "summary": summary, "runs": runs,
        "timing": {"sweep_wall_s": round(time.perf_counter() - t0, 1),
                   "sweep_cpu_s": round(time.process_time() - c0 + _children_cpu() - k0, 1),
                   "cells": cell_cpu, "jobs": n_jobs,
                   "note": "one thread per process, on a shared 2-core machine"},
    }


def print_report(res: dict) -> None:
    lengths = res["config"]["lengths"]
    print(f"{'model':<22}{'lr':>8}{'edge':>8}" + "".join(f"{'T=' + str(L):>9}" for L in lengths)
          + "   params")
    for m in MODELS:
        cells = {s["length"]: s for s in res["summary"] if s["model"] == m}
        print(f"{MODELS[m]['label']:<22}{res['chosen_lr'][m]:>8.0e}{res['chosen_lr_edge'][m]:>8}"
              + "".join(f"{str(cells[L]['k']) + '/' + str(cells[L]['n']):>9}" for L in lengths)
              + f"{res['param_counts'][m]:>9}")
    print(f"{'constant (fraction)':<38}"
          + "".join(f"{b['test_fraction']:>9.3f}" for b in res["baseline"]))
    print(f"CPU {res['timing']['sweep_cpu_s']} s, wall {res['timing']['sweep_wall_s']} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, nothing stored "
                        "unless --out is given")
    parser.add_argument("--out", default=None, help="output path (default: the package's "
                        "results folder, lru_sweep.json)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--ablation-only", action="store_true", help="run only the "
                        "ablation arms and store them in the existing results file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = dict(SMOKE if args.smoke else DEFAULTS)
    out = args.out or (None if args.smoke else str(RESULTS / "lru_sweep.json"))
    if args.ablation_only:
        if out is None or not os.path.exists(out):
            raise SystemExit("--ablation-only merges into an existing results file; run the "
                             "whole sweep first (or give --out FILE of a previous run).")
        with open(out) as fh:
            res = json.load(fh)
    else:
        res = sweep(cfg, n_jobs=args.jobs)
        print_report(res)
    res["ablation"] = ablation(cfg, smoke=args.smoke, n_jobs=args.jobs)
    ab = res["ablation"]
    for s_ in ab["summary"]:
        print(f"  {ABLATION[s_['model']]['label']:<32} T={s_['length']:<4} lr {s_['lr']:.0e} "
              f"({ab['chosen_lr_edge'][s_['model']]}) {s_['k']}/{s_['n']}")
    print(f"ablation CPU {ab['timing']['cpu_s']} s, wall {ab['timing']['wall_s']} s")
    if out:
        with open(out, "w") as fh:
            json.dump(res, fh, indent=None, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
