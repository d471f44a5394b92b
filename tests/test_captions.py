"""The captioning world of chapter 7: determinism, grammar round trips, disjoint splits."""

import numpy as np
import pytest

from companion.data import captions as cap


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = cap.make_captions(3), cap.make_captions(3), cap.make_captions(4)
    for name in ("train", "val", "test"):
        assert np.array_equal(a[name].x, b[name].x)
        assert np.array_equal(a[name].targets, b[name].targets)
        assert np.array_equal(a[name].scenes, b[name].scenes)
    assert not np.array_equal(a["test"].scenes, c["test"].scenes)


def test_splits_are_disjoint_in_scenes_and_cover_all():
    d = cap.make_captions(0)
    sets = {k: {tuple(r) for r in v.scenes} for k, v in d.items()}
    assert not sets["train"] & sets["val"]
    assert not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert len(sets["train"] | sets["val"] | sets["test"]) == 729


def test_every_sentence_parses_back_to_its_scene():
    for scene in cap.all_scenes():
        sents = cap.describe(scene)
        assert 4 <= len(sents) <= 16 and len(set(map(tuple, sents))) == len(sents)
        for s in sents:
            assert cap.parse(s) == tuple(int(v) for v in scene)
            ids = cap.encode(s)
            assert ids[-1] == cap.EOS and len(ids) <= cap.MAX_TOKENS
            assert cap.caption_correct(scene, ids)


def test_stored_targets_describe_their_scene_and_inputs_are_shifted():
    d = cap.make_captions(1)["val"]
    for sc, tg, inp, mk in zip(d.scenes, d.targets, d.inputs, d.mask):
        assert cap.caption_correct(sc, tg)
        assert inp[0] == cap.BOS and np.array_equal(inp[1:], tg[:-1])
        assert mk.sum() == np.argmax(tg == cap.EOS) + 1


def test_features_encode_the_scene_when_noise_free():
    scenes = cap.all_scenes()[[0, 100, 728]]
    x = cap.scene_features(scenes, noise=0.0)
    blocks = x.reshape(3, 6, 3).argmax(-1)
    blocks[:, [2, 5]] += 1
    assert np.array_equal(blocks, scenes)


def test_wrong_scene_is_not_correct_and_ungrammatical_is_none():
    s = cap.all_scenes()[5]
    other = cap.all_scenes()[6]
    ids = cap.encode(cap.describe(s)[0])
    assert not cap.caption_correct(other, ids)
    assert cap.parse("red a circle") is None
    assert cap.valid_next_tokens(s, [cap.encode("red", eos=False)[0]]) == set()


def test_error_positions_count_off_track_tokens():
    d = cap.make_captions(0)["test"]
    tg = d.targets[:5].copy()
    err, mask = cap.teacher_forced_errors(d.scenes[:5], tg, tg)
    assert not err.any() and mask.sum() == (tg != cap.PAD).sum()
    bad = tg.copy()
    bad[:, 1] = cap.encode("of", eos=False)[0]  # "of" never follows a determiner
    err, _ = cap.teacher_forced_errors(d.scenes[:5], tg, bad)
    assert err[:, 1].all() and not err[:, 2:].any()
    err, mask = cap.free_running_errors(d.scenes[:5], bad)
    assert err[:, 1].all() and not err[:, 0].any()
    assert all(err[i, 1:][mask[i, 1:]].all() for i in range(5))  # once off track, always off


def test_bad_input_errors_are_clear():
    with pytest.raises(ValueError, match="counts in 1..3"):
        cap.describe([0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="shape \\(6,\\)"):
        cap.describe([0, 0, 1])
    with pytest.raises(TypeError, match="integer"):
        cap.describe(np.zeros(6))
    with pytest.raises(TypeError, match="sentence"):
        cap.parse(123)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        cap.encode("a purple circle")
    with pytest.raises(ValueError, match="one sequence"):
        cap.decode(np.zeros((2, 3), dtype=int))
    with pytest.raises(TypeError, match="rng must be"):
        cap.scene_features(cap.all_scenes()[:2], noise=0.1)
    with pytest.raises(ValueError, match="scenes"):
        cap.scene_features(np.ones((2, 5), dtype=int))
    with pytest.raises(ValueError, match="sum to 1"):
        cap.make_captions(0, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(TypeError, match="seed"):
        cap.make_captions(-1)
    with pytest.raises(ValueError, match="targets"):
        cap.shift_right(np.ones(4, dtype=int))
    with pytest.raises(ValueError, match="predictions must have the shape"):
        cap.teacher_forced_errors(cap.all_scenes()[:2], np.ones((2, 4), dtype=int),
                                  np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="tokens"):
        cap.free_running_errors(cap.all_scenes()[:2], np.ones((3, 4), dtype=int))
