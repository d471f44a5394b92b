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

__all__ = ["available_results", "gradient_profiles", "load_results", "lr_grid_scores",
           "success_table", "sweep_fractions"]


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


# --- helpers that turn a stored sweep (long_range_sweep, temporal_order_sweep) into arrays


def _check_sweep(results):
    if not isinstance(results, dict) or "runs" not in results or "config" not in results:
        raise TypeError("results must be a sweep dict from load_results('long_range_sweep') "
                        "or load_results('temporal_order_sweep').")


def _lr_map(results, lr):
    models = list(results["config"]["models"])
    if lr == "chosen":
        return {m: results["chosen_lr"][m] for m in models}
    if isinstance(lr, dict) and set(lr) >= set(models):
        return {m: float(lr[m]) for m in models}
    raise ValueError("lr must be 'chosen' or a dict {model: learning rate} covering "
                     f"every model ({', '.join(models)}); got {lr!r}.")


def sweep_fractions(results: dict, *, split: str = "test", lr="chosen"):
    """Scores of every model, length and seed at one learning rate per model.

    Returns ``(models, lengths, scores)`` with ``scores`` of shape (C, P, S): the
    fraction solved (adding) or accuracy (temporal order) on the ``split`` set
    (``"test"`` or ``"valid"``), NaN for a missing or non-finite run. ``lr`` is
    ``"chosen"`` (the stored choice) or a dict ``{model: lr}``.
    """
    import numpy as np

    _check_sweep(results)
    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid'; got {split!r}.")
    cfg = results["config"]
    models, lengths, seeds = list(cfg["models"]), cfg["lengths"], cfg["seeds"]
    lrs = _lr_map(results, lr)
    out = np.full((len(models), len(lengths), len(seeds)), np.nan)
    for r in results["runs"]:
        if r["model"] in lrs and r["lr"] == lrs[r["model"]]:
            v = r[f"{split}_fraction"]
            out[models.index(r["model"]), lengths.index(r["length"]),
                seeds.index(r["seed"])] = np.nan if v is None else v
    return models, lengths, out


def lr_grid_scores(results: dict, *, split: str = "valid"):
    """Every model's grid and scores: ``(models, grids, scores)``, scores[c] (G_c, P, S)."""
    import numpy as np

    _check_sweep(results)
    cfg = results["config"]
    models, lengths, seeds = list(cfg["models"]), cfg["lengths"], cfg["seeds"]
    grids = [list(cfg["models"][m]["lr_grid"]) for m in models]
    scores = [np.full((len(g), len(lengths), len(seeds)), np.nan) for g in grids]
    for r in results["runs"]:
        c = models.index(r["model"])
        v = r[f"{split}_fraction"]
        scores[c][grids[c].index(r["lr"]), lengths.index(r["length"]),
                  seeds.index(r["seed"])] = np.nan if v is None else v
    return models, grids, scores


def gradient_profiles(results: dict, length: int, *, lr="chosen"):
    """Median over seeds of ``||dL/dh_t||`` against distance, per model, at one length.

    Returns ``(distances, models, init, final)`` with ``init`` and ``final`` of shape
    (C, P): each stored value is already the median over the probe sequences of one run;
    this takes the median over the seeds run at ``lr`` (``"chosen"`` or a dict).
    """
    import numpy as np

    _check_sweep(results)
    key = str(length)
    if key not in results["grad_norms"]["distances"]:
        raise ValueError(f"length must be one of {results['config']['lengths']}; "
                         f"got {length!r}.")
    dist = results["grad_norms"]["distances"][key]
    models = list(results["config"]["models"])
    lrs = _lr_map(results, lr)
    init = np.full((len(models), len(dist)), np.nan)
    final = np.full_like(init, np.nan)
    for c, m in enumerate(models):
        recs = [g for g in results["grad_norms"]["records"]
                if g["model"] == m and g["length"] == length and g["lr"] == lrs[m]]
        if recs:
            init[c] = np.median(np.array([g["init"] for g in recs], dtype=float), axis=0)
            fin = np.array([[np.nan if v is None else v for v in g["final"]] for g in recs])
            final[c] = np.nanmedian(fin, axis=0) if np.isfinite(fin).any() else np.nan
    return dist, models, init, final


def success_table(results: dict) -> str:
    """The headline table as text: k/n seeds that succeed, per model and length.

    A model stops at the first length where none of its seeds succeeds; the longer
    lengths, not run for it, show ``-``.
    """
    _check_sweep(results)
    cfg = results["config"]
    lengths = cfg["lengths"]
    cells = {(r["model"], r["length"]): "-" if r.get("stopped") else f"{r['k']}/{r['n']}"
             for r in results["summary"]}
    lines = [f"{'model':<16}{'lr':>8}" + "".join(f"{'T=' + str(L):>8}" for L in lengths)]
    for m, spec in cfg["models"].items():
        lines.append(f"{spec['label']:<16}{results['chosen_lr'][m]:>8.0e}"
                     + "".join(f"{cells[(m, L)]:>8}" for L in lengths))
    lines.append(f"{'constant':<24}" + "".join(f"{b['test_fraction']:>8.2f}"
                                                for b in results["baseline"]))
    if any(r.get("stopped") for r in results["summary"]):
        lines.append("-: not run (every seed failed at a shorter length)")
    return "\n".join(lines)
