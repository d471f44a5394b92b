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

Long runs show a progress bar (``tqdm.auto``: a widget in Jupyter, text in a
terminal) unless the environment variable ``COMPANION_PROGRESS=0`` is set, which
``make execute`` and ``make test`` do so that stored outputs stay free of bars.
Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) hold state dicts
only and are read back with ``torch.load(..., weights_only=True)``: loading one
never runs code from the file. ``train(..., checkpoint=path, checkpoint_every=k)``
saves the model, the optimiser, the step and the history every ``k`` steps, and
``train(..., resume=path)`` continues from such a file as if never interrupted
(``batch_fn(step)`` is asked for the same steps).
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from companion.checks import check_callable, check_positive_int, check_real

__all__ = ["NonFiniteError", "TrainHistory", "train", "clip_gradients", "global_grad_norm",
           "save_checkpoint", "load_checkpoint", "PROGRESS_MIN_STEPS"]

#: ``progress=None`` shows a bar only for runs of at least this many steps.
PROGRESS_MIN_STEPS = 500


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


def _check_path(name, path) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or pathlib.Path); "
                        f"got {type(path).__name__}.")
    return pathlib.Path(path)


def _check_save_path(name, path) -> pathlib.Path:
    """A path a checkpoint can be written to: its folder exists, it is not a folder."""
    path = _check_path(name, path)
    if path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a folder; give a file name inside it, "
                         f"e.g. {str(path / 'model.pt')!r}.")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{name}: cannot save to {str(path)!r}: the folder {str(folder)!r} does not exist. "
            f"Create it first: pathlib.Path({str(folder)!r}).mkdir(parents=True, exist_ok=True).")
    return path


