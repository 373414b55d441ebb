"""The lookup index a store run writes beside its tables: what ``provenance lookup`` reads instead of the store.

A lookup asks, for one text, which stored documents it would pair with and
how it would be traced.  Reading the segments for that would read the whole
store per query.  Instead every store run writes ``gen-<g>/index/``:

* ``bands_<view>_keys.npy`` / ``bands_<view>_rows.npy``: per LSH band of each
  view, the band keys (``lsh.band_keys`` over the stored signatures) of every
  document with a non-empty signature, sorted by ``(key, rank, row)``: a
  bucket is one ``searchsorted`` range, already in the order the link stage's
  sliding window pairs in (``lsh.candidate_pairs``: longest first, then row);
* ``sig_<view>.npy`` and ``<view>_hashes.npy`` / ``<view>_offsets.npy``: the
  signatures and exact shingle sets the verifier reads (memory-mapped: a query
  touches the pages of its candidates only);
* ``members.parquet``: the documents table in cluster order with small row
  groups, and ``cluster_lo.npy`` (where each dense cluster's rows start), so
  reading one cluster's members and texts reads a few row groups;
* ``row_cluster.npy``, ``hash_keys.npy``/``hash_rows.npy`` (content hashes,
  sorted: is a text already stored?), ``ids.parquet`` (doc ids by row);
* ``copies.parquet``: the link stage's copy pairs with their evidence columns;
* ``corpus.npz``: boilerplate keys, frequent word shingles, floating lines and
  adjacencies, and the derivation model's corpus counts (``trace.derivation``);
* ``meta.json``: sizes, band parameters, which rows are in the trace's
  frequency sample.

Rows are the corpus rows of the run (documents sorted by ``doc_id``).  The
index is derived data: the manifest records ``lookup_index: 1`` and a store
without it is refused by lookup with the advice to run once more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from provenance import schemas
from provenance.config import Config
from provenance.link import lsh, parts
from provenance.link.units import Floating
from provenance.prepare.minhash import EMPTY
from provenance.prepare.shingle import ShingleSets
from provenance.trace import derivation

#: Version of the index layout below (recorded in the manifest as ``lookup_index``).
INDEX_VERSION = 1
#: Rows per row group of ``members.parquet``: one cluster's rows read a group or two.
MEMBER_ROW_GROUP = 512
VIEWS = ("words", "anchors")


def index_dir(generation_dir: Path) -> Path:
    return generation_dir / "index"


#: ``np.save`` through a temporary name (the manifest commits the generation, this keeps files whole).
_save = parts.save_array


def sorted_bands(signatures: np.ndarray, rank: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, rows)``, each ``(bands, m)``: per band, the non-empty rows' band keys sorted by ``(key, rank, row)``."""
    n, num_perm = signatures.shape
    bands, rows_per_band = lsh.band_params(threshold, num_perm)
    present = np.flatnonzero(~(signatures == EMPTY).all(axis=1)) if n else np.zeros(0, dtype=np.int64)
    keys = lsh.band_keys(np.ascontiguousarray(signatures[present]), bands, rows_per_band).T if len(present) else np.zeros((bands, 0), np.uint64)
    out_keys = np.empty((bands, len(present)), dtype=np.uint64)
    out_rows = np.empty((bands, len(present)), dtype=np.uint32)
    by_rank = present[np.lexsort((present, rank[present]))]  # (rank, row) once; each band's stable sort by key keeps it
    at = np.searchsorted(present, by_rank)
    for band in range(bands):
        band_keys = keys[band][at]
        order = np.argsort(band_keys, kind="stable")
        out_keys[band] = band_keys[order]
        out_rows[band] = by_rank[order]
    return out_keys, out_rows


def view_thresholds(config: Config) -> dict[str, float]:
    """The LSH threshold of each view, in :data:`VIEWS` order."""
    return {"words": config.link.words_threshold, "anchors": config.link.anchors_threshold}


