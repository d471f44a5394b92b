"""Run nbgrader's real instructor workflow over chapters, in a throw-away course folder.

It does, with the ``nbgrader`` command itself, what the README's "Teaching with it" tells
an instructor and a student to do:

1. instructor: ``nbgrader generate_assignment "*"``: every chapter ``source/NAME`` ->
   ``release/NAME`` (solutions replaced by stubs, outputs cleared);
2. for ONE chapter (``--exchange NAME``, the first by default), the whole hand-in
   round trip through an exchange folder inside the course: instructor
   ``nbgrader release_assignment NAME``; a student ``nbgrader fetch_assignment NAME``,
   types the reference answers into the fetched copy (each solution cell gets the
   source's text, nothing else changes), ``nbgrader submit NAME``; instructor
   ``nbgrader collect NAME``. For the other chapters the same answered copy is put
   straight into ``submitted/STUDENT/NAME``, where ``collect`` would put it (one
   exchange round trip per chapter would add a minute of process start-up to the test
   suite and check nothing new);
3. a second student, ``blank``, hands back every released copy untouched;
4. instructor: ``nbgrader autograde "*"``, ``nbgrader generate_feedback "*"`` and
   ``nbgrader export``.

It writes a JSON report (per chapter: the points of every graded cell for both
submissions, the feedback files, the release copy) that ``tests/test_nbgrader.py``
checks, and prints one line per chapter. Every nbgrader command's output goes to
``COURSE/logs/``; a command that fails stops the run with its log's tail.

    python tools/nbgrader_workflow.py --course DIR --report FILE.json [--exchange NAME] book/ch*.ipynb
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = ROOT / "coursework" / "nbgrader_config.py"
COURSE_ID = "rnn-unfolded"


class WorkflowError(RuntimeError):
    pass


def nbgrader(args: list[str], cwd: pathlib.Path, log_dir: pathlib.Path, env: dict) -> None:
    words = [a for a in args if not a.startswith("-") and "/" not in a]
    log = log_dir / ("-".join(w.replace("*", "all") for w in words)[:80] + ".log")
    command = [sys.executable, "-m", "nbgrader", *args]
    with open(log, "w") as out:
        out.write("$ nbgrader " + " ".join(args) + f"   (in {cwd})\n")
        out.flush()
        status = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env=env).returncode
    if status:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise WorkflowError(f"`nbgrader {' '.join(args)}` exited {status}:\n{tail}")


def fill_in_answers(fetched: pathlib.Path, source: pathlib.Path) -> int:
    """Type the source's solution cells into the fetched copy (matched by grade_id)."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = cell.source
    nb = nbformat.read(fetched, as_version=4)
    filled = 0
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers and cell.metadata["nbgrader"].get("solution"):
            cell.source = answers[grade_id]
            filled += 1
    nbformat.write(nb, fetched)
    return filled


def grades(course: pathlib.Path, assignment: str, student: str) -> list[dict]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        return [{"grade_id": g.name, "cell_type": g.cell_type, "auto_score": g.auto_score,
                 "max_score": g.max_score, "needs_manual_grade": g.needs_manual_grade}
                for nb in submission.notebooks for g in nb.grades]


def run(course: pathlib.Path, notebooks: list[pathlib.Path], exchange_name: str) -> dict:
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    exchange, home, logs = course / "exchange", course / "student-home", course / "logs"
    for folder in (exchange, home, logs):
        folder.mkdir()
    exchange.chmod(0o777)
    config = CONFIG.read_text() + f"\nc.Exchange.root = {str(exchange)!r}\n"
    (course / "nbgrader_config.py").write_text(config)
    (home / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    env = dict(os.environ)
    # nbgrader runs `alembic` (its database migrations) and Jupyter kernels by name: both
    # must come from this environment, whether or not its bin/ is on the PATH already.
    env["PATH"] = str(pathlib.Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    student = getpass.getuser()
    timings: dict[str, float] = {}

    def timed(label, args, cwd):
        started = time.perf_counter()
        nbgrader(args, cwd, logs, env)
        timings[label] = round(time.perf_counter() - started, 1)

    names = [path.stem for path in notebooks]
    for path in notebooks:
        (course / "source" / path.stem).mkdir(parents=True)
        shutil.copy(path, course / "source" / path.stem / path.name)
    nbgrader(["db", "student", "add", student], course, logs, env)
    nbgrader(["db", "student", "add", "blank"], course, logs, env)
    timed("generate_assignment", ["generate_assignment", "*", "--force"], course)
    filled = {}
    for path in notebooks:
        name, release = path.stem, course / "release" / path.stem / path.name
        if name == exchange_name:
            timed("release_assignment", ["release_assignment", name, "--force"], course)
            timed("fetch_assignment", ["fetch_assignment", name], home)
            filled[name] = fill_in_answers(home / name / path.name, path)
            timed("submit", ["submit", name], home)
            timed("collect", ["collect", name, "--update"], course)
        else:
            answered = course / "submitted" / student / name
            answered.mkdir(parents=True)
            shutil.copy(release, answered / path.name)
            filled[name] = fill_in_answers(answered / path.name, path)
        blank = course / "submitted" / "blank" / name
        blank.mkdir(parents=True)
        shutil.copy(release, blank / path.name)
    timed("autograde", ["autograde", "*", "--force"], course)
    timed("generate_feedback", ["generate_feedback", "*", "--force"], course)
    timed("export", ["export", "--to", str(course / "grades.csv")], course)
    report: dict = {"student": student, "exchange": exchange_name, "seconds": timings,
                    "grades_csv": str(course / "grades.csv"), "chapters": {}}
    for path in notebooks:
        name = path.stem
        report["chapters"][name] = {
            "notebook": str(path),
            "release": str(course / "release" / name / path.name),
            "answers_typed": filled[name],
            "answered": grades(course, name, student),
            "blank": grades(course, name, "blank"),
            "feedback": sorted(str(p) for p in (course / "feedback").glob(f"*/{name}/*.html")),
        }
        print(summary_line(name, report["chapters"][name]), flush=True)
    print("seconds: " + ", ".join(f"{k} {v:g}" for k, v in timings.items()), flush=True)
    assert sorted(report["chapters"]) == sorted(names)
    return report


def summary_line(name: str, chapter: dict) -> str:
    def total(rows, kind):
        return sum(r["auto_score"] or 0 for r in rows if r["cell_type"] == kind)

    auto_max = sum(r["max_score"] for r in chapter["answered"] if r["cell_type"] == "code")
    manual_max = sum(r["max_score"] for r in chapter["answered"] if r["cell_type"] == "markdown")
    manual_open = sum(r["needs_manual_grade"] for r in chapter["answered"])
    return (f"{name}: answered {total(chapter['answered'], 'code'):g}/{auto_max:g} automatic "
            f"points, {manual_open} answer(s) worth {manual_max:g} to grade by hand; blank "
            f"{total(chapter['blank'], 'code') + total(chapter['blank'], 'markdown'):g}/"
            f"{auto_max + manual_max:g}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=pathlib.Path, required=True)
    parser.add_argument("--report", type=pathlib.Path, required=True)
    parser.add_argument("--exchange", default=None,
                        help="the chapter that goes through release/fetch/submit/collect")
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    try:
        report = run(args.course.resolve(), [p.resolve() for p in args.notebooks],
                     args.exchange or args.notebooks[0].stem)
    except WorkflowError as err:
        print(f"nbgrader_workflow: {err}", file=sys.stderr)
        args.report.write_text(json.dumps({"error": str(err)}, indent=1))
        return 1
    args.report.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
