"""The probable origin of every cluster: the most complete version, oriented by the form of its edits.

**Completeness.**  The origin is the *most complete version*: the member that
contains the most of what the other versions carry.  Raw length is not
completeness: pasted headlines and boilerplate make a copy longer without
making it contain more of the others.  For a member ``d`` of a cluster ``K``
and one shingle view,

    cover(d) = 1/(|K|-1) * sum over j in K, j != d of |S_d & S_j| / |S_j|

is the average share of another member's content that ``d`` holds (1 when ``d``
contains every other version entirely).  Each member counts once whatever its
length, so a complete paraphrase that contains what every partial copy took
wins over a faithful but truncated copy.  It is computed without pairs:
``sum_j |S_d & S_j| / |S_j| = sum over s in S_d of W(s) - 1`` with
``W(s) = sum over members j holding s of 1/|S_j|``, one group-by per cluster,
linear in the cluster's shingles.  ``completeness`` weighs the cover of two
views: ``anchors`` (names, places, numbers: survives spinning and paraphrase,
so it measures how much of the story a version tells) and ``words`` (whose
wording the others agree with: a spun full copy disagrees almost everywhere).
Singletons have completeness 1.

**Dates.**  With a ``published_at`` column, versions within ``date_tie`` of the
best completeness are ordered by date, earliest first, and that order stands.

**Direction.**  Without dates, shingle sets cannot orient an edge between
close versions: a child that only *adds* (a pasted headline, a spun word)
contains its parent, and set overlap reads the same edge the other way as a
truncation.  Content farms' edits are asymmetric in their *form*, which a
token alignment (``rapidfuzz`` Levenshtein opcodes) exposes:

* a synonym spinner swaps a word for a rarer one ("climate" -> "clime"), so on
  an equal-length substitution the side holding the word found in more
  clusters is the older (``trace.wordfreq``);
* text one side lacks is either *lost content* (whole sentences, or the tail:
  dropped sentences and truncation) -- the side lacking it is derived -- or a
  *fragment* (a headline glued into a paragraph, a header or footer line:
  no sentence boundaries, no terminal punctuation) -- the side holding it is
  derived.

``evidence(x, y) = sum over substitutions of sign(f(x_w) - f(y_w)) + sum over
runs of +-1`` is > 0 when ``y`` looks derived from ``x``.  The top
``origin_candidates`` members by completeness play a round robin of this
evidence (only pairs whose alignment keeps ``orient_min_kept`` of the shorter
side: heavy paraphrases carry no reliable direction, and completeness keeps
those), and the Copeland winner is the origin; ties keep the completeness
order.  Work is ``O(k^2)`` alignments per cluster: linear in the corpus.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.config import TraceOptions
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.words import Words


# ---------------------------------------------------------------------------- completeness


@numba.njit(cache=True, nogil=True, parallel=True)
def _cluster_cover(hashes, offsets, members, starts, out):  # pragma: no cover - compiled
    """cover(d) of every member, one cluster at a time (``members[starts[c]:starts[c+1]]``, rows ascending).

    Per cluster: every (shingle, member) entry sorted by shingle; a run of
    equal shingles adds ``W(s) - 1/|S_d|`` to each member ``d`` holding it.
    Memory and time are linear in the cluster's shingles (times a log).
    """
    for c in numba.prange(len(starts) - 1):
        lo, hi = starts[c], starts[c + 1]
        k = hi - lo
        total = 0
        for m in range(k):
            total += offsets[members[lo + m] + 1] - offsets[members[lo + m]]
        inverse = np.empty(k, dtype=np.float64)
        entries = np.empty(total, dtype=np.uint64)  # shingle << 32 | member
        at = 0
        for m in range(k):
            row = members[lo + m]
            size = offsets[row + 1] - offsets[row]
            inverse[m] = 1.0 / max(size, 1)
            for i in range(offsets[row], offsets[row + 1]):
                entries[at] = (np.uint64(hashes[i]) << np.uint64(32)) | np.uint64(m)
                at += 1
        entries.sort()
        cover = np.zeros(k, dtype=np.float64)
        i = 0
        while i < total:
            shingle = entries[i] >> np.uint64(32)
            j = i
            weight = 0.0
            while j < total and (entries[j] >> np.uint64(32)) == shingle:
                weight += inverse[entries[j] & np.uint64(0xFFFFFFFF)]
                j += 1
            for e in range(i, j):
                m = entries[e] & np.uint64(0xFFFFFFFF)
                cover[m] += weight - inverse[m]
            i = j
        for m in range(k):
            out[members[lo + m]] = min(max(cover[m] / max(k - 1, 1), 0.0), 1.0)


def _view_cover(cluster: np.ndarray, sets: ShingleSets, rows: np.ndarray) -> np.ndarray:
    """cover(d) of every row (see module docstring), in the order of ``rows``; ``rows`` hold whole clusters."""
    order = rows[np.argsort(cluster[rows], kind="stable")]
    grouped = cluster[order]
    starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1], [True]))) if len(order) else np.zeros(1, np.int64)
    out = np.zeros(len(cluster), dtype=np.float64)
    _cluster_cover(sets.hashes, sets.offsets, order.astype(np.int64), starts.astype(np.int64), out)
    return out[rows]


def completeness(cluster: np.ndarray, views: dict[str, ShingleSets], anchor_weight: float) -> np.ndarray:
    """Completeness in [0, 1] of every document (row index -> value): ``anchor_weight`` for anchors, the rest for words."""
    n = len(cluster)
    sizes = np.bincount(cluster, minlength=n)
    result = np.ones(n, dtype=np.float64)
    rows = np.flatnonzero(sizes[cluster] > 1)
    if len(rows) == 0:
        return result
    weights = {"anchors": anchor_weight, "words": 1.0 - anchor_weight}
    result[rows] = sum(weight * _view_cover(cluster, views[name], rows) for name, weight in weights.items())
    return result


def origin_rank(
    cluster: np.ndarray,
    complete: np.ndarray,
    n_tokens: np.ndarray,
    published: np.ndarray | None = None,
    *,
    date_tie: float,
) -> np.ndarray:
    """Rank of every document inside its cluster (0 = the origin).

    Ordered by completeness (near-ties within ``date_tie`` go to the
    earlier ``published`` date when dates are known), then length, then row
    order, so the result is total and deterministic.
    """
    frame = pl.DataFrame(
        {
            "row": np.arange(len(cluster), dtype=np.int64),
            "cluster": cluster,
            "complete": complete,
            "n_tokens": n_tokens,
        }
    )
    bucket = (pl.col("complete").max().over("cluster") - pl.col("complete")) <= date_tie
    keys = [pl.col("cluster")]
    descending = [False]
    if published is not None:
        frame = frame.with_columns(pl.Series("published", published))
        keys.append(~bucket)
        descending.append(False)
        keys.append(pl.when(bucket).then(pl.col("published")).otherwise(None))
        descending.append(False)
    keys += [pl.col("complete"), pl.col("n_tokens"), pl.col("row")]
    descending += [True, True, False]
    ordered = frame.sort(keys, descending=descending, nulls_last=True)
    ordered = ordered.with_columns(pl.int_range(pl.len()).over("cluster").alias("rank"))
    return ordered.sort("row")["rank"].to_numpy()


# ---------------------------------------------------------------------------- direction


def _runs(opcodes: list, side: int, slack: int) -> list[list[int]]:
    """Runs of tokens only one side has (``side`` 0: source, 1: destination), merged across gaps <= ``slack``."""
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
        if out and lo - out[-1][1] <= slack:
            out[-1][1] = hi
        else:
            out.append([lo, hi])
    return out


def _is_content(w: Words, s: int, e: int, options: TraceOptions) -> bool:
    """Whether ``w[s:e]`` is lost content (whole sentences, or a tail with sentences), not a pasted fragment."""
    n = len(w.tokens)
    slack = options.boundary_slack
    if e - s < options.min_sentence_tokens:
        return False
    terminals = int(w.end[s:e].sum())
    starts = bool(w.start[max(0, s - slack) : min(e, s + slack + 1)].any())
    if e == n:  # a tail: truncation may cut mid-sentence, so a start is not required
        ends = bool(w.end[n - 1]) or terminals >= 2
        return ends and (terminals >= 1 if starts else terminals >= 2)
    ends = bool(w.end[max(s, e - slack - 1) : min(n, e + slack)].any())
    return ends and starts and terminals >= 1


def evidence(
    x: Words, y: Words, frequency: dict[str, int], options: TraceOptions, consulted: list[tuple[str, str, int]] | None = None
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
    for s, e in _runs(ops, 1, options.boundary_slack):
        score += -1.0 if _is_content(y, s, e, options) else 1.0
    for s, e in _runs(ops, 0, options.boundary_slack):
        score += 1.0 if _is_content(x, s, e, options) else -1.0
    return score, kept / max(1, min(len(a), len(b)))


def refine_origins(
    cluster: np.ndarray,
    rank: np.ndarray,
    words: dict[int, Words],
    frequency: dict[str, int],
    options: TraceOptions,
    consulted: list[tuple[int, str, str, int]] | None = None,
) -> np.ndarray:
    """Rank with each cluster's origin chosen by a round robin of :func:`evidence` among its top members.

    ``consulted``, if given, receives ``(cluster, word, word, sign)`` for every
    frequency comparison the round robin made.
    """
    top = np.flatnonzero(rank < options.origin_candidates)
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
                score, kept = evidence(words[members[i]], words[members[j]], frequency, options, seen)
                if kept >= options.orient_min_kept and score != 0:
                    wins[i if score > 0 else j] += 1
                    wins[j if score > 0 else i] -= 1
        winner[cluster[members[0]]] = members[int(np.argmax(wins))]  # first max: completeness breaks ties
        if consulted is not None and seen:
            c = int(cluster[members[0]])
            consulted.extend((c, wa, wb, sign) for wa, wb, sign in set(seen))
    return _promote(cluster, rank, winner)


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
