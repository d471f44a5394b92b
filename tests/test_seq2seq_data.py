"""The sequence-to-sequence tasks of chapters 8 and 9: determinism, grammar, alignments,
disjoint splits, exact lengths, batches, and clear errors."""

import datetime as dt

import numpy as np
import pytest
import torch

from companion.data import seq2seq as s2s
from companion.data.seq2seq import (BOS, EOS, PAD, UNK, Example, Vocab, collate, date_tokens,
                                    detokenize, iterate_batches, make_length_tests, make_task,
                                    translate_toy)


@pytest.fixture(scope="module")
def tasks():
    return {name: make_task(name, n_train=600, n_valid=100, n_test=100, seed=3)
            for name in s2s.TASKS}


# ---------------------------------------------------------------- vocabulary
def test_vocab_specials_first_and_round_trip():
    v = Vocab(["x", "y", "x", "<eos>"])
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "x", "y"]
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3) and len(v) == 6
    assert v.encode(["y", "x", "q"]) == [5, 4, UNK, EOS]
    assert v.encode(["y"], eos=False) == [5]
    assert v.decode([BOS, 5, 4, EOS, 4, PAD]) == ["y", "x"]
    assert v.decode(torch.tensor([5, PAD, 4])) == ["y", "x"]
    assert v.decode([BOS, 5, EOS, PAD], strip=False) == ["<bos>", "y", "<eos>", "<pad>"]


def test_vocab_errors():
    v = Vocab(["x"])
    with pytest.raises(TypeError, match="tokens must be a list of token strings"):
        Vocab("abc")
    with pytest.raises(TypeError, match="entry 1 is int"):
        v.encode(["x", 4])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\).*other side"):
        v.decode([1, 9])
    with pytest.raises(TypeError, match="1-D integer tensor"):
        v.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="did you mean Vocab.encode|Did you mean"):
        v.decode("x")
    with pytest.raises(TypeError, match="entry 0 is float"):
        v.decode([1.0])


# ---------------------------------------------------------------- tasks
@pytest.mark.parametrize("name", s2s.TASKS)
def test_same_seed_same_task_other_seed_other_task(name):
    a = make_task(name, n_train=50, n_valid=10, n_test=10, seed=5)
    b = make_task(name, n_train=50, n_valid=10, n_test=10, seed=5)
    c = make_task(name, n_train=50, n_valid=10, n_test=10, seed=6)
    assert [e.src for e in a.train] == [e.src for e in b.train]
    assert [e.tgt for e in a.test] == [e.tgt for e in b.test]
    assert [e.src for e in a.train] != [e.src for e in c.train]


@pytest.mark.parametrize("name", s2s.TASKS)
def test_splits_disjoint_and_sized(tasks, name):
    t = tasks[name]
    assert (len(t.train), len(t.valid), len(t.test)) == (600, 100, 100)
    keys = [{tuple(e.src) for e in split} for split in (t.train, t.valid, t.test)]
    assert sum(map(len, keys)) == 800  # distinct within and across splits
    if name == "dates":
        days = [{"".join(e.tgt) for e in split} for split in (t.train, t.valid, t.test)]
        assert not (days[0] & days[1] or days[0] & days[2] or days[1] & days[2])


@pytest.mark.parametrize("name", s2s.TASKS)
def test_vocabularies_cover_every_token(tasks, name):
    t = tasks[name]
    for ex in t.train + t.valid + t.test:
        assert UNK not in t.src_vocab.encode(ex.src)
        assert UNK not in t.tgt_vocab.encode(ex.tgt)


@pytest.mark.parametrize("name", s2s.TASKS)
def test_alignments_are_in_range_and_cover_the_target(tasks, name):
    for ex in tasks[name].train[:200]:
        assert all(0 <= i < len(ex.src) and 0 <= j < len(ex.tgt) for i, j in ex.align)
        aligned = {j for _, j in ex.align}
        if name == "toy_language":  # only the object marker has no source word
            assert {j for j in range(len(ex.tgt)) if j not in aligned} == {ex.tgt.index("ka")}
        elif name == "dates":  # only the two dashes have no source token
            assert aligned == set(range(10)) - {4, 7}
        else:
            assert aligned == set(range(len(ex.tgt)))


def test_dates_targets_are_the_iso_dates_and_the_digits_align():
    t = make_task("dates", n_train=300, n_valid=10, n_test=10, seed=0)
    forms = set()
    for ex in t.train:
        iso = "".join(ex.tgt)
        d = dt.date.fromisoformat(iso)
        assert dt.date(1950, 1, 1) <= d <= dt.date(2049, 12, 31)
        text = detokenize("dates", ex.src)
        assert date_tokens(text) == ex.src
        forms.add(tuple("D" if s.isdigit() else s for s in ex.src))
        for i, j in ex.align:  # an aligned digit is the same digit, except a century
            if ex.src[i].isdigit() and len(ex.src[i]) == 1 and j not in (0, 1, 2):
                if j in (8, 9) and len([p for p in ex.align if p[1] == j]) > 1:
                    continue  # a one-digit day aligns to both day positions
                assert ex.src[i] == ex.tgt[j] or j in (5, 6, 8)
        if any(w in ex.src for w in s2s.WEEKDAYS + s2s.WEEKDAYS_ABBR):
            wd = [w for w in ex.src if w in s2s.WEEKDAYS + s2s.WEEKDAYS_ABBR][0]
            assert wd[:3] == d.strftime("%a")[:3]  # the weekday is the true one
    assert len(forms) >= 12


