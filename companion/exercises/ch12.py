"""Checkers for the exercises of chapter 12 (Beyond), all three of its pages.

The file is shared: each section's checkers sit in their own block below, with their own
imports and helpers, in the order the blocks were added (append only). Every block adds
its names to ``__all__``.
"""

from __future__ import annotations

__all__: list[str] = []


# ---------------------------------------------------------------- O12: learning online
# (section ch12_online: Exercises 12.11-12.13). Self-contained: its own imports and helpers.
import numpy as np  # noqa: E402

from companion.exercises import ok as _ok  # noqa: E402
from companion.exercises import require as _require  # noqa: E402

__all__ += ["check_rtrl_costs", "check_rtrl_h0_gradient", "check_uoro_step"]  # noqa: F405


def _o12_close(got, ref) -> bool:
    got = np.asarray(got, dtype=float)
    return got.shape == np.shape(ref) and bool(np.all(np.isfinite(got))) \
        and np.allclose(got, ref, atol=1e-10, rtol=0)


def _rtrl_problem(D, H, seed):  # parameters, a random J, x_t and h_prev
    from companion.scratch.init import init_rnn_params

    rng = np.random.default_rng(seed)
    p = init_rnn_params(D, H, 2, rng, recurrent_gain=1.2)
    p["b"] = rng.normal(0.0, 0.3, size=H)
    P = H * D + H * H + H
    return p, rng.normal(size=(H, P)) * 0.3, rng.normal(size=D), np.tanh(rng.normal(size=H))


def check_rtrl_h0_gradient(fn) -> None:
    """Exercise 12.11: ``fn(params, x, y, h0)`` -> dL/dh0 (H,), for one sequence, forwards."""
    from companion.scratch.bptt import rnn_loss_and_grads
    from companion.scratch.init import random_rnn_problem

    for T, D, H, K, seed in [(1, 1, 1, 2, 0), (4, 2, 3, 2, 1), (7, 3, 5, 4, 2)]:
        p, x, y, h0 = random_rnn_problem(1, T, D, H, K, np.random.default_rng(seed))
        ref = rnn_loss_and_grads(p, x, y, h0=h0)[1]["h0"][0]
        got = fn({k: v.copy() for k, v in p.items()}, x[0].copy(), y[0].copy(), h0[0].copy())
        got = np.asarray(got, dtype=float)
        _require(got.shape == (H,), f"return one gradient entry per hidden unit, shape "
                                    f"({H},); got {got.shape}.")
        if _o12_close(got, ref):
            continue
        _require(T > 1 or not _o12_close(got, ref * 0), "with one step, dL/dh0 is "
                 "K^(1)^T V^T (y_hat - onehot(y)) with K^(1) = diag(1 - h^2) W.")
        _require(False, f"dL/dh0 differs from BPTT's on a sequence of length {T}. Start "
                        f"from K = I (h0's influence on itself), update K <- diag(1 - h_t**2) "
                        f"W K after computing h_t, and add K^T V^T (y_hat - onehot(y_t)) "
                        f"at every step.")
    _ok("your forward-mode dL/dh0 equals BPTT's on every sequence tried.")


def check_rtrl_costs(fn) -> None:
    """Exercise 12.12: ``fn(D, H)`` -> (floats in J, multiply-adds of W @ J per step)."""
    for D, H in [(1, 1), (2, 3), (4, 16), (10, 100), (64, 512)]:
        P = H * D + H * H + H
        out = fn(D, H)
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (floats, multiply_adds).")
        floats, madds = (int(v) for v in out)
        _require(floats == H * P, f"the float count is wrong at D={D}, H={H}: J has one row "
                                  f"per hidden unit and one column per recurrent parameter.")
        _require(madds == H * H * P, f"the multiply-add count is wrong at D={D}, H={H}: "
                                     f"an (a, b) @ (b, c) product costs a*b*c.")
    _ok("both counts are right for every size tried.")


def check_uoro_step(fn) -> None:
    """Exercise 12.13: ``fn(h_tilde, theta_tilde, x_t, h_prev, h_t, W, nu)``, one sequence."""
    from companion.scratch.rtrl import _uoro_step

    for D, H, seed in [(1, 2, 0), (2, 3, 1), (3, 4, 2)]:
        p, _, x_t, h_prev = _rtrl_problem(D, H, seed)
        rng = np.random.default_rng(seed + 10)
        h_t = np.tanh(p["U"] @ x_t + p["W"] @ h_prev + p["b"])
        ht = rng.normal(size=H)
        tt = rng.normal(size=H * D + H * H + H)
        nu = rng.choice([-1.0, 1.0], size=H)
        ref = _uoro_step(ht[None], tt[None], x_t[None], h_prev[None], h_t[None], p["W"],
                         nu[None], 1e-7)
        out = fn(ht.copy(), tt.copy(), x_t.copy(), h_prev.copy(), h_t.copy(),
                 p["W"].copy(), nu.copy())
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (h_tilde_new, theta_tilde_new).")
        got_h, got_t = (np.asarray(a, dtype=float) for a in out)
        _require(got_h.shape == (H,) and got_t.shape == tt.shape,
                 "h_tilde stays (H,) and theta_tilde (P,).")
        ok_outer = _o12_close(np.outer(got_h, got_t), np.outer(ref[0][0], ref[1][0]))
        _require(ok_outer, "the rank-one product h_tilde theta_tilde^T is wrong. Build "
                           "D W h_tilde and nu^T D I-bar first (D = diag(1 - h_t**2)), then "
                           "the two scale factors from their norms.")
        _require(_o12_close(got_h, ref[0][0]) and _o12_close(got_t, ref[1][0]),
                 "the product is right but the two factors are scaled differently: use "
                 "rho0 and rho1 exactly as the statement defines them.")
    _ok("your UORO step matches companion.scratch.rtrl, scale factors included.")
