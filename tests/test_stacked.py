"""companion.nn.stacked against torch.nn.RNN/LSTM/GRU with copied weights (float64)."""

import numpy as np
import pytest
import torch

from companion.nn.cells import GRUCell, LSTMCell, RNNCell
from companion.nn.stacked import (Bidirectional, DeepReadout, StackedRNN, Tagger,
                                  copy_stacked_from_torch, count_parameters, run_cell)

TORCH = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
D, H, N, T = 3, 4, 2, 5


def _pair(kind, layers, bi, seed=0):
    torch.manual_seed(seed)
    ref = TORCH[kind](D, H, layers, batch_first=True, bidirectional=bi).double()
    mine = copy_stacked_from_torch(
        StackedRNN(kind, D, H, layers, bidirectional=bi, dtype=torch.float64), ref)
    return ref, mine


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_parity_outputs_states_and_every_gradient(kind, layers, bi):
    ref, mine = _pair(kind, layers, bi)
    assert [n for n, _ in ref.named_parameters()] == [n for n, _ in mine.named_parameters()]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, T, D, dtype=torch.float64, generator=g)
    rows = layers * (2 if bi else 1)
    h0 = torch.randn(rows, N, H, dtype=torch.float64, generator=g)
    state = (h0, torch.randn(rows, N, H, dtype=torch.float64, generator=g)) \
        if kind == "lstm" else h0
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [m(xi, state) for m, xi in zip((ref, mine), xs)]
    (o_ref, s_ref), (o_mine, s_mine) = outs
    assert o_mine.shape == (N, T, H * (2 if bi else 1))
    torch.testing.assert_close(o_mine, o_ref, rtol=0, atol=1e-12)
    if kind == "lstm":
        assert s_mine[0].shape == s_mine[1].shape == (rows, N, H)
        torch.testing.assert_close(s_mine[0], s_ref[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(s_mine[1], s_ref[1], rtol=0, atol=1e-12)
        s_ref, s_mine = s_ref[0] + 0.5 * s_ref[1], s_mine[0] + 0.5 * s_mine[1]
    else:
        assert s_mine.shape == (rows, N, H)
        torch.testing.assert_close(s_mine, s_ref, rtol=0, atol=1e-12)
    w = torch.randn(o_ref.shape, dtype=torch.float64, generator=g)
    v = torch.randn(s_ref.shape, dtype=torch.float64, generator=g)
    for o, s in ((o_ref, s_ref), (o_mine, s_mine)):
        ((o * w).sum() + (s * v).sum()).backward()
    torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=0, atol=1e-12)
    for (name, p_ref), (_, p_mine) in zip(ref.named_parameters(), mine.named_parameters()):
        assert p_mine.grad is not None, name
        assert torch.isfinite(p_mine.grad).all(), name
        torch.testing.assert_close(p_mine.grad, p_ref.grad, rtol=0, atol=1e-11, msg=name)


def test_bidirectional_last_output_is_backward_first_step():
    ref, mine = _pair("gru", 1, True)
    x = torch.randn(N, T, D, dtype=torch.float64)
    out, h_n = mine(x)
    torch.testing.assert_close(out[:, 0, H:], h_n[1])      # backward final state at t=0
    torch.testing.assert_close(out[:, -1, :H], h_n[0])     # forward final state at t=T-1
    assert not torch.allclose(out[:, -1, H:], h_n[1])


def test_bidirectional_wrapper_equals_one_layer_stack():
    ref, mine = _pair("lstm", 1, True, seed=3)
    wrap = Bidirectional(LSTMCell(D, H), LSTMCell(D, H)).double()
    for cell, suffix in ((wrap.forward_cell, "_l0"), (wrap.backward_cell, "_l0_reverse")):
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, p).data = getattr(ref, p + suffix).detach().clone()
    x = torch.randn(N, T, D, dtype=torch.float64)
    out, ((h_f, _), (h_b, _)) = wrap(x)
    o_ref, (h_n, _) = ref(x)
    torch.testing.assert_close(out, o_ref)
    torch.testing.assert_close(torch.stack([h_f, h_b]), h_n)


