"""Long-term dependencies in NumPy: Jacobian products, leaky units, skips, echo states.

Chapter 5 measures why a vanilla RNN forgets. For the tanh recurrence
:math:`h^{(t)} = \\tanh(b + W h^{(t-1)} + U x^{(t)})` one step back costs the factor

.. math::
    \\frac{\\partial h^{(t)}}{\\partial h^{(t-1)}}
    = \\mathrm{diag}\\big(1 - (h^{(t)})^2\\big)\\, W,

and the gradient that reaches :math:`h^{(k)}` from :math:`h^{(t)}` is multiplied by the
product of ``t - k`` such factors. :func:`jacobian_norms` measures the norm of that
product against the distance ``t - k``; :func:`pascanu_bound` is the bound
:math:`(\\gamma \\sigma_{\\max}(W))^{t-k}` of Pascanu et al. (2013), with
:math:`\\gamma = 1` bounding :math:`|\\tanh'|`.

The remedies live here too: leaky units with one or many time constants
(:func:`leaky_hidden_states`, :func:`time_constant`), skip connections through time
(:func:`skip_hidden_states`), a model-agnostic finite-difference probe of how much
the last state depends on each input (:func:`input_influence`), and the reservoir of
an echo state network (:func:`esn_reservoir`; its read-out is fitted with
:func:`companion.scratch.readout.fit_ridge`).

Conventions: batch-first ``x`` of shape (N, T, D); ``U`` (H, D), ``W`` (H, H), ``b`` (H,).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from companion.checks import (
    as_float_array,
    check_callable,
    check_positive_int,
    check_rng,
    check_shape,
)
from companion.scratch.recurrence import _check_rnn_params, _rnn_step, rnn_hidden_states

__all__ = [
    "spectral_radius",
    "scale_to_spectral_radius",
    "step_jacobians",
    "jacobian_norms",
    "pascanu_bound",
    "leaky_hidden_states",
    "time_constant",
    "skip_hidden_states",
    "input_influence",
    "esn_reservoir",
    "state_distance",
    "contraction_rate",
]


def spectral_radius(W) -> float:
    """Largest absolute eigenvalue of a square matrix ``W``."""
    W = as_float_array("W", W)
    check_shape("W", W, ("H", "H"), hint="The spectral radius needs a square matrix.")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def scale_to_spectral_radius(W, rho: float) -> np.ndarray:
    """Return ``W`` rescaled so that its spectral radius is exactly ``rho``.

    Examples
    --------
    >>> W = scale_to_spectral_radius(np.array([[0.0, 2.0], [0.5, 0.0]]), 0.9)
    >>> round(spectral_radius(W), 6)
    0.9
    """
    W = as_float_array("W", W)
    rho = _check_nonneg("rho", rho)
    current = spectral_radius(W)
    if current == 0.0:
        raise ValueError(
            "W has spectral radius 0 (nilpotent or zero), so it cannot be rescaled to a "
            "given radius; draw W from a dense random distribution instead."
        )
    return W * (rho / current)


def _check_nonneg(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


def _check_alpha(alpha, H: int) -> np.ndarray:
    """alpha: a scalar or (H,) array of self-connection weights, each in [0, 1)."""
    if np.isscalar(alpha) and not isinstance(alpha, (str, bytes)):
        a = np.full(H, _check_nonneg("alpha", alpha))
    else:
        a = as_float_array("alpha", alpha)
        check_shape("alpha", a, (H,), hint="Give one self-connection weight per hidden unit.")
    if np.any(a < 0) or np.any(a >= 1):
        raise ValueError(
            f"alpha must lie in [0, 1) (0: a vanilla unit, close to 1: a slow unit); "
            f"got values from {a.min()} to {a.max()}."
        )
    return a


def _check_h0(h0, x, dims, name="h0"):
    """h0 must be (N, H); if its rows match x's *second* axis instead, hint at time-first x."""
    h0 = as_float_array(name, h0)
    hint = ""
    if (h0.ndim == 2 and h0.shape[1] == dims["H"] and h0.shape[0] != x.shape[0]
            and h0.shape[0] == x.shape[1]):
        hint = (f"{name} needs one row per sequence of x (x's first axis); its "
                f"{h0.shape[0]} rows match x's second axis instead. Is x time-first (T, N, D)? "
                f"This course is batch-first: use x.transpose(1, 0, 2).")
    check_shape(name, h0, ("N", "H"), dims, hint=hint)
    return h0


