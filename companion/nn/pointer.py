"""Pointer networks (Vinyals et al., 2015) beside a vocabulary decoder, on sorting (chapter 12).

The task (:func:`sort_task`): a sequence of ``n`` distinct integers drawn from
``{0, ..., K-1}``; the answer is the same numbers in increasing order. Each number ``k``
is shown to the networks as ``K + 1`` features: its value ``k / (K - 1)`` and its one-hot
code. The value makes comparing easy, the one-hot code makes copying easy, so neither
model is starved of what its output needs. Both models below are GRU
encoder-decoders with the same additive attention; they differ only in their output:

``"pointer"``  the attention scores themselves are the output logits: step ``i`` emits a
               distribution over the ``n`` input *positions*, and the emitted number is the
               one at the chosen position. The output layer has no size of its own, so one
               model serves every length.
``"vocab"``    the attention weights form a context vector (the weighted sum of encoder
               states), and a linear layer on ``[d_i; c_i]`` gives logits over the ``K``
               *values*, as an attention seq2seq model would. It can only emit the ``K``
               values it was built for.

With ``inputs="value"`` each number is shown as its value alone (one feature), the only
thing a comparison needs; the numbers may then also be real (float tokens in ``[0, 1]``,
:func:`real_sort_task`, pointer output only), the setting where no vocabulary exists.

Both feed the decoder, at step ``i``, the features of the number emitted at step
``i - 1`` (the true one in training: teacher forcing), and at the first step a value of
``-1`` with an all-zero code. Both start the decoder from
the encoder's last state. All weights are drawn from U(-1/sqrt(H), 1/sqrt(H)), the shared
ones in the same order, so a pointer and a vocabulary model with the same seed start
with identical encoders, decoders and attention.

Every model carries a leading *member* axis ``M`` (as :mod:`companion.nn.ensemble`):
``seeds=[0, 1, 2]`` builds three independent models that train as one batched model,
each member with its own learning rate and its own data. ``seeds=[0]`` is one model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import check_callable, check_int_array, check_positive_int, check_rng
from companion.nn.ensemble import BatchedAdam, _member_vector, clip_per_member
from companion.nn.linear_recurrence import _check_flag, _check_seeds, _refuse_nonfinite

__all__ = ["GO_VALUE", "PointerSorter", "identity_baseline", "real_sort_task", "sort_scores",
           "sort_task", "train_sorter"]

#: The decoder's input at its first step (no value has been emitted yet).
GO_VALUE = -1.0


def sort_task(n_seq: int, length: int, K: int, rng: np.random.Generator, *, values=None,
              window=None):
    """``n_seq`` sequences of ``length`` distinct integers from ``{0..K-1}``, and their sort.

    Returns ``(tokens, order)``, both int64 ``(n_seq, length)``: ``tokens[r]`` is the
    input, ``order[r]`` the input positions in increasing order of value
    (``tokens[r, order[r]]`` is sorted). ``values``: optionally, the subset of
    ``{0..K-1}`` to draw from (default: all of it). ``window``: optionally, draw each
    sequence from its own run of ``window`` consecutive values of that subset (the run's
    start uniform), so that ``length / window`` is how densely the numbers fill the range
    they span.

    >>> tok, order = sort_task(2, 4, 10, np.random.default_rng(0))
    >>> bool(np.all(np.diff(np.take_along_axis(tok, order, 1), axis=1) > 0))
    True
    """
    n_seq = check_positive_int("n_seq", n_seq)
    length = check_positive_int("length", length)
    K = check_positive_int("K", K)
    pool = np.arange(K) if values is None else np.unique(_check_values(values, K))
    if pool.size == 0 or pool.min() < 0 or pool.max() >= K:
        raise ValueError(f"values must be a non-empty subset of 0..{K - 1}; got {values!r}.")
    if length > pool.size:
        raise ValueError(f"length must be at most the number of values to draw from "
                         f"({pool.size}; the numbers are distinct); got length={length}. "
                         "Use a larger K or shorter sequences.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}. "
                        "Use np.random.default_rng(seed).")
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) \
                or not length <= window <= pool.size:
            raise ValueError(f"window must be an int between length={length} and the number "
                             f"of values to draw from ({pool.size}); got {window!r}.")
        start = rng.integers(0, pool.size - window + 1, size=(n_seq, 1))
        pick = np.argsort(rng.random((n_seq, int(window))), axis=1)[:, :length] + start
        tokens = pool[pick].astype(np.int64)
        return tokens, np.argsort(tokens, axis=1, kind="stable").astype(np.int64)
    tokens = pool[np.argsort(rng.random((n_seq, pool.size)), axis=1)[:, :length]]
    tokens = tokens.astype(np.int64)
    return tokens, np.argsort(tokens, axis=1, kind="stable").astype(np.int64)


def _check_values(values, K):
    """The subset of 0..K-1 to draw from, as int64 (floats refused: no truncation)."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise TypeError(f"values must be a 1-D list or array of ints in 0..{K - 1}; got "
                        f"{type(values).__name__} {values!r}.")
    arr = check_int_array("values", values, low=0, high=K)
    if arr.size == 0:
        raise ValueError(f"values must be a non-empty subset of 0..{K - 1}; got {values!r}.")
    return arr.astype(np.int64)


