"""RTRL's cost per step against the hidden size H, beside BPTT's against the length T.

Run from the repository root::

    .venv/bin/python benchmarks/bench_rtrl.py
    .venv/bin/python benchmarks/bench_rtrl.py --sizes 16 32 64 128 --lengths 100 200 400 800

For each hidden size H it times one RTRL step (the kernel of
:func:`companion.scratch.rtrl.influence_step` on one sequence, whose product W J costs
H^2 P ~ H^4 multiply-adds) and counts the floats RTRL carries (H P + H ~ H^3, exact).
For each length T it times full BPTT on one sequence
(:func:`companion.scratch.bptt.rnn_loss_and_grads`) and counts the floats it stores
((T + 1) H + T D, exact). Timings are CPU times (``time.process_time``), the median of
``--repeats``; the ratios between consecutive sizes are measured in the same run, which
is what to read on a loaded machine. Expect RTRL's time per step to grow by up to
2^4 = 16 per doubling of H once the product dominates (less where Python's per-call
overhead or BLAS's better efficiency on larger products dominate), its memory by about
8; BPTT's memory doubles with T while its time per step stays flat. Nothing here is
asserted or run by the tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from companion.scratch.bptt import rnn_loss_and_grads
from companion.scratch.init import init_rnn_params
from companion.scratch.rtrl import (
    _index_tables,
    _influence_step,
    bptt_memory_floats,
    recurrent_size,
    rtrl_memory_floats,
)


def _cpu(fn, repeats):
    times = []
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return float(np.median(times))


def rtrl_step_costs(sizes, D=4, steps=3, repeats=5, seed=0):
    """Rows (H, P, floats carried, CPU seconds per step) for RTRL on one sequence."""
    rows = []
    for H in sizes:
        rng = np.random.default_rng(seed)
        p = init_rnn_params(D, H, 2, rng)
        xs = rng.normal(size=(steps, D))

        tables = _index_tables(D, H)

        def run():  # the kernel of influence_step, without its argument checks
            h, J = np.zeros((1, H)), np.zeros((1, H, recurrent_size(D, H)))
            for xt in xs:
                h_new = np.tanh(xt[None] @ p["U"].T + h @ p["W"].T + p["b"])
                J = _influence_step(J, xt[None], h, h_new, p["W"], tables)
                h = h_new

        rows.append((H, recurrent_size(D, H), rtrl_memory_floats(D, H),
                     _cpu(run, repeats) / steps))
    return rows


def bptt_costs(lengths, H=32, D=4, repeats=5, seed=0):
    """Rows (T, floats stored, CPU seconds per step) for full BPTT on one sequence."""
    rows = []
    for T in lengths:
        rng = np.random.default_rng(seed)
        p = init_rnn_params(D, H, 2, rng)
        x = rng.normal(size=(1, T, D))
        y = rng.integers(0, 2, size=(1, T))
        rows.append((T, bptt_memory_floats(T, D, H),
                     _cpu(lambda: rnn_loss_and_grads(p, x, y), repeats) / T))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'H':>5}{'P':>8}{'floats':>11}{'ms/step':>10}{'x prev':>8}")
    prev = None
    for H, P, floats, sec in rtrl_step_costs(args.sizes, repeats=args.repeats):
        ratio = "" if prev is None else f"{sec / prev:8.1f}"
        print(f"{H:>5}{P:>8}{floats:>11}{1e3 * sec:>10.3f}{ratio}")
        prev = sec
    print(f"\n{'T':>5}{'floats':>11}{'ms/step':>10}   (BPTT, H = 32)")
    for T, floats, sec in bptt_costs(args.lengths, repeats=args.repeats):
        print(f"{T:>5}{floats:>11}{1e3 * sec:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
