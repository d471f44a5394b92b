"""Scores for sequence outputs: exact match, token accuracy and corpus BLEU.

All three take ``hyps`` and ``refs`` as lists of token lists (one hypothesis and one
reference per example, end token excluded), e.g. from
``[tgt_vocab.decode(row) for row in decoded.tokens]``. They do not tokenise: a score is
only comparable to another computed on the same tokens (see the chapter's pitfall on
BLEU over characters, words or detokenised text).

``exact_match``
    the fraction of examples whose hypothesis equals the reference token for token.
``token_accuracy``
    position-wise: over all examples, the number of reference positions ``j`` with
    ``hyp[j] == ref[j]``, divided by the total number of reference tokens. A hypothesis
    shorter than its reference gets its missing positions wrong; tokens beyond the
    reference's length are not counted (exact match catches them). One inserted or
    dropped token early on shifts every later position: this is a strict score.
``corpus_bleu``
    BLEU (Papineni et al. 2002) on the corpus, 0 to 100: the geometric mean of the
    clipped (modified) n-gram precisions for n = 1..4, each pooled over the whole corpus
    before dividing, times the brevity penalty ``exp(1 - r / c)`` when the hypotheses'
    total length ``c`` is below the references' ``r``. ``smooth="exp"`` (sacrebleu's
    default) replaces a zero precision count by halving pseudo-counts; ``"none"`` gives 0
    as soon as one order has no match. The implementation agrees with
    ``sacrebleu.corpus_bleu(..., tokenize="none")`` on space-joined tokens (tested).
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["corpus_bleu", "exact_match", "ngram_counts", "token_accuracy"]


def _check_pairs(hyps, refs):
    for name, value in (("hyps", hyps), ("refs", refs)):
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list of token lists; got a string. For one "
                            f"sentence pass [{name[:-1]}.split()] (a list of one token list).")
        if not isinstance(value, (list, tuple)):
            fix = (f" Convert it with {name}.tolist() (rows of token ids), or decode each row "
                   f"first." if hasattr(value, "tolist") else "")
            raise TypeError(f"{name} must be a list of token lists; got "
                            f"{type(value).__name__}.{fix}")
    if len(hyps) != len(refs):
        raise ValueError(f"hyps and refs must have one entry per example; got {len(hyps)} "
                         f"hypotheses and {len(refs)} references.")
    if not hyps:
        raise ValueError("hyps must hold at least one hypothesis; got an empty list.")
    out = []
    for name, value in (("hyps", hyps), ("refs", refs)):
        rows = []
        for k, row in enumerate(value):
            if isinstance(row, str):
                raise TypeError(f"{name}[{k}] must be a list of tokens; got the string "
                                f"{row!r}. Split it into tokens first (row.split() or list(row)).")
            if not isinstance(row, (list, tuple)):
                fix = (f" Use {name}[{k}].tolist()." if hasattr(row, "tolist") else
                       " A flat list of tokens? Wrap it: [tokens] for one example.")
                raise TypeError(f"{name}[{k}] must be a list of tokens; got "
                                f"{type(row).__name__} {row!r}.{fix}")
            rows.append(list(row))
        out.append(rows)
    if any(len(r) == 0 for r in out[1]):
        k = next(i for i, r in enumerate(out[1]) if not r)
        raise ValueError(f"refs[{k}] is empty: every reference needs at least one token.")
    return out


def exact_match(hyps, refs) -> float:
    """The fraction of hypotheses equal to their reference, token for token."""
    hyps, refs = _check_pairs(hyps, refs)
    return sum(h == r for h, r in zip(hyps, refs)) / len(refs)


def token_accuracy(hyps, refs) -> float:
    """Position-wise accuracy over all reference tokens (see the module docstring)."""
    hyps, refs = _check_pairs(hyps, refs)
    right = sum(sum(1 for j, tok in enumerate(r) if j < len(h) and h[j] == tok)
                for h, r in zip(hyps, refs))
    return right / sum(len(r) for r in refs)


def ngram_counts(tokens, n: int) -> Counter:
    """The multiset of ``n``-grams (as tuples) of a token list."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1; got {n!r}.")
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"tokens must be a sequence of tokens (a list); got the string "
                        f"{tokens!r}, whose n-grams would be of characters. Split it first: "
                        f"tokens.split() for words, list(tokens) if characters are meant.")
    if not isinstance(tokens, (list, tuple)):
        fix = " Use tokens.tolist()." if hasattr(tokens, "tolist") else ""
        raise TypeError(f"tokens must be a list of tokens; got {type(tokens).__name__}.{fix}")
    tokens = list(tokens)
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hyps, refs, *, max_n: int = 4, smooth: str = "exp") -> float:
    """Corpus BLEU, 0 to 100, of token-list hypotheses against one reference each."""
    hyps, refs = _check_pairs(hyps, refs)
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"max_n must be an int >= 1; got {max_n!r}.")
    if not isinstance(smooth, str) or smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none'; got {smooth!r}.")
    matched = [0] * max_n
    total = [0] * max_n
    c = sum(len(h) for h in hyps)
    r = sum(len(x) for x in refs)
    for h, ref in zip(hyps, refs):
        for n in range(1, max_n + 1):
            hc, rc = ngram_counts(h, n), ngram_counts(ref, n)
            matched[n - 1] += sum(min(k, rc[g]) for g, k in hc.items())  # clipped counts
            total[n - 1] += max(len(h) - n + 1, 0)
    if c == 0 or not any(matched):  # nothing produced, or not one matching token
        return 0.0
    log_p = 0.0
    halvings = 1.0
    for n in range(max_n):
        if total[n] == 0:  # no hypothesis is n tokens long: the precision is undefined
            return 0.0
        if matched[n] == 0:
            if smooth == "none":
                return 0.0
            halvings *= 2.0
            log_p += math.log(1.0 / (halvings * total[n]))
        else:
            log_p += math.log(matched[n] / total[n])
    brevity = 1.0 if c >= r else math.exp(1.0 - r / c)
    return 100.0 * brevity * math.exp(log_p / max_n)
