"""Group verified pairs into clusters without chaining.

Plain connected components over similarity edges chain: a round-up article
quoting two stories links both, and every copy of either joins one cluster.
Here clusters grow like Kruskal's algorithm, strongest edge first, with one
extra rule: two clusters that both already have several members merge only if
each side's endpoint of the edge also passes the pair test against the other
cluster's *representative* (its founding, most complete member).  A round-up
joins the first story it matches, but cannot glue the second story on, since
that story's representative does not resemble the first one's.

The pair test (:func:`pair_passes`) is the one ``verify`` uses, so edges and
merge checks agree.  Everything runs as one compiled loop over the sorted
edges: the cost is linear in edges plus one set intersection per merge.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl

from provenance.shingle import ShingleSets
from provenance.verify import _pair_score


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:  # pragma: no cover - compiled
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True, nogil=True)
def _grow(n, ea, eb, w_hashes, w_offsets, a_hashes, a_offsets, size_key, min_c, min_j, min_anchor_set):  # pragma: no cover - compiled
    parent = np.arange(n)
    members = np.ones(n, dtype=np.int64)
    rep = np.arange(n)
    for k in range(len(ea)):
        x, y = ea[k], eb[k]
        rx, ry = _find(parent, x), _find(parent, y)
        if rx == ry:
            continue
        if members[rx] > 1 and members[ry] > 1:
            c1, j1 = _pair_score(w_hashes, w_offsets, a_hashes, a_offsets, x, rep[ry], min_anchor_set)
            if c1 < min_c or j1 < min_j:
                continue
            c2, j2 = _pair_score(w_hashes, w_offsets, a_hashes, a_offsets, y, rep[rx], min_anchor_set)
            if c2 < min_c or j2 < min_j:
                continue
        # The larger cluster absorbs the smaller and keeps its representative;
        # two singletons are represented by the larger document.
        if members[rx] < members[ry] or (members[rx] == members[ry] and size_key[rep[ry]] > size_key[rep[rx]]):
            rx, ry = ry, rx
        parent[ry] = rx
        members[rx] += members[ry]
    roots = np.empty(n, dtype=np.int64)
    for i in range(n):
        roots[i] = _find(parent, i)
    return roots


def grow_clusters(
    n_docs: int,
    edges: pl.DataFrame,
    views: dict[str, ShingleSets],
    size_key: np.ndarray,
    *,
    min_containment: float,
    min_jaccard: float,
    min_anchor_set: int,
) -> np.ndarray:
    """Cluster root (a row index) of every document.

    ``edges`` holds verified pairs ``a, b`` with a ``strength`` column; they
    are applied strongest first (ties by ``a, b``), so the result does not
    depend on input order.
    """
    ordered = edges.sort(["strength", "a", "b"], descending=[True, False, False])
    return _grow(
        n_docs,
        ordered["a"].to_numpy().astype(np.int64),
        ordered["b"].to_numpy().astype(np.int64),
        views["words"].hashes, views["words"].offsets,
        views["anchors"].hashes, views["anchors"].offsets,
        np.asarray(size_key, dtype=np.float64),
        min_containment, min_jaccard, min_anchor_set,
    )
