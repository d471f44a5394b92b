"""Exercise checkers must accept right answers and reject wrong ones."""

import numpy as np
import pytest

from companion.exercises import ch01, ch02
from companion.scratch import unroll


def test_ch01_checkers_reject_wrong_answers(capsys):
    ch01.check_ex1_final_state(lambda: -0.5)
    with pytest.raises(AssertionError, match="recompute step by step"):
        ch01.check_ex1_final_state(lambda: 0.5)
    ch01.check_latch(lambda xs: (np.cumsum(xs) > 0).astype(float))
    with pytest.raises(AssertionError, match="stay at 1"):
        ch01.check_latch(lambda xs: np.asarray(xs, float))  # forgets immediately
    with pytest.raises(AssertionError, match="one state per input"):
        ch01.check_latch(lambda xs: unroll(lambda s, x: np.maximum(s, x), [0.0],
                                           xs=np.asarray(xs, float)[:, None])[:, 0])
    ch01.check_transient_matrix(lambda: np.array([[0.5, 2.0], [0.0, 0.5]]))
    with pytest.raises(AssertionError, match="below 1"):
        ch01.check_transient_matrix(lambda: np.eye(2) * 1.5)
    with pytest.raises(AssertionError, match="no vector is amplified"):
        ch01.check_transient_matrix(lambda: np.eye(2) * 0.5)
    with pytest.raises(AssertionError, match="Count time steps from 1"):
        ch01.check_receptive_field(lambda r, tol: int(np.nonzero(np.abs(r) > tol)[0][-1]))
    assert capsys.readouterr().out.count("Correct") == 3


def test_ch02_checkers_reject_wrong_answers():
    with pytest.raises(AssertionError, match="W edge out of h"):
        ch02.check_edge_counts(lambda tau: {"W": tau - 1, "U": tau, "V": tau, "loss": tau})
    with pytest.raises(AssertionError, match="g3 does not match"):
        ch02.check_g3(lambda f, h0, x1, x2, x3: f(f(h0, x1), x3))
    with pytest.raises(AssertionError, match="oldest"):
        ch02.check_scalar_closed_form(lambda w, u, xs, h0: w * h0 + u * np.sum(xs))
    with pytest.raises(AssertionError, match="1 - h"):
        # forgets the tanh derivative: the classic bug
        def no_tanh(w, xs, h0):
            hs = unroll(lambda h, x: np.tanh(w * h + x), [h0], xs=np.asarray(xs)[:, None])[:, 0]
            return sum(w ** (len(xs) - t) * hs[t - 1] for t in range(1, len(xs) + 1))
        ch02.check_dh_dw(no_tanh)


def test_ch01_ch02_checkers_never_state_the_answer(capsys):
    """Wrong tries get a hint, not the expected value; successes do not restate it."""
    ch01.check_ex1_final_state(lambda: -0.5)
    assert "-0.5" not in capsys.readouterr().out
    with pytest.raises(AssertionError) as err:
        ch01.check_ex1_final_state(lambda: 0.25)
    assert "-0.5" not in str(err.value)
    with pytest.raises(AssertionError) as err:
        ch01.check_ex1_final_state(lambda: float("nan"))
    with pytest.raises(AssertionError) as err:
        ch01.check_receptive_field(lambda r, tol: 2)
    assert "expected" not in str(err.value)
    with pytest.raises(AssertionError, match="NaN"):
        ch01.check_transient_matrix(lambda: np.array([[0.5, np.nan], [0.0, 0.5]]))
    with pytest.raises(AssertionError) as err:
        ch02.check_edge_counts(lambda tau: {"W": tau + 1, "U": tau, "V": tau, "loss": tau})
    assert "'W': 1," not in str(err.value)
    with pytest.raises(AssertionError, match="exactly the keys"):
        ch02.check_edge_counts(lambda tau: {"W": tau})
    with pytest.raises(AssertionError):
        ch02.check_dh_dw(lambda w, xs, h0: float("nan"))
    ch02.check_edge_counts(lambda tau: {"W": tau, "U": tau, "V": tau, "loss": tau})
    assert "per time step" not in capsys.readouterr().out


def test_checkers_raise_explicitly_never_with_a_bare_assert():
    """`assert` vanishes under python -O, and pytest's rewriting would append the expected
    value to the hint: every checker reports through companion.exercises.require."""
    import ast
    import pathlib

    import companion.exercises

    folder = pathlib.Path(companion.exercises.__file__).parent
    modules = sorted(folder.glob("ch*.py"))
    assert len(modules) >= 9
    for path in modules:
        tree = ast.parse(path.read_text())
        bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not bare, f"{path.name}: bare assert on lines {bare}; use _require(cond, hint)"
