"""The bad-input matrix of issue 14: every input document ends in documents or rejects, with an exact reason.

Each case builds a small input by hand, runs ``provenance run IN --out OUT
--engine local`` in-process (preflight included: a FIFO there must not block)
and checks three things: the run succeeds, the rejects carry exactly the
expected reasons, and ``documents in = rows of documents.parquet + rows of
rejects.parquet``.  Cases that passed before the issue are in the matrix too,
so they keep passing.  Run-level mistakes (an empty folder, a missing input,
``--out`` inside the input) are one line, exit 2, and leave an earlier run's
outputs as they were.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from provenance_cli.main import app
from tests.test_ingest import SHORT, article, outputs, write, write_jsonl

A0, A1, A2, A3 = (article(i) for i in range(4))
#: A case: build the input under a folder, return the paths to pass and the expected outcome by reason ("document": accepted).
Case = Callable[[Path], tuple[list[Path], dict[str, int]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def invoke(*args: str | Path):
    return CliRunner().invoke(app, ["run", "--engine", "local", *map(str, args)])


# ---------------------------------------------------------------------------- JSONL texts and ids of the wrong type


@case
def jsonl_text_list_object_number_mixed_with_normal_rows(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [
        {"id": "a", "text": A0},
        {"id": "b", "text": ["Harbour", "news"]},
        {"id": "c", "text": {"body": A1}},
        {"id": "d", "text": 42},
        {"id": "e", "text": True},
        {"id": "f", "text": "[1, 2] " + A2},  # a string that starts like JSON is a string
        {"id": "g", "text": []},
    ])
    return [tmp / "in"], {"document": 2, "text_not_string": 5}


@case
def jsonl_metadata_that_is_an_empty_object_in_every_row(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [{"id": "a", "text": A0, "meta": {}, "tags": [{}]}, {"id": "b", "text": A1, "meta": {}, "tags": []}])
    return [tmp / "in"], {"document": 2}


@case
def jsonl_every_text_a_list(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [{"id": "a", "text": ["x", "y"]}, {"id": "b", "text": ["z"]}])
    return [tmp / "in"], {"text_not_string": 2}


@case
def jsonl_ids_objects_and_lists(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [
        {"id": {"n": 4}, "text": A0}, {"id": [1], "text": A1}, {"id": 7, "text": A2}, {"id": "s", "text": A3},
    ])
    return [tmp / "in"], {"document": 2, "id_not_scalar": 2}


@case
def jsonl_every_id_and_text_an_object(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [{"id": {"n": i}, "text": {"a": i}} for i in range(4)])
    return [tmp / "in"], {"id_not_scalar": 4}


@case
def jsonl_list_text_beside_a_malformed_line(tmp: Path):
    # The malformed line sends the file through the line-by-line parse: the same reasons there.
    write_jsonl(tmp / "in" / "t.jsonl", [
        {"id": "a", "text": A0}, '{"id": "b", "text": "cut', {"id": "c", "text": ["x"]}, {"id": {"k": 1}, "text": A1},
        {"id": "e", "text": 3.5},
    ])
    return [tmp / "in"], {"document": 1, "unreadable_record": 1, "text_not_string": 2, "id_not_scalar": 1}


@case
def jsonl_nested_text_key_is_not_the_text(tmp: Path):
    write_jsonl(tmp / "in" / "t.jsonl", [{"id": "a", "meta": {"text": [1, 2]}, "text": A0}, {"id": "b", "text": A1, "x": {"text": {"k": 1}}}])
    return [tmp / "in"], {"document": 2}


@case
def jsonl_invalid_utf8_line(tmp: Path):
    write(tmp / "in" / "t.jsonl", json.dumps({"id": "a", "text": A0}).encode() + b"\n"
          + b'{"id": "b", "text": "caf\xe9 ' + A1.encode() + b'"}\n')
    return [tmp / "in"], {"document": 1, "undecodable_bytes": 1}


# ---------------------------------------------------------------------------- Parquet columns of the wrong type or bytes


@case
def parquet_text_list_column(tmp: Path):
    write_parquet(tmp / "in" / "t.parquet", pl.DataFrame({"id": ["a", "b"], "text": [["x"], ["y", "z"]]}))
    return [tmp / "in"], {"text_not_string": 2}


@case
def parquet_text_struct_column(tmp: Path):
    write_parquet(tmp / "in" / "t.parquet", pl.DataFrame({"id": ["a", "b"], "text": [{"body": A0}, {"body": A1}]}))
    return [tmp / "in"], {"text_not_string": 2}


@case
def parquet_id_struct_column(tmp: Path):
    write_parquet(tmp / "in" / "t.parquet", pl.DataFrame({"id": [{"n": 1}, {"n": 2}], "text": [A0, A1]}))
    return [tmp / "in"], {"id_not_scalar": 2}


@case
def parquet_binary_text_with_one_invalid_utf8_row(tmp: Path):
    texts = [A0.encode(), b"Caf\xe9 " + A1.encode(), ("\u00e9t\u00e9 " + A2).encode(), None]
    write_parquet(tmp / "in" / "t.parquet", pl.DataFrame({"id": ["a", "b", "c", "d"], "text": texts}, schema={"id": pl.String, "text": pl.Binary}))
    return [tmp / "in"], {"document": 2, "undecodable_bytes": 1, "empty_text": 1}


# ---------------------------------------------------------------------------- CSV bytes, byte order marks


@case
def csv_with_invalid_utf8_in_one_row(tmp: Path):
    write(tmp / "in" / "t.csv", b"id,text\na," + A0.encode() + b"\nb,Caf\xe9 " + A1.encode() + b"\nc," + A2.encode() + b"\n")
    return [tmp / "in"], {"document": 2, "undecodable_bytes": 1}


@case
def jsonl_and_csv_starting_with_a_utf8_bom(tmp: Path):
    write(tmp / "in" / "t.jsonl", codecs.BOM_UTF8 + json.dumps({"id": "j1", "text": A0}).encode() + b"\n"
          + json.dumps({"id": "j2", "text": A1}).encode() + b"\n")
    write(tmp / "in" / "t.csv", codecs.BOM_UTF8 + b"id,text\nc1," + A2.encode() + b"\n")
    return [tmp / "in"], {"document": 3}


@case
def utf16_text_files(tmp: Path):
    write(tmp / "in" / "le.txt", ("Harbour news\n" + A0).encode("utf-16"))  # with its BOM
    write(tmp / "in" / "be.md", codecs.BOM_UTF16_BE + ("Bees\n" + A1).encode("utf-16-be"))
    write(tmp / "in" / "cut.txt", ("Storm\n" + A2).encode("utf-16") + b"\x00")  # odd length: not UTF-16
    write(tmp / "in" / "fake.txt", b"\xff\xfe\xfa" + A3.encode())  # FF FE, then no UTF-16 text
    return [tmp / "in"], {"document": 2, "undecodable_bytes": 2}


# ---------------------------------------------------------------------------- sizes


@case
def sparse_two_gigabyte_text_file(tmp: Path):
    (tmp / "in").mkdir()
    with open(tmp / "in" / "big.txt", "wb") as fh:
        fh.truncate(2 << 30)  # sparse: no disk, and never read
    write(tmp / "in" / "ok.txt", A0)
    return [tmp / "in"], {"document": 1, "too_large": 1}


# ---------------------------------------------------------------------------- folder entries that are no regular file


@case
def fifo_socket_dangling_link_and_folder_link(tmp: Path):
    folder = tmp / "in"
    write(folder / "ok.txt", A0)
    os.mkfifo(folder / "pipe.txt")
    os.mkfifo(folder / "pipe.jsonl")  # preflight reads a table's header: not this one's
    os.symlink(tmp / "nowhere.txt", folder / "dangling.txt")
    os.symlink(tmp, folder / "loop")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.md"))
    sock.close()
    return [folder], {"document": 1, "not_a_regular_file": 4, "dangling_symlink": 1}


# ---------------------------------------------------------------------------- cases that passed before the issue


@case
def what_ingest_already_rejected(tmp: Path):
    folder = tmp / "in"
    write(folder / "good.txt", A0)
    write(folder / "bom.txt", codecs.BOM_UTF8 + ("Title\n" + A1).encode())
    write(folder / "empty.txt", "")
    write(folder / "blank.md", " \n\t \n")
    write(folder / "latin1.txt", "Caf\xe9 ".encode("latin-1") + A2.encode())
    write(folder / "nul.txt", A3.encode() + b"\x00")
    write(folder / "short.txt", SHORT)
    write(folder / "notes.docx", b"PK\x03\x04")
    write(folder / ".hidden.txt", A0)  # not an input document
    write(folder / "dup" / "x.md", A2)
    write(folder / "dup" / "x.txt", A3)
    write_jsonl(folder / "t.jsonl", [
        {"id": "j1", "text": A3 + " More."}, '{"id": "j2", "text": "bro', {"id": None, "text": A1}, {"id": "j4", "text": "  "},
        {"id": "j1", "text": A2}, {"id": "j6", "text": A1 * 2},
    ])
    expected = {
        "document": 4, "empty_text": 3, "undecodable_bytes": 1, "binary_file": 1, "too_short": 1, "unsupported_file": 1,
        "duplicate_id": 2, "unreadable_record": 1, "missing_id": 1, "too_large": 1,
    }
    return [folder, "-o", "max_chars=1000"], expected


@case
def an_empty_table(tmp: Path):
    write(tmp / "in" / "t.jsonl", "")
    write(tmp / "in" / "a.txt", A0)
    return [tmp / "in"], {"document": 1}


def write_parquet(path: Path, frame: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


@pytest.mark.parametrize("name", list(CASES))
def test_every_input_document_ends_in_documents_or_rejects(tmp_path: Path, name: str) -> None:
    args, expected = CASES[name](tmp_path)
    out = tmp_path / "out"

    result = invoke(*args, "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    documents, rejects, _ = outputs(out)
    assert documents.height + rejects.height == sum(expected.values())
    assert documents.height == expected.get("document", 0)
    assert dict(Counter(rejects["reason"].to_list())) == {k: v for k, v in expected.items() if k != "document"}
    assert rejects["source"].null_count() == 0 and rejects["detail"].null_count() == 0
    # Nothing was read lossily or as the JSON text of a list or object.
    assert not documents.filter(pl.col("text").str.contains("\ufffd", literal=True) | pl.col("text").str.starts_with("{")).height
    assert not documents.filter(pl.col("doc_id").str.contains(r"^[\[{]")).height
    if name == "jsonl_metadata_that_is_an_empty_object_in_every_row":  # carried as JSON text: Parquet stores no empty struct
        assert set(documents["meta"].to_list()) == {"{}"} and set(documents["tags"].to_list()) == {"[{}]", "[]"}


def test_reject_details_say_what_was_found(tmp_path: Path) -> None:
    args, _ = jsonl_text_list_object_number_mixed_with_normal_rows(tmp_path)
    write_parquet(tmp_path / "in" / "p.parquet", pl.DataFrame({"id": [{"n": 1}], "text": [A0]}))
    big = tmp_path / "in" / "big.txt"
    with open(big, "wb") as fh:
        fh.truncate(2 << 30)
    assert invoke(*args, "--out", tmp_path / "out").exit_code == 0
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    detail = {(r["doc_id"], r["reason"]): r["detail"] for r in rejects.iter_rows(named=True)}
    assert detail[("b", "text_not_string")] == "'text' is a list, not a string"
    assert detail[("c", "text_not_string")] == "'text' is an object, not a string"
    assert detail[("d", "text_not_string")] == "'text' is a number, not a string"
    assert detail[("e", "text_not_string")] == "'text' is a boolean, not a string"
    assert detail[(None, "id_not_scalar")] == "'id' is an object, not a string or number"
    assert detail[("big", "too_large")] == f"{2 << 30} bytes: more than 1000000 characters"


def test_accepted_texts_are_the_decoded_texts(tmp_path: Path) -> None:
    for build in (utf16_text_files, jsonl_and_csv_starting_with_a_utf8_bom, parquet_binary_text_with_one_invalid_utf8_row):
        build(tmp_path)
    assert invoke(tmp_path / "in", "--out", tmp_path / "out").exit_code == 0
    text = dict(pl.read_parquet(tmp_path / "out" / "documents.parquet").select("doc_id", "text").iter_rows())
    assert text["le"] == "Harbour news\n" + A0 and text["be"] == "Bees\n" + A1
    assert text["j1"] == A0 and text["c1"] == A2
    assert text["a"] == A0 and text["c"] == "\u00e9t\u00e9 " + A2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_an_unreadable_file_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "in" / "ok.txt", A0)
    locked = write(tmp_path / "in" / "locked.txt", A1)
    table = write_jsonl(tmp_path / "in" / "locked.jsonl", [{"id": "j", "text": A2}])
    locked.chmod(0)
    table.chmod(0)
    try:
        result = invoke(tmp_path / "in", "--out", tmp_path / "out")
    finally:
        locked.chmod(0o644)
        table.chmod(0o644)
    assert result.exit_code == 0, result.output
    documents, rejects, _ = outputs(tmp_path / "out")
    assert documents["doc_id"].to_list() == ["ok"]
    assert rejects.select("doc_id", "reason").rows() == [("locked", "unreadable_file"), (None, "unreadable_file")]


def test_an_unreadable_file_is_rejected_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "in" / "ok.txt", A0)
    locked = write(tmp_path / "in" / "locked.txt", A1)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and access(path, mode, **kw))

    assert invoke(tmp_path / "in", "--out", tmp_path / "out").exit_code == 0

    documents, rejects, _ = outputs(tmp_path / "out")
    assert documents["doc_id"].to_list() == ["ok"]
    assert rejects.select("doc_id", "reason", "detail").rows() == [("locked", "unreadable_file", "permission denied")]


# ---------------------------------------------------------------------------- run-level mistakes


def assert_refused(result, fragment: str) -> None:
    """Exit 2 and one ``error:`` line naming the problem, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.mark.parametrize("mistake", ["empty_folder", "only_hidden_files", "missing_input", "out_inside_input", "out_is_input"])
