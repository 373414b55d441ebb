"""What every command shares: the typer app, the consoles, one-line errors, terminal-safe tables and a run's progress."""

from __future__ import annotations

import csv
import json
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from provenance import query
from provenance.errors import ProvenanceError
from provenance.stage_report import ProgressLines as StageLines

err = Console(stderr=True)
out = Console()
#: click's usage error (a bad value, an unknown flag), whichever click typer runs on.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(TyperGroup):
    """Usage mistakes (``--num-perm 256.7``, an unknown flag) as one line and exit 2, like every other mistake."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_in_one_line():  # the command's own arguments are parsed in here
            return super().invoke(ctx)


@contextmanager
def _usage_in_one_line() -> Iterator[None]:
    try:
        yield
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `provenance` alone prints the help
            raise
        fail(" ".join(exc.format_message().split()))


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True,
                  help="Near-duplicate clustering and provenance tracing for text.")


def fail(message: str) -> None:
    """Print a user's mistake as one line and exit with status 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.callback()
def _main() -> None:
    """Near-duplicate clustering and provenance tracing for text."""


OutOption = Annotated[Path, typer.Option("--out", help="Output folder written by `provenance run`.")]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="'table' (for people), 'json' or 'csv' (for scripts).")]
FORMATS = ("table", "json", "csv")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@contextmanager
def outputs(out_dir: Path, fmt: str = "table") -> Iterator[query.Outputs]:
    """The outputs in ``out_dir``; user errors and unreadable files become one line and exit 2."""
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        yield query.open_outputs(out_dir)
    except ProvenanceError as exc:
        fail(str(exc))
    except (pl.exceptions.PolarsError, OSError) as exc:
        fail(f"cannot read the outputs in {out_dir}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")


def clean(value: object, *, one_line: bool = True) -> str:
    """Document text made safe for a terminal: no control characters (escape sequences), optionally one line."""
    text = "" if value is None else str(value)
    if one_line:
        text = " ".join(text.split())
    return CONTROL.sub("\ufffd", text)


def cell(value: object, limit: int | None = None) -> Text:
    text = clean(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text)  # a Text is never parsed as rich markup


