"""Checkers for the exercises of chapter 2 (Unfolding computational graphs)."""

from __future__ import annotations

import numpy as np

from companion.scratch.recurrence import unroll
from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_edge_counts", "check_g3", "check_scalar_closed_form", "check_dh_dw"]


def check_edge_counts(fn) -> None:
    """Exercise 2.1: edges of each kind in the unrolled graph with losses and h^(0)."""
    for tau in [1, 2, 5, 17]:
        got = fn(tau)
        expected = {"W": tau, "U": tau, "V": tau, "loss": tau}
        _require(isinstance(got, dict) and set(got) == set(expected), (
            f"return a dict with exactly the keys {sorted(expected)}; got {got!r}."
        ))
        _require(got == expected, (
            f"for tau={tau} your counts {got} are not all right. Draw unrolled_graph({tau}, "
            f"with_loss=True) and count each kind: is there a W edge out of h^(0)?"
        ))
    _ok("your counts match the drawn graph for every tau tried.")


def check_g3(fn) -> None:
    """Exercise 2.2: g3(f, h0, x1, x2, x3) equals three steps of unroll."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        W, U = rng.normal(size=(4, 4)), rng.normal(size=(4, 2))

        def f(h, x, W=W, U=U):
            return np.tanh(W @ h + U @ x)

        h0, xs = rng.normal(size=4), rng.normal(size=(3, 2))
        expected = unroll(f, h0, xs=xs)[-1]
        got = np.asarray(fn(f, h0, *xs))
        _require(got.shape == expected.shape and np.allclose(got, expected), (
            "g3 does not match three steps of the recurrence. Apply f to h0 and x1 first, "
            "then feed the result back in with x2, then with x3."
        ))
    _ok("g3 is f composed with itself three times.")


def check_scalar_closed_form(fn) -> None:
    """Exercise 2.3: closed form of h(t) = w h(t-1) + u x(t)."""
    rng = np.random.default_rng(4)
    for w, u in [(0.5, 1.0), (1.0, 2.0), (-0.9, 0.3), (1.1, -1.0)]:
        xs, h0 = rng.normal(size=int(rng.integers(1, 20))), float(rng.normal())
        expected = unroll(lambda h, x: w * h + u * x, [h0], xs=xs[:, None])[-1, 0]
        got = float(fn(w, u, xs, h0))
        _require(np.isclose(got, expected, rtol=1e-10), (
            f"for w={w}, u={u}, tau={len(xs)} your closed form disagrees with the recurrence. "
            f"The newest input has weight u, the oldest u * w**(tau - 1), and h0 gets w**tau."
        ))
    _ok("the closed form matches the recurrence.")


def check_dh_dw(fn) -> None:
    """Exercise 2.4: d h(tau) / d w for h(t) = tanh(w h(t-1) + x(t)), vs finite differences."""
    rng = np.random.default_rng(5)

    def final(w, xs, h0):
        return unroll(lambda h, x: np.tanh(w * h + x), [h0], xs=xs[:, None])[-1, 0]

    for _ in range(5):
        w, h0 = float(rng.uniform(-1.5, 1.5)), float(rng.normal())
        xs = rng.normal(size=int(rng.integers(1, 15)))
        eps = 1e-6
        expected = (final(w + eps, xs, h0) - final(w - eps, xs, h0)) / (2 * eps)
        got = float(fn(w, xs, h0))
        _require(np.isclose(got, expected, rtol=1e-5, atol=1e-8), (
            f"for w={w:.3f}, tau={len(xs)} your derivative disagrees with a finite "
            f"difference. Did you include 1 - h**2 for every tanh on the way, and "
            f"sum one term per step?"
        ))
    _ok("your sum over the copies of w matches finite differences.")
