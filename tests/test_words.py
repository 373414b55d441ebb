"""words: the Python-side tokeniser gives the tokens ``words_expr`` gives, on the lines the compiled tokeniser numbers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.prepare import normalize, shingle
from provenance.prepare.confusables import fold_expr
from provenance.prepare.normalize import normalize_expr
from provenance.prepare.words import EMPTY, PIECE_PATTERN, Words, doc_words, words_expr
from tests.fixtures import make_article, noisy_copy, spin

SEED = 1
MAX_KEY = Config().prepare.boilerplate_max_tokens

#: Texts in which lines, marks and Unicode differ in every way that matters to the two tokenisers.
TEXTS = [
    make_article(0),
    noisy_copy(make_article(1)),
    spin(make_article(2), 0.3, seed=4),
    "Leave a Reply\n\n  \nThe mayor said so. Then? He left!\n...\n\u2014 \u201cOK\u201d, bye",
    "\r\nWindows\r\nline  endings\r\n\r\n\ttabs\u00a0and\u00a0spaces\n\n\n",
    "\uff30\uff4f\uff52\uff54\uff56\uff41\uff4c\uff45 \ufb01nal Cafe\u0301 don\u00b4t \u00b2 \u2460",
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u0438 \u041f\u0415\u0422\u0415\u0420\u0411\u0423\u0420\u0413. \u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2",
    "\u6771\u4eac\u30bf\u30ef\u30fc\u3068\u5bcc\u58eb\u5c71\u3002\n\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e\n\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "emoji \U0001f600 between\U0001f4f0words \U0001f1fa\U0001f1f8 42\U0001f525",
    "",
    "   \n\n  ",
    "?!...",
    "snake_case and 42,000 cars; 3.5% up",
]


def reference_doc_words(texts: pl.Series, max_tokens: int, drop_lines: pl.DataFrame | None = None) -> list[Words]:
    """The polars reading of the rule ``doc_words`` compiles: ``token + trailing separators`` pieces per line.

    ``drop_lines`` (``doc`` = position in ``texts``, ``line`` = ordinal among
    its lines with tokens) names lines to leave out, e.g. boilerplate.
    """
    if len(texts) == 0:
        return []
    lines = (
        pl.DataFrame({"text": texts}).with_row_index("doc")
        .select("doc", normalize_expr(pl.col("text")).str.split("\n").alias("line_text"))
        .explode("line_text")
        .with_columns(pl.col("line_text").str.extract_all(PIECE_PATTERN).alias("piece"))
        .filter(pl.col("piece").list.len() > 0)
        .with_columns(pl.int_range(pl.len()).over("doc").cast(pl.Int32).alias("line"))
    )
    if drop_lines is not None and drop_lines.height:
        drop = drop_lines.select(pl.col("doc").cast(pl.UInt32), pl.col("line").cast(pl.Int32))
        lines = lines.join(drop, on=["doc", "line"], how="anti")
    pieces = (
        lines.select("doc", "line", "piece")
        .explode("piece")
        .with_columns(
            fold_expr(pl.col("piece").str.extract(r"^(\w+)", 1)).alias("token"),
            pl.col("piece").str.replace(r"^\w+", "").str.contains(r"[.!?]").alias("end"),
        )
        .with_columns(pl.col("end").shift(1).over("doc", "line").fill_null(True).alias("start"))
    )
    grouped = pieces.group_by("doc", maintain_order=True).agg(
        pl.col("token").head(max_tokens), pl.col("line").head(max_tokens),
        pl.col("start").head(max_tokens), pl.col("end").head(max_tokens),
    )
    out = [EMPTY] * len(texts)
    for doc, tokens, line, start, end in grouped.iter_rows():
        out[doc] = Words(tokens, np.array(line, dtype=np.int64), np.array(start, dtype=bool), np.array(end, dtype=bool))
    return out


def tokens_of(texts: list[str]) -> list[list[str]]:
    frame = pl.DataFrame({"t": pl.Series(texts, dtype=pl.String)})
    return [t or [] for t in frame.select(words_expr(pl.col("t")))["t"].to_list()]


def compiled_lines(texts: list[str]) -> list[list[int]]:
    """Per text: each token's line as the compiled tokeniser numbers it (ordinal among the text's lines with tokens)."""
    toks = normalize.tokenize(pl.Series(texts, dtype=pl.String), SEED)
    first = np.searchsorted(toks.line_doc, np.arange(len(texts)))
    return [(toks.line[toks.doc == d] - first[d]).tolist() for d in range(len(texts))]


def test_doc_words_gives_the_tokens_of_words_expr():
    words = doc_words(pl.Series(TEXTS), 100_000)
    assert len(words) == len(TEXTS)
    assert [w.tokens for w in words] == tokens_of(TEXTS)
    for w in words:
        assert len(w.lines) == len(w.tokens) == len(w.start) == len(w.end)
        assert w.start.dtype == np.bool_ and w.end.dtype == np.bool_


def test_tokens_are_the_compiled_tokenisers_tokens():
    """Edge statistics and shingles read the same words: each token hashes to the compiled tokeniser's hash."""
    toks = normalize.tokenize(pl.Series(TEXTS), SEED)
    for d, w in enumerate(doc_words(pl.Series(TEXTS), 100_000)):
        expected = toks.hash[toks.doc == d].tolist()
        got = normalize.token_hashes(w.tokens, SEED).tolist() if w.tokens else []
        assert got == expected, TEXTS[d][:40]


