"""RTRL (companion.scratch.rtrl): equal to BPTT, torch autograd and finite differences."""

import numpy as np
import pytest
import torch

from companion.scratch.bptt import rnn_loss_and_grads
from companion.scratch.gradcheck import check_gradients
from companion.scratch.init import init_rnn_params, random_rnn_problem
from companion.scratch.rtrl import (
    bptt_memory_floats,
    flatten_recurrent,
    influence_step,
    online_train,
    recurrent_size,
    rtrl_loss_and_grads,
    rtrl_memory_floats,
    stack_params,
    unflatten_recurrent,
    uoro_memory_floats,
)

N, T, D, H, K = 3, 6, 4, 5, 3
NAMES = ("U", "W", "V", "b", "c")


@pytest.fixture
def problem():
    return random_rnn_problem(N, T, D, H, K, np.random.default_rng(3), bias_scale=0.2)


def test_rtrl_equals_bptt_in_float64(problem):
    p, x, y, h0 = problem
    loss_b, grads_b, last_b = rnn_loss_and_grads(p, x, y, h0=h0)
    loss_r, grads_r, last_r = rtrl_loss_and_grads(p, x, y, h0=h0)
    assert loss_r == pytest.approx(loss_b, rel=1e-13)
    np.testing.assert_allclose(last_r, last_b, rtol=0, atol=1e-14)
    for k in NAMES:
        assert np.all(np.isfinite(grads_r[k]))
        np.testing.assert_allclose(grads_r[k], grads_b[k], rtol=0, atol=1e-13, err_msg=k)


def test_rtrl_matches_torch_autograd(problem):
    p, x, y, h0 = problem
    loss, grads, _ = rtrl_loss_and_grads(p, x, y, h0=h0)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    h = torch.from_numpy(h0)
    total = 0.0
    for t in range(T):
        h = torch.tanh(torch.from_numpy(x[:, t]) @ tp["U"].T + h @ tp["W"].T + tp["b"])
        o = h @ tp["V"].T + tp["c"]
        total = total + torch.nn.functional.cross_entropy(
            o, torch.from_numpy(y[:, t]), reduction="sum")
    (total / N).backward()
    assert loss == pytest.approx(total.item() / N, rel=1e-12)
    for k in NAMES:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=0, atol=1e-12, err_msg=k)


def test_rtrl_matches_finite_differences(problem):
    p, x, y, h0 = problem
    _, grads, _ = rtrl_loss_and_grads(p, x, y, h0=h0)
    errors = check_gradients(lambda q: rtrl_loss_and_grads(q, x, y, h0=h0)[0],
                             {k: v.copy() for k, v in p.items()}, grads)
    assert set(errors) == set(NAMES)
    assert max(errors.values()) < 1e-7, errors


def test_influence_step_is_the_jacobian_of_the_state():
    rng = np.random.default_rng(0)
    p = init_rnn_params(D, H, K, rng)
    p["b"] = rng.normal(size=H)
    xs = rng.normal(size=(4, D))
    P = recurrent_size(D, H)
    theta = flatten_recurrent(p)

    def run(th):
        q = unflatten_recurrent(th, D, H)
        h, J = np.zeros(H), np.zeros((H, P))
        for xt in xs:
            h, J = influence_step(J, xt, h, q["W"], q["U"], q["b"])
        return h, J

    _, J = run(theta)
    eps = 1e-6
    num = np.empty_like(J)
    for j in range(P):
        e = np.zeros(P)
        e[j] = eps
        num[:, j] = (run(theta + e)[0] - run(theta - e)[0]) / (2 * eps)
    np.testing.assert_allclose(J, num, rtol=0, atol=1e-8)


def test_flatten_round_trip_and_sizes(problem):
    p = problem[0]
    flat = flatten_recurrent(p)
    assert flat.shape == (recurrent_size(D, H),) == (H * D + H * H + H,)
    back = unflatten_recurrent(flat, D, H)
    for k in ("U", "W", "b"):
        np.testing.assert_array_equal(back[k], p[k])
    assert rtrl_memory_floats(D, H) == H * (H * D + H * H + H) + H
    assert uoro_memory_floats(D, H) == H * D + H * H + H + 2 * H
    assert bptt_memory_floats(T, D, H) == (T + 1) * H + T * D
    # RTRL's memory grows like H^3: doubling H multiplies it by about 8 at large H
    assert 7 < rtrl_memory_floats(D, 256) / rtrl_memory_floats(D, 128) < 8.1


