"""origin: completeness (average cover of the other versions) and origin ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from provenance.origin import DATE_TIE, completeness, origin_rank
from provenance.shingle import ShingleSets


def make_sets(parts) -> ShingleSets:
    parts = [np.unique(np.asarray(list(p), dtype=np.uint32)) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return ShingleSets(np.concatenate(parts).astype(np.uint32), offsets)


def same_views(parts) -> dict[str, ShingleSets]:
    sets = make_sets(parts)
    return {"words": sets, "anchors": sets}


def ranks_of(texts, factory, cluster=None):
    views = factory.build_views(texts)
    cluster = np.zeros(len(texts), dtype=np.int64) if cluster is None else np.asarray(cluster)
    complete = completeness(cluster, views)
    return complete, origin_rank(cluster, complete, factory.n_tokens(texts))


# ---------------------------------------------------------------------------- completeness


def test_completeness_values_on_hand_made_sets():
    # full holds everything; trunc holds 40% of full; cover(trunc) = 40/100.
    views = same_views([range(100), range(40)])
    complete = completeness(np.array([0, 0]), views)
    assert complete.tolist() == pytest.approx([1.0, 0.4])


def test_completeness_averages_over_the_other_members():
    # d0 contains d1 and d2 entirely; d1 = first half, d2 = second half of d0.
    views = same_views([range(100), range(50), range(50, 100)])
    complete = completeness(np.array([0, 0, 0]), views)
    # cover(d1) = (50/100 + 0/50) / 2 = 0.25
    assert complete.tolist() == pytest.approx([1.0, 0.25, 0.25])


def test_singletons_have_completeness_one():
    views = same_views([range(10), range(100, 130), range(200, 205), range(0, 5)])
    assert completeness(np.array([0, 1, 2, 3]), views).tolist() == [1.0, 1.0, 1.0, 1.0]
    mixed = completeness(np.array([0, 1, 2, 0]), views)
    assert mixed[1] == 1.0 and mixed[2] == 1.0
    assert mixed[0] == pytest.approx(1.0) and mixed[3] == pytest.approx(0.5)


def test_completeness_is_in_unit_interval_for_texts(factory):
    a = factory.make_article(2)
    texts = [a, factory.truncate(a, 0.5), factory.spin(a, 0.3, seed=1), factory.noisy_copy(a)]
    complete, _ = ranks_of(texts, factory)
    assert ((complete >= 0) & (complete <= 1)).all()


# ---------------------------------------------------------------------------- origin choice


def test_full_version_is_origin_over_truncated_copy(factory):
    a = factory.make_article(0)
    texts = [factory.truncate(a, 0.4), factory.truncate(a, 0.7), a]
    complete, rank = ranks_of(texts, factory)
    assert rank.tolist() == [2, 1, 0]
    assert complete[2] > complete[1] > complete[0]


def test_spun_full_copy_is_not_origin_next_to_original_and_faithful_copy(factory):
    a = factory.make_article(1)
    faithful = factory.punctuation_copy(a)
    spun = factory.spin(a, 0.3, seed=4)
    texts = [spun, a, faithful]  # spun first: the row-order tie-break would favour it
    complete, rank = ranks_of(texts, factory)
    assert rank[0] != 0
    assert rank[0] == 2
    assert complete[0] < min(complete[1], complete[2])


def test_spun_full_copy_is_not_origin_end_to_end(factory, run_pipeline):
    a = factory.make_article(2)
    docs = {"a_spun": factory.spin(a, 0.3, seed=9), "b_original": a, "c_faithful": factory.punctuation_copy(a)}
    result = run_pipeline(docs)
    origin = result.documents.filter(result.documents["is_origin"])["doc_id"].to_list()
    assert len(origin) == 1 and origin[0] in {"b_original", "c_faithful"}


def test_every_cluster_has_exactly_one_origin(factory):
    a, b = factory.make_article(0), factory.make_article(3)
    texts = [a, factory.truncate(a, 0.5), b, factory.spin(b, 0.3, 1), factory.make_article(4)]
    cluster = np.array([0, 0, 1, 1, 2])
    _, rank = ranks_of(texts, factory, cluster)
    for c in range(3):
        assert sorted(rank[cluster == c].tolist()) == list(range(int((cluster == c).sum())))


def test_origin_rank_orders_by_completeness_then_length_then_row():
    cluster = np.array([0, 0, 0, 0, 1])
    complete = np.array([0.5, 0.9, 0.9, 0.9, 1.0])
    n_tokens = np.array([300, 100, 200, 200, 10])
    assert origin_rank(cluster, complete, n_tokens).tolist() == [3, 2, 0, 1, 0]


def test_earlier_publication_wins_among_near_equal_versions():
    cluster = np.array([0, 0, 0, 1, 1])
    complete = np.array([1.0, 1.0 - DATE_TIE / 2, 0.5, 0.9, 0.9 - 2 * DATE_TIE])
    n_tokens = np.array([500, 400, 300, 200, 200])
    published = np.array([300, 200, 100, 50, 10], dtype=np.int64)  # row 2 is oldest but far less complete
    rank = origin_rank(cluster, complete, n_tokens, published)
    assert rank.tolist() == [1, 0, 2, 0, 1]
    # Without dates completeness decides.
    assert origin_rank(cluster, complete, n_tokens).tolist() == [0, 1, 2, 0, 1]


def test_earlier_published_exact_copy_is_origin_end_to_end(factory, tmp_path):
    from provenance.pipeline import run

    a = factory.make_article(0)
    rows = [
        {"id": "syndicated", "text": a, "published_at": "2024-05-02T08:00:00Z"},
        {"id": "wire", "text": a, "published_at": "2024-05-01T08:00:00Z"},
        {"id": "unrelated", "text": factory.make_article(3), "published_at": "2024-04-01T08:00:00Z"},
    ]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = run([path], tmp_path / "out")
    docs = {r["doc_id"]: r for r in result.documents.iter_rows(named=True)}
    assert docs["wire"]["is_origin"] and not docs["syndicated"]["is_origin"]
    assert docs["syndicated"]["parent_id"] == "wire"


def test_exact_duplicates_differing_only_in_case_get_equal_completeness(factory, run_pipeline):
    """An ALL-CAPS copy has the original's content: same views, same completeness, never a rival origin."""
    a = factory.make_article(0)
    result = run_pipeline(
        {"original": a, "shouted": factory.noisy_copy(a), "spun": factory.spin(a, 0.3, seed=1), "cut": factory.truncate(a, 0.4)}
    )
    complete = dict(zip(result.documents["doc_id"].to_list(), result.documents["completeness"].to_list()))
    assert complete["original"] == pytest.approx(complete["shouted"])
    assert complete["original"] > complete["cut"]