def table(title: str | Text, caption: str | None, columns: list[tuple[str, str]], rows: list[list[Any]]) -> Table:
    """A table that fits the terminal: ``id`` and ``num`` columns (right-aligned) keep their width and
    ``text`` columns share what is left, cut with an ellipsis, so every row stays one line high."""
    plain = lambda cell: cell.plain if isinstance(cell, Text) else str(cell)
    fixed = sum(max([len(h), *(len(plain(r[i])) for r in rows)]) + 3 for i, (h, kind) in enumerate(columns) if kind != "text")
    n_text = sum(1 for _, kind in columns if kind == "text")
    text_width = max(12, min(70, (console().width - fixed - 4 - 3 * n_text) // max(n_text, 1)))
    table = Table(title=title, caption=caption)
    for header, kind in columns:
        if kind == "text":
            table.add_column(header, width=text_width, no_wrap=True, overflow="ellipsis")
        else:
            table.add_column(header, justify="right" if kind == "num" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def documents(n: int) -> str:
    return f"{n:,} document{'' if n == 1 else 's'}"


def console() -> Console:
    """``out`` in a terminal; piped or captured, a console at least 140 columns wide, so tables stay readable in files."""
    return out if out.is_terminal else Console(width=max(out.width, 140), highlight=False)


def num(value: object, digits: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def print_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " | ".join(map(str, v)) if isinstance(v, list) else "" if v is None else v for k, v in row.items()})


def meta_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = rows[0].keys() if rows else ()
    return [(k, label) for k, label in (("published_at", "published"), ("publisher", "publisher")) if k in keys]


def edge_cells(row: dict[str, Any]) -> list[str | Text]:
    if row.get("change_kind") is None:
        return [Text("origin", style="bold"), "", "", "", "", ""]
    return [
        Text(row["change_kind"], style=KIND_STYLE.get(row["change_kind"], "")),
        num(row["confidence"]), f"{row['kept']:,}/{row['parent_tokens']:,}", num(row["substituted"]),
        num(row["inserted"]), num(row["deleted"]),
    ]


KIND_STYLE = {"copy": "dim", "truncation": "blue", "excerpt": "cyan", "spin": "yellow", "paraphrase": "magenta",
               "insertion": "green", "mixed": "red"}
EDGE_HEADERS = [("change", "id"), ("conf.", "num"), ("kept/of", "num"), ("subst.", "num"), ("ins.", "num"), ("del.", "num")]


# ---------------------------------------------------------------------------- progress of a run

#: Plain progress lines (stdout not a terminal): at most one per stage pass every this many seconds, and its last.
PROGRESS_EVERY_SECONDS = 5.0
#: Bars are redrawn this many times a second (a terminal only).
PROGRESS_REFRESH_PER_SECOND = 4


class ProgressDisplay:
    """Where a run's :meth:`provenance.chain.Hooks.progress` goes: nowhere (``--quiet``), bars or lines.

    ``update(stage, done, total, unit)`` may come from several threads; ``finish(stage)``
    says a chain stage ended (its passes are complete even when a cache skipped them).
    """

    def update(self, stage: str, done: int, total: int, unit: str) -> None:
        """``done`` of ``total`` ``unit`` of ``stage`` (a stage or one of its passes, ``prepare 1/2``) are finished."""

    def finish(self, stage: str) -> None:
        """The chain's stage ``stage`` ended."""

    def close(self) -> None:
        """The run ended (or failed): stop drawing."""


def _of_stage(label: str, stage: str) -> bool:
    """Whether the progress label ``label`` (``prepare 1/2``) belongs to the chain stage ``stage`` (``prepare``)."""
    return label == stage or label.startswith(stage + " ")


class _RateColumn(ProgressColumn):
    """``1,234 documents/s``: the task's recent speed in its own unit, its average once finished."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.speed if not task.finished else None
        if speed is None and elapsed and task.completed:
            speed = task.completed / elapsed
        if speed is None:
            return Text("")
        return Text(f"{speed:,.{0 if speed >= 10 else 1}f} {task.fields.get('unit', '')}/s", style="progress.data.speed")


class _CountColumn(ProgressColumn):
    """``12,000/20,000 documents``."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:,.0f}"
        return Text(f"{task.completed:,.0f}/{total} {task.fields.get('unit', '')}", style="progress.download")


class ProgressBars(ProgressDisplay):
    """One rich bar per stage pass: description, bar, done/total units, units/s and time left."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), _CountColumn(), _RateColumn(), TimeRemainingColumn(),
            TimeElapsedColumn(), console=console, refresh_per_second=PROGRESS_REFRESH_PER_SECOND,
        )
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()
        self.bars.start()

    def update(self, stage: str, done: int, total: int, unit: str) -> None:
        with self.lock:
            if stage not in self.tasks:
                self.tasks[stage] = self.bars.add_task(stage, total=total, unit=unit)
            self.bars.update(self.tasks[stage], completed=done, total=total)

    def finish(self, stage: str) -> None:
        with self.lock:
            for label, task in self.tasks.items():
                if _of_stage(label, stage):
                    total = self.bars.tasks[task].total or 0
                    self.bars.update(task, completed=total)

    def close(self) -> None:
        self.bars.stop()


class ProgressLines(ProgressDisplay):
    """Plain lines on stderr (:class:`provenance.stage_report.ProgressLines`), a stage pass at most every
    :data:`PROGRESS_EVERY_SECONDS` and its end."""

    def __init__(self, stream: Any = None, every: float = PROGRESS_EVERY_SECONDS) -> None:
        self.stream = stream
        self.lines = StageLines(self.write, every)

    def update(self, stage: str, done: int, total: int, unit: str) -> None:
        self.lines(stage, done, total, unit)

    def write(self, line: str) -> None:
        stream = self.stream or sys.stderr  # looked up at each line: a test's captured stderr
        stream.write(line + "\n")
        stream.flush()


@contextmanager
def progress_display(quiet: bool = False) -> Iterator[ProgressDisplay]:
    """Bars on stdout when it is a terminal, throttled lines on stderr when not, nothing when ``quiet``."""
    display = ProgressDisplay() if quiet else ProgressBars(out) if out.is_terminal else ProgressLines()
    try:
        yield display
    finally:
        display.close()
