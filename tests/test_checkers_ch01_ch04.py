"""The exercise checkers of chapters 1-4.

For every checker: the notebook's reference solution (copied here) passes; an answer that
delegates to the package's (or torch's) reference is refused with a DelegationError where
such a reference exists; an answer hard-coded to the page's example or to the checker's
fixed cases fails; typical wrong answers get their hint; NaN output is refused. No hint
states the expected value.
"""

import numpy as np
import pytest
import torch

from companion.exercises import DelegationError, ch01, ch02, ch03, ch04
from companion.scratch import unroll
from companion.scratch.bptt import rnn_backward, rnn_loss_and_grads, truncated_bptt
from companion.scratch.forward import rnn_forward, sequence_nll, softmax
from companion.scratch.longterm import skip_hidden_states
from companion.scratch.patterns import output_recurrent_backward, output_recurrent_forward
from companion.scratch.recurrence import linear_recurrence_closed_form
from companion.scratch.scan import scan_loop

DELEGATED = "already holds"
NAMES = ("U", "W", "V", "b", "c")


def _fails(check, answer, match):
    with pytest.raises(AssertionError, match=match) as err:
        check(answer)
    assert not isinstance(err.value, DelegationError)
    return str(err.value)


# ------------------------------------------------------------------------- chapter 1 ----

def final_state(a, s0, xs):
    inputs = np.asarray(xs, dtype=float).reshape(-1, 1)     # (tau, 1): one input per step
    return float(unroll(lambda s, x: a * s + x, [s0], xs=inputs)[-1, 0])


def test_ch01_final_state(capsys):
    ch01.check_final_state(final_state)
    assert capsys.readouterr().out == ("Correct: your s(tau) matches the recurrence on the "
                                       "page's setting and on fresh ones.\n")
    with pytest.raises(DelegationError, match=DELEGATED):
        ch01.check_final_state(lambda a, s0, xs: linear_recurrence_closed_form(
            [[a]], [[1.0]], np.reshape(xs, (-1, 1)), [s0])[-1, 0])
    with pytest.raises(DelegationError, match=DELEGATED):
        ch01.check_final_state(lambda a, s0, xs: scan_loop(
            np.full(len(xs), a), np.asarray(xs), np.float64(s0))[-1])
    hint = _fails(ch01.check_final_state, lambda a, s0, xs: -0.5, "initial state")  # the page's
    assert "-0.5" not in hint
    _fails(ch01.check_final_state,                          # the page's and the fixed cases
           lambda a, s0, xs: {3: -0.5, 0: s0, 2: 0.0 * a - 2.0, 1: -0.3}.get(len(xs), 0.0),
           "not the recurrence's")
    _fails(ch01.check_final_state,                          # all the states, not the last
           lambda a, s0, xs: unroll(lambda s, x: a * s + x, [s0], xs=np.reshape(xs, (-1, 1))),
           "one number")
    _fails(ch01.check_final_state,                          # one step short
           lambda a, s0, xs: final_state(a, s0, xs[:-1]) if len(xs) else s0,
           "step by step")
    _fails(ch01.check_final_state, lambda a, s0, xs: np.array([final_state(a, s0, xs)]) * np.nan,
           "NaN")
    # a one-element array (as unroll's last row is) is accepted, not a bare TypeError
    ch01.check_final_state(lambda a, s0, xs: np.array([final_state(a, s0, xs)]))


def latch_step(s, x):
    return np.maximum(s, x)             # once 1, always 1; 0 until the first 1


def test_ch01_latch_step(capsys):
    # no package function computes one step of a latch: nothing to delegate to
    ch01.check_latch_step(latch_step)
    ch01.check_latch_step(lambda s, x: max(s, x))                   # also right
    ch01.check_latch_step(lambda s, x: np.clip(s + x, 0, 1))        # also right
    assert capsys.readouterr().out.count("Correct") == 3
    # the checker runs the transition itself, so a whole-sequence shortcut such as
    # np.maximum.accumulate has nothing to work on: handed a latch over the sequence, it
    # sees one input at a time
    _fails(ch01.check_latch_step, lambda s, x: np.maximum.accumulate(x), "a 0 must not erase")
    # hard-coded: replays, call by call, the states of the checker's fixed sequences
    replay = iter([0, 0, 0, 0, 0] + [1, 1, 1] + [0, 0, 1, 1, 1, 1] + [1] + [0, 1, 1, 1, 1, 1])
    _fails(ch01.check_latch_step, lambda s, x: np.array([float(next(replay, 0))]),
           "switch the state")
    _fails(ch01.check_latch_step, lambda s, x: x, "a 0 must not erase")          # forgets
    _fails(ch01.check_latch_step, lambda s, x: s + x, "must not add")             # counts
    _fails(ch01.check_latch_step, lambda s, x: 0.9 * s + x, "stay at 1")          # leaks
    _fails(ch01.check_latch_step, lambda s, x: np.ones_like(s), "leaves 0")       # always on
    _fails(ch01.check_latch_step, lambda s, x: np.zeros_like(s), "switch the state")
    _fails(ch01.check_latch_step, lambda s, x: np.concatenate([s, x]), "shaped like s")
    _fails(ch01.check_latch_step, lambda s, x: s * np.nan, "NaN")


