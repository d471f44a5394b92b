"""Initialising the parameters of an RNN: the 1/sqrt(n) rule.

A pre-activation is a sum of ``n`` terms, ``a_i = sum_j M_ij v_j``. If the ``v_j`` have
unit variance and the weights are independent with variance ``s^2``, then
``Var(a_i) = n s^2``. Choosing ``s = 1/sqrt(n)`` with ``n`` the fan-in (the number of
columns of the (out, in) matrix) keeps ``Var(a_i)`` near 1 whatever the layer's width
(LeCun et al., 1998; Glorot & Bengio, 2010): ``tanh`` then works in its responsive
range instead of saturating at +-1, and the logits start near zero, so the first
predictions are close to uniform and the initial loss is close to ``T log K``.

For the recurrent matrix the same rule also sets the scale of ``W``'s eigenvalues: a
random (H, H) matrix with entries of variance ``g^2 / H`` has spectral radius close to
``g`` (the circular law), so ``gain`` below 1 makes the state forget, above 1 it makes
the linearised dynamics expand. Chapter 5 takes this up.
"""

from __future__ import annotations

import numpy as np

from companion.checks import check_positive_int, check_real, check_rng

__all__ = ["fan_in_normal", "init_rnn_params", "random_rnn_problem"]


def _check_gain(gain, name="gain"):
    hint = "1.0 is the 1/sqrt(n) rule." if "gain" in name else ""
    return check_real(name, gain, low=0, low_open=True, hint=hint)


def fan_in_normal(rows: int, cols: int, rng, *, gain: float = 1.0) -> np.ndarray:
    """A (rows, cols) matrix with i.i.d. entries N(0, gain^2 / cols): the 1/sqrt(n) rule.

    ``cols`` is the fan-in because matrices are stored (out, in).
    """
    rows = check_positive_int("rows", rows)
    cols = check_positive_int("cols", cols)
    check_rng("rng", rng)
    gain = _check_gain(gain)
    return rng.normal(0.0, gain / np.sqrt(cols), size=(rows, cols))


def init_rnn_params(D: int, H: int, K: int, rng, *, gain: float = 1.0,
                    recurrent_gain: float | None = None) -> dict:
    """Parameters ``U`` (H, D), ``W`` (H, H), ``V`` (K, H), ``b`` (H,), ``c`` (K,) in float64.

    Every weight matrix uses :func:`fan_in_normal` (standard deviation ``gain / sqrt(fan_in)``);
    ``W`` may use its own ``recurrent_gain`` (default: ``gain``). Biases start at zero.

    Parameters
    ----------
    D, H, K : input, hidden and output sizes (ints >= 1).
    rng : numpy.random.Generator.
    gain, recurrent_gain : positive numbers.
    """
    D = check_positive_int("D", D)
    H = check_positive_int("H", H)
    K = check_positive_int("K", K)
    check_rng("rng", rng)
    gain = _check_gain(gain)
    rgain = gain if recurrent_gain is None else _check_gain(recurrent_gain, "recurrent_gain")
    return {
        "U": fan_in_normal(H, D, rng, gain=gain),
        "W": fan_in_normal(H, H, rng, gain=rgain),
        "V": fan_in_normal(K, H, rng, gain=gain),
        "b": np.zeros(H),
        "c": np.zeros(K),
    }


def random_rnn_problem(N: int, T: int, D: int, H: int, K: int, rng, *,
                       bias_scale: float = 0.1, h0_scale: float = 0.5):
    """A small random problem for checking a forward or backward pass.

    Parameters from :func:`init_rnn_params`, but with *non-zero* biases (a zero bias
    hides bugs in its gradient), random inputs, integer targets and a random initial
    state (so the gradient of ``h0`` is not trivially zero).

    Returns
    -------
    params : dict with U (H, D), W (H, H), V (K, H), b (H,), c (K,).
    x : (N, T, D) floats.
    y : (N, T) ints in [0, K).
    h0 : (N, H) floats.
    """
    N = check_positive_int("N", N)
    T = check_positive_int("T", T)
    bias_scale = _check_gain(bias_scale, "bias_scale")
    h0_scale = _check_gain(h0_scale, "h0_scale")
    params = init_rnn_params(D, H, K, rng)
    params["b"] = rng.normal(0, bias_scale, H)
    params["c"] = rng.normal(0, bias_scale, K)
    x = rng.normal(size=(N, T, D))
    y = rng.integers(0, K, size=(N, T))
    h0 = rng.normal(0, h0_scale, (N, H))
    return params, x, y, h0
