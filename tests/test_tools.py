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


def _tree(tmp_path):
    """A minimal copy of the repository that set_repository.py can rewrite."""
    import shutil

    for rel in ["tools/set_repository.py", "_config.yml", "book/intro.md",
                "book/ch01_recurrence.ipynb", "student/ch01_recurrence.ipynb"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_set_repository_rewrites_every_place_and_check_sees_it(tmp_path):
    import json

    tree = _tree(tmp_path)
    tool = str(tree / "tools" / "set_repository.py")
    new = "https://github.com/someone/fork"
    stale = subprocess.run([sys.executable, tool, "--check", new], capture_output=True, text=True)
    assert stale.returncode == 1 and "_config.yml" in stale.stdout
    done = subprocess.run([sys.executable, tool, new], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"  url: {new}\n" in (tree / "_config.yml").read_text()
    assert f"git clone {new}\ncd fork\n" in (tree / "book" / "intro.md").read_text()
    for rel in ["book/ch01_recurrence.ipynb", "student/ch01_recurrence.ipynb"]:
        first = json.loads((tree / rel).read_text())["cells"][0]
        assert f"git+{new}\"" in "".join(first["source"]), rel
    ok = subprocess.run([sys.executable, tool, "--check", new], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
