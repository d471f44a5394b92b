"""Property-based tests (hypothesis): the NumPy RNN and the torch cells over random
shapes and values, each against an independent oracle.

* the NumPy forward pass against a naive per-example, per-step loop;
* BPTT against torch autograd, in float64 and with a tight tolerance;
* truncated BPTT with ``k >= T`` against full BPTT (bit for bit);
* softmax: rows sum to 1, shift invariance, the axis argument;
* the gradient checker: a NaN or inf anywhere in a gradient is a failure;
* ``companion.nn.cells`` against ``torch.nn.RNN/LSTM/GRU`` with copied weights
  (outputs and gradients).

Shapes are small (N, T, D, H, K <= 4 or 5, T >= 1) so that the whole file runs in a
few seconds; ``derandomize=True`` makes every run (and CI) draw the same examples.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from companion.nn.cells import copy_from_torch, make_cell
from companion.scratch.bptt import rnn_loss_and_grads, truncated_bptt
from companion.scratch.forward import log_softmax, rnn_forward, sequence_nll, softmax
from companion.scratch.gradcheck import check_gradients, gradcheck_report

FAST = settings(max_examples=20, deadline=None, derandomize=True, database=None)
SIZE = st.integers(1, 4)


def _floats(bound):
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)


def _array(shape, bound=1.5):
    return hnp.arrays(np.float64, shape, elements=_floats(bound))


@st.composite
def rnn_problems(draw, with_mask=False):
    """A random vanilla-RNN problem: params, x (N, T, D), y (N, T), h0 (N, H), mask."""
    N, T, D, H, K = draw(SIZE), draw(st.integers(1, 5)), draw(SIZE), draw(SIZE), draw(SIZE)
    params = {
        "U": draw(_array((H, D))),
        "W": draw(_array((H, H))),
        "V": draw(_array((K, H))),
        "b": draw(_array((H,))),
        "c": draw(_array((K,))),
    }
    x = draw(_array((N, T, D), 2.0))
    y = draw(hnp.arrays(np.int64, (N, T), elements=st.integers(0, K - 1)))
    h0 = draw(_array((N, H), 1.0))
    mask = draw(hnp.arrays(np.bool_, (N, T))) if with_mask else None
    return params, x, y, h0, mask


# ---- NumPy forward pass and BPTT -------------------------------------------------------


@FAST
@given(rnn_problems())
def test_forward_matches_a_naive_loop(problem):
    p, x, y, h0, _ = problem
    o, cache = rnn_forward(x, p, h0)
    loss, _ = sequence_nll(o, y)
    N, T, _ = x.shape
    total = 0.0
    for n in range(N):  # one example at a time, column vectors as in the math
        h = h0[n].copy()
        for t in range(T):
            h = np.tanh(p["b"] + p["W"] @ h + p["U"] @ x[n, t])
            o_t = p["c"] + p["V"] @ h
            np.testing.assert_allclose(cache.h[n, t], h, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(o[n, t], o_t, rtol=1e-12, atol=1e-12)
            total -= o_t[y[n, t]] - math.log(sum(math.exp(v) for v in o_t))
    assert loss == pytest.approx(total / N, rel=1e-11, abs=1e-12)


def _torch_loss(p, x, y, h0, mask):
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in {**p, "h0": h0}.items()}
    m = torch.ones(y.shape, dtype=torch.float64) if mask is None else torch.tensor(mask * 1.0)
    h, total = tp["h0"], 0.0
    for t in range(x.shape[1]):
        h = torch.tanh(torch.from_numpy(x[:, t]) @ tp["U"].T + h @ tp["W"].T + tp["b"])
        o = h @ tp["V"].T + tp["c"]
        ce = torch.nn.functional.cross_entropy(o, torch.from_numpy(y[:, t]), reduction="none")
        total = total + (ce * m[:, t]).sum()
    total = total / x.shape[0]
    total.backward()
    return total.item(), {k: v.grad.numpy() for k, v in tp.items()}, h.detach().numpy()


@FAST
@given(rnn_problems(with_mask=True))
def test_bptt_matches_torch_autograd(problem):
    p, x, y, h0, mask = problem
    loss, grads, h_last = rnn_loss_and_grads(p, x, y, mask, h0)
    loss_t, grads_t, h_t = _torch_loss(p, x, y, h0, mask)
    assert loss == pytest.approx(loss_t, rel=1e-11, abs=1e-12)
    np.testing.assert_allclose(h_last, h_t, rtol=1e-12, atol=1e-13)
    assert set(grads) == set(grads_t)
    for k in grads:
        assert grads[k].shape == grads_t[k].shape
        np.testing.assert_allclose(grads[k], grads_t[k], rtol=1e-10, atol=1e-12, err_msg=k)


@FAST
@given(rnn_problems(with_mask=True), st.integers(0, 3))
def test_truncated_bptt_with_k_at_least_T_is_full_bptt(problem, extra):
    p, x, y, h0, mask = problem
    k = x.shape[1] + extra
    chunks = list(truncated_bptt(p, x, y, k, h0=h0, mask=mask))
    assert len(chunks) == 1
    loss, grads, h_last = chunks[0]
    loss_f, grads_f, h_f = rnn_loss_and_grads(p, x, y, mask, h0)
    assert loss == loss_f
    np.testing.assert_array_equal(h_last, h_f)
    for name in grads_f:
        np.testing.assert_array_equal(grads[name], grads_f[name], err_msg=name)


# ---- softmax ---------------------------------------------------------------------------


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                  elements=_floats(50.0)),
       _floats(100.0))
def test_softmax_sums_to_one_and_is_shift_invariant(o, shift):
    for axis in range(-o.ndim, o.ndim):
        s = softmax(o, axis=axis)
        assert np.all(s >= 0) and np.all(np.isfinite(s))
        np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-12)
        np.testing.assert_allclose(softmax(o + shift, axis=axis), s, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(np.exp(log_softmax(o, axis=axis)), s, rtol=1e-12, atol=1e-15)
    moved = np.moveaxis(softmax(np.moveaxis(o, 0, -1)), -1, 0)
    np.testing.assert_allclose(softmax(o, axis=0), moved, rtol=1e-14, atol=1e-16)


# ---- the gradient checker can fail ------------------------------------------------------


@FAST
@given(_array((3, 2)), st.integers(0, 5), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_a_non_finite_gradient_entry_always_fails(w, where, bad):
    params = {"w": w.copy(), "v": np.ones(2)}
    grads = {"v": 2 * params["v"], "w": 3 * params["w"] ** 2}
    grads["w"].flat[where] = bad

    def loss(q):
        return float(np.sum(q["w"] ** 3) + np.sum(q["v"] ** 2))

    errors = check_gradients(loss, params, grads)
    assert errors["w"] == np.inf and errors["v"] < 1e-7
    assert not max(errors.values()) < 1e-7
    assert "dw   FAIL" in gradcheck_report(errors)


# ---- torch cells against torch.nn.RNN/LSTM/GRU -----------------------------------------


_MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@FAST
@given(st.sampled_from(sorted(_MODULES)), SIZE, st.integers(1, 5), SIZE, SIZE,
       st.integers(0, 2**31 - 1))
def test_cells_match_torch_modules_outputs_and_gradients(kind, N, T, D, H, seed):
    gen = torch.Generator().manual_seed(seed)
    module = _MODULES[kind](D, H, batch_first=True).double()
    with torch.no_grad():
        for prm in module.parameters():
            prm.uniform_(-1.0, 1.0, generator=gen)
    cell = copy_from_torch(make_cell(kind, D, H), module)
    x = (2 * torch.rand(N, T, D, generator=gen, dtype=torch.float64) - 1)
    h0 = torch.rand(N, H, generator=gen, dtype=torch.float64) - 0.5
    c0 = torch.rand(N, H, generator=gen, dtype=torch.float64) - 0.5
    weight = torch.randn(N, T, H, generator=gen, dtype=torch.float64)  # a random readout

    x_ref = x.clone().requires_grad_(True)
    out_ref, _ = module(x_ref, (h0[None], c0[None]) if kind == "lstm" else h0[None])
    (out_ref * weight).sum().backward()

    x_cell = x.clone().requires_grad_(True)
    state = (h0, c0) if kind == "lstm" else h0
    outs = []
    for t in range(T):
        state = cell(x_cell[:, t], state)
        outs.append(state[0] if kind == "lstm" else state)
    out = torch.stack(outs, dim=1)
    (out * weight).sum().backward()

    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(x_cell.grad, x_ref.grad, rtol=1e-11, atol=1e-12)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(getattr(cell, name).grad,
                                   getattr(module, name + "_l0").grad,
                                   rtol=1e-11, atol=1e-12, msg=f"{kind} {name}")
