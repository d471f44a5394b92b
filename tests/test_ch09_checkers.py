"""The chapter 9 checkers accept the reference answers, refuse answers that call the
package's or torch's reference or that are hard-coded, and reject typical wrong ones."""

import numpy as np
import pytest
import torch

from companion.exercises import DelegationError, ch09
from companion.scratch.attention import (alignment_accuracy, attention_step,
                                         attention_step_backward)


# ---------------------------------------------------------------- Exercise 9.1
def good_backward(q, keys, mask, W, U, v, dC, dA):  # the notebook's reference solution
    zq = np.einsum("nth,ah->nta", q, W)                  # (N, T, A): W on every query
    zk = np.einsum("nsk,ak->nsa", keys, U)               # (N, S, A): U on every key, once
    z = np.tanh(zq[:, :, None, :] + zk[:, None, :, :])   # (N, T, S, A)
    real = np.broadcast_to(mask[:, None, :], z.shape[:3])
    e = np.where(real, z @ v, -np.inf)
    peak = e.max(axis=2, keepdims=True)
    peak[~np.isfinite(peak)] = 0.0                       # an empty source: no real score
    p = np.where(real, np.exp(e - peak), 0.0)
    norm = p.sum(axis=2, keepdims=True)
    alpha = p / np.where(norm > 0, norm, 1.0)            # empty rows stay all zero
    g_alpha = np.einsum("ntk,nsk->nts", dC, keys) + dA
    g_e = alpha * (g_alpha - (alpha * g_alpha).sum(axis=2, keepdims=True))
    beta = g_e[..., None] * v * (1.0 - z ** 2)           # (N, T, S, A), through tanh
    grads = {"v": np.einsum("nts,ntsa->a", g_e, z),
             "W": np.einsum("ntsa,nth->ah", beta, q),
             "U": np.einsum("ntsa,nsk->ak", beta, keys),
             "q": np.einsum("ntsa,ah->nth", beta, W)}
    grads["keys"] = (np.einsum("nts,ntk->nsk", alpha, dC)       # weighted sum
                     + np.einsum("ntsa,ak->nsk", beta, U))      # score
    return grads


def _variant(**changes):
    """good_backward with one ingredient broken."""
    def fn(q, keys, mask, W, U, v, dC, dA):
        if changes.get("no_dA"):
            dA = np.zeros_like(dA)
        g = good_backward(q, keys, mask, W, U, v, dC, dA)
        if changes.get("keys_sum_only"):    # forgets the score's path into the keys
            alpha_dC = good_backward(q, keys, mask, W, U, v, dC, np.zeros_like(dA))
            g["keys"] = g["keys"] - 0.5 * (g["keys"] - alpha_dC["keys"]) - 0.1
        if changes.get("mean_params"):      # averages instead of summing over the batch
            for k in ("W", "U", "v"):
                g[k] = g[k] / q.shape[0]
        return g
    return fn


def uniform_empty(q, keys, mask, W, U, v, dC, dA):
    """Wrong: an empty source gets uniform weights (the -1e9 fill)."""
    full = mask.copy()
    full[~mask.any(axis=1)] = True
    g = good_backward(q, keys, full, W, U, v, dC, dA)
    return g


def nan_empty(q, keys, mask, W, U, v, dC, dA):
    """Wrong: 0/0 on an empty source."""
    g = good_backward(q, keys, mask, W, U, v, dC, dA)
    empty = ~mask.any(axis=1)
    if empty.any():
        g["q"][empty] = np.nan
    return g


def looped_package(q, keys, mask, W, U, v, dC, dA):
    """Refused: one call of the package's backward per output step."""
    out = {k: 0.0 for k in ("W", "U", "v", "keys")}
    out["q"] = np.zeros_like(q)
    for t in range(q.shape[1]):
        _, _, cache = attention_step(q[:, t], keys, mask, {"W": W, "U": U, "v": v})
        g = attention_step_backward(dC[:, t], cache)
        out["q"][:, t] = g["q"]
        for k in ("W", "U", "v", "keys"):
            out[k] = out[k] + g[k]
    return out