def test_date_examples_by_hand():
    ex = s2s._date_example(dt.date(2021, 3, 3), ("MON", "D", "S", ",", "YYYY"))
    assert detokenize("dates", ex.src) == "March 3rd, 2021"
    assert ex.src == ["March", "3", "rd", ",", "2", "0", "2", "1"]
    assert "".join(ex.tgt) == "2021-03-03"
    assert (0, 5) in ex.align and (0, 6) in ex.align and (1, 8) in ex.align
    assert not [p for p in ex.align if p[0] in (2, 3)]  # suffix and comma: no target
    ex = s2s._date_example(dt.date(2011, 12, 11), ("DD", "/", "MM", "/", "YY"))
    assert detokenize("dates", ex.src) == "11/12/11"
    assert detokenize("dates", ex.tgt) == "2011-12-11"
    assert s2s._suffix(11) == "th" and s2s._suffix(22) == "nd" and s2s._suffix(31) == "st"
    assert date_tokens("wednesday, march 3RD 2021")[:3] == ["Wednesday", ",", "March"]


def test_toy_language_by_hand_and_every_example_follows_the_grammar(tasks):
    assert translate_toy("ta siri dapoi vimek u bor".split()) == [
        "suna", "en", "pek", "li", "kel", "ka", "mokren"]
    # compound noun, emphatic particle dropped, compound verb agreeing with a fem. subject
    assert translate_toy("u gorvin jo talun ta nema belu lun sul u fesk mel".split()) == [
        "rak", "tali", "mer", "fos", "olu", "lo", "ka", "tiva", "ven", "iben", "pa", "reta"]
    for ex in tasks["toy_language"].train:
        assert translate_toy(ex.src) == ex.tgt
    with pytest.raises(ValueError, match="expected a verb at position 2, got 'bor'"):
        translate_toy("ta bor bor".split())
    with pytest.raises(ValueError, match="expected the end of the sentence"):
        translate_toy("ta bor vimek u lun lun".split())


def test_toy_alignment_is_not_monotonic(tasks):
    crossing = 0
    for ex in tasks["toy_language"].train:
        a = sorted(ex.align, key=lambda p: p[1])
        crossing += any(a[k + 1][0] < a[k][0] for k in range(len(a) - 1))
    assert crossing == len(tasks["toy_language"].train)  # SOV: the verb always moves


def test_copy_and_reverse(tasks):
    for ex in tasks["copy"].train:
        assert ex.tgt == ex.src and 4 <= len(ex.src) <= 12
    for ex in tasks["reverse"].train:
        assert ex.tgt == ex.src[::-1]
    t = make_task("reverse", n_train=20, n_valid=5, n_test=5, n_symbols=3, min_len=6,
                  max_len=6)
    assert len(t.src_vocab) == 7 and all(len(e.src) == 6 for e in t.train)


@pytest.mark.parametrize("name", s2s.TASKS)
def test_lengths_are_respected(name):
    lo, hi = {"dates": (7, 8), "toy_language": (9, 11)}.get(name, (5, 7))
    t = make_task(name, n_train=100, n_valid=20, n_test=20, min_len=lo, max_len=hi)
    assert all(lo <= len(e.src) <= hi for s in (t.train, t.valid, t.test) for e in s)


@pytest.mark.parametrize("name,lengths", [("reverse", [4, 16, 24]), ("copy", [3, 20]),
                                          ("dates", [5, 10]), ("toy_language", [6, 17])])
def test_length_tests_exact_and_disjoint(tasks, name, lengths):
    t = tasks[name]
    sets = make_length_tests(t, lengths, n_per_length=30, seed=2)
    assert sorted(sets) == sorted(lengths)
    train = {tuple(e.src) for s in (t.train, t.valid, t.test) for e in s}
    for L, exs in sets.items():
        assert len(exs) == 30 and all(len(e.src) == L for e in exs)
        assert not {tuple(e.src) for e in exs} & train
        for e in exs:
            assert UNK not in t.src_vocab.encode(e.src)
    if name == "dates":
        days = {"".join(e.tgt) for s in (t.train, t.valid, t.test) for e in s}
        assert not {"".join(e.tgt) for exs in sets.values() for e in exs} & days


