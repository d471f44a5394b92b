"""Attention (chapter 9): scores, the masked softmax, and an attention decoder.

Shapes are batch-first. A decoder asks with a **query** ``(N, Hq)`` (one step) or
``(N, L, Hq)`` (every output step at once); the encoder offers **keys** ``(N, S, Hk)``
(its states) and **values** (by default the keys themselves); a boolean **mask**
``(N, S)`` says which source positions are real tokens (``True``) and which are padding
(``False``), the convention of ``companion.data.seq2seq.Batch.src_mask``. Weights are
``(N, S)`` or ``(N, L, S)``: the softmax runs over the **last** axis, the source.

Scores ``e`` (query ``q``, one key ``k``; the chapter writes ``h'`` for the query and
``h^(j)`` for the keys):

``"additive"``    ``v_e . tanh(W_e q + U_e k)``          (Bahdanau et al., 2015)
``"dot"``         ``q . k``                              (Luong et al., 2015)
``"general"``     ``q . (G k)``                          (Luong et al., 2015)
``"scaled_dot"``  ``q . k / sqrt(Hk)``                   (Vaswani et al., 2017)

Each score module has ``prepare(keys)`` (the part that depends only on the keys, computed
once per source sentence: ``U_e k`` for additive, ``G k`` for general) and
``score(query, prepared)``; ``forward(query, keys)`` is the two together.

Empty rows. A row of the mask with no ``True`` (an empty source, or a mask built the
wrong way round) has no position to attend to. :func:`masked_softmax` then raises a
``ValueError`` by default (``empty="raise"``); with ``empty="zero"`` the row's weights
are all zero (so its context is the zero vector and no gradient flows through it), a
rule the caller chose explicitly. It never returns uniform weights over padding, which
is what filling masked scores with a large negative number silently does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.checks import check_nonempty, check_positive_int, check_tensor

__all__ = ["SCORES", "AdditiveScore", "Attention", "AttentionEnsemble", "AttentionSeq2Seq",
           "DotScore", "GeneralScore", "ScaledDotScore", "SingleHeadAttention", "attend",
           "make_score", "masked_softmax", "saved_for_backward", "train_attention_ensemble"]

#: The score functions :func:`make_score` builds.
SCORES = ("additive", "dot", "general", "scaled_dot")
_EMPTY = ("raise", "zero")


# ---------------------------------------------------------------- masked softmax
def _check_mask(mask, scores, name="mask"):
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of dtype bool (True = real token); "
                        f"got {type(mask).__name__}. Use batch.src_mask or "
                        f"torch.arange(S)[None, :] < src_lengths[:, None].")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must have dtype torch.bool (True = real token, False = padding); got "
            f"{mask.dtype}. Convert a 0/1 mask with mask.bool(); a key_padding_mask in "
            f"torch's convention (True = padding) must be inverted first (~mask).")
    try:
        torch.broadcast_shapes(mask.shape, scores.shape)
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(mask.shape)} does not broadcast against the "
                         f"scores {tuple(scores.shape)}; expected (N, S) for scores (N, S) or "
                         f"(N, 1, S) for scores (N, L, S).") from None


def _tname(t):
    if isinstance(t, np.ndarray):
        return f"numpy array of dtype {t.dtype}"
    return "None" if t is None else type(t).__name__


def _float_tensor(name, t, what, dtype=None, whose="that of the module's weights"):
    """``t`` must be a float torch tensor (of ``dtype`` when given): TypeError otherwise."""
    if not isinstance(t, torch.Tensor):
        fix = (f" Convert it with torch.as_tensor({name}, dtype=torch.float32)."
               if isinstance(t, (np.ndarray, list, tuple)) else "")
        raise TypeError(f"{name} must be a torch float tensor {what}; got {_tname(t)}.{fix}")
    if not t.is_floating_point():
        extra = (" Token ids go to the model (src, tgt_in), which embeds them itself."
                 if t.dtype in (torch.int64, torch.int32) else "")
        raise TypeError(f"{name} must hold floats {what}; got dtype {t.dtype}.{extra} "
                        f"Otherwise use {name}.float().")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} ({whose}); got "
                        f"{t.dtype}. Use {name}.to({dtype}), or convert the module instead "
                        f"(module.to({t.dtype})).")


def _all_finite(t):
    """Whether every entry of ``t`` is finite. A sum is NaN or infinite when an entry is
    (or when it overflows: then the exact, slower test decides); it costs a few percent
    of ``torch.isfinite(t).all()``."""
    if math.isfinite(float(t.detach().sum())):
        return True
    return bool(torch.isfinite(t).all())


def _finite(name, t, hint=""):
    if t.numel() and not _all_finite(t):
        try:
            check_tensor(name, t, tuple(f"d{i}" for i in range(t.dim())))
        except ValueError as err:
            raise ValueError(f"{err}{(' ' + hint) if hint else ''}") from None


def _nonempty(name, t, spec):
    if 0 in t.shape:
        check_nonempty(name, t, spec)


def _module_dtype(module):
    p = getattr(module, "_dtype_of", None)  # a score module names its weight
    if p is not None:
        return getattr(module, p).dtype
    p = next(module.parameters(), None)
    return None if p is None else p.dtype


def _time_first(name):
    return (f" Time-first input? This course is batch-first: use {name}.transpose(0, 1).")


def _fast_ok(query, keys, q_size, k_size, dtype):
    """The common case in one expression: two well-formed, finite tensors of the right
    sizes and dtype. False sends the call through the full checks (which raise with the
    reason, or pass when only the sum overflowed)."""
    T = torch.Tensor
    return (type(query) is T and type(keys) is T and query.is_floating_point()
            and (query.dtype == dtype if dtype is not None else True) and keys.dtype == query.dtype
            and keys.dim() == 3 and 2 <= query.dim() <= 3 and query.shape[0] == keys.shape[0]
            and (q_size is None or query.shape[-1] == q_size)
            and (k_size is None or keys.shape[2] == k_size)
            and query.numel() > 0 and keys.numel() > 0
            and math.isfinite(float(query.detach().sum() + keys.detach().sum())))


def _check_query(query, size=None, dtype=None):
    """query (N, Hq) or (N, L, Hq), float, finite; returns the spec used."""
    _float_tensor("query", query, "(N, Hq) or (N, L, Hq)", dtype)
    if query.dim() not in (2, 3):
        raise ValueError(f"query must be (N, Hq) or (N, L, Hq), batch-first; got "
                         f"{tuple(query.shape)}.")
    spec = ("N", "Hq") if query.dim() == 2 else ("N", "L", "Hq")
    if size is not None and query.shape[-1] != size:
        raise ValueError(f"query must be (N, Hq={size}) or (N, L, Hq={size}), batch-first; got "
                         f"{tuple(query.shape)}. Its last axis is the decoder state, of "
                         f"size query_size={size}.")
    _nonempty("query", query, spec)
    _finite("query", query)
    return spec


def _check_keys(keys, query=None, *, name="keys", size=None, size_name="Hk", dtype=None,
                size_arg="key_size"):
    if not isinstance(keys, torch.Tensor):
        _float_tensor(name, keys, f"(N, S, {size_name})")
    if keys.dim() != 3:
        raise ValueError(f"{name} must be a tensor (N, S, {size_name}), batch-first; got "
                         f"{tuple(keys.shape)}.")
    if dtype is not None:
        _float_tensor(name, keys, f"(N, S, {size_name})", dtype)
    else:
        _float_tensor(name, keys, f"(N, S, {size_name})",
                      None if query is None else query.dtype, "that of the query")
    if query is not None and query.shape[0] != keys.shape[0]:
        N = query.shape[0]
        if keys.shape[1] == N:
            raise ValueError(f"{name} must be (N={N}, S, {size_name}), batch-first like the "
                             f"query; got {tuple(keys.shape)}.{_time_first(name)}")
        if query.dim() == 3 and query.shape[1] == keys.shape[0]:
            raise ValueError(f"query must be (N={keys.shape[0]}, L, Hq), batch-first like the "
                             f"{name}; got {tuple(query.shape)}.{_time_first('query')}")
        raise ValueError(f"query and {name} must have the same batch size N; got "
                         f"{query.shape[0]} and {keys.shape[0]}.")
    if size is not None and keys.shape[2] != size:
        raise ValueError(f"{name} must be (N, S, {size_name}={size}), batch-first; got "
                         f"{tuple(keys.shape)}. The last axis is the encoder state, of size "
                         f"{size_arg}={size}.")
    _nonempty(name, keys, ("N", "S", size_name))
    _finite(name, keys)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, *, dim: int = -1,
                   empty: str = "raise") -> torch.Tensor:
    """Softmax of ``scores`` along ``dim`` over the positions where ``mask`` is True.

    Parameters
    ----------
    scores : float tensor, e.g. (N, S) or (N, L, S).
    mask : bool tensor broadcastable to ``scores``; True = a real position. ``None`` means
        every position is real.
    dim : the axis to normalise over (the source axis; -1 by default).
    empty : what to do with a row (a slice along ``dim``) with no True position:
        ``"raise"`` (default) raises ``ValueError``; ``"zero"`` returns all-zero weights
        for that row. Never uniform weights.

    Masked positions get exactly 0 weight (not a small number), and no gradient.
    Scores must be finite: exclude positions with the mask, not with ``-inf`` scores.
    """
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        raise TypeError(f"scores must be a float torch.Tensor; got "
                        f"{type(scores).__name__} {getattr(scores, 'dtype', '')}.")
    if empty not in _EMPTY:
        raise ValueError(f"empty must be one of {_EMPTY}; got {empty!r}.")
    if scores.dim() == 0:
        raise ValueError("scores must have at least one axis, e.g. (N, S) or (N, L, S); got a "
                         "0-d tensor.")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int (the source axis, -1); got {type(dim).__name__} "
                        f"{dim!r}.")
    if not -scores.dim() <= dim < scores.dim():
        raise ValueError(f"dim must be in [-{scores.dim()}, {scores.dim()}) for scores of shape "
                         f"{tuple(scores.shape)}; got {dim}. The source axis is dim=-1.")
    if scores.shape[dim] == 0:
        raise ValueError(f"scores must have at least one source position along dim={dim} "
                         f"(S >= 1); got shape {tuple(scores.shape)}.")
    _finite("scores", scores, "Exclude positions with the mask (False), not with -inf "
            "scores.")
    if mask is not None:
        _check_mask(mask, scores)
    return _masked_softmax(scores, mask, dim=dim, empty=empty)


def _masked_softmax(scores, mask=None, *, dim=-1, empty="raise"):
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = mask.expand_as(scores) if mask.shape != scores.shape else mask
    has_any = mask.any(dim=dim, keepdim=True)
    if not bool(has_any.all()):
        if empty == "raise":
            bad = (~has_any).nonzero()[:, 0].unique().tolist()
            raise ValueError(
                f"masked_softmax: {int((~has_any).sum())} row(s) of the mask have no valid "
                f"(True) position (first batch index {bad[0]}): an empty source, or a mask "
                f"with True on the padding. Softmax over no position is undefined; pass "
                f"empty='zero' to give such rows zero weights, or drop the empty sequences.")
        filled = scores.masked_fill(~mask, float("-inf")).masked_fill(~has_any, 0.0)
        return torch.softmax(filled, dim=dim).masked_fill(~has_any, 0.0)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)


# ---------------------------------------------------------------- score functions
def _as_3d(query):
    if query.dim() == 2:
        return query[:, None, :], True
    if query.dim() == 3:
        return query, False
    raise ValueError(f"query must be (N, Hq) or (N, L, Hq), batch-first; got "
                     f"{tuple(query.shape)}.")


class _Score(nn.Module):
    """Base: ``forward(query, keys) = score(query, prepare(keys))``, scores (N, [L,] S).

    ``query_size``, ``key_size`` (None: any) and ``prepared_size`` (the last axis of
    ``prepare(keys)``) are what the public methods check their inputs against.
    """

    query_size: int | None = None
    key_size: int | None = None

    @property
    def prepared_size(self):
        return self.key_size

    def _prepare(self, keys):
        return keys

    def _raw(self, q3, prepared):  # q3 (N, L, Hq), prepared (N, S, *) -> (N, L, S)
        raise NotImplementedError

    def _score(self, query, prepared):
        q3, squeeze = _as_3d(query)
        e = self._raw(q3, prepared)
        return e[:, 0] if squeeze else e

    def _check_pair(self, query, keys, name, size, size_name, size_arg):
        dtype = _module_dtype(self)
        if _fast_ok(query, keys, self.query_size, size, dtype):
            return
        _check_query(query, self.query_size, dtype)
        _check_keys(keys, query, name=name, size=size, size_name=size_name, dtype=dtype,
                    size_arg=size_arg)

    def prepare(self, keys):
        """The part of the score that depends on the keys only, (N, S, *)."""
        _check_keys(keys, size=self.key_size, dtype=_module_dtype(self))
        return self._prepare(keys)

    def score(self, query, prepared):
        """Scores (N, S) or (N, L, S) of ``query`` against ``prepare(keys)``."""
        self._check_pair(query, prepared, "prepared", self.prepared_size, "P",
                         "the size of prepare(keys)")
        return self._score(query, prepared)

    def forward(self, query, keys):
        self._check_pair(query, keys, "keys", self.key_size, "Hk", "key_size")
        return self._score(query, self._prepare(keys))


class DotScore(_Score):
    """``e_j = q . k_j`` (Luong et al.'s *dot*); query and key sizes must be equal."""

    def _check_pair(self, query, keys, name, size, size_name, size_arg):
        super()._check_pair(query, keys, name, size, size_name, size_arg)
        if query.shape[-1] != keys.shape[-1]:
            raise ValueError(
                f"dot scores need query and key vectors of the same size; got Hq="
                f"{query.shape[-1]} and Hk={keys.shape[-1]}. Use score='general' (a matrix G "
                f"between them) or 'additive', or make the decoder as wide as the encoder.")

    def _raw(self, q3, k):
        return q3 @ k.transpose(1, 2)


class ScaledDotScore(DotScore):
    """``e_j = q . k_j / sqrt(Hk)`` (the scaling of Vaswani et al., 2017)."""

    def _raw(self, q3, k):
        return super()._raw(q3, k) / math.sqrt(k.shape[-1])


class GeneralScore(_Score):
    """``e_j = q . (G k_j)`` with ``G`` (Hq, Hk) (Luong et al.'s *general*); ``G.weight``."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.key_size = check_positive_int("key_size", key_size)
        self.query_size = check_positive_int("query_size", query_size)
        self.G = nn.Linear(self.key_size, self.query_size, bias=False)
        self._dtype_of = "_g_weight"

    @property
    def prepared_size(self):
        return self.query_size

    @property
    def _g_weight(self):
        return self.G.weight

    def _prepare(self, keys):
        return self.G(keys)  # (N, S, Hq)

    def _raw(self, q3, gk):
        return q3 @ gk.transpose(1, 2)


class AdditiveScore(_Score):
    """``e_j = v_e . tanh(W_e q + U_e k_j)`` (Bahdanau et al.'s alignment model).

    ``W_e`` (A, Hq) is ``self.W.weight``, ``U_e`` (A, Hk) is ``self.U.weight``, ``v_e``
    (A,) is ``self.v``; no biases, as in the paper's equations. ``A`` = ``attn_size``.
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int):
        super().__init__()
        A = self.attn_size = check_positive_int("attn_size", attn_size)
        self.query_size = check_positive_int("query_size", query_size)
        self.key_size = check_positive_int("key_size", key_size)
        self.W = nn.Linear(self.query_size, A, bias=False)
        self.U = nn.Linear(self.key_size, A, bias=False)
        self.v = nn.Parameter(torch.empty(A).uniform_(-1 / math.sqrt(A), 1 / math.sqrt(A)))
        self._dtype_of = "v"

    @property
    def prepared_size(self):
        return self.attn_size

    def _prepare(self, keys):
        return self.U(keys)  # (N, S, A)

    def _raw(self, q3, uk):
        z = torch.tanh(self.W(q3)[:, :, None, :] + uk[:, None, :, :])  # (N, L, S, A)
        return z @ self.v


def make_score(score: str, query_size: int, key_size: int, attn_size: int | None = None):
    """The score module named ``score`` (one of :data:`SCORES`).

    ``attn_size`` (additive only) defaults to ``query_size``; when given it must be an
    int >= 1 (for any score).
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
    query_size = check_positive_int("query_size", query_size)
    key_size = check_positive_int("key_size", key_size)
    if attn_size is not None:
        attn_size = check_positive_int("attn_size", attn_size)
    if score == "additive":
        return AdditiveScore(query_size, key_size, query_size if attn_size is None else attn_size)
    if score == "general":
        return GeneralScore(query_size, key_size)
    if query_size != key_size:
        raise ValueError(
            f"score={score!r} needs query_size == key_size; got {query_size} and "
            f"{key_size}. Use 'general' or 'additive', or equal sizes.")
    sc = DotScore() if score == "dot" else ScaledDotScore()
    sc.query_size = sc.key_size = query_size
    return sc


def _check_scores_values(scores, values, mask):
    _float_tensor("scores", scores, "(N, S) or (N, L, S)")
    if scores.dim() not in (2, 3):
        raise ValueError(f"scores must be (N, S) or (N, L, S), batch-first; got "
                         f"{tuple(scores.shape)}.")
    _nonempty("scores", scores, ("N", "L", "S") if scores.dim() == 3 else ("N", "S"))
    _check_keys(values, name="values", size_name="Hv", dtype=scores.dtype)
    if values.shape[0] != scores.shape[0]:
        raise ValueError(f"values must be (N={scores.shape[0]}, S, Hv) like the scores; got "
                         f"{tuple(values.shape)}.")
    if scores.shape[-1] != values.shape[1]:
        raise ValueError(f"scores cover {scores.shape[-1]} source positions but values have "
                         f"S={values.shape[1]}; values must be (N, S, Hv).")
    _finite("scores", scores, "Exclude positions with the mask (False), not with -inf "
            "scores.")
    if mask is not None:
        if isinstance(mask, torch.Tensor) and mask.dim() == 2 and scores.dim() == 3:
            _check_mask(mask[:, None, :], scores)
        else:
            _check_mask(mask, scores)


def attend(scores, values, mask=None, *, empty="raise"):
    """Weights ``masked_softmax(scores, mask)`` and context ``sum_j alpha_j v_j``.

    ``scores`` (N, S) or (N, L, S), ``values`` (N, S, Hv), ``mask`` (N, S) bool.
    Returns ``(context, weights)``: (N, Hv) and (N, S), or (N, L, Hv) and (N, L, S).
    """
    if empty not in _EMPTY:
        raise ValueError(f"empty must be one of {_EMPTY}; got {empty!r}.")
    _check_scores_values(scores, values, mask)
    return _attend(scores, values, mask, empty=empty)


def _attend(scores, values, mask=None, *, empty="raise"):
    if scores.dim() == 3 and mask is not None and mask.dim() == 2:
        mask = mask[:, None, :]
    w = _masked_softmax(scores, mask, dim=-1, empty=empty)
    if w.dim() == 2:
        return (w[:, None, :] @ values)[:, 0], w
    return w @ values, w


class Attention(nn.Module):
    """A score function, the masked softmax and the weighted sum, in one module.

    ``Attention(score, query_size, key_size, attn_size=None)``;
    ``forward(query, keys, mask=None, values=None, *, empty="raise") -> (context, weights)``.
    """

    def __init__(self, score: str, query_size: int, key_size: int,
                 attn_size: int | None = None):
        super().__init__()
        self.kind = score
        self.scorer = make_score(score, query_size, key_size, attn_size)

    def forward(self, query, keys, mask=None, values=None, *, empty="raise"):
        if empty not in _EMPTY:
            raise ValueError(f"empty must be one of {_EMPTY}; got {empty!r}.")
        self.scorer._check_pair(query, keys, "keys", self.scorer.key_size, "Hk", "key_size")
        if values is not None:
            _check_keys(values, query, name="values", size_name="Hv", dtype=keys.dtype)
            if values.shape[1] != keys.shape[1]:
                raise ValueError(f"values must be (N, S={keys.shape[1]}, Hv), one per key; got "
                                 f"{tuple(values.shape)}.")
        if mask is not None and not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool
                                     and mask.shape == keys.shape[:2]):
            S = keys.shape[1]
            shape = (query.shape[0], S) if query.dim() == 2 else (query.shape[0], query.shape[1], S)
            probe = keys.new_empty(shape)
            _check_mask(mask[:, None, :] if isinstance(mask, torch.Tensor) and mask.dim() == 2
                        and query.dim() == 3 else mask, probe)
        e = self.scorer._score(query, self.scorer._prepare(keys))
        return _attend(e, keys if values is None else values, mask, empty=empty)


# ---------------------------------------------------------------- one head, torch's layout
class SingleHeadAttention(nn.Module):
    """Scaled dot-product attention with query/key/value/output projections (one head).

    The function of ``torch.nn.MultiheadAttention(embed_dim, num_heads=1,
    batch_first=True)``, written with this module's :func:`masked_softmax`:
    ``out = W_o softmax(Q K^T / sqrt(E)) V + b_o`` with ``Q = query W_q^T + b_q`` etc.
    ``forward(query (N, L, E), key (N, S, E), value (N, S, E), mask (N, S) bool, True =
    real) -> (out (N, L, E), weights (N, L, S))``. Note the mask convention: torch's
    ``key_padding_mask`` is True on *padding*, the opposite. :meth:`copy_from_torch`
    takes the weights of a one-head ``nn.MultiheadAttention``.
    """

    def __init__(self, embed_dim: int, *, bias: bool = True):
        super().__init__()
        E = self.E = check_positive_int("embed_dim", embed_dim)
        self.q_proj = nn.Linear(E, E, bias=bias)
        self.k_proj = nn.Linear(E, E, bias=bias)
        self.v_proj = nn.Linear(E, E, bias=bias)
        self.out_proj = nn.Linear(E, E, bias=bias)

    def forward(self, query, key, value, mask=None, *, empty="raise"):
        if empty not in _EMPTY:
            raise ValueError(f"empty must be one of {_EMPTY}; got {empty!r}.")
        dtype = self.q_proj.weight.dtype
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor):
                _float_tensor(name, t, f"(N, T, E={self.E})", dtype)
            if t.dim() != 3 or t.shape[-1] != self.E:
                raise ValueError(f"{name} must be (N, T, E={self.E}), batch-first; got "
                                 f"{tuple(getattr(t, 'shape', ()))}.")
            _float_tensor(name, t, f"(N, T, E={self.E})", dtype)
        N, S = key.shape[0], key.shape[1]
        for name, t in (("query", query), ("value", value)):
            if t.shape[0] != N:
                hint = _time_first(name) if t.shape[1] == N else ""
                raise ValueError(f"{name} must have the batch size of key (N={N}), "
                                 f"batch-first; got {tuple(t.shape)}.{hint}")
        if value.shape[1] != S:
            raise ValueError(f"value must be (N, S={S}, E), one per key position; got "
                             f"{tuple(value.shape)}.")
        for name, t in (("query", query), ("key", key), ("value", value)):
            _nonempty(name, t, ("N", "T", "E"))
            _finite(name, t)
        if mask is not None:
            _check_mask(mask[:, None, :] if isinstance(mask, torch.Tensor) and mask.dim() == 2
                        else mask, query.new_empty(N, query.shape[1], S))
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        e = q @ k.transpose(1, 2) / math.sqrt(self.E)
        ctx, w = _attend(e, v, mask, empty=empty)
        return self.out_proj(ctx), w

    @torch.no_grad()
    def copy_from_torch(self, mha: nn.MultiheadAttention):
        """Copy the weights of a one-head ``nn.MultiheadAttention`` with the same E."""
        if not isinstance(mha, nn.MultiheadAttention) or mha.num_heads != 1 \
                or mha.embed_dim != self.E or not mha._qkv_same_embed_dim:
            raise ValueError(f"mha must be nn.MultiheadAttention(embed_dim={self.E}, "
                             f"num_heads=1) with kdim = vdim = embed_dim; got {mha!r}.")
        W = mha.in_proj_weight
        for i, lin in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            lin.weight.copy_(W[i * self.E:(i + 1) * self.E])
            if lin.bias is not None:
                lin.bias.copy_(mha.in_proj_bias[i * self.E:(i + 1) * self.E])
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


# ---------------------------------------------------------------- the attention decoder
_CELLS = {"gru": nn.GRUCell, "rnn": nn.RNNCell, "lstm": nn.LSTMCell}


def _lengths_mask(src, src_lengths):
    if not isinstance(src, torch.Tensor) or src.dim() != 2 or src.is_floating_point():
        raise ValueError(f"src must be a LongTensor (N, S) of token ids, batch-first; got "
                         f"{tuple(getattr(src, 'shape', ()))} "
                         f"{getattr(src, 'dtype', type(src).__name__)}.")
    lengths = torch.as_tensor(src_lengths)
    if lengths.shape != (src.shape[0],):
        raise ValueError(f"src_lengths must be (N,) = ({src.shape[0]},); got "
                         f"{tuple(lengths.shape)}.")
    if bool((lengths < 1).any()) or bool((lengths > src.shape[1]).any()):
        raise ValueError(f"src_lengths must lie in [1, S={src.shape[1]}]; got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}. An empty source "
                         f"leaves attention nothing to attend to.")
    return lengths, torch.arange(src.shape[1])[None, :] < lengths[:, None]


def _check_source(src, src_lengths, vocab_size):
    """chapter 8's source check (tensor, long, (N, S), ids in range, N, S >= 1, lengths,
    time-first hint), with attention's message for lengths out of [1, S]."""
    from companion.nn.seq2seq import _check_lengths_type, _check_source as check

    if isinstance(src, torch.Tensor) and isinstance(src_lengths, torch.Tensor) \
            and src.dim() == 2 and src_lengths.dim() == 1 and src_lengths.dtype == torch.long \
            and src_lengths.shape[0] == src.shape[0] and src.shape[1] > 0 \
            and src_lengths.numel() and (int(src_lengths.min()) < 1
                                         or int(src_lengths.max()) > src.shape[1]):
        _lengths_mask(src, src_lengths)  # raises, in this chapter's words
    check(src, src_lengths, vocab_size)


