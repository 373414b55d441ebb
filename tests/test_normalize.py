"""normalize: Unicode/typographic folding, compiled tokeniser (hashes, anchors, lines, content hashes), boilerplate."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.kernels import offsets_from_doc_index
from provenance.prepare.normalize import (
    _DASHES,
    _QUOTES,
    STOPWORDS,
    Tokens,
    boilerplate_keys,
    boilerplate_lines,
    boilerplate_tokens,
    canonical_expr,
    normalize_expr,
    summarize,
    token_hashes,
    tokenize,
)

#: Lines this short get a key (the default config's boilerplate limit).
BOILERPLATE_MAX_TOKENS = Config().prepare.boilerplate_max_tokens


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
    [ch for ch in sorted({**_QUOTES, **_DASHES})],
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

SEED = 1


def _tokens(*texts: str, seed: int = SEED, max_key_tokens: int = BOILERPLATE_MAX_TOKENS) -> Tokens:
    return tokenize(pl.Series(list(texts), dtype=pl.String), seed, max_key_tokens=max_key_tokens)


def H(*words: str, seed: int = SEED) -> list[int]:
    """The tokeniser's hash of each word (as a plain list, for comparisons)."""
    return token_hashes(list(words), seed).tolist()


def _line_key(line: str) -> int:
    """The key of a one-line text (keys do not depend on the rest of the batch)."""
    toks = _tokens(line)
    assert len(toks.line_key) == 1
    return int(toks.line_key[0])


def _py_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_tokens_arrays_have_documented_shapes_and_dtypes():
    toks = _tokens("Portvale bridge\nclosed today", "", "Serra")
    nt, nl = 5, 3
    assert toks.hash.dtype == np.uint64 and toks.hash.shape == (nt,)
    assert toks.doc.dtype == np.uint32 and toks.doc.shape == (nt,)
    for name in ("line", "anchor", "stop"):
        assert getattr(toks, name).shape == (nt,), name
    assert toks.anchor.dtype == np.bool_ and toks.stop.dtype == np.bool_
    assert toks.line_doc.shape == (nl,) and toks.line_key.shape == (nl,)
    assert toks.line_key.dtype == np.uint64
    assert toks.n_tokens.shape == (3,) and toks.content_hash.shape == (3,)
    assert toks.content_hash.dtype == np.uint64


def test_tokenize_lower_cases_and_keeps_text_order():
    toks = _tokens("The Mayor of PORTVALE, Elena Marquez, said 42,000 cars.")
    expected = ["the", "mayor", "of", "portvale", "elena", "marquez", "said", "42", "000", "cars"]
    assert toks.hash.tolist() == H(*expected)
    assert toks.doc.dtype == np.uint32
    assert set(toks.doc.tolist()) == {0}
    assert toks.n_tokens.tolist() == [len(expected)]


def test_hash_is_case_blind_and_order_matters():
    toks = _tokens("Portvale PORTVALE portvale pOrTvAlE")
    assert len(set(toks.hash.tolist())) == 1
    assert H("portvale", "bridge") != H("bridge", "portvale")


def test_anchor_flag_names_and_numbers_not_stopwords_or_sentence_start_the():
    toks = _tokens("The Mayor of Portvale said 42 people left.\nBut Mr Brandt and the engineers stayed in Serra Park.")
    anchor = dict(zip(toks.hash.tolist(), toks.anchor.tolist()))
    stop = dict(zip(toks.hash.tolist(), toks.stop.tolist()))

    def flags(*words: str) -> list[tuple[str, bool, bool]]:
        return [(w, anchor[h], stop[h]) for w, h in zip(words, H(*words))]

    names = ("mayor", "portvale", "42", "brandt", "serra", "park")
    assert flags(*names) == [(w, True, False) for w in names]
    # Stopwords are never anchors, even capitalised at a sentence start ("The", "But", "Mr").
    stopwords = ("the", "of", "said", "but", "mr", "and", "in")
    assert flags(*stopwords) == [(w, False, True) for w in stopwords]
    # Lower-case content words are not anchors.
    plain = ("people", "left", "engineers", "stayed")
    assert flags(*plain) == [(w, False, False) for w in plain]


@pytest.mark.parametrize("word", ["The", "But", "Mr", "Mrs", "THE", "Said"])
def test_capitalised_stopwords_are_never_anchors(word):
    toks = _tokens(f"{word} Portvale bridge")
    assert toks.anchor.tolist() == [False, True, False]
    assert toks.stop.tolist() == [True, False, False]


