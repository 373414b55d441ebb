"""provenance.preflight: every run-level mistake is one line before any work starts, and good runs pass untouched."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.preflight import preflight
from tests.fixtures import make_article


def one_line(source, out_dir, config=None, **kwargs) -> str:
    with pytest.raises(ProvenanceError) as err:
        preflight(source, out_dir, config or Config(), **kwargs)
    message = str(err.value)
    assert "\n" not in message and message
    return message


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    """Tables of every format, with the default columns (``good.*``) and without a text column (``body.*``)."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = pl.DataFrame({"id": ["a", "b"], "text": [make_article(0), make_article(1)], "lang": ["en", "en"]})
    body = good.rename({"text": "body"})
    out = {}
    for stem, frame in (("good", good), ("body", body)):
        for suffix, write in ((".csv", frame.write_csv), (".parquet", frame.write_parquet), (".jsonl", frame.write_ndjson)):
            path = folder / f"{stem}{suffix}"
            write(path)
            out[path.name] = path
    return out


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_without_the_text_column_names_the_columns_and_the_option(tmp_path: Path, tables, suffix: str) -> None:
    message = one_line([tables[f"body{suffix}"]], tmp_path / "out")
    assert message == (
        f"{tables[f'body{suffix}']} has no 'text' column (columns: id, body, lang); name the right one with --text-column"
    )
    assert not (tmp_path / "out").exists()  # nothing was made before the check failed


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_without_the_id_column_names_the_option(tmp_path: Path, tables, suffix: str) -> None:
    config = Config.from_options({"id_column": "doc", "text_column": "text"})
    message = one_line([tables[f"good{suffix}"]], tmp_path / "out", config)
    assert message.endswith("has no 'doc' column (columns: id, text, lang); name the right one with --id-column")


def test_the_columns_named_by_the_options_are_accepted(tmp_path: Path, tables) -> None:
    config = Config.from_options({"text_column": "body"})
    assert preflight([tables["body.csv"], tables["body.parquet"], tables["body.jsonl"]], tmp_path / "out", config) is None
    assert (tmp_path / "out").is_dir()  # a fresh run's output folder is made writable up front


def test_a_bad_table_inside_a_folder_is_found(tmp_path: Path, tables) -> None:
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(make_article(2))
    tables["body.parquet"].rename(folder / "sub" / "rows.parquet")
    message = one_line([folder], tmp_path / "out")
    assert message.startswith(f"{folder / 'sub' / 'rows.parquet'} has no 'text' column")


def test_empty_and_unreadable_tables_are_left_to_the_full_read(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert preflight([tmp_path / "empty.jsonl", tmp_path / "broken.jsonl", tmp_path / "broken.parquet"], None, Config()) is None


def test_tables_after_an_empty_one_are_still_checked(tmp_path: Path, tables) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1")
    message = one_line([tmp_path / "empty.jsonl", tmp_path / "broken.parquet", tables["good.csv"], tables["body.jsonl"]], None)
    assert message.startswith(f"{tables['body.jsonl']} has no 'text' column")


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    assert one_line([tmp_path / "nowhere"], tmp_path / "out") == f"input path {tmp_path / 'nowhere'} does not exist"
    (tmp_path / "notes.docx").write_bytes(b"PK")
    assert one_line([tmp_path / "notes.docx"], tmp_path / "out").startswith(f"unknown input format '.docx' for {tmp_path / 'notes.docx'}")


def test_a_dataframe_source_has_no_paths_to_check(tmp_path: Path) -> None:
    frame = pl.DataFrame({"body": ["x"]})  # its columns are checked when it is read
    assert preflight(frame, tmp_path / "out", Config()) is None


def test_an_output_path_that_is_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    assert one_line(pl.DataFrame(), tmp_path / "file") == f"output path {tmp_path / 'file'} exists and is not a folder"
    assert one_line(pl.DataFrame(), tmp_path / "file" / "out").startswith(f"cannot create output folder {tmp_path / 'file' / 'out'}: ")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert one_line(pl.DataFrame(), locked) == f"output folder {locked} is not writable"
    finally:
        locked.chmod(0o700)


def test_no_output_folder_means_only_the_inputs_are_checked(tmp_path: Path, tables) -> None:
    assert preflight([tables["good.csv"]], None, Config()) is None
    assert one_line([tables["body.csv"]], None).endswith("--text-column")


def test_with_a_store_the_output_must_be_able_to_become_its_link(tmp_path: Path, tables) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    message = one_line([tables["good.csv"]], out, store_dir=tmp_path / "store")
    assert message.startswith(f"output folder {out} holds files provenance did not write (notes.txt)")
    assert (out / "notes.txt").read_text() == "mine"
    # A folder of earlier outputs, a link, or nothing yet are all fine; none is made or changed here.
    (out / "notes.txt").unlink()
    (out / "documents.parquet").write_bytes(b"")
    (out / "run.json").write_text("{}")
    assert preflight([tables["good.csv"]], out, Config(), store_dir=tmp_path / "store") is None
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert preflight([tables["good.csv"]], tmp_path / "link", Config(), store_dir=tmp_path / "store") is None
    assert preflight([tables["good.csv"]], tmp_path / "new-out", Config(), store_dir=tmp_path / "store") is None
    assert not (tmp_path / "new-out").exists() and not (tmp_path / "store").exists()


def test_with_a_store_an_output_file_or_a_store_file_is_refused(tmp_path: Path, tables) -> None:
    (tmp_path / "file").write_text("x")
    assert one_line([tables["good.csv"]], tmp_path / "file", store_dir=tmp_path / "store") == (
        f"output path {tmp_path / 'file'} exists and is not a folder"
    )
    assert one_line([tables["good.csv"]], tmp_path / "out", store_dir=tmp_path / "file") == (
        f"--store {tmp_path / 'file'} exists and is not a folder"
    )


def test_inputs_are_checked_before_the_output(tmp_path: Path, tables) -> None:
    (tmp_path / "file").write_text("x")
    assert one_line([tables["body.csv"]], tmp_path / "file").endswith("--text-column")
