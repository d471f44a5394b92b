"""Batched ensembles: each member is exactly the single model trained alone (float64)."""

import math

import numpy as np
import pytest
import torch

from companion.nn.ensemble import (
    BatchedAdam,
    Ensemble,
    clip_per_member,
    reference_model,
    state_gradient_norms,
    train_ensemble,
)

KINDS = ["rnn", "irnn", "lstm", "gru"]
D, H, K, N, T = 2, 5, 1, 4, 7


def _data(steps, seed=0, per_member=None):
    rng = np.random.default_rng(seed)
    shape = (N, T, D) if per_member is None else (per_member, N, T, D)
    xs = [torch.as_tensor(rng.normal(size=shape)) for _ in range(steps)]
    ys = [torch.as_tensor(rng.normal(size=shape[:-2])) for _ in range(steps)]
    return xs, ys


def _mse(out, y):
    return ((out[..., 0] - y) ** 2).mean(dim=-1)


def _train_single(kind, seed, lr, clip, xs, ys):
    model = reference_model(kind, D, H, K, seed=seed, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for x, y in zip(xs, ys):
        opt.zero_grad()
        ((model(x)[:, 0] - y) ** 2).mean().backward()
        if math.isfinite(clip):
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return model


@pytest.mark.parametrize("kind", KINDS)
def test_member_outputs_and_gradients_equal_the_single_model(kind):
    seeds = [4, 1, 4]
    ens = Ensemble(kind, D, H, K, seeds=seeds, dtype=torch.float64)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(N, T, D)))
    y = torch.as_tensor(np.random.default_rng(2).normal(size=(N,)))
    _mse(ens(x), y).sum().backward()
    grads = [p.grad for p in ens.parameters()]
    for m, s in enumerate(seeds):
        single = reference_model(kind, D, H, K, seed=s, dtype=torch.float64)
        out = single(x)
        torch.testing.assert_close(ens(x)[m], out, rtol=1e-12, atol=1e-14)
        ((out[:, 0] - y) ** 2).mean().backward()
        single_grads = [single.recurrent.weight_ih_l0.grad, single.recurrent.weight_hh_l0.grad,
                        single.recurrent.bias_ih_l0.grad, single.recurrent.bias_hh_l0.grad,
                        single.readout.weight.grad, single.readout.bias.grad]
        for g, sg in zip(grads, single_grads):
            torch.testing.assert_close(g[m], sg, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_member_after_adam_steps_equals_single_model_trained_alone(kind):
    seeds, lrs, clips = [3, 5, 3], [1e-2, 3e-3, 3e-2], [1.0, math.inf, 0.05]
    xs, ys = _data(6)
    ens = Ensemble(kind, D, H, K, seeds=seeds, dtype=torch.float64)
    hist = train_ensemble(ens, lambda s: (xs[s], ys[s]), _mse, steps=6, lr=lrs, clip_norm=clips)
    assert not hist.diverged.any() and hist.loss.shape == (6, 3)
    for m in range(3):
        single = _train_single(kind, seeds[m], lrs[m], clips[m], xs, ys)
        for p, q in zip(ens.member_model(m).parameters(), single.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-13)
    # the small clipping norm really clipped, and different seeds/lrs really differ
    assert np.all(hist.grad_norm[:, 2] > 0.05)
    assert not torch.allclose(ens.weight_hh[0], ens.weight_hh[2])


def test_per_member_data_streams():
    seeds, lrs = [0, 1], [1e-2, 1e-2]
    xs, ys = _data(3, per_member=2)
    ens = Ensemble("gru", D, H, K, seeds=seeds, dtype=torch.float64)
    train_ensemble(ens, lambda s: (xs[s], ys[s]), _mse, steps=3, lr=lrs)
    for m in range(2):
        single = _train_single("gru", seeds[m], lrs[m], math.inf,
                               [x[m] for x in xs], [y[m] for y in ys])
        for p, q in zip(ens.member_model(m).parameters(), single.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-13)


def test_batched_adam_matches_torch_adam_per_member():
    rng = np.random.default_rng(0)
    w = torch.as_tensor(rng.normal(size=(3, 4, 2)), dtype=torch.float64)
    p = w.clone().requires_grad_(True)
    lrs = [1e-3, 1e-2, 1e-1]
    opt = BatchedAdam([p], lrs)
    singles = [w[m].clone().requires_grad_(True) for m in range(3)]
    opts = [torch.optim.Adam([s], lr=lr) for s, lr in zip(singles, lrs)]
    for _ in range(5):
        g = torch.as_tensor(rng.normal(size=(3, 4, 2)))
        p.grad = g.clone()
        opt.step()
        for m in range(3):
            singles[m].grad = g[m].clone()
            opts[m].step()
    for m in range(3):
        torch.testing.assert_close(p.detach()[m], singles[m].detach(), rtol=1e-12, atol=1e-15)


def test_clip_per_member_equals_clip_grad_norm_on_each_member_alone():
    rng = np.random.default_rng(3)
    a = torch.zeros(3, 4, 2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, 5, dtype=torch.float64, requires_grad=True)
    ga, gb = (torch.as_tensor(rng.normal(size=t.shape)) for t in (a, b))
    ga[1] *= 100.0  # member 1 has a huge gradient: it must not shrink the others
    a.grad, b.grad = ga.clone(), gb.clone()
    limits = [1.0, 1.0, math.inf]
    norms = clip_per_member([a, b], limits)
    for m in range(3):
        sa, sb = ga[m].clone().requires_grad_(True), gb[m].clone().requires_grad_(True)
        sa.grad, sb.grad = ga[m].clone(), gb[m].clone()
        total = torch.nn.utils.clip_grad_norm_([sa, sb], limits[m])
        torch.testing.assert_close(norms[m], total, rtol=1e-12, atol=0)
        torch.testing.assert_close(a.grad[m], sa.grad, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(b.grad[m], sb.grad, rtol=1e-12, atol=1e-15)
    # the ensemble-wide norm would have shrunk member 0; its own norm did not (if < 1)
    assert norms[1] > 50 and torch.equal(a.grad[2], ga[2])


def test_nan_in_one_member_does_not_poison_the_others():
    seeds, lrs = [0, 1, 2], [1e-2, 1e-2, 1e-2]
    xs, ys = _data(5)
    ens = Ensemble("lstm", D, H, K, seeds=seeds, dtype=torch.float64)
    with torch.no_grad():
        ens.weight_hh[1, 0, 0] = float("nan")  # member 1 is broken from the start
    frozen = [p[1].detach().clone() for p in ens.parameters()]
    hist = train_ensemble(ens, lambda s: (xs[s], ys[s]), _mse, steps=5, lr=lrs)
    assert hist.diverged.tolist() == [False, True, False]
    assert hist.diverged_step.tolist() == [-1, 0, -1]
    assert np.isnan(hist.loss[:, 1]).all() and np.isfinite(hist.loss[:, [0, 2]]).all()
    for p, f in zip(ens.parameters(), frozen):  # the broken member took no step
        torch.testing.assert_close(p[1].detach(), f, equal_nan=True)
    for m in (0, 2):
        single = _train_single("lstm", seeds[m], lrs[m], math.inf, xs, ys)
        for p, q in zip(ens.member_model(m).parameters(), single.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-13)


def test_member_that_explodes_midway_is_marked_at_that_step():
    xs, ys = _data(4)
    ys = [y.clone() for y in ys]
    ens = Ensemble("rnn", D, H, K, seeds=[0, 1], dtype=torch.float64)

    def loss_fn(out, y):
        loss = _mse(out, y)
        if loss_fn.step == 2:  # member 0's loss becomes infinite at step 2
            loss = loss * torch.tensor([math.inf, 1.0], dtype=loss.dtype)
        loss_fn.step += 1
        return loss

    loss_fn.step = 0
    hist = train_ensemble(ens, lambda s: (xs[s], ys[s]), loss_fn, steps=4, lr=1e-2)
    assert hist.diverged.tolist() == [True, False]
    assert hist.diverged_step.tolist() == [2, -1]
    assert torch.isfinite(ens.weight_hh).all()


def test_gru_and_lstm_gate_biases_are_matched():
    lstm = Ensemble("lstm", D, H, K, seeds=[0])
    gru = Ensemble("gru", D, H, K, seeds=[0])
    plain = reference_model("lstm", D, H, K, seed=0, gate_bias=0.0)
    torch.testing.assert_close(lstm.bias_ih[0, H:2 * H] - plain.recurrent.bias_ih_l0[H:2 * H],
                               torch.ones(H))
    plain_gru = reference_model("gru", D, H, K, seed=0, gate_bias=0.0)
    torch.testing.assert_close(gru.bias_ih[0, H:2 * H] - plain_gru.recurrent.bias_ih_l0[H:2 * H],
                               torch.ones(H))
    irnn = Ensemble("irnn", D, H, K, seeds=[0])
    torch.testing.assert_close(irnn.weight_hh[0], torch.eye(H))
    assert float((irnn.bias_ih.abs().sum() + irnn.bias_hh.abs().sum()).detach()) == 0.0


def test_state_gradient_norms_match_autograd_per_sequence():
    ens = Ensemble("rnn", D, H, K, seeds=[0, 1], dtype=torch.float64)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(3, T, D)))
    y = torch.zeros(3, dtype=torch.float64)
    g = state_gradient_norms(ens, x, lambda out: (out[..., 0] - y) ** 2)
    assert g.shape == (2, 3, T) and np.isfinite(g).all()
    # the gradient for sequence 1 alone, member 1, state t = 2, by a hand-written loop
    W_ih, W_hh = ens.weight_ih[1].detach().requires_grad_(True), ens.weight_hh[1].detach()
    b = (ens.bias_ih[1] + ens.bias_hh[1]).detach()
    h = torch.zeros(H, dtype=torch.float64)
    states = []
    for t in range(T):
        h = torch.tanh(W_ih @ x[1, t] + W_hh @ h + b)
        h.retain_grad()
        states.append(h)
    out = ens.readout_weight[1].detach() @ h + ens.readout_bias[1].detach()
    (out[0] ** 2).backward()
    for t in (0, 2, T - 1):
        np.testing.assert_allclose(g[1, 1, t], float(states[t].grad.norm()), rtol=1e-10)
    assert g[1, 1, 0] < g[1, 1, T - 1]  # at initialisation the tanh RNN's gradient shrinks


def test_bad_inputs_raise_clear_errors():
    ens = Ensemble("gru", D, H, K, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"\(N, T, D=2\).*\(M=2, N, T, D=2\)"):
        ens(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="M=2"):
        ens(torch.zeros(3, 4, 5, 2))
    with pytest.raises(TypeError, match="dtype"):
        ens(torch.zeros(3, 4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch tensor"):
        ens(np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="kind must be one of"):
        Ensemble("transformer", D, H, K, seeds=[0])
    with pytest.raises(ValueError, match="seeds"):
        Ensemble("rnn", D, H, K, seeds=[])
    with pytest.raises(ValueError, match=r"lr must be .* one value per member \(2,\)"):
        train_ensemble(ens, lambda s: None, _mse, steps=1, lr=[1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="lr must be positive"):
        train_ensemble(ens, lambda s: None, _mse, steps=1, lr=[1e-3, -1.0])
    with pytest.raises(ValueError, match="one loss per member"):
        train_ensemble(ens, lambda s: (torch.zeros(2, 3, 2), torch.zeros(2)),
                       lambda out, y: out.mean(), steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="member index"):
        ens.member_model(2)
