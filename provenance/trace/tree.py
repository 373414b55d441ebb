"""Derivation trees: one parent per non-origin member, with a confidence.

A child's parent must contain what the child took from it, and copies inherit
their parent's changes (substitutions, truncation point, boilerplate), so the
best parent is the candidate that contains the largest share of the child's
shingles (the pipeline scores ``lineage`` word trigrams over every token, so
inherited headers, footers and function words count too).  Candidates are the
child's verified neighbours that rank above it (the pipeline ranks by edit
depth from the origin, ``direction.edit_depth``: changes accumulate down a
derivation, while completeness puts a light-edit child above its parent).  Restricting parents to better
ranked members makes the candidate graph acyclic, and on an acyclic graph the
minimum-cost arborescence (Edmonds) is exactly "every node takes its best
incoming edge": so this is Edmonds' optimum, computed as one vectorised
group-by over the edges, and the cost grows with the number of candidate
edges, never with the square of a cluster.  A member with no better-ranked
neighbour hangs from the origin.

Confidence is a logistic function of the winning score and its margin over the
runner-up (a clear winner with high containment is a sure parent; two
near-identical siblings are a coin toss), with coefficients (``confidence_coef``)
fitted by maximum likelihood on the true parents of a generated corpus
(``python -m benchmarks.generate --docs 20000 --seed 1``: 3,261 edges), not on
the evaluation corpora; README, "Accuracy", gives its calibration.

**Edit depth.**  :func:`edit_depth` aligns every member to its origin once and
counts its derived changes (substituted or inserted positions, lost runs and
tokens): changes accumulate along a derivation, so a parent is expected to
have fewer than its children; :func:`order_by_depth` ranks members by it.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.link.verify import intersection_sizes
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.words import Words


def _containments(sets: ShingleSets, child: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inter = intersection_sizes(sets, child, parent).astype(np.float64)
    sizes = sets.sizes().astype(np.float64)
    sc, sp = sizes[child], sizes[parent]
    union = sc + sp - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        contained = np.where(sc > 0, inter / sc, 0.0)
        jaccard = np.where(union > 0, inter / union, 0.0)
    return contained, jaccard


def choose_parents(
    cluster: np.ndarray,
    rank: np.ndarray,
    pairs: pl.DataFrame,
    views: dict[str, ShingleSets],
    view: str,
    *,
    confidence_coef: tuple[float, float, float],
) -> pl.DataFrame:
    """One row per non-origin document: ``child, parent, score, confidence`` (row indices).

    ``pairs`` are undirected candidate pairs ``a, b`` (any cluster); only those
    inside one cluster are used.  ``views[view]`` is the shingle set scored.
    """
    n = len(cluster)
    words = views[view]
    origin_of = np.full(n, -1, dtype=np.int64)
    origin_rows = np.flatnonzero(rank == 0)
    origin_of[cluster[origin_rows]] = origin_rows
    a = pairs["a"].to_numpy().astype(np.int64)
    b = pairs["b"].to_numpy().astype(np.int64)
    same = cluster[a] == cluster[b]
    a, b = a[same], b[same]
    # Direct every pair from the better-ranked member to the other.
    parent = np.where(rank[a] < rank[b], a, b)
    child = np.where(rank[a] < rank[b], b, a)
    # Every non-origin member also gets its origin as a fallback candidate.
    members = np.flatnonzero(rank > 0)
    parent = np.concatenate([parent, origin_of[cluster[members]]])
    child = np.concatenate([child, members])
    candidates = pl.DataFrame({"child": child, "parent": parent}).unique().sort("child", "parent")
    child, parent = candidates["child"].to_numpy(), candidates["parent"].to_numpy()
    contained, jaccard = _containments(words, child, parent)
    scored = candidates.with_columns(pl.Series("score", contained), pl.Series("jaccard", jaccard))
    ranked = scored.sort(["child", "score", "jaccard", "parent"], descending=[False, True, True, False])
    best = ranked.group_by("child", maintain_order=True).agg(
        pl.col("parent").first(),
        pl.col("score").first(),
        pl.col("score").slice(1, 1).first().fill_null(0.0).alias("runner_up"),
    )
    b0, b1, b2 = confidence_coef
    logit = b0 + b1 * pl.col("score") + b2 * (pl.col("score") - pl.col("runner_up"))
    return best.select(
        "child", "parent", "score", (1.0 / (1.0 + (-logit).exp())).alias("confidence")
    ).sort("child")


def depths(parent_of: np.ndarray) -> np.ndarray:
    """Depth of every node (0 for roots, marked by ``parent_of == -1``).

    Pointer doubling: ``log2(max depth)`` vectorised passes, no per-node loop.
    """
    n = len(parent_of)
    depth = (parent_of >= 0).astype(np.int64)
    jump = parent_of.copy()
    while True:
        active = jump >= 0
        if not active.any():
            return depth.astype(np.int32)
        target = jump[active]
        depth[active] += depth[target]
        nxt = np.full(n, -1, dtype=np.int64)
        nxt[active] = jump[target]
        jump = nxt


def edit_depth(cluster: np.ndarray, rank: np.ndarray, words: dict[int, Words], *, lost_run_weight: float, lost_token_weight: float) -> np.ndarray:
    """Derived changes of every member relative to its origin (0 for origins and singletons).

    ``changed positions of the origin (substituted, or with an insertion) +
    lost_run_weight * lost runs + lost_token_weight * lost tokens``.
    """
    n = len(cluster)
    origin_of = np.full(n, -1, dtype=np.int64)
    roots = np.flatnonzero(rank == 0)
    origin_of[cluster[roots]] = roots
    depth = np.zeros(n)
    for x in np.flatnonzero(rank > 0).tolist():
        o = words[int(origin_of[cluster[x]])].tokens
        keep = np.zeros(len(o), dtype=bool)
        changed = np.zeros(len(o) + 1, dtype=bool)
        for op in Levenshtein.opcodes(o, words[x].tokens):
            s0, s1, d0, d1 = op.src_start, op.src_end, op.dest_start, op.dest_end
            if op.tag == "equal":
                keep[s0:s1] = True
            elif op.tag == "replace":
                k = min(s1 - s0, d1 - d0)
                keep[s0 : s0 + k] = True
                changed[s0 : s0 + k] = True
                changed[s0 + k] |= d1 - d0 > k
            elif op.tag == "insert":
                changed[s0] = True
        lost = (~keep).astype(np.int8)
        lost_runs = int((np.diff(lost, prepend=0) == 1).sum())
        depth[x] = changed.sum() + lost_run_weight * lost_runs + lost_token_weight * lost.sum()
    return depth


def order_by_depth(cluster: np.ndarray, rank: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Rank inside each cluster by (edit depth, previous rank): the origin stays first."""
    order = np.lexsort((rank, depth, cluster))
    out = np.empty(len(rank), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(cluster[order])) + 1]
    out[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return out
