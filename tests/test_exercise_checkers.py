"""Rules every exercise checker follows (the checkers of chapters 1-4 are tested one by one
in tests/test_checkers_ch01_ch04.py)."""


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


def test_an_answer_with_the_wrong_number_of_arguments_gets_the_expected_signature():
    """Checkers call answers positionally: other names pass the call, another number of
    arguments is refused with the expected signature, never with a bare TypeError."""
    import pytest

    from companion.exercises import takes_arguments
    from companion.exercises.ch01 import check_final_state, check_latch_step
    from companion.exercises.ch06 import check_gru_step_backward, check_peephole_lstm_step

    takes_arguments(lambda *args: None, "(a, s0, xs) -> s")          # *args accepts anything
    takes_arguments(lambda a, s0, xs, extra=1: None, "(a, s0, xs) -> s")
    cases = [(check_final_state, lambda a, xs: 0.0, "(a, s0, xs)"),
             (check_latch_step, lambda s: s, "(s, x)"),
             (check_peephole_lstm_step, lambda x, h, c, wi, wh, bi, bh: (h, c), "peep"),
             (check_gru_step_backward, lambda dh, x, h: {}, "bias_hh")]
    for checker, answer, shown in cases:
        with pytest.raises(AssertionError, match="must take") as err:
            checker(answer)
        assert shown in str(err.value) and "yours is" in str(err.value)
