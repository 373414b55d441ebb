"""minhash: batch signatures bit-identical to datasketch 2.0 ``affine32``; Jaccard estimate."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash

from provenance.minhash import EMPTY, SCHEME, SignatureScheme, estimate_jaccard, permutations, signatures
from provenance.shingle import ShingleSets


def make_sets(parts: list[np.ndarray]) -> ShingleSets:
    parts = [np.unique(np.asarray(p, dtype=np.uint32)) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return ShingleSets(hashes.astype(np.uint32), offsets)


def datasketch_signature(values: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=lambda v: int(v))
    m.update_batch(values.tolist())
    return m.hashvalues


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 7), (256, 42)])
def test_signatures_equal_datasketch_affine32(num_perm, seed, rng):
    parts = [
        rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
        for n in (1, 5, 300, 2000)
    ]
    parts.append(np.array([0, 1, 2, 2**32 - 1], dtype=np.uint32))  # edge values, sequential inputs
    sets = make_sets(parts)
    sig = signatures(sets, num_perm, seed)
    assert sig.shape == (len(parts), num_perm) and sig.dtype == np.uint32
    for i in range(sets.n_docs):
        expected = datasketch_signature(sets.doc(i), num_perm, seed)
        assert expected.dtype == np.uint32
        np.testing.assert_array_equal(sig[i], expected)


def test_signatures_of_real_text_equal_datasketch(factory):
    views = factory.build_views([factory.make_article(2), factory.make_article(4)])
    for sets in views.values():
        sig = signatures(sets, 128, 1)
        for i in range(sets.n_docs):
            np.testing.assert_array_equal(sig[i], datasketch_signature(sets.doc(i), 128, 1))


def test_permutations_are_datasketch_own_with_odd_multipliers():
    a, b = permutations(128, 1)
    da, db = MinHash(num_perm=128, seed=1, scheme="affine32").permutations
    np.testing.assert_array_equal(a, da)
    np.testing.assert_array_equal(b, db)
    assert a.dtype == np.uint32 and (a % 2 == 1).all()
    assert SCHEME == "affine32"


def test_empty_set_stays_all_empty():
    sets = make_sets([np.array([], dtype=np.uint32), np.array([17], dtype=np.uint32), np.array([], dtype=np.uint32)])
    sig = signatures(sets, 64, 1)
    assert (sig[0] == EMPTY).all() and (sig[2] == EMPTY).all()
    assert EMPTY == np.uint32(0xFFFFFFFF)
    assert not (sig[1] == EMPTY).all()
    # datasketch agrees that an empty MinHash is all max values.
    np.testing.assert_array_equal(sig[0], MinHash(num_perm=64, seed=1, scheme="affine32").hashvalues)


def test_signature_is_a_function_of_the_set_only(rng):
    values = rng.integers(0, 2**32, size=200, dtype=np.uint64).astype(np.uint32)
    a = signatures(make_sets([values]), 128, 1)
    b = signatures(make_sets([values[::-1].copy()]), 128, 1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("true_j", [0.1, 1 / 3, 0.8])
def test_estimate_jaccard_close_to_true_jaccard(true_j, rng):
    universe = rng.permutation(2**20)[:4000].astype(np.uint32)
    # |A| = |B| = n, |A & B| = k  ->  J = k / (2n - k).
    n = 1000
    k = int(round(2 * n * true_j / (1 + true_j)))
    a = universe[:n]
    b = np.concatenate([universe[:k], universe[n : 2 * n - k]])
    exact = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
    sig = signatures(make_sets([a, b]), 256, 1)
    estimate = float(estimate_jaccard(sig[0], sig[1]))
    assert abs(estimate - exact) < 0.1
    assert abs(exact - true_j) < 0.01


def test_estimate_jaccard_rowwise():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.uint32)
    b = np.array([[1, 2, 0, 0], [5, 6, 7, 8]], dtype=np.uint32)
    assert estimate_jaccard(a, b).tolist() == [0.5, 1.0]


def test_signature_scheme_record():
    record = SignatureScheme(128, 1).to_dict()
    assert record["num_perm"] == 128 and record["seed"] == 1 and record["scheme"] == "affine32"
    assert "fnv1a64" in record["hashing"]