def transient_matrix(rho, gain):
    off_diagonal = gain - rho ** 2 / gain
    return np.array([[rho, off_diagonal], [0.0, rho]])


def test_ch01_transient_matrix(capsys):
    # no package function builds such a matrix: nothing to delegate to
    ch01.check_transient_matrix(transient_matrix)
    assert "Correct" in capsys.readouterr().out
    hint = _fails(ch01.check_transient_matrix,            # the old page's answer, hard-coded
                  lambda rho, gain: np.array([[0.5, 2.0], [0.0, 0.5]]), "not gain")
    assert "1.875" not in hint
    _fails(ch01.check_transient_matrix, lambda rho, gain: np.array([[0.5, 1.875], [0.0, 0.5]]),
           "spectral radius")
    _fails(ch01.check_transient_matrix, lambda rho, gain: np.array([[rho, gain], [0.0, rho]]),
           "not gain")                                    # the off-diagonal is not the gain
    _fails(ch01.check_transient_matrix, lambda rho, gain: rho * np.eye(2),
           "no vector is amplified")
    _fails(ch01.check_transient_matrix, lambda rho, gain: np.eye(2) * gain, "spectral radius")
    _fails(ch01.check_transient_matrix, lambda rho, gain: transient_matrix(rho, gain) * np.nan,
           "NaN")


def receptive_field(response, tol):
    above = np.nonzero(np.abs(np.asarray(response, dtype=float)) > tol)[0]
    return int(above[-1]) + 1 if len(above) else 0


def test_ch01_receptive_field(capsys):
    # no package function measures a receptive field: nothing to delegate to
    ch01.check_receptive_field(receptive_field)
    assert "Correct" in capsys.readouterr().out
    fixed = {5: 3, 4: 0, 3: 3, 200: 88}
    _fails(ch01.check_receptive_field, lambda r, tol: fixed.get(len(r), 1), "Count time steps")
    _fails(ch01.check_receptive_field, lambda r, tol: receptive_field(r, tol) - 1 if
           receptive_field(r, tol) else 0, "Count time steps")              # zero-based
    _fails(ch01.check_receptive_field,                                       # no abs
           lambda r, tol: receptive_field(np.maximum(r, 0), tol), "magnitude")
    _fails(ch01.check_receptive_field, lambda r, tol: float(receptive_field(r, tol)), "an int")
    _fails(ch01.check_receptive_field, lambda r, tol: float("nan"), "an int")


# ------------------------------------------------------------------------- chapter 2 ----

def edge_counts(tau, show_initial, with_input, with_output, with_loss):
    per_column = tau
    return {"W": per_column if show_initial else per_column - 1,
            "U": per_column if with_input else 0,
            "V": per_column if with_output else 0,
            "loss": per_column if with_output and with_loss else 0}


def test_ch02_edge_counts(capsys):
    ch02.check_edge_counts(edge_counts)
    assert "Correct" in capsys.readouterr().out
    _fails(ch02.check_edge_counts,                          # the old answer: all switched on
           lambda tau, *flags: {"W": tau, "U": tau, "V": tau, "loss": tau}, "W")
    _fails(ch02.check_edge_counts,                          # hard-coded for the fixed taus
           lambda tau, *f: edge_counts(tau, *f) if tau in (1, 2, 5) else dict.fromkeys(
               ("W", "U", "V", "loss"), 0), "wrong")
    hint = _fails(ch02.check_edge_counts, lambda tau, s, i, o, l: {
        **edge_counts(tau, s, i, o, l), "V": tau}, "V edges")   # V edges without outputs
    assert "'V':" not in hint
    _fails(ch02.check_edge_counts, lambda tau, *f: {"W": tau}, "exactly the keys")
    _fails(ch02.check_edge_counts, lambda tau, *f: {k: float("nan") for k in ("W", "U", "V",
                                                                              "loss")}, "int")


def second_order_states(f, h_minus1, h0, xs):
    H = len(h0)

    def stacked_step(z, x_t):
        return np.concatenate([f(z[:H], z[H:], x_t), z[:H]])

    z_all = unroll(stacked_step, np.concatenate([h0, h_minus1]), xs=xs)
    return z_all[1:, :H]


