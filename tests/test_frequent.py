"""frequent: which word shingles are left out of the words signature, and what that does to LSH and stores."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_minhash import datasketch_signature, make_sets

from benchmarks.generate import generate_corpus
from provenance import frequent, incremental, minhash, pipeline, store
from provenance.config import PipelineConfig
from test_incremental import canonical, corpus_a, corpus_b, write_jsonl


def test_threshold_is_a_share_of_the_sample_with_a_floor() -> None:
    assert frequent.threshold(100_000, 0.005, 20) == 500
    assert frequent.threshold(1_000, 0.005, 20) == 20  # small corpora: the floor decides
    assert frequent.threshold(4_001, 0.005, 1) == 21  # rounded up
    assert frequent.threshold(0, 0.005, 20) == 20


def test_frequent_shingles_are_those_in_enough_documents() -> None:
    sets = make_sets([[1, 2, 3], [2, 3, 4], [3, 4, 5], [3, 9]])
    got = frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.0, min_docs=3)
    np.testing.assert_array_equal(got, [3])
    got = frequent.frequent_shingles(sets.hashes, sets.n_docs, min_share=0.5, min_docs=1)  # in >= 2 of 4
    np.testing.assert_array_equal(got, [2, 3, 4])
    assert got.dtype == np.uint32
    assert len(frequent.frequent_shingles(np.zeros(0, np.uint32), 0)) == 0


def test_sample_is_the_smallest_id_hashes_whatever_the_row_order(rng) -> None:
    ids = pl.Series([f"doc-{i}" for i in range(500)])
    keys = frequent.doc_keys(ids)
    rows = frequent.sample_rows(keys, 50)
    assert len(rows) == 50 and (np.diff(rows) > 0).all()
    assert keys[rows].max() < np.delete(keys, rows).min()
    order = rng.permutation(500)
    again = frequent.sample_rows(frequent.doc_keys(ids.gather(order)), 50)
    assert set(ids.gather(order).gather(again).to_list()) == set(ids.gather(rows).to_list())
    np.testing.assert_array_equal(frequent.sample_rows(keys[:30], 50), np.arange(30))


def test_signature_around_left_out_shingles_is_the_minhash_of_the_rest(rng) -> None:
    common = rng.integers(1, 2**32, size=40, dtype=np.uint64).astype(np.uint32)
    leave_out = np.unique(common)
    mostly_rare = np.concatenate([common[:10], rng.integers(1, 2**32, size=200, dtype=np.uint64).astype(np.uint32)])
    mostly_common = np.concatenate([common[:30], rng.integers(1, 2**32, size=5, dtype=np.uint64).astype(np.uint32)])
    sets = make_sets([mostly_rare, mostly_common, common[:3], np.zeros(0, np.uint32)])
    sig = minhash.signatures(sets, 128, 1, leave_out)
    sizes = minhash.signed_sizes(sets, leave_out)
    rest = np.setdiff1d(sets.doc(0), leave_out)
    np.testing.assert_array_equal(sig[0], datasketch_signature(rest, 128, 1))
    assert sizes[0] == len(rest) == 200
    # Fewer than half would remain (or nothing at all): signed on the whole set.
    for i in (1, 2):
        np.testing.assert_array_equal(sig[i], datasketch_signature(sets.doc(i), 128, 1))
        assert sizes[i] == len(sets.doc(i))
    assert (sig[3] == minhash.EMPTY).all() and sizes[3] == 0
    np.testing.assert_array_equal(minhash.signatures(sets, 128, 1, None), minhash.signatures(sets, 128, 1, frequent.NOTHING))
    np.testing.assert_array_equal(minhash.signed_sizes(sets), sets.sizes())


def test_holds_any() -> None:
    sets = make_sets([[1, 2, 3], [4, 5], [], [5, 9]])
    np.testing.assert_array_equal(minhash.holds_any(sets, np.array([5], np.uint32)), [False, True, False, True])
    np.testing.assert_array_equal(minhash.holds_any(sets, np.zeros(0, np.uint32)), [False] * 4)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("generated") / "corpus.parquet"
    generate_corpus(3_000, path, seed=3)
    return pl.read_parquet(path)


def _linked(corpus: pl.DataFrame, tmp_path, monkeypatch, *, min_docs: int):
    monkeypatch.setattr(frequent, "MIN_DOCS", min_docs)
    config = PipelineConfig()
    path = tmp_path / f"corpus-{min_docs}.parquet"
    corpus.select("id", "text").write_parquet(path)
    ingested, _ = pipeline.ingest_stage([path], config)
    prepared, report = pipeline.prepare_stage(ingested, config)
    linked, link_report = pipeline.link_stage(prepared, config)
    return prepared, report, linked, link_report


def test_leaving_out_frequent_shingles_cuts_chance_candidates_not_clusters(generated, tmp_path, monkeypatch) -> None:
    without, _, linked_without, report_without = _linked(generated, tmp_path, monkeypatch, min_docs=10**9)
    prepared, report, linked, link_report = _linked(generated, tmp_path, monkeypatch, min_docs=20)
    assert len(without.frequent) == 0 and report.stats["frequent_word_shingles"] == len(prepared.frequent) > 0
    assert link_report.stats["candidates"] < 0.6 * report_without.stats["candidates"]
    # The same documents end up together (cluster roots may be other rows of the same cluster).
    def partition(roots: np.ndarray) -> set[tuple[int, ...]]:
        frame = pl.DataFrame({"root": roots, "row": np.arange(len(roots))}).group_by("root").agg(pl.col("row").sort())
        return {tuple(r) for r in frame["row"].to_list()}
    assert partition(linked.roots) == partition(linked_without.roots)
    truth = generated["true_cluster"].to_numpy()
    together = pl.DataFrame({"t": truth, "r": linked.roots}).group_by("t").agg(pl.col("r").n_unique())
    assert (together["r"] == 1).all()


def test_a_store_equals_a_full_run_when_frequent_shingles_flip(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(frequent, "MIN_DOCS", 3)  # small corpora: shingles in 3 documents count as frequent
    a = write_jsonl(tmp_path / "a.jsonl", corpus_a())
    b = write_jsonl(tmp_path / "b.jsonl", corpus_b())
    both = write_jsonl(tmp_path / "ab.jsonl", {**corpus_a(), **corpus_b()})
    full = pipeline.run([both], tmp_path / "full")
    incremental.run_with_store([a], tmp_path / "out", tmp_path / "store")
    second = incremental.run_with_store([b], tmp_path / "out", tmp_path / "store")
    full_docs, full_edges = canonical(tmp_path / "full")
    inc_docs, inc_edges = canonical(tmp_path / "out")
    assert inc_docs.equals(full_docs)
    assert inc_edges.select(full_edges.columns).equals(full_edges)
    assert full.clusters.height == second.clusters.height
    # What the test is about: frequent shingles flipped, and stored documents were signed anew.
    prepare = second.info["stages"]["prepare"]
    assert prepare["frequent_resigned"] > 0 and prepare["frequent_word_shingles"] > 0
    # The stored signatures are those a fresh prepare of the whole corpus gives.
    config = PipelineConfig()
    live = store.read_live(tmp_path / "store", store.read_manifest(tmp_path / "store", config), config.num_perm)
    prepared, _ = pipeline.prepare_stage(pipeline.ingest_stage([both], config)[0], config)
    assert live.documents["doc_id"].equals(prepared.documents["doc_id"])
    alone = ~live.documents["content_hash"].is_duplicated().to_numpy()  # exact copies share the first's in a run
    np.testing.assert_array_equal(live.signatures["words"][alone], prepared.signatures["words"][alone])


def test_a_story_copied_into_much_of_the_corpus_is_signed_whole_and_still_found(generated, tmp_path, monkeypatch) -> None:
    from conftest import make_article, spin, truncate

    viral = {f"viral-{k}": spin(truncate(make_article(0), 1.0 - 0.02 * (k % 10)), 0.15, seed=k) for k in range(30)}
    others = generated.filter(pl.col("edit") == "singleton").head(70)
    corpus = pl.DataFrame({"id": [*viral, *others["id"]], "text": [*viral.values(), *others["text"]]})
    monkeypatch.setattr(frequent, "MIN_DOCS", 10)  # the 30 copies make the story's own bigrams "frequent"
    config = PipelineConfig()
    path = tmp_path / "viral.parquet"
    corpus.write_parquet(path)
    ingested, _ = pipeline.ingest_stage([path], config)
    prepared, _ = pipeline.prepare_stage(ingested, config)
    words = prepared.views["words"]
    rows = np.flatnonzero(prepared.documents["doc_id"].str.starts_with("viral-").to_numpy())
    held = minhash.holds_any(words.take(rows), prepared.frequent)
    assert held.all()  # the story's bigrams are frequent...
    np.testing.assert_array_equal(minhash.signed_sizes(words, prepared.frequent)[rows], words.sizes()[rows])  # ...so signed whole
    linked, _ = pipeline.link_stage(prepared, config)
    assert len(set(linked.roots[rows].tolist())) == 1
    assert not np.isin(np.delete(linked.roots, rows), linked.roots[rows]).any()
