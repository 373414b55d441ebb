"""provenance.store: incremental runs equal a full run, stable ids and their history, versions, compaction, refusals, lock, crashes.

Every equivalence test compares a store fed in several runs with one
from-scratch run (``provenance.run``) over the final version of every
document the store has seen.  Cluster ids may differ between the two (a
store keeps ids across runs), so tables are compared with each cluster named
by its origin's ``doc_id`` (:func:`canonical`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import provenance
from provenance import chain
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.ingest import ingest_stage
from provenance.kernels import doc_keys
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import prepare_stage
from provenance.store import layout, plan
from provenance.store.plan import PAIRS
from provenance.store.run import run_with_store
from provenance.tables import cluster_id_of
from provenance.prepare import normalize
from provenance.trace import derivation, reprice
from provenance.trace.stage import CorpusFacts
from tests.fixtures import UNRELATED, light_edits, make_article, make_sets, near_copy, noisy_copy, spin, store_corpus, truncate

ROOT = Path(__file__).resolve().parents[1]


def corpus_b() -> dict[str, str]:
    return {
        "s0-head-2": truncate(make_article(0), 0.5),  # joins an existing cluster
        "s1-full": make_article(1),  # holds both halves: merges two stored clusters, and becomes the origin
        "s4-origin": make_article(4),  # a new cluster
        "s4-spun": spin(make_article(4), 0.25, seed=2),
        "s2-head": truncate(make_article(2), 0.6),  # a singleton grows
        "s3-changing": truncate(make_article(5), 0.8),  # same id, other text: a new version, in a new cluster
    }


def frame(docs: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(docs), "text": list(docs.values())})


def write_jsonl(path: Path, docs: dict[str, str]) -> Path:
    frame(docs).write_ndjson(path)
    return path


def canonical(tables: dict[str, pl.DataFrame] | Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Documents, edges and clusters with cluster ids replaced by the origin's doc_id (ids may differ by history)."""
    if isinstance(tables, Path):
        tables = {n: pl.read_parquet(tables / f"{n}.parquet") for n in ("documents", "edges", "clusters")}
    docs = tables["documents"]
    origin = docs.filter("is_origin").select("cluster_id", pl.col("doc_id").alias("origin"))
    out_docs = docs.join(origin, on="cluster_id").select(
        "doc_id", "origin", "is_origin", "parent_id", "depth", "completeness", "title", "content_hash", "n_tokens", "n_chars", "text",
    ).sort("doc_id")
    edges = tables["edges"].join(origin, on="cluster_id").drop("cluster_id").sort("child_id")
    clusters = tables["clusters"].drop("cluster_id").sort("origin_id")
    return out_docs, edges, clusters


def assert_equal_to_a_full_run(store_out: Path, everything: dict[str, str], tmp_path: Path, config: Config | None = None) -> None:
    full = provenance.run(frame(everything), config)
    store = canonical(store_out)
    for name, (a, b) in zip(("documents", "edges", "clusters"), zip(store, canonical(full.frames()))):
        assert a.select(b.columns).equals(b), name
    assert pl.read_parquet(store_out / "documents.parquet")["doc_id"].n_unique() == len(everything)


def manifest(store_dir: Path) -> dict:
    return json.loads((store_dir / layout.MANIFEST).read_text())


def history(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "cluster_history.parquet")


def ids(result) -> dict[str, str]:
    return dict(zip(result.documents["doc_id"].to_list(), result.documents["cluster_id"].to_list()))


def assert_live_signatures_are_a_fresh_prepares(store_dir: Path, everything: dict[str, str], config: Config | None = None) -> None:
    """What the store holds (newest row of each document, over all segments) is what a fresh prepare makes."""
    config = config or Config()
    live = layout.read_live(store_dir, layout.read_manifest(store_dir, config), config.prepare.num_perm)
    prepared, _ = prepare_stage(ingest_stage(frame(everything), config)[0], config)
    assert live.documents["doc_id"].equals(prepared.documents["doc_id"])
    assert live.documents["content_hash"].equals(prepared.documents["content_hash"])
    assert live.documents["text"].equals(prepared.documents["text"])
    alone = ~live.documents["content_hash"].is_duplicated().to_numpy()  # exact copies share the first's in a run
    for view in ("words", "anchors"):
        np.testing.assert_array_equal(live.signatures[view][alone], prepared.signatures[view][alone])
    np.testing.assert_array_equal(live.ragged["words"].take(np.flatnonzero(alone)).hashes,
                                  prepared.views["words"].take(np.flatnonzero(alone)).hashes)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = write_jsonl(tmp_path / "a.jsonl", store_corpus())
    b = write_jsonl(tmp_path / "b.jsonl", corpus_b())
    both = write_jsonl(tmp_path / "ab.jsonl", {**store_corpus(), **corpus_b()})
    return a, b, both


# ---------------------------------------------------------------------------- equal to a full run


def test_a_then_b_equals_a_full_run_on_a_and_b(tmp_path: Path, inputs) -> None:
    a, b, both = inputs
    full = provenance.run([both], out_dir=tmp_path / "full")
    first = run_with_store([a], tmp_path / "out", tmp_path / "store")
    second = run_with_store([b], tmp_path / "out", tmp_path / "store")
    full_docs, full_edges, full_clusters = canonical(tmp_path / "full")
    inc_docs, inc_edges, inc_clusters = canonical(tmp_path / "out")
    assert inc_docs.select(full_docs.columns).equals(full_docs)
    assert inc_edges.select(full_edges.columns).equals(full_edges)
    assert inc_clusters.equals(full_clusters)
    assert full.clusters.height == second.clusters.height
    assert_live_signatures_are_a_fresh_prepares(tmp_path / "store", {**store_corpus(), **corpus_b()})
    # The result returned is the one published.
    for name in ("documents", "clusters", "edges"):
        assert pl.read_parquet(tmp_path / "out" / f"{name}.parquet").equals(second.frames()[name]), name
    assert (tmp_path / "out").is_symlink()
    assert (tmp_path / "out").resolve() == (tmp_path / "store" / "gen-000002" / "out").resolve()

    # The corpus does what the test is about: B joined, created and merged clusters.
    old, cid = ids(first), ids(second)
    assert old["s1-first-half"] != old["s1-second-half"]
    assert cid["s1-first-half"] == cid["s1-second-half"] == cid["s1-full"]
    assert cid["s0-head-2"] == cid["s0-origin"] == old["s0-origin"]  # joined: the id is kept
    assert cid["s2-head"] == cid["s2-alone"] == old["s2-alone"]
    assert cid["s4-spun"] == cid["s4-origin"] == cluster_id_of("s4-origin")  # a new cluster has a from-scratch id
    stages = second.info["stages"]
    assert stages["prepare"]["stored"] == 9 and stages["prepare"]["new"] == 5 and stages["prepare"]["changed"] == 1
    assert second.info["store"]["generation"] == 2