def _check_leaky_inputs(x, U, W, b, alpha, h0):
    """Validate a (leaky) RNN run: x (N, T, D), parameters, alpha, optional h0 (N, H)."""
    x = as_float_array("x", x)
    dims = _check_rnn_params(U, W, b)
    check_shape("x", x, ("N", "T", "D"), dims, layout="batch-first")
    a = _check_alpha(alpha, dims["H"])
    if h0 is not None:
        h0 = _check_h0(h0, x, dims)
    return x, dims, a, h0


def step_jacobians(states, W, *, alpha=0.0) -> np.ndarray:
    """One-step Jacobians :math:`\\partial h^{(t)} / \\partial h^{(t-1)}` along a batch of runs.

    For a (leaky) tanh unit, :math:`h^{(t)} = \\alpha h^{(t-1)} + (1-\\alpha) v^{(t)}` with
    :math:`v^{(t)} = \\tanh(a^{(t)})`, the Jacobian is
    :math:`\\mathrm{diag}(\\alpha) + \\mathrm{diag}((1-\\alpha)(1 - (v^{(t)})^2))\\, W`.
    With ``alpha = 0`` this is the vanilla RNN's ``diag(1 - h^2) W``.

    Parameters
    ----------
    states : (N, T, H) floats, the values :math:`v^{(t)} = \\tanh(a^{(t)})` at each step
        (for a vanilla RNN these are the hidden states themselves).
    W : (H, H).
    alpha : scalar or (H,) in [0, 1).

    Returns
    -------
    J : ndarray (N, T, H, H); ``J[n, t-1]`` is :math:`\\partial h^{(t)}/\\partial h^{(t-1)}`.
    """
    V = as_float_array("states", states)
    W = as_float_array("W", W)
    dims = check_shape("W", W, ("H", "H"))
    check_shape("states", V, ("N", "T", "H"), dims, layout="batch-first")
    a = _check_alpha(alpha, dims["H"])
    # (N, T, H, 1) * (H, H): row i of W scaled by (1 - alpha_i)(1 - v_i^2)
    J = ((1.0 - a) * (1.0 - V**2))[..., None] * W
    J = J + np.diag(a)  # broadcast over (N, T)
    return J


