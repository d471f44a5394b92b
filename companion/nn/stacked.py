"""Bidirectional and stacked (deep) recurrent layers built from the cells of ``cells.py``.

:func:`run_cell` runs one cell over a batch-first sequence, left to right or right to
left. :class:`Bidirectional` wraps any cell: a forward copy computes
:math:`h^{(t)}` from :math:`x^{(1)}, ..., x^{(t)}`, a backward copy computes
:math:`g^{(t)}` from :math:`x^{(t)}, ..., x^{(\\tau)}`, and the output at step ``t`` is
the concatenation ``[h^{(t)}, g^{(t)}]`` (N, T, 2H).

:class:`StackedRNN` is ``torch.nn.RNN/LSTM/GRU(batch_first=True, num_layers=L,
bidirectional=..., dropout=p)`` written out, with the same parameter names and layouts
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_ih_l0_reverse``,
..., ``weight_ih_l1``, ...), so :func:`copy_stacked_from_torch` copies a torch module's
weights in one call, and the same return values::

    outputs  (N, T, num_directions * H)   the top layer's states at every step
    h_n      (num_layers * num_directions, N, H)   row  layer * num_directions + direction
    c_n      same layout (LSTM only; the state is then the pair (h_n, c_n))

Direction 0 runs left to right, direction 1 (``_reverse``) right to left; so for a
bidirectional layer ``outputs[:, -1, H:]`` is the backward direction's state after ONE
step (it has read only the last input), and its final state, the one that has read the
whole sequence, sits at ``outputs[:, 0, H:]`` and in ``h_n[2 * layer + 1]``.

Beyond torch (parity then no longer applies, the extra parameters have their own names):

- ``residual=True``: a layer whose input and output sizes agree adds its input to its
  output (He et al., 2016), so layer ``l >= 1`` computes ``y_l = x_l + layer_l(x_l)``.
- ``transition_depth=k > 1``: a *deep transition* (Pascanu et al., 2014): inside every
  step, the cell's new hidden state passes through ``k - 1`` more ``tanh`` layers
  (``H -> H``) before it is emitted and fed back; the recurrence itself becomes deeper.
  (For an LSTM these layers act on ``h``, the cell state ``c`` is left as it is.)

Dropout between layers follows torch: in training mode, the output of every layer but
the last is dropped with probability ``p`` (so ``num_layers - 1`` dropout masks), and
nothing is dropped in eval mode.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from companion.checks import check_int_array, check_nonempty, check_positive_int, check_real
from companion.nn.cells import _Cell, check_dtype_matches, make_cell
from companion.nn.layers import check_sequence_batch
from companion.nn.linear_recurrence import _check_flag, _refuse_nonfinite

__all__ = ["run_cell", "Bidirectional", "DeepTransition", "StackedRNN",
           "copy_stacked_from_torch", "DeepReadout", "Tagger", "count_parameters",
           "tagging_accuracy", "train_tagger"]

_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _is_cell(cell) -> bool:
    return isinstance(cell, (_Cell, DeepTransition))


_KINDS = ("rnn", "lstm", "gru")


def _check_x(x, input_size, dtype):
    """x (N, T, D) of the model's dtype (time-first hint included), N >= 1, T >= 1, finite."""
    check_sequence_batch("x", x, input_size, dtype)
    check_nonempty("x", x, ("N", "T", "D"), hint="An empty batch has nothing to compute.")
    _refuse_nonfinite("x", x)


def _check_state(name, state, cell, N, dtype):
    """A cell's initial state: h (N, H), or the pair (h, c) for an LSTM."""
    H = cell.hidden_size
    if cell.kind == "lstm":
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError(f"{name} must be the pair (h, c) of (N={N}, H={H}) tensors for an "
                            f"LSTM cell; got {type(state).__name__}.")
        parts = ((f"{name}[0]", state[0]), (f"{name}[1]", state[1]))
    else:
        parts = ((name, state),)
    for part_name, t in parts:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{part_name} must be a torch tensor (N={N}, H={H}); got "
                            f"{type(t).__name__}. Convert with torch.as_tensor({part_name}, "
                            f"dtype={dtype}).")
        if tuple(t.shape) != (N, H):
            raise ValueError(f"{part_name} must be (N={N}, H={H}), one state per sequence of x; "
                             f"got {tuple(t.shape)}.")
        check_dtype_matches(part_name, t, dtype)
        _refuse_nonfinite(part_name, t)


