"""The encoder-decoder (sequence to sequence) of chapter 8, in torch.

An **encoder** reads the source ``x(1), ..., x(tau_x)`` into states ``h(t)`` and hands the
decoder a fixed-size **context** ``C``: its final state ``h(tau_x)`` (for a bidirectional
encoder, the two directions' final states side by side). A **decoder** with states
``h'(t)`` writes the target one token at a time, reading its previous token (``<bos>``
first) and the context in one of three ways (``context=``):

``"init"``
    ``C`` sets the decoder's initial state, ``h'(0) = tanh(B C + b_B)`` (Cho et al. 2014),
    or ``h'(0) = C`` itself when the sizes match and no bridge is asked for (Sutskever
    et al. 2014). Later steps see ``C`` only through the state.
``"input"``
    ``C`` is appended to the decoder's input at every step; ``h'(0) = 0``.
``"both"``
    both of the above (Cho et al. 2014 feed ``C`` at every step and use it for ``h'(0)``).

The **bridge** ``B`` (a linear layer and a tanh) lets the encoder and decoder have
different sizes (``enc_hidden != dec_hidden``), or a bidirectional encoder feed a
unidirectional decoder. For an LSTM the memory cell gets its own linear bridge (no tanh).

Variable lengths: sources are padded with ``PAD`` and **packed**
(``pack_padded_sequence(..., enforce_sorted=False)``), so each source's final state is
the state after its *last real token*, as if it had been run alone; encoder outputs at
padded positions are 0. ``Encoder(pack=False)`` runs over the padding instead (what
goes wrong without packing, shown in the chapter). The loss ignores padded target
positions (:func:`masked_cross_entropy` with the batch's ``tgt_mask``).

Inference runs through chapter 7's :mod:`companion.nn.decoding`: :meth:`Seq2Seq.step_fn`
returns the ``(step_fn, state)`` pair that ``greedy`` and ``beam_search`` take, with the
state batch-first, and :meth:`Seq2Seq.translate` runs them under ``eval()`` and
``no_grad()``, restoring the previous mode.

:class:`Seq2SeqEnsemble` is the same GRU encoder-decoder (``context="init"``) with ``M``
members trained as one batched model (sweeps over seeds and learning rates); member
``m`` equals a :class:`Seq2Seq` built with ``torch.manual_seed(seeds[m])``
(:meth:`Seq2SeqEnsemble.member_model`, tested).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from companion.checks import (check_callable, check_nonempty, check_positive_int, check_real,
                              check_tensor)
from companion.data.seq2seq import BOS, EOS, PAD, Batch, Seq2SeqTask, Vocab, collate
from companion.nn import decoding
from companion.nn.decoding import _all_finite
from companion.nn.ensemble import BatchedAdam, _member_vector, clip_per_member

__all__ = ["CELLS", "CONTEXTS", "Encoder", "Seq2Seq", "Seq2SeqEnsemble", "fit_seq2seq",
           "masked_cross_entropy", "translate_examples"]

CELLS = ("gru", "lstm", "rnn")
CONTEXTS = ("init", "input", "both")
_TORCH_CELL = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


# ---------------------------------------------------------------- input checks
def _check_choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


def _not_tensor(name, t, what, want="torch.long"):
    """The TypeError for a NumPy array, list or None where a tensor belongs."""
    if isinstance(t, __import__("numpy").ndarray) or isinstance(t, (list, tuple)):
        fix = f"Convert it with torch.as_tensor({name}, dtype={want})"
    else:
        fix = "Pass a tensor"
    return TypeError(f"{name} must be a torch LongTensor {what}; got {type(t).__name__}"
                     f"{'' if t is not None else ' (None)'}. {fix}, or build batches with "
                     f"companion.data.seq2seq.collate.")


def _check_ids(name, t, dims, vocab_size, what):
    if not isinstance(t, torch.Tensor):
        raise _not_tensor(name, t, what)
    if t.dtype != torch.long:
        extra = (" Token ids are whole numbers: a float id would be truncated."
                 if t.is_floating_point() else "")
        raise TypeError(f"{name} must hold token ids as torch.long {what}; got {t.dtype}."
                        f"{extra} Use {name}.long().")
    if t.dim() != dims:
        raise ValueError(f"{name} must be {what}, batch-first; got shape {tuple(t.shape)}.")
    if vocab_size is not None and t.numel():
        lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} must hold ids in [0, {vocab_size}); got values from "
                             f"{lo} to {hi}. Source and target vocabularies swapped?")


def _check_lengths_type(src_lengths):
    if not isinstance(src_lengths, torch.Tensor):
        raise _not_tensor("src_lengths", src_lengths, "(N,) of source lengths")
    if src_lengths.dtype != torch.long:
        raise TypeError(f"src_lengths must be a torch.long tensor (N,) of source lengths; got "
                        f"{src_lengths.dtype}. Use src_lengths.long() (batch.src_lengths is "
                        f"already long).")
    if src_lengths.dim() != 1:
        raise ValueError(f"src_lengths must be (N,), one length per source; got shape "
                         f"{tuple(src_lengths.shape)}.")


def _check_source(src, src_lengths, vocab_size):
    if not isinstance(src, torch.Tensor):
        raise _not_tensor("src", src, "(N, S)")
    if src.dtype != torch.long:
        _check_ids("src", src, 2, vocab_size, "(N, S)")
    if src.dim() != 2:
        raise ValueError(f"src must be (N, S), batch-first; got shape {tuple(src.shape)}.")
    _check_lengths_type(src_lengths)
    N, S = src.shape
    if src_lengths.shape[0] != N and src_lengths.shape[0] == S:
        raise ValueError(f"src must be (N, S), batch-first, with one row per entry of "
                         f"src_lengths (N={S}); got shape {tuple(src.shape)}. Time-first "
                         f"input? This course is batch-first: use src.transpose(0, 1).")
    if N == 0 or S == 0:
        raise ValueError(f"src must hold at least one sequence of at least one token; got "
                         f"shape {tuple(src.shape)}.")
    _check_ids("src", src, 2, vocab_size, "(N, S)")
    if src_lengths.shape[0] != N:
        raise ValueError(f"src_lengths must be (N={N},), one length per source; got shape "
                         f"{tuple(src_lengths.shape)}.")
    lo, hi = (int(v) for v in torch.aminmax(src_lengths))
    if lo < 1 or hi > S:
        raise ValueError(f"src_lengths must be in [1, S={S}]; got values from {lo} to {hi}. "
                         f"An empty source cannot be encoded; a length above S means the "
                         f"lengths belong to another batch.")


def _check_target(name, tgt, N, vocab_size):
    """Target ids (N, L) with L >= 1, every id in [0, vocab_size)."""
    _check_ids(name, tgt, 2, vocab_size, f"(N={N}, L)")
    if tgt.shape[0] != N:
        hint = (f" Time-first input? This course is batch-first: use {name}.transpose(0, 1)."
                if tgt.shape[1] == N else "")
        raise ValueError(f"{name} must have one row per source (N={N}); got shape "
                         f"{tuple(tgt.shape)}.{hint}")
    if tgt.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step (L >= 1, BOS first); got "
                         f"shape {tuple(tgt.shape)}.")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")
    return value


def _check_decode_options(method, beam_size, max_len, alpha):
    """translate's options, checked under the caller's names (beam_size, not beam_width)."""
    _check_choice("method", method, ("greedy", "beam"))
    check_positive_int("beam_size", beam_size)
    if max_len is not None:
        check_positive_int("max_len", max_len)
    check_real("alpha", alpha, low=0.0)


class Encoder(nn.Module):
    """Embedding and a one-layer recurrent network over a padded, batch-first source.

    ``forward(src (N, S), src_lengths (N,))`` returns ``(outputs, final)``: ``outputs``
    (N, S, H*dirs) the states ``h(t)`` (zero at padded positions when packing), and
    ``final`` the context: (N, H*dirs) for ``"gru"``/``"rnn"``, a pair ``(h, c)`` of such
    tensors for ``"lstm"``; a bidirectional encoder concatenates the forward direction's
    state after the last real token and the backward direction's state after the first.
    """

    def __init__(self, vocab_size: int, hidden_size: int, *, emb_size: int = 32,
                 cell: str = "gru", bidirectional: bool = False, pack: bool = True):
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size, minimum=5)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.emb_size = check_positive_int("emb_size", emb_size)
        self.cell = _check_choice("cell", cell, CELLS)
        if not isinstance(bidirectional, bool) or not isinstance(pack, bool):
            raise TypeError("bidirectional and pack must be True or False.")
        self.bidirectional, self.pack = bidirectional, pack
        self.directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.rnn = _TORCH_CELL[cell](emb_size, hidden_size, batch_first=True,
                                     bidirectional=bidirectional)

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.directions

    def forward(self, src, src_lengths):
        _check_source(src, src_lengths, self.vocab_size)
        emb = self.embedding(src)
        if self.pack:
            packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            out, last = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        else:
            out, last = self.rnn(emb)

        def flat(h):  # (dirs, N, H) -> (N, dirs*H)
            return h.transpose(0, 1).reshape(h.shape[1], -1)

        final = (flat(last[0]), flat(last[1])) if self.cell == "lstm" else flat(last)
        return out, final


class Seq2Seq(nn.Module):
    """An encoder-decoder (see the module docstring for ``context`` and the bridge).

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : sizes of the two vocabularies (specials included).
    enc_hidden, dec_hidden : the encoder's and the decoder's state sizes.
    emb_size : the size of both token embeddings.
    cell : ``"gru"``, ``"lstm"`` or ``"rnn"`` (both sides).
    context : ``"init"``, ``"input"`` or ``"both"``.
    bidirectional : a bidirectional encoder (its context has size ``2 * enc_hidden``).
    bridge : whether ``h'(0)`` goes through a linear layer and tanh. ``None`` (default):
        only when the context size differs from ``dec_hidden``. Ignored for ``"input"``.
    pack : passed to the :class:`Encoder`.

    ``forward(src, src_lengths, tgt_in)`` returns the logits (N, L, K) of the next
    target token at every position under teacher forcing (``tgt_in`` = BOS + target).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, enc_hidden: int,
                 dec_hidden: int, emb_size: int = 32, cell: str = "gru",
                 context: str = "init", bidirectional: bool = False,
                 bridge: bool | None = None, pack: bool = True):
        super().__init__()
        self.context = _check_choice("context", context, CONTEXTS)
        self.cell = _check_choice("cell", cell, CELLS)
        self.tgt_vocab_size = check_positive_int("tgt_vocab_size", tgt_vocab_size, minimum=5)
        self.dec_hidden = check_positive_int("dec_hidden", dec_hidden)
        check_positive_int("src_vocab_size", src_vocab_size, minimum=5)
        check_positive_int("enc_hidden", enc_hidden)
        check_positive_int("emb_size", emb_size)
        _check_bool("bidirectional", bidirectional)
        _check_bool("pack", pack)
        self.encoder = Encoder(src_vocab_size, enc_hidden, emb_size=emb_size, cell=cell,
                               bidirectional=bidirectional, pack=pack)
        C = self.encoder.output_size
        self.context_size = C
        uses_init = context in ("init", "both")
        if bridge is None:
            bridge = C != dec_hidden
        if not isinstance(bridge, bool):
            raise TypeError(f"bridge must be True, False or None; got {bridge!r}.")
        if uses_init and not bridge and C != dec_hidden:
            raise ValueError(
                f"bridge=False needs the context size ({C} = enc_hidden x directions) to "
                f"equal dec_hidden={dec_hidden}; use bridge=True (a linear layer) or equal sizes."
            )
        self.use_bridge = uses_init and bridge
        if self.use_bridge:
            self.bridge = nn.Linear(C, dec_hidden)
            if cell == "lstm":
                self.bridge_c = nn.Linear(C, dec_hidden)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=PAD)
        dec_in = emb_size + (C if context in ("input", "both") else 0)
        self.decoder = _TORCH_CELL[cell](dec_in, dec_hidden, batch_first=True)
        self.out = nn.Linear(dec_hidden, tgt_vocab_size)

    # ------------------------------------------------------------ encoder side
    def encode(self, src, src_lengths) -> dict:
        """The decoder's starting state as a batch-first dict.

        ``"h"`` (N, dec_hidden) the initial state ``h'(0)``, ``"c"`` its memory cell for an
        LSTM, ``"ctx"`` (N, C) the context when it is fed at every step.
        """
        _, final = self.encoder(src, src_lengths)
        C_h, C_c = final if self.cell == "lstm" else (final, None)
        N = src.shape[0]
        state = {}
        if self.context in ("init", "both"):
            if self.use_bridge:
                state["h"] = torch.tanh(self.bridge(C_h))
                if self.cell == "lstm":
                    state["c"] = self.bridge_c(C_c)
            else:
                state["h"] = C_h
                if self.cell == "lstm":
                    state["c"] = C_c
        else:
            state["h"] = C_h.new_zeros(N, self.dec_hidden)
            if self.cell == "lstm":
                state["c"] = C_h.new_zeros(N, self.dec_hidden)
        if self.context in ("input", "both"):
            state["ctx"] = C_h
        return state

    # ------------------------------------------------------------ decoder side
    def _run_decoder(self, tokens, state):
        """tokens (N, L) -> (hidden states (N, L, Hd), new state dict)."""
        x = self.tgt_embedding(tokens)
        if "ctx" in state:
            x = torch.cat([x, state["ctx"][:, None, :].expand(-1, x.shape[1], -1)], dim=2)
        h0 = state["h"][None].contiguous()
        if self.cell == "lstm":
            out, (h, c) = self.decoder(x, (h0, state["c"][None].contiguous()))
            new = dict(state, h=h[0], c=c[0])
        else:
            out, h = self.decoder(x, h0)
            new = dict(state, h=h[0])
        return out, new

    def forward(self, src, src_lengths, tgt_in):
        _check_source(src, src_lengths, self.encoder.vocab_size)
        _check_target("tgt_in", tgt_in, src.shape[0], self.tgt_vocab_size)
        state = self.encode(src, src_lengths)
        out, _ = self._run_decoder(tgt_in, state)
        return self.out(out)

    def step_fn(self, src, src_lengths):
        """``(step_fn, state)`` for :mod:`companion.nn.decoding` (call under ``no_grad``)."""
        state = self.encode(src, src_lengths)

        def step(tokens, st):
            out, new = self._run_decoder(tokens[:, None], st)
            return torch.log_softmax(self.out(out[:, 0]), dim=-1), new

        return step, state

    def translate(self, src, src_lengths, *, method: str = "greedy", beam_size: int = 4,
                  max_len: int | None = None, alpha: float = 0.0) -> decoding.Decoded:
        """Decode ``src`` greedily or by beam search, stopping at ``EOS``.

        Runs in eval mode under ``torch.no_grad()`` and restores the previous mode.
        ``max_len`` defaults to ``2 * S + 10`` tokens. Returns a
        :class:`companion.nn.decoding.Decoded` (``tokens`` (N, max_len), PAD after EOS).
        """
        _check_decode_options(method, beam_size, max_len, alpha)
        _check_source(src, src_lengths, self.encoder.vocab_size)
        max_len = 2 * src.shape[1] + 10 if max_len is None else max_len
        max_len = check_positive_int("max_len", max_len)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                fn, state = self.step_fn(src, src_lengths)
                if method == "greedy":
                    return decoding.greedy(fn, state, src.shape[0], bos=BOS, eos=EOS, pad=PAD,
                                           max_len=max_len)
                return decoding.beam_search(fn, state, src.shape[0], bos=BOS, eos=EOS,
                                            pad=PAD, max_len=max_len, beam_width=beam_size,
                                            alpha=alpha)
        finally:
            self.train(was_training)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------- loss and training
