"""What every command shares: the typer app, the consoles, one-line errors and terminal-safe tables."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from provenance import query
from provenance.errors import ProvenanceError

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


