"""Recurrences in NumPy: generic dynamical systems and the RNN hidden-state update.

Chapter 1 (Recurrence) and chapter 2 (Unfolding) use this module. The two central
objects are

* a transition function ``f(s_prev, x_t) -> s_t`` applied again and again
  (:func:`unroll`): the *recurrent* view, one function shared by every step;
* the unrolled function ``g^{(t)}(x^{(t)}, ..., x^{(1)}; s^{(0)})`` that maps a whole
  prefix to the state (:func:`unrolled_function`): the *unfolded* view, a
  different function for every ``t``.

Indexing follows the book: ``states[t]`` is :math:`s^{(t)}` and ``states[0]`` is
the initial state, while inputs are stored 0-based, ``xs[t-1]`` is :math:`x^{(t)}`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from companion.checks import (
    as_float_array,
    check_batch_first,
    check_callable,
    check_nonempty,
    check_positive_int,
    check_shape,
)

__all__ = [
    "unroll",
    "unrolled_function",
    "linear_recurrence_closed_form",
    "rnn_step",
    "rnn_hidden_states",
]


def unroll(
    f: Callable[..., np.ndarray],
    s0,
    xs=None,
    *,
    steps: int | None = None,
) -> np.ndarray:
    """Iterate a dynamical system and return every state, initial state included.

    Without an input (``xs is None``) the system is autonomous,
    :math:`s^{(t)} = f(s^{(t-1)})`, run for ``steps`` steps. With an input sequence it
    is driven, :math:`s^{(t)} = f(s^{(t-1)}, x^{(t)})`, for ``len(xs)`` steps.
    Parameters :math:`\\theta` live inside ``f`` (a closure or ``functools.partial``),
    which makes the sharing explicit: the *same* ``f`` is called at every step.

    Parameters
    ----------
    f : callable
        ``f(s_prev)`` (autonomous) or ``f(s_prev, x_t)`` (driven); returns an array
        with the shape of ``s_prev``.
    s0 : array_like of floats, shape (S,) or any shape
        The initial state :math:`s^{(0)}`.
    xs : array_like of floats, shape (T, ...), optional
        One input sequence, time along the first axis (a single sequence has no
        batch axis; for batches use :func:`rnn_hidden_states`).
    steps : int, optional
        Number of steps for an autonomous system. Must be omitted when ``xs`` is given.

    Returns
    -------
    states : ndarray, shape (T + 1, *s0.shape)
        ``states[t]`` is :math:`s^{(t)}`; ``states[0]`` is ``s0``.

    Examples
    --------
    A leaky accumulator, :math:`s^{(t)} = 0.5\\,s^{(t-1)} + x^{(t)}`:

    >>> unroll(lambda s, x: 0.5 * s + x, [0.0], xs=[[1.0], [1.0], [1.0]])[:, 0].tolist()
    [0.0, 1.0, 1.5, 1.75]
    """
    check_callable("f", f, "f(s_prev) or f(s_prev, x_t)")
    s = as_float_array("s0", s0)
    if xs is None:
        if steps is None:
            raise ValueError(
                "steps must be given for an autonomous system (xs is None); "
                "pass steps=T, or pass an input sequence xs of shape (T, ...)."
            )
        T = check_positive_int("steps", steps, minimum=0)
        inputs = None
    else:
        if steps is not None:
            raise ValueError(
                "pass either xs (a driven system runs len(xs) steps) or steps "
                "(an autonomous system), not both."
            )
        inputs = as_float_array("xs", xs)
        if inputs.ndim == 0:
            raise ValueError(
                f"xs must have a time axis first, shape (T, ...); got a scalar {inputs!r}."
            )
        T = inputs.shape[0]
    states = np.empty((T + 1, *s.shape), dtype=np.result_type(s, np.float64))
    states[0] = s
    for t in range(1, T + 1):
        prev = states[t - 1].copy()  # f may modify its argument; the history must not change
        nxt = f(prev) if inputs is None else f(prev, inputs[t - 1])
        nxt = np.asarray(nxt)
        if nxt.shape != s.shape:
            raise ValueError(
                f"f must return a state of the same shape as s0, {s.shape}; "
                f"at step t={t} it returned shape {nxt.shape}."
            )
        states[t] = nxt  # a copy: later steps cannot alias earlier states
    return states


def unrolled_function(f: Callable[..., np.ndarray], t: int) -> Callable[..., np.ndarray]:
    """Build :math:`g^{(t)}`, the unfolded map from a length-``t`` prefix to :math:`s^{(t)}`.

    Where :func:`unroll` loops, this function *composes*: it returns a new Python
    function ``g(s0, xs)`` equal to ``f(f(...f(s0, xs[0])..., xs[t-2]), xs[t-1])``,
    written out as ``t`` nested calls. Each ``t`` gives a different function with a
    different number of arguments, which is exactly why one shared ``f`` is the
    better thing to learn.

    Parameters
    ----------
    f : callable ``f(s_prev, x_t)``.
    t : int >= 0, the length of the prefix ``g`` accepts.

    Returns
    -------
    g : callable ``g(s0, xs)`` with ``xs`` of shape (t, ...).

    Examples
    --------
    >>> g3 = unrolled_function(lambda s, x: 2 * s + x, 3)
    >>> float(g3(1.0, [1.0, 0.0, 1.0]))   # ((2*1 + 1)*2 + 0)*2 + 1
    13.0
    """
    check_callable("f", f, "f(s_prev, x_t)")
    t = check_positive_int("t", t, minimum=0)

    def g0(s0, xs):
        return np.asarray(s0, dtype=np.float64)

    g = g0
    for k in range(1, t + 1):
        g = _compose_once(f, g, k)

    def g_t(s0, xs):
        xs = as_float_array("xs", xs)
        if xs.shape[:1] != (t,):
            raise ValueError(
                f"xs must hold exactly t={t} inputs along its first axis for g^({t}); "
                f"got shape {xs.shape}. Build unrolled_function(f, {len(xs)}) for this length."
            )
        return g(as_float_array("s0", s0), xs)

    g_t.__name__ = f"g_{t}"
    return g_t


def _compose_once(f, g_prev, k):
    """Return g_k(s0, xs) = f(g_{k-1}(s0, xs), xs[k-1]) as a new closure."""

    def g_k(s0, xs):
        return f(g_prev(s0, xs), xs[k - 1])

    return g_k


def linear_recurrence_closed_form(W, U, xs, h0) -> np.ndarray:
    """Closed form of the linear recurrence :math:`h^{(t)} = W h^{(t-1)} + U x^{(t)}`.

    Unfolding gives :math:`h^{(t)} = W^{t} h^{(0)} + \\sum_{k=1}^{t} W^{t-k} U x^{(k)}`:
    each input enters once, multiplied by a power of ``W`` that grows with its age.
    This is computed here with explicit matrix powers (no recurrence), so that the
    book can check the loop against the formula.

    Parameters
    ----------
    W : (H, H) floats.
    U : (H, D) floats.
    xs : (T, D) floats.
    h0 : (H,) floats.

    Returns
    -------
    hs : ndarray, shape (T + 1, H); ``hs[t]`` is :math:`h^{(t)}`.
    """
    W = as_float_array("W", W)
    U = as_float_array("U", U)
    xs = as_float_array("xs", xs)
    h0 = as_float_array("h0", h0)
    dims = check_shape("W", W, ("H", "H"))
    check_shape("U", U, ("H", "D"), dims)
    check_shape("xs", xs, ("T", "D"), dims)
    check_shape("h0", h0, ("H",), dims)
    T = xs.shape[0]
    hs = np.empty((T + 1, W.shape[0]))
    for t in range(T + 1):
        total = np.linalg.matrix_power(W, t) @ h0
        for k in range(1, t + 1):
            total = total + np.linalg.matrix_power(W, t - k) @ (U @ xs[k - 1])
        hs[t] = total
    return hs


def rnn_step(x_t, h_prev, U, W, b) -> np.ndarray:
    """One step of the vanilla RNN, batch-first rows.

    .. math:: a^{(t)} = b + W h^{(t-1)} + U x^{(t)}, \\qquad h^{(t)} = \\tanh(a^{(t)})

    In code, with one example per row: ``a = x_t @ U.T + h_prev @ W.T + b``.

    Parameters
    ----------
    x_t : (N, D) floats.
    h_prev : (N, H) floats.
    U : (H, D).
    W : (H, H).
    b : (H,).

    Returns
    -------
    h_t : ndarray, shape (N, H)
    """
    x_t = as_float_array("x_t", x_t)
    h_prev = as_float_array("h_prev", h_prev)
    dims = _check_rnn_params(U, W, b)
    check_shape("x_t", x_t, ("N", "D"), dims, hint="A single example? Use x_t[None, :].")
    check_shape("h_prev", h_prev, ("N", "H"), dims)
    return _rnn_step(x_t, h_prev, U, W, b)


def _rnn_step(x_t, h_prev, U, W, b):
    # (N, D) @ (D, H) + (N, H) @ (H, H) + (H,) -> (N, H)
    return np.tanh(x_t @ U.T + h_prev @ W.T + b)


def _hidden_states(x, h0, U, W, b):
    """The sequential part: T calls of the shared step (the input term is batched first).

    Returns (N, T, H) as a transposed view of a time-major (T, N, H) array, so that the
    state of one step, ``h[:, t]``, is a contiguous block: the loop writes it in place
    and the backward pass reads it without copies. Same arithmetic as :func:`_rnn_step`,
    with ``x_t @ U.T + b`` precomputed for every step. This is the package's one
    sequential RNN loop: :func:`rnn_hidden_states` and the forward pass of
    :mod:`companion.scratch.forward` (hence BPTT, the patterns and the char-LM) all run it.
    """
    N, T, _ = x.shape
    dtype = np.result_type(x, h0, U, W, b)
    h_tm = np.empty((T, N, W.shape[0]), dtype=dtype)  # time-major storage
    xU = x @ U.T + b  # (N, T, D) @ (D, H) -> (N, T, H): one large product for all steps
    W_T = np.ascontiguousarray(W.T)  # (H, H): a contiguous operand keeps small matmuls fast
    h_prev = h0
    for t in range(T):
        np.matmul(h_prev, W_T, out=h_tm[t])  # (N, H) @ (H, H)
        h_tm[t] += xU[:, t]
        np.tanh(h_tm[t], out=h_tm[t])
        h_prev = h_tm[t]
    return h_tm.transpose(1, 0, 2)  # (N, T, H) view, batch-first like everything public


def _check_rnn_params(U, W, b) -> dict:
    U = as_float_array("U", U)
    W = as_float_array("W", W)
    b = as_float_array("b", b)
    dims = check_shape("W", W, ("H", "H"))
    check_nonempty("W", W, ("H", "H"))
    check_shape("U", U, ("H", "D"), dims, hint="Weights are stored (out, in): U is (H, D).")
    check_shape("b", b, ("H",), dims)
    return dims


def rnn_hidden_states(x, U, W, b, h0=None) -> np.ndarray:
    """Run the vanilla RNN recurrence over a batch of sequences; return every state.

    The same ``U, W, b`` are used at every step, so one set of parameters serves
    sequences of any length ``T``.

    Parameters
    ----------
    x : (N, T, D) floats, batch-first.
    U : (H, D).
    W : (H, H).
    b : (H,).
    h0 : (N, H) floats, optional (zeros if omitted).

    Returns
    -------
    h : ndarray, shape (N, T, H); ``h[:, t-1]`` is :math:`h^{(t)}`.

    Examples
    --------
    >>> import numpy as np
    >>> U, W, b = np.eye(1), 0.5 * np.eye(1), np.zeros(1)
    >>> rnn_hidden_states(np.ones((1, 3, 1)), U, W, b)[0, :, 0].round(3).tolist()
    [0.762, 0.881, 0.894]
    """
    x = as_float_array("x", x)
    dims = _check_rnn_params(U, W, b)
    if h0 is not None:
        h0 = as_float_array("h0", h0)
    # x is blamed (with a time-first hint) only if swapping its first two axes fits h0
    check_batch_first("x", x, ("N", "T", "D"), dims, (
        ("h0", h0, ("N", "H"), "One initial state per sequence of x."),))
    check_nonempty("x", x, ("N", "T"), hint="An RNN needs at least one step to run.")
    N = x.shape[0]
    h0 = np.zeros((N, dims["H"])) if h0 is None else h0
    return _hidden_states(x, h0, U, W, b)
