"""Look-alike letters read as the Latin letters they imitate, in both tokenisers."""

from __future__ import annotations

import polars as pl

import provenance
from provenance.prepare import normalize
from provenance.prepare.confusables import fold_expr, letter_folds
from provenance.prepare.words import doc_words, words_expr
from tests.fixtures import make_article

CYRILLIC = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445"})


def disguise(text: str) -> str:
    """``text`` with every a, e, o, p, c, x written in Cyrillic: it reads the same."""
    return text.translate(CYRILLIC)


def test_cyrillic_and_greek_look_alikes_fold_to_latin_letters() -> None:
    folds = letter_folds()
    assert [folds[c] for c in "\u0430\u0435\u043e\u0440\u0441\u0445\u0456\u0432\u03ba\u03bf\u03c1"] == list("aeopcxibkop")
    assert all(k == k.lower() for k in folds) and "\u03c3" not in folds and "\u03c2" not in folds
    assert "\u0437" not in folds  # Cyrillic ze looks like the digit 3: letters never fold into digits
    assert all(v.isascii() and v.isalpha() and v.islower() for v in folds.values())
    assert pl.select(fold_expr(pl.lit("Russi\u0430 \u041a\u0440\u0435\u043c\u043b\u044c"))).item() == "russia kpem\u043bb"  # the soft sign imitates "b"
    assert pl.select(fold_expr(pl.lit("\u041c\u041e\u0421\u041a\u0412\u0410 \u041c\u043e\u0441\u043a\u0432\u0430"))).item() == "mockba mockba"


def test_both_tokenisers_read_a_disguised_text_as_the_original() -> None:
    text = make_article(0)
    texts = pl.Series([text, disguise(text)])
    assert disguise(text) != text
    words = doc_words(texts, 10_000)
    assert words[0].tokens == words[1].tokens
    assert pl.DataFrame({"t": texts}).select(words_expr(pl.col("t")))["t"].to_list()[0] == words[0].tokens
    tokens = normalize.tokenize(texts, seed=1)
    first, second = tokens.hash[tokens.doc == 0], tokens.hash[tokens.doc == 1]
    assert first.tolist() == second.tolist()


def test_a_copy_written_with_look_alike_letters_is_found(tmp_path) -> None:
    text = make_article(1)
    frame = pl.DataFrame({"id": ["original", "disguised", "other"], "text": [text, disguise(text), make_article(2)]})
    docs = provenance.run(frame).documents
    cluster = dict(zip(docs["doc_id"], docs["cluster_id"]))
    assert cluster["original"] == cluster["disguised"] != cluster["other"]
    # The documents keep their own letters: only matching reads them folded.
    assert docs.filter(pl.col("doc_id") == "disguised")["text"].item() == disguise(text)
