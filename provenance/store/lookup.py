"""Lookup: is a text a version of something already in a store, and of what?

:func:`lookup` answers for one text, :meth:`StoreLookup.lookup_source` for a
batch (a DataFrame or input files, read as ``provenance run`` reads them).  It
never writes to the store: it reads the lookup index the last store run wrote
(``provenance.store.index``) and, per query, only its candidates and the
clusters they belong to.  Per query, as an incremental run adding it would:

1. **prepare**: the text is ingested, normalised, shingled and signed with the
   store's options, boilerplate keys and frequent shingles
   (``provenance.prepare``);
2. **candidates**: its band keys find its LSH buckets by ``searchsorted`` in
   the index's sorted band keys; as in ``lsh.candidate_pairs`` it is paired
   with its ``bucket_window`` neighbours on either side in bucket order;
3. **verify and evidence**: the link stage's :class:`~provenance.link.stage.Verifier`
   (prefilter, pair rule) and :func:`~provenance.link.stage.copy_evidence`
   (aligned passages, ``copy_confidence``) against the store's floating lines;
4. **cluster**: the query joins the cluster of its strongest copy pair (the
   link stage applies edges strongest first, and a lone document joins on its
   edge); other clusters it copies from are listed;
5. **trace**: that cluster's members and the query are traced with the trace
   stage (``trace.stage.trace_clusters``: the derivation model, over the
   store's corpus counts updated for the query), giving the origin, the
   query's parent and ``parent_confidence``; the edge's change statistics and
   evidence passages come from ``trace.changes`` and ``trace.passages``.

Statuses: ``matched``; ``no_match``; ``stored`` (the same text, by content
hash, is in the store: answered with that document's row); ``rejected``
(empty, too short, ...: ``reason`` says why).

What differs from an incremental run (see README, "Lookup"): the query cannot
change the store's corpus-wide state, so a line that the query would make
boilerplate or floating, a frequent-shingle or frequency sample that would
shift, and merges the query would cause between two stored clusters are not
reproduced; each query of a batch is looked up alone.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import Ingested, Source, ingest
from provenance.link import lsh
from provenance.link.cluster import grow_clusters
from provenance.link.stage import EVIDENCE_COLUMNS, EXACT_STRENGTH, Linked, Verifier, copy_evidence
from provenance.link.verify import PairRule
from provenance.prepare import normalize
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import Prepared, hex_hashes, shingle_batch
from provenance.store import index as store_index
from provenance.store import layout
from provenance.titles import first_titles
from provenance.trace import derivation, passages
from provenance.link.verify import intersection_sizes
from provenance.trace.stage import CorpusFacts, derive_clusters, edge_figures, lineage_of_members, published_times, sub_corpus

STATUSES = ("matched", "no_match", "stored", "rejected")
#: Edge statistics reported for a match (columns of ``edges.parquet``).
CHANGE_COLUMNS = (
    "change_kind", "similarity", "jaccard", "containment_child_in_parent", "containment_parent_in_child",
    "parent_tokens", "child_tokens", "kept", "inserted", "deleted", "substituted", "is_truncation", "spin_rate",
    "boilerplate_lines_added", "sentences_reordered", "substitution_examples", "rewritten", "evidence_tokens",
)
#: The columns of a copy pair the trace and the evidence read.
PAIR_COLUMNS = ("a", "b", "containment", "jaccard", "exact", *EVIDENCE_COLUMNS)


@dataclass
class ClusterMatch:
    """A stored cluster the query copies from: its id, size, origin, and the query's best copy pair into it."""

    cluster_id: str
    size: int
    origin_id: str
    best_doc_id: str
    copy_confidence: float


@dataclass
class EvidencePassage:
    """An aligned passage between the parent (or child) and the query: offsets into both texts and the texts."""

    other_start: int
    other_end: int
    query_start: int
    query_end: int
    tokens: int
    similarity: float
    kind: str
    other_text: str
    query_text: str


