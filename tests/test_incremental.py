"""Incremental runs against a store: equal to a full run, stable ids, versions, refusals, lock, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import make_article, noisy_copy, spin, truncate
from provenance import incremental, pipeline, store
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError

ROOT = Path(__file__).resolve().parents[1]


def corpus_a() -> dict[str, str]:
    return {
        "s0-origin": make_article(0),
        "s0-spun": spin(make_article(0), 0.3, seed=1),
        "s0-head": truncate(make_article(0), 0.6),
        "s1-first-half": make_article(1, 6),
        "s1-second-half": make_article(1, 6, start=6, headline=False),
        "s1-second-half-copy": noisy_copy(make_article(1, 6, start=6, headline=False)),
        "s2-alone": make_article(2),
        "s3-origin": make_article(3),
        "s3-changing": truncate(make_article(3), 0.7),
    }


def corpus_b() -> dict[str, str]:
    return {
        "s0-head-2": truncate(make_article(0), 0.5),  # joins an existing cluster
        "s1-full": make_article(1),  # holds both halves: merges two stored clusters
        "s4-origin": make_article(4),  # a new cluster
        "s4-spun": spin(make_article(4), 0.25, seed=2),
        "s2-head": truncate(make_article(2), 0.6),  # a singleton grows
        "s3-changing": truncate(make_article(5), 0.8),  # same id, other text: a new version
    }


def write_jsonl(path: Path, docs: dict[str, str]) -> Path:
    pl.DataFrame({"id": list(docs), "text": list(docs.values())}).write_ndjson(path)
    return path


def canonical(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Documents and edges with cluster ids replaced by the origin's doc_id (ids may differ by history)."""
    docs = pl.read_parquet(out / "documents.parquet")
    origin = docs.filter("is_origin").select("cluster_id", pl.col("doc_id").alias("origin"))
    docs = docs.join(origin, on="cluster_id").select(
        "doc_id", "origin", "parent_id", "depth", "completeness", "content_hash", "n_tokens", "text"
    ).sort("doc_id")
    edges = pl.read_parquet(out / "edges.parquet").drop("cluster_id").sort("child_id")
    return docs, edges


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = write_jsonl(tmp_path / "a.jsonl", corpus_a())
    b = write_jsonl(tmp_path / "b.jsonl", corpus_b())
    both = write_jsonl(tmp_path / "ab.jsonl", {**corpus_a(), **corpus_b()})
    return a, b, both


def test_a_then_b_equals_a_full_run_on_a_and_b(tmp_path: Path, inputs) -> None:
    a, b, both = inputs
    pipeline.run([both], tmp_path / "full")
    incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    first = pl.read_parquet(tmp_path / "out" / "documents.parquet")
    incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")
    full_docs, full_edges = canonical(tmp_path / "full")
    inc_docs, inc_edges = canonical(tmp_path / "out")
    assert inc_docs.equals(full_docs)
    assert inc_edges.select(full_edges.columns).equals(full_edges)
    assert pl.read_parquet(tmp_path / "full" / "clusters.parquet").height == pl.read_parquet(tmp_path / "out" / "clusters.parquet").height

    # The corpus does what the test is about: B joined, created and merged clusters.
    second = pl.read_parquet(tmp_path / "out" / "documents.parquet")
    cid = dict(zip(second["doc_id"], second["cluster_id"]))
    old = dict(zip(first["doc_id"], first["cluster_id"]))
    assert old["s1-first-half"] != old["s1-second-half"]
    assert cid["s1-first-half"] == cid["s1-second-half"] == cid["s1-full"]
    assert cid["s0-head-2"] == cid["s0-origin"] == old["s0-origin"]  # joined: the id is kept
    assert cid["s4-spun"] == cid["s4-origin"]
    history = pl.read_parquet(tmp_path / "out" / "cluster_history.parquet")
    merged = history.filter(pl.col("event") == "merged", pl.col("generation") == 2)
    # The larger stored cluster (the second half and its copy) keeps its id; the other is merged into it.
    assert merged.select("cluster_id", "other_cluster_id").rows() == [(old["s1-second-half"], old["s1-first-half"])]
    assert cid["s1-full"] == old["s1-second-half"]


def test_same_input_again_changes_nothing(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / store.MANIFEST).read_text())
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    result = incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")
    assert json.loads((tmp_path / "store" / store.MANIFEST).read_text()) == manifest
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert result.info["store"]["generation"] == 2


