"""``provenance lookup``: the answer an incremental run would give, without changing the store.

Every equivalence test adds the query to a copy of the store with
``run_with_store`` and compares the query's cluster, parent and origin there
with what the lookup said (hand-made fixtures, never eval labels).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import provenance
from provenance.errors import ProvenanceError
from provenance.store import layout
from provenance.store.lookup import open_store
from provenance.store.run import run_with_store
from tests.fixtures import UNRELATED, make_article, noisy_copy, spin, store_corpus, truncate

ROOT = Path(__file__).resolve().parents[1]


#: Queries, each a case of what a query can do to the store's clusters.
QUERIES = {
    "q-spun": spin(make_article(0), 0.2, seed=7),  # joins a cluster, under its origin
    "q-truncated": truncate(make_article(3), 0.5),  # joins under the truncated copy
    "a-spun-first": spin(make_article(3), 0.2, seed=3),  # sorts before every stored id
    "q-full": make_article(1),  # holds both halves: merges two stored clusters and becomes the origin
    "q-singleton-grows": truncate(make_article(2), 0.6),  # a stored singleton becomes a cluster of two
    "q-half-spun": spin(make_article(1, 6), 0.25, seed=4),
    "q-unrelated": UNRELATED,  # no match
    "q-new-story": make_article(4),  # no match
}


def frame(docs: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(docs), "text": list(docs.values())})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lookup")
    run_with_store(frame(store_corpus()), root / "out", root / "store")
    return root / "store"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("qid", list(QUERIES))
def test_same_cluster_parent_and_origin_as_an_incremental_run(store: Path, tmp_path: Path, qid: str) -> None:
    """The lookup's cluster members, parent and origin are those of adding the text and running incrementally."""
    text = QUERIES[qid]
    got = provenance.lookup(text, store, doc_id=qid)
    shutil.copytree(store, tmp_path / "store")
    run = run_with_store(frame({qid: text}), tmp_path / "out", tmp_path / "store")
    docs = run.documents
    me = docs.filter(pl.col("doc_id") == qid).row(0, named=True)
    cluster = docs.filter(pl.col("cluster_id") == me["cluster_id"])
    stored_members = sorted(set(cluster["doc_id"].to_list()) - {qid})
    origin = cluster.filter("is_origin")["doc_id"][0]
    if not stored_members:
        assert got.status == "no_match", got
        return
    assert got.status == "matched", got
    assert sorted(got.members) == stored_members
    assert got.parent_id == me["parent_id"]
    assert got.origin_id == origin
    assert got.is_origin == (origin == qid)
    assert got.cluster_id == me["cluster_id"]  # a merge keeps the larger stored cluster's id, as the run does
    # The query's edge: the same statistics and confidences as the run's edges table.
    other = got.changes["other_id"]
    edge = run.edges.filter(
        (pl.col("child_id") == qid) & (pl.col("parent_id") == other) if got.relation == "parent"
        else (pl.col("parent_id") == qid) & (pl.col("child_id") == other)
    ).row(0, named=True)
    assert {k: got.changes[k] for k in got.changes if k != "other_id"} == {k: edge[k] for k in got.changes if k != "other_id"}
    assert (got.copy_confidence, got.parent_confidence, got.confidence) == (edge["copy_confidence"], edge["parent_confidence"], edge["confidence"])
    assert len(got.passages) == edge["passages"]


def test_matched_answer_has_confidences_changes_and_passages(store: Path) -> None:
    """A spun copy: parent, copy and parent confidence, the edge's statistics and passages with their texts."""
    got = provenance.lookup(QUERIES["q-spun"], store, doc_id="q-spun")
    assert got.relation == "parent" and got.parent_id == "s0-origin"
    assert 0.9 < got.copy_confidence <= 1.0 and got.parent_confidence is not None
    assert got.changes["change_kind"] == "spin" and got.changes["substituted"] > 0
    assert got.changes["substitution_examples"]
    assert got.passages and all(p.query_text == QUERIES["q-spun"][p.query_start : p.query_end] for p in got.passages)
    origin_text = store_corpus()["s0-origin"]
    assert all(p.other_text == origin_text[p.other_start : p.other_end] for p in got.passages)


def test_query_that_would_be_the_origin_reports_its_child(store: Path) -> None:
    """The full article of two stored halves is their origin: no parent, changes against the member it gave rise to."""
    got = provenance.lookup(QUERIES["q-full"], store, doc_id="q-full")
    assert got.is_origin and got.parent_id is None and got.relation == "child"
    assert got.changes["other_id"] in got.members
    assert len(got.clusters) == 2  # it copies from both stored clusters


def test_stored_text_is_answered_with_its_row(store: Path) -> None:
    """A text already in the store (same normalised tokens) is ``stored``, with that document's cluster and origin."""
    got = provenance.lookup(noisy_copy(store_corpus()["s0-spun"]), store, doc_id="x")
    assert got.status == "stored" and got.stored_id == "s0-spun"
    assert got.origin_id == "s0-origin" and got.parent_id == "s0-origin"


@pytest.mark.parametrize("text, reason", [("", "empty_text"), ("too few words here", "too_short")])
def test_empty_and_short_texts_are_rejected(store: Path, text: str, reason: str) -> None:
    got = provenance.lookup(text, store)
    assert got.status == "rejected" and got.reason == reason


