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

from provenance.shingle import ShingleSets

SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)


@dataclass(frozen=True)
class SignatureScheme:
    """Everything needed to reproduce (and compare) a signature."""

    num_perm: int
    seed: int
    scheme: str = SCHEME
    hashing: str = "fnv1a64(lower-cased code points, seeded) + fmix64 -> ngram fmix64 chain -> fold to uint32"

    def to_dict(self) -> dict[str, object]:
        return {"num_perm": self.num_perm, "seed": self.seed, "scheme": self.scheme, "hashing": self.hashing}


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own ``(a, b)`` permutation parameters for ``affine32``."""
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
    return np.ascontiguousarray(a, dtype=np.uint32), np.ascontiguousarray(b, dtype=np.uint32)


@numba.njit(cache=True, nogil=True, parallel=True)
def _signatures(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_docs = len(offsets) - 1
    num_perm = len(a)
    out = np.full((n_docs, num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    mask = np.uint64(0xFFFFFFFF)
    for d in numba.prange(n_docs):
        row = out[d]
        for i in range(offsets[d], offsets[d + 1]):
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


def signatures(sets: ShingleSets, num_perm: int, seed: int) -> np.ndarray:
    """``(n_docs, num_perm)`` uint32 MinHash signatures; empty sets stay all-``EMPTY``."""
    a, b = permutations(num_perm, seed)
    return _signatures(sets.hashes, sets.offsets, a, b)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal slots: the MinHash estimate of Jaccard."""
    return (sig_a == sig_b).mean(axis=-1)
