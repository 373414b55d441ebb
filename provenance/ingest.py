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
column) raise :class:`ProvenanceError`.  Every input document ends in exactly
one of the two: a folder entry that is no regular file (a FIFO, a socket, a
link to a folder) is ``not_a_regular_file``, a link to nothing is
``dangling_symlink`` and a file or folder that cannot be read is
``unreadable_file``; none is opened, so a FIFO never blocks a run.  A table's
text must be a string (``text_not_string``: a JSON list, object, number) and its
id a scalar (``id_not_scalar``); bytes that are not UTF-8, in a text file, a
CSV row or a Parquet Binary column, are ``undecodable_bytes``, never read
lossily.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np
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
#: Hidden columns a reader sets per row: what the text is when not a string (``list``, ``object``...),
#: what the id is when not a scalar, and the column holding bytes that are not UTF-8.
TEXT_KIND = "__provenance_text_kind"
ID_KIND = "__provenance_id_kind"
UNDECODABLE = "__provenance_undecodable"
HIDDEN = (LINE, TEXT_KIND, ID_KIND, UNDECODABLE)

#: UTF-8 takes at most 4 bytes a character: a text file longer than this many bytes per ``max_chars``
#: character is ``too_large`` whatever it holds, so it is rejected from its size, unread.
MAX_BYTES_PER_CHAR = 4
#: A .jsonl line the line-by-line parse reads at most, per ``max_chars`` character: JSON escapes
#: (``\uXXXX\uXXXX`` for a character outside the BMP) take at most 12 bytes, plus room for metadata.
MAX_LINE_BYTES_PER_CHAR = 12
MAX_LINE_SLACK = 1 << 20
#: Byte order marks of the Unicode encodings a text file may declare (UTF-32 first: its LE mark starts with UTF-16's).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig"))

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


def file_problem(path: Path) -> tuple[str, str] | None:
    """Why ``path`` cannot be read as a file (``reason``, ``detail``), or None; never opens it.

    Checked before any read, so a FIFO (whose open blocks until a writer comes)
    or a device is set aside instead of hanging or flooding the run.
    """
    try:
        link = os.lstat(path)
    except OSError as exc:
        return "unreadable_file", exc.strerror or type(exc).__name__
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "dangling_symlink", f"links to {os.readlink(path)}, which does not exist"
    except OSError as exc:
        return ("dangling_symlink" if stat.S_ISLNK(link.st_mode) else "unreadable_file"), exc.strerror or type(exc).__name__
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        if stat.S_ISLNK(link.st_mode):
            return "not_a_regular_file", "a link to a folder (links to folders are not followed)"
        return "unreadable_file", "a folder that cannot be listed"
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        return "not_a_regular_file", kind
    if not os.access(path, os.R_OK):
        return "unreadable_file", "permission denied"
    return None


def _read_text_file(path: Path, doc_id: str, max_chars: int, rejects: list[dict]) -> dict[str, str] | None:
    """One text file as a document, or None with its reject; a file too big to be one is never read."""
    source = str(path)
    size = path.stat().st_size
    if size > MAX_BYTES_PER_CHAR * max_chars + len(codecs.BOM_UTF32_LE):
        rejects.append(_reject(source, doc_id, "too_large", f"{size} bytes: more than {max_chars} characters"))
        return None
    data = path.read_bytes()
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), "utf-8")
    if encoding in ("utf-8", "utf-8-sig") and b"\x00" in data[:8192]:
        rejects.append(_reject(source, doc_id, "binary_file", "NUL bytes in the first 8 KiB"))
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding == "utf-8" else encoding.upper()
        rejects.append(_reject(source, doc_id, "undecodable_bytes", f"not {name} at byte {exc.start}"))
        return None
    if encoding not in ("utf-8", "utf-8-sig"):
        # Any bytes after FF FE decode as UTF-16 (ASCII pairs become CJK
        # ideographs): text has white space, bytes that merely start like it none.
        text = text.removeprefix("\ufeff")
        head = text[:8192]
        if "\x00" in head or not any(c.isspace() for c in head):
            rejects.append(_reject(source, doc_id, "undecodable_bytes", f"starts with a {encoding.upper()} byte order mark but is no {encoding.upper()} text"))
            return None
    return {"doc_id": doc_id, "text": text, "source": source}


