"""Decoding as search: greedy, sampling (temperature, top-k, nucleus), beam search, exact search.

One batched, model-agnostic module that chapters 7, 8, 9 and 12 share. A model enters
only through a **step function**::

    step_fn(tokens, state) -> (log_probs, new_state)

``tokens`` is a LongTensor (B,) of the previous output tokens (``bos`` at the first
step), ``log_probs`` a float tensor (B, K) of *normalised* log-probabilities of the next
token (``torch.log_softmax`` of the logits), and ``state`` anything the model carries from
step to step: a tensor, or a tuple / list / dict of tensors, each with the batch on its
**first** axis (so that beam search can reorder and copy it; a torch ``nn.GRU`` hidden
state of shape (layers, B, H) must be transposed to (B, layers, H) by the step function).

Every decoder returns a :class:`Decoded`: ``tokens`` (N, L) padded with ``pad`` after the
end token, ``lengths`` (N,) counting the tokens produced (``eos`` included), ``log_prob``
(N,) the model's total log-probability of the sequence, ``score`` (N,) what the search
ranked by (``log_prob`` divided by the length penalty), and ``finished`` (N,) whether
``eos`` was produced within ``max_len``.

End of sequence: a hypothesis that emits ``eos`` stops; its later positions are ``pad``
and add nothing to its log-probability. A sequence that reaches ``max_len`` without
``eos`` is returned as it is, with ``finished = False``.

Length normalisation (Wu et al. 2016): beam search ranks hypotheses by
``log_prob / lp(length)`` with ``lp(n) = ((5 + n) / 6) ** alpha``. With ``alpha = 0``
the score is the log-probability itself, which, being a sum of negative terms, favours
short outputs; ``alpha > 0`` divides long hypotheses' (more negative) sums by more.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from companion.checks import check_callable, check_positive_int, check_probability, check_real

__all__ = ["Decoded", "beam_search", "beam_trace", "exact_search", "enumerate_sequences", "greedy",
           "length_penalty", "sample"]


@dataclass
class Decoded:
    """Decoded sequences: ``tokens`` (N, L); ``lengths``, ``log_prob``, ``score``,
    ``finished`` (N,)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    log_prob: torch.Tensor
    score: torch.Tensor
    finished: torch.Tensor


# ---------------------------------------------------------------- state helpers
def _map_state(state, fn):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, Mapping):
        return {k: _map_state(v, fn) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_map_state(v, fn) for v in state)
    raise TypeError(
        f"state must be a tensor, or a tuple/list/dict of tensors with the batch first; got "
        f"{type(state).__name__}. Wrap other objects in the step function's closure."
    )


def _check_state(state, N):
    def check(t):
        if t.dim() == 0 or t.shape[0] != N:
            raise ValueError(
                f"state tensors must have the batch on their first axis (size {N}); got a "
                f"tensor of shape {tuple(t.shape)}. A torch nn.RNN/GRU/LSTM hidden state is "
                f"(layers, B, H): pass h.transpose(0, 1) and transpose back inside step_fn."
            )
        if t.is_floating_point() and t.numel() and not _all_finite(t):
            raise ValueError(
                f"state must be finite; a state tensor of shape {tuple(t.shape)} holds NaN or "
                f"infinity. Check the encoder's inputs and weights.")
        return t
    _map_state(state, check)


def _all_finite(t):
    """Whether every entry is finite: a sum is NaN/inf when one is (or on overflow, when
    the exact test decides); much cheaper than ``torch.isfinite(t).all()``."""
    if math.isfinite(float(t.detach().sum())):
        return True
    return bool(torch.isfinite(t).all())


def _index(state, idx):
    return _map_state(state, lambda t: t.index_select(0, idx))


def _common(step_fn, batch_size, bos, eos, pad, max_len):
    check_callable("step_fn", step_fn, "(tokens (B,), state) -> (log_probs (B, K), state)")
    N = check_positive_int("batch_size", batch_size)
    for name, v in (("bos", bos), ("eos", eos), ("pad", pad)):
        check_positive_int(name, v, minimum=0)
    if bos == eos:
        raise ValueError(f"bos and eos must be different token ids; got bos = eos = {bos}. "
                         f"Every output would end at its first token. The course's ids: "
                         f"companion.data.seq2seq.BOS = 1, EOS = 2.")
    return N, check_positive_int("max_len", max_len)


