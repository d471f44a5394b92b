"""The checkers of chapters 5 and 6 accept the notebooks' reference answers and reject
answers that delegate to the package or torch, answers hard-coded from an earlier run,
typical wrong answers, and NaN. (Chapter 7's are in tests/test_ch07_checkers.py.)"""

import numpy as np
import pytest
import torch

from companion.exercises import DelegationError, ch05, ch06
from companion.nn.cells import GRUCell, LSTMCell
from companion.scratch.charlm import clip_by_global_norm
from companion.scratch.longterm import jacobian_norms
from companion.scratch.readout import fit_ridge
from companion.scratch.recurrence import rnn_hidden_states  # noqa: F401 (as in a notebook)


def key_of(*args):
    parts = []
    for a in args:
        if isinstance(a, (list, tuple)):
            parts.append(key_of(*a))
        elif isinstance(a, np.ndarray):
            parts.append(a.round(10).tobytes() + str(a.shape).encode())
        else:
            parts.append(a)
    return tuple(parts)


def hard_coded(good, fallback):
    """(record, replay): `replay` returns what `good` returned on the inputs `record` saw,
    and `fallback(*args)` on anything else, like an answer copied from an earlier run."""
    memo = {}

    def record(*args):
        memo[key_of(*args)] = good(*args)
        return memo[key_of(*args)]

    def replay(*args):
        k = key_of(*args)
        return memo[k] if k in memo else fallback(*args)

    return record, replay


def assert_only_unseen_cases_catch(module, checker, good, fallback, monkeypatch):
    record, replay = hard_coded(good, fallback)
    checker(record)
    with pytest.raises(AssertionError):
        checker(replay)  # the hidden cases are new on every call
    monkeypatch.setattr(module, "unseen_rng", lambda: np.random.default_rng(2024))
    checker(record)
    checker(replay)      # frozen hidden cases: the replay would pass


# ---------------------------------------------------------------- the notebooks' answers
def skip_jacobian_norms(hs, W, W_skip, delay):
    """Return, for j = 0, ..., T-1, the norm ||d h^(T) / d h^(T-j)||_2 (all paths)."""
    T, H = hs.shape
    slope = 1 - hs ** 2                          # row t-1: tanh' of the state h^(t)
    G = {T: np.eye(H)}                           # G[k] = d h^(T) / d h^(k), built backwards
    for k in range(T - 1, 0, -1):
        G[k] = G[k + 1] @ (slope[k][:, None] * W)              # h^(k) feeds h^(k+1)
        if k + delay <= T:                                      # ... and h^(k+delay)
            G[k] = G[k] + G[k + delay] @ (slope[k + delay - 1][:, None] * W_skip)
    return np.array([np.linalg.norm(G[T - j], 2) for j in range(T)])



def clip_by_norm(grads, max_norm):
    """Return the list of arrays, scaled together so that their global norm is <= max_norm."""
    total = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads]



def ridge_readout(train_states, train_targets, test_states, ridge):
    """Fit w and b on the training states (ridge); return w . h + b for the test states."""
    mean_h, mean_y = train_states.mean(axis=0), train_targets.mean()
    Hc, yc = train_states - mean_h, train_targets - mean_y      # centring absorbs b
    F = train_states.shape[1]
    w = np.linalg.solve(Hc.T @ Hc + ridge * np.eye(F), Hc.T @ yc)
    b = mean_y - mean_h @ w                                     # the unpenalised intercept
    return test_states @ w + b



def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))

def peephole_lstm_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
    """Return (h, c) after one peephole LSTM step (torch's block order i, f, g, o)."""
    pre = h @ weight_hh.T + bias_hh + x @ weight_ih.T + bias_ih      # (N, 4H)
    a_i, a_f, a_g, a_o = np.split(pre, 4, axis=1)                   # each (N, H)
    p_i, p_f, p_o = peep                                            # one row per gate
    i = sigmoid(a_i + p_i * c)                # the input and forget gates see the old c
    f = sigmoid(a_f + p_f * c)
    c_new = f * c + i * np.tanh(a_g)
    o = sigmoid(a_o + p_o * c_new)            # the output gate sees the new c
    return o * np.tanh(c_new), c_new



