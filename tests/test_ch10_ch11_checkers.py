"""Checkers of chapters 10 and 11: they accept the reference answers and reject
typical wrong ones, with hints that do not reveal the expected values."""

import numpy as np
import pytest
import torch

from companion.exercises import ch10, ch11
from companion.nn.stacked import run_cell


def _backward_ok(cell, x):
    return run_cell(cell, x, reverse=True)[0]


def _backward_reading_order(cell, x):
    return run_cell(cell, x.flip(1))[0]


def _backward_forward(cell, x):
    return run_cell(cell, x)[0]


def _h_n_ok(finals):
    return torch.stack([s for layer in finals for s in layer])


def _h_n_direction_major(finals):
    return torch.stack([layer[d] for d in range(2) for layer in finals])


def _summary_ok(out, H):
    return torch.cat([out[:, -1, :H], out[:, 0, H:]], dim=1)


def _summary_naive(out, H):
    return out[:, -1]


def _lstm_count(D, H, L, bi):
    dirs = 2 if bi else 1
    return sum(dirs * 4 * H * ((D if i == 0 else dirs * H) + H + 2) for i in range(L))


def _dt_step(x, h, U, W, b, M, m):
    return np.tanh(np.tanh(x @ U.T + h @ W.T + b) @ M.T + m)


def _path(T, L, K):
    return K * (L + T - 1)


@pytest.mark.parametrize("check,good", [
    (ch10.check_backward_states, _backward_ok), (ch10.check_build_h_n, _h_n_ok),
    (ch10.check_sequence_summary, _summary_ok), (ch11.check_stacked_lstm_params, _lstm_count),
    (ch11.check_deep_transition_step, _dt_step), (ch11.check_path_length, _path)])
def test_reference_answers_pass(check, good, capsys):
    check(good)
    assert capsys.readouterr().out.startswith("Correct")


@pytest.mark.parametrize("check,bad,hint", [
    (ch10.check_backward_states, _backward_reading_order, "reading order"),
    (ch10.check_backward_states, _backward_forward, "reverse direction"),
    (ch10.check_build_h_n, _h_n_direction_major, "wrong order"),
    (ch10.check_build_h_n, lambda f: torch.stack([s for layer in f for s in layer], 1),
     "axis first|wrong order"),
    (ch10.check_sequence_summary, _summary_naive, "LAST input"),
    (ch10.check_sequence_summary, lambda o, H: torch.cat([o[:, 0, :H], o[:, -1, H:]], 1),
     "both final states"),
    (ch11.check_stacked_lstm_params, lambda D, H, L, bi: _lstm_count(D, H, L, False),
     "directions"),
    (ch11.check_stacked_lstm_params, lambda D, H, L, bi: 4 * H * (D + H + 2) * L,
     "is off"),
    (ch11.check_deep_transition_step, lambda x, h, U, W, b, M, m: np.tanh(x @ U.T + h @ W.T + b),
     "differs"),
    (ch11.check_deep_transition_step,
     lambda x, h, U, W, b, M, m: np.full((x.shape[0], W.shape[0]), np.nan), "differs"),
    (ch11.check_path_length, lambda T, L, K: K * L * T, "not it"),
    (ch11.check_path_length, lambda T, L, K: L + T - 1, "not it"),
])
def test_wrong_answers_fail_with_a_hint(check, bad, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        check(bad)
    assert "Correct" not in str(err.value)


def test_hints_do_not_reveal_the_count():
    with pytest.raises(AssertionError) as err:
        ch11.check_stacked_lstm_params(lambda D, H, L, bi: 0)
    expected = sum(p.numel() for p in torch.nn.LSTM(1, 1).parameters())  # the first case
    assert str(expected) not in str(err.value)
