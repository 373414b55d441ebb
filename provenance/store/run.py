"""Incremental runs: extend a store with new documents and redo only what they change.

:func:`run_with_store` runs the one stage chain (``provenance.chain``) with a
:class:`StorePlan`, whose stages reuse what the store holds.  The tables are
those a from-scratch run over everything the store has seen would give (same
clusters, origins, parents and statistics), for work in proportion to what
changed (each decision is a function of ``provenance.store.plan``):

* **prepare** -- a document whose id and fingerprint (text and metadata) are
  in the store is not read again.  New and changed documents are tokenised,
  shingled and signed.  Boilerplate is corpus-wide, so the store keeps every
  document's short-line keys; a stored document holding a line whose
  boilerplate status flipped is re-prepared too.  One holding a word shingle
  that became, or stopped being, frequent is only signed anew from its views.
* **link** -- LSH runs over every signature (sorting band keys is cheap), but
  a candidate pair is verified only if it touches a re-prepared document, an
  exact-duplicate group that changed, or a bucket that lost a member.  Any
  other candidate pair was a candidate last time, on the same sets, so it
  passes exactly when it is among the stored verified pairs.
* **trace** -- a cluster keeps its stored rows when its members, their pairs
  and the recurring short lines its foreign marks rest on are unchanged, and
  its stored derivation, priced at today's word counts (``trace.reprice``),
  gives the same parents (their confidence is today's); the others are
  re-traced.  The counts are the last run's, updated by the counted units
  that are gone and new.  Cluster ids are stable (``tables.stable_ids``); the
  events go to ``cluster_history``.
* **write** -- the new generation's segment and tables are written, then the
  manifest is replaced (the commit), then the output link is swapped.

A document whose id is stored but whose fingerprint changed is a new
*version*: it replaces the old one everywhere, and the old one's content hash,
fingerprint, text and last cluster stay in ``document_versions``.  Documents
absent from a later input stay in the store: the input of a run is what is
new, not the whole corpus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from provenance import outputs, schemas, spill, tables
from provenance.chain import Hooks, execute
from provenance.outputs import RunResult, write_folder
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import Ingested, Source
from provenance.kernels import doc_keys
from provenance.link.stage import KnownPairs, Linked, link_stage
from provenance.link.verify import PairRule
from provenance.prepare import minhash
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import (
    MapBatches, Prepared, batches, frequency_sample_rows, hex_hashes, sample_frequent_words, share_exact_copies,
    shingle_batch, summarize_batch, too_short_rejects,
)
from provenance.stage_report import Progress, StageReport, no_progress, timed
from provenance.store import index, layout, plan
from provenance.store.layout import Manifest, Segment
from provenance.tables import Traced
from provenance.trace import reprice, wordfreq
from provenance.trace.reprice import Priced
from provenance.trace import derivation
from provenance.trace.stage import CorpusFacts, corpus_facts, keep_views_of_copies, published_times, trace_clusters_in_batches, with_trace_texts

BOILERPLATE_KEYS = pl.Schema({"key": pl.UInt64})


@dataclass
class Arrived:
    """Documents prepared in this run (a store segment), this run's rejects, and what they replace."""

    segment: Segment
    rejects: pl.DataFrame
    #: Ids of stored documents that arrived with another text or metadata (new versions).
    changed_ids: pl.Series
    n_new: int
    n_boilerplate_dirty: int
    #: Stored documents signed anew (views and texts as stored) because a word shingle of theirs became,
    #: or stopped being, frequent: in ``segment``, relinked, but not re-traced for it.
    resigned_ids: pl.Series
    #: The whole corpus after this run (sorted by id), the stored rows it replaces, boilerplate keys, frequent shingles.
    combined: Segment
    removed_rows: np.ndarray
    keys: np.ndarray
    frequent_words: np.ndarray


