"""spill: texts on disk while the middle stages run; the same tables as a run that keeps them in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import provenance
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import ingest_stage
from provenance.prepare.stage import prepare_stage
from provenance.spill import TextRows, TextSpill, default_folder, spill_texts, text_bytes, texts_of

TABLES = ("documents", "clusters", "edges", "rejects")


@pytest.fixture
def spilled(tmp_path: Path) -> TextSpill:
    texts = pl.Series("text", [f"text number {i}" for i in range(250)])
    return spill_texts(texts, 40, tmp_path)


def test_slice_gather_and_load_read_back_the_texts(spilled: TextSpill):
    assert len(spilled) == 250
    assert spilled.slice(38, 4).to_list() == [f"text number {i}" for i in (38, 39, 40, 41)]
    assert spilled.slice(248, 10).to_list() == ["text number 248", "text number 249"]
    # Dense and sparse requests take different read paths; both give the rows asked for.
    assert spilled.gather(np.array([5, 6, 8])).to_list() == ["text number 5", "text number 6", "text number 8"]
    assert spilled.gather(np.array([0, 249])).to_list() == ["text number 0", "text number 249"]
    assert spilled.gather(np.array([], dtype=np.int64)).to_list() == []
    assert spilled.load().to_list() == [f"text number {i}" for i in range(250)]
    with pytest.raises(ValueError, match="ascending"):
        spilled.gather(np.array([3, 1]))


def test_sparse_fills_the_other_rows_with_nulls(spilled: TextSpill):
    assert spilled.sparse(np.array([0, 3])).to_list()[:5] == ["text number 0", None, None, "text number 3", None]
    assert len(spilled.sparse(np.array([1]))) == 250
    rows = TextRows(spilled, np.array([7, 200]))
    assert len(rows) == 2 and texts_of(rows).to_list() == ["text number 7", "text number 200"]


def test_gather_reads_dense_and_sparse_rows_alike(spilled: TextSpill, rng):
    for size in (1, 3, 40, 63, 64, 200):
        rows = np.sort(rng.choice(250, size=size, replace=False))
        assert spilled.gather(rows).to_list() == [f"text number {i}" for i in rows], size
    # Far apart (the streaming path) and contiguous (one slice).
    assert spilled.gather(np.array([1, 120, 249])).to_list() == ["text number 1", "text number 120", "text number 249"]
    assert spilled.gather(np.arange(100, 140)).to_list() == [f"text number {i}" for i in range(100, 140)]
    with pytest.raises(ValueError, match="ascending"):
        spilled.gather(np.array([4, 4]))


def test_gather_reads_whole_row_groups_a_window_at_a_time(spilled: TextSpill, rng, monkeypatch: pytest.MonkeyPatch):
    """Windows of whole row groups (here 80 rows: two groups of 40) bound what a gather holds; every row still comes back once."""
    import provenance.spill as spill

    monkeypatch.setattr(spill, "GATHER_ROWS", 100)
    assert spilled.rows_per_group == 40 and spilled.window() == 80
    for size in (1, 2, 79, 81, 160, 250):
        rows = np.sort(rng.choice(250, size=size, replace=False))
        assert spilled.gather(rows).to_list() == [f"text number {i}" for i in rows], size
    assert spilled.gather(np.array([79, 80])).to_list() == ["text number 79", "text number 80"]  # across a window edge
    assert TextSpill(spilled.path, spilled.n).window() == 100  # row groups unknown: a plain window


def test_spill_keeps_nulls_unicode_and_long_texts(tmp_path: Path):
    texts = pl.Series("text", ["caf\u00e9 \U0001f600", None, "", "x" * 10_000] * 5)
    spill = spill_texts(texts, 7, tmp_path / "deep" / "folder")
    assert spill.path.parent.parent == tmp_path / "deep" / "folder" and spill.path.name == "texts.parquet"
    assert spill.load().to_list() == texts.to_list()
    assert spill.slice(5, 3).to_list() == texts.slice(5, 3).to_list()
    assert len(spill) == 20


def test_text_bytes_counts_utf8_bytes():
    assert text_bytes(pl.Series(["ab", "\u00e9", None, "\U0001f600"])) == 2 + 2 + 4
    assert text_bytes(pl.Series([], dtype=pl.String)) == 0


def test_default_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PROVENANCE_SPILL_DIR", raising=False)
    assert default_folder() is None
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", str(tmp_path))
    assert default_folder() == tmp_path
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", "")
    assert default_folder() is None


def test_remove_deletes_the_spill_folder(spilled: TextSpill):
    folder = spilled.path.parent
    assert folder.exists()
    rows = TextRows(spilled, np.array([0]))
    spilled.remove()
    assert not folder.exists()
    # A worker that cannot see the spill (another machine) gets a line saying what to set.
    with pytest.raises(ProvenanceError, match="PROVENANCE_SPILL_DIR"):
        rows.read()


def _corpus(tmp_path: Path, factory, dated: bool) -> Path:
    """Clusters, singletons, a too-short text, an empty one and a duplicate id: every row-mapping case."""
    rows = []
    for story in range(4):
        base = factory.make_article(story)
        versions = [base, factory.truncate(base, 0.6), factory.spin(base, 0.3, seed=story), factory.noisy_copy(base)]
        rows += [{"id": f"s{story}-{k}", "text": text} for k, text in enumerate(versions)]
    rows += [{"id": f"single-{k}", "text": factory.make_article(10 + k)} for k in range(3)]
    rows += [{"id": "short", "text": "too few words"}, {"id": "blank", "text": "   "}, {"id": "s0-0", "text": "dup id"}]
    if dated:
        for i, row in enumerate(rows):
            row["published_at"] = f"2024-01-{1 + i % 28:02d}T08:00:00"
    path = tmp_path / ("dated.jsonl" if dated else "corpus.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("dated", [False, True], ids=["word-frequencies", "dates"])
def test_a_spilled_run_writes_the_same_tables(tmp_path: Path, factory, dated: bool):
    corpus = _corpus(tmp_path, factory, dated)
    in_memory = provenance.run([corpus], Config(), out_dir=tmp_path / "memory")
    on_disk = provenance.run([corpus], Config.from_options({"spill_over_mib": 0}), out_dir=tmp_path / "disk")
    # Batches of two documents: link's units wait on disk in many groups, each pair read two groups at a time.
    small = provenance.run([corpus], Config.from_options({"spill_over_mib": 0, "batch_size": 2}), out_dir=tmp_path / "small")
    assert small.info["stages"]["link"]["unit_groups"] > 3
    assert in_memory.info["stages"]["prepare"]["texts_on_disk"] is False
    assert on_disk.info["stages"]["prepare"]["texts_on_disk"] is True
    assert on_disk.rejects.height == 2 + 1  # too short, blank, duplicate id
    assert (on_disk.documents["text"].null_count(), on_disk.documents.height) == (0, 19)
    assert int((on_disk.clusters["size"] > 1).sum()) == 4
    for table in TABLES:
        a = pl.read_parquet(tmp_path / "memory" / f"{table}.parquet")
        b = pl.read_parquet(tmp_path / "disk" / f"{table}.parquet")
        assert a.equals(b), table
        assert a.equals(pl.read_parquet(tmp_path / "small" / f"{table}.parquet")), table


def test_the_spill_folder_is_removed_after_the_run(tmp_path: Path, factory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", str(tmp_path / "spill"))
    provenance.run([_corpus(tmp_path, factory, False)], Config.from_options({"spill_over_mib": 0}), out_dir=tmp_path / "out")
    assert (tmp_path / "spill").is_dir() and not any((tmp_path / "spill").iterdir())


def test_small_corpora_keep_their_texts_in_memory(tmp_path: Path, factory):
    corpus = _corpus(tmp_path, factory, False)
    ingested, _ = ingest_stage([corpus], Config())
    prepared, report = prepare_stage(ingested, Config())
    assert prepared.texts is None and "text" in prepared.documents.columns and "text" in ingested.documents.columns
    # Over the limit, the texts move to disk: out of the ingested frame, into the spill, between the passes.
    ingested, _ = ingest_stage([corpus], Config())
    spilled, report = prepare_stage(ingested, Config.from_options({"spill_over_mib": 0}), spill_folder=tmp_path / "spill")
    assert report.stats["texts_on_disk"] and "text" not in ingested.documents.columns
    assert "text" not in spilled.documents.columns
    assert spilled.texts.load().to_list() == prepared.documents["text"].to_list()
    assert spilled.documents["n_chars"].to_list() == prepared.documents["n_chars"].to_list()
    spilled.texts.remove()
