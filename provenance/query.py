"""Questions over a run's Parquet outputs, answered lazily with ``polars.scan_parquet``.

Analysts ask where an article came from, what each copier changed and which
stories were copied most.  Every function here takes an :class:`Outputs` (the
folder ``provenance run --out DIR`` wrote) and reads only the columns and rows
it needs: filters and projections are pushed down into the Parquet scan, and
the ``text`` column is read only by :func:`find` and :func:`diff`.

* :func:`origin`: a document's probable origin and the path to it, edge by edge;
* :func:`cluster`: a cluster's members in tree order (from a cluster or document id);
* :func:`top`: the largest, most copied, most spun or deepest clusters;
* :func:`find`: the clusters whose documents contain a phrase;
* :func:`diff`: the token alignment of two documents, as :class:`Segment` runs.

A user's mistake (a missing folder, an unknown id, an empty phrase) raises
:class:`~provenance.errors.ProvenanceError` with a one-line message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from provenance.config import ChangesOptions, Config
from provenance.trace import changes
from provenance.errors import ProvenanceError
from provenance.prepare.normalize import FOLD, normalize_expr
from provenance.prepare.words import PIECE_PATTERN, Words, doc_words, words_expr

#: Ranking keys of :func:`top` and what they sort by (descending, ties by size then id).
TOP_KEYS: dict[str, str] = {
    "size": "documents in the cluster",
    "copies": "copies taken directly from the origin (the origin's children)",
    "spin": "spun copies (edges with spin), then mean spin rate",
    "depth": "longest chain of copies of copies (max_depth)",
}

#: Per-edge figures shown next to each member (null for origins).
EDGE_FIGURES = (
    "change_kind", "confidence", "similarity", "parent_tokens", "child_tokens", "kept", "inserted", "deleted",
    "substituted", "spin_rate", "is_truncation", "boilerplate_lines_added", "sentences_reordered",
    "substitution_examples", "copy_confidence", "parent_confidence", "rewritten", "evidence_tokens", "passages",
)


# ---------------------------------------------------------------------------- the output folder


@dataclass(frozen=True)
class Outputs:
    """The Parquet tables of one run, scanned lazily."""

    out_dir: Path
    #: Where the tables are read: ``out_dir`` with its link resolved once (``open_outputs``), so every table a reader
    #: opens comes from one generation even if a run publishes the next one meanwhile.
    tables_dir: Path | None = None

    @property
    def folder(self) -> Path:
        return self.tables_dir if self.tables_dir is not None else self.out_dir

    def scan(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.folder / f"{table}.parquet")

    @property
    def documents(self) -> pl.LazyFrame:
        return self.scan("documents")

    @property
    def clusters(self) -> pl.LazyFrame:
        return self.scan("clusters")

    @property
    def edges(self) -> pl.LazyFrame:
        return self.scan("edges")

    def document_columns(self) -> list[str]:
        return self.documents.collect_schema().names()

    def config(self) -> Config:
        """The config the run was made with (``run.json``), or the defaults when the folder has none."""
        path = self.folder / "run.json"
        try:
            return Config.model_validate(json.loads(path.read_text(encoding="utf-8"))["config"])
        except (OSError, ValueError, KeyError, TypeError):
            return Config()

    def meta_columns(self) -> list[pl.Expr]:
        """``publisher`` and ``published_at`` (as text) when the documents carry them."""
        schema = self.documents.collect_schema()
        exprs = []
        if "publisher" in schema:
            exprs.append(pl.col("publisher").cast(pl.String))
        if "published_at" in schema:
            exprs.append(date_text(pl.col("published_at"), schema["published_at"]).alias("published_at"))
        return exprs


def open_outputs(out_dir: str | Path) -> Outputs:
    """The outputs in ``out_dir``, or a one-line :class:`ProvenanceError` if there are none."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        raise ProvenanceError(f"output folder {out_dir} does not exist; write it with `provenance run INPUT --out {out_dir}`")
    if not out_dir.is_dir():
        raise ProvenanceError(f"{out_dir} is not a folder; pass the folder given to `provenance run --out`")
    missing = [name for name in ("documents", "clusters", "edges") if not (out_dir / f"{name}.parquet").is_file()]
    if missing:
        raise ProvenanceError(
            f"{out_dir} has no {', '.join(m + '.parquet' for m in missing)}; is it a `provenance run --out` folder?"
        )
    return Outputs(out_dir, out_dir.resolve())


