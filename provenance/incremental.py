"""Incremental runs: extend a store with new documents and redo only what they change.

``run_with_store`` gives the tables a from-scratch run over everything the
store has seen would give (same clusters, origins, parents and statistics),
doing work in proportion to what changed:

* **prepare** -- a document whose id and fingerprint (text and metadata) are
  in the store is not read again.  New and changed documents are tokenised,
  shingled and signed.  Boilerplate is corpus-wide (a short line in
  ``BOILERPLATE_MIN_DOCS`` documents), so the store keeps every document's
  short-line keys; a stored document holding a line whose boilerplate status
  flipped is re-prepared too.  One holding a word shingle that became, or
  stopped being, frequent (``provenance.frequent``, counted on the same id-hash
  sample a fresh run draws) is only signed anew from its stored views.
* **link** -- LSH runs over every signature (sorting band keys is cheap), but
  a candidate pair is verified only if it touches a re-prepared document, an
  exact-duplicate group that changed, or a bucket that lost a member (only
  then can two old documents come within the window of each other).  Any
  other candidate pair was a candidate last time, on the same sets, so it
  passes exactly when it is among the stored verified pairs.  Clustering runs
  over all verified pairs (linear, and it is where merges happen).
* **trace** -- a cluster is re-traced unless it has exactly the members of a
  stored cluster, none of them re-prepared, the same verified pairs inside,
  and every word-frequency comparison its origin choice consulted comes out
  the same under today's frequencies.  Other clusters keep their stored rows.
* **ids** -- cluster ids are stable: a cluster keeps the id of the stored
  cluster it holds the most of (the larger stored cluster wins a merge); the
  events are written to ``cluster_history``.

A document whose id is stored but whose fingerprint changed is a new
*version*: it replaces the old one everywhere, and the old one's content hash,
fingerprint, text and last cluster stay in ``document_versions``.  Documents
absent from a later input stay in the store: the input of a run is what is
new, not the whole corpus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import xxhash

from provenance import frequent, lsh, minhash, normalize, pipeline, schemas, store
from provenance import report as report_page
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError
from provenance.ingest import Ingested
from provenance.pipeline import Prepared, RunResult, StageReport
from provenance.shingle import ShingleSets

#: Columns of a documents frame that are not carried input metadata.
_OWN = ("doc_id", "text", "source")


def fingerprints(documents: pl.DataFrame) -> pl.Series:
    """xxh3 of every document's text and metadata (all columns but ``doc_id`` and ``source``)."""
    meta = [c for c in documents.columns if c not in ("doc_id", "text", "source", "content_hash", "n_tokens", "n_chars")]
    encoded = documents.select(pl.struct(meta).struct.json_encode().alias("m"))["m"] if meta else pl.Series([""] * documents.height)
    values = [
        xxhash.xxh3_64_hexdigest(text.encode() + b"\x1f" + m.encode())
        for text, m in zip(documents["text"].to_list(), encoded.to_list())
    ]
    return pl.Series("fingerprint", values, dtype=pl.String)


def facts_mode(documents: pl.DataFrame, facts: pipeline.CorpusFacts) -> str:
    """How dates were read: a change of mode changes every cluster's origin rule, so all are re-traced."""
    if facts.published is None:
        return "words"
    dtype = documents["published_at"].dtype
    tz = dtype == pl.String and bool(documents["published_at"].str.contains(r"[+-]\d\d:?\d\d$|Z$").any())
    return f"dates:{dtype}:{'tz' if tz else 'naive'}"


@dataclass
class _Fresh:
    """Documents prepared in this run, as a store segment, plus this run's rejects."""

    segment: store.Segment
    rejects: pl.DataFrame
    #: Ids of stored documents that arrived with another text or metadata (new versions).
    changed_ids: pl.Series
    n_new: int
    n_boilerplate_dirty: int
    #: Stored documents signed anew (their views and texts as stored) because one of their word shingles
    #: became, or stopped being, frequent: in ``segment``, relinked, but not re-traced for it.
    resigned_ids: pl.Series = field(default_factory=lambda: pl.Series("doc_id", [], dtype=pl.String))

    @property
    def n_changed(self) -> int:
        return len(self.changed_ids)


def _ragged_from_index(doc: np.ndarray, values: np.ndarray, n_docs: int, dtype: type) -> ShingleSets:
    order = np.argsort(doc, kind="stable")
    return ShingleSets(values[order].astype(dtype), normalize.offsets_from_doc_index(doc[order], n_docs))