def gru_step_np(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
    """Return h after one GRU step (torch's block order r, z, n), in either form."""
    x_r, x_z, x_n = np.split(x @ weight_ih.T + bias_ih, 3, axis=1)  # each (N, H)
    W_r, W_z, W_n = np.split(weight_hh, 3)                          # each (H, H)
    b_r, b_z, b_n = np.split(bias_hh, 3)
    r = sigmoid(x_r + h @ W_r.T + b_r)
    z = sigmoid(x_z + h @ W_z.T + b_z)
    if reset_after:
        n = np.tanh(x_n + r * (h @ W_n.T + b_n))    # reset after the product, b_hn inside
    else:
        n = np.tanh(x_n + (r * h) @ W_n.T + b_n)    # reset the old state before W_n
    return (1 - z) * n + z * h



def gru_step_backward(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """Gradients of sum(dh_new * h_new) for one step of torch's GRU, as a dict."""
    i_r, i_z, i_n = np.split(x @ weight_ih.T + bias_ih, 3, axis=1)
    h_r, h_z, h_n = np.split(h @ weight_hh.T + bias_hh, 3, axis=1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    # h_new = (1 - z) * n + z * h
    dn = dh_new * (1 - z)
    dz = dh_new * (h - n)
    da_n = dn * (1 - n ** 2)
    da_r = da_n * h_n * r * (1 - r)
    da_z = dz * z * (1 - z)
    d_gi = np.concatenate([da_r, da_z, da_n], axis=1)
    d_gh = np.concatenate([da_r, da_z, da_n * r], axis=1)  # r scales W_n h + b_hn
    return {"x": d_gi @ weight_ih, "h": dh_new * z + d_gh @ weight_hh,
            "weight_ih": d_gi.T @ x, "weight_hh": d_gh.T @ h,
            "bias_ih": d_gi.sum(0), "bias_hh": d_gh.sum(0)}



def cell_state_jacobian(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh):
    """The full Jacobian d s^(T) / d s^(0) (H, H) of an LSTM run on one sequence x (T, D)."""
    H = h0.shape[0]
    h, s = h0, s0
    J_s, J_h = np.eye(H), np.zeros((H, H))       # d s^(t)/d s^(0), d h^(t)/d s^(0)
    for x_t in x:
        a = weight_ih @ x_t + bias_ih + weight_hh @ h + bias_hh
        i, f, g, q = sigmoid(a[:H]), sigmoid(a[H:2*H]), np.tanh(a[2*H:3*H]), sigmoid(a[3*H:])
        dA = weight_hh @ J_h                      # d a^(t) / d s^(0): only through h
        dI = (i * (1 - i))[:, None] * dA[:H]
        dF = (f * (1 - f))[:, None] * dA[H:2*H]
        dG = (1 - g ** 2)[:, None] * dA[2*H:3*H]
        dQ = (q * (1 - q))[:, None] * dA[3*H:]
        s_new = f * s + i * g
        J_s = f[:, None] * J_s + s[:, None] * dF + g[:, None] * dI + i[:, None] * dG
        tanh_s = np.tanh(s_new)
        J_h = tanh_s[:, None] * dQ + (q * (1 - tanh_s ** 2))[:, None] * J_s
        h, s = q * tanh_s, s_new
    return J_s



# ---------------------------------------------------------------- chapter 5
def test_skip_jacobian_checker_accepts_the_reference(capsys):
    for _ in range(2):
        ch05.check_skip_jacobian_norms(skip_jacobian_norms)
    assert capsys.readouterr().out.count("Correct") == 2


def test_skip_jacobian_checker_rejects_delegation():
    def via_autograd(hs, W, W_skip, delay):
        T, H = hs.shape
        out = []
        for j in range(T):
            v = torch.tensor(hs[T - 1 - j], requires_grad=True)
            J = torch.autograd.functional.jacobian(lambda u: torch.tanh(u), v)
            out.append(np.linalg.norm(J.numpy(), 2))
        return np.array(out)

    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_skip_jacobian_norms(via_autograd)
    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_skip_jacobian_norms(
            lambda hs, W, Ws, d: jacobian_norms(np.zeros((1, len(hs), 1)), np.zeros((len(W), 1)),
                                                W, np.zeros(len(W)))[0][:len(hs)])


def test_skip_jacobian_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch05, ch05.check_skip_jacobian_norms, skip_jacobian_norms,
                                   lambda hs, *a: np.ones(len(hs)), monkeypatch)


def chain_only(hs, W, W_skip, delay):  # wrong: the chain of chapter 5, skip ignored
    T, H = hs.shape
    P, out = np.eye(H), [1.0]
    for s in range(T, 1, -1):
        P = P @ (np.diag(1 - hs[s - 1] ** 2) @ W)
        out.append(np.linalg.norm(P, 2))
    return np.array(out)


def summed_chain(hs, W, W_skip, delay):  # wrong: W + W_skip at every step of one chain
    T, H = hs.shape
    P, out = np.eye(H), [1.0]
    for s in range(T, 1, -1):
        P = P @ (np.diag(1 - hs[s - 1] ** 2) @ (W + W_skip))
        out.append(np.linalg.norm(P, 2))
    return np.array(out)


def test_skip_jacobian_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="chain through W alone"):
        ch05.check_skip_jacobian_norms(chain_only)
    with pytest.raises(AssertionError, match="differs from the total derivative"):
        ch05.check_skip_jacobian_norms(summed_chain)
    with pytest.raises(AssertionError, match="identity"):
        ch05.check_skip_jacobian_norms(lambda hs, *a: skip_jacobian_norms(hs, *a) * 2)
    with pytest.raises(AssertionError, match="shape"):
        ch05.check_skip_jacobian_norms(lambda hs, *a: skip_jacobian_norms(hs, *a)[1:])
    with pytest.raises(AssertionError, match="NaN"):
        ch05.check_skip_jacobian_norms(lambda hs, *a: np.full(len(hs), np.nan))


def test_clip_checker_accepts_the_reference(capsys):
    ch05.check_clip_by_norm(clip_by_norm)
    assert "Correct" in capsys.readouterr().out


def test_clip_checker_rejects_torch_and_package_clipping():
    def via_torch(grads, max_norm):
        ts = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
        for t, g in zip(ts, grads):
            t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(ts, max_norm)
        return [t.grad.numpy() for t in ts]

    def via_package(grads, max_norm):
        d = {str(i): g.copy() for i, g in enumerate(grads)}
        clip_by_global_norm(d, max_norm)
        return [d[str(i)] for i in range(len(grads))]

    for answer in (via_torch, via_package):
        with pytest.raises(DelegationError, match="already holds"):
            ch05.check_clip_by_norm(answer)


def test_clip_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch05, ch05.check_clip_by_norm, clip_by_norm,
                                   lambda grads, m: grads, monkeypatch)


