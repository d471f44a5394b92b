"""The checkers of Exercises 12.21-12.23 accept right answers and reject wrong ones
with hints that do not give the expected values."""

import math

import numpy as np
import pytest

from companion.exercises.ch12 import (
    check_blelloch_counts,
    check_diagonalised_states,
    check_logspace_positive,
)


def _counts(T):
    k = int(math.log2(T))
    return 2 * T - k - 2, 2 * k - 1


def _logspace(a, b):
    L = np.cumsum(np.log(a), axis=0)
    return np.exp(L + np.logaddexp.accumulate(np.log(b) - L, axis=0))


def _diagonalised(W, u):
    lam, V = np.linalg.eig(W)
    c = np.linalg.solve(V, u.T.astype(complex)).T
    z, s = np.empty_like(c), np.zeros(len(lam), complex)
    for t in range(len(c)):
        s = lam * s + c[t]
        z[t] = s
    return (z @ V.T).real


def test_right_answers_pass(capsys):
    check_blelloch_counts(_counts)
    check_logspace_positive(_logspace)
    check_diagonalised_states(_diagonalised)
    out = capsys.readouterr().out
    assert out.count("Correct") == 3


@pytest.mark.parametrize("fn, wrong", [
    (check_blelloch_counts, lambda T: (2 * T - 1, _counts(T)[1])),
    (check_blelloch_counts, lambda T: (_counts(T)[0], 2 * int(math.log2(T)))),
    (check_logspace_positive,
     lambda a, b: np.cumprod(a, 0) * np.cumsum(b / np.cumprod(a, 0), 0)),
    (check_logspace_positive, lambda a, b: np.exp(_logspace(a, b))),
    (check_logspace_positive, lambda a, b: np.full_like(b, np.nan)),
    (check_diagonalised_states, lambda W, u: np.cumsum(u, axis=0)),
    (check_diagonalised_states, lambda W, u: _diagonalised(W.T, u)),
])
def test_wrong_answers_fail_with_a_hint(fn, wrong):
    with np.errstate(all="ignore"), pytest.raises(AssertionError) as err:
        fn(wrong)
    assert len(str(err.value)) > 20
