"""The provenance pipeline as a Prefect flow: one task per stage, not per document.

Run ad hoc with ``python -m flows.provenance_flow [INPUT ...] [--out DIR]`` or
``provenance run``; with no ``PREFECT_API_URL`` Prefect starts its own
temporary local server.

Caching: the expensive tasks (signature batches, link, trace) are cached by
Prefect on a fingerprint of their input (the batch's texts, or every
document's id and content hash, plus the options), with results persisted
under ``PREFECT_LOCAL_STORAGE_PATH`` for a day, so a retried flow run does
not redo finished stages.  I/O tasks (ingest, write, report) retry.  With
``store`` the run is one incremental task: the store itself is the cache
(documents already in it are not prepared again), so it is not cached twice.
"""

# No ``from __future__ import annotations`` here: ``flow.serve`` (``provenance serve``) hands the
# flow to its run process with cloudpickle, which carries real annotation objects but not the
# module globals that string annotations would need; pydantic validates the parameters from them.

import flows  # noqa: F401  (offline/quiet Prefect defaults)

import hashlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

import xxhash

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.params import Inputs, OutDir, PipelineOptions, StoreDir, WaitSeconds, options_dict
from flows.runners import default_task_runner
from provenance import incremental, pipeline, schemas, spill, summary
from provenance import report as html_report
from provenance.config import PipelineConfig
from provenance.ingest import Ingested


def _log(report: pipeline.StageReport) -> None:
    get_run_logger().info(
        "%s: %d -> %d rows in %.2f s %s", report.name, report.rows_in, report.rows_out, report.seconds, report.stats
    )


@task(name="ingest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def ingest_task(inputs: list[Path], config: PipelineConfig) -> tuple[Ingested, pipeline.StageReport]:
    result, report = pipeline.ingest_stage(inputs, config)
    _log(report)
    return result, report


#: How long a cached stage result stays valid.
CACHE_FOR = timedelta(days=1)
#: Bump to invalidate every cached result (e.g. when a stage's output changes meaning).
CACHE_VERSION = "4"


def _texts_fingerprint(texts: Any) -> str:
    digest = xxhash.xxh3_128()
    for text in spill.texts_of(texts).to_list():
        digest.update(text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, (CACHE_VERSION, *parts))).encode()).hexdigest()


def _options_key(config: PipelineConfig) -> str:
    return repr(sorted(config.to_dict().items()))


def _summarize_key(_: Any, p: dict[str, Any]) -> str:
    return _key("summarize", _texts_fingerprint(p["texts"]), p["lo"], p["seed"])


def _shingle_key(_: Any, p: dict[str, Any]) -> str:
    keys, frequent_words = p["keys"], p.get("frequent_words")
    left_out = "" if frequent_words is None else xxhash.xxh3_64_hexdigest(frequent_words.tobytes())
    return _key(
        "shingle", _texts_fingerprint(p["texts"]), p["lo"], xxhash.xxh3_64_hexdigest(keys.tobytes()), left_out, _options_key(p["config"])
    )


def _fingerprints(prepared: pipeline.Prepared) -> list[str]:
    """Every document's fingerprint; texts on disk are read back a batch at a time."""
    docs = prepared.documents
    if prepared.texts is None:
        return incremental.fingerprints(docs).to_list()
    size = 20_000
    out: list[str] = []
    for lo in range(0, docs.height, size):
        part = docs.slice(lo, size).with_columns(prepared.texts.slice(lo, size).alias("text"))
        out += incremental.fingerprints(part).to_list()
    return out


def _corpus_key(stage: str):
    """Every document's id, source, text and metadata (a table carries them all), plus the rejects and options."""

    def key(_: Any, p: dict[str, Any]) -> str:
        docs = p["prepared"].documents
        digest = xxhash.xxh3_128()
        rows = zip(docs["doc_id"].to_list(), docs["source"].cast(pl.String).to_list(), _fingerprints(p["prepared"]))
        for doc_id, source, fingerprint in rows:
            digest.update(f"{doc_id}\x1f{source}\x1f{fingerprint}\x1e".encode())
        for row in p["prepared"].rejects.sort(["source", "doc_id"], nulls_last=True).iter_rows():
            digest.update(("\x1f".join(map(str, row)) + "\x1e").encode())
        return _key(stage, digest.hexdigest(), docs.height, _options_key(p["config"]))

    return key


@task(name="summarize-batch", cache_key_fn=_summarize_key, persist_result=True, cache_expiration=CACHE_FOR)
def summarize_batch_task(texts: Any, lo: int, seed: int) -> pipeline.BatchSummary:
    return pipeline.summarize_batch(texts, lo, seed)


@task(name="shingle-batch", cache_key_fn=_shingle_key, persist_result=True, cache_expiration=CACHE_FOR)
def shingle_batch_task(
    texts: Any, lo: int, keys: Any, config: PipelineConfig, n_tokens: Any = None, frequent_words: Any = None
) -> pipeline.BatchViews:
    return pipeline.shingle_batch(texts, lo, keys, config, n_tokens, frequent_words)


_BATCH_TASKS = {pipeline.summarize_batch: summarize_batch_task, pipeline.shingle_batch: shingle_batch_task}


def _map_on_task_runner(fn: Any, *iterables: Any) -> list[Any]:
    """Run one Prefect task per batch on the flow's task runner (threads, or Dask workers)."""
    futures = [_BATCH_TASKS[fn].submit(*args) for args in zip(*iterables)]
    return [future.result() for future in futures]


