"""Output-to-hidden recurrence and sequence-to-vector: gradients and torch oracles."""

import numpy as np
import pytest
import torch

from companion.scratch.forward import rnn_forward
from companion.scratch.gradcheck import check_gradients
from companion.scratch.init import fan_in_normal, init_rnn_params
from companion.scratch.patterns import (
    output_recurrent_backward,
    output_recurrent_forward,
    output_recurrent_loss_and_grads,
    seq2vec_backward,
    seq2vec_forward,
    seq2vec_loss_and_grads,
)

N, T, D, H, K = 3, 5, 4, 6, 3
NAMES = ("U", "W", "V", "b", "c")


@pytest.fixture
def out_rec():
    rng = np.random.default_rng(0)
    p = {"U": fan_in_normal(H, D, rng), "W": fan_in_normal(H, K, rng),
         "V": fan_in_normal(K, H, rng), "b": rng.normal(0, 0.2, H), "c": rng.normal(0, 0.2, K)}
    x = rng.normal(size=(N, T, D))
    y = rng.integers(0, K, (N, T))
    o0 = rng.normal(size=(N, K))
    return p, x, y, o0


def test_output_recurrence_forward_equations(out_rec):
    p, x, _, o0 = out_rec
    o, cache = output_recurrent_forward(x, p, o0)
    prev = o0
    for t in range(T):
        h = np.tanh(p["b"] + prev @ p["W"].T + x[:, t] @ p["U"].T)
        prev = h @ p["V"].T + p["c"]
        np.testing.assert_allclose(o[:, t], prev, atol=1e-12)


def test_output_recurrence_gradients(out_rec):
    p, x, y, o0 = out_rec
    mask = np.ones((N, T))
    mask[0, 3:] = 0
    _, grads = output_recurrent_loss_and_grads(p, x, y, mask, o0)

    def f(q):
        return output_recurrent_loss_and_grads({k: q[k] for k in NAMES}, x, y, mask, q["o0"])[0]

    errors = check_gradients(f, {**p, "o0": o0.copy()}, grads)
    assert max(errors.values()) < 1e-7, errors
    # torch autograd on the same computation
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in {**p, "o0": o0}.items()}
    prev, loss = tp["o0"], 0.0
    for t in range(T):
        h = torch.tanh(tp["b"] + prev @ tp["W"].T + torch.from_numpy(x[:, t]) @ tp["U"].T)
        prev = h @ tp["V"].T + tp["c"]
        ce = torch.nn.functional.cross_entropy(prev, torch.from_numpy(y[:, t]), reduction="none")
        loss = loss + (ce * torch.from_numpy(mask[:, t])).sum() / N
    loss.backward()
    for k in grads:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), atol=1e-12, err_msg=k)


def test_output_recurrence_bad_shapes(out_rec):
    p, x, y, o0 = out_rec
    with pytest.raises(ValueError, match=r"params\['W'\] must be \(H, K\)"):
        output_recurrent_forward(x, dict(p, W=np.zeros((H, H, 1))))
    with pytest.raises(ValueError,
                       match=r"params\[.V.\] must be \(K=6, H=6\); got \(3, 6\).*W is \(H, K\)"):
        output_recurrent_forward(x, dict(p, W=np.zeros((H, H))))
    with pytest.raises(ValueError, match=r"o0 must be \(N=3, K=3\)"):
        output_recurrent_forward(x, p, np.zeros((N, K + 1)))
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=4\)"):
        output_recurrent_forward(x[..., :2], p)
    o, cache = output_recurrent_forward(x, p)
    with pytest.raises(TypeError, match="cache must come from output_recurrent_forward"):
        output_recurrent_backward(o, None, p)


@pytest.fixture
def s2v():
    rng = np.random.default_rng(1)
    p = init_rnn_params(D, H, K, rng)
    p["b"] = rng.normal(0, 0.2, H)
    x = rng.normal(size=(N, T, D))
    y = rng.integers(0, K, N)
    h0 = rng.normal(0, 0.5, (N, H))
    return p, x, y, h0


