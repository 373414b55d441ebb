"""Documents as *units* (sentences and headings), and the lines that *float*: the input of the evidence of copying.

A unit is a sentence (a line cut at sentence ends) or a heading line, with its
character span in the document's ``text``.  Tokens are ``\\w+`` runs of the
text lower-cased with look-alike letters folded (``prepare.confusables``), as
every other tokeniser of the library reads them.

Kinds:

* ``COUNTABLE``: a sentence.  Its unquoted tokens are its *weight*: what it adds
  to a document's content and, when aligned, to the evidence.
* ``QUOTE``: a sentence with at least half its tokens inside double quotation
  marks.  Every article on an event repeats the same quotes, so a quote's
  words are never evidence (weight 0).
* ``HEADING``: a whole line without sentence punctuation and at most
  ``heading_max_tokens`` long: headlines, menus, bylines, datelines, "Email".
  It names or frames a story rather than telling it, and sites paste other
  stories' headlines around a copy (weight 0).
* ``SHORT``: a sentence of fewer than ``unit_min_tokens`` tokens ("He denied
  it."): too little text for a match to mean anything; left out.

Quotes and headings take part in alignment with no weight: a quote or a
headline matched in place next to a matched sentence is part of the copied
arrangement.

**Floating lines.**  A line that recurs in ``float_min_docs`` or more documents
and, in most of them, has different neighbouring sentence lines on *both*
sides is furniture (a newsletter blurb, a footer), a stock line or a wire
paragraph pasted into different texts: its units are never evidence on their
own (``link.evidence``).  A line that keeps a neighbour across its occurrences
is part of one recurring text (a syndicated story) and does not float, however
often it recurs.  A recurring *adjacency* of two sentence lines with varying
surroundings (a footer block of several short paragraphs) floats the same way,
and both its lines with it.  Whether a line floats is a pure function of the
corpus's per-line ``key, prev, next`` arrays (:func:`line_table`,
:func:`floating_keys`), so a run recomputes it exactly from the texts.

Everything is vectorised polars over lines, pieces and tokens; nothing loops
per document in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache

import numba
import numpy as np
import polars as pl

from provenance.config import EvidenceOptions
from provenance.kernels import GOLDEN, hash_table, in_table, mix64
from provenance.prepare.confusables import fold_expr
from provenance.prepare.normalize import STOPWORDS, decode_utf8, utf8_buffer

COUNTABLE, QUOTE, HEADING, SHORT = 0, 1, 2, 3
KIND_NAMES = ("countable", "quote", "heading", "short")

#: Hash seed of line and adjacency keys (any fixed value: keys are compared within one run only).
SEED = 0x5EED
_CLOSERS = "\"'\u201d\u2019)\\]"
_OPENERS = "\"'\u201c\u2018(\\["
#: A sentence ends at . ! ? or an ellipsis (and any closing quotes or brackets), before white space and
#: something that can open a sentence: the cut goes after the white space (group 2).
CUT_PATTERN = f"([.!?\u2026][{_CLOSERS}]*)(\\s+)([{_OPENERS}]?[A-Z0-9\u00c0-\u024f])"
#: A line that ends like a sentence (or a clause) is not a heading.
TERMINAL_PATTERN = f"[.!?\u2026:;][{_CLOSERS}]*\\s*$"
#: Quoted text: typographic double quotes say which way they face; a quote still open at the end of the line
#: runs to its end (news style reopens a quote at every paragraph it continues over); a closing mark with
#: nothing open before it ends a quote that began on an earlier line.  Single quotes are left alone: they are
#: apostrophes far more often than quotes.
QUOTE_PATTERN = '^[^"\u201c\u201e\u00ab\u201d\u00bb]*[\u201d\u00bb]|[\u201c\u201e\u00ab][^\u201d\u00bb]*(?:[\u201d\u00bb]|$)|"[^"]*(?:"|$)'
_CUT_MARK, _Q_OPEN, _Q_CLOSE = "\x00", "\x01", "\x02"
#: Every alternative of :data:`QUOTE_PATTERN` needs one of these: a line without them holds no quote.
_QUOTE_MARKS = '["\u201c\u201e\u00ab\u201d\u00bb]'
TOKEN = r"\w+"


@lru_cache(maxsize=1)
def word_chars() -> np.ndarray:
    """Per code point (all of Unicode, surrogates false): is it a :data:`TOKEN` character, as polars' regex reads it.

    Read from the regex itself, one pass over a string of every code point, so
    :func:`piece_tokens` cuts tokens exactly where ``str.extract_all(TOKEN)``
    would, whatever Unicode version the regex engine carries.
    """
    table = np.zeros(0x110000, dtype=np.bool_)
    for lo in range(0, 0x110000, 0x10000):  # a plane at a time: a small string, not one of a million characters
        points = np.arange(lo, lo + 0x10000)
        points = points[(points < 0xD800) | (points > 0xDFFF)]
        plane = "".join(map(chr, points.tolist()))
        marked = pl.select(pl.lit(plane).str.replace_all(r"\W", "\x00").str.replace_all(r"[^\x00]", "\x01")).item()
        table[points] = np.frombuffer(marked.encode("ascii"), dtype=np.uint8) == 1
    return table


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(cache=True, nogil=True, inline="always")
def _code_point(buf, i, end):  # pragma: no cover - compiled
    """(code point, byte length) at ``buf[i]``, with the ASCII case first (most of any news text)."""
    b0 = buf[i]
    if b0 < 0x80:
        return np.int64(b0), 1
    return decode_utf8(buf, i, end)


@numba.njit(cache=True, nogil=True)
def _scan_pieces(buf, offsets, word, stem_chars, stop_table, fill, n_tok, tok, stem, stop, key):  # pragma: no cover - compiled
    """Count (and with ``fill``, hash) the ``\\w+`` tokens of every text in ``buf``: returns the total.

    A token's hash is FNV-1a over its UTF-8 bytes, finalised (``mix64``); its
    stem's is the same hash stopped after ``stem_chars`` code points; a text's
    key chains its tokens' hashes in order.  A token is a
    stopword when its 64-bit hash is in ``stop_table`` (odds of mistaking a
    content word for one of the few stopwords: about 1 in 1e17).
    """
    total = 0
    for r in range(len(offsets) - 1):
        i, end = offsets[r], offsets[r + 1]
        count = 0
        k = _FNV_OFFSET
        inside = False
        h = s = _FNV_OFFSET
        chars = 0
        while i <= end:
            is_word = False
            size = 1
            if i < end:
                cp, size = _code_point(buf, i, end)
                is_word = word[cp]
            if is_word:
                if not inside:
                    inside = True
                    h = _FNV_OFFSET
                    chars = 0
                if fill:
                    for b in range(i, i + size):
                        byte = np.uint64(buf[b])
                        h = (h ^ byte) * _FNV_PRIME
                    chars += 1
                    if chars == stem_chars:
                        s = h
            elif inside:
                inside = False
                if fill:
                    if chars < stem_chars:
                        s = h
                    t = total + count
                    full = mix64(h)
                    k = mix64(k * GOLDEN + full)
                    tok[t] = np.int32(np.int64(full & np.uint64(0xFFFFFFFF)) - (np.int64(1) << 31))
                    stem[t] = np.int32(np.int64(mix64(s) & np.uint64(0xFFFFFFFF)) - (np.int64(1) << 31))
                    stop[t] = in_table(stop_table, full)
                count += 1
            i += size
        if fill:
            n_tok[r] = count
            key[r] = np.int64(mix64(k) >> np.uint64(1)) if count > 0 else np.int64(0)
        total += count
    return total


@lru_cache(maxsize=1)
def _stopword_table() -> np.ndarray:
    """:func:`kernels.hash_table` of :data:`STOPWORDS`' token hashes (:func:`_scan_pieces`'s own hash, finalised)."""
    words = sorted(STOPWORDS)
    hashes = np.empty(len(words), dtype=np.uint64)
    for w, word in enumerate(words):
        h = int(_FNV_OFFSET)
        for byte in word.encode("utf-8"):
            h = ((h ^ byte) * int(_FNV_PRIME)) & 0xFFFFFFFFFFFFFFFF
        hashes[w] = mix64(np.uint64(h))
    return hash_table(hashes)


@dataclass(frozen=True)
class PieceTokens:
    """The :data:`TOKEN` runs of some texts, hashed: per text ``n_tokens`` and ``key``; per token ``tok``, ``stem``, ``stop``."""

    n_tokens: np.ndarray
    key: np.ndarray
    tok: np.ndarray
    stem: np.ndarray
    stop: np.ndarray


def piece_tokens(texts: pl.Series, stem_chars: int) -> PieceTokens:
    """The tokens ``texts.str.extract_all(TOKEN)`` would give, hashed in one compiled pass without making their strings.

    Tokens are compared only by these hashes (within a pair of units, where a
    32-bit collision has odds of 1 in 4e9), so no token needs its own string.
    """
    buf, offsets = utf8_buffer(texts)
    word, stops = word_chars(), _stopword_table()
    none_i32, none_i64 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    total = _scan_pieces(buf, offsets, word, stem_chars, stops, False, none_i32, none_i32, none_i32, np.zeros(0, dtype=np.bool_), none_i64)
    n = len(offsets) - 1
    out = PieceTokens(np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int64), np.empty(total, dtype=np.int32),
                      np.empty(total, dtype=np.int32), np.empty(total, dtype=np.bool_))
    _scan_pieces(buf, offsets, word, stem_chars, stops, True, out.n_tokens, out.tok, out.stem, out.stop, out.key)
    return out


def _key(text: pl.Expr) -> pl.Expr:
    """A line's identity: the hash of its text, outer white space aside (furniture and stock lines recur verbatim)."""
    return text.str.strip_chars().hash(SEED).reinterpret(signed=True)


