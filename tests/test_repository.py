"""Project-level rules: light imports, notebooks in the TOC, one repository setting,
exercise structure, citations that resolve."""

import json
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if p.name.startswith("ch")]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"])


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_notebooks():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize(
    "module", ["companion", "companion.scratch", "companion.plots", "companion.widgets",
               "companion.data", "companion.notation", "companion.checks"]
)
def test_numpy_side_never_imports_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} imported torch"


def _toc_files(entries):
    """Every file of a list of _toc.yml entries, sections included."""
    out = []
    for c in entries:
        out.append(c["file"])
        out += _toc_files(c.get("sections", []))
    return out


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += _toc_files(part["chapters"])
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f"{f} missing"


def _set_repository():
    sys.path.insert(0, str(ROOT / "tools"))
    import set_repository
    return set_repository


def test_colab_cell_uses_the_one_repository_setting():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    want = _set_repository().setup_cell(url)
    handouts = sorted((ROOT / "student").glob("*.ipynb"))
    assert len(handouts) == len(CHAPTERS)
    for nb in NOTEBOOKS + handouts:
        first = next(c for c in _cells(nb) if c["cell_type"] == "code")
        assert "remove-cell" in _tags(first), f"{nb.name}: set-up cell must be tagged remove-cell"
        assert _src(first) == want, (f"{nb.name}: the set-up cell is not the one "
                                     f"tools/set_repository.py writes for {url}")
    assert f"git clone {url}\n" in (BOOK / "intro.md").read_text()


def test_setup_cell_installs_only_what_is_missing(monkeypatch):
    """The set-up cell runs pip only when companion, torch or ipywidgets is missing, and
    asks for the "book" extra (torch, ipywidgets) only when one of those two is."""
    import importlib.util
    import subprocess as sp

    source = _set_repository().setup_cell("https://github.com/o/r")
    real = importlib.util.find_spec
    for missing, extra in [((), None), (("companion",), ""), (("torch",), "[book]"),
                           (("companion", "ipywidgets"), "[book]")]:
        calls = []
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, m=missing: None if name in m else real(name, *a))
        monkeypatch.setattr(sp, "run", lambda cmd, **kw: calls.append(cmd))
        exec(compile(source, "setup-cell", "exec"), {})
        if extra is None:
            assert calls == []
        else:
            assert calls and calls[0][-1] == f"rnn-unfolded-companion{extra} @ git+https://github.com/o/r"
    monkeypatch.undo()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^book = \["torch[^"]*", "ipywidgets[^"]*"\]', pyproject, re.M)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_executed_without_errors(nb):
    for i, cell in enumerate(_cells(nb)):
        if cell["cell_type"] != "code" or not _src(cell).strip():
            continue
        assert cell["execution_count"] is not None, f"{nb.name} cell {i} never executed"
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{nb.name} cell {i} stored an error"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert "Warning" not in "".join(out["text"]), f"{nb.name} cell {i} warns"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_exercises_have_hidden_tested_solutions_and_checks(nb):
    cells = _cells(nb)
    code_solutions = [i for i, c in enumerate(cells)
                      if "solution" in _tags(c) and c["cell_type"] == "code"]
    assert len(code_solutions) >= 3, f"{nb.name}: at least three exercises with code solutions"
    for i in code_solutions:
        assert "hide-cell" in _tags(cells[i]), f"{nb.name} cell {i}: solution not hidden"
        prompt = cells[i]["metadata"].get("mystnb", {}).get("code_prompt_show")
        assert prompt == "Show solution", f"{nb.name} cell {i}: toggle should say 'Show solution'"
        assert cells[i]["execution_count"] is not None
    for i, cell in enumerate(cells):
        if "checker" in _tags(cell):
            assert cell["cell_type"] == "code", f"{nb.name} cell {i}: a checker is code"
            assert re.search(r"\bcheck_\w+\(", _src(cell)), f"{nb.name} cell {i}: no check_ call"
            assert not {"hide-cell", "hide-input", "remove-cell"} & set(_tags(cell)), (
                f"{nb.name} cell {i}: the checker must be visible")
        if "solution" in _tags(cell) and cell["cell_type"] == "markdown":
            assert re.search(r":class: dropdown", _src(cell)), (
                f"{nb.name} cell {i}: a reference answer is hidden in a dropdown admonition")


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_exercises_are_numbered_by_chapter_in_order(nb):
    chapter = int(re.match(r"ch(\d+)", nb.name).group(1))
    text = "\n".join(_src(c) for c in _cells(nb) if c["cell_type"] == "markdown")
    headings = re.findall(r"^\*\*Exercise\b([^*]{0,12})", text, flags=re.M)
    numbers = [re.match(r" (\d+)\.(\d+)\b", h) for h in headings]
    bad = [f"Exercise{h}" for h, m in zip(headings, numbers) if m is None]
    assert not bad, f"{nb.name}: exercise headings must read '**Exercise {chapter}.k': {bad}"
    found = [(int(m.group(1)), int(m.group(2))) for m in numbers]
    # A chapter split over several pages (chapter 12) numbers its exercises across the
    # pages: a section page starts at N.11 or N.21 instead of N.1.
    first = found[0][1] if found else 1
    if first not in (1, 11, 21):
        first = 1
    expected = [(chapter, k) for k in range(first, first + len(found))]
    assert found == expected, f"{nb.name}: exercises numbered {found}, expected {expected}"


