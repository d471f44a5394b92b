"""Time the sequential loop against vectorised scans of a linear recurrence (chapter 12).

Three measurements, each within one run (ratios, not absolute times, are the result):

1. ``h_t = a_t * h_{t-1} + b_t`` with H independent channels (diagonal transitions),
   for T = 2, 4, ..., 16384: in NumPy, the loop (``companion.scratch.scan.scan_loop``,
   one vectorised step over the H channels per time step) against Blelloch's scan
   (``blelloch_scan``, one vectorised operation per tree level) and the log-space
   formula (``logspace_scan``, cumulative sums); in torch, a loop of torch operations
   against ``companion.nn.linear_recurrence.linear_scan`` (recursive doubling); and,
   when a C compiler is present, the same loop and the same Blelloch schedule compiled
   (``benchmarks/scan_kernels.c``), plus a "triad" that does the loop's loads, stores
   and multiply-adds without the dependence between steps.
2. The same times at T = 4096 against the number of channels H = 1, ..., 1024: the
   interpreted loop's per-step overhead is shared by more channels as H grows, the
   scan's extra work is not.
3. The cost of ONE combine of two affine maps against the state size H: dense
   (``A2 @ A1``, ``A2 @ b1 + b2``: O(H^3)) against diagonal (``a2 * a1``,
   ``a2 * b1 + b2``: O(H)), each applied to a batch of 256 pairs.

Why a compiled loop. The NumPy and torch loops pay about a microsecond of interpreter
and dispatch cost per step, so "loop / scan" against them measures that overhead, not
the recurrence. The compiled loop is the honest sequential baseline: one multiply-add
per element per step and nothing else. It is plain C because neither NumPy nor torch
ships a compiled kernel for this recurrence (``torch.nn.RNN`` runs a dense
matrix-vector product through tanh or ReLU, a different computation), and the course
has no build step: the source is compiled here, at benchmark time, with ``gcc`` or
``cc`` if one is on the PATH (``-O2``, no machine-specific flags), into a temporary
directory. Without a compiler those rows are skipped and the JSON says so; the page
reads the stored numbers, so a reader never needs a compiler.

Times are CPU times (``time.process_time``), the minimum over repeats, after a warm-up
(the calibration calls): the machine is shared, and CPU time is what the other
processes inflate least. Everything runs on one thread. Run from the repository root::

    .venv/bin/python benchmarks/bench_scan.py                 # prints, writes nothing
    .venv/bin/python benchmarks/bench_scan.py --store         # also writes the JSON

``--store`` writes ``companion/data/results/lru_scan_benchmark.json``, which the page
"Linear recurrences and parallel scans" loads (a notebook never times anything whose
numbers its prose quotes).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OUT = Path(__file__).resolve().parents[1] / "companion" / "data" / "results" / \
    "lru_scan_benchmark.json"
C_SOURCE = Path(__file__).resolve().parent / "scan_kernels.c"
C_FLAGS = ["-O2", "-shared", "-fPIC"]
C_KEYS = ("c_loop", "c_blelloch", "c_triad")

_compiled = None  # (library or None, how it was made), built once per process


def compiled_kernels():
    """``(lib, info)``: ``benchmarks/scan_kernels.c`` compiled and loaded with ctypes.

    ``lib`` is None when no C compiler is found or compiling fails; ``info`` says which
    compiler, version and flags were used (or why there is no library), and the
    SHA-256 of the source, for the stored JSON.
    """
    global _compiled
    if _compiled is not None:
        return _compiled
    info = {"source": "benchmarks/scan_kernels.c",
            "source_sha256": hashlib.sha256(C_SOURCE.read_bytes()).hexdigest()}
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        info["skipped"] = "no C compiler (gcc or cc) on the PATH"
        _compiled = (None, info)
        return _compiled
    version = subprocess.run([cc, "--version"], capture_output=True, text=True)
    info.update(compiler=os.path.basename(cc), flags=" ".join(C_FLAGS),
                compiler_version=(version.stdout.splitlines() or ["?"])[0])
    out_dir = tempfile.mkdtemp(prefix="bench_scan_")
    lib_path = os.path.join(out_dir, "scan_kernels.so")
    proc = subprocess.run([cc, *C_FLAGS, "-o", lib_path, str(C_SOURCE)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        info["skipped"] = f"compiling failed: {proc.stderr.strip()[:300]}"
        _compiled = (None, info)
        return _compiled
    lib = ctypes.CDLL(lib_path)
    p, n = ctypes.c_void_p, ctypes.c_long
    lib.scan_loop.argtypes = [p, p, p, n, n]
    lib.scan_blelloch.argtypes = [p, p, p, p, n, n]
    lib.triad.argtypes = [p, p, p, ctypes.c_double, n]
    for f in (lib.scan_loop, lib.scan_blelloch, lib.triad):
        f.restype = None
    _compiled = (lib, info)
    return _compiled


def c_functions(lib, a: np.ndarray, b: np.ndarray):
    """Three zero-argument callables on contiguous float64 ``a``, ``b`` of shape (T, H):
    the compiled loop, the compiled Blelloch scan and the triad, writing into buffers
    allocated once (so the timed call is the kernel plus one ctypes call, about a
    microsecond). Each returns its output array."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    T, H = a.shape
    h, A, B, o = (np.empty_like(b) for _ in range(4))
    keep = (a, b, h, A, B, o)  # the callables hold these, so the pointers stay valid
    pa, pb, ph, pA, pB, po = (x.ctypes.data for x in keep)

    def loop(keep=keep):
        lib.scan_loop(pa, pb, ph, T, H)
        return h

    def blelloch(keep=keep):
        lib.scan_blelloch(pa, pb, pA, pB, T, H)
        return B

    def triad(keep=keep):
        lib.triad(pa, pb, po, 0.5, T * H)
        return o

    return loop, blelloch, triad


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

        ref = scan_loop(a, b)
        assert np.allclose(torch_loop().numpy(), ref, atol=1e-10)
        lib, _ = compiled_kernels()
        c_times = dict.fromkeys(C_KEYS)
        if lib is not None:
            c_loop, c_blelloch, c_triad = c_functions(lib, a, b)
            assert np.allclose(c_loop(), ref, atol=1e-10)
            assert np.allclose(c_blelloch(), ref, atol=1e-10)
            assert np.allclose(c_triad(), 0.5 * a + b)
            c_times = {"c_loop": cpu_time(c_loop, repeats=repeats),
                       "c_blelloch": cpu_time(c_blelloch, repeats=repeats),
                       "c_triad": cpu_time(c_triad, repeats=repeats)}
        rows.append({
            "T": T,
            "numpy_loop": cpu_time(lambda: scan_loop(a, b), repeats=repeats),
            "numpy_blelloch": cpu_time(lambda: blelloch_scan(a, b), repeats=repeats),
            "numpy_logspace": cpu_time(lambda: logspace_scan(a, b), repeats=repeats),
            "torch_loop": cpu_time(torch_loop, repeats=repeats),
            "torch_scan": cpu_time(lambda: linear_scan(ta, tb), repeats=repeats),
            **c_times,
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
        c = ""
        if r["c_loop"] is not None:
            best_scan = min(r["numpy_blelloch"], r["torch_scan"], r["c_blelloch"])
            c = (f"  C loop {r['c_loop'] * 1e3:8.3f} ms, best scan / C loop "
                 f"{best_scan / r['c_loop']:6.1f}x")
        print(f"H={H:>5} at T={T}: numpy loop/blelloch {r['numpy_loop'] / r['numpy_blelloch']:7.1f}x"
              f"  torch loop/scan {r['torch_loop'] / r['torch_scan']:7.1f}x{c}", flush=True)
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


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--H", type=int, default=16, help="channels (default 16)")
    parser.add_argument("--max-log2-T", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", action="store_true", help=f"write {OUT.name}")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    c0, w0 = time.process_time(), time.perf_counter()
    _, c_info = compiled_kernels()
    if "skipped" in c_info:
        print(f"compiled kernels skipped: {c_info['skipped']}", flush=True)
    lengths = [2 ** k for k in range(1, args.max_log2_T + 1)]
    res = {
        "name": "lru_scan_benchmark",
        "command": "python benchmarks/bench_scan.py --store",
        "what": "CPU seconds per call (min over repeats) of each way to evaluate "
                "h_t = a_t h_{t-1} + b_t with H channels, float64, one thread; and of one "
                "combine of two affine maps, dense (H x H) vs diagonal, per pair. c_loop, "
                "c_blelloch: the loop and Blelloch's scan compiled from "
                "benchmarks/scan_kernels.c; c_triad: out = 0.5 a + b over the same "
                "elements (the loop's memory traffic and arithmetic without its "
                "dependence); null where no compiler was found",
        "compiled": c_info,
        "H": args.H,
        "lengths": bench_lengths(lengths, args.H, args.repeats),
        "widths": bench_width([1, 4, 16, 64, 256, 1024], 4096, args.repeats),
        "combine": bench_combine([2, 4, 8, 16, 32, 64, 128], 256, args.repeats),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "torch": torch.__version__},
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
                    "load_average_1min": round(os.getloadavg()[0], 1),
                    "note": "shared 2-core machine; ratios within this one run"},
    }
    res["cpu_s"] = round(time.process_time() - c0, 1)
    res["wall_s"] = round(time.perf_counter() - w0, 1)
    if args.store:
        with open(OUT, "w") as fh:
            json.dump(res, fh, indent=1)
            fh.write("\n")
        print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
