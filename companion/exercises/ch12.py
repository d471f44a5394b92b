"""Checkers for the exercises of chapter 12 (Beyond), all three of its pages.

The file is shared: each section's checkers sit in their own block below, with their own
imports and helpers, in the order the blocks were added (append only). Every block adds
its names to ``__all__``.
"""

from __future__ import annotations

__all__: list[str] = []


# ---------------------------------------------------------------- O12: learning online
# (section ch12_online: Exercises 12.11-12.13). Self-contained: its own imports and helpers.
import numpy as np  # noqa: E402

from companion.exercises import ok as _ok  # noqa: E402
from companion.exercises import require as _require  # noqa: E402

__all__ += ["check_rtrl_costs", "check_rtrl_h0_gradient", "check_uoro_step"]  # noqa: F405


def _o12_close(got, ref) -> bool:
    got = np.asarray(got, dtype=float)
    return got.shape == np.shape(ref) and bool(np.all(np.isfinite(got))) \
        and np.allclose(got, ref, atol=1e-10, rtol=0)


def _rtrl_problem(D, H, seed):  # parameters, a random J, x_t and h_prev
    from companion.scratch.init import init_rnn_params

    rng = np.random.default_rng(seed)
    p = init_rnn_params(D, H, 2, rng, recurrent_gain=1.2)
    p["b"] = rng.normal(0.0, 0.3, size=H)
    P = H * D + H * H + H
    return p, rng.normal(size=(H, P)) * 0.3, rng.normal(size=D), np.tanh(rng.normal(size=H))


def check_rtrl_h0_gradient(fn) -> None:
    """Exercise 12.11: ``fn(params, x, y, h0)`` -> dL/dh0 (H,), for one sequence, forwards."""
    from companion.scratch.bptt import rnn_loss_and_grads
    from companion.scratch.init import random_rnn_problem

    for T, D, H, K, seed in [(1, 1, 1, 2, 0), (4, 2, 3, 2, 1), (7, 3, 5, 4, 2)]:
        p, x, y, h0 = random_rnn_problem(1, T, D, H, K, np.random.default_rng(seed))
        ref = rnn_loss_and_grads(p, x, y, h0=h0)[1]["h0"][0]
        got = fn({k: v.copy() for k, v in p.items()}, x[0].copy(), y[0].copy(), h0[0].copy())
        got = np.asarray(got, dtype=float)
        _require(got.shape == (H,), f"return one gradient entry per hidden unit, shape "
                                    f"({H},); got {got.shape}.")
        if _o12_close(got, ref):
            continue
        _require(T > 1 or not _o12_close(got, ref * 0), "with one step, dL/dh0 is "
                 "K^(1)^T V^T (y_hat - onehot(y)) with K^(1) = diag(1 - h^2) W.")
        _require(False, f"dL/dh0 differs from BPTT's on a sequence of length {T}. Start "
                        f"from K = I (h0's influence on itself), update K <- diag(1 - h_t**2) "
                        f"W K after computing h_t, and add K^T V^T (y_hat - onehot(y_t)) "
                        f"at every step.")
    _ok("your forward-mode dL/dh0 equals BPTT's on every sequence tried.")


def check_rtrl_costs(fn) -> None:
    """Exercise 12.12: ``fn(D, H)`` -> (floats in J, multiply-adds of W @ J per step)."""
    for D, H in [(1, 1), (2, 3), (4, 16), (10, 100), (64, 512)]:
        P = H * D + H * H + H
        out = fn(D, H)
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (floats, multiply_adds).")
        floats, madds = (int(v) for v in out)
        _require(floats == H * P, f"the float count is wrong at D={D}, H={H}: J has one row "
                                  f"per hidden unit and one column per recurrent parameter.")
        _require(madds == H * H * P, f"the multiply-add count is wrong at D={D}, H={H}: "
                                     f"an (a, b) @ (b, c) product costs a*b*c.")
    _ok("both counts are right for every size tried.")


