"""shingle: n-gram hashing, stopword filtering, per-document sorted sets, ShingleSets ops."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.prepare.normalize import Tokens, boilerplate_keys, boilerplate_tokens, summarize, token_hashes, tokenize
from provenance.prepare.shingle import ShingleSets, lineage_sets, ngram_hashes, shingle_views, text_views, to_sets

SEED = 1
MAX_KEY = Config().prepare.boilerplate_max_tokens


def _tokens(*texts: str) -> Tokens:
    return tokenize(pl.Series(list(texts), dtype=pl.String), SEED, max_key_tokens=MAX_KEY)


def views(*texts: str, word_ngram: int = 2, anchor_ngram: int = 2) -> dict[str, ShingleSets]:
    return shingle_views(_tokens(*texts), len(texts), word_ngram=word_ngram, anchor_ngram=anchor_ngram)


def as_set(sets: ShingleSets, i: int) -> set[int]:
    return set(sets.doc(i).tolist())


# ---------------------------------------------------------------------------- hashing is stable


def test_token_hashes_feed_the_views_pinned_literal():
    # A change of token hashing changes every signature (the scheme's ``hashing`` digest follows this
    # package's source by itself; these pins also catch changes from dependencies).
    assert token_hashes(["portvale"], 1).tolist() == [7970195513604947291]
    toks = _tokens("Portvale bridge PORTVALE")
    assert toks.hash.tolist() == [7970195513604947291, 15141775208475409347, 7970195513604947291]


def test_shingle_hashes_of_a_sentence_are_pinned():
    # Pins the whole scheme (token hash -> fmix64 n-gram chain -> fold to uint32) for one sentence.
    v = views("Mayor Elena Marquez closed the Halden Bridge.")
    assert v["words"].doc(0).tolist() == [459156216, 941619689, 1974088971, 2108479748, 2483461606, 4124423025]
    assert v["anchors"].doc(0).tolist() == [941619689, 2108479748, 3917225554, 4124423025]


def test_views_depend_on_the_tokenisers_seed():
    text = "Mayor Elena Marquez closed the Halden Bridge."
    other = tokenize(pl.Series([text]), 2)
    v2 = shingle_views(other, 1, word_ngram=2, anchor_ngram=2)
    assert as_set(v2["words"], 0).isdisjoint(as_set(views(text)["words"], 0))


def test_views_are_case_and_punctuation_blind(factory):
    text = factory.make_article(0)
    v = views(text, factory.noisy_copy(text))
    assert as_set(v["words"], 0) == as_set(v["words"], 1)


# ---------------------------------------------------------------------------- n-grams


def test_ngrams_never_cross_a_document_boundary():
    hashes = np.arange(1, 8, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    doc = np.array([0, 0, 1, 1, 1, 2, 2], dtype=np.uint32)
    _, d = ngram_hashes(hashes, doc, 2)
    assert d.tolist() == [0, 1, 1, 2]
    h3, d3 = ngram_hashes(hashes, doc, 3)
    assert d3.tolist() == [1]
    assert len(h3) == 1


def test_ngram_hashes_shorter_than_n():
    h, d = ngram_hashes(np.array([1, 2], dtype=np.uint64), np.array([0, 0], dtype=np.uint32), 3)
    assert len(h) == 0 and len(d) == 0


def test_ngram_hash_is_order_sensitive():
    t = np.array([11, 22, 22, 11], dtype=np.uint64)
    h, _ = ngram_hashes(t, np.array([0, 0, 1, 1], dtype=np.uint32), 2)
    assert h[0] != h[1]


def test_shingle_views_do_not_join_documents():
    x = "Portvale engineers inspected the Halden Bridge"
    y = "Northwind turbines spin near Bornholm island"
    v = views(x, y, x + " " + y)["words"]
    separate = as_set(v, 0) | as_set(v, 1)
    joined = as_set(v, 2)
    assert separate <= joined
    # Exactly one shingle ("bridge northwind") exists only in the concatenation.
    assert len(joined - separate) == 1


def test_shingle_views_skip_documents_without_tokens():
    v = views("Portvale bridge closed", "", "!!", "Serra river floods")
    for sets in v.values():
        assert sets.n_docs == 4
        assert sets.sizes()[1] == 0 and sets.sizes()[2] == 0
    alone = views("Serra river floods")
    assert as_set(v["words"], 3) == as_set(alone["words"], 0)
    assert as_set(v["anchors"], 3) == as_set(alone["anchors"], 0)


def test_stopword_only_ngrams_are_dropped():
    v = views("of the Portvale in the of", "of the in the and to")["words"]
    # Bigrams: of-the (dropped), the-portvale, portvale-in, in-the (dropped), the-of (dropped).
    assert v.sizes().tolist() == [2, 0]
    kept = views("the Portvale", "Portvale in")["words"]
    assert as_set(v, 0) == as_set(kept, 0) | as_set(kept, 1)


def test_capitalised_stopwords_are_dropped_too():
    v = views("The But Mr", "THE Portvale")["words"]
    assert v.sizes().tolist() == [0, 1]


def test_sets_are_sorted_unique_uint32_per_document(factory):
    texts = ["Portvale bridge Portvale bridge Portvale bridge", factory.make_article(0), factory.make_article(1), "x"]
    for sets in views(*texts).values():
        assert sets.hashes.dtype == np.uint32
        assert sets.offsets[0] == 0 and sets.offsets[-1] == len(sets.hashes)
        assert sets.n_docs == len(texts)
        for i in range(sets.n_docs):
            doc = sets.doc(i).astype(np.int64)
            assert (np.diff(doc) > 0).all(), i
    # "portvale bridge" and "bridge portvale" only.
    assert views(texts[0])["words"].sizes().tolist() == [2]


def test_to_sets_dedupes_within_not_across_documents():
    hashes = np.array([5, 3, 5, 3, 9], dtype=np.uint64)
    doc = np.array([0, 0, 0, 2, 2], dtype=np.uint32)
    sets = to_sets(hashes, doc, 3)
    assert sets.offsets.tolist() == [0, 2, 2, 4]
    assert sets.doc(0).tolist() == [3, 5] and sets.doc(2).tolist() == [3, 9]
    assert sets.doc(1).tolist() == []


def test_to_sets_folds_high_bits_into_32():
    sets = to_sets(np.array([(7 << 32) | 1], dtype=np.uint64), np.array([0], dtype=np.uint32), 1)
    assert sets.hashes.tolist() == [7 ^ 1]


def test_to_sets_of_nothing():
    sets = to_sets(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint32), 2)
    assert sets.offsets.tolist() == [0, 0, 0] and sets.hashes.dtype == np.uint32


def test_anchor_view_survives_a_synonym_spin(factory):
    text = factory.make_article(0)
    spun = factory.spin(text, 0.3, seed=3)
    v = views(text, spun)
    assert as_set(v["anchors"], 0) == as_set(v["anchors"], 1)
    words_a, words_b = as_set(v["words"], 0), as_set(v["words"], 1)
    assert len(words_a & words_b) / len(words_a | words_b) < 0.7


def test_anchor_view_ignores_shouted_lines_but_keeps_their_numbers():
    v = views("PORTVALE BRIDGE CLOSED IN 2024 AFTER 42 CRACKS")["anchors"]
    assert v.sizes().tolist() == [1]  # "2024 42" only
    assert as_set(v, 0) == as_set(views("in 2024 after 42")["anchors"], 0)


# ---------------------------------------------------------------------------- boilerplate


def test_boilerplate_rows_are_left_out_of_every_view():
    toks = _tokens("Leave a Reply\nPortvale bridge closed")
    v = shingle_views(toks, 1, word_ngram=2, anchor_ngram=2, boilerplate=toks.line == toks.line[0])
    plain = views("Portvale bridge closed")
    for name in ("words", "anchors"):
        assert as_set(v[name], 0) == as_set(plain[name], 0)
    # Without a mask (or with an all-False one) the line is kept.
    for mask in (None, np.zeros(len(toks.hash), dtype=bool)):
        kept = shingle_views(toks, 1, word_ngram=2, anchor_ngram=2, boilerplate=mask)
        assert as_set(kept["words"], 0) > as_set(plain["words"], 0)


def test_detected_boilerplate_is_left_out_and_does_not_join_documents():
    furniture = "Share this Article on Portvale Social"
    stories = ["Serra river floods the lower town", "Northwind turbines spin near Bornholm", "Kellan mine reopens"]
    toks = _tokens(*(f"{s}\n{furniture}" for s in stories))
    flagged = boilerplate_tokens(toks, boilerplate_keys(toks.line_doc, toks.line_key, 3))
    assert int(flagged.sum()) == 3 * 6
    v = shingle_views(toks, 3, word_ngram=2, anchor_ngram=2, boilerplate=flagged)
    plain = views(*stories)
    for name in ("words", "anchors"):
        for i in range(3):
            assert as_set(v[name], i) == as_set(plain[name], i), (name, i)
        assert not (as_set(v[name], 0) & as_set(v[name], 1))


# ---------------------------------------------------------------------------- lineage sets


def test_lineage_sets_keep_stopwords_and_boilerplate_and_stay_within_documents():
    texts = ["of the in the", "Leave a Reply\nPortvale bridge", "x"]
    toks = _tokens(*texts)
    sets = lineage_sets(toks, 3, ngram=2)
    assert sets.n_docs == 3 and sets.hashes.dtype == np.uint32
    # of-the, the-in, in-the: 3 (all stopwords, yet kept); the two lines of doc 1 chain into 4 bigrams.
    assert sets.sizes().tolist() == [3, 4, 0]
    assert views(*texts)["words"].sizes().tolist()[0] == 0
    # Line breaks do not cut lineage n-grams, document boundaries do.
    assert as_set(sets, 1) == as_set(lineage_sets(_tokens("leave a reply portvale bridge"), 1, ngram=2), 0)
    assert lineage_sets(toks, 3, ngram=3).sizes().tolist() == [2, 3, 0]


def test_lineage_sets_pinned_literal():
    sets = lineage_sets(_tokens("Mayor Elena Marquez closed the Halden Bridge."), 1, ngram=3)
    assert sets.doc(0).tolist() == [1090293438, 1596044289, 1614972175, 2497066211, 3991295692]


# ---------------------------------------------------------------------------- ShingleSets


def _sets() -> ShingleSets:
    return ShingleSets(np.array([1, 4, 9, 2, 3, 7, 8], dtype=np.uint32), np.array([0, 3, 3, 5, 7], dtype=np.int64))


def test_take_gathers_rows_in_the_given_order():
    s = _sets()
    t = s.take(np.array([3, 0, 1, 3]))
    assert t.n_docs == 4
    assert [t.doc(i).tolist() for i in range(4)] == [[7, 8], [1, 4, 9], [], [7, 8]]
    assert t.sizes().tolist() == [2, 3, 0, 2]
    empty = s.take(np.array([], dtype=np.int64))
    assert empty.n_docs == 0 and len(empty.hashes) == 0


@pytest.mark.parametrize("batch", [1, 2, 50_000])
def test_only_keeps_the_sets_of_some_rows_and_empties_the_others(batch):
    """Same numbering, the rows' own sets, nothing for the others, gathered batch by batch alike."""
    s = _sets()
    kept = s.only(np.array([0, 3]), batch=batch)
    assert kept.n_docs == 4 and kept.sizes().tolist() == [3, 0, 0, 2]
    assert [kept.doc(i).tolist() for i in range(4)] == [[1, 4, 9], [], [], [7, 8]]
    assert kept.hashes.dtype == s.hashes.dtype
    assert s.only(np.array([], dtype=np.int64)).sizes().tolist() == [0, 0, 0, 0]
    everything = s.only(np.arange(4), batch=batch)
    assert everything.offsets.tolist() == s.offsets.tolist() and everything.hashes.tolist() == s.hashes.tolist()