def _lines(texts: pl.Series, options: EvidenceOptions) -> pl.DataFrame:
    """One row per non-empty line: ``doc, line, start`` (character offset), ``text`` and its line-level kind flags."""
    frame = pl.DataFrame({"text": texts.fill_null("")}).with_row_index("doc").select(
        "doc", pl.col("text").str.split("\n").alias("text")
    )
    size = pl.element().str.len_chars() + 1
    lines = frame.with_columns(
        pl.int_ranges(0, pl.col("text").list.len(), dtype=pl.Int32).alias("line"),
        pl.col("text").list.eval(size.cum_sum() - size).alias("start"),
    ).explode("text", "line", "start").filter(pl.col("text").str.contains(TOKEN))
    lines = lines.with_columns(
        pl.col("start").cast(pl.Int64),
        # Words counted by their separating spaces: only line kinds depend on it, and a regex per token costs more
        # than the rest of the pass.
        (pl.col("text").str.count_matches(" ", literal=True) + 1).cast(pl.Int32).alias("n_tokens"),
    )
    heading = (
        ~pl.col("text").str.contains(CUT_PATTERN)
        & (pl.col("n_tokens") <= options.heading_max_tokens)
        & ~pl.col("text").str.contains(TERMINAL_PATTERN)
    )
    return lines.select(
        pl.col("doc").cast(pl.Int64), "line", "start", "text", "n_tokens",
        heading.alias("heading"),
        (~heading & (pl.col("n_tokens") >= options.unit_min_tokens)).alias("sentence"),
    )


