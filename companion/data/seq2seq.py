"""Sequence-to-sequence tasks for chapters 8 and 9, generated offline from a seed.

Four tasks, each returned by :func:`make_task` as a :class:`Seq2SeqTask` with disjoint
train / validation / test splits of :class:`Example` (source tokens, target tokens and,
where the generator knows it, the gold alignment):

``"dates"``
    A date written in one of 14 forms ("3 March 2021", "03/03/21", "March 3rd, 2021",
    "2021 Mar 03", "Wednesday, 3 March 2021", "the 3rd of March 2021", ...) translated to
    its ISO form "2021-03-03". Dates run from 1950-01-01 to 2049-12-31 (a two-digit year
    ``yy`` means 19yy when ``yy >= 50``, 20yy otherwise); slashed and dotted numeric forms
    are day first. **Tokens**: numbers are split into digits, words (month names, weekdays,
    ordinal suffixes "st", "nd", "rd", "th", "the", "of") are one token each, punctuation
    is one token, spaces are dropped. So "March 3rd, 2021" is ``March 3 rd , 2 0 2 1``
    (8 tokens) and the target is the 10 characters of "2021-03-03". Short sequences whose
    alignments can be read at a glance: each target digit comes from one or two source
    tokens, the month digits come from a month *word*, the century of a two-digit year
    comes from nowhere in particular, and a weekday is aligned to nothing.
``"toy_language"``
    A small invented language pair with a grammar (:data:`TOY_GRAMMAR` describes it).
    The source ("Sel") is subject-verb-object with adjectives before the noun; the target
    ("Tor") is subject-object-verb with adjectives after the noun *in reverse order*, a
    definite article after the noun phrase that agrees with the noun's gender and number,
    a verb whose ending agrees with the subject's gender and number (the verb comes last,
    after the object, so agreement is a long-range dependency), a plural particle ("en")
    after a plural noun (one source word, two target words), an object marker ("ka") that
    has no source word, an indefinite article and an emphatic particle that have no target
    word, a compound noun and two verbs that translate to two words. Every word is
    invented for this course.
``"copy"`` and ``"reverse"``
    A random string of ``n_symbols`` letters copied or reversed: the clean task for
    accuracy-against-length curves.

Importing this module does not import torch; :func:`collate` does.

Special tokens are the same in every vocabulary: ``PAD, BOS, EOS, UNK = 0, 1, 2, 3``.

Alignments are lists of pairs ``(i, j)``: source token ``i`` is aligned to target
token ``j`` (0-based, before any reversal of the source, end token excluded).

:func:`collate` turns a list of examples into a padded, batch-first :class:`Batch`:
``tgt_in`` is BOS followed by the target (what the decoder reads under teacher
forcing), ``tgt_out`` is the target followed by EOS (what it must predict), so
``tgt_out[:, t]`` is the prediction made after reading ``tgt_in[:, t]``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np

from companion.checks import check_positive_int, check_rng

if TYPE_CHECKING:  # torch is imported only where batches are built
    import torch

__all__ = [
    "BOS", "EOS", "PAD", "UNK", "SPECIALS", "TASKS", "TOY_GRAMMAR",
    "Batch", "Example", "Seq2SeqTask", "Vocab",
    "collate", "date_tokens", "detokenize", "iterate_batches", "make_length_tests",
    "make_task", "translate_toy",
]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
TASKS = ("dates", "toy_language", "copy", "reverse")


def _type_name(value) -> str:
    return type(value).__name__


def _check_tokens(name: str, tokens) -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(
            f"{name} must be a list of token strings; got the string {tokens!r}. "
            f"Split it first, e.g. text.split() or date_tokens(text)."
        )
    try:
        out = list(tokens)
    except TypeError as err:
        raise TypeError(f"{name} must be a list of token strings; got {_type_name(tokens)}."
                        ) from err
    for k, tok in enumerate(out):
        if not isinstance(tok, str):
            raise TypeError(
                f"{name} must hold strings; entry {k} is {_type_name(tok)} {tok!r}. "
                f"Token ids are decoded with Vocab.decode(ids)."
            )
    return out


# ---------------------------------------------------------------- vocabulary
class Vocab:
    """A token vocabulary with the four specials first: ``<pad> <bos> <eos> <unk>``.

    ``Vocab(tokens)`` keeps the first occurrence of each token, in order, after the
    specials (a special listed in ``tokens`` is not added twice). ``encode`` maps unknown
    tokens to ``UNK``; ``decode`` stops at the first ``EOS`` and drops ``PAD``/``BOS``.

    >>> v = Vocab(["a", "b"])
    >>> v.encode(["b", "a", "zzz"])
    [5, 4, 3, 2]
    >>> v.decode([1, 5, 4, 2, 0])
    ['b', 'a']
    """

    def __init__(self, tokens):
        tokens = _check_tokens("tokens", tokens)
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(SPECIALS)}
        for tok in tokens:
            if tok not in self.stoi:
                self.stoi[tok] = len(self.itos)
                self.itos.append(tok)

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        shown = " ".join(self.itos[4:14]) + (" ..." if len(self) > 14 else "")
        return f"Vocab({len(self)} tokens: {shown})"

    def __contains__(self, token) -> bool:
        return token in self.stoi

    def encode(self, tokens, *, eos: bool = True) -> list[int]:
        """Token strings to ids (unknown tokens to ``UNK``), with ``EOS`` appended if ``eos``."""
        tokens = _check_tokens("tokens", tokens)
        ids = [self.stoi.get(t, UNK) for t in tokens]
        return ids + [EOS] if eos else ids

    def decode(self, ids, *, strip: bool = True) -> list[str]:
        """Ids to token strings.

        With ``strip`` (the default) decoding stops at the first ``EOS`` and ``PAD`` and
        ``BOS`` are dropped: what a decoder's output *says*. With ``strip=False`` every id
        is rendered, specials included.
        """
        if type(ids).__module__.startswith("torch"):
            if ids.dim() != 1 or ids.is_floating_point():
                raise TypeError(f"ids must be a 1-D integer tensor (one sequence); got a "
                                f"{ids.dim()}-D tensor of dtype {ids.dtype}. Decode a batch "
                                f"row by row: [v.decode(row) for row in tokens].")
            ids = ids.tolist()
        elif isinstance(ids, np.ndarray):
            if ids.ndim != 1 or ids.dtype.kind not in "iu":
                raise TypeError(f"ids must be a 1-D integer array (one sequence); got shape "
                                f"{ids.shape}, dtype {ids.dtype}.")
            ids = ids.tolist()
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"ids must be a sequence of integer ids; got the string {ids!r}. "
                            f"Did you mean Vocab.encode?")
        out = []
        for k, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"ids must hold integers; entry {k} is {_type_name(i)} {i!r}.")
            if not 0 <= i < len(self.itos):
                raise ValueError(f"ids must be in [0, {len(self.itos)}) for this vocabulary of "
                                 f"{len(self.itos)} tokens; entry {k} is {i}. Is it the "
                                 f"other side's vocabulary (source vs target)?")
            if strip:
                if i == EOS:
                    break
                if i in (PAD, BOS):
                    continue
            out.append(self.itos[i])
        return out


# ---------------------------------------------------------------- examples and tasks
@dataclass
class Example:
    """One pair: ``src`` and ``tgt`` token lists and the gold alignment ``align``
    (pairs ``(source position, target position)``) or None."""

    src: list[str]
    tgt: list[str]
    align: list[tuple[int, int]] | None = None


@dataclass
class Seq2SeqTask:
    """A task: its name, both vocabularies and the three splits (lists of :class:`Example`)."""

    name: str
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Seq2SeqTask({self.name!r}: {len(self.train)} train, {len(self.valid)} valid, "
                f"{len(self.test)} test; source vocabulary {len(self.src_vocab)}, target "
                f"vocabulary {len(self.tgt_vocab)})")


# ---------------------------------------------------------------- dates
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
               "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DIGITS = tuple("0123456789")
_DATE_WORDS = (MONTHS + MONTHS_ABBR[:4] + MONTHS_ABBR[5:] + WEEKDAYS + WEEKDAYS_ABBR
               + ("st", "nd", "rd", "th", "the", "of"))
_DATE_PUNCT = (",", "/", ".", "-", "'")
_FIRST_DATE = _dt.date(1950, 1, 1)
_N_DATES = (_dt.date(2049, 12, 31) - _FIRST_DATE).days + 1

# Each form is a list of fields; a field is (kind, text-or-None). Kinds:
# D day without leading zero, DD day with it, S ordinal suffix of the day, M month
# number, MM month number with zero, MON month name, MAB month abbreviation, YYYY, YY,
# WD weekday, WAB weekday abbreviation, W a literal word, P literal punctuation.
_DATE_FORMS = (
    ("D", "MON", "YYYY"),                       # 3 March 2021
    ("DD", "/", "MM", "/", "YY"),               # 03/03/21
    ("MON", "D", "S", ",", "YYYY"),             # March 3rd, 2021
    ("YYYY", "MAB", "DD"),                      # 2021 Mar 03
    ("WD", ",", "D", "MON", "YYYY"),            # Wednesday, 3 March 2021
    ("WAB", "D", "MAB", "YYYY"),                # Wed 3 Mar 2021
    ("D", ".", "M", ".", "YYYY"),               # 3.3.2021
    ("the", "D", "S", "of", "MON", "YYYY"),     # the 3rd of March 2021
    ("MAB", "D", ",", "'", "YY"),               # Mar 3, '21
    ("DD", "/", "MM", "/", "YYYY"),             # 03/03/2021
    ("WD", "MON", "D", "S", ",", "YYYY"),       # Wednesday March 3rd, 2021
    ("DD", "-", "MAB", "-", "YYYY"),            # 03-Mar-2021
    ("D", "MAB", "YY"),                         # 3 Mar 21
    ("MON", "YYYY", ",", "D", "S"),             # March 2021, 3rd
)


def _suffix(day: int) -> str:
    if day in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date_example(date: _dt.date, form: Sequence[str]) -> Example:
    """Source tokens of ``date`` written in ``form``, its ISO target and the alignment."""
    iso = list(date.isoformat())  # Y Y Y Y - M M - D D
    src: list[str] = []
    align: list[tuple[int, int]] = []
    year_t, month_t, day_t = (0, 1, 2, 3), (5, 6), (8, 9)

    def add(tokens, targets):
        for tok in tokens:
            for j in targets:
                align.append((len(src), j))
            src.append(tok)

    for f in form:
        if f == "D":
            add(list(str(date.day)), day_t)
        elif f == "DD":
            digits = f"{date.day:02d}"
            add([digits[0]], (8,))
            add([digits[1]], (9,))
        elif f == "S":
            add([_suffix(date.day)], ())
        elif f == "M":
            add(list(str(date.month)), month_t)
        elif f == "MM":
            digits = f"{date.month:02d}"
            add([digits[0]], (5,))
            add([digits[1]], (6,))
        elif f == "MON":
            add([MONTHS[date.month - 1]], month_t)
        elif f == "MAB":
            add([MONTHS_ABBR[date.month - 1]], month_t)
        elif f == "YYYY":
            for k, ch in enumerate(str(date.year)):
                add([ch], (year_t[k],))
        elif f == "YY":
            digits = f"{date.year % 100:02d}"
            add([digits[0]], (0, 1, 2))  # the century is implied by the two digits
            add([digits[1]], (3,))
        elif f == "WD":
            add([WEEKDAYS[date.weekday()]], ())
        elif f == "WAB":
            add([WEEKDAYS_ABBR[date.weekday()]], ())
        else:  # a literal word or punctuation
            add([f], ())
    return Example(src, iso, sorted(align, key=lambda p: (p[1], p[0])))


_TOKEN_RE = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")
_WORD_CASE = {w.lower(): w for w in _DATE_WORDS}


def date_tokens(text: str) -> list[str]:
    """Split a written date into the ``dates`` task's tokens.

    Digits one by one, words whole (month and weekday names are matched case-insensitively
    and written as the vocabulary writes them), every other non-space character alone.

    >>> date_tokens("March 3rd, 2021")
    ['March', '3', 'rd', ',', '2', '0', '2', '1']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string such as '3 March 2021'; got "
                        f"{_type_name(text)} {text!r}.")
    return [_WORD_CASE.get(t.lower(), t) for t in _TOKEN_RE.findall(text)]