@dataclass
class LookupResult:
    """The answer for one query (``status`` one of :data:`STATUSES`)."""

    query_id: str
    status: str
    #: Why not matched: a reject reason (``rejects.parquet``'s: ``empty_text``, ``too_short``...) or a sentence.
    reason: str | None = None
    detail: str | None = None
    cluster_id: str | None = None
    #: Every stored cluster the query copies from (best copy pair first); several when the query would merge them.
    clusters: list[ClusterMatch] = field(default_factory=list)
    #: Stored documents of the cluster the query would be in (ids in order).
    members: list[str] = field(default_factory=list)
    origin_id: str | None = None
    origin_title: str | None = None
    #: The query would be its cluster's origin (the stored origin is then its descendant).
    is_origin: bool = False
    parent_id: str | None = None
    parent_title: str | None = None
    #: ``parent``: changes are parent -> query; ``child``: the query is the origin, changes are query -> this member.
    relation: str | None = None
    copy_confidence: float | None = None
    parent_confidence: float | None = None
    confidence: float | None = None
    changes: dict[str, Any] | None = None
    passages: list[EvidencePassage] = field(default_factory=list)
    #: For ``stored``: the stored document with this text.
    stored_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _take(sets: ShingleSets, rows: np.ndarray) -> ShingleSets:
    """``sets.take(rows)`` without a pass over every offset (``sets`` may be memory-mapped)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = np.asarray(sets.offsets[rows]), np.asarray(sets.offsets[rows + 1])
    sizes = ends - starts
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    parts = [np.asarray(sets.hashes[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.asarray(sets.hashes[:0]).dtype)
    return ShingleSets(hashes, offsets)


@dataclass
class Query:
    """One accepted query, prepared as a run prepares a document: its row, views and signatures (one row each)."""

    doc: dict[str, Any]
    views: dict[str, ShingleSets]
    signatures: dict[str, np.ndarray]
    #: Stored rows holding a short line this query makes boilerplate, shingled and signed anew: ``row -> (views, signatures)``.
    dirty: dict[int, tuple[dict[str, ShingleSets], dict[str, np.ndarray]]] = field(default_factory=dict)


def store_of(folder: Path) -> Path:
    """The store behind ``folder``: itself, or, for a store run's ``--out`` (a link to ``STORE/gen-N/out``), that store.

    A store run's output folder keeps no signatures itself; the store it links
    into does, so a lookup over the output folder reads that store's index.
    """
    if (folder / layout.MANIFEST).is_file() or not (folder / "documents.parquet").exists():
        return folder
    target = folder.resolve()
    store = target.parent.parent
    if target.name == "out" and target.parent.name.startswith("gen-") and (store / layout.MANIFEST).is_file():
        return store
    return folder


class StoreLookup:
    """A store opened for lookups (read only; index arrays memory-mapped, tables read on first use)."""

    def __init__(self, store_dir: Path | str) -> None:
        self.store_dir = store_of(Path(store_dir))
        path = self.store_dir / layout.MANIFEST
        if not path.is_file():
            if (self.store_dir / "documents.parquet").exists():
                raise ProvenanceError(
                    f"{self.store_dir} is the output folder of a run without --store, which keeps no signatures: "
                    "run with --store DIR and look up against that store"
                )
            raise ProvenanceError(f"{self.store_dir} is not a provenance store (no {layout.MANIFEST}); pass --store DIR of a store run")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ProvenanceError(f"cannot read {path}: {exc}") from None
        if data.get("format_version") != layout.FORMAT_VERSION:
            raise ProvenanceError(f"store {self.store_dir} has format version {data.get('format_version')}, this provenance reads {layout.FORMAT_VERSION}")
        self.generation = int(data["generation"])
        gen_dir = layout.generation_dir(self.store_dir, self.generation)
        idx = store_index.index_dir(gen_dir)
        if data.get("lookup_index") != store_index.INDEX_VERSION or not (idx / "meta.json").is_file():
            raise ProvenanceError(
                f"store {self.store_dir} has no lookup index (written by an older provenance): "
                "run it once more (provenance run NEW --store DIR) and look up again"
            )
        self.config = Config.from_options(data.get("options", {}))
        if self.config.fingerprint() != data.get("config_fingerprint"):
            raise ProvenanceError(
                f"store {self.store_dir} was built under config fingerprint {str(data.get('config_fingerprint'))[:12]}, "
                "which this provenance's constants no longer give: rebuild the store with this version"
            )
        self.index = store_index.StoreIndex.open(idx)

    # ------------------------------------------------------------------ public

    def lookup_text(self, text: str, doc_id: str = "query") -> LookupResult:
        """The answer for one text (``doc_id`` names it, as an id would in a run's input)."""
        return self.lookup_source(pl.DataFrame({"id": [doc_id], "text": [text]}, schema={"id": pl.String, "text": pl.String}))[0]

    def lookup_source(self, source: Source) -> list[LookupResult]:
        """Answers for every query of ``source`` (a DataFrame with ``id``/``text``, or input paths), in id order, rejects last."""
        options = self.config.ingest
        if isinstance(source, pl.DataFrame) and options.id_column not in source.columns and "id" in source.columns:
            source = source.rename({"id": options.id_column})
        got = ingest(source, options)
        return self.lookup_ingested(got)

    def lookup_ingested(self, got: Ingested) -> list[LookupResult]:
        """Answers for ingested documents (``ingest.ingest``) and their rejects: each query looked up alone."""
        docs = got.documents
        results: list[LookupResult] = []
        queries: list[Query] = []
        if docs.height:
            prep = self.config.prepare
            summary = normalize.summarize(docs["text"], prep.seed, prep.boilerplate_max_tokens)
            n_tokens, content = summary.n_tokens, summary.content_hash
            stored = self.index.stored_rows(content.astype(np.uint64))
            docs = docs.with_columns(
                pl.Series("content_hash", hex_hashes(content), dtype=pl.String),
                pl.Series("n_tokens", n_tokens, dtype=pl.Int32),
                pl.col("text").str.len_chars().cast(pl.Int32).alias("n_chars"),
            )
            keep = (n_tokens >= prep.min_tokens) & (stored < 0)
            for i in np.flatnonzero(~keep).tolist():
                qid = docs["doc_id"][i]
                if n_tokens[i] < prep.min_tokens:
                    results.append(LookupResult(qid, "rejected", reason="too_short" if n_tokens[i] else "empty_text",
                                                detail=f"fewer than {prep.min_tokens} tokens"))
                else:
                    results.append(self._stored(qid, int(stored[i])))
            queries = self.prepare(docs.filter(pl.Series(keep)))
        with _one_thread():
            results += [self._lookup_one(q) for q in queries]
        for rej in got.rejects.iter_rows(named=True):
            results.append(LookupResult(rej["doc_id"] or rej["source"], "rejected", reason=rej["reason"], detail=rej["detail"] or None))
        return sorted(results, key=lambda r: (r.status == "rejected", "" if r.status == "rejected" else r.query_id))

    def prepare(self, documents: pl.DataFrame) -> list[Query]:
        """Views and signatures of ``documents`` (``doc_id``, ``text``, ...) under the store's options, boilerplate and frequent shingles.

        A short line the store holds in one document fewer than boilerplate
        needs becomes boilerplate with the query: the query is shingled
        without it, and so are the stored documents holding it (``Query.dirty``),
        as an incremental run would re-prepare them.
        """
        if documents.height == 0:
            return []
        prep, corpus = self.config.prepare, self.index.corpus
        summary = normalize.summarize(documents["text"], prep.seed, prep.boilerplate_max_tokens)
        n_tokens = summary.n_tokens
        views = shingle_batch(documents["text"], 0, corpus["boilerplate_keys"], prep, n_tokens, corpus["frequent_words"])
        if "title" not in documents.columns:
            documents = documents.with_columns(pl.lit(None, pl.String).alias("title"))
        if documents["title"].is_null().any():  # as a run titles them (``provenance.titles``)
            documents = documents.with_columns(pl.coalesce("title", first_titles(documents["text"], views.boilerplate)).alias("title"))
        near_key, near_row = corpus.get("near_key", np.zeros(0, np.uint64)), corpus.get("near_row", np.zeros(0, np.int64))
        out = []
        for k, row in enumerate(documents.iter_rows(named=True)):
            flips = np.intersect1d(summary.line_key[summary.line_doc == k], near_key)
            if len(flips) == 0:
                out.append(Query(row, {v: views.views[v].take(np.array([k])) for v in store_index.VIEWS},
                                 {v: views.signatures[v][k : k + 1] for v in store_index.VIEWS}))
                continue
            keys = np.union1d(corpus["boilerplate_keys"], flips).astype(np.uint64)
            own = shingle_batch(documents["text"].slice(k, 1), 0, keys, prep, n_tokens[k : k + 1], corpus["frequent_words"])
            query = Query(row, own.views, own.signatures)
            rows = np.unique(near_row[np.isin(near_key, flips)])
            stored = self.index.members(np.unique(np.asarray(self.index.row_cluster[rows])))
            stored = stored.filter(pl.col("row").is_in(pl.Series(rows).implode())).sort("row")
            redone = shingle_batch(stored["text"], 0, keys, prep, stored["n_tokens"].to_numpy(), corpus["frequent_words"])
            for j, r in enumerate(stored["row"].to_list()):
                query.dirty[int(r)] = ({v: redone.views[v].take(np.array([j])) for v in store_index.VIEWS},
                                       {v: redone.signatures[v][j : j + 1] for v in store_index.VIEWS})
            out.append(query)
        return out

    def _sets(self, rows: np.ndarray, query: Query) -> tuple[dict[str, ShingleSets], dict[str, np.ndarray]]:
        """Views and signatures of stored ``rows`` as this query sees them (its ``dirty`` rows shingled anew)."""
        views = {v: _take(self.index.views[v], rows) for v in store_index.VIEWS}
        signatures = {v: np.array(self.index.signatures[v][rows]) for v in store_index.VIEWS}
        redo = [(i, query.dirty[r]) for i, r in enumerate(rows.tolist()) if r in query.dirty]
        for v in store_index.VIEWS:
            if not redo:
                break
            parts, at = [], 0
            for i, (own_views, own_sigs) in redo:
                parts += [views[v].take(np.arange(at, i)), own_views[v]]
                signatures[v][i] = own_sigs[v][0]
                at = i + 1
            parts.append(views[v].take(np.arange(at, len(rows))))
            views[v] = ShingleSets.concat(parts)
        return views, signatures

    # ------------------------------------------------------------------ steps

    def _stored(self, qid: str, row: int) -> LookupResult:
        members = self.index.members(np.array([self.index.row_cluster[row]]))
        me = members.filter(pl.col("row") == row).row(0, named=True)
        origin = members.filter("is_origin").row(0, named=True)
        parent = members.filter(pl.col("doc_id") == me["parent_id"]) if me["parent_id"] else members.clear()
        return LookupResult(
            qid, "stored", reason="the same text (content hash) is in the store", cluster_id=me["cluster_id"],
            origin_id=origin["doc_id"], origin_title=origin["title"], is_origin=bool(me["is_origin"]),
            parent_id=me["parent_id"], parent_title=parent["title"][0] if parent.height else None, stored_id=me["doc_id"],
            relation="parent" if me["parent_id"] else None,
        )

    def _position(self, qid: str) -> int:
        """The query's corpus row if it were added: stored rows are sorted by ``doc_id``."""
        return int(self.index.doc_ids.search_sorted(qid, side="left"))

    def candidates(self, query: Query) -> np.ndarray:
        """Stored rows the query is paired with in some LSH bucket (its ``bucket_window`` neighbours either side)."""
        window = self.config.link.bucket_window
        offsets = self.index.views["words"].offsets
        rank_q = -int(query.views["words"].sizes()[0])
        position: int | None = None
        found: list[np.ndarray] = []
        for view in store_index.VIEWS:
            sig = query.signatures[view]
            if (sig == lsh.EMPTY).all():
                continue
            bands, rows_per_band = self.index.band_params(view)
            keys, rows = self.index.band_table(view)
            qkeys = lsh.band_keys(np.ascontiguousarray(sig), bands, rows_per_band)[0]
            for band in range(bands):
                lo = int(np.searchsorted(keys[band], qkeys[band], side="left"))
                hi = int(np.searchsorted(keys[band], qkeys[band], side="right"))
                if hi == lo:
                    continue
                members = np.asarray(rows[band, lo:hi]).astype(np.int64)
                if query.dirty:  # shingled anew: they are found by their new keys below
                    members = members[~np.isin(members, list(query.dirty))]
                rank = -(np.asarray(offsets[members + 1]) - np.asarray(offsets[members]))
                before = rank < rank_q
                tied = rank == rank_q
                if tied.any():
                    position = self._position(query.doc["doc_id"]) if position is None else position
                    before |= tied & (members < position)
                at = int(before.sum())  # bucket order is (rank, row): ``before`` is a prefix
                found.append(members[max(0, at - window) : at + window])
            for r, (_, own_sigs) in query.dirty.items():
                if (own_sigs[view] == lsh.EMPTY).all():
                    continue
                if (lsh.band_keys(np.ascontiguousarray(own_sigs[view]), bands, rows_per_band)[0] == qkeys).any():
                    found.append(np.array([r], dtype=np.int64))
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def _mini(self, rows: np.ndarray, query: Query, documents: pl.DataFrame | None) -> Prepared:
        """A small corpus of stored ``rows`` then the query (``documents``: its frame, texts included, in that order)."""
        stored_views, stored_sigs = self._sets(rows, query)
        views = {v: ShingleSets.concat([stored_views[v], query.views[v]]) for v in store_index.VIEWS}
        signatures = {v: np.concatenate([stored_sigs[v], query.signatures[v]]) for v in store_index.VIEWS}
        if documents is None:
            documents = pl.DataFrame({"doc_id": [f"{r}" for r in rows.tolist()] + [query.doc["doc_id"]]})
        return Prepared(documents, pl.DataFrame(), views, signatures, frequent=self.index.corpus["frequent_words"])

    def _lookup_one(self, query: Query) -> LookupResult:
        qid = query.doc["doc_id"]
        cands = self.candidates(query)
        if len(cands) == 0:
            return LookupResult(qid, "no_match", reason="no stored document shares an LSH bucket with it")
        config = self.config
        mini = self._mini(cands, query, None)
        k = len(cands)
        packed = (np.arange(k, dtype=np.uint64) << np.uint64(32)) | np.uint64(k)
        verifier = Verifier(mini, config, None)
        passed = verifier.fresh(packed)
        a, _ = lsh.unpack(passed)
        verified = cands[a]
        if len(verified) == 0:
            return LookupResult(qid, "no_match", reason=f"{k} LSH candidates, none passes the pair rule")
        clusters = np.unique(np.asarray(self.index.row_cluster[verified]))
        members = self.index.members(clusters)
        # Evidence on the verified pairs, against the store's floating lines.
        by_row = members.select("row", "doc_id", "text").join(pl.DataFrame({"row": verified}), on="row", how="semi").sort("row")
        ev_rows = by_row["row"].to_numpy()
        docs = pl.concat([by_row.select("doc_id", "text"), pl.DataFrame({"doc_id": [qid], "text": [query.doc["text"]]})])
        ev = self._mini(ev_rows, query, docs)
        m = len(ev_rows)
        pairs = pl.DataFrame({"a": np.arange(m), "b": np.full(m, m), "exact": np.zeros(m, dtype=bool)},
                             schema={"a": pl.UInt32, "b": pl.UInt32, "exact": pl.Boolean})
        contained, jaccard = verifier.rule.scores(ev.views, pairs["a"].to_numpy(), pairs["b"].to_numpy())
        pairs = pairs.with_columns(pl.Series("containment", contained), pl.Series("jaccard", jaccard))
        scored, *_ = copy_evidence(ev, pairs, config, floating=self.index.floating)
        scored = scored.with_columns(pl.Series("row", ev_rows[scored["a"].to_numpy().astype(np.int64)], dtype=pl.Int64))
        copies = scored.filter("copied")
        if copies.height == 0:
            return LookupResult(qid, "no_match", reason=f"shares text with {m} stored document(s), but no evidence of copying")
        stored_row = copies["row"].to_numpy()
        copies = copies.with_columns(pl.Series("cluster", np.asarray(self.index.row_cluster[stored_row]))).sort(
            ["containment", "row"], descending=[True, False]
        )
        matches = self._matches(copies, members)
        group, pairs = self._grow(query, copies, members.filter(pl.col("cluster").is_in(copies["cluster"].unique().implode())))
        return self._trace(query, group, pairs, matches)

    def _grow(self, query: Query, copies: pl.DataFrame, members: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The stored members the query's cluster would hold, and every copy pair among them and the query.

        The link stage's own growth (``link.cluster.grow_clusters``: strongest
        edge first, founders' vote on merges) runs over the clusters the query
        copies from, their stored copy pairs (refused merges included) and the
        query's, in the would-be corpus order: the query may join one cluster
        or merge several, as an incremental run would decide.
        """
        members = members.sort("row")
        rows = members["row"].to_numpy()
        position = self._position(query.doc["doc_id"])
        at = int(np.searchsorted(rows, position))  # the query's place among them (rows are in id order)
        local = np.arange(len(rows)) + (np.arange(len(rows)) >= at)
        stored = self.index.copies.filter(pl.col("cluster").is_in(members["cluster"].unique().implode()))
        stored = stored.filter(pl.col("b").is_in(pl.Series(rows).implode()))
        sa = local[np.searchsorted(rows, stored["a"].to_numpy())]
        sb = local[np.searchsorted(rows, stored["b"].to_numpy())]
        qa = local[np.searchsorted(rows, copies["row"].to_numpy())]
        qb = np.full(len(qa), at)
        a, b = np.concatenate([sa, qa]), np.concatenate([sb, qb])
        columns = {
            name: pl.concat([stored[name].cast(pl.Boolean if name == "exact" else pl.Float64),
                             copies[name].cast(pl.Boolean if name == "exact" else pl.Float64)])
            for name in PAIR_COLUMNS[2:]
        }
        pairs = pl.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), **columns}).with_columns(
            pl.col("a").cast(pl.UInt32), pl.col("b").cast(pl.UInt32)
        )
        order = np.insert(np.arange(len(rows)), at, len(rows))  # mini corpus rows: stored members, the query at ``at``
        mini = self._mini(rows, query, None)
        views = {v: sets.take(order) for v, sets in mini.views.items()}
        rule = PairRule.of(self.config.link)
        if query.dirty:  # stored pairs of documents shingled anew: measured again, kept if they still pass
            touched = np.isin(stored["a"].to_numpy(), list(query.dirty)) | np.isin(stored["b"].to_numpy(), list(query.dirty))
            touched = np.r_[touched, np.zeros(len(qa), dtype=bool)]
            if touched.any():
                a_t, b_t = pairs["a"].to_numpy()[touched].astype(np.int64), pairs["b"].to_numpy()[touched].astype(np.int64)
                c_t, j_t = rule.scores(views, a_t, b_t)
                containment, jaccard = pairs["containment"].to_numpy().copy(), pairs["jaccard"].to_numpy().copy()
                containment[touched], jaccard[touched] = c_t, j_t
                exact = pairs["exact"].to_numpy()
                keep = exact | rule.clears(containment, jaccard)
                pairs = pairs.with_columns(pl.Series("containment", containment), pl.Series("jaccard", jaccard)).filter(pl.Series(keep))
        edges = pairs.with_columns(
            pl.when(pl.col("exact")).then(EXACT_STRENGTH).otherwise(pl.col("containment")).alias("strength")
        )
        roots = grow_clusters(len(order), edges, views, rule, self.config.link.cluster_founders)
        inside = np.flatnonzero(roots == roots[at])
        kept_local = inside[inside != at]
        kept_rows = rows[kept_local - (kept_local > at)]
        group = members.filter(pl.col("row").is_in(pl.Series(kept_rows).implode()))
        # Back to stored rows (the query as -1) for the trace, which builds its own corpus.
        back = np.insert(rows, at, -1)
        a_row, b_row = back[pairs["a"].to_numpy().astype(np.int64)], back[pairs["b"].to_numpy().astype(np.int64)]
        keep = np.isin(a_row, np.r_[kept_rows, -1]) & np.isin(b_row, np.r_[kept_rows, -1])
        pairs = pairs.with_columns(pl.Series("a", a_row), pl.Series("b", b_row)).filter(pl.Series(keep))
        return group, pairs

    def _edge(self, mini: Prepared, pairs: pl.DataFrame, parent: int, child: int, parent_confidence: float) -> pl.DataFrame:
        """The tree edge ``parent -> child`` (rows of ``mini``) with its similarity and change statistics (``trace.stage.edge_figures``)."""
        rows = np.sort(np.array([parent, child], dtype=np.int64))
        sub, _ = sub_corpus(mini, pairs, rows)
        lineage = lineage_of_members(sub.documents["text"], np.zeros(2, dtype=np.int64), self.config)
        p, c = np.searchsorted(rows, [parent, child])
        inter = float(intersection_sizes(lineage, np.array([c]), np.array([p]))[0])
        size = float(lineage.sizes()[c])
        edges = pl.DataFrame(
            {"child": [c], "parent": [p], "score": [inter / size if size > 0 else 0.0], "parent_confidence": [parent_confidence]},
            schema={"child": pl.Int64, "parent": pl.Int64, "score": pl.Float64, "parent_confidence": pl.Float64},
        )
        return edge_figures(sub, edges, rows, self.config)

    def _matches(self, copies: pl.DataFrame, members: pl.DataFrame) -> list[ClusterMatch]:
        best = copies.unique("cluster", keep="first", maintain_order=True)
        out = []
        for row in best.iter_rows(named=True):
            group = members.filter(pl.col("cluster") == row["cluster"])
            origin = group.filter("is_origin")
            out.append(ClusterMatch(
                group["cluster_id"][0], group.height, origin["doc_id"][0] if origin.height else group["doc_id"][0],
                group.filter(pl.col("row") == row["row"])["doc_id"][0], float(row["copy_confidence"]),
            ))
        return out

    @cached_property
    def _stored_facts(self) -> derivation.DerivationFacts:
        return self.index.facts

    @cached_property
    def _histograms(self) -> dict[str, np.ndarray]:
        """``np.bincount`` of each stored count (see :func:`least_of_histogram`)."""
        facts = self.index.facts
        return {name: np.bincount(np.asarray(getattr(facts, name).counts).astype(np.int64)) for name in ("words", "lines", "grams")}

    def _facts(self, group: pl.DataFrame, query: Query) -> CorpusFacts:
        """The store's corpus counts as they are with ``group``'s clusters and the query as one cluster (``trace.stage.corpus_facts``).

        Counts are clusters holding a value: the stored clusters that were
        counted (multi-document ones, sampled singletons) give theirs up, the
        merged cluster counts once.
        """
        stored = self._stored_facts
        texts = group["text"]
        with_query = derivation.fact_parts(pl.concat([texts, pl.Series([query.doc["text"]])]), np.zeros(len(texts) + 1, np.int64), self.config.trace)
        sizes = group.group_by("cluster").agg(pl.len().alias("size"), pl.col("row").first())
        counted = sizes.filter((pl.col("size") > 1) | pl.Series(self.index.corpus["in_sample"][sizes["row"].to_numpy()]))["cluster"]
        before = group.filter(pl.col("cluster").is_in(counted.implode()))
        without = derivation.fact_parts(before["text"], before["cluster"].to_numpy(), self.config.trace) if before.height else None
        updated = []
        for i, (name, column) in enumerate((("words", "token"), ("lines", "key"), ("grams", "gram"))):
            delta = with_query[i].select(pl.col(column).cast(pl.UInt64), pl.col("n"))
            if without is not None:
                delta = pl.concat([delta, without[i].select(pl.col(column).cast(pl.UInt64), -pl.col("n"))])
            delta = delta.group_by(column).agg(pl.col("n").sum()).filter(pl.col("n") != 0)
            updated.append(_bump(getattr(stored, name), self._histograms[name], delta[column].to_numpy(), delta["n"].to_numpy()))
        n_clusters = stored.n_clusters + 1 - counted.len()
        dfacts = derivation.DerivationFacts(updated[0], n_clusters, updated[1], updated[2])
        return CorpusFacts(derivation.WordCounts(dfacts.words), None, dfacts)

    def _trace(self, query: Query, group: pl.DataFrame, pairs: pl.DataFrame, matches: list[ClusterMatch]) -> LookupResult:
        """Trace ``group`` (stored members) with the query in it; the query's place, parent, edge statistics and passages.

        ``pairs``: copy pairs among them in stored rows, the query as row -1.
        """
        config, qid = self.config, query.doc["doc_id"]
        group = group.sort("row")
        # A merge keeps the id of the larger stored cluster (``tables.stable_ids``).
        cluster_id = group.group_by("cluster_id").len().sort(["len", "cluster_id"], descending=[True, False])["cluster_id"][0]
        qdoc = {c: query.doc.get(c) for c in ("doc_id", "text", "title", "content_hash", "n_tokens", "n_chars")}
        extra = [c for c in ("published_at",) if c in group.columns]
        qframe = pl.DataFrame([{**qdoc, **{c: query.doc.get(c) for c in extra}}])
        stored_docs = group.select(*qdoc, *extra)
        rows = group["row"].to_numpy()
        at = int(np.searchsorted(rows, self._position(qid)))  # the would-be corpus order: by id
        docs = pl.concat([stored_docs.slice(0, at), qframe.cast(dict(stored_docs.schema), strict=False), stored_docs.slice(at)],
                         how="vertical_relaxed")
        order = np.insert(np.arange(len(rows)), at, len(rows))
        base = self._mini(rows, query, None)
        mini = Prepared(docs, base.rejects, {v: sets.take(order) for v, sets in base.views.items()}, {}, frequent=base.frequent)
        q_local = at

        def local(r: np.ndarray) -> np.ndarray:
            pos = np.searchsorted(rows, r)
            return np.where(r < 0, at, pos + (pos >= at))

        pairs = pairs.with_columns(
            pl.Series("a", local(pairs["a"].to_numpy())), pl.Series("b", local(pairs["b"].to_numpy()))
        ).with_columns(
            pl.min_horizontal("a", "b").cast(pl.UInt32).alias("a"), pl.max_horizontal("a", "b").cast(pl.UInt32).alias("b")
        ).sort("a", "b")
        facts = self._facts(group, query)
        facts.published = published_times(mini.documents)
        n = mini.documents.height
        zeros = np.zeros(n, dtype=np.int64)
        # The derivation model over the whole cluster; the statistics of the query's own edge only.
        parent_of, confidence, _ = derive_clusters(mini, pairs, zeros, facts.published, facts, config)
        is_origin = parent_of < 0
        ids = mini.documents["doc_id"]
        titles = mini.documents["title"]
        origin = int(np.flatnonzero(is_origin)[0])
        result = LookupResult(
            qid, "matched", cluster_id=cluster_id, clusters=matches, members=group["doc_id"].to_list(),
            origin_id=ids[origin], origin_title=titles[origin],
            is_origin=bool(is_origin[q_local]),
        )
        if parent_of[q_local] >= 0:
            parent, child = int(parent_of[q_local]), q_local
            result.relation = "parent"
        else:
            children = np.flatnonzero(parent_of == q_local)
            if len(children) == 0:
                return result
            child = int(children[np.lexsort((children, -np.nan_to_num(confidence[children])))[0]])  # most confident, then first
            parent = q_local
            result.relation = "child"
        mine = self._edge(mini, pairs, parent, child, float(confidence[child]))
        edge = mine.with_columns(
            pl.lit(cluster_id).alias("cluster_id"),
            ids.gather(mine["parent"].to_numpy()).alias("parent_id"), ids.gather(mine["child"].to_numpy()).alias("child_id"),
        )
        linked = Linked(pairs, zeros, floating=self.index.floating)
        out_edges, table = passages.edge_evidence(mini, linked, edge, config)
        row = out_edges.row(0, named=True)
        other = row["parent_id"] if result.relation == "parent" else row["child_id"]
        result.parent_id = row["parent_id"] if result.relation == "parent" else None
        result.parent_title = titles[int(mine["parent"][0])] if result.relation == "parent" else None
        result.copy_confidence = _num(row["copy_confidence"])
        result.parent_confidence = _num(row["parent_confidence"])
        result.confidence = _num(row["confidence"])
        result.changes = {c: row[c] for c in CHANGE_COLUMNS if c in row}
        result.changes["other_id"] = other
        texts = dict(zip(ids.to_list(), mini.documents["text"].to_list()))
        q_side = "child" if result.relation == "parent" else "parent"
        o_side = "parent" if q_side == "child" else "child"
        for p in table.iter_rows(named=True):
            result.passages.append(EvidencePassage(
                p[f"{o_side}_start"], p[f"{o_side}_end"], p[f"{q_side}_start"], p[f"{q_side}_end"], int(p["tokens"]),
                float(p["similarity"]), p["kind"], texts[other][p[f"{o_side}_start"] : p[f"{o_side}_end"]],
                texts[qid][p[f"{q_side}_start"] : p[f"{q_side}_end"]],
            ))
        return result


@contextmanager
def _one_thread():
    """Compiled kernels on one thread for the body: a lookup's arrays are tiny, and waking a pool costs more than the work."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def least_of_histogram(hist: np.ndarray) -> int:
    """``derivation.exceptional(counts)`` from ``hist = np.bincount(counts)``: the same median, without sorting every count."""
    n = int(hist.sum())
    if n == 0:
        return 2
    cum = np.cumsum(hist)

    def kth(k: int) -> int:  # the k-th smallest count (0-based)
        return int(np.searchsorted(cum, k + 1))

    median = float(kth(n // 2)) if n % 2 else (kth(n // 2 - 1) + kth(n // 2)) / 2.0
    lam = median - 1.0
    if lam <= 0:
        return 2
    target = 1.0 / n
    k, term, tail = 0, math.exp(-lam), 1.0  # as in ``derivation.exceptional``
    while tail >= target:
        tail -= term
        k += 1
        term *= lam / k
    return 1 + max(k, 1)


def _bump(counts: derivation.Counts, hist: np.ndarray, values: np.ndarray, delta: np.ndarray) -> derivation.Counts:
    """``counts`` with ``delta`` more clusters holding each of ``values`` (distinct); counts that reach 0 are dropped.

    ``hist`` is ``np.bincount(counts.counts)``: the recurring threshold (``least``) follows from it.
    """
    keep = values != 0
    values, delta = values[keep].astype(np.uint64), delta[keep].astype(np.int64)
    if len(values) == 0:
        return counts
    keys, counted = np.asarray(counts.keys), np.asarray(counts.counts).astype(np.int64)
    at = np.searchsorted(keys, values)
    hit = at < len(keys)
    hit[hit] = keys[at[hit]] == values[hit]
    old = counted[at[hit]]
    new = old + delta[hit]
    counted = counted.copy()
    counted[at[hit]] = new
    missing = ~hit & (delta > 0)
    added = delta[missing]
    if missing.any():
        where = np.searchsorted(keys, values[missing])
        keys = np.insert(keys, where, values[missing])
        counted = np.insert(counted, where, added)
    alive = counted > 0
    if not alive.all():
        keys, counted = keys[alive], counted[alive]
    top = int(max(len(hist) - 1, new.max(initial=0), added.max(initial=0)))
    hist = np.pad(hist, (0, top + 1 - len(hist))).astype(np.int64)
    np.subtract.at(hist, old, 1)
    np.add.at(hist, new[new > 0], 1)
    np.add.at(hist, added, 1)
    hist[0] = 0
    return derivation.Counts(keys, counted, least_of_histogram(hist))


def open_store(store: Path | str) -> StoreLookup:
    """A store opened for lookups (one-line :class:`ProvenanceError` for a folder that is none, or has no index)."""
    return store if isinstance(store, StoreLookup) else StoreLookup(store)


def lookup(text: str, store: Path | str | StoreLookup, *, doc_id: str = "query") -> LookupResult:
    """Is ``text`` a version of something in ``store``?  Its cluster, origin, parent, confidences, changes and passages.

    Never writes to the store.  Open the store once (:func:`open_store`) to
    look up many texts without reading its index again.
    """
    if not isinstance(text, str):
        raise ProvenanceError(f"lookup takes a text (str), not {type(text).__name__}")
    return open_store(store).lookup_text(text, doc_id)
