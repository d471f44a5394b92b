"""Two more design patterns of Goodfellow et al. (2016, section 10.2), forward and backward.

* **Output-to-hidden recurrence** (their fig. 10.4): the only recurrent connection runs
  from the previous *output* to the hidden units,

  .. math:: a^{(t)} = b + W o^{(t-1)} + U x^{(t)}, \\quad h^{(t)} = \\tanh(a^{(t)}),
            \\quad o^{(t)} = c + V h^{(t)},

  so here ``W`` is (H, K), not (H, H). The state passed on is only ``K`` numbers, the
  ones trained to predict the target, which is why this family is strictly less
  powerful than the hidden-to-hidden one; in exchange, with the true ``y^{(t-1)}``
  fed in place of ``o^{(t-1)}`` (teacher forcing, chapter 7), its time steps decouple.
* **Sequence-to-vector** (their fig. 10.5): the usual hidden-to-hidden recurrence
  reads the whole sequence and a single output :math:`o = c + V h^{(\\tau)}` is produced
  at the end, e.g. to classify the sequence.

Both reuse the hidden-state machinery of :mod:`companion.scratch.forward` and
:mod:`companion.scratch.bptt` where they can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.checks import (
    as_float_array,
    check_batch_first,
    check_int_array,
    check_nonempty,
    check_shape,
)
from companion.scratch.bptt import _hidden_backward
from companion.scratch.forward import _check_sequence_inputs, check_params, sequence_nll
from companion.scratch.recurrence import _hidden_states

__all__ = [
    "OUTPUT_RECURRENT_SPECS",
    "OutputRecurrentCache",
    "Seq2VecCache",
    "output_recurrent_backward",
    "output_recurrent_forward",
    "output_recurrent_loss_and_grads",
    "seq2vec_backward",
    "seq2vec_forward",
    "seq2vec_loss_and_grads",
]

#: The parameter shapes of the output-to-hidden network (note ``W`` is (H, K)).
OUTPUT_RECURRENT_SPECS = {"U": ("H", "D"), "W": ("H", "K"), "V": ("K", "H"),
                          "b": ("H",), "c": ("K",)}


@dataclass
class OutputRecurrentCache:
    """``x`` (N, T, D), ``o0`` (N, K), ``h`` (N, T, H), ``o`` (N, T, K)."""

    x: np.ndarray
    o0: np.ndarray
    h: np.ndarray
    o: np.ndarray


def _check_output_recurrent(params):
    return check_params(params, specs=OUTPUT_RECURRENT_SPECS)  # binds H, K (from W) and D


def output_recurrent_forward(x, params, o0=None):
    """Forward pass of the output-to-hidden network.

    Parameters
    ----------
    x : (N, T, D) floats, batch-first.
    params : dict ``U`` (H, D), ``W`` (H, K), ``V`` (K, H), ``b`` (H,), ``c`` (K,).
    o0 : (N, K), optional "previous output" before the first step (zeros if omitted).

    Returns
    -------
    o : (N, T, K) logits, and an :class:`OutputRecurrentCache`.
    """
    dims = _check_output_recurrent(params)
    x = as_float_array("x", x)
    if o0 is not None:
        o0 = as_float_array("o0", o0)
    check_batch_first("x", x, ("N", "T", "D"), dims, (
        ("o0", o0, ("N", "K"), "One previous output per sequence; zeros are the usual choice."),))
    check_nonempty("x", x, ("N", "T"), hint="An RNN needs at least one step to run.")
    N, T, _ = x.shape
    K, H = dims["K"], dims["H"]
    if o0 is None:
        o0 = np.zeros((N, K))
    U, W, V, b, c = (params[k] for k in ("U", "W", "V", "b", "c"))
    h = np.empty((N, T, H))
    o = np.empty((N, T, K))
    xU = x @ U.T + b  # (N, T, H)
    o_prev = o0
    for t in range(T):
        h[:, t] = np.tanh(xU[:, t] + o_prev @ W.T)  # (N, K) @ (K, H)
        o_prev = o[:, t] = h[:, t] @ V.T + c  # (N, H) @ (H, K)
    return o, OutputRecurrentCache(x=x, o0=o0, h=h, o=o)


def output_recurrent_backward(do, cache: OutputRecurrentCache, params) -> dict:
    """BPTT for :func:`output_recurrent_forward`: the gradient now flows back through ``o``.

    Returns a dict ``U, W, V, b, c, o0``.
    """
    dims = _check_output_recurrent(params)
    if not isinstance(cache, OutputRecurrentCache):
        raise TypeError(
            f"cache must come from output_recurrent_forward; got {type(cache).__name__}."
        )
    _check_cache_shapes(cache, dims, (("x", ("N", "T", "D")), ("o0", ("N", "K")),
                                      ("h", ("N", "T", "H")), ("o", ("N", "T", "K"))),
                        "output_recurrent_forward")
    do = as_float_array("do", do)
    check_shape("do", do, ("N", "T", "K"), dims, hint="do has the shape of the logits o.")
    U, W, V = params["U"], params["W"], params["V"]
    N, T, K = do.shape
    h, x = cache.h, cache.x
    da = np.empty_like(h)
    do_total = np.empty_like(do)
    do_next = np.zeros((N, K))
    for t in range(T - 1, -1, -1):
        do_total[:, t] = do[:, t] + do_next  # o^(t) feeds the loss and a^(t+1)
        da[:, t] = (do_total[:, t] @ V) * (1.0 - h[:, t] ** 2)
        do_next = da[:, t] @ W  # (N, H) @ (H, K)
    o_prev = np.concatenate([cache.o0[:, None], cache.o[:, :-1]], axis=1)  # (N, T, K)
    H = h.shape[-1]
    da2 = da.reshape(N * T, H)  # all steps as one batch
    dt2 = do_total.reshape(N * T, K)
    return {
        "U": da2.T @ x.reshape(N * T, -1),
        "W": da2.T @ o_prev.reshape(N * T, K),
        "V": dt2.T @ h.reshape(N * T, H),
        "b": da2.sum(axis=0),
        "c": dt2.sum(axis=0),
        "o0": do_next,
    }


def _check_cache_shapes(cache, dims, fields, producer):
    hint = (f"The cache and params must come from the same {producer} call: "
            "the parameter shapes differ from the ones the forward pass used.")
    for field, spec in fields:
        check_shape(f"cache.{field}", getattr(cache, field), spec, dims, hint=hint)


def output_recurrent_loss_and_grads(params, x, y, mask=None, o0=None):
    """Loss (NLL summed over time, mean over batch) and gradients ``U, W, V, b, c, o0``."""
    o, cache = output_recurrent_forward(x, params, o0)
    loss, do = sequence_nll(o, y, mask)
    return loss, output_recurrent_backward(do, cache, params)


@dataclass
class Seq2VecCache:
    """``x`` (N, T, D), ``h0`` (N, H), ``h`` (N, T, H), ``o`` (N, K)."""

    x: np.ndarray
    h0: np.ndarray
    h: np.ndarray
    o: np.ndarray


def seq2vec_forward(x, params, h0=None):
    """Read the whole sequence, then emit one output from the last state.

    Parameters
    ----------
    x : (N, T, D).
    params : dict ``U, W, V, b, c`` as for the vanilla RNN.
    h0 : (N, H), optional.

    Returns
    -------
    o : (N, K) logits, :math:`c + V h^{(\\tau)}`, and a :class:`Seq2VecCache`.
    """
    x, h0, _ = _check_sequence_inputs(x, params, h0)
    h = _hidden_states(x, h0, params["U"], params["W"], params["b"])
    o = h[:, -1] @ params["V"].T + params["c"]  # (N, H) @ (H, K)
    return o, Seq2VecCache(x=x, h0=h0, h=h, o=o)


def seq2vec_backward(do, cache: Seq2VecCache, params) -> dict:
    """BPTT with a gradient entering at the last step only. Returns ``U, W, V, b, c, h0``."""
    dims = check_params(params)
    if not isinstance(cache, Seq2VecCache):
        raise TypeError(f"cache must come from seq2vec_forward; got {type(cache).__name__}.")
    _check_cache_shapes(cache, dims, (("x", ("N", "T", "D")), ("h0", ("N", "H")),
                                      ("h", ("N", "T", "H")), ("o", ("N", "K"))),
                        "seq2vec_forward")
    do = as_float_array("do", do)
    check_shape("do", do, ("N", "K"), dims, hint="One gradient row per sequence, (N, K).")
    dh_out = np.zeros_like(cache.h)  # no output, so no direct gradient, before the end
    dh_out[:, -1] = do @ params["V"]
    grads = _hidden_backward(dh_out, cache.x, cache.h0, cache.h, params["U"], params["W"])
    return {"U": grads["U"], "W": grads["W"], "V": do.T @ cache.h[:, -1], "b": grads["b"],
            "c": do.sum(axis=0), "h0": grads["h0"]}


def seq2vec_loss_and_grads(params, x, y, h0=None):
    """Classification loss (mean NLL over the batch) and gradients; ``y`` is (N,) labels."""
    dims = check_params(params)
    y = np.asarray(y)
    x = as_float_array("x", x)
    check_batch_first("x", x, ("N", "T", "D"), dims, (
        ("y", y, ("N",), "One class label per sequence."),))
    o, cache = seq2vec_forward(x, params, h0)
    y = check_int_array("y", y, low=0, high=o.shape[1])
    loss, do = sequence_nll(o[:, None], y[:, None])  # a length-1 "sequence" per example
    return loss, seq2vec_backward(do[:, 0], cache, params)
