"""A character-level language model in NumPy: training with Adam, sampling with temperature.

Chapter 3 ends with this model (in the spirit of Karpathy's min-char-rnn, written
anew on the course's own forward and backward passes). The model is the vanilla RNN
of :mod:`companion.scratch.forward` with one-hot characters as inputs (``D = K =``
vocabulary size) and the next character as the target at every step.

Losses are reported in **bits per character** (bpc): the average of
:math:`-\\log_2 \\hat y^{(t)}_{y^{(t)}}` over characters. A model that ignores context and
predicts each character's overall frequency (the *unigram* baseline) scores the
entropy of the character distribution; anything a recurrent model scores below
that it has learned from context.
"""

from __future__ import annotations

import numpy as np

from collections.abc import Mapping

from companion.checks import (
    as_float_array,
    check_float_dtype,
    check_int_array,
    check_keys,
    check_positive_int,
    check_real,
    check_rng,
    check_shape,
)
from companion.scratch.bptt import rnn_loss_and_grads
from companion.scratch.forward import _log_softmax, check_params, softmax
from companion.scratch.recurrence import _hidden_states
from companion.scratch.init import init_rnn_params

__all__ = [
    "Adam",
    "clip_by_global_norm",
    "evaluate_bpc",
    "one_hot",
    "random_windows",
    "sample",
    "train_char_lm",
    "unigram_bpc",
]

LOG2E = 1.0 / np.log(2.0)


def one_hot(ids, K: int, dtype=np.float64) -> np.ndarray:
    """(..., K) one-hot vectors for ``ids`` in ``[0, K)``, float64 unless ``dtype`` says otherwise."""
    K = check_positive_int("K", K)
    ids = check_int_array("ids", ids, low=0, high=K)
    return np.eye(K, dtype=check_float_dtype("dtype", dtype))[ids]


def random_windows(ids, batch_size: int, seq_len: int, rng):
    """``batch_size`` random windows of ``seq_len`` inputs and their next-character targets.

    Returns ``x_ids`` and ``y_ids``, both (N, T) with ``y_ids[:, t] = x_ids[:, t] + 1``
    position in the text: the target at every step is the character that follows.
    """
    ids = _check_text("ids", ids)
    N = check_positive_int("batch_size", batch_size)
    T = check_positive_int("seq_len", seq_len)
    check_rng("rng", rng)
    if len(ids) < T + 2:
        raise ValueError(
            f"ids must hold more than seq_len + 1 = {T + 1} characters; got {len(ids)}."
        )
    starts = rng.integers(0, len(ids) - T - 1, size=N)
    idx = starts[:, None] + np.arange(T)[None, :]  # (N, T) positions in the text
    return ids[idx], ids[idx + 1]


def _check_text(name, ids, high=None):
    ids = check_int_array(name, ids, low=0, high=high)
    check_shape(name, ids, ("L",), hint="Token ids of one text, a 1-D array.")
    return ids


def _check_grads(grads, *, name="grads"):
    """grads: a dict of float NumPy arrays (updated in place), every entry finite."""
    if not isinstance(grads, Mapping):
        raise TypeError(
            f"{name} must be a dict mapping parameter names to arrays, as returned by "
            f"rnn_loss_and_grads; got {type(grads).__name__}."
        )
    for k, g in grads.items():
        if not isinstance(g, np.ndarray):
            raise TypeError(
                f"{name}[{k!r}] must be a NumPy array (scaled in place); got {type(g).__name__}."
            )
        as_float_array(f"{name}[{k!r}]", g)  # floats, and finite: a NaN names its parameter
    return grads


def clip_by_global_norm(grads: dict, max_norm: float):
    """Rescale all gradients together so that their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping. (Chapter 5 explains why and compares variants.)
    A NaN or infinite gradient raises ``ValueError`` naming the parameter.
    """
    max_norm = check_real("max_norm", max_norm, low=0, low_open=True,
                          hint="Typical values are 1 to 5.")
    _check_grads(grads)
    with np.errstate(over="ignore"):  # an overflow is reported below, with its cause
        norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    if not np.isfinite(norm):
        raise ValueError(
            "gradient norm is not finite (every entry is finite, but their squares overflow); "
            "the loss has diverged (lower the learning rate)."
        )
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


