"""The classic synthetic long-dependency tasks of Hochreiter & Schmidhuber (1997).

Both tasks are built so that the answer depends on a few inputs seen *long before*
the end of the sequence, with distractors in between. They are generated from a
seed (never downloaded) and returned batch-first, as NumPy arrays, so that the NumPy
chapters and the torch chapters can share them (``torch.from_numpy`` converts).
The default ``dtype`` is float64, what the NumPy chapters use; the ``companion.nn``
torch modules are float32, so a torch chapter asks for ``dtype=np.float32`` (the
values are drawn in float64 and rounded once, so both dtypes hold the same sequences).

* :func:`adding_problem` -- each step is a (value, marker) pair; the target is
  ``0.5 + (X1 + X2) / 4`` where X1, X2 are the two marked values. A sequence counts
  as solved when the absolute error of the prediction is below ``0.04``
  (:data:`ADDING_TOLERANCE`, :func:`adding_solved`).
* :func:`temporal_order` -- a stream of random symbols with two relevant symbols
  (``X`` or ``Y``) at two separated positions; the class is their order
  (``XX``, ``XY``, ``YX``, ``YY``).

Fixed length: Hochreiter & Schmidhuber draw each sequence length at random in
``[T, T + T/10]``; here every sequence of a batch has length ``T`` so that a batch
is one array. The marker positions follow their rule, scaled to ``T``.
"""

from __future__ import annotations

import numpy as np

from companion.checks import (
    as_float_array,
    check_nonempty,
    check_float_dtype,
    check_positive_int,
    check_real,
    check_rng,
)

__all__ = [
    "ADDING_TOLERANCE",
    "TEMPORAL_ORDER_SYMBOLS",
    "TEMPORAL_ORDER_CLASSES",
    "adding_problem",
    "adding_solved",
    "temporal_order",
]

#: A sequence of the adding problem is solved when ``|prediction - target| < 0.04``.
ADDING_TOLERANCE = 0.04
#: Input alphabet of the temporal-order problem, in one-hot order.
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
#: The four classes of the temporal-order problem, in label order.
TEMPORAL_ORDER_CLASSES = ("XX", "XY", "YX", "YY")


def _as_rng(rng, seed):
    if rng is not None and seed is not None:
        raise ValueError("pass either rng (a numpy Generator) or seed (an int), not both.")
    if rng is None:
        if seed is None:
            raise ValueError(
                "pass rng=np.random.default_rng(...) or seed=<int>: the tasks are always "
                "generated reproducibly, so a source of randomness must be given."
            )
        seed = check_positive_int("seed", seed, minimum=0)
        return np.random.default_rng(seed)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        raise TypeError(f"rng must be a numpy.random.Generator; got the int {rng!r}. Pass "
                        f"seed={rng!r} instead, or rng=np.random.default_rng({rng!r}).")
    return check_rng("rng", rng)


def adding_problem(n: int, length: int, *, rng=None, seed=None, dtype=np.float64):
    """A batch of the adding problem (Hochreiter & Schmidhuber 1997, experiment 4).

    Each of the ``length`` steps carries a pair: a value drawn uniformly from
    ``[-1, 1]`` and a marker. Exactly two steps are marked with ``1.0``: the first
    mark falls on one of the first ten steps, the second on one of the first
    ``length // 2 - 1`` steps (the two are different). The first and the last
    steps carry the marker ``-1.0`` unless marked; all others carry ``0.0``. If the
    very first step is marked, its value ``X1`` is set to zero (as in the paper).
    The target is

    .. math:: y = 0.5 + \\frac{X_1 + X_2}{4} \\in [0, 1],

    so every target depends on inputs at least ``length // 2`` steps before the
    end: a network must carry two numbers across that gap while ignoring the rest.

    Parameters
    ----------
    n : int >= 1, number of sequences.
    length : int >= 6, number of steps ``T``.
    rng : numpy.random.Generator, or ``seed`` : int (exactly one of them).
    dtype : NumPy float dtype of ``x`` and ``y``; float64 (default) for the NumPy
        chapters, ``np.float32`` for the float32 ``companion.nn`` torch modules.

    Returns
    -------
    x : ndarray (n, length, 2) of ``dtype``, batch-first; ``x[..., 0]`` values,
        ``x[..., 1]`` markers.
    y : ndarray (n,) of ``dtype``, the targets.

    Examples
    --------
    >>> x, y = adding_problem(2, 8, seed=0)
    >>> x.shape, y.shape
    ((2, 8, 2), (2,))
    >>> x[0, :, 1].tolist()          # markers: -1 at the end, two 1s early on
    [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    >>> float(x[0, 0, 0])            # the first step is marked, so X1 = 0
    0.0
    >>> round(float(y[0]), 4), round(float(0.5 + (0.0 + x[0, 1, 0]) / 4), 4)
    (0.3849, 0.3849)
    >>> bool(np.allclose(y, 0.5 + (x[..., 0] * (x[..., 1] == 1)).sum(1) / 4))
    True
    """
    n = check_positive_int("n", n)
    T = check_positive_int("length", length, minimum=6)
    dtype = check_float_dtype("dtype", dtype)
    rng = _as_rng(rng, seed)
    values = rng.uniform(-1.0, 1.0, size=(n, T))
    markers = np.zeros((n, T))
    markers[:, 0] = -1.0
    markers[:, -1] = -1.0
    half = T // 2 - 1  # the second mark lies among the first T/2 - 1 steps
    first = rng.integers(0, min(10, half), size=n)
    # a second position in [0, half) different from the first: draw from half - 1
    # slots and skip over the first mark
    second = rng.integers(0, half - 1, size=n)
    second = second + (second >= first)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    values[markers[:, 0] == 1.0, 0] = 0.0  # X1 = 0 when the first step is marked
    x = np.stack([values, markers], axis=-1)  # (n, T, 2)
    y = 0.5 + (values * (markers == 1.0)).sum(axis=1) / 4.0
    return x.astype(dtype, copy=False), y.astype(dtype, copy=False)


