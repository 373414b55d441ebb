"""trace.origin: completeness (average cover of the other versions); end to end, the origin the derivation model gives.

The end-to-end cases are hand-made light edits of one source (``fixtures.light_edits``):
a pasted headline line, spun words with rarer synonyms, an exact copy published earlier.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import provenance
from provenance.config import Config
from provenance.trace.origin import completeness
from tests.fixtures import (
    build_views,
    light_edits,
    make_article,
    make_sets,
    noisy_copy,
    punctuation_copy,
    spin,
    truncate,
)

OPTIONS = Config().trace
EDITS = light_edits(0)
ANCHOR_WEIGHT = OPTIONS.completeness_anchor_weight


def same_views(parts) -> dict:
    sets = make_sets(parts)
    return {"words": sets, "anchors": sets}


def completeness_of(texts, cluster=None):
    views = build_views(texts)
    cluster = np.zeros(len(texts), dtype=np.int64) if cluster is None else np.asarray(cluster)
    return completeness(cluster, views, ANCHOR_WEIGHT)


# ---------------------------------------------------------------------------- completeness


def test_completeness_values_on_hand_made_sets():
    # full holds everything; trunc holds 40% of full; cover(trunc) = 40/100.
    complete = completeness(np.array([0, 0]), same_views([range(100), range(40)]), ANCHOR_WEIGHT)
    assert complete.tolist() == pytest.approx([1.0, 0.4])


def test_completeness_averages_over_the_other_members():
    # d0 contains d1 and d2 entirely; d1 = first half, d2 = second half of d0.
    complete = completeness(np.array([0, 0, 0]), same_views([range(100), range(50), range(50, 100)]), ANCHOR_WEIGHT)
    # cover(d1) = (50/100 + 0/50) / 2 = 0.25
    assert complete.tolist() == pytest.approx([1.0, 0.25, 0.25])


def test_completeness_weighs_the_two_views_by_anchor_weight():
    # anchors: d1 holds 20% of d0 (d0 holds d1); words: d1 holds all of d0 and d0 60% of d1.
    views = {"anchors": make_sets([range(100), range(20)]), "words": make_sets([range(60), range(100)])}
    cluster = np.array([0, 0])
    for weight in (0.0, 0.25, 0.5, 1.0):
        got = completeness(cluster, views, weight)
        assert got.tolist() == pytest.approx([weight * 1.0 + (1 - weight) * 0.6, weight * 0.2 + (1 - weight) * 1.0])


def test_singletons_have_completeness_one():
    views = same_views([range(10), range(100, 130), range(200, 205), range(5)])
    assert completeness(np.array([0, 1, 2, 3]), views, ANCHOR_WEIGHT).tolist() == [1.0, 1.0, 1.0, 1.0]
    mixed = completeness(np.array([0, 1, 2, 0]), views, ANCHOR_WEIGHT)
    assert mixed.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.5])


def brute_cover(sets: list[set[int]], cluster: np.ndarray) -> np.ndarray:
    out = np.ones(len(sets))
    for c in np.unique(cluster):
        members = np.flatnonzero(cluster == c)
        if len(members) < 2:
            continue
        for d in members:
            shares = [len(sets[d] & sets[j]) / len(sets[j]) if sets[j] else 0.0 for j in members if j != d]
            out[d] = sum(shares) / (len(members) - 1)
    return out


def test_completeness_equals_the_definition_on_random_clusters(rng):
    pool = np.arange(300)
    anchors = [set(rng.choice(pool, size=int(rng.integers(0, 60)), replace=False).tolist()) for _ in range(40)]
    words = [set(rng.choice(pool, size=int(rng.integers(1, 120)), replace=False).tolist()) for _ in range(40)]
    cluster = rng.integers(0, 9, size=40)
    views = {"anchors": make_sets(anchors), "words": make_sets(words)}
    got = completeness(cluster, views, 0.3)
    expected = 0.3 * brute_cover(anchors, cluster) + 0.7 * brute_cover(words, cluster)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_completeness_of_a_source_its_prefix_and_a_faithful_copy():
    a = make_article(2)
    texts = [a, truncate(a, 0.5), punctuation_copy(a)]
    views = build_views(texts)
    complete = completeness(np.zeros(3, dtype=np.int64), views, ANCHOR_WEIGHT)
    share = {v: views[v].sizes()[1] / views[v].sizes()[0] for v in ("words", "anchors")}
    # The source and its faithful copy hold everything; the prefix holds its share of each and all of itself.
    assert complete[0] == pytest.approx(1.0) and complete[2] == pytest.approx(1.0)
    expected = ANCHOR_WEIGHT * share["anchors"] + (1 - ANCHOR_WEIGHT) * share["words"]
    assert complete[1] == pytest.approx(expected)


# ---------------------------------------------------------------------------- end to end


def test_spun_full_copy_is_not_origin_end_to_end(run_pipeline):
    a = make_article(2)
    result = run_pipeline({"a_spun": spin(a, 0.3, seed=9), "b_original": a, "c_faithful": punctuation_copy(a)})
    origin = result.documents.filter(result.documents["is_origin"])["doc_id"].to_list()
    assert len(origin) == 1 and origin[0] in {"b_original", "c_faithful"}


def test_pasted_headline_copy_is_not_origin_end_to_end(run_pipeline):
    docs = {"a_headline": EDITS["headline"], "b_source": EDITS["source"], "c_other": make_article(3)}
    result = run_pipeline(docs)
    rows = {r["doc_id"]: r for r in result.documents.iter_rows(named=True)}
    assert rows["b_source"]["is_origin"] and rows["a_headline"]["parent_id"] == "b_source"
    assert rows["a_headline"]["completeness"] > rows["b_source"]["completeness"]  # completeness alone would err


def test_earlier_published_exact_copy_is_origin_end_to_end(tmp_path):
    a = make_article(0)
    rows = [
        {"id": "syndicated", "text": a, "published_at": "2024-05-02T08:00:00Z"},
        {"id": "wire", "text": a, "published_at": "2024-05-01T08:00:00Z"},
        {"id": "unrelated", "text": make_article(3), "published_at": "2024-04-01T08:00:00Z"},
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = provenance.run([path], out_dir=tmp_path / "out")
    docs = {r["doc_id"]: r for r in result.documents.iter_rows(named=True)}
    assert docs["wire"]["is_origin"] and not docs["syndicated"]["is_origin"]
    assert docs["syndicated"]["parent_id"] == "wire"


def test_exact_duplicates_differing_only_in_case_get_equal_completeness(run_pipeline):
    """An ALL-CAPS copy has the original's content: same views, same completeness, never a rival origin."""
    a = make_article(0)
    result = run_pipeline({"original": a, "shouted": noisy_copy(a), "spun": spin(a, 0.3, seed=1), "cut": truncate(a, 0.4)})
    complete = dict(zip(result.documents["doc_id"].to_list(), result.documents["completeness"].to_list()))
    assert complete["original"] == complete["shouted"]
    assert complete["original"] > complete["spun"] > complete["cut"]
