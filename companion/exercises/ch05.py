"""Checkers for the exercises of chapter 5 (Long-term dependencies).

Every checker calls the answer with the package's (and torch's) functions that hold its
result disabled, on fixed cases and on cases drawn afresh from :func:`unseen_rng`; the
expected values are computed before the call by small independent references.
"""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import (TORCH_AUTOGRAD, finite, references_disabled, torch_refused,
                                  unchanged, unseen_rng)
from companion.exercises import require as _require

__all__ = ["check_skip_jacobian_norms", "check_clip_by_norm", "check_ridge_readout"]

def _existing(*paths):
    """The dotted names among ``paths`` that this installation has (torch's vary by version)."""
    import importlib

    found = []
    for path in paths:
        module, _, attr = path.rpartition(".")
        owner = None
        for cut in range(module.count(".") + 1, 0, -1):
            head = ".".join(module.split(".")[:cut])
            try:
                owner = importlib.import_module(head)
            except ImportError:
                continue
            for name in module.split(".")[cut:]:
                owner = getattr(owner, name, None)
            break
        if owner is not None and hasattr(owner, attr):
            found.append(path)
    return tuple(found)


# torch's automatic differentiation, reverse and forward mode (a dual tensor)
_AUTOGRAD = _existing(*TORCH_AUTOGRAD)



# ---------------------------------------------------------------- 5.1 Jacobians through a skip
def _skip_states(x, U, W, b, W_skip, delay):
    """h^(1..T) of a tanh RNN with a skip connection (zeros before the start)."""
    T, H = len(x), len(b)
    hs = np.zeros((T, H))
    for t in range(T):
        prev = hs[t - 1] if t >= 1 else np.zeros(H)
        far = hs[t - delay] if t >= delay else np.zeros(H)
        hs[t] = np.tanh(U @ x[t] + W @ prev + W_skip @ far + b)
    return hs


def _ref_skip_norms(x, U, W, b, W_skip, delay, hs):
    """||d h^(T) / d h^(T-d)||_2 for d = 0..T-1, by autograd on the re-run recurrence."""
    import torch

    T, H = hs.shape
    Ut, Wt, bt, St, xt, hst = (torch.tensor(a) for a in (U, W, b, W_skip, x, hs))
    norms = []
    for k in range(T, 0, -1):  # the state h^(k) = hs[k-1] is the variable

        def last(v, k=k):
            states = {j: hst[j - 1] for j in range(1, k)}
            states[k] = v
            for t in range(k + 1, T + 1):
                prev = states[t - 1]
                far = states[t - delay] if t - delay >= 1 else torch.zeros(H, dtype=v.dtype)
                states[t] = torch.tanh(Ut @ xt[t - 1] + Wt @ prev + St @ far + bt)
            return states[T]

        J = torch.autograd.functional.jacobian(last, hst[k - 1])
        norms.append(np.linalg.norm(J.numpy(), 2))
    return np.array(norms)


def _chain_only(hs, W):
    T, H = hs.shape
    P, out = np.eye(H), [1.0]
    for s in range(T, 1, -1):
        P = P @ (np.diag(1 - hs[s - 1] ** 2) @ W)
        out.append(np.linalg.norm(P, 2))
    return np.array(out)