def adding_solved(pred, target, tolerance: float = ADDING_TOLERANCE) -> np.ndarray:
    """Which sequences are solved: ``|pred - target| < tolerance`` (0.04 in the paper).

    Parameters
    ----------
    pred, target : (n,) floats (a trailing axis of size 1 is accepted on ``pred``).

    Returns
    -------
    solved : ndarray of bool, shape (n,). ``solved.mean()`` is the fraction solved.

    Examples
    --------
    >>> adding_solved([0.50, 0.70], [0.53, 0.60]).tolist()
    [True, False]
    """
    p = as_float_array("pred", pred)
    t = as_float_array("target", target)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]  # (n, 1) -> (n,)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(
            f"pred and target must both be (n,); got {p.shape} and {t.shape}. "
            f"A model output of shape (n, 1) is accepted; squeeze anything else."
        )
    check_nonempty("pred", p, ("n",), hint="An empty batch has nothing to score.")
    tolerance = check_real("tolerance", tolerance, low=0, low_open=True,
                           hint="The paper's is 0.04 (ADDING_TOLERANCE).")
    return np.abs(p - t) < tolerance


def temporal_order(n: int, length: int, *, rng=None, seed=None, dtype=np.float64):
    """A batch of the temporal-order problem (Hochreiter & Schmidhuber 1997, task 6a).

    A sequence starts with ``E`` and ends with ``B``; every other step is one of the
    distractors ``a, b, c, d``, except two steps holding ``X`` or ``Y``. The first
    relevant step lies in ``[0.1 T, 0.2 T]`` and the second in ``[0.5 T, 0.6 T]``
    (the paper's positions 10-20 and 50-60 for ``T = 100``). The class is the
    order of the two relevant symbols: 0 ``XX``, 1 ``XY``, 2 ``YX``, 3 ``YY``.
    Inputs are one-hot over :data:`TEMPORAL_ORDER_SYMBOLS`.

    Parameters
    ----------
    n : int >= 1.
    length : int >= 10.
    rng : numpy.random.Generator, or ``seed`` : int (exactly one of them).
    dtype : NumPy float dtype of ``x``; float64 (default), or ``np.float32`` for the
        ``companion.nn`` torch modules. The labels stay int64.

    Returns
    -------
    x : ndarray (n, length, 8) of ``dtype``, one-hot, batch-first.
    y : ndarray (n,), int64 class labels in {0, 1, 2, 3}.

    Examples
    --------
    >>> x, y = temporal_order(1, 12, seed=3)
    >>> "".join(TEMPORAL_ORDER_SYMBOLS[i] for i in x[0].argmax(-1))
    'EaXaadXcaabB'
    >>> TEMPORAL_ORDER_CLASSES[int(y[0])]
    'XX'
    """
    n = check_positive_int("n", n)
    T = check_positive_int("length", length, minimum=10)
    dtype = check_float_dtype("dtype", dtype)
    rng = _as_rng(rng, seed)
    symbols = rng.integers(0, 4, size=(n, T))  # distractors a, b, c, d
    symbols[:, 0] = TEMPORAL_ORDER_SYMBOLS.index("E")
    symbols[:, -1] = TEMPORAL_ORDER_SYMBOLS.index("B")
    lo1, hi1 = max(1, int(round(0.1 * T))), int(round(0.2 * T))
    lo2, hi2 = int(round(0.5 * T)), min(T - 2, int(round(0.6 * T)))
    t1 = rng.integers(lo1, hi1 + 1, size=n)
    t2 = rng.integers(lo2, hi2 + 1, size=n)
    first_is_y = rng.integers(0, 2, size=n)
    second_is_y = rng.integers(0, 2, size=n)
    rows = np.arange(n)
    x_id = TEMPORAL_ORDER_SYMBOLS.index("X")
    symbols[rows, t1] = x_id + first_is_y
    symbols[rows, t2] = x_id + second_is_y
    x = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=dtype)[symbols]  # (n, T) -> (n, T, 8) one-hot
    y = (2 * first_is_y + second_is_y).astype(np.int64)
    return x, y
