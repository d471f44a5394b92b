"""The encoder-decoder of chapter 8: packing, the three ways to hand over the context,
decoding through companion.nn.decoding, the loss mask, the batched ensemble, errors."""

import math

import numpy as np
import pytest
import torch

from companion.data.seq2seq import BOS, EOS, PAD, collate, make_task
from companion.nn import decoding
from companion.nn.seq2seq import (Encoder, Seq2Seq, Seq2SeqEnsemble, fit_seq2seq,
                                  masked_cross_entropy, train_seq2seq_ensemble,
                                  translate_examples)


@pytest.fixture(scope="module")
def task():
    return make_task("toy_language", n_train=200, n_valid=20, n_test=20, seed=0)


def _batch(task, n=6):
    return collate(task.train[:n], task.src_vocab, task.tgt_vocab)


def _model(task, **kw):
    torch.manual_seed(0)
    kw.setdefault("enc_hidden", 12)
    kw.setdefault("dec_hidden", 12)
    return Seq2Seq(len(task.src_vocab), len(task.tgt_vocab), emb_size=8, **kw).double()


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packing_gives_each_sequence_its_own_final_state(task, cell, bidirectional):
    torch.manual_seed(1)
    enc = Encoder(len(task.src_vocab), 7, emb_size=5, cell=cell,
                  bidirectional=bidirectional).double()
    b = _batch(task)
    out, final = enc(b.src, b.src_lengths)
    assert out.shape == (6, b.src.shape[1], 7 * (2 if bidirectional else 1))
    for n in range(6):
        L = int(b.src_lengths[n])
        out1, final1 = enc(b.src[n:n + 1, :L], b.src_lengths[n:n + 1])
        assert torch.allclose(out[n, :L], out1[0], atol=1e-12)
        assert torch.all(out[n, L:] == 0)  # nothing at padded positions
        if cell == "lstm":
            assert torch.allclose(final[0][n], final1[0][0], atol=1e-12)
            assert torch.allclose(final[1][n], final1[1][0], atol=1e-12)
        else:
            assert torch.allclose(final[n], final1[0], atol=1e-12)
            assert torch.allclose(final[n, :7], out[n, L - 1, :7], atol=1e-12)


def test_without_packing_the_padded_rows_are_wrong(task):
    torch.manual_seed(1)
    packed = Encoder(len(task.src_vocab), 7, emb_size=5).double()
    plain = Encoder(len(task.src_vocab), 7, emb_size=5, pack=False).double()
    plain.load_state_dict(packed.state_dict())
    b = _batch(task)
    _, f1 = packed(b.src, b.src_lengths)
    _, f2 = plain(b.src, b.src_lengths)
    full = b.src_lengths == b.src.shape[1]
    assert full.any() and (~full).any()
    assert torch.allclose(f1[full], f2[full], atol=1e-12)  # the longest rows agree
    assert ((f1[~full] - f2[~full]).abs().amax(1) > 1e-3).all()  # the others read padding


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("context", ["init", "input", "both"])
def test_forward_and_step_by_step_agree(task, cell, context):
    model = _model(task, cell=cell, context=context, enc_hidden=10, dec_hidden=6)
    assert model.use_bridge == (context != "input")
    b = _batch(task)
    logits = model(b.src, b.src_lengths, b.tgt_in)
    assert logits.shape == (6, b.tgt_in.shape[1], len(task.tgt_vocab))
    step, state = model.step_fn(b.src, b.src_lengths)
    for t in range(b.tgt_in.shape[1]):
        lp, state = step(b.tgt_in[:, t], state)
        assert torch.allclose(lp, torch.log_softmax(logits[:, t], -1), atol=1e-12)


