"""Checkers for the exercises of chapter 12 (Beyond), all three of its pages.

The file is shared: each section's checkers sit in their own block below, with their own
imports and helpers. Every block adds its names to ``__all__``.

Every checker runs the answer inside :func:`companion.exercises.references_disabled`, with
the package's (and torch's) implementations of the exercise's answer switched off, and
tests it on cases drawn from :func:`companion.exercises.unseen_rng` besides its fixed ones.
"""

from __future__ import annotations

from companion.exercises import TORCH_AUTOGRAD as _TORCH_AUTOGRAD
from companion.exercises import existing as _existing
from companion.exercises import torch_refused as _torch_refused

__all__: list[str] = []


# torch's automatic differentiation, reverse and forward mode: disabled wherever an
# exercise asks for a gradient or a Jacobian (with _backward_engine_disabled below)
_AUTOGRAD = _existing(
    *_TORCH_AUTOGRAD,
    "companion.scratch.gradcheck.numerical_gradient",
    "companion.scratch.gradcheck.check_gradients")


def _backward_engine_disabled():
    """Refuse torch's backward engine itself while the block runs, however it is reached."""
    return _torch_refused(engine=True, engine_advice="Write the derivative yourself.")


def _unchanged(before: dict, after: dict) -> None:
    """Refuse an answer that changed one of its array arguments in place."""
    import numpy

    for name, value in before.items():
        if not numpy.array_equal(value, after[name], equal_nan=True):
            raise AssertionError(
                f"your function changed its argument {name} in place. Leave the inputs as "
                f"they are: work on copies (x = x * 2, not x *= 2, on an argument).")


# ---------------------------------------------------------------- O12: learning online
# (section ch12_online: Exercises 12.11-12.13). Self-contained: its own imports and helpers.
import numpy as np  # noqa: E402

from companion.exercises import ok as _ok  # noqa: E402
from companion.exercises import references_disabled as _disabled  # noqa: E402
from companion.exercises import require as _require  # noqa: E402
from companion.exercises import unseen_rng as _unseen_rng  # noqa: E402

__all__ += ["check_leaky_rtrl", "check_rtrl_costs", "check_uoro_step"]  # noqa: F405

_O12_RTRL = ("companion.scratch.rtrl.rtrl_loss_and_grads",
             "companion.scratch.rtrl._chunk_backward",
             "companion.scratch.bptt.rnn_step_backward", "companion.scratch.bptt.hidden_backward",
             "companion.scratch.bptt._hidden_backward", "companion.scratch.bptt.rnn_backward",
             "companion.scratch.bptt.truncated_bptt",
             "companion.exercises.ch12._leaky_reference",
             "companion.scratch.rtrl.influence_step", "companion.scratch.rtrl._influence_step",
             "companion.scratch.rtrl.online_train", "companion.scratch.rtrl.uoro_gradient_samples",
             "companion.scratch.rtrl._uoro_step", "companion.scratch.rtrl._param_vjp",
             "companion.scratch.bptt.rnn_loss_and_grads",
             "companion.scratch.longterm.leaky_hidden_states",
             "companion.scratch.longterm._leaky_run",
             "companion.scratch.longterm.step_jacobians",
             ) + _AUTOGRAD


def _o12_close(got, ref, tol=1e-10) -> bool:
    got = np.asarray(got, dtype=float)
    ref = np.asarray(ref, dtype=float)
    scale = 1.0 + float(np.abs(ref).max()) if ref.size else 1.0
    return got.shape == ref.shape and bool(np.all(np.isfinite(got))) \
        and bool(np.all(np.abs(got - ref) <= tol * scale))


def _rtrl_problem(D, H, seed):  # parameters, a random J, x_t and h_prev
    from companion.scratch.init import init_rnn_params

    rng = np.random.default_rng(seed)
    p = init_rnn_params(D, H, 2, rng, recurrent_gain=1.2)
    p["b"] = rng.normal(0.0, 0.3, size=H)
    P = H * D + H * H + H
    return p, rng.normal(size=(H, P)) * 0.3, rng.normal(size=D), np.tanh(rng.normal(size=H))


def _leaky_reference(p, x, y, alpha):
    """Loss and flat (U, W, b) gradient of the leaky RNN, by torch autograd."""
    import torch

    tp = {k: torch.tensor(np.asarray(v, dtype=float), requires_grad=True) for k, v in p.items()}
    h = torch.zeros(tp["W"].shape[0], dtype=torch.float64)
    loss = torch.zeros((), dtype=torch.float64)
    for x_t, y_t in zip(x, y):
        cand = torch.tanh(tp["b"] + tp["W"] @ h + tp["U"] @ torch.from_numpy(x_t))
        h = alpha * h + (1 - alpha) * cand
        loss = loss - torch.log_softmax(tp["c"] + tp["V"] @ h, 0)[int(y_t)]
    U_g, W_g, b_g = torch.autograd.grad(loss, [tp["U"], tp["W"], tp["b"]])
    flat = np.concatenate([U_g.numpy().ravel(), W_g.numpy().ravel(), b_g.numpy()])
    return float(loss.detach()), flat


