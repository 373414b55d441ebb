"""Read documents from folders and tables; set aside what cannot be used.

Inputs:

* a folder, searched recursively: every ``.txt`` / ``.md`` file is a document
  (``doc_id`` = path relative to the folder without extension); ``.jsonl`` / ``.csv`` / ``.parquet`` files inside are read
  as tables; hidden files (``.name``) are ignored; any other file is rejected
  with reason ``unsupported_file``;
* a ``.txt`` / ``.md`` file (``doc_id`` = file name without extension);
* a ``.jsonl``, ``.csv`` or ``.parquet`` table with an id and a text column;
  every other column is carried through to ``documents.parquet``;
* a polars ``DataFrame`` (from a notebook), read like a table (``source`` is
  ``dataframe``).

Per-document problems go to the rejects table with a reason; only problems of
the run itself (a missing path, an unknown format, a table without its text
column) raise :class:`ProvenanceError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from provenance.config import Config, IngestOptions
from provenance.errors import ProvenanceError
from provenance.schemas import REJECTS
from provenance.stage_report import StageReport, timed

#: What a run reads: paths (folders, files, tables) or a DataFrame with the id and text columns.
Source = pl.DataFrame | Path | str | list[Path] | list[str]
#: ``source`` of the documents of a DataFrame input.
FRAME_SOURCE = "dataframe"

TEXT_SUFFIXES = (".txt", ".md")
TABLE_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
#: Columns the pipeline owns; an input column of the same name is carried as ``input_<name>``.
RESERVED = ("doc_id", "cluster_id", "is_origin", "parent_id", "depth", "completeness", "source",
            "n_tokens", "n_chars", "content_hash")

#: Hidden column with the file line of a record read by the line-by-line .jsonl parse.
LINE = "__provenance_line"

BASE_SCHEMA = pl.Schema({"doc_id": pl.String, "text": pl.String, "title": pl.String, "source": pl.String})


@dataclass
class Ingested:
    """Accepted documents (``doc_id, text, title, source, *metadata``) and rejects.

    Mutable on purpose: ``pipeline.prepare_stage`` takes the texts out of a
    big corpus once it has written them to disk.
    """

    documents: pl.DataFrame
    rejects: pl.DataFrame
    files: list[str]


def _reject(source: str, doc_id: str | None, reason: str, detail: str = "") -> dict[str, str | None]:
    return {"source": source, "doc_id": doc_id, "reason": reason, "detail": detail}


#: The columns a run reads by role (``published_at``, ``publisher``, ``url``), and the config field naming each.
ROLES = {"published_at": "date_column", "publisher": "publisher_column", "url": "url_column"}


def _mapped_columns(frame: pl.DataFrame, options: IngestOptions) -> pl.DataFrame:
    """The input's date, publisher and url columns under their role names (``--date-column scraped_at``).

    A column already named after a role that another column plays is carried
    as ``input_<role>``, so nothing is dropped or read twice.
    """
    renames: dict[str, str] = {}
    for role, field in ROLES.items():
        column = getattr(options, field)
        if column != role and column in frame.columns:
            if role in frame.columns:
                renames[role] = f"input_{role}"
            renames[column] = role
    return frame.rename(renames) if renames else frame


def _read_text_file(path: Path, doc_id: str, rejects: list[dict]) -> dict[str, str] | None:
    source = str(path)
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        rejects.append(_reject(source, doc_id, "binary_file", "NUL bytes in the first 8 KiB"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        rejects.append(_reject(source, doc_id, "undecodable_bytes", f"not UTF-8 at byte {exc.start}"))
        return None
    return {"doc_id": doc_id, "text": text, "source": source}


def _read_ndjson(path: Path, rejects: list[dict]) -> pl.DataFrame:
    try:
        return pl.read_ndjson(path, infer_schema_length=10_000)
    except Exception:  # noqa: BLE001 - fall back to a line-by-line parse that names the bad lines
        pass
    rows: list[dict] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                rejects.append(_reject(f"{path}:{number}", None, "unreadable_record", str(exc)[:200]))
                continue
            row = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)) for k, v in record.items()}
            rows.append(row | {LINE: number})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _read_table(path: Path, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    return table_documents(_read_table_file(path, rejects), str(path), options, rejects)


def _read_table_file(path: Path, rejects: list[dict]) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            frame = _read_ndjson(path, rejects)
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema_length=10_000, encoding="utf8-lossy")
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProvenanceError(f"cannot read {path}: {message}") from None
    return frame


def table_documents(frame: pl.DataFrame, source: str, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    """Documents (``doc_id, text, title, source, *carried``) of a table read from ``source``; missing ids to ``rejects``.

    ``title`` is the input's title column (``title_column``) where it has one,
    else null: ``provenance.titles`` gives those documents their first line
    that is not furniture once the corpus's boilerplate is known.
    """
    id_column, text_column, title_column = options.id_column, options.text_column, options.title_column
    if frame.height == 0 and not frame.columns:
        return pl.DataFrame(schema=BASE_SCHEMA)
    for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column not in frame.columns:
            raise ProvenanceError(
                f"{source} has no {column!r} column (columns: {', '.join(frame.columns[:12])}); "
                f"name the right one with {option}"
            )
    renames = {c: f"input_{c}" for c in frame.columns if c in RESERVED}
    frame = _mapped_columns(frame.rename(renames), options)
    id_name = renames.get(id_column, id_column)
    text_name = renames.get(text_column, text_column)
    # Row number, or the file line when the line-by-line parse skipped bad lines.
    line = pl.col(LINE) if LINE in frame.columns else pl.int_range(1, pl.len() + 1)
    frame = frame.with_columns(
        pl.col(id_name).cast(pl.String).str.strip_chars().alias("doc_id"),
        pl.col(text_name).cast(pl.String).alias("__text"),
        (pl.lit(source + ":") + line.cast(pl.String)).alias("__where"),
    )
    missing = frame.select(pl.col("doc_id").is_null() | (pl.col("doc_id") == ""))["doc_id"]
    if missing.any():  # filter (a copy of every text) only when something is missing
        where = frame.select("__where").filter(missing)["__where"].to_list()
        rejects.extend(_reject(w, None, "missing_id", f"empty {id_column!r}") for w in where)
        frame = frame.filter(~missing)
    title_name = renames.get(title_column, title_column)
    has_title = title_name in frame.columns and title_name not in (id_name, text_name) and frame.schema[title_name] == pl.String
    if "title" in frame.columns and (title_name != "title" or not has_title):  # another column plays the title: carry this one aside
        frame = frame.rename({"title": "input_title"})
    title = pl.col(title_name).str.strip_chars() if has_title else pl.lit(None, pl.String)
    title = pl.when(title != "").then(title.str.slice(0, 300))
    dropped = {"doc_id", "__text", "__where", id_name, text_name, LINE, title_name if has_title else "__no_title"}
    carried = [c for c in frame.columns if c not in dropped]
    return frame.select(
        "doc_id",
        pl.col("__text").alias("text"),
        title.alias("title"),
        pl.lit(source).alias("source"),
        *carried,
    )


def expand_inputs(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """``(file, root)`` pairs in a stable order; run-level errors for bad paths."""
    found: list[tuple[Path, Path]] = []
    for given in inputs:
        if not given.exists():
            raise ProvenanceError(f"input path {given} does not exist")
        if given.is_dir():
            for path in sorted(given.rglob("*")):
                rel = path.relative_to(given)
                if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                    found.append((path, given))
        elif given.suffix.lower() in TEXT_SUFFIXES + TABLE_SUFFIXES:
            found.append((given, given.parent))
        else:
            raise ProvenanceError(
                f"unknown input format {given.suffix or '(no extension)'!r} for {given}: "
                f"pass a folder, {', '.join(TEXT_SUFFIXES)} files or {', '.join(TABLE_SUFFIXES)} tables"
            )
    return found


def source_paths(source: Source) -> list[Path]:
    """The input paths of ``source`` (none for a DataFrame)."""
    if isinstance(source, pl.DataFrame):
        return []
    return [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]


def ingest(source: Source, options: IngestOptions) -> Ingested:
    """Read every input into one documents frame plus a rejects frame.

    Of several documents with one id the first read (inputs in the order
    given, folder files sorted by path) is kept and the others are rejected
    as ``duplicate_id``; the kept documents come out sorted by ``doc_id``.
    """
    rejects: list[dict] = []
    if isinstance(source, pl.DataFrame):
        files: list[tuple[Path, Path]] = []
        frames = [table_documents(source, FRAME_SOURCE, options, rejects)]
    else:
        inputs = source_paths(source)
        if not inputs:
            raise ProvenanceError("no input given: pass a folder or files")
        files = expand_inputs(inputs)
        frames = _read_files(files, options, rejects)
    frames = [f for f in frames if f.height]
    documents = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=BASE_SCHEMA)
    documents = documents.with_columns(pl.col("text").fill_null(""))
    base = ["doc_id", "text", "title", "source"]
    documents = _screen(documents.select(base + [c for c in documents.columns if c not in base]), options.max_chars, rejects)
    # Canonical row order (by doc_id): results must not depend on file order,
    # and an incremental run must see its corpus in the order a full run would.
    if documents.height > 1 and not documents["doc_id"].is_sorted():
        documents = documents.sort("doc_id", maintain_order=True)
    rejects_frame = pl.DataFrame(rejects, schema=REJECTS) if rejects else pl.DataFrame(schema=REJECTS)
    return Ingested(documents=documents, rejects=rejects_frame, files=[str(p) for p, _ in files])


def _read_files(files: list[tuple[Path, Path]], options: IngestOptions, rejects: list[dict]) -> list[pl.DataFrame]:
    """Document frames of every file: runs of text files become one frame each, every table its own."""
    text_rows: list[dict] = []
    frames: list[pl.DataFrame] = []

    def flush_text_rows() -> None:
        if text_rows:
            frames.append(
                pl.DataFrame(text_rows, schema={"doc_id": pl.String, "text": pl.String, "source": pl.String})
                .with_columns(pl.lit(None, pl.String).alias("title"))
            )
            text_rows.clear()

    for path, root in files:
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            doc_id = path.relative_to(root).with_suffix("").as_posix()
            try:
                row = _read_text_file(path, doc_id, rejects)
            except OSError as exc:
                rejects.append(_reject(str(path), doc_id, "unreadable_record", exc.strerror or str(exc)))
                continue
            if row is not None:
                text_rows.append(row)
        elif suffix in TABLE_SUFFIXES:
            flush_text_rows()
            frames.append(_read_table(path, options, rejects))
        else:
            rejects.append(_reject(str(path), None, "unsupported_file", f"not one of {TEXT_SUFFIXES + TABLE_SUFFIXES}"))
    flush_text_rows()
    return frames


def _screen(documents: pl.DataFrame, max_chars: int, rejects: list[dict]) -> pl.DataFrame:
    """``documents`` without repeated ids, empty texts and too large ones (those go to ``rejects``)."""
    # Reasons are computed as one small column (no copy of the texts: a
    # million news articles are gigabytes), and the frame is filtered only if
    # something is rejected.
    reason = documents.select(
        pl.when(~pl.col("doc_id").is_first_distinct()).then(pl.lit("duplicate_id"))
        .when(~pl.col("text").str.contains(r"\S")).then(pl.lit("empty_text"))
        .when(pl.col("text").str.len_chars() > max_chars).then(pl.lit("too_large"))
        .alias("reason")
    )["reason"]
    if reason.null_count() == len(reason):
        return documents
    bad = documents.select("source", "doc_id").with_columns(reason).filter(pl.col("reason").is_not_null())
    details = {
        "duplicate_id": "an earlier document has this id",
        "empty_text": "text is empty or white space",
        "too_large": f"more than {max_chars} characters",
    }
    rejects.extend(
        _reject(src, did, r, details[r])
        for src, did, r in zip(bad["source"].to_list(), bad["doc_id"].to_list(), bad["reason"].to_list())
    )
    return documents.filter(reason.is_null())


def ingest_stage(source: Source, config: Config) -> tuple[Ingested, StageReport]:
    """Read the inputs; per-document problems become rejects."""
    report = StageReport("ingest")
    with timed(report):
        result = ingest(source, config.ingest)
        report.rows_in = result.documents.height + result.rejects.height
        report.rows_out = result.documents.height
        report.stats = {"files": len(result.files), "rejected": result.rejects.height}
    return result, report


def table_columns(path: Path) -> list[str] | None:
    """Column names of a table, read cheaply (schema or first record), or None if unreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return list(pl.read_parquet_schema(path).keys())
        if suffix == ".csv":
            return pl.read_csv(path, n_rows=1, encoding="utf8-lossy").columns
        with path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    record = json.loads(raw.decode("utf-8", errors="replace"))
                    return list(record) if isinstance(record, dict) else None
        return []
    except Exception:  # noqa: BLE001 - the full read reports the precise problem
        return None
