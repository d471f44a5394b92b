"""Layers that run a cell over a whole batch-first sequence, and a small task model.

:class:`Recurrent` is the loop that ``torch.nn.RNN/LSTM/GRU`` hide: it applies any
cell of :mod:`companion.nn.cells` at every step of an (N, T, D) batch, reusing the
same parameters, and returns every hidden state plus the final state.

:class:`SequenceModel` puts a linear read-out ``o = c + V h^{(T)}`` on the last
hidden state: the sequence-to-vector pattern that the adding and temporal-order
problems need. It can run the from-scratch cells (``impl="scratch"``, the default)
or ``torch.nn.RNN/LSTM/GRU`` (``impl="torch"``, a faster C++ loop computing the same
function; the parity tests in ``tests/test_cells.py`` check that the two agree),
which is what the long sweep in ``experiments/long_range_sweep.py`` uses.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import check_positive_int, check_real, check_tensor
from companion.nn.cells import _CELLS, _Cell, check_dtype_matches, make_cell

__all__ = ["Recurrent", "SequenceModel", "check_sequence_batch", "numpy_init_"]


def check_sequence_batch(name: str, x, input_size: int, dtype: torch.dtype | None = None) -> None:
    """Raise a clear error unless ``x`` is a float tensor of shape (N, T, input_size).

    With ``dtype`` (the model's parameter dtype), a float tensor of another dtype (a
    float64 batch made from NumPy data, fed to a float32 model) is refused with a
    ``TypeError`` that names both dtypes and the conversion.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch tensor; got {type(x).__name__}. "
            f"Convert with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must hold floats; got dtype {x.dtype}. Token ids? One-hot encode them "
            f"(torch.nn.functional.one_hot(...).float())."
        )
    if x.dim() != 3 or x.shape[2] != input_size:
        shape = tuple(x.shape)
        hint = ""
        if x.dim() == 2:
            hint = f" A single sequence? Use {name}[None]."
        elif x.dim() == 3:
            hint = (f" The last axis holds the features; is the model's input_size right, "
                    f"or are the axes permuted? (Time-first input is (T, N, D): use "
                    f"{name}.transpose(0, 1).)")
        raise ValueError(f"{name} must be (N, T, D={input_size}), batch-first; got {shape}.{hint}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step; got T=0.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must have at least one sequence (N >= 1); got shape "
                         f"{tuple(x.shape)}. An empty batch has nothing to compute.")
    if dtype is not None:
        check_dtype_matches(name, x, dtype)
    # cheap test first (one reduction): a NaN or inf anywhere makes the sum non-finite; an
    # overflowing sum of finite values only triggers the full check, which then passes
    if not math.isfinite(float(x.detach().sum())):
        check_tensor(name, x, ("N", "T", "D"), finite=True)


