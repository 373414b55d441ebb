"""Completeness of every cluster member: how much of the other versions it holds.

The origin itself is decided by the derivation model (``trace.derivation``);
completeness is reported beside it (the ``completeness`` column).  For a member
``d`` of a cluster ``K`` and one shingle view,

    cover(d) = 1/(|K|-1) * sum over j in K, j != d of |S_d & S_j| / |S_j|

is the average share of another member's content that ``d`` holds (1 when ``d``
contains every other version entirely).  It is computed without pairs:
``sum_j |S_d & S_j| / |S_j| = sum over s in S_d of W(s) - 1`` with
``W(s) = sum over members j holding s of 1/|S_j|``, one group-by per cluster,
linear in the cluster's shingles.  ``completeness`` weighs the cover of two
views: ``anchors`` (names, places, numbers: how much of the story a version
tells) and ``words`` (whose wording the others agree with).  Singletons have
completeness 1.
"""

from __future__ import annotations

import numba
import numpy as np

from provenance.prepare.shingle import ShingleSets

# ---------------------------------------------------------------------------- completeness


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


def completeness(cluster: np.ndarray, views: dict[str, ShingleSets], anchor_weight: float) -> np.ndarray:
    """Completeness in [0, 1] of every document (row index -> value): ``anchor_weight`` for anchors, the rest for words."""
    n = len(cluster)
    sizes = np.bincount(cluster, minlength=n)
    result = np.ones(n, dtype=np.float64)
    rows = np.flatnonzero(sizes[cluster] > 1)
    if len(rows) == 0:
        return result
    weights = {"anchors": anchor_weight, "words": 1.0 - anchor_weight}
    result[rows] = sum(weight * _view_cover(cluster, views[name], rows) for name, weight in weights.items())
    return result
