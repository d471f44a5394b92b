"""Forward pass: equations, stability, the loss, agreement with recurrence.py and torch.nn.RNN."""

import numpy as np
import pytest
import torch

from companion.scratch.forward import (
    RNNCache,
    check_params,
    log_softmax,
    rnn_forward,
    rnn_step_forward,
    sequence_nll,
    softmax,
)
from companion.scratch.init import fan_in_normal, init_rnn_params, random_rnn_problem
from companion.scratch.recurrence import rnn_hidden_states, rnn_step

N, T, D, H, K = 3, 7, 4, 6, 5


@pytest.fixture
def problem():
    p, x, y, h0 = random_rnn_problem(N, T, D, H, K, np.random.default_rng(0),
                                     bias_scale=0.2)
    return p, x, y, h0


def test_forward_follows_the_equations_step_by_step(problem):
    p, x, _, h0 = problem
    o, cache = rnn_forward(x, p, h0)
    h_prev = h0
    for t in range(T):
        a = x[:, t] @ p["U"].T + h_prev @ p["W"].T + p["b"]
        h_prev = np.tanh(a)
        np.testing.assert_allclose(cache.h[:, t], h_prev, atol=1e-12)
        np.testing.assert_allclose(o[:, t], h_prev @ p["V"].T + p["c"], atol=1e-12)
    assert o.shape == (N, T, K) and cache.h.shape == (N, T, H)


def test_hidden_states_equal_recurrence_module(problem):
    p, x, _, h0 = problem
    _, cache = rnn_forward(x, p, h0)
    ref = rnn_hidden_states(x, p["U"], p["W"], p["b"], h0)
    np.testing.assert_allclose(cache.h, ref, atol=1e-12)
    _, cache0 = rnn_forward(x, p)
    np.testing.assert_allclose(cache0.h, rnn_hidden_states(x, p["U"], p["W"], p["b"]), atol=1e-12)


def test_step_forward_equals_rnn_step(problem):
    p, x, _, h0 = problem
    h1, (xc, hp, hc) = rnn_step_forward(x[:, 0], h0, p["U"], p["W"], p["b"])
    np.testing.assert_allclose(h1, rnn_step(x[:, 0], h0, p["U"], p["W"], p["b"]))
    assert xc is not None and np.shares_memory(hc, h1) and np.array_equal(hp, h0)


def test_forward_matches_torch_rnn_with_copied_weights(problem):
    p, x, _, h0 = problem
    rnn = torch.nn.RNN(D, H, batch_first=True, nonlinearity="tanh").double()
    b_ih = np.random.default_rng(1).normal(size=H)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p["U"]))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p["W"]))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b_ih))
        rnn.bias_hh_l0.copy_(torch.from_numpy(p["b"] - b_ih))  # torch's two biases sum to b
        out, h_n = rnn(torch.from_numpy(x), torch.from_numpy(h0)[None])
    _, cache = rnn_forward(x, p, h0)
    np.testing.assert_allclose(cache.h, out.numpy(), atol=1e-12)
    np.testing.assert_allclose(cache.h[:, -1], h_n[0].numpy(), atol=1e-12)


def test_float32_stays_float32(problem):
    p, x, _, _ = problem
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    o, cache = rnn_forward(x.astype(np.float32), p32)
    assert o.dtype == np.float32 and cache.h.dtype == np.float32


def test_cache_bytes_grow_linearly_in_T(problem):
    p, _, _, _ = problem
    sizes = [rnn_forward(np.zeros((2, t, D)), p)[1].nbytes for t in (1, 2, 4, 8)]
    per_step = 2 * (D + H + K) * 8
    assert sizes == [2 * H * 8 + t * per_step for t in (1, 2, 4, 8)]


def test_cache_h_prev(problem):
    p, x, _, h0 = problem
    _, cache = rnn_forward(x, p, h0)
    assert isinstance(cache, RNNCache)
    np.testing.assert_array_equal(cache.h_prev[:, 0], h0)
    np.testing.assert_array_equal(cache.h_prev[:, 1:], cache.h[:, :-1])


