"""verify: exact intersections on sorted sets, pair scores (containment of the smaller, Jaccard)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.pipeline import MIN_ANCHOR_SET
from provenance.shingle import ShingleSets
from provenance.verify import intersection_sizes, pair_overlaps, pair_scores, similarity_exprs


def make_sets(parts) -> ShingleSets:
    parts = [np.unique(np.asarray(list(p), dtype=np.uint32)) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    hashes = np.concatenate(parts).astype(np.uint32) if parts else np.zeros(0, dtype=np.uint32)
    return ShingleSets(hashes, offsets)


def test_intersection_sizes_equal_python_sets(rng):
    py_sets = [set(rng.integers(0, 400, size=int(rng.integers(0, 200))).tolist()) for _ in range(40)]
    py_sets.append(set())
    sets = make_sets(py_sets)
    a = rng.integers(0, len(py_sets), size=300)
    b = rng.integers(0, len(py_sets), size=300)
    got = intersection_sizes(sets, a, b)
    expected = [len(py_sets[x] & py_sets[y]) for x, y in zip(a.tolist(), b.tolist())]
    assert got.tolist() == expected


def test_intersection_with_itself_is_its_size(rng):
    sets = make_sets([set(rng.integers(0, 2**32, size=50, dtype=np.uint64).tolist()), set()])
    assert intersection_sizes(sets, np.array([0, 1]), np.array([0, 1])).tolist() == [50, 0]


def test_intersection_sizes_of_no_pairs():
    sets = make_sets([{1, 2}])
    assert len(intersection_sizes(sets, np.array([], dtype=np.int64), np.array([], dtype=np.int64))) == 0


def test_truncated_half_is_contained(factory):
    a = factory.make_article(0)
    views = factory.build_views([a, factory.truncate(a, 0.5), factory.make_article(3)])
    containment, jaccard = pair_scores(views, np.array([0, 1, 0]), np.array([1, 0, 2]), MIN_ANCHOR_SET)
    assert containment[0] == pytest.approx(1.0, abs=0.02)
    assert containment[1] == containment[0]  # symmetric: the smaller document's share
    assert 0.35 < jaccard[0] < 0.65
    assert containment[2] < 0.1 and jaccard[2] < 0.05


def test_spun_copy_is_held_up_by_the_anchor_view(factory):
    a = factory.make_article(4)
    spun = factory.spin(a, 0.5, seed=2)
    views = factory.build_views([a, spun])
    words_only = {"words": views["words"], "anchors": make_sets([set(), set()])}
    c_words, _ = pair_scores(words_only, np.array([0]), np.array([1]), MIN_ANCHOR_SET)
    c_both, j_both = pair_scores(views, np.array([0]), np.array([1]), MIN_ANCHOR_SET)
    assert c_both[0] == pytest.approx(1.0)
    assert j_both[0] == pytest.approx(1.0)
    assert c_words[0] < 0.8


def test_anchor_view_needs_min_anchor_set_on_both_sides():
    words = make_sets([{1, 2, 3, 4}, {10, 11, 12, 13}])
    anchors = make_sets([{100, 101, 102, 103, 104}, {100, 101, 102, 103, 104}])
    views = {"words": words, "anchors": anchors}
    c, j = pair_scores(views, np.array([0]), np.array([1]), 8)
    assert (c[0], j[0]) == (0.0, 0.0)
    c, j = pair_scores(views, np.array([0]), np.array([1]), 5)
    assert (c[0], j[0]) == (1.0, 1.0)


def test_pair_scores_exact_values_and_empty_sets():
    words = make_sets([set(range(10)), set(range(5, 25)), set()])
    views = {"words": words, "anchors": make_sets([set(), set(), set()])}
    c, j = pair_scores(views, np.array([0, 0]), np.array([1, 2]), 8)
    assert c[0] == pytest.approx(5 / 10) and j[0] == pytest.approx(5 / 25)
    assert (c[1], j[1]) == (0.0, 0.0)


def test_pair_overlaps_and_similarity_columns():
    words = make_sets([set(range(10)), set(range(5, 25)), set()])
    anchors = make_sets([{1, 2}, {2, 3, 4}, set()])
    pairs = pl.DataFrame({"a": [0, 0], "b": [1, 2]}, schema={"a": pl.UInt32, "b": pl.UInt32})
    out = pair_overlaps(pairs, {"words": words, "anchors": anchors})
    assert out["words_inter"].to_list() == [5, 0]
    assert out["words_size_a"].to_list() == [10, 10] and out["words_size_b"].to_list() == [20, 0]
    assert out["anchors_inter"].to_list() == [1, 0]
    sims = out.select(*similarity_exprs("words"), *similarity_exprs("anchors"))
    assert sims["words_jaccard"].to_list() == pytest.approx([5 / 25, 0.0])
    assert sims["words_a_in_b"].to_list() == pytest.approx([0.5, 0.0])
    assert sims["words_b_in_a"].to_list() == pytest.approx([0.25, 0.0])
    assert sims["words_containment"].to_list() == pytest.approx([0.5, 0.0])
    assert sims["anchors_containment"].to_list() == pytest.approx([0.5, 0.0])


def test_estimated_containment_tracks_the_exact_value():
    """The signature estimate used to prefilter candidates stays close to the exact containment."""
    from provenance.minhash import signatures
    from provenance.shingle import ShingleSets
    from provenance.verify import estimated_containment, intersection_sizes

    rng = np.random.default_rng(7)
    base = rng.choice(2**31, size=4000, replace=False).astype(np.uint32)
    sets, offsets = [], [0]
    for keep in (1.0, 0.8, 0.5, 0.3, 0.1):  # subsets of `base` of falling size
        subset = np.sort(base[: int(len(base) * keep)])
        sets.append(subset)
        offsets.append(offsets[-1] + len(subset))
    shingles = ShingleSets(np.concatenate(sets), np.array(offsets, dtype=np.int64))
    sig = signatures(shingles, 256, 1)
    a = np.zeros(4, dtype=np.int64)
    b = np.arange(1, 5, dtype=np.int64)
    exact = intersection_sizes(shingles, a, b) / shingles.sizes()[b]
    estimate, error = estimated_containment(sig, shingles.sizes(), a, b)
    assert np.allclose(exact, 1.0)
    assert (np.abs(estimate - exact) <= 4 * error).all(), (estimate, error)
    assert error[-1] > error[0]  # the more unequal the sizes, the less sure the estimate


def test_prefilter_keeps_every_pair_that_exact_verification_keeps(factory, run_pipeline):
    """Verified edges are the same with and without the signature prefilter."""
    from provenance import pipeline

    docs = {f"s{i}": factory.make_article(i % 7) for i in range(7)}
    docs.update({f"t{i}": factory.truncate(factory.make_article(i), 0.4) for i in range(7)})
    docs.update({f"p{i}": factory.spin(factory.make_article(i), 0.3, seed=i) for i in range(7)})
    result = run_pipeline(docs)
    strict = pipeline.PREFILTER_SIGMAS
    try:
        pipeline.PREFILTER_SIGMAS = 1e9  # no prefilter: everything is verified exactly
        unfiltered = run_pipeline(docs)
    finally:
        pipeline.PREFILTER_SIGMAS = strict
    assert result.documents.select("doc_id", "cluster_id").equals(unfiltered.documents.select("doc_id", "cluster_id"))


# ---------------------------------------------------------------------------- fast paths give the same answers


def _random_views(rng: np.random.Generator, n: int) -> dict[str, ShingleSets]:
    """Documents drawn from a few shared pools, so overlaps span from none to near-total; some sets empty."""
    views = {}
    for name, (lo, hi) in {"words": (0, 400), "anchors": (0, 40)}.items():
        pools = [rng.choice(2**32 - 1, size=hi * 2, replace=False).astype(np.uint32) for _ in range(3)]
        sets = []
        for i in range(n):
            size = int(rng.integers(lo, hi)) if i % 17 else 0
            pool = pools[i % 3]
            sets.append(np.unique(rng.choice(pool, size=min(size, len(pool)), replace=False)))
        offsets = np.concatenate(([0], np.cumsum([len(s) for s in sets]))).astype(np.int64)
        views[name] = ShingleSets(np.concatenate(sets).astype(np.uint32), offsets)
    return views


def test_pairs_pass_equals_the_full_scores_against_the_floors():
    from provenance.verify import pairs_pass

    rng = np.random.default_rng(3)
    views = _random_views(rng, 120)
    a, b = np.triu_indices(120, 1)
    contained, jaccard = pair_scores(views, a, b, 8)
    for min_c, min_j in [(0.36, 0.05), (0.1, 0.0), (0.5, 0.2), (0.0, 0.0), (1.0, 1.0)]:
        expected = (contained >= min_c) & (jaccard >= min_j)
        assert expected.any() or min_c == 1.0
        assert (pairs_pass(views, a, b, 8, min_c, min_j) == expected).all(), (min_c, min_j)


def test_hopeful_pairs_equals_the_estimate_test():
    from provenance.minhash import signatures
    from provenance.verify import estimated_containment, hopeful_pairs

    rng = np.random.default_rng(4)
    views = _random_views(rng, 80)
    a, b = np.triu_indices(80, 1)
    for name in ("words", "anchors"):
        sig = signatures(views[name], 64, 1)
        estimate, error = estimated_containment(sig, views[name].sizes(), a, b)
        for floor, sigmas in [(0.36, 4.0), (0.1, 0.0), (0.9, 2.0)]:
            out = np.zeros(len(a), dtype=bool)
            hopeful_pairs(sig, views[name].sizes(), a, b, floor, sigmas, out)
            assert (out == (estimate + sigmas * error >= floor)).all(), (name, floor, sigmas)
