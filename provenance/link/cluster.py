"""Group verified pairs into clusters without chaining.

Plain connected components over similarity edges chain: a round-up article
quoting two stories links both, and every copy of either joins one cluster.
Here clusters grow like Kruskal's algorithm, strongest edge first, with one
extra rule: two clusters that both have several members merge only if each
endpoint of the edge also passes the pair test against a majority of the
other cluster's *founders* (its first ``cluster_founders`` members, in join
order).  A lone document joins on its verified edge alone.  A
round-up joins the first story it matches, but cannot glue the second story
on: that story's members do not resemble the first story's founders, and a
round-up that happened to found a cluster is outvoted by the real members
that joined next.

The pair test is ``verify``'s :class:`~provenance.link.verify.PairRule`, so
edges and merge checks agree.  Everything runs as one compiled loop over the sorted
edges: the cost is linear in edges plus one set intersection per merge.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl

from provenance.link.verify import PairRule, clears, pair_score
from provenance.prepare.shingle import ShingleSets


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
def _agrees(w_hashes, w_offsets, a_hashes, a_offsets, x, founders, count, min_c, min_j, min_anchor_set):  # pragma: no cover - compiled
    """Whether ``x`` passes the pair test against at least half (rounded up) of ``founders[:count]``."""
    passed = 0
    for k in range(count):
        c, j = pair_score(w_hashes, w_offsets, a_hashes, a_offsets, x, founders[k], min_anchor_set)
        if clears(c, j, min_c, min_j):
            passed += 1
    return 2 * passed >= count + (count % 2)


@numba.njit(cache=True, nogil=True)
def _grow(n, ea, eb, w_hashes, w_offsets, a_hashes, a_offsets, min_c, min_j, min_anchor_set, n_founders_max):  # pragma: no cover - compiled
    parent = np.arange(n)
    members = np.ones(n, dtype=np.int64)
    founders = np.empty((n, n_founders_max), dtype=np.int64)
    n_founders = np.ones(n, dtype=np.int64)
    founders[:, 0] = np.arange(n)
    for k in range(len(ea)):
        x, y = ea[k], eb[k]
        rx, ry = _find(parent, x), _find(parent, y)
        if rx == ry:
            continue
        if members[rx] > 1 and members[ry] > 1:
            if not _agrees(w_hashes, w_offsets, a_hashes, a_offsets, x, founders[ry], n_founders[ry], min_c, min_j, min_anchor_set):
                continue
            if not _agrees(w_hashes, w_offsets, a_hashes, a_offsets, y, founders[rx], n_founders[rx], min_c, min_j, min_anchor_set):
                continue
        # The larger cluster absorbs the smaller and keeps its founders, topped
        # up with the smaller one's up to ``n_founders_max``.
        if members[rx] < members[ry]:
            rx, ry = ry, rx
        parent[ry] = rx
        members[rx] += members[ry]
        for i in range(n_founders[ry]):
            if n_founders[rx] < n_founders_max:
                founders[rx, n_founders[rx]] = founders[ry, i]
                n_founders[rx] += 1
    roots = np.empty(n, dtype=np.int64)
    for i in range(n):
        roots[i] = _find(parent, i)
    return roots


def grow_clusters(n_docs: int, edges: pl.DataFrame, views: dict[str, ShingleSets], rule: PairRule, founders: int) -> np.ndarray:
    """Cluster root (a row index) of every document.

    ``edges`` holds verified pairs ``a, b`` with a ``strength`` column; they
    are applied strongest first (ties by ``a, b``), so the result does not
    depend on input order.  Merges of two multi-member clusters are checked
    against ``founders`` founding members with ``rule``.
    """
    ordered = edges.sort(["strength", "a", "b"], descending=[True, False, False])
    return _grow(
        n_docs,
        ordered["a"].to_numpy().astype(np.int64),
        ordered["b"].to_numpy().astype(np.int64),
        views["words"].hashes, views["words"].offsets,
        views["anchors"].hashes, views["anchors"].offsets,
        rule.min_containment, rule.min_jaccard, rule.min_anchor_set, founders,
    )