def check_skip_jacobian_norms(fn) -> None:
    """Exercise 5.1: ``fn(hs, W, W_skip, delay)`` = the norms ||d h^(T) / d h^(T-d)||_2 for
    d = 0, ..., T-1 of a tanh RNN with a skip connection through time.

    ``hs`` is (T, H), the states h^(1..T) of one run of
    ``h^(t) = tanh(b + W h^(t-1) + W_skip h^(t-delay) + U x^(t))``; the derivative is the
    total one, along every path from h^(T-d) to h^(T).
    """
    check_callable("fn", fn, "(hs, W, W_skip, delay) -> norms (T,)")
    fixed, hidden = np.random.default_rng(51), unseen_rng()
    cases = [(3, 6, 2, 0.8, fixed), (4, 9, 3, 1.6, fixed), (5, 12, 4, 2.5, fixed)]
    for _ in range(4):
        T = int(hidden.integers(4, 13))
        cases.append((int(hidden.integers(2, 6)), T, int(hidden.integers(2, T)),
                      float(hidden.uniform(0.5, 2.5)), hidden))
    for H, T, delay, rho, g in cases:
        W = g.normal(size=(H, H))
        W *= rho / max(abs(np.linalg.eigvals(W)))
        W_skip = g.normal(size=(H, H)) * (rho / np.sqrt(H))
        U, b, x = g.normal(size=(H, 1)), 0.1 * g.normal(size=H), g.normal(size=(T, 1))
        hs = _skip_states(x, U, W, b, W_skip, delay)
        expected = _ref_skip_norms(x, U, W, b, W_skip, delay, hs)
        with references_disabled(fn, "companion.scratch.longterm.jacobian_norms",
                                 "companion.scratch.longterm.step_jacobians",
                                 "companion.scratch.longterm.input_influence",
                                 "companion.exercises.ch05._ref_skip_norms", *_AUTOGRAD), \
                torch_refused(autograd=True, engine=True):
            got = fn(hs.copy(), W.copy(), W_skip.copy(), delay)
        got = finite(got, "your norms", (T,))
        _require(np.isclose(got[0], 1.0), "d = 0: the derivative of h^(T) with respect to itself is the identity, whose "
                 "norm is 1.")
        if not np.allclose(got, expected, rtol=1e-10, atol=1e-12):
            _require(not np.allclose(got, _chain_only(hs, W), rtol=1e-7),
                     "your norms are those of the chain through W alone. With the skip "
                     "connection, a state also feeds the state delay steps later, through "
                     "W_skip: every path from h^(T-d) to h^(T) adds to the derivative.")
            bad = int(np.argmax(~np.isclose(got, expected, rtol=1e-10, atol=1e-12)))
            _require(False, f"for T={T}, delay={delay} your norm differs from the total derivative "
                     f"first at d={bad}. Each state h^(k) feeds h^(k+1) through W and h^(k+delay) "
                     f"through W_skip, each time times the tanh' of the state it feeds; "
                     f"collect both contributions, starting from d h^(T)/d h^(T) = I.")
    _ok("your Jacobians follow every path through the skip connection.")


# ---------------------------------------------------------------- 5.2 clipping by global norm
_CLIPPERS = _existing(
    "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
    "torch.nn.utils.clip_grad_value_", "torch.nn.utils.clip_grads_with_norm_",
    "torch.nn.utils.get_total_norm",
    "torch.nn.utils.clip_grad.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_norm",
    "torch.nn.utils.clip_grad.clip_grad_value_",
    "torch.nn.utils.clip_grad.clip_grads_with_norm_", "torch.nn.utils.clip_grad.get_total_norm",
    "torch.nn.utils.clip_grad._clip_grads_with_norm_", "torch.nn.utils.clip_grad._get_total_norm",
    "companion.scratch.charlm.clip_by_global_norm", "companion.train.clip_gradients",
    "companion.train.global_grad_norm", "companion.nn.ensemble.clip_per_member",
) + ("companion.exercises.ch05._ref_clip",)


def _ref_clip(grads, max_norm):
    total = np.sqrt(sum(float(np.sum(np.square(g))) for g in grads))
    scale = max_norm / total if total > max_norm else 1.0
    return [g * scale for g in grads], total


def check_clip_by_norm(fn) -> None:
    """Exercise 5.2: ``fn(grads, max_norm)`` returns the clipped list of arrays."""
    check_callable("fn", fn, "(grads, max_norm) -> list of arrays")
    fixed, hidden = np.random.default_rng(52), unseen_rng()
    cases = [([fixed.normal(size=(3, 4)) * 10, fixed.normal(size=4) * 10], 1.0),
             ([fixed.normal(size=(2, 2)) * 0.01, fixed.normal(size=3) * 0.01], 1.0),
             ([np.zeros((2, 3)), np.zeros(2)], 0.5)]
    for _ in range(6):
        shapes = [tuple(hidden.integers(1, 5, size=hidden.integers(1, 3)))
                  for _ in range(int(hidden.integers(1, 5)))]
        grads = [hidden.normal(size=s) * hidden.uniform(0.01, 20) for s in shapes]
        total = np.sqrt(sum((g ** 2).sum() for g in grads))
        # a threshold below, above, or close to the norm
        cases.append((grads, float(total * hidden.choice([0.05, 0.5, 0.97, 1.03, 3.0]))))
    for grads, max_norm in cases:
        want, total = _ref_clip(grads, max_norm)
        passed = [g.copy() for g in grads]
        with references_disabled(fn, *_CLIPPERS):
            out = fn(passed, max_norm)
        _require(isinstance(passed, list) and len(passed) == len(grads),
                 "leave the list grads as it was: return a new list")
        for k, (orig, p) in enumerate(zip(grads, passed)):
            unchanged(orig, p, f"grads[{k}]")
        _require(isinstance(out, (list, tuple)) and len(out) == len(grads),
                 "return a list with one array per gradient, in the same order")
        out = [finite(o, "every clipped array", g.shape) for o, g in zip(out, grads)]
        new_total = np.sqrt(sum((o ** 2).sum() for o in out))
        if total > max_norm:
            _require(np.isclose(new_total, max_norm), f"after clipping to max_norm the global norm is {new_total / max_norm:.4f} times "
                     f"max_norm. Use ONE norm over all arrays together, not one per array.")
            _require(all(np.allclose(o, w) for o, w in zip(out, want)), "the clipped gradient must point in the same direction: scale every array by "
                     "the same factor.")
        else:
            _require(all(np.allclose(o, g) for o, g in zip(out, grads)),
                     "a gradient whose global norm is already at most max_norm must be returned "
                     "unchanged (clipping only ever shortens a step).")
    _ok("one global norm, direction kept, small gradients untouched.")