def _call(step_fn, tokens, state, B, K=None, first=False):
    if first:  # the first step reads bos: an id out of the model's range fails in there
        try:
            out = step_fn(tokens, state)
        except (IndexError, RuntimeError) as err:
            if "index" not in str(err) and "out of" not in str(err):
                raise
            raise ValueError(
                f"bos must be a token id below the model's vocabulary size; step_fn failed "
                f"on the first step, which reads tokens = bos = {int(tokens[0])} ({err}). "
                f"Use the model's BOS id (companion.data.seq2seq.BOS = 1).") from err
    else:
        out = step_fn(tokens, state)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("step_fn must return a pair (log_probs, new_state); got "
                        f"{type(out).__name__}.")
    logp, new_state = out
    if not isinstance(logp, torch.Tensor) or not logp.is_floating_point():
        raise TypeError(f"step_fn's log_probs must be a float tensor (B, K); got "
                        f"{type(logp).__name__} {getattr(logp, 'dtype', '')}.")
    if logp.dim() != 2 or logp.shape[0] != B or (K is not None and logp.shape[1] != K):
        want = f"({B}, K)" if K is None else f"({B}, {K})"
        raise ValueError(f"step_fn's log_probs must be {want}, one row per hypothesis; got "
                         f"{tuple(logp.shape)}. Batch-first: index the last time step, o[:, -1].")
    if K is None:
        lse = torch.logsumexp(logp.detach().double(), dim=1)
        if not torch.all((lse - 0).abs() < 1e-3):
            raise ValueError(
                "step_fn must return normalised log-probabilities (each row's logsumexp = 0); "
                f"got rows with logsumexp up to {float(lse.abs().max()):.3g}. Did you return "
                "logits? Apply torch.log_softmax(logits, dim=-1)."
            )
    if torch.isnan(logp).any():
        raise ValueError("step_fn returned NaN log-probabilities: check the model's weights.")
    return logp, new_state


def _check_vocab(K, bos, eos, pad):
    for name, v in (("bos", bos), ("eos", eos), ("pad", pad)):
        if v >= K:
            raise ValueError(f"{name} must be a token id below the vocabulary size K={K}; "
                             f"got {v}.")


def length_penalty(lengths, alpha: float = 0.0):
    """``((5 + n) / 6) ** alpha`` (Wu et al. 2016); 1 when ``alpha = 0``.

    ``lengths``: an int, or an array / list / tensor of lengths, every one ``>= 0``.
    """
    alpha = check_real("alpha", alpha, low=0.0)
    if isinstance(lengths, (bool, str, bytes)) or lengths is None:
        raise TypeError(f"lengths must be a length >= 0 or an array of them; got "
                        f"{type(lengths).__name__} {lengths!r}.")
    try:
        n = torch.as_tensor(lengths, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"lengths must be a length >= 0 or an array of them; got "
                        f"{type(lengths).__name__}.") from err
    if n.numel() and not bool(torch.isfinite(n).all()):
        raise ValueError("lengths must be finite lengths >= 0; got NaN or infinity.")
    if n.numel() and float(n.min()) < 0:
        raise ValueError(f"lengths must be >= 0 (a count of tokens); got {float(n.min()):g}. "
                         f"A negative length has no penalty (it would give NaN).")
    return _lp(n, alpha)


def _lp(n, alpha):
    return ((5.0 + n) / 6.0) ** alpha


def _lpf(n, alpha):
    return float(_lp(torch.tensor(float(n), dtype=torch.float64), alpha))


