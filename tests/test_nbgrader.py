"""Coursework with nbgrader: metadata written from the markers, and the real workflow.

tools/coursework.py derives every cell's ``metadata.nbgrader`` from the course's exercise
markers; the first tests check that the stored metadata is exactly that (so the two
cannot drift) and that the tool reads markers as intended. The rest read the report of
tools/nbgrader_workflow.py, which runs nbgrader itself over every chapter (started in
the background by ``--nbgrader``, see conftest.py): the release copy holds no solution
and no output, the reference answers typed into the released copy earn every automatic
point, the untouched release earns none, and feedback is written for both.
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import coursework  # noqa: E402

from test_student import leaks  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))


# --------------------------------------------------------------------------------------
# Metadata from markers


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_stored_metadata_is_what_the_markers_give(nb):
    problems = coursework.disagreements(nbformat.read(nb, as_version=4))
    assert not problems, ("nbgrader metadata and exercise markers disagree (run "
                          "`make student`):\n" + "\n".join(problems))


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_every_exercise_is_graded_and_ids_are_unique(nb):
    book = nbformat.read(nb, as_version=4)
    metas = [c.metadata["nbgrader"] for c in book.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in metas]
    assert len(ids) == len(set(ids))
    exercises = {m.group(0) for c in book.cells if c.cell_type == "markdown"
                 for m in [coursework.EXERCISE.search(c.source)] if m}
    graded = {i.split("-")[0] for i, m in zip(ids, metas) if m.get("grade")}
    assert len(graded) == len(exercises) >= 3, (
        f"{nb.name}: {len(exercises)} exercises but {len(graded)} with a graded cell")
    assert all(m.get("points", 1) > 0 for m in metas)


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_tool_reads_the_markers():
    heading = nbformat.v4.new_markdown_cell("**Exercise 3.2 (a loop).** Write it.")
    code = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x\n"
                                     "    ### END SOLUTION", metadata={"tags": ["solution"]})
    check = nbformat.v4.new_code_cell("check_f(f)", metadata={"tags": ["checker", "points-3"]})
    answer = nbformat.v4.new_markdown_cell("<!-- ### BEGIN SOLUTION -->\nBecause.\n"
                                           "<!-- ### END SOLUTION -->",
                                           metadata={"tags": ["solution"]})
    plain = nbformat.v4.new_code_cell("x = 1")
    nb = _nb(heading, code, check, answer, plain)
    meta = coursework.nbgrader_metadata(nb)
    assert sorted(meta) == [1, 2, 3]
    assert meta[1] == {"grade_id": "ex03_2-code", "schema_version": 3, "solution": True,
                       "grade": False, "locked": False, "task": False}
    assert meta[2]["grade"] and meta[2]["locked"] and meta[2]["points"] == 3
    assert meta[3]["solution"] and meta[3]["grade"] and meta[3]["points"] == 1
    assert coursework.apply(nb) == 3 and coursework.disagreements(nb) == []
    nb.cells[2].metadata["nbgrader"]["points"] = 1  # drift: someone edited it by hand
    assert len(coursework.disagreements(nb)) == 1


@pytest.mark.parametrize("cells, message", [
    ([nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    pass\n"
                                "    ### END SOLUTION", metadata={"tags": ["solution"]})],
     "before any"),
    ([nbformat.v4.new_markdown_cell("**Exercise 1.1.** x"),
      nbformat.v4.new_code_cell("f = 1", metadata={"tags": ["solution"]})], "no '### BEGIN"),
    ([nbformat.v4.new_markdown_cell("**Exercise 1.1.** x"),
      nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### END SOLUTION",
                                metadata={"tags": ["checker"]})], "must not hold"),
])
def test_tool_refuses_cells_it_cannot_grade(cells, message):
    with pytest.raises(coursework.CourseworkError, match=message):
        coursework.nbgrader_metadata(_nb(*cells))


# --------------------------------------------------------------------------------------
# The real workflow


@pytest.fixture(scope="module")
def report(nbgrader_run):
    status, log, path, folder = nbgrader_run
    assert status == 0, f"nbgrader workflow failed (exit {status}):\n{log[-4000:]}"
    return json.loads(pathlib.Path(path).read_text())


def test_workflow_covered_every_chapter_and_the_exchange(report):
    assert sorted(report["chapters"]) == sorted(p.stem for p in CHAPTERS)
    exchange = report["exchange"]
    collected = (pathlib.Path(report["grades_csv"]).parent / "submitted" / report["student"]
                 / exchange / "timestamp.txt")
    assert collected.is_file(), f"{exchange} was not collected through the exchange"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_release_copy_holds_no_solution_and_no_output(report, nb):
    release = nbformat.read(report["chapters"][nb.stem]["release"], as_version=4)
    source = nbformat.read(nb, as_version=4)
    assert all(not c.get("outputs") for c in release.cells if c.cell_type == "code")
    found = leaks(source, release)
    assert not found, f"{nb.name}: the release copy keeps:\n" + "\n".join(found[:20])
    assert not any("BEGIN SOLUTION" in c.source for c in release.cells)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_reference_answers_get_every_automatic_point(report, nb):
    chapter = report["chapters"][nb.stem]
    source = nbformat.read(nb, as_version=4)
    solutions = sum(1 for c in source.cells if c.metadata.get("nbgrader", {}).get("solution"))
    assert chapter["answers_typed"] == solutions
    tests = [g for g in chapter["answered"] if g["cell_type"] == "code"]
    answers = [g for g in chapter["answered"] if g["cell_type"] == "markdown"]
    assert tests, f"{nb.name}: no autograded cell"
    failed = [g["grade_id"] for g in tests if g["auto_score"] != g["max_score"]]
    assert not failed, f"{nb.name}: checkers that failed on the reference answers: {failed}"
    assert all(g["needs_manual_grade"] for g in answers)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_untouched_release_scores_zero(report, nb):
    chapter = report["chapters"][nb.stem]
    scored = [(g["grade_id"], g["auto_score"]) for g in chapter["blank"] if g["auto_score"]]
    assert not scored, f"{nb.name}: the unanswered copy earned points: {scored}"
    assert len(chapter["blank"]) == len(chapter["answered"])


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_feedback_for_both_submissions(report, nb):
    files = report["chapters"][nb.stem]["feedback"]
    assert len(files) == 2
    for name in files:
        text = pathlib.Path(name).read_text(errors="replace")
        assert nb.stem in text and "Score" in text


def test_grades_export_lists_both_students_for_every_chapter(report):
    with open(report["grades_csv"]) as f:
        rows = list(csv.DictReader(f))
    pairs = {(r["assignment"], r["student_id"]) for r in rows}
    for nb in CHAPTERS:
        assert (nb.stem, report["student"]) in pairs and (nb.stem, "blank") in pairs
    assert all(float(r["score"]) == 0 for r in rows if r["student_id"] == "blank")
