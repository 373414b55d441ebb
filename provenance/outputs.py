"""A run's outputs as one unit: the tables in the contract's dtypes, ``run.json``, and how they are published.

:class:`RunResult` is what every run returns (``provenance.run`` in a
notebook, the CLI, the flow, the store): the five tables, cast and ordered to
the Parquet contract (``schemas``), and the ``run.json`` record.

Why generations: a reader of ``OUT/documents.parquet`` must never see one
run's documents beside another run's clusters, even when a run is killed
with SIGKILL halfway through its writes or two runs share an ``OUT``.  So
``OUT`` is a symlink, and a run's files never go into the folder readers
see.  Beside ``OUT`` lives its control folder::

    .OUT.provenance/LOCK       flock'd by the run that writes OUT (pid, host, start)
    .OUT.provenance/run-<n>/   one run's tables, run.json and report.html

A run writes everything into a new ``run-<n>`` (:func:`staged`), then points
``OUT`` at it with one atomic ``rename`` of a symlink (:func:`publish`, the
same switch a store makes to its ``gen-<g>/out``).  Readers see all old or
all new files.  The previous generation is kept for readers still holding the
old link; anything else (a killed run's folder, older generations, temp
files) is swept by the next run.  A store's run publishes its own
generations with :func:`publish` and holds the same :func:`claimed` lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from provenance import schemas
from provenance.errors import ProvenanceError
from provenance.stage_report import Progress, StageReport, no_progress, timed
from provenance.tables import Traced

#: Every file a run can publish in ``OUT`` (a store's runs add the last three).
OUTPUT_FILES = (
    "documents.parquet", "clusters.parquet", "edges.parquet", "rejects.parquet", "evidence.parquet", "run.json",
    "cluster_history.parquet", "document_versions.parquet", "report.html",
)
LOCK = "LOCK"
#: The name of a store's commit file: a folder holding it is a store, never a plain run's output.
STORE_MANIFEST = "MANIFEST.json"
INTACT = "nothing was published: the previous outputs are intact"
_GENERATION = re.compile(r"run-(\d{6,})")
#: A temp file of an atomic write of one of our outputs (``.run.json.x1y2.tmp``), left by a killed run.
_TEMP = re.compile(r"\.(" + "|".join(re.escape(n) for n in OUTPUT_FILES) + r")\.[^/]+\.tmp")


@dataclass
class RunResult:
    """The tables of a run, with exactly the dtypes and column order of the Parquet contract, and ``run.json``."""

    documents: pl.DataFrame
    clusters: pl.DataFrame
    edges: pl.DataFrame
    rejects: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    #: One row per aligned passage of every edge (``schemas.EVIDENCE``).
    evidence: pl.DataFrame = field(default_factory=lambda: schemas.empty(schemas.EVIDENCE))

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "documents": self.documents, "clusters": self.clusters, "edges": self.edges, "rejects": self.rejects,
            "evidence": self.evidence,
        }

    def write(self, out_dir: Path | str) -> dict[str, str]:
        """Publish the five tables and ``run.json`` at ``out_dir`` as one unit; returns their paths."""
        paths, _ = write_tables(self, Path(out_dir))
        return paths


def conformed(traced: Traced, rejects: pl.DataFrame, info: dict[str, Any]) -> RunResult:
    """The run's tables cast and ordered to the contract (rejects sorted), as they are written."""
    return RunResult(
        schemas.conform(traced.documents, schemas.DOCUMENTS, keep_extra=True),
        schemas.conform(traced.clusters, schemas.CLUSTERS),
        schemas.conform(traced.edges, schemas.EDGES),
        schemas.conform(rejects.sort(["source", "doc_id"], nulls_last=True), schemas.REJECTS),
        info,
        evidence=schemas.conform(traced.evidence if traced.evidence is not None else schemas.empty(schemas.EVIDENCE), schemas.EVIDENCE),
    )


