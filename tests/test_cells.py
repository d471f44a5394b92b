"""Parity of the from-scratch cells and layer with torch.nn, outputs AND gradients."""

import pytest
import torch

from companion.nn.cells import GRUCell, LSTMCell, RNNCell, copy_from_torch, make_cell
from companion.nn.layers import Recurrent, SequenceModel, check_sequence_batch

TORCH_LAYERS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}
N, T, D, H = 3, 7, 4, 5


def _pair(kind, seed=0):
    torch.manual_seed(seed)
    ref = TORCH_LAYERS[kind](D, H, batch_first=True).double()
    mine = Recurrent(copy_from_torch(make_cell(kind, D, H), ref))
    return ref, mine


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_layer_outputs_match_torch(kind):
    ref, mine = _pair(kind)
    x = torch.randn(N, T, D, dtype=torch.float64)
    out_ref, state_ref = ref(x)
    out, state = mine(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    if kind == "lstm":
        torch.testing.assert_close(state[0], state_ref[0][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state[1], state_ref[1][0], rtol=1e-12, atol=1e-12)
    else:
        torch.testing.assert_close(state, state_ref[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_layer_gradients_match_torch(kind):
    ref, mine = _pair(kind, seed=1)
    x = torch.randn(N, T, D, dtype=torch.float64)
    x_ref, x_mine = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(N, T, H, dtype=torch.float64)  # a loss touching every output
    (ref(x_ref)[0] * w).sum().backward()
    (mine(x_mine)[0] * w).sum().backward()
    torch.testing.assert_close(x_mine.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(getattr(mine.cell, name).grad,
                                   getattr(ref, name + "_l0").grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_matches_torch_cell_with_state(kind):
    torch.manual_seed(2)
    ref = TORCH_CELLS[kind](D, H).double()
    mine = copy_from_torch(make_cell(kind, D, H), ref)
    x = torch.randn(N, D, dtype=torch.float64)
    h = torch.randn(N, H, dtype=torch.float64)
    if kind == "lstm":
        c = torch.randn(N, H, dtype=torch.float64)
        torch.testing.assert_close(mine(x, (h, c)), ref(x, (h, c)))
    else:
        torch.testing.assert_close(mine(x, h), ref(x, h))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradcheck_against_finite_differences(kind):
    torch.manual_seed(3)
    layer = Recurrent(make_cell(kind, 2, 3)).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp)[0], (x,), eps=1e-6, atol=1e-7)


def test_parameter_names_match_torch_cells():
    for kind, cls in TORCH_CELLS.items():
        assert sorted(dict(make_cell(kind, D, H).named_parameters())) == sorted(
            dict(cls(D, H).named_parameters()))
        # shapes too, so load_state_dict works both ways
        make_cell(kind, D, H).load_state_dict(cls(D, H).state_dict())


def test_lstm_gate_order_is_i_f_g_o():
    cell = LSTMCell(1, 1)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias_ih[1] = 50.0  # forget gate fully open, everything else closed/zero
    h, c = cell(torch.zeros(1, 1), (torch.zeros(1, 1), torch.full((1, 1), 0.7)))
    assert abs(float(c.detach()) - 0.7) < 1e-6  # c = sigmoid(f) * c_prev + sigmoid(0) * tanh(0)


def test_sequence_model_scratch_equals_torch_impl():
    torch.manual_seed(4)
    a = SequenceModel("gru", 2, 6, 3, impl="torch").double()
    b = SequenceModel("gru", 2, 6, 3, impl="scratch").double()
    copy_from_torch(b.recurrent.cell, a.recurrent)
    b.readout.load_state_dict(a.readout.state_dict())
    x = torch.randn(5, 9, 2, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_forget_bias_is_added_to_forget_block(impl):
    torch.manual_seed(5)
    base = SequenceModel("lstm", 2, 4, 1, impl=impl)
    torch.manual_seed(5)
    shifted = SequenceModel("lstm", 2, 4, 1, impl=impl, forget_bias=1.0)
    get = (lambda m: m.recurrent.cell.bias_ih) if impl == "scratch" else (
        lambda m: m.recurrent.bias_ih_l0)
    diff = (get(shifted) - get(base)).detach()
    assert torch.allclose(diff[4:8], torch.ones(4)) and torch.all(diff[:4] == 0)
    assert torch.all(diff[8:] == 0)


# ---- errors -------------------------------------------------------------------------

def test_cell_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"x_t must be \(N, D=4\); got \(3, 2\)"):
        RNNCell(4, 5)(torch.zeros(3, 2))


def test_cell_rejects_numpy_and_int_inputs():
    import numpy as np
    with pytest.raises(TypeError, match="x_t must be a torch tensor"):
        GRUCell(2, 3)(np.zeros((1, 2)))
    with pytest.raises(TypeError, match="x_t must hold floats"):
        GRUCell(2, 3)(torch.zeros(1, 2, dtype=torch.long))


def test_cell_rejects_state_of_wrong_batch_or_size():
    with pytest.raises(ValueError, match="h_prev must have one row per example"):
        RNNCell(2, 3)(torch.zeros(4, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"h_prev must be \(N, H=3\)"):
        RNNCell(2, 3)(torch.zeros(4, 2), torch.zeros(4, 5))


def test_lstm_needs_a_pair_state():
    with pytest.raises(TypeError, match=r"state must be the pair \(h_prev, c_prev\)"):
        LSTMCell(2, 3)(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"c_prev must be \(N, H=3\)"):
        LSTMCell(2, 3)(torch.zeros(1, 2), (torch.zeros(1, 3), torch.zeros(1, 4)))


def test_make_cell_and_sizes_validated():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_cell("transformer", 2, 3)
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1"):
        make_cell("rnn", 2, 0)


def test_copy_from_torch_checks_kind_and_sizes():
    with pytest.raises(TypeError, match="module must be a torch.nn LSTM or LSTMCell"):
        copy_from_torch(LSTMCell(2, 3), torch.nn.GRU(2, 3))
    with pytest.raises(ValueError, match="sizes differ"):
        copy_from_torch(GRUCell(2, 3), torch.nn.GRU(2, 4))
    with pytest.raises(ValueError, match="num_layers=1"):
        copy_from_torch(GRUCell(2, 3), torch.nn.GRU(2, 3, num_layers=2))
    with pytest.raises(ValueError, match="nonlinearity='tanh'"):
        copy_from_torch(RNNCell(2, 3), torch.nn.RNN(2, 3, nonlinearity="relu"))
    with pytest.raises(TypeError, match="cell must be a companion.nn.cells cell"):
        copy_from_torch(torch.nn.GRUCell(2, 3), torch.nn.GRU(2, 3))


def test_layer_errors():
    with pytest.raises(TypeError, match="cell must be an RNNCell, LSTMCell or GRUCell"):
        Recurrent(torch.nn.GRUCell(2, 3))
    layer = Recurrent(GRUCell(2, 3))
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=2\), batch-first; got \(2, 5, 4\)"):
        layer(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"A single sequence\? Use x\[None\]"):
        layer(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="at least one time step"):
        layer(torch.zeros(3, 0, 2))
    with pytest.raises(TypeError, match="One-hot encode"):
        check_sequence_batch("x", torch.zeros(1, 2, 2, dtype=torch.long), 2)


def test_sequence_model_errors():
    with pytest.raises(ValueError, match="impl must be 'scratch' or 'torch'"):
        SequenceModel("rnn", 2, 3, 1, impl="cuda")
    with pytest.raises(ValueError, match="forget_bias applies to kind='lstm' only"):
        SequenceModel("gru", 2, 3, 1, forget_bias=1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        SequenceModel("elman", 2, 3, 1)
    with pytest.raises(TypeError, match="forget_bias must be a number"):
        SequenceModel("lstm", 2, 3, 1, forget_bias="1")


# ---- exercise checkers of chapter 6: tests/test_checkers_ch05_ch07.py ----------------


# ---- the two GRU variants -------------------------------------------------------------

def test_gru_reset_before_matches_its_equation_and_differs_from_torch():
    import numpy as np

    torch.manual_seed(6)
    after = GRUCell(D, H).double()
    before = GRUCell(D, H, reset_after=False).double()
    before.load_state_dict(after.state_dict())  # same weights
    x, h = torch.randn(N, D, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    W, U, bi, bh = after.weight_hh, after.weight_ih, after.bias_ih, after.bias_hh
    r = torch.sigmoid(x @ U[:H].T + bi[:H] + h @ W[:H].T + bh[:H])
    z = torch.sigmoid(x @ U[H:2 * H].T + bi[H:2 * H] + h @ W[H:2 * H].T + bh[H:2 * H])
    n = torch.tanh(x @ U[2 * H:].T + bi[2 * H:] + (r * h) @ W[2 * H:].T + bh[2 * H:])
    torch.testing.assert_close(before(x, h), (1 - z) * n + z * h)
    assert float((before(x, h) - after(x, h)).detach().abs().max()) > 1e-3
    assert np.isfinite(before(x, h).detach().numpy()).all()


def test_gru_variant_options_validated():
    with pytest.raises(TypeError, match="reset_after must be True"):
        GRUCell(2, 3, reset_after="yes")
    with pytest.raises(ValueError, match="apply to kind='gru' only"):
        make_cell("lstm", 2, 3, reset_after=False)
    with pytest.raises(ValueError, match="reset gate after the matrix product"):
        copy_from_torch(GRUCell(2, 3, reset_after=False), torch.nn.GRU(2, 3))
    assert make_cell("gru", 2, 3, reset_after=False).reset_after is False


def test_gru_reset_before_gradcheck():
    torch.manual_seed(7)
    layer = Recurrent(GRUCell(2, 3, reset_after=False)).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp)[0], (x,), eps=1e-6, atol=1e-7)


# ---- dtypes: float64 data into a float32 model ------------------------------------------

def test_float64_input_into_float32_modules_names_both_dtypes_and_the_fix():
    from companion.data.synthetic import adding_problem

    x_np, _ = adding_problem(4, 10, seed=0)  # NumPy: float64
    x64 = torch.as_tensor(x_np)
    model = SequenceModel("lstm", 2, 5, 1)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's parameters "
                                        r"are torch.float32.*x.float\(\)"):
        model(x64)
    with pytest.raises(TypeError, match=r"torch.as_tensor\(x_np, dtype=torch.float32\)"):
        SequenceModel("gru", 2, 5, 1, impl="torch")(x64)
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        Recurrent(RNNCell(2, 5))(x64)
    with pytest.raises(TypeError, match="x_t has dtype torch.float64"):
        GRUCell(2, 5)(x64[:, 0])
    with pytest.raises(TypeError, match="h_prev has dtype torch.float64"):
        RNNCell(2, 5)(torch.zeros(4, 2), torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="c_prev has dtype torch.float64"):
        LSTMCell(2, 5)(torch.zeros(4, 2), (torch.zeros(4, 5), torch.zeros(4, 5, dtype=torch.float64)))
    # the documented fixes work
    assert model(x64.float()).shape == (4, 1)
    assert SequenceModel("lstm", 2, 5, 1, dtype=torch.float64)(x64).dtype == torch.float64
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        SequenceModel("rnn", 2, 5, 1, dtype=torch.float16)


def test_numpy_init_is_reproducible_and_bounded():
    from companion.nn.layers import numpy_init_

    a = SequenceModel("lstm", 2, 16, 3, init_seed=3, forget_bias=1.0)
    b = SequenceModel("lstm", 2, 16, 3, init_seed=3, forget_bias=1.0)
    c = SequenceModel("lstm", 2, 16, 3, init_seed=4)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r)
        limit = 0.25 + (1.0 if name == "recurrent.cell.bias_ih" else 0.0)
        assert float(p.detach().abs().max()) <= limit + 1e-12
    t = SequenceModel("lstm", 2, 16, 3, impl="torch", init_seed=3, forget_bias=1.0)
    for p, q in zip(a.parameters(), t.parameters()):  # same draws, same layout
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="seed must be an int >= 0"):
        numpy_init_(a, -1)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        numpy_init_("model", 0)


# ---- the NumPy LSTM backward pass (companion.scratch.lstm) ------------------------------

def _lstm_problem(seed=0, N=3, T=6, D=2, H=4):
    import numpy as np

    torch.manual_seed(seed)
    ref = torch.nn.LSTM(D, H, batch_first=True).double()
    params = {n: getattr(ref, n + "_l0").detach().numpy().copy()
              for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    rng = np.random.default_rng(seed)
    data = dict(x=rng.normal(size=(N, T, D)), h0=rng.normal(size=(N, H)),
                s0=rng.normal(size=(N, H)), dhs=rng.normal(size=(N, T, H)),
                ds=rng.normal(size=(N, H)))
    return ref, params, data


@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_lstm_forward_and_backward_match_torch_autograd(seed):
    from companion.scratch.lstm import lstm_backward, lstm_forward

    ref, p, d = _lstm_problem(seed)
    hs, (h, s), cache = lstm_forward(d["x"], **p, h0=d["h0"], s0=d["s0"])
    x = torch.tensor(d["x"], requires_grad=True)
    h0 = torch.tensor(d["h0"][None], requires_grad=True)
    s0 = torch.tensor(d["s0"][None], requires_grad=True)
    out, (hT, sT) = ref(x, (h0, s0))
    torch.testing.assert_close(torch.tensor(hs), out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.tensor(s), sT[0], rtol=1e-12, atol=1e-12)
    ((out * torch.tensor(d["dhs"])).sum() + (sT[0] * torch.tensor(d["ds"])).sum()).backward()
    g = lstm_backward(d["dhs"], cache, ds_last=d["ds"])
    torch.testing.assert_close(torch.tensor(g["x"]), x.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.tensor(g["h0"]), h0.grad[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.tensor(g["s0"]), s0.grad[0], rtol=1e-10, atol=1e-12)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(torch.tensor(g[name]), getattr(ref, name + "_l0").grad,
                                   rtol=1e-10, atol=1e-12)


def test_numpy_lstm_backward_matches_finite_differences():
    import numpy as np

    from companion.scratch.lstm import lstm_backward, lstm_forward

    _, p, d = _lstm_problem(2, N=2, T=5, D=3, H=3)

    def loss(**override):
        q = {**p, **{k: v for k, v in override.items() if k in p}}
        hs, (h, s), _ = lstm_forward(override.get("x", d["x"]), **q, h0=d["h0"], s0=d["s0"])
        return float((hs * d["dhs"]).sum() + (s * d["ds"]).sum())

    _, _, cache = lstm_forward(d["x"], **p, h0=d["h0"], s0=d["s0"])
    g = lstm_backward(d["dhs"], cache, ds_last=d["ds"])
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, arr in [*p.items(), ("x", d["x"])]:
        for _ in range(6):
            idx = tuple(int(rng.integers(n)) for n in arr.shape)
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += eps
            minus[idx] -= eps
            fd = (loss(**{name: plus}) - loss(**{name: minus})) / (2 * eps)
            assert abs(fd - g[name][idx]) <= 1e-6 * max(1.0, abs(fd)), (name, idx, fd, g[name][idx])


def test_numpy_lstm_errors():
    import numpy as np

    from companion.scratch.lstm import lstm_backward, lstm_forward

    _, p, d = _lstm_problem(0)
    with pytest.raises(ValueError, match=r"weight_hh must be \(4H, H\)"):
        lstm_forward(d["x"], p["weight_ih"], p["weight_hh"][:12], p["bias_ih"], p["bias_hh"])
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=2\), batch-first"):
        lstm_forward(d["x"][..., :1], **p)
    with pytest.raises(ValueError, match="at least one time step"):
        lstm_forward(np.zeros((3, 0, 2)), **p)
    with pytest.raises(ValueError, match=r"h0 must be \(N=3, H=4\)"):
        lstm_forward(d["x"], **p, h0=np.zeros((2, 4)))
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        lstm_forward(torch.zeros(3, 6, 2), **p)
    _, _, cache = lstm_forward(d["x"], **p)
    with pytest.raises(ValueError, match=r"dhs must be \(N=3, T=6, H=4\)"):
        lstm_backward(np.zeros((3, 5, 4)), cache)
    with pytest.raises(TypeError, match="cache must be the third value"):
        lstm_backward(d["dhs"], {"x": 1})


@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_update_bias_is_added_to_the_gru_update_block(impl):
    base = SequenceModel("gru", 2, 4, 1, impl=impl, init_seed=5)
    shifted = SequenceModel("gru", 2, 4, 1, impl=impl, init_seed=5, update_bias=1.0)
    get = (lambda m: m.recurrent.cell.bias_ih) if impl == "scratch" else (
        lambda m: m.recurrent.bias_ih_l0)
    diff = (get(shifted) - get(base)).detach()
    assert torch.allclose(diff[4:8], torch.ones(4)) and torch.all(diff[:4] == 0)
    assert torch.all(diff[8:] == 0)
    with pytest.raises(ValueError, match="update_bias applies to kind='gru' only"):
        SequenceModel("lstm", 2, 3, 1, update_bias=1.0)
    with pytest.raises(TypeError, match="update_bias must be a number"):
        SequenceModel("gru", 2, 3, 1, update_bias="1")