def test_clip_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="ONE norm over all arrays"):
        ch05.check_clip_by_norm(lambda gs, m: [g * min(1.0, m / np.linalg.norm(g)) for g in gs])
    with pytest.raises(AssertionError, match="unchanged"):   # always rescales to max_norm
        ch05.check_clip_by_norm(
            lambda gs, m: [g * m / max(np.sqrt(sum((h ** 2).sum() for h in gs)), 1e-300)
                           for g in gs])
    def value_then_norm(gs, m):  # the right length, but clamped first: a new direction
        total = np.sqrt(sum((g ** 2).sum() for g in gs))
        if total <= m:
            return gs
        c = max(np.abs(g).max() for g in gs) / 2
        vs = [np.clip(g, -c, c) for g in gs]
        return [v * m / np.sqrt(sum((u ** 2).sum() for u in vs)) for v in vs]

    with pytest.raises(AssertionError, match="same direction"):
        ch05.check_clip_by_norm(value_then_norm)
    with pytest.raises(AssertionError, match="one array per gradient"):
        ch05.check_clip_by_norm(lambda gs, m: np.concatenate([g.ravel() for g in gs]))
    with pytest.raises(AssertionError, match="NaN"):
        ch05.check_clip_by_norm(lambda gs, m: [g * np.nan for g in gs])


def test_ridge_checker_accepts_the_reference(capsys):
    ch05.check_ridge_readout(ridge_readout)
    assert "Correct" in capsys.readouterr().out


def test_ridge_checker_rejects_delegation():
    def via_package(S, y, S_test, ridge):
        w = fit_ridge(S, y, alpha=ridge)
        return np.c_[S_test, np.ones(len(S_test))] @ w

    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_ridge_readout(via_package)


