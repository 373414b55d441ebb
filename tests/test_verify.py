"""link.verify: exact intersections on sorted sets, the pair rule on the best view, the MinHash prefilter."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from provenance.config import Config, LinkOptions
from provenance.link.verify import (
    PairRule,
    estimated_containment,
    hopeful_pairs,
    intersection_sizes,
    pair_overlaps,
    pair_scores,
    pairs_pass,
    similarity_exprs,
)
from provenance.prepare.minhash import signatures
from provenance.prepare.shingle import ShingleSets
from tests.fixtures import build_views, make_article, make_sets, spin, truncate

MIN_ANCHOR_SET = Config().link.min_anchor_set


def no_anchors(n: int) -> ShingleSets:
    return make_sets([set() for _ in range(n)])


# ---------------------------------------------------------------------------- intersections


def test_intersection_sizes_equal_python_sets(rng):
    py_sets = [set(rng.integers(0, 400, size=int(rng.integers(0, 200))).tolist()) for _ in range(40)]
    py_sets.append(set())
    sets = make_sets(py_sets)
    a = rng.integers(0, len(py_sets), size=300)
    b = rng.integers(0, len(py_sets), size=300)
    got = intersection_sizes(sets, a, b)
    assert got.tolist() == [len(py_sets[x] & py_sets[y]) for x, y in zip(a.tolist(), b.tolist())]


def test_intersection_with_itself_is_its_size_and_extreme_values_count(rng):
    values = set(rng.integers(0, 2**32, size=50, dtype=np.uint64).tolist()) | {0, 2**32 - 1}
    sets = make_sets([values, set(), {0, 2**32 - 1, 5}])
    assert intersection_sizes(sets, np.array([0, 1, 0]), np.array([0, 1, 2])).tolist() == [len(values), 0, 2]


def test_intersection_sizes_of_no_pairs():
    sets = make_sets([{1, 2}])
    assert len(intersection_sizes(sets, np.array([], dtype=np.int64), np.array([], dtype=np.int64))) == 0


# ---------------------------------------------------------------------------- pair scores


def test_pair_scores_exact_values_and_empty_sets():
    words = make_sets([set(range(10)), set(range(5, 25)), set()])
    views = {"words": words, "anchors": no_anchors(3)}
    c, j = pair_scores(views, np.array([0, 0, 1]), np.array([1, 2, 0]), 8)
    assert c[0] == pytest.approx(5 / 10) and j[0] == pytest.approx(5 / 25)
    assert (c[1], j[1]) == (0.0, 0.0)
    assert (c[2], j[2]) == (c[0], j[0])  # symmetric: the smaller document's share


def test_best_view_is_taken_per_score():
    # words: containment 0.5, Jaccard 0.2; anchors: containment 0.9, Jaccard 0.18 (one small set inside a big one).
    words = make_sets([set(range(10)), set(range(5, 25))])
    anchors = make_sets([set(range(100, 110)), set(range(101, 150))])
    c, j = pair_scores({"words": words, "anchors": anchors}, np.array([0]), np.array([1]), 8)
    assert c[0] == pytest.approx(9 / 10) and j[0] == pytest.approx(5 / 25)


def test_anchor_view_needs_min_anchor_set_on_both_sides():
    words = make_sets([{1, 2, 3, 4}, {10, 11, 12, 13}])
    anchors = make_sets([{100, 101, 102, 103, 104}, {100, 101, 102, 103, 104, 105, 106, 107, 108}])
    views = {"words": words, "anchors": anchors}
    assert tuple(x[0] for x in pair_scores(views, np.array([0]), np.array([1]), 6)) == (0.0, 0.0)
    c, j = pair_scores(views, np.array([0]), np.array([1]), 5)  # the smaller set has exactly 5
    assert (c[0], j[0]) == (1.0, pytest.approx(5 / 9))


def test_truncated_half_is_contained_and_its_jaccard_is_the_size_ratio():
    a = make_article(0)
    views = build_views([a, truncate(a, 0.5), make_article(3)])
    c, j = pair_scores(views, np.array([0, 1, 0]), np.array([1, 0, 2]), MIN_ANCHOR_SET)
    assert c[0] == 1.0 and c[1] == 1.0  # a prefix's shingles are all in the full text
    ratio = max(views[v].sizes()[1] / views[v].sizes()[0] for v in ("words", "anchors"))
    assert j[0] == pytest.approx(ratio) and j[1] == j[0]
    assert c[2] < Config().link.min_containment


def test_spun_copy_is_held_up_by_the_anchor_view():
    a = make_article(4)
    spun = spin(a, 0.5, seed=2)
    views = build_views([a, spun])
    words = [set(views["words"].doc(i).tolist()) for i in range(2)]
    c_words, j_words = pair_scores({"words": views["words"], "anchors": no_anchors(2)}, np.array([0]), np.array([1]), MIN_ANCHOR_SET)
    inter = len(words[0] & words[1])
    assert c_words[0] == pytest.approx(inter / min(map(len, words)))
    assert j_words[0] == pytest.approx(inter / len(words[0] | words[1]))
    assert c_words[0] < 0.7 and j_words[0] < 0.5  # bigrams broken by the swapped words
    c_both, j_both = pair_scores(views, np.array([0]), np.array([1]), MIN_ANCHOR_SET)
    assert (c_both[0], j_both[0]) == (1.0, 1.0)  # names, places and numbers survive spinning


def test_pair_overlaps_and_similarity_columns():
    words = make_sets([set(range(10)), set(range(5, 25)), set()])
    anchors = make_sets([{1, 2}, {2, 3, 4}, set()])
    pairs = pl.DataFrame({"a": [0, 0], "b": [1, 2]}, schema={"a": pl.UInt32, "b": pl.UInt32})
    out = pair_overlaps(pairs, {"words": words, "anchors": anchors})
    assert out["words_inter"].to_list() == [5, 0]
    assert out["words_size_a"].to_list() == [10, 10] and out["words_size_b"].to_list() == [20, 0]
    assert out["anchors_inter"].to_list() == [1, 0]
    assert out.schema["words_inter"] == pl.Int32
    sims = out.select(*similarity_exprs("words"), *similarity_exprs("anchors"))
    assert sims["words_jaccard"].to_list() == pytest.approx([5 / 25, 0.0])
    assert sims["words_a_in_b"].to_list() == pytest.approx([0.5, 0.0])
    assert sims["words_b_in_a"].to_list() == pytest.approx([0.25, 0.0])
    assert sims["words_containment"].to_list() == pytest.approx([0.5, 0.0])
    assert sims["anchors_jaccard"].to_list() == pytest.approx([1 / 4, 0.0])
    assert sims["anchors_containment"].to_list() == pytest.approx([0.5, 0.0])


# ---------------------------------------------------------------------------- the pair rule


def test_pair_rule_of_link_options_and_its_floors():
    rule = PairRule.of(LinkOptions(min_containment=0.4, min_jaccard=0.1, min_anchor_set=5))
    assert rule == PairRule(0.4, 0.1, 5)
    default = PairRule.of(Config().link)
    assert default == PairRule(Config().link.min_containment, Config().link.min_jaccard, Config().link.min_anchor_set)
    c = np.array([0.4, 0.4, 0.39, 1.0])
    j = np.array([0.1, 0.09, 0.5, 0.1])
    assert rule.clears(c, j).tolist() == [True, False, False, True]  # both floors, inclusive
    frame = pl.DataFrame({"c": c, "j": j})
    assert frame.select(rule.clears(pl.col("c"), pl.col("j")))["c"].to_list() == [True, False, False, True]


def test_pair_rule_scores_and_passes_use_its_anchor_floor():
    words = make_sets([{1, 2, 3, 4}, {10, 11, 12, 13}])
    anchors = make_sets([set(range(100, 106)), set(range(100, 106))])
    views = {"words": words, "anchors": anchors}
    a, b = np.array([0]), np.array([1])
    thin, thick = PairRule(0.36, 0.05, 7), PairRule(0.36, 0.05, 6)
    assert [x[0] for x in thin.scores(views, a, b)] == [0.0, 0.0]
    assert [x[0] for x in thick.scores(views, a, b)] == [1.0, 1.0]
    assert thin.passes(views, a, b).tolist() == [False]
    assert thick.passes(views, a, b).tolist() == [True]


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
    rng = np.random.default_rng(3)
    views = _random_views(rng, 120)
    a, b = np.triu_indices(120, 1)
    contained, jaccard = pair_scores(views, a, b, 8)
    for min_c, min_j in [(0.36, 0.05), (0.1, 0.0), (0.5, 0.2), (0.6, 0.4), (0.0, 0.0), (1.0, 1.0)]:
        expected = (contained >= min_c) & (jaccard >= min_j)
        assert 0 < expected.sum() < len(a) or (min_c, min_j) in {(0.0, 0.0), (1.0, 1.0)}
        assert (pairs_pass(views, a, b, 8, min_c, min_j) == expected).all(), (min_c, min_j)
        assert (PairRule(min_c, min_j, 8).passes(views, a, b) == expected).all()


def test_pairs_pass_on_the_exact_floor():
    # |A & B| = 36 of the smaller's 100: containment exactly 0.36 passes, one shingle less does not.
    big = set(range(1000))
    views = {"words": make_sets([set(range(36)) | set(range(5000, 5064)), big, set(range(35)) | set(range(5000, 5065))]),
             "anchors": no_anchors(3)}
    assert pairs_pass(views, np.array([0, 2]), np.array([1, 1]), 8, 0.36, 0.0).tolist() == [True, False]


# ---------------------------------------------------------------------------- MinHash containment estimate and the prefilter


def test_estimated_containment_exact_formula_on_hand_made_signatures():
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 7, 7], [1, 2, 3, 4]], dtype=np.uint32)
    sizes = np.array([10, 30, 10, 0])
    estimate, error = estimated_containment(sig, sizes, np.array([0, 0, 0]), np.array([1, 2, 3]))
    # Pair (0, 1): J = 2/4, |A & B| = J (10 + 30) / (1 + J) = 13.33, over the smaller 10.
    assert estimate[0] == pytest.approx(0.5 * 40 / 1.5 / 10)
    assert error[0] == pytest.approx(math.sqrt(0.5 * 0.5 / 4) * 40 / (1.5**2 * 10))
    # Pair (0, 2): no equal slot, estimate 0, but the error uses J = 1/m: zero equal slots are not certainty.
    assert estimate[1] == 0.0
    assert error[1] == pytest.approx(math.sqrt(0.25 * 0.75 / 4) * 20 / 10)
    # An empty set: nothing to estimate.
    assert (estimate[2], error[2]) == (0.0, 0.0)


def test_estimated_containment_tracks_the_exact_value():
    rng = np.random.default_rng(7)
    base = rng.choice(2**31, size=4000, replace=False).astype(np.uint32)
    shingles = make_sets([base[: int(len(base) * keep)] for keep in (1.0, 0.8, 0.5, 0.3, 0.1)])
    sig = signatures(shingles, 256, 1)
    a = np.zeros(4, dtype=np.int64)
    b = np.arange(1, 5, dtype=np.int64)
    exact = intersection_sizes(shingles, a, b) / shingles.sizes()[b]
    estimate, error = estimated_containment(sig, shingles.sizes(), a, b)
    assert np.allclose(exact, 1.0)
    assert (np.abs(estimate - exact) <= 4 * error).all(), (estimate, error)
    assert (np.diff(error) > 0).all()  # the more unequal the sizes, the less sure the estimate


def test_hopeful_pairs_equals_the_estimate_test_and_only_adds_marks():
    rng = np.random.default_rng(4)
    views = _random_views(rng, 80)
    a, b = np.triu_indices(80, 1)
    for name in ("words", "anchors"):
        sig = signatures(views[name], 64, 1)
        estimate, error = estimated_containment(sig, views[name].sizes(), a, b)
        for floor, sigmas in [(0.36, 4.0), (0.1, 0.0), (0.9, 2.0)]:
            out = np.zeros(len(a), dtype=bool)
            hopeful_pairs(sig, views[name].sizes(), a, b, floor, sigmas, out)
            expected = estimate + sigmas * error >= floor
            assert 0 < expected.sum() < len(a)
            assert (out == expected).all(), (name, floor, sigmas)
            marked = np.ones(len(a), dtype=bool)
            hopeful_pairs(sig, views[name].sizes(), a, b, floor, sigmas, marked)
            assert marked.all()  # an OR into ``out``: a pair hopeful in another view stays hopeful


def test_prefilter_drops_pairs_but_never_one_the_exact_rule_passes():
    rng = np.random.default_rng(11)
    views = _random_views(rng, 150)
    a, b = np.triu_indices(150, 1)
    rule = PairRule.of(Config().link)
    hopeful = np.zeros(len(a), dtype=bool)
    for name in ("words", "anchors"):
        hopeful_pairs(signatures(views[name], 128, 1), views[name].sizes(), a, b, rule.min_containment, 4.0, hopeful)
    passing = rule.passes(views, a, b)
    assert (~hopeful).sum() > len(a) // 3  # the prefilter has something to drop...
    assert passing.sum() > 100
    assert not (passing & ~hopeful).any()  # ...and never drops a true pair
