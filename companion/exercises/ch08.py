"""Checkers for the exercises of chapter 8 (the encoder-decoder)."""

from __future__ import annotations

import numpy as np

from companion.exercises import ok as _ok
from companion.exercises import references_disabled
from companion.exercises import torch_refused as _torch_refused
from companion.exercises import require as _require
from companion.exercises import unseen_rng

__all__ = ["check_masked_nll", "check_reverse_and_pad", "check_sequence_scores"]

# What already computes a (masked) cross-entropy or its gradient: the package's loss,
# torch's losses and softmaxes, and torch's autograd.
_LOSS_REFERENCES = (
    "companion.nn.seq2seq.masked_cross_entropy",
    "torch.nn.functional.cross_entropy",
    "torch.nn.functional.nll_loss",
    "torch.nn.functional.log_softmax",
    "torch.nn.functional.softmax",
    "torch.log_softmax",
    "torch.softmax",
    "torch.nn.CrossEntropyLoss",
    "torch.nn.NLLLoss",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.Tensor.backward",
    "torch.func.grad",
    "torch.func.vjp",
)


# The same computations under torch's other names (torch._log_softmax, Tensor.log_softmax,
# torch.special.log_softmax, torch.ops.aten...): refused by operation name, see
# companion.exercises.torch_refused.
_LOSS_OPS = ("log_softmax", "_log_softmax", "softmax", "_softmax", "cross_entropy",
             "cross_entropy_loss", "nll_loss", "nll_loss_forward", "nll_loss_nd",
             "nll_loss2d", "nll_loss2d_forward", "_log_softmax_backward_data",
             "_softmax_backward_data")
# The package's NumPy softmaxes and losses, and this module's own references.
_LOSS_REFERENCES += (
    "companion.scratch.forward.softmax", "companion.scratch.forward.log_softmax",
    "companion.scratch.forward._log_softmax", "companion.scratch.forward.sequence_nll",
    "companion.scratch.rtrl._softmax_grad", "companion.nn.conditioned.masked_nll",
    "companion.exercises.ch07._log_softmax", "companion.exercises.ch08._loss_reference",
)


def _unchanged(before, after, name: str) -> None:
    """A hint when the answer changed one of its arguments in place."""
    import torch

    def same(a, b):
        if isinstance(a, torch.Tensor):
            return torch.equal(a, b)
        if isinstance(a, np.ndarray):
            return np.array_equal(a, b, equal_nan=True)
        return a == b

    _require(same(before, after), (
        f"your function changes its argument {name} in place; the caller's data must stay "
        f"as it was (in a training loop it is used again). Work on a copy or build new "
        f"arrays."))


def _to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ---------------------------------------------------------------- Exercise 8.1
def _loss_case(rng, N, L, V, pad, shift=0.0):
    """Logits, padded targets (real tokens never equal pad) and the lengths."""
    lengths = rng.integers(1, L + 1, size=N)
    lengths[0] = L
    tgt = np.full((N, L), pad, dtype=np.int64)
    for n, m in enumerate(lengths):
        row = rng.integers(0, V - 1, size=m)
        tgt[n, :m] = row + (row >= pad)                 # skip the pad id
    logits = rng.normal(scale=2.0, size=(N, L, V)) + shift
    return logits, tgt, lengths, pad


def _loss_reference(logits, tgt, pad):
    """Loss and gradient by torch autograd (outside the student's call)."""
    import torch

    o = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    t = torch.as_tensor(tgt)
    real = t != pad
    nll = torch.nn.functional.cross_entropy(o.reshape(-1, o.shape[-1]), t.reshape(-1),
                                            reduction="none").reshape(t.shape)
    loss = (nll * real).sum() / real.sum()
    (grad,) = torch.autograd.grad(loss, o)
    return float(loss.detach()), grad.numpy(), nll.detach().numpy(), real.numpy()