def _check_answer(tokens, order):
    """tokens (N, n) ints or reals and order (N, n), each row a permutation of 0..n-1."""
    if type(tokens).__module__.startswith("torch"):
        tokens = tokens.detach().cpu().numpy()
    if type(order).__module__.startswith("torch"):
        order = order.detach().cpu().numpy()
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iuf":
        raise TypeError(f"tokens must be an (N, n) array of numbers (ints from sort_task or "
                        f"reals from real_sort_task); got dtype {tokens.dtype}.")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be (N, n), one sequence per row; got shape "
                         f"{tokens.shape}.")
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must have at least one sequence and one number (N >= 1, "
                         f"n >= 1); got shape {tokens.shape}.")
    if tokens.dtype.kind == "f" and not np.all(np.isfinite(tokens)):
        raise ValueError("tokens must be finite; got NaN or infinity.")
    order = check_int_array("order", order, low=0, high=tokens.shape[1])
    if order.shape != tokens.shape:
        raise ValueError(f"order must have the shape of tokens {tokens.shape} (the input "
                         f"positions in increasing order of value); got {order.shape}.")
    if not np.array_equal(np.sort(order, axis=1),
                          np.broadcast_to(np.arange(tokens.shape[1]), order.shape)):
        raise ValueError("order must hold, in each row, every input position 0..n-1 once (a "
                         "permutation, as sort_task returns); got a row with a position "
                         "repeated. Sorted values instead of positions?")
    return tokens, order


def real_sort_task(n_seq: int, length: int, rng: np.random.Generator):
    """``n_seq`` sequences of ``length`` reals drawn uniformly from [0, 1), and their sort.

    Returns ``(values, order)``: float64 and int64 arrays ``(n_seq, length)`` with
    ``values[r, order[r]]`` increasing (the values are distinct with probability 1).
    Vinyals et al.'s setting: there is no finite set of answers to give a vocabulary.

    >>> x, order = real_sort_task(2, 4, np.random.default_rng(0))
    >>> bool(np.all(np.diff(np.take_along_axis(x, order, 1), axis=1) > 0))
    True
    """
    n_seq = check_positive_int("n_seq", n_seq)
    length = check_positive_int("length", length)
    check_rng("rng", rng)
    x = rng.random((n_seq, length))
    return x, np.argsort(x, axis=1, kind="stable").astype(np.int64)


def identity_baseline(tokens, order):
    """Scores of the trivial answer 'the input as it came': (exact match, per position)."""
    tokens, order = _check_answer(tokens, order)
    target = np.take_along_axis(tokens, order, 1)
    hit = tokens == target
    return float(hit.all(axis=1).mean()), float(hit.mean())


