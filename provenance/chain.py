"""The one stage chain: ingest -> prepare -> link -> trace -> write, and the lifecycle around it.

Every way of running the pipeline goes through :func:`execute`: the
notebook API (:func:`run`), the CLI, the Prefect flow, the benchmarks and the
store's incremental runs.  The chain owns what must happen between stages
(signatures freed once link has read them, spilled texts put back before
writing and removed at the end, stage reports collected into ``run.json``),
so no caller copies it.  Two things vary, each behind one small interface:

* a :class:`Plan` says which stage functions run: a fresh run's
  (:class:`FreshPlan`) or a store's, which reuse what it already holds
  (``provenance.store.run``);
* :class:`Hooks` say how they run: in-process by default; the Prefect flow
  turns stages and batches into tasks, the benchmarks time them, the CLI
  writes the report once the tables are written and draws each stage's
  progress (:meth:`Hooks.progress`).
"""

from __future__ import annotations

import functools

import hashlib
import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

import polars as pl

from provenance import tables, titles
from provenance.config import Config
from provenance.digest import library_digest
from provenance.ingest import Ingested, Source, check_outside_inputs, ingest_stage, source_paths
from provenance.link.parts import Partitions, link_on_parts
from provenance.link.stage import Linked, link_stage
from provenance.prepare.minhash import SignatureScheme
from provenance.prepare.stage import BatchProgress, MapBatches, Prepared, prepare_stage
from provenance.stage_report import Progress, StageReport, no_progress
from provenance.outputs import RunResult, conformed, write_tables
from provenance.tables import Traced
from provenance.trace import passages
from provenance.trace.parts import trace_on_parts
from provenance.trace.stage import keep_views_of_copies, trace_stage

T = TypeVar("T")


class Hooks:
    """How the chain runs its stages.  The defaults run everything in this process."""

    #: Where :meth:`map_batches` runs its batches (``run.json`` records it per stage): this process.
    runner = "process"

    def begin(self, plan: "Plan") -> None:
        """The chain is about to run ``plan`` (e.g. to learn whether its stages may be cached)."""

    def stage(self, name: str, fn: Callable[..., tuple[T, StageReport]], *args: Any, **kwargs: Any) -> tuple[T, StageReport]:
        """Run one whole stage (``ingest``, ``prepare``, ``link``, ``trace``, ``write``)."""
        return fn(*args, **kwargs)

    def partitioned_stage(self, name: str, fn: Callable[..., tuple[T, StageReport]], *args: Any, **kwargs: Any) -> tuple[T, StageReport]:
        """Run ``link`` or ``trace`` when its work is partitions on :meth:`map_batches` (the partitions are the tasks)."""
        return self.stage(name, fn, *args, **kwargs)

    def map_batches(self, fn: Callable[..., Any], *iterables: Any) -> list[Any]:
        """Run one batch function over its batches (prepare's two passes; link's and trace's partitions), each finished batch told to :meth:`progress`."""
        batch_args = list(zip(*iterables))
        done = BatchProgress(self.progress, fn, batch_args)
        out = []
        for i, args in enumerate(batch_args):
            out.append(fn(*args))
            done.finished(i)
        return out

    def progress(self, stage: str, done: int, total: int, unit: str) -> None:
        """``done`` of ``total`` ``unit`` of ``stage`` are finished (a :class:`~provenance.stage_report.Progress`).

        Called batch by batch, never per document, possibly from the threads
        running prepare's batches; ``stage`` may name a pass (``prepare 1/2``).
        Nothing by default; the CLI draws bars or prints lines, the flow logs.
        """

    def reported(self, report: StageReport) -> None:
        """A stage finished."""

    def tables_written(self, folder: Path) -> None:
        """The tables and ``run.json`` are in ``folder``, not yet published (the place for ``report.html``)."""


class Plan(Protocol):
    """The stage functions of a chain."""

    #: Whether the stages' results may be cached on their inputs (a store is its own cache).
    cacheable: bool

    def prepare(self, ingested: Ingested, config: Config, *, map_batches: MapBatches) -> tuple[Prepared, StageReport]: ...

    def unchanged(self, prepared: Prepared) -> "RunResult | None":
        """The published result, when prepare found nothing new to link or trace."""

    def link(self, prepared: Prepared, config: Config, *, progress: Progress = no_progress) -> tuple[Linked, StageReport]: ...

    def trace(self, prepared: Prepared, linked: Linked, config: Config, *, progress: Progress = no_progress) -> tuple[Traced, StageReport]: ...

    def write(self, result: "RunResult", out_dir: Path, hooks: Hooks) -> tuple[dict[str, str], StageReport]: ...


class FreshPlan:
    """A from-scratch run: every stage computed from the input alone."""

    cacheable = True

    def prepare(self, ingested: Ingested, config: Config, *, map_batches: MapBatches) -> tuple[Prepared, StageReport]:
        return prepare_stage(ingested, config, map_batches=map_batches)

    def unchanged(self, prepared: Prepared) -> RunResult | None:
        return None

    #: Whether :meth:`link` and :meth:`trace` take ``parts`` (a store's plan runs them in one process).
    partitioned = True

    def link(self, prepared: Prepared, config: Config, *, progress: Progress = no_progress,
             parts: Partitions | None = None) -> tuple[Linked, StageReport]:
        if parts is not None:
            return link_on_parts(prepared, config, parts, progress=progress)
        return link_stage(prepared, config, progress=progress, release_signatures=True)

    def trace(self, prepared: Prepared, linked: Linked, config: Config, *, progress: Progress = no_progress,
              parts: Partitions | None = None) -> tuple[Traced, StageReport]:
        keep_views_of_copies(prepared, tables.dense_clusters(linked.roots))
        trace_all = functools.partial(trace_on_parts, parts=parts) if parts is not None else None
        return trace_stage(prepared, linked, config, progress=progress, trace_all=trace_all)

    def write(self, result: RunResult, out_dir: Path, hooks: Hooks) -> tuple[dict[str, str], StageReport]:
        paths, report = write_tables(result, out_dir, progress=hooks.progress)
        hooks.tables_written(out_dir)
        return paths, report