def _detok_date(tokens: list[str]) -> str:
    out = ""
    prev = None
    for tok in tokens:
        glue = (
            prev is None
            or (tok.isdigit() and prev.isdigit())
            or tok in (",", "/", ".", "-") or prev in ("/", ".", "-", "'")
            or (tok in ("st", "nd", "rd", "th") and prev.isdigit())
        )
        out += ("" if glue else " ") + tok
        prev = tok
    return out


def detokenize(name: str, tokens) -> str:
    """Write tokens of task ``name`` back as text: the form a reader (and sacrebleu) sees.

    ``dates``: digits and glued punctuation are joined ("March 3rd, 2021"; the ISO target
    becomes "2021-03-03"); ``toy_language``: words joined by spaces; ``copy`` and
    ``reverse``: symbols joined by spaces.
    """
    _check_name(name)
    tokens = _check_tokens("tokens", tokens)
    if name == "dates":
        return _detok_date(tokens)
    return " ".join(tokens)


def _gen_dates(rng, n_total, min_len, max_len, exclude):
    """``n_total`` examples on distinct dates, each in a random form within the lengths."""
    order = rng.permutation(_N_DATES)
    out = []
    for k in order:
        date = _FIRST_DATE + _dt.timedelta(days=int(k))
        forms = rng.permutation(len(_DATE_FORMS))
        for f in forms:
            ex = _date_example(date, _DATE_FORMS[f])
            if min_len <= len(ex.src) <= max_len and tuple(ex.src) not in exclude:
                out.append(ex)
                break
        if len(out) == n_total:
            return out
    raise ValueError(
        f"only {len(out)} distinct dates fit source lengths [{min_len}, {max_len}]; "
        f"asked for {n_total} examples (train + valid + test). Widen the lengths or ask "
        f"for fewer examples."
    )


