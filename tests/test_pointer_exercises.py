"""Checkers of chapter 12's first page (Exercises 12.1-12.4): the reference answers as
they stand in the notebook pass, and the answers are not given away on the page."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from companion.exercises import ch12

NB = Path(__file__).resolve().parents[1] / "book" / "ch12_beyond.ipynb"
EXERCISES = {"pointer_nll_grads": ch12.check_pointer_nll_grads,
             "zoneout_states": ch12.check_zoneout_states,
             "greedy_permutation": ch12.check_greedy_permutation,
             "expected_zoneout_jacobian": ch12.check_expected_zoneout_jacobian}


def _cells():
    return json.loads(NB.read_text())["cells"]


def _solutions():
    space = {"np": np, "math": math}
    for cell in _cells():
        if cell["cell_type"] == "code" and "solution" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), space)
    return space


@pytest.mark.parametrize("name", EXERCISES)
def test_notebook_solution_passes_its_checker(name, capsys):
    EXERCISES[name](_solutions()[name])
    assert capsys.readouterr().out.startswith("Correct:")


def test_each_checker_cell_calls_its_checker():
    sources = ["".join(c["source"]) for c in _cells() if "checker" in c["metadata"].get("tags", [])]
    for name in EXERCISES:
        assert any(f"check_{name}({name})" in s for s in sources), name


def test_the_page_imports_no_answer():
    """No visible code cell names the package functions that compute an answer."""
    visible = "".join("".join(c["source"]) for c in _cells()
                      if c["cell_type"] == "code" and "solution" not in c["metadata"].get("tags", []))
    for name in ("step_jacobians", "leaky_hidden_states", "regularised_step", ".backward("):
        assert name not in visible, name