def test_seq2vec_output_is_last_state_readout(s2v):
    p, x, _, h0 = s2v
    o, _ = seq2vec_forward(x, p, h0)
    o_all, _ = rnn_forward(x, p, h0)
    np.testing.assert_allclose(o, o_all[:, -1], atol=1e-12)


def test_seq2vec_gradients_and_torch(s2v):
    p, x, y, h0 = s2v
    loss, grads = seq2vec_loss_and_grads(p, x, y, h0)

    def f(q):
        return seq2vec_loss_and_grads({k: q[k] for k in NAMES}, x, y, q["h0"])[0]

    errors = check_gradients(f, {**p, "h0": h0.copy()}, grads)
    assert max(errors.values()) < 1e-7, errors
    rnn = torch.nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p["U"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p["W"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(p["b"]))
        rnn.bias_hh_l0.zero_()
    V = torch.tensor(p["V"], requires_grad=True)
    _, h_n = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
    lt = torch.nn.functional.cross_entropy(h_n[0] @ V.T + torch.from_numpy(p["c"]),
                                           torch.from_numpy(y))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(grads["W"], rnn.weight_hh_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["V"], V.grad.numpy(), atol=1e-12)


def test_seq2vec_bad_input(s2v):
    p, x, y, h0 = s2v
    with pytest.raises(ValueError, match=r"y must be \(N=3,\).*One class label per sequence"):
        seq2vec_loss_and_grads(p, x, np.zeros((N, T), dtype=int))
    with pytest.raises(ValueError, match=r"y must have every entry in \[0, 3\)"):
        seq2vec_loss_and_grads(p, x, np.full(N, K))
    o, cache = seq2vec_forward(x, p)
    with pytest.raises(ValueError, match=r"do must be \(N=3, K=3\)"):
        seq2vec_backward(np.zeros((N, T, K)), cache, p)
    with pytest.raises(TypeError, match="cache must come from seq2vec_forward"):
        seq2vec_backward(o, None, p)


def test_patterns_blame_the_right_argument_and_refuse_empty_sequences(out_rec, s2v):
    p, x, y, o0 = out_rec
    with pytest.raises(ValueError, match=r"x must be \(N=3, T, D=4\), batch-first; got \(5, 3, 4\)"
                                         r".*Time-first"):
        output_recurrent_forward(x.transpose(1, 0, 2), p, o0)
    with pytest.raises(ValueError, match=r"o0 must be \(N=3, K=3\); got \(2, 3\)"):
        output_recurrent_forward(x, p, o0[:2])
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        output_recurrent_forward(x[:, :0], p)
    o, cache = output_recurrent_forward(x, p, o0)
    other = dict(p, U=np.zeros((H + 1, D)), W=np.zeros((H + 1, K)), V=np.zeros((K, H + 1)),
                 b=np.zeros(H + 1))
    with pytest.raises(ValueError, match=r"cache.h must be \(N=3, T=5, H=7\); got \(3, 5, 6\)"
                                         r".*same output_recurrent_forward call"):
        output_recurrent_backward(np.zeros_like(o), cache, other)
    p2, x2, y2, h0 = s2v
    with pytest.raises(ValueError, match=r"x must be \(N=3, T, D=4\), batch-first.*Time-first"):
        seq2vec_loss_and_grads(p2, x2.transpose(1, 0, 2), y2)
    with pytest.raises(ValueError, match=r"y must be \(N=3,\); got \(2,\)"):
        seq2vec_loss_and_grads(p2, x2, y2[:2])
    with pytest.raises(ValueError, match=r"h0 must be \(N=3, H=6\); got \(2, 6\)"):
        seq2vec_forward(x2, p2, h0[:2])
    with pytest.raises(ValueError, match=r"x must have at least one time step"):
        seq2vec_forward(x2[:, :0], p2)
    o2, cache2 = seq2vec_forward(x2, p2, h0)
    with pytest.raises(ValueError, match=r"cache.x must be \(N, T, D=5\); got \(3, 5, 4\)"
                                         r".*same seq2vec_forward call"):
        seq2vec_backward(o2, cache2, dict(p2, U=np.zeros((H, D + 1))))