def check_uoro_step(fn) -> None:
    """Exercise 12.13: ``fn(h_tilde, theta_tilde, x_t, h_prev, h_t, W, nu)``, one sequence."""
    from companion.scratch.rtrl import _uoro_step

    for D, H, seed in [(1, 2, 0), (2, 3, 1), (3, 4, 2)]:
        p, _, x_t, h_prev = _rtrl_problem(D, H, seed)
        rng = np.random.default_rng(seed + 10)
        h_t = np.tanh(p["U"] @ x_t + p["W"] @ h_prev + p["b"])
        ht = rng.normal(size=H)
        tt = rng.normal(size=H * D + H * H + H)
        nu = rng.choice([-1.0, 1.0], size=H)
        ref = _uoro_step(ht[None], tt[None], x_t[None], h_prev[None], h_t[None], p["W"],
                         nu[None], 1e-7)
        out = fn(ht.copy(), tt.copy(), x_t.copy(), h_prev.copy(), h_t.copy(),
                 p["W"].copy(), nu.copy())
        _require(isinstance(out, tuple) and len(out) == 2,
                 "return a tuple (h_tilde_new, theta_tilde_new).")
        got_h, got_t = (np.asarray(a, dtype=float) for a in out)
        _require(got_h.shape == (H,) and got_t.shape == tt.shape,
                 "h_tilde stays (H,) and theta_tilde (P,).")
        ok_outer = _o12_close(np.outer(got_h, got_t), np.outer(ref[0][0], ref[1][0]))
        _require(ok_outer, "the rank-one product h_tilde theta_tilde^T is wrong. Build "
                           "Lambda W h_tilde and nu^T Lambda I-bar first "
                           "(Lambda = diag(1 - h_t**2)), then the two scale factors from "
                           "their norms.")
        _require(_o12_close(got_h, ref[0][0]) and _o12_close(got_t, ref[1][0]),
                 "the product is right but the two factors are scaled differently: use "
                 "rho0 and rho1 exactly as the statement defines them.")
    _ok("your UORO step matches companion.scratch.rtrl, scale factors included.")


# ---------------------------------------------------------------- P12: pointers and zoneout
# (chapter page ch12_beyond: Exercises 12.1-12.4). Self-contained: its own imports and helpers.
import numpy as np  # noqa: E402

from companion.exercises import ok as _ok  # noqa: E402
from companion.exercises import require as _require  # noqa: E402

__all__ += ["check_expected_zoneout_jacobian", "check_greedy_permutation",  # noqa: F405
            "check_pointer_distribution", "check_zoneout_update"]


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


def check_pointer_distribution(fn) -> None:
    """Exercise 12.1: ``fn(Hs, h_dec, A, B, w)`` -> (n,) probabilities over input positions."""
    for n, H, seed in [(1, 2, 0), (3, 4, 1), (7, 5, 2)]:
        rng = np.random.default_rng(seed)
        E, d = rng.normal(size=(n, H)), rng.normal(size=H)
        W1, W2, v = rng.normal(size=(H, H)), rng.normal(size=(H, H)), rng.normal(size=H)
        u = np.tanh(E @ W1.T + W2 @ d) @ v
        ref = np.exp(u - u.max()) / np.exp(u - u.max()).sum()
        got = _p12_array(fn(E.copy(), d.copy(), W1.copy(), W2.copy(), v.copy()), (n,),
                         "the distribution")
        _require(abs(got.sum() - 1) < 1e-9 and got.min() >= 0,
                 "return probabilities: non-negative and summing to 1 over the n positions "
                 "(a softmax over the scores e_j).")
        if not np.allclose(got, ref, atol=1e-10, rtol=0):
            swapped = np.tanh(E @ W2.T + W1 @ d) @ v
            ref2 = np.exp(swapped - swapped.max()) / np.exp(swapped - swapped.max()).sum()
            _require(not np.allclose(got, ref2, atol=1e-10), "A and B are swapped: A "
                     "projects the encoder states (the rows of Hs), B the decoder state.")
            _require(False, "the probabilities are wrong. Score each position j with "
                            "e_j = w . tanh(A h_j + B h_dec), then take the softmax over j.")
    _ok("your pointer distribution matches the reference for every size tried.")