def _prepare_rows(
    documents: pl.DataFrame, keys: np.ndarray, frequent_words: np.ndarray, config: PipelineConfig
) -> tuple[dict[str, ShingleSets], dict[str, np.ndarray], ShingleSets]:
    """Own shingle views, signatures and boilerplate-line ordinals of ``documents`` (boilerplate ``keys``)."""
    n = documents.height
    batches = pipeline._batches(n, config.batch_size)
    n_tokens = documents["n_tokens"].to_numpy()
    parts = [
        pipeline.shingle_batch(documents["text"].slice(lo, hi - lo), lo, keys, config, n_tokens[lo:hi], frequent_words)
        for lo, hi in batches
    ]
    views = {name: ShingleSets.concat([p.views[name] for p in parts]) for name in ("words", "anchors")}
    signatures = {
        name: np.concatenate([p.signatures[name] for p in parts]) if parts else np.zeros((0, config.num_perm), np.uint32)
        for name in ("words", "anchors")
    }
    bp = pl.concat([p.boilerplate for p in parts])
    boilerplate = _ragged_from_index(bp["doc"].to_numpy().astype(np.int64), bp["line"].to_numpy(), n, np.int32)
    return views, signatures, boilerplate


def _summaries(texts: pl.Series, config: PipelineConfig) -> pipeline.BatchSummary:
    batches = pipeline._batches(len(texts), config.batch_size)
    parts = [pipeline.summarize_batch(texts.slice(lo, hi - lo), lo, config.seed) for lo, hi in batches]
    return pipeline.BatchSummary(
        0,
        np.concatenate([p.n_tokens for p in parts]),
        np.concatenate([p.content_hash for p in parts]),
        np.concatenate([p.line_doc for p in parts]),
        np.concatenate([p.line_key for p in parts]),
    )