def write_index_sets(gen_dir: Path, views: dict[str, ShingleSets], signatures: dict[str, np.ndarray], config: Config) -> None:
    """The heavy half of ``gen_dir/index``: band keys, signatures and shingle sets of every corpus row.

    Written as soon as link has run, so a store's run need not hold the
    signatures and sets through trace (at a million documents, about 3 GiB).
    """
    out = index_dir(gen_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank = -views["words"].sizes()
    thresholds = view_thresholds(config)
    for view in VIEWS:
        keys, rows = sorted_bands(signatures[view], rank, thresholds[view])
        _save(out / f"bands_{view}_keys.npy", keys)
        _save(out / f"bands_{view}_rows.npy", rows)
    # The signatures and sets in the format a run's link and trace partitions read (``link.parts``).
    parts.write_signatures(out, signatures)
    parts.write_views(out, views)


def write_index(
    gen_dir: Path, documents: pl.DataFrame, copies: pl.DataFrame, roots: np.ndarray, floating: Floating | None,
    facts: derivation.DerivationFacts | None, sample_rows: np.ndarray, boilerplate_keys: np.ndarray, frequent_words: np.ndarray,
    config: Config, line_keys: ShingleSets | None = None,
) -> None:
    """Write the rest of ``gen_dir/index`` (after :func:`write_index_sets`) from a run's corpus (rows sorted by ``doc_id``) and its link and trace results.

    ``documents`` is the run's published documents table (any order);
    ``roots`` is in corpus rows, ``copies`` the link stage's copy pairs
    (``a, b`` corpus rows and the evidence columns).
    """
    out = index_dir(gen_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(roots)
    ids = documents.select("doc_id").sort("doc_id")
    row_cluster = np.unique(roots, return_inverse=True)[1].astype(np.int64) if n else np.zeros(0, np.int64)
    bands = {view: list(lsh.band_params(threshold, config.prepare.num_perm)) for view, threshold in view_thresholds(config).items()}
    _save(out / "row_cluster.npy", row_cluster)
    # Members in cluster order (then row), so one cluster is one contiguous slice.
    placed = (
        ids.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64), pl.Series("cluster", row_cluster))
        .join(documents, on="doc_id", how="left").sort("cluster", "row")
    )
    tmp = out / ".members.parquet.tmp"
    placed.write_parquet(tmp, compression="zstd", statistics=True, row_group_size=MEMBER_ROW_GROUP)
    tmp.replace(out / "members.parquet")
    lo = np.searchsorted(placed["cluster"].to_numpy(), np.arange((row_cluster.max() + 2) if n else 1))
    _save(out / "cluster_lo.npy", lo.astype(np.int64))
    schemas.write_parquet_atomic(ids, out / "ids.parquet")
    hashes = placed.select("row", pl.col("content_hash").str.to_integer(base=16, dtype=pl.UInt64).alias("h")).sort("h", "row")
    _save(out / "hash_keys.npy", hashes["h"].to_numpy())
    _save(out / "hash_rows.npy", hashes["row"].to_numpy().astype(np.int64))
    a = copies["a"].to_numpy().astype(np.int64)
    schemas.write_parquet_atomic(
        copies.with_columns(pl.Series("cluster", row_cluster[a] if len(a) else np.zeros(0, np.int64))).sort("cluster", "a", "b"),
        out / "copies.parquet",
    )
    near_key, near_row = near_boilerplate(line_keys, config.prepare.boilerplate_min_docs)
    floating = floating or Floating.nothing()
    facts = facts or derivation.DerivationFacts.empty()
    in_sample = np.zeros(n, dtype=bool)
    in_sample[sample_rows] = True
    arrays: dict[str, np.ndarray] = {
        "boilerplate_keys": boilerplate_keys, "frequent_words": frequent_words,
        "floating_lines": floating.lines, "floating_links": floating.links, "in_sample": in_sample,
        "near_key": near_key, "near_row": near_row,
    }
    for name in ("words", "lines", "grams"):
        counts: derivation.Counts = getattr(facts, name)
        arrays[f"{name}_keys"], arrays[f"{name}_counts"] = counts.keys, counts.counts
    tmp = out / ".corpus.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(out / "corpus.npz")
    meta = {
        "index_version": INDEX_VERSION, "documents": n, "num_perm": config.prepare.num_perm, "bands": bands,
        "n_clusters": int(facts.n_clusters), "least": {name: int(getattr(facts, name).least) for name in ("words", "lines", "grams")},
        "config_fingerprint": config.fingerprint(),
    }
    schemas.write_json_atomic(meta, out / "meta.json")


