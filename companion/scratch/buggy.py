"""A backward pass with four classic bugs, for the gradient-checking exercise of chapter 4.

**Do not use this for anything but the exercise.** It has the signature of
:func:`companion.scratch.bptt.rnn_backward` and is written in the step-by-step style
of many tutorials. It runs, returns arrays of the right shapes, and the loss even
goes down for a while when you train with it, which is exactly why such bugs
survive in published code. Only a gradient check exposes them.

The four bugs are of kinds found in popular write-ups of BPTT: a bias gradient
accumulated from the wrong variable, an accumulation that adds a gradient to itself,
a tanh derivative missing on one path, and an off-by-one in time. The exercise is
to find them with :func:`companion.scratch.gradcheck.check_gradients`; the fixed
version is in the chapter (hidden) and is :func:`~companion.scratch.bptt.rnn_backward`.
"""

from __future__ import annotations

import numpy as np

from companion.checks import as_float_array, check_shape
from companion.scratch.bptt import _check_cache
from companion.scratch.forward import check_params

__all__ = ["buggy_rnn_backward"]


def buggy_rnn_backward(do, cache, params) -> dict:
    """BPTT with bugs (see the module docstring). Same arguments as ``rnn_backward``."""
    dims = check_params(params)  # the arguments are checked like rnn_backward's (no bug here)
    _check_cache(cache, dims)
    do = as_float_array("do", do)
    check_shape("do", do, ("N", "T", "K"), dims)
    U, W, V = params["U"], params["W"], params["V"]
    x, h, h0 = cache.x, cache.h, cache.h0
    N, T, _ = x.shape
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    db, dc = np.zeros_like(params["b"]), np.zeros_like(params["c"])
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        h_t = h[:, t]
        h_prev = h0 if t == 0 else h[:, t - 1]
        dV += do[:, t].T @ h_t
        dc_t = do[:, t].sum(axis=0)
        dc += dc
        dh = do[:, t] @ V + dh_next
        da = dh * (1 - h_t**2)
        dU += da.T @ x[:, t]
        dW += da.T @ h_t
        db += dh.sum(axis=0)
        dh_next = dh @ W
    return {"U": dU, "W": dW, "V": dV, "b": db, "c": dc, "h0": dh_next}
