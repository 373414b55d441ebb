"""trace.stage: dates, batches of whole clusters, corpus facts, the derivation model per batch, lineage sets,
re-tracing a subset of clusters, and the assembled tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.ingest import ingest_stage
from provenance.link.stage import Linked, link_stage
from provenance.prepare import normalize, shingle
from provenance.prepare.stage import Prepared, prepare_stage
from provenance.tables import dense_clusters
from provenance.trace import stage as ts
from tests.fixtures import light_edits, make_article, spin, truncate, words_of

CONFIG = Config()
#: Cluster s: the light edits of story 0, in an order completeness gets wrong; a singleton; cluster b:
#: story 1's structural edits plus a truncation of its headline copy; another singleton.  Prepared rows
#: are in id order: b-* (0-4), s-* (5-9), x3, x4.
A_NAMES = ["headline", "spun", "source", "dropped", "truncated"]
B_NAMES = ["truncated", "headline", "source", "dropped"]
EDITS_A, EDITS_B = light_edits(0), light_edits(1)
TEXTS = (
    [EDITS_A[n] for n in A_NAMES] + [make_article(3)]
    + [EDITS_B[n] for n in B_NAMES] + [truncate(EDITS_B["headline"], 0.85), make_article(4)]
)
IDS = [f"s-{n}" for n in A_NAMES] + ["x3"] + [f"b-{n}" for n in B_NAMES] + ["b-headline-cut", "x4"]


def prepare(texts: list[str], ids: list[str], config: Config = CONFIG, **columns) -> Prepared:
    ingested, _ = ingest_stage(pl.DataFrame({"id": ids, "text": texts, **columns}), config)
    prepared, _ = prepare_stage(ingested, config)
    return prepared


@pytest.fixture(scope="module")
def corpus() -> tuple[Prepared, Linked]:
    prepared = prepare(TEXTS, IDS)
    linked, _ = link_stage(prepared, CONFIG)
    return prepared, linked


def row_of(prepared: Prepared) -> dict[str, int]:
    """Row of each doc id (the prepared documents are in id order, not input order)."""
    return {doc_id: i for i, doc_id in enumerate(prepared.documents["doc_id"].to_list())}


def docs_by_id(traced) -> dict[str, dict]:
    return {r["doc_id"]: r for r in traced.documents.iter_rows(named=True)}


# ---------------------------------------------------------------------------- small helpers


def test_published_times_honour_zones_and_refuse_what_is_not_a_date():
    frame = pl.DataFrame({"published_at": ["2024-05-01T10:00:00+02:00", "2024-05-01T08:30:00Z", None]})
    got = ts.published_times(frame)
    hour = 3_600_000_000
    assert got[0] == got[1] - hour // 2  # 08:00 UTC is half an hour before 08:30 UTC
    naive = ts.published_times(pl.DataFrame({"published_at": ["2024-05-01T08:00:00", "2024-05-02T08:00:00"]}))
    assert naive[1] - naive[0] == 24 * hour
    dates = ts.published_times(pl.DataFrame({"published_at": pl.Series(["2024-05-01", "2024-05-03"]).str.to_date()}))
    assert dates[1] - dates[0] == 48 * hour
    assert ts.published_times(pl.DataFrame({"published_at": [None, None]}, schema={"published_at": pl.String})) is None
    assert ts.published_times(pl.DataFrame({"published_at": [1, 2]})) is None
    assert ts.published_times(pl.DataFrame({"text": ["x"]})) is None


def test_cluster_batches_never_split_a_cluster_and_cover_every_member(rng):
    cluster = rng.integers(0, 40, size=400)
    members = ts.multi_members(cluster)
    assert members.tolist() == [i for i in range(400) if (cluster == cluster[i]).sum() > 1]
    for size in (1, 7, 50, 1000):
        parts = ts.cluster_batches(cluster, members, size)
        assert np.array_equal(np.sort(np.concatenate(parts)), members)
        seen: set[int] = set()
        for part in parts:
            here = set(cluster[part].tolist())
            assert not here & seen  # a cluster lives in one batch
            seen |= here
            assert part.tolist() == sorted(part.tolist())
            biggest = max(int((cluster == c).sum()) for c in here)
            assert len(part) < size + biggest  # closed as soon as it holds ``size`` rows
    assert ts.cluster_batches(cluster, np.zeros(0, dtype=np.int64), 10) == []


def test_lineage_sets_are_built_for_members_only_and_per_document():
    texts = pl.Series([make_article(0), make_article(1), truncate(make_article(0), 0.5), make_article(2)])
    cluster = np.array([0, 1, 0, 2])
    sets = ts.lineage_of_members(texts, cluster, CONFIG)
    assert sets.sizes()[[1, 3]].tolist() == [0, 0]
    one_by_one = CONFIG.replace(batch_size=1)
    again = ts.lineage_of_members(texts, cluster, one_by_one)
    assert np.array_equal(sets.hashes, again.hashes) and np.array_equal(sets.offsets, again.offsets)
    for row in (0, 2):
        tokens = normalize.tokenize(texts.gather([row]), CONFIG.prepare.seed)
        alone = shingle.lineage_sets(tokens, 1, ngram=CONFIG.trace.lineage_ngram)
        assert np.array_equal(sets.doc(row), alone.doc(0))
    # The prefix's lineage trigrams all lie in the full text's.
    assert np.isin(sets.doc(2), sets.doc(0)).all() and sets.sizes()[2] < sets.sizes()[0]


def test_corpus_facts_count_clusters_over_members_and_a_sample_of_singletons(corpus):
    prepared, linked = corpus
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    assert facts.frequency["the"] == 4  # two clusters and two singletons, each counted once
    assert facts.derivation.n_clusters == 4
    assert facts.frequency["portvale"] == 1 + ("portvale" in words_of(make_article(3))[0].tokens)
    # With no singleton sampled only the members count.
    small = ts.corpus_facts(prepared.documents, cluster, CONFIG.replace(frequency_sample=0))
    assert small.frequency["the"] == 2 and small.derivation.n_clusters == 2
    # Copies count once: the story-0 headline line is held by two members of one cluster.
    assert facts.derivation.lines.counts.max() <= 4


def test_derivation_does_not_depend_on_batch_sizes(corpus):
    prepared, linked = corpus
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    one = ts.derive_clusters(prepared, linked.pairs, cluster, None, facts, CONFIG)
    other = ts.derive_clusters(prepared, linked.pairs, cluster, None, facts, CONFIG.replace(words_batch=1, batch_size=1))
    np.testing.assert_array_equal(one[0], other[0])
    np.testing.assert_allclose(one[1], other[1])
    assert sorted(one[2]) == sorted(other[2])


# ---------------------------------------------------------------------------- the stage


def test_trace_stage_tables(corpus):
    prepared, linked = corpus
    out, report = ts.trace_stage(prepared, linked, CONFIG)
    docs = docs_by_id(out)
    assert {d for d, r in docs.items() if r["is_origin"]} == {"s-source", "b-source", "x3", "x4"}
    parents = {d: r["parent_id"] for d, r in docs.items()}
    assert parents == {
        "s-source": None, "s-headline": "s-source", "s-spun": "s-source", "s-dropped": "s-source", "s-truncated": "s-source",
        "b-source": None, "b-headline": "b-source", "b-dropped": "b-source", "b-headline-cut": "b-headline",
        # The prefix (made from the source) lies inside both the source and the cut headline copy; from the
        # latter it would also need the pasted headline undone (2 acts more), so the source is its parent.
        "b-truncated": "b-source",
        "x3": None, "x4": None,
    }
    assert [docs[d]["depth"] for d in ("b-source", "b-headline", "b-headline-cut", "b-truncated", "x3")] == [0, 1, 2, 1, 0]
    kinds = dict(zip(out.edges["child_id"].to_list(), out.edges["change_kind"].to_list()))
    assert kinds == {
        "s-headline": "insertion", "s-spun": "spin", "s-dropped": "copy", "s-truncated": "truncation",
        # Story 1's headline opens with the words its first sentence opens with ("Northwind Energy"): the
        # alignment keeps them there, so no line is wholly inserted, and 9 of 182 tokens are under 5%.
        "b-headline": "copy", "b-dropped": "copy", "b-truncated": "truncation", "b-headline-cut": "truncation",
    }
    assert report.stats == {"clusters": 4, "multi_document_clusters": 2, "largest_cluster": 5, "edges": 8}
    assert report.rows_in == len(TEXTS) and report.rows_out == 8


def test_trace_stage_does_not_depend_on_batch_sizes(corpus):
    prepared, linked = corpus
    out, _ = ts.trace_stage(prepared, linked, CONFIG)
    small, _ = ts.trace_stage(prepared, linked, CONFIG.replace(batch_size=2, words_batch=1))
    for name in ("documents", "clusters", "edges"):
        assert getattr(out, name).equals(getattr(small, name)), name


def test_trace_clusters_of_some_clusters_equal_the_full_trace(corpus):
    prepared, linked = corpus
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    full = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG)
    row = row_of(prepared)
    for chosen in (["b-source", "x3"], ["s-source", "x4"]):  # the second: rows 5-9 and 11 renumbered 0-5
        rows = np.flatnonzero(np.isin(cluster, cluster[[row[d] for d in chosen]]))
        part = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG, rows)
        assert part.placement.equals(full.placement.filter(pl.col("row").is_in(rows.tolist())))
        assert part.edges.equals(full.edges.filter(pl.col("child").is_in(rows.tolist())))
        assert part.consulted.equals(full.consulted.filter(pl.col("origin_row").is_in(rows.tolist())))
    assert part.consulted.height > 0 and set(part.consulted["origin_row"].to_list()) == {row["s-source"]}


def test_cluster_parts_are_whole_clusters_balanced_by_size():
    cluster = np.array([0, 1, 1, 2, 2, 2, 3, 3, 4, 1, 5, 5, 5, 5])
    parts = ts.cluster_parts(cluster, 2)
    members = ts.multi_members(cluster)
    assert np.array_equal(np.sort(np.concatenate(parts)), members)  # every member once, no singleton
    owners = [set(cluster[p].tolist()) for p in parts]
    assert not owners[0] & owners[1]  # no cluster split
    assert sorted(len(p) for p in parts) == [6, 6]  # 4+2 and 3+3: the largest first, each to the lighter part
    assert all(np.all(np.diff(p) > 0) for p in parts)
    assert ts.cluster_parts(cluster, 1)[0].tolist() == members.tolist()


@pytest.mark.parametrize("parts", [2, 3])
def test_trace_in_parts_equals_one_trace(corpus, monkeypatch, parts):
    """Clusters traced on threads in parts give the tables of one trace (singletons placed without a trace)."""
    prepared, linked = corpus
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    one = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG)
    out_one, _ = ts.trace_stage(prepared, linked, CONFIG)  # too few members to split
    monkeypatch.setattr(ts, "PARALLEL_MIN_MEMBERS", 0)
    split = ts.trace_in_parts(prepared, linked.pairs, cluster, facts, CONFIG, parts=parts)
    assert split.placement.equals(one.placement)
    key = ["parent", "child"]
    assert split.edges.sort(key).equals(one.edges.sort(key))
    assert split.consulted.equals(one.consulted) and one.consulted.height > 0
    monkeypatch.setattr(ts, "threads", lambda: parts)
    out_split, _ = ts.trace_stage(prepared, linked, CONFIG)
    for name in ("documents", "clusters", "edges"):
        assert getattr(out_split, name).equals(getattr(out_one, name)), name


def test_parts_hold_about_a_batch_of_members_each(corpus, monkeypatch):
    """More parts than threads when a batch holds fewer members than a thread's share: memory follows the part, tables do not move."""
    prepared, linked = corpus
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    one = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG)
    assert ts.part_count(10, 2, 3) == 4 and ts.part_count(10, 2, 100) == 2 and ts.part_count(0, 2, 3) == 2
    small = CONFIG.replace(batch_size=2)
    many = np.repeat(np.arange(6), 3)  # six clusters of three: batches of 4 members make 5 parts for 2 threads
    assert len(ts.cluster_parts(many, ts.part_count(len(many), 2, 4))) == 5
    monkeypatch.setattr(ts, "PARALLEL_MIN_MEMBERS", 0)
    split = ts.trace_in_parts(prepared, linked.pairs, cluster, facts, small, parts=2)
    assert split.placement.equals(one.placement)
    assert split.edges.sort("parent", "child").equals(one.edges.sort("parent", "child"))
    assert split.consulted.equals(one.consulted)