def test_context_input_changes_every_step_and_init_only_the_start(task):
    b = _batch(task)
    other = b.src.flip(0)
    other_len = b.src_lengths.flip(0)
    for context in ("init", "input"):
        model = _model(task, context=context)
        s1 = model.encode(b.src, b.src_lengths)
        s2 = model.encode(other, other_len)
        if context == "init":
            assert "ctx" not in s1 and not torch.allclose(s1["h"], s2["h"])
        else:
            assert torch.all(s1["h"] == 0) and not torch.allclose(s1["ctx"], s2["ctx"])


def test_no_bridge_passes_the_final_state_itself(task):
    model = _model(task, bridge=False)
    b = _batch(task)
    _, final = model.encoder(b.src, b.src_lengths)
    assert torch.equal(model.encode(b.src, b.src_lengths)["h"], final)
    with pytest.raises(ValueError, match="bridge=False needs the context size"):
        _model(task, enc_hidden=8, dec_hidden=6, bridge=False)
    bi = _model(task, enc_hidden=6, dec_hidden=12, bidirectional=True, bridge=False)
    assert bi.context_size == 12


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_translate_is_greedy_in_eval_mode_and_restores_the_mode(task, cell):
    model = _model(task, cell=cell)
    b = _batch(task)
    model.train()
    res = model.translate(b.src, b.src_lengths, max_len=9)
    assert model.training and res.tokens.shape == (6, 9)
    assert not res.tokens.requires_grad
    step, state = model.step_fn(b.src, b.src_lengths)
    with torch.no_grad():
        ref = decoding.greedy(step, state, 6, bos=BOS, eos=EOS, pad=PAD, max_len=9)
    assert torch.equal(ref.tokens, res.tokens)
    beam1 = model.translate(b.src, b.src_lengths, method="beam", beam_size=1, max_len=9)
    # width 1 follows greedy's path; its pool may hold an earlier, more probable ending
    assert torch.all(beam1.log_prob >= res.log_prob - 1e-9)
    for n in range(6):
        if not torch.equal(beam1.tokens[n], res.tokens[n]):
            L = int(beam1.lengths[n])
            assert bool(beam1.finished[n]) and int(beam1.tokens[n, L - 1]) == EOS
            assert torch.equal(beam1.tokens[n, :L - 1], res.tokens[n, :L - 1])
    beam = model.translate(b.src, b.src_lengths, method="beam", beam_size=4, max_len=9)
    assert torch.all(beam.log_prob >= res.log_prob - 1e-9)
    model.eval()
    model.translate(b.src, b.src_lengths, max_len=3)
    assert not model.training


def test_translate_uses_eval_mode_with_dropout(task):
    class Dropped(Seq2Seq):
        def _run_decoder(self, tokens, state):
            out, new = super()._run_decoder(tokens, state)
            return torch.nn.functional.dropout(out, 0.9, self.training), new

    torch.manual_seed(0)
    model = Dropped(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=8, dec_hidden=8)
    b = _batch(task)
    a = model.translate(b.src, b.src_lengths, max_len=6).tokens
    c = model.translate(b.src, b.src_lengths, max_len=6).tokens
    assert torch.equal(a, c) and model.training


def test_masked_cross_entropy_ignores_padding(task):
    model = _model(task)
    b = _batch(task)
    logits = model(b.src, b.src_lengths, b.tgt_in)
    loss = masked_cross_entropy(logits, b.tgt_out, b.tgt_mask)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                            b.tgt_out.reshape(-1), ignore_index=PAD)
    assert torch.allclose(loss, ref, atol=1e-12)
    noisy = logits + 50 * torch.randn_like(logits) * (~b.tgt_mask)[..., None]
    assert torch.allclose(masked_cross_entropy(noisy, b.tgt_out, b.tgt_mask), loss, atol=1e-12)
    per = masked_cross_entropy(logits, b.tgt_out, b.tgt_mask, reduction="none")
    assert torch.all(per[~b.tgt_mask] == 0)
    assert torch.allclose(per.sum(), masked_cross_entropy(logits, b.tgt_out, b.tgt_mask,
                                                          reduction="sum"))
    # the unmasked mean counts padding as "predict PAD" and is a different number
    unmasked = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 b.tgt_out.reshape(-1))
    assert not torch.allclose(unmasked, loss)