def masked_cross_entropy(logits, tgt_out, tgt_mask, *, reduction: str = "mean"):
    """Cross-entropy of the next-token logits over the real target positions only.

    ``logits`` (N, L, K), ``tgt_out`` (N, L) long, ``tgt_mask`` (N, L) bool (True at real
    tokens, EOS included). ``"mean"``: the average over real tokens (every token weighs
    the same, whatever its sequence's length); ``"sum"``: their sum; ``"none"``: (N, L)
    with zeros at padding. Padded positions never contribute.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 3:
        raise TypeError(f"logits must be a float tensor (N, L, K); got "
                        f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}.")
    if 0 in logits.shape:
        check_nonempty("logits", logits, ("N", "L", "K"))
    N, L, K = logits.shape
    if not _all_finite(logits):
        check_tensor("logits", logits, ("N", "L", "K"))  # raises, saying where
    _check_ids("tgt_out", tgt_out, 2, None, f"(N={N}, L={L})")  # ids: cross_entropy checks
    if tuple(tgt_out.shape) != (N, L):
        raise ValueError(f"tgt_out must be (N={N}, L={L}) like the logits; got "
                         f"{tuple(tgt_out.shape)}. Did you pass tgt_in, or forget the offset?")
    if not isinstance(tgt_mask, torch.Tensor) or tgt_mask.dtype != torch.bool:
        raise TypeError(f"tgt_mask must be a bool tensor (N, L), True at real tokens; got "
                        f"{type(tgt_mask).__name__} {getattr(tgt_mask, 'dtype', '')}. Use "
                        f"batch.tgt_mask, or mask.bool() for a 0/1 mask.")
    if tuple(tgt_mask.shape) != (N, L):
        raise ValueError(f"tgt_mask must be (N={N}, L={L}); got {tuple(tgt_mask.shape)}.")
    _check_choice("reduction", reduction, ("mean", "sum", "none"))
    try:
        return _masked_ce(logits, tgt_out, tgt_mask, reduction)
    except IndexError:  # an id out of [0, K): say so in this course's words
        _check_ids("tgt_out", tgt_out, 2, K, f"(N={N}, L={L})")
        raise


_NO_IGNORE = -2 ** 62  # cross_entropy's ignore_index: no id is ignored, -100 included


def _masked_ce(logits, tgt_out, tgt_mask, reduction="mean"):
    N, L, K = logits.shape
    nll = nn.functional.cross_entropy(logits.reshape(-1, K), tgt_out.reshape(-1),
                                      reduction="none", ignore_index=_NO_IGNORE).reshape(N, L)
    nll = torch.where(tgt_mask, nll, torch.zeros_like(nll))
    if reduction == "none":
        return nll
    total = nll.sum()
    if reduction == "sum":
        return total
    count = tgt_mask.sum()
    if int(count) == 0:
        raise ValueError("tgt_mask has no True entry: there is no real token to average over.")
    return total / count


def _check_task(task):
    if not isinstance(task, Seq2SeqTask):
        raise TypeError(f"task must be a Seq2SeqTask from companion.data.seq2seq.make_task; "
                        f"got {type(task).__name__}.")


def fit_seq2seq(model: nn.Module, task: Seq2SeqTask, *, lr: float, steps: int,
                batch_size: int = 64, seed: int = 0, reverse_source: bool = False,
                clip_norm: float = 1.0, examples=None) -> dict:
    """Train ``model`` with Adam on ``task.train`` (or ``examples``) under teacher forcing.

    Any model with ``forward(src, src_lengths, tgt_in) -> logits (N, L, K)`` works.
    Batches are drawn by reshuffling the examples every epoch with
    ``np.random.default_rng(seed)``; the loss is :func:`masked_cross_entropy`; gradients
    are clipped to global norm ``clip_norm`` (``math.inf``: no clipping). Returns
    ``{"loss": [per-step losses], "steps": steps}``. The model is left in train mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    _check_task(task)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    clip_norm = float(clip_norm) if clip_norm == math.inf else check_real(
        "clip_norm", clip_norm, low=0.0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be an int >= 0; got {type(seed).__name__} {seed!r}.")
    _check_bool("reverse_source", reverse_source)
    if examples is not None and (isinstance(examples, (str, bytes)) or
                                 not hasattr(examples, "__iter__")):
        raise TypeError(f"examples must be a list of Example (e.g. task.train[:100]) or None; "
                        f"got {type(examples).__name__}.")
    examples = task.train if examples is None else list(examples)
    if not examples:
        raise ValueError("examples must hold at least one Example.")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    order, pos = rng.permutation(len(examples)), 0
    for _ in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(examples)), 0
        chunk = [examples[i] for i in order[pos:pos + batch_size]]
        pos += batch_size
        b = collate(chunk, task.src_vocab, task.tgt_vocab, reverse_source=reverse_source)
        opt.zero_grad()
        logits = model(b.src, b.src_lengths, b.tgt_in)
        if not losses:  # the model's output, checked once (NaN later: the loss check below)
            if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() \
                    or logits.dim() != 3:
                raise TypeError(f"model must return logits (N, L, K) from forward(src, "
                                f"src_lengths, tgt_in); got {type(logits).__name__} "
                                f"{tuple(getattr(logits, 'shape', ()))}.")
            if tuple(logits.shape[:2]) != tuple(b.tgt_out.shape) or \
                    logits.shape[2] != len(task.tgt_vocab):
                raise ValueError(f"model must return logits (N, L, K={len(task.tgt_vocab)}) for "
                                 f"this task (K = len(task.tgt_vocab)); got "
                                 f"{tuple(logits.shape)}. Build the model with "
                                 f"tgt_vocab_size=len(task.tgt_vocab).")
        loss = _masked_ce(logits, b.tgt_out, b.tgt_mask)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {float(loss)} at step {len(losses)}: "
                                     f"lower lr (now {lr}) or clip the gradient.")
        loss.backward()
        if clip_norm != math.inf:
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        losses.append(float(loss.detach()))
    return {"loss": losses, "steps": steps}


