"""Checkers for the exercises of chapter 6 (Gated RNNs).

Every checker calls the answer with positional arguments (so argument names are the
student's own), with the package's and torch's cells, layers and autograd disabled for
the duration of the call, on fixed cases and on cases drawn afresh from
:func:`unseen_rng`. The expected values are computed before the call, from small
independent references written here (and, where torch holds the same function, checked
against torch as well).
"""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import (TORCH_AUTOGRAD, finite, references_disabled, takes_arguments,
                                 torch_refused, unseen_rng)
from companion.exercises import require as _require
from companion.exercises.ch05 import _existing

__all__ = ["check_peephole_lstm_step", "check_gru_step", "check_gru_step_backward",
           "check_cell_state_jacobian"]

# Everything in the package or in torch that computes a cell step, a recurrent layer or a
# gradient: an answer must not call any of them.
_CELLS = _existing(
    "companion.nn.cells.LSTMCell", "companion.nn.cells.GRUCell", "companion.nn.cells.RNNCell",
    "companion.nn.cells.make_cell", "companion.nn.cells.copy_from_torch",
    "companion.nn.layers.Recurrent", "companion.nn.layers.SequenceModel",
    "companion.scratch.lstm.lstm_forward", "companion.scratch.lstm.lstm_backward",
    "torch.nn.LSTMCell", "torch.nn.GRUCell", "torch.nn.RNNCell",
    "torch.nn.LSTM", "torch.nn.GRU", "torch.nn.RNN",
    "torch.lstm_cell", "torch.gru_cell", "torch.lstm", "torch.gru",
    "torch._VF.lstm_cell", "torch._VF.gru_cell", "torch.rnn_tanh_cell", "torch.rnn_relu_cell",
    "torch._C._VariableFunctions.gru_cell", "torch._C._VariableFunctions.lstm_cell",
    "torch._C._VariableFunctions.rnn_tanh_cell",
    "companion.nn.seq2seq.Seq2SeqEnsemble._gru_step", "companion.nn.attention.AttentionEnsemble._gru",
    "companion.nn.pointer.PointerSorter._gru", "companion.nn.ensemble.Ensemble.forward",
)
# torch's automatic differentiation, reverse and forward mode (a dual tensor)
_AUTOGRAD = _existing(*TORCH_AUTOGRAD)
_OWN = (
    "companion.exercises.ch06._ref_peephole", "companion.exercises.ch06._ref_gru",
    "companion.exercises.ch06._ref_gru_backward", "companion.exercises.ch06._ref_jacobian",
)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _random_weights(g, blocks, D, H, scale=0.6):
    """torch's layout: weight_ih (blocks*H, D), weight_hh (blocks*H, H), two biases."""
    return [g.normal(size=(blocks * H, D)) * scale, g.normal(size=(blocks * H, H)) * scale,
            g.normal(size=blocks * H) * scale, g.normal(size=blocks * H) * scale]


def _sizes(fixed, hidden, n_hidden=4):
    cases = [(1, 1, 1, fixed), (3, 4, 2, fixed), (2, 6, 5, fixed)]
    cases += [(int(hidden.integers(1, 6)), int(hidden.integers(1, 8)), int(hidden.integers(1, 6)),
               hidden) for _ in range(n_hidden)]
    return cases


_SIG_61 = "(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep) -> (h, c)"
_SIG_62 = "(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after) -> h"
_SIG_63 = "(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> dict"
_SIG_64 = "(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh) -> (H, H)"


def _call(fn, paths, *args, signature=""):
    with references_disabled(fn, *paths):  # refuses a reference handed in as the answer
        if signature:
            takes_arguments(fn, signature)
        if any(p in _AUTOGRAD for p in paths):
            with torch_refused(autograd=True, engine=True):
                return fn(*args)
        return fn(*args)



