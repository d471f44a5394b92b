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
    # bench_lengths asserts that every loop and scan, compiled ones included, computes
    # the states of NumPy's loop (T = 11: not a power of two)
    rows = bench.bench_lengths([2, 11], 2, 1, quiet=True)
    keys = {"T", "numpy_loop", "numpy_blelloch", "numpy_logspace", "torch_loop", "torch_scan"}
    lib, info = bench.compiled_kernels()
    assert info["source"] == "benchmarks/scan_kernels.c"
    assert (lib is None) == ("skipped" in info)
    timed = keys - {"T"} | (set(bench.C_KEYS) if lib is not None else set())
    assert [r["T"] for r in rows] == [2, 11]
    for r in rows:
        assert set(r) == keys | set(bench.C_KEYS)
        assert all(np.isfinite(r[k]) and r[k] > 0 for k in timed)
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
    assert all(np.isfinite(v) and v > 0 for v in times)  # the page's run had a compiler
    assert {"compiler", "flags", "compiler_version", "source_sha256"} <= set(res["compiled"])
    assert res["cpu_s"] > 0 and res["wall_s"] > 0


def test_compiled_kernels_match_the_numpy_scans_where_a_compiler_exists():
    import pytest

    bench = _bench()
    lib, info = bench.compiled_kernels()
    if lib is None:
        pytest.skip(info["skipped"])
    from companion.scratch.scan import blelloch_scan, scan_loop

    rng = np.random.default_rng(0)
    for T, H in [(1, 1), (2, 3), (7, 1), (33, 4)]:
        a, b = rng.uniform(-1.5, 1.5, size=(T, H)), rng.normal(size=(T, H))
        a[rng.random((T, H)) < 0.1] = 0.0
        loop, blelloch, triad = bench.c_functions(lib, a, b)
        np.testing.assert_allclose(loop(), scan_loop(a, b), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(blelloch(), blelloch_scan(a, b), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(triad(), 0.5 * a + b, rtol=1e-15, atol=1e-15)
