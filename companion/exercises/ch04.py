"""Checkers for the exercises of chapter 4 (Backpropagation through time)."""

from __future__ import annotations

import numpy as np

from companion.scratch.bptt import rnn_backward, truncated_bptt
from companion.scratch.forward import rnn_forward, sequence_nll
from companion.scratch.gradcheck import check_gradients
from companion.scratch.init import init_rnn_params, random_rnn_problem
from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_cache_bytes", "check_fixed_backward", "check_tbptt_total"]


def _problem(seed=7, N=3, T=6, D=4, H=5, K=3):
    return random_rnn_problem(N, T, D, H, K, np.random.default_rng(seed))


def check_fixed_backward(fn) -> None:
    """``fn(do, cache, params) -> grads`` must pass a finite-difference check on every parameter."""
    params, x, y, h0 = _problem()
    o, cache = rnn_forward(x, params, h0)
    _, do = sequence_nll(o, y)
    grads = fn(do, cache, params)
    missing = [k for k in ("U", "W", "V", "b", "c", "h0") if k not in grads]
    _require(not missing, f"Return a dict with the keys U, W, V, b, c, h0; missing {missing}.")

    def loss_fn(p):
        q = {k: p[k] for k in ("U", "W", "V", "b", "c")}
        return sequence_nll(rnn_forward(x, q, p["h0"])[0], y)[0]

    errors = check_gradients(loss_fn, {**params, "h0": h0.copy()}, grads)
    bad = [k for k, e in errors.items() if not e < 1e-7]
    _require(not bad, (
        f"The gradients of {bad} still disagree with finite differences (relative errors "
        + ", ".join(f"{k}: {errors[k]:.1e}" for k in bad)
        + "). Compare each line with the equations of the derivation."))
    ref = rnn_backward(do, cache, params)
    _require(all(np.allclose(np.asarray(grads[k]), ref[k], atol=1e-10) for k in ref),
             "The gradients pass the finite-difference check only loosely: compare each "
             "line with the equations of the derivation.")
    print("Correct: every gradient agrees with finite differences (relative error < 1e-7).")


def check_cache_bytes(fn) -> None:
    """``fn(N, T, D, H, K, itemsize) -> int``: the bytes an ``RNNCache`` holds."""
    rng = np.random.default_rng(0)
    for N, T, D, H, K in [(2, 5, 3, 4, 6), (8, 50, 27, 64, 27), (1, 1, 1, 1, 1)]:
        params = init_rnn_params(D, H, K, rng)
        _, cache = rnn_forward(np.zeros((N, T, D)), params)
        got = int(fn(N, T, D, H, K, 8))
        if got != cache.nbytes:
            how = "fewer" if got < cache.nbytes else "more"
            raise AssertionError(
                f"For N={N}, T={T}, D={D}, H={H}, K={K} (float64) you count {how} bytes than "
                f"the cache holds. It stores x, h0, h and o; count each array's entries and "
                f"multiply by the bytes per number.")
    print("Correct: the stored activations grow linearly in T, exactly as you counted.")


def check_tbptt_total(fn) -> None:
    """``fn(params, x, y, k) -> (total_loss, summed_grads)``: chunks of ``k`` steps,
    state carried."""
    params, x, y, _ = _problem(seed=11, T=10)
    for k in (3, 10):
        total, grads = fn(params, x, y, k)
        ref_loss, ref = 0.0, None
        for loss, g, _ in truncated_bptt(params, x, y, k):
            ref_loss += loss
            ref = g if ref is None else {n: ref[n] + g[n] for n in ("U", "W", "V", "b", "c")}
        _require(np.isclose(total, ref_loss), (
            f"With k={k} the total loss differs from truncated BPTT's. Is the state carried "
            f"from one chunk to the next (h0 of a chunk = last state of the previous)?"))
        for n in ("U", "W", "V", "b", "c"):
            _require(np.allclose(grads[n], ref[n], atol=1e-10), (
                f"With k={k} the summed gradient of {n} is wrong. Each chunk's backward pass "
                f"must stop at its first state (treat the carried state as a constant)."))
    print("Correct: state carried forward, gradients truncated at chunk boundaries.")
