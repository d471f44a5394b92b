"""A synthetic captioning world: scene vectors and the sentences that describe them.

Chapter 7 trains a network to *write* a sentence about a fixed vector. The task here is
generated offline from a seed (nothing is downloaded) and is small enough to train on a
CPU in seconds, yet it has what makes conditioned generation interesting: several valid
sentences per scene, of different lengths, so that decoding choices matter.

A **scene** holds two groups of objects, one on the left and one on the right. Each
group has a shape (circle, square, triangle), a colour (red, green, blue) and a count
(1 to 3): 27 groups, 729 scenes, stored as an int array ``(shape_L, colour_L, count_L,
shape_R, colour_R, count_R)`` with counts as 1, 2, 3.

The **feature vector** ``x`` of a scene (the "image" a captioner would see) is the
concatenation, left group then right group, of one-hot shape, one-hot colour and
one-hot count, plus Gaussian noise of standard deviation ``noise``: D = 18.

The **sentences** come from a four-template grammar (G is a group phrase such as
``two red circles`` or, for a single object, ``a red circle`` / ``one red circle``)::

    G_left on the left and G_right on the right
    G_right on the right and G_left on the left
    G_left is|are left of G_right
    G_right is|are right of G_left

so a scene has between 4 and 16 valid sentences, of 9 or 13 words (10 or 14 tokens with
the end token). The vocabulary has 24 tokens, ``<pad>``, ``<bos>`` and ``<eos>`` included.
Every sentence parses back to exactly one scene (:func:`parse`), which makes a free-running
caption checkable: it is correct when it parses to the scene it was generated for.

Splits are by *scene*: the test scenes never appear in training, so a model must compose
attributes it has seen in other combinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from companion.checks import (
    check_int_array,
    check_nonempty,
    check_positive_int,
    check_real,
    check_rng,
    check_shape,
)

__all__ = [
    "BOS", "COLOURS", "COUNT_WORDS", "D_SCENE", "EOS", "MAX_TOKENS", "PAD", "SHAPES", "VOCAB",
    "CaptionSplit", "all_scenes", "caption_correct", "decode", "describe", "encode",
    "free_running_errors", "make_captions", "parse", "prefix_conflicts", "scene_features",
    "shift_right",
    "teacher_forced_errors", "valid_next_tokens",
]

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue")
COUNT_WORDS = ("one", "two", "three")
_PLURAL = {s: s + "s" for s in SHAPES}
VOCAB = ("<pad>", "<bos>", "<eos>", "a", "one", "two", "three", "red", "green", "blue",
         "circle", "circles", "square", "squares", "triangle", "triangles",
         "on", "the", "left", "right", "and", "is", "are", "of")
PAD, BOS, EOS = 0, 1, 2
_INDEX = {w: i for i, w in enumerate(VOCAB)}
D_SCENE = 18  #: size of a scene's feature vector
MAX_TOKENS = 14  #: the longest sentence, <eos> included


def _vocab_id(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a token id, an int in [0, {len(VOCAB)}); got "
                        f"{type(value).__name__} {value!r}.")
    if not 0 <= value < len(VOCAB):
        raise ValueError(f"{name} must be a token id in [0, {len(VOCAB)}) (captions.VOCAB); "
                         f"got {value}.")
    return int(value)


def _check_scene(name, scene):
    if type(scene).__module__.startswith("torch"):
        scene = scene.detach().cpu().numpy()
    arr = check_int_array(name, scene, low=0)
    if arr.shape != (6,):
        raise ValueError(
            f"{name} must be one scene, an int array of shape (6,) = (shape_L, colour_L, "
            f"count_L, shape_R, colour_R, count_R); got shape {arr.shape}. For several "
            f"scenes, loop over the rows of the (n, 6) array."
        )
    bad = [i for i, hi in zip(range(6), (3, 3, 4, 3, 3, 4)) if arr[i] >= hi]
    if bad or arr[2] < 1 or arr[5] < 1:
        raise ValueError(
            f"{name} must hold shape and colour ids in 0..2 and counts in 1..3; got "
            f"{arr.tolist()}. Counts are stored as 1, 2, 3, not 0, 1, 2."
        )
    return tuple(int(v) for v in arr)


def _group_phrases(shape: int, colour: int, count: int) -> list[list[str]]:
    noun = SHAPES[shape] if count == 1 else _PLURAL[SHAPES[shape]]
    dets = ["a", "one"] if count == 1 else [COUNT_WORDS[count - 1]]
    return [[d, COLOURS[colour], noun] for d in dets]


@lru_cache(maxsize=None)
def _describe(scene: tuple) -> tuple:
    sL, cL, nL, sR, cR, nR = scene
    out = []
    for gl in _group_phrases(sL, cL, nL):
        for gr in _group_phrases(sR, cR, nR):
            verb_l = "is" if nL == 1 else "are"
            verb_r = "is" if nR == 1 else "are"
            out.append(tuple(gl + ["on", "the", "left", "and"] + gr + ["on", "the", "right"]))
            out.append(tuple(gr + ["on", "the", "right", "and"] + gl + ["on", "the", "left"]))
            out.append(tuple(gl + [verb_l, "left", "of"] + gr))
            out.append(tuple(gr + [verb_r, "right", "of"] + gl))
    return tuple(out)


def describe(scene) -> list[list[str]]:
    """Every valid sentence for ``scene`` (a list of word lists, without ``<eos>``)."""
    return [list(s) for s in _describe(_check_scene("scene", scene))]


def all_scenes() -> np.ndarray:
    """The 729 scenes as an int array (729, 6), in a fixed order."""
    g = [(s, c, n) for s in range(3) for c in range(3) for n in (1, 2, 3)]
    return np.array([a + b for a in g for b in g], dtype=np.int64)


@lru_cache(maxsize=1)
def _parse_table() -> dict:
    table = {}
    for scene in all_scenes():
        key = tuple(int(v) for v in scene)
        for sent in _describe(key):
            if sent in table and table[sent] != key:  # pragma: no cover - grammar invariant
                raise RuntimeError(f"ambiguous sentence {sent}")
            table[sent] = key
    return table


def _words(name, sentence) -> tuple:
    if isinstance(sentence, str):
        words = sentence.split()
    elif isinstance(sentence, (list, tuple)) and all(isinstance(w, str) for w in sentence):
        words = list(sentence)
    else:
        raise TypeError(
            f"{name} must be a sentence: a string or a list of words; got "
            f"{type(sentence).__name__}. For token ids, call decode(ids) first."
        )
    if words and words[-1] == "<eos>":
        words = words[:-1]
    return tuple(words)


def _as_numpy(value):
    return value.detach().cpu().numpy() if type(value).__module__.startswith("torch") else value


def parse(sentence) -> tuple | None:
    """The scene a sentence describes, as a 6-tuple, or ``None`` if it is not grammatical.

    ``sentence`` is a string or a list of words; a trailing ``<eos>`` is ignored.
    """
    return _parse_table().get(_words("sentence", sentence))


def encode(sentence, *, eos: bool = True) -> np.ndarray:
    """Token ids of a sentence (string or word list), ``<eos>`` appended unless ``eos=False``."""
    if not isinstance(eos, bool):
        raise TypeError(f"eos must be True or False; got {eos!r}.")
    words = _words("sentence", sentence)
    unknown = [w for w in words if w not in _INDEX]
    if unknown:
        raise ValueError(f"sentence has word(s) outside the vocabulary: {unknown}. "
                         f"The vocabulary is companion.data.captions.VOCAB.")
    ids = [_INDEX[w] for w in words] + ([EOS] if eos else [])
    return np.array(ids, dtype=np.int64)


def decode(ids) -> list[str]:
    """Words of a token-id sequence, stopping at the first ``<eos>``; ``<pad>`` and ``<bos>``
    are dropped."""
    arr = check_int_array("ids", np.asarray(ids) if not hasattr(ids, "numpy") else
                          np.asarray(ids.detach().cpu().numpy()), low=0, high=len(VOCAB))
    if arr.ndim != 1:
        raise ValueError(f"ids must be one sequence, shape (T,); got shape {arr.shape}. "
                         f"Decode a batch row by row: [decode(row) for row in ids].")
    words = []
    for i in arr.tolist():
        if i == EOS:
            break
        if i in (PAD, BOS):
            continue
        words.append(VOCAB[i])
    return words


def caption_correct(scene, ids) -> bool:
    """True when the token ids (stopped at ``<eos>``) form a valid sentence for ``scene``.

    A caption that never emits ``<eos>`` is judged on the tokens it produced; padding
    after the end token is ignored.
    """
    key = _check_scene("scene", scene)
    return _parse_table().get(tuple(decode(ids))) == key


def valid_next_tokens(scene, prefix) -> set[int]:
    """The token ids that continue ``prefix`` (ids, without ``<bos>``) towards a valid
    sentence for ``scene``; ``<eos>`` is among them when ``prefix`` is complete. Empty when
    ``prefix`` is already off every valid sentence."""
    key = _check_scene("scene", scene)
    pre = check_int_array("prefix", np.asarray(_as_numpy(prefix)).reshape(-1), low=0,
                          high=len(VOCAB))
    return set(_valid_next(key, tuple(pre.tolist())))


@lru_cache(maxsize=200_000)
def _valid_next(key: tuple, pre: tuple) -> frozenset:
    out = set()
    for sent in _describe(key):
        ids = tuple(_INDEX[w] for w in sent) + (EOS,)
        if ids[: len(pre)] == pre and len(ids) > len(pre):
            out.add(ids[len(pre)])
    return frozenset(out)


def _scenes_and_tokens(scenes, tokens, tokens_name):
    sc = check_int_array("scenes", _as_numpy(scenes), low=0)
    check_shape("scenes", sc, ("n", 6))
    check_nonempty("scenes", sc, ("n", 6))
    for row in sc:
        _check_scene("scenes row", row)
    tk = check_int_array(tokens_name, _as_numpy(tokens), low=0, high=len(VOCAB))
    check_shape(tokens_name, tk, ("n", "L"), {"n": len(sc)},
                hint="One row of token ids per scene, padded after <eos>.")
    check_nonempty(tokens_name, tk, ("n", "L"))
    return sc, tk


def free_running_errors(scenes, tokens) -> tuple[np.ndarray, np.ndarray]:
    """Per-position errors of free-running outputs: ``(error, mask)``, each (n, L) bool.

    ``tokens`` (n, L) are the model's own outputs (no ``<bos>``), padded after ``<eos>``.
    Position t is an error when ``tokens[:, t]`` does not continue the model's *own* prefix
    ``tokens[:, :t]`` towards a valid sentence for the scene (once off track, every later
    token is an error). ``mask`` is True up to and including the first ``<eos>``.
    """
    sc, tk = _scenes_and_tokens(scenes, tokens, "tokens")
    n, L = tk.shape
    err = np.zeros((n, L), dtype=bool)
    mask = np.zeros((n, L), dtype=bool)
    for i in range(n):
        key = tuple(int(v) for v in sc[i])
        row = tk[i].tolist()
        for t in range(L):
            mask[i, t] = True
            err[i, t] = row[t] not in _valid_next(key, tuple(row[:t]))
            if row[t] == EOS:
                break
    return err, mask


def teacher_forced_errors(scenes, targets, predictions) -> tuple[np.ndarray, np.ndarray]:
    """Per-position errors under teacher forcing: ``(error, mask)``, each (n, L) bool.

    ``predictions[:, t]`` is the model's most probable token after the *true* prefix
    ``targets[:, :t]``; it is an error when it does not continue that prefix towards a
    valid sentence for the scene (any valid sentence counts, not only the target one).
    ``mask`` is True on the target's real tokens (``<eos>`` included).
    """
    sc, tg = _scenes_and_tokens(scenes, targets, "targets")
    _, pr = _scenes_and_tokens(scenes, predictions, "predictions")
    if pr.shape != tg.shape:
        raise ValueError(f"predictions must have the shape of targets {tg.shape}; got {pr.shape}.")
    mask = tg != PAD
    err = np.zeros(tg.shape, dtype=bool)
    for i in range(len(tg)):
        key = tuple(int(v) for v in sc[i])
        row = tg[i].tolist()
        for t in np.flatnonzero(mask[i]):
            err[i, t] = int(pr[i, t]) not in _valid_next(key, tuple(row[:t]))
    return err, mask


def prefix_conflicts(scenes, targets, fed) -> dict:
    """Count the target tokens that do not continue a fed prefix, split by cause.

    Scheduled sampling scores the target ``targets[i, t]`` after a prefix the model may
    have written itself, ``fed[i, :t]`` (token ids without ``<bos>``, padded after
    ``<eos>``). For every position ``t >= 1`` of a target's real tokens, until the fed
    prefix has ended, the target token is a *conflict* when it is not a valid next token
    (:func:`valid_next_tokens`) after the fed prefix. A conflict has one of two causes:

    - ``"other_sentence"``: the fed prefix is still the prefix of a valid sentence for the
      scene, only not of one the target token continues (the scene has several sentences);
    - ``"off_track"``: the fed prefix is already off every valid sentence (the model's own
      mistake earlier in the prefix).

    Returns ``{"positions": n, "other_sentence": k1, "off_track": k2}`` (counts).

    >>> sc = np.array([[0, 0, 1, 1, 2, 2]])
    >>> gold = encode("a red circle is left of two blue squares")[None]
    >>> prefix_conflicts(sc, gold, encode("one red circle is left of two blue squares")[None])
    {'positions': 9, 'other_sentence': 0, 'off_track': 0}
    >>> prefix_conflicts(sc, gold, encode("two blue squares are right of a red circle")[None])
    {'positions': 9, 'other_sentence': 7, 'off_track': 0}
    """
    sc, tg = _scenes_and_tokens(scenes, targets, "targets")
    _, fd = _scenes_and_tokens(scenes, fed, "fed")
    if fd.shape[1] < tg.shape[1]:
        raise ValueError(f"fed must have at least as many columns as targets "
                         f"({tg.shape[1]}); got shape {fd.shape}. Decode with "
                         f"max_len >= {tg.shape[1]}.")
    positions = other = off = 0
    for i in range(len(tg)):
        key = tuple(int(v) for v in sc[i])
        gold, own = tg[i].tolist(), fd[i].tolist()
        for t in range(1, int((tg[i] != PAD).sum())):
            if own[t - 1] == EOS:
                break
            positions += 1
            nxt = _valid_next(key, tuple(own[:t]))
            if gold[t] not in nxt:
                if nxt:
                    other += 1
                else:
                    off += 1
    return {"positions": positions, "other_sentence": other, "off_track": off}


def scene_features(scenes, *, noise: float = 0.3, rng=None) -> np.ndarray:
    """Noisy feature vectors of scenes: (n, 6) int -> (n, 18) float64.

    One-hot shape, colour and count of the left group, then of the right group, plus
    Gaussian noise of standard deviation ``noise`` (``rng`` required when ``noise > 0``).
    """
    arr = check_int_array("scenes", _as_numpy(scenes), low=0)
    check_shape("scenes", arr, ("n", 6), hint="Stack scenes as rows: np.stack(list_of_scenes).")
    check_nonempty("scenes", arr, ("n", 6))
    for row in arr:
        _check_scene("scenes row", row)
    noise = check_real("noise", noise, low=0.0)
    n = len(arr)
    x = np.zeros((n, D_SCENE))
    for side in range(2):
        s, c, k = arr[:, 3 * side], arr[:, 3 * side + 1], arr[:, 3 * side + 2]
        base = 9 * side
        x[np.arange(n), base + s] = 1.0
        x[np.arange(n), base + 3 + c] = 1.0
        x[np.arange(n), base + 6 + k - 1] = 1.0
    if rng is not None:
        check_rng("rng", rng)
    if noise > 0:
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator when noise > 0; got "
                            f"{type(rng).__name__}. Pass rng=np.random.default_rng(seed).")
        x = x + noise * rng.normal(size=x.shape)
    return x


def shift_right(targets, *, bos: int = BOS, pad: int = PAD) -> np.ndarray:
    """Teacher-forcing inputs from targets: ``<bos>`` then the targets shifted one step right.

    ``targets`` (N, T) ends each row with ``<eos>`` then ``<pad>``; the result (N, T) has
    ``inputs[:, 0] = <bos>`` and ``inputs[:, t] = targets[:, t-1]``: at step t the model
    sees the previous *correct* token and must predict ``targets[:, t]``.
    """
    bos, pad = _vocab_id("bos", bos), _vocab_id("pad", pad)
    arr = check_int_array("targets", _as_numpy(targets), low=0, high=len(VOCAB))
    check_shape("targets", arr, ("N", "T"), hint="Add a batch axis: targets[None].")
    check_nonempty("targets", arr, ("N", "T"))
    out = np.full_like(arr, pad)
    out[:, 0] = bos
    out[:, 1:] = arr[:, :-1]
    return out


@dataclass
class CaptionSplit:
    """One split: ``x`` (n, 18) float64, ``scenes`` (n, 6), ``targets`` (n, 14) int64
    (a valid sentence, ``<eos>``, then ``<pad>``), ``inputs`` = :func:`shift_right` (targets),
    ``mask`` (n, 14) bool (True on real tokens, ``<eos>`` included)."""

    x: np.ndarray
    scenes: np.ndarray
    targets: np.ndarray
    inputs: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def make_captions(seed: int = 0, *, noise: float = 0.3, copies: tuple = (8, 2, 2),
                  fractions: tuple = (0.6, 0.2, 0.2),
                  sentences: str = "random") -> dict[str, CaptionSplit]:
    """Generate the train / validation / test splits of the captioning world.

    The 729 scenes are shuffled with ``seed`` and split by ``fractions`` (disjoint sets of
    scenes). Each scene of a split appears ``copies[i]`` times, each time with fresh
    feature noise and a target sentence: with ``sentences="random"`` one drawn uniformly
    from its valid sentences; with ``sentences="canonical"`` always the same one (the first
    of :func:`describe`: ``a``/number, left group first, "on the left and ... on the
    right"), which makes a task with a single target sentence per scene. The two settings
    draw the same random numbers, so they share scenes, splits and feature noise and differ
    only in the targets.

    Returns ``{"train": CaptionSplit, "val": ..., "test": ...}``. Same seed, same data.

    >>> one = make_captions(0, sentences="canonical")["train"]
    >>> many = make_captions(0)["train"]
    >>> bool((one.x == many.x).all())
    True
    >>> len(np.unique(one.scenes, axis=0)), len(np.unique(one.targets, axis=0))
    (437, 437)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int; got {seed!r}.")
    check_real("noise", noise, low=0.0)
    for name, v in (("copies", copies), ("fractions", fractions)):
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple, np.ndarray)):
            raise TypeError(f"{name} must be a tuple of three numbers, one per split (train, "
                            f"val, test); got {type(v).__name__} {v!r}.")
    if len(copies) != 3 or len(fractions) != 3:
        raise ValueError(f"copies and fractions need one entry per split (train, val, test); "
                         f"got {len(copies)} and {len(fractions)}.")
    copies = [check_positive_int(f"copies[{i}]", c) for i, c in enumerate(copies)]
    fr = np.array([check_real(f"fractions[{i}]", f, low=0.0, low_open=True)
                   for i, f in enumerate(fractions)])
    if abs(fr.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1; got {fr.tolist()} (sum {fr.sum():.3f}).")
    if not isinstance(sentences, str) or sentences not in ("random", "canonical"):
        raise ValueError(f"sentences must be 'random' (a valid sentence drawn per caption) or "
                         f"'canonical' (one fixed sentence per scene); got {sentences!r}.")
    rng = np.random.default_rng(seed)
    scenes = all_scenes()[rng.permutation(729)]
    cuts = np.round(np.cumsum(fr)[:2] * 729).astype(int)
    parts = np.split(scenes, cuts)
    out = {}
    for name, part, k in zip(("train", "val", "test"), parts, copies):
        rep = np.repeat(part, k, axis=0)
        x = scene_features(rep, noise=noise, rng=rng)
        targets = np.full((len(rep), MAX_TOKENS), PAD, dtype=np.int64)
        for i, sc in enumerate(rep):
            options = _describe(tuple(int(v) for v in sc))
            pick = int(rng.integers(len(options)))  # drawn in both settings: same stream
            ids = encode(list(options[pick if sentences == "random" else 0]))
            targets[i, : len(ids)] = ids
        out[name] = CaptionSplit(x=x, scenes=rep, targets=targets, inputs=shift_right(targets),
                                 mask=targets != PAD)
    return out
