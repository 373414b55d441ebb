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

A cluster with more members than one task holds (``run.batch_size``) is in
no set: it is split at the tree level instead (``trace.viral``), its counts,
pair pricings and tree edges in chunks of tasks, its tree decided in the
client.  The tables are the same.
"""

from __future__ import annotations

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
from provenance.trace import derivation, viral, wordfreq
from provenance.trace.factfiles import COUNTS, read_facts, write_facts
from provenance.trace.stage import (
    ClusterTrace, CorpusFacts, cluster_parts, multi_members, pairs_inside, published_times, singleton_placement, trace_clusters,
    trace_sub_corpus,
)

TABLES = ("placement", "edges", "consulted")


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


def write_trace_inputs(
    parts: Partitions, prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, published: np.ndarray | None,
    sample: np.ndarray, skip: np.ndarray | None = None,
) -> tuple[list[ClusterPart], ClusterPart]:
    """The parts' files, and the frequency sample's (part ``-1``, singletons only; see the module docstring).

    The sets are written only if link did not write them already.  ``skip``: clusters (dense ids) in no set
    (the viral ones, ``trace.viral``).
    """
    folder = parts.folder / "trace"
    folder.mkdir(parents=True, exist_ok=True)
    parts.write_views(prepared)
    members = multi_members(cluster)
    if skip is not None and len(skip):
        members = members[~np.isin(cluster[members], skip)]
    groups = cluster_parts(cluster, parts.count, members)
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
    each part.  A viral cluster (more than ``run.batch_size`` members) is in
    no part: its chunks count with the first wave, price their pairs with the
    second, and measure its tree edges in a third (``trace.viral``).  The same
    tables as one process.
    """
    published = published_times(prepared.documents)
    sample = wordfreq.frequency_sample(cluster, keys, config.trace.frequency_sample)
    budget = config.run.batch_size
    virals = viral.viral_clusters(cluster, budget)
    todo, sampled = write_trace_inputs(parts, prepared, pairs, cluster, published, sample, skip=virals)
    viral_counts = viral.write_viral_inputs(parts.folder, prepared, cluster, published, budget)
    inputs = folder_bytes(parts.folder / "trace")
    configs = lambda items: [config] * len(items)  # noqa: E731 - one config per task
    to_count = [part for part in [*todo, sampled] if len(part)]
    counted: list[PartResult] = parts.map(count_partition, to_count, configs(to_count)) if to_count else []
    viral_counted = parts.map(viral.count_viral, viral_counts, configs(viral_counts)) if viral_counts else []
    united = viral.united_counts(viral_counted, viral_counts, parts.folder)
    facts = part_facts([*counted, *united], published)
    write_facts(parts.folder / "trace", facts)
    done: list[PartResult] = parts.map(trace_partition, todo, configs(todo)) if todo else []
    read = {name: [pl.read_parquet(d.paths[name]) for d in done] for name in TABLES}
    viral_done, viral_placement, viral_edges, viral_consulted = _trace_virals(prepared, pairs, cluster, keys, published, virals, config, parts)
    placement = pl.concat([singleton_placement(cluster), *read["placement"], *viral_placement], how="vertical_relaxed").sort("row")
    if read["edges"] or viral_edges:
        edges = pl.concat([*read["edges"], *viral_edges], how="vertical_relaxed")
        consulted = pl.concat([*read["consulted"], *viral_consulted]).unique().sort(pl.all())
    else:  # no cluster with copies: the single-process trace's empty tables
        nothing = trace_clusters(prepared, pairs, cluster, facts, config)
        edges, consulted = nothing.edges, nothing.consulted
    if report is not None:
        report.runner = parts.runner
        report.partitions = len(to_count) + len(todo) + len(viral_counts) + len(viral_done)
        report.stats.update(partition_stats([*counted, *done, *viral_counted, *viral_done], inputs=inputs))
        report.stats.update(count_partitions=len(to_count), cluster_sets=len(todo), viral_clusters=len(virals),
                            viral_chunks=len(viral_counts) + len(viral_done))
    return ClusterTrace(placement, edges, consulted)


def _trace_virals(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, keys: np.ndarray, published: np.ndarray | None,
    virals: np.ndarray, config: Config, parts: Partitions,
) -> tuple[list, list[pl.DataFrame], list[pl.DataFrame], list[pl.DataFrame]]:
    """Waves 2 and 3 of the viral clusters (``trace.viral``): their chunk results, placement, edges and consulted comparisons."""
    if len(virals) == 0:
        return [], [], [], []
    price_chunks, rows_of = {}, {}
    for c in virals.tolist():
        price_chunks[c], rows_of[c] = viral.write_price_inputs(parts.folder, pairs, cluster, keys, c, config)
    every = [ch for c in virals.tolist() for ch in price_chunks[c]]
    priced = parts.map(viral.price_viral, every, [config] * len(every))
    by_chunk = dict(zip([(ch.cluster, ch.number) for ch in every], priced))
    views = open_views(parts.folder)
    derived, edge_chunks = [], []
    for c in virals.tolist():
        rows = rows_of[c]
        mine = price_chunks[c]
        parent, confidence, consulted = viral.decide_viral(
            [by_chunk[(c, ch.number)] for ch in mine], mine, rows, keys[rows],
            published[rows] if published is not None else None, parts.folder / "trace", config,
        )
        got = viral.derived_viral(views, rows, parent, confidence, consulted, config)
        derived.append(got)
        edge_chunks.extend(viral.write_edge_inputs(parts.folder, got, c, config))
    measured = parts.map(viral.edges_viral, edge_chunks, [config] * len(edge_chunks)) if edge_chunks else []
    edges = [pl.read_parquet(m.paths["edges"]) for m in measured]
    return [*priced, *measured], [d.placement for d in derived], edges, [d.consulted for d in derived]
