"""Run-level checks made before any work starts: one line for each mistake a user can make.

Paths exist and have a known format, every table has the id and text
columns, the output folder is writable, a store's output can become its link.
Checked up front so that a flow run never starts (and fails with a traceback
in its logs) over a user's typo.
"""

from __future__ import annotations

from pathlib import Path

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import TABLE_SUFFIXES, Source, expand_inputs, source_paths, table_columns
from provenance.schemas import check_output_dir
from provenance.store.layout import check_publishable


def preflight(source: Source, out_dir: Path | None, config: Config, *, store_dir: Path | None = None) -> None:
    """Raise a one-line :class:`ProvenanceError` for the first run-level problem found."""
    id_column, text_column = config.ingest.id_column, config.ingest.text_column
    for path, _ in expand_inputs(source_paths(source)):
        if path.suffix.lower() in TABLE_SUFFIXES:
            columns = table_columns(path)
            if not columns:
                continue
            for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
                if column not in columns:
                    raise ProvenanceError(
                        f"{path} has no {column!r} column (columns: {', '.join(columns[:12])}); "
                        f"name the right one with {option}"
                    )
    if out_dir is None:
        return
    if store_dir is None:
        check_output_dir(Path(out_dir))
        return
    check_publishable(Path(out_dir))
    if Path(store_dir).exists() and not Path(store_dir).is_dir():
        raise ProvenanceError(f"--store {store_dir} exists and is not a folder")
