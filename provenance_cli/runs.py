"""``provenance run`` and ``provenance serve``: their options come from the one :class:`~provenance.config.Config`.

Every config field marked ``cli`` is a flag of ``run`` (``--num-perm``,
``--min-containment``...), with the field's default and its one-line *why* as
help; any field at all can be set with ``--option NAME=VALUE``.  ``run``
executes the Prefect flow (``--engine prefect``, Prefect's temporary local
API, nothing to start by hand) or the same chain in-process
(``--engine local``).  A user's mistake prints one line and exits with status
2; never a traceback.  While it runs, each stage's progress shows as bars when
stdout is a terminal, as throttled lines on stderr when not (``--engine
local``; the flow logs its own), and not at all with ``--quiet``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, get_type_hints

import typer
from rich.table import Table

from provenance import report as html_report
from provenance.config import Config, iter_fields, options_markdown, parse_assignments
from provenance.errors import ProvenanceError
from provenance_cli.console import ProgressDisplay, app, fail, out, progress_display

ENGINES = ("prefect", "local")


def with_config_flags(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` (taking ``**flags``) with a typer option per CLI field of :class:`Config`, after its own parameters."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    hints = get_type_hints(fn, include_extras=True)
    params = [p.replace(annotation=hints[p.name]) for p in own]
    for section, name, info in iter_fields():
        if not (info.json_schema_extra or {}).get("cli"):
            continue
        option = typer.Option(help=info.description, rich_help_panel=f"Options: {section}")
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info.default,
                                        annotation=Annotated[info.annotation, option]))

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        return fn(**kwargs)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def config_from(flags: dict[str, Any], assignments: list[str] | None) -> Config:
    """The run's config: the flags, then ``--option NAME=VALUE`` over them (one-line errors)."""
    return Config.from_options({**flags, **parse_assignments(assignments)})


def run_local(paths: list[Path], out_dir: Path, config: Config, store_dir: Path | None, wait: float, *, quiet: bool = False) -> dict[str, Any]:
    """The chain in this process (no Prefect), writing ``report.html`` beside the tables; returns run.json's counts.

    Progress goes to :func:`~provenance_cli.console.progress_display` (none when ``quiet``).
    """
    from provenance import chain, outputs  # numba and datasketch load only for a run, not for queries
    from provenance.store.run import run_with_store

    class ReportHooks(chain.Hooks):
        """The report joins the tables in the generation a fresh run publishes (a store's write does the same)."""

        fresh = False

        def __init__(self, display: ProgressDisplay) -> None:
            self.display = display

        def begin(self, plan: chain.Plan) -> None:
            self.fresh = isinstance(plan, chain.FreshPlan)

        def stage(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if name != "write" or not self.fresh:
                return fn(*args, **kwargs)
            result, out, hooks = args
            with outputs.staged(out) as folder:
                return fn(result, folder, hooks, **kwargs)

        def tables_written(self, folder: Path) -> None:
            html_report.write_report(folder, shown_as=out_dir)  # named as the user's --out, not its generation

        def progress(self, stage: str, done: int, total: int, unit: str) -> None:
            self.display.update(stage, done, total, unit)

        def reported(self, report: Any) -> None:
            self.display.finish(report.name)

    with progress_display(quiet) as display:
        hooks = ReportHooks(display)
        if store_dir is not None:
            result = run_with_store(paths, out_dir, store_dir, config, wait_seconds=wait, hooks=hooks)
        else:
            result = chain.run(paths, config, out_dir=out_dir, hooks=hooks)
    return result.info["counts"]


@app.command()
@with_config_flags
def run(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Folders (.txt/.md, recursive) or .jsonl/.csv/.parquet tables. Default: seeds/")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder for the Parquet tables, run.json and report.html.")] = Path("data/output"),
    engine: Annotated[str, typer.Option(help="'prefect' (a Prefect flow run) or 'local' (the same stages, no Prefect).")] = "prefect",
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Any config field as NAME=VALUE (repeatable), e.g. -o cluster_founders=5.")] = None,
    runner: Annotated[Optional[str], typer.Option(help="Task runner of the flow: 'threads' or 'dask' (default: $PROVENANCE_TASK_RUNNER or threads).")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster).")] = None,
    dask_workers: Annotated[Optional[int], typer.Option(help="Workers of the LocalCluster started for --runner dask.")] = None,
    store_dir: Annotated[Optional[Path], typer.Option("--store", help="Incremental store folder: add the inputs to it, redo only what they change; --out becomes a link to the store's tables.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run holding --out (or the --store) (default: exit at once).")] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or lines while the run goes (errors still print).")] = False,
    **flags: Any,
) -> None:
    """Cluster documents, find each cluster's origin and derivation tree, write Parquet."""
    paths = list(inputs) if inputs else [Path("seeds")]
    try:
        from provenance.preflight import preflight

        config = config_from(flags, option)
        if engine not in ENGINES:
            raise ProvenanceError(f"--engine must be 'prefect' or 'local', got {engine!r}")
        if engine == "local" and (runner or dask_address or dask_workers):
            raise ProvenanceError("--runner, --dask-address and --dask-workers need --engine prefect")
        if wait < 0:
            raise ProvenanceError(f"--wait must be >= 0 seconds, got {wait}")
        preflight(paths, out_dir, config, store_dir=store_dir)
        from provenance import outputs

        # --out is held for the whole run, from before any work: a second run on it is told at once (or waits).
        with outputs.claimed(out_dir, wait, store_dir=store_dir):
            if engine == "local":
                counts = run_local(paths, out_dir, config, store_dir, wait, quiet=quiet)
            else:
                from flows.provenance_flow import flow_on
                from flows.server import stop_on_sigterm

                with stop_on_sigterm(str(out_dir)):
                    counts = flow_on(runner, dask_address, dask_workers)(
                        inputs=[str(p) for p in paths], out=str(out_dir), options=config.options(),
                        store=str(store_dir) if store_dir is not None else None, wait=wait,
                        **({"progress": False} if quiet else {}),  # the flow logs progress lines by default
                    )["counts"]
    except ProvenanceError as exc:
        fail(str(exc))
        return
    summary = Table(title=f"provenance run -> {out_dir}", show_header=False)
    for key in ("documents", "rejected", "clusters", "multi_document_clusters", "edges"):
        summary.add_row(key.replace("_", " "), str(counts[key]))
    summary.add_row("report", str(out_dir / html_report.REPORT_NAME))
    out.print(summary)
    for line in rejects_by_reason(counts):
        out.print(line, markup=False, highlight=False)
    if counts["documents"] + counts["rejected"] == 0:
        out.print(f"no documents found in {', '.join(map(str, paths))}", markup=False, highlight=False)