def test_run_level_mistakes_are_one_line_and_leave_old_outputs(tmp_path: Path, mistake: str) -> None:
    good = tmp_path / "good"
    write(good / "a.txt", A0)
    out = tmp_path / "out"
    assert invoke(good, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    folder = tmp_path / "in"
    folder.mkdir()
    if mistake == "only_hidden_files":
        write(folder / ".draft.txt", A0)
    if mistake in ("out_inside_input", "out_is_input"):
        write(folder / "a.txt", A1)
    args, fragment = {
        "empty_folder": ([folder, "--out", out], f"input folder {folder} holds no file to read"),
        "only_hidden_files": ([folder, "--out", out], "holds no file to read (hidden files are ignored)"),
        "missing_input": ([tmp_path / "nowhere", "--out", out], "does not exist"),
        "out_inside_input": ([folder, "--out", folder / "out"], "is inside the input folder"),
        "out_is_input": ([folder, "--out", folder], "is inside the input folder"),
    }[mistake]

    assert_refused(invoke(*args), fragment)

    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (folder / "out").exists()


def test_an_out_folder_inside_the_input_is_never_read_back(tmp_path: Path) -> None:
    """A hidden output folder inside the input is allowed: the walk never enters it, so a second run reads the same."""
    folder = tmp_path / "in"
    write(folder / "a.txt", A0)
    write(folder / "b.txt", A1)
    for _ in range(2):
        assert invoke(folder, "--out", folder / ".out").exit_code == 0
        documents, rejects, _ = outputs(folder / ".out")
        assert sorted(documents["doc_id"].to_list()) == ["a", "b"] and rejects.height == 0
