"""Aligned passages between two documents, and the decision that they are versions of one text.

Two texts are versions of one text when they share *aligned passages*: runs of
sentences matched verbatim, spun (words swapped in place) or lightly
rewritten.  Shared names, shared quotations, stock phrases and one or two
shared sentences are not enough: every article on an event shares those.  Per
pair, ``S`` is the document with less content (``link.units``: unquoted tokens
of sentences) and ``L`` the other:

1. **Bound** (exact, cheap): a unit of ``S`` can match a unit of ``L`` only if
   they share enough content stems, counted for all unit pairs at once by one
   merge of the two documents' stem-sorted inverted indexes (LCS is at most the
   shared stems plus the smaller stopword count; Dice follows from the count).
   If the units of ``S`` that could match anything weigh less than
   ``min_evidence_share`` of its content, no alignment can make an edge.
2. **Unit matches**: verbatim (same tokens), spun (LCS at least
   ``spun_min_agreement`` of the longer unit and ``spun_min_tokens``) or
   rewritten (content-stem Dice at least ``rewrite_min_dice`` with
   ``rewrite_min_stems`` shared); each unit of ``S`` takes its best unit of
   ``L`` (closer kind first, then similarity), one to one.
3. **Passages**: matches at most ``max_gap`` sentences apart in both
   documents chain (in any order in ``L``: swapped sentences and moved
   paragraphs form their own passages).
4. **Evidence**: a matched unit is evidence unless its line floats
   (``link.units``); a sentence of a floating line is evidence when it is
   matched next to a matched unit of *another* line of its passage (that
   order is the documents' own, not the furniture's), unless the two lines
   are a floating block together.  Headings and quotes add structure, never tokens.
5. **Decision**: a passage *qualifies* with ``min_passage_units`` evidence
   units and ``min_passage_tokens`` evidence tokens; a pair is an edge when a
   passage qualifies and the evidence (qualifying passages, plus the pair's
   other evidence matches once one qualifies) covers ``min_evidence_share`` of
   ``S``'s content, or ``min_share_few`` when the evidence is fewer than
   ``few_units`` units.

Cost: one compiled pass per pair, a few µs for a chance candidate (the bound
rejects it) and tens of µs for a real copy; nothing grows with a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from provenance.config import EvidenceOptions
from provenance.link.units import COUNTABLE, Floating, Units, build_units

PARAM_NAMES = ("spun_min_agreement", "spun_min_tokens", "rewrite_min_dice", "rewrite_min_stems", "max_gap",
               "min_passage_units", "min_passage_tokens", "min_evidence_share", "few_units", "min_share_few")
_AGREE, _SPUN_TOK, _DICE, _STEMS, _GAP, _UNITS, _TOKENS, _SHARE, _FEW, _SHARE_FEW = range(len(PARAM_NAMES))

KIND_VERBATIM, KIND_SPUN, KIND_REWRITTEN = 0, 1, 2
#: ``kind`` of a passage: the loosest unit match inside it.
KIND_NAMES = ("verbatim", "spun", "rewritten")


def params(options: EvidenceOptions) -> np.ndarray:
    """The rule's constants as the float array the compiled code reads."""
    return np.array([float(getattr(options, name)) for name in PARAM_NAMES])


@numba.njit(cache=True, nogil=True)
def _lcs(tok, a_lo, a_hi, b_lo, b_hi):  # pragma: no cover - compiled
    """Length of the longest common subsequence of two token runs (two-row DP)."""
    n = b_hi - b_lo
    prev = np.zeros(n + 1, dtype=np.int32)
    cur = np.zeros(n + 1, dtype=np.int32)
    for i in range(a_lo, a_hi):
        t = tok[i]
        for j in range(n):
            if tok[b_lo + j] == t:
                cur[j + 1] = prev[j] + 1
            else:
                cur[j + 1] = max(cur[j], prev[j + 1])
        prev, cur = cur, prev
    return prev[n]


@numba.njit(cache=True, nogil=True)
def _common_sorted(x, a_lo, a_hi, b_lo, b_hi):  # pragma: no cover - compiled
    """Size of the intersection of two sorted distinct runs of ``x``."""
    i, j, c = a_lo, b_lo, 0
    while i < a_hi and j < b_hi:
        a, b = x[i], x[j]
        c += a == b
        i += a <= b
        j += b <= a
    return c


