"""Stored sweep results: load_results, the JSON's consistency, the result helpers."""

import json
import math

import numpy as np
import pytest

from companion.data.results import (
    available_results,
    gradient_profiles,
    load_results,
    lr_grid_scores,
    success_table,
    sweep_fractions,
)

SWEEPS = ["long_range_sweep", "temporal_order_sweep"]


def test_available_results_lists_the_sweeps():
    assert set(SWEEPS) <= set(available_results())


def test_load_results_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: .*long_range_sweep"):
        load_results("long_range_swep")
    with pytest.raises(TypeError, match="string"):
        load_results(3)
    with pytest.raises(ValueError, match="no stored results"):
        load_results("../results/long_range_sweep")


def test_load_results_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_results("long_range_sweep.json")["name"] == "long_range_sweep"


@pytest.mark.parametrize("name", SWEEPS)
def test_stored_sweep_is_complete_and_consistent(name):
    res = load_results(name)
    cfg = res["config"]
    assert res["name"] == name and len(cfg["seeds"]) >= 5
    models = cfg["models"]
    assert set(models) == {"rnn", "rnn_clip", "irnn", "lstm", "gru"}
    for m, spec in models.items():
        grid = spec["lr_grid"]
        assert len(grid) >= 3 and grid == sorted(grid)
        ratios = np.diff(np.log10(grid))
        assert np.allclose(ratios, ratios[0], atol=0.05)  # log-spaced
        assert res["chosen_lr"][m] in grid
    # stage 1: every (model, lr, selection length, seed) of the grid ran exactly once
    sel, ext = cfg["selection_lengths"], cfg["extension_lengths"]
    assert cfg["lengths"] == sel + ext and sorted(ext) == ext and min(ext) > max(sel)
    keys = [(r["model"], r["lr"], r["length"], r["seed"]) for r in res["runs"]]
    assert len(keys) == len(set(keys))
    stage1 = {(m, lr, L, s) for m, spec in models.items() for lr in spec["lr_grid"]
              for L in sel for s in cfg["seeds"]}
    assert {k for k in keys if k[2] in sel} == stage1
    # stage 2: only the chosen lr, all seeds, while the previous length had a success
    for m in models:
        lr = res["chosen_lr"][m]
        previous = max(sel)
        for L in ext:
            ran = {k for k in keys if k[0] == m and k[2] == L}
            went_on = any(r["success"] for r in res["runs"] if r["model"] == m
                          and r["length"] == previous and r["lr"] == lr)
            expected_here = {(m, lr, L, s) for s in cfg["seeds"]} if went_on else set()
            assert ran == expected_here, (m, L)
            if not ran:
                break
            previous = L
        last = [row for row in res["summary"] if row["model"] == m and not row["stopped"]][-1]
        assert res["far_end_reached"][m] == (last["k"] == 0)
    for r in res["runs"]:
        assert r["success"] == (not r["diverged"] and r["test_fraction"] is not None
                                and r["test_fraction"] >= cfg["success_fraction"])
    # the summary's k/n are recomputed from the runs at the chosen lr
    for row in res["summary"]:
        cell = [r for r in res["runs"] if r["model"] == row["model"]
                and r["length"] == row["length"] and r["lr"] == res["chosen_lr"][row["model"]]]
        assert row["lr"] == res["chosen_lr"][row["model"]]
        assert row["n"] == len(cell) and row["stopped"] == (not cell)
        assert row["n"] in (0, len(cfg["seeds"]))
        assert row["k"] == sum(r["success"] for r in cell)
        assert row["test_fraction"] == [r["test_fraction"] for r in cell]
    # the chosen lr follows the stored rule: best mean over the selection lengths of the
    # median validation score over seeds
    for m, spec in models.items():
        def score(lr):
            return np.mean([np.median([r["valid_fraction"] or 0.0 for r in res["runs"]
                                       if r["model"] == m and r["lr"] == lr
                                       and r["length"] == L]) for L in sel])
        best = max(score(lr) for lr in spec["lr_grid"])
        assert math.isclose(score(res["chosen_lr"][m]), best)
    # gradient norms: one record per run, finite and positive at initialisation
    assert len(res["grad_norms"]["records"]) == len(keys)
    for g in res["grad_norms"]["records"]:
        assert len(g["init"]) == len(res["grad_norms"]["distances"][str(g["length"])])
        # finite and non-negative; exactly 0 is possible far back in a ReLU network (the
        # IRNN at T=320: a path through a unit is cut whenever its input to the ReLU is < 0)
        assert all(v >= 0 and math.isfinite(v) for v in g["init"]) and g["init"][0] > 0
    assert len(res["baseline"]) == len(cfg["lengths"])
    for key in ("python", "torch", "numpy"):
        assert res["versions"][key]
    assert set(res["param_counts"]) == set(models)
    assert res["timing"]["sweep_wall_s"] > 0


@pytest.mark.parametrize("name", SWEEPS)
def test_result_helpers_shapes(name):
    res = load_results(name)
    cfg = res["config"]
    C, P, S = len(cfg["models"]), len(cfg["lengths"]), len(cfg["seeds"])
    models, lengths, F = sweep_fractions(res)
    assert F.shape == (C, P, S) and not np.isnan(F).all()
    k = (F >= cfg["success_fraction"]).sum(axis=2)
    for row in res["summary"]:
        assert k[models.index(row["model"]), lengths.index(row["length"])] <= row["n"]
    _, grids, scores = lr_grid_scores(res)
    assert [s.shape for s in scores] == [(len(g), P, S) for g in grids]
    dist, _, init, final = gradient_profiles(res, cfg["selection_lengths"][-1])
    assert init.shape == final.shape == (C, len(dist)) and np.all(init > 0)
    table = success_table(res)
    stopped = any(row["stopped"] for row in res["summary"])
    assert table.count("\n") == C + 1 + stopped and "/" in table
    assert ("-: not run" in table) == stopped
    with pytest.raises(ValueError, match="length must be one of"):
        gradient_profiles(res, 7)
    with pytest.raises(ValueError, match="split"):
        sweep_fractions(res, split="train")
    with pytest.raises(TypeError, match="sweep dict"):
        sweep_fractions({"a": 1})


def test_stored_json_is_plain_json():
    from importlib import resources
    for name in SWEEPS:
        text = resources.files("companion.data.results").joinpath(name + ".json").read_text()
        json.loads(text)  # strict: no NaN/Infinity literals
        assert "NaN" not in text and "Infinity" not in text
