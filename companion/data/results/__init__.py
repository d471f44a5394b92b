"""Stored results of the course's sweeps, shipped with the package (JSON files).

Each file ``NAME.json`` in this folder is written by one documented command,
``python -m experiments.NAME`` (see ``experiments/README.md`` in the repository), and
read back with :func:`load_results`. Notebooks load stored results this way, never
through a path relative to the repository, so a notebook opened alone (Colab, Binder,
an empty folder with only ``companion`` installed) finds them.

>>> "long_range_sweep" in available_results()
True
>>> sorted(load_results("long_range_sweep"))[:2] != []
True
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["available_results", "load_results"]


def _folder():
    return resources.files(__name__)


def available_results() -> list[str]:
    """Names of the stored result files (without ``.json``), sorted."""
    return sorted(p.name[:-5] for p in _folder().iterdir()
                  if p.is_file() and p.name.endswith(".json"))


def load_results(name: str) -> dict:
    """Load the stored results ``NAME.json`` as a dict.

    Parameters
    ----------
    name : the result set's name, e.g. ``"long_range_sweep"`` (a trailing ``.json``
        is accepted).

    Raises
    ------
    TypeError : ``name`` is not a string.
    ValueError : no stored result has that name (the message lists those that exist).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'long_range_sweep'; "
                        f"got {type(name).__name__}.")
    stem = name[:-5] if name.endswith(".json") else name
    names = available_results()
    if stem not in names or "/" in stem or "\\" in stem:
        raise ValueError(
            f"no stored results named {name!r}; available: {', '.join(names) or 'none'}. "
            f"Regenerate one with `python -m experiments.<name>` from the repository root."
        )
    with _folder().joinpath(stem + ".json").open("r", encoding="utf-8") as fh:
        return json.load(fh)
