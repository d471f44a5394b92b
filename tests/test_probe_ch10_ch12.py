"""Probe: realistic mistakes at the public doors of chapters 10-12's modules
(companion.nn.pointer, zoneout, linear_recurrence, stacked; companion.scratch.scan, rtrl).

Each case is ``(id, callable that makes the mistake, expected exception type, regex)``;
the regex must find the argument's name and what was expected in the message. Classes:
nan (NaN/inf in float inputs), ids (token ids: dtype and range), empty (N = 0 or T = 0),
timefirst (time-first input blamed on x), feature (wrong feature size or dtype),
type (NumPy arrays, lists or None where a tensor is expected), option (ranges, typos,
generators, callables).
"""

import math

import numpy as np
import pytest
import torch

from companion.nn.cells import make_cell
from companion.nn.linear_recurrence import (LRUNetwork, WrappedTanhRNN, last_state,
                                            linear_scan, linear_scan_loop, ring_init,
                                            train_lru_ensemble)
from companion.nn.pointer import (PointerSorter, identity_baseline, real_sort_task,
                                  sort_scores, sort_task, train_sorter)
from companion.nn.stacked import (Bidirectional, DeepReadout, StackedRNN, Tagger, run_cell,
                                  tagging_accuracy, train_tagger)
from companion.nn.zoneout import (CharLMEnsemble, ZoneoutRNNCell, regularised_step,
                                  train_char_ensemble)
from companion.scratch.init import random_rnn_problem
from companion.scratch.rtrl import (delayed_copy_stream, flatten_recurrent, online_train,
                                    stack_params, unflatten_recurrent, uoro_gradient_samples)
from companion.scratch.scan import blelloch_scan, combine, logspace_scan, scan_loop

NAN = float("nan")
F64 = torch.float64


def _with_nan(t, index=(0,)):
    t = t.clone()
    t[index] = NAN
    return t


# --- small objects the mistakes are made with ----------------------------------------
torch.manual_seed(0)
STACK = StackedRNN("gru", 3, 4, num_layers=2)
LSTM = StackedRNN("lstm", 3, 4, num_layers=1)
BI = Bidirectional(make_cell("gru", 3, 4))
READ = DeepReadout(8, 2, depth=2)
TAG = Tagger("gru", 4, 8, 3)
TOK = np.random.default_rng(0).integers(0, 4, size=(6, 5))
LAB = np.random.default_rng(1).integers(0, 3, size=(6, 5))
CELL = ZoneoutRNNCell(3, 4, zoneout=0.1)
CHAR = CharLMEnsemble(5, 4, seeds=[0, 1])
IDS = np.arange(200) % 5
LRU = LRUNetwork(2, 4, 3, 1, seeds=[0, 1])
WRAP = WrappedTanhRNN(2, 4, 3, 1, seeds=[0])
PTR = PointerSorter(4, 10, seeds=[0, 1])
VOC = PointerSorter(4, 10, output="vocab")
PTOK = torch.tensor([[3, 1, 2], [7, 0, 9]])
PORD = torch.argsort(PTOK, dim=1)
E, E1 = PTR.encode(PTOK)
GI, H = torch.zeros(2, 4), torch.zeros(2, 4)
W_HH, B_HH = torch.zeros(4, 4), torch.zeros(4)
P, X, Y, H0 = random_rnn_problem(3, 6, 2, 4, 3, np.random.default_rng(3))
S = stack_params([P] * 3)
A_NP, B_NP = np.full((5, 3), 0.5), np.ones((5, 3))


def _sort_np():
    tok, order = sort_task(4, 5, 10, np.random.default_rng(0))
    return tok, order


TOK_NP, ORD_NP = _sort_np()

