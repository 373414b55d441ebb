"""The whole pipeline as a few big stages over polars frames and flat arrays.

Each stage is a plain function that takes the previous stage's result and
returns its own plus a :class:`StageReport` (rows in/out, seconds, figures of
its own), so the Prefect flow, the CLI and a library caller run the very same
code and get the same per-stage record in ``run.json``.

    ingest -> prepare (normalise, boilerplate, shingle, sign)
           -> link (LSH candidates, verification, clustering)
           -> trace (completeness, origins, parents, change statistics)
           -> tables -> write
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xxhash

from provenance import changes, cluster, direction, frequent, lsh, minhash, normalize, origin, schemas, shingle, spill, tree, verify
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError
from provenance.frequent import doc_keys
from provenance.ingest import Ingested, ingest

#: Anchor sets smaller than this are too thin to vouch for a pair on their own.
MIN_ANCHOR_SET = 8
#: Candidates whose estimated containment is this many standard errors below
#: ``min_containment`` in every view skip exact verification (4: about 3e-5 of true pairs at the floor).
PREFILTER_SIGMAS = 4.0
#: A short line seen in at least this many documents is boilerplate.
BOILERPLATE_MIN_DOCS = 3
#: Word n-gram length of the parent-choice shingles (all tokens, boilerplate kept).
LINEAGE_NGRAM = 3
#: Documents (or edges) per batch of the trace steps that hold Python objects per word
#: (``orient``, edge statistics): ~60 KiB a document, so a batch stays near 300 MiB.
WORDS_BATCH = 5_000


@dataclass
class StageReport:
    """What one stage did: a uniform record for logs, ``run.json`` and artifacts."""

    name: str
    seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 4), "rows_in": self.rows_in, "rows_out": self.rows_out, **self.stats}


@contextmanager
def _timed(report: StageReport) -> Iterator[StageReport]:
    start = time.perf_counter()
    try:
        yield report
    finally:
        report.seconds = time.perf_counter() - start


@dataclass
class Prepared:
    """Accepted documents with their shingle views and signatures."""

    documents: pl.DataFrame
    rejects: pl.DataFrame
    views: dict[str, shingle.ShingleSets]
    signatures: dict[str, np.ndarray]
    #: ``doc, line`` of every boilerplate line (left out of the views).
    boilerplate: pl.DataFrame | None = None
    #: The texts, when they wait on disk (``documents`` then has no ``text``).
    texts: spill.TextSpill | None = None
    #: Frequent word shingles the words signatures were taken around (``provenance.frequent``).
    frequent: np.ndarray = field(default_factory=lambda: frequent.NOTHING)


@dataclass
class Linked:
    """Verified pairs and the cluster root (row index) of every document."""

    pairs: pl.DataFrame
    roots: np.ndarray


@dataclass
class Traced:
    """Per-document provenance columns and the tree edges with their statistics."""

    documents: pl.DataFrame
    edges: pl.DataFrame
    clusters: pl.DataFrame


# ---------------------------------------------------------------------------- ingest


def ingest_stage(inputs: list[Path], config: PipelineConfig) -> tuple[Ingested, StageReport]:
    """Read the inputs; per-document problems become rejects."""
    report = StageReport("ingest")
    with _timed(report):
        result = ingest(inputs, id_column=config.id_column, text_column=config.text_column, max_chars=config.max_chars)
        report.rows_in = result.documents.height + result.rejects.height
        report.rows_out = result.documents.height
        report.stats = {"files": len(result.files), "rejected": result.rejects.height}
    return result, report


def ready_for_write(traced: Traced, prepared: Prepared) -> Traced:
    """Ready the tables for writing: free the views and signatures, and give back every text.

    After trace nothing reads the shingle views or signatures any more, so
    they go first.  When the texts waited on disk, ``traced`` is updated in
    place (and returned): trace's partial texts are dropped before the full
    ones are read, so both never take memory at once.
    """
    prepared.views.clear()
    prepared.signatures.clear()
    if prepared.texts is None:
        return traced
    traced.documents = traced.documents.drop("text", strict=False)
    texts = pl.DataFrame({"doc_id": prepared.documents["doc_id"], "text": prepared.texts.load()})
    traced.documents = traced.documents.join(texts, on="doc_id", how="left", maintain_order="left")
    return traced


# ---------------------------------------------------------------------------- prepare


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)] or [(0, 0)]


@dataclass
class BatchSummary:
    """Pass 1 over one batch: what must be known corpus-wide before shingling."""

    lo: int
    n_tokens: np.ndarray
    content_hash: np.ndarray
    line_doc: np.ndarray  # corpus row of every short line
    line_key: np.ndarray


@dataclass
class BatchViews:
    """Pass 2 over one batch: shingle sets, signatures, boilerplate lines."""

    lo: int
    views: dict[str, shingle.ShingleSets]
    signatures: dict[str, np.ndarray]
    boilerplate: pl.DataFrame
    n_boilerplate: int


def summarize_batch(texts: pl.Series, lo: int, seed: int) -> BatchSummary:
    """Token counts, content hashes and short-line keys of one batch (rows ``lo`` on)."""
    summary = normalize.summarize(texts, seed)
    return BatchSummary(lo, summary.n_tokens, summary.content_hash, summary.line_doc + lo, summary.line_key)


def shingle_batch(
    texts: pl.Series | spill.TextRows, lo: int, boilerplate_keys: np.ndarray, config: PipelineConfig,
    n_tokens: np.ndarray | None = None, frequent_words: np.ndarray | None = None,
) -> BatchViews:
    """Views (boilerplate lines left out) and signatures of one batch.

    ``n_tokens`` (pass 1's counts of these texts) saves counting them again;
    the words signatures are taken around ``frequent_words`` (see :func:`sample_frequent_words`).
    """
    texts = spill.texts_of(texts)
    if n_tokens is None:
        n_tokens = normalize.summarize(texts, config.seed).n_tokens
    out = shingle.text_views(
        texts, n_tokens, boilerplate_keys, seed=config.seed, word_ngram=config.word_ngram, anchor_ngram=config.anchor_ngram
    )
    leave_out = {"words": frequent_words}
    signatures = {
        name: minhash.signatures(sets, config.num_perm, config.seed, leave_out.get(name)) for name, sets in out.views.items()
    }
    # Boilerplate lines as (document, ordinal among its lines with tokens), for ``direction``.
    lines = out.boilerplate_lines
    boilerplate = pl.DataFrame(
        {
            "doc": (np.repeat(np.arange(len(texts), dtype=np.int64), lines.sizes()) + lo).astype(np.uint32),
            "line": lines.hashes.astype(np.int32),
        }
    )
    return BatchViews(lo, out.views, signatures, boilerplate, out.boilerplate_tokens)


def combine_summaries(
    ingested: Ingested, summaries: list[BatchSummary], config: PipelineConfig
) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Kept documents (with ``content_hash``, ``n_tokens``, ``n_chars``), all rejects, boilerplate keys."""
    docs = ingested.documents
    summaries = sorted(summaries, key=lambda b: b.lo)
    n_tokens = np.concatenate([b.n_tokens for b in summaries]) if summaries else np.zeros(0, np.int64)
    content = np.concatenate([b.content_hash for b in summaries]) if summaries else np.zeros(0, np.uint64)
    too_short = n_tokens < config.min_tokens
    rejects = pl.concat(
        [
            ingested.rejects,
            docs.filter(pl.Series(too_short, dtype=pl.Boolean)).select(
                "source", "doc_id", pl.lit("too_short").alias("reason"),
                pl.lit(f"fewer than {config.min_tokens} tokens").alias("detail"),
            ),
        ]
    )
    line_doc = np.concatenate([b.line_doc for b in summaries]) if summaries else np.zeros(0, np.int64)
    line_key = np.concatenate([b.line_key for b in summaries]) if summaries else np.zeros(0, np.uint64)
    kept_lines = ~too_short[line_doc] if len(line_doc) else np.zeros(0, dtype=bool)
    keys = normalize.boilerplate_keys(line_doc[kept_lines], line_key[kept_lines], BOILERPLATE_MIN_DOCS)
    keep = ~too_short
    if too_short.any():  # a filter copies every text: only when something is set aside
        docs = docs.filter(pl.Series(keep, dtype=pl.Boolean))
    docs = docs.with_columns(
        pl.Series("content_hash", [f"{h:016x}" for h in content[keep].tolist()], dtype=pl.String),
        pl.Series("n_tokens", n_tokens[keep], dtype=pl.Int32),
        pl.col("text").str.len_chars().cast(pl.Int32).alias("n_chars"),
    )
    return docs, rejects, keys


def sample_frequent_words(sample: pl.Series, n_tokens: np.ndarray, boilerplate_keys: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """Word shingles frequent in ``sample``, the texts of ``frequent.sample_rows`` (their ``n_tokens``).

    The sample is shingled exactly as pass 2 shingles it (boilerplate lines
    out), so its counts are those of the views being signed.
    """
    if len(sample) == 0:
        return frequent.NOTHING
    out = shingle.text_views(
        sample, n_tokens, boilerplate_keys, seed=config.seed, word_ngram=config.word_ngram, anchor_ngram=config.anchor_ngram
    )
    return frequent.frequent_shingles(out.views["words"].hashes, len(sample))


def assemble_prepared(docs: pl.DataFrame, rejects: pl.DataFrame, parts: list[BatchViews]) -> Prepared:
    """Concatenate per-batch views and signatures; exact duplicates share the first copy's.

    ``parts`` is emptied as it is copied, so the batches' arrays are freed one
    by one instead of the whole corpus' views and signatures existing twice.
    """
    parts.sort(key=lambda b: b.lo)
    boilerplate = pl.concat([p.boilerplate for p in parts]) if parts else None
    n = docs.height
    names = ("words", "anchors")
    sizes = {name: np.concatenate([p.views[name].sizes() for p in parts]) if parts else np.zeros(0, np.int64) for name in names}
    offsets = {name: np.concatenate(([0], np.cumsum(sizes[name]))).astype(np.int64) for name in names}
    hashes = {name: np.empty(int(offsets[name][-1]), dtype=np.uint32) for name in names}
    width = parts[0].signatures["words"].shape[1] if parts else 0
    signatures = {name: np.empty((n, width), dtype=np.uint32) for name in names}
    while parts:
        part = parts.pop(0)
        hi = part.lo + part.views["words"].n_docs
        for name in names:
            start = offsets[name][part.lo]
            hashes[name][start : start + len(part.views[name].hashes)] = part.views[name].hashes
            signatures[name][part.lo : hi] = part.signatures[name]
        del part
    views = {name: shingle.ShingleSets(hashes[name], offsets[name]) for name in names}
    share_exact_copies(docs["content_hash"], views, signatures)
    return Prepared(docs, rejects, views, signatures, boilerplate)


def share_exact_copies(content_hash: pl.Series, views: dict[str, shingle.ShingleSets], signatures: dict[str, np.ndarray]) -> None:
    """Give exact duplicates (same canonical text) the first one's anchors, in place.

    A copy in capitals then cannot differ; their lower-case word views are
    equal already, and copying those too would double the memory of a big
    corpus.
    """
    first_copy = (
        pl.DataFrame({"content_hash": content_hash}).with_row_index("row")
        .select(pl.col("row").min().over("content_hash"))["row"].to_numpy().astype(np.int64)
    )
    if (first_copy != np.arange(len(content_hash))).any():
        views["anchors"] = views["anchors"].take(first_copy)
        signatures["anchors"] = signatures["anchors"][first_copy]


def prepare_stage(
    ingested: Ingested,
    config: PipelineConfig,
    *,
    map_fn: Callable[..., list[Any]] | None = None,
    spill_folder: Path | None = None,
) -> tuple[Prepared, StageReport]:
    """Normalise, drop boilerplate lines, shingle every view and sign it, batch by batch.

    Pass 1 (:func:`summarize_batch`) counts tokens (too-short documents are
    set aside), hashes content and collects the keys of short lines;
    boilerplate is what recurs across documents, so it is only known once
    every batch has been seen (:func:`combine_summaries`).  Pass 2
    (:func:`shingle_batch`) shingles and signs each batch without its
    boilerplate.  Only flat arrays outlive a batch.  ``map_fn(fn, *iterables)``
    runs the batches (default: the built-in ``map``; the flow passes one that
    fans them out to Prefect tasks, on threads or Dask).

    Texts over ``config.spill_over_mib`` go to disk between the passes
    (``provenance.spill``, in ``spill_folder``): they leave ``ingested`` and
    the documents frame, pass 2's batches read their own rows back, and
    ``Prepared.texts`` holds the spill (the caller removes it when done).
    """
    run_all = map_fn or (lambda fn, *its: list(map(fn, *its)))
    report = StageReport("prepare", rows_in=ingested.documents.height)
    with _timed(report):
        texts = ingested.documents["text"]
        batches = _batches(len(texts), config.batch_size)
        summaries = run_all(
            summarize_batch, [texts.slice(lo, hi - lo) for lo, hi in batches], [lo for lo, _ in batches],
            [config.seed] * len(batches),
        )
        del texts
        docs, rejects, keys = combine_summaries(ingested, summaries, config)
        spilled = None
        if docs.height and spill.text_bytes(docs["text"]) > config.spill_over_mib * 2**20:
            spilled = spill.spill_texts(docs["text"], config.batch_size, spill_folder or spill.default_folder())
            docs = docs.drop("text")
            ingested.documents = ingested.documents.drop("text")  # the texts now live on disk only
        try:
            batches = _batches(docs.height, config.batch_size)
            n_tokens = docs["n_tokens"].to_numpy()
            sample = frequent.sample_rows(doc_keys(docs["doc_id"]))
            sample_texts = spilled.gather(sample) if spilled is not None else docs["text"].gather(sample)
            frequent_words = sample_frequent_words(sample_texts, n_tokens[sample], keys, config)
            del sample_texts
            batch_texts = [
                spill.TextRows(spilled, np.arange(lo, hi, dtype=np.int64)) if spilled else docs["text"].slice(lo, hi - lo)
                for lo, hi in batches
            ]
            parts = run_all(
                shingle_batch, batch_texts, [lo for lo, _ in batches],
                [keys] * len(batches), [config] * len(batches), [n_tokens[lo:hi] for lo, hi in batches],
                [frequent_words] * len(batches),
            )
            del batch_texts
            boilerplate_tokens = sum(p.n_boilerplate for p in parts)
            prepared = replace(assemble_prepared(docs, rejects, parts), texts=spilled, frequent=frequent_words)
        except BaseException:
            if spilled is not None:
                spilled.remove()
            raise
        report.rows_out = docs.height
        report.stats = {
            "batches": len(batches),
            "rejected_too_short": int(ingested.documents.height - docs.height),
            "tokens": int(docs["n_tokens"].sum() or 0),
            "boilerplate_tokens": boilerplate_tokens,
            "frequent_word_shingles": int(len(frequent_words)),
            "texts_on_disk": spilled is not None,
            **{f"{name}_shingles": int(len(sets.hashes)) for name, sets in prepared.views.items()},
        }
    return prepared, report


# ---------------------------------------------------------------------------- link


def _pair_frame(a: np.ndarray, b: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"a": a, "b": b}, schema=lsh.PAIRS_SCHEMA)


def exact_duplicate_pairs(content_hash: pl.Series) -> pl.DataFrame:
    """Every member of a group of exact duplicates paired with the group's first row."""
    frame = pl.DataFrame({"h": content_hash}).with_row_index("row")
    grouped = frame.with_columns(pl.col("row").min().over("h").alias("first")).filter(pl.col("row") != pl.col("first"))
    return _pair_frame(grouped["first"].to_numpy(), grouped["row"].to_numpy())


@dataclass
class KnownPairs:
    """What an earlier run already verified, so an incremental run re-verifies only what may differ.

    A candidate pair between two rows not flagged in ``relink`` was a
    candidate in the earlier run too (see ``incremental``), on the very same
    shingle sets, so it passes exactly when it is in ``verified`` (sorted
    ``a << 32 | b`` codes).
    """

    relink: np.ndarray
    verified: np.ndarray


def link_stage(prepared: Prepared, config: PipelineConfig, known: KnownPairs | None = None) -> tuple[Linked, StageReport]:
    """LSH candidates from every view, verified as they are found, then clustering.

    Each chunk of bands' new candidates is first cut on the signatures (drop
    pairs whose estimated containment is more than ``PREFILTER_SIGMAS``
    standard errors below the floor in every view), then verified on the
    exact sets; only verified pairs are kept, so memory holds edges, not the
    far larger crowd of chance collisions.  With ``known`` pairs, only
    candidates touching a ``relink`` row are verified; the others are looked up.
    """
    report = StageReport("link", rows_in=prepared.documents.height)
    with _timed(report):
        views = prepared.views
        rank = -views["words"].sizes()
        # What each view's signatures were taken over: the prefilter's estimates refer to these sets.
        signed = {"words": minhash.signed_sizes(views["words"], prepared.frequent), "anchors": views["anchors"].sizes()}
        thresholds = {"words": config.words_threshold, "anchors": config.anchors_threshold}
        seen = {"candidates": 0, "verified_exactly": 0}

        def passes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return verify.pairs_pass(views, a, b, MIN_ANCHOR_SET, config.min_containment, config.min_jaccard)

        def accept(packed: np.ndarray) -> np.ndarray:
            seen["candidates"] += len(packed)
            if known is not None:
                a, b = lsh.unpack(packed)
                fresh = known.relink[a] | known.relink[b]
                looked_up = packed[~fresh & normalize.sorted_member(packed, known.verified)]
                return np.sort(np.concatenate([looked_up, verify_fresh(packed[fresh])]))
            return verify_fresh(packed)

        def verify_fresh(packed: np.ndarray) -> np.ndarray:
            a, b = lsh.unpack(packed)
            hopeful = np.zeros(len(a), dtype=bool)
            for name in ("words", "anchors"):
                verify.hopeful_pairs(
                    prepared.signatures[name], signed[name], a, b, config.min_containment, PREFILTER_SIGMAS, hopeful
                )
            seen["verified_exactly"] += int(hopeful.sum())
            kept = np.flatnonzero(hopeful)
            return packed[kept[passes(a[kept], b[kept])]]

        found = []
        for name, sig in prepared.signatures.items():
            pairs = lsh.candidate_pairs(sig, rank, threshold=thresholds[name], window=config.bucket_window, accept=accept)
            report.stats[f"{name}_verified"] = pairs.height
            found.append(pairs)
        duplicates = exact_duplicate_pairs(prepared.documents["content_hash"])
        pairs = pl.concat([*found, duplicates]).unique().sort("a", "b")
        contained, jaccard = verify.pair_scores(views, pairs["a"].to_numpy(), pairs["b"].to_numpy(), MIN_ANCHOR_SET)
        scored = pairs.with_columns(pl.Series("containment", contained), pl.Series("jaccard", jaccard))
        exact = scored.join(duplicates.with_columns(pl.lit(True).alias("exact")), on=["a", "b"], how="left")
        verified = exact.filter(
            pl.col("exact").fill_null(False)
            | ((pl.col("containment") >= config.min_containment) & (pl.col("jaccard") >= config.min_jaccard))
        ).with_columns(
            pl.when(pl.col("exact").fill_null(False)).then(2.0).otherwise(pl.col("containment")).alias("strength")
        )
        roots = cluster.grow_clusters(
            prepared.documents.height,
            verified,
            views,
            min_containment=config.min_containment,
            min_jaccard=config.min_jaccard,
            min_anchor_set=MIN_ANCHOR_SET,
        )
        report.rows_out = int(len(lsh.sorted_unique(roots))) if len(roots) else 0
        report.stats.update(
            candidates=seen["candidates"],
            verified_exactly=seen["verified_exactly"],
            exact_duplicate_pairs=duplicates.height,
            verified=verified.height,
            clusters=report.rows_out,
        )
    return Linked(verified.select("a", "b", "containment", "jaccard"), roots), report


# ---------------------------------------------------------------------------- trace


def _published(documents: pl.DataFrame) -> np.ndarray | None:
    if "published_at" not in documents.columns:
        return None
    col = documents["published_at"]
    if col.dtype == pl.String:
        col = col.str.to_datetime(strict=False, time_zone="UTC") if col.str.contains(r"[+-]\d\d:?\d\d$|Z$").any() else col.str.to_datetime(strict=False)
    if not col.dtype.is_temporal():
        return None
    values = col.cast(pl.Datetime("us")).dt.replace_time_zone(None).cast(pl.Int64) if isinstance(col.dtype, pl.Datetime) else col.cast(pl.Datetime("us")).cast(pl.Int64)
    return None if values.null_count() == len(values) else values.to_numpy()


def _cluster_batches(cluster: np.ndarray, members: np.ndarray, size: int) -> list[np.ndarray]:
    """``members`` cut into batches of about ``size`` rows that never split a cluster."""
    order = members[np.argsort(cluster[members], kind="stable")]
    if len(order) == 0:
        return []
    starts = np.flatnonzero(np.diff(cluster[order], prepend=-1))  # where each cluster begins
    batches, lo = [], 0
    for start in starts[1:].tolist() + [len(order)]:
        if start - lo >= size or start == len(order):
            batches.append(np.sort(order[lo:start]))
            lo = start
    return [b for b in batches if len(b)]


def multi_members(cluster: np.ndarray) -> np.ndarray:
    """Rows (ascending) of every cluster with more than one document: all that trace reads texts of."""
    return np.flatnonzero(np.bincount(cluster, minlength=len(cluster))[cluster] > 1)


def spin_frequency(cluster: np.ndarray, texts: pl.Series, keys: np.ndarray, config: PipelineConfig) -> dict[str, int]:
    """``direction``'s corpus-wide word frequencies: in how many clusters (copies count once) each word occurs.

    Counted over every member of a multi-document cluster and a bottom-k
    sample of singletons (``direction.frequency_sample``), in batches of whole
    clusters.  Corpus-wide by nature: an incremental run recomputes it and
    re-traces only the clusters whose consulted comparisons it flips.
    """
    batches = _cluster_batches(cluster, multi_members(cluster), config.batch_size)
    sample = direction.frequency_sample(cluster, keys)
    parts = [direction.cluster_frequency(cluster, texts, rows) for rows in [*batches, sample]]
    counts = pl.concat(parts).group_by("token").agg(pl.col("n").sum())
    return dict(zip(counts["token"].to_list(), counts["n"].to_list()))


def orient(
    cluster: np.ndarray,
    rank: np.ndarray,
    prepared: Prepared,
    config: PipelineConfig,
    frequency: dict[str, int] | None,
    consulted: list[tuple[int, str, str, int]] | None = None,
) -> np.ndarray:
    """Re-rank every multi-member cluster by direction of derivation (``direction``).

    The origin is the round-robin winner of alignment evidence among the most
    complete members (skipped, ``frequency=None``, when publication dates are
    known: they order versions better than text can); the other members follow
    by edit depth from the origin, so a candidate parent has fewer derived
    changes than its child.  One alignment per member plus ``TOP_K^2`` per
    cluster, in batches of whole clusters so that only one batch's tokens are
    in memory at once.  ``consulted`` collects the frequency comparisons made
    (``cluster, word, word, sign``).
    """
    n = len(cluster)
    members = multi_members(cluster)
    if len(members) == 0:
        return rank
    texts = prepared.documents["text"]
    boilerplate = prepared.boilerplate if prepared.boilerplate is not None else pl.DataFrame(schema={"doc": pl.UInt32, "line": pl.Int32})
    batches = _cluster_batches(cluster, members, min(config.batch_size, WORDS_BATCH))
    rank = rank.copy()
    depth = np.zeros(n)
    for rows in batches:
        clusters_here, local_cluster = np.unique(cluster[rows], return_inverse=True)
        words = direction.doc_words(texts, rows, boilerplate)
        local_words = {i: words[int(r)] for i, r in enumerate(rows.tolist())}
        local_rank = rank[rows]
        if frequency is not None:
            seen: list[tuple[int, str, str, int]] | None = [] if consulted is not None else None
            local_rank = direction.refine_origins(local_cluster, local_rank, local_words, frequency, seen)
            if consulted is not None and seen:
                consulted.extend((int(clusters_here[c]), wa, wb, sign) for c, wa, wb, sign in seen)
        rank[rows] = local_rank
        depth[rows] = direction.edit_depth(local_cluster, local_rank, local_words)
    return direction.order_by_depth(cluster, rank, depth)


def lineage_of_members(texts: pl.Series, cluster: np.ndarray, config: PipelineConfig) -> shingle.ShingleSets:
    """Lineage sets (``shingle.lineage_sets``) of members of multi-document clusters; empty for singletons.

    Only parent choice uses them, so they are built here for the few
    documents that have copies instead of being kept for the whole corpus.
    """
    n = len(cluster)
    members = multi_members(cluster)
    sizes = np.zeros(n, dtype=np.int64)
    parts = []
    for lo in range(0, len(members), config.batch_size):
        rows = members[lo : lo + config.batch_size]
        sets = shingle.lineage_sets(normalize.tokenize(texts.gather(rows), config.seed), len(rows), ngram=LINEAGE_NGRAM)
        sizes[rows] = sets.sizes()
        parts.append(sets.hashes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    # Members are in row order and singletons hold nothing: the members' sets,
    # one after the other, are exactly the flat array.
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return shingle.ShingleSets(hashes, offsets)


@dataclass
class CorpusFacts:
    """What the per-cluster trace needs to know about the whole corpus."""

    #: ``direction``'s word frequencies; ``None`` when publication dates decide origins.
    frequency: dict[str, int] | None
    #: Publication time (µs) per row, or ``None`` when the corpus has no dates.
    published: np.ndarray | None


def corpus_facts(documents: pl.DataFrame, cluster: np.ndarray, config: PipelineConfig, keys: np.ndarray | None = None) -> CorpusFacts:
    """Dates and word frequencies; ``keys`` are the rows' :func:`doc_keys` if the caller has them already."""
    published = _published(documents)
    frequency = None if published is not None else spin_frequency(
        cluster, documents["text"], doc_keys(documents["doc_id"]) if keys is None else keys, config
    )
    return CorpusFacts(frequency, published)


def dense_clusters(roots: np.ndarray) -> np.ndarray:
    """Cluster numbers 0.. in order of first appearance (row order): deterministic."""
    _, first, cluster = np.unique(roots, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[cluster] if len(first) else cluster


@dataclass
class ClusterTrace:
    """Trace of some whole clusters, in corpus rows.

    ``placement``: ``row, is_origin, parent_row (-1: none), depth, completeness``;
    ``edges``: ``parent, child`` rows with similarity and change statistics;
    ``consulted``: ``origin_row, word_a, word_b, sign``, the frequency
    comparisons behind each origin choice.
    """

    placement: pl.DataFrame
    edges: pl.DataFrame
    consulted: pl.DataFrame


CONSULTED_SCHEMA = pl.Schema({"origin_row": pl.Int64, "word_a": pl.String, "word_b": pl.String, "sign": pl.Int8})


def _sub_corpus(prepared: Prepared, pairs: pl.DataFrame, rows: np.ndarray) -> tuple[Prepared, pl.DataFrame]:
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


def trace_clusters(
    prepared: Prepared,
    pairs: pl.DataFrame,
    cluster: np.ndarray,
    facts: CorpusFacts,
    config: PipelineConfig,
    rows: np.ndarray | None = None,
) -> ClusterTrace:
    """Completeness, origin, parents, depths and edge statistics of the clusters made of ``rows``.

    ``rows`` (sorted, whole clusters; default: every row) lets an incremental
    run re-trace only changed clusters; everything here is local to a cluster
    except ``facts``, so the result for a cluster does not depend on which
    other clusters are traced with it.
    """
    if rows is None:
        sub, sub_pairs, sub_cluster, published = prepared, pairs, cluster, facts.published
        rows = np.arange(prepared.documents.height)
    else:
        sub, sub_pairs = _sub_corpus(prepared, pairs, rows)
        sub_cluster = dense_clusters(cluster[rows])
        published = facts.published[rows] if facts.published is not None else None
    docs = sub.documents
    n = docs.height
    complete = origin.completeness(sub_cluster, sub.views)
    rank = origin.origin_rank(sub_cluster, complete, docs["n_tokens"].to_numpy(), published)
    consulted: list[tuple[int, str, str, int]] = []
    rank = orient(sub_cluster, rank, sub, config, facts.frequency, consulted)
    views = dict(sub.views)
    views["lineage"] = lineage_of_members(docs["text"], sub_cluster, config)
    parents = tree.choose_parents(sub_cluster, rank, sub_pairs, views, view="lineage")
    parent_of = np.full(n, -1, dtype=np.int64)
    parent_of[parents["child"].to_numpy()] = parents["parent"].to_numpy()
    depth = tree.depths(parent_of)
    placement = pl.DataFrame(
        {
            "row": rows.astype(np.int64),
            "is_origin": rank == 0,
            "parent_row": np.where(parent_of >= 0, rows[np.maximum(parent_of, 0)], -1).astype(np.int64),
            "depth": depth.astype(np.int32),
            "completeness": np.round(complete, 6),
        }
    )

    child = parents["child"].to_numpy()
    parent = parents["parent"].to_numpy()
    words = sub.views["words"]
    inter = verify.intersection_sizes(words, child, parent).astype(np.float64)
    sc, sp = words.sizes()[child].astype(np.float64), words.sizes()[parent].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = np.where(sc + sp - inter > 0, inter / (sc + sp - inter), 0.0)
        c_in_p = np.where(sc > 0, inter / sc, 0.0)
        p_in_c = np.where(sp > 0, inter / sp, 0.0)
    edge_rows = parents.select("parent", "child")
    size = min(config.batch_size, WORDS_BATCH)
    stats = pl.concat(
        [changes.edge_changes(edge_rows.slice(lo, size), docs["text"]) for lo in range(0, max(edge_rows.height, 1), size)]
    )
    edges = pl.DataFrame(
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
    origin_row = np.full(n, -1, dtype=np.int64)
    origin_row[sub_cluster[rank == 0]] = rows[np.flatnonzero(rank == 0)]
    consulted_frame = (
        pl.DataFrame(consulted, schema=["cluster", "word_a", "word_b", "sign"], orient="row")
        .select(pl.Series("origin_row", origin_row[np.array([c for c, *_ in consulted], dtype=np.int64)]), "word_a", "word_b", pl.col("sign").cast(pl.Int8))
        .unique()
        .sort(pl.all())
        if consulted
        else pl.DataFrame(schema=CONSULTED_SCHEMA)
    )
    return ClusterTrace(placement, edges, consulted_frame)


def fresh_cluster_ids(doc_ids: pl.Series, cluster: np.ndarray, is_origin: np.ndarray) -> np.ndarray:
    """Ids of clusters seen for the first time: ``c`` + 16 hex digits of the hash of the origin's doc_id."""
    by_cluster = np.empty(len(cluster), dtype=object)
    origins = np.flatnonzero(is_origin)
    by_cluster[cluster[origins]] = ["c" + xxhash.xxh3_64_hexdigest(d.encode()) for d in doc_ids.gather(origins).to_list()]
    return by_cluster[cluster]


def assemble_tables(documents: pl.DataFrame, placement: pl.DataFrame, edges: pl.DataFrame, ids: np.ndarray) -> Traced:
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
    clusters = summarize_clusters(out_docs, out_edges)
    return Traced(out_docs.sort("cluster_id", "depth", "doc_id"), out_edges, clusters)


def with_trace_texts(prepared: Prepared, cluster: np.ndarray, keys: np.ndarray | None) -> Prepared:
    """``prepared`` with a ``text`` column holding just what trace reads, when its texts wait on disk.

    Trace reads the members of multi-document clusters and, for word
    frequencies (``keys`` given), :func:`direction.frequency_sample`'s
    singletons; every other row gets a null.
    """
    if prepared.texts is None:
        return prepared
    rows = multi_members(cluster)
    if keys is not None:
        rows = np.union1d(rows, direction.frequency_sample(cluster, keys))
    return replace(prepared, documents=prepared.documents.with_columns(prepared.texts.sparse(rows).alias("text")))


def trace_stage(prepared: Prepared, linked: Linked, config: PipelineConfig) -> tuple[Traced, StageReport]:
    """Completeness, origins, parents, depths and per-edge change statistics.

    With texts on disk (``prepared.texts``) only the rows trace reads are
    loaded, and the documents table comes out with null texts elsewhere:
    :func:`ready_for_write` puts them back.
    """
    docs = prepared.documents
    report = StageReport("trace", rows_in=docs.height)
    with _timed(report):
        cluster = dense_clusters(linked.roots)
        keys = doc_keys(docs["doc_id"]) if _published(docs) is None else None
        prepared = with_trace_texts(prepared, cluster, keys)
        docs = prepared.documents
        facts = corpus_facts(docs, cluster, config, keys)
        traced = trace_clusters(prepared, linked.pairs, cluster, facts, config)
        is_origin = traced.placement.sort("row")["is_origin"].to_numpy()
        ids = fresh_cluster_ids(docs["doc_id"], cluster, is_origin)
        tables = assemble_tables(docs, traced.placement, traced.edges, ids)
        report.rows_out = tables.edges.height
        report.stats = {
            "clusters": tables.clusters.height,
            "multi_document_clusters": int((tables.clusters["size"] > 1).sum()),
            "largest_cluster": int(tables.clusters["size"].max() or 0),
            "edges": tables.edges.height,
        }
    return tables, report


def summarize_clusters(documents: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """One row per cluster: size, origin, depth, duplicate count and edge summaries."""
    per_doc = documents.group_by("cluster_id").agg(
        pl.len().alias("size"),
        pl.col("doc_id").filter(pl.col("is_origin")).first().alias("origin_id"),
        pl.col("title").filter(pl.col("is_origin")).first().alias("origin_title"),
        pl.col("depth").max().alias("max_depth"),
        (pl.len() - pl.col("content_hash").n_unique()).alias("n_exact_duplicates"),
    )
    per_edge = edges.group_by("cluster_id").agg(
        pl.col("confidence").mean().alias("mean_confidence"),
        pl.col("change_kind").is_in(["spin", "mixed"]).and_(pl.col("spin_rate") >= 0.08).mean().alias("share_spun"),
        pl.col("is_truncation").mean().alias("share_truncated"),
    )
    return (
        per_doc.join(per_edge, on="cluster_id", how="left")
        .with_columns(pl.col("mean_confidence", "share_spun", "share_truncated").fill_null(0.0).round(6))
        .sort(["size", "cluster_id"], descending=[True, False])
    )


# ---------------------------------------------------------------------------- write


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("provenance", "polars", "numpy", "numba", "datasketch", "rapidfuzz", "xxhash", "prefect"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def input_fingerprint(documents: pl.DataFrame, rejects: pl.DataFrame) -> str:
    """Hash of every accepted (id, content) and every reject: equal inputs, equal fingerprint."""
    digest = hashlib.sha256()
    for doc_id, content in documents.select("doc_id", "content_hash").sort("doc_id").iter_rows():
        digest.update(f"{doc_id}\x1f{content}\x1e".encode())
    for row in rejects.sort(["source", "doc_id"], nulls_last=True).iter_rows():
        digest.update(("\x1f".join(str(v) for v in row) + "\x1e").encode())
    return digest.hexdigest()


def write_stage(traced: Traced, rejects: pl.DataFrame, out_dir: Path, run_info: dict[str, Any]) -> tuple[dict[str, str], StageReport]:
    """Write the four tables and ``run.json``, each atomically."""
    report = StageReport("write", rows_in=traced.documents.height)
    with _timed(report):
        rejects = rejects.sort(["source", "doc_id"], nulls_last=True)
        paths = {
            "documents": schemas.write_table(traced.documents, "documents", out_dir),
            "clusters": schemas.write_table(traced.clusters, "clusters", out_dir),
            "edges": schemas.write_table(traced.edges, "edges", out_dir),
            "rejects": schemas.write_table(rejects, "rejects", out_dir),
        }
        report.rows_out = traced.documents.height
    run_info = {**run_info, "outputs": {k: str(v) for k, v in paths.items()}}
    run_info.setdefault("stages", {})[report.name] = report.to_dict()
    schemas.write_json_atomic(run_info, out_dir / "run.json")
    return {k: str(v) for k, v in paths.items()} | {"run": str(out_dir / "run.json")}, report


def run_info(config: PipelineConfig, inputs: list[Path], prepared: Prepared, traced: Traced, reports: list[StageReport]) -> dict[str, Any]:
    """The ``run.json`` record (everything but the write stage)."""
    reasons = prepared.rejects.group_by("reason").len().sort("reason")
    return {
        "inputs": [str(p) for p in inputs],
        "parameters": config.to_dict(),
        "signature": minhash.SignatureScheme(config.num_perm, config.seed).to_dict(),
        "versions": versions(),
        "input_fingerprint": input_fingerprint(prepared.documents, prepared.rejects),
        "counts": {
            "documents": traced.documents.height,
            "rejected": prepared.rejects.height,
            "rejects_by_reason": dict(reasons.iter_rows()),
            "clusters": traced.clusters.height,
            "multi_document_clusters": int((traced.clusters["size"] > 1).sum()),
            "edges": traced.edges.height,
        },
        "stages": {r.name: r.to_dict() for r in reports},
    }


def empty_trace(prepared: Prepared) -> Traced:
    """The (empty) tables of a run whose every document was set aside."""
    docs = prepared.documents.with_columns(
        pl.lit(None, pl.String).alias("cluster_id"), pl.lit(None, pl.Boolean).alias("is_origin"),
        pl.lit(None, pl.String).alias("parent_id"), pl.lit(None, pl.Int32).alias("depth"),
        pl.lit(None, pl.Float64).alias("completeness"),
    )
    for name, dtype in (("content_hash", pl.String), ("n_tokens", pl.Int32), ("n_chars", pl.Int32)):
        if name not in docs.columns:
            docs = docs.with_columns(pl.lit(None, dtype).alias(name))
    return Traced(docs, schemas.empty(schemas.EDGES), schemas.empty(schemas.CLUSTERS))


def make_config(options: dict[str, Any] | None = None) -> PipelineConfig:
    """A validated config from option names (as in ``PipelineConfig``); one-line errors."""
    options = dict(options or {})
    known = {f.name: f for f in fields(PipelineConfig) if f.name != "extra"}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ProvenanceError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    default = PipelineConfig()
    for name, value in options.items():
        expected = type(getattr(default, name))
        try:
            options[name] = expected(value) if not isinstance(value, bool) or expected is bool else None
        except (TypeError, ValueError):
            options[name] = None
        if options[name] is None:
            raise ProvenanceError(f"option {name} must be a {expected.__name__}, got {value!r}")
    return PipelineConfig(**options).validate()


@dataclass
class RunResult:
    out_dir: Path
    documents: pl.DataFrame
    clusters: pl.DataFrame
    edges: pl.DataFrame
    rejects: pl.DataFrame
    info: dict[str, Any]


def run(
    inputs: list[Path],
    out_dir: Path,
    config: PipelineConfig | None = None,
    *,
    on_stage: Callable[[StageReport], None] | None = None,
) -> RunResult:
    """Run every stage in-process and write the outputs to ``out_dir``."""
    config = (config or PipelineConfig()).validate()
    inputs = [Path(p) for p in inputs]
    out_dir = Path(out_dir)
    schemas.check_output_dir(out_dir)
    reports: list[StageReport] = []

    def note(report: StageReport) -> None:
        reports.append(report)
        if on_stage:
            on_stage(report)

    ingested, r = ingest_stage(inputs, config)
    note(r)
    prepared, r = prepare_stage(ingested, config)
    note(r)
    del ingested
    try:
        if prepared.documents.height == 0:
            traced = empty_trace(prepared)
        else:
            linked, r = link_stage(prepared, config)
            note(r)
            prepared.signatures.clear()  # link was their only reader: free them for trace
            traced, r = trace_stage(prepared, linked, config)
            note(r)
        traced = ready_for_write(traced, prepared)
    finally:
        if prepared.texts is not None:
            prepared.texts.remove()
    info = run_info(config, inputs, prepared, traced, reports)
    _, r = write_stage(traced, prepared.rejects, out_dir, info)
    note(r)
    info["stages"][r.name] = r.to_dict()
    return RunResult(out_dir, traced.documents, traced.clusters, traced.edges, prepared.rejects, info)
