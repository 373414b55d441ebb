"""The link stage partitioned by band, then by pair: tasks that read the corpus from a work folder and write Parquet.

When ``partitions`` asks for it (``RunOptions.partitions``; on a Dask runner
by default), the run writes its signatures and shingle sets once, after
prepare, as ``.npy`` files in a work folder every worker can read
(:class:`Partitions`; the format of the store's lookup index:
:func:`write_views` / :func:`open_views`, and the signatures alike).  Then two
waves of tasks run on the chain's map:

1. **Band slices** (:class:`BandSlice`, :func:`link_partition`): one slice of
   one view's bands over every signature, memory-mapped (only the slice's
   columns are read).  Its candidate pairs are cut by pair hash into
   ``partitions`` Parquet files, ``link/candidates-<view>-<first>-<stop>-<k>.parquet``.
2. **Pair partitions** (:class:`PairBucket`, :func:`verify_partition`): every
   slice's file ``k``, each distinct pair verified once with the same
   :class:`~provenance.link.stage.Verifier` (prefilter, then the exact rule),
   the passing pairs of each view written to ``link/verified-<k>.parquet``.

A pair's verdict depends on the pair alone, so each view's verified pairs are
exactly what one process finds over all its bands; the client reads them
(verified pairs are few), de-duplicates and sorts them, and goes on as the
single-process stage does (``link_stage.linked_from_verified``: exact
duplicates, scores, evidence, clusters).  Only ``run.json``'s counts differ:
a pair found by both views is one candidate here, two there.

Data moves between the client and the tasks as files, never as pickled
arrays, so a task can run on any worker and a failed task is retried alone.
A band slice holds its bands' columns and bucket tables for every document
(about 0.4 GiB per million documents for 13 two-row bands), a pair partition
its share of the candidates and the pages of the sets they touch; neither
holds the corpus's sets or texts.
"""

from __future__ import annotations

import mmap
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from provenance import spill
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.kernels import GOLDEN, sorted_member, sorted_unique
from provenance.link import evidence, lsh, unit_groups, units
from provenance.link.stage import Linked, Verifier, _slices, linked_from_verified, signed_sizes, view_thresholds
from provenance.prepare.minhash import EMPTY
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import Prepared
from provenance.stage_report import Progress, StageReport, no_progress, timed