def check_masked_nll(fn) -> None:
    """Exercise 8.1: ``fn(logits (N, L, V), tgt_out (N, L), pad) -> (loss, dlogits)``: the
    mean negative log-likelihood over the real positions and its gradient; ``ValueError``
    when the batch holds no real position."""
    fixed = np.random.default_rng(8)
    hidden = unseen_rng()
    cases = [_loss_case(fixed, 1, 1, 3, 0), _loss_case(fixed, 3, 5, 6, 0),
             _loss_case(fixed, 4, 7, 5, 2, shift=800.0)]          # large logits
    for _ in range(3):
        N, L, V = (int(x) for x in hidden.integers(2, 8, size=3))
        cases.append(_loss_case(hidden, N, L, V, int(hidden.integers(V)),
                                shift=float(hidden.choice([0.0, -600.0, 900.0]))))
    for logits, tgt, lengths, pad in cases:
        passed = (logits.copy(), tgt.copy())
        with references_disabled(fn, *_LOSS_REFERENCES), \
                _torch_refused(_LOSS_OPS, autograd=True):
            got = fn(*passed, pad)
        _unchanged(logits, passed[0], "logits")
        _unchanged(tgt, passed[1], "tgt_out")
        _require(isinstance(got, tuple) and len(got) == 2, "return a pair (loss, dlogits).")
        _require(np.ndim(_to_numpy(got[0])) == 0, "the loss must be one number (a float), "
                 "the mean over every real position of the batch.")
        loss, grad = float(_to_numpy(got[0])), np.asarray(_to_numpy(got[1]), dtype=float)
        _require(grad.shape == logits.shape, f"dlogits must have the logits' shape "
                 f"{logits.shape}; got {grad.shape}.")
        _require(np.isfinite(loss) and np.all(np.isfinite(grad)),
                 "your loss or gradient is not finite. exp of a large logit overflows: "
                 "subtract each position's largest logit first (log-sum-exp).")
        ref, ref_grad, nll, real = _loss_reference(logits, tgt, pad)
        if abs(loss - ref) > 1e-9 * max(1.0, abs(ref)) and pad != 0 and (tgt == 0).any():
            zero = _loss_reference(logits, tgt, 0)[0]     # padding taken to be id 0
            _require(abs(loss - zero) > 1e-9 * max(1.0, abs(zero)),
                     "your function treats the id 0 as padding; the padding id is the "
                     "argument pad, which need not be 0 (and 0 can then be a real token).")
        if abs(loss - ref) > 1e-9 * max(1.0, abs(ref)):
            every = float(nll.mean())
            per_seq = float(np.mean([nll[n, :m].mean() for n, m in enumerate(lengths)]))
            _require(abs(loss - every) > 1e-9 or abs(every - ref) < 1e-9,
                     "you averaged over every position: padded positions are counted as if "
                     "they were tokens. Use only the real ones.")
            _require(abs(loss - per_seq) > 1e-9 or abs(per_seq - ref) < 1e-9,
                     "you averaged each sequence first and then the sequences: short "
                     "sequences then weigh more per token. Average over all real tokens "
                     "of the batch at once.")
            _require(False, "the loss is not the mean of -log softmax(o)[y] over the real "
                            "(non-padding) target positions.")
        _require(np.all(grad[~real] == 0), "padded positions must get exactly zero gradient: "
                 "they are not in the loss.")
        # a tolerance that rounding allows and finite differences do not reach
        if not np.allclose(grad, ref_grad, rtol=1e-9, atol=1e-13):
            _require(not np.allclose(grad, ref_grad * real.sum(), rtol=1e-9, atol=1e-13),
                     "the gradient is too large by the number of real tokens: the loss is a "
                     "mean, so its gradient is divided by that number too.")
            _require(False, "the gradient is wrong: at a real position the derivative of "
                            "-log softmax(o)[y] with respect to o is softmax(o) minus the "
                            "one-hot vector of y (then divide by the number of real tokens).")
    # the empty-batch rule: nothing to average over is an error, not 0 and not NaN
    logits, tgt, _, _ = _loss_case(hidden, 2, 3, 4, 1)
    tgt[:] = 1
    raised = False
    try:
        with references_disabled(fn, *_LOSS_REFERENCES), \
                _torch_refused(_LOSS_OPS, autograd=True):
            fn(logits, tgt, 1)
    except ValueError:
        raised = True
    _require(raised, "a batch with no real target position must raise ValueError: a mean "
                     "over no token is undefined, and a silent 0 or NaN would hide the "
                     "broken batch.")
    _ok("your loss and its gradient match autograd; padding adds nothing and an empty batch "
        "is refused.")


# ---------------------------------------------------------------- Exercise 8.2
def _random_seqs(rng, pad):
    N = int(rng.integers(2, 6))
    seqs = []
    for _ in range(N):
        s = rng.integers(0, 30, size=int(rng.integers(1, 8)))
        s[s == pad] = pad + 1
        seqs.append([int(x) for x in s])
    return seqs


