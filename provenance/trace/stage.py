"""The trace stage: completeness, the derivation model (origin, parents, parent confidence), depths, edge statistics.

Everything here is local to a cluster except the :class:`CorpusFacts`
(publication dates, cluster-level word, line and n-gram counts), so
:func:`trace_clusters` can re-trace any set of whole clusters and get what a
full run gives them; the store's incremental runs re-trace only the clusters
that changed.  The derivation model (``trace.derivation``) and the edge
statistics run in batches of whole clusters of about ``words_batch``
documents, so no per-token array of the whole corpus ever exists.  Progress is
told batch by batch, in three passes: ``trace 1/3`` (the model's counts,
documents), ``trace 2/3`` (the model, documents), ``trace 3/3`` (edge
statistics, edges).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from provenance import tables
from provenance.config import Config
from provenance.kernels import doc_keys
from provenance.link import lsh
from provenance.link.stage import Linked, threads
from provenance.link.verify import intersection_sizes
from provenance.prepare import normalize, shingle
from provenance.prepare.stage import Prepared, batches
from provenance.stage_report import Progress, StageReport, no_progress, timed
from provenance.trace import changes, derivation, origin, reprice, tree, wordfreq

#: ``consulted``: the substitutions between each origin and its children, with the frequency comparison they rest on.
CONSULTED_SCHEMA = pl.Schema({"origin_row": pl.Int64, "word_a": pl.String, "word_b": pl.String, "sign": pl.Int8})
#: A ``published_at`` string that ends in a time zone (``Z``, ``+01:00``, ``-0500``).
ZONE_PATTERN = r"[+-]\d\d:?\d\d$|Z$"


@dataclass
class CorpusFacts:
    """What the per-cluster trace needs to know about the whole corpus."""

    #: Clusters using each word, by spelling (members and a sample of singletons, ``trace.wordfreq``).
    frequency: Mapping[str, int] | None
    #: Publication time (µs) per row, or ``None`` when the corpus has no dates.
    published: np.ndarray | None
    #: The derivation model's cluster-level counts (words, short lines, their n-grams).
    derivation: derivation.DerivationFacts | None = None


@dataclass
class ClusterTrace:
    """Trace of some whole clusters, in corpus rows.

    ``placement``: ``row, is_origin, parent_row (-1: none), depth, completeness``;
    ``edges``: ``parent, child`` rows with similarity and change statistics;
    ``consulted``: ``origin_row, word_a, word_b, sign`` (:data:`CONSULTED_SCHEMA`);
    ``priced``: the derivation with the word counts left out (``trace.reprice``), what a store decides again from.
    """

    placement: pl.DataFrame
    edges: pl.DataFrame
    consulted: pl.DataFrame
    priced: reprice.Priced | None = None


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


def keep_views_of_copies(prepared: Prepared, cluster: np.ndarray) -> None:
    """Cut ``prepared.views`` to the members of multi-document clusters: from trace on nothing reads the others' (at 1M, 1.7 GiB)."""
    members = multi_members(cluster)
    prepared.views.update({name: sets.only(members) for name, sets in prepared.views.items()})


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


def derivation_facts(
    cluster: np.ndarray, texts: pl.Series, keys: np.ndarray, config: Config, *, progress: Progress = no_progress,
) -> derivation.DerivationFacts:
    """The model's counts over every member of a multi-document cluster and a sample of singletons (copies count once).

    Counted in batches of whole clusters; the sample (``wordfreq.frequency_sample``)
    bounds the cost at any corpus size and is what an incremental run samples too.
    """
    parts_rows = cluster_batches(cluster, multi_members(cluster), config.run.batch_size)
    sample = wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample)
    rows_all = [r for r in [*parts_rows, sample] if len(r)]
    total, done = int(sum(len(rows) for rows in rows_all)), 0
    progress("trace 1/3", 0, total, "documents")
    parts = []
    for rows in rows_all:
        parts.append(derivation.fact_parts(texts.gather(rows), cluster[rows], config.trace))
        done += len(rows)
        progress("trace 1/3", done, total, "documents")
    counted = int(sum(len(np.unique(cluster[rows])) for rows in rows_all))
    return derivation.facts_of(parts, counted)


