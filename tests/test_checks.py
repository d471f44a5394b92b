"""companion.checks: every error names the argument, the expectation and what arrived."""

import numpy as np
import pytest

from companion import checks


def test_as_float_array_accepts_lists_and_float_arrays():
    arr = checks.as_float_array("x", [[1.0, 2.0]])
    assert arr.dtype == np.float64 and arr.shape == (1, 2)
    f32 = np.ones(3, dtype=np.float32)
    assert checks.as_float_array("x", f32) is f32  # no copy, dtype kept


def test_as_float_array_refuses_integers_with_a_hint():
    with pytest.raises(TypeError, match=r"x must hold floats; got numpy array of dtype int64.*one-hot"):
        checks.as_float_array("x", np.arange(3))


def test_as_float_array_converts_integers_when_allowed():
    assert checks.as_float_array("x", [1, 2], allow_int=True).dtype == np.float64


@pytest.mark.parametrize("bad", ["abc", None, [[1.0], [1.0, 2.0]]])
def test_as_float_array_refuses_non_numeric(bad):
    with pytest.raises(TypeError, match="x must"):
        checks.as_float_array("x", bad)


def test_as_float_array_refuses_torch_tensors_with_the_conversion():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"detach\(\)\.cpu\(\)\.numpy\(\)"):
        checks.as_float_array("h0", torch.zeros(2))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_located(value):
    x = np.zeros((2, 3))
    x[1, 2] = value
    with pytest.raises(ValueError, match=r"x must be finite; found 1 non-finite value\(s\).*\(1, 2\)"):
        checks.as_float_array("x", x)


def test_check_shape_binds_and_compares_named_dimensions():
    dims = checks.check_shape("W", np.zeros((4, 4)), ("H", "H"))
    assert dims == {"H": 4}
    checks.check_shape("U", np.zeros((4, 7)), ("H", "D"), dims)
    assert dims == {"H": 4, "D": 7}
    with pytest.raises(ValueError, match=r"b must be \(H=4,\); got \(5,\)"):
        checks.check_shape("b", np.zeros(5), ("H",), dims)


def test_check_shape_within_one_array():
    with pytest.raises(ValueError, match=r"W must be \(H, H\); got \(3, 4\).*H=3 elsewhere"):
        checks.check_shape("W", np.zeros((3, 4)), ("H", "H"))


def test_check_shape_wrong_rank():
    with pytest.raises(ValueError, match=r"x must be \(N, T, D\), batch-first; got \(5, 3\). Expected 3"):
        checks.check_shape("x", np.zeros((5, 3)), ("N", "T", "D"), layout="batch-first")


def test_check_shape_detects_time_first_input():
    dims = {"N": 4, "D": 2}
    with pytest.raises(ValueError, match=r"Time-first input\?.*x.transpose\(1, 0, 2\)"):
        checks.check_shape("x", np.zeros((10, 4, 2)), ("N", "T", "D"), dims)


def test_check_shape_fixed_sizes():
    with pytest.raises(ValueError, match=r"Axis 1 should have size 2"):
        checks.check_shape("states", np.zeros((5, 3)), ("T", 2))


def test_check_int_array_range_and_type():
    assert checks.check_int_array("y", [0, 3], high=4).dtype.kind == "i"
    with pytest.raises(ValueError, match=r"y must have every entry in \[0, 4\); got values from 0 to 4"):
        checks.check_int_array("y", [0, 4], high=4)
    with pytest.raises(TypeError, match=r"y must be an array of integer class indices.*argmax"):
        checks.check_int_array("y", [0.0, 1.0], high=4)


def test_check_positive_int():
    assert checks.check_positive_int("k", 3) == 3
    with pytest.raises(ValueError, match="k must be an int >= 1; got 0"):
        checks.check_positive_int("k", 0)
    with pytest.raises(TypeError, match="k must be an int >= 1; got float 2.5"):
        checks.check_positive_int("k", 2.5)
    with pytest.raises(TypeError, match="k must be an int"):
        checks.check_positive_int("k", True)


