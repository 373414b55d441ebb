"""``provenance run`` exit codes and messages (always ``--engine local``: no Prefect).

A run-level problem (bad path, unknown format, missing column, unwritable
output, impossible options) exits with status 2 and ONE readable line on
stderr, never a traceback; per-document problems never fail the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from provenance.cli import app

from tests.test_ingest import SENTENCES  # noqa: E402 (shared hand-written corpus)


def article(i: int, n: int = 6) -> str:
    return " ".join(SENTENCES[(i * n + j) % len(SENTENCES)] for j in range(n))


def invoke(*args: str | Path):
    return CliRunner().invoke(app, ["run", "--engine", "local", *map(str, args)])


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 2, one ``error:`` line on stderr, nothing else, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an unhandled exception
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "in"
    (d / "folder" / "sub").mkdir(parents=True)
    (d / "folder" / "a.txt").write_text(article(0))
    (d / "folder" / "sub" / "b.md").write_text(article(1))
    (d / "report.docx").write_bytes(b"PK\x03\x04")
    (d / "plain_file").write_text("not a folder")
    bad = pl.DataFrame({"id": ["a", "b"], "body": [article(0), article(1)]})
    bad.write_csv(d / "no_text.csv")
    bad.write_parquet(d / "no_text.parquet")
    bad.write_ndjson(d / "no_text.jsonl")
    (d / "folder_with_bad_table").mkdir()
    (d / "folder_with_bad_table" / "a.txt").write_text(article(0))
    bad.write_parquet(d / "folder_with_bad_table" / "rows.parquet")
    pl.DataFrame({"key": ["k1", "k2"], "body": [article(0), article(1)], "url": ["u1", "u2"]}).write_csv(d / "renamed.csv")
    return {p.name: p for p in d.iterdir()}


# ---------------------------------------------------------------------------- run-level errors


def test_missing_input_path(tmp_path: Path) -> None:
    missing = tmp_path / "does" / "not" / "exist"
    assert_one_line_error(invoke(missing, "--out", tmp_path / "out"), str(missing), "does not exist")


def test_unknown_format_given_directly(tmp_path: Path, inputs: dict[str, Path]) -> None:
    result = invoke(inputs["folder"], inputs["report.docx"], "--out", tmp_path / "out")
    assert_one_line_error(result, "unknown input format '.docx'", str(inputs["report.docx"]))
    assert not (tmp_path / "out" / "documents.parquet").exists()


@pytest.mark.parametrize("name", ["no_text.csv", "no_text.parquet", "no_text.jsonl", "folder_with_bad_table"])
def test_table_without_text_column(tmp_path: Path, inputs: dict[str, Path], name: str) -> None:
    line = assert_one_line_error(invoke(inputs[name], "--out", tmp_path / "out"), "no 'text' column", "--text-column")
    assert "body" in line  # the message lists the columns that are there


def test_table_without_id_column(tmp_path: Path, inputs: dict[str, Path]) -> None:
    result = invoke(inputs["renamed.csv"], "--text-column", "body", "--out", tmp_path / "out")
    assert_one_line_error(result, "no 'id' column", "--id-column")


def test_out_is_an_existing_file(tmp_path: Path, inputs: dict[str, Path]) -> None:
    target = inputs["plain_file"]
    assert_one_line_error(invoke(inputs["folder"], "--out", target), str(target))
    assert target.read_text() == "not a folder"  # untouched


def test_out_is_under_an_existing_file(tmp_path: Path, inputs: dict[str, Path]) -> None:
    target = inputs["plain_file"] / "out"
    assert_one_line_error(invoke(inputs["folder"], "--out", target), str(target))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--min-tokens", "1", "--word-ngram", "3"], "--min-tokens (1) must be at least --word-ngram (3)"),
        (["--num-perm", "5"], "--num-perm must be between 16 and 1024"),
        (["--id-column", "text", "--text-column", "text"], "must name different columns"),
        (["--id-column", ""], "must not be empty"),
        (["--words-threshold", "1.5"], "--words-threshold"),
        (["--max-chars", "0"], "--max-chars"),
        (["--engine", "spark"], "--engine must be 'prefect' or 'local'"),
    ],
)
def test_invalid_or_contradictory_options(tmp_path: Path, inputs: dict[str, Path], options: list[str], fragment: str) -> None:
    out = tmp_path / "out"
    assert_one_line_error(invoke(inputs["folder"], "--out", out, *options), fragment)
    assert not (out / "run.json").exists()


@pytest.mark.parametrize("column", ["[/]", "[bold]body", "[red]"])
def test_error_message_is_not_read_as_markup(tmp_path: Path, inputs: dict[str, Path], column: str) -> None:
    # Regression: the message was printed as Rich markup, so "[/]" crashed with
    # a MarkupError traceback and "[bold]..." vanished from the message.
    result = invoke(inputs["no_text.csv"], "--text-column", column, "--out", tmp_path / "out")
    assert_one_line_error(result, f"no '{column}' column")


def test_error_line_via_python_m_has_no_traceback(tmp_path: Path) -> None:
    """The real process: status 2, one stderr line, no Prefect started."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    missing = tmp_path / "missing"
    proc = subprocess.run(
        [sys.executable, "-m", "provenance.cli", "run", "--engine", "local", "--out", str(tmp_path / "out"), str(missing)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0]


# ---------------------------------------------------------------------------- successful runs


def test_local_run_with_column_overrides(tmp_path: Path, inputs: dict[str, Path]) -> None:
    out = tmp_path / "out"
    result = invoke(inputs["folder"], inputs["renamed.csv"], "--id-column", "key", "--text-column", "body", "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr == ""
    documents = pl.read_parquet(out / "documents.parquet")
    assert sorted(documents["doc_id"].to_list()) == ["a", "k1", "k2", "sub/b"]
    assert dict(documents.select("doc_id", "url").iter_rows())["k2"] == "u2"
    info = json.loads((out / "run.json").read_text())
    assert info["parameters"]["id_column"] == "key" and info["parameters"]["text_column"] == "body"
    assert "documents" in result.stdout


def test_per_document_problems_do_not_fail_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(article(0))
    (folder / "empty.txt").write_text("   ")
    (folder / "bad.txt").write_bytes(b"\xff\xfe\xfa" + article(1).encode())
    (folder / "nul.txt").write_bytes(b"\x00" + article(1).encode())
    (folder / "short.md").write_text("Only four words here.")
    (folder / "notes.docx").write_bytes(b"PK")
    (folder / "t.jsonl").write_text('{"id": "j1", "text": "cut\n' + json.dumps({"id": "good", "text": article(1)}) + "\n")
    out = tmp_path / "out"

    result = invoke(folder, "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    assert pl.read_parquet(out / "documents.parquet")["doc_id"].to_list() == ["good"]
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert sorted(rejects["reason"].to_list()) == sorted(
        ["empty_text", "undecodable_bytes", "binary_file", "too_short", "unsupported_file", "unreadable_record", "duplicate_id"]
    )
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["rejected"] == 7 and info["counts"]["documents"] == 1


def test_all_documents_rejected_exits_zero(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    (folder / "short.txt").write_text("Too short.")
    out = tmp_path / "out"

    result = invoke(folder, "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    assert pl.read_parquet(out / "documents.parquet").height == 0
    assert pl.read_parquet(out / "rejects.parquet").height == 2