def test_bidirectional_default_backward_cell_has_own_weights():
    wrap = Bidirectional(GRUCell(2, 3))
    assert not torch.equal(wrap.forward_cell.weight_hh, wrap.backward_cell.weight_hh)
    assert count_parameters(wrap) == 2 * count_parameters(GRUCell(2, 3))
    from companion.nn.stacked import DeepTransition
    deep = Bidirectional(DeepTransition(GRUCell(2, 3), 2))
    assert not torch.equal(deep.forward_cell.layers[0].weight,
                           deep.backward_cell.layers[0].weight)


def test_run_cell_reverse_reads_right_to_left():
    cell = RNNCell(1, 2).double()
    x = torch.randn(1, 4, 1, dtype=torch.float64)
    out, fin = run_cell(cell, x, reverse=True)
    out_flipped, fin2 = run_cell(cell, x.flip(1))
    torch.testing.assert_close(out, out_flipped.flip(1))
    torch.testing.assert_close(fin, fin2)
    torch.testing.assert_close(out[:, 0], fin)


@pytest.mark.filterwarnings("ignore:dropout option adds dropout")
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_dropout_off_in_eval_and_between_layers_only(layers):
    torch.manual_seed(0)
    ref = torch.nn.GRU(D, H, layers, batch_first=True, dropout=0.5).double()
    mine = copy_stacked_from_torch(
        StackedRNN("gru", D, H, layers, dropout=0.5, dtype=torch.float64), ref)
    x = torch.randn(N, T, D, dtype=torch.float64)
    ref.eval(), mine.eval()
    torch.testing.assert_close(mine(x)[0], ref(x)[0])
    # training mode: count the dropout masks drawn (torch: one per layer but the last)
    calls = []
    orig = torch.nn.functional.dropout

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    mine.train()
    torch.nn.functional.dropout = spy
    try:
        mine(x)
    finally:
        torch.nn.functional.dropout = orig
    assert len(calls) == layers - 1
    if layers > 1:  # training output differs from eval output; the top layer is not dropped
        torch.manual_seed(1)
        assert not torch.allclose(mine(x)[0], ref(x)[0])


def test_residual_adds_input_where_sizes_agree():
    torch.manual_seed(0)
    plain = StackedRNN("rnn", D, H, 2, dtype=torch.float64)
    res = StackedRNN("rnn", D, H, 2, residual=True, dtype=torch.float64)
    res.load_state_dict(plain.state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64)
    bottom, _ = run_cell(plain.cell(0), x)
    top, _ = run_cell(plain.cell(1), bottom)
    torch.testing.assert_close(res(x)[0], top + bottom)
    torch.testing.assert_close(plain(x)[0], top)


def test_deep_transition_and_readout_shapes_and_count():
    m = StackedRNN("gru", D, H, 2, transition_depth=3)
    assert count_parameters(m) == count_parameters(StackedRNN("gru", D, H, 2)) \
        + 2 * 2 * (H * H + H)
    out, h_n = m(torch.zeros(N, T, D))
    assert out.shape == (N, T, H) and h_n.shape == (2, N, H)
    # the state fed back is the cell's new state passed through the extra tanh layers
    cell = m.cell(0)
    x1, h0 = torch.randn(1, D), torch.randn(1, H)
    expected = cell.cell(x1, h0)
    for lin in cell.layers:
        expected = torch.tanh(lin(expected))
    torch.testing.assert_close(cell(x1, h0), expected)
    r = DeepReadout(6, 3, depth=2, width=5)
    assert count_parameters(r) == 6 * 5 + 5 + 5 * 3 + 3


