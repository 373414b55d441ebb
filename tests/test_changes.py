"""changes: per-edge alignment statistics and change kinds."""

from __future__ import annotations

import polars as pl
import pytest

from provenance.changes import MAX_ALIGN_TOKENS, MAX_EXAMPLES, Tokens, align_stats, doc_tokens, edge_changes


def toks(*lines: str) -> Tokens:
    words, line_no = [], []
    for i, line in enumerate(lines):
        for w in line.split():
            words.append(w)
            line_no.append(i)
    return Tokens(words, line_no)


SENTENCE = "the leader of the harbour party spoke in portvale on monday about the bridge"


# ---------------------------------------------------------------------------- hand-made token lists


def test_identical_tokens_are_a_copy():
    parent = toks(SENTENCE, "officials expect a final decision by september")
    stats = align_stats(parent, parent)
    assert stats["change_kind"] == "copy"
    assert stats["kept"] == len(parent.words)
    assert stats["inserted"] == stats["deleted"] == stats["substituted"] == 0
    assert stats["is_truncation"] is False and stats["boilerplate_lines_added"] == 0
    assert stats["parent_tokens"] == stats["child_tokens"] == len(parent.words)


def test_substitution_is_reported_with_an_example():
    parent = toks(SENTENCE)
    child = toks(SENTENCE.replace("leader", "pioneer"))
    stats = align_stats(parent, child)
    assert stats["substituted"] == 1 and stats["inserted"] == 0 and stats["deleted"] == 0
    assert stats["substitution_examples"] == ["leader -> pioneer"]
    assert stats["spin_rate"] == pytest.approx(1 / len(parent.words), abs=1e-6)
    # One word in 14 (7%) is under the 8% spin threshold; two words are over it.
    assert stats["change_kind"] == "copy"
    two = align_stats(parent, toks(SENTENCE.replace("leader", "pioneer").replace("spoke", "talked")))
    assert two["substitution_examples"] == ["leader -> pioneer", "spoke -> talked"]
    assert two["change_kind"] == "spin"


def test_substitution_examples_are_unique_and_capped():
    parent_words = [f"w{i}" for i in range(60)]
    child_words = list(parent_words)
    for i in range(0, 60, 6):
        child_words[i] = f"s{i}"
    stats = align_stats(Tokens(parent_words, [0] * 60), Tokens(child_words, [0] * 60))
    examples = stats["substitution_examples"]
    assert stats["substituted"] == 10
    assert len(examples) == MAX_EXAMPLES == len(set(examples))
    assert examples[0] == "w0 -> s0"


def test_prefix_is_flagged_as_truncation():
    parent = toks(SENTENCE, "officials expect a final decision by september", "the council meets on thursday")
    child = Tokens(parent.words[:10], parent.lines[:10])
    stats = align_stats(parent, child)
    assert stats["is_truncation"] is True
    assert stats["deleted"] == len(parent.words) - 10 and stats["kept"] == 10
    assert stats["change_kind"] == "truncation"


def test_almost_complete_copy_is_not_a_truncation():
    parent = toks(*[SENTENCE] * 4)
    child = Tokens(parent.words[:-2], parent.lines[:-2])  # 96% of the parent
    assert align_stats(parent, child)["is_truncation"] is False


def test_pasted_boilerplate_line_is_counted():
    body = [SENTENCE, "officials expect a final decision by september about the crossing"]
    parent = toks(*body)
    child = toks(*body, "share this article on facebook")
    stats = align_stats(parent, child)
    assert stats["boilerplate_lines_added"] == 1
    assert stats["inserted"] == 5
    assert stats["change_kind"] == "insertion"
    # A pasted headline at the top counts the same.
    child_top = toks("breaking news from portvale", *body)
    assert align_stats(parent, child_top)["boilerplate_lines_added"] == 1


def test_inserted_words_inside_a_line_are_not_a_boilerplate_line():
    parent = toks(SENTENCE)
    child = toks(SENTENCE + " and the ferry")
    stats = align_stats(parent, child)
    assert stats["inserted"] == 3 and stats["boilerplate_lines_added"] == 0


def test_moved_sentence_is_counted_as_reordered():
    s1 = "mayor elena marquez ordered the halden bridge closed on tuesday"
    s2 = "chief engineer tomas brandt said the damage had spread quickly"
    s3 = "the council will approve eighteen million euros for repairs"
    stats = align_stats(toks(s1, s2, s3), toks(s1, s3, s2))
    assert stats["sentences_reordered"] >= 1


def test_empty_child_and_empty_parent_do_not_crash():
    parent = toks(SENTENCE)
    empty = Tokens([], [])
    assert align_stats(parent, empty)["child_tokens"] == 0
    stats = align_stats(empty, parent)
    assert stats["parent_tokens"] == 0 and stats["is_truncation"] is False


# ---------------------------------------------------------------------------- on factory texts


def kind(parent_text: str, child_text: str) -> dict:
    parent, child = doc_tokens(pl.Series([parent_text, child_text]))
    return align_stats(parent, child)


def test_change_kind_copy_for_identical_and_normalised_duplicates(factory):
    a = factory.make_article(0)
    assert kind(a, a)["change_kind"] == "copy"
    assert kind(a, factory.noisy_copy(a))["change_kind"] == "copy"
    assert kind(a, factory.punctuation_copy(a))["change_kind"] == "copy"


@pytest.mark.parametrize("story", [0, 1, 3])
def test_change_kind_spin_for_a_spun_copy(factory, story):
    a = factory.make_article(story)
    stats = kind(a, factory.spin(a, 0.3, seed=story))
    assert stats["change_kind"] == "spin"
    assert 0.08 <= stats["spin_rate"] <= 0.3
    assert stats["is_truncation"] is False
    assert len(stats["substitution_examples"]) == MAX_EXAMPLES


def test_spin_examples_come_from_the_thesaurus(factory):
    a = factory.make_article(0)
    stats = kind(a, factory.spin(a, 0.3, seed=1))
    for example in stats["substitution_examples"]:
        old, new = example.split(" -> ")
        if " " not in old:
            assert factory.SYNONYMS[old] == new


@pytest.mark.parametrize("share", [0.3, 0.4, 0.7])
def test_change_kind_truncation_for_a_prefix(factory, share):
    a = factory.make_article(2)
    stats = kind(a, factory.truncate(a, share))
    assert stats["change_kind"] == "truncation"
    assert stats["is_truncation"] is True
    assert stats["spin_rate"] == 0.0


def test_change_kind_excerpt_for_a_middle_section(factory):
    a = factory.make_article(4)
    middle = factory.make_article(4, 4, start=4, headline=False)
    assert kind(a, middle)["change_kind"] == "excerpt"


def test_doc_tokens_keep_lines_and_lower_case():
    (t,) = doc_tokens(pl.Series(["Portvale \u201cBridge\u201d\n\n  CLOSED today\nagain"]))
    assert t.words == ["portvale", "bridge", "closed", "today", "again"]
    assert t.lines == [0, 0, 1, 1, 2]
    empty, full = doc_tokens(pl.Series(["", "a b"]))
    assert empty.words == [] and full.words == ["a", "b"]


def test_doc_tokens_are_capped():
    (t,) = doc_tokens(pl.Series([" ".join(["word"] * (MAX_ALIGN_TOKENS + 7))]))
    assert len(t.words) == len(t.lines) == MAX_ALIGN_TOKENS


def test_edge_changes_one_row_per_edge_in_order(factory):
    a = factory.make_article(1)
    texts = pl.Series([a, factory.truncate(a, 0.5), factory.spin(a, 0.3, seed=2), a])
    edges = pl.DataFrame({"parent": [0, 0, 0], "child": [1, 2, 3]})
    out = edge_changes(edges, texts)
    assert out["change_kind"].to_list() == ["truncation", "spin", "copy"]
    assert out.schema["substitution_examples"] == pl.List(pl.String)
    assert out.schema["kept"] == pl.Int32
    no_edges = pl.DataFrame({"parent": [], "child": []}, schema={"parent": pl.Int64, "child": pl.Int64})
    none = edge_changes(no_edges, texts)
    assert none.height == 0 and none.columns == out.columns