def run_with_store(
    inputs: list[Path],
    out_dir: Path,
    store_dir: Path,
    config: PipelineConfig | None = None,
    *,
    wait_seconds: float = 0.0,
    on_stage: Callable[[StageReport], None] | None = None,
    after_write: Callable[[str], None] | None = None,
) -> RunResult:
    """Add ``inputs`` to the store at ``store_dir`` and publish the corpus's tables at ``out_dir`` (a link).

    ``after_write(step)`` is called between the writing steps (tests use it to
    crash a run at a chosen point).
    """
    config = (config or PipelineConfig()).validate()
    inputs, out_dir, store_dir = [Path(p) for p in inputs], Path(out_dir), Path(store_dir)
    store.check_publishable(out_dir)
    reports: list[StageReport] = []
    checkpoint = after_write or (lambda step: None)

    def note(report: StageReport) -> None:
        reports.append(report)
        if on_stage:
            on_stage(report)

    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvenanceError(f"cannot create store folder {store_dir}: {exc.strerror}") from None
    with store.locked(store_dir, wait_seconds):
        manifest = store.read_manifest(store_dir, config)
        store.sweep(store_dir, manifest)
        if manifest is not None:  # a run that crashed after its commit may not have moved the link
            store.publish(out_dir, store.generation_dir(store_dir, manifest.generation) / "out")
        generation = (manifest.generation if manifest else 0) + 1

        ingested, r = pipeline.ingest_stage(inputs, config)
        note(r)
        report = StageReport("prepare", rows_in=ingested.documents.height)
        start = time.perf_counter()
        live = store.read_live(store_dir, manifest, config.num_perm) if manifest else store.empty_segment(config.num_perm)
        previous_keys = (
            store.read_table(store_dir, manifest.generation, "boilerplate_keys", pl.Schema({"key": pl.UInt64}))["key"].to_numpy()
            if manifest else np.zeros(0, dtype=np.uint64)
        )
        previous_frequent = (
            store.read_table(store_dir, manifest.generation, "frequent_words", FREQUENT)["shingle"].to_numpy()
            if manifest else frequent.NOTHING
        )
        fresh, combined, removed_rows, keys, frequent_words = _prepare(ingested, live, previous_keys, previous_frequent, config)
        report.seconds = time.perf_counter() - start
        report.rows_out = combined.documents.height
        report.stats = {
            "stored": live.documents.height, "new": fresh.n_new, "changed": fresh.n_changed,
            "boilerplate_reprepared": fresh.n_boilerplate_dirty, "frequent_resigned": len(fresh.resigned_ids),
            "frequent_word_shingles": int(len(frequent_words)), "prepared": fresh.segment.documents.height,
            "rejected": fresh.rejects.height,
        }
        note(report)
        if manifest is not None and fresh.segment.documents.height == 0:
            # Nothing new: the published tables already describe this corpus.
            return _current_result(out_dir, store_dir, manifest, fresh.rejects)

        prepared = _prepared(combined, fresh.rejects, frequent_words)
        doc_ids = prepared.documents["doc_id"]
        resigned_ids = fresh.resigned_ids.implode()
        resigned = doc_ids.is_in(resigned_ids).to_numpy()
        is_fresh = doc_ids.is_in(fresh.segment.documents["doc_id"].implode()).to_numpy() & ~resigned
        new_version = doc_ids.is_in(fresh.changed_ids.implode()).to_numpy()
        # Rows whose own anchors may now come from another copy: their exact-duplicate group changed
        # (a document only signed anew keeps its text, so its group does not change).
        removed = live.take(removed_rows)
        touched_hashes = pl.concat([
            frame.filter(~pl.col("doc_id").is_in(resigned_ids))["content_hash"] for frame in (fresh.segment.documents, removed.documents)
        ])
        hashes = prepared.documents["content_hash"]
        group_changed = hashes.is_in(touched_hashes.implode()).to_numpy() & ~is_fresh
        old_pairs = store.read_table(store_dir, manifest.generation, "pairs", PAIRS) if manifest else pl.DataFrame(schema=PAIRS)
        # Signed anew: other candidates, the same sets (and so the same verdicts); copies share the first's signature.
        resigned_groups = hashes.is_in(hashes.filter(pl.Series(resigned)).implode()).to_numpy()
        relink = is_fresh | group_changed | resigned | resigned_groups
        if removed.documents.height:
            # The departed rows' signatures as the last run bucketed them (exact copies shared anchors).
            shared = {"words": live.ragged["words"], "anchors": live.ragged["anchors"]}
            old_signatures = dict(live.signatures)
            pipeline.share_exact_copies(live.documents["content_hash"], shared, old_signatures)
            thresholds = {"words": config.words_threshold, "anchors": config.anchors_threshold}
            for view, sig in prepared.signatures.items():
                relink |= lsh.sharing_buckets(sig, old_signatures[view][removed_rows], threshold=thresholds[view], window=config.bucket_window)
        known = pipeline.KnownPairs(relink, _packed(old_pairs, doc_ids))
        linked, r = pipeline.link_stage(prepared, config, known)
        r.stats["relinked_documents"] = int(relink.sum())
        note(r)

        report = StageReport("trace", rows_in=prepared.documents.height)
        start = time.perf_counter()
        traced, consulted, events, mode, retraced = _trace(
            prepared, linked, is_fresh | group_changed, new_version, store_dir, manifest, generation, config
        )
        report.seconds = time.perf_counter() - start
        report.rows_out = traced.edges.height
        report.stats = {"clusters": traced.clusters.height, "retraced_documents": retraced, "edges": traced.edges.height}
        note(report)

        # ---- write the new generation, then commit it
        report = StageReport("write", rows_in=traced.documents.height)
        start = time.perf_counter()
        gen_dir = store.generation_dir(store_dir, generation)
        segments = (manifest.segments if manifest else []) + [generation]
        stored_rows = (store.stored_rows(store_dir, manifest) if manifest else 0) + fresh.segment.documents.height
        if stored_rows > 2 * combined.documents.height:  # mostly stale rows: compact into one segment
            store.write_segment(store_dir, generation, combined)
            segments = [generation]
        else:
            store.write_segment(store_dir, generation, fresh.segment)
        checkpoint("segment")
        store.write_table(store_dir, generation, "pairs", _pairs_by_id(linked.pairs, doc_ids, config))
        store.write_table(store_dir, generation, "boilerplate_keys", pl.DataFrame({"key": keys}, schema={"key": pl.UInt64}))
        store.write_table(store_dir, generation, "frequent_words", pl.DataFrame({"shingle": frequent_words}, schema=FREQUENT))
        store.write_table(store_dir, generation, "consulted", consulted)
        checkpoint("tables")
        history = pl.concat([_read_out(store_dir, manifest, "cluster_history", schemas.CLUSTER_HISTORY), events])
        versions = _versions(store_dir, manifest, live, fresh, traced, generation)
        out = gen_dir / "out"
        out.mkdir(parents=True, exist_ok=True)
        schemas.write_table(history, "cluster_history", out)
        schemas.write_table(versions, "document_versions", out)
        checkpoint("history")
        info = pipeline.run_info(config, inputs, Prepared(prepared.documents, fresh.rejects, {}, {}), traced, reports)
        info["store"] = {"path": str(store_dir), "generation": generation, "segments": segments}
        pipeline.write_stage(traced, fresh.rejects, out, info)
        report_page.write_report(out)
        checkpoint("outputs")
        runs = (manifest.runs if manifest else []) + [{
            "generation": generation,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "new": fresh.n_new, "changed": fresh.n_changed, "documents": traced.documents.height,
        }]
        committed = store.Manifest(
            generation, segments, pipeline.minhash.SignatureScheme(config.num_perm, config.seed).to_dict(),
            store.result_options(config), mode, runs[-50:],
        )
        store.commit(store_dir, committed)
        checkpoint("commit")
        store.publish(out_dir, out)
        checkpoint("publish")
        report.seconds = time.perf_counter() - start
        report.rows_out = traced.documents.height
        note(report)
        store.sweep(store_dir, committed)
        info = schemas.read_json(out / "run.json")
        return RunResult(out_dir, traced.documents, traced.clusters, traced.edges, fresh.rejects, info)