def _leaky_cases():
    cases = [(1, 2, 3, 2, 0.0, 0), (1, 2, 3, 2, 0.6, 1), (6, 3, 4, 3, 0.0, 2),
             (6, 3, 4, 3, 0.5, 3), (12, 2, 5, 4, 0.9, 4)]
    rng = _unseen_rng()
    for _ in range(3):
        cases.append((int(rng.integers(2, 16)), int(rng.integers(1, 5)),
                      int(rng.integers(1, 7)), int(rng.integers(2, 5)),
                      float(rng.uniform(0.05, 0.95)), int(rng.integers(1 << 31))))
    return cases


def check_leaky_rtrl(fn) -> None:
    """Exercise 12.11: ``fn(p, x, y, alpha)`` -> (loss, flat (U, W, b) gradient), forwards."""
    from companion.scratch.init import random_rnn_problem

    for T, D, H, K, alpha, seed in _leaky_cases():
        p, x, y, _ = random_rnn_problem(1, T, D, H, K, np.random.default_rng(seed))
        p = {k: v for k, v in p.items()}
        loss_ref, g_ref = _leaky_reference(p, x[0], y[0], alpha)
        passed = ({k: v.copy() for k, v in p.items()}, x[0].copy(), y[0].copy())
        with _disabled(fn, *_O12_RTRL), _backward_engine_disabled():
            out = fn(*passed, alpha)
        _unchanged({**{f"p[{k!r}]": v for k, v in p.items()}, "x": x[0], "y": y[0]},
                   {**{f"p[{k!r}]": v for k, v in passed[0].items()}, "x": passed[1],
                    "y": passed[2]})
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (loss, g_theta).")
        loss, g = out
        g = np.asarray(g, dtype=float)
        P = H * D + H * H + H
        _require(g.shape == (P,), f"g_theta is one flat vector of the P = HD + H^2 + H = {P} "
                                  f"recurrent parameters; got shape {g.shape}.")
        _require(bool(np.all(np.isfinite(g))) and np.isfinite(float(loss)),
                 "your loss or gradient contains NaN or inf.")
        _require(abs(float(loss) - loss_ref) <= 1e-10 * (1 + abs(loss_ref)),
                 f"the loss is wrong (T = {T}, alpha = {alpha:.2f}): it is the sum over the "
                 f"steps of -log y_hat[y_t], with the read-out applied to the leaky state.")
        if _o12_close(g, g_ref):
            continue
        parts = {"U": slice(0, H * D), "W": slice(H * D, H * D + H * H),
                 "b": slice(H * D + H * H, P)}
        wrong = [k for k, s in parts.items() if not _o12_close(g[s], g_ref[s])]
        where = f"the {', '.join(wrong)} part(s) of g_theta"
        if T == 1 and alpha == 0:
            _require(False, f"{where} differ(s) at one step with alpha = 0, the plain RNN: "
                            f"check I-bar and the flat order of theta (U, W, b, each row "
                            f"after row).")
        if T == 1:
            _require(False, f"{where} differ(s) at one step with alpha > 0: h^(0) = 0, so "
                            f"only the immediate term counts; check how the leak scales it "
                            f"and whose tanh the derivative belongs to.")
        if alpha == 0:
            _require(False, f"{where} differ(s) over {T} steps with alpha = 0, where the "
                            f"recursion is the page's (12.11).")
        _require(False, f"{where} differ(s) over {T} steps with alpha = {alpha:.2f} (torch "
                        f"autograd disagrees): list every path by which theta reaches "
                        f"h^(t), directly and through h^(t-1), and carry each in J.")
    _ok("your forward-mode gradient of the leaky RNN equals backpropagation's on every "
        "sequence tried.")


_O12_GATES = {"rnn": (1, 1), "gru": (3, 1), "lstm": (4, 2)}  # blocks; state vectors


def check_rtrl_costs(fn) -> None:
    """Exercise 12.12: ``fn(D, H, cell)`` -> (floats in J, multiply-adds of the product)."""
    rng = _unseen_rng()
    sizes = [(1, 1), (2, 3), (4, 16), (10, 100)] + \
        [(int(rng.integers(1, 3000)), int(rng.integers(1, 3000))) for _ in range(4)]
    for D, H in sizes:
        for cell, (g, s) in _O12_GATES.items():
            P = g * (H * D + H * H + H)
            with _disabled(fn, "companion.scratch.rtrl.rtrl_memory_floats",
                           "companion.scratch.rtrl.recurrent_size",
                           "companion.scratch.rtrl.uoro_memory_floats"):
                out = fn(D, H, cell)
            _require(isinstance(out, tuple) and len(out) == 2,
                     "return a tuple (floats, multiply_adds).")
            _require(all(np.isfinite(float(v)) and float(v) == int(v) for v in out),
                     "both counts are whole numbers (no NaN, no fractions).")
            floats, madds = (int(v) for v in out)
            if cell == "rnn":
                _require(floats == s * H * P, f"the float count of the RNN is wrong at D={D}, "
                         f"H={H}: J has one row per state entry and one column per "
                         f"recurrent parameter.")
            _require(floats == s * H * P or floats != H * P or s == 1,
                     f"the float count of the LSTM is wrong at D={D}, H={H}: what does it "
                     f"carry from one step to the next, besides h?")
            _require(floats == s * H * P, f"the float count of the {cell.upper()} is wrong "
                     f"at D={D}, H={H}: count its parameter blocks (one input matrix, one "
                     f"recurrent matrix and one bias each) and its state entries.")
            _require(madds == s * s * H * H * P, f"the multiply-add count of the "
                     f"{cell.upper()} is wrong at D={D}, H={H}: the state's Jacobian is "
                     f"square, one row and one column per state entry, and an (a, b) @ "
                     f"(b, c) product costs a*b*c.")
    _ok("both counts are right for every cell and size tried.")