def test_ch02_second_order(capsys):
    ch02.check_second_order(second_order_states)
    assert "Correct" in capsys.readouterr().out

    def via_skip(f, h_minus1, h0, xs):
        return skip_hidden_states(xs[None], np.eye(len(h0), xs.shape[1]), np.eye(len(h0)),
                                  np.zeros(len(h0)), np.eye(len(h0)), 2)[0]

    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_second_order(via_skip)
    _fails(ch02.check_second_order, lambda f, hm, h0, xs: np.zeros((len(xs), len(h0))),
           "differ from the recurrence")                # hard-coded
    _fails(ch02.check_second_order,                     # arguments of f swapped
           lambda f, hm, h0, xs: second_order_states(lambda a, b, x: f(b, a, x), hm, h0, xs),
           "in this order")

    def not_shifted(f, hm, h0, xs):                     # the old h^(t-2) is never replaced
        H = len(h0)
        return unroll(lambda z, x: np.concatenate([f(z[:H], z[H:], x), z[H:]]),
                      np.concatenate([h0, hm]), xs=xs)[1:, :H]

    _fails(ch02.check_second_order, not_shifted, "shifted")
    _fails(ch02.check_second_order, lambda f, hm, h0, xs: unroll(
        lambda z, x: np.concatenate([f(z[:len(h0)], z[len(h0):], x), z[:len(h0)]]),
        np.concatenate([h0, hm]), xs=xs), "shape")      # returns the whole stacked states
    _fails(ch02.check_second_order, lambda f, hm, h0, xs: second_order_states(f, hm, h0, xs)
           * np.nan, "NaN")


def all_states_closed_form(w, u, xs, h0):
    inputs = np.asarray(xs, dtype=float)
    steps = np.arange(1, len(inputs) + 1)
    age = steps[:, None] - steps[None, :]
    weights = np.where(age >= 0, u * float(w) ** np.maximum(age, 0), 0.0)
    return weights @ inputs + float(w) ** steps * h0