def test_stop_flags_every_stopword_and_nothing_else():
    words = sorted(STOPWORDS)
    toks = _tokens(" ".join(words) + " Portvale bridge 42")
    assert toks.stop.tolist() == [True] * len(words) + [False, False, False]
    assert not toks.anchor[: len(words)].any()


def test_capitalised_non_stopword_at_sentence_start_is_an_anchor():
    # Documented behaviour: case is the only signal, so "Officials" opening a sentence counts.
    toks = _tokens("Officials met. officials met.")
    assert toks.anchor.tolist() == [True, False, False, False]


def test_tokenize_numbers_everywhere_are_anchors():
    toks = _tokens("in 1968 and 2004 it cost 18 million")
    assert toks.hash[toks.anchor].tolist() == H("1968", "2004", "18")


def test_all_caps_line_of_four_or_more_tokens_has_no_word_anchors_but_keeps_numbers():
    toks = _tokens("PORTVALE BRIDGE CLOSED IN 2024 AFTER 42 CRACKS\nElena Marquez said so")
    line0 = toks.line == toks.line[0]
    assert toks.hash[line0 & toks.anchor].tolist() == H("2024", "42")
    # The next line is ordinary: its names are anchors again.
    assert toks.hash[~line0 & toks.anchor].tolist() == H("elena", "marquez")


def test_all_caps_line_of_three_tokens_keeps_its_anchors():
    toks = _tokens("PORTVALE BRIDGE CLOSED")
    assert toks.anchor.tolist() == [True, True, True]
    # Four tokens is shouting; a single lower-case letter anywhere is not.
    assert not _tokens("PORTVALE BRIDGE CLOSED TODAY").anchor.any()
    assert _tokens("PORTVALE BRIDGE CLOSED Today").anchor.tolist() == [True, True, True, True]


def test_tokenize_docs_lines_and_line_keys():
    long_line = " ".join(f"word{i}" for i in range(BOILERPLATE_MAX_TOKENS + 1))
    exact_line = " ".join(f"w{i}" for i in range(BOILERPLATE_MAX_TOKENS))
    toks = _tokens("Leave a Reply\n\n  \n" + long_line + "\n...\n" + exact_line, "Second doc")
    # Lines without tokens (blank, punctuation only) get no number; numbers are batch-wide.
    assert toks.line_doc.tolist() == [0, 0, 0, 1]
    doc0 = toks.doc == 0
    assert toks.line[doc0].tolist() == [0] * 3 + [1] * (BOILERPLATE_MAX_TOKENS + 1) + [2] * BOILERPLATE_MAX_TOKENS
    assert toks.line[~doc0].tolist() == [3, 3]
    # Every token's line belongs to its own document.
    assert (toks.line_doc[toks.line] == toks.doc).all()
    # Keys only for lines of at most BOILERPLATE_MAX_TOKENS tokens.
    key = toks.line_key.tolist()
    assert key[0] != 0 and key[1] == 0 and key[2] != 0 and key[3] != 0
    assert key[0] == _line_key("leave a reply")
    assert key[2] == _line_key(exact_line)
    assert key[3] == _line_key("second doc")
    assert len(set(key)) == 4
    # Rows are grouped by document, ascending; lines too.
    assert (np.diff(toks.doc.astype(np.int64)) >= 0).all()
    assert (np.diff(toks.line) >= 0).all()
    assert (np.diff(toks.line_doc) >= 0).all()


def test_line_numbers_skip_documents_and_lines_without_tokens():
    toks = _tokens("   ", "Portvale\n\nbridge", "!!!", "Serra river\nfloods")
    assert toks.line_doc.tolist() == [1, 1, 3, 3]
    assert toks.line.tolist() == [0, 1, 2, 2, 3]
    assert toks.n_tokens.tolist() == [0, 2, 0, 3]


def test_line_keys_equal_for_case_and_punctuation_variants():
    keys = {
        _line_key(t)
        for t in ("Leave a Reply", "LEAVE A REPLY!", "leave, a reply.", "  Leave \u2014 a \u201cReply\u201d ")
    }
    assert len(keys) == 1
    assert _line_key("Leave a Reply") != _line_key("Leave a Comment")
    assert _line_key("Leave a Reply") != _line_key("Reply a Leave")


