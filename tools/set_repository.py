"""Point the book at another repository: ``python tools/set_repository.py URL``.

``repository.url`` in ``_config.yml`` is the one setting behind the launch buttons
(Binder, Colab, Thebe), the repository button, each chapter's "exercise version / full
version" links (``_ext/course_launch.py``), the clone command of ``book/intro.md`` and
the set-up cell that opens every notebook. The cell and the clone command are plain
text, so this script rewrites them together with ``_config.yml``, in ``book/`` and in the
hand-outs of ``student/``; ``tests/test_repository.py`` fails if they ever disagree.
Stored outputs are untouched (the set-up cell prints nothing).

The publishing workflow (``.github/workflows/book.yml``) runs it with the repository it
runs in, so a fork publishes pages whose buttons point at the fork. Run it yourself (and
commit the result) so that the notebooks' set-up cells, which Colab reads from the
repository, install your fork's ``companion`` too:

    python tools/set_repository.py https://github.com/OWNER/REPO
    python tools/set_repository.py --check https://github.com/OWNER/REPO   (exit 1 if not set)
"""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
URL = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")

SETUP_CELL = '''\
# Set-up for Colab or any fresh environment: installs the companion package from the
# course repository, with torch and ipywidgets if the environment lacks them (the
# package's "book" extra). Where all three are present this cell does nothing.
import importlib.util, subprocess, sys
_missing = [m for m in ("companion", "torch", "ipywidgets") if importlib.util.find_spec(m) is None]
if _missing:
    _extra = "[book]" if {{"torch", "ipywidgets"}} & set(_missing) else ""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    f"rnn-unfolded-companion{{_extra}} @ git+{url}"], check=True)'''


def setup_cell(url: str) -> str:
    """The source of every notebook's first cell for repository ``url``."""
    return SETUP_CELL.format(url=url)


def current_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    return re.search(r"^  url: (\S+)$", text, flags=re.M).group(1)


def notebooks() -> list[pathlib.Path]:
    return sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "student").glob("*.ipynb"))


def _set_cell(nb, url: str) -> bool:
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    if "remove-cell" not in first.metadata.get("tags", []):
        raise ValueError("the first code cell must be the set-up cell, tagged remove-cell")
    if first.source == setup_cell(url):
        return False
    first.source = setup_cell(url)
    return True


def main(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    args = argv[1:] if check else argv
    if len(args) != 1 or not URL.fullmatch(args[0]):
        print("usage: python tools/set_repository.py [--check] https://github.com/OWNER/REPO")
        return 2
    new = args[0]
    old = current_url()
    intro = ROOT / "book" / "intro.md"
    intro_text = re.sub(r"git clone \S+\ncd \S+", f"git clone {new}\ncd {new.rsplit('/', 1)[1]}",
                        intro.read_text())
    stale = []
    if old != new:
        stale.append("_config.yml")
    if intro_text != intro.read_text():
        stale.append("book/intro.md")
    changed = []
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        if _set_cell(nb, new):
            changed.append((path, nb))
    stale += [str(path.relative_to(ROOT)) for path, _ in changed]
    if check:
        if stale:
            print(f"repository.url is not {new} in: {', '.join(stale)}\n"
                  f"run: python tools/set_repository.py {new}")
            return 1
        print(f"repository.url is {new} everywhere")
        return 0
    config = ROOT / "_config.yml"
    config.write_text(config.read_text().replace(f"  url: {old}", f"  url: {new}"))
    intro.write_text(intro_text)
    for path, nb in changed:
        nbformat.write(nb, path)
    print(f"repository.url: {old} -> {new}; {len(changed)} set-up cell(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
