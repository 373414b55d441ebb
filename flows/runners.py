"""Where the flow's tasks run: Prefect's thread pool (default) or a Dask cluster.

Chosen per run without code changes: ``provenance run --runner dask
[--dask-address tcp://HOST:8786] [--dask-workers N]``, or for deployments the
settings ``PROVENANCE_TASK_RUNNER=dask`` and ``PROVENANCE_DASK_ADDRESS``.
Without an address a ``distributed.LocalCluster`` of ``--dask-workers``
single-threaded processes is started for the run and closed after it.

Prepare's batches (tokenise, shingle, sign; one task per ``batch_size``
documents) are fanned out on either runner.  On a Dask runner link and trace
are too, as ``partitions`` tasks each (``RunOptions.partitions``: band slices
of the LSH, sets of whole clusters; ``provenance.link.parts``), which read
and write Parquet and memory-mapped files in the run's work folder; with
threads they run in the flow process unless ``partitions`` asks otherwise.
"""

from __future__ import annotations

import os
from typing import Any

from provenance.errors import ProvenanceError

RUNNERS = ("threads", "dask")


def task_runner(runner: str | None = None, address: str | None = None, workers: int | None = None) -> Any:
    """A Prefect task runner for ``runner`` (falls back to the environment settings)."""
    runner = runner or os.environ.get("PROVENANCE_TASK_RUNNER", "threads")
    address = address or os.environ.get("PROVENANCE_DASK_ADDRESS") or None
    if runner not in RUNNERS:
        raise ProvenanceError(f"--runner must be one of {', '.join(RUNNERS)}, got {runner!r}")
    if runner == "threads":
        if address:
            raise ProvenanceError("--dask-address needs --runner dask")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    n = workers if workers is not None else int(os.environ.get("PROVENANCE_DASK_WORKERS", "2"))
    if n < 1:
        raise ProvenanceError(f"--dask-workers must be at least 1, got {n}")
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": n, "threads_per_worker": 1, "processes": True, "dashboard_address": None},
    )


def default_task_runner() -> Any:
    """The flow's default: the environment settings, else threads (so deployments honour them too)."""
    return task_runner(None, None, None)


def runner_name(runner: Any) -> str:
    """``dask`` or ``threads``: what ``run.json`` records of a flow's task runner."""
    return "dask" if type(runner).__name__ == "DaskTaskRunner" else "threads"
