"""The seq2seq sweep's code path at tiny size (the full run regenerates
companion/data/results/seq2seq_sweep.json)."""

import json

import pytest

from experiments import seq2seq_sweep as sweep_mod

TINY = ["--seeds", "0", "1", "--lrs", "1e-2", "3e-2", "--steps", "2", "--batch", "4"]


@pytest.fixture()
def small(monkeypatch):
    monkeypatch.setattr(sweep_mod, "TASKS", {
        "copy": dict(sweep_mod.TASKS["copy"], n_train=40, n_valid=10, n_test=10),
        "toy": dict(sweep_mod.TASKS["toy"], n_train=40, n_valid=10, n_test=10)})
    monkeypatch.setattr(sweep_mod, "LENGTH_TESTS", {
        "copy": {"lengths": [4, 14], "n_per_length": 6, "seed": 1}})


def _run(out, args):
    assert sweep_mod.main(["--out-dir", str(out)] + args) == 0
    return json.loads((out / "seq2seq_sweep.json").read_text())


def test_tiny_sweep_writes_every_run(small, tmp_path):
    res = _run(tmp_path, ["--configs", "copy_H16", "toy_H64_rev"] + TINY)
    runs = res["runs"]
    assert {(r["config"], r["lr"], r["seed"]) for r in runs} == {
        (c, lr, s) for c in ("copy_H16", "toy_H64_rev") for lr in (1e-2, 3e-2) for s in (0, 1)}
    for r in runs:
        assert 0 <= r["test"]["token_accuracy"] <= 1 and 0 <= r["valid"]["exact_match"] <= 1
        if r["config"] == "copy_H16":
            assert sorted(r["by_length"], key=int) == ["4", "14"]
        else:
            assert "bleu" in r["test"] and "by_length" not in r
    assert res["chosen_lr"]["copy_H16"] in (1e-2, 3e-2)
    assert set(res["baseline"]) == {"copy", "toy"}
    assert res["baseline"]["copy"]["test"]["exact_match"] == 0.0
    assert res["cpu_s"]["total"] >= res["cpu_s"]["copy_H16"]["total"] >= 0
    assert res["config"]["configs"]["toy_H64_rev"]["reverse"] is True


def test_same_seed_same_runs_and_merge_keeps_the_rest(small, tmp_path):
    a = _run(tmp_path / "a", ["--configs", "copy_H16"] + TINY)
    b = _run(tmp_path / "b", ["--configs", "copy_H16"] + TINY)
    strip = [{k: v for k, v in r.items()} for r in a["runs"]]
    assert strip == b["runs"]
    merged = _run(tmp_path / "a", ["--configs", "copy_H32", "--merge"] + TINY)
    assert {r["config"] for r in merged["runs"]} == {"copy_H16", "copy_H32"}
    assert [r for r in merged["runs"] if r["config"] == "copy_H16"] == a["runs"]
    assert set(merged["config"]["configs"]) == {"copy_H16", "copy_H32"}
    with pytest.raises(SystemExit, match="--merge needs the stored settings"):
        sweep_mod.main(["--out-dir", str(tmp_path / "a"), "--configs", "copy_H64", "--merge",
                        "--steps", "3", "--seeds", "0", "1", "--batch", "4"])


def test_positional_majority_baseline():
    from companion.data.seq2seq import make_task
    t = make_task("copy", n_train=100, n_valid=10, n_test=10, min_len=5, max_len=5,
                  n_symbols=4)
    hyp = sweep_mod.positional_majority(t, t.test)
    assert len(hyp) == 10 and all(len(h) == 5 for h in hyp) and hyp[0] == hyp[1]


def test_tiny_budget_arm_scores_every_checkpoint(small, tmp_path):
    args = ["--out-dir", str(tmp_path), "--budget", "--configs", "copy_H64", "copy_H64_rev",
            "--seeds", "0", "1", "--lrs", "1e-2", "3e-2", "--steps", "4", "--checkpoints", "2",
            "--batch", "4", "--workers", "1"]
    assert sweep_mod.main(args) == 0
    res = json.loads((tmp_path / "seq2seq_budget.json").read_text())
    assert set(res["chosen_lr"]) == {"2", "4"}
    assert {(r["config"], r["lr"], r["seed"]) for r in res["runs"]} == {
        (c, lr, s) for c in ("copy_H64", "copy_H64_rev") for lr in (1e-2, 3e-2) for s in (0, 1)}
    for r in res["runs"]:
        assert set(r["at_step"]) == {"2"} and sorted(r["by_length"], key=int) == ["4", "14"]
        assert set(r["at_step"]["2"]) >= {"valid", "test", "by_length", "final_loss"}
    assert res["config"]["scored_at"] == [2, 4] and res["wall_s"] >= 0
    assert res["cpu_s"]["total"] >= res["cpu_s"]["copy_H64"]["total"] >= 0
    # the last checkpoint of a longer run equals a run of that length (same members)
    short = tmp_path / "short"
    assert sweep_mod.main(["--out-dir", str(short), "--budget", "--configs", "copy_H64",
                           "--seeds", "0", "1", "--lrs", "1e-2", "3e-2", "--steps", "2",
                           "--checkpoints", "--batch", "4", "--workers", "1"]) == 0
    two = json.loads((short / "seq2seq_budget.json").read_text())
    for a, b in zip([r for r in res["runs"] if r["config"] == "copy_H64"], two["runs"]):
        assert a["at_step"]["2"]["test"] == b["test"] and a["at_step"]["2"]["valid"] == b["valid"]
    with pytest.raises(ValueError, match="checkpoints must lie strictly between"):
        sweep_mod.main(["--out-dir", str(short), "--budget", "--configs", "copy_H64",
                        "--seeds", "0", "--lrs", "1e-2", "--steps", "2", "--checkpoints", "2",
                        "--batch", "4", "--workers", "1"])


def test_tiny_member_check(small, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "LR_GRID", dict(sweep_mod.LR_GRID, copy_H64=[1e-2, 3e-2]))
    monkeypatch.setattr(sweep_mod, "SEEDS", [0, 1])
    assert sweep_mod.main(["--out-dir", str(tmp_path), "--member-check", "--steps", "2"]) == 0
    mc = json.loads((tmp_path / "seq2seq_budget.json").read_text())["member_check"]
    assert set(mc["runs"]) == {"ensemble_float32", "alone_float32", "ensemble_float64",
                               "alone_float64"}
    assert mc["runs"]["ensemble_float32"]["members"] == 4 and mc["runs"]["alone_float64"]["members"] == 1
    assert mc["max_weight_diff_float64"] >= 0 and mc["cpu_s"] >= 0