def translate_examples(model: nn.Module, examples, src_vocab: Vocab, tgt_vocab: Vocab, *,
                       reverse_source: bool = False, method: str = "greedy",
                       beam_size: int = 4, batch_size: int = 256,
                       max_len: int | None = None) -> list[list[str]]:
    """Translate a list of examples with ``model.translate``; return target token lists."""
    if not hasattr(model, "translate"):
        raise TypeError(f"model must have a translate(src, src_lengths, ...) method (a "
                        f"Seq2Seq); got {type(model).__name__}.")
    batch_size = check_positive_int("batch_size", batch_size)
    _check_decode_options(method, beam_size, max_len, 0.0)
    _check_bool("reverse_source", reverse_source)
    if isinstance(examples, (str, bytes)) or not hasattr(examples, "__iter__"):
        raise TypeError(f"examples must be a list of Example (e.g. task.test); got "
                        f"{type(examples).__name__}.")
    examples = list(examples)
    if not examples:
        raise ValueError("examples must hold at least one Example; got an empty list.")
    hyps = []
    for start in range(0, len(examples), batch_size):
        b = collate(examples[start:start + batch_size], src_vocab, tgt_vocab,
                    reverse_source=reverse_source)
        res = model.translate(b.src, b.src_lengths, method=method, beam_size=beam_size,
                              max_len=max_len)
        hyps += [tgt_vocab.decode(row) for row in res.tokens]
    return hyps