def date_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A ``published_at`` column as ``YYYY-MM-DD HH:MM`` (``YYYY-MM-DD`` for dates), whatever its type."""
    if dtype == pl.Date:
        return expr.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        return expr.dt.strftime("%Y-%m-%d %H:%M")
    if dtype == pl.String:
        return expr.str.replace("T", " ", literal=True).str.slice(0, 16)
    return expr.cast(pl.String)


def _no_cluster(out: Outputs, key: str) -> ProvenanceError:
    return ProvenanceError(f"no cluster or document {key!r} in {out.out_dir}")


def _document(out: Outputs, doc_id: str) -> dict[str, Any]:
    rows = out.documents.filter(pl.col("doc_id") == doc_id).select("doc_id", "cluster_id").head(1).collect()
    if rows.is_empty():
        raise ProvenanceError(f"unknown document {doc_id!r} in {out.out_dir}")
    return rows.row(0, named=True)


def resolve_cluster(out: Outputs, key: str) -> str:
    """The cluster id of ``key``, a cluster id or a document id."""
    if key.startswith("c"):
        found = out.clusters.filter(pl.col("cluster_id") == key).select("cluster_id").head(1).collect()
        if found.height:
            return key
    found = out.documents.filter(pl.col("doc_id") == key).select("cluster_id").head(1).collect()
    if found.is_empty() or found.item() is None:
        raise _no_cluster(out, key)
    return found.item()


def _members(out: Outputs, cluster_id: str) -> pl.DataFrame:
    """A cluster's documents (no text) with the figures of the edge that brought each one."""
    docs = out.documents.filter(pl.col("cluster_id") == cluster_id).select(
        "doc_id", "parent_id", "depth", "is_origin", "title", "source", *out.meta_columns(), "n_tokens", "completeness",
    )
    edges = out.edges.filter(pl.col("cluster_id") == cluster_id).select(pl.col("child_id").alias("doc_id"), *EDGE_FIGURES)
    return docs.join(edges, on="doc_id", how="left").sort("depth", "doc_id").collect()


# ---------------------------------------------------------------------------- origin


def origin(out: Outputs, doc_id: str) -> dict[str, Any]:
    """The probable origin of ``doc_id`` and the path to it.

    ``path`` runs from the document (step 0) up to the origin; each step but the
    origin carries the figures of the edge from its parent (``change_kind``,
    ``confidence``, ...).  ``path_confidence`` is the product of the edges'
    confidences: a rough chance that every link of the chain is right.
    """
    doc = _document(out, doc_id)
    members = _members(out, doc["cluster_id"])
    by_id = {row["doc_id"]: row for row in members.iter_rows(named=True)}
    path: list[dict[str, Any]] = []
    current: str | None = doc_id
    while current is not None and current in by_id and len(path) <= len(by_id):
        row = by_id[current]
        path.append({"step": len(path), **row})
        current = row["parent_id"]
    confidence = 1.0
    for step in path[:-1]:
        confidence *= step["confidence"] if step["confidence"] is not None else 0.0
    root = path[-1]
    return {
        "doc_id": doc_id,
        "cluster_id": doc["cluster_id"],
        "cluster_size": len(by_id),
        "origin_id": root["doc_id"],
        "origin_title": root["title"],
        "is_origin": len(path) == 1,
        "path_confidence": round(confidence, 6),
        "path": path,
    }


# ---------------------------------------------------------------------------- cluster