def near_boilerplate(line_keys: ShingleSets | None, min_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """``(key, row)`` of every short line one document short of boilerplate, with the rows holding it (sorted by key, row).

    A query holding such a line makes it boilerplate (``normalize.boilerplate_keys``):
    those rows are then shingled and signed anew, as an incremental run would.
    """
    if line_keys is None or len(line_keys.hashes) == 0 or min_docs < 2:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    doc = np.repeat(np.arange(line_keys.n_docs, dtype=np.int64), line_keys.sizes())
    pairs = pl.DataFrame({"key": line_keys.hashes.astype(np.uint64), "row": doc}).filter(pl.col("key") != 0).unique()
    near = pairs.filter(pl.len().over("key") == min_docs - 1).sort("key", "row")
    return near["key"].to_numpy(), near["row"].to_numpy()


@dataclass
class StoreIndex:
    """A store generation's lookup index, opened lazily: arrays are memory-mapped, tables read on first use."""

    path: Path
    meta: dict[str, Any]

    @staticmethod
    def open(path: Path) -> "StoreIndex":
        return StoreIndex(path, json.loads((path / "meta.json").read_text()))

    def _array(self, name: str) -> np.ndarray:
        return np.load(self.path / f"{name}.npy", mmap_mode="r")

    @property
    def n(self) -> int:
        return int(self.meta["documents"])

    @cached_property
    def corpus(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "corpus.npz") as data:
            return {k: data[k] for k in data.files}

    def band_table(self, view: str) -> tuple[np.ndarray, np.ndarray]:
        return self._array(f"bands_{view}_keys"), self._array(f"bands_{view}_rows")

    def band_params(self, view: str) -> tuple[int, int]:
        bands, rows = self.meta["bands"][view]
        return int(bands), int(rows)

    @cached_property
    def signatures(self) -> dict[str, np.ndarray]:
        return parts.open_signatures(self.path)

    @cached_property
    def views(self) -> dict[str, ShingleSets]:
        return parts.open_views(self.path)

    @cached_property
    def row_cluster(self) -> np.ndarray:
        return self._array("row_cluster")

    @cached_property
    def cluster_lo(self) -> np.ndarray:
        return self._array("cluster_lo")

    @cached_property
    def copies(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / "copies.parquet")

    @cached_property
    def doc_ids(self) -> pl.Series:
        return pl.read_parquet(self.path / "ids.parquet")["doc_id"]

    @property
    def floating(self) -> Floating:
        return Floating(self.corpus["floating_lines"], self.corpus["floating_links"])

    @property
    def facts(self) -> derivation.DerivationFacts:
        c, least = self.corpus, self.meta["least"]
        counts = {name: derivation.Counts(c[f"{name}_keys"], c[f"{name}_counts"], int(least[name])) for name in ("words", "lines", "grams")}
        return derivation.DerivationFacts(counts["words"], int(self.meta["n_clusters"]), counts["lines"], counts["grams"])

    def members(self, clusters: np.ndarray) -> pl.DataFrame:
        """Documents-table rows (with ``row`` and ``cluster``) of the dense ``clusters``, read by slices."""
        lo, hi = self.cluster_lo[clusters], self.cluster_lo[np.asarray(clusters) + 1]
        scan = pl.scan_parquet(self.path / "members.parquet")
        parts = [scan.slice(int(a), int(b - a)) for a, b in zip(lo.tolist(), hi.tolist())]
        return pl.concat(pl.collect_all(parts)) if parts else scan.head(0).collect()

    def stored_rows(self, content_hashes: np.ndarray) -> np.ndarray:
        """Per content hash (uint64): a stored row with that content (the first), or -1."""
        keys, rows = self._array("hash_keys"), self._array("hash_rows")
        at = np.searchsorted(keys, content_hashes)
        ok = at < len(keys)
        ok[ok] = keys[at[ok]] == content_hashes[ok]
        return np.where(ok, rows[np.minimum(at, max(len(rows) - 1, 0))] if len(rows) else -1, -1)