@numba.njit(cache=True, nogil=True)
def _shared_stems(inv_lo, inv_stem, inv_unit, s_doc, l_doc, m, n):  # pragma: no cover - compiled
    """``counts[i, j]``: content stems unit i of S shares with unit j of L.

    One linear merge of the two documents' inverted indexes (both sorted by stem).
    """
    counts = np.zeros((m, n), dtype=np.int16)
    i, i_end = inv_lo[s_doc], inv_lo[s_doc + 1]
    j, j_end = inv_lo[l_doc], inv_lo[l_doc + 1]
    while i < i_end and j < j_end:
        a, b = inv_stem[i], inv_stem[j]
        if a < b:
            i += 1
        elif b < a:
            j += 1
        else:
            i2, j2 = i, j
            while i2 < i_end and inv_stem[i2] == a:
                i2 += 1
            while j2 < j_end and inv_stem[j2] == a:
                j2 += 1
            for p in range(i, i2):
                for q in range(j, j2):
                    counts[inv_unit[p], inv_unit[q]] += 1
            i, j = i2, j2
    return counts


@numba.njit(cache=True, nogil=True, inline="always")
def _could_match(counts, i, j, u, v, tok_lo, stem_lo, n_stop, prm):  # pragma: no cover - compiled
    """(spun possible, rewritten possible) from the stem count alone: exact upper bounds.

    LCS <= shared content stems + the smaller stopword count; Dice from the stem count.
    """
    common = counts[i, j]
    longer = max(tok_lo[u + 1] - tok_lo[u], tok_lo[v + 1] - tok_lo[v])
    lcs_bound = common + min(n_stop[u], n_stop[v])
    spun_ok = lcs_bound >= prm[_SPUN_TOK] and lcs_bound >= prm[_AGREE] * longer
    ca, cb = stem_lo[u + 1] - stem_lo[u], stem_lo[v + 1] - stem_lo[v]
    rew_ok = common >= prm[_STEMS] and 2.0 * common >= prm[_DICE] * (ca + cb)
    return spun_ok, rew_ok


@numba.njit(cache=True, nogil=True)
def _possible(counts, tok_lo, stem_lo, n_stop, s_lo, l_lo, prm):  # pragma: no cover - compiled
    """Per unit of S: could it match any unit of L (the bound of step 1)."""
    m, n = counts.shape
    out = np.zeros(m, dtype=np.bool_)
    for i in range(m):
        for j in range(n):
            if counts[i, j] == 0:
                continue
            spun_ok, rew_ok = _could_match(counts, i, j, s_lo + i, l_lo + j, tok_lo, stem_lo, n_stop, prm)
            if spun_ok or rew_ok:
                out[i] = True
                break
    return out


@numba.njit(cache=True, nogil=True)
def _unit_scores(counts, tok_lo, tok, stem_lo, n_stop, key, s_lo, l_lo, prm):  # pragma: no cover - compiled
    """Best match in L of every unit of S: (partner, similarity, kind), -1 where none."""
    m, n = counts.shape
    partner = np.full(m, -1, dtype=np.int64)
    sim = np.zeros(m)
    kind = np.full(m, -1, dtype=np.int64)
    for i in range(m):
        u = s_lo + i
        la, ca = tok_lo[u + 1] - tok_lo[u], stem_lo[u + 1] - stem_lo[u]
        best_sim, best_j, best_kind = 0.0, -1, -1
        for j in range(n):
            if counts[i, j] == 0:
                continue
            v = l_lo + j
            spun_ok, rew_ok = _could_match(counts, i, j, u, v, tok_lo, stem_lo, n_stop, prm)
            if not (spun_ok or rew_ok):
                continue
            lb, cb = tok_lo[v + 1] - tok_lo[v], stem_lo[v + 1] - stem_lo[v]
            longer = max(la, lb)
            sv, kv = 0.0, -1
            if key[u] == key[v] and la == lb:
                sv, kv = 1.0, KIND_VERBATIM
            if kv < 0 and spun_ok:
                agree = _lcs(tok, tok_lo[u], tok_lo[u + 1], tok_lo[v], tok_lo[v + 1])
                if agree >= prm[_SPUN_TOK] and agree >= prm[_AGREE] * longer:
                    sv, kv = agree / longer, (KIND_VERBATIM if agree == la and agree == lb else KIND_SPUN)
            if kv < 0 and rew_ok:
                # The merge counted each shared stem once per unit pair: stems are distinct within a unit.
                dice = 2.0 * counts[i, j] / (ca + cb)
                if counts[i, j] >= prm[_STEMS] and dice >= prm[_DICE]:
                    sv, kv = dice, KIND_REWRITTEN
            # The closer kind wins, then the higher similarity.
            if kv >= 0 and (best_kind < 0 or kv < best_kind or (kv == best_kind and sv > best_sim)):
                best_sim, best_j, best_kind = sv, j, kv
        partner[i], sim[i], kind[i] = best_j, best_sim, best_kind
    return partner, sim, kind


