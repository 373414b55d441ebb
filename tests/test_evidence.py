"""The evidence of copying (``link.evidence``) on hand-made phenomena: what makes two texts versions of one text."""

from __future__ import annotations

import numpy as np
import polars as pl

from provenance.config import EvidenceOptions
from provenance.link import evidence, units
from tests.fixtures import make_article, spin, story_sentences

OPTIONS = EvidenceOptions()

QUOTES = (
    '"We will not stand by while our neighbours suffer, and we will act together," the minister said.\n'
    '"This is the most serious crisis the region has faced in a generation," she told the assembly.\n'
    '"Nobody should be left without shelter when the winter comes," the envoy added.'
)


def decide(a: str, b: str, floating: units.Floating | None = None) -> dict:
    return evidence.decide_texts(a, b, OPTIONS, floating)


def test_a_light_edit_is_a_copy_with_one_spun_passage_and_a_confident_edge() -> None:
    source = make_article(0)
    edited = spin(source, 0.2, seed=3)
    verdict = decide(source, edited)
    assert verdict["edge"] and verdict["share"] > 0.9
    passages = evidence.aligned_passages(source, edited, OPTIONS)
    assert [p.kind for p in passages if p.qualifies] == ["spun"]
    ev = evidence.pair_evidence(evidence.units_of_texts([source, edited], OPTIONS), np.array([0]), np.array([1]), OPTIONS)
    assert evidence.copy_confidence(ev, OPTIONS.chance_unit_match, OPTIONS.max_gap)[0] > 0.999


def test_passage_offsets_point_at_the_same_text_in_both_documents() -> None:
    source = make_article(1)
    copy = "Breaking: markets close higher on Friday\n\n" + source + "\n\nRead more stories like this one on our site every day."
    passages = evidence.aligned_passages(source, copy, OPTIONS)
    verbatim = [p for p in passages if p.kind == "verbatim" and p.qualifies]
    assert len(verbatim) == 1
    p = verbatim[0]
    assert source[p.a_start : p.a_end] == copy[p.b_start : p.b_end]
    assert p.b_start > len("Breaking: markets close higher on Friday")  # the pasted headline is not part of it


def test_shared_quotations_are_not_evidence_of_copying() -> None:
    a = make_article(0, 4) + "\n\n" + QUOTES
    b = make_article(3, 4) + "\n\n" + QUOTES
    verdict = decide(a, b)
    assert not verdict["edge"]
    # The same texts without quotation marks are sentences the two share: then they count.
    plain = QUOTES.replace('"', "")
    assert decide(make_article(0, 2) + "\n\n" + plain, make_article(3, 2) + "\n\n" + plain)["aligned"] > verdict["aligned"]


def test_shared_names_are_not_evidence_of_copying() -> None:
    names = "Russian President Vladimir Putin"
    a = (f"{names} met officials on Monday to discuss the grain deal and its future.\n"
         f"Analysts said {names} wanted to show that the country still had friends abroad.\n"
         "Markets in the capital rose slightly after the meeting ended late in the evening.")
    b = (f"{names} spoke by telephone with President Donald Trump about the war for an hour.\n"
         f"Officials said {names} and President Donald Trump agreed to talk again next month.\n"
         "The call came as both sides traded accusations over the failed ceasefire in the south.")
    assert not decide(a, b)["edge"]


def test_one_shared_paragraph_does_not_make_two_articles_versions() -> None:
    borrowed = " ".join(story_sentences(1)[2:4])
    a = make_article(0) + "\n\n" + borrowed
    b = make_article(1)
    assert not decide(a, b)["edge"]
    matched = [p for p in evidence.aligned_passages(a, b, OPTIONS) if p.qualifies]
    assert len(matched) == 1 and a[matched[0].a_start : matched[0].a_end] == borrowed  # it matched, and is not enough


def test_a_truncation_to_two_sentences_is_a_copy_but_two_shared_sentences_in_a_longer_text_are_not() -> None:
    source = make_article(2, headline=False)
    first_two = " ".join(story_sentences(2)[:2])
    assert decide(source, first_two)["edge"]
    mixed = first_two + " " + " ".join(story_sentences(4)[:3])
    assert not decide(source, mixed)["edge"]
    matched = [p for p in evidence.aligned_passages(source, mixed, OPTIONS) if p.qualifies]
    assert [mixed[p.b_start : p.b_end] for p in matched] == [first_two]


