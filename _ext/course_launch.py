"""Sphinx extension: every chapter page offers its exercise version and its full version.

Jupyter Book's launch buttons open the page's own notebook, the full chapter with its
solutions. Students doing coursework need the hand-out instead (``student/NAME.ipynb``,
made by ``make student``). This extension puts a box under each chapter's title with
both, on Colab and on Binder, built from the same settings as the launch buttons
(``repository.url``, ``repository.branch`` and ``launch_buttons.binderhub_url`` /
``colab_url`` in ``_config.yml``), so a fork that sets its own ``repository.url``
publishes links to itself.
"""

from __future__ import annotations

import re

from docutils import nodes

CHAPTER = re.compile(r"^book/(ch\d\d_\w+)$")


def _settings(app) -> dict:
    theme = app.config.html_theme_options or {}
    launch = theme.get("launch_buttons", {}) or {}
    return {
        "repo": (theme.get("repository_url") or "").rstrip("/"),
        "branch": theme.get("repository_branch") or "main",
        "binder": (launch.get("binderhub_url") or "https://mybinder.org").rstrip("/"),
        "colab": (launch.get("colab_url") or "https://colab.research.google.com").rstrip("/"),
    }


def launch_urls(settings: dict, path: str) -> dict[str, str]:
    """Colab and Binder URLs of a notebook at ``path`` in the repository."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", settings["repo"])
    if not match:
        raise ValueError(f"repository.url must be https://github.com/OWNER/REPO, got "
                         f"{settings['repo']!r}")
    slug, branch = match.group(1), settings["branch"]
    return {
        "Colab": f"{settings['colab']}/github/{slug}/blob/{branch}/{path}",
        "Binder": f"{settings['binder']}/v2/gh/{slug}/{branch}?urlpath=tree/{path}",
    }


def _links(settings: dict, path: str) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    for index, (label, url) in enumerate(launch_urls(settings, path).items()):
        if index:
            out.append(nodes.Text(" · "))
        out.append(nodes.reference("", label, refuri=url))
    return out


def add_launch_box(app, doctree, docname: str) -> None:
    match = CHAPTER.match(docname)
    if not match or app.builder.format != "html":
        return
    name = match.group(1)
    settings = _settings(app)
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    exercise = nodes.paragraph()
    exercise += nodes.strong("", "Exercise version")
    exercise += nodes.Text(" (solutions removed, for coursework): ")
    exercise += _links(settings, f"student/{name}.ipynb")
    full = nodes.paragraph()
    full += nodes.strong("", "Full version")
    full += nodes.Text(" (this page, with the solutions): ")
    full += _links(settings, f"book/{name}.ipynb")
    box = nodes.admonition(classes=["course-launch", "tip"])
    box += nodes.title("", "Run this chapter")
    box += exercise
    box += full
    position = 1 if section.children and isinstance(section.children[0], nodes.title) else 0
    section.insert(position, box)


def setup(app):
    app.connect("doctree-resolved", add_launch_box)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
