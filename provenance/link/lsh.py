"""LSH banding over MinHash signatures: candidate pairs in linear time.

A signature of ``num_perm`` slots is cut into ``b`` bands of ``r`` rows; two
documents become candidates when any band is identical, which happens with
probability ``1 - (1 - J**r)**b`` for Jaccard ``J``.  ``(b, r)`` come from
datasketch's own optimiser (``MinHashLSH``'s ``_optimal_param``) for the
threshold, so the banding is the one ``MinHashLSH(threshold, num_perm)``
would use; the buckets are found by radix-sorting each band's keys instead of a Python
dict insert per document.

A bucket holding a viral story's 5,000 copies would yield 12.5 million pairs
if expanded fully.  Clustering only needs connectivity, and parent choice only
needs a few close neighbours, so each member is paired with the next
``window`` members in the bucket's order (longest first): the number of pairs
grows as ``window * bucket size``, never with its square.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numba
import numpy as np
import polars as pl
from datasketch.lsh import _optimal_param

from provenance.kernels import GOLDEN, mix64, radix_sort_by_high32, sorted_member, sorted_unique
from provenance.prepare.minhash import EMPTY

PAIRS_SCHEMA = pl.Schema({"a": pl.UInt32, "b": pl.UInt32})
#: Bands bucketed together: bounds the bucket table to this many rows per document.
BANDS_PER_CHUNK = 16


@lru_cache(maxsize=64)
def band_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` minimising datasketch's weighted FP+FN for ``threshold``."""
    b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(b), int(r)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n_docs, bands)`` uint64 keys, one hash per band of ``rows`` slots (see :func:`_band_keys`)."""
    return _band_keys(signatures, 0, bands, rows, 0).T


@numba.njit(cache=True, nogil=True, parallel=True)
def _band_keys(sig, first, stop, rows, col0):  # pragma: no cover - compiled
    """``(stop - first, n)`` keys: band ``b``'s ``rows`` slots chained through ``fmix64``, seeded with ``b + 1``.

    ``sig`` holds the signatures' columns from ``col0`` on (a band slice's columns only, or all of them).
    """
    n = sig.shape[0]
    keys = np.empty((stop - first, n), dtype=np.uint64)
    for i in numba.prange(n):  # row by row: each signature is read once, contiguously
        for j in range(stop - first):
            band = first + j
            h = np.uint64(band + 1)
            for col in range(band * rows - col0, (band + 1) * rows - col0):
                h = mix64(h * GOLDEN + np.uint64(sig[i, col]))
            keys[j, i] = h
    return keys


@numba.njit(cache=True, nogil=True)
def _sort_run(run, keys, tie):  # pragma: no cover - compiled
    """Order ``run`` (member indices) by (key, tie) in place."""
    if len(run) <= 16:
        for a in range(1, len(run)):
            m = run[a]
            b = a - 1
            while b >= 0 and (keys[run[b]] > keys[m] or (keys[run[b]] == keys[m] and tie[run[b]] > tie[m])):
                run[b + 1] = run[b]
                b -= 1
            run[b + 1] = m
        return
    by_tie = run[np.argsort(tie[run])]
    run[:] = by_tie[np.argsort(keys[by_tie], kind="mergesort")]


@numba.njit(cache=True, nogil=True, parallel=True)
def _order_buckets(keys, tie, window):  # pragma: no cover - compiled
    """Per band: members in bucket order, ``same[i]`` (positions ``i`` and ``i + 1`` share a bucket), pair counts.

    Members are sorted by the high half of their key (:func:`kernels.radix_sort_by_high32`).
    Members sharing it are few unless they form a real bucket, and only those
    runs need a closer look: a full key decides the bucket, ``tie`` (rank,
    then row) the order the sliding window pairs in.  Everything else is a
    sequential pass, so a million documents' keys are read at random only
    where they collide.
    """
    n_bands, n = keys.shape
    members = np.empty((n_bands, n), dtype=np.int64)
    same = np.zeros((n_bands, n), dtype=np.uint8)
    counts = np.zeros(n_bands, dtype=np.int64)
    for j in numba.prange(n_bands):
        key = keys[j]
        order = members[j]
        flags = same[j]
        high = np.empty(n, dtype=np.uint32)
        radix_sort_by_high32(key, order, high)
        lo = 0
        while lo < n:
            hi = lo + 1
            while hi < n and high[hi] == high[lo]:
                hi += 1
            if hi - lo > 1:
                _sort_run(order[lo:hi], key, tie)
                for i in range(lo, hi - 1):
                    if key[order[i]] == key[order[i + 1]]:
                        flags[i] = 1
            lo = hi
        total = 0
        lo = 0
        while lo < n:
            hi = lo
            while hi < n - 1 and flags[hi]:
                hi += 1
            size = hi - lo + 1
            for i in range(size - 1):
                total += min(window, size - 1 - i)
            lo = hi + 1
        counts[j] = total
    return members, same, counts


def _bucket_bands(
    sig: np.ndarray, first: int, stop: int, rows: int, tie: np.ndarray, window: int, col0: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bands ``first:stop``: members in bucket order, which neighbours share a bucket, pair counts."""
    return _order_buckets(_band_keys(sig, first, stop, rows, col0), tie, window)


