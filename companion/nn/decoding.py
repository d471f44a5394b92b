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
        return t
    _map_state(state, check)


def _index(state, idx):
    return _map_state(state, lambda t: t.index_select(0, idx))


def _common(step_fn, batch_size, bos, eos, pad, max_len):
    check_callable("step_fn", step_fn, "(tokens (B,), state) -> (log_probs (B, K), state)")
    N = check_positive_int("batch_size", batch_size)
    for name, v in (("bos", bos), ("eos", eos), ("pad", pad)):
        check_positive_int(name, v, minimum=0)
    return N, check_positive_int("max_len", max_len)


def _call(step_fn, tokens, state, B, K=None):
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
    """``((5 + n) / 6) ** alpha`` (Wu et al. 2016); 1 when ``alpha = 0``."""
    alpha = check_real("alpha", alpha, low=0.0)
    n = torch.as_tensor(lengths, dtype=torch.float64)
    return ((5.0 + n) / 6.0) ** alpha


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
        logp, state = _call(step_fn, tokens, state, N, K)
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
@torch.no_grad()
def beam_search(step_fn, state, batch_size: int, *, bos: int, eos: int, pad: int = 0,
                max_len: int = 50, beam_width: int = 4, alpha: float = 0.0,
                n_best: int = 1) -> Decoded:
    """Batched beam search with length normalisation and end-of-sequence handling.

    Each of the ``batch_size`` inputs keeps ``beam_width`` hypotheses. At every step each
    unfinished hypothesis is extended by every token, finished ones are carried over
    unchanged (they stop growing), and the ``beam_width`` best by
    ``log_prob / length_penalty(length, alpha)`` survive. The search stops when every
    hypothesis has ended or after ``max_len`` tokens. With ``beam_width=1`` this is
    exactly :func:`greedy`.

    Returns the best hypothesis per input, or with ``n_best > 1`` the ``n_best`` best
    (tokens (N, n_best, L), the other fields (N, n_best)), sorted best first.
    """
    N, max_len = _common(step_fn, batch_size, bos, eos, pad, max_len)
    B = check_positive_int("beam_width", beam_width)
    n_best = check_positive_int("n_best", n_best)
    if n_best > B:
        raise ValueError(f"n_best must be <= beam_width={B}; got {n_best}.")
    alpha = check_real("alpha", alpha, low=0.0)
    _check_state(state, N)
    # the first step: expand the single <bos> hypothesis of every input
    tokens = torch.full((N,), bos, dtype=torch.long)
    logp, state = _call(step_fn, tokens, state, N)
    K = logp.shape[1]
    _check_vocab(K, bos, eos, pad)
    Bk = min(B, K)
    top_lp, top_tok = torch.topk(logp.double(), Bk, dim=1)  # (N, Bk)
    total = top_lp
    seqs = top_tok[:, :, None]  # (N, Bk, 1)
    done = top_tok == eos
    lengths = torch.ones(N, Bk, dtype=torch.long)
    state = _index(state, torch.arange(N).repeat_interleave(Bk))  # rows n*Bk + b
    for t in range(1, max_len):
        if bool(done.all()):
            break
        Bc = seqs.shape[1]
        inp = torch.where(done, torch.full_like(seqs[:, :, -1], eos), seqs[:, :, -1])
        logp, state = _call(step_fn, inp.reshape(-1), state, N * Bc, K)
        logp = logp.double().reshape(N, Bc, K)
        # a finished hypothesis has one continuation, <pad>, at no cost
        frozen = torch.full((K,), float("-inf"), dtype=torch.float64)
        frozen[pad] = 0.0
        logp = torch.where(done[:, :, None], frozen, logp)
        cand_total = total[:, :, None] + logp  # (N, Bc, K)
        cand_len = lengths[:, :, None] + (~done[:, :, None]).long()
        cand_score = cand_total / length_penalty(cand_len.expand(-1, -1, K), alpha)
        flat = cand_score.reshape(N, Bc * K)
        Bn = min(B, int(torch.isfinite(flat).sum(dim=1).min()))
        best, idx = torch.topk(flat, Bn, dim=1)  # (N, Bn)
        parent, tok = idx // K, idx % K
        total = cand_total.reshape(N, -1).gather(1, idx)
        lengths = cand_len.expand(-1, -1, K).reshape(N, -1).gather(1, idx)
        prev_done = done.gather(1, parent)
        seqs = torch.cat([seqs.gather(1, parent[:, :, None].expand(-1, -1, seqs.shape[2])),
                          tok[:, :, None]], dim=2)
        done = prev_done | (tok == eos)
        rows = (torch.arange(N)[:, None] * Bc + parent).reshape(-1)
        state = _index(state, rows)
    score = total / length_penalty(lengths, alpha)
    order = torch.argsort(score, dim=1, descending=True, stable=True)[:, :n_best]
    L = seqs.shape[2]
    out = torch.full((N, order.shape[1], max_len), pad, dtype=torch.long)
    out[:, :, :L] = seqs.gather(1, order[:, :, None].expand(-1, -1, L))
    res = Decoded(out, lengths.gather(1, order), total.gather(1, order),
                  score.gather(1, order), done.gather(1, order))
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
            logp, st = _call(step_fn, tokens, st, len(tokens), K)
            if K is None:
                K = logp.shape[1]
                _check_vocab(K, bos, eos, pad)
            cand = totals[:, None] + logp.double()  # (P, K)
            ln = t + 1
            lp = float(length_penalty(ln, alpha))
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
    return Decoded(out, lengths, lp, lp / length_penalty(lengths, alpha), fin)


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
            logp, new_st = _call(step_fn, torch.tensor([last]), st, 1, K)
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

    A reference implementation of the same search as :func:`beam_search` (a test checks
    they agree) that also returns what it did, for
    :func:`companion.plots.decoding.beam_tree_figure`.

    Returns ``(levels, best)``: ``levels[t]`` lists the candidates drawn at step t (for
    every hypothesis in the beam its ``show`` most probable expansions, plus any other
    that survived) as dicts ``label, parent, log_prob, kept``; ``best`` is the
    ``(tokens, log_prob, score)`` of the best final hypothesis.
    """
    _common(step_fn, 1, bos, eos, pad, max_len)
    B = check_positive_int("beam_width", beam_width)
    show = check_positive_int("show", show)
    alpha = check_real("alpha", alpha, low=0.0)
    _check_state(state, 1)
    # a hypothesis: (tokens, total, state, done, index in the previous drawn level)
    beam = [((), 0.0, state, False, -1)]
    levels, K = [], None
    for t in range(max_len):
        if all(h[3] for h in beam):
            break
        cands = []
        for j, (seq, total, st, done, _) in enumerate(beam):
            if done:
                cands.append((seq, total, st, True, None, j))
                continue
            last = torch.tensor([seq[-1] if seq else bos])
            logp, new_st = _call(step_fn, last, st, 1, K)
            if K is None:
                K = logp.shape[1]
                _check_vocab(K, bos, eos, pad)
            for k in range(K):
                c = total + float(logp[0, k])
                if c != float("-inf"):
                    cands.append((seq + (k,), c, new_st, k == eos, k, j))
        def score(c):
            return c[1] / float(length_penalty(len(c[0]), alpha))
        ranked = sorted(range(len(cands)), key=lambda i: -score(cands[i]))
        kept = set(ranked[:B])
        drawn, new_beam = [], []
        for j in range(len(beam)):
            mine = [i for i in ranked if cands[i][5] == j and cands[i][4] is not None]
            for i in mine[:show] + [i for i in mine[show:] if i in kept]:
                seq, total, st, done, k, _ = cands[i]
                name = labels[k] if labels is not None else str(k)
                drawn.append({"label": name, "parent": beam[j][4], "log_prob": total,
                              "kept": i in kept, "_i": i})
        index = {d["_i"]: n for n, d in enumerate(drawn)}
        for d in drawn:
            d.pop("_i")
        for i in ranked[:B]:
            seq, total, st, done, k, j = cands[i]
            new_beam.append((seq, total, st, done, index.get(i, beam[j][4])))
        levels.append(drawn)
        beam = new_beam
    best = max(beam, key=lambda h: h[1] / float(length_penalty(len(h[0]), alpha)))
    return levels, (list(best[0]), best[1], best[1] / float(length_penalty(len(best[0]), alpha)))