def _date_vocabs():
    src = Vocab(list(_DIGITS) + list(_DATE_WORDS) + list(_DATE_PUNCT))
    tgt = Vocab(list(_DIGITS) + ["-"])
    return src, tgt


# ---------------------------------------------------------------- the toy language pair
# Source nouns: (singular, plural, target words, target gender m/f)
_NOUNS = (
    ("bor", "bori", ("kel",), "m"),
    ("dapo", "dapoi", ("suna",), "f"),
    ("lun", "luni", ("mer",), "m"),
    ("fesk", "feski", ("tiva",), "f"),
    ("rolo", "roloi", ("pand",), "m"),
    ("nivu", "nivui", ("osa",), "f"),
    ("gorvin", "gorvini", ("rak", "tali"), "f"),  # a compound: one word becomes two
)
_ADJS = (("nema", "olu"), ("siri", "pek"), ("duvo", "amra"), ("kato", "zin"),
         ("belu", "fos"))
# Source verb -> (target particle or None, target stem); the ending agrees with the subject
_VERBS = (("vimek", None, "mokr"), ("salu", None, "dun"), ("preta", None, "vas"),
          ("olen", None, "gir"), ("talun", "pa", "ret"), ("karo", "ze", "lom"))
_ADVS = (("ruva", "tosk"), ("mel", "iben"))
_VERB_END = {("m", "sg"): "i", ("f", "sg"): "a", ("m", "pl"): "en", ("f", "pl"): "en"}
_ARTICLE = {("m", "sg"): "lo", ("f", "sg"): "la", ("m", "pl"): "li", ("f", "pl"): "li"}