@numba.njit(cache=True, nogil=True, parallel=True)
def _bucket_pairs(same, members, docs, window, starts, out):  # pragma: no cover - compiled
    """Each member paired with the next ``window`` members of its bucket, as ``min << 32 | max`` rows."""
    n = same.shape[1]
    for j in numba.prange(same.shape[0]):
        at = starts[j]
        flags = same[j]
        order = members[j]
        for i in range(n):
            for step in range(1, window + 1):
                if i + step >= n or not flags[i + step - 1]:
                    break
                x = np.uint64(docs[order[i]])
                y = np.uint64(docs[order[i + step]])
                out[at] = (min(x, y) << np.uint64(32)) | max(x, y)
                at += 1


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
    band_slice: tuple[int, int] | None = None,
    nonempty: np.ndarray | None = None,
) -> pl.DataFrame:
    """Unique candidate pairs ``(a, b)`` with ``a < b`` (row indices, UInt32).

    ``rank`` orders members inside a bucket (lower first); rows whose signature
    is empty (no shingle in this view) are never candidates.  ``accept``, if
    given, filters each chunk's distinct pairs (packed ``a << 32 | b``) as they
    are found, so a caller that verifies them keeps only what passes: at a
    million documents the unfiltered candidates would not fit in memory.

    ``band_slice`` ``(first, stop)`` looks at those bands only (default all;
    ``link.parts``): only their columns of ``signatures`` are read.  A pair's
    verdict depends on the pair alone, so the union of the slices' accepted
    pairs is the whole banding's.  ``nonempty`` (which rows have a non-empty
    signature) saves scanning every column for it.
    """
    n, num_perm = signatures.shape
    bands, rows = band_params(threshold, num_perm)
    first_band, stop_band = band_slice if band_slice is not None else (0, bands)
    if nonempty is None:
        nonempty = ~(signatures == EMPTY).all(axis=1)
    docs = np.flatnonzero(nonempty).astype(np.uint32)
    if len(docs) < 2 or stop_band <= first_band:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    rank_of = np.asarray(rank)[docs].astype(np.int64)
    # Order inside a bucket: rank, then row, packed into one sortable number.
    tie = ((rank_of - rank_of.min()).astype(np.uint64) << np.uint64(32)) | docs.astype(np.uint64)
    col0 = first_band * rows
    columns = signatures if band_slice is None else signatures[:, col0 : stop_band * rows]
    present = np.ascontiguousarray(columns if len(docs) == n else columns[docs])
    found = np.zeros(0, dtype=np.uint64)  # distinct packed pairs so far, sorted
    # A few bands at a time (in parallel) keeps the bucket tables small.
    for first in range(first_band, stop_band, BANDS_PER_CHUNK):
        stop = min(stop_band, first + BANDS_PER_CHUNK)
        members, same, counts = _bucket_bands(present, first, stop, rows, tie, window, col0)
        starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        chunk_pairs = np.empty(int(starts[-1]), dtype=np.uint64)
        _bucket_pairs(same, members, docs, window, starts, chunk_pairs)
        del members, same
        # Near-duplicates collide in most bands: fold each chunk's repeats away
        # at once, so memory holds distinct pairs, not one copy per band.
        if len(chunk_pairs):
            fresh = sorted_unique(chunk_pairs)
            if accept is not None:
                # A near-duplicate collides again in most chunks: what was accepted once stays accepted.
                fresh = accept(fresh[~sorted_member(fresh, found)])
            found = sorted_unique(np.concatenate([found, fresh]))
    if len(found) == 0:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    packed = found
    a, b = unpack(packed)
    return pl.DataFrame({"a": a, "b": b}, schema=PAIRS_SCHEMA)