def test_ch02_all_states_closed_form(capsys):
    ch02.check_all_states_closed_form(all_states_closed_form)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_all_states_closed_form(lambda w, u, xs, h0: unroll(
            lambda h, x: w * h + u * x, [h0], xs=np.reshape(xs, (-1, 1)))[1:, 0])
    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_all_states_closed_form(lambda w, u, xs, h0: linear_recurrence_closed_form(
            [[w]], [[u]], np.reshape(xs, (-1, 1)), [h0])[1:, 0])
    _fails(ch02.check_all_states_closed_form,             # hard-coded to the first fixed case
           lambda w, u, xs, h0: np.array([1.0, 2.5, 4.25])[:len(xs)], "shape|disagree")
    _fails(ch02.check_all_states_closed_form,
           lambda w, u, xs, h0: all_states_closed_form(w, u, xs, h0)[::-1], "reverse")
    _fails(ch02.check_all_states_closed_form,             # only the final state
           lambda w, u, xs, h0: all_states_closed_form(w, u, xs, h0)[-1:], "one state per")

    def ages_upside_down(w, u, xs, h0):                   # weight w**(k - 1) instead of w**(t - k)
        steps = np.arange(1, len(xs) + 1)
        weights = np.where(steps[:, None] >= steps[None, :], u * float(w) ** (steps[None, :] - 1),
                           0.0)
        return weights @ np.asarray(xs) + float(w) ** steps * h0

    _fails(ch02.check_all_states_closed_form, ages_upside_down, "age")

    def masked_after(w, u, xs, h0):                       # powers before the mask: w = 0 breaks
        steps = np.arange(1, len(xs) + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = u * float(w) ** (steps[:, None] - steps[None, :]) * np.tri(len(xs))
        return weights @ np.asarray(xs) + float(w) ** steps * h0

    _fails(ch02.check_all_states_closed_form, masked_after, "NaN")


def dh_dw(w, xs, h0):
    xs = np.asarray(xs, dtype=float)
    hs = unroll(lambda h, x: np.tanh(w * h + x), [h0], xs=xs[:, None])[:, 0]
    tau = len(xs)
    total, carry = 0.0, 1.0
    for t in range(tau, 0, -1):
        carry *= 1 - hs[t] ** 2
        total += carry * hs[t - 1]
        carry *= w
    return total


def test_ch02_dh_dw(capsys):
    ch02.check_dh_dw(dh_dw)
    assert "Correct" in capsys.readouterr().out

    def via_rnn_backward(w, xs, h0):
        p = {"U": np.eye(1), "W": np.array([[w]]), "V": np.eye(1), "b": np.zeros(1),
             "c": np.zeros(1)}
        x = np.asarray(xs, float)[None, :, None]
        _, cache = rnn_forward(x, p, np.array([[h0]]))
        do = np.zeros((1, len(xs), 1))
        do[0, -1, 0] = 1.0
        return float(rnn_backward(do, cache, p)["W"][0, 0])

    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_dh_dw(via_rnn_backward)

    def via_autograd(w, xs, h0):
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        h = torch.tensor(h0, dtype=torch.float64)
        for x in xs:
            h = torch.tanh(wt * h + float(x))
        (g,) = torch.autograd.grad(h, wt)
        return float(g)

    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_dh_dw(via_autograd)
    _fails(ch02.check_dh_dw, lambda w, xs, h0: -1.323265, "1 - h")          # hard-coded

    def no_tanh(w, xs, h0):                              # the linear formula: the classic bug
        hs = unroll(lambda h, x: np.tanh(w * h + x), [h0], xs=np.asarray(xs)[:, None])[:, 0]
        return sum(w ** (len(xs) - t) * hs[t - 1] for t in range(1, len(xs) + 1))

    _fails(ch02.check_dh_dw, no_tanh, "1 - h")
    _fails(ch02.check_dh_dw, lambda w, xs, h0: float("nan"), "NaN")


# ------------------------------------------------------------------------- chapter 3 ----

def forward_padded(x, lengths, params, h0):
    lengths = np.asarray(lengths)
    h_t, states = h0, []
    for t in range(x.shape[1]):
        candidate = np.tanh(x[:, t] @ params["U"].T + h_t @ params["W"].T + params["b"])
        still_real = (t < lengths)[:, None]
        h_t = np.where(still_real, candidate, h_t)
        states.append(h_t)
    h = np.stack(states, axis=1)
    return h, h[:, -1] @ params["V"].T + params["c"]


def test_ch03_forward_padded(capsys):
    ch03.check_forward_padded(forward_padded)
    assert "Correct" in capsys.readouterr().out

    def per_sequence(x, lengths, params, h0):             # the package, one sequence at a time
        hs, outs = [], []
        for n, L in enumerate(lengths):
            o, cache = rnn_forward(x[n:n + 1, :max(L, 1)], params, h0[n:n + 1])
            hs.append(cache.h[0])
            outs.append(o[0, -1])
        return np.zeros((*x.shape[:2], len(h0[0]))), np.array(outs)

    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_forward_padded(per_sequence)

    def via_torch(x, lengths, params, h0):
        rnn = torch.nn.RNN(x.shape[2], h0.shape[1], batch_first=True).double()
        return rnn(torch.from_numpy(x))[0].detach().numpy(), np.zeros((len(x), 1))

    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_forward_padded(via_torch)

    def unmasked(x, lengths, params, h0):
        return forward_padded(x, np.full(len(x), x.shape[1]), params, h0)

    _fails(ch03.check_forward_padded, unmasked, "reading the padding")

    def zeroed(x, lengths, params, h0):
        h, _ = forward_padded(x, lengths, params, h0)
        h = h * (np.arange(x.shape[1])[None, :, None] < np.asarray(lengths)[:, None, None])
        return h, forward_padded(x, lengths, params, h0)[1]

    _fails(ch03.check_forward_padded, zeroed, "is zero")

    def gathered(x, lengths, params, h0):     # h right; o_last from an unmasked run's h[n, L - 1]
        h, _ = forward_padded(x, lengths, params, h0)
        h_run, _ = forward_padded(x, np.full(len(x), x.shape[1]), params, h0)
        last = h_run[np.arange(len(x)), np.asarray(lengths) - 1]
        return h, last @ params["V"].T + params["c"]

    _fails(ch03.check_forward_padded, gathered, "no real step")
    _fails(ch03.check_forward_padded, lambda x, L, p, h0: forward_padded(x, L, p, 0 * h0),
           "ignores h0")
    _fails(ch03.check_forward_padded, lambda x, L, p, h0: (
        forward_padded(x, L, p, h0)[0].transpose(1, 0, 2), forward_padded(x, L, p, h0)[1]),
        "batch-first")
    _fails(ch03.check_forward_padded,                     # hard-coded shapes, no computation
           lambda x, L, p, h0: (np.zeros((*x.shape[:2], len(p["b"]))),
                                np.zeros((len(x), len(p["c"])))), "differ")
    _fails(ch03.check_forward_padded, lambda x, L, p, h0: tuple(
        a * np.nan for a in forward_padded(x, L, p, h0)), "NaN")


def best_constant_loss(y, K):
    y = np.asarray(y)
    counts = np.bincount(y.ravel(), minlength=K)
    freq = counts / y.size
    seen = counts > 0
    return float(-(counts[seen] * np.log(freq[seen])).sum() / y.shape[0])


def test_ch03_best_constant_loss(capsys):
    ch03.check_best_constant_loss(best_constant_loss)
    assert "Correct" in capsys.readouterr().out

    def via_sequence_nll(y, K):
        freq = np.bincount(np.ravel(y), minlength=K) / np.size(y) + 1e-300
        return sequence_nll(np.broadcast_to(np.log(freq), (*np.shape(y), K)), y)[0]

    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_best_constant_loss(via_sequence_nll)
    hint = _fails(ch03.check_best_constant_loss, lambda y, K: y.shape[1] * np.log(K),
                  "equal logits")
    assert "tau log K" in hint
    _fails(ch03.check_best_constant_loss, lambda y, K: 3.2965 if K == 3 else 0.0,
           "smallest loss|equal logits|scale")                      # hard-coded
    _fails(ch03.check_best_constant_loss, lambda y, K: best_constant_loss(y, K) / y.shape[1],
           "scale")                                                  # per step
    _fails(ch03.check_best_constant_loss, lambda y, K: best_constant_loss(y, K) / np.log(2),
           "nats")                                                   # bits
    _fails(ch03.check_best_constant_loss, lambda y, K: float("nan"), "NaN")


def temperature_for_perplexity(o, perplexity):
    o = np.asarray(o, dtype=float)

    def perplexity_at(kappa):
        z = o / kappa
        z = z - z.max()
        log_p = z - np.log(np.exp(z).sum())
        return np.exp(-(np.exp(log_p) * log_p).sum())

    centre = np.log(o.max() - o.min())
    lo, hi = centre - 40.0, centre + 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if perplexity_at(np.exp(mid)) < perplexity:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def _bisect(o, target, perplexity_at):
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if perplexity_at(o, np.exp(mid)) < target else (lo, mid)
    return float(np.exp(lo))


def test_ch03_temperature_for_perplexity(capsys):
    ch03.check_temperature_for_perplexity(temperature_for_perplexity)
    assert "Correct" in capsys.readouterr().out

    def via_softmax(o, target):
        def ppl(o, kappa):
            p = softmax(o / kappa)
            return np.exp(-(p * np.log(p + 1e-300)).sum())
        return _bisect(o, target, ppl)

    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_temperature_for_perplexity(via_softmax)

    def via_torch(o, target):
        def ppl(o, kappa):
            logp = torch.log_softmax(torch.from_numpy(o / kappa), 0)
            return float(torch.exp(-(logp.exp() * logp).sum()))
        return _bisect(o, target, ppl)

    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_temperature_for_perplexity(via_torch)
    _fails(ch03.check_temperature_for_perplexity, lambda o, p: 1.0, "exp of the entropy")

    def bits(o, target):                                    # 2 ** entropy in nats: wrong unit
        def ppl(o, kappa):
            z = o / kappa - (o / kappa).max()
            logp = z - np.log(np.exp(z).sum())
            return 2.0 ** (-(np.exp(logp) * logp).sum())
        return _bisect(o, target, ppl)

    _fails(ch03.check_temperature_for_perplexity, bits, "exp of the entropy")

    def naive(o, target):                                   # no shift: overflows at 1000
        def ppl(o, kappa):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                p = np.exp(o / kappa) / np.exp(o / kappa).sum()
                return np.exp(-(p * np.log(p)).sum())
        with np.errstate(invalid="ignore"):
            return _bisect(o, target, ppl)

    _fails(ch03.check_temperature_for_perplexity, naive, "stable")
    _fails(ch03.check_temperature_for_perplexity, lambda o, p: -temperature_for_perplexity(o, p),
           "positive")
    _fails(ch03.check_temperature_for_perplexity, lambda o, p: float("nan"), "NaN")


# ------------------------------------------------------------------------- chapter 4 ----

def output_recurrent_grads(do, cache, params):
    W_out, V_read = params["W"], params["V"]
    x, h, o = cache.x, cache.h, cache.o
    N, T, K = do.shape
    o_before = np.concatenate([cache.o0[:, None], o[:, :-1]], axis=1)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    from_next = np.zeros((N, K))
    for t in range(T - 1, -1, -1):
        do_t = do[:, t] + from_next
        delta = (do_t @ V_read) * (1.0 - h[:, t] ** 2)
        grads["V"] += do_t.T @ h[:, t]
        grads["c"] += do_t.sum(axis=0)
        grads["U"] += delta.T @ x[:, t]
        grads["W"] += delta.T @ o_before[:, t]
        grads["b"] += delta.sum(axis=0)
        from_next = delta @ W_out
    grads["o0"] = from_next
    return grads


def test_ch04_output_recurrent_backward(capsys):
    ch04.check_output_recurrent_backward(output_recurrent_grads)
    assert capsys.readouterr().out == ("Correct: every gradient of the output-to-hidden "
                                       "network agrees with finite differences.\n")
    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_output_recurrent_backward(output_recurrent_backward)   # the reference itself
    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_output_recurrent_backward(lambda do, c, p: output_recurrent_backward(do, c, p))

    def via_autograd(do, cache, params):
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        o0 = torch.tensor(cache.o0, requires_grad=True)
        o_prev, outs = o0, []
        x = torch.from_numpy(cache.x)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ tp["U"].T + o_prev @ tp["W"].T + tp["b"])
            o_prev = h @ tp["V"].T + tp["c"]
            outs.append(o_prev)
        (torch.stack(outs, 1) * torch.from_numpy(do)).sum().backward()
        return {**{k: v.grad.numpy() for k, v in tp.items()}, "o0": o0.grad.numpy()}

    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_output_recurrent_backward(via_autograd)

    def no_feedback(do, cache, params):                  # o^(t) treated as feeding L^(t) only
        N, T, K = do.shape
        g = {k: np.zeros_like(v) for k, v in params.items()}
        o_before = np.concatenate([cache.o0[:, None], cache.o[:, :-1]], axis=1)
        for t in range(T):
            delta = (do[:, t] @ params["V"]) * (1 - cache.h[:, t] ** 2)
            g["V"] += do[:, t].T @ cache.h[:, t]
            g["c"] += do[:, t].sum(axis=0)
            g["U"] += delta.T @ cache.x[:, t]
            g["W"] += delta.T @ o_before[:, t]
            g["b"] += delta.sum(axis=0)
            if t == 0:
                g["o0"] = delta @ params["W"]
        return g

    _fails(ch04.check_output_recurrent_backward, no_feedback, "two children")

    def same_step(do, cache, params):                    # W paired with o^(t), not o^(t-1)
        g = output_recurrent_grads(do, cache, params)
        N, T, K = do.shape
        g["W"] = np.zeros_like(params["W"])
        from_next = np.zeros((N, K))
        for t in range(T - 1, -1, -1):
            do_t = do[:, t] + from_next
            delta = (do_t @ params["V"]) * (1 - cache.h[:, t] ** 2)
            g["W"] += delta.T @ cache.o[:, t]
            from_next = delta @ params["W"]
        return g

    _fails(ch04.check_output_recurrent_backward, same_step, "PREVIOUS output")
    _fails(ch04.check_output_recurrent_backward, lambda do, c, p: {
        **output_recurrent_grads(do, c, p), "o0": np.zeros_like(c.o0)}, "gradient of o0")
    _fails(ch04.check_output_recurrent_backward, lambda do, c, p: {
        k: v for k, v in output_recurrent_grads(do, c, p).items() if k != "o0"}, "missing")
    _fails(ch04.check_output_recurrent_backward,              # hard-coded zeros
           lambda do, c, p: {**{k: np.zeros_like(v) for k, v in p.items()},
                             "o0": np.zeros_like(c.o0)}, "disagree")
    _fails(ch04.check_output_recurrent_backward, lambda do, c, p: {
        k: v * np.nan for k, v in output_recurrent_grads(do, c, p).items()}, "NaN")


