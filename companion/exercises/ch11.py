"""Checkers for the exercises of chapter 11 (Deep RNNs)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_stacked_lstm_params", "check_deep_transition_step", "check_path_length"]


def check_stacked_lstm_params(fn) -> None:
    """Exercise 11.1: ``fn(D, H, num_layers, bidirectional)`` = torch.nn.LSTM's count."""
    import torch

    for D, H, L, bi in [(1, 1, 1, False), (3, 4, 1, True), (5, 2, 2, False),
                        (2, 3, 3, True), (7, 16, 4, True)]:
        expected = sum(p.numel() for p in torch.nn.LSTM(D, H, L, bidirectional=bi).parameters())
        got = fn(D, H, L, bi)
        _require(isinstance(got, (int, np.integer)) and int(got) == expected, (
            f"D={D}, H={H}, num_layers={L}, bidirectional={bi}: your count ({got}) is off. "
            "Four gate blocks, two biases each; the first layer reads D inputs, a layer "
            "above reads the concatenated output of the layer below, whose width depends "
            "on the number of directions."))
    _ok("your formula matches torch.nn.LSTM for every depth and direction tried.")


def check_deep_transition_step(fn) -> None:
    """Exercise 11.2: ``fn(x, h, U, W, b, M, m)`` -> ``tanh(M tanh(U x + W h + b) + m)``
    for a batch of rows (x (N, D), h (N, H)), checked against companion's DeepTransition."""
    import torch

    from companion.nn.cells import RNNCell
    from companion.nn.stacked import DeepTransition

    rng = np.random.default_rng(112)
    for N, D, H in [(1, 1, 1), (2, 3, 4), (5, 2, 6)]:
        torch.manual_seed(N + D + H)
        cell = DeepTransition(RNNCell(D, H), 2).double()
        x, h = rng.normal(size=(N, D)), rng.normal(size=(N, H))
        ref = cell(torch.tensor(x), torch.tensor(h)).detach().numpy()
        c = cell.cell
        U, W = c.weight_ih.detach().numpy(), c.weight_hh.detach().numpy()
        b = (c.bias_ih + c.bias_hh).detach().numpy()
        M = cell.layers[0].weight.detach().numpy()
        m = cell.layers[0].bias.detach().numpy()
        got = np.asarray(fn(x, h, U, W, b, M, m), dtype=float)
        _require(got.shape == (N, H), f"return (N, H) = ({N}, {H}); got {got.shape}.")
        _require(bool(np.all(np.isfinite(got))) and np.allclose(got, ref, atol=1e-10), (
            "the new state differs. Rows are examples, so a matrix acts as x @ U.T; "
            "both stages end in tanh; the recurrent term uses the OLD state h."))
    _ok("your deep-transition step equals companion.nn.stacked.DeepTransition.")


def check_path_length(fn) -> None:
    """Exercise 11.3: ``fn(T, layers, transition_depth)`` = the number of tanh layers on
    the SHORTEST path from x^(1) to the top layer's state at step T, in a stack of tanh
    RNN layers whose every step is a deep transition of ``transition_depth`` stages."""
    for T, L, K in [(1, 1, 1), (4, 1, 1), (1, 3, 1), (5, 2, 1), (3, 1, 3), (6, 4, 2)]:
        got = fn(T, L, K)
        _require(isinstance(got, (int, np.integer)) and int(got) == K * (L + T - 1), (
            f"T={T}, layers={L}, transition_depth={K}: {got} is not it. A path must enter "
            "layer 1, climb to the top layer and move from step 1 to step T; count the "
            "moves, and the tanh stages each move passes through."))
    _ok("your count is right: depth per step and depth in time add up along every path.")
