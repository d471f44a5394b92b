"""Checkers for the exercises of chapter 1 (Recurrence).

Every checker runs the answer on the page's setting, on edge cases and on settings drawn
afresh from :func:`~companion.exercises.unseen_rng`, and computes its expected values with
its own few lines of NumPy, outside the answer's call.
"""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import unchanged as _unchanged
from companion.exercises import references_disabled, takes_arguments
from companion.exercises import require as _require
from companion.exercises import unseen_rng

__all__ = ["check_final_state", "check_latch_step", "check_transient_matrix",
           "check_receptive_field"]

# Package functions that evaluate a scalar linear recurrence for the answer.
_LINEAR_REFERENCES = (
    "companion.scratch.recurrence.linear_recurrence_closed_form",
    "companion.scratch.scan.scan_loop",
    "companion.scratch.scan.blelloch_scan",
    "companion.scratch.scan.logspace_scan",
    "companion.exercises.ch01._final_state",
)


def _scalar(value, what: str) -> float:
    """A float from a number, a 0-d array or a one-element array; a hint otherwise."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be a number; got {type(value).__name__}.") from None
    _require(arr.size == 1, (
        f"{what} must be one number; got an array of shape {arr.shape}. If it comes from "
        f"unroll, pick the last row's entry: states[-1, 0]."))
    number = float(arr.reshape(()))
    _require(np.isfinite(number), f"{what} is NaN or inf.")
    return number


def _final_state(a: float, s0: float, xs: np.ndarray) -> float:
    s = s0
    for x in xs:
        s = a * s + x
    return s


def check_final_state(fn) -> None:
    """Exercise 1.1: ``fn(a, s0, xs)`` -> s(tau) for s(t) = a s(t-1) + x(t)."""
    takes_arguments(fn, "(a, s0, xs) -> s(tau)")
    rng = unseen_rng()
    cases = [(0.5, 2.0, np.array([1.0, 0.0, -1.0])),     # the page's setting, by hand
             (0.5, 2.0, np.array([])),                   # no input: s(0) itself
             (0.0, 3.0, np.array([4.0, -2.0])),          # no memory at all
             (-0.8, 1.0, np.array([0.5]))]
    for _ in range(20):
        cases.append((float(rng.uniform(-1.3, 1.3)), float(rng.normal(0, 2)),
                      rng.normal(size=int(rng.integers(1, 30)))))
    for a, s0, xs in cases:
        expected = _final_state(a, s0, xs)
        passed = xs.copy()
        with references_disabled(fn, *_LINEAR_REFERENCES):
            got = fn(a, s0, passed)
        _unchanged(xs, passed, "xs")
        got = _scalar(got, f"final_state({a:.3g}, {s0:.3g}, xs) with {len(xs)} inputs")
        if len(xs) == 0:
            _require(np.isclose(got, expected), (
                "with no inputs (tau = 0) the final state is the initial state s(0) itself."))
        _require(np.isclose(got, expected, rtol=1e-9, atol=1e-12), (
            f"for a = {a:.3g}, s(0) = {s0:.3g} and {len(xs)} inputs your s(tau) is not the "
            f"recurrence's. Recompute step by step: s(1) = a * s(0) + x(1), then s(2) from "
            f"s(1) and x(2), and so on; the last row of unroll's result is s(tau)."))
    _ok("your s(tau) matches the recurrence on the page's setting and on fresh ones.")


def _run_step(fn, xs: np.ndarray) -> np.ndarray:
    """States s(1..tau) of ``s = fn(s, x)`` from s(0) = 0, called as ``unroll`` calls it:
    ``s`` and ``x`` are one-element float arrays."""
    s, states = np.zeros(1), []
    for x in xs:
        out = fn(s.copy(), np.array([x]))
        try:
            s = np.asarray(out, dtype=float)
        except (TypeError, ValueError):
            raise AssertionError(f"latch_step must return an array of numbers; got "
                                 f"{type(out).__name__}.") from None
        _require(s.size == 1, (
            f"latch_step(s, x) must return the next state, shaped like s (one number); got "
            f"shape {s.shape}."))
        _require(bool(np.all(np.isfinite(s))), "your latch_step returned NaN or inf.")
        s = s.reshape(1)
        states.append(float(s[0]))
    return np.array(states)


def check_latch_step(fn) -> None:
    """Exercise 1.2: ``fn(s, x)`` -> the next state of a latch: from s(0) = 0 the state is
    1 from the first input equal to 1 onwards, 0 before."""
    takes_arguments(fn, "(s, x) -> next s")
    rng = unseen_rng()
    cases = [np.zeros(5), np.ones(3), np.array([0, 0, 1, 0, 0, 0.0]), np.array([1.0]),
             np.array([0, 1, 1, 0, 1, 0.0])]
    cases += [(rng.random(int(rng.integers(1, 60))) < rng.uniform(0.02, 0.3)).astype(float)
              for _ in range(60)]
    for xs in cases:
        expected = (np.cumsum(xs) > 0).astype(float)
        got = _run_step(fn, xs)                 # no reference computes one step of a latch
        if np.allclose(got, expected):
            continue
        first = int(np.argmax(xs)) if xs.any() else len(xs)
        _require(np.allclose(got[:first], 0.0), (
            f"for inputs {xs.astype(int).tolist()} your state leaves 0 before the first 1 "
            f"arrives: from s = 0, an input 0 must leave the state at 0."))
        _require(np.allclose(got[first], 1.0), (
            f"for inputs {xs.astype(int).tolist()} your state is not 1 at the first 1: from "
            f"s = 0, an input 1 must switch the state to 1."))
        _require(False, (
            f"for inputs {xs.astype(int).tolist()} your states are "
            f"{np.round(got, 3).tolist()}: after the first 1 the state must stay at 1, "
            f"whatever follows (a 0 must not erase it, another 1 must not add to it)."))
    _ok("the latch remembers the first 1 forever, whatever the length.")


def check_transient_matrix(fn) -> None:
    """Exercise 1.3: ``fn(rho, gain)`` -> a real 2x2 W with rho(W) = rho and ||W||_2 = gain."""
    takes_arguments(fn, "(rho, gain) -> W")
    rng = unseen_rng()
    cases = [(0.5, 2.0), (0.9, 1.5), (0.2, 10.0), (0.99, 1.01)]
    cases += [(float(rng.uniform(0.05, 0.98)), float(rng.uniform(1.05, 8.0)))
              for _ in range(20)]
    for rho, gain in cases:
        with references_disabled(fn):
            out = fn(rho, gain)
        try:
            W = np.asarray(out, dtype=float)
        except (TypeError, ValueError):
            raise AssertionError(f"return a real 2x2 NumPy array; got {type(out).__name__} "
                                 f"(complex entries are not allowed).") from None
        _require(W.shape == (2, 2), f"expected a 2x2 matrix; got shape {W.shape}.")
        _require(np.all(np.isfinite(W)), "your matrix contains NaN or inf; use finite entries.")
        got_rho = max(abs(np.linalg.eigvals(W)))
        got_gain = np.linalg.norm(W, 2)
        _require(np.isclose(got_rho, rho, rtol=1e-6, atol=1e-9), (
            f"for rho = {rho:.3f}, gain = {gain:.3f} the spectral radius of your matrix is "
            f"{got_rho:.4f}, not rho. Put rho on the diagonal of a triangular matrix: its "
            f"eigenvalues are its diagonal entries."))
        _require(got_gain > 1, (
            f"for rho = {rho:.3f}, gain = {gain:.3f} the largest one-step gain ||W||_2 is "
            f"{got_gain:.3f} <= 1, so no vector is amplified. Make the matrix far from "
            f"symmetric (a large off-diagonal entry)."))
        _require(np.isclose(got_gain, gain, rtol=1e-6, atol=1e-9), (
            f"for rho = {rho:.3f}, gain = {gain:.3f} your ||W||_2 is {got_gain:.4f}, not gain. "
            f"The singular values of W are the square roots of the eigenvalues of W^T W: "
            f"their product is |det W| and the sum of their squares is the sum of the "
            f"squared entries. Solve for the off-diagonal entry."))
    _ok("your matrices have exactly the spectral radius and the one-step gain asked for.")


def _receptive_field(response: np.ndarray, tol: float) -> int:
    above = [t for t, v in enumerate(response, start=1) if abs(v) > tol]
    return above[-1] if above else 0


def check_receptive_field(fn) -> None:
    """Exercise 1.4: last time step (1-based) where |response| > tol, 0 if none."""
    takes_arguments(fn, "(response, tol) -> int")
    rng = unseen_rng()
    cases = [
        (np.array([0.5, 0.3, 0.2, 0.0, 0.0]), 1e-3),
        (np.array([1.0, 0.1, 0.01, 0.001, 0.0001]), 1e-3),
        (np.zeros(4), 1e-3),
        (np.array([0.0, 0.0, -0.5]), 1e-3),
        (np.array([0.2, 0.0, 0.0, 0.05, 0.0]), 0.1),
        (0.9 ** np.arange(200), 1e-4),
    ]
    for _ in range(30):
        T = int(rng.integers(1, 120))
        decay = float(rng.uniform(0.3, 0.99))
        response = rng.choice([-1.0, 1.0], size=T) * decay ** np.arange(T) * rng.uniform(0.5, 2.0)
        response[rng.random(T) < 0.1] = 0.0
        cases.append((response, float(10.0 ** rng.uniform(-5, -1))))
    for response, tol in cases:
        expected = _receptive_field(response, tol)
        passed = response.copy()
        with references_disabled(fn, "companion.exercises.ch01._receptive_field"):
            got = fn(passed, tol)
        _unchanged(response, passed, "response")
        _require(isinstance(got, (int, np.integer)) and not isinstance(got, bool), (
            f"return an int (a time step); got {type(got).__name__}."))
        _require(got == expected, (
            f"for a response of length {len(response)} and tol={tol:.2g} your answer {got!r} "
            f"is wrong. Count time steps from 1: the last one whose magnitude (abs) exceeds "
            f"tol (0 when none does)."
        ))
    _ok("receptive fields are measured correctly.")