# ---------------------------------------------------------------- the batched ensemble
def _members_first(name, t, dims, members):
    """``t`` with a leading members axis: shared (``dims`` axes) or one per member."""
    if not isinstance(t, torch.Tensor):
        raise _not_tensor(name, t, "shared by all members or one per member")
    if t.dtype != torch.long:
        extra = (" Token ids are whole numbers: a float id would be truncated."
                 if t.is_floating_point() else "")
        raise TypeError(f"{name} must be a torch.long tensor; got {type(t).__name__} "
                        f"{t.dtype}.{extra} Use {name}.long().")
    if t.dim() == dims:
        t = t.unsqueeze(0).expand(members, *t.shape)
    if t.dim() != dims + 1 or t.shape[0] != members:
        raise ValueError(f"{name} must be shared by all members or one per member "
                         f"(M={members} first); got shape {tuple(t.shape)}.")
    return t


def _members_source(src, src_lengths, members, vocab_size):
    """Check (src, src_lengths), shared (N, S), (N,) or per member; return both (M, ...)."""
    shared = isinstance(src, torch.Tensor) and src.dim() == 2 and \
        isinstance(src_lengths, torch.Tensor) and src_lengths.dim() == 1
    if shared:
        _check_source(src, src_lengths, vocab_size)
    src = _members_first("src", src, 2, members)
    src_lengths = _members_first("src_lengths", src_lengths, 1, members)
    if not shared:
        for m in range(members):
            _check_source(src[m], src_lengths[m], vocab_size)
    return src, src_lengths


