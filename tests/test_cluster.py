"""link.cluster: Kruskal-style growth without chaining, checked on hand-made sets, against a plain model, end to end.

The end-to-end tests run :func:`provenance.run` with the default :class:`Config`
on small hand-made folders of .txt files.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.link.cluster import grow_clusters
from provenance.link.verify import PairRule, pair_scores
from tests.fixtures import make_sets

RULE = PairRule.of(Config().link)
FOUNDERS = Config().link.cluster_founders

# ---------------------------------------------------------------------------- grow_clusters on hand-made sets


def words_only(parts) -> dict:
    return {"words": make_sets(parts), "anchors": make_sets([set() for _ in parts])}


def verified_edges(views, rule: PairRule = RULE) -> pl.DataFrame:
    """Every pair passing ``rule``, with its containment as strength (what the link stage hands over)."""
    n = views["words"].n_docs
    a, b = np.triu_indices(n, k=1)
    c, j = pair_scores(views, a, b, rule.min_anchor_set)
    keep = rule.clears(c, j)
    return pl.DataFrame({"a": a[keep], "b": b[keep], "strength": c[keep]})


def groups_of(names, roots) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for name, root in zip(names, roots.tolist()):
        groups.setdefault(root, set()).add(name)
    return {frozenset(g) for g in groups.values()}


def partition(named_sets: dict[str, set[int]], order: list[str] | None = None, founders: int = FOUNDERS) -> set[frozenset[str]]:
    """Cluster ``named_sets`` (words view only) with verified all-pairs edges, rows in ``order``."""
    names = order or list(named_sets)
    views = words_only([named_sets[n] for n in names])
    return groups_of(names, grow_clusters(len(names), verified_edges(views), views, RULE, founders))


STORY_A = set(range(100))
STORY_B = set(range(1000, 1100))
ROUNDUP = set(range(50)) | set(range(1000, 1050))


def test_grow_clusters_roots_are_row_indices_of_members():
    views = words_only([{1, 2, 3}, {1, 2, 3}, {9}])
    edges = pl.DataFrame({"a": [0], "b": [1], "strength": [1.0]})
    roots = grow_clusters(3, edges, views, RULE, FOUNDERS)
    assert roots.dtype == np.int64
    assert roots[0] == roots[1] and roots[0] in (0, 1)
    assert roots[2] == 2
    assert grow_clusters(3, edges.clear(), views, RULE, FOUNDERS).tolist() == [0, 1, 2]


def test_two_multi_member_clusters_that_agree_merge():
    # Two pairs of copies; every cross pair passes (containment 0.8), but the copies pair up first.
    docs = {"a1": set(range(100)), "a2": set(range(100)), "b1": set(range(20, 120)), "b2": set(range(20, 120))}
    assert partition(docs) == {frozenset(docs)}
    # Three and three, founders all agreeing: still one cluster.
    docs = {
        "a1": set(range(100)), "a2": set(range(100)), "a3": set(range(95)),
        "b1": set(range(15, 115)), "b2": set(range(15, 115)), "b3": set(range(15, 110)),
    }
    assert partition(docs) == {frozenset(docs)}


def test_a_lone_document_joins_on_its_edge_alone():
    # x passes against a1 only; a multi-member cluster takes a singleton without asking its founders.
    docs = {"a1": set(range(100)), "a2": set(range(60)) | set(range(200, 240)), "a3": set(range(60)) | set(range(300, 340)),
            "x": set(range(60, 100)) | set(range(500, 560))}
    assert partition(docs) == {frozenset(docs)}


def founders_case(f2_agrees: bool) -> dict[str, set[int]]:
    """Cluster K = f1, f2, f3 (joined in that order) and cluster L = x, y; the x-f1 and y-f1 edges are the weakest.

    x and y pass against f1; against f2 only when ``f2_agrees``; never against f3.
    """
    f2 = set(range(100)) if f2_agrees else set(range(50)) | set(range(400, 450))
    return {
        "f1": set(range(100)), "f2": f2, "f3": set(range(50)) | set(range(300, 350)),
        "x": set(range(50, 100)) | set(range(500, 550)), "y": set(range(50, 100)) | set(range(500, 550)),
    }


def test_multi_member_clusters_merge_when_a_majority_of_founders_agree():
    together = founders_case(f2_agrees=True)  # x and y pass 2 of K's 3 founders
    assert partition(together) == {frozenset(together)}
    apart = founders_case(f2_agrees=False)  # 1 of 3: no merge
    assert partition(apart) == {frozenset({"f1", "f2", "f3"}), frozenset({"x", "y"})}


def test_the_number_of_founders_asked_is_a_parameter():
    apart = founders_case(f2_agrees=False)
    # With a single founder f1 decides alone, and x, y pass against it.
    assert partition(apart, founders=1) == {frozenset(apart)}
    # Two founders f1, f2: one of two is half, rounded up.
    assert partition(apart, founders=2) == {frozenset(apart)}
    assert partition(apart, founders=3) == {frozenset({"f1", "f2", "f3"}), frozenset({"x", "y"})}


def test_roundup_does_not_glue_two_multi_member_clusters():
    docs = {
        "a": STORY_A, "a1": STORY_A, "a2": set(range(90)),
        "b": STORY_B, "b1": STORY_B, "b2": set(range(1000, 1085)),
        "roundup": ROUNDUP,
    }
    groups = partition(docs)
    a_group = next(g for g in groups if "a" in g)
    b_group = next(g for g in groups if "b" in g)
    assert a_group != b_group
    assert a_group | b_group == set(docs)
    assert {"a", "a1", "a2"} <= a_group and {"b", "b1", "b2"} <= b_group


def test_plain_chain_of_singletons_is_one_cluster():
    docs = {"x": set(range(100)), "y": set(range(30, 130)), "z": set(range(60, 160))}
    assert partition(docs) == {frozenset(docs)}


def test_result_does_not_depend_on_edge_input_order(rng):
    docs = {"a": STORY_A, "a1": set(range(70)), "b": STORY_B, "b1": set(range(1000, 1060)), "r": ROUNDUP}
    views = words_only(list(docs.values()))
    edges = verified_edges(views)
    first = grow_clusters(len(docs), edges, views, RULE, FOUNDERS)
    for _ in range(5):
        shuffled = edges.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))
        np.testing.assert_array_equal(grow_clusters(len(docs), shuffled, views, RULE, FOUNDERS), first)


ROUNDUP_WITH_TRUNCATED_B = {
    "a": STORY_A, "a1": STORY_A, "a2": STORY_A,
    "b": STORY_B, "b1": set(range(1000, 1040)), "b2": set(range(1000, 1045)),  # truncations inside the round-up
    "roundup": ROUNDUP,
}


@pytest.mark.parametrize("first", [True, False])
def test_roundup_listed_first_or_last_keeps_stories_apart(first):
    others = [n for n in ROUNDUP_WITH_TRUNCATED_B if n != "roundup"]
    names = ["roundup", *others] if first else [*others, "roundup"]
    groups = partition(ROUNDUP_WITH_TRUNCATED_B, names)
    assert not any({"a", "b"} <= g for g in groups)
    assert any({"a", "a1", "a2"} <= g for g in groups) and any({"b", "b1", "b2"} <= g for g in groups)


# ---------------------------------------------------------------------------- against a plain model of the rule


def model_clusters(views, edges: pl.DataFrame, rule: PairRule, founders: int) -> set[frozenset[int]]:
    """The module docstring's rule in plain Python: strongest edge first; multi-member merges need each
    endpoint to pass against at least half (rounded up) of the other cluster's first ``founders`` members."""
    sets = {name: [set(views[name].doc(i).tolist()) for i in range(views[name].n_docs)] for name in views}

    def passes(x: int, y: int) -> bool:
        best_c = best_j = 0.0
        for name in ("words", "anchors"):
            sx, sy = sets[name][x], sets[name][y]
            if not sx or not sy or (name == "anchors" and min(len(sx), len(sy)) < rule.min_anchor_set):
                continue
            inter = len(sx & sy)
            best_c, best_j = max(best_c, inter / min(len(sx), len(sy))), max(best_j, inter / len(sx | sy))
        return best_c >= rule.min_containment and best_j >= rule.min_jaccard

    n = views["words"].n_docs
    cluster_of = list(range(n))
    members = {i: [i] for i in range(n)}
    founding = {i: [i] for i in range(n)}
    for a, b, _ in edges.sort(["strength", "a", "b"], descending=[True, False, False]).iter_rows():
        ra, rb = cluster_of[a], cluster_of[b]
        if ra == rb:
            continue
        if len(members[ra]) > 1 and len(members[rb]) > 1:
            ok_a = sum(passes(a, f) for f in founding[rb]) * 2 >= len(founding[rb]) + len(founding[rb]) % 2
            ok_b = sum(passes(b, f) for f in founding[ra]) * 2 >= len(founding[ra]) + len(founding[ra]) % 2
            if not (ok_a and ok_b):
                continue
        big, small = (ra, rb) if len(members[ra]) >= len(members[rb]) else (rb, ra)
        founding[big] = (founding[big] + founding[small])[:founders]
        for m in members.pop(small):
            cluster_of[m] = big
            members[big].append(m)
        del founding[small]
    return {frozenset(m) for m in members.values()}