def run_cell(cell, x: torch.Tensor, state=None, *, reverse: bool = False):
    """Run ``cell`` over ``x`` (N, T, D); return ``(outputs (N, T, H), final_state)``.

    With ``reverse=True`` the cell reads ``x`` from the last step to the first, and
    ``outputs[:, t]`` is the state after reading ``x[:, t:]`` (aligned with the input,
    as torch aligns its ``_reverse`` direction). ``final_state`` is the state after the
    whole sequence: ``h`` (N, H), or ``(h, c)`` for an LSTM.
    """
    if not _is_cell(cell):
        raise TypeError(f"cell must be a companion cell (make_cell('gru', D, H)); "
                        f"got {type(cell).__name__}.")
    dtype = cell.weight_ih.dtype
    _check_x(x, cell.input_size, dtype)
    if state is not None:
        _check_state("state", state, cell, x.shape[0], dtype)
    return _run_cell(cell, x, state, reverse=_check_flag("reverse", reverse))


def _run_cell(cell, x, state=None, *, reverse=False):
    """:func:`run_cell` without the checks."""
    N, T, _ = x.shape
    if state is None:
        state = cell.initial_state(N, dtype=x.dtype)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    outputs = [None] * T
    for t in steps:
        state = cell(x[:, t], state)  # x[:, t] is (N, D)
        outputs[t] = state[0] if isinstance(state, tuple) else state
    return torch.stack(outputs, dim=1), state  # (N, T, H)


class DeepTransition(nn.Module):
    """A cell whose step is deeper: ``h = tanh(M_k ... tanh(M_1 cell(x, h_prev) + m_1) ...)``.

    Wraps any companion cell; adds ``depth - 1`` square layers (``layers.j.weight`` (H, H),
    ``layers.j.bias`` (H,)) applied to the new hidden state inside the recurrence, so
    that the state fed back to the next step has passed through ``depth`` nonlinear
    layers (Pascanu et al.'s DT-RNN). ``depth=1`` is the cell itself.
    """

    def __init__(self, cell: _Cell, depth: int):
        super().__init__()
        if not isinstance(cell, _Cell):
            raise TypeError(f"cell must be a companion cell; got {type(cell).__name__}.")
        depth = check_positive_int("depth", depth)
        self.cell = cell
        self.input_size, self.hidden_size, self.kind = cell.input_size, cell.hidden_size, cell.kind
        H = cell.hidden_size
        self.layers = nn.ModuleList(nn.Linear(H, H) for _ in range(depth - 1))
        bound = 1.0 / math.sqrt(H)
        for lin in self.layers:
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.uniform_(lin.bias, -bound, bound)

    @property
    def weight_ih(self):
        return self.cell.weight_ih

    def initial_state(self, n, *, dtype=None):
        return self.cell.initial_state(n, dtype=dtype)

    def forward(self, x_t, state=None):
        state = self.cell(x_t, state)
        h = state[0] if isinstance(state, tuple) else state
        for lin in self.layers:
            h = torch.tanh(lin(h))  # (N, H) -> (N, H)
        return (h, state[1]) if isinstance(state, tuple) else h