def test_softmax_and_log_softmax_are_stable():
    o = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]])
    p = softmax(o)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(p[1], 1 / 3)
    lp = log_softmax(o)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp[0, 2], -2000.0 - np.log1p(np.exp(-1.0)), rtol=1e-12)
    np.testing.assert_allclose(np.exp(lp), p, atol=1e-15)
    t = torch.from_numpy(o)
    np.testing.assert_allclose(lp, torch.log_softmax(t, -1).numpy(), atol=1e-12)


def test_sequence_nll_matches_torch_cross_entropy(problem):
    p, x, y, h0 = problem
    o, _ = rnn_forward(x, p, h0)
    mask = np.ones((N, T))
    mask[0, 5:] = 0
    mask[2, 3:] = 0
    loss, do = sequence_nll(o, y, mask)
    ot = torch.from_numpy(o).requires_grad_()
    ce = torch.nn.functional.cross_entropy(ot.reshape(-1, K), torch.from_numpy(y).reshape(-1),
                                           reduction="none").reshape(N, T)
    lt = (ce * torch.from_numpy(mask)).sum() / N
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(do, ot.grad.numpy(), atol=1e-14)
    assert np.all(do[0, 5:] == 0)


def test_sequence_nll_mask_removes_padded_steps(problem):
    p, x, y, h0 = problem
    o, _ = rnn_forward(x, p, h0)
    mask = np.zeros((N, T), dtype=bool)
    mask[:, :4] = True
    full, _ = sequence_nll(o[:, :4], y[:, :4])
    masked, _ = sequence_nll(o, y, mask)
    assert masked == pytest.approx(full, rel=1e-12)


def test_uniform_prediction_costs_T_log_K():
    loss, _ = sequence_nll(np.zeros((2, 9, 27)), np.zeros((2, 9), dtype=int))
    assert loss == pytest.approx(9 * np.log(27))


# ---- bad input -----------------------------------------------------------------------


def test_time_first_input_is_recognised(problem):
    from companion.scratch.bptt import rnn_loss_and_grads

    p, x, y, h0 = problem
    with pytest.raises(ValueError, match="Time-first input"):
        rnn_forward(x.transpose(1, 0, 2), p, h0)
    with pytest.raises(ValueError, match="Time-first input"):
        rnn_loss_and_grads(p, x.transpose(1, 0, 2), y)


def test_wrong_input_size(problem):
    p, x, _, _ = problem
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=4\), batch-first; got \(3, 7, 5\)"):
        rnn_forward(np.zeros((N, T, D + 1)), p)
    with pytest.raises(ValueError, match="Expected 3 dimensions"):
        rnn_forward(x[0], p)


def test_mismatched_parameter_shapes(problem):
    p, x, _, _ = problem
    bad = dict(p, U=np.zeros((H + 1, D)))
    with pytest.raises(ValueError, match=r"params\['U'\] must be \(H=6, D\).*stored \(out, in\)"):
        rnn_forward(x, bad)
    with pytest.raises(ValueError, match=r"params\['V'\]"):
        rnn_forward(x, dict(p, V=p["V"].T.copy()))
    with pytest.raises(ValueError, match=r"params\['b'\]"):
        rnn_forward(x, dict(p, b=np.zeros(H + 2)))
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        rnn_forward(x, {k: v for k, v in p.items() if k != "c"})
    with pytest.raises(TypeError, match="params must be a dict"):
        rnn_forward(x, [p["U"], p["W"]])
    with pytest.raises(ValueError, match=r"h0 must be \(N=3, H=6\); got \(3, 7\)"):
        rnn_forward(x, p, np.zeros((N, H + 1)))


def test_integer_and_torch_inputs_are_refused(problem):
    p, x, _, _ = problem
    with pytest.raises(TypeError, match="x must hold floats.*one-hot"):
        rnn_forward(np.ones((N, T, D), dtype=int), p)
    with pytest.raises(TypeError, match=r"params\['W'\] must hold floats"):
        rnn_forward(x, dict(p, W=np.zeros((H, H), dtype=np.int64)))
    with pytest.raises(TypeError, match="torch tensor"):
        rnn_forward(torch.zeros(N, T, D), p)


