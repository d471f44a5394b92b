"""Batched ensembles: train many copies of one small recurrent model as ONE model.

A sweep trains the same configuration many times: every seed, every learning rate.
Each run is tiny (a 32-unit cell), so on a CPU its time goes into Python and
per-operation overhead, not arithmetic. :class:`Ensemble` stacks the weights of ``M``
such models along a leading *member* axis and runs them together with batched matrix
products (``torch.baddbmm``, ``torch.einsum``): one Python loop over time for all
members instead of ``M`` loops. Members never interact: member ``m``'s output depends
only on member ``m``'s weights and inputs, and the summed loss gives each member
exactly the gradient of its own loss.

Cells (weights in torch's layout, gate order as ``torch.nn``):

``"rnn"``
    tanh cell, torch's default initialisation U(-1/sqrt(H), 1/sqrt(H)).
``"irnn"``
    ReLU cell with the recurrent matrix set to the identity and both biases to
    zero (Le et al., 2015); input and read-out weights as ``"rnn"``.
``"lstm"``
    forget-gate bias: ``gate_bias`` (default 1) added to ``bias_ih``.
``"gru"``
    update-gate bias: ``gate_bias`` added to ``bias_ih``, the *matched*
    counterpart of the LSTM's forget bias. Torch's GRU computes
    ``h = (1 - z) * n + z * h_prev``, so ``z`` is the fraction of the old state
    kept, as ``f`` is in the LSTM's ``c = f * c_prev + i * g``. With the same
    +1 on both, each cell starts out keeping about ``sigmoid(1) = 0.73`` of its
    previous (cell) state per step.

Initialisation: member ``m`` seeded ``s`` gets exactly the weights of
:func:`reference_model` ``(kind, ..., seed=s)``, a single
``companion.nn.layers.SequenceModel(impl="torch")`` built after
``torch.manual_seed(s)`` (for ``"irnn"``, the ``"rnn"`` model with its recurrent
weights replaced as above). A member therefore matches the single model trained alone
with the same seed, learning rate and data (``tests/test_ensemble.py`` checks outputs,
gradients and parameters after several Adam steps in float64).

Training (:func:`train_ensemble`): Adam with one learning rate per member
(:class:`BatchedAdam`, the same arithmetic as ``torch.optim.Adam``), gradient clipping
by each member's *own* global norm (as ``torch.nn.utils.clip_grad_norm_`` applied to
that member alone; ``inf`` means no clipping), and per-member divergence: a member
whose loss or gradient becomes NaN/inf is marked diverged at that step and frozen (its
gradient is zeroed and it takes no more updates), while the others carry on.

Engines: ``Ensemble(..., engine="autograd")`` (the default) runs the recurrence as the
Python loop of tensor operations in :meth:`Ensemble.forward`, differentiated by autograd;
every stored sweep in ``companion/data/results`` was computed with it.
``engine="fused"`` runs the same function through :func:`companion.nn.fused.fused_sequence`,
whose backward pass is written by hand (fewer, larger kernels; faster to train).
The two agree to rounding (``tests/test_fused.py``: outputs, losses, every gradient and
the parameters after Adam steps with clipping and a diverging member, to about 1e-12 in
float64), not bit for bit, so a sweep regenerated with the fused engine reproduces the
stored numbers only up to float32 rounding.

Data: the forward pass takes either one batch shared by all members, ``(N, T, D)``,
or one batch per member, ``(M, N, T, D)``. The sweeps in ``experiments/`` give each
*seed* its own data stream, shared by the members of that seed (one per learning rate),
so that a member seeded ``s`` sees exactly what the single run seeded ``s`` would see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from companion.checks import (
    check_callable,
    check_nonempty,
    check_positive_int,
    check_real,
    check_tensor,
)
from companion.nn.fused import fused_sequence

__all__ = ["ENGINES", "ENSEMBLE_KINDS", "BatchedAdam", "Ensemble", "EnsembleHistory", "check_member_inputs",
           "clip_per_member",
           "reference_model", "train_batched", "train_ensemble"]

#: The engines that can run an ensemble's recurrence. ``"autograd"`` is a Python loop of
#: tensor operations differentiated by autograd (the default, used by every stored sweep);
#: ``"fused"`` is :mod:`companion.nn.fused`, the same function with a hand-written backward.
ENGINES = ("autograd", "fused")

#: The cells an ensemble can hold, and their number of stacked gate blocks.
ENSEMBLE_KINDS = {"rnn": 1, "irnn": 1, "lstm": 4, "gru": 3}


def _check_kind(kind):
    if not isinstance(kind, str) or kind not in ENSEMBLE_KINDS:
        raise ValueError(f"kind must be one of {sorted(ENSEMBLE_KINDS)}; got {kind!r}.")
    return kind


def reference_model(kind: str, input_size: int, hidden_size: int, output_size: int, *,
                    seed: int, gate_bias: float = 1.0, dtype=torch.float32) -> nn.Module:
    """The single model that ensemble member seeded ``seed`` copies, built alone.

    A ``SequenceModel(kind, D, H, K, impl="torch")`` created right after
    ``torch.manual_seed(seed)``, then: LSTM forget-gate block of ``bias_ih`` +=
    ``gate_bias``; GRU update-gate block (``z``, block 1 of r, z, n) += ``gate_bias``;
    IRNN: the tanh RNN's ``torch.nn.RNN`` is replaced by a ReLU one with the same
    input weights, ``weight_hh = I`` and zero biases. Training it with
    ``torch.optim.Adam`` and ``clip_grad_norm_`` is what one ensemble member does.
    """
    from companion.nn.layers import SequenceModel

    _check_kind(kind)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int; got {type(seed).__name__} {seed!r}.")
    check_positive_int("input_size", input_size)
    H = check_positive_int("hidden_size", hidden_size)
    check_positive_int("output_size", output_size)
    gate_bias = check_real("gate_bias", gate_bias)
    _check_dtype(dtype)
    torch.manual_seed(int(seed))
    base = "rnn" if kind == "irnn" else kind
    model = SequenceModel(base, input_size, H, output_size, impl="torch",
                          forget_bias=float(gate_bias) if kind == "lstm" else None)
    rec = model.recurrent
    with torch.no_grad():
        if kind == "gru":
            rec.bias_ih_l0[H:2 * H] += float(gate_bias)  # order r, z, n: z is block 1
        if kind == "irnn":
            relu = nn.RNN(input_size, H, nonlinearity="relu", batch_first=True)
            relu.weight_ih_l0.copy_(rec.weight_ih_l0)
            relu.weight_hh_l0.copy_(torch.eye(H))
            relu.bias_ih_l0.zero_()
            relu.bias_hh_l0.zero_()
            model.recurrent = relu
            model.kind = "irnn"
    return model.to(dtype)


def _check_dtype(dtype):
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}.")
    return dtype


def check_member_inputs(x, *, members: int, input_size: int, dtype, owner: str,
                        name: str = "x") -> None:
    """Check the input of a model of ``members`` batched members: a finite tensor of
    ``dtype``, (N, T, D) shared by every member or (M, N, T, D) one batch per member,
    N >= 1 and T >= 1.

    Raises ``TypeError`` / ``ValueError`` naming what was expected and the likely fix
    (time-first input, float64 into a float32 model, NaN in the data); ``owner`` names
    the model in the message ("ensemble", "model").
    """
    if not isinstance(x, torch.Tensor):
        how = (f"torch.as_tensor({name}, dtype=torch.{str(dtype)[6:]})"
               if isinstance(x, (np.ndarray, list, tuple)) else "torch.as_tensor(...)")
        raise TypeError(f"{name} must be a torch tensor (N, T, D={input_size}); got "
                        f"{type(x).__name__}. Convert with {how}.")
    if x.dtype != dtype:
        extra = (" Token ids? One-hot encode them first." if not x.is_floating_point()
                 else " NumPy data is float64: convert it once, or the model with "
                      f"model.to({x.dtype}).")
        raise TypeError(f"{name} must have the {owner}'s dtype {dtype}; got "
                        f"{x.dtype}. Use {name}.to({dtype}).{extra}")
    M, D = members, input_size
    ok = ((x.dim() == 3 and x.shape[2] == D)
          or (x.dim() == 4 and x.shape[0] == M and x.shape[3] == D))
    if not ok:
        hint = ""
        if x.dim() == 2:
            hint = f" A single sequence? Use {name}[None]."
        elif x.dim() in (3, 4) and x.shape[-1] != D:
            hint = (f" The last axis holds the D={D} features; got {x.shape[-1]}. Is the "
                    f"input_size right?")
        raise ValueError(
            f"{name} must be (N, T, D={D}) shared by all members or (M={M}, N, T, D={D}) one "
            f"batch per member, batch-first; got {tuple(x.shape)}.{hint}")
    spec = ("N", "T", "D") if x.dim() == 3 else ("M", "N", "T", "D")
    if x.shape[-2] == 0:
        raise ValueError(f"{name} must have at least one time step; got T=0 (shape "
                         f"{tuple(x.shape)}).")
    check_nonempty(name, x, spec, hint="An empty batch has nothing to compute.")
    check_tensor(name, x, spec, dtype=dtype, finite=True)


class Ensemble(nn.Module):
    """``M`` independent one-layer recurrent models with a linear read-out of the last state.

    Parameters
    ----------
    kind : ``"rnn"``, ``"irnn"``, ``"lstm"`` or ``"gru"`` (see the module docstring).
    input_size, hidden_size, output_size : D, H, K.
    seeds : one non-negative int per member (repeats allowed: the same seed at several
        learning rates gives identical starting weights).
    gate_bias : the LSTM forget-gate / GRU update-gate bias offset (default 1.0).
    dtype : ``torch.float32`` (default) or ``torch.float64``.
    engine : ``"autograd"`` (default; the stored sweeps use it) or ``"fused"`` (the same
        function with a hand-written backward pass, :mod:`companion.nn.fused`).

    Notes
    -----
    Parameters are ``weight_ih (M, G*H, D)``, ``weight_hh (M, G*H, H)``,
    ``bias_ih, bias_hh (M, G*H)``, ``readout_weight (M, K, H)``, ``readout_bias (M, K)``.
    ``forward(x)`` takes ``x`` (N, T, D) shared by all members or (M, N, T, D) one batch
    per member, and returns (M, N, K); with ``return_states=True`` also the list of the
    T hidden states, each (M, N, H) (used to measure ``dL/dh_t``).

    Examples
    --------
    >>> ens = Ensemble("lstm", 2, 8, 1, seeds=[0, 1, 2])
    >>> tuple(ens(torch.zeros(5, 10, 2)).shape)
    (3, 5, 1)
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int, *,
                 seeds, gate_bias: float = 1.0, dtype=torch.float32, engine: str = "autograd"):
        super().__init__()
        self.kind = _check_kind(kind)
        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}; got {engine!r}.")
        self.engine = engine
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
            seeds = None
        seeds = list(seeds) if seeds is not None else None
        if not seeds:
            raise ValueError("seeds must be a non-empty list of ints, one per member; "
                             "e.g. seeds=[0, 1, 2, 3, 4].")
        self.seeds = [check_positive_int(f"seeds[{i}]", s, minimum=0)
                      for i, s in enumerate(seeds)]
        _check_dtype(dtype)
        self.gate_bias = check_real("gate_bias", gate_bias)
        refs = [reference_model(kind, input_size, hidden_size, output_size, seed=s,
                                gate_bias=gate_bias, dtype=dtype) for s in self.seeds]

        def stack(get):
            return nn.Parameter(torch.stack([get(r).detach().clone() for r in refs]))

        self.weight_ih = stack(lambda r: r.recurrent.weight_ih_l0)
        self.weight_hh = stack(lambda r: r.recurrent.weight_hh_l0)
        self.bias_ih = stack(lambda r: r.recurrent.bias_ih_l0)
        self.bias_hh = stack(lambda r: r.recurrent.bias_hh_l0)
        self.readout_weight = stack(lambda r: r.readout.weight)
        self.readout_bias = stack(lambda r: r.readout.bias)

    @property
    def members(self) -> int:
        return len(self.seeds)

    def extra_repr(self) -> str:
        return (f"kind={self.kind!r}, members={self.members}, input_size={self.input_size}, "
                f"hidden_size={self.hidden_size}, output_size={self.output_size}")

    def parameter_count(self) -> int:
        """Trainable parameters of ONE member (what a single model would have)."""
        return sum(p[0].numel() for p in self.parameters())

    def member_model(self, m: int) -> nn.Module:
        """A single ``torch.nn`` model holding member ``m``'s current weights (a copy)."""
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"m must be a member index, an int in [0, {self.members}); got "
                            f"{type(m).__name__} {m!r}.")
        if not 0 <= m < self.members:
            raise ValueError(f"m must be a member index in [0, {self.members}); got {m!r}.")
        model = reference_model(self.kind, self.input_size, self.hidden_size, self.output_size,
                                seed=self.seeds[m], gate_bias=self.gate_bias,
                                dtype=self.weight_ih.dtype)
        rec = model.recurrent
        with torch.no_grad():
            rec.weight_ih_l0.copy_(self.weight_ih[m])
            rec.weight_hh_l0.copy_(self.weight_hh[m])
            rec.bias_ih_l0.copy_(self.bias_ih[m])
            rec.bias_hh_l0.copy_(self.bias_hh[m])
            model.readout.weight.copy_(self.readout_weight[m])
            model.readout.bias.copy_(self.readout_bias[m])
        return model

    def _check_x(self, x):
        check_member_inputs(x, members=self.members, input_size=self.input_size,
                            dtype=self.weight_ih.dtype, owner="ensemble")

    def _check_state(self, name, s, x):
        if s is None:
            return
        shape = (self.members, x.shape[-3], self.hidden_size)
        if not isinstance(s, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape {shape} (M, N, H); got "
                            f"{type(s).__name__}. Convert with torch.as_tensor({name}, "
                            f"dtype={self.weight_ih.dtype}).")
        if s.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name} must have the ensemble's dtype {self.weight_ih.dtype}; got "
                            f"{s.dtype}. Use {name}.to({self.weight_ih.dtype}).")
        if tuple(s.shape) != shape:
            hint = (" One state per member: stack the members' states on a leading axis."
                    if s.dim() == 2 else "")
            raise ValueError(f"{name} must be (M, N, H) = {shape}; got {tuple(s.shape)}.{hint}")
        check_tensor(name, s, ("M", "N", "H"), dtype=self.weight_ih.dtype, finite=True)

    def forward(self, x: torch.Tensor, *, return_states: bool = False, h0=None, c0=None):
        """Outputs (M, N, K) for ``x`` (N, T, D) or (M, N, T, D); see the class docstring.

        ``h0`` (and, for the LSTM, ``c0``): optional initial states (M, N, H); zeros
        if omitted. ``return_states`` always runs the autograd engine (the state
        gradients it exists for need one graph node per step).
        """
        self._check_x(x)
        if not isinstance(return_states, bool):
            raise TypeError(f"return_states must be True or False; got {return_states!r}.")
        for state in (h0, c0):  # the states fix N: blame x, not h0, for time-first input
            if (isinstance(state, torch.Tensor) and state.dim() == 3
                    and state.shape[1] != x.shape[-3] and state.shape[1] == x.shape[-2]):
                raise ValueError(
                    f"x must be batch-first, (N={state.shape[1]}, T, D) as the initial state "
                    f"says; got {tuple(x.shape)}. Time-first input? This course is "
                    f"batch-first: use x.transpose({x.dim() - 3}, {x.dim() - 2}).")
        self._check_state("h0", h0, x)
        self._check_state("c0", c0, x)
        if c0 is not None and self.kind != "lstm":
            raise ValueError(f"c0 applies to kind='lstm' only; this ensemble is {self.kind!r}.")
        H = self.hidden_size
        if self.engine == "fused" and not return_states:
            h = fused_sequence(self.kind, x, self.weight_ih, self.weight_hh, self.bias_ih,
                               self.bias_hh, h0, c0)
            return torch.baddbmm(self.readout_bias[:, None, :], h,
                                 self.readout_weight.transpose(1, 2))
        # input terms of every step at once, time-major: (T, M, N, GH). unbind (not
        # indexing) splits them, so the backward pass stacks T slices instead of
        # adding T full-size zero-padded gradients (which costs O(T^2)).
        if x.dim() == 3:  # shared batch: (N, T, D) x (M, GH, D)
            gi = torch.einsum("ntd,mgd->tmng", x, self.weight_ih)
        else:
            gi = torch.einsum("mntd,mgd->tmng", x, self.weight_ih)
        gi = gi + self.bias_ih[None, :, None, :]
        T, M, N = gi.shape[:3]
        w_hh_t = self.weight_hh.transpose(1, 2)  # (M, H, GH)
        b_hh = self.bias_hh[:, None, :]  # (M, 1, GH)
        h = gi.new_zeros(M, N, H) if h0 is None else h0
        c = (gi.new_zeros(M, N, H) if c0 is None else c0) if self.kind == "lstm" else None
        states = []
        for a in gi.unbind(0):  # a: (M, N, GH), the input terms of one step
            gh = torch.baddbmm(b_hh, h, w_hh_t)  # (M, N, GH)
            if self.kind == "rnn":
                h = torch.tanh(a + gh)
            elif self.kind == "irnn":
                h = torch.relu(a + gh)
            elif self.kind == "lstm":
                g = a + gh
                sig = torch.sigmoid(g[..., :2 * H])  # i, f
                c = sig[..., H:] * c + sig[..., :H] * torch.tanh(g[..., 2 * H:3 * H])
                h = torch.sigmoid(g[..., 3 * H:]) * torch.tanh(c)
            else:  # gru, torch's form: reset gate applied after the product
                rz = torch.sigmoid(a[..., :2 * H] + gh[..., :2 * H])
                n = torch.tanh(a[..., 2 * H:] + rz[..., :H] * gh[..., 2 * H:])
                z = rz[..., H:]
                h = (1.0 - z) * n + z * h
            if return_states:
                states.append(h)
        out = torch.baddbmm(self.readout_bias[:, None, :], h, self.readout_weight.transpose(1, 2))
        return (out, states) if return_states else out  # (M, N, K)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, chunk: int = 256) -> torch.Tensor:
        """``forward`` without gradients, over chunks of ``chunk`` sequences (saves memory)."""
        self._check_x(x)
        chunk = check_positive_int("chunk", chunk)
        n_axis = 0 if x.dim() == 3 else 1
        parts = [self(part) for part in torch.split(x, chunk, dim=n_axis)]
        return torch.cat(parts, dim=1)


