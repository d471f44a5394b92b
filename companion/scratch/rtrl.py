"""Learning online: real-time recurrent learning (RTRL) and UORO, in NumPy.

Chapter 12 (section "Learning online"). The model is the vanilla tanh RNN of chapters
3 and 4 (:mod:`companion.scratch.forward`), with the same parameters ``U`` (H, D),
``W`` (H, H), ``V`` (K, H), ``b`` (H,), ``c`` (K,) and the same loss (negative
log-likelihood summed over time, averaged over the batch).

BPTT (chapter 4) computes the gradient *backwards*, after the sequence has ended, and
has to store every state: memory grows with the length :math:`\\tau`. Real-time
recurrent learning (Williams and Zipser, 1989) computes it *forwards*. Write
:math:`\\theta` for the recurrent parameters ``(U, W, b)`` flattened into one vector of
length :math:`P = HD + H^2 + H` (in that order, each matrix row-major) and carry the
influence matrix :math:`J^{(t)} = \\partial h^{(t)} / \\partial \\theta`, (H, P), along
the sequence:

.. math::

    J^{(t)} = \\mathrm{diag}\\bigl(1 - (h^{(t)})^2\\bigr)
              \\bigl(W J^{(t-1)} + \\bar I^{(t)}\\bigr), \\qquad J^{(0)} = 0,

where :math:`\\bar I^{(t)} = \\partial a^{(t)} / \\partial \\theta` with
:math:`h^{(t-1)}` held fixed (row ``i`` holds :math:`x^{(t)}` in the columns of
``U[i]``, :math:`h^{(t-1)}` in the columns of ``W[i]`` and 1 in the column of ``b[i]``).
The gradient of the loss is then accumulated as the sequence runs,
:math:`\\nabla_\\theta L = \\sum_t (J^{(t)})^\\top \\nabla_{h^{(t)}} L^{(t)}` with
:math:`\\nabla_{h^{(t)}} L^{(t)} = V^\\top (\\hat y^{(t)} - e_{y^{(t)}})`: nothing is
stored about the past except :math:`J` and :math:`h`, so the cost does not grow with
:math:`\\tau`; but :math:`J` holds :math:`H \\cdot P \\approx H^3` floats and the product
:math:`W J` costs :math:`H^2 P \\approx H^4` multiply-adds per step.

UORO (Tallec and Ollivier, 2017) replaces :math:`J` by a random rank-one matrix
:math:`\\tilde h \\tilde\\theta^\\top` (H + P floats) whose expectation is :math:`J`:

.. math::

    \\tilde h \\leftarrow \\rho_0\\, \\Lambda_t W \\tilde h + \\rho_1 \\nu, \\qquad
    \\tilde\\theta \\leftarrow \\tilde\\theta / \\rho_0
        + (\\nu^\\top \\Lambda_t \\bar I^{(t)}) / \\rho_1,

with :math:`\\Lambda_t = \\mathrm{diag}(1 - (h^{(t)})^2)`, :math:`\\nu` a vector of independent
random signs, and :math:`\\rho_0, \\rho_1 > 0` chosen to balance the norms of the two
factors (which minimises the variance the method adds). The cross terms have mean zero
because :math:`\\nu` does, and :math:`E[\\nu\\nu^\\top] = I`, so the estimate is unbiased.

Arrays of a stream are batch-first like the rest of the course: ``x`` (N, T, D),
targets ``y`` (N, T). In :func:`online_train` the leading axis indexes *members*:
independent models (one per seed and learning rate), each with its own stream and its own
weights (``U`` (M, H, D), ...), trained at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from companion.checks import (
    as_float_array,
    check_batch_first,
    check_int_array,
    check_nonempty,
    check_positive_int,
    check_real,
    check_rng,
)
from companion.scratch.forward import PARAM_NAMES, _check_sequence_inputs, check_params

__all__ = [
    "METHODS",
    "bptt_memory_floats",
    "delayed_copy_stream",
    "flatten_recurrent",
    "influence_step",
    "online_train",
    "recurrent_size",
    "rtrl_loss_and_grads",
    "rtrl_memory_floats",
    "stack_params",
    "unflatten_recurrent",
    "uoro_gradient_samples",
    "uoro_memory_floats",
]

#: The ways :func:`online_train` can compute the gradient of the recurrent parameters.
METHODS = ("rtrl", "uoro", "tbptt", "reset")


# ---------------------------------------------------------------- sizes and costs
def recurrent_size(D: int, H: int) -> int:
    """P = H*D + H*H + H, the number of recurrent parameters (U, W, b) RTRL tracks."""
    D = check_positive_int("D", D)
    H = check_positive_int("H", H)
    return H * D + H * H + H


def rtrl_memory_floats(D: int, H: int) -> int:
    """Floats RTRL carries from step to step: the influence matrix (H * P) and h (H).

    Independent of the sequence length; about H**3 for a fully connected RNN.
    """
    return H * recurrent_size(D, H) + H


def uoro_memory_floats(D: int, H: int) -> int:
    """Floats UORO carries: the rank-one factors h~ (H) and theta~ (P), plus h (H)."""
    return recurrent_size(D, H) + 2 * H


def bptt_memory_floats(T: int, D: int, H: int) -> int:
    """Floats full BPTT stores for one sequence of length T: the T states and the T
    inputs it reads again on the way back (h0 included): (T + 1) * H + T * D."""
    T = check_positive_int("T", T)
    D = check_positive_int("D", D)
    H = check_positive_int("H", H)
    return (T + 1) * H + T * D


# ---------------------------------------------------------------- a stream to learn from
def delayed_copy_stream(T: int, seed: int, delay: int = 4):
    """A stream of random bits and, as targets, the same bits ``delay`` steps later.

    Returns ``x`` (T, 2), the bits one-hot, and ``y`` (T,) ints with
    ``y[t] = bits[t - delay]`` (0 for the first ``delay`` steps, which no model can know).
    A model that remembers nothing scores ``log 2`` nats per step.
    """
    T = check_positive_int("T", T)
    delay = check_positive_int("delay", delay)
    seed = check_positive_int("seed", seed, minimum=0)
    if delay >= T:
        raise ValueError(f"delay must be shorter than the stream: got delay={delay}, T={T}.")
    bits = np.random.default_rng(seed).integers(0, 2, size=T)
    y = np.zeros(T, dtype=np.int64)
    y[delay:] = bits[:-delay]
    return np.eye(2)[bits], y


# ---------------------------------------------------------------- flat parameters
def flatten_recurrent(grads) -> np.ndarray:
    """Concatenate ``U``, ``W``, ``b`` (each row-major) into one vector of length P.

    Accepts a dict of parameters or of gradients (extra keys such as ``V`` are ignored).
    With a leading member axis (``U`` (M, H, D), ...) it returns (M, P).
    """
    if not isinstance(grads, Mapping):
        raise TypeError(f"grads must be a dict with keys U, W, b (parameters or gradients); got "
                        f"{type(grads).__name__}.")
    for k in ("U", "W", "b"):
        if k not in grads:
            raise ValueError(f"flatten_recurrent needs the keys U, W, b; '{k}' is missing "
                             f"(got {sorted(grads)}).")
    U, W, b = (np.asarray(grads[k]) for k in ("U", "W", "b"))
    for k, arr in (("U", U), ("W", W), ("b", b)):
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"grads['{k}'] must be finite; got NaN or infinity. Check the "
                             f"learning rate or clip the gradients.")
    if W.ndim < 2 or W.shape[-1] != W.shape[-2]:
        raise ValueError(f"grads['W'] must be (..., H, H); got shape {W.shape}.")
    lead, H = W.shape[:-2], W.shape[-1]
    if U.ndim != W.ndim or U.shape[:-1] != lead + (H,):
        raise ValueError(f"grads['U'] must be {lead + (H,)} + (D,) to match W {W.shape}; got "
                         f"shape {U.shape}.")
    if b.shape != lead + (H,):
        raise ValueError(f"grads['b'] must be {lead + (H,)} to match W {W.shape}; got shape "
                         f"{b.shape}.")
    return np.concatenate([U.reshape(*lead, -1), W.reshape(*lead, -1), b.reshape(*lead, -1)],
                          axis=-1)


def unflatten_recurrent(flat, D: int, H: int) -> dict:
    """Inverse of :func:`flatten_recurrent`: a vector (P,) (or (M, P)) back to U, W, b."""
    P = recurrent_size(D, H)
    flat = as_float_array("flat", flat, allow_int=True)
    if flat.shape[-1:] != (P,):
        raise ValueError(f"flat must end with an axis of length P = H*D + H*H + H = {P} "
                         f"for D={D}, H={H}; got shape {flat.shape}.")
    lead = flat.shape[:-1]
    return {"U": flat[..., :H * D].reshape(*lead, H, D),
            "W": flat[..., H * D:H * D + H * H].reshape(*lead, H, H),
            "b": flat[..., H * D + H * H:].reshape(*lead, H)}


def stack_params(param_list) -> dict:
    """Stack M parameter dicts into one dict with a leading member axis (for online_train)."""
    if not isinstance(param_list, (list, tuple)):
        raise TypeError(f"param_list must be a list of parameter dicts (one per member); got "
                        f"{type(param_list).__name__}. Wrap one model as [params].")
    if len(param_list) == 0:
        raise ValueError("param_list must hold at least one parameter dict; got none.")
    for p in param_list:
        check_params(p)
    return {k: np.stack([np.asarray(p[k], dtype=float) for p in param_list])
            for k in PARAM_NAMES}


# ---------------------------------------------------------------- the kernels
def _index_tables(D, H):
    """Columns of the flat vector touched by row i of the immediate Jacobian I-bar."""
    i = np.arange(H)[:, None]
    cols_U = i * D + np.arange(D)[None, :]  # (H, D): U[i, j] sits at column i*D + j
    cols_W = H * D + i * H + np.arange(H)[None, :]  # (H, H)
    cols_b = H * D + H * H + np.arange(H)  # (H,)
    return cols_U, cols_W, cols_b


def _influence_step(J, x_t, h_prev, h_t, W, tables):
    """J (N, H, P) -> J' = diag(1 - h_t^2) (W J + I-bar). W is (H, H) or (N, H, H)."""
    cols_U, cols_W, cols_b = tables
    H = h_t.shape[-1]
    rows = np.arange(H)
    M = np.matmul(W, J)  # (N, H, P): the H^2 P multiply-adds of a step
    M[:, rows[:, None], cols_U] += x_t[:, None, :]  # d a_i / d U[i, j] = x_j
    M[:, rows[:, None], cols_W] += h_prev[:, None, :]  # d a_i / d W[i, j] = h_prev_j
    M[:, rows, cols_b] += 1.0  # d a_i / d b_i = 1
    M *= (1.0 - h_t**2)[:, :, None]
    return M


