"""``provenance lookup``: is a text a version of something already in a store?  (``provenance.store.lookup``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.text import Text

from provenance.errors import ProvenanceError
from provenance.store.lookup import LookupResult, open_store
from provenance_cli.console import app, cell, clean, console, fail, num, print_json, table

#: Files read as batches of queries (the input columns of ``provenance run``), or as one text.
TABLES = (".jsonl", ".csv", ".parquet")
TEXTS = (".txt", ".md")

EXAMPLE = """
Example:

  provenance run seeds --store data/store --out data/output
  provenance lookup suspicious.txt --store data/store
  cat article.txt | provenance lookup - --store data/store --format json
  provenance lookup queries.jsonl --store data/store   # one query per row: id, text

Exit status: 0 when some query matches (or is in the store already), 1 when none does, 2 for a mistake.
"""


def _results(path: str, store: Path) -> list[LookupResult]:
    opened = open_store(store)
    if path == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProvenanceError("standard input is not UTF-8 text") from None
        return [opened.lookup_text(text, "stdin")]
    file = Path(path)
    if not file.exists():
        raise ProvenanceError(f"{file} does not exist")
    if file.is_dir():
        raise ProvenanceError(f"{file} is a folder: pass one text file or a .jsonl/.csv/.parquet table of queries")
    if file.suffix.lower() in TABLES + TEXTS:
        return opened.lookup_source([file])
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProvenanceError(f"{file} is not UTF-8 text") from None
    except OSError as exc:
        raise ProvenanceError(f"cannot read {file}: {exc.strerror}") from None
    return [opened.lookup_text(text, file.stem)]


def _show(result: LookupResult) -> None:
    c = console()
    head = Text()
    head.append(clean(result.query_id), style="bold")
    head.append(f"  {result.status}", style="green" if result.status in ("matched", "stored") else "yellow")
    if result.reason:
        head.append(f"  ({clean(result.reason)})", style="dim")
    c.print(head, soft_wrap=True)
    if result.status not in ("matched", "stored"):
        return
    rows: list[list[Any]] = [
        [Text("cluster"), cell(result.cluster_id), cell(f"{len(result.members)} stored member(s)" if result.members else "")],
        [Text("origin"), cell(result.origin_id if not result.is_origin else f"{result.query_id} (this text)"), cell(result.origin_title, 70)],
    ]
    if result.stored_id:
        rows.append([Text("stored as"), cell(result.stored_id), cell("")])
    if result.parent_id:
        rows.append([Text("parent"), cell(result.parent_id), cell(result.parent_title, 70)])
    elif result.relation == "child":
        rows.append([Text("its copy"), cell(result.changes.get("other_id") if result.changes else ""), cell("the query would be the origin")])
    for label, value in (("copy_confidence", result.copy_confidence), ("parent_confidence", result.parent_confidence),
                         ("confidence", result.confidence)):
        if value is not None:
            rows.append([Text(label), num(value), cell("")])
    ch = result.changes or {}
    if ch:
        rows.append([Text("change_kind"), cell(ch.get("change_kind")), cell(
            f"kept {ch.get('kept')}, substituted {ch.get('substituted')}, inserted {ch.get('inserted')}, deleted {ch.get('deleted')}; "
            f"spin rate {num(ch.get('spin_rate'))}"
        )])
        if ch.get("substitution_examples"):
            rows.append([Text("substitutions"), cell(""), cell(", ".join(ch["substitution_examples"]), 90)])
    if len(result.clusters) > 1:
        rows.append([Text("also copies"), cell(", ".join(m.cluster_id for m in result.clusters[1:])), cell("")])
    c.print(table(Text(f"lookup: {clean(result.query_id)}"), None, [("field", "id"), ("value", "id"), ("detail", "text")], rows))
    if result.passages:
        c.print(table(
            Text("evidence passages (other document | this text)"), None,
            [("kind", "id"), ("tokens", "num"), ("other", "text"), ("query", "text")],
            [[Text(p.kind), num(p.tokens), cell(p.other_text, 200), cell(p.query_text, 200)] for p in result.passages],
        ))


@app.command("lookup", epilog="\n\n".join(line for line in EXAMPLE.strip().splitlines() if line.strip()))
def lookup_command(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="A text file, '-' for standard input, or a .jsonl/.csv/.parquet table of queries (id, text).")],
    store: Annotated[Path, typer.Option("--store", help="A store written by `provenance run --store DIR`, or that run's --out folder (read only, never changed).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="'table' (for people) or 'json' (for scripts).")] = "table",
) -> None:
    """Is this text a version of something already in the store?  Its cluster, origin, parent, confidences, changes and evidence passages."""
    if fmt not in ("table", "json"):
        fail(f"--format must be table or json, got {fmt!r}")
    try:
        results = _results(file, store)
    except ProvenanceError as exc:
        fail(str(exc))
    except (pl.exceptions.PolarsError, OSError) as exc:
        fail(f"cannot read the store {store}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")
    if fmt == "json":
        print_json([r.to_dict() for r in results] if len(results) != 1 or file.lower().endswith(TABLES) else results[0].to_dict())
    else:
        for r in results:
            _show(r)
    if not any(r.status in ("matched", "stored") for r in results):
        raise typer.Exit(1)
