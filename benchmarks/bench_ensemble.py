"""Time one M-member batched ensemble against M one-at-a-time runs of the same models.

Both sides do the same work: ``--steps`` Adam steps with clipping by global norm 1 on
the adding problem, for M models (``--lrs`` x ``--seeds``) of one cell kind. The
one-at-a-time side trains each model as the old sweep did: a single
``SequenceModel(impl="torch")`` (``torch.nn.LSTM``'s C++ loop) with
``torch.optim.Adam`` and ``clip_grad_norm_``. The ensemble side trains all of them
at once with ``companion.nn.ensemble.train_ensemble``, with either engine of
:class:`companion.nn.ensemble.Ensemble`: ``"autograd"`` (the default, which the stored
sweeps use) or ``"fused"`` (:mod:`companion.nn.fused`, hand-written backward, the same
function). Run from the repository root:

    .venv/bin/python benchmarks/bench_ensemble.py                    # LSTM, M = 15, T = 40
    .venv/bin/python benchmarks/bench_ensemble.py --kind rnn --T 80
    .venv/bin/python benchmarks/bench_ensemble.py --engine fused     # one engine only

It prints the wall and CPU time of each side and the ratios (the speed-ups). This is a
script, not a test: timings depend on the machine and on its load, so all sides are
measured in the same run, one right after the other. On a loaded machine the CPU time
is the steadier measure: wall time also counts the time other processes held the core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(kind="lstm", T=40, H=32, N=32, steps=40, lrs=(1e-3, 3e-3, 1e-2),
        seeds=(0, 1, 2, 3, 4), threads=1, engines=("autograd", "fused")):
    """Return ({engine: (ensemble wall, cpu)}, (one-at-a-time wall, cpu), M)."""
    import torch

    from companion.data.synthetic import adding_problem
    from companion.nn.ensemble import Ensemble, reference_model, train_ensemble

    torch.set_num_threads(threads)
    members = [(lr, s) for lr in lrs for s in seeds]
    M = len(members)
    rng = np.random.default_rng(0)
    batches = [adding_problem(N, T, rng=rng) for _ in range(steps)]
    xs = [torch.as_tensor(x, dtype=torch.float32) for x, _ in batches]
    ys = [torch.as_tensor(y, dtype=torch.float32) for _, y in batches]

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w, time.process_time() - c

    def ensemble(engine):
        ens = Ensemble(kind, 2, H, 1, seeds=[s for _, s in members], engine=engine)
        train_ensemble(ens, lambda i: (xs[i], ys[i]),
                       lambda out, y: ((out[..., 0] - y) ** 2).mean(-1),
                       steps=steps, lr=[lr for lr, _ in members], clip_norm=1.0)

    def one_at_a_time():
        for lr, s in members:
            model = reference_model(kind, 2, H, 1, seed=s)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            for x, y in zip(xs, ys):
                opt.zero_grad()
                ((model(x)[:, 0] - y) ** 2).mean().backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()

    times = {}
    for engine in engines:
        ensemble(engine)  # warm-up (allocator, first-call overheads), not timed
        times[engine] = timed(lambda: ensemble(engine))
    return times, timed(one_at_a_time), M


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="lstm", choices=["rnn", "irnn", "lstm", "gru"])
    p.add_argument("--T", type=int, default=40)
    p.add_argument("--H", type=int, default=32)
    p.add_argument("--N", type=int, default=32)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--engine", choices=["both", "autograd", "fused"], default="both",
                   help="ensemble engine(s) to time (default: both)")
    a = p.parse_args(argv)
    engines = ("autograd", "fused") if a.engine == "both" else (a.engine,)
    times, (sw, sc), M = run(a.kind, a.T, a.H, a.N, a.steps, tuple(a.lrs), tuple(a.seeds),
                             a.threads, engines)
    print(f"{a.kind}, M={M} members, T={a.T}, H={a.H}, batch {a.N}, {a.steps} steps, "
          f"{a.threads} thread(s)")
    for engine, (ew, ec) in times.items():
        print(f"  ensemble, {engine + ' engine:':17s} {ew:7.2f} s wall {ec:7.2f} s CPU")
    print(f"  one at a time ({M} runs):     {sw:7.2f} s wall {sc:7.2f} s CPU")
    for engine, (ew, ec) in times.items():
        print(f"  speed-up, {engine + ':':9s}          {sw / ew:5.1f}x wall {sc / ec:5.1f}x CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
