"""`--nbval-alone`: the second notebook run of `make test`, concurrent with the first.

`make test` is one pytest run: unit tests, doctests and nbval over the notebooks in
place (machine's kernels). With ``--nbval-alone="VAR=VALUE ..."`` this plugin also starts,
at the beginning of the session and in the background, ``tools/nbval_alone.py`` on the
same notebooks (each alone in an empty folder, ``companion`` from a non-editable install,
the given kernel settings). Both runs share the 2 cores while the first one is mostly
single-threaded Python; the background run is reported as the last test,
``tests/test_standalone.py::test_every_notebook_runs_alone_under_the_second_kernels``,
which fails with the failing cells' report, so pytest's closing summary line covers both.
Without the option that test is deselected.

`--nbgrader` likewise starts ``tools/nbgrader_workflow.py`` (nbgrader's real
generate / release / fetch / submit / collect / autograde / feedback workflow over every
chapter, in a temporary course folder) in the background at the start of the session;
``tests/test_nbgrader.py`` waits for its report. Without the option those tests run the
workflow themselves, in the foreground.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import signal
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALONE_TEST = "test_every_notebook_runs_alone_under_the_second_kernels"
_RUN: dict = {}


def pytest_addoption(parser):
    parser.getgroup("nbval-alone").addoption(
        "--nbval-alone", metavar="VAR=VALUE ...", default=None,
        help="also run the .ipynb arguments alone under these kernel settings "
             "(tools/nbval_alone.py), in the background, reported as one test",
    )
    parser.getgroup("nbgrader").addoption(
        "--nbgrader", action="store_true", default=False,
        help="start nbgrader's workflow over every chapter in the background at session "
             "start (tests/test_nbgrader.py reads its report)",
    )


_NBGRADER: dict = {}
CHAPTERS = sorted(str(p) for p in (ROOT / "book").glob("ch*.ipynb"))


def start_nbgrader_workflow() -> dict:
    """Start tools/nbgrader_workflow.py once per session (background); returns its record."""
    if not _NBGRADER:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="nbgrader-course-"))
        log = open(folder / "workflow.log", "w")
        command = [sys.executable, str(ROOT / "tools" / "nbgrader_workflow.py"),
                   "--course", str(folder / "course"), "--report", str(folder / "report.json"),
                   "--exchange", "ch02_unfolding", *CHAPTERS]
        _NBGRADER.update(folder=folder, log=folder / "workflow.log", report=folder / "report.json",
                         proc=subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               cwd=ROOT, start_new_session=True))
        log.close()
    return _NBGRADER


@pytest.fixture(scope="session")
def nbgrader_run():
    """Wait for the nbgrader workflow (started now if --nbgrader did not start it)."""
    run = start_nbgrader_workflow()
    status = run["proc"].wait()
    return status, run["log"].read_text(errors="replace"), run["report"], run["folder"]


def pytest_sessionstart(session):
    if session.config.getoption("--nbgrader", default=False) and not session.config.option.collectonly:
        start_nbgrader_workflow()
    settings = session.config.getoption("--nbval-alone", default=None)
    if settings is None or session.config.option.collectonly:
        return
    notebooks = [str(pathlib.Path(a).resolve()) for a in session.config.args
                 if a.endswith(".ipynb")]
    if not notebooks:
        raise pytest.UsageError("--nbval-alone needs the notebooks as arguments")
    sets = [arg for kv in shlex.split(settings) for arg in ("--set", kv)]
    log = tempfile.NamedTemporaryFile("w+", prefix="nbval-alone-", suffix=".log", delete=False)
    command = [sys.executable, str(ROOT / "tools" / "nbval_alone.py"), *sets, *notebooks,
               "--", "-q", "--color=no"]
    _RUN.update(log=log.name, settings=settings, proc=subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True))
    log.close()
    # A terminated pytest (CI timeout) stops the background run too (pytest_unconfigure).
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


BUILD_TEST = "test_book_builds_with_no_warnings"


def pytest_collection_modifyitems(session, config, items):
    # The book build first: the tests that read the built HTML (API reference, MathJax)
    # then reuse its _build/html instead of building the book a second time.
    items.sort(key=lambda item: item.name != BUILD_TEST)
    # The nbgrader tests late, so that the background workflow has had its time.
    items.sort(key=lambda item: "test_nbgrader.py" in item.nodeid)
    alone = [item for item in items if item.name == ALONE_TEST]
    if not alone:
        return
    rest = [item for item in items if item.name != ALONE_TEST]
    if _RUN:
        items[:] = rest + alone  # last: the background run has had the most time
    else:
        config.hook.pytest_deselected(items=alone)
        items[:] = rest


@pytest.fixture
def nbval_alone_run():
    """Wait for the background run; returns (exit status, its output, its settings)."""
    if not _RUN:
        pytest.fail("run with --nbval-alone='VAR=VALUE ...' and notebook arguments")
    status = _RUN["proc"].wait()
    return status, pathlib.Path(_RUN["log"]).read_text(errors="replace"), _RUN["settings"]


def pytest_terminal_summary(terminalreporter):
    if _NBGRADER and _NBGRADER["proc"].poll() is not None:
        lines = _NBGRADER["log"].read_text(errors="replace").strip().splitlines()
        terminalreporter.write_line("nbgrader workflow (tools/nbgrader_workflow.py):")
        for line in lines[-20:]:
            terminalreporter.write_line(f"  {line}")
    if _RUN and _RUN["proc"].poll() is not None:
        lines = pathlib.Path(_RUN["log"]).read_text(errors="replace").strip().splitlines()
        summary = lines[-1] if lines else "(no output)"
        terminalreporter.write_line(f"notebooks alone under {_RUN['settings']}: {summary}")


def pytest_unconfigure(config):
    if _NBGRADER:
        proc = _NBGRADER["proc"]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        import shutil
        shutil.rmtree(_NBGRADER["folder"], ignore_errors=True)
        _NBGRADER.clear()
    if not _RUN:
        return
    proc = _RUN["proc"]
    if proc.poll() is None:  # interrupted: stop the background run and its kernels
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    pathlib.Path(_RUN["log"]).unlink(missing_ok=True)
    _RUN.clear()
