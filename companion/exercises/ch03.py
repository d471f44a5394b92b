"""Checkers for the exercises of chapter 3 (Forward propagation).

Each ``check_*`` function runs the reader's answer on fixed inputs and on inputs drawn
afresh from :func:`~companion.exercises.unseen_rng`, compares it with values the checker
computes itself (outside the answer's call, with its own few lines of NumPy), prints a
one-line verdict when it is right and raises ``AssertionError`` with a hint when it is not.
During the answer's call the package's and torch's implementations of the same
computation are disabled (:func:`~companion.exercises.references_disabled`).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import finite as _finite
from companion.exercises import unchanged as _unchanged
from companion.exercises import references_disabled
from companion.exercises import require as _require
from companion.exercises import unseen_rng

__all__ = ["check_forward_padded", "check_best_constant_loss",
           "check_temperature_for_perplexity"]



def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_TORCH_RNN = ("torch.nn.RNN", "torch.nn.modules.rnn.RNN", "torch.nn.RNNCell",
              "torch.nn.utils.rnn.pack_padded_sequence")
# Everything that runs the forward recurrence for the answer.
_FORWARD_REFERENCES = (
    "companion.scratch.forward.rnn_forward",
    "companion.scratch.forward.rnn_step_forward",
    "companion.scratch.recurrence.rnn_hidden_states",
    "companion.scratch.recurrence.rnn_step",
    "companion.scratch.recurrence._hidden_states",
    "companion.scratch.recurrence.unroll",
    "companion.scratch.patterns.seq2vec_forward",
    "companion.scratch.longterm.leaky_hidden_states",
    "companion.exercises.ch03._run",
) + (_TORCH_RNN if _installed("torch") else ())
_TORCH_SOFTMAX = ("torch.softmax", "torch.log_softmax", "torch.nn.functional.softmax",
                  "torch.nn.functional.log_softmax", "torch.nn.functional.cross_entropy",
                  "torch.nn.functional.nll_loss")
_SCIPY_SOFTMAX = ("scipy.special.softmax", "scipy.special.log_softmax")
_SOFTMAX_REFERENCES = (
    "companion.scratch.forward.softmax",
    "companion.scratch.forward.log_softmax",
    "companion.scratch.forward.sequence_nll",
    "companion.scratch.charlm.unigram_bpc",
    "companion.exercises.ch03._best_constant_loss",
    "companion.exercises.ch03._perplexity",
) + (_TORCH_SOFTMAX if _installed("torch") else ()) + (
    _SCIPY_SOFTMAX if _installed("scipy") else ())


def _scalar(value, what: str) -> float:
    arr = _finite(value, what)
    _require(arr.size == 1, f"{what} must be one number; got an array of shape {arr.shape}.")
    return float(arr.reshape(()))


# ---------------------------------------------------------------- Exercise 3.1 ----------

def _params(rng, D: int, H: int, K: int) -> dict:
    return {"U": rng.normal(0, D ** -0.5, (H, D)), "W": rng.normal(0, 0.9 * H ** -0.5, (H, H)),
            "V": rng.normal(0, H ** -0.5, (K, H)), "b": rng.normal(0, 0.2, H),
            "c": rng.normal(0, 0.2, K)}


def _run(x, params, h0, lengths=None):
    """States (N, T, H); with ``lengths`` the state is frozen after each sequence's end."""
    N, T, _ = x.shape
    h_prev, hs = h0, []
    for t in range(T):
        h_new = np.tanh(x[:, t] @ params["U"].T + h_prev @ params["W"].T + params["b"])
        if lengths is not None:
            real = (t < lengths)[:, None]
            h_new = np.where(real, h_new, h_prev)
        hs.append(h_new)
        h_prev = h_new
    return np.stack(hs, axis=1)


def _padded_cases(rng):
    fixed = [(3, 7, 4, 6, 5, [7, 3, 5]), (2, 5, 2, 3, 4, [1, 5]), (4, 6, 3, 4, 3, [0, 6, 2, 6])]
    drawn = []
    for _ in range(6):
        N, T = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        lengths = rng.integers(0, T + 1, size=N)
        lengths[rng.integers(N)] = T                      # the longest fills the tensor
        drawn.append((N, T, int(rng.integers(1, 5)), int(rng.integers(1, 7)),
                      int(rng.integers(2, 6)), lengths.tolist()))
    return fixed + drawn