def test_ridge_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch05, ch05.check_ridge_readout, ridge_readout,
                                   lambda S, y, St, r: np.full(len(St), y.mean()), monkeypatch)


def test_ridge_checker_rejects_wrong_answers_and_nan():
    def no_intercept(S, y, S_test, ridge):
        return S_test @ np.linalg.solve(S.T @ S + ridge * np.eye(S.shape[1]), S.T @ y)

    def penalised_intercept(S, y, S_test, ridge):
        Sb = np.c_[S, np.ones(len(S))]
        w = np.linalg.solve(Sb.T @ Sb + ridge * np.eye(Sb.shape[1]), Sb.T @ y)
        return np.c_[S_test, np.ones(len(S_test))] @ w

    def mean_objective(S, y, S_test, ridge):  # the penalty scaled by the number of examples
        return ridge_readout(S, y, S_test, ridge * len(S))

    with pytest.raises(AssertionError, match="no intercept"):
        ch05.check_ridge_readout(no_intercept)
    with pytest.raises(AssertionError, match="shrinks the intercept"):
        ch05.check_ridge_readout(penalised_intercept)
    with pytest.raises(AssertionError, match="SUM of squared errors"):
        ch05.check_ridge_readout(mean_objective)
    with pytest.raises(AssertionError, match="NaN"):
        ch05.check_ridge_readout(lambda S, y, St, r: np.full(len(St), np.nan))


# ---------------------------------------------------------------- chapter 6
def test_peephole_checker_accepts_the_reference(capsys):
    ch06.check_peephole_lstm_step(peephole_lstm_step)
    assert "Correct" in capsys.readouterr().out


def test_peephole_checker_rejects_delegation():
    def via_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
        cell = LSTMCell(x.shape[1], h.shape[1]).double()
        with torch.no_grad():
            for p, v in zip(cell.parameters(), (weight_ih, weight_hh, bias_ih, bias_hh)):
                p.copy_(torch.tensor(v))
            h2, c2 = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        return h2.numpy(), c2.numpy()

    def via_torch(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
        out = torch.lstm_cell(*(torch.tensor(v) for v in (x,)), (torch.tensor(h), torch.tensor(c)),
                              *(torch.tensor(v) for v in (weight_ih, weight_hh, bias_ih, bias_hh)))
        return tuple(o.numpy() for o in out)

    for answer in (via_cell, via_torch):
        with pytest.raises(DelegationError, match="already holds"):
            ch06.check_peephole_lstm_step(answer)


def test_peephole_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch06, ch06.check_peephole_lstm_step, peephole_lstm_step,
                                   lambda x, h, c, *a: (h, c), monkeypatch)


def test_peephole_checker_rejects_wrong_answers_and_nan():
    def old_c_for_output_gate(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
        H = h.shape[1]
        a = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        i = sigmoid(a[:, :H] + peep[0] * c)
        f = sigmoid(a[:, H:2 * H] + peep[1] * c)
        c2 = f * c + i * np.tanh(a[:, 2 * H:3 * H])
        return sigmoid(a[:, 3 * H:] + peep[2] * c) * np.tanh(c2), c2

    def gate_order_ifog(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, peep):
        H = h.shape[1]
        swap = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]  # reads the blocks as i, f, o, g
        return peephole_lstm_step(x, h, c, weight_ih[swap], weight_hh[swap], bias_ih[swap],
                                  bias_hh[swap], peep)

    def no_peepholes(x, h, c, *weights_and_peep):
        return peephole_lstm_step(x, h, c, *weights_and_peep[:4], np.zeros_like(weights_and_peep[4]))

    with pytest.raises(AssertionError, match="NEW cell state"):
        ch06.check_peephole_lstm_step(old_c_for_output_gate)
    with pytest.raises(AssertionError, match="block order"):
        ch06.check_peephole_lstm_step(gate_order_ifog)
    with pytest.raises(AssertionError, match="OLD cell state"):
        ch06.check_peephole_lstm_step(no_peepholes)
    with pytest.raises(AssertionError, match="pair"):
        ch06.check_peephole_lstm_step(lambda *a: peephole_lstm_step(*a)[0])
    with pytest.raises(AssertionError, match="NaN"):
        ch06.check_peephole_lstm_step(lambda x, h, c, *a: (h * np.nan, c * np.nan))