def test_non_finite_values_are_refused(problem):
    p, x, _, _ = problem
    x = x.copy()
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite.*index \(1, 2, 3\)"):
        rnn_forward(x, p)
    with pytest.raises(ValueError, match=r"params\['W'\] must be finite"):
        rnn_forward(np.zeros((N, T, D)), dict(p, W=np.full((H, H), np.inf)))


def test_targets_out_of_vocabulary(problem):
    p, x, y, _ = problem
    o, _ = rnn_forward(x, p)
    with pytest.raises(ValueError,
                       match=r"y must have every entry in \[0, 5\); got values from 5 to 5"):
        sequence_nll(o, np.full((N, T), K))
    with pytest.raises(ValueError, match="y must have every entry"):
        sequence_nll(o, np.full((N, T), -1))
    with pytest.raises(TypeError, match="integer class indices"):
        sequence_nll(o, y.astype(float))
    with pytest.raises(ValueError, match=r"y must be \(N=3, T=7\).*not one-hot"):
        sequence_nll(o, np.eye(K, dtype=int)[y])


def test_bad_masks(problem):
    p, x, y, _ = problem
    o, _ = rnn_forward(x, p)
    with pytest.raises(ValueError, match="mask must hold only 0"):
        sequence_nll(o, y, np.full((N, T), 0.5))
    with pytest.raises(ValueError, match=r"mask must be \(N=3, T=7\)"):
        sequence_nll(o, y, np.ones((N, T + 1)))


def test_step_forward_single_example_hint(problem):
    p, x, _, h0 = problem
    with pytest.raises(ValueError, match=r"x_t\[None, :\]"):
        rnn_step_forward(x[0, 0], h0, p["U"], p["W"], p["b"])


def test_check_params_returns_sizes(problem):
    p = problem[0]
    assert check_params(p) == {"H": H, "D": D, "K": K}


def test_init_uses_fan_in_rule():
    rng = np.random.default_rng(0)
    M = fan_in_normal(400, 900, rng)
    assert M.std() == pytest.approx(1 / 30, rel=0.02)
    p = init_rnn_params(50, 200, 30, rng)
    assert p["U"].shape == (200, 50) and p["W"].shape == (200, 200) and p["V"].shape == (30, 200)
    assert p["W"].std() == pytest.approx(200**-0.5, rel=0.05)
    assert np.all(p["b"] == 0) and np.all(p["c"] == 0)
    # the pre-activations of unit-variance inputs have unit variance, whatever the width
    x = rng.normal(size=(2000, 50))
    assert (x @ p["U"].T).std() == pytest.approx(1.0, rel=0.1)
    W_half = init_rnn_params(5, 400, 5, rng, recurrent_gain=0.5)["W"]
    radius = np.abs(np.linalg.eigvals(W_half)).max()
    assert radius == pytest.approx(0.5, rel=0.1)


def test_init_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init_rnn_params(2, 3, 4, 0)
    with pytest.raises(ValueError,
                       match=r"gain must be a number > 0; got 0.0. 1.0 is the 1/sqrt\(n\) rule"):
        init_rnn_params(2, 3, 4, rng, gain=0.0)
    with pytest.raises(ValueError, match="H must be an int >= 1"):
        init_rnn_params(2, 0, 4, rng)


