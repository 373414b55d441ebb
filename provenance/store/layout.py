"""The persistent store of an incremental corpus: segments, generations, a manifest and a lock.

Layout of a store folder::

    MANIFEST.json          format version, signature scheme, options, current generation, live segments
    LOCK                   flock'd by the run that holds the store; says its pid, host and start time
    segments/<g>.*.parquet per-document data prepared in generation g (immutable once written)
    gen-<g>/               derived tables of generation g: verified pairs, spin decisions,
                           boilerplate keys, frequent word shingles, and ``out/`` (the run's
                           published output tables) and ``index/`` (the lookup index,
                           ``provenance.store.index``)

Why segments: a daily run over a year of documents must not rewrite a year
of shingles.  A segment holds the documents (re)prepared by one run: their
text and metadata, content hash, short-line keys, boilerplate lines, shingle
sets and MinHash signatures, as flat arrays with per-document offsets.  A
document's live row is its row in the newest segment that holds it; a
later version of the document, or a re-preparation after the corpus-wide
boilerplate changed, simply lands in a later segment.  When more than half of
the stored rows are stale, the live rows are compacted into one segment.

Why generations: ``MANIFEST.json`` is replaced atomically (temp file, fsync,
rename) and is the commit point of a run.  Everything a run writes goes into
new files first; a crash (even SIGKILL) before the manifest is replaced leaves
the previous generation in force, and the next run sweeps the leftovers.
The output folder a user reads is a symlink to ``gen-<g>/out``, swapped
atomically after the commit, so readers see the old tables or the new ones,
never a mixture.  Runs do not read band keys back: they are a fixed function of
the stored signatures (``lsh.band_keys``) and cheaper to recompute than to read
(only the lookup index keeps them, sorted, for lookups).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

from provenance import outputs, schemas
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.prepare.minhash import SignatureScheme
from provenance.prepare.shingle import ShingleSets

#: The store layout's version (the folders and files below); a store of another layout is refused.
FORMAT_VERSION = 2
MANIFEST = "MANIFEST.json"
LOCK = "LOCK"
#: Flat per-document arrays of a segment, with their element types.
RAGGED = {"words": np.uint32, "anchors": np.uint32, "line_keys": np.uint64, "boilerplate": np.int32}
#: Per-document bookkeeping columns of a segment besides the input's own columns.
META = {"version": pl.Int32, "fingerprint": pl.String, "content_hash": pl.String, "n_tokens": pl.Int32, "n_chars": pl.Int32}


# ---------------------------------------------------------------------------- lock


@contextmanager
def locked(store_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the store's lock for the ``with`` body (``outputs.locked``: flock, dropped by the kernel if the run dies)."""
    with outputs.locked(store_dir, wait_seconds, what=f"store {store_dir}"):
        yield


# ---------------------------------------------------------------------------- manifest


@dataclass
class Manifest:
    generation: int
    segments: list[int]
    signature: dict[str, Any]
    #: ``Config.fingerprint()`` of the runs that built the store, and the result options behind it.
    fingerprint: str
    options: dict[str, Any]
    #: ``published``-date mode of the last run (see ``incremental``): a change re-traces everything.
    facts_mode: str
    runs: list[dict[str, Any]]
    #: Version of the lookup index written in ``gen-<g>/index`` (``provenance.store.index``); 0: none.
    lookup_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "segments": self.segments,
            "signature": self.signature,
            "config_fingerprint": self.fingerprint,
            "options": self.options,
            "facts_mode": self.facts_mode,
            "runs": self.runs,
            "lookup_index": self.lookup_index,
        }