# ---------------------------------------------------------------- greedy and sampling
def _filter(logp, temperature, top_k, top_p):
    """Log-probabilities after temperature, top-k and nucleus filtering (renormalised)."""
    z = logp / temperature
    if top_k is not None and top_k < z.shape[1]:
        kth = torch.topk(z, top_k, dim=1).values[:, -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    z = torch.log_softmax(z, dim=1)
    if top_p is not None and top_p < 1.0:
        srt, order = torch.sort(z, dim=1, descending=True)
        cum = torch.cumsum(srt.exp(), dim=1)
        # keep a token if the mass strictly before it is below p: the top token always stays
        drop_sorted = (cum - srt.exp()) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        z = torch.log_softmax(z.masked_fill(drop, float("-inf")), dim=1)
    return z


def _run(step_fn, state, N, bos, eos, pad, max_len, choose):
    _check_state(state, N)
    tokens = torch.full((N,), bos, dtype=torch.long)
    out = torch.full((N, max_len), pad, dtype=torch.long)
    total = torch.zeros(N, dtype=torch.float64)
    done = torch.zeros(N, dtype=torch.bool)
    lengths = torch.zeros(N, dtype=torch.long)
    K = None
    for t in range(max_len):
        logp, state = _call(step_fn, tokens, state, N, K, first=t == 0)
        if K is None:
            K = logp.shape[1]
            _check_vocab(K, bos, eos, pad)
        chosen = choose(logp)
        step_lp = logp.gather(1, chosen[:, None])[:, 0].double()
        total = total + torch.where(done, torch.zeros_like(step_lp), step_lp)
        lengths = lengths + (~done).long()
        out[:, t] = torch.where(done, torch.full_like(chosen, pad), chosen)
        done = done | (chosen == eos)
        tokens = chosen  # finished rows keep running; their outputs are discarded
        if bool(done.all()):
            break
    return Decoded(out, lengths, total, total.clone(), done)


@torch.no_grad()
def greedy(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
           max_len: int = 50) -> Decoded:
    """Greedy decoding: at every step take the most probable next token."""
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    return _run(step_fn, state, N, bos, eos, pad, max_len, lambda lp: lp.argmax(dim=1))


@torch.no_grad()
def sample(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
           max_len: int = 50, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, generator: torch.Generator | None = None) -> Decoded:
    """Ancestral sampling with temperature ``kappa``, optionally top-k and nucleus (top-p).

    The next token is drawn from ``softmax(log_probs / temperature)``, restricted to the
    ``top_k`` most probable tokens (Fan et al. 2018) and/or to the smallest set whose
    probability reaches ``top_p`` (Holtzman et al. 2020), renormalised. ``top_k=1``, a
    tiny ``top_p`` and a temperature close to 0 all reduce to greedy decoding. The
    ``log_prob`` returned is the *model's* (unfiltered, temperature 1) log-probability.
    """
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    temperature = check_real("temperature", temperature, low=0.0, low_open=True,
                             hint="Use greedy() for the temperature-0 limit.")
    if top_k is not None:
        top_k = check_positive_int("top_k", top_k)
    if top_p is not None:
        top_p = check_probability("top_p", top_p, open_low=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}. "
                        f"Create one with torch.Generator().manual_seed(seed).")

    def choose(lp):
        probs = _filter(lp.double(), temperature, top_k, top_p).exp()
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    return _run(step_fn, state, N, bos, eos, pad, max_len, choose)


# ---------------------------------------------------------------- beam search
def _stable_top(values: torch.Tensor, k: int):
    """The ``k`` largest entries of each row, ties broken towards the lower index (as argmax)."""
    srt, idx = torch.sort(values, dim=1, descending=True, stable=True)
    return srt[:, :k], idx[:, :k]


def _can_still_win(total, t_next, max_len, alpha):
    """An upper bound on the score any continuation of an active hypothesis can reach.

    Log-probabilities are <= 0, so a longer continuation has a total at most ``total``;
    its length penalty is at most ``lp(max_len)``. The score ``total / lp(n)`` of a
    negative total is largest for the largest penalty.
    """
    lo = total / _lp(torch.full_like(total, t_next), alpha)
    hi = total / _lp(torch.full_like(total, max_len), alpha)
    return torch.maximum(lo, hi)


