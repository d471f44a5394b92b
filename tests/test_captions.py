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


def test_canonical_sentences_share_everything_but_the_targets():
    one = cap.make_captions(0, sentences="canonical")
    many = cap.make_captions(0)
    for name in ("train", "val", "test"):
        assert np.array_equal(one[name].x, many[name].x)
        assert np.array_equal(one[name].scenes, many[name].scenes)
        # one target sentence per scene: the first of describe(), <eos> at its length
        for sc, tg in zip(one[name].scenes[:40], one[name].targets[:40]):
            assert cap.decode(tg) == cap.describe(sc)[0]
        assert np.array_equal(one[name].inputs, cap.shift_right(one[name].targets))
    assert len(np.unique(many["train"].targets, axis=0)) > len(
        np.unique(one["train"].targets, axis=0))
    with pytest.raises(ValueError, match="sentences must be 'random'"):
        cap.make_captions(0, sentences="first")


def test_prefix_conflicts_splits_by_cause():
    sc = np.array([[0, 0, 1, 1, 2, 2]])
    gold = cap.encode("a red circle is left of two blue squares")[None]
    same = cap.prefix_conflicts(sc, gold, gold)
    assert same == {"positions": 9, "other_sentence": 0, "off_track": 0}
    # a wrong colour at position 2: from there on the fed prefix is off every sentence
    wrong = gold.copy()
    wrong[0, 1] = cap.encode("green", eos=False)[0]
    got = cap.prefix_conflicts(sc, gold, wrong)
    assert got["other_sentence"] == 0 and got["off_track"] == 8
    # the fed prefix ends early: only the positions up to its <eos> count
    short = np.full_like(gold, cap.PAD)
    short[0, :2] = [gold[0, 0], cap.EOS]
    assert cap.prefix_conflicts(sc, gold, short)["positions"] == 1
    with pytest.raises(ValueError, match="fed must have at least"):
        cap.prefix_conflicts(sc, gold, gold[:, :4])
    with pytest.raises(ValueError, match="fed"):
        cap.prefix_conflicts(sc, gold, np.vstack([gold, gold]))
