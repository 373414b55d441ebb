"""What an incremental run must redo: small functions, one per decision.

Each answers one question from what the store holds and what arrived, so
that the store run (``provenance.store.run``) does work in proportion to what
changed and still gives the tables of a from-scratch run over everything the
store has seen:

* :func:`arrivals`: which input documents are new or changed (by
  :func:`fingerprints` of text and metadata);
* :func:`boilerplate_dirty`: which stored documents hold a short line whose
  boilerplate status flipped (they are prepared again);
* :func:`frequent_resign`: which stored documents hold a word shingle that
  became, or stopped being, frequent (only signed anew, from their views);
* :func:`relink_rows`: which rows' candidate pairs must be verified afresh;
* :func:`reusable_clusters`: which clusters may keep their stored trace;
* :func:`redecided`: which of those keep it once their stored derivation is
  decided again under today's word counts, and their parent confidence;
* :func:`updated_facts`: the trace's corpus counts from the last run's, by
  the counted clusters that are gone and those that are new.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import xxhash

from provenance.kernels import doc_keys, fmix64, offsets_from_doc_index
from provenance.link import lsh
from provenance.prepare import minhash, normalize
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import share_exact_copies
from provenance.store.layout import Segment
from provenance.config import TraceOptions
from provenance.trace import derivation, wordfreq
from provenance.trace.reprice import Priced
from provenance.trace.stage import ZONE_PATTERN, CorpusFacts, cluster_batches

#: Columns of a stored document that are the pipeline's, not the input's (left out of :func:`fingerprints`).
OWN_COLUMNS = ("doc_id", "text", "source", "content_hash", "n_tokens", "n_chars")
#: Pairs the shingle rule verified (``passes``), and whether the evidence rule found them copies (``copied``):
#: the next run looks verdicts of the first up and re-decides the second against the whole corpus's floating lines.
PAIRS = pl.Schema({"a_id": pl.String, "b_id": pl.String, "passes": pl.Boolean, "copied": pl.Boolean})
#: The frequent word shingles a generation's words signatures were taken around (``prepare.frequent``).
FREQUENT = pl.Schema({"shingle": pl.UInt32})


#: Documents fingerprinted per slice (memory, not results: the fingerprint is of one document).
FINGERPRINT_BATCH = 16_384


def fingerprints(documents: pl.DataFrame) -> pl.Series:
    """xxh3 of every document's text and metadata (every column but the pipeline's own)."""
    meta = [c for c in documents.columns if c not in OWN_COLUMNS]
    encoded = documents.select(pl.struct(meta).struct.json_encode().alias("m"))["m"] if meta else pl.Series([""] * documents.height)
    values: list[str] = []
    for lo in range(0, documents.height, FINGERPRINT_BATCH):  # a slice of texts as Python strings at a time, not the corpus
        texts, metas = documents["text"].slice(lo, FINGERPRINT_BATCH).to_list(), encoded.slice(lo, FINGERPRINT_BATCH).to_list()
        values.extend(xxhash.xxh3_64_hexdigest(text.encode() + b"\x1f" + m.encode()) for text, m in zip(texts, metas))
    return pl.Series("fingerprint", values, dtype=pl.String)


def facts_mode(documents: pl.DataFrame, facts: CorpusFacts) -> str:
    """How dates were read: a change of mode changes every cluster's origin rule, so all are re-traced."""
    if facts.published is None:
        return "words"
    dtype = documents["published_at"].dtype
    tz = dtype == pl.String and bool(documents["published_at"].str.contains(ZONE_PATTERN).any())
    return f"dates:{dtype}:{'tz' if tz else 'naive'}"


def arrivals(incoming: pl.DataFrame, live: pl.DataFrame) -> pl.DataFrame:
    """Input documents the store does not hold as they are (new ids, or new text or metadata).

    Adds ``fingerprint`` and the stored ``old_version`` / ``old_fp`` (null for new ids).
    """
    incoming = incoming.with_columns(fingerprints(incoming))
    stored = live.select("doc_id", pl.col("version").alias("old_version"), pl.col("fingerprint").alias("old_fp"))
    # The ids alone are joined and rows are dropped only when some are unchanged: a join or a filter gathers
    # every text anew (at 1M documents, one more copy of the corpus while prepare runs).
    old = incoming.select("doc_id").join(stored, on="doc_id", how="left", maintain_order="left")
    incoming = incoming.with_columns(old["old_version"], old["old_fp"])
    changed = (incoming["old_fp"].is_null() | (incoming["old_fp"] != incoming["fingerprint"])).fill_null(True)
    return incoming if changed.all() else incoming.filter(changed)


