"""The units of many documents on disk, aligned pair by pair two groups at a time: evidence in bounded memory.

The evidence of copying (``link.evidence``) needs the :class:`~provenance.link.units.Units`
of both documents of every verified pair.  On a million news-length texts
whose sentences recur, pairs touch about two thirds of the corpus and their
units are 4.2 GiB, on top of the shingle sets; held at once, they made link
the run's peak.

:class:`UnitGroups` instead writes each batch's units to a folder as soon as
it is built (raw arrays, one file per field per batch) and cuts the batches,
in row order, into *groups* of about ``budget`` bytes.  A pair's rows lie in
groups ``i <= j``; the pairs are taken block by block, ``(i, i), (i, i+1), ...,
(i, K)``, with group ``i`` read once into the front of a buffer and each
group ``j`` read after it in turn, so memory holds two groups, however big the
corpus.  Reading a group is a sequential read (the OS page cache usually
holds it): ``K`` groups cost ``K (K + 1) / 2`` group reads in all.

A pair's evidence depends on the two documents' units alone, and a
document's units are the same whichever batch or group they are read in, so
the evidence is exactly what one :class:`Units` of every document gives
(``tests/test_unit_groups.py``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from provenance.link.units import FIELDS, OFFSET_COUNTS, Units, axis_lengths, concat_units, field_axis, subset_units

@dataclass(frozen=True)
class BatchFiles:
    """What one written batch holds: its axes' lengths, its bytes on disk and its fields' dtypes (names)."""

    sizes: dict[str, int]
    nbytes: int
    dtypes: dict[str, str]


def write_batch(folder: Path, k: int, part: Units) -> BatchFiles:
    """Write ``part`` as batch ``k`` under ``folder`` (a raw file per field), then drop its arrays from ``part``.

    A worker may write a batch (``link_on_parts``): only this small record goes back to the client.
    """
    nbytes = 0
    for name in FIELDS:
        array = getattr(part, name)
        stored = array[1:] if name in OFFSET_COUNTS else array
        stored.tofile(folder / f"{k}.{name}")
        nbytes += stored.nbytes
    written = BatchFiles(axis_lengths(part), nbytes, {name: getattr(part, name).dtype.str for name in FIELDS})
    for name in FIELDS:
        setattr(part, name, None)
    return written


@dataclass(frozen=True)
class Block:
    """The pairs of groups ``i <= j``: their positions in the caller's pair order, and their documents' positions
    in a :class:`Units` of group ``i`` then (when another) group ``j``."""

    i: int
    j: int
    pairs: np.ndarray
    x: np.ndarray
    y: np.ndarray


class UnitGroups:
    """Units of consecutive batches of documents, on disk under a fresh folder, read back two groups at a time.

    ``add`` the batches in document order, then :meth:`blocks` gives the
    pairs' evidence and :meth:`subset` the units of chosen documents.  Call
    :meth:`remove` when done (a ``with`` block does).
    """

    def __init__(self, budget: int, folder: Path | None = None) -> None:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="provenance-units-", dir=folder))
        self.budget = budget
        self.batches: list[BatchFiles] = []
        self.dtypes: dict[str, np.dtype] = {}

    def __enter__(self) -> UnitGroups:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, part: Units) -> None:
        """Write the next batch's units (documents after the previous batches'), then drop them from ``part``."""
        self.adopt(write_batch(self.folder, len(self.batches), part))

    def adopt(self, batch: BatchFiles) -> None:
        """Count in the next batch, written as number ``len(self.batches)`` (by :meth:`add`, or by a worker)."""
        for name, dtype in batch.dtypes.items():
            self.dtypes.setdefault(name, np.dtype(dtype))
            if np.dtype(dtype) != self.dtypes[name]:
                raise TypeError(f"UnitGroups.adopt: field {name} is {dtype}, earlier batches {self.dtypes[name]}")
        self.batches.append(batch)

    def groups(self) -> list[range]:
        """Consecutive batches of at most ``budget`` bytes together (a batch alone may be more)."""
        cut: list[range] = []
        first, held = 0, 0
        for k, batch in enumerate(self.batches):
            if k > first and held + batch.nbytes > self.budget:
                cut.append(range(first, k))
                first, held = k, 0
            held += batch.nbytes
        if first < len(self.batches):
            cut.append(range(first, len(self.batches)))
        return cut

    def _total(self, batches: range) -> dict[str, int]:
        return {axis: sum(self.batches[k].sizes[axis] for k in batches) for axis in ("docs", "units", "postings", "tokens", "stems")}

    def _buffers(self, capacity: dict[str, int]) -> dict[str, np.ndarray]:
        """Room for ``capacity`` of each axis (pages are only taken as they are read into); offsets start at 0."""
        buffers = {name: np.empty(capacity[field_axis(name)] + (1 if name in OFFSET_COUNTS else 0), dtype=self.dtypes[name]) for name in FIELDS}
        for name in OFFSET_COUNTS:
            buffers[name][0] = 0
        return buffers

    def _read(self, buffers: dict[str, np.ndarray], batches: range, at: dict[str, int]) -> dict[str, int]:
        """Read ``batches`` into ``buffers`` after ``at`` (the axes' lengths already there); return the new lengths."""
        at = dict(at)
        for k in batches:
            sizes = self.batches[k].sizes
            for name in FIELDS:
                lo = at[field_axis(name)] + (1 if name in OFFSET_COUNTS else 0)
                target = buffers[name][lo : lo + sizes[field_axis(name)]]
                with open(self.folder / f"{k}.{name}", "rb") as f:
                    f.readinto(memoryview(target).cast("B"))
                if name in OFFSET_COUNTS:
                    target += at[OFFSET_COUNTS[name]]
            for axis in at:
                at[axis] += sizes[axis]
        return at

    @staticmethod
    def _view(buffers: dict[str, np.ndarray], lengths: dict[str, int]) -> Units:
        return Units(**{name: buffers[name][: lengths[field_axis(name)] + (1 if name in OFFSET_COUNTS else 0)] for name in FIELDS})

    def _empty(self) -> dict[str, int]:
        return {"docs": 0, "units": 0, "postings": 0, "tokens": 0, "stems": 0}

    def group_starts(self) -> np.ndarray:
        """The first document of each group, and the number of documents after the last."""
        return np.cumsum([0] + [self._total(g)["docs"] for g in self.groups()]).astype(np.int64)

    def block_list(self, a: np.ndarray, b: np.ndarray) -> list[Block]:
        """The pairs ``a[k], b[k]`` (positions among all documents added) cut into :class:`Block` s, in ``(i, j)`` order."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if len(a) == 0:
            return []
        starts = self.group_starts()
        docs = np.diff(starts)
        ga, gb = np.searchsorted(starts, a, side="right") - 1, np.searchsorted(starts, b, side="right") - 1
        gi, gj = np.minimum(ga, gb), np.maximum(ga, gb)
        order = np.lexsort((gj, gi))
        cuts = np.flatnonzero((np.diff(gi[order]) != 0) | (np.diff(gj[order]) != 0)) + 1
        out = []
        for run in np.split(order, cuts):
            i, j = int(gi[run[0]]), int(gj[run[0]])
            # Group i's documents come first, then group j's (when another).
            shift = np.where(np.stack([ga[run], gb[run]]) == i, starts[i], starts[j] - docs[i])
            out.append(Block(i, j, run, a[run] - shift[0], b[run] - shift[1]))
        return out

    def blocks(self, a: np.ndarray, b: np.ndarray, columns: int,
               evidence: Callable[[Units, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """``evidence(units, x, y)`` of every pair of documents ``a[k], b[k]`` (positions among all added), in pair order.

        ``evidence`` returns ``columns`` values per pair from the pair's two
        documents alone, whatever else ``units`` holds.  Group ``i`` stays in
        the buffers' front while the groups after it are read in turn.
        """
        blocks = self.block_list(a, b)
        out = np.zeros((len(a), columns))
        if not blocks:
            return out
        groups = self.groups()
        totals = [self._total(g) for g in groups]
        buffers = self._buffers({axis: 2 * max(t[axis] for t in totals) for axis in totals[0]})
        front, front_lengths = -1, self._empty()
        for block in blocks:
            if block.i != front:
                front, front_lengths = block.i, self._read(buffers, groups[block.i], self._empty())
            lengths = front_lengths if block.j == block.i else self._read(buffers, groups[block.j], front_lengths)
            out[block.pairs] = evidence(self._view(buffers, lengths), block.x, block.y)
        return out

    def read_groups(self, i: int, j: int) -> Units:
        """The :class:`Units` of group ``i``, then of group ``j`` when another: what a :class:`Block` ``(i, j)`` indexes."""
        groups = self.groups()
        wanted = [groups[i]] if i == j else [groups[i], groups[j]]
        totals = [self._total(g) for g in wanted]
        buffers = self._buffers({axis: sum(t[axis] for t in totals) for axis in totals[0]})
        lengths = self._empty()
        for g in wanted:
            lengths = self._read(buffers, g, lengths)
        return self._view(buffers, lengths)

    def subset(self, docs: np.ndarray) -> Units:
        """The :class:`Units` of documents ``docs`` (ascending positions among all added), read group by group."""
        docs = np.asarray(docs, dtype=np.int64)
        parts: list[Units] = []
        first = 0
        for g in self.groups():
            total = self._total(g)
            lo, hi = np.searchsorted(docs, [first, first + total["docs"]])
            if hi > lo:
                buffers = self._buffers(total)
                lengths = self._read(buffers, g, self._empty())
                parts.append(subset_units(self._view(buffers, lengths), docs[lo:hi] - first))
                del buffers
            first += total["docs"]
        if not parts:  # no document: empty arrays of the batches' dtypes
            return Units(**{name: np.zeros(1 if name in OFFSET_COUNTS else 0, dtype=self.dtypes[name]) for name in FIELDS})
        return concat_units(parts)