def read_manifest(store_dir: Path, config: Config) -> Manifest | None:
    """The store's manifest, or ``None`` for a new store; refuses, in one line, a store this run cannot extend.

    A store extends only under the config fingerprint it was built with
    (``Config.fingerprint``: every option and constant that changes a table)
    and the same signature scheme (which digests the hashing code itself).
    """
    path = store_dir / MANIFEST
    if not path.exists():
        if any(p.name != LOCK and not p.name.startswith((".", "gen-", "segments")) for p in store_dir.iterdir()):
            raise ProvenanceError(f"{store_dir} is not a provenance store (no {MANIFEST}) and is not empty; pass an empty or new folder to --store")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProvenanceError(f"cannot read {path}: {exc}") from None
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ProvenanceError(
            f"store {store_dir} has format version {version}, this provenance reads version {FORMAT_VERSION}; "
            "run a matching provenance or start a new --store"
        )
    wanted = SignatureScheme(config.prepare.num_perm, config.prepare.seed).to_dict()
    if data.get("signature") != wanted:
        raise ProvenanceError(
            f"store {store_dir} was signed with {_describe(data.get('signature'))} but this run uses "
            f"{_describe(wanted)}; mixing signature schemes gives wrong similarities: "
            "use the store's options or start a new --store"
        )
    if data.get("config_fingerprint") != config.fingerprint():
        options, stored = config.options(results_only=True), data.get("options", {})
        differ = sorted(k for k in set(options) | set(stored) if options.get(k) != stored.get(k))
        shown = ", ".join(f"{k}={stored.get(k)!r} (now {options.get(k)!r})" for k in differ) or "other constants"
        raise ProvenanceError(
            f"store {store_dir} was built under config fingerprint {str(data.get('config_fingerprint'))[:12]} ({shown}); "
            "pass the same options or start a new --store"
        )
    return Manifest(
        data["generation"], list(data["segments"]), data["signature"], data["config_fingerprint"], data.get("options", {}),
        data.get("facts_mode", ""), list(data.get("runs", [])), int(data.get("lookup_index", 0)),
    )


def _describe(signature: Any) -> str:
    if not isinstance(signature, dict):
        return "an unknown signature scheme"
    return (
        f"scheme {signature.get('scheme')} (num_perm={signature.get('num_perm')}, seed={signature.get('seed')}, "
        f"hashing code {signature.get('hashing')})"
    )


def commit(store_dir: Path, manifest: Manifest) -> None:
    """Make ``manifest`` (and the generation it names) the store's current state: the commit point."""
    outputs.fsync_dir(store_dir / "segments")
    outputs.fsync_dir(generation_dir(store_dir, manifest.generation))
    schemas.write_json_atomic(manifest.to_dict(), store_dir / MANIFEST)
    outputs.fsync_dir(store_dir)


def generation_dir(store_dir: Path, generation: int) -> Path:
    return store_dir / f"gen-{generation:06d}"


def sweep(store_dir: Path, manifest: Manifest | None) -> None:
    """Delete what no committed state refers to: a crashed run's files, superseded generations and segments.

    The current and the previous generation are kept (a reader may still be
    reading the previous output through an old symlink).
    """
    current = manifest.generation if manifest else 0
    live = set(manifest.segments) if manifest else set()
    for path in store_dir.glob("gen-*"):
        try:
            g = int(path.name[4:])
        except ValueError:
            continue
        if g > current or g < current - 1:
            shutil.rmtree(path, ignore_errors=True)
    for path in (store_dir / "segments").glob("*.parquet"):
        try:
            g = int(path.name.split(".")[0])
        except ValueError:
            continue
        if g not in live:
            path.unlink(missing_ok=True)
    for path in [*store_dir.glob(".*.tmp"), *(store_dir / "segments").glob(".*.tmp")]:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- segments