@pytest.mark.parametrize("method, k", [("rtrl", 1), ("tbptt", T)])
def test_online_updates_follow_the_bptt_gradient_at_small_rates(problem, method, k):
    p, x, y, _ = problem
    x1, y1 = x[:1], y[:1]
    _, g, _ = rnn_loss_and_grads(p, x1, y1)
    stacked = stack_params([p])
    for lr, tol in ((1e-5, 2e-3), (1e-7, 2e-5)):  # rtrl: the error shrinks with the rate
        new, losses = online_train(stacked, x1, y1, lr, method, k=k)
        assert losses.shape == (1, T) and np.all(np.isfinite(losses))
        for n in NAMES:
            step = (stacked[n][0] - new[n][0]) / lr
            np.testing.assert_allclose(step, g[n], rtol=0, atol=tol, err_msg=f"{method} {n}")


def test_rtrl_on_a_chunk_schedule_takes_the_exact_chunk_gradient(problem):
    # k > 1: one update per k steps with the summed RTRL gradient, parameters fixed
    # inside the chunk, so the update is exactly lr times the chunk's BPTT gradient
    p, x, y, _ = problem
    x1, y1 = x[:1], y[:1]
    stacked = stack_params([p])
    lr = 0.1
    for k in (3, T):
        new, _ = online_train(stacked, x1, y1, lr, "rtrl", k=k)
        if k == T:
            _, g, _ = rnn_loss_and_grads(p, x1, y1)
            for n in NAMES:
                step = (stacked[n][0] - new[n][0]) / lr
                np.testing.assert_allclose(step, g[n], rtol=0, atol=1e-10, err_msg=n)
        else:  # two updates: the first is the gradient of the first k losses
            first, _ = online_train(stacked, x1[:, :k], y1[:, :k], lr, "rtrl", k=k)
            _, g1, _ = rnn_loss_and_grads(p, x1[:, :k], y1[:, :k])
            for n in NAMES:
                np.testing.assert_allclose((stacked[n][0] - first[n][0]) / lr, g1[n],
                                           rtol=0, atol=1e-10, err_msg=n)
            # and the default (k = 1) is a different learner at this rate
            per_step, _ = online_train(stacked, x1, y1, lr, "rtrl")
            assert np.abs(per_step["W"] - new["W"]).max() > 1e-6
    clipped, _ = online_train(stacked, x1, y1, 10.0, "rtrl", k=T, clip=1e-3)
    moved = np.sqrt(sum(((stacked[n] - clipped[n]) ** 2).sum() for n in NAMES))
    assert abs(moved - 10.0 * 1e-3) < 1e-12  # one update, clipped as a whole


def test_online_losses_are_the_forward_losses_at_rate_zero(problem):
    p, x, y, _ = problem
    losses_fwd = [rtrl_loss_and_grads(p, x[i:i + 1, :t + 1], y[i:i + 1, :t + 1])[0]
                  for i in range(N) for t in range(T)]
    per_step = np.diff(np.concatenate([[0.0], losses_fwd[:T]]))
    for method in ("rtrl", "uoro", "reset", "tbptt"):
        _, losses = online_train(stack_params([p] * N), x, y, 0.0, method,
                                 rng=np.random.default_rng(0), k=2)
        np.testing.assert_allclose(losses[0], per_step, rtol=0, atol=1e-12, err_msg=method)