FIGURE_MIMES = ("image/png", "image/svg+xml", "image/jpeg")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_alt_text(nb):
    missing = []
    for i, cell in enumerate(_cells(nb)):
        if cell["cell_type"] != "code":
            continue
        if not any(m in out.get("data", {}) for out in cell.get("outputs", [])
                   for m in FIGURE_MIMES):
            continue
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        if not isinstance(alt, str) or len(alt.split()) < 4:
            missing.append(i)
    assert not missing, (f"{nb.name}: figure cells without metadata mystnb.image.alt "
                         f"(a sentence saying what the figure shows): cells {missing}")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_math_has_no_escapes_eaten_and_no_tag_in_split(nb):
    """Two mistakes MathJax shows as red errors that the Sphinx build cannot see:
    a backslash eaten by a Python string ('\\b' in '\\boldsymbol' became a backspace),
    and \\tag inside display math with a line break (MyST wraps it in split)."""
    problems = []
    for i, cell in enumerate(_cells(nb)):
        if cell["cell_type"] != "markdown":
            continue
        text = _src(cell)
        if _CONTROL.search(text):
            problems.append(f"cell {i}: control character {_CONTROL.search(text).group()!r}")
        for block in re.findall(r"\$\$(.*?)\$\$", text, re.S):
            if "\\tag" in block and "\\\\" in block:
                problems.append(f"cell {i}: \\tag in a multi-line display; use $$ ... $$ (label)")
    assert not problems, f"{nb.name}: " + "; ".join(problems)


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_the_anatomy(nb):
    text = "\n".join(_src(c) for c in _cells(nb) if c["cell_type"] == "markdown")
    for heading in ["## Pitfalls", "## Exercises", "## Summary", "## References"]:
        assert heading in text, f"{nb.name} lacks '{heading}'"
    assert "{cite" in text, f"{nb.name} cites nothing"
    widget_cells = [c for c in _cells(nb) if "widgets" in _src(c) and "explorer" in _src(c)]
    for c in widget_cells:
        assert "nbval-ignore-output" in _tags(c)


