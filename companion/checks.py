"""Input validation for the public entry points of ``companion``.

Every public function validates what the caller hands it through these helpers and
raises ``TypeError`` or ``ValueError`` (never ``assert``) with a message that names
the argument, says what was expected, what arrived, and the likely fix::

    x must be (N, T, D=8), batch-first; got (20, 4, 3). ...

Internal helpers trust their inputs: validation happens once, at the door.

Shapes are described by *specs*: tuples whose entries are either an ``int`` (that
exact size) or a ``str`` naming a dimension (``"N"``, ``"T"``, ``"D"``, ``"H"``...).
The first time a name is seen its size is recorded in the ``dims`` dictionary; later
uses of the same name must agree. That is how ``U`` of shape (H, D) and ``W`` of
shape (H, H) are checked against each other and against ``x`` of shape (N, T, D).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_axis",
    "check_batch_first",
    "check_callable",
    "check_finite",
    "check_finite_tensor",
    "check_float_dtype",
    "check_int_array",
    "check_keys",
    "check_nonempty",
    "check_positive_int",
    "check_probability",
    "check_real",
    "check_rng",
    "check_shape",
    "check_tensor",
    "check_token_tensor",
    "describe_spec",
]

Spec = tuple[int | str, ...]


def describe_spec(spec: Spec, dims: MutableMapping[str, int] | None = None) -> str:
    """Render a shape spec for an error message: ``("N", "T", "D")`` -> ``(N, T, D=8)``."""
    dims = dims or {}
    parts = []
    for entry in spec:
        if isinstance(entry, str) and entry in dims:
            parts.append(f"{entry}={dims[entry]}")
        else:
            parts.append(str(entry))
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _type_name(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"numpy array of dtype {value.dtype}"
    module = type(value).__module__
    if module.startswith("torch"):
        return f"torch {type(value).__name__}"
    return type(value).__name__


def as_float_array(name: str, value: Any, *, finite: bool = True,
                   allow_int: bool = False) -> np.ndarray:
    """Return ``value`` as a floating-point NumPy array, or raise a clear error.

    Accepts NumPy arrays, nested lists/tuples of numbers and Python scalars. Integer
    and boolean arrays are refused rather than silently converted: an integer array
    where floats are expected is almost always token ids passed where one-hot vectors
    or embeddings belong, and integer arithmetic would truncate gradients.
    torch tensors are refused with a pointer to ``.detach().numpy()``.
    With ``allow_int=True`` (axes of a plot, say) integers are converted to float64.
    """
    if type(value).__module__.startswith("torch"):
        raise TypeError(
            f"{name} must be a NumPy array; got a torch tensor. "
            f"Convert it with {name}.detach().cpu().numpy()."
        )
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of floats; got {_type_name(value)} {value!r}.")
    ragged = TypeError(
        f"{name} must be an array of floats; got a ragged or non-numeric sequence. "
        f"Pad sequences to a common length first."
    )
    try:
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    except ValueError as err:  # NumPy refuses ragged nested lists
        raise ragged from err
    if arr.dtype == object:
        raise ragged
    if arr.dtype.kind in "iu" and allow_int:
        arr = arr.astype(np.float64)
    if arr.dtype.kind in "biu":
        raise TypeError(
            f"{name} must hold floats; got {_type_name(arr)}. "
            f"If these are token ids, one-hot encode them first; otherwise use "
            f"{name}.astype(np.float64)."
        )
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold real floats; got {_type_name(arr)}.")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must hold floats; got {_type_name(arr)}.")
    if finite:
        check_finite(name, arr)
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` if ``arr`` holds NaN or infinity, saying where."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} must be finite; found {len(bad)} non-finite value(s), the first "
            f"({arr[first]}) at index {first}. Check for a division by zero or an "
            f"overflow upstream (a learning rate too large, missing gradient clipping)."
        )


def check_shape(
    name: str,
    arr: np.ndarray,
    spec: Spec,
    dims: MutableMapping[str, int] | None = None,
    *,
    layout: str = "",
    hint: str = "",
) -> MutableMapping[str, int]:
    """Check ``arr.shape`` against ``spec``, binding named dimensions in ``dims``.

    Parameters
    ----------
    name : the argument's name, used in the message.
    arr : the array (anything with a ``.shape``).
    spec : e.g. ``("N", "T", "D")`` or ``("H", 4)``.
    dims : sizes already known, e.g. ``{"D": 8}``; updated in place with new names.
    layout : a word added after the shape, e.g. ``"batch-first"``.
    hint : the likely fix, appended to the message. For 3-D batch-first specs a
        time-first hint is added automatically when swapping the first two axes
        would make the shape fit.

    Returns
    -------
    dims, updated.
    """
    dims = {} if dims is None else dims
    shape = tuple(int(s) for s in np.shape(arr))
    expected = describe_spec(spec, dims)
    where = f", {layout}" if layout else ""

    def fail(reason: str = "") -> None:
        extra = hint
        if not extra and len(spec) == 3 and len(shape) == 3 and spec[:2] == ("N", "T"):
            swapped = (shape[1], shape[0], shape[2])
            if _fits(swapped, spec, dict(dims)) and not _fits(shape, spec, dict(dims)):
                extra = (
                    "Time-first input? This course is batch-first: "
                    f"use {name}.transpose(1, 0, 2) (NumPy) or {name}.transpose(0, 1) (torch)."
                )
        msg = f"{name} must be {expected}{where}; got {shape}."
        if reason:
            msg += f" {reason}"
        if extra:
            msg += f" {extra}"
        raise ValueError(msg)

    if len(shape) != len(spec):
        fail(f"Expected {len(spec)} dimensions, got {len(shape)}.")
    new: dict[str, int] = {}
    for axis, (entry, size) in enumerate(zip(spec, shape)):
        if isinstance(entry, int):
            if size != entry:
                fail(f"Axis {axis} should have size {entry}.")
        else:
            known = dims.get(entry, new.get(entry))
            if known is not None and known != size:
                fail(f"Axis {axis} ({entry}) has size {size}, but {entry}={known} elsewhere.")
            new[entry] = size
    dims.update(new)
    return dims


def _fits(shape: tuple[int, ...], spec: Spec, dims: dict[str, int]) -> bool:
    for entry, size in zip(spec, shape):
        if isinstance(entry, int):
            if size != entry:
                return False
        elif entry in dims and dims[entry] != size:
            return False
        else:
            dims[entry] = size
    return len(shape) == len(spec)


def check_int_array(name: str, value: Any, *, low: int = 0, high: int | None = None) -> np.ndarray:
    """Return ``value`` as an integer array with every entry in ``[low, high)``."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an array of integer class indices; got {_type_name(arr)}. "
            f"If these are one-hot vectors, take {name}.argmax(-1)."
        )
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < low or (high is not None and hi >= high):
            rng = f"[{low}, {high})" if high is not None else f">= {low}"
            raise ValueError(
                f"{name} must have every entry in {rng}; got values from {lo} to {hi}. "
                f"Is the vocabulary size right, or is a padding id leaking in?"
            )
    return arr


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` >= ``minimum``, or raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {_type_name(value)} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}.")
    return int(value)


def check_probability(name: str, value: Any, *, open_low: bool = False) -> float:
    """Return ``value`` as a float in [0, 1] (or (0, 1] with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in [0, 1]; got {_type_name(value)} {value!r}.")
    v = float(value)
    if not (0.0 < v <= 1.0 if open_low else 0.0 <= v <= 1.0):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}; got {v}.")
    return v


def check_rng(name: str, value: Any) -> np.random.Generator:
    """Return ``value`` if it is a NumPy ``Generator``, else raise a clear ``TypeError``."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator; got {_type_name(value)}. "
            f"Create one with np.random.default_rng(seed) or companion.set_seed(seed)."
        )
    return value


def check_callable(name: str, value: Any, signature: str = "") -> Callable:
    """Return ``value`` if callable, else raise ``TypeError`` naming the expected signature."""
    if not callable(value):
        sig = f" with signature {signature}" if signature else ""
        raise TypeError(f"{name} must be a function{sig}; got {_type_name(value)} {value!r}.")
    return value


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """Return ``value`` as a finite ``float`` within the given bounds, or raise.

    ``TypeError`` for anything that is not a real number (strings, ``None``, arrays,
    booleans); ``ValueError`` for NaN, infinity or a value outside the interval, e.g.
    ``check_real("alpha", a, low=0)`` for ``alpha >= 0`` or ``low=0, low_open=True``
    for ``alpha > 0``.
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        what = f"a number in {lo}, {hi}"
    elif low is not None:
        what = f"a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        what = f"a number {'<' if high_open else '<='} {high:g}"
    else:
        what = "a finite number"
    extra = f" {hint}" if hint else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {what}; got {_type_name(value)} {value!r}.{extra}")
    v = float(value)
    bad = not np.isfinite(v)
    if low is not None:
        bad = bad or (v <= low if low_open else v < low)
    if high is not None:
        bad = bad or (v >= high if high_open else v > high)
    if bad:
        raise ValueError(f"{name} must be {what}; got {v!r}.{extra}")
    return v


def check_nonempty(name: str, arr: Any, spec: Spec, *, hint: str = "") -> None:
    """Raise ``ValueError`` if an axis of ``arr`` named in ``spec`` has size 0.

    Used after :func:`check_shape`: an empty batch or an empty sequence (T = 0) has
    nothing to compute and would otherwise crash deep inside a reshape.
    """
    shape = tuple(int(s) for s in np.shape(arr))
    for axis, (entry, size) in enumerate(zip(spec, shape)):
        if size == 0:
            what = {"T": "time step", "N": "sequence"}.get(str(entry), f"entry along {entry}")
            msg = (f"{name} must have at least one {what} (axis {axis}, {entry} >= 1); "
                   f"got shape {shape}.")
            if hint:
                msg += f" {hint}"
            raise ValueError(msg)


def check_batch_first(
    name: str,
    arr: Any,
    spec: Spec,
    dims: MutableMapping[str, int],
    companions: tuple = (),
    *,
    layout: str = "batch-first",
) -> MutableMapping[str, int]:
    """Check a batch-first array together with the arrays that share its N (and T) axes.

    ``companions`` is a sequence of ``(name, array, spec, hint)``; entries whose
    array is ``None`` are skipped. The argument that is blamed is the one that is
    wrong: ``arr`` is reported (with a time-first hint) only when swapping its first
    two axes would make everything fit; otherwise ``arr`` is checked first and the
    companion that disagrees with it is named. So ``h0`` with the wrong batch size
    blames ``h0``, and ``y`` one step short blames ``y``, not ``x``.
    """
    companions = tuple(c for c in companions if c[1] is not None)
    shape = tuple(int(s) for s in np.shape(arr))
    if companions and len(shape) >= 2 and shape[0] != shape[1]:
        swapped = (shape[1], shape[0], *shape[2:])

        def fits(x_shape):
            trial = dict(dims)
            return _fits(x_shape, spec, trial) and all(
                _fits(tuple(np.shape(a)), s, trial) for _, a, s, _ in companions)

        if fits(swapped) and not fits(shape):
            for c_name, c_arr, c_spec, c_hint in companions:  # bind N (and T) first
                check_shape(c_name, c_arr, c_spec, dims, hint=c_hint)
            check_shape(name, arr, spec, dims, layout=layout)  # raises, with the hint
    check_shape(name, arr, spec, dims, layout=layout)
    for c_name, c_arr, c_spec, c_hint in companions:
        check_shape(c_name, c_arr, c_spec, dims, hint=c_hint)
    return dims


def check_keys(name: str, value: Any, expected, *, what: str = "the parameters") -> Mapping:
    """Check that ``value`` is a dict with exactly the keys of ``expected``.

    Missing and unexpected keys are both reported by name (a ``ValueError``, not the
    bare ``KeyError`` a lookup would give).
    """
    expected = list(expected)
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a dict with keys {expected}; got {_type_name(value)}."
        )
    missing = [k for k in expected if k not in value]
    extra = [k for k in value if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ValueError(
            f"{name} must have one entry per key of {what}, {expected}; "
            f"{' and '.join(parts)}. Drop extra entries (e.g. grads.pop('h0')) first."
        )
    return value


def check_axis(name: str, axis: Any, ndim: int) -> int:
    """Return ``axis`` as a non-negative int valid for an array of ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, Integral):
        raise TypeError(f"{name} must be an int; got {_type_name(axis)} {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name} must be in [-{ndim}, {ndim}) for an array with {ndim} dimension(s); "
            f"got {axis}. The classes are usually on the last axis: {name}=-1."
        )
    return int(axis) % ndim


def check_float_dtype(name: str, dtype: Any) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is a NumPy floating-point type, else raise.

    torch dtypes are refused with their NumPy equivalent (``torch.float32`` ->
    ``np.float32``): the NumPy functions return NumPy arrays.
    """
    text = str(dtype)
    if text.startswith("torch."):
        raise TypeError(
            f"{name} must be a NumPy float dtype; got {text}. Use np.{text[6:]} here "
            f"and convert the result with torch.from_numpy(...)."
        )
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(
            f"{name} must be a NumPy float dtype such as np.float32 or np.float64; "
            f"got {dtype!r}."
        ) from err
    if dt.kind != "f":
        raise TypeError(
            f"{name} must be a NumPy float dtype such as np.float32 or np.float64; got {dt}."
        )
    return dt


# ------------------------------------------------------------------- torch tensors
# The torch side of the package checks its inputs with these two. torch is imported
# only when they run, so the NumPy half of the package does not need it.

def _torch_hint(name: str, value: Any, want: str) -> str:
    if isinstance(value, np.ndarray):
        return f" Convert it with torch.as_tensor({name}, dtype={want})."
    if isinstance(value, (list, tuple)):
        return f" Build a tensor first: torch.tensor({name}, dtype={want})."
    return ""


def check_tensor(name: str, value: Any, spec: Spec, dims: MutableMapping[str, int] | None = None,
                 *, dtype: Any = "float", finite: bool = True, layout: str = "",
                 hint: str = "") -> MutableMapping[str, int]:
    """Check that ``value`` is a torch tensor of shape ``spec``, of the right dtype and finite.

    ``dtype`` is a torch dtype (say the module's weights' dtype: float64 input into a
    float32 module is refused with the fix), or ``"float"`` for any floating dtype.
    ``finite=True`` refuses NaN and infinity and says where the first one is: a forward
    pass would otherwise carry them silently into every output. Named dimensions bind
    in ``dims`` as in :func:`check_shape` (a time-first hint is added for 3-D
    batch-first specs). Returns ``dims``.
    """
    import torch

    want = "torch.float32" if dtype == "float" else str(dtype)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor {describe_spec(spec, dims)}; got "
                        f"{_type_name(value)}." + _torch_hint(name, value, want))
    if dtype == "float":
        if not value.is_floating_point():
            extra = (" If these are token ids, the model embeds them itself: pass them to "
                     "its token argument." if value.dtype in (torch.int64, torch.int32) else "")
            raise TypeError(f"{name} must hold floats; got dtype {value.dtype}.{extra} "
                            f"Otherwise use {name}.float().")
    elif value.dtype != dtype:
        fix = {torch.float32: f"{name}.float()", torch.float64: f"{name}.double()"}.get(
            dtype, f"{name}.to({dtype})")
        raise TypeError(f"{name} must have dtype {dtype} (that of the module's weights); got "
                        f"{value.dtype}. Use {fix}, or convert the module instead "
                        f"(module.to({value.dtype})).")
    dims = check_shape(name, value, spec, dims, layout=layout, hint=hint)
    if finite and value.is_floating_point():
        check_finite_tensor(name, value)
    return dims


def check_finite_tensor(name: str, value: Any) -> None:
    """Refuse NaN or infinity in the torch tensor ``value`` (real or complex), saying how
    many and where the first one is. One reduction in the usual case: a finite sum means
    every entry is finite; only a non-finite sum (NaN, inf, or finite values whose sum
    overflowed) pays for the elementwise test."""
    import torch

    with torch.no_grad():
        t = value.detach()
        if t.numel() == 0 or bool(torch.isfinite(t.sum())):
            return
        ok = torch.isfinite(t)
        if bool(ok.all()):
            return
        bad = (~ok).nonzero()
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} must be finite; found {len(bad)} non-finite value(s), the first "
            f"({t[first].item()}) at index {first}. Check the data, or a division "
            f"by zero or an overflow upstream.")


def check_token_tensor(name: str, value: Any, spec: Spec,
                       dims: MutableMapping[str, int] | None = None, *, vocab_size: int,
                       layout: str = "", hint: str = "") -> MutableMapping[str, int]:
    """Check token ids: a ``torch.long`` tensor of shape ``spec`` with every id in
    ``[0, vocab_size)``. Float ids are refused (they would be truncated), and so are ids
    out of range (a negative id would silently pick an embedding row from the end).
    Returns ``dims``."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.long tensor of token ids "
                        f"{describe_spec(spec, dims)}; got {_type_name(value)}."
                        + _torch_hint(name, value, "torch.long"))
    if value.dtype != torch.long:
        extra = (" Token ids are whole numbers: a float id would be truncated."
                 if value.is_floating_point() else "")
        raise TypeError(f"{name} must be a torch.long tensor of token ids; got dtype "
                        f"{value.dtype}.{extra} Use {name}.long() if the values are ids.")
    dims = check_shape(name, value, spec, dims, layout=layout, hint=hint)
    if value.numel():
        lo, hi = int(value.min()), int(value.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} must hold token ids in [0, {vocab_size}); got ids from {lo} to {hi}. "
                f"Is the vocabulary size right, or are ids of another vocabulary (or a "
                f"padding value such as -1) leaking in?")
    return dims
