"""Texts on disk while the middle stages run, so a big corpus fits in memory.

A million news articles are about 3.5 GiB of text, as much again as their
shingle views and signatures together; holding all three at once is what
would push a run past 8 GiB.  Yet the texts are needed only a batch at a time
(pass 2 of ``prepare``), for the members of multi-document clusters
(``trace``, about a fifth of a news crawl) and at the very end (the
``documents`` table).

:class:`TextSpill` writes the text column once to a Parquet file whose row
groups are the prepare batches (LZ4: cheap to write and to read back) and
answers those three kinds of request from it.  Results are identical with and
without a spill; ``PipelineConfig.spill_over_mib`` decides when to use one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from provenance.errors import ProvenanceError


#: Rows of texts a gather reads at once (about 200 MiB of news articles).
GATHER_ROWS = 50_000


@dataclass(frozen=True)
class TextSpill:
    """The texts of a corpus in ``path``, row ``i`` being document row ``i``."""

    path: Path
    n: int
    #: Rows of each row group (a prepare batch); 0 when unknown.
    rows_per_group: int = 0

    def __len__(self) -> int:
        return self.n

    def slice(self, lo: int, length: int) -> pl.Series:
        """Texts of rows ``lo .. lo + length`` (only the row groups holding them are read)."""
        return self.gather(np.arange(lo, min(self.n, lo + length), dtype=np.int64))

    def gather(self, rows: np.ndarray) -> pl.Series:
        """Texts of ``rows`` (ascending), reading the row groups that hold them a window at a time.

        Memory is the result and one window of texts, however far apart the
        rows are (a streaming filter over the whole file held about four
        times the texts it returned).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return pl.Series("text", [], dtype=pl.String)
        if len(rows) > 1 and (np.diff(rows) <= 0).any():
            raise ValueError("TextSpill.gather needs strictly ascending rows")
        first, last = int(rows[0]), int(rows[-1])
        window = self.window()
        parts = []
        for lo in range(first - first % window, last + 1, window):
            a, b = np.searchsorted(rows, [lo, lo + window])
            if a == b:
                continue
            texts = pl.scan_parquet(self.path).slice(lo, window).collect()["text"]
            parts.append(texts if b - a == len(texts) else texts.gather(rows[a:b] - lo))
        return pl.concat(parts) if len(parts) > 1 else parts[0]

    def window(self) -> int:
        """Rows read at once: whole row groups, about :data:`GATHER_ROWS` of them (what a gather holds beyond its result)."""
        group = self.rows_per_group or GATHER_ROWS
        return max(1, GATHER_ROWS // group) * group

    def sparse(self, rows: np.ndarray) -> pl.Series:
        """A full-length text column holding the texts of ``rows`` (ascending) and nulls elsewhere."""
        rows = np.asarray(rows, dtype=np.int64)
        index = pl.DataFrame({"row": rows, "text": self.gather(rows)})
        full = pl.DataFrame({"row": np.arange(self.n, dtype=np.int64)})
        return full.join(index, on="row", how="left", maintain_order="left")["text"]

    def load(self) -> pl.Series:
        """Every text, in row order."""
        return pl.read_parquet(self.path, columns=["text"])["text"]

    def remove(self) -> None:
        """Delete the spill file and its folder."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


@dataclass(frozen=True)
class TextRows:
    """Some rows of a spill, read when a batch runs (small to pass to a task; the texts stay on disk)."""

    spill: TextSpill
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def read(self) -> pl.Series:
        if not self.spill.path.exists():  # e.g. a Dask worker on another machine
            raise ProvenanceError(
                f"texts spilled to {self.spill.path} are not visible here: set PROVENANCE_SPILL_DIR to a folder "
                "every worker can read, or raise --spill-over-mib above the corpus' size"
            )
        return self.spill.gather(self.rows)


def texts_of(texts: pl.Series | TextRows) -> pl.Series:
    """``texts`` itself, or the texts a :class:`TextRows` points at."""
    return texts.read() if isinstance(texts, TextRows) else texts


def spill_texts(texts: pl.Series, rows_per_group: int, folder: Path | None = None) -> TextSpill:
    """Write ``texts`` to a fresh folder (under ``folder``, default the system temp) and return the spill.

    Row groups of ``rows_per_group`` rows: a prepare batch is one row group.
    """
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    where = Path(tempfile.mkdtemp(prefix="provenance-texts-", dir=folder))
    path = where / "texts.parquet"
    pl.DataFrame({"text": texts}).write_parquet(
        path, compression="lz4", row_group_size=max(1, rows_per_group), statistics=False
    )
    return TextSpill(path, len(texts), max(1, rows_per_group))


def text_bytes(texts: pl.Series) -> int:
    """UTF-8 bytes of all texts: what holding them costs."""
    return int(texts.str.len_bytes().sum() or 0)


def default_folder() -> Path | None:
    """``PROVENANCE_SPILL_DIR`` if set (e.g. a fast local disk), else the system temp folder."""
    value = os.environ.get("PROVENANCE_SPILL_DIR")
    return Path(value) if value else None
