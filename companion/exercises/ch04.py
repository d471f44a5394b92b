"""Checkers for the exercises of chapter 4 (Backpropagation through time).

Each checker computes its expected values itself, outside the answer's call: gradients
by centred finite differences of its own forward pass (and by its own backward loop),
byte counts by a formula checked against the real cache in the tests. During the
answer's call the package's (and torch's) implementations of the same computation are
disabled, and besides fixed cases every checker tries cases drawn afresh from
:func:`~companion.exercises.unseen_rng`.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import finite as _finite
from companion.exercises import unchanged as _unchanged
from companion.exercises import references_disabled
from companion.exercises import require as _require
from companion.exercises import unseen_rng
from companion.scratch.gradcheck import numerical_gradient

__all__ = ["check_output_recurrent_backward", "check_longest_sequence", "check_tbptt_k1_k2"]

_NAMES = ("U", "W", "V", "b", "c")
# Reverse mode (torch.func.grad and Tensor.backward go through the first two) and forward
# mode (dual numbers: torch.func.jvp and jacfwd make them with make_dual).
_TORCH_AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward",
                   "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp",
                   "torch.autograd.forward_ad.make_dual")
_BACKWARD_REFERENCES = (
    "companion.scratch.patterns.output_recurrent_backward",
    "companion.scratch.patterns.output_recurrent_loss_and_grads",
    "companion.scratch.gradcheck.numerical_gradient",
    "companion.scratch.gradcheck.check_gradients",
    "companion.exercises.ch04._or_backward",
    "companion.exercises.ch04._numerical",
) + (_TORCH_AUTOGRAD if importlib.util.find_spec("torch") is not None else ())



def _grads_dict(out, names, shapes) -> dict:
    _require(isinstance(out, dict), f"Return a dict with the keys {', '.join(names)}.")
    missing = [k for k in names if k not in out]
    _require(not missing, f"Return a dict with the keys {', '.join(names)}; missing {missing}.")
    return {k: _finite(out[k], f"the gradient of {k}", shapes[k]) for k in names}


# ---------------------------------------------------------------- Exercise 4.2 ----------

def _or_forward(x, p, o0):
    """The output-to-hidden network: a = b + W o_prev + U x, h = tanh(a), o = c + V h."""
    hs, os_, o_prev = [], [], o0
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["U"].T + o_prev @ p["W"].T + p["b"])
        o_prev = h @ p["V"].T + p["c"]
        hs.append(h)
        os_.append(o_prev)
    return np.stack(hs, axis=1), np.stack(os_, axis=1)


def _or_backward(do, x, o0, h, o, p, *, feedback=True, shift=1):
    """The exact gradients (own loop); ``feedback=False`` / ``shift=0`` are classic bugs."""
    N, T, K = do.shape
    g = {k: np.zeros_like(v) for k, v in p.items()}
    o_prev_all = np.concatenate([o0[:, None], o[:, :-1]], axis=1) if shift else o
    do_next = np.zeros((N, K))
    for t in reversed(range(T)):
        do_t = do[:, t] + (do_next if feedback else 0.0)
        g["V"] += do_t.T @ h[:, t]
        g["c"] += do_t.sum(axis=0)
        da = (do_t @ p["V"]) * (1 - h[:, t] ** 2)
        g["U"] += da.T @ x[:, t]
        g["W"] += da.T @ o_prev_all[:, t]
        g["b"] += da.sum(axis=0)
        do_next = da @ p["W"]
    g["o0"] = do_next
    return g


def _numerical(loss, arrays: dict) -> dict:
    """Central differences of ``loss()`` with respect to each array (perturbed in place)."""
    return {name: numerical_gradient(loss, arr) for name, arr in arrays.items()}


def _relative(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def check_output_recurrent_backward(fn) -> None:
    """Exercise 4.2: ``fn(do, cache, params) -> grads`` (keys U, W, V, b, c, o0) for
    :func:`~companion.scratch.patterns.output_recurrent_forward`, whose recurrence runs
    through the outputs: a = b + W o(t-1) + U x(t)."""
    from companion.scratch.patterns import output_recurrent_forward

    rng = unseen_rng()
    sizes = [(3, 6, 4, 5, 3), (2, 1, 3, 4, 2)]
    sizes += [(int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.integers(1, 5)),
               int(rng.integers(2, 7)), int(rng.integers(2, 5))) for _ in range(3)]
    names = _NAMES + ("o0",)
    for i, (N, T, D, H, K) in enumerate(sizes):
        p = {"U": rng.normal(0, 0.6, (H, D)), "W": rng.normal(0, 0.6, (H, K)),
             "V": rng.normal(0, 0.6, (K, H)), "b": rng.normal(0, 0.2, H),
             "c": rng.normal(0, 0.2, K)}
        x = rng.normal(size=(N, T, D))
        o0 = rng.normal(0, 0.5, (N, K))
        do = rng.normal(size=(N, T, K))                   # any upstream gradient
        _, cache = output_recurrent_forward(x.copy(), p, o0.copy())
        h, o = _or_forward(x, p, o0)
        exact = _or_backward(do, x, o0, h, o, p)
        if i == 0:                                        # the exact loop against finite differences
            arrays = {**{k: v.copy() for k, v in p.items()}, "o0": o0.copy()}
            numeric = _numerical(lambda: float(np.sum(do * _or_forward(
                x, {k: arrays[k] for k in _NAMES}, arrays["o0"])[1])), arrays)
            _require(all(_relative(numeric[k], exact[k]) < 1e-6 for k in names),
                     "internal error: the checker's own gradients fail their finite-difference "
                     "check.")
        passed_do, passed_p = do.copy(), {k: v.copy() for k, v in p.items()}
        cached = {name: getattr(cache, name).copy() for name in ("x", "o0", "h", "o")}
        with references_disabled(fn, *_BACKWARD_REFERENCES):
            out = fn(passed_do, cache, passed_p)
        _unchanged(do, passed_do, "do")
        for name in p:
            _unchanged(p[name], passed_p[name], f'params["{name}"]')
        for name, original in cached.items():
            _unchanged(original, getattr(cache, name), f"cache.{name}")
        shapes = {**{k: v.shape for k, v in p.items()}, "o0": o0.shape}
        got = _grads_dict(out, names, shapes)
        bad = [k for k in names if not np.allclose(got[k], exact[k], rtol=1e-7, atol=1e-10)]
        if not bad:
            continue
        no_feedback = _or_backward(do, x, o0, h, o, p, feedback=False)
        if all(np.allclose(got[k], no_feedback[k], atol=1e-10) for k in _NAMES) and T > 1:
            _require(False, (
                "Your gradients treat each o^(t) as if it fed only its own loss. In this "
                "network o^(t) has two children, L^(t) and a^(t+1): add the gradient coming "
                "back from the next step before using it."))
        if "W" in bad and np.allclose(got["W"], _or_backward(do, x, o0, h, o, p, shift=0)["W"],
                                      atol=1e-10):
            _require(False, (
                "The gradient of W uses the wrong output: a^(t) reads the PREVIOUS output "
                "o^(t-1) (o0 at the first step), not o^(t)."))
        if bad == ["o0"]:
            _require(False, (
                "Every parameter is right but the gradient of o0 is not: o0 enters only "
                "a^(1), through W."))
        _require(False, (
            f"The gradients of {bad} disagree with finite differences of the forward pass "
            f"(relative errors " + ", ".join(f"{k}: {_relative(got[k], exact[k]):.1e}"
                                             for k in bad)
            + "). Derive the gradient at o^(t) first (its two children), then the tanh, then "
            "each parameter's sum over steps."))
    _ok("every gradient of the output-to-hidden network agrees with finite differences.")


# ---------------------------------------------------------------- Exercise 4.3 ----------

def _longest(budget: int, N: int, D: int, H: int, K: int, itemsize: int) -> int:
    per_step = itemsize * N * (D + H + K)
    return max(0, (budget - itemsize * N * H) // per_step)


def check_longest_sequence(fn) -> None:
    """Exercise 4.3: ``fn(budget, N, D, H, K, itemsize) -> int``: the largest T whose
    ``rnn_forward`` cache fits in ``budget`` bytes (0 if not even one step fits)."""
    rng = unseen_rng()
    cases = [(10 ** 9, 64, 100, 1024, 100, 4), (2 ** 30, 64, 100, 1024, 100, 4),
             (1000, 1, 1, 1, 1, 8), (63, 2, 3, 4, 5, 1), (5, 2, 3, 4, 5, 1)]
    N, D, H, K, s = 3, 5, 7, 2, 8
    exact = s * N * H + 11 * s * N * (D + H + K)          # exactly 11 steps
    cases += [(exact, N, D, H, K, s), (exact - 1, N, D, H, K, s), (s * N * H, N, D, H, K, s)]
    for _ in range(10):
        N, D, H, K = (int(v) for v in rng.integers(1, 300, size=4))
        s = int(rng.choice([2, 4, 8]))
        cases.append((int(rng.integers(1, 10 ** 10)), N, D, H, K, s))
    for budget, N, D, H, K, s in cases:
        expected = _longest(budget, N, D, H, K, s)
        with references_disabled(fn, "companion.scratch.forward.rnn_forward",
                                 "companion.scratch.rtrl.bptt_memory_floats",
                                 "companion.exercises.ch04._longest"):
            got = fn(budget, N, D, H, K, s)
        _require(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                 f"return an int (a number of steps); got {type(got).__name__}.")
        if got == expected:
            continue
        setting = f"budget={budget}, N={N}, D={D}, H={H}, K={K}, itemsize={s}"
        _require(got >= 0, f"for {setting} your answer is negative: return 0 when not even "
                           f"one step fits.")
        _require(got != budget // (s * N * (D + H + K)) or expected == got, (
            f"for {setting} you allow one step too many (or more): the cache also holds the "
            f"initial state, once."))
        _require(got != max(0, (budget - s * N * H) // (s * N * (D + H))), (
            f"for {setting} your count leaves out an array the cache keeps for every step."))
        _require(False, (
            f"for {setting} your T is wrong. Count the numbers the cache holds for T steps "
            f"(x, h and o per step, h0 once), multiply by itemsize, and take the largest T "
            f"that stays within the budget (an integer: round down)."))
    _ok("your lengths are the longest that fit, on the page's setting and on fresh ones.")


# ---------------------------------------------------------------- Exercise 4.4 ----------

def _tbptt_reference(p, x, y, k1, k2, *, carry=True, mask=True, chunked=False):
    """Own TBPTT(k1, k2): per block of k1 losses, a window of the last k2 steps.

    ``carry=False`` starts every window from zeros, ``mask=False`` counts every loss of the
    window and ``chunked=True`` backpropagates each block through itself only (ordinary
    truncated BPTT with k = k1): classic mistakes, used for hints.
    """
    N, T, _ = x.shape
    H = p["W"].shape[0]
    states = [np.zeros((N, H))]                     # states[t] is h^(t), forward pass once
    for t in range(T):
        states.append(np.tanh(x[:, t] @ p["U"].T + states[-1] @ p["W"].T + p["b"]))
    total, g = 0.0, {k: np.zeros_like(p[k]) for k in _NAMES}
    rows = np.arange(N)
    for start in range(0, T, k1):
        end = min(start + k1, T)
        first = start if chunked else max(0, end - k2)
        h_prev = states[first] if carry else np.zeros((N, H))
        hs = []
        for t in range(first, end):                 # the window's own forward pass
            h_prev = np.tanh(x[:, t] @ p["U"].T + h_prev @ p["W"].T + p["b"])
            hs.append(h_prev)
        h_in = [states[first] if carry else np.zeros((N, H))] + hs[:-1]
        dh_next = np.zeros((N, H))
        for j in reversed(range(end - first)):
            t = first + j
            o = hs[j] @ p["V"].T + p["c"]
            z = o - o.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            counted = t >= start or not mask
            do = np.exp(logp)
            do[rows, y[:, t]] -= 1.0
            do = do / N if counted else np.zeros_like(do)
            if counted:
                total += float(-logp[rows, y[:, t]].sum() / N)
            g["V"] += do.T @ hs[j]
            g["c"] += do.sum(axis=0)
            da = (do @ p["V"] + dh_next) * (1 - hs[j] ** 2)
            g["U"] += da.T @ x[:, t]
            g["W"] += da.T @ h_in[j]
            g["b"] += da.sum(axis=0)
            dh_next = da @ p["W"]
    return total, g


def check_tbptt_k1_k2(fn) -> None:
    """Exercise 4.4: ``fn(params, x, y, k1, k2) -> (total_loss, grads)`` for TBPTT(k1, k2):
    every k1 steps, the losses of those k1 steps are backpropagated through the last k2
    steps (k2 >= k1), the state entering the window being held constant."""
    rng = unseen_rng()
    cases = [(3, 10, 3, 3), (3, 10, 2, 5), (3, 10, 3, 7), (2, 7, 4, 7), (2, 9, 1, 4)]
    for _ in range(5):
        T = int(rng.integers(3, 15))
        k1 = int(rng.integers(1, T + 1))
        cases.append((int(rng.integers(1, 4)), T, k1, int(rng.integers(k1, T + 3))))
    for N, T, k1, k2 in cases:
        D, H, K = 3, 4, 3
        p = {"U": rng.normal(0, 0.7, (H, D)), "W": rng.normal(0, 0.7, (H, H)),
             "V": rng.normal(0, 0.7, (K, H)), "b": rng.normal(0, 0.2, H),
             "c": rng.normal(0, 0.2, K)}
        x, y = rng.normal(size=(N, T, D)), rng.integers(0, K, size=(N, T))
        ref_loss, ref = _tbptt_reference(p, x, y, k1, k2)
        passed_p, passed_x, passed_y = {k: v.copy() for k, v in p.items()}, x.copy(), y.copy()
        with references_disabled(fn, "companion.scratch.bptt.truncated_bptt",
                                 "companion.scratch.bptt._chunks",
                                 "companion.exercises.ch04._tbptt_reference"):
            out = fn(passed_p, passed_x, passed_y, k1, k2)
        _unchanged(x, passed_x, "x")
        _unchanged(y, passed_y, "y")
        for name in p:
            _unchanged(p[name], passed_p[name], f'params["{name}"]')
        _require(isinstance(out, tuple) and len(out) == 2,
                 "Return a pair (total_loss, grads).")
        total = _finite(out[0], "the total loss")
        _require(total.size == 1, "the total loss must be one number.")
        grads = _grads_dict(out[1], _NAMES, {k: v.shape for k, v in p.items()})
        case = f"With T={T}, k1={k1}, k2={k2}"
        _require(np.isclose(float(total.reshape(())), ref_loss, rtol=1e-9), (
            f"{case} the total loss differs from the loss of the whole sequence. Count each "
            f"step's loss once, in the block it belongs to: the earlier steps of a window only "
            f"rebuild the state (mask them out of that window's loss)."))
        bad = [n for n in _NAMES if not np.allclose(grads[n], ref[n], rtol=1e-7, atol=1e-10)]
        if not bad:
            continue
        variants = [
            (_tbptt_reference(p, x, y, k1, k2, chunked=True)[1],
             "each block's losses are backpropagated only through the block itself "
             "(ordinary truncated BPTT with k = k1). Their window is the last k2 steps, "
             "reaching back before the block starts."),
            (_tbptt_reference(p, x, y, k1, k2, mask=False)[1],
             "every loss inside a window contributes to its gradient. Only the block's own "
             "k1 losses do; the earlier steps of the window carry gradient, not loss."),
            (_tbptt_reference(p, x, y, k1, k2, carry=False)[1],
             "each window starts from a zero state. It must start from the state the "
             "forward pass reached at the window's first step (held constant)."),
        ]
        for wrong, hint in variants:
            if all(np.allclose(grads[n], wrong[n], atol=1e-10) for n in _NAMES):
                _require(False, f"{case} your gradients are those of a TBPTT in which {hint}")
        _require(False, (
            f"{case} the summed gradients of {bad} are wrong. Block j holds the losses of "
            f"steps j*k1 .. j*k1 + k1 - 1; its window is the last k2 steps up to the block's "
            f"end (or from step 0), entered with the forward state held constant."))
    _ok("your TBPTT(k1, k2) gradients match, for every k1 <= k2 tried.")