def test_offsets_leave_empty_ranges_for_documents_without_tokens():
    toks = _tokens("Portvale bridge", "   ", "Serra River floods again")
    offsets = offsets_from_doc_index(toks.doc, 3)
    assert offsets.tolist() == [0, 2, 2, 6]
    assert offsets.tolist() == [0, *np.cumsum(toks.n_tokens).tolist()]


def test_n_tokens_counts_word_runs_per_document(factory):
    texts = [factory.make_article(0), "don't stop-start 42,000 cars", "", "   ...   ", "one"]
    toks = _tokens(*texts)
    assert toks.n_tokens.dtype.kind == "i"
    assert toks.n_tokens.tolist() == [len(_py_tokens(t)) for t in texts]
    assert toks.n_tokens.tolist() == factory.n_tokens(texts).tolist()
    assert int(toks.n_tokens.sum()) == len(toks.hash)


def test_content_hash_equal_for_case_punctuation_quote_and_spacing_variants(factory):
    text = factory.make_article(0)
    variant = factory.noisy_copy(text)
    assert variant != text
    toks = _tokens(
        text,
        variant,
        "Marquez said they don\u2019t know \u2014 yet.",
        "MARQUEZ  said, they \u00a0don't know - yet!!",
        "marquez said\nthey don\u00b4t\n\nknow yet",
    )
    h = toks.content_hash.tolist()
    assert h[0] == h[1]
    assert h[2] == h[3] == h[4]
    assert h[0] != h[2]


def test_content_hash_differs_when_a_word_changes_moves_or_is_dropped(factory):
    text = factory.make_article(0)
    toks = _tokens(
        text,
        text.replace("cracks", "fissures"),
        "Portvale bridge closed",
        "bridge Portvale closed",
        "Portvale bridge",
        "Portvale bridge closed closed",
    )
    h = toks.content_hash.tolist()
    assert h[0] != h[1]
    assert len(set(h[2:])) == 4


def test_content_hash_of_documents_without_tokens_is_shared_and_differs_from_others():
    toks = _tokens("", "   \n ", "?!", "a")
    h = toks.content_hash.tolist()
    assert h[0] == h[1] == h[2]
    assert h[3] != h[0]


def test_content_hash_agrees_with_canonical_text(factory):
    texts = [factory.make_article(0), factory.noisy_copy(factory.make_article(0)), factory.make_article(1)]
    same_canon = len(set(canon(*texts)))
    assert same_canon == len(set(_tokens(*texts).content_hash.tolist())) == 2


@pytest.mark.parametrize(
    "text",
    [
        "Caf\u00e9 na\u00efve \u00fcber Stra\u00dfe M\u00fcller \u00c9lodie",
        "\u041c\u043e\u0441\u043a\u0432\u0430 \u0438 \u041f\u0415\u0422\u0415\u0420\u0411\u0423\u0420\u0413, 2024 \u0433\u043e\u0434",
        "\u6771\u4eac\u30bf\u30ef\u30fc\u3068\u5bcc\u58eb\u5c71\u3002\u5317\u4eac 2008",
        "\u0130stanbul'a \u00c7a\u011fr\u0131 \u00e7\u00f6z\u00fcm",
        "\u00bfD\u00f3nde est\u00e1 Espa\u00f1a? \u00a1Aqu\u00ed!",
    ],
    ids=["latin", "cyrillic", "cjk", "turkish", "spanish"],
)
def test_non_ascii_text_tokenises_like_python_word_regex(text):
    expected = _py_tokens(pl.Series([text]).str.normalize("NFKC")[0])
    if "\u0130" in text:  # Python lower-cases U+0130 to "i" + combining dot, which \w splits off.
        expected = ["istanbul", "a", "\u00e7a\u011fr\u0131", "\u00e7\u00f6z\u00fcm"]
    toks = _tokens(text)
    assert toks.hash.tolist() == H(*expected)
    assert toks.n_tokens.tolist() == [len(expected)]


def test_non_ascii_case_variants_share_hashes():
    assert H("\u00c9LODIE", "M\u00dcLLER", "\u041c\u041e\u0421\u041a\u0412\u0410") == H(
        "\u00e9lodie", "m\u00fcller", "\u043c\u043e\u0441\u043a\u0432\u0430"
    )
    toks = _tokens("\u00c9lodie M\u00fcller visited \u041c\u043e\u0441\u043a\u0432\u0430")
    assert toks.anchor.tolist() == [True, True, False, True]


