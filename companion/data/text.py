"""Character-level text for language models, shipped with the package.

The corpus is :func:`course_corpus`: a frozen snapshot of this course's own prose (the
markdown of the chapters, the introduction and the design notes, as they stood when
the snapshot was taken), written by this project and shipped as package data in
``companion/data/course_prose.txt``. It is read with :mod:`importlib.resources`, so it
is found in an editable checkout, a wheel or Colab alike, and it is the same text, byte
for byte, on every machine and every Python version. Nothing is downloaded and nothing
is read from the running Python's own files.

:func:`build_course_prose` is how the snapshot was made, kept so that it can be
rebuilt deliberately (``python -m companion.data.text --build FILE ...``); the book
never rebuilds it, so its numbers do not move when the chapters are edited. The shipped
snapshot was built from the repository at commit ``9c14ebc``, in this order: the design
notes ``CHAPTER_GUIDE.md``, ``ARCHITECTURE.md`` and ``EXPERIMENTS.md`` (kept beside the
repository), ``book/intro.md``, chapters 1 to 6 and ``book/notation.ipynb``, giving
132,215 characters over 93 distinct symbols.

Text is cleaned to printable ASCII: a few symbols are spelled out (``->`` for an
arrow, ``tau`` for the Greek letter), tabs become spaces and any other character
becomes ``?``, so the vocabulary stays under a hundred symbols.
"""

from __future__ import annotations

import json
import re
import string
from importlib import resources
from pathlib import Path

import numpy as np

from companion.checks import check_int_array, check_probability

__all__ = ["CORPUS_FILE", "Vocabulary", "build_course_prose", "course_corpus",
           "train_valid_split"]

#: Name of the shipped snapshot inside the ``companion.data`` package.
CORPUS_FILE = "course_prose.txt"

_ALLOWED = set(string.printable) - set("\t\r\x0b\x0c")
_SPELLED = {"\u2192": "->", "\u2190": "<-", "\u00d7": "x", "\u03b8": "theta",
            "\u0177": "y_hat", "\u03c4": "tau", "\u2207": "grad", "\u00b0": " degrees",
            "\u2212": "-", "\u2013": "-", "\u2014": " - ", "\u2018": "'", "\u2019": "'",
            "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u2248": "~", "\u00e9": "e"}
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _clean(text: str) -> str:
    """Printable ASCII with newlines; known symbols spelled out, others replaced by ``?``."""
    text = text.replace("\t", "    ").replace("\r\n", "\n")
    out = "".join(_SPELLED.get(ch, ch) for ch in text)
    return "".join(ch if ch in _ALLOWED else "?" for ch in out)


def _markdown_of(path: Path) -> str:
    """The markdown of a notebook (its markdown cells, in order) or of a ``.md`` file."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        parts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    elif path.suffix == ".md":
        parts = [path.read_text(encoding="utf-8")]
    else:
        raise ValueError(f"paths must be .ipynb or .md files; got {str(path)!r}.")
    return "\n\n".join(parts)


def build_course_prose(paths) -> str:
    """Extract and clean the markdown of ``paths`` (notebooks or ``.md`` files), in order.

    HTML comments are dropped, runs of blank lines collapse to one, trailing spaces go,
    and the result is printable ASCII (see the module docstring). The documents are
    separated by a blank line. This is how ``course_prose.txt`` was built.
    """
    if isinstance(paths, (str, Path)):
        raise TypeError(f"paths must be a list of files; got the single path {str(paths)!r}. "
                        f"Use [{str(paths)!r}].")
    try:
        paths = list(paths)
    except TypeError as err:
        raise TypeError(f"paths must be a list of files; got {type(paths).__name__}.") from err
    docs = []
    for i, p in enumerate(paths):
        if not isinstance(p, (str, Path)):
            raise TypeError(f"paths[{i}] must be a file path (str or pathlib.Path); got "
                            f"{type(p).__name__} {p!r}.")
        p = Path(p)
        if not p.is_file():
            raise ValueError(f"paths: {str(p)!r} is not a file.")
        text = _COMMENT.sub("", _markdown_of(p))
        lines = [ln.rstrip() for ln in _clean(text).split("\n")]
        docs.append(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip())
    if not docs:
        raise ValueError("paths must name at least one file.")
    return "\n\n".join(docs) + "\n"


def course_corpus() -> str:
    """The shipped snapshot of the course's prose: printable ASCII, the same everywhere.

    Returns
    -------
    str
        A little over a hundred thousand characters of English prose about recurrent
        networks (with some LaTeX and Markdown), read from the package data file
        :data:`CORPUS_FILE` through :mod:`importlib.resources`.
    """
    return resources.files("companion.data").joinpath(CORPUS_FILE).read_text(encoding="ascii")


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
        if type(ids).__module__.startswith("torch"):
            ids = ids.detach().cpu().numpy()
        ids = check_int_array("ids", ids, low=0, high=self.size)
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, shape (T,); got shape {ids.shape}.")
        return "".join(self.chars[i] for i in ids)


def train_valid_split(ids, valid_fraction: float = 0.1):
    """Split a 1-D id sequence into a leading training part and a trailing validation part.

    A contiguous split (not a random one) keeps validation text unseen in training.
    """
    if isinstance(ids, str):
        raise TypeError("ids must be a 1-D array of integer ids; got a string. Encode it first: "
                        "Vocabulary.from_text(text).encode(text).")
    if type(ids).__module__.startswith("torch"):
        ids = ids.detach().cpu().numpy()
    ids = check_int_array("ids", ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, shape (T,); got shape {ids.shape}.")
    frac = check_probability("valid_fraction", valid_fraction, open_low=True)
    if frac >= 1.0:
        raise ValueError("valid_fraction must be below 1 so that some text is left for training.")
    cut = len(ids) - int(round(len(ids) * frac))
    if cut < 1 or cut >= len(ids):
        raise ValueError(f"ids ({len(ids)} ids) is too short for valid_fraction={frac}: the split "
                         f"would leave {cut} training and {len(ids) - cut} validation ids; both "
                         f"parts need at least one. Use more text or another fraction.")
    return ids[:cut], ids[cut:]


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m companion.data.text",
        description="Rebuild the shipped corpus snapshot from the course's markdown.")
    parser.add_argument("--build", nargs="+", metavar="FILE", required=True,
                        help="notebooks (.ipynb) and Markdown files, in order")
    parser.add_argument("--out", default=str(Path(__file__).with_name(CORPUS_FILE)),
                        help="where to write the snapshot (default: the package's copy)")
    args = parser.parse_args(argv)
    text = build_course_prose(args.build)
    Path(args.out).write_text(text, encoding="ascii")
    print(f"wrote {len(text):,} characters to {args.out}")


if __name__ == "__main__":
    _main()