def _members_target(name, t, N, members, vocab_size):
    t = _members_first(name, t, 2, members)
    if t.shape[1] != N:
        raise ValueError(f"{name} must have one row per source (N={N}); got shape "
                         f"{tuple(t.shape)} (members first).")
    if t.shape[2] == 0:
        raise ValueError(f"{name} must have at least one time step (L >= 1, BOS first); got "
                         f"shape {tuple(t.shape)}.")
    lo, hi = (int(v) for v in torch.aminmax(t))
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}); got values from {lo} to "
                         f"{hi}. Source and target vocabularies swapped?")
    return t


class Seq2SeqEnsemble(nn.Module):
    """``M`` GRU encoder-decoders (``context="init"``) trained as one batched model.

    Member ``m`` starts from exactly the weights of ``Seq2Seq(src_vocab_size,
    tgt_vocab_size, enc_hidden=H_enc, dec_hidden=H_dec, emb_size=De, cell="gru",
    context="init")`` built right after ``torch.manual_seed(seeds[m])``;
    :meth:`member_model` returns such a model holding member ``m``'s current weights.
    Parameters carry a leading member axis. A variable-length source is handled by
    freezing each row's state after its last real token, which gives the same final
    state as packing (tested).
    """

    _NAMES = ("src_emb", "enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh", "tgt_emb",
              "dec_w_ih", "dec_w_hh", "dec_b_ih", "dec_b_hh", "out_w", "out_b")

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, enc_hidden: int,
                 dec_hidden: int, emb_size: int = 32, seeds=(0,), dtype=torch.float32):
        super().__init__()
        self.sizes = dict(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                          enc_hidden=enc_hidden, dec_hidden=dec_hidden, emb_size=emb_size)
        if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__len__") or not len(seeds):
            raise ValueError("seeds must be a non-empty list of ints, one per member.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        check_positive_int("src_vocab_size", src_vocab_size, minimum=5)
        check_positive_int("tgt_vocab_size", tgt_vocab_size, minimum=5)
        check_positive_int("enc_hidden", enc_hidden)
        check_positive_int("dec_hidden", dec_hidden)
        check_positive_int("emb_size", emb_size)
        self.seeds = [int(check_positive_int("seeds entry", s, minimum=0)) for s in seeds]
        self.dtype = dtype
        refs = [self._reference(s) for s in self.seeds]
        self.has_bridge = refs[0].use_bridge
        names = self._NAMES + (("bridge_w", "bridge_b") if self.has_bridge else ())
        for name in names:
            setattr(self, name, nn.Parameter(torch.stack(
                [self._get(r, name).detach().clone() for r in refs])))
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.enc_hidden, self.dec_hidden = enc_hidden, dec_hidden

    def _reference(self, seed):
        torch.manual_seed(seed)
        return Seq2Seq(**self.sizes, cell="gru", context="init").to(self.dtype)

    @staticmethod
    def _get(model, name):
        e, d = model.encoder.rnn, model.decoder
        return {"src_emb": model.encoder.embedding.weight, "enc_w_ih": e.weight_ih_l0,
                "enc_w_hh": e.weight_hh_l0, "enc_b_ih": e.bias_ih_l0, "enc_b_hh": e.bias_hh_l0,
                "tgt_emb": model.tgt_embedding.weight, "dec_w_ih": d.weight_ih_l0,
                "dec_w_hh": d.weight_hh_l0, "dec_b_ih": d.bias_ih_l0, "dec_b_hh": d.bias_hh_l0,
                "out_w": model.out.weight, "out_b": model.out.bias,
                "bridge_w": getattr(getattr(model, "bridge", None), "weight", None),
                "bridge_b": getattr(getattr(model, "bridge", None), "bias", None)}[name]

    @property
    def members(self) -> int:
        return len(self.seeds)

    def parameter_count(self) -> int:
        """Parameters of ONE member."""
        return sum(p[0].numel() for p in self.parameters())

    def member_model(self, m: int) -> Seq2Seq:
        """A :class:`Seq2Seq` holding member ``m``'s current weights (a copy)."""
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 0 <= m < self.members:
            raise ValueError(f"m must be a member index in [0, {self.members}); got {m!r}.")
        model = self._reference(self.seeds[m])
        with torch.no_grad():
            for name, p in self.named_parameters():
                self._get(model, name).copy_(p[m])
        return model

    # ------------------------------------------------------------ batched GRU pieces
    @staticmethod
    def _gru_step(gi, h, w_hh, b_hh):
        # chunk and unbind (not slicing) keep the backward pass from filling zeros
        gh = torch.baddbmm(b_hh[:, None, :], h, w_hh.transpose(1, 2))
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)

    def _members_first(self, name, t, dims):
        return _members_first(name, t, dims, self.members)

    def encode(self, src, src_lengths):
        """Decoder initial states (M, N, H_dec) for sources (N, S) or (M, N, S)."""
        src, src_lengths = _members_source(src, src_lengths, self.members, self.src_vocab_size)
        M, N, S = src.shape
        emb = self.src_emb[torch.arange(M)[:, None, None], src]  # (M, N, S, De)
        gi = torch.einsum("mnsd,mgd->mnsg", emb, self.enc_w_ih) + self.enc_b_ih[:, None, None]
        h = emb.new_zeros(M, N, self.enc_hidden)
        for t, gi_t in enumerate(gi.unbind(2)):
            new = self._gru_step(gi_t, h, self.enc_w_hh, self.enc_b_hh)
            alive = (t < src_lengths)[..., None]
            h = torch.where(alive, new, h)  # a finished source keeps its final state
        if self.has_bridge:
            h = torch.tanh(torch.baddbmm(self.bridge_b[:, None, :], h,
                                         self.bridge_w.transpose(1, 2)))
        return h

    def forward(self, src, src_lengths, tgt_in):
        """Teacher-forced logits (M, N, L, K)."""
        h = self.encode(src, src_lengths)
        tgt_in = _members_target("tgt_in", tgt_in, h.shape[1], self.members, self.tgt_vocab_size)
        M, N, L = tgt_in.shape
        emb = self.tgt_emb[torch.arange(M)[:, None, None], tgt_in]
        gi = torch.einsum("mnld,mgd->mnlg", emb, self.dec_w_ih) + self.dec_b_ih[:, None, None]
        states = []
        for gi_t in gi.unbind(2):
            h = self._gru_step(gi_t, h, self.dec_w_hh, self.dec_b_hh)
            states.append(h)
        hs = torch.stack(states, dim=2)  # (M, N, L, H)
        return torch.einsum("mnlh,mkh->mnlk", hs, self.out_w) + self.out_b[:, None, None]

    @torch.no_grad()
    def greedy(self, src, src_lengths, max_len: int) -> torch.Tensor:
        """Greedy decoding for every member: tokens (M, N, max_len), PAD after EOS."""
        max_len = check_positive_int("max_len", max_len)
        h = self.encode(src, src_lengths)
        M, N, _ = h.shape
        tok = torch.full((M, N), BOS, dtype=torch.long)
        out = torch.full((M, N, max_len), PAD, dtype=torch.long)
        done = torch.zeros(M, N, dtype=torch.bool)
        ar = torch.arange(M)[:, None]
        for t in range(max_len):
            e = self.tgt_emb[ar, tok]
            gi = torch.einsum("mnd,mgd->mng", e, self.dec_w_ih) + self.dec_b_ih[:, None]
            h = self._gru_step(gi, h, self.dec_w_hh, self.dec_b_hh)
            logits = torch.einsum("mnh,mkh->mnk", h, self.out_w) + self.out_b[:, None]
            tok = logits.argmax(-1)
            out[:, :, t] = torch.where(done, torch.full_like(tok, PAD), tok)
            done = done | (tok == EOS)
            if bool(done.all()):
                break
        return out


