"""The LSTM in NumPy: forward pass with a cache, and its backward pass derived by hand.

Chapter 6 derives the backward pass of the LSTM and checks it against torch's autograd
and finite differences. Symbols follow the book (torch's names in brackets)::

    a^(t)  = x^(t) U^T + b_ih + h^(t-1) W^T + b_hh      (N, 4H), blocks in torch's order
    i = sigmoid(a_i)    input gate                       [i]
    f = sigmoid(a_f)    forget gate                      [f]
    s~ = tanh(a_s~)     candidate cell content           [g]
    q = sigmoid(a_q)    output gate                      [o]
    s^(t) = f * s^(t-1) + i * s~                         cell state [c]
    h^(t) = q * tanh(s^(t))

Weights use torch's layout (``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias_ih``,
``bias_hh`` (4H,), gate blocks i, f, g, o), so the parameters of a ``torch.nn.LSTM``
(``weight_ih_l0`` ...) or of :class:`companion.nn.cells.LSTMCell` can be used directly.
Inputs are batch-first: ``x`` is (N, T, D); states are (N, H).

The backward pass, one step, given ``dh`` (the gradient reaching ``h^(t)`` from the loss
at step t and from step t+1) and ``ds`` (the gradient reaching ``s^(t)`` from step t+1)::

    dq  = dh * tanh(s)                 da_q  = dq * q (1 - q)
    ds += dh * q * (1 - tanh(s)^2)     (the cell state's own path, plus the one through h)
    df  = ds * s_prev                  da_f  = df * f (1 - f)
    di  = ds * s~                      da_i  = di * i (1 - i)
    ds~ = ds * i                       da_s~ = ds~ * (1 - s~^2)
    ds_prev = ds * f                   (the constant error carousel: no W, no tanh')
    dW_ih += da^T x,  dW_hh += da^T h_prev,  db_ih = db_hh += sum over the batch of da
    dx = da W_ih,  dh_prev = da W_hh   (+ the loss's own gradient at step t-1)
"""

from __future__ import annotations

import numpy as np

from companion.checks import as_float_array, check_shape

__all__ = ["lstm_forward", "lstm_backward", "sigmoid"]

_PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid(a):
    """The logistic function ``1 / (1 + exp(-a))``, without overflow warnings for large ``-a``."""
    a = np.asarray(a, dtype=float)
    out = np.empty_like(a)
    pos = a >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-a[pos]))
    e = np.exp(a[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _check_params(weight_ih, weight_hh, bias_ih, bias_hh):
    Wih = as_float_array("weight_ih", weight_ih)
    Whh = as_float_array("weight_hh", weight_hh)
    bih = as_float_array("bias_ih", bias_ih)
    bhh = as_float_array("bias_hh", bias_hh)
    if Whh.ndim != 2 or Whh.shape[0] != 4 * Whh.shape[1]:
        raise ValueError(
            f"weight_hh must be (4H, H) with the four gate blocks i, f, g, o stacked "
            f"(torch's layout); got {Whh.shape}. A GRU's weight_hh is (3H, H)."
        )
    dims = {"G": Whh.shape[0], "H": Whh.shape[1]}
    check_shape("weight_ih", Wih, ("G", "D"), dims, hint="torch's layout: (4H, D).")
    check_shape("bias_ih", bih, ("G",), dims)
    check_shape("bias_hh", bhh, ("G",), dims)
    return (Wih, Whh, bih, bhh), dims


def lstm_forward(x, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, s0=None):
    """Run an LSTM over a batch-first sequence, keeping what the backward pass needs.

    Parameters
    ----------
    x : (N, T, D) floats, batch-first.
    weight_ih : (4H, D).
    weight_hh : (4H, H).
    bias_ih, bias_hh : (4H,). torch's layout.
    h0, s0 : optional (N, H) initial hidden and cell states (zeros by default).

    Returns
    -------
    hs : ndarray (N, T, H); ``hs[:, t-1]`` is :math:`h^{(t)}`.
    (h, s) : the final states :math:`h^{(T)}, s^{(T)}`, each (N, H).
    cache : dict for :func:`lstm_backward`.

    Examples
    --------
    >>> H, D = 2, 1
    >>> w = np.zeros((4 * H, D)), np.zeros((4 * H, H)), np.zeros(4 * H), np.zeros(4 * H)
    >>> hs, (h, s), _ = lstm_forward(np.ones((1, 3, D)), *w)
    >>> hs.shape, float(abs(h).max())      # all pre-activations 0: candidate tanh(0) = 0
    ((1, 3, 2), 0.0)
    """
    params, dims = _check_params(weight_ih, weight_hh, bias_ih, bias_hh)
    Wih, Whh, bih, bhh = params
    x = as_float_array("x", x)
    check_shape("x", x, ("N", "T", "D"), dims, layout="batch-first")
    N, T, _ = x.shape
    H = dims["H"]
    if T == 0:
        raise ValueError("x must have at least one time step; got T=0.")
    h = np.zeros((N, H)) if h0 is None else as_float_array("h0", h0)
    s = np.zeros((N, H)) if s0 is None else as_float_array("s0", s0)
    check_shape("h0", h, ("N", "H"), dims,
                hint="One initial state per sequence; time-first x would put T where N is.")
    check_shape("s0", s, ("N", "H"), dims, hint="The cell state has the shape of h0.")
    # the input term of every step in one product: (N, T, D) @ (D, 4H) -> (N, T, 4H)
    ax = x @ Wih.T + bih + bhh
    hs = np.empty((N, T, H))
    steps = []
    for t in range(T):
        a = ax[:, t] + h @ Whh.T  # (N, 4H)
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H:2 * H])
        g = np.tanh(a[:, 2 * H:3 * H])  # the candidate s~
        q = sigmoid(a[:, 3 * H:])
        s_prev, h_prev = s, h
        s = f * s_prev + i * g
        tanh_s = np.tanh(s)
        h = q * tanh_s
        hs[:, t] = h
        steps.append((h_prev, s_prev, i, f, g, q, tanh_s))
    cache = {"x": x, "params": params, "steps": steps, "H": H}
    return hs, (h.copy(), s.copy()), cache


