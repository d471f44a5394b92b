"""experiments.lru_sweep at tiny size: the code path that regenerates lru_sweep.json."""

import json

from experiments import lru_sweep


def test_smoke_sweep_writes_every_run_and_the_selection(tmp_path):
    out = tmp_path / "lru_smoke.json"
    assert lru_sweep.main(["--smoke", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    cfg = lru_sweep.SMOKE
    expected = {(m, L, lr, s) for m, spec in lru_sweep.MODELS.items() for L in cfg["lengths"]
                for lr in spec["lr_grid"] for s in cfg["seeds"]}
    got = {(r["model"], r["length"], r["lr"], r["seed"]) for r in res["runs"]}
    assert got == expected
    assert set(res["chosen_lr"]) == set(lru_sweep.MODELS)
    for m, lr in res["chosen_lr"].items():
        assert lr in lru_sweep.MODELS[m]["lr_grid"]
        assert res["chosen_lr_edge"][m] in ("low", "inside", "high")
    assert all("eig_moduli" in r for r in res["runs"] if r["model"] == "lru")
    assert all(0 < v < 1 for r in res["runs"] if r["model"] == "lru" for v in r["eig_moduli"])
    assert res["timing"]["sweep_cpu_s"] >= 0 and len(res["baseline"]) == len(cfg["lengths"])
    assert res["param_counts"]["rnn"] == res["param_counts"]["rnn_clip"]
    ab = res["ablation"]
    got = {(r["model"], r["length"], r["lr"], r["seed"]) for r in ab["runs"]}
    assert got == {(m, L, lr, s) for m, spec in lru_sweep.ABLATION.items()
                   for L in lru_sweep.SMOKE_ABLATION_LENGTHS for lr in spec["lr_grid"]
                   for s in cfg["seeds"]}
    assert set(ab["chosen_lr"]) == set(lru_sweep.ABLATION)
    assert ab["param_counts"]["lru_gamma1"] < res["param_counts"]["lru"]
    assert all("eig_moduli" in r for r in ab["runs"] if r["model"].startswith("lru"))
    # --ablation-only replaces the ablation and keeps everything else
    before = {k: v for k, v in res.items() if k != "ablation"}
    assert lru_sweep.main(["--smoke", "--out", str(out), "--ablation-only"]) == 0
    again = json.loads(out.read_text())
    assert {k: v for k, v in again.items() if k != "ablation"} == before
    assert again["ablation"]["runs"] == ab["runs"]  # seeded: the same numbers


def test_two_processes_give_the_runs_of_one(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert lru_sweep.main(["--smoke", "--out", str(one)]) == 0
    assert lru_sweep.main(["--smoke", "--out", str(two), "--jobs", "2"]) == 0
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["runs"] == b["runs"] and a["ablation"]["runs"] == b["ablation"]["runs"]


def test_stored_sweep_matches_the_script_configuration():
    from companion.data.results import load_results

    res = load_results("lru_sweep")
    assert res["config"]["lengths"] == list(lru_sweep.DEFAULTS["lengths"])
    assert res["config"]["steps"] == 1000 and res["config"]["batch"] == 32
    for m, spec in lru_sweep.MODELS.items():
        assert res["config"]["models"][m]["lr_grid"] == list(spec["lr_grid"])
        runs = [r for r in res["runs"] if r["model"] == m]
        assert len(runs) == len(spec["lr_grid"]) * 5 * len(lru_sweep.DEFAULTS["lengths"])
    assert res["timing"]["sweep_cpu_s"] < 900
    ab = res["ablation"]
    for m, spec in lru_sweep.ABLATION.items():
        assert ab["models"][m]["lr_grid"] == list(spec["lr_grid"])
        runs = [r for r in ab["runs"] if r["model"] == m]
        assert len(runs) == len(spec["lr_grid"]) * 5 * len(spec["lengths"])
        assert ab["chosen_lr"][m] in spec["lr_grid"]
    # both parts together within the budget: 2 processes on 2 cores, 10 min of wall time
    assert (res["timing"]["sweep_cpu_s"] + ab["timing"]["cpu_s"]) / 2 < 600