class Bidirectional(nn.Module):
    """Run a cell forward and a copy of it backward; concatenate the two states per step.

    Parameters
    ----------
    cell : the forward cell (any cell of :mod:`companion.nn.cells`).
    backward_cell : optional; by default a copy of ``cell`` with freshly drawn weights.

    Notes
    -----
    ``forward(x, state=None)`` takes ``x`` (N, T, D) and optional initial states
    ``(state_forward, state_backward)``; returns ``(outputs, (final_forward,
    final_backward))`` with ``outputs`` (N, T, 2H): ``outputs[:, t, :H]`` is
    :math:`h^{(t)}` (has read steps ``1..t``), ``outputs[:, t, H:]`` is
    :math:`g^{(t)}` (has read steps ``t..T``).

    Examples
    --------
    >>> from companion.nn.cells import GRUCell
    >>> out, (h, g) = Bidirectional(GRUCell(2, 3))(torch.zeros(4, 5, 2))
    >>> tuple(out.shape), tuple(g.shape)
    ((4, 5, 6), (4, 3))
    """

    def __init__(self, cell, backward_cell=None):
        super().__init__()
        if not _is_cell(cell):
            raise TypeError(f"cell must be a companion cell (make_cell('gru', D, H)); "
                            f"got {type(cell).__name__}.")
        if backward_cell is None:
            backward_cell = copy.deepcopy(cell)
            for m in backward_cell.modules():  # fresh weights, drawn as at construction
                if isinstance(m, _Cell):
                    m.reset_parameters()
                elif isinstance(m, nn.Linear):
                    bound = 1.0 / math.sqrt(m.in_features)
                    nn.init.uniform_(m.weight, -bound, bound)
                    nn.init.uniform_(m.bias, -bound, bound)
        if not _is_cell(backward_cell) or (backward_cell.input_size, backward_cell.hidden_size) \
                != (cell.input_size, cell.hidden_size):
            raise ValueError("backward_cell must be a companion cell of the same sizes as cell.")
        self.forward_cell, self.backward_cell = cell, backward_cell
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size

    def forward(self, x, state=None):
        dtype = self.forward_cell.weight_ih.dtype
        _check_x(x, self.input_size, dtype)
        if state is not None and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError(f"state must be None or the pair (state_forward, state_backward); "
                            f"got {type(state).__name__}.")
        s_f, s_b = (None, None) if state is None else state
        for name, st, cell in (("state[0]", s_f, self.forward_cell),
                               ("state[1]", s_b, self.backward_cell)):
            if st is not None:
                _check_state(name, st, cell, x.shape[0], dtype)
        out_f, fin_f = _run_cell(self.forward_cell, x, s_f)
        out_b, fin_b = _run_cell(self.backward_cell, x, s_b, reverse=True)
        return torch.cat([out_f, out_b], dim=2), (fin_f, fin_b)  # (N, T, 2H)


