"""The chapter 8 checkers accept the reference answers, refuse answers that call the
package's or torch's reference or that are hard-coded, and reject typical wrong ones with
hints that do not give the answer away."""

import numpy as np
import pytest
import torch

from companion.data.seq2seq import Example, Vocab, collate
from companion.exercises import ch08
from companion.metrics import exact_match, token_accuracy
from companion.nn.seq2seq import masked_cross_entropy


# ---------------------------------------------------------------- Exercise 8.1
def good_masked_nll(logits, tgt_out, pad):  # the notebook's reference solution
    real = np.asarray(tgt_out) != pad                     # (N, L), True at real tokens
    count = int(real.sum())
    if count == 0:
        raise ValueError("no real target position in the batch: nothing to average over.")
    shifted = logits - logits.max(axis=2, keepdims=True)  # log-sum-exp, no overflow
    log_z = np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    log_p = shifted - log_z                               # log softmax (N, L, V)
    n_idx, t_idx = np.nonzero(real)
    loss = -log_p[n_idx, t_idx, tgt_out[n_idx, t_idx]].sum() / count
    dlogits = np.exp(log_p)                               # softmax ...
    dlogits[n_idx, t_idx, tgt_out[n_idx, t_idx]] -= 1.0   # ... minus the one-hot target
    dlogits *= real[:, :, None] / count                   # padding: no gradient
    return float(loss), dlogits