# ---------------------------------------------------------------- 5.3 an echo state read-out
def _ref_readout(train_states, train_targets, test_states, ridge):
    M, F = train_states.shape
    A = np.vstack([np.c_[train_states, np.ones(M)],                 # the data rows
                   np.c_[np.sqrt(ridge) * np.eye(F), np.zeros(F)]])  # the penalty: w only
    y = np.r_[train_targets, np.zeros(F)]
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return test_states @ coef[:F] + coef[F]


def check_ridge_readout(fn) -> None:
    """Exercise 5.3: ``fn(train_states (M, F), train_targets (M,), test_states (L, F),
    ridge) -> predictions (L,)``, the ridge read-out with an unpenalised intercept."""
    check_callable("fn", fn, "(train_states, train_targets, test_states, ridge) -> predictions")
    from companion.scratch.longterm import esn_reservoir
    from companion.scratch.recurrence import rnn_hidden_states

    fixed, hidden = np.random.default_rng(53), unseen_rng()
    cases = []
    for g, n in ((fixed, 2), (hidden, 4)):
        for _ in range(n):
            F, M, L = int(g.integers(3, 9)), int(g.integers(12, 40)), int(g.integers(3, 10))
            offset = g.uniform(-3, 3)  # a target far from zero: the intercept matters
            S = g.normal(size=(M + L, F)) + g.normal(size=F)
            y = S @ g.normal(size=F) + offset + 0.1 * g.normal(size=M + L)
            ridge = float(g.choice([0.0, 0.1, 3.0, 100.0]))
            cases.append((S[:M], y[:M], S[M:], ridge))
    # a real reservoir recalling its input from three steps back
    g = hidden
    stream = g.uniform(-0.5, 0.5, size=160)
    U, W, b = esn_reservoir(20, 1, 0.9, input_scale=0.5, rng=g)
    states = rnn_hidden_states(stream[None, :, None], U, W, b)[0][20:]
    target = np.roll(stream, 3)[20:] + 1.0
    cases.append((states[:100], target[:100], states[100:], 1e-3))
    for S, y, S_test, ridge in cases:
        want = _ref_readout(S, y, S_test, ridge)
        with references_disabled(fn, "companion.scratch.readout.fit_ridge",
                                 "companion.scratch.readout.lagged_recall",
                                 "companion.exercises.ch05._ref_readout"):
            args = (S.copy(), y.copy(), S_test.copy())
            got = fn(*args, ridge)
        for orig, p, name in zip((S, y, S_test), args, ("train_states", "train_targets", "test_states")):
            unchanged(orig, p, name)
        got = finite(got, "your predictions", (len(S_test),))
        if np.allclose(got, want, rtol=1e-6, atol=1e-8):
            continue
        M, F = S.shape
        no_bias = S_test @ np.linalg.solve(S.T @ S + ridge * np.eye(F), S.T @ y)
        Sb = np.c_[S, np.ones(M)]
        biased = np.c_[S_test, np.ones(len(S_test))] @ np.linalg.solve(
            Sb.T @ Sb + ridge * np.eye(F + 1), Sb.T @ y)
        _require(not np.allclose(got, no_bias, rtol=1e-6), "your read-out has no intercept: add a constant feature (a column of ones) whose "
                 "weight is the intercept b.")
        _require(ridge == 0 or not np.allclose(got, biased, rtol=1e-6),
                 "your penalty also shrinks the intercept: only the weights w are penalised, "
                 "so that shifting every target by a constant shifts the predictions by the "
                 "same constant.")
        _require(False, f"your predictions differ from the ridge read-out (ridge={ridge}). Minimise "
                 "the SUM of squared errors plus ridge * ||w||^2 (the penalty is not scaled by "
                 "the number of examples), fit on the training states only, and predict "
                 "w . h + b for every test state.")
    _ok("your read-out is the ridge solution, intercept unpenalised, on every case tried.")