def corpus_facts(
    documents: pl.DataFrame, cluster: np.ndarray, config: Config, keys: np.ndarray | None = None, *, progress: Progress = no_progress,
) -> CorpusFacts:
    """Dates and the model's counts; ``keys`` are the rows' :func:`kernels.doc_keys` if the caller has them already."""
    published = published_times(documents)
    keys = doc_keys(documents["doc_id"]) if keys is None else keys
    facts = derivation_facts(cluster, documents["text"], keys, config, progress=progress)
    return CorpusFacts(derivation.WordCounts(facts.words), published, facts)


def derive_clusters(sub: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, published: np.ndarray | None, facts: CorpusFacts,
                    config: Config, *, progress: Progress = no_progress,
                    priced: list[reprice.Priced] | None = None) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, str, int]]]:
    """``(parent row or -1, parent_confidence, consulted)`` of every row of ``sub`` (``trace.derivation``), in batches of whole clusters.

    ``consulted``: ``(cluster, word of the origin, word of a child, sign of their frequency difference)``
    for the substitutions between each origin and its children, the comparisons spin direction rests on.
    ``priced``, when given, receives each batch's :class:`reprice.Priced`.
    """
    n = len(cluster)
    parent = np.full(n, -1, dtype=np.int64)
    confidence = np.full(n, np.nan)
    consulted: list[tuple[int, str, str, int]] = []
    members = multi_members(cluster)
    progress("trace 2/3", 0, len(members), "documents")
    if len(members) == 0:
        return parent, confidence, consulted
    dfacts = facts.derivation if facts.derivation is not None else derivation.DerivationFacts.empty()
    frequency = facts.frequency or {}
    keys = doc_keys(sub.documents["doc_id"])
    a_all = pairs["a"].to_numpy().astype(np.int64)
    b_all = pairs["b"].to_numpy().astype(np.int64)
    inside = cluster[a_all] == cluster[b_all]
    a_all, b_all = a_all[inside], b_all[inside]
    similarity = pairs["jaccard"].to_numpy().astype(np.float64)[inside]
    chosen = derivation.candidate_pairs(a_all, b_all, similarity, keys, n, config.trace.candidate_parents)
    a_all, b_all = a_all[chosen], b_all[chosen]
    batch_of = np.full(n, -1, dtype=np.int64)
    position = np.full(n, -1, dtype=np.int64)
    batches_ = cluster_batches(cluster, members, min(config.run.batch_size, config.run.words_batch))
    for i, rows in enumerate(batches_):
        batch_of[rows] = i
        position[rows] = np.arange(len(rows))
    pair_batch = batch_of[a_all]
    order = np.argsort(pair_batch, kind="stable")
    a_all, b_all, pair_batch = a_all[order], b_all[order], pair_batch[order]
    cuts = np.searchsorted(pair_batch, np.arange(len(batches_) + 1))
    texts = sub.documents["text"]
    done = 0
    for i, rows in enumerate(batches_):
        a, b = position[a_all[cuts[i]:cuts[i + 1]]], position[b_all[cuts[i]:cuts[i + 1]]]
        batch = derivation.batch_arrays(texts.gather(rows), dfacts, config.trace, config.changes.max_align_tokens)
        when = None
        if published is not None:
            when = published[rows].astype(np.float64)
        got = derivation.derive(batch, cluster[rows], keys[rows], a, b, config.trace, when)
        has = got.parent >= 0
        parent[rows[has]] = rows[got.parent[has]]
        confidence[rows] = got.parent_confidence
        consulted.extend(_consulted(got, rows, cluster, frequency))
        if priced is not None and got.pricing is not None:
            priced.append(reprice.Priced.of(got.pricing, batch, dfacts, sub.documents["doc_id"].gather(rows), a, b))
        done += len(rows)
        progress("trace 2/3", done, len(members), "documents")
    return parent, confidence, consulted