def test_never_changes_the_store_works_read_only_and_under_the_lock(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes and mtimes unchanged; a read-only copy answers; so does a store another run holds the LOCK of.

    As root a read-only folder is still writable, so there Python's file opening refuses writes instead.
    """
    before = snapshot(store)
    expected = provenance.lookup(QUERIES["q-truncated"], store, doc_id="q").to_dict()
    assert provenance.lookup(QUERIES["q-full"], store, doc_id="q-full").status == "matched"
    assert snapshot(store) == before
    with layout.locked(store):  # what a run holds while it writes
        assert provenance.lookup(QUERIES["q-truncated"], store, doc_id="q").to_dict() == expected
    frozen = tmp_path / "frozen"
    shutil.copytree(store, frozen)
    paths = sorted(frozen.rglob("*"), reverse=True) + [frozen]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        if os.access(frozen, os.W_OK):  # root: make any write through Python fail
            real_open, real_os_open = open, os.open

            def no_write_open(file, mode="r", *args, **kwargs):
                assert not any(c in mode for c in "wax+"), f"lookup opened {file} with mode {mode}"
                return real_open(file, mode, *args, **kwargs)

            def no_write_os_open(path, flags, *args, **kwargs):
                assert not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT), f"lookup opened {path} for writing"
                return real_os_open(path, flags, *args, **kwargs)

            monkeypatch.setattr("builtins.open", no_write_open)
            monkeypatch.setattr(os, "open", no_write_os_open)
        assert provenance.lookup(QUERIES["q-truncated"], frozen, doc_id="q").to_dict() == expected
    finally:
        monkeypatch.undo()
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_a_batch_answers_each_query_alone(store: Path, tmp_path: Path) -> None:
    """A JSONL of queries gives one answer per row, each as if looked up alone; rejects come last."""
    queries = {k: QUERIES[k] for k in ("q-spun", "q-unrelated", "q-full")} | {"q-short": "three words only"}
    path = tmp_path / "queries.jsonl"
    frame(queries).write_ndjson(path)
    opened = open_store(store)
    got = opened.lookup_source([path])
    assert [r.query_id for r in got] == ["q-full", "q-spun", "q-unrelated", "q-short"]
    assert [r.status for r in got] == ["matched", "matched", "no_match", "rejected"]
    alone = opened.lookup_text(QUERIES["q-spun"], "q-spun")
    assert got[1].to_dict() == alone.to_dict()


def test_a_store_runs_output_folder_looks_up_against_its_store(store: Path) -> None:
    """``--out`` of a store run links into the store, which keeps the index: the same answer as the store's."""
    via_out = provenance.lookup(QUERIES["q-spun"], store.parent / "out", doc_id="q")
    assert via_out.to_dict() == provenance.lookup(QUERIES["q-spun"], store, doc_id="q").to_dict()
    assert via_out.status == "matched"


def test_refuses_what_is_not_a_store_with_an_index(store: Path, tmp_path: Path) -> None:
    """A plain run's output folder, a folder that is no store, and a store written without the index: one-line errors."""
    provenance.run(frame(store_corpus()), out_dir=tmp_path / "plain")
    with pytest.raises(ProvenanceError, match="output folder of a run without --store"):
        open_store(tmp_path / "plain")
    with pytest.raises(ProvenanceError, match="not a provenance store"):
        open_store(tmp_path)
    old = tmp_path / "old"
    shutil.copytree(store, old)
    manifest = json.loads((old / layout.MANIFEST).read_text())
    del manifest["lookup_index"]
    (old / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ProvenanceError, match="run it once more"):
        open_store(old)


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provenance_cli.main", "lookup", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "160"})


def test_cli_exit_status_formats_and_help(store: Path, tmp_path: Path) -> None:
    """0 on a match, 1 on none, 2 on a mistake (one line); JSON for scripts; --help shows an example."""
    query = tmp_path / "suspicious.txt"
    query.write_text(QUERIES["q-spun"])
    done = cli(str(query), "--store", str(store), "--format", "json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["query_id"] == "suspicious" and answer["parent_id"] == "s0-origin"
    table = cli("-", "--store", str(store), stdin=QUERIES["q-truncated"])
    assert table.returncode == 0 and "s3-origin" in table.stdout and "evidence passages" in table.stdout
    assert cli("-", "--store", str(store), stdin=UNRELATED).returncode == 1
    for args in ([str(tmp_path / "missing.txt"), "--store", str(store)], [str(query), "--store", str(tmp_path)],
                 [str(query), "--store", str(store), "--format", "csv"]):
        bad = cli(*args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr, bad.stderr
    help_text = cli("--help").stdout
    assert "provenance lookup suspicious.txt --store" in help_text


def test_lookup_benchmark_holds_its_queries_out_of_the_store(tmp_path: Path) -> None:
    """``benchmarks.lookup`` at a small size: queries are not in the store, every one is answered, figures written."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.lookup", "--docs", "400", "--queries", "8", "--work", str(tmp_path),
                           "--out", str(tmp_path / "results")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "results" / "lookup-400.json").read_text())
    assert report["queries"] == 8 and report["docs_in_store"] == 392
    assert sum(report["statuses"].values()) == 8
    stored = pl.read_parquet(tmp_path / "lookup-400" / "stored.parquet")
    assert stored.height == 392 and not {"true_cluster", "true_parent", "edit"} & set(stored.columns)
    assert set(report["query_seconds"]) == {"median", "p95", "max", "mean"}
    assert report["store_run_peak_rss_gib"] > 0
    assert "per query, store open" in (tmp_path / "results" / "lookup-400.md").read_text()