def check_forward_padded(fn) -> None:
    """Exercise 3.1: ``fn(x, lengths, params, h0) -> (h, o_last)`` on a padded batch.

    ``h`` (N, T, H): the states, frozen at each sequence's last real state over its padded
    steps (``h0`` if it has none); ``o_last`` (N, K): the logits ``c + V h`` read from each
    sequence's last real state.
    """
    rng = unseen_rng()
    for N, T, D, H, K, lengths in _padded_cases(rng):
        lengths = np.asarray(lengths, dtype=np.int64)
        params = _params(rng, D, H, K)
        x = rng.normal(size=(N, T, D))
        pad = np.arange(T)[None, :] >= lengths[:, None]              # (N, T) padded steps
        x[pad] = rng.choice([-1.0, 1.0], size=(int(pad.sum()), D)) * rng.uniform(20, 50, (int(pad.sum()), D))
        h0 = rng.normal(0, 0.5, (N, H))
        h_ref = _run(x, params, h0, lengths)
        o_ref = h_ref[:, -1] @ params["V"].T + params["c"]
        h_unmasked = _run(x, params, h0)

        passed = (x.copy(), lengths.copy(), {k: v.copy() for k, v in params.items()},
                  h0.copy())
        with references_disabled(fn, *_FORWARD_REFERENCES):
            out = fn(*passed)
        for name, original, after in zip(("x", "lengths", "h0"), (x, lengths, h0),
                                         passed[:2] + passed[3:]):
            _unchanged(original, after, name)
        for name in params:
            _unchanged(params[name], passed[2][name], f'params["{name}"]')
        _require(isinstance(out, tuple) and len(out) == 2, "Return a pair (h, o_last).")
        h, o_last = _finite(out[0], "h"), _finite(out[1], "o_last")
        _require(h.shape == (N, T, H), (
            f"h should be (N, T, H) = ({N}, {T}, {H}), batch-first; got {h.shape}."))
        _require(o_last.shape == (N, K), (
            f"o_last should be (N, K) = ({N}, {K}): one vector of logits per sequence; got "
            f"{o_last.shape}."))
        real = ~pad
        if not np.allclose(h[real], h_ref[real], atol=1e-10):
            first = np.tanh(x[:, 0] @ params["U"].T + params["b"])
            ignores_h0 = np.allclose(h[:, 0][real[:, 0]], first[real[:, 0]], atol=1e-10)
            _require(not ignores_h0, "The first state ignores h0: start from h_prev = h0.")
            _require(False, (
                "The states at real steps differ. Check a = x_t @ U.T + h_prev @ W.T + b "
                "(weights are stored (out, in)) and that h_prev is updated at every step."))
        if not np.allclose(h[pad], h_ref[pad], atol=1e-10):
            read_padding = np.allclose(h[pad], h_unmasked[pad], atol=1e-10)
            zeroed = np.allclose(h[pad], 0.0)
            _require(False, (
                "At padded steps your state keeps reading the padding: it must stay at the "
                "sequence's last real state (a masked update), whatever the padding holds."
                if read_padding else
                "At padded steps your state is zero: it must be carried, unchanged, from the "
                "sequence's last real state (h0 for a sequence with no real step)."
                if zeroed else
                "At padded steps the state must stay at the sequence's last real state (h0 "
                "for a sequence with no real step)."))
        if not np.allclose(o_last, o_ref, atol=1e-10):
            empty = lengths == 0
            if empty.any() and np.allclose(o_last[~empty], o_ref[~empty], atol=1e-10):
                _require(False, (
                    "o_last is wrong for a sequence with no real step: its last real state is "
                    "h0 itself (index lengths - 1 = -1 would pick the last padded step)."))
            _require(False, (
                "The states are right but o_last is not: o_last = c + V h, read from each "
                "sequence's last real state."))
    _ok("your forward pass carries each state through its padding and reads out the last "
        "real one, on every padded batch tried.")


# ---------------------------------------------------------------- Exercise 3.2 ----------

def _best_constant_loss(y: np.ndarray, K: int) -> float:
    counts = np.bincount(y.ravel(), minlength=K).astype(float)
    freq = counts / counts.sum()
    seen = counts > 0
    return float(-(counts[seen] * np.log(freq[seen])).sum() / y.shape[0])