def _consulted(got: derivation.Derivation, rows: np.ndarray, cluster: np.ndarray, frequency: Mapping[str, int]) -> list[tuple[int, str, str, int]]:
    """Substitutions on the pairs joining each origin to one of its children, as ``(cluster, origin's word, child's word, sign)``."""
    if got.subs.height == 0:
        return []
    a, b = got.edges["a"].to_numpy(), got.edges["b"].to_numpy()
    pa, pb = got.parent[a], got.parent[b]
    a_origin = (pa < 0) & (pb == a)
    b_origin = (pb < 0) & (pa == b)
    pair = got.subs["pair"].to_numpy()
    keep = a_origin[pair] | b_origin[pair]
    if not keep.any():
        return []
    flip = b_origin[pair][keep]
    ids_a, ids_b = got.subs["tok_a"].to_numpy()[keep], got.subs["tok_b"].to_numpy()[keep]
    ids, back = np.unique(np.concatenate([ids_a, ids_b]), return_inverse=True)
    spelled = np.array(got.spell(ids), dtype=object)[back.reshape(-1)]
    wa, wb = spelled[: len(ids_a)], spelled[len(ids_a) :]
    origin_word = np.where(flip, wb, wa)
    child_word = np.where(flip, wa, wb)
    cl = cluster[rows[a[pair[keep]]]]
    differ = origin_word != child_word
    cl, origin_word, child_word = cl[differ], origin_word[differ], child_word[differ]
    sign = np.sign(wordfreq.counts_of(frequency, origin_word.tolist()) - wordfreq.counts_of(frequency, child_word.tolist()))
    return list(zip(cl.tolist(), origin_word.tolist(), child_word.tolist(), sign.astype(int).tolist()))



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


def pairs_inside(pairs: pl.DataFrame, local: np.ndarray) -> pl.DataFrame:
    """``pairs`` with both rows in a sub-corpus, renumbered by ``local`` (corpus row -> sub-corpus row, -1: outside)."""
    a = local[pairs["a"].to_numpy().astype(np.int64)]
    b = local[pairs["b"].to_numpy().astype(np.int64)]
    inside = (a >= 0) & (b >= 0)
    return pairs.filter(pl.Series(inside)).with_columns(
        pl.Series("a", a[inside], dtype=pl.UInt32), pl.Series("b", b[inside], dtype=pl.UInt32)
    )


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
    sub_pairs = pairs_inside(pairs, local)
    sub = Prepared(prepared.documents[pl.Series(rows)], prepared.rejects, views, {}, boilerplate)
    return sub, sub_pairs


def edge_figures(sub: Prepared, parents: pl.DataFrame, rows: np.ndarray, config: Config, *, progress: Progress = no_progress) -> pl.DataFrame:
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
    progress("trace 3/3", 0, edge_rows.height, "edges")
    parts = []
    for lo, hi in batches(max(edge_rows.height, 1), size):
        parts.append(changes.edge_changes(edge_rows.slice(lo, hi - lo), texts, config.changes))
        progress("trace 3/3", min(hi, edge_rows.height), edge_rows.height, "edges")
    stats = pl.concat(parts)
    return pl.DataFrame(
        {
            "parent": rows[parent].astype(np.int64),
            "child": rows[child].astype(np.int64),
            "confidence": parents["parent_confidence"].round(6),
            "parent_confidence": parents["parent_confidence"].round(6),
            "similarity": parents["score"].round(6),
            "jaccard": np.round(jac, 6),
            "containment_child_in_parent": np.round(c_in_p, 6),
            "containment_parent_in_child": np.round(p_in_c, 6),
        }
    ).hstack(stats)


def _containment(sets: shingle.ShingleSets, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Share of each child's shingles its parent holds (the edge's ``similarity``)."""
    if len(child) == 0:
        return np.zeros(0)
    inter = intersection_sizes(sets, child, parent).astype(np.float64)
    size = sets.sizes()[child].astype(np.float64)
    return np.where(size > 0, inter / np.maximum(size, 1), 0.0)


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


@dataclass
class Derived:
    """Pass 2 of some whole clusters: their placement and consulted comparisons, and their parents in ``rows``' numbering."""

    rows: np.ndarray
    placement: pl.DataFrame
    consulted: pl.DataFrame
    #: ``child, parent`` (positions in ``rows``), ``score``, ``parent_confidence``: what pass 3 makes edges of.
    parents: pl.DataFrame
    #: The derivation with the word counts left out (``trace.reprice``), when asked for.
    priced: reprice.Priced | None = None


def _part(prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, rows: np.ndarray | None):
    """``(sub corpus, its pairs, its dense clusters, its dates, its rows)`` of the clusters made of ``rows`` (default all)."""
    if rows is None:
        return prepared, pairs, cluster, facts.published, np.arange(prepared.documents.height)
    sub, sub_pairs = sub_corpus(prepared, pairs, rows)
    published = facts.published[rows] if facts.published is not None else None
    return sub, sub_pairs, tables.dense_clusters(cluster[rows]), published, rows


