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

import numpy as np

from provenance.normalize import Tokens, offsets_from_doc_index

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