def test_concat_round_trips_take():
    s = _sets()
    parts = [s.take(np.array([0, 1])), s.take(np.array([2])), s.take(np.array([3]))]
    joined = ShingleSets.concat(parts)
    assert joined.offsets.tolist() == s.offsets.tolist()
    assert joined.hashes.tolist() == s.hashes.tolist()
    none = ShingleSets.concat([])
    assert none.n_docs == 0 and none.hashes.dtype == np.uint32


@pytest.mark.parametrize("n", [1, 3])
def test_word_ngram_length_is_honoured(n):
    text = "Marquez ordered Halden Bridge closed following inspectors finding cracks"  # no stopword
    sizes = views(text, word_ngram=n)["words"].sizes().tolist()
    assert sizes == [len(text.split()) - n + 1]


@pytest.mark.parametrize("n", [1, 3])
def test_anchor_ngram_length_is_honoured(n):
    text = "Mayor Elena Marquez closed the Halden Bridge in 2024"  # 6 anchors
    assert views(text, anchor_ngram=n)["anchors"].sizes().tolist() == [6 - n + 1]


# ---------------------------------------------------------------------------- fused text -> views

_MIXED = [
    "Portvale Mayor Ana Reyes said on Monday the bridge would reopen.\nLeave a Reply\nShare this",
    "SHARE THIS ARTICLE NOW PLEASE\nThe Serra river flooded 42 homes in Kellan.\nLeave a Reply",
    "\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45 mayor \ufb01nal Cafe\u0301 caf\u00e9 \u00b4quoted\u00b4 text",
    "Leave a Reply\nShare this\n",  # boilerplate only
    "",
    "of the in the and",  # stopwords only: no informative word n-gram
    "\U0001d40f\U0001d428\U0001d42b\U0001d42d mayor Reyes",  # mathematical bold letters
    "x",
]


