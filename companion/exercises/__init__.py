"""Checkers for the book's exercises: ``check_*`` functions print a verdict or raise
``AssertionError`` with a hint. Reference solutions are in the notebooks (hidden cells).

Every checker reports through :func:`ok` and :func:`require`. A hint never states the
expected value, and :func:`require` raises explicitly instead of using ``assert``:
asserts vanish under ``python -O`` (every answer would pass), and pytest's assertion
rewriting would append the compared values, the expected answer included, to the hint.
"""

__all__ = ["ok", "require"]


def ok(message: str) -> None:
    """Print the one-line verdict of a right answer."""
    print(f"Correct: {message}")


def require(condition, hint: str) -> None:
    """Raise ``AssertionError(hint)`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(hint)
