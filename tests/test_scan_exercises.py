"""Checkers of Exercises 12.21-12.23 (ch12_scans): the reference answers as they stand in
the notebook pass; the counts are those of the scan for every length, not only powers of
two; the backward pass agrees with finite differences."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from companion.exercises import ch12
from companion.scratch.scan import blelloch_schedule, scan_loop

NB = Path(__file__).resolve().parents[1] / "book" / "ch12_scans.ipynb"
EXERCISES = {"blelloch_counts": ch12.check_blelloch_counts,
             "scan_backward": ch12.check_scan_backward,
             "diagonal_form": ch12.check_diagonal_form}


def _solutions():
    space = {"np": np, "math": math}
    for cell in json.loads(NB.read_text())["cells"]:
        if cell["cell_type"] == "code" and "solution" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), space)
    return space


@pytest.mark.parametrize("name", EXERCISES)
def test_notebook_solution_passes_its_checker(name, capsys):
    EXERCISES[name](_solutions()[name])
    assert capsys.readouterr().out.startswith("Correct:")


def test_counts_match_the_drawn_schedule_for_every_small_length():
    counts = _solutions()["blelloch_counts"]
    for T in range(1, 300):
        levels = blelloch_schedule(T)
        assert counts(T) == (sum(len(lv["pairs"]) for lv in levels), len(levels)), T


def test_scan_backward_agrees_with_finite_differences():
    backward = _solutions()["scan_backward"]
    rng = np.random.default_rng(0)
    a, b, G = rng.uniform(-1, 1, (7, 2)), rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    grad_a, grad_b = backward(a, b, G)
    eps = 1e-6
    for t in range(7):
        for h in range(2):
            for arr, grad in ((a, grad_a), (b, grad_b)):
                up, down = arr.copy(), arr.copy()
                up[t, h] += eps
                down[t, h] -= eps
                args_up = (up, b) if arr is a else (a, up)
                args_down = (down, b) if arr is a else (a, down)
                fd = ((scan_loop(*args_up) * G).sum() - (scan_loop(*args_down) * G).sum()) / (2 * eps)
                assert abs(fd - grad[t, h]) < 1e-8