#: The grammar of the invented language pair, described in words.
TOY_GRAMMAR = """\
Source (Sel), subject-verb-object:
    S   -> NP [jo] V NP [sul NP] [ADV]
    NP  -> DET ADJ* N              DET: ta (the), u (a)   0-3 adjectives
    N   -> bor dapo lun fesk rolo nivu gorvin (singular); plural adds -i
Target (Tor), subject-object-verb:
    S   -> NP' NP' ka [NP' ven] [ADV'] [PRT] V'
    NP' -> N' [en] ADJ'* [ART]     adjectives in reverse order, en after a plural noun
    ART -> lo (masculine singular) | la (feminine singular) | li (plural), for 'ta' only
    V'  -> stem + i | a | en        agreeing with the subject: masc. sg. | fem. sg. | plural
Dictionary (source -> target, gender):
    bor kel m, dapo suna f, lun mer m, fesk tiva f, rolo pand m, nivu osa f,
    gorvin 'rak tali' f;  nema olu, siri pek, duvo amra, kato zin, belu fos;
    vimek mokr-, salu dun-, preta vas-, olen gir-, talun 'pa ret-', karo 'ze lom-';
    ruva tosk, mel iben, sul ven.
Untranslated: u (a), jo (emphasis) have no target word; ka (object marker) no source word.
"""


def _toy_np(rng, max_adj):
    det = "ta" if rng.random() < 0.5 else "u"
    noun = _NOUNS[int(rng.integers(len(_NOUNS)))]
    number = "pl" if rng.random() < 0.4 else "sg"
    n_adj = int(rng.integers(0, max_adj + 1))
    adjs = [_ADJS[int(i)] for i in rng.choice(len(_ADJS), size=n_adj, replace=False)]
    return det, noun, number, adjs


def _render_np(np_, src, tgt, align):
    """Append a noun phrase to both sides; return (gender, number)."""
    det, noun, number, adjs = np_
    det_pos = len(src)
    src.append(det)
    adj_pos = []
    for a in adjs:
        adj_pos.append(len(src))
        src.append(a[0])
    noun_pos = len(src)
    src.append(noun[1] if number == "pl" else noun[0])
    for w in noun[2]:
        align.append((noun_pos, len(tgt)))
        tgt.append(w)
    if number == "pl":
        align.append((noun_pos, len(tgt)))
        tgt.append("en")
    for a, p in reversed(list(zip(adjs, adj_pos))):
        align.append((p, len(tgt)))
        tgt.append(a[1])
    gender = noun[3]
    if det == "ta":
        align.append((det_pos, len(tgt)))
        tgt.append(_ARTICLE[(gender, number)])
    return gender, number


def _toy_sentence(rng, max_adj=3):
    """One random sentence pair with its alignment."""
    subj, obj = _toy_np(rng, max_adj), _toy_np(rng, max_adj)
    verb = _VERBS[int(rng.integers(len(_VERBS)))]
    emph = rng.random() < 0.2
    pp = _toy_np(rng, max_adj) if rng.random() < 0.3 else None
    adv = _ADVS[int(rng.integers(len(_ADVS)))] if rng.random() < 0.3 else None
    return _toy_render(subj, obj, verb, emph, pp, adv)


