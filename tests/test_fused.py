"""The fused engine (companion.nn.fused) computes the same function as the autograd engine
and as each member's single torch.nn model: outputs, gradients, training (float64)."""

import math
import os
import shutil

import numpy as np
import pytest
import torch

from companion.nn import fused as fused_module
from companion.nn.ensemble import Ensemble, reference_model, train_ensemble
from companion.nn.fused import compiled_kernels, fused_sequence, kernel_status, release_buffers
from companion.scratch.gradcheck import numerical_gradient, relative_error

KINDS = ["rnn", "irnn", "lstm", "gru"]
D, H, K, N, T = 2, 5, 1, 4, 7
SEEDS = [4, 1, 4]
M = len(SEEDS)
TOL = dict(rtol=1e-12, atol=1e-12)


def _machine_can_compile():
    """A C compiler and an AVX2 CPU: where the compiled LSTM kernels must be in use."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return shutil.which(os.environ.get("CC", "cc")) is not None and " avx2" in flags


# Every test runs twice: with the LSTM's compiled element-wise kernels (where this machine
# builds them) and with torch's operations; both must compute the same function.
@pytest.fixture(autouse=True, params=[True, False], ids=["compiled-kernels", "torch-ops"])
def kernels(request):
    with compiled_kernels(request.param):
        if request.param and _machine_can_compile():
            assert fused_module._usable_kernels() is not None, kernel_status()
        yield request.param


def _x(shared, seed=1):
    shape = (N, T, D) if shared else (M, N, T, D)
    return torch.as_tensor(np.random.default_rng(seed).normal(size=shape))


def _states(kind, seed=3):
    rng = np.random.default_rng(seed)
    h0 = torch.as_tensor(rng.normal(size=(M, N, H)) * 0.5)
    c0 = torch.as_tensor(rng.normal(size=(M, N, H)) * 0.5) if kind == "lstm" else None
    return h0, c0


def _mse(out, y):
    return ((out[..., 0] - y) ** 2).mean(dim=-1)


def _loss_and_grads(ens, x, y, h0, c0):
    x = x.clone().requires_grad_(True)
    h0 = h0.clone().requires_grad_(True)
    c0 = c0.clone().requires_grad_(True) if c0 is not None else None
    out = ens(x, h0=h0, c0=c0)
    loss = _mse(out, y)
    inputs = [x, h0] + ([c0] if c0 is not None else []) + list(ens.parameters())
    grads = torch.autograd.grad(loss.sum(), inputs)
    return out.detach(), loss.detach(), grads


def _single_forward(kind, model, x, h0, c0):
    state = (h0[None], c0[None]) if kind == "lstm" else h0[None]
    seq, _ = model.recurrent(x, state)
    return model.readout(seq[:, -1])


@pytest.mark.parametrize("shared", [True, False], ids=["shared-data", "per-member-data"])
@pytest.mark.parametrize("kind", KINDS)
def test_fused_equals_autograd_engine_and_single_models(kind, shared):
    x, y = _x(shared), torch.as_tensor(np.random.default_rng(2).normal(size=(N,)))
    h0, c0 = _states(kind)
    auto = Ensemble(kind, D, H, K, seeds=SEEDS, dtype=torch.float64)
    fused = Ensemble(kind, D, H, K, seeds=SEEDS, dtype=torch.float64, engine="fused")
    out_a, loss_a, grads_a = _loss_and_grads(auto, x, y, h0, c0)
    out_f, loss_f, grads_f = _loss_and_grads(fused, x, y, h0, c0)
    torch.testing.assert_close(out_f, out_a, **TOL)
    torch.testing.assert_close(loss_f, loss_a, **TOL)
    assert len(grads_f) == len(grads_a)
    for gf, ga in zip(grads_f, grads_a):
        torch.testing.assert_close(gf, ga, **TOL)
    # each member against its own torch.nn model with the same weights
    n_states = 2 if kind == "lstm" else 1
    param_grads = grads_f[1 + n_states:]
    for m in range(M):
        single = fused.member_model(m)
        xm = (x if shared else x[m]).clone().requires_grad_(True)
        hm = h0[m].clone().requires_grad_(True)
        cm = c0[m].clone().requires_grad_(True) if c0 is not None else None
        out = _single_forward(kind, single, xm, hm, cm)
        torch.testing.assert_close(out_f[m], out.detach(), **TOL)
        loss = ((out[:, 0] - y) ** 2).mean()
        torch.testing.assert_close(loss_f[m], loss.detach(), **TOL)
        rec = single.recurrent
        singles = [rec.weight_ih_l0, rec.weight_hh_l0, rec.bias_ih_l0, rec.bias_hh_l0,
                   single.readout.weight, single.readout.bias]
        wrt = [hm] + ([cm] if cm is not None else []) + singles + ([] if shared else [xm])
        g = torch.autograd.grad(loss, wrt)
        torch.testing.assert_close(grads_f[1][m], g[0], **TOL)  # h0
        if cm is not None:
            torch.testing.assert_close(grads_f[2][m], g[1], **TOL)
        for ours, theirs in zip(param_grads, g[n_states:n_states + 6]):
            torch.testing.assert_close(ours[m], theirs, **TOL)
        if not shared:
            torch.testing.assert_close(grads_f[0][m], g[-1], **TOL)


@pytest.mark.parametrize("kind", KINDS)
def test_fused_gradients_match_finite_differences(kind):
    ens = Ensemble(kind, 2, 3, 1, seeds=[0, 1], dtype=torch.float64, engine="fused")
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.normal(size=(2, 3, 4, 2)))
    h0 = torch.as_tensor(rng.normal(size=(2, 3, 3)) * 0.5)
    c0 = torch.as_tensor(rng.normal(size=(2, 3, 3)) * 0.5) if kind == "lstm" else None
    y = torch.as_tensor(rng.normal(size=(3,)))
    if kind == "irnn":  # keep the pre-activations away from ReLU's kink
        with torch.no_grad():
            ens.bias_ih += 2.0
    tensors = {"x": x, "h0": h0, **({"c0": c0} if c0 is not None else {}),
               **dict(ens.named_parameters())}
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in tensors.items()}

    def loss_of(ts):
        params = {k: ts[k] for k, _ in ens.named_parameters()}
        out = torch.func.functional_call(ens, params, (ts["x"],),
                                         {"h0": ts["h0"], "c0": ts.get("c0")})
        return _mse(out, y).sum()

    analytic = torch.autograd.grad(loss_of(leaves), list(leaves.values()))
    arrays = {k: v.detach().clone().numpy() for k, v in tensors.items()}
    views = {k: torch.from_numpy(a) for k, a in arrays.items()}  # share memory

    def f():
        with torch.no_grad():
            return float(loss_of(views))

    for (name, arr), g in zip(arrays.items(), analytic):
        numeric = numerical_gradient(f, arr)
        assert relative_error(g.numpy(), numeric) < 1e-7, name


def _train(kind, engine, xs, ys, lrs, clips, seeds, poison=None):
    ens = Ensemble(kind, D, H, K, seeds=seeds, dtype=torch.float64, engine=engine)
    if poison is not None:
        with torch.no_grad():
            ens.weight_hh[poison, 0, 0] = float("nan")
    hist = train_ensemble(ens, lambda i: (xs[i], ys[i]), _mse, steps=len(xs), lr=lrs,
                          clip_norm=clips)
    return ens, hist


@pytest.mark.parametrize("kind", KINDS)
def test_adam_steps_with_clipping_and_divergence_equal_the_autograd_engine(kind):
    rng = np.random.default_rng(7)
    xs = [torch.as_tensor(rng.normal(size=(N, T, D))) for _ in range(6)]
    ys = [torch.as_tensor(rng.normal(size=(N,))) for _ in range(6)]
    seeds, lrs, clips = [3, 5, 3, 2], [1e-2, 3e-3, 3e-2, 1e-2], [1.0, math.inf, 0.05, 1.0]

    class Exploding:  # member 3's loss becomes infinite at step 2
        def __init__(self):
            self.step = 0

        def __call__(self, out, y):
            loss = _mse(out, y)
            if self.step == 2:
                loss = loss * torch.tensor([1.0, 1.0, 1.0, math.inf], dtype=loss.dtype)
            self.step += 1
            return loss

    runs = {}
    for engine in ("autograd", "fused"):
        ens = Ensemble(kind, D, H, K, seeds=seeds, dtype=torch.float64, engine=engine)
        hist = train_ensemble(ens, lambda i: (xs[i], ys[i]), Exploding(), steps=6, lr=lrs,
                              clip_norm=clips)
        runs[engine] = (ens, hist)
    (ea, ha), (ef, hf) = runs["autograd"], runs["fused"]
    assert hf.diverged.tolist() == [False, False, False, True] == ha.diverged.tolist()
    assert hf.diverged_step[3] == ha.diverged_step[3] == 2
    np.testing.assert_allclose(hf.loss, ha.loss, rtol=1e-11, atol=1e-13, equal_nan=True)
    np.testing.assert_allclose(hf.grad_norm, ha.grad_norm, rtol=1e-11, atol=1e-13, equal_nan=True)
    for pf, pa in zip(ef.parameters(), ea.parameters()):
        torch.testing.assert_close(pf.detach(), pa.detach(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_in_one_member_freezes_only_that_member(kind):
    rng = np.random.default_rng(8)
    xs = [torch.as_tensor(rng.normal(size=(M, N, T, D))) for _ in range(4)]
    ys = [torch.as_tensor(rng.normal(size=(M, N))) for _ in range(4)]
    lrs, clips = [1e-2, 1e-2, 3e-3], [1.0, 1.0, 1.0]
    start = Ensemble(kind, D, H, K, seeds=SEEDS, dtype=torch.float64)
    ef, hf = _train(kind, "fused", xs, ys, lrs, clips, SEEDS, poison=1)
    ea, ha = _train(kind, "autograd", xs, ys, lrs, clips, SEEDS, poison=1)
    assert hf.diverged.tolist() == [False, True, False]
    assert np.isnan(hf.loss[:, 1]).all() and np.isfinite(hf.loss[:, [0, 2]]).all()
    for pf, pa, p0 in zip(ef.parameters(), ea.parameters(), start.parameters()):
        torch.testing.assert_close(pf[[0, 2]].detach(), pa[[0, 2]].detach(), rtol=1e-11,
                                   atol=1e-13)
        frozen = p0[1].detach().clone()
        if pf is ef.weight_hh:
            frozen[0, 0] = float("nan")
        torch.testing.assert_close(pf[1].detach(), frozen, equal_nan=True)
        assert not torch.equal(pf[0].detach(), p0[0].detach())  # the others did train


def test_fused_float32_matches_autograd_closely():
    x = _x(True).float()
    for kind in KINDS:
        a = Ensemble(kind, D, H, K, seeds=SEEDS)
        f = Ensemble(kind, D, H, K, seeds=SEEDS, engine="fused")
        torch.testing.assert_close(f(x), a(x), rtol=1e-5, atol=1e-6)


def test_fused_buffers_serve_one_backward_pass():
    ens = Ensemble("lstm", D, H, K, seeds=SEEDS, dtype=torch.float64, engine="fused")
    loss = ens(_x(True)).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="ONE backward pass"):
        loss.backward()
    assert release_buffers() > 0 and release_buffers() == 0


def test_return_states_uses_the_autograd_engine():
    x = _x(True)
    a = Ensemble("gru", D, H, K, seeds=SEEDS, dtype=torch.float64)
    f = Ensemble("gru", D, H, K, seeds=SEEDS, dtype=torch.float64, engine="fused")
    out_f, states = f(x, return_states=True)
    assert len(states) == T
    torch.testing.assert_close(out_f, a(x), **TOL)


def test_bad_inputs_raise_clear_errors():
    ens = Ensemble("lstm", D, H, K, seeds=SEEDS, dtype=torch.float64, engine="fused")
    with pytest.raises(ValueError, match="engine must be one of"):
        Ensemble("lstm", D, H, K, seeds=SEEDS, engine="fast")
    with pytest.raises(TypeError, match="dtype torch.float64"):
        ens(_x(True).float())
    with pytest.raises(ValueError, match=r"\(N, T, D=2\)"):
        ens(torch.zeros(N, T, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"h0 must be \(M, N, H\) = \(3, 4, 5\); got \(3, 5, 4\)"):
        ens(_x(True), h0=torch.zeros(M, H, N, dtype=torch.float64))
    with pytest.raises(TypeError, match="h0 must have the ensemble's dtype"):
        ens(_x(True), h0=torch.zeros(M, N, H))
    gru = Ensemble("gru", D, H, K, seeds=SEEDS, dtype=torch.float64, engine="fused")
    with pytest.raises(ValueError, match="c0 applies to kind='lstm' only"):
        gru(_x(True), c0=torch.zeros(M, N, H, dtype=torch.float64))
    w_ih, w_hh = ens.weight_ih.detach(), ens.weight_hh.detach()
    b_ih, b_hh = ens.bias_ih.detach(), ens.bias_hh.detach()
    x = _x(True)
    with pytest.raises(ValueError, match="kind must be one of"):
        fused_sequence("elman", x, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match=r"weight_hh must be \(M, 3\*H, H\) for kind='gru'"):
        fused_sequence("gru", x, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match=r"bias_ih must have shape \(3, 20\); got \(3, 19\)"):
        fused_sequence("lstm", x, w_ih, w_hh, b_ih[:, :-1], b_hh)
    with pytest.raises(TypeError, match="bias_hh must have dtype torch.float64"):
        fused_sequence("lstm", x, w_ih, w_hh, b_ih, b_hh.float())
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        fused_sequence("lstm", x.numpy(), w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="at least one time step"):
        fused_sequence("lstm", x[:, :0], w_ih, w_hh, b_ih, b_hh)