@numba.njit(cache=True, nogil=True)
def _one_to_one(partner, sim, kind, n):  # pragma: no cover - compiled
    """Where several units of S claim one unit of L, keep the best claim (in place)."""
    best = np.full(n, -1, dtype=np.int64)
    for i in range(len(partner)):
        j = partner[i]
        if j < 0:
            continue
        k = best[j]
        if k < 0 or kind[i] < kind[k] or (kind[i] == kind[k] and sim[i] > sim[k]):
            best[j] = i
    for i in range(len(partner)):
        j = partner[i]
        if j >= 0 and best[j] != i:
            partner[i], kind[i], sim[i] = -1, -1, 0.0


@numba.njit(cache=True, nogil=True)
def _root(parent, x):  # pragma: no cover - compiled
    while parent[x] != x:
        x = parent[x]
    return x


@numba.njit(cache=True, nogil=True)
def _passages(pos2, s_lo, l_lo, partner, prm):  # pragma: no cover - compiled
    """Passage label (its first unit) of every matched unit of S, -1 unmatched.

    Two matches join when they are at most :data:`MAX_GAP` sentences apart in S
    and in L (``pos2`` counts half-sentences), in any order in L.
    """
    m = len(partner)
    parent = np.arange(m)
    idx = np.flatnonzero(partner >= 0)
    reach = 2 * prm[_GAP]
    for x in range(len(idx)):
        i = idx[x]
        for y in range(x + 1, len(idx)):
            k = idx[y]
            if pos2[s_lo + k] - pos2[s_lo + i] > reach:
                break
            if abs(pos2[l_lo + partner[k]] - pos2[l_lo + partner[i]]) <= reach:
                ri, rk = _root(parent, i), _root(parent, k)
                if ri != rk:
                    parent[max(ri, rk)] = min(ri, rk)
    label = np.full(m, -1, dtype=np.int64)
    for i in idx:
        label[i] = _root(parent, i)
    return label


@numba.njit(cache=True, nogil=True)
def _evidence(kind_arr, floating, line, link_floats, next_line, pos2, s_lo, l_lo, partner, label, prm):  # pragma: no cover - compiled
    """Which matched units of S are evidence (see the module doc, step 4).

    A unit that does not float is.  A sentence of a floating line is when its
    line is *linked*: some matched unit of that line has, in the same passage and
    within the gap in both documents, a matched unit of *another* line that is a
    sentence or does not float, unless both lines float and they are
    consecutive lines whose adjacency floats too (a recurring block of lines).
    The order across lines is then S's own, while a recurring block (a floating
    paragraph, a footer of several lines) only ever links to itself.
    """
    m = len(partner)
    out = np.zeros(m, dtype=np.bool_)
    linked = np.zeros(m, dtype=np.bool_)  # per matched unit: it touches another line (as above)
    reach = 2 * prm[_GAP]
    idx = np.flatnonzero(label >= 0)
    for x in range(len(idx)):
        j = idx[x]
        for y in range(x + 1, len(idx)):
            k = idx[y]
            if pos2[s_lo + k] - pos2[s_lo + j] > reach:
                break
            if label[k] != label[j] or line[s_lo + k] == line[s_lo + j]:
                continue
            if abs(pos2[l_lo + partner[k]] - pos2[l_lo + partner[j]]) > reach:
                continue
            if floating[s_lo + j] and floating[s_lo + k]:
                first, second = (j, k) if line[s_lo + j] < line[s_lo + k] else (k, j)
                if next_line[s_lo + first] == line[s_lo + second] and link_floats[s_lo + first]:
                    continue  # two lines of one recurring block
            if kind_arr[s_lo + k] == COUNTABLE or not floating[s_lo + k]:
                linked[j] = True
            if kind_arr[s_lo + j] == COUNTABLE or not floating[s_lo + j]:
                linked[k] = True
    for i in idx:
        u = s_lo + i
        sentence = kind_arr[u] == COUNTABLE
        if not floating[u]:
            out[i] = True
        elif sentence:  # a floating heading or quote is furniture or a stock quote wherever it is
            for j in idx:
                if linked[j] and label[j] == label[i] and line[s_lo + j] == line[u]:
                    out[i] = True
                    break
    return out


