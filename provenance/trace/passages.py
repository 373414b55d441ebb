"""The evidence of every tree edge: its aligned passages, its copy confidence, and the edge columns they give.

Link decided that each pair is a copy from aligned passages (``link.evidence``);
here the passages of the edges the tree kept are written out (the
``evidence`` table: character offsets into both texts, evidence tokens,
similarity, kind), and every edge gets

* ``copy_confidence``: the link's calibrated probability that the child is a
  version of the parent's text (1.0 for exact duplicates);
* ``parent_confidence``: trace's probability that this member, rather than
  another, is the parent;
* ``confidence``: their product, the probability that the edge is right;
* ``evidence_tokens`` and ``passages``: the child's evidence tokens in
  qualifying passages, and how many passages were written.

Every edge has at least one passage row: an edge whose texts hold no aligned
unit (an exact copy of a text of headings) gets one row spanning both texts.
Cost: one alignment per tree edge, never per pair of cluster members.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from provenance.config import Config
from provenance.link import evidence, units
from provenance.link.stage import Linked, texts_of_rows
from provenance.prepare.stage import Prepared
from provenance.stage_report import StageReport
from provenance.tables import Traced

#: A plan's trace step.
TraceStep = Callable[[Prepared, Linked, Config], tuple[Traced, StageReport]]

#: Edge columns this step fills (appended to the edges contract).
EDGE_COLUMNS = ("copy_confidence", "parent_confidence", "evidence_tokens", "passages")


def edge_rows(documents: pl.DataFrame, edges: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Corpus rows of every edge's parent and child."""
    row_of = documents.select("doc_id").with_row_index("row")
    parent = edges.select(pl.col("parent_id").alias("doc_id")).join(row_of, on="doc_id", how="left", maintain_order="left")["row"]
    child = edges.select(pl.col("child_id").alias("doc_id")).join(row_of, on="doc_id", how="left", maintain_order="left")["row"]
    return parent.to_numpy().astype(np.int64), child.to_numpy().astype(np.int64)


def _pair_lookup(pairs: pl.DataFrame, parent: np.ndarray, child: np.ndarray, column: str) -> np.ndarray:
    """``column`` of the linked pair of each edge (pairs are stored ``a < b``), NaN where the edge is no linked pair."""
    edges = pl.DataFrame({"a": np.minimum(parent, child), "b": np.maximum(parent, child)})
    keyed = pairs.select(pl.col("a").cast(pl.Int64), pl.col("b").cast(pl.Int64), column)
    found = edges.join(keyed, on=["a", "b"], how="left", maintain_order="left")[column].fill_null(float("nan"))
    return found.to_numpy().astype(np.float64, copy=True)  # written to below: never a read-only view


def _best_inside(linked: Linked, rows: np.ndarray) -> np.ndarray:
    """Per row: the highest ``copy_confidence`` of its linked pairs inside its own cluster (0 when none)."""
    a, b = linked.pairs["a"].to_numpy().astype(np.int64), linked.pairs["b"].to_numpy().astype(np.int64)
    conf = linked.pairs["copy_confidence"].to_numpy()
    inside = linked.roots[a] == linked.roots[b]
    best = np.zeros(len(linked.roots))
    np.maximum.at(best, a[inside], conf[inside])
    np.maximum.at(best, b[inside], conf[inside])
    return best[rows]