@dataclass
class Segment:
    """Documents prepared by one run: a frame (one row each) and flat per-document arrays.

    ``ragged[name]`` holds every document's array back to back (rows in the
    frame's order); ``signatures[view]`` is ``(rows, num_perm)``.
    """

    documents: pl.DataFrame
    ragged: dict[str, ShingleSets]
    signatures: dict[str, np.ndarray]

    def take(self, rows: np.ndarray) -> "Segment":
        """The rows ``rows`` in that order (all of them in order: the same arrays, not a copy of 4 KiB a document)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == self.documents.height and bool((rows == np.arange(len(rows))).all()):
            return self.shallow()
        return Segment(
            self.documents[pl.Series(rows)] if len(rows) else self.documents.clear(),
            {k: v.take(rows) for k, v in self.ragged.items()},
            {k: v[rows] for k, v in self.signatures.items()},
        )

    def shallow(self) -> "Segment":
        """The same frame and arrays in new dicts (a caller may replace an entry without touching this one)."""
        return Segment(self.documents, dict(self.ragged), dict(self.signatures))

    @staticmethod
    def gather(parts: list["Segment"], part: np.ndarray, rows: np.ndarray) -> "Segment":
        """Row ``rows[i]`` of ``parts[part[i]]`` for every ``i``: one copy of what is kept (not a take, a concatenation and a take)."""
        part = np.asarray(part, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        starts = np.cumsum([0] + [p.documents.height for p in parts]).astype(np.int64)
        frames = pl.concat([p.documents for p in parts], how="diagonal_relaxed", rechunk=False)
        signatures = {}
        for view in ("words", "anchors"):
            out = np.empty((len(part), parts[0].signatures[view].shape[1]), dtype=np.uint32)
            for k, p in enumerate(parts):
                mine = part == k
                out[mine] = p.signatures[view][rows[mine]]
            signatures[view] = out
        return Segment(
            frames[pl.Series(starts[part] + rows)] if len(part) else frames.clear(),
            {k: gather_sets([p.ragged[k] for p in parts], part, rows) for k in RAGGED},
            signatures,
        )

    @staticmethod
    def concat(parts: list["Segment"]) -> "Segment":
        """The parts one after the other; when only one has rows, that one's arrays (a first run's whole corpus is not copied)."""
        full = [p for p in parts if p.documents.height]
        if len(full) == 1 and all(_fits(p.documents.schema, full[0].documents.schema) for p in parts):
            return full[0].shallow()
        return Segment(
            pl.concat([p.documents for p in parts], how="diagonal_relaxed"),
            {k: ShingleSets.concat([p.ragged[k] for p in parts]) for k in RAGGED},
            {k: np.concatenate([p.signatures[k] for p in parts]) for k in ("words", "anchors")},
        )


def gather_sets(parts: list[ShingleSets], part: np.ndarray, rows: np.ndarray) -> ShingleSets:
    """The set of row ``rows[i]`` of ``parts[part[i]]``, for every ``i``: ``concat(parts).take(...)`` without the concatenation.

    Here, not in ``prepare.shingle``: that module is hashing code, whose digest a store's signatures are bound to.
    """
    part = np.asarray(part, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    sizes = np.zeros(len(part), dtype=np.int64)
    for k, sets in enumerate(parts):
        mine = part == k
        sizes[mine] = sets.sizes()[rows[mine]]
    offsets = np.zeros(len(part) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    hashes = np.empty(int(offsets[-1]), dtype=parts[0].hashes.dtype if parts else np.uint32)
    for k, sets in enumerate(parts):
        mine = np.flatnonzero(part == k)
        if len(mine):
            _copy_sets(sets.hashes, np.asarray(sets.offsets, dtype=np.int64), rows[mine], offsets[mine], hashes)
    return ShingleSets(hashes, offsets)


@numba.njit(cache=True, nogil=True)
def _copy_sets(src, src_offsets, rows, starts, out):  # pragma: no cover - compiled
    """Copy set ``rows[i]`` of ``src`` to ``out[starts[i]:]``: one slice copy a document, no index arrays."""
    for i in range(len(rows)):
        lo, hi = src_offsets[rows[i]], src_offsets[rows[i] + 1]
        out[starts[i] : starts[i] + hi - lo] = src[lo:hi]


def _fits(schema: pl.Schema, into: pl.Schema) -> bool:
    """Whether an empty frame of ``schema`` concatenated to one of ``into`` leaves it as it is (no new column, no cast)."""
    return all(name in into and into[name] == dtype for name, dtype in schema.items())


def _segment_path(store_dir: Path, generation: int, part: str) -> Path:
    return store_dir / "segments" / f"{generation:06d}.{part}.parquet"


def write_segment(store_dir: Path, generation: int, segment: Segment) -> None:
    """Write ``segment`` as generation ``generation``'s files (each atomically; the manifest commits them)."""
    docs = segment.documents
    for name in RAGGED:
        sizes = segment.ragged[name].sizes()
        docs = docs.with_columns(pl.Series(f"{name}_len", sizes, dtype=pl.Int64))
        flat = pl.DataFrame({"v": segment.ragged[name].hashes.astype(RAGGED[name], copy=False)})
        _write_flat(flat, _segment_path(store_dir, generation, name))
    for view, sig in segment.signatures.items():
        _write_flat(pl.DataFrame({"v": np.ascontiguousarray(sig).reshape(-1)}), _segment_path(store_dir, generation, f"sig_{view}"))
    schemas.write_parquet_atomic(docs, _segment_path(store_dir, generation, "docs"))


