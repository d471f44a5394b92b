"""The recurrence, its unrolled composition and the RNN hidden-state update."""

import numpy as np
import pytest

from companion import set_seed
from companion.scratch import (
    linear_recurrence_closed_form,
    rnn_hidden_states,
    rnn_step,
    unroll,
    unrolled_function,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_rnn(rng, D=3, H=4):
    return rng.normal(size=(H, D)), rng.normal(size=(H, H)) / 2, rng.normal(size=H)


def test_unroll_autonomous_matches_matrix_powers(rng):
    W = rng.normal(size=(3, 3)) / 2
    s0 = rng.normal(size=3)
    states = unroll(lambda s: W @ s, s0, steps=6)
    assert states.shape == (7, 3)
    for t in range(7):
        np.testing.assert_allclose(states[t], np.linalg.matrix_power(W, t) @ s0, rtol=1e-12)


def test_unroll_driven_indexing(rng):
    xs = rng.normal(size=(5, 2))
    states = unroll(lambda s, x: s + x, np.zeros(2), xs=xs)
    np.testing.assert_allclose(states[0], 0.0)
    np.testing.assert_allclose(states[3], xs[:3].sum(axis=0))  # states[t] saw x^(1..t)


def test_unroll_does_not_alias_states():
    def f(s):
        s += 1.0  # a transition that (badly) mutates its argument in place
        return s

    states = unroll(f, [0.0], steps=3)
    # states[t] must be a snapshot even though f mutated the array it was handed
    assert states[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("t", [0, 1, 2, 5, 9])
def test_recurrence_equals_unrolled_composition(rng, t):
    U, W, b = make_rnn(rng)

    def f(h, x):
        return np.tanh(b + W @ h + U @ x)

    xs, h0 = rng.normal(size=(9, 3)), rng.normal(size=4)
    loop = unroll(f, h0, xs=xs)
    g_t = unrolled_function(f, t)
    np.testing.assert_allclose(g_t(h0, xs[:t]), loop[t], rtol=1e-12)


def test_linear_closed_form_equals_loop(rng):
    U, W, _ = make_rnn(rng)
    xs, h0 = rng.normal(size=(7, 3)), rng.normal(size=4)
    loop = unroll(lambda h, x: W @ h + U @ x, h0, xs=xs)
    np.testing.assert_allclose(linear_recurrence_closed_form(W, U, xs, h0), loop,
                               rtol=1e-10, atol=1e-12)


def test_batched_rnn_equals_per_example_column_form(rng):
    U, W, b = make_rnn(rng)
    x = rng.normal(size=(5, 6, 3))
    h0 = rng.normal(size=(5, 4))
    batched = rnn_hidden_states(x, U, W, b, h0=h0)
    for n in range(5):
        loop = unroll(lambda h, xt: np.tanh(b + W @ h + U @ xt), h0[n], xs=x[n])
        np.testing.assert_allclose(batched[n], loop[1:], rtol=1e-12)


def test_rnn_step_is_one_column_of_the_sequence(rng):
    U, W, b = make_rnn(rng)
    x = rng.normal(size=(2, 3, 3))
    h = rnn_hidden_states(x, U, W, b)
    np.testing.assert_allclose(rnn_step(x[:, 2], h[:, 1], U, W, b), h[:, 2], rtol=1e-12)


def test_same_parameters_serve_every_step_and_every_length(rng):
    U, W, b = make_rnn(rng)
    x = rng.normal(size=(2, 50, 3))
    full = rnn_hidden_states(x, U, W, b)
    # a prefix of the sequence gives the prefix of the states: nothing depends on T
    for T in [1, 7, 23]:
        np.testing.assert_allclose(rnn_hidden_states(x[:, :T], U, W, b), full[:, :T], rtol=1e-12)
    # continuing from a carried state is the same as running the whole sequence
    second = rnn_hidden_states(x[:, 20:], U, W, b, h0=full[:, 19])
    np.testing.assert_allclose(second, full[:, 20:], rtol=1e-12)
    # and the parameters were not modified by running
    U2, W2, b2 = make_rnn(np.random.default_rng(0))
    np.testing.assert_array_equal(U, U2)


def test_rnn_against_torch_with_copied_weights(rng):
    torch = pytest.importorskip("torch")
    U, W, b = make_rnn(rng)
    x = rng.normal(size=(3, 5, 3))
    rnn = torch.nn.RNN(3, 4, batch_first=True, dtype=torch.float64)
    b_ih = rng.normal(size=4)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(U))
        rnn.weight_hh_l0.copy_(torch.from_numpy(W))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b_ih))
        rnn.bias_hh_l0.copy_(torch.from_numpy(b - b_ih))  # the two biases sum to b
    out, _ = rnn(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), rnn_hidden_states(x, U, W, b), rtol=1e-10)


