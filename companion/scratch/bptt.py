"""Backpropagation through time (BPTT) for the vanilla RNN, in NumPy.

Chapter 4. The backward pass walks the unrolled graph of chapter 3 from the last
time step to the first (Goodfellow et al., 2016, eq. 10.16-10.28). With rows as
examples and :math:`\\nabla_{o^{(t)}} L` given by the loss,

.. math::

    \\nabla_{h^{(\\tau)}} L = V^\\top \\nabla_{o^{(\\tau)}} L, \\qquad
    \\nabla_{h^{(t)}} L = W^\\top \\mathrm{diag}\\bigl(1 - (h^{(t+1)})^2\\bigr)
        \\nabla_{h^{(t+1)}} L + V^\\top \\nabla_{o^{(t)}} L,

and every parameter gradient is a sum over time of a local contribution. Only the
recursion for :math:`\\nabla_{h^{(t)}} L` is sequential; once the gradients with
respect to the pre-activations ``da`` (N, T, H) are known, ``dU``, ``dW`` and ``db``
are single batched contractions over all time steps.

Gradients are returned in a dict with the parameter names (``"U"``, ``"W"``, ...)
plus ``"h0"``, the gradient with respect to the initial state.
"""

from __future__ import annotations

import numpy as np

from companion.checks import (
    as_float_array,
    check_batch_first,
    check_nonempty,
    check_positive_int,
    check_shape,
)
from companion.scratch.forward import (
    RNNCache,
    _check_mask,
    _check_sequence_inputs,
    check_params,
    rnn_forward,
    sequence_nll,
)

__all__ = [
    "hidden_backward",
    "rnn_backward",
    "rnn_loss_and_grads",
    "rnn_step_backward",
    "truncated_bptt",
]


def rnn_step_backward(dh_t, cache, U, W):
    """Backward through one step :math:`h^{(t)} = \\tanh(b + W h^{(t-1)} + U x^{(t)})`.

    Parameters
    ----------
    dh_t : (N, H), the total gradient reaching :math:`h^{(t)}`.
    cache : ``(x_t, h_prev, h_t)`` from :func:`~companion.scratch.forward.rnn_step_forward`.
    U : (H, D).
    W : (H, H), the weights the step used.

    Returns
    -------
    dx_t : (N, D).
    dh_prev : (N, H).
    dU : (H, D).
    dW : (H, H).
    db : (H,).
    """
    dims = _check_weights(U, W)
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise TypeError(
            "cache must be the (x_t, h_prev, h_t) tuple returned by rnn_step_forward; "
            f"got {type(cache).__name__}{'' if not hasattr(cache, '__len__') else ' of length '}"
            f"{len(cache) if hasattr(cache, '__len__') else ''}."
        )
    hint = "The cache and the weights must come from the same rnn_step_forward call."
    x_t, h_prev, h_t = (as_float_array(f"cache[{i}] ({n})", a) for i, (n, a) in
                        enumerate(zip(("x_t", "h_prev", "h_t"), cache)))
    check_shape("cache[2] (h_t)", h_t, ("N", "H"), dims, hint=hint)
    check_shape("cache[0] (x_t)", x_t, ("N", "D"), dims, hint=hint)
    check_shape("cache[1] (h_prev)", h_prev, ("N", "H"), dims, hint=hint)
    dh_t = as_float_array("dh_t", dh_t)
    check_shape("dh_t", dh_t, ("N", "H"), dims, hint="dh_t has the shape of the state h_t.")
    da = dh_t * (1.0 - h_t**2)  # tanh'(a) = 1 - tanh(a)^2 = 1 - h^2: no need to store a
    # rows are examples: da @ W is W^T da per example; da.T @ x sums over the batch
    return da @ U, da @ W, da.T @ x_t, da.T @ h_prev, da.sum(axis=0)


def _check_weights(U, W) -> dict:
    U = as_float_array("U", U)
    W = as_float_array("W", W)
    dims = check_shape("W", W, ("H", "H"))
    check_nonempty("W", W, ("H", "H"))
    check_shape("U", U, ("H", "D"), dims, hint="Weights are stored (out, in): U is (H, D).")
    return dims


