"""Checkers of chapter 12's first page (Exercises 12.1-12.4): right answers pass, wrong
ones fail with a hint that does not state the expected value."""

import numpy as np
import pytest

from companion.exercises.ch12 import (
    check_expected_zoneout_jacobian,
    check_greedy_permutation,
    check_pointer_distribution,
    check_zoneout_update,
)


def _softmax(u):
    e = np.exp(u - u.max())
    return e / e.sum()


def test_pointer_distribution_checker():
    check_pointer_distribution(lambda E, d, W1, W2, v: _softmax(np.tanh(E @ W1.T + W2 @ d) @ v))
    with pytest.raises(AssertionError, match="swapped"):
        check_pointer_distribution(
            lambda E, d, W1, W2, v: _softmax(np.tanh(E @ W2.T + W1 @ d) @ v))
    with pytest.raises(AssertionError, match="probabilities"):
        check_pointer_distribution(lambda E, d, W1, W2, v: np.tanh(E @ W1.T + W2 @ d) @ v)
    with pytest.raises(AssertionError, match="NaN"):
        check_pointer_distribution(lambda E, d, W1, W2, v: np.full(len(E), np.nan))


def test_zoneout_update_checker():
    def right(h_prev, h_cand, z, keep=None):
        m = z if keep is None else keep
        return m * h_prev + (1 - m) * h_cand
    check_zoneout_update(right)
    with pytest.raises(AssertionError, match="evaluation mode"):
        check_zoneout_update(lambda h, c, z, keep=None:
                             right(h, c, z, keep) if keep is not None else c)
    with pytest.raises(AssertionError, match="training mode"):
        check_zoneout_update(lambda h, c, z, keep=None: right(h, c, z, None))


def test_greedy_permutation_checker():
    def right(scores):
        chosen, out = set(), []
        for row in scores:
            j = max((j for j in range(len(row)) if j not in chosen), key=lambda j: row[j])
            chosen.add(j)
            out.append(j)
        return out
    check_greedy_permutation(right)
    with pytest.raises(AssertionError, match="twice"):
        check_greedy_permutation(lambda s: np.argmax(s, axis=1))
    with pytest.raises(AssertionError, match="one position per"):
        check_greedy_permutation(lambda s: [0])


def test_expected_jacobian_checker():
    def right(W, h, z):
        return z * np.eye(len(h)) + (1 - z) * (1 - h ** 2)[:, None] * W
    check_expected_zoneout_jacobian(right)
    with pytest.raises(AssertionError, match="ROWS"):
        check_expected_zoneout_jacobian(
            lambda W, h, z: z * np.eye(len(h)) + (1 - z) * (1 - h ** 2)[None, :] * W)
    with pytest.raises(AssertionError, match="probabilities"):
        check_expected_zoneout_jacobian(lambda W, h, z: (1 - h ** 2)[:, None] * W)