def execute(
    source: Source, config: Config, plan: Plan | None = None, hooks: Hooks | None = None, out_dir: Path | None = None,
) -> RunResult:
    """Run the chain over ``source``; with ``out_dir``, write (and, for a store, publish) the outputs."""
    plan, hooks = plan or FreshPlan(), hooks or Hooks()
    hooks.begin(plan)
    reports: list[StageReport] = []
    parts: Partitions | None = None

    def step(name: str, fn: Callable[..., tuple[T, StageReport]], *args: Any, **kwargs: Any) -> T:
        run_stage = hooks.partitioned_stage if parts is not None and name in ("link", "trace") else hooks.stage
        value, report = run_stage(name, fn, *args, **kwargs)
        reports.append(report)
        hooks.reported(report)
        return value

    ingested = step("ingest", ingest_stage, source, config)
    prepared = step("prepare", plan.prepare, ingested, config, map_batches=hooks.map_batches)
    reports[-1].runner = hooks.runner
    del ingested
    parts = partitions(plan, hooks, config)
    try:
        current = plan.unchanged(prepared)
        if current is not None:
            return current
        prepared = titles.with_titles(prepared)  # needs the corpus's boilerplate, so after prepare
        if prepared.documents.height == 0:
            traced = tables.empty_tables(prepared.documents)
        else:
            # Progress is bound into the stage function: hooks and tasks see the same (fn, *inputs) as without it.
            on_parts = {"parts": parts} if parts is not None else {}
            linked = step("link", functools.partial(plan.link, progress=hooks.progress, **on_parts), prepared, config)
            prepared.signatures.clear()  # link was their only reader: free them for trace
            trace = functools.partial(plan.trace, progress=hooks.progress, **on_parts)
            traced = step("trace", functools.partial(passages.with_evidence, trace), prepared, linked, config)
            del linked
        traced = ready_for_write(traced, prepared)
    finally:
        if prepared.texts is not None:
            prepared.texts.remove()
        if parts is not None:
            parts.remove()
    result = conformed(traced, prepared.rejects, run_info(config, source, prepared, traced, reports))
    if out_dir is not None:
        step("write", plan.write, result, Path(out_dir), hooks)
    return result


def partitions(plan: Plan, hooks: Hooks, config: Config) -> Partitions | None:
    """The work folder and map of a partitioned link and trace (``link.parts``), when the config asks for more than one.

    Only a fresh run's plan is partitioned; a store's runs in one process.
    """
    count = config.run.partitions_on(hooks.runner)
    if count <= 1 or not getattr(plan, "partitioned", False):
        return None
    return Partitions.create(count, hooks.map_batches, hooks.runner)


def run(source: Source, config: Config | None = None, *, out_dir: Path | str | None = None, hooks: Hooks | None = None) -> RunResult:
    """Cluster ``source`` (a DataFrame with ``id`` and ``text`` columns, or input paths) and trace every cluster.

    Returns the tables as polars frames (the Parquet contract's dtypes and
    column order); ``out_dir``, or ``.write(out_dir)`` later, writes them.
    """
    if out_dir is not None:  # the next run over the same input would read these tables as documents
        check_outside_inputs("out_dir", Path(out_dir), source_paths(source))
    return execute(source, config or Config(), FreshPlan(), hooks, Path(out_dir) if out_dir is not None else None)


def ready_for_write(traced: Traced, prepared: Prepared) -> Traced:
    """Free the views and signatures, and give back every text (read from disk when they were spilled).

    After trace nothing reads the shingle views or signatures any more, so
    they go first.  Trace's partial texts are dropped before the full ones are
    read, so both never take memory at once.
    """
    prepared.views.clear()
    prepared.signatures.clear()
    if prepared.texts is None:
        return traced
    traced.documents = traced.documents.drop("text", strict=False)
    texts = pl.DataFrame({"doc_id": prepared.documents["doc_id"], "text": prepared.texts.load()})
    traced.documents = traced.documents.join(texts, on="doc_id", how="left", maintain_order="left")
    return traced


# ---------------------------------------------------------------------------- run.json


def versions() -> dict[str, str]:
    """Python's and the packages' versions, and the digest of the library's own source."""
    out = {"python": platform.python_version(), "provenance_source": library_digest()}
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


def run_info(config: Config, source: Source, prepared: Prepared, traced: Traced, reports: list[StageReport]) -> dict[str, Any]:
    """The ``run.json`` record (the write stage adds itself)."""
    reasons = prepared.rejects.group_by("reason").len().sort("reason")
    inputs = [str(p) for p in source_paths(source)] if not isinstance(source, pl.DataFrame) else ["<DataFrame>"]
    return {
        "inputs": inputs,
        "config": config.to_dict(),
        "config_fingerprint": config.fingerprint(),
        "signature": SignatureScheme(config.prepare.num_perm, config.prepare.seed).to_dict(),
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