def sort_scores(pred_tokens, tokens, order):
    """(exact match, per-position accuracy) of emitted numbers against the sorted input.

    ``pred_tokens`` (..., N, n) are the numbers emitted (not positions); a leading member
    axis is allowed and gives one score per member (arrays of shape (M,)).
    """
    tokens, order = _check_answer(tokens, order)
    if type(pred_tokens).__module__.startswith("torch"):
        pred_tokens = pred_tokens.detach().cpu().numpy()
    pred = np.asarray(pred_tokens)
    target = np.take_along_axis(tokens, order, 1)
    if pred.shape[-2:] != target.shape or pred.ndim > 3:
        raise ValueError(f"pred_tokens must end with the shape of tokens {target.shape}; "
                         f"got {pred.shape}.")
    want = "f" if tokens.dtype.kind == "f" else "iu"
    if pred.dtype.kind not in want:
        raise TypeError(f"pred_tokens must hold the numbers emitted, of the kind of tokens "
                        f"({tokens.dtype}); got dtype {pred.dtype}. Pass the output of "
                        f"model.decode(...) (numbers, not positions or logits).")
    hit = pred == target
    return hit.all(axis=-1).mean(axis=-1), hit.mean(axis=(-1, -2))


class PointerSorter(nn.Module):
    """``M`` GRU encoder-decoders with additive attention, output ``"pointer"`` or ``"vocab"``.

    Parameters
    ----------
    hidden_size : H, the size of encoder and decoder states and of the attention layer.
    K : the number of distinct values (inputs are ``k / (K - 1)``); the vocabulary
        model's output size.
    output : ``"pointer"`` or ``"vocab"`` (module docstring).
    inputs : ``"value+code"`` (default: the value and the one-hot code, ``K + 1``
        features) or ``"value"`` (the value alone, one feature; real-valued tokens are
        then accepted by the pointer).
    seeds : one non-negative int per member.
    dtype : ``torch.float32`` (default) or ``torch.float64``.

    Attention (Bahdanau et al.'s additive form, as Vinyals et al. use it): with encoder
    states ``e_j`` and decoder state ``d_i``,
    ``u_ij = v . tanh(W1 e_j + W2 d_i)``. The pointer emits ``softmax_j(u_ij)``; the
    vocabulary model forms ``c_i = sum_j softmax_j(u_ij) e_j`` and emits
    ``softmax(V [d_i; c_i] + c)``.
    """

    def __init__(self, hidden_size: int, K: int, *, output: str = "pointer", seeds=(0,),
                 dtype=torch.float32, inputs: str = "value+code"):
        super().__init__()
        if output not in ("pointer", "vocab"):
            raise ValueError(f"output must be 'pointer' or 'vocab'; got {output!r}.")
        if inputs not in ("value+code", "value"):
            raise ValueError(f"inputs must be 'value+code' or 'value'; got {inputs!r}.")
        self.inputs = inputs
        H = self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.K = check_positive_int("K", K, minimum=2)
        self.output = output
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            raise ValueError("seeds must be a non-empty list of ints, one per member; "
                             f"got {seeds!r}. Use seeds=[0] for one model.")
        self.seeds = _check_seeds(seeds)
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        D = self.input_size = self.K + 1 if inputs == "value+code" else 1
        shapes = {"enc_w_ih": (3 * H, D), "enc_w_hh": (3 * H, H), "enc_b_ih": (3 * H,),
                  "enc_b_hh": (3 * H,), "dec_w_ih": (3 * H, D), "dec_w_hh": (3 * H, H),
                  "dec_b_ih": (3 * H,), "dec_b_hh": (3 * H,), "att_w1": (H, H),
                  "att_w2": (H, H), "att_v": (H,)}
        if output == "vocab":
            shapes.update(out_w=(self.K, 2 * H), out_b=(self.K,))
        bound = 1.0 / math.sqrt(H)
        members = []
        for s in self.seeds:
            g = torch.Generator().manual_seed(s)
            members.append({k: (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1)
                            * bound for k, shape in shapes.items()})
        for k in shapes:
            setattr(self, k, nn.Parameter(torch.stack([m[k] for m in members]).to(dtype)))

    @property
    def members(self) -> int:
        return len(self.seeds)

    def extra_repr(self) -> str:
        return (f"output={self.output!r}, inputs={self.inputs!r}, "
                f"hidden_size={self.hidden_size}, K={self.K}, members={self.members}")

    def parameter_count(self) -> int:
        """Trainable parameters of ONE member."""
        return sum(p[0].numel() for p in self.parameters())

    # -- pieces ---------------------------------------------------------------------------
    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., K + 1): the value ``k / (K - 1)`` then the one-hot code of each number;
        (..., 1) with ``inputs="value"`` (a real-valued token is its own value)."""
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"tokens must be a torch tensor of numbers; got "
                            f"{type(tokens).__name__}. Use torch.as_tensor(tokens, "
                            f"dtype=torch.int64).")
        if tokens.numel() == 0:
            raise ValueError(f"tokens must hold at least one number; got shape "
                             f"{tuple(tokens.shape)}.")
        if tokens.is_floating_point():
            if self.inputs != "value":
                raise TypeError("tokens must be int64 for a model with inputs='value+code'; "
                                "real-valued tokens need inputs='value' (they have no one-hot "
                                "code).")
            _refuse_nonfinite("tokens", tokens)
        elif tokens.dtype != torch.int64:
            raise TypeError(f"tokens must be an int64 torch tensor of values in [0, K); got "
                            f"dtype {tokens.dtype}. Use tokens.long().")
        elif int(tokens.min()) < 0 or int(tokens.max()) >= self.K:
            raise ValueError(f"tokens must lie in [0, K={self.K}); got values in "
                             f"[{int(tokens.min())}, {int(tokens.max())}].")
        return self._features(tokens)

    def _features(self, tokens):
        dt = self.enc_w_hh.dtype
        if tokens.is_floating_point():
            return tokens.to(dt)[..., None]
        if self.inputs == "value":
            return tokens.to(dt)[..., None] / (self.K - 1)
        return torch.cat([tokens.to(dt)[..., None] / (self.K - 1),
                          torch.nn.functional.one_hot(tokens, self.K).to(dt)], -1)

    def start(self, shape):
        """The features fed at the first decoder step: value -1, all-zero code."""
        if isinstance(shape, (int, np.integer)) or not isinstance(shape, (tuple, list, torch.Size)) \
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                           and v >= 1 for v in shape):
            raise TypeError(f"shape must be a tuple of ints >= 1, e.g. (M, N) = (1, 1); got "
                            f"{shape!r}.")
        return self._start(shape)

    def _start(self, shape):
        go = torch.zeros(*shape, self.input_size, dtype=self.enc_w_hh.dtype)
        go[..., 0] = GO_VALUE
        return go

    @staticmethod
    def _gru(x, h, w_ih, w_hh, b_ih, b_hh):
        """torch's GRU step for every member: x (M, N, D), h (M, N, H)."""
        H = h.shape[-1]
        gi = torch.baddbmm(b_ih[:, None], x, w_ih.transpose(1, 2))
        gh = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2))
        rz = torch.sigmoid(gi[..., :2 * H] + gh[..., :2 * H])
        n = torch.tanh(gi[..., 2 * H:] + rz[..., :H] * gh[..., 2 * H:])
        z = rz[..., H:]
        return (1 - z) * n + z * h

    def _check_tokens(self, tokens):
        if isinstance(tokens, torch.Tensor) and tokens.is_floating_point():
            if self.inputs != "value" or self.output != "pointer":
                raise TypeError("tokens must be an int64 tensor for this model (output="
                                f"{self.output!r}, inputs={self.inputs!r}); real-valued tokens "
                                "need output='pointer' and inputs='value', since a vocabulary "
                                "has no class for a real number.")
            if tokens.dim() == 2:
                tokens = tokens.expand(self.members, *tokens.shape)
            if tokens.dim() != 3 or tokens.shape[0] != self.members or tokens.shape[2] < 1:
                raise ValueError(f"tokens must be (N, n) or (M={self.members}, N, n), n >= 1; "
                                 f"got {tuple(tokens.shape)}.")
            if tokens.shape[1] == 0:
                raise ValueError(f"tokens must have at least one sequence (N >= 1); got shape "
                                 f"{tuple(tokens.shape)}.")
            if not bool(torch.isfinite(tokens).all()):
                raise ValueError("real-valued tokens must be finite.")
            return tokens
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64:
            raise TypeError("tokens must be an int64 torch tensor of values in [0, K); got "
                            f"{type(tokens).__name__} {getattr(tokens, 'dtype', '')}. Use "
                            "torch.as_tensor(tokens, dtype=torch.int64).")
        if tokens.dim() == 2:
            tokens = tokens.expand(self.members, *tokens.shape)
        if tokens.dim() != 3 or tokens.shape[0] != self.members or tokens.shape[2] < 1:
            raise ValueError(f"tokens must be (N, n) shared by all members or (M={self.members}"
                             f", N, n) one batch per member, n >= 1; got {tuple(tokens.shape)}.")
        if tokens.shape[1] == 0:
            raise ValueError(f"tokens must have at least one sequence (N >= 1); got shape "
                             f"{tuple(tokens.shape)}.")
        lo, hi = (int(v) for v in torch.aminmax(tokens))
        if lo < 0 or hi >= self.K:
            raise ValueError(f"tokens must lie in [0, K={self.K}); got values in "
                             f"[{lo}, {hi}].")
        return tokens

    def _check_order(self, order, tokens):
        """order (N, n) or (M, N, n) int64, each row a permutation of 0..n-1; expanded."""
        if not isinstance(order, torch.Tensor) or order.dtype != torch.int64:
            got = f"dtype {order.dtype}" if isinstance(order, torch.Tensor) else \
                type(order).__name__
            raise TypeError(f"order must be an int64 torch tensor of input positions (as "
                            f"sort_task returns); got {got}. Use torch.as_tensor(order, "
                            f"dtype=torch.int64).")
        if order.dim() == 2:
            order = order.expand(self.members, *order.shape)
        if tuple(order.shape) != tuple(tokens.shape):
            raise ValueError(f"order must have the shape of tokens, (N, n) = "
                             f"{tuple(tokens.shape[1:])} or (M, N, n) = {tuple(tokens.shape)}; "
                             f"got {tuple(order.shape)}.")
        n = tokens.shape[2]
        lo, hi = (int(v) for v in torch.aminmax(order))
        # n entries in [0, n) that hit every position are a permutation
        if lo < 0 or hi >= n or not bool(torch.zeros(order.shape, dtype=torch.bool)
                                         .scatter_(-1, order, True).all()):
            raise ValueError(f"order must hold, in each row, every input position 0..{n - 1} "
                             f"once (a permutation, as sort_task returns); got values in "
                             f"[{lo}, {hi}]. Sorted values instead of positions?")
        return order

    def encode(self, tokens):
        """Encoder states ``E`` (M, N, n, H) and their attention projection ``A E``, for
        ``tokens`` (N, n) shared by all members or (M, N, n)."""
        return self._encode(self._check_tokens(tokens))

    def _encode(self, tokens):
        x = self._features(tokens)  # (M, N, n, D)
        M, N, n, _ = x.shape
        h = x.new_zeros(M, N, self.hidden_size)
        states = []
        for t in range(n):
            h = self._gru(x[:, :, t], h, self.enc_w_ih, self.enc_w_hh, self.enc_b_ih,
                          self.enc_b_hh)
            states.append(h)
        E = torch.stack(states, dim=2)
        return E, torch.einsum("mnjh,mkh->mnjk", E, self.att_w1)

    def step(self, prev, d, E, E1):
        """One decoder step from the features ``prev`` of the last number emitted (M, N, D)
        and the state ``d`` (M, N, H): the new state and the logits (M, N, n) or (M, N, K)."""
        from companion.checks import check_tensor

        dtype = self.enc_w_hh.dtype
        dims = {"M": self.members}
        check_tensor("E", E, ("M", "N", "n", self.hidden_size), dims, dtype=dtype,
                     hint="The encoder states from model.encode(tokens)[0].")
        check_tensor("E1", E1, ("M", "N", "n", self.hidden_size), dims, dtype=dtype,
                     hint="The attention projection from model.encode(tokens)[1].")
        check_tensor("prev", prev, ("M", "N", self.input_size), dims, dtype=dtype,
                     hint="The features of the last number emitted (model.start((M, N)) at "
                          "the first step).")
        check_tensor("d", d, ("M", "N", self.hidden_size), dims, dtype=dtype,
                     hint="The decoder state (E[:, :, -1] at the first step).")
        if 0 in (dims["N"], dims["n"]):
            raise ValueError(f"E must hold at least one sequence and one position; got shape "
                             f"{tuple(E.shape)}.")
        return self._step(prev, d, E, E1)

    def _step(self, prev, d, E, E1):
        d = self._gru(prev, d, self.dec_w_ih, self.dec_w_hh, self.dec_b_ih,
                      self.dec_b_hh)
        q = torch.bmm(d, self.att_w2.transpose(1, 2))  # (M, N, H)
        u = torch.einsum("mnjh,mh->mnj", torch.tanh(E1 + q[:, :, None]), self.att_v)
        if self.output == "pointer":
            return d, u
        a = torch.softmax(u, dim=-1)
        c = torch.einsum("mnj,mnjh->mnh", a, E)
        logits = torch.baddbmm(self.out_b[:, None], torch.cat([d, c], -1),
                               self.out_w.transpose(1, 2))
        return d, logits

    # -- training and decoding -----------------------------------------------------------
    def forward(self, tokens, order):
        """Teacher-forced logits (M, N, n, n or K) for inputs ``tokens`` and answer ``order``."""
        tokens = self._check_tokens(tokens)
        return self._forward(tokens, self._check_order(order, tokens))

    def _forward(self, tokens, order):
        E, E1 = self._encode(tokens)
        vals = self._features(torch.gather(tokens, 2, order))  # the answer, fed back
        d = E[:, :, -1]
        prev = self._start(tokens.shape[:2])
        out = []
        for i in range(tokens.shape[2]):
            d, logits = self._step(prev, d, E, E1)
            out.append(logits)
            prev = vals[:, :, i]
        return torch.stack(out, dim=2)

    def loss(self, tokens, order):
        """Each member's mean cross-entropy per output step, shape (M,)."""
        tokens = self._check_tokens(tokens)
        order = self._check_order(order, tokens)
        logits = self._forward(tokens, order)
        target = order if self.output == "pointer" else torch.gather(tokens, 2, order)
        logp = torch.log_softmax(logits, dim=-1)
        return -torch.gather(logp, 3, target[..., None])[..., 0].mean(dim=(1, 2))

    @torch.no_grad()
    def decode(self, tokens, *, mask_chosen: bool = False):
        """Greedy decoding: the numbers emitted, int64 (M, N, n), fed back step by step.

        ``mask_chosen`` (pointer only) forbids pointing twice at the same position.
        """
        tokens = self._check_tokens(tokens)
        _check_flag("mask_chosen", mask_chosen)
        if mask_chosen and self.output != "pointer":
            raise ValueError("mask_chosen applies to output='pointer' only.")
        E, E1 = self._encode(tokens)
        d = E[:, :, -1]
        prev = self._start(tokens.shape[:2])
        chosen = torch.zeros(tokens.shape, dtype=torch.bool)
        out = []
        for _ in range(tokens.shape[2]):
            d, logits = self._step(prev, d, E, E1)
            if self.output == "pointer":
                if mask_chosen:
                    logits = logits.masked_fill(chosen, -math.inf)
                pos = logits.argmax(-1)
                chosen |= torch.nn.functional.one_hot(pos, tokens.shape[2]).bool()
                tok = torch.gather(tokens, 2, pos[..., None])[..., 0]
            else:
                tok = logits.argmax(-1)
            out.append(tok)
            prev = self._features(tok)
        return torch.stack(out, dim=2)