def test_reset_method_misses_the_past_but_rtrl_does_not():
    # the reset influence gives only the one-step gradient: it differs from the full one
    rng = np.random.default_rng(1)
    p = init_rnn_params(2, 4, 2, rng, recurrent_gain=1.5)
    x = np.eye(2)[rng.integers(0, 2, size=(1, 8))]
    y = rng.integers(0, 2, size=(1, 8))
    lr = 1e-7
    _, g, _ = rnn_loss_and_grads(p, x, y)
    s = stack_params([p])
    new_r, _ = online_train(s, x, y, lr, "rtrl")
    new_0, _ = online_train(s, x, y, lr, "reset")
    err_r = np.abs((s["W"][0] - new_r["W"][0]) / lr - g["W"]).max()
    err_0 = np.abs((s["W"][0] - new_0["W"][0]) / lr - g["W"]).max()
    assert err_r < 1e-4 < 1e-2 < err_0


def test_bad_arguments_raise_clear_errors(problem):
    p, x, y, h0 = problem
    with pytest.raises(ValueError, match="time-first|batch-first|x"):
        rtrl_loss_and_grads(p, x.transpose(1, 0, 2), y.T, h0=h0)
    with pytest.raises(ValueError, match="J must be the"):
        influence_step(np.zeros((H, 3)), x[0, 0], h0[0], p["W"], p["U"], p["b"])
    with pytest.raises(ValueError, match="x_t must be"):
        influence_step(np.zeros((H, recurrent_size(D, H))), x[0, :2], h0[0], p["W"], p["U"],
                       p["b"])
    with pytest.raises(ValueError, match="member axis"):
        online_train(p, x, y, 0.1)
    s = stack_params([p] * N)
    with pytest.raises(ValueError, match="method must be one of"):
        online_train(s, x, y, 0.1, "sgd")
    with pytest.raises(ValueError, match="lr must be"):
        online_train(s, x, y, -0.1)
    with pytest.raises(ValueError, match="lr must be"):
        online_train(s, x, y, np.array([np.nan, 0.1, 0.1]))
    with pytest.raises(TypeError, match="rng"):
        online_train(s, x, y, 0.1, "uoro")
    with pytest.raises(ValueError, match="y"):
        online_train(s, x, y[:, :-1], 0.1)
    with pytest.raises(ValueError, match="P = H"):
        unflatten_recurrent(np.zeros(7), D, H)
    with pytest.raises(ValueError, match="missing"):
        flatten_recurrent({"U": p["U"], "W": p["W"]})
    with pytest.raises(ValueError, match="at least one"):
        stack_params([])
    with pytest.raises(ValueError, match="T"):
        bptt_memory_floats(0, D, H)
    bad = dict(p, W=np.full((H, H), np.nan))
    with pytest.raises(ValueError):
        rtrl_loss_and_grads(bad, x, y)


# ---------------------------------------------------------------- exercise checkers
# The checkers' full tests (delegation, hard-coded and NaN answers) are in
# tests/test_checkers_ch12.py; here the notebook's own answers are run against them.
def _notebook_solutions():
    import json
    from pathlib import Path

    nb = Path(__file__).resolve().parents[1] / "book" / "ch12_online.ipynb"
    space = {"np": np}
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] == "code" and "solution" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), space)
    return space


def test_ch12_online_checkers_accept_the_notebook_answers(capsys):
    from companion.exercises.ch12 import check_leaky_rtrl, check_rtrl_costs, check_uoro_step

    sol = _notebook_solutions()
    check_leaky_rtrl(sol["leaky_rtrl"])
    check_rtrl_costs(sol["rtrl_costs"])
    check_uoro_step(sol["uoro_step"])
    assert capsys.readouterr().out.count("Correct") == 3


def test_leaky_rtrl_at_alpha_zero_is_plain_rtrl(problem):
    p, x, y, _ = problem
    loss, g = _notebook_solutions()["leaky_rtrl"](p, x[0], y[0], 0.0)
    q = {k: v for k, v in p.items()}
    ref_loss, ref, _ = rtrl_loss_and_grads(q, x[:1], y[:1])
    assert abs(loss - ref_loss) < 1e-12
    assert np.allclose(g, flatten_recurrent(ref), rtol=0, atol=1e-12)


def test_delayed_copy_stream_and_its_errors():
    from companion.scratch.rtrl import delayed_copy_stream

    x, y = delayed_copy_stream(50, seed=3, delay=4)
    assert x.shape == (50, 2) and y.shape == (50,)
    np.testing.assert_array_equal(y[4:], x[:-4].argmax(axis=1))
    assert np.all(y[:4] == 0)
    with pytest.raises(ValueError, match="delay must be shorter"):
        delayed_copy_stream(4, seed=0, delay=4)
    with pytest.raises((TypeError, ValueError), match="T"):
        delayed_copy_stream(0, seed=0)