def _json_key(name: str) -> str:
    """A regex matching the JSON key ``name`` and its colon (``"text"\\s*:\\s*``)."""
    return re.escape(json.dumps(name)) + r"\s*:\s*"


_JSON_LITERAL = r"^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|\[\]|\{\})$"


#: What a JSON value is, in a user's words, when it is not a string.
PYTHON_KINDS = {list: "a list", dict: "an object", bool: "a boolean", int: "a number", float: "a number"}
#: Placeholder kind of a value whose JSON text alone cannot tell (``42`` or ``"42"``): the line is parsed again.
UNSURE = "?"


def _json_kind(value: pl.Expr, key: str, scalars: bool) -> pl.Expr:
    """What the top-level ``key`` of each JSON line in ``value`` holds when it is not a string (``a list``,
    ``an object``, unless ``scalars`` are allowed ``a number``/``a boolean``), null for a string, or ``UNSURE``.

    ``json_path_match`` gives a string's value unquoted and any other value as
    its JSON text, so a non-empty list or object is told by its members
    (``$.key.*``); a value reading ``[]``, ``{}``, ``42`` or ``true`` may be
    that string or that literal, which only the line itself can tell.
    """
    path = f"$.{key}" if key.isidentifier() else f"$[{json.dumps(key)}]"
    raw, members = value.str.json_path_match(path), value.str.json_path_match(path + ".*")
    first = raw.str.slice(0, 1)
    unsure = raw.is_in(["[]", "{}"]) if scalars else raw.str.contains(_JSON_LITERAL)
    return (pl.when(members.is_not_null() & (first == "[")).then(pl.lit("a list"))
            .when(members.is_not_null() & (first == "{")).then(pl.lit("an object"))
            .when(unsure).then(pl.lit(UNSURE)))


def _python_kind(record: object, key: str, scalars: bool) -> str | None:
    """``_json_kind`` of one parsed record, exactly."""
    value = record.get(key) if isinstance(record, dict) else None
    if value is None or isinstance(value, str) or (scalars and not isinstance(value, (list, dict))):
        return None
    return PYTHON_KINDS.get(type(value), "a " + type(value).__name__)


def _jsonl_kinds(lines: pl.LazyFrame, height: int, options: IngestOptions) -> pl.DataFrame | None:
    """Per record of a .jsonl read by polars: the ``TEXT_KIND`` and ``ID_KIND`` columns (None if the lines do not line up).

    Polars reads a list or object in a string column as its JSON text
    (``["a", "b"]``), so the record's own line says what it held.  A cheap
    regex finds the few lines whose text or id key is followed by something
    other than a string; only those are looked at again, and only those whose
    whole text reads as one JSON literal are parsed in Python.
    """
    text_key, id_key = options.text_column, options.id_column
    suspect = (pl.col("line").str.contains(_json_key(text_key) + r"[\[{\-0-9tf]")
               | pl.col("line").str.contains(_json_key(id_key) + r"[\[{]"))
    records = lines.filter(pl.col("line").str.strip_chars() != "").with_row_index("record")
    found = pl.collect_all([records.select(pl.len()), records.filter(suspect).select("record", "line")])
    if found[0].item() != height:
        return None
    odd = found[1].select(
        "record", "line",
        _json_kind(pl.col("line"), text_key, scalars=False).alias(TEXT_KIND),
        _json_kind(pl.col("line"), id_key, scalars=True).alias(ID_KIND),
    ).filter(pl.col(TEXT_KIND).is_not_null() | pl.col(ID_KIND).is_not_null())
    unsure = ((pl.col(TEXT_KIND) == UNSURE) | (pl.col(ID_KIND) == UNSURE)).fill_null(False)
    if odd.select(unsure.any()).item():
        parsed = [json.loads(line) for line in odd.filter(unsure)["line"]]  # rows whose text is exactly "42", "[]"...
        exact = pl.DataFrame({
            TEXT_KIND: [_python_kind(r, text_key, scalars=False) for r in parsed],
            ID_KIND: [_python_kind(r, id_key, scalars=True) for r in parsed],
        }, schema={TEXT_KIND: pl.String, ID_KIND: pl.String})
        odd = pl.concat([odd.filter(~unsure), pl.concat([odd.filter(unsure).select("record", "line"), exact], how="horizontal")])
    kinds = pl.DataFrame({"record": pl.int_range(0, height, eager=True, dtype=pl.UInt32)})
    return kinds.join(odd.drop("line"), on="record", how="left").sort("record").drop("record")