def check_zoneout_update(fn) -> None:
    """Exercise 12.2: ``fn(h_prev, h_cand, zeta, keep=None)`` -> the new state."""
    rng = np.random.default_rng(0)
    h_prev, h_cand = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    keep = (rng.random((3, 5)) < 0.3).astype(float)
    got = _p12_array(fn(h_prev.copy(), h_cand.copy(), 0.3, keep.copy()), (3, 5),
                     "the training-mode state")
    _require(np.allclose(got, np.where(keep == 1, h_prev, h_cand), atol=1e-12),
             "in training mode, a unit whose keep entry is 1 holds its previous value and "
             "every other unit takes the candidate.")
    for z in (0.0, 0.3, 0.9):
        got = _p12_array(fn(h_prev.copy(), h_cand.copy(), z), (3, 5),
                         "the evaluation-mode state")
        _require(np.allclose(got, z * h_prev + (1 - z) * h_cand, atol=1e-12),
                 "in evaluation mode (keep=None) replace the random mask by its expected "
                 f"value; check your answer at zeta={z}.")
    _ok("training mode keeps exactly the masked units, evaluation mode uses the expectation.")


def check_greedy_permutation(fn) -> None:
    """Exercise 12.3: ``fn(scores)`` -> the positions chosen, each at most once."""
    rng = np.random.default_rng(3)
    cases = [np.array([[2.0, 1.0, 0.0], [3.0, 0.5, 0.1], [1.0, 2.0, 0.0]]),
             rng.normal(size=(6, 6)), np.zeros((1, 1))]
    for scores in cases:
        n = scores.shape[0]
        chosen, ref = np.zeros(n, bool), []
        for i in range(n):
            row = np.where(chosen, -np.inf, scores[i])
            ref.append(int(np.argmax(row)))
            chosen[ref[-1]] = True
        got = [int(g) for g in np.asarray(fn(scores.copy())).ravel()]
        _require(len(got) == n, f"return one position per output step ({n}); got {len(got)}.")
        _require(sorted(got) == list(range(n)), "some position is chosen twice: remove a "
                 "position from the candidates once it has been chosen.")
        _require(got == ref, "each step must take the highest-scoring position among those "
                             "not chosen yet, in order of the output steps.")
    _ok("every position is used once, the best remaining one at each step.")


