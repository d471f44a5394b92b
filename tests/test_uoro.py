"""UORO (companion.scratch.rtrl): unbiased, with a tolerance from the measured standard error."""

import numpy as np
import pytest

from companion.scratch.init import random_rnn_problem
from companion.scratch.rtrl import (
    flatten_recurrent,
    online_train,
    recurrent_size,
    rtrl_loss_and_grads,
    stack_params,
    uoro_gradient_samples,
)

D, H, K, T = 3, 4, 3, 6
S = 40_000  # independent UORO chains


@pytest.fixture(scope="module")
def draws():
    p, x, y, h0 = random_rnn_problem(1, T, D, H, K, np.random.default_rng(11))
    est = uoro_gradient_samples(p, x, y, S, np.random.default_rng(12), h0=h0)
    _, g, _ = rtrl_loss_and_grads(p, x, y, h0=h0)
    return p, x, y, h0, est, flatten_recurrent(g)


def _z(est, target):
    se = est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])  # measured standard error
    assert np.all(se > 0) and np.all(np.isfinite(se))
    return (est.mean(axis=0) - target) / se


def test_uoro_mean_approaches_the_rtrl_gradient(draws):
    *_, est, g = draws
    assert est.shape == (S, recurrent_size(D, H))
    assert np.all(np.isfinite(est))
    z = _z(est, g)
    # P = 31 coordinates: under unbiasedness each z is ~N(0, 1); |z| > 4.5 anywhere has
    # probability below 31 * 7e-6 (Bonferroni), and the mean of z^2 is near 1.
    assert np.abs(z).max() < 4.5, z
    assert 0.5 < np.mean(z**2) < 1.8


def test_the_same_test_rejects_a_biased_gradient(draws):
    # power check: the gradient of a model whose W is slightly different is rejected
    p, x, y, h0, est, _ = draws
    q = dict(p, W=p["W"] * 1.05)
    _, g_off, _ = rtrl_loss_and_grads(q, x, y, h0=h0)
    assert np.abs(_z(est, flatten_recurrent(g_off))).max() > 4.5


def test_error_of_the_mean_shrinks_like_one_over_sqrt_samples(draws):
    *_, est, g = draws
    err = [np.linalg.norm(est[:n].mean(axis=0) - g) for n in (S // 100, S)]
    assert err[1] < err[0] / 3  # 1/sqrt(100) = 1/10 expected; 1/3 leaves room for noise


def test_uoro_is_reproducible_and_checks_arguments(draws):
    p, x, y, h0, *_ = draws
    a = uoro_gradient_samples(p, x, y, 5, np.random.default_rng(0), h0=h0)
    b = uoro_gradient_samples(p, x, y, 5, np.random.default_rng(0), h0=h0)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one sequence"):
        uoro_gradient_samples(p, np.repeat(x, 2, 0), np.repeat(y, 2, 0), 5,
                              np.random.default_rng(0))
    with pytest.raises((TypeError, ValueError), match="n_samples"):
        uoro_gradient_samples(p, x, y, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        uoro_gradient_samples(p, x, y, 5, 0)
    with pytest.raises(ValueError, match="eps"):
        uoro_gradient_samples(p, x, y, 5, np.random.default_rng(0), eps=0.0)


def test_online_uoro_learns_a_short_delay_below_the_uniform_guess():
    # a smoke run of the code path of experiments.uoro_sweep at a tiny size
    rng = np.random.default_rng(0)
    Tn, d = 3000, 2
    tok = rng.integers(0, 2, size=(2, Tn))
    x = np.eye(2)[tok]
    y = np.zeros_like(tok)
    y[:, d:] = tok[:, :-d]
    from companion.scratch.init import init_rnn_params
    s = stack_params([init_rnn_params(2, 8, 2, np.random.default_rng(i)) for i in range(2)])
    _, losses = online_train(s, x, y, 0.1, "uoro", rng=np.random.default_rng(1), clip=1.0)
    assert np.all(np.isfinite(losses))
    assert losses[:, -500:].mean() < 0.5 * np.log(2)


def test_uoro_sweep_smoke(tmp_path):
    import json

    from experiments.uoro_sweep import main

    assert main(["--tiny", "--out-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "uoro_sweep.json").read_text())
    assert {s["method"] for s in res["summary"]} == {"rtrl", "uoro", "tbptt2", "tbptt8"}
    assert res["timing"]["cpu_s"] >= 0 and len(res["runs"]) == 4 * 2 * 2


def test_stored_uoro_sweep_is_complete_and_fair():
    from companion.data.results import load_results

    res = load_results("uoro_sweep")
    assert res["config"]["seeds"] == [0, 1, 2, 3, 4]
    assert res["timing"]["cpu_s"] < 900
    for s in res["summary"]:
        assert len(res["config"]["lr_grid"][s["method"]]) >= 3
        assert s["n"] == 5 and s["inside"], s