def _write_flat(frame: pl.DataFrame, path: Path) -> None:
    """Hashes do not compress: write them plain (fast to write and to read back)."""
    schemas.write_parquet_atomic(frame, path, compression="uncompressed", statistics=False)


def read_segment(store_dir: Path, generation: int, num_perm: int, columns: list[str] | None = None) -> Segment:
    """One segment back in memory (``columns`` limits the documents frame, e.g. to leave texts on disk)."""
    docs = pl.read_parquet(_segment_path(store_dir, generation, "docs"))
    ragged = {}
    for name, dtype in RAGGED.items():
        flat = pl.read_parquet(_segment_path(store_dir, generation, name))["v"].to_numpy().astype(dtype, copy=False)
        offsets = np.zeros(docs.height + 1, dtype=np.int64)
        np.cumsum(docs[f"{name}_len"].to_numpy(), out=offsets[1:])
        ragged[name] = ShingleSets(flat, offsets)
    signatures = {
        view: pl.read_parquet(_segment_path(store_dir, generation, f"sig_{view}"))["v"].to_numpy().astype(np.uint32, copy=False).reshape(docs.height, num_perm)
        for view in ("words", "anchors")
    }
    docs = docs.drop([f"{name}_len" for name in RAGGED])
    if columns is not None:
        docs = docs.select([c for c in docs.columns if c in columns])
    return Segment(docs, ragged, signatures)


def read_live(store_dir: Path, manifest: Manifest, num_perm: int) -> Segment:
    """Every document's live row (newest segment wins), sorted by ``doc_id``."""
    parts = [read_segment(store_dir, g, num_perm) for g in manifest.segments]
    if not parts:
        return empty_segment(num_perm)
    whole = Segment.concat(parts)
    order = (
        whole.documents.select("doc_id").with_row_index("row")
        .unique("doc_id", keep="last", maintain_order=True)
        .sort("doc_id")["row"].to_numpy()
    )
    return whole if len(order) == whole.documents.height and (np.diff(order) > 0).all() else whole.take(order)


def empty_segment(num_perm: int) -> Segment:
    docs = pl.DataFrame(schema={"doc_id": pl.String, "text": pl.String, "title": pl.String, "source": pl.String, **META})
    return Segment(
        docs,
        {k: ShingleSets(np.zeros(0, dtype=t), np.zeros(1, dtype=np.int64)) for k, t in RAGGED.items()},
        {k: np.zeros((0, num_perm), dtype=np.uint32) for k in ("words", "anchors")},
    )


def stored_rows(store_dir: Path, manifest: Manifest) -> int:
    """Rows over all live segments (stale ones included): what compaction compares with the live count."""
    return sum(pl.scan_parquet(_segment_path(store_dir, g, "docs")).select(pl.len()).collect().item() for g in manifest.segments)


# ---------------------------------------------------------------------------- derived tables


def read_table(store_dir: Path, generation: int, name: str, schema: pl.Schema) -> pl.DataFrame:
    """A derived table of ``generation`` (empty with ``schema`` if that generation has none)."""
    path = generation_dir(store_dir, generation) / f"{name}.parquet"
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=schema)


def write_table(store_dir: Path, generation: int, name: str, frame: pl.DataFrame) -> None:
    schemas.write_parquet_atomic(frame, generation_dir(store_dir, generation) / f"{name}.parquet")


# ---------------------------------------------------------------------------- published outputs

#: The output link is published as a plain run's is (``provenance.outputs``): one atomic symlink switch.
OUTPUT_FILES = outputs.OUTPUT_FILES
publish = outputs.publish
check_publishable = outputs.check_publishable
