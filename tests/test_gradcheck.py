"""The gradient checker itself: it must accept right gradients and catch wrong ones."""

import numpy as np
import pytest

from companion.scratch.gradcheck import (
    check_gradients,
    gradcheck_report,
    numerical_gradient,
    relative_error,
)


def test_numerical_gradient_of_a_known_function_and_restores_values():
    a = np.array([[0.3, -1.2], [2.0, 0.5]])
    before = a.copy()
    g = numerical_gradient(lambda: float(np.sum(np.sin(a) * a)), a)
    np.testing.assert_allclose(g, np.cos(before) * before + np.sin(before), rtol=1e-8)
    np.testing.assert_array_equal(a, before)


def test_centred_differences_are_second_order():
    a = np.array([1.0])
    errs = [abs(numerical_gradient(lambda: float(np.exp(a[0])), a, eps=e)[0] - np.e)
            for e in (1e-2, 1e-3)]
    assert errs[0] / errs[1] == pytest.approx(100, rel=0.05)  # error ~ eps^2


def test_check_gradients_accepts_right_and_flags_wrong():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 3))
    params = {"w": rng.normal(size=3), "v": rng.normal(size=4)}

    def f(p):
        return float(np.sum(np.tanh(A @ p["w"]) * p["v"]))

    th = np.tanh(A @ params["w"])
    good = {"w": A.T @ ((1 - th**2) * params["v"]), "v": th}
    errors = check_gradients(f, params, good)
    assert max(errors.values()) < 1e-8
    bad = {"w": A.T @ params["v"], "v": th}  # the classic missing tanh derivative
    errors = check_gradients(f, params, bad)
    assert errors["w"] > 1e-3 and errors["v"] < 1e-8
    report = gradcheck_report(errors)
    assert "dw   FAIL (relative error >= 1e-07)" in report
    assert "dv   ok   (relative error < 1e-07)" in report


def test_sampled_entries_are_reproducible():
    rng = np.random.default_rng(1)
    params = {"w": rng.normal(size=(20, 20))}
    f = lambda p: float(np.sum(p["w"] ** 3))  # noqa: E731
    wrong = 3 * params["w"] ** 2
    wrong[0, 0] += 1.0  # one wrong entry among 400
    e1 = check_gradients(f, params, {"w": wrong}, max_entries=400)
    assert e1["w"] > 1e-4
    e2 = check_gradients(f, params, {"w": 3 * params["w"] ** 2}, max_entries=10,
                         rng=np.random.default_rng(5))
    assert e2["w"] < 1e-8


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.ones(3), -np.ones(3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.ones(3), np.ones(4))


def test_bad_arguments():
    p = {"w": np.ones(3)}
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="array must be a NumPy array"):
        numerical_gradient(lambda: 0.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="eps must be a float"):
        numerical_gradient(lambda: 0.0, np.ones(3), eps=0)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        check_gradients(3.0, p, p)
    with pytest.raises(ValueError, match="params lacks"):
        check_gradients(lambda q: 0.0, p, {"v": np.ones(3)})
    with pytest.raises(ValueError, match=r"grads\['w'\] must have the shape of params\['w'\]"):
        check_gradients(lambda q: 0.0, p, {"w": np.ones(4)})
    with pytest.raises(TypeError, match="must both be dicts"):
        check_gradients(lambda q: 0.0, [1.0], p)
