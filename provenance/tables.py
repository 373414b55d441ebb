"""The output tables: cluster ids, documents, edges and the cluster summaries.

Stages work on row numbers; this module turns their placements (origin,
parent row, depth, completeness per row) and row-numbered edges into the
tables of the contract (``schemas``), names clusters and summarises them:

* a cluster seen for the first time is named ``c`` + 16 hex digits of the
  xxh3 of its origin's ``doc_id`` (:func:`fresh_cluster_ids`);
* an incremental run keeps the ids the store already gave
  (:func:`stable_ids`), and says what happened to them (``cluster_history``);
* :func:`summarize_clusters` is the clusters table; :func:`cluster_table` and
  :func:`largest_trees_markdown` are the plain-text summaries the Prefect
  artifacts show.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl
import xxhash

from provenance import schemas


@dataclass
class Traced:
    """The tables of a run: documents, tree edges and cluster summaries."""

    documents: pl.DataFrame
    edges: pl.DataFrame
    clusters: pl.DataFrame
    #: Aligned passages of every edge (``schemas.EVIDENCE``); filled by ``trace.passages`` after the tree is made.
    evidence: pl.DataFrame | None = None


def dense_clusters(roots: np.ndarray) -> np.ndarray:
    """Cluster numbers 0.. in order of first appearance (row order): deterministic."""
    _, first, cluster = np.unique(roots, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[cluster] if len(first) else cluster


def cluster_id_of(origin_id: str, attempt: int = 0) -> str:
    """A cluster's id: ``c`` + 16 hex digits of the xxh3 of its origin's doc_id (``#attempt`` appended to re-hash a taken id)."""
    return "c" + xxhash.xxh3_64_hexdigest((origin_id if attempt == 0 else f"{origin_id}#{attempt}").encode())


def fresh_cluster_ids(doc_ids: pl.Series, cluster: np.ndarray, is_origin: np.ndarray) -> np.ndarray:
    """Every row's cluster id, for clusters seen for the first time (:func:`cluster_id_of` its origin)."""
    by_cluster = np.empty(len(cluster), dtype=object)
    origins = np.flatnonzero(is_origin)
    by_cluster[cluster[origins]] = [cluster_id_of(d) for d in doc_ids.gather(origins).to_list()]
    return by_cluster[cluster]


def stable_ids(
    doc_ids: pl.Series, cluster: np.ndarray, is_origin: np.ndarray, old_cid: pl.Series, old_docs: pl.DataFrame, generation: int
) -> tuple[np.ndarray, pl.DataFrame]:
    """Each cluster's id, keeping stored ids, and the ``cluster_history`` events of this run.

    Rule: every stored id goes to at most one cluster and every cluster takes
    at most one stored id, greedily, larger stored clusters first (then more
    of its members, then the smaller id).  So a merge keeps the id of the
    larger stored cluster and a split leaves it with the part holding most of
    it.  A cluster with no stored id gets :func:`cluster_id_of` its origin
    (the id a from-scratch run gives), re-hashed in the rare case that id is
    taken.
    """
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    origin_row = np.full(n_clusters, -1, dtype=np.int64)
    origin_row[cluster[is_origin]] = np.flatnonzero(is_origin)
    origin_id = doc_ids.gather(origin_row).to_list() if n_clusters else []
    old_size = old_docs.group_by("cluster_id").len().rename({"cluster_id": "old", "len": "old_size"})
    old_origin = dict(old_docs.filter(pl.col("is_origin")).select("cluster_id", "doc_id").iter_rows())
    overlap = (
        pl.DataFrame({"cluster": cluster, "old": old_cid})
        .drop_nulls("old")
        .group_by("cluster", "old").len()
        .join(old_size, on="old")
        .sort(["old_size", "len", "old", "cluster"], descending=[True, True, False, False])
    )
    assigned: dict[int, str] = {}
    taken: set[str] = set()
    for c, old, _, _ in overlap.iter_rows():
        if c not in assigned and old not in taken:
            assigned[c] = old
            taken.add(old)
    used = set(old_docs["cluster_id"].unique().to_list())
    ids = np.empty(n_clusters, dtype=object)
    events: list[tuple] = []
    sizes = np.bincount(cluster, minlength=n_clusters)
    for c in range(n_clusters):
        if c in assigned:
            ids[c] = assigned[c]
            continue
        k = 0
        candidate = cluster_id_of(origin_id[c])
        while candidate in used or candidate in taken:
            k += 1
            candidate = cluster_id_of(origin_id[c], k)
        ids[c] = candidate
        taken.add(candidate)
    # Events: absorbed stored ids (merged), new parts of a stored cluster (split), new clusters, new origins.
    kept = set(assigned.values())
    for c, old, _, _ in overlap.iter_rows():
        if ids[c] != old:
            # A stored id no cluster kept was merged away; one kept elsewhere lost members to this cluster.
            kind = "split" if old in kept else "merged"
            events.append((generation, kind, ids[c], old, origin_id[c], int(sizes[c])))
    with_old = set(overlap["cluster"].to_list())
    for c in range(n_clusters):
        if c not in with_old:
            events.append((generation, "created", ids[c], None, origin_id[c], int(sizes[c])))
        elif c in assigned and old_origin.get(assigned[c]) not in (None, origin_id[c]):
            events.append((generation, "origin_changed", ids[c], None, origin_id[c], int(sizes[c])))
    history = pl.DataFrame(events, schema=schemas.CLUSTER_HISTORY, orient="row").unique(maintain_order=True)
    return ids[cluster], history.sort("generation", "cluster_id", "event", "other_cluster_id", nulls_last=True)


def assemble_tables(
    documents: pl.DataFrame, placement: pl.DataFrame, edges: pl.DataFrame, ids: np.ndarray, spin_min_rate: float
) -> Traced:
    """Output tables from per-row placement and row-numbered edges (any row order) and each row's cluster id."""
    placement = placement.sort("row")
    doc_ids = documents["doc_id"]
    parent_row = placement["parent_row"].to_numpy()
    out_docs = documents.with_columns(
        pl.Series("cluster_id", ids, dtype=pl.String),
        placement["is_origin"],
        pl.when(pl.Series(parent_row >= 0)).then(doc_ids.gather(np.maximum(parent_row, 0))).alias("parent_id"),
        placement["depth"],
        placement["completeness"],
    )
    child = edges["child"].to_numpy()
    out_edges = edges.select(
        pl.Series("cluster_id", ids[child] if len(child) else np.array([], dtype=object), dtype=pl.String),
        pl.Series("parent_id", doc_ids.gather(edges["parent"].to_numpy()) if len(child) else [], dtype=pl.String),
        pl.Series("child_id", doc_ids.gather(child) if len(child) else [], dtype=pl.String),
        pl.exclude("parent", "child"),
    ).sort("cluster_id", "parent_id", "child_id")
    clusters = summarize_clusters(out_docs, out_edges, spin_min_rate)
    return Traced(out_docs.sort("cluster_id", "depth", "doc_id"), out_edges, clusters)


def summarize_clusters(documents: pl.DataFrame, edges: pl.DataFrame, spin_min_rate: float) -> pl.DataFrame:
    """One row per cluster: size, origin, depth, duplicate count and edge summaries (an edge is spun at ``spin_min_rate``)."""
    per_doc = documents.group_by("cluster_id").agg(
        pl.len().alias("size"),
        pl.col("doc_id").filter(pl.col("is_origin")).first().alias("origin_id"),
        pl.col("title").filter(pl.col("is_origin")).first().alias("origin_title"),
        pl.col("depth").max().alias("max_depth"),
        (pl.len() - pl.col("content_hash").n_unique()).alias("n_exact_duplicates"),
    )
    per_edge = edges.group_by("cluster_id").agg(
        pl.col("confidence").mean().alias("mean_confidence"),
        pl.col("change_kind").is_in(["spin", "mixed"]).and_(pl.col("spin_rate") >= spin_min_rate).mean().alias("share_spun"),
        pl.col("is_truncation").mean().alias("share_truncated"),
    )
    return (
        per_doc.join(per_edge, on="cluster_id", how="left")
        .with_columns(pl.col("mean_confidence", "share_spun", "share_truncated").fill_null(0.0).round(6))
        .sort(["size", "cluster_id"], descending=[True, False])
    )


def empty_tables(documents: pl.DataFrame) -> Traced:
    """The (empty) tables of a run whose every document was set aside."""
    docs = documents.with_columns(
        pl.lit(None, pl.String).alias("cluster_id"), pl.lit(None, pl.Boolean).alias("is_origin"),
        pl.lit(None, pl.String).alias("parent_id"), pl.lit(None, pl.Int32).alias("depth"),
        pl.lit(None, pl.Float64).alias("completeness"),
    )
    for name, dtype in (("content_hash", pl.String), ("n_tokens", pl.Int32), ("n_chars", pl.Int32)):
        if name not in docs.columns:
            docs = docs.with_columns(pl.lit(None, dtype).alias(name))
    return Traced(docs, schemas.empty(schemas.EDGES), schemas.empty(schemas.CLUSTERS))


def cluster_table(clusters: pl.DataFrame, limit: int = 50) -> list[dict[str, object]]:
    """The ``limit`` largest multi-document clusters as rows of plain values."""
    top = clusters.filter(pl.col("size") > 1).head(limit)
    return top.select(
        "cluster_id", "size", "origin_id", pl.col("origin_title").str.slice(0, 80), "max_depth",
        pl.col("mean_confidence").round(3), pl.col("share_spun").round(3), pl.col("share_truncated").round(3),
    ).to_dicts()


def tree_lines(documents: pl.DataFrame, edges: pl.DataFrame, cluster_id: str) -> list[str]:
    """One cluster's derivation tree as indented lines, origin first."""
    members = documents.filter(pl.col("cluster_id") == cluster_id)
    cluster_edges = edges.filter(pl.col("cluster_id") == cluster_id)
    children: dict[str, list[dict]] = defaultdict(list)
    for edge in cluster_edges.sort("child_id").iter_rows(named=True):
        children[edge["parent_id"]].append(edge)
    titles = dict(zip(members["doc_id"].to_list(), members["title"].to_list()))
    lines: list[str] = []
    origin = members.filter(pl.col("is_origin"))["doc_id"].to_list()
    stack: list[tuple[str, int, dict | None]] = [(d, 0, None) for d in reversed(origin)]
    while stack:
        doc, level, edge = stack.pop()
        title = (titles.get(doc) or "")[:70]
        if edge is None:
            lines.append(f"{doc}  [origin]  {title}")
        else:
            lines.append(
                f"{'    ' * level}└─ {doc}  [{edge['change_kind']}, conf {edge['confidence']:.2f}, "
                f"kept {edge['kept']}/{edge['parent_tokens']}]  {title}"
            )
        for edge_ in reversed(children.get(doc, [])):
            stack.append((edge_["child_id"], level + 1, edge_))
    return lines


def largest_trees_markdown(documents: pl.DataFrame, clusters: pl.DataFrame, edges: pl.DataFrame, limit: int = 5) -> str:
    """Markdown with the ``limit`` largest derivation trees."""
    parts = ["# Largest derivation trees", ""]
    top = clusters.filter(pl.col("size") > 1).head(limit)
    if top.is_empty():
        return "# Largest derivation trees\n\nNo document has a copy in this run."
    for row in top.iter_rows(named=True):
        parts.append(f"## {row['cluster_id']} ({row['size']} documents)")
        parts.append("```")
        parts.extend(tree_lines(documents, edges, row["cluster_id"]))
        parts.append("```")
        parts.append("")
    return "\n".join(parts)
