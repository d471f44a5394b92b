"""Checkers for the exercises of chapter 9 (attention)."""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import references_disabled
from companion.exercises import require as _require
from companion.exercises import unseen_rng
from companion.exercises import torch_refused as _torch_refused
from companion.exercises.ch08 import _unchanged
from companion.scratch.gradcheck import numerical_gradient

__all__ = ["check_attention_backward", "check_alignment_precision_recall",
           "check_source_mask"]

# What already computes an attention step or its gradients: the package's NumPy and torch
# attention, torch's autograd (which would differentiate a forward pass for the student)
# and the course's finite differences.
_BACKWARD_REFERENCES = (
    "companion.scratch.attention.attention_step_backward",
    "companion.scratch.attention.attention_step",
    "companion.scratch.attention.masked_softmax_np",
    "companion.scratch.gradcheck.numerical_gradient",
    "companion.nn.attention.masked_softmax",
    "companion.nn.attention.attend",
    "companion.nn.attention.Attention",
    "companion.nn.attention.AdditiveScore",
    "companion.nn.attention.make_score",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.Tensor.backward",
    "torch.autograd.functional.vjp",
    "torch.autograd.functional.jacobian",
    "torch.func.vjp",
    "torch.func.grad",
    "torch.func.jacrev",
    "companion.scratch.gradcheck.check_gradients",
    "companion.exercises.ch09._forward_np",
    "companion.exercises.ch09._autograd_reference",
    "companion.exercises.ch09._finite_differences",
)
# torch's softmaxes and attention under any of their names (Tensor.softmax, torch._softmax,
# torch.ops.aten..., a MultiheadAttention built beforehand), and its autograd however it
# is started.
_BACKWARD_OPS = ("softmax", "_softmax", "log_softmax", "_log_softmax",
                 "_softmax_backward_data", "scaled_dot_product_attention",
                 "_scaled_dot_product_attention_math", "multi_head_attention_forward")

_GRAD_NAMES = ("q", "keys", "W", "U", "v")


def _to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ---------------------------------------------------------------- Exercise 9.1
def _backward_case(rng, N, T, S, Hq, Hk, A, lengths):
    """Inputs of one case; padded keys are large and not zero, and dA is not zero there."""
    q = rng.normal(size=(N, T, Hq))
    keys = rng.normal(size=(N, S, Hk))
    mask = np.arange(S)[None, :] < np.asarray(lengths)[:, None]
    keys[~mask] = rng.normal(size=(int((~mask).sum()), Hk)) * 5
    W = rng.normal(size=(A, Hq)) / np.sqrt(Hq)
    U = rng.normal(size=(A, Hk)) / np.sqrt(Hk)
    v = rng.normal(size=A)
    dC = rng.normal(size=(N, T, Hk))
    dA = rng.normal(size=(N, T, S))
    return {"q": q, "keys": keys, "mask": mask, "W": W, "U": U, "v": v, "dC": dC, "dA": dA}


def _forward_np(q, keys, mask, W, U, v):
    """The checker's own forward pass (NumPy): weights (N, T, S), context (N, T, Hk)."""
    z = np.tanh(np.einsum("nth,ah->nta", q, W)[:, :, None, :]
                + np.einsum("nsk,ak->nsa", keys, U)[:, None, :, :])      # (N, T, S, A)
    e = z @ v                                                           # (N, T, S)
    m = np.broadcast_to(mask[:, None, :], e.shape)
    e = np.where(m, e, -np.inf)
    top = e.max(axis=2, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)                          # empty rows
    p = np.where(m, np.exp(e - top), 0.0)
    total = p.sum(axis=2, keepdims=True)
    alpha = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    return alpha, np.einsum("nts,nsk->ntk", alpha, keys)


