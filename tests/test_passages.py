"""The evidence table and the edge columns it gives (``trace.passages``), through the whole chain."""

from __future__ import annotations

import polars as pl
import pytest

import provenance
from provenance import schemas
from tests.fixtures import make_article, spin, truncate


@pytest.fixture(scope="module")
def result():
    texts = {
        "a-source": make_article(0),
        "a-exact": make_article(0),
        "a-spun": spin(make_article(0), 0.2, seed=1),
        "a-short": truncate(make_article(0), 0.5),
        "a-pasted": "Markets close higher on Friday\n\n" + make_article(0),
        "b-source": make_article(1),
        "b-copy": make_article(1) + "\n\nShare this story with your friends on every network you use today.",
        "c-alone": make_article(2),
    }
    return provenance.run(pl.DataFrame({"id": list(texts), "text": list(texts.values())}))


def test_every_edge_has_passages_that_point_into_both_texts(result) -> None:
    edges, ev = result.edges, result.evidence
    assert ev.schema == schemas.EVIDENCE
    assert edges.height == 5
    per_edge = ev.group_by("parent_id", "child_id").len()
    assert per_edge.height == edges.height
    joined = edges.join(per_edge, on=["parent_id", "child_id"])
    assert (joined["len"] == joined["passages"]).all() and (joined["passages"] >= 1).all()
    text = dict(zip(result.documents["doc_id"], result.documents["text"]))
    for row in ev.iter_rows(named=True):
        parent, child = text[row["parent_id"]], text[row["child_id"]]
        assert 0 <= row["parent_start"] < row["parent_end"] <= len(parent)
        assert 0 <= row["child_start"] < row["child_end"] <= len(child)
        if row["kind"] == "verbatim":
            assert parent[row["parent_start"] : row["parent_end"]] == child[row["child_start"] : row["child_end"]]
    assert set(ev["kind"]) <= set(schemas.PASSAGE_KINDS)


def test_confidences_are_copy_times_parent_and_exact_copies_are_certain(result) -> None:
    edges = result.edges
    pair = {"a-exact", "a-source"}
    exact = edges.filter(pl.col("parent_id").is_in(list(pair)) & pl.col("child_id").is_in(list(pair)))
    assert exact["copy_confidence"].to_list() == [1.0]
    assert (edges["copy_confidence"] >= 0.99).all()  # every one of these is a plain copy with long passages
    product = (edges["copy_confidence"] * edges["parent_confidence"]).round(6)
    assert (edges["confidence"] - product).abs().max() < 1e-6
    assert (edges["evidence_tokens"] >= 20).all()


def test_a_pasted_headline_is_not_inside_the_evidence(result) -> None:
    ev = result.evidence.filter(pl.col("child_id") == "a-pasted")
    if ev.height == 0:  # the pasted copy is a parent
        ev = result.evidence.filter(pl.col("parent_id") == "a-pasted")
        starts = ev["parent_start"]
    else:
        starts = ev["child_start"]
    assert starts.min() >= len("Markets close higher on Friday")


def test_an_exact_copy_without_sentences_gets_one_row_spanning_both_texts() -> None:
    menu = "\n".join(f"Section {k} of the weekly listings guide for the northern region" for k in range(12))
    frame = pl.DataFrame({"id": ["m1", "m2", "x"], "text": [menu, menu, make_article(3)]})
    out = provenance.run(frame)
    assert out.edges.height == 1 and out.edges["passages"].to_list() == [1]
    row = out.evidence.row(0, named=True)
    assert (row["parent_start"], row["parent_end"], row["child_start"], row["child_end"]) == (0, len(menu), 0, len(menu))
    assert row["kind"] == "verbatim" and row["similarity"] == 1.0
    assert out.edges["copy_confidence"].to_list() == [1.0]


def test_a_tree_edge_that_is_no_linked_pair_gets_its_own_evidence_or_the_clusters() -> None:
    from types import SimpleNamespace

    import numpy as np

    from provenance.config import Config
    from provenance.link.stage import Linked
    from provenance.trace.passages import edge_evidence

    texts = [make_article(0), spin(make_article(0), 0.2, seed=4), make_article(0, 6)]
    prepared = SimpleNamespace(documents=pl.DataFrame({"doc_id": ["a", "b", "c"], "text": texts}), texts=None)
    # Only a-c is a linked pair; the tree says a -> b and a -> c.
    pairs = pl.DataFrame({"a": [0], "b": [2], "copy_confidence": [0.5]})
    linked = Linked(pairs, np.array([0, 0, 0]))
    edges = pl.DataFrame({"cluster_id": ["c1", "c1"], "parent_id": ["a", "a"], "child_id": ["b", "c"],
                          "confidence": [0.8, 0.7], "similarity": [0.9, 1.0]})
    out, rows = edge_evidence(prepared, linked, edges, Config())
    copy = dict(zip(out["child_id"], out["copy_confidence"]))
    assert copy["c"] == 0.5  # the linked pair's own figure
    assert copy["b"] > 0.99  # measured here: a spun copy with long passages
    assert set(rows["child_id"]) == {"b", "c"} and out["passages"].min() >= 1
    assert out["confidence"].to_list() == [round(copy["b"] * 0.8, 6), round(0.5 * 0.7, 6)]
