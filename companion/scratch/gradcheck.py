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

A check must be able to fail. A NaN or infinite entry in either gradient (a backward
pass that overflowed, a loss that returned NaN) gives a relative error of ``inf``,
never NaN: ``inf < tol`` is False, and ``max`` of a dict of errors is ``inf`` whatever
the order (``max([1e-9, nan])`` would be ``1e-9``, a silent pass).
:func:`gradcheck_report` prints such a parameter as ``FAIL``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from companion.checks import (
    as_float_array,
    check_callable,
    check_positive_int,
    check_real,
    check_rng,
)

__all__ = ["check_gradients", "numerical_gradient", "relative_error", "gradcheck_report"]


def relative_error(a, b) -> float:
    """:math:`\\|a - b\\| / (\\|a\\| + \\|b\\|)`, and 0.0 when both are exactly zero.

    Returns ``inf`` (a failure for any ``err < tol`` verdict) if ``a`` or ``b`` holds
    a NaN or an infinity.

    >>> relative_error([1.0, 2.0], [1.0, float("nan")])
    inf
    """
    a = as_float_array("a", a, finite=False)
    b = as_float_array("b", b, finite=False)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape; got {a.shape} and {b.shape}. "
            f"Is the gradient of one parameter being compared with another's?"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    with np.errstate(over="ignore", invalid="ignore"):
        denom = float(np.linalg.norm(a) + np.linalg.norm(b))
        if denom == 0.0:
            return 0.0
        err = float(np.linalg.norm(a - b) / denom)
    return err if np.isfinite(err) else float("inf")  # norms that overflow fail too


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
    ndarray
        The shape of ``array``. Where ``f`` returns NaN or inf the difference is NaN
        or inf too, which :func:`relative_error` reports as ``inf``.
    """
    check_callable("f", f, "f() -> float")
    return _numerical_gradient(f, array, eps, indices, "array", "f")


def _numerical_gradient(f, array, eps, indices, name, f_name):
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{name} must be a NumPy array (perturbed in place); got {type(array).__name__}."
        )
    if array.dtype != np.float64:
        raise TypeError(
            f"{name} must be float64 for a meaningful finite-difference check; got "
            f"{array.dtype}. Use params = {{k: v.astype(np.float64) for k, v in params.items()}}."
        )
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise ValueError(f"eps must be a float in (0, 1), typically 1e-6; got {eps!r}.")
    grad = np.full(array.shape, np.nan)
    it = np.ndindex(array.shape) if indices is None else indices
    for idx in it:
        old = array[idx]
        try:
            array[idx] = old + eps
            plus = _as_loss(f(), f_name)
            array[idx] = old - eps
            minus = _as_loss(f(), f_name)
        finally:
            array[idx] = old  # restore the exact value, even if f raised
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def _as_loss(value, f_name) -> float:
    if np.ndim(value) != 0 or isinstance(value, (str, bytes)):
        raise TypeError(
            f"{f_name} must return a scalar loss (a float); got "
            f"{type(value).__name__} of shape {np.shape(value)}. Sum or average it first."
        )
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{f_name} must return a scalar loss (a float); got {type(value).__name__}."
        ) from err


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
    max_entries : int >= 1, check at most this many randomly chosen entries per
        parameter (all if None); with ``rng`` (a NumPy Generator) the choice is
        reproducible.

    Returns
    -------
    dict
        name -> relative error (see :func:`relative_error`), over the checked entries.
        A NaN or inf in a gradient, or a loss that returns NaN or inf, gives ``inf``: the
        verdict ``max(errors.values()) < tol`` is then False.

    Examples
    --------
    >>> import numpy as np
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> errs = check_gradients(lambda q: float(np.sum(q["w"] ** 3)), p, {"w": 3 * p["w"] ** 2})
    >>> errs["w"] < 1e-8
    True
    >>> check_gradients(lambda q: float(np.sum(q["w"] ** 3)), p, {"w": np.full(2, np.nan)})
    {'w': inf}
    """
    check_callable("loss_fn", loss_fn, "loss_fn(params) -> float")
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        raise TypeError(
            f"params and grads must both be dicts mapping names to arrays; got "
            f"{type(params).__name__} and {type(grads).__name__}."
        )
    unknown = [k for k in grads if k not in params]
    if unknown:
        raise ValueError(
            f"grads has names {unknown} that params lacks; params has {sorted(params)}."
        )
    if max_entries is not None:
        max_entries = check_positive_int("max_entries", max_entries)
    rng = np.random.default_rng(0) if rng is None else check_rng("rng", rng)
    checked = []
    for name, g in grads.items():
        g = as_float_array(f"grads['{name}']", g, finite=False)
        p = params[name]
        if not isinstance(p, np.ndarray):
            raise TypeError(
                f"params['{name}'] must be a NumPy array (perturbed in place); "
                f"got {type(p).__name__}. Use np.asarray(...) when building params."
            )
        if g.shape != np.shape(p):
            raise ValueError(
                f"grads['{name}'] must have the shape of params['{name}'], {np.shape(p)}; "
                f"got {g.shape}. A gradient always has the shape of its parameter."
            )
        checked.append((name, g, p))
    errors = {}
    for name, g, p in checked:
        if max_entries is None or max_entries >= p.size:
            idx = list(np.ndindex(p.shape))
        else:
            flat = rng.choice(p.size, size=max_entries, replace=False)
            idx = [np.unravel_index(i, p.shape) for i in np.sort(flat)]
        num = _numerical_gradient(lambda: loss_fn(params), p, eps, idx, f"params['{name}']",
                                  "loss_fn")
        rows = tuple(np.array(ix) for ix in zip(*idx))  # advanced index of the checked entries
        errors[name] = relative_error(g[rows], num[rows])
    return errors


def gradcheck_report(errors: Mapping, tol: float = 1e-7) -> str:
    """One line per parameter, stable across machines: ``dW  ok  (relative error < 1e-07)``.

    The exact error varies in its last digits with the BLAS build, so only the
    comparison with ``tol`` is printed. A NaN or infinite error is a ``FAIL``.

    >>> print(gradcheck_report({"W": 1e-10, "b": float("nan")}))
    dW   ok   (relative error < 1e-07)
    db   FAIL (relative error is nan: a NaN or inf gradient or loss)
    """
    if not isinstance(errors, Mapping):
        raise TypeError(
            f"errors must be the dict returned by check_gradients; got {type(errors).__name__}."
        )
    tol = check_real("tol", tol, low=0, low_open=True)
    lines = []
    for name, err in errors.items():
        err = check_real(f"errors['{name}']", err) if not _is_nonfinite(err) else float(err)
        if not np.isfinite(err):
            lines.append(f"d{name:<3} FAIL (relative error is {err}: "
                         f"a NaN or inf gradient or loss)")
            continue
        verdict = "ok  " if err < tol else "FAIL"
        sign = "<" if err < tol else ">="
        lines.append(f"d{name:<3} {verdict} (relative error {sign} {tol:.0e})")
    return "\n".join(lines)


def _is_nonfinite(value) -> bool:
    try:
        return not np.isfinite(float(value))
    except (TypeError, ValueError):
        return False