def _member_vector(name, value, M, *, allow_inf=False, dtype=torch.float64):
    what = f"a positive number or one per member ({M},)"
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be {what}; got {type(value).__name__} {value!r}.")
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be {what}; got {type(value).__name__} {value!r} "
                        f"(not numbers).") from err
    if np.asarray(value).dtype.kind == "b":
        raise TypeError(f"{name} must be {what}; got booleans {value!r}.")
    arr = np.broadcast_to(np.asarray(value, dtype=float), (M,)) if np.ndim(value) == 0 else (
        np.asarray(value, dtype=float))
    if arr.shape != (M,):
        raise ValueError(f"{name} must be a number or one value per member ({M},); "
                         f"got shape {arr.shape}.")
    bad = ~(arr > 0) | (np.isinf(arr) & (not allow_inf)) | np.isnan(arr)
    if bad.any():
        raise ValueError(f"{name} must be positive{' (inf allowed)' if allow_inf else ' and finite'};"
                         f" got {arr[bad][0]!r} for member {int(np.flatnonzero(bad)[0])}.")
    return torch.as_tensor(arr.copy(), dtype=dtype)


def _per_member_sq_norm(g: torch.Tensor) -> torch.Tensor:
    return (g.reshape(g.shape[0], -1) ** 2).sum(dim=1)


