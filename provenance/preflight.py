"""Run-level checks made before any work starts: one line for each mistake a user can make.

Paths exist and have a known format, every table has the id and text
columns, the output folder is writable, a store's output can become its link.
Checked up front so that a flow run never starts (and fails with a traceback
in its logs) over a user's typo.  Two more mistakes are refused here:

* an input folder that holds no file (hidden ones aside), without ``--store``:
  a run over it would succeed with empty tables, which is how a wrong path looks.
  With a store an empty input is a run that adds nothing (an hourly
  ``serve`` over a quiet incoming folder);
* ``--out`` (or ``--store``) inside an input folder: the next run would read
  the tables of the last one as input.
"""

from __future__ import annotations

from pathlib import Path

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import TABLE_SUFFIXES, Source, check_outside_inputs, expand_inputs, file_problem, source_paths, table_columns
from provenance.schemas import check_output_dir
from provenance.store.layout import check_publishable


def preflight(source: Source, out_dir: Path | None, config: Config, *, store_dir: Path | None = None) -> None:
    """Raise a one-line :class:`ProvenanceError` for the first run-level problem found."""
    id_column, text_column = config.ingest.id_column, config.ingest.text_column
    inputs = source_paths(source)
    files = expand_inputs(inputs)
    for path, _ in files:
        if path.suffix.lower() in TABLE_SUFFIXES and file_problem(path) is None:  # a FIFO is never opened
            columns = table_columns(path)
            if not columns:
                continue
            for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
                if column not in columns:
                    raise ProvenanceError(
                        f"{path} has no {column!r} column (columns: {', '.join(columns[:12])}); "
                        f"name the right one with {option}"
                    )
    if store_dir is None:
        roots = {root for _, root in files}
        for given in inputs:
            if given.is_dir() and given not in roots:
                raise ProvenanceError(
                    f"input folder {given} holds no file to read (hidden files are ignored): "
                    "pass the folder that holds the documents"
                )
    for flag, target in (("--out", out_dir), ("--store", store_dir)):
        if target is not None and not (Path(target).exists() and not Path(target).is_dir()):  # a file: refused below
            check_outside_inputs(flag, Path(target), inputs)
    if out_dir is None:
        return
    if store_dir is None:
        check_output_dir(Path(out_dir))
        return
    check_publishable(Path(out_dir))
    if Path(store_dir).exists() and not Path(store_dir).is_dir():
        raise ProvenanceError(f"--store {store_dir} exists and is not a folder")