def tree_order(doc_ids: Sequence[str], parent_ids: Sequence[str | None]) -> list[tuple[int, int, str]]:
    """Pre-order walk of a forest: ``(row, level, guide)`` per member, children sorted by id.

    ``guide`` is the box-drawing prefix of an indented tree (``"│  └─ "``).
    Members whose parent is not among ``doc_ids`` are roots.
    """
    index = {d: i for i, d in enumerate(doc_ids)}
    children: dict[int, list[int]] = {}
    roots = []
    for i, parent in enumerate(parent_ids):
        if parent is not None and parent in index and index[parent] != i:
            children.setdefault(index[parent], []).append(i)
        else:
            roots.append(i)
    for kids in children.values():
        kids.sort(key=lambda i: doc_ids[i])
    order: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    by_id = sorted(range(len(doc_ids)), key=lambda i: doc_ids[i])
    # Roots first; members caught in a parent cycle (corrupt data) follow as roots of their own.
    for start in [*sorted(roots, key=lambda i: doc_ids[i]), *by_id]:
        stack: list[tuple[int, int, str, str]] = [(start, 0, "", "")]
        while stack:
            row, level, guide, indent = stack.pop()
            if row in seen:
                continue
            seen.add(row)
            order.append((row, level, guide))
            kids = children.get(row, [])
            for pos in range(len(kids) - 1, -1, -1):
                last = pos == len(kids) - 1
                stack.append((kids[pos], level + 1, indent + ("└─ " if last else "├─ "), indent + ("   " if last else "│  ")))
    return order


def cluster(out: Outputs, key: str) -> dict[str, Any]:
    """A cluster (``key``: its id or one of its documents' ids): summary and members in tree order."""
    cluster_id = resolve_cluster(out, key)
    summary = out.clusters.filter(pl.col("cluster_id") == cluster_id).collect()
    members = _members(out, cluster_id)
    order = tree_order(members["doc_id"].to_list(), members["parent_id"].to_list())
    rows = members.to_dicts()
    listed = [{"level": level, "guide": guide, **rows[row]} for row, level, guide in order]
    return {"cluster": summary.row(0, named=True) if summary.height else {"cluster_id": cluster_id}, "members": listed}


# ---------------------------------------------------------------------------- top


def overview(out: Outputs) -> pl.LazyFrame:
    """Every multi-document cluster with the figures :func:`top` ranks by (lazy)."""
    clusters = out.clusters.filter(pl.col("size") > 1)
    per_edge = out.edges.group_by("cluster_id").agg(
        pl.len().alias("n_edges"), pl.col("spin_rate").mean().alias("mean_spin_rate")
    )
    direct = (
        out.edges.join(clusters.select("cluster_id", pl.col("origin_id").alias("parent_id")), on=["cluster_id", "parent_id"])
        .group_by("cluster_id")
        .agg(pl.len().alias("copies"))
    )
    return (
        clusters.join(per_edge, on="cluster_id", how="left")
        .join(direct, on="cluster_id", how="left")
        .with_columns(
            pl.col("copies").fill_null(0).cast(pl.Int32),
            (pl.col("share_spun") * pl.col("n_edges").fill_null(0)).round().cast(pl.Int32).alias("spun"),
            pl.col("mean_spin_rate").fill_null(0.0).round(6),
        )
        .select(
            "cluster_id", "size", "copies", "spun", "max_depth", "share_spun", "share_truncated", "mean_spin_rate",
            "mean_confidence", "n_exact_duplicates", "origin_id", "origin_title",
        )
    )


def top(out: Outputs, by: str = "size", limit: int | None = 10) -> pl.DataFrame:
    """The multi-document clusters ranked by ``by`` (one of :data:`TOP_KEYS`), best first."""
    if by not in TOP_KEYS:
        raise ProvenanceError(f"--by must be one of {', '.join(TOP_KEYS)}, got {by!r}")
    keys = {
        "size": ["size"],
        "copies": ["copies", "size"],
        "spin": ["spun", "mean_spin_rate", "size"],
        "depth": ["max_depth", "size"],
    }[by]
    ranked = overview(out).sort([*keys, "cluster_id"], descending=[True] * len(keys) + [False])
    if limit:
        ranked = ranked.head(limit)
    return ranked.collect()