def derive_part(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config, rows: np.ndarray | None = None,
    *, progress: Progress = no_progress, keep_priced: bool = False,
) -> Derived:
    """Completeness, origin, parents and depths of the clusters made of ``rows`` (sorted; default all): trace's pass 2.

    ``keep_priced``: also the derivation with the counts left out (``Derived.priced``, what a store keeps).
    """
    sub, sub_pairs, sub_cluster, published, rows = _part(prepared, pairs, cluster, facts, rows)
    return derive_sub_corpus(sub, sub_pairs, sub_cluster, published, facts, config, rows, progress=progress, keep_priced=keep_priced)


def derive_sub_corpus(
    sub: Prepared, sub_pairs: pl.DataFrame, sub_cluster: np.ndarray, published: np.ndarray | None, facts: CorpusFacts,
    config: Config, rows: np.ndarray, *, progress: Progress = no_progress, keep_priced: bool = False,
) -> Derived:
    """:func:`derive_part` of a corpus of whole clusters already cut out (``sub_corpus``): its row ``i`` is corpus row ``rows[i]``.

    ``sub`` needs only ``doc_id`` and ``text`` and the views; ``published`` and
    ``sub_cluster`` (dense) are the sub-corpus's.  A trace partition on a
    worker builds these from files (``trace.parts``).
    """
    complete = origin.completeness(sub_cluster, sub.views, config.trace.completeness_anchor_weight)
    priced: list[reprice.Priced] | None = [] if keep_priced else None
    parent_of, confidence, consulted = derive_clusters(sub, sub_pairs, sub_cluster, published, facts, config, progress=progress, priced=priced)
    is_origin = parent_of < 0
    child = np.flatnonzero(parent_of >= 0)
    lineage = lineage_of_members(sub.documents["text"], sub_cluster, config)
    score = _containment(lineage, child, parent_of[child])
    parents = pl.DataFrame({
        "child": child, "parent": parent_of[child], "score": score, "parent_confidence": confidence[child],
    }, schema={"child": pl.Int64, "parent": pl.Int64, "score": pl.Float64, "parent_confidence": pl.Float64})
    placement = pl.DataFrame(
        {
            "row": rows.astype(np.int64),
            "is_origin": is_origin,
            "parent_row": np.where(parent_of >= 0, rows[np.maximum(parent_of, 0)], -1).astype(np.int64),
            "depth": tree.depths(parent_of).astype(np.int32),
            "completeness": np.round(complete, 6),
        }
    )
    origin_row = np.full(len(sub_cluster), -1, dtype=np.int64)
    origin_row[sub_cluster[is_origin]] = rows[np.flatnonzero(is_origin)]
    return Derived(rows, placement, consulted_frame(consulted, origin_row), parents,
                   reprice.Priced.concat(priced) if priced is not None else None)


def edges_part(prepared: Prepared, derived: Derived, whole: bool = False, *, config: Config, progress: Progress = no_progress) -> pl.DataFrame:
    """Tree edges of ``derived``'s clusters with their statistics: trace's pass 3 (``whole``: ``prepared`` is those clusters already)."""
    sub = prepared if whole else sub_corpus(prepared, pl.DataFrame(schema=lsh.PAIRS_SCHEMA), derived.rows)[0]
    return edge_figures(sub, derived.parents, derived.rows, config, progress=progress)


def trace_sub_corpus(
    sub: Prepared, sub_pairs: pl.DataFrame, sub_cluster: np.ndarray, published: np.ndarray | None, facts: CorpusFacts,
    config: Config, rows: np.ndarray, *, progress: Progress = no_progress,
) -> ClusterTrace:
    """Passes 2 and 3 of a sub-corpus of whole clusters (:func:`derive_sub_corpus`, then its edges)."""
    derived = derive_sub_corpus(sub, sub_pairs, sub_cluster, published, facts, config, rows, progress=progress)
    edges = edges_part(sub, derived, True, config=config, progress=progress)
    return ClusterTrace(derived.placement, edges, derived.consulted)


def trace_clusters(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config, rows: np.ndarray | None = None,
    *, progress: Progress = no_progress, keep_priced: bool = False,
) -> ClusterTrace:
    """Completeness, origin, parents, depths and edge statistics of the clusters made of ``rows`` (sorted; default all).

    ``keep_priced``: also the derivation with the counts left out (``ClusterTrace.priced``, what a store keeps).
    """
    derived = derive_part(prepared, pairs, cluster, facts, config, rows, progress=progress, keep_priced=keep_priced)
    edges = edges_part(prepared, derived, rows is None, config=config, progress=progress)
    return ClusterTrace(derived.placement, edges, derived.consulted, derived.priced)


