"""The chapter 9 checkers accept the reference answers and reject typical wrong ones."""

import numpy as np
import pytest

from companion.exercises import ch09
from companion.scratch.attention import alignment_accuracy, attention_step


def good_additive(q, keys, mask, W, U, v):
    ctx, w, _ = attention_step(q, keys, mask, {"W": W, "U": U, "v": v}, "additive")
    return ctx, w


def unmasked_additive(q, keys, mask, W, U, v):  # wrong: attends to padding
    return good_additive(q, keys, np.ones_like(mask), W, U, v)


def wrong_axis_additive(q, keys, mask, W, U, v):  # wrong: softmax over the batch
    e = np.tanh((q @ W.T)[:, None, :] + keys @ U.T) @ v
    e = np.where(mask, e, -np.inf)
    p = np.exp(e - e.max(axis=0, keepdims=True))
    w = p / p.sum(axis=0, keepdims=True)
    return np.einsum("ns,nsh->nh", w, keys), w


def projected_context(q, keys, mask, W, U, v):  # wrong: averages U k instead of k
    ctx, w = good_additive(q, keys, mask, W, U, v)
    return np.einsum("ns,nsa->na", w, keys @ U.T)[:, :keys.shape[2]], w


def test_additive_checker(capsys):
    ch09.check_additive_attention(good_additive)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="padded positions"):
        ch09.check_additive_attention(unmasked_additive)
    with pytest.raises(AssertionError, match="source axis"):
        ch09.check_additive_attention(wrong_axis_additive)
    with pytest.raises(AssertionError, match="context"):
        ch09.check_additive_attention(projected_context)


def test_mask_checker(capsys):
    ch09.check_source_mask(lambda src, pad: src != pad)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="inverted"):
        ch09.check_source_mask(lambda src, pad: src == pad)
    with pytest.raises(AssertionError, match="boolean"):
        ch09.check_source_mask(lambda src, pad: (src != pad).astype(float))


def test_alignment_checker(capsys):
    ch09.check_alignment_accuracy(alignment_accuracy)
    assert "Correct" in capsys.readouterr().out

    def per_pair(w, gold):
        return float(np.mean([w[j].argmax() == i for i, j in gold]))

    def columns(w, gold):
        return float(np.mean([w[:, i].argmax() == j for i, j in gold]))

    with pytest.raises(AssertionError, match="POSITIONS"):
        ch09.check_alignment_accuracy(per_pair)
    with pytest.raises(AssertionError):
        ch09.check_alignment_accuracy(columns)
    with pytest.raises(AssertionError, match="one number"):
        ch09.check_alignment_accuracy(lambda w, g: [0.5])


def test_alignment_accuracy_values_and_errors():
    w = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    assert alignment_accuracy(w, [(0, 0), (1, 1), (2, 2)]) == pytest.approx(1 / 3)
    assert alignment_accuracy(w, [(0, 0), (1, 2), (2, 1)]) == 1.0
    assert alignment_accuracy(w, [(0, 0), (2, 0)]) == 1.0       # either partner counts
    assert np.isnan(alignment_accuracy(w, []))
    with pytest.raises(ValueError, match="outside"):
        alignment_accuracy(w, [(3, 0)])
    with pytest.raises(ValueError, match=r"\(L, S\)"):
        alignment_accuracy(w[0], [(0, 0)])