def _toy_render(subj, obj, verb, emph, pp, adv):
    # source: subject [jo] verb object [sul NP] [adverb]; target built in its own order
    src: list[str] = []
    tgt: list[str] = []
    align: list[tuple[int, int]] = []
    gender, number = _render_np(subj, src, tgt, align)
    if emph:
        src.append("jo")
    verb_pos = len(src)
    src.append(verb[0])
    _render_np(obj, src, tgt, align)
    tgt.append("ka")
    if pp is not None:
        sul_pos = len(src)
        src.append("sul")
        _render_np(pp, src, tgt, align)
        align.append((sul_pos, len(tgt)))
        tgt.append("ven")
    if adv is not None:
        align.append((len(src), len(tgt)))
        src.append(adv[0])
        tgt.append(adv[1])
    if verb[1] is not None:
        align.append((verb_pos, len(tgt)))
        tgt.append(verb[1])
    align.append((verb_pos, len(tgt)))
    tgt.append(verb[2] + _VERB_END[(gender, number)])
    return Example(src, tgt, sorted(align, key=lambda p: (p[1], p[0])))


def translate_toy(src) -> list[str]:
    """The exact translation of a Sel sentence into Tor (the grammar's reference).

    Raises ``ValueError`` naming the first word the grammar does not allow there.

    >>> translate_toy("ta siri dapoi vimek u bor".split())
    ['suna', 'en', 'pek', 'li', 'kel', 'ka', 'mokren']
    """
    src = _check_tokens("src", src)
    nouns = {n[0]: (n, "sg") for n in _NOUNS} | {n[1]: (n, "pl") for n in _NOUNS}
    adjs = {a[0]: a for a in _ADJS}
    verbs = {v[0]: v for v in _VERBS}
    advs = {a[0]: a for a in _ADVS}
    pos = 0

    def fail(what):
        got = src[pos] if pos < len(src) else "the end of the sentence"
        raise ValueError(f"src is not a Sel sentence: expected {what} at position {pos}, "
                         f"got {got!r}. See companion.data.seq2seq.TOY_GRAMMAR.")

    def parse_np():
        nonlocal pos
        if pos >= len(src) or src[pos] not in ("ta", "u"):
            fail("an article (ta or u)")
        det = src[pos]
        pos += 1
        a = []
        while pos < len(src) and src[pos] in adjs:
            a.append(adjs[src[pos]])
            pos += 1
        if pos >= len(src) or src[pos] not in nouns:
            fail("a noun")
        noun, number = nouns[src[pos]]
        pos += 1
        return det, noun, number, a

    subj = parse_np()
    emph = pos < len(src) and src[pos] == "jo"
    pos += emph
    if pos >= len(src) or src[pos] not in verbs:
        fail("a verb")
    verb = verbs[src[pos]]
    pos += 1
    obj = parse_np()
    pp = adv = None
    if pos < len(src) and src[pos] == "sul":
        pos += 1
        pp = parse_np()
    if pos < len(src) and src[pos] in advs:
        adv = advs[src[pos]]
        pos += 1
    if pos != len(src):
        fail("the end of the sentence")
    return _toy_render(subj, obj, verb, emph, pp, adv).tgt


def _gen_toy(rng, n_total, min_len, max_len, exclude):
    out, seen = [], set(exclude)
    tries = 0
    while len(out) < n_total:
        tries += 1
        if tries > 200 * n_total + 10_000:
            raise ValueError(
                f"could not draw {n_total} distinct toy_language sentences with source lengths "
                f"in [{min_len}, {max_len}] (found {len(out)}). Sentences have 5 to 19 words."
            )
        ex = _toy_sentence(rng)
        key = tuple(ex.src)
        if min_len <= len(ex.src) <= max_len and key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def _toy_vocabs():
    src = ["ta", "u", "jo", "sul"]
    tgt = ["ka", "ven", "en", "lo", "la", "li"]
    for n in _NOUNS:
        src += [n[0], n[1]]
        tgt += list(n[2])
    for a in _ADJS:
        src.append(a[0])
        tgt.append(a[1])
    for v in _VERBS:
        src.append(v[0])
        if v[1] is not None:
            tgt.append(v[1])
        tgt += [v[2] + e for e in ("i", "a", "en")]
    for a in _ADVS:
        src.append(a[0])
        tgt.append(a[1])
    return Vocab(src), Vocab(tgt)