@numba.njit(cache=True, nogil=True)
def _decide(weight, evidence, label, s_lo, prm):  # pragma: no cover - compiled
    """(evidence tokens counted, qualifying passages, largest passage tokens, its evidence units, evidence units counted)."""
    m = len(label)
    units = np.zeros(m, dtype=np.int64)
    tokens = np.zeros(m, dtype=np.int64)
    for i in range(m):
        if evidence[i]:
            units[label[i]] += 1
            tokens[label[i]] += weight[s_lo + i]
    aligned, n_pass, best_tok, best_units, rest, n_units, rest_units = 0, 0, 0, 0, 0, 0, 0
    for r in range(m):
        if units[r] >= prm[_UNITS] and tokens[r] >= prm[_TOKENS]:
            aligned += tokens[r]
            n_units += units[r]
            n_pass += 1
        else:
            rest += tokens[r]
            rest_units += units[r]
        if tokens[r] > best_tok:
            best_tok, best_units = tokens[r], units[r]
    if n_pass > 0:
        aligned += rest  # the pair is shown to be a copy: its other evidence matches are more of what was copied
        n_units += rest_units
    return aligned, n_pass, best_tok, best_units, n_units


#: Columns of :func:`pair_evidence`.
PAIR_COLUMNS = ("share", "aligned", "small_weight", "n_passages", "best_tokens", "best_units", "bound_share", "stage",
                "evidence_units", "small_units", "large_units")


@numba.njit(cache=True, nogil=True)
def _pair(doc_lo, doc_weight, tok_lo, tok, stem_lo, n_stop, key, kind_arr, weight, floating, line, link_floats, next_line, pos2,
          inv_lo, inv_stem, inv_unit, x, y, prm, out):  # pragma: no cover - compiled
    """Fill ``out`` with the :data:`PAIR_COLUMNS` of rows ``x``, ``y`` (stage 1: bound rejected, 2: aligned)."""
    if doc_weight[y] < doc_weight[x] or (doc_weight[y] == doc_weight[x] and y < x):
        x, y = y, x  # S = x: the document with less content
    s_lo, s_hi, l_lo, l_hi = doc_lo[x], doc_lo[x + 1], doc_lo[y], doc_lo[y + 1]
    w_s = doc_weight[x]
    out[:] = 0.0
    out[2] = w_s
    out[9] = s_hi - s_lo
    out[10] = l_hi - l_lo
    if w_s < prm[_TOKENS] or l_hi == l_lo:
        return  # stage 0: too little content to vouch for anything
    counts = _shared_stems(inv_lo, inv_stem, inv_unit, x, y, s_hi - s_lo, l_hi - l_lo)
    possible = _possible(counts, tok_lo, stem_lo, n_stop, s_lo, l_lo, prm)
    bound = 0
    for i in range(s_hi - s_lo):
        if possible[i]:
            bound += weight[s_lo + i]
    out[6] = bound / w_s
    if bound < prm[_SHARE] * w_s:
        out[7] = 1
        return
    partner, sim, kind = _unit_scores(counts, tok_lo, tok, stem_lo, n_stop, key, s_lo, l_lo, prm)
    _one_to_one(partner, sim, kind, l_hi - l_lo)
    label = _passages(pos2, s_lo, l_lo, partner, prm)
    evidence = _evidence(kind_arr, floating, line, link_floats, next_line, pos2, s_lo, l_lo, partner, label, prm)
    aligned, n_pass, best_tok, best_units, n_units = _decide(weight, evidence, label, s_lo, prm)
    out[8] = n_units
    out[0] = aligned / w_s
    out[1] = aligned
    out[3] = n_pass
    out[4] = best_tok
    out[5] = best_units
    out[7] = 2