def jacobian_norms(x, U, W, b, *, alpha=0.0, h0=None, ord=2) -> np.ndarray:
    """Norm of :math:`\\partial h^{(T)}/\\partial h^{(T-d)}` for every distance ``d = 0..T``.

    Runs the (leaky) tanh RNN on ``x``, then multiplies the one-step Jacobians from
    the last step backwards: ``P_0 = I``, ``P_d = P_{d-1} J_{T-d+1}``, which is the
    exact product BPTT applies to a gradient arriving at :math:`h^{(T)}`.

    Parameters
    ----------
    x : (N, T, D) floats, batch-first.
    U : (H, D).
    W : (H, H).
    b : (H,).
    alpha : leak, scalar or (H,) in [0, 1); 0 is the vanilla RNN.
    h0 : (N, H), optional.
    ord : matrix norm passed to ``numpy.linalg.norm`` (2: the spectral norm).

    Returns
    -------
    norms : ndarray (N, T + 1); ``norms[n, d]`` is the norm for example ``n`` at distance ``d``
        (``norms[:, 0]`` is the norm of the identity).

    Examples
    --------
    >>> H = 3
    >>> n = jacobian_norms(np.zeros((1, 4, 1)), np.zeros((H, 1)), 0.5 * np.eye(H), np.zeros(H))
    >>> n.round(4).tolist()    # h stays 0, so each step multiplies by W = 0.5 I
    [[1.0, 0.5, 0.25, 0.125, 0.0625]]
    """
    x, dims, a, h0 = _check_leaky_inputs(x, U, W, b, alpha, h0)
    if np.all(a == 0):
        V = rnn_hidden_states(x, U, W, b, h0)  # (N, T, H): v^{(t)} = h^{(t)}
    else:
        _, V = _leaky_run(x, U, W, b, a, h0)
    J = step_jacobians(V, W, alpha=a)  # (N, T, H, H)
    N, T, H = V.shape
    P = np.broadcast_to(np.eye(H), (N, H, H)).copy()
    norms = np.empty((N, T + 1))
    norms[:, 0] = np.linalg.norm(P, ord=ord, axis=(1, 2))
    for d in range(1, T + 1):
        P = P @ J[:, T - d]  # (N, H, H): d^{(T)} / d h^{(T-d)}
        norms[:, d] = np.linalg.norm(P, ord=ord, axis=(1, 2))
    return norms


def pascanu_bound(W, distances, *, gamma: float = 1.0) -> np.ndarray:
    """Pascanu's bound :math:`(\\gamma\\,\\sigma_{\\max}(W))^{d}` on the Jacobian-product norm.

    It bounds :math:`\\|\\partial h^{(t)}/\\partial h^{(t-d)}\\|_2` for every ``t``.

    With :math:`|\\tanh'| \\le \\gamma = 1`, every one-step Jacobian has norm at most
    :math:`\\gamma\\sigma_{\\max}(W)`. Hence :math:`\\sigma_{\\max}(W) < 1/\\gamma` is *sufficient*
    for vanishing gradients, and :math:`\\sigma_{\\max}(W) > 1/\\gamma` is *necessary* for
    exploding ones (Pascanu et al., 2013).

    Parameters
    ----------
    W : (H, H).
    distances : ints >= 0.
    gamma : bound on the derivative of the nonlinearity.

    Returns
    -------
    bound : ndarray of floats, one per distance.
    """
    W = as_float_array("W", W)
    check_shape("W", W, ("H", "H"))
    gamma = _check_nonneg("gamma", gamma)
    d = np.asarray(distances)
    if d.dtype.kind not in "iu" or np.any(d < 0):
        raise ValueError(f"distances must be non-negative integers; got {distances!r}.")
    sigma = float(np.linalg.norm(W, 2))
    return (gamma * sigma) ** d.astype(np.float64)


def _leaky_run(x, U, W, b, a, h0):
    N, T, _ = x.shape
    H = W.shape[0]
    h = np.zeros((N, H)) if h0 is None else h0
    hs, vs = np.empty((N, T, H)), np.empty((N, T, H))
    for t in range(T):
        v = _rnn_step(x[:, t], h, U, W, b)  # (N, H): the vanilla candidate state
        h = a * h + (1.0 - a) * v
        hs[:, t], vs[:, t] = h, v
    return hs, vs


