"""A document's lower-case words as Python strings, with their lines and sentence marks.

Shingling hashes tokens in compiled code (``normalize.tokenize``) and never
needs their text.  Alignments do: edge statistics, direction of derivation
and ``provenance diff`` compare word sequences.  They all read them here, so
an edge's counts, its direction and the diff a user sees come from the very
same tokens, and those are the shingles' tokens: :func:`doc_words` runs the
tokeniser's own compiled pass over the tokeniser's own buffer
(``normalize.token_buffer``: NFKC where it changes tokens) and spells each
token with the tokeniser's lower-case table (look-alike letters folded), so
``normalize.token_hashes`` of a token is its shingle hash.

The sentence marks follow one rule: a token closes a sentence when ``.!?``
(or a character NFKC spells with them: ``\u2026``, ``\u203c``, ...) stands
in the text between it and the next token of its line; a token opens one
when it is the first of its line or its predecessor closes one.  Lines are
numbered among those with tokens, as the compiled tokeniser numbers them,
so boilerplate lines found there can be dropped here.  ``words_expr`` is
the vectorised (polars ``\\w``) reading of the same tokens, for counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from provenance.prepare.confusables import fold_expr
from provenance.prepare import normalize
from provenance.prepare.normalize import TOKEN_PATTERN, decode_utf8, normalize_expr

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
    lines: np.ndarray
    start: np.ndarray
    end: np.ndarray


EMPTY = Words([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))


#: Code points that end a sentence when they follow a token: ``.!?`` and the
#: characters NFKC spells with them (the ellipsis and double marks), which the
#: tokeniser's buffer keeps as they are.
TERMINALS = (0x2E, 0x21, 0x3F, 0x2026, 0x203C, 0x2047, 0x2048, 0x2049)


@numba.njit(cache=True, nogil=True)
def _is_terminal(cp):  # pragma: no cover - compiled
    return cp == 0x2E or cp == 0x21 or cp == 0x3F or cp == 0x2026 or cp == 0x203C or (0x2047 <= cp <= 0x2049)


@numba.njit(cache=True, nogil=True)
def _put_utf8(out, at, cp):  # pragma: no cover - compiled
    """Write code point ``cp`` (BMP) as UTF-8 at ``out[at]``; return the next position."""
    if cp < 0x80:
        out[at] = cp
        return at + 1
    if cp < 0x800:
        out[at] = 0xC0 | (cp >> 6)
        out[at + 1] = 0x80 | (cp & 0x3F)
        return at + 2
    out[at] = 0xE0 | (cp >> 12)
    out[at + 1] = 0x80 | ((cp >> 6) & 0x3F)
    out[at + 2] = 0x80 | (cp & 0x3F)
    return at + 3


@numba.njit(cache=True, nogil=True)
def _words_doc(buf, start, end, cls, lower, max_tokens, fill, t0, b0, out, t_line, t_start, t_end):  # pragma: no cover - compiled
    """Count (and with ``fill`` write from token ``t0``, byte ``b0``) one document's tokens: ``(tokens, bytes)``.

    The tokeniser's own pass (``normalize.scan_doc``: word-character runs,
    lower-cased and look-alikes folded by its table), spelled out as UTF-8
    words joined by single spaces, with each token's line (among lines with
    tokens), whether it opens a sentence (first of its line, or the text
    before it on its line holds a terminal mark) and whether it closes one
    (a terminal mark follows before the next token of its line).
    """
    nt, nb = t0, b0
    i = start
    line = 0
    line_tokens = 0
    in_tok = False
    marked = False  # a terminal mark since the last token of this line
    tok_len = 0
    last_src = 0
    while True:
        at_end = i >= end
        if at_end:
            cp, size = 10, 1
        else:
            cp, size = decode_utf8(buf, i, end)
        c = cls[cp] if cp < 0x10000 else np.uint8(0)
        if c & 1:
            if not in_tok:
                if nt - t0 >= max_tokens:  # the cap: the last token's mark is what came since it
                    if fill and line_tokens > 0:
                        t_end[nt - 1] = marked
                    break
                in_tok = True
                if fill:
                    if nt > t0:
                        out[nb] = 0x20
                    t_line[nt] = line
                    t_start[nt] = line_tokens == 0 or marked
                    if nt > t0 and line_tokens > 0:
                        t_end[nt - 1] = marked
                nb += 1 if nt > t0 else 0
                marked = False
                nt += 1
                line_tokens += 1
                tok_len = 0
            low = np.int64(lower[cp])
            if fill:
                _put_utf8(out, nb, low)
            nb += 1 if low < 0x80 else (2 if low < 0x800 else 3)
            tok_len += 1
            last_src = cp
        else:
            if in_tok and fill and tok_len > 1 and (last_src == 0x03A3 or last_src == 0x03C2):
                out[nb - 1] = 0x82  # a word-final sigma is spelled as lower-casing spells it: \u03c2, not \u03c3
            in_tok = False
            if line_tokens > 0 and _is_terminal(cp):
                marked = True
        if cp == 10:
            if line_tokens > 0:
                if fill:
                    t_end[nt - 1] = marked
                line += 1
            line_tokens = 0
            marked = False
            if at_end:
                break
        i += size
    return nt - t0, nb - b0


@numba.njit(cache=True, nogil=True, parallel=True)
def _count_words(buf, offsets, cls, lower, max_tokens):  # pragma: no cover - compiled
    n = len(offsets) - 1
    tokens = np.zeros(n, dtype=np.int64)
    nbytes = np.zeros(n, dtype=np.int64)
    eb, ei, eo = np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.bool_)
    for d in numba.prange(n):
        tokens[d], nbytes[d] = _words_doc(buf, offsets[d], offsets[d + 1], cls, lower, max_tokens, False, 0, 0, eb, ei, eo, eo)
    return tokens, nbytes


@numba.njit(cache=True, nogil=True, parallel=True)
def _fill_words(buf, offsets, cls, lower, max_tokens, t_lo, b_lo, out, t_line, t_start, t_end):  # pragma: no cover - compiled
    for d in numba.prange(len(offsets) - 1):
        _words_doc(buf, offsets[d], offsets[d + 1], cls, lower, max_tokens, True, t_lo[d], b_lo[d], out, t_line, t_start, t_end)


def doc_words(texts: pl.Series, max_tokens: int, drop_lines: pl.DataFrame | None = None) -> list[Words]:
    """:class:`Words` of every text, at most ``max_tokens`` each: one compiled pass, then one ``str.split`` per text.

    ``drop_lines`` (``doc`` = position in ``texts``, ``line`` = ordinal among
    its lines with tokens) names lines to leave out, e.g. boilerplate; kept
    tokens keep their line numbers, and ``max_tokens`` counts kept tokens.
    """
    if len(texts) == 0:
        return []
    buf, offsets = normalize.token_buffer(texts.cast(pl.String).fill_null(""))
    cls, lower = normalize.char_tables()
    dropping = drop_lines is not None and drop_lines.height > 0
    cap = np.iinfo(np.int64).max if dropping else max(int(max_tokens), 0)
    n_tok, n_bytes = _count_words(buf, offsets, cls, lower, cap)
    t_lo = np.zeros(len(n_tok) + 1, dtype=np.int64)
    b_lo = np.zeros(len(n_tok) + 1, dtype=np.int64)
    np.cumsum(n_tok, out=t_lo[1:])
    np.cumsum(n_bytes, out=b_lo[1:])
    out = np.zeros(int(b_lo[-1]), dtype=np.uint8)
    t_line = np.zeros(int(t_lo[-1]), dtype=np.int64)
    t_start = np.zeros(int(t_lo[-1]), dtype=np.bool_)
    t_end = np.zeros(int(t_lo[-1]), dtype=np.bool_)
    _fill_words(buf, offsets, cls, lower, cap, t_lo, b_lo, out, t_line, t_start, t_end)
    raw = out.tobytes()
    keep = _kept(drop_lines, t_lo, t_line, max_tokens) if dropping else None
    words = [EMPTY] * len(texts)
    for d in np.flatnonzero(n_tok).tolist():
        lo, hi = int(t_lo[d]), int(t_lo[d + 1])
        tokens = raw[b_lo[d] : b_lo[d + 1]].decode("utf-8").split(" ")
        if keep is None:
            words[d] = Words(tokens, t_line[lo:hi], t_start[lo:hi], t_end[lo:hi])
            continue
        mine = np.flatnonzero(keep[lo:hi])
        if len(mine):
            words[d] = Words([tokens[k] for k in mine.tolist()], t_line[lo:hi][mine], t_start[lo:hi][mine], t_end[lo:hi][mine])
    return words


def _kept(drop_lines: pl.DataFrame, t_lo: np.ndarray, t_line: np.ndarray, max_tokens: int) -> np.ndarray:
    """Per token: its line is not dropped, and it is among its document's first ``max_tokens`` kept tokens."""
    doc = np.repeat(np.arange(len(t_lo) - 1, dtype=np.int64), np.diff(t_lo))
    drop = drop_lines["doc"].cast(pl.Int64).to_numpy() * (1 << 32) + drop_lines["line"].cast(pl.Int64).to_numpy()
    keep = ~np.isin(doc * (1 << 32) + t_line, drop)
    kept_so_far = np.r_[0, np.cumsum(keep)]
    rank = kept_so_far[1:] - np.repeat(kept_so_far[t_lo[:-1]], np.diff(t_lo))  # 1-based among the document's kept tokens
    return keep & (rank <= max_tokens)