def line_table(texts: pl.Series, options: EvidenceOptions, first_doc: int = 0) -> pl.DataFrame:
    """Per aligned line (a heading or a line holding a sentence): ``doc, line, key, sentence, prev, next``.

    ``prev``/``next``: keys of the nearest *sentence* lines before and after it
    in its document (null at an edge): sites paste headings and furniture
    between paragraphs, so heading lines never anchor.  ``doc`` counts from
    ``first_doc``, so tables of consecutive batches concatenate.
    """
    return _line_table_of(_lines(texts, options).filter(pl.col("heading") | pl.col("sentence")), first_doc)


def _line_table_of(lines: pl.DataFrame, first_doc: int = 0) -> pl.DataFrame:
    """:func:`line_table` from the aligned rows of :func:`_lines` (a heading or a sentence)."""
    keyed = lines.select((pl.col("doc") + first_doc).alias("doc"), "line", _key(pl.col("text")).alias("key"), "sentence")
    doc, key, sentence = keyed["doc"].to_numpy(), keyed["key"].to_numpy(), keyed["sentence"].to_numpy()
    prev, has_prev = _nearest_sentence(doc, key, sentence, before=True)
    after, has_next = _nearest_sentence(doc, key, sentence, before=False)
    return keyed.with_columns(
        pl.Series("prev", prev).set(pl.Series(~has_prev), None) if len(prev) else pl.Series("prev", prev),
        pl.Series("next", after).set(pl.Series(~has_next), None) if len(after) else pl.Series("next", after),
    )


