"""The attention encoder-decoder: masking, decoding consistency, storage, errors."""

import pytest
import torch

from companion.data.seq2seq import PAD, collate, make_task
from companion.nn.attention import AttentionSeq2Seq
from companion.nn.decoding import beam_search, greedy
from companion.nn.seq2seq import Seq2Seq

D64 = torch.float64


@pytest.fixture(scope="module")
def task():
    return make_task("dates", n_train=40, n_valid=10, n_test=10, seed=3)


def _model(task, **kw):
    torch.manual_seed(0)
    kw = {"enc_hidden": 12, "dec_hidden": 12, "emb_size": 8, **kw}
    return AttentionSeq2Seq(len(task.src_vocab), len(task.tgt_vocab), **kw).double()


@pytest.mark.parametrize("score", ["additive", "dot", "general", "scaled_dot"])
def test_forward_shapes_masking_and_padding_invariance(task, score):
    m = _model(task, score=score)
    b = collate(task.train[:6], task.src_vocab, task.tgt_vocab)
    logits, w = m(b.src, b.src_lengths, b.tgt_in, return_attention=True)
    N, L = b.tgt_in.shape
    assert logits.shape == (N, L, len(task.tgt_vocab)) and w.shape == (N, L, b.src.shape[1])
    assert torch.all(w.masked_select(~b.src_mask[:, None, :].expand_as(w)) == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(N, L, dtype=D64))
    # more padding, and garbage ids in it, change nothing
    src = torch.cat([b.src, torch.full((N, 3), PAD)], dim=1)
    src2 = src.clone()
    src2[~(torch.arange(src.shape[1])[None] < b.src_lengths[:, None])] = 5
    for s in (src, src2):
        torch.testing.assert_close(m(s, b.src_lengths, b.tgt_in), logits, rtol=1e-10,
                                   atol=1e-12)