def longest_sequence(budget, N, D, H, K, itemsize):
    per_step = itemsize * N * (D + H + K)
    once = itemsize * N * H
    return max(0, (budget - once) // per_step)


def test_ch04_longest_sequence_counts_the_real_cache():
    """The checker's formula is the cache's real size."""
    rng = np.random.default_rng(0)
    for N, T, D, H, K in [(2, 5, 3, 4, 6), (8, 50, 27, 64, 27), (1, 1, 1, 1, 1)]:
        params = {"U": rng.normal(size=(H, D)), "W": rng.normal(size=(H, H)),
                  "V": rng.normal(size=(K, H)), "b": np.zeros(H), "c": np.zeros(K)}
        nbytes = rnn_forward(np.zeros((N, T, D)), params)[1].nbytes
        assert longest_sequence(nbytes, N, D, H, K, 8) == T
        assert longest_sequence(nbytes - 1, N, D, H, K, 8) == T - 1


def test_ch04_longest_sequence(capsys):
    ch04.check_longest_sequence(longest_sequence)
    assert "Correct" in capsys.readouterr().out

    def measured(budget, N, D, H, K, itemsize):           # builds caches instead of counting
        T = 1
        p = {"U": np.zeros((H, D)), "W": np.zeros((H, H)), "V": np.zeros((K, H)),
             "b": np.zeros(H), "c": np.zeros(K)}
        per_step = rnn_forward(np.zeros((N, 1, D)), p)[1].nbytes
        return T * budget // per_step

    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_longest_sequence(measured)
    hint = _fails(ch04.check_longest_sequence, lambda b, N, D, H, K, s: 3190, "T is wrong|many")
    assert "3190" not in hint
    _fails(ch04.check_longest_sequence,
           lambda b, N, D, H, K, s: max(0, b // (s * N * (D + H + K))), "initial state")
    _fails(ch04.check_longest_sequence,
           lambda b, N, D, H, K, s: max(0, (b - s * N * H) // (s * N * (D + H))), "leaves out")
    _fails(ch04.check_longest_sequence,
           lambda b, N, D, H, K, s: (b - s * N * H) // (s * N * (D + H + K)), "negative")
    _fails(ch04.check_longest_sequence,
           lambda b, N, D, H, K, s: (b - s * N * H) / (s * N * (D + H + K)), "an int")
    _fails(ch04.check_longest_sequence, lambda b, N, D, H, K, s: float("nan"), "an int")


def tbptt_k1_k2(params, x, y, k1, k2):
    N, T, _ = x.shape
    h_states = rnn_forward(x, params)[1].h
    entering = np.concatenate([np.zeros_like(h_states[:, :1]), h_states], axis=1)
    total, summed = 0.0, {n: 0.0 for n in ("U", "W", "V", "b", "c")}
    for block_start in range(0, T, k1):
        block_end = min(block_start + k1, T)
        window_start = max(0, block_end - k2)
        counted = np.zeros((N, block_end - window_start))
        counted[:, block_start - window_start:] = 1.0
        loss_w, grads_w, _ = rnn_loss_and_grads(
            params, x[:, window_start:block_end], y[:, window_start:block_end],
            mask=counted, h0=entering[:, window_start])
        total += loss_w
        summed = {n: summed[n] + grads_w[n] for n in summed}
    return total, summed


def test_ch04_tbptt_k1_k2(capsys):
    ch04.check_tbptt_k1_k2(tbptt_k1_k2)
    assert "Correct" in capsys.readouterr().out

    def ordinary(params, x, y, k1, k2):                   # truncated_bptt with k = k1
        total, acc = 0.0, None
        for loss, g, _ in truncated_bptt(params, x, y, k1):
            total += loss
            acc = g if acc is None else {n: acc[n] + g[n] for n in NAMES}
        return total, acc

    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_tbptt_k1_k2(ordinary)

    def chunks_of_k1(params, x, y, k1, k2):              # the same, written by hand
        total, acc, h = 0.0, {n: 0.0 for n in NAMES}, None
        for s in range(0, x.shape[1], k1):
            loss, g, h = rnn_loss_and_grads(params, x[:, s:s + k1], y[:, s:s + k1], h0=h)
            total += loss
            acc = {n: acc[n] + g[n] for n in NAMES}
        return total, acc

    _fails(ch04.check_tbptt_k1_k2, chunks_of_k1, "block itself")

    def unmasked(params, x, y, k1, k2):                  # every loss of the window counted
        total, summed = tbptt_k1_k2(params, x, y, k1, k2)
        return total, {n: 2 * v for n, v in summed.items()}

    _fails(ch04.check_tbptt_k1_k2, unmasked, "wrong")

    def counts_twice(params, x, y, k1, k2):
        N, T, _ = x.shape
        h = np.concatenate([np.zeros((N, 1, params["W"].shape[0])), rnn_forward(x, params)[1].h],
                           axis=1)
        total, acc = 0.0, {n: 0.0 for n in NAMES}
        for s in range(0, T, k1):
            e, w = min(s + k1, T), max(0, min(s + k1, T) - k2)
            loss, g, _ = rnn_loss_and_grads(params, x[:, w:e], y[:, w:e], h0=h[:, w])
            total += loss
            acc = {n: acc[n] + g[n] for n in NAMES}
        return total, acc

    _fails(ch04.check_tbptt_k1_k2, counts_twice, "Count each step's loss once")
    _fails(ch04.check_tbptt_k1_k2,                        # hard-coded zeros
           lambda p, x, y, k1, k2: (0.0, {n: np.zeros_like(p[n]) for n in NAMES}), "total loss")
    _fails(ch04.check_tbptt_k1_k2, lambda p, x, y, k1, k2: (
        float("nan"), tbptt_k1_k2(p, x, y, k1, k2)[1]), "NaN")
    _fails(ch04.check_tbptt_k1_k2, lambda p, x, y, k1, k2: (
        tbptt_k1_k2(p, x, y, k1, k2)[0],
        {n: v * np.nan for n, v in tbptt_k1_k2(p, x, y, k1, k2)[1].items()}), "NaN")


def test_checkers_leave_the_references_working():
    """After a refused delegation the package's functions are the originals again."""
    with pytest.raises(DelegationError):
        ch02.check_all_states_closed_form(lambda w, u, xs, h0: unroll(
            lambda h, x: w * h + u * x, [h0], xs=np.reshape(xs, (-1, 1)))[1:, 0])
    assert unroll(lambda s, x: s + x, [0.0], xs=[[1.0], [2.0]])[-1, 0] == 3.0
    p = {"U": np.eye(2), "W": np.eye(2), "V": np.eye(2), "b": np.zeros(2), "c": np.zeros(2)}
    o, cache = output_recurrent_forward(np.ones((1, 2, 2)), p)
    assert set(output_recurrent_backward(np.ones_like(o), cache, p)) == set(NAMES) | {"o0"}


# ------------------------------------------ every chapter: own references, torch, mutation --

def test_checkers_refuse_their_own_internal_references():
    """An answer that imports the checker module's own expected-value function is refused."""
    with pytest.raises(DelegationError, match=DELEGATED):
        ch01.check_final_state(lambda a, s0, xs: ch01._final_state(a, s0, xs))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch01.check_receptive_field(lambda r, tol: ch01._receptive_field(r, tol))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_all_states_closed_form(lambda w, u, xs, h0: ch02._all_states(w, u, xs, h0))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_dh_dw(lambda w, xs, h0: ch02._dh_dw(w, xs, h0))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_forward_padded(lambda x, lengths, p, h0: (
            ch03._run(x, p, h0, np.asarray(lengths)),
            ch03._run(x, p, h0, np.asarray(lengths))[:, -1] @ p["V"].T + p["c"]))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch03.check_best_constant_loss(lambda y, K: ch03._best_constant_loss(y, K))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_output_recurrent_backward(lambda do, cache, p: ch04._or_backward(
            do, cache.x, cache.o0, cache.h, cache.o, p))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_longest_sequence(lambda *setting: ch04._longest(*setting))
    with pytest.raises(DelegationError, match=DELEGATED):
        ch04.check_tbptt_k1_k2(lambda p, x, y, k1, k2: ch04._tbptt_reference(p, x, y, k1, k2))
    with pytest.raises(DelegationError, match=DELEGATED):    # the reference handed in itself
        ch04.check_longest_sequence(ch04._longest)


def _torch_recurrence(w, xs, h0):
    def final(wt):
        h = torch.tensor(h0, dtype=torch.float64)
        for x in xs:
            h = torch.tanh(wt * h + float(x))
        return h
    return final


def test_dh_dw_refuses_torch_in_forward_and_reverse_mode():
    def by_func_grad(w, xs, h0):
        return float(torch.func.grad(_torch_recurrence(w, xs, h0))(torch.tensor(float(w))
                                                                    .double()))

    def by_backward(w, xs, h0):
        wt = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
        h = _torch_recurrence(w, xs, h0)(wt)
        h.backward()
        return float(wt.grad)

    def by_jvp(w, xs, h0):
        one = torch.tensor(1.0, dtype=torch.float64)
        return float(torch.func.jvp(_torch_recurrence(w, xs, h0),
                                    (torch.tensor(float(w), dtype=torch.float64),), (one,))[1])

    def by_jacfwd(w, xs, h0):
        return float(torch.func.jacfwd(_torch_recurrence(w, xs, h0))(
            torch.tensor(float(w), dtype=torch.float64)))

    for answer in (by_func_grad, by_backward, by_jvp, by_jacfwd):
        with pytest.raises(DelegationError, match=DELEGATED):
            ch02.check_dh_dw(answer)
    one = torch.tensor(1.0, dtype=torch.float64)             # forward mode still works after
    assert abs(float(torch.func.jvp(torch.sin, (torch.tensor(0.0, dtype=torch.float64),),
                                    (one,))[1]) - 1.0) < 1e-12


def test_edge_counts_refuses_the_drawing_function():
    from companion.plots import unrolled_graph

    def by_drawing(tau, show_initial, with_input, with_output, with_loss):
        unrolled_graph(tau, show_initial=show_initial, with_input=with_input,
                       with_output=with_output, with_loss=with_loss)
        return edge_counts(tau, show_initial, with_input, with_output, with_loss)

    with pytest.raises(DelegationError, match=DELEGATED):
        ch02.check_edge_counts(by_drawing)


def _then_mutate(answer, position, *, key=None):
    """``answer``, right, but zeroing its argument number ``position`` (or params[key])."""
    def mutating(*args):
        out = answer(*args)
        target = args[position] if key is None else args[position][key]
        target[...] = 0
        return out
    return mutating


def test_checkers_refuse_answers_that_change_their_inputs():
    hint = "changes its argument"
    _fails(ch01.check_final_state, _then_mutate(final_state, 2), hint + " xs")
    _fails(ch01.check_receptive_field, _then_mutate(receptive_field, 0), hint + " response")
    _fails(ch02.check_second_order, _then_mutate(second_order_states, 3), hint + " xs")
    _fails(ch02.check_second_order, _then_mutate(second_order_states, 2), hint + " h0")
    _fails(ch02.check_all_states_closed_form, _then_mutate(all_states_closed_form, 2),
           hint + " xs")
    _fails(ch02.check_dh_dw, _then_mutate(dh_dw, 1), hint + " xs")
    _fails(ch03.check_forward_padded, _then_mutate(forward_padded, 0), hint + " x")
    _fails(ch03.check_forward_padded, _then_mutate(forward_padded, 2, key="W"),
           hint + r' params\["W"\]')
    _fails(ch03.check_best_constant_loss, _then_mutate(best_constant_loss, 0), hint + " y")
    _fails(ch03.check_temperature_for_perplexity, _then_mutate(temperature_for_perplexity, 0),
           hint + " o")
    _fails(ch04.check_output_recurrent_backward, _then_mutate(output_recurrent_grads, 0),
           hint + " do")

    def zeroes_the_cache(do, cache, params):
        out = output_recurrent_grads(do, cache, params)
        cache.h[...] = 0
        return out
    _fails(ch04.check_output_recurrent_backward, zeroes_the_cache, hint + " cache.h")
    _fails(ch04.check_tbptt_k1_k2, _then_mutate(tbptt_k1_k2, 1), hint + " x")
    _fails(ch04.check_tbptt_k1_k2, _then_mutate(tbptt_k1_k2, 0, key="U"),
           hint + r' params\["U"\]')


@pytest.mark.parametrize("check, answer", [
    (ch01.check_final_state, final_state), (ch01.check_latch_step, latch_step),
    (ch01.check_transient_matrix, transient_matrix),
    (ch01.check_receptive_field, receptive_field),
    (ch02.check_edge_counts, edge_counts), (ch02.check_second_order, second_order_states),
    (ch02.check_all_states_closed_form, all_states_closed_form), (ch02.check_dh_dw, dh_dw),
    (ch03.check_forward_padded, forward_padded),
    (ch03.check_best_constant_loss, best_constant_loss),
    (ch03.check_temperature_for_perplexity, temperature_for_perplexity),
    (ch04.check_output_recurrent_backward, output_recurrent_grads),
    (ch04.check_longest_sequence, longest_sequence), (ch04.check_tbptt_k1_k2, tbptt_k1_k2),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_answers_pass_every_time(check, answer, capsys):
    """The unseen cases change on every call: a reference must never be refused."""
    runs = 30 if check is not ch04.check_output_recurrent_backward else 10
    for _ in range(runs):
        check(answer)
    assert capsys.readouterr().out.count("Correct:") == runs
