"""The NumPy character language model: batches, Adam, clipping, evaluation, sampling."""

import numpy as np
import pytest
import torch

from companion.scratch.charlm import (
    Adam,
    clip_by_global_norm,
    evaluate_bpc,
    one_hot,
    random_windows,
    sample,
    train_char_lm,
    unigram_bpc,
)
from companion.scratch.forward import rnn_forward, sequence_nll
from companion.scratch.init import init_rnn_params


def test_one_hot_and_windows():
    x = one_hot(np.array([[0, 2]]), 3)
    np.testing.assert_array_equal(x, [[[1, 0, 0], [0, 0, 1]]])
    ids = np.arange(50)
    xi, yi = random_windows(ids, 4, 6, np.random.default_rng(0))
    assert xi.shape == (4, 6)
    np.testing.assert_array_equal(yi, xi + 1)  # the target is the next character


def test_unigram_bpc_is_the_entropy():
    ids = np.array([0, 1] * 500)
    assert unigram_bpc(ids, ids, 2) == pytest.approx(1.0, abs=1e-3)
    assert unigram_bpc(np.zeros(10, dtype=int), np.zeros(10, dtype=int), 1) == 0.0


def test_evaluate_bpc_matches_the_loss():
    rng = np.random.default_rng(0)
    p = init_rnn_params(5, 8, 5, rng)
    ids = rng.integers(0, 5, 4 * 11)
    seq = ids.reshape(4, 11)
    o, _ = rnn_forward(one_hot(seq[:, :-1], 5), p)
    loss, _ = sequence_nll(o, seq[:, 1:])
    assert evaluate_bpc(p, ids, streams=4) == pytest.approx(loss / 10 / np.log(2), rel=1e-12)


def test_adam_matches_torch():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2))
    params = {"w": w.copy()}
    opt = Adam(params, lr=0.1)
    tw = torch.tensor(w, requires_grad=True)
    topt = torch.optim.Adam([tw], lr=0.1)
    for _ in range(5):
        g = 2 * params["w"]  # gradient of sum(w^2)
        opt.step({"w": g})
        topt.zero_grad()
        (tw**2).sum().backward()
        topt.step()
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), atol=1e-12)