def test_greek_capitals_hash_like_their_lower_case_with_final_sigma():
    toks = _tokens("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c2")
    assert _py_tokens("\u039f\u0394\u039f\u03a3") == ["\u03bf\u03b4\u03bf\u03c2"]
    assert toks.hash[0] == toks.hash[1]
    assert toks.content_hash[0] == toks.content_hash[1]


def test_nfkc_and_typographic_folding_apply_before_tokenising():
    toks = _tokens(
        "\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45\u3000\uff14\uff12 \ufb01nal Cafe\u0301 don\u00b4t",
        "Portvale 42 final Caf\u00e9 don't",
    )
    assert toks.hash[toks.doc == 0].tolist() == toks.hash[toks.doc == 1].tolist()
    assert toks.hash[toks.doc == 1].tolist() == H("portvale", "42", "final", "caf\u00e9", "don", "t")
    assert toks.content_hash[0] == toks.content_hash[1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n\n",
        "?!...\u2014\u201c\u201d",
        "\U0001f600\U0001f4f0",
        "a\U0001f600b \U0001f1fa\U0001f1f8 42\U0001f525",
        "\t\r\n\u00a0",
    ],
    ids=["empty", "space", "newlines", "punctuation", "emoji", "emoji-in-words", "white-space"],
)
def test_odd_input_does_not_crash_and_matches_python(text):
    toks = _tokens(text, "Portvale")
    expected = _py_tokens(text)
    assert toks.n_tokens.tolist() == [len(expected), 1]
    assert toks.hash[toks.doc == 0].tolist() == (H(*expected) if expected else [])
    assert toks.hash[toks.doc == 1].tolist() == H("portvale")
    assert (toks.line_doc[toks.line] == toks.doc).all()


def test_null_and_empty_batches():
    toks = tokenize(pl.Series([None, "Portvale bridge", None], dtype=pl.String), SEED)
    assert toks.n_tokens.tolist() == [0, 2, 0]
    assert toks.doc.tolist() == [1, 1]
    empty = tokenize(pl.Series([], dtype=pl.String), SEED)
    assert len(empty.hash) == 0 and len(empty.line_doc) == 0 and len(empty.n_tokens) == 0


def test_token_hashes_depend_on_the_seed():
    a, b = H("portvale", "bridge", seed=1), H("portvale", "bridge", seed=2)
    assert a[0] != b[0] and a[1] != b[1]
    assert _tokens("Portvale bridge", seed=2).hash.tolist() == b
    # Line keys and content hashes are seeded too.
    t1, t2 = _tokens("Portvale bridge", seed=1), _tokens("Portvale bridge", seed=2)
    assert t1.line_key[0] != t2.line_key[0] and t1.content_hash[0] != t2.content_hash[0]
    # The stopword flags follow the seed.
    assert _tokens("the Portvale", seed=2).stop.tolist() == [True, False]


def test_token_hash_pinned_literal():
    # A change of token hashing changes every signature.  Changes to this module change the signature
    # scheme's ``hashing`` digest by themselves (test_minhash); this pin also catches changes that come
    # from elsewhere (xxhash's seeding, numba's integer semantics), which no digest of our source sees.
    assert token_hashes(["portvale"], 1).dtype == np.uint64
    assert H("portvale", "bridge", "portvale") == [7970195513604947291, 15141775208475409347, 7970195513604947291]
    assert _tokens("PORTVALE").hash.tolist() == [7970195513604947291]


def test_token_hashes_handles_empty_list():
    assert token_hashes([], 1).shape == (0,)


def test_token_hashes_refuses_entries_that_are_not_one_token():
    for bad in ([""], ["portvale", "!!"], ["new york"]):
        with pytest.raises(ValueError, match="single tokens"):
            token_hashes(bad, 1)


# ---------------------------------------------------------------------------- boilerplate


def _body(factory, story: int) -> str:
    return factory.make_article(story, 4, headline=False).strip()


def _flagged_lines(texts: list[str], min_docs: int) -> dict[int, set[int]]:
    """Per document: keys of its lines flagged as boilerplate (documents without any are left out)."""
    toks = _tokens(*texts)
    keys = boilerplate_keys(toks.line_doc, toks.line_key, min_docs)
    lines = boilerplate_lines(toks, keys)
    flagged_tokens = boilerplate_tokens(toks, keys)
    # The token mask is the line mask spread over each line's tokens.
    assert flagged_tokens.tolist() == lines[toks.line].tolist()
    out: dict[int, set[int]] = {}
    for d, k in zip(toks.line_doc[lines].tolist(), toks.line_key[lines].tolist()):
        out.setdefault(d, set()).add(k)
    return out