def test_every_cluster_history_event(tmp_path: Path) -> None:
    """created (runs 1-3), merged and origin_changed (run 2), split and origin_changed (run 3), each as stable_ids decides."""
    out, store_dir = tmp_path / "out", tmp_path / "store"
    first = run_with_store(frame(store_corpus()), out, store_dir)
    g1 = history(out)
    assert g1.filter(pl.col("generation") == 1).select("event", "cluster_id", "other_cluster_id", "origin_id", "size").sort("origin_id").rows() == [
        ("created", cluster_id_of("s0-origin"), None, "s0-origin", 3),
        ("created", cluster_id_of("s1-first-half"), None, "s1-first-half", 1),
        ("created", cluster_id_of("s1-second-half"), None, "s1-second-half", 2),
        ("created", cluster_id_of("s2-alone"), None, "s2-alone", 1),
        ("created", cluster_id_of("s3-origin"), None, "s3-origin", 2),
    ]
    assert set(ids(first).values()) == set(g1["cluster_id"].to_list())

    second = run_with_store(frame(corpus_b()), out, store_dir)
    halves = ids(first)["s1-second-half"]  # the larger stored cluster of the two halves keeps its id
    assert history(out).filter(pl.col("generation") == 2).select("event", "cluster_id", "other_cluster_id", "origin_id", "size").rows() == [
        ("created", cluster_id_of("s3-changing"), None, "s3-changing", 1),
        ("merged", halves, ids(first)["s1-first-half"], "s1-full", 4),
        ("origin_changed", halves, None, "s1-full", 4),
        ("created", cluster_id_of("s4-origin"), None, "s4-origin", 2),
    ]
    assert ids(second)["s1-full"] == halves
    assert history(out).filter(pl.col("generation") == 1).equals(g1)  # earlier events are kept as they were

    # Run 3: the document joining the halves becomes another text, so the cluster splits again.
    third = run_with_store(frame({"s1-full": UNRELATED}), out, store_dir)
    events = history(out).filter(pl.col("generation") == 3).select("event", "cluster_id", "other_cluster_id", "origin_id", "size").rows()
    # The first half's from-scratch id is free again (merged away in run 2), so it is its id once more.
    assert sorted(events) == sorted([
        ("created", cluster_id_of("s1-full"), None, "s1-full", 1),
        ("origin_changed", halves, None, "s1-second-half", 2),
        ("split", cluster_id_of("s1-first-half"), halves, "s1-first-half", 1),
    ])
    now = ids(third)
    assert now["s1-second-half"] == now["s1-second-half-copy"] == halves
    assert now["s1-first-half"] == cluster_id_of("s1-first-half") and now["s1-full"] == cluster_id_of("s1-full")
    assert history(out).schema == provenance.schemas.CLUSTER_HISTORY
    assert_equal_to_a_full_run(out, {**store_corpus(), **corpus_b(), "s1-full": UNRELATED}, tmp_path)


