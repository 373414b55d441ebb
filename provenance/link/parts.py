"""The link stage partitioned by band: tasks that read the corpus from a work folder and write Parquet partitions.

When ``partitions`` asks for it (``RunOptions.partitions``; on a Dask runner
by default), the run writes its signatures and shingle sets once, after
prepare, as ``.npy`` files in a work folder every worker can read
(:class:`Partitions`, the format of the store's lookup index:
:func:`write_views` / :func:`open_views`, and the signatures alike).  Each task is one slice of one
view's bands (:class:`BandSlice`): it memory-maps the folder, buckets the
slice's bands over every signature (only the slice's columns are read),
verifies the candidates with the same :class:`~provenance.link.stage.Verifier`
and writes the verified pairs as ``link/<view>-<first>-<stop>.parquet``.

A pair's verdict depends on the pair alone, so the union of the slices' pairs
is exactly what one process finds over all bands; the client reads the
partitions (verified pairs are few), de-duplicates and sorts them, and goes on
as the single-process stage does (``link_stage.linked_from_verified``: exact
duplicates, scores, evidence, clusters).  The only difference is in
``run.json``: a candidate met in two slices is counted (and checked) twice.

Data moves between the client and the tasks as files, never as pickled
arrays, so a task can run on any worker and a failed task is retried alone.
A task's memory is its slice's bucket tables and the pages of the sets its
candidates touch, not the corpus.
"""

from __future__ import annotations

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
from provenance.link import lsh
from provenance.link.stage import Linked, Verifier, linked_from_verified, signed_sizes, view_thresholds
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
    """One link partition: bands ``first:stop`` of ``view``, over every signature in ``folder``."""

    folder: Path
    view: str
    first: int
    stop: int

    def __len__(self) -> int:  # what progress counts: bands
        return self.stop - self.first

    @property
    def path(self) -> Path:
        return self.folder / "link" / f"{self.view}-{self.first:04d}-{self.stop:04d}.parquet"


@dataclass(frozen=True)
class SliceResult:
    """What a link partition returns to the client: where its pairs are, and small counts."""

    path: Path
    view: str
    pairs: int
    candidates: int
    verified_exactly: int
    bytes: int
    seconds: float


def band_slices(folder: Path, bands: dict[str, int], count: int) -> list[BandSlice]:
    """``count`` slices (about; at least one per view) of about equal numbers of bands, view by view."""
    total = sum(bands.values())
    per = max(1, -(-total // max(1, count)))
    out = []
    for view, n in bands.items():
        k = max(1, -(-n // per))
        cuts = np.linspace(0, n, k + 1).round().astype(int)
        out.extend(BandSlice(folder, view, int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo)
    return out


def link_partition(part: BandSlice, config: Config) -> SliceResult:
    """Candidates of one band slice, verified, written as a Parquet partition of ``a, b`` (sorted, unique)."""
    started = time.perf_counter()
    check_visible(part.folder)
    views, signatures = open_views(part.folder), open_signatures(part.folder)
    signed = {view: np.load(part.folder / f"signed_{view}.npy", mmap_mode="r") for view in VIEWS}
    nonempty = np.load(part.folder / f"present_{part.view}.npy")
    shell = Prepared(pl.DataFrame(), pl.DataFrame(), views, signatures)
    accept = Verifier(shell, config, None, signed=signed)
    rank = -views["words"].sizes()
    pairs = lsh.candidate_pairs(
        signatures[part.view], rank, threshold=view_thresholds(config)[part.view], window=config.link.bucket_window,
        accept=accept, band_slice=(part.first, part.stop), nonempty=nonempty,
    )
    part.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = part.path.with_name(f".{part.path.name}.tmp")
    pairs.write_parquet(tmp, compression="zstd", statistics=False)
    tmp.replace(part.path)
    return SliceResult(part.path, part.view, pairs.height, accept.candidates, accept.verified_exactly, part.path.stat().st_size,
                       time.perf_counter() - started)


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
    """The link stage with its candidates and verification as band partitions on ``parts.map`` (same result as ``link_stage``)."""
    report = StageReport("link", rows_in=prepared.documents.height)
    with timed(report):
        parts.write_corpus(prepared, config)
        thresholds = view_thresholds(config)
        bands = {view: lsh.band_params(thresholds[view], prepared.signatures[view].shape[1])[0] for view in prepared.signatures}
        slices = band_slices(parts.folder, bands, parts.count)
        done: list[SliceResult] = parts.map(link_partition, slices, [config] * len(slices))
        found = {}
        for view in prepared.signatures:
            paths = [d.path for d in done if d.view == view]
            frames = [pl.read_parquet(p) for p in paths]
            found[view] = pl.concat(frames).unique().sort("a", "b") if frames else pl.DataFrame(schema=lsh.PAIRS_SCHEMA)
        counted = {"candidates": sum(d.candidates for d in done), "verified_exactly": sum(d.verified_exactly for d in done)}
        linked = linked_from_verified(prepared, config, found, counted, report, progress=progress)
        report.stats.update(partition_stats(done, inputs=folder_bytes(parts.folder)))
        report.runner, report.partitions = parts.runner, len(slices)
    return linked, report
