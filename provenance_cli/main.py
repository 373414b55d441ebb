"""The ``provenance`` command line.

``provenance run`` runs the pipeline as a Prefect flow (Prefect's temporary
local API, nothing to start by hand) or, with ``--engine local``, in-process
without Prefect.  A user's mistake (a missing path, an unknown format, a bad
option) prints one line and exits with status 2; never a traceback.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provenance import query
from provenance import report as html_report
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError
from provenance.ingest import preflight

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Near-duplicate clustering and provenance tracing for text.")
err = Console(stderr=True)
out = Console()
_D = PipelineConfig()


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.callback()
def _main() -> None:
    """Near-duplicate clustering and provenance tracing for text."""


@app.command()
def run(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Folders (.txt/.md, recursive) or .jsonl/.csv/.parquet tables. Default: seeds/")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder for the Parquet tables and run.json.")] = Path("data/output"),
    engine: Annotated[str, typer.Option(help="'prefect' (a Prefect flow run) or 'local' (no Prefect).")] = "prefect",
    word_ngram: Annotated[int, typer.Option(help="Word n-gram size of the words view.")] = _D.word_ngram,
    anchor_ngram: Annotated[int, typer.Option(help="n-gram size over anchor tokens (names, numbers).")] = _D.anchor_ngram,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations per view.")] = _D.num_perm,
    seed: Annotated[int, typer.Option(help="Seed of token hashing and MinHash permutations.")] = _D.seed,
    words_threshold: Annotated[float, typer.Option(help="LSH Jaccard threshold of the words view.")] = _D.words_threshold,
    anchors_threshold: Annotated[float, typer.Option(help="LSH Jaccard threshold of the anchors view.")] = _D.anchors_threshold,
    min_containment: Annotated[float, typer.Option(help="Verified pair: share of the smaller document found in the other.")] = _D.min_containment,
    min_jaccard: Annotated[float, typer.Option(help="Verified pair: minimum Jaccard of the best view.")] = _D.min_jaccard,
    bucket_window: Annotated[int, typer.Option(help="Neighbours paired per LSH bucket member.")] = _D.bucket_window,
    min_tokens: Annotated[int, typer.Option(help="Shorter documents are rejected as too_short.")] = _D.min_tokens,
    max_chars: Annotated[int, typer.Option(help="Longer documents are rejected as too_large.")] = _D.max_chars,
    id_column: Annotated[str, typer.Option(help="Id column of tabular inputs.")] = _D.id_column,
    text_column: Annotated[str, typer.Option(help="Text column of tabular inputs.")] = _D.text_column,
    batch_size: Annotated[int, typer.Option(help="Documents per batch (one task each in the prepare stage).")] = _D.batch_size,
    spill_over_mib: Annotated[int, typer.Option(help="Texts over this many MiB in all wait on disk while the middle stages run (same results, less memory).")] = _D.spill_over_mib,
    runner: Annotated[Optional[str], typer.Option(help="Task runner of the flow: 'threads' or 'dask' (default: $PROVENANCE_TASK_RUNNER or threads).")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster).")] = None,
    dask_workers: Annotated[Optional[int], typer.Option(help="Workers of the LocalCluster started for --runner dask.")] = None,
    store_dir: Annotated[Optional[Path], typer.Option("--store", help="Incremental store folder: add the inputs to it, redo only what they change; --out becomes a link to the store's tables.")] = None,
    wait: Annotated[float, typer.Option(help="With --store: seconds to wait for another run holding the store (default: exit at once).")] = 0.0,
) -> None:
    """Cluster documents, find each cluster's origin and derivation tree, write Parquet."""
    options: dict[str, Any] = {
        "word_ngram": word_ngram, "anchor_ngram": anchor_ngram, "num_perm": num_perm, "seed": seed,
        "words_threshold": words_threshold, "anchors_threshold": anchors_threshold,
        "min_containment": min_containment, "min_jaccard": min_jaccard, "bucket_window": bucket_window,
        "min_tokens": min_tokens, "max_chars": max_chars, "id_column": id_column, "text_column": text_column,
        "batch_size": batch_size, "spill_over_mib": spill_over_mib,
    }
    paths = list(inputs) if inputs else [Path("seeds")]
    try:
        from provenance import pipeline  # numba and datasketch load only for a run, not for queries

        config = pipeline.make_config(options)
        if engine not in ("prefect", "local"):
            raise ProvenanceError(f"--engine must be 'prefect' or 'local', got {engine!r}")
        if engine == "local" and (runner or dask_address or dask_workers):
            raise ProvenanceError("--runner, --dask-address and --dask-workers need --engine prefect")
        if wait < 0:
            raise ProvenanceError(f"--wait must be >= 0 seconds, got {wait}")
        preflight(paths, out_dir, config, store_dir=store_dir)
        if engine == "local":
            if store_dir is not None:
                from provenance import incremental

                result = incremental.run_with_store(paths, out_dir, store_dir, config, wait_seconds=wait)
            else:
                result = pipeline.run(paths, out_dir, config)
                html_report.write_report(out_dir)  # the flow writes it too (after its write task)
            counts = result.info["counts"]
        else:
            from flows.provenance_flow import flow_on

            the_flow = flow_on(runner, dask_address, dask_workers)
            counts = the_flow(
                inputs=[str(p) for p in paths], out=str(out_dir), options=options,
                store=str(store_dir) if store_dir is not None else None, wait=wait,
            )["counts"]
    except ProvenanceError as exc:
        fail(str(exc))
        return
    table = Table(title=f"provenance run -> {out_dir}", show_header=False)
    for key in ("documents", "rejected", "clusters", "multi_document_clusters", "edges"):
        table.add_row(key.replace("_", " "), str(counts[key]))
    table.add_row("report", str(out_dir / html_report.REPORT_NAME))
    out.print(table)