def write_tables(result: RunResult, out_dir: Path, progress: Progress = no_progress) -> tuple[dict[str, str], StageReport]:
    """The write stage of a fresh run: its tables then ``run.json``, published at ``out_dir`` as one unit.

    Called with a folder :func:`staged` is filling (the CLI and the flow
    stage the write so that ``report.html`` joins the unit), it writes there
    and leaves publishing to the stage.
    """
    published_at = _staging.get(_key(out_dir))
    if published_at is not None:
        return _write_files(result, Path(out_dir), published_at, progress)
    with staged(out_dir) as folder:
        return _write_files(result, folder, Path(out_dir), progress)


def write_folder(result: RunResult, folder: Path, progress: Progress = no_progress) -> tuple[dict[str, str], StageReport]:
    """The tables and ``run.json`` written into ``folder`` itself (a store's ``gen-<g>/out``, published by the store)."""
    return _write_files(result, Path(folder), Path(folder), progress)


def _write_files(result: RunResult, folder: Path, shown: Path, progress: Progress = no_progress) -> tuple[dict[str, str], StageReport]:
    """Write into ``folder``; ``run.json`` and the result name the files as readers will find them, under ``shown``.

    ``progress`` hears of each table written (``write``, in tables).
    """
    report = StageReport("write", rows_in=result.documents.height)
    frames = result.frames()
    paths = {name: str(shown / f"{name}.parquet") for name in frames}
    try:
        with timed(report):
            progress("write", 0, len(frames), "tables")
            for done, (name, frame) in enumerate(frames.items(), 1):
                schemas.write_table(frame, name, folder)
                progress("write", done, len(frames), "tables")
            report.rows_out = result.documents.height
        result.info = {**result.info, "outputs": dict(paths)}
        result.info.setdefault("stages", {})[report.name] = report.to_dict()
        schemas.write_json_atomic(result.info, folder / "run.json")
    except (OSError, pl.exceptions.PolarsError) as exc:  # a full or read-only disk: one line, never worth a retry
        if not is_write_failure(exc):
            raise
        raise write_error(shown, exc) from None
    result.out_dir = shown
    return paths | {"run": str(shown / "run.json")}, report


# ---------------------------------------------------------------------------- lock


@contextmanager
def locked(folder: Path, wait_seconds: float = 0.0, *, what: str | None = None) -> Iterator[None]:
    """Hold ``folder/LOCK`` for the ``with`` body; wait up to ``wait_seconds`` for another run.

    ``flock`` is released by the kernel when its holder dies, even by
    SIGKILL, so a crashed run never leaves anything locked.  The file's text
    (pid, host, start) is only there to tell the waiting user who holds it.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ProvenanceError(f"cannot lock {what or folder} ({folder / LOCK}): {exc.strerror}") from None
    deadline = time.monotonic() + max(0.0, wait_seconds)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another run"
                    raise ProvenanceError(
                        f"{what or folder} is in use by {holder}; wait for it to finish or pass --wait SECONDS"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {started}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


#: Output folders this process holds (their control folder -> depth): the CLI and the flow claim OUT for the
#: whole run, and the write stage inside it claims it again.
_claims: dict[str, int] = {}
_claims_guard = threading.Lock()


def control_dir(out_dir: Path) -> Path:
    """``.OUT.provenance`` beside ``OUT``: its lock and its generations."""
    out = _absolute(out_dir)
    return out.parent / f".{out.name}.provenance"


@contextmanager
def claimed(out_dir: Path, wait_seconds: float = 0.0, *, store_dir: Path | None = None) -> Iterator[None]:
    """Hold ``OUT``'s lock for a run (re-entrant within a process); refuse, in one line, an ``OUT`` it cannot publish.

    A second run on the same ``OUT`` exits at once with who holds it, or
    waits up to ``wait_seconds``.
    """
    out_dir = Path(out_dir)
    check_out(out_dir, store_dir=store_dir)
    control = control_dir(out_dir)
    key = str(control)
    with _claims_guard:
        if _claims.get(key):
            _claims[key] += 1
            held = True
        else:
            held = False
    if held:
        try:
            yield
        finally:
            with _claims_guard:
                _claims[key] -= 1
        return
    try:
        control.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvenanceError(f"cannot write beside output folder {out_dir} ({control}): {exc.strerror}") from None
    with locked(control, wait_seconds, what=f"output folder {out_dir}"):
        with _claims_guard:
            _claims[key] = 1
        try:
            yield
        finally:
            with _claims_guard:
                _claims.pop(key, None)


# ---------------------------------------------------------------------------- generations


#: Generation folders being filled in this process -> the ``OUT`` they will be published at.
_staging: dict[str, Path] = {}


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A new, empty generation folder of ``OUT``; published at ``OUT`` when the body completes, removed if it fails.

    A failed write (a full disk, a read-only file system) becomes one line
    and leaves the previous outputs in force.
    """
    out_dir = Path(out_dir)
    with claimed(out_dir):
        control = control_dir(out_dir)
        sweep(out_dir)
        numbers = [n for n, _ in _generations(control)]
        last = max(numbers) if numbers else 0
        # Older outputs in a real folder at OUT become the generation just before this one (kept as the previous).
        absolute = _absolute(out_dir)
        has_older = absolute.is_dir() and not absolute.is_symlink() and any(absolute.iterdir())
        older = control / f"run-{last + 1:06d}"
        folder = control / f"run-{last + 1 + has_older:06d}"
        try:
            folder.mkdir()
        except OSError as exc:
            raise ProvenanceError(f"cannot write the outputs to {out_dir}: {exc.strerror}") from None
        _staging[_key(folder)] = out_dir
        try:
            yield folder
            fsync_dir(folder)
            publish(out_dir, folder, keep_older_as=older)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise write_error(out_dir, exc) from None
        except ProvenanceError as exc:  # e.g. the report could not be written: nothing of this run is published
            shutil.rmtree(folder, ignore_errors=True)
            if INTACT in str(exc):
                raise
            raise ProvenanceError(f"{exc}; {INTACT}") from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            _staging.pop(_key(folder), None)
        sweep(out_dir)


