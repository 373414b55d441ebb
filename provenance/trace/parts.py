"""The trace stage partitioned by cluster: tasks that read whole clusters from files and write Parquet partitions.

Every figure of a cluster depends on its own members and the corpus facts
only (``trace.stage``), and the facts are sums over whole clusters, so both
can be computed anywhere.  The client cuts the members of multi-document
clusters into ``partitions`` sets of whole clusters balanced by size
(``stage.cluster_parts``) and writes, into the run's work folder
(``link.parts.Partitions``, which already holds the shingle sets
memory-mapped):

* ``trace/part-<k>-in.parquet``: each set's rows, ``doc_id``, text and
  publication time; ``trace/sample-in.parquet`` the same of the singletons
  the word counts sample (``wordfreq.frequency_sample``);
* ``trace/cluster.npy`` (every row's dense cluster) and ``trace/pairs.parquet``
  (the linked pairs: copies are few).

Then two waves of tasks run on the chain's map:

1. :func:`count_partition` per set and the sample: the derivation model's
   counts (``derivation.fact_parts``), which the client sums as
   ``stage.corpus_facts`` does (``derivation.facts_of``) and writes as
   ``trace/facts.npz`` and ``facts.json``, as the store's index keeps them;
2. :func:`trace_partition` per set: its rows' sets taken from the
   memory-mapped views, traced (``stage.trace_sub_corpus``), written as
   ``placement``, ``edges`` and ``consulted`` Parquet partitions, which the
   client concatenates as ``stage.trace_in_parts`` does.

The tables are the same.  Not done yet: a viral cluster larger than one
task's budget is not split at the tree level; its set holds it whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from provenance import tables
from provenance.config import Config
from provenance.link.parts import Partitions, check_visible, folder_bytes, open_views, partition_stats, save_array, take_mapped
from provenance.prepare.stage import Prepared
from provenance.stage_report import Progress, StageReport, no_progress
from provenance.trace import derivation, wordfreq
from provenance.trace.stage import (
    ClusterTrace, CorpusFacts, cluster_parts, pairs_inside, published_times, singleton_placement, trace_clusters,
    trace_sub_corpus,
)

TABLES = ("placement", "edges", "consulted")
COUNTS = ("words", "lines", "grams")


@dataclass(frozen=True)
class ClusterPart:
    """One trace partition: part ``number`` of the clusters, ``size`` members, in ``folder``'s ``trace/``."""

    folder: Path
    number: int
    size: int

    def __len__(self) -> int:  # what progress counts: documents
        return self.size

    def path(self, what: str) -> Path:
        name = "sample" if self.number < 0 else f"part-{self.number:04d}"
        return self.folder / "trace" / f"{name}-{what}.parquet"


@dataclass(frozen=True)
class PartResult:
    """What a trace partition returns to the client: its tables' paths and their bytes."""

    paths: dict[str, Path]
    bytes: int
    seconds: float
    #: Clusters whose counts a counting partition made (``derivation.facts_of``'s ``n_clusters`` is their sum).
    clusters: int = 0


def write_facts(folder: Path, facts: CorpusFacts) -> None:
    """The derivation model's counts as ``facts.npz`` and ``facts.json`` (whether the corpus has dates rides along)."""
    dfacts = facts.derivation if facts.derivation is not None else derivation.DerivationFacts.empty()
    arrays = {}
    for name in COUNTS:
        counts: derivation.Counts = getattr(dfacts, name)
        arrays[f"{name}_keys"], arrays[f"{name}_counts"] = counts.keys, counts.counts
    with open(folder / "facts.npz", "wb") as fh:
        np.savez(fh, **arrays)
    meta = {"n_clusters": int(dfacts.n_clusters), "least": {name: int(getattr(dfacts, name).least) for name in COUNTS},
            "dated": facts.published is not None}
    (folder / "facts.json").write_text(json.dumps(meta))


def read_facts(folder: Path) -> tuple[CorpusFacts, bool]:
    """:func:`write_facts`'s counts as :class:`CorpusFacts` (dates come per part), and whether the corpus is dated."""
    meta = json.loads((folder / "facts.json").read_text())
    with np.load(folder / "facts.npz") as data:
        counts = {name: derivation.Counts(data[f"{name}_keys"], data[f"{name}_counts"], int(meta["least"][name])) for name in COUNTS}
    dfacts = derivation.DerivationFacts(counts["words"], int(meta["n_clusters"]), counts["lines"], counts["grams"])
    return CorpusFacts(derivation.WordCounts(dfacts.words), None, dfacts), bool(meta["dated"])


def write_trace_inputs(
    parts: Partitions, prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, published: np.ndarray | None,
    sample: np.ndarray,
) -> tuple[list[ClusterPart], ClusterPart]:
    """The parts' files, and the frequency sample's (part ``-1``, singletons only; see the module docstring).

    The sets are written only if link did not write them already.
    """
    folder = parts.folder / "trace"
    folder.mkdir(parents=True, exist_ok=True)
    parts.write_views(prepared)
    groups = cluster_parts(cluster, parts.count)
    pairs.write_parquet(folder / "pairs.parquet", compression="zstd", statistics=False)
    save_array(folder / "cluster.npy", cluster)
    docs = prepared.documents

    def write(part: ClusterPart, rows: np.ndarray) -> ClusterPart:
        frame = pl.DataFrame({"row": rows.astype(np.int64)}).hstack(docs[pl.Series(rows)].select("doc_id", "text"))
        if published is not None:
            frame = frame.with_columns(pl.Series("published", published[rows].astype(np.float64)))
        frame.write_parquet(part.path("in"), compression="lz4", statistics=False)
        return part

    out = [write(ClusterPart(parts.folder, k, len(rows)), rows) for k, rows in enumerate(groups)]
    return out, write(ClusterPart(parts.folder, -1, len(sample)), sample)


