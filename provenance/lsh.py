"""LSH banding over MinHash signatures: candidate pairs in linear time.

A signature of ``num_perm`` slots is cut into ``b`` bands of ``r`` rows; two
documents become candidates when any band is identical, which happens with
probability ``1 - (1 - J**r)**b`` for Jaccard ``J``.  ``(b, r)`` come from
datasketch's own optimiser (``MinHashLSH``'s ``_optimal_param``) for the
threshold, so the banding is the one ``MinHashLSH(threshold, num_perm)``
would use; the buckets are found by sorting each band's keys (numpy) instead of a Python
dict insert per document.

A bucket holding a viral story's 5,000 copies would yield 12.5 million pairs
if expanded fully.  Clustering only needs connectivity, and parent choice only
needs a few close neighbours, so each member is paired with the next
``window`` members in the bucket's order (longest first): the number of pairs
grows as ``window * bucket size``, never with its square.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from datasketch.lsh import _optimal_param

from provenance.minhash import EMPTY
from provenance.shingle import fmix64

PAIRS_SCHEMA = pl.Schema({"a": pl.UInt32, "b": pl.UInt32})
#: Bands bucketed together: bounds the bucket table to this many rows per document.
BANDS_PER_CHUNK = 16


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: sort and drop repeats (numpy 2's hash-based ``np.unique`` is ~100x slower here)."""
    values = np.sort(values)
    if len(values) > 1:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def band_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` minimising datasketch's weighted FP+FN for ``threshold``."""
    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(b), int(r)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n_docs, bands)`` uint64 keys, one hash per band of ``rows`` slots."""
    n = signatures.shape[0]
    keys = np.zeros((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n, np.uint64(band + 1), dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                h = fmix64(h * np.uint64(0x9E3779B97F4A7C15) + signatures[:, col].astype(np.uint64))
            keys[:, band] = h
    return keys


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs from ``a << 32 | b`` codes."""
    return (packed >> np.uint64(32)).astype(np.int64), (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


def candidate_pairs(
    signatures: np.ndarray,
    rank: np.ndarray,
    *,
    threshold: float,
    window: int,
    accept: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pl.DataFrame:
    """Unique candidate pairs ``(a, b)`` with ``a < b`` (row indices, UInt32).

    ``rank`` orders members inside a bucket (lower first); rows whose signature
    is empty (no shingle in this view) are never candidates.  ``accept``, if
    given, filters each chunk's distinct pairs (packed ``a << 32 | b``) as they
    are found, so a caller that verifies them keeps only what passes: at a
    million documents the unfiltered candidates would not fit in memory.
    """
    n, num_perm = signatures.shape
    bands, rows = band_params(threshold, num_perm)
    nonempty = ~(signatures == EMPTY).all(axis=1)
    docs = np.flatnonzero(nonempty).astype(np.uint32)
    if len(docs) < 2:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    rank_of = np.asarray(rank)[docs].astype(np.int64)
    present = signatures if len(docs) == n else signatures[docs]
    found = np.zeros(0, dtype=np.uint64)  # distinct packed pairs so far, sorted
    # A few bands at a time keeps the key matrix small; each band is one
    # lexsort (bucket, then rank, then row) and `window` shifted comparisons.
    for first in range(0, bands, BANDS_PER_CHUNK):
        chunk = range(first, min(bands, first + BANDS_PER_CHUNK))
        keys = band_keys(present[:, first * rows : chunk.stop * rows], len(chunk), rows)
        chunk_pairs: list[np.ndarray] = []
        for column in range(len(chunk)):
            key = keys[:, column]
            order = np.lexsort((docs, rank_of, key))
            sorted_key, sorted_doc = key[order], docs[order].astype(np.uint64)
            for step in range(1, window + 1):
                same = sorted_key[step:] == sorted_key[:-step]
                if not same.any():
                    break
                x, y = sorted_doc[:-step][same], sorted_doc[step:][same]
                chunk_pairs.append((np.minimum(x, y) << np.uint64(32)) | np.maximum(x, y))
        # Near-duplicates collide in most bands: fold each chunk's repeats away
        # at once, so memory holds distinct pairs, not one copy per band.
        if chunk_pairs:
            fresh = sorted_unique(np.concatenate(chunk_pairs))
            if accept is not None:
                fresh = accept(fresh)
            found = sorted_unique(np.concatenate([found, fresh]))
    if len(found) == 0:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    packed = found
    a, b = unpack(packed)
    return pl.DataFrame({"a": a, "b": b}, schema=PAIRS_SCHEMA)


def sharing_buckets(signatures: np.ndarray, probes: np.ndarray, *, threshold: float, window: int) -> np.ndarray:
    """Per row of ``signatures``: whether it shares a crowded bucket of some band with a row of ``probes``.

    An incremental run asks this of the documents that left the corpus (old
    versions).  In a bucket that lost a member, two remaining members may now
    be within ``window`` of each other, so their pairs must be looked at
    afresh; a bucket of at most ``window + 1`` members paired everyone anyway,
    so only larger ones count (most chance collisions are pairs and triples).
    """
    n, num_perm = signatures.shape
    out = np.zeros(n, dtype=bool)
    probes = probes[~(probes == EMPTY).all(axis=1)]
    if n == 0 or len(probes) == 0:
        return out
    bands, rows = band_params(threshold, num_perm)
    nonempty = ~(signatures == EMPTY).all(axis=1)
    for first in range(0, bands, BANDS_PER_CHUNK):
        stop = min(bands, first + BANDS_PER_CHUNK)
        keys = band_keys(signatures[:, first * rows : stop * rows], stop - first, rows)
        probe_keys = band_keys(probes[:, first * rows : stop * rows], stop - first, rows)
        for column in range(stop - first):
            key = np.where(nonempty, keys[:, column], np.uint64(0))
            both = np.sort(np.concatenate([key[nonempty], probe_keys[:, column]]))
            hit = np.isin(key, sorted_unique(probe_keys[:, column]), kind="sort") & nonempty
            if not hit.any():
                continue
            # Members of each hit bucket, the departed included.
            size = np.searchsorted(both, key[hit], side="right") - np.searchsorted(both, key[hit], side="left")
            out[np.flatnonzero(hit)[size > window + 1]] = True
    return out
