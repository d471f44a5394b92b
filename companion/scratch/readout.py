"""Linear read-outs fitted in closed form: probing what a state remembers.

Chapter 1 asks how much of the past a hidden state keeps. The honest way to ask is
to fit the best *linear* read-out from the state to an old input and measure how
well it does on held-out data: if even the best read-out cannot recover
:math:`x^{(t-k)}` from :math:`h^{(t)}`, that input has been forgotten. The same
closed-form ridge regression trains the read-out of an echo state network.
"""

from __future__ import annotations

import numpy as np

from companion.checks import (
    as_float_array,
    check_nonempty,
    check_positive_int,
    check_real,
    check_shape,
)

__all__ = ["fit_ridge", "r2_score", "lagged_recall", "sliding_windows"]


def fit_ridge(features, targets, alpha: float = 1e-6) -> np.ndarray:
    """Least squares with a small L2 penalty and an intercept, solved in closed form.

    Parameters
    ----------
    features : (M, F) floats.
    targets : (M,) or (M, K) floats.
    alpha : float >= 0, the ridge penalty (not applied to the intercept).

    Returns
    -------
    weights : ndarray, shape (F + 1,) or (F + 1, K); the last row is the intercept.
        Predict with ``np.c_[features, np.ones(M)] @ weights``.
    """
    X = as_float_array("features", features)
    y = as_float_array("targets", targets)
    dims = check_shape("features", X, ("M", "F"))
    if y.ndim == 1:
        check_shape("targets", y, ("M",), dims)
    else:
        check_shape("targets", y, ("M", "K"), dims)
    check_nonempty("features", X, ("M",), hint="A read-out needs at least one example.")
    alpha = check_real("alpha", alpha, low=0, hint="1e-6 is a small ridge penalty.")
    Xb = np.c_[X, np.ones(len(X))]  # (M, F+1): a column of ones for the intercept
    penalty = alpha * np.eye(Xb.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(Xb.T @ Xb + penalty, Xb.T @ y)


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination: 1 is perfect, 0 is no better than the mean."""
    y_true = as_float_array("y_true", y_true)
    y_pred = as_float_array("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}."
        )
    if y_true.ndim == 0 or len(y_true) < 2:
        raise ValueError(
            f"y_true must hold at least 2 values for R^2 to be defined; got shape {y_true.shape}."
        )
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean(axis=0)) ** 2))
    if ss_tot == 0.0:
        raise ValueError("y_true is constant, so R^2 is undefined; use targets that vary.")
    return 1.0 - ss_res / ss_tot


def lagged_recall(states, inputs, lags, *, alpha: float = 1e-6, train_fraction: float = 0.5):
    """How well can the best linear read-out of :math:`h^{(t)}` recover :math:`x^{(t-k)}`?

    For each lag ``k`` a ridge read-out from ``states[t]`` to ``inputs[t - k]`` is fit
    on the first ``train_fraction`` of time steps and scored (R^2) on the rest.

    Parameters
    ----------
    states : (T, H) floats, ``states[t]`` computed after reading ``inputs[t]``.
    inputs : (T,) floats, a scalar input stream.
    lags : iterable of ints >= 0, each shorter than ``T // 2``.
    alpha : float >= 0, the ridge penalty.
    train_fraction : float in (0, 1); both parts must keep at least 2 time steps.

    Returns
    -------
    r2 : ndarray, shape (len(lags),), held-out R^2 for each lag (can be negative
        when the read-out does worse than predicting the mean).
    """
    S = as_float_array("states", states)
    u = as_float_array("inputs", inputs)
    dims = check_shape("states", S, ("T", "H"))
    check_shape("inputs", u, ("T",), dims)
    if isinstance(lags, (str, bytes)) or not np.iterable(lags):
        raise TypeError(f"lags must be a list of ints >= 0, e.g. range(10); got {lags!r}.")
    lags = [check_positive_int(f"lags[{i}]", int(k) if isinstance(k, np.integer) else k,
                               minimum=0) for i, k in enumerate(lags)]
    alpha = check_real("alpha", alpha, low=0, hint="1e-6 is a small ridge penalty.")
    train_fraction = check_real(
        "train_fraction", train_fraction, low=0, high=1, low_open=True, high_open=True,
        hint="0.5 fits on the first half, scores on the rest.")
    T = dims["T"]
    out = []
    for k in lags:
        if k >= T // 2:
            raise ValueError(f"lags must be shorter than half the sequence (T={T}); got {k}.")
        X, y = S[k:], u[: T - k]  # row i pairs h^{(i+k)} with x^{(i)}
        split = int(len(X) * train_fraction)
        if min(split, len(X) - split) < 2:
            raise ValueError(
                f"train_fraction={train_fraction} splits the {len(X)} usable steps at lag {k} "
                f"into {split} for fitting and {len(X) - split} for scoring; both need at "
                f"least 2. Use a longer sequence or a train_fraction nearer 0.5."
            )
        w = fit_ridge(X[:split], y[:split], alpha)
        pred = np.c_[X[split:], np.ones(len(X) - split)] @ w
        out.append(r2_score(y[split:], pred))
    return np.array(out)


def sliding_windows(x, k: int) -> np.ndarray:
    """The last ``k`` inputs at every time step, zero-padded at the start.

    Parameters
    ----------
    x : (T,) floats.
    k : int >= 1.

    Returns
    -------
    windows : ndarray, shape (T, k); ``windows[t] = [x[t], x[t-1], ..., x[t-k+1]]``.
    """
    x = as_float_array("x", x)
    check_shape("x", x, ("T",))
    k = check_positive_int("k", k)
    padded = np.concatenate([np.zeros(k - 1), x])  # (T + k - 1,)
    idx = np.arange(len(x))[:, None] + (k - 1) - np.arange(k)[None, :]  # (T, k)
    return padded[idx]
