"""Jacobian products, Pascanu's bound, leaky units, skips, influence and reservoirs."""

import numpy as np
import pytest
import torch

from companion.scratch.longterm import (
    contraction_rate,
    esn_reservoir,
    input_influence,
    jacobian_norms,
    leaky_hidden_states,
    pascanu_bound,
    scale_to_spectral_radius,
    skip_hidden_states,
    spectral_radius,
    state_distance,
    step_jacobians,
    time_constant,
)
from companion.scratch.recurrence import rnn_hidden_states


def _params(H=4, D=2, rho=1.0, seed=0):
    rng = np.random.default_rng(seed)
    W = scale_to_spectral_radius(rng.normal(size=(H, H)), rho)
    return rng.normal(size=(H, D)), W, 0.1 * rng.normal(size=H), rng


def _torch_jacobian_products(x, U, W, b, alpha=0.0):
    """d h^(T) / d h^(T-d) for one sequence by autograd, re-running from h^(T-d)."""
    xt, Ut, Wt, bt = (torch.tensor(a) for a in (x[0], U, W, b))
    T, H = x.shape[1], W.shape[0]
    hs = [torch.zeros(H, dtype=torch.float64)]
    for t in range(T):
        v = torch.tanh(Ut @ xt[t] + Wt @ hs[-1] + bt)
        hs.append(alpha * hs[-1] + (1 - alpha) * v)

    def run_from(k):
        def f(h):
            for t in range(k, T):
                h = alpha * h + (1 - alpha) * torch.tanh(Ut @ xt[t] + Wt @ h + bt)
            return h
        return f

    return [torch.autograd.functional.jacobian(run_from(T - d), hs[T - d]).numpy()
            for d in range(T + 1)]


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_jacobian_norms_match_autograd(alpha):
    U, W, b, rng = _params(rho=1.3)
    x = rng.normal(size=(1, 6, 2))
    ref = _torch_jacobian_products(x, U, W, b, alpha)
    norms = jacobian_norms(x, U, W, b, alpha=alpha)
    np.testing.assert_allclose(norms[0], [np.linalg.norm(J, 2) for J in ref], rtol=1e-10)
    fro = jacobian_norms(x, U, W, b, alpha=alpha, ord="fro")
    np.testing.assert_allclose(fro[0], [np.linalg.norm(J) for J in ref], rtol=1e-10)