def hidden_backward(dh_out, x, h0, h, U, W, dh_last=None):
    """The sequential heart of BPTT: gradients through the hidden-state chain.

    Parameters
    ----------
    dh_out : (N, T, H), the gradient each :math:`h^{(t)}` receives *directly* (from
        its own output, e.g. ``do @ V``); zeros where a step has no output.
    x : (N, T, D).
    h0 : (N, H).
    h : (N, T, H).
    U : (H, D).
    W : (H, H).
    dh_last : (N, H), optional extra gradient arriving at :math:`h^{(\\tau)}` from
        beyond the sequence (e.g. from the next chunk; zeros if omitted).

    Returns
    -------
    dict
        ``U``, ``W``, ``b``, ``h0`` (gradient w.r.t. the initial state) and ``x``
        (N, T, D), the gradient w.r.t. the inputs.
    """
    dims = _check_weights(U, W)
    x, h0, h, dh_out = (as_float_array(n, a) for n, a in
                        (("x", x), ("h0", h0), ("h", h), ("dh_out", dh_out)))
    check_batch_first("x", x, ("N", "T", "D"), dims, (
        ("h0", h0, ("N", "H"), "h0 is the initial state the forward pass started from."),
        ("h", h, ("N", "T", "H"), "h holds the forward pass's states (cache.h)."),
        ("dh_out", dh_out, ("N", "T", "H"), "dh_out has the shape of the states h."),
    ))
    check_nonempty("x", x, ("N", "T"), hint="An RNN needs at least one step to run.")
    if dh_last is not None:
        dh_last = as_float_array("dh_last", dh_last)
        check_shape("dh_last", dh_last, ("N", "H"), dims)
    return _hidden_backward(dh_out, x, h0, h, U, W, dh_last)


def _hidden_backward(dh_out, x, h0, h, U, W, dh_last=None):
    """:func:`hidden_backward` without the checks (internal callers validated already)."""
    N, T, H = h.shape
    h_tm = h.transpose(1, 0, 2)  # (T, N, H); free when h came from rnn_forward (time-major)
    g_tm = dh_out.transpose(1, 0, 2)  # (T, N, H) view; each g_tm[t] is read once
    da = np.empty((T, N, H), dtype=np.result_type(h, dh_out))  # gradient at each a^(t)
    dtanh = 1.0 - h_tm**2  # (T, N, H): tanh'(a) = 1 - h^2, for every step at once
    dh = np.empty((N, H), dtype=da.dtype)
    dh_next = np.zeros((N, H), dtype=da.dtype) if dh_last is None else dh_last
    W = np.ascontiguousarray(W)
    for t in range(T - 1, -1, -1):
        np.add(g_tm[t], dh_next, out=dh)  # both paths into h^(t): its output and h^(t+1)
        np.multiply(dh, dtanh[t], out=da[t])
        dh_next = da[t] @ W  # (N, H) @ (H, H): rows times W, i.e. W^T times columns
    da2 = da.reshape(T * N, H)  # all steps at once, as one big batch (time-major rows)
    x_tm = x.transpose(1, 0, 2).reshape(T * N, -1)  # (T*N, D), same row order as da2
    # h^(t-1) for every step without building a shifted copy: h0 for t = 1, h_tm[:-1] after
    dW = da2[N:].T @ h_tm[:-1].reshape((T - 1) * N, H) + da[0].T @ h0
    return {
        "U": da2.T @ x_tm,  # (H, T*N) @ (T*N, D)
        "W": dW,  # (H, H)
        "b": da2.sum(axis=0),
        "h0": dh_next,
        "x": (da @ U).transpose(1, 0, 2),  # (T, N, D) -> (N, T, D)
    }


def rnn_backward(do, cache: RNNCache, params, dh_last=None) -> dict:
    """BPTT for :func:`~companion.scratch.forward.rnn_forward`.

    Parameters
    ----------
    do : (N, T, K), :math:`\\nabla_{o^{(t)}} L` at every step (from
        :func:`~companion.scratch.forward.sequence_nll`).
    cache : the :class:`~companion.scratch.forward.RNNCache` of the forward pass.
    params : the same parameter dict the forward pass used.
    dh_last : (N, H), optional gradient arriving at the last state from later steps.

    Returns
    -------
    grads : dict with ``U``, ``W``, ``V``, ``b``, ``c`` (each the shape of its
        parameter) and ``h0`` (N, H).
    """
    dims = check_params(params)
    _check_cache(cache, dims)
    do = as_float_array("do", do)
    check_shape("do", do, ("N", "T", "K"), dims,
                hint="do is the gradient of the loss w.r.t. the logits o, (N, T, K).")
    N, T, K = do.shape
    if dh_last is not None:
        dh_last = as_float_array("dh_last", dh_last)
        check_shape("dh_last", dh_last, ("N", "H"), dims)
    V = params["V"]
    h = cache.h
    H = h.shape[-1]
    do_tm = do.transpose(1, 0, 2).reshape(T * N, K)  # (T*N, K), time-major rows like h's memory
    dh_out = (do_tm @ V).reshape(T, N, H).transpose(1, 0, 2)  # (N, T, H) view, time-major memory
    grads = _hidden_backward(dh_out, cache.x, cache.h0, h, params["U"], params["W"], dh_last)
    grads.pop("x")
    grads["V"] = do_tm.T @ h.transpose(1, 0, 2).reshape(T * N, H)  # (K, T*N) @ (T*N, H)
    grads["c"] = do.sum(axis=(0, 1))
    return {k: grads[k] for k in ("U", "W", "V", "b", "c", "h0")}