# ---------------------------------------------------------------- 6.1 a peephole LSTM step
def _ref_peephole(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
    H = h.shape[1]
    a = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i = _sigmoid(a[:, :H] + peep[0] * c)
    f = _sigmoid(a[:, H:2 * H] + peep[1] * c)
    c_new = f * c + i * np.tanh(a[:, 2 * H:3 * H])
    q = _sigmoid(a[:, 3 * H:] + peep[2] * c_new)
    return q * np.tanh(c_new), c_new


def check_peephole_lstm_step(fn) -> None:
    """Exercise 6.1: ``fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep) -> (h, c)``.

    A peephole LSTM step in NumPy, torch's block order i, f, g, o; ``peep`` (3, H) holds the
    peephole weights of the input, forget and output gates.
    """
    import torch

    check_callable("fn", fn, _SIG_61)
    for D, H, N, g in _sizes(np.random.default_rng(61), unseen_rng()):
        w = _random_weights(g, 4, D, H)
        x, h, c = g.normal(size=(N, D)), g.normal(size=(N, H)), g.normal(size=(N, H))
        peep = g.normal(size=(3, H))
        want_h, want_c = _ref_peephole(x, h, c, *w, peep)
        # without peepholes the cell is torch's LSTMCell
        cell = torch.nn.LSTMCell(D, H).double()
        with torch.no_grad():
            for p, v in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), w):
                p.copy_(torch.tensor(v))
            th, tc = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        plain = _ref_peephole(x, h, c, *w, np.zeros((3, H)))
        if not (np.allclose(plain[0], th.numpy()) and np.allclose(plain[1], tc.numpy())):
            raise RuntimeError("internal check: the checker's LSTM reference disagrees with torch.nn.LSTMCell")

        got0 = _call(fn, _CELLS + _OWN, x.copy(), h.copy(), c.copy(), *(v.copy() for v in w),
                     np.zeros((3, H)), signature=_SIG_61)
        _require(isinstance(got0, tuple) and len(got0) == 2, "return the pair (h, c)")
        gh0, gc0 = finite(got0[0], "h", (N, H)), finite(got0[1], "c", (N, H))
        _require(np.allclose(gc0, plain[1], atol=1e-10) and np.allclose(gh0, plain[0], atol=1e-10),
                 "with peep = 0 your step must be the LSTM of equation (lstm): check the block "
                 "order i, f, g, o of the stacked pre-activations and which nonlinearity each "
                 "block gets.")
        got = _call(fn, _CELLS + _OWN, x.copy(), h.copy(), c.copy(), *(v.copy() for v in w),
                    peep.copy(), signature=_SIG_61)
        _require(isinstance(got, tuple) and len(got) == 2, "return the pair (h, c)")
        gh, gc = finite(got[0], "h", (N, H)), finite(got[1], "c", (N, H))
        _require(np.allclose(gc, want_c, atol=1e-10), "the cell state differs once the peepholes are on: the input and forget gates "
                 "look at the OLD cell state, each through its own row of peep; the candidate "
                 "has no peephole.")
        _require(np.allclose(gh, want_h, atol=1e-10), "c is right but h differs: the output gate looks at the NEW cell state (through "
                 "the last row of peep), which exists only after the update.")
    _ok("your peephole LSTM step matches the equations, and torch's LSTMCell when peep = 0.")


# ---------------------------------------------------------------- 6.2 both GRUs
def _ref_gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after):
    H = h.shape[1]
    gi = x @ weight_ih.T + bias_ih
    r = _sigmoid(gi[:, :H] + h @ weight_hh[:H].T + bias_hh[:H])
    z = _sigmoid(gi[:, H:2 * H] + h @ weight_hh[H:2 * H].T + bias_hh[H:2 * H])
    if reset_after:
        m = r * (h @ weight_hh[2 * H:].T + bias_hh[2 * H:])
    else:
        m = (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:]
    n = np.tanh(gi[:, 2 * H:] + m)
    return (1 - z) * n + z * h