def _autograd_reference(case, with_dA=True):
    """Gradients of sum(C * dC) + sum(alpha * dA) by torch autograd, on the checker's own
    torch forward pass (the empty-row rule included)."""
    import torch

    t = {k: torch.tensor(case[k], dtype=torch.float64, requires_grad=True)
         for k in _GRAD_NAMES}
    mask = torch.as_tensor(case["mask"])[:, None, :]                    # (N, 1, S)
    z = torch.tanh((t["q"] @ t["W"].T)[:, :, None, :]
                   + (t["keys"] @ t["U"].T)[:, None, :, :])             # (N, T, S, A)
    e = z @ t["v"]
    m = mask.expand_as(e)
    has_any = m.any(dim=2, keepdim=True)
    e = e.masked_fill(~m, float("-inf")).masked_fill(~has_any, 0.0)
    alpha = torch.softmax(e, dim=2) * m                                 # 0 on empty rows
    C = alpha @ t["keys"]
    loss = (C * torch.as_tensor(case["dC"])).sum()
    if with_dA:
        loss = loss + (alpha * torch.as_tensor(case["dA"])).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in _GRAD_NAMES])
    return {k: g.numpy() for k, g in zip(_GRAD_NAMES, grads)}


def _finite_differences(case, eps=1e-6):
    """Central differences of the same loss, with the checker's NumPy forward pass."""
    arrays = {k: case[k].copy() for k in _GRAD_NAMES}

    def loss():
        alpha, C = _forward_np(arrays["q"], arrays["keys"], case["mask"], arrays["W"],
                               arrays["U"], arrays["v"])
        return float((C * case["dC"]).sum() + (alpha * case["dA"]).sum())

    return {k: numerical_gradient(loss, a, eps=eps) for k, a in arrays.items()}


def _rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(a) + np.abs(b)))))


_KEY_HINTS = {
    "q": "the query gradient is wrong: each query t collects W^T sum_j beta_tj from its own "
         "output step only, beta_tj = ebar_tj v * (1 - z_tj^2).",
    "keys": "the keys gradient is wrong: every key receives gradient twice (through the "
            "weighted sum, alpha_tj * Cbar_t, and through its score, U^T beta_tj), summed "
            "over ALL output steps t.",
    "W": "the W gradient is wrong: it is sum over n, t, j of beta_tj q_t^T.",
    "U": "the U gradient is wrong: it is sum over n, t, j of beta_tj k_j^T.",
    "v": "the v gradient is wrong: it is sum over n, t, j of ebar_tj z_tj.",
}


