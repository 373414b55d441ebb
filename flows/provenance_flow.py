"""The provenance pipeline as a Prefect flow: the library's stage chain, its stages and batches as tasks.

The flow does not copy the chain: it runs ``provenance.chain`` (or the
store's run) with :class:`FlowHooks`, which turn each stage into a task and
each prepare batch into a task on the flow's task runner (threads, or Dask
workers).  Tasks are per stage or per batch, never per document.

* ``ingest``, ``write`` and ``report`` retry on transient errors only (:func:`is_transient`): a
  user's mistake, a full disk or a bug fails at once;
* with ``partitions`` (by default on a Dask runner) ``link`` and ``trace`` map
  ``link-partition`` (band slices), ``verify-partition`` (pairs by hash),
  ``count-partition`` and ``trace-partition`` (sets of whole clusters) tasks on the runner, which meet as Parquet files in the run's work
  folder (``provenance.link.parts``, ``provenance.trace.parts``); a partition
  retries alone on a transient error;
* ``summarize-batch``, ``shingle-batch``, ``link`` and ``trace`` (when not partitioned) are cached on
  what determines their result (``flows.cache.StageInputs``: the config's
  fingerprint, the library's source digest, the inputs' digests), persisted
  under ``PREFECT_LOCAL_STORAGE_PATH`` for a day, so a retried flow run skips
  finished stages.  A store run is its own cache: its stages are not cached;
* ``report`` writes ``report.html`` once the tables are written;
* each stage's progress (``chain.Hooks.progress``) goes to the run logger as
  plain lines, at most one per stage pass every :data:`PROGRESS_EVERY_SECONDS`
  and its end; prepare's batches are counted as their tasks finish;
* the UI shows markdown and table artifacts: the run summary with the output
  path and how to open it, the largest clusters, the largest trees.

Run ad hoc with ``provenance run`` or ``python -m flows.provenance_flow
[INPUT ...] [--out DIR] [--store DIR] [-o NAME=VALUE ...]``; with no
``PREFECT_API_URL`` Prefect starts its own temporary local server, which stops
itself when the run's process dies (``flows.server``).
"""

# No ``from __future__ import annotations`` here: ``flow.serve`` (``provenance serve``) hands the
# flow to its run process with cloudpickle, which carries real annotation objects but not the
# module globals that string annotations would need; pydantic validates the parameters from them.

import flows  # noqa: F401  (offline/quiet Prefect defaults)

import argparse
import errno
import logging
import re
import shlex
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed

from flows import server as temporary_server
from flows.cache import StageInputs
from flows.params import Inputs, OutDir, PipelineOptions, StoreDir, WaitSeconds, options_dict
from flows.runners import default_task_runner, runner_name
from provenance import chain, outputs, tables
from provenance import report as html_report
from provenance.config import Config, parse_assignments
from provenance.errors import ProvenanceError
from provenance.link.parts import (
    BandSlice, EvidenceBlock, PairBucket, UnitBatch, evidence_partition, link_partition, units_partition, verify_partition,
)
from provenance.prepare.stage import BatchProgress, shingle_batch, summarize_batch
from provenance.stage_report import ProgressLines, StageReport
from provenance.store.run import run_with_store
from provenance.trace.parts import ClusterPart, count_partition, trace_partition
from provenance.trace.viral import ViralChunk, count_viral, edges_viral, price_viral

#: How long a cached stage result stays valid.
CACHE_FOR = timedelta(days=1)
#: Progress log lines: at most one per stage pass every this many seconds (and its end).  Never touches a result.
PROGRESS_EVERY_SECONDS = 10.0


temporary_server.install()

#: File system errors that the same run would meet again: a missing or forbidden path, a full or read-only disk.
PERMANENT_ERRNOS = frozenset({
    errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOSPC, errno.EROFS, errno.EDQUOT,
    errno.ENAMETOOLONG, errno.EEXIST, errno.ELOOP,
})