def test_peephole_checker_takes_any_argument_names():
    def renamed(inp, hid, cell, wi, wh, bi, bh, pp):
        return peephole_lstm_step(inp, hid, cell, wi, wh, bi, bh, pp)

    ch06.check_peephole_lstm_step(renamed)


def test_gru_checker_accepts_the_reference(capsys):
    ch06.check_gru_step(gru_step_np)
    assert "Correct" in capsys.readouterr().out


def test_gru_checker_rejects_delegation():
    def via_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
        cell = GRUCell(x.shape[1], h.shape[1], reset_after=reset_after).double()
        with torch.no_grad():
            for p, v in zip(cell.parameters(), (weight_ih, weight_hh, bias_ih, bias_hh)):
                p.copy_(torch.tensor(v))
            return cell(torch.tensor(x), torch.tensor(h)).numpy()

    def via_torch(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
        cell = torch.nn.GRUCell(x.shape[1], h.shape[1]).double()
        return cell(torch.tensor(x), torch.tensor(h)).detach().numpy()

    for answer in (via_cell, via_torch):
        with pytest.raises(DelegationError, match="already holds"):
            ch06.check_gru_step(answer)


def test_gru_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch06, ch06.check_gru_step, gru_step_np,
                                   lambda x, h, *a: h, monkeypatch)


def test_gru_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="other form"):   # ignores reset_after
        ch06.check_gru_step(lambda *a: gru_step_np(*a[:6], True))
    with pytest.raises(AssertionError, match="other form"):   # the two forms swapped
        ch06.check_gru_step(lambda *a: gru_step_np(*a[:6], not a[6]))

    def z_on_candidate(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after=True):
        new = gru_step_np(x, h, weight_ih, weight_hh, bias_ih, bias_hh, reset_after)
        H = h.shape[1]
        z = sigmoid(x @ weight_ih[H:2 * H].T + bias_ih[H:2 * H] + h @ weight_hh[H:2 * H].T
                    + bias_hh[H:2 * H])
        n = (new - z * h) / (1 - z)
        return z * n + (1 - z) * h   # z weights the candidate instead of the old state

    with pytest.raises(AssertionError, match="OLD state"):
        ch06.check_gru_step(z_on_candidate)
    with pytest.raises(AssertionError, match="NaN"):
        ch06.check_gru_step(lambda x, h, *a: h * np.nan)


def merged_biases(*args):  # treats b_hn like b_in: the classic slip
    grads = gru_step_backward(*args)
    grads["bias_hh"] = grads["bias_ih"]
    return grads


def test_gru_backward_checker_accepts_the_reference(capsys):
    ch06.check_gru_step_backward(gru_step_backward)
    assert "Correct" in capsys.readouterr().out