def test_short_line_in_min_docs_documents_is_boilerplate(factory):
    furniture = "Share this article"
    texts = [f"{_body(factory, s)}\n{furniture}" for s in range(3)] + [_body(factory, 3) + "\nRead more"]
    flagged = _flagged_lines(texts, min_docs=3)
    key = _line_key(furniture)
    assert flagged == {0: {key}, 1: {key}, 2: {key}}


def test_short_line_below_min_docs_is_not_boilerplate(factory):
    furniture = "Share this article"
    # Twice in one document counts as one document.
    texts = [f"{furniture}\n{_body(factory, 0)}\n{furniture}", f"{_body(factory, 1)}\n{furniture}", _body(factory, 2)]
    assert _flagged_lines(texts, min_docs=3) == {}
    assert set(_flagged_lines(texts, min_docs=2)) == {0, 1}


def test_boilerplate_keys_are_sorted_unique_uint64():
    texts = ["Leave a Reply\nShare this\nPortvale"] * 4 + ["Share this\nLeave a Reply"]
    toks = _tokens(*texts)
    keys = boilerplate_keys(toks.line_doc, toks.line_key, 3)
    assert keys.dtype == np.uint64
    assert keys.tolist() == sorted({_line_key("Leave a Reply"), _line_key("Share this"), _line_key("Portvale")})
    assert boilerplate_keys(toks.line_doc, toks.line_key, 5).tolist() == sorted(
        {_line_key("Leave a Reply"), _line_key("Share this")}
    )
    assert boilerplate_keys(toks.line_doc, toks.line_key, 6).tolist() == []


def test_no_keys_flags_nothing():
    toks = _tokens("Leave a Reply\nPortvale", "Leave a Reply")
    none = np.zeros(0, dtype=np.uint64)
    assert not boilerplate_tokens(toks, none).any() and boilerplate_tokens(toks, none).shape == toks.hash.shape
    assert not boilerplate_lines(toks, none).any() and boilerplate_lines(toks, none).shape == toks.line_key.shape
    empty = _tokens("", "  ")
    keys = boilerplate_keys(empty.line_doc, empty.line_key, 1)
    assert keys.tolist() == [] and boilerplate_tokens(empty, keys).shape == (0,)


def test_boilerplate_is_case_and_punctuation_blind():
    texts = ["Leave a Reply!\nPortvale news", "LEAVE A REPLY\nSerra news", "leave, a reply.\nKellan news"]
    key = _line_key("leave a reply")
    assert _flagged_lines(texts, min_docs=3) == {0: {key}, 1: {key}, 2: {key}}


def test_long_line_is_never_boilerplate(factory):
    # One paragraph (well over the token limit) copied into every document, plus
    # a line of exactly the limit that is eligible.
    paragraph = factory.story_sentences(0)[0] + " " + factory.story_sentences(0)[1]
    assert len(paragraph.split()) > BOILERPLATE_MAX_TOKENS
    limit_line = " ".join(f"tag{i}" for i in range(BOILERPLATE_MAX_TOKENS))
    texts = [f"{paragraph}\n{limit_line}\n{_body(factory, s)}" for s in range(6)]
    toks = _tokens(*texts)
    keys = boilerplate_keys(toks.line_doc, toks.line_key, 3)
    assert keys.tolist() == [_line_key(limit_line)]
    mask = boilerplate_tokens(toks, keys)
    assert mask.dtype == np.bool_ and mask.shape == toks.hash.shape
    assert set(toks.line_key[toks.line[mask]].tolist()) == {_line_key(limit_line)}
    assert int(mask.sum()) == 6 * BOILERPLATE_MAX_TOKENS
    # The paragraph's lines have no key at all.
    first_lines = np.searchsorted(toks.line_doc, np.arange(6))
    assert toks.line_key[first_lines].tolist() == [0] * 6


# ---------------------------------------------------------------------------- summarize (pass 1, no token arrays)