# ---------------------------------------------------------------------------- find


def phrase_pattern(phrase: str) -> str:
    """A regex for ``phrase`` as :func:`find` matches it (see there); raises on an empty phrase."""
    folded = pl.select(normalize_expr(pl.lit(phrase, dtype=pl.String))).item() or ""
    if not folded.strip():
        raise ProvenanceError("the phrase to find is empty")
    classes = {"'": _QUOTE_CLASS, '"': _DQUOTE_CLASS, "-": _DASH_CLASS}
    parts = []
    for token in re.findall(r"\s+|.", folded.strip(), flags=re.DOTALL):
        if token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(classes.get(token) or pl.escape_regex(token))
    return "(?i)" + "".join(parts)


def _char_class(target: str) -> str:
    variants = [target] + sorted(k for k, v in FOLD.items() if v == target)
    return "[" + "".join(pl.escape_regex(c) if c in "\\[]^-" else c for c in variants) + "]"


_QUOTE_CLASS, _DQUOTE_CLASS, _DASH_CLASS = _char_class("'"), _char_class('"'), _char_class("-")


def find(out: Outputs, phrase: str, limit: int | None = 20, context: int = 60) -> tuple[pl.DataFrame, int]:
    """The clusters whose documents (title or text) contain ``phrase``.

    Matching ignores case, treats any run of white space (line breaks
    included) as one space, and lets typographic quotes and dashes match their
    ASCII forms both ways, so ``china's  support`` finds ``China’s support``.
    The phrase itself is normalised as the pipeline normalises text (NFKC);
    the documents are searched as stored, with one regular expression, so a
    search stays a fast scan of the ``text`` column.

    Returns up to ``limit`` clusters, largest first (``cluster_id``, ``size``,
    ``matches`` = documents that contain it, ``origin_id``, ``origin_title``,
    ``first_match`` and a ``snippet`` around the first match), and the number of
    clusters found in all.
    """
    pattern = phrase_pattern(phrase)
    window = f"(?is)(.{{0,{context}}}{pattern[4:]}.{{0,{context}}})"
    title = pl.col("title").fill_null("")
    hits = (
        out.documents.select("doc_id", "cluster_id", "title", "text")
        .filter(pl.col("text").str.contains(pattern) | title.str.contains(pattern))
        .select(
            "doc_id", "cluster_id",
            pl.coalesce(pl.col("text").str.extract(window, 1), title.str.extract(window, 1))
            .str.replace_all(r"\s+", " ").alias("snippet"),
        )
    )
    per_cluster = (
        hits.sort("doc_id")
        .group_by("cluster_id")
        .agg(pl.len().cast(pl.Int32).alias("matches"), pl.col("doc_id").first().alias("first_match"), pl.col("snippet").first())
        .join(out.clusters.select("cluster_id", "size", "origin_id", "origin_title"), on="cluster_id", how="left")
        .select("cluster_id", "size", "matches", "origin_id", "origin_title", "first_match", "snippet")
        .sort(["size", "matches", "cluster_id"], descending=[True, True, False])
        .collect(engine="streaming")  # the text column is read in batches, not all at once
    )
    total = per_cluster.height
    return (per_cluster.head(limit) if limit else per_cluster), total


# ---------------------------------------------------------------------------- diff

#: Segment kinds of an alignment.
EQUAL, INSERT, DELETE, SUBSTITUTE = "equal", "insert", "delete", "substitute"


@dataclass(frozen=True)
class Segment:
    """A run of aligned tokens: ``parent`` and ``child`` text ("" for the side without it).

    Text is the documents' normalised text (NFKC, ASCII quotes and dashes, folded
    white space; case and punctuation kept), each token with the punctuation
    and white space that follow it.  A run never spans a line break of the side
    it is shown on (the child's, or the parent's for deletions), so the runs
    can be laid out line by line.
    """

    op: str
    parent: str
    child: str
    tokens: int