def clip_per_member(params, max_norm) -> torch.Tensor:
    """Clip each member's gradient by its OWN global norm, in place; return the norms (M,).

    Member ``m``'s gradient (its slice ``p.grad[m]`` of every parameter, as one vector)
    is scaled by ``min(1, max_norm[m] / (norm_m + 1e-6))``: exactly what
    ``torch.nn.utils.clip_grad_norm_(member_m_parameters, max_norm[m])`` does to that
    member alone. ``max_norm`` is a number or one per member; ``inf`` leaves a member
    unclipped. The norms returned are those before clipping (NaN/inf for a member whose
    gradient is not finite; its gradient is left unchanged).
    """
    if isinstance(params, nn.Module):
        raise TypeError(f"params must be an iterable of parameters; got the module "
                        f"{type(params).__name__}. Pass model.parameters().")
    if isinstance(params, torch.Tensor):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch tensor (a parameter); got "
                            f"{type(p).__name__}.")
    params = [p for p in params if p.grad is not None]
    if not params:
        raise ValueError("no parameter has a gradient: call loss.backward() first.")
    if any(p.dim() == 0 or p.shape[0] != params[0].shape[0] for p in params):
        raise ValueError("params must all carry the same leading member axis M; got shapes "
                         f"{[tuple(p.shape) for p in params]}.")
    M = params[0].shape[0]
    norms = torch.sqrt(sum(_per_member_sq_norm(p.grad) for p in params))  # (M,)
    limit = _member_vector("max_norm", max_norm, M, allow_inf=True, dtype=norms.dtype)
    coef = torch.clamp(limit / (norms + 1e-6), max=1.0)
    coef = torch.where(torch.isfinite(norms), coef, torch.ones_like(coef))
    for p in params:
        p.grad.mul_(coef.view(-1, *([1] * (p.dim() - 1))).to(p.grad.dtype))
    return norms


