"""The adding and temporal-order problems: definitions, seeding, errors."""

import numpy as np
import pytest

from companion.data.synthetic import (
    ADDING_TOLERANCE,
    TEMPORAL_ORDER_SYMBOLS,
    adding_problem,
    adding_solved,
    temporal_order,
)


@pytest.mark.parametrize("T", [6, 10, 25, 100])
def test_adding_problem_follows_the_definition(T):
    x, y = adding_problem(500, T, seed=1)
    assert x.shape == (500, T, 2) and y.shape == (500,)
    values, marks = x[..., 0], x[..., 1]
    assert np.all(np.abs(values) <= 1)
    ones = marks == 1.0
    assert np.all(ones.sum(1) == 2)
    pos = np.argwhere(ones)[:, 1].reshape(500, 2)  # sorted positions per row
    half = T // 2 - 1
    assert np.all(pos[:, 1] < half)  # both marks among the first T/2 - 1 steps
    assert np.all(pos[:, 0] < min(10, half))  # one of them among the first ten
    assert np.all(marks[:, -1] == -1.0)
    assert np.all((marks[:, 0] == -1.0) | (marks[:, 0] == 1.0))
    assert np.all(values[marks[:, 0] == 1.0, 0] == 0.0)  # X1 = 0 if the first step is marked
    np.testing.assert_allclose(y, 0.5 + (values * ones).sum(1) / 4)
    assert np.all((y >= 0) & (y <= 1))
    assert set(np.unique(marks)) <= {-1.0, 0.0, 1.0}


def test_adding_problem_is_seeded():
    a = adding_problem(4, 12, seed=7)
    b = adding_problem(4, 12, rng=np.random.default_rng(7))
    c = adding_problem(4, 12, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_adding_problem_second_marks_cover_the_range():
    x, _ = adding_problem(4000, 40, seed=0)
    pos = np.argwhere(x[..., 1] == 1.0)[:, 1]
    assert set(pos.tolist()) == set(range(19))


def test_adding_solved_and_constant_baseline():
    assert adding_solved([0.5, 0.5], [0.5 + 0.039, 0.5 + 0.041]).tolist() == [True, False]
    assert ADDING_TOLERANCE == 0.04
    _, y = adding_problem(20000, 20, seed=2)
    frac = adding_solved(np.full_like(y, 0.5), y).mean()
    assert 0.1 < frac < 0.25  # predicting 0.5 solves only a small fraction
    assert adding_solved(np.c_[y], y).all()  # (n, 1) predictions accepted


def test_temporal_order_follows_the_definition():
    T = 100
    x, y = temporal_order(300, T, seed=0)
    assert x.shape == (300, T, 8) and y.dtype == np.int64
    ids = x.argmax(-1)
    np.testing.assert_array_equal(x.sum(-1), 1.0)
    assert np.all(ids[:, 0] == TEMPORAL_ORDER_SYMBOLS.index("E"))
    assert np.all(ids[:, -1] == TEMPORAL_ORDER_SYMBOLS.index("B"))
    rel = np.isin(ids, [4, 5])
    assert np.all(rel.sum(1) == 2)
    pos = np.argwhere(rel)[:, 1].reshape(300, 2)
    assert np.all((pos[:, 0] >= 10) & (pos[:, 0] <= 20))
    assert np.all((pos[:, 1] >= 50) & (pos[:, 1] <= 60))
    first = ids[np.arange(300), pos[:, 0]] - 4
    second = ids[np.arange(300), pos[:, 1]] - 4
    np.testing.assert_array_equal(y, 2 * first + second)
    assert set(np.bincount(y, minlength=4) > 40) == {True}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="length must be an int >= 6"):
        adding_problem(3, 5, seed=0)
    with pytest.raises(ValueError, match="length must be an int >= 10"):
        temporal_order(3, 9, seed=0)
    with pytest.raises(TypeError, match="n must be an int"):
        adding_problem(2.5, 10, seed=0)
    with pytest.raises(ValueError, match="pass either rng"):
        adding_problem(2, 10, rng=np.random.default_rng(0), seed=0)
    with pytest.raises(ValueError, match="a source of randomness must be given"):
        temporal_order(2, 10)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        adding_problem(2, 10, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"pred and target must both be \(n,\)"):
        adding_solved(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"tolerance must be a number > 0.*0.04"):
        adding_solved([0.1], [0.1], tolerance=0)


@pytest.mark.parametrize("task", [adding_problem, temporal_order])
def test_dtype_argument_gives_the_same_sequences(task):
    x64, y64 = task(4, 20, seed=5)
    x32, y32 = task(4, 20, seed=5, dtype=np.float32)
    assert x64.dtype == np.float64 and x32.dtype == np.float32
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    if task is adding_problem:
        assert y32.dtype == np.float32
        np.testing.assert_array_equal(y32, y64.astype(np.float32))
    else:
        assert y32.dtype == y64.dtype == np.int64
        np.testing.assert_array_equal(y32, y64)


@pytest.mark.parametrize("task", [adding_problem, temporal_order])
def test_dtype_argument_is_checked(task):
    with pytest.raises(TypeError, match=r"dtype must be a NumPy float dtype.*got int64"):
        task(2, 12, seed=0, dtype=np.int64)
    with pytest.raises(TypeError, match=r"dtype must be a NumPy float dtype; got torch.float32. "
                                        r"Use np.float32"):
        task(2, 12, seed=0, dtype="torch.float32")  # what str(torch.float32) gives
    with pytest.raises(TypeError, match=r"dtype must be a NumPy float dtype such as"):
        task(2, 12, seed=0, dtype="not a dtype")


def test_adding_solved_tolerance_types():
    with pytest.raises(TypeError, match=r"tolerance must be a number > 0; got str"):
        adding_solved([0.5], [0.5], "0.04")
    with pytest.raises(ValueError, match=r"tolerance must be a number > 0; got nan"):
        adding_solved([0.5], [0.5], float("nan"))


def test_a_torch_dtype_gets_its_numpy_name():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"got torch.float32. Use np.float32"):
        adding_problem(2, 12, seed=0, dtype=torch.float32)