class StackedRNN(nn.Module):
    """``num_layers`` recurrent layers, uni- or bidirectional, batch-first, torch's layout.

    Parameters
    ----------
    kind : ``"rnn"``, ``"lstm"`` or ``"gru"``.
    input_size, hidden_size : D, H.
    num_layers : L >= 1.
    bidirectional : add a right-to-left direction in every layer (parameters ``*_reverse``).
    dropout : probability p of dropping each output of layers 0..L-2 in training mode.
    residual : add each layer's input to its output where the sizes agree (layers >= 1).
    transition_depth : >= 1; ``k > 1`` makes every step a deep transition (see module doc).
    dtype : ``torch.float32`` (default) or ``torch.float64``.

    Notes
    -----
    ``forward(x, h0=None)``: ``x`` (N, T, D); ``h0`` in torch's layout
    (L * num_directions, N, H), or the pair ``(h0, c0)`` for an LSTM. Returns
    ``(outputs, h_n)`` or ``(outputs, (h_n, c_n))`` exactly as ``torch.nn`` does with
    ``batch_first=True``.

    Examples
    --------
    >>> rnn = StackedRNN("lstm", 3, 4, num_layers=2, bidirectional=True)
    >>> out, (h_n, c_n) = rnn(torch.zeros(5, 7, 3))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 7, 8), (4, 5, 4))
    >>> sorted(n for n, _ in rnn.named_parameters())[:3]
    ['bias_hh_l0', 'bias_hh_l0_reverse', 'bias_hh_l1']
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 bidirectional: bool = False, dropout: float = 0.0, residual: bool = False,
                 transition_depth: int = 1, dtype: torch.dtype = torch.float32):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}; got {kind!r}.")
        D = check_positive_int("input_size", input_size)
        H = check_positive_int("hidden_size", hidden_size)
        L = check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1); got {dropout!r}.")
        for name, flag in (("bidirectional", bidirectional), ("residual", residual)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False; got {flag!r}.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}.")
        self.kind, self.input_size, self.hidden_size, self.num_layers = kind, D, H, L
        self.bidirectional, self.dropout, self.residual = bidirectional, float(dropout), residual
        self.num_directions = 2 if bidirectional else 1
        self.transition_depth = check_positive_int("transition_depth", transition_depth)
        cells = []
        for layer in range(L):
            d_in = D if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                cell = make_cell(kind, d_in, H)
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                for p in _PARAMS:  # the cell's Parameter, registered under torch's name
                    self.register_parameter(p + suffix, getattr(cell, p))
                if self.transition_depth > 1:
                    cell = DeepTransition(cell, self.transition_depth)
                    self.add_module("transition" + suffix, cell.layers)
                cells.append(cell)
        object.__setattr__(self, "_cells", cells)  # not submodules: no duplicate names
        self.to(dtype)

    def cell(self, layer: int, direction: int = 0):
        """The cell that runs ``layer`` in ``direction`` (0 left-to-right, 1 right-to-left)."""
        layer = check_positive_int("layer", layer, minimum=0)
        if layer >= self.num_layers:
            raise ValueError(f"layer must be in [0, num_layers={self.num_layers}); got {layer} "
                             f"(layers count from 0).")
        if isinstance(direction, bool) or direction not in range(self.num_directions):
            raise ValueError(f"direction must be 0 (left to right)"
                             f"{' or 1 (right to left)' if self.num_directions == 2 else ''} "
                             f"for this {'bi' if self.num_directions == 2 else 'uni'}directional "
                             f"stack; got {direction!r}.")
        return self._cells[layer * self.num_directions + direction]

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)}" for k, default in
                        (("bidirectional", False), ("dropout", 0.0), ("residual", False),
                         ("transition_depth", 1)) if getattr(self, k) != default)
        return (f"{self.kind!r}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}{extra}")

    def _check_h0(self, name, h, N, dtype):
        expected = (self.num_layers * self.num_directions, N, self.hidden_size)
        if not isinstance(h, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape {expected}; "
                            f"got {type(h).__name__}.")
        if tuple(h.shape) != expected:
            hint = ""
            if h.dim() == 3 and h.shape[1] != N and h.shape[0] == N:
                hint = (" Batch-first state? torch keeps h0 as (layers * directions, N, H) "
                        f"even with batch_first=True: use {name}.transpose(0, 1).")
            elif h.dim() == 2:
                hint = f" One layer, one direction? Add the leading axis: {name}[None]."
            raise ValueError(
                f"{name} must be (num_layers * num_directions={expected[0]}, N={N}, "
                f"H={self.hidden_size}) in torch's layout (row = layer * num_directions "
                f"+ direction); got {tuple(h.shape)}.{hint}")
        check_dtype_matches(name, h, dtype)
        _refuse_nonfinite(name, h)

    def _time_first_hint(self, x, h):
        """Blame x, with the time-first hint, when h0 fits x's axis 1 as its batch axis."""
        if not isinstance(h, torch.Tensor) or h.dim() != 3 or x.shape[0] == x.shape[1]:
            return
        rows = self.num_layers * self.num_directions
        if tuple(h.shape) == (rows, x.shape[1], self.hidden_size):
            raise ValueError(
                f"x must be (N, T, D={self.input_size}), batch-first; got {tuple(x.shape)}, "
                f"while h0 has N={x.shape[1]} sequences, the size of x's axis 1. Time-first "
                f"input? This course is batch-first: use x.transpose(0, 1).")

    def forward(self, x: torch.Tensor, h0=None):
        dtype = self.weight_ih_l0.dtype
        _check_x(x, self.input_size, dtype)
        N = x.shape[0]
        lstm = self.kind == "lstm"
        self._time_first_hint(x, h0[0] if lstm and isinstance(h0, (tuple, list)) and h0
                              else h0)
        if h0 is not None:
            if lstm:
                if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                    raise TypeError("h0 must be the pair (h0, c0) for an LSTM; got "
                                    f"{type(h0).__name__}.")
                self._check_h0("h0", h0[0], N, dtype)
                self._check_h0("c0", h0[1], N, dtype)
            else:
                self._check_h0("h0", h0, N, dtype)
        finals_h, finals_c = [], []
        inp = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                row = layer * self.num_directions + direction
                state = None
                if h0 is not None:
                    state = (h0[0][row], h0[1][row]) if lstm else h0[row]
                out, fin = _run_cell(self.cell(layer, direction), inp, state,
                                    reverse=bool(direction))
                outs.append(out)
                finals_h.append(fin[0] if lstm else fin)
                if lstm:
                    finals_c.append(fin[1])
            out = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]  # (N, T, dirs * H)
            if self.residual and out.shape[2] == inp.shape[2]:
                out = out + inp
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                out = nn.functional.dropout(out, self.dropout, training=True)
            inp = out
        h_n = torch.stack(finals_h)  # (L * dirs, N, H)
        return (inp, (h_n, torch.stack(finals_c))) if lstm else (inp, h_n)


