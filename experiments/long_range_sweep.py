"""Success against sequence length on the adding problem: vanilla RNN, LSTM and GRU.

The full sweep behind the success-vs-length figure and table of chapters 5 and 6.
Every run trains a fresh one-layer model (hidden size 32, linear read-out of the
last state) with Adam on freshly generated batches of the adding problem
(Hochreiter & Schmidhuber 1997) of a fixed length, then scores it on 1000 held-out
sequences: the fraction *solved* (absolute error below 0.04). Runs are fully
determined by their seed; CPU only, one torch thread per worker.

Regenerate the stored results (about 15-25 minutes on two cores)::

    .venv/bin/python -m experiments.long_range_sweep --out book/data/long_range_sweep.json

A tiny version of the same code path runs in ``tests/test_sweep_smoke.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

DEFAULT_LENGTHS = (10, 20, 40, 80)
DEFAULT_SEEDS = (0, 1, 2)
#: (model kind, clipping) pairs: every model with clipping by global norm 1, and the
#: vanilla RNN also without clipping, to see what clipping alone buys.
DEFAULT_CONFIGS = (("rnn", "none"), ("rnn", "norm"), ("lstm", "norm"), ("gru", "norm"))
SUCCESS_FRACTION = 0.8  #: a run succeeds when it solves at least 80% of the test sequences


def run_one(kind: str, clip: str, length: int, seed: int, *, steps: int = 3000,
            hidden: int = 32, batch: int = 64, lr: float = 1e-2, n_test: int = 1000,
            impl: str = "torch") -> dict:
    """Train one model on the adding problem and return its scores as a dict."""
    import torch

    from companion.data.synthetic import adding_problem, adding_solved
    from companion.nn.layers import SequenceModel
    from companion.train import NonFiniteError, train

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SequenceModel(kind, 2, hidden, 1, impl=impl,
                          forget_bias=1.0 if kind == "lstm" else None)

    def batch_fn(step):
        x, y = adding_problem(batch, length, rng=rng)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)

    def loss_fn(m, b):
        return ((m(b[0])[:, 0] - b[1]) ** 2).mean()

    clip_norm = 1.0 if clip == "norm" else None
    clip_value = 0.1 if clip == "value" else None
    t0 = time.perf_counter()
    diverged = False
    try:
        hist = train(model, batch_fn, loss_fn, steps=steps, lr=lr, clip_norm=clip_norm,
                     clip_value=clip_value)
        losses = hist.loss
    except NonFiniteError:
        diverged, losses = True, [float("nan")]
    x_test, y_test = adding_problem(n_test, length, seed=10_000 + seed)
    with torch.no_grad():
        pred = model(torch.as_tensor(x_test, dtype=torch.float32))[:, 0].numpy()
    solved = float(adding_solved(pred, y_test).mean()) if np.all(np.isfinite(pred)) else 0.0
    tail = losses[-100:]
    return {
        "model": kind, "clip": clip, "length": length, "seed": seed,
        "fraction_solved": round(solved, 4),
        "test_mse": round(float(np.mean((pred - y_test) ** 2)), 6) if not diverged else None,
        "final_train_loss": round(float(np.mean(tail)), 6) if not diverged else None,
        "diverged": diverged,
        "success": bool(solved >= SUCCESS_FRACTION),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _run(args):
    kind, clip, length, seed, kw = args
    return run_one(kind, clip, length, seed, **kw)


def sweep(lengths=DEFAULT_LENGTHS, seeds=DEFAULT_SEEDS, configs=DEFAULT_CONFIGS, *,
          workers: int = 2, **kw) -> dict:
    """Run every (config, length, seed) and return the JSON-ready results."""
    jobs = [(kind, clip, L, s, kw) for kind, clip in configs for L in lengths for s in seeds]
    # longest jobs first so that the two workers finish together
    jobs.sort(key=lambda j: -j[2])
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(_run, jobs))
    else:
        runs = [_run(j) for j in jobs]
    runs.sort(key=lambda r: (r["model"], r["clip"], r["length"], r["seed"]))
    settings = {"steps": 3000, "hidden": 32, "batch": 64, "lr": 1e-2, "n_test": 1000,
                "impl": "torch"}
    settings.update(kw)
    return {
        "task": "adding problem (Hochreiter & Schmidhuber 1997), fixed length",
        "success_rule": f"fraction of test sequences with |error| < 0.04 >= {SUCCESS_FRACTION}",
        "optimizer": "adam", "lstm_forget_bias": 1.0, "clip_norm": 1.0,
        "settings": settings, "lengths": list(lengths), "seeds": list(seeds),
        "configs": [list(c) for c in configs],
        "python": platform.python_version(),
        "runs": runs,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the JSON results")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if min(args.lengths) < 6:
        parser.error("--lengths must all be >= 6 (the adding problem needs room for its marks)")
    t0 = time.perf_counter()
    result = sweep(args.lengths, args.seeds, workers=args.workers, steps=args.steps,
                   hidden=args.hidden, n_test=args.n_test)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"{len(result['runs'])} runs written to {args.out} in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