def check_best_constant_loss(fn) -> None:
    """Exercise 3.2: ``fn(y, K) -> float``, the smallest loss (summed over time, mean over the
    batch) that one logit vector, shared by every step and sequence, can reach on ``y``."""
    rng = unseen_rng()
    cases = [(np.array([[0, 1, 0, 2]]), 3), (np.zeros((2, 5), dtype=int), 4),
             (np.tile(np.arange(6), (3, 2)), 6), (np.array([[1, 1, 3], [3, 3, 1]]), 5)]
    for _ in range(12):
        N, T, K = int(rng.integers(1, 9)), int(rng.integers(1, 60)), int(rng.integers(2, 100))
        p = rng.dirichlet(np.full(K, float(rng.uniform(0.05, 2.0))))
        cases.append((rng.choice(K, size=(N, T), p=p), K))
    for y, K in cases:
        expected = _best_constant_loss(y, K)
        passed = y.copy()
        with references_disabled(fn, *_SOFTMAX_REFERENCES):
            got = fn(passed, K)
        _unchanged(y, passed, "y")
        got = _scalar(got, "your loss")
        N, T = y.shape
        if not np.isclose(got, expected, rtol=1e-9, atol=1e-12):
            uniform = T * np.log(K)
            _require(not np.isclose(got, uniform) or np.isclose(uniform, expected), (
                "That is the loss of equal logits, tau log K: an upper bound on the best "
                "constant model, reached only when every class is equally frequent. Which "
                "logits minimise the loss when the classes have different frequencies?"))
            _require(not np.isclose(got * T, expected) and not np.isclose(got * N, expected), (
                "Check the scale: the loss sums over the T steps and averages over the N "
                "sequences."))
            _require(not np.isclose(got * np.log(2), expected), (
                "Use natural logarithms: the loss is in nats, not bits."))
            _require(False, (
                f"for y of shape {y.shape} and K={K} your value is not the smallest loss of "
                f"a constant logit vector. Set the gradient of the loss with respect to the "
                f"logits to zero: what must softmax(c) equal? Classes that never occur "
                f"contribute nothing."))
    _ok("your value is the loss of the best context-free model on every target batch tried.")


# ---------------------------------------------------------------- Exercise 3.3 ----------

def _perplexity(o: np.ndarray, kappa: float) -> float:
    z = o / kappa
    z = z - z.max()
    logp = z - np.log(np.exp(z).sum())
    return float(np.exp(-(np.exp(logp) * logp).sum()))


def check_temperature_for_perplexity(fn) -> None:
    """Exercise 3.3: ``fn(o, perplexity) -> kappa > 0`` with perplexity(softmax(o / kappa))
    equal to ``perplexity``, for 1-D logits ``o`` without ties and 1 < perplexity < K."""
    rng = unseen_rng()
    o_page = np.array([2.0, 1.0, 0.0, -1.0])
    cases = [(o_page, 2.0), (o_page, 3.5), (o_page, 1.1), (np.array([1000.0, 999.0, 0.0]), 1.5),
             (np.array([-3.0, 4.0]), 1.9)]
    for _ in range(12):
        K = int(rng.integers(2, 60))
        o = rng.normal(size=K) * 10.0 ** rng.uniform(-1, 3)
        cases.append((o, float(1.0 + rng.uniform(0.03, 0.97) * (K - 1.0))))
    for o, target in cases:
        passed = o.copy()
        with references_disabled(fn, *_SOFTMAX_REFERENCES):
            got = fn(passed, target)
        _unchanged(o, passed, "o")
        kappa = _scalar(got, "your temperature")
        _require(kappa > 0, "The temperature must be positive.")
        ppl = _perplexity(o, kappa)
        _require(np.isclose(ppl, target, rtol=1e-6), (
            f"for {len(o)} logits and a target perplexity of {target:.4g}, the perplexity "
            f"at your temperature is {ppl:.4g}. The perplexity is exp of the entropy in nats; "
            f"it grows with the temperature, from 1 towards K, so a bisection on log kappa "
            f"finds it. Keep the softmax stable: shift by the largest scaled logit."))
    _ok("your temperatures hit every target perplexity, for small and very large logits.")
