"""Checkers for the exercises of chapter 11 (Deep RNNs).

Each checker computes its expected values first (torch's own parameter count, torch
autograd on an independent float64 implementation of the deep transition), then runs
the answer with the references that would compute the answer for it disabled, on fixed
cases and on cases drawn afresh from :func:`companion.exercises.unseen_rng`.
"""

from __future__ import annotations

import numpy as np

from companion.exercises import TORCH_AUTOGRAD, DelegationError
from companion.exercises import existing as _existing
from companion.exercises import ok as _ok
from companion.exercises import references_disabled
from companion.exercises import torch_refused as _torch_refused
from companion.exercises import require as _require
from companion.exercises import unseen_rng

__all__ = ["check_stacked_lstm_params", "check_deep_transition_backward", "check_path_length"]

_MODULES_THAT_COUNT = (
    "torch.nn.LSTM", "torch.nn.modules.rnn.LSTM", "torch.nn.LSTMCell",
    "torch.nn.modules.rnn.LSTMCell", "torch.nn.RNNBase", "torch.nn.modules.rnn.RNNBase",
    # building any torch module (torch.nn.modules.LSTM, an RNN or GRU whose count is a
    # multiple of the LSTM's, a Linear per gate) counts for the answer: all are refused
    "torch.nn.Module.__init__",
    "companion.nn.stacked.StackedRNN", "companion.nn.stacked.Tagger",
    "companion.nn.stacked.count_parameters", "companion.nn.cells.LSTMCell",
    "companion.nn.cells.make_cell",
)


def check_stacked_lstm_params(fn) -> None:
    """Exercise 11.1: ``fn(D, H, num_layers, bidirectional)`` = torch.nn.LSTM's count,
    as a formula: torch's LSTM modules and the package's layers are disabled during
    the call."""
    import torch

    rng = unseen_rng()
    cases = [(1, 1, 1, False), (3, 4, 1, True), (5, 2, 2, False), (2, 3, 3, True),
             (7, 16, 4, True)]
    cases += [(int(rng.integers(1, 60)), int(rng.integers(1, 70)), int(rng.integers(1, 6)),
               bool(bi)) for bi in (False, True, rng.integers(2))]
    for D, H, L, bi in cases:
        expected = sum(p.numel() for p in torch.nn.LSTM(D, H, L, bidirectional=bi).parameters())
        try:
            with references_disabled(fn, *_MODULES_THAT_COUNT):
                got = fn(D, H, L, bi)
        except DelegationError as refused:
            raise DelegationError(
                f"{refused} Building a module and counting its parameters is not a formula: "
                f"count the weights of each layer from D, H and the number of directions."
            ) from None
        _require(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                 f"return an integer (a number of parameters); got {type(got).__name__}.")
        _require(int(got) == expected, (
            f"D={D}, H={H}, num_layers={L}, bidirectional={bi}: your count ({got}) is off. "
            "Four gate blocks, two biases each; the first layer reads D inputs, a layer "
            "above reads the concatenated output of the layer below, whose width depends "
            "on the number of directions."))
    _ok("your formula matches torch.nn.LSTM for every depth, width and direction tried.")


# --- Exercise 11.2: backpropagation through time in a deep-transition RNN -------------

_GRADIENT_REFERENCES = _existing(
    *TORCH_AUTOGRAD,
    "companion.scratch.bptt.rnn_step_backward", "companion.scratch.bptt.hidden_backward",
    "companion.scratch.bptt._hidden_backward",
    "companion.scratch.bptt.rnn_backward", "companion.scratch.gradcheck.numerical_gradient",
    "companion.nn.stacked.DeepTransition", "companion.exercises.ch11._dt_autograd",
)
_NAMES = ("U", "W", "b", "M", "m", "h0")


def _unchanged(before: dict, after: dict) -> None:
    for name, value in before.items():
        _require(np.array_equal(value, after[name]), (
            f"your function changed its argument {name} in place. Leave the inputs as they "
            f"are (work on copies, e.g. carry = carry + ..., not carry += ... on an input)."))


def _dt_autograd(x, h0, U, W, b, M, m, dH, *, through_time: bool = True) -> dict:
    """Gradients of sum_t <dH[:, t], h^(t)> by torch autograd (float64), computed from
    the equations, not from the package. ``through_time=False`` cuts the recurrent
    path (a typical wrong answer, to name it in the hint)."""
    import torch

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in zip(_NAMES, (U, W, b, M, m, h0))}
    xs = torch.tensor(x, dtype=torch.float64)
    h, loss = t["h0"], 0.0
    for step in range(xs.shape[1]):
        prev = h.detach() if (step > 0 and not through_time) else h
        a = torch.tanh(xs[:, step] @ t["U"].T + prev @ t["W"].T + t["b"])
        h = torch.tanh(a @ t["M"].T + t["m"])
        loss = loss + (torch.tensor(dH[:, step]) * h).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in _NAMES], allow_unused=True)
    return {k: (np.zeros(t[k].shape) if g is None else g.numpy()) for k, g in zip(_NAMES, grads)}


def _dt_case(rng, N, T, D, H):
    s = 1.0 / np.sqrt(H)
    return dict(x=rng.normal(size=(N, T, D)), h0=rng.normal(size=(N, H)) * 0.5,
                U=rng.normal(size=(H, D)) * s, W=rng.normal(size=(H, H)) * s,
                b=rng.normal(size=H) * 0.3, M=rng.normal(size=(H, H)) * s,
                m=rng.normal(size=H) * 0.3, dH=rng.normal(size=(N, T, H)))


