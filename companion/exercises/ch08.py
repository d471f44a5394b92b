"""Checkers for the exercises of chapter 8 (the encoder-decoder)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_masked_mean", "check_reverse_and_pad", "check_sequence_scores"]


def _to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_masked_mean(fn) -> None:
    """Exercise 8.1: ``fn(nll, tgt_out, pad)`` -> the mean of ``nll`` (N, L) over the
    positions where ``tgt_out`` is not ``pad``."""
    import torch

    rng = np.random.default_rng(8)
    for N, L in [(1, 1), (3, 5), (4, 7)]:
        lengths = rng.integers(1, L + 1, size=N)
        lengths[0] = L
        tgt = torch.zeros(N, L, dtype=torch.long)
        for n, m in enumerate(lengths):
            tgt[n, :m] = torch.as_tensor(rng.integers(1, 9, size=m))
        nll = torch.as_tensor(rng.uniform(0.1, 3.0, size=(N, L)))
        real = tgt != 0
        ref = float(nll[real].mean())
        got = fn(nll.clone(), tgt.clone(), 0)
        got = float(_to_numpy(got))
        _require(np.isfinite(got), "your loss is not finite: is the denominator zero?")
        every = float(nll.mean())
        per_seq = float(np.mean([float(nll[n, :m].mean()) for n, m in enumerate(lengths)]))
        if abs(got - ref) > 1e-9:
            if abs(got - every) < 1e-9:
                _require(False, "you averaged over every position: padded positions are "
                                "counted as if they were tokens. Use only the real ones.")
            if abs(got - per_seq) < 1e-9 and abs(per_seq - ref) > 1e-9:
                _require(False, "you averaged each sequence first and then the sequences: "
                                "short sequences then weigh more per token. Average over all "
                                "real tokens of the batch at once.")
            _require(False, "not the mean over the real (non-padding) target positions. "
                            "Build the mask from tgt_out and pad, zero the rest, divide by "
                            "the number of real positions.")
    _ok("padding adds nothing to your loss and every real token weighs the same.")


def check_reverse_and_pad(fn) -> None:
    """Exercise 8.2: ``fn(seqs, pad)`` -> ``(padded (N, S) long tensor, lengths (N,))`` with
    every sequence reversed and the padding at the end."""
    import torch

    cases = [[[5]], [[4, 5, 6], [7, 8], [9]], [[1, 2], [3, 4, 5, 6], [7, 8, 9]]]
    for seqs in cases:
        got = fn([list(s) for s in seqs], 0)
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return a pair (padded, lengths).")
        padded, lengths = (_to_numpy(g) for g in got)
        S = max(len(s) for s in seqs)
        _require(padded.shape == (len(seqs), S),
                 f"padded must be (N, S) = ({len(seqs)}, {S}): one row per sequence, as "
                 f"long as the longest.")
        _require(padded.dtype.kind in "iu", "padded must hold integer token ids.")
        _require([int(v) for v in lengths] == [len(s) for s in seqs],
                 "lengths must be the number of real tokens in each row.")
        for row, s in zip(padded, seqs):
            m = len(s)
            if list(row[:m]) != s[::-1]:
                right_aligned = list(row[S - m:]) == s[::-1]
                _require(False, "the padding must stay at the end of each row (pack_padded_"
                                "sequence and the masks assume it): reverse each sequence "
                                "first, then pad." if right_aligned or list(row[S - m:]) ==
                         s[::-1] else "each row must hold its sequence reversed, then padding.")
            _require(all(int(v) == 0 for v in row[m:]), "pad every row after its last token.")
    t = fn([[3, 1, 2]], 0)[0]
    _require(isinstance(t, torch.Tensor) and t.dtype == torch.long,
             "padded must be a torch LongTensor (embedding layers need torch.long).")
    _ok("every source is reversed and its padding stays at the end.")


def check_sequence_scores(fn) -> None:
    """Exercise 8.3: ``fn(hyps, refs)`` -> ``(exact_match, token_accuracy)`` as defined in
    :mod:`companion.metrics`."""
    from companion.metrics import exact_match, token_accuracy

    cases = [
        ([list("2021-03-03")], [list("2021-03-03")]),
        ([list("2021-03-3"), list("1999-12-31x")], [list("2021-03-03"), list("1999-12-31")]),
        ([[], list("abc")], [list("ab"), list("abd")]),
        ([list("bcd"), list("abcd")], [list("abcd"), list("abc")]),
    ]
    for hyps, refs in cases:
        got = fn([list(h) for h in hyps], [list(r) for r in refs])
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return a pair (exact_match, token_accuracy).")
        em, ta = (float(g) for g in got)
        _require(np.isfinite(em) and np.isfinite(ta), "both scores must be finite numbers.")
        _require(abs(em - exact_match(hyps, refs)) < 1e-12,
                 "exact match: the fraction of hypotheses equal to their reference token for "
                 "token (a longer hypothesis is not equal).")
        if abs(ta - token_accuracy(hyps, refs)) > 1e-12:
            _require(False, "token accuracy: compare position j of the hypothesis with "
                            "position j of the reference for every reference position; a "
                            "missing position is wrong; divide by the total number of "
                            "reference tokens (not by the number of sequences).")
    _ok("both scores agree with companion.metrics on short, long and empty hypotheses.")
