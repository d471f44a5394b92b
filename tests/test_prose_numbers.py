"""Numbers in the prose come from the notebook's own outputs (CONTRIBUTING, "Numbers in prose").

Every decimal number written in a markdown cell (``0.999``, ``3.1``, ``4.1e-8``, ``1e-2``,
``99.9%``; integers are not checked) must match, after rounding to the digits the prose
shows, a number printed in an output (stream, ``text/plain``, ``text/markdown``,
``text/html``) or written in a code cell of the same notebook, shown there with at least
as many digits. Not checked: math (``$...$``, ``$$...$$``, amsmath environments), inline
code and roles (``{cite}`...```), URLs and link targets, HTML comments and tags, code
fences, directive options, and the strings listed in the markdown cell's metadata
``"prose_numbers": {"exempt": [...]}`` (a paper's figure, a version: the prose says where
it comes from). ``10.2.4`` is a section number, not ``10.2``; the full stop in
``is 0.95.`` ends the sentence.

Report for one notebook: ``python tests/test_prose_numbers.py book/ch05_long_term.ipynb``.
"""

from __future__ import annotations

import pathlib
import re
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
OUTPUT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")

# A decimal number in prose: digits '.' digits with an optional exponent, or an integer
# mantissa with an exponent (1e-2). Not glued to a word or to a dotted chain (10.2.4).
PROSE_NUMBER = re.compile(
    r"(?<![\w.])(?:\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\d_]|\.\d|[eE][-+]?\d)"
)
# Any number in code or outputs (integers too: they can match "1.0e6").
ANY_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|(?<![\w\d])\.\d+(?:[eE][-+]?\d+)?")

_MASKS = [
    re.compile(r"<!--.*?-->", re.S),                                   # HTML comments
    re.compile(r"^(`{3,}|~{3,})(?!\{(?!math|code))[^\n]*\n.*?^\1[ \t]*$", re.S | re.M),  # code
    re.compile(r"^(`{3,})\{math\}.*?^\1[ \t]*$", re.S | re.M),         # math directive
    re.compile(r"\$\$.*?\$\$", re.S),                                  # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),            # amsmath
    re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$(?!\d)"),      # inline math
    re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S),                      # \( \) and \[ \]
    re.compile(r"(`+).+?\1", re.S),                                    # inline code, roles
    re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+|www\.\S+"),  # link targets, URLs
    re.compile(r"<[^>\n]+>"),                                          # HTML tags
    re.compile(r"^\s*:[\w-]+:.*$", re.M),                              # directive options
    re.compile(r"^\([\w.:-]+\)=\s*$", re.M),                           # label targets
    # References, not measurements: "Exercise 5.1", "sections 10.1 to 10.2", "Python 3.11".
    re.compile(r"(?:\b(?:[Ee]xercises?|[Ss]ections?|[Cc]hapters?|[Ff]ig(?:ure)?s?|[Tt]ables?|"
               r"[Ee]q(?:uation)?s?|[Aa]lgorithms?|[Pp]ython|[Vv]ersions?)\.?|§)[ \t(~]*"
               r"\d+(?:\.\d+)*(?:[ \t]*(?:,|and|to|or|-|–)[ \t]*\d+(?:\.\d+)+)*"),
]


def prose_text(markdown: str) -> str:
    """The markdown with everything that is not prose blanked out (offsets kept)."""
    for mask in _MASKS:
        markdown = mask.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), markdown)
    return markdown


def prose_numbers(markdown: str, exempt=()) -> list[str]:
    """Decimal numbers written in the prose of one markdown cell, in order."""
    text = prose_text(markdown)
    return [m.group(0) for m in PROSE_NUMBER.finditer(text) if m.group(0) not in exempt]


def _value(token: str) -> tuple[Decimal, int]:
    """(value, exponent of the last digit shown): '0.95' -> (0.95, -2), '4.1e-8' -> -9."""
    value = Decimal(token)
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return value, int(exponent or 0) - decimals


def candidates(nb) -> list[tuple[Decimal, int]]:
    """Every number shown in an output or written in a code cell of the notebook."""
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        texts.append(_join(cell["source"]))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(_join(out.get("text", "")))
            for mime in OUTPUT_MIMES:
                if mime in out.get("data", {}):
                    texts.append(_join(out["data"][mime]))
    found = set()
    for text in texts:
        for m in ANY_NUMBER.finditer(text):
            try:
                found.add(_value(m.group(0)))
            except InvalidOperation:
                continue
    return sorted(found)


def _join(value) -> str:
    return value if isinstance(value, str) else "".join(value)


def matches(token: str, pool) -> bool:
    """Whether ``token`` equals some number of ``pool`` rounded to the token's digits.

    The pool number must show at least as many digits (its last digit at the same place
    or further right). A trailing percent sign also accepts the fraction (99.9% ~ 0.999).
    """
    value, place = _value(token.rstrip("%"))
    targets = [(value, place)]
    if token.endswith("%"):
        targets.append((value / 100, place - 2))
    for target, where in targets:
        quantum = Decimal(1).scaleb(where)
        for number, shown in pool:
            if shown > where or not number.is_finite():
                continue
            if any(abs(number).quantize(quantum, rounding=r) == target
                   for r in (ROUND_HALF_EVEN, ROUND_HALF_UP)):
                return True
    return False


