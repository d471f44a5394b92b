"""companion.nn.linear_recurrence: the torch scans and the LRU model (float64)."""

import math

import numpy as np
import pytest
import torch

from companion.nn.linear_recurrence import (
    LRUNetwork,
    last_state,
    linear_scan,
    linear_scan_loop,
    ring_init,
    train_lru_ensemble,
)
from companion.scratch.scan import scan_loop

f64, c128 = torch.float64, torch.complex128


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 33, 160])
@pytest.mark.parametrize("time_invariant", [True, False])
def test_parallel_scan_equals_loop_complex(T, time_invariant):
    g = torch.Generator().manual_seed(T)
    shape = (2, 3, T, 5)
    b = torch.complex(torch.randn(shape, generator=g, dtype=f64),
                      torch.randn(shape, generator=g, dtype=f64))
    a_shape = (2, 1, 1, 5) if time_invariant else shape
    a = torch.polar(torch.rand(a_shape, generator=g, dtype=f64),
                    2 * math.pi * torch.rand(a_shape, generator=g, dtype=f64))
    h_loop, h_scan = linear_scan_loop(a, b), linear_scan(a, b)
    assert torch.isfinite(torch.view_as_real(h_scan)).all()
    assert torch.allclose(h_scan, h_loop, rtol=1e-12, atol=1e-12)
    if time_invariant:
        assert torch.allclose(last_state(a, b), h_loop[..., -1, :], rtol=1e-12, atol=1e-12)


def test_torch_scan_equals_numpy_loop():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, size=(50, 4)), rng.normal(size=(50, 4))
    h = linear_scan(torch.as_tensor(a), torch.as_tensor(b)).numpy()
    assert np.allclose(h, scan_loop(a, b), rtol=1e-12, atol=1e-12)


def test_scan_gradients_match_loop_and_finite_differences():
    g = torch.Generator().manual_seed(1)
    lam = torch.polar(0.5 + 0.4 * torch.rand(3, generator=g, dtype=f64),
                      torch.rand(3, generator=g, dtype=f64)).requires_grad_()
    b = torch.randn(2, 11, 3, generator=g, dtype=c128).requires_grad_()

    def loss(scan):
        return lambda lam, b: (scan(lam, b).abs() ** 2).sum()

    g_scan = torch.autograd.grad(loss(linear_scan)(lam, b), (lam, b))
    g_loop = torch.autograd.grad(loss(linear_scan_loop)(lam, b), (lam, b))
    for x, y in zip(g_scan, g_loop):
        assert torch.allclose(x, y, rtol=1e-11, atol=1e-12)
    assert torch.autograd.gradcheck(loss(linear_scan), (lam, b))
    assert torch.autograd.gradcheck(lambda lam, b: last_state(lam, b).abs().sum(), (lam, b))


def test_ring_init_and_normalisation():
    g = torch.Generator().manual_seed(0)
    nu_log, theta_log, gamma_log = ring_init(5000, r_min=0.4, r_max=0.99,
                                             max_phase=math.pi / 10, generator=g)
    mod = torch.exp(-torch.exp(nu_log))
    phase = torch.exp(theta_log)
    assert mod.min() >= 0.4 and mod.max() <= 0.99
    assert phase.min() > 0 and phase.max() <= math.pi / 10
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its mean is the midpoint (5000 draws)
    assert abs(float((mod ** 2).mean()) - (0.4 ** 2 + 0.99 ** 2) / 2) < 0.01
    # gamma^2 / (1 - |lambda|^2) = 1: white noise in, unit variance state out
    assert torch.allclose(torch.exp(2 * gamma_log) / (1 - mod ** 2), torch.ones(5000, dtype=f64))


