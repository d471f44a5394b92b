"""The offline corpus and the character vocabulary."""

import numpy as np
import pytest

from companion.data.text import Vocabulary, stdlib_docs_corpus, train_valid_split


def test_corpus_is_deterministic_ascii_and_sizeable():
    a = stdlib_docs_corpus()
    assert a == stdlib_docs_corpus()
    assert len(a) > 100_000
    assert all(32 <= ord(ch) < 127 or ch == "\n" for ch in set(a))
    assert "\t" not in a
    assert len(Vocabulary.from_text(a)) < 100


def test_small_corpus_from_chosen_modules():
    text = stdlib_docs_corpus(["textwrap"])
    assert text.startswith("Text wrapping and filling.")


def test_vocabulary_round_trip():
    v = Vocabulary.from_text("hello world")
    assert v.chars == " dehlorw" and v.size == 8 and len(v) == 8
    ids = v.encode("world hello")
    assert ids.dtype == np.int64
    assert v.decode(ids) == "world hello"


def test_train_valid_split_is_contiguous():
    ids = np.arange(100)
    tr, va = train_valid_split(ids, 0.1)
    assert len(tr) == 90 and len(va) == 10 and va[0] == 90


def test_bad_input():
    v = Vocabulary.from_text("abc")
    with pytest.raises(ValueError, match="'z', which is not in the vocabulary of 3"):
        v.encode("abz")
    with pytest.raises(ValueError, match=r"ids must have every entry in \[0, 3\)"):
        v.decode([0, 3])
    with pytest.raises(TypeError, match="integer class indices"):
        v.decode([0.0, 1.0])
    with pytest.raises(ValueError, match="ids must be 1-D"):
        v.decode(np.zeros((2, 2), dtype=int))
    with pytest.raises(TypeError, match="text must be a str"):
        v.encode(["a"])
    with pytest.raises(TypeError, match="non-empty str"):
        Vocabulary.from_text("")
    with pytest.raises(ValueError, match="must not repeat"):
        Vocabulary("aab")
    with pytest.raises(TypeError, match="list of module names"):
        stdlib_docs_corpus("json")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        stdlib_docs_corpus(["no_such_module_xyz"])
    with pytest.raises(ValueError, match="valid_fraction must be below 1"):
        train_valid_split(np.arange(10), 1.0)
    with pytest.raises(ValueError, match="ids must be 1-D"):
        train_valid_split(np.zeros((2, 5), dtype=int))
