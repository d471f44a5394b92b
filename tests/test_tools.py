"""The repository tools: set_repository.py refuses what is not a GitHub URL."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_set_repository_refuses_a_non_github_url():
    before = (ROOT / "_config.yml").read_text()
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "set_repository.py"),
                             "http://example.com/x"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stdout
    assert (ROOT / "_config.yml").read_text() == before