def edge_evidence(prepared: Prepared, linked: Linked, edges: pl.DataFrame, config: Config) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(edges with EDGE_COLUMNS and confidence, evidence rows)`` of the tree edges (``cluster_id, parent_id, child_id``)."""
    parent, child = edge_rows(prepared.documents, edges)
    needed = np.unique(np.concatenate([parent, child])) if len(parent) else np.zeros(0, dtype=np.int64)
    if linked.units is not None and linked.unit_rows is not None and np.isin(needed, linked.unit_rows).all():
        rows, found = linked.unit_rows, linked.units  # link aligned these texts already
    else:
        rows = needed
        texts = texts_of_rows(prepared, rows) if len(rows) else pl.Series([], dtype=pl.String)
        floating = linked.floating or units.Floating.nothing()
        found = units.build_units(texts, floating, config.evidence)
    p_pos, c_pos = np.searchsorted(rows, parent), np.searchsorted(rows, child)
    passages = evidence.passage_rows(found, p_pos, c_pos, config.evidence)
    passages = _with_fallback(passages, prepared, parent, child, edges)
    copy = _pair_lookup(linked.pairs, parent, child, "copy_confidence")
    missing = np.isnan(copy)
    if missing.any():
        # A tree edge that is no linked pair: the child is a version of the cluster's text as surely as its best
        # copy pair inside the cluster says, or as the edge's own evidence says if that is stronger.
        ev = evidence.pair_evidence(found, p_pos[missing], c_pos[missing], config.evidence)
        direct = evidence.copy_confidence(ev, config.evidence.chance_unit_match, config.evidence.max_gap)
        copy[missing] = np.maximum(direct, _best_inside(linked, child[missing]))
    counted = passages.group_by("edge").agg(
        pl.col("tokens").filter("qualifies").sum().alias("evidence_tokens"), pl.len().alias("passages")
    )
    per_edge = pl.DataFrame({"edge": np.arange(edges.height, dtype=np.int64)}).join(counted, on="edge", how="left", maintain_order="left")
    # The trace's parent choice confidence: its own column when it gives one, else its ``confidence``.
    parent_conf = edges["parent_confidence"] if "parent_confidence" in edges.columns else edges["confidence"]
    copy_series = pl.Series("copy_confidence", np.round(copy, 6))
    out_edges = edges.drop(*EDGE_COLUMNS, strict=False).with_columns(
        copy_series,
        parent_conf.cast(pl.Float64).alias("parent_confidence"),
        per_edge["evidence_tokens"].fill_null(0).cast(pl.Int32).alias("evidence_tokens"),
        per_edge["passages"].fill_null(0).cast(pl.Int32).alias("passages"),
    ).with_columns(
        pl.when(pl.col("parent_confidence").is_not_null())
        .then((pl.col("copy_confidence") * pl.col("parent_confidence")).round(6))
        .otherwise(pl.col("confidence") if "confidence" in edges.columns else pl.col("copy_confidence"))
        .alias("confidence")
    )
    ids = edges.select("cluster_id", "parent_id", "child_id").with_row_index("edge").with_columns(pl.col("edge").cast(pl.Int64))
    table = ids.join(passages, on="edge", how="inner").sort("cluster_id", "child_id", "child_start", "parent_start").select(
        "cluster_id", "parent_id", "child_id", "parent_start", "parent_end", "child_start", "child_end", "tokens", "similarity", "kind"
    )
    return out_edges, table


def _with_fallback(passages: pl.DataFrame, prepared: Prepared, parent: np.ndarray, child: np.ndarray, edges: pl.DataFrame) -> pl.DataFrame:
    """Passage rows, plus one row spanning both texts for every edge that has none."""
    have = np.zeros(len(parent), dtype=bool)
    have[passages["edge"].to_numpy()] = True
    lost = np.flatnonzero(~have)
    if len(lost) == 0:
        return passages
    rows = np.unique(np.concatenate([parent[lost], child[lost]]))
    texts = texts_of_rows(prepared, rows)
    p_pos, c_pos = np.zeros(len(parent), dtype=np.int64), np.zeros(len(child), dtype=np.int64)
    p_pos[lost], c_pos[lost] = np.searchsorted(rows, parent[lost]), np.searchsorted(rows, child[lost])
    lengths = texts.str.len_chars().fill_null(0).to_numpy()
    same = texts.gather(p_pos[lost]).to_numpy() == texts.gather(c_pos[lost]).to_numpy()
    similarity = edges["similarity"].to_numpy()[lost] if "similarity" in edges.columns else np.zeros(len(lost))
    extra = pl.DataFrame({
        "edge": lost.astype(np.int64),
        "parent_start": np.zeros(len(lost), dtype=np.int64), "parent_end": lengths[p_pos[lost]].astype(np.int64),
        "child_start": np.zeros(len(lost), dtype=np.int64), "child_end": lengths[c_pos[lost]].astype(np.int64),
        "tokens": texts.gather(c_pos[lost]).str.count_matches(units.TOKEN).to_numpy().astype(np.int64),
        "similarity": np.where(same, 1.0, similarity).astype(np.float64),
        "kind": np.where(same, "verbatim", "rewritten"),
        "qualifies": same,
    }, schema=evidence.PASSAGE_COLUMNS)
    return pl.concat([passages, extra])


def with_evidence(trace: TraceStep, prepared: Prepared, linked: Linked, config: Config) -> tuple[Traced, StageReport]:
    """``trace(prepared, linked, config)`` (a plan's trace step) with the edges' evidence added, timed with it."""
    traced, report = trace(prepared, linked, config)
    started = time.perf_counter()
    traced.edges, traced.evidence = edge_evidence(prepared, linked, traced.edges, config)
    report.seconds = round(report.seconds + time.perf_counter() - started, 4)
    report.stats = {**report.stats, "evidence_passages": traced.evidence.height}
    return traced, report