@numba.njit(cache=True, nogil=True, parallel=True)
def _pairs(doc_lo, doc_weight, tok_lo, tok, stem_lo, n_stop, key, kind_arr, weight, floating, line, link_floats, next_line, pos2,
           inv_lo, inv_stem, inv_unit, a, b, prm):  # pragma: no cover - compiled
    out = np.zeros((len(a), len(PAIR_COLUMNS)))
    for k in numba.prange(len(a)):
        _pair(doc_lo, doc_weight, tok_lo, tok, stem_lo, n_stop, key, kind_arr, weight, floating, line, link_floats, next_line, pos2,
              inv_lo, inv_stem, inv_unit, a[k], b[k], prm, out[k])
    return out


def pair_evidence(units: Units, a: np.ndarray, b: np.ndarray, options: EvidenceOptions) -> np.ndarray:
    """:data:`PAIR_COLUMNS` (a float matrix) of every pair of documents ``a[k]``, ``b[k]`` (indices into ``units``)."""
    u = units
    return _pairs(u.doc_lo, u.doc_weight, u.tok_lo, u.tok, u.stem_lo, u.n_stop, u.key, u.kind, u.weight,
                  u.floating, u.line, u.link_floats, u.next_line, u.pos2, u.inv_lo, u.inv_stem, u.inv_unit,
                  np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), params(options))


def copy_confidence(evidence: np.ndarray, chance_unit_match: float, max_gap: int) -> np.ndarray:
    """Probability that the pair is a copy, from how unlikely its best passage is between unrelated texts.

    Null model: a unit of ``S`` matches a given unit of ``L`` by chance with
    probability ``p`` (``chance_unit_match``), so it finds some partner among
    ``L``'s ``m`` units with ``q = 1 - (1 - p)^m``, and the next unit's chance
    partner lands within the passage gap (``2 * max_gap + 1`` units) with
    ``r = 1 - (1 - p)^(2 * max_gap + 1)``.  A passage of ``k`` evidence units
    then appears by chance somewhere in ``S``'s ``n`` units with probability at
    most ``P0 = n * q * r^(k - 1)`` (a union bound).  With even prior odds of
    copy against chance for a pair the shingle rule verified, and copies that
    show such a passage with probability about 1, the posterior is
    ``1 / (1 + P0)``.  Exact duplicates are given 1.0 by the caller.
    """
    n = np.maximum(evidence[:, 9], 1.0)
    m = np.maximum(evidence[:, 10], 1.0)
    k = np.maximum(evidence[:, 5], 1.0)
    q = 1.0 - (1.0 - chance_unit_match) ** m
    r = 1.0 - (1.0 - chance_unit_match) ** (2 * max_gap + 1)
    chance = np.minimum(1.0, n * q * r ** (k - 1.0))
    return np.where(evidence[:, 3] >= 1, 1.0 / (1.0 + chance), 0.0)


def is_edge(evidence: np.ndarray, options: EvidenceOptions) -> np.ndarray:
    """The decision (step 5) over :func:`pair_evidence` rows."""
    floor = np.where(evidence[:, 8] >= options.few_units, options.min_evidence_share,
                     max(options.min_evidence_share, options.min_share_few))
    return (evidence[:, 3] >= 1) & (evidence[:, 0] >= floor)


