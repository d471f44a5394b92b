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


# --- checks that can fail: NaN and inf are failures, never passes -----------------------

CUBE = staticmethod(lambda q: float(np.sum(q["w"] ** 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_relative_error_of_non_finite_input_is_inf(bad):
    a = np.array([1.0, 2.0])
    b = a.copy()
    b[1] = bad
    assert relative_error(a, b) == np.inf
    assert relative_error(b, a) == np.inf
    assert not relative_error(a, b) < 1e-7


def test_relative_error_whose_norms_overflow_is_inf():
    assert relative_error(np.array([1e308, 1e308]), np.array([-1e308, 1e308])) == np.inf


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_check_gradients_fails_on_a_non_finite_gradient(bad):
    p = {"w": np.array([1.0, -2.0]), "v": np.array([0.5])}
    f = lambda q: float(np.sum(q["w"] ** 3) + np.sum(q["v"] ** 2))  # noqa: E731
    g = {"v": 2 * p["v"], "w": 3 * p["w"] ** 2}
    g["w"][0] = bad  # the bad parameter comes second in iteration order of max()
    errors = check_gradients(f, p, g)
    assert errors["w"] == np.inf
    assert not max(errors.values()) < 1e-7  # the verdict the book prints
    assert "dw   FAIL" in gradcheck_report(errors)


def test_check_gradients_fails_when_the_loss_is_nan():
    p = {"w": np.array([1.0, -2.0])}
    errors = check_gradients(lambda q: float("nan"), p, {"w": np.zeros(2)})
    assert errors["w"] == np.inf
    np.testing.assert_array_equal(p["w"], [1.0, -2.0])  # restored


def test_gradcheck_report_fails_nan_and_inf_errors():
    report = gradcheck_report({"W": np.nan, "b": np.inf, "c": 1e-12})
    assert "dW   FAIL (relative error is nan" in report
    assert "db   FAIL (relative error is inf" in report
    assert "dc   ok   (relative error < 1e-07)" in report


@pytest.mark.parametrize("bad", [0, -3])
def test_max_entries_must_be_positive(bad):
    p = {"w": np.ones(3)}
    with pytest.raises(ValueError, match=rf"max_entries must be an int >= 1; got {bad}"):
        check_gradients(CUBE, p, {"w": 3 * p["w"] ** 2}, max_entries=bad)


def test_check_gradients_bad_arguments_name_the_argument():
    p = {"w": np.ones(3)}
    g = {"w": 3 * p["w"] ** 2}
    with pytest.raises(TypeError, match="max_entries must be an int >= 1; got float"):
        check_gradients(CUBE, p, g, max_entries=2.5)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_gradients(CUBE, p, g, max_entries=2, rng=5)
    with pytest.raises(TypeError, match=r"params\['w'\] must be float64.*got float32"):
        check_gradients(CUBE, {"w": np.ones(3, dtype=np.float32)}, g)
    with pytest.raises(TypeError, match=r"params\['w'\] must be a NumPy array"):
        check_gradients(CUBE, {"w": [1.0, 1.0, 1.0]}, g)
    with pytest.raises(TypeError, match=r"loss_fn must return a scalar loss.*shape \(3,\)"):
        check_gradients(lambda q: q["w"] ** 2, p, g)
    np.testing.assert_array_equal(p["w"], np.ones(3))  # restored even after the error
    with pytest.raises(TypeError, match=r"f must return a scalar loss"):
        numerical_gradient(lambda: "loss", np.ones(2))


def test_gradcheck_report_bad_arguments():
    with pytest.raises(TypeError, match="errors must be the dict returned by check_gradients"):
        gradcheck_report([1e-9])
    with pytest.raises(ValueError, match=r"tol must be a number > 0; got 0.0"):
        gradcheck_report({"W": 1e-9}, tol=0)
    with pytest.raises(TypeError, match=r"errors\['W'\] must be a finite number; got str"):
        gradcheck_report({"W": "small"})