def ragged_from_index(doc: np.ndarray, values: np.ndarray, n_docs: int, dtype: type) -> ShingleSets:
    """Per-document arrays from ``(doc, value)`` pairs in any order (stable within a document)."""
    order = np.argsort(doc, kind="stable")
    return ShingleSets(values[order].astype(dtype), offsets_from_doc_index(doc[order], n_docs))


def corpus_boilerplate(old_lines: ShingleSets, new_lines: ShingleSets, min_docs: int) -> np.ndarray:
    """Boilerplate keys over the stored documents kept (``old_lines``) and the arrivals (``new_lines``)."""
    n_old = old_lines.n_docs
    docs_of = np.concatenate([np.repeat(np.arange(n_old), old_lines.sizes()), n_old + np.repeat(np.arange(new_lines.n_docs), new_lines.sizes())])
    return normalize.boilerplate_keys(docs_of, np.concatenate([old_lines.hashes, new_lines.hashes]), min_docs)


def boilerplate_dirty(old_lines: ShingleSets, keys: np.ndarray, previous_keys: np.ndarray) -> np.ndarray:
    """Per stored document: whether it holds a short line whose boilerplate status flipped."""
    flipped = np.setxor1d(keys, previous_keys.astype(np.uint64))
    dirty = np.zeros(old_lines.n_docs, dtype=bool)
    if len(flipped) and len(old_lines.hashes):
        hit = np.isin(old_lines.hashes, flipped)
        dirty[np.repeat(np.arange(old_lines.n_docs), old_lines.sizes())[hit]] = True
    return dirty


def frequent_resign(words: ShingleSets, frequent_words: np.ndarray, previous_frequent: np.ndarray) -> np.ndarray:
    """Per stored document: whether it holds a word shingle that became, or stopped being, frequent."""
    flipped = np.setxor1d(frequent_words, previous_frequent.astype(np.uint32))
    if len(flipped) == 0:
        return np.zeros(words.n_docs, dtype=bool)
    return minhash.holds_any(words, flipped)


def relink_rows(
    doc_ids: pl.Series, hashes: pl.Series, is_fresh: np.ndarray, resigned: np.ndarray, touched_hashes: pl.Series,
) -> np.ndarray:
    """Rows whose candidate pairs are verified afresh (before the buckets that lost a member are added).

    Fresh rows; rows whose exact-duplicate group changed (their anchors may
    now come from another copy); rows signed anew and their copies (other
    candidates on the same sets).
    """
    group_changed = hashes.is_in(touched_hashes.implode()).to_numpy() & ~is_fresh
    resigned_groups = hashes.is_in(hashes.filter(pl.Series(resigned)).implode()).to_numpy()
    return is_fresh | group_changed | resigned | resigned_groups


