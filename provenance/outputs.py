"""A run's outputs as one unit: the tables in the contract's dtypes, ``run.json``, and how they are written.

:class:`RunResult` is what every run returns (``provenance.run`` in a
notebook, the CLI, the flow, the store): the four tables, cast and ordered to
the Parquet contract (``schemas``), and the ``run.json`` record.
:func:`write_tables` writes them into a folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from provenance import schemas
from provenance.stage_report import StageReport, timed
from provenance.tables import Traced


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
        """Write the five tables and ``run.json`` to ``out_dir``, each atomically; returns their paths."""
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


def write_tables(result: RunResult, out_dir: Path) -> tuple[dict[str, str], StageReport]:
    """The write stage of a fresh run: tables then ``run.json`` (which records this stage too)."""
    report = StageReport("write", rows_in=result.documents.height)
    with timed(report):
        paths = {name: str(schemas.write_table(frame, name, out_dir)) for name, frame in result.frames().items()}
        report.rows_out = result.documents.height
    result.info = {**result.info, "outputs": dict(paths)}
    result.info.setdefault("stages", {})[report.name] = report.to_dict()
    schemas.write_json_atomic(result.info, out_dir / "run.json")
    result.out_dir = out_dir
    return paths | {"run": str(out_dir / "run.json")}, report


