"""Point the book at another repository: ``python tools/set_repository.py URL``.

`repository.url` in `_config.yml` is the one setting behind the launch buttons
(Binder, Colab, Thebe), the repository button and the Colab set-up cell of every
notebook. The cells are plain text inside the notebooks, so this script rewrites
`_config.yml` and every set-up cell together; `tests/test_repository.py` fails if they
ever disagree. Stored outputs are untouched (the set-up cell prints nothing).
"""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", argv[0]):
        print("usage: python tools/set_repository.py https://github.com/OWNER/REPO")
        return 2
    new = argv[0]
    config = ROOT / "_config.yml"
    text = config.read_text()
    old = re.search(r"^  url: (\S+)$", text, flags=re.M).group(1)
    config.write_text(text.replace(f"  url: {old}", f"  url: {new}"))
    changed = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and f"git+{old}" in cell.source:
                cell.source = cell.source.replace(f"git+{old}", f"git+{new}")
                changed += 1
        nbformat.write(nb, path)
    print(f"repository.url: {old} -> {new}; {changed} set-up cell(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