#: How polars reports a failed write (it raises ``ComputeError``, not ``OSError``): ``underlying IO error: No space
#: left on device (os error 28)``, or ``Invalid thrift: transport error`` when the footer did not fit.
_POLARS_IO = re.compile(r"(?:IO error: .*?\(os error (\d+)\))|transport error")


def is_write_failure(exc: BaseException) -> bool:
    """An ``OSError``, or polars' report of one: the disk's problem, not a bug."""
    return isinstance(exc, OSError) or (isinstance(exc, pl.exceptions.PolarsError) and bool(_POLARS_IO.search(str(exc))))


def write_error(out_dir: Path, exc: BaseException) -> ProvenanceError:
    """The one line for a write that failed (``No space left on device``, ``Read-only file system``)."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    else:
        match = _POLARS_IO.search(str(exc))
        if match and match.group(1):
            reason = os.strerror(int(match.group(1)))
        else:  # polars lost the errno: say what the file system shows
            reason = os.strerror(errno.ENOSPC) if _nearly_full(out_dir) else f"the write failed ({str(exc).splitlines()[0]})"
    return ProvenanceError(f"cannot write the outputs to {out_dir}: {reason}; {INTACT}")


def _nearly_full(path: Path) -> bool:
    """Whether the file system holding ``path`` has under 1 MiB left."""
    folder = _absolute(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize < 1 << 20


def _generations(control: Path) -> list[tuple[int, Path]]:
    if not control.is_dir():
        return []
    found = []
    for path in control.iterdir():
        match = _GENERATION.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.append((int(match.group(1)), path))
    return sorted(found)


def current_generation(out_dir: Path) -> Path | None:
    """The generation folder ``OUT`` points at, if it is one of its own."""
    out_dir = _absolute(out_dir)
    if not out_dir.is_symlink():
        return None
    target = Path(os.path.normpath(out_dir.parent / os.readlink(out_dir)))
    return target if target.parent == control_dir(out_dir) and _GENERATION.fullmatch(target.name) else None


def sweep(out_dir: Path) -> None:
    """Delete what no reader needs: a killed run's folder and temp files, generations before the previous one.

    Kept: the generation ``OUT`` points at, and the newest one before it (a
    reader may still hold the old link).  When ``OUT`` points elsewhere (a
    store's tables) or nowhere, the newest complete generation is kept.
    """
    control = control_dir(out_dir)
    gens = _generations(control)
    current = current_generation(out_dir)
    if current is not None:
        number = int(_GENERATION.fullmatch(current.name).group(1))
        older = [p for n, p in gens if n < number]
        keep = {current, *older[-1:]}
    else:
        complete = [p for _, p in gens if (p / "run.json").is_file()]
        keep = set(complete[-1:])
    for _, path in gens:
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for folder in (control, _absolute(out_dir).parent):
        if folder.is_dir():
            for path in folder.glob(f".{_absolute(out_dir).name}.link.tmp"):
                path.unlink(missing_ok=True)
    for path in control.glob(".*.tmp") if control.is_dir() else ():
        path.unlink(missing_ok=True)


def publish(out_dir: Path, target: Path, *, keep_older_as: Path | None = None) -> None:
    """Point ``out_dir`` (a symlink) at ``target`` atomically: readers see the old files or the new ones.

    An ``out_dir`` that is a real folder (outputs of an older provenance,
    or empty) is first moved into the control folder, so the old outputs
    stay readable as the previous generation until the next run
    (``keep_older_as``, by default the next free generation number).
    """
    out_dir = Path(out_dir)
    absolute = _absolute(out_dir)
    if absolute.is_dir() and not absolute.is_symlink():
        check_publishable(out_dir)
        if any(absolute.iterdir()):
            control = control_dir(out_dir)
            control.mkdir(parents=True, exist_ok=True)
            if keep_older_as is None:
                numbers = [n for n, _ in _generations(control)]
                keep_older_as = control / f"run-{(max(numbers) if numbers else 0) + 1:06d}"
            os.rename(absolute, keep_older_as)
        else:
            absolute.rmdir()
    absolute.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(_absolute(target), absolute.parent)
    tmp = absolute.with_name(f".{absolute.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(relative, tmp)
    os.replace(tmp, absolute)
    fsync_dir(absolute.parent)


def fsync_dir(path: Path) -> None:
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- what OUT may be


def check_publishable(out_dir: Path) -> None:
    """Fail early, with one line, if ``out_dir`` cannot become a link to a run's outputs."""
    out_dir = Path(out_dir)
    if not _absolute(out_dir).name:
        raise ProvenanceError(f"--out {out_dir} is a file system root; pass a folder below it")
    if out_dir.is_symlink() or not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ProvenanceError(f"output path {out_dir} exists and is not a folder")
    foreign = sorted(n for n in os.listdir(out_dir) if n not in OUTPUT_FILES and not _TEMP.fullmatch(n))
    if foreign:
        raise ProvenanceError(
            f"output folder {out_dir} holds files provenance did not write ({foreign[0]}); the output folder "
            "becomes a link to each run's tables: pass a new or empty --out"
        )


def check_out(out_dir: Path, *, store_dir: Path | None = None) -> None:
    """One line for an ``OUT`` a run must not write: a store's link or folder (for a plain run), someone else's link."""
    out_dir = Path(out_dir)
    check_publishable(out_dir)
    absolute = _absolute(out_dir)
    if store_dir is not None:
        # The link itself resolves into the store: only where the link lives counts.
        where = Path(os.path.realpath(absolute.parent)) / absolute.name
        if _is_within(where, Path(os.path.realpath(store_dir))):
            raise ProvenanceError(f"--out {out_dir} is inside --store {store_dir}; pass an --out outside the store")
        return
    for place in (absolute, Path(os.path.realpath(absolute))):
        store = _store_holding(place)
        if store is not None:
            raise ProvenanceError(
                f"--out {out_dir} is {'the published link' if out_dir.is_symlink() else 'a folder'} of the store {store}: "
                f"a run without --store would write into it; pass --store {store} to add to it, or another --out"
            )
    if absolute.is_symlink() and current_generation(out_dir) is None:
        raise ProvenanceError(
            f"--out {out_dir} is a link provenance did not make (to {os.readlink(absolute)}); pass the folder it points to"
        )


def _store_holding(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        if (folder / STORE_MANIFEST).is_file() or ((folder / LOCK).is_file() and (folder / "segments").is_dir()):
            return folder
    return None


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _absolute(path: Path | str) -> Path:
    """``path`` made absolute without following links (``OUT`` itself may be the link)."""
    return Path(os.path.abspath(path))


def _key(path: Path | str) -> str:
    return os.path.abspath(path)