def numpy_init_(module: nn.Module, seed: int) -> nn.Module:
    """Redraw every parameter of ``module`` from NumPy, in place; returns ``module``.

    Each parameter is drawn uniformly from ``[-1/sqrt(H), 1/sqrt(H)]`` (torch's default
    for its recurrent layers, and for a ``Linear(H, K)`` read-out), ``H`` being the last
    axis of the parameter's weight matrix for a read-out and the hidden size otherwise,
    in the order of ``named_parameters()``, from ``np.random.default_rng(seed)``.

    Why: torch's CPU random generator can fill the same tensor with different last bits
    on different CPUs (vectorised and scalar kernels convert differently), so a run that
    starts from ``torch.manual_seed`` is not bit-identical across machines. NumPy's
    generator is, which is what a notebook whose printed numbers must reproduce needs.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be an int >= 0; got {type(seed).__name__} {seed!r}.")
    hidden = getattr(module, "hidden_size", None)
    rng = np.random.default_rng(int(seed))
    with torch.no_grad():
        for name, p in module.named_parameters():
            fan = hidden
            if fan is None or name.startswith("readout"):
                fan = p.shape[-1] if p.dim() > 1 else (hidden or p.shape[0])
            bound = 1.0 / math.sqrt(fan)
            p.copy_(torch.as_tensor(rng.uniform(-bound, bound, size=tuple(p.shape)),
                                    dtype=p.dtype))
    return module


class Recurrent(nn.Module):
    """Run ``cell`` over a batch-first sequence: the unfolded graph as a Python loop.

    Parameters
    ----------
    cell : a cell from :mod:`companion.nn.cells` (RNNCell, LSTMCell or GRUCell).

    Notes
    -----
    ``forward(x, state=None)`` takes ``x`` of shape (N, T, D) and returns
    ``(outputs, final_state)``: ``outputs`` is (N, T, H) with ``outputs[:, t-1]`` =
    :math:`h^{(t)}`, and ``final_state`` is ``h^{(T)}`` (N, H) or, for an LSTM, the
    pair ``(h^{(T)}, c^{(T)})``. Compare ``torch.nn.LSTM(batch_first=True)``, which
    returns the same outputs and the state with an extra leading layer axis.

    Examples
    --------
    >>> from companion.nn.cells import GRUCell
    >>> layer = Recurrent(GRUCell(2, 4))
    >>> out, h = layer(torch.zeros(3, 7, 2))
    >>> tuple(out.shape), tuple(h.shape)
    ((3, 7, 4), (3, 4))
    """

    def __init__(self, cell: _Cell):
        super().__init__()
        if not isinstance(cell, _Cell):
            raise TypeError(
                f"cell must be an RNNCell, LSTMCell or GRUCell from companion.nn.cells; "
                f"got {type(cell).__name__}. Build one with make_cell('lstm', D, H)."
            )
        self.cell = cell

    def forward(self, x: torch.Tensor, state=None):
        check_sequence_batch("x", x, self.cell.input_size, self.cell.weight_ih.dtype)
        N, T, _ = x.shape
        if state is None:
            state = self.cell.initial_state(N, dtype=x.dtype)
        else:
            first = state[0] if isinstance(state, (tuple, list)) and state else state
            if (isinstance(first, torch.Tensor) and first.dim() == 2 and first.shape[0] != N
                    and first.shape[0] == T):
                raise ValueError(
                    f"x must be batch-first, (N={first.shape[0]}, T, D) as the state says; "
                    f"got {tuple(x.shape)}. Time-first input? This course is batch-first: "
                    f"use x.transpose(0, 1).")
            self._check_state(state, x)
        outputs = []
        step = self.cell._step  # checked once above, not at every step
        for t in range(T):
            state = step(x[:, t], state)  # x[:, t] is (N, D)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs, dim=1), state  # (N, T, H)


    def _check_state(self, state, x):
        cell = self.cell
        N = x.shape[0]
        if cell.kind == "lstm":
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise TypeError("state must be the pair (h0, c0) for an LSTM layer; got "
                                f"{type(state).__name__}. Use cell.initial_state(N).")
            parts = (("state[0] (h0)", state[0]), ("state[1] (c0)", state[1]))
        else:
            if isinstance(state, (tuple, list)):
                raise TypeError(f"state must be one tensor (N, H) for a {cell.kind.upper()} "
                                f"layer; got a {type(state).__name__} of {len(state)}.")
            parts = (("state", state),)
        for name, s in parts:
            if not isinstance(s, torch.Tensor):
                raise TypeError(f"{name} must be a torch tensor (N={N}, H={cell.hidden_size});"
                                f" got {type(s).__name__}.")
            check_dtype_matches(name, s, cell.weight_ih.dtype)
            hint = ("torch's (layers, N, H) layout? Use state[0] for one layer."
                    if s.dim() == 3 and s.shape[0] == 1 else "")
            check_tensor(name, s, ("N", "H"), {"N": N, "H": cell.hidden_size},
                         dtype=cell.weight_ih.dtype, hint=hint)


class SequenceModel(nn.Module):
    """Recurrent layer + linear read-out of the last hidden state: (N, T, D) -> (N, K).

    Parameters
    ----------
    kind : ``"rnn"``, ``"lstm"`` or ``"gru"``.
    input_size, hidden_size, output_size : D, H, K.
    impl : ``"scratch"`` (cells of :mod:`companion.nn.cells`) or ``"torch"``
        (``torch.nn.RNN/LSTM/GRU``, batch-first, one layer).
    forget_bias : LSTM only, optional. Adds this constant to the forget-gate block of
        ``bias_ih`` after the default initialisation, so that ``sigmoid(f)`` starts
        close to 1 and the cell starts out remembering (Gers et al., 2000;
        Jozefowicz et al., 2015 recommend 1.0).
    update_bias : GRU only, optional. Adds this constant to the update-gate block ``z`` of
        ``bias_ih``, so that ``z = sigmoid(.)`` starts close to 1 and the unit starts out
        keeping its state (``h = (1 - z) * n + z * h_prev``): the GRU's counterpart of
        ``forget_bias`` (with 1.0, both keep ``sigmoid(1) = 0.73`` of the old state per step).
    init_seed : optional int. Draw all parameters from NumPy (:func:`numpy_init_`) instead
        of torch's generator, so that the initial weights are bit-identical on every CPU.
    dtype : ``torch.float32`` (default) or ``torch.float64``. Inputs must have this dtype.

    Examples
    --------
    >>> model = SequenceModel("lstm", 2, 8, 1)
    >>> tuple(model(torch.zeros(4, 10, 2)).shape)
    (4, 1)
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int,
                 *, impl: str = "scratch", forget_bias: float | None = None,
                 update_bias: float | None = None,
                 init_seed: int | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        if not isinstance(kind, str) or kind not in _CELLS:
            raise ValueError(f"kind must be one of {sorted(_CELLS)}; got {kind!r}.")
        D = check_positive_int("input_size", input_size)
        H = check_positive_int("hidden_size", hidden_size)
        K = check_positive_int("output_size", output_size)
        if impl == "scratch":
            self.recurrent = Recurrent(make_cell(kind, D, H))
        elif impl == "torch":
            cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
            self.recurrent = cls(D, H, batch_first=True)
        else:
            raise ValueError(f"impl must be 'scratch' or 'torch'; got {impl!r}.")
        self.kind, self.impl, self.input_size = kind, impl, D
        self.hidden_size = H
        self.readout = nn.Linear(H, K)  # V (K, H) and c (K,)
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}.")
        self.to(dtype)
        if init_seed is not None:
            numpy_init_(self, init_seed)
        if forget_bias is not None:
            if kind != "lstm":
                raise ValueError(f"forget_bias applies to kind='lstm' only; got kind={kind!r}.")
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)):
                raise TypeError(f"forget_bias must be a number; got {type(forget_bias).__name__}.")
            check_real("forget_bias", forget_bias, hint="Jozefowicz et al. recommend 1.0.")
            bias = self.recurrent.cell.bias_ih if impl == "scratch" else self.recurrent.bias_ih_l0
            with torch.no_grad():
                bias[H:2 * H] += float(forget_bias)  # gate order i, f, g, o: f is block 1
        if update_bias is not None:
            if kind != "gru":
                raise ValueError(f"update_bias applies to kind='gru' only; got kind={kind!r}.")
            if isinstance(update_bias, bool) or not isinstance(update_bias, (int, float)):
                raise TypeError(f"update_bias must be a number; got {type(update_bias).__name__}.")
            check_real("update_bias", update_bias)
            bias = self.recurrent.cell.bias_ih if impl == "scratch" else self.recurrent.bias_ih_l0
            with torch.no_grad():
                bias[H:2 * H] += float(update_bias)  # gate order r, z, n: z is block 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence_batch("x", x, self.input_size, self.readout.weight.dtype)
        outputs, _ = self.recurrent(x)  # (N, T, H)
        return self.readout(outputs[:, -1])  # (N, K)