# ---------------------------------------------------------------- copy and reverse
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _gen_symbols(rng, n_total, min_len, max_len, exclude, n_symbols, reverse):
    space = sum(n_symbols ** L for L in range(min_len, max_len + 1))
    taken = sum(1 for key in exclude if min_len <= len(key) <= max_len)
    if n_total > (space - taken) // 2:  # rejection sampling needs room to be quick
        raise ValueError(
            f"asked for {n_total} distinct sequences of lengths [{min_len}, {max_len}] over "
            f"{n_symbols} symbols, but only {space} exist ({taken} already used): ask for at "
            f"most half of those left, or raise max_len or n_symbols."
        )
    out, seen = [], set(exclude)
    while len(out) < n_total:
        L = int(rng.integers(min_len, max_len + 1))
        src = [_LETTERS[i] for i in rng.integers(0, n_symbols, size=L)]
        key = tuple(src)
        if key in seen:
            continue
        seen.add(key)
        if reverse:
            out.append(Example(src, src[::-1], [(L - 1 - j, j) for j in range(L)]))
        else:
            out.append(Example(src, list(src), [(j, j) for j in range(L)]))
    return out


# ---------------------------------------------------------------- make_task
_DEFAULT_LENGTHS = {"dates": (1, 100), "toy_language": (1, 100), "copy": (4, 12),
                    "reverse": (4, 12)}


def _check_name(name):
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"name must be one of {', '.join(map(repr, TASKS))}; got {name!r}.")


def _lengths(name, min_len, max_len):
    lo, hi = _DEFAULT_LENGTHS[name]
    lo = lo if min_len is None else check_positive_int("min_len", min_len)
    hi = hi if max_len is None else check_positive_int("max_len", max_len)
    if lo > hi:
        raise ValueError(f"min_len must be <= max_len; got min_len={lo}, max_len={hi}.")
    return lo, hi


def _generate(name, rng, n, lo, hi, exclude, n_symbols):
    if name == "dates":
        return _gen_dates(rng, n, lo, hi, exclude)
    if name == "toy_language":
        return _gen_toy(rng, n, lo, hi, exclude)
    return _gen_symbols(rng, n, lo, hi, exclude, n_symbols, name == "reverse")


def _vocabs(name, n_symbols):
    if name == "dates":
        return _date_vocabs()
    if name == "toy_language":
        return _toy_vocabs()
    letters = list(_LETTERS[:n_symbols])
    return Vocab(letters), Vocab(letters)


def _check_n_symbols(n_symbols):
    n_symbols = check_positive_int("n_symbols", n_symbols, minimum=2)
    if n_symbols > 26:
        raise ValueError(f"n_symbols must be <= 26 (the letters a-z); got {n_symbols}.")
    return n_symbols


def make_task(name: str, *, n_train: int = 5000, n_valid: int = 500, n_test: int = 500,
              min_len: int | None = None, max_len: int | None = None, seed: int = 0,
              n_symbols: int = 10) -> Seq2SeqTask:
    """Generate task ``name`` ("dates", "toy_language", "copy" or "reverse").

    Parameters
    ----------
    n_train, n_valid, n_test : sizes of the three splits. No source sequence appears in
        two splits (for dates: no *date* appears in two splits).
    min_len, max_len : bounds on the source length in tokens (end token excluded). Dates
        have 4 to 10 tokens depending on the form, toy sentences 5 to 19, copy and
        reverse ``4`` to ``12`` by default (uniform in between).
    seed : the generator's seed; the same seed gives the same task.
    n_symbols : alphabet size for copy and reverse (2 to 26 letters).

    The vocabularies hold every token the generator can produce (whatever the lengths),
    so tasks made with other lengths or seeds share them.
    """
    _check_name(name)
    n_train = check_positive_int("n_train", n_train)
    n_valid = check_positive_int("n_valid", n_valid)
    n_test = check_positive_int("n_test", n_test)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int; got {_type_name(seed)} {seed!r}.")
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed}.")
    n_symbols = _check_n_symbols(n_symbols)
    lo, hi = _lengths(name, min_len, max_len)
    rng = np.random.default_rng([int(seed), TASKS.index(name)])
    data = _generate(name, rng, n_train + n_valid + n_test, lo, hi, set(), n_symbols)
    src_vocab, tgt_vocab = _vocabs(name, n_symbols)
    return Seq2SeqTask(name, src_vocab, tgt_vocab, data[:n_train],
                       data[n_train:n_train + n_valid], data[n_train + n_valid:],
                       {"min_len": lo, "max_len": hi, "seed": int(seed),
                        "n_symbols": n_symbols if name in ("copy", "reverse") else None})