def test_gradients_match_finite_differences(task):
    model = _model(task, enc_hidden=4, dec_hidden=3, context="both")
    b = collate(task.train[:3], task.src_vocab, task.tgt_vocab)
    params = [model.bridge.weight, model.decoder.weight_hh_l0, model.encoder.rnn.weight_ih_l0]

    def f(*ps):
        saved = [p.data.clone() for p in params]
        for p, v in zip(params, ps):
            p.data = v
        out = masked_cross_entropy(model(b.src, b.src_lengths, b.tgt_in), b.tgt_out, b.tgt_mask)
        for p, v in zip(params, saved):
            p.data = v
        return out

    loss = masked_cross_entropy(model(b.src, b.src_lengths, b.tgt_in), b.tgt_out, b.tgt_mask)
    grads = torch.autograd.grad(loss, params)
    rng = np.random.default_rng(0)
    for k, p in enumerate(params):
        for _ in range(4):
            idx = tuple(int(rng.integers(s)) for s in p.shape)
            vals = []
            for sign in (1, -1):
                q = [x.detach().clone() for x in params]
                q[k][idx] += sign * 1e-6
                with torch.no_grad():
                    vals.append(float(f(*q)))
            fd = (vals[0] - vals[1]) / 2e-6
            assert math.isfinite(fd)
            assert abs(fd - float(grads[k][idx])) < 1e-6 * max(1.0, abs(fd))


def test_ensemble_members_equal_single_models_outputs_gradients_and_decoding(task):
    b = _batch(task)
    for enc_h, dec_h in ((9, 9), (9, 5)):
        ens = Seq2SeqEnsemble(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=enc_h,
                              dec_hidden=dec_h, emb_size=6, seeds=[3, 4], dtype=torch.float64)
        assert ens.has_bridge == (enc_h != dec_h)
        logits = ens(b.src, b.src_lengths, b.tgt_in)
        loss = sum(masked_cross_entropy(logits[m], b.tgt_out, b.tgt_mask) for m in range(2))
        loss.backward()
        toks = ens.greedy(b.src, b.src_lengths, 12)
        for m in range(2):
            ref = ens.member_model(m)
            ref_logits = ref(b.src, b.src_lengths, b.tgt_in)
            assert torch.allclose(ref_logits, logits[m], atol=1e-12)
            masked_cross_entropy(ref_logits, b.tgt_out, b.tgt_mask).backward()
            for name, p in ens.named_parameters():
                assert torch.allclose(ens._get(ref, name).grad, p.grad[m], atol=1e-12), name
            assert torch.equal(ref.translate(b.src, b.src_lengths, max_len=12).tokens, toks[m])
        torch.manual_seed(3)
        alone = Seq2Seq(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=enc_h,
                        dec_hidden=dec_h, emb_size=6).double()
        assert torch.allclose(alone(b.src, b.src_lengths, b.tgt_in), ens.member_model(0)(
            b.src, b.src_lengths, b.tgt_in))


def test_ensemble_training_matches_single_model_training(task):
    def batch_fn(step):
        return collate(task.train[8 * step:8 * step + 8], task.src_vocab, task.tgt_vocab)

    ens = Seq2SeqEnsemble(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=6, dec_hidden=6,
                          emb_size=4, seeds=[0, 0], dtype=torch.float64)
    hist = train_seq2seq_ensemble(ens, batch_fn, steps=4, lr=[1e-2, 3e-3], clip_norm=math.inf)
    assert hist["loss"].shape == (4, 2) and not hist["diverged"].any()
    torch.manual_seed(0)
    single = Seq2Seq(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=6, dec_hidden=6,
                     emb_size=4).double()
    opt = torch.optim.Adam(single.parameters(), lr=3e-3)
    for step in range(4):
        bb = batch_fn(step)
        opt.zero_grad()
        masked_cross_entropy(single(bb.src, bb.src_lengths, bb.tgt_in), bb.tgt_out,
                             bb.tgt_mask).backward()
        opt.step()
    for name, p in ens.named_parameters():
        assert torch.allclose(ens._get(single, name), p[1], atol=1e-10), name
    assert not torch.allclose(ens.out_w[0], ens.out_w[1])