# collate(reverse_source=True) is this exercise's answer; torch's padding functions do
# the padding half of it.
_PAD_REFERENCES = (
    "companion.data.seq2seq.collate", "companion.data.seq2seq.iterate_batches",
    "torch.nn.utils.rnn.pad_sequence", "torch.nn.utils.rnn.pack_sequence",
    "torch.nn.utils.rnn.pack_padded_sequence", "torch.nn.utils.rnn.pad_packed_sequence",
)
_PAD_OPS = ("pad_sequence", "_pack_padded_sequence", "_pad_packed_sequence")


def check_reverse_and_pad(fn) -> None:
    """Exercise 8.2: ``fn(seqs, pad)`` -> ``(padded (N, S) long tensor, lengths (N,))`` with
    every sequence reversed and the padding at the end."""
    import torch

    hidden = unseen_rng()
    cases = [([[5]], 0), ([[4, 5, 6], [7, 8], [9]], 0), ([[1, 2], [3, 4, 5, 6], [7, 8, 9]], 0)]
    for _ in range(3):
        pad = int(hidden.integers(0, 30))
        cases.append((_random_seqs(hidden, pad), pad))
    for seqs, pad in cases:
        passed = [list(s) for s in seqs]
        with references_disabled(fn, *_PAD_REFERENCES), _torch_refused(_PAD_OPS):
            got = fn(passed, pad)
        _require(passed == seqs, (
            "your function reverses the caller's lists in place (list.reverse() or "
            "s[:] = s[::-1]): the training examples themselves would be reversed again at "
            "every epoch. Build reversed copies (s[::-1]) instead."))
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return a pair (padded, lengths).")
        _require(isinstance(got[0], torch.Tensor) and got[0].dtype == torch.long,
                 "padded must be a torch LongTensor (embedding layers need torch.long).")
        _require(isinstance(got[1], torch.Tensor) and not got[1].is_floating_point()
                 and got[1].dim() == 1,
                 "lengths must be a 1-D tensor of integers, one per sequence (what "
                 "pack_padded_sequence takes).")
        padded, lengths = (_to_numpy(g) for g in got)
        S = max(len(s) for s in seqs)
        _require(padded.shape == (len(seqs), S),
                 f"padded must be (N, S) = ({len(seqs)}, {S}): one row per sequence, as "
                 f"long as the longest.")
        _require([int(v) for v in np.ravel(lengths)] == [len(s) for s in seqs],
                 "lengths must be the number of real tokens in each row.")
        for row, s in zip(padded, seqs):
            m = len(s)
            if list(row[:m]) != s[::-1]:
                _require(list(row[S - m:]) != s[::-1],
                         "the padding must stay at the end of each row (pack_padded_sequence "
                         "and the masks assume it): reverse each sequence first, then pad.")
                _require(False, "each row must hold its sequence reversed, then padding.")
            _require(all(int(v) == pad for v in row[m:]),
                     "pad every row after its last token, with the pad id you are given.")
    _ok("every source is reversed and its padding stays at the end.")


# ---------------------------------------------------------------- Exercise 8.3
def _cut(row, eos):
    row = [int(x) for x in row]
    return row[:row.index(eos)] if eos in row else row


def _token_accuracy(hyps, refs):
    right = sum(sum(1 for j in range(min(len(h), len(r))) if h[j] == r[j])
                for h, r in zip(hyps, refs))
    return right / sum(len(r) for r in refs)


def _scores_reference(tokens, tgt_out, eos):
    hyps = [_cut(r, eos) for r in tokens]
    refs = [_cut(r, eos) for r in tgt_out]
    em = float(np.mean([h == r for h, r in zip(hyps, refs)]))
    return em, _token_accuracy(hyps, refs), hyps, refs


