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

import threading
import time
from collections.abc import Callable, Iterator
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
    #: Where the stage's tasks ran (``process``: in the calling process; ``threads`` or ``dask``: the flow's task runner)
    #: and how many there were (prepare's batches, link's band slices, trace's cluster parts; 1: the stage in one piece).
    runner: str = "process"
    partitions: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 4), "rows_in": self.rows_in, "rows_out": self.rows_out,
                "runner": self.runner, "partitions": self.partitions, **self.stats}

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


class ProgressLines:
    """A :class:`Progress` as plain lines to ``write``, throttled: a stage at most every ``every`` seconds, and its end.

    ``prepare 2/2: 12,000/20,000 documents (60%), 1,234 documents/s, about 6 s left``, then
    ``prepare 2/2: 20,000 documents in 16.2 s (1,234 documents/s)``.  Safe to call from
    several threads.  The CLI (not a terminal) and the Prefect flow (its run logger)
    choose ``write`` and ``every``; what is printed never touches a result.
    """

    def __init__(self, write: Callable[[str], None], every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.every, self.clock = write, every, clock
        self.started: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.ended: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int, unit: str) -> None:
        with self.lock:
            now = self.clock()
            start = self.started.setdefault(stage, now)
            elapsed = now - start
            if stage in self.ended:
                return
            if done >= total:
                self.ended.add(stage)
                rate = f" ({_rate(done / elapsed)} {unit}/s)" if elapsed > 0 and done else ""
                self.write(f"{stage}: {done:,} {unit} in {elapsed:.1f} s{rate}")
            elif now - self.last.get(stage, start) >= self.every:
                self.last[stage] = now
                rate = done / elapsed if elapsed > 0 else 0.0
                left = f", about {(total - done) / rate:,.0f} s left" if rate > 0 else ""
                self.write(f"{stage}: {done:,}/{total:,} {unit} ({100 * done / total:.0f}%), {_rate(rate)} {unit}/s{left}")


def _rate(per_second: float) -> str:
    """``1,234`` or ``0.4``: whole units from 10 a second up, one decimal below."""
    return f"{per_second:,.{0 if per_second >= 10 else 1}f}"


@contextmanager
def timed(report: StageReport) -> Iterator[StageReport]:
    """Time the ``with`` body into ``report.seconds`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield report
    finally:
        report.seconds = time.perf_counter() - start
