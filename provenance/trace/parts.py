"""The trace stage partitioned by cluster: tasks that read whole clusters from files and write Parquet partitions.

Every figure of a cluster depends on its own members and the corpus facts
only (``trace.stage``), so the clusters can be traced anywhere.  The client
cuts the members of multi-document clusters into ``partitions`` sets of whole
clusters balanced by size (``stage.cluster_parts``) and writes, into the run's
work folder (``link.parts.Partitions``, which already holds the shingle sets
memory-mapped):

* ``trace/part-<k>-in.parquet``: each part's rows, dense cluster, ``doc_id``,
  text and publication time;
* ``trace/pairs.parquet``: the linked pairs (copies are few);
* ``trace/facts.npz`` and ``trace/facts.json``: the derivation model's corpus
  counts (the store's index keeps them the same way).

A task (:func:`trace_partition`) reads its part, takes its rows' sets from the
memory-mapped views, traces them (``stage.trace_sub_corpus``) and writes
``placement``, ``edges`` and ``consulted`` Parquet partitions; the client
concatenates them as ``stage.trace_in_parts`` does, so the tables are the
same.  Not done yet: a viral cluster larger than one task's budget is not
split at the tree level; its part holds it whole.
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
from provenance.link.parts import Partitions, check_visible, folder_bytes, open_views, partition_stats, save_array
from provenance.prepare.stage import Prepared
from provenance.stage_report import Progress, StageReport, no_progress
from provenance.trace import derivation
from provenance.trace.stage import (
    ClusterTrace, CorpusFacts, cluster_parts, pairs_inside, singleton_placement, trace_clusters, trace_sub_corpus,
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
        return self.folder / "trace" / f"part-{self.number:04d}-{what}.parquet"


@dataclass(frozen=True)
class PartResult:
    """What a trace partition returns to the client: its tables' paths and their bytes."""

    paths: dict[str, Path]
    bytes: int
    seconds: float


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
    parts: Partitions, prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts,
) -> list[ClusterPart]:
    """The parts' files (see the module docstring); the sets are written only if link did not write them already."""
    folder = parts.folder / "trace"
    folder.mkdir(parents=True, exist_ok=True)
    parts.write_views(prepared)
    groups = cluster_parts(cluster, parts.count)
    pairs.write_parquet(folder / "pairs.parquet", compression="zstd", statistics=False)
    write_facts(folder, facts)
    save_array(folder / "cluster.npy", cluster)
    docs = prepared.documents
    out = []
    for k, rows in enumerate(groups):
        part = ClusterPart(parts.folder, k, len(rows))
        frame = pl.DataFrame({"row": rows.astype(np.int64)}).hstack(docs[pl.Series(rows)].select("doc_id", "text"))
        if facts.published is not None:
            frame = frame.with_columns(pl.Series("published", facts.published[rows].astype(np.float64)))
        frame.write_parquet(part.path("in"), compression="lz4", statistics=False)
        out.append(part)
    return out


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
    sub = Prepared(frame.select("doc_id", "text"), pl.DataFrame(), {name: sets.take(rows) for name, sets in views.items()}, {})
    published = frame["published"].to_numpy() if dated else None
    traced = trace_sub_corpus(sub, sub_pairs, tables.dense_clusters(np.asarray(cluster[rows])), published, facts, config, rows)
    paths = {}
    for name in TABLES:
        path = part.path(name)
        tmp = path.with_name(f".{path.name}.tmp")
        getattr(traced, name).write_parquet(tmp, compression="zstd", statistics=False)
        tmp.replace(path)
        paths[name] = path
    return PartResult(paths, int(sum(p.stat().st_size for p in paths.values())), time.perf_counter() - started)


def trace_on_parts(
    prepared: Prepared, pairs: pl.DataFrame, cluster: np.ndarray, facts: CorpusFacts, config: Config, *, parts: Partitions,
    progress: Progress = no_progress, report: StageReport | None = None,
) -> ClusterTrace:
    """``stage.trace_in_parts`` with its parts as tasks on ``parts.map`` (a ``stage.TraceAll``): the same tables."""
    todo = write_trace_inputs(parts, prepared, pairs, cluster, facts)
    inputs = folder_bytes(parts.folder / "trace")
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
        report.runner, report.partitions = parts.runner, len(todo)
        report.stats.update(partition_stats(done, inputs=inputs))
    return ClusterTrace(placement, edges, consulted)