CASES = [
    # ---------------------------------------------------------------- 1. NaN / inf
    ("nan-stacked-x", lambda: STACK(_with_nan(torch.zeros(2, 5, 3), (0, 1, 2))),
     ValueError, r"x must be finite.*\(0, 1, 2\)"),
    ("nan-stacked-h0", lambda: STACK(torch.zeros(2, 5, 3), torch.full((2, 2, 4), NAN)),
     ValueError, r"h0 must be finite"),
    ("nan-lstm-c0", lambda: LSTM(torch.zeros(2, 5, 3),
                                 (torch.zeros(1, 2, 4), torch.full((1, 2, 4), math.inf))),
     ValueError, r"c0 must be finite"),
    ("nan-run-cell", lambda: run_cell(make_cell("rnn", 3, 4), _with_nan(torch.zeros(2, 5, 3))),
     ValueError, r"x must be finite"),
    ("nan-bidirectional", lambda: BI(_with_nan(torch.zeros(2, 5, 3))), ValueError,
     r"x must be finite"),
    ("nan-readout", lambda: READ(_with_nan(torch.zeros(3, 8))), ValueError, r"h must be finite"),
    ("nan-zoneout-cell-x", lambda: CELL(_with_nan(torch.zeros(2, 3)), torch.zeros(2, 4)),
     ValueError, r"x must be finite"),
    ("nan-zoneout-cell-h", lambda: CELL(torch.zeros(2, 3), torch.full((2, 4), NAN)),
     ValueError, r"h must be finite"),
    ("nan-regularised-step", lambda: regularised_step(GI, torch.full((2, 4), NAN), W_HH, B_HH,
                                                      zoneout=0.1, keep_mask=None,
                                                      training=True),
     ValueError, r"h must be finite"),
    ("nan-charlm-h0", lambda: CHAR(torch.zeros(2, 3, dtype=torch.long),
                                   h0=torch.full((2, 2, 4), NAN)),
     ValueError, r"h0 must be finite"),
    ("nan-lru-x", lambda: LRU(_with_nan(torch.zeros(3, 5, 2), (1, 2, 0))), ValueError,
     r"x must be finite.*\(1, 2, 0\)"),
    ("nan-lru-predict", lambda: LRU.predict(_with_nan(torch.zeros(3, 5, 2))), ValueError,
     r"x must be finite"),
    ("nan-wrapped-x", lambda: WRAP(_with_nan(torch.zeros(3, 5, 2))), ValueError,
     r"x must be finite"),
    ("nan-linear-scan-b", lambda: linear_scan(torch.ones(3), _with_nan(torch.ones(4, 3), (2, 1))),
     ValueError, r"b must be finite.*\(2, 1\)"),
    ("inf-linear-scan-a", lambda: linear_scan(torch.tensor([0.5, math.inf]), torch.ones(4, 2)),
     ValueError, r"a must be finite"),
    ("nan-linear-scan-complex", lambda: linear_scan(
        torch.full((2,), complex(NAN, 0.0)), torch.ones(4, 2, dtype=torch.complex64)),
     ValueError, r"a must be finite"),
    ("nan-scan-loop-torch-side", lambda: linear_scan_loop(torch.ones(3), torch.full((4, 3), NAN)),
     ValueError, r"b must be finite"),
    ("nan-last-state", lambda: last_state(torch.tensor([0.5]), torch.full((4, 1), NAN)),
     ValueError, r"b must be finite"),
    ("nan-pointer-step-d", lambda: PTR.step(PTR.start((2, 2)), torch.full((2, 2, 4), NAN), E, E1),
     ValueError, r"d must be finite"),
    ("nan-pointer-real-tokens", lambda: PointerSorter(4, 2, inputs="value").decode(
        torch.full((2, 3), NAN)), ValueError, r"finite"),
    ("nan-numpy-scan", lambda: blelloch_scan(A_NP, np.full((5, 3), np.nan)), ValueError,
     r"b must be finite"),
    ("nan-combine", lambda: combine((np.full(3, np.nan), np.ones(3)), (np.ones(3), np.ones(3))),
     ValueError, r"first\[0\] \(a\) must be finite"),
    ("nan-online-train-x", lambda: online_train(S, np.full_like(X, np.nan), Y, 0.1),
     ValueError, r"x must be finite"),
    ("nan-unflatten", lambda: unflatten_recurrent(np.full(28, np.nan), 2, 4), ValueError,
     r"flat must be finite"),
    ("nan-flatten-grads", lambda: flatten_recurrent(dict(P, b=np.full(4, np.nan))), ValueError,
     r"grads\['b'\] must be finite"),
    ("nan-sort-scores-real", lambda: sort_scores(np.zeros((1, 3)), np.array([[0.1, NAN, 0.3]]),
                                                 np.array([[0, 1, 2]])),
     ValueError, r"tokens must be finite"),

    # ---------------------------------------------------------------- 2. token ids
    ("ids-charlm-negative", lambda: CHAR(torch.tensor([[0, 1, -1]])), ValueError,
     r"ids must hold token ids in \[0, 5\); got ids from -1"),
    ("ids-charlm-too-large", lambda: CHAR(torch.tensor([[0, 5]])), ValueError,
     r"ids must hold token ids in \[0, 5\)"),
    ("ids-charlm-float", lambda: CHAR(torch.tensor([[0.0, 1.0]])), TypeError,
     r"ids must be a torch.long tensor.*truncated"),
    ("ids-charlm-int32", lambda: CHAR(torch.tensor([[0, 1]], dtype=torch.int32)), TypeError,
     r"ids must be a torch.long tensor"),
    ("ids-bits-per-char-float", lambda: CHAR.bits_per_char(IDS + 0.5), TypeError,
     r"ids must be an array of integer"),
    ("ids-bits-per-char-range", lambda: CHAR.bits_per_char(np.arange(50) % 7), ValueError,
     r"ids must have every entry in \[0, 5\)"),
    ("ids-train-char-negative", lambda: train_char_ensemble(CHAR, IDS - 1, steps=1, lr=1e-3,
                                                            seq_len=8, batch=2),
     ValueError, r"train_ids must have every entry in \[0, 5\)"),
    ("ids-train-char-float-tensor", lambda: train_char_ensemble(
        CHAR, torch.as_tensor(IDS, dtype=torch.float32), steps=1, lr=1e-3, seq_len=8),
     TypeError, r"train_ids must hold integer character ids.*truncated"),
    ("ids-tagger-int32", lambda: TAG(torch.zeros(2, 5, dtype=torch.int32)), TypeError,
     r"tokens must be a torch.long \(int64\) tensor"),
    ("ids-tagger-negative", lambda: TAG(torch.full((2, 5), -1)), ValueError,
     r"tokens must lie in 0..3"),
    ("ids-tagging-accuracy-float", lambda: tagging_accuracy(TAG, TOK + 0.7, LAB), TypeError,
     r"tokens must be an array of integer"),
    ("ids-tagging-accuracy-labels", lambda: tagging_accuracy(TAG, TOK, LAB + 3), ValueError,
     r"labels must lie in 0..2"),
    ("ids-train-tagger-float-labels", lambda: train_tagger(TAG, TOK, LAB * 1.0, steps=1, lr=1e-2),
     TypeError, r"labels must be an array of integer"),
    ("ids-pointer-negative", lambda: PTR.decode(torch.tensor([[-1, 2, 3]])), ValueError,
     r"tokens must lie in \[0, K=10\)"),
    ("ids-pointer-int32", lambda: PTR.decode(torch.tensor([[1, 2, 3]], dtype=torch.int32)),
     TypeError, r"tokens must be an int64"),
    ("ids-pointer-order-range", lambda: PTR(PTOK, torch.tensor([[0, 1, 3], [0, 1, 2]])),
     ValueError, r"order must hold.*every input position 0..2"),
    ("ids-pointer-order-float", lambda: PTR.loss(PTOK, PORD.float()), TypeError,
     r"order must be an int64"),
    ("ids-pointer-order-repeated", lambda: PTR.loss(PTOK, torch.tensor([[0, 0, 1], [0, 1, 2]])),
     ValueError, r"order must hold.*permutation"),
    ("ids-pointer-features", lambda: PTR.features(torch.tensor([10])), ValueError,
     r"tokens must lie in \[0, K=10\)"),
    ("ids-vocab-real-tokens", lambda: VOC.decode(torch.rand(2, 3)), TypeError,
     r"vocabulary has no class"),
    ("ids-sort-scores-order-range", lambda: sort_scores(TOK_NP, TOK_NP, ORD_NP + 1), ValueError,
     r"order must have every entry in \[0, 5\)"),
    ("ids-sort-scores-float-pred", lambda: sort_scores(TOK_NP * 1.0, TOK_NP, ORD_NP), TypeError,
     r"pred_tokens must hold the numbers emitted"),
    ("ids-identity-baseline-float-order", lambda: identity_baseline(TOK_NP, ORD_NP * 1.0),
     TypeError, r"order must be an array of integer"),
    ("ids-sort-task-float-values", lambda: sort_task(2, 3, 10, np.random.default_rng(0),
                                                     values=[0.5, 1.5, 2.5, 3.5]),
     TypeError, r"values must be an array of integer"),
    ("ids-online-train-float-y", lambda: online_train(S, X, Y * 1.0, 0.1), TypeError,
     r"y must be an array of integer"),

    # ---------------------------------------------------------------- 3. empty batch / T = 0
    ("empty-stacked-N", lambda: STACK(torch.zeros(0, 5, 3)), ValueError,
     r"x must have at least one sequence"),
    ("empty-stacked-T", lambda: STACK(torch.zeros(2, 0, 3)), ValueError,
     r"x must have at least one time step"),
    ("empty-zoneout-cell", lambda: CELL(torch.zeros(0, 3), torch.zeros(0, 4)), ValueError,
     r"x must have at least one sequence"),
    ("empty-charlm-N", lambda: CHAR(torch.zeros(0, 3, dtype=torch.long)), ValueError,
     r"ids must have at least one sequence"),
    ("empty-charlm-T", lambda: CHAR(torch.zeros(2, 0, dtype=torch.long)), ValueError,
     r"ids must have at least one time step"),
    ("empty-lru-N", lambda: LRU(torch.zeros(0, 5, 2)), ValueError,
     r"x must have at least one sequence"),
    ("empty-linear-scan-T", lambda: linear_scan(torch.ones(3), torch.ones(0, 3)), ValueError,
     r"b must have at least one time step"),
    ("empty-linear-scan-N", lambda: linear_scan(torch.ones(3), torch.ones(0, 4, 3)), ValueError,
     r"b must not be empty.*at least one sequence"),
    ("empty-tagger", lambda: TAG(torch.zeros(2, 0, dtype=torch.long)), ValueError,
     r"tokens must have at least one time step"),
    ("empty-tagging-accuracy", lambda: tagging_accuracy(TAG, TOK[:0], LAB[:0]), ValueError,
     r"tokens must have at least one sequence"),
    ("empty-pointer-N", lambda: PTR.decode(torch.zeros(0, 3, dtype=torch.long)), ValueError,
     r"tokens must have at least one sequence"),
    ("empty-sort-scores", lambda: sort_scores(TOK_NP[:0], TOK_NP[:0], ORD_NP[:0]), ValueError,
     r"tokens must have at least one sequence"),
    ("empty-scan-channels", lambda: scan_loop(np.ones((3, 0)), np.ones((3, 0))), ValueError,
     r"b must have at least one channel"),
    ("empty-online-train-T", lambda: online_train(S, X[:, :0], Y[:, :0], 0.1), ValueError,
     r"x must have at least one time step"),

    # ---------------------------------------------------------------- 4. time-first input
    ("timefirst-stacked-with-h0", lambda: STACK(torch.zeros(5, 2, 3), torch.zeros(2, 2, 4)),
     ValueError, r"x must be \(N, T, D=3\), batch-first.*Time-first.*x.transpose\(0, 1\)"),
    ("timefirst-lstm-with-h0c0", lambda: LSTM(torch.zeros(5, 2, 3),
                                              (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))),
     ValueError, r"x must be \(N, T, D=3\).*Time-first"),
    ("timefirst-online-train", lambda: online_train(S, X.transpose(1, 0, 2), Y.T, 0.1),
     ValueError, r"x must be .*batch-first.*Time-first"),

    # ---------------------------------------------------------------- 5. feature size / dtype
    ("feature-readout-size", lambda: READ(torch.zeros(3, 4)), ValueError,
     r"h must be \(\.\.\., H=8\).*got \(3, 4\)"),
    ("feature-readout-dtype", lambda: READ(torch.zeros(3, 8, dtype=F64)), TypeError,
     r"h has dtype torch.float64 but the model's parameters are torch.float32"),
    ("feature-zoneout-cell-size", lambda: CELL(torch.zeros(2, 5), torch.zeros(2, 4)), ValueError,
     r"x must be \(N, 3\); got \(2, 5\)"),
    ("feature-zoneout-cell-dtype", lambda: CELL(torch.zeros(2, 3, dtype=F64), torch.zeros(2, 4)),
     TypeError, r"x must have dtype torch.float32.*x.float\(\)"),
    ("feature-zoneout-keep-mask", lambda: ZoneoutRNNCell(3, 4, dropout=0.2)(
        torch.zeros(2, 3), torch.zeros(2, 4), keep_mask=torch.ones(2, 5)),
     ValueError, r"keep_mask must be \(N=2, 4\)"),
    ("feature-regularised-w-hh", lambda: regularised_step(GI, H, torch.zeros(4, 3), B_HH,
                                                          zoneout=0.1, keep_mask=None,
                                                          training=False),
     ValueError, r"w_hh must be \(H=4, H=4\)"),
    ("feature-pointer-step-prev", lambda: PTR.step(torch.zeros(2, 2, 3), E[:, :, -1], E, E1),
     ValueError, r"prev must be \(M=2, N=2, 11\)"),
    ("feature-lru-dtype", lambda: LRU(torch.zeros(3, 5, 2, dtype=F64)), TypeError, r"dtype"),
    ("feature-charlm-h0-shape", lambda: CHAR(torch.zeros(2, 3, dtype=torch.long),
                                             h0=torch.zeros(2, 4)),
     ValueError, r"h0 must be \(M=2, N=2, 4\)"),

    # ---------------------------------------------------------------- 6. wrong container
    ("type-stacked-numpy", lambda: STACK(np.zeros((2, 5, 3))), TypeError,
     r"x must be a torch tensor"),
    ("type-zoneout-cell-numpy", lambda: CELL(np.zeros((2, 3)), torch.zeros(2, 4)), TypeError,
     r"x must be a torch tensor.*torch.as_tensor"),
    ("type-charlm-list", lambda: CHAR([[0, 1, 2]]), TypeError,
     r"ids must be a torch.long tensor.*torch.tensor\(ids, dtype=torch.long\)"),
    ("type-linear-scan-numpy", lambda: linear_scan(np.ones(3), np.ones((4, 3))), TypeError,
     r"a and b must be torch tensors"),
    ("type-readout-list", lambda: READ([[0.0] * 8]), TypeError, r"h must be a torch tensor"),
    ("type-pointer-order-numpy", lambda: PTR(PTOK, ORD_NP[:2, :3]), TypeError,
     r"order must be an int64 torch tensor"),
    ("type-pointer-none", lambda: PTR.decode(None), TypeError, r"tokens must be an int64"),
    ("type-run-cell-none-state", lambda: run_cell(make_cell("lstm", 3, 4), torch.zeros(2, 5, 3),
                                                  (None, None)),
     TypeError, r"state\[0\] must be a torch tensor"),
    ("type-bidirectional-state", lambda: BI(torch.zeros(2, 5, 3), torch.zeros(2, 4)), TypeError,
     r"state must be None or the pair"),
    ("type-lru-predict-numpy", lambda: LRU.predict(np.zeros((3, 5, 2))), TypeError,
     r"x must be a torch tensor"),
    ("type-online-train-list-params", lambda: online_train([P], X, Y, 0.1), TypeError,
     r"params must be a dict"),
    ("type-stack-params-dict", lambda: stack_params(P), TypeError,
     r"param_list must be a list of parameter dicts"),
    ("type-flatten-list", lambda: flatten_recurrent([P]), TypeError, r"grads must be a dict"),
    ("type-tagging-accuracy-model", lambda: tagging_accuracy("model", TOK, LAB), TypeError,
     r"model must be a torch module"),
    ("type-combine-not-pair", lambda: combine((A_NP,), (A_NP, B_NP)), TypeError,
     r"first must be a pair \(a, b\)"),

    # ---------------------------------------------------------------- 7. options
    ("option-regularised-zoneout-1.5", lambda: regularised_step(GI, H, W_HH, B_HH, zoneout=1.5,
                                                                keep_mask=None, training=True),
     ValueError, r"zoneout must be a number in \[0, 1\); got 1.5"),
    ("option-regularised-zoneout-tensor", lambda: regularised_step(
        GI, H, W_HH, B_HH, zoneout=torch.tensor([[[1.0]]]), keep_mask=None, training=True),
     ValueError, r"zoneout rates must lie in \[0, 1\)"),
    ("option-regularised-training", lambda: regularised_step(GI, H, W_HH, B_HH, zoneout=0.1,
                                                             keep_mask=None, training="yes"),
     TypeError, r"training must be True or False"),
    ("option-regularised-generator-int", lambda: regularised_step(
        GI, H, W_HH, B_HH, zoneout=0.1, keep_mask=None, training=True, generator=0),
     TypeError, r"generator must be a torch.Generator"),
    ("option-zoneout-cell-generator", lambda: CELL.train()(torch.zeros(2, 3), torch.zeros(2, 4),
                                                           generator=1),
     TypeError, r"generator must be a torch.Generator"),
    ("option-dropout-mask-n", lambda: CELL.dropout_mask(0), ValueError, r"n must be an int >= 1"),
    ("option-charlm-rate-string", lambda: CharLMEnsemble(5, 4, seeds=[0], zoneout="0.1"),
     TypeError, r"zoneout must be a number in \[0, 1\)"),
    ("option-charlm-seeds-float", lambda: CharLMEnsemble(5, 4, seeds=[0.5]), TypeError,
     r"seeds must hold non-negative ints"),
    ("option-train-char-clip-0", lambda: train_char_ensemble(CHAR, IDS, steps=1, lr=1e-3,
                                                             seq_len=8, clip_norm=0),
     ValueError, r"clip_norm must be positive"),
    ("option-train-char-eval-fn", lambda: train_char_ensemble(CHAR, IDS, steps=1, lr=1e-3,
                                                              seq_len=8, eval_fn=5,
                                                              eval_every=1),
     TypeError, r"eval_fn must be a function"),
    ("option-bits-per-char-chunk", lambda: CHAR.bits_per_char(IDS, chunk=0), ValueError,
     r"chunk must be an int >= 1"),
    ("option-lru-predict-chunk-0", lambda: LRU.predict(torch.zeros(3, 5, 2), chunk=0),
     ValueError, r"chunk must be an int >= 1; got 0"),
    ("option-wrapped-predict-chunk", lambda: WRAP.predict(torch.zeros(3, 5, 2), chunk=2.5),
     TypeError, r"chunk must be an int >= 1"),
    ("option-lru-scan-typo", lambda: LRUNetwork(2, 4, 3, 1, seeds=[0], scan="paralel"),
     ValueError, r"scan must be 'parallel', 'loop' or 'last'"),
    ("option-lru-all-steps", lambda: LRU(torch.zeros(3, 5, 2), all_steps="yes"), TypeError,
     r"all_steps must be True or False"),
    ("option-lru-seeds-string", lambda: LRUNetwork(2, 4, 3, 1, seeds="01"), TypeError,
     r"seeds must be a list of non-negative ints"),
    ("option-lru-r-min-string", lambda: LRUNetwork(2, 4, 3, 1, seeds=[0], r_min="0.9"),
     TypeError, r"r_min must be a number >= 0"),
    ("option-ring-init-generator", lambda: ring_init(3, r_min=0.5, r_max=0.9, max_phase=1.0,
                                                     generator=7),
     TypeError, r"generator must be a torch.Generator"),
    ("option-train-lru-batch-fn", lambda: train_lru_ensemble(LRU, 3, lambda o, y: o, steps=1,
                                                             lr=1e-3),
     TypeError, r"batch_fn must be a function"),
    ("option-linear-scan-int", lambda: linear_scan(torch.ones(3, dtype=torch.long),
                                                   torch.ones(4, 3)),
     TypeError, r"a must hold real or complex floats"),
    ("option-linear-scan-enlarges-b", lambda: linear_scan(torch.ones(2, 4, 3), torch.ones(4, 3)),
     ValueError, r"a must broadcast to the shape of b"),
    ("option-stacked-kind-typo", lambda: StackedRNN("gur", 3, 4), ValueError,
     r"kind must be one of \['rnn', 'lstm', 'gru'\]"),
    ("option-tagger-torch-kind-typo", lambda: Tagger("lstn", 4, 8, 3, impl="torch"), ValueError,
     r"kind must be one of \['rnn', 'lstm', 'gru'\]; got 'lstn'"),
    ("option-tagger-impl-typo", lambda: Tagger("gru", 4, 8, 3, impl="pytorch"), ValueError,
     r"impl must be 'scratch' or 'torch'"),
    ("option-train-tagger-clip-0", lambda: train_tagger(TAG, TOK, LAB, steps=1, lr=1e-2,
                                                        clip_norm=0),
     ValueError, r"clip_norm must be a number > 0.*zero every gradient"),
    ("option-train-tagger-lr", lambda: train_tagger(TAG, TOK, LAB, steps=1, lr=-1e-2),
     ValueError, r"lr must be a number > 0"),
    ("option-train-tagger-seed", lambda: train_tagger(TAG, TOK, LAB, steps=1, lr=1e-2,
                                                      seed=np.random.default_rng(0)),
     TypeError, r"seed must be an int >= 0"),
    ("option-readout-width-0", lambda: DeepReadout(4, 2, depth=2, width=0), ValueError,
     r"width must be an int >= 1; got 0"),
    ("option-run-cell-reverse", lambda: run_cell(make_cell("gru", 3, 4), torch.zeros(2, 5, 3),
                                                 reverse="backward"),
     TypeError, r"reverse must be True or False"),
    ("option-combine-dense-on-elementwise", lambda: combine((A_NP, B_NP), (A_NP, B_NP),
                                                            dense=True),
     ValueError, r"first must be a dense pair.*dense=False"),
    ("option-combine-dense-looking", lambda: combine((np.ones((5, 3, 3)), B_NP),
                                                     (np.ones((5, 3, 3)), B_NP)),
     ValueError, r"first looks like a dense pair.*dense=True"),
    ("option-scan-return-counts", lambda: scan_loop(A_NP, B_NP, return_counts="yes"), TypeError,
     r"return_counts must be True or False"),
    ("option-logspace-dense", lambda: logspace_scan(np.ones((5, 3, 3)), B_NP), ValueError,
     r"no dense form"),
    ("option-pointer-output-typo", lambda: PointerSorter(4, 10, output="pointers"), ValueError,
     r"output must be 'pointer' or 'vocab'"),
    ("option-pointer-mask-chosen", lambda: PTR.decode(PTOK, mask_chosen="yes"), TypeError,
     r"mask_chosen must be True or False"),
    ("option-pointer-start-shape", lambda: PTR.start(3), TypeError,
     r"shape must be a tuple of ints >= 1"),
    ("option-train-sorter-clip-0", lambda: train_sorter(PTR, steps=1, lr=1e-3, clip_norm=0),
     ValueError, r"clip_norm must be positive"),
    ("option-train-sorter-lengths-float", lambda: train_sorter(PTR, steps=1, lr=1e-3,
                                                               lengths=(3.5, 5)),
     TypeError, r"lengths must be a pair of ints"),
    ("option-train-sorter-data-seeds", lambda: train_sorter(PTR, steps=1, lr=1e-3,
                                                            data_seeds=[0, -1]),
     ValueError, r"data_seeds must hold non-negative ints"),
    ("option-train-sorter-sampler", lambda: train_sorter(PTR, steps=1, lr=1e-3, sampler="uniform"),
     ValueError, r"sampler must be a callable"),
    ("option-real-sort-task-rng", lambda: real_sort_task(2, 3, 0), TypeError,
     r"rng must be a numpy.random.Generator"),
    ("option-online-train-method", lambda: online_train(S, X, Y, 0.1, "bptt"), ValueError,
     r"method must be one of \('rtrl', 'uoro', 'tbptt', 'reset'\)"),
    ("option-online-train-lr-string", lambda: online_train(S, X, Y, "0.1"), TypeError,
     r"lr must be a non-negative float"),
    ("option-online-train-eps", lambda: online_train(S, X, Y, 0.1, eps=0.0), ValueError,
     r"eps must be a number > 0"),
    ("option-online-train-uoro-rng", lambda: online_train(S, X, Y, 0.1, "uoro", rng=0),
     TypeError, r"rng must be a numpy.random.Generator"),
    ("option-uoro-samples-rng", lambda: uoro_gradient_samples(P, X[:1], Y[:1], 4, rng=None),
     TypeError, r"rng must be a numpy.random.Generator"),
    ("option-delayed-copy-seed", lambda: delayed_copy_stream(20, seed=-1), ValueError,
     r"seed must be an int >= 0"),
    ("option-flatten-shapes", lambda: flatten_recurrent(dict(P, b=np.zeros(3))), ValueError,
     r"grads\['b'\] must be \(4,\) to match W"),
]

