"""The chapter 7 checkers accept the reference answers and reject delegation, hard-coding,
typical wrong answers and NaN."""

import numpy as np
import pytest
import torch

from companion.data.captions import shift_right
from companion.exercises import DelegationError, ch07
from companion.nn.decoding import _filter
from companion.nn.decoding import beam_search as package_beam_search


def fixed_unseen(monkeypatch):
    """Make the checker's 'unseen' cases the same on every call (to show that only they
    catch a hard-coded answer)."""
    monkeypatch.setattr(ch07, "unseen_rng", lambda: np.random.default_rng(12345))


def array_key(*args):
    return tuple(a.tobytes() + str(a.shape).encode() if isinstance(a, np.ndarray) else a
                 for a in args)


# ---------------------------------------------------------------- 7.1 teacher-forcing batch
def good_batch(sentences, bos, eos, pad):  # the notebook's reference solution
    rows = [list(s) for s in sentences]
    T = max(len(r) for r in rows) + 1
    inputs = np.full((len(rows), T), pad)
    targets = np.full((len(rows), T), pad)
    mask = np.zeros((len(rows), T), dtype=bool)
    for n, r in enumerate(rows):
        inputs[n, :len(r) + 1] = [bos] + r
        targets[n, :len(r) + 1] = r + [eos]
        mask[n, :len(r) + 1] = True
    return inputs, targets, mask


def via_shift_right(sentences, bos, eos, pad):
    rows = [list(s) for s in sentences]
    T = max(len(r) for r in rows) + 1
    targets = np.full((len(rows), T), pad)
    for n, r in enumerate(rows):
        targets[n, :len(r) + 1] = r + [eos]
    inputs = shift_right(targets, bos=bos, pad=pad)
    inputs[inputs == eos] = pad
    return inputs, targets, targets != pad


def test_teacher_batch_checker_accepts_the_reference(capsys):
    ch07.check_teacher_batch(good_batch)
    assert capsys.readouterr().out.startswith("Correct")


def test_teacher_batch_checker_rejects_delegation():
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_teacher_batch(via_shift_right)
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_teacher_batch(lambda *a: ch07._ref_teacher_batch(*a))
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_teacher_batch(ch07._ref_teacher_batch)


def test_teacher_batch_checker_rejects_hard_coding(monkeypatch):
    def key(sentences, bos, eos, pad):
        return (tuple(tuple(int(v) for v in s) for s in sentences), bos, eos, pad)
    memo = {}

    def record(*args):
        memo[key(*args)] = good_batch(*args)
        return memo[key(*args)]

    def replay(*args):
        return memo.get(key(*args), (np.zeros((1, 1)),) * 3)

    ch07.check_teacher_batch(record)
    with pytest.raises(AssertionError):
        ch07.check_teacher_batch(replay)
    fixed_unseen(monkeypatch)  # with the hidden cases frozen, the replay would pass
    ch07.check_teacher_batch(record)
    ch07.check_teacher_batch(replay)


def test_teacher_batch_checker_rejects_typical_mistakes_and_nan():
    def eos_at_row_end(sentences, bos, eos, pad):
        i, t, m = good_batch(sentences, bos, eos, pad)
        t = np.where(m, t, pad)
        t[t == eos] = pad
        t[:, -1] = eos
        return i, t, m

    def eos_as_input(sentences, bos, eos, pad):  # shift_right of the padded targets
        i, t, m = good_batch(sentences, bos, eos, pad)
        i = np.full_like(t, pad)
        i[:, 0] = bos
        i[:, 1:] = t[:, :-1]
        return i, t, m

    def mask_without_eos(sentences, bos, eos, pad):
        i, t, m = good_batch(sentences, bos, eos, pad)
        return i, t, m & (t != eos)

    def not_shifted(sentences, bos, eos, pad):
        i, t, m = good_batch(sentences, bos, eos, pad)
        return np.where(m, t, pad), t, m

    def no_room_for_eos(sentences, bos, eos, pad):
        i, t, m = good_batch(sentences, bos, eos, pad)
        return i[:, :-1], t[:, :-1], m[:, :-1]

    for bad, hint in ((eos_at_row_end, "own length"), (eos_as_input, "never an input"),
                      (mask_without_eos, "end token included"), (not_shifted, "step t-1|begin token"),
                      (no_room_for_eos, "longest"),
                      (lambda *a: good_batch(a[0], 1, a[2], a[3]), "not a constant"),
                      (lambda *a: good_batch(*a)[:2], "triple"),
                      (lambda *a: (np.full(good_batch(*a)[0].shape, np.nan),) * 3, "NaN")):
        with pytest.raises(AssertionError, match=hint):
            ch07.check_teacher_batch(bad)