@torch.no_grad()
def beam_search(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
                max_len: int = 50, beam_width: int = 4, alpha: float = 0.0,
                n_best: int = 1) -> Decoded:
    """Batched beam search with a pool of finished hypotheses and length normalisation.

    Each of the ``batch_size`` inputs keeps ``beam_width`` *active* (unfinished)
    hypotheses. At every step each active hypothesis is extended by every token:

    * an extension by ``eos`` is a finished hypothesis and goes to the input's **pool**
      of finished hypotheses, which keeps the ``beam_width`` best by score
      ``log_prob / length_penalty(length, alpha)``; it never has to compete with
      unfinished hypotheses for a place in the beam, so once found it cannot be lost;
    * the ``beam_width`` best of the other extensions (by log-probability; they all have
      the same length) become the next active hypotheses.

    Stopping rule: the search stops after ``max_len`` tokens, or as soon as, for every
    input, no active hypothesis can still beat the ``n_best``-th best finished one (a
    continuation's log-probability can only fall, so its score is bounded by
    ``log_prob / length_penalty(max_len, alpha)``). This early stop never changes the
    result. Active hypotheses that reach ``max_len`` without ``eos`` are candidates too
    (returned with ``finished = False``), so the candidate set is the one
    :func:`enumerate_sequences` and :func:`exact_search` search exhaustively.

    The result is the best of the pool and (if the search ran to ``max_len``) the active
    hypotheses; it never scores below a finished hypothesis the search has found. Ties are
    broken towards the lower token id and the earlier hypothesis, as ``argmax`` does, and
    a finished hypothesis wins a tie with an unfinished one. With ``beam_width=1`` the
    active hypothesis follows greedy decoding's path while greedy has not ended; the pool
    can then hold an earlier ending of that path that scores higher than greedy's output.

    Returns the best hypothesis per input, or with ``n_best > 1`` the ``n_best`` best
    (tokens (N, n_best, max_len), the other fields (N, n_best)), sorted best first.
    """
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    B = check_positive_int("beam_width", beam_width)
    n_best = check_positive_int("n_best", n_best)
    if n_best > B:
        raise ValueError(f"n_best must be <= beam_width={B}; got {n_best}. Widen the beam or "
                         f"ask for fewer hypotheses.")
    alpha = check_real("alpha", alpha, low=0.0)
    _check_state(state, N)
    ninf = float("-inf")
    # the pool of finished hypotheses, per input: the B best, best first
    pool_seq = torch.full((N, B, max_len), pad, dtype=torch.long)
    pool_total = torch.full((N, B), ninf, dtype=torch.float64)
    pool_score = torch.full((N, B), ninf, dtype=torch.float64)
    pool_len = torch.zeros((N, B), dtype=torch.long)

    def offer(cand_seq, cand_total, length):
        """Merge finished candidates (N, C) of one length into the pool (stable: pool first)."""
        nonlocal pool_seq, pool_total, pool_score, pool_len
        C = cand_total.shape[1]
        seq = torch.full((N, C, max_len), pad, dtype=torch.long)
        seq[:, :, :length] = cand_seq
        score = cand_total / _lp(torch.full_like(cand_total, length), alpha)
        all_score = torch.cat([pool_score, score], dim=1)
        best, idx = _stable_top(all_score, B)
        pool_score = best
        pool_total = torch.cat([pool_total, cand_total], dim=1).gather(1, idx)
        pool_len = torch.cat([pool_len, torch.full((N, C), length, dtype=torch.long)],
                             dim=1).gather(1, idx)
        pool_seq = torch.cat([pool_seq, seq], dim=1).gather(
            1, idx[:, :, None].expand(-1, -1, max_len))

    # the first step: expand the single <bos> hypothesis of every input
    tokens = torch.full((N,), bos, dtype=torch.long)
    logp, state = _call(step_fn, tokens, state, N, first=True)
    K = logp.shape[1]
    _check_vocab(K, bos, eos, pad)
    logp = logp.double()[:, None, :]  # (N, 1, K): one parent per input
    total = torch.zeros(N, 1, dtype=torch.float64)
    seqs = torch.zeros(N, 1, 0, dtype=torch.long)
    ran_to_end = True
    for t in range(max_len):
        Bc = seqs.shape[1]
        cand_total = total[:, :, None] + logp  # (N, Bc, K)
        # the endings: one finished candidate per active hypothesis
        ended = cand_total[:, :, eos]
        offer(torch.cat([seqs, torch.full((N, Bc, 1), eos, dtype=torch.long)], dim=2),
              ended, t + 1)
        # the continuations: the B best non-eos extensions become the new beam
        cont = cand_total.clone()
        cont[:, :, eos] = ninf
        flat = cont.reshape(N, Bc * K)
        Bn = min(B, int(torch.isfinite(flat).sum(dim=1).min()))
        if Bn == 0 or t == max_len - 1:
            if Bn > 0:  # the last step: unfinished hypotheses of exactly max_len tokens
                total, idx = _stable_top(flat, Bn)
                parent, tok = idx // K, idx % K
                seqs = torch.cat([seqs.gather(1, parent[:, :, None].expand(-1, -1, t)),
                                  tok[:, :, None]], dim=2)
            else:
                ran_to_end = False
            break
        total, idx = _stable_top(flat, Bn)  # (N, Bn)
        parent, tok = idx // K, idx % K
        seqs = torch.cat([seqs.gather(1, parent[:, :, None].expand(-1, -1, t)),
                          tok[:, :, None]], dim=2)
        rows = (torch.arange(N)[:, None] * Bc + parent).reshape(-1)
        state = _index(state, rows)
        # stop once no active hypothesis can beat the n_best-th finished one, for every input
        kth = pool_score[:, n_best - 1]
        bound = _can_still_win(total.max(dim=1).values, t + 2, max_len, alpha)
        if bool((bound <= kth).all()):
            ran_to_end = False
            break
        logp, state = _call(step_fn, tok.reshape(-1), state, N * Bn, K)
        logp = logp.double().reshape(N, Bn, K)
    # the result: the pool, and the unfinished hypotheses of length max_len if any
    c_seq, c_total, c_score, c_len = pool_seq, pool_total, pool_score, pool_len
    c_done = torch.ones((N, B), dtype=torch.bool)
    if ran_to_end:
        A = seqs.shape[1]
        a_score = total / _lp(torch.full_like(total, max_len), alpha)
        c_seq = torch.cat([c_seq, seqs], dim=1)
        c_total = torch.cat([c_total, total], dim=1)
        c_score = torch.cat([c_score, a_score], dim=1)
        c_len = torch.cat([c_len, torch.full((N, A), max_len, dtype=torch.long)], dim=1)
        c_done = torch.cat([c_done, torch.zeros((N, A), dtype=torch.bool)], dim=1)
    _, order = _stable_top(c_score, n_best)
    pick = lambda f: f.gather(1, order)  # noqa: E731
    out = c_seq.gather(1, order[:, :, None].expand(-1, -1, max_len))
    res = Decoded(out, pick(c_len), pick(c_total), pick(c_score), pick(c_done))
    if n_best == 1:
        res = Decoded(*(f[:, 0] for f in (res.tokens, res.lengths, res.log_prob, res.score,
                                          res.finished)))
    return res


