"""Pointer network and vocabulary decoder (companion.nn.pointer) and their stored sweep."""

import json

import numpy as np
import pytest
import torch

from companion.nn.pointer import (
    PointerSorter,
    identity_baseline,
    real_sort_task,
    sort_scores,
    sort_task,
    train_sorter,
)


def test_sort_task_draws_distinct_numbers_and_their_sorting_order():
    tok, order = sort_task(200, 7, 20, np.random.default_rng(3))
    assert tok.shape == order.shape == (200, 7) and tok.dtype == np.int64
    assert tok.min() >= 0 and tok.max() < 20
    assert all(len(set(r)) == 7 for r in tok.tolist())
    srt = np.take_along_axis(tok, order, 1)
    assert np.all(np.diff(srt, axis=1) > 0)
    again, _ = sort_task(200, 7, 20, np.random.default_rng(3))
    assert np.array_equal(tok, again)


def test_scores_and_the_input_order_baseline():
    tok = np.array([[1, 2, 3], [3, 1, 2]])
    order = np.argsort(tok, axis=1)
    assert identity_baseline(tok, order) == (0.5, 0.5)
    em, pp = sort_scores(np.array([[1, 2, 3], [1, 3, 2]]), tok, order)
    assert em == pytest.approx(0.5) and pp == pytest.approx(4 / 6)
    em, pp = sort_scores(np.stack([np.sort(tok, 1), tok]), tok, order)  # member axis
    assert np.allclose(em, [1.0, 0.5]) and np.allclose(pp, [1.0, 0.5])
    with pytest.raises(ValueError, match="pred_tokens"):
        sort_scores(np.zeros((2, 4)), tok, order)