PAIRS = pl.Schema({"a_id": pl.String, "b_id": pl.String, "passes": pl.Boolean})
#: The frequent word shingles a generation's words signatures were taken around (``provenance.frequent``).
FREQUENT = pl.Schema({"shingle": pl.UInt32})


def _packed(pairs: pl.DataFrame, doc_ids: pl.Series) -> np.ndarray:
    """Stored pairs (by id) as sorted ``a << 32 | b`` row codes of this run; pairs with a departed id drop out."""
    rows = pl.DataFrame({"id": doc_ids}).with_row_index("row")
    mapped = (
        pairs.filter("passes").join(rows.rename({"id": "a_id", "row": "a"}), on="a_id", how="inner")
        .join(rows.rename({"id": "b_id", "row": "b"}), on="b_id", how="inner")
    )
    a = mapped["a"].to_numpy().astype(np.uint64)
    b = mapped["b"].to_numpy().astype(np.uint64)
    return np.sort((np.minimum(a, b) << np.uint64(32)) | np.maximum(a, b))


def _pairs_by_id(pairs: pl.DataFrame, doc_ids: pl.Series, config: PipelineConfig) -> pl.DataFrame:
    """Verified pairs by id, flagged when they pass the pair test (the next run's :class:`pipeline.KnownPairs`)."""
    return pl.DataFrame(
        {
            "a_id": doc_ids.gather(pairs["a"].to_numpy()),
            "b_id": doc_ids.gather(pairs["b"].to_numpy()),
            "passes": ((pairs["containment"] >= config.min_containment) & (pairs["jaccard"] >= config.min_jaccard)),
        },
        schema=PAIRS,
    ).sort("a_id", "b_id")


def _sample_frequent_words(
    live: store.Segment, kept_rows: np.ndarray, accepted: pl.DataFrame, keys: np.ndarray, config: PipelineConfig
) -> np.ndarray:
    """The frequent word shingles a fresh run over the stored (``kept_rows``) and ``accepted`` documents would find.

    The sample is drawn by id hash over the whole corpus, so it is the one a
    fresh run draws, and shingled with today's boilerplate ``keys``.
    """
    ids = pl.concat([live.documents["doc_id"].gather(kept_rows), accepted["doc_id"]])
    rows = frequent.sample_rows(pipeline.doc_keys(ids))
    old, new = rows[rows < len(kept_rows)], rows[rows >= len(kept_rows)] - len(kept_rows)
    stored = live.documents.select("text", "n_tokens")[pl.Series(kept_rows[old])]
    sample = pl.concat([stored, accepted.select("text", "n_tokens")[pl.Series(new)]])
    return pipeline.sample_frequent_words(sample["text"], sample["n_tokens"].to_numpy(), keys, config)


