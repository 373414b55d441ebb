"""The Python-side tokeniser: a document's lower-case words, with their lines and sentence marks.

Shingling hashes tokens in compiled code (``normalize.tokenize``) and never
needs their text.  Alignments do: edge statistics, direction of derivation
and ``provenance diff`` compare word sequences.  They all read them here, so
an edge's counts, its direction and the diff a user sees come from the very
same tokens: ``\\w+`` runs of the normalised text (``normalize_expr``), its
look-alike letters folded (``confusables``), lower-cased.

Each line is cut into ``token + trailing separators`` pieces by one regex, so
a token's sentence marks come from its own piece and its predecessor's, with
no Python loop over tokens.  Lines are numbered among those with tokens, as
the compiled tokeniser numbers them, so boilerplate lines found there can be
dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from provenance.prepare.confusables import fold_expr
from provenance.prepare.normalize import TOKEN_PATTERN, normalize_expr

#: A piece: a token and the non-word characters that follow it.
PIECE_PATTERN = r"\w+\W*"


def words_expr(text: pl.Expr) -> pl.Expr:
    """A text's lower-case tokens as a list column: the same tokens :func:`doc_words` reads, for vectorised counts."""
    return fold_expr(normalize_expr(text)).str.extract_all(TOKEN_PATTERN)


@dataclass(frozen=True)
class Words:
    """Lower-case tokens of a document and, per token, its line and sentence marks.

    ``lines[i]``: ordinal of token ``i``'s line among the lines with tokens;
    ``start[i]``: token ``i`` opens a sentence (first of a line, or after a
    terminal mark); ``end[i]``: a terminal mark (``.!?``) follows it.
    """

    tokens: list[str]
    lines: list[int]
    start: np.ndarray
    end: np.ndarray


EMPTY = Words([], [], np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))


def doc_words(texts: pl.Series, max_tokens: int, drop_lines: pl.DataFrame | None = None) -> list[Words]:
    """:class:`Words` of every text, at most ``max_tokens`` each.

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
        out[doc] = Words(tokens, line, np.array(start, dtype=bool), np.array(end, dtype=bool))
    return out