def test_changed_document_is_a_new_version_with_history(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")
    versions = pl.read_parquet(tmp_path / "out" / "document_versions.parquet").filter(pl.col("doc_id") == "s3-changing")
    assert versions["version"].to_list() == [1, 2]
    assert versions["superseded_generation"].to_list() == [2, None]
    assert versions["text"][0] == truncate(make_article(3), 0.7)  # the old text is kept
    docs = pl.read_parquet(tmp_path / "out" / "documents.parquet")
    assert docs.filter(pl.col("doc_id") == "s3-changing")["text"][0] == truncate(make_article(5), 0.8)
    assert docs["doc_id"].n_unique() == docs.height


def test_ids_of_untouched_clusters_survive(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    first = incremental.run_with_store([a], tmp_path / "out", tmp_path / "store").documents
    second = incremental.run_with_store([b], tmp_path / "out", tmp_path / "store").documents
    before = dict(zip(first["doc_id"], first["cluster_id"]))
    after = dict(zip(second["doc_id"], second["cluster_id"]))
    assert after["s3-origin"] == before["s3-origin"]
    assert after["s2-alone"] == before["s2-alone"]


def test_store_of_another_signature_scheme_is_refused(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    with pytest.raises(ProvenanceError, match=r"signed with scheme .*num_perm=256.*uses .*num_perm=128"):
        incremental.run_with_store([b], tmp_path / "out", tmp_path / "store", PipelineConfig(num_perm=128))
    with pytest.raises(ProvenanceError, match=r"min_containment=0.36 \(now 0.5\)"):
        incremental.run_with_store([b], tmp_path / "out", tmp_path / "store", PipelineConfig(min_containment=0.5))
    manifest = json.loads((tmp_path / "store" / store.MANIFEST).read_text())
    manifest["format_version"] = 99
    (tmp_path / "store" / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ProvenanceError, match="format version 99"):
        incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")


def test_output_folder_with_foreign_files_is_refused(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ProvenanceError, match="did not write"):
        incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_second_run_on_a_locked_store_waits_or_says_who_holds_it(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    with store.locked(tmp_path / "store"):
        with pytest.raises(ProvenanceError, match=rf"in use by pid {os.getpid()} on host .* since"):
            incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    # With --wait it runs once the holder lets go.
    holder_done = threading.Event()

    def hold() -> None:
        with store.locked(tmp_path / "store"):
            holder_done.wait(1.0)

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.2)
    result = incremental.run_with_store([a], tmp_path / "out", tmp_path / "store", wait_seconds=30)
    thread.join()
    assert result.documents.height == len(corpus_a())


def test_cli_on_a_locked_store_exits_with_one_line(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    with store.locked(tmp_path / "store"):
        proc = subprocess.run(
            [sys.executable, "-m", "provenance.cli", "run", str(a), "--out", str(tmp_path / "out"),
             "--store", str(tmp_path / "store"), "--engine", "local"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
    assert proc.returncode == 2
    assert "in use by pid" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


_KILLER = """
import os, signal, sys
from pathlib import Path
from provenance import incremental
step = sys.argv[4]
def hook(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
incremental.run_with_store([Path(sys.argv[1])], Path(sys.argv[2]), Path(sys.argv[3]), after_write=hook)
"""


def _snapshot(out: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(out / f"{name}.parquet") for name in ("documents", "clusters", "edges", "cluster_history")}


def _same(x: dict[str, pl.DataFrame], y: dict[str, pl.DataFrame]) -> bool:
    return all(x[k].equals(y[k]) for k in x)


@pytest.mark.parametrize("step", ["segment", "tables", "history", "outputs", "commit", "publish", "timer"])
def test_killed_run_leaves_old_or_new_tables_and_the_next_run_succeeds(tmp_path: Path, inputs, step: str) -> None:
    a, b, _ = inputs
    # The expected new state, from a run that is not interrupted.
    incremental.run_with_store([a], tmp_path / "ref-out", tmp_path / "ref-store")
    incremental.run_with_store([b], tmp_path / "ref-out", tmp_path / "ref-store")
    new = _snapshot(tmp_path / "ref-out")

    out, store_dir = tmp_path / "out", tmp_path / "store"
    incremental.run_with_store([a], out, store_dir)
    old = _snapshot(out)
    command = [sys.executable, "-c", _KILLER, str(b), str(out), str(store_dir), step]
    if step == "timer":  # a kill at an arbitrary moment of the run
        proc = subprocess.Popen(command, cwd=ROOT)
        time.sleep(4.0)
        proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(timeout=60)
    else:
        returncode = subprocess.run(command, cwd=ROOT, timeout=300).returncode
    assert returncode in (-signal.SIGKILL, 0)
    seen = _snapshot(out)
    assert _same(seen, old) or _same(seen, new)
    if step in ("segment", "tables", "history", "outputs"):
        assert _same(seen, old)  # killed before the commit
    # The next run succeeds and gives the new state.
    incremental.run_with_store([b], out, store_dir)
    assert _same(_snapshot(out), new)
    leftovers = [p.name for p in (store_dir / "segments").iterdir() if p.name.startswith(".")]
    assert leftovers == []