def test_gru_backward_checker_rejects_autograd_and_cells():
    def via_autograd(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        ts = [torch.tensor(v, requires_grad=True)
              for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh)]
        out = torch.gru_cell(ts[0], ts[1], *ts[2:])
        (out * torch.tensor(dh_new)).sum().backward()
        return dict(zip(("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                        (t.grad.numpy() for t in ts)))

    def via_grad(dh_new, x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        ts = [torch.tensor(v, requires_grad=True)
              for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh)]
        H = h.shape[1]
        gi, gh = ts[0] @ ts[2].T + ts[4], ts[1] @ ts[3].T + ts[5]
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        out = (1 - z) * n + z * ts[1]
        gs = torch.autograd.grad((out * torch.tensor(dh_new)).sum(), ts)
        return dict(zip(("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                        (g.numpy() for g in gs)))

    for answer in (via_autograd, via_grad):
        with pytest.raises(DelegationError, match="already holds"):
            ch06.check_gru_step_backward(answer)


def test_gru_backward_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(
        ch06, ch06.check_gru_step_backward, gru_step_backward,
        lambda dh, x, h, wi, wh, bi, bh: {"x": 0 * x, "h": 0 * h, "weight_ih": 0 * wi,
                                          "weight_hh": 0 * wh, "bias_ih": 0 * bi,
                                          "bias_hh": 0 * bh}, monkeypatch)


def test_gru_backward_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="bias_hh differs from autograd"):
        ch06.check_gru_step_backward(merged_biases)
    with pytest.raises(AssertionError, match="return a dict"):
        ch06.check_gru_step_backward(lambda *a: gru_step_backward(*a)["x"])

    def no_direct_leak(*args):
        grads = gru_step_backward(*args)
        H = args[2].shape[1]
        z = sigmoid(args[1] @ args[3][H:2 * H].T + args[5][H:2 * H]
                    + args[2] @ args[4][H:2 * H].T + args[6][H:2 * H])
        grads["h"] = grads["h"] - args[0] * z
        return grads

    with pytest.raises(AssertionError, match="h differs from autograd"):
        ch06.check_gru_step_backward(no_direct_leak)
    with pytest.raises(AssertionError, match="NaN"):
        ch06.check_gru_step_backward(lambda *a: {k: v * np.nan
                                                 for k, v in gru_step_backward(*a).items()})


def test_gru_backward_hints_do_not_answer_the_think_question():
    assert all("scaled by r" not in hint and "sits inside the reset gate" not in hint
               for hint in ch06._GRU_HINTS.values())


def test_gru_backward_checker_takes_any_argument_names():
    def renamed(g, inp, hid, wi, wh, bi, bh):
        return gru_step_backward(g, inp, hid, wi, wh, bi, bh)

    ch06.check_gru_step_backward(renamed)


def test_cell_state_jacobian_checker_accepts_the_reference(capsys):
    ch06.check_cell_state_jacobian(cell_state_jacobian)
    assert "Correct" in capsys.readouterr().out


def test_cell_state_jacobian_checker_rejects_autograd():
    def via_autograd(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh):
        ws = [torch.tensor(v) for v in (weight_ih, weight_hh, bias_ih, bias_hh)]

        def run(s):
            h, c = torch.tensor(h0)[None], s[None]
            for x_t in torch.tensor(x):
                h, c = torch.lstm_cell(x_t[None], (h, c), *ws)
            return c[0]

        return torch.autograd.functional.jacobian(run, torch.tensor(s0)).numpy()

    with pytest.raises(DelegationError, match="already holds"):
        ch06.check_cell_state_jacobian(via_autograd)


def test_cell_state_jacobian_checker_rejects_hard_coding(monkeypatch):
    assert_only_unseen_cases_catch(ch06, ch06.check_cell_state_jacobian, cell_state_jacobian,
                                   lambda x, h0, *a: np.eye(len(h0)), monkeypatch)


def direct_path_only(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh):
    H = len(h0)
    h, s, prod = h0, s0, np.ones(H)
    for x_t in x:
        a = weight_ih @ x_t + bias_ih + weight_hh @ h + bias_hh
        i, f = sigmoid(a[:H]), sigmoid(a[H:2 * H])
        g, q = np.tanh(a[2 * H:3 * H]), sigmoid(a[3 * H:])
        s = f * s + i * g
        h, prod = q * np.tanh(s), prod * f
    return np.diag(prod)


def test_cell_state_jacobian_checker_rejects_wrong_answers_and_nan():
    with pytest.raises(AssertionError, match="direct path only"):
        ch06.check_cell_state_jacobian(direct_path_only)
    with pytest.raises(AssertionError, match="What is d s"):
        ch06.check_cell_state_jacobian(lambda x, h0, *a: np.eye(len(h0)) * 2)
    with pytest.raises(AssertionError, match="NaN"):
        ch06.check_cell_state_jacobian(lambda x, h0, *a: np.full((len(h0), len(h0)), np.nan))


@pytest.mark.parametrize("checker", [ch05.check_skip_jacobian_norms, ch05.check_clip_by_norm,
                                     ch05.check_ridge_readout, ch06.check_peephole_lstm_step,
                                     ch06.check_gru_step, ch06.check_gru_step_backward,
                                     ch06.check_cell_state_jacobian])
def test_checkers_refuse_non_callables(checker):
    with pytest.raises(TypeError, match="must be a function"):
        checker(3)


def test_checkers_refuse_the_reference_handed_in_itself():
    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_clip_by_norm(torch.nn.utils.clip_grad_norm_)
    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_clip_by_norm(clip_by_global_norm)
    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_ridge_readout(fit_ridge)
    with pytest.raises(DelegationError, match="already holds"):
        ch06.check_gru_step(GRUCell)


# ------------------------------------------------- every route to torch's cells and autograd
def _resolve(path):
    import importlib
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize("path", [p for p in ch06._CELLS if "gru" in p.lower() or "Ensemble" in p
                                  or "rnn_tanh" in p or "lstm_cell" in p])
def test_gru_checker_refuses_every_step_reference(path):
    target = _resolve(path)

    def answer(x, h, *args):
        target(torch.tensor(x), torch.tensor(h))
        return h

    with pytest.raises(DelegationError, match="already holds"):
        ch06.check_gru_step(answer)


def test_gru_step_references_include_torch_functions():
    for path in ("torch.gru_cell", "torch.lstm_cell", "torch.rnn_tanh_cell",
                 "torch._C._VariableFunctions.gru_cell", "torch._C._VariableFunctions.lstm_cell",
                 "companion.nn.seq2seq.Seq2SeqEnsemble._gru_step",
                 "companion.nn.attention.AttentionEnsemble._gru",
                 "companion.nn.pointer.PointerSorter._gru", "companion.nn.ensemble.Ensemble.forward"):
        assert path in ch06._CELLS


def _forward_mode(shape_out):
    def answer(*args):
        import torch.autograd.forward_ad as fwAD
        with fwAD.dual_level():
            p = torch.zeros(3, dtype=torch.float64)
            d = fwAD.make_dual(p, torch.ones(3, dtype=torch.float64))
            torch.tanh(d)
        return np.zeros(shape_out(*args))
    return answer


def test_autograd_checkers_refuse_forward_mode():
    with pytest.raises(DelegationError, match="already holds"):
        ch05.check_skip_jacobian_norms(_forward_mode(lambda hs, *a: hs.shape[:1]))
    with pytest.raises(DelegationError, match="already holds"):
        ch06.check_cell_state_jacobian(_forward_mode(lambda x, h0, *a: (len(h0), len(h0))))
    with pytest.raises(DelegationError, match="already holds"):
        ch06.check_gru_step_backward(_forward_mode(lambda *a: (1,)))


def test_jacobian_checkers_accept_their_references_every_time():
    import contextlib, io
    for _ in range(30):
        with contextlib.redirect_stdout(io.StringIO()):
            ch05.check_skip_jacobian_norms(skip_jacobian_norms)
            ch06.check_gru_step_backward(gru_step_backward)
            ch06.check_cell_state_jacobian(cell_state_jacobian)


def _central(f, x, eps=1e-6):
    """d f / d x by central differences, f: array -> array."""
    out = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e.flat[k] = eps
        out.append((f(x + e) - f(x - e)) / (2 * eps))
    return np.stack(out, axis=-1)


def test_cell_state_jacobian_checker_refuses_finite_differences():
    def by_differences(x, h0, s0, weight_ih, weight_hh, bias_ih, bias_hh):
        H = len(h0)

        def last_state(s):
            h, c = h0, s
            for x_t in x:
                a = weight_ih @ x_t + bias_ih + weight_hh @ h + bias_hh
                i, f, g, q = sigmoid(a[:H]), sigmoid(a[H:2*H]), np.tanh(a[2*H:3*H]), sigmoid(a[3*H:])
                c = f * c + i * g
                h = q * np.tanh(c)
            return c
        return _central(last_state, s0)

    with pytest.raises(AssertionError):
        ch06.check_cell_state_jacobian(by_differences)


def test_skip_jacobian_checker_refuses_finite_differences():
    def by_differences(hs, W, W_skip, delay):
        exact = skip_jacobian_norms(hs, W, W_skip, delay)
        return exact * (1 + 1e-8)   # what differences at eps ~ 1e-6 get right, no more

    with pytest.raises(AssertionError):
        ch05.check_skip_jacobian_norms(by_differences)


def test_ch05_checkers_refuse_answers_that_change_their_inputs():
    def clip_in_place(grads, max_norm):
        out = clip_by_norm(grads, max_norm)
        for g, o in zip(grads, out):
            g[...] = o
        return grads

    def ridge_in_place(train_states, train_targets, test_states, ridge):
        out = ridge_readout(train_states, train_targets, test_states, ridge)
        train_states -= train_states.mean(axis=0)
        return out

    with pytest.raises(AssertionError, match="in place"):
        ch05.check_clip_by_norm(clip_in_place)
    with pytest.raises(AssertionError, match="in place"):
        ch05.check_ridge_readout(ridge_in_place)
