"""BPTT: finite differences, torch autograd, truncation, and the buggy exercise."""

import numpy as np
import pytest
import torch

from companion.scratch.bptt import (
    hidden_backward,
    rnn_backward,
    rnn_loss_and_grads,
    rnn_step_backward,
    truncated_bptt,
)
from companion.scratch.buggy import buggy_rnn_backward
from companion.scratch.forward import rnn_forward, rnn_step_forward, sequence_nll
from companion.scratch.gradcheck import check_gradients
from companion.scratch.init import init_rnn_params, random_rnn_problem

N, T, D, H, K = 3, 6, 4, 5, 3
NAMES = ("U", "W", "V", "b", "c")


@pytest.fixture
def problem():
    p, x, y, h0 = random_rnn_problem(N, T, D, H, K, np.random.default_rng(3),
                                     bias_scale=0.2)
    mask = np.ones((N, T))
    mask[1, 4:] = 0
    return p, x, y, h0, mask


def _loss_fn(x, y, mask=None):
    def f(q):
        return sequence_nll(rnn_forward(x, {k: q[k] for k in NAMES}, q["h0"])[0], y, mask)[0]
    return f


def test_bptt_matches_finite_differences(problem):
    p, x, y, h0, mask = problem
    loss, grads, _ = rnn_loss_and_grads(p, x, y, mask, h0)
    errors = check_gradients(_loss_fn(x, y, mask), {**p, "h0": h0.copy()}, grads)
    assert set(errors) == {"U", "W", "V", "b", "c", "h0"}
    assert max(errors.values()) < 1e-7, errors


def test_bptt_matches_torch_autograd(problem):
    p, x, y, h0, mask = problem
    loss, grads, h_last = rnn_loss_and_grads(p, x, y, mask, h0)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in {**p, "h0": h0}.items()}
    h = tp["h0"]
    total = 0.0
    for t in range(T):
        h = torch.tanh(torch.from_numpy(x[:, t]) @ tp["U"].T + h @ tp["W"].T + tp["b"])
        o = h @ tp["V"].T + tp["c"]
        ce = torch.nn.functional.cross_entropy(o, torch.from_numpy(y[:, t]), reduction="none")
        total = total + (ce * torch.from_numpy(mask[:, t])).sum()
    total = total / N
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-12)
    np.testing.assert_allclose(h_last, h.detach().numpy(), atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), atol=1e-12, err_msg=k)