class Adam:
    """Adam (Kingma & Ba, 2015) for a dict of NumPy parameters, updated in place.

    ``m`` and ``v`` are running means of the gradient and of its square; with the
    bias corrections they make every parameter's step roughly ``lr`` in size,
    whatever the scale of its gradient.
    """

    def __init__(self, params: dict, lr: float = 3e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = _check_grads(params, name="params")
        self.lr = check_real("lr", lr, low=0, low_open=True, hint="3e-3 is a good start.")
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2):
            raise TypeError(f"betas must be a pair (beta1, beta2) such as (0.9, 0.999); "
                            f"got {betas!r}.")
        self.betas = tuple(check_real(f"betas[{i}]", b, low=0, high=1, high_open=True)
                           for i, b in enumerate(betas))
        self.eps = check_real("eps", eps, low=0, low_open=True)
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict) -> None:
        """One update from ``grads``, a dict with exactly the keys of ``params``.

        Everything is checked before any parameter changes: the keys, each gradient's
        shape, and that no gradient holds NaN or inf (the error names the parameter).
        """
        check_keys("grads", grads, self.params, what="the optimiser's params")
        _check_grads(grads)
        for k, p in self.params.items():
            check_shape(f"grads[{k!r}]", grads[k], p.shape,
                        hint="A gradient has the shape of its parameter.")
        self.t += 1
        b1, b2 = self.betas
        for k, p in self.params.items():
            g = grads[k]
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def unigram_bpc(train_ids, eval_ids, K: int) -> float:
    """Bits per character of the context-free baseline: character frequencies from
    ``train_ids`` (add-one smoothed), scored on ``eval_ids``."""
    K = check_positive_int("K", K)
    tr = _check_text("train_ids", train_ids, high=K)
    ev = _check_text("eval_ids", eval_ids, high=K)
    if ev.size == 0:
        raise ValueError("eval_ids must hold at least one id to score; got an empty array.")
    counts = np.bincount(tr, minlength=K) + 1.0
    logp = np.log2(counts / counts.sum())
    return float(-logp[ev].mean())


def evaluate_bpc(params, ids, *, streams: int = 16) -> float:
    """Bits per character of the model on ``ids``, read as ``streams`` parallel pieces.

    The text is cut into ``streams`` contiguous pieces of equal length, each read from
    a zero state; every character but the first of each piece is predicted.
    """
    dims = check_params(params)
    K = dims["K"]
    if dims["D"] != K:
        raise ValueError(f"params must be a language model with D = K; got D={dims['D']}, K={K}.")
    ids = _check_text("ids", ids, high=K)
    S = check_positive_int("streams", streams)
    L = len(ids) // S
    if L < 2:
        raise ValueError(
            f"ids must hold at least 2 characters per stream ({2 * S}); got {len(ids)}."
        )
    seq = ids[: S * L].reshape(S, L)  # (S, L): S contiguous pieces of the text
    dt = params["W"].dtype
    x = one_hot(seq[:, :-1], K, dt)
    h = _hidden_states(x, np.zeros((S, dims["H"]), dtype=dt), params["U"], params["W"], params["b"])
    o = h @ params["V"].T + params["c"]  # (S, L-1, K)
    logp = np.take_along_axis(_log_softmax(o), seq[:, 1:, None], axis=-1)
    return float(-logp.astype(np.float64).mean() * LOG2E)


