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
