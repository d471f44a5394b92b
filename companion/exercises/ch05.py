"""Checkers for the exercises of chapter 5 (Long-term dependencies)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_jacobian_product_norm", "check_clip_by_norm", "check_leak_for_time_constant"]


def check_jacobian_product_norm(fn) -> None:
    """Exercise 5.1: ``fn(hs, W, d)`` = ||d h^(T) / d h^(T-d)||_2 for one tanh-RNN run.

    ``hs`` is (T, H), the states h^(1..T) of one sequence.
    """
    from companion.scratch.longterm import jacobian_norms

    rng = np.random.default_rng(51)
    for H, T, rho in [(3, 6, 0.8), (5, 12, 1.6), (4, 9, 2.5)]:
        U = rng.normal(size=(H, 1))
        W = rng.normal(size=(H, H))
        W *= rho / max(abs(np.linalg.eigvals(W)))
        b = 0.1 * rng.normal(size=H)
        x = rng.normal(size=(1, T, 1))
        from companion.scratch.recurrence import rnn_hidden_states

        hs = rnn_hidden_states(x, U, W, b)[0]  # (T, H)
        expected = jacobian_norms(x, U, W, b)[0]
        for d in range(T + 1):
            got = float(fn(hs, W, d))
            _require(np.isclose(got, expected[d], rtol=1e-8), f"for T={T}, d={d} your norm differs from the Jacobian product's. Multiply the "
                f"one-step Jacobians diag(1 - h^2) W of steps T, T-1, ..., T-d+1 (d factors; "
                f"d=0 is the identity) and take np.linalg.norm(P, 2).")
    _ok("your Jacobian products match companion.scratch.longterm.jacobian_norms.")


def check_clip_by_norm(fn) -> None:
    """Exercise 5.2: ``fn(grads, max_norm)`` returns the clipped list of arrays."""
    rng = np.random.default_rng(52)
    grads = [rng.normal(size=(3, 4)) * 10, rng.normal(size=4) * 10]
    total = np.sqrt(sum((g**2).sum() for g in grads))
    out = fn([g.copy() for g in grads], 1.0)
    _require(isinstance(out, (list, tuple)) and len(out) == 2, "return a list with one array per gradient")
    new_total = np.sqrt(sum((np.asarray(g) ** 2).sum() for g in out))
    _require(np.isclose(new_total, 1.0), f"after clipping to 1.0 the global norm is {new_total:.4f}. Use ONE norm over all "
        f"arrays together, not one per array.")
    for g, o in zip(grads, out):
        _require(np.allclose(np.asarray(o), g / total), "the clipped gradient must point in the same direction: scale every array by "
            "max_norm / global_norm.")
    small = [g / (10 * total) for g in grads]
    out = fn([g.copy() for g in small], 1.0)
    _require(all(np.allclose(np.asarray(o), g) for g, o in zip(small, out)), "a gradient whose norm is already below max_norm must be returned unchanged.")
    _ok("one global norm, direction kept, small gradients untouched.")


def check_leak_for_time_constant(fn) -> None:
    """Exercise 5.3: ``fn(tau)`` returns the leak alpha whose impulse response has 1/e time tau."""
    from companion.scratch.longterm import leaky_hidden_states, time_constant

    for tau in [2.0, 5.0, 20.0, 100.0]:
        alpha = float(fn(tau))
        _require(0 <= alpha < 1, f"alpha must be in [0, 1); got {alpha} for tau={tau}.")
        x = np.zeros((1, int(4 * tau) + 5, 1))
        x[0, 0, 0] = 0.1
        h = leaky_hidden_states(x, np.ones((1, 1)), np.zeros((1, 1)), np.zeros(1), alpha)
        measured = time_constant(h[0, :, 0])
        _require(np.isclose(measured, tau, rtol=1e-6), f"with alpha={alpha:.5f} the measured time constant is {measured:.3f}, not {tau}. "
            f"With W = 0 the response after d steps is alpha**d: which alpha puts it at 1/e "
            f"for d = tau? (1 - 1/tau is only an approximation.)")
    _ok("your leak gives the requested time constant for every tau tried.")