def train_seq2seq_ensemble(ens: Seq2SeqEnsemble, batch_fn, *, steps: int, lr,
                           clip_norm=1.0) -> dict:
    """Train every member for ``steps`` Adam steps at its own learning rate.

    ``batch_fn(step) -> Batch`` whose tensors are shared by all members (N, ...) or carry
    one batch per member (M, N, ...). Each member's loss is its own
    :func:`masked_cross_entropy`; gradients are clipped per member. A member whose loss
    or gradient stops being finite is frozen from that step on (``diverged``).
    """
    if not isinstance(ens, Seq2SeqEnsemble):
        raise TypeError(f"ens must be a Seq2SeqEnsemble; got {type(ens).__name__}.")
    return train_members(ens, batch_fn, steps=steps, lr=lr, clip_norm=clip_norm)


def train_members(ens: nn.Module, batch_fn, *, steps: int, lr, clip_norm=1.0) -> dict:
    """The training loop of every batched encoder-decoder (chapters 8 and 9).

    ``ens`` holds ``ens.members`` models and maps ``(src, src_lengths, tgt_in)`` to
    logits (M, N, L, K); ``batch_fn(step)`` returns a :class:`~companion.data.seq2seq.Batch`
    whose ``tgt_out`` and ``tgt_mask`` are shared by all members (N, L) or one per member
    (M, N, L). Each member's loss is its mean cross-entropy over its real target tokens;
    gradients are clipped per member by its own global norm; Adam is
    :class:`~companion.nn.ensemble.BatchedAdam` with one learning rate per member. A member
    whose loss or gradient stops being finite is frozen from that step on.
    Returns ``{"loss": (steps, M) array, "diverged": (M,) bool array}``.
    """
    if not isinstance(ens, nn.Module) or not isinstance(getattr(ens, "members", None), int):
        raise TypeError(f"ens must be a batched encoder-decoder (Seq2SeqEnsemble or "
                        f"AttentionEnsemble); got {type(ens).__name__}.")
    steps = check_positive_int("steps", steps)
    check_callable("batch_fn", batch_fn, "(step) -> Batch")
    M = ens.members
    _member_vector("clip_norm", clip_norm, M, allow_inf=True)  # a typo fails before step 0
    params = list(ens.parameters())
    opt = BatchedAdam(params, lr)
    active = torch.ones(M, dtype=torch.bool)
    losses = np.full((steps, M), np.nan)
    for step in range(steps):
        b = batch_fn(step)
        if not isinstance(b, Batch):
            raise TypeError(f"batch_fn must return a Batch; got {type(b).__name__}.")
        opt.zero_grad()
        logits = ens(b.src, b.src_lengths, b.tgt_in)  # (M, N, L, K)
        _, N, L, K = logits.shape
        tgt_out = _members_target("tgt_out", b.tgt_out, N, M, K)
        if not isinstance(b.tgt_mask, torch.Tensor) or b.tgt_mask.dtype != torch.bool:
            raise TypeError(f"tgt_mask must be a bool tensor (N, L), True at real tokens; got "
                            f"{type(b.tgt_mask).__name__} {getattr(b.tgt_mask, 'dtype', '')}. "
                            f"Use batch.tgt_mask, or mask.bool() for a 0/1 mask.")
        if tuple(b.tgt_mask.shape[-2:]) != (N, L) or b.tgt_mask.dim() not in (2, 3):
            raise ValueError(f"tgt_mask must be (N={N}, L={L}) or (M, N, L); got "
                             f"{tuple(b.tgt_mask.shape)}.")
        mask = b.tgt_mask if b.tgt_mask.dim() == 3 else b.tgt_mask[None].expand(M, N, L)
        nll = nn.functional.cross_entropy(logits.reshape(-1, K), tgt_out.reshape(-1),
                                          reduction="none").reshape(M, N, L)
        member_loss = (nll * mask).sum((1, 2)) / mask.sum((1, 2))
        finite = torch.isfinite(member_loss.detach())
        total = torch.where(finite & active, member_loss, torch.zeros_like(member_loss))
        total.sum().backward()
        gnorm = clip_per_member(params, clip_norm)
        active = active & finite & torch.isfinite(gnorm)
        losses[step] = np.where(active.numpy(), member_loss.detach().double().numpy(), np.nan)
        opt.step(active)
    return {"loss": losses, "diverged": (~active).numpy()}


__all__ += ["train_seq2seq_ensemble", "train_members"]