def test_consulted_comparisons_are_keyed_by_the_origin_row():
    source = make_article(5, 8, headline=False)
    texts = [spin(source, 0.3, seed=2), source, make_article(1), make_article(2)]
    prepared = prepare(texts, ["spun", "source", "y1", "y2"])
    linked, _ = link_stage(prepared, CONFIG)
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    traced = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG)
    assert traced.consulted.schema == ts.CONSULTED_SCHEMA
    origin = int(traced.placement.filter(pl.col("is_origin") & pl.col("row").is_in([0, 1]))["row"].item())
    assert set(traced.consulted["origin_row"].to_list()) == {origin}
    spun, plain = words_of(texts[0], texts[1])
    swaps = {(x, y) for x, y in zip(spun.tokens, plain.tokens) if x != y} | {(y, x) for x, y in zip(spun.tokens, plain.tokens) if x != y}
    assert set(zip(traced.consulted["word_a"].to_list(), traced.consulted["word_b"].to_list())) <= swaps
    assert traced.consulted.height == len(set(zip(traced.consulted["word_a"].to_list(), traced.consulted["word_b"].to_list())))
    for a, b, sign in zip(traced.consulted["word_a"], traced.consulted["word_b"], traced.consulted["sign"]):
        assert sign == int(np.sign(facts.frequency.get(a, 0) - facts.frequency.get(b, 0)))


