"""The trace stage: completeness, origins, parents, depths and per-edge change statistics.

Everything here is local to a cluster except the :class:`CorpusFacts`
(publication dates, corpus word frequencies), so :func:`trace_clusters` can
re-trace any set of whole clusters and get what a full run gives them; the
store's incremental runs re-trace only the clusters that changed.  Steps that
hold Python objects per word (orientation, edge statistics) run in batches of
whole clusters of about ``words_batch`` documents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from provenance import tables
from provenance.config import Config
from provenance.kernels import doc_keys
from provenance.link.stage import Linked
from provenance.link.verify import intersection_sizes
from provenance.prepare import normalize, shingle
from provenance.prepare.stage import Prepared, batches
from provenance.prepare.words import Words, doc_words
from provenance.stage_report import StageReport, timed
from provenance.trace import changes, origin, tree, wordfreq

#: ``consulted``: the frequency comparisons behind each origin choice.
CONSULTED_SCHEMA = pl.Schema({"origin_row": pl.Int64, "word_a": pl.String, "word_b": pl.String, "sign": pl.Int8})
#: The tree view's name among the views :func:`tree.choose_parents` scores.
LINEAGE = "lineage"
#: A ``published_at`` string that ends in a time zone (``Z``, ``+01:00``, ``-0500``).
ZONE_PATTERN = r"[+-]\d\d:?\d\d$|Z$"


@dataclass
class CorpusFacts:
    """What the per-cluster trace needs to know about the whole corpus."""

    #: Word frequencies (``trace.wordfreq``) for spin direction (``None``: no direction from words).
    frequency: dict[str, int] | None
    #: Publication time (µs) per row, or ``None`` when the corpus has no dates.
    published: np.ndarray | None


@dataclass
class ClusterTrace:
    """Trace of some whole clusters, in corpus rows.

    ``placement``: ``row, is_origin, parent_row (-1: none), depth, completeness``;
    ``edges``: ``parent, child`` rows with similarity and change statistics;
    ``consulted``: ``origin_row, word_a, word_b, sign`` (:data:`CONSULTED_SCHEMA`).
    """

    placement: pl.DataFrame
    edges: pl.DataFrame
    consulted: pl.DataFrame


def published_times(documents: pl.DataFrame) -> np.ndarray | None:
    """``published_at`` as µs since the epoch per row (time zones honoured when the strings carry them), or None."""
    if "published_at" not in documents.columns:
        return None
    col = documents["published_at"]
    if col.dtype == pl.String:
        with_zone = col.str.contains(ZONE_PATTERN).any()
        col = col.str.to_datetime(strict=False, time_zone="UTC") if with_zone else col.str.to_datetime(strict=False)
    if not col.dtype.is_temporal():
        return None
    if isinstance(col.dtype, pl.Datetime):
        values = col.cast(pl.Datetime("us")).dt.replace_time_zone(None).cast(pl.Int64)
    else:
        values = col.cast(pl.Datetime("us")).cast(pl.Int64)
    return None if values.null_count() == len(values) else values.to_numpy()


def multi_members(cluster: np.ndarray) -> np.ndarray:
    """Rows (ascending) of every cluster with more than one document: all that trace reads texts of."""
    return np.flatnonzero(np.bincount(cluster, minlength=len(cluster))[cluster] > 1)


def cluster_batches(cluster: np.ndarray, members: np.ndarray, size: int) -> list[np.ndarray]:
    """``members`` cut into batches of about ``size`` rows that never split a cluster."""
    order = members[np.argsort(cluster[members], kind="stable")]
    if len(order) == 0:
        return []
    starts = np.flatnonzero(np.diff(cluster[order], prepend=-1))  # where each cluster begins
    out, lo = [], 0
    for start in starts[1:].tolist() + [len(order)]:
        if start - lo >= size or start == len(order):
            out.append(np.sort(order[lo:start]))
            lo = start
    return [b for b in out if len(b)]


def spin_frequency(cluster: np.ndarray, texts: pl.Series, keys: np.ndarray, config: Config) -> dict[str, int]:
    """In how many clusters (copies count once) each word occurs, over members and a sample of singletons.

    Counted in batches of whole clusters.  Corpus-wide by nature: an
    incremental run recomputes it and re-traces only the clusters whose
    consulted comparisons it flips.
    """
    parts_rows = cluster_batches(cluster, multi_members(cluster), config.run.batch_size)
    sample = wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample)
    parts = [wordfreq.cluster_frequency(cluster, texts, rows) for rows in [*parts_rows, sample]]
    counts = pl.concat(parts).group_by("token").agg(pl.col("n").sum())
    return dict(zip(counts["token"].to_list(), counts["n"].to_list()))


def corpus_facts(documents: pl.DataFrame, cluster: np.ndarray, config: Config, keys: np.ndarray | None = None) -> CorpusFacts:
    """Dates and word frequencies; ``keys`` are the rows' :func:`kernels.doc_keys` if the caller has them already."""
    # Dates never replace the texts' own direction evidence: the round robin always runs, and a date only orders
    # versions whose completeness is within ``date_tie`` and between which the texts show no direction.
    published = published_times(documents)
    frequency = spin_frequency(cluster, documents["text"], doc_keys(documents["doc_id"]) if keys is None else keys, config)
    return CorpusFacts(frequency, published)


