"""The lookup index a store run writes (``provenance.store.index``): what it holds, and the candidates it gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from provenance.link import lsh
from provenance.store import layout
from provenance.store.index import StoreIndex, index_dir
from provenance.store.lookup import open_store
from provenance.store.run import run_with_store
from tests.fixtures import make_article, noisy_copy, spin, truncate

#: Copies of one story crowd its buckets past ``bucket_window`` on either side of a query.
CROWD = 14


def corpus() -> dict[str, str]:
    docs = {f"s0-copy-{i:02d}": truncate(make_article(0), 0.5 + 0.03 * i) for i in range(CROWD)}
    docs |= {f"s0-dup-{i:02d}": make_article(0) for i in range(4)}  # exact duplicates: equal ranks in every bucket
    docs |= {"s1": make_article(1), "s1-spun": spin(make_article(1), 0.3, seed=2), "s2": make_article(2)}
    return docs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index")
    docs = corpus()
    run_with_store(pl.DataFrame({"id": list(docs), "text": list(docs.values())}), root / "out", root / "store")
    return root / "store"


def opened_index(store: Path) -> StoreIndex:
    manifest = json.loads((store / layout.MANIFEST).read_text())
    assert manifest["lookup_index"] == 1
    return StoreIndex.open(index_dir(layout.generation_dir(store, manifest["generation"])))


def test_bands_are_sorted_band_keys_of_the_stored_signatures(store: Path) -> None:
    """Each band's keys are ``lsh.band_keys`` of the rows it names, ascending, and bucket members come longest first."""
    index = opened_index(store)
    sizes = np.diff(np.asarray(index.views["words"].offsets))
    for view in ("words", "anchors"):
        keys, rows = (np.asarray(a) for a in index.band_table(view))
        bands, per_band = index.band_params(view)
        assert keys.shape == rows.shape and keys.shape[0] == bands
        direct = lsh.band_keys(np.ascontiguousarray(np.asarray(index.signatures[view])), bands, per_band)
        for band in range(bands):
            np.testing.assert_array_equal(keys[band], direct[rows[band].astype(np.int64), band])
            assert (np.diff(keys[band].astype(np.float64)) >= 0).all() or np.all(keys[band][1:] >= keys[band][:-1])
            same = keys[band][1:] == keys[band][:-1]
            r = rows[band].astype(np.int64)
            assert (sizes[r[1:]][same] <= sizes[r[:-1]][same]).all()


def test_members_are_read_by_cluster(store: Path) -> None:
    """One cluster's slice of ``members.parquet`` holds exactly its rows, with the published columns."""
    index = opened_index(store)
    published = pl.read_parquet(store.parent / "out" / "documents.parquet")
    cluster = np.asarray(index.row_cluster)
    for c in np.unique(cluster):
        got = index.members(np.array([c]))
        assert sorted(got["row"].to_list()) == np.flatnonzero(cluster == c).tolist()
        assert got["cluster_id"].n_unique() == 1
    every = index.members(np.unique(cluster))
    assert sorted(every["doc_id"].to_list()) == sorted(published["doc_id"].to_list())


def test_stored_rows_find_a_content_hash(store: Path) -> None:
    index = opened_index(store)
    published = pl.read_parquet(store.parent / "out" / "documents.parquet").sort("doc_id")
    hashes = published["content_hash"].str.to_integer(base=16, dtype=pl.UInt64).to_numpy()
    found = index.stored_rows(np.r_[hashes, np.uint64(12345)])
    assert (found[:-1] >= 0).all() and found[-1] == -1
    assert (published["content_hash"].gather(found[:-1]) == published["content_hash"]).all()


@pytest.mark.parametrize("qid", ["a-query", "s0-copy-07x", "zz-query"])
def test_candidates_are_the_pairs_lsh_would_make_with_the_query(store: Path, qid: str) -> None:
    """The index's candidates for a query are its partners in ``lsh.candidate_pairs`` over the store plus the query.

    The buckets are crowded past the window, hold exact duplicates (equal
    ranks, ordered by row) and the query sorts first, in the middle or last.
    """
    opened = open_store(store)
    text = noisy_copy(truncate(make_article(0), 0.71)) + "\nA line of our own at the end of it.\n"
    got = opened.lookup_source(pl.DataFrame({"id": [qid], "text": [text]}))
    assert got[0].status == "matched"
    query = opened.prepare(pl.DataFrame({"doc_id": [qid], "text": [text]}))[0]
    found = opened.candidates(query)
    index = opened.index
    at = int(index.doc_ids.search_sorted(qid))
    config = opened.config
    for view, threshold in (("words", config.link.words_threshold), ("anchors", config.link.anchors_threshold)):
        stored = np.asarray(index.signatures[view])
        sig = np.insert(stored, at, query.signatures[view][0], axis=0)
        sizes = np.insert(np.diff(np.asarray(index.views["words"].offsets)), at, query.views["words"].sizes()[0])
        pairs = lsh.candidate_pairs(sig, -sizes, threshold=threshold, window=config.link.bucket_window)
        a, b = pairs["a"].to_numpy().astype(np.int64), pairs["b"].to_numpy().astype(np.int64)
        partners = np.r_[b[a == at], a[b == at]]
        partners = partners - (partners > at)
        assert set(partners.tolist()) <= set(found.tolist()), view
        mine = set(partners.tolist())
        if view == "words":
            words_partners = mine
        else:
            assert set(found.tolist()) == words_partners | mine
    assert len(found) < len(corpus())  # the window left some of the crowd out


def test_recurring_threshold_from_a_histogram_is_derivations() -> None:
    """``least_of_histogram`` (what a lookup updates per query) equals ``derivation.exceptional`` on the counts."""
    from provenance.store.lookup import least_of_histogram
    from provenance.trace.derivation import exceptional

    rng = np.random.default_rng(0)
    for size, scale in ((1, 1), (2, 3), (7, 2), (1000, 1), (1001, 4), (5000, 30)):
        counts = 1 + rng.poisson(scale, size)
        assert least_of_histogram(np.bincount(counts)) == exceptional(counts), (size, scale)
    assert least_of_histogram(np.zeros(3, dtype=np.int64)) == exceptional(np.zeros(0, dtype=np.int64))
