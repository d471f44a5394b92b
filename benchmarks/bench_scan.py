"""Time the sequential loop against vectorised scans of a linear recurrence (chapter 12).

Two measurements, each within one run (ratios, not absolute times, are the result):

1. ``h_t = a_t * h_{t-1} + b_t`` with H independent channels (diagonal transitions),
   for T = 2, 4, ..., 16384: in NumPy, the loop (``companion.scratch.scan.scan_loop``,
   one vectorised step over the H channels per time step) against Blelloch's scan
   (``blelloch_scan``, one vectorised operation per tree level) and the log-space
   formula (``logspace_scan``, cumulative sums); in torch, a loop of torch operations
   against ``companion.nn.linear_recurrence.linear_scan`` (recursive doubling). Each
   loop is timed in its own library, so the ratio measures the loop, not the library.
2. The same speed-ups at T = 4096 against the number of channels H = 1, ..., 1024: the
   loop's per-step overhead is shared by more channels as H grows, the scan's extra work
   is not.
3. The cost of ONE combine of two affine maps against the state size H: dense
   (``A2 @ A1``, ``A2 @ b1 + b2``: O(H^3)) against diagonal (``a2 * a1``,
   ``a2 * b1 + b2``: O(H)), each applied to a batch of 256 pairs.

Times are CPU times (``time.process_time``), the minimum over repeats: the machine is
shared, and CPU time is what the other processes inflate least. Run from the repository
root::

    .venv/bin/python benchmarks/bench_scan.py                 # prints, writes nothing
    .venv/bin/python benchmarks/bench_scan.py --store         # also writes the JSON

``--store`` writes ``companion/data/results/lru_scan_benchmark.json``, which the page
"Linear recurrences and parallel scans" loads (a notebook never times anything whose
numbers its prose quotes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OUT = Path(__file__).resolve().parents[1] / "companion" / "data" / "results" / \
    "lru_scan_benchmark.json"


def cpu_time(fn, *, repeats: int, min_time: float = 0.02) -> float:
    """Minimum over ``repeats`` of the CPU time of one call (calls batched to >= min_time)."""
    n = 1
    while True:
        c = time.process_time()
        for _ in range(n):
            fn()
        d = time.process_time() - c
        if d >= min_time or n >= 1 << 16:
            break
        n *= 4
    best = d / n
    for _ in range(repeats - 1):
        c = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - c) / n)
    return best


def bench_lengths(lengths, H: int, repeats: int, *, quiet: bool = False) -> list[dict]:
    import torch

    from companion.nn.linear_recurrence import linear_scan
    from companion.scratch.scan import blelloch_scan, logspace_scan, scan_loop

    torch.set_num_threads(1)
    rows = []
    for T in lengths:
        rng = np.random.default_rng(T)
        a, b = rng.uniform(-1, 1, size=(T, H)), rng.normal(size=(T, H))
        ta, tb = torch.as_tensor(a), torch.as_tensor(b)

        def torch_loop():
            h, out = torch.zeros(H, dtype=torch.float64), torch.empty(T, H, dtype=torch.float64)
            for t in range(T):
                h = ta[t] * h + tb[t]
                out[t] = h
            return out

        assert np.allclose(torch_loop().numpy(), scan_loop(a, b), atol=1e-10)
        rows.append({
            "T": T,
            "numpy_loop": cpu_time(lambda: scan_loop(a, b), repeats=repeats),
            "numpy_blelloch": cpu_time(lambda: blelloch_scan(a, b), repeats=repeats),
            "numpy_logspace": cpu_time(lambda: logspace_scan(a, b), repeats=repeats),
            "torch_loop": cpu_time(torch_loop, repeats=repeats),
            "torch_scan": cpu_time(lambda: linear_scan(ta, tb), repeats=repeats),
        })
        r = rows[-1]
        if not quiet:
                print(f"T={T:>6}  numpy loop/blelloch {r['numpy_loop'] / r['numpy_blelloch']:7.1f}x"
                  f"  loop/logspace {r['numpy_loop'] / r['numpy_logspace']:7.1f}x"
                  f"  torch loop/scan {r['torch_loop'] / r['torch_scan']:7.1f}x", flush=True)
    return rows


def bench_width(widths, T: int, repeats: int) -> list[dict]:
    """The speed-ups at one length T against the number of channels H."""
    rows = []
    for H in widths:
        r = bench_lengths([T], H, repeats, quiet=True)[0]
        r["H"] = H
        rows.append(r)
        print(f"H={H:>5} at T={T}: numpy loop/blelloch {r['numpy_loop'] / r['numpy_blelloch']:7.1f}x"
              f"  torch loop/scan {r['torch_loop'] / r['torch_scan']:7.1f}x", flush=True)
    return rows


def bench_combine(sizes, pairs: int, repeats: int) -> list[dict]:
    from companion.scratch.scan import combine

    rows = []
    for H in sizes:
        rng = np.random.default_rng(H)
        A1, A2 = rng.normal(size=(2, pairs, H, H))
        b1, b2 = rng.normal(size=(2, pairs, H))
        d1, d2 = rng.normal(size=(2, pairs, H))
        rows.append({
            "H": H,
            "dense": cpu_time(lambda: combine((A1, b1), (A2, b2), dense=True),
                              repeats=repeats) / pairs,
            "diagonal": cpu_time(lambda: combine((d1, b1), (d2, b2)), repeats=repeats) / pairs,
        })
        r = rows[-1]
        print(f"H={H:>4}  dense {r['dense'] * 1e6:10.3f} us  diagonal "
              f"{r['diagonal'] * 1e6:8.4f} us per combine", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--H", type=int, default=16, help="channels (default 16)")
    parser.add_argument("--max-log2-T", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", action="store_true", help=f"write {OUT.name}")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    c0 = time.process_time()
    lengths = [2 ** k for k in range(1, args.max_log2_T + 1)]
    res = {
        "name": "lru_scan_benchmark",
        "command": "python benchmarks/bench_scan.py --store",
        "what": "CPU seconds per call (min over repeats) of each way to evaluate "
                "h_t = a_t h_{t-1} + b_t with H channels, float64, one thread; and of one "
                "combine of two affine maps, dense (H x H) vs diagonal, per pair",
        "H": args.H,
        "lengths": bench_lengths(lengths, args.H, args.repeats),
        "widths": bench_width([1, 4, 16, 64, 256, 1024], 4096, args.repeats),
        "combine": bench_combine([2, 4, 8, 16, 32, 64, 128], 256, args.repeats),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "torch": torch.__version__},
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1),
                    "note": "shared 2-core machine; ratios within this one run"},
    }
    res["cpu_s"] = round(time.process_time() - c0, 1)
    if args.store:
        with open(OUT, "w") as fh:
            json.dump(res, fh, indent=1)
            fh.write("\n")
        print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