def trace_clusters_in_batches(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config, rows: np.ndarray,
    *, progress: Progress = no_progress, keep_priced: bool = False,
) -> ClusterTrace:
    """:func:`trace_clusters` of ``rows`` (whole clusters), a batch of about ``run.batch_size`` rows at a time.

    Each cluster is traced from its own members and the corpus facts alone,
    so the batches give the tables one call would; memory is one batch's
    sub-corpus (a store's first run over a million documents traces 200k
    members: in one call, their alignments alone were several GiB).
    """
    rows = np.asarray(rows, dtype=np.int64)
    groups = cluster_batches(cluster, rows, config.run.batch_size)
    if not groups:
        return trace_clusters(prepared, pairs, cluster, facts, config, rows=rows, progress=progress, keep_priced=keep_priced)
    in_multi = int((np.bincount(cluster, minlength=len(cluster))[cluster[rows]] > 1).sum())  # what pass 2 counts
    told = PartsProgress(progress, "trace 2/3", in_multi, "documents")
    derived = [derive_part(prepared, pairs, cluster, facts, config, g, progress=told.part(k), keep_priced=keep_priced) for k, g in enumerate(groups)]
    told = PartsProgress(progress, "trace 3/3", sum(d.parents.height for d in derived), "edges")
    edges = [edges_part(prepared, d, config=config, progress=told.part(k)) for k, d in enumerate(derived)]
    priced = reprice.Priced.concat([d.priced for d in derived if d.priced is not None]) if keep_priced else None
    return merged_parts(derived, edges, priced=priced)


def merged_parts(derived: list[Derived], edges: list[pl.DataFrame], *, first: tuple[pl.DataFrame, ...] | list[pl.DataFrame] = (), priced: reprice.Priced | None = None) -> ClusterTrace:
    """One :class:`ClusterTrace` of parts of whole clusters (``first``: more placement rows, e.g. the singletons')."""
    placement = pl.concat([*first, *(d.placement for d in derived)], how="vertical_relaxed").sort("row")
    consulted = pl.concat([d.consulted for d in derived]).unique().sort(pl.all())
    return ClusterTrace(placement, pl.concat(edges, how="vertical_relaxed"), consulted, priced)


#: Fewest members of multi-document clusters for trace to split them over threads (below it, threads cost more than they save).
PARALLEL_MIN_MEMBERS = 2_000


def cluster_parts(cluster: np.ndarray, parts: int, members: np.ndarray | None = None) -> list[np.ndarray]:
    """Members of multi-document clusters (or ``members``, whole clusters) in ``parts`` sets of whole clusters, balanced by size (each sorted).

    Largest cluster first, each to the lightest part so far: deterministic, and
    no part waits on more than one viral cluster beyond its share.
    """
    members = multi_members(cluster) if members is None else members
    if parts <= 1 or len(members) == 0:
        return [members] if len(members) else []
    ids, sizes = np.unique(cluster[members], return_counts=True)
    order = np.lexsort((ids, -sizes))
    load = np.zeros(parts, dtype=np.int64)
    part_of = np.empty(len(ids), dtype=np.int64)
    for i in order.tolist():
        k = int(np.argmin(load))
        part_of[i] = k
        load[k] += sizes[i]
    where = part_of[np.searchsorted(ids, cluster[members])]
    return [members[where == k] for k in range(parts) if (where == k).any()]


