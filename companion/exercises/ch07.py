"""Checkers for the exercises of chapter 7 (vector-to-sequence, teacher forcing, decoding).

Every checker runs the answer with the package's decoders (and this module's own
references) disabled, and tests it on cases drawn afresh from :func:`unseen_rng` besides
its fixed ones. The expected values come from the small independent references below,
computed before the answer runs.
"""

from __future__ import annotations

import numpy as np

from companion.checks import check_callable
from companion.exercises import ok as _ok
from companion.exercises import references_disabled, unchanged, unseen_rng
from companion.exercises import require as _require

__all__ = ["check_beam_step", "check_beam_search", "check_nucleus", "check_teacher_batch"]

# The package's decoders hold the answers of 7.2 to 7.4; this module's references too.
_DECODERS = (
    "companion.nn.decoding.beam_search",
    "companion.nn.decoding.beam_trace",
    "companion.nn.decoding.exact_search",
    "companion.nn.decoding.enumerate_sequences",
    "companion.nn.decoding.greedy",
    "companion.nn.decoding.sample",
    "companion.nn.decoding._filter",
    "companion.nn.decoding._run",
)
_OWN = (
    "companion.exercises.ch07._ref_teacher_batch",
    "companion.exercises.ch07._ref_beam_step",
    "companion.exercises.ch07._ref_nucleus",
    "companion.exercises.ch07._ref_beam_search",
    "companion.exercises.ch07._ref_greedy",
    "companion.exercises.ch07._ref_exhaustive",
)


