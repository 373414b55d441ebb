"""trace.tree: parent choice (Edmonds' optimum on the rank-restricted candidate graph), confidence, depths, edit depth."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import polars as pl
import pytest
from networkx.algorithms.tree.branchings import maximum_branching, minimum_spanning_arborescence

from provenance.config import Config
from provenance.prepare.words import Words
from provenance.trace.origin import completeness, origin_rank
from provenance.trace.stage import LINEAGE, lineage_of_members
from provenance.trace.tree import choose_parents, depths, edit_depth, order_by_depth
from tests.fixtures import (
    build_views,
    light_edits,
    make_article,
    make_sets,
    n_tokens,
    noisy_copy,
    punctuation_copy,
    spin,
    truncate,
    words_of,
)

CONFIG = Config()
COEF = CONFIG.trace.confidence_coef
NO_PAIRS = pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32})


def all_pairs(rows) -> pl.DataFrame:
    rows = list(rows)
    pairs = [(x, y) for i, x in enumerate(rows) for y in rows[i + 1 :]]
    if not pairs:
        return NO_PAIRS
    a, b = zip(*pairs)
    return pl.DataFrame({"a": a, "b": b}, schema={"a": pl.UInt32, "b": pl.UInt32})


def parent_map(parents: pl.DataFrame) -> dict[int, int]:
    return dict(zip(parents["child"].to_list(), parents["parent"].to_list()))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


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
    assert depths(parent_of)[shuffled].tolist() == list(range(n))
    assert depths(np.full(5, -1, dtype=np.int64)).tolist() == [0] * 5
    assert depths(np.zeros(0, dtype=np.int64)).tolist() == []


# ---------------------------------------------------------------------------- choose_parents on hand-made sets


def test_parent_scores_and_confidence_values():
    # s2 lies inside s0 entirely and half inside s1; s1 half inside the origin s0.
    views = {"v": make_sets([range(100), range(50, 150), range(20, 80)])}
    cluster, rank = np.zeros(3, dtype=np.int64), np.array([0, 1, 2])
    coef = (0.5, -1.0, 3.0)
    out = choose_parents(cluster, rank, all_pairs(range(3)), views, "v", confidence_coef=coef)
    assert out.columns == ["child", "parent", "score", "confidence"]
    assert out["child"].to_list() == [1, 2] and out["parent"].to_list() == [0, 0]
    assert out["score"].to_list() == pytest.approx([0.5, 1.0])
    b0, b1, b2 = coef
    # Child 1: one candidate (runner-up 0); child 2: winner 1.0, runner-up 0.5.
    assert out["confidence"].to_list() == pytest.approx([sigmoid(b0 + b1 * 0.5 + b2 * 0.5), sigmoid(b0 + b1 * 1.0 + b2 * 0.5)])
    default = choose_parents(cluster, rank, all_pairs(range(3)), views, "v", confidence_coef=COEF)
    b0, b1, b2 = COEF
    assert default["confidence"].to_list() == pytest.approx([sigmoid(b0 + b1 * 0.5 + b2 * 0.5), sigmoid(b0 + b1 + b2 * 0.5)])


def test_a_clear_winner_is_surer_than_a_coin_toss_between_twins():
    views = {"v": make_sets([range(100), range(100), range(50), range(200, 300), range(50)])}
    cluster, rank = np.zeros(5, dtype=np.int64), np.array([0, 1, 2, 3, 4])
    out = choose_parents(cluster, rank, all_pairs(range(5)), views, "v", confidence_coef=COEF).sort("child")
    conf = dict(zip(out["child"].to_list(), out["confidence"].to_list()))
    b0, b1, b2 = COEF
    assert conf[2] == pytest.approx(sigmoid(b0 + b1))  # twins 0 and 1 both hold it: margin 0
    assert conf[4] == pytest.approx(sigmoid(b0 + b1))  # 0, 1 and 2 all hold it
    assert conf[1] == pytest.approx(sigmoid(b0 + b1 + b2))  # only the origin can be its parent


def test_ties_go_to_the_higher_jaccard_then_the_lower_row():
    # Child 3 lies inside 0, 1 and 2 alike; 2 is the smallest container (highest Jaccard).
    views = {"v": make_sets([range(200), range(150), range(100), range(50)])}
    cluster, rank = np.zeros(4, dtype=np.int64), np.arange(4)
    assert parent_map(choose_parents(cluster, rank, all_pairs(range(4)), views, "v", confidence_coef=COEF))[3] == 2
    twins = {"v": make_sets([range(200), range(100), range(100), range(50)])}
    assert parent_map(choose_parents(cluster, rank, all_pairs(range(4)), twins, "v", confidence_coef=COEF))[3] == 1


def test_only_better_ranked_neighbours_in_the_same_cluster_are_candidates():
    # Row 1 would hold row 2 entirely, but ranks below it; row 3 holds it but is in another cluster.
    views = {"v": make_sets([range(60), range(100), range(80), range(100)])}
    cluster = np.array([0, 0, 0, 1])
    rank = np.array([0, 2, 1, 0])
    got = choose_parents(cluster, rank, all_pairs(range(4)), views, "v", confidence_coef=COEF)
    assert parent_map(got) == {1: 2, 2: 0}
    assert got.filter(pl.col("child") == 2)["score"].item() == pytest.approx(60 / 80)


def test_a_member_without_candidate_pairs_hangs_from_its_origin():
    views = {"v": make_sets([range(100), range(90), range(80), range(500, 600), range(500, 550)])}
    cluster = np.array([0, 0, 0, 1, 1])
    rank = np.array([0, 1, 2, 0, 1])
    got = choose_parents(cluster, rank, NO_PAIRS, views, "v", confidence_coef=COEF)
    assert parent_map(got) == {1: 0, 2: 0, 4: 3}
    with_pair = pl.DataFrame({"a": [1], "b": [2]}, schema={"a": pl.UInt32, "b": pl.UInt32})
    assert parent_map(choose_parents(cluster, rank, with_pair, views, "v", confidence_coef=COEF)) == {1: 0, 2: 1, 4: 3}


def test_singletons_get_no_parent():
    views = {"v": make_sets([range(10), range(10), range(10)])}
    out = choose_parents(np.arange(3), np.zeros(3, dtype=np.int64), all_pairs(range(3)), views, "v", confidence_coef=COEF)
    assert out.height == 0
    assert out.columns == ["child", "parent", "score", "confidence"]


# ---------------------------------------------------------------------------- Edmonds on random candidate graphs


def random_case(rng: np.random.Generator, n: int = 36, n_clusters: int = 4):
    cluster = rng.integers(0, n_clusters, size=n)
    rank = np.zeros(n, dtype=np.int64)
    for c in range(n_clusters):
        members = np.flatnonzero(cluster == c)
        rank[members] = rng.permutation(len(members))
    pool = np.arange(400)
    parts = [rng.choice(pool, size=int(rng.integers(20, 200)), replace=False) for _ in range(n)]
    every = all_pairs(range(n))
    pairs = every.filter(pl.Series(rng.random(every.height) < 0.4))  # any clusters: cross pairs are ignored
    return cluster, rank, pairs, {"v": make_sets(parts)}, parts


def candidate_graph(cluster, rank, pairs, parts) -> nx.DiGraph:
    """Parent -> child edges allowed by rank (plus the origin fallback), weighted by the child's share held."""
    sets = [set(p.tolist()) for p in parts]
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(cluster)))
    origin = {int(cluster[i]): i for i in np.flatnonzero(rank == 0)}
    edges = {(a, b) for a, b in pairs.iter_rows() if cluster[a] == cluster[b]}
    edges |= {(origin[int(cluster[x])], x) for x in np.flatnonzero(rank > 0)}
    for a, b in edges:
        p, c = (a, b) if rank[a] < rank[b] else (b, a)
        score = len(sets[c] & sets[p]) / len(sets[c])
        graph.add_edge(p, c, score=score, weight=1.0 + score, cost=1.0 - score)
    return graph


