"""The prepare stage: normalise, set boilerplate aside, shingle every view and sign it, batch by batch.

Two passes go over batches of ``batch_size`` documents:

1. :func:`summarize_batch` counts tokens (too-short documents are set aside),
   hashes content and collects the keys of short lines.  Boilerplate is what
   recurs across documents, so it is only known once every batch has been
   seen (:func:`combine_summaries`).
2. :func:`shingle_batch` shingles and signs each batch without its
   boilerplate, the words signature taken around the corpus's frequent
   shingles (:func:`sample_frequent_words`).

Only flat arrays outlive a batch.  ``map_batches(fn, *iterables)`` runs the
batches (the built-in ``map`` by default; the Prefect flow fans them out to
tasks, on threads or Dask); whoever runs them tells each finished batch's
documents to a :class:`BatchProgress`.  Texts over ``spill_over_mib`` go to
disk between the passes (``provenance.spill``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from provenance import spill
from provenance.config import Config, PrepareOptions
from provenance.ingest import Ingested
from provenance.kernels import doc_keys
from provenance.prepare import frequent, minhash, normalize, shingle
from provenance.stage_report import Progress, StageReport, timed

MapBatches = Callable[..., list[Any]]


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
    #: Frequent word shingles the words signatures were taken around (``provenance.prepare.frequent``).
    frequent: np.ndarray = field(default_factory=lambda: frequent.NOTHING)


def batches(n: int, size: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` row ranges of at most ``size`` rows covering ``0..n`` (one empty range when ``n`` is 0)."""
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


def summarize_batch(texts: pl.Series, lo: int, options: PrepareOptions) -> BatchSummary:
    """Token counts, content hashes and short-line keys of one batch (rows ``lo`` on)."""
    summary = normalize.summarize(texts, options.seed, options.boilerplate_max_tokens)
    return BatchSummary(lo, summary.n_tokens, summary.content_hash, summary.line_doc + lo, summary.line_key)


def text_views(texts: pl.Series, n_tokens: np.ndarray, boilerplate_keys: np.ndarray, options: PrepareOptions) -> shingle.TextViews:
    """Both views of ``texts`` with boilerplate lines left out (``shingle.text_views`` under ``options``)."""
    return shingle.text_views(
        texts, n_tokens, boilerplate_keys, seed=options.seed, word_ngram=options.word_ngram,
        anchor_ngram=options.anchor_ngram, max_key_tokens=options.boilerplate_max_tokens,
    )


def shingle_batch(
    texts: pl.Series | spill.TextRows, lo: int, boilerplate_keys: np.ndarray, options: PrepareOptions,
    n_tokens: np.ndarray | None = None, frequent_words: np.ndarray | None = None,
) -> BatchViews:
    """Views (boilerplate lines left out) and signatures of one batch.

    ``n_tokens`` (pass 1's counts of these texts) saves counting them again;
    the words signatures are taken around ``frequent_words`` (see :func:`sample_frequent_words`).
    """
    texts = spill.texts_of(texts)
    if n_tokens is None:
        n_tokens = normalize.summarize(texts, options.seed, options.boilerplate_max_tokens).n_tokens
    out = text_views(texts, n_tokens, boilerplate_keys, options)
    leave_out = {"words": frequent_words}
    signatures = {
        name: minhash.signatures(
            sets, options.num_perm, options.seed, leave_out.get(name), min_kept_share=options.frequent_min_kept_share
        )
        for name, sets in out.views.items()
    }
    # Boilerplate lines as (document, ordinal among its lines with tokens), for the direction of derivation.
    lines = out.boilerplate_lines
    boilerplate = pl.DataFrame(
        {
            "doc": (np.repeat(np.arange(len(texts), dtype=np.int64), lines.sizes()) + lo).astype(np.uint32),
            "line": lines.hashes.astype(np.int32),
        }
    )
    return BatchViews(lo, out.views, signatures, boilerplate, out.boilerplate_tokens)


