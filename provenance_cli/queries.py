"""The questions asked of a run's outputs: ``origin``, ``cluster``, ``top``, ``find``, ``diff``, and ``report``.

They read the Parquet outputs of ``provenance run --out DIR`` lazily
(``provenance.query``); ``report`` writes ``DIR/report.html`` (``provenance.report``).
``--format table`` is for people (rich), ``json`` and ``csv`` for scripts.  A
missing folder or an unknown id: one line, exit 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from provenance import query
from provenance import report as html_report
from provenance.config import ReportOptions
from provenance_cli.console import (
    EDGE_HEADERS, FormatOption, OutOption, app, cell, clean, console, documents, edge_cells, err, fail, meta_columns,
    num, out, outputs, print_csv, print_json, table,
)


@app.command("origin")
def origin_command(
    doc_id: Annotated[str, typer.Argument(help="A document id (doc_id).")],
    out_dir: OutOption = Path("data/output"),
    fmt: FormatOption = "table",
) -> None:
    """The probable origin of a document, and the path to it with each edge's kind of change and confidence."""
    with outputs(out_dir, fmt) as found:
        result = query.origin(found, doc_id)
    path = result["path"]
    if fmt == "json":
        return print_json(result)
    if fmt == "csv":
        return print_csv(path, ["step", "doc_id", "parent_id", "depth", "title", "source", *(k for k, _ in meta_columns(path)),
                                 *query.EDGE_FIGURES])
    chain = Text()
    for i, step in enumerate(path):
        if i:
            chain.append("  ←  ", style="dim")
        chain.append(clean(step["doc_id"]), style="bold" if i in (0, len(path) - 1) else "")
    if len(path) > 1:
        chain.append("  (origin)", style="dim")
    elif result["cluster_size"] > 1:
        chain.append(f"  is the probable origin of its cluster ({documents(result['cluster_size'])})", style="dim")
    else:
        chain.append("  has no copy and no earlier version in these outputs", style="dim")
    console().print(chain, soft_wrap=True)
    meta = meta_columns(path)
    rows = [[cell(step["doc_id"]), cell(step["title"]), *(cell(step[k], 24) for k, _ in meta), *edge_cells(step)]
            for step in path]
    console().print(table(
        Text(f"Origin: {clean(result['origin_id'])}  {cell(result['origin_title'], 90).plain}"),
        f"cluster {result['cluster_id']} ({documents(result['cluster_size'])}); path confidence "
        f"{result['path_confidence']:.2f} (product of the edges' confidences)",
        [("document", "id"), ("title", "text"), *((label, "id") for _, label in meta), *EDGE_HEADERS],
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
    with outputs(out_dir, fmt) as found:
        result = query.cluster(found, key)
    members, summary = result["members"], result["cluster"]
    shown = members[:limit] if limit > 0 else members
    if fmt == "json":
        return print_json({"cluster": summary, "members": [{k: v for k, v in m.items() if k != "guide"} for m in shown]})
    meta = meta_columns(members)
    if fmt == "csv":
        return print_csv(shown, ["level", "doc_id", "parent_id", "depth", "title", "source", *(k for k, _ in meta),
                                  "n_tokens", "completeness", *query.EDGE_FIGURES])
    caption = (
        f"{documents(summary.get('size', len(members)))}, depth {summary.get('max_depth', 0)}, "
        f"mean confidence {num(summary.get('mean_confidence'))}, spun {100 * (summary.get('share_spun') or 0):.0f}%, "
        f"truncated {100 * (summary.get('share_truncated') or 0):.0f}%"
        + (f"; showing {len(shown)} of {len(members)} (--limit 0 for all)" if len(shown) < len(members) else "")
    )
    rows = []
    for m in shown:
        member = Text(m["guide"], style="dim")
        member.append(clean(m["doc_id"]), style="bold" if m["level"] == 0 else "")
        rows.append([member, cell(m["title"]), *edge_cells(m), num(m["spin_rate"]), *(cell(m[k], 24) for k, _ in meta)])
    console().print(table(
        Text(f"Cluster {clean(summary['cluster_id'])}: {cell(summary.get('origin_title'), 90).plain}"), caption,
        [("member", "id"), ("title", "text"), *EDGE_HEADERS, ("spin", "num"), *((label, "id") for _, label in meta)],
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
    with outputs(out_dir, fmt) as found:
        if by not in query.TOP_KEYS:
            fail(f"--by must be one of {', '.join(query.TOP_KEYS)}, got {by!r}")
        ranked = query.top(found, by, limit if limit > 0 else None)
    rows = ranked.to_dicts()
    if fmt == "json":
        return print_json(rows)
    if fmt == "csv":
        return print_csv(rows, ranked.columns)
    if not rows:
        out.print("No document has a copy in these outputs.")
        return
    cells = [
        [str(rank), r["cluster_id"], num(r["size"]), num(r["copies"]), num(r["spun"]), num(r["max_depth"]),
         f"{100 * r['share_spun']:.0f}", f"{100 * r['share_truncated']:.0f}", num(r["mean_confidence"]), cell(r["origin_title"])]
        for rank, r in enumerate(rows, 1)
    ]
    console().print(table(f"Top clusters by {by}", f"{by}: {query.TOP_KEYS[by]}", [
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
    with outputs(out_dir, fmt) as found:
        found, total = query.find(found, phrase, limit if limit > 0 else None)
    rows = found.to_dicts()
    if fmt == "json":
        print_json({"phrase": phrase, "total": total, "clusters": rows})
    elif fmt == "csv":
        print_csv(rows, found.columns)
    elif rows:
        cells = [[r["cluster_id"], num(r["size"]), num(r["matches"]), cell(r["origin_title"]), cell(r["first_match"]),
                  _snippet(r["snippet"], phrase)] for r in rows]
        console().print(table(
            Text(f"Clusters with “{clean(phrase)[:60]}”: {total:,}"),
            f"showing {len(rows)} of {total:,} (--limit 0 for all)" if len(rows) < total else None,
            [("cluster", "id"), ("size", "num"), ("matches", "num"), ("origin title", "text"), ("first match", "id"),
             ("snippet", "text")],
            cells,
        ))
    if not rows:
        err.print(Text(f"no document contains “{clean(phrase)}”"))
        raise typer.Exit(1)


def _snippet(snippet: str | None, phrase: str) -> Text:
    """The snippet from a few words before the match on, the match in bold."""
    text = clean(snippet)
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
                body.append(clean(part, one_line=False), style=style)
            i = j
            continue
        for marks, side, style in (("[-", "parent", "bold red strike"), ("{+", "child", "bold green")):
            text = getattr(seg, side)
            if not text:
                continue
            if seg.op == query.SUBSTITUTE:
                style = "bold yellow strike" if side == "parent" else "bold yellow"
            core = text.rstrip()
            body.append(f"{marks}{clean(core, one_line=False)}{marks[::-1].replace('[', ']').replace('{', '}')}", style=style)
            if side == "child" or seg.op == query.DELETE:
                body.append(clean(text[len(core):], one_line=False))
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
    with outputs(out_dir, fmt) as found:
        result = query.diff(found, parent_id, child_id)
    alignment: query.Alignment = result["alignment"]
    if fmt == "json":
        return print_json({
            "parent": result["parent"], "child": result["child"], "edge": result["edge"], "counts": alignment.counts,
            "capped": alignment.capped, "segments": [{"op": s.op, "parent": s.parent, "child": s.child, "tokens": s.tokens}
                                                     for s in alignment.segments],
            "passages": result["passages"],
        })
    if fmt == "csv":
        return print_csv([{"op": s.op, "parent": s.parent, "child": s.child, "tokens": s.tokens} for s in alignment.segments],
                          ["op", "tokens", "parent", "child"])
    edge, counts = result["edge"], alignment.counts
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("parent", cell(f"{parent_id}  {result['parent']['title'] or ''}", 110))
    head.add_row("copy", cell(f"{child_id}  {result['child']['title'] or ''}", 110))
    if edge:
        head.add_row("edge", Text(f"{edge['change_kind']}, confidence {edge['confidence']:.2f} (copy {edge['copy_confidence']:.2f}"
                                  f" x parent {edge['parent_confidence']:.2f}), spin rate {edge['spin_rate']:.2f}"
                                  + (", truncated" if edge["is_truncation"] else "")))
        if edge["substitution_examples"]:
            head.add_row("examples", cell(", ".join(edge["substitution_examples"])))
    else:
        head.add_row("edge", Text("not a tree edge (the copy's parent is another document); aligned anyway", style="dim"))
    head.add_row("tokens", f"kept {counts['kept']:,} of {counts['parent_tokens']:,}, substituted {counts['substituted']:,}, "
                           f"inserted {counts['inserted']:,}, deleted {counts['deleted']:,}")
    out.print(head)
    if result["passages"]:
        table = Table(title="evidence of copying: aligned passages", title_justify="left", box=None)
        for name in ("kind", "words", "similarity", "parent chars", "copy chars", "copy text"):
            table.add_column(name, overflow="fold")
        for p in result["passages"]:
            table.add_row(p["kind"], str(p["tokens"]), f"{p['similarity']:.2f}", f"{p['parent_start']}-{p['parent_end']}",
                          f"{p['child_start']}-{p['child_end']}", cell(p["child_text"].replace("\n", " "), 70))
        out.print(table)
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
    diffs: Annotated[Optional[int], typer.Option(help="Edges whose aligned texts are embedded, in all (default: the run's diff_edges).")] = None,
    diffs_per_cluster: Annotated[Optional[int], typer.Option(help="... and per cluster, those nearest the origin (default: the run's diff_edges_per_cluster).")] = None,
) -> None:
    """Write OUT/report.html: cluster index, derivation trees and highlighted diffs in one offline HTML file."""
    with outputs(out_dir) as found:
        options = found.config().report
        changes = {k: v for k, v in (("diff_edges", diffs), ("diff_edges_per_cluster", diffs_per_cluster)) if v is not None}
        info = html_report.write_report(found.out_dir, path, ReportOptions.model_validate({**options.model_dump(), **changes}))
    out.print(Text(f"wrote {info.path} ({info.bytes / 1e6:.1f} MB): {info.clusters:,} clusters with copies, aligned texts "
                   f"for {info.diff_edges:,} of {info.edges:,} edges, in {info.seconds:.1f} s"), soft_wrap=True)