def test_teacher_batch_checker_refuses_an_answer_that_changes_the_sentences():
    def appends_eos(sentences, bos, eos, pad):
        for s in sentences:
            if isinstance(s, list):
                s.append(eos)
        return good_batch([s[:-1] if isinstance(s, list) else s for s in sentences],
                          bos, eos, pad)

    with pytest.raises(AssertionError, match="in place"):
        ch07.check_teacher_batch(appends_eos)


# ---------------------------------------------------------------- 7.2 beam step
def good_beam_step(totals, log_probs, beam_width):  # the notebook's reference solution
    K = log_probs.shape[1]
    candidates = (totals[:, None] + log_probs).reshape(-1)    # (B * K,), row-major
    best = np.argsort(-candidates, kind="stable")[:beam_width]
    return best // K, best % K, candidates[best]


def per_row_beam_step(totals, log_probs, beam_width):  # wrong: best token of each hypothesis
    tok = log_probs.argmax(1)
    new = totals + log_probs.max(1)
    order = np.argsort(-new)[:beam_width]
    return order, tok[order], new[order]


def test_beam_step_checker_accepts_the_reference(capsys):
    ch07.check_beam_step(good_beam_step)
    assert "Correct" in capsys.readouterr().out


def test_beam_step_checker_rejects_delegation():
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_beam_step(lambda t, lp, w: ch07._ref_beam_step(t, lp, w))


def test_beam_step_checker_rejects_hard_coding(monkeypatch):
    memo = {}

    def record(*a):
        memo[array_key(*a)] = good_beam_step(*a)
        return memo[array_key(*a)]

    def replay(*a):
        return memo.get(array_key(*a), (np.zeros(a[2], int), np.zeros(a[2], int),
                                        np.zeros(a[2])))

    ch07.check_beam_step(record)
    with pytest.raises(AssertionError):
        ch07.check_beam_step(replay)
    fixed_unseen(monkeypatch)
    ch07.check_beam_step(record)
    ch07.check_beam_step(replay)


def test_beam_step_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="TOGETHER|PLUS|survivors"):
        ch07.check_beam_step(per_row_beam_step)
    with pytest.raises(AssertionError, match="PLUS"):
        ch07.check_beam_step(lambda t, lp, w: (*good_beam_step(t, lp, w)[:2],
                                               good_beam_step(t, lp, w)[2] - t.max()))
    with pytest.raises(AssertionError, match="best first"):
        ch07.check_beam_step(lambda t, lp, w: tuple(v[::-1] for v in good_beam_step(t, lp, w)))
    with pytest.raises(AssertionError, match="NaN"):
        ch07.check_beam_step(lambda t, lp, w: (*good_beam_step(t, lp, w)[:2], np.full(w, np.nan)))


# ---------------------------------------------------------------- 7.3 nucleus
def good_nucleus(probs, p):  # the notebook's reference solution
    probs = np.asarray(probs, dtype=float)
    order = np.argsort(-probs, kind="stable")
    mass_before = np.cumsum(probs[order]) - probs[order]   # mass of the better tokens
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[mass_before < p]] = True                    # the top token has 0 before it
    out = np.where(keep, probs, 0.0)
    return out / out.sum()


def drop_crossing_token(probs, p):  # wrong: the token whose mass crosses p is dropped
    order = np.argsort(-probs, kind="stable")
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[np.cumsum(probs[order]) <= p]] = True
    keep[order[0]] = True
    out = np.where(keep, probs, 0.0)
    return out / out.sum()


def test_nucleus_checker_accepts_the_reference(capsys):
    ch07.check_nucleus(good_nucleus)
    assert "Correct" in capsys.readouterr().out


def test_nucleus_checker_rejects_delegation():
    def via_filter(probs, p):
        logp = torch.log(torch.as_tensor(probs, dtype=torch.float64))[None]
        return _filter(logp, 1.0, None, p).exp()[0].numpy()

    good_nucleus(np.array([0.5, 0.5]), 0.3)
    np.testing.assert_allclose(via_filter(np.array([0.5, 0.3, 0.2]), 0.6), [0.625, 0.375, 0])
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_nucleus(via_filter)
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_nucleus(lambda pr, p: ch07._ref_nucleus(pr, p))


def test_nucleus_checker_rejects_hard_coding(monkeypatch):
    memo = {}

    def record(*a):
        memo[array_key(*a)] = good_nucleus(*a)
        return memo[array_key(*a)]

    def replay(*a):
        return memo.get(array_key(*a), np.full(len(a[0]), 1.0 / len(a[0])))

    ch07.check_nucleus(record)
    with pytest.raises(AssertionError):
        ch07.check_nucleus(replay)
    fixed_unseen(monkeypatch)
    ch07.check_nucleus(record)
    ch07.check_nucleus(replay)