def sharing_buckets(
    signatures: np.ndarray, probes: np.ndarray, *, threshold: float, window: int, probe_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Per row of ``signatures``: whether it shares a crowded bucket of some band with a row of ``probes``.

    An incremental run asks this of the documents that left their buckets
    (old versions, and old signatures of documents signed anew).  In a bucket
    that lost a member, two remaining members may now be within ``window`` of
    each other, so their pairs must be looked at afresh; a bucket of at most
    ``window + 1`` members paired everyone anyway, so only larger ones count
    (most chance collisions are pairs and triples).

    ``probe_rows`` (optional): per probe, the row of ``signatures`` that is
    the same document in the same place of every bucket order (signed anew
    from an unchanged set, so of the same rank), or -1.  In a band where that
    row's key is the probe's, the document never left the bucket: the probe
    does not count there.  A document signed anew usually differs in one
    slot or two, so this spares all its other bands.

    Each band costs a binary search of every key among the probes' distinct
    keys, then a count over the few rows that hit: linear in the rows, with
    no sort of the whole band.
    """
    n, num_perm = signatures.shape
    out = np.zeros(n, dtype=bool)
    live = ~(probes == EMPTY).all(axis=1)
    probes = probes[live]
    probe_rows = np.full(len(probes), -1, dtype=np.int64) if probe_rows is None else np.asarray(probe_rows, dtype=np.int64)[live]
    if n == 0 or len(probes) == 0:
        return out
    bands, rows = band_params(threshold, num_perm)
    nonempty = ~(signatures == EMPTY).all(axis=1)
    stays = probe_rows >= 0
    for first in range(0, bands, BANDS_PER_CHUNK):
        stop = min(bands, first + BANDS_PER_CHUNK)
        keys = band_keys(signatures[:, first * rows : stop * rows], stop - first, rows)
        probe_keys = band_keys(probes[:, first * rows : stop * rows], stop - first, rows)
        for column in range(stop - first):
            departed = probe_keys[:, column]
            if stays.any():
                moved = ~stays.copy()
                moved[stays] = keys[probe_rows[stays], column] != departed[stays]
                departed = departed[moved]
            if len(departed) == 0:
                continue
            departed = np.sort(departed)
            distinct = sorted_unique(departed)
            key = keys[:, column]
            at = np.minimum(np.searchsorted(distinct, key), len(distinct) - 1)
            hit = np.flatnonzero((distinct[at] == key) & nonempty)
            if len(hit) == 0:
                continue
            # Members of each hit bucket, the departed included.
            hit_keys = np.sort(key[hit])
            size = (np.searchsorted(hit_keys, key[hit], side="right") - np.searchsorted(hit_keys, key[hit], side="left")
                    + np.searchsorted(departed, key[hit], side="right") - np.searchsorted(departed, key[hit], side="left"))
            out[hit[size > window + 1]] = True
    return out
