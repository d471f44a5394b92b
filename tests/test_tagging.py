"""companion.data.tagging: labels, ceilings, baselines, errors."""

import numpy as np
import pytest

from companion.data.tagging import causal_ceiling, lookahead_tagging, majority_baseline, word_parity


@pytest.mark.parametrize("ahead,behind", [(0, 0), (2, 0), (2, 2), (3, 1)])
def test_lookahead_labels_are_the_pair(ahead, behind):
    x, y = lookahead_tagging(50, 9, ahead=ahead, behind=behind, vocab=3, seed=4)
    assert x.shape == y.shape == (50, 9) and x.dtype == y.dtype == np.int64
    for t in range(9):
        past = x[:, t - behind] if t - behind >= 0 else 0
        fut = x[:, t + ahead] if t + ahead < 9 else 0
        assert np.array_equal(y[:, t], 3 * past + fut)
    assert y.max() < 9 and x.max() < 3


def test_lookahead_is_reproducible_and_seed_dependent():
    a = lookahead_tagging(5, 6, seed=1)
    b = lookahead_tagging(5, 6, rng=np.random.default_rng(1))
    c = lookahead_tagging(5, 6, seed=2)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


def test_causal_ceiling_matches_an_exact_bayes_predictor():
    T, ahead, V = 8, 2, 4
    x, y = lookahead_tagging(20000, T, ahead=ahead, behind=1, vocab=V, seed=0)
    # best causal guess: the known past part, and future token 0 when it is unseen
    guess = y.copy()
    guess[:, :T - ahead] = V * (y[:, :T - ahead] // V)
    acc = (guess == y).mean()
    assert abs(acc - causal_ceiling(T, ahead=ahead, vocab=V)) < 0.01
    assert causal_ceiling(T, ahead=ahead, vocab=V, delay=ahead) == 1.0
    assert causal_ceiling(12, ahead=2, vocab=4) == pytest.approx(0.375)


@pytest.mark.parametrize("hier", [True, False])
def test_word_parity_labels(hier):
    x, y = word_parity(30, 10, hierarchical=hier, vocab=4, seed=3)
    assert set(np.unique(y)) <= {0, 1}
    for n in range(30):
        count = 0
        for t in range(10):
            if hier and t % 2 == 1:
                count += int((x[n, t - 1] + x[n, t]) % 4 >= 2)
            if not hier:
                count += int(x[n, t] == 0)
            assert y[n, t] == count % 2


def test_hierarchical_label_is_not_a_function_of_zero_counts():
    x, y = word_parity(2000, 4, hierarchical=True, seed=0)
    _, y_flat = word_parity(2000, 4, hierarchical=False, seed=0)
    assert 0.3 < (y == y_flat).mean() < 0.7


def test_majority_baseline():
    assert majority_baseline([0, 1, 1], [1, 1, 0, 0]) == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        majority_baseline([], [1])


def test_errors():
    with pytest.raises(ValueError, match="exactly one"):
        lookahead_tagging(2, 5)
    with pytest.raises(ValueError, match="longer sequence"):
        lookahead_tagging(2, 5, ahead=5, seed=0)
    with pytest.raises(ValueError, match="even"):
        word_parity(2, 5, seed=0)
    with pytest.raises(TypeError, match="hierarchical"):
        word_parity(2, 4, hierarchical=1, seed=0)
    with pytest.raises(TypeError, match="seed"):
        word_parity(2, 4, seed=-1)
    with pytest.raises(TypeError, match="n must be an int"):
        lookahead_tagging(2.0, 5, seed=0)