def _read_ndjson(path: Path, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    """A .jsonl file: read by polars when every line parses, else line by line (naming each bad line)."""
    with path.open("rb") as fh:
        has_bom = fh.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    data: Path | bytes = path.read_bytes()[len(codecs.BOM_UTF8):] if has_bom else path  # polars reads no BOM
    try:
        frame = pl.read_ndjson(data, infer_schema_length=10_000)
        kinds = _jsonl_kinds(pl.scan_lines(data, glob=False), frame.height, options) if frame.height else None
    except Exception:  # noqa: BLE001 - fall back to a line-by-line parse that names the bad lines
        frame, kinds = None, None
    if frame is not None and (kinds is not None or frame.height == 0):
        return pl.concat([frame, kinds], how="horizontal") if kinds is not None else frame
    return _parse_ndjson_lines(path, options, rejects)


def _lines(fh: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, line, bytes)`` of a file; a line over ``limit`` bytes is skipped unread (``None``)."""
    number = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(1 << 20)
                size += len(raw)
            yield number, None, size
        else:
            yield number, raw, len(raw)


def _parse_ndjson_lines(path: Path, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    """The line-by-line parse of a .jsonl that polars cannot read whole: each bad line becomes a reject."""
    text_key, id_key = options.text_column, options.id_column
    limit = MAX_LINE_BYTES_PER_CHAR * options.max_chars + MAX_LINE_SLACK
    rows: list[dict] = []
    with path.open("rb") as fh:
        for number, raw, size in _lines(fh, limit):
            where = f"{path}:{number}"
            if raw is None:
                rejects.append(_reject(where, None, "too_large", f"a line of {size} bytes: more than {limit} (from --max-chars)"))
                continue
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                rejects.append(_reject(where, None, "undecodable_bytes", f"not UTF-8 at byte {exc.start} of the line"))
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                rejects.append(_reject(where, None, "unreadable_record", str(exc)[:200]))
                continue
            row: dict = {}
            text, doc_id = record.get(text_key), record.get(id_key)
            if text is not None and not isinstance(text, str):
                row[TEXT_KIND], record[text_key] = _python_kind(record, text_key, scalars=False), None
            if isinstance(doc_id, (list, dict)):
                row[ID_KIND], record[id_key] = _python_kind(record, id_key, scalars=True), None
            row.update((k, v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)) for k, v in record.items())
            rows.append(row | {LINE: number})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _read_csv(path: Path, options: IngestOptions) -> pl.DataFrame:
    """A .csv as strings where it is UTF-8; rows holding bytes that are not are marked (``UNDECODABLE``), never read lossily.

    Polars reads such a file only lossily, each bad byte becoming U+FFFD, so
    in a file that is not UTF-8 a row holding U+FFFD is the row with the bad
    bytes (a genuine U+FFFD next to them is taken for one too).
    """
    text_as_string = {options.text_column: pl.String}  # a CSV has no types: its text is text, even "42"
    try:
        return pl.read_csv(path, infer_schema_length=10_000, schema_overrides=text_as_string)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower() and "utf8" not in str(exc).lower():
            raise
    frame = pl.read_csv(path, infer_schema_length=10_000, schema_overrides=text_as_string, encoding="utf8-lossy")
    strings = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    marked = pl.coalesce([pl.when(pl.col(c).str.contains("\ufffd", literal=True)).then(pl.lit(c)) for c in strings])
    return frame.with_columns(marked.alias(UNDECODABLE)) if strings else frame


def _read_table(path: Path, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    return table_documents(_read_table_file(path, options, rejects), str(path), options, rejects)


def _read_table_file(path: Path, options: IngestOptions, rejects: list[dict]) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            frame = _read_ndjson(path, options, rejects)
        elif suffix == ".csv":
            frame = _read_csv(path, options)
        else:
            frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProvenanceError(f"cannot read {path}: {message}") from None
    return frame


@numba.njit(cache=True, nogil=True)
def _utf8_valid(data, offsets):  # pragma: no cover - compiled
    """Per row of a flat byte buffer (rows ``offsets[i]:offsets[i+1]``): is it UTF-8 as Python's strict codec reads it?"""
    n = len(offsets) - 1
    valid = np.ones(n, dtype=np.bool_)
    for row in range(n):
        i, end = offsets[row], offsets[row + 1]
        while i < end:
            b = data[i]
            if b < 0x80:
                i += 1
                continue
            if 0xC2 <= b <= 0xDF:
                need, low, high = 1, 0x80, 0xBF
            elif 0xE0 <= b <= 0xEF:
                need = 2
                low = 0xA0 if b == 0xE0 else 0x80
                high = 0x9F if b == 0xED else 0xBF  # no surrogates
            elif 0xF0 <= b <= 0xF4:
                need = 3
                low = 0x90 if b == 0xF0 else 0x80
                high = 0x8F if b == 0xF4 else 0xBF  # nothing above U+10FFFF
            else:
                valid[row] = False
                break
            if i + need >= end:  # cut off before its last byte
                valid[row] = False
                break
            c = data[i + 1]
            if c < low or c > high:
                valid[row] = False
                break
            ok = True
            for k in range(2, need + 1):
                c = data[i + k]
                if c < 0x80 or c > 0xBF:
                    ok = False
                    break
            if not ok:
                valid[row] = False
                break
            i += need + 1
    return valid


def utf8_rows(values: pl.Series, batch_rows: int = 100_000) -> pl.Series:
    """Per row of a Binary series: True when it is UTF-8 (null rows are True), a batch of rows at a time."""
    parts = []
    for start in range(0, len(values), batch_rows):
        chunk = values.slice(start, batch_rows)
        sizes = chunk.bin.size().fill_null(0).to_numpy().astype(np.int64)
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        flat = chunk.cast(pl.List(pl.UInt8)).explode().drop_nulls().to_numpy().astype(np.uint8)
        parts.append(_utf8_valid(flat, offsets))
    return pl.Series(values.name, np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_))


