"""The shipped corpus (the course's own prose) and the character vocabulary."""

import hashlib
import json
from importlib import resources

import numpy as np
import pytest

from companion.data.text import (
    CORPUS_FILE,
    Vocabulary,
    build_course_prose,
    course_corpus,
    train_valid_split,
)


def test_corpus_is_ascii_sizeable_and_identical_on_every_call():
    a = course_corpus()
    assert a == course_corpus()
    assert hashlib.sha256(a.encode()).digest() == hashlib.sha256(course_corpus().encode()).digest()
    assert 100_000 < len(a) < 400_000
    assert all(32 <= ord(ch) < 127 or ch == "\n" for ch in set(a))
    assert "\t" not in a and "\r" not in a
    assert 60 < len(Vocabulary.from_text(a)) < 100
    # it is the course's own prose, not another text
    assert "Backpropagation through time" in a and "hidden state" in a


def test_corpus_loads_through_importlib_resources():
    res = resources.files("companion.data").joinpath(CORPUS_FILE)
    assert res.is_file()
    raw = res.read_bytes()
    assert len(raw) < 400_000
    assert raw.decode("ascii") == course_corpus()


def test_build_course_prose(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "An arrow \u2192 and tau \u03c4.\t\n"]},
        {"cell_type": "code", "source": ["print('not prose')"]},
        {"cell_type": "markdown", "source": ["<!-- hidden -->Kept \u00fc.\n\n\n\nEnd.  "]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    md = tmp_path / "b.md"
    md.write_text("Second document.\n", encoding="utf-8")
    text = build_course_prose([path, md])
    assert text == ("# Title\nAn arrow -> and tau tau.\n\nKept ?.\n\nEnd.\n\n"
                    "Second document.\n")
    assert "not prose" not in text


def test_build_course_prose_bad_input(tmp_path):
    with pytest.raises(TypeError, match="list of files"):
        build_course_prose(str(tmp_path / "a.ipynb"))
    with pytest.raises(ValueError, match="is not a file"):
        build_course_prose([tmp_path / "missing.md"])
    bad = tmp_path / "c.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match=r"\.ipynb or \.md"):
        build_course_prose([bad])
    with pytest.raises(ValueError, match="at least one file"):
        build_course_prose([])


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
    with pytest.raises(ValueError, match="valid_fraction must be below 1"):
        train_valid_split(np.arange(10), 1.0)
    with pytest.raises(ValueError, match="ids must be 1-D"):
        train_valid_split(np.zeros((2, 5), dtype=int))
