"""Exact match, token accuracy and corpus BLEU: by hand, against sacrebleu, and errors."""

import math
import random

import pytest
import sacrebleu  # pinned in requirements.txt: the reference, never skipped

from companion.metrics import corpus_bleu, exact_match, ngram_counts, token_accuracy


def test_exact_match_and_token_accuracy_by_hand():
    refs = [list("abcd"), list("xy")]
    assert exact_match([list("abcd"), list("xy")], refs) == 1.0
    assert exact_match([list("abcd"), list("xyz")], refs) == 0.5  # an extra token is wrong
    # positions: a b c d vs a b d -> 2 right; x y vs x y z -> 2 right; 4 of 6
    assert token_accuracy([list("abd"), list("xyz")], refs) == pytest.approx(4 / 6)
    assert token_accuracy([[], []], refs) == 0.0  # missing positions count as wrong
    # one dropped token early shifts every later position
    assert token_accuracy([list("acd")], [list("abcd")]) == pytest.approx(1 / 4)


def test_bleu_by_hand():
    ref = "the cat sat on the mat".split()
    assert corpus_bleu([ref], [ref]) == pytest.approx(100.0)
    hyp = "the cat sat on a mat".split()
    # 1-grams 5/6, 2-grams 3/5, 3-grams 2/4 (the cat sat, cat sat on), 4-grams 1/3
    expected = 100 * math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(2 / 4)
                               + math.log(1 / 3)) / 4)
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)
    # clipping: "the the the" matches "the" at most twice
    assert ngram_counts("the the the".split(), 1)[("the",)] == 3
    short = "the cat".split()  # brevity penalty exp(1 - 6/2), precisions 1, 1, undefined...
    assert corpus_bleu([short], [ref], max_n=2) == pytest.approx(100 * math.exp(1 - 6 / 2))
    assert corpus_bleu([short], [ref]) == 0.0  # no 3-gram in the hypothesis at all
    assert corpus_bleu([["zz"]], [ref]) == 0.0
    assert corpus_bleu([[]], [ref]) == 0.0


def _random_corpus(rng, n, vocab, noise):
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
        hyp = [t if rng.random() > noise else rng.choice(vocab) for t in ref]
        if rng.random() < 0.3:
            hyp = hyp[:rng.randint(0, len(hyp))]
        if rng.random() < 0.3:
            hyp = hyp + [rng.choice(vocab) for _ in range(rng.randint(1, 3))]
        refs.append(ref)
        hyps.append(hyp)
    return hyps, refs


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("smooth", ["exp", "none"])
def test_bleu_agrees_with_sacrebleu(seed, smooth):
    rng = random.Random(seed)
    vocab = [f"w{k}" for k in range(rng.choice([3, 8, 30]))]
    hyps, refs = _random_corpus(rng, rng.choice([1, 5, 40]), vocab, rng.choice([0.0, 0.2, 0.6]))
    ours = corpus_bleu(hyps, refs, smooth=smooth)
    theirs = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                   tokenize="none", smooth_method=smooth, force=True).score
    assert math.isfinite(ours)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_bleu_on_characters_is_not_bleu_on_words():
    hyps, refs = [list("2021-03-04")], [list("2021-03-03")]
    chars = corpus_bleu(hyps, refs)
    whole = corpus_bleu([["2021-03-04"]], [["2021-03-03"]])
    assert chars > 80 and whole == 0.0


def test_metric_errors():
    with pytest.raises(ValueError, match="one entry per example; got 1 hypotheses and 2"):
        exact_match([["a"]], [["a"], ["b"]])
    with pytest.raises(TypeError, match=r"hyps\[0\] must be a list of tokens; got the string"):
        token_accuracy(["a b"], [["a", "b"]])
    with pytest.raises(TypeError, match="refs must be a list of token lists; got a string"):
        corpus_bleu([["a"]], "a")
    with pytest.raises(ValueError, match="at least one hypothesis"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match=r"refs\[1\] is empty"):
        token_accuracy([["a"], ["b"]], [["a"], []])
    with pytest.raises(ValueError, match="smooth must be 'exp' or 'none'"):
        corpus_bleu([["a"]], [["a"]], smooth="floor")
    with pytest.raises(ValueError, match="max_n must be an int >= 1"):
        corpus_bleu([["a"]], [["a"]], max_n=0)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        ngram_counts(["a"], 0)
    with pytest.raises(TypeError, match="hyps must be a list of token lists; got int"):
        exact_match(3, [["a"]])
