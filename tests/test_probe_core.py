"""Probe: realistic mistakes at the public doors of the core torch modules, the metrics,
the data generators and the training loop. Each must fail with a clear error naming the
argument and what was expected, never a torch/NumPy traceback or a silent wrong result.

Cases are ``(id, callable that makes the mistake, exception type, regex)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from companion import metrics
from companion.data import captions, synthetic, tagging, text
from companion.nn import cells, conditioned, ensemble, layers
from companion.nn.conditioned import ConditionedGenerator, masked_nll
from companion.nn.ensemble import BatchedAdam, Ensemble, clip_per_member, train_ensemble
from companion.train import load_checkpoint, save_checkpoint, train

NAN = float("nan")


# ----------------------------------------------------------------------------- fixtures
def _gen(mode="input", seeds=(0, 1), dtype=torch.float32):
    return ConditionedGenerator(mode, 5, 7, 6, 3, seeds=seeds, dtype=dtype)


def _x(n=4, d=5, dtype=torch.float32):
    return torch.zeros(n, d, dtype=dtype)


def _ids(n=4, t=3, k=7):
    return torch.randint(0, k, (n, t))


def _with_nan(t, index):
    t = t.clone()
    t[index] = NAN
    return t


def _ens(kind="lstm", **kw):
    return Ensemble(kind, 2, 4, 1, seeds=[0, 1], **kw)


def _ens_x(n=3, t=5, d=2, dtype=torch.float32):
    return torch.zeros(n, t, d, dtype=dtype)


def _logp(m=2, n=3, t=4, k=7):
    return torch.log_softmax(torch.zeros(m, n, t, k), -1)


def _split():
    return captions.make_captions(0, copies=(1, 1, 1))["train"]


class _BadSplit:
    def __init__(self, **over):
        sp = captions.make_captions(0, copies=(1, 1, 1))["train"]
        for f in ("x", "scenes", "targets", "inputs", "mask"):
            setattr(self, f, over.get(f, getattr(sp, f)))


def _arm():
    run = {"lr": 0.1, "val": {"accuracy": 0.5}, "test": {"accuracy": 0.4,
                                                         "tf_errors": [0], "tf_counts": [1]}}
    return {"runs": [run], "lrs": [0.1], "chosen_lr": 0.1,
            "mode": "input", "schedule": "constant", "floor": 0.0}


def _lin():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 1)


def _train(**kw):
    model = kw.pop("model", _lin())
    x = torch.zeros(4, 2)
    args = dict(steps=2, lr=0.01)
    args.update(kw)
    return train(model, lambda s: x, lambda m, b: m(b).pow(2).mean(), **args)


def _saved(tmp_path, name="ck.pt", model=None, opt="adam"):
    model = model or _lin()
    o = (torch.optim.Adam if opt == "adam" else torch.optim.SGD)(model.parameters(), lr=0.1)
    return save_checkpoint(tmp_path / name, model, o)


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _truncated(tmp_path):
    full = _saved(tmp_path, "full.pt").read_bytes()
    return _write(tmp_path, "cut.pt", full[: len(full) // 2])


def _cell_x(n=2, d=3):
    return torch.zeros(n, d)


# ------------------------------------------------------------------------------- cases
# Every case takes tmp_path (ignored by most).
CASES = [
    # --- 1. NaN / inf in float inputs ------------------------------------------------
    ("cond_forward_nan_x", lambda tp: _gen()(_with_nan(_x(), (1, 2)), _ids()),
     ValueError, r"x must be finite.*non-finite"),
    ("cond_forward_inf_x", lambda tp: _gen()(_x().fill_(math.inf), _ids()),
     ValueError, r"x must be finite"),
    ("cond_initial_state_nan", lambda tp: _gen().initial_state(_with_nan(_x(), (0, 0))),
     ValueError, r"x must be finite"),
    ("cond_free_run_nan", lambda tp: _gen().free_run(_with_nan(_x(), (0, 0)), bos=1, eos=2),
     ValueError, r"x must be finite"),
    ("cond_step_nan_h", lambda tp: _gen().step(torch.zeros(2, 4, dtype=torch.long),
                                               torch.full((2, 4, 6), NAN),
                                               torch.zeros(2, 4, 6)),
     ValueError, r"h must be finite"),
    ("masked_nll_nan_logp", lambda tp: masked_nll(_with_nan(_logp(), (0, 0, 0, 0)),
                                                  _ids(3, 4), torch.ones(3, 4, dtype=torch.bool)),
     ValueError, r"log_probs must not hold NaN"),
    ("ens_forward_nan", lambda tp: _ens()(_with_nan(_ens_x(), (0, 1, 0))),
     ValueError, r"x must be finite.*non-finite"),
    ("ens_fused_forward_nan", lambda tp: _ens(engine="fused")(_with_nan(_ens_x(), (2, 4, 1))),
     ValueError, r"x must be finite"),
    ("ens_predict_inf", lambda tp: _ens().predict(_ens_x().fill_(-math.inf)),
     ValueError, r"x must be finite"),
    ("ens_h0_nan", lambda tp: _ens()(_ens_x(), h0=torch.full((2, 3, 4), NAN)),
     ValueError, r"h0 must be finite"),
    ("ens_per_member_nan", lambda tp: _ens()(_with_nan(torch.zeros(2, 3, 5, 2), (1, 0, 0, 0))),
     ValueError, r"x must be finite"),
    ("cell_rnn_nan", lambda tp: cells.RNNCell(3, 4)(_with_nan(_cell_x(), (0, 1))),
     ValueError, r"x_t must be finite"),
    ("cell_lstm_nan_c", lambda tp: cells.LSTMCell(3, 4)(_cell_x(), (torch.zeros(2, 4),
                                                                  torch.full((2, 4), NAN))),
     ValueError, r"c_prev must be finite"),
    ("cell_gru_nan_h", lambda tp: cells.GRUCell(3, 4)(_cell_x(), torch.full((2, 4), math.inf)),
     ValueError, r"h_prev must be finite"),
    ("recurrent_nan", lambda tp: layers.Recurrent(cells.GRUCell(2, 4))(
        _with_nan(torch.zeros(3, 5, 2), (0, 4, 1))), ValueError, r"x must be finite"),
    ("recurrent_nan_state", lambda tp: layers.Recurrent(cells.RNNCell(2, 4))(
        torch.zeros(3, 5, 2), torch.full((3, 4), NAN)), ValueError, r"state must be finite"),
    ("seqmodel_torch_nan", lambda tp: layers.SequenceModel("lstm", 2, 4, 1, impl="torch")(
        _with_nan(torch.zeros(3, 5, 2), (1, 1, 1))), ValueError, r"x must be finite"),
    ("seqmodel_nan_forget_bias", lambda tp: layers.SequenceModel("lstm", 2, 4, 1,
                                                                 forget_bias=NAN),
     ValueError, r"forget_bias must be a finite number"),
    ("ens_gate_bias_nan", lambda tp: _ens(gate_bias=NAN), ValueError, r"gate_bias must be"),
    ("adding_solved_nan", lambda tp: synthetic.adding_solved([NAN, 0.5], [0.5, 0.5]),
     ValueError, r"pred must be finite"),
    ("scene_features_nan_noise", lambda tp: captions.scene_features(
        captions.all_scenes()[:2], noise=NAN, rng=np.random.default_rng(0)),
     ValueError, r"noise must be a number >= 0"),

    # --- 2. token ids: dtype, range, bos/eos/pad -------------------------------------
    ("cond_inputs_float", lambda tp: _gen()(_x(), _ids().float()),
     TypeError, r"inputs must hold token ids as torch.long"),
    ("cond_inputs_negative", lambda tp: _gen()(_x(), _ids().fill_(-1)),
     ValueError, r"inputs must hold token ids in \[0, K=7\)"),
    ("cond_inputs_too_large", lambda tp: _gen()(_x(), _ids().fill_(7)),
     ValueError, r"inputs must hold token ids in \[0, K=7\).*from 7 to 7"),
    ("cond_free_run_bos_range", lambda tp: _gen().free_run(_x(), bos=7, eos=2),
     ValueError, r"bos must be a token id in \[0, K=7\); got 7"),
    ("cond_free_run_eos_negative", lambda tp: _gen().free_run(_x(), bos=1, eos=-1),
     ValueError, r"eos must be a token id in \[0, K=7\)"),
    ("cond_free_run_pad_float", lambda tp: _gen().free_run(_x(), bos=1, eos=2, pad=0.0),
     TypeError, r"pad must be a token id, an int"),
    ("cond_step_tokens_range", lambda tp: _gen().step(torch.full((2, 4), 9, dtype=torch.long),
                                                      torch.zeros(2, 4, 6), torch.zeros(2, 4, 6)),
     ValueError, r"tokens must hold token ids in \[0, 7\)"),
    ("masked_nll_targets_range", lambda tp: masked_nll(_logp(), _ids(3, 4).fill_(7),
                                                       torch.ones(3, 4, dtype=torch.bool)),
     ValueError, r"targets must hold token ids in \[0, K=7\)"),
    ("masked_nll_targets_negative_pad", lambda tp: masked_nll(
        _logp(), _ids(3, 4).fill_(-1), torch.ones(3, 4, dtype=torch.bool)),
     ValueError, r"targets must hold token ids.*padding value such as -1"),
    ("masked_nll_targets_float", lambda tp: masked_nll(_logp(), _ids(3, 4).float(),
                                                       torch.ones(3, 4, dtype=torch.bool)),
     TypeError, r"targets must hold token ids as torch.long"),
    ("masked_nll_mask_float", lambda tp: masked_nll(_logp(), _ids(3, 4), torch.ones(3, 4)),
     TypeError, r"mask must be a torch.bool tensor"),
    ("captions_decode_out_of_vocab", lambda tp: captions.decode([3, 99]),
     ValueError, r"ids must have every entry in \[0, 24\)"),
    ("captions_shift_right_bos", lambda tp: captions.shift_right(np.ones((2, 3), np.int64),
                                                                 bos=30),
     ValueError, r"bos must be a token id in \[0, 24\)"),
    ("captions_shift_right_float", lambda tp: captions.shift_right(np.ones((2, 3))),
     TypeError, r"targets must be an array of integer class indices"),
    ("text_decode_negative", lambda tp: text.Vocabulary("abc").decode([0, -1]),
     ValueError, r"ids must have every entry in \[0, 3\)"),
    ("majority_baseline_float_labels", lambda tp: tagging.majority_baseline([0.5, 1.0], [1]),
     TypeError, r"train_labels must be an array of integer class indices"),
    ("majority_baseline_negative", lambda tp: tagging.majority_baseline([0, -1], [1]),
     ValueError, r"train_labels must have every entry in >= 0"),
    ("fit_split_ids_range", lambda tp: conditioned.fit(
        ConditionedGenerator("input", 18, 5, 4, 3), _split(), lr=0.01, steps=1),
     ValueError, r"split.inputs must hold token ids in \[0, 5\)"),

    # --- 3. empty batch (N = 0) or T = 0 ----------------------------------------------
    ("cond_forward_N0", lambda tp: _gen()(_x(0), _ids(0)),
     ValueError, r"x must have at least one sequence"),
    ("cond_forward_T0", lambda tp: _gen()(_x(), _ids(4, 0)),
     ValueError, r"inputs must have at least one time step"),
    ("masked_nll_all_false_mask", lambda tp: masked_nll(_logp(), _ids(3, 4),
                                                        torch.zeros(3, 4, dtype=torch.bool)),
     ValueError, r"mask must be True on at least one token.*0/0"),
    ("masked_nll_member_false", lambda tp: masked_nll(
        _logp(), _ids(3, 4).expand(2, 3, 4),
        torch.stack([torch.ones(3, 4, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool)])),
     ValueError, r"mask must be True.*member 1"),
    ("masked_nll_T0", lambda tp: masked_nll(_logp(t=0), _ids(3, 0),
                                            torch.ones(3, 0, dtype=torch.bool)),
     ValueError, r"log_probs must have at least one time step"),
    ("ens_forward_N0", lambda tp: _ens()(_ens_x(n=0)),
     ValueError, r"x must have at least one sequence \(axis 0, N >= 1\)"),
    ("ens_forward_T0", lambda tp: _ens()(_ens_x(t=0)),
     ValueError, r"x must have at least one time step"),
    ("ens_fused_N0", lambda tp: _ens(engine="fused")(_ens_x(n=0)),
     ValueError, r"x must have at least one sequence"),
    ("cell_N0", lambda tp: cells.LSTMCell(3, 4)(_cell_x(n=0)),
     ValueError, r"x_t must have at least one example \(N >= 1\)"),
    ("seqmodel_N0", lambda tp: layers.SequenceModel("gru", 2, 4, 1)(torch.zeros(0, 5, 2)),
     ValueError, r"x must have at least one sequence \(N >= 1\)"),
    ("seqmodel_T0", lambda tp: layers.SequenceModel("gru", 2, 4, 1)(torch.zeros(3, 0, 2)),
     ValueError, r"x must have at least one time step"),
    ("captions_shift_right_T0", lambda tp: captions.shift_right(np.zeros((2, 0), np.int64)),
     ValueError, r"targets must have at least one time step"),
    ("captions_free_running_N0", lambda tp: captions.free_running_errors(
        np.zeros((0, 6), np.int64), np.zeros((0, 3), np.int64)),
     ValueError, r"scenes must have at least one"),
    ("adding_solved_empty", lambda tp: synthetic.adding_solved(np.zeros(0), np.zeros(0)),
     ValueError, r"pred must have at least one"),
    ("text_split_too_short", lambda tp: text.train_valid_split(np.array([1]), 0.9),
     ValueError, r"ids \(1 ids\) is too short for valid_fraction"),
    ("paired_errors_empty", lambda tp: conditioned.paired_errors(
        np.zeros((2, 0)), np.zeros((2, 0)), []),
     ValueError, r"tf_any must hold at least one seed and one caption"),

    # --- 4. time-first input ----------------------------------------------------------
    ("cond_inputs_time_first", lambda tp: _gen()(_x(4), _ids(4, 9).T.contiguous()),
     ValueError, r"inputs must be \(N=4, T\), batch-first; got \(9, 4\).*Time-first"),
    ("seqmodel_time_first", lambda tp: layers.SequenceModel("rnn", 2, 4, 1)(
        torch.zeros(5, 3, 2).transpose(0, 1).transpose(0, 2)),
     ValueError, r"x must be \(N, T, D=2\), batch-first.*Time-first input"),
    ("ens_time_first_with_h0", lambda tp: _ens()(torch.zeros(5, 3, 2), h0=torch.zeros(2, 3, 4)),
     ValueError, r"x must be batch-first, \(N=3, T, D\).*got \(5, 3, 2\).*Time-first.*"
                 r"transpose\(0, 1\)"),
    ("recurrent_time_first_with_state", lambda tp: layers.Recurrent(cells.RNNCell(2, 4))(
        torch.zeros(5, 3, 2), torch.zeros(3, 4)),
     ValueError, r"x must be batch-first, \(N=3, T, D\).*Time-first.*transpose\(0, 1\)"),
    ("recurrent_layered_state", lambda tp: layers.Recurrent(cells.GRUCell(2, 4))(
        torch.zeros(3, 5, 2), torch.zeros(1, 3, 4)),
     ValueError, r"state must be \(N=3, H=4\).*layers, N, H"),

    # --- 5. wrong feature size or dtype -----------------------------------------------
    ("cond_x_float64", lambda tp: _gen()(_x(dtype=torch.float64), _ids()),
     TypeError, r"x must have the model's dtype torch.float32; got torch.float64"),
    ("cond_x_wrong_D", lambda tp: _gen()(_x(d=6), _ids()),
     ValueError, r"x must be \(N, D=5\) or \(M, N, D=5\); got \(4, 6\)"),
    ("cond_x_wrong_M", lambda tp: _gen()(torch.zeros(3, 4, 5), _ids()),
     ValueError, r"x must be .*one per member \(M=2"),
    ("masked_nll_targets_wrong_M", lambda tp: masked_nll(_logp(), _ids(3, 4).expand(3, 3, 4),
                                                         torch.ones(3, 3, 4, dtype=torch.bool)),
     ValueError, r"targets must be \(N=3, T=4\) or \(M=2, N=3, T=4\)"),
    ("ens_x_wrong_D", lambda tp: _ens()(_ens_x(d=3)),
     ValueError, r"x must be \(N, T, D=2\).*got \(3, 5, 3\).*input_size"),
    ("ens_fused_x_wrong_D", lambda tp: _ens(engine="fused")(_ens_x(d=5)),
     ValueError, r"x must be \(N, T, D=2\)"),
    ("ens_x_float64", lambda tp: _ens()(_ens_x(dtype=torch.float64)),
     TypeError, r"x must have the ensemble's dtype torch.float32; got torch.float64"),
    ("ens_x_int", lambda tp: _ens()(torch.zeros(3, 5, 2, dtype=torch.long)),
     TypeError, r"x must have the ensemble's dtype.*One-hot"),
    ("ens_x_2d", lambda tp: _ens()(torch.zeros(5, 2)),
     ValueError, r"x must be \(N, T, D=2\).*single sequence"),
    ("ens_h0_wrong_N", lambda tp: _ens()(_ens_x(), h0=torch.zeros(2, 4, 4)),
     ValueError, r"h0 must be \(M, N, H\) = \(2, 3, 4\); got \(2, 4, 4\)"),
    ("cell_x_wrong_D", lambda tp: cells.RNNCell(3, 4)(torch.zeros(2, 5)),
     ValueError, r"x_t must be \(N, D=3\); got \(2, 5\)"),
    ("cell_whole_sequence", lambda tp: cells.RNNCell(3, 4)(torch.zeros(2, 6, 3)),
     ValueError, r"x_t must be \(N, D=3\); got \(2, 6, 3\).*one step"),
    ("cell_c_prev_rows", lambda tp: cells.LSTMCell(3, 4)(_cell_x(), (torch.zeros(2, 4),
                                                                   torch.zeros(5, 4))),
     ValueError, r"c_prev must have one row per example in x_t \(N=2\); got 5"),
    ("recurrent_state_float64", lambda tp: layers.Recurrent(cells.RNNCell(2, 4))(
        torch.zeros(3, 5, 2), torch.zeros(3, 4, dtype=torch.float64)),
     TypeError, r"state has dtype torch.float64"),
    ("recurrent_lstm_state_single", lambda tp: layers.Recurrent(cells.LSTMCell(2, 4))(
        torch.zeros(3, 5, 2), torch.zeros(3, 4)),
     TypeError, r"state must be the pair \(h0, c0\)"),
    ("fit_split_wrong_D", lambda tp: conditioned.fit(
        ConditionedGenerator("input", 5, 24, 4, 3), _split(), lr=0.01, steps=1),
     ValueError, r"split.x must be \(n >= 1, D=5\).*got \(437, 18\)"),

    # --- 6. NumPy arrays, lists or None where a tensor is expected ---------------------
    ("cond_x_numpy", lambda tp: _gen()(np.zeros((4, 5)), _ids()),
     TypeError, r"x must be a float torch tensor.*torch.as_tensor"),
    ("cond_inputs_list", lambda tp: _gen()(_x(), [[1, 2, 3]] * 4),
     TypeError, r"inputs must be a torch LongTensor.*dtype=torch.long"),
    ("cond_x_none", lambda tp: _gen().initial_state(None),
     TypeError, r"x must be a float torch tensor"),
    ("masked_nll_numpy_logp", lambda tp: masked_nll(np.zeros((2, 3, 4, 7)), _ids(3, 4),
                                                    torch.ones(3, 4, dtype=torch.bool)),
     TypeError, r"log_probs must be a float torch tensor"),
    ("ens_x_numpy", lambda tp: _ens()(np.zeros((3, 5, 2), np.float32)),
     TypeError, r"x must be a torch tensor.*torch.as_tensor\(x, dtype=torch.float32\)"),
    ("ens_x_list", lambda tp: _ens()([[[0.0, 0.0]]]),
     TypeError, r"x must be a torch tensor.*got list"),
    ("ens_h0_numpy", lambda tp: _ens()(_ens_x(), h0=np.zeros((2, 3, 4))),
     TypeError, r"h0 must be a torch tensor"),
    ("cell_x_numpy", lambda tp: cells.GRUCell(3, 4)(np.zeros((2, 3))),
     TypeError, r"x_t must be a torch tensor; got ndarray"),
    ("seqmodel_x_none", lambda tp: layers.SequenceModel("rnn", 2, 4, 1)(None),
     TypeError, r"x must be a torch tensor; got NoneType"),
    ("recurrent_state_list", lambda tp: layers.Recurrent(cells.RNNCell(2, 4))(
        torch.zeros(3, 5, 2), [[0.0] * 4] * 3), TypeError, r"state must be one tensor"),
    ("ngram_counts_string", lambda tp: metrics.ngram_counts("the cat sat", 2),
     TypeError, r"tokens must be a sequence of tokens.*characters.*split"),
    ("ngram_counts_array", lambda tp: metrics.ngram_counts(np.array([1, 2, 3]), 2),
     TypeError, r"tokens must be a list of tokens; got ndarray.*tolist"),
    ("bleu_numpy_hyps", lambda tp: metrics.corpus_bleu(np.array([[1, 2]]), [[1, 2]]),
     TypeError, r"hyps must be a list of token lists; got ndarray.*tolist"),
    ("bleu_flat_row", lambda tp: metrics.exact_match([1, 2], [[1], [2]]),
     TypeError, r"hyps\[0\] must be a list of tokens; got int.*Wrap it"),
    ("adding_solved_tensor", lambda tp: synthetic.adding_solved(torch.zeros(3), np.zeros(3)),
     TypeError, r"pred must be a NumPy array; got a torch tensor"),
    ("clip_per_member_module", lambda tp: clip_per_member(_ens(), 1.0),
     TypeError, r"params must be an iterable of parameters; got the module"),
    ("adam_params_module", lambda tp: BatchedAdam(_ens(), 0.1),
     TypeError, r"params must be an iterable of parameters; got the module"),

    # --- 7. options, rngs, seeds, callables -------------------------------------------
    ("adam_beta1_one", lambda tp: BatchedAdam(_ens().parameters(), 0.1, betas=(1.0, 0.999)),
     ValueError, r"betas\[0\] must be a number in \[0, 1\); got 1.0"),
    ("adam_beta2_negative", lambda tp: BatchedAdam(_ens().parameters(), 0.1,
                                                   betas=(0.9, -0.1)),
     ValueError, r"betas\[1\] must be a number in \[0, 1\)"),
    ("adam_betas_scalar", lambda tp: BatchedAdam(_ens().parameters(), 0.1, betas=0.9),
     TypeError, r"betas must be a pair \(beta1, beta2\)"),
    ("adam_eps_zero", lambda tp: BatchedAdam(_ens().parameters(), 0.1, eps=0.0),
     ValueError, r"eps must be a number > 0"),
    ("adam_lr_list_wrong_length", lambda tp: BatchedAdam(_ens().parameters(), [0.1, 0.2, 0.3]),
     ValueError, r"lr must be a number or one value per member \(2,\); got shape \(3,\)"),
    ("adam_lr_negative", lambda tp: BatchedAdam(_ens().parameters(), [0.1, -0.2]),
     ValueError, r"lr must be positive.*member 1"),
    ("adam_lr_string", lambda tp: BatchedAdam(_ens().parameters(), "1e-3"),
     TypeError, r"lr must be a positive number or one per member"),
    ("adam_lr_none", lambda tp: BatchedAdam(_ens().parameters(), None),
     TypeError, r"lr must be a positive number or one per member.*NoneType"),
    ("adam_step_active_int", lambda tp: BatchedAdam(_ens().parameters(), 0.1).step(
        torch.ones(2, dtype=torch.long)), TypeError, r"active must be a torch.bool tensor of shape \(2,\)"),
    ("train_ens_betas", lambda tp: train_ensemble(
        _ens(), lambda s: (_ens_x(), None), lambda o, y: o.mean((1, 2)), steps=1, lr=0.1,
        betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be a number in \[0, 1\)"),
    ("train_ens_batch_fn", lambda tp: train_ensemble(
        _ens(), (_ens_x(), None), lambda o, y: o.mean((1, 2)), steps=1, lr=0.1),
     TypeError, r"batch_fn must be a function"),
    ("train_ens_clip_negative", lambda tp: train_ensemble(
        _ens(), lambda s: (_ens_x(), None), lambda o, y: o.mean((1, 2)), steps=1, lr=0.1,
        clip_norm=-1.0), ValueError, r"clip_norm must be positive"),
    ("ens_seed_float", lambda tp: Ensemble("rnn", 2, 4, 1, seeds=[0, 1.5]),
     TypeError, r"seeds\[1\] must be an int >= 0; got float 1.5"),
    ("ens_seed_negative", lambda tp: Ensemble("rnn", 2, 4, 1, seeds=[-1]),
     ValueError, r"seeds\[0\] must be an int >= 0; got -1"),
    ("ens_seeds_int", lambda tp: Ensemble("rnn", 2, 4, 1, seeds=3),
     ValueError, r"seeds must be a non-empty list of ints"),
    ("ens_kind_typo", lambda tp: Ensemble("lstn", 2, 4, 1, seeds=[0]),
     ValueError, r"kind must be one of \['gru', 'irnn', 'lstm', 'rnn'\]; got 'lstn'"),
    ("ens_engine_typo", lambda tp: _ens(engine="fast"),
     ValueError, r"engine must be one of \['autograd', 'fused'\]"),
    ("ens_predict_chunk", lambda tp: _ens().predict(_ens_x(), chunk=0),
     ValueError, r"chunk must be an int >= 1; got 0"),
    ("ens_member_model_float", lambda tp: _ens().member_model(0.0),
     TypeError, r"m must be a member index, an int"),
    ("ens_return_states_str", lambda tp: _ens()(_ens_x(), return_states="yes"),
     TypeError, r"return_states must be True or False"),
    ("reference_model_dtype", lambda tp: ensemble.reference_model("rnn", 2, 4, 1, seed=0,
                                                                  dtype=torch.float16),
     TypeError, r"dtype must be torch.float32 or torch.float64"),
    ("state_grad_loss_not_callable", lambda tp: ensemble.state_gradient_norms(
        _ens(), _ens_x(), "mse"), TypeError, r"per_sequence_loss must be a function"),
    ("cond_mode_typo", lambda tp: ConditionedGenerator("inputs", 5, 7),
     ValueError, r"mode must be one of \('init', 'input', 'both'\); got 'inputs'"),
    ("cond_generator_int", lambda tp: _gen()(_x(), _ids(), teacher_prob=0.5, generator=0),
     TypeError, r"generator must be a torch.Generator; got int.*manual_seed"),
    ("cond_teacher_prob_range", lambda tp: _gen()(_x(), _ids(), teacher_prob=1.5),
     ValueError, r"teacher_prob must be a number in \[0, 1\]"),
    ("cond_seeds_negative", lambda tp: ConditionedGenerator("init", 5, 7, seeds=[0, -2]),
     ValueError, r"seeds\[1\] must be an int >= 0"),
    ("fit_lr_wrong_length", lambda tp: conditioned.fit(_gen(dtype=torch.float64),
                                                       _split(), lr=[0.1], steps=1),
     ValueError, r"lr must be a number or one value per member \(2,\)"),
    ("fit_lr_negative", lambda tp: conditioned.fit(ConditionedGenerator("input", 18, 24, 4, 3),
                                                   _split(), lr=-0.01, steps=1),
     ValueError, r"lr must be positive"),
    ("fit_schedule_typo", lambda tp: conditioned.fit(ConditionedGenerator("input", 18, 24, 4, 3),
                                                     _split(), lr=0.01, steps=1,
                                                     schedule="linaer"),
     ValueError, r"schedule must be 'constant', 'linear', 'exponential' or 'inverse_sigmoid'"),
    ("fit_data_seeds_float", lambda tp: conditioned.fit(
        ConditionedGenerator("input", 18, 24, 4, 3), _split(), lr=0.01, steps=1,
        data_seeds=[0.5]), TypeError, r"data_seeds\[0\] must be an int >= 0"),
    ("fit_mask_all_padding", lambda tp: conditioned.fit(
        ConditionedGenerator("input", 18, 24, 4, 3),
        _BadSplit(mask=np.zeros((437, 14), bool)), lr=0.01, steps=1),
     ValueError, r"split.mask must be True on at least one token of every caption"),
    ("fit_split_nan_x", lambda tp: conditioned.fit(
        ConditionedGenerator("input", 18, 24, 4, 3),
        _BadSplit(x=np.full((437, 18), np.nan)), lr=0.01, steps=1),
     ValueError, r"split.x must be finite"),
    ("lr_medians_split_typo", lambda tp: conditioned.lr_medians(_arm(), split="valid"),
     ValueError, r"split must be 'val' or 'test'; got 'valid'"),
    ("lr_medians_key_typo", lambda tp: conditioned.lr_medians(_arm(), key="acc"),
     ValueError, r"key must be one of the stored scores \['accuracy'\]; got 'acc'"),
    ("arm_summary_key_typo", lambda tp: conditioned.arm_summary(_arm(), key="bleu"),
     ValueError, r"key must be one of the stored scores"),
    ("position_rates_kind_typo", lambda tp: conditioned.position_rates(_arm(), "teacher"),
     ValueError, r"kind must be 'tf' \(teacher-forced\) or 'free'"),
    ("find_arm_mode_typo", lambda tp: conditioned.find_arm({"arms": [_arm()]}, "inputs"),
     ValueError, r"mode must be one of \('init', 'input', 'both'\)"),
    ("grid_position_fail_below", lambda tp: conditioned.grid_position(_arm(), fail_below=2),
     ValueError, r"fail_below must be a number in \[0, 1\]"),
    ("paired_errors_seed", lambda tp: conditioned.paired_errors(
        np.zeros((2, 2)), np.zeros((2, 2)), [0, 1], seed=-1),
     ValueError, r"seed must be an int >= 0"),
    ("schedule_k_range", lambda tp: conditioned.scheduled_teacher_prob(
        "exponential", 1, 10, k=2.0), ValueError, r"k must be a number in \(0, 1\]"),
    ("cell_kind_typo", lambda tp: cells.make_cell("gur", 2, 3),
     ValueError, r"kind must be one of \['gru', 'lstm', 'rnn'\]; got 'gur'"),
    ("cell_option_typo", lambda tp: cells.make_cell("gru", 2, 3, reset_afer=False),
     ValueError, r"options \['reset_afer'\] are not GRUCell options"),
    ("cell_initial_state_n", lambda tp: cells.RNNCell(2, 3).initial_state(0),
     ValueError, r"n must be an int >= 1; got 0"),
    ("seqmodel_impl_typo", lambda tp: layers.SequenceModel("rnn", 2, 3, 1, impl="cuda"),
     ValueError, r"impl must be 'scratch' or 'torch'; got 'cuda'"),
    ("numpy_init_seed", lambda tp: layers.numpy_init_(torch.nn.Linear(2, 1), seed=-3),
     TypeError, r"seed must be an int >= 0"),
    ("bleu_smooth_typo", lambda tp: metrics.corpus_bleu([["a"]], [["a"]], smooth="add1"),
     ValueError, r"smooth must be 'exp' or 'none'; got 'add1'"),
    ("captions_sentences_typo", lambda tp: captions.make_captions(0, sentences="canon"),
     ValueError, r"sentences must be 'random'.*'canonical'.*got 'canon'"),
    ("captions_copies_int", lambda tp: captions.make_captions(0, copies=8),
     TypeError, r"copies must be a tuple of three numbers"),
    ("captions_rng_int", lambda tp: captions.scene_features(captions.all_scenes()[:2], rng=3),
     TypeError, r"rng must be a numpy.random.Generator"),
    ("tagging_rng_int", lambda tp: tagging.lookahead_tagging(2, 6, rng=0),
     TypeError, r"rng must be a numpy.random.Generator; got the int 0.*seed=0"),
    ("synthetic_rng_int", lambda tp: synthetic.adding_problem(2, 10, rng=5),
     TypeError, r"rng must be a numpy.random.Generator; got the int 5.*seed=5"),
    ("synthetic_seed_negative", lambda tp: synthetic.temporal_order(2, 10, seed=-1),
     ValueError, r"seed must be an int >= 0"),
    ("tagging_causal_ceiling_ahead", lambda tp: tagging.causal_ceiling(4, ahead=4, vocab=2),
     ValueError, r"ahead must be < length=4"),
    ("text_paths_entry", lambda tp: text.build_course_prose([3]),
     TypeError, r"paths\[0\] must be a file path"),
    ("train_lr_negative", lambda tp: _train(lr=-0.1),
     ValueError, r"lr must be a positive finite number"),
    ("train_optimizer_typo", lambda tp: _train(optimizer="adamw"),
     ValueError, r"optimizer must be 'adam' or 'sgd'; got 'adamw'"),
    ("train_optimizer_object", lambda tp: _train(optimizer=torch.optim.SGD),
     TypeError, r"optimizer must be 'adam' or 'sgd' \(a name\)"),
    ("train_loss_fn_swapped", lambda tp: train(_lin(), lambda m, b: 0, 3, steps=1),
     TypeError, r"loss_fn must be a function"),

    # --- checkpoints ------------------------------------------------------------------
    ("ckpt_save_missing_folder", lambda tp: save_checkpoint(tp / "no" / "such" / "c.pt", _lin()),
     FileNotFoundError, r"path: cannot save to .*c\.pt.*folder .* does not exist.*mkdir"),
    ("ckpt_save_into_folder", lambda tp: save_checkpoint(tp, _lin()),
     ValueError, r"path: .* is a folder; give a file name"),
    ("ckpt_train_missing_folder", lambda tp: _train(checkpoint=tp / "missing" / "c.pt"),
     FileNotFoundError, r"checkpoint: cannot save to .*folder .* does not exist"),
    ("ckpt_load_empty", lambda tp: load_checkpoint(_write(tp, "e.pt", b""), _lin()),
     ValueError, r"path: the checkpoint .*e\.pt.* is empty \(0 bytes\)"),
    ("ckpt_load_corrupt", lambda tp: load_checkpoint(_write(tp, "j.pt", b"not a checkpoint"),
                                                     _lin()),
     ValueError, r"path: cannot read .*j\.pt.* \(16 bytes\) as a checkpoint: the file is "
                 r"corrupt, truncated"),
    ("ckpt_load_truncated", lambda tp: load_checkpoint(_truncated(tp), _lin()),
     ValueError, r"path: cannot read .*cut\.pt.*corrupt, truncated or not a torch file"),
    ("ckpt_load_other_optimizer", lambda tp: load_checkpoint(
        _saved(tp, opt="adam"), _lin(), torch.optim.SGD(_lin().parameters(), lr=0.1)),
     ValueError, r"optimizer: the checkpoint .*ck\.pt.* holds the state of a\(n\) Adam "
                 r"optimizer; got a SGD"),
    ("ckpt_load_other_model", lambda tp: load_checkpoint(_saved(tp), torch.nn.Linear(3, 1)),
     ValueError, r"the checkpoint does not fit this model: .*ck\.pt.* was saved from another "
                 r"model"),
    ("ckpt_resume_missing", lambda tp: _train(resume=tp / "gone.pt"),
     FileNotFoundError, r"resume: no checkpoint at .*gone\.pt"),
    ("ckpt_load_optimizer_wrong_type", lambda tp: load_checkpoint(_saved(tp), _lin(), "adam"),
     TypeError, r"optimizer must be a torch.optim.Optimizer or None"),
]


@pytest.mark.parametrize("case_id, make_mistake, exc, pattern", CASES,
                         ids=[c[0] for c in CASES])
def test_probe(case_id, make_mistake, exc, pattern, tmp_path):
    with pytest.raises(exc, match=pattern) as info:
        make_mistake(tmp_path)
    assert type(info.value) is exc or issubclass(type(info.value), exc)


def test_probe_ids_unique_and_many():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 70


# ------------------------------------------------ the fixed paths still give right results
def test_valid_calls_still_work(tmp_path):
    gen = _gen()
    logp = gen(_x(), _ids())
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 2] = False
    nll = masked_nll(logp, _ids(), mask)
    assert nll.shape == (2,) and bool(torch.isfinite(nll).all())
    out = gen.free_run(_x(), bos=1, eos=2, pad=0, max_len=4)
    assert out.shape == (2, 4, 4)
    assert metrics.ngram_counts("a b a b".split(), 2)[("a", "b")] == 2
    assert metrics.ngram_counts(("a", "b"), 1)[("a",)] == 1
    ens = _ens()
    assert ens(_ens_x(), h0=torch.zeros(2, 3, 4), c0=torch.zeros(2, 3, 4)).shape == (2, 3, 1)
    layer = layers.Recurrent(cells.LSTMCell(2, 4))
    out, (h, c) = layer(torch.zeros(3, 5, 2), (torch.zeros(3, 4), torch.zeros(3, 4)))
    assert out.shape == (3, 5, 4) and h.shape == (3, 4)
    p = save_checkpoint(tmp_path / "ok.pt", _lin(), torch.optim.Adam(_lin().parameters()))
    assert load_checkpoint(p, _lin(), torch.optim.Adam(_lin().parameters()))["step"] == 0
    hist = _train(checkpoint=tmp_path / "t.pt", steps=2)
    assert hist.steps == 2 and (tmp_path / "t.pt").is_file()
    assert _train(resume=tmp_path / "t.pt", steps=3).steps == 3