def check_uoro_step(fn) -> None:
    """Exercise 12.13: ``fn(h_tilde, theta_tilde, x_t, h_prev, h_t, W, nu)``, one sequence."""
    from companion.scratch.rtrl import _uoro_step

    rng = _unseen_rng()
    cases = [(1, 2, 0), (2, 3, 1), (3, 4, 2)] + \
        [(int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1 << 31)))
         for _ in range(3)]
    for D, H, seed in cases:
        p, _, x_t, h_prev = _rtrl_problem(D, H, seed)
        rng = np.random.default_rng(seed + 10)
        h_t = np.tanh(p["U"] @ x_t + p["W"] @ h_prev + p["b"])
        ht = rng.normal(size=H)
        tt = rng.normal(size=H * D + H * H + H)
        nu = rng.choice([-1.0, 1.0], size=H)
        ref = _uoro_step(ht[None], tt[None], x_t[None], h_prev[None], h_t[None], p["W"],
                         nu[None], 1e-7)
        names = ("h_tilde", "theta_tilde", "x_t", "h_prev", "h_t", "W", "nu")
        given = (ht, tt, x_t, h_prev, h_t, p["W"], nu)
        passed = tuple(a.copy() for a in given)
        with _disabled(fn, *_O12_RTRL), _backward_engine_disabled():
            out = fn(*passed)
        _unchanged(dict(zip(names, given)), dict(zip(names, passed)))
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (h_tilde_new, theta_tilde_new).")
        got_h, got_t = (np.asarray(a, dtype=float) for a in out)
        _require(got_h.shape == (H,) and got_t.shape == tt.shape,
                 "h_tilde stays (H,) and theta_tilde (P,).")
        _require(bool(np.all(np.isfinite(got_h)) and np.all(np.isfinite(got_t))),
                 "your new h_tilde or theta_tilde contains NaN or inf.")
        ok_outer = _o12_close(np.outer(got_h, got_t), np.outer(ref[0][0], ref[1][0]))
        _require(ok_outer, "the rank-one product h_tilde theta_tilde^T is wrong, whatever "
                           "the scale factors: check the two vectors that the signs nu "
                           "combine, each against the one-step Jacobian (of the state, of "
                           "the parameters) that the statement names.")
        _require(_o12_close(got_h, ref[0][0]) and _o12_close(got_t, ref[1][0]),
                 "the product is right but the two factors are scaled differently: use "
                 "rho0 and rho1 exactly as the statement defines them.")
    _ok("your UORO step is right, scale factors included, for every size tried.")


# ---------------------------------------------------------------- P12: pointers and zoneout
# (chapter page ch12_beyond: Exercises 12.1-12.4). Self-contained: its own imports and helpers.
import numpy as np  # noqa: E402

from companion.exercises import ok as _ok  # noqa: E402
from companion.exercises import references_disabled as _disabled  # noqa: E402
from companion.exercises import require as _require  # noqa: E402
from companion.exercises import unseen_rng as _unseen_rng  # noqa: E402

__all__ += ["check_expected_zoneout_jacobian", "check_greedy_permutation",  # noqa: F405
            "check_pointer_nll_grads", "check_zoneout_states"]


def _p12_array(got, shape, what):
    try:
        import torch
        if isinstance(got, torch.Tensor):
            got = got.detach().numpy()
    except ImportError:  # pragma: no cover
        pass
    got = np.asarray(got, dtype=float)
    _require(got.shape == shape, f"{what} must have shape {shape}; got {got.shape}.")
    _require(bool(np.all(np.isfinite(got))), f"{what} contains NaN or inf.")
    return got


def _p12_close(got, ref, tol=1e-10) -> bool:
    return bool(np.all(np.abs(got - ref) <= tol * (1 + np.abs(ref).max())))


def _pointer_reference(Hs, d, A, B, w, j):
    """-log P(y = j) of equation (ptr-output) and its gradients, by torch autograd."""
    import torch

    t = {k: torch.tensor(v, requires_grad=True)
         for k, v in (("Hs", Hs), ("h_dec", d), ("A", A), ("B", B), ("w", w))}
    e = torch.tanh(t["Hs"] @ t["A"].T + t["B"] @ t["h_dec"]) @ t["w"]
    loss = -torch.log_softmax(e, 0)[j]
    names = list(t)
    grads = torch.autograd.grad(loss, [t[k] for k in names])
    return float(loss.detach()), {k: g.numpy() for k, g in zip(names, grads)}


