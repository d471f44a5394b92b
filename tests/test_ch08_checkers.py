"""The chapter 8 checkers accept the reference answers and reject typical wrong ones,
with hints that do not give the answer away."""

import pytest
import torch

from companion.exercises import ch08
from companion.metrics import exact_match, token_accuracy


def good_masked_mean(nll, tgt_out, pad):
    mask = tgt_out != pad
    return (nll * mask).sum() / mask.sum()


def test_masked_mean_checker(capsys):
    ch08.check_masked_mean(good_masked_mean)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="every position"):
        ch08.check_masked_mean(lambda nll, t, p: nll.mean())
    with pytest.raises(AssertionError, match="each sequence first"):
        ch08.check_masked_mean(lambda nll, t, p: torch.stack(
            [nll[n][t[n] != p].mean() for n in range(len(t))]).mean())
    with pytest.raises(AssertionError, match="not finite"):
        ch08.check_masked_mean(lambda nll, t, p: nll.sum() / 0.0 * 0.0)
    with pytest.raises(AssertionError):
        ch08.check_masked_mean(lambda nll, t, p: (nll * (t != p)).sum())


def good_reverse_and_pad(seqs, pad):
    S = max(len(s) for s in seqs)
    out = torch.full((len(seqs), S), pad, dtype=torch.long)
    for n, s in enumerate(seqs):
        out[n, :len(s)] = torch.tensor(s[::-1])
    return out, torch.tensor([len(s) for s in seqs])


def padded_then_reversed(seqs, pad):
    S = max(len(s) for s in seqs)
    out = torch.full((len(seqs), S), pad, dtype=torch.long)
    for n, s in enumerate(seqs):
        out[n, :len(s)] = torch.tensor(s)
    return out.flip(1), torch.tensor([len(s) for s in seqs])


def test_reverse_and_pad_checker(capsys):
    ch08.check_reverse_and_pad(good_reverse_and_pad)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="padding must stay at the end"):
        ch08.check_reverse_and_pad(padded_then_reversed)
    with pytest.raises(AssertionError, match="reversed"):
        ch08.check_reverse_and_pad(lambda s, p: (good_reverse_and_pad(
            [x[::-1] for x in s], p)))
    with pytest.raises(AssertionError, match="LongTensor"):
        ch08.check_reverse_and_pad(lambda s, p: tuple(
            t.int() for t in good_reverse_and_pad(s, p)))
    with pytest.raises(AssertionError, match="pair"):
        ch08.check_reverse_and_pad(lambda s, p: good_reverse_and_pad(s, p)[0])


def test_sequence_scores_checker(capsys):
    ch08.check_sequence_scores(lambda h, r: (exact_match(h, r), token_accuracy(h, r)))
    assert capsys.readouterr().out.startswith("Correct")

    def per_sequence(h, r):  # averages per-sequence accuracies
        accs = [sum(a == b for a, b in zip(x, y)) / len(y) for x, y in zip(h, r)]
        return exact_match(h, r), sum(accs) / len(accs)

    def prefix_equal(h, r):  # counts a hypothesis as exact if the reference is its prefix
        return sum(x[:len(y)] == y for x, y in zip(h, r)) / len(r), token_accuracy(h, r)

    with pytest.raises(AssertionError, match="total number of reference tokens"):
        ch08.check_sequence_scores(per_sequence)
    with pytest.raises(AssertionError, match="longer hypothesis is not equal"):
        ch08.check_sequence_scores(prefix_equal)