def copy_stacked_from_torch(model: StackedRNN, module: nn.Module) -> StackedRNN:
    """Copy every weight of ``torch.nn.RNN/LSTM/GRU`` into ``model`` (same configuration)."""
    if not isinstance(model, StackedRNN):
        raise TypeError(f"model must be a StackedRNN; got {type(model).__name__}.")
    expected = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[model.kind]
    if not isinstance(module, expected):
        raise TypeError(f"module must be a torch.nn.{expected.__name__} to copy into a "
                        f"StackedRNN of kind {model.kind!r}; got {type(module).__name__}.")
    mine = (model.input_size, model.hidden_size, model.num_layers, model.bidirectional)
    theirs = (module.input_size, module.hidden_size, module.num_layers, module.bidirectional)
    if mine != theirs or module.proj_size or not module.bias \
            or getattr(module, "nonlinearity", "tanh") != "tanh":
        raise ValueError(
            "configurations differ: (input_size, hidden_size, num_layers, bidirectional) is "
            f"{mine} here and {theirs} in the module (which must also have bias=True, "
            "nonlinearity='tanh' and no projection).")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, src in module.named_parameters():
            params[name].copy_(src.detach())
    return model


class DeepReadout(nn.Module):
    """A read-out with hidden layers (Pascanu et al.'s deep output): H -> ... -> K.

    ``depth=1`` is the usual linear ``o = V h + c``; ``depth=k`` puts ``k - 1`` tanh
    layers of width ``width`` in front of it.
    """

    def __init__(self, in_size: int, out_size: int, depth: int = 1, width: int | None = None):
        super().__init__()
        depth = check_positive_int("depth", depth)
        in_size = check_positive_int("in_size", in_size)
        width = check_positive_int("width", in_size if width is None else width)
        self.in_size = in_size
        layers, d = [], in_size
        for _ in range(depth - 1):
            layers += [nn.Linear(d, width), nn.Tanh()]
            d = width
        layers.append(nn.Linear(d, check_positive_int("out_size", out_size)))
        self.net = nn.Sequential(*layers)

    def forward(self, h):
        dtype = self.net[0].weight.dtype
        if not isinstance(h, torch.Tensor):
            raise TypeError(f"h must be a torch tensor (..., H={self.in_size}); got "
                            f"{type(h).__name__}. Convert with torch.as_tensor(h, dtype={dtype}).")
        if not h.is_floating_point():
            raise TypeError(f"h must hold floats (states); got dtype {h.dtype}. Use h.float().")
        if h.dim() == 0 or h.shape[-1] != self.in_size:
            raise ValueError(f"h must be (..., H={self.in_size}), features on the last axis; got "
                             f"{tuple(h.shape)}. Is in_size right (2H for a bidirectional "
                             f"encoder)?")
        if h.numel() == 0:
            raise ValueError(f"h must hold at least one state (every axis >= 1); got shape "
                             f"{tuple(h.shape)}.")
        check_dtype_matches("h", h, dtype)
        _refuse_nonfinite("h", h)
        return self.net(h)


class _TorchResidualStack(nn.Module):
    """One ``torch.nn`` layer per depth, each layer's input added to its output where
    sizes agree: what ``StackedRNN(residual=True)`` computes, on torch's fast loop."""

    def __init__(self, cls, D, H, num_layers, bidirectional, dropout):
        super().__init__()
        dirs = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            cls(D if i == 0 else dirs * H, H, batch_first=True, bidirectional=bidirectional)
            for i in range(num_layers))
        self.dropout = dropout

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            y = layer(x)[0]  # (N, T, dirs * H)
            if y.shape == x.shape:
                y = y + x
            if i < len(self.layers) - 1 and self.dropout > 0:
                y = nn.functional.dropout(y, self.dropout, training=self.training)
            x = y
        return x, None