_P12_POINTER = ("companion.nn.pointer.PointerSorter",
                "companion.scratch.attention.attention_step_backward",
                "companion.exercises.ch12._pointer_reference") + _AUTOGRAD


def check_pointer_nll_grads(fn) -> None:
    """Exercise 12.1: ``fn(Hs, h_dec, A, B, w, j)`` -> (loss, dict of the five gradients)."""
    rng = _unseen_rng()
    cases = [(1, 2, 0), (3, 4, 1), (7, 5, 2)] + \
        [(int(rng.integers(2, 12)), int(rng.integers(1, 8)), int(rng.integers(1 << 31)))
         for _ in range(3)]
    for n, H, seed in cases:
        g = np.random.default_rng(seed)
        Hs, d = g.normal(size=(n, H)), g.normal(size=H)
        A, B, w = g.normal(size=(H, H)), g.normal(size=(H, H)), g.normal(size=H)
        j = int(g.integers(n))
        loss_ref, ref = _pointer_reference(Hs, d, A, B, w, j)
        names, given = ("Hs", "h_dec", "A", "B", "w"), (Hs, d, A, B, w)
        passed = tuple(a.copy() for a in given)
        with _disabled(fn, *_P12_POINTER), _backward_engine_disabled():
            out = fn(*passed, j)
        _unchanged(dict(zip(names, given)), dict(zip(names, passed)))
        _require(isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict),
                 "return a tuple (loss, grads) with grads a dict whose keys are 'Hs', "
                 "'h_dec', 'A', 'B' and 'w'.")
        loss, grads = out
        _require(set(grads) == set(ref), "grads needs exactly the keys 'Hs', 'h_dec', 'A', "
                                         "'B' and 'w'.")
        loss = float(loss)
        _require(np.isfinite(loss), "the loss is NaN or inf.")
        _require(abs(loss - loss_ref) <= 1e-10 * (1 + abs(loss_ref)),
                 "the loss is wrong: it is -log of the pointer's probability of the target "
                 "position j, equation (ptr-output).")
        got = {k: _p12_array(grads[k], ref[k].shape, f"the gradient for {k}") for k in ref}
        if all(_p12_close(got[k], ref[k]) for k in ref):
            continue
        if all(_p12_close(-got[k], ref[k]) for k in ref):
            _require(False, "every gradient has the wrong sign: the loss is -log P(y = j), "
                            "so descending it raises the score of j and lowers the others.")
        _require(n > 1, "with a single input position the probability is 1 whatever the "
                        "parameters: every gradient must be exactly zero.")
        _require(_p12_close(got["w"], ref["w"]),
                 "the gradient for w is wrong: w multiplies the vector tanh(A h_j + B h') "
                 "of every position j, so its gradient collects one term per position, "
                 "weighted by how much the loss changes with that position's score.")
        for k, hint in (("A", "A projects every encoder state: its gradient sums one outer "
                              "product per position, each with that position's h_j."),
                        ("B", "B projects the decoder state, the same for every position: "
                              "sum the positions' contributions before the outer product "
                              "with h'."),
                        ("h_dec", "h' enters every position's score through B."),
                        ("Hs", "row j of Hs enters only position j's score, through A.")):
            _require(_p12_close(got[k], ref[k]),
                     f"the gradient for {k} is wrong (n = {n}, H = {H}); w's is right, so "
                     f"look at the step through the tanh (its derivative) and at {hint}")
    _ok("your loss and its five gradients equal automatic differentiation's for every size "
        "tried.")


def _zoneout_reference(x, h0, U, W, b, zeta, keep):
    N, T, _ = x.shape
    h, out = h0.copy(), np.empty((N, T, W.shape[0]))
    for t in range(T):
        cand = np.tanh(b + h @ W.T + x[:, t] @ U.T)
        m = zeta if keep is None else keep[:, t]
        h = m * h + (1 - m) * cand
        out[:, t] = h
    return out


_P12_ZONEOUT = ("companion.nn.zoneout.regularised_step", "companion.nn.zoneout.ZoneoutRNNCell",
                "companion.nn.zoneout.CharLMEnsemble",
                "companion.scratch.longterm.leaky_hidden_states",
                "companion.scratch.longterm._leaky_run",
                "companion.exercises.ch12._zoneout_reference")


