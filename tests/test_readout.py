"""Closed-form read-outs used to probe memory."""

import numpy as np
import pytest

from companion.scratch import fit_ridge, lagged_recall, r2_score, rnn_hidden_states, sliding_windows


def test_fit_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    w_true = np.array([1.5, -2.0, 0.5])
    y = X @ w_true + 0.7
    w = fit_ridge(X, y, alpha=0.0)
    np.testing.assert_allclose(w, [*w_true, 0.7], atol=1e-10)


def test_r2_score_reference_values():
    y = np.array([1.0, 2.0, 3.0])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.full(3, 2.0)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        r2_score(y, y[:2])
    with pytest.raises(ValueError, match="constant"):
        r2_score(np.ones(3), y)


def test_sliding_windows_order_and_padding():
    w = sliding_windows(np.array([1.0, 2.0, 3.0]), 2)
    np.testing.assert_array_equal(w, [[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]])
    with pytest.raises(ValueError, match=r"x must be \(T,\)"):
        sliding_windows(np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        sliding_windows(np.zeros(3), 0)


def test_lagged_recall_of_a_delay_line_is_exact_then_zero():
    # A shift register remembers exactly the last 3 inputs and nothing older.
    rng = np.random.default_rng(2)
    u = rng.uniform(-1, 1, size=600)
    states = sliding_windows(u, 3)
    r2 = lagged_recall(states, u, [0, 1, 2, 3, 5])
    np.testing.assert_allclose(r2[:3], 1.0, atol=1e-9)
    assert np.all(r2[3:] < 0.05)


def test_bigger_random_rnn_remembers_longer():
    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, size=2000)
    scores = []
    for H in [4, 64]:
        W = rng.normal(size=(H, H)) / np.sqrt(H)
        W *= 0.9 / max(abs(np.linalg.eigvals(W)))
        h = rnn_hidden_states(0.5 * u[None, :, None], rng.normal(size=(H, 1)), W, np.zeros(H))[0]
        scores.append(lagged_recall(h[100:], u[100:], [6])[0])
    assert scores[1] > scores[0] + 0.3


def test_lagged_recall_validation():
    with pytest.raises(ValueError, match=r"inputs must be \(T=10,\); got \(9,\)"):
        lagged_recall(np.zeros((10, 2)), np.zeros(9), [1])
    with pytest.raises(ValueError, match="lags must be shorter than half"):
        lagged_recall(np.random.default_rng(0).normal(size=(10, 2)), np.arange(10.0), [6])


@pytest.mark.parametrize("alpha", ["1e-6", None, [1e-6]])
def test_fit_ridge_non_numeric_alpha_is_a_type_error(alpha):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(TypeError, match=r"alpha must be a number >= 0; got .*1e-6 is a small"):
        fit_ridge(X, X[:, 0], alpha)


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), float("inf")])
def test_fit_ridge_bad_alpha_value(alpha):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"alpha must be a number >= 0"):
        fit_ridge(X, X[:, 0], alpha)
    with pytest.raises(ValueError, match=r"features must have at least one entry along M"):
        fit_ridge(np.zeros((0, 2)), np.zeros(0))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_lagged_recall_train_fraction_outside_the_open_interval(fraction):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"train_fraction must be a number in \(0, 1\)"):
        lagged_recall(rng.normal(size=(40, 3)), rng.normal(size=40), [0], train_fraction=fraction)


def test_lagged_recall_other_bad_arguments():
    rng = np.random.default_rng(0)
    S, u = rng.normal(size=(40, 3)), rng.normal(size=40)
    with pytest.raises(TypeError, match="train_fraction must be a number in"):
        lagged_recall(S, u, [0], train_fraction="half")
    with pytest.raises(ValueError, match=r"splits the 40 usable steps at lag 0 into 1 for fitting"):
        lagged_recall(S, u, [0], train_fraction=0.04)
    with pytest.raises(TypeError, match=r"lags must be a list of ints"):
        lagged_recall(S, u, 3)
    with pytest.raises(TypeError, match=r"lags\[1\] must be an int"):
        lagged_recall(S, u, [0, 1.5])
    with pytest.raises(TypeError, match=r"alpha must be a number >= 0"):
        lagged_recall(S, u, [0], alpha="small")


def test_r2_score_needs_two_values():
    with pytest.raises(ValueError, match=r"y_true must hold at least 2 values.*got shape \(1,\)"):
        r2_score([1.0], [1.0])
    with pytest.raises(ValueError, match=r"y_true must hold at least 2 values.*got shape \(\)"):
        r2_score(1.0, 1.0)