# ---------------------------------------------------------------- exact search
def _single(state, n):
    return _index(state, torch.tensor([n]))


@torch.no_grad()
def enumerate_sequences(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
                        max_len: int = 5, alpha: float = 0.0, limit: int = 200_000) -> Decoded:
    """Exhaustive search: score every sequence the decoders can return, keep the best.

    The candidates are every sequence that ends with ``eos`` within ``max_len`` tokens and
    every sequence of exactly ``max_len`` tokens without ``eos`` (the same set beam search
    chooses from). There are about ``K ** max_len`` of them: use it on small vocabularies
    and short lengths only (``limit`` caps the number of prefixes per input). Returns the
    best by ``log_prob / length_penalty(length, alpha)``: the true argmax of the model,
    against which a search can be judged.
    """
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    alpha = check_real("alpha", alpha, low=0.0)
    limit = check_positive_int("limit", limit)
    _check_state(state, N)
    results = []
    for n in range(N):
        st = _single(state, n)
        prefixes = torch.full((1, 0), bos, dtype=torch.long)
        totals = torch.zeros(1, dtype=torch.float64)
        tokens = torch.full((1,), bos, dtype=torch.long)
        best = (float("-inf"), None, None, None)
        K = None
        for t in range(max_len):
            logp, st = _call(step_fn, tokens, st, len(tokens), K, first=t == 0)
            if K is None:
                K = logp.shape[1]
                _check_vocab(K, bos, eos, pad)
            cand = totals[:, None] + logp.double()  # (P, K)
            ln = t + 1
            lp = _lpf(ln, alpha)
            ends = cand[:, eos] / lp
            j = int(torch.argmax(ends))
            if float(ends[j]) > best[0]:
                best = (float(ends[j]), torch.cat([prefixes[j], torch.tensor([eos])]),
                        float(cand[j, eos]), True)
            if t == max_len - 1:
                rest = cand.clone()
                rest[:, eos] = float("-inf")
                flat = int(torch.argmax(rest))
                p, k = flat // K, flat % K
                if float(rest[p, k]) / lp > best[0]:
                    best = (float(rest[p, k]) / lp, torch.cat([prefixes[p], torch.tensor([k])]),
                            float(rest[p, k]), False)
                break
            keep = [k for k in range(K) if k != eos]
            P = len(tokens)
            if P * len(keep) > limit:
                raise ValueError(
                    f"enumerate_sequences would hold {P * len(keep)} prefixes at length {ln + 1}, "
                    f"more than limit={limit}. Lower max_len, or use exact_search (best-first)."
                )
            rows = torch.arange(P).repeat_interleave(len(keep))
            ks = torch.tensor(keep).repeat(P)
            totals = cand[rows, ks]
            prefixes = torch.cat([prefixes[rows], ks[:, None]], dim=1)
            st = _index(st, rows)
            tokens = ks
        results.append(best)
    return _pack(results, max_len, pad, alpha)


