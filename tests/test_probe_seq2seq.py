"""Probe: realistic mistakes at the public doors of chapters 7-9's torch modules.

Each case is ``(id, callable making the mistake, exception type, regex)``; the regex
names the argument and what was expected. Classes: NaN/inf inputs, token ids (dtype,
range, bos/eos/pad), empty batches (N = 0, T = 0), time-first input, wrong feature
size or dtype, NumPy arrays / lists / None where a tensor belongs, and options (ranges,
typos, callables, generators, vocabularies of another task).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from companion.data.seq2seq import (Example, collate, iterate_batches, make_length_tests,
                                    make_task)
from companion.nn import decoding
from companion.nn.attention import (AdditiveScore, Attention, AttentionEnsemble,
                                    AttentionSeq2Seq, DotScore, GeneralScore,
                                    SingleHeadAttention, attend, make_score, masked_softmax,
                                    train_attention_ensemble)
from companion.nn.seq2seq import (Encoder, Seq2Seq, Seq2SeqEnsemble, fit_seq2seq,
                                  masked_cross_entropy, train_members, train_seq2seq_ensemble,
                                  translate_examples)

V = 10  # the copy task with 6 symbols: 4 specials + 6 letters


class _F:
    """Small models and batches, built once on first use."""

    @functools.cached_property
    def task(self):
        return make_task("copy", n_train=40, n_valid=5, n_test=5, n_symbols=6, seed=0)

    @functools.cached_property
    def dates(self):
        return make_task("dates", n_train=30, n_valid=5, n_test=5, seed=0)

    @functools.cached_property
    def toy(self):
        return make_task("toy_language", n_train=30, n_valid=5, n_test=5, seed=0)

    @functools.cached_property
    def batch(self):
        return collate(self.task.train[:4], self.task.src_vocab, self.task.tgt_vocab)

    @functools.cached_property
    def s2s(self):
        torch.manual_seed(0)
        return Seq2Seq(V, V, enc_hidden=8, dec_hidden=8, emb_size=4)

    @functools.cached_property
    def ens(self):
        return Seq2SeqEnsemble(V, V, enc_hidden=8, dec_hidden=8, emb_size=4, seeds=(0, 1))

    @functools.cached_property
    def att(self):
        torch.manual_seed(0)
        return AttentionSeq2Seq(V, V, enc_hidden=8, dec_hidden=8, emb_size=4)

    @functools.cached_property
    def aens(self):
        return AttentionEnsemble(V, V, hidden=8, emb_size=4, seeds=(0, 1))

    @functools.cached_property
    def attn(self):
        torch.manual_seed(0)
        return Attention("additive", 8, 6, 5)

    @functools.cached_property
    def mha(self):
        torch.manual_seed(0)
        return SingleHeadAttention(4)


F = _F()
q = lambda *s, dtype=torch.float32: torch.randn(*s, dtype=dtype)  # noqa: E731


def nan_at(t, idx=(0, 0)):
    t = t.clone()
    t[idx] = float("nan")
    return t


def _step(K=V):
    def fn(tokens, state):
        return torch.log_softmax(torch.zeros(tokens.shape[0], K), dim=-1), state
    return fn


def _embedding_step(K=V):
    emb = torch.nn.Embedding(K, 3)
    lin = torch.nn.Linear(3, K)

    def fn(tokens, state):
        return torch.log_softmax(lin(emb(tokens)), dim=-1), state
    return fn


def _fwd(model, src=None, lengths=None, tgt=None):
    b = F.batch
    return model(b.src if src is None else src, b.src_lengths if lengths is None else lengths,
                 b.tgt_in if tgt is None else tgt)


def _batch_fn(**changes):
    b = F.batch

    def fn(step):
        fields = dict(src=b.src, src_lengths=b.src_lengths, tgt_in=b.tgt_in,
                      tgt_out=b.tgt_out, tgt_mask=b.tgt_mask, src_mask=b.src_mask)
        fields.update(changes)
        return type(b)(**fields)
    return fn


def _other(ex_task, vocab_task, swap=False):
    sv, tv = vocab_task.src_vocab, vocab_task.tgt_vocab
    return collate(ex_task.train[:8], *((tv, sv) if swap else (sv, tv)))


def _nan_dict():
    d = F.att.to_dict()
    d["weights"]["readout.bias"][0] = float("nan")
    return d


TIME_FIRST = "Time-first input"

CASES = [
    # ---------------------------------------------------------------- 1. NaN / inf
    ("nan-attention-query", lambda: F.attn(nan_at(q(2, 8)), q(2, 3, 6)),
     ValueError, r"query must be finite"),
    ("inf-attention-keys", lambda: F.attn(q(2, 8), q(2, 3, 6).index_fill(1, torch.tensor([1]),
                                                                       math.inf)),
     ValueError, r"keys must be finite"),
    ("nan-attention-values", lambda: F.attn(q(2, 8), q(2, 3, 6), values=nan_at(q(2, 3, 4), (1, 2, 0))),
     ValueError, r"values must be finite"),
    ("nan-masked-softmax", lambda: masked_softmax(nan_at(q(2, 4))),
     ValueError, r"scores must be finite"),
    ("neg-inf-scores-instead-of-mask",
     lambda: masked_softmax(torch.tensor([[0.0, -math.inf, 1.0]])),
     ValueError, r"scores must be finite.*mask"),
    ("nan-attend-scores", lambda: attend(nan_at(q(2, 3)), q(2, 3, 4)),
     ValueError, r"scores must be finite"),
    ("inf-attend-values", lambda: attend(q(2, 3), q(2, 3, 4).clamp(max=0) / 0.0 * -1),
     ValueError, r"values must be finite"),
    ("nan-prepare-keys", lambda: F.attn.scorer.prepare(nan_at(q(2, 3, 6), (0, 0, 0))),
     ValueError, r"keys must be finite"),
    ("nan-score-query", lambda: F.attn.scorer.score(nan_at(q(2, 8)), q(2, 3, 5)),
     ValueError, r"query must be finite"),
    ("nan-dot-keys", lambda: make_score("dot", 4, 4)(q(2, 4), nan_at(q(2, 3, 4), (1, 1, 1))),
     ValueError, r"keys must be finite"),
    ("nan-single-head-query", lambda: F.mha(nan_at(q(2, 3, 4), (0, 0, 0)), q(2, 5, 4), q(2, 5, 4)),
     ValueError, r"query must be finite"),
    ("nan-logits-loss", lambda: masked_cross_entropy(nan_at(q(4, 3, V), (0, 0, 0)),
                                                    torch.zeros(4, 3, dtype=torch.long),
                                                    torch.ones(4, 3, dtype=torch.bool)),
     ValueError, r"logits must be finite"),
    ("nan-decoder-state", lambda: decoding.greedy(_step(), {"h": nan_at(q(2, 3))}, 2, bos=1, eos=2),
     ValueError, r"state must be finite"),
    ("nan-length-penalty", lambda: decoding.length_penalty(torch.tensor([3.0, math.nan]), 0.6),
     ValueError, r"lengths must be finite"),
    ("nan-weights-from-dict", lambda: AttentionSeq2Seq.from_dict(_nan_dict()),
     ValueError, r"weights\['readout.bias'\] must be finite"),
    # ---------------------------------------------------------------- 2. token ids
    ("float-src-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src.float()),
     TypeError, r"src must hold token ids as torch.long.*truncated"),
    ("src-id-too-large-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src.clamp(max=0) + V),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("negative-src-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src - 5),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("tgt-id-too-large-seq2seq", lambda: _fwd(F.s2s, tgt=F.batch.tgt_in + V),
     ValueError, r"tgt_in must hold ids in \[0, 10\)"),
    ("src-out-of-range-translate", lambda: F.s2s.translate(F.batch.src + V, F.batch.src_lengths),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("negative-src-encoder", lambda: F.s2s.encoder(F.batch.src - 1, F.batch.src_lengths),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("src-out-of-range-s2s-ensemble", lambda: _fwd(F.ens, src=F.batch.src + V),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("negative-src-s2s-ensemble", lambda: _fwd(F.ens, src=F.batch.src - 4),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("tgt-out-of-range-s2s-ensemble", lambda: _fwd(F.ens, tgt=F.batch.tgt_in + V),
     ValueError, r"tgt_in must hold ids in \[0, 10\)"),
    ("float-tgt-s2s-ensemble", lambda: _fwd(F.ens, tgt=F.batch.tgt_in.double()),
     TypeError, r"tgt_in must be a torch.long tensor.*truncated"),
    ("negative-src-s2s-ensemble-greedy",
     lambda: F.ens.greedy(F.batch.src - 4, F.batch.src_lengths, max_len=5),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("src-out-of-range-attention", lambda: _fwd(F.att, src=F.batch.src + V),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("negative-tgt-attention", lambda: _fwd(F.att, tgt=F.batch.tgt_in - 2),
     ValueError, r"tgt_in must hold ids in \[0, 10\)"),
    ("float-tgt-attention", lambda: _fwd(F.att, tgt=F.batch.tgt_in.float()),
     TypeError, r"tgt_in must hold token ids as torch.long"),
    ("tokens-out-of-range-attention-map",
     lambda: F.att.attention_map(F.batch.src, F.batch.src_lengths, F.batch.tgt_out + V),
     ValueError, r"tokens must hold ids in \[0, 10\)"),
    ("src-out-of-range-attention-ensemble", lambda: _fwd(F.aens, src=F.batch.src + V),
     ValueError, r"src must hold ids in \[0, 10\)"),
    ("negative-tgt-attention-ensemble", lambda: _fwd(F.aens, tgt=F.batch.tgt_in - 3),
     ValueError, r"tgt_in must hold ids in \[0, 10\)"),
    ("float-src-attention-ensemble-greedy",
     lambda: F.aens.greedy(F.batch.src.float(), F.batch.src_lengths, max_len=4),
     TypeError, r"src must be a torch.long tensor"),
    ("bos-equal-vocab-greedy", lambda: decoding.greedy(_embedding_step(), None, 2, bos=V, eos=2),
     ValueError, r"bos must be a token id below the model's vocabulary size.*bos = 10"),
    ("bos-equal-vocab-beam", lambda: decoding.beam_search(_embedding_step(), None, 2, bos=V, eos=2),
     ValueError, r"bos must be a token id below"),
    ("bos-too-large-sample", lambda: decoding.sample(_embedding_step(), None, 1, bos=V + 3, eos=2),
     ValueError, r"bos must be a token id below"),
    ("eos-negative-sample", lambda: decoding.sample(_step(), None, 2, bos=1, eos=-1),
     ValueError, r"eos must be an int >= 0; got -1"),
    ("eos-negative-greedy", lambda: decoding.greedy(_step(), None, 2, bos=1, eos=-1),
     ValueError, r"eos must be an int >= 0; got -1"),
    ("eos-equal-vocab-greedy", lambda: decoding.greedy(_step(), None, 2, bos=1, eos=V),
     ValueError, r"eos must be a token id below the vocabulary size K=10"),
    ("pad-negative-beam", lambda: decoding.beam_search(_step(), None, 2, bos=1, eos=2, pad=-1),
     ValueError, r"pad must be an int >= 0"),
    ("tgt-out-out-of-range-loss", lambda: masked_cross_entropy(q(4, 3, V),
                                                               torch.full((4, 3), V),
                                                               torch.ones(4, 3, dtype=torch.bool)),
     ValueError, r"tgt_out must hold ids in \[0, 10\)"),
    ("tgt-out-out-of-range-train-members",
     lambda: train_members(F.ens, _batch_fn(tgt_out=F.batch.tgt_out + V), steps=1, lr=1e-3),
     ValueError, r"tgt_out must hold ids in \[0, 10\)"),
    ("negative-length-penalty", lambda: decoding.length_penalty(torch.tensor([3, -7]), 0.6),
     ValueError, r"lengths must be >= 0.*got -7"),
    # ---------------------------------------------------------------- 3. empty batch, T = 0
    ("empty-batch-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src[:0], lengths=F.batch.src_lengths[:0],
                                         tgt=F.batch.tgt_in[:0]),
     ValueError, r"src must hold at least one sequence"),
    ("empty-source-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src[:, :0]),
     ValueError, r"src must hold at least one sequence of at least one token"),
    ("empty-target-seq2seq", lambda: _fwd(F.s2s, tgt=F.batch.tgt_in[:, :0]),
     ValueError, r"tgt_in must have at least one time step \(L >= 1"),
    ("empty-batch-s2s-ensemble", lambda: _fwd(F.ens, src=F.batch.src[:0],
                                              lengths=F.batch.src_lengths[:0],
                                              tgt=F.batch.tgt_in[:0]),
     ValueError, r"src must hold at least one sequence"),
    ("empty-target-s2s-ensemble", lambda: _fwd(F.ens, tgt=F.batch.tgt_in[:, :0]),
     ValueError, r"tgt_in must have at least one time step"),
    ("empty-batch-attention", lambda: _fwd(F.att, src=F.batch.src[:0],
                                           lengths=F.batch.src_lengths[:0],
                                           tgt=F.batch.tgt_in[:0]),
     ValueError, r"src must hold at least one sequence"),
    ("empty-target-attention", lambda: _fwd(F.att, tgt=F.batch.tgt_in[:, :0]),
     ValueError, r"tgt_in must have at least one time step"),
    ("empty-batch-attention-ensemble", lambda: _fwd(F.aens, src=F.batch.src[:0],
                                                    lengths=F.batch.src_lengths[:0],
                                                    tgt=F.batch.tgt_in[:0]),
     ValueError, r"src must hold at least one sequence"),
    ("empty-target-attention-ensemble", lambda: _fwd(F.aens, tgt=F.batch.tgt_in[:, :0]),
     ValueError, r"tgt_in must have at least one time step"),
    ("empty-keys-attention", lambda: F.attn(q(2, 8), q(2, 0, 6)),
     ValueError, r"keys must have at least one entry along S"),
    ("empty-query-batch-attention", lambda: F.attn(q(0, 8), q(0, 3, 6)),
     ValueError, r"query must have at least one sequence \(axis 0, N >= 1\)"),
    ("empty-scores-masked-softmax", lambda: masked_softmax(q(2, 0)),
     ValueError, r"scores must have at least one source position"),
    ("empty-batch-attend", lambda: attend(q(0, 3), q(0, 3, 4)),
     ValueError, r"scores must have at least one sequence"),
    ("empty-batch-loss", lambda: masked_cross_entropy(q(0, 3, V), torch.zeros(0, 3, dtype=torch.long),
                                                      torch.ones(0, 3, dtype=torch.bool)),
     ValueError, r"logits must have at least one sequence"),
    ("empty-key-single-head", lambda: F.mha(q(2, 3, 4), q(2, 0, 4), q(2, 0, 4)),
     ValueError, r"key must have at least one time step"),
    ("empty-examples-collate", lambda: collate([], F.task.src_vocab, F.task.tgt_vocab),
     ValueError, r"examples must hold at least one Example"),
    ("empty-examples-translate", lambda: translate_examples(F.s2s, [], F.task.src_vocab,
                                                            F.task.tgt_vocab),
     ValueError, r"examples must hold at least one Example"),
    ("empty-lengths-length-tests", lambda: make_length_tests(F.task, []),
     ValueError, r"lengths must hold at least one source length"),
    # ---------------------------------------------------------------- 4. time-first input
    ("time-first-encoder", lambda: F.s2s.encoder(F.batch.src.T, F.batch.src_lengths),
     ValueError, r"src must be \(N, S\), batch-first.*" + TIME_FIRST),
    ("time-first-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src.T),
     ValueError, r"src must be \(N, S\), batch-first.*" + TIME_FIRST),
    ("time-first-translate", lambda: F.s2s.translate(F.batch.src.T, F.batch.src_lengths),
     ValueError, r"src must be \(N, S\).*" + TIME_FIRST),
    ("time-first-s2s-ensemble", lambda: _fwd(F.ens, src=F.batch.src.T),
     ValueError, r"src must be \(N, S\).*" + TIME_FIRST),
    ("time-first-attention", lambda: _fwd(F.att, src=F.batch.src.T),
     ValueError, r"src must be \(N, S\).*" + TIME_FIRST),
    ("time-first-attention-ensemble", lambda: _fwd(F.aens, src=F.batch.src.T),
     ValueError, r"src must be \(N, S\).*" + TIME_FIRST),
    ("time-first-keys", lambda: F.attn(q(2, 8), q(3, 2, 6)),
     ValueError, r"keys must be \(N=2, S, Hk\), batch-first.*" + TIME_FIRST),
    ("time-first-query", lambda: F.attn(q(5, 2, 8), q(2, 3, 6)),
     ValueError, r"query must be \(N=2, L, Hq\), batch-first.*" + TIME_FIRST),
    ("time-first-single-head-query", lambda: F.mha(q(3, 2, 4), q(2, 5, 4), q(2, 5, 4)),
     ValueError, r"query must have the batch size of key \(N=2\).*" + TIME_FIRST),
    ("time-first-target-seq2seq", lambda: _fwd(F.s2s, tgt=F.batch.tgt_in[:, :3].T.contiguous()),
     ValueError, r"tgt_in must have one row per source \(N=4\).*" + TIME_FIRST),
    ("time-first-target-attention-ensemble",
     lambda: _fwd(F.aens, tgt=F.batch.tgt_in[:, :3].T.contiguous()),
     ValueError, r"tgt_in must have one row per source \(N=4\).*" + TIME_FIRST),
    # ---------------------------------------------------------------- 5. feature size, dtype
    ("query-size-attention", lambda: F.attn(q(2, 6), q(2, 3, 6)),
     ValueError, r"query must be \(N, Hq=8\).*query_size=8"),
    ("key-size-attention", lambda: F.attn(q(2, 8), q(2, 3, 8)),
     ValueError, r"keys must be \(N, S, Hk=6\).*key_size=6"),
    ("float64-query-float32-module", lambda: F.attn(q(2, 8, dtype=torch.float64), q(2, 3, 6)),
     TypeError, r"query must have dtype torch.float32.*module.to\(torch.float64\)"),
    ("float64-keys-float32-module", lambda: F.attn(q(2, 8), q(2, 3, 6, dtype=torch.float64)),
     TypeError, r"keys must have dtype torch.float32"),
    ("prepared-size-general", lambda: GeneralScore(8, 6).score(q(2, 8), q(2, 3, 6)),
     ValueError, r"prepared must be \(N, S, P=8\)"),
    ("key-size-additive-prepare", lambda: AdditiveScore(8, 6, 5).prepare(q(2, 3, 8)),
     ValueError, r"keys must be \(N, S, Hk=6\)"),
    ("dot-sizes-differ", lambda: DotScore()(q(2, 4), q(2, 3, 6)),
     ValueError, r"dot scores need query and key vectors of the same size; got Hq=4 and Hk=6"),
    ("dot-dtypes-differ", lambda: make_score("dot", 4, 4)(q(2, 4), q(2, 3, 4, dtype=torch.float64)),
     TypeError, r"keys must have dtype torch.float32 \(that of the query\)"),
    ("attend-values-dtype", lambda: attend(q(2, 3), q(2, 3, 4, dtype=torch.float64)),
     TypeError, r"values must have dtype torch.float32"),
    ("attend-values-length", lambda: attend(q(2, 3), q(2, 5, 4)),
     ValueError, r"scores cover 3 source positions but values have S=5"),
    ("single-head-float64-key", lambda: F.mha(q(2, 3, 4), q(2, 5, 4, dtype=torch.float64),
                                              q(2, 5, 4)),
     TypeError, r"key must have dtype torch.float32"),
    ("single-head-embed-size", lambda: F.mha(q(2, 3, 4), q(2, 5, 6), q(2, 5, 6)),
     ValueError, r"key must be \(N, T, E=4\)"),
    ("mask-wrong-shape-attention", lambda: F.attn(q(2, 8), q(2, 3, 6), torch.ones(2, 4, dtype=torch.bool)),
     ValueError, r"mask of shape \(2, 4\) does not broadcast"),
    ("mask-float-attention", lambda: F.attn(q(2, 8), q(2, 3, 6), torch.ones(2, 3)),
     TypeError, r"mask must have dtype torch.bool"),
    ("values-length-attention", lambda: F.attn(q(2, 8), q(2, 3, 6), values=q(2, 4, 5)),
     ValueError, r"values must be \(N, S=3, Hv\)"),
    ("int-query-attention", lambda: F.attn(torch.ones(2, 8, dtype=torch.long), q(2, 3, 6)),
     TypeError, r"query must hold floats"),
    # ---------------------------------------------------------------- 6. not a tensor
    ("numpy-query-attention", lambda: F.attn(np.zeros((2, 8)), q(2, 3, 6)),
     TypeError, r"query must be a torch float tensor.*torch.as_tensor\(query"),
    ("list-keys-attention", lambda: F.attn(q(2, 8), [[[0.0] * 6] * 3] * 2),
     TypeError, r"keys must be a torch float tensor.*torch.as_tensor\(keys"),
    ("none-keys-attention", lambda: F.attn(q(2, 8), None),
     TypeError, r"keys must be a torch float tensor .*got None"),
    ("numpy-values-attend", lambda: attend(q(2, 3), np.zeros((2, 3, 4))),
     TypeError, r"values must be a torch float tensor"),
    ("numpy-scores-masked-softmax", lambda: masked_softmax(np.zeros((2, 3))),
     TypeError, r"scores must be a float torch.Tensor"),
    ("numpy-src-seq2seq", lambda: _fwd(F.s2s, src=F.batch.src.numpy()),
     TypeError, r"src must be a torch LongTensor.*torch.as_tensor\(src, dtype=torch.long\)"),
    ("list-lengths-seq2seq", lambda: _fwd(F.s2s, lengths=F.batch.src_lengths.tolist()),
     TypeError, r"src_lengths must be a torch LongTensor"),
    ("numpy-src-s2s-ensemble", lambda: _fwd(F.ens, src=F.batch.src.numpy()),
     TypeError, r"src must be a torch LongTensor"),
    ("numpy-src-attention", lambda: _fwd(F.att, src=F.batch.src.numpy()),
     TypeError, r"src must be a torch LongTensor"),
    ("none-tgt-attention", lambda: F.att(F.batch.src, F.batch.src_lengths, None),
     TypeError, r"tgt_in must be a torch LongTensor"),
    ("list-lengths-attention-ensemble", lambda: _fwd(F.aens, lengths=F.batch.src_lengths.tolist()),
     TypeError, r"src_lengths must be a torch LongTensor"),
    ("numpy-mask-loss", lambda: masked_cross_entropy(q(4, 3, V), torch.zeros(4, 3, dtype=torch.long),
                                                     np.ones((4, 3), bool)),
     TypeError, r"tgt_mask must be a bool tensor"),
    ("none-length-penalty", lambda: decoding.length_penalty(None, 0.5),
     TypeError, r"lengths must be a length >= 0"),
    ("numpy-state-greedy", lambda: decoding.greedy(_step(), np.zeros((2, 3)), 2, bos=1, eos=2),
     TypeError, r"state must be a tensor"),
    # ---------------------------------------------------------------- 7. options
    ("attn-size-zero", lambda: Attention("additive", 8, 6, attn_size=0),
     ValueError, r"attn_size must be an int >= 1; got 0"),
    ("attn-size-negative-make-score", lambda: make_score("additive", 8, 8, attn_size=-3),
     ValueError, r"attn_size must be an int >= 1; got -3"),
    ("attn-size-zero-model", lambda: AttentionSeq2Seq(V, V, enc_hidden=8, dec_hidden=8, attn_size=0),
     ValueError, r"attn_size must be an int >= 1; got 0"),
    ("attn-size-zero-ensemble", lambda: AttentionEnsemble(V, V, hidden=8, attn_size=0),
     ValueError, r"attn_size must be an int >= 1; got 0"),
    ("score-typo", lambda: make_score("cosine", 4, 4),
     ValueError, r"score must be one of \('additive', 'dot', 'general', 'scaled_dot'\)"),
    ("score-typo-ensemble", lambda: AttentionEnsemble(V, V, hidden=8, score="Additive"),
     ValueError, r"score must be one of"),
    ("beam-size-zero-translate", lambda: F.s2s.translate(F.batch.src, F.batch.src_lengths,
                                                        method="beam", beam_size=0),
     ValueError, r"^beam_size must be an int >= 1; got 0"),
    ("beam-size-zero-attention-translate",
     lambda: F.att.translate(F.batch.src, F.batch.src_lengths, method="beam", beam_size=0),
     ValueError, r"^beam_size must be an int >= 1; got 0"),
    ("beam-size-zero-translate-examples",
     lambda: translate_examples(F.s2s, F.task.test, F.task.src_vocab, F.task.tgt_vocab,
                                method="beam", beam_size=0),
     ValueError, r"^beam_size must be an int >= 1"),
    ("enc-hidden-zero-seq2seq", lambda: Seq2Seq(V, V, enc_hidden=0, dec_hidden=8),
     ValueError, r"^enc_hidden must be an int >= 1; got 0"),
    ("enc-hidden-zero-attention", lambda: AttentionSeq2Seq(V, V, enc_hidden=0, dec_hidden=8),
     ValueError, r"^enc_hidden must be an int >= 1; got 0"),
    ("enc-hidden-float-s2s-ensemble", lambda: Seq2SeqEnsemble(V, V, enc_hidden=8.0, dec_hidden=8),
     TypeError, r"^enc_hidden must be an int >= 1"),
    ("hidden-zero-attention-ensemble", lambda: AttentionEnsemble(V, V, hidden=0),
     ValueError, r"^hidden must be an int >= 1; got 0"),
    ("src-vocab-too-small-seq2seq", lambda: Seq2Seq(3, V, enc_hidden=8, dec_hidden=8),
     ValueError, r"^src_vocab_size must be an int >= 5; got 3"),
    ("src-vocab-too-small-attention", lambda: AttentionSeq2Seq(2, V, enc_hidden=8, dec_hidden=8),
     ValueError, r"^src_vocab_size must be an int >= 5"),
    ("method-typo-translate", lambda: F.s2s.translate(F.batch.src, F.batch.src_lengths,
                                                     method="beams"),
     ValueError, r"method must be one of 'greedy', 'beam'"),
    ("alpha-negative-translate", lambda: F.s2s.translate(F.batch.src, F.batch.src_lengths,
                                                        method="beam", alpha=-1),
     ValueError, r"alpha must be a number >= 0"),
    ("reduction-typo-loss", lambda: masked_cross_entropy(q(4, 3, V), torch.zeros(4, 3, dtype=torch.long),
                                                         torch.ones(4, 3, dtype=torch.bool),
                                                         reduction="avg"),
     ValueError, r"reduction must be one of 'mean', 'sum', 'none'"),
    ("empty-option-typo-masked-softmax", lambda: masked_softmax(q(2, 3), empty="skip"),
     ValueError, r"empty must be one of \('raise', 'zero'\)"),
    ("empty-option-typo-attention", lambda: F.attn(q(2, 8), q(2, 3, 6), empty="none"),
     ValueError, r"empty must be one of"),
    ("dim-out-of-range-masked-softmax", lambda: masked_softmax(q(2, 3), dim=2),
     ValueError, r"dim must be in \[-2, 2\)"),
    ("numpy-generator-sample", lambda: decoding.sample(_step(), None, 2, bos=1, eos=2,
                                                       generator=np.random.default_rng(0)),
     TypeError, r"generator must be a torch.Generator"),
    ("step-fn-not-callable", lambda: decoding.greedy(F.s2s.step_fn(F.batch.src, F.batch.src_lengths),
                                                     None, 4, bos=1, eos=2),
     TypeError, r"step_fn must be a function"),
    ("batch-fn-not-callable", lambda: train_seq2seq_ensemble(F.ens, F.batch, steps=1, lr=1e-3),
     TypeError, r"batch_fn must be a function"),
    ("batch-fn-not-callable-attention",
     lambda: train_attention_ensemble(F.aens, [F.batch], steps=1, lr=1e-3),
     TypeError, r"batch_fn must be a function"),
    ("clip-norm-zero-train-members", lambda: train_members(F.ens, _batch_fn(), steps=1, lr=1e-3,
                                                           clip_norm=0),
     ValueError, r"clip_norm must be positive"),
    ("model-not-ensemble-train-members", lambda: train_members(F.s2s, _batch_fn(), steps=1, lr=1e-3),
     TypeError, r"ens must be a batched encoder-decoder"),
    ("seed-negative-fit", lambda: fit_seq2seq(F.s2s, F.task, lr=1e-3, steps=1, seed=-1),
     TypeError, r"seed must be an int >= 0"),
    ("reverse-source-string-fit", lambda: fit_seq2seq(F.s2s, F.task, lr=1e-3, steps=1,
                                                      reverse_source="yes"),
     TypeError, r"reverse_source must be True or False"),
    ("shuffle-string-iterate", lambda: next(iterate_batches(F.task.train, 4,
                                                            rng=np.random.default_rng(0),
                                                            src_vocab=F.task.src_vocab,
                                                            tgt_vocab=F.task.tgt_vocab,
                                                            shuffle="no")),
     TypeError, r"shuffle must be True or False"),
    ("seed-negative-make-task", lambda: make_task("copy", n_train=5, n_valid=1, n_test=1, seed=-1),
     ValueError, r"seed must be an int >= 0; got -1"),
    ("float-length-length-tests", lambda: make_length_tests(F.task, [4.5]),
     TypeError, r"lengths must be a list of positive ints; entry 0 is float 4.5"),
    ("other-task-vocab-collate", lambda: _other(F.dates, F.toy),
     ValueError, r"src_vocab does not match these examples.*are not in it.*another task's"),
    ("swapped-vocabs-collate", lambda: _other(F.toy, F.toy, swap=True),
     ValueError, r"src_vocab does not match these examples.*swapped"),
    ("int-tokens-collate", lambda: collate([Example([1, 2], ["a"])], F.task.src_vocab,
                                           F.task.tgt_vocab),
     TypeError, r"examples\[0\]\.src must hold strings"),
    ("bidirectional-string-seq2seq", lambda: Seq2Seq(V, V, enc_hidden=8, dec_hidden=8,
                                                     bidirectional="yes"),
     TypeError, r"bidirectional must be True or False"),
    ("bidirectional-int-attention", lambda: AttentionSeq2Seq(V, V, enc_hidden=8, dec_hidden=8,
                                                             bidirectional=1),
     TypeError, r"bidirectional must be True or False"),
    ("labels-too-short-beam-trace", lambda: decoding.beam_trace(_step(), None, bos=1, eos=2,
                                                                labels=["a", "b"]),
     ValueError, r"labels must name every token id, 10 of them"),
    ("seeds-int-s2s-ensemble", lambda: Seq2SeqEnsemble(V, V, enc_hidden=8, dec_hidden=8, seeds=5),
     ValueError, r"seeds must be a non-empty list of ints"),
    ("tokens-batch-mismatch-attention-map",
     lambda: F.att.attention_map(F.batch.src, F.batch.src_lengths, F.batch.tgt_out[:2]),
     ValueError, r"tokens must have one row per source \(N=4\)"),
]


@pytest.mark.parametrize("make_mistake, exc, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_mistake_is_refused_clearly(make_mistake, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make_mistake()


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 80


def test_valid_calls_still_work():
    """The doors refuse mistakes only: the chapter's ordinary calls go through."""
    b = F.batch
    assert F.s2s(b.src, b.src_lengths, b.tgt_in).shape == (4, b.tgt_in.shape[1], V)
    assert F.ens(b.src, b.src_lengths, b.tgt_in).shape[:2] == (2, 4)
    assert F.att(b.src, b.src_lengths, b.tgt_in).shape[0] == 4
    assert F.aens(b.src, b.src_lengths, b.tgt_in).shape[:2] == (2, 4)
    ctx, w = F.attn(q(2, 8), q(2, 3, 6), torch.tensor([[True, True, False]] * 2))
    assert ctx.shape == (2, 6) and float(w[:, 2].detach().abs().max()) == 0.0
    assert F.s2s.translate(b.src, b.src_lengths, method="beam", beam_size=2).tokens.shape[0] == 4
    hyps = translate_examples(F.att, F.task.test[:2], F.task.src_vocab, F.task.tgt_vocab)
    assert len(hyps) == 2  # max_len=None: the attention model's default
    lp = decoding.length_penalty(torch.tensor([0, 3]), 0.6)
    assert bool(torch.isfinite(lp).all())
    # a few unknown tokens become <unk>, as they should
    ex = [Example(["a", "b", "zz"], ["a", "b"])]
    assert int((collate(ex, F.task.src_vocab, F.task.tgt_vocab).src == 3).sum()) == 1
