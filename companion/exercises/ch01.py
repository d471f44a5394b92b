"""Checkers for the exercises of chapter 1 (Recurrence)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_ex1_final_state", "check_latch", "check_transient_matrix",
           "check_receptive_field"]


def check_ex1_final_state(fn) -> None:
    """Exercise 1.1: s3 for s(t) = 0.5 s(t-1) + x(t), s0 = 2, x = 1, 0, -1."""
    value = float(fn())
    expected = -0.5
    _require(np.isclose(value, expected), (
        f"got s(3) = {value}, which is not it; recompute step by step: s(1) = 0.5 * 2 + 1, "
        f"then s(2) from s(1) and x(2), then s(3). Does unroll's last row hold s(3)?"
    ))
    _ok("your s(3) matches the recurrence.")


def check_latch(fn) -> None:
    """Exercise 1.2: the state is 1 from the first 1 onwards, 0 before."""
    rng = np.random.default_rng(12)
    cases = [np.zeros(5), np.ones(3), np.array([0, 0, 1, 0, 0, 0.0])]
    cases += [(rng.random(int(rng.integers(1, 40))) < 0.1).astype(float) for _ in range(50)]
    for xs in cases:
        got = np.asarray(fn(xs), dtype=float)
        expected = (np.cumsum(xs) > 0).astype(float)
        _require(got.shape == expected.shape, (
            f"latch must return one state per input, shape {expected.shape}; got {got.shape}. "
            f"Drop the initial state s(0) from unroll's result."
        ))
        _require(np.allclose(got, expected), (
            f"for inputs {xs.astype(int).tolist()} your latch returned "
            f"{np.round(got, 3).tolist()}, which is wrong. Is the state 0 before the first 1, "
            f"and does it stay at 1 after the first 1, whatever follows?"
        ))
    _ok("the latch remembers the first 1 forever, whatever the length.")


def check_transient_matrix(fn) -> None:
    """Exercise 1.3: rho(W) < 1 but ||W|| (largest singular value) > 1."""
    W = np.asarray(fn(), dtype=float)
    _require(W.shape == (2, 2), f"expected a 2x2 matrix; got shape {W.shape}.")
    _require(np.all(np.isfinite(W)), "your matrix contains NaN or inf; use finite entries.")
    rho = max(abs(np.linalg.eigvals(W)))
    gain = np.linalg.norm(W, 2)
    _require(rho < 1, f"spectral radius is {rho:.3f}; it must be below 1.")
    _require(gain > 1, (
        f"the largest one-step gain ||W||_2 is {gain:.3f} <= 1, so no vector is amplified. "
        f"Make the matrix far from symmetric (a large off-diagonal entry)."
    ))
    _ok(f"spectral radius {rho:.2f} < 1, yet one step can stretch a vector by {gain:.2f}.")


def check_receptive_field(fn) -> None:
    """Exercise 1.4: last time step (1-based) where |response| > tol."""
    cases = [
        (np.array([0.5, 0.3, 0.2, 0.0, 0.0]), 1e-3, 3),
        (np.array([1.0, 0.1, 0.01, 0.001, 0.0001]), 1e-3, 3),
        (np.zeros(4), 1e-3, 0),
        (np.array([0.0, 0.0, -0.5]), 1e-3, 3),
        (np.array([0.2, 0.0, 0.0, 0.05, 0.0]), 0.1, 1),
        (0.9 ** np.arange(200), 1e-4, 88),
    ]
    for response, tol, expected in cases:
        got = fn(response, tol)
        _require(isinstance(got, (int, np.integer)) and got == expected, (
            f"for a response of length {len(response)} and tol={tol} your answer {got!r} is "
            f"wrong. Return an int. Count time steps from 1: the last one whose magnitude (abs) "
            f"exceeds tol (0 when none does)."
        ))
    _ok("receptive fields are measured correctly.")