def _finite(values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    _require(np.all(np.isfinite(arr)), f"{what} holds NaN or inf.")
    return arr


# ---------------------------------------------------------------- 7.1 a teacher-forcing batch
def _ref_teacher_batch(sentences, bos, eos, pad):
    rows = [[int(v) for v in np.asarray(s).reshape(-1)] for s in sentences]
    T = max(len(r) for r in rows) + 1
    inputs = np.full((len(rows), T), pad, dtype=np.int64)
    targets = np.full((len(rows), T), pad, dtype=np.int64)
    mask = np.zeros((len(rows), T), dtype=bool)
    for n, r in enumerate(rows):
        inputs[n, : len(r) + 1] = [bos] + r
        targets[n, : len(r) + 1] = r + [eos]
        mask[n, : len(r) + 1] = True
    return inputs, targets, mask


#: what an answer could hand the work to (the package's shift and batching helpers)
_BATCHING = ("companion.data.captions.shift_right", "companion.data.seq2seq.collate")


def check_teacher_batch(fn) -> None:
    """Exercise 7.1: ``fn(sentences, bos, eos, pad) -> (inputs, targets, mask)``, the
    teacher-forcing batch of sentences of different lengths (lists of token ids without
    the end token), each array (N, T) with T = the longest length + 1."""
    check_callable("fn", fn, "(sentences, bos, eos, pad) -> (inputs, targets, mask)")
    fixed = np.random.default_rng(71)
    hidden = unseen_rng()
    # (lengths, bos, eos, pad, generator, as_lists)
    cases = [([3], 1, 2, 0, fixed, True), ([2, 5, 1], 1, 2, 0, fixed, True),
             ([4, 4], 1, 2, 0, fixed, False), ([1, 6, 3, 2], 7, 8, 9, fixed, False)]
    for _ in range(5):
        n = int(hidden.integers(1, 7))
        ids = hidden.permutation(30)[:3]
        cases.append((hidden.integers(1, 10, size=n).tolist(), int(ids[0]), int(ids[1]),
                      int(ids[2]), hidden, bool(hidden.integers(2))))
    for lengths, bos, eos, pad, g, as_lists in cases:
        sentences = [g.integers(30, 60, size=k) for k in lengths]
        if as_lists:
            sentences = [s.tolist() for s in sentences]
        want_in, want_tg, want_mk = _ref_teacher_batch(sentences, bos, eos, pad)
        before = [list(np.asarray(s)) for s in sentences]
        with references_disabled(fn, *_BATCHING, *_OWN):
            got = fn(sentences, bos, eos, pad)
        _require(all(list(np.asarray(s)) == b for s, b in zip(sentences, before))
                 and len(sentences) == len(before),
                 "your function changed the sentences in place; build new arrays instead.")
        _require(isinstance(got, (tuple, list)) and len(got) == 3,
                 "return a triple (inputs, targets, mask).")
        inputs, targets, mask = (np.asarray(a) for a in got)
        T = max(lengths) + 1
        shape = (len(lengths), T)
        for name, arr in (("inputs", inputs), ("targets", targets), ("mask", mask)):
            _require(arr.shape == shape,
                     f"{name} must have shape (N, T) with N sentences and T = the longest "
                     f"length + 1 (room for the end token); got {arr.shape} for "
                     f"{len(lengths)} sentences of lengths {lengths}.")
        _finite(inputs, "your inputs")
        _finite(targets, "your targets")
        _require(np.array_equal(targets[want_mk], want_tg[want_mk]),
                 "each target row must be the sentence followed by eos, right where the "
                 "sentence ends (at its own length, not at the end of the row).")
        _require(np.array_equal(targets, want_tg),
                 "after each target's eos, the row must hold pad only.")
        _require(np.array_equal(inputs[:, 0], want_in[:, 0]),
                 "the first input of every row must be the begin token bos (the argument, "
                 "not a constant): at step 1 nothing has been generated yet.")
        _require(np.array_equal(inputs[want_mk], want_in[want_mk]),
                 "the input at step t must be the target of step t-1 (shift right by one, "
                 "bos first); feeding targets[:, t] at step t lets the model copy its answer.")
        _require(np.array_equal(inputs, want_in),
                 "the end token is never an input (nothing is predicted after it): after "
                 "bos and the sentence, an input row holds pad only.")
        _require(mask.dtype == bool or np.isin(mask, (0, 1)).all(),
                 "mask must be boolean: True where the loss counts a target.")
        _require(np.array_equal(mask.astype(bool), want_mk),
                 "mask must be True on every real target token, the end token included "
                 "(the model must learn when to stop), and False on the padding.")
    _ok("your batch shifts each sentence right behind bos, ends each target with eos at "
        "its own length, and masks exactly the real target tokens.")


# ---------------------------------------------------------------- 7.2 one beam step
def _ref_beam_step(totals, log_probs, beam_width):
    B, K = log_probs.shape
    cands = sorted(((float(totals[b] + log_probs[b, k]), b, k) for b in range(B) for k in range(K)),
                   key=lambda c: -c[0])[:beam_width]
    return (np.array([c[1] for c in cands]), np.array([c[2] for c in cands]),
            np.array([c[0] for c in cands]))


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def check_beam_step(fn) -> None:
    """Exercise 7.2: ``fn(totals (B,), log_probs (B, K), beam_width) -> (parents, tokens,
    new_totals)``, the ``beam_width`` best one-token extensions, best first."""
    check_callable("fn", fn, "(totals, log_probs, beam_width) -> (parents, tokens, totals)")
    fixed = np.random.default_rng(72)
    hidden = unseen_rng()
    cases = [(1, 4, 1, fixed), (1, 5, 3, fixed), (3, 6, 3, fixed), (4, 3, 5, fixed),
             (2, 7, 2, fixed)]
    for _ in range(6):
        B, K = int(hidden.integers(1, 6)), int(hidden.integers(2, 9))
        cases.append((B, K, int(hidden.integers(1, B * K + 1)), hidden))
    for B, K, width, g in cases:
        totals = -g.gamma(2.0, 1.0, size=B)
        log_probs = _log_softmax(g.normal(size=(B, K)) * 2)
        p_ref, t_ref, n_ref = _ref_beam_step(totals, log_probs, width)
        args = (totals.copy(), log_probs.copy())
        with references_disabled(fn, *_DECODERS, *_OWN):
            got = fn(*args, width)
        unchanged(totals, args[0], "totals")
        unchanged(log_probs, args[1], "log_probs")
        _require(isinstance(got, tuple) and len(got) == 3, "return the triple (parents, tokens, totals)")
        parents, tokens, new = (np.asarray(v) for v in got)
        _require(parents.shape == (width,) and tokens.shape == (width,) and new.shape == (width,),
                 f"with B={B} hypotheses and beam_width={width}, return {width} survivors; got "
                 f"shapes {parents.shape}, {tokens.shape} and {new.shape}.")
        _finite(new, "your new totals")
        _require(np.issubdtype(parents.dtype, np.integer) and np.issubdtype(tokens.dtype, np.integer),
                 "parents and tokens must be integer arrays (indices into the beam and the vocabulary).")
        _require(np.all((parents >= 0) & (parents < B)) and np.all((tokens >= 0) & (tokens < K)),
                 "every parent must index a row of log_probs and every token a column.")
        _require(np.allclose(new, totals[parents] + log_probs[parents, tokens]), "each new total must be its parent's total PLUS the log-probability of the "
                 "chosen token (log-probabilities add along a sequence).")
        _require(np.allclose(np.sort(new)[::-1], n_ref), "you kept the wrong candidates. Rank all B*K extensions TOGETHER by total "
                 "log-probability, not the best token of each hypothesis separately.")
        _require(np.all(np.diff(new) <= 1e-12), "sort the survivors best first.")
        _require(np.array_equal(parents, p_ref) and np.array_equal(tokens, t_ref), "the totals are right but parents/tokens are not: each survivor's parent is the "
                 "ROW of the (B, K) candidate table it came from and its token the COLUMN; check "
                 "how you turn a position in the flattened table back into the two.")
    _ok("your beam step keeps the best extensions over all hypotheses together.")


# ---------------------------------------------------------------- 7.3 nucleus filtering
def _ref_nucleus(probs, p):
    probs = np.asarray(probs, dtype=float)
    order = sorted(range(len(probs)), key=lambda k: -probs[k])
    keep, mass = [], 0.0
    for k in order:
        if keep and mass >= p:
            break
        keep.append(k)
        mass += probs[k]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def check_nucleus(fn) -> None:
    """Exercise 7.3: ``fn(probs (K,), p) -> probs`` after nucleus (top-p) filtering."""
    check_callable("fn", fn, "(probs, p) -> probs")
    fixed = np.random.default_rng(73)
    hidden = unseen_rng()
    cases = [(np.array([0.5, 0.3, 0.15, 0.05]), 0.7), (np.array([0.1, 0.6, 0.3]), 0.5),
             (np.array([0.25, 0.25, 0.25, 0.25]), 1.0), (fixed.dirichlet(np.ones(8)), 0.9),
             (np.array([0.2, 0.8]), 1e-9)]
    for _ in range(6):
        K = int(hidden.integers(2, 12))
        cases.append((hidden.dirichlet(np.full(K, float(hidden.uniform(0.3, 2.0)))),
                      float(hidden.uniform(0.05, 0.99))))
    for probs, p in cases:
        want = _ref_nucleus(probs, p)
        keep = want > 0
        passed = probs.copy()
        with references_disabled(fn, *_DECODERS, *_OWN):
            got = fn(passed, p)
        unchanged(probs, passed, "probs")
        got = np.asarray(got, dtype=float)
        _require(got.shape == probs.shape, f"return a vector of shape {probs.shape}; got {got.shape}.")
        _finite(got, "your filtered probabilities")
        _require(np.isclose(got.sum(), 1.0), "renormalise: the kept probabilities must sum to 1.")
        _require(np.array_equal(got > 0, keep), "the wrong tokens were kept. Keep the most probable tokens, in decreasing order, "
                 "until their total reaches p; the token that crosses p stays, and the top token "
                 "always stays (even for a tiny p).")
        _require(np.allclose(got, want), "the kept tokens must keep their relative probabilities.")
    _ok("your nucleus filter keeps the smallest top set reaching p, renormalised.")


# ---------------------------------------------------------------- 7.4 a whole beam search
def _ref_beam_search(step_fn, init_state, bos, eos, beam_width, max_len):
    """Beam search with a pool of finished hypotheses (the rule of Exercise 7.4)."""
    beam = [((), 0.0, init_state)]  # (tokens, total log-probability, state)
    pool = []                       # finished: (tokens, total)
    for _ in range(max_len):
        if not beam or (pool and max(f[1] for f in pool) >= max(h[1] for h in beam)):
            break
        cands = []
        for seq, total, state in beam:
            logp, new_state = step_fn(seq[-1] if seq else bos, state)
            for k, lp in enumerate(np.asarray(logp, dtype=float)):
                if np.isfinite(lp):
                    cands.append((seq + (k,), total + float(lp), new_state))
        cands.sort(key=lambda c: -c[1])  # stable: ties keep the beam's order
        pool += [(seq, total) for seq, total, _ in cands[:beam_width] if seq[-1] == eos]
        beam = [c for c in cands if c[0][-1] != eos][:beam_width]
    best = max(pool or [(seq, total) for seq, total, _ in beam], key=lambda f: f[1])
    return list(best[0]), best[1]


def _ref_greedy(step_fn, init_state, bos, eos, max_len):
    seq, total, state, last = [], 0.0, init_state, bos
    for _ in range(max_len):
        logp, state = step_fn(last, state)
        last = int(np.argmax(logp))
        seq.append(last)
        total += float(logp[last])
        if last == eos:
            break
    return seq, total


def _ref_exhaustive(step_fn, init_state, bos, eos, max_len):
    """The most probable sequence that ends with eos within max_len tokens (brute force)."""
    best = (None, -np.inf)
    frontier = [((), 0.0, init_state)]
    for _ in range(max_len):
        grown = []
        for seq, total, state in frontier:
            logp, new_state = step_fn(seq[-1] if seq else bos, state)
            for k, lp in enumerate(np.asarray(logp, dtype=float)):
                if k == eos:
                    if total + lp > best[1]:
                        best = (list(seq) + [k], total + float(lp))
                else:
                    grown.append((seq + (k,), total + float(lp), new_state))
        frontier = grown
    return best


class _Counted:
    """A step function that counts its calls (the search's cost)."""

    def __init__(self, step_fn):
        self.step_fn, self.calls = step_fn, 0

    def __call__(self, token, state):
        self.calls += 1
        return self.step_fn(token, state)


def _rnn_model(g, K, eos, H=4):
    """A small random tanh-RNN language model as a step function (NumPy, K tokens)."""
    E = g.normal(size=(K, H))
    W = g.normal(size=(H, H)) * (0.9 / np.sqrt(H))
    V = g.normal(size=(K, H)) * g.uniform(0.8, 2.5)
    c = g.normal(size=K) * 0.5
    c[eos] += g.uniform(-1.0, 1.0)

    def step_fn(token, state):
        h = np.tanh(W @ state + E[int(token)])
        return _log_softmax(V @ h + c), h

    return step_fn, np.zeros(H)


def _tree_step_fn():
    """A model whose best sentence finishes early and is then outscored by two unfinished ones.

    Tokens 0 = <bos>, 1 = <eos>, 2 = a, 3 = b. After <bos>: b 0.68, a 0.30. After [a]:
    <eos> 0.95. After [b]: a 0.97. After [b, a]: a 0.50, b 0.48. Everything else is
    nearly uniform, so [a, <eos>] is the most probable sentence, while [b, a, a] and
    [b, a, b] beat it for one step before they fall far below it.
    """
    table = {(): [0.01, 0.01, 0.30, 0.68], (2,): [0.02, 0.95, 0.02, 0.01],
             (3,): [0.01, 0.01, 0.97, 0.01], (3, 2): [0.01, 0.01, 0.50, 0.48]}
    flat = [0.24, 0.26, 0.25, 0.25]

    def step_fn(token, state):
        # the state is the prefix before `token`; the model's input is `token`
        prefix = state + (int(token),) if state is not None else ()
        return np.log(table.get(prefix, flat)), prefix

    return step_fn


def _call_search(fn, step_fn, init_state, bos, eos, width, max_len):
    counted = _Counted(step_fn)
    with references_disabled(fn, *_DECODERS, *_OWN):
        got = fn(counted, init_state, bos, eos, width, max_len)
    _require(isinstance(got, tuple) and len(got) == 2, "return the pair (tokens, log_prob) of the best hypothesis.")
    tokens, log_prob = got
    log_prob = float(_finite(log_prob, "your log_prob"))
    try:
        raw = list(tokens)
    except TypeError:
        raise AssertionError("tokens must be a sequence of token ids (ints), without <bos>.") from None
    _require(all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)) for t in raw),
             "tokens must be whole-number token ids (Python or NumPy ints), without <bos>; "
             "an index that went through floating point is not a token id.")
    return [int(t) for t in raw], log_prob, counted.calls