def test_lines_are_numbered_as_the_compiled_tokeniser_numbers_them():
    assert [w.lines.tolist() for w in doc_words(pl.Series(TEXTS), 100_000)] == compiled_lines(TEXTS)


def test_tokens_are_lower_case_word_runs_of_the_normalised_text():
    (w,) = doc_words(pl.Series(["The MAYOR\u2019s 42,000 cars \u2014 Caf\u00e9!"]), 100)
    assert w.tokens == ["the", "mayor", "s", "42", "000", "cars", "caf\u00e9"]
    assert w.lines.tolist() == [0] * 7


def test_sentence_marks():
    text = "The mayor said so. Then? He left!\n\u201cOK,\u201d she said\nnew line... and (more) words.\n\u2014 Reply"
    (w,) = doc_words(pl.Series([text]), 100)
    assert w.tokens == ["the", "mayor", "said", "so", "then", "he", "left", "ok", "she", "said",
                        "new", "line", "and", "more", "words", "reply"]
    # A sentence starts a line or follows a terminal mark; a mark after a comma, quote or bracket still counts.
    assert w.start.tolist() == [True, False, False, False, True, True, False, True, False, False,
                                True, False, True, False, False, True]
    assert w.end.tolist() == [False, False, False, True, True, False, True, False, False, False,
                              False, True, False, False, True, False]
    assert w.lines.tolist() == [0] * 7 + [1] * 3 + [2] * 5 + [3]


def test_max_tokens_keeps_the_first_tokens():
    text = "one two three\nfour five. six"
    (full,) = doc_words(pl.Series([text]), 100)
    for n in (0, 1, 3, 4, 6):
        (w,) = doc_words(pl.Series([text]), n)
        assert w.tokens == full.tokens[:n] and w.lines.tolist() == full.lines[:n].tolist()
        assert w.start.tolist() == full.start.tolist()[:n] and w.end.tolist() == full.end.tolist()[:n]


def test_texts_without_tokens_and_empty_input():
    words = doc_words(pl.Series(["", None, "  \n ", "!!", "x"], dtype=pl.String), 10)
    assert [w.tokens for w in words] == [[], [], [], [], ["x"]]
    assert all(w is EMPTY for w in words[:4])
    assert doc_words(pl.Series([], dtype=pl.String), 10) == []


def test_drop_lines_leaves_exactly_those_lines_out():
    texts = ["Leave a Reply\nThe bridge closed.\n\nShare this\nEngineers found cracks.", "Floods in Tarrow.\nShare this"]
    drop = pl.DataFrame({"doc": [0, 0, 1], "line": [0, 2, 1]})
    out = doc_words(pl.Series(texts), 100, drop)
    assert out[0].tokens == ["the", "bridge", "closed", "engineers", "found", "cracks"]
    # Kept tokens keep their own line numbers (the numbering is that of all lines, not of the kept ones).
    assert out[0].lines.tolist() == [1, 1, 1, 3, 3, 3]
    # A line is dropped from its own document only.
    assert out[1].tokens == ["floods", "in", "tarrow"] and out[1].lines.tolist() == [0, 0, 0]
    # Dropping a line does not change another line's sentence marks.
    assert out[0].start.tolist() == [True, False, False, True, False, False]
    # An empty frame (or None) drops nothing.
    none = pl.DataFrame({"doc": [], "line": []}, schema={"doc": pl.UInt32, "line": pl.Int32})
    assert [w.tokens for w in doc_words(pl.Series(texts), 100, none)] == tokens_of(texts)