def check_attention_backward(fn) -> None:
    """Exercise 9.1: ``fn(q (N, T, Hq), keys (N, S, Hk), mask (N, S), W, U, v, dC, dA)``
    -> dict of the gradients of ``q``, ``keys``, ``W``, ``U``, ``v`` for additive attention
    with every output step's query at once; empty source rows get zero weights."""
    check_callable("fn", fn, "(q, keys, mask, W, U, v, dC, dA) -> dict of gradients")
    fixed = np.random.default_rng(91)
    hidden = unseen_rng()
    cases = [_backward_case(fixed, 1, 1, 3, 2, 2, 3, [3]),
             _backward_case(fixed, 3, 4, 5, 4, 3, 6, [5, 2, 1]),
             _backward_case(fixed, 3, 2, 4, 3, 5, 2, [4, 0, 2])]   # an empty source
    for _ in range(2):
        N, T, S = (int(x) for x in hidden.integers(2, 6, size=3))
        Hq, Hk, A = (int(x) for x in hidden.integers(1, 6, size=3))
        lengths = hidden.integers(0, S + 1, size=N)
        lengths[hidden.integers(N)] = S
        cases.append(_backward_case(hidden, N, T, S, Hq, Hk, A, lengths))
    fd_case = _backward_case(hidden, 2, 2, 3, 2, 3, 2, [int(hidden.integers(1, 4)), 0])

    for k, case in enumerate(cases + [fd_case]):
        args = {key: value.copy() for key, value in case.items()}
        with references_disabled(fn, *_BACKWARD_REFERENCES), \
                _torch_refused(_BACKWARD_OPS, autograd=True):
            got = fn(args["q"], args["keys"], args["mask"], args["W"], args["U"], args["v"],
                     args["dC"], args["dA"])
        for key, value in case.items():
            _unchanged(value, args[key], key)
        _require(isinstance(got, dict) and set(_GRAD_NAMES) <= set(got),
                 f"return a dict with the keys {list(_GRAD_NAMES)}.")
        got = {key: np.asarray(_to_numpy(got[key]), dtype=float) for key in _GRAD_NAMES}
        for key in _GRAD_NAMES:
            _require(got[key].shape == case[key].shape,
                     f"the gradient of {key} must have {key}'s shape {case[key].shape}; got "
                     f"{got[key].shape}.")
            _require(np.all(np.isfinite(got[key])),
                     f"the gradient of {key} holds NaN or inf. An empty source (a mask row "
                     f"with no True entry) must give zero weights and pass no gradient; "
                     f"elsewhere subtract the row's maximum score before exp.")
        empty = ~case["mask"].any(axis=1)
        _require(not empty.any() or (np.all(got["q"][empty] == 0)
                                     and np.all(got["keys"][empty] == 0)),
                 "an empty source must pass no gradient: its weights are 0 whatever the "
                 "scores (the rule empty='zero'), not uniform over the padding, so its query "
                 "and keys get exactly zero gradient.")
        pad = ~case["mask"]
        _require(np.all(np.abs(got["keys"][pad]) < 1e-12),
                 "padded keys must get zero gradient: their weight is exactly 0 and their "
                 "score is masked out, so nothing flows back to them.")
        ref = _autograd_reference(case)
        # a tolerance that rounding allows and finite differences do not reach
        wrong = [key for key in _GRAD_NAMES
                 if not np.allclose(got[key], ref[key], rtol=1e-9, atol=1e-12)]
        if wrong:
            no_dA = _autograd_reference(case, with_dA=False)
            _require(not all(np.allclose(got[key], no_dA[key], rtol=1e-9, atol=1e-12)
                             for key in _GRAD_NAMES),
                     "your gradients ignore dA: the weights' own upstream gradient adds to "
                     "abar_tj = Cbar_t . k_j before the softmax's backward pass.")
            _require(False, _KEY_HINTS[wrong[0]] + " (compared with torch autograd.)")
        if k == len(cases):
            fd = _finite_differences(case)
            worst = max(_rel_err(got[key], fd[key]) for key in _GRAD_NAMES)
            _require(worst < 1e-6, "your gradients agree with autograd but not with finite "
                                   "differences: report this case to your instructor.")
    _ok("your gradients match torch autograd and finite differences, padding and empty "
        "sources included.")


# ---------------------------------------------------------------- Exercise 9.2
def check_source_mask(fn) -> None:
    """Exercise 9.2: ``fn(src (N, S) ids, pad) -> mask (N, S) bool``, True at real tokens."""
    check_callable("fn", fn, "(src, pad) -> mask")
    fixed = np.random.default_rng(92)
    hidden = unseen_rng()
    settings = [(fixed, 1, 4, 0), (fixed, 4, 6, 0), (fixed, 3, 5, 9)]
    settings += [(hidden, int(hidden.integers(2, 7)), int(hidden.integers(2, 9)),
                  int(hidden.integers(0, 20))) for _ in range(3)]
    for rng, N, S, pad in settings:
        lengths = rng.integers(1, S + 1, size=N)
        lengths[0] = S
        src = rng.integers(0, 20, size=(N, S))
        src[src == pad] = pad + 1 if pad + 1 < 20 else pad - 1
        for n, L in enumerate(lengths):
            src[n, L:] = pad
        passed = src.copy()
        with references_disabled(fn, "companion.nn.attention._lengths_mask"):
            got = np.asarray(_to_numpy(fn(passed, pad)))
        _unchanged(src, passed, "src")
        want = np.arange(S)[None, :] < lengths[:, None]
        _require(got.shape == (N, S), f"the mask must have the shape of src {(N, S)}; got "
                 f"{got.shape}.")
        _require(got.dtype == bool, f"the mask must be boolean (dtype bool); got {got.dtype}. "
                 f"A 0/1 float mask is silently misread by masked_fill and torch's attention.")
        _require(not np.array_equal(got, ~want), "your mask is inverted: this course's mask "
                 "is True at REAL tokens (torch's key_padding_mask is the opposite).")
        _require(np.array_equal(got, want), "the mask must be True exactly where src holds a "
                 "real token and False at the padding positions (use the pad argument, "
                 "whatever its value).")
    _ok("True at real tokens, False at padding.")


