"""Synthetic tagging tasks for chapters 10 and 11: one label per input token.

All tasks return ``(tokens, labels)``, two int64 NumPy arrays of shape (N, T),
batch-first, generated from a seed (never downloaded).

* :func:`lookahead_tagging` -- the label of step ``t`` is the pair
  ``(x[t - behind], x[t + ahead])``, coded as ``V * x[t - behind] + x[t + ahead]``
  (``V**2`` classes; a token outside the sequence counts as 0).
  With ``ahead > 0`` the label needs the *future*; with ``behind > 0`` it also needs
  the past, so neither a left-to-right nor a right-to-left model can solve it alone.
  :func:`causal_ceiling` is the best accuracy any model that has read only
  ``x[0..t+k]`` when it labels step ``t`` can reach.
* :func:`word_parity` -- the input is a stream of two-token "words". Hierarchical
  version: each word maps to a bit (``(a + b) mod V >= V / 2``, not a linear function
  of the one-hot tokens), and the label at step ``t`` is the parity of the bits of the
  words completed so far: a feature of a feature. Flat version: the label is the parity
  of the number of zero tokens read so far: one level, no composition. The two have the
  same input distribution, the same length and the same two classes.
"""

from __future__ import annotations

import numpy as np

from companion.checks import check_int_array, check_positive_int, check_rng

__all__ = ["lookahead_tagging", "causal_ceiling", "word_parity", "majority_baseline"]


def _rng(rng, seed):
    if (rng is None) == (seed is None):
        raise ValueError("pass exactly one of rng=np.random.default_rng(...) or seed=<int>.")
    if rng is None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TypeError(f"seed must be an int >= 0; got {type(seed).__name__} {seed!r}.")
        return np.random.default_rng(int(seed))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        raise TypeError(f"rng must be a numpy.random.Generator; got the int {rng!r}. Pass "
                        f"seed={rng!r} instead, or rng=np.random.default_rng({rng!r}).")
    return check_rng("rng", rng)


def lookahead_tagging(n: int, length: int, *, ahead: int = 2, behind: int = 0,
                      vocab: int = 4, rng=None, seed=None):
    """Tokens uniform in ``0..vocab-1``; label ``y[t] = vocab * x[t - behind] + x[t + ahead]``.

    Returns ``(tokens, labels)``, each (n, length) int64, labels in ``0..vocab**2 - 1``.
    Tokens outside ``0..length-1`` count as 0, so the last ``ahead`` labels depend on
    the past only. The label is a pair rather than, say, a sum modulo ``vocab``: a
    pair's score can be split into a part from the past and a part from the future,
    which a linear read-out of ``[h, g]`` can add; a sum modulo ``vocab`` would also
    need a nonlinear read-out.

    >>> x, y = lookahead_tagging(2, 6, ahead=2, behind=0, vocab=4, seed=0)
    >>> bool((4 * x[:, 0] + x[:, 2] == y[:, 0]).all()), bool((y[:, 5] == 4 * x[:, 5]).all())
    (True, True)
    """
    n = check_positive_int("n", n)
    T = check_positive_int("length", length)
    ahead = check_positive_int("ahead", ahead, minimum=0)
    behind = check_positive_int("behind", behind, minimum=0)
    V = check_positive_int("vocab", vocab, minimum=2)
    if ahead >= T or behind >= T:
        raise ValueError(f"ahead and behind must be < length={T}; got ahead={ahead}, "
                         f"behind={behind}. Use a longer sequence.")
    x = _rng(rng, seed).integers(0, V, size=(n, T))
    padded = np.concatenate([np.zeros((n, behind), np.int64), x,
                             np.zeros((n, ahead), np.int64)], axis=1)  # (n, behind+T+ahead)
    past = padded[:, :T]                     # x[t - behind]
    future = padded[:, behind + ahead:]      # x[t + ahead]
    return x.astype(np.int64), (V * past + future).astype(np.int64)


def causal_ceiling(length: int, *, ahead: int, vocab: int, delay: int = 0) -> float:
    """Best expected accuracy of a model that labels step ``t`` after reading ``x[0..t+delay]``.

    Where ``x[t + ahead]`` is already read (``delay >= ahead``) or lies beyond the end
    (``t + ahead >= length``), the label is determined: accuracy 1. Elsewhere the unseen
    token is uniform and independent, so the ``vocab`` labels that agree with the past
    are equally likely: accuracy ``1 / vocab``. The ceiling is the average over the
    ``length`` positions.

    >>> causal_ceiling(12, ahead=2, vocab=4)
    0.375
    """
    T = check_positive_int("length", length)
    ahead = check_positive_int("ahead", ahead, minimum=0)
    V = check_positive_int("vocab", vocab, minimum=2)
    k = check_positive_int("delay", delay, minimum=0)
    if ahead >= T:
        raise ValueError(f"ahead must be < length={T}; got ahead={ahead}.")
    if k >= ahead:
        return 1.0
    known = min(ahead, T)  # positions t >= T - ahead
    return (known + (T - known) / V) / T


def word_parity(n: int, length: int, *, hierarchical: bool = True, vocab: int = 4,
                rng=None, seed=None):
    """Running parity over a stream of two-token words; see the module docstring.

    Returns ``(tokens, labels)`` (n, length) int64, labels in {0, 1}. ``length`` must be
    even. Hierarchical: ``y[t]`` = parity of ``sum_j bit(word_j)`` over the words ending
    at or before ``t`` (``bit(a, b) = (a + b) % V >= V // 2``). Flat: ``y[t]`` = parity
    of the number of tokens equal to 0 in ``x[0..t]``.

    >>> x, y = word_parity(1, 4, hierarchical=False, seed=0)
    >>> bool((y[0] == np.cumsum(x[0] == 0) % 2).all())
    True
    """
    n = check_positive_int("n", n)
    T = check_positive_int("length", length, minimum=2)
    V = check_positive_int("vocab", vocab, minimum=2)
    if T % 2:
        raise ValueError(f"length must be even (two-token words); got {T}.")
    if not isinstance(hierarchical, bool):
        raise TypeError(f"hierarchical must be True or False; got {hierarchical!r}.")
    x = _rng(rng, seed).integers(0, V, size=(n, T)).astype(np.int64)
    if hierarchical:
        words = x.reshape(n, T // 2, 2)                              # (n, T/2, 2)
        bits = ((words[..., 0] + words[..., 1]) % V >= V // 2)       # (n, T/2)
        ends = np.zeros((n, T), np.int64)
        ends[:, 1::2] = bits                                         # bit counted at word end
        y = np.cumsum(ends, axis=1) % 2
    else:
        y = np.cumsum(x == 0, axis=1) % 2
    return x, y.astype(np.int64)


def majority_baseline(train_labels, test_labels) -> float:
    """Accuracy on ``test_labels`` of always predicting the most frequent training label."""
    def labels(name, value):
        if type(value).__module__.startswith("torch"):
            value = value.detach().cpu().numpy()
        if np.size(value) == 0:
            raise ValueError(f"{name} must be non-empty; got an empty array.")
        return check_int_array(name, value, low=0).ravel()

    tr = labels("train_labels", train_labels)
    te = labels("test_labels", test_labels)
    mode = np.bincount(tr.astype(np.int64)).argmax()
    return float((te == mode).mean())
