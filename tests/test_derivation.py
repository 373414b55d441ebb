"""trace.derivation: the edit-act cost model, the root cost, the minimum arborescence and parent confidence.

Hand-made versions of one source (``fixtures.light_edits``, truncations, copies, pasted
headlines of other stories); other stories are singletons, so word and line counts
have other clusters to compare with.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest
from networkx.algorithms.tree.branchings import minimum_spanning_arborescence

import provenance
from provenance.config import Config
from provenance.trace import derivation as dv
from tests.fixtures import STORIES, light_edits, make_article, near_copy, paste_lines, spin, truncate

OPTIONS = Config().trace
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
#: Other stories, each its own cluster: the corpus the counts come from.
OTHERS = [make_article(s) for s in range(1, 6)]


def derive(texts: list[str], keys: list[int] | None = None, published=None, options=OPTIONS):
    """The model on one cluster ``texts`` (all pairs candidates) next to the ``OTHERS`` singletons."""
    n = len(texts)
    every = pl.Series(texts + OTHERS)
    cluster = np.array([0] * n + list(range(1, len(OTHERS) + 1)), dtype=np.int64)
    facts = dv.facts_of([dv.fact_parts(every, cluster, options)], int(cluster.max()) + 1)
    batch = dv.batch_arrays(pl.Series(texts), facts, options, 20_000)
    a = np.array([i for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    b = np.array([j for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    order_key = np.array(keys if keys is not None else [(7919 * i) % 1009 for i in range(n)], dtype=np.uint64)
    return dv.derive(batch, np.zeros(n, dtype=np.int64), order_key, a, b, options, published), batch


def origin_of(got) -> int:
    roots = np.flatnonzero(got.parent < 0)
    assert len(roots) == 1
    return int(roots[0])


# ---------------------------------------------------------------------------- arborescence


@pytest.mark.parametrize("seed", range(6))
def test_arborescence_is_the_networkx_optimum(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    src, dst = [], []
    for v in range(1, n):
        src.append(int(rng.integers(0, v)))  # a spanning tree from node 0, so every node is reachable
        dst.append(v)
    for _ in range(4 * n):
        x, y = rng.integers(0, n, size=2)
        if x != y and y != 0:
            src.append(int(x))
            dst.append(int(y))
    weight = rng.random(len(src)) * 10
    parent = dv.arborescence(n, 0, np.array(src), np.array(dst), weight)
    graph = nx.DiGraph()
    for s, d, w in zip(src, dst, weight):
        if not graph.has_edge(s, d) or graph[s][d]["weight"] > w:
            graph.add_edge(s, d, weight=w)
    best = minimum_spanning_arborescence(graph)
    assert parent[0] == -1 and (parent[1:] >= 0).all()
    cost = {(s, d): min(w for s2, d2, w in zip(src, dst, weight) if (s2, d2) == (s, d)) for s, d in zip(src, dst)}
    ours = sum(cost[(int(parent[v]), v)] for v in range(1, n))
    assert ours == pytest.approx(best.size(weight="weight"))
    assert {(int(parent[v]), v) for v in range(1, n)} == set(best.edges())  # random weights: the optimum is unique


def test_arborescence_of_a_viral_star_is_linear_in_its_edges():
    n = 5001
    rng = np.random.default_rng(1)
    src = np.concatenate([np.zeros(n - 1, dtype=np.int64), rng.integers(1, n, size=4 * n)])
    dst = np.concatenate([np.arange(1, n), rng.integers(1, n, size=4 * n)])
    weight = np.concatenate([np.full(n - 1, 1.0), 1.5 + rng.random(4 * n)])
    parent = dv.arborescence(n, 0, src, dst, weight)
    assert (parent[1:] == 0).all()


# ---------------------------------------------------------------------------- the cost model


@pytest.mark.parametrize("edit", ["headline", "dropped", "truncated", "spun"])
def test_the_source_of_a_light_edit_is_its_origin_and_parent(edit):
    edits = light_edits(0)
    for texts, source in (([edits["source"], edits[edit]], 0), ([edits[edit], edits["source"]], 1)):
        got, _ = derive(texts)
        assert origin_of(got) == source
        assert got.parent[1 - source] == source
        assert got.parent_confidence[1 - source] == pytest.approx(1.0)  # one candidate parent


def test_costs_count_acts_in_both_directions():
    edits = light_edits(0)
    got, _ = derive([edits["source"], edits["headline"], edits["dropped"], edits["truncated"]])
    cost = {(a, b): ab for a, b, ab in zip(got.edges["a"], got.edges["b"], got.edges["cost_ab"])}
    back = {(a, b): ba for a, b, ba in zip(got.edges["a"], got.edges["b"], got.edges["cost_ba"])}
    # Pasting a headline line: one act (a fragment has no content); undoing it: two (a whole unit of no content).
    assert int(cost[(0, 1)]) == 1 and int(back[(0, 1)]) == 2
    # Dropping a sentence or cutting a tail: one act; putting it back: a paste plus every word written.
    assert int(cost[(0, 2)]) == 1 and back[(0, 2)] > 10
    assert int(cost[(0, 3)]) == 1 and back[(0, 3)] > 20
    assert min(cost.values()) >= 1.0 and min(back.values()) >= 1.0  # every derivation is at least one act


def test_a_spun_copy_pays_at_the_root_for_its_rarer_words():
    edits = light_edits(0)
    got, _ = derive([edits["spun"], edits["source"]])
    costs = got.edges.row(0, named=True)
    assert abs(costs["cost_ab"] - costs["cost_ba"]) < 0.05 * costs["cost_ab"]  # substitutions cost the same both ways
    assert got.root_cost[0] > got.root_cost[1]  # the spinner's synonyms are rarer words
    assert origin_of(got) == 1


def test_moving_spun_paragraphs_costs_the_move_not_the_words():
    source = make_article(0, 12, headline=False)
    spun = spin(source, 0.2, seed=1)
    paragraphs = [p for p in spun.split("\n\n") if p.strip()]
    moved = "\n\n".join(paragraphs[3:] + paragraphs[:3])  # the second half first: every sentence spun, none verbatim
    got, _ = derive([source, spun, moved])
    cost = {(a, b): ab for a, b, ab in zip(got.edges["a"], got.edges["b"], got.edges["cost_ab"])}
    # Found by their longest common subsequence, the spun sentences are put back in place: one break, half an act.
    assert cost[(0, 2)] - cost[(0, 1)] <= 1.0
    assert cost[(1, 2)] < 3.0


def test_pasted_headlines_of_other_stories_do_not_make_a_version_more_complete():
    source = make_article(0, 10, headline=False)
    pasted = paste_lines(source, [str(STORIES[s]["headline"]) + "." for s in (1, 2, 3)])
    got, batch = derive([pasted, source])
    assert origin_of(got) == 1 and got.parent[0] == 1
    assert batch.foreign[batch.doc_lo[0] : batch.doc_lo[1]].any()  # the other stories' headlines are foreign
    assert not batch.foreign[batch.doc_lo[1] : batch.doc_lo[2]].any()


def test_a_truncation_chain_hangs_from_the_nearest_longer_version():
    source = make_article(0, 12)
    texts = [truncate(source, 0.4), source, truncate(source, 0.8), truncate(source, 0.6)]
    got, _ = derive(texts)
    assert origin_of(got) == 1
    assert got.parent.tolist() == [3, -1, 1, 2]


@pytest.mark.parametrize("copies", [1, 2, 3])
@pytest.mark.parametrize("kind", ["exact", "near"])
def test_extra_copies_of_a_short_version_never_move_the_origin(copies, kind):
    source = make_article(0, 12)
    short = truncate(source, 0.6)
    extra = [short if kind == "exact" else near_copy(short, first=f"Site {i} news", last=f"Filed by site {i}.") for i in range(copies)]
    got, _ = derive([short, source, *extra])
    assert origin_of(got) == 1


def test_seeds_origin_stays_the_complete_version_with_a_near_copy_of_a_shorter_one(tmp_path):
    folder = tmp_path / "seeds"
    folder.mkdir()
    for path in sorted(SEEDS.glob("*.txt")):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    first = sorted(SEEDS.glob("000_*.txt"))[0].read_text(encoding="utf-8")
    (folder / "005_nearcopy.txt").write_text(near_copy(first), encoding="utf-8")
    result = provenance.run([folder], out_dir=tmp_path / "out")
    docs = {r["doc_id"]: r for r in result.documents.iter_rows(named=True)}
    clustered = docs[next(d for d in docs if d.startswith("005"))]["cluster_id"]
    origins = [d for d, r in docs.items() if r["is_origin"] and r["cluster_id"] == clustered]
    assert len(origins) == 1 and origins[0].startswith("001")


def test_parent_confidence_is_a_softmax_over_the_trees_one_move_away():
    source = make_article(0, 12)
    short = truncate(source, 0.6)
    got, _ = derive([source, short, short])  # twin copies of the short version
    assert origin_of(got) == 0
    # The tree is source -> twin -> twin. The lower twin could hang from the source instead (1 act, farther); the
    # upper one could swap places with its child (the same cost): neither twin's parent is known, both near a coin toss.
    conf = got.parent_confidence
    assert np.isnan(conf[0])
    assert 0.45 <= min(conf[1], conf[2]) and max(conf[1], conf[2]) < 0.7


def test_ties_follow_the_id_hash_not_the_row_order():
    text = make_article(0, 10)
    one, _ = derive([text, text], keys=[5, 9])
    two, _ = derive([text, text], keys=[9, 5])
    assert origin_of(one) == 0 and origin_of(two) == 1


def test_dates_decide_only_when_the_text_gives_no_direction():
    edits = light_edits(0)
    copy = edits["source"].replace("\n\n", "\n")
    later_first = np.array([2.0, 1.0])
    got, _ = derive([edits["source"], copy], published=later_first)
    assert origin_of(got) == 1  # no direction in the text: the earlier publication
    got, _ = derive([edits["source"], edits["headline"]], published=later_first)
    assert origin_of(got) == 0  # a pasted headline: the text decides
    got, _ = derive([edits["source"], copy], published=np.array([np.nan, 1.0]))
    assert origin_of(got) == 1  # an unknown date never wins


def test_exceptional_counts_follow_the_background_sharing():
    assert dv.exceptional(np.array([1, 1, 1, 2])) == 2
    background = np.array([3] * 50 + [1] * 10 + [9])
    least = dv.exceptional(background)
    assert 4 < least <= 10


@pytest.mark.parametrize("counts", [[0, 3, 3, 1, 250, 0], [5, 10**9, 5, 2]])  # a table over 0..max, and a sort past it
def test_description_lengths_are_scalar_logs_of_each_count(counts):
    got = dv.description_lengths(np.array(counts), 1000)
    want = [math.log(1001.0) - math.log(c + 1.0) for c in counts]
    assert got.tolist() == want  # the same bits as one scalar log per count
    assert dv.description_lengths(np.zeros(0, dtype=np.int64), 1000).tolist() == []


def test_positions_by_token_are_the_stable_sort_of_each_documents_tokens():
    rng = np.random.default_rng(11)
    sizes = np.array([0, 5, 1, 300, 0, 40])
    doc_lo = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    tok = rng.integers(0, 12, size=int(doc_lo[-1])).astype(np.int32)  # few ids: long runs of ties
    doc = np.repeat(np.arange(len(sizes)), sizes)
    assert dv.positions_by_token(tok, doc_lo).tolist() == np.lexsort((tok, doc)).tolist()