def check_zoneout_states(fn) -> None:
    """Exercise 12.2: ``fn(x, h0, U, W, b, zeta, keep=None)`` -> states (N, T, H)."""
    rng = _unseen_rng()
    cases = [(1, 1, 1, 1, 0.5, 0), (2, 5, 3, 4, 0.3, 1), (4, 3, 2, 6, 0.8, 2)] + \
        [(int(rng.integers(1, 6)), int(rng.integers(1, 20)), int(rng.integers(1, 5)),
          int(rng.integers(1, 8)), float(rng.uniform(0.05, 0.95)), int(rng.integers(1 << 31)))
         for _ in range(3)]
    for N, T, D, H, zeta, seed in cases:
        g = np.random.default_rng(seed)
        x, h0 = g.normal(size=(N, T, D)), np.tanh(g.normal(size=(N, H)))
        U, W, b = g.normal(size=(H, D)), g.normal(size=(H, H)) * 0.8, g.normal(size=H) * 0.3
        keep = (g.random((N, T, H)) < zeta).astype(float)
        args = (x, h0, U, W, b)
        for mode, k in (("training", keep), ("evaluation", None)):
            ref = _zoneout_reference(*args, zeta, k)
            passed = tuple(a.copy() for a in args)
            mask = None if k is None else k.copy()
            with _disabled(fn, *_P12_ZONEOUT):
                got = fn(*passed, zeta, mask)
            _unchanged(dict(zip(("x", "h0", "U", "W", "b"), args)),
                       dict(zip(("x", "h0", "U", "W", "b"), passed)))
            if k is not None:
                _unchanged({"keep": k}, {"keep": mask})
            got = _p12_array(got, (N, T, H), f"the {mode}-mode states")
            if _p12_close(got, ref):
                continue
            if mode == "training":
                inverted = _zoneout_reference(*args, zeta, 1 - keep)
                _require(not _p12_close(got, inverted), "your mask is inverted: a 1 in keep "
                         "means the unit keeps its previous value.")
                _require(not _p12_close(got[:, 0], ref[:, 0]),
                         f"the first step is right but a later one is not (N = {N}, T = {T}):"
                         f" the candidate of step t is computed from the state the zoneout "
                         f"cell holds at t-1, and keep[:, t] is the mask of step t.")
                _require(False, f"the training-mode states are wrong (N = {N}, T = {T}, "
                                f"D = {D}, H = {H}): x is batch-first, (N, T, D), and each "
                                f"step follows equation (zoneout).")
            plain = _zoneout_reference(*args, 0.0, None)
            _require(not _p12_close(got, plain), "in evaluation mode the mask is replaced by "
                     "its expectation, not dropped.")
            _require(False, f"the evaluation-mode states are wrong at zeta = {zeta:.2f} "
                            f"(N = {N}, T = {T}): apply equation (zoneout-test) at every step, "
                            f"to the state the cell itself holds.")
    _ok("training mode keeps exactly the masked units, evaluation mode uses the expectation, "
        "at every step of every batch tried.")


def _greedy_reference(scores, lengths):
    N, n, _ = scores.shape
    pos, logp = -np.ones((N, n), dtype=int), np.zeros(N)
    for k in range(N):
        allowed = np.arange(n) < lengths[k]
        for i in range(lengths[k]):
            row = np.where(allowed, scores[k, i], -np.inf)
            j = int(np.argmax(row))
            logp[k] += row[j] - (row[allowed].max() + np.log(np.exp(
                row[allowed] - row[allowed].max()).sum()))
            pos[k, i] = j
            allowed[j] = False
    return pos, logp


def check_greedy_permutation(fn) -> None:
    """Exercise 12.3: ``fn(scores, lengths)`` -> (positions (N, n), log-probabilities (N,))."""
    rng = _unseen_rng()
    first = np.array([[2.0, 1.0, 0.0, 9.0], [3.0, 0.5, 0.1, 9.0], [1.0, 2.0, 0.0, 9.0],
                      [0.0, 0.0, 0.0, 9.0]])  # position 3 is padding and scores highest
    cases = [(first[None], np.array([3])), (np.zeros((1, 1, 1)), np.array([1])),
             (np.random.default_rng(3).normal(size=(3, 6, 6)), np.array([6, 2, 4]))]
    for _ in range(3):
        N, n = int(rng.integers(1, 6)), int(rng.integers(1, 10))
        cases.append((rng.normal(size=(N, n, n)) * rng.uniform(0.5, 4),
                      rng.integers(1, n + 1, size=N)))
    for scores, lengths in cases:
        N, n, _ = scores.shape
        ref_pos, ref_logp = _greedy_reference(scores, lengths)
        passed = (scores.copy(), lengths.copy())
        with _disabled(fn, "companion.nn.pointer.PointerSorter.decode",
                       "companion.exercises.ch12._greedy_reference"):
            out = fn(*passed)
        _unchanged({"scores": scores, "lengths": lengths},
                   {"scores": passed[0], "lengths": passed[1]})
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (positions, log_probabilities).")
        pos = _p12_array(out[0], (N, n), "positions")
        logp = _p12_array(out[1], (N,), "the log-probabilities")
        _require(np.array_equal(pos, np.round(pos)), "positions are whole numbers.")
        pos = pos.astype(int)
        for k in range(N):
            L = int(lengths[k])
            _require(np.all(pos[k, L:] == -1), "the output steps past a sequence's length "
                                               "emit nothing: they must hold -1.")
            chosen = pos[k, :L]
            _require(np.all((chosen >= 0) & (chosen < L)),
                     "a padded position (or one outside the input) was chosen: positions "
                     "at or beyond a sequence's length must never get probability.")
            _require(len(set(chosen.tolist())) == L, "some position is chosen twice: remove "
                     "a position from the candidates once it has been chosen.")
        _require(np.array_equal(pos, ref_pos), "each step must take the highest-scoring "
                 "position among the real positions not chosen yet, in order of the output "
                 "steps.")
        _require(bool(np.all(logp <= 1e-12)), "a log-probability cannot be positive.")
        _require(_p12_close(logp, ref_logp), "the positions are right but the "
                 "log-probabilities are not: each choice's probability is a softmax over "
                 "the positions still allowed at that step only (masked scores get "
                 "probability 0), and the sequence's log-probability sums its real steps.")
    _ok("every sequence is a permutation of its real positions, the best remaining one at "
        "each step, with its log-probability.")


