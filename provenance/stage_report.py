"""What every stage returns beside its result: a uniform record of what it did.

A :class:`StageReport` holds the stage's name, seconds, rows in and out and
figures of its own (candidates, clusters, edges...).  The stage chain collects
them into ``run.json``, the Prefect flow logs them, the benchmarks time them:
one interface, whoever runs the stage.

While it runs, a stage may say how far it is through a :class:`Progress`
callback (batch by batch, never per document); it only informs, never changes
a result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class StageReport:
    """What one stage did."""

    name: str
    seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 4), "rows_in": self.rows_in, "rows_out": self.rows_out, **self.stats}

    def line(self) -> str:
        """One log line: ``name: rows_in -> rows_out rows in seconds {stats}``."""
        return f"{self.name}: {self.rows_in} -> {self.rows_out} rows in {self.seconds:.2f} s {self.stats}"


class Progress(Protocol):
    """``progress(stage, done, total, unit)``: ``done`` of ``total`` ``unit`` of ``stage`` are finished.

    For one ``stage`` the calls come in order with ``done`` never going down, and
    the last one has ``done == total`` (a stage may name its passes, e.g. ``prepare 1/2``).
    """

    def __call__(self, stage: str, done: int, total: int, unit: str) -> None: ...


def no_progress(stage: str, done: int, total: int, unit: str) -> None:
    """The default :class:`Progress`: told to nobody."""


@contextmanager
def timed(report: StageReport) -> Iterator[StageReport]:
    """Time the ``with`` body into ``report.seconds`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield report
    finally:
        report.seconds = time.perf_counter() - start