def test_check_probability_and_callable():
    assert checks.check_probability("p", 0.5) == 0.5
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\]; got 0.0"):
        checks.check_probability("p", 0.0, open_low=True)
    with pytest.raises(TypeError, match=r"f must be a function with signature f\(s\)"):
        checks.check_callable("f", 3, "f(s)")


def test_check_rng():
    rng = np.random.default_rng(0)
    assert checks.check_rng("rng", rng) is rng
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator; got int.*default_rng"):
        checks.check_rng("rng", 0)


# ---- bounds, types and non-finite values ------------------------------------------------------------


def test_check_real_bounds_types_and_non_finite():
    assert checks.check_real("a", 3) == 3.0
    assert checks.check_real("a", np.float32(0.5), low=0, high=1) == 0.5
    with pytest.raises(TypeError, match=r"a must be a number >= 0; got str '1'"):
        checks.check_real("a", "1", low=0)
    with pytest.raises(TypeError, match=r"a must be a finite number; got bool"):
        checks.check_real("a", True)
    with pytest.raises(ValueError, match=r"a must be a number in \(0, 1\); got 1.0"):
        checks.check_real("a", 1.0, low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"a must be a number <= 2; got nan. Try 1"):
        checks.check_real("a", float("nan"), high=2, hint="Try 1.")


def test_check_nonempty_names_the_empty_axis():
    checks.check_nonempty("x", np.zeros((2, 3, 0)), ("N", "T"))  # D = 0 is not checked
    with pytest.raises(ValueError, match=r"x must have at least one time step \(axis 1, T >= 1\); "
                                         r"got shape \(2, 0, 4\). Hint"):
        checks.check_nonempty("x", np.zeros((2, 0, 4)), ("N", "T", "D"), hint="Hint")
    with pytest.raises(ValueError, match=r"W must have at least one entry along H \(axis 0"):
        checks.check_nonempty("W", np.zeros((0, 0)), ("H", "H"))


def test_check_batch_first_blames_the_argument_that_is_wrong():
    dims = {"D": 2}
    h0 = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"h0 must be \(N=5, H\); got \(3, 4\)"):
        checks.check_batch_first("x", np.zeros((5, 7, 2)), ("N", "T", "D"), dict(dims),
                                 (("h0", h0, ("N", "H"), ""),))
    with pytest.raises(ValueError, match=r"x must be \(N=3, T, D=2\), batch-first; got \(7, 3, 2\)"
                                         r".*x.transpose\(1, 0, 2\)"):
        checks.check_batch_first("x", np.zeros((7, 3, 2)), ("N", "T", "D"), dict(dims),
                                 (("h0", h0, ("N", "H"), ""),))
    y = np.zeros((3, 7))
    with pytest.raises(ValueError, match=r"y must be \(N=3, T=6\); got \(3, 7\). .*class ids"):
        checks.check_batch_first("x", np.zeros((3, 6, 2)), ("N", "T", "D"), dict(dims),
                                 (("y", y, ("N", "T"), "class ids"), ("h0", None, ("N",), "")))
    out = checks.check_batch_first("x", np.zeros((3, 7, 2)), ("N", "T", "D"), dict(dims),
                                   (("y", y, ("N", "T"), ""),))
    assert out == {"D": 2, "N": 3, "T": 7}


def test_check_keys_reports_missing_and_extra():
    ref = {"W": 0, "b": 0}
    assert checks.check_keys("g", {"b": 1, "W": 2}, ref)
    with pytest.raises(ValueError, match=r"g must have one entry per key of the parameters, "
                                         r"\['W', 'b'\]; missing \['b'\] and unexpected \['h0'\]"):
        checks.check_keys("g", {"W": 1, "h0": 2}, ref)
    with pytest.raises(TypeError, match=r"g must be a dict with keys \['W', 'b'\]; got list"):
        checks.check_keys("g", [1, 2], ref)