CLASSES = ("nan", "inf", "ids", "empty", "timefirst", "feature", "type", "option")


def test_enough_cases_and_every_class():
    assert len(CASES) >= 70
    assert len({c[0] for c in CASES}) == len(CASES), "duplicate ids"
    seen = {c[0].split("-")[0] for c in CASES}
    assert seen <= set(CLASSES) and {"nan", "ids", "empty", "timefirst", "feature", "type",
                                     "option"} <= seen


@pytest.mark.parametrize("make_mistake, exc, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_mistake_is_refused_clearly(make_mistake, exc, pattern):
    with pytest.raises(exc, match=pattern) as err:
        make_mistake()
    assert type(err.value) is exc  # not a subclass raised from deep inside torch or NumPy


def test_the_probes_do_not_refuse_good_input():
    """The same doors accept the correct call (so the probes above test the mistake)."""
    STACK(torch.zeros(2, 5, 3), torch.zeros(2, 2, 4))
    LSTM(torch.zeros(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    BI(torch.zeros(2, 5, 3))
    READ(torch.zeros(3, 8))
    CELL.eval()(torch.zeros(2, 3), torch.zeros(2, 4))
    regularised_step(GI, H, W_HH, B_HH, zoneout=0.1, keep_mask=None, training=True)
    CHAR(torch.zeros(2, 3, dtype=torch.long), h0=torch.zeros(2, 2, 4))
    assert np.all(np.isfinite(CHAR.bits_per_char(IDS)))
    LRU(torch.zeros(3, 5, 2))
    assert LRU.predict(torch.zeros(3, 5, 2), chunk=2).shape == (2, 3, 1)
    linear_scan(torch.full((3,), 0.5), torch.ones(4, 3))
    linear_scan(torch.full((2,), 0.5 + 0.1j), torch.ones(4, 2, dtype=torch.complex64))
    assert 0.0 <= tagging_accuracy(TAG, TOK, LAB) <= 1.0
    assert len(train_tagger(TAG, TOK, LAB, steps=1, lr=1e-2, clip_norm=math.inf)) == 1
    PTR.loss(PTOK, PORD)
    sort_scores(TOK_NP, TOK_NP, ORD_NP)
    identity_baseline(TOK_NP, ORD_NP)
    combine((A_NP, B_NP), (A_NP, B_NP))
    combine((np.ones((5, 3, 3)), B_NP), (np.ones((5, 3, 3)), B_NP), dense=True)
    flatten_recurrent(P)
    online_train(S, X, Y, 0.1)
