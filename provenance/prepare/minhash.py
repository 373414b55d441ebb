"""MinHash signatures of many documents at once, bit-identical to datasketch.

For a set S of 32-bit shingle hashes, signature slot k is

    min over s in S of (a_k * fmix32(s) + b_k) mod 2**32

which is datasketch's ``affine32`` scheme (datasketch >= 2.0): ``fmix32`` is the
MurmurHash3 finaliser, ``a_k`` odd, so each slot is a random bijection of the
hash space and P[slot equal] = Jaccard(S, T).  The permutation parameters are
taken from ``datasketch.MinHash(num_perm, seed, scheme="affine32")`` itself,
so a signature here equals ``MinHash(..., hashfunc=int).update_batch(S)``'s
``hashvalues`` (tested), while computing a whole batch in one compiled pass
over flat arrays instead of a Python call per document.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
from datasketch import MinHash

from provenance.digest import source_digest
from provenance.kernels import hash_table, in_table
from provenance.prepare.shingle import ShingleSets

SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)
#: The code that turns text into signed hashes: a change to any of it makes old signatures incomparable.
HASHING_SOURCES = ("kernels.py", "prepare/confusables.py", "prepare/normalize.py", "prepare/shingle.py", "prepare/minhash.py")


@dataclass(frozen=True)
class SignatureScheme:
    """Everything needed to reproduce (and compare) a signature.

    ``hashing`` is a digest of the tokenising, shingling and signing code
    (:data:`HASHING_SOURCES`), so it changes by itself whenever that code does.
    """

    num_perm: int
    seed: int
    scheme: str = SCHEME

    def to_dict(self) -> dict[str, object]:
        return {"num_perm": self.num_perm, "seed": self.seed, "scheme": self.scheme, "hashing": source_digest(*HASHING_SOURCES)}


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own ``(a, b)`` permutation parameters for ``affine32``."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return np.ascontiguousarray(a, dtype=np.uint32), np.ascontiguousarray(b, dtype=np.uint32)


@numba.njit(cache=True, nogil=True)
def _member(h, table):  # pragma: no cover - compiled
    """Whether shingle ``h`` is in ``table`` (``kernels.hash_table`` of a few thousand shingles: cache-resident)."""
    return in_table(table, np.uint64(h))


@numba.njit(cache=True, nogil=True)
def _signs_subset(hashes, lo, hi, leave_out, min_kept_share):  # pragma: no cover - compiled
    """How many of ``hashes[lo:hi]`` are signed: the ones not left out, or all when too few would remain."""
    if len(leave_out) <= 1:  # an empty table (16 zero slots) is the smallest there is
        return hi - lo, False
    kept = 0
    for i in range(lo, hi):
        if not _member(hashes[i], leave_out):
            kept += 1
    if kept == 0 or kept < min_kept_share * (hi - lo):
        return hi - lo, False
    return kept, True


@numba.njit(cache=True, nogil=True, parallel=True)
def _signatures(hashes, offsets, a, b, leave_out, min_kept_share):  # pragma: no cover - compiled
    n_docs = len(offsets) - 1
    num_perm = len(a)
    out = np.full((n_docs, num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    mask = np.uint64(0xFFFFFFFF)
    for d in numba.prange(n_docs):
        row = out[d]
        _, subset = _signs_subset(hashes, offsets[d], offsets[d + 1], leave_out, min_kept_share)
        for i in range(offsets[d], offsets[d + 1]):
            if subset and _member(hashes[i], leave_out):
                continue
            h = np.uint64(hashes[i])
            # fmix32 in 64-bit lanes, masked back to 32 bits after each multiply.
            h ^= h >> np.uint64(16)
            h = (h * np.uint64(0x85EBCA6B)) & mask
            h ^= h >> np.uint64(13)
            h = (h * np.uint64(0xC2B2AE35)) & mask
            h ^= h >> np.uint64(16)
            for k in range(num_perm):
                v = np.uint32((np.uint64(a[k]) * h + np.uint64(b[k])) & mask)
                if v < row[k]:
                    row[k] = v
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _signed_sizes(hashes, offsets, leave_out, min_kept_share):  # pragma: no cover - compiled
    n_docs = len(offsets) - 1
    out = np.zeros(n_docs, dtype=np.int64)
    for d in numba.prange(n_docs):
        out[d], _ = _signs_subset(hashes, offsets[d], offsets[d + 1], leave_out, min_kept_share)
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _holds_any(hashes, offsets, table):  # pragma: no cover - compiled
    n_docs = len(offsets) - 1
    out = np.zeros(n_docs, dtype=np.bool_)
    for d in numba.prange(n_docs):
        for i in range(offsets[d], offsets[d + 1]):
            if _member(hashes[i], table):
                out[d] = True
                break
    return out


def holds_any(sets: ShingleSets, shingles: np.ndarray) -> np.ndarray:
    """Per document: whether its set holds any of ``shingles`` (whose signature a change of ``leave_out`` there alters)."""
    if len(shingles) == 0:
        return np.zeros(sets.n_docs, dtype=bool)
    return _holds_any(sets.hashes, sets.offsets, _leave_out(shingles))


_NO_TABLE = np.zeros(1, dtype=np.uint64)


def signatures(
    sets: ShingleSets, num_perm: int, seed: int, leave_out: np.ndarray | None = None, *, min_kept_share: float = 0.0
) -> np.ndarray:
    """``(n_docs, num_perm)`` uint32 MinHash signatures; empty sets stay all-``EMPTY``.

    ``leave_out`` (uint32 shingle hashes, see ``provenance.frequent``) is
    signed around: a document's signature is that of its set less those
    shingles, unless fewer than ``min_kept_share`` of its set would remain
    (then of the whole set, so a text made of common phrases, or one copied
    into a large share of the corpus, is still signed on something it has).
    """
    a, b = permutations(num_perm, seed)
    return _signatures(sets.hashes, sets.offsets, a, b, _leave_out(leave_out), min_kept_share)


def signed_sizes(sets: ShingleSets, leave_out: np.ndarray | None = None, *, min_kept_share: float = 0.0) -> np.ndarray:
    """Size of the set each signature of :func:`signatures` was taken over (what its Jaccard estimates refer to)."""
    if leave_out is None or len(leave_out) == 0:
        return sets.sizes()
    return _signed_sizes(sets.hashes, sets.offsets, _leave_out(leave_out), min_kept_share)


def _leave_out(leave_out: np.ndarray | None) -> np.ndarray:
    """The lookup table of ``leave_out`` (hash 0 cannot be looked up, so it is never left out: 1 shingle in 2**32)."""
    if leave_out is None or len(leave_out) == 0:
        return _NO_TABLE
    leave_out = np.asarray(leave_out, dtype=np.uint32)
    return hash_table(leave_out[leave_out != 0].astype(np.uint64))


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal slots: the MinHash estimate of Jaccard."""
    return (sig_a == sig_b).mean(axis=-1)