def _pack(results, max_len, pad, alpha):
    N = len(results)
    out = torch.full((N, max_len), pad, dtype=torch.long)
    lengths = torch.zeros(N, dtype=torch.long)
    for n, (_, seq, _, _) in enumerate(results):
        out[n, : len(seq)] = seq
        lengths[n] = len(seq)
    lp = torch.tensor([r[2] for r in results], dtype=torch.float64)
    fin = torch.tensor([r[3] for r in results])
    return Decoded(out, lengths, lp, lp / _lp(lengths.double(), alpha), fin)


@torch.no_grad()
def exact_search(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
                 max_len: int = 50, max_expansions: int = 10_000) -> Decoded:
    """The most probable sequence, found exactly by best-first (uniform-cost) search.

    Every token adds a cost ``-log p >= 0``, so the first *complete* hypothesis taken off a
    priority queue ordered by total cost is the most probable one (Dijkstra's argument):
    the model's true argmax, without enumerating ``K ** max_len`` sequences. Complete
    means ending in ``eos`` or reaching ``max_len`` tokens, as for the other decoders.
    Unnormalised scores only (``alpha = 0``): length normalisation breaks the monotonicity
    the argument needs. Raises ``RuntimeError`` after ``max_expansions`` expansions per input.
    """
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    max_expansions = check_positive_int("max_expansions", max_expansions)
    _check_state(state, N)
    results, K = [], None
    for n in range(N):
        tie = itertools.count()
        heap = [(0.0, next(tie), (), _single(state, n), bos)]
        found = None
        expansions = 0
        while heap:
            cost, _, seq, st, last = heapq.heappop(heap)
            if (seq and seq[-1] == eos) or len(seq) == max_len:
                found = (-cost, torch.tensor(seq, dtype=torch.long), -cost,
                         bool(seq and seq[-1] == eos))
                break
            expansions += 1
            if expansions > max_expansions:
                raise RuntimeError(
                    f"exact_search expanded {max_expansions} prefixes for input {n} without "
                    f"finishing: the model is too uncertain. Raise max_expansions or lower max_len."
                )
            logp, new_st = _call(step_fn, torch.tensor([last]), st, 1, K, first=not seq)
            if K is None:
                K = logp.shape[1]
                _check_vocab(K, bos, eos, pad)
            for k in range(K):
                c = cost - float(logp[0, k])
                if c != float("inf"):
                    heapq.heappush(heap, (c, next(tie), seq + (k,), new_st, k))
        results.append(found)
    return _pack(results, max_len, pad, 0.0)