def test_a_copy_in_look_alike_letters_is_found() -> None:
    source = make_article(5)
    disguised = source.translate(str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440"}))
    verdict = decide(source, disguised)
    assert verdict["edge"] and verdict["share"] == 1.0
    assert {p.kind for p in evidence.aligned_passages(source, disguised, OPTIONS)} == {"verbatim"}


def test_unrelated_articles_are_rejected_by_the_bound_before_alignment() -> None:
    verdict = decide(make_article(0), make_article(4))
    assert not verdict["edge"] and verdict["stage"] == 1.0 and verdict["n_passages"] == 0


FOOTER = ("Sign up for our morning newsletter to get the biggest stories before breakfast.\n"
          "Follow us on every social network for live updates from our reporters around the world.")


def furniture_corpus() -> list[str]:
    """Five unrelated articles that each end with the same two-line footer."""
    return [make_article(s, 3) + "\n\n" + FOOTER for s in range(5)]


def test_furniture_recurring_between_different_neighbours_floats() -> None:
    corpus = furniture_corpus()
    texts = pl.Series(corpus)
    lines = units.line_table(texts, OPTIONS)
    floating = units.floating_keys(lines, OPTIONS)
    found = units.build_units(texts, floating, OPTIONS)
    in_footer = np.zeros(len(found.key), dtype=bool)
    for d, text in enumerate(corpus):
        lo = found.doc_lo[d]
        in_footer[lo : found.doc_lo[d + 1]] = found.start[lo : found.doc_lo[d + 1]] >= text.index(FOOTER)
    # Every footer unit floats (its lines recur as one block between different articles); no article unit does.
    assert found.floating[in_footer].all() and not found.floating[~in_footer].any()
    assert len(floating.links) >= 1


def test_two_articles_sharing_only_their_furniture_are_not_copies() -> None:
    corpus = furniture_corpus()
    floating = units.floating_keys(units.line_table(pl.Series(corpus), OPTIONS), OPTIONS)
    shorter = ["The council met again on Monday.\n" + FOOTER, "A storm closed the harbour last night.\n" + FOOTER]
    assert not decide(shorter[0], shorter[1], floating)["edge"]
    assert decide(shorter[0], shorter[1])["edge"]  # without the corpus, the footer looks like a copied passage


def test_a_syndicated_story_keeps_its_short_paragraphs_however_often_it_recurs() -> None:
    story = "\n\n".join(story_sentences(3)[:6])  # one sentence per paragraph
    corpus = [story] * 6 + [make_article(s, 3) for s in range(3)]
    floating = units.floating_keys(units.line_table(pl.Series(corpus), OPTIONS), OPTIONS)
    assert len(floating.lines) == 0 and len(floating.links) == 0
    assert decide(story, story.replace(story_sentences(3)[5], ""), floating)["edge"]


def test_copy_confidence_is_the_null_model_posterior() -> None:
    rows = np.zeros((3, len(evidence.PAIR_COLUMNS)))
    rows[:, 3] = 1  # a qualifying passage
    rows[:, 5] = [2, 3, 6]  # evidence units of the best passage
    rows[:, 9] = 10  # units of the smaller text
    rows[:, 10] = 30  # units of the larger one
    p, gap = 0.01, 2
    q, r = 1 - (1 - p) ** 30, 1 - (1 - p) ** (2 * gap + 1)
    expected = [1 / (1 + min(1.0, 10 * q * r ** (k - 1))) for k in (2, 3, 6)]
    got = evidence.copy_confidence(rows, p, gap)
    assert np.allclose(got, expected)
    assert got[0] < 0.9 < got[1] < got[2]
    rows[:, 3] = 0
    assert evidence.copy_confidence(rows, p, gap).tolist() == [0.0, 0.0, 0.0]


def test_is_edge_asks_more_of_evidence_with_few_units() -> None:
    rows = np.zeros((2, len(evidence.PAIR_COLUMNS)))
    rows[:, 3] = 1
    rows[:, 0] = 0.7
    rows[:, 8] = [2, 3]
    assert evidence.is_edge(rows, OPTIONS).tolist() == [False, True]


def test_passage_rows_of_many_edges_are_the_passages_of_each() -> None:
    texts = [make_article(0), spin(make_article(0), 0.3, seed=2), make_article(0, 5) + "\n\n" + " ".join(story_sentences(1)[:4]), make_article(1)]
    found = evidence.units_of_texts(texts, OPTIONS)
    parent, child = np.array([0, 2, 1, 3]), np.array([1, 0, 2, 2])
    rows = evidence.passage_rows(found, parent, child, OPTIONS)
    expected = [
        (k, q.a_start, q.a_end, q.b_start, q.b_end, q.b_tokens, round(q.similarity, 4), q.kind, q.qualifies)
        for k, (p, c) in enumerate(zip(parent.tolist(), child.tolist()))
        for q in sorted(evidence.passages_of(found, p, c, OPTIONS), key=lambda q: (q.b_start if found.doc_weight[c] <= found.doc_weight[p] else q.a_start))
    ]
    assert sorted(rows.rows()) == sorted(expected)
    assert rows.filter(pl.col("edge") == 3).height >= 1  # the borrowed paragraph, as a passage
