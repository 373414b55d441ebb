"""Which of two close versions was derived from the other, and how far each member is from its origin.

Shingle sets cannot orient an edge: a child that only *adds* (a pasted
headline, a spun word) contains its parent, and set overlap reads the same
edge the other way as a truncation.  Content farms' edits are asymmetric in
their *form*, which a token alignment (``rapidfuzz`` Levenshtein opcodes, as
in :mod:`provenance.changes`) exposes:

* a synonym spinner swaps a word for a rarer one ("climate" -> "clime"), so on
  an equal-length substitution the side holding the word found in more
  clusters of the batch is the older;
* text one side lacks is either *lost content* (whole sentences, or the tail:
  dropped sentences and truncation) -- the side lacking it is derived -- or a
  *fragment* (a headline glued into a paragraph, a header or footer line:
  no sentence boundaries, no terminal punctuation) -- the side holding it is
  derived.

``evidence(x, y) = sum over substitutions of sign(f(x_w) - f(y_w)) + sum over
runs of +-1`` is > 0 when ``y`` looks derived from ``x``; it is antisymmetric
up to alignment ties.

:func:`refine_origins` lets the top :data:`TOP_K` members by completeness
play a round robin of this evidence (only pairs whose alignment keeps
:data:`MIN_KEPT` of the shorter side: heavy paraphrases carry no reliable
direction, and completeness keeps those) and makes the Copeland winner the
origin; ties keep the completeness order.  :func:`edit_depth` aligns every
member to its origin once and counts its derived changes (substituted or
inserted positions, lost runs and tokens): changes accumulate along a
derivation, so a parent is expected to have fewer than its children, which
orders candidate parents better than completeness does.  Work is
``O(k^2)`` alignments per cluster plus one per member: linear in the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.changes import MAX_ALIGN_TOKENS
from provenance.normalize import normalize_expr

#: Members (by completeness) that compete for origin.
TOP_K = 5
#: A pair is oriented only when this share of the shorter side aligns verbatim.
MIN_KEPT = 0.75
#: Runs shorter than this are neither a sentence nor evidence of one.
MIN_SENTENCE = 6
#: Token-boundary tolerance when matching a run to sentence boundaries.
SLACK = 3
#: Weights of the change count of :func:`edit_depth`: per lost run, per lost token.
LOST_RUN_WEIGHT = 1.0
LOST_TOKEN_WEIGHT = 0.2

_TOKEN = re.compile(r"\w+")
_TERMINAL = re.compile(r"[.!?]")


@dataclass(frozen=True)
class Words:
    """Lower-case tokens of a document without its boilerplate lines, with sentence flags.

    ``start[i]``: token ``i`` opens a sentence (first of a line, or after a
    terminal mark); ``end[i]``: a terminal mark (``.!?``) follows it.
    """

    tokens: list[str]
    start: np.ndarray
    end: np.ndarray


def doc_words(texts: pl.Series, rows: np.ndarray, boilerplate: pl.DataFrame) -> dict[int, Words]:
    """:class:`Words` of every row in ``rows``; ``boilerplate`` holds ``doc, line`` pairs to drop.

    Vectorised: each line is cut into ``token + trailing separators`` pieces
    by one regex, so a token's sentence flags come from its own piece and its
    predecessor's, with no Python loop over tokens.  Lines are numbered among
    those with tokens, as the tokeniser numbers them.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return {}
    lines = (
        pl.DataFrame({"row": rows, "text": texts.gather(rows)})
        .select("row", normalize_expr(pl.col("text")).str.split("\n").alias("line_text"))
        .explode("line_text")
        .with_columns(pl.col("line_text").str.extract_all(r"\w+\W*").alias("piece"))
        .filter(pl.col("piece").list.len() > 0)
        .with_columns(pl.int_range(pl.len()).over("row").cast(pl.Int32).alias("line"))
    )
    if boilerplate is not None and boilerplate.height:
        drop = boilerplate.select(pl.col("doc").cast(pl.Int64).alias("row"), pl.col("line").cast(pl.Int32))
        lines = lines.join(drop, on=["row", "line"], how="anti")
    pieces = (
        lines.select("row", "line", "piece")
        .explode("piece")
        .with_columns(
            pl.col("piece").str.extract(r"^(\w+)", 1).str.to_lowercase().alias("token"),
            pl.col("piece").str.replace(r"^\w+", "").str.contains(r"[.!?]").alias("end"),
        )
        .with_columns(
            (pl.col("end").shift(1).over("row", "line").fill_null(True)).alias("start"),
        )
    )
    grouped = pieces.group_by("row", maintain_order=True).agg(
        pl.col("token").head(MAX_ALIGN_TOKENS), pl.col("start").head(MAX_ALIGN_TOKENS), pl.col("end").head(MAX_ALIGN_TOKENS)
    )
    out = {int(r): Words([], np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)) for r in rows.tolist()}
    for row, tokens, start, end in grouped.iter_rows():
        out[int(row)] = Words(tokens, np.array(start, dtype=bool), np.array(end, dtype=bool))
    return out