def _param_vjp(delta, x_t, h_prev):
    """delta^T I-bar for each row: (N, H) -> (N, P), the gradient of delta . a w.r.t. theta."""
    N = delta.shape[0]
    gU = (delta[:, :, None] * x_t[:, None, :]).reshape(N, -1)
    gW = (delta[:, :, None] * h_prev[:, None, :]).reshape(N, -1)
    return np.concatenate([gU, gW, delta], axis=1)


def influence_step(J, x_t, h_prev, W, U, b):
    """One step of RTRL for a single sequence: returns ``(h_t, J_t)``.

    Parameters
    ----------
    J : (H, P), the influence matrix :math:`\\partial h^{(t-1)} / \\partial \\theta`.
    x_t : (D,).
    h_prev : (H,).
    W : (H, H).
    U : (H, D).
    b : (H,).

    Returns
    -------
    h_t : (H,), the new state.
    J_t : (H, P), :math:`\\partial h^{(t)} / \\partial \\theta`.
    """
    check_params({"U": U, "W": W, "V": np.zeros((1, np.shape(W)[0])), "b": b,
                  "c": np.zeros(1)})
    H, D = np.shape(U)
    P = recurrent_size(D, H)
    J = as_float_array("J", J)
    if J.shape != (H, P):
        raise ValueError(f"J must be the (H, P) = ({H}, {P}) influence matrix "
                         f"(P = H*D + H*H + H); got shape {J.shape}. Start from np.zeros((H, P)).")
    x_t = as_float_array("x_t", x_t)
    h_prev = as_float_array("h_prev", h_prev)
    if x_t.shape != (D,) or h_prev.shape != (H,):
        raise ValueError(f"x_t must be ({D},) and h_prev ({H},) for one sequence; got "
                         f"{x_t.shape} and {h_prev.shape}.")
    h_t = np.tanh(U @ x_t + W @ h_prev + b)
    J_t = _influence_step(J[None], x_t[None], h_prev[None], h_t[None], W,
                          _index_tables(D, H))[0]
    return h_t, J_t


