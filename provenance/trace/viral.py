"""A viral cluster in a partitioned trace: one cluster past a task's budget, split at the tree level.

``trace.parts`` gives each task sets of whole clusters, so a story copied
400,000 times would be one task beyond any budget.  A cluster's trace has
three parts of different shapes (``trace.derivation``):

* the **pricing** of each candidate pair: an alignment of two texts, the
  bulk of the cost, and a function of those two texts and the corpus facts
  alone (``derivation.Pricing``: a batch's token ids mean nothing outside it);
* the **tree**: a minimum-cost arborescence over every pair's two costs,
  then the date rule and the confidence: numbers only, a few per pair;
* the **statistics of each tree edge**: an alignment of child and parent.

So a cluster with more than ``budget`` members (``run.batch_size``, the
members one trace task holds) runs as three waves of tasks over files in the
run's work folder, ``trace/viral-<cluster>-*``:

1. :func:`count_viral` per chunk of at most ``budget`` members: the chunk's
   distinct words, short lines and n-grams.  The counts are of clusters
   holding each value, so the client unites a cluster's chunks (one each)
   before they join the other parts' (``derivation.facts_of``);
2. :func:`price_viral` per chunk of at most ``budget // 2`` candidate pairs
   (so at most ``budget`` texts): each pair's two costs and each endpoint's
   root cost under the corpus counts (every cost is a sum over its own
   pair's acts and bag), and the substitutions spelled out.  The client
   decides the tree from those numbers (``derivation.decide``), as one task
   holding the whole cluster would, and reads back the substitutions of the
   origin's own edges only;
3. :func:`edges_viral` per chunk of at most ``budget // 2`` tree edges: their
   similarity (lineage containment) and change statistics
   (``stage.edge_figures``).

The candidate pairs are chosen in the client over the cluster's linked pairs
(``derivation.candidate_pairs``: pairs only, no text).  The client also holds
the members' shingle sets for completeness (``origin.completeness``, sets
only, memory-mapped).  The tables are those of one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from provenance.config import Config
from provenance.link.parts import check_visible, open_views, save_array, take_mapped
from provenance.prepare.stage import Prepared
from provenance.trace import derivation, origin, tree
from provenance.trace.factfiles import read_facts
from provenance.trace.stage import Derived, _consulted, _containment, consulted_frame, edge_figures, lineage_of_members

PAIRS = pl.Schema({"a": pl.Int64, "b": pl.Int64})
SUBS = pl.Schema({"pair": pl.Int64, "word_a": pl.String, "word_b": pl.String})
PARENTS = pl.Schema({"child": pl.Int64, "parent": pl.Int64, "parent_confidence": pl.Float64})
#: Rows per row group of a viral cluster's texts, so a chunk's read skips the groups it does not need.
TEXT_ROW_GROUP = 1024


@dataclass(frozen=True)
class ViralChunk:
    """Chunk ``number`` of viral cluster ``cluster`` (dense id) for wave ``wave`` (count, price, edges), ``size`` rows or pairs."""

    folder: Path
    cluster: int
    wave: str
    number: int
    size: int

    def __len__(self) -> int:  # what progress counts
        return self.size

    def path(self, what: str) -> Path:
        return self.folder / "trace" / f"viral-{self.cluster}-{self.wave}-{self.number:04d}-{what}"

    def texts_path(self) -> Path:
        return viral_texts(self.folder, self.cluster)


@dataclass(frozen=True)
class ChunkResult:
    """What a viral chunk returns to the client: its files and their bytes (``trace.parts.PartResult``'s figures)."""

    paths: dict[str, Path]
    bytes: int
    seconds: float
    clusters: int = 0


def viral_texts(folder: Path, cluster: int) -> Path:
    return folder / "trace" / f"viral-{cluster}-texts.parquet"


def viral_clusters(cluster: np.ndarray, budget: int) -> np.ndarray:
    """Dense ids (ascending) of the clusters with more than ``budget`` members."""
    sizes = np.bincount(cluster, minlength=len(cluster)) if len(cluster) else np.zeros(0, dtype=np.int64)
    return np.flatnonzero(sizes > max(1, budget))


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    size = max(1, size)
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def _done(paths: dict[str, Path], started: float, clusters: int = 0) -> ChunkResult:
    return ChunkResult(paths, int(sum(p.stat().st_size for p in paths.values())), time.perf_counter() - started, clusters)


def _write(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=False)
    tmp.replace(path)


def _texts(chunk: ViralChunk, rows: np.ndarray) -> pl.DataFrame:
    """``row, doc_id, text`` (and ``published``) of ``rows`` (ascending) from the cluster's texts file."""
    wanted = pl.Series("row", rows.astype(np.int64))
    return pl.scan_parquet(chunk.texts_path()).filter(pl.col("row").is_in(wanted.implode())).collect().sort("row")


# ---------------------------------------------------------------------------- the client: inputs


def write_viral_inputs(folder: Path, prepared: Prepared, cluster: np.ndarray, published: np.ndarray | None, budget: int,
                       ) -> list[ViralChunk]:
    """Each viral cluster's texts file (rows ascending, row groups of :data:`TEXT_ROW_GROUP`) and its counting chunks."""
    out = []
    docs = prepared.documents
    for c in viral_clusters(cluster, budget).tolist():
        rows = np.flatnonzero(cluster == c)
        frame = pl.DataFrame({"row": rows.astype(np.int64)}).hstack(docs[pl.Series(rows)].select("doc_id", "text"))
        if published is not None:
            frame = frame.with_columns(pl.Series("published", published[rows].astype(np.float64)))
        tmp = viral_texts(folder, c).with_name(f".{viral_texts(folder, c).name}.tmp")
        frame.write_parquet(tmp, compression="lz4", statistics=True, row_group_size=TEXT_ROW_GROUP)
        tmp.replace(viral_texts(folder, c))
        for k, (lo, hi) in enumerate(chunks(len(rows), budget)):
            chunk = ViralChunk(folder, c, "count", k, hi - lo)
            save_array(chunk.path("rows.npy"), rows[lo:hi])
            out.append(chunk)
    return out


# ---------------------------------------------------------------------------- wave 1: counts


def count_viral(chunk: ViralChunk, config: Config) -> ChunkResult:
    """The chunk's distinct words, short lines and n-grams (``derivation.fact_parts`` of one cluster: each counted once)."""
    started = time.perf_counter()
    check_visible(chunk.folder)
    rows = np.load(chunk.path("rows.npy"))
    frame = _texts(chunk, rows)
    paths = {}
    for name, table in zip(("words", "lines", "grams"), derivation.fact_parts(frame["text"], np.zeros(len(rows), dtype=np.int64), config.trace)):
        paths[name] = chunk.path(f"counts-{name}.parquet")
        _write(table, paths[name])
    return _done(paths, started)


def united_counts(counted: list[ChunkResult], chunk_list: list[ViralChunk], folder: Path) -> list[ChunkResult]:
    """One counting result per viral cluster: its chunks' values united (a cluster holds a value once), as the parts' are."""
    by_cluster: dict[int, list[ChunkResult]] = {}
    for chunk, got in zip(chunk_list, counted):
        by_cluster.setdefault(chunk.cluster, []).append(got)
    out = []
    for c, got in sorted(by_cluster.items()):
        paths = {}
        for name, column in (("words", "token"), ("lines", "key"), ("grams", "gram")):
            table = pl.concat([pl.read_parquet(g.paths[name]) for g in got]).select(column).unique().sort(column)
            paths[name] = folder / "trace" / f"viral-{c}-counts-{name}.parquet"
            _write(table.with_columns(pl.lit(1, dtype=pl.Int64).alias("n")), paths[name])
        out.append(ChunkResult(paths, int(sum(p.stat().st_size for p in paths.values())), 0.0, clusters=1))
    return out


# ---------------------------------------------------------------------------- wave 2: pricing, then the tree


def write_price_inputs(folder: Path, pairs: pl.DataFrame, cluster: np.ndarray, keys: np.ndarray, c: int, config: Config) -> tuple[list[ViralChunk], np.ndarray]:
    """Cluster ``c``'s candidate pairs (as one task would choose them) in chunks of ``budget // 2``; and its rows."""
    rows = np.flatnonzero(cluster == c)
    a = pairs["a"].to_numpy().astype(np.int64)
    b = pairs["b"].to_numpy().astype(np.int64)
    inside = (cluster[a] == c) & (cluster[b] == c)
    local_a, local_b = np.searchsorted(rows, a[inside]), np.searchsorted(rows, b[inside])
    similarity = pairs["jaccard"].to_numpy().astype(np.float64)[inside]
    chosen = derivation.candidate_pairs(local_a, local_b, similarity, keys[rows], len(rows), config.trace.candidate_parents)
    chosen_pairs = pl.DataFrame({"a": rows[local_a[chosen]], "b": rows[local_b[chosen]]}, schema=PAIRS)
    # A member in no candidate pair still has a root cost: the first chunk prices it too.
    alone = np.setdiff1d(np.arange(len(rows)), np.concatenate([local_a[chosen], local_b[chosen]]))
    out = []
    for k, (lo, hi) in enumerate(chunks(max(chosen_pairs.height, 1), config.run.batch_size // 2)):
        chunk = ViralChunk(folder, c, "price", k, hi - lo)
        _write(chosen_pairs.slice(lo, hi - lo), chunk.path("pairs.parquet"))
        save_array(chunk.path("alone.npy"), rows[alone] if k == 0 else np.zeros(0, dtype=np.int64))
        out.append(chunk)
    return out, rows


def price_viral(chunk: ViralChunk, config: Config) -> ChunkResult:
    """Pricings of the chunk's pairs and roots of their endpoints (``derivation.pair_acts``), substitutions spelled."""
    started = time.perf_counter()
    check_visible(chunk.folder)
    pairs = pl.read_parquet(chunk.path("pairs.parquet"))
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    rows = np.unique(np.concatenate([a, b, np.load(chunk.path("alone.npy"))]))
    frame = _texts(chunk, rows)
    facts, _ = read_facts(chunk.folder / "trace")
    batch = derivation.batch_arrays(frame["text"], facts.derivation, config.trace, config.changes.max_align_tokens)
    pricing, subs = derivation.pair_acts(batch, np.searchsorted(rows, a), np.searchsorted(rows, b), config.trace)
    # Each cost is the pair's (or document's) own sum under the corpus counts: priced here, only numbers go back.
    cost_ab, cost_ba, roots = pricing.costs(batch.words, batch.n_clusters)
    ids = subs["tok_a"].to_numpy(), subs["tok_b"].to_numpy()
    spelled = pl.DataFrame({
        "pair": subs["pair"].to_numpy().astype(np.int64),
        "word_a": batch.spell(ids[0]) if len(ids[0]) else [], "word_b": batch.spell(ids[1]) if len(ids[1]) else [],
    }, schema=SUBS)
    paths = {"costs": chunk.path("costs.npz"), "subs": chunk.path("subs.parquet")}
    tmp = paths["costs"].with_name(f".{paths['costs'].name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, rows=rows, cost_ab=cost_ab, cost_ba=cost_ba, roots=roots)
    tmp.replace(paths["costs"])
    _write(spelled, paths["subs"])
    return _done(paths, started)


def decide_viral(priced: list[ChunkResult], chunk_list: list[ViralChunk], rows: np.ndarray, keys: np.ndarray,
                 published: np.ndarray | None, facts_folder: Path, config: Config) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, str, int]]]:
    """``(parent position or -1, parent confidence, consulted)`` of the cluster's ``rows`` from its chunks' costs.

    The client holds three numbers per candidate pair and one per member (the tree's input), and the
    substitutions of the origin's own edges.
    """
    facts, _ = read_facts(facts_folder)
    loaded = [dict(np.load(p.paths["costs"])) for p in priced]
    pairs = [pl.read_parquet(ch.path("pairs.parquet")) for ch in chunk_list]
    a = np.searchsorted(rows, np.concatenate([p["a"].to_numpy() for p in pairs]))
    b = np.searchsorted(rows, np.concatenate([p["b"].to_numpy() for p in pairs]))
    cost_ab = np.concatenate([g["cost_ab"] for g in loaded])
    cost_ba = np.concatenate([g["cost_ba"] for g in loaded])
    roots = np.full(len(rows), np.nan)
    for got in loaded:  # a document's root cost is its own: any chunk holding it gives the same
        roots[np.searchsorted(rows, got["rows"])] = got["roots"]
    cluster = np.zeros(len(rows), dtype=np.int64)
    when = published.astype(np.float64) if published is not None else None
    parent, confidence = derivation.decide(cluster, keys, a, b, cost_ab, cost_ba, roots, config.trace, when)
    # The substitutions of the pairs joining the origin to a child (all ``_consulted`` reads), their words given
    # ids so it reads them as a batch's.
    offsets = np.cumsum([0] + [len(g["cost_ab"]) for g in loaded])
    joins = np.flatnonzero(((parent[a] < 0) & (parent[b] == a)) | ((parent[b] < 0) & (parent[a] == b)))
    subs = pl.concat([
        pl.scan_parquet(p.paths["subs"])
        .filter(pl.col("pair").is_in(pl.Series(joins[(joins >= offsets[k]) & (joins < offsets[k + 1])] - offsets[k]).implode()))
        .with_columns(pl.col("pair") + int(offsets[k])).collect()
        for k, p in enumerate(priced)
    ])
    words = pl.concat([subs["word_a"], subs["word_b"]]).unique().sort()
    ids = pl.DataFrame({"w": words}).with_row_index("id")
    tok = [subs.select(pl.col(c).alias("w")).join(ids, on="w", how="left", maintain_order="left")["id"].to_numpy() for c in ("word_a", "word_b")]
    spelled = words.to_numpy()
    got = derivation.Derivation(
        parent, confidence, roots, pl.DataFrame({"a": a, "b": b}),
        pl.DataFrame({"pair": subs["pair"], "tok_a": tok[0].astype(np.int32), "tok_b": tok[1].astype(np.int32)}),
        lambda i: spelled[np.asarray(i, dtype=np.int64)].tolist(),
    )
    consulted = _consulted(got, np.arange(len(rows)), cluster, facts.frequency or {})
    return parent, confidence, consulted


def derived_viral(prepared_views: dict, rows: np.ndarray, parent: np.ndarray, confidence: np.ndarray,
                  consulted: list[tuple[int, str, str, int]], config: Config) -> Derived:
    """The cluster's placement, consulted comparisons and tree (``stage.derive_sub_corpus``'s, score left to the edge chunks)."""
    cluster = np.zeros(len(rows), dtype=np.int64)
    views = {name: take_mapped(sets, rows) for name, sets in prepared_views.items()}
    complete = origin.completeness(cluster, views, config.trace.completeness_anchor_weight)
    is_origin = parent < 0
    child = np.flatnonzero(parent >= 0)
    parents = pl.DataFrame({
        "child": child, "parent": parent[child], "score": np.full(len(child), np.nan), "parent_confidence": confidence[child],
    }, schema={"child": pl.Int64, "parent": pl.Int64, "score": pl.Float64, "parent_confidence": pl.Float64})
    placement = pl.DataFrame({
        "row": rows.astype(np.int64), "is_origin": is_origin,
        "parent_row": np.where(parent >= 0, rows[np.maximum(parent, 0)], -1).astype(np.int64),
        "depth": tree.depths(parent).astype(np.int32), "completeness": np.round(complete, 6),
    })
    origin_row = rows[np.flatnonzero(is_origin)][:1]
    return Derived(rows, placement, consulted_frame(consulted, origin_row), parents)


# ---------------------------------------------------------------------------- wave 3: edges


def write_edge_inputs(folder: Path, derived: Derived, c: int, config: Config) -> list[ViralChunk]:
    """The cluster's tree edges (corpus rows) in chunks of ``budget // 2``."""
    rows = derived.rows
    edges = pl.DataFrame({
        "child": rows[derived.parents["child"].to_numpy()], "parent": rows[derived.parents["parent"].to_numpy()],
        "parent_confidence": derived.parents["parent_confidence"],
    }, schema=PARENTS)
    out = []
    for k, (lo, hi) in enumerate(chunks(edges.height, config.run.batch_size // 2)):
        chunk = ViralChunk(folder, c, "edges", k, hi - lo)
        _write(edges.slice(lo, hi - lo), chunk.path("in.parquet"))
        out.append(chunk)
    return out


def edges_viral(chunk: ViralChunk, config: Config) -> ChunkResult:
    """The chunk's tree edges with their similarity and statistics (``stage.edge_figures``), in corpus rows."""
    started = time.perf_counter()
    check_visible(chunk.folder)
    edges = pl.read_parquet(chunk.path("in.parquet"))
    child, parent = edges["child"].to_numpy(), edges["parent"].to_numpy()
    rows = np.unique(np.concatenate([child, parent]))
    frame = _texts(chunk, rows)
    views = {"words": take_mapped(open_views(chunk.folder)["words"], rows)}
    sub = Prepared(frame.select("doc_id", "text"), pl.DataFrame(), views, {})
    lc, lp = np.searchsorted(rows, child), np.searchsorted(rows, parent)
    lineage = lineage_of_members(frame["text"], np.zeros(len(rows), dtype=np.int64), config)
    parents = pl.DataFrame({
        "child": lc, "parent": lp, "score": _containment(lineage, lc, lp), "parent_confidence": edges["parent_confidence"],
    }, schema={"child": pl.Int64, "parent": pl.Int64, "score": pl.Float64, "parent_confidence": pl.Float64})
    table = edge_figures(sub, parents, rows, config)
    path = chunk.path("edges.parquet")
    _write(table, path)
    return _done({"edges": path}, started)