def check_expected_zoneout_jacobian(fn) -> None:
    """Exercise 12.4: ``fn(W, h_cand, zeta)`` -> E[dh_t / dh_{t-1}] under zoneout (H, H)."""
    rng = _unseen_rng()
    cases = [(1, 0.5, 0), (3, 0.0, 1), (4, 0.2, 2), (5, 0.9, 3)] + \
        [(int(rng.integers(1, 9)), float(rng.uniform(0, 1)), int(rng.integers(1 << 31)))
         for _ in range(3)]
    for H, z, seed in cases:
        g = np.random.default_rng(seed)
        W = g.normal(size=(H, H))
        h_cand = np.tanh(g.normal(size=H))
        ref = z * np.eye(H) + (1 - z) * (1 - h_cand ** 2)[:, None] * W
        passed = (W.copy(), h_cand.copy())
        with _disabled(fn, "companion.scratch.longterm.step_jacobians",
                       "companion.scratch.longterm.jacobian_norms", *_AUTOGRAD), \
                _backward_engine_disabled():
            got = fn(*passed, z)
        _unchanged({"W": W, "h_cand": h_cand}, {"W": passed[0], "h_cand": passed[1]})
        got = _p12_array(got, (H, H), "the Jacobian")
        if np.allclose(got, ref, atol=1e-12):
            continue
        _require(H == 1 or not np.allclose(got, (1 - h_cand ** 2)[None, :] * W * (1 - z)
                                           + z * np.eye(H), atol=1e-12),
                 "the tanh derivative scales the ROWS of W (unit i's derivative multiplies "
                 "row i), not its columns.")
        _require(False, "each unit either copies its previous value or takes the "
                        "candidate: differentiate both cases and weight them by their "
                        "probabilities.")
    _ok("your expected Jacobian is right for every size and rate tried.")


# ---------------------------------------------------------------- L12: scans and linear recurrences
# (section ch12_scans: Exercises 12.21-12.23). Self-contained: its own imports and helpers.
import numpy as _l12_np  # noqa: E402

from companion.exercises import ok as _l12_ok  # noqa: E402
from companion.exercises import references_disabled as _l12_disabled  # noqa: E402
from companion.exercises import require as _l12_require  # noqa: E402
from companion.exercises import unseen_rng as _l12_unseen_rng  # noqa: E402

__all__ += ["check_blelloch_counts", "check_diagonal_form",  # noqa: F405
            "check_scan_backward"]

_L12_SCANS = ("companion.scratch.scan.scan_loop", "companion.scratch.scan.blelloch_scan",
              "companion.scratch.scan.logspace_scan", "companion.scratch.scan.combine",
              "companion.scratch.scan.blelloch_schedule", "companion.scratch.scan._levels",
              "companion.nn.linear_recurrence.linear_scan",
              "companion.nn.linear_recurrence.linear_scan_loop",
              "companion.nn.linear_recurrence.last_state")


def _l12_close(got, ref, tol) -> bool:
    got = _l12_np.asarray(got)
    return got.shape == ref.shape and bool(_l12_np.all(_l12_np.isfinite(got))) \
        and bool(_l12_np.all(_l12_np.abs(got - ref) <= tol))