def _prepare(
    ingested: Ingested, live: store.Segment, previous_keys: np.ndarray, previous_frequent: np.ndarray, config: PipelineConfig
) -> tuple[_Fresh, store.Segment, np.ndarray, np.ndarray, np.ndarray]:
    """This run's prepared documents, the whole corpus (sorted by id), the stored rows it replaces, boilerplate keys,
    frequent word shingles."""
    incoming = ingested.documents.with_columns(fingerprints(ingested.documents))
    stored = live.documents.select("doc_id", pl.col("version").alias("old_version"), pl.col("fingerprint").alias("old_fp"))
    incoming = incoming.join(stored, on="doc_id", how="left", maintain_order="left")
    arriving = incoming.filter(pl.col("old_fp").is_null() | (pl.col("old_fp") != pl.col("fingerprint")))
    summary = _summaries(arriving["text"], config)
    too_short = summary.n_tokens < config.min_tokens
    rejects = pl.concat([
        ingested.rejects,
        arriving.filter(pl.Series(too_short)).select(
            "source", "doc_id", pl.lit("too_short").alias("reason"),
            pl.lit(f"fewer than {config.min_tokens} tokens").alias("detail"),
        ),
    ])
    keep = ~too_short
    kept_index = np.flatnonzero(keep)
    accepted = arriving.filter(pl.Series(keep)).with_columns(
        pl.Series("content_hash", [f"{h:016x}" for h in summary.content_hash[keep].tolist()], dtype=pl.String),
        pl.Series("n_tokens", summary.n_tokens[keep], dtype=pl.Int32),
        pl.col("text").str.len_chars().cast(pl.Int32).alias("n_chars"),
        (pl.col("old_version").fill_null(0) + 1).cast(pl.Int32).alias("version"),
    )
    # Short-line keys of the accepted arrivals, renumbered 0..accepted-1.
    local = np.full(len(keep), -1, dtype=np.int64)
    local[kept_index] = np.arange(len(kept_index))
    line_doc = local[summary.line_doc] if len(summary.line_doc) else np.zeros(0, dtype=np.int64)
    on = line_doc >= 0
    arrival_lines = _ragged_from_index(line_doc[on], summary.line_key[on], len(kept_index), np.uint64)

    replaced = live.documents["doc_id"].is_in(accepted["doc_id"].implode()).to_numpy()
    kept_rows = np.flatnonzero(~replaced)
    # Corpus-wide boilerplate over stored (kept) and arriving documents.
    old_lines = live.ragged["line_keys"].take(kept_rows)
    n_old = len(kept_rows)
    docs_of = np.concatenate([np.repeat(np.arange(n_old), old_lines.sizes()), n_old + np.repeat(np.arange(len(kept_index)), arrival_lines.sizes())])
    all_keys = np.concatenate([old_lines.hashes, arrival_lines.hashes])
    keys = normalize.boilerplate_keys(docs_of, all_keys, pipeline.BOILERPLATE_MIN_DOCS)
    flipped = np.setxor1d(keys, previous_keys.astype(np.uint64))
    dirty_local = np.zeros(n_old, dtype=bool)
    if len(flipped) and len(old_lines.hashes):
        hit = np.isin(old_lines.hashes, flipped)
        dirty_local[np.repeat(np.arange(n_old), old_lines.sizes())[hit]] = True
    # Frequent word shingles are corpus-wide too: a stored document holding one whose status flipped is signed anew.
    frequent_words = _sample_frequent_words(live, kept_rows, accepted, keys, config)
    flipped_frequent = np.setxor1d(frequent_words, previous_frequent.astype(np.uint32))
    resign_local = np.zeros(n_old, dtype=bool)
    if len(flipped_frequent):
        resign_local = minhash.holds_any(live.ragged["words"].take(kept_rows), flipped_frequent) & ~dirty_local
    dirty_rows = kept_rows[dirty_local]
    resign_rows = kept_rows[resign_local]
    clean_rows = kept_rows[~dirty_local & ~resign_local]

    meta_columns = [c for c in accepted.columns if c not in ("old_version", "old_fp")]
    redo = live.take(dirty_rows)
    to_prepare = pl.concat([accepted.select(meta_columns), redo.documents], how="diagonal_relaxed")
    views, signatures, boilerplate = _prepare_rows(to_prepare, keys, frequent_words, config)
    prepared_part = store.Segment(
        to_prepare,
        {
            "words": views["words"], "anchors": views["anchors"],
            "line_keys": ShingleSets.concat([arrival_lines, redo.ragged["line_keys"]]),
            "boilerplate": boilerplate,
        },
        signatures,
    )
    # Only the words signature depends on the frequent shingles: sign the stored views anew.
    resign = live.take(resign_rows)
    resign.signatures["words"] = minhash.signatures(resign.ragged["words"], config.num_perm, config.seed, frequent_words)
    segment = store.Segment.concat([prepared_part, resign])
    fresh = _Fresh(
        segment, rejects,
        changed_ids=accepted.filter(pl.col("old_version").is_not_null())["doc_id"],
        n_new=int(accepted["old_version"].is_null().sum()),
        n_boilerplate_dirty=len(dirty_rows),
        resigned_ids=resign.documents["doc_id"],
    )
    whole = store.Segment.concat([live.take(clean_rows), segment])
    order = whole.documents.select("doc_id").with_row_index("row").sort("doc_id")["row"].to_numpy()
    combined = whole.take(order)
    removed_rows = np.flatnonzero(replaced | np.isin(np.arange(live.documents.height), np.concatenate([dirty_rows, resign_rows])))
    return fresh, combined, removed_rows, keys, frequent_words