def _softmax_grad(o, y):
    """Per-row NLL and its gradient w.r.t. the logits: o (N, K), y (N,) ints."""
    z = o - o.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(o.shape[0])
    loss = -logp[rows, y]
    g = np.exp(logp)
    g[rows, y] -= 1.0
    return loss, g


# ---------------------------------------------------------------- whole-sequence gradients
def rtrl_loss_and_grads(params, x, y, h0=None):
    """The loss and its gradient by RTRL: one forward sweep, nothing stored about the past.

    Same arguments and the same loss as :func:`companion.scratch.bptt.rnn_loss_and_grads`
    (summed over time, averaged over the batch), and, up to rounding, the same gradients.

    Parameters
    ----------
    params : dict ``U, W, V, b, c``.
    x : (N, T, D).
    y : (N, T) integer targets.
    h0 : (N, H), optional initial state (zeros if omitted).

    Returns
    -------
    loss : float.
    grads : dict ``U, W, V, b, c``.
    h_last : (N, H).
    """
    y = np.asarray(y)
    x, h0, dims = _check_sequence_inputs(x, params, h0, y_shape=y.shape)
    y = check_int_array("y", y, low=0, high=dims["K"])
    N, T, D = x.shape
    H = dims["H"]
    U, W, V, b, c = (params[k] for k in PARAM_NAMES)
    tables = _index_tables(D, H)
    J = np.zeros((N, H, recurrent_size(D, H)), dtype=np.result_type(x, W))
    g_theta = np.zeros(J.shape[2], dtype=J.dtype)
    gV, gc = np.zeros_like(V, dtype=J.dtype), np.zeros_like(c, dtype=J.dtype)
    h, loss = h0, 0.0
    for t in range(T):
        h_new = np.tanh(x[:, t] @ U.T + h @ W.T + b)
        J = _influence_step(J, x[:, t], h, h_new, W, tables)
        h = h_new
        lt, go = _softmax_grad(h @ V.T + c, y[:, t])
        loss += lt.sum() / N
        go /= N
        gV += go.T @ h
        gc += go.sum(axis=0)
        g_theta += np.einsum("ni,nip->p", go @ V, J)  # sum_n (J_n)^T dL/dh_n
    grads = unflatten_recurrent(g_theta, D, H)
    grads.update(V=gV, c=gc)
    return float(loss), {k: grads[k] for k in PARAM_NAMES}, h