def test_bptt_matches_torch_nn_rnn_autograd(problem):
    p, x, y, h0, _ = problem
    rnn = torch.nn.RNN(D, H, batch_first=True).double()
    lin = torch.nn.Linear(H, K).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p["U"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p["W"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(0.3 * p["b"]))
        rnn.bias_hh_l0.copy_(torch.from_numpy(0.7 * p["b"]))
        lin.weight.copy_(torch.from_numpy(p["V"]))
        lin.bias.copy_(torch.from_numpy(p["c"]))
    ht0 = torch.tensor(h0[None], requires_grad=True)
    out, _ = rnn(torch.from_numpy(x), ht0)
    logits = lin(out)
    loss_t = torch.nn.functional.cross_entropy(
        logits.reshape(-1, K), torch.from_numpy(y).reshape(-1), reduction="sum") / N
    loss_t.backward()
    loss, grads, _ = rnn_loss_and_grads(p, x, y, h0=h0)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(grads["U"], rnn.weight_ih_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["W"], rnn.weight_hh_l0.grad.numpy(), atol=1e-12)
    # both torch biases receive the same gradient, which is the gradient of their sum b
    np.testing.assert_allclose(grads["b"], rnn.bias_ih_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["b"], rnn.bias_hh_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["V"], lin.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["c"], lin.bias.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["h0"], ht0.grad[0].numpy(), atol=1e-12)


def test_step_backward_matches_finite_differences(problem):
    p, x, _, h0, _ = problem
    rng = np.random.default_rng(0)
    g = rng.normal(size=(N, H))
    _, cache = rnn_step_forward(x[:, 0], h0, p["U"], p["W"], p["b"])
    dx, dh_prev, dU, dW, db = rnn_step_backward(g, cache, p["U"], p["W"])
    args = {"x": x[:, 0].copy(), "h": h0.copy(), "U": p["U"].copy(), "W": p["W"].copy(),
            "b": p["b"].copy()}

    def f(q):
        return float(np.sum(g * rnn_step_forward(q["x"], q["h"], q["U"], q["W"], q["b"])[0]))

    errors = check_gradients(f, args, {"x": dx, "h": dh_prev, "U": dU, "W": dW, "b": db})
    assert max(errors.values()) < 1e-7, errors


def test_hidden_backward_input_gradient(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    g = hidden_backward(do @ p["V"], cache.x, cache.h0, cache.h, p["U"], p["W"])
    xs = {"x": x.copy()}
    errors = check_gradients(lambda q: sequence_nll(rnn_forward(q["x"], p, h0)[0], y)[0], xs,
                             {"x": g["x"]})
    assert errors["x"] < 1e-7


def test_dh_last_is_added_to_the_last_state(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    extra = np.random.default_rng(1).normal(size=(N, H))
    grads = rnn_backward(do, cache, p, dh_last=extra)

    def f(q):
        o2, c2 = rnn_forward(x, {k: q[k] for k in NAMES}, q["h0"])
        return sequence_nll(o2, y)[0] + float(np.sum(extra * c2.h[:, -1]))

    errors = check_gradients(f, {**p, "h0": h0.copy()}, grads)
    assert max(errors.values()) < 1e-7, errors


def test_truncated_bptt_with_one_chunk_is_full_bptt(problem):
    p, x, y, h0, _ = problem
    (loss, grads, h_last), = list(truncated_bptt(p, x, y, k=T, h0=h0))
    loss_f, grads_f, h_f = rnn_loss_and_grads(p, x, y, h0=h0)
    assert loss == loss_f
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_f[k])


def test_truncated_bptt_carries_state_and_detaches(problem):
    p, x, y, h0, _ = problem
    chunks = list(truncated_bptt(p, x, y, k=4, h0=h0))
    assert len(chunks) == 2  # T = 6: chunks of 4 and 2 steps
    _, cache = rnn_forward(x, p, h0)
    np.testing.assert_allclose(chunks[0][2], cache.h[:, 3], atol=1e-12)  # state carried...
    np.testing.assert_allclose(chunks[1][2], cache.h[:, -1], atol=1e-12)  # ...to the end
    total_loss = sum(c[0] for c in chunks)
    assert total_loss == pytest.approx(rnn_loss_and_grads(p, x, y, h0=h0)[0], rel=1e-12)
    # torch oracle: the same two chunks with the state detached in between
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    h = torch.from_numpy(h0)
    for j, (lo, hi) in enumerate([(0, 4), (4, 6)]):
        for v in tp.values():
            v.grad = None
        h = h.detach()
        loss = 0.0
        for t in range(lo, hi):
            h = torch.tanh(torch.from_numpy(x[:, t]) @ tp["U"].T + h @ tp["W"].T + tp["b"])
            o = h @ tp["V"].T + tp["c"]
            loss = loss + torch.nn.functional.cross_entropy(o, torch.from_numpy(y[:, t]),
                                                            reduction="sum") / N
        loss.backward()
        for k in NAMES:
            np.testing.assert_allclose(chunks[j][1][k], tp[k].grad.numpy(), atol=1e-12)
    # and truncated gradients differ from the full ones (the cut is real)
    full = rnn_loss_and_grads(p, x, y, h0=h0)[1]
    assert not np.allclose(chunks[0][1]["W"] + chunks[1][1]["W"], full["W"])


def test_buggy_backward_fails_the_check(problem):
    """Exercise 4.1's premise: the gradient check flags every gradient but V's."""
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    bad = buggy_rnn_backward(do, cache, p)
    errors = check_gradients(_loss_fn(x, y), {**p, "h0": h0.copy()}, bad)
    wrong = {k for k, e in errors.items() if e > 1e-3}
    assert wrong == {"U", "W", "b", "c", "h0"}  # V is the only correct gradient
    good = rnn_backward(do, cache, p)
    assert max(check_gradients(_loss_fn(x, y), {**p, "h0": h0.copy()}, good).values()) < 1e-7


def test_backward_bad_arguments(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    with pytest.raises(ValueError, match=r"do must be \(N=3, T=6, K=3\)"):
        rnn_backward(do[:, :-1], cache, p)
    with pytest.raises(TypeError, match="cache must be the RNNCache"):
        rnn_backward(do, (x, h0), p)
    with pytest.raises(ValueError, match=r"dh_last must be \(N=3, H=5\)"):
        rnn_backward(do, cache, p, dh_last=np.zeros((N, H + 1)))
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        next(truncated_bptt(p, x, y, k=0))
    with pytest.raises(ValueError, match="Time-first input"):
        next(truncated_bptt(p, x.transpose(1, 0, 2), y, k=2))
    with pytest.raises(ValueError, match=r"dh_t must be \(N=3, H=5\)"):
        _, c = rnn_step_forward(x[:, 0], h0, p["U"], p["W"], p["b"])
        rnn_step_backward(np.zeros((N, H + 1)), c, p["U"], p["W"])


def test_single_step_sequences():
    rng = np.random.default_rng(5)
    p = init_rnn_params(D, H, K, rng)
    x = rng.normal(size=(2, 1, D))
    y = rng.integers(0, K, size=(2, 1))
    h0 = rng.normal(size=(2, H))
    _, grads, _ = rnn_loss_and_grads(p, x, y, h0=h0)
    errors = check_gradients(_loss_fn(x, y), {**p, "h0": h0.copy()}, grads)
    assert max(errors.values()) < 1e-7, errors


# ---- bad input: params that do not match the cache, empty sequences, masks, blame ------


def test_rnn_backward_refuses_params_that_do_not_match_the_cache(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    other = init_rnn_params(D, H + 2, K, np.random.default_rng(0))  # another hidden size
    with pytest.raises(ValueError, match=r"cache.h0 must be \(N=3, H=7\); got \(3, 5\).*"
                                         r"same rnn_forward call"):
        rnn_backward(do, cache, other)
    other = init_rnn_params(D + 1, H, K, np.random.default_rng(0))  # another input size
    with pytest.raises(ValueError, match=r"cache.x must be \(N, T, D=5\); got \(3, 6, 4\)"):
        rnn_backward(do, cache, other)


def test_empty_sequences_are_refused_with_a_clear_error(problem):
    p, x, y, h0, _ = problem
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        rnn_loss_and_grads(p, x[:, :0], y[:, :0])
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        truncated_bptt(p, x[:, :0], y[:, :0], k=2)
    cache = rnn_forward(x, p, h0)[1]
    empty = type(cache)(x=x[:, :0], h0=h0, h=cache.h[:, :0], o=cache.o[:, :0])
    with pytest.raises(ValueError, match=r"cache.x must have at least one time step"):
        rnn_backward(np.zeros((N, 0, K)), empty, p)
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        hidden_backward(np.zeros((N, 0, H)), x[:, :0], h0, cache.h[:, :0], p["U"], p["W"])


def test_loss_and_grads_blame_the_wrong_argument(problem):
    p, x, y, h0, mask = problem
    with pytest.raises(ValueError, match=r"y must be \(N=3, T=6\); got \(3, 5\)"):
        rnn_loss_and_grads(p, x, y[:, :-1])
    with pytest.raises(ValueError, match=r"h0 must be \(N=3, H=5\); got \(2, 5\)"):
        rnn_loss_and_grads(p, x, y, h0=h0[:2])
    with pytest.raises(ValueError, match=r"mask must be \(N=3, T=6\); got \(6,\)"):
        rnn_loss_and_grads(p, x, y, mask=mask[0])


def test_truncated_bptt_checks_the_mask_at_the_call(problem):
    p, x, y, h0, mask = problem
    with pytest.raises(ValueError, match=r"mask must be \(N=3, T=6\); got \(6,\)"):
        truncated_bptt(p, x, y, k=4, mask=mask[0])  # 1-D: crashed in a slice before
    with pytest.raises(ValueError, match=r"mask must be \(N=3, T=6\); got \(3, 4\)"):
        truncated_bptt(p, x, y, k=4, mask=mask[:, :4])  # passed the first chunk before
    with pytest.raises(ValueError, match="mask must hold only 0"):
        truncated_bptt(p, x, y, k=4, mask=2 * mask)
    with pytest.raises(ValueError, match=r"y must be \(N=3, T=6\); got \(3, 5\)"):
        truncated_bptt(p, x, y[:, 1:], k=4)
    chunks = list(truncated_bptt(p, x, y, k=4, h0=h0, mask=mask.astype(bool)))
    total = sum(c[0] for c in chunks)
    assert total == pytest.approx(rnn_loss_and_grads(p, x, y, mask, h0)[0], rel=1e-12)


def test_step_and_hidden_backward_validate_their_inputs(problem):
    p, x, _, h0, _ = problem
    _, c = rnn_step_forward(x[:, 0], h0, p["U"], p["W"], p["b"])
    g = np.zeros((N, H))
    with pytest.raises(TypeError, match=r"cache must be the \(x_t, h_prev, h_t\) tuple"):
        rnn_step_backward(g, c[:2], p["U"], p["W"])
    with pytest.raises(ValueError, match=r"W must be \(H, H\); got \(5, 4\)"):
        rnn_step_backward(g, c, p["U"], p["U"])
    with pytest.raises(ValueError, match=r"cache\[0\] \(x_t\) must be \(N=3, D=5\); got \(3, 4\)"
                                         r".*same rnn_step_forward call"):
        rnn_step_backward(g, c, np.zeros((H, D + 1)), p["W"])
    with pytest.raises(TypeError, match=r"dh_t must hold floats"):
        rnn_step_backward(g.astype(int), c, p["U"], p["W"])
    _, cache = rnn_forward(x, p, h0)
    dh = np.zeros((N, T, H))
    args = (dh, cache.x, cache.h0, cache.h, p["U"], p["W"])
    hidden_backward(*args)  # valid
    with pytest.raises(ValueError, match=r"dh_out must be \(N=3, T=6, H=5\); got \(3, 5, 5\)"):
        hidden_backward(dh[:, 1:], *args[1:])
    with pytest.raises(ValueError, match=r"h must be \(N=3, T=6, H=5\); got \(3, 6, 4\)"):
        hidden_backward(dh, cache.x, cache.h0, cache.h[..., 1:], p["U"], p["W"])
    with pytest.raises(ValueError, match=r"x must be \(N=3, T=6, D=4\), batch-first; "
                                         r"got \(6, 3, 4\)"
                                         r".*Time-first"):
        hidden_backward(dh, cache.x.transpose(1, 0, 2), *args[2:])
    with pytest.raises(ValueError, match=r"dh_last must be \(N=3, H=5\); got \(5,\)"):
        hidden_backward(*args, dh_last=np.zeros(H))
    with pytest.raises(ValueError, match=r"U must be \(H=5, D\); got \(4, 5\).*\(out, in\)"):
        hidden_backward(dh, cache.x, cache.h0, cache.h, p["U"].T, p["W"])


def test_buggy_backward_checks_its_arguments_like_rnn_backward(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    _, do = sequence_nll(o, y)
    with pytest.raises(ValueError, match=r"do must be \(N=3, T=6, K=3\); got \(3, 5, 3\)"):
        buggy_rnn_backward(do[:, 1:], cache, p)
    with pytest.raises(TypeError, match="cache must be the RNNCache"):
        buggy_rnn_backward(do, None, p)