def _summaries(texts: pl.Series, config: Config, map_batches: MapBatches) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pass 1 over ``texts``: token counts, content hashes, short-line rows and keys."""
    ranges = batches(len(texts), config.run.batch_size)
    parts = map_batches(summarize_batch, [texts.slice(lo, hi - lo) for lo, hi in ranges], [lo for lo, _ in ranges],
                        [config.prepare] * len(ranges))
    return tuple(np.concatenate([getattr(p, name) for p in parts]) for name in ("n_tokens", "content_hash", "line_doc", "line_key"))


def _prepare_rows(
    documents: pl.DataFrame, keys: np.ndarray, frequent_words: np.ndarray, config: Config, map_batches: MapBatches,
) -> tuple[dict[str, ShingleSets], dict[str, np.ndarray], ShingleSets]:
    """Own shingle views, signatures and boilerplate-line ordinals of ``documents`` (boilerplate ``keys``)."""
    n = documents.height
    ranges = batches(n, config.run.batch_size)
    n_tokens = documents["n_tokens"].to_numpy()
    parts = map_batches(
        shingle_batch, [documents["text"].slice(lo, hi - lo) for lo, hi in ranges], [lo for lo, _ in ranges],
        [keys] * len(ranges), [config.prepare] * len(ranges), [n_tokens[lo:hi] for lo, hi in ranges], [frequent_words] * len(ranges),
    )
    views = {name: ShingleSets.concat([p.views[name] for p in parts]) for name in ("words", "anchors")}
    width = config.prepare.num_perm
    signatures = {
        name: np.concatenate([p.signatures[name] for p in parts]) if parts else np.zeros((0, width), np.uint32)
        for name in ("words", "anchors")
    }
    bp = pl.concat([p.boilerplate for p in parts])
    boilerplate = plan.ragged_from_index(bp["doc"].to_numpy().astype(np.int64), bp["line"].to_numpy(), n, np.int32)
    return views, signatures, boilerplate


def _accept(arriving: pl.DataFrame, rejects: pl.DataFrame, config: Config, map_batches: MapBatches) -> tuple[pl.DataFrame, pl.DataFrame, ShingleSets]:
    """Arrivals long enough to keep (with content hash, counts, version), all rejects, their short-line keys."""
    n_tokens, content_hash, line_doc, line_key = _summaries(arriving["text"], config, map_batches)
    too_short = n_tokens < config.prepare.min_tokens
    rejects = pl.concat([rejects, too_short_rejects(arriving.filter(pl.Series(too_short)), config.prepare)])
    keep = ~too_short
    kept_index = np.flatnonzero(keep)
    accepted = (arriving if keep.all() else arriving.filter(pl.Series(keep))).with_columns(
        pl.Series("content_hash", hex_hashes(content_hash[keep]), dtype=pl.String),
        pl.Series("n_tokens", n_tokens[keep], dtype=pl.Int32),
        pl.col("text").str.len_chars().cast(pl.Int32).alias("n_chars"),
        (pl.col("old_version").fill_null(0) + 1).cast(pl.Int32).alias("version"),
    )
    # Short-line keys of the accepted arrivals, renumbered 0..accepted-1.
    local = np.full(len(keep), -1, dtype=np.int64)
    local[kept_index] = np.arange(len(kept_index))
    doc = local[line_doc] if len(line_doc) else np.zeros(0, dtype=np.int64)
    on = doc >= 0
    return accepted, rejects, plan.ragged_from_index(doc[on], line_key[on], len(kept_index), np.uint64)


def _frequent_words(live: Segment, kept_rows: np.ndarray, accepted: pl.DataFrame, keys: np.ndarray, config: Config) -> np.ndarray:
    """The frequent word shingles a fresh run over the stored (``kept_rows``) and ``accepted`` documents would find.

    The sample is drawn by id hash over the whole corpus, so it is the one a
    fresh run draws, and shingled with today's boilerplate ``keys``.
    """
    ids = pl.concat([live.documents["doc_id"].gather(kept_rows), accepted["doc_id"]])
    rows = frequency_sample_rows(ids, config.prepare)
    old, new = rows[rows < len(kept_rows)], rows[rows >= len(kept_rows)] - len(kept_rows)
    stored = live.documents.select("text", "n_tokens")[pl.Series(kept_rows[old])]
    sample = pl.concat([stored, accepted.select("text", "n_tokens")[pl.Series(new)]])
    return sample_frequent_words(sample["text"], sample["n_tokens"].to_numpy(), keys, config.prepare)


def prepare_arrivals(
    ingested: Ingested, live: Segment, previous_keys: np.ndarray, previous_frequent: np.ndarray, config: Config,
    map_batches: MapBatches,
) -> Arrived:
    """This run's prepared documents and the whole corpus they make with the store (see the module docstring)."""
    arriving = plan.arrivals(ingested.documents, live.documents)
    accepted, rejects, arrival_lines = _accept(arriving, ingested.rejects, config, map_batches)
    replaced = live.documents["doc_id"].is_in(accepted["doc_id"].implode()).to_numpy()
    kept_rows = np.flatnonzero(~replaced)
    everything = len(kept_rows) == len(replaced)  # nothing replaced: the stored arrays as they are, not a copy

    def kept(name: str) -> ShingleSets:
        return live.ragged[name] if everything else live.ragged[name].take(kept_rows)

    old_lines = kept("line_keys")
    keys = plan.corpus_boilerplate(old_lines, arrival_lines, config.prepare.boilerplate_min_docs)
    dirty_local = plan.boilerplate_dirty(old_lines, keys, previous_keys)
    frequent_words = _frequent_words(live, kept_rows, accepted, keys, config)
    resign_local = plan.frequent_resign(kept("words"), frequent_words, previous_frequent) & ~dirty_local
    dirty_rows, resign_rows = kept_rows[dirty_local], kept_rows[resign_local]
    clean_rows = kept_rows[~dirty_local & ~resign_local]

    redo = live.take(dirty_rows)
    to_prepare = pl.concat([accepted.drop("old_version", "old_fp"), redo.documents], how="diagonal_relaxed")
    views, signatures, boilerplate = _prepare_rows(to_prepare, keys, frequent_words, config, map_batches)
    lines = ShingleSets.concat([arrival_lines, redo.ragged["line_keys"]])
    prepared_part = Segment(to_prepare, {**views, "line_keys": lines, "boilerplate": boilerplate}, signatures)
    # Only the words signature depends on the frequent shingles: sign the stored views anew.
    resign = live.take(resign_rows)
    resign.signatures["words"] = minhash.signatures(
        resign.ragged["words"], config.prepare.num_perm, config.prepare.seed, frequent_words,
        min_kept_share=config.prepare.frequent_min_kept_share,
    )
    segment = Segment.concat([prepared_part, resign])
    combined = _combined(live, clean_rows, segment)
    removed_rows = np.flatnonzero(replaced | np.isin(np.arange(live.documents.height), np.concatenate([dirty_rows, resign_rows])))
    return Arrived(
        segment, rejects, accepted.filter(pl.col("old_version").is_not_null())["doc_id"],
        int(accepted["old_version"].is_null().sum()), len(dirty_rows), resign.documents["doc_id"],
        combined, removed_rows, keys, frequent_words,
    )