def test_every_citation_key_exists():
    bib = (BOOK / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    texts = [p.read_text() for p in BOOK.glob("*.md")] + [
        "\n".join(_src(c) for c in _cells(p)) for p in NOTEBOOKS
    ]
    cited = set()
    for text in texts:
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", text):
            cited.update(k.strip() for k in group.split(","))
    assert cited, "no citations found"
    assert cited <= keys, f"unknown citation keys: {sorted(cited - keys)}"


def _jupyter_book() -> str:
    return str(pathlib.Path(sys.executable).parent / "jupyter-book")


def test_book_builds_with_no_warnings():
    """`make book-check` as a test, so that `make test` is pytest runs only: the HTML book
    into _build/html (what CI publishes), warnings as errors, references checked, every
    page rebuilt."""
    result = subprocess.run([_jupyter_book(), "build", str(ROOT), "--builder", "html", "--all",
                             "-W", "-n", "--keep-going"], capture_output=True, text=True,
                            cwd=ROOT)
    output = result.stdout + result.stderr
    problems = [line for line in output.splitlines() if re.search(r"WARNING|ERROR", line)]
    assert result.returncode == 0 and not problems, (
        f"book build failed (exit status {result.returncode}):\n"
        + "\n".join(problems or output.splitlines()[-30:]))


def _built_html(tmp_path) -> pathlib.Path:
    """The built book: test_book_builds_with_no_warnings has just built it (same session);
    otherwise (this test run alone, or sources changed since) build it here."""
    html = ROOT / "_build" / "html"
    page = html / "book" / "ch01_recurrence.html"
    newest_source = max(p.stat().st_mtime for p in [ROOT / "_config.yml", *NOTEBOOKS])
    if page.exists() and page.stat().st_mtime >= newest_source:
        return html
    subprocess.run([_jupyter_book(), "build",
                    str(ROOT), "--builder", "html", "--path-output", str(tmp_path)],
                   check=True, capture_output=True)
    return tmp_path / "_build" / "html"


def test_built_book_serves_mathjax_itself(tmp_path):
    """Math renders offline: every page with math loads MathJax 3 from the site, none from
    a CDN (the screenshot check is described in README.md)."""
    html = _built_html(tmp_path)
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    pages = sorted(html.rglob("*.html"))
    with_math = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        sources = [s.split("?")[0] for s in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", text)]
        remote = [s for s in sources if re.search(r"mathjax", s, re.I) and "//" in s]
        assert not remote, f"{page.relative_to(html)} loads MathJax from the network: {remote}"
        if 'class="math' in text:
            with_math += 1
            local = [s for s in sources if s.endswith("_static/mathjax/tex-chtml.js")]
            assert local, f"{page.relative_to(html)} has math but no local MathJax script"
            assert (page.parent / local[0]).resolve().is_file()
    assert with_math >= len(CHAPTERS)


def test_every_chapter_page_links_its_exercise_and_full_versions(tmp_path):
    """The "Run this chapter" box (_ext/course_launch.py): Colab and Binder links to the
    hand-out and to the full notebook, from repository.url, and the hand-out exists."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    slug = config["url"].removeprefix("https://github.com/")
    branch = config["branch"]
    html = _built_html(tmp_path)
    for nb in CHAPTERS:
        text = (html / "book" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "course-launch" in text and "Run this chapter" in text, nb.name
        for folder in ("student", "book"):
            path = f"{folder}/{nb.stem}.ipynb"
            assert (ROOT / path).is_file()
            assert (f'href="https://colab.research.google.com/github/{slug}/blob/{branch}/{path}"'
                    in text), f"{nb.name}: no Colab link to {path}"
            assert (f'href="https://mybinder.org/v2/gh/{slug}/{branch}?urlpath=tree/{path}"'
                    in text), f"{nb.name}: no Binder link to {path}"
    assert "course-launch" not in (html / "book" / "intro.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_streams_are_coalesced(nb):
    """How printing is cut into stream messages depends on timing; `make execute` merges
    consecutive stdout (stderr) outputs so that two executions store the same outputs."""
    split = []
    for i, cell in enumerate(_cells(nb)):
        outs = cell.get("outputs", []) if cell["cell_type"] == "code" else []
        for a, b in zip(outs, outs[1:]):
            if a.get("output_type") == b.get("output_type") == "stream" and (
                    a.get("name") == b.get("name")):
                split.append(i)
    assert not split, (f"{nb.name}: cells {sorted(set(split))} store one stream in several "
                       "outputs; re-execute with `make execute NB=...`")


def test_no_page_or_source_speaks_of_work_items():
    """The book speaks of the course, not of how it was made: no page (markdown, notebook
    cells and their outputs), no source file of companion/, experiments/, benchmarks/,
    tools/, _ext/ and no README/CONTRIBUTING refers to issues, tickets, work items, review
    findings, reviewers or targets set for the work. The patterns are narrow on purpose:
    "issue" alone (as in "a known issue") or "target" alone (a training target) is fine;
    "issue 8", "this issue", "the issue's target", "the 10x target", "[H2]" are not."""
    patterns = [
        r"\bissues?\s*#?\s*\d+",                       # issue 8, issue #12
        r"\b(this|that|our|the|which)\s+issue'?s\b",   # the target
        r"\bthis\s+issue\b",
        r"\btickets?\b",
        r"\bwork[ -]items?\b",
        r"\btarget\s+set\s+(by|for|in)\b",
        r"\b\d+\s*x\s+target\b",                       # the 10x target
        r"\b(the|a|our|its)\s+target\s+of\s+(at\s+least\s+)?\d+\s*x",
        r"\breviewers?\b",
        r"\b(the|this|an?|outside|external|code)\s+review\s+(found|asked|said|notes?)\b",
        r"\bas\s+requested\b",
        r"\brequested\s+by\b",
        r"\bpull\s+requests?\b|\bPR\s*#\d+",
        r"(?-i:\[[HML]\d\])",                           # review-finding labels, as [H2]
        r"\bacceptance\s+criteri(a|on)\b",
    ]
    rx = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    files = sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*.md"))
    for folder, exts in [("companion", ("*.py",)), ("experiments", ("*.py", "*.md")),
                         ("benchmarks", ("*.py", "*.md", "*.c")), ("tools", ("*.py",)),
                         ("_ext", ("*.py",))]:
        for ext in exts:
            files += sorted((ROOT / folder).rglob(ext))
    files += [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    hits = []
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".ipynb":
            texts = []
            for i, cell in enumerate(_cells(path)):
                texts.append((f"cell {i}", _src(cell)))
                for out in cell.get("outputs", []):
                    text = out.get("text") or out.get("data", {}).get("text/plain") or ""
                    texts.append((f"cell {i} output", "".join(text)))
        else:
            texts = [(f"line {n}", line) for n, line in
                     enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
        for where, text in texts:
            for m in rx.finditer(text):
                hits.append(f"{path.relative_to(ROOT)} {where}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}...")
    assert not hits, ("these passages speak of work items rather than of the course; "
                      "say the reason instead:\n" + "\n".join(hits))
