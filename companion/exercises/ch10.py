"""Checkers for the exercises of chapter 10 (Bidirectional RNNs).

Both exercises work on a padded batch: sequences of different lengths stored in one
tensor (N, T, ...), with ``lengths`` (N,) saying how many steps of each row are real.
The checkers fill the padded positions with large random values, so an answer that
reads them shows it, and compare with torch's packed layers (weights copied), computed
before the answer runs; during the answer's call torch's recurrent modules, its packing
functions and the package's own layers are disabled.
"""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import references_disabled
from companion.exercises import require as _require
from companion.exercises import unseen_rng
from companion.exercises import torch_refused as _torch_refused
from companion.exercises.ch08 import _unchanged

__all__ = ["check_bidirectional_padded", "check_delayed_tagger", "check_bidirectional_backward"]

# Everything that runs a recurrence over a (packed) batch for the answer.
_RECURRENT_REFERENCES = (
    "torch.nn.RNN", "torch.nn.GRU", "torch.nn.LSTM", "torch.nn.RNNBase",
    "torch.nn.modules.rnn.RNN", "torch.nn.modules.rnn.GRU", "torch.nn.modules.rnn.LSTM",
    "torch.nn.utils.rnn.pack_padded_sequence", "torch.nn.utils.rnn.pad_packed_sequence",
    "torch.nn.utils.rnn.pack_sequence",
    "companion.nn.stacked.run_cell", "companion.nn.stacked.Bidirectional",
    "companion.nn.stacked.StackedRNN", "companion.nn.stacked.Tagger",
    "companion.nn.seq2seq.Encoder",
    "companion.nn.layers.Recurrent", "companion.nn.layers.SequenceModel",
    "companion.exercises.ch10._packed_reference", "companion.exercises.ch10._delayed_reference",
    "companion.exercises.ch10._delayed_variant",
)
# torch's recurrent layers and packing under their other names: torch._VF.gru, torch.gru,
# torch.ops.aten..., torch._pack_padded_sequence, or a torch module built beforehand.
_RECURRENT_OPS = ("rnn_tanh", "rnn_relu", "gru", "lstm", "_pack_padded_sequence",
                  "_pad_packed_sequence")


def _state(*cells) -> list:
    """Copies of the cells' parameters, to tell whether the answer changed them."""
    return [p.detach().clone() for cell in cells for p in cell.parameters()]


def _cells_unchanged(before: list, *cells) -> None:
    after = _state(*cells)
    import torch

    _require(all(torch.equal(a, b) for a, b in zip(before, after)), (
        "your function changes the weights of a cell (or of the read-out) in place; a "
        "forward pass must leave the model's parameters as they were."))

_TOL = 1e-10


def _numpy(value, what: str) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be a tensor (or array) of numbers; got "
                             f"{type(value).__name__}.") from None
    _require(bool(np.all(np.isfinite(arr))), f"{what} holds NaN or inf values.")
    return arr


def _torch_module(kind: str, D: int, H: int, *, bidirectional: bool, seed: int):
    import torch

    torch.manual_seed(seed)
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU}[kind]
    return cls(D, H, batch_first=True, bidirectional=bidirectional).double()


def _cell_from(module, kind: str, suffix: str):
    """A companion cell holding the weights of ``module``'s direction ``suffix``."""
    from companion.nn.cells import make_cell

    cell = make_cell(kind, module.input_size, module.hidden_size).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data = getattr(module, name + suffix).detach().clone()
    return cell


def _padded_batch(rng, N: int, T: int, D: int, lengths):
    """x (N, T, D) with real values where t < lengths[i] and large junk elsewhere."""
    import torch

    x = rng.normal(size=(N, T, D))
    pad = np.arange(T)[None, :] >= np.asarray(lengths)[:, None]
    junk = rng.uniform(5.0, 9.0, size=(int(pad.sum()), D))
    x[pad] = junk * rng.choice([-1.0, 1.0], size=junk.shape)
    return torch.tensor(x, dtype=torch.float64)


