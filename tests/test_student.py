"""Student hand-outs (`make student`, tools/make_student.py) leak nothing.

The tool is tested on small synthetic notebooks, then run on every chapter: no line of
any solution region (code or prose, nbgrader markers) may survive in the hand-out, in a
source or in an output; solution and checker cells have no outputs; the hand-out is a
valid notebook; and every exercise of the source has a marked reference solution.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "make_student.py"
CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")
EXERCISE = re.compile(r"^\*\*Exercise\b", re.M)


def run_tool(out_dir: pathlib.Path, *notebooks: pathlib.Path):
    return subprocess.run([sys.executable, str(TOOL), "--out", str(out_dir),
                           *map(str, notebooks)], capture_output=True, text=True)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _split(source: str):
    """(lines inside solution / hidden-test regions, lines outside), markers excluded."""
    inside, outside, depth = [], [], 0
    for line in source.splitlines():
        if BEGIN in line or BEGIN_HIDDEN in line:
            depth += 1
        elif END in line or END_HIDDEN in line:
            depth -= 1
        else:
            (inside if depth else outside).append(line)
    return inside, outside


def _has_markers(cell) -> bool:
    return BEGIN in cell.source and END in cell.source


def _output_lines(cell):
    lines = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            lines += out.get("text", "").splitlines()
        elif out.get("output_type") == "error":
            lines += out.get("traceback", [])
        for mime in TEXT_MIMES:
            value = out.get("data", {}).get(mime)
            if value is not None:
                lines += (value if isinstance(value, str) else "".join(value)).splitlines()
    return lines


def _non_trivial(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= 4 and re.search(r"[A-Za-z0-9]", stripped) is not None


def secret_lines(nb) -> list[tuple[int, str]]:
    """(cell index, line) of every non-trivial line a hand-out must not contain.

    That is each line inside a solution region (or a whole unmarked markdown solution
    cell) and each output line of a solution or checker cell, unless the same text also
    appears outside those regions in the source (a docstring line the stub keeps, say).
    """
    secret, public = [], []
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        hidden = "solution" in tags or "checker" in tags
        if cell.cell_type == "markdown" and "solution" in tags and not _has_markers(cell):
            inside, outside = cell.source.splitlines(), []
        else:
            inside, outside = _split(cell.source)
        secret += [(i, line) for line in inside]
        public += outside
        outputs = _output_lines(cell) if cell.cell_type == "code" else []
        if hidden or inside:
            secret += [(i, line) for line in outputs]
        else:
            public += outputs
    public_text = [line.strip() for line in public]
    return [(i, line.strip()) for i, line in secret if _non_trivial(line)
            and not any(line.strip() in p for p in public_text)]


def leaks(source_nb, student_nb) -> list[str]:
    student_lines = []
    for cell in student_nb.cells:
        student_lines += [line.strip() for line in cell.source.splitlines()]
        if cell.cell_type == "code":
            student_lines += [line.strip() for line in _output_lines(cell)]
    return [f"cell {i}: {line!r}" for i, line in secret_lines(source_nb)
            if any(line in s for s in student_lines)]


# --------------------------------------------------------------------------------------
# The tool on synthetic notebooks


def _synthetic():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(
        "def latch(xs):\n"
        '    """Return the running maximum."""\n'
        "    ### BEGIN SOLUTION\n"
        "    out = np.maximum.accumulate(xs)  # the secret\n"
        "    return out\n"
        "    ### END SOLUTION\n"
        "\n"
        "value = latch([1, 3, 2])\n"
        "if True:\n"
        "        ### BEGIN SOLUTION\n"
        "        print('deep secret')\n"
        "        ### END SOLUTION",
        metadata={"tags": ["solution", "hide-cell"],
                  "mystnb": {"code_prompt_show": "Show solution",
                             "code_prompt_hide": "Hide solution"}},
        outputs=[nbformat.v4.new_output("stream", text="deep secret\n")],
        execution_count=3,
    )
    checker = nbformat.v4.new_code_cell(
        "check_latch(latch)\n### BEGIN HIDDEN TESTS\nassert latch([2]) == [2]\n"
        "### END HIDDEN TESTS",
        metadata={"tags": ["checker"]},
        outputs=[nbformat.v4.new_output("stream", text="Correct: the maximum is 3.\n")],
        execution_count=4,
    )
    prose = nbformat.v4.new_markdown_cell(
        ":::{admonition} Reference answer\n:class: dropdown\n<!-- ### BEGIN SOLUTION -->\n"
        "The state is the running maximum.\n<!-- ### END SOLUTION -->\n:::",
        metadata={"tags": ["solution"]},
    )
    whole = nbformat.v4.new_markdown_cell("An unmarked reference answer.",
                                          metadata={"tags": ["solution"]})
    plain = nbformat.v4.new_code_cell("x = 1\nx", outputs=[nbformat.v4.new_output(
        "execute_result", data={"text/plain": "1"}, execution_count=5)], execution_count=5)
    nb.cells = [nbformat.v4.new_markdown_cell("**Exercise 1.1.** Write `latch`."),
                code, checker, prose, whole, plain]
    return nb


def test_tool_stubs_code_and_prose_and_clears_outputs(tmp_path):
    src = tmp_path / "ch01_x.ipynb"
    nbformat.write(_synthetic(), src)
    result = run_tool(tmp_path / "out", src)
    assert result.returncode == 0, result.stderr
    student = nbformat.read(tmp_path / "out" / src.name, as_version=4)
    nbformat.validate(student)
    intro, code, checker, prose, whole, plain = student.cells
    assert code.source == (
        "def latch(xs):\n"
        '    """Return the running maximum."""\n'
        '    raise NotImplementedError("Your solution here")\n'
        "\n"
        "value = latch([1, 3, 2])\n"
        "if True:\n"
        '        raise NotImplementedError("Your solution here")'
    )
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata["tags"] == ["solution"] and "mystnb" not in code.metadata
    assert checker.source == "check_latch(latch)"
    assert checker.outputs == [] and checker.execution_count is None
    assert prose.source == "*Your answer here.*"  # the "Reference answer" box goes too
    assert whole.source == "*Your answer here.*"
    assert plain.outputs[0]["data"]["text/plain"] == "1"  # other cells untouched
    assert leaks(_synthetic(), student) == []


def test_leak_check_finds_what_a_naive_hand_out_keeps(tmp_path):
    """The leak check itself can fail: a copy that keeps solutions and outputs is caught."""
    source = _synthetic()
    found = leaks(source, _synthetic())
    assert any("the secret" in f for f in found)
    assert any("deep secret" in f for f in found)
    assert any("Correct: the maximum is 3." in f for f in found)
    assert any("running maximum." in f for f in found)
    assert any("An unmarked reference answer." in f for f in found)
    assert not any("Return the running maximum" in f for f in found)  # docstring stays


@pytest.mark.parametrize("source, message", [
    ("def f():\n    return 42", "without '### BEGIN SOLUTION'"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 42", "never closed"),
    ("def f():\n    return 42\n    ### END SOLUTION", "without '### BEGIN SOLUTION'"),
])
def test_tool_refuses_unmarked_or_unpaired_solutions(tmp_path, source, message):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["solution"]})]
    src = tmp_path / "bad.ipynb"
    nbformat.write(nb, src)
    result = run_tool(tmp_path / "out", src)
    assert result.returncode == 1
    assert "bad.ipynb: cell 0" in result.stderr and message in result.stderr
    assert not (tmp_path / "out" / "bad.ipynb").exists()


# --------------------------------------------------------------------------------------
# The chapters


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_handout_leaks_nothing(nb, tmp_path):
    out = tmp_path / "student"
    result = run_tool(out, nb)
    if result.returncode != 0:
        pytest.fail(f"make student failed:\n{result.stderr}", pytrace=False)
    source = nbformat.read(nb, as_version=4)
    student = nbformat.read(out / nb.name, as_version=4)
    nbformat.validate(student)
    assert len(student.cells) == len(source.cells)
    for i, (before, after) in enumerate(zip(source.cells, student.cells)):
        if {"solution", "checker"} & set(_tags(before)) and after.cell_type == "code":
            assert after.outputs == [], f"{nb.name} cell {i}: outputs kept in the hand-out"
            assert after.execution_count is None
    found = leaks(source, student)
    assert not found, f"{nb.name}: {len(found)} leaked line(s):\n" + "\n".join(found)


@pytest.fixture(scope="module")
def fresh_handouts(tmp_path_factory):
    """What `make student` writes today, for every chapter at once."""
    out = tmp_path_factory.mktemp("handouts")
    result = run_tool(out, *CHAPTERS)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_committed_handout_is_exactly_what_the_tool_makes(nb, fresh_handouts):
    committed = ROOT / "student" / nb.name
    assert committed.is_file(), f"student/{nb.name} is missing: run `make student`"
    assert committed.read_bytes() == (fresh_handouts / nb.name).read_bytes(), (
        f"student/{nb.name} is stale: run `make student` and commit it with book/")
    found = leaks(nbformat.read(nb, as_version=4), nbformat.read(committed, as_version=4))
    assert not found, f"student/{nb.name} leaks:\n" + "\n".join(found)


def test_no_stray_handouts():
    assert sorted(p.name for p in (ROOT / "student").glob("*")) == sorted(p.name for p in CHAPTERS)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_no_solution_line_stands_on_the_page(nb):
    """No code line of a solution (16+ characters, comments and whitespace ignored) is
    shown anywhere else in the chapter, where a student would find the answer."""
    sys.path.insert(0, str(TOOL.parent))
    import make_student

    found = make_student.page_leaks(nbformat.read(nb, as_version=4))
    assert not found, f"{nb.name}: solution lines shown outside the solutions:\n" + "\n".join(
        f"  solution cell {s}, visible cell {v}: {line}" for s, v, line in found)


def test_page_check_finds_a_solution_line_shown_elsewhere():
    sys.path.insert(0, str(TOOL.parent))
    import make_student

    nb = _synthetic()
    assert make_student.page_leaks(nb) == []
    nb.cells.append(nbformat.v4.new_code_cell("out = np.maximum.accumulate(xs)"))
    assert [(s, v) for s, v, _ in make_student.page_leaks(nb)] == [(1, 6)]


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_exercise_has_a_marked_reference_solution(nb):
    cells = nbformat.read(nb, as_version=4).cells
    starts = [i for i, c in enumerate(cells)
              if c.cell_type == "markdown" and EXERCISE.search(c.source)]
    assert starts, f"{nb.name}: no '**Exercise' headings"
    missing = []
    for i in starts:
        heading = EXERCISE.split(cells[i].source, maxsplit=1)[1].splitlines()[0][:40]
        block = []
        for cell in cells[i + 1:]:
            if cell.cell_type == "markdown" and (EXERCISE.search(cell.source)
                                                 or re.match(r"#{1,2} ", cell.source)):
                break
            block.append(cell)
        if not any("solution" in _tags(c) and _has_markers(c) for c in block):
            missing.append(f"cell {i} (Exercise{heading})")
    assert not missing, (f"{nb.name}: exercises without a solution cell carrying "
                         f"'{BEGIN}' / '{END}': {missing}")