def _uoro_step(h_tilde, th_tilde, x_t, h_prev, h_t, W, nu, eps):
    """One UORO update of the rank-one factors, for every row (draw) at once."""
    d = 1.0 - h_t**2
    fwd = d * np.einsum("...ij,...j->...i", W, h_tilde) if W.ndim == 3 else d * (h_tilde @ W.T)
    dtheta = _param_vjp(nu * d, x_t, h_prev)  # nu^T Lambda_t I-bar, (N, P)
    norm = np.linalg.norm
    rho0 = np.sqrt((norm(th_tilde, axis=1) + eps) / (norm(fwd, axis=1) + eps))[:, None]
    rho1 = np.sqrt((norm(dtheta, axis=1) + eps) / (norm(nu, axis=1) + eps))[:, None]
    return rho0 * fwd + rho1 * nu, th_tilde / rho0 + dtheta / rho1


def uoro_gradient_samples(params, x, y, n_samples: int, rng, h0=None, eps: float = 1e-7):
    """Independent UORO estimates of the gradient of the recurrent parameters.

    Runs ``n_samples`` UORO chains (each with its own random signs) over the same single
    sequence with fixed parameters and returns their estimates of
    :math:`\\nabla_\\theta L` (the flat ``U, W, b`` vector of :func:`flatten_recurrent`).
    Their mean approaches the exact (RTRL or BPTT) gradient as ``n_samples`` grows.

    Parameters
    ----------
    params : dict ``U, W, V, b, c``.
    x : (1, T, D), one sequence.
    y : (1, T).
    n_samples : int >= 1.
    rng : numpy.random.Generator (draws the signs).
    h0 : (1, H), optional.
    eps : small positive float guarding the norm ratios.

    Returns
    -------
    (n_samples, P) array of estimates.
    """
    y = np.asarray(y)
    x, h0, dims = _check_sequence_inputs(x, params, h0, y_shape=y.shape)
    y = check_int_array("y", y, low=0, high=dims["K"])
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one sequence, shape (1, T, D); got {x.shape}. "
                         f"Pass x[i:i+1] and y[i:i+1] for sequence i.")
    S = check_positive_int("n_samples", n_samples)
    check_rng("rng", rng)
    eps = check_real("eps", eps, low=0, low_open=True)
    _, T, D = x.shape
    H = dims["H"]
    U, W, V, b, c = (params[k] for k in PARAM_NAMES)
    dtype = np.result_type(x, W)
    h_t = np.zeros((S, H), dtype=dtype)
    th_t = np.zeros((S, recurrent_size(D, H)), dtype=dtype)
    est = np.zeros_like(th_t)
    h = np.repeat(h0, S, axis=0)
    for t in range(T):
        xt = np.repeat(x[:, t], S, axis=0)
        h_new = np.tanh(xt @ U.T + h @ W.T + b)
        nu = rng.choice(np.array([-1.0, 1.0]), size=(S, H))
        h_t, th_t = _uoro_step(h_t, th_t, xt, h, h_new, W, nu, eps)
        h = h_new
        _, go = _softmax_grad(h @ V.T + c, np.repeat(y[:, t], S))
        est += ((go @ V) * h_t).sum(axis=1, keepdims=True) * th_t
    return est