def _kind_of(dtype: pl.DataType) -> str:
    """A column type in a user's words: ``list``, ``object``, ``number``..."""
    if isinstance(dtype, (pl.List, pl.Array)):
        return "a list"
    if isinstance(dtype, pl.Struct):
        return "an object"
    if dtype.is_numeric():
        return "a number"
    return "a boolean" if dtype == pl.Boolean else f"a {str(dtype).lower()}"


#: Column types read as text; an id may also be a number, a boolean or a date (its text is the id).
STRING_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def _is_scalar(dtype: pl.DataType) -> bool:
    return dtype.base_type() in STRING_TYPES or dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean


def _as_strings(frame: pl.DataFrame, name: str, kind_column: str) -> tuple[pl.DataFrame, pl.Expr, pl.Expr, pl.Expr | None]:
    """``frame`` with column ``name`` readable as strings: ``(frame, value, kind, undecodable)`` expressions per row.

    ``kind`` is what a row holds instead of a string (an id may also be a
    number, a boolean or a date), ``undecodable`` the column whose bytes are not
    UTF-8.  A Binary column is checked row by row, so only its rows that are not
    UTF-8 are lost; a column of another type (a Parquet List, a JSON object)
    keeps none of its values.
    """
    dtype = frame.schema[name]
    given_kind = pl.col(kind_column) if kind_column in frame.columns else pl.lit(None, pl.String)
    if dtype == pl.Binary:
        values = frame[name]
        valid = utf8_rows(values)
        if valid.all():
            return frame, pl.col(name).cast(pl.String), given_kind, None
        # Polars checks the bytes behind a null too: cast only the valid rows, then put them back in place.
        strings = pl.Series(name, [None] * len(values), dtype=pl.String).scatter(
            valid.arg_true(), values.filter(valid).cast(pl.String),
        )
        return frame.with_columns(strings), pl.col(name), given_kind, pl.when(pl.lit(~valid)).then(pl.lit(name))
    if dtype.base_type() in STRING_TYPES or (kind_column == ID_KIND and _is_scalar(dtype)):
        return frame, pl.col(name).cast(pl.String), given_kind, None
    kind = pl.when(pl.col(name).is_not_null()).then(pl.lit(_kind_of(dtype)))
    return frame, pl.lit(None, pl.String), pl.coalesce(given_kind, kind), None