def member_words(texts: pl.Series, rows: np.ndarray, boilerplate: pl.DataFrame | None, max_tokens: int) -> dict[int, Words]:
    """:class:`Words` of ``rows`` (ascending corpus rows) without their boilerplate lines (``doc, line`` by corpus row)."""
    drop = None
    if boilerplate is not None and boilerplate.height:
        position = pl.DataFrame({"doc": rows.astype(np.int64), "at": np.arange(len(rows), dtype=np.int64)})
        drop = (
            boilerplate.select(pl.col("doc").cast(pl.Int64), "line").join(position, on="doc")
            .select(pl.col("at").alias("doc"), "line")
        )
    return dict(zip(rows.tolist(), doc_words(texts.gather(rows), max_tokens, drop)))


def orient(
    cluster: np.ndarray, rank: np.ndarray, prepared: Prepared, config: Config, frequency: dict[str, int] | None,
    consulted: list[tuple[int, str, str, int]] | None = None,
) -> np.ndarray:
    """Re-rank every multi-member cluster by direction of derivation.

    The origin is the round-robin winner of ``origin.refine_origins`` among the
    most complete members, ranked with dates breaking completeness near-ties; the other members
    follow by edit depth from the origin (``tree.edit_depth``), so a candidate
    parent has fewer derived changes than its child.  In batches of whole
    clusters, so only one batch's words are in memory at once.  ``consulted``
    collects the frequency comparisons made (``cluster, word, word, sign``).
    """
    members = multi_members(cluster)
    if len(members) == 0:
        return rank
    options = config.trace
    texts = prepared.documents["text"]
    rank = rank.copy()
    depth = np.zeros(len(cluster))
    for rows in cluster_batches(cluster, members, min(config.run.batch_size, config.run.words_batch)):
        clusters_here, local_cluster = np.unique(cluster[rows], return_inverse=True)
        words = member_words(texts, rows, prepared.boilerplate, config.changes.max_align_tokens)
        local_words = {i: words[int(r)] for i, r in enumerate(rows.tolist())}
        local_rank = rank[rows]
        if frequency is not None:
            seen: list[tuple[int, str, str, int]] | None = [] if consulted is not None else None
            local_rank = origin.refine_origins(local_cluster, local_rank, local_words, frequency, options, seen)
            if consulted is not None and seen:
                consulted.extend((int(clusters_here[c]), wa, wb, sign) for c, wa, wb, sign in seen)
        rank[rows] = local_rank
        depth[rows] = tree.edit_depth(
            local_cluster, local_rank, local_words, lost_run_weight=options.lost_run_weight, lost_token_weight=options.lost_token_weight
        )
    return tree.order_by_depth(cluster, rank, depth)