def _prepared(combined: store.Segment, rejects: pl.DataFrame, frequent_words: np.ndarray) -> Prepared:
    """The whole corpus as the pipeline's :class:`Prepared` (exact copies share anchors, as in a full run)."""
    docs = combined.documents
    base = [c for c in docs.columns if c not in ("version", "fingerprint", "content_hash", "n_tokens", "n_chars")]
    documents = docs.select(*base, "content_hash", "n_tokens", "n_chars")
    views = {"words": combined.ragged["words"], "anchors": combined.ragged["anchors"]}
    signatures = dict(combined.signatures)
    pipeline.share_exact_copies(documents["content_hash"], views, signatures)
    bp = combined.ragged["boilerplate"]
    boilerplate = pl.DataFrame(
        {"doc": np.repeat(np.arange(docs.height), bp.sizes()).astype(np.uint32), "line": bp.hashes.astype(np.int32)}
    )
    return Prepared(documents, rejects, views, signatures, boilerplate, frequent=frequent_words)


def _read_out(store_dir: Path, manifest: store.Manifest | None, name: str, schema: pl.Schema) -> pl.DataFrame:
    if manifest is None:
        return schemas.empty(schema)
    path = store.generation_dir(store_dir, manifest.generation) / "out" / f"{name}.parquet"
    return schemas.conform(pl.read_parquet(path), schema, keep_extra=(name == "documents")) if path.exists() else schemas.empty(schema)