def test_nucleus_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="wrong tokens"):
        ch07.check_nucleus(drop_crossing_token)
    with pytest.raises(AssertionError, match="renormalise"):
        ch07.check_nucleus(lambda pr, p: np.where(good_nucleus(pr, p) > 0, pr, 0.0))
    with pytest.raises(AssertionError, match="NaN"):
        ch07.check_nucleus(lambda pr, p: good_nucleus(pr, p) * np.nan)


# ---------------------------------------------------------------- 7.4 beam search
def good_beam_search(step_fn, init_state, bos, eos, beam_width, max_len):  # the notebook's
    beam = [([], 0.0, init_state)]       # unfinished hypotheses: (tokens, log p, state)
    pool = []                            # finished ones: (tokens, log p), never pruned
    for _ in range(max_len):
        if not beam:
            break
        if pool and max(lp for _, lp in pool) >= beam[0][1]:
            break                        # log p only falls: the beam cannot catch up
        extensions = []
        for tokens, lp, state in beam:
            log_probs, new_state = step_fn(tokens[-1] if tokens else bos, state)
            extensions += [(tokens + [k], lp + float(step_lp), new_state)
                           for k, step_lp in enumerate(log_probs)]
        extensions.sort(key=lambda e: e[1], reverse=True)
        pool += [(toks, lp) for toks, lp, _ in extensions[:beam_width] if toks[-1] == eos]
        beam = [e for e in extensions if e[0][-1] != eos][:beam_width]
    tokens, lp = max(pool or [(t, lp) for t, lp, _ in beam], key=lambda f: f[1])
    return tokens, lp


def finished_compete(step_fn, init_state, bos, eos, beam_width, max_len):
    """Wrong: finished hypotheses stay in the beam and compete for its slots."""
    beam = [([], 0.0, init_state, False)]
    for _ in range(max_len):
        if all(done for *_, done in beam):
            break
        ext = []
        for tokens, lp, state, done in beam:
            if done:
                ext.append((tokens, lp, state, True))
                continue
            log_probs, new_state = step_fn(tokens[-1] if tokens else bos, state)
            ext += [(tokens + [k], lp + float(l), new_state, k == eos)
                    for k, l in enumerate(log_probs)]
        ext.sort(key=lambda e: e[1], reverse=True)
        beam = ext[:beam_width]
    tokens, lp, _, _ = max(beam, key=lambda e: e[1])
    return tokens, lp


def every_eos_to_pool(step_fn, init_state, bos, eos, beam_width, max_len):
    """Wrong rule: every finished extension enters the pool, not only the top ones."""
    beam, pool = [([], 0.0, init_state)], []
    for _ in range(max_len):
        if not beam or (pool and max(lp for _, lp in pool) >= beam[0][1]):
            break
        ext = []
        for tokens, lp, state in beam:
            log_probs, new_state = step_fn(tokens[-1] if tokens else bos, state)
            ext += [(tokens + [k], lp + float(l), new_state) for k, l in enumerate(log_probs)]
        ext.sort(key=lambda e: e[1], reverse=True)
        pool += [(t, lp) for t, lp, _ in ext if t[-1] == eos]
        beam = [e for e in ext if e[0][-1] != eos][:beam_width]
    return max(pool or [(t, lp) for t, lp, _ in beam], key=lambda f: f[1])


def no_early_stop(step_fn, init_state, bos, eos, beam_width, max_len):
    """Right result, but the search runs to max_len whatever the pool holds."""
    beam, pool = [([], 0.0, init_state)], []
    for _ in range(max_len):
        if not beam:
            break
        ext = []
        for tokens, lp, state in beam:
            log_probs, new_state = step_fn(tokens[-1] if tokens else bos, state)
            ext += [(tokens + [k], lp + float(l), new_state) for k, l in enumerate(log_probs)]
        ext.sort(key=lambda e: e[1], reverse=True)
        pool += [(t, lp) for t, lp, _ in ext[:beam_width] if t[-1] == eos]
        beam = [e for e in ext if e[0][-1] != eos][:beam_width]
    return max(pool or [(t, lp) for t, lp, _ in beam], key=lambda f: f[1])


def test_beam_search_checker_accepts_the_reference(capsys):
    for _ in range(3):  # fresh hidden models every time
        ch07.check_beam_search(good_beam_search)
    assert capsys.readouterr().out.count("Correct") == 3


def test_the_checkers_reference_is_exhaustive_when_wide_and_greedy_at_width_one():
    g = np.random.default_rng(0)
    for _ in range(20):
        K, max_len = int(g.integers(3, 6)), int(g.integers(2, 5))
        eos, bos = int(g.integers(0, K)), int(g.integers(0, K))
        step_fn, h0 = ch07._rnn_model(g, K, eos)
        wide = K * (K - 1) ** (max_len - 1)
        assert ch07._ref_beam_search(step_fn, h0, bos, eos, wide, max_len)[0] == \
            ch07._ref_exhaustive(step_fn, h0, bos, eos, max_len)[0]
        assert ch07._ref_beam_search(step_fn, h0, bos, eos, 1, max_len)[0] == \
            ch07._ref_greedy(step_fn, h0, bos, eos, max_len)[0]


