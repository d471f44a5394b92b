"""Checkers for the exercises of chapter 7 (vector-to-sequence, teacher forcing, decoding)."""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_beam_step", "check_nucleus", "check_shift"]


def check_shift(fn) -> None:
    """Exercise 7.1: ``fn(targets, bos, pad) -> inputs`` for teacher forcing (NumPy ints)."""
    check_callable("fn", fn, "(targets, bos, pad) -> inputs")
    from companion.data.captions import shift_right

    rng = np.random.default_rng(71)
    for N, T, bos, pad in [(1, 3, 1, 0), (4, 6, 1, 0), (3, 5, 7, 9)]:
        targets = rng.integers(10, 20, size=(N, T))
        targets[0, -1] = pad
        got = np.asarray(fn(targets.copy(), bos, pad))
        _require(got.shape == targets.shape, f"inputs must have the shape of targets {targets.shape}; got {got.shape}. One "
            f"token in per token out: drop the last target, do not append.")
        want = shift_right(targets, bos=bos, pad=pad)
        _require(np.array_equal(got[:, 0], want[:, 0]), "the first input of every row must be the begin token bos: at step 1 nothing "
            "has been generated yet.")
        _require(np.array_equal(got, want), "the inputs at step t must be the TARGET at step t-1 (shift right by one). "
            "Check the direction: feeding targets[:, t] at step t lets the model copy its answer.")
    _ok("your inputs are the targets shifted right by one, with <bos> first.")


def _ref_beam_step(totals, log_probs, beam_width):
    cand = totals[:, None] + log_probs
    flat = cand.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:beam_width]
    K = log_probs.shape[1]
    return order // K, order % K, flat[order]


def check_beam_step(fn) -> None:
    """Exercise 7.2: ``fn(totals (B,), log_probs (B, K), beam_width) -> (parents, tokens,
    new_totals)``, the ``beam_width`` best one-token extensions, best first."""
    check_callable("fn", fn, "(totals, log_probs, beam_width) -> (parents, tokens, totals)")
    rng = np.random.default_rng(72)
    for B, K, width in [(1, 4, 1), (1, 5, 3), (3, 6, 3), (4, 3, 5), (2, 7, 2)]:
        totals = -rng.gamma(2.0, 1.0, size=B)
        logits = rng.normal(size=(B, K)) * 2
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        got = fn(totals.copy(), log_probs.copy(), width)
        _require(isinstance(got, tuple) and len(got) == 3, "return the triple (parents, tokens, totals)")
        parents, tokens, new = (np.asarray(v) for v in got)
        p_ref, t_ref, n_ref = _ref_beam_step(totals, log_probs, width)
        _require(parents.shape == (width,) and tokens.shape == (width,), f"with B={B} hypotheses and beam_width={width}, return {width} survivors; got "
            f"shapes {parents.shape} and {tokens.shape}.")
        _require(np.allclose(new, totals[parents] + log_probs[parents, tokens]), "each new total must be its parent's total PLUS the log-probability of the "
            "chosen token (log-probabilities add along a sequence).")
        _require(np.allclose(np.sort(new)[::-1], n_ref), "you kept the wrong candidates. Rank all B*K extensions TOGETHER by total "
            "log-probability, not the best token of each hypothesis separately.")
        _require(np.all(np.diff(new) <= 1e-12), "sort the survivors best first.")
        _require(np.array_equal(parents, p_ref) and np.array_equal(tokens, t_ref), "the totals are right but parents/tokens are not: each survivor's parent is the "
            "ROW of the (B, K) candidate table it came from and its token the COLUMN; check "
            "how you turn a position in the flattened table back into the two.")
    _ok("your beam step keeps the best extensions over all hypotheses together.")


def check_nucleus(fn) -> None:
    """Exercise 7.3: ``fn(probs (K,), p) -> probs`` after nucleus (top-p) filtering."""
    check_callable("fn", fn, "(probs, p) -> probs")
    rng = np.random.default_rng(73)
    cases = [(np.array([0.5, 0.3, 0.15, 0.05]), 0.7), (np.array([0.1, 0.6, 0.3]), 0.5),
             (np.array([0.25, 0.25, 0.25, 0.25]), 1.0), (rng.dirichlet(np.ones(8)), 0.9),
             (np.array([0.2, 0.8]), 1e-9)]
    for probs, p in cases:
        got = np.asarray(fn(probs.copy(), p), dtype=float)
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[before < p]] = True
        want = np.where(keep, probs, 0.0)
        want = want / want.sum()
        _require(got.shape == probs.shape, f"return a vector of shape {probs.shape}; got {got.shape}.")
        _require(np.isclose(got.sum(), 1.0), "renormalise: the kept probabilities must sum to 1.")
        _require(np.array_equal(got > 0, keep), "the wrong tokens were kept. Keep the most probable tokens, in decreasing order, "
            "until their total reaches p; the token that crosses p stays, and the top token "
            "always stays (even for a tiny p).")
        _require(np.allclose(got, want), "the kept tokens must keep their relative probabilities.")
    _ok("your nucleus filter keeps the smallest top set reaching p, renormalised.")
