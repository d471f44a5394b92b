"""Zoneout and recurrent dropout for a tanh RNN (chapter 12).

Both regularisers perturb the recurrent state of the cell of chapter 3,
``h~ = tanh(W_ih x + b_ih + W_hh h_prev + b_hh)``, during training only:

zoneout (Krueger et al., 2016)
    each unit, at each step and in each sequence, keeps its previous value with
    probability ``z`` instead of taking the new one:
    ``h = d * h_prev + (1 - d) * h~`` with ``d ~ Bernoulli(z)``. In evaluation the mask is
    replaced by its expectation, ``h = z * h_prev + (1 - z) * h~`` (as dropout does at
    test time, and as the code released with the paper does in evaluation mode).
recurrent dropout (variational, Gal and Ghahramani, 2016)
    the previous state is multiplied, where it enters ``W_hh``, by a mask
    ``m / (1 - p)``, ``m ~ Bernoulli(1 - p)`` drawn once per sequence and per unit and
    *kept for every step* of that sequence. In evaluation the mask is 1 (its expectation).
    Only the recurrent connection is dropped here, not the input or the read-out, so
    that it and zoneout act on the same thing: the state carried from step to step.

:class:`ZoneoutRNNCell` is one cell with ``torch.nn.RNNCell``'s parameter names (rate 0
of both gives exactly that cell). :class:`CharLMEnsemble` holds ``M`` character-level
language models (one-hot input, tanh RNN, linear read-out) with a leading member axis,
each with its own zoneout rate, dropout rate and seed, so that a whole sweep trains as
one batched model (as :mod:`companion.nn.ensemble`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import (
    check_callable,
    check_int_array,
    check_nonempty,
    check_positive_int,
    check_probability,
    check_real,
    check_tensor,
    check_token_tensor,
)
from companion.nn.ensemble import BatchedAdam, _member_vector, clip_per_member
from companion.nn.linear_recurrence import (
    _check_flag,
    _check_generator,
    _check_seeds,
    _refuse_nonfinite,
)

__all__ = ["CharLMEnsemble", "ZoneoutRNNCell", "regularised_step", "train_char_ensemble"]


def _check_keep_values(keep_mask):
    if not bool(((keep_mask == 0) | (keep_mask >= 1)).all()):
        raise ValueError("keep_mask must hold 0 (dropped) or the scale 1 / (1 - p) >= 1 "
                         "(kept); got values strictly between 0 and 1, or negative. Draw it "
                         "with dropout_mask(N), or scale a 0/1 mask by 1 / (1 - p).")


def regularised_step(gi, h, w_hh, b_hh, *, zoneout, keep_mask, training, generator=None):
    """One tanh-RNN step with zoneout and/or a recurrent-dropout mask.

    ``gi`` (..., N, H) is the input term ``W_ih x + b_ih``; ``h`` (..., N, H) the previous
    state; ``w_hh`` (..., H, H), ``b_hh`` (..., H) (a leading member axis is allowed);
    ``zoneout`` a number or a tensor broadcastable to ``h`` (one rate per member);
    ``keep_mask`` ``None`` or the scaled dropout mask applied to ``h`` where it enters
    ``w_hh`` (already divided by ``1 - p``). Returns the new state.
    """
    if not isinstance(gi, torch.Tensor) or not gi.is_floating_point() or gi.dim() < 2:
        check_tensor("gi", gi, ("N", "H"))  # raises: not a float tensor, or too few axes
    dims = {"H": gi.shape[-1], "N": gi.shape[-2]}
    lead = tuple(f"lead{i}" for i in range(gi.dim() - 2))
    check_tensor("gi", gi, lead + ("N", "H"), dims)
    check_tensor("h", h, lead + ("N", "H"), dims, dtype=gi.dtype,
                 hint="h is the previous state, one row per sequence, as gi.")
    check_nonempty("h", h, lead + ("N", "H"))
    if not isinstance(w_hh, torch.Tensor) or w_hh.dim() < 2:
        check_tensor("w_hh", w_hh, ("H", "H"), dims, dtype=gi.dtype)
    check_tensor("w_hh", w_hh, tuple(f"m{i}" for i in range(w_hh.dim() - 2)) + ("H", "H"),
                 dict(dims), dtype=gi.dtype)
    if not isinstance(b_hh, torch.Tensor) or b_hh.dim() < 1:
        check_tensor("b_hh", b_hh, ("H",), dims, dtype=gi.dtype)
    check_tensor("b_hh", b_hh, tuple(f"m{i}" for i in range(b_hh.dim() - 1)) + ("H",),
                 dict(dims), dtype=gi.dtype)
    if isinstance(zoneout, torch.Tensor):
        if not zoneout.is_floating_point():
            raise TypeError(f"zoneout must be a number in [0, 1) or a float tensor of rates; "
                            f"got dtype {zoneout.dtype}.")
        if zoneout.numel() and not bool(((zoneout >= 0) & (zoneout < 1)).all()):
            raise ValueError(f"zoneout rates must lie in [0, 1) (a rate of 1 freezes the "
                             f"state); got values from {float(zoneout.min())} to "
                             f"{float(zoneout.max())}.")
        try:
            torch.broadcast_shapes(zoneout.shape, h.shape)
        except RuntimeError:
            raise ValueError(f"zoneout must broadcast against h {tuple(h.shape)} (e.g. "
                             f"(M, 1, 1), one rate per member); got {tuple(zoneout.shape)}."
                             ) from None
    else:
        zoneout = check_real("zoneout", zoneout, low=0.0, high=1.0, high_open=True,
                             hint="A rate of 1 freezes the state.")
    if keep_mask is not None:
        if not isinstance(keep_mask, torch.Tensor):
            raise TypeError(f"keep_mask must be None or a float tensor (the scaled dropout "
                            f"mask, from dropout_mask); got {type(keep_mask).__name__}.")
        if keep_mask.dtype != h.dtype:
            raise TypeError(f"keep_mask must have the dtype of h ({h.dtype}); got "
                            f"{keep_mask.dtype}. A boolean mask needs scaling: "
                            f"keep.to(h.dtype) / (1 - p).")
        try:
            torch.broadcast_shapes(keep_mask.shape, h.shape)
        except RuntimeError:
            raise ValueError(f"keep_mask must broadcast against h {tuple(h.shape)}; got "
                             f"{tuple(keep_mask.shape)}.") from None
        _refuse_nonfinite("keep_mask", keep_mask)
        _check_keep_values(keep_mask)
    _check_flag("training", training)
    _check_generator("generator", generator)
    return _regularised_step(gi, h, w_hh, b_hh, zoneout=zoneout, keep_mask=keep_mask,
                             training=training, generator=generator)


def _regularised_step(gi, h, w_hh, b_hh, *, zoneout, keep_mask, training, generator=None):
    """:func:`regularised_step` without the checks (the step loops of this module)."""
    h_in = h if keep_mask is None else h * keep_mask
    cand = torch.tanh(gi + torch.matmul(h_in, w_hh.transpose(-1, -2)) + b_hh[..., None, :])
    if isinstance(zoneout, (int, float)) and zoneout == 0:
        return cand
    z = torch.as_tensor(zoneout, dtype=h.dtype)
    if training:
        keep = torch.rand(h.shape, generator=generator, dtype=h.dtype) < z
        return torch.where(keep, h, cand)
    return z * h + (1 - z) * cand


class ZoneoutRNNCell(nn.Module):
    """A tanh ``RNNCell`` with zoneout rate ``zoneout`` and recurrent dropout rate ``dropout``.

    Parameters have ``torch.nn.RNNCell``'s names and initialisation. ``forward(x, h,
    keep_mask=None)`` takes ``x`` (N, D), ``h`` (N, H); in training mode with
    ``dropout > 0`` it needs the sequence's ``keep_mask`` (N, H) from :meth:`dropout_mask`
    (drawn once per sequence, reused at every step). In eval mode both regularisers use
    their expectation, so the output is deterministic.

    >>> cell = ZoneoutRNNCell(3, 4, zoneout=0.1).eval()
    >>> tuple(cell(torch.zeros(2, 3), torch.zeros(2, 4)).shape)
    (2, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, *, zoneout: float = 0.0,
                 dropout: float = 0.0):
        super().__init__()
        ref = nn.RNNCell(check_positive_int("input_size", input_size),
                         check_positive_int("hidden_size", hidden_size))
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.zoneout = check_probability("zoneout", zoneout)
        self.dropout = check_probability("dropout", dropout)
        if self.zoneout >= 1 or self.dropout >= 1:
            raise ValueError("zoneout and dropout must be below 1 (a rate of 1 freezes or "
                             f"removes the state); got zoneout={zoneout}, dropout={dropout}.")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(self, name, nn.Parameter(getattr(ref, name).detach().clone()))

    def dropout_mask(self, n: int, generator=None) -> torch.Tensor:
        """One sequence-long mask per row: (n, H), entries 0 or 1 / (1 - dropout)."""
        n = check_positive_int("n", n)
        _check_generator("generator", generator)
        keep = 1.0 - self.dropout
        m = torch.rand(n, self.hidden_size, generator=generator, dtype=self.weight_hh.dtype)
        return (m < keep).to(m.dtype) / keep

    def forward(self, x: torch.Tensor, h: torch.Tensor, keep_mask=None, generator=None):
        dtype = self.weight_hh.dtype
        fast = (isinstance(x, torch.Tensor) and isinstance(h, torch.Tensor)
                and x.dtype == dtype and h.dtype == dtype and x.dim() == 2 and x.shape[0] >= 1
                and tuple(x.shape) == (x.shape[0], self.input_size)
                and tuple(h.shape) == (x.shape[0], self.hidden_size)
                and keep_mask is None and generator is None
                and bool(torch.isfinite(x.detach().sum() + h.detach().sum())))
        if not fast:  # the full checks: they say what is wrong
            self._check_step(x, h, keep_mask, generator)
        if self.training and self.dropout > 0 and keep_mask is None:
            raise ValueError("keep_mask is required in training mode with dropout > 0: draw "
                             "it once per sequence with cell.dropout_mask(N) and pass it at "
                             "every step.")
        gi = x @ self.weight_ih.T + self.bias_ih
        mask = keep_mask if (self.training and self.dropout > 0) else None
        return _regularised_step(gi, h, self.weight_hh, self.bias_hh, zoneout=self.zoneout,
                                 keep_mask=mask, training=self.training, generator=generator)

    def _check_step(self, x, h, keep_mask, generator):
        dtype = self.weight_hh.dtype
        dims = {}
        check_tensor("x", x, ("N", self.input_size), dims, dtype=dtype,
                     hint=f"One step of input_size={self.input_size} features per sequence.")
        check_tensor("h", h, ("N", self.hidden_size), dims, dtype=dtype,
                     hint="The previous state, one row per sequence of x.")
        check_nonempty("x", x, ("N", "D"), hint="An empty batch has nothing to compute.")
        if keep_mask is not None:
            check_tensor("keep_mask", keep_mask, ("N", self.hidden_size), dims, dtype=dtype,
                         hint="Draw it once per sequence with cell.dropout_mask(N).")
            _check_keep_values(keep_mask)
        _check_generator("generator", generator)
        _refuse_nonfinite("x", x)  # finite entries whose sum overflowed pass here
        _refuse_nonfinite("h", h)