def leaky_hidden_states(x, U, W, b, alpha, h0=None) -> np.ndarray:
    """Leaky units, each keeping a fraction ``alpha`` of its previous value.

    :math:`h^{(t)} = \\alpha \\odot h^{(t-1)} + (1 - \\alpha) \\odot \\tanh(a^{(t)})`.

    Each unit keeps a fraction ``alpha`` of its old value (Goodfellow et al., 10.9.2;
    Mozer 1992). ``alpha`` near 1 makes a slow unit whose memory lasts about
    ``1 / (1 - alpha)`` steps; a vector ``alpha`` gives every unit its own time
    scale (multiple time scales in one layer). ``alpha = 0`` is the vanilla RNN.

    Parameters
    ----------
    x : (N, T, D).
    U : (H, D).
    W : (H, H).
    b : (H,).
    alpha : scalar or (H,) in [0, 1).
    h0 : (N, H), optional.

    Returns
    -------
    h : ndarray (N, T, H).

    Examples
    --------
    >>> x = np.zeros((1, 3, 1)); x[0, 0, 0] = 1.0
    >>> h = leaky_hidden_states(x, np.ones((1, 1)), np.zeros((1, 1)), np.zeros(1), 0.5)
    >>> h[0, :, 0].round(4).tolist()     # tanh(1)/2, then halved at each step
    [0.3808, 0.1904, 0.0952]
    """
    x, dims, a, h0 = _check_leaky_inputs(x, U, W, b, alpha, h0)
    hs, _ = _leaky_run(x, U, W, b, a, h0)
    return hs


def time_constant(response) -> float:
    """Steps until a decaying response falls to ``1/e`` of its start (interpolated).

    For an exponential ``r_d = alpha**d`` this is exactly ``-1 / ln(alpha)``, which is
    close to ``1 / (1 - alpha)`` for ``alpha`` near 1.

    Parameters
    ----------
    response : (L,) floats, e.g. ``|h^{(k+d)}|`` after an impulse at step ``k``;
        ``response[0]`` must be non-zero.

    Returns
    -------
    tau : float. ``inf`` if the response never falls below ``1/e`` of its start.

    Examples
    --------
    >>> round(time_constant(0.9 ** np.arange(60)), 4), round(float(-1 / np.log(0.9)), 4)
    (9.4912, 9.4912)
    """
    r = np.abs(as_float_array("response", response))
    check_shape("response", r, ("L",))
    if len(r) < 2 or r[0] == 0:
        raise ValueError(
            "response must have at least 2 entries and a non-zero first entry "
            f"(the size of the impulse); got length {len(r)}, "
            f"first entry {r[0] if len(r) else None}."
        )
    level = r[0] / np.e
    below = np.nonzero(r <= level)[0]
    if len(below) == 0:
        return float("inf")
    d = int(below[0])
    # interpolate log r linearly between d - 1 and d
    lo, hi = np.log(r[d - 1]), np.log(max(r[d], 1e-300))
    return float(d - 1 + (lo - np.log(level)) / (lo - hi))


def skip_hidden_states(x, U, W, b, W_skip, delay: int, h0=None) -> np.ndarray:
    """A tanh RNN with a skip connection through time, from ``delay`` steps back.

    :math:`h^{(t)} = \\tanh(b + W h^{(t-1)} + W_s h^{(t-d)} + U x^{(t)})`.

    The extra edge from ``d = delay`` steps back (Lin et al., 1996) lets a gradient
    cross ``t - k`` steps in about ``(t - k) / d`` multiplications instead of ``t - k``.
    States before the start (``t - d < 1``) are the zeros (or ``h0``).

    Parameters
    ----------
    x : (N, T, D).
    U : (H, D).
    W : (H, H).
    b : (H,).
    W_skip : (H, H).
    delay : int >= 2.
    h0 : (N, H), optional.

    Returns
    -------
    h : ndarray (N, T, H).
    """
    x = as_float_array("x", x)
    dims = _check_rnn_params(U, W, b)
    Ws = as_float_array("W_skip", W_skip)
    check_shape("W_skip", Ws, ("H", "H"), dims)
    check_shape("x", x, ("N", "T", "D"), dims, layout="batch-first")
    delay = check_positive_int("delay", delay, minimum=2)
    N, T, _ = x.shape
    H = dims["H"]
    if h0 is None:
        h0 = np.zeros((N, H))
    else:
        h0 = _check_h0(h0, x, dims)
    hs = np.empty((N, T, H))
    for t in range(T):
        prev = hs[:, t - 1] if t >= 1 else h0
        far = hs[:, t - delay] if t >= delay else h0
        hs[:, t] = np.tanh(x[:, t] @ U.T + prev @ W.T + far @ Ws.T + b)
    return hs