def story_families(rng: np.random.Generator) -> dict:
    """Stories with copies, truncations and round-ups quoting two or three of them (sets of shingle ids)."""
    stories = [np.arange(s * 1000, s * 1000 + 120) for s in range(5)]
    parts = []
    for story in stories:
        for _ in range(int(rng.integers(2, 6))):
            cut = int(rng.integers(40, 121))
            noise = rng.integers(50_000, 60_000, size=int(rng.integers(0, 20)))
            parts.append(set(story[:cut].tolist()) | set(noise.tolist()))
    for _ in range(4):
        quoted = rng.choice(len(stories), size=int(rng.integers(2, 4)), replace=False)
        parts.append(set(np.concatenate([stories[q][: int(rng.integers(30, 70))] for q in quoted]).tolist()))
    order = rng.permutation(len(parts))
    words = [parts[i] for i in order]
    anchors = [set((np.array(sorted(p)) // 10).tolist()) if i % 3 else set() for i, p in enumerate(words)]
    return {"words": make_sets(words), "anchors": make_sets(anchors)}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("founders", [1, 2, 3, 5])
def test_grow_clusters_equals_the_plain_model(seed, founders):
    rng = np.random.default_rng(seed)
    views = story_families(rng)
    edges = verified_edges(views)
    roots = grow_clusters(views["words"].n_docs, edges, views, RULE, founders)
    got = groups_of(range(views["words"].n_docs), roots)
    assert got == model_clusters(views, edges, RULE, founders)
    assert all(roots[i] in g for g in got for i in g)  # the root is a member


def test_the_plain_model_cases_include_refused_and_accepted_merges():
    """The model comparison has teeth: without the founders check the families chain into fewer clusters."""
    refused = accepted = 0
    for seed in range(6):
        views = story_families(np.random.default_rng(seed))
        edges = verified_edges(views)
        ruled = model_clusters(views, edges, RULE, FOUNDERS)
        chained = model_clusters(views, edges, PairRule(0.0, 0.0, 0), FOUNDERS)  # every founder agrees
        refused += len(ruled) > len(chained)
        accepted += any(len(g) > 3 for g in ruled)
    assert refused >= 3 and accepted == 6


# ---------------------------------------------------------------------------- end-to-end phenomena


def _background(factory) -> dict[str, str]:
    """Unrelated stories (2-5) so that every run has more than the cluster under test (stories 0, 1)."""
    return {f"other_{s}": factory.make_article(s) for s in (2, 3, 4, 5)}


def _assert_background_apart(cl: dict[str, str]):
    others = [cl[k] for k in cl if k.startswith("other_")]
    assert len(set(others)) == len(others)
    rest = {cl[k] for k in cl if not k.startswith("other_")}
    assert not rest & set(others)


def test_synonym_spun_copy_joins_its_source(factory, run_pipeline):
    a = factory.make_article(0)
    spun = factory.spin(a, 0.3, seed=11)
    assert 0.27 <= factory.spun_share(a, spun) <= 0.33
    result = run_pipeline({"source": a, "spun": spun, **_background(factory)})
    cl = factory.cluster_of(result)
    assert cl["spun"] == cl["source"]
    _assert_background_apart(cl)


@pytest.mark.parametrize("story", [0, 1, 2])
def test_spun_copy_joins_for_several_stories(factory, run_pipeline, story):
    a = factory.make_article(story)
    spun = factory.spin(a, 0.3, seed=story)
    result = run_pipeline({"source": a, "spun": spun, "other": factory.make_article(story + 3)})
    cl = factory.cluster_of(result)
    assert cl["spun"] == cl["source"] != cl["other"]


def test_truncated_copy_joins_its_source(factory, run_pipeline):
    a = factory.make_article(1)
    result = run_pipeline({"source": a, "first40": factory.truncate(a, 0.4), **_background(factory)})
    cl = factory.cluster_of(result)
    assert cl["first40"] == cl["source"]
    _assert_background_apart(cl)


def _roundup(factory) -> str:
    return (
        "Morning briefing: the stories of the day\n\n"
        + factory.make_article(0, 6, headline=False)
        + "\n"
        + factory.make_article(1, 6, headline=False)
    )


COPY_KINDS = {
    "identical": lambda f, t, i: t,
    "noisy": lambda f, t, i: f.noisy_copy(t),
    "spun": lambda f, t, i: f.spin(t, 0.3, seed=i),
    "truncated": lambda f, t, i: f.truncate(t, 0.6 + 0.1 * i),
}


@pytest.mark.parametrize(
    ("kind_a", "kind_b"), [("identical", "identical"), ("noisy", "spun"), ("spun", "truncated"), ("truncated", "noisy")]
)
def test_roundup_of_two_stories_does_not_glue_their_clusters(factory, run_pipeline, kind_a, kind_b):
    a, b = factory.make_article(0), factory.make_article(1)
    docs = {
        "a": a, "a_copy1": COPY_KINDS[kind_a](factory, a, 1), "a_copy2": COPY_KINDS[kind_a](factory, a, 2),
        "b": b, "b_copy1": COPY_KINDS[kind_b](factory, b, 1), "b_copy2": COPY_KINDS[kind_b](factory, b, 2),
        "roundup": _roundup(factory),
        **_background(factory),
    }
    cl = factory.cluster_of(run_pipeline(docs))
    assert cl["a"] == cl["a_copy1"] == cl["a_copy2"]
    assert cl["b"] == cl["b_copy1"] == cl["b_copy2"]
    assert cl["a"] != cl["b"]
    _assert_background_apart(cl)


def test_roundup_sorted_first_with_truncated_copies_does_not_glue(factory, run_pipeline):
    a, b = factory.make_article(0), factory.make_article(1)
    docs = {
        "0-roundup": _roundup(factory),
        "a": a, "a_copy1": a, "a_copy2": factory.noisy_copy(a),
        "b": b, "b_copy1": factory.truncate(b, 0.4), "b_copy2": factory.truncate(b, 0.45),
    }
    cl = factory.cluster_of(run_pipeline(docs))
    assert cl["b"] == cl["b_copy1"] == cl["b_copy2"]
    assert cl["a"] != cl["b"]


def test_same_roundup_named_last_keeps_truncated_story_apart(factory, run_pipeline):
    a, b = factory.make_article(0), factory.make_article(1)
    docs = {
        "roundup": _roundup(factory),
        "a": a, "a_copy1": a, "a_copy2": factory.noisy_copy(a),
        "b": b, "b_copy1": factory.truncate(b, 0.4), "b_copy2": factory.truncate(b, 0.45),
    }
    cl = factory.cluster_of(run_pipeline(docs))
    assert cl["b"] == cl["b_copy1"] == cl["b_copy2"]
    assert cl["a"] != cl["b"]


def test_other_article_on_the_same_event_stays_apart(factory, run_pipeline):
    a = factory.make_article(0)
    other = factory.make_article(factory.SAME_EVENT_AS_0)
    docs = {"a": a, "a_trunc": factory.truncate(a, 0.8), "same_event": other, **_background(factory)}
    cl = factory.cluster_of(run_pipeline(docs))
    assert cl["a"] == cl["a_trunc"]
    assert cl["same_event"] != cl["a"]
    _assert_background_apart(cl)


def test_exact_duplicates_share_a_cluster(factory, run_pipeline):
    a = factory.make_article(1)
    spaced = a.replace(" ", "  ").replace("\n\n", "\n \n")
    docs = {"a": a, "a_shouted": factory.noisy_copy(a), "a_spaced": spaced, **_background(factory)}
    result = run_pipeline(docs)
    cl = factory.cluster_of(result)
    assert cl["a"] == cl["a_shouted"] == cl["a_spaced"]
    hashes = dict(zip(result.documents["doc_id"].to_list(), result.documents["content_hash"].to_list()))
    assert hashes["a"] == hashes["a_shouted"] == hashes["a_spaced"]
    row = result.clusters.filter(pl.col("cluster_id") == cl["a"])
    assert row["size"].item() == 3 and row["n_exact_duplicates"].item() == 2
    _assert_background_apart(cl)


def test_unrelated_stories_are_all_singletons(factory, run_pipeline):
    result = run_pipeline({f"s{i}": factory.make_article(i) for i in range(7)})
    assert result.clusters.height == 7
    assert (result.clusters["size"] == 1).all()
    assert result.edges.height == 0