def check_expected_zoneout_jacobian(fn) -> None:
    """Exercise 12.4: ``fn(W, h_cand, zeta)`` -> E[dh_t / dh_{t-1}] under zoneout (H, H)."""
    for H, z, seed in [(1, 0.5, 0), (3, 0.0, 1), (4, 0.2, 2), (5, 0.9, 3)]:
        rng = np.random.default_rng(seed)
        W = rng.normal(size=(H, H))
        h_cand = np.tanh(rng.normal(size=H))
        ref = z * np.eye(H) + (1 - z) * (1 - h_cand ** 2)[:, None] * W
        got = _p12_array(fn(W.copy(), h_cand.copy(), z), (H, H), "the Jacobian")
        if np.allclose(got, ref, atol=1e-12):
            continue
        _require(not np.allclose(got, (1 - h_cand ** 2)[None, :] * W * (1 - z)
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
from companion.exercises import require as _l12_require  # noqa: E402

__all__ += ["check_blelloch_counts", "check_diagonalised_states",  # noqa: F405
            "check_logspace_positive"]


def _l12_close(got, ref, tol) -> bool:
    got = _l12_np.asarray(got)
    return got.shape == ref.shape and bool(_l12_np.all(_l12_np.isfinite(got))) \
        and bool(_l12_np.all(_l12_np.abs(got - ref) <= tol))


def check_blelloch_counts(fn) -> None:
    """Exercise 12.21: ``fn(T)`` -> (combines, levels) of Blelloch's scan, T a power of 2."""
    from companion.scratch.scan import blelloch_scan

    for k in range(1, 16):
        T = 2 ** k
        got = fn(T)
        _l12_require(isinstance(got, tuple) and len(got) == 2,
                     "return a pair (combines, levels).")
        _, counts = blelloch_scan(_l12_np.ones((T, 1)), _l12_np.ones((T, 1)),
                                  return_counts=True)
        _l12_require(int(got[0]) == counts.combines,
                     f"the number of combines is wrong at T = {T}: count the up-sweep "
                     f"(every level halves the pairs) and the down-sweep separately; the "
                     f"down-sweep has no pair for the last position of each block.")
        _l12_require(int(got[1]) == counts.levels,
                     f"the number of levels is wrong at T = {T}: the up-sweep has one level "
                     f"per halving, and the down-sweep one fewer (its top level would "
                     f"combine nothing).")
    _l12_ok("your formulas give the work and the depth the scan counts, T = 2 to 32768.")


def check_logspace_positive(fn) -> None:
    """Exercise 12.22: ``fn(a, b)`` -> h for a in (0, 1], b > 0, in log space."""
    from companion.scratch.scan import scan_loop

    rng = _l12_np.random.default_rng(2122)
    for T, lo in [(1, 0.5), (7, 0.5), (3000, 0.3), (5000, 1e-200)]:
        a = rng.uniform(lo, 1.0, size=(T, 3))
        b = rng.uniform(0.01, 1.0, size=(T, 3))
        ref = scan_loop(a, b)
        with _l12_np.errstate(all="ignore"):
            got = fn(a, b)
        _l12_require(_l12_np.shape(got) == ref.shape, f"h must have the shape of b, "
                                                      f"{ref.shape}; got {_l12_np.shape(got)}.")
        _l12_require(_l12_np.all(_l12_np.isfinite(got)),
                     f"NaN or inf at T = {T}: do not form prod(a) or 1 / prod(a); keep "
                     f"everything as logarithms until the very last exp.")
        L = _l12_np.abs(_l12_np.cumsum(_l12_np.log(a), axis=0)).max()
        tol = 8 * _l12_np.finfo(float).eps * (T + L) * (1 + ref.max())
        _l12_require(_l12_close(got, ref, tol),
                     f"the states differ from the loop's at T = {T}: check which steps "
                     f"the cumulative sum of log a includes at step t (is t itself in?), "
                     f"and that it is added back before the last exp, not after.")
    _l12_ok("your log-space states equal the loop's to rounding error, even where "
            "prod(a) underflows.")


def check_diagonalised_states(fn) -> None:
    """Exercise 12.23: ``fn(W, u)`` -> real states of h_t = W h_{t-1} + u_t via the
    eigenbasis of W and an elementwise (complex) recurrence."""
    from companion.scratch.scan import scan_loop

    rng = _l12_np.random.default_rng(2123)
    for H, T in [(1, 5), (2, 9), (5, 40), (8, 100)]:
        W = rng.normal(size=(H, H)) * 0.9 / _l12_np.sqrt(H)
        u = rng.normal(size=(T, H))
        ref = scan_loop(_l12_np.broadcast_to(W, (T, H, H)).copy(), u)
        got = fn(W, u)
        _l12_require(_l12_np.shape(got) == ref.shape,
                     f"return the states as a (T, H) = {ref.shape} array; got "
                     f"{_l12_np.shape(got)}.")
        _l12_require(not _l12_np.iscomplexobj(got) or
                     _l12_np.abs(_l12_np.imag(got)).max() < 1e-9,
                     "the states of a real recurrence are real: go back to the original "
                     "basis with the eigenvector matrix and take the real part at the very "
                     "end.")
        _l12_require(_l12_close(_l12_np.real(got), ref, 1e-8 * (1 + _l12_np.abs(ref).max())),
                     f"the states differ from the loop's (H = {H}, T = {T}): transform the "
                     f"inputs with the inverse of the eigenvector matrix, run one scalar "
                     f"recurrence per eigenvalue, and transform back.")
    _l12_ok("a dense linear recurrence is a diagonal one in the eigenbasis.")