#: Singletons sampled as the corpus's sample of ordinary word use.
FREQUENCY_SAMPLE = 20_000


def frequency_sample(cluster: np.ndarray, doc_keys: np.ndarray) -> np.ndarray:
    """Rows of the :data:`FREQUENCY_SAMPLE` singletons with the smallest ``doc_keys`` (hashes of their ids).

    A bottom-k sample by id hash: deterministic, independent of row order, and
    stable as a corpus grows (a new singleton enters only if its hash is among
    the k smallest), so an incremental run samples what a full run would.
    """
    singles = np.flatnonzero(np.bincount(cluster, minlength=len(cluster))[cluster] == 1)
    if len(singles) <= FREQUENCY_SAMPLE:
        return singles
    keys = doc_keys[singles]
    chosen = np.argpartition(keys, FREQUENCY_SAMPLE - 1)[:FREQUENCY_SAMPLE]
    return np.sort(singles[chosen])


def cluster_frequency(cluster: np.ndarray, texts: pl.Series, rows: np.ndarray) -> pl.DataFrame:
    """``token, n``: in how many clusters the documents of ``rows`` use each token (a copy tree counts once).

    Callers count whole clusters per call (or singletons), so counts of
    several calls add up; ``rows`` are the members of multi-document clusters
    plus :func:`frequency_sample`'s singletons: enough to tell a common word
    from a spinner's rare synonym, at a bounded cost at any corpus size.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return pl.DataFrame(schema={"token": pl.String, "n": pl.UInt32})
    return (
        pl.DataFrame({"cluster": cluster[rows], "text": texts.gather(rows)})
        .select("cluster", normalize_expr(pl.col("text")).str.to_lowercase().str.extract_all(r"\w+").alias("token"))
        .explode("token")
        .drop_nulls()
        .unique()
        .group_by("token")
        .agg(pl.len().alias("n"))
    )


def _runs(opcodes: list, side: int) -> list[list[int]]:
    """Runs of tokens only one side has (``side`` 0: source, 1: destination), merged across gaps <= SLACK."""
    out: list[list[int]] = []
    for op in opcodes:
        if op.tag == "equal":
            continue
        s0, s1, d0, d1 = op.src_start, op.src_end, op.dest_start, op.dest_end
        if op.tag == "replace":
            if s1 - s0 == d1 - d0 <= 3:
                continue
            k = min(s1 - s0, d1 - d0)
            s0, d0 = s0 + k, d0 + k
        lo, hi = (s0, s1) if side == 0 else (d0, d1)
        if hi <= lo:
            continue
        if out and lo - out[-1][1] <= SLACK:
            out[-1][1] = hi
        else:
            out.append([lo, hi])
    return out


def _is_content(w: Words, s: int, e: int) -> bool:
    """Whether ``w[s:e]`` is lost content (whole sentences, or a tail with sentences), not a pasted fragment."""
    n = len(w.tokens)
    if e - s < MIN_SENTENCE:
        return False
    terminals = int(w.end[s:e].sum())
    starts = bool(w.start[max(0, s - SLACK) : min(e, s + SLACK + 1)].any())
    if e == n:  # a tail: truncation may cut mid-sentence, so a start is not required
        ends = bool(w.end[n - 1]) or terminals >= 2
        return ends and (terminals >= 1 if starts else terminals >= 2)
    ends = bool(w.end[max(s, e - SLACK - 1) : min(n, e + SLACK)].any())
    return ends and starts and terminals >= 1


def evidence(
    x: Words, y: Words, frequency: dict[str, int], consulted: list[tuple[str, str, int]] | None = None
) -> tuple[float, float]:
    """``(score, kept)``: score > 0 when ``y`` looks derived from ``x``; kept = verbatim share of the shorter.

    ``consulted``, if given, receives every ``(word of x, word of y, sign)``
    comparison of frequencies made, so a later run can tell whether a grown
    corpus would have decided differently (:func:`decisions_hold`).
    """
    a, b = x.tokens, y.tokens
    ops = Levenshtein.opcodes(a, b)
    kept = sum(op.src_end - op.src_start for op in ops if op.tag == "equal")
    score = 0.0
    for op in ops:
        if op.tag == "replace" and op.src_end - op.src_start == op.dest_end - op.dest_start <= 3:
            for i in range(op.src_end - op.src_start):
                wa, wb = a[op.src_start + i], b[op.dest_start + i]
                sign = int(np.sign(frequency.get(wa, 0) - frequency.get(wb, 0)))
                score += sign
                if consulted is not None:
                    consulted.append((wa, wb, sign))
    for s, e in _runs(ops, 1):
        score += -1.0 if _is_content(y, s, e) else 1.0
    for s, e in _runs(ops, 0):
        score += 1.0 if _is_content(x, s, e) else -1.0
    return score, kept / max(1, min(len(a), len(b)))


def refine_origins(
    cluster: np.ndarray,
    rank: np.ndarray,
    words: dict[int, Words],
    frequency: dict[str, int],
    consulted: list[tuple[int, str, str, int]] | None = None,
) -> np.ndarray:
    """Rank with each cluster's origin chosen by a round robin of :func:`evidence` among its top members.

    ``consulted``, if given, receives ``(cluster, word, word, sign)`` for every
    frequency comparison the round robin made.
    """
    top = np.flatnonzero(rank < TOP_K)
    top = top[np.bincount(cluster, minlength=len(cluster))[cluster[top]] > 1]
    order = np.lexsort((rank[top], cluster[top]))
    top = top[order]
    bounds = np.flatnonzero(np.diff(cluster[top], prepend=-1, append=-1))
    winner = np.full(len(cluster), -1, dtype=np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        members = top[lo:hi]
        wins = np.zeros(len(members))
        seen: list[tuple[str, str, int]] | None = [] if consulted is not None else None
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                score, kept = evidence(words[members[i]], words[members[j]], frequency, seen)
                if kept >= MIN_KEPT and score != 0:
                    wins[i if score > 0 else j] += 1
                    wins[j if score > 0 else i] -= 1
        winner[cluster[members[0]]] = members[int(np.argmax(wins))]  # first max: completeness breaks ties
        if consulted is not None and seen:
            c = int(cluster[members[0]])
            consulted.extend((c, wa, wb, sign) for wa, wb, sign in set(seen))
    return _promote(cluster, rank, winner)


def decisions_hold(consulted: pl.DataFrame, frequency: dict[str, int]) -> pl.DataFrame:
    """Per ``key`` of ``consulted`` (``key, word_a, word_b, sign``): whether every sign is unchanged under ``frequency``.

    An origin chosen under an older corpus's frequencies still stands if no
    frequency comparison it consulted would come out differently now.
    """
    table = pl.DataFrame({"word": list(frequency), "n": list(frequency.values())}, schema={"word": pl.String, "n": pl.Int64})
    return (
        consulted.join(table.rename({"word": "word_a", "n": "n_a"}), on="word_a", how="left")
        .join(table.rename({"word": "word_b", "n": "n_b"}), on="word_b", how="left")
        .with_columns((pl.col("n_a").fill_null(0) - pl.col("n_b").fill_null(0)).sign().cast(pl.Int8).alias("now"))
        .group_by("key")
        .agg((pl.col("now") == pl.col("sign")).all().alias("holds"))
    )


def _promote(cluster: np.ndarray, rank: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Rank with ``origin[c]`` (row, or -1 to keep) moved to rank 0 of cluster ``c``."""
    key = rank.astype(np.float64)
    chosen = origin[origin >= 0]
    key[chosen] = -1.0
    order = np.lexsort((np.arange(len(rank)), key, cluster))
    out = np.empty(len(rank), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(cluster[order])) + 1]
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out[order] = position
    return out