def test_gru_step_equals_torch_grucell():
    model = PointerSorter(5, 6, seeds=[2], dtype=torch.float64)
    cell = torch.nn.GRUCell(7, 5).double()
    with torch.no_grad():
        cell.weight_ih.copy_(model.enc_w_ih[0])
        cell.weight_hh.copy_(model.enc_w_hh[0])
        cell.bias_ih.copy_(model.enc_b_ih[0])
        cell.bias_hh.copy_(model.enc_b_hh[0])
    x = torch.randn(1, 3, 7, dtype=torch.float64)
    h = torch.randn(1, 3, 5, dtype=torch.float64)
    got = model._gru(x, h, model.enc_w_ih, model.enc_w_hh, model.enc_b_ih, model.enc_b_hh)
    torch.testing.assert_close(got[0], cell(x[0], h[0]), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("output", ["pointer", "vocab"])
def test_members_are_independent_single_models(output):
    tok, order = (torch.as_tensor(a) for a in sort_task(4, 5, 9, np.random.default_rng(0)))
    ens = PointerSorter(6, 9, output=output, seeds=[3, 1, 3], dtype=torch.float64)
    out = ens(tok, order)
    width = 5 if output == "pointer" else 9
    assert out.shape == (3, 4, 5, width)
    for m, s in enumerate([3, 1, 3]):
        single = PointerSorter(6, 9, output=output, seeds=[s], dtype=torch.float64)
        torch.testing.assert_close(out[m], single(tok, order)[0], rtol=1e-12, atol=1e-13)
    loss = ens.loss(tok, order)
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    g = torch.autograd.grad(loss[1], ens.att_v)[0]
    assert g[0].abs().max() == 0 and g[2].abs().max() == 0 and g[1].abs().max() > 0


def test_pointer_and_vocab_models_share_their_initial_weights():
    p = PointerSorter(4, 8, output="pointer", seeds=[5])
    v = PointerSorter(4, 8, output="vocab", seeds=[5])
    for name, par in p.named_parameters():
        torch.testing.assert_close(par, getattr(v, name), rtol=0, atol=0)
    assert v.parameter_count() == p.parameter_count() + 8 * 2 * 4 + 8


@pytest.mark.parametrize("output", ["pointer", "vocab"])
def test_loss_gradient_matches_finite_differences(output):
    torch.manual_seed(0)
    tok, order = (torch.as_tensor(a) for a in sort_task(2, 4, 7, np.random.default_rng(1)))
    model = PointerSorter(3, 7, output=output, seeds=[0], dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def loss_of(*ps):
        logits = torch.func.functional_call(model, dict(zip(names, ps)), (tok, order))
        target = order if output == "pointer" else torch.gather(tok, 1, order)
        logp = torch.log_softmax(logits, -1)
        return -torch.gather(logp, 3, target[None, ..., None]).mean()

    assert torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-6)
    # and the module's own loss agrees with this one
    torch.testing.assert_close(model.loss(tok, order)[0], loss_of(*params).detach())


def test_decode_feeds_back_and_masking_gives_a_permutation():
    tok = torch.as_tensor(sort_task(6, 5, 10, np.random.default_rng(2))[0])
    model = PointerSorter(4, 10, seeds=[0, 1])
    out = model.decode(tok, mask_chosen=True)
    assert out.shape == (2, 6, 5)
    for m in range(2):
        for r in range(6):
            assert sorted(out[m, r].tolist()) == sorted(tok[r].tolist())
    vocab = PointerSorter(4, 10, output="vocab", seeds=[0])
    assert vocab.decode(tok).shape == (1, 6, 5)
    with pytest.raises(ValueError, match="mask_chosen"):
        vocab.decode(tok, mask_chosen=True)


def test_training_learns_short_sorting_and_is_reproducible():
    def run():
        model = PointerSorter(16, 10, seeds=[0, 0])
        losses = train_sorter(model, steps=150, lr=[3e-3, 1e-2], lengths=(3, 4), batch=32)
        return model, losses
    model, losses = run()
    assert np.all(np.isfinite(losses))
    assert losses[-20:].mean(0).max() < 0.7 * losses[:5].mean(0).min()
    _, again = run()
    assert np.array_equal(losses, again)
    tok, order = sort_task(200, 4, 10, np.random.default_rng(9))
    em, pp = sort_scores(model.decode(torch.as_tensor(tok)).numpy(), tok, order)
    assert pp[1] > identity_baseline(tok, order)[1] + 0.3


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="output"):
        PointerSorter(4, 10, output="pointers")
    with pytest.raises(ValueError, match="seeds"):
        PointerSorter(4, 10, seeds=[])
    with pytest.raises(ValueError, match="length"):
        sort_task(3, 12, 10, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        sort_task(3, 2, 10, 0)
    model = PointerSorter(4, 10)
    with pytest.raises(TypeError, match="int64"):
        model.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[0, K=10\)"):
        model.decode(torch.full((2, 3), 10, dtype=torch.int64))
    with pytest.raises(ValueError, match="tokens must be"):
        model.decode(torch.zeros(3, 2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="lengths"):
        train_sorter(model, steps=1, lr=1e-3, lengths=(3, 20))
    with pytest.raises(TypeError, match="PointerSorter"):
        train_sorter(torch.nn.Linear(2, 2), steps=1, lr=1e-3)


def test_sweep_tiny_writes_every_run(tmp_path):
    from experiments import pointer_sweep as sw

    assert sw.main(["--tiny", "--out-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "pointer_sweep.json").read_text())
    cfg = res["config"]
    expected = {(m, lr, s) for m in sw.MODELS for lr in cfg["lr_grid"][m] for s in cfg["seeds"]}
    assert {(r["model"], r["lr"], r["seed"]) for r in res["runs"]} == expected
    for r in res["runs"]:
        assert set(r["test_exact"]) == {str(n) for n in cfg["test_lengths"]}
        assert all(0 <= v <= 1 for v in r["test_position"].values())
    assert set(res["chosen_lr"]) == set(sw.MODELS)
    assert res["timing"]["cpu_s"] >= 0


def test_stored_sweep_is_fair_and_within_budget():
    from companion.data.results import load_results

    res = load_results("pointer_sweep")
    cfg = res["config"]
    assert len(cfg["seeds"]) >= 5
    for m in cfg["models"]:
        grid = cfg["lr_grid"][m]
        assert len(grid) >= 3
        assert res["summary"][m]["inside"], f"{m}'s chosen rate is at the edge of its grid"
        assert res["summary"][m]["n"] == len(cfg["seeds"])
    assert max(cfg["test_lengths"]) > cfg["train_lengths"][1]
    assert res["timing"]["cpu_s"] < 900
    assert all(r["valid_exact"] == r["valid_exact"] for r in res["runs"])  # no NaN


def test_beyond_figures_draw_and_reject_bad_shapes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.plots.beyond import (
        pointer_attention_figure,
        pointer_diagram,
        regulariser_curves_figure,
        regulariser_rates_figure,
        sort_length_figure,
    )

    rng = np.random.default_rng(0)
    figs = [pointer_diagram([0.3, 0.1, 0.2]),
            sort_length_figure([5, 10], {"pointer": (rng.random((2, 3)), rng.random((2, 3)))},
                               baseline=([0, 0], [0.2, 0.1]), train_max=7),
            pointer_attention_figure(np.eye(3), [3, 1, 2], [1, 2, 3]),
            regulariser_curves_figure([1, 2], {"none": rng.random((3, 2))},
                                      train_curves={"none": rng.random((3, 2))}),
            regulariser_rates_figure({"zoneout": [0.1, 0.2]}, {"zoneout": rng.random((2, 3))},
                                     none=0.5)]
    for f in figs:
        assert f.axes
        plt.close(f)
    with pytest.raises(ValueError, match="values"):
        pointer_diagram([0.5])
    with pytest.raises(ValueError, match="scores"):
        sort_length_figure([5, 10], {"pointer": (rng.random((3, 3)), rng.random((3, 3)))})
    with pytest.raises(ValueError, match="probs"):
        pointer_attention_figure(np.eye(3), [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="curves"):
        regulariser_curves_figure([1, 2, 3], {"none": rng.random((3, 2))})
    with pytest.raises(ValueError, match="scores"):
        regulariser_rates_figure({"zoneout": [0.1, 0.2]}, {"zoneout": rng.random((3, 3))})


# ---------------------------------------------------------------- density and real values
def test_window_draws_each_sequence_from_a_run_of_consecutive_values():
    pool = [k for k in range(30) if k % 5 != 2]
    tok, order = sort_task(200, 4, 30, np.random.default_rng(0), values=pool, window=6)
    idx = np.searchsorted(pool, tok)                   # positions in the pool
    assert np.all(np.isin(tok, pool))
    assert np.all(idx.max(axis=1) - idx.min(axis=1) < 6)
    assert np.all(np.diff(np.take_along_axis(tok, order, 1), axis=1) > 0)
    assert idx.min() == 0 and idx.max() == len(pool) - 1   # every start is possible
    with pytest.raises(ValueError, match="window"):
        sort_task(2, 4, 30, np.random.default_rng(0), window=3)
    with pytest.raises(ValueError, match="window"):
        sort_task(2, 4, 30, np.random.default_rng(0), window=31)


def test_real_sort_task_and_a_value_only_pointer():
    x, order = real_sort_task(5, 6, np.random.default_rng(1))
    assert x.dtype == np.float64 and np.all((0 <= x) & (x < 1))
    assert np.all(np.diff(np.take_along_axis(x, order, 1), axis=1) > 0)
    model = PointerSorter(4, 2, output="pointer", inputs="value", seeds=[0, 1])
    assert model.input_size == 1 and model.enc_w_ih.shape == (2, 12, 1)
    out = model.decode(torch.as_tensor(x))
    assert out.shape == (2, 5, 6) and out.is_floating_point()
    assert np.all(np.isin(out.numpy(), x))             # a pointer emits input values only
    loss = train_sorter(model, steps=3, lr=1e-2, lengths=(3, 5), batch=4,
                        sampler=real_sort_task)
    assert loss.shape == (3, 2) and np.all(np.isfinite(loss))
    # an integer model with the value alone sees k / (K - 1) and nothing else
    ints = PointerSorter(4, 11, inputs="value", seeds=[0])
    assert torch.allclose(ints.features(torch.tensor([[0, 5, 10]])),
                          torch.tensor([[[0.0], [0.5], [1.0]]]))


def test_real_values_and_bad_inputs_raise_clear_errors():
    x = torch.as_tensor(real_sort_task(2, 3, np.random.default_rng(0))[0])
    with pytest.raises(TypeError, match="vocabulary has no class"):
        PointerSorter(4, 10, output="vocab", inputs="value").decode(x)
    with pytest.raises(TypeError, match="inputs='value'"):
        PointerSorter(4, 10, output="pointer").decode(x)
    with pytest.raises(ValueError, match="finite"):
        PointerSorter(4, 2, inputs="value").decode(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="inputs must be"):
        PointerSorter(4, 10, inputs="code")
    with pytest.raises(ValueError, match="sampler"):
        train_sorter(PointerSorter(4, 10), steps=1, lr=1e-3, sampler=3)
    with pytest.raises(ValueError, match="sampler"):
        train_sorter(PointerSorter(4, 10), steps=1, lr=1e-3, sampler=real_sort_task,
                     values=[1, 2, 3])
    with pytest.raises(TypeError, match="Generator"):
        real_sort_task(2, 3, 0)


def test_density_sweep_tiny_writes_every_run(tmp_path):
    from experiments import pointer_density_sweep as sw

    assert sw.main(["--tiny", "--workers", "1", "--out-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "pointer_density_sweep.json").read_text())
    cfg = res["config"]
    expected = {(a, lr, s) for a in cfg["arms"] for lr in cfg["lr_grid"][a]
                for s in cfg["seeds"]}
    assert {(r["model"], r["lr"], r["seed"]) for r in res["runs"]} == expected
    cells = {f"{n}/{W}" for n, W in cfg["cells"]}
    for r in res["runs"]:
        want = {str(n) for n in cfg["real_lengths"]} if r["model"] == "pointer_real" else cells
        assert set(r["test_exact"]) == want
        if r["model"] != "vocab":
            assert r["diagnostics"] and all(0 <= d["p_right"] <= 1
                                            for d in r["diagnostics"].values())
    for a in cfg["arms"]:
        s = res["summary"][a]
        assert s["lr"] in cfg["lr_grid"][a] and set(s["by_lr"]) == {
            str(lr) for lr in cfg["lr_grid"][a]}
    assert res["timing"]["cpu_s"] >= 0 and res["timing"]["wall_s"] >= 0


def test_stored_density_sweep_is_fair_and_within_budget():
    from companion.data.results import load_results
    from experiments.pointer_density_sweep import summarise

    res = load_results("pointer_density_sweep")
    cfg = res["config"]
    assert len(cfg["seeds"]) >= 5
    for a in cfg["arms"]:
        grid = cfg["lr_grid"][a]
        assert len(grid) >= 3
        s = res["summary"][a]
        assert s == summarise(cfg, a, res["runs"])          # recomputed from the runs
        assert s["inside"], f"{a}'s chosen rate is at the edge of its grid"
        assert all(e["n"] == len(cfg["seeds"]) for e in s["by_lr"].values())
    # held-out numbers never appear as answers the vocabulary decoder gets right
    vocab = res["summary"]["vocab"]["by_lr"][str(res["summary"]["vocab"]["lr"])]
    assert all(v[2] == 0 for v in vocab["unseen_heldout_position"].values())
    assert res["timing"]["cpu_s"] < 600      # one idle 2-core machine: two workers
