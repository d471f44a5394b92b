"""The notebook tools behind `make student`."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_make_student_replaces_every_solution_with_a_stub(tmp_path):
    src = ROOT / "book" / "ch02_unfolding.ipynb"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--out",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    original = json.loads(src.read_text())["cells"]
    student = json.loads((tmp_path / src.name).read_text())["cells"]
    assert len(student) == len(original)
    stubs = 0
    for before, after in zip(original, student):
        if "solution" in before.get("metadata", {}).get("tags", []):
            stubs += 1
            body = "".join(after["source"])
            assert "NotImplementedError" in body
            first_def = next(line for line in "".join(before["source"]).splitlines()
                             if line.startswith("def "))
            assert first_def in body  # the signature survives
            assert "return" not in body and after["outputs"] == []
        else:
            assert after["source"] == before["source"]
    assert stubs >= 3