def make_length_tests(task: Seq2SeqTask, lengths, *, n_per_length: int = 200,
                      seed: int = 1) -> dict[int, list[Example]]:
    """Test sets at exact source lengths, disjoint from all of ``task``'s splits.

    Returns ``{length: [n_per_length examples whose source has exactly that length]}`` for
    the same task (same vocabularies, same alphabet size), including lengths outside the
    training range: the sets for an accuracy-against-source-length curve.
    """
    if not isinstance(task, Seq2SeqTask):
        raise TypeError(f"task must be a Seq2SeqTask from make_task; got {_type_name(task)}.")
    n_per_length = check_positive_int("n_per_length", n_per_length)
    check_positive_int("seed", seed, minimum=0)
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__"):
        raise TypeError(f"lengths must be a list of positive ints (e.g. range(4, 13)); got "
                        f"{_type_name(lengths)} {lengths!r}.")
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths must hold at least one source length; got an empty list.")
    for k, L in enumerate(lengths):
        if isinstance(L, bool) or not isinstance(L, (int, np.integer)):
            raise TypeError(f"lengths must be a list of positive ints; entry {k} is "
                            f"{_type_name(L)} {L!r}.")
        check_positive_int("lengths", L)
    lengths = [int(L) for L in lengths]
    seen = {tuple(ex.src) for split in (task.train, task.valid, task.test) for ex in split}
    if task.name == "dates":  # keep test dates out of training
        seen |= _date_keys(task)
    out = {}
    for L in lengths:
        rng = np.random.default_rng([int(seed), TASKS.index(task.name), 1000 + L])
        n_sym = task.info.get("n_symbols") or 10
        if task.name == "dates":
            exs = _gen_dates_excluding(rng, n_per_length, L, seen)
        else:
            exs = _generate(task.name, rng, n_per_length, L, L, seen, n_sym)
        out[L] = exs
    return out


def _date_of(ex: Example):
    return "".join(ex.tgt)


def _date_keys(task):
    return {("DATE", _date_of(ex)) for s in (task.train, task.valid, task.test) for ex in s}


def _gen_dates_excluding(rng, n, L, seen):
    out = []
    for k in rng.permutation(_N_DATES):
        date = _FIRST_DATE + _dt.timedelta(days=int(k))
        if ("DATE", date.isoformat()) in seen:
            continue
        for f in rng.permutation(len(_DATE_FORMS)):
            ex = _date_example(date, _DATE_FORMS[f])
            if len(ex.src) == L:
                out.append(ex)
                break
        if len(out) == n:
            return out
    raise ValueError(f"only {len(out)} unused dates can be written with {L} source tokens; "
                     f"asked for n_per_length={n}. Date sources have 4 to 10 tokens.")


# ---------------------------------------------------------------- batches
@dataclass
class Batch:
    """A padded, batch-first batch (N sequences).

    ``src`` (N, S) source ids padded with ``PAD`` (reversed first if asked);
    ``src_lengths`` (N,); ``tgt_in`` (N, L) = BOS + target, ``tgt_out`` (N, L) =
    target + EOS, both padded; ``tgt_mask`` (N, L) True where ``tgt_out`` is a real token
    (EOS included): the loss mask; ``src_mask`` (N, S) True at real source tokens.
    """

    src: "torch.Tensor"
    src_lengths: "torch.Tensor"
    tgt_in: "torch.Tensor"
    tgt_out: "torch.Tensor"
    tgt_mask: "torch.Tensor"
    src_mask: "torch.Tensor"

    def __len__(self) -> int:
        return int(self.src.shape[0])


def _check_examples(examples) -> list[Example]:
    if isinstance(examples, Seq2SeqTask):
        raise TypeError("examples must be a list of Example; got a whole Seq2SeqTask. "
                        "Pass one split, e.g. task.train.")
    if isinstance(examples, Example):
        raise TypeError("examples must be a list of Example; got a single Example. "
                        "Wrap it: [example].")
    try:
        examples = list(examples)
    except TypeError as err:
        raise TypeError(f"examples must be a list of Example; got {_type_name(examples)}."
                        ) from err
    if not examples:
        raise ValueError("examples must hold at least one Example; got an empty list.")
    for k, ex in enumerate(examples):
        if not isinstance(ex, Example):
            raise TypeError(f"examples must hold Example objects; entry {k} is "
                            f"{_type_name(ex)}. Build pairs with Example(src, tgt).")
        if len(ex.src) == 0:
            raise ValueError(f"examples[{k}] has an empty source; every source needs at "
                             f"least one token (the encoder cannot read nothing).")
    return examples


def _check_vocab_arg(name, v):
    if not isinstance(v, Vocab):
        raise TypeError(f"{name} must be a Vocab (task.{name}); got {_type_name(v)}.")


