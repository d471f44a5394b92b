"""nbgrader cell metadata written from the course's own exercise markers.

The chapters mark their exercises with tags and nbgrader's region markers
(CONTRIBUTING.md, "Exercises"); nbgrader itself decides by ``metadata.nbgrader``. This
tool derives the second from the first, so that the two cannot drift:

==========================================  ==============================================
a cell that ...                             gets ``metadata.nbgrader`` ...
==========================================  ==============================================
is code holding ``### BEGIN SOLUTION``      ``solution: true, grade: false`` (the answer)
is tagged ``checker``                       ``grade: true, locked: true, points`` (an
                                            autograded test: the checker raises on a wrong
                                            answer, so the cell errors and scores 0)
is markdown tagged ``solution``             ``solution: true, grade: true, points`` (a
                                            "think" answer, graded by hand)
anything else                               no ``nbgrader`` key
==========================================  ==============================================

Every ``grade_id`` names the exercise (``ex09_1-code``, ``ex09_1-test``,
``ex09_1-answer``; a second cell of the same kind gets ``-2``), from the nearest
``**Exercise N.k`` heading above the cell. Points are 1, or N for a cell tagged
``points-N``.

    python tools/coursework.py book/*.ipynb           write the metadata (idempotent)
    python tools/coursework.py --check book/*.ipynb   exit 1 if any notebook disagrees

``make student`` runs the first; ``tests/test_nbgrader.py`` runs the check and the real
nbgrader workflow.
"""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat

BEGIN = "### BEGIN SOLUTION"
EXERCISE = re.compile(r"^\*\*Exercise\s+(\d+)\.(\d+)\b", re.M)
POINTS = re.compile(r"^points-(\d+)$")


class CourseworkError(ValueError):
    """A cell whose markers cannot be turned into nbgrader metadata."""


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _points(cell) -> int:
    found = [int(m.group(1)) for t in _tags(cell) if (m := POINTS.match(t))]
    return found[0] if found else 1


def cell_kind(cell) -> str | None:
    """``"code"`` (a solution), ``"test"`` (a checker), ``"answer"`` (a think answer)."""
    tags = _tags(cell)
    if "checker" in tags:
        if cell.cell_type != "code":
            raise CourseworkError("a cell tagged 'checker' must be a code cell")
        if BEGIN in cell.source:
            raise CourseworkError("a checker cell must not hold a solution region")
        return "test"
    if cell.cell_type == "code" and BEGIN in cell.source:
        return "code"
    if cell.cell_type == "code" and "solution" in tags:
        raise CourseworkError(f"a code cell tagged 'solution' has no '{BEGIN}' region")
    if cell.cell_type == "markdown" and "solution" in tags:
        return "answer"
    return None


def nbgrader_metadata(nb) -> dict[int, dict]:
    """``{cell index: metadata.nbgrader}`` for every exercise cell of ``nb``."""
    out: dict[int, dict] = {}
    exercise = None
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and (m := EXERCISE.search(cell.source)):
            exercise = f"ex{int(m.group(1)):02d}_{int(m.group(2))}"
        try:
            kind = cell_kind(cell)
        except CourseworkError as err:
            raise CourseworkError(f"cell {index}: {err}") from None
        if kind is None:
            continue
        if exercise is None:
            raise CourseworkError(f"cell {index}: an exercise cell before any "
                                  f"'**Exercise N.k' heading")
        base = f"{exercise}-{kind}"
        seen[base] = seen.get(base, 0) + 1
        grade_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        meta = {"grade_id": grade_id, "schema_version": 3}
        if kind == "code":
            meta.update(solution=True, grade=False, locked=False, task=False)
        elif kind == "test":
            meta.update(solution=False, grade=True, locked=True, task=False,
                        points=_points(cell))
        else:
            meta.update(solution=True, grade=True, locked=False, task=False,
                        points=_points(cell))
        out[index] = meta
    return out


def apply(nb) -> int:
    """Write the metadata into ``nb`` in place; returns the number of cells changed."""
    want = nbgrader_metadata(nb)
    changed = 0
    for index, cell in enumerate(nb.cells):
        new = want.get(index)
        if cell.metadata.get("nbgrader") != new:
            changed += 1
            if new is None:
                del cell.metadata["nbgrader"]
            else:
                cell.metadata["nbgrader"] = new
    return changed


def disagreements(nb) -> list[str]:
    """Human-readable list of cells whose stored metadata differs from the markers."""
    want = nbgrader_metadata(nb)
    problems = []
    for index, cell in enumerate(nb.cells):
        have, new = cell.metadata.get("nbgrader"), want.get(index)
        if have != new:
            problems.append(f"cell {index}: stored {have}, the markers give {new}")
    return problems


def main(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    names = argv[1:] if check else argv
    if not names or names[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if names else 2
    status = 0
    for name in names:
        path = pathlib.Path(name)
        nb = nbformat.read(path, as_version=4)
        try:
            if check:
                problems = disagreements(nb)
                for problem in problems:
                    print(f"{path}: {problem}")
                status |= bool(problems)
            elif apply(nb):
                nbformat.write(nb, path)
                print(f"{path}: nbgrader metadata written")
        except CourseworkError as err:
            print(f"coursework: {path}: {err}", file=sys.stderr)
            status = 1
    if check and status:
        print("coursework: run `make student` (python tools/coursework.py book/*.ipynb) "
              "to rewrite the metadata from the markers", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