def _parts(logits, tgt_out, pad):
    real = tgt_out != pad
    z = logits - logits.max(axis=2, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    nll = -np.take_along_axis(log_p, tgt_out[:, :, None] % logits.shape[2], 2)[:, :, 0]
    onehot = np.eye(logits.shape[2])[tgt_out % logits.shape[2]]
    return real, log_p, nll, onehot


def every_position(logits, tgt_out, pad):  # wrong: padding counted as tokens
    real, log_p, nll, onehot = _parts(logits, tgt_out, pad)
    return float(nll.mean()), (np.exp(log_p) - onehot) / nll.size


def per_sequence(logits, tgt_out, pad):  # wrong: averages the sequences' means
    real, log_p, nll, onehot = _parts(logits, tgt_out, pad)
    loss = np.mean([nll[n][real[n]].mean() for n in range(len(nll))])
    return float(loss), good_masked_nll(logits, tgt_out, pad)[1]


def summed_gradient(logits, tgt_out, pad):  # wrong: gradient of the sum, not the mean
    loss, grad = good_masked_nll(logits, tgt_out, pad)
    return loss, grad * (tgt_out != pad).sum()


def padded_gradient(logits, tgt_out, pad):  # wrong: padding gets gradient
    real, log_p, nll, onehot = _parts(logits, tgt_out, pad)
    return good_masked_nll(logits, tgt_out, pad)[0], (np.exp(log_p) - onehot) / real.sum()


def no_onehot(logits, tgt_out, pad):  # wrong: forgets the one-hot term
    real, log_p, nll, onehot = _parts(logits, tgt_out, pad)
    return good_masked_nll(logits, tgt_out, pad)[0], np.exp(log_p) * real[..., None] / real.sum()


def naive_exp(logits, tgt_out, pad):  # wrong: exp without the max, overflows
    real = tgt_out != pad
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
        n_idx, t_idx = np.nonzero(real)
        loss = -np.log(p[n_idx, t_idx, tgt_out[n_idx, t_idx]]).sum() / real.sum()
        onehot = np.eye(logits.shape[2])[tgt_out]
        return float(loss), (p - onehot) * real[..., None] / real.sum()


def silent_zero(logits, tgt_out, pad):  # wrong: an empty batch gives 0
    if not (tgt_out != pad).any():
        return 0.0, np.zeros_like(logits)
    return good_masked_nll(logits, tgt_out, pad)


def delegating_nll(logits, tgt_out, pad):  # refused: the package's loss and autograd
    o = torch.tensor(logits, requires_grad=True)
    t = torch.as_tensor(tgt_out)
    loss = masked_cross_entropy(o, t, t != pad)
    loss.backward()
    return float(loss), o.grad.numpy()


def delegating_torch(logits, tgt_out, pad):  # refused: torch's cross-entropy
    o = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(o.reshape(-1, o.shape[-1]),
                                             torch.as_tensor(tgt_out).reshape(-1),
                                             ignore_index=pad)
    (g,) = torch.autograd.grad(loss, o)
    return float(loss), g.numpy()


def _fixed_answers():
    """What a hard-coded answer would store: the right results of the fixed cases."""
    rng = np.random.default_rng(8)
    store = {}
    for args in [(1, 1, 3, 0), (3, 5, 6, 0), (4, 7, 5, 2, 800.0)]:
        logits, tgt, _, pad = ch08._loss_case(rng, *args)
        store[logits.tobytes()] = good_masked_nll(logits, tgt, pad)
    return store


def test_masked_nll_checker(capsys):
    ch08.check_masked_nll(good_masked_nll)
    assert capsys.readouterr().out.startswith("Correct")
    for wrong, hint in [(every_position, "every position"), (per_sequence, "each sequence"),
                        (summed_gradient, "number of real tokens"),
                        (padded_gradient, "zero gradient"), (no_onehot, "one-hot"),
                        (naive_exp, "not finite"), (silent_zero, "must raise ValueError")]:
        with pytest.raises(AssertionError, match=hint):
            ch08.check_masked_nll(wrong)
    with pytest.raises(AssertionError, match="pair"):
        ch08.check_masked_nll(lambda o, t, p: good_masked_nll(o, t, p)[0])
    with pytest.raises(AssertionError, match="not finite"):
        ch08.check_masked_nll(lambda o, t, p: (float("nan"), np.zeros_like(o)))
    for delegate in (delegating_nll, delegating_torch):
        with pytest.raises(AssertionError, match="already holds"):
            ch08.check_masked_nll(delegate)
    store = _fixed_answers()
    with pytest.raises(AssertionError):
        ch08.check_masked_nll(lambda o, t, p: store.get(o.tobytes(),
                                                        (1.0, np.zeros_like(o))))


def test_masked_nll_pad_other_than_zero():
    """An answer that hard-codes the padding id 0 (``nll[t != 0].mean()``) fails."""
    def pad_zero(logits, tgt, pad):
        return good_masked_nll(logits, tgt, 0)
    with pytest.raises(AssertionError, match="treats the id 0 as padding"):
        ch08.check_masked_nll(pad_zero)
    # the checker's fixed cases alone already hold a pad id other than 0 with real 0s
    rng = np.random.default_rng(8)
    cases = [ch08._loss_case(rng, *a) for a in [(1, 1, 3, 0), (3, 5, 6, 0), (4, 7, 5, 2, 800.0)]]
    assert any(pad != 0 and (tgt == 0).any() for _, tgt, _, pad in cases)


def test_masked_nll_delegation_error_type():
    from companion.exercises import DelegationError
    with pytest.raises(DelegationError, match="already holds"):
        ch08.check_masked_nll(delegating_nll)


# ---------------------------------------------------------------- Exercise 8.2
def good_reverse_and_pad(seqs, pad):
    S = max(len(s) for s in seqs)
    out = torch.full((len(seqs), S), pad, dtype=torch.long)
    for n, s in enumerate(seqs):
        out[n, :len(s)] = torch.tensor(s[::-1], dtype=torch.long)   # reverse, then pad
    return out, torch.tensor([len(s) for s in seqs])


def padded_then_reversed(seqs, pad):
    S = max(len(s) for s in seqs)
    out = torch.full((len(seqs), S), pad, dtype=torch.long)
    for n, s in enumerate(seqs):
        out[n, :len(s)] = torch.tensor(s)
    return out.flip(1), torch.tensor([len(s) for s in seqs])


def zero_padded(seqs, pad):  # wrong: pads with 0 whatever pad is
    return good_reverse_and_pad(seqs, 0)


def via_collate(seqs, pad):  # refused: collate(reverse_source=True) is the answer
    vocab = Vocab([str(t) for t in range(40)])
    b = collate([Example([str(t) for t in s], ["0"]) for s in seqs], vocab, vocab,
                reverse_source=True)
    return b.src, b.src_lengths


def test_reverse_and_pad_checker(capsys):
    ch08.check_reverse_and_pad(good_reverse_and_pad)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="padding must stay at the end"):
        ch08.check_reverse_and_pad(padded_then_reversed)
    with pytest.raises(AssertionError, match="reversed"):
        ch08.check_reverse_and_pad(lambda s, p: (good_reverse_and_pad(
            [x[::-1] for x in s], p)))
    with pytest.raises(AssertionError, match="LongTensor"):
        ch08.check_reverse_and_pad(lambda s, p: tuple(
            t.int() for t in good_reverse_and_pad(s, p)))
    with pytest.raises(AssertionError, match="pair"):
        ch08.check_reverse_and_pad(lambda s, p: good_reverse_and_pad(s, p)[0])
    with pytest.raises(AssertionError, match="pad id you are given"):
        for _ in range(20):  # the hidden pads are drawn afresh; one of them is not 0
            ch08.check_reverse_and_pad(zero_padded)
    with pytest.raises(AssertionError, match="already holds"):
        ch08.check_reverse_and_pad(via_collate)
    fixed = {str([[5]]): good_reverse_and_pad([[5]], 0),
             str([[4, 5, 6], [7, 8], [9]]): good_reverse_and_pad([[4, 5, 6], [7, 8], [9]], 0),
             str([[1, 2], [3, 4, 5, 6], [7, 8, 9]]):
                 good_reverse_and_pad([[1, 2], [3, 4, 5, 6], [7, 8, 9]], 0)}
    with pytest.raises(AssertionError):
        ch08.check_reverse_and_pad(lambda s, p: fixed.get(
            str(s), (torch.zeros(len(s), max(map(len, s)), dtype=torch.long),
                     torch.tensor([len(x) for x in s]))))