def test_deep_transition_feeds_the_deep_state_back_and_readout_follows_its_equation():
    # (11.2) over a whole sequence: h(t) = tanh(m + M tanh(b + W h(t-1) + U x(t)))
    torch.manual_seed(3)
    m = StackedRNN("rnn", D, H, 1, transition_depth=2, dtype=torch.float64)
    x = torch.randn(N, T, D, dtype=torch.float64)
    c = m.cell(0)
    U, W = c.cell.weight_ih, c.cell.weight_hh
    b = c.cell.bias_ih + c.cell.bias_hh
    M, mb = c.layers[0].weight, c.layers[0].bias
    h, hs = torch.zeros(N, H, dtype=torch.float64), []
    for t in range(T):
        h = torch.tanh(torch.tanh(x[:, t] @ U.T + h @ W.T + b) @ M.T + mb)
        hs.append(h)
    out, h_n = m(x)
    torch.testing.assert_close(out, torch.stack(hs, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n[0], hs[-1], rtol=0, atol=1e-12)
    # deep read-out: o = c + V tanh(m' + M' h)
    r = DeepReadout(H, 3, depth=2).double()
    hid, out_layer = r.net[0], r.net[2]
    z = torch.randn(N, H, dtype=torch.float64)
    expected = out_layer.bias + torch.tanh(hid.bias + z @ hid.weight.T) @ out_layer.weight.T
    torch.testing.assert_close(r(z), expected, rtol=0, atol=1e-12)


def test_deep_transition_depth_one_is_the_cell():
    torch.manual_seed(0)
    a = StackedRNN("lstm", D, H, 1, dtype=torch.float64)
    b = StackedRNN("lstm", D, H, 1, transition_depth=1, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64)
    torch.testing.assert_close(a(x)[0], b(x)[0])


def test_tagger_delay_reads_ahead_and_torch_scratch_agree():
    torch.manual_seed(0)
    t_torch = Tagger("gru", 4, 5, 3, delay=2, impl="torch", dtype=torch.float64)
    t_mine = Tagger("gru", 4, 5, 3, delay=2, impl="scratch", dtype=torch.float64)
    copy_stacked_from_torch(t_mine.encoder, t_torch.encoder)
    t_mine.readout.load_state_dict(t_torch.readout.state_dict())
    tok = torch.randint(0, 4, (3, 6))
    out = t_mine(tok)
    assert out.shape == (3, 6, 3)
    torch.testing.assert_close(out, t_torch(tok))
    # changing x[t+2] changes the logits of step t; changing x[t+3] does not
    tok2 = tok.clone()
    tok2[:, 3] = (tok2[:, 3] + 1) % 4
    diff = (t_mine(tok2) - out).abs().amax(dim=(0, 2))
    assert diff[1] > 0 and diff[0] == 0


def test_tagger_residual_torch_and_scratch_agree():
    torch.manual_seed(0)
    a = Tagger("gru", 3, 4, 2, num_layers=3, residual=True, impl="torch", dtype=torch.float64)
    b = Tagger("gru", 3, 4, 2, num_layers=3, residual=True, dtype=torch.float64)
    for i, layer in enumerate(a.encoder.layers):
        for name, p in layer.named_parameters():
            getattr(b.encoder, name.replace("_l0", f"_l{i}")).data = p.detach().clone()
    b.readout.load_state_dict(a.readout.state_dict())
    tok = torch.randint(0, 3, (2, 5))
    torch.testing.assert_close(a(tok), b(tok))


# --- bad input -------------------------------------------------------------------------


def test_time_first_input_gets_a_hint():
    m = StackedRNN("gru", D, H, 2)
    with pytest.raises(ValueError, match="transpose"):
        m(torch.zeros(T, N, 7))


def test_wrong_dtype_names_the_fix():
    m = StackedRNN("gru", D, H, 2)
    with pytest.raises(TypeError, match="float64.*float32|double|float\\(\\)"):
        m(torch.zeros(N, T, D, dtype=torch.float64))


def test_h0_in_batch_first_layout_gets_torch_layout_hint():
    m = StackedRNN("gru", D, H, 2, bidirectional=True)
    with pytest.raises(ValueError, match=r"num_layers \* num_directions=4.*transpose"):
        m(torch.zeros(N + 1, T, D), torch.zeros(N + 1, 4, H))


def test_h0_wrong_rows_and_lstm_pair():
    m = StackedRNN("lstm", D, H, 2)
    with pytest.raises(ValueError, match="num_layers \\* num_directions=2"):
        m(torch.zeros(N, T, D), (torch.zeros(1, N, H), torch.zeros(2, N, H)))
    with pytest.raises(TypeError, match="pair"):
        m(torch.zeros(N, T, D), torch.zeros(2, N, H))
    with pytest.raises(ValueError, match="c0"):
        m(torch.zeros(N, T, D), (torch.zeros(2, N, H), torch.zeros(2, N, H + 1)))


def test_constructor_and_copy_errors():
    with pytest.raises(ValueError, match="dropout"):
        StackedRNN("gru", D, H, 2, dropout=1.0)
    with pytest.raises(ValueError, match="kind"):
        StackedRNN("tcn", D, H)
    with pytest.raises(TypeError, match="bidirectional"):
        StackedRNN("gru", D, H, bidirectional=1)
    with pytest.raises(ValueError, match="configurations differ"):
        copy_stacked_from_torch(StackedRNN("gru", D, H, 2), torch.nn.GRU(D, H, 3))
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        copy_stacked_from_torch(StackedRNN("lstm", D, H), torch.nn.GRU(D, H))
    with pytest.raises(ValueError, match="delay"):
        Tagger("gru", 3, 4, 2, delay=1, bidirectional=True)
    with pytest.raises(TypeError, match="integer"):
        Tagger("gru", 3, 4, 2)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="0..2"):
        Tagger("gru", 3, 4, 2)(torch.full((2, 5), 3))