def test_numpy_modules_never_import_torch():
    import subprocess
    import sys

    code = ("import sys\n"
            "import companion.scratch.forward, companion.scratch.bptt, companion.scratch.gradcheck\n"
            "import companion.scratch.init, companion.scratch.patterns, companion.scratch.charlm\n"
            "import companion.scratch.buggy, companion.data.text, companion.plots.conditional\n"
            "import companion.plots.training, companion.exercises.ch03, companion.exercises.ch04\n"
            "assert 'torch' not in sys.modules, 'a NumPy module imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_random_rnn_problem_shapes_and_validation():
    p, x, y, h0 = random_rnn_problem(2, 3, 4, 5, 6, np.random.default_rng(1))
    assert p["U"].shape == (5, 4) and p["W"].shape == (5, 5) and p["V"].shape == (6, 5)
    assert np.all(p["b"] != 0) and np.all(p["c"] != 0)  # biases are not left at zero
    assert x.shape == (2, 3, 4) and y.shape == (2, 3) and h0.shape == (2, 5)
    assert y.min() >= 0 and y.max() < 6
    with pytest.raises(ValueError, match="N must be an int >= 1; got 0"):
        random_rnn_problem(0, 3, 4, 5, 6, np.random.default_rng(1))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        random_rnn_problem(2, 3, 4, 5, 6, 0)


# ---- bad input: the right argument is blamed, empty input is refused -------------------


def test_h0_with_the_wrong_batch_size_blames_h0(problem):
    p, x, _, h0 = problem
    with pytest.raises(ValueError, match=r"h0 must be \(N=3, H=6\); got \(2, 6\).*One initial"):
        rnn_forward(x, p, h0[:2])


def test_empty_sequences_and_batches_are_refused(problem):
    p, x, _, _ = problem
    with pytest.raises(ValueError, match=r"x must have at least one time step \(axis 1, T >= 1\); "
                                         r"got shape \(3, 0, 4\)"):
        rnn_forward(x[:, :0], p)
    with pytest.raises(ValueError, match=r"x must have at least one sequence \(axis 0, N >= 1\)"):
        rnn_forward(x[:0], p)
    with pytest.raises(ValueError, match=r"params\['W'\] must have at least one entry along H"):
        rnn_forward(x, dict(p, U=np.zeros((0, 4)), W=np.zeros((0, 0)), V=np.zeros((5, 0)),
                            b=np.zeros(0)))
    with pytest.raises(ValueError, match=r"o must have at least one time step"):
        sequence_nll(np.zeros((2, 0, 3)), np.zeros((2, 0), dtype=int))


@pytest.mark.parametrize("fn", [softmax, log_softmax])
def test_softmax_bad_axis_and_zero_classes(fn):
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) .*got 2.*axis=-1"):
        fn(np.zeros((3, 4)), axis=2)
    with pytest.raises(TypeError, match="axis must be an int; got NoneType"):
        fn(np.zeros((3, 4)), axis=None)
    with pytest.raises(ValueError, match=r"o must have at least one class along axis 1; "
                                         r"got shape \(3, 0\)"):
        fn(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="o must be an array of logits with a class axis"):
        fn(2.0)
    np.testing.assert_allclose(fn(np.zeros((2, 4)), axis=-2), fn(np.zeros((2, 4)), axis=0))


def test_sequence_nll_time_first_logits_get_the_hint():
    o = np.zeros((7, 3, 5))  # (T, N, K) where (N, T, K) belongs
    with pytest.raises(ValueError, match=r"o must be \(N=3, T=7, K\), batch-first; got \(7, 3, 5\)"
                                         r".*o.transpose\(1, 0, 2\)"):
        sequence_nll(o, np.zeros((3, 7), dtype=int))
    with pytest.raises(ValueError, match=r"y must be \(N=3, T=7\); got \(3, 6\)"):
        sequence_nll(o.transpose(1, 0, 2), np.zeros((3, 6), dtype=int))


def test_init_scales_are_checked_by_name():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"gain must be a number > 0; got str"):
        init_rnn_params(2, 3, 4, rng, gain="1")
    with pytest.raises(ValueError, match=r"recurrent_gain must be a number > 0; got inf"):
        init_rnn_params(2, 3, 4, rng, recurrent_gain=float("inf"))
    with pytest.raises(ValueError, match=r"bias_scale must be a number > 0; got -1.0"):
        random_rnn_problem(2, 3, 2, 3, 4, rng, bias_scale=-1.0)
    with pytest.raises(TypeError, match=r"h0_scale must be a number > 0; got NoneType"):
        random_rnn_problem(2, 3, 2, 3, 4, rng, h0_scale=None)


def test_step_forward_names_its_own_arguments(problem):
    p, x, _, h0 = problem
    with pytest.raises(ValueError, match=r"^U must be \(H=6, D\); got \(4, 6\).*\(out, in\)"):
        rnn_step_forward(x[:, 0], h0, p["U"].T, p["W"], p["b"])
    with pytest.raises(ValueError, match=r"h_prev must be \(N=3, H=6\); got \(2, 6\)"):
        rnn_step_forward(x[:, 0], h0[:2], p["U"], p["W"], p["b"])