def test_summarize_equals_what_tokenize_reports():
    texts = pl.Series(
        [
            "Leave a Reply\n\nThe Serra river flooded 42 homes in Kellan, officials said on Monday evening after the storm.",
            "",
            "\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45 \u00b4bridge\u00b4\n\n\nshort line\n" + "word " * 30,
            "\U0001d40f\U0001d428\U0001d42b\U0001d42d",
            None,
        ],
        dtype=pl.String,
    )
    toks = tokenize(texts, 7, max_key_tokens=BOILERPLATE_MAX_TOKENS)
    out = summarize(texts, 7, BOILERPLATE_MAX_TOKENS)
    assert out.n_tokens.tolist() == toks.n_tokens.tolist()
    assert out.content_hash.tolist() == toks.content_hash.tolist()
    short = toks.line_key != 0
    first_line = np.searchsorted(toks.line_doc, np.arange(len(texts)))
    assert out.line_doc.tolist() == toks.line_doc[short].tolist()
    assert out.line_key.tolist() == toks.line_key[short].tolist()
    assert out.line_ordinal.tolist() == (np.flatnonzero(short) - first_line[toks.line_doc[short]]).tolist()


def test_nfkc_is_applied_exactly_to_the_texts_that_need_it():
    # Mixed batch: the NFKC path for some texts must not change the others' tokens.
    plain = ["Portvale bridge reopens", "caf\u00e9 \u00b4quoted\u00b4"]
    special = ["\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45 bridge", "\U0001d40f\U0001d428\U0001d42b\U0001d42d bridge"]
    together = tokenize(pl.Series(plain + special), 1)
    for i, text in enumerate(plain + special):
        alone = tokenize(pl.Series([text]), 1)
        assert together.hash[together.doc == i].tolist() == alone.hash.tolist()
    # Full-width and mathematical bold letters read as plain letters.
    assert together.hash[together.doc == 2][0] == together.hash[together.doc == 0][0]
    assert together.hash[together.doc == 3][0] == tokenize(pl.Series(["port"]), 1).hash[0]


# ---------------------------------------------------------------------------- line keys follow max_key_tokens


def test_line_keys_follow_max_key_tokens_and_none_by_default():
    texts = ["Leave a Reply\nShare this article now\nPortvale", "Share this article now"]
    assert (_tokens(*texts, max_key_tokens=0).line_key == 0).all()
    assert (tokenize(pl.Series(texts), SEED).line_key == 0).all()  # the default keys no line
    keys = _tokens(*texts, max_key_tokens=3).line_key
    # 3, 4, 1 and 4 tokens: the 4-token lines are too long for a limit of 3.
    assert [k != 0 for k in keys.tolist()] == [True, False, True, False]
    assert keys[0] == _tokens("leave a reply").line_key[0]
    four = _tokens(*texts, max_key_tokens=4).line_key
    assert (four != 0).all() and four[1] == four[3]
    # summarize reports the same short lines under the same limit.
    out = summarize(pl.Series(texts), SEED, 3)
    assert out.line_doc.tolist() == [0, 0] and out.line_ordinal.tolist() == [0, 2]
    assert out.line_key.tolist() == [keys[0], keys[2]]
    assert summarize(pl.Series(texts), SEED, 4).line_ordinal.tolist() == [0, 1, 2, 0]


def test_stopword_hashes_are_the_token_hashes_of_the_stopwords():
    from provenance.prepare.normalize import stopword_hashes

    for seed in (1, 9):
        expected = np.unique(token_hashes(sorted(STOPWORDS), seed))
        np.testing.assert_array_equal(stopword_hashes(seed), expected)
    assert len(stopword_hashes(1)) == len(STOPWORDS)


def test_token_text_expr_folds_spacing_accents_and_applies_nfkc_only_where_needed():
    from provenance.prepare.normalize import token_text_expr

    def read(*texts: str) -> list[str]:
        return pl.DataFrame({"t": list(texts)}).select(token_text_expr(pl.col("t")))["t"].to_list()

    # The acute accent is an apostrophe; the other spacing accents become spaces, never combining marks.
    assert read("don\u00b4t", "na\u00a8ive", "x\u02dcy") == ["don't", "na ive", "x y"]
    # Full width is folded; a text without such characters is left exactly as it is (NFKC would make
    # the ellipsis three dots: no token changes, so no NFKC).
    assert read("\uff30ort 42", "wait\u2026 \u2013 ok") == ["Port 42", "wait\u2026 \u2013 ok"]
    # The compiled check that picks those texts agrees with the regex.
    from provenance.prepare.normalize import token_buffer

    texts = pl.Series(["Cafe\u0301", "\uff30ort", "\U0001d40fort", "plain"])
    buf, offsets = token_buffer(texts)
    assert [bytes(buf[offsets[i] : offsets[i + 1]]).decode() for i in range(4)] == ["Caf\u00e9", "Port", "Port", "plain"]
