"""lsh: datasketch's banding, candidate pairs from shared buckets, linear pairs per bucket."""

from __future__ import annotations

import networkx as nx
import numpy as np
import polars as pl
import pytest
from datasketch import MinHashLSH

from provenance.config import PipelineConfig
from provenance.lsh import PAIRS_SCHEMA, band_keys, band_params, candidate_pairs
from provenance.minhash import EMPTY, signatures


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.5, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 128, 256])
def test_band_params_equal_datasketch_minhashlsh(threshold, num_perm):
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert band_params(threshold, num_perm) == (lsh.b, lsh.r)
    b, r = band_params(threshold, num_perm)
    assert isinstance(b, int) and isinstance(r, int) and b * r <= num_perm


def test_band_keys_equal_iff_band_slots_equal(rng):
    sig = rng.integers(0, 2**32, size=(3, 8), dtype=np.uint64).astype(np.uint32)
    sig[1, :4] = sig[0, :4]  # band 0 shared with row 0, band 1 not
    keys = band_keys(sig, 2, 4)
    assert keys.shape == (3, 2) and keys.dtype == np.uint64
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[2, 0] != keys[0, 0]
    # Identical slot values in different bands do not collide.
    same = np.tile(sig[:1, :4], (1, 2))
    k = band_keys(same, 2, 4)
    assert k[0, 0] != k[0, 1]


def _pairs(df: pl.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["a"].to_list(), df["b"].to_list()))


def _text_signatures(factory, texts):
    config = PipelineConfig()
    views = factory.build_views(texts)
    sigs = {name: signatures(sets, config.num_perm, config.seed) for name, sets in views.items()}
    return views, sigs


def test_identical_and_near_identical_documents_are_candidates_unrelated_are_not(factory):
    config = PipelineConfig()
    a = factory.make_article(0)
    texts = [
        a,                                   # 0
        factory.noisy_copy(a),               # 1 identical after normalisation
        factory.truncate(a, 0.9),            # 2 near-identical
        *[factory.make_article(s) for s in (1, 2, 3, 4, 5)],  # 3..7 unrelated stories
    ]
    views, sigs = _text_signatures(factory, texts)
    rank = -views["words"].sizes()
    pairs = _pairs(candidate_pairs(sigs["words"], rank, threshold=config.words_threshold, window=config.bucket_window))
    assert {(0, 1), (0, 2), (1, 2)} <= pairs
    unrelated = {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts)) if j >= 3}
    assert not (pairs & unrelated)


def test_spun_copy_is_a_candidate_in_the_anchor_view(factory):
    config = PipelineConfig()
    a = factory.make_article(1)
    texts = [a, factory.spin(a, 0.3, seed=5), factory.make_article(2), factory.make_article(3)]
    views, sigs = _text_signatures(factory, texts)
    rank = -views["words"].sizes()
    found = candidate_pairs(sigs["anchors"], rank, threshold=config.anchors_threshold, window=config.bucket_window)
    pairs = _pairs(found)
    assert (0, 1) in pairs
    assert not pairs - {(0, 1)}


def test_pairs_are_unique_sorted_and_typed(rng):
    base = rng.integers(0, 2**32, size=128, dtype=np.uint64).astype(np.uint32)
    sig = np.tile(base, (6, 1))
    out = candidate_pairs(sig, np.zeros(6, dtype=np.int64), threshold=0.5, window=2)
    assert out.schema == PAIRS_SCHEMA
    rows = list(zip(out["a"].to_list(), out["b"].to_list()))
    assert rows == sorted(set(rows))
    assert all(a < b for a, b in rows)


def test_huge_bucket_gives_linear_pairs_and_stays_connected(rng):
    n, window = 500, PipelineConfig().bucket_window
    base = rng.integers(0, 2**32, size=128, dtype=np.uint64).astype(np.uint32)
    sig = np.tile(base, (n, 1))
    rank = rng.permutation(n)
    out = candidate_pairs(sig, rank, threshold=0.1, window=window)
    assert 0 < out.height <= window * n
    assert out.height < n * (n - 1) // 2 // 10
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(_pairs(out))
    assert nx.is_connected(graph)


def test_bucket_members_pair_with_next_ones_in_rank_order(rng):
    base = rng.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    sig = np.tile(base, (5, 1))
    rank = np.array([2, 0, 4, 1, 3])  # bucket order: docs 1, 3, 0, 4, 2
    out = candidate_pairs(sig, rank, threshold=0.5, window=1)
    assert _pairs(out) == {(1, 3), (0, 3), (0, 4), (2, 4)}


def test_empty_signatures_are_never_candidates(rng):
    sig = np.full((4, 64), EMPTY, dtype=np.uint32)
    base = rng.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    sig[2] = base
    out = candidate_pairs(sig, np.zeros(4, dtype=np.int64), threshold=0.5, window=4)
    assert out.height == 0 and out.schema == PAIRS_SCHEMA
    sig[3] = base
    assert _pairs(candidate_pairs(sig, np.zeros(4, dtype=np.int64), threshold=0.5, window=4)) == {(2, 3)}


def test_no_shared_band_no_pair(rng):
    sig = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint64).astype(np.uint32)
    out = candidate_pairs(sig, np.arange(50), threshold=0.1, window=4)
    assert out.height == 0


def test_sorted_unique_matches_numpy_unique():
    from provenance.lsh import sorted_unique

    values = np.random.default_rng(3).integers(0, 50, size=1000).astype(np.uint64)
    assert sorted_unique(values).tolist() == np.unique(values).tolist()
    assert sorted_unique(np.zeros(0, dtype=np.uint64)).tolist() == []