def test_same_input_again_changes_nothing(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    run_with_store([b], tmp_path / "out", tmp_path / "store")
    before_manifest = manifest(tmp_path / "store")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    hooks_seen: list[str] = []

    class Hooks(chain.Hooks):
        def reported(self, report):
            hooks_seen.append(report.name)

    result = run_with_store([b], tmp_path / "out", tmp_path / "store", hooks=Hooks())
    assert manifest(tmp_path / "store") == before_manifest
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert result.info["store"]["generation"] == 2
    assert hooks_seen == ["ingest", "prepare"]  # nothing to link, trace or write


def test_changed_document_is_a_new_version_with_history(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    run_with_store([b], tmp_path / "out", tmp_path / "store")
    versions = pl.read_parquet(tmp_path / "out" / "document_versions.parquet")
    changing = versions.filter(pl.col("doc_id") == "s3-changing")
    assert changing["version"].to_list() == [1, 2]
    assert changing["first_generation"].to_list() == [1, 2] and changing["superseded_generation"].to_list() == [2, None]
    assert changing["text"].to_list() == [truncate(make_article(3), 0.7), None]  # the old text is kept
    docs = pl.read_parquet(tmp_path / "out" / "documents.parquet")
    cid = dict(zip(docs["doc_id"].to_list(), docs["cluster_id"].to_list()))
    # The old version keeps the cluster it had (with s3-origin); the current one follows its document.
    assert changing["cluster_id"].to_list() == [cid["s3-origin"], cid["s3-changing"]]
    assert docs.filter(pl.col("doc_id") == "s3-changing")["text"][0] == truncate(make_article(5), 0.8)
    assert versions.filter(pl.col("doc_id") != "s3-changing")["version"].unique().to_list() == [1]
    assert versions.height == len({**store_corpus(), **corpus_b()}) + 1
    assert versions.schema == provenance.schemas.DOCUMENT_VERSIONS


def test_texts_on_disk_and_trace_in_small_batches_give_the_same_store_and_tables(tmp_path: Path, inputs) -> None:
    """``spill_over_mib=0`` puts every text on disk (the segment is written first) and ``batch_size=2`` cuts trace into many batches."""
    a, b, _ = inputs
    low = Config().replace(spill_over_mib=0, batch_size=2)
    for name, config in (("memory", Config()), ("disk", low)):
        run_with_store([a], tmp_path / name, tmp_path / f"store-{name}", config)
        last = run_with_store([b], tmp_path / name, tmp_path / f"store-{name}", config)
    assert last.info["stages"]["prepare"]["texts_on_disk"] is True
    for table in ("documents", "clusters", "edges", "evidence", "document_versions", "cluster_history"):
        memory, disk = (pl.read_parquet(tmp_path / name / f"{table}.parquet") for name in ("memory", "disk"))
        assert disk.equals(memory), table
    assert_live_signatures_are_a_fresh_prepares(tmp_path / "store-disk", {**store_corpus(), **corpus_b()})
    queried = {name: provenance.open_store(tmp_path / f"store-{name}").lookup_text(truncate(make_article(1), 0.6), "q").status
               for name in ("memory", "disk")}
    assert queried["disk"] == queried["memory"] == "matched"


def test_ids_of_untouched_clusters_survive(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    before = ids(run_with_store([a], tmp_path / "out", tmp_path / "store"))
    after = ids(run_with_store([b], tmp_path / "out", tmp_path / "store"))
    assert after["s3-origin"] == before["s3-origin"] and after["s0-spun"] == before["s0-spun"]


def test_compaction_when_most_stored_rows_are_stale_gives_the_tables_of_a_full_run(tmp_path: Path) -> None:
    """Nine documents, then changed versions of five of them twice: the third run holds 19 rows for 9 live ones."""
    out, store_dir = tmp_path / "out", tmp_path / "store"
    current = store_corpus()
    run_with_store(frame(current), out, store_dir)
    edited = ["s0-head", "s1-first-half", "s2-alone", "s3-origin", "s3-changing"]
    segments, texts = [], [current["s2-alone"]]
    for k in (1, 2):
        update = {d: current[d] + f"\nCorrection {k} to {d.replace('-', ' ')}: the desk fixed a date on page {k + 1}.\n" for d in edited}
        current = {**current, **update}
        texts.append(current["s2-alone"])
        run_with_store(frame(update), out, store_dir)
        segments.append(manifest(store_dir)["segments"])
        assert_equal_to_a_full_run(out, current, tmp_path)
    assert segments == [[1, 2], [3]]  # 14 rows for 9 live is kept; 19 rows for 9 live is compacted into one segment
    assert sorted({p.name.split(".")[0] for p in (store_dir / "segments").glob("*.parquet")}) == ["000003"]
    assert_live_signatures_are_a_fresh_prepares(store_dir, current)
    assert layout.stored_rows(store_dir, layout.read_manifest(store_dir, Config())) == 9
    versions = pl.read_parquet(out / "document_versions.parquet")
    assert versions.filter(pl.col("doc_id") == "s2-alone")["text"].to_list() == [texts[0], texts[1], None]  # kept through compaction
    assert versions.filter(pl.col("doc_id") == "s2-alone")["superseded_generation"].to_list() == [2, 3, None]
    # A store run after the compaction still extends it correctly.
    run_with_store(frame(corpus_b()), out, store_dir)
    assert manifest(store_dir)["segments"] == [3, 4]
    assert sorted(p.name for p in store_dir.glob("gen-*")) == ["gen-000003", "gen-000004"]  # the previous generation is kept
    assert_equal_to_a_full_run(out, {**current, **corpus_b()}, tmp_path)


def test_a_short_line_that_becomes_boilerplate_re_prepares_the_stored_documents_holding_it(tmp_path: Path) -> None:
    line = "\nSubscribe to the Portvale Herald for daily news\n"
    out, store_dir = tmp_path / "out", tmp_path / "store"
    first = {"p0": make_article(0) + line, "p1": make_article(1) + line, "p3": make_article(3), "p0-head": truncate(make_article(0), 0.6) + line}
    one = run_with_store(frame(first), out, store_dir)
    assert one.info["stages"]["prepare"]["boilerplate_reprepared"] == 0  # in three documents: boilerplate from the start
    second = {"p2": make_article(2) + line}
    two = run_with_store(frame(second), out, store_dir)
    assert two.info["stages"]["prepare"]["boilerplate_reprepared"] == 0  # it was boilerplate already
    assert_equal_to_a_full_run(out, {**first, **second}, tmp_path)

    # Below the threshold, then above it: the stored documents holding the line are prepared again.
    out2, store2 = tmp_path / "out2", tmp_path / "store2"
    a = {"q0": make_article(0) + line, "q1": make_article(1) + line, "q3": make_article(3)}
    run_with_store(frame(a), out2, store2)
    b = {"q2": make_article(2) + line}
    result = run_with_store(frame(b), out2, store2)
    assert result.info["stages"]["prepare"]["boilerplate_reprepared"] == 2
    assert result.info["stages"]["prepare"]["prepared"] == 3
    assert_equal_to_a_full_run(out2, {**a, **b}, tmp_path)
    assert_live_signatures_are_a_fresh_prepares(store2, {**a, **b})
    # ...and back: the line is in two documents again once q2 loses it.
    c = {"q2": make_article(2)}
    result = run_with_store(frame(c), out2, store2)
    assert result.info["stages"]["prepare"]["boilerplate_reprepared"] == 2
    assert_equal_to_a_full_run(out2, {**a, **c}, tmp_path)
    assert_live_signatures_are_a_fresh_prepares(store2, {**a, **c})


def test_a_store_equals_a_full_run_when_frequent_shingles_flip(tmp_path: Path) -> None:
    config = Config.from_options({"frequent_min_docs": 3})  # small corpora: shingles in 3 documents count as frequent
    run_with_store(frame(store_corpus()), tmp_path / "out", tmp_path / "store", config)
    second = run_with_store(frame(corpus_b()), tmp_path / "out", tmp_path / "store", config)
    everything = {**store_corpus(), **corpus_b()}
    assert_equal_to_a_full_run(tmp_path / "out", everything, tmp_path, config)
    # What the test is about: stored documents were only signed anew (the others holding a flipped
    # boilerplate line, the story-0 headline now in four documents, were prepared again).
    prepare = second.info["stages"]["prepare"]
    assert prepare["frequent_resigned"] >= 1
    assert prepare["prepared"] == 6 + prepare["boilerplate_reprepared"] + prepare["frequent_resigned"]
    assert_live_signatures_are_a_fresh_prepares(tmp_path / "store", everything, config)


def test_documents_holding_shingles_that_stop_being_frequent_are_signed_anew(tmp_path: Path) -> None:
    """A paragraph in three documents is frequent (min_docs 3); once one of them loses it, the other two are signed anew."""
    config = Config.from_options({"frequent_min_docs": 3})
    shared = "\n\n" + " ".join(make_article(0, 2, start=4, headline=False).split()) + "\n"
    first = {"x": make_article(1) + shared, "y": make_article(2) + shared, "z": make_article(3) + shared, "w": make_article(4)}
    one = run_with_store(frame(first), tmp_path / "out", tmp_path / "store", config)
    assert one.info["stages"]["prepare"]["frequent_word_shingles"] >= 20  # the paragraph's bigrams
    second = {"z": make_article(3)}
    two = run_with_store(frame(second), tmp_path / "out", tmp_path / "store", config)
    prepare = two.info["stages"]["prepare"]
    assert prepare["frequent_word_shingles"] == 0
    assert (prepare["frequent_resigned"], prepare["boilerplate_reprepared"], prepare["prepared"]) == (2, 0, 3)
    assert_live_signatures_are_a_fresh_prepares(tmp_path / "store", {**first, **second}, config)
    assert_equal_to_a_full_run(tmp_path / "out", {**first, **second}, tmp_path, config)
    # ...and back: z holds the paragraph again, so x and y are signed around it once more.
    three = run_with_store(frame(first), tmp_path / "out", tmp_path / "store", config)
    assert three.info["stages"]["prepare"]["frequent_resigned"] == 2
    assert_live_signatures_are_a_fresh_prepares(tmp_path / "store", first, config)


def test_a_new_first_copy_of_stored_exact_duplicates_relinks_them(tmp_path: Path) -> None:
    """Exact copies share the first copy's anchors: a new first copy (by id) changes the anchors of the stored ones."""
    first = {
        "k-loud": noisy_copy(make_article(1)),  # ALL CAPS: its anchors (names, numbers) are not the plain text's
        "k-plain": make_article(1),
        "k-head": truncate(make_article(1), 0.45),
        "k-spun": spin(truncate(make_article(1), 0.7), 0.3, seed=4),
        "other": make_article(2),
    }
    run_with_store(frame(first), tmp_path / "out", tmp_path / "store")
    second = {"a-plain": make_article(1)}  # sorts first: the group's anchors are now the plain text's
    result = run_with_store(frame(second), tmp_path / "out", tmp_path / "store")
    assert result.info["stages"]["link"]["relinked_documents"] == 3  # the new copy and the two stored ones
    assert_equal_to_a_full_run(tmp_path / "out", {**first, **second}, tmp_path)


def test_a_store_takes_a_frame_and_files_alike(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out1", tmp_path / "store1")
    run_with_store([b], tmp_path / "out1", tmp_path / "store1")
    run_with_store(frame(store_corpus()), tmp_path / "out2", tmp_path / "store2")
    run_with_store(frame(corpus_b()), tmp_path / "out2", tmp_path / "store2")
    for x, y in zip(canonical(tmp_path / "out1"), canonical(tmp_path / "out2")):
        assert x.equals(y)


def test_a_store_run_goes_through_the_chain_and_its_hooks(tmp_path: Path, inputs) -> None:
    """The report hook sees the new generation's tables before they are committed or published."""
    a, b, _ = inputs
    events: list[tuple] = []
    store_dir, out = tmp_path / "store", tmp_path / "out"

    class Hooks(chain.Hooks):
        def begin(self, store_plan):
            events.append(("begin", type(store_plan).__name__, store_plan.cacheable))

        def map_batches(self, fn, *iterables):
            events.append(("map", fn.__name__))
            return list(map(fn, *iterables))

        def reported(self, report):
            events.append(("reported", report.name))

        def tables_written(self, folder):
            committed = manifest(store_dir)["generation"] if (store_dir / layout.MANIFEST).exists() else 0
            events.append(("written", Path(folder), sorted(p.name for p in Path(folder).iterdir()), committed, out.exists()))

    run_with_store([a], out, store_dir, hooks=Hooks())
    expected_files = sorted([
        *(f"{n}.parquet" for n in provenance.schemas.TABLES), "cluster_history.parquet", "document_versions.parquet", "run.json",
    ])
    assert events == [
        ("begin", "StorePlan", False), ("reported", "ingest"), ("map", "summarize_batch"), ("map", "shingle_batch"), ("reported", "prepare"),
        ("reported", "link"), ("reported", "trace"),
        ("written", store_dir / "gen-000001" / "out", expected_files, 0, False), ("reported", "write"),
    ]
    events.clear()
    run_with_store([b], out, store_dir, hooks=Hooks())
    assert ("written", store_dir / "gen-000002" / "out", expected_files, 1, True) in events


# ---------------------------------------------------------------------------- refusals


def test_store_of_another_signature_scheme_is_refused(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    before = manifest(tmp_path / "store")
    with pytest.raises(ProvenanceError, match=r"signed with scheme .*num_perm=256.*uses .*num_perm=128") as err:
        run_with_store([b], tmp_path / "out", tmp_path / "store", Config.from_options({"num_perm": 128}))
    assert "\n" not in str(err.value)
    assert manifest(tmp_path / "store") == before


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"min_containment": 0.5}, r"min_containment=0.36 \(now 0.5\)"),
        ({"cluster_founders": 5}, r"cluster_founders=3 \(now 5\)"),
        ({"max_lemma": 2, "spin_min_rate": 0.1}, r"max_lemma=3 \(now 2\), spin_min_rate=0.08 \(now 0.1\)"),
    ],
)
def test_store_built_under_another_fingerprint_is_refused_in_one_line(tmp_path: Path, inputs, options: dict, shown: str) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    before = manifest(tmp_path / "store")
    published = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    fingerprint = before["config_fingerprint"][:12]
    expected = rf"^store .* was built under config fingerprint {fingerprint} \({shown}\); pass the same options or start a new --store$"
    with pytest.raises(ProvenanceError, match=expected) as err:
        run_with_store([b], tmp_path / "out", tmp_path / "store", Config.from_options(options))
    assert "\n" not in str(err.value)
    assert manifest(tmp_path / "store") == before
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == published


def test_options_that_do_not_change_results_extend_the_store(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    result = run_with_store([b], tmp_path / "out", tmp_path / "store", Config.from_options({"batch_size": 2, "title_chars": 40}))
    assert result.info["store"]["generation"] == 2
    assert manifest(tmp_path / "store")["config_fingerprint"] == Config().fingerprint()
    assert manifest(tmp_path / "store")["options"] == Config().options(results_only=True)


def test_store_of_another_format_or_a_foreign_folder_is_refused(tmp_path: Path, inputs) -> None:
    a, b, _ = inputs
    run_with_store([a], tmp_path / "out", tmp_path / "store")
    data = manifest(tmp_path / "store")
    data["format_version"] = 99
    (tmp_path / "store" / layout.MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ProvenanceError, match=rf"^store .* has format version 99, this provenance reads version {layout.FORMAT_VERSION}"):
        run_with_store([b], tmp_path / "out", tmp_path / "store")
    (tmp_path / "store" / layout.MANIFEST).write_text("{ torn")
    with pytest.raises(ProvenanceError, match=r"^cannot read .*MANIFEST.json"):
        run_with_store([b], tmp_path / "out", tmp_path / "store")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ProvenanceError, match=r"is not a provenance store \(no MANIFEST.json\) and is not empty"):
        run_with_store([a], tmp_path / "out2", tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["LOCK", "thesis.tex"]


def test_output_folder_with_foreign_files_is_refused(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ProvenanceError, match="did not write"):
        run_with_store([a], tmp_path / "out", tmp_path / "store")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "store").exists()


def test_an_output_folder_of_earlier_outputs_becomes_the_link(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    provenance.run([a], out_dir=tmp_path / "out")  # a plain run's outputs
    result = run_with_store([a], tmp_path / "out", tmp_path / "store")
    assert (tmp_path / "out").is_symlink()
    assert pl.read_parquet(tmp_path / "out" / "documents.parquet").equals(result.documents)


def test_nothing_accepted_into_a_new_store_is_an_empty_generation_with_the_rejects(tmp_path: Path) -> None:
    rejected = pl.DataFrame({"id": ["blank", "short"], "text": ["   ", "Too short to keep."]})
    result = run_with_store(rejected, tmp_path / "out", tmp_path / "store")
    assert result.documents.height == 0 and sorted(result.rejects["reason"].to_list()) == ["empty_text", "too_short"]
    assert manifest(tmp_path / "store")["generation"] == 1
    assert pl.read_parquet(tmp_path / "out" / "rejects.parquet").height == 2
    assert json.loads((tmp_path / "out" / "run.json").read_text())["counts"]["rejected"] == 2


def test_new_rejects_against_a_stored_corpus_are_published_and_the_same_ones_again_are_not(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    out, store = tmp_path / "out", tmp_path / "store"
    stored = run_with_store([a], out, store)
    rejected = pl.DataFrame({"id": ["s0-origin", "blank"], "text": ["Too short now.", ""]})
    result = run_with_store(rejected, out, store)
    assert sorted(result.rejects["reason"].to_list()) == ["empty_text", "too_short"]
    assert pl.read_parquet(out / "rejects.parquet").height == 2 and manifest(store)["generation"] == 2
    assert pl.read_parquet(out / "documents.parquet").height == stored.documents.height  # the stored version stays
    run_with_store(rejected, out, store)
    assert manifest(store)["generation"] == 2


# ---------------------------------------------------------------------------- lock


def test_second_run_on_a_locked_store_waits_or_says_who_holds_it(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    with layout.locked(tmp_path / "store"):
        assert f"pid {os.getpid()} on host" in (tmp_path / "store" / layout.LOCK).read_text()
        with pytest.raises(ProvenanceError, match=rf"in use by pid {os.getpid()} on host .* since .*pass --wait SECONDS"):
            run_with_store([a], tmp_path / "out", tmp_path / "store")
    assert (tmp_path / "store" / layout.LOCK).read_text() == ""  # released, and says nobody holds it
    # With --wait it runs once the holder lets go.
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with layout.locked(tmp_path / "store"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    result = run_with_store([a], tmp_path / "out", tmp_path / "store", wait_seconds=30)
    thread.join()
    assert result.documents.height == len(store_corpus())


def test_cli_on_a_locked_store_exits_with_one_line(tmp_path: Path, inputs) -> None:
    a, _, _ = inputs
    with layout.locked(tmp_path / "store"):
        proc = subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", "run", str(a), "--out", str(tmp_path / "out"),
             "--store", str(tmp_path / "store"), "--engine", "local"],
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        )
    assert proc.returncode == 2
    assert "in use by pid" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- crashes


_KILLER = """
import os, signal, sys
from pathlib import Path
from provenance.store.run import run_with_store
step = sys.argv[4]
def hook(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
run_with_store([Path(sys.argv[1])], Path(sys.argv[2]), Path(sys.argv[3]), after_write=hook)
"""
STEPS = ["segment", "tables", "history", "outputs", "commit", "publish"]


def _snapshot(out: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(out / f"{name}.parquet") for name in ("documents", "clusters", "edges", "cluster_history", "document_versions")}


def _same(x: dict[str, pl.DataFrame], y: dict[str, pl.DataFrame]) -> bool:
    return all(x[k].equals(y[k]) for k in x)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Inputs and the old (after A) and new (after A then B) states of an uninterrupted store."""
    tmp = tmp_path_factory.mktemp("reference")
    a, b = write_jsonl(tmp / "a.jsonl", store_corpus()), write_jsonl(tmp / "b.jsonl", corpus_b())
    run_with_store([a], tmp / "out", tmp / "store")
    old = _snapshot(tmp / "out")
    run_with_store([b], tmp / "out", tmp / "store")
    return {"a": a, "b": b, "old": old, "new": _snapshot(tmp / "out")}


def test_the_write_steps_are_the_ones_the_crash_tests_kill_at(tmp_path: Path, reference) -> None:
    seen: list[str] = []
    run_with_store([reference["a"]], tmp_path / "out", tmp_path / "store", after_write=seen.append)
    assert seen == STEPS


@pytest.mark.parametrize("step", [*STEPS, "timer"])
def test_killed_run_leaves_old_or_new_tables_and_the_next_run_succeeds(tmp_path: Path, reference, step: str) -> None:
    a, b, old, new = reference["a"], reference["b"], reference["old"], reference["new"]
    out, store_dir = tmp_path / "out", tmp_path / "store"
    run_with_store([a], out, store_dir)
    assert _same(_snapshot(out), old)
    command = [sys.executable, "-c", _KILLER, str(b), str(out), str(store_dir), step]
    if step == "timer":  # a kill at an arbitrary moment of the run
        proc = subprocess.Popen(command, cwd=ROOT)
        time.sleep(4.0)
        proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(timeout=60)
    else:
        returncode = subprocess.run(command, cwd=ROOT, timeout=300, check=False).returncode
    assert returncode == -signal.SIGKILL or (step == "timer" and returncode == 0)
    seen = _snapshot(out)
    assert _same(seen, old) or _same(seen, new)
    if step in ("segment", "tables", "history", "outputs"):
        assert _same(seen, old)  # killed before the commit
        assert manifest(store_dir)["generation"] == 1
    elif step in ("commit", "publish"):
        assert manifest(store_dir)["generation"] == 2  # committed; the next run moves the link if it was not
    # The next run succeeds and gives the new state; nothing of the killed run is left behind.
    run_with_store([b], out, store_dir)
    assert _same(_snapshot(out), new)
    assert [p.name for p in (store_dir / "segments").iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in store_dir.iterdir() if p.name.startswith(".")] == []
    assert sorted(p.name for p in store_dir.glob("gen-*")) == ["gen-000001", "gen-000002"]


# ---------------------------------------------------------------------------- plan: each decision on hand-made data


def test_fingerprints_cover_text_and_metadata_but_not_the_pipelines_own_columns() -> None:

    base = pl.DataFrame({"doc_id": ["a"], "text": ["t"], "source": ["s1"], "title": ["T"], "lang": ["en"]})
    fp = plan.fingerprints(base)[0]
    assert plan.fingerprints(base.with_columns(pl.lit("s2").alias("source"), pl.lit("zz").alias("content_hash")))[0] == fp
    assert plan.fingerprints(base.with_columns(pl.lit("u").alias("text")))[0] != fp
    assert plan.fingerprints(base.with_columns(pl.lit("de").alias("lang")))[0] != fp
    assert plan.fingerprints(base.with_columns(pl.lit("T2").alias("title")))[0] != fp
    # The separator keeps text and metadata apart: moving a character across them is another document.
    assert plan.fingerprints(pl.DataFrame({"doc_id": ["a"], "text": ["ab"], "m": ["c"]}))[0] != plan.fingerprints(
        pl.DataFrame({"doc_id": ["a"], "text": ["a"], "m": ["bc"]}))[0]


def test_fingerprints_in_slices_are_each_documents_own(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = pl.DataFrame({"doc_id": list("abcde"), "text": ["one", "two", "three", "four", "five"], "title": list("VWXYZ")})
    whole = plan.fingerprints(docs)
    monkeypatch.setattr(plan, "FINGERPRINT_BATCH", 2)
    assert plan.fingerprints(docs).equals(whole)
    assert [plan.fingerprints(docs[i:i + 1])[0] for i in range(5)] == whole.to_list()


def test_arrivals_are_new_ids_and_changed_fingerprints() -> None:

    stored = pl.DataFrame({"doc_id": ["a", "b"], "text": ["A", "B"], "source": ["x", "x"]})
    live = stored.with_columns(plan.fingerprints(stored), pl.Series("version", [1, 3], dtype=pl.Int32))
    incoming = pl.DataFrame({"doc_id": ["a", "b", "c"], "text": ["A", "B2", "C"], "source": ["y", "y", "y"]})
    out = plan.arrivals(incoming, live)
    assert out.select("doc_id", "old_version").rows() == [("b", 3), ("c", None)]
    assert out["old_fp"][0] == live["fingerprint"][1] and out["fingerprint"][0] != out["old_fp"][0]
    # All new: every row arrives, in input order, the texts untouched.
    fresh = plan.arrivals(incoming.with_columns(pl.col("doc_id") + "2"), live)
    assert fresh["doc_id"].to_list() == ["a2", "b2", "c2"] and fresh["old_version"].null_count() == 3
    assert fresh["text"].to_list() == incoming["text"].to_list()


def test_boilerplate_dirty_and_frequent_resign_flag_documents_holding_a_flipped_key() -> None:

    sets = make_sets([[1, 2], [3], [], [2, 9]])
    lines = ShingleSets(sets.hashes.astype(np.uint64), sets.offsets)
    # key 2 became boilerplate, key 3 stopped being it, key 9 is boilerplate both times.
    assert plan.boilerplate_dirty(lines, np.array([2, 9], np.uint64), np.array([3, 9], np.uint64)).tolist() == [True, True, False, True]
    assert plan.boilerplate_dirty(lines, np.array([9], np.uint64), np.array([9], np.uint64)).tolist() == [False] * 4
    words = make_sets([[10, 11], [12], [13, 14], []])
    assert plan.frequent_resign(words, np.array([11, 14], np.uint32), np.array([14, 12], np.uint32)).tolist() == [True, True, False, False]
    assert plan.frequent_resign(words, np.array([14], np.uint32), np.array([14], np.uint32)).tolist() == [False] * 4


def test_relink_rows_are_fresh_rows_changed_groups_and_resigned_rows_with_their_copies() -> None:

    doc_ids = pl.Series(["a", "b", "c", "d", "e", "f"])
    hashes = pl.Series(["h1", "h1", "h2", "h3", "h3", "h4"])
    is_fresh = np.array([True, False, False, False, False, False])
    resigned = np.array([False, False, False, True, False, False])
    touched = pl.Series(["h1"])  # a's group: a (new) and b (stored)
    assert plan.relink_rows(doc_ids, hashes, is_fresh, resigned, touched).tolist() == [True, True, False, True, True, False]


def test_known_pairs_are_passing_stored_pairs_of_present_ids_as_row_codes() -> None:

    pairs = pl.DataFrame({"a_id": ["a", "b", "a", "gone"], "b_id": ["c", "a", "b", "a"], "passes": [True, True, False, True], "copied": [True, True, False, False]}, schema=PAIRS)
    codes = plan.known_pairs(pairs, pl.Series(["c", "b", "a"]))  # rows: c=0, b=1, a=2
    assert codes.tolist() == [(0 << 32) | 2, (1 << 32) | 2]


def test_a_cluster_is_reused_only_with_the_same_members_unchanged_and_the_same_pairs() -> None:

    doc_ids = pl.Series(["x", "y", "z", "u", "v"])
    keys = doc_keys(doc_ids)
    old_docs = pl.DataFrame({"doc_id": ["x", "y", "z", "u"], "cluster_id": ["cX", "cX", "cX", "cU"]})
    old_pairs = pl.DataFrame({"a_id": ["x", "y"], "b_id": ["y", "z"], "passes": [True, True], "copied": [True, True]}, schema=PAIRS)

    def reuse(cluster, old_cid, changed, pairs):
        frame = pl.DataFrame({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}, schema={"a": pl.UInt32, "b": pl.UInt32})
        same, old_of = plan.reusable_clusters(np.array(cluster), pl.Series(old_cid, dtype=pl.String), np.array(changed), frame, keys,
                                              old_docs, old_pairs)
        return same.tolist(), old_of.tolist()

    unchanged = [False] * 5
    # x, y, z as stored with their pairs (given in either order); u alone as stored; v new.
    assert reuse([0, 0, 0, 1, 2], ["cX", "cX", "cX", "cU", None], unchanged, [(1, 0), (2, 1)]) == ([True, True, False], ["cX", "cU", None])
    # Another pair inside (x, z instead of y, z): re-traced.
    assert reuse([0, 0, 0, 1, 2], ["cX", "cX", "cX", "cU", None], unchanged, [(0, 1), (0, 2)])[0] == [False, True, False]
    # A changed member, a new member, a lost member, two stored clusters in one: re-traced.
    assert reuse([0, 0, 0, 1, 2], ["cX", "cX", "cX", "cU", None], [False, True, False, False, False], [(0, 1), (1, 2)])[0][0] is False
    assert reuse([0, 0, 0, 1, 0], ["cX", "cX", "cX", "cU", None], unchanged, [(0, 1), (1, 2), (2, 4)])[0][0] is False
    assert reuse([0, 0, 1, 2, 3], ["cX", "cX", "cX", "cU", None], unchanged, [(0, 1)])[0][:2] == [False, False]
    assert reuse([0, 0, 0, 0, 1], ["cX", "cX", "cX", "cU", None], unchanged, [(0, 1), (1, 2)])[0][0] is False


def word_hash(word: str) -> int:
    """The derivation model's hash of a one-token word (what its counts are keyed by)."""
    return int(normalize.tokenize(pl.Series([word]), derivation.HASH_SEED).hash[0])


def test_a_stored_derivation_is_decided_again_under_todays_counts() -> None:
    """x and y differ in one word each: the one whose word more clusters use is the origin, whatever the counts were."""
    harbour, haven, line = word_hash("harbour"), word_hash("haven"), 0xABC
    bags = pl.DataFrame({
        "kind": [reprice.ROOT, reprice.ROOT, reprice.KEY], "owner": [0, 1, 0], "value": [harbour, haven, line], "flag": [False, False, True],
    }, schema=reprice.BAGS)
    priced = reprice.Priced(
        pl.DataFrame({"doc_id": ["x", "y"], "root_fixed": [0.0, 0.0]}, schema=reprice.DOCS),
        pl.DataFrame({"a_id": ["x"], "b_id": ["y"], "fixed_ab": [1.0], "fixed_ba": [1.0], "near": [0.1]}, schema=reprice.PAIRS), bags,
    )
    old_docs = pl.DataFrame({"doc_id": ["x", "y"], "parent_id": [None, "x"]}, schema={"doc_id": pl.String, "parent_id": pl.String})
    doc_ids = pl.Series(["x", "y", "z"])
    none = derivation.Counts(np.zeros(0, np.uint64), np.zeros(0, np.int64), 2)

    def redecide(n_harbour: int, n_haven: int, line_count: int = 3, stored: reprice.Priced = priced):
        keys, counts = zip(*sorted([(harbour, n_harbour), (haven, n_haven)]))
        words = derivation.Counts(np.array(keys, dtype=np.uint64), np.array(counts, dtype=np.int64), 2)
        lines = derivation.Counts(np.array([line], dtype=np.uint64), np.array([line_count], dtype=np.int64), 2)
        facts = CorpusFacts(None, None, derivation.DerivationFacts(words, 40, lines, none))
        same, conf = plan.redecided(np.array([True, True]), np.array([0, 0, 1]), doc_ids, doc_keys(doc_ids), stored, old_docs, facts, Config().trace)
        return same.tolist(), conf

    same, conf = redecide(9, 2)
    assert same == [True, True] and conf[1] == 1.0 and np.isnan(conf[[0, 2]]).all()  # x stays the origin; z is a singleton
    assert redecide(2, 9)[0] == [False, True]  # "haven" is now the commoner word: y is the origin, the cluster is re-traced
    assert redecide(9, 2, line_count=1)[0] == [False, True]  # x's short line no longer recurs: other foreign marks
    assert redecide(9, 2, stored=reprice.Priced.empty())[0] == [False, True]  # nothing stored (a store from before pricings were kept)


def edited_story() -> dict[str, str]:
    """A cluster of one source, its light edits, a near copy and a version with a sentence more (and its copy), next to three other stories.

    The copy's parent confidence weighs its version (no act) against the source
    (the sentence written, so its words' description lengths): it moves with the counts.
    """
    source = light_edits(0)["source"]
    plus = source.rstrip() + " Crews worked overnight.\n"
    docs = {**light_edits(0), "near": near_copy(source), "plus": plus, "plus-copy": noisy_copy(plus)}
    return {**docs, **{f"other-{s}": make_article(s) for s in range(1, 4)}}


def test_a_stored_cluster_no_new_document_joins_gets_the_confidences_of_todays_counts(tmp_path: Path) -> None:
    """New stories move N and every word count: the stored tree stands, its parent confidences are a full run's."""
    a, b = edited_story(), {"new-4": make_article(4), "new-5": make_article(5), "new-unrelated": UNRELATED}
    first = run_with_store(frame(a), tmp_path / "out", tmp_path / "store")
    second = run_with_store(frame(b), tmp_path / "out", tmp_path / "store")
    assert_equal_to_a_full_run(tmp_path / "out", {**a, **b}, tmp_path)
    assert second.info["stages"]["trace"]["retraced_documents"] == len(b)  # the stored cluster was decided again, not traced
    before = dict(first.edges.select("child_id", "parent_confidence").iter_rows())
    after = dict(second.edges.select("child_id", "parent_confidence").iter_rows())
    assert before.keys() == after.keys() and before != after  # the counts did move its confidences


def test_new_documents_that_make_the_spun_words_common_move_a_stored_clusters_origin(tmp_path: Path) -> None:
    """Singletons using the spinner's synonyms make them common words: the spun version becomes the likelier origin."""
    a = {k: v for k, v in edited_story().items() if not k.startswith("plus")}  # the source is the most complete version
    spun_words = sorted({w.strip(".,;:").lower() for w in a["spun"].split()} - {w.strip(".,;:").lower() for w in a["source"].split()})
    b = {f"notice-{i}": f"Notice {i}\n\n" + " ".join(make_article(4 + i).split()[:30]) + " "
         + ", ".join(spun_words[(8 * i + j) % len(spun_words)] for j in range(8)) + ".\n" for i in range(6)}
    first = run_with_store(frame(a), tmp_path / "out", tmp_path / "store")
    second = run_with_store(frame(b), tmp_path / "out", tmp_path / "store")
    assert_equal_to_a_full_run(tmp_path / "out", {**a, **b}, tmp_path)
    def origin(result) -> list[str]:
        return result.documents.filter(pl.col("is_origin") & pl.col("doc_id").is_in(list(light_edits(0))))["doc_id"].to_list()

    assert origin(first) == ["source"] and origin(second) == ["spun"]  # no new member, yet another origin
    assert second.clusters.height == first.clusters.height + len(b)  # the notices are singletons


def stored_facts(store_dir: Path) -> derivation.DerivationFacts:
    """The trace's corpus counts a store's current generation was traced under (its lookup index keeps them)."""
    from provenance.store import index

    gen = layout.read_manifest(store_dir, layout_config(store_dir)).generation
    return index.StoreIndex.open(index.index_dir(layout.generation_dir(store_dir, gen))).facts


def layout_config(store_dir: Path) -> Config:
    return Config.from_options(manifest(store_dir)["options"])


@pytest.mark.parametrize("sample", [20_000, 3])
def test_the_counts_a_store_updates_are_the_counts_of_the_whole_corpus(tmp_path: Path, sample: int) -> None:
    """Counts carried over from the last run, minus the counted units gone, plus the new ones, are a fresh count.

    With a sample of 3 singletons, the new documents also move singletons into and out of the sample.
    """
    config = Config.from_options({"frequency_sample": sample})
    a = edited_story()
    b = {"new-4": make_article(4), "new-5": make_article(5), "new-unrelated": UNRELATED, "plus-more": a["plus"] + "\nMore to follow.\n",
         "other-1-copy": noisy_copy(a["other-1"])}  # joins a stored cluster, makes a singleton a cluster
    run_with_store(frame(a), tmp_path / "out", tmp_path / "store", config)
    second = run_with_store(frame(b), tmp_path / "out", tmp_path / "store", config)
    run_with_store(frame({**a, **b}), tmp_path / "once", tmp_path / "once-store", config)
    got, want = stored_facts(tmp_path / "store"), stored_facts(tmp_path / "once-store")
    assert got.n_clusters == want.n_clusters
    for name in ("words", "lines", "grams"):
        g, w = getattr(got, name), getattr(want, name)
        np.testing.assert_array_equal(g.keys, w.keys)
        np.testing.assert_array_equal(g.counts, w.counts)
        assert g.least == w.least, name
    assert_equal_to_a_full_run(tmp_path / "out", {**a, **b}, tmp_path, config)
    if sample == 20_000:  # read: the story's 8 then 9 members, other-1 alone then with its copy, 3 new stories; not other-2, other-3
        assert second.info["stages"]["trace"]["counted_documents"] == 8 + 9 + 1 + 2 + 3


def test_resigned_places_map_only_documents_signed_anew_to_their_new_rows() -> None:
    from provenance.store import plan

    removed = pl.Series(["b", "d", "e"])  # d: a new version, e: signed anew, b: signed anew
    now = pl.Series(["a", "b", "c", "d", "e"])
    got = plan.resigned_places(removed, pl.Series(["e", "b"]), now)
    assert got.tolist() == [1, -1, 4]
    assert plan.resigned_places(removed, pl.Series([], dtype=pl.String), now).tolist() == [-1, -1, -1]


def test_segment_gather_equals_concat_then_take() -> None:
    from provenance.store.layout import RAGGED, Segment

    rng = np.random.default_rng(7)

    def segment(ids: list[str]) -> Segment:
        n = len(ids)
        ragged = {}
        for name, dtype in RAGGED.items():
            sizes = rng.integers(0, 4, size=n)
            offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
            ragged[name] = ShingleSets(rng.integers(0, 1000, size=int(offsets[-1])).astype(dtype), offsets)
        sigs = {v: rng.integers(0, 2**32, size=(n, 8), dtype=np.uint32) for v in ("words", "anchors")}
        return Segment(pl.DataFrame({"doc_id": ids, "text": [f"text {i}" for i in ids]}), ragged, sigs)

    a, b = segment(["a", "c", "e", "g"]), segment(["b", "d"])
    part, rows = np.array([0, 1, 0, 1, 0]), np.array([0, 0, 1, 1, 3])
    got = Segment.gather([a, b], part, rows)
    want = Segment.concat([a, b]).take(np.array([0, 4, 1, 5, 3]))
    assert got.documents.equals(want.documents) and got.documents["doc_id"].to_list() == ["a", "b", "c", "d", "g"]
    for name in RAGGED:
        assert np.array_equal(got.ragged[name].hashes, want.ragged[name].hashes), name
        assert np.array_equal(got.ragged[name].offsets, want.ragged[name].offsets), name
    for view in ("words", "anchors"):
        assert np.array_equal(got.signatures[view], want.signatures[view])


def test_gather_sets_takes_rows_from_several_parts_as_concat_then_take_would() -> None:
    from provenance.store.layout import gather_sets

    rng = np.random.default_rng(3)

    def random_sets(n: int) -> ShingleSets:
        sizes = rng.integers(0, 6, size=n)
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        return ShingleSets(rng.integers(0, 2**32, size=int(offsets[-1]), dtype=np.uint32), offsets)

    parts = [random_sets(7), random_sets(0), random_sets(5)]
    part = np.array([2, 0, 0, 2, 0, 2, 0], dtype=np.int64)
    rows = np.array([4, 6, 0, 0, 3, 2, 1], dtype=np.int64)
    got = gather_sets(parts, part, rows)
    starts = np.array([0, 7, 7])
    want = ShingleSets.concat(parts).take(starts[part] + rows)
    assert np.array_equal(got.offsets, want.offsets) and np.array_equal(got.hashes, want.hashes)
    assert got.hashes.dtype == np.uint32
    nothing = gather_sets(parts, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert nothing.n_docs == 0 and len(nothing.hashes) == 0