class CharLMEnsemble(nn.Module):
    """``M`` character language models (one-hot in, tanh RNN, linear read-out) as one module.

    Parameters
    ----------
    vocab_size, hidden_size : K and H.
    seeds : one init seed per member; member ``m`` gets ``torch.nn.RNN(K, H)`` and
        ``torch.nn.Linear(H, K)`` built after ``torch.manual_seed(seeds[m])``.
    zoneout, dropout : one rate per member (or one number for all), in [0, 1).
    """

    def __init__(self, vocab_size: int, hidden_size: int, *, seeds, zoneout=0.0, dropout=0.0):
        super().__init__()
        K = self.vocab_size = check_positive_int("vocab_size", vocab_size, minimum=2)
        H = self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            raise ValueError(f"seeds must be a non-empty list of ints; got {seeds!r}. Use "
                             f"seeds=[{seeds}] for one model.")
        self.seeds = _check_seeds(seeds)
        M = len(self.seeds)
        self.register_buffer("zoneout", self._rates("zoneout", zoneout, M))
        self.register_buffer("dropout", self._rates("dropout", dropout, M))
        parts = {k: [] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out")}
        for s in self.seeds:
            torch.manual_seed(s)
            rnn, lin = nn.RNN(K, H), nn.Linear(H, K)
            for k, t in zip(parts, (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0,
                                    rnn.bias_hh_l0, lin.weight, lin.bias)):
                parts[k].append(t.detach().clone())
        for k, v in parts.items():
            setattr(self, k, nn.Parameter(torch.stack(v)))

    @staticmethod
    def _rates(name, value, M):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number in [0, 1) or one per member ({M},); got "
                            f"{type(value).__name__} {value!r}.") from None
        if value is None or isinstance(value, (bool, np.bool_)) \
                or np.asarray(value).dtype.kind in "bOUS":
            raise TypeError(f"{name} must be a number in [0, 1) or one per member ({M},); got "
                            f"{type(value).__name__} {value!r}.")
        arr = np.broadcast_to(np.asarray(value, dtype=float), (M,)) if np.ndim(value) == 0 \
            else np.asarray(value, dtype=float)
        if arr.shape != (M,):
            raise ValueError(f"{name} must be a number or one rate per member ({M},); got "
                             f"shape {arr.shape}.")
        if not np.all((arr >= 0) & (arr < 1)):
            raise ValueError(f"{name} rates must lie in [0, 1); got {arr.tolist()}.")
        return torch.as_tensor(arr.copy(), dtype=torch.float32)

    @property
    def members(self) -> int:
        return len(self.seeds)

    def forward(self, ids: torch.Tensor, h0=None, generator=None):
        """Logits (M, N, T, K) and the last state (M, N, H) for ids (M, N, T) or (N, T)."""
        M, K, H = self.members, self.vocab_size, self.hidden_size
        spec = ("N", "T") if isinstance(ids, torch.Tensor) and ids.dim() == 2 else ("M", "N", "T")
        dims = {"M": M}
        check_token_tensor("ids", ids, spec, dims, vocab_size=K,
                           hint=f"Character ids (N, T) shared by all members or (M={M}, N, T).")
        check_nonempty("ids", ids, spec, hint="A language model needs at least one "
                                              "sequence and one character.")
        if h0 is not None:
            check_tensor("h0", h0, ("M", "N", H), dims, dtype=self.w_hh.dtype,
                         hint="One state per member and sequence (e.g. the h returned by the "
                              "previous chunk).")
        _check_generator("generator", generator)
        return self._forward(ids, h0, generator)

    def _forward(self, ids, h0=None, generator=None):
        if ids.dim() == 2:
            ids = ids.expand(self.members, *ids.shape)
        M, N, T = ids.shape
        gi = self.w_ih.transpose(1, 2)[torch.arange(M)[:, None, None], ids] \
            + self.b_ih[:, None, None]  # one-hot input = a column of W_ih: (M, N, T, H)
        h = gi.new_zeros(M, N, self.hidden_size) if h0 is None else h0
        z = self.zoneout[:, None, None]
        keep = None
        if self.training and bool((self.dropout > 0).any()):
            p = self.dropout[:, None, None]
            keep = (torch.rand(M, N, self.hidden_size, generator=generator) >= p).float() / (1 - p)
        zone = z if bool((self.zoneout > 0).any()) else 0.0
        states = []
        for t in range(T):
            h = _regularised_step(gi[:, :, t], h, self.w_hh, self.b_hh, zoneout=zone,
                                 keep_mask=keep, training=self.training, generator=generator)
            states.append(h)
        hs = torch.stack(states, dim=2)  # (M, N, T, H)
        logits = torch.einsum("mnth,mkh->mntk", hs, self.w_out) + self.b_out[:, None, None]
        return logits, h

    @torch.no_grad()
    def bits_per_char(self, ids, *, streams: int = 8, chunk: int = 200) -> np.ndarray:
        """Each member's bits per character on ``ids`` (1-D), read in eval mode as ``streams``
        contiguous pieces, state carried from chunk to chunk. Returns (M,) float64."""
        streams = check_positive_int("streams", streams)
        chunk = check_positive_int("chunk", chunk)
        ids = _check_ids_1d("ids", ids, self.vocab_size)
        ids = torch.as_tensor(ids, dtype=torch.int64)
        L = (len(ids) - 1) // streams
        if L < 1:
            raise ValueError(f"ids must hold more than streams={streams} characters; got "
                             f"{len(ids)}.")
        was = self.training
        self.eval()
        x = ids[:streams * L].view(streams, L)
        y = ids[1:streams * L + 1].view(streams, L)
        total = torch.zeros(self.members, dtype=torch.float64)
        h = None
        for s in range(0, L, chunk):
            logits, h = self._forward(x[:, s:s + chunk], h)
            logp = torch.log_softmax(logits.double(), -1)
            tgt = y[:, s:s + chunk].expand(self.members, -1, -1)
            total -= torch.gather(logp, 3, tgt[..., None])[..., 0].sum(dim=(1, 2))
        self.train(was)
        return (total / (streams * L) / math.log(2)).numpy()


