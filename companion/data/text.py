"""Character-level text for language models, read from what every machine already has.

The corpus is the documentation of a fixed list of Python standard-library modules:
the docstrings of each module and of its public functions and classes, gathered
with :func:`inspect.getdoc` in a fixed order. It is English prose about programming
(a couple of hundred thousand characters), it needs no download, and it is the same
on every machine with the same Python version. The course pins Python 3.11; another
version gives a slightly different text and so slightly different numbers.

Characters outside printable ASCII are replaced by ``?`` and tabs by spaces, so the
vocabulary stays under a hundred symbols.
"""

from __future__ import annotations

import importlib
import inspect
import string

import numpy as np

from companion.checks import check_int_array, check_probability

__all__ = ["DEFAULT_MODULES", "Vocabulary", "stdlib_docs_corpus", "train_valid_split"]

#: Pure-Python standard-library modules with plenty of prose in their docstrings.
DEFAULT_MODULES = (
    "argparse", "textwrap", "json", "statistics", "shutil", "subprocess", "logging",
    "difflib", "re", "os", "tempfile", "contextlib", "dataclasses", "csv", "threading",
    "urllib.parse", "http.client", "zipfile", "calendar", "copy",
)

_ALLOWED = set(string.printable) - set("\t\r\x0b\x0c")


def _clean(text: str) -> str:
    text = text.replace("\t", "    ")
    return "".join(ch if ch in _ALLOWED else "?" for ch in text)


def stdlib_docs_corpus(modules=DEFAULT_MODULES) -> str:
    """The docstrings of ``modules`` (module, then public functions and classes by name).

    Parameters
    ----------
    modules : sequence of importable module names (default :data:`DEFAULT_MODULES`).

    Returns
    -------
    str, documents separated by blank lines, printable ASCII only.
    """
    if isinstance(modules, str):
        raise TypeError(f"modules must be a list of module names; got the string {modules!r}. "
                        f"Use [{modules!r}].")
    parts = []
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"modules: cannot import {name!r} ({err}); "
                             f"use standard-library module names.") from err
        doc = inspect.getdoc(mod)
        if doc:
            parts.append(doc)
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                doc = inspect.getdoc(obj)
                if doc:
                    parts.append(doc)
    return _clean("\n\n".join(parts))


class Vocabulary:
    """A character vocabulary: ``encode`` a string to integer ids, ``decode`` them back.

    The symbols are the sorted distinct characters of the text it was built from,
    so the same text always gives the same ids.

    >>> v = Vocabulary.from_text("hello")
    >>> v.chars, v.encode("hole").tolist(), v.decode([3, 1])
    ('ehlo', [1, 3, 2, 0], 'oh')
    """

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars:
            raise TypeError(f"chars must be a non-empty string of symbols; got {chars!r}.")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat a symbol; build it with Vocabulary.from_text.")
        self.chars = chars
        self._index = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        if not isinstance(text, str) or not text:
            raise TypeError(f"text must be a non-empty str; got {type(text).__name__}.")
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 ids; raises ``ValueError`` naming an unknown character."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; got {type(text).__name__}.")
        try:
            return np.array([self._index[ch] for ch in text], dtype=np.int64)
        except KeyError as err:
            raise ValueError(
                f"text contains {err.args[0]!r}, which is not in the vocabulary of "
                f"{self.size} symbols. Build the vocabulary from text that includes it."
            ) from None

    def decode(self, ids) -> str:
        """The string for a 1-D sequence of ids in ``[0, size)``."""
        ids = check_int_array("ids", ids, low=0, high=self.size)
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, shape (T,); got shape {ids.shape}.")
        return "".join(self.chars[i] for i in ids)


def train_valid_split(ids, valid_fraction: float = 0.1):
    """Split a 1-D id sequence into a leading training part and a trailing validation part.

    A contiguous split (not a random one) keeps validation text unseen in training.
    """
    ids = check_int_array("ids", ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, shape (T,); got shape {ids.shape}.")
    frac = check_probability("valid_fraction", valid_fraction, open_low=True)
    if frac >= 1.0:
        raise ValueError("valid_fraction must be below 1 so that some text is left for training.")
    cut = len(ids) - int(round(len(ids) * frac))
    return ids[:cut], ids[cut:]