def edit_depth(cluster: np.ndarray, rank: np.ndarray, words: dict[int, Words]) -> np.ndarray:
    """Derived changes of every member relative to its origin (0 for origins and singletons).

    ``changed positions of the origin (substituted, or with an insertion) +
    LOST_RUN_WEIGHT * lost runs + LOST_TOKEN_WEIGHT * lost tokens``.
    """
    n = len(cluster)
    origin_of = np.full(n, -1, dtype=np.int64)
    roots = np.flatnonzero(rank == 0)
    origin_of[cluster[roots]] = roots
    depth = np.zeros(n)
    for x in np.flatnonzero(rank > 0).tolist():
        o = words[int(origin_of[cluster[x]])].tokens
        keep = np.zeros(len(o), dtype=bool)
        changed = np.zeros(len(o) + 1, dtype=bool)
        for op in Levenshtein.opcodes(o, words[x].tokens):
            s0, s1, d0, d1 = op.src_start, op.src_end, op.dest_start, op.dest_end
            if op.tag == "equal":
                keep[s0:s1] = True
            elif op.tag == "replace":
                k = min(s1 - s0, d1 - d0)
                keep[s0 : s0 + k] = True
                changed[s0 : s0 + k] = True
                changed[s0 + k] |= d1 - d0 > k
            elif op.tag == "insert":
                changed[s0] = True
        lost = (~keep).astype(np.int8)
        lost_runs = int((np.diff(lost, prepend=0) == 1).sum())
        depth[x] = changed.sum() + LOST_RUN_WEIGHT * lost_runs + LOST_TOKEN_WEIGHT * lost.sum()
    return depth


def order_by_depth(cluster: np.ndarray, rank: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Rank inside each cluster by (edit depth, previous rank): the origin stays first."""
    order = np.lexsort((rank, depth, cluster))
    out = np.empty(len(rank), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(cluster[order])) + 1]
    out[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return out
