"""companion.scratch.scan: loop, Blelloch scan and log-space formula agree (float64)."""

import math

import numpy as np
import pytest

from companion.scratch.scan import LOG_ZERO, blelloch_scan, combine, logspace_scan, scan_loop

EPS = np.finfo(np.float64).eps


def _close(h, ref, a, b, h0=None, *, extra=0.0):
    """Agreement to rounding error, with the classic bound for summing T terms:
    ``|error| <= c * eps * (T + extra) * S`` where S is the same recurrence run on
    |a|, |b|, |h0| (the sum of the magnitudes of the terms that make up h) and ``extra``
    the log-space formula's additional ``max|L|`` (its exponents are differences of
    cumulative sums; see its docstring)."""
    assert np.all(np.isfinite(h)), "NaN or inf in the result"
    T = len(b)
    dense = a.ndim == b.ndim + 1
    S = scan_loop(np.abs(a), np.abs(b), None if h0 is None else np.abs(h0))
    if dense:
        S = np.abs(S)
    tol = 4 * EPS * (T + extra) * (1.0 + S.max())
    err = np.abs(h - ref).max()
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"


def _log_scale(a):
    la = np.log(np.abs(np.where(a == 0, 1.0, a)))
    la = np.where(a == 0, LOG_ZERO, la)
    return np.abs(np.cumsum(la, axis=0)).max()


@pytest.mark.parametrize("T", [1, 2, 3, 5, 8, 13, 64, 100, 1000, 4096])
def test_three_methods_agree_random_a_in_minus1_1(T):
    rng = np.random.default_rng(T)
    a = rng.uniform(-1, 1, size=(T, 3))
    b = rng.normal(size=(T, 3))
    h0 = rng.normal(size=3)
    ref = scan_loop(a, b, h0)
    _close(blelloch_scan(a, b, h0), ref, a, b, h0)
    _close(logspace_scan(a, b, h0), ref, a, b, h0, extra=_log_scale(a))


def test_loop_matches_explicit_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 1, size=(6, 2)), rng.normal(size=(6, 2))
    expected = np.array([sum(np.prod(a[s + 1:t + 1], axis=0) * b[s] for s in range(t + 1))
                         for t in range(6)])
    _close(scan_loop(a, b), expected, a, b)


def test_a_near_zero_and_exact_zeros_and_zero_inputs():
    rng = np.random.default_rng(2)
    T = 200
    a = rng.uniform(-1, 1, size=(T, 4))
    a[:, 0] = 1e-300 * rng.choice([-1, 1], size=T)  # tiny: the product underflows at once
    a[50, 1] = 0.0
    a[[10, 11, 150], 2] = 0.0  # consecutive zeros
    b = rng.normal(size=(T, 4))
    b[60:120, 1] = 0.0  # nothing comes in after the zero for a while
    b[:, 3] = 0.0  # no input at all: h stays 0
    h0 = rng.normal(size=4)
    ref = scan_loop(a, b, h0)
    assert np.all(ref[:, 3] == scan_loop(a, b, h0)[:, 3])
    _close(blelloch_scan(a, b, h0), ref, a, b, h0)
    _close(logspace_scan(a, b, h0), ref, a, b, h0, extra=_log_scale(a))
    # after a zero the state is exactly the input of that step
    assert logspace_scan(a, b, h0)[50, 1] == pytest.approx(b[50, 1], rel=1e-12)


def test_long_sequence_a_close_to_one():
    rng = np.random.default_rng(3)
    T = 20_000
    a = 1 - rng.uniform(0, 1e-3, size=(T, 2))
    b = rng.normal(size=(T, 2))
    ref = scan_loop(a, b)
    _close(blelloch_scan(a, b), ref, a, b)
    _close(logspace_scan(a, b), ref, a, b, extra=_log_scale(a))