def _combined(live: Segment, clean_rows: np.ndarray, segment: Segment) -> Segment:
    """The whole corpus sorted by id: the clean stored rows and this run's segment.

    With both, gathered once from the two (``Segment.gather``), not taken, concatenated and sorted: at 100k
    that was three copies of every text and set.  With either empty, the other's arrays as they are.
    """
    if len(clean_rows) == 0 or segment.documents.height == 0:
        whole = Segment.concat([live.take(clean_rows), segment])
        return whole.take(whole.documents.select("doc_id").with_row_index("row").sort("doc_id")["row"].to_numpy())
    part = np.concatenate([np.zeros(len(clean_rows), dtype=np.int64), np.ones(segment.documents.height, dtype=np.int64)])
    rows = np.concatenate([clean_rows, np.arange(segment.documents.height)])
    ids = pl.concat([live.documents["doc_id"].gather(clean_rows), segment.documents["doc_id"]])
    order = pl.DataFrame({"doc_id": ids}).with_row_index("i").sort("doc_id")["i"].to_numpy()
    return Segment.gather([live, segment], part[order], rows[order])


def as_prepared(combined: Segment, rejects: pl.DataFrame, frequent_words: np.ndarray) -> Prepared:
    """The whole corpus as the pipeline's :class:`Prepared` (exact copies share anchors, as in a full run)."""
    docs = combined.documents
    base = [c for c in docs.columns if c not in ("version", "fingerprint", "content_hash", "n_tokens", "n_chars")]
    documents = docs.select(*base, "content_hash", "n_tokens", "n_chars")
    views = {"words": combined.ragged["words"], "anchors": combined.ragged["anchors"]}
    signatures = dict(combined.signatures)
    share_exact_copies(documents["content_hash"], views, signatures)
    bp = combined.ragged["boilerplate"]
    boilerplate = pl.DataFrame(
        {"doc": np.repeat(np.arange(docs.height), bp.sizes()).astype(np.uint32), "line": bp.hashes.astype(np.int32)}
    )
    return Prepared(documents, rejects, views, signatures, boilerplate, frequent=frequent_words)


def pairs_by_id(linked: Linked, doc_ids: pl.Series, rule: PairRule) -> pl.DataFrame:
    """Verified pairs by id, flagged when they pass the pair rule and when they are copies (the next run's :class:`KnownPairs`)."""
    pairs = linked.rule_pairs if linked.rule_pairs is not None else linked.pairs.select("a", "b", "containment", "jaccard")
    copies = linked.pairs.select("a", "b", pl.lit(True).alias("copied"))
    pairs = pairs.join(copies, on=["a", "b"], how="left", maintain_order="left").with_columns(pl.col("copied").fill_null(False))
    return pl.DataFrame(
        {
            "a_id": doc_ids.gather(pairs["a"].to_numpy()),
            "b_id": doc_ids.gather(pairs["b"].to_numpy()),
            "passes": rule.clears(pairs["containment"], pairs["jaccard"]),
            "copied": pairs["copied"],
        },
        schema=plan.PAIRS,
    ).sort("a_id", "b_id")


