"""Verify candidate pairs on their exact shingle sets.

LSH proposes pairs from estimated similarity; this stage measures the real
overlap of every view with a linear merge of the two sorted hash sets, in one
compiled pass over all pairs.  Per view it reports the intersection size and
both set sizes, from which

* Jaccard ``|A & B| / |A | B|``: how alike the two are overall;
* containment ``|A & B| / |A|``: how much of A is found in B.  Truncated copies
  and excerpts have low Jaccard but a containment near 1, so the decision
  looks at the containment of the *smaller* document.

A pair is kept as an edge when the best view's containment of the smaller
document and its Jaccard clear the configured floors (:class:`PairRule`, the
one statement of that rule: verification, clustering and the store all ask
it).  The floors are what reject LSH false positives and same-topic articles,
which share names but not the run of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from provenance.config import LinkOptions
from provenance.prepare.shingle import ShingleSets


@numba.njit(cache=True, nogil=True)
def _inter(hashes: np.ndarray, offsets: np.ndarray, x: int, y: int) -> int:  # pragma: no cover - compiled
    i, i_end = offsets[x], offsets[x + 1]
    j, j_end = offsets[y], offsets[y + 1]
    count = 0
    # Branch-free merge: which side advances is data, not a jump the CPU must guess.
    while i < i_end and j < j_end:
        a = hashes[i]
        b = hashes[j]
        count += a == b
        i += a <= b
        j += b <= a
    return count


@numba.njit(cache=True, nogil=True)
def _anchor_score(a_hashes, a_offsets, x, y, min_anchor_set):  # pragma: no cover - compiled
    """(containment of the smaller, jaccard) of the anchors view; (0, 0) when a set is too thin to vouch."""
    ax = a_offsets[x + 1] - a_offsets[x]
    ay = a_offsets[y + 1] - a_offsets[y]
    if min(ax, ay) < min_anchor_set:
        return 0.0, 0.0
    inter = _inter(a_hashes, a_offsets, x, y)
    return inter / min(ax, ay), inter / (ax + ay - inter)


@numba.njit(cache=True, nogil=True, inline="always")
def clears(containment, jaccard, min_c, min_j):  # pragma: no cover - compiled
    """The pair rule on one pair's best-view scores."""
    return containment >= min_c and jaccard >= min_j


@numba.njit(cache=True, nogil=True)
def pair_score(w_hashes, w_offsets, a_hashes, a_offsets, x, y, min_anchor_set):  # pragma: no cover - compiled
    """(containment of the smaller doc, jaccard) of the best view."""
    best_c = 0.0
    best_j = 0.0
    sx = w_offsets[x + 1] - w_offsets[x]
    sy = w_offsets[y + 1] - w_offsets[y]
    if sx > 0 and sy > 0:
        inter = _inter(w_hashes, w_offsets, x, y)
        best_c = inter / min(sx, sy)
        best_j = inter / (sx + sy - inter)
    c, j = _anchor_score(a_hashes, a_offsets, x, y, min_anchor_set)
    return max(best_c, c), max(best_j, j)


