"""RNN, LSTM and GRU cells written from scratch with torch tensors (one time step each).

Each cell holds exactly the parameters of its ``torch.nn`` counterpart, with the
same names and layouts, so weights copy straight across (:func:`copy_from_torch`)::

    weight_ih  (G*H, D)   U for every gate, stacked (this is Goodfellow's U)
    weight_hh  (G*H, H)   W for every gate, stacked
    bias_ih    (G*H,)     torch keeps two biases; the book's b is their sum
    bias_hh    (G*H,)

with ``G = 1`` (RNN), ``4`` (LSTM, gate order i, f, g, o as torch) or ``3`` (GRU,
order r, z, n as torch). Inputs are rows: ``x_t`` is (N, D) and states are (N, H).

The equations, one example per row (``*`` is the element-wise product):

RNN   ``h = tanh(x U^T + b_ih + h_prev W^T + b_hh)``

LSTM  ``i, f, g, o = split(x U^T + b_ih + h_prev W^T + b_hh)``;
      ``c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)``; ``h = sigmoid(o) * tanh(c)``

GRU   ``r = sigmoid(x U_r^T + b_ir + h_prev W_r^T + b_hr)``,
      ``z = sigmoid(x U_z^T + b_iz + h_prev W_z^T + b_hz)``,
      ``n = tanh(x U_n^T + b_in + r * (h_prev W_n^T + b_hn))``   (``reset_after=True``)
      ``n = tanh(x U_n^T + b_in + (r * h_prev) W_n^T + b_hn)``   (``reset_after=False``)
      ``h = (1 - z) * n + z * h_prev``

Where the GRU's reset gate sits differs between the versions of Cho et al. (2014):
the first arXiv version (v1) applies it *after* the matrix product, to
``h_prev W_n^T`` (torch and cuDNN do this, with the bias ``b_hn`` inside, which is why
torch keeps ``b_hn`` apart from ``b_in``); the EMNLP version (arXiv v3) applies it
*before*, to ``h_prev``. ``GRUCell(..., reset_after=True)`` (the default) is torch's;
``reset_after=False`` is the EMNLP form. Same parameters, different functions.

dtypes: a cell computes in the dtype of its parameters (float32 by default). An input
of another floating dtype raises a ``TypeError`` naming both and the fix
(``x.float()``, or ``cell.double()`` for a float64 model) instead of torch's bare
dtype error; nothing is converted silently.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from companion.checks import check_positive_int, check_tensor

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "make_cell", "copy_from_torch", "CELL_GATES",
           "check_dtype_matches"]

#: Number of stacked gate blocks per cell kind.
CELL_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def check_dtype_matches(name: str, x: torch.Tensor, dtype: torch.dtype) -> None:
    """Raise a clear ``TypeError`` unless the float tensor ``x`` has the model's ``dtype``."""
    if x.dtype != dtype:
        short = {torch.float32: "float", torch.float64: "double", torch.float16: "half",
                 torch.bfloat16: "bfloat16"}.get(dtype, "to")
        conv = (f"{name}.{short}()" if short != "to" else f"{name}.to({dtype})")
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's parameters are {dtype}. Convert the "
            f"input with {conv} (or torch.as_tensor({name}, dtype={dtype})), or the model with "
            f"model.to({x.dtype}). NumPy arrays are float64: "
            f"torch.as_tensor(x_np, dtype=torch.float32) for a default model."
        )


def _check_step_input(name: str, x, expected_cols: int, what: str, hint: str = "",
                      dtype: torch.dtype | None = None):
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch tensor; got {type(x).__name__}. "
            f"Convert with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floats; got dtype {x.dtype}. Use {name}.float().")
    if dtype is not None:
        check_dtype_matches(name, x, dtype)
    if x.dim() != 2 or x.shape[1] != expected_cols:
        if not hint and x.dim() == 3:
            hint = (f"A whole sequence (N, T, D)? A cell takes one step: pass {name}[:, t], "
                    f"or run the sequence with companion.nn.layers.Recurrent.")
        raise ValueError(
            f"{name} must be (N, {what}={expected_cols}); got {tuple(x.shape)}. "
            + (hint or f"A single example? Use {name}[None, :].")
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} must have at least one example (N >= 1); got shape "
                         f"{tuple(x.shape)}. An empty batch has nothing to compute.")
    # cheap test first (one reduction): a NaN or inf anywhere makes the sum non-finite; an
    # overflowing sum of finite values only triggers the full check, which then passes
    if not math.isfinite(float(x.detach().sum())):
        check_tensor(name, x, ("N", what), finite=True)