@pytest.mark.parametrize("seed", range(8))
def test_choose_parents_is_edmonds_optimum_on_the_rank_restricted_graph(seed):
    rng = np.random.default_rng(seed)
    cluster, rank, pairs, views, parts = random_case(rng)
    got = choose_parents(cluster, rank, pairs, views, "v", confidence_coef=COEF)
    chosen = parent_map(got)
    graph = candidate_graph(cluster, rank, pairs, parts)
    assert nx.is_directed_acyclic_graph(graph)

    # The whole forest: a maximum branching (weights 1 + score, so every non-origin member gets a parent).
    branching = maximum_branching(graph, attr="weight")
    optimum = {c: p for p, c in branching.edges()}
    assert set(optimum) == set(chosen) == set(np.flatnonzero(rank > 0).tolist())
    total = sum(graph[p][c]["score"] for c, p in optimum.items())
    assert sum(got["score"].to_list()) == pytest.approx(total)

    unique = 0
    for c, p in chosen.items():
        best = max(graph[q][c]["score"] for q in graph.predecessors(c))
        assert graph.has_edge(p, c) and graph[p][c]["score"] == pytest.approx(best)
        if sum(graph[q][c]["score"] == best for q in graph.predecessors(c)) == 1:
            unique += 1
            assert optimum[c] == p
    assert unique >= 0.7 * len(chosen)

    # Per cluster: the minimum-cost spanning arborescence rooted at the origin has the same parents.
    for root in np.flatnonzero(rank == 0).tolist():
        members = np.flatnonzero(cluster == cluster[root]).tolist()
        if len(members) < 2:
            continue
        arborescence = minimum_spanning_arborescence(graph.subgraph(members), attr="cost")
        tree_parents = {c: p for p, c in arborescence.edges()}
        assert sum(graph[p][c]["score"] for c, p in tree_parents.items()) == pytest.approx(
            sum(got.filter(pl.col("child").is_in(members))["score"].to_list())
        )


