"""cluster: Kruskal-style growth without chaining, and end-to-end clustering phenomena.

The end-to-end tests run :func:`provenance.pipeline.run` with the default
:class:`PipelineConfig` on small hand-made folders of .txt files.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.cluster import grow_clusters
from provenance.config import PipelineConfig
from provenance.pipeline import MIN_ANCHOR_SET
from provenance.shingle import ShingleSets
from provenance.verify import pair_scores

# ---------------------------------------------------------------------------- grow_clusters on hand-made sets


def make_sets(parts) -> ShingleSets:
    parts = [np.unique(np.asarray(list(p), dtype=np.uint32)) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return ShingleSets(np.concatenate(parts).astype(np.uint32), offsets)


def partition(named_sets: dict[str, set[int]], order: list[str] | None = None) -> set[frozenset[str]]:
    """Cluster ``named_sets`` (words view only) with verified all-pairs edges, rows in ``order``."""
    config = PipelineConfig()
    names = order or list(named_sets)
    views = {"words": make_sets([named_sets[n] for n in names]), "anchors": make_sets([set() for _ in names])}
    a, b = np.triu_indices(len(names), k=1)
    c, j = pair_scores(views, a, b, MIN_ANCHOR_SET)
    edges = pl.DataFrame({"a": a, "b": b, "strength": c, "jaccard": j}).filter(
        (pl.col("strength") >= config.min_containment) & (pl.col("jaccard") >= config.min_jaccard)
    )
    roots = grow_clusters(
        len(names), edges, views,
        min_containment=config.min_containment, min_jaccard=config.min_jaccard, min_anchor_set=MIN_ANCHOR_SET,
    )
    groups: dict[int, set[str]] = {}
    for name, root in zip(names, roots.tolist()):
        groups.setdefault(root, set()).add(name)
    return {frozenset(g) for g in groups.values()}


STORY_A = set(range(0, 100))
STORY_B = set(range(1000, 1100))
ROUNDUP = set(range(0, 50)) | set(range(1000, 1050))


def test_grow_clusters_roots_are_row_indices_of_members():
    views = {"words": make_sets([{1, 2, 3}, {1, 2, 3}, {9}]), "anchors": make_sets([set(), set(), set()])}
    edges = pl.DataFrame({"a": [0], "b": [1], "strength": [1.0]})
    roots = grow_clusters(
        3, edges, views, min_containment=0.36, min_jaccard=0.05, min_anchor_set=8
    )
    assert roots[0] == roots[1] and roots[0] in (0, 1)
    assert roots[2] == 2


def test_roundup_does_not_glue_two_multi_member_clusters():
    docs = {
        "a": STORY_A, "a1": STORY_A, "a2": set(range(0, 90)),
        "b": STORY_B, "b1": STORY_B, "b2": set(range(1000, 1085)),
        "roundup": ROUNDUP,
    }
    groups = partition(docs)
    a_group = next(g for g in groups if "a" in g)
    b_group = next(g for g in groups if "b" in g)
    assert a_group != b_group
    assert {"a", "a1", "a2"} <= a_group and {"b", "b1", "b2"} <= b_group


def test_plain_chain_of_singletons_is_one_cluster():
    docs = {"x": set(range(0, 100)), "y": set(range(30, 130)), "z": set(range(60, 160))}
    assert partition(docs) == {frozenset(docs)}


def test_result_does_not_depend_on_edge_input_order(rng):
    docs = {"a": STORY_A, "a1": set(range(0, 70)), "b": STORY_B, "b1": set(range(1000, 1060)), "r": ROUNDUP}
    views = {"words": make_sets(list(docs.values())), "anchors": make_sets([set()] * len(docs))}
    a, b = np.triu_indices(len(docs), k=1)
    c, _ = pair_scores(views, a, b, MIN_ANCHOR_SET)
    edges = pl.DataFrame({"a": a, "b": b, "strength": c}).filter(pl.col("strength") >= 0.36)
    kwargs = dict(min_containment=0.36, min_jaccard=0.05, min_anchor_set=MIN_ANCHOR_SET)
    first = grow_clusters(len(docs), edges, views, **kwargs)
    for _ in range(5):
        shuffled = edges.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 30)))
        again = grow_clusters(len(docs), shuffled, views, **kwargs)
        np.testing.assert_array_equal(again, first)


ROUNDUP_WITH_TRUNCATED_B = {
    "a": STORY_A, "a1": STORY_A, "a2": STORY_A,
    "b": STORY_B, "b1": set(range(1000, 1040)), "b2": set(range(1000, 1045)),  # truncations inside the round-up
    "roundup": ROUNDUP,
}


def test_roundup_listed_last_keeps_stories_apart():
    names = list(ROUNDUP_WITH_TRUNCATED_B)  # round-up is the last row
    groups = partition(ROUNDUP_WITH_TRUNCATED_B, names)
    assert not any({"a", "b"} <= g for g in groups)


def test_roundup_listed_first_keeps_stories_apart():
    names = ["roundup"] + [n for n in ROUNDUP_WITH_TRUNCATED_B if n != "roundup"]
    groups = partition(ROUNDUP_WITH_TRUNCATED_B, names)
    assert not any({"a", "b"} <= g for g in groups)


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