def _packed_reference(module, x, lengths):
    """torch's packed bidirectional pass: outputs (N, T, 2H) zero-padded, h_n (2, N, H)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    with torch.no_grad():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = module(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out.numpy(), h_n.numpy()


def _bidirectional_cases(rng):
    fixed = [("rnn", 3, 5, 2, 3, [5, 2, 4]), ("gru", 4, 6, 3, 4, [1, 6, 3, 6]),
             ("gru", 1, 1, 2, 2, [1]), ("rnn", 2, 4, 1, 2, [2, 3])]
    drawn = []
    for kind in ("rnn", "gru"):
        N, T = int(rng.integers(2, 6)), int(rng.integers(3, 9))
        lengths = rng.integers(1, T + 1, size=N)
        lengths[rng.integers(N)] = int(rng.integers(1, 3))  # a very short one
        drawn.append((kind, N, T, int(rng.integers(1, 5)), int(rng.integers(2, 6)),
                      lengths.tolist()))
    return fixed + drawn


def check_bidirectional_padded(fn) -> None:
    """Exercise 10.1: ``fn(forward_cell, backward_cell, x, lengths)`` -> ``(outputs, h_n)``.

    ``x`` (N, T, D) is a padded batch, ``lengths`` (N,) int64 in 1..T, in any order.
    ``outputs`` (N, T, 2H): at ``t < lengths[i]`` the forward state after
    ``x[i, :t+1]`` and the backward state after ``x[i, t:lengths[i]]`` read right to
    left; zero at the padded positions. ``h_n`` (2, N, H): each direction's state after
    the whole real sequence. Checked against ``torch.nn.RNN/GRU(bidirectional=True)``
    over ``pack_padded_sequence``, with the weights copied into the cells.
    """
    import torch

    rng = unseen_rng()
    for i, (kind, N, T, D, H, lengths) in enumerate(_bidirectional_cases(rng)):
        module = _torch_module(kind, D, H, bidirectional=True, seed=1000 + i)
        forward_cell, backward_cell = _cell_from(module, kind, "_l0"), \
            _cell_from(module, kind, "_l0_reverse")
        x = _padded_batch(rng, N, T, D, lengths)
        lengths_t = torch.tensor(lengths, dtype=torch.int64)
        ref_out, ref_h_n = _packed_reference(module, x, lengths_t)
        with torch.no_grad():
            unpacked_out, _ = module(x)  # the classic bug: backward starts on the padding
        unpacked_out = unpacked_out.numpy()
        real = np.arange(T)[None, :] < np.asarray(lengths)[:, None]  # (N, T)

        counter = _CallCounter(forward_cell, backward_cell)
        weights = _state(forward_cell, backward_cell)
        passed = (x.clone(), lengths_t.clone())
        try:
            with references_disabled(fn, *_RECURRENT_REFERENCES), torch.no_grad(), \
                    _torch_refused(_RECURRENT_OPS):
                result = fn(forward_cell, backward_cell, *passed)
        finally:
            counter.remove()
        _unchanged(x, passed[0], "x")
        _unchanged(lengths_t, passed[1], "lengths")
        _cells_unchanged(weights, forward_cell, backward_cell)
        _require(isinstance(result, tuple) and len(result) == 2,
                 "return a pair (outputs, h_n).")
        for value, what in ((result[0], "outputs"), (result[1], "h_n")):
            _require(not isinstance(value, torch.Tensor) or value.dtype == x.dtype,
                     f"{what} must keep the dtype of x ({x.dtype}); got "
                     f"{getattr(value, 'dtype', None)}.")
        out = _numpy(result[0], "outputs")
        h_n = _numpy(result[1], "h_n")
        _require(max(counter.calls) <= T, _ONE_LOOP)
        _require(out.shape == (N, T, 2 * H),
                 f"outputs must be (N, T, 2H) = ({N}, {T}, {2 * H}); got {out.shape}.")
        _require(h_n.shape == (2, N, H),
                 f"h_n must be (num_directions, N, H) = (2, {N}, {H}); got {h_n.shape}.")
        _require(np.all(out[~real] == 0), (
            "outputs at padded positions (t >= lengths[i]) must be exactly zero, as "
            "pad_packed_sequence leaves them."))
        fwd_ok = np.allclose(out[..., :H][real], ref_out[..., :H][real], atol=_TOL, rtol=0)
        _require(fwd_ok, (
            "the forward half differs at real positions. It reads x[i, 0], x[i, 1], ... "
            "from a zero state; the cells' weights are the two directions' own."))
        bwd = out[..., H:][real]
        if not np.allclose(bwd, ref_out[..., H:][real], atol=_TOL, rtol=0):
            on_padding = np.allclose(bwd, unpacked_out[..., H:][real], atol=_TOL, rtol=0)
            _require(False, (
                "your backward direction starts at the end of the padded row, so it has "
                "read padding before the real tokens. It must start from a zero state at "
                "each sequence's own last real token." if on_padding else
                "the backward half differs at real positions. For sequence i it starts "
                "from a zero state at step lengths[i] - 1 and reads towards step 0; "
                "outputs[i, t, H:] is its state just after reading x[i, t]."))
        if not np.allclose(h_n[0], ref_h_n[0], atol=_TOL, rtol=0):
            _require(False, (
                "h_n[0] is not each sequence's forward state after its last REAL token. "
                "A state carried on through the padding, or read at the row's end, is not "
                "it."))
        _require(np.allclose(h_n[1], ref_h_n[1], atol=_TOL, rtol=0), (
            "h_n[1] is not the backward direction's final state: the state after it has "
            "read the whole real sequence, ending at x[i, 0]."))
    _ok("your padded bidirectional pass equals torch's packed bidirectional layer, "
        "outputs and h_n, on every batch tried.")


class _CallCounter:
    """Counts the calls of a cell (a forward pre-hook) while the answer runs."""

    def __init__(self, *cells):
        self.calls = [0] * len(cells)
        self._handles = [cell.register_forward_pre_hook(self._hook(i))
                         for i, cell in enumerate(cells)]

    def _hook(self, i):
        def count(module, args):
            self.calls[i] += 1
        return count

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


_ONE_LOOP = ("call each cell at most once per time step, on the whole batch (or the rows "
             "still running): one loop over time, not one loop per sequence.")


def _onehot(tokens: np.ndarray, size: int) -> np.ndarray:
    return np.eye(size)[tokens]


def _delayed_reference(module, readout, tokens, lengths, k: int, V: int) -> np.ndarray:
    """Each sequence alone: its real tokens, then k padding tokens V; logits at t + k."""
    import torch

    N, T = tokens.shape
    C = readout.out_features
    logits = np.zeros((N, T, C))
    with torch.no_grad():
        for i in range(N):
            n = int(lengths[i])
            stream = np.concatenate([tokens[i, :n], np.full(k, V)]).astype(int)
            x = torch.tensor(_onehot(stream, V + 1)[None], dtype=torch.float64)
            states = module(x)[0][0]                       # (n + k, H)
            logits[i, :n] = readout(states[k:]).numpy()    # step t read at t + k
    return logits


def _delayed_variant(module, readout, tokens, lengths, k: int, V: int, how: str):
    """Typical wrong answers, to name the mistake in the hint."""
    N, T = tokens.shape
    lengths = np.asarray(lengths)
    if how == "batch_end":      # k padding steps after the whole row, padding included
        fake = _delayed_reference(module, readout, tokens, np.full(N, T), k, V)
    elif how == "pad_zero":     # the padding token taken as token 0
        fake = np.zeros((N, T, readout.out_features))
        import torch
        with torch.no_grad():
            for i in range(N):
                n = int(lengths[i])
                stream = np.concatenate([tokens[i, :n], np.zeros(k)]).astype(int)
                x = torch.tensor(_onehot(stream, V + 1)[None], dtype=torch.float64)
                fake[i, :n] = readout(module(x)[0][0][k:]).numpy()
    else:                       # "no_delay": read at step t
        fake = _delayed_reference(module, readout, tokens, lengths, 0, V)
    fake[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    return fake


def check_delayed_tagger(fn) -> None:
    """Exercise 10.2: ``fn(cell, readout, tokens, lengths, k)`` -> logits (N, T, C).

    ``cell`` is a companion RNN or GRU cell of input size ``V + 1`` (one-hot tokens,
    index ``V`` is the padding token), ``readout`` a ``torch.nn.Linear(H, C)``,
    ``tokens`` (N, T) int64 with junk token ids at the padded positions, ``lengths``
    (N,) in 1..T. Sequence ``i`` is read as its ``lengths[i]`` real tokens followed by
    ``k`` padding tokens; the logits of step ``t`` come from the state after
    ``t + k + 1`` of those inputs; rows are zero at ``t >= lengths[i]``.
    """
    import torch

    rng = unseen_rng()
    fixed = [("gru", 4, 3, 6, 3, 2, [6, 2, 4], 2), ("rnn", 3, 4, 5, 2, 3, [5, 1], 1),
             ("gru", 3, 2, 4, 4, 2, [3, 4, 1, 2], 0), ("gru", 2, 3, 3, 1, 2, [3], 3)]
    drawn = []
    for kind in ("rnn", "gru"):
        N, T = int(rng.integers(2, 6)), int(rng.integers(3, 9))
        lengths = rng.integers(1, T + 1, size=N)
        lengths[rng.integers(N)] = int(rng.integers(1, 3))
        drawn.append((kind, int(rng.integers(2, 6)), int(rng.integers(2, 6)), T, N,
                      int(rng.integers(2, 5)), lengths.tolist(), int(rng.integers(1, 4))))
    for i, (kind, V, H, T, N, C, lengths, k) in enumerate(fixed + drawn):
        module = _torch_module(kind, V + 1, H, bidirectional=False, seed=2000 + i)
        cell = _cell_from(module, kind, "_l0")
        torch.manual_seed(3000 + i)
        readout = torch.nn.Linear(H, C).double()
        tokens = rng.integers(0, V, size=(N, T))
        lengths_np = np.asarray(lengths)
        ref = _delayed_reference(module, readout, tokens, lengths_np, k, V)
        real = np.arange(T)[None, :] < lengths_np[:, None]

        counter = _CallCounter(cell)
        weights = _state(cell, readout)
        passed = (torch.tensor(tokens, dtype=torch.int64),
                  torch.tensor(lengths, dtype=torch.int64))
        try:
            with references_disabled(fn, *_RECURRENT_REFERENCES), torch.no_grad(), \
                    _torch_refused(_RECURRENT_OPS):
                got = fn(cell, readout, *passed, k)
        finally:
            counter.remove()
        _unchanged(torch.tensor(tokens, dtype=torch.int64), passed[0], "tokens")
        _unchanged(torch.tensor(lengths, dtype=torch.int64), passed[1], "lengths")
        _cells_unchanged(weights, cell, readout)
        _require(not isinstance(got, torch.Tensor) or got.dtype == readout.weight.dtype,
                 f"the logits must keep the read-out's dtype ({readout.weight.dtype}); got "
                 f"{getattr(got, 'dtype', None)}.")
        got = _numpy(got, "the logits")
        _require(counter.calls[0] <= T + k, _ONE_LOOP)
        _require(got.shape == (N, T, C),
                 f"logits must be (N, T, C) = ({N}, {T}, {C}); got {got.shape}.")
        _require(np.all(got[~real] == 0),
                 "logits at padded positions (t >= lengths[i]) must be exactly zero.")
        if np.allclose(got, ref, atol=_TOL, rtol=0):
            continue
        hints = {
            "batch_end": ("a short sequence's look-ahead reads the batch's padding. The k "
                          "padding tokens must follow each sequence's own last real token."),
            "pad_zero": ("the padding token is index V (the extra one-hot entry), not a "
                         "real token such as 0."),
            "no_delay": ("these are the logits of a tagger without look-ahead: the logits "
                         "of step t come from the state after x(t + k), k steps later."),
        }
        for how, hint in hints.items():
            if k > 0 and np.allclose(got, _delayed_variant(module, readout, tokens,
                                                           lengths_np, k, V, how),
                                     atol=_TOL, rtol=0):
                _require(False, hint)
        _require(False, (
            f"k = {k}: the logits differ at real positions. Read each sequence's real "
            "tokens, then k padding tokens (one-hot index V), from a zero state; the "
            "logits of step t are the read-out of the state after t + k + 1 inputs."))
    _ok("your delayed tagger equals the reference on every padded batch and look-ahead "
        "tried.")


# --- Exercise 10.3: backpropagation through a bidirectional tanh RNN -------------------

_GRADIENT_REFERENCES = (
    "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
    "torch.func.grad", "torch.func.grad_and_value", "torch.func.vjp", "torch.func.jacrev",
    "torch.func.jacfwd", "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian",
    "companion.scratch.bptt.hidden_backward", "companion.scratch.bptt._hidden_backward",
    "companion.scratch.bptt.rnn_backward", "companion.scratch.bptt.rnn_step_backward",
    "companion.scratch.bptt.rnn_loss_and_grads", "companion.scratch.bptt.truncated_bptt",
    "companion.scratch.gradcheck.numerical_gradient",
    "companion.scratch.gradcheck.check_gradients",
    "companion.exercises.ch10._bidirectional_autograd",
)
_KEYS = ("U", "W", "b", "U_r", "W_r", "b_r", "x")


def _bidirectional_autograd(x, p, d_out, *, through_time: bool = True) -> dict:
    """Gradients of sum(d_out * [h; g]) by torch autograd (float64), from (10.1)-(10.2).
    ``through_time=False`` cuts both recurrences (a typical wrong answer)."""
    import torch

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in dict(p, x=x).items()}
    N, T, _ = x.shape
    H = p["W"].shape[0]
    h = g = torch.zeros(N, H, dtype=torch.float64)
    hs, gs = [None] * T, [None] * T
    for s in range(T):
        prev = h if through_time else h.detach()
        h = torch.tanh(t["x"][:, s] @ t["U"].T + prev @ t["W"].T + t["b"])
        hs[s] = h
    for s in range(T - 1, -1, -1):
        prev = g if through_time else g.detach()
        g = torch.tanh(t["x"][:, s] @ t["U_r"].T + prev @ t["W_r"].T + t["b_r"])
        gs[s] = g
    out = torch.cat([torch.stack(hs, 1), torch.stack(gs, 1)], dim=2)   # (N, T, 2H)
    loss = (torch.tensor(d_out) * out).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in _KEYS])
    return {k: v.numpy() for k, v in zip(_KEYS, grads)}


def _bidirectional_case(rng, N, T, D, H):
    s = 1.0 / np.sqrt(H)
    p = dict(U=rng.normal(size=(H, D)) * s, W=rng.normal(size=(H, H)) * s,
             b=rng.normal(size=H) * 0.3, U_r=rng.normal(size=(H, D)) * s,
             W_r=rng.normal(size=(H, H)) * s, b_r=rng.normal(size=H) * 0.3)
    return rng.normal(size=(N, T, D)), p, rng.normal(size=(N, T, 2 * H))


def check_bidirectional_backward(fn) -> None:
    """Exercise 10.3: ``fn(x, params, d_out)`` -> dict of the gradients
    ``{"U", "W", "b", "U_r", "W_r", "b_r", "x"}`` of ``L = sum(d_out * outputs)``, where
    ``outputs`` (N, T, 2H) is ``[h^(t); g^(t)]`` of equations (10.1)-(10.2) run over
    ``x`` (N, T, D) from zero states, ``params`` holding ``U, W, b`` (forward) and
    ``U_r, W_r, b_r`` (backward direction).

    Compared with torch autograd (float64) on fixed and unseen cases; autograd, torch's
    functional transforms and the package's backward passes are disabled during the call.
    """
    rng = unseen_rng()
    sizes = [(1, 1, 1, 1), (2, 4, 3, 2), (3, 6, 2, 4)]
    sizes += [(int(rng.integers(1, 5)), int(rng.integers(2, 9)), int(rng.integers(1, 5)),
               int(rng.integers(2, 7))) for _ in range(2)]
    fixed_rng = np.random.default_rng(103)
    for i, (N, T, D, H) in enumerate(sizes):
        x, p, d_out = _bidirectional_case(fixed_rng if i < 3 else rng, N, T, D, H)
        ref = _bidirectional_autograd(x, p, d_out)
        passed = (x.copy(), {k: v.copy() for k, v in p.items()}, d_out.copy())
        with references_disabled(fn, *_GRADIENT_REFERENCES), _torch_refused(autograd=True):
            got = fn(*passed)
        _unchanged(x, passed[0], "x")
        for k, v in p.items():
            _unchanged(v, passed[1].get(k), f"params[{k!r}]")
        _unchanged(d_out, passed[2], "d_out")
        _require(isinstance(got, dict) and set(_KEYS) <= set(got), (
            "return a dict with the gradients under the keys 'U', 'W', 'b', 'U_r', 'W_r', "
            "'b_r' and 'x'."))
        arrays = {k: _numpy(got[k], f"the gradient of {k}") for k in _KEYS}
        for k in _KEYS:
            _require(arrays[k].shape == ref[k].shape,
                     f"the gradient of {k} must have {k}'s shape {ref[k].shape}; got "
                     f"{arrays[k].shape}.")
        wrong = [k for k in _KEYS if not np.allclose(arrays[k], ref[k], rtol=0, atol=1e-12)]
        if not wrong:
            continue
        if T > 1:
            cut = _bidirectional_autograd(x, p, d_out, through_time=False)
            if all(np.allclose(arrays[k], cut[k], rtol=0, atol=1e-12) for k in _KEYS[:6]):
                _require(False, (
                    "your gradients use only d_out at each step. Each state also reaches "
                    "the loss through the states its direction computes after it: carry "
                    "that gradient along the direction's chain."))
        if set(wrong) & {"U", "W", "b"}:
            _require(False, (
                f"the forward direction's gradients ({', '.join(k for k in wrong if k in _KEYS[:3])}) "
                "differ. They come from the first H columns of d_out, and the gradient "
                "of h^(t) flows back from step t + 1 to step t, from the last step down."))
        if set(wrong) & {"U_r", "W_r", "b_r"}:
            _require(False, (
                f"the backward direction's gradients ({', '.join(k for k in wrong if k in _KEYS[3:6])}) "
                "differ. They come from the last H columns of d_out; g^(t) was computed "
                "from g^(t+1), so its gradient flows from step t - 1 to step t, from step "
                "0 upwards."))
        _require(False, (
            "the gradient of x differs while the weights' are right: x^(t) feeds BOTH "
            "directions at step t, so it receives a gradient from each."))
    _ok("your backward pass through the bidirectional RNN equals autograd on every case "
        "tried.")