def _check_ids_1d(name, ids, K):
    """Character ids as a 1-D int64 NumPy array with every id in [0, K)."""
    if isinstance(ids, torch.Tensor):
        if ids.is_floating_point():
            raise TypeError(f"{name} must hold integer character ids; got a float tensor "
                            f"({ids.dtype}): a float id would be truncated. Use {name}.long() "
                            f"if the values are ids.")
        ids = ids.detach().cpu().numpy()
    if ids is None or isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be a 1-D array of integer character ids; got "
                        f"{type(ids).__name__}. Encode the text first (vocab.encode(text)).")
    arr = check_int_array(name, ids, low=0, high=K)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one long stream of ids); got shape {arr.shape}. "
                         f"Use {name}.ravel() if the rows are one text.")
    return arr.astype(np.int64, copy=False)


def train_char_ensemble(model: CharLMEnsemble, train_ids, *, steps: int, lr, seq_len: int = 64,
                        batch: int = 32, clip_norm: float = 5.0, eval_fn=None,
                        eval_every: int = 0):
    """Adam on random windows of ``train_ids`` for every member (own lr, own data stream).

    Member ``m`` draws its windows from a generator seeded by its seed, so members with
    the same seed see the same windows (the regularisers' noise comes from one generator
    seeded by the seeds). A member whose loss or gradient stops being finite is frozen
    (NaN losses after). Returns ``(losses (steps, M) in bits
    per character, evals)`` where ``evals`` lists ``(step, eval_fn(model))`` every
    ``eval_every`` steps (and after the last).
    """
    if not isinstance(model, CharLMEnsemble):
        raise TypeError(f"model must be a CharLMEnsemble; got {type(model).__name__}.")
    steps = check_positive_int("steps", steps)
    seq_len = check_positive_int("seq_len", seq_len)
    batch = check_positive_int("batch", batch)
    ids = _check_ids_1d("train_ids", train_ids, model.vocab_size)
    if len(ids) <= seq_len + 1:
        raise ValueError(f"train_ids must be 1-D and longer than seq_len + 1 = {seq_len + 1}; "
                         f"got shape {ids.shape}.")
    _member_vector("clip_norm", clip_norm, model.members, allow_inf=True)
    if eval_fn is not None:
        check_callable("eval_fn", eval_fn, "eval_fn(model) -> anything")
    eval_every = check_positive_int("eval_every", eval_every, minimum=0)
    if eval_every and eval_fn is None:
        raise ValueError(f"eval_every={eval_every} asks for an evaluation every "
                         f"{eval_every} steps, but eval_fn is None: pass eval_fn=lambda "
                         f"model: ..., or leave eval_every at 0.")
    M = model.members
    seeds = sorted(set(model.seeds))
    rngs = {s: np.random.default_rng(2000 + s) for s in seeds}
    gen = torch.Generator().manual_seed(int(sum(model.seeds)) + 7)
    params = list(model.parameters())
    opt = BatchedAdam(params, lr)
    losses = np.zeros((steps, M))
    active = torch.ones(M, dtype=torch.bool)
    evals = []
    offsets = np.arange(seq_len + 1)
    model.train()
    for step in range(steps):
        starts = {s: r.integers(0, len(ids) - seq_len - 1, size=batch) for s, r in rngs.items()}
        win = torch.as_tensor(np.stack([ids[starts[s][:, None] + offsets] for s in model.seeds]))
        logits, _ = model._forward(win[..., :-1], generator=gen)
        logp = torch.log_softmax(logits, -1)
        nll = -torch.gather(logp, 3, win[..., 1:, None])[..., 0].mean(dim=(1, 2))
        opt.zero_grad()
        ok = torch.isfinite(nll.detach()) & active
        torch.where(ok, nll, torch.zeros_like(nll)).sum().backward()
        norms = clip_per_member(params, clip_norm)
        active = ok & torch.isfinite(norms)
        opt.step(active)
        losses[step] = np.where(active.numpy(), nll.detach().double().numpy() / math.log(2),
                                np.nan)
        if eval_fn is not None and eval_every and ((step + 1) % eval_every == 0
                                                   or step + 1 == steps):
            evals.append((step + 1, eval_fn(model)))
            model.train()
    return losses, evals