def _check_params(params) -> list:
    if isinstance(params, nn.Module):
        raise TypeError(f"params must be an iterable of parameters; got the module "
                        f"{type(params).__name__}. Pass model.parameters().")
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of parameters; got one tensor. Pass "
                        "[tensor] or model.parameters().")
    try:
        out = list(params)
    except TypeError as err:
        raise TypeError(f"params must be an iterable of parameters such as "
                        f"model.parameters(); got {type(params).__name__}.") from err
    if not out:
        raise ValueError("params is empty: nothing to optimise.")
    for i, p in enumerate(out):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch tensor (a parameter); got "
                            f"{type(p).__name__}.")
    return out


def _check_betas(betas) -> tuple:
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), e.g. "
                        f"(0.9, 0.999); got {type(betas).__name__} {betas!r}.")
    b1 = check_real("betas[0]", betas[0], low=0.0, high=1.0, high_open=True,
                    hint="Adam's default is betas=(0.9, 0.999).")
    b2 = check_real("betas[1]", betas[1], low=0.0, high=1.0, high_open=True,
                    hint="Adam's default is betas=(0.9, 0.999).")
    return b1, b2


def _check_active(active, M) -> None:
    if not isinstance(active, torch.Tensor) or active.dtype != torch.bool \
            or tuple(active.shape) != (M,):
        got = (f"{active.dtype} tensor of shape {tuple(active.shape)}"
               if isinstance(active, torch.Tensor) else type(active).__name__)
        raise TypeError(f"active must be a torch.bool tensor of shape ({M},), one flag per "
                        f"member; got {got}.")