@dataclass
class Alignment:
    """The aligned change from a parent text to a child text."""

    segments: list[Segment]
    counts: dict[str, int] = field(default_factory=dict)
    #: True when a side had more than the run's ``max_align_tokens`` tokens (its tail is not aligned).
    capped: bool = False


_Display = tuple[str, list[str], bool]


def _display_tokens(texts: pl.Series, tokens: list[Words]) -> list[_Display]:
    """Per text: leading non-word text, one piece per aligned token (the token in its case plus what follows it), capped flag.

    The aligned tokens themselves come from :func:`provenance.prepare.words.doc_words`
    (the very tokens the edge statistics were computed on); pieces only restore
    case and punctuation for display.  Should they disagree for a text (a
    Unicode corner case), the lower-case tokens are shown instead.
    """
    frame = pl.DataFrame({"text": texts}).select(
        normalize_expr(pl.col("text")).alias("norm"), words_expr(pl.col("text")).alias("words"),
    ).select(
        pl.col("norm").str.extract(r"^(\W*)", 1).fill_null("").alias("lead"),
        pl.col("norm").str.extract_all(PIECE_PATTERN).alias("pieces"),
        "words",
    )
    out: list[_Display] = []
    for (lead, pieces, words), tok in zip(frame.iter_rows(), tokens):
        n = len(tok.tokens)
        capped = len(words or []) > n
        if words is not None and words[:n] == tok.tokens and len(pieces) >= n:
            pieces = pieces[:n]
            for i in range(len(pieces) - 1):  # what follows a line break opens the next line: it goes with the next token
                cut = pieces[i].rfind("\n")
                if 0 <= cut < len(pieces[i]) - 1:
                    pieces[i], pieces[i + 1] = pieces[i][: cut + 1], pieces[i][cut + 1 :] + pieces[i + 1]
            out.append((lead, pieces, capped))
        else:
            lines = [*tok.lines.tolist(), int(tok.lines[-1]) if len(tok.lines) else 0]
            out.append(("", [w + ("\n" if lines[i + 1] != lines[i] else " ") for i, w in enumerate(tok.tokens)], capped))
    return out