def test_step_fn_matches_forward_and_beam_one_is_greedy(task):
    m = _model(task, score="additive")
    b = collate(task.test[:5], task.src_vocab, task.tgt_vocab)
    res = m.translate(b.src, b.src_lengths, max_len=12)
    tokens = res.tokens
    # teacher forcing on the greedy output gives the same per-token log-probabilities
    tgt_in = torch.cat([torch.ones_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
    lp = torch.log_softmax(m(b.src, b.src_lengths, tgt_in), -1)
    chosen = lp.gather(2, tokens[:, :, None])[:, :, 0]
    for n in range(len(tokens)):
        L = int(res.lengths[n])
        torch.testing.assert_close(chosen[n, :L].sum(), res.log_prob[n].to(D64),
                                   rtol=1e-9, atol=1e-9)
    # the weights greedy used are those of attention_map on its output
    fn, state = m.step_fn(b.src, b.src_lengths)
    with torch.no_grad():
        _, st = fn(torch.ones(5, dtype=torch.long), state)
        amap = m.attention_map(b.src, b.src_lengths, tokens)
    torch.testing.assert_close(st["attn"], amap[:, 0])
    fn, state = m.step_fn(b.src, b.src_lengths)
    g = greedy(fn, state, 5, bos=1, eos=2, max_len=12)
    bm = beam_search(fn, state, 5, bos=1, eos=2, max_len=12, beam_width=1)
    assert torch.equal(g.tokens, tokens)
    # width 1 follows greedy's path; its pool may hold an earlier, more probable ending
    assert torch.all(bm.log_prob >= g.log_prob - 1e-9)
    for n in range(5):
        if not torch.equal(g.tokens[n], bm.tokens[n]):
            L = int(bm.lengths[n])
            assert bool(bm.finished[n]) and int(bm.tokens[n, L - 1]) == 2
            assert torch.equal(bm.tokens[n, :L - 1], g.tokens[n, :L - 1])
    m.train()
    m.translate(b.src, b.src_lengths, method="beam", beam_size=3, max_len=12)
    assert m.training


def test_initial_state_is_the_no_attention_models(task):
    torch.manual_seed(1)
    ref = Seq2Seq(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=12, dec_hidden=10,
                  emb_size=8).double()
    m = _model(task, dec_hidden=10)
    m.encoder.load_state_dict(ref.encoder.state_dict())
    m.bridge.load_state_dict(ref.bridge.state_dict())
    b = collate(task.train[:4], task.src_vocab, task.tgt_vocab)
    torch.testing.assert_close(m.encode(b.src, b.src_lengths)["h"],
                               ref.encode(b.src, b.src_lengths)["h"])


def test_variants_storage_and_errors(task):
    b = collate(task.train[:3], task.src_vocab, task.tgt_vocab)
    for kw in ({"cell": "lstm"}, {"bidirectional": True}, {"score": "general", "dec_hidden": 7},
               {"cell": "rnn", "attn_size": 5}):
        m = _model(task, **kw)
        out = m(b.src, b.src_lengths, b.tgt_in)
        assert torch.isfinite(out).all()
        back = AttentionSeq2Seq.from_dict(m.to_dict(digits=12))
        torch.testing.assert_close(back(b.src, b.src_lengths, b.tgt_in), out, rtol=1e-8,
                                   atol=1e-9)
    with pytest.raises(ValueError, match="query_size == key_size"):
        _model(task, score="dot", dec_hidden=7)
    m = _model(task)
    with pytest.raises(ValueError, match="src_lengths must"):
        m(b.src, torch.tensor([3, 0, 2]), b.tgt_in)
    with pytest.raises(ValueError, match="tgt_in must be"):
        m(b.src, b.src_lengths, b.tgt_in[:2])
    with pytest.raises(ValueError, match="cell must be"):
        _model(task, cell="transformer")
    with pytest.raises(ValueError, match="'config' and 'weights'"):
        AttentionSeq2Seq.from_dict({"weights": {}})


@pytest.mark.parametrize("score", ["additive", "dot", "general", "scaled_dot"])
def test_ensemble_members_equal_single_models_outputs_gradients_and_training(task, score):
    from companion.nn.attention import AttentionEnsemble, train_attention_ensemble
    from companion.nn.seq2seq import masked_cross_entropy

    ens = AttentionEnsemble(len(task.src_vocab), len(task.tgt_vocab), hidden=10, emb_size=8,
                            attn_size=6, seeds=[0, 1, 0], dtype=D64, score=score)
    b = collate(task.train[:6], task.src_vocab, task.tgt_vocab)
    out = ens(b.src, b.src_lengths, b.tgt_in)
    sum(masked_cross_entropy(out[m], b.tgt_out, b.tgt_mask) for m in range(3)).backward()
    for m in range(3):
        single = ens.member_model(m)
        o = single(b.src, b.src_lengths, b.tgt_in)
        torch.testing.assert_close(o, out[m], rtol=1e-12, atol=1e-12)
        masked_cross_entropy(o, b.tgt_out, b.tgt_mask).backward()
        named = dict(single.named_parameters())
        for name, path in ens._map.items():
            torch.testing.assert_close(named[path].grad, getattr(ens, name).grad[m],
                                       rtol=1e-10, atol=1e-12)
        assert torch.equal(ens.greedy(b.src, b.src_lengths, 12)[m],
                           single.translate(b.src, b.src_lengths, max_len=12).tokens)
    # training: member 0 after 3 steps equals the single model trained alone (Adam, clip 1)
    ens2 = AttentionEnsemble(len(task.src_vocab), len(task.tgt_vocab), hidden=10, emb_size=8,
                             attn_size=6, seeds=[0, 1], dtype=D64, score=score)
    single = ens2.member_model(0)
    hist = train_attention_ensemble(ens2, lambda i: b, steps=3, lr=[1e-2, 3e-3])
    opt = torch.optim.Adam(single.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        masked_cross_entropy(single(b.src, b.src_lengths, b.tgt_in), b.tgt_out,
                             b.tgt_mask).backward()
        torch.nn.utils.clip_grad_norm_(single.parameters(), 1.0)
        opt.step()
    torch.testing.assert_close(ens2.member_model(0)(b.src, b.src_lengths, b.tgt_in),
                               single(b.src, b.src_lengths, b.tgt_in), rtol=1e-9, atol=1e-10)
    assert hist["loss"].shape == (3, 2) and not hist["diverged"].any()
    with pytest.raises(TypeError, match="AttentionEnsemble"):
        train_attention_ensemble(single, lambda i: b, steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="member index"):
        ens2.member_model(5)
