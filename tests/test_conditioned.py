"""The conditioned generator of chapter 7: members independent, modes as documented."""

import numpy as np
import pytest
import torch

from companion.nn.conditioned import (
    MODES,
    ConditionedGenerator,
    masked_nll,
    scheduled_teacher_prob,
)
from companion.nn.decoding import greedy

D, K, H, De = 5, 7, 6, 4


def data(N=3, T=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    inputs = torch.randint(0, K, (N, T), generator=g)
    return x, inputs


def reference(model, m, x, inputs):
    """The equations of the module docstring, one sequence and one step at a time."""
    p = {k: v[m].detach() for k, v in model.named_parameters()}
    out = torch.zeros(len(x), inputs.shape[1], K, dtype=torch.float64)
    for n in range(len(x)):
        h = torch.tanh(p["P"] @ x[n] + p["p"]) if model.mode != "input" else torch.zeros(H)
        h = h.double()
        for t in range(inputs.shape[1]):
            a = p["b"] + p["W"] @ h + p["U"] @ p["E"][inputs[n, t]]
            if model.mode != "init":
                a = a + x[n] @ p["R"]  # x^T R
            h = torch.tanh(a)
            out[n, t] = torch.log_softmax(p["V"] @ h + p["c"], 0)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_forward_matches_the_equations_for_every_member(mode):
    model = ConditionedGenerator(mode, D, K, H, De, seeds=[3, 4], dtype=torch.float64)
    x, inputs = data()
    out = model(x, inputs)
    assert out.shape == (2, 3, 4, K)
    for m in range(2):
        assert torch.allclose(out[m], reference(model, m, x, inputs), atol=1e-12)


def test_input_conditioning_equals_concatenating_x_to_the_input():
    model = ConditionedGenerator("input", D, K, H, De, seeds=[0], dtype=torch.float64)
    x, inputs = data()
    p = {k: v[0].detach() for k, v in model.named_parameters()}
    U_wide = torch.cat([p["U"], p["R"].T], dim=1)  # (H, De + D)
    h = torch.zeros(len(x), H, dtype=torch.float64)
    for t in range(inputs.shape[1]):
        z = torch.cat([p["E"][inputs[:, t]], x], dim=1)
        h = torch.tanh(p["b"] + h @ p["W"].T + z @ U_wide.T)
    out = model(x, inputs)[0, :, -1]
    assert torch.allclose(out, torch.log_softmax(h @ p["V"].T + p["c"], 1), atol=1e-12)


def test_a_member_does_not_depend_on_its_neighbours():
    alone = ConditionedGenerator("both", D, K, H, De, seeds=[5], dtype=torch.float64)
    crowd = ConditionedGenerator("both", D, K, H, De, seeds=[1, 5, 9], dtype=torch.float64)
    x, inputs = data()
    assert torch.allclose(alone(x, inputs)[0], crowd(x, inputs)[1])
    loss = masked_nll(crowd(x, inputs), inputs, torch.ones_like(inputs, dtype=torch.bool))
    loss[1].backward()
    assert crowd.W.grad[0].abs().sum() == 0 and crowd.W.grad[1].abs().sum() > 0


def test_parameter_counts():
    base = K * De + H * De + H * H + H + K * H + K
    assert ConditionedGenerator("init", D, K, H, De).parameter_count() == base + H * D + H
    assert ConditionedGenerator("input", D, K, H, De).parameter_count() == base + D * H
    assert ConditionedGenerator("both", D, K, H, De).parameter_count() == base + H * D + H + D * H


def test_free_run_equals_the_generic_greedy_decoder():
    model = ConditionedGenerator("both", D, K, H, De, seeds=[0, 1], dtype=torch.float64)
    x, _ = data(N=5)
    free = model.free_run(x, bos=1, eos=2, max_len=6)
    for m in range(2):
        fn, st = model.step_fn(x, member=m)
        g = greedy(fn, st, len(x), bos=1, eos=2, max_len=6)
        assert torch.equal(free[m], g.tokens)


def test_teacher_prob_one_is_teacher_forcing_and_zero_changes_the_inputs():
    model = ConditionedGenerator("input", D, K, H, De, dtype=torch.float64)
    x, inputs = data(T=6)
    tf = model(x, inputs)
    assert torch.equal(tf, model(x, inputs, teacher_prob=1.0,
                                 generator=torch.Generator().manual_seed(0)))
    ss = model(x, inputs, teacher_prob=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ss[:, :, 0], tf[:, :, 0]) and not torch.allclose(ss, tf)


def test_masked_nll_ignores_padding():
    lp = torch.log_softmax(torch.randn(2, 3, 4, K, dtype=torch.float64), -1)
    tg = torch.randint(0, K, (3, 4))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[:, 2:] = False
    want = -lp[:, :, :2].gather(3, tg[None, :, :2, None].expand(2, -1, -1, 1)).mean(dim=(1, 2, 3))
    assert torch.allclose(masked_nll(lp, tg, mask), want)


def test_schedules_decay_from_one():
    steps = 100
    for s in ("linear", "exponential", "inverse_sigmoid"):
        v = [scheduled_teacher_prob(s, i, steps) for i in range(steps)]
        assert v[0] > 0.9 and np.all(np.diff(v) <= 1e-12) and v[-1] < 0.2
    assert scheduled_teacher_prob("constant", 50, steps) == 1.0
    assert abs(scheduled_teacher_prob("inverse_sigmoid", 50, steps) - 0.5) < 1e-6
    assert abs(scheduled_teacher_prob("exponential", 99, 99) - 0.05) < 1e-9


def test_bad_input_errors_are_clear():
    with pytest.raises(ValueError, match="mode must be one of"):
        ConditionedGenerator("bias", D, K)
    with pytest.raises(TypeError, match="dtype"):
        ConditionedGenerator("init", D, K, dtype=torch.int64)
    model = ConditionedGenerator("init", D, K, H, De)
    x, inputs = data()
    with pytest.raises(TypeError, match="x must have the model's dtype"):
        model(x, inputs)
    x = x.float()
    with pytest.raises(ValueError, match=r"x must be \(N, D=5\)"):
        model(x[:, :3], inputs)
    with pytest.raises(TypeError, match="torch.long"):
        model(x, inputs.float())
    with pytest.raises(ValueError, match="same number of sequences"):
        model(x, inputs[:2])
    with pytest.raises(ValueError, match="token ids in"):
        model(x, inputs + K)
    with pytest.raises(ValueError, match="teacher_prob"):
        model(x, inputs, teacher_prob=1.5)
    with pytest.raises(ValueError, match="member must be below"):
        model.step_fn(x, member=3)
    with pytest.raises(ValueError, match="schedule must be"):
        scheduled_teacher_prob("cosine", 1, 10)
    with pytest.raises(ValueError, match="targets must be"):
        masked_nll(torch.zeros(1, 3, 4, K), torch.zeros(3, 5, dtype=torch.long),
                   torch.ones(3, 5, dtype=torch.bool))


def stored_arm(mode="input", lrs=(0.001, 0.01, 0.1), chosen=0.01, accs=None):
    accs = accs or {0.001: 0.3, 0.01: 0.6, 0.1: 0.1}
    runs = [{"seed": s, "lr": lr,
             "val": {"accuracy": accs[lr] + 0.01 * s, "nll": 1.0},
             "test": {"accuracy": accs[lr] - 0.01 * s, "nll": 1.0,
                      "tf_errors": [s, 1], "tf_counts": [10, 10],
                      "free_errors": [1, 2], "free_counts": [10, 10],
                      "conflicts": {"positions": 10, "other_sentence": s, "off_track": 1}}}
            for s in range(3) for lr in lrs]
    return {"mode": mode, "schedule": "constant", "floor": 0.0, "lrs": list(lrs),
            "chosen_lr": chosen, "runs": runs}


def test_stored_arm_helpers():
    from companion.nn import conditioned as cd
    arm = stored_arm()
    res = {"arms": [arm, stored_arm("init")]}
    assert cd.find_arm(res, "input") is arm
    with pytest.raises(ValueError, match="no arm with mode='both'"):
        cd.find_arm(res, "both")
    with pytest.raises(TypeError, match="'arms' list"):
        cd.find_arm([arm], "input")
    assert len(cd.chosen_runs(arm)) == 3
    assert cd.lr_medians(arm) == pytest.approx([0.31, 0.61, 0.11])
    assert cd.grid_position(arm) == "inside"
    assert cd.grid_position(dict(arm, chosen_lr=0.001)) == "edge"
    failing = stored_arm(accs={0.001: 0.0, 0.01: 0.0, 0.1: 0.0})
    assert cd.grid_position(failing) == "all fail"
    assert cd.arm_summary(arm) == pytest.approx((0.59, 0.58, 0.6))
    np.testing.assert_allclose(cd.position_rates(arm, "tf"), [0.1, 0.1])
    fr = cd.conflict_fractions(arm)
    assert fr["positions"] == 30 and fr["other_sentence"] == pytest.approx(0.1)
    assert fr["total"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="kind must be"):
        cd.position_rates(arm, "both")
    with pytest.raises(TypeError, match="one stored arm"):
        cd.chosen_runs({"runs": []})
    with pytest.raises(ValueError, match="split must be"):
        cd.lr_medians(arm, split="train")


def test_paired_errors_counts_discordant_captions_and_resamples_clusters():
    from companion.nn.conditioned import paired_errors
    rng = np.random.default_rng(0)
    a = (rng.random((5, 40)) < 0.3).astype(int)
    b = a.copy()
    b[:, :4] = 1                                  # four captions wrong only free-running
    r = paired_errors(a, b, np.repeat(np.arange(20), 2), n_boot=300)
    assert r["difference"] == pytest.approx((b - a).mean())
    assert r["free_only"] == pytest.approx(((b == 1) & (a == 0)).mean())
    assert r["tf_only"] == 0.0 and len(r["per_seed"]) == 5
    lo, hi = r["interval"]
    assert lo <= r["difference"] <= hi and r["clusters"] == 20
    # identical indicators: no difference and a zero-width interval
    same = paired_errors(a, a, np.arange(40), n_boot=50)
    assert same["difference"] == 0 and same["interval"] == (0.0, 0.0)
    assert paired_errors(a, b, np.arange(40), n_boot=50, seed=3) == paired_errors(
        a, b, np.arange(40), n_boot=50, seed=3)
    with pytest.raises(ValueError, match="0/1 array"):
        paired_errors(a[0], b[0], np.arange(40))
    with pytest.raises(ValueError, match="same shape"):
        paired_errors(a, b[:, :10], np.arange(40))
    with pytest.raises(ValueError, match="one id per caption"):
        paired_errors(a, b, np.arange(10))


def test_controls_command_runs_at_tiny_size(tmp_path):
    import json

    from experiments import vec2seq_sweep as sw
    out = tmp_path / "c.json"
    tiny = ["--controls-out", str(out), "--steps", "2", "--seeds", "0", "--workers", "1"]
    for part in ("budget", "one_sentence"):
        assert sw.main(tiny + ["--controls", part, "--lrs", "0.01"]) == 0
    assert sw.main(tiny + ["--controls", "search", "--lrs", "0.01", "--search-n", "2"]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"budget", "one_sentence", "search"}
    assert {a["mode"] for a in data["budget"]["arms"]} == set(MODES)
    assert data["one_sentence"]["settings"]["sentences"] == "canonical"
    assert all("conflicts" in r["test"] for a in data["one_sentence"]["arms"]
               for r in a["runs"])
    row = data["search"]["rows"][0]
    assert row["n"] == 2 and len(row["per_caption"]["tf_any_error"]) == 292
    for part in data.values():
        assert part["cpu_s"] > 0 and part["wall_s"] > 0


def test_stored_controls_are_complete_and_consistent():
    from companion.data.results import load_results
    from experiments.vec2seq_sweep import BUDGET_STEPS, choose_lr
    data = load_results("vec2seq_controls")
    assert data["budget"]["settings"]["steps"] == BUDGET_STEPS
    assert data["one_sentence"]["settings"]["sentences"] == "canonical"
    for part in ("budget", "one_sentence"):
        seeds = data[part]["settings"]["seeds"]
        assert len(seeds) >= 5
        for arm in data[part]["arms"]:
            assert len(arm["lrs"]) >= 3 and arm["chosen_lr"] in arm["lrs"]
            assert len(arm["runs"]) == len(seeds) * len(arm["lrs"])
            assert arm["chosen_lr"] == choose_lr(arm["runs"], arm["lrs"])
            assert min(arm["lrs"]) < arm["chosen_lr"] < max(arm["lrs"]), (
                part, arm["mode"], arm["schedule"], arm["floor"])
    rows = data["search"]["rows"]
    assert len(rows) >= 5 and all(r["n_exact"] == r["n"] == 292 for r in rows)
    for r in rows:
        assert len(r["per_caption"]["tf_any_error"]) == len(r["per_caption"]["free_wrong"]) == 292
        assert 1 - np.mean(r["per_caption"]["free_wrong"]) == pytest.approx(
            r["free_run_accuracy"], abs=1e-6)
    for part in ("budget", "one_sentence", "search"):     # each part: at most 10 CPU minutes
        assert 0 < data[part]["cpu_s"] <= 600 and data[part]["wall_s"] > 0