class AttentionSeq2Seq(nn.Module):
    """An encoder-decoder whose decoder attends to every encoder state (chapter 9).

    The encoder is chapter 8's :class:`companion.nn.seq2seq.Encoder`; its states
    ``h^(1..S)`` (N, S, Hk) are the keys and the values. At output step ``t`` the
    decoder, with previous state ``h'^(t-1)`` (the query, as in Bahdanau et al. 2015):

    1. scores every source position, ``e_tj = score(h'^(t-1), h^(j))``, padding masked;
    2. takes the weights ``alpha_t = masked_softmax(e_t)`` and the context
       ``C^(t) = sum_j alpha_tj h^(j)``;
    3. updates its state from the previous output token and the context:
       ``h'^(t) = cell([E y^(t-1); C^(t)], h'^(t-1))``;
    4. emits logits ``o^(t) = V [h'^(t); C^(t)] + c``.

    ``h'^(0)`` is set from the encoder's final state exactly as in chapter 8's
    ``Seq2Seq(context="init")``: the final state itself when the sizes match, through the
    bridge ``tanh(B C + b_B)`` otherwise (or when ``bridge=True``), so that the two models
    differ by the attention only. ``score`` is one of :data:`SCORES`; ``dot`` and
    ``scaled_dot`` need ``dec_hidden == Hk``.

    ``forward(src, src_lengths, tgt_in, *, return_attention=False)`` returns logits
    (N, L, K), and with ``return_attention`` also the weights (N, L, S).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, enc_hidden: int,
                 dec_hidden: int, emb_size: int = 32, cell: str = "gru",
                 score: str = "additive", attn_size: int | None = None,
                 bidirectional: bool = False, bridge: bool | None = None):
        super().__init__()
        from companion.nn.seq2seq import Encoder

        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {tuple(_CELLS)}; got {cell!r}.")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
        if attn_size is not None:
            check_positive_int("attn_size", attn_size)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be True or False; got "
                            f"{type(bidirectional).__name__} {bidirectional!r}.")
        self.cell_kind, self.score_kind, self.attn_size = cell, score, attn_size
        self.encoder_vocab_size = check_positive_int("src_vocab_size", src_vocab_size,
                                                     minimum=5)
        check_positive_int("enc_hidden", enc_hidden)
        check_positive_int("tgt_vocab_size", tgt_vocab_size, minimum=5)
        check_positive_int("emb_size", emb_size)
        self.bidirectional = bool(bidirectional)
        self.encoder = Encoder(src_vocab_size, enc_hidden, emb_size=emb_size, cell=cell,
                               bidirectional=bidirectional)
        Hk = self.key_size = enc_hidden * (2 if bidirectional else 1)
        H = self.dec_hidden = check_positive_int("dec_hidden", dec_hidden)
        self.K = check_positive_int("tgt_vocab_size", tgt_vocab_size)
        self.attention = Attention(score, H, Hk, attn_size)
        self.embed = nn.Embedding(self.K, check_positive_int("emb_size", emb_size))
        self.cell = _CELLS[cell](emb_size + Hk, H)
        if bridge is None:
            bridge = Hk != H
        if not isinstance(bridge, bool):
            raise TypeError(f"bridge must be True, False or None; got {bridge!r}.")
        if not bridge and Hk != H:
            raise ValueError(f"bridge=False needs the encoder's state size ({Hk}) to equal "
                             f"dec_hidden={H}; use bridge=True or equal sizes.")
        self.use_bridge = bridge
        if bridge:
            self.bridge = nn.Linear(Hk, H)
            if cell == "lstm":
                self.bridge_c = nn.Linear(Hk, H)
        self.readout = nn.Linear(H + Hk, self.K)

    # -- pieces
    def encode(self, src, src_lengths) -> dict:
        """Encoder states, mask, prepared keys and the decoder's initial state (a dict)."""
        _check_source(src, src_lengths, self.encoder_vocab_size)
        lengths, mask = _lengths_mask(src, src_lengths)
        enc, final = self.encoder(src, lengths)
        C_h, C_s = final if self.cell_kind == "lstm" else (final, None)
        h0 = torch.tanh(self.bridge(C_h)) if self.use_bridge else C_h
        state = {"h": h0, "enc": enc, "prep": self.attention.scorer._prepare(enc), "mask": mask}
        if self.cell_kind == "lstm":
            state["s"] = self.bridge_c(C_s) if self.use_bridge else C_s
        return state

    def _step(self, emb_t, state):
        e = self.attention.scorer._score(state["h"], state["prep"])       # (N, S)
        ctx, w = _attend(e, state["enc"], state["mask"])                   # (N, Hk), (N, S)
        x = torch.cat([emb_t, ctx], dim=-1)
        new = dict(state)
        if self.cell_kind == "lstm":
            new["h"], new["s"] = self.cell(x, (state["h"], state["s"]))
        else:
            new["h"] = self.cell(x, state["h"])
        new["attn"] = w
        return self.readout(torch.cat([new["h"], ctx], dim=-1)), new

    # -- training
    def forward(self, src, src_lengths, tgt_in, *, return_attention: bool = False):
        from companion.nn.seq2seq import _check_target

        if not isinstance(return_attention, bool):
            raise TypeError(f"return_attention must be True or False; got {return_attention!r}.")
        _check_source(src, src_lengths, self.encoder_vocab_size)
        if not isinstance(tgt_in, torch.Tensor) or tgt_in.dim() != 2 \
                or tgt_in.shape[0] != src.shape[0]:
            from companion.nn.seq2seq import _not_tensor

            if not isinstance(tgt_in, torch.Tensor):
                raise _not_tensor("tgt_in", tgt_in, f"(N={src.shape[0]}, L) starting with BOS")
            raise ValueError(f"tgt_in must be a LongTensor (N={src.shape[0]}, L) starting with "
                             f"BOS (batch.tgt_in); got {tuple(getattr(tgt_in, 'shape', ()))}.")
        _check_target("tgt_in", tgt_in, src.shape[0], self.K)
        state = self.encode(src, src_lengths)
        emb = self.embed(tgt_in)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            o, state = self._step(emb[:, t], state)
            logits.append(o)
            weights.append(state["attn"])
        logits = torch.stack(logits, dim=1)
        return (logits, torch.stack(weights, dim=1)) if return_attention else logits

    # -- inference
    def step_fn(self, src, src_lengths):
        """``(step_fn, state)`` for :mod:`companion.nn.decoding` (greedy, beam search...).

        The state is a dict of batch-first tensors; after each step ``state["attn"]``
        holds that step's weights (N, S).
        """
        state = self.encode(src, src_lengths)
        state["attn"] = torch.zeros_like(state["mask"], dtype=state["enc"].dtype)

        def fn(tokens, st):
            o, new = self._step(self.embed(tokens), st)
            return torch.log_softmax(o, dim=-1), new

        return fn, state

    @torch.no_grad()
    def translate(self, src, src_lengths, *, method: str = "greedy", beam_size: int = 4,
                  max_len: int | None = 30, alpha: float = 0.0):
        """Decode in eval mode without gradients (the previous mode is restored).

        ``max_len=None`` means the default, 30 tokens.

        Returns a :class:`companion.nn.decoding.Decoded`.
        """
        from companion.data.seq2seq import BOS, EOS, PAD
        from companion.nn.decoding import beam_search, greedy

        from companion.nn.seq2seq import _check_decode_options

        if method not in ("greedy", "beam"):
            raise ValueError(f"method must be 'greedy' or 'beam'; got {method!r}.")
        _check_decode_options(method, beam_size, max_len, alpha)
        max_len = 30 if max_len is None else max_len  # translate_examples passes None
        was_training = self.training
        self.eval()
        try:
            fn, state = self.step_fn(src, src_lengths)
            kw = dict(bos=BOS, eos=EOS, pad=PAD, max_len=max_len)
            if method == "greedy":
                return greedy(fn, state, src.shape[0], **kw)
            return beam_search(fn, state, src.shape[0], beam_width=beam_size, alpha=alpha,
                               **kw)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def attention_map(self, src, src_lengths, tokens):
        """Weights (N, L, S) while the decoder reads ``tokens`` (N, L), BOS prepended here.

        With the decoder's own greedy output as ``tokens``, these are the weights it used
        while decoding (greedy feeds back exactly those tokens).
        """
        from companion.data.seq2seq import BOS
        from companion.nn.seq2seq import _check_target

        _check_source(src, src_lengths, self.encoder_vocab_size)
        _check_target("tokens", tokens, src.shape[0], self.K)
        was_training = self.training
        self.eval()
        try:
            tgt_in = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], dim=1)
            return self(src, src_lengths, tgt_in, return_attention=True)[1]
        finally:
            self.train(was_training)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- storage
    def config(self) -> dict:
        """The constructor's arguments (JSON-ready)."""
        return {"src_vocab_size": self.encoder_vocab_size, "tgt_vocab_size": self.K,
                "enc_hidden": self.key_size // (2 if self.bidirectional else 1),
                "dec_hidden": self.dec_hidden, "emb_size": self.embed.embedding_dim,
                "cell": self.cell_kind, "score": self.score_kind,
                "attn_size": self.attn_size, "bidirectional": self.bidirectional,
                "bridge": self.use_bridge}

    def to_dict(self, digits: int = 6) -> dict:
        """Settings and weights as plain lists rounded to ``digits`` decimals (JSON-ready)."""
        return {"config": self.config(),
                "weights": {k: torch.round(v.detach().double(), decimals=digits).tolist()
                            for k, v in self.state_dict().items()}}

    @classmethod
    def from_dict(cls, d: dict, *, dtype=torch.float64) -> AttentionSeq2Seq:
        """A model from :meth:`to_dict`'s output (e.g. stored results), in ``dtype``."""
        if not isinstance(d, dict) or "config" not in d or "weights" not in d:
            raise ValueError(f"d must be a dict with keys 'config' and 'weights' "
                             f"(AttentionSeq2Seq.to_dict); got "
                             f"{sorted(d) if isinstance(d, dict) else type(d).__name__}.")
        model = cls(**d["config"]).to(dtype)
        own = model.state_dict()
        if set(own) != set(d["weights"]):
            raise ValueError(f"weights must have the keys {sorted(own)}; got "
                             f"{sorted(d['weights'])}.")
        weights = {k: torch.as_tensor(v, dtype=own[k].dtype) for k, v in d["weights"].items()}
        for k, w in weights.items():
            if w.is_floating_point() and w.numel() and not _all_finite(w):
                raise ValueError(f"weights[{k!r}] must be finite; it holds NaN or infinity. The "
                                 f"stored model diverged, or the file was damaged.")
        model.load_state_dict(weights)
        return model