def test_naive_cumprod_formula_fails_where_logspace_does_not():
    """The reason for the log space: 1 / cumprod(a) overflows for |a| < 1."""
    rng = np.random.default_rng(4)
    T = 2000
    a, b = rng.uniform(0.5, 0.9, size=(T, 1)), rng.normal(size=(T, 1))
    A = np.cumprod(a, axis=0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        naive = A * np.cumsum(b / A, axis=0)
    assert not np.all(np.isfinite(naive))
    _close(logspace_scan(a, b), scan_loop(a, b), a, b, extra=_log_scale(a))


def test_dense_blelloch_matches_loop_and_combine_is_associative():
    rng = np.random.default_rng(5)
    T, H = 37, 4
    A = rng.normal(size=(T, H, H)) * 0.4
    b = rng.normal(size=(T, H))
    h0 = rng.normal(size=H)
    _close(blelloch_scan(A, b, h0), scan_loop(A, b, h0), A, b, h0)
    e = [(A[i], b[i]) for i in range(3)]
    left = combine(combine(e[0], e[1], dense=True), e[2], dense=True)
    right = combine(e[0], combine(e[1], e[2], dense=True), dense=True)
    for x, y in zip(left, right):
        assert np.allclose(x, y, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("T", [1, 2, 7, 8, 9, 1000, 1024, 4096])
def test_work_and_depth_counts(T):
    a, b = np.full((T, 1), 0.5), np.ones((T, 1))
    _, loop = scan_loop(a, b, return_counts=True)
    _, scan = blelloch_scan(a, b, return_counts=True)
    assert loop.combines == loop.levels == T - 1
    assert scan.combines < 2 * T  # work-efficient
    assert scan.levels <= 2 * math.ceil(math.log2(T)) if T > 1 else scan.levels == 0
    if T > 1 and T & (T - 1) == 0:  # powers of two: the textbook counts
        k = int(math.log2(T))
        assert scan.combines == 2 * T - k - 2
        assert scan.levels == 2 * k - 1


def test_bad_inputs_raise_clear_errors():
    b = np.ones((5, 3))
    with pytest.raises(ValueError, match="a must have the same shape as b"):
        blelloch_scan(np.ones((5, 2)), b)
    with pytest.raises(ValueError, match="no dense form"):
        logspace_scan(np.ones((5, 3, 3)), b)
    with pytest.raises(ValueError, match="dense a must have shape"):
        scan_loop(np.ones((4, 3, 3)), b)
    with pytest.raises(ValueError, match="h0 must have the shape"):
        scan_loop(np.ones((5, 3)), b, h0=np.zeros(2))
    with pytest.raises(ValueError, match="T >= 1"):
        scan_loop(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(TypeError):
        scan_loop(np.ones((5, 3), dtype=int), b)
    with pytest.raises(ValueError):
        scan_loop(np.full((5, 3), np.nan), b)


@pytest.mark.parametrize("T", [1, 2, 5, 8, 13, 100])
def test_schedule_is_what_the_scan_counts_and_never_combines_twice(T):
    from companion.scratch.scan import blelloch_schedule

    sched = blelloch_schedule(T)
    _, counts = blelloch_scan(np.ones((T, 1)), np.ones((T, 1)), return_counts=True)
    assert sum(len(lev["pairs"]) for lev in sched) == counts.combines
    assert len(sched) == counts.levels
    for lev in sched:  # within a level, no position is read or written twice
        touched = [p for pair in lev["pairs"] for p in pair]
        assert len(touched) == len(set(touched))
        assert all(0 <= left < right < T for left, right in lev["pairs"])
    # the symbolic check: composing the listed pairs gives every prefix {0..t}
    spans = [(t, t) for t in range(T)]
    for lev in sched:
        for left, right in lev["pairs"]:
            assert spans[left][1] + 1 == spans[right][0], "combined blocks must be adjacent"
            spans[right] = (spans[left][0], spans[right][1])
    assert spans == [(0, t) for t in range(T)]


def test_scan_figures_draw_and_refuse_bad_input():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.data.results import load_results
    from companion.plots.scans import (lru_result_figure, scan_benchmark_figure,
                                       scan_tree_figure, speedup_figure, work_depth_figure)

    fig = scan_tree_figure(8)
    from matplotlib.text import Annotation

    arrows = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert len(arrows) == 11  # one arrow per combine
    assert "11 combines in 5 levels" in fig.axes[0].get_title()
    lengths = [2, 4, 8]
    fig2 = work_depth_figure(lengths, {"loop": ([1, 3, 7], [1, 3, 7])})
    assert len(fig2.axes) == 2
    fig3 = speedup_figure(lengths, {"x": [0.5, 1.0, 2.0]}, [2, 4, 8],
                          [1e-6, 8e-6, 6e-5], [1e-8, 2e-8, 4e-8], channels=16)
    assert len(fig3.axes) == 2
    fig4 = lru_result_figure(load_results("lru_sweep"))
    assert len(fig4.axes) == 2
    bench = load_results("lru_scan_benchmark")
    fig5 = scan_benchmark_figure(bench)
    assert len(fig5.axes) == 3
    # the compiled loop is drawn in both timing panels; without a compiler it is left out
    assert [ln.get_label() for ln in fig5.axes[1].lines].count("loop, compiled C") == 1
    no_c = {**bench, "widths": [{**r, "c_loop": None} for r in bench["widths"]]}
    labels = [ln.get_label() for ln in scan_benchmark_figure(no_c).axes[1].lines]
    assert "loop, compiled C" not in labels and "loop, NumPy" in labels
    plt.close("all")
    with pytest.raises(ValueError, match="at most 32"):
        scan_tree_figure(64)
    with pytest.raises(ValueError, match="lru_sweep"):
        lru_result_figure({})
    with pytest.raises(ValueError, match="lru_scan_benchmark"):
        scan_benchmark_figure({"H": 16})
