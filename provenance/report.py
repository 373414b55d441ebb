"""``report.html``: one self-contained page to look at a run's clusters, trees and changes.

:func:`write_report` reads the Parquet outputs of ``provenance run --out DIR``
(lazily, with :mod:`provenance.query`) and writes ``DIR/report.html``: one
file, inline CSS and JavaScript, no network (a Content-Security-Policy with
``default-src 'none'`` enforces it), that shows

* an index of the clusters with copies (size, direct copies, depth, share of
  spun and truncated copies, mean confidence, origin title and date),
  sortable, filterable and paginated;
* for the selected cluster its derivation tree drawn as SVG: nodes labelled
  with title, publisher (or source file) and date, edges with their kind of
  change and confidence, plus every member with its edge figures;
* for the selected edge the parent and child text side by side, aligned, with
  insertions, deletions and substitutions highlighted.

Staying usable at thousands of clusters: the page embeds compact JSON, one
``<script type="application/json">`` block per cluster, and renders a
cluster only when it is opened (nothing is parsed up front but the index).
Aligned texts are the bulk of the size, so they are embedded for the first
:data:`DIFF_EDGES_PER_CLUSTER` edges (nearest the origin) of each cluster,
largest clusters first, up to :data:`DIFF_EDGES` edges and
:data:`DIFF_CHARS` characters in all; for any other edge the page shows the
``provenance diff`` command that prints it.  Trees with more than
``TREE_DRAW_LIMIT`` (300) members draw the 300 nearest the origin; the member
table below lists all.

Document text is untrusted.  The page never builds HTML from it: the script
inserts it with ``textContent``, the JSON blocks escape ``<``, ``>`` and ``&``
(so ``</script>`` or ``<!--`` inside a title cannot end a block), the few
values rendered by Python are HTML-escaped, and the policy only runs the two
inline scripts whose hashes it lists, so an injected ``<script>`` or
``onerror=`` handler would not run even if one slipped through.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from provenance import query
from provenance.errors import ProvenanceError

#: Edges whose aligned texts are embedded, in all (largest clusters first).
DIFF_EDGES = 1000
#: ... and per cluster (the edges nearest the origin).
DIFF_EDGES_PER_CLUSTER = 25
#: ... and characters of embedded JSON for them, in all (a few long documents cannot blow the page up).
DIFF_CHARS = 20_000_000
#: Titles are cut to this many characters in the embedded data.
TITLE_CHARS = 160
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class ReportInfo:
    """What :func:`write_report` wrote."""

    path: Path
    bytes: int
    clusters: int
    edges: int
    diff_edges: int
    seconds: float


# ---------------------------------------------------------------------------- data


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left."""
    return _escape_json(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def _escape_json(text: str) -> str:
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _escape_json_expr(expr: pl.Expr) -> pl.Expr:
    for char, code in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        expr = expr.str.replace_all(char, code, literal=True)
    return expr


def _index(out: query.Outputs) -> pl.DataFrame:
    """Multi-document clusters, largest first, with ``ci`` (their position) and the origin's date."""
    overview = query.overview(out).sort(["size", "cluster_id"], descending=[True, False])
    dates = [e for e in out.meta_columns() if e.meta.output_name() == "published_at"]
    if dates:
        origin_dates = out.documents.filter(pl.col("is_origin")).select(pl.col("doc_id").alias("origin_id"), *dates)
        overview = overview.join(origin_dates, on="origin_id", how="left", maintain_order="left")
    else:
        overview = overview.with_columns(pl.lit(None, pl.String).alias("published_at"))
    return overview.collect().with_row_index("ci")


def _nodes(out: query.Outputs, index: pl.DataFrame) -> pl.DataFrame:
    """Every member of the indexed clusters, ordered by (cluster, depth, doc_id), with ``k`` (its position
    in its cluster), ``pk`` (its parent's) and the figures of its incoming edge."""
    meta = out.meta_columns()
    names = [e.meta.output_name() for e in meta]
    label = pl.coalesce(pl.col("publisher"), pl.col("source")) if "publisher" in names else pl.col("source")
    docs = (
        out.documents.select(
            "doc_id", "cluster_id", "parent_id", "depth", pl.col("title").str.slice(0, TITLE_CHARS), "source", *meta,
            "n_tokens",
        )
        .join(index.lazy().select("cluster_id", "ci"), on="cluster_id", how="inner")
        .with_columns(label.fill_null("").alias("label"))
    )
    if "published_at" not in names:
        docs = docs.with_columns(pl.lit(None, pl.String).alias("published_at"))
    edges = out.edges.select(pl.col("child_id").alias("doc_id"), *query.EDGE_FIGURES)
    nodes = (
        docs.join(edges, on="doc_id", how="left")
        .sort("ci", "depth", "doc_id")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over("ci").alias("k"))
    )
    parents = nodes.select("ci", pl.col("doc_id").alias("parent_id"), pl.col("k").alias("pk"))
    return nodes.join(parents, on=["ci", "parent_id"], how="left").sort("ci", "k").collect()