@pytest.mark.parametrize("word_ngram,anchor_ngram", [(2, 2), (3, 1), (1, 3)])
def test_text_views_equal_views_of_the_token_arrays(word_ngram, anchor_ngram):
    texts = pl.Series(_MIXED * 2, dtype=pl.String)
    toks = tokenize(texts, SEED, max_key_tokens=MAX_KEY)
    keys = boilerplate_keys(toks.line_doc, toks.line_key, 3)
    assert len(keys) == 2  # "Leave a Reply", "Share this"
    flagged = boilerplate_tokens(toks, keys)
    expected = shingle_views(toks, len(texts), word_ngram=word_ngram, anchor_ngram=anchor_ngram, boilerplate=flagged)
    out = text_views(
        texts, summarize(texts, SEED, MAX_KEY).n_tokens, keys, seed=SEED, word_ngram=word_ngram, anchor_ngram=anchor_ngram,
        max_key_tokens=MAX_KEY,
    )
    for name in ("words", "anchors"):
        assert out.views[name].offsets.tolist() == expected[name].offsets.tolist(), name
        assert out.views[name].hashes.tolist() == expected[name].hashes.tolist(), name
    assert out.boilerplate_tokens == int(flagged.sum())
    # Boilerplate lines as ordinals among each document's lines with tokens.
    first_line = np.searchsorted(toks.line_doc, np.arange(len(texts)))
    lines = np.flatnonzero(boilerplate_tokens(toks, keys)[np.searchsorted(toks.line, np.arange(len(toks.line_doc)))])
    assert out.boilerplate_lines.sizes().sum() == len(lines)
    assert out.boilerplate_lines.hashes.tolist() == (lines - first_line[toks.line_doc[lines]]).tolist()