def test_fit_learns_a_small_copy_task():
    t = make_task("copy", n_train=300, n_valid=20, n_test=40, min_len=3, max_len=4,
                  n_symbols=6, seed=0)
    torch.manual_seed(0)
    model = Seq2Seq(len(t.src_vocab), len(t.tgt_vocab), enc_hidden=32, dec_hidden=32,
                    emb_size=8)
    hist = fit_seq2seq(model, t, lr=1e-2, steps=250, batch_size=32)
    assert hist["loss"][-1] < 0.3 * hist["loss"][0]
    hyps = translate_examples(model, t.test, t.src_vocab, t.tgt_vocab)
    assert np.mean([h == e.tgt for h, e in zip(hyps, t.test)]) > 0.6


def test_errors(task):
    model = _model(task)
    b = _batch(task)
    with pytest.raises(ValueError, match="context must be one of 'init', 'input', 'both'"):
        _model(task, context="attention")
    with pytest.raises(ValueError, match="cell must be one of"):
        _model(task, cell="transformer")
    with pytest.raises(TypeError, match="src must hold token ids as torch.long"):
        model(b.src.float(), b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must be in \[1, S="):
        model(b.src, b.src_lengths + 5, b.tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must be \(N=6,\)"):
        model(b.src, b.src_lengths[:3], b.tgt_in)
    with pytest.raises(ValueError, match="Source and target vocabularies swapped"):
        model(b.src, b.src_lengths, b.tgt_in + 100)
    with pytest.raises(ValueError, match="one row per source"):
        model(b.src, b.src_lengths, b.tgt_in[:2])
    with pytest.raises(ValueError, match="src must be \\(N, S\\), batch-first"):
        model(b.src[0], b.src_lengths, b.tgt_in)
    logits = model(b.src, b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match="forget the offset"):
        masked_cross_entropy(logits, b.tgt_out[:, 1:], b.tgt_mask)
    with pytest.raises(TypeError, match="tgt_mask must be a bool tensor"):
        masked_cross_entropy(logits, b.tgt_out, b.tgt_mask.long())
    with pytest.raises(ValueError, match="no True entry"):
        masked_cross_entropy(logits, b.tgt_out, torch.zeros_like(b.tgt_mask))
    with pytest.raises(ValueError, match="method must be one of 'greedy', 'beam'"):
        model.translate(b.src, b.src_lengths, method="sample")
    with pytest.raises(TypeError, match="task must be a Seq2SeqTask"):
        fit_seq2seq(model, task.train, lr=1e-3, steps=1)
    with pytest.raises(ValueError, match="lr must be a number > 0"):
        fit_seq2seq(model, task, lr=0.0, steps=1)
    with pytest.raises(TypeError, match="must have a translate"):
        translate_examples(torch.nn.Linear(2, 2), task.test, task.src_vocab, task.tgt_vocab)
    ens = Seq2SeqEnsemble(len(task.src_vocab), len(task.tgt_vocab), enc_hidden=4,
                          dec_hidden=4, seeds=[0, 1])
    with pytest.raises(ValueError, match="one per member"):
        ens(b.src[None].expand(3, -1, -1), b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match=r"m must be a member index in \[0, 2\)"):
        ens.member_model(2)
    with pytest.raises(TypeError, match="batch_fn must return a Batch"):
        train_seq2seq_ensemble(ens, lambda s: None, steps=1, lr=1e-3)