def autograd_answer(q, keys, mask, W, U, v, dC, dA):
    """Refused: a torch forward pass differentiated by autograd."""
    t = {k: torch.tensor(a, requires_grad=True)
         for k, a in zip(("q", "keys", "W", "U", "v"), (q, keys, W, U, v))}
    z = torch.tanh((t["q"] @ t["W"].T)[:, :, None] + (t["keys"] @ t["U"].T)[:, None])
    e = (z @ t["v"]).masked_fill(~torch.as_tensor(mask)[:, None], -1e9)
    a = torch.softmax(e, -1)
    ((a @ t["keys"]) * torch.as_tensor(dC)).sum().backward()
    return {k: x.grad.numpy() for k, x in t.items()}


def _fixed_store():
    rng = np.random.default_rng(91)
    store = {}
    for args in [(1, 1, 3, 2, 2, 3, [3]), (3, 4, 5, 4, 3, 6, [5, 2, 1]),
                 (3, 2, 4, 3, 5, 2, [4, 0, 2])]:
        c = ch09._backward_case(rng, *args)
        store[c["q"].tobytes()] = good_backward(c["q"], c["keys"], c["mask"], c["W"],
                                                c["U"], c["v"], c["dC"], c["dA"])
    return store


def test_attention_backward_checker(capsys):
    ch09.check_attention_backward(good_backward)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="ignore dA"):
        ch09.check_attention_backward(_variant(no_dA=True))
    with pytest.raises(AssertionError, match="keys gradient is wrong"):
        ch09.check_attention_backward(_variant(keys_sum_only=True))
    with pytest.raises(AssertionError, match="W gradient is wrong"):
        ch09.check_attention_backward(_variant(mean_params=True))
    with pytest.raises(AssertionError, match="empty source must pass no gradient"):
        ch09.check_attention_backward(uniform_empty)
    with pytest.raises(AssertionError, match="NaN or inf"):
        ch09.check_attention_backward(nan_empty)
    with pytest.raises(AssertionError, match="return a dict"):
        ch09.check_attention_backward(lambda *a: list(good_backward(*a).values()))
    with pytest.raises(AssertionError, match="shape"):
        ch09.check_attention_backward(
            lambda *a: {k: g[..., :1] for k, g in good_backward(*a).items()})
    for delegate in (looped_package, autograd_answer):
        with pytest.raises(DelegationError, match="already holds"):
            ch09.check_attention_backward(delegate)
    store = _fixed_store()

    def hard_coded(q, keys, mask, W, U, v, dC, dA):
        zeros = {"q": np.zeros_like(q), "keys": np.zeros_like(keys), "W": np.zeros_like(W),
                 "U": np.zeros_like(U), "v": np.zeros_like(v)}
        return store.get(q.tobytes(), zeros)

    with pytest.raises(AssertionError, match="gradient is wrong"):
        ch09.check_attention_backward(hard_coded)


def test_finite_differences_agree_with_autograd():
    c = ch09._backward_case(np.random.default_rng(0), 2, 3, 4, 2, 3, 2, [4, 0])
    fd, auto = ch09._finite_differences(c), ch09._autograd_reference(c)
    assert all(ch09._rel_err(fd[k], auto[k]) < 1e-7 for k in auto)
    assert np.all(auto["keys"][1] == 0) and np.all(auto["q"][1] == 0)   # the empty source