# ---------------------------------------------------------------------------- choose_parents on texts


def trace(texts, cluster=None, pairs=None):
    views = build_views(texts)
    cluster = np.zeros(len(texts), dtype=np.int64) if cluster is None else np.asarray(cluster, dtype=np.int64)
    views[LINEAGE] = lineage_of_members(pl.Series(texts), cluster, CONFIG)
    rank = origin_rank(cluster, completeness(cluster, views, CONFIG.trace.completeness_anchor_weight), n_tokens(texts),
                       date_tie=CONFIG.trace.date_tie)
    pairs = all_pairs(range(len(texts))) if pairs is None else pairs
    return rank, choose_parents(cluster, rank, pairs, views, LINEAGE, confidence_coef=COEF)


def test_truncation_of_a_spun_copy_hangs_from_the_spun_copy():
    a = make_article(0)
    spun = spin(a, 0.3, seed=2)
    # A faithful copy of the original makes the original the origin.
    rank, parents = trace([a, punctuation_copy(a), spun, truncate(spun, 0.5)])
    assert rank[0] == 0
    got = parent_map(parents)
    assert got[3] == 2 and got[1] == 0 and got[2] in (0, 1)
    assert parents.filter(pl.col("child") == 3)["score"].item() == pytest.approx(1.0)


def test_copy_of_a_truncation_hangs_from_the_best_container():
    a = make_article(2)
    spun_a = spin(a, 0.3, seed=6)
    rank, parents = trace([a, truncate(a, 0.6), spun_a, truncate(spun_a, 0.3)])
    assert rank[0] == 0
    assert parent_map(parents) == {1: 0, 2: 0, 3: 2}


def test_tree_checks_on_a_mixed_corpus(rng):
    a, b = make_article(0), make_article(4)
    spun = spin(a, 0.3, seed=1)
    texts = [
        truncate(a, 0.5), a, spun, truncate(spun, 0.7), noisy_copy(a),
        spin(truncate(a, 0.8), 0.2, seed=3), truncate(a, 0.3),
        b, truncate(b, 0.6), spin(b, 0.3, seed=8),
        make_article(5),
    ]
    cluster = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    every = all_pairs(range(len(texts)))
    for pairs in (every.filter(pl.Series(rng.random(every.height) < 0.5)), NO_PAIRS):
        rank, parents = trace(texts, cluster, pairs)
        pm = parent_map(parents)
        assert set(pm) == set(np.flatnonzero(rank > 0).tolist())
        assert all(cluster[c] == cluster[p] and rank[p] < rank[c] for c, p in pm.items())
        parent_of = np.full(len(texts), -1, dtype=np.int64)
        parent_of[list(pm)] = list(pm.values())
        origin = {int(cluster[i]): i for i in np.flatnonzero(rank == 0)}
        for node, d in enumerate(depths(parent_of).tolist()):
            x = node
            for _ in range(d):
                x = parent_of[x]
            assert x == origin[int(cluster[node])]
    assert all(origin[int(cluster[c])] == p for c, p in pm.items())  # without pairs: everyone under the origin