# ---------------------------------------------------------------- Exercise 8.3
def good_sequence_scores(tokens, tgt_out, eos):  # the notebook's reference solution
    def upto_eos(row):
        ids = row.tolist()
        return ids[:ids.index(eos)] if eos in ids else ids   # never stopped: all of it
    hyps = [upto_eos(row) for row in tokens]
    refs = [upto_eos(row) for row in tgt_out]
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
    right = sum(sum(int(j < len(h) and h[j] == tok) for j, tok in enumerate(r))
                for h, r in zip(hyps, refs))
    return exact, right / sum(map(len, refs))


def _lists(tokens, tgt_out, eos, cut_hyps=True, keep_eos=False):
    def cut(row, on):
        ids = row.tolist()
        if not on or eos not in ids:
            return ids
        k = ids.index(eos)
        return ids[:k + 1] if keep_eos else ids[:k]
    return [cut(r, cut_hyps) for r in tokens], [cut(r, True) for r in tgt_out]


def _scores(hyps, refs):
    em = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
    right = sum(sum(1 for j, tok in enumerate(r) if j < len(h) and h[j] == tok)
                for h, r in zip(hyps, refs))
    return em, right / sum(len(r) for r in refs)


def uncut(tokens, tgt_out, eos):  # wrong: scores whole rows, what follows eos included
    return _scores(*_lists(tokens, tgt_out, eos, cut_hyps=False))


def eos_counted(tokens, tgt_out, eos):  # wrong: the end token scored as a token
    return _scores(*_lists(tokens, tgt_out, eos, keep_eos=True))


def per_sequence_accuracy(tokens, tgt_out, eos):  # wrong: averages per-sequence accuracies
    hyps, refs = _lists(tokens, tgt_out, eos)
    accs = [sum(a == b for a, b in zip(h, r)) / len(r) for h, r in zip(hyps, refs)]
    return _scores(hyps, refs)[0], sum(accs) / len(accs)


def prefix_equal(tokens, tgt_out, eos):  # wrong: the reference as a prefix counts as exact
    hyps, refs = _lists(tokens, tgt_out, eos)
    return sum(h[:len(r)] == r for h, r in zip(hyps, refs)) / len(refs), _scores(hyps, refs)[1]


def delegating_scores(tokens, tgt_out, eos):  # refused: the package's metrics
    hyps, refs = _lists(tokens, tgt_out, eos)
    return exact_match(hyps, refs), token_accuracy(hyps, refs)


def _token_accuracy_by_hand(hyps, refs):
    right = sum(sum(int(j < len(h) and h[j] == t) for j, t in enumerate(r))
                for h, r in zip(hyps, refs))
    return right / sum(map(len, refs))


