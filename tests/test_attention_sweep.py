"""The attention sweep's code path at tiny size, and the stored results' promises."""

import json

import pytest

from companion.data.results import load_results
from experiments import attention_sweep as sweep_mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("attention")
    assert sweep_mod.main(["--out-dir", str(out), "--tiny"]) == 0
    return (json.loads((out / "attention_sweep.json").read_text()),
            json.loads((out / "attention_models.json").read_text()))


def test_tiny_sweep_writes_every_run(tiny):
    sweep, models = tiny
    runs = sweep["length"]["runs"]
    assert {(r["model"], r["seed"]) for r in runs} == {
        (m, s) for m in ("no_attention", "attention") for s in sweep_mod.SEEDS}
    for r in runs:
        assert set(r["test_exact"]) == {"4", "6"}
        assert all(0.0 <= v <= 1.0 for v in r["test_exact"].values())
    assert set(sweep["scores"]["summary"]) == {"additive", "dot", "general", "scaled_dot"}
    assert sweep["timing"]["cpu_s"] > 0
    from companion.nn.attention import AttentionSeq2Seq
    for key in ("dates", "toy_language"):
        AttentionSeq2Seq.from_dict(models[key])


def test_stored_sweep_is_the_documented_configuration_and_fair():
    res = load_results("attention_sweep")
    assert res["config"]["length"] == sweep_mod.LENGTH
    assert res["config"]["scores"] == sweep_mod.SCORES
    assert res["timing"]["cpu_s"] <= 900, "the sweep must regenerate in 10 minutes on 2 cores"
    for part, grids in (("length", sweep_mod.LENGTH["lr_grid"]),
                        ("scores", sweep_mod.SCORES["lr_grid"])):
        for name, s in res[part]["summary"].items():
            grid = grids[name]
            assert len(grid) >= 3 and s["lr"] in grid
            assert s["inside"], f"{part}/{name}: the chosen learning rate is at the grid's edge"
    runs = res["length"]["runs"]
    for kind in ("no_attention", "attention"):
        for lr in sweep_mod.LENGTH["lr_grid"][kind]:
            assert sorted(r["seed"] for r in runs if r["model"] == kind and r["lr"] == lr) \
                == sweep_mod.SEEDS


def test_stored_models_load_and_translate():
    import torch

    from companion.data.seq2seq import collate, make_task
    from companion.nn.attention import AttentionSeq2Seq

    stored = load_results("attention_models")
    for key in ("dates", "toy_language"):
        model = AttentionSeq2Seq.from_dict(stored[key])
        cfg = {k: v for k, v in stored[key]["task"].items() if k != "task"}
        task = make_task(stored[key]["task"]["task"], **cfg)
        b = collate(task.test[:50], task.src_vocab, task.tgt_vocab)
        res = model.translate(b.src, b.src_lengths, max_len=40)
        hyps = [task.tgt_vocab.decode(r) for r in res.tokens]
        right = sum(h == ex.tgt for h, ex in zip(hyps, task.test[:50]))
        assert right >= 40, f"the stored {key} model should translate most test sentences"
        assert isinstance(model, torch.nn.Module)


def test_tiny_budget_arms_write_every_run(tmp_path):
    assert sweep_mod.main(["--out-dir", str(tmp_path), "--tiny", "--part", "budget"]) == 0
    res = json.loads((tmp_path / "attention_budget.json").read_text())
    assert set(res["summary"]) == {"steps_4000", "hidden_41"}
    for arm, a in res["config"]["arms"].items():
        runs = res["runs"][arm]
        assert sorted((r["lr"], r["seed"]) for r in runs) == sorted(
            (lr, s) for lr in a["lr_grid"] for s in sweep_mod.SEEDS)
        s = res["summary"][arm]
        assert s["lr"] in a["lr_grid"] and set(s["per_length"]) == {"4", "6"}
        assert set(s["loss_at_median"]) == {str(t) for t in a["loss_at"]}
    assert res["timing"]["cpu_s"] >= 0


def test_stored_budget_arms_are_the_documented_configuration_and_fair():
    res = load_results("attention_budget")
    assert res["config"] == json.loads(json.dumps(sweep_mod.BUDGET))
    assert res["timing"]["cpu_s"] <= 600, "the arms must regenerate in 10 minutes on 2 cores"
    arms = sweep_mod.BUDGET["arms"]
    assert arms["steps_4000"]["steps"] >= 4 * sweep_mod.LENGTH["steps"]
    for arm, a in arms.items():
        assert len(a["lr_grid"]) >= 3
        s = res["summary"][arm]
        assert s["lr"] in a["lr_grid"]
        for lr in a["lr_grid"]:
            assert sorted(r["seed"] for r in res["runs"][arm] if r["lr"] == lr) \
                == sweep_mod.SEEDS


def test_tiny_positions_and_stored_positions(tmp_path):
    assert sweep_mod.main(["--out-dir", str(tmp_path), "--tiny", "--part", "positions"]) == 0
    res = json.loads((tmp_path / "attention_positions.json").read_text())
    for kind, m in res["models"].items():
        assert sorted(r["seed"] for r in m["runs"]) == sweep_mod.SEEDS
        assert [len(m["position_median"][L]) for L in ("4", "6")] == [4, 6]
    stored = load_results("attention_positions")
    assert stored["config"] == json.loads(json.dumps(sweep_mod.POSITIONS))
    assert stored["timing"]["cpu_s"] <= 600
    part1 = load_results("attention_sweep")["length"]["summary"]
    for kind, lr in sweep_mod.POSITIONS["lr"].items():
        assert part1[kind]["lr"] == lr, "part 5 retrains at the rates part 1 chose"