@numba.njit(cache=True, nogil=True, parallel=True)
def _intersections(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(len(a), dtype=np.int32)
    for p in numba.prange(len(a)):
        out[p] = _inter(hashes, offsets, a[p], b[p])
    return out


def pair_scores(views: dict[str, ShingleSets], a: np.ndarray, b: np.ndarray, min_anchor_set: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`pair_score` over pairs: (containment, jaccard) arrays."""
    return _pair_scores(views["words"].hashes, views["words"].offsets, views["anchors"].hashes, views["anchors"].offsets,
                        np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), min_anchor_set)


@numba.njit(cache=True, nogil=True, parallel=True)
def _pair_scores(w_hashes, w_offsets, a_hashes, a_offsets, a, b, min_anchor_set):  # pragma: no cover - compiled
    cont = np.zeros(len(a))
    jac = np.zeros(len(a))
    for p in numba.prange(len(a)):
        cont[p], jac[p] = pair_score(w_hashes, w_offsets, a_hashes, a_offsets, a[p], b[p], min_anchor_set)
    return cont, jac


def intersection_sizes(sets: ShingleSets, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|set(a[p]) & set(b[p])|`` for every pair ``p`` (row indices into ``sets``)."""
    return _intersections(sets.hashes, sets.offsets, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))


def pair_overlaps(pairs: pl.DataFrame, views: dict[str, ShingleSets]) -> pl.DataFrame:
    """Add, per view, ``{view}_inter``, ``{view}_size_a``, ``{view}_size_b`` to ``pairs``."""
    a = pairs["a"].to_numpy()
    b = pairs["b"].to_numpy()
    columns = []
    for name, sets in views.items():
        sizes = sets.sizes()
        columns += [
            pl.Series(f"{name}_inter", intersection_sizes(sets, a, b), dtype=pl.Int32),
            pl.Series(f"{name}_size_a", sizes[a], dtype=pl.Int32),
            pl.Series(f"{name}_size_b", sizes[b], dtype=pl.Int32),
        ]
    return pairs.with_columns(columns)


def similarity_exprs(view: str) -> list[pl.Expr]:
    """Jaccard and containments of one view from its counts (0 when a set is empty)."""
    inter = pl.col(f"{view}_inter").cast(pl.Float64)
    sa, sb = pl.col(f"{view}_size_a").cast(pl.Float64), pl.col(f"{view}_size_b").cast(pl.Float64)
    union = sa + sb - inter
    safe = lambda num, den: pl.when(den > 0).then(num / den).otherwise(0.0)  # noqa: E731
    return [
        safe(inter, union).alias(f"{view}_jaccard"),
        safe(inter, sa).alias(f"{view}_a_in_b"),
        safe(inter, sb).alias(f"{view}_b_in_a"),
        safe(inter, pl.min_horizontal(sa, sb)).alias(f"{view}_containment"),
    ]


@numba.njit(cache=True, nogil=True, parallel=True)
def _equal_slots(sig: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(len(a), dtype=np.int32)
    for p in numba.prange(len(a)):
        x, y = sig[a[p]], sig[b[p]]
        count = 0
        for k in range(len(x)):
            if x[k] == y[k]:
                count += 1
        out[p] = count
    return out


def estimated_containment(sig: np.ndarray, sizes: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MinHash estimate of the smaller set's containment and its standard error.

    With ``J`` the share of equal slots among ``m``, ``|A & B| = J (|A| + |B|) / (1 + J)``,
    divided by ``min(|A|, |B|)``.  ``J`` has binomial error ``sqrt(J (1 - J) / m)``,
    which the containment multiplies by ``(|A| + |B|) / ((1 + J)^2 min)``: large
    for very unequal sizes, so callers should compare ``estimate + k * error``
    with their floor rather than the estimate alone.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    m = sig.shape[1]
    j = _equal_slots(sig, a, b) / m
    sa, sb = sizes[a].astype(np.float64), sizes[b].astype(np.float64)
    small = np.maximum(np.minimum(sa, sb), 1.0)
    estimate = j * (sa + sb) / (1.0 + j) / small
    j_floor = np.maximum(j, 1.0 / m)  # an estimate of 0 is not certainty
    error = np.sqrt(j_floor * (1.0 - j_floor) / m) * (sa + sb) / ((1.0 + j) ** 2 * small)
    empty = np.minimum(sa, sb) == 0
    return np.where(empty, 0.0, estimate), np.where(empty, 0.0, error)


@numba.njit(cache=True, nogil=True, parallel=True)
def _hopeful(sig, sizes, a, b, floor, sigmas, out):  # pragma: no cover - compiled
    """``out[p] |= estimate + sigmas * error >= floor`` (see :func:`estimated_containment`), fused per pair."""
    m = sig.shape[1]
    for p in numba.prange(len(a)):
        x, y = sig[a[p]], sig[b[p]]
        equal = 0
        for k in range(m):
            if x[k] == y[k]:
                equal += 1
        sa, sb = float(sizes[a[p]]), float(sizes[b[p]])
        if min(sa, sb) == 0:
            estimate, error = 0.0, 0.0
        else:
            j = equal / m
            small = max(min(sa, sb), 1.0)
            estimate = j * (sa + sb) / (1.0 + j) / small
            j_floor = max(j, 1.0 / m)
            error = np.sqrt(j_floor * (1.0 - j_floor) / m) * (sa + sb) / ((1.0 + j) ** 2 * small)
        if estimate + sigmas * error >= floor:
            out[p] = True


def hopeful_pairs(sig: np.ndarray, sizes: np.ndarray, a: np.ndarray, b: np.ndarray, floor: float, sigmas: float, out: np.ndarray) -> None:
    """Mark in ``out`` the pairs whose MinHash containment estimate is within ``sigmas`` errors of ``floor``.

    The same test as ``estimate + sigmas * error >= floor`` over
    :func:`estimated_containment`, in one compiled pass without its temporaries.
    """
    _hopeful(sig, sizes, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), floor, sigmas, out)


@numba.njit(cache=True, nogil=True)
def _inter_at_least(hashes, offsets, x, y, need):  # pragma: no cover - compiled
    """``|S_x & S_y|``, or -1 as soon as it cannot reach ``need`` any more (checked every 64 steps)."""
    i, i_end = offsets[x], offsets[x + 1]
    j, j_end = offsets[y], offsets[y + 1]
    count = 0
    while i < i_end and j < j_end:
        stop = min(i_end - i, j_end - j, 64)
        for _ in range(stop):
            a = hashes[i]
            b = hashes[j]
            count += a == b
            i += a <= b
            j += b <= a
            if i >= i_end or j >= j_end:
                break
        if count + min(i_end - i, j_end - j) < need:
            return -1
    return count


@numba.njit(cache=True, nogil=True, parallel=True)
def _passes(w_hashes, w_offsets, a_hashes, a_offsets, a, b, min_anchor_set, min_c, min_j):  # pragma: no cover - compiled
    out = np.zeros(len(a), dtype=np.bool_)
    for p in numba.prange(len(a)):
        x, y = a[p], b[p]
        best_c, best_j = _anchor_score(a_hashes, a_offsets, x, y, min_anchor_set)
        if clears(best_c, best_j, min_c, min_j):
            out[p] = True
            continue
        sx = w_offsets[x + 1] - w_offsets[x]
        sy = w_offsets[y + 1] - w_offsets[y]
        if sx == 0 or sy == 0:
            continue
        # What the words view must reach for the pair to pass, less one shingle of margin against rounding.
        need = 0.0
        if best_c < min_c:
            need = max(need, min_c * min(sx, sy) - 1.0)
        if best_j < min_j:
            need = max(need, min_j * (sx + sy) / (1.0 + min_j) - 1.0)
        inter = _inter_at_least(w_hashes, w_offsets, x, y, need)
        if inter < 0:
            continue
        c = inter / min(sx, sy)
        j = inter / (sx + sy - inter)
        out[p] = clears(max(best_c, c), max(best_j, j), min_c, min_j)
    return out


@dataclass(frozen=True)
class PairRule:
    """When two documents are versions of one text: the best view's containment of the smaller and its Jaccard clear the floors.

    Anchor sets smaller than ``min_anchor_set`` do not vouch for a pair on
    their own (the words view still may).
    """

    min_containment: float
    min_jaccard: float
    min_anchor_set: int

    @classmethod
    def of(cls, options: LinkOptions) -> "PairRule":
        return cls(options.min_containment, options.min_jaccard, options.min_anchor_set)

    def scores(self, views: dict[str, ShingleSets], a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(containment of the smaller, Jaccard) of the best view of every pair."""
        return pair_scores(views, a, b, self.min_anchor_set)

    def clears(self, containment: np.ndarray | pl.Series, jaccard: np.ndarray | pl.Series) -> np.ndarray | pl.Series:
        """The rule on scores already measured (arrays or polars columns)."""
        return (containment >= self.min_containment) & (jaccard >= self.min_jaccard)

    def passes(self, views: dict[str, ShingleSets], a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each pair passes, measured with an early exit (:func:`pairs_pass`)."""
        return pairs_pass(views, a, b, self.min_anchor_set, self.min_containment, self.min_jaccard)


def pairs_pass(
    views: dict[str, ShingleSets], a: np.ndarray, b: np.ndarray, min_anchor_set: int, min_containment: float, min_jaccard: float
) -> np.ndarray:
    """Whether each pair clears both floors on its best view: :func:`pair_scores` then the floors, but faster.

    The anchors (small sets) are measured first; the words merge stops as
    soon as the pair cannot pass any more, which is where most LSH chance
    candidates end.  The answer is exactly that of the full scores.
    """
    return _passes(views["words"].hashes, views["words"].offsets, views["anchors"].hashes, views["anchors"].offsets,
                   np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), min_anchor_set, min_containment, min_jaccard)