def check_gru_step(fn) -> None:
    """Exercise 6.2: ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after) -> h``.

    One GRU step in NumPy, torch's block order r, z, n; ``reset_after=True`` is torch's form
    (equation gru), ``False`` the form of equation gru-reset-before.
    """
    import torch

    check_callable("fn", fn, _SIG_62)
    for D, H, N, g in _sizes(np.random.default_rng(62), unseen_rng()):
        w = _random_weights(g, 3, D, H, scale=0.8)
        x, h = g.normal(size=(N, D)), g.normal(size=(N, H))
        cell = torch.nn.GRUCell(D, H).double()
        with torch.no_grad():
            for p, v in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), w):
                p.copy_(torch.tensor(v))
            torch_h = cell(torch.tensor(x), torch.tensor(h)).numpy()
        after, before = _ref_gru(x, h, *w, True), _ref_gru(x, h, *w, False)
        if not np.allclose(after, torch_h):
            raise RuntimeError("internal check: the checker's GRU reference disagrees with torch.nn.GRUCell")
        for flag, want in ((True, after), (False, before)):
            got = _call(fn, _CELLS + _OWN, x.copy(), h.copy(), *(v.copy() for v in w), flag,
                        signature=_SIG_62)
            got = finite(got, f"h (reset_after={flag})", (N, H))
            if np.allclose(got, want, atol=1e-10):
                continue
            other = before if flag else after
            _require(not np.allclose(got, other, atol=1e-10),
                     f"with reset_after={flag} you computed the other form: "
                     + ("the reset gate must scale the candidate's whole recurrent term, "
                        "product and b_hn included." if flag else
                        "the reset gate must act on h_prev BEFORE the product with W_n; "
                        "b_hn is then added unscaled."))
            _require(False, f"h differs (reset_after={flag}). The blocks are r, z, n in that order; "
                     "the update gate z weights the OLD state; the two candidate biases b_in "
                     "and b_hn enter differently.")
    _ok("both of your GRU forms match the equations (and reset_after=True matches torch.nn.GRU).")


# ---------------------------------------------------------------- 6.3 the GRU's backward pass
_KEYS = ("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh")

_GRU_HINTS = {
    "h": "the gradient to the old state h_prev: it arrives by more than one route; collect "
         "every place where h_prev enters the step.",
    "x": "the gradient to x: it flows back through weight_ih from the pre-activations of the "
         "three blocks.",
    "weight_ih": "weight_ih: the outer product of the input-side pre-activation gradients with "
                 "x, summed over the batch.",
    "weight_hh": "weight_hh: in the candidate block, what multiplies h_prev W_n^T + b_hn? The "
                 "gradient reaching that product passes through it.",
    "bias_ih": "bias_ih: the input-side pre-activation gradients, summed over the batch.",
    "bias_hh": "bias_hh: compare it with bias_ih block by block, and follow where each block "
               "of bias_hh enters the forward pass.",
}