def _nearest_sentence(doc: np.ndarray, key: np.ndarray, sentence: np.ndarray, *, before: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row (rows ordered by document, then line): key of the nearest sentence row before (after) it in its document."""
    n = len(doc)
    if n == 0:
        return key.copy(), np.zeros(0, dtype=bool)
    index = np.arange(n)
    if before:
        last = np.maximum.accumulate(np.where(sentence, index, -1))
        source = np.concatenate([[-1], last[:-1]])  # strictly before
    else:
        nxt = np.minimum.accumulate(np.where(sentence, index, n)[::-1])[::-1]
        source = np.concatenate([nxt[1:], [n]])  # strictly after
    valid = (source >= 0) & (source < n)
    clipped = np.clip(source, 0, n - 1)
    valid &= doc[clipped] == doc
    return np.where(valid, key[clipped], 0), valid


def _adjacencies(lines: pl.DataFrame) -> pl.DataFrame:
    """Per two consecutive sentence lines: ``doc, line`` (the first), ``link`` key, the lines around the pair."""
    body = lines.filter(pl.col("sentence")).select("doc", "line", "key")
    doc = body["doc"].to_numpy()
    if len(doc) > 1 and ((np.diff(doc) < 0).any() or not body["line"].is_sorted()):
        body = body.sort("doc", "line", maintain_order=True)

    def shifted(column: str, by: int) -> pl.Expr:
        """``column`` of the sentence line ``by`` rows on, within the same document (a plain shift: no window per document)."""
        return pl.when(pl.col("doc").shift(-by) == pl.col("doc")).then(pl.col(column).shift(-by))

    return body.with_columns(
        shifted("key", 1).alias("following"),
        shifted("line", 1).alias("next_line"),
        shifted("key", -1).alias("prev"),
        shifted("key", 2).alias("next"),
    ).filter(pl.col("following").is_not_null()).select(
        "doc", "line", "next_line", pl.struct("key", "following").hash(SEED).reinterpret(signed=True).alias("key"), "prev", "next"
    )


#: Rows of occurrences counted at once by :func:`_floating` (about 150 MiB of them).  Every row of a key is in the
#: same part (parts are cut on the key's low bits), so the keys found are the same whatever the number of parts;
#: only the hash tables of the count are smaller: a million documents' lines counted at once took 2.6 GiB more.
FLOAT_PART_ROWS = 4_000_000


def _floating(occurrences: pl.DataFrame, options: EvidenceOptions) -> np.ndarray:
    """Sorted keys (int64) that recur in ``float_min_docs``+ documents and are anchored on neither side.

    The count runs on parts of the key space of at most about :data:`FLOAT_PART_ROWS` rows each.
    """
    parts = 1 << max(0, int(np.ceil(np.log2(max(1, occurrences.height) / FLOAT_PART_ROWS))))
    if parts == 1:
        return _floating_part(occurrences, options)
    found = [_floating_part(occurrences.filter((pl.col("key") & (parts - 1)) == part), options) for part in range(parts)]
    return np.sort(np.concatenate(found))


def _floating_part(occurrences: pl.DataFrame, options: EvidenceOptions) -> np.ndarray:
    """:func:`_floating` of occurrences holding every row of each of their keys."""
    # Only keys on ``float_min_docs`` or more rows can be on that many documents: counting rows first keeps the
    # (key, doc) pass below to the recurring few, not the whole corpus's lines.
    often = occurrences.group_by("key").len().filter(pl.col("len") >= options.float_min_docs)["key"]
    occ = occurrences.filter(pl.col("key").is_in(often.implode())).select("key", "doc", "prev", "next")
    # Each document's first occurrence of a key (rows are in document order); what follows only groups, so the
    # rows' order need not be kept (half the cost at a million documents).
    occ = occ.unique(["key", "doc"], keep="first")
    df = occ.group_by("key").len("df").filter(pl.col("df") >= options.float_min_docs)
    occ = occ.join(df, on="key")
    if occ.height == 0:
        return np.zeros(0, dtype=np.int64)

    def anchored(side: str) -> pl.DataFrame:
        top = occ.filter(pl.col(side).is_not_null()).group_by("key", side).len("n").group_by("key").agg(pl.col("n").max())
        return df.join(top, on="key", how="left").select(
            "key", (pl.col("n").fill_null(0) >= options.anchor_min_share * pl.col("df")).alias(f"{side}_anchored")
        )

    flags = anchored("prev").join(anchored("next"), on="key")
    keys = flags.filter(~pl.col("prev_anchored") & ~pl.col("next_anchored"))["key"].to_numpy()
    return np.sort(keys.astype(np.int64))


@dataclass(frozen=True)
class Floating:
    """What floats in a corpus: sorted int64 keys of lines, and of adjacencies of two sentence lines."""

    lines: np.ndarray
    links: np.ndarray

    @staticmethod
    def nothing() -> Floating:
        return Floating(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def floating_keys(lines: pl.DataFrame | Callable[[], pl.DataFrame], options: EvidenceOptions) -> Floating:
    """Floating lines and adjacencies of a corpus, from its :func:`line_table` (all documents).

    ``lines`` may be a function that makes the table: then the table is dropped
    once its adjacencies are made, before they are counted (at a million
    documents each table is a gigabyte).
    """
    table = lines() if callable(lines) else lines
    del lines
    floating_lines = _floating(table, options)
    adjacencies = _adjacencies(table)
    del table
    return Floating(floating_lines, _floating(adjacencies, options))


@dataclass
class Units:
    """Aligned units (countable, quote, heading) of some documents as flat arrays, for the compiled aligner.

    Per document ``d`` (0-based among the documents given): units
    ``doc_lo[d]:doc_lo[d+1]`` in text order, content ``doc_weight[d]``, and an
    inverted index of its units' content stems, ``inv_stem/inv_unit[inv_lo[d]:inv_lo[d+1]]``
    sorted by stem (``inv_unit``: the unit's index within its document).  Per
    unit ``u``: tokens ``tok[tok_lo[u]:tok_lo[u+1]]`` (hashes), the number of
    its distinct content stems ``stem_lo[u+1] - stem_lo[u]`` (the stems
    themselves are only in the inverted index), ``n_stop`` (stopword
    tokens), ``key``, ``kind``, ``weight``, ``floating`` (its line floats, alone
    or in a floating adjacency), ``line`` (its line's number), ``link_floats``
    (the adjacency of its line to the next sentence line floats),
    ``next_line`` (that line's number, -1 at the end), ``start``/``end``
    (character span in the text) and ``pos2``: twice the number of sentences
    before it, minus one for a heading or quote, so gaps count in sentences and
    a zero-weight unit sits between the sentences around it.
    """

    doc_lo: np.ndarray
    doc_weight: np.ndarray
    inv_lo: np.ndarray
    inv_stem: np.ndarray
    inv_unit: np.ndarray
    tok_lo: np.ndarray
    tok: np.ndarray
    stem_lo: np.ndarray
    n_stop: np.ndarray
    key: np.ndarray
    kind: np.ndarray
    weight: np.ndarray
    floating: np.ndarray
    line: np.ndarray
    link_floats: np.ndarray
    next_line: np.ndarray
    pos2: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.doc_lo) - 1


def _pieces(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines cut into sentence pieces: ``doc, line, index, heading, n_pieces, start, end, folded, quoted``.

    ``folded``: the piece as tokens read it (:func:`fold_expr`); ``quoted``: how many of its tokens are quoted.
    Per-line positions (a piece's index, its offset in the line) come from
    cumulative sums over the exploded rows, and quotes are read only on the
    lines holding a double quotation mark: nothing else can match
    :data:`QUOTE_PATTERN`.
    """
    cut = pl.col("text").str.replace_all(CUT_PATTERN, f"${{1}}${{2}}{_CUT_MARK}${{3}}")
    listed = lines.select("doc", "line", "start", "heading", cut.str.split(_CUT_MARK).alias("piece"))
    n_pieces = listed["piece"].list.len().to_numpy().astype(np.int64)
    pieces = listed.with_columns(pl.Series("n_pieces", n_pieces, dtype=pl.UInt32)).explode("piece")
    first = _offsets(n_pieces)[:-1]  # each line's first exploded row
    within = np.arange(pieces.height, dtype=np.int64) - np.repeat(first, n_pieces)
    length = pieces["piece"].str.len_chars().to_numpy().astype(np.int64)
    before = np.cumsum(length) - length  # characters of the pieces before, over all lines
    offset = before - np.repeat(before[first], n_pieces)

    quoted = np.zeros(pieces.height, dtype=np.int32)
    quoting = np.flatnonzero(lines["text"].str.contains(_QUOTE_MARKS).to_numpy())
    if len(quoting):
        sizes = n_pieces[quoting]
        rows = _ranges(first[quoting], first[quoting] + sizes)  # the quoting lines' pieces among all pieces
        marked = lines[quoting].select(
            cut.str.replace_all(QUOTE_PATTERN, f"{_Q_OPEN}$0{_Q_CLOSE}").str.split(_CUT_MARK).alias("marked")
        ).explode("marked")
        opens = (marked["marked"].str.count_matches(_Q_OPEN, literal=True).to_numpy().astype(np.int64)
                 - marked["marked"].str.count_matches(_Q_CLOSE, literal=True).to_numpy().astype(np.int64))
        cum = np.cumsum(opens) - opens
        open_before = (cum - np.repeat(cum[_offsets(sizes)[:-1]], sizes)) > 0
        has_quote = open_before | marked["marked"].str.contains(_Q_OPEN, literal=True).to_numpy()
        text = marked.filter(pl.Series(has_quote)).select(
            pl.when(pl.Series(open_before[has_quote])).then(pl.lit(_Q_OPEN) + pl.col("marked")).otherwise(pl.col("marked"))
            .str.extract_all(f"{_Q_OPEN}[^{_Q_CLOSE}]*(?:{_Q_CLOSE}|$)").list.join(" ").str.count_matches(TOKEN)
        ).to_series()
        quoted[rows[has_quote]] = text.to_numpy()

    piece = pl.col("piece")
    lead = piece.str.len_chars() - piece.str.strip_chars_start().str.len_chars()
    trail = piece.str.len_chars() - piece.str.strip_chars_end().str.len_chars()
    at = pl.col("start") + pl.Series(offset)
    return pieces.select(
        "doc", "line", pl.Series("index", within, dtype=pl.Int32), "heading", "n_pieces",
        (at + lead).alias("start"),
        (at + piece.str.len_chars() - trail).alias("end"),
        fold_expr(piece).alias("folded"),
        pl.Series("quoted", quoted),
    )


def _kinds(pieces: pl.DataFrame, options: EvidenceOptions) -> pl.Expr:
    n = pl.col("n_tokens")
    return (
        pl.when(pl.col("heading") & (pl.col("n_pieces") == 1)).then(HEADING)
        .when(n < options.unit_min_tokens).then(SHORT)
        .when(2 * pl.col("quoted") >= n).then(QUOTE)
        .otherwise(COUNTABLE)
        .cast(pl.Int8)
    )


@numba.njit(cache=True, nogil=True)
def _stem_index(tok_lo, stem_hash, is_stop, doc_lo):  # pragma: no cover - compiled
    """Distinct content stems per unit (counted), stopword counts, and per document the (stem, unit) inverted index.

    The aligner reads a unit's stems only through the index, so they are not
    returned: four bytes less per posting.  A unit's few stems sort in place by insertion; a document's postings sort
    as ``stem << 32 | unit`` codes, distinct by construction, so one plain sort
    gives the order of a stable sort by stem.
    """
    n_units = len(tok_lo) - 1
    stem_lo = np.zeros(n_units + 1, dtype=np.int64)
    stems = np.empty(len(stem_hash), dtype=stem_hash.dtype)
    n_stop = np.zeros(n_units, dtype=np.int32)
    filled = 0
    for u in range(n_units):
        lo = filled
        for t in range(tok_lo[u], tok_lo[u + 1]):
            if is_stop[t]:
                n_stop[u] += 1
                continue
            x = stem_hash[t]
            k = filled
            while k > lo and stems[k - 1] > x:
                stems[k] = stems[k - 1]
                k -= 1
            stems[k] = x
            filled += 1
        k = lo
        for x in range(lo, filled):
            if x == lo or stems[x] != stems[x - 1]:
                stems[k] = stems[x]
                k += 1
        filled = k
        stem_lo[u + 1] = filled
    n_docs = len(doc_lo) - 1
    inv_lo = np.zeros(n_docs + 1, dtype=np.int64)
    inv_stem = np.empty(filled, dtype=stems.dtype)  # the units' stems, a document's sorted together
    inv_unit = np.empty(filled, dtype=np.int32)
    for d in range(n_docs):
        lo, hi = stem_lo[doc_lo[d]], stem_lo[doc_lo[d + 1]]
        codes = np.empty(hi - lo, dtype=np.int64)
        for u in range(doc_lo[d], doc_lo[d + 1]):
            for x in range(stem_lo[u], stem_lo[u + 1]):
                codes[x - lo] = (np.int64(stems[x]) << 32) | np.int64(u - doc_lo[d])
        codes.sort()
        for x in range(hi - lo):
            inv_stem[lo + x] = np.int32(codes[x] >> 32)
            inv_unit[lo + x] = np.int32(codes[x] & 0xFFFFFFFF)
        inv_lo[d + 1] = hi
    return stem_lo, n_stop, inv_lo, inv_stem, inv_unit


#: The axis each field of :class:`Units` runs along (its length), when not the units.
FIELD_AXES = {
    "doc_lo": "docs", "doc_weight": "docs", "inv_lo": "docs",
    "inv_stem": "postings", "inv_unit": "postings",
    "tok": "tokens",
}
#: The offset arrays and the axis each one counts along (one entry more than their own axis, from 0).
OFFSET_COUNTS = {"doc_lo": "units", "inv_lo": "postings", "tok_lo": "tokens", "stem_lo": "stems"}
FIELDS = tuple(f.name for f in fields(Units))


def field_axis(name: str) -> str:
    """The axis field ``name`` of :class:`Units` runs along."""
    return FIELD_AXES.get(name, "units")


def axis_lengths(u: Units) -> dict[str, int]:
    """Lengths of ``u``'s axes: documents, units, postings, tokens and (counted by ``stem_lo``, not stored) stems."""
    return {"docs": u.n_docs, "units": len(u.key), "postings": len(u.inv_stem), "tokens": len(u.tok), "stems": int(u.stem_lo[-1])}


def concat_units(parts: list[Units]) -> Units:
    """One :class:`Units` of consecutive batches of documents (offsets shifted, per-unit arrays joined).

    It consumes ``parts``: each array is dropped from them as soon as it is
    joined, so the peak holds the result and one array's parts, not every
    batch twice (at a million documents the units are gigabytes).
    """
    if len(parts) == 1:
        return parts[0]
    lengths = [axis_lengths(part) for part in parts]  # taken before anything is dropped
    joined: dict[str, np.ndarray] = {}
    for name in FIELDS:
        pieces = [getattr(part, name) for part in parts]
        for part in parts:
            setattr(part, name, None)
        if name in OFFSET_COUNTS:
            shifts = np.concatenate([[0], np.cumsum([length[OFFSET_COUNTS[name]] for length in lengths[:-1]])]).astype(np.int64)
            pieces = [np.zeros(1, dtype=np.int64)] + [piece[1:] + shift for piece, shift in zip(pieces, shifts.tolist())]
        joined[name] = np.concatenate(pieces)
        del pieces
    return Units(**joined)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The indices ``lo[i]:hi[i]`` of every ``i``, one after another."""
    n = hi - lo
    starts = _offsets(n)
    return np.repeat(lo - starts[:-1], n) + np.arange(int(starts[-1]), dtype=np.int64)


def subset_units(u: Units, docs: np.ndarray) -> Units:
    """The :class:`Units` of documents ``docs`` (ascending, distinct positions in ``u``) alone: what :func:`build_units` gives on their texts.

    A document's units depend on its own text and the corpus's floating lines
    only, so the units of fewer documents are a selection, not a rebuild.  It
    consumes ``u`` (each array is dropped as soon as its selection is made)
    and selects with masks, one byte per token: at a million documents an
    index of the kept tokens would be gigabytes, next to the units themselves.
    """
    docs = np.asarray(docs, dtype=np.int64)
    if len(docs) > 1 and (np.diff(docs) <= 0).any():
        raise ValueError("subset_units: pass the documents as ascending, distinct positions (np.unique gives them)")
    keep = {"docs": np.zeros(u.n_docs, dtype=bool)}  # per axis, what is kept
    keep["docs"][docs] = True
    keep["units"] = np.repeat(keep["docs"], np.diff(u.doc_lo))
    keep["postings"] = np.repeat(keep["docs"], np.diff(u.inv_lo))
    keep["tokens"] = np.repeat(keep["units"], np.diff(u.tok_lo))
    chosen: dict[str, np.ndarray] = {}
    for name in FIELDS:
        array, kept = getattr(u, name), keep[field_axis(name)]
        # An offset array keeps the counts of its kept entries; ``inv_unit`` (a unit's index within its document)
        # and every other field keep their values.
        chosen[name] = _offsets(np.diff(array)[kept]) if name in OFFSET_COUNTS else array[kept]
        setattr(u, name, None)
    return Units(**chosen)


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def build_units(texts: pl.Series, floating: Floating, options: EvidenceOptions) -> Units:
    """:class:`Units` of ``texts`` (documents ``0..len-1``) under the corpus's ``floating`` lines.

    A document's lines (:func:`line_table`) are facts of its own text, so they
    are read here from the texts, not carried over from the corpus's pass.
    """
    n_docs = len(texts)
    raw = _lines(texts, options).filter(pl.col("heading") | pl.col("sentence"))
    lines = _line_table_of(raw)
    pieces = _pieces(raw)
    tokens = piece_tokens(pieces["folded"], options.stem_chars)
    pieces = pieces.drop("folded").with_columns(pl.Series("n_tokens", tokens.n_tokens), pl.Series("key", tokens.key))
    pieces = pieces.with_columns(_kinds(pieces, options).alias("kind"))
    kept = (tokens.n_tokens > 0) & (pieces["kind"].to_numpy() != SHORT)
    pieces = pieces.filter(pl.Series(kept))
    kept_tokens = np.repeat(kept, tokens.n_tokens)

    # Line facts: key, floating alone, in a floating adjacency, the next sentence line and whether that link floats.
    adj = _adjacencies(lines)
    adj = adj.with_columns(pl.col("key").is_in(pl.Series(floating.links, dtype=pl.Int64).implode()).alias("link_floats"))
    block = pl.concat([
        adj.filter("link_floats").select("doc", "line"),
        adj.filter("link_floats").select("doc", pl.col("next_line").alias("line")),
    ]).unique().with_columns(pl.lit(True).alias("in_block"))
    facts = (
        lines.select("doc", "line", "key")
        .with_columns(pl.col("key").is_in(pl.Series(floating.lines, dtype=pl.Int64).implode()).alias("line_floats"))
        .join(block, on=["doc", "line"], how="left")
        .join(adj.select("doc", "line", "next_line", "link_floats"), on=["doc", "line"], how="left")
        .select(
            "doc", "line",
            (pl.col("line_floats") | pl.col("in_block").fill_null(False)).alias("floating"),
            pl.col("link_floats").fill_null(False),
            pl.col("next_line").fill_null(-1).cast(pl.Int32),
        )
    )
    units = pieces.join(facts, on=["doc", "line"], how="left", maintain_order="left")
    weight = pl.when(pl.col("kind") == COUNTABLE).then(pl.col("n_tokens") - pl.col("quoted")).otherwise(0)
    sentences_before = (pl.col("kind") == COUNTABLE).cast(pl.Int64).cum_sum().over("doc")
    units = units.with_columns(
        weight.cast(pl.Int32).alias("weight"),
        pl.when(pl.col("kind") == COUNTABLE).then(2 * (sentences_before - 1)).otherwise(2 * sentences_before - 1).alias("pos2"),
        (pl.int_range(pl.len()).over("doc")).cast(pl.Int32).alias("local"),
    ).with_row_index("unit")

    token_hash, stem_hash, is_stop = tokens.tok[kept_tokens], tokens.stem[kept_tokens], tokens.stop[kept_tokens]
    tok_lo = _offsets(units["n_tokens"].to_numpy())
    doc_of_unit = units["doc"].to_numpy().astype(np.int64)
    doc_lo = _offsets(np.bincount(doc_of_unit, minlength=n_docs))
    stem_lo, stop_counts, inv_lo, inv_stem, inv_unit = _stem_index(tok_lo, stem_hash, is_stop, doc_lo)
    return Units(
        doc_lo=doc_lo,
        doc_weight=np.bincount(doc_of_unit, weights=units["weight"].to_numpy(), minlength=n_docs).astype(np.int64),
        inv_lo=inv_lo,
        inv_stem=inv_stem,
        inv_unit=inv_unit,
        tok_lo=tok_lo,
        tok=token_hash,
        stem_lo=stem_lo,
        n_stop=stop_counts,
        key=units["key"].to_numpy(),
        kind=units["kind"].to_numpy().astype(np.int8),
        weight=units["weight"].to_numpy().astype(np.int32),
        floating=units["floating"].fill_null(False).to_numpy().astype(np.bool_),
        line=units["line"].to_numpy().astype(np.int32),
        link_floats=units["link_floats"].fill_null(False).to_numpy().astype(np.bool_),
        next_line=units["next_line"].fill_null(-1).to_numpy().astype(np.int32),
        pos2=units["pos2"].to_numpy().astype(np.int64),
        start=units["start"].to_numpy().astype(np.int64),
        end=units["end"].to_numpy().astype(np.int64),
    )
