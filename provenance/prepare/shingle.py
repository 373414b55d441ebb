"""Shingle views: flat arrays of 32-bit shingle hashes with per-document offsets.

A *view* is one way of cutting a document into a set of shingles.  Each view
gets its own MinHash signature and LSH index, and candidate pairs from any view
are verified on the exact sets.  Two views ship:

* ``words``: word n-grams (lower case).  Robust to punctuation and case noise;
  finds copies, truncations and excerpts.
* ``anchors``: n-grams over the subsequence of anchor tokens (names, places,
  numbers).  A spun copy replaces ~30-60% of its words, which leaves almost no
  word 5-gram intact, but keeps its anchors in order.

Everything is numpy over flat arrays: no Python loop per document.  Token
hashes come from the compiled tokeniser (``normalize.tokenize``): seeded and
computed from the text alone, so they are stable across machines, processes
and library versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from provenance.kernels import GOLDEN, fmix64, hash_table, in_table, mix64, offsets_from_doc_index, radix_sort32
from provenance.prepare import normalize
from provenance.prepare.normalize import Tokens

VIEWS: tuple[str, ...] = ("words", "anchors")


@dataclass(frozen=True)
class ShingleSets:
    """Sorted, de-duplicated shingle hashes of every document of a batch.

    ``hashes[offsets[i]:offsets[i+1]]`` is document ``i``'s set (uint32,
    ascending).  Sorted sets make exact intersections a linear merge.
    """

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return self.hashes[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: np.ndarray) -> "ShingleSets":
        """The sets of ``rows``, in that order (vectorised gather)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, sizes = self.offsets[rows], self.sizes()[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        index = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1], dtype=np.int64)
        return ShingleSets(self.hashes[index], offsets)

    def only(self, rows: np.ndarray, batch: int = 50_000) -> "ShingleSets":
        """The same documents with every set but those of ``rows`` (ascending) emptied: what is left to read, in less memory.

        Gathered ``batch`` rows at a time into the result, so the gather's index never spans all of them.
        """
        rows = np.asarray(rows, dtype=np.int64)
        sizes = np.zeros(len(self.offsets) - 1, dtype=np.int64)
        sizes[rows] = self.sizes()[rows]
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        hashes = np.empty(int(offsets[-1]), dtype=self.hashes.dtype)
        for lo in range(0, len(rows), batch):
            part = self.take(rows[lo : lo + batch]).hashes
            start = int(offsets[rows[lo]])
            hashes[start : start + len(part)] = part
        return ShingleSets(hashes, offsets)

    @staticmethod
    def concat(parts: list["ShingleSets"]) -> "ShingleSets":
        if not parts:
            return ShingleSets(np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.int64))
        hashes = np.concatenate([p.hashes for p in parts])
        sizes = np.concatenate([p.sizes() for p in parts])
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return ShingleSets(hashes, offsets)