def _sequence_log_prob(step_fn, init_state, bos, tokens):
    total, state, last = 0.0, init_state, bos
    for k in tokens:
        logp, state = step_fn(last, state)
        total += float(logp[k])
        last = k
    return total


def check_beam_search(fn) -> None:
    """Exercise 7.4: ``fn(step_fn, init_state, bos, eos, beam_width, max_len) -> (tokens,
    log_prob)``: beam search with a pool of finished hypotheses.

    ``step_fn(token, state) -> (log_probs (K,), new_state)`` is a NumPy language model;
    ``tokens`` is the best hypothesis (a list of ids ending with ``eos``, without ``bos``; or,
    if no hypothesis finished within ``max_len`` tokens, the most probable one of
    ``max_len`` tokens) and ``log_prob`` its total log-probability.
    """
    check_callable("fn", fn, "(step_fn, init_state, bos, eos, beam_width, max_len) -> "
                             "(tokens, log_prob)")
    # 1. the tree-shaped model: the best sentence finishes at step 2, is outscored at step 3
    tree = _tree_step_fn()
    for width in (2, 3):
        want, want_lp = _ref_beam_search(tree, None, 0, 1, width, 6)
        ref_calls = _Counted(tree)
        _ref_beam_search(ref_calls, None, 0, 1, width, 6)
        tokens, lp, calls = _call_search(fn, tree, None, 0, 1, width, 6)
        _require(np.isclose(lp, _sequence_log_prob(tree, None, 0, tokens)),
                 "your log_prob is not the total log-probability of the tokens you return "
                 "(sum the log-probabilities of every token, <eos> included).")
        _require(not (tokens != want and lp < want_lp - 1e-9 and tokens[-1:] == [1]),
                 f"with beam_width={width} your search returned a less probable finished "
                 "sentence than one it had already found: a finished hypothesis was pushed out "
                 "of the beam and lost. Keep finished hypotheses in a pool of their own; they "
                 "never compete with the unfinished ones for a beam slot.")
        _require(tokens == want and np.isclose(lp, want_lp),
                 f"with beam_width={width} your search returns a different hypothesis than the "
                 "rule of the exercise gives. Rank all extensions of the beam together, move those "
                 "that end with <eos> and rank among the beam_width best into the pool, keep the "
                 "beam_width best of the others, and return the best of the pool.")
        _require(calls <= ref_calls.calls,
                 "your search calls the model more often than the rule needs: stop as soon as "
                 "the best finished hypothesis is at least as probable as the best unfinished "
                 "one (log-probabilities only fall as a hypothesis grows), and call step_fn once "
                 "per hypothesis in the beam per step.")
    # 2. small random language models, fixed and unseen
    fixed, hidden = np.random.default_rng(74), unseen_rng()
    cases = [(fixed, 3, 4), (fixed, 4, 3), (fixed, 5, 4)]
    cases += [(hidden, int(hidden.integers(3, 6)), int(hidden.integers(3, 5))) for _ in range(5)]
    for g, K, max_len in cases:
        eos = int(g.integers(0, K))
        bos = int(g.integers(0, K))
        step_fn, h0 = _rnn_model(g, K, eos)
        wide = K * (K - 1) ** (max_len - 1)  # keeps every prefix: the search is exhaustive
        exact_tokens, exact_lp = _ref_exhaustive(step_fn, h0, bos, eos, max_len)
        greedy_tokens, _ = _ref_greedy(step_fn, h0, bos, eos, max_len)
        for width in (1, 2, 3, wide):
            want, want_lp = _ref_beam_search(step_fn, h0, bos, eos, width, max_len)
            ref_calls = _Counted(step_fn)
            _ref_beam_search(ref_calls, h0, bos, eos, width, max_len)
            tokens, lp, calls = _call_search(fn, step_fn, h0, bos, eos, width, max_len)
            _require(len(tokens) <= max_len, f"a hypothesis may hold at most max_len={max_len} "
                     "tokens (<eos> included).")
            _require(np.isclose(lp, _sequence_log_prob(step_fn, h0, bos, tokens)),
                     "your log_prob is not the total log-probability of the tokens you return "
                     "(sum the log-probabilities of every token, <eos> included; the first "
                     "step reads <bos>).")
            if width == 1:
                _require(tokens == greedy_tokens, "with beam_width=1 beam search must return the "
                         "greedy sentence: check which extensions enter the pool (only those "
                         "ranking among the beam_width best of their step) and when you stop.")
            if width == wide and exact_tokens is not None:
                _require(tokens == exact_tokens, f"with a beam wide enough to keep every prefix "
                         f"(beam_width={width}) beam search is exhaustive, and must return the most "
                         "probable sentence ending with <eos>; yours does not.")
            _require(tokens == want and np.isclose(lp, want_lp),
                     f"with beam_width={width} (K={K}, max_len={max_len}) your search returns a "
                     "different hypothesis than the rule of the exercise gives. Rank all "
                     "extensions of the beam together, move those that end with <eos> and rank "
                     "among the beam_width best into the pool, keep the beam_width best of the "
                     "others, and return the best of the pool (the best unfinished hypothesis "
                     "only when the pool is empty).")
            _require(calls <= ref_calls.calls,
                     "your search calls the model more often than the rule needs: stop as soon "
                     "as the best finished hypothesis is at least as probable as the best "
                     "unfinished one, and call step_fn once per hypothesis in the beam per step.")
    _ok("your beam search keeps its finished hypotheses, stops by the rule, and agrees with "
        "greedy at width 1 and with exhaustive search when the beam keeps every prefix.")