@dataclass(frozen=True)
class Passage:
    """One aligned passage; offsets are character offsets into each document's ``text``."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int
    a_tokens: int  # evidence tokens of a inside the passage
    b_tokens: int
    units: int  # matched units
    evidence_units: int
    similarity: float  # token-weighted mean unit similarity (1 for verbatim)
    kind: str  # the loosest unit match inside: verbatim < spun < rewritten
    qualifies: bool


def passages_of(units: Units, x: int, y: int, options: EvidenceOptions) -> list[Passage]:
    """Every passage between documents ``x`` (a) and ``y`` (b) with evidence in it, qualifying or not, in a's order."""
    p, prm = units, params(options)
    swap = p.doc_weight[y] < p.doc_weight[x] or (p.doc_weight[y] == p.doc_weight[x] and y < x)
    s, l = (y, x) if swap else (x, y)
    s_lo, s_hi, l_lo, l_hi = p.doc_lo[s], p.doc_lo[s + 1], p.doc_lo[l], p.doc_lo[l + 1]
    if s_hi == s_lo or l_hi == l_lo:
        return []
    counts = _shared_stems(p.inv_lo, p.inv_stem, p.inv_unit, s, l, s_hi - s_lo, l_hi - l_lo)
    partner, sim, kind = _unit_scores(counts, p.tok_lo, p.tok, p.stem_lo, p.n_stop, p.key, s_lo, l_lo, prm)
    _one_to_one(partner, sim, kind, l_hi - l_lo)
    label = _passages(p.pos2, s_lo, l_lo, partner, prm)
    evidence = _evidence(p.kind, p.floating, p.line, p.link_floats, p.next_line, p.pos2, s_lo, l_lo, partner, label, prm)
    out = []
    for r in np.unique(label[label >= 0]):
        members = np.flatnonzero(label == r)
        su, lu = s_lo + members, l_lo + partner[members]
        ev = evidence[members]
        n_ev = int(ev.sum())
        if n_ev == 0:
            continue
        s_tok, l_tok = int(p.weight[su][ev].sum()), int(p.weight[lu][ev].sum())
        w = np.maximum(p.weight[su], 1)
        s_span = (int(p.start[su].min()), int(p.end[su].max()))
        l_span = (int(p.start[lu].min()), int(p.end[lu].max()))
        (a_span, b_span), (a_tok, b_tok) = ((l_span, s_span), (l_tok, s_tok)) if swap else ((s_span, l_span), (s_tok, l_tok))
        out.append(Passage(a_span[0], a_span[1], b_span[0], b_span[1], a_tok, b_tok, len(members), n_ev,
                           float((sim[members] * w).sum() / w.sum()), KIND_NAMES[int(kind[members].max())],
                           n_ev >= options.min_passage_units and s_tok >= options.min_passage_tokens))
    return sorted(out, key=lambda q: (q.a_start, q.b_start))


#: Columns of :func:`passage_rows` (``edge``: index into the pairs given).
PASSAGE_COLUMNS = pl.Schema({
    "edge": pl.Int64, "parent_start": pl.Int64, "parent_end": pl.Int64, "child_start": pl.Int64, "child_end": pl.Int64,
    "tokens": pl.Int64, "similarity": pl.Float64, "kind": pl.String, "qualifies": pl.Boolean,
})


@numba.njit(cache=True, nogil=True)
def _edge_passages(doc_lo, doc_weight, tok_lo, tok, stem_lo, n_stop, key, kind_arr, weight, floating, line, link_floats,
                   next_line, pos2, inv_lo, inv_stem, inv_unit, start, end, parent, child, prm, out_i, out_f):  # pragma: no cover - compiled
    """Passages with evidence of every (parent, child) pair into ``out_i`` (edge, spans, child tokens, kind, qualifies)
    and ``out_f`` (similarity); returns the number of rows.  The same steps as :func:`passages_of`."""
    n_rows = 0
    for e in range(len(parent)):
        x, y = parent[e], child[e]
        swap = doc_weight[y] < doc_weight[x] or (doc_weight[y] == doc_weight[x] and y < x)
        s, l = (y, x) if swap else (x, y)
        s_lo, s_hi, l_lo, l_hi = doc_lo[s], doc_lo[s + 1], doc_lo[l], doc_lo[l + 1]
        if s_hi == s_lo or l_hi == l_lo:
            continue
        counts = _shared_stems(inv_lo, inv_stem, inv_unit, s, l, s_hi - s_lo, l_hi - l_lo)
        partner, sim, kind = _unit_scores(counts, tok_lo, tok, stem_lo, n_stop, key, s_lo, l_lo, prm)
        _one_to_one(partner, sim, kind, l_hi - l_lo)
        label = _passages(pos2, s_lo, l_lo, partner, prm)
        ev = _evidence(kind_arr, floating, line, link_floats, next_line, pos2, s_lo, l_lo, partner, label, prm)
        m = s_hi - s_lo
        for r in range(m):  # passages are labelled by their first unit, so in S's order
            if label[r] != r:
                continue
            n_ev, s_tok, l_tok, loosest = 0, 0, 0, 0
            w_sum, sim_sum = 0.0, 0.0
            s_start, s_end, l_start, l_end = 1 << 62, -1, 1 << 62, -1
            for i in range(r, m):
                if label[i] != r:
                    continue
                u, v = s_lo + i, l_lo + partner[i]
                if ev[i]:
                    n_ev += 1
                    s_tok += weight[u]
                    l_tok += weight[v]
                w = max(weight[u], 1)
                w_sum += w
                sim_sum += sim[i] * w
                loosest = max(loosest, kind[i])
                s_start, s_end = min(s_start, start[u]), max(s_end, end[u])
                l_start, l_end = min(l_start, start[v]), max(l_end, end[v])
            if n_ev == 0:
                continue
            p_span0, p_span1, c_span0, c_span1, c_tok = s_start, s_end, l_start, l_end, l_tok
            if swap:  # S is the child
                p_span0, p_span1, c_span0, c_span1, c_tok = l_start, l_end, s_start, s_end, s_tok
            out_i[n_rows, 0] = e
            out_i[n_rows, 1] = p_span0
            out_i[n_rows, 2] = p_span1
            out_i[n_rows, 3] = c_span0
            out_i[n_rows, 4] = c_span1
            out_i[n_rows, 5] = c_tok
            out_i[n_rows, 6] = loosest
            out_i[n_rows, 7] = n_ev >= prm[_UNITS] and s_tok >= prm[_TOKENS]
            out_f[n_rows] = sim_sum / w_sum
            n_rows += 1
    return n_rows


