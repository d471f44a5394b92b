"""Write student copies of the chapters with exercise solutions removed (``make student``).

A code cell tagged ``solution`` holds the reference answer: in the book it is hidden
behind a "show" toggle, and nbval runs it so that every solution is tested. This
script copies each notebook to ``book/student/`` and replaces every solution cell
with a stub that keeps the cell's first line (the ``def`` line, usually) and raises
``NotImplementedError``; the check cell right after it then tells the student
whether their answer is right. Outputs of solution and check cells are cleared.
"""

from __future__ import annotations

import pathlib
import sys

import nbformat

STUB = "    raise NotImplementedError('Your solution here')\n"


def stub_source(source: str) -> str:
    lines = source.splitlines()
    defs = [line for line in lines if line.startswith("def ")]
    if defs:
        return "\n".join(f"{d}\n{STUB}" for d in defs)
    return "# Your solution here\n"


def main(argv: list[str]) -> int:
    out_dir = pathlib.Path("book/student")
    if argv[:1] == ["--out"]:
        out_dir, argv = pathlib.Path(argv[1]), argv[2:]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in argv:
        path = pathlib.Path(name)
        nb = nbformat.read(path, as_version=4)
        count = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if "solution" in cell.metadata.get("tags", []):
                cell.source = stub_source(cell.source)
                cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "hide-cell"]
                cell.outputs, cell.execution_count = [], None
                count += 1
        nbformat.write(nb, out_dir / path.name)
        print(f"{out_dir / path.name}: {count} solution cell(s) replaced by stubs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