def test_publication_dates_never_override_text_evidence():
    edits = light_edits(0)
    texts = [edits["headline"], edits["source"], make_article(3)]
    dated = {"published_at": ["2024-05-01T06:00:00Z", "2024-05-01T09:00:00+02:00", "2024-04-01T00:00:00Z"]}
    prepared = prepare(texts, ["headline", "source", "other"], **dated)
    linked, _ = link_stage(prepared, CONFIG)
    out, _ = ts.trace_stage(prepared, linked, CONFIG)
    docs = docs_by_id(out)
    # The headline copy was published first (06:00 UTC < 07:00 UTC), but its pasted headline line is two
    # acts of direction: the text decides, as it does without dates.
    assert docs["source"]["is_origin"] and docs["headline"]["parent_id"] == "source"
    undated = prepare(texts, ["headline", "source", "other"])
    out, _ = ts.trace_stage(undated, link_stage(undated, CONFIG)[0], CONFIG)
    assert docs_by_id(out)["source"]["is_origin"]


@pytest.mark.parametrize("first", ["copy", "source"])
def test_publication_dates_decide_between_versions_the_text_cannot_orient(first):
    source = make_article(6, 8, headline=False)
    texts = [source, source.replace("\n\n", "\n"), make_article(3)]  # the same words: no direction in the text
    when = {"copy": ["2024-05-02", "2024-05-01", "2024-04-01"], "source": ["2024-05-01", "2024-05-02", "2024-04-01"]}[first]
    prepared = prepare(texts, ["source", "copy", "other"], published_at=when)
    out, _ = ts.trace_stage(prepared, link_stage(prepared, CONFIG)[0], CONFIG)
    docs = docs_by_id(out)
    assert docs[first]["is_origin"] and docs[{"copy": "source", "source": "copy"}[first]]["parent_id"] == first
