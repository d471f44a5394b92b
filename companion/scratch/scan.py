"""Three ways to evaluate a linear recurrence, in NumPy (chapter 12, "scans").

The recurrence is

.. math:: h_t = a_t \\odot h_{t-1} + b_t, \\qquad t = 1, \\dots, T,

with ``h_0`` given (zero by default). ``a`` and ``b`` are arrays of shape (T, ...):
the product is elementwise (a *diagonal* transition, one independent scalar recurrence
per channel). The *dense* variant has ``a`` of shape (T, H, H) and ``b`` of shape
(T, H): ``h_t = a_t @ h_{t-1} + b_t``.

* :func:`scan_loop` -- the sequential loop, T - 1 combines one after another.
* :func:`blelloch_scan` -- the work-efficient parallel scan (Blelloch 1990): an
  up-sweep that builds a tree of partial compositions, then a down-sweep that hands
  every position the composition of everything to its left. Each level of the tree is
  one vectorised NumPy operation over all its pairs, so the number of levels is the
  *depth* and the number of pairs the *work*; both are counted and returned.
* :func:`logspace_scan` -- the closed form ``h_t = A_t (h_0 + sum_{s<=t} b_s / A_s)``
  with ``A_t = prod_{r<=t} a_r``, evaluated in log space (cumulative sums of
  ``log|a|`` and a running log-sum-exp) so that nothing overflows or underflows.
  Elementwise ``a`` only; signs and zeros of ``a`` are handled (see the function).

The combine operator works on pairs ``(a, b)`` standing for the affine map
``h -> a h + b``: doing ``(a1, b1)`` first and ``(a2, b2)`` second is the map
``(a2 a1, a2 b1 + b2)`` (:func:`combine`). Composition of maps is associative, which
is all a scan needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.checks import as_float_array, check_finite, check_positive_int

__all__ = ["ScanCounts", "blelloch_scan", "blelloch_schedule", "combine", "logspace_scan", "scan_loop",
           "LOG_ZERO"]

#: What :func:`logspace_scan` uses for ``log|a|`` where ``a == 0``: far below the log of
#: the smallest positive float64 (about -745), so ``exp`` of anything that crosses a zero
#: underflows to exactly 0, yet finite, so that ``-inf - (-inf)`` never makes a NaN.
LOG_ZERO = -1.0e3


@dataclass(frozen=True)
class ScanCounts:
    """Work and depth of one scan: ``combines`` (the work) and ``levels`` (the depth).

    ``levels`` counts the rounds of combines that depend on each other: within a round
    every combine is independent of the others and could run at the same time.
    """

    combines: int
    levels: int


def _is_dense(a, b):
    return a.ndim == b.ndim + 1


def combine(first, second, *, dense: bool = False):
    """Compose two affine maps: ``first`` applied first, then ``second``.

    ``first = (a1, b1)``, ``second = (a2, b2)``; returns ``(a2 a1, a2 b1 + b2)``, with
    elementwise products, or matrix products if ``dense`` (``a`` of shape (..., H, H),
    ``b`` of shape (..., H)). Broadcasts over leading axes, so one call combines many
    pairs at once.
    """
    if not isinstance(dense, (bool, np.bool_)):
        raise TypeError(f"dense must be True or False; got {type(dense).__name__} {dense!r}.")
    pairs = []
    for name, pair in (("first", first), ("second", second)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} must be a pair (a, b) standing for the map h -> a h + b; "
                            f"got {type(pair).__name__}"
                            + (f" of length {len(pair)}" if isinstance(pair, (tuple, list))
                               else "") + ".")
        a = as_float_array(f"{name}[0] (a)", pair[0])
        b = as_float_array(f"{name}[1] (b)", pair[1])
        if dense:
            if a.ndim < 2 or a.shape[-1] != a.shape[-2] or b.ndim < 1 \
                    or a.shape[-1] != b.shape[-1] or a.ndim != b.ndim + 1:
                raise ValueError(
                    f"{name} must be a dense pair, a (..., H, H) and b (..., H), with "
                    f"dense=True; got a {a.shape} and b {b.shape}. Elementwise pairs (a of "
                    f"the shape of b) take dense=False.")
        elif a.ndim == b.ndim + 1 and a.ndim >= 2 and a.shape[-1] == a.shape[-2] \
                and b.ndim >= 1 and a.shape[-1] == b.shape[-1]:
            raise ValueError(
                f"{name} looks like a dense pair (a {a.shape} is one (H, H) matrix per b "
                f"{b.shape}) but dense=False would multiply elementwise; pass dense=True.")
        pairs.append((a, b))
    try:
        return _combine(pairs[0], pairs[1], dense=bool(dense))
    except ValueError as err:  # shapes that do not broadcast
        raise ValueError(
            f"first and second must broadcast against each other; got a {pairs[0][0].shape}, "
            f"b {pairs[0][1].shape} and a {pairs[1][0].shape}, b {pairs[1][1].shape}.") from err


def _combine(first, second, *, dense: bool = False):
    """:func:`combine` without the checks (the scans' inner loop)."""
    (a1, b1), (a2, b2) = first, second
    if dense:
        return a2 @ a1, (a2 @ b1[..., None])[..., 0] + b2
    return a2 * a1, a2 * b1 + b2


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")
    return bool(value)


def _finite(arr, name):
    """Refuse NaN/inf with one reduction in the usual case: a finite ``x . x`` (one BLAS
    dot product) means every entry is finite; otherwise (NaN, inf, or an overflow of large
    finite values) the full test decides, and says where."""
    if arr.size:
        with np.errstate(all="ignore"):
            s = np.dot(arr.reshape(-1), arr.reshape(-1)) if arr.flags.c_contiguous \
                else arr.sum()
        if not np.isfinite(s):
            check_finite(name, arr)
    return arr


def _check_inputs(a, b, h0, *, allow_dense: bool):
    a = _finite(as_float_array("a", a, finite=False), "a")
    b = _finite(as_float_array("b", b, finite=False), "b")
    if b.ndim == 0 or b.shape[0] == 0:
        raise ValueError(f"b must have shape (T, ...) with T >= 1 (time first); got shape "
                         f"{b.shape}.")
    if b.size == 0:
        raise ValueError(f"b must have at least one channel (every axis after T >= 1); got "
                         f"shape {b.shape}.")
    dense = _is_dense(a, b)
    if dense and not allow_dense:
        raise ValueError(f"a must have the same shape as b (elementwise transitions); got a "
                         f"{a.shape} and b {b.shape}. The log-space formula has no dense "
                         f"form: use blelloch_scan or scan_loop for (T, H, H) matrices.")
    if dense:
        H = b.shape[-1]
        if a.shape != b.shape + (H,):
            raise ValueError(f"dense a must have shape (T, H, H) = {b.shape + (H,)} to match "
                             f"b of shape {b.shape}; got {a.shape}.")
    elif a.shape != b.shape:
        raise ValueError(f"a must have the same shape as b, (T, ...) = {b.shape}, or (T, H, H) "
                         f"for dense transitions; got a {a.shape}. Broadcast a explicitly, "
                         f"e.g. np.broadcast_to(a, b.shape).copy().")
    if h0 is None:
        h0 = np.zeros(b.shape[1:])
    else:
        h0 = as_float_array("h0", h0)
        if h0.shape != b.shape[1:]:
            raise ValueError(f"h0 must have the shape of one step of b, {b.shape[1:]}; got "
                             f"{h0.shape}.")
    return a, b, h0, dense


def scan_loop(a, b, h0=None, *, return_counts: bool = False):
    """The sequential loop ``h_t = a_t * h_{t-1} + b_t`` (or ``a_t @ h_{t-1}`` if dense).

    Parameters
    ----------
    a : (T, ...) like ``b`` (elementwise) or (T, H, H) with ``b`` (T, H) (dense).
    b : (T, ...), time first.
    h0 : the initial state, shape of one step of ``b``; zeros if omitted.
    return_counts : also return :class:`ScanCounts` (T - 1 combines in T - 1 levels:
        folding ``h0`` into the first step is not counted, as in the scans).

    Returns ``h`` of the shape of ``b``: ``h[t - 1]`` is :math:`h_t`.
    """
    return_counts = _check_flag("return_counts", return_counts)
    a, b, h0, dense = _check_inputs(a, b, h0, allow_dense=True)
    h = np.empty_like(b)
    state = h0
    for t in range(len(b)):
        state = (a[t] @ state if dense else a[t] * state) + b[t]
        h[t] = state
    T = len(b)
    return (h, ScanCounts(T - 1, T - 1)) if return_counts else h


def _levels(T: int):
    """The levels of Blelloch's scan on T elements: (phase, first right index, half, n).

    At a level, the right ends are ``first, first + 2 half, ...`` (``n`` of them, all
    below ``T``) and each absorbs the element ``half`` positions to its left.
    """
    s = 2
    while s // 2 < T:  # up-sweep: positions s-1, 2s-1, ... absorb the block s/2 to the left
        n = len(range(s - 1, T, s))
        if n:
            yield "up", s - 1, s // 2, n
        s *= 2
    while s >= 2:  # down-sweep, inclusive: complete prefixes flow right
        n = len(range(s - 1 + s // 2, T, s))
        if n:
            yield "down", s - 1 + s // 2, s // 2, n
        s //= 2


def blelloch_schedule(T: int) -> list[dict]:
    """Which positions Blelloch's scan combines, level by level, for a sequence of ``T``.

    Returns one dict per level: ``{"phase": "up" or "down", "pairs": [(left, right), ...]}``
    (0-based positions; ``right`` absorbs ``left``). Used to draw the scan's tree and to
    count its work (total pairs) and depth (number of levels).
    """
    T = check_positive_int("T", T)
    return [{"phase": phase, "pairs": [(r - half, r) for r in range(first, T, 2 * half)]}
            for phase, first, half, _ in _levels(T)]


def blelloch_scan(a, b, h0=None, *, return_counts: bool = False):
    """All states of the linear recurrence by Blelloch's work-efficient scan.

    Same arguments and result as :func:`scan_loop`. The elements are the pairs
    ``(a_t, b_t)`` (with ``h0`` folded into the first: ``b_1 + a_1 h0``); the scan
    computes every prefix composition, whose ``b`` part is :math:`h_t`.

    Up-sweep: at level ``k`` (stride ``s = 2^(k+1)``), every position ``i`` with
    ``(i + 1) % s == 0`` absorbs the partial result ``s/2`` to its left; afterwards each
    such position holds the composition of the ``s`` elements ending at it.
    Down-sweep (the inclusive form): at stride ``s`` going down, every position ``i``
    with ``(i + 1) % s == s/2`` (not the first) absorbs the complete prefix ending at
    ``i - s/2``. Each level is a single vectorised :func:`combine` over all its pairs.
    For any ``T`` (no padding): work below ``2 T`` combines, depth about ``2 log2 T``.
    """
    return_counts = _check_flag("return_counts", return_counts)
    a, b, h0, dense = _check_inputs(a, b, h0, allow_dense=True)
    T = len(b)
    A, B = a.copy(), b.copy()
    B[0] = (A[0] @ h0 if dense else A[0] * h0) + B[0]
    combines = levels = 0
    for _, first_right, half, n in _levels(T):
        # all pairs of one level at once; strided slices are views, so no index arrays
        stop = first_right + (n - 1) * 2 * half + 1
        right = slice(first_right, stop, 2 * half)
        left = slice(first_right - half, stop - half, 2 * half)
        A[right], B[right] = _combine((A[left], B[left]), (A[right], B[right]), dense=dense)
        combines, levels = combines + n, levels + 1
    return (B, ScanCounts(combines, levels)) if return_counts else B


def logspace_scan(a, b, h0=None):
    """All states of the elementwise recurrence from its closed form, in log space.

    With :math:`A_t = \\prod_{r \\le t} a_r`, the recurrence unrolls to
    :math:`h_t = A_t h_0 + \\sum_{s \\le t} (A_t / A_s)\\, b_s`. Computing ``A_t`` with a
    cumulative product and ``b_s / A_s`` directly fails: for ``|a| < 1`` the product
    underflows (to exactly 0 after a few hundred steps in float64, fewer in float32) and
    ``1 / A_s`` overflows. Here every factor is kept as a sign and a log magnitude:

    * ``L_t = sum_{r<=t} log|a_r|`` and ``sigma_t = prod_{r<=t} sign(a_r)`` (cumulative
      sum and product: both are scans themselves, with cheap combines);
    * each term is ``sigma_t sigma_s sign(b_s) exp(L_t - L_s + log|b_s|)``; the terms of
      each sign are summed with a running log-sum-exp (``np.logaddexp.accumulate``) of
      ``log|b_s| - L_s``, then ``L_t`` is added back *before* exponentiating, so the
      exponent of each term, ``L_t - L_s + log|b_s|``, is what gets evaluated;
    * a zero ``a_r`` cuts the past: ``log|a_r|`` is set to :data:`LOG_ZERO` (-1000), so
      every term from before ``r`` is multiplied by ``exp(-1000 + ...)``, which is 0 in
      float64, while terms after ``r`` never subtract two infinities. ``h0`` enters as
      the term ``s = 0`` with ``L_0 = 0``.

    Accuracy: the exponents are differences of cumulative sums, so their absolute
    rounding error grows like ``eps * max|L_t|``; with ``|a|`` far below 1 over long
    sequences (``|L|`` in the thousands) the relative error of ``h`` grows accordingly
    (about 1e-12 at ``|L| = 1e4``). Positive and negative terms are summed separately and
    subtracted at the end, so when they nearly cancel the error is relative to the
    terms, not to ``h``. Intended for ``|a| <= 1`` (stable recurrences); growing
    products overflow ``exp`` as they would overflow the loop.
    """
    a, b, h0, _ = _check_inputs(a, b, h0, allow_dense=False)
    T = len(b)
    zero = a == 0
    with np.errstate(divide="ignore"):
        log_abs_a = np.where(zero, LOG_ZERO, np.log(np.abs(np.where(zero, 1.0, a))))
    L = np.concatenate([np.zeros((1,) + b.shape[1:]), np.cumsum(log_abs_a, axis=0)])
    sigma = np.concatenate([np.ones((1,) + b.shape[1:]),
                            np.cumprod(np.where(a < 0, -1.0, 1.0), axis=0)])
    terms = np.concatenate([h0[None], b])  # term s = 0 is h0, with L_0 = 0
    sgn = sigma * np.sign(terms)
    with np.errstate(divide="ignore"):
        log_mag = np.log(np.abs(terms)) - L  # log|b_s| - L_s; -inf where b_s = 0
    pos = np.logaddexp.accumulate(np.where(sgn > 0, log_mag, -np.inf), axis=0)
    neg = np.logaddexp.accumulate(np.where(sgn < 0, log_mag, -np.inf), axis=0)
    h = sigma * (np.exp(L + pos) - np.exp(L + neg))
    return h[1:T + 1]