def test_check_axis_and_float_dtype():
    assert checks.check_axis("axis", -1, 3) == 2
    with pytest.raises(ValueError, match=r"axis must be in \[-3, 3\)"):
        checks.check_axis("axis", 3, 3)
    with pytest.raises(TypeError, match=r"axis must be an int; got float"):
        checks.check_axis("axis", 1.0, 3)
    assert checks.check_float_dtype("dtype", "float32") == np.float32
    with pytest.raises(TypeError, match=r"dtype must be a NumPy float dtype .*got int32"):
        checks.check_float_dtype("dtype", np.int32)


# ------------------------------------------------------------------- torch tensors
def test_check_tensor_names_the_argument_and_the_fix():
    import torch

    from companion.checks import check_tensor

    dims = check_tensor("x", torch.zeros(4, 3, 2), ("N", "T", "D"))
    assert dims == {"N": 4, "T": 3, "D": 2}
    with pytest.raises(TypeError, match=r"x must be a torch tensor \(N, T, D\); got numpy "
                                        r"array of dtype float64\. Convert it with torch\.as_tensor"):
        check_tensor("x", np.zeros((4, 3, 2)), ("N", "T", "D"))
    with pytest.raises(TypeError, match=r"torch\.tensor\(x, dtype=torch\.float32\)"):
        check_tensor("x", [[1.0]], ("N", "D"))
    with pytest.raises(TypeError, match="x must hold floats; got dtype torch.int64. If these "
                                        "are token ids"):
        check_tensor("x", torch.zeros(4, 3, dtype=torch.long), ("N", "D"))
    with pytest.raises(TypeError, match=r"dtype torch.float32 \(that of the module's weights\); "
                                        r"got torch.float64. Use x.float\(\)"):
        check_tensor("x", torch.zeros(4, 3, dtype=torch.float64), ("N", "D"), dtype=torch.float32)
    with pytest.raises(ValueError, match=r"x must be \(N=4, T, D=2\); got \(3, 4, 2\).*Time-first input"):
        check_tensor("x", torch.zeros(3, 4, 2), ("N", "T", "D"), {"N": 4, "D": 2})
    bad = torch.zeros(4, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite; found 1 non-finite value\(s\), "
                                         r"the first \(nan\) at index \(2, 1\)"):
        check_tensor("x", bad, ("N", "D"))
    check_tensor("x", bad, ("N", "D"), finite=False)  # allowed when asked
    check_tensor("x", torch.zeros(0, 3), ("N", "D"))  # an empty tensor has nothing to check


def test_check_token_tensor_refuses_floats_and_ids_out_of_range():
    import torch

    from companion.checks import check_token_tensor

    ids = torch.tensor([[0, 4, 2]])
    assert check_token_tensor("src", ids, ("N", "S"), vocab_size=5) == {"N": 1, "S": 3}
    with pytest.raises(TypeError, match="a float id would be truncated"):
        check_token_tensor("src", ids.float(), ("N", "S"), vocab_size=5)
    with pytest.raises(TypeError, match=r"src must be a torch.long tensor of token ids \(N, S\); "
                                        r"got list"):
        check_token_tensor("src", [[0, 1]], ("N", "S"), vocab_size=5)
    for wrong, lo, hi in ((torch.tensor([[0, -1]]), -1, 0), (torch.tensor([[5, 1]]), 1, 5)):
        with pytest.raises(ValueError, match=rf"src must hold token ids in \[0, 5\); got ids "
                                             rf"from {lo} to {hi}"):
            check_token_tensor("src", wrong, ("N", "S"), vocab_size=5)
    with pytest.raises(ValueError, match=r"src must be \(N, S\)"):
        check_token_tensor("src", torch.tensor([0, 1]), ("N", "S"), vocab_size=5)