# ---------------------------------------------------------------- Exercise 9.3
def _prf_reference(w, gold):
    links = {(int(w[t].argmax()), t) for t in range(w.shape[0])}
    gold = {(int(i), int(j)) for i, j in gold}
    hit = len(links & gold)
    return hit / len(links), hit / len(gold)


def _alignment_cases(rng, n):
    cases = []
    for _ in range(n):
        L, S = (int(x) for x in rng.integers(2, 8, size=2))
        w = rng.dirichlet(np.ones(S), size=L)
        gold = {(int(rng.integers(S)), j) for j in range(L) if rng.random() < 0.7}
        gold |= {(int(rng.integers(S)), int(rng.integers(L))) for _ in range(2)}
        cases.append((w, sorted(gold)))
    return cases


def check_alignment_precision_recall(fn) -> None:
    """Exercise 9.3: ``fn(weights (L, S), gold pairs (i, j)) -> (precision, recall)`` of the
    hard alignment that links every output position to its most-attended source position."""
    check_callable("fn", fn, "(weights, gold) -> (precision, recall)")
    w0 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    cases = [(w0, [(0, 0), (1, 2), (1, 1)]), (w0, [(0, 0), (2, 1), (0, 2), (1, 2)]),
             (w0.T.copy(), [(1, 1)])]
    cases += _alignment_cases(np.random.default_rng(93), 3)
    cases += _alignment_cases(unseen_rng(), 4)
    for w, gold in cases:
        passed = (w.copy(), list(gold))
        with references_disabled(fn, "companion.scratch.attention.alignment_accuracy",
                                 "companion.exercises.ch09._prf_reference"):
            got = fn(*passed)
        _unchanged(w, passed[0], "weights")
        _unchanged(list(gold), passed[1], "gold")
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return a pair (precision, recall).")
        _require(all(np.ndim(g) == 0 for g in got), "precision and recall are single numbers.")
        p, r = (float(g) for g in got)
        _require(np.isfinite(p) and np.isfinite(r), "precision and recall must be finite.")
        want_p, want_r = _prf_reference(w, gold)
        if np.isclose(p, want_p) and np.isclose(r, want_r):
            continue
        rows = {j for _, j in gold}
        hits = len({(int(w[t].argmax()), t) for t in range(w.shape[0])} & set(gold))
        _require(not (np.isclose(p, want_r) and np.isclose(r, want_p)),
                 "precision and recall are swapped: precision divides by the model's links, "
                 "recall by the gold pairs.")
        _require(not np.isclose(r, want_r) or not np.isclose(p, hits / len(rows))
                 or np.isclose(want_p, hits / len(rows)),
                 "precision counts EVERY output position's link, also the link of a word "
                 "that has no gold partner (it is a link the gold alignment does not have).")
        col = {(t, int(w[:, t].argmax())) for t in range(w.shape[1])}
        _require(not np.isclose(r, len(col & set(gold)) / len(gold))
                 or np.isclose(r, want_r),
                 "rows are output positions and columns source positions: each output "
                 "position t links to the argmax of ROW t (axis=1).")
        _require(np.isclose(p, want_p),
                 "the precision is wrong: the share of the model's links (one per output "
                 "position) that are gold pairs.")
        _require(False, "the recall is wrong: the share of the gold pairs that are among the "
                        "model's links (an output position with two gold partners can only "
                        "recover one of them).")
    _ok("your precision and recall agree on every test case.")