def _pair_digests(a_keys: np.ndarray, b_keys: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Order-free digest of each group's pairs (sum of a mixed hash per pair, mod 2^64)."""
    lo, hi = np.minimum(a_keys, b_keys), np.maximum(a_keys, b_keys)
    with np.errstate(over="ignore"):
        h = pipeline.shingle.fmix64(lo * np.uint64(0x9E3779B97F4A7C15) + pipeline.shingle.fmix64(hi))
    out = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(out, group, h)
    return out


def _trace(
    prepared: Prepared,
    linked: pipeline.Linked,
    changed_rows: np.ndarray,
    new_version: np.ndarray,
    store_dir: Path,
    manifest: store.Manifest | None,
    generation: int,
    config: PipelineConfig,
) -> tuple[pipeline.Traced, pl.DataFrame, pl.DataFrame, str, int]:
    """Tables of the whole corpus, re-tracing only clusters that changed; ids kept stable."""
    docs = prepared.documents
    n = docs.height
    doc_ids = docs["doc_id"]
    keys = pipeline.doc_keys(doc_ids)
    cluster = pipeline.dense_clusters(linked.roots)
    n_clusters = int(cluster.max()) + 1 if n else 0
    facts = pipeline.corpus_facts(docs, cluster, config, keys)
    mode = facts_mode(docs, facts)

    old_docs = _read_out(store_dir, manifest, "documents", schemas.DOCUMENTS).select(
        "doc_id", "cluster_id", "is_origin", "parent_id", "depth", "completeness"
    )
    old_edges = _read_out(store_dir, manifest, "edges", schemas.EDGES)
    old_consulted = store.read_table(store_dir, manifest.generation, "consulted", CONSULTED) if manifest else pl.DataFrame(schema=CONSULTED)
    old_pairs = store.read_table(store_dir, manifest.generation, "pairs", PAIRS) if manifest else pl.DataFrame(schema=PAIRS)
    old_cid = (
        pl.DataFrame({"doc_id": doc_ids}).join(old_docs.select("doc_id", "cluster_id"), on="doc_id", how="left", maintain_order="left")["cluster_id"]
    )
    # A new version is another text: it does not carry its old cluster (or its id) with it.
    old_cid = pl.select(pl.when(pl.Series(new_version)).then(None).otherwise(old_cid).alias("cluster_id")).to_series()

    # A cluster may keep its stored trace if it is exactly one stored cluster, untouched.
    frame = pl.DataFrame({"cluster": cluster, "old": old_cid, "changed": changed_rows})
    old_size = old_docs.group_by("cluster_id").len().rename({"cluster_id": "old", "len": "old_size"})
    per_cluster = (
        frame.group_by("cluster").agg(
            pl.len().alias("size"), pl.col("old").n_unique().alias("n_old"), pl.col("old").first(),
            pl.col("old").null_count().alias("new_members"), pl.col("changed").any(),
        )
        .join(old_size, on="old", how="left")
        .with_columns(
            ((pl.col("n_old") == 1) & (pl.col("new_members") == 0) & ~pl.col("changed") & (pl.col("size") == pl.col("old_size")))
            .fill_null(False).alias("same")
        )
        .sort("cluster")
    )
    same = np.zeros(n_clusters, dtype=bool)
    same[per_cluster["cluster"].to_numpy()] = per_cluster["same"].to_numpy()
    old_of = np.full(n_clusters, None, dtype=object)
    old_of[per_cluster["cluster"].to_numpy()] = per_cluster["old"].to_numpy()
    if manifest is None or manifest.facts_mode != mode:
        same[:] = False
    if same.any():
        # Same verified pairs inside?
        a, b = linked.pairs["a"].to_numpy().astype(np.int64), linked.pairs["b"].to_numpy().astype(np.int64)
        inside = cluster[a] == cluster[b]
        new_digest = _pair_digests(keys[a[inside]], keys[b[inside]], cluster[a[inside]], n_clusters)
        old_frame = old_docs.select("doc_id", "cluster_id")
        op = (
            old_pairs.join(old_frame.rename({"doc_id": "a_id", "cluster_id": "ca"}), on="a_id")
            .join(old_frame.rename({"doc_id": "b_id", "cluster_id": "cb"}), on="b_id")
            .filter(pl.col("ca") == pl.col("cb"))
        )
        # Keys of old pair endpoints (by id) and the new cluster their stored cluster maps to.
        old_index = {cid: c for c, cid in enumerate(old_of.tolist()) if cid is not None and same[c]}
        target = np.array([old_index.get(cid, -1) for cid in op["ca"].to_list()], dtype=np.int64)
        sel = target >= 0
        old_digest = _pair_digests(
            pipeline.doc_keys(op["a_id"].filter(pl.Series(sel))), pipeline.doc_keys(op["b_id"].filter(pl.Series(sel))),
            target[sel], n_clusters,
        )
        same &= new_digest == old_digest
    if same.any() and facts.frequency is not None and old_consulted.height:
        holds = pipeline.direction.decisions_hold(old_consulted.rename({"cluster_id": "key"}), facts.frequency)
        broken = set(holds.filter(~pl.col("holds"))["key"].to_list())
        if broken:
            same &= ~np.isin(old_of.astype(str), list(broken))

    reuse_row = same[cluster]
    retrace = np.flatnonzero(~reuse_row)
    row_of = pl.DataFrame({"doc_id": doc_ids}).with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    parts_placement, parts_edges = [], []
    new_consulted = pl.DataFrame(schema=pipeline.CONSULTED_SCHEMA)
    if len(retrace):
        fresh = pipeline.trace_clusters(prepared, linked.pairs, cluster, facts, config, rows=retrace)
        parts_placement.append(fresh.placement)
        parts_edges.append(fresh.edges)
        new_consulted = fresh.consulted
    if reuse_row.any():
        kept_ids = pl.Series(doc_ids.filter(pl.Series(reuse_row)))
        placed = (
            old_docs.filter(pl.col("doc_id").is_in(kept_ids.implode()))
            .join(row_of, on="doc_id")
            .join(row_of.rename({"doc_id": "parent_id", "row": "parent_row"}), on="parent_id", how="left")
            .select("row", "is_origin", pl.col("parent_row").fill_null(-1), "depth", "completeness")
        )
        parts_placement.append(placed)
        reused_edges = (
            old_edges.filter(pl.col("child_id").is_in(kept_ids.implode()))
            .join(row_of.rename({"doc_id": "child_id", "row": "child"}), on="child_id")
            .join(row_of.rename({"doc_id": "parent_id", "row": "parent"}), on="parent_id")
            .drop("cluster_id", "parent_id", "child_id")
        )
        if parts_edges:
            reused_edges = reused_edges.select(parts_edges[0].columns)
        parts_edges.append(reused_edges)
    placement = pl.concat(parts_placement, how="vertical_relaxed").sort("row")
    edges = pl.concat(parts_edges, how="vertical_relaxed") if parts_edges else pl.DataFrame()
    is_origin = placement["is_origin"].to_numpy()

    ids, events = stable_ids(doc_ids, cluster, is_origin, old_cid, old_docs, generation)
    tables = pipeline.assemble_tables(docs, placement, edges, ids)
    consulted = pl.concat([
        new_consulted.select(pl.Series("cluster_id", ids[new_consulted["origin_row"].to_numpy()], dtype=pl.String), "word_a", "word_b", "sign"),
        old_consulted.filter(pl.col("cluster_id").is_in(pl.Series([c for c, s in zip(old_of.tolist(), same.tolist()) if s], dtype=pl.String).implode())),
    ]).sort(pl.all())
    return tables, consulted, events, mode, len(retrace)


CONSULTED = pl.Schema({"cluster_id": pl.String, "word_a": pl.String, "word_b": pl.String, "sign": pl.Int8})


def stable_ids(
    doc_ids: pl.Series, cluster: np.ndarray, is_origin: np.ndarray, old_cid: pl.Series, old_docs: pl.DataFrame, generation: int
) -> tuple[np.ndarray, pl.DataFrame]:
    """Each cluster's id, keeping stored ids, and the ``cluster_history`` events of this run.

    Rule: every stored id goes to at most one cluster and every cluster takes
    at most one stored id, greedily, larger stored clusters first (then more
    of its members, then the smaller id).  So a merge keeps the id of the
    larger stored cluster and a split leaves it with the part holding most of
    it.  A cluster with no stored id gets ``c`` + hash of its origin's doc_id
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
        candidate = "c" + xxhash.xxh3_64_hexdigest(origin_id[c].encode())
        k = 0
        while candidate in used or candidate in taken:
            k += 1
            candidate = "c" + xxhash.xxh3_64_hexdigest(f"{origin_id[c]}#{k}".encode())
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


def _versions(
    store_dir: Path, manifest: store.Manifest | None, live: store.Segment, fresh: _Fresh, traced: pipeline.Traced, generation: int
) -> pl.DataFrame:
    """``document_versions``: every version of every document; superseded ones keep their text and last cluster."""
    previous = _read_out(store_dir, manifest, "document_versions", schemas.DOCUMENT_VERSIONS)
    current = traced.documents.select("doc_id", pl.col("cluster_id").alias("now"))
    arrivals = fresh.segment.documents.select("doc_id", "version", "content_hash", "fingerprint")
    open_rows = previous.filter(pl.col("superseded_generation").is_null())
    # A re-prepared document (boilerplate changed) arrives with its stored version: not a new version.
    opened = arrivals.join(open_rows.select("doc_id", "version"), on=["doc_id", "version"], how="anti")
    superseded = opened.filter(pl.col("version") > 1)["doc_id"]
    old_text = live.documents.filter(pl.col("doc_id").is_in(superseded.implode())).select("doc_id", pl.col("text").alias("old_text"))
    closing = pl.col("superseded_generation").is_null() & pl.col("doc_id").is_in(superseded.implode())
    closed = (
        previous.join(old_text, on="doc_id", how="left")
        .with_columns(
            pl.when(closing).then(pl.col("old_text")).otherwise(pl.col("text")).alias("text"),
            pl.when(closing).then(pl.lit(generation)).otherwise(pl.col("superseded_generation")).alias("superseded_generation"),
        )
        .drop("old_text")
    )
    new_rows = opened.select(
        "doc_id", "version", "content_hash", "fingerprint",
        pl.lit(generation).alias("first_generation"), pl.lit(None, pl.Int32).alias("superseded_generation"),
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


def _current_result(out_dir: Path, store_dir: Path, manifest: store.Manifest, rejects: pl.DataFrame) -> RunResult:
    out = store.generation_dir(store_dir, manifest.generation) / "out"
    read = {name: pl.read_parquet(out / f"{name}.parquet") for name in ("documents", "clusters", "edges")}
    info = schemas.read_json(out / "run.json")
    return RunResult(out_dir, read["documents"], read["clusters"], read["edges"], rejects, info)