def _scores_case(rng, N, T, L, eos, pad):
    """Decoder outputs (N, T) and padded targets (N, L); content ids are 3 to 7."""
    refs = [list(rng.integers(3, 8, size=int(rng.integers(1, L)))) for _ in range(N)]
    tgt = np.full((N, L), pad, dtype=np.int64)
    tokens = np.empty((N, T), dtype=np.int64)
    for n, r in enumerate(refs):
        tgt[n, :len(r) + 1] = r + [eos]
        kind = rng.integers(4)
        if kind == 0:                                  # right, then stops
            h = r[:T]
        elif kind == 1:                                # one token changed
            h = list(r)
            h[int(rng.integers(len(h)))] = int(rng.integers(3, 8))
            h = h[:T]
        else:                                          # anything, of any length
            h = list(rng.integers(3, 8, size=int(rng.integers(0, T + 1))))
        stop = len(h) < T and rng.random() < 0.85      # else it never stops
        row = h + ([eos] if stop else [])
        junk = rng.choice([pad, eos, 3, 4, 5, 6, 7], size=T - len(row))  # after the end
        tokens[n] = (row + [int(x) for x in junk])[:T]
    return tokens, tgt


_SCORE_REFERENCES = (
    "companion.metrics.exact_match", "companion.metrics.token_accuracy",
    "companion.data.seq2seq.Vocab.decode", "companion.nn.seq2seq.translate_examples",
    "companion.exercises.ch08._scores_reference", "companion.exercises.ch08._token_accuracy",
    "companion.exercises.ch08._cut",
)


def check_sequence_scores(fn) -> None:
    """Exercise 8.3: ``fn(tokens (N, T), tgt_out (N, L), eos)`` -> ``(exact_match,
    token_accuracy)`` of the decoded rows cut at their first ``eos``, as defined in
    :mod:`companion.metrics`."""
    import torch

    t = lambda rows: np.array(rows, dtype=np.int64)                        # noqa: E731
    cases = [
        (t([[3, 4, 2, 0]]), t([[3, 4, 2]]), 2),                            # exact
        (t([[3, 4, 5, 2], [3, 3, 3, 3]]), t([[3, 4, 2], [3, 3, 3]]), 2),  # too long
        (t([[2, 3, 4, 0], [3, 5, 2, 4]]), t([[3, 4, 2], [3, 4, 2]]), 2),  # empty; after eos
        (t([[5, 3, 4, 2, 0, 0]]), t([[3, 4, 5, 2]]), 2),                   # shifted
    ]
    fixed = np.random.default_rng(83)
    hidden = unseen_rng()
    cases.append((*_scores_case(fixed, 5, 6, 5, 2, 0), 2))
    for _ in range(4):
        eos, pad = (int(x) for x in hidden.permutation(3)[:2])
        N, T, L = (int(x) for x in hidden.integers(2, 9, size=3))
        cases.append((*_scores_case(hidden, N, T, L, eos, pad), eos))
    for tokens, tgt, eos in cases:
        passed = (torch.as_tensor(tokens.copy()), torch.as_tensor(tgt.copy()))
        with references_disabled(fn, *_SCORE_REFERENCES):
            got = fn(*passed, eos)
        _unchanged(torch.as_tensor(tokens), passed[0], "tokens")
        _unchanged(torch.as_tensor(tgt), passed[1], "tgt_out")
        _require(isinstance(got, tuple) and len(got) == 2,
                 "return a pair (exact_match, token_accuracy).")
        em, ta = (float(_to_numpy(g)) for g in got)
        _require(np.isfinite(em) and np.isfinite(ta), "both scores must be finite numbers.")
        want_em, want_ta, hyps, refs = _scores_reference(tokens, tgt, eos)
        if abs(em - want_em) > 1e-12:
            _require(False, "exact match: cut each row at its FIRST end token (what follows "
                            "it is not output), then count the hypotheses equal to their "
                            "reference token for token; a longer hypothesis is not equal.")
        if abs(ta - want_ta) > 1e-12:
            keep = lambda row: (_cut(row, eos) + [eos]) if eos in list(row) \
                else _cut(row, eos)                                        # noqa: E731
            with_eos = _token_accuracy([keep(r) for r in tokens], [keep(r) for r in tgt])
            _require(abs(ta - with_eos) > 1e-12 or abs(with_eos - want_ta) < 1e-12,
                     "token accuracy: the end token is not part of the sequence; compare "
                     "and count the tokens before it only.")
            _require(False, "token accuracy: compare position j of the hypothesis with "
                            "position j of the reference for every reference position; a "
                            "missing position is wrong; divide by the total number of "
                            "reference tokens (not by the number of sequences).")
    _ok("both scores agree with the definitions on short, long, empty and unfinished "
        "outputs.")
