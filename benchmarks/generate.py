"""Synthetic, labelled news corpus for speed benchmarks.

Real corpora large enough to stress the pipeline (10^6 documents) are awkward
to ship and carry no ground truth.  This module writes a deterministic corpus of
news-length texts in which about ``clustered_share`` of the documents belong to
near-duplicate trees built from the edits syndication really produces (copies
with punctuation noise, truncation, synonym spin, dropped sentences,
boilerplate, pasted headlines), with the true cluster and parent of every
document as label columns.

Speed comes from working on integer token ids: documents are generated, edited
and rendered to UTF-8 by numba kernels, one batch at a time, and streamed into
a single Parquet file through a polars IO source, so memory stays bounded by
``batch_size``.  Every cluster lives wholly inside one batch (so within
``batch_size`` consecutive ids); rows are shuffled within a batch.

Run ``python -m benchmarks.generate --docs N --out PATH`` to write a corpus.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from numba import njit
from polars.io.plugins import register_io_source

__all__ = ["EDITS", "MAX_WORDS", "MIN_WORDS", "SCHEMA", "generate_corpus", "iter_batches", "main"]

MIN_WORDS = 400
MAX_WORDS = 900

EDITS = (
    "root",
    "singleton",
    "copy",
    "truncation",
    "spin",
    "drop_sentences",
    "boilerplate",
    "headline_paste",
    "mixed",
)
_ROOT, _SINGLETON, _COPY, _TRUNCATION, _SPIN, _DROP, _BOILER, _HEADLINE, _MIXED = range(9)
# How often each edit is asked for on a tree edge; an edit that cannot apply
# (e.g. truncating a 410-word text) falls back to spin, and `edit` records what was done.
_CHILD_EDITS = np.array([_COPY, _TRUNCATION, _SPIN, _DROP, _BOILER, _HEADLINE, _MIXED])
_CHILD_WEIGHTS = np.array([0.20, 0.15, 0.15, 0.15, 0.15, 0.10, 0.10])

SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "publisher": pl.String(),
    "published_at": pl.Datetime("us"),
    "true_cluster": pl.String(),
    "true_parent": pl.String(),
    "edit": pl.String(),
}

_MAX_DEPTH = 3
_MAX_CLUSTER = 5000
_START_US = 1_672_531_200_000_000  # 2023-01-01T00:00:00 (naive, meant as UTC)
_SPAN_US = 2 * 365 * 86_400 * 1_000_000

# Token kinds decide spacing when rendering.
_WORD, _ATTACH, _OPEN, _PARA = 0, 1, 2, 3  # " word", "word,", "“word", blank line
_CAP = 1 << 30  # flag on a token id: upper-case its first letter
_MASK = _CAP - 1
_DOC_CAP = 4096  # max tokens in one document (900 words plus punctuation)
_PAD = 16  # tokens up to this many bytes are rendered by one fixed-size copy

# Word classes: rows of the sampling table.
_DET, _PREP, _CONJ, _PRON, _AUX, _ADV, _NOUN, _VERB, _ADJ, _NAME, _NUM, _REL, _MAG, _YEAR, _FIRST = range(15)
_N_CLASSES = 15
_FIXED, _PUBNAME, _PUBDOMAIN = -1, -2, -3  # template slots that are not class draws
_TABLE_BITS = 16

# Template sets.
_T_SENT, _T_TITLE, _T_HEAD, _T_FOOT, _T_PREFIX = range(5)


class _Lex(NamedTuple):
    """Everything the kernels need, as arrays (numba takes named tuples)."""

    text_buf: np.ndarray  # uint8, UTF-8 of every token
    text_off: np.ndarray  # int64, len = n_tokens + 1
    tlen: np.ndarray  # int32, bytes of each token
    pad: np.ndarray  # uint8 [n_tokens, _PAD], each token's first bytes, zero padded
    kind: np.ndarray  # int8
    wc: np.ndarray  # int8, whitespace-separated words the token renders as
    is_end: np.ndarray  # bool, sentence-final punctuation
    content: np.ndarray  # bool, may be spun
    syn: np.ndarray  # int32, synonym of each content token
    table: np.ndarray  # int32 [n_classes, 2**_TABLE_BITS], Zipf sampling tables
    pub_tok: np.ndarray  # int32 [n_publishers, 2]: name token, domain token
    tpl_ptr: np.ndarray  # int64, template t is slots tpl_ptr[t]:tpl_ptr[t+1]
    tpl_cls: np.ndarray  # int8, class or _FIXED/_PUBNAME/_PUBDOMAIN
    tpl_tok: np.ndarray  # int32, fixed token id and/or _CAP flag
    tset: np.ndarray  # int64 [5, 2], template index range of each set
    para: int
    comma: int
    semicolon: int
    apos: int
    apos_plain: int
    dash: int
    hyphen: int


# ---------------------------------------------------------------------------
# Vocabulary and sentence templates (built once per corpus, in Python).
# ---------------------------------------------------------------------------

_DETS = "the a this an their its his that these her our some all no every each those another both any".split()
_PREPS = (
    "of in to for on with at by from about after over into against during under before between "
    "through across amid without despite toward among near around"
).split()
_CONJS = "and but while as because although when if so though until whereas".split()
_PRONS = "it he she they we".split()
_AUXES = "has was is had will would could have were are may might should can did must".split()
_RELS = "that which who".split()
_MAGS = "million percent billion thousand points".split()
_FUNCTION = set(_DETS + _PREPS + _CONJS + _PRONS + _AUXES + _RELS) | set(
    "also now still only just already even never again then more most very not been be said to".split()
)
_ADVS = "also now still only just already even never again later recently nearly largely widely quickly".split()
_NOUNS = (
    "people year government officials time country week state city company police president minister "
    "report market day group month deal plan workers party election court world home law war money "
    "school family health news system program children water power security data industry season team "
    "business community leaders research policy prices service"
).split()
_VERBS = (
    "told announced reported added made took called found expected saw showed led raised cut warned "
    "agreed launched faced received released approved confirmed denied urged signed ended began won lost "
    "hit met sent held opened built paid passed"
).split()
_ADJS = (
    "new last first former national local public other major economic political international federal "
    "several many high recent global senior key small large early late second top big foreign military "
    "private annual next long current financial social legal official regional similar"
).split()
_FIRST_NAMES = (
    "John Maria David Anna Michael Sarah James Elena Robert Li Ahmed Carlos Fatima Peter Olga Daniel "
    "Priya Thomas Yuki Omar Laura Ivan Grace Mohammed Sofia Mark Julia Paul Chen Hannah Luis Aisha Kevin "
    "Emma Raj Nadia Brian Lucia Tom Amara Sergei Claire Diego Mei Samuel Rachel Andrew Zara Victor Nina"
).split()
_PAPERS = (
    "Times Post Herald Ledger Gazette Tribune Chronicle Journal Courier Observer Record Dispatch Standard "
    "Review Press Sentinel Examiner Monitor Telegraph Star Daily News Wire Report Bulletin"
).split()

_SINGLE_ONSETS = "b c d f g h j k l m n p r s t v w".split()
_ONSETS = 3 * _SINGLE_ONSETS + "br cr dr fr gr pr tr bl cl fl gl pl sl st sp sh ch th".split() + 6 * [""]
_VOWELS = 3 * "a e i o u".split() + "ai ea ou io ee oa".split()
_CODAS = 8 * [""] + "n r s t l m nd st rt nt ck sh ng x".split()
_SUFFIXES = {
    _NOUN: ["", "", "", "tion", "ment", "ity", "er", "ness", "ance", "ism", "s"],
    _VERB: ["ed", "ed", "ed", "es", "ated", "ized", "ened", "ified", "s"],
    _ADJ: ["al", "ive", "ous", "ic", "ful", "ent", "able", "ish", "ary"],
    _ADV: ["ly", "ally", "ily"],
    _NAME: ["", "", "ov", "son", "ez", "a", "ini", "berg", "ton", "ski", "er", "ani", "o", "es"],
}


def _pseudo_words(rng: np.random.Generator, n: int, cls: int, taken: set[str]) -> list[str]:
    """Pronounceable made-up words, so the vocabulary is large without a word list."""
    words: list[str] = []
    suffixes = _SUFFIXES[cls]
    while len(words) < n:
        k = 4 * (n - len(words)) + 16
        syl = rng.choice(3, size=k, p=[0.45, 0.45, 0.10]) + 1
        on = rng.integers(0, len(_ONSETS), size=(k, 3))
        vo = rng.integers(0, len(_VOWELS), size=(k, 3))
        co = rng.integers(0, len(_CODAS), size=(k, 3))
        su = rng.integers(0, len(suffixes), size=k)
        for i in range(k):
            stem = "".join(_ONSETS[on[i, j]] + _VOWELS[vo[i, j]] + _CODAS[co[i, j]] for j in range(syl[i]))
            w = stem + suffixes[su[i]]
            if cls == _NAME:
                w = w.capitalize()
            if not 3 <= len(w) <= 13 or w in taken:
                continue
            taken.add(w)
            words.append(w)
            if len(words) == n:
                break
    return words


def _numbers() -> list[str]:
    """Number strings in rough order of how often news uses them."""
    out = [str(i) for i in range(2, 100)]
    out += [str(y) for y in range(2024, 1989, -1)]
    out += [f"{i}%" for i in range(1, 100)]
    out += [f"{i / 10:.1f}" for i in range(11, 100)]
    out += [f"${i}" for i in range(1, 500, 3)]
    out += [f"${i / 10:.1f}" for i in range(11, 100)]
    out += [str(i) for i in range(100, 1000, 7)]
    out += [f"{i:,}" for i in range(1000, 100_000, 373)]
    return list(dict.fromkeys(out))


class _Builder:
    """Collects tokens, class word lists and templates, then freezes them into a `_Lex`."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.strings: list[str] = []
        self.kinds: list[int] = []
        self.ids: dict[tuple[str, int], int] = {}
        self.classes: list[list[int]] = [[] for _ in range(_N_CLASSES)]
        self.templates: list[list[tuple[int, int]]] = []
        self.tset = np.zeros((5, 2), dtype=np.int64)

    def tok(self, s: str, kind: int = _WORD) -> int:
        key = (s, kind)
        if key not in self.ids:
            self.ids[key] = len(self.strings)
            self.strings.append(s)
            self.kinds.append(kind)
        return self.ids[key]

    # -- slots -----------------------------------------------------------
    @staticmethod
    def c(cls: int) -> tuple[int, int]:
        return (cls, 0)

    def w(self, s: str) -> tuple[int, int]:
        return (_FIXED, self.tok(s))

    def p(self, s: str) -> tuple[int, int]:
        return (_FIXED, self.tok(s, _ATTACH))

    def pick(self, weights: Sequence[float]) -> int:
        cum = np.cumsum(weights)
        return int(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"))

    # -- grammar -----------------------------------------------------------
    def noun_phrase(self, subject: bool = False) -> list[tuple[int, int]]:
        c, w, p = self.c, self.w, self.p
        forms = [
            (0.22, lambda: [c(_DET), c(_NOUN)]),
            (0.18, lambda: [c(_DET), c(_ADJ), c(_NOUN)]),
            (0.12, lambda: [c(_DET), c(_NOUN), c(_PREP), c(_DET), c(_NOUN)]),
            (0.08, lambda: [c(_DET), c(_ADJ), c(_NOUN), c(_PREP), c(_NAME)]),
            (0.10, lambda: [c(_FIRST), c(_NAME)]),
            (0.05, lambda: [c(_NAME)]),
            (0.06, lambda: [c(_NAME), p("’s"), c(_NOUN)]),
            (0.06, lambda: [c(_NUM), c(_NOUN)]),
            (0.04, lambda: [c(_NUM), c(_MAG), w("of"), c(_NOUN)]),
            (0.05, lambda: [c(_DET), c(_NOUN), c(_REL), c(_VERB), c(_DET), c(_NOUN)]),
            (0.07, lambda: [c(_DET), c(_NOUN), w("and"), c(_DET), c(_NOUN)]),
            (0.04, lambda: [c(_DET), c(_NOUN), c(_PREP), c(_FIRST), c(_NAME)]),
            (0.12 if subject else 0.0, lambda: [c(_PRON)]),
        ]
        return forms[self.pick([f[0] for f in forms])][1]()

    def verb_phrase(self) -> list[tuple[int, int]]:
        c, w = self.c, self.w
        np_ = self.noun_phrase
        forms = [
            (0.25, lambda: [c(_VERB), *np_()]),
            (0.15, lambda: [c(_AUX), c(_VERB), *np_()]),
            (0.08, lambda: [c(_AUX), c(_ADV), c(_VERB), *np_()]),
            (0.12, lambda: [c(_VERB), c(_PREP), *np_()]),
            (0.06, lambda: [c(_AUX), w("been"), c(_VERB), c(_PREP), *np_()]),
            (0.10, lambda: [c(_VERB), *np_(), c(_PREP), *np_()]),
            (0.08, lambda: [c(_VERB), w("that"), *np_(True), c(_VERB), *np_()]),
            (0.06, lambda: [c(_AUX), w("not"), c(_VERB), *np_()]),
            (0.05, lambda: [c(_VERB), w("to"), c(_VERB), *np_()]),
            (0.05, lambda: [c(_ADV), c(_VERB), *np_()]),
            (0.06, lambda: [c(_VERB), *np_(), w("and"), c(_VERB), *np_()]),
        ]
        return forms[self.pick([f[0] for f in forms])][1]()

    def clause(self) -> list[tuple[int, int]]:
        out = [*self.noun_phrase(True), *self.verb_phrase()]
        if self.rng.random() < 0.35:
            out += [self.c(_PREP), *self.noun_phrase()]
        return out

    def sentence(self) -> list[tuple[int, int]]:
        c, w, p = self.c, self.w, self.p
        cl = self.clause
        forms = [
            (0.40, lambda: [*cl(), p(".")]),
            (0.14, lambda: [*cl(), p(","), c(_CONJ), *cl(), p(".")]),
            (0.08, lambda: [w("in"), c(_YEAR), p(","), *cl(), p(".")]),
            (0.10, lambda: [self.w_open("“"), *cl(), p(","), p("”"), w("said"), c(_FIRST), c(_NAME), p(".")]),
            (0.05, lambda: [self.w_open("“"), *cl(), p(","), p("”"), c(_FIRST), c(_NAME), w("said"), p(".")]),
            (0.08, lambda: [c(_FIRST), c(_NAME), w("said"), *cl(), p(".")]),
            (0.06, lambda: [*cl(), p(","), w("according"), w("to"), c(_DET), c(_NOUN), p(".")]),
            (0.06, lambda: [*self.noun_phrase(True), w("—"), c(_DET), c(_NOUN), c(_PREP), *self.noun_phrase(),
                            w("—"), *self.verb_phrase(), p(".")]),
            (0.03, lambda: [*cl(), p("?")]),
        ]
        return _capitalise(self, forms[self.pick([f[0] for f in forms])][1]())

    def title(self) -> list[tuple[int, int]]:
        c, w, p = self.c, self.w, self.p
        forms = [
            (0.50, lambda: [*self.noun_phrase(True), *self.verb_phrase()]),
            (0.20, lambda: [c(_FIRST), c(_NAME), w("says"), *self.noun_phrase(True), c(_VERB)]),
            (0.15, lambda: [*self.noun_phrase(True), c(_VERB), c(_PREP), *self.noun_phrase()]),
            (0.15, lambda: [c(_NAME), p(":"), *self.noun_phrase(True), *self.verb_phrase()]),
        ]
        return _capitalise(self, forms[self.pick([f[0] for f in forms])][1]())

    def w_open(self, s: str) -> tuple[int, int]:
        return (_FIXED, self.tok(s, _OPEN))

    def words_in(self, slots: list[tuple[int, int]]) -> int:
        n = 0
        for cls, t in slots:
            if cls >= 0:
                n += 1
            elif self.kinds[t & _MASK] == _WORD:
                n += len(self.strings[t & _MASK].split())
        return n

    def add_set(self, which: int, make: Callable[[], list[tuple[int, int]]], count: int, lo: int, hi: int) -> None:
        """`count` random templates from `make` with lo..hi words: the bounds keep documents in range."""
        first = len(self.templates)
        while len(self.templates) - first < count:
            slots = make()
            if lo <= self.words_in(slots) <= hi:
                self.templates.append(slots)
        self.tset[which] = (first, len(self.templates))

    def add_fixed_set(self, which: int, lines: list[list[tuple[int, int]]]) -> None:
        first = len(self.templates)
        self.templates.extend(lines)
        self.tset[which] = (first, len(self.templates))


def _capitalise(b: _Builder, slots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Flag the first word of a sentence (after an opening quote) for upper-casing."""
    i = 1 if slots[0][0] == _FIXED and b.kinds[slots[0][1] & _MASK] == _OPEN else 0
    cls, t = slots[i]
    slots[i] = (cls, t | _CAP)
    return slots


def _zipf_table(ids: list[int], exponent: float, offset: float, size: int) -> np.ndarray:
    """A lookup table in which id k of `ids` fills a share of slots ~ 1/(k+offset)^exponent."""
    w = 1.0 / (np.arange(len(ids)) + offset) ** exponent
    counts = np.maximum(1, np.floor(w / w.sum() * size)).astype(np.int64)
    counts[0] += size - counts.sum()  # the most frequent word absorbs rounding
    assert counts[0] > 0, "sampling table too small for this vocabulary"
    return np.repeat(np.asarray(ids, dtype=np.int32), counts)


def _build_lexicon(rng: np.random.Generator) -> tuple[_Lex, list[str]]:
    """Vocabulary, Zipf tables, synonym map, templates and publishers for one corpus."""
    b = _Builder(rng)
    taken = set(_FUNCTION) | set(_ADVS + _NOUNS + _VERBS + _ADJS + _MAGS + _FIRST_NAMES + _PAPERS)
    class_words: dict[int, list[str]] = {
        _DET: _DETS,
        _PREP: _PREPS,
        _CONJ: _CONJS,
        _PRON: _PRONS,
        _AUX: _AUXES,
        _REL: _RELS,
        _MAG: _MAGS,
        _YEAR: [str(y) for y in range(2024, 1989, -1)],
        _NUM: _numbers(),
        _ADV: _ADVS + _pseudo_words(rng, 250, _ADV, taken),
        _NOUN: _NOUNS + _pseudo_words(rng, 3000, _NOUN, taken),
        _VERB: _VERBS + _pseudo_words(rng, 1200, _VERB, taken),
        _ADJ: _ADJS + _pseudo_words(rng, 900, _ADJ, taken),
        _FIRST: _FIRST_NAMES,
        _NAME: _pseudo_words(rng, 2500, _NAME, taken),
    }
    # Zipf-Mandelbrot (exponent, offset) per class: function words steep, content words flatter at the top.
    shape = {_NOUN: (1.0, 8.0), _VERB: (1.0, 6.0), _ADJ: (1.0, 6.0), _ADV: (1.0, 4.0), _NAME: (0.9, 4.0),
             _NUM: (1.0, 4.0), _FIRST: (0.7, 2.0)}
    for cls, words in class_words.items():
        b.classes[cls] = [b.tok(s) for s in words]

    # Publishers: "The Varno Herald" / varnoherald.com, popularity Zipf-like.
    places = _pseudo_words(rng, 400, _NAME, taken)
    pubs: list[str] = []
    domains: list[str] = []
    for i, place in enumerate(places):
        paper = _PAPERS[int(rng.integers(0, len(_PAPERS)))]
        name = f"The {place} {paper}" if i % 3 else f"{place} {paper}"
        if name in pubs:
            continue
        pubs.append(name)
        domains.append(f"{place}{paper}".lower() + (".com", ".com", ".net", ".co.uk")[i % 4])
        if len(pubs) == 300:
            break
    pub_tok = np.array([[b.tok(n), b.tok(d)] for n, d in zip(pubs, domains)], dtype=np.int32)

    b.add_set(_T_SENT, b.sentence, 3000, 6, 40)
    b.add_set(_T_TITLE, b.title, 600, 5, 14)
    w, p, c = b.w, b.p, b.c
    pub, dom = (_PUBNAME, 0), (_PUBDOMAIN, 0)
    b.add_fixed_set(_T_HEAD, [
        [w("Advertisement")],
        [w("By"), c(_FIRST), c(_NAME), p(","), pub],
        [w("Listen"), w("to"), w("this"), w("article")],
        [w("Share"), w("this"), w("story")],
        [w("Skip"), w("to"), w("main"), w("content")],
    ])
    b.add_fixed_set(_T_FOOT, [
        [w("Read"), w("more"), w("at"), dom],
        [w("Read"), w("more"), w("at"), pub, p(".")],
        [w("Subscribe"), w("to"), pub, w("for"), w("the"), w("latest"), w("news"), p(".")],
        [w("Sign"), w("up"), w("for"), w("our"), w("newsletter"), w("to"), w("get"), w("the"), w("day"), p("’s"),
         w("top"), w("stories"), p(".")],
        [w("©"), c(_YEAR), pub, p("."), w("All"), w("rights"), w("reserved"), p(".")],
        [w("This"), w("article"), w("originally"), w("appeared"), w("on"), dom, p(".")],
        [w("Follow"), pub, w("on"), w("social"), w("media"), w("for"), w("more"), w("updates"), p(".")],
    ])
    b.add_fixed_set(_T_PREFIX, [
        [w("Related"), p(":")],
        [w("READ"), w("MORE"), p(":")],
        [w("Also"), w("read"), p(":")],
        [w("Trending"), p(":")],
        [],
    ])
    special = {
        "para": b.tok("\n\n", _PARA),
        "comma": b.tok(",", _ATTACH),
        "semicolon": b.tok(";", _ATTACH),
        "apos": b.tok("’s", _ATTACH),
        "apos_plain": b.tok("'s", _ATTACH),
        "dash": b.tok("—"),
        "hyphen": b.tok("-"),
    }

    n = len(b.strings)
    kinds = np.array(b.kinds, dtype=np.int8)
    wc = np.array([len(s.split()) if k == _WORD else 0 for s, k in zip(b.strings, b.kinds)], dtype=np.int8)
    is_end = np.array([k == _ATTACH and s in (".", "?", "!") for s, k in zip(b.strings, b.kinds)], dtype=np.bool_)
    content = np.zeros(n, dtype=np.bool_)
    syn = np.arange(n, dtype=np.int32)
    for cls in (_NOUN, _VERB, _ADJ, _ADV):
        ids = np.array([t for t in b.classes[cls] if b.strings[t] not in _FUNCTION], dtype=np.int32)
        # Synonyms have similar frequency: shuffle within windows of 8 ranks, then pair neighbours.
        for lo in range(0, len(ids), 8):
            ids[lo:lo + 8] = rng.permutation(ids[lo:lo + 8])
        content[ids] = True
        syn[ids[0:-1:2]] = ids[1::2]
        syn[ids[1::2]] = ids[0:-1:2]
        if len(ids) % 2:
            syn[ids[-1]] = ids[-2]
    size = 1 << _TABLE_BITS
    table = np.stack([_zipf_table(b.classes[k], *shape.get(k, (1.1, 2.0)), size) for k in range(_N_CLASSES)])

    encoded = [s.encode("utf-8") for s in b.strings]
    text_off = np.zeros(n + 1, dtype=np.int64)
    text_off[1:] = np.cumsum([len(e) for e in encoded])
    text_buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    assert b'"' not in text_buf.tobytes(), "texts are rendered as unescaped CSV"
    tlen = np.diff(text_off).astype(np.int32)
    pad = np.zeros((n, _PAD), dtype=np.uint8)
    for t, e in enumerate(encoded):
        pad[t, :min(_PAD, len(e))] = np.frombuffer(e[:_PAD], dtype=np.uint8)

    tpl_ptr = np.zeros(len(b.templates) + 1, dtype=np.int64)
    tpl_ptr[1:] = np.cumsum([len(t) for t in b.templates])
    flat = [slot for t in b.templates for slot in t]
    tpl_cls = np.array([s[0] for s in flat], dtype=np.int8)
    tpl_tok = np.array([s[1] for s in flat], dtype=np.int32)
    lex = _Lex(text_buf, text_off, tlen, pad, kinds, wc, is_end, content, syn, table, pub_tok,
               tpl_ptr, tpl_cls, tpl_tok, b.tset, **special)
    return lex, pubs


# ---------------------------------------------------------------------------
# Kernels: generate, edit and render token-id documents.
# ---------------------------------------------------------------------------

_jit = njit(cache=True, nogil=True)


@_jit
def _copy(src: np.ndarray, s0: int, dst: np.ndarray, d0: int, n: int) -> None:
    """dst[d0:d0+n] = src[s0:s0+n], forward (so shifting left in place is safe).

    Explicit loops: numba compiles slice assignment many times slower.
    """
    for j in range(n):
        dst[d0 + j] = src[s0 + j]


@_jit
def _pick(rng: Any, lo: int, hi: int) -> int:
    return lo + int(rng.random() * (hi - lo))


@_jit
def _emit(rng: Any, lx: _Lex, which: int, pub: int, out: np.ndarray, pos: int) -> tuple[int, int]:
    """Fill a random template of set `which` into out[pos:]; return (new pos, words)."""
    t = _pick(rng, lx.tset[which, 0], lx.tset[which, 1])
    words = 0
    for k in range(lx.tpl_ptr[t], lx.tpl_ptr[t + 1]):
        cls = lx.tpl_cls[k]
        tok = lx.tpl_tok[k]
        if cls >= 0:
            tok = lx.table[cls, int(rng.random() * lx.table.shape[1])] | (tok & _CAP)
        elif cls == _PUBNAME:
            tok = lx.pub_tok[pub, 0]
        elif cls == _PUBDOMAIN:
            tok = lx.pub_tok[pub, 1]
        out[pos] = tok
        pos += 1
        words += lx.wc[tok & _MASK]
    return pos, words


@_jit
def _fresh(rng: Any, lx: _Lex, target: int, pub: int, out: np.ndarray, pos: int) -> tuple[int, int]:
    """A new article: title, blank line, sentences until `target` words, in paragraphs."""
    pos, words = _emit(rng, lx, _T_TITLE, pub, out, pos)
    out[pos] = lx.para
    pos += 1
    while words < target:
        pos, w = _emit(rng, lx, _T_SENT, pub, out, pos)
        words += w
        if words < target and rng.random() < 0.4:
            out[pos] = lx.para
            pos += 1
    return pos, words


@_jit
def _words(lx: _Lex, a: np.ndarray, n: int) -> int:
    w = 0
    for i in range(n):
        w += lx.wc[a[i] & _MASK]
    return w


@_jit
def _body_start(lx: _Lex, a: np.ndarray, n: int) -> int:
    """Index just after the title's blank line."""
    for i in range(n):
        if lx.kind[a[i] & _MASK] == _PARA:
            return i + 1
    return n


@_jit
def _replace_one(rng: Any, b: np.ndarray, lo: int, m: int, old: int, new: int) -> bool:
    count = 0
    for i in range(lo, m):
        count += b[i] == old
    if count == 0:
        return False
    k = int(rng.random() * count)
    for i in range(lo, m):
        if b[i] == old:
            if k == 0:
                b[i] = new
                return True
            k -= 1
    return False


@_jit
def _delete_one(rng: Any, b: np.ndarray, lo: int, m: int, old: int) -> int:
    count = 0
    for i in range(lo, m):
        count += b[i] == old
    if count == 0:
        return m
    k = int(rng.random() * count)
    for i in range(lo, m):
        if b[i] == old:
            if k == 0:
                _copy(b, i + 1, b, i, m - 1 - i)  # shift left
                return m - 1
            k -= 1
    return m


@_jit
def _insert_comma(rng: Any, lx: _Lex, b: np.ndarray, lo: int, m: int) -> int:
    """Put a comma between two words (never at a line start, so word counts stay put)."""
    if m - 1 - lo <= 0:
        return m
    start = _pick(rng, lo, m - 1)
    for j in range(m - 1 - lo):
        i = lo + (start - lo + j) % (m - 1 - lo)
        if lx.kind[b[i] & _MASK] == _WORD and lx.kind[b[i + 1] & _MASK] == _WORD:
            for j in range(m, i + 1, -1):  # shift right
                b[j] = b[j - 1]
            b[i + 1] = lx.comma
            return m + 1
    return m


@_jit
def _op_copy(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray) -> int:
    """Exact copy with 1-3 small punctuation changes (the kind re-publishing CMSs make)."""
    _copy(a, 0, b, 0, n)
    m = n
    lo = _body_start(lx, b, m)
    n_ops = 1 + (rng.random() < 0.4) + (rng.random() < 0.15)
    for _ in range(n_ops):
        r = rng.random()
        done = False
        if r < 0.25:
            done = _replace_one(rng, b, lo, m, lx.comma, lx.semicolon)
        elif r < 0.45:
            done = _replace_one(rng, b, 0, m, lx.apos, lx.apos_plain)
        elif r < 0.55:
            done = _replace_one(rng, b, lo, m, lx.dash, lx.hyphen)
        elif r < 0.75:
            m2 = _delete_one(rng, b, lo, m, lx.comma)
            done = m2 != m
            m = m2
        if not done:
            m = _insert_comma(rng, lx, b, lo, m)
    return m


@_jit
def _op_truncate(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray) -> int:
    """Keep the first 30-90% of the words, cut at a sentence end, never below MIN_WORDS."""
    total = _words(lx, a, n)
    keep = max(int((0.3 + 0.6 * rng.random()) * total), MIN_WORDS)
    lo = _body_start(lx, a, n)
    cum = 0
    for i in range(n):
        cum += lx.wc[a[i] & _MASK]
        if i >= lo and cum >= keep and lx.is_end[a[i] & _MASK]:
            if cum >= total:
                return -1
            _copy(a, 0, b, 0, i + 1)
            return i + 1
    return -1


@_jit
def _op_spin(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray) -> int:
    """Replace 20-40% of content words by their fixed synonym (article spinning)."""
    p = 0.2 + 0.2 * rng.random()
    changed = 0
    first = -1
    for i in range(n):
        t = a[i]
        tid = t & _MASK
        if lx.content[tid]:
            if first < 0:
                first = i
            if rng.random() < p:
                t = lx.syn[tid] | (t & _CAP)
                changed += 1
        b[i] = t
    if changed == 0 and first >= 0:
        b[first] = lx.syn[a[first] & _MASK] | (a[first] & _CAP)
    return n


@_jit
def _op_drop(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray) -> int:
    """Drop 1 to 15% of the body's sentences, keeping at least MIN_WORDS."""
    lo = _body_start(lx, a, n)
    starts = np.empty(n + 1, dtype=np.int64)
    words = np.zeros(n, dtype=np.int64)
    is_sent = np.zeros(n, dtype=np.bool_)
    # Units end after sentence-final punctuation (taking a following blank line along) or a blank line.
    u = 0
    starts[0] = lo
    i = lo
    while i < n:
        tid = a[i] & _MASK
        words[u] += lx.wc[tid]
        if lx.is_end[tid]:
            is_sent[u] = True
            if i + 1 < n and lx.kind[a[i + 1] & _MASK] == _PARA:
                i += 1
            u += 1
            starts[u] = i + 1
        elif lx.kind[tid] == _PARA:
            u += 1
            starts[u] = i + 1
        i += 1
    if starts[u] < n:
        u += 1
        starts[u] = n
    n_sent = 0
    for k in range(u):
        n_sent += is_sent[k]
    if n_sent < 2:
        return -1
    budget = _words(lx, a, n) - MIN_WORDS
    want = 1 + int(rng.random() * max(1, int(0.15 * n_sent)))
    dropped = np.zeros(u, dtype=np.bool_)
    got = 0
    for _ in range(4 * want):
        k = int(rng.random() * u)
        if is_sent[k] and not dropped[k] and words[k] <= budget:
            dropped[k] = True
            budget -= words[k]
            got += 1
            if got == want:
                break
    if got == 0:
        return -1
    _copy(a, 0, b, 0, lo)
    m = lo
    for k in range(u):
        if not dropped[k]:
            ln = starts[k + 1] - starts[k]
            _copy(a, starts[k], b, m, ln)
            m += ln
    while m > lo and lx.kind[b[m - 1] & _MASK] == _PARA:
        m -= 1
    return m


@_jit
def _op_boiler(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray, pub: int) -> int:
    """Add a scraped header line after the title and/or 'Read more at ...' style footers."""
    lo = _body_start(lx, a, n)
    head = rng.random() < 0.4
    feet = 0
    if not head or rng.random() < 0.7:
        feet = 1 + (rng.random() < 0.3)
    _copy(a, 0, b, 0, lo)
    m = lo
    added = 0
    if head:
        m, w = _emit(rng, lx, _T_HEAD, pub, b, m)
        added += w
        b[m] = lx.para
        m += 1
    _copy(a, lo, b, m, n - lo)
    m += n - lo
    for _ in range(feet):
        b[m] = lx.para
        m, w = _emit(rng, lx, _T_FOOT, pub, b, m + 1)
        added += w
    if _words(lx, a, n) + added > MAX_WORDS:
        return -1
    return m


@_jit
def _op_headline(rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray, pub: int,
                 out: np.ndarray, off: np.ndarray, n_single: int, h: np.ndarray) -> int:
    """Paste another story's headline (maybe 'Related: ...') as its own paragraph."""
    hn, added = _emit(rng, lx, _T_PREFIX, pub, h, 0)
    if n_single > 0:  # a real headline from this batch's singletons: unrelated to this cluster
        j = int(rng.random() * n_single)
        for i in range(off[j], off[j + 1]):
            if lx.kind[out[i] & _MASK] == _PARA:
                break
            h[hn] = out[i]
            hn += 1
            added += lx.wc[out[i] & _MASK]
    else:
        hn, w = _emit(rng, lx, _T_TITLE, pub, h, hn)
        added += w
    if _words(lx, a, n) + added > MAX_WORDS:
        return -1
    lo = _body_start(lx, a, n)
    n_para = 0
    for i in range(lo - 1, n):
        n_para += lx.kind[a[i] & _MASK] == _PARA
    k = int(rng.random() * (n_para + 1))
    if k == n_para:  # at the end
        _copy(a, 0, b, 0, n)
        b[n] = lx.para
        _copy(h, 0, b, n + 1, hn)
        return n + 1 + hn
    for i in range(lo - 1, n):
        if lx.kind[a[i] & _MASK] == _PARA:
            if k == 0:
                q = i + 1
                _copy(a, 0, b, 0, q)
                _copy(h, 0, b, q, hn)
                b[q + hn] = lx.para
                _copy(a, q, b, q + hn + 1, n - q)
                return n + hn + 1
            k -= 1
    return -1


@_jit
def _apply(op: int, rng: Any, lx: _Lex, a: np.ndarray, n: int, b: np.ndarray, pub: int,
           out: np.ndarray, off: np.ndarray, n_single: int, h: np.ndarray) -> int:
    """Run one edit from a[:n] into b; return the new length or -1 if it cannot apply."""
    if op == _COPY:
        return _op_copy(rng, lx, a, n, b)
    if op == _TRUNCATION:
        return _op_truncate(rng, lx, a, n, b)
    if op == _SPIN:
        return _op_spin(rng, lx, a, n, b)
    if op == _DROP:
        return _op_drop(rng, lx, a, n, b)
    if op == _BOILER:
        return _op_boiler(rng, lx, a, n, b, pub)
    return _op_headline(rng, lx, a, n, b, pub, out, off, n_single, h)


@_jit
def _derive(rng: Any, lx: _Lex, edit: int, a: np.ndarray, n: int, b: np.ndarray, pub: int,
            out: np.ndarray, off: np.ndarray, n_single: int, h: np.ndarray) -> tuple[int, int]:
    """Edit the parent in a[:n] in place; return (new length, edit actually made).

    'mixed' chains 2-3 distinct edits; edits that cannot apply are skipped, and if
    none applied the text is spun, so every edge changes the text.
    """
    ops = np.arange(_COPY, _HEADLINE + 1)
    k = 1
    if edit == _MIXED:
        k = 2 + (rng.random() < 0.35)
        for j in range(k):  # partial Fisher-Yates: k distinct edits
            r = _pick(rng, j, ops.size)
            ops[j], ops[r] = ops[r], ops[j]
    else:
        ops[0] = edit
    applied = 0
    last = _SPIN
    for j in range(k):
        m = _apply(ops[j], rng, lx, a, n, b, pub, out, off, n_single, h)
        if m >= 0:
            _copy(b, 0, a, 0, m)
            n = m
            applied += 1
            last = ops[j]
    if applied == 0:
        n = _op_spin(rng, lx, a, n, b)
        _copy(b, 0, a, 0, n)
    return n, (_MIXED if applied >= 2 else last)


@_jit
def _build_batch(rng: Any, lx: _Lex, parent: np.ndarray, edit: np.ndarray, pub: np.ndarray,
                 target: np.ndarray, n_single: int, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids of every document of a batch in plan order (parents before children).

    Writes into `out` (grown if too small) and returns (out, offsets, edits actually made).
    """
    n = parent.size
    off = np.empty(n + 1, dtype=np.int64)
    done = edit.copy()
    a = np.empty(_DOC_CAP, dtype=np.int32)
    b = np.empty(_DOC_CAP, dtype=np.int32)
    h = np.empty(256, dtype=np.int32)
    pos = 0
    for i in range(n):
        if pos + _DOC_CAP > out.size:
            grown = np.empty(out.size + out.size // 2 + _DOC_CAP, dtype=np.int32)
            _copy(out, 0, grown, 0, pos)
            out = grown
        off[i] = pos
        p = parent[i]
        if p < 0:
            pos, w = _fresh(rng, lx, target[i], pub[i], out, pos)
        else:
            m = off[p + 1] - off[p]
            _copy(out, off[p], a, 0, m)
            m, made = _derive(rng, lx, edit[i], a, m, b, pub[i], out, off, n_single, h)
            done[i] = made
            _copy(a, 0, out, pos, m)
            pos += m
            w = _words(lx, a, m)
        if w < MIN_WORDS or w > MAX_WORDS:
            raise ValueError("generated document length out of range")
    off[n] = pos
    return out, off, done


@_jit
def _render_size(tok: np.ndarray, off: np.ndarray, lx: _Lex) -> int:
    """Bytes `_render_csv` will write for these documents."""
    total = 0
    for d in range(off.size - 1):
        total += 3  # quotes and newline
        glue = True
        for i in range(off[d], off[d + 1]):
            tid = tok[i] & _MASK
            k = lx.kind[tid]
            if k == _PARA:
                total += 2
                glue = True
                continue
            if (k == _WORD or k == _OPEN) and not glue:
                total += 1
            total += lx.tlen[tid]
            glue = k == _OPEN
    return total


@_jit
def _render_csv(tok: np.ndarray, off: np.ndarray, lx: _Lex, order: np.ndarray, buf: np.ndarray) -> int:
    """Documents in `order` as a one-column CSV, one quoted text per row; returns bytes written.

    Texts never contain '"', so nothing needs escaping and polars' CSV reader turns the
    buffer into a String column in Rust, much faster than building Python strings.
    `buf` needs _PAD bytes of slack: short tokens are copied as fixed 16-byte blocks.
    """
    pos = 0
    for d in order:
        buf[pos] = 34
        pos += 1
        glue = True
        for i in range(off[d], off[d + 1]):
            t = tok[i]
            tid = t & _MASK
            k = lx.kind[tid]
            if k == _PARA:
                buf[pos] = 10
                buf[pos + 1] = 10
                pos += 2
                glue = True
                continue
            if (k == _WORD or k == _OPEN) and not glue:
                buf[pos] = 32
                pos += 1
            ln = lx.tlen[tid]
            if ln <= _PAD:
                for j in range(_PAD):
                    buf[pos + j] = lx.pad[tid, j]
            else:
                s = lx.text_off[tid]
                for j in range(ln):
                    buf[pos + j] = lx.text_buf[s + j]
            if t & _CAP and 97 <= buf[pos] <= 122:
                buf[pos] -= 32
            pos += ln
            glue = k == _OPEN
        buf[pos] = 34
        buf[pos + 1] = 10
        pos += 2
    return pos


@_jit
def _trees(rng: Any, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent (index within the cluster, -1 for the root) and depth of every cluster member.

    Half the copies come straight from the root (the wire story), the rest from a
    random earlier member; a parent already at the maximum depth hands over to its own parent.
    """
    m = sizes.sum()
    parent = np.empty(m, dtype=np.int64)
    depth = np.empty(m, dtype=np.int64)
    base = 0
    for s in sizes:
        parent[base] = -1
        depth[base] = 0
        for j in range(1, s):
            p = 0 if rng.random() < 0.5 else int(rng.random() * j)
            while depth[base + p] >= _MAX_DEPTH:
                p = parent[base + p]
            parent[base + j] = p
            depth[base + j] = depth[base + p] + 1
        base += s
    return parent, depth


# ---------------------------------------------------------------------------
# Batches and the public API.
# ---------------------------------------------------------------------------


def _cluster_sizes(rng: np.random.Generator, quota: int, max_size: int) -> np.ndarray:
    """Heavy-tailed sizes (P(s) ~ s^-2.2 on 2..max_size) summing to about `quota`."""
    max_size = min(max_size, quota)
    if max_size < 2:
        return np.zeros(0, dtype=np.int64)
    support = np.arange(2, max_size + 1)
    pmf = support.astype(np.float64) ** -2.2
    draws = rng.choice(support, size=quota // 2 + 1, p=pmf / pmf.sum())
    cum = np.cumsum(draws)
    k = int(np.searchsorted(cum, quota))
    sizes = draws[: k + 1].copy()
    sizes[-1] -= cum[k] - quota
    return sizes if sizes[-1] >= 2 else sizes[:-1]  # a leftover single doc stays a singleton


def _format_ids(values: np.ndarray) -> pl.Series:
    """`d` + ten digits; -1 becomes null."""
    v = pl.col("v")
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.Int64})
        .select(pl.when(v >= 0).then(pl.concat_str(pl.lit("d"), v.cast(pl.String).str.zfill(10))))
        .to_series()
    )


class _Scratch:
    """Buffers reused across batches: first-touching fresh memory costs more than generating."""

    def __init__(self) -> None:
        self.tok = np.empty(0, dtype=np.int32)
        self.buf = np.empty(0, dtype=np.uint8)


def _batch(rng: np.random.Generator, lex: _Lex, pubs: pl.Series, start: int, n: int,
           share: float, max_size: int, scratch: _Scratch) -> tuple[pl.DataFrame, int, int]:
    """One batch: plan clusters, generate tokens, render, shuffle rows, label."""
    sizes = _cluster_sizes(rng, int(round(share * n)), max_size)
    n_clustered = int(sizes.sum())
    n_single = n - n_clustered

    # Plan order: singletons first, then each cluster's members in creation order.
    parent = np.full(n, -1, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    root = np.arange(n, dtype=np.int64)
    edit = np.full(n, _SINGLETON, dtype=np.int64)
    if n_clustered:
        local_parent, local_depth = _trees(rng, sizes)
        base = np.repeat(n_single + np.cumsum(sizes) - sizes, sizes)
        members = slice(n_single, n)
        parent[members] = np.where(local_parent >= 0, base + local_parent, -1)
        depth[members] = local_depth
        root[members] = base
        asked = rng.choice(_CHILD_EDITS, size=n_clustered, p=_CHILD_WEIGHTS)
        edit[members] = np.where(local_parent >= 0, asked, _ROOT)

    # Copies appear after their parent, mostly at another outlet.
    n_pubs = len(pubs)
    pop = 1.0 / np.arange(1, n_pubs + 1) ** 0.8
    pub = rng.choice(n_pubs, size=n, p=pop / pop.sum())
    ts = _START_US + rng.integers(0, _SPAN_US, size=n)
    delay = np.clip(np.exp(rng.normal(np.log(4 * 3600), 1.3, size=n)), 60, 30 * 86_400) * 1e6
    shift = rng.integers(1, n_pubs, size=n)
    for d in range(1, _MAX_DEPTH + 1):
        kids = np.flatnonzero(depth == d)
        ts[kids] = ts[parent[kids]] + delay[kids].astype(np.int64)
        same = pub[kids] == pub[parent[kids]]
        pub[kids[same]] = (pub[kids[same]] + shift[kids[same]]) % n_pubs

    target = MIN_WORDS + (rng.beta(1.6, 2.4, size=n) * (MAX_WORDS - 40 - MIN_WORDS)).astype(np.int64)
    if scratch.tok.size < n * 1000:
        scratch.tok = np.empty(n * 1000 + 2 * _DOC_CAP, dtype=np.int32)
    scratch.tok, off, done = _build_batch(rng, lex, parent, edit, pub, target, n_single, scratch.tok)
    perm = rng.permutation(n)
    size = _render_size(scratch.tok, off, lex) + _PAD
    if scratch.buf.size < size:
        scratch.buf = np.empty(size + size // 4, dtype=np.uint8)
    end = _render_csv(scratch.tok, off, lex, perm, scratch.buf)
    texts = pl.read_csv(scratch.buf[:end].tobytes(), has_header=False, schema={"text": pl.String},
                        quote_char='"')["text"]
    assert texts.len() == n

    row_of = np.empty(n, dtype=np.int64)
    row_of[perm] = np.arange(n)
    global_of = start + row_of
    parent_p = parent[perm]
    df = pl.DataFrame({
        "id": _format_ids(start + np.arange(n)),
        "text": texts,
        "publisher": pubs.gather(pub[perm]),
        "published_at": pl.Series(ts[perm], dtype=pl.Int64).cast(pl.Datetime("us")),
        "true_cluster": _format_ids(global_of[root[perm]]),
        "true_parent": _format_ids(np.where(parent_p >= 0, global_of[np.maximum(parent_p, 0)], -1)),
        "edit": pl.Series(done[perm]).replace_strict(dict(enumerate(EDITS)), return_dtype=pl.String),
    })
    return df, len(sizes), n_clustered


def _check(n_docs: int, seed: int, clustered_share: float, batch_size: int) -> None:
    """Fail before any work (and outside polars' source thread) on impossible arguments."""
    if n_docs < 0:
        raise ValueError(f"n_docs must be >= 0, got {n_docs}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= clustered_share <= 1.0:
        raise ValueError(f"clustered_share must be in [0, 1], got {clustered_share}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _batches(n_docs: int, seed: int, clustered_share: float, batch_size: int,
             stats: dict[str, int]) -> Iterator[pl.DataFrame]:
    rng = np.random.default_rng(seed)
    lex, pub_names = _build_lexicon(rng)
    pubs = pl.Series("publisher", pub_names, dtype=pl.String)
    max_size = max(5, min(_MAX_CLUSTER, n_docs // 200))
    scratch = _Scratch()
    stats.update(clusters=0, clustered_docs=0)
    for start in range(0, n_docs, batch_size):
        n = min(batch_size, n_docs - start)
        df, clusters, clustered = _batch(rng, lex, pubs, start, n, clustered_share, max_size, scratch)
        stats["clusters"] += clusters
        stats["clustered_docs"] += clustered
        yield df


def iter_batches(n_docs: int, *, seed: int = 0, clustered_share: float = 0.2,
                 batch_size: int = 50_000) -> Iterator[pl.DataFrame]:
    """The corpus `generate_corpus` writes, as DataFrames of up to `batch_size` rows in id order.

    For benchmarks that want the data in memory without a file round trip.
    """
    _check(n_docs, seed, clustered_share, batch_size)
    return _batches(n_docs, seed, clustered_share, batch_size, {})


def generate_corpus(n_docs: int, out_path: Path, *, seed: int = 0, clustered_share: float = 0.2,
                    batch_size: int = 50_000) -> dict[str, Any]:
    """Write a synthetic labelled corpus to one Parquet file and return a summary.

    The summary holds docs, clusters (trees of 2+ docs), clustered_docs, seconds and path.
    Output is a pure function of (n_docs, seed, clustered_share, batch_size): clusters
    are planned per batch, so changing `batch_size` changes the corpus.  Peak memory is
    about 40 kB per document of `batch_size` (2 GB at the default).
    """
    _check(n_docs, seed, clustered_share, batch_size)
    out_path = Path(out_path)
    stats: dict[str, int] = {}

    def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               _batch_size: int | None) -> Iterator[pl.DataFrame]:
        for df in _batches(n_docs, seed, clustered_share, batch_size, stats):
            if predicate is not None:
                df = df.filter(predicate)
            if with_columns is not None:
                df = df.select(with_columns)
            yield df

    t0 = time.perf_counter()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    register_io_source(source, schema=SCHEMA).sink_parquet(out_path, compression="zstd", compression_level=1)
    seconds = time.perf_counter() - t0
    return {
        "docs": n_docs,
        "clusters": stats.get("clusters", 0),
        "clustered_docs": stats.get("clustered_docs", 0),
        "seconds": round(seconds, 3),
        "path": str(out_path),
    }


def cached_corpus(work: Path, n_docs: int, seed: int = 0) -> Path:
    """``work/corpus-<n_docs>-<seed>.parquet``, generated the first time (the benchmarks share it: same recipe, same file)."""
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"corpus-{n_docs}-{seed}.parquet"
    if not corpus.exists():
        print(f"generating {n_docs:,} documents -> {corpus}", flush=True)
        generate_corpus(n_docs, corpus, seed=seed)
    return corpus


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write a corpus and print its summary as JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, required=True, help="number of documents")
    ap.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clustered-share", type=float, default=0.2, help="share of docs in near-duplicate clusters")
    ap.add_argument("--batch-size", type=int, default=50_000, help="docs per batch (part of the recipe)")
    args = ap.parse_args(argv)
    try:
        summary = generate_corpus(args.docs, args.out, seed=args.seed, clustered_share=args.clustered_share,
                                  batch_size=args.batch_size)
    except ValueError as exc:
        ap.error(str(exc))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    # Run through the importable module so numba's on-disk cache and types are shared with library use.
    from benchmarks.generate import main as _main

    sys.exit(_main())
