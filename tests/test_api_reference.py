"""The API reference (book/api.md, book/api/*.md): every public module of ``companion`` is
on it, its pages are in the table of contents, importing ``companion`` for autodoc is
quiet and cheap, and the built pages hold the generated signatures."""

from __future__ import annotations

import html
import pathlib
import pkgutil
import re
import subprocess
import sys

import yaml

import companion

ROOT = pathlib.Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "book" / "api").glob("*.md"))
# A module is on the reference when a page runs autodoc on it (``.. automodule::``) or
# declares it and lists its members one by one (``.. py:module::``).
DIRECTIVE = re.compile(r"^\.\. (?:automodule|py:module):: (\S+)\s*$", re.M)
# Each chapter's exercise checkers (companion.exercises.ch01, ...) are called from the
# notebooks and deliberately left out (book/api/training.md says so).
LEFT_OUT = re.compile(r"companion\.exercises\.ch\d+")


def _public_modules() -> list[str]:
    names = ["companion"]
    for info in pkgutil.walk_packages(companion.__path__, "companion."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or LEFT_OUT.fullmatch(info.name):
            continue
        names.append(info.name)
    return sorted(names)


def _documented() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in API_PAGES:
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(page.name)
    return found


def _page_for(module: str) -> str:
    """Which page a new module belongs on, for the failure message."""
    for prefix, page in (("companion.scratch", "scratch.md"), ("companion.nn", "nn.md"),
                         ("companion.data", "data.md"), ("companion.plots", "plots.md"),
                         ("companion.widgets", "widgets.md")):
        if module.startswith(prefix):
            return page
    return "training.md"


def test_the_reference_has_pages():
    assert (ROOT / "book" / "api.md").read_text(encoding="utf-8").startswith(
        "(api-reference)=\n"), "book/api.md must keep its label (api-reference)="
    assert len(API_PAGES) >= 5


def test_every_public_module_is_in_the_reference():
    documented = _documented()
    missing = [m for m in _public_modules() if m not in documented]
    blocks = "\n\n".join(
        f"book/api/{_page_for(m)}:\n## `{m}`: <what it holds> (chapter N)\n\n"
        f"```{{eval-rst}}\n.. automodule:: {m}\n   :members:\n```" for m in missing)
    assert not missing, (f"modules missing from the API reference: {missing}. Add a block "
                         f"per module (and rebuild with `make book-check`):\n\n{blocks}")


def test_every_documented_module_exists_once():
    documented = _documented()
    public = set(_public_modules())
    unknown = sorted(set(documented) - public)
    assert not unknown, f"the API reference documents modules that do not exist: {unknown}"
    twice = {m: pages for m, pages in documented.items() if len(pages) > 1}
    assert not twice, f"modules documented more than once: {twice}"


def test_every_reference_page_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    pages = {f"book/api/{p.stem}" for p in API_PAGES}
    assert "book/api" in files
    assert pages <= files, f"API pages missing from _toc.yml: {sorted(pages - files)}"


def test_importing_every_documented_module_is_quiet_and_cheap():
    """autodoc imports them all during the book build: nothing may be printed (it would
    land in the build log) and the imports must stay cheap (torch is the bulk)."""
    modules = sorted(_documented())
    code = ("import importlib, time\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "import sys\n"
            "print(repr(time.process_time()), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout == "", f"importing companion printed: {result.stdout[:500]!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"importing companion wrote to stderr: {result.stderr[:500]!r}"
    cpu = float(lines[0])
    assert cpu < 20.0, f"importing every documented module took {cpu:.1f} s of CPU time"


def _built_api(tmp_path) -> pathlib.Path:
    """The built book's html folder: the one `make book-check` (or the build test) left in
    _build/html if it is newer than every source of the reference; otherwise a fresh
    build into tmp_path (about 15 s: no notebook is executed)."""
    html_dir = ROOT / "_build" / "html"
    page = html_dir / "book" / "api" / "scratch.html"
    sources = [ROOT / "_config.yml", ROOT / "_toc.yml", ROOT / "book" / "api.md", *API_PAGES,
               *pathlib.Path(companion.__file__).parent.rglob("*.py")]
    if page.exists() and page.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return html_dir
    jb = str(pathlib.Path(sys.executable).parent / "jupyter-book")
    subprocess.run([jb, "build", str(ROOT), "--builder", "html", "--path-output",
                    str(tmp_path)], check=True, capture_output=True, cwd=ROOT)
    return tmp_path / "_build" / "html"


def _text(path: pathlib.Path) -> str:
    raw = re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(raw))


def test_built_reference_shows_signatures_and_docstrings(tmp_path):
    built = _built_api(tmp_path) / "book" / "api"
    scratch = _text(built / "scratch.html")
    # A signature and a sentence of the docstring, as autodoc and napoleon render them.
    assert "rnn_forward(x, params, h0=None)" in scratch
    assert "Numerically stable softmax along axis" in scratch
    assert "Parameters:" in scratch and "Returns:" in scratch
    nn_page = _text(built / "nn.html")
    assert "class companion.nn.cells.LSTMCell(" in nn_page
    # Every documented module has its anchor on the page that documents it.
    for module, pages in _documented().items():
        page = (built / pages[0]).with_suffix(".html")
        assert f'id="module-{module}"' in page.read_text(encoding="utf-8"), (module, page.name)
