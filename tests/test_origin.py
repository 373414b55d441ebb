"""trace.origin: completeness (average cover of the other versions), origin rank, direction evidence, the round robin.

The direction cases are hand-made light edits of one source (``fixtures.light_edits``):
a pasted headline line, a dropped sentence, a truncated tail, spun words with
rarer synonyms.  Whichever way the members are ranked going in, the source
must come out as the origin.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import provenance
from provenance.config import Config, TraceOptions
from provenance.trace.origin import completeness, evidence, origin_rank, refine_origins
from tests.fixtures import (
    SYNONYMS,
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

OPTIONS = Config().trace
ANCHOR_WEIGHT = OPTIONS.completeness_anchor_weight
DATE_TIE = OPTIONS.date_tie


def trace_options(**changes) -> TraceOptions:
    return TraceOptions(**{**OPTIONS.model_dump(), **changes})


def same_views(parts) -> dict:
    sets = make_sets(parts)
    return {"words": sets, "anchors": sets}


def ranks_of(texts, cluster=None):
    views = build_views(texts)
    cluster = np.zeros(len(texts), dtype=np.int64) if cluster is None else np.asarray(cluster)
    complete = completeness(cluster, views, ANCHOR_WEIGHT)
    return complete, origin_rank(cluster, complete, n_tokens(texts), date_tie=DATE_TIE)


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


# ---------------------------------------------------------------------------- origin_rank


def test_full_version_is_origin_over_truncated_copy():
    a = make_article(0)
    complete, rank = ranks_of([truncate(a, 0.4), truncate(a, 0.7), a])
    assert rank.tolist() == [2, 1, 0]
    assert complete[2] > complete[1] > complete[0]


def test_spun_full_copy_ranks_last_next_to_original_and_faithful_copy():
    a = make_article(1)
    texts = [spin(a, 0.3, seed=4), a, punctuation_copy(a)]  # spun first: the row-order tie-break would favour it
    complete, rank = ranks_of(texts)
    assert rank[0] == 2
    assert complete[0] < min(complete[1], complete[2])


def test_every_cluster_has_exactly_one_origin():
    a, b = make_article(0), make_article(3)
    texts = [a, truncate(a, 0.5), b, spin(b, 0.3, 1), make_article(4)]
    cluster = np.array([0, 0, 1, 1, 2])
    _, rank = ranks_of(texts, cluster)
    for c in range(3):
        assert sorted(rank[cluster == c].tolist()) == list(range(int((cluster == c).sum())))


def test_origin_rank_orders_by_completeness_then_length_then_row():
    cluster = np.array([0, 0, 0, 0, 1])
    complete = np.array([0.5, 0.9, 0.9, 0.9, 1.0])
    n = np.array([300, 100, 200, 200, 10])
    assert origin_rank(cluster, complete, n, date_tie=DATE_TIE).tolist() == [3, 2, 0, 1, 0]


def test_earlier_publication_wins_among_near_equal_versions():
    cluster = np.array([0, 0, 0, 1, 1])
    complete = np.array([1.0, 1.0 - DATE_TIE / 2, 0.5, 0.9, 0.9 - 2 * DATE_TIE])
    n = np.array([500, 400, 300, 200, 200])
    published = np.array([300, 200, 100, 50, 10], dtype=np.int64)  # row 2 is oldest but far less complete
    assert origin_rank(cluster, complete, n, published, date_tie=DATE_TIE).tolist() == [1, 0, 2, 0, 1]
    # Without dates completeness decides.
    assert origin_rank(cluster, complete, n, date_tie=DATE_TIE).tolist() == [0, 1, 2, 0, 1]
    # A wider tie takes row 2 in as well; a zero tie leaves only the exact best.
    assert origin_rank(cluster, complete, n, published, date_tie=0.6).tolist() == [2, 1, 0, 1, 0]
    assert origin_rank(cluster, complete, n, published, date_tie=0.0).tolist() == [0, 1, 2, 0, 1]


def test_date_tie_is_inclusive():
    cluster = np.zeros(3, dtype=np.int64)
    complete = np.array([1.0, 0.75, 0.5])  # exact binary fractions: differences 0.25 and 0.5
    published = np.array([30, 20, 10], dtype=np.int64)
    n = np.array([300, 200, 100])
    assert origin_rank(cluster, complete, n, published, date_tie=0.25).tolist() == [1, 0, 2]
    assert origin_rank(cluster, complete, n, published, date_tie=0.5).tolist() == [2, 1, 0]
    assert origin_rank(cluster, complete, n, published, date_tie=0.2).tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------- direction evidence


EDITS = light_edits(0)


def spin_frequency(source: str, spun: str, *, source_common: bool = True) -> dict[str, int]:
    """Hand-made cluster counts: the source's words common and the spinner's synonyms rare (or the reverse)."""
    a, b = words_of(source, spun)
    assert len(a.tokens) == len(b.tokens)
    common, rare = 40, 2
    frequency = {w: common for w in a.tokens}
    for x, y in zip(a.tokens, b.tokens):
        if x != y:
            frequency[x], frequency[y] = (common, rare) if source_common else (rare, common)
    return frequency


SPUN_FREQUENCY = spin_frequency(EDITS["source"], EDITS["spun"])


@pytest.mark.parametrize("edit", ["headline", "dropped", "truncated"])
def test_evidence_of_a_structural_edit_points_from_the_source(edit):
    source, copy = words_of(EDITS["source"], EDITS[edit])
    forward, kept = evidence(source, copy, {}, OPTIONS)
    backward, kept_back = evidence(copy, source, {}, OPTIONS)
    assert forward == 1.0 and backward == -1.0  # one run, read the right way round from either side
    assert kept == kept_back == 1.0  # the shorter side aligns verbatim


def test_evidence_of_spun_words_follows_word_frequency():
    source, spun = words_of(EDITS["source"], EDITS["spun"])
    substituted = sum(x != y for x, y in zip(source.tokens, spun.tokens))
    score, kept = evidence(source, spun, SPUN_FREQUENCY, OPTIONS)
    assert score == substituted  # every swap reads "the common word is the older"
    assert kept == pytest.approx(1 - substituted / len(source.tokens))
    assert evidence(spun, source, SPUN_FREQUENCY, OPTIONS)[0] == -substituted
    # Without frequencies a swap says nothing; with the synonyms common, the spun copy looks older.
    assert evidence(source, spun, {}, OPTIONS)[0] == 0.0
    reverse = spin_frequency(EDITS["source"], EDITS["spun"], source_common=False)
    assert evidence(source, spun, reverse, OPTIONS)[0] == -substituted


def test_evidence_records_every_frequency_comparison():
    source, spun = words_of(EDITS["source"], EDITS["spun"])
    consulted: list[tuple[str, str, int]] = []
    evidence(source, spun, SPUN_FREQUENCY, OPTIONS, consulted)
    expected = {(x, y, 1) for x, y in zip(source.tokens, spun.tokens) if x != y}
    assert set(consulted) == expected
    assert all(SYNONYMS.get(x) == y for x, y, _ in expected)


def test_a_pasted_line_inside_the_text_is_a_fragment_and_a_lost_sentence_is_content():
    source = EDITS["source"]
    paragraphs = source.split("\n\n")
    pasted = "\n\n".join([*paragraphs[:2], "Read more about Portvale traffic and the Serra River crossing", *paragraphs[2:]])
    s, p = words_of(source, pasted)
    assert evidence(s, p, {}, OPTIONS)[0] == 1.0  # the side holding the fragment is derived
    # The same words as a sentence (a full stop, after a boundary): lost content, so the side without it,
    # the source here, is the one that looks derived.
    sentence = "\n\n".join([*paragraphs[:2], "Read more about Portvale traffic and the Serra River crossing today.", *paragraphs[2:]])
    s, q = words_of(source, sentence)
    assert evidence(s, q, {}, OPTIONS)[0] == -1.0


def test_short_runs_are_fragments_whatever_their_punctuation():
    source = EDITS["source"]
    paragraphs = source.split("\n\n")
    short = "\n\n".join([*paragraphs[:2], "Ferries run.", *paragraphs[2:]])  # under min_sentence_tokens
    s, c = words_of(source, short)
    assert evidence(s, c, {}, OPTIONS)[0] == 1.0
    assert evidence(s, c, {}, trace_options(min_sentence_tokens=2))[0] == -1.0


# ---------------------------------------------------------------------------- refine_origins: the round robin


def one_cluster(texts: list[str]):
    return np.zeros(len(texts), dtype=np.int64), dict(enumerate(words_of(*texts)))


@pytest.mark.parametrize("edit", ["headline", "dropped", "truncated", "spun"])
@pytest.mark.parametrize("copy_first", [True, False])
def test_the_source_of_a_light_edit_is_the_origin_whichever_is_ranked_first(edit, copy_first):
    texts = [EDITS[edit], EDITS["source"]]  # row 0: the copy, row 1: the source
    cluster, words = one_cluster(texts)
    rank = np.array([0, 1]) if copy_first else np.array([1, 0])
    got = refine_origins(cluster, rank, words, SPUN_FREQUENCY, OPTIONS)
    assert got.tolist() == [1, 0]


def test_round_robin_over_all_edits_and_the_order_it_leaves():
    names = ["headline", "source", "spun", "dropped", "truncated"]
    texts = [EDITS[n] for n in names]
    cluster, words = one_cluster(texts)
    _, rank = ranks_of(texts)
    # Completeness alone ranks the copy with a pasted headline first (it holds all of the source).
    assert rank.tolist() == [0, 1, 2, 3, 4]
    got = refine_origins(cluster, rank, words, SPUN_FREQUENCY, OPTIONS)
    # The source wins every game; the others keep their order behind it.
    assert got.tolist() == [1, 0, 2, 3, 4]


def test_round_robin_is_played_by_the_top_origin_candidates_only():
    texts = [EDITS["headline"], EDITS["dropped"], EDITS["source"]]
    cluster, words = one_cluster(texts)
    rank = np.array([0, 1, 2])
    three, two = trace_options(origin_candidates=3), trace_options(origin_candidates=2)
    assert refine_origins(cluster, rank, words, {}, three).tolist() == [1, 2, 0]
    # Without the source in the round robin, headline vs dropped is a draw: completeness order stands.
    assert refine_origins(cluster, rank, words, {}, two).tolist() == [0, 1, 2]


def test_the_source_wins_even_when_ranked_last():
    # Every copy loses its game against the source, and the copies draw among themselves or split:
    # the Copeland winner is the source, the others keep their order.
    names = ["truncated", "dropped", "headline", "spun", "source"]
    texts = [EDITS[n] for n in names]
    cluster, words = one_cluster(texts)
    got = refine_origins(cluster, np.arange(5), words, SPUN_FREQUENCY, OPTIONS)
    assert got.tolist() == [1, 2, 3, 4, 0]


def test_draws_keep_the_completeness_order():
    source = EDITS["source"]
    texts = [punctuation_copy(source), source]  # same tokens: no evidence either way
    cluster, words = one_cluster(texts)
    for rank in ([0, 1], [1, 0]):
        assert refine_origins(cluster, np.array(rank), words, SPUN_FREQUENCY, OPTIONS).tolist() == rank


def test_heavy_rewrites_are_not_oriented():
    source = EDITS["source"]
    heavy = spin(source, 0.9, seed=1)
    frequency = spin_frequency(source, heavy)
    cluster, words = one_cluster([heavy, source])
    _, kept = evidence(words[1], words[0], frequency, OPTIONS)
    assert kept < OPTIONS.orient_min_kept
    assert refine_origins(cluster, np.array([0, 1]), words, frequency, OPTIONS).tolist() == [0, 1]
    lenient = trace_options(orient_min_kept=kept - 0.01)
    assert refine_origins(cluster, np.array([0, 1]), words, frequency, lenient).tolist() == [1, 0]


def test_refine_origins_treats_clusters_apart_and_leaves_singletons():
    b = light_edits(1)
    texts = [EDITS["headline"], b["truncated"], EDITS["source"], b["source"], make_article(4), EDITS["dropped"]]
    cluster = np.array([0, 1, 0, 1, 2, 0])
    rank = np.array([0, 0, 1, 1, 0, 2])
    words = dict(enumerate(words_of(*texts)))
    consulted: list = []
    got = refine_origins(cluster, rank, words, {}, OPTIONS, consulted)
    assert got.tolist() == [1, 1, 0, 0, 0, 2]
    assert consulted == []  # no substitution was compared


def test_refine_origins_reports_the_comparisons_per_cluster():
    texts = [make_article(4), EDITS["spun"], EDITS["source"]]
    cluster = np.array([0, 1, 1])
    words = dict(enumerate(words_of(*texts)))
    consulted: list = []
    got = refine_origins(cluster, np.array([0, 0, 1]), words, SPUN_FREQUENCY, OPTIONS, consulted)
    assert got.tolist() == [0, 1, 0]
    a, b = words[1].tokens, words[2].tokens
    assert sorted(consulted) == sorted({(1, x, y, -1) for x, y in zip(a, b) if x != y})


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