def prepare_task(ingested: Ingested, config: PipelineConfig) -> tuple[pipeline.Prepared, pipeline.StageReport]:
    """The prepare stage, its batches fanned out as tasks (``config.batch_size`` documents each).

    With texts on disk (a big corpus), a pass-2 batch task gets the rows to read, not the texts.
    """
    result, report = pipeline.prepare_stage(ingested, config, map_fn=_map_on_task_runner)
    _log(report)
    return result, report


@task(name="link", cache_key_fn=_corpus_key("link"), persist_result=True, cache_expiration=CACHE_FOR)
def link_task(prepared: pipeline.Prepared, config: PipelineConfig) -> tuple[pipeline.Linked, pipeline.StageReport]:
    result, report = pipeline.link_stage(prepared, config)
    _log(report)
    return result, report


@task(name="trace", cache_key_fn=_corpus_key("trace"), persist_result=True, cache_expiration=CACHE_FOR)
def trace_task(
    prepared: pipeline.Prepared, linked: pipeline.Linked, config: PipelineConfig
) -> tuple[pipeline.Traced, pipeline.StageReport]:
    result, report = pipeline.trace_stage(prepared, linked, config)
    _log(report)
    return result, report


@task(name="write", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def write_task(traced: pipeline.Traced, rejects: Any, out_dir: Path, info: dict[str, Any]) -> dict[str, str]:
    paths, report = pipeline.write_stage(traced, rejects, out_dir, info)
    _log(report)
    return paths


@task(name="incremental-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
def incremental_task(inputs: list[Path], out_dir: Path, store_dir: Path, config: PipelineConfig, wait: float) -> dict[str, Any]:
    """The whole run against a store: crash-safe and idempotent, so a retry simply runs it again."""
    result = incremental.run_with_store(inputs, out_dir, store_dir, config, wait_seconds=wait, on_stage=_log)
    return result.info


@task(name="report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def report_task(out_dir: Path) -> str:
    info = html_report.write_report(out_dir)
    get_run_logger().info("report: %s, %d bytes, aligned texts for %d of %d edges, %.2f s",
                          info.path, info.bytes, info.diff_edges, info.edges, info.seconds)
    return str(info.path)


@flow(name="provenance", log_prints=True, task_runner=default_task_runner())
def provenance_flow(
    inputs: Inputs = ["seeds"],  # noqa: B006 - Prefect parameters must be JSON defaults
    out: OutDir = "data/output",
    options: PipelineOptions | None = None,
    store: Optional[StoreDir] = None,
    wait: WaitSeconds = 0.0,
) -> dict[str, Any]:
    """Cluster the documents of ``inputs``, trace origins and trees, write Parquet to ``out``.

    ``options`` are :class:`provenance.config.PipelineConfig` fields
    (e.g. ``{"num_perm": 256}``); unknown names fail the run with one line.
    Parameters are typed and range-checked (``flows/params.py``): a bad value
    fails the run with a message naming it.
    """
    logger = get_run_logger()
    config = pipeline.make_config(options_dict(options))
    paths_in = [Path(p) for p in inputs]
    out_dir = Path(out)
    if store:
        info = incremental_task(paths_in, out_dir, Path(store), config, wait)
        paths = dict(info["outputs"])
        paths["report"] = str(out_dir / html_report.REPORT_NAME)
        tables = {name: pl.read_parquet(out_dir / f"{name}.parquet") for name in ("documents", "clusters", "edges")}
        traced = pipeline.Traced(tables["documents"], tables["edges"], tables["clusters"])
    else:
        schemas.check_output_dir(out_dir)
        ingested, r_ingest = ingest_task(paths_in, config)
        prepared, r_prepare = prepare_task(ingested, config)
        del ingested
        try:
            if prepared.documents.height == 0:
                traced, reports = pipeline.empty_trace(prepared), [r_ingest, r_prepare]
            else:
                linked, r_link = link_task(prepared, config)
                prepared.signatures.clear()  # link was their only reader
                traced, r_trace = trace_task(prepared, linked, config)
                reports = [r_ingest, r_prepare, r_link, r_trace]
            traced = pipeline.ready_for_write(traced, prepared)
        finally:
            if prepared.texts is not None:
                prepared.texts.remove()
        info = pipeline.run_info(config, paths_in, prepared, traced, reports)
        paths = write_task(traced, prepared.rejects, out_dir, info)
        paths["report"] = report_task(out_dir)
    create_link_artifact(
        Path(paths["report"]).resolve().as_uri(), link_text=html_report.REPORT_NAME, key="provenance-report",
        description=f"Clusters, derivation trees and highlighted changes, one offline HTML file ({out_dir})",
    )

    create_table_artifact(
        summary.cluster_table(traced.clusters),
        key="provenance-clusters",
        description=f"Largest clusters of {traced.documents.height} documents ({out_dir})",
    )
    create_markdown_artifact(
        summary.largest_trees_markdown(traced.documents, traced.clusters, traced.edges),
        key="provenance-trees",
        description="Largest derivation trees",
    )
    counts = info["counts"]
    logger.info(
        "%d documents, %d rejected, %d clusters (%d with copies), %d edges -> %s",
        counts["documents"], counts["rejected"], counts["clusters"], counts["multi_document_clusters"],
        counts["edges"], out_dir,
    )
    return {"counts": counts, "outputs": paths}


def flow_on(runner: str | None = None, address: str | None = None, workers: int | None = None) -> Any:
    """The flow with its task runner chosen by option or setting (see ``flows/runners.py``)."""
    from flows.runners import task_runner

    return provenance_flow.with_options(task_runner=task_runner(runner, address, workers))


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.provenance_flow``: the same as ``provenance run``."""
    from provenance.cli import app

    return app(["run", *(sys.argv[1:] if argv is None else argv)], standalone_mode=True) or 0


if __name__ == "__main__":
    sys.exit(main())