# --- the sweeps of chapters 10 and 11: code path at tiny size, stored results consistent


@pytest.mark.parametrize("name", ["bidir_sweep", "depth_sweep"])
def test_sweep_smoke_and_stored_results(name, tmp_path):
    import importlib
    import json

    import numpy as np

    from companion.data.results import load_results

    mod = importlib.import_module(f"experiments.{name}")
    assert mod.main(["--tiny", "--out-dir", str(tmp_path)]) == 0
    tiny = json.loads((tmp_path / f"{name}.json").read_text())
    def grid_of(cfg, s):  # per model (bidir) or per task (depth)
        return cfg["lr_grid"][s["model"]] if name == "bidir_sweep" else cfg["lr_grid"][s["task"]]

    assert len(tiny["runs"]) == sum(len(grid_of(tiny["config"], s)) for s in tiny["summary"]) \
        * len(mod.TINY["seeds"])
    stored = load_results(name)
    cfg = stored["config"]
    assert len(cfg["seeds"]) >= 5
    for s in stored["summary"]:
        grid = grid_of(cfg, s)
        assert len(grid) >= 3
        mine = [r for r in stored["runs"] if r["model"] == s["model"]
                and r.get("task") == s.get("task")]
        assert len(mine) == len(cfg["seeds"]) * len(grid)
        med = {lr: np.median([r["valid_acc"] for r in mine if r["lr"] == lr]) for lr in grid}
        if name == "bidir_sweep":
            assert s["lr"] == max(grid, key=lambda v: (med[v], -v))
        else:  # saturated ties broken by the mean validation accuracy
            valid = {lr: [r["valid_acc"] for r in mine if r["lr"] == lr] for lr in grid}
            assert s["lr"] == mod.choose_lr(valid)[0]
        # EXPERIMENTS.md: the grid brackets the best value (or the best is a tie that
        # includes an inside value), and the stored flag says so honestly
        ties = [v for v in grid if med[v] == med[s["lr"]]]
        assert s["inside"] == any(grid[0] < v < grid[-1] for v in ties)
        assert s["inside"], f"{s.get('task')}/{s['model']}: best lr at the grid's edge"
        test = [r["test_acc"] for r in mine if r["lr"] == s["lr"]]
        assert s["k"] == sum(a >= cfg["success"] for a in test) and s["n"] == len(test)
        assert np.isfinite(test).all()
    # a full regeneration stays within the 10-minute budget (CPU seconds of every run)
    timing = stored["timing"]
    assert timing.get("cpu_s_all_runs", timing["cpu_s"]) <= 600


