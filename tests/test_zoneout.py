"""Zoneout and recurrent dropout (companion.nn.zoneout) and their stored sweep."""

import json

import numpy as np
import pytest
import torch

from companion.nn.zoneout import (
    CharLMEnsemble,
    ZoneoutRNNCell,
    regularised_step,
    train_char_ensemble,
)


def _copied_torch_cell(cell):
    ref = torch.nn.RNNCell(cell.input_size, cell.hidden_size).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name).copy_(getattr(cell, name))
    return ref


@pytest.mark.parametrize("train", [True, False])
def test_rate_zero_equals_the_plain_torch_cell(train):
    torch.manual_seed(0)
    cell = ZoneoutRNNCell(3, 5).double().train(train)
    ref = _copied_torch_cell(cell)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=1e-13, atol=1e-14)
    # a mask of ones (dropout 0) changes nothing either
    torch.testing.assert_close(cell(x, h, keep_mask=torch.ones(4, 5, dtype=torch.float64)),
                               ref(x, h), rtol=1e-13, atol=1e-14)


def test_eval_mode_is_deterministic_and_uses_the_expectation():
    torch.manual_seed(1)
    cell = ZoneoutRNNCell(3, 5, zoneout=0.3, dropout=0.4).double().eval()
    ref = _copied_torch_cell(cell)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    a, b = cell(x, h), cell(x, h)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, 0.3 * h + 0.7 * ref(x, h), rtol=1e-13, atol=1e-14)


def test_training_zoneout_keeps_each_unit_or_takes_the_new_value():
    torch.manual_seed(2)
    cell = ZoneoutRNNCell(3, 50, zoneout=0.25).double().train()
    ref = _copied_torch_cell(cell)
    x, h = torch.randn(400, 3, dtype=torch.float64), torch.randn(400, 50, dtype=torch.float64)
    out, new = cell(x, h, generator=torch.Generator().manual_seed(0)), ref(x, h)
    kept = out == h
    assert torch.all(kept | torch.isclose(out, new, rtol=0, atol=1e-14))
    assert abs(kept.double().mean().item() - 0.25) < 0.01
    again = cell(x, h, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_dropout_mask_is_per_sequence_and_unbiased():
    cell = ZoneoutRNNCell(2, 100, dropout=0.2)
    m = cell.dropout_mask(300, generator=torch.Generator().manual_seed(0))
    assert m.shape == (300, 100)
    vals = set(torch.unique(m).tolist())
    assert vals <= {0.0, 1.0 / 0.8} and len(vals) == 2
    assert abs(m.mean().item() - 1.0) < 0.02
    cell.train()
    with pytest.raises(ValueError, match="keep_mask"):
        cell(torch.zeros(3, 2), torch.zeros(3, 100))


def test_regularised_step_gradient_matches_finite_differences():
    torch.manual_seed(3)
    gi = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 4, dtype=torch.float64) > 0.3).double() / 0.7
    for training in (False, True):
        def f(gi, h, w, b):
            return regularised_step(gi, h, w, b, zoneout=0.2, keep_mask=mask,
                                    training=training,
                                    generator=torch.Generator().manual_seed(5))
        assert torch.autograd.gradcheck(f, (gi, h, w, b), eps=1e-6, atol=1e-7)


def test_ensemble_member_with_rates_zero_equals_torch_rnn_and_linear():
    K, H = 7, 6
    ens = CharLMEnsemble(K, H, seeds=[4, 2], zoneout=[0.0, 0.3], dropout=[0.0, 0.2]).double()
    ens.eval()
    ids = torch.as_tensor(np.random.default_rng(0).integers(0, K, size=(3, 9)))
    logits, _ = ens(ids)
    torch.manual_seed(4)
    rnn, lin = torch.nn.RNN(K, H, batch_first=True).double(), torch.nn.Linear(H, K).double()
    ref = lin(rnn(torch.nn.functional.one_hot(ids, K).double())[0])
    torch.testing.assert_close(logits[0], ref, rtol=1e-12, atol=1e-12)
    bpc = ens.bits_per_char(np.random.default_rng(1).integers(0, K, size=200), streams=4,
                            chunk=16)
    assert bpc.shape == (2,) and np.all(np.isfinite(bpc))
    assert np.array_equal(bpc, ens.bits_per_char(
        np.random.default_rng(1).integers(0, K, size=200), streams=4, chunk=16))


def test_ensemble_carries_state_across_chunks_in_bits_per_char():
    ens = CharLMEnsemble(5, 4, seeds=[0]).double()
    ids = np.random.default_rng(2).integers(0, 5, size=161)
    assert np.allclose(ens.bits_per_char(ids, streams=2, chunk=7),
                       ens.bits_per_char(ids, streams=2, chunk=80), rtol=0, atol=1e-12)


def test_training_lowers_the_loss_and_is_reproducible():
    ids = np.tile(np.arange(6), 60)

    def run():
        ens = CharLMEnsemble(6, 8, seeds=[0, 1], zoneout=[0.0, 0.2], dropout=[0.3, 0.0])
        return train_char_ensemble(ens, ids, steps=60, lr=1e-2, seq_len=12, batch=8)[0]
    a, b = run(), run()
    assert np.array_equal(a, b) and np.all(np.isfinite(a))
    assert np.all(a[-5:].mean(0) < 0.5 * a[:3].mean(0))


def test_bad_rates_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="zoneout"):
        ZoneoutRNNCell(2, 3, zoneout=1.0)
    with pytest.raises(ValueError, match="zoneout"):
        ZoneoutRNNCell(2, 3, zoneout=-0.1)
    with pytest.raises(ValueError, match="dropout rates"):
        CharLMEnsemble(5, 4, seeds=[0, 1], dropout=[0.1, 1.0])
    with pytest.raises(ValueError, match="one rate per member"):
        CharLMEnsemble(5, 4, seeds=[0, 1], zoneout=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="x must be"):
        ZoneoutRNNCell(2, 3)(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="h must be"):
        ZoneoutRNNCell(2, 3)(torch.zeros(4, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="train_ids"):
        train_char_ensemble(CharLMEnsemble(5, 4, seeds=[0]), np.arange(5), steps=1, lr=1e-3)


def sw_members(cfg):
    from experiments.zoneout_sweep import members

    return members(cfg)


def test_stored_sweep_is_fair_and_within_budget():
    from companion.data.results import load_results

    res = load_results("zoneout_sweep")
    cfg = res["config"]
    assert len(cfg["seeds"]) >= 5
    # the headline protocol is early stopping: every choice inside its grids there
    for name, s in res["summary_early"].items():
        assert s["n"] == len(cfg["seeds"])
        assert s["lr_inside"], f"{name}'s chosen learning rate is at the edge of its grid"
        if name != "none":
            assert s["rate_inside"], f"{name}'s chosen rate is at the edge of its grid"
    # the fixed-budget protocol is reported with its flags (the chapter names the edge)
    for s in res["summary"].values():
        assert isinstance(s["lr_inside"], bool) and s["n"] == len(cfg["seeds"])
    assert len(res["runs"]) == len(sw_members(cfg))
    assert res["timing"]["cpu_s"] < 900
    assert all(np.isfinite(r["valid_bpc"]) for r in res["runs"])


def test_sweep_tiny_writes_every_run(tmp_path):
    from experiments import zoneout_sweep as sw

    assert sw.main(["--tiny", "--out-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "zoneout_sweep.json").read_text())
    assert len(res["runs"]) == len(sw.members(res["config"]))
    assert set(res["summary"]) == {"none", "zoneout", "dropout"}