class _Cell(nn.Module):
    """Shared parameter layout and torch's default initialisation U(-1/sqrt(H), 1/sqrt(H))."""

    kind = ""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        G, H, D = CELL_GATES[self.kind], self.hidden_size, self.input_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, D))
        self.weight_hh = nn.Parameter(torch.empty(G * H, H))
        self.bias_ih = nn.Parameter(torch.empty(G * H))
        self.bias_hh = nn.Parameter(torch.empty(G * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, n: int, *, dtype=None):
        """Zero state(s) for a batch of ``n``: a tensor (RNN, GRU) or a pair (LSTM)."""
        n = check_positive_int("n", n)
        if dtype is not None and dtype not in (torch.float32, torch.float64, torch.float16,
                                               torch.bfloat16):
            raise TypeError(f"dtype must be a torch floating dtype such as torch.float32; "
                            f"got {dtype!r}.")
        dtype = dtype or self.weight_ih.dtype
        return torch.zeros(n, self.hidden_size, dtype=dtype)

    def _check(self, x_t, h_prev):
        dtype = self.weight_ih.dtype
        _check_step_input("x_t", x_t, self.input_size, "D", dtype=dtype)
        _check_step_input("h_prev", h_prev, self.hidden_size, "H",
                          "The state must match the cell's hidden_size.", dtype=dtype)
        if h_prev.shape[0] != x_t.shape[0]:
            raise ValueError(
                f"h_prev must have one row per example in x_t (N={x_t.shape[0]}); "
                f"got {h_prev.shape[0]} rows."
            )

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


class RNNCell(_Cell):
    """The vanilla (Elman) tanh cell: ``h = tanh(x U^T + h_prev W^T + b)``.

    Same parameters as ``torch.nn.RNNCell`` (and ``torch.nn.RNN``'s ``*_l0``).

    Examples
    --------
    >>> cell = RNNCell(3, 5)
    >>> cell(torch.zeros(2, 3), torch.zeros(2, 5)).shape
    torch.Size([2, 5])
    """

    kind = "rnn"

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        if h_prev is None:
            _check_step_input("x_t", x_t, self.input_size, "D", dtype=self.weight_ih.dtype)
            h_prev = self.initial_state(x_t.shape[0], dtype=x_t.dtype)
        self._check(x_t, h_prev)
        return self._step(x_t, h_prev)

    def _step(self, x_t, h_prev):
        # (N, D) @ (D, H) + (N, H) @ (H, H) -> (N, H)
        a = x_t @ self.weight_ih.T + self.bias_ih + h_prev @ self.weight_hh.T + self.bias_hh
        return torch.tanh(a)


class LSTMCell(_Cell):
    """The LSTM cell with forget gate; state is the pair ``(h, c)``.

    Same parameters as ``torch.nn.LSTMCell``; gate blocks in torch's order i, f, g, o.

    Examples
    --------
    >>> cell = LSTMCell(3, 5)
    >>> h, c = cell(torch.zeros(2, 3))
    >>> h.shape, c.shape
    (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    kind = "lstm"

    def initial_state(self, n: int, *, dtype=None):
        h = super().initial_state(n, dtype=dtype)
        return h, torch.zeros_like(h)

    def forward(self, x_t: torch.Tensor, state=None):
        if state is None:
            _check_step_input("x_t", x_t, self.input_size, "D", dtype=self.weight_ih.dtype)
            state = self.initial_state(x_t.shape[0], dtype=x_t.dtype)
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError(
                "state must be the pair (h_prev, c_prev) for an LSTM cell; "
                f"got {type(state).__name__}. Use cell.initial_state(N) to build one."
            )
        h_prev, c_prev = state
        self._check(x_t, h_prev)
        _check_step_input("c_prev", c_prev, self.hidden_size, "H",
                          "The cell state has the same shape as h_prev.",
                          dtype=self.weight_ih.dtype)
        if c_prev.shape[0] != x_t.shape[0]:
            raise ValueError(f"c_prev must have one row per example in x_t (N={x_t.shape[0]}); "
                             f"got {c_prev.shape[0]} rows.")
        return self._step(x_t, state)

    def _step(self, x_t, state):
        h_prev, c_prev = state
        # (N, 4H): the four pre-activations side by side
        gates = x_t @ self.weight_ih.T + self.bias_ih + h_prev @ self.weight_hh.T + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)  # each (N, H), torch's order
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class GRUCell(_Cell):
    """The gated recurrent unit; gate blocks in torch's order r, z, n.

    Same parameters as ``torch.nn.GRUCell``.

    Parameters
    ----------
    input_size, hidden_size : D, H.
    reset_after : where the reset gate acts on the candidate's recurrent term.
        ``True`` (default; torch, cuDNN, Cho et al.'s arXiv v1):
        ``n = tanh(x U_n^T + b_in + r * (h_prev W_n^T + b_hn))``.
        ``False`` (Cho et al., EMNLP 2014 / arXiv v3):
        ``n = tanh(x U_n^T + b_in + (r * h_prev) W_n^T + b_hn)``.
        Only ``reset_after=True`` matches ``torch.nn.GRU``.

    Examples
    --------
    >>> cell = GRUCell(3, 5)
    >>> cell(torch.zeros(2, 3)).shape
    torch.Size([2, 5])
    >>> GRUCell(3, 5, reset_after=False)
    GRUCell(input_size=3, hidden_size=5, reset_after=False)
    """

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, *, reset_after: bool = True):
        if not isinstance(reset_after, bool):
            raise TypeError(
                f"reset_after must be True (torch's GRU) or False (Cho et al.'s EMNLP form); "
                f"got {type(reset_after).__name__} {reset_after!r}."
            )
        super().__init__(input_size, hidden_size)
        self.reset_after = reset_after

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor | None = None) -> torch.Tensor:
        if h_prev is None:
            _check_step_input("x_t", x_t, self.input_size, "D", dtype=self.weight_ih.dtype)
            h_prev = self.initial_state(x_t.shape[0], dtype=x_t.dtype)
        self._check(x_t, h_prev)
        return self._step(x_t, h_prev)

    def _step(self, x_t, h_prev):
        H = self.hidden_size
        gi = x_t @ self.weight_ih.T + self.bias_ih  # (N, 3H)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        if self.reset_after:
            gh = h_prev @ self.weight_hh.T + self.bias_hh  # (N, 3H)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)  # reset after the product (bias b_hn inside)
        else:
            gh = h_prev @ self.weight_hh[:2 * H].T + self.bias_hh[:2 * H]  # (N, 2H): r, z
            h_r, h_z = gh.chunk(2, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            # reset before the product: only the reset part of the old state enters W_n
            n = torch.tanh(i_n + (r * h_prev) @ self.weight_hh[2 * H:].T + self.bias_hh[2 * H:])
        return (1.0 - z) * n + z * h_prev


_CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cell(kind: str, input_size: int, hidden_size: int, **options) -> _Cell:
    """Build a cell by name: ``"rnn"``, ``"lstm"`` or ``"gru"``.

    ``options`` go to the cell (``reset_after=`` for the GRU).
    """
    if not isinstance(kind, str) or kind not in _CELLS:
        raise ValueError(f"kind must be one of {sorted(_CELLS)}; got {kind!r}.")
    if options and kind != "gru":
        raise ValueError(f"options {sorted(options)} apply to kind='gru' only; got kind={kind!r}.")
    unknown = sorted(set(options) - {"reset_after"})
    if unknown:
        raise ValueError(f"options {unknown} are not GRUCell options; the only one is "
                         f"reset_after=True/False.")
    return _CELLS[kind](input_size, hidden_size, **options)


def copy_from_torch(cell: _Cell, module: nn.Module) -> _Cell:
    """Copy the weights of a ``torch.nn`` RNN/LSTM/GRU (or its ``*Cell``) into ``cell``.

    Accepts ``torch.nn.RNNCell/LSTMCell/GRUCell`` (parameters ``weight_ih`` ...) and
    single-layer, unidirectional ``torch.nn.RNN/LSTM/GRU`` (``weight_ih_l0`` ...).
    Returns ``cell`` for chaining. Raises a clear error when the kinds or sizes differ.
    """
    if not isinstance(cell, _Cell):
        raise TypeError(f"cell must be a companion.nn.cells cell; got {type(cell).__name__}.")
    expected = {"rnn": (nn.RNN, nn.RNNCell), "lstm": (nn.LSTM, nn.LSTMCell),
                "gru": (nn.GRU, nn.GRUCell)}[cell.kind]
    if not isinstance(module, expected):
        raise TypeError(
            f"module must be a torch.nn {cell.kind.upper()} or {cell.kind.upper()}Cell to copy "
            f"into a {type(cell).__name__}; got {type(module).__name__}."
        )
    if isinstance(module, nn.RNNBase):
        if module.num_layers != 1 or module.bidirectional or module.proj_size:
            raise ValueError(
                "module must have num_layers=1, bidirectional=False and no projection; "
                f"got num_layers={module.num_layers}, bidirectional={module.bidirectional}."
            )
        if not module.bias:
            raise ValueError("module must have bias=True (the cells always have biases).")
        if getattr(module, "nonlinearity", "tanh") != "tanh":
            raise ValueError("module must use nonlinearity='tanh', like RNNCell.")
        suffix = "_l0"
    else:
        if not module.bias or getattr(module, "nonlinearity", "tanh") != "tanh":
            raise ValueError("module must have bias=True and nonlinearity='tanh'.")
        suffix = ""
    if cell.kind == "gru" and not cell.reset_after:
        raise ValueError(
            "torch.nn.GRU applies the reset gate after the matrix product; copying its weights "
            "into GRUCell(reset_after=False) would give a different function. Use a GRUCell "
            "with reset_after=True, or load_state_dict explicitly if that is the point."
        )
    if (module.input_size, module.hidden_size) != (cell.input_size, cell.hidden_size):
        raise ValueError(
            f"sizes differ: the cell has input_size={cell.input_size}, "
            f"hidden_size={cell.hidden_size}; the module has input_size={module.input_size}, "
            f"hidden_size={module.hidden_size}."
        )
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            src = getattr(module, name + suffix)
            getattr(cell, name).data = src.detach().clone()
    return cell