def test_depth_budget_probe_smoke_and_stored(tmp_path):
    import json

    import numpy as np

    from companion.data.results import load_results
    from experiments import depth_sweep

    assert depth_sweep.main(["--tiny", "--budget-probe", "--out-dir", str(tmp_path)]) == 0
    tiny = json.loads((tmp_path / "depth_budget_probe.json").read_text())
    assert [s["model"] for s in tiny["summary"]] == depth_sweep.TINY_PROBE["models"]
    assert depth_sweep.TASKS == {"hier": True, "flat": False}  # globals restored
    stored = load_results("depth_budget_probe")
    cfg = stored["config"]
    main = load_results("depth_sweep")["config"]
    assert cfg["steps"] == 3 * main["steps"] and cfg["seeds"] == main["seeds"]
    grid = cfg["lr_grid"]["hier"]
    assert len(grid) >= 3 and len(cfg["seeds"]) >= 5
    for s in stored["summary"]:
        mine = [r for r in stored["runs"] if r["model"] == s["model"]]
        med = {lr: np.median([r["valid_acc"] for r in mine if r["lr"] == lr]) for lr in grid}
        valid = {lr: [r["valid_acc"] for r in mine if r["lr"] == lr] for lr in grid}
        assert s["lr"] == depth_sweep.choose_lr(valid)[0] and s["inside"]
        assert s["ties"] == [v for v in grid if med[v] == med[s["lr"]]]
        test = [r["test_acc"] for r in mine if r["lr"] == s["lr"]]
        assert s["k"] == sum(a >= cfg["success"] for a in test) and s["n"] == len(test) == 5


def test_choose_lr_breaks_saturated_ties_by_the_mean_then_the_smallest_rate():
    from experiments.depth_sweep import choose_lr

    stalled = [1.0, 1.0, 1.0, 1.0, 0.6]
    assert choose_lr({3e-3: stalled, 1e-2: [1.0] * 4 + [0.99], 3e-2: [1.0] * 5}) == \
        (3e-2, [3e-3, 1e-2, 3e-2])
    assert choose_lr({1e-2: [1.0] * 5, 3e-2: [1.0] * 5}) == (1e-2, [1e-2, 3e-2])
    assert choose_lr({1e-2: [0.9, 0.8, 0.7], 3e-2: [0.5, 0.6, 0.95]}) == (1e-2, [1e-2])
    with pytest.raises(ValueError, match="non-empty list"):
        choose_lr({1e-2: []})


def test_train_logged_follows_train_tagger_step_for_step():
    import types

    from companion.data.tagging import word_parity
    from companion.nn.stacked import tagging_accuracy, train_tagger
    from experiments import depth_sweep as D

    torch.set_num_threads(1)
    x, y = word_parity(40, 8, hierarchical=True, vocab=4, seed=3)
    for name in ("depth3", "res4"):
        a, b = D.make_model(name, 1), D.make_model(name, 1)
        losses = train_tagger(a, x, y, steps=6, lr=3e-2, batch_size=8, seed=2)
        seen = []
        logged, ck, gb, gt = D.train_logged(
            b, x, y, steps=6, lr=3e-2, batch_size=8, seed=2, every=3, window=2,
            evaluate=lambda m: {"acc": tagging_accuracy(m, x, y)})
        assert logged == losses
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        assert [c["step"] for c in ck] == [3, 6] and len(gb) == len(gt) == 3
        assert all(g > 0 for g in gb + gt)
    with pytest.raises(TypeError, match="impl='torch'"):
        D.input_weights(types.SimpleNamespace(encoder=torch.nn.Linear(2, 2)))


