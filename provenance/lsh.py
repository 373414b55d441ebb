"""LSH banding over MinHash signatures: candidate pairs in linear time.

A signature of ``num_perm`` slots is cut into ``b`` bands of ``r`` rows; two
documents become candidates when any band is identical, which happens with
probability ``1 - (1 - J**r)**b`` for Jaccard ``J``.  ``(b, r)`` come from
datasketch's own optimiser (``MinHashLSH``'s ``_optimal_param``) for the
threshold, so the banding is the one ``MinHashLSH(threshold, num_perm)``
would use; the buckets are built with one polars group-by instead of a Python
dict insert per document.

A bucket holding a viral story's 5,000 copies would yield 12.5 million pairs
if expanded fully.  Clustering only needs connectivity, and parent choice only
needs a few close neighbours, so each member is paired with the next
``window`` members in the bucket's order (longest first): the number of pairs
grows as ``window * bucket size``, never with its square.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from datasketch.lsh import _optimal_param

from provenance.minhash import EMPTY
from provenance.shingle import fmix64

PAIRS_SCHEMA = pl.Schema({"a": pl.UInt32, "b": pl.UInt32})
#: Bands bucketed together: bounds the bucket table to this many rows per document.
BANDS_PER_CHUNK = 16


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


def candidate_pairs(
    signatures: np.ndarray,
    rank: np.ndarray,
    *,
    threshold: float,
    window: int,
) -> pl.DataFrame:
    """Unique candidate pairs ``(a, b)`` with ``a < b`` (row indices, UInt32).

    ``rank`` orders members inside a bucket (lower first); rows whose signature
    is empty (no shingle in this view) are never candidates.
    """
    n, num_perm = signatures.shape
    bands, rows = band_params(threshold, num_perm)
    nonempty = ~(signatures == EMPTY).all(axis=1)
    docs = np.flatnonzero(nonempty).astype(np.uint32)
    if len(docs) < 2:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    rank_of = np.asarray(rank)[docs].astype(np.int64)
    present = signatures if len(docs) == n else signatures[docs]
    found: list[pl.DataFrame] = []
    # A few bands at a time: the bucket table of all bands of a million
    # documents would not fit in memory at once.
    for first in range(0, bands, BANDS_PER_CHUNK):
        chunk = range(first, min(bands, first + BANDS_PER_CHUNK))
        keys = band_keys(present[:, first * rows : chunk.stop * rows], len(chunk), rows)
        table = pl.DataFrame(
            {
                "doc": np.repeat(docs, len(chunk)),
                "band": np.tile(np.arange(chunk.start, chunk.stop, dtype=np.uint16), len(docs)),
                "key": keys.reshape(-1),
                "rank": np.repeat(rank_of, len(chunk)),
            }
        )
        shared = table.filter(pl.len().over("band", "key") > 1).sort("band", "key", "rank", "doc")
        if shared.is_empty():
            continue
        partners = [
            shared.select(pl.col("doc").alias("x"), pl.col("doc").shift(-step).over("band", "key").alias("y"))
            for step in range(1, window + 1)
        ]
        found.append(
            pl.concat(partners).drop_nulls()
            .select(pl.min_horizontal("x", "y").alias("a"), pl.max_horizontal("x", "y").alias("b"))
            .unique()
        )
    if not found:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    pairs = pl.concat(found)
    return pairs.unique().sort("a", "b").cast(PAIRS_SCHEMA)
