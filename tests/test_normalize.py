"""normalize: Unicode/typographic folding, tokens with anchor flags, boilerplate lines."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.normalize import (
    _DASHES,
    _QUOTES,
    BOILERPLATE_MAX_TOKENS,
    boilerplate_mask,
    canonical_expr,
    normalize_expr,
    offsets_from_doc_index,
    tokenize,
)


def norm(*texts: str) -> list[str]:
    return pl.DataFrame({"t": list(texts)}).select(normalize_expr(pl.col("t")))["t"].to_list()


def canon(*texts: str) -> list[str]:
    return pl.DataFrame({"t": list(texts)}).select(canonical_expr(pl.col("t")))["t"].to_list()


# ---------------------------------------------------------------------------- normalize_expr


def test_nfkc_folds_full_width_letters_digits_and_ideographic_space():
    assert norm("\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45\u3000\uff14\uff12") == ["Portvale 42"]


def test_nfkc_folds_compatibility_ligatures_and_composes_accents():
    # "fi" ligature, and a decomposed e + combining acute composed to one character.
    assert norm("\ufb01nal Cafe\u0301") == ["final Caf\u00e9"]


def test_curly_quotes_and_dashes_become_ascii():
    text = "\u201cWe will rebuild,\u201d Marquez said \u2014 \u2018soon\u2019 \u2013 in 2024\u22122025."
    assert norm(text) == ["\"We will rebuild,\" Marquez said - 'soon' - in 2024-2025."]


@pytest.mark.parametrize(
    "char",
    [
        ch
        for ch in sorted({**_QUOTES, **_DASHES})
    ],
    ids=lambda ch: f"U+{ord(ch):04X}",
)
def test_every_folded_quote_and_dash_comes_out_ascii(char):
    (out,) = norm(f"a{char}b")
    assert out.isascii(), repr(out)
    assert out[0] == "a" and out[-1] == "b" and " " not in out


def test_white_space_folded_and_line_breaks_kept_once():
    assert norm("  Mayor \t Elena\u00a0\u00a0Marquez \r\n\n\n   said  \f so.  ") == ["Mayor Elena Marquez\nsaid so."]


def test_normalize_keeps_case():
    assert norm("Elena MARQUEZ of portvale") == ["Elena MARQUEZ of portvale"]


def test_canonical_text_equal_for_case_punctuation_and_spacing_variants(factory):
    text = factory.make_article(0)
    variant = factory.noisy_copy(text)
    assert variant != text
    a, b = canon(text, variant)
    assert a == b
    assert a == a.lower() and "  " not in a


def test_canonical_text_differs_when_a_word_changes(factory):
    text = factory.make_article(0)
    a, b = canon(text, text.replace("cracks", "fissures"))
    assert a != b


def test_acute_accent_apostrophe_is_an_exact_duplicate_of_ascii_apostrophe():
    a, b = canon("Marquez said they don\u00b4t know yet.", "Marquez said they don't know yet.")
    assert a == b


# ---------------------------------------------------------------------------- tokenize


def _tokens(*texts: str) -> pl.DataFrame:
    return tokenize(pl.DataFrame({"text": list(texts)}))


def test_tokenize_lower_cases_and_keeps_text_order():
    toks = _tokens("The Mayor of PORTVALE, Elena Marquez, said 42,000 cars.")
    expected = ["the", "mayor", "of", "portvale", "elena", "marquez", "said", "42", "000", "cars"]
    assert toks["token"].to_list() == expected
    assert toks["doc"].dtype == pl.UInt32
    assert set(toks["doc"].to_list()) == {0}


def test_anchor_flag_names_and_numbers_not_stopwords_or_sentence_start_the():
    toks = _tokens("The Mayor of Portvale said 42 people left.\nBut Mr Brandt and the engineers stayed in Serra Park.")
    anchor = dict(zip(toks["token"].to_list(), toks["anchor"].to_list()))
    for word in ("mayor", "portvale", "42", "brandt", "serra", "park"):
        assert anchor[word], word
    # Stopwords are never anchors, even capitalised at a sentence start ("The", "But", "Mr").
    for word in ("the", "of", "said", "but", "mr", "and", "in"):
        assert not anchor[word], word
    # Lower-case content words are not anchors.
    for word in ("people", "left", "engineers", "stayed"):
        assert not anchor[word], word


def test_capitalised_non_stopword_at_sentence_start_is_an_anchor():
    # Documented behaviour: case is the only signal, so "Officials" opening a sentence counts.
    toks = _tokens("Officials met. officials met.")
    assert toks["anchor"].to_list() == [True, False, False, False]


def test_tokenize_numbers_everywhere_are_anchors():
    toks = _tokens("in 1968 and 2004 it cost 18 million")
    anchors = toks.filter(pl.col("anchor"))["token"].to_list()
    assert anchors == ["1968", "2004", "18"]


def test_tokenize_docs_lines_and_line_keys():
    long_line = " ".join(f"word{i}" for i in range(BOILERPLATE_MAX_TOKENS + 1))
    exact_line = " ".join(f"w{i}" for i in range(BOILERPLATE_MAX_TOKENS))
    toks = _tokens("Leave a Reply\n\n" + long_line + "\n" + exact_line, "Second doc")
    doc0 = toks.filter(pl.col("doc") == 0)
    assert sorted(set(doc0["line"].to_list())) == [0, 1, 2]  # the blank line was folded away
    keys = doc0.group_by("line", maintain_order=True).agg(pl.col("line_key").first())
    assert keys["line_key"].to_list() == ["leave a reply", None, exact_line]
    assert toks.filter(pl.col("doc") == 1)["line_key"].to_list() == ["second doc", "second doc"]
    # Rows are grouped by document, ascending.
    doc = toks["doc"].to_numpy()
    assert (np.diff(doc.astype(np.int64)) >= 0).all()


def test_offsets_leave_empty_ranges_for_documents_without_tokens():
    toks = _tokens("Portvale bridge", "   ", "Serra River floods again")
    offsets = offsets_from_doc_index(toks["doc"], 3)
    assert offsets.tolist() == [0, 2, 2, 6]


# ---------------------------------------------------------------------------- boilerplate_mask


def _body(factory, story: int) -> str:
    return factory.make_article(story, 4, headline=False).strip()


def _flagged_lines(texts: list[str], min_docs: int) -> dict[int, set[str]]:
    toks = _tokens(*texts)
    toks = toks.with_columns(boilerplate_mask(toks, min_docs))
    flagged = toks.filter(pl.col("boilerplate")).group_by("doc").agg(pl.col("line_key").unique())
    return {d: set(keys) for d, keys in flagged.iter_rows()}


def test_short_line_in_min_docs_documents_is_boilerplate(factory):
    furniture = "Share this article"
    texts = [f"{_body(factory, s)}\n{furniture}" for s in range(3)] + [_body(factory, 3) + "\nRead more"]
    flagged = _flagged_lines(texts, min_docs=3)
    assert flagged == {0: {"share this article"}, 1: {"share this article"}, 2: {"share this article"}}


def test_short_line_below_min_docs_is_not_boilerplate(factory):
    furniture = "Share this article"
    # Twice in one document counts as one document.
    texts = [f"{furniture}\n{_body(factory, 0)}\n{furniture}", f"{_body(factory, 1)}\n{furniture}", _body(factory, 2)]
    assert _flagged_lines(texts, min_docs=3) == {}
    assert set(_flagged_lines(texts, min_docs=2)) == {0, 1}


def test_boilerplate_mask_is_case_and_punctuation_blind():
    texts = ["Leave a Reply!\nPortvale news", "LEAVE A REPLY\nSerra news", "leave, a reply.\nKellan news"]
    assert _flagged_lines(texts, min_docs=3) == {0: {"leave a reply"}, 1: {"leave a reply"}, 2: {"leave a reply"}}


def test_long_line_is_never_boilerplate(factory):
    # One paragraph (well over the token limit) copied into every document, plus
    # a line of exactly the limit that is eligible.
    paragraph = factory.story_sentences(0)[0] + " " + factory.story_sentences(0)[1]
    assert len(paragraph.split()) > BOILERPLATE_MAX_TOKENS
    limit_line = " ".join(f"tag{i}" for i in range(BOILERPLATE_MAX_TOKENS))
    texts = [f"{paragraph}\n{limit_line}\n{_body(factory, s)}" for s in range(6)]
    toks = _tokens(*texts)
    mask = boilerplate_mask(toks, 3)
    assert mask.dtype == pl.Boolean and mask.len() == toks.height
    flagged = toks.filter(mask)
    assert set(flagged["line_key"].to_list()) == {limit_line}
    assert flagged.height == 6 * BOILERPLATE_MAX_TOKENS