def departed_buckets(
    signatures: dict[str, np.ndarray], live: Segment, removed_rows: np.ndarray, thresholds: dict[str, float], window: int,
    resigned_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Rows sharing a crowded LSH bucket with a departed stored row: two of them may now be within the window.

    ``resigned_rows``: per removed row, its row in ``signatures`` when it was only signed anew (same set, same
    rank), else -1.  Such a document left only the buckets of the bands its new signature changed
    (``lsh.sharing_buckets``'s ``probe_rows``); its anchors signature does not change at all.
    """
    shared = {"words": live.ragged["words"], "anchors": live.ragged["anchors"]}
    old_signatures = dict(live.signatures)
    share_exact_copies(live.documents["content_hash"], shared, old_signatures)  # as the last run bucketed them
    out = np.zeros(len(signatures["words"]), dtype=bool)
    for view, sig in signatures.items():
        out |= lsh.sharing_buckets(
            sig, old_signatures[view][removed_rows], threshold=thresholds[view], window=window, probe_rows=resigned_rows,
        )
    return out


def resigned_places(removed_ids: pl.Series, resigned_ids: pl.Series, doc_ids: pl.Series) -> np.ndarray:
    """Per removed stored document: its row among ``doc_ids`` when it is one of ``resigned_ids`` (signed anew only), else -1."""
    rows = pl.DataFrame({"doc_id": doc_ids.filter(doc_ids.is_in(resigned_ids.implode()))}).join(
        pl.DataFrame({"doc_id": doc_ids}).with_row_index("row"), on="doc_id",
    )
    placed = pl.DataFrame({"doc_id": removed_ids}).join(rows, on="doc_id", how="left", maintain_order="left")
    return placed["row"].fill_null(-1).cast(pl.Int64).to_numpy()


def known_pairs(pairs: pl.DataFrame, doc_ids: pl.Series) -> np.ndarray:
    """Stored pairs (by id) as sorted ``a << 32 | b`` row codes of this run; pairs with a departed id drop out."""
    rows = pl.DataFrame({"id": doc_ids}).with_row_index("row")
    mapped = (
        pairs.filter("passes").join(rows.rename({"id": "a_id", "row": "a"}), on="a_id", how="inner")
        .join(rows.rename({"id": "b_id", "row": "b"}), on="b_id", how="inner")
    )
    a = mapped["a"].to_numpy().astype(np.uint64)
    b = mapped["b"].to_numpy().astype(np.uint64)
    return np.sort((np.minimum(a, b) << np.uint64(32)) | np.maximum(a, b))


def pair_digests(a_keys: np.ndarray, b_keys: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Order-free digest of each group's pairs (sum of a mixed hash per pair, mod 2^64)."""
    lo, hi = np.minimum(a_keys, b_keys), np.maximum(a_keys, b_keys)
    with np.errstate(over="ignore"):
        h = fmix64(lo * np.uint64(0x9E3779B97F4A7C15) + fmix64(hi))
    out = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(out, group, h)
    return out


def same_members(cluster: np.ndarray, old_cid: pl.Series, changed: np.ndarray, old_docs: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: whether it is exactly one stored cluster with no changed member, and that cluster's id."""
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    frame = pl.DataFrame({"cluster": cluster, "old": old_cid, "changed": changed})
    old_size = old_docs.group_by("cluster_id").len().rename({"cluster_id": "old", "len": "old_size"})
    per_cluster = (
        frame.group_by("cluster").agg(
            pl.len().alias("size"), pl.col("old").n_unique().alias("n_old"), pl.col("old").first(),
            pl.col("old").null_count().alias("new_members"), pl.col("changed").any(),
        )
        .join(old_size, on="old", how="left")
        .with_columns(
            ((pl.col("n_old") == 1) & (pl.col("new_members") == 0) & ~pl.col("changed") & (pl.col("size") == pl.col("old_size")))
            .fill_null(False).alias("same")
        )
        .sort("cluster")
    )
    same = np.zeros(n_clusters, dtype=bool)
    same[per_cluster["cluster"].to_numpy()] = per_cluster["same"].to_numpy()
    old_of = np.full(n_clusters, None, dtype=object)
    old_of[per_cluster["cluster"].to_numpy()] = per_cluster["old"].to_numpy()
    return same, old_of


def same_pairs(
    same: np.ndarray, old_of: np.ndarray, cluster: np.ndarray, pairs: pl.DataFrame, keys: np.ndarray,
    old_pairs: pl.DataFrame, old_docs: pl.DataFrame,
) -> np.ndarray:
    """``same`` narrowed to clusters whose pairs inside (the copies, ``pairs``) are exactly the stored copies."""
    n_clusters = len(same)
    a, b = pairs["a"].to_numpy().astype(np.int64), pairs["b"].to_numpy().astype(np.int64)
    inside = cluster[a] == cluster[b]
    new_digest = pair_digests(keys[a[inside]], keys[b[inside]], cluster[a[inside]], n_clusters)
    old_frame = old_docs.select("doc_id", "cluster_id")
    op = (
        old_pairs.filter("copied").join(old_frame.rename({"doc_id": "a_id", "cluster_id": "ca"}), on="a_id")
        .join(old_frame.rename({"doc_id": "b_id", "cluster_id": "cb"}), on="b_id")
        .filter(pl.col("ca") == pl.col("cb"))
    )
    # Keys of old pair endpoints (by id) and the new cluster their stored cluster maps to.
    old_index = {cid: c for c, cid in enumerate(old_of.tolist()) if cid is not None and same[c]}
    target = np.array([old_index.get(cid, -1) for cid in op["ca"].to_list()], dtype=np.int64)
    sel = target >= 0
    old_digest = pair_digests(
        doc_keys(op["a_id"].filter(pl.Series(sel))), doc_keys(op["b_id"].filter(pl.Series(sel))), target[sel], n_clusters,
    )
    return same & (new_digest == old_digest)


def reusable_clusters(
    cluster: np.ndarray, old_cid: pl.Series, changed: np.ndarray, pairs: pl.DataFrame, keys: np.ndarray,
    old_docs: pl.DataFrame, old_pairs: pl.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: whether its stored trace may still hold (:func:`redecided` checks the corpus facts), and its stored id.

    It may when the cluster has exactly the members of one stored cluster,
    none of them changed, and the same verified pairs inside: the texts and
    candidate pairs its derivation read are the same.
    """
    same, old_of = same_members(cluster, old_cid, changed, old_docs)
    if same.any():
        same = same_pairs(same, old_of, cluster, pairs, keys, old_pairs, old_docs)
    return same, old_of


def redecided(
    same: np.ndarray, cluster: np.ndarray, doc_ids: pl.Series, keys: np.ndarray, priced: Priced, old_docs: pl.DataFrame,
    facts: CorpusFacts, options: TraceOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """``same`` narrowed to clusters whose stored derivation gives the stored parents under today's corpus facts; parent confidences.

    A cluster's trace reads the corpus through its foreign marks (which of its
    short lines and n-grams recur) and through the word counts its acts are
    priced at (``N`` and every ``f_w``, which any new document moves).  A
    multi-document cluster stays only if every member's pricing is stored and
    its line values recur as they did; its pricing is then decided again under
    today's counts (``trace.reprice``), and it stays if every parent is the
    stored one.  Returns, per row, the parent confidence so decided (NaN for
    rows not decided again: singletons and clusters that go).
    """
    n = len(cluster)
    conf = np.full(n, np.nan)
    size = np.bincount(cluster, minlength=len(same))
    rows = np.flatnonzero(same[cluster] & (size[cluster] > 1))
    if len(rows) == 0:
        return same, conf
    same = same.copy()
    dfacts = facts.derivation if facts.derivation is not None else derivation.DerivationFacts.empty()

    def position(p: Priced, ids: pl.Series) -> np.ndarray:
        """Position in ``ids`` of each of ``p.docs``."""
        at = pl.DataFrame({"doc_id": ids, "i": np.arange(ids.len(), dtype=np.int64)})
        return p.docs.select("doc_id").join(at, on="doc_id", how="left", maintain_order="left")["i"].to_numpy()

    ids = doc_ids.gather(rows)
    p = priced.select(ids)
    ok = np.zeros(len(rows), dtype=bool)
    ok[position(p, ids)] = p.lines_hold(dfacts)
    same[np.unique(cluster[rows[~ok]])] = False
    rows = rows[same[cluster[rows]]]
    if len(rows) == 0:
        return same, conf
    ids = doc_ids.gather(rows)
    p = p.select(ids)
    cost_ab, cost_ba, root_cost = p.costs(dfacts)
    roots = np.zeros(len(rows))
    roots[position(p, ids)] = root_cost
    at = pl.DataFrame({"doc_id": ids, "i": np.arange(len(rows), dtype=np.int64)})
    ends = p.pairs.join(at.rename({"doc_id": "a_id", "i": "a"}), on="a_id", how="left", maintain_order="left")
    ends = ends.join(at.rename({"doc_id": "b_id", "i": "b"}), on="b_id", how="left", maintain_order="left")
    published = facts.published[rows].astype(np.float64) if facts.published is not None else None
    parent, confidence = derivation.decide(
        cluster[rows], keys[rows], ends["a"].to_numpy(), ends["b"].to_numpy(), cost_ab, cost_ba, roots, options, published,
    )
    stored = at.join(old_docs.select("doc_id", "parent_id"), on="doc_id", how="left", maintain_order="left")
    now = pl.select(pl.when(pl.Series(parent < 0)).then(None).otherwise(ids.gather(np.maximum(parent, 0)))).to_series()
    moved = stored["parent_id"].ne_missing(now).to_numpy()
    same[np.unique(cluster[rows[moved]])] = False
    conf[rows] = confidence
    return same, conf


def counted_units(cluster: np.ndarray, keys: np.ndarray, sample_size: int) -> np.ndarray:
    """Per row: the unit the trace's counts count it in (its cluster when it has copies, or itself when sampled), or -1.

    As ``trace.stage.derivation_facts`` counts: every multi-document cluster, and
    the bottom-k sample of singletons (``wordfreq.frequency_sample``).
    """
    unit = np.where(np.bincount(cluster, minlength=len(cluster))[cluster] > 1, cluster, -1).astype(np.int64)
    sample = wordfreq.frequency_sample(cluster, keys, sample_size)
    unit[sample] = cluster[sample]
    return unit


def unit_table(unit: np.ndarray, keys: np.ndarray, changed: np.ndarray) -> pl.DataFrame:
    """Per unit: an order-free digest of its members (sum of a mixed hash of each id), its size, and whether a member's text changed."""
    held = np.flatnonzero(unit >= 0)
    ids, dense = np.unique(unit[held], return_inverse=True)
    digest = np.zeros(len(ids), dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add.at(digest, dense, fmix64(keys[held].astype(np.uint64)))
    return pl.DataFrame({
        "unit": ids.astype(np.int64), "digest": digest, "size": np.bincount(dense, minlength=len(ids)).astype(np.int64),
        "changed": np.bincount(dense, weights=changed[held].astype(np.float64), minlength=len(ids)) > 0,
    })


def updated_facts(
    old: derivation.DerivationFacts, old_unit: np.ndarray, unit: np.ndarray, texts: pl.Series, keys: np.ndarray, changed: np.ndarray,
    options: TraceOptions, batch_size: int,
) -> tuple[derivation.DerivationFacts, int] | None:
    """Today's counts from the last run's ``old``: minus the units that are gone, plus the units that are new; and the rows read.

    Every count counts units (clusters with copies, sampled singletons), each
    a function of its members' texts, so a unit with the same members and no
    changed text (``changed``) adds what it added last time.  ``old_unit`` and
    ``unit`` are each row's unit then and now (:func:`counted_units`; -1: not
    counted).  ``None`` when a unit that is gone held a text that changed: its
    old text is not at hand, the caller counts afresh.
    """
    now, then = unit_table(unit, keys, changed), unit_table(old_unit, keys, changed)
    same = now.filter(~pl.col("changed")).join(then.filter(~pl.col("changed")).select("digest", "size"), on=["digest", "size"], how="semi")
    gone = then.join(same.select("digest", "size"), on=["digest", "size"], how="anti")
    if gone["changed"].any():
        return None
    added = now.join(same.select("unit"), on="unit", how="anti")

    def parts(labels: np.ndarray, chosen: pl.Series) -> list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
        rows = np.flatnonzero(np.isin(labels, chosen.to_numpy()))
        return [derivation.fact_parts(texts.gather(r), labels[r], options) for r in cluster_batches(labels, rows, batch_size)]

    plus, minus = parts(unit, added["unit"]), parts(old_unit, gone["unit"])

    def merged(counts: derivation.Counts, i: int, column: str) -> derivation.Counts:
        base = pl.DataFrame({column: counts.keys.astype(np.uint64), "n": counts.counts.astype(np.int64)})
        frames = [base, *(p[i] for p in plus), *(p[i].with_columns(-pl.col("n")) for p in minus)]
        return derivation.Counts.of(pl.concat(frames, how="vertical_relaxed"), column)

    facts = derivation.DerivationFacts(
        merged(old.words, 0, "token"), old.n_clusters - gone.height + added.height, merged(old.lines, 1, "key"), merged(old.grams, 2, "gram"),
    )
    return facts, int(added["size"].sum() + gone["size"].sum())