def _read_checkpoint(path: pathlib.Path) -> dict:
    """``torch.load(path, weights_only=True)``, with a clear error for a damaged file."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"path: the checkpoint {str(path)!r} is empty (0 bytes); it was not "
                         f"written completely. Save it again with save_checkpoint.")
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError (zip reader)...
        raise ValueError(
            f"path: cannot read {str(path)!r} ({size} bytes) as a checkpoint: the file is "
            f"corrupt, truncated or not a torch file ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else ''}). Save it again with "
            f"save_checkpoint, or point path at the right file.") from err


def save_checkpoint(path, model: torch.nn.Module, optimizer=None, *, step: int = 0,
                    history: TrainHistory | None = None) -> pathlib.Path:
    """Save ``model`` (and optionally ``optimizer``, ``step``, ``history``) to ``path``.

    Only state dicts, numbers and lists are written, so the file can be read back with
    ``torch.load(path, weights_only=True)``, which refuses to run code from a file.
    The file is written next to its final name and then renamed, so an interrupted
    save never leaves a truncated checkpoint behind. Returns the path.
    """
    path = _check_save_path("path", path)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None; "
                        f"got {type(optimizer).__name__}.")
    step = check_positive_int("step", step, minimum=0)
    if history is not None and not isinstance(history, TrainHistory):
        raise TypeError(f"history must be a TrainHistory or None; got {type(history).__name__}.")
    state = {
        "format": "companion-checkpoint-1",
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "optimizer_class": type(optimizer).__name__ if optimizer is not None else None,
        "step": step,
        "history": asdict(history) if history is not None else None,
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(f"path: cannot write the checkpoint {str(path)!r}: {err}. Is the "
                      f"folder writable, and is there space on the disk?") from err
    return path


def load_checkpoint(path, model: torch.nn.Module, optimizer=None) -> dict:
    """Load a :func:`save_checkpoint` file into ``model`` (and ``optimizer``), in place.

    Returns ``{"step": int, "history": TrainHistory or None}``. The file is read with
    ``weights_only=True``. A checkpoint of a different architecture fails with an
    error naming the mismatching parameters (torch's strict ``load_state_dict``).
    """
    path = _check_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint at {str(path)!r}.")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None; "
                        f"got {type(optimizer).__name__}.")
    state = _read_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != "companion-checkpoint-1":
        raise ValueError(f"path: {str(path)!r} is not a companion checkpoint "
                         f"(write one with save_checkpoint).")
    missing = [k for k in ("model", "optimizer", "step", "history") if k not in state]
    if missing:
        raise ValueError(f"path: the checkpoint {str(path)!r} lacks {missing}; it is damaged "
                         f"or was not written by save_checkpoint.")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"the checkpoint does not fit this model: {str(path)!r} was saved "
                         f"from another model (other sizes or kind); build the model it was "
                         f"saved from, or start afresh. torch reports: {detail}") from err
    if optimizer is not None:
        if state["optimizer"] is None:
            raise ValueError("the checkpoint holds no optimizer state; pass optimizer=None.")
        saved = state.get("optimizer_class")
        if saved is not None and saved != type(optimizer).__name__:
            raise ValueError(f"optimizer: the checkpoint {str(path)!r} holds the state of "
                             f"a(n) {saved} optimizer; got a {type(optimizer).__name__}. Build the "
                             f"same optimizer as when it was saved (train(optimizer=...)).")
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise ValueError(f"optimizer: the checkpoint {str(path)!r} holds an optimizer state "
                             f"that does not fit this optimizer ({err}). Was it saved for "
                             f"another model or another optimizer?") from err
    try:
        hist = TrainHistory(**state["history"]) if state["history"] is not None else None
    except TypeError as err:
        raise ValueError(f"path: the history stored in {str(path)!r} is not a TrainHistory "
                         f"({err}).") from err
    return {"step": int(state["step"]), "history": hist}


def _progress_bar(progress, steps):
    """A tqdm.auto bar, or None: explicit ``progress`` wins; None means long runs only."""
    if progress is None:
        progress = steps >= PROGRESS_MIN_STEPS
    elif not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None; got {progress!r}.")
    if not progress or os.environ.get("COMPANION_PROGRESS", "1") == "0":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="training", leave=False)


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
    progress: bool | None = None,
    checkpoint=None,
    checkpoint_every: int = 0,
    resume=None,
) -> TrainHistory:
    """Train ``model`` for ``steps`` optimiser steps and return the :class:`TrainHistory`.

    Parameters
    ----------
    model : a ``torch.nn.Module`` with parameters.
    batch_fn : ``batch_fn(step) -> batch``, any object ``loss_fn`` understands. Make
        it deterministic (e.g. seed a generator once, outside) for reproducible runs.
    loss_fn : ``loss_fn(model, batch) -> scalar tensor``.
    steps : int >= 1.
    lr : learning rate > 0.
    optimizer : ``"adam"`` or ``"sgd"`` (plain, no momentum).
    clip_norm, clip_value : optional clipping (at most one), see :func:`clip_gradients`.
    allow_nonfinite : record NaN/inf steps instead of raising (to show an explosion).
    print_every : print the loss every so many steps (0, the default: silent).
    progress : show a ``tqdm.auto`` progress bar; None (default) shows one for runs of
        at least :data:`PROGRESS_MIN_STEPS` steps. ``COMPANION_PROGRESS=0`` in the
        environment turns every bar off (set by ``make execute`` and ``make test``).
    checkpoint, checkpoint_every : save a checkpoint to the path ``checkpoint`` every
        ``checkpoint_every`` steps and after the last step (``checkpoint_every=0``: only
        after the last step).
    resume : a checkpoint path to continue from: model, optimiser, step and history are
        restored and training runs the remaining ``steps - step`` steps.

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
    lr = check_real("lr", lr, low=0.0, low_open=True)
    clip_norm, clip_value = _check_clip_pair(clip_norm, clip_value)
    print_every = check_positive_int("print_every", print_every, minimum=0)
    if not isinstance(allow_nonfinite, bool):
        raise TypeError(f"allow_nonfinite must be True or False; got {allow_nonfinite!r}.")
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be 'adam' or 'sgd' (a name); got "
                        f"{type(optimizer).__name__}. train builds the optimiser itself.")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}.")

    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every, minimum=0)
    if checkpoint is not None:
        checkpoint = _check_save_path("checkpoint", checkpoint)  # before training, not after
    elif checkpoint_every:
        raise ValueError("checkpoint_every needs checkpoint=path (where to save).")

    hist, start = TrainHistory(), 0
    if resume is not None:
        resume = _check_path("resume", resume)
        if not resume.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(resume)!r}.")
        restored = load_checkpoint(resume, model, opt)
        start, hist = restored["step"], restored["history"] or TrainHistory()
        if start > steps:
            raise ValueError(f"resume: the checkpoint is at step {start}, past steps={steps}; "
                             f"ask for more steps to continue training.")
    bar = _progress_bar(progress, steps)
    if bar is not None:
        bar.update(start)
    model.train()
    try:
        _train_loop(model, batch_fn, loss_fn, opt, params, hist, range(start, steps),
                    clip_norm=clip_norm, clip_value=clip_value, allow_nonfinite=allow_nonfinite,
                    print_every=print_every, bar=bar, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every)
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, opt, step=steps, history=hist)
    return hist


def _train_loop(model, batch_fn, loss_fn, opt, params, hist, step_range, *, clip_norm,
                clip_value, allow_nonfinite, print_every, bar, checkpoint, checkpoint_every):
    for step in step_range:
        if bar is not None:
            bar.update(1)
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
        if checkpoint_every and (step + 1) % checkpoint_every == 0:
            save_checkpoint(checkpoint, model, opt, step=step + 1, history=hist)
