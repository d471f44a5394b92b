"""Checkers for the exercises of chapter 2 (Unfolding computational graphs).

Every checker computes its expected values with its own few lines of NumPy, outside the
answer's call, and tries the answer on fixed cases and on cases drawn afresh from
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

__all__ = ["check_edge_counts", "check_second_order", "check_all_states_closed_form",
           "check_dh_dw"]

_KEYS = ("W", "U", "V", "loss")

# Package functions (and torch's autograd) that evaluate or differentiate the recurrences
# of these exercises for the answer.
_RECURRENCE_REFERENCES = (
    "companion.scratch.recurrence.unroll",
    "companion.scratch.recurrence.unrolled_function",
    "companion.scratch.recurrence.linear_recurrence_closed_form",
    "companion.scratch.recurrence.rnn_hidden_states",
    "companion.scratch.scan.scan_loop",
    "companion.scratch.scan.blelloch_scan",
    "companion.scratch.scan.logspace_scan",
    "companion.exercises.ch02._all_states",
)
_GRADIENT_REFERENCES = (
    "companion.scratch.bptt.rnn_backward",
    "companion.scratch.bptt.hidden_backward",
    "companion.scratch.bptt.rnn_loss_and_grads",
    "companion.scratch.bptt.rnn_step_backward",
    "companion.scratch.gradcheck.numerical_gradient",
    "companion.scratch.gradcheck.check_gradients",
    "companion.scratch.rtrl.rtrl_loss_and_grads",
    "companion.exercises.ch02._dh_dw",
)
# Reverse mode (torch.func.grad and Tensor.backward go through the first two) and forward
# mode (dual numbers: torch.func.jvp and jacfwd make them with make_dual).
_TORCH_AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward",
                   "torch.autograd.functional.jacobian",
                   "torch.autograd.forward_ad.make_dual")



def _torch_references() -> tuple[str, ...]:
    return _TORCH_AUTOGRAD if importlib.util.find_spec("torch") is not None else ()


def check_edge_counts(fn) -> None:
    """Exercise 2.1: ``fn(tau, show_initial, with_input, with_output, with_loss)`` -> dict."""
    rng = unseen_rng()
    taus = [1, 2, 5] + [int(t) for t in rng.integers(3, 400, size=4)]
    drawings = [(s, i, o, l) for s in (True, False) for i in (True, False)
                for o in (True, False) for l in (True, False) if o or not l]
    for tau in taus:
        for show_initial, with_input, with_output, with_loss in drawings:
            expected = {"W": tau if show_initial else tau - 1,
                        "U": tau if with_input else 0,
                        "V": tau if with_output else 0,
                        "loss": tau if with_output and with_loss else 0}
            with references_disabled(fn, "companion.plots.graphs.unrolled_graph",
                                     "companion.plots.graphs.unfolding_figure"):
                got = fn(tau, show_initial, with_input, with_output, with_loss)
            _require(isinstance(got, dict) and set(got) == set(_KEYS), (
                f"return a dict with exactly the keys {sorted(_KEYS)}; got {got!r}."))
            _require(all(isinstance(got[k], (int, np.integer)) for k in _KEYS),
                     "each count must be an int.")
            wrong = [k for k in _KEYS if got[k] != expected[k]]
            drawing = (f"unrolled_graph({tau}, show_initial={show_initial}, with_input="
                       f"{with_input}, with_output={with_output}, with_loss={with_loss})")
            _require(not wrong, (
                f"for {drawing} your count of the {', '.join(wrong)} edges is wrong. Draw it "
                f"for a small tau and count each kind: which edge, if any, leaves h^(0)? "
                f"Which rows are missing when a part is switched off?"))
    _ok("your counts match the drawn graph for every tau and every drawing tried.")


def _tanh_pair(rng, H: int, D: int):
    W1, W2 = rng.normal(0, 0.6, (H, H)), rng.normal(0, 0.6, (H, H))
    U, b = rng.normal(size=(H, D)), rng.normal(0, 0.1, H)

    def f(h_prev, h_prev2, x):
        return np.tanh(W1 @ h_prev + W2 @ h_prev2 + U @ x + b)

    return f


def check_second_order(fn) -> None:
    """Exercise 2.2: ``fn(f, h_minus1, h0, xs)`` -> (tau, H) states h^(1..tau) of
    h^(t) = f(h^(t-1), h^(t-2), x^(t))."""
    rng = unseen_rng()
    cases = [(4, 2, 1), (4, 2, 2), (3, 1, 9)]
    cases += [(int(rng.integers(1, 7)), int(rng.integers(1, 4)), int(rng.integers(1, 25)))
              for _ in range(6)]
    for H, D, tau in cases:
        f = _tanh_pair(rng, H, D)
        h_minus1, h0 = rng.normal(size=H), rng.normal(size=H)
        xs = rng.normal(size=(tau, D))
        expected, older, newer = [], h_minus1, h0
        for x in xs:
            older, newer = newer, f(newer, older, x)
            expected.append(newer)
        expected = np.array(expected)
        passed = (h_minus1.copy(), h0.copy(), xs.copy())
        with references_disabled(fn, "companion.scratch.longterm.skip_hidden_states"):
            got = fn(f, *passed)
        for name, original, after in zip(("h_minus1", "h0", "xs"), (h_minus1, h0, xs), passed):
            _unchanged(original, after, name)
        got = _finite(got, "your states")
        _require(got.shape == (tau, H), (
            f"return the states h^(1), ..., h^(tau) stacked, shape (tau, H) = ({tau}, {H}); "
            f"got {got.shape}. Leave out h^(-1) and h^(0), and keep only the h^(t) half of "
            f"a stacked state."))
        if tau >= 2 and np.allclose(got[0], expected[0]) and not np.allclose(got, expected):
            _require(False, (
                "your first state is right but later ones are not: after each step the new "
                "state becomes h^(t-1) and the old h^(t-1) becomes h^(t-2). Is the stacked "
                "state shifted in the right order?"))
        _require(np.allclose(got, expected, rtol=1e-10, atol=1e-12), (
            f"for H={H}, tau={tau} your states differ from the recurrence. f takes "
            f"(h^(t-1), h^(t-2), x^(t)) in this order, and the first step reads h^(0) as "
            f"h^(t-1) and h^(-1) as h^(t-2)."))
    _ok("your first-order rewriting reproduces the second-order recurrence.")


def _all_states(w: float, u: float, xs: np.ndarray, h0: float) -> np.ndarray:
    out, h = [], h0
    for x in xs:
        h = w * h + u * x
        out.append(h)
    return np.array(out)


def check_all_states_closed_form(fn) -> None:
    """Exercise 2.3: ``fn(w, u, xs, h0)`` -> (tau,) array h^(1..tau) of h = w h + u x,
    from the closed form, without running the recurrence."""
    rng = unseen_rng()
    cases = [(0.5, 1.0, np.array([1.0, 2.0, 3.0]), 0.0), (1.0, 2.0, np.ones(6), -1.0),
             (-0.9, 0.3, rng.normal(size=9), 0.7), (1.1, -1.0, rng.normal(size=15), 0.2),
             (0.0, 1.5, rng.normal(size=5), 4.0), (0.8, 1.0, np.array([2.0]), 1.0)]
    for _ in range(12):
        cases.append((float(rng.uniform(-1.15, 1.15)), float(rng.normal()),
                      rng.normal(size=int(rng.integers(1, 30))), float(rng.normal())))
    for w, u, xs, h0 in cases:
        expected = _all_states(w, u, xs, h0)
        passed = xs.copy()
        with references_disabled(fn, *_RECURRENCE_REFERENCES):
            got = fn(w, u, passed, h0)
        _unchanged(xs, passed, "xs")
        got = _finite(got, "your states")
        _require(got.shape == (len(xs),), (
            f"return one state per input, h^(1), ..., h^(tau): shape ({len(xs)},); got "
            f"{got.shape}."))
        if len(xs) > 1 and np.allclose(got[::-1], expected) and not np.allclose(got, expected):
            _require(False, "your states come out in reverse order of time.")
        _require(np.allclose(got, expected, rtol=1e-9, atol=1e-12), (
            f"for w={w:.3g}, u={u:.3g}, tau={len(xs)} your states disagree with the "
            f"recurrence. At time t the input x^(k) (k <= t) has age t - k and weight "
            f"u * w**(t - k), inputs after t have weight 0, and h0 gets w**t. What does "
            f"w = 0 give for a weight of age 0?"))
    _ok("your closed form gives every state of the recurrence at once.")


def _dh_dw(w: float, xs: np.ndarray, h0: float) -> float:
    """Forward mode: g(t) = d h(t) / d w = (1 - h(t)^2) (h(t-1) + w g(t-1)), exact."""
    h, g = h0, 0.0
    for x in xs:
        h_new = np.tanh(w * h + x)
        g = (1 - h_new ** 2) * (h + w * g)
        h = h_new
    return float(g)


def check_dh_dw(fn) -> None:
    """Exercise 2.4: d h(tau) / d w for h(t) = tanh(w h(t-1) + x(t)), exact."""
    rng = unseen_rng()
    cases = [(0.9, np.array([0.5]), 0.3), (-1.2, np.array([1.0, -1.0, 0.5]), 0.0)]
    for _ in range(10):
        cases.append((float(rng.uniform(-1.5, 1.5)),
                      rng.normal(size=int(rng.integers(1, 25))), float(rng.normal())))
    for w, xs, h0 in cases:
        expected = _dh_dw(w, xs, h0)
        passed = xs.copy()
        with references_disabled(fn, *_GRADIENT_REFERENCES, *_torch_references()):
            got = fn(w, passed, h0)
        _unchanged(xs, passed, "xs")
        got = _finite(got, "your derivative")
        _require(got.size == 1, f"return one number; got an array of shape {got.shape}.")
        got = float(got.reshape(()))
        _require(np.isclose(got, expected, rtol=1e-8, atol=1e-12), (
            f"for w={w:.3f}, tau={len(xs)} your derivative is not d h(tau) / d w. Did you "
            f"include 1 - h**2 for every tanh on the way, and sum one term per step?"))
    _ok("your sum over the copies of w is the exact derivative.")
