"""Checkers for the exercises of chapter 6 (Gated RNNs)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_lstm_step", "check_gru_step", "check_param_count", "check_forget_product"]


def _ok(message: str) -> None:
    print(f"Correct: {message}")


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
        assert isinstance(got, tuple) and len(got) == 2, "return the pair (h, c)"
        gh, gc = (np.asarray(v) for v in got)
        assert gc.shape == (N, H), f"c must be (N, H)=({N}, {H}); got {gc.shape}"
        assert np.allclose(gc, ref_c.detach().numpy(), atol=1e-10), (
            "the cell state c differs. Gate order is i, f, g, o (split the 4H pre-activations "
            "in that order); c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)."
        )
        assert np.allclose(gh, ref_h.detach().numpy(), atol=1e-10), (
            "c is right but h differs: h = sigmoid(o) * tanh(c), with the NEW c."
        )
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
        assert got.shape == (N, H), f"h must be (N, H)=({N}, {H}); got {got.shape}"
        assert np.allclose(got, ref, atol=1e-10), (
            "h differs. Gate order is r, z, n; the reset gate multiplies (h W_n^T + b_hn), "
            "bias included; and h = (1 - z) * n + z * h_prev (z weights the OLD state)."
        )
    _ok("your NumPy GRU step equals companion.nn.cells.GRUCell (and so torch.nn.GRU).")


def check_param_count(fn) -> None:
    """Exercise 6.3: ``fn(kind, D, H)`` = number of parameters of torch.nn.<kind>(D, H)."""
    import torch

    mods = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    for kind, mod in mods.items():
        for D, H in [(1, 1), (2, 32), (10, 7)]:
            expected = sum(p.numel() for p in mod(D, H).parameters())
            got = int(fn(kind, D, H))
            assert got == expected, (
                f"{kind} with D={D}, H={H}: your count ({got}) is wrong. Count, per gate block, "
                f"the input matrix, the recurrent matrix and torch's two biases."
            )
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
        assert got.shape == (H,), f"return one derivative per unit, shape ({H},); got {got.shape}"
        assert np.allclose(got, expected), (
            "along the cell-state path s^(t) = f^(t) * s^(t-1) + ..., what does one step "
            "multiply the derivative by? Chain that over the steps (product of the forget gates)."
        )
    _ok("your derivative matches autograd along the cell-state path.")