@app.command()
def serve(
    inputs: Annotated[Optional[list[Path]], typer.Option("--input", "-i", help="Input folder or table (repeatable). Default: seeds/")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of every run.")] = Path("data/output"),
    cron: Annotated[Optional[str], typer.Option(help="Cron schedule, e.g. '0 * * * *' (hourly).")] = None,
    interval: Annotated[Optional[float], typer.Option(help="Run every SECONDS instead of a cron schedule.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of --cron.")] = "UTC",
    name: Annotated[str, typer.Option(help="Deployment name (the deployment is provenance/NAME).")] = "scheduled",
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Pipeline option NAME=VALUE (repeatable), e.g. num_perm=256.")] = None,
    limit: Annotated[int, typer.Option(help="Runs executed at once by this process.")] = 1,
    store_dir: Annotated[Optional[Path], typer.Option("--store", help="Incremental store: each run adds what is new in the inputs (see README, 'Incremental runs').")] = None,
) -> None:
    """Serve the flow as a scheduled deployment on a running Prefect server (PREFECT_API_URL) until stopped."""
    try:
        from flows.serve import parse_options, serve as serve_flow  # imports Prefect only here

        serve_flow(
            list(inputs) if inputs else [Path("seeds")], out_dir, cron=cron, interval=interval, timezone=timezone,
            name=name, options=parse_options(option), limit=limit, store_dir=store_dir,
        )
    except ProvenanceError as exc:
        fail(str(exc))


# ---------------------------------------------------------------------------- querying the outputs
#
# ``origin``, ``cluster``, ``top``, ``find`` and ``diff`` read the Parquet outputs of
# ``provenance run --out DIR`` lazily (``provenance.query``); ``report`` writes
# ``DIR/report.html`` (``provenance.report``).  ``--format table`` is for people (rich),
# ``json`` and ``csv`` for scripts.  A missing folder or an unknown id: one line, exit 2.

OutOption = Annotated[Path, typer.Option("--out", help="Output folder written by `provenance run`.")]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="'table' (for people), 'json' or 'csv' (for scripts).")]
_FORMATS = ("table", "json", "csv")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@contextmanager
def _outputs(out_dir: Path, fmt: str = "table") -> Iterator[query.Outputs]:
    """The outputs in ``out_dir``; user errors and unreadable files become one line and exit 2."""
    if fmt not in _FORMATS:
        fail(f"--format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    try:
        yield query.open_outputs(out_dir)
    except ProvenanceError as exc:
        fail(str(exc))
    except (pl.exceptions.PolarsError, OSError) as exc:
        fail(f"cannot read the outputs in {out_dir}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")


def _clean(value: object, *, one_line: bool = True) -> str:
    """Document text made safe for a terminal: no control characters (escape sequences), optionally one line."""
    text = "" if value is None else str(value)
    if one_line:
        text = " ".join(text.split())
    return _CONTROL.sub("\ufffd", text)


def _cell(value: object, limit: int | None = None) -> Text:
    text = _clean(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text)  # a Text is never parsed as rich markup


def _table(title: str | Text, caption: str | None, columns: list[tuple[str, str]], rows: list[list[Any]]) -> Table:
    """A table that fits the terminal: ``id`` and ``num`` columns (right-aligned) keep their width and
    ``text`` columns share what is left, cut with an ellipsis, so every row stays one line high."""
    plain = lambda cell: cell.plain if isinstance(cell, Text) else str(cell)
    fixed = sum(max([len(h), *(len(plain(r[i])) for r in rows)]) + 3 for i, (h, kind) in enumerate(columns) if kind != "text")
    n_text = sum(1 for _, kind in columns if kind == "text")
    text_width = max(12, min(70, (_console().width - fixed - 4 - 3 * n_text) // max(n_text, 1)))
    table = Table(title=title, caption=caption)
    for header, kind in columns:
        if kind == "text":
            table.add_column(header, width=text_width, no_wrap=True, overflow="ellipsis")
        else:
            table.add_column(header, justify="right" if kind == "num" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _documents(n: int) -> str:
    return f"{n:,} document{'' if n == 1 else 's'}"


def _console() -> Console:
    """``out`` in a terminal; piped or captured, a console at least 140 columns wide, so tables stay readable in files."""
    return out if out.is_terminal else Console(width=max(out.width, 140), highlight=False)


def _num(value: object, digits: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _print_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " | ".join(map(str, v)) if isinstance(v, list) else "" if v is None else v for k, v in row.items()})


def _meta_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = rows[0].keys() if rows else ()
    return [(k, label) for k, label in (("published_at", "published"), ("publisher", "publisher")) if k in keys]


def _edge_cells(row: dict[str, Any]) -> list[str | Text]:
    if row.get("change_kind") is None:
        return [Text("origin", style="bold"), "", "", "", "", ""]
    return [
        Text(row["change_kind"], style=_KIND_STYLE.get(row["change_kind"], "")),
        _num(row["confidence"]), f"{row['kept']:,}/{row['parent_tokens']:,}", _num(row["substituted"]),
        _num(row["inserted"]), _num(row["deleted"]),
    ]


_KIND_STYLE = {"copy": "dim", "truncation": "blue", "excerpt": "cyan", "spin": "yellow", "paraphrase": "magenta",
               "insertion": "green", "mixed": "red"}
_EDGE_HEADERS = [("change", "id"), ("conf.", "num"), ("kept/of", "num"), ("subst.", "num"), ("ins.", "num"), ("del.", "num")]


@app.command("origin")
def origin_command(
    doc_id: Annotated[str, typer.Argument(help="A document id (doc_id).")],
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
) -> None:
    """The probable origin of a document, and the path to it with each edge's kind of change and confidence."""
    with _outputs(out_dir, fmt) as outputs:
        result = query.origin(outputs, doc_id)
    path = result["path"]
    if fmt == "json":
        return _print_json(result)
    if fmt == "csv":
        return _print_csv(path, ["step", "doc_id", "parent_id", "depth", "title", "source", *(k for k, _ in _meta_columns(path)),
                                 *query.EDGE_FIGURES])
    chain = Text()
    for i, step in enumerate(path):
        if i:
            chain.append("  ←  ", style="dim")
        chain.append(_clean(step["doc_id"]), style="bold" if i in (0, len(path) - 1) else "")
    if len(path) > 1:
        chain.append("  (origin)", style="dim")
    elif result["cluster_size"] > 1:
        chain.append(f"  is the probable origin of its cluster ({_documents(result['cluster_size'])})", style="dim")
    else:
        chain.append("  has no copy and no earlier version in these outputs", style="dim")
    _console().print(chain, soft_wrap=True)
    meta = _meta_columns(path)
    rows = [[_cell(step["doc_id"]), _cell(step["title"]), *(_cell(step[k], 24) for k, _ in meta), *_edge_cells(step)]
            for step in path]
    _console().print(_table(
        Text(f"Origin: {_clean(result['origin_id'])}  {_cell(result['origin_title'], 90).plain}"),
        f"cluster {result['cluster_id']} ({_documents(result['cluster_size'])}); path confidence "
        f"{result['path_confidence']:.2f} (product of the edges' confidences)",
        [("document", "id"), ("title", "text"), *((label, "id") for _, label in meta), *_EDGE_HEADERS],
        rows,
    ))


@app.command("cluster")
def cluster_command(
    key: Annotated[str, typer.Argument(help="A cluster id, or the id of one of its documents.")],
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
    limit: Annotated[int, typer.Option(help="Show at most this many members (0: all).")] = 0,
) -> None:
    """A cluster's members as an indented derivation tree with each edge's figures."""
    with _outputs(out_dir, fmt) as outputs:
        result = query.cluster(outputs, key)
    members, summary = result["members"], result["cluster"]
    shown = members[:limit] if limit > 0 else members
    if fmt == "json":
        return _print_json({"cluster": summary, "members": [{k: v for k, v in m.items() if k != "guide"} for m in shown]})
    meta = _meta_columns(members)
    if fmt == "csv":
        return _print_csv(shown, ["level", "doc_id", "parent_id", "depth", "title", "source", *(k for k, _ in meta),
                                  "n_tokens", "completeness", *query.EDGE_FIGURES])
    caption = (
        f"{_documents(summary.get('size', len(members)))}, depth {summary.get('max_depth', 0)}, "
        f"mean confidence {_num(summary.get('mean_confidence'))}, spun {100 * (summary.get('share_spun') or 0):.0f}%, "
        f"truncated {100 * (summary.get('share_truncated') or 0):.0f}%"
        + (f"; showing {len(shown)} of {len(members)} (--limit 0 for all)" if len(shown) < len(members) else "")
    )
    rows = []
    for m in shown:
        member = Text(m["guide"], style="dim")
        member.append(_clean(m["doc_id"]), style="bold" if m["level"] == 0 else "")
        rows.append([member, _cell(m["title"]), *_edge_cells(m), _num(m["spin_rate"]), *(_cell(m[k], 24) for k, _ in meta)])
    _console().print(_table(
        Text(f"Cluster {_clean(summary['cluster_id'])}: {_cell(summary.get('origin_title'), 90).plain}"), caption,
        [("member", "id"), ("title", "text"), *_EDGE_HEADERS, ("spin", "num"), *((label, "id") for _, label in meta)],
        rows,
    ))


@app.command("top")
def top_command(
    by: Annotated[str, typer.Option(help="size (documents), copies (direct copies of the origin), spin (spun copies) or depth (longest chain).")] = "size",
    limit: Annotated[int, typer.Option(help="How many clusters (0: all).")] = 10,
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
) -> None:
    """The largest, most copied, most spun or deepest clusters."""
    with _outputs(out_dir, fmt) as outputs:
        if by not in query.TOP_KEYS:
            fail(f"--by must be one of {', '.join(query.TOP_KEYS)}, got {by!r}")
        ranked = query.top(outputs, by, limit if limit > 0 else None)
    rows = ranked.to_dicts()
    if fmt == "json":
        return _print_json(rows)
    if fmt == "csv":
        return _print_csv(rows, ranked.columns)
    if not rows:
        out.print("No document has a copy in these outputs.")
        return
    cells = [
        [str(rank), r["cluster_id"], _num(r["size"]), _num(r["copies"]), _num(r["spun"]), _num(r["max_depth"]),
         f"{100 * r['share_spun']:.0f}", f"{100 * r['share_truncated']:.0f}", _num(r["mean_confidence"]), _cell(r["origin_title"])]
        for rank, r in enumerate(rows, 1)
    ]
    _console().print(_table(f"Top clusters by {by}", f"{by}: {query.TOP_KEYS[by]}", [
        ("#", "num"), ("cluster", "id"), ("size", "num"), ("copies", "num"), ("spun", "num"), ("depth", "num"),
        ("spun %", "num"), ("trunc. %", "num"), ("conf.", "num"), ("origin title", "text"),
    ], cells))


@app.command("find")
def find_command(
    phrase: Annotated[str, typer.Argument(help="Text to look for; case, white space, quotes and dashes are ignored.")],
    limit: Annotated[int, typer.Option(help="Show at most this many clusters (0: all).")] = 20,
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
) -> None:
    """The clusters whose documents contain a phrase (exit 1 when none does)."""
    with _outputs(out_dir, fmt) as outputs:
        found, total = query.find(outputs, phrase, limit if limit > 0 else None)
    rows = found.to_dicts()
    if fmt == "json":
        _print_json({"phrase": phrase, "total": total, "clusters": rows})
    elif fmt == "csv":
        _print_csv(rows, found.columns)
    elif rows:
        cells = [[r["cluster_id"], _num(r["size"]), _num(r["matches"]), _cell(r["origin_title"]), _cell(r["first_match"]),
                  _snippet(r["snippet"], phrase)] for r in rows]
        _console().print(_table(
            Text(f"Clusters with “{_clean(phrase)[:60]}”: {total:,}"),
            f"showing {len(rows)} of {total:,} (--limit 0 for all)" if len(rows) < total else None,
            [("cluster", "id"), ("size", "num"), ("matches", "num"), ("origin title", "text"), ("first match", "id"),
             ("snippet", "text")],
            cells,
        ))
    if not rows:
        err.print(Text(f"no document contains “{_clean(phrase)}”"))
        raise typer.Exit(1)


def _snippet(snippet: str | None, phrase: str) -> Text:
    """The snippet from a few words before the match on, the match in bold."""
    text = _clean(snippet)
    try:
        match = re.search(query.phrase_pattern(phrase), text)
    except re.error:
        match = None
    if not match:
        return Text(text)
    start = max(0, text.rfind(" ", 0, max(0, match.start() - 20)) + 1)
    shown = Text("…" if start else "")
    shown.append(text[start:match.start()])
    shown.append(text[match.start():match.end()], style="bold")
    shown.append(text[match.end():] + "…")
    return shown


def _collapse(text: str, context: int, head: bool, tail: bool) -> list[tuple[str, str]]:
    """An unchanged run shortened to ``context`` words each side of the changes around it."""
    words = re.findall(r"\S+\s*|\s+", text)
    keep_head, keep_tail = (context if head else 0), (context if tail else 0)
    if context < 0 or len(words) <= keep_head + keep_tail + 3:
        return [(text, "")]
    cut = len(words) - keep_head - keep_tail
    middle = "…" if not keep_head or not keep_tail else " … "
    return [("".join(words[:keep_head]), ""), (f"{middle}[{cut:,} unchanged words]{' ' if keep_tail else ''}", "dim italic"),
            ("".join(words[len(words) - keep_tail:]) if keep_tail else "\n" if "\n" in text else "", "")]


def _diff_text(alignment: query.Alignment, context: int) -> Text:
    body, segments, i = Text(), alignment.segments, 0
    while i < len(segments):
        seg = segments[i]
        if seg.op == query.EQUAL:
            j = i
            while j < len(segments) and segments[j].op == query.EQUAL:
                j += 1
            run = "".join(s.child for s in segments[i:j])
            for part, style in _collapse(run, context, head=i > 0, tail=j < len(segments)):
                body.append(_clean(part, one_line=False), style=style)
            i = j
            continue
        for marks, side, style in (("[-", "parent", "bold red strike"), ("{+", "child", "bold green")):
            text = getattr(seg, side)
            if not text:
                continue
            if seg.op == query.SUBSTITUTE:
                style = "bold yellow strike" if side == "parent" else "bold yellow"
            core = text.rstrip()
            body.append(f"{marks}{_clean(core, one_line=False)}{marks[::-1].replace('[', ']').replace('{', '}')}", style=style)
            if side == "child" or seg.op == query.DELETE:
                body.append(_clean(text[len(core):], one_line=False))
        i += 1
    return body


@app.command("diff")
def diff_command(
    parent_id: Annotated[str, typer.Argument(help="The earlier version (usually the parent_id of an edge).")],
    child_id: Annotated[str, typer.Argument(help="The copy.")],
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
    context: Annotated[int, typer.Option(help="Unchanged words shown around each change (-1: the whole text).")] = 12,
) -> None:
    """The aligned change from one document to another: [-deleted-] {+inserted+}, substitutions in yellow."""
    with _outputs(out_dir, fmt) as outputs:
        result = query.diff(outputs, parent_id, child_id)
    alignment: query.Alignment = result["alignment"]
    if fmt == "json":
        return _print_json({
            "parent": result["parent"], "child": result["child"], "edge": result["edge"], "counts": alignment.counts,
            "capped": alignment.capped, "segments": [{"op": s.op, "parent": s.parent, "child": s.child, "tokens": s.tokens}
                                                     for s in alignment.segments],
        })
    if fmt == "csv":
        return _print_csv([{"op": s.op, "parent": s.parent, "child": s.child, "tokens": s.tokens} for s in alignment.segments],
                          ["op", "tokens", "parent", "child"])
    edge, counts = result["edge"], alignment.counts
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("parent", _cell(f"{parent_id}  {result['parent']['title'] or ''}", 110))
    head.add_row("copy", _cell(f"{child_id}  {result['child']['title'] or ''}", 110))
    if edge:
        head.add_row("edge", Text(f"{edge['change_kind']}, confidence {edge['confidence']:.2f}, spin rate {edge['spin_rate']:.2f}"
                                  + (", truncated" if edge["is_truncation"] else "")))
        if edge["substitution_examples"]:
            head.add_row("examples", _cell(", ".join(edge["substitution_examples"])))
    else:
        head.add_row("edge", Text("not a tree edge (the copy's parent is another document); aligned anyway", style="dim"))
    head.add_row("tokens", f"kept {counts['kept']:,} of {counts['parent_tokens']:,}, substituted {counts['substituted']:,}, "
                           f"inserted {counts['inserted']:,}, deleted {counts['deleted']:,}")
    out.print(head)
    out.print(Text("[-deleted-]", style="bold red strike") + Text("  ") + Text("{+inserted+}", style="bold green") + Text("  ")
              + Text("[-old-]{+new+} substituted", style="bold yellow"), highlight=False)
    out.rule(style="dim")
    out.print(_diff_text(alignment, context), highlight=False, soft_wrap=False)
    if alignment.capped:
        out.print(Text(f"(aligned the first {result['max_tokens']:,} tokens of each text)", style="dim"))


@app.command("report")
def report_command(
    out_dir: OutOption = Path("data/output"),
    path: Annotated[Optional[Path], typer.Option("--file", help="Where to write the page. Default: OUT/report.html")] = None,
    diffs: Annotated[int, typer.Option(help="Edges whose aligned texts are embedded, in all.")] = html_report.DIFF_EDGES,
    diffs_per_cluster: Annotated[int, typer.Option(help="... and per cluster (those nearest the origin).")] = html_report.DIFF_EDGES_PER_CLUSTER,
) -> None:
    """Write OUT/report.html: cluster index, derivation trees and highlighted diffs in one offline HTML file."""
    with _outputs(out_dir) as outputs:
        info = html_report.write_report(outputs.out_dir, path, diff_edges=diffs, diff_edges_per_cluster=diffs_per_cluster)
    out.print(Text(f"wrote {info.path} ({info.bytes / 1e6:.1f} MB): {info.clusters:,} clusters with copies, aligned texts "
                   f"for {info.diff_edges:,} of {info.edges:,} edges, in {info.seconds:.1f} s"), soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except ProvenanceError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