def test_depth_budget_arm_smoke_and_stored(tmp_path):
    import json

    from companion.data.results import load_results
    from experiments import depth_sweep

    assert depth_sweep.main(["--tiny", "--budget-4x", "--out-dir", str(tmp_path)]) == 0
    tiny = json.loads((tmp_path / "depth_budget_4x.json").read_text())
    cfg = depth_sweep.TINY_ARM
    n_ck = cfg["steps"] // cfg["checkpoint_every"]
    assert len(tiny["runs"]) == len(cfg["models"]) * len(cfg["lr_grid"]["hier"]) * \
        len(cfg["seeds"])
    assert len(tiny["summary"]) == len(cfg["models"]) * n_ck
    with pytest.raises(ValueError, match="jobs"):
        depth_sweep.budget_arm(cfg, jobs=0)
    stored = load_results("depth_budget_4x")
    cfg = stored["config"]
    main = load_results("depth_sweep")["config"]
    assert cfg["steps"] >= 4 * main["steps"] and cfg["seeds"] == main["seeds"]
    grid = cfg["lr_grid"]["hier"]
    assert len(grid) >= 3 and len(cfg["seeds"]) >= 5
    assert stored["timing"]["cpu_s_all_runs"] <= 2 * 600  # two workers: <= 10 min of wall
    for s in stored["summary"]:
        mine = [r for r in stored["runs"] if r["model"] == s["model"]]
        i = s["steps"] // cfg["checkpoint_every"] - 1
        valid = {lr: [r["checkpoints"][i]["valid_acc"] for r in mine if r["lr"] == lr]
                 for lr in grid}
        assert s["lr"] == depth_sweep.choose_lr(valid)[0]
        test = [r["checkpoints"][i]["test_acc"] for r in mine if r["lr"] == s["lr"]]
        assert s["k"] == sum(a >= cfg["success"] for a in test) and s["n"] == len(test) == 5
    # every run logged its gradients over the whole budget, and the steps it was evaluated at
    for r in stored["runs"]:
        assert len(r["grad_bottom"]) == len(r["grad_top"]) == cfg["steps"] // cfg["grad_window"]
        assert [c["step"] for c in r["checkpoints"]] == list(
            range(cfg["checkpoint_every"], cfg["steps"] + 1, cfg["checkpoint_every"]))


# --- companion.plots.bidirectional (pure functions)


def test_bidirectional_plots_return_figures_and_check_shapes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.plots import bidirectional as P

    figs = [P.bidirectional_graph_figure(3), P.depth_graph_figure(2, 2, 2),
            P.lookahead_figure([0, 1, 11], [[0.4, 0.38], [1, 1], [1, 0.99]], ["a", "b", "c"],
                               ceiling=[0.375, 1, 1], baseline=0.1),
            P.depth_results_figure([1, 2], np.ones((2, 2, 3)) * 0.9, ["x", "y"],
                                   params=[10, 20], times=[1.0, 2.1]),
            P.gradient_depth_figure([1, 2, 4], [[1e-2, 1e-3, 1e-4], [1e-2, 1e-2, 2e-2]],
                                    ["plain", "residual"])]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
        plt.close(fig)
    with pytest.raises(ValueError, match="accuracy must be"):
        P.lookahead_figure([0, 1], [[0.5, 0.5]], ["a", "b"])
    with pytest.raises(ValueError, match="norms must be"):
        P.gradient_depth_figure([1, 2], [[1.0, 2.0, 3.0]], ["a"])
    with pytest.raises(ValueError):
        P.gradient_depth_figure([1, 2], [[1.0, np.nan]], ["a"])
