"""The fair sweep's code path at tiny size (the full run regenerates companion/data/results)."""

import json

import pytest

from experiments import long_range_sweep as sweep_mod

TINY = ["--lengths", "10", "12", "--seeds", "0", "1", "--steps", "3", "--hidden", "4",
        "--n-valid", "20", "--n-test", "20", "--n-probe", "4", "--workers", "1",
        "--lrs", "1e-3", "1e-2", "--extend-lengths"]


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


def _tiny_two_stage(tmp_path, name, success_fraction, extra=()):
    args = ["--out-dir", str(tmp_path / name), "--tasks", "adding", "--models", "rnn",
            "gru", "--lengths", "10", "--extend-lengths", "12", "14", "--seeds", "0", "1",
            "--steps", "3", "--hidden", "4", "--n-valid", "20", "--n-test", "20",
            "--n-probe", "4", "--lrs", "1e-3", "1e-2", *extra]
    saved = sweep_mod.TASKS["adding"]["success_fraction"]
    try:
        sweep_mod.TASKS["adding"]["success_fraction"] = success_fraction
        assert sweep_mod.main(args) == 0
    finally:
        sweep_mod.TASKS["adding"]["success_fraction"] = saved
    return json.loads((tmp_path / name / "long_range_sweep.json").read_text())


def test_extension_runs_only_the_chosen_lr_while_some_seed_succeeds(tmp_path):
    res = _tiny_two_stage(tmp_path, "all", 0.0)  # every run "succeeds": extend to the end
    assert res["config"]["lengths"] == [10, 12, 14]
    for m in ("rnn", "gru"):
        ext = {(r["length"], r["lr"]) for r in res["runs"] if r["model"] == m
               and r["length"] > 10}
        assert ext == {(12, res["chosen_lr"][m]), (14, res["chosen_lr"][m])}
        assert not res["far_end_reached"][m]
        cells = [c for c in res["summary"] if c["model"] == m]
        assert [(c["length"], c["n"], c["stopped"]) for c in cells] == [
            (10, 2, False), (12, 2, False), (14, 2, False)]
    assert {str(L) for L in (10, 12, 14)} <= set(res["grad_norms"]["distances"])


def test_a_model_stops_at_the_first_length_where_no_seed_succeeds(tmp_path):
    res = _tiny_two_stage(tmp_path, "none", 1.01)  # nothing can succeed
    assert {r["length"] for r in res["runs"]} == {10}
    for m in ("rnn", "gru"):
        assert res["far_end_reached"][m]
        assert [c["stopped"] for c in res["summary"] if c["model"] == m] == [False, True, True]


def test_the_sweep_does_not_depend_on_the_number_of_workers(tmp_path):
    one = _tiny_two_stage(tmp_path, "w1", 0.0, ["--workers", "1"])
    two = _tiny_two_stage(tmp_path, "w2", 0.0, ["--workers", "2"])
    for key in ("runs", "summary", "chosen_lr", "grad_norms", "baseline", "far_end_reached"):
        assert one[key] == two[key], key


def test_the_tie_arm_extends_every_tied_unchosen_rate(tmp_path):
    res = _tiny_two_stage(tmp_path, "ties", 0.0)  # every run "succeeds"
    for row in res["lr_scores"]["gru"]:  # make the two rates of the GRU's grid tie
        row["mean_median_valid_fraction"] = 1.0
    chosen = res["chosen_lr"]["gru"]
    other = ({1e-3, 1e-2} - {chosen}).pop()
    assert sweep_mod.tied_rates(res, "gru") == [1e-3, 1e-2]
    saved = sweep_mod.TASKS["adding"]["success_fraction"]
    try:
        sweep_mod.TASKS["adding"]["success_fraction"] = 0.0
        arm = sweep_mod.tie_arm("adding", res, workers=1, models=["gru"])
    finally:
        sweep_mod.TASKS["adding"]["success_fraction"] = saved
    assert arm["name"] == "long_range_ties" and set(arm["ties"]) == {"gru"}
    assert {(r["lr"], r["length"]) for r in arm["runs"]} == {(other, 12), (other, 14)}
    rows = {(r["lr"], r["length"]): (r["k"], r["n"], r["chosen"]) for r in arm["summary"]}
    assert rows[(chosen, 14)] == (2, 2, True) and rows[(other, 14)] == (2, 2, False)
    assert arm["far_end"]["gru"][str(other)] == {"longest_solved": 14, "first_failed": None}
    assert arm["timing"]["cpu_s"] >= 0 and arm["timing"]["wall_s"] >= 0
    with pytest.raises(ValueError, match="model must be one of"):
        sweep_mod.tied_rates(res, "lstm")
    with pytest.raises(ValueError, match="task must be one of"):
        sweep_mod.tie_arm("copying", res)


@pytest.mark.parametrize("name, sweep_name", [("long_range_ties", "long_range_sweep"),
                                              ("temporal_order_ties", "temporal_order_sweep")])
def test_stored_tie_arm_agrees_with_its_sweep(name, sweep_name):
    from companion.data.results import available_results, load_results

    if name not in available_results():
        pytest.skip(f"{name}.json not stored")
    arm, res = load_results(name), load_results(sweep_name)
    assert arm["config"]["sweep"] == sweep_name and arm["timing"]["cpu_s"] > 0
    for m, t in arm["ties"].items():
        assert t["chosen_lr"] == res["chosen_lr"][m]
        assert t["tied_lrs"] == sweep_mod.tied_rates(res, m) and len(t["tied_lrs"]) >= 2
        chosen = [(r["length"], r["k"], r["n"]) for r in arm["summary"]
                  if r["model"] == m and r["chosen"] and not r["stopped"]]
        assert chosen == [(r["length"], r["k"], r["n"]) for r in res["summary"]
                          if r["model"] == m and not r["stopped"]]
        for lr in t["tied_lrs"]:  # the extension rule: go on while one seed succeeded
            rows = [r for r in arm["summary"] if (r["model"], r["lr"]) == (m, lr)]
            ran = [r["k"] for r in rows if not r["stopped"]]
            assert all(k > 0 for k in ran[:-1]) and all(r["n"] in (0, 5) for r in rows)
