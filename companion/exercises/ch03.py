"""Checkers for the exercises of chapter 3 (Forward propagation).

Each ``check_*`` function runs the reader's answer on fresh random inputs, compares
it with the course's implementation, prints a one-line verdict when it is right and
raises ``AssertionError`` with a hint when it is not.
"""

from __future__ import annotations

import numpy as np

from companion.scratch.forward import rnn_forward, sequence_nll, softmax
from companion.scratch.init import init_rnn_params
from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_forward_loop", "check_initial_loss", "check_temperature_softmax"]


def check_forward_loop(fn) -> None:
    """``fn(x, params, h0) -> (h, o)`` must equal :func:`rnn_forward` (h (N, T, H), o (N, T, K))."""
    rng = np.random.default_rng(123)
    params = init_rnn_params(4, 6, 5, rng)
    params["b"] = rng.normal(0, 0.1, 6)
    params["c"] = rng.normal(0, 0.1, 5)
    x = rng.normal(size=(3, 7, 4))
    h0 = rng.normal(0, 0.5, (3, 6))
    out = fn(x, params, h0)
    _require(isinstance(out, tuple) and len(out) == 2, "Return a pair (h, o).")
    h, o = (np.asarray(a) for a in out)
    o_ref, cache = rnn_forward(x, params, h0)
    _require(h.shape == (3, 7, 6), (
        f"h should be (N, T, H) = (3, 7, 6), batch-first; got {h.shape}. "
        "Stack the states on axis 1."))
    _require(o.shape == (3, 7, 5), f"o should be (N, T, K) = (3, 7, 5); got {o.shape}.")
    if np.allclose(h[:, 0], np.tanh(x[:, 0] @ params["U"].T + params["b"])) and not np.allclose(
            h, cache.h):
        raise AssertionError("The first state ignores h0: start the loop from h_prev = h0.")
    _require(np.allclose(h, cache.h, atol=1e-10), (
        "The hidden states differ. Check a = x_t @ U.T + h_prev @ W.T + b (weights are "
        "stored (out, in)) and that h_prev is updated at every step."))
    _require(np.allclose(o, o_ref, atol=1e-10),
             "The states are right but o is not: o = h @ V.T + c.")
    _ok("your loop matches companion.scratch.forward.rnn_forward.")


def check_initial_loss(fn) -> None:
    """``fn(T, K) -> float``: the loss :func:`sequence_nll` gives when all logits are equal."""
    for T, K in [(1, 2), (10, 27), (50, 96)]:
        got = float(fn(T, K))
        want, _ = sequence_nll(np.zeros((1, T, K)), np.zeros((1, T), dtype=int))
        _require(np.isclose(got, want, rtol=1e-9), (
            f"For T={T}, K={K} your value, {got:.4f}, is not the loss of equal logits. "
            f"What probability does each class get when all logits are equal, what does one "
            f"step then cost in nats (natural log), and remember that the loss sums over time."))
    _ok("your value is the loss of equal logits for every (T, K) tried.")


def check_temperature_softmax(fn) -> None:
    """``fn(o, temperature) -> p`` for 1-D logits ``o``: a stable softmax of ``o / temperature``."""
    o = np.array([2.0, 1.0, 0.0, -1.0])
    for temp in (0.5, 1.0, 2.0):
        p = np.asarray(fn(o, temp), dtype=float)
        _require(p.shape == o.shape, (
            f"Return one probability per logit, shape {o.shape}; got {p.shape}."))
        _require(np.allclose(p, softmax(o / temp)), (
            f"At temperature {temp} the probabilities are wrong: divide the logits by the "
            f"temperature, then take the softmax."))
    with np.errstate(over="ignore", invalid="ignore"):  # a naive softmax overflows here
        p = np.asarray(fn(np.array([1000.0, 999.0]), 1.0), dtype=float)
    _require(np.all(np.isfinite(p)), ("Large logits give NaN or inf: subtract the maximum "
                                      "logit before exponentiating."))
    p = np.asarray(fn(o, 0.01), dtype=float)
    _require(p[0] > 0.999, (
        "A very low temperature should put almost all the mass on the largest logit."))
    _ok("temperature sharpens (below 1) and flattens (above 1), and large logits are safe.")
