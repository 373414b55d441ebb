"""Completeness of every member of a cluster, and its probable origin.

The origin is the *most complete version*: the member that contains the most
of what the other versions carry.  Raw length is not completeness: pasted
headlines and boilerplate make a copy longer without making it contain more
of the others.

For a member ``d`` of a cluster ``K`` and one shingle view,

    cover(d) = 1/(|K|-1) * sum over j in K, j != d of |S_d & S_j| / |S_j|

is the average share of another member's content that ``d`` holds (1 when ``d``
contains every other version entirely).  Each member counts once whatever its
length, so a complete paraphrase that contains what every partial copy took
wins over a faithful but truncated copy.  It is computed without pairs:
``sum_j |S_d & S_j| / |S_j| = sum over s in S_d of W(s) - 1`` with
``W(s) = sum over members j holding s of 1/|S_j|``, one group-by per cluster,
linear in the cluster's shingles.

``completeness`` averages the cover of two views: ``anchors`` (names, places,
numbers: survives spinning and paraphrase, so it measures how much of the
story a version tells) and ``words`` (whose wording the others agree with: a
spun full copy disagrees almost everywhere).  Singletons have completeness 1.
A ``published_at`` column, when present, breaks near-ties (within
:data:`DATE_TIE`) in favour of the earlier version.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl

from provenance.shingle import ShingleSets

#: Versions whose completeness is within this of the best are told apart by date.
DATE_TIE = 0.05
VIEW_WEIGHTS = {"anchors": 0.5, "words": 0.5}


@numba.njit(cache=True, nogil=True, parallel=True)
def _cluster_cover(hashes, offsets, members, starts, out):  # pragma: no cover - compiled
    """cover(d) of every member, one cluster at a time (``members[starts[c]:starts[c+1]]``, rows ascending).

    Per cluster: every (shingle, member) entry sorted by shingle; a run of
    equal shingles adds ``W(s) - 1/|S_d|`` to each member ``d`` holding it.
    Memory and time are linear in the cluster's shingles (times a log).
    """
    for c in numba.prange(len(starts) - 1):
        lo, hi = starts[c], starts[c + 1]
        k = hi - lo
        total = 0
        for m in range(k):
            total += offsets[members[lo + m] + 1] - offsets[members[lo + m]]
        inverse = np.empty(k, dtype=np.float64)
        entries = np.empty(total, dtype=np.uint64)  # shingle << 32 | member
        at = 0
        for m in range(k):
            row = members[lo + m]
            size = offsets[row + 1] - offsets[row]
            inverse[m] = 1.0 / max(size, 1)
            for i in range(offsets[row], offsets[row + 1]):
                entries[at] = (np.uint64(hashes[i]) << np.uint64(32)) | np.uint64(m)
                at += 1
        entries.sort()
        cover = np.zeros(k, dtype=np.float64)
        i = 0
        while i < total:
            shingle = entries[i] >> np.uint64(32)
            j = i
            weight = 0.0
            while j < total and (entries[j] >> np.uint64(32)) == shingle:
                weight += inverse[entries[j] & np.uint64(0xFFFFFFFF)]
                j += 1
            for e in range(i, j):
                m = entries[e] & np.uint64(0xFFFFFFFF)
                cover[m] += weight - inverse[m]
            i = j
        for m in range(k):
            out[members[lo + m]] = min(max(cover[m] / max(k - 1, 1), 0.0), 1.0)


def _view_cover(cluster: np.ndarray, sets: ShingleSets, rows: np.ndarray) -> np.ndarray:
    """cover(d) of every row (see module docstring), in the order of ``rows``; ``rows`` hold whole clusters."""
    order = rows[np.argsort(cluster[rows], kind="stable")]
    grouped = cluster[order]
    starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1], [True]))) if len(order) else np.zeros(1, np.int64)
    out = np.zeros(len(cluster), dtype=np.float64)
    _cluster_cover(sets.hashes, sets.offsets, order.astype(np.int64), starts.astype(np.int64), out)
    return out[rows]


def completeness(cluster: np.ndarray, views: dict[str, ShingleSets]) -> np.ndarray:
    """Completeness in [0, 1] of every document (row index -> value)."""
    n = len(cluster)
    sizes = np.bincount(cluster, minlength=n)
    result = np.ones(n, dtype=np.float64)
    rows = np.flatnonzero(sizes[cluster] > 1)
    if len(rows) == 0:
        return result
    result[rows] = sum(weight * _view_cover(cluster, views[name], rows) for name, weight in VIEW_WEIGHTS.items())
    return result


def origin_rank(
    cluster: np.ndarray,
    complete: np.ndarray,
    n_tokens: np.ndarray,
    published: np.ndarray | None = None,
) -> np.ndarray:
    """Rank of every document inside its cluster (0 = the origin).

    Ordered by completeness (near-ties within :data:`DATE_TIE` go to the
    earlier ``published`` date when dates are known), then length, then row
    order, so the result is total and deterministic.
    """
    frame = pl.DataFrame(
        {
            "row": np.arange(len(cluster), dtype=np.int64),
            "cluster": cluster,
            "complete": complete,
            "n_tokens": n_tokens,
        }
    )
    bucket = (pl.col("complete").max().over("cluster") - pl.col("complete")) <= DATE_TIE
    keys = [pl.col("cluster")]
    descending = [False]
    if published is not None:
        frame = frame.with_columns(pl.Series("published", published))
        keys.append(~bucket)
        descending.append(False)
        keys.append(pl.when(bucket).then(pl.col("published")).otherwise(None))
        descending.append(False)
    keys += [pl.col("complete"), pl.col("n_tokens"), pl.col("row")]
    descending += [True, True, False]
    ordered = frame.sort(keys, descending=descending, nulls_last=True)
    ordered = ordered.with_columns(pl.int_range(pl.len()).over("cluster").alias("rank"))
    return ordered.sort("row")["rank"].to_numpy()