def test_sequence_scores_checker(capsys):
    ch08.check_sequence_scores(good_sequence_scores)
    assert capsys.readouterr().out.startswith("Correct")
    with pytest.raises(AssertionError, match="FIRST end token"):
        ch08.check_sequence_scores(uncut)
    with pytest.raises(AssertionError, match="end token is not part"):
        ch08.check_sequence_scores(eos_counted)
    with pytest.raises(AssertionError, match="total number of reference tokens"):
        ch08.check_sequence_scores(per_sequence_accuracy)
    with pytest.raises(AssertionError, match="longer hypothesis is not equal"):
        ch08.check_sequence_scores(prefix_equal)
    with pytest.raises(AssertionError, match="already holds"):
        ch08.check_sequence_scores(delegating_scores)
    with pytest.raises(AssertionError, match="finite"):
        ch08.check_sequence_scores(lambda *a: (float("nan"), 0.5))
    with pytest.raises(AssertionError, match="pair"):
        ch08.check_sequence_scores(lambda *a: good_sequence_scores(*a)[0])
    fixed = [([[3, 4, 2, 0]], [[3, 4, 2]]), ([[3, 4, 5, 2], [3, 3, 3, 3]], [[3, 4, 2], [3, 3, 3]]),
             ([[2, 3, 4, 0], [3, 5, 2, 4]], [[3, 4, 2], [3, 4, 2]]),
             ([[5, 3, 4, 2, 0, 0]], [[3, 4, 5, 2]])]
    store = {str(r): good_sequence_scores(torch.tensor(h), torch.tensor(r), 2)
             for h, r in fixed}                                   # hard-coded answers
    with pytest.raises(AssertionError):
        ch08.check_sequence_scores(lambda h, r, e: store.get(str(r.tolist()), (0.5, 0.5)))


# ------------------------------------------- other ways to the answer, all refused
def _nll_from_log_p(log_p, tgt_out, pad):
    real = tgt_out != pad
    if not real.any():
        raise ValueError("empty")
    n, t = np.nonzero(real)
    g = np.exp(log_p)
    g[n, t, tgt_out[n, t]] -= 1.0
    g *= real[..., None] / real.sum()
    return float(-log_p[n, t, tgt_out[n, t]].sum() / real.sum()), g


def _via_own_reference(o, t, p):  # the checker's own autograd reference
    return ch08._loss_reference(o, t, p)[:2]


def _via_sequence_nll(o, t, p):  # the package's NumPy loss, rescaled
    from companion.scratch.forward import sequence_nll
    m = t != p
    if not m.any():
        raise ValueError("empty")
    loss, do = sequence_nll(o, np.where(m, t, 0), m)
    scale = o.shape[0] / m.sum()
    return loss * scale, do * scale


def _via_rtrl_softmax_grad(o, t, p):  # a private helper that returns NLL and gradient
    from companion.scratch.rtrl import _softmax_grad
    m = t != p
    if not m.any():
        raise ValueError("empty")
    loss, g = _softmax_grad(o.reshape(-1, o.shape[2]), np.where(m, t, 0).reshape(-1))
    w = m.reshape(-1, 1) / m.sum()
    return float((loss * w[:, 0]).sum()), (g * w).reshape(o.shape)


def _via_numpy_log_softmax(o, t, p):
    from companion.scratch.forward import log_softmax
    return _nll_from_log_p(log_softmax(o, axis=2), t, p)


def _via_tensor_method(o, t, p):  # torch's log-softmax under another name
    return _nll_from_log_p(torch.tensor(o).log_softmax(2).numpy(), t, p)


def _via_private_torch(o, t, p):
    return _nll_from_log_p(torch._log_softmax(torch.tensor(o), 2, False).numpy(), t, p)


def _via_aten(o, t, p):
    return _nll_from_log_p(torch.ops.aten._log_softmax(torch.tensor(o), 2, False).numpy(), t, p)


def _torch_loss(o, t, p):
    m = torch.as_tensor(t != p)
    if not m.any():
        raise ValueError("empty")
    ot = torch.tensor(o, requires_grad=True)
    z = ot - ot.max(2, keepdim=True).values.detach()
    log_p = z - z.exp().sum(2, keepdim=True).log()
    nll = -log_p.gather(2, torch.as_tensor(np.where(t != p, t, 0))[..., None])[..., 0]
    return ot, (nll * m).sum() / m.sum()


def _via_autograd_engine(o, t, p):  # autograd started without backward() or grad()
    ot, loss = _torch_loss(o, t, p)
    (g,) = torch.autograd.Variable._execution_engine.run_backward(
        (loss,), (torch.ones_like(loss),), False, False, (ot,), True)
    return float(loss), g.numpy()


def _via_forward_mode(o, t, p):  # one dual number per logit
    import torch.autograd.forward_ad as fwAD
    m = torch.as_tensor(t != p)
    if not m.any():
        raise ValueError("empty")
    g = np.zeros_like(o)
    y = torch.as_tensor(np.where(t != p, t, 0))
    for idx in np.ndindex(o.shape):
        tangent = torch.zeros(o.shape, dtype=torch.float64)
        tangent[idx] = 1.0
        with fwAD.dual_level():
            d = fwAD.make_dual(torch.tensor(o), tangent)
            log_p = d - d.logsumexp(2, keepdim=True)
            loss = (-log_p.gather(2, y[..., None])[..., 0] * m).sum() / m.sum()
            g[idx] = float(fwAD.unpack_dual(loss).tangent)
    return float(fwAD.unpack_dual(loss).primal), g


