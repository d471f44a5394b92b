"""One model-agnostic training loop for torch models, with gradient clipping.

The loop knows nothing about a particular model or task: it asks ``batch_fn(step)``
for a batch, calls ``loss_fn(model, batch)`` for a scalar loss, back-propagates,
optionally clips the gradient and takes an optimiser step. It records the loss and
the gradient norm *before* clipping at every step, which is what chapter 5 plots.

Clipping (Pascanu et al., 2013; Mikolov's element-wise variant as used in
Karpathy's min-char-rnn):

* ``clip_norm=c`` rescales the whole gradient ``g`` (all parameters as one vector)
  to ``g * c / ||g||`` when ``||g|| > c``: the direction is kept;
* ``clip_value=c`` clamps every component to ``[-c, c]``: the direction can change.

A NaN or infinite loss or gradient stops training with :class:`NonFiniteError`
naming the step, unless ``allow_nonfinite=True`` (used only to *show* an explosion);
then the bad step is recorded and training carries on (the update is skipped when
the gradient is not finite, as most practical code does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from companion.checks import check_callable, check_positive_int

__all__ = ["NonFiniteError", "TrainHistory", "train", "clip_gradients", "global_grad_norm"]


class NonFiniteError(FloatingPointError):
    """Raised when a loss or gradient becomes NaN or infinite during training."""


@dataclass
class TrainHistory:
    """What :func:`train` records, one entry per step (lists of floats)."""

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)  #: global norm before clipping
    clipped: list = field(default_factory=list)  #: whether clipping changed the gradient
    nonfinite_steps: list = field(default_factory=list)  #: steps whose loss/grad was NaN/inf

    @property
    def steps(self) -> int:
        return len(self.loss)


def _shape_of(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else ""


def _parameter_list(name, parameters) -> list:
    """``parameters`` as a list of tensors: an iterable of tensors, or one tensor."""
    if isinstance(parameters, torch.nn.Module):
        raise TypeError(
            f"{name} must be an iterable of tensors; got the module {type(parameters).__name__}. "
            f"Pass model.parameters()."
        )
    if isinstance(parameters, torch.Tensor):
        return [parameters]  # one tensor, as torch.nn.utils.clip_grad_norm_ accepts
    try:
        params = list(parameters)
    except TypeError as err:
        raise TypeError(
            f"{name} must be an iterable of tensors such as model.parameters(); "
            f"got {type(parameters).__name__}."
        ) from err
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(
                f"{name}[{i}] must be a torch tensor (a parameter); got {type(p).__name__}."
            )
    return params


def global_grad_norm(parameters) -> float:
    """The Euclidean norm of all gradients concatenated into one vector.

    ``parameters``: an iterable of tensors (``model.parameters()``) or one tensor;
    tensors without a gradient are skipped.
    """
    grads = [p.grad for p in _parameter_list("parameters", parameters) if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.sqrt(sum((g.detach().double() ** 2).sum() for g in grads)))


def _check_clip(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number or None; got {type(value).__name__}.")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number or None; got {value!r}.")
    return float(value)


def _check_clip_pair(clip_norm, clip_value):
    """At most one clipping rule: they are different remedies, not a combination."""
    clip_norm = _check_clip("clip_norm", clip_norm)
    clip_value = _check_clip("clip_value", clip_value)
    if clip_norm is not None and clip_value is not None:
        raise ValueError(
            "pass clip_norm or clip_value, not both: they are two different remedies "
            "(rescale the whole gradient vs clamp each component)."
        )
    return clip_norm, clip_value


def clip_gradients(parameters, *, clip_norm=None, clip_value=None) -> bool:
    """Clip gradients in place, by global norm or by value; return whether any changed.

    Exactly one of ``clip_norm`` and ``clip_value`` may be given (neither: no-op).
    ``parameters``: an iterable of tensors (``model.parameters()``) or one tensor.

    Raises
    ------
    NonFiniteError : a gradient holds NaN or inf. Clipping cannot repair it (a NaN
        scaled or clamped is still NaN), so it is reported instead of passed on.
    """
    clip_norm, clip_value = _check_clip_pair(clip_norm, clip_value)
    params = [p for p in _parameter_list("parameters", parameters) if p.grad is not None]
    if clip_norm is None and clip_value is None:
        return False
    norm = global_grad_norm(params)
    if not math.isfinite(norm):
        raise NonFiniteError(
            f"cannot clip a gradient that is not finite (global norm {norm}); clipping "
            f"scales or clamps, and NaN stays NaN. Skip this step, or lower the learning rate."
        )
    if clip_norm is not None:
        if norm > clip_norm:
            for p in params:
                p.grad.mul_(clip_norm / norm)
            return True
        return False
    if clip_value is not None:
        changed = any(bool((p.grad.abs() > clip_value).any()) for p in params)
        for p in params:
            p.grad.clamp_(-clip_value, clip_value)
        return changed
    return False


def train(
    model: torch.nn.Module,
    batch_fn: Callable,
    loss_fn: Callable,
    *,
    steps: int,
    lr: float = 1e-3,
    optimizer: str = "adam",
    clip_norm: float | None = None,
    clip_value: float | None = None,
    allow_nonfinite: bool = False,
    print_every: int = 0,
) -> TrainHistory:
    """Train ``model`` for ``steps`` optimiser steps and return the :class:`TrainHistory`.

    Parameters
    ----------
    model : a ``torch.nn.Module`` with parameters.
    batch_fn : ``batch_fn(step) -> batch``, any object ``loss_fn`` understands. Make
        it deterministic (e.g. seed a generator once, outside) for reproducible runs.
    loss_fn : ``loss_fn(model, batch) -> scalar tensor``.
    steps : int >= 1.  lr : learning rate > 0.
    optimizer : ``"adam"`` or ``"sgd"`` (plain, no momentum).
    clip_norm, clip_value : optional clipping (at most one), see :func:`clip_gradients`.
    allow_nonfinite : record NaN/inf steps instead of raising (to show an explosion).
    print_every : print the loss every so many steps (0, the default: silent).

    Raises
    ------
    NonFiniteError : the loss or the gradient at some step is NaN/inf, naming the step.

    Examples
    --------
    >>> model = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 16)[:, None]
    >>> hist = train(model, lambda s: (x, 3 * x), lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(),
    ...              steps=200, lr=0.1, optimizer="sgd")
    >>> hist.loss[-1] < 1e-3 < hist.loss[0]
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters; nothing to train.")
    check_callable("batch_fn", batch_fn, "batch_fn(step) -> batch")
    check_callable("loss_fn", loss_fn, "loss_fn(model, batch) -> scalar tensor")
    steps = check_positive_int("steps", steps)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(f"lr must be a positive finite number; got {type(lr).__name__} {lr!r}.")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number; got {lr!r}.")
    clip_norm, clip_value = _check_clip_pair(clip_norm, clip_value)
    print_every = check_positive_int("print_every", print_every, minimum=0)
    if not isinstance(allow_nonfinite, bool):
        raise TypeError(f"allow_nonfinite must be True or False; got {allow_nonfinite!r}.")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}.")

    hist = TrainHistory()
    model.train()
    for step in range(steps):
        batch = batch_fn(step)
        opt.zero_grad()
        loss = loss_fn(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise TypeError(
                "loss_fn must return a scalar tensor (0-dim); got "
                f"{type(loss).__name__}{_shape_of(loss)}. Reduce it with .mean() or .sum()."
            )
        value = float(loss.detach())
        finite = math.isfinite(value)
        if finite:
            loss.backward()
            norm = global_grad_norm(params)
            finite = math.isfinite(norm)
        else:
            norm = float("nan")
        hist.loss.append(value)
        hist.grad_norm.append(norm)
        if not finite:
            hist.nonfinite_steps.append(step)
            hist.clipped.append(False)
            if not allow_nonfinite:
                what = "loss" if not math.isfinite(value) else "gradient norm"
                raise NonFiniteError(
                    f"training stopped at step {step}: the {what} is not finite "
                    f"(loss={value}, grad norm={norm}). Lower the learning rate or clip "
                    f"gradients (clip_norm=1.0); pass allow_nonfinite=True to record it instead."
                )
            continue  # skip the update: a NaN gradient would poison every parameter
        hist.clipped.append(clip_gradients(params, clip_norm=clip_norm, clip_value=clip_value))
        opt.step()
        if print_every and (step + 1) % print_every == 0:
            print(f"step {step + 1:>6}  loss {value:.4f}  grad norm {norm:.3g}")
    return hist