def passage_rows(units: Units, parent: np.ndarray, child: np.ndarray, options: EvidenceOptions) -> pl.DataFrame:
    """One row per passage with evidence of every (parent, child) pair of documents (indices into ``units``).

    ``tokens``: evidence tokens on the child's side; rows in edge order, then the smaller text's order.
    """
    u = units
    parent, child = np.asarray(parent, dtype=np.int64), np.asarray(child, dtype=np.int64)
    units_of = np.diff(u.doc_lo)
    bound = int(np.minimum(units_of[parent], units_of[child]).sum()) if len(parent) else 0
    out_i = np.zeros((bound, 8), dtype=np.int64)
    out_f = np.zeros(bound)
    n = _edge_passages(u.doc_lo, u.doc_weight, u.tok_lo, u.tok, u.stem_lo, u.n_stop, u.key, u.kind, u.weight,
                       u.floating, u.line, u.link_floats, u.next_line, u.pos2, u.inv_lo, u.inv_stem, u.inv_unit, u.start, u.end,
                       parent, child, params(options), out_i, out_f)
    rows = out_i[:n]
    return pl.DataFrame({
        "edge": rows[:, 0], "parent_start": rows[:, 1], "parent_end": rows[:, 2], "child_start": rows[:, 3], "child_end": rows[:, 4],
        "tokens": rows[:, 5], "similarity": np.round(out_f[:n], 4),
        "kind": np.asarray(KIND_NAMES, dtype=object)[rows[:, 6]] if n else np.zeros(0, dtype=object),
        "qualifies": rows[:, 7].astype(bool),
    }, schema=PASSAGE_COLUMNS)


def units_of_texts(texts: list[str], options: EvidenceOptions, floating: Floating | None = None) -> Units:
    """:class:`Units` of a few texts on their own (``floating``: a corpus's, or nothing floats)."""
    return build_units(pl.Series(texts, dtype=pl.String), floating or Floating.nothing(), options)


def aligned_passages(a_text: str, b_text: str, options: EvidenceOptions, floating: Floating | None = None) -> list[Passage]:
    """Passages between two texts, standalone."""
    return passages_of(units_of_texts([a_text, b_text], options, floating), 0, 1, options)


def decide_texts(a_text: str, b_text: str, options: EvidenceOptions, floating: Floating | None = None) -> dict[str, float | bool]:
    """The rule's answer for two texts, standalone: the :data:`PAIR_COLUMNS` and ``edge``."""
    ev = pair_evidence(units_of_texts([a_text, b_text], options, floating), np.array([0]), np.array([1]), options)
    row: dict[str, float | bool] = dict(zip(PAIR_COLUMNS, ev[0].tolist()))
    row["edge"] = bool(is_edge(ev, options)[0])
    return row


