"""The chapter 7 checkers accept the reference answers and reject typical wrong ones."""

import numpy as np
import pytest

from companion.data.captions import shift_right
from companion.exercises import ch07


def good_shift(targets, bos, pad):
    return shift_right(targets, bos=bos, pad=pad)


def test_shift_checker(capsys):
    ch07.check_shift(good_shift)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="TARGET at step t-1|begin token"):
        ch07.check_shift(lambda t, b, p: t)  # not shifted: the model would copy its answer
    with pytest.raises(AssertionError, match="shape"):
        ch07.check_shift(lambda t, b, p: np.concatenate([np.full((len(t), 1), b), t], 1))


def good_beam_step(totals, log_probs, beam_width):
    cand = (totals[:, None] + log_probs).reshape(-1)
    order = np.argsort(-cand, kind="stable")[:beam_width]
    K = log_probs.shape[1]
    return order // K, order % K, cand[order]


def per_row_beam_step(totals, log_probs, beam_width):  # wrong: best token of each hypothesis
    tok = log_probs.argmax(1)
    new = totals + log_probs.max(1)
    order = np.argsort(-new)[:beam_width]
    return order, tok[order], new[order]


def test_beam_step_checker(capsys):
    ch07.check_beam_step(good_beam_step)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        ch07.check_beam_step(per_row_beam_step)
    with pytest.raises(AssertionError, match="PLUS"):
        ch07.check_beam_step(lambda t, lp, w: (*good_beam_step(t, lp, w)[:2],
                                               good_beam_step(t, lp, w)[2] - t.max()))


def good_nucleus(probs, p):
    order = np.argsort(-probs, kind="stable")
    before = np.cumsum(probs[order]) - probs[order]
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[before < p]] = True
    out = np.where(keep, probs, 0.0)
    return out / out.sum()


def drop_crossing_token(probs, p):  # wrong: the token whose mass crosses p is dropped
    order = np.argsort(-probs, kind="stable")
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[np.cumsum(probs[order]) <= p]] = True
    keep[order[0]] = True
    out = np.where(keep, probs, 0.0)
    return out / out.sum()


def test_nucleus_checker(capsys):
    ch07.check_nucleus(good_nucleus)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="wrong tokens"):
        ch07.check_nucleus(drop_crossing_token)
    with pytest.raises(AssertionError, match="renormalise"):
        ch07.check_nucleus(lambda pr, p: np.where(good_nucleus(pr, p) > 0, pr, 0.0))


def test_checkers_refuse_non_callables():
    for chk in (ch07.check_shift, ch07.check_beam_step, ch07.check_nucleus):
        with pytest.raises(TypeError, match="must be a function"):
            chk(3)