@torch.no_grad()
def beam_trace(step_fn, state, *, bos: int, eos: int, pad: int = 0, max_len: int = 10,
               beam_width: int = 3, alpha: float = 0.0, labels=None, show: int = 3):
    """Beam search on ONE input, written as a plain loop, recording the search tree.

    A reference implementation of the same search as :func:`beam_search` (same pool of
    finished hypotheses, same stopping rule and tie-breaks; a test checks they agree) that
    also returns what it did, for :func:`companion.plots.decoding.beam_tree_figure`.

    Returns ``(levels, best)``: ``levels[t]`` lists the candidates drawn at step t (for
    every active hypothesis its ``show`` most probable expansions, plus any other that
    survived) as dicts ``label, parent, log_prob, kept, finished``: ``kept`` is True for a
    candidate that joined the beam or the pool of finished hypotheses, ``finished`` for an
    ending (``eos``). ``best`` is the ``(tokens, log_prob, score)`` of the result.
    """
    _common(step_fn, 1, bos, eos, pad, max_len)
    if labels is not None and (isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__")):
        raise TypeError(f"labels must be a list of token strings (vocab.itos); got "
                        f"{type(labels).__name__}.")
    B = check_positive_int("beam_width", beam_width)
    show = check_positive_int("show", show)
    alpha = check_real("alpha", alpha, low=0.0)
    _check_state(state, 1)

    def score(seq, total):
        return total / _lpf(len(seq), alpha)

    # an active hypothesis: (tokens, total, state, index in the previous drawn level)
    beam = [((), 0.0, state, -1)]
    pool = []  # finished: (score, order found, tokens, total), the B best
    levels, K, found, ran_to_end = [], None, 0, True
    for t in range(max_len):
        cands = []  # (tokens, total, new state, token, parent j)
        for j, (seq, total, st, _) in enumerate(beam):
            last = torch.tensor([seq[-1] if seq else bos])
            logp, new_st = _call(step_fn, last, st, 1, K, first=not seq)
            if K is None:
                K = logp.shape[1]
                _check_vocab(K, bos, eos, pad)
                if labels is not None and len(labels) < K:
                    raise ValueError(f"labels must name every token id, {K} of them (the "
                                     f"vocabulary size); got {len(labels)}.")
            for k in range(K):
                cands.append((seq + (k,), total + float(logp[0, k]), new_st, k, j))
        # endings go to the pool (stable: earlier entries win ties)
        found_before = found
        for i, c in enumerate(cands):
            if c[3] == eos:
                pool.append((score(c[0], c[1]), found, c[0], c[1], i))
                found += 1
        pool = sorted(pool, key=lambda p: (-p[0], p[1]))[:B]
        entered = {p[4] for p in pool if p[1] >= found_before}
        cont = [i for i, c in enumerate(cands) if c[3] != eos and c[1] != float("-inf")]
        ranked = sorted(cont, key=lambda i: -cands[i][1])  # stable: lower index first
        kept = set(ranked[:B])
        drawn = []
        for j in range(len(beam)):
            mine = sorted((i for i, c in enumerate(cands) if c[4] == j
                           and c[1] != float("-inf")), key=lambda i: -cands[i][1])
            for i in mine[:show] + [i for i in mine[show:] if i in kept or i in entered]:
                seq, total, _, k, _ = cands[i]
                name = labels[k] if labels is not None else str(k)
                drawn.append({"label": name, "parent": beam[j][3], "log_prob": total,
                              "kept": i in kept or i in entered, "finished": k == eos,
                              "_i": i})
        index = {d["_i"]: n for n, d in enumerate(drawn)}
        for d in drawn:
            d.pop("_i")
        levels.append(drawn)
        new_beam = [(cands[i][0], cands[i][1], cands[i][2], index.get(i, beam[cands[i][4]][3]))
                    for i in ranked[:B]]
        if not new_beam:
            ran_to_end = False
            break
        beam = new_beam
        if t == max_len - 1:
            break
        best_active = max(h[1] for h in beam)
        bound = max(best_active / _lpf(t + 2, alpha),
                    best_active / _lpf(max_len, alpha))
        if len(pool) >= 1 and bound <= pool[0][0]:
            ran_to_end = False
            break
    finals = [(p[0], 0, p[2], p[3]) for p in pool]
    if ran_to_end:
        finals += [(score(h[0], h[1]), 1, h[0], h[1]) for h in beam]
    top = sorted(finals, key=lambda f: (-f[0], f[1]))[0]
    return levels, (list(top[2]), top[3], top[0])