def test_step_jacobian_matches_finite_differences():
    U, W, b, rng = _params(rho=0.9, seed=3)
    x = rng.normal(size=(1, 3, 2))
    h = rnn_hidden_states(x, U, W, b)
    J = step_jacobians(h, W)[0, 2]  # d h^(3) / d h^(2)
    eps, num = 1e-6, np.zeros((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = eps
        num[:, j] = (np.tanh(U @ x[0, 2] + W @ (h[0, 1] + e) + b)
                     - np.tanh(U @ x[0, 2] + W @ (h[0, 1] - e) + b)) / (2 * eps)
    np.testing.assert_allclose(J, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.5, 3.0])
def test_pascanu_bound_holds(rho):
    U, W, b, rng = _params(H=6, rho=rho, seed=1)
    x = rng.normal(size=(5, 30, 2))
    norms = jacobian_norms(x, U, W, b)
    bound = pascanu_bound(W, np.arange(31))
    assert np.all(norms <= bound * (1 + 1e-9))


def test_small_singular_value_forces_vanishing():
    U, W, b, rng = _params(H=6, rho=1.0, seed=2)
    W = W * 0.8 / np.linalg.norm(W, 2)  # sigma_max = 0.8 < 1: sufficient for vanishing
    norms = jacobian_norms(rng.normal(size=(3, 40, 2)), U, W, b)
    assert np.all(norms[:, 40] <= 0.8**40 + 1e-15)


def test_jacobian_norms_with_initial_state_match_a_longer_run():
    U, W, b, rng = _params(rho=1.2, seed=4)
    x = rng.normal(size=(2, 8, 2))
    h = rnn_hidden_states(x, U, W, b)
    # starting from h^(3) and running the last 5 inputs gives the same last 5 Jacobians
    full = jacobian_norms(x, U, W, b)
    tail = jacobian_norms(x[:, 3:], U, W, b, h0=h[:, 2])
    np.testing.assert_allclose(tail, full[:, :6], rtol=1e-12)


def test_spectral_radius_and_scaling():
    W = np.array([[0.0, 2.0], [0.5, 0.0]])  # eigenvalues +-1
    assert spectral_radius(W) == pytest.approx(1.0)
    assert spectral_radius(scale_to_spectral_radius(W, 0.3)) == pytest.approx(0.3)


def test_leaky_units_and_time_constant():
    x = np.zeros((1, 80, 1))
    x[0, 0, 0] = 0.5
    for alpha in (0.5, 0.9, 0.97):
        h = leaky_hidden_states(x, np.ones((1, 1)), np.zeros((1, 1)), np.zeros(1), alpha)
        np.testing.assert_allclose(h[0, 1:, 0] / h[0, :-1, 0], alpha)
        assert time_constant(h[0, :, 0]) == pytest.approx(-1 / np.log(alpha), rel=1e-9)
    U, W, b, rng = _params()
    xs = rng.normal(size=(2, 5, 2))
    np.testing.assert_allclose(leaky_hidden_states(xs, U, W, b, 0.0),
                               rnn_hidden_states(xs, U, W, b))
    # per-unit alphas: unit 0 vanilla, others slow
    alphas = np.array([0.0, 0.5, 0.9, 0.99])
    hv = leaky_hidden_states(xs, U, W, b, alphas)
    assert hv.shape == (2, 5, 4)
    assert time_constant(np.r_[1.0, 0.5, 0.1]) == pytest.approx(1 + np.log(0.5 * np.e) / np.log(5))
    assert time_constant([1.0, 0.9, 0.8]) == float("inf")


def test_skip_connections_equal_vanilla_when_skip_is_zero_and_shorten_paths():
    U, W, b, rng = _params(H=4, rho=0.5)
    x = rng.normal(size=(2, 12, 2))
    np.testing.assert_allclose(skip_hidden_states(x, U, W, b, np.zeros((4, 4)), 3),
                               rnn_hidden_states(x, U, W, b))
    Ws = scale_to_spectral_radius(rng.normal(size=(4, 4)), 0.9)
    plain = input_influence(lambda z: rnn_hidden_states(z, U, W, b), x)
    skip = input_influence(lambda z: skip_hidden_states(z, U, W, b, Ws, 4), x)
    assert np.all(skip[:, 0] > 10 * plain[:, 0])  # the oldest input reaches much further


def test_input_influence_matches_autograd():
    U, W, b, rng = _params(rho=1.1)
    x = rng.normal(size=(1, 5, 2))
    infl = input_influence(lambda z: rnn_hidden_states(z, U, W, b), x)
    xt = torch.tensor(x[0], requires_grad=True)

    def last(xx):
        h = torch.zeros(4, dtype=torch.float64)
        for t in range(5):
            h = torch.tanh(torch.tensor(U) @ xx[t] + torch.tensor(W) @ h + torch.tensor(b))
        return h

    J = torch.autograd.functional.jacobian(last, xt).numpy()  # (H, T, D)
    np.testing.assert_allclose(infl[0], np.sqrt((J**2).sum(axis=(0, 2))), rtol=1e-6)


def test_esn_reservoir():
    U, W, b = esn_reservoir(30, 2, 0.7, input_scale=0.5, rng=np.random.default_rng(1))
    assert U.shape == (30, 2) and W.shape == (30, 30) and np.all(b == 0)
    assert spectral_radius(W) == pytest.approx(0.7)
    assert np.all(np.abs(U) <= 0.5)
    U2, W2, _ = esn_reservoir(30, 2, 0.7, input_scale=0.5, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(W, W2)


def test_errors():
    U, W, b, _ = _params()
    with pytest.raises(ValueError, match="spectral radius needs a square matrix"):
        spectral_radius(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cannot be rescaled"):
        scale_to_spectral_radius(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        scale_to_spectral_radius(np.eye(2), -1)
    with pytest.raises(ValueError, match="alpha must lie in"):
        leaky_hidden_states(np.zeros((1, 2, 2)), U, W, b, 1.0)
    with pytest.raises(ValueError, match=r"alpha must be \(4,\)"):
        jacobian_norms(np.zeros((1, 2, 2)), U, W, b, alpha=np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=2\), batch-first; got \(3, 5, 1\)"):
        jacobian_norms(np.zeros((3, 5, 1)), U, W, b)
    with pytest.raises(ValueError, match="distances must be non-negative integers"):
        pascanu_bound(W, [1.5])
    with pytest.raises(ValueError, match="non-zero first entry"):
        time_constant([0.0, 1.0])
    with pytest.raises(ValueError, match="delay must be an int >= 2"):
        skip_hidden_states(np.zeros((1, 3, 2)), U, W, b, W, 1)
    with pytest.raises(ValueError, match=r"W_skip must be \(H=4, H=4\)"):
        skip_hidden_states(np.zeros((1, 3, 2)), U, W, b, np.zeros((3, 3)), 2)
    with pytest.raises(TypeError, match="run must be a function"):
        input_influence(None, np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="eps must be > 0"):
        input_influence(lambda z: z, np.zeros((1, 2, 2)), eps=0.0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        esn_reservoir(5, 1, 0.9, rng=0)
    with pytest.raises(TypeError, match="x must hold floats"):
        jacobian_norms(np.zeros((1, 2, 2), dtype=int), U, W, b)
    with pytest.raises(ValueError, match=r"h0 must be \(N=1, H=4\)"):
        jacobian_norms(np.zeros((1, 2, 2)), U, W, b, alpha=0.5, h0=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"states must be \(N, T, H=4\), batch-first"):
        step_jacobians(np.zeros((2, 3, 5)), W)
    with pytest.raises(ValueError, match=r"W must be \(H, H\)"):
        step_jacobians(np.zeros((2, 3, 4)), np.zeros((4, 3)))


# ---- plots, widget data and exercise checkers of chapter 5 ----------------------------

def test_gradient_plots_draw_and_validate():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.plots.gradients import clipping_figure, gradient_norm_figure, success_figure

    d = np.arange(5)
    fig = gradient_norm_figure(d, np.ones((2, 5)), labels=["a", "b"], bounds=np.ones((2, 5)))
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    losses = np.array([[1.0, 0.5, np.inf, np.nan], [1.0, 0.5, 0.3, 0.2]])
    fig = clipping_figure(losses, labels=["none", "norm"], grad_norms=np.ones((2, 4)))
    assert len(fig.axes) == 2
    plt.close(fig)
    fig = success_figure([10, 20], np.full((3, 2, 4), 0.5), labels=["x", "y", "z"], threshold=0.8)
    assert fig.axes[0].get_xlabel() == "sequence length $T$"
    plt.close(fig)
    with pytest.raises(ValueError, match="labels must have one entry per curve"):
        gradient_norm_figure(d, np.ones((2, 5)), labels=["a"])
    with pytest.raises(ValueError, match=r"norms must be \(C, P=5\)"):
        gradient_norm_figure(d, np.ones((2, 4)), labels=["a", "b"])
    with pytest.raises(ValueError, match=r"bounds must be \(C=2, P=5\)"):
        gradient_norm_figure(d, np.ones((2, 5)), labels=["a", "b"], bounds=np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"grad_norms must be \(C=2, S=4\)"):
        clipping_figure(losses, labels=["a", "b"], grad_norms=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"fractions must be \(C, P=2, S\)"):
        success_figure([10, 20], np.ones((3, 4, 2)), labels=["x", "y", "z"])
    with pytest.raises(TypeError, match="losses must be a NumPy array"):
        clipping_figure(torch.ones(2, 3), labels=["a", "b"])


def test_radius_norm_curves_follow_the_radius_and_validate():
    from companion.widgets.gradients import radius_norm_curves

    d, norms, bounds = radius_norm_curves([0.5, 3.0], steps=30, hidden=16, batch=4)
    assert d.shape == (31,) and norms.shape == bounds.shape == (2, 31)
    assert norms[0, 30] < 1e-6 < 1e2 < norms[1, 30]
    assert np.all(norms <= bounds * (1 + 1e-9))
    with pytest.raises(ValueError, match="radii must be positive finite numbers"):
        radius_norm_curves([0.0, 1.0])
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        radius_norm_curves([1.0], steps=0)


def test_spectral_radius_explorer_builds_a_widget():
    pytest.importorskip("ipywidgets")
    from companion.widgets.gradients import spectral_radius_explorer

    w = spectral_radius_explorer(steps=10, hidden=4)
    assert {c.description for c in w.children[:2]} == {"radius ρ", "Pascanu bound"}


# The checkers of the chapter 5 exercises are tested in tests/test_checkers_ch05_ch07.py.


# ---- echo-state measurements and time-first hints ---------------------------------------

def test_state_distance_contracts_when_sigma_max_below_one_and_matches_two_runs():
    U, W, b, rng = _params(H=6, D=1, rho=0.5, seed=4)
    W = W * (0.9 / np.linalg.norm(W, 2))  # sigma_max = 0.9: the sufficient condition
    x = rng.normal(size=(3, 40, 1))
    ha, hb = rng.uniform(-1, 1, (3, 6)), rng.uniform(-1, 1, (3, 6))
    d = state_distance(x, U, W, b, ha, hb)
    ref = np.linalg.norm(rnn_hidden_states(x, U, W, b, ha) - rnn_hidden_states(x, U, W, b, hb),
                         axis=2)
    np.testing.assert_allclose(d[:, 1:], ref, rtol=1e-12, atol=1e-15)
    assert np.all(d[:, 1:] <= 0.9 * d[:, :-1] + 1e-15)  # shrinks by sigma_max at least
    rate = contraction_rate(d)
    assert rate.shape == (3,) and np.all(rate <= np.log(0.9) + 1e-12)


def test_contraction_rate_of_a_geometric_sequence_and_floor():
    np.testing.assert_allclose(contraction_rate(0.8 ** np.arange(20)), np.log(0.8))
    d = np.r_[0.5 ** np.arange(10), np.zeros(5)]  # hits zero: the rate uses the part above
    np.testing.assert_allclose(contraction_rate(d), np.log(0.5))
    assert contraction_rate(np.ones(10)) == 0.0


def test_echo_state_errors_and_time_first_hints():
    U, W, b, _ = _params()
    with pytest.raises(ValueError, match=r"h0_b must be \(N=2, H=4\)"):
        state_distance(np.zeros((2, 3, 2)), U, W, b, np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="start above floor"):
        contraction_rate(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"distance must be \(N, L\)"):
        contraction_rate(np.ones((2, 3, 4)))
    # time-first x with an h0 of the right batch: the message points at x's layout
    x_time_first = np.zeros((7, 3, 2))  # (T, N, D)
    with pytest.raises(ValueError, match=r"h0 must be \(N=7, H=4\).*Is x time-first"):
        jacobian_norms(x_time_first, U, W, b, h0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Is x time-first"):
        skip_hidden_states(x_time_first, U, W, b, W, 2, h0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Is x time-first"):
        state_distance(x_time_first, U, W, b, np.zeros((3, 4)), np.ones((3, 4)))


def test_input_influence_checks_what_run_returns():
    with pytest.raises(ValueError, match=r"run\(x\) must return states of shape \(N=2, T, H\)"):
        input_influence(lambda z: z[:, -1], np.zeros((2, 3, 1)))   # only the last state