def test_clip_by_global_norm():
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_by_global_norm(g, 1.0) == pytest.approx(5.0)
    assert np.hypot(g["a"][0], g["b"][0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"grads\['a'\] must be finite"):
        clip_by_global_norm({"a": np.array([np.nan])}, 1.0)
    with pytest.raises(ValueError, match="max_norm must be a number > 0"):
        clip_by_global_norm(g, 0.0)


def test_training_learns_a_repeating_pattern():
    ids = np.tile(np.array([0, 1, 2, 3, 2, 1]), 200)
    params, hist = train_char_lm(ids, 4, np.random.default_rng(0), hidden_size=16, seq_len=12,
                                 batch_size=8, steps=150, lr=1e-2, eval_ids=ids[:240],
                                 eval_every=50)
    assert hist["eval_step"] == [50, 100, 150]
    assert params["W"].dtype == np.float32
    # 0 -> 1 -> 2 -> 3 is deterministic; after 2 comes 3 or 1 depending on the past
    assert hist["eval_bpc"][-1] < 0.2 < unigram_bpc(ids, ids, 4)
    out = sample(params, np.array([0, 1]), 12, np.random.default_rng(1), temperature=0.5)
    assert "".join(map(str, out)) in "".join(map(str, ids[:40]))


def test_temperature_controls_diversity():
    rng = np.random.default_rng(0)
    p = init_rnn_params(6, 8, 6, rng, gain=3.0)
    cold = sample(p, np.array([0]), 300, np.random.default_rng(1), temperature=0.05)
    hot = sample(p, np.array([0]), 300, np.random.default_rng(1), temperature=5.0)
    assert len(set(cold[100:].tolist())) < len(set(hot.tolist())) == 6


def test_bad_arguments():
    rng = np.random.default_rng(0)
    p = init_rnn_params(4, 5, 4, rng)
    with pytest.raises(ValueError, match="temperature must be a number > 0; got 0.0"):
        sample(p, np.array([0]), 5, rng, temperature=0)
    with pytest.raises(ValueError, match=r"prime_ids must have every entry in \[0, 4\)"):
        sample(p, np.array([7]), 5, rng)
    with pytest.raises(ValueError, match="prime_ids must be a non-empty 1-D"):
        sample(p, np.array([], dtype=int), 5, rng)
    with pytest.raises(ValueError, match="D = K"):
        sample(init_rnn_params(3, 5, 4, rng), np.array([0]), 5, rng)
    with pytest.raises(ValueError, match="more than seq_len"):
        random_windows(np.arange(5), 2, 8, rng)
    with pytest.raises(ValueError, match=r"train_ids must have every entry in \[0, 3\)"):
        train_char_lm(np.arange(10), 3, rng, steps=1)
    with pytest.raises(TypeError, match=r"dtype must be a NumPy float dtype.*got int32"):
        train_char_lm(np.arange(10) % 3, 3, rng, steps=1, seq_len=4, dtype=np.int32)
    with pytest.raises(ValueError, match="at least 2 characters per stream"):
        evaluate_bpc(p, np.arange(4) % 4, streams=4)
    with pytest.raises(ValueError, match="lr must be a number > 0; got 0.0"):
        Adam({"w": np.ones(2)}, lr=0)


# ---- bad input: optimiser and clipping, rng, clip ----------------------------------------


def test_rng_none_is_a_clear_type_error():
    rng = np.random.default_rng(0)
    p = init_rnn_params(4, 5, 4, rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator; got NoneType"
                                        r".*default_rng"):
        random_windows(np.arange(20) % 4, 2, 3, None)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator; got NoneType"):
        sample(p, np.array([0]), 5, None)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator; got int"):
        train_char_lm(np.arange(20) % 4, 4, 0, steps=1, seq_len=4)


def test_train_char_lm_names_its_own_arguments():
    rng = np.random.default_rng(0)
    ids = np.arange(40) % 4
    with pytest.raises(ValueError, match=r"clip must be a number > 0; got 0.0.*global-norm"):
        train_char_lm(ids, 4, rng, steps=1, seq_len=4, clip=0)
    with pytest.raises(TypeError, match=r"clip must be a number > 0; got NoneType"):
        train_char_lm(ids, 4, rng, steps=1, seq_len=4, clip=None)
    with pytest.raises(ValueError, match=r"lr must be a number > 0; got -1.0"):
        train_char_lm(ids, 4, rng, steps=1, seq_len=4, lr=-1)
    with pytest.raises(ValueError, match=r"seq_len must be an int >= 1; got 0"):
        train_char_lm(ids, 4, rng, steps=1, seq_len=0)
    with pytest.raises(ValueError, match=r"train_ids must hold more than seq_len \+ 1 = 41"):
        train_char_lm(ids, 4, rng, steps=1, seq_len=40)
    with pytest.raises(ValueError, match=r"train_ids must be \(L,\); got \(2, 20\)"):
        train_char_lm(ids.reshape(2, 20), 4, rng, steps=1, seq_len=4)


def test_adam_checks_keys_shapes_and_finiteness_before_updating():
    params = {"w": np.ones(3), "b": np.zeros(2)}
    opt = Adam(params)
    good = {"w": np.ones(3), "b": np.ones(2)}
    with pytest.raises(ValueError, match=r"grads must have one entry per key of the optimiser's "
                                         r"params, \['w', 'b'\]; missing \['b'\]"):
        opt.step({"w": np.ones(3)})
    with pytest.raises(ValueError, match=r"unexpected \['h0'\].*grads.pop\('h0'\)"):
        opt.step({**good, "h0": np.ones(2)})
    with pytest.raises(ValueError,
                       match=r"grads\['w'\] must be \(3,\); got \(3, 1\).*shape of its"):
        opt.step({"w": np.ones((3, 1)), "b": np.ones(2)})
    with pytest.raises(ValueError, match=r"grads\['b'\] must be finite.*\(nan\) at index \(1,\)"):
        opt.step({"w": np.ones(3), "b": np.array([0.0, np.nan])})
    with pytest.raises(TypeError, match=r"grads must be a dict with keys \['w', 'b'\]; got list"):
        opt.step([np.ones(3), np.ones(2)])
    with pytest.raises(TypeError, match=r"grads\['w'\] must be a NumPy array"):
        opt.step({"w": [1.0, 1.0, 1.0], "b": np.ones(2)})
    np.testing.assert_array_equal(params["w"], np.ones(3))  # nothing was updated
    assert opt.t == 0
    opt.step(good)
    assert opt.t == 1 and params["w"][0] < 1.0


def test_adam_and_clip_bad_construction():
    with pytest.raises(TypeError, match=r"params must be a dict mapping parameter names"):
        Adam([np.ones(3)])
    with pytest.raises(TypeError, match=r"params\['w'\] must hold floats; got numpy array of "
                                        r"dtype int64"):
        Adam({"w": np.ones(3, dtype=np.int64)})
    with pytest.raises(TypeError, match=r"betas must be a pair"):
        Adam({"w": np.ones(3)}, betas=0.9)
    with pytest.raises(ValueError, match=r"betas\[1\] must be a number in \[0, 1\); got 1.0"):
        Adam({"w": np.ones(3)}, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match=r"lr must be a number > 0; got str"):
        Adam({"w": np.ones(3)}, lr="0.1")
    with pytest.raises(TypeError, match=r"max_norm must be a number > 0; got str"):
        clip_by_global_norm({"w": np.ones(3)}, "1")
    with pytest.raises(TypeError, match=r"grads must be a dict"):
        clip_by_global_norm([np.ones(3)], 1.0)
    with pytest.raises(ValueError, match=r"grads\['w'\] must be finite.*\(inf\)"):
        clip_by_global_norm({"w": np.array([1.0, np.inf])}, 1.0)
    with pytest.raises(ValueError, match=r"squares overflow"):
        clip_by_global_norm({"w": np.array([1e200, 1e200])}, 1.0)
