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
strings are hashed once per distinct token (xxh64, seeded), so hashes are
stable across machines, processes and library versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import xxhash

from provenance.normalize import STOPWORDS, offsets_from_doc_index

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

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

    @staticmethod
    def concat(parts: list["ShingleSets"]) -> "ShingleSets":
        if not parts:
            return ShingleSets(np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.int64))
        hashes = np.concatenate([p.hashes for p in parts])
        sizes = np.concatenate([p.sizes() for p in parts])
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return ShingleSets(hashes, offsets)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * _C1
    h = h ^ (h >> np.uint64(33))
    h = h * _C2
    return h ^ (h >> np.uint64(33))


def hash_tokens(tokens: pl.Series, seed: int) -> np.ndarray:
    """Seeded xxh64 of every token, computed once per distinct token."""
    if tokens.len() == 0:
        return np.zeros(0, dtype=np.uint64)
    distinct = tokens.unique()
    values = np.fromiter(
        (xxhash.xxh64_intdigest(t.encode("utf-8"), seed) for t in distinct.to_list()), dtype=np.uint64, count=distinct.len()
    )
    mapped = tokens.replace_strict(distinct, pl.Series(values, dtype=pl.UInt64), return_dtype=pl.UInt64)
    return mapped.to_numpy()


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
            h = fmix64(h * _GOLDEN + token_hashes[k : k + count])
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
    order = np.lexsort((h32, doc))
    h32, doc = h32[order], doc[order]
    keep = np.ones(len(h32), dtype=bool)
    if len(h32) > 1:
        keep[1:] = (h32[1:] != h32[:-1]) | (doc[1:] != doc[:-1])
    h32, doc = h32[keep], doc[keep]
    return ShingleSets(h32, offsets_from_doc_index(doc, n_docs))


def lineage_sets(tokens: pl.DataFrame, n_docs: int, *, ngram: int, seed: int) -> ShingleSets:
    """Word ``ngram``-grams over *every* token, boilerplate lines and stopwords included.

    Not a matching view (site furniture would join unrelated pages): it is for
    choosing parents, where the header, footer and function-word choices a
    copy inherits from its parent are exactly the evidence wanted.
    """
    hashes, doc = ngram_hashes(hash_tokens(tokens["token"], seed), tokens["doc"].to_numpy(), ngram)
    return to_sets(hashes, doc, n_docs)


def shingle_views(
    tokens: pl.DataFrame, n_docs: int, *, word_ngram: int, anchor_ngram: int, seed: int
) -> dict[str, ShingleSets]:
    """Build every view's shingle sets from :func:`normalize.tokenize` rows.

    Rows flagged ``boilerplate`` (if the column is present) are left out of
    every view.
    """
    if "boilerplate" in tokens.columns:
        tokens = tokens.filter(~pl.col("boilerplate"))
    doc = tokens["doc"].to_numpy()
    token_hashes = hash_tokens(tokens["token"], seed)
    informative = (~tokens["token"].is_in(list(STOPWORDS))).to_numpy()
    word_h, word_doc = ngram_hashes(token_hashes, doc, word_ngram, informative)
    anchor_mask = tokens["anchor"].to_numpy()
    anchor_h, anchor_doc = ngram_hashes(token_hashes[anchor_mask], doc[anchor_mask], anchor_ngram)
    return {
        "words": to_sets(word_h, word_doc, n_docs),
        "anchors": to_sets(anchor_h, anchor_doc, n_docs),
    }
