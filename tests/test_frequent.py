"""frequent: which word shingles are left out of the words signature, and what that does to LSH and stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.generate import generate_corpus
from provenance import chain
from provenance.config import Config
from provenance.ingest import ingest_stage
from provenance.kernels import doc_keys
from provenance.link.stage import link_stage
from provenance.prepare import frequent, minhash
from provenance.prepare.stage import prepare_stage
from provenance.store import layout
from provenance.store.run import run_with_store
from tests.fixtures import make_article, make_sets, noisy_copy, spin, truncate


def test_threshold_is_a_share_of_the_sample_with_a_floor() -> None:
    assert frequent.threshold(100_000, 0.005, 20) == 500
    assert frequent.threshold(1_000, 0.005, 20) == 20  # small corpora: the floor decides
    assert frequent.threshold(4_001, 0.005, 1) == 21  # rounded up
    assert frequent.threshold(4_000, 0.005, 1) == 20  # exactly a share: not one more
    assert frequent.threshold(0, 0.005, 20) == 20


def test_frequent_shingles_are_those_in_enough_documents() -> None:
    sets = make_sets([[1, 2, 3], [2, 3, 4], [3, 4, 5], [3, 9]])
    got = frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.01, min_docs=3)
    np.testing.assert_array_equal(got, [3])
    got = frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.5, min_docs=1)  # in >= 2 of 4
    np.testing.assert_array_equal(got, [2, 3, 4])
    assert got.dtype == np.uint32
    got = frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.75, min_docs=1)  # in >= 3 of 4
    np.testing.assert_array_equal(got, [3])
    assert len(frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=1.0, min_docs=1)) == 1
    assert len(frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.01, min_docs=5)) == 0
    assert len(frequent.frequent_shingles(np.zeros(0, np.uint32), 0, min_share=0.5, min_docs=1)) == 0
    # Unsorted input with the largest hash counted last.
    got = frequent.frequent_shingles(np.array([9, 2**32 - 1, 9, 2**32 - 1], np.uint32), 2, min_share=1.0, min_docs=1)
    np.testing.assert_array_equal(got, [9, 2**32 - 1])


def test_sample_is_the_smallest_id_hashes_whatever_the_row_order(rng) -> None:
    ids = pl.Series([f"doc-{i}" for i in range(500)])
    keys = doc_keys(ids)
    rows = frequent.sample_rows(keys, 50)
    assert rows.dtype == np.int64
    assert len(rows) == 50 and (np.diff(rows) > 0).all()
    assert keys[rows].max() < np.delete(keys, rows).min()
    order = rng.permutation(500)
    again = frequent.sample_rows(doc_keys(ids.gather(order)), 50)
    assert set(ids.gather(order).gather(again).to_list()) == set(ids.gather(rows).to_list())
    np.testing.assert_array_equal(frequent.sample_rows(keys[:30], 50), np.arange(30))
    np.testing.assert_array_equal(frequent.sample_rows(keys[:50], 50), np.arange(50))


def test_sample_ties_are_broken_by_row() -> None:
    keys = np.array([5, 1, 5, 5, 0, 5], dtype=np.uint64)
    np.testing.assert_array_equal(frequent.sample_rows(keys, 3), [0, 1, 4])
    np.testing.assert_array_equal(frequent.sample_rows(keys, 4), [0, 1, 2, 4])


# ---------------------------------------------------------------------------- on a generated corpus


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("generated") / "corpus.parquet"
    generate_corpus(2_000, path, seed=3)
    return pl.read_parquet(path)


def _linked(corpus: pl.DataFrame, config: Config):
    ingested, _ = ingest_stage(corpus.select("id", "text"), config)
    prepared, report = prepare_stage(ingested, config)
    linked, link_report = link_stage(prepared, config)
    return prepared, report, linked, link_report


def _partition(roots: np.ndarray) -> set[tuple[int, ...]]:
    frame = pl.DataFrame({"root": roots, "row": np.arange(len(roots))}).group_by("root").agg(pl.col("row").sort())
    return {tuple(r) for r in frame["row"].to_list()}


def test_leaving_out_frequent_shingles_cuts_chance_candidates_not_clusters(generated) -> None:
    without, _, linked_without, report_without = _linked(generated, Config.from_options({"frequent_min_docs": 10**9}))
    prepared, report, linked, link_report = _linked(generated, Config.from_options({"frequent_min_docs": 20}))
    assert len(without.frequent) == 0
    assert report.stats["frequent_word_shingles"] == len(prepared.frequent) >= 100
    assert link_report.stats["candidates"] < 0.6 * report_without.stats["candidates"]
    # The same documents end up together (cluster roots may be other rows of the same cluster).
    assert _partition(linked.roots) == _partition(linked_without.roots)
    truth = generated["true_cluster"].to_numpy()
    order = np.argsort(generated["id"].to_numpy())  # ingest sorts by doc_id (already the generator's order)
    together = pl.DataFrame({"t": truth[order], "r": linked.roots}).group_by("t").agg(pl.col("r").n_unique())
    assert (together["r"] == 1).all()
    # The views are the same sets either way: the leave-out only changes the words signatures.
    for name in ("words", "anchors"):
        np.testing.assert_array_equal(prepared.views[name].hashes, without.views[name].hashes)
    np.testing.assert_array_equal(prepared.signatures["anchors"], without.signatures["anchors"])
    assert (prepared.signatures["words"] != without.signatures["words"]).any(axis=1).mean() > 0.5


def test_frequent_shingles_come_from_the_sample_only(generated) -> None:
    config = Config.from_options({"frequent_min_docs": 5, "frequent_sample_docs": 300})
    prepared, _ = prepare_stage(ingest_stage(generated.head(600).select("id", "text"), config)[0], config)
    rows = frequent.sample_rows(doc_keys(prepared.documents["doc_id"]), 300)
    sample = prepared.views["words"].take(rows)
    expected = frequent.frequent_shingles(sample.hashes, 300, min_share=config.prepare.frequent_min_share, min_docs=5)
    np.testing.assert_array_equal(prepared.frequent, expected)
    everyone = frequent.frequent_shingles(prepared.views["words"].hashes, 600, min_share=0.005, min_docs=5)
    assert len(np.setdiff1d(everyone, expected)) > 0  # the whole corpus would count more: the sample decided


def test_a_story_copied_into_much_of_the_corpus_is_signed_whole_and_still_found(generated) -> None:
    viral = {f"viral-{k}": spin(truncate(make_article(0), 1.0 - 0.02 * (k % 10)), 0.15, seed=k) for k in range(30)}
    others = generated.filter(pl.col("edit") == "singleton").head(70)
    corpus = pl.DataFrame({"id": [*viral, *others["id"]], "text": [*viral.values(), *others["text"]]})
    # The 30 copies make the story's own bigrams "frequent".
    prepared, _, linked, _ = _linked(corpus, Config.from_options({"frequent_min_docs": 10}))
    words = prepared.views["words"]
    rows = np.flatnonzero(prepared.documents["doc_id"].str.starts_with("viral-").to_numpy())
    held = minhash.holds_any(words.take(rows), prepared.frequent)
    assert held.all()  # the story's bigrams are frequent...
    signed = minhash.signed_sizes(words, prepared.frequent, min_kept_share=0.5)
    np.testing.assert_array_equal(signed[rows], words.sizes()[rows])  # ...so signed whole
    assert len(set(linked.roots[rows].tolist())) == 1
    assert not np.isin(np.delete(linked.roots, rows), linked.roots[rows]).any()


# ---------------------------------------------------------------------------- stores


def _first_corpus() -> dict[str, str]:
    return {
        "s0-origin": make_article(0),
        "s0-spun": spin(make_article(0), 0.3, seed=1),
        "s0-head": truncate(make_article(0), 0.6),
        "s1-origin": make_article(1),
        "s1-copy": noisy_copy(make_article(1)),
        "s2-alone": make_article(2),
    }


def _second_corpus() -> dict[str, str]:
    return {
        "s0-head-2": truncate(make_article(0), 0.5),
        "s1-head": truncate(make_article(1), 0.7),
        "s3-origin": make_article(3),
        "s3-spun": spin(make_article(3), 0.25, seed=2),
        "s2-head": truncate(make_article(2), 0.6),
    }


def _frame(docs: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(docs), "text": list(docs.values())})


def _canonical(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Documents and edges with cluster ids replaced by the origin's doc_id (ids may differ by history)."""
    docs = pl.read_parquet(out / "documents.parquet")
    origin = docs.filter("is_origin").select("cluster_id", pl.col("doc_id").alias("origin"))
    docs = docs.join(origin, on="cluster_id").select(
        "doc_id", "origin", "parent_id", "depth", "completeness", "content_hash", "n_tokens", "text"
    ).sort("doc_id")
    edges = pl.read_parquet(out / "edges.parquet").drop("cluster_id").sort("child_id")
    return docs, edges