def count_partition(part: ClusterPart, config: Config) -> PartResult:
    """The derivation model's counts over one part's whole clusters (``derivation.fact_parts``), as three Parquet files."""
    started = time.perf_counter()
    check_visible(part.folder)
    frame = pl.read_parquet(part.path("in"), columns=["row", "text"])
    cluster = np.load(part.folder / "trace" / "cluster.npy", mmap_mode="r")
    own = np.asarray(cluster[frame["row"].to_numpy()])
    paths = {}
    for name, table in zip(COUNTS, derivation.fact_parts(frame["text"], own, config.trace)):
        paths[name] = part.path(f"counts-{name}")
        _write(table, paths[name])
    return PartResult(paths, int(sum(p.stat().st_size for p in paths.values())), time.perf_counter() - started,
                      clusters=int(len(np.unique(own))))


def _write(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=False)
    tmp.replace(path)


def part_facts(counted: list[PartResult], published: np.ndarray | None) -> CorpusFacts:
    """The corpus facts from the parts' counts: ``stage.corpus_facts``'s, summed the same way (``derivation.facts_of``)."""
    parts = [tuple(pl.read_parquet(c.paths[name]) for name in COUNTS) for c in counted if c.paths]
    dfacts = derivation.facts_of(parts, int(sum(c.clusters for c in counted)))
    return CorpusFacts(derivation.WordCounts(dfacts.words), published, dfacts)


def trace_partition(part: ClusterPart, config: Config) -> PartResult:
    """Trace one part's clusters from its files; write its placement, edges and consulted substitutions."""
    started = time.perf_counter()
    check_visible(part.folder)
    folder = part.folder / "trace"
    frame = pl.read_parquet(part.path("in"))
    rows = frame["row"].to_numpy()
    views = open_views(part.folder)
    cluster = np.load(folder / "cluster.npy", mmap_mode="r")
    facts, dated = read_facts(folder)
    local = np.full(len(cluster), -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    sub_pairs = pairs_inside(pl.read_parquet(folder / "pairs.parquet"), local)
    sub = Prepared(frame.select("doc_id", "text"), pl.DataFrame(), {name: take_mapped(sets, rows) for name, sets in views.items()}, {})
    published = frame["published"].to_numpy() if dated else None
    traced = trace_sub_corpus(sub, sub_pairs, tables.dense_clusters(np.asarray(cluster[rows])), published, facts, config, rows)
    paths = {}
    for name in TABLES:
        path = part.path(name)
        _write(getattr(traced, name), path)
        paths[name] = path
    return PartResult(paths, int(sum(p.stat().st_size for p in paths.values())), time.perf_counter() - started)


def trace_on_parts(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, keys: np.ndarray, config: Config, *, parts: Partitions,
    progress: Progress = no_progress, report: StageReport | None = None,
) -> ClusterTrace:
    """``stage.trace_in_parts`` with the corpus counts and the parts as tasks on ``parts.map`` (a ``stage.TraceAll``).

    Two waves over the same files: the model's counts per part (and over the
    frequency sample), summed here into the corpus facts; then the trace of
    each part.  The same tables as one process.
    """
    published = published_times(prepared.documents)
    sample = wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample)
    todo, sampled = write_trace_inputs(parts, prepared, pairs, cluster, published, sample)
    inputs = folder_bytes(parts.folder / "trace")
    to_count = [part for part in [*todo, sampled] if len(part)]
    counted: list[PartResult] = parts.map(count_partition, to_count, [config] * len(to_count)) if to_count else []
    facts = part_facts(counted, published)
    write_facts(parts.folder / "trace", facts)
    done: list[PartResult] = parts.map(trace_partition, todo, [config] * len(todo)) if todo else []
    read = {name: [pl.read_parquet(d.paths[name]) for d in done] for name in TABLES}
    placement = pl.concat([singleton_placement(cluster), *read["placement"]], how="vertical_relaxed").sort("row")
    if read["edges"]:
        edges = pl.concat(read["edges"], how="vertical_relaxed")
        consulted = pl.concat(read["consulted"]).unique().sort(pl.all())
    else:  # no cluster with copies: the single-process trace's empty tables
        nothing = trace_clusters(prepared, pairs, cluster, facts, config)
        edges, consulted = nothing.edges, nothing.consulted
    if report is not None:
        report.runner, report.partitions = parts.runner, len(to_count) + len(todo)
        report.stats.update(partition_stats([*counted, *done], inputs=inputs))
        report.stats.update(count_partitions=len(to_count), cluster_sets=len(todo))
    return ClusterTrace(placement, edges, consulted)
