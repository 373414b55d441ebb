"""shingle: n-gram hashing, stopword filtering, per-document sorted sets, ShingleSets ops."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xxhash

from provenance.config import SIGNATURE_SCHEME
from provenance.normalize import tokenize
from provenance.shingle import ShingleSets, hash_tokens, ngram_hashes, shingle_views, to_sets


def views(*texts: str, word_ngram: int = 2, anchor_ngram: int = 2) -> dict[str, ShingleSets]:
    toks = tokenize(pl.DataFrame({"text": list(texts)}))
    return shingle_views(toks, len(texts), word_ngram=word_ngram, anchor_ngram=anchor_ngram, seed=1)


def as_set(sets: ShingleSets, i: int) -> set[int]:
    return set(sets.doc(i).tolist())


# ---------------------------------------------------------------------------- hashing is stable


def test_token_hash_is_seeded_xxh64_pinned_literal():
    # A change of token hashing changes every signature: bump config.SIGNATURE_SCHEME when this fails.
    assert xxhash.xxh64_intdigest(b"portvale", 1) == 5192302646867285951
    out = hash_tokens(pl.Series(["portvale", "bridge", "portvale"]), 1)
    assert out.dtype == np.uint64
    assert out.tolist() == [5192302646867285951, 16810901530609497003, 5192302646867285951]
    assert SIGNATURE_SCHEME == "provenance-xxh64-affine32-v1"


def test_shingle_hashes_of_a_sentence_are_pinned():
    # Pins the whole scheme (token hash -> fmix64 n-gram chain -> fold to uint32) for one sentence.
    v = views("Mayor Elena Marquez closed the Halden Bridge.")
    assert v["words"].doc(0).tolist() == [880509846, 1489397825, 2536246607, 2816667786, 3238832854, 4143427599]
    assert v["anchors"].doc(0).tolist() == [2816667786, 3238832854, 3696893982, 4143427599]


def test_hash_tokens_depends_on_seed_and_handles_empty():
    a = hash_tokens(pl.Series(["portvale"]), 1)
    b = hash_tokens(pl.Series(["portvale"]), 2)
    assert a[0] != b[0]
    assert hash_tokens(pl.Series([], dtype=pl.String), 1).shape == (0,)


# ---------------------------------------------------------------------------- n-grams


def test_ngrams_never_cross_a_document_boundary():
    token_hashes = np.arange(1, 8, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    doc = np.array([0, 0, 1, 1, 1, 2, 2], dtype=np.uint32)
    h, d = ngram_hashes(token_hashes, doc, 2)
    assert d.tolist() == [0, 1, 1, 2]
    h3, d3 = ngram_hashes(token_hashes, doc, 3)
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


def test_stopword_only_ngrams_are_dropped():
    v = views("of the Portvale in the of", "of the in the and to")["words"]
    # Bigrams: of-the (dropped), the-portvale, portvale-in, in-the (dropped), the-of (dropped).
    assert v.sizes().tolist() == [2, 0]
    kept = views("the Portvale", "Portvale in")["words"]
    assert as_set(v, 0) == as_set(kept, 0) | as_set(kept, 1)


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


def test_anchor_view_survives_a_synonym_spin(factory):
    text = factory.make_article(0)
    spun = factory.spin(text, 0.3, seed=3)
    v = views(text, spun)
    assert as_set(v["anchors"], 0) == as_set(v["anchors"], 1)
    words_a, words_b = as_set(v["words"], 0), as_set(v["words"], 1)
    assert len(words_a & words_b) / len(words_a | words_b) < 0.7


def test_boilerplate_rows_are_left_out_of_every_view():
    toks = tokenize(pl.DataFrame({"text": ["Leave a Reply\nPortvale bridge closed"]}))
    flagged = toks.with_columns((pl.col("line") == 0).alias("boilerplate"))
    v = shingle_views(flagged, 1, word_ngram=2, anchor_ngram=2, seed=1)
    plain = views("Portvale bridge closed")
    for name in ("words", "anchors"):
        assert as_set(v[name], 0) == as_set(plain[name], 0)


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