def test_a_store_equals_a_full_run_when_frequent_shingles_flip(tmp_path: Path) -> None:
    config = Config.from_options({"frequent_min_docs": 3})  # small corpora: shingles in 3 documents count as frequent
    a, b = _first_corpus(), _second_corpus()
    first = prepare_stage(ingest_stage(_frame(a), config)[0], config)[0]
    both = prepare_stage(ingest_stage(_frame({**a, **b}), config)[0], config)[0]
    assert len(np.setdiff1d(both.frequent, first.frequent)) > 0  # the second input makes more shingles frequent
    full = chain.run(_frame({**a, **b}), config, out_dir=tmp_path / "full")
    run_with_store(_frame(a), tmp_path / "out", tmp_path / "store", config)
    second = run_with_store(_frame(b), tmp_path / "out", tmp_path / "store", config)
    full_docs, full_edges = _canonical(tmp_path / "full")
    inc_docs, inc_edges = _canonical(tmp_path / "out")
    assert inc_docs.equals(full_docs)
    assert inc_edges.select(full_edges.columns).equals(full_edges)
    assert full.clusters.height == second.clusters.height
    # What the test is about: frequent shingles flipped, and stored documents were signed anew.
    stats = second.info["stages"]["prepare"]
    flipped = np.setxor1d(first.frequent, both.frequent)
    # Signed anew: stored documents holding a flipped shingle that were not prepared again anyway (for boilerplate).
    holding = int(minhash.holds_any(first.views["words"], flipped).sum())
    assert 1 <= stats["frequent_resigned"] <= holding - stats["boilerplate_reprepared"], stats
    assert stats["frequent_word_shingles"] == len(both.frequent)
    # The stored signatures are those a fresh prepare of the whole corpus gives.
    live = layout.read_live(tmp_path / "store", layout.read_manifest(tmp_path / "store", config), config.prepare.num_perm)
    assert live.documents["doc_id"].equals(both.documents["doc_id"])
    alone = ~live.documents["content_hash"].is_duplicated().to_numpy()  # exact copies share the first's in a run
    np.testing.assert_array_equal(live.signatures["words"][alone], both.signatures["words"][alone])