def lstm_backward(dhs, cache, dh_last=None, ds_last=None):
    """Back-propagate through :func:`lstm_forward`, by the equations in the module docstring.

    Parameters
    ----------
    dhs : (N, T, H), the gradient of the loss with respect to every output ``hs``
        (zeros where the loss does not look, e.g. all but the last step).
    cache : from :func:`lstm_forward`.
    dh_last, ds_last : optional (N, H), gradients with respect to the returned final
        states (h, s) beyond those in ``dhs``, e.g. from a later chunk of the sequence.

    Returns
    -------
    grads : dict with ``x`` (N, T, D), ``h0``, ``s0`` (N, H), and ``weight_ih``,
        ``weight_hh``, ``bias_ih``, ``bias_hh`` in the parameters' shapes.
    """
    if not (isinstance(cache, dict) and {"x", "params", "steps", "H"} <= set(cache)):
        raise TypeError("cache must be the third value returned by lstm_forward.")
    x = cache["x"]
    Wih, Whh, bih, bhh = cache["params"]
    N, T, D = x.shape
    H = cache["H"]
    dims = {"N": N, "T": T, "H": H}
    dhs = as_float_array("dhs", dhs)
    check_shape("dhs", dhs, ("N", "T", "H"), dims, layout="batch-first",
                hint="dhs has the shape of the outputs hs returned by lstm_forward.")
    dh = np.zeros((N, H)) if dh_last is None else as_float_array("dh_last", dh_last).copy()
    ds = np.zeros((N, H)) if ds_last is None else as_float_array("ds_last", ds_last).copy()
    check_shape("dh_last", dh, ("N", "H"), dims)
    check_shape("ds_last", ds, ("N", "H"), dims)
    dWih, dWhh = np.zeros_like(Wih), np.zeros_like(Whh)
    db = np.zeros(4 * H)
    dx = np.empty_like(x)
    for t in range(T - 1, -1, -1):
        h_prev, s_prev, i, f, g, q, tanh_s = cache["steps"][t]
        dh = dh + dhs[:, t]  # from the loss at step t and from step t+1
        da_q = dh * tanh_s * q * (1 - q)
        ds = ds + dh * q * (1 - tanh_s**2)
        da_f = ds * s_prev * f * (1 - f)
        da_i = ds * g * i * (1 - i)
        da_g = ds * i * (1 - g**2)
        da = np.concatenate([da_i, da_f, da_g, da_q], axis=1)  # (N, 4H), torch's order
        dWih += da.T @ x[:, t]
        dWhh += da.T @ h_prev
        db += da.sum(axis=0)
        dx[:, t] = da @ Wih
        dh = da @ Whh  # to h^(t-1)
        ds = ds * f  # to s^(t-1): the carousel
    return {"x": dx, "h0": dh, "s0": ds, "weight_ih": dWih, "weight_hh": dWhh,
            "bias_ih": db, "bias_hh": db.copy()}