def rejects_by_reason(counts: dict[str, Any]) -> list[str]:
    """One line per reject reason with its count, most frequent first (then by name), from run.json's counts."""
    reasons = sorted((counts.get("rejects_by_reason") or {}).items(), key=lambda item: (-item[1], item[0]))
    return [f"rejected {count:,} as {reason}" for reason, count in reasons]


@app.command()
def serve(
    inputs: Annotated[Optional[list[Path]], typer.Option("--input", "-i", help="Input folder or table (repeatable). Default: seeds/")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of every run.")] = Path("data/output"),
    cron: Annotated[Optional[str], typer.Option(help="Cron schedule, e.g. '0 * * * *' (hourly).")] = None,
    interval: Annotated[Optional[float], typer.Option(help="Run every SECONDS instead of a cron schedule.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of --cron.")] = "UTC",
    name: Annotated[str, typer.Option(help="Deployment name (the deployment is provenance/NAME).")] = "scheduled",
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Any config field as NAME=VALUE (repeatable), e.g. num_perm=256.")] = None,
    limit: Annotated[int, typer.Option(help="Runs executed at once by this process.")] = 1,
    store_dir: Annotated[Optional[Path], typer.Option("--store", help="Incremental store: each run adds what is new in the inputs (see README, 'Incremental runs').")] = None,
) -> None:
    """Serve the flow as a scheduled deployment on a running Prefect server (PREFECT_API_URL) until stopped."""
    try:
        from flows.serve import serve as serve_flow  # imports Prefect only here

        serve_flow(
            list(inputs) if inputs else [Path("seeds")], out_dir, cron=cron, interval=interval, timezone=timezone,
            name=name, options=parse_assignments(option), limit=limit, store_dir=store_dir,
        )
    except ProvenanceError as exc:
        fail(str(exc))


@app.command("options")
def options_command() -> None:
    """Every config field (flag or -o NAME=VALUE), its default, whether it changes tables, and why, as markdown."""
    out.print(options_markdown(), markup=False, highlight=False, soft_wrap=True)
