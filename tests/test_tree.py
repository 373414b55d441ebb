"""tree: parent choice (best containing, better-ranked candidate) and depths."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.origin import completeness, origin_rank
from provenance.tree import choose_parents, depths


def all_pairs(rows) -> pl.DataFrame:
    rows = list(rows)
    a, b = zip(*[(x, y) for i, x in enumerate(rows) for y in rows[i + 1 :]])
    return pl.DataFrame({"a": a, "b": b}, schema={"a": pl.UInt32, "b": pl.UInt32})


def trace(texts, factory, cluster=None, pairs=None):
    views = factory.build_views(texts)
    cluster = np.zeros(len(texts), dtype=np.int64) if cluster is None else np.asarray(cluster, dtype=np.int64)
    rank = origin_rank(cluster, completeness(cluster, views), factory.n_tokens(texts))
    pairs = all_pairs(range(len(texts))) if pairs is None else pairs
    return rank, choose_parents(cluster, rank, pairs, views)


def parent_map(parents: pl.DataFrame) -> dict[int, int]:
    return dict(zip(parents["child"].to_list(), parents["parent"].to_list()))


# ---------------------------------------------------------------------------- depths


def test_depths_of_a_hand_made_forest():
    parent_of = np.array([-1, 0, 1, 2, 0, 4, -1, 6, 3])
    assert depths(parent_of).tolist() == [0, 1, 2, 3, 1, 2, 0, 1, 4]
    assert depths(parent_of).dtype == np.int32


def test_depths_of_a_long_chain_and_of_roots_only():
    n = 1000
    chain = np.arange(-1, n - 1, dtype=np.int64)  # node i's parent is i-1
    assert depths(chain).tolist() == list(range(n))
    shuffled = np.random.default_rng(0).permutation(n)
    parent_of = np.full(n, -1, dtype=np.int64)
    parent_of[shuffled[1:]] = shuffled[:-1]
    d = depths(parent_of)
    assert d[shuffled].tolist() == list(range(n))
    assert depths(np.full(5, -1, dtype=np.int64)).tolist() == [0] * 5
    assert depths(np.zeros(0, dtype=np.int64)).tolist() == []


# ---------------------------------------------------------------------------- choose_parents


def test_truncation_of_a_spun_copy_hangs_from_the_spun_copy(factory):
    a = factory.make_article(0)
    spun = factory.spin(a, 0.3, seed=2)
    # A faithful copy of the original makes the original the origin (alone with its own
    # truncation the spun copy would legitimately be the most complete version).
    texts = [a, factory.punctuation_copy(a), spun, factory.truncate(spun, 0.5)]
    rank, parents = trace(texts, factory)
    assert rank[0] == 0
    got = parent_map(parents)
    assert got[3] == 2
    assert got[2] in (0, 1) and got[1] == 0
    row = parents.filter(pl.col("child") == 3)
    assert row["score"].item() == pytest.approx(1.0)


def test_truncation_of_a_spun_copy_hangs_from_it_even_when_it_is_the_origin(factory):
    a = factory.make_article(0)
    spun = factory.spin(a, 0.3, seed=2)
    rank, parents = trace([a, spun, factory.truncate(spun, 0.5)], factory)
    # The spun copy contains everything its truncation carries: it is the most complete here.
    assert rank.tolist() == [1, 0, 2]
    assert parent_map(parents) == {0: 1, 2: 1}


def test_copy_of_a_truncation_hangs_from_the_best_container(factory):
    a = factory.make_article(2)
    spun_a = factory.spin(a, 0.3, seed=6)
    # The spun truncation is contained in the spun full copy, not in the original.
    texts = [a, factory.truncate(a, 0.6), spun_a, factory.truncate(spun_a, 0.3)]
    rank, parents = trace(texts, factory)
    assert rank[0] == 0
    got = parent_map(parents)
    assert got[1] == 0 and got[2] == 0 and got[3] == 2


def _tree_checks(cluster, rank, parents):
    n = len(cluster)
    children = parents["child"].to_list()
    non_origin = set(np.flatnonzero(rank > 0).tolist())
    assert len(children) == len(set(children)) == len(non_origin)
    assert set(children) == non_origin
    pm = parent_map(parents)
    for child, parent in pm.items():
        assert cluster[child] == cluster[parent]
        assert rank[parent] < rank[child]
    parent_of = np.full(n, -1, dtype=np.int64)
    parent_of[list(pm)] = list(pm.values())
    d = depths(parent_of)
    for node in range(n):  # every walk up ends at the cluster's origin, in depth steps
        steps, x = 0, node
        while parent_of[x] >= 0:
            x = parent_of[x]
            steps += 1
            assert steps <= n, "cycle"
        assert rank[x] == 0 and cluster[x] == cluster[node] and steps == d[node]
    conf = parents["confidence"].to_numpy()
    assert ((conf > 0) & (conf < 1)).all()


def test_every_non_origin_member_gets_exactly_one_better_ranked_parent(factory, rng):
    a, b = factory.make_article(0), factory.make_article(4)
    spun = factory.spin(a, 0.3, seed=1)
    texts = [
        factory.truncate(a, 0.5), a, spun, factory.truncate(spun, 0.7), factory.noisy_copy(a),
        factory.spin(factory.truncate(a, 0.8), 0.2, seed=3), factory.truncate(a, 0.3),
        b, factory.truncate(b, 0.6), factory.spin(b, 0.3, seed=8),
        factory.make_article(5),
    ]
    cluster = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    n = len(texts)
    # Candidate pairs: a random half of all pairs (any cluster) - the origin fallback covers the rest.
    every = all_pairs(range(n))
    pairs = every.filter(pl.Series(rng.random(every.height) < 0.5))
    rank, parents = trace(texts, factory, cluster, pairs)
    _tree_checks(cluster, rank, parents)
    # With no candidate pair at all every member hangs from its origin.
    empty = pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32})
    rank, parents = trace(texts, factory, cluster, empty)
    _tree_checks(cluster, rank, parents)
    origins = {int(cluster[i]): i for i in np.flatnonzero(rank == 0)}
    assert all(origins[int(cluster[c])] == p for c, p in parent_map(parents).items())


def test_singletons_get_no_parent(factory):
    texts = [factory.make_article(i) for i in range(3)]
    _, parents = trace(texts, factory, cluster=[0, 1, 2], pairs=pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32}))
    assert parents.height == 0
    assert parents.columns == ["child", "parent", "score", "confidence"]


def test_clear_winner_is_more_confident_than_a_coin_toss(factory):
    a = factory.make_article(1)
    # Child of two identical full copies: a coin toss between them.
    _, tie = trace([a, a, factory.truncate(a, 0.5)], factory)
    # Child that only one candidate contains.
    spun = factory.spin(a, 0.4, seed=3)
    _, clear = trace([a, spun, factory.truncate(spun, 0.5)], factory)
    tie_conf = tie.filter(pl.col("child") == 2)["confidence"].item()
    clear_conf = clear.filter(pl.col("child") == 2)["confidence"].item()
    assert clear_conf > tie_conf


def test_pipeline_tree_is_consistent(factory, run_pipeline):
    a = factory.make_article(0)
    spun = factory.spin(a, 0.3, seed=2)
    docs = {
        "orig": a, "spun": spun, "spun_trunc": factory.truncate(spun, 0.5),
        "trunc": factory.truncate(a, 0.6), "trunc_trunc": factory.truncate(a, 0.3),
        "other": factory.make_article(3),
    }
    result = run_pipeline(docs)
    d = {r["doc_id"]: r for r in result.documents.iter_rows(named=True)}
    assert d["orig"]["is_origin"] and d["orig"]["depth"] == 0 and d["orig"]["parent_id"] is None
    assert d["spun_trunc"]["parent_id"] == "spun"
    for row in d.values():
        if row["parent_id"] is not None:
            parent = d[row["parent_id"]]
            assert parent["cluster_id"] == row["cluster_id"]
            assert row["depth"] == parent["depth"] + 1
    edges = result.edges
    assert sorted(edges["child_id"].to_list()) == sorted(k for k, r in d.items() if not r["is_origin"])