def input_influence(run: Callable, x, *, eps: float = 1e-5) -> np.ndarray:
    """How much the last state depends on each input, by finite differences.

    Returns :math:`\\|\\partial h^{(T)}/\\partial x^{(k)}\\|_F` for every ``k``.

    Estimated by centred finite differences, one input component at a time, so it
    works for *any* recurrence given as ``run(x) -> states``: vanilla, leaky, with
    skips, a reservoir. It is the quantity a gradient at the end of the sequence
    sees at step ``k``.

    Parameters
    ----------
    run : ``run(x) -> states`` mapping (N, T, D) to (N, T, H).
    x : (N, T, D) floats.
    eps : the finite-difference step (> 0).

    Returns
    -------
    influence : ndarray (N, T); ``influence[n, k-1]`` is the norm for input ``x^{(k)}``.
    """
    check_callable("run", run, "run(x) -> states of shape (N, T, H)")
    x = as_float_array("x", x)
    check_shape("x", x, ("N", "T", "D"), layout="batch-first")
    eps = _check_nonneg("eps", eps)
    if eps == 0:
        raise ValueError("eps must be > 0 for a finite difference; try 1e-5.")
    N, T, D = x.shape
    probe = np.asarray(run(x))
    if probe.ndim != 3 or probe.shape[0] != N or probe.shape[1] < 1:
        raise ValueError(
            f"run(x) must return states of shape (N={N}, T, H), batch-first; got "
            f"{probe.shape}. Return every hidden state, e.g. rnn_hidden_states(x, U, W, b)."
        )
    sq = np.zeros((N, T))
    for k in range(T):
        for j in range(D):
            xp, xm = x.copy(), x.copy()
            xp[:, k, j] += eps
            xm[:, k, j] -= eps
            d = (np.asarray(run(xp))[:, -1] - np.asarray(run(xm))[:, -1]) / (2 * eps)  # (N, H)
            sq[:, k] += (d**2).sum(axis=1)
    return np.sqrt(sq)


def esn_reservoir(n_units: int, n_inputs: int, spectral_radius_: float = 0.9, *,
                  input_scale: float = 1.0, rng=None):
    """A random, fixed reservoir for an echo state network (Jaeger, 2001).

    ``W`` is drawn Gaussian and rescaled to the requested spectral radius, which sets
    how long the reservoir echoes its inputs (below about 1 the echoes fade: the
    *echo state property*); ``U`` is uniform in ``[-input_scale, input_scale]``.
    Only a linear read-out is trained on the states, in closed form
    (:func:`companion.scratch.readout.fit_ridge`).

    Parameters
    ----------
    n_units : H.
    n_inputs : D.
    spectral_radius_ : >= 0.
    input_scale : >= 0.
    rng : numpy Generator (required, for reproducibility).

    Returns
    -------
    U : (H, D).
    W : (H, H).
    b : (H,) zeros.

    Examples
    --------
    >>> U, W, b = esn_reservoir(50, 1, 0.8, rng=np.random.default_rng(0))
    >>> U.shape, W.shape, round(spectral_radius(W), 6)
    ((50, 1), (50, 50), 0.8)
    """
    H = check_positive_int("n_units", n_units)
    D = check_positive_int("n_inputs", n_inputs)
    rho = _check_nonneg("spectral_radius_", spectral_radius_)
    input_scale = _check_nonneg("input_scale", input_scale)
    check_rng("rng", rng)
    W = rng.normal(size=(H, H)) / np.sqrt(H)
    W = scale_to_spectral_radius(W, rho) if rho > 0 else np.zeros((H, H))
    U = rng.uniform(-input_scale, input_scale, size=(H, D))
    return U, W, np.zeros(H)