def test_drop_lines_of_the_prepare_stage_drop_the_boilerplate_the_views_left_out():
    """The boilerplate lines ``text_views`` reports are the lines ``doc_words`` must drop to read the same text."""
    furniture = ["Leave a Reply", "Share this article"]
    bodies = [make_article(s, 4, headline=False).strip() for s in range(4)]
    texts = [f"{furniture[0]}\n{b}\n\n{furniture[1]}" if s < 3 else b for s, b in enumerate(bodies)]
    series = pl.Series(texts)
    summary = normalize.summarize(series, SEED, MAX_KEY)
    keys = normalize.boilerplate_keys(summary.line_doc, summary.line_key, 3)
    out = shingle.text_views(series, summary.n_tokens, keys, seed=SEED, word_ngram=2, anchor_ngram=2, max_key_tokens=MAX_KEY)
    lines = out.boilerplate_lines
    drop = pl.DataFrame({"doc": np.repeat(np.arange(len(texts)), lines.sizes()), "line": lines.hashes.astype(np.int32)})
    assert drop.height == 6
    words = doc_words(series, 100_000, drop)
    # With the furniture dropped, each text reads as its body alone.
    assert [w.tokens for w in words] == [b.tokens for b in doc_words(pl.Series(bodies), 100_000)]
    assert out.boilerplate_tokens == 3 * (3 + 3)


def test_words_is_a_frozen_record():
    w = Words(["a"], [0], np.array([True]), np.array([False]))
    with pytest.raises(AttributeError):
        w.tokens = []  # type: ignore[misc]


GAPS = pytest.mark.parametrize("text", ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\u0bf0 \u0bf1", "\u2f00\u2f01"],
                               ids=["persian-zwnj", "tamil-numbers", "kangxi"])


@GAPS
def test_doc_words_reads_the_compiled_tokenisers_words_where_the_regex_does_not(text):
    """Edge statistics read the shingles' own words even where ``\\w`` cuts differently (ZWNJ, No numbers, radicals)."""
    (w,) = doc_words(pl.Series([text]), 100)
    toks = normalize.tokenize(pl.Series([text]), SEED)
    assert (normalize.token_hashes(w.tokens, SEED).tolist() if w.tokens else []) == toks.hash.tolist()


@pytest.mark.xfail(strict=True, reason=(
    "known gap: the compiled tokeniser splits at ZWNJ/ZWJ and reads No-category numbers as word characters, "
    "while \\w joins at ZWNJ and skips those numbers; Kangxi radicals are letters only after a full NFKC. "
    "words_expr (the diff's vectorised word counts) still reads \\w"
))
@GAPS
def test_known_disagreements_of_words_expr_and_the_compiled_tokeniser(text):
    assert tokens_of([text]) == [doc_words(pl.Series([text]), 100)[0].tokens]


def _same(a: list[Words], b: list[Words]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.tokens == y.tokens
        assert x.lines.tolist() == y.lines.tolist()
        assert x.start.tolist() == y.start.tolist() and x.end.tolist() == y.end.tolist()


MARKS = TEXTS + [
    "Wait\u2026 what? Yes\u203c no \u2049 ok\n(He said so.) Then\u2014left",
    "\u201cEnd.\u201d Next one! \u2018Quoted?\u2019 and\n...\nlast",
    "x. y\n\n. z",
]


@pytest.mark.parametrize("cap", [0, 1, 2, 5, 100_000])
def test_the_compiled_pass_reads_the_pieces_rule_exactly(cap):
    """Tokens, lines and both sentence marks agree with the polars reading of the rule, at every cap."""
    texts = MARKS + [make_article(s) for s in range(6)] + [spin(noisy_copy(make_article(9)), 0.4, seed=2)]
    _same(doc_words(pl.Series(texts), cap), reference_doc_words(pl.Series(texts), cap))


def test_the_compiled_pass_drops_lines_as_the_rule_does():
    texts = MARKS + [make_article(s) for s in range(3)]
    drop = pl.DataFrame({"doc": [0, 0, 3, 13, 14], "line": [0, 2, 1, 0, 3]})
    for cap in (3, 100_000):
        _same(doc_words(pl.Series(texts), cap, drop), reference_doc_words(pl.Series(texts), cap, drop))
