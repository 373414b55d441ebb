"""Normalise text and cut it into tokens, as polars expressions.

Copies of one article differ in Unicode forms (full-width letters, non-breaking
spaces), typographic quotes and dashes, case and white space; none of that is a
change of content, so all of it is folded away before shingling.  Tokens keep
a flag for *anchors*: capitalised words and numbers that are not stopwords
(names, places, figures), the words that synonym spinners and paraphrasers
leave alone (the "immutable" words of the DSpin paper).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import re
import unicodedata

import numba
import numpy as np
import polars as pl
import xxhash

from provenance.kernels import GOLDEN, hash_table, in_table, mix64, sorted_member
from provenance.prepare.confusables import letter_folds

# Typographic variants folded to their ASCII form.
_QUOTES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
}
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
FOLD = {**_QUOTES, **_DASHES}

#: English function words.  They are never anchors, whatever their case
#: ("The", "But" open sentences without being names).
STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all almost also although always am among an and another any
    are around as at be because been before being below between both but by can cannot could did do
    does doing done down during each either else ever every few for from further had has have having he
    her here hers herself him himself his how however i if in into is it its itself just last least less
    like many may me might more most much must my myself neither never next no nor not now of off often
    on once one only or other others our ours ourselves out over own per perhaps rather same several
    shall she should since so some still such than that the their theirs them themselves then there
    these they this those though through thus to too toward towards under unless until up upon us very
    was we were what whatever when whenever where whether which while who whom whose why will with
    within without would yet you your yours yourself yourselves mr mrs ms said says""".split()
)

TOKEN_PATTERN = r"\w+"


def normalize_expr(text: pl.Expr) -> pl.Expr:
    """Unicode NFKC, ASCII quotes and dashes, white space folded (case kept).

    Case is kept so anchors can still be told apart; word views lower-case
    their tokens themselves.
    """
    # Fold before NFKC too: NFKC decomposes some quote look-alikes (U+00B4 becomes
    # a space and a combining accent) beyond recognition.
    fold = lambda e: e.str.replace_many(list(FOLD.keys()), list(FOLD.values()))  # noqa: E731
    folded = fold(fold(text).str.normalize("NFKC"))
    return folded.str.replace_all(r"[ \t\r\f\v\u00a0]+", " ").str.replace_all(r" ?\n[\s]*", "\n").str.strip_chars()


def canonical_expr(text: pl.Expr) -> pl.Expr:
    """The normalised text reduced to its lower-case token sequence.

    Two documents with the same canonical text are exact duplicates: they
    differ at most in case, punctuation, quotes, dashes or white space.
    """
    return normalize_expr(text).str.to_lowercase().str.extract_all(TOKEN_PATTERN).list.join(" ")


# ---------------------------------------------------------------------------- compiled tokeniser
#
# Tokens are found in one compiled pass over the UTF-8 bytes of a whole batch
# (texts joined into one buffer with per-document offsets), so there is no
# Python loop per document or per token.  Character classes come from tables
# built once from Python's own ``str`` methods over the Basic Multilingual
# Plane; code points beyond it count as separators.

_NFKC_BIT = 16
#: Mathematical alphanumerics (beyond the BMP) that NFKC maps to plain letters and digits.
_NFKC_ASTRAL = (0x1D400, 0x1D7FF)
_FNV_PRIME = np.uint64(0x100000001B3)


