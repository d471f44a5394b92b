"""Checkers for the book's exercises: ``check_*`` functions print a verdict or raise
``AssertionError`` with a hint. Reference solutions are in the notebooks (hidden cells).

Every checker reports through :func:`ok` and :func:`require`. A hint never states the
expected value, and :func:`require` raises explicitly instead of using ``assert``:
asserts vanish under ``python -O`` (every answer would pass), and pytest's assertion
rewriting would append the compared values, the expected answer included, to the hint.

Two rules keep a checker from accepting an answer that is not the student's own work:

* **No delegation.** Where the package (or torch) already holds the answer, the checker
  runs the student's function inside :func:`references_disabled`, which makes those
  reference functions raise for the duration of the call: an answer that only calls
  them is rejected with a hint that says so. The checker computes its own expected
  values outside that block.
* **Unseen inputs.** Besides fixed cases, a checker tests cases drawn from
  :func:`unseen_rng`, a generator seeded afresh from the operating system on every call,
  so no constant copied from the page or from an earlier run can pass. The verdict line
  printed on success is the same on every run, so stored outputs stay deterministic.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
import sys
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["ok", "require", "references_disabled", "unseen_rng", "DelegationError",
           "existing", "torch_refused", "TORCH_AUTOGRAD", "finite", "unchanged",
           "takes_arguments"]


def ok(message: str) -> None:
    """Print the one-line verdict of a right answer."""
    print(f"Correct: {message}")


def require(condition, hint: str) -> None:
    """Raise ``AssertionError(hint)`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(hint)


def unseen_rng() -> np.random.Generator:
    """A NumPy generator seeded from the operating system's entropy, new on every call.

    Checkers draw their hidden test cases from it, so that an answer hard-coded to the
    values of the page (or of the checker's fixed cases) fails.
    """
    return np.random.default_rng(secrets.randbits(128))


class DelegationError(AssertionError):
    """Raised when an answer calls a reference implementation the exercise asks for."""


def _resolve(path: str) -> tuple[Any, str, Any]:
    """``"pkg.module.attr"`` -> (module, attr, object); the longest importable prefix."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:-1]:
                owner = getattr(owner, name)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            break
    raise ValueError(f"references_disabled: cannot import {path!r}; give a dotted path "
                     f"such as 'companion.scratch.attention.alignment_accuracy'.")


def _refusal(path: str) -> DelegationError:
    return DelegationError(
        f"your answer calls {path}, which already holds this exercise's answer. "
        f"Write the computation yourself (NumPy or torch tensor operations are fine).")


def _refusal_from_code(code) -> DelegationError:
    """The refusal for a disabled function whose code was swapped (see _swap_code)."""
    return _refusal(code.co_filename.removeprefix("<disabled ").removesuffix(">"))


def _refusing_code(path: str):
    """A code object that raises the refusal of ``path``, runnable in any module's globals
    (it reaches this module through ``__import__`` only, a builtin)."""
    def refuse(*args, **kwargs):
        raise __import__("companion.exercises", fromlist=["_refusal_from_code"]) \
            ._refusal_from_code(__import__("sys")._getframe(0).f_code)
    return refuse.__code__.replace(co_filename=f"<disabled {path}>",
                                   co_name=path.rsplit(".", 1)[-1])


def _swap_code(target: Any, path: str) -> Any:
    """Make the Python function ``target`` itself refuse (its ``__code__`` swapped), so
    that every reference to it fails: aliases, default arguments, closures, containers.
    Returns the original code, or None where that is impossible (a builtin, a class, a
    function with a closure), for which replacing names has to do."""
    code = getattr(target, "__code__", None)
    if code is None or getattr(target, "__closure__", None):
        return None
    target.__code__ = _refusing_code(path)
    return code


def _stand_in(path: str) -> Callable:
    def refuse(*args, **kwargs):
        raise _refusal(path)
    refuse.__name__ = path.rsplit(".", 1)[-1]
    refuse.__qualname__ = refuse.__name__
    return refuse


def _namespaces(fn: Callable) -> list[dict]:
    """Global namespaces in which an answer could find a reference by name."""
    spaces = []
    seen: set[int] = set()

    def add(space):
        if isinstance(space, dict) and id(space) not in seen:
            seen.add(id(space))
            spaces.append(space)

    add(getattr(fn, "__globals__", None))
    add(getattr(getattr(fn, "__call__", None), "__globals__", None))
    main = sys.modules.get("__main__")
    if main is not None:
        add(vars(main))
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "companion" or name.startswith("companion.")):
            add(vars(module))
    return spaces


def _closure_cells(fn: Callable, depth: int = 3) -> list:
    """Closure cells of ``fn`` and of the functions it closes over (a few levels deep)."""
    cells, todo, seen = [], [(fn, 0)], set()
    while todo:
        f, level = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        for cell in getattr(f, "__closure__", None) or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            cells.append(cell)
            if callable(content) and level < depth:
                todo.append((content, level + 1))
        inner = getattr(f, "func", None)  # functools.partial
        if inner is not None and level < depth:
            todo.append((inner, level + 1))
    return cells


@contextlib.contextmanager
def references_disabled(fn: Callable, *paths: str) -> Iterator[None]:
    """Make each reference named in ``paths`` raise while the block runs.

    ``paths`` are dotted names (``"companion.scratch.attention.alignment_accuracy"``,
    ``"torch.nn.functional.scaled_dot_product_attention"``). The object is replaced in
    its own module, in every loaded ``companion`` module that holds it under any name, in
    ``__main__`` (where a notebook imported it), in ``fn``'s globals and in the closures
    of ``fn`` and of the functions it closes over, and in ``fn``'s default arguments. A
    Python function is also disabled in itself (its code swapped for one that refuses),
    so no other way of holding it gets past; everything is
    restored on exit, also when the block raises. A reference handed in as the answer
    itself (``check(alignment_accuracy)``, or a ``functools.partial`` of it) is refused
    on entry.
    """
    for path in paths:
        target = _resolve(path)[2]
        if fn is target or getattr(fn, "func", None) is target:
            _stand_in(path)()
    undo: list[tuple[Any, Any, Any, str]] = []  # (owner, key, old value, kind)
    # One pass over every namespace and closure finds the names that hold any of the
    # targets (one pass per target would scan every loaded module once per path).
    resolved = [(path, *_resolve(path)) for path in paths]
    wanted = {id(target) for _, _, _, target in resolved}
    holders: dict[int, list] = {}
    for space in _namespaces(fn):
        for name, value in list(space.items()):
            if id(value) in wanted:
                holders.setdefault(id(value), []).append((space, name))
    cells = [cell for cell in _closure_cells(fn) if id(cell.cell_contents) in wanted]
    try:
        for path, owner, attr, target in resolved:
            original = _swap_code(target, path)
            if original is not None:
                undo.append((target, "__code__", original, "attr"))
            refuse = _stand_in(path)
            # On a class, keep and put back the raw entry (a staticmethod or classmethod
            # wrapper), not the function that attribute access unwraps.
            raw = vars(owner).get(attr, target) if isinstance(owner, type) else target
            undo.append((owner, attr, raw, "attr"))
            try:
                setattr(owner, attr, staticmethod(refuse) if isinstance(raw, staticmethod)
                        else refuse)
            except (AttributeError, TypeError):  # a builtin type: its code cannot be reached
                undo.pop()
            for space, name in holders.get(id(target), ()):
                if space.get(name) is target:
                    undo.append((space, name, target, "item"))
                    space[name] = refuse
            for cell in cells:
                if cell.cell_contents is target:
                    undo.append((cell, None, target, "cell"))
                    cell.cell_contents = refuse
            for holder in (fn, getattr(fn, "__func__", None)):
                defaults = getattr(holder, "__defaults__", None)
                if defaults and any(d is target for d in defaults):
                    undo.append((holder, "__defaults__", defaults, "attr"))
                    holder.__defaults__ = tuple(refuse if d is target else d for d in defaults)
                kwdefaults = getattr(holder, "__kwdefaults__", None)
                if kwdefaults and any(d is target for d in kwdefaults.values()):
                    undo.append((holder, "__kwdefaults__", dict(kwdefaults), "attr"))
                    holder.__kwdefaults__ = {k: refuse if d is target else d
                                             for k, d in kwdefaults.items()}
        yield
    finally:
        for owner, key, value, kind in reversed(undo):
            if kind == "item":
                owner[key] = value
            elif kind == "cell":
                owner.cell_contents = value
            else:
                setattr(owner, key, value)


def existing(*paths: str) -> tuple[str, ...]:
    """The dotted names among ``paths`` that this installation has.

    Parameters
    ----------
    *paths : str
        Dotted names such as ``"torch.func.grad"``; torch's vary between versions.

    Returns
    -------
    tuple of str
        The names whose module imports and whose attributes exist, in the given order.

    Examples
    --------
    >>> existing("numpy.linalg.norm", "numpy.no_such_function", "no_such_module.f")
    ('numpy.linalg.norm',)
    """
    found = []
    for path in paths:
        try:
            _resolve(path)
        except ValueError:
            continue
        found.append(path)
    return tuple(found)


#: torch's automatic differentiation, reverse and forward mode, under its public and
#: functorch names; filter with :func:`existing` before disabling (torch's names vary).
TORCH_AUTOGRAD = (
    "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
    "torch.func.grad", "torch.func.grad_and_value", "torch.func.vjp", "torch.func.jacrev",
    "torch.func.jacfwd", "torch.func.jvp", "torch.func.hessian", "torch.func.linearize",
    "torch._functorch.eager_transforms.vjp", "torch._functorch.eager_transforms.jacrev",
    "torch._functorch.eager_transforms.jvp", "torch._functorch.eager_transforms.jacfwd",
    "torch._functorch.eager_transforms.linearize", "torch._functorch.eager_transforms.hessian",
    "torch._functorch.apis.grad", "torch._functorch.apis.grad_and_value",
    "torch.autograd.forward_ad.make_dual",
    "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian",
    "torch.autograd.functional.jvp", "torch.autograd.functional.vhp",
    "torch.autograd.functional.hessian",
)


def _op_name(func) -> str:
    """``torch._VF.gru`` -> "gru", ``torch.ops.aten._log_softmax.default`` ->
    "_log_softmax", ``torch.Tensor.softmax`` -> "softmax"."""
    from torch.overrides import resolve_name

    name = resolve_name(func) or getattr(func, "__name__", "") or ""
    parts = name.split(".")
    if "aten" in parts[:-1]:
        return parts[parts.index("aten") + 1]
    return parts[-1]


@contextlib.contextmanager
def torch_refused(ops=(), *, autograd: bool = False, engine: bool = False,
                  engine_advice: str = "Write the backward pass yourself.") -> Iterator[None]:
    """Refuse torch's own ways to an answer while the block runs.

    :func:`references_disabled` replaces named functions; this catches the same
    computations reached through torch's other entry points. Everything is restored on
    exit, also when the block raises. Without torch installed it does nothing.

    Parameters
    ----------
    ops : iterable of str
        torch operations refused under any of their names (``torch.x``, ``Tensor.x``,
        ``torch._VF.x``, ``torch.special.x``, ``torch.ops.aten.x``, a module instance
        built beforehand that calls them), e.g. ``("log_softmax", "_log_softmax")``.
    autograd : bool
        Refuse any use of torch's automatic differentiation: a tensor saved for a
        backward pass (reverse mode, however the backward pass is then started), a dual
        tensor (forward mode), ``backward`` and ``autograd.grad``.
    engine : bool
        Refuse torch's backward engine itself, however it is reached
        (``Variable._execution_engine.run_backward`` serves every reverse-mode entry
        point); the hint ends with ``engine_advice``.
    engine_advice : str
        The last sentence of the engine's refusal.

    Raises
    ------
    DelegationError
        Inside the block, when the answer reaches a refused operation.
    """
    try:
        import torch
        from torch.overrides import TorchFunctionMode
    except ImportError:  # no torch, nothing to refuse
        yield
        return
    refused = set(ops)
    if autograd:
        refused |= {"backward", "grad", "make_dual", "_make_dual"}

    def refuse(what):
        raise DelegationError(
            f"your answer calls {what}, which already holds this exercise's answer. "
            f"Write the computation yourself (NumPy or torch tensor operations are fine).")

    class Refuse(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if _op_name(func) in refused:
                refuse(f"torch's {_op_name(func)}")
            return func(*args, **(kwargs or {}))

    def pack(tensor):
        refuse("torch's autograd (a tensor that requires grad records the computation "
               "for a backward pass)")

    class RefuseEngine:
        def __getattr__(self, name):
            raise DelegationError(
                "your answer runs torch's backward engine (automatic differentiation), which "
                f"already holds this exercise's answer. {engine_advice}")

    with contextlib.ExitStack() as stack:
        if refused:
            stack.enter_context(Refuse())
        if autograd:
            stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
        if engine:
            from torch.autograd.variable import Variable

            saved = Variable._execution_engine
            Variable._execution_engine = RefuseEngine()
            stack.callback(setattr, Variable, "_execution_engine", saved)
        yield


def finite(value, what: str, shape=None) -> np.ndarray:
    """``value`` as a float array, with a hint unless it is numbers, all finite.

    Parameters
    ----------
    value : array_like
        The answer's output.
    what : str
        How the hint names it (``"your states"``).
    shape : tuple of int, optional
        The shape it must have.

    Returns
    -------
    numpy.ndarray
        ``np.asarray(value, dtype=float)``.

    Raises
    ------
    AssertionError
        When ``value`` is not numbers, has another shape, or holds NaN or inf.

    Examples
    --------
    >>> finite([1, 2], "your states", (2,))
    array([1., 2.])
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be an array of numbers; got "
                             f"{type(value).__name__}.") from None
    if shape is not None:
        require(arr.shape == tuple(shape), f"{what} must have shape {tuple(shape)}; got "
                                           f"{arr.shape}.")
    require(bool(np.all(np.isfinite(arr))), f"{what} holds NaN or inf.")
    return arr


def unchanged(original, passed, name: str) -> None:
    """Refuse an answer that changed its argument ``name`` in place.

    Parameters
    ----------
    original : array_like
        A copy taken before the call.
    passed : array_like
        The object handed to the answer, after the call.
    name : str
        The argument's name in the hint (which never states a value).

    Raises
    ------
    AssertionError
        Unless the two are equal (NaN equal to NaN).
    """
    require(np.array_equal(original, passed, equal_nan=True), (
        f"your function changes its argument {name} in place; the caller's array must stay "
        f"as it was. Work on a copy (np.array(...) or .copy()) or build new arrays."))


def takes_arguments(fn, signature: str) -> None:
    """Refuse, with a hint, a function that cannot be called as ``signature`` describes.

    Checkers call answers positionally, in the order of ``signature``; a function with
    more or fewer required arguments would otherwise fail with a bare ``TypeError`` from
    inside the checker. Argument names do not matter.

    Parameters
    ----------
    fn : callable
        The answer.
    signature : str
        The expected call, e.g. ``"(a, s0, xs) -> s"``; the names before ``->`` are counted.

    Raises
    ------
    AssertionError
        When ``fn`` does not accept that many positional arguments; the hint shows the
        expected signature and the function's own.

    Examples
    --------
    >>> takes_arguments(lambda a, s0, xs: 0.0, "(a, s0, xs) -> s")
    >>> takes_arguments(lambda a, xs: 0.0, "(a, s0, xs) -> s")
    Traceback (most recent call last):
    ...
    AssertionError: your function must take 3 arguments, in this order:
        (a, s0, xs) -> s
    yours is (a, xs). Names may differ; the number and the order of the arguments may not.
    """
    import inspect

    inner = signature.split("->")[0].strip().strip("()")
    n = len([a for a in inner.split(",") if a.strip()])
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        sig.bind(*range(n))
    except TypeError:
        raise AssertionError(
            f"your function must take {n} arguments, in this order:\n    {signature}\n"
            f"yours is {sig}. Names may differ; the number and the order of the arguments "
            f"may not.") from None
