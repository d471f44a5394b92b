"""The fair sweep's code path at tiny size (the full run regenerates companion/data/results)."""

import json

import pytest

from experiments import long_range_sweep as sweep_mod

TINY = ["--lengths", "10", "12", "--seeds", "0", "1", "--steps", "3", "--hidden", "4",
        "--n-valid", "20", "--n-test", "20", "--n-probe", "4", "--workers", "1",
        "--lrs", "1e-3", "1e-2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert sweep_mod.main(["--out-dir", str(out)] + TINY) == 0
    return {t: json.loads((out / f"{spec['name']}.json").read_text())
            for t, spec in sweep_mod.TASKS.items()}


def test_sweep_writes_every_run_of_the_grid(tiny):
    for task, res in tiny.items():
        cfg = res["config"]
        assert cfg["lengths"] == [10, 12] and cfg["steps"] == 3 and cfg["seeds"] == [0, 1]
        expected = {(m, L, lr, s) for m in sweep_mod.MODELS for L in (10, 12)
                    for lr in (1e-3, 1e-2) for s in (0, 1)}
        assert {(r["model"], r["length"], r["lr"], r["seed"]) for r in res["runs"]} == expected
        assert len(res["grad_norms"]["records"]) == len(expected)
        for r in res["runs"]:
            assert 0.0 <= r["test_fraction"] <= 1.0
            assert r["success"] == (not r["diverged"]
                                    and r["test_fraction"] >= cfg["success_fraction"])
        for m in sweep_mod.MODELS:
            assert res["chosen_lr"][m] in (1e-3, 1e-2)
        assert set(res["param_counts"]) == set(sweep_mod.MODELS)
        assert res["param_counts"]["rnn"] == res["param_counts"]["irnn"]


def test_gradient_norms_are_stored_at_every_distance(tiny):
    res = tiny["adding"]
    for g in res["grad_norms"]["records"]:
        dist = res["grad_norms"]["distances"][str(g["length"])]
        assert len(g["init"]) == len(g["final"]) == len(dist)
        assert dist[0] == 0 and dist[-1] == g["length"] - 1
        assert all(v > 0 for v in g["init"])


def test_the_same_seed_gives_the_same_runs(tmp_path):
    args = ["--tasks", "adding", "--models", "gru", "lstm"] + TINY
    for name in ("a", "b"):
        assert sweep_mod.main(["--out-dir", str(tmp_path / name)] + args) == 0
    a, b = (json.loads((tmp_path / n / "long_range_sweep.json").read_text()) for n in "ab")
    assert a["runs"] == b["runs"] and a["grad_norms"] == b["grad_norms"]


def test_members_of_one_seed_share_their_data_and_start():
    """Two lrs of one seed start from the same weights and see the same batches."""
    job = sweep_mod.run_job("adding", 10, "gru", ["gru"], {"gru": (1e-3, 1e-3)}, [0, 1],
                            dict(sweep_mod.DEFAULTS, steps=2, hidden=3, n_valid=8,
                                 n_test=8, n_probe=2))
    runs = job["runs"]  # members: (lr, seed) = (1e-3, 0), (1e-3, 1), (1e-3, 0), (1e-3, 1)
    assert runs[0]["test_loss"] == runs[2]["test_loss"] != runs[1]["test_loss"]


def test_sweep_rejects_too_short_lengths(tmp_path):
    with pytest.raises(SystemExit):
        sweep_mod.main(["--out-dir", str(tmp_path), "--lengths", "6"])


def test_merging_two_invocations_equals_one(tmp_path):
    """Jobs are seeded on their own: lengths run apart and merged = lengths run together."""
    common = ["--tasks", "adding", "--models", "rnn", "gru"] + TINY[3:]  # drop --lengths
    assert sweep_mod.main(["--out-dir", str(tmp_path / "both"), "--lengths", "10", "12"]
                          + common) == 0
    for L in ("10", "12"):
        assert sweep_mod.main(["--out-dir", str(tmp_path / L), "--lengths", L] + common) == 0
    assert sweep_mod.main(["--out-dir", str(tmp_path / "merged"), "--merge",
                           str(tmp_path / "10" / "long_range_sweep.json"),
                           str(tmp_path / "12" / "long_range_sweep.json")]) == 0
    both, merged = (json.loads((tmp_path / d / "long_range_sweep.json").read_text())
                    for d in ("both", "merged"))
    for key in ("config", "runs", "summary", "chosen_lr", "grad_norms", "baseline",
                "param_counts", "chosen_lr_per_length"):
        assert merged[key] == both[key], key
    with pytest.raises(ValueError, match="share a length"):
        sweep_mod.merge_results([both, both])


def test_extending_the_grid_equals_running_the_larger_grid(tmp_path):
    """Added learning rates complete the stored runs: the result equals one run of the union."""
    base = ["--lengths", "10", "--seeds", "0", "1", "--steps", "3", "--hidden", "4",
            "--n-valid", "20", "--n-test", "20", "--n-probe", "4", "--workers", "1",
            "--models", "rnn", "gru"]
    assert sweep_mod.main(["--out-dir", str(tmp_path / "ext")] + base + ["--lrs", "1e-3"]) == 0
    assert sweep_mod.main(["--out-dir", str(tmp_path / "ext")] + base
                          + ["--extend", "gru=1e-2"]) == 0
    ext = json.loads((tmp_path / "ext" / "long_range_sweep.json").read_text())
    assert ext["config"]["models"]["gru"]["lr_grid"] == [1e-3, 1e-2]
    assert ext["config"]["models"]["rnn"]["lr_grid"] == [1e-3]
    grids = {"rnn": (1e-3,), "gru": (1e-3, 1e-2)}
    monkey = dict(sweep_mod.LR_GRIDS)
    try:
        sweep_mod.LR_GRIDS.update(grids)
        assert sweep_mod.main(["--out-dir", str(tmp_path / "one")] + base) == 0
    finally:
        sweep_mod.LR_GRIDS.clear()
        sweep_mod.LR_GRIDS.update(monkey)
    one = json.loads((tmp_path / "one" / "long_range_sweep.json").read_text())
    for key in ("runs", "summary", "chosen_lr", "lr_scores", "baseline"):
        assert ext[key] == one[key], key
    assert ext["grad_norms"]["records"] == one["grad_norms"]["records"]
    with pytest.raises(ValueError, match="repeat stored ones"):
        sweep_mod.extend_results(ext, one, {"gru": [1e-2]})