def lineage_of_members(texts: pl.Series, cluster: np.ndarray, config: Config) -> shingle.ShingleSets:
    """Lineage sets (``shingle.lineage_sets``) of members of multi-document clusters; empty for singletons.

    Only parent choice uses them, so they are built here for the few
    documents that have copies instead of being kept for the whole corpus.
    """
    n = len(cluster)
    members = multi_members(cluster)
    sizes = np.zeros(n, dtype=np.int64)
    parts = []
    for lo in range(0, len(members), config.run.batch_size):
        rows = members[lo : lo + config.run.batch_size]
        tokens = normalize.tokenize(texts.gather(rows), config.prepare.seed)
        sets = shingle.lineage_sets(tokens, len(rows), ngram=config.trace.lineage_ngram)
        sizes[rows] = sets.sizes()
        parts.append(sets.hashes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    # Members are in row order and singletons hold nothing: the members' sets,
    # one after the other, are exactly the flat array.
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return shingle.ShingleSets(hashes, offsets)


def sub_corpus(prepared: Prepared, pairs: pl.DataFrame, rows: np.ndarray) -> tuple[Prepared, pl.DataFrame]:
    """``prepared`` and ``pairs`` restricted to ``rows`` (sorted), renumbered 0..len(rows)."""
    local = np.full(prepared.documents.height, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    views = {name: sets.take(rows) for name, sets in prepared.views.items()}
    boilerplate = None
    if prepared.boilerplate is not None:
        bp = prepared.boilerplate
        doc = local[bp["doc"].to_numpy().astype(np.int64)]
        boilerplate = bp.with_columns(pl.Series("doc", np.maximum(doc, 0), dtype=pl.UInt32)).filter(pl.Series(doc >= 0))
    a = local[pairs["a"].to_numpy().astype(np.int64)]
    b = local[pairs["b"].to_numpy().astype(np.int64)]
    inside = (a >= 0) & (b >= 0)
    sub_pairs = pairs.filter(pl.Series(inside)).with_columns(
        pl.Series("a", a[inside], dtype=pl.UInt32), pl.Series("b", b[inside], dtype=pl.UInt32)
    )
    sub = Prepared(prepared.documents[pl.Series(rows)], prepared.rejects, views, {}, boilerplate)
    return sub, sub_pairs


def rank_members(sub: Prepared, cluster: np.ndarray, published: np.ndarray | None, facts: CorpusFacts, config: Config,
                 consulted: list[tuple[int, str, str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(completeness, rank) of every row: the origin decision (``trace.origin``), then edit-depth order."""
    complete = origin.completeness(cluster, sub.views, config.trace.completeness_anchor_weight)
    rank = origin.origin_rank(cluster, complete, sub.documents["n_tokens"].to_numpy(), published, date_tie=config.trace.date_tie)
    return complete, orient(cluster, rank, sub, config, facts.frequency, consulted)


def edge_figures(sub: Prepared, parents: pl.DataFrame, rows: np.ndarray, config: Config) -> pl.DataFrame:
    """Tree edges in corpus rows with their confidence, similarity, set overlaps and change statistics."""
    child, parent = parents["child"].to_numpy(), parents["parent"].to_numpy()
    words = sub.views["words"]
    inter = intersection_sizes(words, child, parent).astype(np.float64)
    sc, sp = words.sizes()[child].astype(np.float64), words.sizes()[parent].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = np.where(sc + sp - inter > 0, inter / (sc + sp - inter), 0.0)
        c_in_p = np.where(sc > 0, inter / sc, 0.0)
        p_in_c = np.where(sp > 0, inter / sp, 0.0)
    edge_rows = parents.select("parent", "child")
    texts = sub.documents["text"]
    size = min(config.run.batch_size, config.run.words_batch)
    stats = pl.concat([
        changes.edge_changes(edge_rows.slice(lo, hi - lo), texts, config.changes)
        for lo, hi in batches(max(edge_rows.height, 1), size)
    ])
    return pl.DataFrame(
        {
            "parent": rows[parent].astype(np.int64),
            "child": rows[child].astype(np.int64),
            "confidence": parents["confidence"].round(6),
            "similarity": parents["score"].round(6),
            "jaccard": np.round(jac, 6),
            "containment_child_in_parent": np.round(c_in_p, 6),
            "containment_parent_in_child": np.round(p_in_c, 6),
        }
    ).hstack(stats)


def consulted_frame(consulted: list[tuple[int, str, str, int]], origin_row: np.ndarray) -> pl.DataFrame:
    """The frequency comparisons behind the origins, keyed by each cluster's origin row (:data:`CONSULTED_SCHEMA`)."""
    if not consulted:
        return pl.DataFrame(schema=CONSULTED_SCHEMA)
    return (
        pl.DataFrame(consulted, schema=["cluster", "word_a", "word_b", "sign"], orient="row")
        .select(pl.Series("origin_row", origin_row[np.array([c for c, *_ in consulted], dtype=np.int64)]),
                "word_a", "word_b", pl.col("sign").cast(pl.Int8))
        .unique()
        .sort(pl.all())
    )


def trace_clusters(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config, rows: np.ndarray | None = None,
) -> ClusterTrace:
    """Completeness, origin, parents, depths and edge statistics of the clusters made of ``rows`` (sorted; default all)."""
    if rows is None:
        sub, sub_pairs, sub_cluster, published = prepared, pairs, cluster, facts.published
        rows = np.arange(prepared.documents.height)
    else:
        sub, sub_pairs = sub_corpus(prepared, pairs, rows)
        sub_cluster = tables.dense_clusters(cluster[rows])
        published = facts.published[rows] if facts.published is not None else None
    consulted: list[tuple[int, str, str, int]] = []
    complete, rank = rank_members(sub, sub_cluster, published, facts, config, consulted)
    views = {**sub.views, LINEAGE: lineage_of_members(sub.documents["text"], sub_cluster, config)}
    parents = tree.choose_parents(sub_cluster, rank, sub_pairs, views, LINEAGE, confidence_coef=config.trace.confidence_coef)
    parent_of = np.full(len(sub_cluster), -1, dtype=np.int64)
    parent_of[parents["child"].to_numpy()] = parents["parent"].to_numpy()
    placement = pl.DataFrame(
        {
            "row": rows.astype(np.int64),
            "is_origin": rank == 0,
            "parent_row": np.where(parent_of >= 0, rows[np.maximum(parent_of, 0)], -1).astype(np.int64),
            "depth": tree.depths(parent_of).astype(np.int32),
            "completeness": np.round(complete, 6),
        }
    )
    origin_row = np.full(len(sub_cluster), -1, dtype=np.int64)
    origin_row[sub_cluster[rank == 0]] = rows[np.flatnonzero(rank == 0)]
    return ClusterTrace(placement, edge_figures(sub, parents, rows, config), consulted_frame(consulted, origin_row))


def with_trace_texts(prepared: Prepared, cluster: np.ndarray, keys: np.ndarray | None, config: Config) -> Prepared:
    """``prepared`` with a ``text`` column holding just what trace reads, when its texts wait on disk.

    Trace reads the members of multi-document clusters and, for word
    frequencies (``keys`` given), the sampled singletons; every other row gets a null.
    """
    if prepared.texts is None:
        return prepared
    rows = multi_members(cluster)
    if keys is not None:
        rows = np.union1d(rows, wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample))
    return replace(prepared, documents=prepared.documents.with_columns(prepared.texts.sparse(rows).alias("text")))


def trace_stage(prepared: Prepared, linked: Linked, config: Config) -> tuple[tables.Traced, StageReport]:
    """Trace every cluster and assemble the output tables.

    With texts on disk (``prepared.texts``) only the rows trace reads are
    loaded, and the documents table comes out with null texts elsewhere: the
    stage chain puts them back before writing.
    """
    docs = prepared.documents
    report = StageReport("trace", rows_in=docs.height)
    with timed(report):
        cluster = tables.dense_clusters(linked.roots)
        keys = doc_keys(docs["doc_id"]) if published_times(docs) is None else None
        prepared = with_trace_texts(prepared, cluster, keys, config)
        docs = prepared.documents
        facts = corpus_facts(docs, cluster, config, keys)
        traced = trace_clusters(prepared, linked.pairs, cluster, facts, config)
        is_origin = traced.placement.sort("row")["is_origin"].to_numpy()
        ids = tables.fresh_cluster_ids(docs["doc_id"], cluster, is_origin)
        out = tables.assemble_tables(docs, traced.placement, traced.edges, ids, config.changes.spin_min_rate)
        report.rows_out = out.edges.height
        report.stats = {
            "clusters": out.clusters.height,
            "multi_document_clusters": int((out.clusters["size"] > 1).sum()),
            "largest_cluster": int(out.clusters["size"].max() or 0),
            "edges": out.edges.height,
        }
    return out, report