def test_online_plots_draw_and_check_their_arguments():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.plots.online import cost_figure, online_curves_figure, uoro_variance_figure

    figs = [cost_figure([4, 8], [10, 80], [5, 9], [10, 100], [50, 500], H_bptt=4),
            online_curves_figure({"rtrl": np.full((2, 3), 0.5), "uoro": np.zeros((2, 3))},
                                 100, np.log(2)),
            uoro_variance_figure([4, 8], [2.0, 3.0], [5, 10], [1.5, 2.5], 8, 10)]
    for fig in figs:
        assert fig.axes
        plt.close(fig)
    with pytest.raises(ValueError, match="same length"):
        cost_figure([4, 8], [10], [5, 9], [10], [50], H_bptt=4)
    with pytest.raises(ValueError, match="at least one method"):
        online_curves_figure({}, 100, 0.7)
    with pytest.raises(ValueError, match="seeds, blocks"):
        online_curves_figure({"rtrl": np.zeros(3)}, 100, 0.7)
    with pytest.raises(ValueError, match="same length"):
        uoro_variance_figure([4, 8], [2.0], [5], [1.5], 8, 10)


# Fragments of the update rules the exercises ask the reader to derive: a hint that
# contains one of them hands the answer over.
_FORMULA_FRAGMENTS = ("diag(1", "1 - h", "1 - cand", "h_t**2", "h**2", "<-", "K^T", "J^T",
                      "W K", "W J", "W @ J", "alpha * J", "(1 - alpha) *", "kron",
                      "y_hat - onehot", "onehot(y", "Lambda W", "nu^T", "rho0 =", "rho1 =")


def _wrong_leaky_answers():
    right = _notebook_solutions()["leaky_rtrl"]

    def doubled(p, x, y, alpha):
        loss, g = right(p, x, y, alpha)
        return loss, 2 * g

    def no_leak_in_j(p, x, y, alpha):     # the leak kept in the state, forgotten in J
        return right(p, x, y, 0.0)[0] * 0 + right(p, x, y, alpha)[0], right(p, x, y, 0.0)[1]

    def zeros(p, x, y, alpha):
        loss, g = right(p, x, y, alpha)
        return loss, np.zeros_like(g)

    def shuffled(p, x, y, alpha):         # U and W blocks in the wrong order
        loss, g = right(p, x, y, alpha)
        H, D = p["U"].shape
        return loss, np.concatenate([g[H * D:H * D + H * H], g[:H * D], g[H * D + H * H:]])

    return [doubled, no_leak_in_j, zeros, shuffled]


@pytest.mark.parametrize("index", range(4))
def test_leaky_rtrl_hints_point_to_the_fault_without_the_recursion(index):
    from companion.exercises.ch12 import check_leaky_rtrl

    wrong = _wrong_leaky_answers()[index]
    with pytest.raises(AssertionError) as err:
        check_leaky_rtrl(wrong)
    hint = str(err.value)
    assert "g_theta" in hint or "loss" in hint        # it names what is wrong ...
    for fragment in _FORMULA_FRAGMENTS:               # ... and not how to compute it
        assert fragment not in hint, (fragment, hint)


def test_uoro_hints_do_not_spell_out_the_update():
    from companion.exercises.ch12 import check_uoro_step

    right = _notebook_solutions()["uoro_step"]

    def halved(*args):
        h_new, t_new = right(*args)
        return 0.5 * np.asarray(h_new), np.asarray(t_new)

    def rescaled(*args):
        h_new, t_new = right(*args)
        return 2 * np.asarray(h_new), 0.5 * np.asarray(t_new)

    for wrong in (halved, rescaled):
        with pytest.raises(AssertionError) as err:
            check_uoro_step(wrong)
        for fragment in _FORMULA_FRAGMENTS:
            assert fragment not in str(err.value), (fragment, str(err.value))