# ---------------------------------------------------------------- online training
def _check_stream(params, x, y):
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict U, W, V, b, c with a leading member axis (see "
                        f"stack_params); got {type(params).__name__}.")
    for k in PARAM_NAMES:
        if k not in params:
            raise ValueError(f"params is missing '{k}'; online_train needs U, W, V, b, c "
                             f"with a leading member axis (see stack_params).")
    W = as_float_array("params['W']", params["W"])
    if W.ndim != 3:
        raise ValueError(
            f"params['W'] must have a leading member axis, (M, H, H); got shape {W.shape}. "
            f"Wrap one model with stack_params([params]).")
    M, H = W.shape[0], W.shape[1]
    dims = {"M": M, "H": H}
    for k, spec in (("U", ("M", "H", "D")), ("V", ("M", "K", "H")), ("b", ("M", "H")),
                    ("c", ("M", "K"))):
        arr = as_float_array(f"params['{k}']", params[k])
        if arr.ndim != len(spec):
            raise ValueError(f"params['{k}'] must be {spec} with the member axis first; "
                             f"got shape {arr.shape}.")
        for s, n in zip(spec, arr.shape):
            if dims.setdefault(s, n) != n:
                raise ValueError(f"params['{k}'] has shape {arr.shape}, which disagrees with "
                                 f"the other parameters ({s} = {dims[s]}).")
    x = as_float_array("x", x)
    y = np.asarray(y)
    if x.ndim == 3 and x.shape[0] != M and x.shape[1] == M and x.shape[2] == dims["D"]:
        raise ValueError(
            f"x must be (M={M}, T, D={dims['D']}), batch-first (one stream per member); got "
            f"{x.shape}. Time-first input? This course is batch-first: use "
            f"x.transpose(1, 0, 2) (and y.T).")
    check_batch_first("x", x, ("M", "T", "D"), dims, (
        ("y", y, ("M", "T"), "One target class id per step of each member's stream."),))
    check_nonempty("x", x, ("M", "T"))
    y = check_int_array("y", y, low=0, high=dims["K"])
    return x, y, dims