# ---------------------------------------------------------------------------- edit depth


def tokens(text: str) -> Words:
    words = text.split()
    return Words(words, [0] * len(words), np.zeros(len(words), dtype=bool), np.zeros(len(words), dtype=bool))


ORIGIN = " ".join(f"o{i}" for i in range(20))


def replaced(positions: dict[int, str], drop: set[int] = frozenset(), after: dict[int, str] | None = None) -> str:
    out = []
    for i in range(20):
        if i not in drop:
            out.append(positions.get(i, f"o{i}"))
        if after and i in after:
            out.append(after[i])
    return " ".join(out)


EDIT_CASES = {
    "copy": (ORIGIN, 0, 0, 0),  # text, changed positions, lost runs, lost tokens
    "two swaps": (replaced({3: "x", 10: "y"}), 2, 0, 0),
    "insertion": (replaced({}, after={5: "x y z"}), 1, 0, 0),
    "appended": (ORIGIN + " x y", 1, 0, 0),
    "lost tail": (replaced({}, drop=set(range(15, 20))), 0, 1, 5),
    "two lost runs": (replaced({}, drop={3, 4, 12, 13, 14}), 0, 2, 5),
    "swap and loss": (replaced({2: "x"}, drop={8, 9, 10}), 1, 1, 3),
}


@pytest.mark.parametrize("case", list(EDIT_CASES))
def test_edit_depth_counts_changes_against_the_origin(case):
    text, changed, runs, lost = EDIT_CASES[case]
    cluster, rank = np.zeros(2, dtype=np.int64), np.array([0, 1])
    words = {0: tokens(ORIGIN), 1: tokens(text)}
    for run_weight, token_weight in [(1.0, 0.2), (3.0, 0.5)]:
        got = edit_depth(cluster, rank, words, lost_run_weight=run_weight, lost_token_weight=token_weight)
        assert got.tolist() == pytest.approx([0.0, changed + run_weight * runs + token_weight * lost])


def test_edit_depth_of_the_light_edits_and_the_order_it_gives():
    edits = light_edits(0)
    names = ["headline", "spun", "truncated", "source", "dropped"]
    words = dict(enumerate(words_of(*[edits[n] for n in names])))
    cluster = np.zeros(5, dtype=np.int64)
    rank = np.array([1, 2, 3, 0, 4])  # the source is the origin
    depth = edit_depth(cluster, rank, words, lost_run_weight=1.0, lost_token_weight=0.2)
    source = words[3].tokens
    swapped = sum(x != y for x, y in zip(source, words[1].tokens))
    assert depth[3] == 0.0
    assert depth[0] == 1.0  # a headline inserted before the first token: one changed position
    assert depth[1] == swapped
    assert depth[2] == pytest.approx(1 + 0.2 * (len(source) - len(words[2].tokens)))
    assert depth[4] == pytest.approx(1 + 0.2 * (len(source) - len(words[4].tokens)))
    assert order_by_depth(cluster, rank, depth).tolist() == [1, 4, 3, 0, 2]


def test_edit_depth_is_per_cluster_and_zero_for_origins_and_singletons():
    a, b = light_edits(0), light_edits(1)
    texts = [a["truncated"], b["source"], a["source"], make_article(4), b["headline"]]
    cluster = np.array([0, 1, 0, 2, 1])
    rank = np.array([1, 0, 0, 0, 1])
    depth = edit_depth(cluster, rank, dict(enumerate(words_of(*texts))), lost_run_weight=1.0, lost_token_weight=0.2)
    assert depth[[1, 2, 3]].tolist() == [0.0, 0.0, 0.0]
    assert depth[4] == 1.0 and depth[0] > 1.0


def test_order_by_depth_keeps_the_origin_first_and_breaks_ties_by_rank():
    cluster = np.array([0, 0, 0, 0, 1, 1, 0])
    rank = np.array([0, 1, 2, 3, 0, 1, 4])
    depth = np.array([0.0, 5.0, 2.0, 2.0, 0.0, 0.0, 0.0])  # row 6: an exact copy, depth 0 like the origin
    assert order_by_depth(cluster, rank, depth).tolist() == [0, 4, 2, 3, 0, 1, 1]