def _runs(pieces: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut after every piece that ends a line."""
    cuts, begin = [], start
    for i in range(start, end):
        if "\n" in pieces[i]:
            cuts.append((begin, i + 1))
            begin = i + 1
    if begin < end:
        cuts.append((begin, end))
    return cuts


def _align(parent: _Display, child: _Display, p_words: Words, c_words: Words, options: ChangesOptions) -> Alignment:
    """Display segments of the edge statistics' own classified alignment (``trace.changes.segments``)."""
    p_lead, p, p_capped = parent
    c_lead, c, c_capped = child
    segments: list[Segment] = []
    counts = {"kept": 0, "inserted": 0, "deleted": 0, "substituted": 0}

    def text(pieces: list[str], lead: str, start: int, end: int) -> str:
        return (lead if start == 0 else "") + "".join(pieces[start:end])

    for seg in changes.segments(p_words, c_words, options):
        ps, pe, cs, ce = seg.ps, seg.pe, seg.cs, seg.ce
        if seg.op == changes.EQUAL:
            counts["kept"] += pe - ps
            for a, b in _runs(c, cs, ce):
                segments.append(Segment(EQUAL, text(p, p_lead, ps + a - cs, ps + b - cs), text(c, c_lead, a, b), b - a))
        elif seg.op == changes.SUBSTITUTE:
            counts["substituted"] += pe - ps
            for a, b in _runs(c, cs, ce):  # word for word: the parent side is cut at the same words
                segments.append(Segment(SUBSTITUTE, text(p, p_lead, ps + a - cs, ps + b - cs), text(c, c_lead, a, b), b - a))
        elif seg.op == changes.DELETE:
            counts["deleted"] += pe - ps
            for a, b in _runs(p, ps, pe):
                segments.append(Segment(DELETE, text(p, p_lead, a, b), "", b - a))
        else:
            counts["inserted"] += ce - cs
            for a, b in _runs(c, cs, ce):
                segments.append(Segment(INSERT, "", text(c, c_lead, a, b), b - a))
    counts["parent_tokens"], counts["child_tokens"] = len(p_words.tokens), len(c_words.tokens)
    return Alignment(segments, counts, p_capped or c_capped)


def align_texts(pairs: Sequence[tuple[str, str]], options: ChangesOptions) -> list[Alignment]:
    """Align many ``(parent_text, child_text)`` pairs; tokenisation is one vectorised pass over all texts.

    The alignment is :mod:`provenance.trace.changes`' (rapidfuzz Levenshtein opcodes
    over the same lower-case tokens, an unequal replace split into
    substitutions plus insertions or deletions), so the counts equal the edge's
    ``kept``, ``inserted``, ``deleted`` and ``substituted``.
    """
    if not pairs:
        return []
    texts = [t for pair in pairs for t in pair]
    unique = list(dict.fromkeys(texts))
    series = pl.Series("text", unique, dtype=pl.String)
    tokens = doc_words(series, options.max_align_tokens)
    display = dict(zip(unique, _display_tokens(series, tokens)))
    words = dict(zip(unique, tokens))
    return [_align(display[p], display[c], words[p], words[c], options) for p, c in pairs]


def diff(out: Outputs, parent_id: str, child_id: str) -> dict[str, Any]:
    """The aligned change from ``parent_id`` to ``child_id`` (any two documents, not only tree edges).

    Returns both documents' id, title and cluster, the tree edge's figures when
    ``child_id`` was copied from ``parent_id`` (else ``edge`` is None) and the
    :class:`Alignment`.
    """
    wanted = [parent_id, child_id]
    docs = (
        out.documents.filter(pl.col("doc_id").is_in(wanted))
        .select("doc_id", "cluster_id", "title", "source", *out.meta_columns(), "text")
        .collect()
    )
    found = {row["doc_id"]: row for row in docs.iter_rows(named=True)}
    for doc_id in wanted:
        if doc_id not in found:
            raise ProvenanceError(f"unknown document {doc_id!r} in {out.out_dir}")
    edge = (
        out.edges.filter(pl.col("parent_id") == parent_id, pl.col("child_id") == child_id)
        .select(*EDGE_FIGURES)
        .collect()
    )
    options = out.config().changes
    max_tokens = options.max_align_tokens
    alignment = align_texts([(found[parent_id]["text"], found[child_id]["text"])], options)[0]
    strip = lambda row: {k: v for k, v in row.items() if k != "text"}
    return {
        "parent": strip(found[parent_id]),
        "child": strip(found[child_id]),
        "edge": edge.row(0, named=True) if edge.height else None,
        "alignment": alignment,
        "max_tokens": max_tokens,
        "passages": passages(out, parent_id, child_id, found[parent_id]["text"], found[child_id]["text"]),
    }


def passages(out: Outputs, parent_id: str, child_id: str, parent_text: str, child_text: str) -> list[dict[str, Any]]:
    """The edge's aligned passages (``evidence.parquet``) with the text of each side; none when it is no tree edge."""
    path = out.folder / "evidence.parquet"
    if not path.exists():
        return []
    rows = (
        pl.scan_parquet(path).filter(pl.col("parent_id") == parent_id, pl.col("child_id") == child_id)
        .select("parent_start", "parent_end", "child_start", "child_end", "tokens", "similarity", "kind")
        .collect().rows(named=True)
    )
    for row in rows:
        row["parent_text"] = parent_text[row["parent_start"] : row["parent_end"]]
        row["child_text"] = child_text[row["child_start"] : row["child_end"]]
    return rows
