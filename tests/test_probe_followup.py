"""Mistakes an independent probe found answered silently or unclearly, each now refused
at the door with the argument named."""

import pytest
import torch

from companion.nn import decoding
from companion.nn.conditioned import scheduled_teacher_prob
from companion.nn.fused import fused_sequence
from companion.nn.stacked import StackedRNN
from companion.nn.zoneout import ZoneoutRNNCell, regularised_step


def _step_fn(tokens, state):
    return torch.log_softmax(torch.zeros(len(tokens), 5), dim=1), state


def _lstm_weights(M=2, D=3, H=4):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(M, 4 * H, D, generator=g), torch.randn(M, 4 * H, H, generator=g),
            torch.zeros(M, 4 * H), torch.zeros(M, 4 * H))


def test_decoders_refuse_bos_equal_to_eos():
    for search in (decoding.greedy, decoding.sample, decoding.beam_search):
        with pytest.raises(ValueError, match="bos and eos must be different token ids; got "
                                             "bos = eos = 2"):
            search(_step_fn, torch.zeros(3, 1), 3, bos=2, eos=2)


def test_schedule_refuses_a_step_beyond_training():
    assert scheduled_teacher_prob("linear", 10, 10) == 0.0  # the last step is allowed
    with pytest.raises(ValueError, match=r"step must lie in \[0, steps=10\].*got step=20"):
        scheduled_teacher_prob("linear", 20, 10)


def test_fused_sequence_refuses_nan_and_empty_batches():
    w = _lstm_weights()
    x = torch.randn(5, 6, 3)
    bad = x.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite; found 1 non-finite value\(s\), the first \(nan\) at index \(1, 2, 0\)"):
        fused_sequence("lstm", bad, *w)
    with pytest.raises(ValueError, match=r"x must hold at least one sequence \(N >= 1\)"):
        fused_sequence("lstm", x[:0], *w)
    h0 = torch.zeros(2, 5, 4)
    h0[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="h0 must be finite"):
        fused_sequence("lstm", x, *w, h0=h0)
    assert torch.isfinite(fused_sequence("lstm", x, *w)).all()


def test_zoneout_refuses_a_keep_mask_that_is_not_a_dropout_mask():
    cell = ZoneoutRNNCell(4, 8, zoneout=0.1, dropout=0.2).train()
    x, h = torch.randn(3, 4), torch.zeros(3, 8)
    with pytest.raises(ValueError, match="keep_mask must hold 0 .* or the scale 1 / \\(1 - p\\)"):
        cell(x, h, keep_mask=torch.full((3, 8), 0.9))
    cell(x, h, keep_mask=cell.dropout_mask(3))  # the real mask is accepted
    with pytest.raises(ValueError, match="keep_mask must hold 0"):
        regularised_step(torch.zeros(3, 8), h, torch.zeros(8, 8), torch.zeros(8), zoneout=0.0,
                         keep_mask=-torch.ones(3, 8), training=True)


def test_stacked_cell_index_is_checked():
    model = StackedRNN("gru", 4, 8, num_layers=2)
    assert model.cell(1) is model.cell(1, 0)
    with pytest.raises(ValueError, match=r"layer must be in \[0, num_layers=2\); got 5"):
        model.cell(5)
    with pytest.raises(ValueError, match="direction must be 0 .* unidirectional stack; got 1"):
        model.cell(0, 1)


def test_char_training_refuses_an_evaluation_schedule_without_a_function():
    import numpy as np

    from companion.nn.zoneout import CharLMEnsemble, train_char_ensemble

    with pytest.raises(ValueError, match="eval_every=5 asks for an evaluation every 5 steps, "
                                         "but eval_fn is None"):
        train_char_ensemble(CharLMEnsemble(5, 4, seeds=[0]), np.arange(200) % 5, steps=2,
                            lr=1e-3, eval_every=5)
