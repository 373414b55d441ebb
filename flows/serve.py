"""``provenance serve``: the flow as a scheduled deployment, served by this process.

``flow.serve`` registers a deployment (``provenance/<name>``) with a cron or interval schedule
on a running Prefect server (``PREFECT_API_URL``), then polls it and executes every run, scheduled
or triggered (``prefect deployment run provenance/<name>``, the UI, ``run_deployment``), in a
subprocess.  Stopping the process (Ctrl-C, SIGTERM) pauses the schedule.

Everything a user can get wrong (no server, a bad cron, a missing input, an unknown option) is
checked here first and raised as a one-line :class:`ProvenanceError`.  Paths are stored absolute,
so runs do not depend on the folder the serving process was started from.
"""

from __future__ import annotations

import flows  # noqa: F401  (offline/quiet Prefect defaults)

import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.preflight import preflight

DEFAULT_NAME = "scheduled"


def schedule_of(cron: str | None, interval: float | None, timezone: str = "UTC") -> Any:
    """One Prefect schedule from ``--cron`` or ``--interval`` (exactly one of them)."""
    from prefect.schedules import Cron, Interval

    if (cron is None) == (interval is None):
        raise ProvenanceError("give exactly one of --cron EXPR (e.g. '0 * * * *') and --interval SECONDS")
    if interval is not None:
        if not interval > 0:
            raise ProvenanceError(f"--interval must be a positive number of seconds, got {interval}")
        return Interval(timedelta(seconds=interval))
    try:
        ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ProvenanceError(f"--timezone must be an IANA time zone (e.g. UTC, Europe/Paris), got {timezone!r}") from None
    try:
        return Cron(cron, timezone=timezone)
    except ValueError:
        raise ProvenanceError(
            f"--cron must be a cron expression of 5 fields (e.g. '0 * * * *' for hourly), got {cron!r}"
        ) from None


def deployment_parameters(inputs: list[Path], out_dir: Path, options: dict[str, Any], store_dir: Path | None = None) -> dict[str, Any]:
    """The deployment's default parameters, checked as a run would check them (one-line errors)."""
    from pydantic import ValidationError

    from flows.params import PipelineOptions

    config = Config.from_options(options)  # unknown names, types, ranges, cross-field checks
    try:
        PipelineOptions.model_validate(options)
    except ValidationError as exc:  # pragma: no cover - Config refuses the same values first
        err = exc.errors()[0]
        raise ProvenanceError(f"option {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    paths = [Path(p).expanduser().resolve() for p in inputs]
    out_dir = Path(out_dir).expanduser().resolve()
    store = Path(store_dir).expanduser().resolve() if store_dir is not None else None
    preflight(paths, out_dir, config, store_dir=store)
    params: dict[str, Any] = {"inputs": [str(p) for p in paths], "out": str(out_dir)}
    if options:
        params["options"] = options
    if store is not None:
        params["store"] = str(store)
    return params


def api_url() -> str:
    """The configured Prefect API, checked to answer; a one-line error otherwise."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ProvenanceError(
            "provenance serve needs a running Prefect server: start one with `prefect server start` and "
            "set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)"
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise ProvenanceError(f"cannot reach the Prefect API at {url}: {problem}")
    return url


def serve(
    inputs: list[Path],
    out_dir: Path,
    *,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str = "UTC",
    name: str = DEFAULT_NAME,
    options: dict[str, Any] | None = None,
    limit: int = 1,
    paused: bool = False,
    store_dir: Path | None = None,
) -> None:
    """Register ``provenance/<name>`` with its schedule and execute its runs until stopped.

    ``limit`` runs at most that many runs at once (1: a run that comes due while the previous one
    is still writing waits for it).
    """
    from prefect.deployments.runner import EntrypointType

    from flows.provenance_flow import provenance_flow

    if not name or "/" in name:
        raise ProvenanceError(f"--name must be a non-empty name without '/', got {name!r}")
    if limit < 1:
        raise ProvenanceError(f"--limit must be >= 1, got {limit}")
    schedule = schedule_of(cron, interval, timezone)
    parameters = deployment_parameters(inputs, out_dir, dict(options or {}), store_dir)
    api_url()
    # Prefect's SIGTERM handler calls an async stop() without awaiting it (a RuntimeWarning) and
    # exits before its own pause of the schedule completes; the finally below pauses it for sure.
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited")
    try:
        provenance_flow.serve(
            name=name,
            schedules=[schedule],
            paused=paused,
            parameters=parameters,
            description=f"provenance on {', '.join(parameters['inputs'])} -> {parameters['out']}",
            tags=["provenance"],
            enforce_parameter_schema=True,
            pause_on_shutdown=True,
            limit=limit,
            # import by module name: runs work from any folder (the package is installed)
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    finally:
        pause(f"{provenance_flow.name}/{name}")


def pause(deployment_name: str) -> None:
    """Pause a deployment's schedule (no new scheduled runs pile up while nobody serves it)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.pause_deployment(client.read_deployment_by_name(deployment_name).id)
        print(f"Paused the schedule of {deployment_name}.", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - best effort on the way out
        print(f"Could not pause {deployment_name}: {exc}", file=sys.stderr)
