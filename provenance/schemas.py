"""The Parquet output contract: table schemas and atomic writes.

These names and types are a public contract (README, "Output contract"): users
join their own tables on them and query them with polars or DuckDB.  Add
columns at the end; never rename or retype one.  Every writer goes through
:func:`write_table`, which casts to the contract and writes atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from provenance.errors import ProvenanceError

#: Core columns of ``documents.parquet``; carried input metadata follows them.
DOCUMENTS = pl.Schema(
    {
        "doc_id": pl.String,
        "cluster_id": pl.String,
        "is_origin": pl.Boolean,
        "parent_id": pl.String,
        "depth": pl.Int32,
        "completeness": pl.Float64,
        "title": pl.String,
        "source": pl.String,
        "n_tokens": pl.Int32,
        "n_chars": pl.Int32,
        "content_hash": pl.String,
        "text": pl.String,
    }
)

CLUSTERS = pl.Schema(
    {
        "cluster_id": pl.String,
        "size": pl.Int32,
        "origin_id": pl.String,
        "origin_title": pl.String,
        "max_depth": pl.Int32,
        "n_exact_duplicates": pl.Int32,
        "mean_confidence": pl.Float64,
        "share_spun": pl.Float64,
        "share_truncated": pl.Float64,
    }
)

EDGES = pl.Schema(
    {
        "cluster_id": pl.String,
        "parent_id": pl.String,
        "child_id": pl.String,
        "confidence": pl.Float64,
        "similarity": pl.Float64,
        "change_kind": pl.String,
        "parent_tokens": pl.Int32,
        "child_tokens": pl.Int32,
        "kept": pl.Int32,
        "inserted": pl.Int32,
        "deleted": pl.Int32,
        "substituted": pl.Int32,
        "jaccard": pl.Float64,
        "containment_child_in_parent": pl.Float64,
        "containment_parent_in_child": pl.Float64,
        "is_truncation": pl.Boolean,
        "spin_rate": pl.Float64,
        "boilerplate_lines_added": pl.Int32,
        "sentences_reordered": pl.Int32,
        "substitution_examples": pl.List(pl.String),
        "copy_confidence": pl.Float64,
        "parent_confidence": pl.Float64,
        "rewritten": pl.Int32,
        "evidence_tokens": pl.Int32,
        "passages": pl.Int32,
    }
)

#: One row per aligned passage of every tree edge: the evidence that the child copied the parent's text.
EVIDENCE = pl.Schema(
    {
        "cluster_id": pl.String,
        "parent_id": pl.String,
        "child_id": pl.String,
        "parent_start": pl.Int32,
        "parent_end": pl.Int32,
        "child_start": pl.Int32,
        "child_end": pl.Int32,
        "tokens": pl.Int32,
        "similarity": pl.Float64,
        "kind": pl.String,
    }
)
#: ``evidence.kind``: how the passage's sentences match.
PASSAGE_KINDS = ("verbatim", "spun", "rewritten")

REJECTS = pl.Schema(
    {
        "source": pl.String,
        "doc_id": pl.String,
        "reason": pl.String,
        "detail": pl.String,
    }
)

#: Store runs only (``--store``): what happened to cluster ids, run by run.
CLUSTER_HISTORY = pl.Schema(
    {
        "generation": pl.Int32,
        "event": pl.String,
        "cluster_id": pl.String,
        "other_cluster_id": pl.String,
        "origin_id": pl.String,
        "size": pl.Int32,
    }
)

#: Store runs only: every version of every document; superseded versions keep their text.
DOCUMENT_VERSIONS = pl.Schema(
    {
        "doc_id": pl.String,
        "version": pl.Int32,
        "content_hash": pl.String,
        "fingerprint": pl.String,
        "first_generation": pl.Int32,
        "superseded_generation": pl.Int32,
        "cluster_id": pl.String,
        "text": pl.String,
    }
)

#: Reasons a document is set aside (``rejects.reason``).
REJECT_REASONS = (
    "empty_text",
    "undecodable_bytes",
    "binary_file",
    "duplicate_id",
    "missing_id",
    "too_short",
    "too_large",
    "unreadable_record",
    "unsupported_file",
    "text_not_string",
    "id_not_scalar",
    "not_a_regular_file",
    "dangling_symlink",
    "unreadable_file",
)

TABLES: Mapping[str, pl.Schema] = {
    "documents": DOCUMENTS,
    "clusters": CLUSTERS,
    "edges": EDGES,
    "rejects": REJECTS,
    "evidence": EVIDENCE,
}

#: Tables only runs with a store write.
STORE_TABLES: Mapping[str, pl.Schema] = {
    "cluster_history": CLUSTER_HISTORY,
    "document_versions": DOCUMENT_VERSIONS,
}


def empty(schema: pl.Schema) -> pl.DataFrame:
    """An empty frame with the contract's columns."""
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: pl.Schema, *, keep_extra: bool = False) -> pl.DataFrame:
    """Order and cast ``frame``'s columns to ``schema``.

    Missing contract columns are a bug in the pipeline, not a user error, so
    they raise ``KeyError``.  With ``keep_extra`` the remaining columns (carried
    input metadata) follow the contract's, in their original order.
    """
    missing = [name for name in schema.names() if name not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks contract columns {missing}")
    core = [pl.col(name).cast(dtype) for name, dtype in schema.items()]
    extra = [c for c in frame.columns if c not in schema] if keep_extra else []
    return frame.select(core + [pl.col(c) for c in extra])


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


ROW_GROUP_ROWS = 16_384


def _readable(path: str) -> None:
    """Give a temp file the mode a plain ``open`` would (``mkstemp`` makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_parquet_atomic(frame: pl.DataFrame, path: Path, *, compression: str = "zstd", statistics: bool = True) -> None:
    """Write ``frame`` to ``path`` via a temp file in the same folder + rename.

    ``os.replace`` is atomic on POSIX within one file system, so a reader (or a
    crash) sees either the old file or the new one, never half a table.
    """
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        # Row groups of 16k rows let readers skip data by statistics and keep
        # memory bounded when they scan a column of a large table.
        frame.write_parquet(tmp, compression=compression, statistics=statistics, row_group_size=ROW_GROUP_ROWS)
        _readable(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    fd, tmp = _atomic_target(path)
    try:
        _readable(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_table(frame: pl.DataFrame, name: str, out_dir: Path) -> Path:
    """Conform ``frame`` to table ``name``'s contract and write it atomically."""
    schema = {**TABLES, **STORE_TABLES}[name]
    path = out_dir / f"{name}.parquet"
    write_parquet_atomic(conform(frame, schema, keep_extra=(name == "documents")), path)
    return path


def check_output_dir(out_dir: Path) -> None:
    """Fail early, with one line, if ``out_dir`` cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():  # before mkdir, which would only say "File exists"
        raise ProvenanceError(f"output path {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvenanceError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ProvenanceError(f"output folder {out_dir} is not writable")