def online_train(params, x, y, lr, method: str = "rtrl", *, rng=None, k: int = 1,
                 clip: float | None = None, eps: float = 1e-7, return_state: bool = False):
    """Learn online from a stream, one plain SGD step per time step (no backtracking).

    Each of the M members reads its own stream ``x[m]`` once, from left to right. At every
    step it first predicts :math:`y^{(t)}` from the state (the loss recorded is this
    prediction's, made *before* the update: the honest online score), then updates its
    parameters with its own learning rate.

    Parameters
    ----------
    params : dict ``U`` (M, H, D), ``W`` (M, H, H), ``V`` (M, K, H), ``b`` (M, H),
        ``c`` (M, K) (:func:`stack_params`). Not modified; the trained copy is returned.
    x : (M, T, D) float streams.
    y : (M, T) integer targets.
    lr : float or (M,) learning rates.
    method : ``"rtrl"`` (exact influence, carried across updates), ``"uoro"`` (rank-one
        estimate; needs ``rng``), ``"tbptt"`` (truncated BPTT: every ``k`` steps, one
        update with the gradient of those ``k`` losses, back-propagated inside the chunk
        only) or ``"reset"`` (the influence reset to zero at every step, a mistake shown
        in the chapter: the gradient then ignores every earlier step).
    rng : numpy.random.Generator, for ``"uoro"``.
    k : steps between updates (default 1). For ``"tbptt"`` the chunk length; for the other
        methods the gradients of the last ``k`` losses are summed (each still carried
        through the whole past) and applied, clipped as one, every ``k`` steps, which puts
        them on truncated BPTT's update schedule.
    clip : optional bound on each member's update-gradient norm (all parameters).

    Returns
    -------
    params : the trained parameters (new arrays).
    losses : (M, T) per-step losses.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    x, y, dims = _check_stream(params, x, y)
    M, T, D = x.shape
    H, K = dims["H"], dims["K"]
    if lr is None or isinstance(lr, (str, bytes, bool, np.bool_)) or \
            np.asarray(lr).dtype.kind not in "iuf":
        raise TypeError(f"lr must be a non-negative float or an array of M = {M} of them; got "
                        f"{type(lr).__name__} {lr!r}.")
    lr = np.asarray(lr, dtype=float)
    if lr.ndim > 1 or (lr.ndim == 1 and lr.shape != (M,)):
        raise ValueError(f"lr must be a non-negative float or an array of M = {M} of them; got "
                         f"shape {lr.shape}.")
    lr = np.broadcast_to(lr, (M,)).copy()
    if not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise ValueError(f"lr must be a non-negative float or an array of M = {M} of them; got "
                         f"{lr.tolist()}.")
    if not isinstance(return_state, (bool, np.bool_)):
        raise TypeError(f"return_state must be True or False; got {return_state!r}.")
    eps = check_real("eps", eps, low=0, low_open=True)
    if method == "uoro":
        check_rng("rng", rng)
    k = check_positive_int("k", k)
    if clip is not None:
        clip = check_real("clip", clip, low=0, low_open=True)
    p = {n: np.array(params[n], dtype=float) for n in PARAM_NAMES}
    tables = _index_tables(D, H)
    P = recurrent_size(D, H)
    h = np.zeros((M, H))
    J = np.zeros((M, H, P)) if method in ("rtrl", "reset") else None
    h_t, th_t = (np.zeros((M, H)), np.zeros((M, P))) if method == "uoro" else (None, None)
    losses = np.empty((M, T))
    chunk = []  # tbptt: (x_t, h_prev, h_t, go) of the current chunk
    acc = {n: np.zeros_like(v) for n, v in p.items()}
    for t in range(T):
        xt = x[:, t]
        h_new = np.tanh(np.einsum("mhd,md->mh", p["U"], xt)
                        + np.einsum("mij,mj->mi", p["W"], h) + p["b"])
        if method == "rtrl":
            J = _influence_step(J, xt, h, h_new, p["W"], tables)
        elif method == "reset":
            J = _influence_step(np.zeros_like(J), xt, h, h_new, p["W"], tables)
        elif method == "uoro":
            nu = rng.choice(np.array([-1.0, 1.0]), size=(M, H))
            h_t, th_t = _uoro_step(h_t, th_t, xt, h, h_new, p["W"], nu, eps)
        o = np.einsum("mkh,mh->mk", p["V"], h_new) + p["c"]
        lt, go = _softmax_grad(o, y[:, t])
        losses[:, t] = lt
        acc["V"] += go[:, :, None] * h_new[:, None, :]
        acc["c"] += go
        gh = np.einsum("mk,mkh->mh", go, p["V"])  # dL^(t)/dh^(t)
        if method == "tbptt":
            chunk.append((xt, h, h_new, gh))
        else:
            if method == "uoro":
                g_theta = (gh * h_t).sum(axis=1, keepdims=True) * th_t
            else:
                g_theta = np.einsum("mi,mip->mp", gh, J)
            for n, v in unflatten_recurrent(g_theta, D, H).items():
                acc[n] += v
        h = h_new
        if (t + 1) % k == 0 or t == T - 1:  # one update every k steps
            if method == "tbptt":
                _chunk_backward(chunk, p["W"], acc)
                chunk = []
            scale = lr
            if clip is not None:
                scale = lr * np.minimum(1.0, clip / np.maximum(_member_norm(acc, M), 1e-300))
            for n in PARAM_NAMES:
                p[n] -= scale.reshape((M,) + (1,) * (p[n].ndim - 1)) * acc[n]
                acc[n][...] = 0.0
    if return_state:
        state = {"h": h, "J": J} if method in ("rtrl", "reset") else \
            {"h": h, "h_tilde": h_t, "theta_tilde": th_t} if method == "uoro" else {"h": h}
        return p, losses, state
    return p, losses


def _member_norm(acc, M):
    """Euclidean norm of every member's gradient, scaled first so that it cannot overflow."""
    flat = np.concatenate([v.reshape(M, -1) for v in acc.values()], axis=1)
    big = np.abs(flat).max(axis=1)
    safe = np.where(big > 0, big, 1.0)
    return big * np.sqrt(((flat / safe[:, None]) ** 2).sum(axis=1))


def _chunk_backward(chunk, W, acc):
    """BPTT inside one chunk (members batched); the chunk's first state is a constant."""
    dh_next = np.zeros_like(chunk[0][1])
    for xt, h_prev, h_t, gh in reversed(chunk):
        da = (gh + dh_next) * (1.0 - h_t**2)
        acc["U"] += da[:, :, None] * xt[:, None, :]
        acc["W"] += da[:, :, None] * h_prev[:, None, :]
        acc["b"] += da
        dh_next = np.einsum("mi,mij->mj", da, W)