def test_tree_model_shows_a_lost_finished_hypothesis():
    tree = ch07._tree_step_fn()
    tokens, lp = ch07._ref_beam_search(tree, None, 0, 1, 2, 6)
    assert tokens == [2, 1] and np.isclose(lp, np.log(0.30 * 0.95))
    lost_tokens, lost_lp = finished_compete(tree, None, 0, 1, 2, 6)
    assert lost_lp < lp - 1.0


def test_beam_search_checker_rejects_delegation():
    def via_package(step_fn, init_state, bos, eos, beam_width, max_len):
        states = {}

        def torch_step(tokens, idx):  # the NumPy model, one row at a time
            rows = [step_fn(int(t), states.get(int(i), init_state)) for t, i in zip(tokens, idx)]
            for i, (_, s) in zip(idx, rows):
                states[int(i)] = s
            return torch.tensor(np.array([r[0] for r in rows])), idx

        res = package_beam_search(torch_step, torch.zeros(1, dtype=torch.long), 1, bos=bos,
                                  eos=eos, max_len=max_len, beam_width=beam_width)
        return res.tokens[0, :int(res.lengths[0])].tolist(), float(res.log_prob[0])

    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_beam_search(via_package)
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_beam_search(lambda *a: ch07._ref_beam_search(*a))


def test_beam_search_checker_rejects_hard_coding(monkeypatch):
    def key(step_fn, init_state, bos, eos, width, max_len):
        model = getattr(step_fn, "step_fn", step_fn)  # uncounted
        fingerprint = np.asarray(model(bos, init_state)[0]).round(12).tobytes()
        return fingerprint, bos, eos, width, max_len

    memo = {}

    def record(*a):
        memo[key(*a)] = good_beam_search(*a)
        return memo[key(*a)]

    def replay(*a):
        return memo.get(key(*a), ([a[3]], 0.0))

    ch07.check_beam_search(record)
    with pytest.raises(AssertionError):
        ch07.check_beam_search(replay)
    fixed_unseen(monkeypatch)
    memo.clear()
    ch07.check_beam_search(record)
    ch07.check_beam_search(replay)


def test_beam_search_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="pushed out of the beam and lost"):
        ch07.check_beam_search(finished_compete)
    with pytest.raises(AssertionError, match="greedy|different hypothesis"):
        ch07.check_beam_search(every_eos_to_pool)
    with pytest.raises(AssertionError, match="more often than the rule needs"):
        ch07.check_beam_search(no_early_stop)
    with pytest.raises(AssertionError, match="total log-probability"):
        ch07.check_beam_search(lambda *a: (good_beam_search(*a)[0],
                                           good_beam_search(*a)[1] / len(good_beam_search(*a)[0])))
    with pytest.raises(AssertionError, match="NaN"):
        ch07.check_beam_search(lambda *a: (good_beam_search(*a)[0], float("nan")))
    with pytest.raises(AssertionError, match="pair"):
        ch07.check_beam_search(lambda *a: good_beam_search(*a)[0])


def test_checkers_refuse_non_callables():
    for chk in (ch07.check_teacher_batch, ch07.check_beam_step, ch07.check_nucleus,
                ch07.check_beam_search):
        with pytest.raises(TypeError, match="must be a function"):
            chk(3)


def test_checkers_refuse_the_reference_handed_in_itself():
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_beam_search(package_beam_search)
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_beam_step(ch07._ref_beam_step)
    with pytest.raises(DelegationError, match="already holds"):
        ch07.check_nucleus(ch07._ref_nucleus)


def test_checkers_refuse_answers_that_change_their_inputs():
    def nucleus_in_place(probs, p):
        out = good_nucleus(probs, p)
        probs[:] = out
        return probs

    def beam_step_in_place(totals, log_probs, beam_width):
        out = good_beam_step(totals, log_probs, beam_width)
        log_probs += totals[:, None]
        return out

    with pytest.raises(AssertionError, match="in place"):
        ch07.check_nucleus(nucleus_in_place)
    with pytest.raises(AssertionError, match="in place"):
        ch07.check_beam_step(beam_step_in_place)


def test_beam_search_checker_requires_whole_number_token_ids():
    def float_tokens(step_fn, init_state, bos, eos, beam_width, max_len):
        tokens, lp = good_beam_search(step_fn, init_state, bos, eos, beam_width, max_len)
        return [float(t) + 0.25 for t in tokens], lp

    with pytest.raises(AssertionError, match="whole-number"):
        ch07.check_beam_search(float_tokens)
