"""Gradient checking: compare an analytic gradient with centred finite differences.

Point it at your own code. Given a function ``loss_fn(params) -> float`` and the
gradients your backward pass computed, :func:`check_gradients` perturbs every entry
(or a random sample of entries) of every parameter by ``+eps`` and ``-eps`` and
compares

.. math:: \\frac{L(\\theta + \\epsilon e_i) - L(\\theta - \\epsilon e_i)}{2\\epsilon}
          = \\frac{\\partial L}{\\partial \\theta_i} + O(\\epsilon^2)

with what you computed. Do this in float64: in float32 the rounding error of the
difference (about ``1e-7 / eps``) swamps everything.

The error reported for each parameter is the *relative* error of the whole array,
:math:`\\|g_a - g_n\\| / (\\|g_a\\| + \\|g_n\\|)`: 0 is perfect, 1 means unrelated,
and a correct float64 backward pass lands around ``1e-9`` or below.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from companion.checks import as_float_array, check_callable

__all__ = ["check_gradients", "numerical_gradient", "relative_error", "gradcheck_report"]


def relative_error(a, b) -> float:
    """:math:`\\|a - b\\| / (\\|a\\| + \\|b\\|)`, and 0.0 when both are exactly zero."""
    a = as_float_array("a", a, finite=False)
    b = as_float_array("b", b, finite=False)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape; got {a.shape} and {b.shape}. "
            f"Is the gradient of one parameter being compared with another's?"
        )
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f, array: np.ndarray, *, eps: float = 1e-6, indices=None) -> np.ndarray:
    """Centred finite differences of ``f()`` with respect to ``array``, perturbed in place.

    Parameters
    ----------
    f : callable with no argument returning a float; it must read ``array``.
    array : float64 ndarray, modified temporarily and restored exactly.
    eps : step size; 1e-6 balances truncation (eps^2) and rounding (1e-16 / eps).
    indices : optional iterable of index tuples; only those entries are computed
        (others stay NaN in the result).

    Returns
    -------
    ndarray with the shape of ``array``.
    """
    check_callable("f", f, "f() -> float")
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"array must be a NumPy array (perturbed in place); got {type(array).__name__}."
        )
    if array.dtype != np.float64:
        raise TypeError(
            f"array must be float64 for a meaningful finite-difference check; got {array.dtype}. "
            f"Use params = {{k: v.astype(np.float64) for k, v in params.items()}}."
        )
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1), typically 1e-6; got {eps!r}.")
    grad = np.full(array.shape, np.nan)
    it = np.ndindex(array.shape) if indices is None else indices
    for idx in it:
        old = array[idx]
        array[idx] = old + eps
        plus = float(f())
        array[idx] = old - eps
        minus = float(f())
        array[idx] = old  # restore the exact value
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(loss_fn, params, grads, *, eps: float = 1e-6, max_entries: int | None = None,
                    rng=None) -> dict:
    """Relative error between analytic ``grads`` and finite differences, per parameter.

    Parameters
    ----------
    loss_fn : callable ``loss_fn(params) -> float`` (a loss only, no gradients).
    params : dict name -> float64 array, perturbed in place and restored.
    grads : dict name -> array, your analytic gradients, for (a subset of) the same names;
        only the names in ``grads`` are checked.
    eps : finite-difference step.
    max_entries : check at most this many randomly chosen entries per parameter
        (all if None); with ``rng`` (a NumPy Generator) the choice is reproducible.

    Returns
    -------
    dict name -> relative error (see :func:`relative_error`), over the checked entries.

    Examples
    --------
    >>> import numpy as np
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> errs = check_gradients(lambda q: float(np.sum(q["w"] ** 3)), p, {"w": 3 * p["w"] ** 2})
    >>> errs["w"] < 1e-8
    True
    """
    check_callable("loss_fn", loss_fn, "loss_fn(params) -> float")
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        raise TypeError("params and grads must both be dicts mapping names to arrays.")
    unknown = [k for k in grads if k not in params]
    if unknown:
        raise ValueError(
            f"grads has names {unknown} that params lacks; params has {sorted(params)}."
        )
    rng = np.random.default_rng(0) if rng is None else rng
    errors = {}
    for name, g in grads.items():
        g = as_float_array(f"grads['{name}']", g, finite=False)
        p = params[name]
        if g.shape != np.shape(p):
            raise ValueError(
                f"grads['{name}'] must have the shape of params['{name}'], {np.shape(p)}; "
                f"got {g.shape}. A gradient always has the shape of its parameter."
            )
        if max_entries is None or max_entries >= p.size:
            idx = list(np.ndindex(p.shape))
        else:
            flat = rng.choice(p.size, size=max_entries, replace=False)
            idx = [np.unravel_index(i, p.shape) for i in np.sort(flat)]
        num = numerical_gradient(lambda: loss_fn(params), p, eps=eps, indices=idx)
        rows = tuple(np.array(ix) for ix in zip(*idx))  # advanced index of the checked entries
        errors[name] = relative_error(g[rows], num[rows])
    return errors


def gradcheck_report(errors: Mapping, tol: float = 1e-7) -> str:
    """One line per parameter, stable across machines: ``dW  ok  (relative error < 1e-07)``.

    The exact error varies in its last digits with the BLAS build, so only the
    comparison with ``tol`` is printed.
    """
    lines = []
    for name, err in errors.items():
        verdict = "ok  " if err < tol else "FAIL"
        sign = "<" if err < tol else ">="
        lines.append(f"d{name:<3} {verdict} (relative error {sign} {tol:.0e})")
    return "\n".join(lines)