def test_task_errors():
    with pytest.raises(ValueError, match="name must be one of 'dates'"):
        make_task("french")
    with pytest.raises(ValueError, match="min_len must be <= max_len"):
        make_task("copy", min_len=9, max_len=4)
    with pytest.raises(TypeError, match="n_train must be an int"):
        make_task("copy", n_train=10.0)
    with pytest.raises(ValueError, match="only .* exist"):
        make_task("copy", n_symbols=2, min_len=2, max_len=3, n_train=50)
    with pytest.raises(ValueError, match="n_symbols must be <= 26"):
        make_task("copy", n_symbols=30)
    with pytest.raises(ValueError, match="distinct dates fit source lengths"):
        make_task("dates", min_len=12, max_len=15, n_train=10)
    with pytest.raises(TypeError, match="seed must be an int"):
        make_task("dates", seed="0")
    with pytest.raises(TypeError, match="task must be a Seq2SeqTask"):
        make_length_tests([], [4])
    with pytest.raises(TypeError, match="text must be a string"):
        date_tokens(["3", "March"])
    with pytest.raises(TypeError, match="tokens must be a list of token strings"):
        detokenize("dates", "3 March")


# ---------------------------------------------------------------- batches
def test_collate_shapes_offsets_and_masks(tasks):
    t = tasks["toy_language"]
    exs = t.train[:5]
    b = collate(exs, t.src_vocab, t.tgt_vocab)
    S, L = max(len(e.src) for e in exs), max(len(e.tgt) for e in exs) + 1
    assert b.src.shape == (5, S) and b.tgt_in.shape == b.tgt_out.shape == (5, L)
    assert len(b) == 5 and b.src.dtype == torch.long
    for n, ex in enumerate(exs):
        m = len(ex.tgt)
        assert b.src_lengths[n] == len(ex.src)
        assert t.src_vocab.decode(b.src[n]) == ex.src
        assert b.tgt_in[n, 0] == BOS and b.tgt_out[n, m] == EOS
        assert torch.equal(b.tgt_in[n, 1:m + 1], b.tgt_out[n, :m])  # the one-step offset
        assert b.tgt_mask[n].sum() == m + 1 and b.src_mask[n].sum() == len(ex.src)
        assert torch.all(b.tgt_out[n][~b.tgt_mask[n]] == PAD)
        assert torch.all(b.src[n][~b.src_mask[n]] == PAD)


def test_collate_reverse_source_keeps_padding_at_the_end(tasks):
    t = tasks["copy"]
    exs = t.train[:6]
    fwd = collate(exs, t.src_vocab, t.tgt_vocab)
    rev = collate(exs, t.src_vocab, t.tgt_vocab, reverse_source=True)
    assert torch.equal(fwd.src_lengths, rev.src_lengths)
    assert torch.equal(fwd.src_mask, rev.src_mask) and torch.equal(fwd.tgt_out, rev.tgt_out)
    for n, ex in enumerate(exs):
        assert t.src_vocab.decode(rev.src[n]) == ex.src[::-1]


def test_iterate_batches_covers_an_epoch_once(tasks):
    t = tasks["reverse"]
    rng = np.random.default_rng(0)
    seen = []
    for b in iterate_batches(t.valid, 32, rng=rng, src_vocab=t.src_vocab,
                             tgt_vocab=t.tgt_vocab):
        seen += [tuple(t.src_vocab.decode(r)) for r in b.src]
    assert sorted(seen) == sorted(tuple(e.src) for e in t.valid)
    sizes = [len(b) for b in iterate_batches(t.valid, 32, rng=rng, src_vocab=t.src_vocab,
                                             tgt_vocab=t.tgt_vocab, drop_last=True)]
    assert sizes == [32, 32, 32]


def test_collate_errors(tasks):
    t = tasks["copy"]
    with pytest.raises(TypeError, match="got a whole Seq2SeqTask"):
        collate(t, t.src_vocab, t.tgt_vocab)
    with pytest.raises(TypeError, match="got a single Example"):
        collate(t.train[0], t.src_vocab, t.tgt_vocab)
    with pytest.raises(ValueError, match="at least one Example"):
        collate([], t.src_vocab, t.tgt_vocab)
    with pytest.raises(ValueError, match="empty source"):
        collate([Example([], ["a"])], t.src_vocab, t.tgt_vocab)
    with pytest.raises(TypeError, match="src_vocab must be a Vocab"):
        collate(t.train[:2], None, t.tgt_vocab)
    with pytest.raises(TypeError, match="reverse_source must be True or False"):
        collate(t.train[:2], t.src_vocab, t.tgt_vocab, reverse_source=1)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        next(iterate_batches(t.train, 4, rng=0, src_vocab=t.src_vocab, tgt_vocab=t.tgt_vocab))
    with pytest.raises(TypeError, match="entry 1 is tuple"):
        collate([t.train[0], ("a", "b")], t.src_vocab, t.tgt_vocab)


def test_importing_the_tasks_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, companion.data.seq2seq; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