def test_normalised_state_variance_is_one_whatever_lambda():
    model = LRUNetwork(1, 16, 1, 1, seeds=[3], r_min=0.0, r_max=0.99, dtype=f64)
    lam = model.eigenvalues().detach()[0]
    gamma = torch.exp(model.gamma_log.detach()[0])
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(4000, 300, 1, generator=g, dtype=f64)  # white, unit variance
    h = last_state(lam, gamma * noise)  # (4000, 16) states after 300 steps
    # expected variance gamma^2 (1 - |lam|^(2T)) / (1 - |lam|^2), about 1 (up to the
    # finite horizon for the slowest channels); sampled with 4000 sequences
    expected = gamma ** 2 * (1 - lam.abs() ** 600) / (1 - lam.abs() ** 2)
    var = (h.abs() ** 2).mean(0)
    assert torch.all((var / expected - 1).abs() < 0.12)


def test_members_are_independent_and_modes_agree():
    x = torch.randn(4, 30, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    both = LRUNetwork(2, 6, 3, 2, seeds=[0, 1], dtype=f64)
    one = LRUNetwork(2, 6, 3, 2, seeds=[1], dtype=f64)
    assert torch.allclose(both(x)[1], one(x)[0], rtol=1e-13, atol=1e-13)
    outs, grads = [], []
    for scan in ("parallel", "loop", "last"):
        m = LRUNetwork(2, 6, 3, 2, seeds=[0, 1], dtype=f64, scan=scan)
        out = m(x)
        out.sum().backward()
        outs.append(out.detach())
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    for o, gr in zip(outs[1:], grads[1:]):
        assert torch.allclose(o, outs[0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(gr, grads[0], rtol=1e-10, atol=1e-12)
    assert torch.allclose(both(x, all_steps=True)[:, :, -1], both(x), atol=1e-13)


def test_parameter_count_and_stability_under_any_parameters():
    m = LRUNetwork(2, 32, 8, 1, seeds=[0])
    # enc 8*2+8, lambda/gamma 3*32, B and C 2*(32*8) each, skip 8, MLP 16*8+16+8*16+8, head 9
    assert m.parameter_count() == 24 + 96 + 1024 + 8 + 280 + 9
    with torch.no_grad():
        m.nu_log.fill_(-30.0)  # exp(-exp(-30)): as close to 1 as float32 allows, never above
    assert float(m.eigenvalues().detach().abs().max()) <= 1.0


def test_training_one_member_matches_torch_adam():
    rng = np.random.default_rng(0)
    xs = [torch.as_tensor(rng.normal(size=(5, 9, 2))) for _ in range(4)]
    ys = [torch.as_tensor(rng.normal(size=5)) for _ in range(4)]
    ens = LRUNetwork(2, 4, 3, 1, seeds=[7], dtype=f64)
    ref = LRUNetwork(2, 4, 3, 1, seeds=[7], dtype=f64)
    losses, div = train_lru_ensemble(ens, lambda i: (xs[i], ys[i]),
                                     lambda out, y: ((out[..., 0] - y) ** 2).mean(-1),
                                     steps=4, lr=0.01, clip_norm=0.5)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for x, y in zip(xs, ys):
        opt.zero_grad()
        ((ref(x)[0, :, 0] - y) ** 2).mean().backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        opt.step()
    for p, q in zip(ens.parameters(), ref.parameters()):
        assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)
    assert div.tolist() == [-1] and np.all(np.isfinite(losses))


def test_bad_inputs_raise_clear_errors():
    m = LRUNetwork(2, 4, 3, 1, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=2\)"):
        m(torch.zeros(3, 5, 4))
    with pytest.raises(TypeError, match="dtype"):
        m(torch.zeros(3, 5, 2, dtype=f64))
    with pytest.raises(TypeError, match="torch tensor"):
        m(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        m(torch.zeros(3, 0, 2))
    with pytest.raises(ValueError, match="scan must be"):
        LRUNetwork(2, 4, 3, 1, seeds=[0], scan="fft")
    with pytest.raises(ValueError, match="r_min < r_max < 1"):
        LRUNetwork(2, 4, 3, 1, seeds=[0], r_min=0.9, r_max=1.0)
    with pytest.raises(ValueError, match="seeds"):
        LRUNetwork(2, 4, 3, 1, seeds=[])
    with pytest.raises(ValueError, match="broadcast"):
        linear_scan(torch.ones(3), torch.ones(5, 4))
    with pytest.raises(ValueError, match="time on axis -2"):
        linear_scan(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="time-invariant"):
        last_state(torch.ones(5, 4), torch.ones(5, 4))
    with pytest.raises(ValueError, match="must be positive"):
        last_state(torch.tensor([0.5, -0.5]), torch.ones(4, 2))
    assert torch.allclose(last_state(torch.tensor([0.5, -0.5]).to(torch.complex128),
                                     torch.ones(4, 2, dtype=torch.complex128)),
                          linear_scan(torch.tensor([0.5, -0.5]), torch.ones(4, 2))[-1]
                          .to(torch.complex128))
    with pytest.raises(TypeError, match="LRUNetwork"):
        train_lru_ensemble(object(), None, None, steps=1, lr=0.1)


def test_lru_without_normalisation_is_gamma_one_and_leaves_the_rest_unchanged():
    full = LRUNetwork(2, 6, 3, 1, seeds=[0, 1], dtype=f64)
    bare = LRUNetwork(2, 6, 3, 1, seeds=[0, 1], dtype=f64, normalise=False)
    assert "gamma_log" not in dict(bare.named_parameters())
    assert bare.parameter_count() == full.parameter_count() - 6
    for name, p in bare.named_parameters():  # every other parameter drawn identically
        assert torch.equal(p, dict(full.named_parameters())[name]), name
    x = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, size=(4, 7, 2)))
    with torch.no_grad():
        full.gamma_log.zero_()  # gamma = 1 in the full model: the same function
        assert torch.allclose(bare(x), full(x), rtol=1e-12, atol=1e-12)
    for scan in ("loop", "last"):
        other = LRUNetwork(2, 6, 3, 1, seeds=[0, 1], dtype=f64, normalise=False, scan=scan)
        assert torch.allclose(other(x), bare(x), rtol=1e-10, atol=1e-12)
    with pytest.raises(TypeError, match="normalise"):
        LRUNetwork(2, 6, 3, 1, seeds=[0], normalise="no")


def test_wrapped_tanh_rnn_core_is_torch_rnn_inside_the_lru_wrapper():
    from companion.nn.linear_recurrence import WrappedTanhRNN

    m = WrappedTanhRNN(2, 5, 3, 1, seeds=[3, 4], dtype=f64)
    x = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, size=(6, 9, 2)))
    out = m(x)
    assert out.shape == (2, 6, 1)
    for k in range(2):
        rnn = torch.nn.RNN(3, 5, batch_first=True, dtype=f64)
        with torch.no_grad():
            for ours, theirs in [("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"),
                                 ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")]:
                getattr(rnn, theirs).copy_(getattr(m, ours)[k])
            u = torch.relu(x @ m.enc_weight[k].T + m.enc_bias[k])
            h = rnn(u)[1][0]
            y = h @ m.C[k].T + m.skip[k] * u[:, -1]
            z = y + torch.nn.functional.gelu(y @ m.mlp1_weight[k].T + m.mlp1_bias[k]) \
                @ m.mlp2_weight[k].T + m.mlp2_bias[k]
            ref = z @ m.head_weight[k].T + m.head_bias[k]
        assert torch.allclose(out[k], ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(m.predict(x, chunk=4), out.detach())
    # members differ, and gradients reach every parameter
    assert not torch.allclose(out[0], out[1])
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert m.parameter_count() == 3 * 2 + 3 + 5 * 3 + 25 + 10 + 3 * 5 + 3 + 6 * 3 + 6 \
        + 3 * 6 + 3 + 3 + 1
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=2\)"):
        m(torch.zeros(3, 5, 4, dtype=f64))
    with pytest.raises(ValueError, match="seeds"):
        WrappedTanhRNN(2, 5, 3, 1, seeds=[])
    with pytest.raises(TypeError, match="dtype"):
        WrappedTanhRNN(2, 5, 3, 1, seeds=[0], dtype=torch.int64)