def check_deep_transition_backward(fn) -> None:
    """Exercise 11.2: ``fn(x, h0, U, W, b, M, m, dH)`` -> dict of the gradients
    ``{"U", "W", "b", "M", "m", "h0"}`` of ``L = sum_t sum(dH[:, t] * h^(t))`` for the
    two-stage deep transition of equation (11.2) run over ``x`` (N, T, D) from ``h0``.

    Compared with torch autograd (float64) on fixed and unseen cases; autograd, torch's
    functional transforms and the package's backward passes are disabled during the call.
    """
    rng = unseen_rng()
    sizes = [(1, 1, 1, 1), (2, 1, 3, 4), (3, 5, 2, 3), (2, 6, 4, 2)]
    sizes += [(int(rng.integers(1, 5)), int(rng.integers(2, 9)), int(rng.integers(1, 5)),
               int(rng.integers(2, 7))) for _ in range(2)]
    fixed_rng = np.random.default_rng(112)
    for i, (N, T, D, H) in enumerate(sizes):
        case = _dt_case(fixed_rng if i < 4 else rng, N, T, D, H)
        args = [case[k] for k in ("x", "h0", "U", "W", "b", "M", "m", "dH")]
        ref = _dt_autograd(*args)
        passed = [a.copy() for a in args]
        with references_disabled(fn, *_GRADIENT_REFERENCES), _torch_refused(engine=True):
            got = fn(*passed)
        _unchanged(dict(zip(("x", "h0", "U", "W", "b", "M", "m", "dH"), args)),
                   dict(zip(("x", "h0", "U", "W", "b", "M", "m", "dH"), passed)))
        _require(isinstance(got, dict) and set(_NAMES) <= set(got), (
            "return a dict with the gradients of U, W, b, M, m and h0 under the keys "
            "'U', 'W', 'b', 'M', 'm', 'h0'."))
        arrays = {}
        for k in _NAMES:
            value = got[k]
            if hasattr(value, "detach"):
                value = value.detach().numpy()
            _require(np.asarray(value).dtype not in (np.float32, np.float16), (
                f"the gradient of {k} is in single (or half) precision: compute in float64, "
                f"the precision of the arguments."))
            arrays[k] = np.asarray(value, dtype=float)
            _require(arrays[k].shape == ref[k].shape,
                     f"the gradient of {k} must have {k}'s shape {ref[k].shape}; got "
                     f"{arrays[k].shape}.")
            _require(bool(np.all(np.isfinite(arrays[k]))),
                     f"the gradient of {k} holds NaN or inf values.")
        wrong = [k for k in _NAMES if not np.allclose(arrays[k], ref[k], rtol=0, atol=1e-12)]
        if not wrong:
            continue
        if T > 1:
            cut = _dt_autograd(*args, through_time=False)
            if all(np.allclose(arrays[k], cut[k], rtol=0, atol=1e-12) for k in _NAMES[:5]):
                _require(False, (
                    "your gradients use only dH[:, t] at step t. h^(t) also reaches the loss "
                    "through every later step: carry the gradient that arrives at h^(t-1) "
                    "back to the step before."))
        if "M" in wrong or "m" in wrong:
            _require(False, (
                "the outer stage's gradients (M, m) differ. The gradient at h^(t) is "
                "dH[:, t] plus what comes back from step t + 1; it crosses the OUTER tanh "
                "first; sum over the batch and over time; rows are examples (x @ U.T)."))
        if set(wrong) & {"U", "W", "b"}:
            _require(False, (
                f"the inner stage's gradients ({', '.join(k for k in wrong if k != 'h0')}) "
                "differ, while M and m are right. The gradient reaching the inner stage "
                "passes back through M and through the INNER tanh; W multiplies the state "
                "BEFORE the step."))
        _require(False, (
            "the gradient of h0 differs: it is what reaches the state before step 1, "
            "through the first step's inner stage."))
    _ok("your backward pass through the deep transition equals autograd on every case "
        "tried.")


def check_path_length(fn) -> None:
    """Exercise 11.3: ``fn(T, layers, transition_depth)`` = the number of tanh stages on a
    path from x^(1) to the top layer's state at step T (every path has the same count),
    in a stack of tanh RNN layers whose every step is a deep transition of
    ``transition_depth`` stages."""
    rng = unseen_rng()
    cases = [(1, 1, 1), (4, 1, 1), (1, 3, 1), (5, 2, 1), (3, 1, 3), (6, 4, 2)]
    cases += [(int(rng.integers(1, 200)), int(rng.integers(1, 12)), int(rng.integers(1, 6)))
              for _ in range(3)]
    for T, L, K in cases:
        got = fn(T, L, K)
        _require(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                 f"return an integer (a number of tanh stages); got {type(got).__name__}.")
        _require(int(got) == K * (L + T - 1), (
            f"T={T}, layers={L}, transition_depth={K}: {got} is not it. A path must enter "
            "layer 1, climb to the top layer and move from step 1 to step T; count the "
            "moves, and the tanh stages each move passes through."))
    _ok("your count is right: depth per step and depth in time add up along every path.")
