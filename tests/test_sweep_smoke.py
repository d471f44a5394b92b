"""The long-range sweep's code path at tiny size (the full run regenerates book/data)."""

import json

import pytest

from experiments import long_range_sweep as sweep_mod


def test_sweep_command_runs_at_tiny_size(tmp_path):
    out = tmp_path / "sweep.json"
    rc = sweep_mod.main(["--out", str(out), "--lengths", "6", "8", "--seeds", "0",
                         "--steps", "3", "--hidden", "4", "--n-test", "20", "--workers", "1"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["lengths"] == [6, 8] and data["settings"]["steps"] == 3
    runs = data["runs"]
    assert len(runs) == 2 * len(sweep_mod.DEFAULT_CONFIGS)
    assert {(r["model"], r["clip"]) for r in runs} == {tuple(c) for c in sweep_mod.DEFAULT_CONFIGS}
    for r in runs:
        assert 0.0 <= r["fraction_solved"] <= 1.0
        assert r["success"] == (r["fraction_solved"] >= sweep_mod.SUCCESS_FRACTION)


def test_run_one_is_deterministic():
    a = sweep_mod.run_one("gru", "norm", 6, 3, steps=4, hidden=4, n_test=30)
    b = sweep_mod.run_one("gru", "norm", 6, 3, steps=4, hidden=4, n_test=30)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_sweep_rejects_too_short_lengths(tmp_path):
    with pytest.raises(SystemExit):
        sweep_mod.main(["--out", str(tmp_path / "x.json"), "--lengths", "3"])


def test_stored_results_cover_the_documented_grid():
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "book" / "data" / "long_range_sweep.json"
    if not path.exists():
        pytest.fail("book/data/long_range_sweep.json is missing: run the sweep command "
                    "(see experiments/README.md)")
    data = json.loads(path.read_text())
    expected = {(m, c, L, s) for m, c in data["configs"] for L in data["lengths"]
                for s in data["seeds"]}
    assert {(r["model"], r["clip"], r["length"], r["seed"]) for r in data["runs"]} == expected
