"""The non-editable install that `make test` runs every notebook against.

`tools/nbval_alone.py` installs `companion` from a copy of the working tree (offline,
no build isolation) and runs each notebook alone against it; its probe notebook checks
inside the kernel that `companion` comes from the install. This test checks the install
itself: every data file ships, and an interpreter started in an empty folder with the
install on its path imports the installed copy, not the repository's.
"""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import nbval_alone  # noqa: E402
import pytest  # noqa: E402


def test_installed_companion_is_a_copy_with_its_data(tmp_path):
    site = nbval_alone.install_companion(tmp_path / "install")
    shipped = {p.relative_to(ROOT) for p in (ROOT / "companion").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    installed = {p.relative_to(site) for p in (site / "companion").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= installed, f"not installed: {sorted(map(str, shipped - installed))}"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    code = "import companion, companion.data; print(companion.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert pathlib.Path(out).resolve().is_relative_to(site.resolve()), out
    assert not (site / "companion" / "__editable__").exists()


def test_every_notebook_runs_alone_under_the_second_kernels(nbval_alone_run):
    """`make test`'s second notebook run (tests/conftest.py, --nbval-alone): every notebook
    alone in an empty folder, against the installed companion, under the second kernel
    configuration, matches its stored outputs."""
    status, log, settings = nbval_alone_run
    if status != 0:
        start = log.find("= FAILURES =")
        report = log[log.rfind("\n", 0, start) + 1:] if start >= 0 else log
        if len(report) > 20000:
            report = "...\n" + report[-20000:]
        pytest.fail(f"notebooks alone under {settings} (exit status {status}):\n{report}",
                    pytrace=False)