def _no_fields(dtype: pl.DataType) -> bool:
    """Whether ``dtype`` holds a struct without fields anywhere (JSON ``{}`` in every row): Parquet cannot store one."""
    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_no_fields(f.dtype) for f in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _no_fields(dtype.inner)
    return False


def _writable(frame: pl.DataFrame) -> pl.DataFrame:
    """Carried columns Parquet cannot store (a struct with no fields, e.g. ``"meta": {}`` in every row) as their JSON text."""
    bad = [c for c, t in frame.schema.items() if _no_fields(t)]
    if not bad:
        return frame
    # Wrapped in a one-field struct so any nesting encodes: '{"name":VALUE}' less its 'name' prefix and closing brace.
    encode = [pl.struct(c).struct.json_encode().str.slice(len(json.dumps(c)) + 2).str.head(-1).alias(c) for c in bad]
    return frame.with_columns(encode)


def table_documents(frame: pl.DataFrame, source: str, options: IngestOptions, rejects: list) -> pl.DataFrame:
    """Documents (``doc_id, text, title, source, *carried``) of a table read from ``source``; rows without a usable id or text to ``rejects``.

    ``title`` is the input's title column (``title_column``) where it has one,
    else null: ``provenance.titles`` gives those documents their first line
    that is not furniture once the corpus's boilerplate is known.  A text must
    be a string (``text_not_string``), an id a string or number
    (``id_not_scalar``), and neither may hold bytes that are not UTF-8
    (``undecodable_bytes``).
    """
    id_column, text_column, title_column = options.id_column, options.text_column, options.title_column
    if frame.height == 0 and not [c for c in frame.columns if c not in HIDDEN]:
        return pl.DataFrame(schema=BASE_SCHEMA)
    for column, option in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column not in frame.columns:
            raise ProvenanceError(
                f"{source} has no {column!r} column (columns: {', '.join(c for c in frame.columns[:12] if c not in HIDDEN)}); "
                f"name the right one with {option}"
            )
    renames = {c: f"input_{c}" for c in frame.columns if c in RESERVED}
    frame = _writable(_mapped_columns(frame.rename(renames), options))
    id_name = renames.get(id_column, id_column)
    text_name = renames.get(text_column, text_column)
    # Row number, or the file line when the line-by-line parse skipped bad lines.
    line = pl.col(LINE) if LINE in frame.columns else pl.int_range(1, pl.len() + 1)
    frame, doc_id, id_kind, id_undecodable = _as_strings(frame, id_name, ID_KIND)
    frame, text, text_kind, text_undecodable = _as_strings(frame, text_name, TEXT_KIND)
    given = pl.col(UNDECODABLE) if UNDECODABLE in frame.columns else pl.lit(None, pl.String)
    undecodable = pl.coalesce([e for e in (id_undecodable, text_undecodable) if e is not None] + [given])
    frame = frame.with_columns(
        doc_id.str.strip_chars().alias("doc_id"),
        text.alias("__text"),
        (pl.lit(source + ":") + line.cast(pl.String)).alias("__where"),
        id_kind.alias(ID_KIND), text_kind.alias(TEXT_KIND), undecodable.alias(UNDECODABLE),
    )
    frame = _reject_rows(frame, options, rejects)
    title_name = renames.get(title_column, title_column)
    has_title = title_name in frame.columns and title_name not in (id_name, text_name) and frame.schema[title_name] == pl.String
    if "title" in frame.columns and (title_name != "title" or not has_title):  # another column plays the title: carry this one aside
        frame = frame.rename({"title": "input_title"})
    title = pl.col(title_name).str.strip_chars() if has_title else pl.lit(None, pl.String)
    title = pl.when(title != "").then(title.str.slice(0, 300))
    dropped = {"doc_id", "__text", "__where", id_name, text_name, *HIDDEN, title_name if has_title else "__no_title"}
    carried = [c for c in frame.columns if c not in dropped]
    return frame.select(
        "doc_id",
        pl.col("__text").alias("text"),
        title.alias("title"),
        pl.lit(source).alias("source"),
        *carried,
    )


