"""Time one forward + backward pass: companion's NumPy BPTT against torch.nn.RNN autograd.

Both sides compute the same thing at the same sizes and precision: a vanilla tanh RNN,
a linear read-out, the cross-entropy summed over time (mean over the batch), and the
gradients of every parameter. Run from the repository root:

    .venv/bin/python benchmarks/bench_bptt_numpy_vs_torch.py            # default sizes
    .venv/bin/python benchmarks/bench_bptt_numpy_vs_torch.py --T 200 --H 256 --dtype float64

It prints the median time of each side over ``--repeats`` runs and the ratio NumPy/torch.
This is a script, not a test: timings depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from companion.scratch.bptt import rnn_loss_and_grads  # noqa: E402
from companion.scratch.init import init_rnn_params  # noqa: E402


def _median_time(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(N=32, T=100, D=64, H=128, K=64, dtype="float32", repeats=20, threads=None):
    """Return (numpy_seconds, torch_seconds) for one forward + backward pass."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    np_dtype = np.dtype(dtype)
    params = {k: v.astype(np_dtype) for k, v in init_rnn_params(D, H, K, rng).items()}
    x = rng.normal(size=(N, T, D)).astype(np_dtype)
    y = rng.integers(0, K, size=(N, T))

    t_np = _median_time(lambda: rnn_loss_and_grads(params, x, y), repeats)

    tdtype = getattr(torch, dtype)
    rnn = torch.nn.RNN(D, H, batch_first=True).to(tdtype)
    lin = torch.nn.Linear(H, K).to(tdtype)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y).reshape(-1)

    def torch_step():
        rnn.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        out, _ = rnn(xt)
        logits = lin(out).reshape(-1, K)
        loss = torch.nn.functional.cross_entropy(logits, yt, reduction="sum") / N
        loss.backward()

    t_torch = _median_time(torch_step, repeats)
    return t_np, t_torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("N", 32), ("T", 100), ("D", 64), ("H", 128), ("K", 64)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args(argv)
    t_np, t_torch = run(a.N, a.T, a.D, a.H, a.K, a.dtype, a.repeats, a.threads)
    print(f"sizes N={a.N} T={a.T} D={a.D} H={a.H} K={a.K}, {a.dtype}, median of {a.repeats}")
    print(f"NumPy  forward+backward: {t_np * 1e3:8.2f} ms")
    print(f"torch  forward+backward: {t_torch * 1e3:8.2f} ms")
    print(f"ratio NumPy / torch:     {t_np / t_torch:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