def combine_summaries(
    ingested: Ingested, summaries: list[BatchSummary], options: PrepareOptions
) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Kept documents (with ``content_hash``, ``n_tokens``, ``n_chars``), all rejects, boilerplate keys."""
    docs = ingested.documents
    summaries = sorted(summaries, key=lambda b: b.lo)
    n_tokens = np.concatenate([b.n_tokens for b in summaries]) if summaries else np.zeros(0, np.int64)
    content = np.concatenate([b.content_hash for b in summaries]) if summaries else np.zeros(0, np.uint64)
    too_short = n_tokens < options.min_tokens
    rejects = pl.concat([ingested.rejects, too_short_rejects(docs.filter(pl.Series(too_short, dtype=pl.Boolean)), options)])
    line_doc = np.concatenate([b.line_doc for b in summaries]) if summaries else np.zeros(0, np.int64)
    line_key = np.concatenate([b.line_key for b in summaries]) if summaries else np.zeros(0, np.uint64)
    kept_lines = ~too_short[line_doc] if len(line_doc) else np.zeros(0, dtype=bool)
    keys = normalize.boilerplate_keys(line_doc[kept_lines], line_key[kept_lines], options.boilerplate_min_docs)
    keep = ~too_short
    if too_short.any():  # a filter copies every text: only when something is set aside
        docs = docs.filter(pl.Series(keep, dtype=pl.Boolean))
    docs = docs.with_columns(
        pl.Series("content_hash", hex_hashes(content[keep]), dtype=pl.String),
        pl.Series("n_tokens", n_tokens[keep], dtype=pl.Int32),
        pl.col("text").str.len_chars().cast(pl.Int32).alias("n_chars"),
    )
    return docs, rejects, keys


def too_short_rejects(documents: pl.DataFrame, options: PrepareOptions) -> pl.DataFrame:
    """Reject rows for ``documents`` (all of them shorter than ``min_tokens``)."""
    return documents.select(
        "source", "doc_id", pl.lit("too_short").alias("reason"), pl.lit(f"fewer than {options.min_tokens} tokens").alias("detail"),
    )


def hex_hashes(values: np.ndarray) -> list[str]:
    """Content hashes as 16 hex digits (the ``content_hash`` column)."""
    return [f"{h:016x}" for h in values.tolist()]


def sample_frequent_words(sample: pl.Series, n_tokens: np.ndarray, boilerplate_keys: np.ndarray, options: PrepareOptions) -> np.ndarray:
    """Word shingles frequent in ``sample``, the texts of ``frequent.sample_rows`` (their ``n_tokens``).

    The sample is shingled exactly as pass 2 shingles it (boilerplate lines
    out), so its counts are those of the views being signed.
    """
    if len(sample) == 0:
        return frequent.NOTHING
    out = text_views(sample, n_tokens, boilerplate_keys, options)
    return frequent.frequent_shingles(
        out.views["words"].hashes, len(sample), min_share=options.frequent_min_share, min_docs=options.frequent_min_docs
    )


def frequency_sample_rows(doc_ids: pl.Series, options: PrepareOptions) -> np.ndarray:
    """Rows of the documents whose word shingles are counted for frequency (bottom-k by id hash)."""
    return frequent.sample_rows(doc_keys(doc_ids), options.frequent_sample_docs)


def assemble_prepared(docs: pl.DataFrame, rejects: pl.DataFrame, parts: list[BatchViews]) -> Prepared:
    """Concatenate per-batch views and signatures; exact duplicates share the first copy's.

    ``parts`` is emptied as it is copied, so the batches' arrays are freed one
    by one instead of the whole corpus' views and signatures existing twice.
    """
    parts.sort(key=lambda b: b.lo)
    boilerplate = pl.concat([p.boilerplate for p in parts]) if parts else None
    n = docs.height
    names = shingle.VIEWS
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


#: How progress reports name each batch pass (by the batch function's name): prepare's, and link's and trace's partitions.
PASS_NAMES = {
    "summarize_batch": "prepare 1/2", "shingle_batch": "prepare 2/2",
    "link_partition": "link 1/2", "verify_partition": "link pairs", "count_partition": "trace 1/3", "trace_partition": "trace 2/3",
    "count_viral": "trace 1/3", "price_viral": "trace 2/3", "edges_viral": "trace 3/3",
}
#: What a pass counts (the ``len`` of each batch's first argument), when not documents.
PASS_UNITS = {"link_partition": "bands", "verify_partition": "partitions", "price_viral": "pairs", "edges_viral": "edges"}


class BatchProgress:
    """Documents finished in one batch pass, told to ``progress`` as each batch ends (in any order, from any thread).

    ``batch_args`` are the pass's argument tuples (``zip(*iterables)`` of a
    ``map_batches`` call); the first argument of each is its texts.  The total
    is reported at once, with nothing done yet.
    """

    def __init__(self, progress: Progress, fn: Callable[..., Any], batch_args: list[tuple[Any, ...]]) -> None:
        name = getattr(fn, "__name__", "batches")
        self.stage = PASS_NAMES.get(name, name)
        self.unit = PASS_UNITS.get(name, "documents")
        self.progress = progress
        self.sizes = [len(args[0]) if args and hasattr(args[0], "__len__") else 1 for args in batch_args]
        self.total, self.done = sum(self.sizes), 0
        self._lock = threading.Lock()
        progress(self.stage, 0, self.total, self.unit)

    def finished(self, batch: int) -> None:
        """Batch number ``batch`` is done."""
        with self._lock:  # one call at a time, so ``done`` reaches the callback in order
            self.done += self.sizes[batch]
            self.progress(self.stage, self.done, self.total, self.unit)


def _map_locally(fn: Callable[..., Any], *iterables: Any) -> list[Any]:
    return list(map(fn, *iterables))


def prepare_stage(
    ingested: Ingested, config: Config, *, map_batches: MapBatches | None = None, spill_folder: Path | None = None,
) -> tuple[Prepared, StageReport]:
    """Both passes (see the module docstring); ``Prepared.texts`` holds the spill when texts went to disk.

    The caller removes the spill when done (the stage chain does).
    """
    run_all = map_batches or _map_locally
    options, size = config.prepare, config.run.batch_size
    report = StageReport("prepare", rows_in=ingested.documents.height)
    with timed(report):
        texts = ingested.documents["text"]
        ranges = batches(len(texts), size)
        summaries = run_all(summarize_batch, [texts.slice(lo, hi - lo) for lo, hi in ranges], [lo for lo, _ in ranges],
                            [options] * len(ranges))
        del texts
        docs, rejects, keys = combine_summaries(ingested, summaries, options)
        spilled = None
        if docs.height and spill.text_bytes(docs["text"]) > config.run.spill_over_mib * 2**20:
            spilled = spill.spill_texts(docs["text"], size, spill_folder or spill.default_folder())
            docs = docs.drop("text")
            ingested.documents = ingested.documents.drop("text")  # the texts now live on disk only
        try:
            ranges = batches(docs.height, size)
            n_tokens = docs["n_tokens"].to_numpy()
            sample = frequency_sample_rows(docs["doc_id"], options)
            sample_texts = spilled.gather(sample) if spilled is not None else docs["text"].gather(sample)
            frequent_words = sample_frequent_words(sample_texts, n_tokens[sample], keys, options)
            del sample_texts
            batch_texts = [
                spill.TextRows(spilled, np.arange(lo, hi, dtype=np.int64)) if spilled else docs["text"].slice(lo, hi - lo)
                for lo, hi in ranges
            ]
            parts = run_all(
                shingle_batch, batch_texts, [lo for lo, _ in ranges], [keys] * len(ranges), [options] * len(ranges),
                [n_tokens[lo:hi] for lo, hi in ranges], [frequent_words] * len(ranges),
            )
            del batch_texts
            boilerplate_tokens = sum(p.n_boilerplate for p in parts)
            prepared = replace(assemble_prepared(docs, rejects, parts), texts=spilled, frequent=frequent_words)
        except BaseException:
            if spilled is not None:
                spilled.remove()
            raise
        report.rows_out = docs.height
        report.partitions = len(ranges)
        report.stats = {
            "batches": len(ranges),
            "rejected_too_short": int(ingested.documents.height - docs.height),
            "tokens": int(docs["n_tokens"].sum() or 0),
            "boilerplate_tokens": boilerplate_tokens,
            "frequent_word_shingles": int(len(frequent_words)),
            "texts_on_disk": spilled is not None,
            **{f"{name}_shingles": int(len(sets.hashes)) for name, sets in prepared.views.items()},
        }
    return prepared, report