@lru_cache(maxsize=1)
def char_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per BMP code point: class bits (1 word, 2 upper, 4 digit, 8 lower, 16 NFKC-sensitive) and lower-case map.

    Word characters are Unicode's ``\\w``: letters, digits, connector
    punctuation and combining marks (so Devanagari or Thai words with vowel
    signs stay whole).  The lower-case map also folds final sigma, so a word
    matches across case in Greek too.
    """
    cls = np.zeros(0x10000, dtype=np.uint8)
    lower = np.arange(0x10000, dtype=np.uint32)
    sensitive = re.compile(_NFKC_SENSITIVE)
    for c in range(0x10000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        category = unicodedata.category(ch)
        bits = 0
        if ch.isalnum() or category[0] == "M" or category == "Pc":
            bits |= 1
        if ch.isupper() or ch.istitle():
            bits |= 2
        if ch.isdecimal():
            bits |= 4
        if ch.islower():
            bits |= 8
        if sensitive.match(ch):
            bits |= _NFKC_BIT
        cls[c] = bits
        low = ch.lower()
        if low != ch and ord(low[0]) < 0x10000:
            lower[c] = ord(low[0])
    lower[0x03C2] = 0x03C3  # final sigma
    folds = letter_folds()  # look-alike letters read as the Latin letter they imitate, in either case
    for c in np.flatnonzero(cls & 1).tolist():
        if chr(lower[c]) in folds:
            lower[c] = ord(folds[chr(lower[c])])
    return cls, lower


@numba.njit(cache=True, nogil=True)
def _decode(buf, i, end):  # pragma: no cover - compiled
    """(code point, byte length) at ``buf[i]``; invalid bytes decode to U+FFFD."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return b0, 1
    if b0 >> 5 == 0b110 and i + 1 < end:
        return ((b0 & 0x1F) << 6) | (np.int64(buf[i + 1]) & 0x3F), 2
    if b0 >> 4 == 0b1110 and i + 2 < end:
        return ((b0 & 0x0F) << 12) | ((np.int64(buf[i + 1]) & 0x3F) << 6) | (np.int64(buf[i + 2]) & 0x3F), 3
    if b0 >> 3 == 0b11110 and i + 3 < end:  # beyond the BMP: a separator (callers look up only BMP classes)
        return (((b0 & 0x07) << 18) | ((np.int64(buf[i + 1]) & 0x3F) << 12) | ((np.int64(buf[i + 2]) & 0x3F) << 6)
                | (np.int64(buf[i + 3]) & 0x3F)), 4
    return 0xFFFD, 1


@numba.njit(cache=True, nogil=True)
def scan_doc(buf, start, end, cls, lower, start_h, stop_table, max_key_tokens, fill_tokens, fill_lines, nt, nl,
              t_hash, t_doc, t_line, t_anchor, l_doc, l_key, d, d_out):  # pragma: no cover - compiled
    """Count, and write if asked (``fill_tokens``, ``fill_lines``), the tokens and lines of one document.

    ``nt``/``nl`` are where its first token/line go.  Returns (tokens, lines).
    A token is a maximal run of word characters; its hash is FNV-1a over its
    lower-cased code points, seeded and mixed.  A line's key combines its
    tokens' hashes when it has at most ``max_key_tokens`` of them (else 0).
    A line without any lower-case letter and with 4+ tokens is shouting: its
    capitalised words are not anchors.
    """
    t0, l0 = nt, nl
    i = start
    doc_h = start_h
    line_first = nt
    line_tokens = 0
    line_h = start_h
    line_has_lower = False
    in_tok = False
    tok_h = start_h
    tok_len = 0
    tok_anchor = np.uint8(0)
    while True:
        at_end = i >= end
        if at_end:
            cp, size = 10, 1
        else:
            cp, size = _decode(buf, i, end)
        c = cls[cp] if cp < 0x10000 else np.uint8(0)
        if c & 8:
            line_has_lower = True
        if c & 1:
            if not in_tok:
                in_tok = True
                tok_h = start_h
                tok_len = 0
                tok_anchor = np.uint8(2) if (c & 4) != 0 else (np.uint8(1) if (c & 2) != 0 else np.uint8(0))
            tok_h = (tok_h ^ np.uint64(lower[cp])) * _FNV_PRIME
            tok_len += 1
        elif in_tok:
            in_tok = False
            h = mix64(tok_h ^ np.uint64(tok_len))
            if fill_tokens:
                t_hash[nt] = h
                t_doc[nt] = d
                t_line[nt] = nl
                t_anchor[nt] = np.uint8(4) if in_table(stop_table, h) else tok_anchor
            doc_h = mix64(doc_h * GOLDEN + h)
            line_h = mix64(line_h * GOLDEN + h)
            nt += 1
            line_tokens += 1
        if cp == 10:  # end of a line (or of the document)
            if line_tokens > 0:
                if fill_lines:
                    l_doc[nl] = d
                    l_key[nl] = line_h if line_tokens <= max_key_tokens else np.uint64(0)
                if fill_tokens:
                    if not line_has_lower and line_tokens >= 4:
                        for k in range(line_first, nt):
                            if t_anchor[k] == 1:  # capitalised, not a number
                                t_anchor[k] = 0
                nl += 1
            line_first = nt
            line_tokens = 0
            line_h = start_h
            line_has_lower = False
            if at_end:
                break
        i += size
    if fill_lines:
        d_out[d] = doc_h
    return nt - t0, nl - l0


