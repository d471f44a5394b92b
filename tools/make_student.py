"""Write student hand-outs of the chapters with every solution removed (``make student``).

The chapters use nbgrader's markers (and carry its cell metadata, tools/coursework.py),
so nbgrader's ``generate_assignment`` makes its own student copies; this script makes
the hand-outs students open from the repository (Colab, Binder) without nbgrader:

* In every code cell, each region between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (marker lines included) becomes
  ``raise NotImplementedError("Your solution here")``, indented like the BEGIN marker.
  The lines outside the markers (the ``def`` line, the docstring) stay.
* A markdown cell tagged ``solution`` (a "think" question's reference answer, in a
  collapsed "Reference answer" box in the book) becomes ``*Your answer here.*`` as a
  whole, box and title included; in any other markdown cell, each marked region (the
  markers sit inside HTML comments, ``<!-- ### BEGIN SOLUTION -->``) becomes
  ``*Your answer here.*``.
* Regions between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed.
* Outputs (and execution counts) of ``solution`` and ``checker`` cells, and of every cell
  that held a marked region, are cleared; ``hide-*``/``remove-*`` tags and the
  "Show solution" toggle labels are dropped from the stubs, so the student sees them.

A code cell tagged ``solution`` without markers, or markers that do not pair up, is an
error: the script names the cell and exits with status 1 without writing anything, since
a hand-out that silently kept a solution would leak it.

The hand-outs are committed in ``student/`` (``make student`` rewrites them, and
``tests/test_student.py`` fails if they differ from what this script makes of
``book/``), so that Colab and Binder can open them.

    python tools/make_student.py [--out DIR] book/ch01_recurrence.ipynb [...]
    python tools/make_student.py --check book/ch01_recurrence.ipynb [...]
"""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = 'raise NotImplementedError("Your solution here")'
PROSE_STUB = "*Your answer here.*"
HIDING_TAGS = re.compile(r"^(hide|remove)-(cell|input|output)$")


class MarkerError(ValueError):
    """A solution cell whose markers are missing or do not pair up."""


def _replace_regions(source: str, begin: str, end: str, stub) -> tuple[str, int]:
    """Replace each ``begin``..``end`` region of ``source`` (marker lines included).

    ``stub(indent)`` gives the replacement text (``None`` removes the region); returns the
    new source and the number of regions replaced. Raises MarkerError on unpaired markers.
    """
    out: list[str] = []
    inside, count, indent = False, 0, ""
    for number, line in enumerate(source.splitlines(), start=1):
        if begin in line:
            if inside:
                raise MarkerError(f"line {number}: '{begin}' inside an open region")
            inside, count = True, count + 1
            indent = line[: len(line) - len(line.lstrip())]
            replacement = stub(indent)
            if replacement is not None:
                out.append(replacement)
        elif end in line:
            if not inside:
                raise MarkerError(f"line {number}: '{end}' without '{begin}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"'{begin}' never closed by '{end}'")
    return "\n".join(out), count


def student_cell(cell) -> bool:
    """Turn one cell into its hand-out form in place; returns True if it was changed."""
    tags = list(cell.metadata.get("tags", []))
    is_solution, is_checker = "solution" in tags, "checker" in tags
    changed = False
    if cell.cell_type == "code":
        source, n = _replace_regions(cell.source, BEGIN, END, lambda ind: ind + CODE_STUB)
        if is_solution and n == 0:
            raise MarkerError(f"solution cell without '{BEGIN}' / '{END}' markers")
        source, hidden = _replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, lambda ind: None)
        if n or hidden or is_solution or is_checker:
            cell.source = source
            cell.outputs, cell.execution_count = [], None
            changed = True
    elif cell.cell_type == "markdown":
        source, n = _replace_regions(cell.source, BEGIN, END, lambda ind: PROSE_STUB)
        if is_solution:
            source = PROSE_STUB
        if n or is_solution:
            cell.source = source
            changed = True
    if changed and (is_solution or is_checker):
        cell.metadata["tags"] = [t for t in tags if not HIDING_TAGS.match(t)]
        mystnb = cell.metadata.get("mystnb", {})
        for key in ("code_prompt_show", "code_prompt_hide"):
            mystnb.pop(key, None)
        if "mystnb" in cell.metadata and not mystnb:
            del cell.metadata["mystnb"]
    return changed


def student_notebook(nb) -> int:
    """Hand-out form of a whole notebook, in place; returns the number of cells changed.

    Raises MarkerError naming the cell (index and first line) at the first bad cell.
    """
    changed = 0
    for index, cell in enumerate(nb.cells):
        try:
            changed += student_cell(cell)
        except MarkerError as err:
            first = cell.source.splitlines()[0] if cell.source.strip() else "(empty)"
            raise MarkerError(f"cell {index} ({cell.cell_type}, '{first[:60]}'): {err}") from None
    return changed


def _normalised(line: str) -> str:
    """A code line without its comment and without any whitespace."""
    code = re.split(r"\s#\s|^\s*#", line, maxsplit=1)[0]
    return re.sub(r"\s+", "", code)


MIN_LEAK = 16  # shorter lines (``return out``, ``h = h0``) say nothing about an answer


def page_leaks(nb) -> list[tuple[int, int, str]]:
    """Solution lines that the page shows outside the solutions.

    Returns ``(solution cell, visible cell, line)`` for every line of a code solution
    region whose text (comment and whitespace removed, at least ``MIN_LEAK`` characters)
    also stands in a cell the student sees: any cell that is not itself a solution, code
    or markdown. Such a line means the exercise is answered on the page.
    """
    visible = []
    for index, cell in enumerate(nb.cells):
        if "solution" in cell.metadata.get("tags", []) or BEGIN in cell.source:
            continue
        visible.append((index, re.sub(r"\s+", "", cell.source)))
    leaks = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        inside = False
        for line in cell.source.splitlines():
            if BEGIN in line or END in line:
                inside = BEGIN in line
                continue
            key = _normalised(line) if inside else ""
            if len(key) < MIN_LEAK:
                continue
            for where, text in visible:
                if key in text:
                    leaks.append((index, where, line.strip()))
                    break
    return leaks


def check_pages(paths) -> int:
    """``--check``: print every solution line a chapter shows elsewhere; 1 if any."""
    found = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for sol, where, line in page_leaks(nb):
            print(f"{path}: solution in cell {sol} also in cell {where}: {line}")
            found += 1
    print(f"make_student --check: {found} solution line(s) stand on the page outside the solutions")
    return 1 if found else 0


def main(argv: list[str]) -> int:
    out_dir = pathlib.Path("student")
    if argv[:1] == ["--check"]:
        return check_pages([pathlib.Path(name) for name in argv[1:]])
    if argv[:1] == ["--out"]:
        out_dir, argv = pathlib.Path(argv[1]), argv[2:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    missing = [name for name in argv if not pathlib.Path(name).is_file()]
    if missing:
        print(f"make_student: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = []
    errors = []
    for name in argv:
        path = pathlib.Path(name)
        nb = nbformat.read(path, as_version=4)
        try:
            count = student_notebook(nb)
        except MarkerError as err:
            errors.append(f"{path}: {err}")
            continue
        nbformat.validate(nb)
        results.append((path, nb, count))
    if errors:
        for message in errors:
            print(f"make_student: ERROR {message}", file=sys.stderr)
        print("make_student: no hand-out written; wrap each solution in "
              f"'{BEGIN}' / '{END}' (see CONTRIBUTING.md).", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, nb, count in results:
        nbformat.write(nb, out_dir / path.name)
        print(f"{out_dir / path.name}: {count} cell(s) stubbed or cleared")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
