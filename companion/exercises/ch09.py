"""Checkers for the exercises of chapter 9 (attention)."""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_additive_attention", "check_alignment_accuracy", "check_source_mask"]


def _case(rng, N, S, Hq, Hk, A, lengths):
    q = rng.normal(size=(N, Hq))
    keys = rng.normal(size=(N, S, Hk))
    mask = np.arange(S)[None, :] < np.asarray(lengths)[:, None]
    keys[~mask] = rng.normal(size=(int((~mask).sum()), Hk)) * 5  # padding is not zero
    W = rng.normal(size=(A, Hq))
    U = rng.normal(size=(A, Hk))
    v = rng.normal(size=A)
    return q, keys, mask, W, U, v


def check_additive_attention(fn) -> None:
    """Exercise 9.1: ``fn(q (N, Hq), keys (N, S, Hk), mask (N, S), W, U, v) ->
    (context (N, Hk), weights (N, S))`` with additive scores."""
    check_callable("fn", fn, "(q, keys, mask, W, U, v) -> (context, weights)")
    from companion.scratch.attention import attention_step

    rng = np.random.default_rng(91)
    for N, S, Hq, Hk, A, lengths in [(1, 3, 2, 2, 3, [3]), (3, 5, 4, 3, 6, [5, 2, 1]),
                                     (2, 4, 3, 5, 2, [4, 4])]:
        q, keys, mask, W, U, v = _case(rng, N, S, Hq, Hk, A, lengths)
        got = fn(q.copy(), keys.copy(), mask.copy(), W.copy(), U.copy(), v.copy())
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return the pair (context, weights).")
        ctx, w = (np.asarray(x, dtype=float) for x in got)
        _require(w.shape == (N, S), f"weights must be (N, S) = {(N, S)}: one weight per "
                 f"source position; got {w.shape}.")
        _require(ctx.shape == (N, Hk), f"the context must be (N, Hk) = {(N, Hk)}, a weighted "
                 f"sum of the keys; got {ctx.shape}.")
        _require(np.all(np.isfinite(w)) and np.all(np.isfinite(ctx)),
                 "your output holds NaN or inf. Exponentiate scores minus their maximum, and "
                 "give padded positions weight 0 rather than exp(-inf) - exp(-inf).")
        ref_ctx, ref_w, _ = attention_step(q, keys, mask, {"W": W, "U": U, "v": v}, "additive")
        _require(np.allclose(w.sum(axis=1), 1.0),
                 "each row of weights must sum to 1: is the softmax over the source axis "
                 "(axis=1), not over the batch?")
        _require(np.all(w[~mask] == 0), "padded positions must get weight exactly 0: mask "
                 "the scores before the softmax, not the weights after it.")
        _require(np.allclose(w, ref_w, atol=1e-10),
                 "the weights are wrong: the score of position j is v . tanh(W q + U k_j); "
                 "W acts on the query, U on each key.")
        _require(np.allclose(ctx, ref_ctx, atol=1e-10),
                 "the weights are right but the context is not: it is sum_j alpha_j k_j, "
                 "the keys themselves weighted, not their projections U k_j.")
    _ok("your additive attention matches the reference, padding included.")


def check_source_mask(fn) -> None:
    """Exercise 9.2: ``fn(src (N, S) ids, pad) -> mask (N, S) bool``, True at real tokens."""
    check_callable("fn", fn, "(src, pad) -> mask")
    rng = np.random.default_rng(92)
    for N, S, pad in [(1, 4, 0), (4, 6, 0), (3, 5, 9)]:
        lengths = rng.integers(1, S + 1, size=N)
        lengths[0] = S
        src = rng.integers(0, 20, size=(N, S))
        src[src == pad] = pad + 1 if pad + 1 < 20 else pad - 1
        for n, L in enumerate(lengths):
            src[n, L:] = pad
        got = np.asarray(fn(src.copy(), pad))
        want = np.arange(S)[None, :] < lengths[:, None]
        _require(got.shape == (N, S), f"the mask must have the shape of src {(N, S)}; got "
                 f"{got.shape}.")
        _require(got.dtype == bool, f"the mask must be boolean (dtype bool); got {got.dtype}. "
                 f"A 0/1 float mask is silently misread by masked_fill and torch's attention.")
        _require(not np.array_equal(got, ~want), "your mask is inverted: this course's mask "
                 "is True at REAL tokens (torch's key_padding_mask is the opposite).")
        _require(np.array_equal(got, want), "the mask must be True exactly where src holds a "
                 "real token and False at the padding positions.")
    _ok("True at real tokens, False at padding.")


def check_alignment_accuracy(fn) -> None:
    """Exercise 9.3: ``fn(weights (L, S), gold pairs (i, j)) -> float``: the fraction of
    output positions with a gold link whose most-attended source position is gold."""
    check_callable("fn", fn, "(weights, gold) -> float")
    from companion.scratch.attention import alignment_accuracy

    rng = np.random.default_rng(93)
    w0 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    cases = [(w0, [(0, 0), (1, 2), (1, 1)]), (w0, [(0, 0), (2, 1), (0, 2)]),
             (w0.T.copy(), [(1, 1)])]
    for _ in range(3):
        L, S = rng.integers(2, 7, size=2)
        w = rng.dirichlet(np.ones(S), size=L)
        gold = [(int(rng.integers(S)), j) for j in range(L) if rng.random() < 0.8]
        gold += [(int(rng.integers(S)), int(rng.integers(L)))]
        cases.append((w, gold))
    for w, gold in cases:
        got = fn(w.copy(), list(gold))
        _require(np.ndim(got) == 0, "return one number, a fraction between 0 and 1.")
        want = alignment_accuracy(w, gold)
        if not np.isclose(float(got), want):
            rows = {j for _, j in gold}
            per_pair = np.mean([w[j].argmax() == i for i, j in gold])
            _require(not np.isclose(float(got), per_pair) or np.isclose(per_pair, want),
                     "count output POSITIONS, not gold pairs: an output token with two gold "
                     "source tokens is right when its argmax hits either of them.")
            _require(not np.isclose(float(got), np.mean([w[:, i].argmax() == j
                                                        for i, j in gold])),
                     "rows are output positions and columns source positions: take the "
                     "argmax along each ROW (axis=1).")
            _require(False, f"not the expected fraction: only the {len(rows)} output "
                     f"positions that have a gold link count, each right when the source "
                     f"position with the largest weight is one of its gold partners.")
    _ok("your alignment accuracy agrees on every test case.")