def check_blelloch_counts(fn) -> None:
    """Exercise 12.21: ``fn(T)`` -> (combines, levels) of Blelloch's scan, any T >= 1."""
    from companion.scratch.scan import _levels

    rng = _l12_unseen_rng()
    powers = [2 ** k for k in range(1, 16)]
    others = list(range(1, 70)) + [2 ** k + s for k in range(4, 20) for s in (-1, 1)]
    drawn = [int(rng.integers(1, 5000)) for _ in range(10)] + \
        [int(rng.integers(1, 2 ** 40)) for _ in range(10)]
    for group, Ts in (("power", powers), ("other", others + drawn)):
        for T in Ts:
            levels = list(_levels(T))
            combines, depth = sum(n for *_, n in levels), len(levels)
            with _l12_disabled(fn, *_L12_SCANS):
                got = fn(T)
            _l12_require(isinstance(got, tuple) and len(got) == 2,
                         "return a pair (combines, levels).")
            _l12_require(all(_l12_np.isfinite(float(v)) and float(v) == int(v) for v in got),
                         "both counts are whole numbers (no NaN, no fractions).")
            if group == "power":
                _l12_require(int(got[0]) == combines,
                             f"the number of combines is wrong at T = {T}, a power of two: "
                             f"count the up-sweep (every level halves the pairs) and the "
                             f"down-sweep separately; the down-sweep has no pair for the last "
                             f"position of each block.")
                _l12_require(int(got[1]) == depth,
                             f"the number of levels is wrong at T = {T}, a power of two: the "
                             f"up-sweep has one level per halving, and the down-sweep one "
                             f"fewer (its top level would combine nothing).")
                continue
            _l12_require(int(got[0]) == combines,
                         f"right for powers of two, but the number of combines is wrong at "
                         f"T = {T}: at each level count the pairs that really exist (a "
                         f"position whose partner would lie beyond T sits the level out); "
                         f"the sum of the up-sweep's floor(T / s) has a closed form in T's "
                         f"binary digits.")
            _l12_require(int(got[1]) == depth,
                         f"the number of levels is wrong at T = {T}: a level exists only if "
                         f"it has at least one pair, in the up-sweep and in the down-sweep.")
    _l12_ok("your formulas give the work and the depth the scan counts, for powers of two "
            "and for every other length tried, up to about 10^12.")


def _scan_backward_reference(a, b, G):
    import torch

    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    h, hs = torch.zeros(a.shape[1], dtype=torch.float64), []
    for t in range(len(a)):
        h = ta[t] * h + tb[t]
        hs.append(h)
    loss = (torch.stack(hs) * torch.from_numpy(G)).sum()
    ga, gb = torch.autograd.grad(loss, [ta, tb])
    return ga.numpy(), gb.numpy()


def check_scan_backward(fn) -> None:
    """Exercise 12.22: ``fn(a, b, grad_h)`` -> (dL/da, dL/db) of h_t = a_t h_{t-1} + b_t."""
    rng = _l12_unseen_rng()
    cases = [(1, 1, 0), (2, 1, 1), (6, 2, 2), (200, 3, 3)] + \
        [(int(rng.integers(2, 400)), int(rng.integers(1, 6)), int(rng.integers(1 << 31)))
         for _ in range(3)]
    for T, H, seed in cases:
        g = _l12_np.random.default_rng(seed)
        a = g.uniform(-1.05, 1.05, size=(T, H))
        a[g.random((T, H)) < 0.05] = 0.0        # a zero cuts the past
        b, G = g.normal(size=(T, H)), g.normal(size=(T, H))
        ref_a, ref_b = _scan_backward_reference(a, b, G)
        passed = (a.copy(), b.copy(), G.copy())
        with _l12_disabled(fn, *_L12_SCANS, *_AUTOGRAD,
                           "companion.exercises.ch12._scan_backward_reference"), \
                _backward_engine_disabled():
            out = fn(*passed)
        _unchanged({"a": a, "b": b, "grad_h": G},
                   {"a": passed[0], "b": passed[1], "grad_h": passed[2]})
        _l12_require(isinstance(out, tuple) and len(out) == 2,
                     "return a pair (grad_a, grad_b).")
        got_a, got_b = (_l12_np.asarray(v, dtype=float) for v in out)
        _l12_require(got_a.shape == (T, H) and got_b.shape == (T, H),
                     f"both gradients have the shape of a, ({T}, {H}).")
        _l12_require(bool(_l12_np.all(_l12_np.isfinite(got_a)) and
                          _l12_np.all(_l12_np.isfinite(got_b))),
                     "your gradients contain NaN or inf.")
        tol_b = 1e-10 * (1 + _l12_np.abs(ref_b).max())
        tol_a = 1e-10 * (1 + _l12_np.abs(ref_a).max())
        if not _l12_close(got_b, ref_b, tol_b):
            _l12_require(T == 1 or not _l12_close(got_b, G, tol_b),
                         "grad_b is just grad_h: beta^(t) reaches every later state too, "
                         "through the alphas of the steps after t.")
            _l12_require(not _l12_close(got_b, _l12_np.cumsum(G, axis=0), 1e-9),
                         "the gradient flows backwards in time: the gradient of beta^(t) "
                         "collects the losses of the states at t and after, not before.")
            _l12_require(False, f"grad_b is wrong (T = {T}, H = {H}): write the gradient "
                                f"of h^(t) through h^(t+1) and check which step's alpha "
                                f"carries it.")
        _l12_require(_l12_close(got_a, ref_a, tol_a),
                     f"grad_b is right but grad_a is not (T = {T}, H = {H}): alpha^(t) "
                     f"multiplies one state only; which one, and what is h^(0)?")
    _l12_ok("your reverse recurrence gives the gradients automatic differentiation gives, "
            "zeros and negative alphas included.")


def _l12_dense_outputs(W, B, C, u):
    """Outputs y_t = C h_t of h_t = W h_{t-1} + B u_t from h_0 = 0 (the checker's loop)."""
    h, out = _l12_np.zeros(W.shape[0]), []
    for u_t in u:
        h = W @ h + B @ u_t
        out.append(C @ h)
    return _l12_np.array(out)