def state_distance(x, U, W, b, h0_a, h0_b) -> np.ndarray:
    """Distance between two runs of the same tanh RNN, same inputs, different initial states.

    :math:`\\|h_a^{(t)} - h_b^{(t)}\\|_2` for ``t = 0..T`` (``t = 0``: the initial states).
    If it goes to zero for every pair of initial states, the network forgets where it
    started: the *echo state property* of a reservoir (Jaeger, 2001). Since
    :math:`|\\tanh'| \\le 1`, one step shrinks the distance at least by the factor
    :math:`\\sigma_{\\max}(W)`, so :math:`\\sigma_{\\max}(W) < 1` guarantees it; the spectral
    radius is only a heuristic (neither necessary nor sufficient for a driven network).

    Parameters
    ----------
    x : (N, T, D).
    U : (H, D).
    W : (H, H).
    b : (H,).
    h0_a, h0_b : (N, H).

    Returns
    -------
    distance : ndarray (N, T + 1).

    Examples
    --------
    >>> d = state_distance(np.zeros((1, 3, 1)), np.zeros((2, 1)), 0.5 * np.eye(2), np.zeros(2),
    ...                    np.zeros((1, 2)), np.full((1, 2), 0.1))
    >>> bool(np.all(d[0, 1:] < 0.5 * d[0, :-1]))     # tanh shrinks by more than W does
    True
    """
    x = as_float_array("x", x)
    dims = _check_rnn_params(U, W, b)
    check_shape("x", x, ("N", "T", "D"), dims, layout="batch-first")
    ha = _check_h0(h0_a, x, dims, "h0_a")
    hb = _check_h0(h0_b, x, dims, "h0_b")
    N, T, _ = x.shape
    dist = np.empty((N, T + 1))
    dist[:, 0] = np.linalg.norm(ha - hb, axis=1)
    h = np.concatenate([ha, hb])  # (2N, H): both runs as one batch
    xx = np.concatenate([x, x])
    for t in range(T):
        h = _rnn_step(xx[:, t], h, U, W, b)
        dist[:, t + 1] = np.linalg.norm(h[:N] - h[N:], axis=1)
    return dist


def contraction_rate(distance, *, floor: float = 1e-12) -> np.ndarray:
    """Mean per-step log-rate at which a distance shrinks (< 0) or not (about 0 or > 0).

    ``(log d_k - log d_0) / k``, with ``k`` the last step before the distance falls below
    ``floor`` (rounding noise) or the last step. ``exp(rate)`` is the average factor per step.

    Parameters
    ----------
    distance : (N, L) or (L,) positive floats, e.g. from :func:`state_distance`.
    floor : > 0, the level below which the distance is treated as zero.

    Returns
    -------
    rate : ndarray (N,) (or a 0-d array for 1-D input).

    Examples
    --------
    >>> round(float(contraction_rate(0.5 ** np.arange(10))), 4), round(float(np.log(0.5)), 4)
    (-0.6931, -0.6931)
    """
    D = as_float_array("distance", distance)
    one = D.ndim == 1
    D = np.atleast_2d(D)
    check_shape("distance", D, ("N", "L"))
    floor = _check_nonneg("floor", floor)
    if D.shape[1] < 2 or np.any(D[:, 0] <= floor):
        raise ValueError(
            "distance must have at least 2 steps and start above floor (two different "
            f"initial states); got {D.shape[1]} steps, smallest start {D[:, 0].min():.3g}."
        )
    rates = np.empty(len(D))
    for n, d in enumerate(D):
        below = np.nonzero(d <= floor)[0]
        k = (int(below[0]) - 1) if len(below) else len(d) - 1
        k = max(k, 1)
        rates[n] = (np.log(max(d[k], 1e-300)) - np.log(d[0])) / k
    return rates[0] if one else rates