def _check_known(name, side, ids, tokens, vocab, other, other_name):
    """Refuse a vocabulary that knows fewer than half of the batch's tokens.

    A few unknown tokens become ``UNK`` as they should; most of them unknown means the
    vocabulary is another task's (or the other side's), and every id would be ``UNK``.
    """
    total = sum(len(i) for i in ids)
    unknown = sum(i.count(UNK) for i in ids)
    if total == 0 or 2 * unknown <= total:
        return
    unknown -= sum(t.count(SPECIALS[UNK]) for t in tokens)  # a literal <unk> is known
    if 2 * unknown <= total:
        return
    seen = []
    for toks in tokens:
        for t in toks:
            if t not in vocab.stoi and t not in seen:
                seen.append(t)
        if len(seen) >= 5:
            break
    flat = [t for toks in tokens for t in toks]
    swapped = sum(t in other.stoi for t in flat) * 2 > len(flat)
    fix = (f"They are in {other_name}: are src_vocab and tgt_vocab swapped?" if swapped else
           f"Pass the vocabularies of the task the examples come from (task.{name}).")
    raise ValueError(
        f"{name} does not match these examples: {unknown} of their {total} {side} tokens "
        f"({100 * unknown / total:.0f}%) are not in it (e.g. {', '.join(map(repr, seen[:5]))}) "
        f"and would all become <unk>. Is it another task's vocabulary ({vocab!r})? {fix}")


def collate(examples, src_vocab: Vocab, tgt_vocab: Vocab, *,
            reverse_source: bool = False) -> Batch:
    """Pad a list of examples into a :class:`Batch` (see its docstring for the fields).

    ``reverse_source=True`` reverses every source *before* padding (Sutskever et al. 2014):
    the padding stays at the end, so ``src_lengths`` and packing are unchanged.
    """
    import torch

    examples = _check_examples(examples)
    _check_vocab_arg("src_vocab", src_vocab)
    _check_vocab_arg("tgt_vocab", tgt_vocab)
    if not isinstance(reverse_source, bool):
        raise TypeError(f"reverse_source must be True or False; got {reverse_source!r}.")
    srcs, tgts = [], []
    for k, ex in enumerate(examples):
        for side, vocab, out in (("src", src_vocab, srcs), ("tgt", tgt_vocab, tgts)):
            tokens = getattr(ex, side)
            try:
                out.append(vocab.encode(tokens[::-1] if reverse_source and side == "src"
                                        else tokens, eos=False))
            except TypeError as err:  # Vocab.encode names its own argument: name the example's
                raise TypeError(str(err).replace("tokens", f"examples[{k}].{side}", 1)) from None
    _check_known("src_vocab", "source", srcs, [ex.src for ex in examples], src_vocab,
                 tgt_vocab, "tgt_vocab")
    _check_known("tgt_vocab", "target", tgts, [ex.tgt for ex in examples], tgt_vocab,
                 src_vocab, "src_vocab")
    N = len(examples)
    S = max(len(s) for s in srcs)
    L = max(len(t) for t in tgts) + 1
    src = torch.full((N, S), PAD, dtype=torch.long)
    tgt_in = torch.full((N, L), PAD, dtype=torch.long)
    tgt_out = torch.full((N, L), PAD, dtype=torch.long)
    for n, (s, t) in enumerate(zip(srcs, tgts)):
        src[n, :len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[n, :len(t) + 1] = torch.tensor([BOS] + t, dtype=torch.long)
        tgt_out[n, :len(t) + 1] = torch.tensor(t + [EOS], dtype=torch.long)
    src_lengths = torch.tensor([len(s) for s in srcs], dtype=torch.long)
    tgt_lengths = torch.tensor([len(t) + 1 for t in tgts], dtype=torch.long)
    src_mask = torch.arange(S)[None, :] < src_lengths[:, None]
    tgt_mask = torch.arange(L)[None, :] < tgt_lengths[:, None]
    return Batch(src, src_lengths, tgt_in, tgt_out, tgt_mask, src_mask)


def iterate_batches(examples, batch_size: int, *, rng: np.random.Generator,
                    src_vocab: Vocab, tgt_vocab: Vocab, reverse_source: bool = False,
                    shuffle: bool = True, drop_last: bool = False) -> Iterator[Batch]:
    """One epoch of :class:`Batch` es, in an order drawn from ``rng`` if ``shuffle``."""
    examples = _check_examples(examples)
    batch_size = check_positive_int("batch_size", batch_size)
    rng = check_rng("rng", rng)
    for flag, value in (("reverse_source", reverse_source), ("shuffle", shuffle),
                        ("drop_last", drop_last)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False; got {_type_name(value)} {value!r}.")
    _check_vocab_arg("src_vocab", src_vocab)
    _check_vocab_arg("tgt_vocab", tgt_vocab)
    order = rng.permutation(len(examples)) if shuffle else np.arange(len(examples))
    for start in range(0, len(examples), batch_size):
        idx = order[start:start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        yield collate([examples[i] for i in idx], src_vocab, tgt_vocab,
                      reverse_source=reverse_source)
