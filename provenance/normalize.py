"""Normalise text and cut it into tokens, as polars expressions.

Copies of one article differ in Unicode forms (full-width letters, non-breaking
spaces), typographic quotes and dashes, case and white space; none of that is a
change of content, so all of it is folded away before shingling.  Tokens keep
a flag for *anchors*: capitalised words and numbers that are not stopwords
(names, places, figures), the words that synonym spinners and paraphrasers
leave alone (the "immutable" words of the DSpin paper).
"""

from __future__ import annotations

import polars as pl

# Typographic variants folded to their ASCII form.
_QUOTES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
}
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
_FOLD = {**_QUOTES, **_DASHES}

#: English function words.  They are never anchors, whatever their case
#: ("The", "But" open sentences without being names).
STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all almost also although always am among an and another any
    are around as at be because been before being below between both but by can cannot could did do
    does doing done down during each either else ever every few for from further had has have having he
    her here hers herself him himself his how however i if in into is it its itself just last least less
    like many may me might more most much must my myself neither never next no nor not now of off often
    on once one only or other others our ours ourselves out over own per perhaps rather same several
    shall she should since so some still such than that the their theirs them themselves then there
    these they this those though through thus to too toward towards under unless until up upon us very
    was we were what whatever when whenever where whether which while who whom whose why will with
    within without would yet you your yours yourself yourselves mr mrs ms said says""".split()
)

_TOKEN_PATTERN = r"\w+"
#: Lines of at most this many tokens may be boilerplate (see :func:`boilerplate_mask`).
BOILERPLATE_MAX_TOKENS = 20


def normalize_expr(text: pl.Expr) -> pl.Expr:
    """Unicode NFKC, ASCII quotes and dashes, white space folded (case kept).

    Case is kept so anchors can still be told apart; word views lower-case
    their tokens themselves.
    """
    # Fold before NFKC too: NFKC decomposes some quote look-alikes (U+00B4 becomes
    # a space and a combining accent) beyond recognition.
    fold = lambda e: e.str.replace_many(list(_FOLD.keys()), list(_FOLD.values()))  # noqa: E731
    folded = fold(fold(text).str.normalize("NFKC"))
    return folded.str.replace_all(r"[ \t\r\f\v\u00a0]+", " ").str.replace_all(r" ?\n[\s]*", "\n").str.strip_chars()


def canonical_expr(text: pl.Expr) -> pl.Expr:
    """The normalised text reduced to its lower-case token sequence.

    Two documents with the same canonical text are exact duplicates: they
    differ at most in case, punctuation, quotes, dashes or white space.
    """
    return normalize_expr(text).str.to_lowercase().str.extract_all(_TOKEN_PATTERN).list.join(" ")


def tokenize(documents: pl.DataFrame, text_column: str = "text") -> pl.DataFrame:
    """One row per token: ``doc`` (UInt32 row index), ``line``, ``token`` (lower case), ``anchor``, ``line_key``.

    Rows come grouped by document, in text order, so a flat array of them plus
    per-document offsets is all later stages need.  ``line_key`` identifies the
    token's line by its canonical text (for boilerplate detection) and is null
    for lines longer than :data:`BOILERPLATE_MAX_TOKENS` tokens.
    """
    lines = (
        documents.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("doc"),
            normalize_expr(pl.col(text_column)).str.split("\n").alias("text_line"),
        )
        .explode("text_line")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over("doc").alias("line"))
        .with_columns(pl.col("text_line").str.extract_all(_TOKEN_PATTERN).alias("raw"))
    )
    short = pl.col("raw").list.len() <= BOILERPLATE_MAX_TOKENS
    lines = lines.with_columns(
        pl.when(short & (pl.col("raw").list.len() > 0))
        .then(pl.col("raw").list.join(" ").str.to_lowercase())
        .alias("line_key")
    )
    # A line written in capitals says nothing about which words are names.
    shouting = (pl.col("text_line") == pl.col("text_line").str.to_uppercase()) & (pl.col("raw").list.len() >= 4)
    lines = lines.with_columns(shouting.alias("shouting"))
    tokens = lines.select("doc", "line", "line_key", "shouting", "raw").explode("raw").drop_nulls("raw")
    lower = pl.col("raw").str.to_lowercase()
    first = pl.col("raw").str.slice(0, 1)
    is_anchor = ((first != first.str.to_lowercase()) & ~pl.col("shouting")) | first.str.contains(r"^\d")
    return tokens.select(
        "doc",
        "line",
        lower.alias("token"),
        (is_anchor & ~lower.is_in(list(STOPWORDS))).alias("anchor"),
        "line_key",
    )


def boilerplate_mask(tokens: pl.DataFrame, min_docs: int) -> pl.Series:
    """True for tokens on a boilerplate line: a short line found in ``min_docs`` or more documents.

    Site furniture ("Leave a Reply", "Share this article", "Your email address
    will not be published") repeats verbatim across unrelated articles and
    would otherwise make them look alike.  Long lines are never boilerplate,
    so a story copied thousands of times keeps its paragraphs.
    """
    per_line = tokens.select("doc", "line", "line_key").unique(["doc", "line"]).drop_nulls("line_key")
    common = per_line.group_by("line_key").agg(pl.col("doc").n_unique().alias("n_docs")).filter(
        pl.col("n_docs") >= min_docs
    )
    return tokens["line_key"].is_in(common["line_key"].implode()).fill_null(False).alias("boilerplate")


def offsets_from_doc_index(doc: pl.Series | "object", n_docs: int) -> "object":
    """Start offsets (length ``n_docs + 1``) of each document's rows in a flat array.

    ``doc`` must be sorted ascending (as :func:`tokenize` returns it); documents
    with no rows get an empty range.
    """
    import numpy as np

    counts = np.bincount(np.asarray(doc, dtype=np.int64), minlength=n_docs)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets
