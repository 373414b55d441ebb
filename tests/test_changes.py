"""trace.changes: per-edge alignment statistics and change kinds, on hand-made token lists and factory texts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import ChangesOptions
from provenance.prepare.words import Words
from provenance.trace.changes import SCHEMA, align_stats, edge_changes
from tests.fixtures import SYNONYMS, make_article, noisy_copy, punctuation_copy, spin, truncate, words_of

OPTIONS = ChangesOptions()


def options(**changes) -> ChangesOptions:
    return ChangesOptions(**{**OPTIONS.model_dump(), **changes})


def toks(*lines: str) -> Words:
    """Words of hand-written lines (one line of text each)."""
    (w,) = words_of("\n".join(lines))
    return w


def head(w: Words, k: int) -> Words:
    return Words(w.tokens[:k], w.lines[:k], w.start[:k], w.end[:k])


def plain(tokens: list[str]) -> Words:
    n = len(tokens)
    return Words(tokens, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))


SENTENCE = "the leader of the harbour party spoke in portvale on monday about the bridge"
DECISION = "officials expect a final decision by september"


# ---------------------------------------------------------------------------- hand-made token lists


def test_identical_tokens_are_a_copy():
    parent = toks(SENTENCE, DECISION)
    stats = align_stats(parent, parent, OPTIONS)
    n = len(parent.tokens)
    assert stats == {
        "parent_tokens": n, "child_tokens": n, "kept": n, "inserted": 0, "deleted": 0, "substituted": 0,
        "is_truncation": False, "spin_rate": 0.0, "boilerplate_lines_added": 0, "sentences_reordered": 0,
        "substitution_examples": [], "change_kind": "copy", "rewritten": 0,
    }
    assert set(stats) == set(SCHEMA)


def test_substitution_is_reported_with_an_example():
    parent = toks(SENTENCE)
    stats = align_stats(parent, toks(SENTENCE.replace("leader", "pioneer")), OPTIONS)
    assert (stats["substituted"], stats["inserted"], stats["deleted"], stats["kept"]) == (1, 0, 0, 13)
    assert stats["substitution_examples"] == ["leader -> pioneer"]
    assert stats["spin_rate"] == round(1 / 14, 6)
    # One word in 14 (7%) is under the 8% spin threshold; two words are over it.
    assert stats["change_kind"] == "copy"
    two = align_stats(parent, toks(SENTENCE.replace("leader", "pioneer").replace("spoke", "talked")), OPTIONS)
    assert two["substitution_examples"] == ["leader -> pioneer", "spoke -> talked"]
    assert two["spin_rate"] == round(2 / 14, 6)
    assert two["change_kind"] == "spin"
    # The rate is over the words the child carries over, not its inserted ones.
    padded = align_stats(parent, toks(SENTENCE.replace("leader", "pioneer").replace("spoke", "talked"), "share this article on facebook"),
                         OPTIONS)
    assert (padded["substituted"], padded["inserted"], padded["spin_rate"]) == (2, 5, round(2 / 14, 6))
    # The threshold is the option's.
    assert align_stats(parent, toks(SENTENCE.replace("leader", "pioneer")), options(spin_min_rate=0.07))["change_kind"] == "spin"


def test_substitution_examples_are_unique_capped_and_short():
    parent_words = [f"w{i}" for i in range(60)]
    child_words = list(parent_words)
    for i in range(0, 60, 6):
        child_words[i] = f"s{i}"
    stats = align_stats(plain(parent_words), plain(child_words), OPTIONS)
    assert stats["substituted"] == 10
    assert stats["substitution_examples"] == [f"w{i} -> s{i}" for i in range(0, 30, 6)]
    assert len(align_stats(plain(parent_words), plain(child_words), options(max_examples=2))["substitution_examples"]) == 2
    # A run of four replaced words is no swap (a swap is at most three words): it is rewritten text.
    long = list(parent_words)
    long[10:14] = ["a", "b", "c", "d"]
    stats = align_stats(plain(parent_words), plain(long), OPTIONS)
    assert (stats["substituted"], stats["deleted"], stats["inserted"], stats["rewritten"]) == (0, 4, 4, 4)
    assert stats["substitution_examples"] == []
    # Repeated swaps give one example.
    parent = plain(["x", "the", "y", "the", "z"])
    child = plain(["x", "a", "y", "a", "z"])
    assert align_stats(parent, child, OPTIONS)["substitution_examples"] == ["the -> a"]


def test_prefix_is_flagged_as_truncation():
    parent = toks(SENTENCE, DECISION, "the council meets on thursday")
    stats = align_stats(parent, head(parent, 10), OPTIONS)
    assert stats["is_truncation"] is True
    assert (stats["deleted"], stats["kept"], stats["inserted"]) == (len(parent.tokens) - 10, 10, 0)
    assert stats["change_kind"] == "truncation"


def test_truncation_end_share_is_the_bound():
    parent = plain([f"w{i}" for i in range(100)])
    assert align_stats(parent, head(parent, 90), OPTIONS)["is_truncation"] is True  # ends at 90%: inclusive
    assert align_stats(parent, head(parent, 91), OPTIONS)["is_truncation"] is False
    assert align_stats(parent, head(parent, 91), options(truncation_end_share=0.95))["is_truncation"] is True


def test_a_prefix_carried_sparsely_is_not_a_truncation():
    # The child keeps the first 60 tokens' frame but only half of them: under truncation_prefix_share.
    parent = plain([f"w{i}" for i in range(100)])
    child = plain([f"w{i}" for i in range(0, 60, 2)])
    stats = align_stats(parent, child, OPTIONS)
    assert stats["is_truncation"] is False
    assert stats["change_kind"] == "excerpt"


def test_almost_complete_copy_is_not_a_truncation():
    parent = toks(*[SENTENCE] * 4)
    stats = align_stats(parent, head(parent, len(parent.tokens) - 2), OPTIONS)  # 96% of the parent
    assert stats["is_truncation"] is False and stats["change_kind"] == "copy"


def test_pasted_boilerplate_line_is_counted():
    body = [SENTENCE, DECISION + " about the crossing"]
    parent = toks(*body)
    stats = align_stats(parent, toks(*body, "share this article on facebook"), OPTIONS)
    assert (stats["boilerplate_lines_added"], stats["inserted"]) == (1, 5)
    assert stats["change_kind"] == "insertion"
    # A pasted headline at the top counts the same; two pasted lines count two.
    assert align_stats(parent, toks("breaking news from portvale", *body), OPTIONS)["boilerplate_lines_added"] == 1
    both = align_stats(parent, toks("breaking news from portvale", *body, "share this article on facebook"), OPTIONS)
    assert both["boilerplate_lines_added"] == 2 and both["inserted"] == 9


def test_inserted_words_inside_a_line_are_not_a_boilerplate_line():
    parent = toks(SENTENCE, DECISION, "the council meets on thursday", "ferries run every hour")
    stats = align_stats(parent, toks(SENTENCE + " and the ferry", DECISION, "the council meets on thursday", "ferries run every hour"),
                        OPTIONS)
    assert stats["inserted"] == 3 and stats["boilerplate_lines_added"] == 0
    assert stats["change_kind"] == "insertion"  # 3 of 33 tokens: over the 5% insertion share
    child = toks(SENTENCE + " and the ferry", DECISION, "the council meets on thursday", "ferries run every hour")
    assert align_stats(parent, child, options(insertion_min_share=0.1))["change_kind"] == "copy"


def test_moved_sentence_is_counted_as_reordered():
    s1 = "mayor elena marquez ordered the halden bridge closed on tuesday"
    s2 = "chief engineer tomas brandt said the damage had spread quickly"
    s3 = "the council will approve eighteen million euros for repairs"
    stats = align_stats(toks(s1, s2, s3), toks(s1, s3, s2), OPTIONS)
    assert stats["sentences_reordered"] == 1
    assert stats["kept"] + stats["inserted"] == 29 and stats["inserted"] == stats["deleted"] > 0
    # A sentence repeated (inserted while also kept) did not move.
    repeated = align_stats(toks(s1, s2, s3), toks(s1, s2, s3, s2), OPTIONS)
    assert repeated["sentences_reordered"] == 0 and repeated["inserted"] == 10
    # Runs shorter than moved_run are not moves.
    assert align_stats(toks(s1, s2, s3), toks(s1, s3, s2), options(moved_run=20))["sentences_reordered"] == 0


def test_empty_child_and_empty_parent_do_not_crash():
    parent = toks(SENTENCE)
    empty = plain([])
    gone = align_stats(parent, empty, OPTIONS)
    assert (gone["child_tokens"], gone["deleted"], gone["is_truncation"], gone["change_kind"]) == (0, 14, False, "excerpt")
    stats = align_stats(empty, parent, OPTIONS)
    assert (stats["parent_tokens"], stats["inserted"], stats["is_truncation"]) == (0, 14, False)
    assert stats["change_kind"] == "mixed"  # nothing kept (paraphrase) and everything inserted


# ---------------------------------------------------------------------------- on factory texts


def kind(parent_text: str, child_text: str) -> dict:
    parent, child = words_of(parent_text, child_text)
    return align_stats(parent, child, OPTIONS)


def test_change_kind_copy_for_identical_and_normalised_duplicates():
    a = make_article(0)
    for copy in (a, noisy_copy(a), punctuation_copy(a)):
        stats = kind(a, copy)
        assert stats["change_kind"] == "copy" and stats["kept"] == stats["parent_tokens"] == stats["child_tokens"]


@pytest.mark.parametrize(("story", "seed"), [(0, 0), (1, 1), (3, 5), (4, 2)])  # seeds whose synonyms are one token each
def test_change_kind_spin_for_a_spun_copy(story, seed):
    a = make_article(story)
    spun = spin(a, 0.3, seed=seed)
    stats = kind(a, spun)
    parent, child = words_of(a, spun)
    assert len(parent.tokens) == len(child.tokens)
    swapped = sum(x != y for x, y in zip(parent.tokens, child.tokens))
    assert stats["change_kind"] == "spin"
    assert stats["substituted"] == swapped and stats["spin_rate"] == round(swapped / len(parent.tokens), 6)
    assert stats["is_truncation"] is False
    assert len(stats["substitution_examples"]) == OPTIONS.max_examples


def test_spin_examples_come_from_the_thesaurus():
    a = make_article(0)
    stats = kind(a, spin(a, 0.3, seed=1))
    pairs = [example.split(" -> ") for example in stats["substitution_examples"]]
    single = [(old, new) for old, new in pairs if " " not in old]
    assert len(single) >= 3
    assert all(SYNONYMS[old] == new for old, new in single)


@pytest.mark.parametrize("share", [0.3, 0.4, 0.7])
def test_change_kind_truncation_for_a_prefix(share):
    a = make_article(2)
    child = truncate(a, share)
    stats = kind(a, child)
    parent, kept = words_of(a, child)
    assert stats["change_kind"] == "truncation" and stats["is_truncation"] is True
    assert (stats["kept"], stats["deleted"], stats["spin_rate"]) == (len(kept.tokens), len(parent.tokens) - len(kept.tokens), 0.0)


def test_change_kind_excerpt_for_a_middle_section():
    a = make_article(4)
    stats = kind(a, make_article(4, 4, start=4, headline=False))
    assert stats["change_kind"] == "excerpt" and stats["is_truncation"] is False


def test_change_kind_paraphrase_and_mixed():
    a = make_article(0)
    other_telling = make_article(6)  # the same event in other sentences
    assert kind(a, other_telling)["change_kind"] in {"paraphrase", "mixed"}
    spun_cut = truncate(spin(a, 0.3, seed=2), 0.5)
    stats = kind(a, spun_cut)
    assert stats["change_kind"] == "mixed" and stats["is_truncation"] is True and stats["spin_rate"] >= OPTIONS.spin_min_rate


def test_edge_changes_one_row_per_edge_in_order():
    a = make_article(1)
    texts = pl.Series([a, truncate(a, 0.5), spin(a, 0.3, seed=2), a])
    edges = pl.DataFrame({"parent": [0, 0, 0, 2], "child": [1, 2, 3, 3]})
    out = edge_changes(edges, texts, OPTIONS)
    assert out.schema == SCHEMA
    assert out["change_kind"].to_list() == ["truncation", "spin", "copy", "spin"]
    for row, (p, c) in zip(out.iter_rows(named=True), [(0, 1), (0, 2), (0, 3), (2, 3)]):
        parent, child = words_of(texts[p], texts[c])
        assert row == {**align_stats(parent, child, OPTIONS), "spin_rate": row["spin_rate"]}
    no_edges = pl.DataFrame({"parent": [], "child": []}, schema={"parent": pl.Int64, "child": pl.Int64})
    none = edge_changes(no_edges, texts, OPTIONS)
    assert none.height == 0 and none.schema == SCHEMA


def test_edge_changes_align_at_most_max_align_tokens():
    a = make_article(1)
    texts = pl.Series([a, truncate(a, 0.5)])
    edges = pl.DataFrame({"parent": [0], "child": [1]})
    capped = edge_changes(edges, texts, options(max_align_tokens=25)).row(0, named=True)
    assert capped["parent_tokens"] == capped["child_tokens"] == capped["kept"] == 25
    assert capped["change_kind"] == "copy"


def test_swaps_count_only_inside_aligned_sentences_and_rewrites_are_counted_apart():
    spun_sentence = "The Chinese leader spoke to reporters in Beijing on Monday about the trade talks."
    parent = toks(spun_sentence + " Officials said the new tariffs would start in March across every port.")
    # The first sentence is spun word for word; the second is rewritten in other words.
    child = toks(spun_sentence.replace("leader", "pioneer").replace("reporters", "journalists")
                 + " Tariffs from March were announced by staff for all harbours, its spokesman noted.")
    stats = align_stats(parent, child, OPTIONS)
    assert stats["substitution_examples"] == ["leader -> pioneer", "reporters -> journalists"]
    assert stats["substituted"] == 2  # only the swaps of the aligned sentence
    assert stats["rewritten"] > 0 and stats["rewritten"] <= stats["inserted"]
    assert stats["kept"] + stats["substituted"] + stats["inserted"] == stats["child_tokens"]
    assert stats["kept"] + stats["substituted"] + stats["deleted"] == stats["parent_tokens"]


def test_a_changed_number_is_an_edit_not_a_swap():
    parent = toks("The council approved 18 million euros for the repairs of the bridge on Thursday.")
    child = toks("The council approved 25 million euros for the repairs of the bridge on Thursday.")
    stats = align_stats(parent, child, OPTIONS)
    assert (stats["substituted"], stats["rewritten"], stats["substitution_examples"]) == (0, 1, [])
