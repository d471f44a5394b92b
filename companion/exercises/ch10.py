"""Checkers for the exercises of chapter 10 (Bidirectional RNNs)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import require as _require

__all__ = ["check_backward_states", "check_build_h_n", "check_sequence_summary"]


def _close(got, ref) -> bool:
    got = np.asarray(got, dtype=float)
    return got.shape == ref.shape and bool(np.all(np.isfinite(got))) \
        and np.allclose(got, ref, atol=1e-10, rtol=0)


def check_backward_states(fn) -> None:
    """Exercise 10.1: ``fn(cell, x)`` -> g (N, T, H), ``g[:, t]`` has read ``x[:, t:]``."""
    import torch

    from companion.nn.cells import make_cell

    for kind, (N, T, D, H) in [("rnn", (1, 1, 1, 2)), ("gru", (2, 5, 3, 4)),
                               ("rnn", (3, 6, 2, 3))]:
        torch.manual_seed(N * 100 + T)
        ref_mod = torch.nn.RNN(D, H, batch_first=True, bidirectional=True).double() \
            if kind == "rnn" else torch.nn.GRU(D, H, batch_first=True,
                                               bidirectional=True).double()
        cell = make_cell(kind, D, H).double()
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, p).data = getattr(ref_mod, p + "_l0_reverse").detach().clone()
        x = torch.randn(N, T, D, dtype=torch.float64)
        ref = ref_mod(x)[0][:, :, H:].detach().numpy()
        with torch.no_grad():
            got = fn(cell, x)
        got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        _require(got.shape == (N, T, H), f"g must be (N, T, H) = ({N}, {T}, {H}); "
                                         f"got {got.shape}.")
        if not _close(got, ref):
            flipped = np.allclose(got[:, ::-1], ref, atol=1e-10)
            _require(False, (
                "your states are right but stored in reading order; put the state that has "
                "read x[:, t:] at position t." if flipped else
                "g differs from torch's reverse direction. Start from a zero state, feed "
                "x[:, T-1], then x[:, T-2], ..., and store each new state at the position of "
                "the input it has just read."))
    _ok("your backward states equal the _reverse half of torch.nn's bidirectional output.")


def check_build_h_n(fn) -> None:
    """Exercise 10.2: ``fn(finals)`` -> torch's h_n from ``finals[layer][direction]`` (N, H)."""
    import torch

    for L, N, H in [(1, 2, 3), (2, 1, 2), (3, 4, 5)]:
        torch.manual_seed(L)
        ref_mod = torch.nn.GRU(2, H, L, batch_first=True, bidirectional=True).double()
        x = torch.randn(N, 6, 2, dtype=torch.float64)
        out, h_n = ref_mod(x)
        finals = [[h_n[2 * layer].detach().clone(), h_n[2 * layer + 1].detach().clone()]
                  for layer in range(L)]
        got = fn([list(f) for f in finals])
        got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        _require(got.shape == (2 * L, N, H), (
            f"h_n must be (num_layers * num_directions, N, H) = ({2 * L}, {N}, {H}); got "
            f"{got.shape}. torch keeps the layer-and-direction axis first, even when "
            "batch_first=True."))
        _require(_close(got, h_n.detach().numpy()), (
            "the rows are in the wrong order. Row r holds layer r // 2 and direction r % 2: "
            "layer 0 forward, layer 0 backward, layer 1 forward, ..."))
    _ok("your h_n has torch's layout, rows ordered layer by layer, forward before backward.")


def check_sequence_summary(fn) -> None:
    """Exercise 10.3: ``fn(output, H)`` -> (N, 2H): both directions' states after the
    whole sequence, forward first, from a bidirectional layer's ``output`` alone."""
    import torch

    for N, T, H in [(1, 1, 2), (2, 5, 3), (3, 7, 4)]:
        torch.manual_seed(T)
        mod = torch.nn.LSTM(3, H, batch_first=True, bidirectional=True).double()
        x = torch.randn(N, T, 3, dtype=torch.float64)
        out, (h_n, _) = mod(x)
        ref = torch.cat([h_n[0], h_n[1]], dim=1).detach().numpy()
        got = fn(out.detach(), H)
        got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        _require(got.shape == (N, 2 * H), f"return (N, 2H) = ({N}, {2 * H}); got {got.shape}.")
        if T > 1:
            naive = out[:, -1].detach().numpy()
            _require(not np.allclose(got, naive, atol=1e-10), (
                "that is output[:, -1]: its backward half has read only the LAST input. "
                "Where does the backward direction finish reading?"))
        _require(_close(got, ref), (
            "not both final states. The forward direction finishes at the last step, "
            "the backward direction at the first."))
    _ok("your summary holds both directions' states after reading the whole sequence.")