def reused_rows(old_docs: pl.DataFrame, old_edges: pl.DataFrame, kept_ids: pl.Series, row_of: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Stored placement and edges of the documents in ``kept_ids``, renumbered to this run's rows."""
    placed = (
        old_docs.filter(pl.col("doc_id").is_in(kept_ids.implode()))
        .join(row_of, on="doc_id")
        .join(row_of.rename({"doc_id": "parent_id", "row": "parent_row"}), on="parent_id", how="left")
        .select("row", "is_origin", pl.col("parent_row").fill_null(-1), "depth", "completeness")
    )
    edges = (
        old_edges.filter(pl.col("child_id").is_in(kept_ids.implode()))
        .join(row_of.rename({"doc_id": "child_id", "row": "child"}), on="child_id")
        .join(row_of.rename({"doc_id": "parent_id", "row": "parent"}), on="parent_id")
        .drop("cluster_id", "parent_id", "child_id")
    )
    return placed, edges


class StorePlan:
    """The chain's stages against a store; holds the store's state between them (under the store's lock)."""

    cacheable = False

    def __init__(self, store_dir: Path, out_dir: Path, config: Config, checkpoint: Callable[[str], None]) -> None:
        self.store_dir, self.out_dir, self.checkpoint = store_dir, out_dir, checkpoint
        self.manifest: Manifest | None = layout.read_manifest(store_dir, config)
        layout.sweep(store_dir, self.manifest)
        if self.manifest is not None:  # a run that crashed after its commit may not have moved the link
            layout.publish(out_dir, self.out_of(self.manifest.generation))
        self.generation = (self.manifest.generation if self.manifest else 0) + 1
        # What link and trace leave for the write; an input with nothing accepted into a new store skips both.
        self.linked: Linked | None = None
        self.doc_ids = pl.Series("doc_id", [], dtype=pl.String)
        #: This run's pricings from trace until they are written (then ``None``).
        self.priced: Priced | None = Priced.empty()
        self.counted_documents = 0
        self.events = schemas.empty(schemas.CLUSTER_HISTORY)
        self.mode = self.manifest.facts_mode if self.manifest else ""
        #: The segments the commit lists, once this run's segment is written (early when its texts go to disk).
        self.segments: list[int] | None = None
        self.has_index_sets = False

    def out_of(self, generation: int) -> Path:
        return layout.generation_dir(self.store_dir, generation) / "out"

    def read(self, name: str, schema: pl.Schema) -> pl.DataFrame:
        """A derived table of the current generation (empty for a new store)."""
        if self.manifest is None:
            return pl.DataFrame(schema=schema)
        return layout.read_table(self.store_dir, self.manifest.generation, name, schema)

    def read_out(self, name: str, schema: pl.Schema) -> pl.DataFrame:
        """A published output table of the current generation (empty for a new store)."""
        path = self.out_of(self.manifest.generation) / f"{name}.parquet" if self.manifest else None
        if path is None or not path.exists():
            return schemas.empty(schema)
        return schemas.conform(pl.read_parquet(path), schema, keep_extra=(name == "documents"))

    # ------------------------------------------------------------------ stages

    def prepare(self, ingested: Ingested, config: Config, *, map_batches: MapBatches) -> tuple[Prepared, StageReport]:
        self.config = config
        report = StageReport("prepare", rows_in=ingested.documents.height)
        with timed(report):
            num_perm = config.prepare.num_perm
            self.live = layout.read_live(self.store_dir, self.manifest, num_perm) if self.manifest else layout.empty_segment(num_perm)
            previous_keys = self.read("boilerplate_keys", BOILERPLATE_KEYS)["key"].to_numpy()
            previous_frequent = self.read("frequent_words", plan.FREQUENT)["shingle"].to_numpy()
            self.arrived = prepare_arrivals(ingested, self.live, previous_keys, previous_frequent, config, map_batches)
            arrived = self.arrived
            self.previous_versions, self.opened, self.superseded_texts = self._version_changes()
            texts = self._spill_texts(ingested, config)
            report.rows_out = arrived.combined.documents.height
            report.stats = {
                "stored": self.live.documents.height, "new": arrived.n_new, "changed": len(arrived.changed_ids),
                "boilerplate_reprepared": arrived.n_boilerplate_dirty, "frequent_resigned": len(arrived.resigned_ids),
                "frequent_word_shingles": int(len(arrived.frequent_words)), "prepared": arrived.segment.documents.height,
                "rejected": arrived.rejects.height, "texts_on_disk": texts is not None,
            }
        return replace(as_prepared(arrived.combined, arrived.rejects, arrived.frequent_words), texts=texts), report

    def _spill_texts(self, ingested: Ingested, config: Config) -> spill.TextSpill | None:
        """Over ``run.spill_over_mib``: write this run's segment now, then keep the corpus's texts on disk only.

        The segment is the one thing written that needs every new text (and
        its sets and signatures); it is not live before the commit.  Results are
        those of a run that keeps the texts (``provenance.spill``).
        """
        arrived = self.arrived
        texts = arrived.combined.documents["text"]
        if not arrived.segment.documents.height or spill.text_bytes(texts) <= config.run.spill_over_mib * 2**20:
            return None
        self.segments = self._write_segment()
        spilled = spill.spill_texts(texts, config.run.batch_size, spill.default_folder())
        del texts
        arrived.combined.documents = arrived.combined.documents.drop("text")
        arrived.segment.documents = arrived.segment.documents.drop("text")
        self.live.documents = self.live.documents.drop("text")
        ingested.documents = ingested.documents.drop("text")
        return spilled

    def unchanged(self, prepared: Prepared) -> RunResult | None:
        """Nothing new: the published tables already describe this corpus (and its rejects this very input's)."""
        if self.manifest is None or self.arrived.segment.documents.height:
            return None
        published = self.read_out("rejects", schemas.REJECTS)
        if not published.equals(schemas.conform(self.arrived.rejects.sort(["source", "doc_id"], nulls_last=True), schemas.REJECTS)):
            return None  # new rejects are recorded in a new generation: a document is never lost
        out = self.out_of(self.manifest.generation)
        read = {name: pl.read_parquet(out / f"{name}.parquet") for name in ("documents", "clusters", "edges", "evidence")}
        info = schemas.read_json(out / "run.json")
        return RunResult(read["documents"], read["clusters"], read["edges"], self.arrived.rejects, info, self.out_dir, read["evidence"])

    def link(self, prepared: Prepared, config: Config, *, progress: Progress = no_progress) -> tuple[Linked, StageReport]:
        arrived, doc_ids = self.arrived, prepared.documents["doc_id"]
        resigned = doc_ids.is_in(arrived.resigned_ids.implode()).to_numpy()
        self.is_fresh = doc_ids.is_in(arrived.segment.documents["doc_id"].implode()).to_numpy() & ~resigned
        self.new_version = doc_ids.is_in(arrived.changed_ids.implode()).to_numpy()
        removed = self.live.take(arrived.removed_rows)
        # A document only signed anew keeps its text, so its exact-duplicate group does not change.
        touched = pl.concat([
            frame.filter(~pl.col("doc_id").is_in(arrived.resigned_ids.implode()))["content_hash"]
            for frame in (arrived.segment.documents, removed.documents)
        ])
        hashes = prepared.documents["content_hash"]
        relink = plan.relink_rows(doc_ids, hashes, self.is_fresh, resigned, touched)
        self.group_changed = hashes.is_in(touched.implode()).to_numpy() & ~self.is_fresh
        if removed.documents.height:
            resigned_rows = plan.resigned_places(removed.documents["doc_id"], arrived.resigned_ids, doc_ids)
            relink |= plan.departed_buckets(
                prepared.signatures, self.live, arrived.removed_rows, index.view_thresholds(config), config.link.bucket_window, resigned_rows,
            )
        known = KnownPairs(relink, plan.known_pairs(self.read("pairs", plan.PAIRS), doc_ids))
        linked, report = link_stage(prepared, config, known, progress=progress)
        report.stats["relinked_documents"] = int(relink.sum())
        self.linked, self.doc_ids = linked, doc_ids
        # The lookup index's sets and signatures: written now, so nothing holds the signatures through trace.
        index.write_index_sets(layout.generation_dir(self.store_dir, self.generation), prepared.views, prepared.signatures, config)
        self.has_index_sets = True
        self._release_after_link(prepared)
        return linked, report

    def _release_after_link(self, prepared: Prepared) -> None:
        """Drop what nothing reads after link (at 1M: 1 GiB of signatures, 4 KiB a document of stored sets).

        The signatures went into the index; the stored segment's sets and
        signatures served link only; once this run's segment is written, its
        word and anchor sets live on in ``prepared.views`` alone (which trace
        cuts to the members of clusters with copies) and its signatures nowhere.
        """
        prepared.signatures.clear()
        self.live.ragged.clear()
        self.live.signatures.clear()
        if self.segments is None:  # the write still needs this run's segment whole
            return
        for part in (self.arrived.combined, self.arrived.segment):
            part.signatures.clear()
            for name in ("words", "anchors"):
                part.ragged.pop(name, None)

    def trace(self, prepared: Prepared, linked: Linked, config: Config, *, progress: Progress = no_progress) -> tuple[Traced, StageReport]:
        report = StageReport("trace", rows_in=prepared.documents.height)
        with timed(report):
            keep_views_of_copies(prepared, tables.dense_clusters(linked.roots))  # as in a fresh run
            traced, retraced = self._trace(prepared, linked, config, progress)
            self._write_priced()
            report.rows_out = traced.edges.height
            report.stats = {
                "clusters": traced.clusters.height, "retraced_documents": retraced, "counted_documents": self.counted_documents,
                "edges": traced.edges.height,
            }
        return traced, report

    def _trace(self, prepared: Prepared, linked: Linked, config: Config, progress: Progress = no_progress) -> tuple[Traced, int]:
        """Tables of the whole corpus, re-tracing only clusters that changed; ids kept stable."""
        doc_ids = prepared.documents["doc_id"]
        keys = doc_keys(doc_ids)
        cluster = tables.dense_clusters(linked.roots)
        prepared = with_trace_texts(prepared, cluster, keys, config)  # texts on disk: just the rows trace reads
        docs = prepared.documents
        facts = self._corpus_facts(docs, cluster, keys, config, progress)
        self.facts, self.sample_rows = facts, wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample)
        self.mode = plan.facts_mode(docs, facts)
        old_docs = self.read_out("documents", schemas.DOCUMENTS).select("doc_id", "cluster_id", "is_origin", "parent_id", "depth", "completeness")
        old_cid = pl.DataFrame({"doc_id": doc_ids}).join(old_docs.select("doc_id", "cluster_id"), on="doc_id", how="left", maintain_order="left")["cluster_id"]
        # A new version is another text: it does not carry its old cluster (or its id) with it.
        old_cid = pl.select(pl.when(pl.Series(self.new_version)).then(None).otherwise(old_cid).alias("cluster_id")).to_series()
        same, _ = plan.reusable_clusters(
            cluster, old_cid, self.is_fresh | self.group_changed, linked.pairs, keys, old_docs, self.read("pairs", plan.PAIRS),
        )
        if self.manifest is None or self.manifest.facts_mode != self.mode:
            same[:] = False
        old_priced = self.read_priced()
        same, confidence = plan.redecided(same, cluster, doc_ids, keys, old_priced, old_docs, facts, config.trace)
        reuse_row = same[cluster]
        retrace = np.flatnonzero(~reuse_row)
        parts_placement, parts_edges = [], []
        if len(retrace):
            fresh = trace_clusters_in_batches(prepared, linked.pairs, cluster, facts, config, retrace, progress=progress, keep_priced=True)
            parts_placement.append(fresh.placement)
            parts_edges.append(fresh.edges)
        kept_ids = pl.Series(doc_ids.filter(pl.Series(reuse_row)))
        self.priced = Priced.concat([fresh.priced if len(retrace) and fresh.priced is not None else Priced.empty(), old_priced.select(kept_ids)])
        if reuse_row.any():
            row_of = pl.DataFrame({"doc_id": doc_ids}).with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
            placed, edges = reused_rows(old_docs, self.read_out("edges", schemas.EDGES), kept_ids, row_of)
            # The parents stand; their confidence is today's (the counts moved the costs it is a softmax of).
            redone = pl.Series(confidence[edges["child"].to_numpy()]).round(6)  # as trace rounds it (``edge_figures``)
            edges = edges.with_columns(redone.alias("parent_confidence"), redone.alias("confidence"))
            parts_placement.append(placed)
            parts_edges.append(edges.select(parts_edges[0].columns) if parts_edges else edges)
        placement = pl.concat(parts_placement, how="vertical_relaxed").sort("row")
        edges = pl.concat(parts_edges, how="vertical_relaxed") if parts_edges else pl.DataFrame()
        ids, self.events = tables.stable_ids(doc_ids, cluster, placement["is_origin"].to_numpy(), old_cid, old_docs, self.generation)
        return tables.assemble_tables(docs, placement, edges, ids, config.changes.spin_min_rate), len(retrace)

    def _corpus_facts(self, docs: pl.DataFrame, cluster: np.ndarray, keys: np.ndarray, config: Config, progress: Progress) -> CorpusFacts:
        """The trace's corpus facts: the last run's counts updated by the counted units that changed, else counted afresh."""
        updated = self._updated_facts(docs, cluster, keys, config)
        if updated is None:
            self.counted_documents = int((plan.counted_units(cluster, keys, config.trace.frequency_sample) >= 0).sum())
            return corpus_facts(docs, cluster, config, keys, progress=progress)
        facts, read = updated
        self.counted_documents = read
        progress("trace 1/3", read, read, "documents")
        return CorpusFacts(derivation.WordCounts(facts.words), published_times(docs), facts)

    def _updated_facts(self, docs: pl.DataFrame, cluster: np.ndarray, keys: np.ndarray, config: Config) -> tuple[derivation.DerivationFacts, int] | None:
        if self.manifest is None:
            return None
        path = index.index_dir(layout.generation_dir(self.store_dir, self.manifest.generation))
        if not (path / "meta.json").exists():
            return None
        stored = index.StoreIndex.open(path)
        if stored.meta.get("index_version") != index.INDEX_VERSION:
            return None
        old_ids = stored.doc_ids
        row_cluster = np.asarray(stored.row_cluster)
        old_unit_of_old = np.where(np.bincount(row_cluster, minlength=len(row_cluster))[row_cluster] > 1, row_cluster, -1)
        in_sample = stored.corpus["in_sample"]
        old_unit_of_old[in_sample] = row_cluster[in_sample]
        at = pl.DataFrame({"doc_id": docs["doc_id"]}).with_row_index("row").join(
            pl.DataFrame({"doc_id": old_ids, "u": old_unit_of_old}), on="doc_id", how="right", maintain_order="right")
        if at["row"].null_count():
            return None  # a stored document is missing: count afresh
        old_unit = np.full(docs.height, -1, dtype=np.int64)
        old_unit[at["row"].to_numpy().astype(np.int64)] = at["u"].to_numpy()
        unit = plan.counted_units(cluster, keys, config.trace.frequency_sample)
        return plan.updated_facts(stored.facts, old_unit, unit, docs["text"], keys, self.new_version, config.trace, config.run.batch_size)

    def read_priced(self) -> Priced:
        """The stored derivations' pricing (``trace.reprice``); empty for a store written before it was kept."""
        return Priced(self.read("priced_docs", reprice.DOCS), self.read("priced_pairs", reprice.PAIRS), self.read("priced_bags", reprice.BAGS))

    def write(self, result: RunResult, out_dir: Path, hooks: Hooks) -> tuple[dict[str, str], StageReport]:
        """The new generation: segment, derived tables, history, outputs; then the commit and the link swap."""
        try:
            return self._write(result, out_dir, hooks)
        except (OSError, pl.exceptions.PolarsError) as exc:  # a full disk: nothing is committed, the previous generation stays
            if not outputs.is_write_failure(exc):
                raise
            raise outputs.write_error(out_dir, exc) from None

    def _write(self, result: RunResult, out_dir: Path, hooks: Hooks) -> tuple[dict[str, str], StageReport]:
        report = StageReport("write", rows_in=result.documents.height)
        start = time.perf_counter()
        config = self.config
        segments = self.segments if self.segments is not None else self._write_segment()
        self.checkpoint("segment")
        self._write_derived(config, result)
        self.checkpoint("tables")
        out = self.out_of(self.generation)
        out.mkdir(parents=True, exist_ok=True)
        history = pl.concat([self.read_out("cluster_history", schemas.CLUSTER_HISTORY), self.events])
        schemas.write_table(history, "cluster_history", out)
        schemas.write_table(self._versions(result), "document_versions", out)
        self.checkpoint("history")
        result.info["store"] = {"path": str(self.store_dir), "generation": self.generation, "segments": segments}
        paths, _ = write_folder(result, out, progress=hooks.progress)
        hooks.tables_written(out)
        self.checkpoint("outputs")
        self._commit(config, segments, result)
        self.checkpoint("commit")
        layout.publish(out_dir, out)
        self.checkpoint("publish")
        result.out_dir = out_dir
        report.seconds = time.perf_counter() - start
        report.rows_out = result.documents.height
        layout.sweep(self.store_dir, self.committed)
        outputs.sweep(out_dir)
        return paths, report

    def _write_segment(self) -> list[int]:
        """This run's segment, or all live rows in one when most stored rows are stale (compaction)."""
        segments = (self.manifest.segments if self.manifest else []) + [self.generation]
        stored_rows = (layout.stored_rows(self.store_dir, self.manifest) if self.manifest else 0) + self.arrived.segment.documents.height
        if stored_rows > 2 * self.arrived.combined.documents.height:
            layout.write_segment(self.store_dir, self.generation, self.arrived.combined)
            return [self.generation]
        layout.write_segment(self.store_dir, self.generation, self.arrived.segment)
        return segments

    def _write_derived(self, config: Config, result: RunResult) -> None:
        g, arrived = self.generation, self.arrived
        pairs = pairs_by_id(self.linked, self.doc_ids, PairRule.of(config.link)) if self.linked else pl.DataFrame(schema=plan.PAIRS)
        layout.write_table(self.store_dir, g, "pairs", pairs)
        layout.write_table(self.store_dir, g, "boilerplate_keys", pl.DataFrame({"key": arrived.keys}, schema=BOILERPLATE_KEYS))
        layout.write_table(self.store_dir, g, "frequent_words", pl.DataFrame({"shingle": arrived.frequent_words}, schema=plan.FREQUENT))
        self._write_priced()
        self._write_index(config, result)

    def _write_priced(self) -> None:
        """The pricings (``trace.reprice``) into the new generation, once, as soon as trace has them: nothing holds them to the write.

        Uncommitted like every file of the generation until the manifest lists it (a crashed run's is swept).
        """
        if self.priced is None:
            return
        for name, frame in (("priced_docs", self.priced.docs), ("priced_pairs", self.priced.pairs), ("priced_bags", self.priced.bags)):
            layout.write_table(self.store_dir, self.generation, name, frame)
        self.priced = None

    def _write_index(self, config: Config, result: RunResult) -> None:
        """``gen-<g>/index``: what ``provenance lookup`` reads (``provenance.store.index``); none for an empty corpus."""
        if self.linked is None or not self.has_index_sets:
            return
        facts = getattr(self, "facts", None)
        index.write_index(
            layout.generation_dir(self.store_dir, self.generation), result.documents,
            self.linked.pairs, self.linked.roots, self.linked.floating, facts.derivation if facts else None,
            getattr(self, "sample_rows", np.zeros(0, dtype=np.int64)), self.arrived.keys, self.arrived.frequent_words, config,
            self.arrived.combined.ragged["line_keys"],
        )
        self.has_index = True

    def _commit(self, config: Config, segments: list[int], result: RunResult) -> None:
        runs = (self.manifest.runs if self.manifest else []) + [{
            "generation": self.generation,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "new": self.arrived.n_new, "changed": len(self.arrived.changed_ids), "documents": result.documents.height,
        }]
        self.committed = Manifest(
            self.generation, segments, minhash.SignatureScheme(config.prepare.num_perm, config.prepare.seed).to_dict(),
            config.fingerprint(), config.options(results_only=True), self.mode, runs[-50:],
            index.INDEX_VERSION if getattr(self, "has_index", False) else 0,
        )
        layout.commit(self.store_dir, self.committed)

    def _version_changes(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """``document_versions`` as stored, this run's segment rows that open a version, and ``doc_id, old_text`` of
        the stored documents they supersede (their text stays in ``document_versions``).

        Taken at prepare, before the texts may go to disk; :meth:`_versions` extends them at the write.
        """
        previous = self.read_out("document_versions", schemas.DOCUMENT_VERSIONS)
        arrivals = self.arrived.segment.documents.select("doc_id", "version", "content_hash", "fingerprint")
        open_rows = previous.filter(pl.col("superseded_generation").is_null())
        # A re-prepared document (boilerplate changed) arrives with its stored version: not a new version.
        opened = arrivals.join(open_rows.select("doc_id", "version"), on=["doc_id", "version"], how="anti")
        superseded = opened.filter(pl.col("version") > 1)["doc_id"]
        old_text = self.live.documents.filter(pl.col("doc_id").is_in(superseded.implode())).select("doc_id", pl.col("text").alias("old_text"))
        return previous, opened, old_text

    def _versions(self, result: RunResult) -> pl.DataFrame:
        """``document_versions``: every version of every document; superseded ones keep their text and last cluster."""
        previous, opened, old_text = self.previous_versions, self.opened, self.superseded_texts
        current = result.documents.select("doc_id", pl.col("cluster_id").alias("now"))
        superseded = old_text["doc_id"]
        closing = pl.col("superseded_generation").is_null() & pl.col("doc_id").is_in(superseded.implode())
        closed = (
            previous.join(old_text, on="doc_id", how="left")
            .with_columns(
                pl.when(closing).then(pl.col("old_text")).otherwise(pl.col("text")).alias("text"),
                pl.when(closing).then(pl.lit(self.generation)).otherwise(pl.col("superseded_generation")).alias("superseded_generation"),
            )
            .drop("old_text")
        )
        new_rows = opened.select(
            "doc_id", "version", "content_hash", "fingerprint",
            pl.lit(self.generation).alias("first_generation"), pl.lit(None, pl.Int32).alias("superseded_generation"),
            pl.lit(None, pl.String).alias("cluster_id"), pl.lit(None, pl.String).alias("text"),
        )
        merged = pl.concat([schemas.conform(closed, schemas.DOCUMENT_VERSIONS), schemas.conform(new_rows, schemas.DOCUMENT_VERSIONS)])
        # Open rows follow the document's current cluster; closed ones keep the last cluster they had.
        return (
            merged.join(current, on="doc_id", how="left")
            .with_columns(pl.when(pl.col("superseded_generation").is_null()).then(pl.col("now")).otherwise(pl.col("cluster_id")).alias("cluster_id"))
            .drop("now")
            .sort("doc_id", "version")
        )


def run_with_store(
    source: Source, out_dir: Path, store_dir: Path, config: Config | None = None, *, wait_seconds: float = 0.0,
    hooks: Hooks | None = None, after_write: Callable[[str], None] | None = None,
) -> RunResult:
    """Add ``source`` to the store at ``store_dir`` and publish the corpus's tables at ``out_dir`` (a link).

    ``after_write(step)`` is called between the writing steps (tests use it to
    crash a run at a chosen point).
    """
    config = config or Config()
    out_dir, store_dir = Path(out_dir), Path(store_dir)
    outputs.check_out(out_dir, store_dir=store_dir)
    with outputs.claimed(out_dir, wait_seconds, store_dir=store_dir):
        try:
            store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProvenanceError(f"cannot create store folder {store_dir}: {exc.strerror}") from None
        with layout.locked(store_dir, wait_seconds):
            store_plan = StorePlan(store_dir, out_dir, config, after_write or (lambda step: None))
            return execute(source, config, store_plan, hooks, out_dir)