def _l12_diagonal_outputs(lam, B, C, u):
    """Outputs Re(C z_t) of z_t = lam * z_{t-1} + B u_t from z_0 = 0."""
    z, out = _l12_np.zeros(len(lam), dtype=complex), []
    for u_t in u:
        z = lam * z + B @ u_t
        out.append((C @ z).real)
    return _l12_np.array(out)


def _l12_diagonal_cases(rng):
    fixed = _l12_np.random.default_rng(2123)
    turn = 0.6
    cases = [(_l12_np.array([[0.7]]), fixed.normal(size=(1, 1)), fixed.normal(size=(1, 1))),
             # a rotation: complex eigenvalues, a matrix that is not symmetric
             (0.9 * _l12_np.array([[_l12_np.cos(turn), -_l12_np.sin(turn)],
                                   [_l12_np.sin(turn), _l12_np.cos(turn)]]),
              fixed.normal(size=(2, 1)), fixed.normal(size=(1, 2))),
             # a repeated eigenvalue
             (0.5 * _l12_np.eye(3), fixed.normal(size=(3, 2)), fixed.normal(size=(2, 3)))]
    sizes = [(fixed, 5, 3, 2), (fixed, 8, 2, 4)] + \
        [(rng, int(rng.integers(1, 10)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
         for _ in range(3)]
    for g, H, E, F in sizes:
        while True:  # a well-conditioned eigenbasis, so rounding stays small
            W = g.normal(size=(H, H)) * 0.9 / _l12_np.sqrt(H)
            if _l12_np.linalg.cond(_l12_np.linalg.eig(W)[1]) < 1e4:
                break
        cases.append((W, g.normal(size=(H, E)), g.normal(size=(F, H))))
    return cases


def _l12_complex_array(value, shape, what):
    if hasattr(value, "detach"):
        value = value.detach().numpy()
    value = _l12_np.asarray(value)
    _l12_require(value.shape == shape, (
        f"{what} must have shape {shape}; got {value.shape}."
        + (" lam is the diagonal of the transition: a vector, not a matrix."
           if what == "lam" and value.ndim == 2 else "")))
    _l12_require(value.dtype.kind in "fciu", f"{what} must hold numbers.")
    _l12_require(bool(_l12_np.all(_l12_np.isfinite(value))), f"{what} contains NaN or inf.")
    return value.astype(complex)


def check_diagonal_form(fn) -> None:
    """Exercise 12.23: ``fn(W, B, C)`` -> ``(lam, B_diag, C_diag)`` such that the diagonal
    recurrence z_t = lam * z_{t-1} + B_diag u_t, read out as Re(C_diag z_t), has the
    outputs C h_t of h_t = W h_{t-1} + B u_t (both from 0), for every input sequence."""
    rng = _l12_unseen_rng()
    for W, B, C in _l12_diagonal_cases(rng):
        H, E, F = W.shape[0], B.shape[1], C.shape[0]
        u = rng.normal(size=(40, E))
        ref = _l12_dense_outputs(W, B, C, u)
        passed = (W.copy(), B.copy(), C.copy())
        with _l12_disabled(fn, *_L12_SCANS):
            out = fn(*passed)
        _unchanged({"W": W, "B": B, "C": C},
                   {"W": passed[0], "B": passed[1], "C": passed[2]})
        _l12_require(isinstance(out, tuple) and len(out) == 3,
                     "return a tuple (lam, B_diag, C_diag).")
        lam = _l12_complex_array(out[0], (H,), "lam")
        B_d = _l12_complex_array(out[1], (H, E), "B_diag")
        C_d = _l12_complex_array(out[2], (F, H), "C_diag")
        got = _l12_diagonal_outputs(lam, B_d, C_d, u)
        tol = 1e-8 * (1 + _l12_np.abs(ref).max())
        if _l12_close(got, ref, tol):
            continue
        real_eigs = bool(_l12_np.all(_l12_np.abs(_l12_np.linalg.eigvals(W).imag) < 1e-12))
        _l12_require(real_eigs or _l12_np.abs(lam.imag).max() > 1e-12, (
            f"this W (H = {H}) has complex eigenvalues (it rotates the state), and your lam "
            f"is real: keep lam, B_diag and C_diag complex; only the output is real."))
        _l12_require(_l12_close(got[:1], ref[:1], tol), (
            f"the outputs differ from the dense layer's already at step 1 (H = {H}), where "
            f"y = C B u: write the recurrence obeyed by z = P^(-1) h, then read off what "
            f"input z receives and how y is obtained from z."))
        _l12_require(False, (
            f"the first output is right but later ones are not (H = {H}): lam must hold the "
            f"eigenvalues of W itself (a routine for symmetric matrices reads only one "
            f"triangle of W), in the order of the eigenvectors used for B_diag and C_diag."))
    _l12_ok("a dense linear recurrence is a diagonal one in the eigenbasis, inputs and "
            "read-out included.")