class BatchedAdam:
    """Adam with one learning rate per ensemble member (the arithmetic of ``torch.optim.Adam``).

    ``params``: tensors whose leading axis is the member axis (M). ``lr``: a number or
    one positive value per member. ``step(active)`` updates the members where ``active``
    (a bool tensor (M,), default all) is true; the others keep their weights and their
    moment estimates do not move (their gradient is treated as zero).
    """

    def __init__(self, params, lr, *, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = _check_params(params)
        M = self.params[0].shape[0]
        if any(p.dim() == 0 or p.shape[0] != M for p in self.params):
            raise ValueError("every parameter must have the same leading member axis M; got "
                             f"shapes {[tuple(p.shape) for p in self.params]}.")
        self.lr = _member_vector("lr", lr, M)
        self.beta1, self.beta2 = _check_betas(betas)
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        self.t = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        if active is not None:
            _check_active(active, self.lr.shape[0])
        self.t += 1
        bc1 = 1.0 - self.beta1 ** self.t
        bc2_sqrt = math.sqrt(1.0 - self.beta2 ** self.t)
        step_size = self.lr / bc1  # (M,) float64
        if active is not None:
            step_size = torch.where(active, step_size, torch.zeros_like(step_size))
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            g = p.grad
            if active is not None:
                g = torch.where(active.view(shape), g, torch.zeros_like(g))
            m.lerp_(g, 1.0 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            p.sub_(step_size.to(p.dtype).view(shape) * (m / denom))


class _FlatBatchedAdam:
    """:class:`BatchedAdam` and :func:`clip_per_member` on ONE flat (M, P) view of all the
    gradients: a dozen operations per step instead of a dozen per parameter. The same
    element-wise arithmetic; the clipping norm is summed in another order (rounding only).
    Used by :func:`train_batched` for ``engine="fused"``; every parameter must receive a
    gradient at every step."""

    def __init__(self, params, lr, *, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = _check_params(params)
        M = self.params[0].shape[0]
        self.M = M
        self.lr = _member_vector("lr", lr, M)
        self.beta1, self.beta2 = _check_betas(betas)
        self.eps = check_real("eps", eps, low=0.0, low_open=True)
        self.t = 0
        sizes = [p[0].numel() for p in self.params]
        self.slices = np.cumsum([0] + sizes)
        dtype = self.params[0].dtype
        self.exp_avg = torch.zeros(M, int(self.slices[-1]), dtype=dtype)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def gradients(self) -> torch.Tensor:
        missing = [i for i, p in enumerate(self.params) if p.grad is None]
        if missing:
            raise ValueError(f"parameter {missing[0]} received no gradient; the fused update "
                             f"needs one for every parameter.")
        return torch.cat([p.grad.reshape(self.M, -1) for p in self.params], dim=1)

    @torch.no_grad()
    def clip_(self, g: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
        norms = torch.sqrt((g * g).sum(dim=1))
        coef = torch.clamp(limit.to(norms.dtype) / (norms + 1e-6), max=1.0)
        coef = torch.where(torch.isfinite(norms), coef, torch.ones_like(coef))
        g.mul_(coef[:, None])
        return norms

    @torch.no_grad()
    def step(self, g: torch.Tensor, active: torch.Tensor) -> None:
        self.t += 1
        bc1 = 1.0 - self.beta1 ** self.t
        bc2_sqrt = math.sqrt(1.0 - self.beta2 ** self.t)
        step_size = torch.where(active, self.lr / bc1, torch.zeros_like(self.lr))
        if not bool(active.all()):
            g = torch.where(active[:, None], g, torch.zeros_like(g))
        m, v = self.exp_avg, self.exp_avg_sq
        m.lerp_(g, 1.0 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
        update = step_size.to(g.dtype)[:, None] * (m / denom)
        for p, a, b in zip(self.params, self.slices[:-1], self.slices[1:]):
            p.sub_(update[:, a:b].view(p.shape))


@dataclass
class EnsembleHistory:
    """What :func:`train_ensemble` records: arrays with one column per member."""

    loss: np.ndarray  #: (steps, M) training loss of each member (NaN after divergence)
    grad_norm: np.ndarray  #: (steps, M) each member's global gradient norm before clipping
    diverged: np.ndarray  #: (M,) bool
    diverged_step: np.ndarray  #: (M,) int, -1 if never


def train_ensemble(ens: Ensemble, batch_fn, loss_fn, *, steps: int, lr, clip_norm=math.inf,
                   betas=(0.9, 0.999), eps: float = 1e-8) -> EnsembleHistory:
    """Train every member of ``ens`` for ``steps`` Adam steps, each at its own learning rate.

    Parameters
    ----------
    batch_fn : ``batch_fn(step) -> (x, y)``; ``x`` as :meth:`Ensemble.forward` accepts.
    loss_fn : ``loss_fn(outputs, y) -> (M,)`` tensor, each member's mean loss over its batch.
    lr : a number or one per member.  clip_norm : a number or one per member (``inf``:
        no clipping), applied to each member's own global norm (:func:`clip_per_member`).

    A member whose loss or gradient norm is not finite is marked diverged at that step
    and frozen; the others are unaffected. With ``ens.engine == "fused"`` the clipping and
    the Adam update run on one flat view of all the gradients (the same arithmetic, with
    the clipping norm summed in another order).
    """
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be a companion.nn.ensemble.Ensemble; got {type(ens).__name__}.")
    return _train_batched(ens, batch_fn, loss_fn, steps=steps, lr=lr, clip_norm=clip_norm,
                         betas=betas, eps=eps)


def train_batched(model: nn.Module, batch_fn, loss_fn, *, steps: int, lr,
                  clip_norm=math.inf, betas=(0.9, 0.999), eps: float = 1e-8) -> EnsembleHistory:
    """The loop of :func:`train_ensemble` for any model of ``model.members`` members whose
    parameters all carry the members axis first (an :class:`Ensemble`, chapter 12's
    ``LRUNetwork``): ``loss_fn(model(x), y)`` gives each member's loss, (M,)."""
    if not isinstance(model, nn.Module) or not hasattr(model, "members"):
        raise TypeError(f"model must be a batched torch model with a members attribute (an "
                        f"Ensemble, an LRUNetwork); got {type(model).__name__}.")
    return _train_batched(model, batch_fn, loss_fn, steps=steps, lr=lr, clip_norm=clip_norm,
                          betas=betas, eps=eps)


def _train_batched(model, batch_fn, loss_fn, *, steps, lr, clip_norm, betas, eps):
    check_callable("batch_fn", batch_fn, "batch_fn(step) -> (x, y)")
    check_callable("loss_fn", loss_fn, "loss_fn(outputs, y) -> (M,) tensor")
    steps = check_positive_int("steps", steps)
    M = model.members
    params = list(model.parameters())
    flat = getattr(model, "engine", "autograd") == "fused"
    opt = (_FlatBatchedAdam if flat else BatchedAdam)(params, lr, betas=betas, eps=eps)
    clip = _member_vector("clip_norm", clip_norm, M, allow_inf=True)
    active = torch.ones(M, dtype=torch.bool)
    losses = np.full((steps, M), np.nan)
    norms = np.full((steps, M), np.nan)
    div_step = np.full(M, -1)
    for step in range(steps):
        x, y = batch_fn(step)
        opt.zero_grad()
        member_loss = loss_fn(model(x), y)
        if not isinstance(member_loss, torch.Tensor) or member_loss.shape != (M,):
            raise ValueError(f"loss_fn must return one loss per member, shape ({M},); got "
                             f"{getattr(member_loss, 'shape', type(member_loss).__name__)}.")
        finite_loss = torch.isfinite(member_loss.detach())
        # a non-finite member's loss is left out of the sum: its graph stays unused
        total = torch.where(finite_loss & active, member_loss, torch.zeros_like(member_loss))
        total.sum().backward()
        if flat:
            g = opt.gradients()
            gnorm = opt.clip_(g, clip)
        else:
            gnorm = clip_per_member(params, clip)
        ok = finite_loss & torch.isfinite(gnorm)
        newly = active & ~ok
        if newly.any():
            div_step[newly.numpy()] = step
            active = active & ok
        losses[step] = np.where(active.numpy(), member_loss.detach().double().numpy(), np.nan)
        norms[step] = np.where(active.numpy(), gnorm.detach().double().numpy(), np.nan)
        if flat:
            opt.step(g, active)
        else:
            opt.step(active)
    return EnsembleHistory(loss=losses, grad_norm=norms, diverged=div_step >= 0,
                           diverged_step=div_step)


def state_gradient_norms(ens: Ensemble, x: torch.Tensor, per_sequence_loss) -> np.ndarray:
    """``||dL_n / dh_t||`` for every member, sequence and step: array (M, N, T).

    ``per_sequence_loss(outputs) -> (M, N)`` gives each sequence's own loss; since
    sequence ``n``'s states affect only its own loss, the gradient of the sum with
    respect to ``h_t`` is, row by row, the gradient of that sequence's loss.
    The distance of state index ``t`` (0-based) from the loss is ``d = T - 1 - t``:
    the last state, which the read-out reads directly, is at distance 0.
    """
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be a companion.nn.ensemble.Ensemble; got {type(ens).__name__}.")
    check_callable("per_sequence_loss", per_sequence_loss, "per_sequence_loss(outputs) -> (M, N)")
    out, states = ens(x, return_states=True)
    loss = per_sequence_loss(out)
    if not isinstance(loss, torch.Tensor) or tuple(loss.shape) != tuple(out.shape[:2]):
        raise ValueError(f"per_sequence_loss must return one loss per member and sequence, "
                         f"shape {tuple(out.shape[:2])}; got "
                         f"{getattr(loss, 'shape', type(loss).__name__)}.")
    grads = torch.autograd.grad(loss.sum(), states)
    g = torch.stack([gr.detach() for gr in grads], dim=2)  # (M, N, T, H)
    return g.double().norm(dim=3).numpy()