def ngram_hashes(
    token_hashes: np.ndarray, doc: np.ndarray, n: int, informative: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of ``n`` consecutive tokens within one document.

    Returns ``(hashes uint64, doc index)``; runs that would cross a document
    boundary are dropped, and so are runs without any ``informative`` token
    (a bigram like "of the" is in every English text and says nothing about
    copying).  The combination is order-sensitive and avalanche-mixed.
    """
    total = len(token_hashes)
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=doc.dtype)
    count = total - n + 1
    with np.errstate(over="ignore"):
        h = token_hashes[:count].copy()
        for k in range(1, n):
            h = fmix64(h * GOLDEN + token_hashes[k : k + count])
    valid = doc[:count] == doc[n - 1 : n - 1 + count]
    if informative is not None:
        running = np.zeros(total + 1, dtype=np.int64)
        np.cumsum(informative, out=running[1:])
        valid &= (running[n : n + count] - running[:count]) > 0
    return h[valid], doc[:count][valid]


def to_sets(hashes: np.ndarray, doc: np.ndarray, n_docs: int) -> ShingleSets:
    """Fold 64-bit shingle hashes to 32 bits and make per-document sorted sets.

    32 bits match datasketch's default hash width; with a few thousand
    shingles per document the chance of a false shared shingle between two
    documents is about 1e-4 per pair, far below any threshold we use.
    """
    with np.errstate(over="ignore"):
        h32 = ((hashes >> np.uint64(32)) ^ hashes).astype(np.uint32)
    # One sort of (doc << 32 | hash) orders by document, then hash; then drop repeats.
    keys = np.sort((doc.astype(np.uint64) << np.uint64(32)) | h32.astype(np.uint64))
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    doc = (keys >> np.uint64(32)).astype(np.int64)
    return ShingleSets((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets_from_doc_index(doc, n_docs))


def lineage_sets(tokens: Tokens, n_docs: int, *, ngram: int) -> ShingleSets:
    """Word ``ngram``-grams over *every* token, boilerplate lines and stopwords included.

    Not a matching view (site furniture would join unrelated pages): it is for
    choosing parents, where the header, footer and function-word choices a
    copy inherits from its parent are exactly the evidence wanted.
    """
    hashes, doc = ngram_hashes(tokens.hash, tokens.doc, ngram)
    return to_sets(hashes, doc, n_docs)


def shingle_views(
    tokens: Tokens, n_docs: int, *, word_ngram: int, anchor_ngram: int, boilerplate: np.ndarray | None = None
) -> dict[str, ShingleSets]:
    """Build every view's shingle sets from :func:`normalize.tokenize`'s arrays.

    Tokens flagged in ``boilerplate`` are left out of every view.
    """
    keep = ~boilerplate if boilerplate is not None else np.ones(len(tokens.hash), dtype=bool)
    token_hashes, doc = tokens.hash[keep], tokens.doc[keep]
    word_h, word_doc = ngram_hashes(token_hashes, doc, word_ngram, ~tokens.stop[keep])
    anchor = tokens.anchor[keep]
    anchor_h, anchor_doc = ngram_hashes(token_hashes[anchor], doc[anchor], anchor_ngram)
    return {
        "words": to_sets(word_h, word_doc, n_docs),
        "anchors": to_sets(anchor_h, anchor_doc, n_docs),
    }


# ---------------------------------------------------------------------------- fused: text to views


@numba.njit(cache=True, nogil=True, inline="always")
def _fold32(h):  # pragma: no cover - compiled
    return np.uint32((h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF)))


@numba.njit(cache=True, nogil=True, inline="always")
def _ngram(hashes, k, n):  # pragma: no cover - compiled
    h = hashes[k]
    for j in range(1, n):
        h = mix64(h * GOLDEN + hashes[k + j])
    return h


@numba.njit(cache=True, nogil=True)
def _sorted_distinct(values, lo, count):  # pragma: no cover - compiled
    """Sort ``values[lo:lo+count]`` in place and drop repeats; returns how many are left."""
    if count == 0:
        return 0
    part = values[lo : lo + count]
    radix_sort32(part, np.empty(count, dtype=values.dtype))
    kept = 1
    for k in range(1, count):
        if part[k] != part[kept - 1]:
            part[kept] = part[k]
            kept += 1
    return kept


@numba.njit(cache=True, nogil=True, parallel=True)
def _views(buf, offsets, cls, lower, start_h, stop_table, max_key_tokens, bp_table, t_start, word_n, anchor_n,
           words, n_words, anchors, n_anchors, bp_lines, n_bp_lines, n_bp_tokens, wrong):  # pragma: no cover - compiled
    """Per document: tokenise into scratch, leave boilerplate lines out, write both views' sorted sets.

    Document ``d`` writes at ``t_start[d]`` on: its token count bounds its
    n-grams and its lines.  A document with more tokens than its room (a
    caller's wrong count) writes nothing and is flagged in ``wrong``.
    """
    for d in numba.prange(len(offsets) - 1):
        base = t_start[d]
        size = (offsets[d + 1] - offsets[d]) // 2 + 1  # a token takes a byte and a separator
        t_hash = np.empty(size, dtype=np.uint64)
        t_doc = np.empty(size, dtype=np.uint32)
        t_line = np.empty(size, dtype=np.int64)
        t_flag = np.empty(size, dtype=np.uint8)
        l_doc = np.empty(size, dtype=np.int64)
        l_key = np.empty(size, dtype=np.uint64)
        d_hash = np.empty(1, dtype=np.uint64)
        nt, nl = normalize.scan_doc(buf, offsets[d], offsets[d + 1], cls, lower, start_h, stop_table, max_key_tokens,
                                     True, True, 0, 0, t_hash, t_doc, t_line, t_flag, l_doc, l_key, 0, d_hash)
        if nt != t_start[d + 1] - base:
            wrong[d] = True
            continue
        # Boilerplate lines: short lines whose key recurs across the corpus.
        is_bp = np.zeros(nl, dtype=np.bool_)
        count = 0
        for line in range(nl):
            if l_key[line] != 0 and in_table(bp_table, l_key[line]):
                is_bp[line] = True
                bp_lines[base + count] = line
                count += 1
        n_bp_lines[d] = count
        # Keep the other tokens (compacted in place), then the anchors among them.
        kept = 0
        for k in range(nt):
            if is_bp[t_line[k]]:
                continue
            t_hash[kept] = t_hash[k]
            t_flag[kept] = t_flag[k]
            kept += 1
        n_bp_tokens[d] = nt - kept
        # Word n-grams with at least one non-stopword (flags: 1 capitalised, 2 number, 4 stopword).
        count = 0
        for k in range(kept - word_n + 1):
            for j in range(word_n):
                if t_flag[k + j] != 4:
                    words[base + count] = _fold32(_ngram(t_hash, k, word_n))
                    count += 1
                    break
        n_words[d] = _sorted_distinct(words, base, count)
        n_anchor_tokens = 0
        for k in range(kept):
            if t_flag[k] == 1 or t_flag[k] == 2:
                t_hash[n_anchor_tokens] = t_hash[k]
                n_anchor_tokens += 1
        count = 0
        for k in range(n_anchor_tokens - anchor_n + 1):
            anchors[base + count] = _fold32(_ngram(t_hash, k, anchor_n))
            count += 1
        n_anchors[d] = _sorted_distinct(anchors, base, count)


@numba.njit(cache=True, nogil=True, parallel=True)
def _compact(values, starts, sizes, offsets, out):  # pragma: no cover - compiled
    for d in numba.prange(len(sizes)):
        out[offsets[d] : offsets[d] + sizes[d]] = values[starts[d] : starts[d] + sizes[d]]


def _ragged(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> ShingleSets:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=values.dtype)
    _compact(values, starts, sizes, offsets, out)
    return ShingleSets(out, offsets)


@dataclass(frozen=True)
class TextViews:
    """:func:`text_views` of a batch: every view's sets, plus what boilerplate took out.

    ``boilerplate_lines`` holds each document's boilerplate lines as ordinals
    among its lines with tokens (a ragged array in the same layout as a view).
    """

    views: dict[str, ShingleSets]
    boilerplate_lines: ShingleSets
    boilerplate_tokens: int


def text_views(
    texts: pl.Series, n_tokens: np.ndarray, boilerplate_keys: np.ndarray, *, seed: int, word_ngram: int, anchor_ngram: int,
    max_key_tokens: int,
) -> TextViews:
    """Text to shingle views in one compiled pass per document (parallel over documents).

    The same sets as :func:`shingle_views` over :func:`normalize.tokenize`
    with boilerplate tokens flagged, without the batch's token arrays ever
    existing: each document is tokenised into scratch, shingled, sorted and
    de-duplicated where it is.  ``n_tokens`` (from :func:`normalize.summarize`)
    sizes every document's room.
    """
    buf, offsets = normalize.token_buffer(texts)
    cls, lower = normalize.char_tables()
    n_tokens = np.asarray(n_tokens, dtype=np.int64)
    if len(n_tokens) != len(offsets) - 1:
        raise ValueError(f"text_views needs one token count per text: {len(n_tokens)} counts for {len(offsets) - 1} texts")
    t_start = np.zeros(len(n_tokens) + 1, dtype=np.int64)
    np.cumsum(n_tokens, out=t_start[1:])
    total, n = int(t_start[-1]), len(n_tokens)
    words, anchors, bp_lines = np.empty(total, np.uint32), np.empty(total, np.uint32), np.empty(total, np.int32)
    n_words, n_anchors, n_bp_lines, n_bp_tokens = (np.zeros(n, np.int64) for _ in range(4))
    wrong = np.zeros(n, dtype=np.bool_)
    _views(buf, offsets, cls, lower, normalize.start_hash(seed), hash_table(normalize.stopword_hashes(seed)),
           max_key_tokens, hash_table(boilerplate_keys), t_start, word_ngram, anchor_ngram,
           words, n_words, anchors, n_anchors, bp_lines, n_bp_lines, n_bp_tokens, wrong)
    if wrong.any():
        raise ValueError(f"text_views: n_tokens does not match text {int(np.argmax(wrong))}; pass normalize.summarize(texts).n_tokens")
    starts = t_start[:-1]
    return TextViews(
        {"words": _ragged(words, starts, n_words), "anchors": _ragged(anchors, starts, n_anchors)},
        _ragged(bp_lines, starts, n_bp_lines),
        int(n_bp_tokens.sum()),
    )