def test_text_views_refuses_token_counts_that_do_not_match_the_texts():
    texts = pl.Series(["one two three four", "five six"])
    with pytest.raises(ValueError, match="n_tokens does not match text 0"):
        text_views(texts, np.array([2, 2]), np.zeros(0, np.uint64), seed=SEED, word_ngram=2, anchor_ngram=2, max_key_tokens=MAX_KEY)
    with pytest.raises(ValueError, match="one token count per text"):
        text_views(texts, np.array([4]), np.zeros(0, np.uint64), seed=SEED, word_ngram=2, anchor_ngram=2, max_key_tokens=MAX_KEY)


def test_text_views_leave_out_only_lines_within_max_key_tokens():
    """Keys of lines longer than ``max_key_tokens`` are never looked up, even when the key list holds them."""
    texts = pl.Series(["Leave a Reply\nPortvale bridge closed", "Leave a Reply\nSerra river floods"])
    keys = np.sort(_tokens("Leave a Reply").line_key)  # the key of the 3-token line
    counts = summarize(texts, SEED, MAX_KEY).n_tokens

    def run(max_key_tokens: int):
        return text_views(texts, counts, keys, seed=SEED, word_ngram=2, anchor_ngram=2, max_key_tokens=max_key_tokens)

    cut, kept = run(3), run(2)
    assert cut.boilerplate_tokens == 6 and cut.boilerplate_lines.hashes.tolist() == [0, 0]
    assert kept.boilerplate_tokens == 0 and kept.boilerplate_lines.sizes().tolist() == [0, 0]
    plain = views("Portvale bridge closed", "Serra river floods")
    full = views(*texts.to_list())
    for name in ("words", "anchors"):
        for i in range(2):
            assert as_set(cut.views[name], i) == as_set(plain[name], i)
            assert as_set(kept.views[name], i) == as_set(full[name], i)