class Tagger(nn.Module):
    """A sequence tagger: one-hot tokens -> recurrent encoder -> logits at every step.

    Parameters
    ----------
    kind, vocab_size, hidden_size, num_classes : cell, V (input tokens), H, K.
    num_layers, bidirectional, dropout, residual, transition_depth : as :class:`StackedRNN`.
    readout_depth : layers of the read-out (:class:`DeepReadout`).
    delay : k >= 0 steps of look-ahead for a unidirectional model. The input gets ``k``
        extra steps of a padding token (index V, so the one-hot has V + 1 entries) and
        the logits for step ``t`` are read at step ``t + k``: the model has then read
        ``x^{(1)}, ..., x^{(t+k)}``.
    impl : ``"scratch"`` (:class:`StackedRNN`) or ``"torch"`` (``torch.nn.RNN/LSTM/GRU``,
        same function, faster; no ``transition_depth`` there).

    Notes
    -----
    ``forward(tokens)`` takes int tokens (N, T) and returns logits (N, T, K).
    """

    def __init__(self, kind: str, vocab_size: int, hidden_size: int, num_classes: int, *,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 residual: bool = False, transition_depth: int = 1, readout_depth: int = 1,
                 delay: int = 0, impl: str = "scratch", dtype: torch.dtype = torch.float32):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}; got {kind!r}.")
        if impl not in ("scratch", "torch"):
            raise ValueError(f"impl must be 'scratch' or 'torch'; got {impl!r}.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}.")
        _check_flag("bidirectional", bidirectional)
        _check_flag("residual", residual)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1); got {dropout!r}.")
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.delay = check_positive_int("delay", delay, minimum=0)
        if self.delay and bidirectional:
            raise ValueError("delay is look-ahead for a unidirectional model; a bidirectional "
                             "model already sees the whole sequence. Use delay=0.")
        D = self.vocab_size + 1  # one-hot with a padding token at index V
        H = self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if impl == "scratch":
            self.encoder = StackedRNN(kind, D, H, num_layers, bidirectional=bidirectional,
                                      dropout=dropout, residual=residual,
                                      transition_depth=transition_depth)
        elif impl == "torch":
            if check_positive_int("transition_depth", transition_depth) != 1:
                raise ValueError("impl='torch' has no deep transition; use impl='scratch'.")
            check_positive_int("num_layers", num_layers)
            cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
            if residual:
                self.encoder = _TorchResidualStack(cls, D, H, num_layers, bidirectional,
                                                   dropout)
            else:
                self.encoder = cls(D, H, num_layers, batch_first=True, dropout=dropout,
                                   bidirectional=bidirectional)
        else:
            raise ValueError(f"impl must be 'scratch' or 'torch'; got {impl!r}.")
        self.readout = DeepReadout(H * (2 if bidirectional else 1),
                                   check_positive_int("num_classes", num_classes),
                                   readout_depth)
        self.to(dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64:
            got = (f"dtype {tokens.dtype}" if isinstance(tokens, torch.Tensor)
                   else type(tokens).__name__)
            extra = (" A float id would be truncated." if isinstance(tokens, torch.Tensor)
                     and tokens.is_floating_point() else "")
            raise TypeError("tokens must be a torch.long (int64) tensor (N, T) of integer token "
                            f"ids; got {got}.{extra} "
                            "Use torch.as_tensor(tokens_np, dtype=torch.long).")
        if tokens.dim() != 2:
            hint = " A single sequence? Use tokens[None]." if tokens.dim() == 1 else ""
            raise ValueError(f"tokens must be (N, T), batch-first; got {tuple(tokens.shape)}."
                             + hint)
        check_nonempty("tokens", tokens, ("N", "T"), hint="An empty batch has nothing to tag.")
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size:
            raise ValueError(f"tokens must lie in 0..{self.vocab_size - 1} (vocab_size); got "
                             f"values in {int(tokens.min())}..{int(tokens.max())}.")
        N, T = tokens.shape
        if self.delay:
            pad = torch.full((N, self.delay), self.vocab_size, dtype=tokens.dtype)
            tokens = torch.cat([tokens, pad], dim=1)  # (N, T + k)
        dtype = next(self.readout.parameters()).dtype
        x = nn.functional.one_hot(tokens, self.vocab_size + 1).to(dtype)  # (N, T+k, V+1)
        out = self.encoder(x)[0]  # (N, T + k, dirs * H)
        return self.readout(out[:, self.delay:])  # step t read at t + k: (N, T, K)


def _as_ids(name, value) -> torch.Tensor:
    """Integer ids (a NumPy int array, a list of ints or a torch integer tensor) as a
    torch.long tensor; floats are refused (they would be truncated)."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer ids; got a tensor of dtype {value.dtype}"
                            f" (a float id would be truncated). Use {name}.long() if the "
                            f"values are ids.")
        return value.long()
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an (N, T) array of integer ids; got "
                        f"{type(value).__name__}.")
    return torch.as_tensor(check_int_array(name, value, low=-2 ** 62), dtype=torch.long)


def _num_classes(model):
    readout = getattr(model, "readout", None)
    last = readout.net[-1] if isinstance(readout, DeepReadout) else None
    return last.out_features if isinstance(last, nn.Linear) else None


def _check_tagging_data(model, tokens, labels):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch module (a Tagger); got {type(model).__name__}.")
    tokens = _as_ids("tokens", tokens)
    labels = _as_ids("labels", labels)
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be (N, T), batch-first; got {tuple(tokens.shape)}.")
    if tuple(labels.shape) != tuple(tokens.shape):
        raise ValueError(f"labels must have the shape of tokens {tuple(tokens.shape)}, one class "
                         f"id per token (not one-hot); got {tuple(labels.shape)}.")
    check_nonempty("tokens", tokens, ("N", "T"), hint="An empty set has no accuracy.")
    K = _num_classes(model)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or (K is not None and hi >= K):
        top = f"{K - 1}" if K is not None else "num_classes - 1"
        raise ValueError(f"labels must lie in 0..{top} (the model's num_classes); got values "
                         f"in {lo}..{hi}. Labels of another tag set, or a padding value?")
    if isinstance(model, Tagger):
        tmin, tmax = int(tokens.min()), int(tokens.max())
        if tmin < 0 or tmax >= model.vocab_size:
            raise ValueError(f"tokens must lie in 0..{model.vocab_size - 1} (vocab_size); got "
                             f"values in {tmin}..{tmax}.")
    return tokens, labels


def tagging_accuracy(model: nn.Module, tokens, labels) -> float:
    """Fraction of tokens whose arg-max label is right (eval mode, no gradient)."""
    tokens, labels = _check_tagging_data(model, tokens, labels)
    was = model.training
    model.eval()
    with torch.no_grad():
        pred = model(tokens).argmax(-1)  # (N, T)
    model.train(was)
    return float((pred == labels).double().mean())


def train_tagger(model: nn.Module, tokens, labels, *, steps: int, lr: float,
                 batch_size: int = 64, seed: int = 0, clip_norm: float = 1.0) -> list:
    """Adam on the mean cross-entropy over all tokens; minibatches drawn from ``seed``.

    ``tokens``, ``labels`` : (N, T) int arrays (the training set). Returns the loss of
    every step. Gradients are clipped to global norm ``clip_norm``. Raises
    ``FloatingPointError`` naming the step if the loss stops being finite.
    """
    import numpy as np

    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    tokens, labels = _check_tagging_data(model, tokens, labels)
    lr = check_real("lr", lr, low=0.0, low_open=True, hint="Adam's usual range is 1e-4 to 1e-2.")
    seed = check_positive_int("seed", seed, minimum=0)
    if isinstance(clip_norm, bool) or not isinstance(clip_norm, (int, float, np.floating,
                                                                  np.integer)) \
            or not clip_norm > 0:
        raise ValueError(f"clip_norm must be a number > 0 (math.inf for no clipping); got "
                         f"{clip_norm!r}. clip_norm=0 would zero every gradient.")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.as_tensor(rng.integers(0, tokens.shape[0], size=batch_size))
        logits = model(tokens[idx])  # (B, T, K)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           labels[idx].reshape(-1))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is not finite at step {step}; lower lr={lr}.")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        losses.append(loss.item())
    return losses