def unmatched(nb) -> list[str]:
    """'cell i: token in "context"' for every prose number with no source in the notebook."""
    pool = candidates(nb)
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = _join(cell["source"])
        exempt = cell.get("metadata", {}).get("prose_numbers", {}).get("exempt", [])
        text = prose_text(source)
        for m in PROSE_NUMBER.finditer(text):
            token = m.group(0)
            if token in exempt:
                continue
            if text[m.end():m.end() + 1] == "%":
                token += "%"
            if not matches(token, pool):
                context = " ".join(source[max(0, m.start() - 40):m.end() + 30].split())
                problems.append(f"cell {i}: {token}  ...{context}...")
    return problems


# --------------------------------------------------------------------------------------
# The matcher on small cases


@pytest.mark.parametrize("markdown, expected", [
    ("The loss is 0.95.", ["0.95"]),
    ("Section 10.2.4 of the book, and 10.2.", ["10.2"]),
    ("values 3.1, 4.1e-8 and 2.4e-23; 1.0e6 steps at lr 1e-2", ["3.1", "4.1e-8", "2.4e-23",
                                                                 "1.0e6", "1e-2"]),
    ("an integer 42 and 7 are not checked", []),
    ("math $x = 0.5$ and $$y = 0.25$$ and \\begin{equation}z = 0.125\\end{equation}", []),
    ("code `lr=0.3` and {cite}`goodfellow2016` and {eq}`eq-1.2`", []),
    ("a [link](https://example.org/v1.5/x.html) and https://a.org/2.5", []),
    ("<!-- hidden 0.7 --> version v1.2 is glued to a letter", []),
    (":::{figure} x.png\n:width: 80.5%\nA caption with 0.33.\n:::", ["0.33"]),
    ("```python\nx = 0.5\n```\nthen 0.6", ["0.6"]),
    ("a 2.5x speed-up, 99.9% solved", ["2.5", "99.9"]),
    ("(0.252, 0.258)", ["0.252", "0.258"]),
    ("**Exercise 5.1 (x).** See exercise 1.3, section 10.2 and sections 10.1 to 10.9.", []),
    ("Goodfellow et al. (section 10.10), Python 3.11, Fig. 2.1, eq. 1.2, and then 0.4", ["0.4"]),
])
def test_prose_numbers_are_parsed(markdown, expected):
    assert prose_numbers(markdown) == expected


def test_exempt_numbers_are_skipped():
    assert prose_numbers("Their 0.171 and our 0.5.", exempt=["0.171"]) == ["0.5"]


def _nb(markdown, code="", output="", metadata=None):
    cells = [{"cell_type": "markdown", "source": markdown, "metadata": metadata or {}}]
    if code or output:
        cells.append({"cell_type": "code", "source": code, "metadata": {},
                      "outputs": [{"output_type": "stream", "name": "stdout", "text": output}]})
    return {"cells": cells}


@pytest.mark.parametrize("markdown, code, output", [
    ("solved 0.95 of them", "", "solved: 0.9512\n"),
    ("solved 0.95 of them", "", "[0.95 0.3]\n"),
    ("drops by 4.1e-8", "", "drop = 4.13e-08\n"),
    ("drops by 4.1e-8", "", "drop = 0.0000000412\n"),
    ("1.0e6 steps", "steps = 1000000", ""),
    ("at lr 1e-2", "train(lr=1e-2)", ""),
    ("99.9% solved", "", "solved fraction 0.999\n"),
    ("the mean moves by 0.5", "", "delta = -0.50\n"),
    ("R^2 = 1.0000 by construction", "", "R^2 = 1.0000\n"),
])
def test_matcher_accepts_numbers_that_are_shown(markdown, code, output):
    assert unmatched(_nb(markdown, code, output)) == []


@pytest.mark.parametrize("markdown, code, output", [
    ("solved 0.95 of them", "", "solved: 0.94\n"),          # another number
    ("solved 0.95 of them", "", "solved: nan\n"),           # NaN is never a match
    ("solved 0.95 of them", "", ""),                        # nothing printed
    ("solved 0.90 of them", "", "solved: 0.9\n"),           # prose claims more digits
    ("drops by 4.1e-8", "", "drop = 4.1e-07\n"),            # wrong exponent
    ("the markdown itself, 0.5, is no source", "", "0.4\n"),
])
def test_matcher_rejects_numbers_that_are_not_shown(markdown, code, output):
    assert len(unmatched(_nb(markdown, code, output))) == 1


def test_exempt_metadata_is_honoured():
    nb = _nb("their 0.171 (cited)", "", "", {"prose_numbers": {"exempt": ["0.171"]}})
    assert unmatched(nb) == []


# --------------------------------------------------------------------------------------
# The notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_numbers_come_from_outputs(path):
    import json

    problems = unmatched(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, (
        f"{path.name}: {len(problems)} number(s) in the prose appear in no output or code "
        "cell (print them, or list a cited figure in the cell's metadata "
        "prose_numbers.exempt):\n  " + "\n  ".join(problems)
    )


if __name__ == "__main__":
    import json

    status = 0
    for name in sys.argv[1:] or map(str, NOTEBOOKS):
        found = unmatched(json.loads(pathlib.Path(name).read_text(encoding="utf-8")))
        print(f"{name}: {len(found)} unmatched")
        for line in found:
            print(f"  {line}")
        status |= bool(found)
    sys.exit(status)
