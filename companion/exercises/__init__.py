"""Checkers for the book's exercises: ``check_*`` functions print a verdict or raise
``AssertionError`` with a hint. Reference solutions are in the notebooks (hidden cells)."""
