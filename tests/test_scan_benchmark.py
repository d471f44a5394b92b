"""Smoke test of benchmarks/bench_scan.py: its code paths run at tiny sizes, its loops
compute the same states as the scans they are timed against, and the stored JSON has
the fields the page reads (each ratio's two times measured in the same run)."""

import importlib.util
from pathlib import Path

import numpy as np

from companion.data.results import load_results

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    path = ROOT / "benchmarks" / "bench_scan.py"
    spec = importlib.util.spec_from_file_location("bench_scan", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_code_paths_run_at_tiny_size():
    bench = _bench()
    rows = bench.bench_lengths([2, 8], 2, 1, quiet=True)  # asserts torch loop == NumPy loop
    keys = {"T", "numpy_loop", "numpy_blelloch", "numpy_logspace", "torch_loop", "torch_scan"}
    assert [r["T"] for r in rows] == [2, 8]
    for r in rows:
        assert set(r) == keys
        assert all(np.isfinite(r[k]) and r[k] > 0 for k in keys - {"T"})
    comb = bench.bench_combine([2, 4], 8, 1)
    assert [r["H"] for r in comb] == [2, 4]
    assert all(r["dense"] > 0 and r["diagonal"] > 0 for r in comb)


def test_stored_benchmark_has_what_the_page_reads():
    res = load_results("lru_scan_benchmark")
    assert res["H"] == 16
    assert [r["T"] for r in res["lengths"]] == [2 ** k for k in range(1, 15)]
    assert [r["H"] for r in res["widths"]] == [1, 4, 16, 64, 256, 1024]
    assert all(r["T"] == 4096 for r in res["widths"])
    times = [v for r in res["lengths"] + res["widths"] for k, v in r.items()
             if k not in ("T", "H")]
    assert all(np.isfinite(v) and v > 0 for v in times)