# --- bad input -----------------------------------------------------------------------


def test_time_first_input_is_named(rng):
    U, W, b = make_rnn(rng)
    with pytest.raises(ValueError, match=r"x must be \(N=2, T, D=3\), batch-first; got \(9, 2, 3\).*Time-first"):
        rnn_hidden_states(np.zeros((9, 2, 3)), U, W, b, h0=np.zeros((2, 4)))


def test_mismatched_parameter_shapes(rng):
    U, W, b = make_rnn(rng)
    with pytest.raises(ValueError, match=r"U must be \(H=4, D\); got \(3, 3\).*\(out, in\)"):
        rnn_hidden_states(np.zeros((1, 2, 3)), U[:3], W, b)
    with pytest.raises(ValueError, match=r"b must be \(H=4,\); got \(5,\)"):
        rnn_hidden_states(np.zeros((1, 2, 3)), U, W, np.zeros(5))
    with pytest.raises(ValueError, match=r"x must be \(N, T, D=3\), batch-first; got \(1, 2, 5\)"):
        rnn_hidden_states(np.zeros((1, 2, 5)), U, W, b)
    with pytest.raises(ValueError, match=r"x_t must be \(N, D=3\); got \(3,\).*x_t\[None, :\]"):
        rnn_step(np.zeros(3), np.zeros((1, 4)), U, W, b)


def test_wrong_types_and_non_finite_values(rng):
    U, W, b = make_rnn(rng)
    with pytest.raises(TypeError, match="x must hold floats; got numpy array of dtype int64"):
        rnn_hidden_states(np.zeros((1, 2, 3), dtype=np.int64), U, W, b)
    W_bad = W.copy()
    W_bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"W must be finite.*\(0, 1\)"):
        rnn_hidden_states(np.zeros((1, 2, 3)), U, W_bad, b)
    with pytest.raises(ValueError, match="s0 must be finite"):
        unroll(lambda s: s, [np.inf], steps=2)


def test_unroll_argument_errors():
    with pytest.raises(ValueError, match="steps must be given for an autonomous system"):
        unroll(lambda s: s, [0.0])
    with pytest.raises(ValueError, match="not both"):
        unroll(lambda s, x: s, [0.0], xs=[[1.0]], steps=1)
    with pytest.raises(TypeError, match="f must be a function"):
        unroll("tanh", [0.0], steps=1)
    with pytest.raises(ValueError, match=r"f must return a state of the same shape as s0, \(2,\); at step t=1 it returned shape \(3,\)"):
        unroll(lambda s: np.zeros(3), [0.0, 0.0], steps=2)
    with pytest.raises(ValueError, match=r"steps must be an int >= 0; got -1"):
        unroll(lambda s: s, [0.0], steps=-1)


def test_unrolled_function_length_mismatch():
    g = unrolled_function(lambda s, x: s + x, 3)
    with pytest.raises(ValueError, match=r"xs must hold exactly t=3 inputs.*got shape \(2, 1\)"):
        g([0.0], [[1.0], [2.0]])


def test_set_seed_is_reproducible_and_validated():
    a = set_seed(5).normal(size=3)
    b = set_seed(5).normal(size=3)
    np.testing.assert_array_equal(a, b)
    set_seed(7)
    first = np.random.rand()
    set_seed(7)
    assert np.random.rand() == first
    with pytest.raises(ValueError, match="seed must be non-negative"):
        set_seed(-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        set_seed(1.5)


def test_set_seed_seeds_torch_when_imported():
    torch = pytest.importorskip("torch")
    set_seed(3)
    a = torch.rand(2)
    set_seed(3)
    assert torch.equal(a, torch.rand(2))


def test_rnn_hidden_states_blames_h0_with_the_wrong_batch_size():
    U, W, b = np.ones((4, 3)), np.eye(4), np.zeros(4)
    with pytest.raises(ValueError, match=r"h0 must be \(N=2, H=4\); got \(3, 4\).*One initial"):
        rnn_hidden_states(np.zeros((2, 5, 3)), U, W, b, h0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"x must have at least one time step.*\(2, 0, 3\)"):
        rnn_hidden_states(np.zeros((2, 0, 3)), U, W, b)
    with pytest.raises(ValueError, match=r"W must have at least one entry along H"):
        rnn_hidden_states(np.zeros((2, 5, 3)), np.ones((0, 3)), np.eye(0), np.zeros(0))
