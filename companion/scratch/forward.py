"""The forward pass of a vanilla RNN in NumPy, with the caches the backward pass needs.

Chapter 3 (Forward propagation). In Goodfellow et al. (2016, eq. 10.8-10.11), for
every time step :math:`t = 1, \\dots, \\tau`,

.. math::

    a^{(t)} = b + W h^{(t-1)} + U x^{(t)}, \\quad h^{(t)} = \\tanh(a^{(t)}), \\quad
    o^{(t)} = c + V h^{(t)}, \\quad \\hat y^{(t)} = \\mathrm{softmax}(o^{(t)}),

and the loss is the negative log-likelihood of the targets summed over time,
:math:`L = -\\sum_t \\log \\hat y^{(t)}_{y^{(t)}}` (averaged over the batch here).

Arrays are batch-first: ``x`` is (N, T, D), ``h`` is (N, T, H), ``o`` is (N, T, K),
and ``h[:, t-1]`` is :math:`h^{(t)}`. Parameters travel together in a dict
``params = {"U": (H, D), "W": (H, H), "V": (K, H), "b": (H,), "c": (K,)}``, weights
stored (out, in) as in the math and in torch. The hidden-state recursion is the one
of :mod:`companion.scratch.recurrence` (``_rnn_step``): one implementation per idea.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from companion.checks import (
    as_float_array,
    check_axis,
    check_batch_first,
    check_int_array,
    check_nonempty,
    check_shape,
)
from companion.scratch.recurrence import _check_rnn_params, _hidden_states, _rnn_step

__all__ = [
    "PARAM_NAMES",
    "RNNCache",
    "check_params",
    "log_softmax",
    "rnn_forward",
    "rnn_step_forward",
    "sequence_nll",
    "softmax",
]

#: The parameters of the vanilla RNN with an output layer, in the book's order.
PARAM_NAMES = ("U", "W", "V", "b", "c")

_PARAM_SPECS = {
    "U": ("H", "D"),
    "W": ("H", "H"),
    "V": ("K", "H"),
    "b": ("H",),
    "c": ("K",),
}


def check_params(params, names=PARAM_NAMES, specs=None) -> dict:
    """Validate a parameter dict and return the sizes it implies, e.g. ``{"H": 16, ...}``.

    Each entry must be a finite float array of the shape in ``specs`` (default: the
    vanilla RNN's, ``U`` (H, D), ``W`` (H, H), ``V`` (K, H), ``b`` (H,), ``c`` (K,)).
    """
    specs = _PARAM_SPECS if specs is None else specs
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict with keys {list(names)}; got {type(params).__name__}. "
            f"Build one with companion.scratch.init.init_rnn_params(D, H, K, rng)."
        )
    missing = [k for k in names if k not in params]
    if missing:
        raise ValueError(
            f"params is missing {missing}; expected keys {list(names)}, got {sorted(params)}."
        )
    shapes = ", ".join(f"{n} is ({', '.join(map(str, specs[n]))})" for n in names
                       if len(specs[n]) == 2)
    hint = f"Weights are stored (out, in), as in the math and in torch: {shapes}."
    dims: dict = {}
    # W first: it fixes H, so that the messages for U and V name the right size.
    for name in sorted(names, key=lambda k: k != "W"):
        arr = as_float_array(f"params['{name}']", params[name])
        check_shape(f"params['{name}']", arr, specs[name], dims, hint=hint)
        check_nonempty(f"params['{name}']", arr, specs[name])
    return dims


def softmax(o, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``: the maximum is subtracted first.

    ``exp`` of a logit above ~709 overflows in float64; shifting every logit by the
    row's maximum leaves the result unchanged (softmax is shift-invariant) and keeps
    every exponent at or below 0.
    """
    o = as_float_array("o", o)
    axis = _check_class_axis(o, axis)
    z = o - o.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(o, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax: ``z - log(sum(exp(z)))`` with ``z = o - max(o)``.

    Never computes ``log(softmax(o))``, which returns ``-inf`` as soon as one
    probability underflows to zero.
    """
    o = as_float_array("o", o)
    return _log_softmax(o, _check_class_axis(o, axis))


def _check_class_axis(o, axis):
    if o.ndim == 0:
        raise ValueError(
            f"o must be an array of logits with a class axis; got a scalar {o!r}. "
            f"Wrap it: np.array([o])."
        )
    axis = check_axis("axis", axis, o.ndim)
    if o.shape[axis] == 0:
        raise ValueError(
            f"o must have at least one class along axis {axis}; got shape {o.shape}. "
            f"A softmax over zero classes is undefined."
        )
    return axis


def _log_softmax(o, axis=-1):
    z = o - o.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def rnn_step_forward(x_t, h_prev, U, W, b):
    """One hidden-state step, returning the new state and what the backward pass needs.

    Parameters
    ----------
    x_t : (N, D) floats.
    h_prev : (N, H) floats.
    U : (H, D).
    W : (H, H).
    b : (H,).

    Returns
    -------
    h_t : (N, H), :math:`\\tanh(b + W h^{(t-1)} + U x^{(t)})` for every row.
    cache : tuple ``(x_t, h_prev, h_t)``; the tanh derivative is recovered from
        ``h_t`` as ``1 - h_t**2``, so ``a_t`` need not be stored.
    """
    x_t = as_float_array("x_t", x_t)
    h_prev = as_float_array("h_prev", h_prev)
    dims = _check_rnn_params(U, W, b)  # errors name U, W, b: the arguments as passed
    check_shape("x_t", x_t, ("N", "D"), dims, hint="A single example? Use x_t[None, :].")
    check_shape("h_prev", h_prev, ("N", "H"), dims)
    h_t = _rnn_step(x_t, h_prev, U, W, b)
    return h_t, (x_t, h_prev, h_t)


@dataclass
class RNNCache:
    """What the forward pass stores for the backward pass (all batch-first).

    ``x`` (N, T, D) inputs, ``h0`` (N, H) initial state, ``h`` (N, T, H) hidden
    states, ``o`` (N, T, K) logits. Nothing else is needed: ``a`` is never stored
    because :math:`\\tanh'(a) = 1 - h^2`.
    """

    x: np.ndarray
    h0: np.ndarray
    h: np.ndarray
    o: np.ndarray

    @property
    def nbytes(self) -> int:
        """The number of bytes the cache holds (the memory BPTT needs; it grows linearly in T)."""
        return int(self.x.nbytes + self.h0.nbytes + self.h.nbytes + self.o.nbytes)

    @property
    def h_prev(self) -> np.ndarray:
        """The state each step read, (N, T, H); ``h_prev[:, t-1]`` is :math:`h^{(t-1)}`."""
        return np.concatenate([self.h0[:, None], self.h[:, :-1]], axis=1)  # (N, T, H)


def _check_sequence_inputs(x, params, h0, y_shape=None):
    """Validate x (N, T, D) against params and, when given, h0 (N, H) and targets (N, T).

    The argument blamed is the one that is wrong: ``x`` (with a time-first hint) when
    swapping its first two axes would make ``h0`` and the targets fit, otherwise the
    one of ``h0`` or the targets that disagrees with ``x``. An empty batch or an empty
    sequence (T = 0) is refused.
    """
    dims = check_params(params)
    x = as_float_array("x", x)
    if h0 is not None:
        h0 = as_float_array("h0", h0)
    check_batch_first("x", x, ("N", "T", "D"), dims, (
        ("h0", h0, ("N", "H"), "One initial state per sequence; zeros are the usual choice."),
        ("y", None if y_shape is None else np.empty(y_shape, dtype=np.int8), ("N", "T"),
         "Targets are class ids, one per time step and sequence (not one-hot)."),
    ))
    check_nonempty("x", x, ("N", "T"), hint="An RNN needs at least one step to run.")
    if h0 is None:
        h0 = np.zeros((x.shape[0], dims["H"]), dtype=np.result_type(x, params["W"]))
    return x, h0, dims


def rnn_forward(x, params, h0=None):
    """Run the RNN over a batch of sequences: hidden states and output logits.

    Parameters
    ----------
    x : (N, T, D) floats, batch-first (one-hot characters, embeddings, measurements).
    params : dict with ``U`` (H, D), ``W`` (H, H), ``V`` (K, H), ``b`` (H,), ``c`` (K,).
    h0 : (N, H) floats, optional initial state (zeros if omitted).

    Returns
    -------
    o : (N, T, K) logits; ``softmax(o)`` is :math:`\\hat y`.
    cache : :class:`RNNCache` holding ``x``, ``h0``, ``h`` (N, T, H) and ``o``.
        The last state, to carry into the next chunk, is ``cache.h[:, -1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from companion.scratch.init import init_rnn_params
    >>> p = init_rnn_params(3, 4, 2, np.random.default_rng(0))
    >>> o, cache = rnn_forward(np.zeros((5, 7, 3)), p)
    >>> o.shape, cache.h.shape
    ((5, 7, 2), (5, 7, 4))
    """
    x, h0, _ = _check_sequence_inputs(x, params, h0)
    h = _hidden_states(x, h0, params["U"], params["W"], params["b"])
    o = _readout(h, params["V"], params["c"])
    return o, RNNCache(x=x, h0=h0, h=h, o=o)


def _readout(h, V, c):
    """o = h @ V.T + c for (N, T, H) states stored time-major; o keeps the same layout."""
    N, T, H = h.shape
    h_tm = h.transpose(1, 0, 2)  # (T, N, H), contiguous when h came from _hidden_states
    o_tm = h_tm.reshape(T * N, H) @ V.T + c  # (T*N, H) @ (H, K): one large product
    return o_tm.reshape(T, N, -1).transpose(1, 0, 2)  # (N, T, K) view


def sequence_nll(o, y, mask=None):
    """Negative log-likelihood summed over time, averaged over the batch, and its gradient.

    .. math:: L = \\frac{1}{N} \\sum_{n} \\sum_{t} m_{n,t}\\,
              \\bigl(-\\log \\hat y^{(t)}_{n, y_{n,t}}\\bigr)

    Parameters
    ----------
    o : (N, T, K) logits.
    y : (N, T) integer targets in ``[0, K)``. Padded positions must still hold a
        valid id (0 is the usual choice): the mask removes them from the loss.
    mask : (N, T) of 0/1 (bool or float), optional; 0 marks padding.

    Returns
    -------
    loss : float.
    do : (N, T, K), :math:`\\nabla_{o} L = (\\hat y - \\mathrm{onehot}(y))\\, m / N`.
    """
    o = as_float_array("o", o)
    y = np.asarray(y)
    dims = check_batch_first("o", o, ("N", "T", "K"), {}, (
        ("y", y, ("N", "T"), "Targets are class ids, one per time step (not one-hot)."),))
    check_nonempty("o", o, ("N", "T", "K"))
    y = check_int_array("y", y, low=0, high=dims["K"])
    m = _check_mask(mask, dims, o.dtype)
    logp = _log_softmax(o)  # (N, T, K)
    N = dims["N"]
    picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]  # (N, T)
    loss = float(-(picked * m).sum() / N)
    do = np.exp(logp)  # y_hat, (N, T, K)
    np.put_along_axis(do, y[..., None], np.take_along_axis(do, y[..., None], -1) - 1.0, -1)
    do *= m[..., None] / N
    return loss, do


def _check_mask(mask, dims, dtype):
    if mask is None:
        return np.ones((dims["N"], dims["T"]), dtype=dtype)
    arr = np.asarray(mask)
    if arr.dtype.kind == "b":
        arr = arr.astype(dtype)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(dtype)
    else:
        arr = as_float_array("mask", arr)
    check_shape("mask", arr, ("N", "T"), dims, hint="One 0/1 entry per time step of each sequence.")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(
            "mask must hold only 0 (padding) and 1 (real step); got other values "
            f"{np.unique(arr[(arr != 0) & (arr != 1)])[:5]}."
        )
    return arr
