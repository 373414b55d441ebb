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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import Ingested, Source, ingest
from provenance.link import lsh
from provenance.link.stage import EVIDENCE_COLUMNS, Linked, Verifier, copy_evidence
from provenance.prepare import normalize
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import Prepared, hex_hashes, shingle_batch
from provenance.store import index as store_index
from provenance.store import layout
from provenance.trace import derivation, passages
from provenance.trace.stage import CorpusFacts, published_times, trace_clusters

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
    reason: str | None = None
    cluster_id: str | None = None
    #: Every stored cluster the query copies from, the one it joins first.
    clusters: list[ClusterMatch] = field(default_factory=list)
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
class _Query:
    """One accepted query, prepared."""

    doc: dict[str, Any]
    views: dict[str, ShingleSets]
    signatures: dict[str, np.ndarray]


class StoreLookup:
    """A store opened for lookups (read only; index arrays memory-mapped, tables read on first use)."""

    def __init__(self, store_dir: Path | str) -> None:
        self.store_dir = Path(store_dir)
        path = self.store_dir / layout.MANIFEST
        if not path.is_file():
            if (self.store_dir / "documents.parquet").exists():
                raise ProvenanceError(
                    f"{self.store_dir} is an output folder, which keeps no signatures: look up against the store "
                    "it was written from (--store DIR)"
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
        docs = got.documents
        results: list[LookupResult] = []
        queries: list[_Query] = []
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
                    results.append(LookupResult(qid, "rejected", reason="too_short" if n_tokens[i] else "empty_text"))
                else:
                    results.append(self._stored(qid, int(stored[i])))
            kept = docs.filter(pl.Series(keep))
            if kept.height:
                corpus = self.index.corpus
                views = shingle_batch(kept["text"], 0, corpus["boilerplate_keys"], prep, n_tokens[keep], corpus["frequent_words"])
                for k, row in enumerate(kept.iter_rows(named=True)):
                    queries.append(_Query(
                        row, {v: views.views[v].take(np.array([k])) for v in store_index.VIEWS},
                        {v: views.signatures[v][k : k + 1] for v in store_index.VIEWS},
                    ))
        results += [self._lookup_one(q) for q in queries]
        for rej in got.rejects.iter_rows(named=True):
            results.append(LookupResult(rej["doc_id"] or rej["source"], "rejected", reason=f"{rej['reason']}: {rej['detail']}".rstrip(": ")))
        return sorted(results, key=lambda r: (r.status == "rejected", "" if r.status == "rejected" else r.query_id))

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

    def candidates(self, query: _Query) -> np.ndarray:
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
                rank = -(np.asarray(offsets[members + 1]) - np.asarray(offsets[members]))
                before = rank < rank_q
                tied = rank == rank_q
                if tied.any():
                    position = self._position(query.doc["doc_id"]) if position is None else position
                    before |= tied & (members < position)
                at = int(before.sum())  # bucket order is (rank, row): ``before`` is a prefix
                found.append(members[max(0, at - window) : at + window])
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def _mini(self, rows: np.ndarray, query: _Query, documents: pl.DataFrame | None) -> Prepared:
        """A small corpus of stored ``rows`` then the query (``documents``: its frame, texts included, in that order)."""
        views = {v: ShingleSets.concat([_take(self.index.views[v], rows), query.views[v]]) for v in store_index.VIEWS}
        signatures = {v: np.concatenate([np.asarray(self.index.signatures[v][rows]), query.signatures[v]]) for v in store_index.VIEWS}
        if documents is None:
            documents = pl.DataFrame({"doc_id": [f"{r}" for r in rows.tolist()] + [query.doc["doc_id"]]})
        return Prepared(documents, pl.DataFrame(), views, signatures, frequent=self.index.corpus["frequent_words"])

    def _lookup_one(self, query: _Query) -> LookupResult:
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
        # The would-be corpus rows: the query takes its place by id; the strongest edge (ties by rows) decides its cluster.
        position = self._position(qid)
        stored_row = copies["row"].to_numpy()
        shifted = stored_row + (stored_row >= position)
        copies = copies.with_columns(
            pl.Series("cluster", np.asarray(self.index.row_cluster[stored_row])),
            pl.Series("lo", np.minimum(shifted, position)), pl.Series("hi", np.maximum(shifted, position)),
        ).sort(["containment", "lo", "hi"], descending=[True, False, False])
        matches = self._matches(copies, members)
        chosen = int(copies["cluster"][0])
        return self._trace(query, chosen, members.filter(pl.col("cluster") == chosen), copies.filter(pl.col("cluster") == chosen), matches)

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

    def _facts(self, group: pl.DataFrame, query: _Query) -> CorpusFacts:
        """The store's corpus counts as they are with the query in ``group``'s cluster (``trace.stage.corpus_facts``)."""
        stored = self.index.facts
        texts = group["text"]
        with_query = derivation.fact_parts(pl.concat([texts, pl.Series([query.doc["text"]])]), np.zeros(len(texts) + 1, np.int64), self.config.trace)
        counted_before = group.height > 1 or bool(self.index.corpus["in_sample"][int(group["row"][0])])
        without = derivation.fact_parts(texts, np.zeros(len(texts), np.int64), self.config.trace) if counted_before else None
        updated = []
        for i, (name, column) in enumerate((("words", "token"), ("lines", "key"), ("grams", "gram"))):
            counts: derivation.Counts = getattr(stored, name)
            new = with_query[i][column].to_numpy().astype(np.uint64)
            if without is not None:
                new = np.setdiff1d(new, without[i][column].to_numpy().astype(np.uint64))
            updated.append(_bump(counts, new))
        n_clusters = stored.n_clusters + (0 if counted_before else 1)
        dfacts = derivation.DerivationFacts(updated[0], n_clusters, updated[1], updated[2])
        return CorpusFacts(derivation.WordCounts(dfacts.words), None, dfacts)

    def _trace(self, query: _Query, cluster: int, group: pl.DataFrame, copies: pl.DataFrame, matches: list[ClusterMatch]) -> LookupResult:
        """Trace the cluster with the query in it; the query's place, parent, edge statistics and passages."""
        config, qid = self.config, query.doc["doc_id"]
        group = group.sort("row")
        cluster_id = group["cluster_id"][0]
        qdoc = {c: query.doc.get(c) for c in ("doc_id", "text", "title", "content_hash", "n_tokens", "n_chars")}
        extra = [c for c in ("published_at",) if c in group.columns]
        qframe = pl.DataFrame([{**qdoc, **{c: query.doc.get(c) for c in extra}}])
        stored_docs = group.select(*qdoc, *extra)
        docs = pl.concat([stored_docs, qframe.cast(dict(stored_docs.schema), strict=False)], how="vertical_relaxed")
        order = np.argsort(docs["doc_id"].to_numpy(), kind="stable")  # the would-be corpus order
        rows = group["row"].to_numpy()
        mini = self._mini(rows, query, docs)
        mini = Prepared(docs[pl.Series(order)], mini.rejects, {v: s.take(order) for v, s in mini.views.items()}, {}, frequent=mini.frequent)
        local = np.empty(len(order), dtype=np.int64)
        local[order] = np.arange(len(order))  # position in the mini corpus of stored member k (and the query, last)
        row_pos = {r: local[k] for k, r in enumerate(rows.tolist())}
        q_local = int(local[len(rows)])
        stored_pairs = self.index.copies.filter(pl.col("cluster") == cluster)
        sa = np.array([row_pos[r] for r in stored_pairs["a"].to_list()], dtype=np.int64)
        sb = np.array([row_pos[r] for r in stored_pairs["b"].to_list()], dtype=np.int64)
        qa = np.array([row_pos[r] for r in copies["row"].to_list()], dtype=np.int64)
        qb = np.full(len(qa), q_local, dtype=np.int64)
        a, b = np.concatenate([sa, qa]), np.concatenate([sb, qb])
        columns = {name: pl.concat([stored_pairs[name].cast(pl.Float64 if name != "exact" else pl.Boolean),
                                    copies[name].cast(pl.Float64 if name != "exact" else pl.Boolean)])
                   for name in PAIR_COLUMNS[2:]}
        pairs = pl.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), **columns}).with_columns(
            pl.col("a").cast(pl.UInt32), pl.col("b").cast(pl.UInt32)
        ).sort("a", "b")
        facts = self._facts(group, query)
        facts.published = published_times(mini.documents)
        n = mini.documents.height
        zeros = np.zeros(n, dtype=np.int64)
        traced = trace_clusters(mini, pairs, zeros, facts, config)
        placement = traced.placement.sort("row")
        parent_row = placement["parent_row"].to_numpy()
        is_origin = placement["is_origin"].to_numpy()
        ids = mini.documents["doc_id"]
        titles = mini.documents["title"]
        origin = int(np.flatnonzero(is_origin)[0])
        result = LookupResult(
            qid, "matched", cluster_id=cluster_id, clusters=matches, origin_id=ids[origin], origin_title=titles[origin],
            is_origin=bool(is_origin[q_local]),
        )
        edges = traced.edges
        if parent_row[q_local] >= 0:
            mine = edges.filter(pl.col("child") == q_local)
            result.relation = "parent"
        else:
            mine = edges.filter(pl.col("parent") == q_local).sort("parent_confidence", "similarity", descending=True).head(1)
            result.relation = "child" if mine.height else None
        if mine.height == 0:
            return result
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


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _bump(counts: derivation.Counts, new: np.ndarray) -> derivation.Counts:
    """``counts`` with one more cluster holding each of ``new`` (distinct values)."""
    new = np.unique(new[new != 0])
    if len(new) == 0:
        return counts
    keys, values = np.asarray(counts.keys), np.asarray(counts.counts)
    at = np.searchsorted(keys, new)
    hit = at < len(keys)
    hit[hit] = keys[at[hit]] == new[hit]
    values = values.copy()
    values[at[hit]] += 1
    missing = new[~hit]
    if len(missing):
        where = np.searchsorted(keys, missing)
        keys = np.insert(keys, where, missing)
        values = np.insert(values, where, 1)
    return derivation.Counts(keys, values, derivation.exceptional(values))


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
