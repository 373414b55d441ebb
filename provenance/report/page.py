"""``report.html``: one self-contained page to look at a run's clusters, trees and changes.

:func:`write_report` reads the Parquet outputs of ``provenance run --out DIR``
(lazily, with :mod:`provenance.query`) and writes ``DIR/report.html``: one
file, inline CSS and JavaScript, no network (a Content-Security-Policy with
``default-src 'none'`` enforces it), that shows

* an index of the clusters with copies (size, direct copies, depth, share of
  spun and truncated copies, mean confidence, origin title and date),
  sortable and paginated, and on request the documents without copies;
* a search over every listed document's title, publisher, id and text, and
  filters by publisher, change kind, ``copy_confidence`` / ``parent_confidence``
  ranges and date (kept in the link); CSV export of what they show;
* for the selected cluster its derivation tree drawn as SVG (left to right or
  top to bottom, fit and zoom) with a legend of the edge colours and the three
  confidences, a timeline when documents have dates, and every member with its
  edge figures and ``url`` (a link only for http and https addresses);
* for the selected edge the parent and child text side by side, aligned, with
  insertions, deletions and substitutions highlighted and the edge's evidence
  passages (``evidence.parquet``) underlined.

Staying usable at thousands of clusters: the page embeds compact JSON, one
``<script type="application/json">`` block per cluster, and renders a
cluster only when it is opened (nothing is parsed up front but the index).
Aligned texts are the bulk of the size, so they are embedded for the first
``diff_edges_per_cluster`` edges (nearest the origin) of each cluster,
largest clusters first, up to ``diff_edges`` edges and ``diff_chars``
characters in all (``config.ReportOptions``); for any other edge the page shows the
``provenance diff`` command that prints it.  Each document's normalised text
is in the page at most once, for search and reading: an embedded diff holds
the texts of its two sides, the rest go in ``x{ci}`` blocks (and ``xs`` for the
documents without copies) while ``ReportOptions.text_chars`` lasts.  Evidence offsets, into
the raw texts, are carried over to the normalised ones (the length of the
normalised prefix).  Trees with more than ``TREE_DRAW_LIMIT`` (300) members draw
the 300 nearest the origin; the member table below lists all.

The stylesheet and scripts are package data (``assets/``), inlined into the page.

Document text is untrusted.  The page never builds HTML from it: the script
inserts it with ``textContent``, the JSON blocks escape ``<``, ``>`` and ``&``
(so ``</script>`` or ``<!--`` inside a title cannot end a block), the few
values rendered by Python are HTML-escaped, a ``url`` becomes a link only when
it parses as http(s), and the policy only runs the two inline scripts whose
hashes it lists, so an injected ``<script>`` or ``onerror=`` handler would not
run even if one slipped through.
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
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from provenance import query
from provenance.config import ReportOptions
from provenance.errors import ProvenanceError
from provenance.prepare.normalize import normalize_expr

REPORT_NAME = "report.html"
_ASSETS = resources.files("provenance.report") / "assets"


@lru_cache(maxsize=1)
def assets() -> tuple[str, str, str]:
    """The page's error trap, stylesheet and application script (package data beside this module)."""
    return tuple((_ASSETS / name).read_text(encoding="utf-8") for name in ("error-trap.js", "report.css", "report.js"))


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