# ---------------------------------------------------------------- Exercise 9.2
def test_mask_checker(capsys):
    ch09.check_source_mask(lambda src, pad: np.asarray(src) != pad)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="inverted"):
        ch09.check_source_mask(lambda src, pad: src == pad)
    with pytest.raises(AssertionError, match="boolean"):
        ch09.check_source_mask(lambda src, pad: (src != pad).astype(float))
    with pytest.raises(AssertionError, match="whatever its value"):
        for _ in range(20):  # hidden pads are drawn afresh: a pad of 0 or 9 fails on one
            ch09.check_source_mask(lambda src, pad: src != (0 if pad == 0 else 9))
    with pytest.raises(AssertionError, match="NaN|finite|mask"):
        ch09.check_source_mask(lambda src, pad: np.full(src.shape, np.nan))


# ---------------------------------------------------------------- Exercise 9.3
def good_prf(weights, gold):
    links = {(int(np.argmax(row)), t) for t, row in enumerate(weights)}  # one per output
    gold = {(int(i), int(j)) for i, j in gold}
    hits = len(links & gold)
    return hits / len(links), hits / len(gold)


def test_alignment_checker(capsys):
    ch09.check_alignment_precision_recall(good_prf)
    assert "Correct" in capsys.readouterr().out

    def linked_only(w, gold):  # precision over gold-linked outputs only
        rows = {j for _, j in gold}
        p, r = good_prf(w, gold)
        return p * w.shape[0] / len(rows), r

    def swapped(w, gold):
        p, r = good_prf(w, gold)
        return r, p

    def columns(w, gold):
        return good_prf(w.T, [(j, i) for i, j in gold])

    def delegating(w, gold):
        return alignment_accuracy(w, gold), good_prf(w, gold)[1]

    with pytest.raises(AssertionError, match="EVERY output position"):
        ch09.check_alignment_precision_recall(linked_only)
    with pytest.raises(AssertionError, match="swapped"):
        ch09.check_alignment_precision_recall(swapped)
    with pytest.raises(AssertionError):
        ch09.check_alignment_precision_recall(columns)
    with pytest.raises(AssertionError, match="pair"):
        ch09.check_alignment_precision_recall(lambda w, g: 0.5)
    with pytest.raises(AssertionError, match="finite"):
        ch09.check_alignment_precision_recall(lambda w, g: (float("nan"), 0.5))
    with pytest.raises(DelegationError, match="already holds"):
        ch09.check_alignment_precision_recall(delegating)
    w0 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    store = {str(g): good_prf(w, g) for w, g in
             [(w0, [(0, 0), (1, 2), (1, 1)]), (w0, [(0, 0), (2, 1), (0, 2), (1, 2)]),
              (w0.T.copy(), [(1, 1)])]}
    with pytest.raises(AssertionError):   # hard-coded to the fixed cases
        ch09.check_alignment_precision_recall(lambda w, g: store.get(str(g), (0.5, 0.5)))


def test_alignment_accuracy_values_and_errors():
    w = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    assert alignment_accuracy(w, [(0, 0), (1, 1), (2, 2)]) == pytest.approx(1 / 3)
    assert alignment_accuracy(w, [(0, 0), (1, 2), (2, 1)]) == 1.0
    assert alignment_accuracy(w, [(0, 0), (2, 0)]) == 1.0       # either partner counts
    assert np.isnan(alignment_accuracy(w, []))
    with pytest.raises(ValueError, match="outside"):
        alignment_accuracy(w, [(3, 0)])
    with pytest.raises(ValueError, match=r"\(L, S\)"):
        alignment_accuracy(w[0], [(0, 0)])


# ------------------------------------------- other ways to the answer, all refused
def _case_dict(q, keys, mask, W, U, v, dC, dA):
    return {"q": q, "keys": keys, "mask": mask, "W": W, "U": U, "v": v, "dC": dC, "dA": dA}