def part_count(members: int, workers: int, budget: int) -> int:
    """Parts for ``members`` documents: one per worker at least, and enough that each holds about ``budget`` (memory)."""
    return max(workers, -(-members // max(1, budget)))


def singleton_placement(cluster: np.ndarray) -> pl.DataFrame:
    """Placement rows of the documents with no copies: each its own origin, depth 0, complete."""
    rows = np.flatnonzero(np.bincount(cluster, minlength=len(cluster))[cluster] == 1).astype(np.int64)
    return pl.DataFrame({
        "row": rows, "is_origin": np.ones(len(rows), dtype=bool), "parent_row": np.full(len(rows), -1, dtype=np.int64),
        "depth": np.zeros(len(rows), dtype=np.int32), "completeness": np.ones(len(rows)),
    })


class PartsProgress:
    """One :class:`Progress` for a pass that runs in parts on threads: the parts' counts summed, against the pass's total.

    The total is known before the parts start (pass 2 counts members, pass 3
    the edges pass 2 found), so a part still queued counts 0 and the sum
    only grows, ending at ``done == total``.
    """

    def __init__(self, progress: Progress, stage: str, total: int, unit: str) -> None:
        self.progress, self.stage, self.total, self.unit = progress, stage, total, unit
        self.done: dict[int, int] = {}
        self.lock = threading.Lock()
        progress(stage, 0, total, unit)

    def part(self, k: int) -> Progress:
        """The :class:`Progress` part ``k`` is given (it hears only its own pass)."""
        def told(stage: str, done: int, total: int, unit: str) -> None:
            if stage != self.stage:
                return
            with self.lock:
                before = sum(self.done.values())
                self.done[k] = done
                now = sum(self.done.values())
                if now > before:
                    self.progress(self.stage, now, self.total, self.unit)
        return told


def trace_in_parts(prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config,
                   parts: int | None = None, *, progress: Progress = no_progress) -> ClusterTrace:
    """:func:`trace_clusters` of every cluster, in parts of whole clusters on ``parts`` threads (default: the cores).

    Every figure of a cluster depends on its own members and the corpus facts
    only, so parts of whole clusters give the same tables; the compiled
    kernels, polars and rapidfuzz release the GIL, so the parts overlap.
    Each part holds about ``batch_size`` members (a larger cluster is a part
    of its own), so memory follows the part, not the corpus: a part's texts,
    sets and alignments are freed before the next part starts.
    """
    workers = threads() if parts is None else parts
    members = multi_members(cluster)
    if workers <= 1 or len(members) < PARALLEL_MIN_MEMBERS:
        return trace_clusters(prepared, pairs, cluster, facts, config, progress=progress)
    groups = cluster_parts(cluster, part_count(len(members), workers, config.run.batch_size))
    with ThreadPoolExecutor(min(workers, len(groups)), thread_name_prefix="trace") as pool:
        told = PartsProgress(progress, "trace 2/3", len(members), "documents")
        derived = list(pool.map(
            lambda k: derive_part(prepared, pairs, cluster, facts, config, rows=groups[k], progress=told.part(k)), range(len(groups))
        ))
        told = PartsProgress(progress, "trace 3/3", sum(d.parents.height for d in derived), "edges")
        edges = list(pool.map(lambda k: edges_part(prepared, derived[k], config=config, progress=told.part(k)), range(len(groups))))
    return merged_parts(derived, edges, first=[singleton_placement(cluster)])


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


#: How the corpus facts are counted and every cluster traced: in this process by default; ``trace.parts`` runs both as partitions.
TraceAll = Callable[..., ClusterTrace]


def trace_stage(
    prepared: Prepared, linked: Linked, config: Config, *, progress: Progress = no_progress, trace_all: TraceAll | None = None,
) -> tuple[tables.Traced, StageReport]:
    """Trace every cluster and assemble the output tables.

    With texts on disk (``prepared.texts``) only the rows trace reads are
    loaded, and the documents table comes out with null texts elsewhere: the
    stage chain puts them back before writing.  ``trace_all(prepared, pairs,
    cluster, keys, config, progress=..., report=...)`` counts the corpus facts
    and traces the clusters (default: :func:`corpus_facts`, then
    :func:`trace_in_parts`); any of them gives the same tables.
    """
    docs = prepared.documents
    report = StageReport("trace", rows_in=docs.height)
    with timed(report):
        cluster = tables.dense_clusters(linked.roots)
        keys = doc_keys(docs["doc_id"])
        prepared = with_trace_texts(prepared, cluster, keys, config)
        docs = prepared.documents
        if trace_all is None:
            facts = corpus_facts(docs, cluster, config, keys, progress=progress)
            traced = trace_in_parts(prepared, linked.pairs, cluster, facts, config, progress=progress)
        else:
            traced = trace_all(prepared, linked.pairs, cluster, keys, config, progress=progress, report=report)
        is_origin = traced.placement.sort("row")["is_origin"].to_numpy()
        ids = tables.fresh_cluster_ids(docs["doc_id"], cluster, is_origin)
        out = tables.assemble_tables(docs, traced.placement, traced.edges, ids, config.changes.spin_min_rate)
        report.rows_out = out.edges.height
        report.stats = {
            "clusters": out.clusters.height,
            "multi_document_clusters": int((out.clusters["size"] > 1).sum()),
            "largest_cluster": int(out.clusters["size"].max() or 0),
            "edges": out.edges.height,
            **report.stats,  # what ``trace_all`` told it (a partitioned trace's bytes)
        }
    return out, report