def is_transient(exc: BaseException | None) -> bool:
    """Whether trying again may succeed: a network or I/O hiccup, a timeout; never a user's mistake or a bug."""
    if isinstance(exc, (ProvenanceError, MemoryError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno not in PERMANENT_ERRNOS


def not_a_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """The tasks' ``retry_condition_fn``: retry only a transient error (:func:`is_transient`)."""
    exc = getattr(state, "data", None)
    if not isinstance(exc, BaseException):
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:  # noqa: BLE001 - a state without a readable exception: do not retry blindly
            return False
    return is_transient(exc)


class OneLineUserErrors(logging.Filter):
    """Prefect logs a failed task or flow with its traceback; a user's mistake keeps only its one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ProvenanceError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_user_errors() -> None:
    """Put :class:`OneLineUserErrors` on the console handlers Prefect sets up (on the root logger and its own)."""
    for handler in [*logging.getLogger().handlers, *logging.getLogger("prefect").handlers]:
        if not any(isinstance(f, OneLineUserErrors) for f in handler.filters):
            handler.addFilter(OneLineUserErrors())


quiet_user_errors()

_cached = dict(persist_result=True, cache_expiration=CACHE_FOR)
_retried = dict(retries=2, retry_delay_seconds=2, retry_condition_fn=not_a_user_error, cache_policy=NO_CACHE, persist_result=False)

# One task per stage.  ``fn`` is the plan's stage function; a cached stage is keyed on the inputs that
# determine its result (a store's stages, whose plan is not cacheable, run with the cache off).


@task(name="ingest", **_retried)
def ingest_task(fn: Callable[..., Any], source: Any, config: Config) -> Any:
    return fn(source, config)


@task(name="link", cache_policy=StageInputs(inputs=("prepared", "config")), **_cached)
def link_task(fn: Callable[..., Any], prepared: Any, config: Config) -> Any:
    return fn(prepared, config)


@task(name="trace", cache_policy=StageInputs(inputs=("prepared", "config")), **_cached)
def trace_task(fn: Callable[..., Any], prepared: Any, linked: Any, config: Config) -> Any:
    return fn(prepared, linked, config)  # linked is a function of prepared and config: not in the key


@task(name="write", **_retried)
def write_task(fn: Callable[..., Any], result: Any, out_dir: Path, hooks: Any) -> Any:
    return fn(result, out_dir, hooks)


STAGE_TASKS = {"ingest": ingest_task, "link": link_task, "trace": trace_task, "write": write_task}


@task(name="summarize-batch", cache_policy=StageInputs(inputs=("texts", "lo", "options")), **_cached)
def summarize_batch_task(texts: Any, lo: int, options: Any) -> Any:
    return summarize_batch(texts, lo, options)


@task(name="shingle-batch", cache_policy=StageInputs(inputs=("texts", "lo", "keys", "options", "n_tokens", "frequent_words")), **_cached)
def shingle_batch_task(texts: Any, lo: int, keys: Any, options: Any, n_tokens: Any = None, frequent_words: Any = None) -> Any:
    return shingle_batch(texts, lo, keys, options, n_tokens, frequent_words)


# Link's band slices and trace's cluster parts: they read and write files in the run's work folder, so they are
# not cached (the folder lives for one run); a transient error retries the one partition.
@task(name="link-partition", **_retried)
def link_partition_task(part: BandSlice, config: Config) -> Any:
    return link_partition(part, config)


@task(name="verify-partition", **_retried)
def verify_partition_task(part: PairBucket, config: Config) -> Any:
    return verify_partition(part, config)


@task(name="units-partition", **_retried)
def units_partition_task(part: UnitBatch, config: Config) -> Any:
    return units_partition(part, config)


@task(name="evidence-partition", **_retried)
def evidence_partition_task(part: EvidenceBlock, config: Config) -> Any:
    return evidence_partition(part, config)


@task(name="count-partition", **_retried)
def count_partition_task(part: ClusterPart, config: Config) -> Any:
    return count_partition(part, config)


@task(name="trace-partition", **_retried)
def trace_partition_task(part: ClusterPart, config: Config) -> Any:
    return trace_partition(part, config)


@task(name="count-viral", **_retried)
def count_viral_task(chunk: ViralChunk, config: Config) -> Any:
    return count_viral(chunk, config)


@task(name="price-viral", **_retried)
def price_viral_task(chunk: ViralChunk, config: Config) -> Any:
    return price_viral(chunk, config)


@task(name="edges-viral", **_retried)
def edges_viral_task(chunk: ViralChunk, config: Config) -> Any:
    return edges_viral(chunk, config)


BATCH_TASKS = {summarize_batch: summarize_batch_task, shingle_batch: shingle_batch_task,
               link_partition: link_partition_task, verify_partition: verify_partition_task,
               units_partition: units_partition_task, evidence_partition: evidence_partition_task,
               count_partition: count_partition_task, trace_partition: trace_partition_task,
               count_viral: count_viral_task, price_viral: price_viral_task, edges_viral: edges_viral_task}


@task(name="report", **_retried)
def report_task(folder: Path, shown_as: Path | None = None) -> str:
    info = html_report.write_report(folder, shown_as=shown_as)
    get_run_logger().info("report: %s, %d bytes, aligned texts for %d of %d edges, %.2f s",
                          info.path, info.bytes, info.diff_edges, info.edges, info.seconds)
    return str(info.path)


class FlowHooks(chain.Hooks):
    """The chain's hooks inside a flow run: stages and batches as tasks, reports to the run logger."""

    def __init__(self, out_dir: Path | None = None, progress: bool = True) -> None:
        self.cacheable = True
        self.fresh = False
        self.out_dir = out_dir  # what the report names: the --out, not the generation behind it
        # The flow run's logger, taken here (in the flow): progress may come from task threads.
        logger = get_run_logger()
        self.runner = runner_name(FlowRunContext.get().task_runner)
        self.lines = ProgressLines(logger.info, PROGRESS_EVERY_SECONDS) if progress else None

    def begin(self, plan: chain.Plan) -> None:
        self.cacheable = plan.cacheable
        self.fresh = isinstance(plan, chain.FreshPlan)

    def stage(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if name == "prepare":  # its batches are the tasks
            return fn(*args, **kwargs)
        stage_task = STAGE_TASKS[name]
        if not self.cacheable:
            stage_task = stage_task.with_options(cache_policy=NO_CACHE, persist_result=False, retries=0)
        if name == "write" and self.fresh:
            # Tables, run.json and report.html go into a new generation, published at --out once all are there.
            result, out_dir, hooks = args
            with outputs.staged(out_dir) as folder:
                return stage_task(fn, result, folder, hooks, **kwargs)
        return stage_task(fn, *args, **kwargs)

    def partitioned_stage(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # In the flow itself, not as a stage task: the partitions are the tasks, and a task submitted from inside
        # another would carry the parent's parameters (the whole corpus) to every worker.
        return fn(*args, **kwargs)

    def map_batches(self, fn: Callable[..., Any], *iterables: Any) -> list[Any]:
        batch_args = list(zip(*iterables))
        done = BatchProgress(self.progress, fn, batch_args)
        futures: list[Any] = [BATCH_TASKS[fn].submit(*args) for args in batch_args]
        number = {id(future): i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            i = number[id(future)]
            # Taken as each batch ends and its future dropped, so a Dask worker forgets the batch then: it does not
            # hold every result it made (half the corpus's sets and signatures on two workers) until the pass ends.
            results[i], futures[i] = future.result(), None
            done.finished(i)
        return results

    def progress(self, stage: str, done: int, total: int, unit: str) -> None:
        if self.lines is not None:
            self.lines(stage, done, total, unit)

    def reported(self, report: StageReport) -> None:
        get_run_logger().info(report.line())

    def tables_written(self, folder: Path) -> None:
        report_task(folder, self.out_dir)


def _code(text: str) -> str:
    """``text`` as one markdown code span, whatever backticks it holds (a fence longer than any run of them)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence, pad = "`" * (longest + 1), " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def summary_markdown(result: chain.RunResult, out_dir: Path) -> str:
    """The run's summary for the Prefect UI: counts, seconds per stage, where the outputs are and how to open them.

    The UI cannot open a local file, so the paths are text to copy, with the commands that read them.
    """
    info = result.info
    counts, stages = info["counts"], info.get("stages", {})
    folder = out_dir.resolve()
    rejected = f"{counts['rejected']:,}" + "".join(
        f", {n:,} {reason}" for reason, n in sorted((counts.get("rejects_by_reason") or {}).items()))
    rows = [
        ("documents", f"{counts['documents']:,}"),
        ("rejected", rejected),
        ("clusters", f"{counts['clusters']:,} ({counts['multi_document_clusters']:,} with copies)"),
        ("derivation edges", f"{counts['edges']:,}"),
        ("seconds", ", ".join(f"{name} {stage.get('seconds', 0):.1f}" for name, stage in stages.items())),
    ]
    tables_named = ", ".join(f"{name}.parquet" for name in result.frames())
    clusters_file, edges_file = str(folder / "clusters.parquet"), str(folder / "edges.parquet")
    lines = [
        "# provenance run", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "",
        "## Outputs", "",
        f"On the machine that ran the flow, in {_code(str(folder))}:", "",
        f"- **report.html**, one offline page (clusters, trees, aligned changes): open "
        f"{_code(str(folder / html_report.REPORT_NAME))} in a browser there, or copy the file anywhere and open it;",
        f"- in a terminal: {_code(f'provenance top --out {shlex.quote(str(folder))}')}, then "
        f"{_code(f'provenance cluster CLUSTER_ID --out {shlex.quote(str(folder))}')};",
        f"- the tables ({tables_named}) in Python: {_code('pl.read_parquet(' + repr(clusters_file) + ')')}, "
        f"or in DuckDB: {_code('SELECT * FROM ' + repr(edges_file))}.",
        "",
        "Beside this artifact: `provenance-clusters` (the largest clusters) and `provenance-trees` (their derivation trees).",
    ]
    return "\n".join(lines)


def publish_artifacts(result: chain.RunResult, out_dir: Path) -> None:
    """What a Prefect user sees in the UI: the run's summary and outputs, the largest clusters, the largest trees."""
    create_markdown_artifact(
        summary_markdown(result, out_dir), key="provenance-report",
        description=f"Run summary and where report.html and the tables are ({out_dir})",
    )
    create_table_artifact(
        tables.cluster_table(result.clusters), key="provenance-clusters",
        description=f"Largest clusters of {result.documents.height} documents ({out_dir})",
    )
    create_markdown_artifact(
        tables.largest_trees_markdown(result.documents, result.clusters, result.edges), key="provenance-trees",
        description="Largest derivation trees",
    )


@flow(name="provenance", log_prints=True, task_runner=default_task_runner())
def provenance_flow(
    inputs: Inputs = ["seeds"],  # noqa: B006 - Prefect parameters must be JSON defaults
    out: OutDir = "data/output",
    options: Optional[PipelineOptions] = None,
    store: Optional[StoreDir] = None,
    wait: WaitSeconds = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Cluster the documents of ``inputs``, trace origins and trees, write Parquet to ``out``.

    ``options`` are :class:`provenance.config.Config` fields by flat name
    (e.g. ``{"num_perm": 256}``); unknown names fail the run with one line.
    Parameters are typed and range-checked (``flows/params.py``): a bad value
    fails the run with a message naming it.  ``progress=False`` logs no progress lines.
    """
    from provenance.preflight import preflight

    quiet_user_errors()
    config = Config.from_options(options_dict(options))
    paths, out_dir = [Path(p) for p in inputs], Path(out)
    preflight(paths, out_dir, config, store_dir=Path(store) if store else None)
    hooks = FlowHooks(out_dir, progress)
    with outputs.claimed(out_dir, wait, store_dir=Path(store) if store else None):
        if store:
            result = run_with_store(paths, out_dir, Path(store), config, wait_seconds=wait, hooks=hooks)
        else:
            result = chain.run(paths, config, out_dir=out_dir, hooks=hooks)
    publish_artifacts(result, out_dir)
    counts = result.info["counts"]
    get_run_logger().info(
        "%d documents, %d rejected, %d clusters (%d with copies), %d edges -> %s",
        counts["documents"], counts["rejected"], counts["clusters"], counts["multi_document_clusters"], counts["edges"], out_dir,
    )
    return {"counts": counts, "outputs": {**result.info.get("outputs", {}), "report": str(out_dir / html_report.REPORT_NAME)}}


def flow_on(runner: str | None = None, address: str | None = None, workers: int | None = None) -> Any:
    """The flow with its task runner chosen by option or setting (see ``flows/runners.py``)."""
    from flows.runners import task_runner

    return provenance_flow.with_options(task_runner=task_runner(runner, address, workers))


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.provenance_flow [INPUT ...] [--out DIR] [--store DIR] [-o NAME=VALUE ...]``."""
    parser = argparse.ArgumentParser(prog="python -m flows.provenance_flow", description=provenance_flow.description)
    parser.add_argument("inputs", nargs="*", default=["seeds"])
    parser.add_argument("--out", default="data/output")
    parser.add_argument("--store", default=None)
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another run holding --out or --store")
    parser.add_argument("--option", "-o", action="append", default=[], help="any config field as NAME=VALUE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from provenance.preflight import preflight

        options = parse_assignments(args.option)
        config = Config.from_options(options)  # a mistake is one line, before any Prefect server starts
        preflight([Path(p) for p in args.inputs], Path(args.out), config, store_dir=Path(args.store) if args.store else None)
        outputs.check_out(Path(args.out), store_dir=Path(args.store) if args.store else None)
        with temporary_server.stop_on_sigterm(args.out):
            result = provenance_flow(inputs=args.inputs, out=args.out, options=options, store=args.store, wait=args.wait)
    except ProvenanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result["counts"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