def train_char_lm(train_ids, vocab_size: int, rng, *, hidden_size: int = 128,
                  seq_len: int = 32, batch_size: int = 32, steps: int = 1000,
                  lr: float = 3e-3, clip: float = 5.0, eval_ids=None,
                  eval_every: int = 100, dtype=np.float32) -> tuple[dict, dict]:
    """Train a character RNN with Adam on random windows of the text.

    Parameters
    ----------
    train_ids : (L,) ints in ``[0, vocab_size)``.
    vocab_size : int, ``D = K``.
    rng : numpy.random.Generator (initialisation, batches).
    hidden_size, seq_len, batch_size, steps, lr, clip : the usual knobs; ``clip`` is a
        global-norm threshold.
    eval_ids : optional held-out ids, scored with :func:`evaluate_bpc` every ``eval_every`` steps.
    dtype : float type of the parameters during training. float32 (the default) is about
        twice as fast as float64 and plenty for training; gradient *checks* need float64.

    Returns
    -------
    params : the trained parameter dict.
    history : dict of lists: ``step``, ``train_bpc`` (every step, on the batch),
        ``eval_step`` and ``eval_bpc``.
    """
    K = check_positive_int("vocab_size", vocab_size)
    ids = _check_text("train_ids", train_ids, high=K)
    check_rng("rng", rng)
    steps = check_positive_int("steps", steps)
    eval_every = check_positive_int("eval_every", eval_every)
    H = check_positive_int("hidden_size", hidden_size)
    seq_len = check_positive_int("seq_len", seq_len)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_real("lr", lr, low=0, low_open=True, hint="3e-3 is a good start.")
    clip = check_real("clip", clip, low=0, low_open=True,
                      hint="It is a global-norm threshold; 5.0 is typical (there is no off).")
    if len(ids) < seq_len + 2:
        raise ValueError(
            f"train_ids must hold more than seq_len + 1 = {seq_len + 1} ids; got {len(ids)}."
        )
    if eval_ids is not None:
        eval_ids = _check_text("eval_ids", eval_ids, high=K)
    dtype = check_float_dtype("dtype", dtype)
    params = {k: v.astype(dtype) for k, v in init_rnn_params(K, H, K, rng).items()}
    opt = Adam(params, lr=lr)
    history = {"step": [], "train_bpc": [], "eval_step": [], "eval_bpc": []}
    for step in range(1, steps + 1):
        xi, yi = random_windows(ids, batch_size, seq_len, rng)
        loss, grads, _ = rnn_loss_and_grads(params, one_hot(xi, K, dtype), yi)
        if not np.isfinite(loss):
            raise ValueError(f"the loss became {loss} at step {step}; lower lr or clip harder.")
        grads.pop("h0")
        clip_by_global_norm(grads, clip)
        opt.step(grads)
        history["step"].append(step)
        history["train_bpc"].append(loss / seq_len * LOG2E)  # loss sums over T steps
        if eval_ids is not None and (step % eval_every == 0 or step == steps):
            history["eval_step"].append(step)
            history["eval_bpc"].append(evaluate_bpc(params, eval_ids))
    return params, history


def sample(params, prime_ids, length: int, rng, *, temperature: float = 1.0) -> np.ndarray:
    """Generate ``length`` character ids after reading ``prime_ids``.

    At each step the logits are divided by ``temperature`` before the softmax:
    below 1 the distribution sharpens towards the most likely character (at the limit,
    greedy decoding), above 1 it flattens towards uniform.

    Returns
    -------
    (length,) int64 ids (the prime is not included).
    """
    dims = check_params(params)
    K, H = dims["K"], dims["H"]
    if dims["D"] != K:
        raise ValueError(f"params must be a language model with D = K; got D={dims['D']}, K={K}.")
    prime = check_int_array("prime_ids", prime_ids, low=0, high=K)
    if prime.ndim != 1 or len(prime) == 0:
        raise ValueError(
            f"prime_ids must be a non-empty 1-D sequence of ids; got shape {prime.shape}."
        )
    length = check_positive_int("length", length)
    check_rng("rng", rng)
    temperature = check_real("temperature", temperature, low=0, low_open=True,
                             hint="1.0 samples from the model as it is.")
    U, W, V, b, c = (params[k] for k in ("U", "W", "V", "b", "c"))
    h = np.zeros(H)
    for i in prime[:-1]:
        h = np.tanh(U[:, i] + W @ h + b)  # U @ onehot(i) is column i of U
    out = np.empty(length, dtype=np.int64)
    cur = prime[-1]
    for t in range(length):
        h = np.tanh(U[:, cur] + W @ h + b)
        p = softmax((V @ h + c) / temperature)
        cur = out[t] = rng.choice(K, p=p)
    return out