def train_sorter(model: PointerSorter, *, steps: int, lr, lengths=(5, 10), batch: int = 64,
                 clip_norm: float = 1.0, data_seeds=None, length_seed: int = 0, values=None,
                 sampler=None):
    """Train every member with Adam (own learning rate) on fresh sorting batches.

    Member ``m`` draws its batches from ``np.random.default_rng(1000 + data_seeds[m])``
    (default: its init seed), so members with the same seed see the same data. The length
    of each step's batch is drawn uniformly from ``lengths = (low, high)`` (inclusive) by
    ``np.random.default_rng(length_seed)``, shared by all members. Returns the training
    loss, array (steps, M); a member whose loss stops being finite is frozen (NaN after).
    ``values``: the numbers training draws from (default all K; see :func:`sort_task`).
    ``sampler``: instead, any ``callable(batch, length, rng) -> (tokens, order)`` that
    draws the problems (for example :func:`real_sort_task`, or :func:`sort_task` with a
    ``window`` through ``functools.partial``).
    """
    if not isinstance(model, PointerSorter):
        raise TypeError(f"model must be a PointerSorter; got {type(model).__name__}.")
    steps = check_positive_int("steps", steps)
    batch = check_positive_int("batch", batch)
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__len__") \
            or len(lengths) != 2 or not all(isinstance(v, (int, np.integer))
                                            and not isinstance(v, bool) for v in lengths):
        raise TypeError(f"lengths must be a pair of ints (low, high), e.g. (5, 10); got "
                        f"{lengths!r}.")
    lo, hi = (int(v) for v in lengths)
    if values is not None:
        values = _check_values(values, model.K).tolist()
    length_seed = check_positive_int("length_seed", length_seed, minimum=0)
    _member_vector("clip_norm", clip_norm, model.members, allow_inf=True)
    if sampler is not None and (values is not None or not callable(sampler)):
        raise ValueError("sampler must be a callable(batch, length, rng) -> (tokens, order), "
                         f"given without values; got sampler={sampler!r}, values={values!r}.")
    limit = math.inf if sampler is not None else (
        model.K if values is None else len(set(values)))
    if sampler is None:
        def sampler(b, n, r):
            return sort_task(b, n, model.K, r, values=values)
    if not 1 <= lo <= hi <= limit:
        raise ValueError(f"lengths must be (low, high) with 1 <= low <= high <= K={model.K}; "
                         f"got {lengths!r}.")
    M = model.members
    data_seeds = model.seeds if data_seeds is None else _check_seeds(data_seeds, "data_seeds")
    if len(data_seeds) != M:
        raise ValueError(f"data_seeds must have one seed per member ({M}); got "
                         f"{len(data_seeds)}.")
    rngs = {s: np.random.default_rng(1000 + s) for s in sorted(set(data_seeds))}
    len_rng = np.random.default_rng(length_seed)
    params = list(model.parameters())
    opt = BatchedAdam(params, lr)
    active = torch.ones(M, dtype=torch.bool)
    losses = np.full((steps, M), np.nan)
    for step in range(steps):
        n = int(len_rng.integers(lo, hi + 1))
        drawn = {s: sampler(batch, n, r) for s, r in rngs.items()}
        tok = torch.as_tensor(np.stack([drawn[s][0] for s in data_seeds]))
        order = torch.as_tensor(np.stack([drawn[s][1] for s in data_seeds]))
        opt.zero_grad()
        member_loss = model.loss(tok, order)
        ok = torch.isfinite(member_loss.detach()) & active
        torch.where(ok, member_loss, torch.zeros_like(member_loss)).sum().backward()
        norms = clip_per_member(params, clip_norm)
        active = ok & torch.isfinite(norms)
        losses[step] = np.where(active.numpy(), member_loss.detach().double().numpy(), np.nan)
        opt.step(active)
    return losses
