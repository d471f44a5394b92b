"""Learning online without backtracking: RTRL, UORO and truncated BPTT on a delayed copy (ch. 12).

Run from the repository root::

    .venv/bin/python -m experiments.uoro_sweep          # writes uoro_sweep.json

Task: a stream of random bits :math:`x^{(t)} \\in \\{0, 1\\}` (one-hot, D = 2); the
target at step ``t`` is the bit read ``DELAY`` = 4 steps earlier (K = 2). A model that
remembers nothing scores the uniform guess, ``log 2`` nats per step. Model: the vanilla
tanh RNN of chapters 3-4 (hidden size 16, 1/sqrt(fan-in) initialisation, zero biases),
trained online: it reads its training stream once (``STEPS`` steps), and after every
step (every ``k`` steps for truncated BPTT) takes one plain SGD step, gradient norm
clipped at 1 for every method. Methods (:func:`companion.scratch.rtrl.online_train`):
``rtrl`` (exact forward gradient, influence matrix carried across updates), ``uoro``
(unbiased rank-one estimate), ``tbptt2`` and ``tbptt8`` (truncated BPTT with chunks of
2 and 8 steps: one shorter than the delay, one longer).

Fairness: same streams, initial weights (per seed), budget and clipping for all; each
method runs every learning rate of ``LR_GRID`` with every seed (5 seeds), all members of
one method batched into one run. After the stream, the weights are frozen and scored
(mean loss per step, the first ``DELAY`` steps excluded) on a validation stream and a
test stream, both fresh and the same for every run; the learning rate with the lowest
median validation loss is chosen per method (``inside`` says whether it is strictly
inside the grid), and test losses are reported. A run whose loss is not finite counts as
``inf``. Success: test loss below 10 % of ``log 2``. The online (prequential) loss of
the last 2000 training steps and the training curve (mean loss per block of 1000 steps)
are stored for every run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np

from companion.scratch.forward import rnn_forward, sequence_nll
from companion.scratch.init import init_rnn_params
from companion.scratch.rtrl import delayed_copy_stream, online_train, stack_params

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "companion" / "data" / "results"
DELAY = 4
METHODS = {"rtrl": ("rtrl", 1), "uoro": ("uoro", 1), "tbptt2": ("tbptt", 2),
           "tbptt8": ("tbptt", 8)}
# Per method. A first run on {3e-3, 1e-2, 3e-2, 1e-1, 3e-1} for every method put the
# choice of rtrl and tbptt8 at the top edge (both solved the task at every rate from 1e-1);
# their grids were extended upwards.
LR_GRID = {"rtrl": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0],
           "uoro": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
           "tbptt2": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
           "tbptt8": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0]}


def score(params, x, y, delay=DELAY):
    """Mean loss per step of a frozen model on one stream (the first ``delay`` excluded)."""
    mask = np.ones((1, len(y)))
    mask[0, :delay] = 0
    o, _ = rnn_forward(x[None], params)
    loss, _ = sequence_nll(o, y[None], mask)
    return float(loss / mask.sum()) if np.isfinite(loss) else float("inf")


def sweep(cfg) -> dict:
    H, T, seeds, grid = cfg["hidden"], cfg["steps"], cfg["seeds"], cfg["lr_grid"]
    streams = {s: delayed_copy_stream(T, seed=s, delay=DELAY) for s in seeds}
    valid = delayed_copy_stream(cfg["n_eval"], seed=1000, delay=DELAY)
    test = delayed_copy_stream(cfg["n_eval"], seed=2000, delay=DELAY)
    runs, timing = [], {}
    c_all, t_all = time.process_time(), time.time()
    for name, (method, k) in METHODS.items():
        members = [(lr, s) for lr in grid[name] for s in seeds]  # seed s: same stream, init
        x = np.stack([streams[s][0] for _, s in members])
        y = np.stack([streams[s][1] for _, s in members])
        init = stack_params([init_rnn_params(2, H, 2, np.random.default_rng(100 + s))
                             for _, s in members])
        lr = np.array([lr for lr, _ in members])
        c0 = time.process_time()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # diverged runs
            trained, losses = online_train(init, x, y, lr, method, k=k, clip=cfg["clip"],
                                           rng=np.random.default_rng(7))
        timing[name] = round(time.process_time() - c0, 2)
        block = cfg["block"]
        curves = losses[:, :T // block * block].reshape(len(members), -1, block).mean(axis=2)
        for m, (r, s) in enumerate(members):
            p = {n: v[m] for n, v in trained.items()}
            finite = all(np.all(np.isfinite(v)) for v in p.values())
            runs.append({
                "method": name, "lr": r, "seed": s,
                "valid_loss": score(p, *valid) if finite else float("inf"),
                "test_loss": score(p, *test) if finite else float("inf"),
                "online_last": _fin(float(np.mean(losses[m, -cfg["last"]:]))),
                "curve": [_fin(round(float(v), 5)) for v in curves[m]]})
    cpu, wall = time.process_time() - c_all, time.time() - t_all
    summary = []
    success = 0.1 * np.log(2)
    for name in METHODS:
        med = {r: float(np.median([q["valid_loss"] for q in runs
                                   if q["method"] == name and q["lr"] == r]))
               for r in grid[name]}
        best = min(grid[name], key=lambda r: (med[r], r))
        test_l = [q["test_loss"] for q in runs if q["method"] == name and q["lr"] == best]
        summary.append({
            "method": name, "lr": best, "inside": grid[name][0] < best < grid[name][-1],
            "valid_median": {str(r): med[r] for r in grid[name]},
            "k": int(sum(v < success for v in test_l)), "n": len(test_l),
            "median": float(np.median(test_l)), "min": float(min(test_l)),
            "max": float(max(test_l))})
    json_safe = [{**q, "valid_loss": q["valid_loss"] if np.isfinite(q["valid_loss"]) else None,
                  "test_loss": q["test_loss"] if np.isfinite(q["test_loss"]) else None}
                 for q in runs]
    return {
        "name": "uoro_sweep",
        "config": {**cfg, "delay": DELAY, "methods": {n: {"method": m, "k": k}
                                                      for n, (m, k) in METHODS.items()},
                   "D": 2, "K": 2, "success": success, "optimizer": "sgd"},
        "runs": json_safe, "summary": [{**s, "median": _fin(s["median"]),
                                        "min": _fin(s["min"]), "max": _fin(s["max"])}
                                       for s in summary],
        "baseline": {"uniform": float(np.log(2))},
        "timing": {"cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "cpu_s_method": timing},
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
    }


def _fin(v):
    return v if np.isfinite(v) else None


def table(res) -> str:
    lines = [f"{'method':<8}{'lr':>7}{'inside':>7}{'k/n':>6}{'median':>8}{'min-max':>15}"]
    for s in res["summary"]:
        lo, hi = (f"{v:.3f}" if v is not None else "inf" for v in (s["min"], s["max"]))
        med = f"{s['median']:.3f}" if s["median"] is not None else "inf"
        lines.append(f"{s['method']:<8}{s['lr']:>7.0e}{'yes' if s['inside'] else 'NO':>7}"
                     f"{str(s['k']) + '/' + str(s['n']):>6}{med:>8}{lo:>8}-{hi}")
    lines.append(f"uniform guess: {res['baseline']['uniform']:.3f}")
    return "\n".join(lines)


FULL = {"hidden": 16, "steps": 30_000, "seeds": [0, 1, 2, 3, 4], "lr_grid": LR_GRID,
        "clip": 1.0, "n_eval": 4000, "block": 1000, "last": 2000}
TINY = {"hidden": 3, "steps": 60, "seeds": [0, 1],
        "lr_grid": {m: [1e-2, 1e-1] for m in METHODS},
        "clip": 1.0, "n_eval": 30, "block": 20, "last": 20}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--tiny", action="store_true", help="smoke test at tiny size")
    args = parser.parse_args(argv)
    res = sweep(TINY if args.tiny else FULL)
    print(table(res))
    out = pathlib.Path(args.out_dir) / "uoro_sweep.json"
    out.write_text(json.dumps(res, indent=None, separators=(",", ":"), allow_nan=False))
    print(f"wall {res['timing']['wall_s']} s, CPU {res['timing']['cpu_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