def _ref_gru_backward(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    import torch

    tx = torch.tensor(x, requires_grad=True)
    th = torch.tensor(h, requires_grad=True)
    ps = [torch.tensor(v, requires_grad=True) for v in (weight_ih, weight_hh, bias_ih, bias_hh)]
    cell = torch.nn.GRUCell(x.shape[1], h.shape[1]).double()
    out = torch.func.functional_call(cell, dict(zip(("weight_ih", "weight_hh", "bias_ih",
                                                     "bias_hh"), ps)), (tx, th))
    grads = torch.autograd.grad((out * torch.tensor(dh_new)).sum(), [tx, th, *ps])
    return {k: v.numpy() for k, v in zip(_KEYS, grads)}


def check_gru_step_backward(fn) -> None:
    """Exercise 6.3: ``fn(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> dict``.

    One step of torch's GRU (reset gate after the product), NumPy arrays in; returns the
    gradients of ``sum(dh_new * h_new)`` with respect to ``x``, ``h`` and the four parameters,
    as a dict with those keys.
    """
    check_callable("fn", fn, _SIG_63)
    for D, H, N, g in _sizes(np.random.default_rng(63), unseen_rng()):
        w = _random_weights(g, 3, D, H, scale=0.8)
        x, h, dh_new = g.normal(size=(N, D)), g.normal(size=(N, H)), g.normal(size=(N, H))
        expected = _ref_gru_backward(dh_new, x, h, *w)
        got = _call(fn, _CELLS + _AUTOGRAD + _OWN, dh_new.copy(), x.copy(), h.copy(),
                    *(v.copy() for v in w), signature=_SIG_63)
        _require(isinstance(got, dict) and set(_KEYS) <= set(got), f"return a dict with the keys {sorted(_KEYS)}")
        for key in _KEYS:
            ref = expected[key]
            arr = finite(got[key], key, ref.shape)
            _require(np.allclose(arr, ref, rtol=1e-10, atol=1e-12), f"{key} differs from autograd. Check " + _GRU_HINTS[key])
    _ok("your GRU backward step matches autograd for every gradient.")


# ---------------------------------------------------------------- 6.4 the full cell-state Jacobian
def _ref_jacobian(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh):
    import torch

    ws = [torch.tensor(v) for v in (weight_ih, weight_hh, bias_ih, bias_hh)]
    H = len(h0)

    def run(s):
        h, c = torch.tensor(h0), s
        for x_t in torch.tensor(x):
            a = ws[0] @ x_t + ws[2] + ws[1] @ h + ws[3]
            i, f = torch.sigmoid(a[:H]), torch.sigmoid(a[H:2 * H])
            c = f * c + i * torch.tanh(a[2 * H:3 * H])
            h = torch.sigmoid(a[3 * H:]) * torch.tanh(c)
        return c

    return torch.autograd.functional.jacobian(run, torch.tensor(s0)).numpy()


def check_cell_state_jacobian(fn) -> None:
    """Exercise 6.4: ``fn(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh) -> (H, H)``.

    The full Jacobian d s^(T) / d s^(0) of an LSTM run on one sequence ``x`` (T, D), all paths
    included (through the gates as well as the direct cell-state path).
    """
    check_callable("fn", fn, _SIG_64)
    fixed, hidden = np.random.default_rng(640), unseen_rng()
    cases = [(1, 2, 1, fixed), (2, 3, 4, fixed), (3, 4, 12, fixed)]
    cases += [(int(hidden.integers(1, 4)), int(hidden.integers(2, 6)), int(hidden.integers(2, 10)),
               hidden) for _ in range(3)]
    for D, H, T, g in cases:
        w = _random_weights(g, 4, D, H, scale=0.5)
        w[1] = w[1] * 3.0  # large recurrent weights: the indirect paths matter
        x = g.normal(size=(T, D))
        h0, s0 = g.normal(size=H), g.normal(size=H)
        expected = _ref_jacobian(x, h0, s0, *w)
        got = _call(fn, _CELLS + _AUTOGRAD + _OWN, x.copy(), h0.copy(), s0.copy(),
                    *(v.copy() for v in w), signature=_SIG_64)
        got = finite(got, "your Jacobian", (H, H))
        if T == 1:
            _require(np.allclose(got, expected, rtol=1e-10, atol=1e-12), "one step: s^(1) = f * s^(0) + i * s~ with the gates computed from h^(0) and x, "
                     "neither of which depends on s^(0). What is d s^(1) / d s^(0)?")
        direct = np.allclose(got, np.diag(np.diag(got)), atol=1e-12)
        _require(np.allclose(got, expected, rtol=1e-10, atol=1e-12), "the Jacobian differs from autograd" + (
            "; yours is diagonal, which is the direct path only. From step 2 on, s^(t-1) "
            "also reaches s^(t) through h^(t-1) = q * tanh(s^(t-1)) and the four gates."
            if direct else ". Carry two Jacobians forward, J_s = d s^(t)/d s^(0) and "
            "J_h = d h^(t)/d s^(0), and differentiate every line of the LSTM step."))
    _ok("your Jacobian matches autograd, indirect paths included.")