def _reject_rows(frame: pl.DataFrame, options: IngestOptions, rejects: list) -> pl.DataFrame:
    """``frame`` without the rows that have no usable id or text; those go to ``rejects`` with their reason."""
    id_column, text_column = repr(options.id_column), repr(options.text_column)
    verdict = frame.select(
        pl.when(pl.col(UNDECODABLE).is_not_null()).then(pl.lit("undecodable_bytes"))
        .when(pl.col(ID_KIND).is_not_null()).then(pl.lit("id_not_scalar"))
        .when(pl.col("doc_id").is_null() | (pl.col("doc_id") == "")).then(pl.lit("missing_id"))
        .when(pl.col(TEXT_KIND).is_not_null()).then(pl.lit("text_not_string"))
        .alias("reason")
    )["reason"]
    if verdict.null_count() == len(verdict):  # filter (a copy of every text) only when something is rejected
        return frame
    bad = frame.select("__where", "doc_id", UNDECODABLE, ID_KIND, TEXT_KIND).with_columns(verdict).filter(pl.col("reason").is_not_null())
    rejects.append(bad.select(
        pl.col("__where").alias("source"),
        pl.when(pl.col("reason") == "text_not_string").then(pl.col("doc_id"))
        .when((pl.col("reason") == "undecodable_bytes") & (pl.col(UNDECODABLE) != options.id_column)).then(pl.col("doc_id"))
        .alias("doc_id"),
        "reason",
        pl.when(pl.col("reason") == "undecodable_bytes").then(pl.format("not UTF-8 in column '{}'", pl.col(UNDECODABLE)))
        .when(pl.col("reason") == "id_not_scalar").then(pl.format(f"{id_column} is {{}}, not a string or number", pl.col(ID_KIND)))
        .when(pl.col("reason") == "missing_id").then(pl.lit(f"empty {id_column}"))
        .otherwise(pl.format(f"{text_column} is {{}}, not a string", pl.col(TEXT_KIND)))
        .alias("detail"),
    ))
    return frame.filter(verdict.is_null())


def _rejects_frame(rejects: list) -> pl.DataFrame:
    """The rejects table from what the readers set aside, in order: single rows (dicts) and whole frames."""
    parts: list[pl.DataFrame] = []
    rows: list[dict] = []
    for item in rejects:
        if isinstance(item, dict):
            rows.append(item)
            continue
        if rows:
            parts.append(pl.DataFrame(rows, schema=REJECTS))
            rows = []
        parts.append(item.select(pl.col(name).cast(dtype) for name, dtype in REJECTS.items()))
    if rows:
        parts.append(pl.DataFrame(rows, schema=REJECTS))
    return pl.concat(parts) if parts else pl.DataFrame(schema=REJECTS)