VIEWS = ("words", "anchors")


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` through a temporary name, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array))
    tmp.replace(path)


def write_views(folder: Path, views: dict[str, ShingleSets]) -> None:
    """``<view>_hashes.npy`` and ``<view>_offsets.npy`` of every view (what :func:`open_views` maps)."""
    for view in VIEWS:
        save_array(folder / f"{view}_hashes.npy", views[view].hashes)
        save_array(folder / f"{view}_offsets.npy", views[view].offsets.astype(np.int64, copy=False))


def write_signatures(folder: Path, signatures: dict[str, np.ndarray]) -> None:
    """``sig_<view>.npy`` of every view (what :func:`open_signatures` maps)."""
    for view in VIEWS:
        save_array(folder / f"sig_{view}.npy", signatures[view].astype(np.uint32, copy=False))


def _mapped(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npy", mmap_mode="r")


def open_views(folder: Path) -> dict[str, ShingleSets]:
    """The views :func:`write_views` wrote, memory-mapped: a reader touches the pages it reads."""
    return {view: ShingleSets(_mapped(folder, f"{view}_hashes"), _mapped(folder, f"{view}_offsets")) for view in VIEWS}


def open_signatures(folder: Path) -> dict[str, np.ndarray]:
    """The signatures :func:`write_signatures` wrote, memory-mapped."""
    return {view: _mapped(folder, f"sig_{view}") for view in VIEWS}


#: Rows (or pairs) a task reads from the memory-mapped work folder between two :func:`release_pages` (bounds its RSS).
RELEASE_EVERY = 4096


def release_pages(*arrays: np.ndarray) -> None:
    """Unmap the resident pages of memory-mapped ``arrays`` from this process; they stay in the OS page cache.

    Why: a page fault on a mapped file maps up to 16 neighbouring pages too
    (Linux's fault-around), so a task gathering scattered rows soon holds the
    whole file in its resident set, a size that grows with the corpus, and the
    resident set is what a Dask worker's memory limit measures.  Reading in
    chunks of :data:`RELEASE_EVERY` rows and releasing after each keeps it at
    one chunk's pages.  Arrays that are not mapped are left alone.
    """
    for array in arrays:
        base: Any = array
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        if base is not None and hasattr(mmap, "MADV_DONTNEED"):
            base.madvise(mmap.MADV_DONTNEED)


def take_mapped(sets: ShingleSets, rows: np.ndarray, every: int = RELEASE_EVERY) -> ShingleSets:
    """``sets.take(rows)`` read ``every`` rows at a time, releasing the mapped pages after each (:func:`release_pages`)."""
    rows = np.asarray(rows, dtype=np.int64)
    sizes = np.diff(np.asarray(sets.offsets))[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    hashes = np.empty(int(offsets[-1]), dtype=sets.hashes.dtype)
    for lo in range(0, len(rows), every):
        hi = min(len(rows), lo + every)
        hashes[offsets[lo] : offsets[hi]] = sets.take(rows[lo:hi]).hashes
        release_pages(sets.hashes, sets.offsets)
    return ShingleSets(hashes, offsets)


MapParts = Callable[..., list[Any]]


@dataclass
class Partitions:
    """How many partitions link and trace are cut into, where they meet (``folder``), and what runs them.

    ``map`` is the chain's ``Hooks.map_batches``: inline by default, tasks on
    the flow's runner (``runner``) in a Prefect flow.  ``folder`` must be
    readable by every worker (under ``PROVENANCE_SPILL_DIR`` when set).
    """

    count: int
    folder: Path
    map: MapParts
    runner: str = "process"
    #: Parquet bytes written for the tasks and by them, per stage (``run.json``).
    written: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def create(count: int, map_parts: MapParts, runner: str = "process", under: Path | None = None) -> "Partitions":
        under = under if under is not None else spill.default_folder()
        if under is not None:
            Path(under).mkdir(parents=True, exist_ok=True)
        return Partitions(count, Path(tempfile.mkdtemp(prefix="provenance-parts-", dir=under)), map_parts, runner)

    def write_views(self, prepared: Prepared) -> None:
        """The shingle sets, once (link writes them; trace reads them, and writes them if link's result came from a cache)."""
        if not (self.folder / "views.done").exists():
            write_views(self.folder, prepared.views)
            (self.folder / "views.done").write_text("1\n")

    def write_corpus(self, prepared: Prepared, config: Config) -> None:
        """The sets, signatures and what the verifier needs of them, for link's tasks."""
        self.write_views(prepared)
        write_signatures(self.folder, prepared.signatures)
        for view, sizes in signed_sizes(prepared, config).items():
            save_array(self.folder / f"signed_{view}.npy", sizes)
        for view in VIEWS:
            sig = prepared.signatures[view]
            save_array(self.folder / f"present_{view}.npy", ~(sig == EMPTY).all(axis=1))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def check_visible(folder: Path) -> None:
    """A worker that cannot see the work folder fails with one line that says what to do."""
    if not folder.exists():
        raise ProvenanceError(
            f"the run's work folder {folder} is not visible here: set PROVENANCE_SPILL_DIR to a folder every worker can read"
        )


@dataclass(frozen=True)
class BandSlice:
    """One link partition of the first wave: bands ``first:stop`` of ``view``, over every signature in ``folder``."""

    folder: Path
    view: str
    first: int
    stop: int
    #: Pair partitions its candidates are cut into (by pair hash), for the second wave.
    buckets: int = 1

    def __len__(self) -> int:  # what progress counts: bands
        return self.stop - self.first

    def path(self, bucket: int) -> Path:
        """This slice's candidates falling in pair partition ``bucket``."""
        return self.folder / "link" / f"candidates-{self.view}-{self.first:04d}-{self.stop:04d}-{bucket:04d}.parquet"


@dataclass(frozen=True)
class SliceResult:
    """What a band slice returns to the client: its candidates' count and bytes (the files are named by the slice)."""

    view: str
    candidates: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class PairBucket:
    """One link partition of the second wave: every slice's candidates whose pair hash falls in ``number``."""

    folder: Path
    number: int
    slices: tuple[BandSlice, ...]

    def __len__(self) -> int:
        return 1

    @property
    def path(self) -> Path:
        return self.folder / "link" / f"verified-{self.number:04d}.parquet"


@dataclass(frozen=True)
class BucketResult:
    """What a pair partition returns: where its verified pairs are, and small counts."""

    path: Path
    candidates: int
    verified_exactly: int
    pairs: int
    bytes: int
    seconds: float


def band_slices(folder: Path, bands: dict[str, int], count: int, buckets: int = 1) -> list[BandSlice]:
    """``count`` slices (about; at least one per view) of about equal numbers of bands, view by view."""
    total = sum(bands.values())
    per = max(1, -(-total // max(1, count)))
    out = []
    for view, n in bands.items():
        k = max(1, -(-n // per))
        cuts = np.linspace(0, n, k + 1).round().astype(int)
        out.extend(BandSlice(folder, view, int(lo), int(hi), buckets) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo)
    return out


def bucket_of(a: np.ndarray, b: np.ndarray, buckets: int) -> np.ndarray:
    """The pair partition of each pair ``(a, b)``: a multiplicative hash of the packed pair, so rows spread evenly."""
    packed = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
    return ((packed * GOLDEN) >> np.uint64(40)) % np.uint64(max(1, buckets))


def _write(frame: pl.DataFrame, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=False)
    tmp.replace(path)
    return path.stat().st_size


def link_partition(part: BandSlice, config: Config) -> SliceResult:
    """First wave: the candidate pairs of one band slice, written as ``buckets`` Parquet files by pair hash.

    Nothing is verified here: a near-duplicate collides in most bands, so in
    most slices, and verifying per slice would check it again in each.
    """
    started = time.perf_counter()
    check_visible(part.folder)
    signatures = open_signatures(part.folder)
    rank = -open_views(part.folder)["words"].sizes()
    nonempty = np.load(part.folder / f"present_{part.view}.npy")
    pairs = lsh.candidate_pairs(
        signatures[part.view], rank, threshold=view_thresholds(config)[part.view], window=config.link.bucket_window,
        band_slice=(part.first, part.stop), nonempty=nonempty,
    )
    bucket = bucket_of(pairs["a"].to_numpy(), pairs["b"].to_numpy(), part.buckets)
    written = sum(_write(pairs.filter(pl.Series(bucket == k)), part.path(k)) for k in range(part.buckets))
    return SliceResult(part.view, pairs.height, written, time.perf_counter() - started)


def verify_partition(part: PairBucket, config: Config) -> BucketResult:
    """Second wave: one pair partition's candidates from every slice, each distinct pair verified once.

    Written: ``view, a, b`` of every candidate of each view that passes the
    :class:`~provenance.link.stage.Verifier` (its verdict depends on the pair
    alone, not on the view that found it).
    """
    started = time.perf_counter()
    check_visible(part.folder)
    views, signatures = open_views(part.folder), open_signatures(part.folder)
    signed = {view: np.load(part.folder / f"signed_{view}.npy", mmap_mode="r") for view in VIEWS}
    found = pl.concat([pl.read_parquet(s.path(part.number)).with_columns(pl.lit(s.view).alias("view")) for s in part.slices])
    packed = (found["a"].to_numpy().astype(np.uint64) << np.uint64(32)) | found["b"].to_numpy().astype(np.uint64)
    distinct = sorted_unique(np.sort(packed))
    accept = Verifier(Prepared(pl.DataFrame(), pl.DataFrame(), views, signatures), config, None, signed=signed)
    mapped = [*(a for v in views.values() for a in (v.hashes, v.offsets)), *signatures.values(), *signed.values()]
    chunks = [distinct[:0]]
    for lo in range(0, len(distinct), RELEASE_EVERY):  # the pairs' pages a chunk at a time (``release_pages``)
        chunks.append(accept(distinct[lo : lo + RELEASE_EVERY]))
        release_pages(*mapped)
    passed = np.sort(np.concatenate(chunks))
    verified = found.filter(pl.Series(sorted_member(packed, passed))).unique().sort("view", "a", "b").select("view", "a", "b")
    size = _write(verified, part.path)
    return BucketResult(part.path, len(distinct), accept.verified_exactly, verified.height, size, time.perf_counter() - started)


@dataclass(frozen=True)
class UnitBatch:
    """A task of link's evidence: the units of some paired documents, written as batch ``number`` of a
    :class:`~provenance.link.unit_groups.UnitGroups` folder (their texts: rows of the spill, or a Parquet file)."""

    folder: Path
    number: int
    texts: spill.TextRows | Path
    docs: int

    def __len__(self) -> int:  # what progress counts: documents
        return self.docs


@dataclass(frozen=True)
class UnitBatchResult:
    files: unit_groups.BatchFiles
    bytes: int
    seconds: float


def units_partition(part: UnitBatch, config: Config) -> UnitBatchResult:
    """Build one batch's units under the corpus's floating lines (read from the folder) and write them there."""
    started = time.perf_counter()
    check_visible(part.folder)
    texts = part.texts.read() if isinstance(part.texts, spill.TextRows) else pl.read_parquet(part.texts)["text"]
    floating = units.Floating(np.load(part.folder / "floating_lines.npy"), np.load(part.folder / "floating_links.npy"))
    files = unit_groups.write_batch(part.folder, part.number, units.build_units(texts, floating, config.evidence))
    return UnitBatchResult(files, files.nbytes, time.perf_counter() - started)


@dataclass(frozen=True)
class EvidenceBlock:
    """A task of link's evidence: the pairs of one :class:`~provenance.link.unit_groups.Block` (``x, y`` in ``path``)."""

    groups: unit_groups.UnitGroups
    i: int
    j: int
    path: Path

    def __len__(self) -> int:
        return 1

    @property
    def out(self) -> Path:
        return self.path.with_name(f"evidence-{self.path.name}")


@dataclass(frozen=True)
class EvidenceResult:
    path: Path
    bytes: int
    seconds: float


def evidence_partition(part: EvidenceBlock, config: Config) -> EvidenceResult:
    """The evidence of one block's pairs, read two groups of units at most, written as a ``.npy`` matrix."""
    started = time.perf_counter()
    check_visible(part.groups.folder)
    x, y = np.load(part.path)
    found = evidence.pair_evidence(part.groups.read_groups(part.i, part.j), x, y, config.evidence)
    save_array(part.out, found)
    return EvidenceResult(part.out, part.out.stat().st_size, time.perf_counter() - started)


class EvidenceOnParts:
    """Link's units and evidence of copying as tasks on ``parts.map`` (``stage.copy_evidence``'s ``tasks``).

    Units are built batch by batch on the workers into a
    :class:`~provenance.link.unit_groups.UnitGroups` folder under the work
    folder, then each block of pairs (two groups) is aligned on a worker; the
    client holds the pairs and their evidence, never the units.  Only the
    floating-line count (over every text) and the subset of units trace needs
    stay in the client.
    """

    def __init__(self, parts: Partitions) -> None:
        self.parts = parts
        self.done: list[Any] = []
        self.tasks = 0

    def build(self, prepared: Prepared, floating: units.Floating, rows: np.ndarray, config: Config) -> unit_groups.UnitGroups:
        groups = unit_groups.UnitGroups(config.run.spill_over_mib * 2**20, self.parts.folder / "units")
        try:
            save_array(groups.folder / "floating_lines.npy", floating.lines)
            save_array(groups.folder / "floating_links.npy", floating.links)
            todo = []
            for k, (lo, hi) in enumerate(_slices(len(rows), config.run.batch_size, self.parts.count)):
                if prepared.texts is not None:
                    texts: spill.TextRows | Path = spill.TextRows(prepared.texts, rows[lo:hi])
                else:
                    texts = groups.folder / f"texts-{k}.parquet"
                    pl.DataFrame({"text": prepared.documents["text"].gather(rows[lo:hi])}).write_parquet(texts, compression="lz4")
                todo.append(UnitBatch(groups.folder, k, texts, hi - lo))
            built: list[UnitBatchResult] = self.parts.map(units_partition, todo, [config] * len(todo))
            for result in built:
                groups.adopt(result.files)
        except BaseException:
            groups.remove()
            raise
        self.done += built
        self.tasks += len(todo)
        return groups

    def evidence(self, groups: unit_groups.UnitGroups, a: np.ndarray, b: np.ndarray, config: Config) -> np.ndarray:
        blocks = groups.block_list(a, b)
        todo = []
        for n, block in enumerate(blocks):
            path = groups.folder / f"block-{n:05d}.npy"
            save_array(path, np.stack([block.x, block.y]))
            todo.append(EvidenceBlock(groups, block.i, block.j, path))
        found: list[EvidenceResult] = self.parts.map(evidence_partition, todo, [config] * len(todo)) if todo else []
        out = np.zeros((len(a), len(evidence.PAIR_COLUMNS)))
        for block, result in zip(blocks, found):
            out[block.pairs] = np.load(result.path)
        self.done += found
        self.tasks += len(todo)
        return out


def folder_bytes(folder: Path) -> int:
    """Bytes of the files directly in ``folder`` (the work folder's arrays)."""
    return int(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()))


def partition_stats(done: list[Any], inputs: int) -> dict[str, Any]:
    """``run.json`` figures of a partitioned stage: bytes written for and by its tasks, and the tasks' seconds."""
    seconds = [d.seconds for d in done]
    return {
        "partition_input_bytes": int(inputs),
        "partition_output_bytes": int(sum(d.bytes for d in done)),
        "partition_seconds": round(float(sum(seconds)), 4),
        "partition_seconds_max": round(float(max(seconds, default=0.0)), 4),
    }


def link_on_parts(prepared: Prepared, config: Config, parts: Partitions, *, progress: Progress = no_progress) -> tuple[Linked, StageReport]:
    """The link stage with its candidates (band slices) and their verification (pair partitions) as tasks on ``parts.map``.

    The same result as ``link_stage`` (see the module docstring).
    """
    report = StageReport("link", rows_in=prepared.documents.height)
    with timed(report):
        parts.write_corpus(prepared, config)
        inputs = folder_bytes(parts.folder)
        thresholds = view_thresholds(config)
        bands = {view: lsh.band_params(thresholds[view], prepared.signatures[view].shape[1])[0] for view in prepared.signatures}
        slices = band_slices(parts.folder, bands, parts.count, buckets=parts.count)
        cut: list[SliceResult] = parts.map(link_partition, slices, [config] * len(slices))
        buckets = [PairBucket(parts.folder, k, tuple(slices)) for k in range(parts.count)]
        done: list[BucketResult] = parts.map(verify_partition, buckets, [config] * len(buckets))
        verified = pl.concat([pl.read_parquet(d.path) for d in done])
        found = {view: verified.filter(pl.col("view") == view).select("a", "b").unique().sort("a", "b") for view in prepared.signatures}
        counted = {"candidates": sum(d.candidates for d in done), "verified_exactly": sum(d.verified_exactly for d in done)}
        on_parts = EvidenceOnParts(parts)
        linked = linked_from_verified(prepared, config, found, counted, report, progress=progress, tasks=on_parts)
        report.stats.update(partition_stats([*cut, *done, *on_parts.done], inputs=inputs))
        report.stats.update(band_slices=len(slices), pair_partitions=len(buckets), evidence_tasks=on_parts.tasks,
                            candidate_bytes=int(sum(c.bytes for c in cut)))
        report.runner, report.partitions = parts.runner, len(slices) + len(buckets) + on_parts.tasks
    return linked, report