# ---------------------------------------------------------------- the batched ensemble
class AttentionEnsemble(nn.Module):
    """``M`` GRU attention encoder-decoders trained as one batched model.

    Member ``m`` starts from exactly the weights of ``AttentionSeq2Seq(src_vocab_size,
    tgt_vocab_size, enc_hidden=H, dec_hidden=H, emb_size=De, attn_size=A, cell="gru",
    score=score)`` built right after ``torch.manual_seed(seeds[m])``, and computes
    the same function (:meth:`member_model` returns that model with member ``m``'s current
    weights; ``tests/test_attention_model.py`` checks outputs and gradients). Parameters
    carry a leading member axis; a source shorter than the batch's longest keeps its
    final state after its last real token (the same as packing) and its padded positions
    are masked out of the attention. The sweep in ``experiments/attention_sweep.py``
    trains every seed and learning rate of one configuration this way.
    """

    _MAP = {"src_emb": "encoder.embedding.weight", "enc_w_ih": "encoder.rnn.weight_ih_l0",
            "enc_w_hh": "encoder.rnn.weight_hh_l0", "enc_b_ih": "encoder.rnn.bias_ih_l0",
            "enc_b_hh": "encoder.rnn.bias_hh_l0", "att_W": "attention.scorer.W.weight",
            "att_U": "attention.scorer.U.weight", "att_v": "attention.scorer.v",
            "att_G": "attention.scorer.G.weight", "tgt_emb": "embed.weight", "dec_w_ih": "cell.weight_ih", "dec_w_hh": "cell.weight_hh",
            "dec_b_ih": "cell.bias_ih", "dec_b_hh": "cell.bias_hh", "out_w": "readout.weight",
            "out_b": "readout.bias"}

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, hidden: int,
                 emb_size: int = 32, attn_size: int | None = None, seeds=(0,),
                 score: str = "additive", dtype=torch.float32):
        super().__init__()
        if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__len__") or not len(seeds):
            raise ValueError("seeds must be a non-empty list of ints, one per member.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        check_positive_int("hidden", hidden)
        check_positive_int("src_vocab_size", src_vocab_size, minimum=5)
        check_positive_int("tgt_vocab_size", tgt_vocab_size, minimum=5)
        check_positive_int("emb_size", emb_size)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
        if attn_size is not None:
            check_positive_int("attn_size", attn_size)
        self.sizes = dict(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                          enc_hidden=hidden, dec_hidden=hidden, emb_size=emb_size,
                          attn_size=attn_size, cell="gru", score=score)
        self.seeds = [check_positive_int("seeds entry", s, minimum=0) for s in seeds]
        self.dtype, self.H = dtype, check_positive_int("hidden", hidden)
        self.score = score
        refs = [self.reference(s) for s in self.seeds]
        own = refs[0].state_dict()
        self._map = {n: p for n, p in self._MAP.items() if p in own}
        for name, path in self._map.items():
            setattr(self, name, nn.Parameter(torch.stack(
                [r.state_dict()[path].detach().clone() for r in refs])))

    def reference(self, seed: int) -> AttentionSeq2Seq:
        """The single model that member seeded ``seed`` starts as."""
        torch.manual_seed(int(seed))
        return AttentionSeq2Seq(**self.sizes).to(self.dtype)

    @property
    def members(self) -> int:
        return len(self.seeds)

    def parameter_count(self) -> int:
        """Parameters of ONE member."""
        return sum(p[0].numel() for p in self.parameters())

    def member_model(self, m: int) -> AttentionSeq2Seq:
        """An :class:`AttentionSeq2Seq` holding member ``m``'s current weights (a copy)."""
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 0 <= m < self.members:
            raise ValueError(f"m must be a member index in [0, {self.members}); got {m!r}.")
        model = self.reference(self.seeds[m])
        model.load_state_dict({path: getattr(self, name)[m].detach().clone()
                               for name, path in self._map.items()})
        return model

    @staticmethod
    def _gru(gi, h, w_hh, b_hh):
        gh = torch.baddbmm(b_hh[:, None, :], h, w_hh.transpose(1, 2))
        H = h.shape[-1]
        r = torch.sigmoid(gi[..., :H] + gh[..., :H])
        z = torch.sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
        n = torch.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
        return (1 - z) * n + z * h

    def _shared(self, name, t):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.dim() not in (1, 2):
            if not isinstance(t, torch.Tensor):
                from companion.nn.seq2seq import _not_tensor

                raise _not_tensor(name, t, "shared by all members")
            raise TypeError(f"{name} must be a torch.long tensor shared by all members; got "
                            f"{type(t).__name__} {getattr(t, 'dtype', '')} "
                            f"{tuple(getattr(t, 'shape', ()))}.")
        return t

    def encode(self, src, src_lengths):
        """(keys (M, N, S, H), prepared U k (M, N, S, A), mask (N, S), h'(0) (M, N, H))."""
        src, src_lengths = self._shared("src", src), self._shared("src_lengths", src_lengths)
        _check_source(src, src_lengths, self.sizes["src_vocab_size"])
        lengths, mask = _lengths_mask(src, src_lengths)
        M, (N, S) = self.members, src.shape
        emb = self.src_emb[:, src]                                          # (M, N, S, De)
        gi = torch.einsum("mnsd,mgd->mnsg", emb, self.enc_w_ih) + self.enc_b_ih[:, None, None]
        h = emb.new_zeros(M, N, self.H)
        outs = []
        for t in range(S):
            new = self._gru(gi[:, :, t], h, self.enc_w_hh, self.enc_b_hh)
            alive = mask[None, :, t, None]
            h = torch.where(alive, new, h)
            outs.append(torch.where(alive, new, torch.zeros_like(new)))
        keys = torch.stack(outs, dim=2)
        if self.score == "additive":
            prep = torch.einsum("mnsh,mah->mnsa", keys, self.att_U)
        elif self.score == "general":
            prep = torch.einsum("mnsk,mhk->mnsh", keys, self.att_G)
        else:
            prep = keys
        return keys, prep, mask, h

    def _scores(self, h, prep):
        if self.score == "additive":
            wq = torch.einsum("mnh,mah->mna", h, self.att_W)
            return torch.einsum("mnsa,ma->mns", torch.tanh(wq[:, :, None] + prep), self.att_v)
        e = torch.einsum("mnh,mnsh->mns", h, prep)
        return e / math.sqrt(prep.shape[-1]) if self.score == "scaled_dot" else e

    def _step(self, e_t, h, keys, prep, mask):
        scores = self._scores(h, prep)
        ctx, w = _attend(scores.flatten(0, 1), keys.flatten(0, 1),
                         mask.repeat(self.members, 1))
        ctx = ctx.view(h.shape[0], h.shape[1], -1)
        x = torch.cat([e_t, ctx], dim=-1)
        gi = torch.einsum("mnx,mgx->mng", x, self.dec_w_ih) + self.dec_b_ih[:, None]
        h = self._gru(gi, h, self.dec_w_hh, self.dec_b_hh)
        o = torch.einsum("mnk,mvk->mnv", torch.cat([h, ctx], -1), self.out_w) \
            + self.out_b[:, None]
        return o, h, w.view(h.shape[0], h.shape[1], -1)

    def forward(self, src, src_lengths, tgt_in):
        """Teacher-forced logits (M, N, L, K)."""
        from companion.nn.seq2seq import _check_target

        keys, prep, mask, h = self.encode(src, src_lengths)
        tgt_in = self._shared("tgt_in", tgt_in)
        _check_target("tgt_in", tgt_in, src.shape[0], self.sizes["tgt_vocab_size"])
        emb = self.tgt_emb[:, tgt_in]                                       # (M, N, L, De)
        outs = []
        for t in range(tgt_in.shape[1]):
            o, h, _ = self._step(emb[:, :, t], h, keys, prep, mask)
            outs.append(o)
        return torch.stack(outs, dim=2)

    @torch.no_grad()
    def greedy(self, src, src_lengths, max_len: int) -> torch.Tensor:
        """Greedy decoding for every member: tokens (M, N, max_len), PAD after EOS."""
        from companion.data.seq2seq import BOS, EOS, PAD

        max_len = check_positive_int("max_len", max_len)
        keys, prep, mask, h = self.encode(src, src_lengths)
        M, N = h.shape[:2]
        tok = torch.full((M, N), BOS, dtype=torch.long)
        out = torch.full((M, N, max_len), PAD, dtype=torch.long)
        done = torch.zeros(M, N, dtype=torch.bool)
        ar = torch.arange(M)[:, None]
        for t in range(max_len):
            o, h, _ = self._step(self.tgt_emb[ar, tok], h, keys, prep, mask)
            tok = o.argmax(-1)
            out[:, :, t] = torch.where(done, torch.full_like(tok, PAD), tok)
            done = done | (tok == EOS)
            if bool(done.all()):
                break
        return out


def train_attention_ensemble(ens: AttentionEnsemble, batch_fn, *, steps: int, lr,
                             clip_norm=1.0) -> dict:
    """Train every member for ``steps`` Adam steps at its own learning rate.

    ``batch_fn(step) -> Batch`` (``companion.data.seq2seq.Batch``) shared by all members.
    Each member's loss is its mean cross-entropy over the real target tokens (what
    ``companion.nn.seq2seq.masked_cross_entropy`` computes); gradients are clipped per
    member by its own global norm; Adam is ``companion.nn.ensemble.BatchedAdam``. A member
    whose loss or gradient stops being finite is frozen from that step on (``diverged``).
    The loop is chapter 8's :func:`companion.nn.seq2seq.train_members`.
    Returns ``{"loss": (steps, M) array, "diverged": (M,) bool array}``.
    """
    from companion.nn.seq2seq import train_members

    if not isinstance(ens, AttentionEnsemble):
        raise TypeError(f"ens must be an AttentionEnsemble; got {type(ens).__name__}.")
    return train_members(ens, batch_fn, steps=steps, lr=lr, clip_norm=clip_norm)


# ---------------------------------------------------------------- memory of the backward pass
_COUNT = ("storage", "reference")


def saved_for_backward(fn, *args, count: str = "storage", **kwargs) -> int:
    """Bytes that autograd keeps for the backward pass of ``fn(*args, **kwargs)``.

    ``fn`` runs once under :func:`torch.autograd.graph.saved_tensors_hooks`, which sees
    every tensor an operation saves for its backward pass. Several operations often save
    the same tensor (the encoder states, read by every decoder step, are saved once per
    step), and a view shares the memory of its base. With ``count="storage"`` (the
    default) every distinct storage is counted once, with its full size: the memory the
    saved tensors actually hold. ``count="reference"`` adds ``numel * element_size`` of
    every saved reference, so a tensor saved by ``k`` operations counts ``k`` times (an
    upper bound, not the memory). The result does not depend on the machine.

    >>> x = torch.ones(1000, requires_grad=True)             # 4000 bytes
    >>> saved_for_backward(lambda: (x * x).sum())             # x saved twice, held once
    4000
    >>> saved_for_backward(lambda: (x * x).sum(), count="reference")
    8000
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable that runs the forward pass; got "
                        f"{type(fn).__name__}. Pass a function, e.g. lambda: loss_of(model).")
    if count not in _COUNT:
        raise ValueError(f"count must be one of {_COUNT}; got {count!r}. 'storage' counts "
                         "each saved storage once (the memory), 'reference' every saved "
                         "reference.")
    seen: dict[int, int] = {}
    refs, kept = [0], []  # kept: no saved storage is freed (and its address reused) early

    def pack(t):
        kept.append(t)
        refs[0] += t.numel() * t.element_size()
        storage = t.untyped_storage()
        if storage.nbytes():
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args, **kwargs)
    return sum(seen.values()) if count == "storage" else refs[0]