def _walk(folder: Path) -> list[Path]:
    """Every entry below ``folder`` that is not a folder to descend into; hidden names are left out, links to folders not followed.

    Unlike ``Path.rglob``, a folder that cannot be listed is returned (to be
    rejected) instead of skipped without a word.
    """
    found: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                listed = [e for e in entries if not e.name.startswith(".")]
        except OSError:
            if current == folder:
                raise ProvenanceError(f"cannot list input folder {folder}") from None
            found.append(Path(current))
            continue
        for entry in listed:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            else:
                found.append(Path(entry.path))
    return sorted(found)


def expand_inputs(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """``(file, root)`` pairs in a stable order; run-level errors for bad paths.

    Every entry of a folder is listed, FIFOs and dangling links included:
    :func:`file_problem` tells the readers which ones to reject unopened.
    """
    found: list[tuple[Path, Path]] = []
    for given in inputs:
        if not given.exists():
            raise ProvenanceError(f"input path {given} does not exist")
        if given.is_dir():
            found.extend((path, given) for path in _walk(given))
        elif given.suffix.lower() in TEXT_SUFFIXES + TABLE_SUFFIXES:
            found.append((given, given.parent))
        else:
            raise ProvenanceError(
                f"unknown input format {given.suffix or '(no extension)'!r} for {given}: "
                f"pass a folder, {', '.join(TEXT_SUFFIXES)} files or {', '.join(TABLE_SUFFIXES)} tables"
            )
    return found


def check_outside_inputs(flag: str, target: Path, inputs: list[Path]) -> None:
    """Refuse an output folder that an input folder's walk would read (a hidden one is never walked)."""
    where = target.absolute().parent.resolve() / target.name  # the link itself, for a store's published --out
    for given in inputs:
        if not given.is_dir():
            continue
        folder = given.resolve()
        if where == folder or where.is_relative_to(folder):
            inside = where.relative_to(folder).parts
            if not any(part.startswith(".") for part in inside):
                raise ProvenanceError(
                    f"{flag} {target} is inside the input folder {given}: the next run would read this run's "
                    f"tables as input; pass an {flag} outside it"
                )


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
    rejects: list = []
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
    return Ingested(documents=documents, rejects=_rejects_frame(rejects), files=[str(p) for p, _ in files])


def _read_files(files: list[tuple[Path, Path]], options: IngestOptions, rejects: list) -> list[pl.DataFrame]:
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
        doc_id = path.relative_to(root).with_suffix("").as_posix() if suffix in TEXT_SUFFIXES else None
        problem = file_problem(path)
        if problem is not None:
            rejects.append(_reject(str(path), doc_id, *problem))
        elif suffix in TEXT_SUFFIXES:
            try:
                row = _read_text_file(path, doc_id, options.max_chars, rejects)
            except OSError as exc:
                rejects.append(_reject(str(path), doc_id, "unreadable_file", exc.strerror or str(exc)))
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


def _screen(documents: pl.DataFrame, max_chars: int, rejects: list) -> pl.DataFrame:
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
    details = pl.DataFrame({
        "reason": ["duplicate_id", "empty_text", "too_large"],
        "detail": ["an earlier document has this id", "text is empty or white space", f"more than {max_chars} characters"],
    })
    bad = documents.select("source", "doc_id").with_columns(reason).filter(pl.col("reason").is_not_null())
    rejects.append(bad.join(details, on="reason", how="left", maintain_order="left"))
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
            for number, raw, _ in _lines(fh, 1 << 24):
                if raw is None:
                    return None
                if raw.strip():
                    record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace"))
                    return list(record) if isinstance(record, dict) else None
        return []
    except Exception:  # noqa: BLE001 - the full read reports the precise problem
        return None