_PREBUILT_CE = torch.nn.CrossEntropyLoss(reduction="sum")


def _via_prebuilt_module(o, t, p):  # a loss module built before the checker ran
    m = t != p
    if not m.any():
        raise ValueError("empty")
    ot = torch.tensor(o, requires_grad=True)
    loss = _PREBUILT_CE(ot[torch.as_tensor(m)], torch.as_tensor(t[m])) / m.sum()
    loss.backward()
    return float(loss), ot.grad.numpy()


@pytest.mark.parametrize("answer", [
    _via_own_reference, _via_sequence_nll, _via_rtrl_softmax_grad, _via_numpy_log_softmax,
    _via_tensor_method, _via_private_torch, _via_aten, _via_autograd_engine,
    _via_forward_mode, _via_prebuilt_module])
def test_masked_nll_other_delegations_refused(answer):
    from companion.exercises import DelegationError
    with pytest.raises(DelegationError, match="already holds"):
        ch08.check_masked_nll(answer)


def test_masked_nll_finite_differences_rejected():
    def numerical(o, t, p):  # the right loss, its gradient by central differences
        loss, _ = good_masked_nll(o, t, p)
        g = np.zeros_like(o)
        for idx in np.ndindex(o.shape):
            up, down = o.copy(), o.copy()
            up[idx] += 1e-6
            down[idx] -= 1e-6
            g[idx] = (good_masked_nll(up, t, p)[0] - good_masked_nll(down, t, p)[0]) / 2e-6
        return loss, g
    with pytest.raises(AssertionError, match="gradient is wrong"):
        ch08.check_masked_nll(numerical)


def test_masked_nll_mutation_and_types():
    def in_place(o, t, p):  # right values, but the caller's logits are overwritten
        loss, g = good_masked_nll(o, t, p)
        o[...] = g
        return loss, o
    with pytest.raises(AssertionError, match="in place"):
        ch08.check_masked_nll(in_place)
    with pytest.raises(AssertionError, match="one number"):
        ch08.check_masked_nll(lambda o, t, p: (np.array([good_masked_nll(o, t, p)[0]]),
                                               good_masked_nll(o, t, p)[1]))


def test_reverse_and_pad_other_ways_refused():
    from companion.exercises import DelegationError

    def via_pad_sequence(seqs, pad):
        from torch.nn.utils.rnn import pad_sequence
        return (pad_sequence([torch.tensor(s[::-1]) for s in seqs], batch_first=True,
                             padding_value=pad), torch.tensor([len(s) for s in seqs]))

    def in_place(seqs, pad):  # reverses the caller's lists
        for s in seqs:
            s.reverse()
        return good_reverse_and_pad([s[::-1] for s in seqs], pad)

    with pytest.raises(DelegationError, match="already holds"):
        ch08.check_reverse_and_pad(via_pad_sequence)
    with pytest.raises(AssertionError, match="in place"):
        ch08.check_reverse_and_pad(in_place)
    with pytest.raises(AssertionError, match="1-D tensor of integers"):
        ch08.check_reverse_and_pad(lambda s, p: (good_reverse_and_pad(s, p)[0],
                                                 [len(x) for x in s]))


def test_sequence_scores_other_ways_refused():
    from companion.exercises import DelegationError
    for name in ("exact_match", "token_accuracy"):   # each metric alone is refused too
        def one_metric(tokens, tgt_out, eos, name=name):
            hyps, refs = _lists(tokens, tgt_out, eos)
            if name == "exact_match":
                return exact_match(hyps, refs), _token_accuracy_by_hand(hyps, refs)
            return float(np.mean([h == r for h, r in zip(hyps, refs)])), token_accuracy(hyps, refs)
        with pytest.raises(DelegationError, match="companion.metrics." + name):
            ch08.check_sequence_scores(one_metric)
    with pytest.raises(DelegationError, match="already holds"):
        ch08.check_sequence_scores(
            lambda a, b, e: ch08._scores_reference(a.numpy(), b.numpy(), e)[:2])

    def in_place(tokens, tgt_out, eos):
        result = good_sequence_scores(tokens, tgt_out, eos)
        tokens.fill_(eos)
        return result
    with pytest.raises(AssertionError, match="in place"):
        ch08.check_sequence_scores(in_place)