def _check_cache(cache, dims):
    """The cache must come from rnn_forward with parameters of the shapes in ``dims``."""
    if not isinstance(cache, RNNCache):
        raise TypeError(
            f"cache must be the RNNCache returned by rnn_forward; got {type(cache).__name__}."
        )
    hint = ("The cache and params must come from the same rnn_forward call: "
            "the parameter shapes differ from the ones the forward pass used.")
    check_shape("cache.x", cache.x, ("N", "T", "D"), dims, hint=hint)
    check_nonempty("cache.x", cache.x, ("N", "T"), hint="An RNN needs at least one step.")
    check_shape("cache.h0", cache.h0, ("N", "H"), dims, hint=hint)
    check_shape("cache.h", cache.h, ("N", "T", "H"), dims, hint=hint)
    check_shape("cache.o", cache.o, ("N", "T", "K"), dims, hint=hint)


def rnn_loss_and_grads(params, x, y, mask=None, h0=None):
    """Forward, loss and BPTT in one call: what a training step or a gradient check needs.

    Parameters
    ----------
    params : dict ``U, W, V, b, c``.
    x : (N, T, D).
    y : (N, T) integer targets.
    mask : (N, T) 0/1, optional.
    h0 : (N, H), optional.

    Returns
    -------
    loss : float (summed over time, averaged over the batch).
    grads : dict ``U, W, V, b, c, h0``.
    h_last : (N, H), the final hidden state, to carry into the next chunk.
    """
    y = np.asarray(y)
    _check_sequence_inputs(x, params, h0, y_shape=y.shape)  # catches time-first x early
    o, cache = rnn_forward(x, params, h0)
    loss, do = sequence_nll(o, y, mask)
    grads = rnn_backward(do, cache, params)
    return loss, grads, cache.h[:, -1]


def truncated_bptt(params, x, y, k: int, h0=None, mask=None):
    """Truncated BPTT: split the sequence into chunks of ``k`` steps, carry the state.

    The hidden state flows forward across chunk boundaries (chunk ``j`` starts from
    the last state of chunk ``j - 1``), but gradients stop there: each chunk's
    gradient treats its initial state as a constant, exactly like ``h.detach()``
    in torch. Memory is then O(k) instead of O(T).

    Parameters
    ----------
    params : dict ``U, W, V, b, c``.
    x : (N, T, D).
    y : (N, T) integer targets.
    k : int >= 1, the chunk length (the last chunk may be shorter).
    h0 : (N, H), optional.
    mask : (N, T) of 0/1, optional.

    Bad arguments raise at the call, before the first chunk is computed.

    Returns
    -------
    iterator
        ``(loss, grads, h_last)`` for each chunk in order, as from
        :func:`rnn_loss_and_grads`. Apply an update between chunks if training; the
        next chunk reads ``params`` when it runs.
    """
    k = check_positive_int("k", k)
    y = np.asarray(y)
    x, h0, dims = _check_sequence_inputs(x, params, h0, y_shape=y.shape)
    m = None if mask is None else _check_mask(mask, dims, np.result_type(x, params["W"]))
    return _chunks(params, x, y, k, h0, m, dims["T"])  # errors above are raised at the call


def _chunks(params, x, y, k, h, mask, T):
    for start in range(0, T, k):
        sl = slice(start, start + k)
        m = None if mask is None else mask[:, sl]
        loss, grads, h_last = rnn_loss_and_grads(params, x[:, sl], y[:, sl], m, h)
        h = h_last.copy()  # carried forward as a value: the "detach"
        yield loss, grads, h
