"""Checkers for the exercises of chapter 6 (Gated RNNs)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_lstm_step", "check_gru_step", "check_param_count", "check_forget_product",
           "check_gru_step_backward", "check_cell_state_jacobian"]


def _random_cell(kind, D, H, seed):
    import torch

    from companion.nn.cells import make_cell

    torch.manual_seed(seed)
    return make_cell(kind, D, H).double()


def _weights(cell):
    return {k: v.detach().numpy().copy() for k, v in cell.named_parameters()}


def check_lstm_step(fn) -> None:
    """Exercise 6.1: ``fn(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h, c)`` in NumPy."""
    import torch

    rng = np.random.default_rng(61)
    for D, H, N in [(1, 1, 1), (3, 4, 2), (2, 6, 5)]:
        cell = _random_cell("lstm", D, H, seed=D * 10 + H)
        x, h, c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
        ref_h, ref_c = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        got = fn(x, h, c, **_weights(cell))
        _require(isinstance(got, tuple) and len(got) == 2, "return the pair (h, c)")
        gh, gc = (np.asarray(v) for v in got)
        _require(gc.shape == (N, H), f"c must be (N, H)=({N}, {H}); got {gc.shape}")
        _require(np.allclose(gc, ref_c.detach().numpy(), atol=1e-10), "the cell state c differs. Gate order is i, f, g, o (split the 4H pre-activations "
            "in that order); c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g).")
        _require(np.allclose(gh, ref_h.detach().numpy(), atol=1e-10), "c is right but h differs: h = sigmoid(o) * tanh(c), with the NEW c.")
    _ok("your NumPy LSTM step equals companion.nn.cells.LSTMCell (and so torch.nn.LSTM).")


def check_gru_step(fn) -> None:
    """Exercise 6.2: ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h`` in NumPy."""
    import torch

    rng = np.random.default_rng(62)
    for D, H, N in [(1, 1, 1), (3, 4, 2), (2, 6, 5)]:
        cell = _random_cell("gru", D, H, seed=D * 10 + H + 1)
        x, h = rng.normal(size=(N, D)), rng.normal(size=(N, H))
        ref = cell(torch.tensor(x), torch.tensor(h)).detach().numpy()
        got = np.asarray(fn(x, h, **_weights(cell)))
        _require(got.shape == (N, H), f"h must be (N, H)=({N}, {H}); got {got.shape}")
        _require(np.allclose(got, ref, atol=1e-10), "h differs. Gate order is r, z, n; the reset gate multiplies (h W_n^T + b_hn), "
            "bias included; and h = (1 - z) * n + z * h_prev (z weights the OLD state).")
    _ok("your NumPy GRU step equals companion.nn.cells.GRUCell (and so torch.nn.GRU).")


def check_param_count(fn) -> None:
    """Exercise 6.3: ``fn(kind, D, H)`` = number of parameters of torch.nn.<kind>(D, H)."""
    import torch

    mods = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    for kind, mod in mods.items():
        for D, H in [(1, 1), (2, 32), (10, 7)]:
            expected = sum(p.numel() for p in mod(D, H).parameters())
            got = int(fn(kind, D, H))
            _require(got == expected, f"{kind} with D={D}, H={H}: your count ({got}) is wrong. Count, per gate block, "
                f"the input matrix, the recurrent matrix and torch's two biases.")
    _ok("your counts match torch.nn.RNN, LSTM and GRU for every size tried.")


def check_forget_product(fn) -> None:
    """Exercise 6.4: ``fn(f_gates)`` = d c^(T) / d c^(0) along the cell-state path.

    ``f_gates`` is (T, H), the forget-gate values sigmoid(f) at steps 1..T (held fixed).
    """
    import torch

    rng = np.random.default_rng(64)
    for T, H in [(1, 3), (5, 2), (30, 4)]:
        f = rng.uniform(0.5, 1.0, size=(T, H))
        c0 = torch.tensor(rng.normal(size=H), requires_grad=True)
        c = c0
        for t in range(T):
            c = torch.tensor(f[t]) * c + torch.tensor(rng.normal(size=H))
        c.sum().backward()
        expected = c0.grad.numpy()
        got = np.asarray(fn(f))
        _require(got.shape == (H,), f"return one derivative per unit, shape ({H},); got {got.shape}")
        _require(np.allclose(got, expected), "along the cell-state path s^(t) = f^(t) * s^(t-1) + ..., what does one step "
            "multiply the derivative by? Chain that over the steps (product of the forget gates).")
    _ok("your derivative matches autograd along the cell-state path.")


_GRU_HINTS = {
    "h": "the gradient to the old state h_prev: it arrives by two routes, directly through "
         "z * h_prev and through all three blocks of h_prev W^T (sum both).",
    "x": "the gradient to x: it is the pre-activation gradients of the three blocks times "
         "weight_ih.",
    "weight_ih": "weight_ih: (gradient of the input-side pre-activations)^T @ x, summed over the "
                 "batch.",
    "weight_hh": "weight_hh: in the candidate block, the reset gate multiplies h_prev W_n^T + "
                 "b_hn, so the gradient reaching that product is scaled by r.",
    "bias_ih": "bias_ih: the input-side pre-activation gradients, summed over the batch.",
    "bias_hh": "bias_hh: like bias_ih in the r and z blocks, but the candidate block sits "
               "inside the reset gate (scaled by r).",
}


def check_gru_step_backward(fn) -> None:
    """Exercise 6.3: ``fn(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh) -> dict``.

    One step of torch's GRU (reset gate after the product), NumPy arrays in; returns the
    gradients of ``sum(dh_new * h_new)`` with respect to ``x``, ``h`` and the four parameters,
    as a dict with those keys.
    """
    import torch

    rng = np.random.default_rng(63)
    for D, H, N in [(1, 1, 1), (3, 4, 2), (2, 5, 3)]:
        cell = _random_cell("gru", D, H, seed=100 + D * 10 + H)
        x = torch.tensor(rng.normal(size=(N, D)), requires_grad=True)
        h = torch.tensor(rng.normal(size=(N, H)), requires_grad=True)
        dh_new = rng.normal(size=(N, H))
        (cell(x, h) * torch.tensor(dh_new)).sum().backward()
        expected = {"x": x.grad.numpy(), "h": h.grad.numpy(),
                    **{k: v.grad.numpy() for k, v in cell.named_parameters()}}
        got = fn(dh_new, x.detach().numpy(), h.detach().numpy(), **_weights(cell))
        _require(isinstance(got, dict) and set(expected) <= set(got), f"return a dict with the keys {sorted(expected)}")
        for key, ref in expected.items():
            g = np.asarray(got[key], dtype=float)
            _require(g.shape == ref.shape, f"{key}: shape {g.shape}, expected {ref.shape}")
            _require(np.all(np.isfinite(g)), f"{key} holds NaN or inf")
            _require(np.allclose(g, ref, atol=1e-9), f"{key} differs from autograd. Check " + (
                _GRU_HINTS[key]))
    _ok("your GRU backward step matches autograd for every gradient.")


def check_cell_state_jacobian(fn) -> None:
    """Exercise 6.4: ``fn(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh) -> (H, H)``.

    The full Jacobian d s^(T) / d s^(0) of an LSTM run on one sequence ``x`` (T, D), all paths
    included (through the gates as well as the direct cell-state path).
    """
    import torch

    rng = np.random.default_rng(640)
    for D, H, T in [(1, 2, 1), (2, 3, 4), (3, 4, 12)]:
        cell = _random_cell("lstm", D, H, seed=200 + D * 10 + H)
        with torch.no_grad():
            cell.weight_hh.mul_(3.0)  # make the indirect paths matter
        x = rng.normal(size=(T, D))
        h0, s0 = rng.normal(size=H), rng.normal(size=H)

        def run(s):
            h, c = torch.tensor(h0)[None], s[None]
            for t in range(T):
                h, c = cell(torch.tensor(x[t])[None], (h, c))
            return c[0]

        expected = torch.autograd.functional.jacobian(run, torch.tensor(s0)).numpy()
        got = np.asarray(fn(x, h0, s0, **_weights(cell)), dtype=float)
        _require(got.shape == (H, H), f"return the (H, H) Jacobian; got shape {got.shape}")
        _require(np.all(np.isfinite(got)), "your Jacobian holds NaN or inf")
        if T == 1:
            _require(np.allclose(got, expected, atol=1e-9), "one step: s^(1) = f * s^(0) + i * s~ with the gates computed from h^(0) and x, "
                "neither of which depends on s^(0). What is d s^(1) / d s^(0)?")
        direct = np.allclose(got, np.diag(np.diag(got)), atol=1e-12)
        _require(np.allclose(got, expected, atol=1e-8), "the Jacobian differs from autograd" + (
                "; yours is diagonal, which is the direct path only. From step 2 on, s^(t-1) "
                "also reaches s^(t) through h^(t-1) = q * tanh(s^(t-1)) and the four gates."
                if direct else ". Carry two Jacobians forward, J_s = d s^(t)/d s^(0) and "
                "J_h = d h^(t)/d s^(0), and differentiate every line of the LSTM step."))
    _ok("your Jacobian matches autograd, indirect paths included.")