def _torch_forward(q, keys, mask, W, U, v, dC, dA):
    t = {k: torch.tensor(a, requires_grad=True)
         for k, a in zip(("q", "keys", "W", "U", "v"), (q, keys, W, U, v))}
    m = torch.as_tensor(mask)[:, None, :]
    z = torch.tanh((t["q"] @ t["W"].T)[:, :, None, :] + (t["keys"] @ t["U"].T)[:, None])
    e = z @ t["v"]
    mm = m.expand_as(e)
    ex = torch.exp(e.masked_fill(~mm, -1e300) - e.max(2, keepdim=True).values.detach()) * mm
    s = ex.sum(2, keepdim=True)
    alpha = ex / torch.where(s > 0, s, torch.ones_like(s))
    loss = ((alpha @ t["keys"]) * torch.as_tensor(dC)).sum() + (alpha * torch.as_tensor(dA)).sum()
    return t, loss


def _via_autograd_engine(*args):  # autograd started without backward() or grad()
    t, loss = _torch_forward(*args)
    grads = torch.autograd.Variable._execution_engine.run_backward(
        (loss,), (torch.ones_like(loss),), False, False, tuple(t.values()), True)
    return {k: g.numpy() for k, g in zip(t, grads)}


def _via_own_autograd(*args):
    return ch09._autograd_reference(_case_dict(*args))


def _via_own_finite_differences(*args):
    return ch09._finite_differences(_case_dict(*args))


@pytest.mark.parametrize("answer", [_via_autograd_engine, _via_own_autograd,
                                    _via_own_finite_differences])
def test_attention_backward_other_delegations_refused(answer):
    with pytest.raises(DelegationError, match="already holds"):
        ch09.check_attention_backward(answer)


def test_attention_backward_numerical_answer_rejected():
    def numerical(q, keys, mask, W, U, v, dC, dA):  # its own forward, central differences
        arrays = {"q": q.copy(), "keys": keys.copy(), "W": W.copy(), "U": U.copy(),
                  "v": v.copy()}

        def loss():
            a = arrays
            z = np.tanh(np.einsum("nth,ah->nta", a["q"], a["W"])[:, :, None]
                        + np.einsum("nsk,ak->nsa", a["keys"], a["U"])[:, None])
            m = np.broadcast_to(mask[:, None, :], z.shape[:3])
            e = np.where(m, z @ a["v"], -np.inf)
            top = e.max(axis=2, keepdims=True)
            p = np.where(m, np.exp(e - np.where(np.isfinite(top), top, 0.0)), 0.0)
            s = p.sum(axis=2, keepdims=True)
            alpha = p / np.where(s > 0, s, 1.0)
            C = np.einsum("nts,nsk->ntk", alpha, a["keys"])
            return float((C * dC).sum() + (alpha * dA).sum())

        out = {}
        for k, arr in arrays.items():
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + 1e-6
                up = loss()
                arr[idx] = old - 1e-6
                down = loss()
                arr[idx] = old
                g[idx] = (up - down) / 2e-6
            out[k] = g
        return out
    with pytest.raises(AssertionError, match="gradient is wrong"):
        ch09.check_attention_backward(numerical)


def test_checkers_refuse_answers_that_change_their_inputs():
    def backward_in_place(q, keys, mask, W, U, v, dC, dA):
        g = good_backward(q, keys, mask, W, U, v, dC, dA)
        dC *= 0.0
        return g

    def mask_in_place(src, pad):
        m = np.asarray(src) != pad
        src[~m] = 0
        return m

    def prf_in_place(w, gold):
        result = good_prf(w, gold)
        gold.clear()
        return result

    with pytest.raises(AssertionError, match="in place"):
        ch09.check_attention_backward(backward_in_place)
    with pytest.raises(AssertionError, match="in place"):
        for _ in range(5):  # a pad of 0 would leave src unchanged; the drawn pads are not
            ch09.check_source_mask(mask_in_place)
    with pytest.raises(AssertionError, match="in place"):
        ch09.check_alignment_precision_recall(prf_in_place)


def test_alignment_checker_refuses_its_own_reference():
    with pytest.raises(DelegationError, match="already holds"):
        ch09.check_alignment_precision_recall(lambda w, g: ch09._prf_reference(w, g))