def _tree_payloads(nodes: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """One JSON object per cluster (columnar: arrays indexed by member position), built in polars."""
    labels = nodes["label"].unique(maintain_order=True)
    coded = nodes.with_columns(pl.col("label").replace_strict(labels, pl.int_range(len(labels), eager=True)).alias("s"))
    r3 = lambda name: pl.col(name).round(3)
    payload = coded.group_by("ci", maintain_order=True).agg(
        pl.col("doc_id").alias("id"),
        pl.col("title").alias("t"),
        pl.col("s"),
        pl.col("published_at").alias("d"),
        pl.col("pk").fill_null(-1).alias("p"),
        pl.col("n_tokens").alias("n"),
        pl.col("change_kind").alias("k"),
        r3("confidence").alias("c"),
        r3("similarity").alias("sim"),
        pl.col("kept").alias("ke"),
        pl.col("inserted").alias("in"),
        pl.col("deleted").alias("de"),
        pl.col("substituted").alias("su"),
        pl.col("parent_tokens").alias("pt"),
        pl.col("child_tokens").alias("ct"),
        r3("spin_rate").alias("sp"),
        pl.col("is_truncation").alias("tr"),
        pl.col("boilerplate_lines_added").alias("bl"),
        pl.col("sentences_reordered").alias("mv"),
        pl.col("substitution_examples").alias("x"),
    )
    encoded = payload.select("ci", _escape_json_expr(pl.struct(pl.exclude("ci")).struct.json_encode()).alias("json"))
    return encoded, labels.to_list()


_OPS = {query.EQUAL: "=", query.INSERT: "+", query.DELETE: "-", query.SUBSTITUTE: "~"}


def _segments_json(alignment: query.Alignment) -> list[list[str]]:
    out = []
    for seg in alignment.segments:
        if seg.op == query.EQUAL:
            out.append(["=", seg.child] if seg.child == seg.parent else ["=", seg.child, seg.parent])
        elif seg.op == query.SUBSTITUTE:
            out.append(["~", seg.parent, seg.child])
        elif seg.op == query.DELETE:
            out.append(["-", seg.parent])
        else:
            out.append(["+", seg.child])
    return out


def _diff_payloads(
    out: query.Outputs, nodes: pl.DataFrame, *, max_edges: int, per_cluster: int, max_chars: int
) -> dict[int, tuple[str, int]]:
    """Per cluster: JSON ``{member position: {"s": segments, "cap": bool}}`` for the chosen edges, and their number."""
    if max_edges <= 0 or per_cluster <= 0:
        return {}
    chosen = (
        nodes.filter(pl.col("pk").is_not_null())
        .with_columns(pl.int_range(pl.len()).over("ci").alias("rank"))
        .filter(pl.col("rank") < per_cluster)
        .head(max_edges)
        .select("ci", "k", "doc_id", "parent_id")
    )
    if chosen.is_empty():
        return {}
    wanted = pl.concat([chosen["doc_id"], chosen["parent_id"]]).unique()
    texts = dict(
        out.documents.filter(pl.col("doc_id").is_in(wanted.to_list())).select("doc_id", "text").collect().iter_rows()
    )
    payloads: dict[int, tuple[str, int]] = {}
    used = 0
    for (ci,), group in chosen.group_by("ci", maintain_order=True):
        pairs = [(texts[p] or "", texts[c] or "") for p, c in zip(group["parent_id"], group["doc_id"])]
        alignments = query.align_texts(pairs)
        body = script_json(
            {str(k): {"s": _segments_json(a), "cap": a.capped} for k, a in zip(group["k"].to_list(), alignments)}
        )
        if payloads and used + len(body) > max_chars:
            break
        payloads[int(ci)] = (body, len(alignments))
        used += len(body)
    return payloads


def _counts(out: query.Outputs) -> dict[str, Any]:
    clusters = out.clusters.select(pl.len().alias("clusters"), (pl.col("size") > 1).sum().alias("multi"),
                                   pl.col("size").filter(pl.col("size") == 1).len().alias("singletons")).collect()
    counts = {
        "documents": out.documents.select(pl.len()).collect().item(),
        "edges": out.edges.select(pl.len()).collect().item(),
        **clusters.row(0, named=True),
    }
    rejects = out.out_dir / "rejects.parquet"
    counts["rejected"] = pl.scan_parquet(rejects).select(pl.len()).collect().item() if rejects.is_file() else None
    return counts


def _run_info(out: query.Outputs) -> dict[str, Any]:
    try:
        info = json.loads((out.out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"inputs": info.get("inputs"), "version": (info.get("versions") or {}).get("provenance")}


# ---------------------------------------------------------------------------- page


def render_report(
    out: query.Outputs,
    *,
    diff_edges: int = DIFF_EDGES,
    diff_edges_per_cluster: int = DIFF_EDGES_PER_CLUSTER,
    diff_chars: int = DIFF_CHARS,
) -> tuple[str, dict[str, int]]:
    """The report page for ``out`` and its figures (``clusters``, ``edges``, ``diff_edges``)."""
    index = _index(out)
    nodes = _nodes(out, index)
    trees, labels = _tree_payloads(nodes)
    diffs = _diff_payloads(out, nodes, max_edges=diff_edges, per_cluster=diff_edges_per_cluster, max_chars=diff_chars)
    diff_counts = {ci: n for ci, (_, n) in diffs.items()}
    counts = _counts(out)
    run = _run_info(out)
    r3 = lambda name: index[name].round(3).to_list()
    index_json = script_json({
        "id": index["cluster_id"].to_list(),
        "size": index["size"].to_list(),
        "copies": index["copies"].to_list(),
        "depth": index["max_depth"].to_list(),
        "spun": r3("share_spun"),
        "trunc": r3("share_truncated"),
        "conf": r3("mean_confidence"),
        "title": index["origin_title"].str.slice(0, TITLE_CHARS).to_list(),
        "origin": index["origin_id"].to_list(),
        "date": index["published_at"].to_list(),
        "diffs": [diff_counts.get(i, 0) for i in range(index.height)],
    })
    embedded = sum(diff_counts.values())
    meta = {
        "out_dir": str(out.out_dir),
        "counts": counts,
        "labels": labels,
        "inputs": run.get("inputs") or [],
        "version": run.get("version"),
        "embedded_diffs": embedded,
        "caps": {"edges": diff_edges, "per_cluster": diff_edges_per_cluster, "chars": diff_chars},
    }
    parts = [
        f'<script type="application/json" id="meta">{script_json(meta)}</script>',
        f'<script type="application/json" id="index">{index_json}</script>',
    ]
    parts.extend(f'<script type="application/json" id="t{ci}">{body}</script>' for ci, body in trees.iter_rows())
    parts.extend(f'<script type="application/json" id="d{ci}">{body}</script>' for ci, (body, _) in diffs.items())
    page = _page(str(out.out_dir), counts, "\n".join(parts))
    return page, {"clusters": index.height, "edges": counts["edges"], "diff_edges": embedded}


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def _page(out_dir: str, counts: dict[str, Any], data: str) -> str:
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(_ERROR_TRAP)} {_csp_hash(_APP)}; "
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )
    title = html.escape(f"provenance report: {out_dir}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>{_ERROR_TRAP}</script>
<style>{_CSS}</style>
</head>
<body>
<header class="top">
  <h1>provenance <span class="muted">report</span></h1>
  <div id="summary" class="summary">{html.escape(f"{counts['documents']:,} documents, {counts['multi']:,} clusters with copies")}</div>
</header>
<main>
  <section id="index-pane" aria-label="clusters">
    <div class="toolbar">
      <input id="filter" type="search" placeholder="Filter by title or id" aria-label="filter clusters">
      <span id="count" class="muted"></span>
    </div>
    <div class="scroll"><table id="index-table" class="grid"><thead><tr id="index-head"></tr></thead><tbody id="index-body"></tbody></table></div>
    <div class="pager"><button id="prev" type="button">&#8592; prev</button><span id="page" class="muted"></span><button id="next" type="button">next &#8594;</button></div>
    <div id="run" class="run muted"></div>
  </section>
  <section id="detail" aria-live="polite"><p class="muted">Loading&#8230;</p></section>
</main>
<noscript><p class="noscript">This report draws its tables, trees and diffs with JavaScript; please allow scripts for this file.</p></noscript>
{data}
<script>{_APP}</script>
</body>
</html>
"""


def _write_atomic(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    out_dir: str | Path,
    path: str | Path | None = None,
    *,
    diff_edges: int = DIFF_EDGES,
    diff_edges_per_cluster: int = DIFF_EDGES_PER_CLUSTER,
    diff_chars: int = DIFF_CHARS,
) -> ReportInfo:
    """Write the report of the outputs in ``out_dir`` to ``path`` (default ``out_dir/report.html``), atomically."""
    start = time.perf_counter()
    out = query.open_outputs(out_dir)
    target = Path(path) if path is not None else out.out_dir / REPORT_NAME
    page, figures = render_report(
        out, diff_edges=diff_edges, diff_edges_per_cluster=diff_edges_per_cluster, diff_chars=diff_chars
    )
    try:
        _write_atomic(page, target)
    except OSError as exc:
        raise ProvenanceError(f"cannot write {target}: {exc.strerror}") from None
    return ReportInfo(target, len(page.encode("utf-8")), figures["clusters"], figures["edges"], figures["diff_edges"],
                      round(time.perf_counter() - start, 3))


# ---------------------------------------------------------------------------- inline assets

_ERROR_TRAP = (
    "window.__reportErrors=[];"
    "function __reportError(m){window.__reportErrors.push(String(m));"
    "document.documentElement.setAttribute('data-js-errors',window.__reportErrors.join(' | '));}"
    "window.addEventListener('error',function(e){__reportError(e.message||e);});"
    "window.addEventListener('unhandledrejection',function(e){__reportError(e.reason);});"
)

_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--accent:#0969da;--sel:#ddf4ff;
--ins:#dafbe1;--ins-fg:#116329;--del:#ffebe9;--del-fg:#a40e26;--sub:#fff1c2;--sub-fg:#7d4e00;
--copy:#8c959f;--truncation:#0969da;--excerpt:#1b7c83;--spin:#bc4c00;--paraphrase:#8250df;--insertion:#1a7f37;--mixed:#cf222e}
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
h1{font-size:18px;margin:0}h2{font-size:17px;margin:0 0 4px}h3{font-size:14px;margin:18px 0 6px}
.muted{color:var(--muted)}
header.top{display:flex;gap:18px;align-items:baseline;padding:10px 18px;border-bottom:1px solid var(--line);background:var(--bg)}
.summary{color:var(--muted)}
main{display:grid;grid-template-columns:minmax(440px,37%) 1fr;height:calc(100% - 49px)}
#index-pane{border-right:1px solid var(--line);display:flex;flex-direction:column;min-height:0}
#detail{overflow:auto;padding:14px 20px 40px;min-width:0}
.toolbar{display:flex;gap:10px;align-items:center;padding:8px 10px}
.toolbar input{flex:1;padding:5px 8px;border:1px solid var(--line);border-radius:6px;font:inherit}
.scroll{overflow:auto;flex:1;min-height:0}
table.grid{border-collapse:collapse;width:100%}
.grid th,.grid td{padding:4px 5px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
.grid th{position:sticky;top:0;background:#fff;z-index:1;font-weight:600;white-space:nowrap;border-bottom:1px solid var(--line)}
.grid th button{all:unset;cursor:pointer}.grid th button:focus-visible{outline:2px solid var(--accent)}
.grid th[aria-sort=ascending] button::after{content:" \\25B2";font-size:10px}
.grid th[aria-sort=descending] button::after{content:" \\25BC";font-size:10px}
.grid td.num,.grid th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid tbody tr{cursor:pointer}.grid tbody tr:hover{background:var(--bg)}
.grid tbody tr.sel{background:var(--sel)}
.ttl{max-width:300px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.grid td.fill{width:100%;max-width:0}.grid td.fill .ttl{max-width:none}
.grid td.fill .sub-line{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sub-line{font-size:12px;color:var(--muted)}
.bar{display:inline-block;width:34px;height:6px;background:#eaeef2;border-radius:3px;margin-right:4px;vertical-align:middle;overflow:hidden}
.bar>i{display:block;height:100%}
.bar.spun>i{background:var(--spin)}.bar.trunc>i{background:var(--truncation)}
.pager{display:flex;justify-content:space-between;align-items:center;padding:6px 10px;border-top:1px solid var(--line)}
.pager button{font:inherit;padding:2px 10px;border:1px solid var(--line);border-radius:6px;background:#fff;cursor:pointer}
.pager button:disabled{opacity:.4;cursor:default}
.run{font-size:12px;padding:6px 10px 10px;border-top:1px solid var(--line)}
.facts{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
.chip{border:1px solid var(--line);border-radius:12px;padding:1px 9px;font-size:12px;background:#fff;white-space:nowrap}
.chip b{font-weight:600}
.kind{color:#fff;border:0}
.treebox{overflow:auto;max-height:62vh;border:1px solid var(--line);border-radius:8px;background:#fbfcfd}
svg.tree{display:block}
svg.tree .node rect{fill:#fff;stroke:#afb8c1;stroke-width:1}
svg.tree .node{cursor:pointer}
svg.tree .node:hover rect{stroke:var(--accent)}
svg.tree .node.origin rect{stroke:#1f2328;stroke-width:1.6}
svg.tree .node.sel rect{fill:var(--sel);stroke:var(--accent);stroke-width:2.2}
svg.tree .node:focus{outline:none}svg.tree .node:focus-visible rect{stroke:var(--accent);stroke-width:2.5}
svg.tree text{font-size:11.5px;fill:var(--fg)}
svg.tree text.t{font-weight:600}svg.tree text.m{fill:var(--muted);font-size:11px}
svg.tree path.edge{fill:none;stroke:#8c959f;stroke-width:1.4}
svg.tree .elabel text{font-size:11px;font-weight:600;fill:#fff}
.note{font-size:12px;color:var(--muted);margin:4px 0}
table.diff{border-collapse:collapse;width:100%;table-layout:fixed;margin-top:6px}
table.diff th{text-align:left;font-size:12px;color:var(--muted);padding:4px 8px;border-bottom:1px solid var(--line);overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.diff td{vertical-align:top;padding:6px 8px;border-bottom:1px solid #eaeef2;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13.5px;line-height:1.55}
table.diff td+td,table.diff th+th{border-left:1px solid var(--line)}
ins{background:var(--ins);color:var(--ins-fg);text-decoration:none;border-radius:3px}
del{background:var(--del);color:var(--del-fg);border-radius:3px}
mark.sub{background:var(--sub);color:var(--sub-fg);border-radius:3px}
mark.sub.old{text-decoration:line-through}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;align-items:center;margin:6px 0}.legend>*{white-space:nowrap}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre.cmd{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}
.noscript{padding:20px}
@media (max-width:1000px){main{display:block;height:auto}#index-pane{border-right:0;border-bottom:1px solid var(--line)}.scroll{max-height:50vh}}
"""

_APP = r"""
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PAGE = 50, MEMBER_PAGE = 200, TREE_DRAW_LIMIT = 300;
  var NW = 200, NH = 54, GX = 136, GY = 12, LW = 108;
  var KINDS = ['copy', 'truncation', 'excerpt', 'spin', 'paraphrase', 'insertion', 'mixed'];

  function $(id) { return document.getElementById(id); }
  function readJSON(id) { var n = $(id); return n ? JSON.parse(n.textContent) : null; }
  function h(tag, props, kids) {
    var n = document.createElement(tag);
    if (props) Object.keys(props).forEach(function (k) {
      if (k === 'text') n.textContent = props[k];
      else if (k === 'cls') n.className = props[k];
      else n.setAttribute(k, props[k]);
    });
    (kids || []).forEach(function (c) { if (c != null) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return n;
  }
  function s(tag, attrs, text) {
    var n = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text != null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function num(x) { return x == null ? '' : String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function f2(x) { return x == null ? '' : Number(x).toFixed(2); }
  function pct(x) { return x == null ? '' : Math.round(100 * x) + '%'; }
  function cut(t, n) { t = t == null ? '' : String(t); return t.length > n ? t.slice(0, n - 1) + '\u2026' : t; }
  function kindColor(k) { return KINDS.indexOf(k) >= 0 ? 'var(--' + k + ')' : '#57606a'; }
  function chip(label, value, cls) { return h('span', {cls: 'chip' + (cls ? ' ' + cls : '')}, [label ? h('b', {text: label + ' '}) : null, String(value)]); }
  function kindChip(k) { var c = chip('', k || 'origin', 'kind'); c.style.background = k ? kindColor(k) : '#1f2328'; return c; }
  function bar(x, cls) { var b = h('span', {cls: 'bar ' + cls}, [h('i')]); b.firstChild.style.width = Math.round(100 * (x || 0)) + '%'; return b; }

  var META = readJSON('meta'), IX = readJSON('index');
  var N = IX.id.length, byId = {}, i;
  for (i = 0; i < N; i++) byId[IX.id[i]] = i;
  var trees = {}, diffs = {};
  function tree(ci) { if (!trees.hasOwnProperty(ci)) trees[ci] = readJSON('t' + ci); return trees[ci]; }
  function diffsOf(ci) { if (!diffs.hasOwnProperty(ci)) diffs[ci] = readJSON('d' + ci) || {}; return diffs[ci]; }
  function label(T, k) { return META.labels[T.s[k]] || ''; }

  // ------------------------------------------------------------------ header
  (function () {
    var plural = function (n, word) { return num(n) + ' ' + word + (n === 1 ? '' : 's'); };
    var c = META.counts, parts = [plural(c.documents, 'document'), plural(c.multi, 'cluster') + ' with copies',
      num(c.singletons) + ' without copies (not listed)', plural(c.edges, 'copy edge')];
    if (c.rejected != null) parts.push(num(c.rejected) + ' rejected');
    $('summary').textContent = parts.join(' \u00b7 ');
    var run = $('run');
    run.appendChild(h('div', {}, ['Outputs: ', h('span', {cls: 'mono', text: META.out_dir})]));
    if (META.inputs.length) run.appendChild(h('div', {}, ['Inputs: ', h('span', {cls: 'mono', text: META.inputs.join(', ')})]));
    run.appendChild(h('div', {text: 'Aligned texts embedded for ' + num(META.embedded_diffs) + ' of ' + num(c.edges) +
      ' edges (the first ' + META.caps.per_cluster + ' edges of each cluster, largest clusters first, ' +
      num(META.caps.edges) + ' at most). Others: provenance diff PARENT CHILD --out DIR.'}));
    if (META.version) run.appendChild(h('div', {text: 'provenance ' + META.version}));
  })();

  // ------------------------------------------------------------------ index
  var COLS = [
    {key: 'size', label: 'size', num: true, title: 'documents in the cluster'},
    {key: 'copies', label: 'copies', num: true, title: 'copies taken directly from the origin'},
    {key: 'depth', label: 'depth', num: true, title: 'longest chain of copies of copies'},
    {key: 'spun', label: 'spun', num: true, title: 'share of copies with synonym spin'},
    {key: 'trunc', label: 'trunc.', num: true, title: 'share of truncated copies'},
    {key: 'conf', label: 'conf.', num: true, title: 'mean edge confidence'},
    {key: 'title', label: 'origin title', num: false, title: 'title of the probable origin (and its date)'}
  ];
  var st = {sort: 'size', dir: -1, filter: '', page: 0, ci: -1, k: -1, mpage: 0};
  var view = [];
  function recompute() {
    var q = st.filter.trim().toLowerCase(), key = st.sort, dir = st.dir, out = [];
    for (var j = 0; j < N; j++) {
      if (q && (IX.title[j] || '').toLowerCase().indexOf(q) < 0 && IX.id[j].toLowerCase().indexOf(q) < 0 &&
          (IX.origin[j] || '').toLowerCase().indexOf(q) < 0) continue;
      out.push(j);
    }
    var col = IX[key];
    out.sort(function (a, b) {
      var x = col[a], y = col[b];
      if (x == null) x = key === 'title' ? '' : -1;
      if (y == null) y = key === 'title' ? '' : -1;
      if (key === 'title') { x = String(x).toLowerCase(); y = String(y).toLowerCase(); }
      return x < y ? -dir : x > y ? dir : a - b;
    });
    view = out;
  }
  function renderHead() {
    var tr = clear($('index-head'));
    COLS.forEach(function (c) {
      var th = h('th', {cls: c.num ? 'num' : '', title: c.title}, [h('button', {type: 'button', text: c.label})]);
      if (st.sort === c.key) th.setAttribute('aria-sort', st.dir < 0 ? 'descending' : 'ascending');
      th.firstChild.addEventListener('click', function () {
        if (st.sort === c.key) st.dir = -st.dir; else { st.sort = c.key; st.dir = c.num ? -1 : 1; }
        st.page = 0; recompute(); renderHead(); renderIndex();
      });
      tr.appendChild(th);
    });
  }
  function renderIndex() {
    var body = clear($('index-body')), pages = Math.max(1, Math.ceil(view.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    var rows = view.slice(st.page * PAGE, st.page * PAGE + PAGE);
    rows.forEach(function (j) {
      var tr = h('tr', {'data-ci': j}, [
        h('td', {cls: 'num', text: num(IX.size[j])}),
        h('td', {cls: 'num', text: num(IX.copies[j])}),
        h('td', {cls: 'num', text: String(IX.depth[j])}),
        h('td', {cls: 'num'}, [bar(IX.spun[j], 'spun'), pct(IX.spun[j])]),
        h('td', {cls: 'num'}, [bar(IX.trunc[j], 'trunc'), pct(IX.trunc[j])]),
        h('td', {cls: 'num', text: f2(IX.conf[j])}),
        h('td', {cls: 'fill'}, [h('div', {cls: 'ttl', title: IX.title[j] || '', text: IX.title[j] || '(untitled)'}),
          h('div', {cls: 'sub-line', text: [IX.date[j], IX.id[j]].filter(Boolean).join(' \u00b7 ')})])
      ]);
      if (j === st.ci) tr.className = 'sel';
      tr.tabIndex = 0;
      tr.addEventListener('click', function () { go(j, -1); });
      tr.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(j, -1); });
      body.appendChild(tr);
    });
    if (!rows.length) body.appendChild(h('tr', {}, [h('td', {colspan: COLS.length, cls: 'muted',
      text: N ? 'No cluster matches the filter.' : 'No document has a copy in this run.'})]));
    $('count').textContent = num(view.length) + (view.length === N ? (N === 1 ? ' cluster' : ' clusters') : ' of ' + num(N));
    $('page').textContent = 'page ' + (st.page + 1) + ' of ' + pages;
    $('prev').disabled = st.page === 0;
    $('next').disabled = st.page >= pages - 1;
  }
  $('prev').addEventListener('click', function () { st.page--; renderIndex(); });
  $('next').addEventListener('click', function () { st.page++; renderIndex(); });
  $('filter').addEventListener('input', function (e) { st.filter = e.target.value; st.page = 0; recompute(); renderIndex(); });

  // ------------------------------------------------------------------ routing
  function go(ci, k) {
    var hash = '#c=' + encodeURIComponent(IX.id[ci]) + (k >= 0 ? '&e=' + encodeURIComponent(tree(ci).id[k]) : '');
    if (location.hash === hash) route(); else location.hash = hash;
  }
  function route() {
    var params = {}, ci = -1, k = -1;
    location.hash.replace(/^#/, '').split('&').forEach(function (p) {
      var at = p.indexOf('=');
      if (at > 0) { try { params[p.slice(0, at)] = decodeURIComponent(p.slice(at + 1)); } catch (err) { /* a mangled link */ } }
    });
    if (params.c && byId.hasOwnProperty(params.c)) ci = byId[params.c];
    else if (view.length || N) ci = view.length ? view[0] : 0;
    if (ci < 0) { showEmpty(); return; }
    var T = tree(ci);
    if (params.e) k = T.id.indexOf(params.e);
    if (k < 0) k = T.id.length > 1 ? firstChild(T) : 0;
    var pos = view.indexOf(ci);
    if (pos >= 0 && Math.floor(pos / PAGE) !== st.page) st.page = Math.floor(pos / PAGE);
    if (ci !== st.ci) st.mpage = 0;
    st.ci = ci; st.k = k;
    renderIndex();
    renderCluster(ci, T, k);
  }
  function firstChild(T) { for (var j = 0; j < T.p.length; j++) if (T.p[j] >= 0) return j; return 0; }
  function showEmpty() {
    clear($('detail')).appendChild(h('p', {cls: 'muted', text: 'No document has a copy in this run: there is no tree to draw.'}));
  }

  // ------------------------------------------------------------------ tree
  function children(T, n) {
    var kids = [], roots = [], j;
    for (j = 0; j < n; j++) kids.push([]);
    for (j = 0; j < n; j++) { var p = T.p[j]; if (p >= 0 && p < n && p !== j) kids[p].push(j); else roots.push(j); }
    var byDoc = function (a, b) { return T.id[a] < T.id[b] ? -1 : T.id[a] > T.id[b] ? 1 : 0; };
    kids.forEach(function (c) { c.sort(byDoc); });
    roots.sort(byDoc);
    return {kids: kids, roots: roots};
  }
  function preorder(T) {
    var n = T.id.length, ch = children(T, n), order = [], seen = {}, starts = ch.roots.slice(), j;
    for (j = 0; j < n; j++) starts.push(j);  // members caught in a parent cycle (corrupt data) still get listed
    starts.forEach(function (start) {
      var stack = [[start, 0, '', '']];
      while (stack.length) {
        var top = stack.pop(), v = top[0];
        if (seen[v]) continue;
        seen[v] = 1; order.push([v, top[1], top[2]]);
        var kids = ch.kids[v];
        for (var i = kids.length - 1; i >= 0; i--) {
          var last = i === kids.length - 1;
          stack.push([kids[i], top[1] + 1, top[3] + (last ? '\u2514\u2500 ' : '\u251c\u2500 '), top[3] + (last ? '   ' : '\u2502  ')]);
        }
      }
    });
    return order;
  }
  function layout(T, n) {
    var ch = children(T, n), x = [], y = [], next = 0, maxX = 0, seen = {}, stack = [];
    for (var r = ch.roots.length - 1; r >= 0; r--) stack.push([ch.roots[r], 0, false]);
    while (stack.length) {
      var top = stack.pop(), v = top[0], kids = ch.kids[v];
      if (!top[2]) {
        if (seen[v]) continue;
        seen[v] = 1; x[v] = top[1]; if (top[1] > maxX) maxX = top[1];
        if (!kids.length) { y[v] = next++; continue; }
        stack.push([v, top[1], true]);
        for (var j = kids.length - 1; j >= 0; j--) stack.push([kids[j], top[1] + 1, false]);
      } else {
        var placed = kids.filter(function (c) { return y[c] != null; });
        y[v] = placed.length ? (y[placed[0]] + y[placed[placed.length - 1]]) / 2 : next++;
      }
    }
    return {x: x, y: y, rows: Math.max(next, 1), cols: maxX + 1};
  }
  function drawTree(ci, T, sel) {
    var n = Math.min(T.id.length, TREE_DRAW_LIMIT), L = layout(T, n);
    var W = 24 + L.cols * (NW + GX) - GX, H = 24 + L.rows * (NH + GY) - GY;
    var root = s('svg', {'class': 'tree', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'derivation tree'});
    var defs = s('defs');
    var marker = s('marker', {id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto'});
    marker.appendChild(s('path', {d: 'M0,0 L8,4 L0,8 z', fill: '#8c959f'}));
    defs.appendChild(marker); root.appendChild(defs);
    function X(k) { return 12 + L.x[k] * (NW + GX); }
    function Y(k) { return 12 + L.y[k] * (NH + GY); }
    var edges = s('g'), nodes = s('g'), k;
    for (k = 0; k < n; k++) {
      var p = T.p[k];
      if (p < 0 || p >= n || L.x[k] == null || L.x[p] == null) continue;
      var x1 = X(p) + NW, y1 = Y(p) + NH / 2, x2 = X(k), y2 = Y(k) + NH / 2, xm = x2 - LW - 14;
      edges.appendChild(s('path', {'class': 'edge', d: 'M' + x1 + ',' + y1 + ' C' + (x1 + 30) + ',' + y1 + ' ' + (xm - 30) + ',' + y2 +
        ' ' + xm + ',' + y2 + ' L' + (x2 - 1) + ',' + y2, 'marker-end': 'url(#arrow)'}));
      var g = s('g', {'class': 'elabel'});
      g.appendChild(s('rect', {x: xm, y: y2 - 9, width: LW, height: 18, rx: 9, fill: kindColor(T.k[k])}));
      g.appendChild(s('text', {x: xm + LW / 2, y: y2 + 4, 'text-anchor': 'middle'}, (T.k[k] || '?') + ' \u00b7 ' + f2(T.c[k])));
      g.appendChild(s('title', {}, (T.k[k] || '') + ', confidence ' + f2(T.c[k])));
      edges.appendChild(g);
    }
    for (k = 0; k < n; k++) {
      if (L.x[k] == null) continue;
      var node = s('g', {'class': 'node' + (T.p[k] < 0 ? ' origin' : '') + (k === sel ? ' sel' : ''),
        transform: 'translate(' + X(k) + ',' + Y(k) + ')', tabindex: 0, role: 'button', 'data-k': k});
      node.appendChild(s('rect', {width: NW, height: NH, rx: 6}));
      node.appendChild(s('text', {'class': 't', x: 8, y: 16}, cut(T.t[k] || '(untitled)', 29)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 31}, cut(label(T, k), 32)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 46}, cut([T.d[k], T.id[k]].filter(Boolean).join(' \u00b7 '), 34)));
      node.appendChild(s('title', {}, [T.t[k], T.id[k], label(T, k), T.d[k]].filter(Boolean).join('\n')));
      (function (kk) {
        node.addEventListener('click', function () { go(ci, kk); });
        node.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(ci, kk); } });
      })(k);
      nodes.appendChild(node);
    }
    root.appendChild(edges); root.appendChild(nodes);
    return root;
  }

  function fitTree(svgTree, box) {
    // A tree a little wider than its box is scaled down to fit (text stays legible); a wide one scrolls.
    var w = +svgTree.getAttribute('width'), h = +svgTree.getAttribute('height'), room = box.clientWidth - 2;
    if (room > 0 && w > room && room / w >= 0.72) {
      svgTree.setAttribute('width', room);
      svgTree.setAttribute('height', Math.round(h * room / w));
    }
  }

  // ------------------------------------------------------------------ cluster
  function renderCluster(ci, T, k) {
    var d = clear($('detail'));
    d.appendChild(h('h2', {text: IX.title[ci] || '(untitled)'}));
    d.appendChild(h('div', {cls: 'facts'}, [
      chip('cluster', IX.id[ci]), chip('documents', num(IX.size[ci])), chip('direct copies', num(IX.copies[ci])),
      chip('depth', IX.depth[ci]), chip('spun', pct(IX.spun[ci])), chip('truncated', pct(IX.trunc[ci])),
      chip('mean confidence', f2(IX.conf[ci]))]));
    d.appendChild(h('h3', {text: 'Derivation tree'}));
    var box = h('div', {cls: 'treebox', id: 'tree'});
    var svgTree = drawTree(ci, T, k);
    box.appendChild(svgTree);
    d.appendChild(box);
    fitTree(svgTree, box);
    var note = 'Origin on the left; each arrow is a copy, labelled with its kind of change and confidence. Click a document to see what changed.';
    if (T.id.length > TREE_DRAW_LIMIT) note += ' Drawn: the ' + TREE_DRAW_LIMIT + ' members nearest the origin of ' + num(T.id.length) + '; all are listed below.';
    d.appendChild(h('p', {cls: 'note', text: note}));
    var edge = h('div', {id: 'edge'});
    d.appendChild(edge);
    renderEdge(ci, T, k, edge);
    d.appendChild(h('h3', {text: 'Members'}));
    d.appendChild(memberTable(ci, T, k));
    var selNode = box.querySelector('.node.sel');
    if (selNode && selNode.scrollIntoView && T.id.length > 12) selNode.scrollIntoView({block: 'nearest', inline: 'nearest'});
  }
  function memberTable(ci, T, k) {
    var order = preorder(T), wrap = h('div'), pages = Math.max(1, Math.ceil(order.length / MEMBER_PAGE));
    var pos = -1;
    for (var j = 0; j < order.length; j++) if (order[j][0] === k) pos = j;
    if (pos >= 0) st.mpage = Math.floor(pos / MEMBER_PAGE);
    var table = h('table', {cls: 'grid members'});
    table.appendChild(h('thead', {}, [h('tr', {}, ['document', 'title', 'change', 'conf.', 'kept', 'subst.', 'ins.', 'del.', 'spin', 'date', 'publisher / source']
      .map(function (t, c) { return h('th', {cls: c >= 3 && c <= 8 ? 'num' : '', text: t}); }))]));
    var body = h('tbody');
    order.slice(st.mpage * MEMBER_PAGE, (st.mpage + 1) * MEMBER_PAGE).forEach(function (o) {
      var m = o[0], hasEdge = T.p[m] >= 0;
      var tr = h('tr', {cls: m === k ? 'sel' : ''}, [
        h('td', {cls: 'mono', text: o[2] + T.id[m]}),
        h('td', {}, [h('div', {cls: 'ttl', title: T.t[m] || '', text: T.t[m] || ''})]),
        h('td', {}, [hasEdge ? kindChip(T.k[m]) : h('span', {cls: 'muted', text: 'origin'})]),
        h('td', {cls: 'num', text: hasEdge ? f2(T.c[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.ke[m]) + '/' + num(T.pt[m]) : num(T.n[m])}),
        h('td', {cls: 'num', text: hasEdge ? num(T.su[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T['in'][m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.de[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? f2(T.sp[m]) : ''}),
        h('td', {cls: 'sub-line', text: T.d[m] || ''}),
        h('td', {cls: 'sub-line', text: cut(label(T, m), 40)})
      ]);
      tr.addEventListener('click', function () { go(ci, m); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(h('div', {cls: 'scroll'}, [table]));
    if (pages > 1) {
      var prev = h('button', {type: 'button', text: '\u2190 prev'}), next = h('button', {type: 'button', text: 'next \u2192'});
      prev.disabled = st.mpage === 0; next.disabled = st.mpage >= pages - 1;
      prev.addEventListener('click', function () { st.mpage--; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); });
      next.addEventListener('click', function () { st.mpage++; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); });
      wrap.appendChild(h('div', {cls: 'pager'}, [prev, h('span', {cls: 'muted', text: 'members page ' + (st.mpage + 1) + ' of ' + pages}), next]));
    }
    return wrap;
  }

  // ------------------------------------------------------------------ edge
  function renderEdge(ci, T, k, box) {
    var p = T.p[k];
    if (p < 0) {
      box.appendChild(h('h3', {text: 'Origin: ' + (T.t[k] || T.id[k])}));
      box.appendChild(h('div', {cls: 'facts'}, [chip('document', T.id[k]), chip('tokens', num(T.n[k])),
        T.d[k] ? chip('published', T.d[k]) : null, label(T, k) ? chip('from', label(T, k)) : null]));
      box.appendChild(h('p', {cls: 'note', text: 'The probable origin has no parent. Select a copy in the tree to see what it changed.'}));
      return;
    }
    box.appendChild(h('h3', {text: 'What changed: ' + T.id[p] + ' \u2192 ' + T.id[k]}));
    var facts = [kindChip(T.k[k]), chip('confidence', f2(T.c[k])), chip('similarity', f2(T.sim[k])),
      chip('kept', num(T.ke[k]) + ' of ' + num(T.pt[k])), chip('substituted', num(T.su[k])), chip('inserted', num(T.in[k])),
      chip('deleted', num(T.de[k])), chip('spin rate', f2(T.sp[k]))];
    if (T.tr[k]) facts.push(chip('', 'truncated'));
    if (T.bl[k]) facts.push(chip('boilerplate lines', T.bl[k]));
    if (T.mv[k]) facts.push(chip('moved sentences', T.mv[k]));
    box.appendChild(h('div', {cls: 'facts'}, facts));
    if (T.x[k] && T.x[k].length) box.appendChild(h('div', {cls: 'note', text: 'Substitutions: ' + T.x[k].join(', ')}));
    var D = diffsOf(ci)[String(k)];
    if (!D) {
      box.appendChild(h('p', {cls: 'note', text: 'The aligned text of this edge is not embedded (this report embeds ' +
        META.caps.per_cluster + ' edges per cluster and ' + num(META.caps.edges) + ' in all, largest clusters first). Print it with:'}));
      box.appendChild(h('pre', {cls: 'cmd', text: 'provenance diff ' + T.id[p] + ' ' + T.id[k] + ' --out ' + META.out_dir}));
      return;
    }
    box.appendChild(h('div', {cls: 'legend'}, [h('ins', {text: 'inserted'}), h('del', {text: 'deleted'}),
      h('mark', {cls: 'sub old', text: 'substituted (parent)'}), h('mark', {cls: 'sub', text: 'substituted (copy)'}),
      h('span', {cls: 'muted', text: 'Texts after normalisation (Unicode NFKC, ASCII quotes and dashes, one line per paragraph).'})]));
    box.appendChild(diffTable(T, p, k, D));
  }
  function diffTable(T, p, k, D) {
    var table = h('table', {cls: 'diff'});
    table.appendChild(h('thead', {}, [h('tr', {}, [
      h('th', {title: T.t[p] || '', text: 'parent: ' + T.id[p] + ' \u00b7 ' + (T.t[p] || '')}),
      h('th', {title: T.t[k] || '', text: 'copy: ' + T.id[k] + ' \u00b7 ' + (T.t[k] || '')})])]));
    var body = h('tbody'), left = h('td'), right = h('td');
    function flush() {
      [left, right].forEach(function (cell) {
        var last = cell.lastChild;
        if (last && last.textContent.slice(-1) === '\n') {
          var t = last.firstChild && last.nodeType === 1 ? last.firstChild : last;
          t.textContent = t.textContent.replace(/\n$/, '');
        }
      });
      if (left.firstChild || right.firstChild) body.appendChild(h('tr', {}, [left, right]));
      left = h('td'); right = h('td');
    }
    D.s.forEach(function (seg) {
      var op = seg[0], main;
      if (op === '=') { right.appendChild(document.createTextNode(seg[1])); left.appendChild(document.createTextNode(seg.length > 2 ? seg[2] : seg[1])); main = seg[1]; }
      else if (op === '~') { left.appendChild(h('mark', {cls: 'sub old', text: seg[1]})); right.appendChild(h('mark', {cls: 'sub', text: seg[2]})); main = seg[2]; }
      else if (op === '-') { left.appendChild(h('del', {text: seg[1]})); main = seg[1]; }
      else { right.appendChild(h('ins', {text: seg[1]})); main = seg[1]; }
      if (main.slice(-1) === '\n') flush();
    });
    flush();
    table.appendChild(body);
    var wrap = h('div', {}, [table]);
    if (D.cap) wrap.appendChild(h('p', {cls: 'note', text: 'One of the texts is longer than the alignment cap; its tail is not aligned.'}));
    return wrap;
  }

  window.addEventListener('hashchange', route);
  recompute(); renderHead(); route();
  document.documentElement.setAttribute('data-ready', String(Math.round(performance.now())));
})();
"""
