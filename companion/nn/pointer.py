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

from companion.checks import check_positive_int
from companion.nn.ensemble import BatchedAdam, clip_per_member

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
    pool = np.arange(K) if values is None else np.unique(np.asarray(values, dtype=np.int64))
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
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator; got {type(rng).__name__}. "
                        "Use np.random.default_rng(seed).")
    x = rng.random((n_seq, length))
    return x, np.argsort(x, axis=1, kind="stable").astype(np.int64)


def identity_baseline(tokens, order):
    """Scores of the trivial answer 'the input as it came': (exact match, per position)."""
    tokens, order = np.asarray(tokens), np.asarray(order)
    target = np.take_along_axis(tokens, order, 1)
    hit = tokens == target
    return float(hit.all(axis=1).mean()), float(hit.mean())


def sort_scores(pred_tokens, tokens, order):
    """(exact match, per-position accuracy) of emitted numbers against the sorted input.

    ``pred_tokens`` (..., N, n) are the numbers emitted (not positions); a leading member
    axis is allowed and gives one score per member (arrays of shape (M,)).
    """
    pred = np.asarray(pred_tokens)
    target = np.take_along_axis(np.asarray(tokens), np.asarray(order), 1)
    if pred.shape[-2:] != target.shape:
        raise ValueError(f"pred_tokens must end with the shape of tokens {target.shape}; "
                         f"got {pred.shape}.")
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
        if isinstance(seeds, (int, np.integer)) or not list(seeds):
            raise ValueError("seeds must be a non-empty list of ints, one per member; "
                             f"got {seeds!r}. Use seeds=[0] for one model.")
        self.seeds = [int(s) for s in seeds]
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
        dt = self.enc_w_hh.dtype
        if tokens.is_floating_point():
            return tokens.to(dt)[..., None]
        if self.inputs == "value":
            return tokens.to(dt)[..., None] / (self.K - 1)
        return torch.cat([tokens.to(dt)[..., None] / (self.K - 1),
                          torch.nn.functional.one_hot(tokens, self.K).to(dt)], -1)

    def start(self, shape):
        """The features fed at the first decoder step: value -1, all-zero code."""
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
        if tokens.min() < 0 or tokens.max() >= self.K:
            raise ValueError(f"tokens must lie in [0, K={self.K}); got values in "
                             f"[{int(tokens.min())}, {int(tokens.max())}].")
        return tokens

    def encode(self, tokens):
        """Encoder states ``E`` (M, N, n, H) and their attention projection ``A E``, for
        ``tokens`` (N, n) shared by all members or (M, N, n)."""
        x = self.features(self._check_tokens(tokens))  # (M, N, n, D)
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
        order = order.expand(tokens.shape) if order.dim() == 2 else order
        E, E1 = self.encode(tokens)
        vals = self.features(torch.gather(tokens, 2, order))  # the answer, fed back
        d = E[:, :, -1]
        prev = self.start(tokens.shape[:2])
        out = []
        for i in range(tokens.shape[2]):
            d, logits = self.step(prev, d, E, E1)
            out.append(logits)
            prev = vals[:, :, i]
        return torch.stack(out, dim=2)

    def loss(self, tokens, order):
        """Each member's mean cross-entropy per output step, shape (M,)."""
        tokens = self._check_tokens(tokens)
        order = order.expand(tokens.shape) if order.dim() == 2 else order
        logits = self(tokens, order)
        target = order if self.output == "pointer" else torch.gather(tokens, 2, order)
        logp = torch.log_softmax(logits, dim=-1)
        return -torch.gather(logp, 3, target[..., None])[..., 0].mean(dim=(1, 2))

    @torch.no_grad()
    def decode(self, tokens, *, mask_chosen: bool = False):
        """Greedy decoding: the numbers emitted, int64 (M, N, n), fed back step by step.

        ``mask_chosen`` (pointer only) forbids pointing twice at the same position.
        """
        tokens = self._check_tokens(tokens)
        if mask_chosen and self.output != "pointer":
            raise ValueError("mask_chosen applies to output='pointer' only.")
        E, E1 = self.encode(tokens)
        d = E[:, :, -1]
        prev = self.start(tokens.shape[:2])
        chosen = torch.zeros(tokens.shape, dtype=torch.bool)
        out = []
        for _ in range(tokens.shape[2]):
            d, logits = self.step(prev, d, E, E1)
            if self.output == "pointer":
                if mask_chosen:
                    logits = logits.masked_fill(chosen, -math.inf)
                pos = logits.argmax(-1)
                chosen |= torch.nn.functional.one_hot(pos, tokens.shape[2]).bool()
                tok = torch.gather(tokens, 2, pos[..., None])[..., 0]
            else:
                tok = logits.argmax(-1)
            out.append(tok)
            prev = self.features(tok)
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
    lo, hi = (int(v) for v in lengths)
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
    data_seeds = model.seeds if data_seeds is None else [int(s) for s in data_seeds]
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