def _nodes(out: query.Outputs, index: pl.DataFrame, title_chars: int) -> pl.DataFrame:
    """Every member of the indexed clusters, ordered by (cluster, depth, doc_id), with ``k`` (its position
    in its cluster), ``pk`` (its parent's) and the figures of its incoming edge."""
    meta = out.meta_columns()
    names = [e.meta.output_name() for e in meta]
    label = pl.coalesce(pl.col("publisher"), pl.col("source")) if "publisher" in names else pl.col("source")
    docs = (
        out.documents.select(
            "doc_id", "cluster_id", "parent_id", "depth", pl.col("title").str.slice(0, title_chars), "source", *meta,
            "n_tokens", _url_expr(out),
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


def _url_expr(out: query.Outputs) -> pl.Expr:
    """The document's ``url`` column as text (null without one); the page links only http(s) addresses."""
    if "url" in out.documents.collect_schema():
        return pl.col("url").cast(pl.String).alias("url")
    return pl.lit(None, pl.String).alias("url")


def _label_codes(*frames: pl.DataFrame) -> list[str]:
    """Every publisher (or source) label of the page, once, in the order first seen."""
    return pl.concat([f["label"] for f in frames]).unique(maintain_order=True).to_list()


def _coded(frame: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("label").replace_strict(labels, list(range(len(labels))), return_dtype=pl.Int32).alias("s")
    )


def _tree_payloads(nodes: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """One JSON object per cluster (columnar: arrays indexed by member position), built in polars."""
    coded = _coded(nodes, labels)
    r3 = lambda name: pl.col(name).round(3)
    payload = coded.group_by("ci", maintain_order=True).agg(
        pl.col("doc_id").alias("id"),
        pl.col("title").alias("t"),
        pl.col("s"),
        pl.col("published_at").alias("d"),
        pl.col("url").alias("u"),
        pl.col("pk").fill_null(-1).alias("p"),
        pl.col("n_tokens").alias("n"),
        pl.col("change_kind").alias("k"),
        r3("confidence").alias("c"),
        r3("copy_confidence").alias("cc"),
        r3("parent_confidence").alias("pc"),
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
    return payload.select("ci", _escape_json_expr(pl.struct(pl.exclude("ci")).struct.json_encode()).alias("json"))




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
) -> tuple[dict[int, tuple[str, int]], set[str]]:
    """Per cluster: JSON ``{member position: {"s": segments, "cap": bool, "p": passages}}`` for the chosen edges and
    their number; and the documents whose whole normalised text those segments hold (the page reads it from them)."""
    if max_edges <= 0 or per_cluster <= 0:
        return {}, set()
    chosen = (
        nodes.filter(pl.col("pk").is_not_null())
        .with_columns(pl.int_range(pl.len()).over("ci").alias("rank"))
        .filter(pl.col("rank") < per_cluster)
        .head(max_edges)
        .select("ci", "k", "doc_id", "parent_id")
    )
    if chosen.is_empty():
        return {}, set()
    wanted = pl.concat([chosen["doc_id"], chosen["parent_id"]]).unique()
    texts = dict(
        out.documents.filter(pl.col("doc_id").is_in(wanted.to_list())).select("doc_id", "text").collect().iter_rows()
    )
    evidence = _passages_of(out, chosen, texts)
    payloads: dict[int, tuple[str, int]] = {}
    whole: set[str] = set()
    used = 0
    for (ci,), group in chosen.group_by("ci", maintain_order=True):
        pairs = [(texts[p] or "", texts[c] or "") for p, c in zip(group["parent_id"], group["doc_id"])]
        alignments = query.align_texts(pairs, out.config().changes)
        body = script_json({
            str(k): {"s": _segments_json(a), "cap": a.capped, "p": evidence.get((parent, child), [])}
            for k, parent, child, a in zip(group["k"].to_list(), group["parent_id"].to_list(), group["doc_id"].to_list(), alignments)
        })
        if payloads and used + len(body) > max_chars:
            break
        payloads[int(ci)] = (body, len(alignments))
        used += len(body)
        for parent, child, a in zip(group["parent_id"].to_list(), group["doc_id"].to_list(), alignments):
            if not a.capped:
                whole.update((parent, child))
    return payloads, whole


#: Characters of a passage's copy text shown in the report.
PASSAGE_EXCERPT = 160


def _passages_of(out: query.Outputs, chosen: pl.DataFrame, texts: dict[str, str | None]) -> dict[tuple[str, str], list[list[Any]]]:
    """Per chosen edge: ``[kind, words, similarity, copy excerpt, parent start, parent end, child start, child end]``
    of each aligned passage (``evidence.parquet``); the offsets are into the *normalised* texts the diff shows
    (the length of the normalised text before each raw offset, one vectorised pass)."""
    path = out.folder / "evidence.parquet"
    if not path.exists():
        return {}
    rows = (
        pl.scan_parquet(path).join(chosen.lazy().select(pl.col("parent_id"), pl.col("doc_id").alias("child_id")), on=["parent_id", "child_id"],
                                    maintain_order="left")  # the passages in the table's order: along the texts
        .select("parent_id", "child_id", "parent_start", "parent_end", "child_start", "child_end", "tokens", "similarity", "kind")
        .collect()
    )
    if rows.is_empty():
        return {}
    text_of = pl.DataFrame({"doc_id": list(texts), "text": [t or "" for t in texts.values()]}, schema={"doc_id": pl.String, "text": pl.String})
    # A start offset is measured with a letter after the prefix (the prefix's own trailing space would be stripped).
    def norm_at(side: str, end: str) -> pl.Expr:
        prefix = pl.col(f"{side}_text").str.slice(0, pl.col(f"{side}_{end}"))
        if end == "start":
            return normalize_expr(prefix + pl.lit("X")).str.len_chars() - 1
        return normalize_expr(prefix).str.len_chars()

    mapped = (
        rows.join(text_of.rename({"doc_id": "parent_id", "text": "parent_text"}), on="parent_id", how="left", maintain_order="left")
        .join(text_of.rename({"doc_id": "child_id", "text": "child_text"}), on="child_id", how="left", maintain_order="left")
        .select(
            "parent_id", "child_id", "kind", "tokens", pl.col("similarity").round(2),
            pl.col("child_text").str.slice(pl.col("child_start"), pl.col("child_end") - pl.col("child_start")).alias("copy"),
            *(norm_at(side, end).alias(f"n_{side}_{end}") for side in ("parent", "child") for end in ("start", "end")),
        )
    )
    found: dict[tuple[str, str], list[list[Any]]] = {}
    for parent, child, kind, tokens, similarity, text, ps, pe, cs, ce in mapped.iter_rows():
        excerpt = text[:PASSAGE_EXCERPT] + ("\u2026" if len(text) > PASSAGE_EXCERPT else "")
        found.setdefault((parent, child), []).append([kind, tokens, similarity, excerpt, ps, pe, cs, ce])
    return found


def _singletons(out: query.Outputs, title_chars: int, limit: int) -> tuple[pl.DataFrame, int]:
    """The documents without copies the page lists (``limit`` at most, by doc_id: ``ReportOptions.singleton_limit``), and how many there are."""
    names = [e.meta.output_name() for e in out.meta_columns()]
    label = pl.coalesce(pl.col("publisher"), pl.col("source")) if "publisher" in names else pl.col("source")
    singles = out.clusters.filter(pl.col("size") == 1).select("cluster_id")
    docs = (
        out.documents.join(singles, on="cluster_id", how="semi")
        .select("doc_id", pl.col("title").str.slice(0, title_chars), "source", *out.meta_columns(), "n_tokens", _url_expr(out))
        .with_columns(label.fill_null("").alias("label"))
        .sort("doc_id")
    )
    if "published_at" not in names:
        docs = docs.with_columns(pl.lit(None, pl.String).alias("published_at"))
    total = out.documents.join(singles, on="cluster_id", how="semi").select(pl.len()).collect().item()
    return docs.head(limit).collect(), total


def _texts(out: query.Outputs, nodes: pl.DataFrame, singles: pl.DataFrame, whole: set[str], text_chars: int) -> tuple[pl.DataFrame, list[str | None], int]:
    """Normalised texts to embed: per indexed cluster a JSON ``{"x": [text or null per member]}``, the singletons'
    texts in their order, and how many documents have their text in the page (in ``x`` or in a diff).

    A member whose whole text an embedded diff holds gets null (the page rebuilds it from the diff); the rest
    are taken in page order (largest clusters first, then the singletons) while ``text_chars`` lasts
    (``ReportOptions.text_chars``: documents whose text an embedded diff holds cost nothing)."""
    order = pl.concat([
        nodes.select("doc_id", pl.col("ci").cast(pl.Int64), pl.col("k").cast(pl.Int64)),
        singles.select("doc_id", pl.lit(-1, pl.Int64).alias("ci"), pl.int_range(pl.len(), dtype=pl.Int64).alias("k")),
    ]).with_row_index("pos")
    need = order.filter(~pl.col("doc_id").is_in(list(whole)))
    lengths = (
        out.documents.join(need.lazy().select("doc_id"), on="doc_id", how="semi")
        .select("doc_id", pl.col("n_chars"))
        .collect()
    )
    kept = (
        need.join(lengths, on="doc_id", how="left", maintain_order="left")
        .filter(pl.col("n_chars").fill_null(0).cum_sum() <= text_chars)
        .select("doc_id")
    )
    texts = (
        out.documents.join(kept.lazy(), on="doc_id", how="semi")
        .select("doc_id", normalize_expr(pl.col("text")).alias("x"))
        .collect()
    )
    placed = order.join(texts, on="doc_id", how="left", maintain_order="left")
    members = placed.filter(pl.col("ci") >= 0)
    payload = members.sort("ci", "k").group_by("ci", maintain_order=True).agg(pl.col("x"))
    encoded = payload.select("ci", _escape_json_expr(pl.struct("x").struct.json_encode()).alias("json"))
    single_texts = placed.filter(pl.col("ci") < 0).sort("k")["x"].to_list()
    embedded = texts.height + order.filter(pl.col("doc_id").is_in(list(whole))).height
    return encoded, single_texts, embedded


def _counts(out: query.Outputs) -> dict[str, Any]:
    clusters = out.clusters.select(pl.len().alias("clusters"), (pl.col("size") > 1).sum().alias("multi"),
                                   pl.col("size").filter(pl.col("size") == 1).len().alias("singletons")).collect()
    counts = {
        "documents": out.documents.select(pl.len()).collect().item(),
        "edges": out.edges.select(pl.len()).collect().item(),
        **clusters.row(0, named=True),
    }
    rejects = out.folder / "rejects.parquet"
    counts["rejected"] = pl.scan_parquet(rejects).select(pl.len()).collect().item() if rejects.is_file() else None
    return counts


def _run_info(out: query.Outputs) -> dict[str, Any]:
    try:
        info = json.loads((out.folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"inputs": info.get("inputs"), "version": (info.get("versions") or {}).get("provenance")}


# ---------------------------------------------------------------------------- page


def render_report(out: query.Outputs, options: ReportOptions | None = None, shown_as: str | Path | None = None) -> tuple[str, dict[str, int]]:
    """The report page for ``out`` and its figures (``clusters``, ``edges``, ``diff_edges``).

    ``shown_as``: the folder the page names (default ``out``'s own): a run names its ``--out``, not the generation it writes.
    """
    options = options or out.config().report
    shown = str(shown_as) if shown_as is not None else str(out.out_dir)
    diff_edges, diff_edges_per_cluster, diff_chars = options.diff_edges, options.diff_edges_per_cluster, options.diff_chars
    index = _index(out)
    nodes = _nodes(out, index, options.title_chars)
    singles, n_singles = _singletons(out, options.title_chars, options.singleton_limit)
    labels = _label_codes(nodes, singles)
    trees = _tree_payloads(nodes, labels)
    diffs, whole = _diff_payloads(out, nodes, max_edges=diff_edges, per_cluster=diff_edges_per_cluster, max_chars=diff_chars)
    texts, single_texts, with_text = _texts(out, nodes, singles, whole, options.text_chars)
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
        "title": index["origin_title"].str.slice(0, options.title_chars).to_list(),
        "origin": index["origin_id"].to_list(),
        "date": index["published_at"].to_list(),
        "diffs": [diff_counts.get(i, 0) for i in range(index.height)],
    })
    coded = _coded(singles, labels)
    singles_json = script_json({
        "id": coded["doc_id"].to_list(),
        "t": coded["title"].to_list(),
        "s": coded["s"].to_list(),
        "d": coded["published_at"].to_list(),
        "u": coded["url"].to_list(),
        "n": coded["n_tokens"].to_list(),
    })
    embedded = sum(diff_counts.values())
    meta = {
        "out_dir": shown,
        "counts": counts,
        "labels": labels,
        "inputs": run.get("inputs") or [],
        "version": run.get("version"),
        "embedded_diffs": embedded,
        "caps": {"edges": diff_edges, "per_cluster": diff_edges_per_cluster, "chars": diff_chars},
        "singles_listed": singles.height,
        "singles_total": n_singles,
        "with_text": with_text,
        "in_page": nodes.height + singles.height,
    }
    parts = [
        f'<script type="application/json" id="meta">{script_json(meta)}</script>',
        f'<script type="application/json" id="index">{index_json}</script>',
        f'<script type="application/json" id="singles">{singles_json}</script>',
        f'<script type="application/json" id="xs">{script_json({"x": single_texts})}</script>',  # read when searched
    ]
    parts.extend(f'<script type="application/json" id="t{ci}">{body}</script>' for ci, body in trees.iter_rows())
    parts.extend(f'<script type="application/json" id="x{ci}">{body}</script>' for ci, body in texts.iter_rows())
    parts.extend(f'<script type="application/json" id="d{ci}">{body}</script>' for ci, (body, _) in diffs.items())
    page = _page(shown, counts, "\n".join(parts))
    return page, {"clusters": index.height, "edges": counts["edges"], "diff_edges": embedded}


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def _page(out_dir: str, counts: dict[str, Any], data: str) -> str:
    error_trap, css, app = assets()
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(error_trap)} {_csp_hash(app)}; "
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
<script>{error_trap}</script>
<style>{css}</style>
</head>
<body>
<header class="top">
  <h1>provenance <span class="muted">report</span></h1>
  <div id="summary" class="summary">{html.escape(f"{counts['documents']:,} documents, {counts['multi']:,} clusters with copies")}</div>
</header>
<main>
  <section id="index-pane" aria-label="clusters">
    <div class="toolbar">
      <input id="filter" type="search" placeholder="Search titles, publishers, ids and texts" aria-label="search every document">
      <span id="count" class="muted"></span>
    </div>
    <details id="filter-box" class="filters" open><summary>Filters and export</summary><div id="filters"></div></details>
    <div class="scroll"><table id="index-table" class="grid"><thead><tr id="index-head"></tr></thead><tbody id="index-body"></tbody></table></div>
    <div class="pager"><button id="prev" type="button">&#8592; prev</button><span id="page" class="muted"></span><button id="next" type="button">next &#8594;</button></div>
    <div id="run" class="run muted"></div>
  </section>
  <section id="detail" aria-live="polite"><p class="muted">Loading&#8230;</p></section>
</main>
<noscript><p class="noscript">This report draws its tables, trees and diffs with JavaScript; please allow scripts for this file.</p></noscript>
{data}
<script>{app}</script>
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
    options: ReportOptions | None = None,
    shown_as: str | Path | None = None,
) -> ReportInfo:
    """Write the report of the outputs in ``out_dir`` to ``path`` (default ``out_dir/report.html``), atomically.

    ``shown_as``: the folder the page names (a run's ``--out`` while it writes the generation behind it).
    """
    start = time.perf_counter()
    out = query.open_outputs(out_dir)
    target = Path(path) if path is not None else out.out_dir / REPORT_NAME
    page, figures = render_report(out, options, shown_as)
    try:
        _write_atomic(page, target)
    except OSError as exc:
        raise ProvenanceError(f"cannot write {target}: {exc.strerror}") from None
    return ReportInfo(target, len(page.encode("utf-8")), figures["clusters"], figures["edges"], figures["diff_edges"],
                      round(time.perf_counter() - start, 3))