@numba.njit(cache=True, nogil=True, parallel=True)
def _count(buf, offsets, cls, lower, start_h, stop_table, max_key_tokens):  # pragma: no cover - compiled
    n = len(offsets) - 1
    tokens = np.zeros(n, dtype=np.int64)
    lines = np.zeros(n, dtype=np.int64)
    e64, e32, ei, eb = np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    for d in numba.prange(n):
        tokens[d], lines[d] = scan_doc(buf, offsets[d], offsets[d + 1], cls, lower, start_h, stop_table, max_key_tokens,
                                        False, False, 0, 0, e64, e32, ei, eb, ei, e64, d, e64)
    return tokens, lines


@numba.njit(cache=True, nogil=True, parallel=True)
def _fill(buf, offsets, cls, lower, start_h, stop_table, max_key_tokens, t_start, l_start,
          t_hash, t_doc, t_line, t_anchor, l_doc, l_key, d_hash):  # pragma: no cover - compiled
    for d in numba.prange(len(offsets) - 1):
        scan_doc(buf, offsets[d], offsets[d + 1], cls, lower, start_h, stop_table, max_key_tokens, True, True,
                  t_start[d], l_start[d], t_hash, t_doc, t_line, t_anchor, l_doc, l_key, d, d_hash)


@numba.njit(cache=True, nogil=True, parallel=True)
def _nfkc_rows(buf, offsets, cls):  # pragma: no cover - compiled
    """Per document: whether it holds a character NFKC would turn into other word characters."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.bool_)
    for d in numba.prange(n):
        i, end = offsets[d], offsets[d + 1]
        while i < end:
            if buf[i] < 0x80:  # every such character is beyond ASCII
                i += 1
                continue
            cp, size = _decode(buf, i, end)
            if (cp < 0x10000 and (cls[cp] & _NFKC_BIT) != 0) or (_NFKC_ASTRAL[0] <= cp <= _NFKC_ASTRAL[1]):
                out[d] = True
                break
            i += size
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _line_bounds(buf, offsets):  # pragma: no cover - compiled
    """Per document: an upper bound of its lines (newlines + 1)."""
    n = len(offsets) - 1
    out = np.ones(n, dtype=np.int64)
    for d in numba.prange(n):
        count = 1
        for i in range(offsets[d], offsets[d + 1]):
            if buf[i] == 10:
                count += 1
        out[d] = count
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _summarize(buf, offsets, cls, lower, start_h, max_key_tokens, l_start, l_doc, l_key, d_tokens, d_hash):  # pragma: no cover - compiled
    """Token counts, content hashes and lines (at ``l_start[d]`` on) without writing a single token."""
    e64, e32, ei, eb = np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    for d in numba.prange(len(offsets) - 1):
        d_tokens[d], _ = scan_doc(buf, offsets[d], offsets[d + 1], cls, lower, start_h, e64, max_key_tokens, False, True,
                                   0, l_start[d], e64, e32, ei, eb, l_doc, l_key, d, d_hash)


@dataclass(frozen=True)
class Summary:
    """What must be known of a batch before shingling it, with no per-token array.

    Per document: ``n_tokens`` and ``content_hash`` (as in :class:`Tokens`).
    Per *short* line (at most ``max_key_tokens`` tokens), the only
    lines that can be boilerplate: ``line_doc``, ``line_ordinal`` (its rank
    among the document's lines with tokens) and ``line_key``.
    """

    n_tokens: np.ndarray
    content_hash: np.ndarray
    line_doc: np.ndarray
    line_ordinal: np.ndarray
    line_key: np.ndarray


def summarize(texts: pl.Series, seed: int, max_key_tokens: int) -> Summary:
    """:class:`Summary` of every text: one compiled pass that hashes tokens but stores none."""
    buf, offsets = token_buffer(texts)
    cls, lower = char_tables()
    bounds = _line_bounds(buf, offsets)
    l_start = np.zeros(len(bounds) + 1, dtype=np.int64)
    np.cumsum(bounds, out=l_start[1:])
    l_doc, l_key = np.zeros(int(l_start[-1]), dtype=np.int64), np.zeros(int(l_start[-1]), dtype=np.uint64)
    n = len(offsets) - 1
    n_tokens, content_hash = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.uint64)
    _summarize(buf, offsets, cls, lower, start_hash(seed), max_key_tokens, l_start, l_doc, l_key, n_tokens, content_hash)
    # Slots past a document's last line, and long lines, keep key 0.
    short = np.flatnonzero(l_key)
    line_doc = l_doc[short]
    return Summary(n_tokens, content_hash, line_doc, short - l_start[line_doc], l_key[short])


@dataclass(frozen=True)
class Tokens:
    """Tokens of a batch as flat arrays (no strings).

    Per token: ``hash`` (uint64 of the lower-cased token, seeded), ``doc``
    (row in the batch), ``line`` (batch-wide line number), ``anchor``,
    ``stop`` (a stopword).  Per line: ``line_doc``, ``line_key`` (0 for lines
    longer than ``max_key_tokens``).  Per document: ``n_tokens``
    and ``content_hash`` (of the lower-case token sequence: equal for exact
    duplicates).
    """

    hash: np.ndarray
    doc: np.ndarray
    line: np.ndarray
    anchor: np.ndarray
    stop: np.ndarray
    line_doc: np.ndarray
    line_key: np.ndarray
    n_tokens: np.ndarray
    content_hash: np.ndarray


def utf8_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """All texts as one UTF-8 byte buffer plus offsets (one copy, no per-text Python work)."""
    lengths = texts.str.len_bytes().fill_null(0).to_numpy().astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # As bytes, not str: no UTF-8 decode into a Python string and encode back.
    joined = texts.fill_null("").str.join("").cast(pl.Binary).item() if len(texts) else b""
    return np.frombuffer(joined, dtype=np.uint8), offsets


def token_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The bytes the tokeniser reads (:func:`token_text_expr` of every text) and their offsets.

    The check for characters NFKC would change runs compiled over the raw
    bytes; only the rare texts holding one go through polars' NFKC.
    """
    buf, offsets = utf8_buffer(texts)
    needs = _nfkc_rows(buf, offsets, char_tables()[0])
    if not needs.any():
        return buf, offsets
    rows = pl.Series(np.flatnonzero(needs), dtype=pl.UInt32)
    folded = pl.DataFrame({"t": texts.gather(rows)}).select(token_text_expr(pl.col("t")))["t"]
    return utf8_buffer(texts.clone().scatter(rows, folded))


#: Characters whose NFKC form tokenises differently (full-width forms, ligatures,
#: superscripts, circled and compatibility characters, combining marks).  Quotes,
#: dashes and spaces are separators before and after NFKC, so they need nothing.
_NFKC_SENSITIVE = (
    r"[\u00aa\u00b2\u00b3\u00b5\u00b9\u00ba\u00bc-\u00be\u0132\u0133\u013f\u0140\u0149\u017f"
    r"\u01c4-\u01cc\u01f1-\u01f3\u02b0-\u02b8\u0300-\u036f\u1d2c-\u1dbf\u2070-\u218f\u2460-\u24ff"
    r"\u2c7c\u2c7d\u3000-\u33ff\uf900-\ufaff\ufb00-\ufb4f\ufe00-\ufe6f\uff00-\uffef\U0001d400-\U0001d7ff]"
)


_SPACING_ACCENTS = "\u00b4\u00a8\u00af\u00b8\u02d8\u02d9\u02da\u02db\u02dc\u02dd"


def token_text_expr(text: pl.Expr) -> pl.Expr:
    """The text the tokeniser reads: NFKC, applied only where it changes tokens.

    NFKC is the costliest step of tokenising and almost all news is already
    in the form it would produce, so it runs only on texts holding a
    character it maps to other word characters.
    """
    # Spacing accents (´ ¨ ¯ ¸ ˘ ˙ ˚ ˛ ˜ ˝) decompose under NFKC into a space and a
    # combining mark that would glue onto the next word: fold them first.
    text = text.str.replace_many(list(_SPACING_ACCENTS), ["'"] + [" "] * (len(_SPACING_ACCENTS) - 1))
    return pl.when(text.str.contains(_NFKC_SENSITIVE)).then(text.str.normalize("NFKC")).otherwise(text)


@lru_cache(maxsize=16)
def stopword_hashes(seed: int) -> np.ndarray:
    """Sorted hashes of :data:`STOPWORDS` under ``seed`` (the tokeniser's own hash)."""
    words = pl.Series([" ".join(sorted(STOPWORDS))])
    return np.unique(_tokenize_buffer(*utf8_buffer(words), seed, 0, with_stop=False).hash)


def start_hash(seed: int) -> np.uint64:
    return np.uint64(xxhash.xxh64_intdigest(b"provenance-token", seed))


def _tokenize_buffer(buf: np.ndarray, offsets: np.ndarray, seed: int, max_key_tokens: int, *, with_stop: bool = True) -> Tokens:
    cls, lower = char_tables()
    start_h = start_hash(seed)
    stop_table = hash_table(stopword_hashes(seed)) if with_stop else np.zeros(16, dtype=np.uint64)
    per_doc_tokens, per_doc_lines = _count(buf, offsets, cls, lower, start_h, stop_table, max_key_tokens)
    t_start = np.zeros(len(per_doc_tokens) + 1, dtype=np.int64)
    l_start = np.zeros(len(per_doc_lines) + 1, dtype=np.int64)
    np.cumsum(per_doc_tokens, out=t_start[1:])
    np.cumsum(per_doc_lines, out=l_start[1:])
    nt, nl, n = int(t_start[-1]), int(l_start[-1]), len(offsets) - 1
    t_hash, t_doc, t_line = np.zeros(nt, np.uint64), np.zeros(nt, np.uint32), np.zeros(nt, np.int64)
    t_flags, l_doc, l_key = np.zeros(nt, np.uint8), np.zeros(nl, np.int64), np.zeros(nl, np.uint64)
    d_hash = np.zeros(n, np.uint64)
    _fill(buf, offsets, cls, lower, start_h, stop_table, max_key_tokens, t_start, l_start,
          t_hash, t_doc, t_line, t_flags, l_doc, l_key, d_hash)
    # flags: 0 plain, 1 capitalised, 2 number, 4 stopword.
    stop = t_flags == 4
    anchor = (t_flags == 1) | (t_flags == 2)
    return Tokens(t_hash, t_doc, t_line, anchor, stop, l_doc, l_key, per_doc_tokens, d_hash)


#: The tokeniser's UTF-8 decoder, for other compiled passes over :func:`token_buffer` bytes.
decode_utf8 = _decode


def tokenize_buffer(buf: np.ndarray, offsets: np.ndarray, seed: int, max_key_tokens: int) -> Tokens:
    """:func:`tokenize` of a :func:`token_buffer` the caller reads too (stopwords not marked)."""
    return _tokenize_buffer(buf, offsets, seed, max_key_tokens, with_stop=False)


def token_hashes(words: list[str], seed: int) -> np.ndarray:
    """The tokeniser's hash of each word (as :func:`tokenize` reads it), e.g. to look tokens up by text.

    Each entry must be exactly one token: anything else is a caller's mistake.
    """
    out = _tokenize_buffer(*token_buffer(pl.Series(words, dtype=pl.String)), seed, 0, with_stop=False)
    if (out.n_tokens != 1).any():
        bad = [w for w, n in zip(words, out.n_tokens.tolist()) if n != 1]
        raise ValueError(f"token_hashes takes single tokens; not one token: {bad[:3]!r}")
    return out.hash


def tokenize(texts: pl.Series, seed: int, *, max_key_tokens: int = 0) -> Tokens:
    """Tokens of every text in ``texts`` (see :class:`Tokens`), in one compiled pass.

    Lines of at most ``max_key_tokens`` tokens get a key (the boilerplate
    candidates); with the default 0 no line does.
    """
    return _tokenize_buffer(*token_buffer(texts), seed, max_key_tokens)


def boilerplate_keys(line_doc: np.ndarray, line_key: np.ndarray, min_docs: int) -> np.ndarray:
    """Sorted keys of boilerplate lines: short lines found in ``min_docs`` or more documents.

    Site furniture ("Leave a Reply", "Share this article", "Your email address
    will not be published") repeats verbatim across unrelated articles and
    would otherwise make them look alike.  Long lines are never boilerplate,
    so a story copied thousands of times keeps its paragraphs.
    """
    short = line_key != 0
    frame = pl.DataFrame({"doc": line_doc[short], "key": line_key[short]}).unique()
    common = frame.group_by("key").len().filter(pl.col("len") >= min_docs)
    return np.sort(common["key"].to_numpy().astype(np.uint64))


def boilerplate_lines(tokens: Tokens, keys: np.ndarray) -> np.ndarray:
    """Per line (with tokens): whether it is boilerplate (its key is in ``keys``)."""
    return sorted_member(tokens.line_key, keys) & (tokens.line_key != 0)


def boilerplate_tokens(tokens: Tokens, keys: np.ndarray) -> np.ndarray:
    """Per token: whether its line is boilerplate."""
    if len(keys) == 0 or len(tokens.hash) == 0:
        return np.zeros(len(tokens.hash), dtype=bool)
    return boilerplate_lines(tokens, keys)[tokens.line]
