"""Companion package of *Recurrent Neural Networks, Unfolded*.

Every chapter of the book imports from here, and every implementation the book
relies on lives here, tested on its own (see ``tests/``).

Its subpackages:

``companion.scratch``
    NumPy from scratch (no torch): recurrences, forward pass, BPTT.
``companion.plots``
    pure functions, arrays in, matplotlib ``Figure`` out.
``companion.widgets``
    ipywidgets wrappers around ``plots`` (ipywidgets imported lazily).
``companion.data``
    synthetic tasks and small shipped corpora; nothing is downloaded.
``companion.nn``
    PyTorch modules (imports torch; import it explicitly).

``import companion`` is deliberately light: it never imports torch.
"""

from __future__ import annotations

import random
import sys

import numpy as np

__version__ = "0.1.0"
__all__ = ["__version__", "set_seed"]


def set_seed(seed: int = 0) -> np.random.Generator:
    """Seed every random number generator the course uses and return a NumPy Generator.

    Seeds Python's ``random``, NumPy's legacy global generator and, *if torch has
    already been imported*, torch as well (``companion`` never imports torch itself,
    so that the NumPy chapters stay fast). In a torch chapter, ``import torch``
    before calling ``set_seed``.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``; prefer passing it around explicitly
        (``rng.normal(...)``) over using the global state.

    Examples
    --------
    >>> rng = set_seed(0)
    >>> round(float(rng.normal()), 4)
    0.1257
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise ValueError(f"seed must be non-negative; got {seed}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)
