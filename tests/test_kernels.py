"""kernels: the shared compiled primitives equal their plain numpy / Python definitions."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import xxhash

from provenance.kernels import (
    CountMap,
    GOLDEN,
    doc_keys,
    fmix64,
    hash_table,
    in_table,
    mix64,
    offsets_from_doc_index,
    radix_sort32,
    radix_sort_by_high32,
    sorted_member,
    sorted_unique,
)

MASK64 = (1 << 64) - 1


def murmur_fmix64(h: int) -> int:
    """MurmurHash3's fmix64 in plain Python integers (the reference)."""
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


# ---------------------------------------------------------------------------- hashing


def test_golden_is_two_to_the_64_over_the_golden_ratio():
    # floor(2**64 * (sqrt(5) - 1) / 2), exactly, in integers.
    assert int(GOLDEN) == (math.isqrt(5 << 128) - (1 << 64)) // 2
    assert GOLDEN.dtype == np.uint64


def test_fmix64_is_murmur3s_finaliser(rng):
    values = np.concatenate([
        np.array([0, 1, 2, 0xFFFFFFFF, 1 << 32, MASK64, 1 << 63], dtype=np.uint64),
        rng.integers(0, 2**63, size=200, dtype=np.uint64) * np.uint64(2) + np.uint64(1),
    ])
    out = fmix64(values)
    assert out.dtype == np.uint64
    assert out.tolist() == [murmur_fmix64(int(v)) for v in values]
    # A known value, so a change to both the kernel and the reference still shows.
    assert murmur_fmix64(1) == 12994781566227106604


def test_mix64_compiled_equals_fmix64_array(rng):
    values = rng.integers(0, 2**63, size=100, dtype=np.uint64) * np.uint64(2)
    assert [int(mix64(np.uint64(v))) for v in values] == fmix64(values).tolist()
    assert int(mix64(np.uint64(0))) == 0  # the finaliser fixes zero (why hash tables keep 0 for empty)


def test_fmix64_is_a_bijection_on_a_sample(rng):
    values = np.unique(rng.integers(0, 2**64 - 1, size=5000, dtype=np.uint64, endpoint=True))
    assert len(np.unique(fmix64(values))) == len(values)


# ---------------------------------------------------------------------------- radix sorts


@pytest.mark.parametrize("n", [0, 1, 2, 7, 255, 256, 257, 5000])
def test_radix_sort32_equals_numpy_sort(n, rng):
    values = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    if n >= 7:
        values[:4] = [0, 0xFFFFFFFF, 0x00FF00FF, 0xFF00FF00]  # every byte position in use
        values[4:7] = values[0:3]  # repeats
    expected = np.sort(values)
    radix_sort32(values, np.empty_like(values))
    np.testing.assert_array_equal(values, expected)


def test_radix_sort32_sorts_a_view_in_place_and_leaves_the_rest():
    buf = np.array([9, 5, 3, 1, 4, 2, 0], dtype=np.uint32)
    radix_sort32(buf[1:5], np.empty(4, dtype=np.uint32))
    assert buf.tolist() == [9, 1, 3, 4, 5, 2, 0]


@pytest.mark.parametrize("n", [0, 1, 3, 2048, 20_000])
def test_radix_sort_by_high32_is_a_stable_sort_by_the_high_half(n, rng):
    high = rng.integers(0, 2**32, size=n, dtype=np.uint64)
    if n > 100:
        high[: n // 2] = high[n // 2 : 2 * (n // 2)]  # many ties, to show stability
        high[:3] = [0, 0xFFFFFFFF, 0x7FF]  # digits at the 11/11/10 bit boundaries
    key = (high << np.uint64(32)) | rng.integers(0, 2**32, size=n, dtype=np.uint64)
    order = np.empty(n, dtype=np.int32)
    out_high = np.empty(n, dtype=np.uint32)
    radix_sort_by_high32(key, order, out_high)
    expected = np.argsort(key >> np.uint64(32), kind="stable")
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(out_high, (key >> np.uint64(32))[expected].astype(np.uint32))
    # What the docstring promises: the order np.sort of ``high << 32 | index`` gives.
    packed = np.sort(((key >> np.uint64(32)) << np.uint64(32)) | np.arange(n, dtype=np.uint64))
    np.testing.assert_array_equal(order, (packed & np.uint64(0xFFFFFFFF)).astype(np.int32))


# ---------------------------------------------------------------------------- hash tables


def test_hash_table_finds_exactly_its_members(rng):
    members = np.unique(rng.integers(1, 2**64 - 1, size=3000, dtype=np.uint64))
    others = np.setdiff1d(rng.integers(1, 2**64 - 1, size=3000, dtype=np.uint64), members)
    table = hash_table(members)
    assert table.dtype == np.uint64
    assert all(in_table(table, np.uint64(h)) for h in members)
    assert not any(in_table(table, np.uint64(h)) for h in others)


def test_hash_table_is_a_power_of_two_at_most_a_quarter_full():
    for n in (0, 1, 3, 4, 5, 100, 1000, 4096):
        table = hash_table(np.arange(1, n + 1, dtype=np.uint64))
        size = len(table)
        assert size & (size - 1) == 0 and size >= 16, n
        assert int((table != 0).sum()) == n and n * 4 <= size, n
        assert size == max(16, 1 << math.ceil(math.log2(max(1, 4 * n)))), n  # the smallest such power of two


def test_hash_table_colliding_slots_probe_on():
    # Every hash lands on slot 0 of a 16-slot table (low bits zero): linear probing must keep them all.
    hashes = (np.arange(1, 5, dtype=np.uint64) << np.uint64(8))
    table = hash_table(hashes)
    assert len(table) == 16
    assert all(in_table(table, np.uint64(h)) for h in hashes)
    assert not in_table(table, np.uint64(5 << 8))
    # Repeated entries take one slot.
    assert int((hash_table(np.array([7, 7, 7], dtype=np.uint64)) != 0).sum()) == 1


def test_empty_table_holds_nothing():
    table = hash_table(np.zeros(0, dtype=np.uint64))
    assert not in_table(table, np.uint64(1)) and not in_table(table, np.uint64(2**63))


# ---------------------------------------------------------------------------- sorted arrays


def test_sorted_member_equals_isin(rng):
    sorted_set = np.unique(rng.integers(0, 1000, size=300, dtype=np.uint64))
    values = np.concatenate([rng.integers(0, 1100, size=500, dtype=np.uint64), [sorted_set[0], sorted_set[-1], 1099]])
    out = sorted_member(values.astype(np.uint64), sorted_set)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, np.isin(values, sorted_set))
    # Past the end and before the start: not members.
    assert sorted_member(np.array([5, 20, 30], dtype=np.uint64), np.array([10, 20], dtype=np.uint64)).tolist() == [False, True, False]
    assert sorted_member(np.array([1, 2], dtype=np.uint64), np.zeros(0, dtype=np.uint64)).tolist() == [False, False]


def test_sorted_unique_equals_numpy_unique(rng):
    for values in (
        rng.integers(0, 50, size=1000, dtype=np.uint64),
        np.array([3], dtype=np.uint32),
        np.zeros(0, dtype=np.int64),
        np.array([2, 2, 2], dtype=np.int64),
    ):
        out = sorted_unique(values)
        assert out.dtype == values.dtype
        np.testing.assert_array_equal(out, np.unique(values))


def test_offsets_from_doc_index():
    offsets = offsets_from_doc_index(np.array([0, 0, 2, 2, 2, 4], dtype=np.uint32), 6)
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, 2, 2, 5, 5, 6, 6]
    assert offsets_from_doc_index(np.zeros(0, dtype=np.int64), 3).tolist() == [0, 0, 0, 0]


def test_doc_keys_are_xxh3_of_the_ids_whatever_their_order():
    ids = pl.Series(["a", "doc-1", "Portvale/caf\u00e9", ""])
    keys = doc_keys(ids)
    assert keys.dtype == np.uint64
    assert keys.tolist() == [xxhash.xxh3_64_intdigest(d.encode("utf-8")) for d in ids.to_list()]
    assert doc_keys(ids.reverse()).tolist() == keys[::-1].tolist()
    assert doc_keys(pl.Series([], dtype=pl.String)).shape == (0,)


def test_a_count_map_finds_each_values_count_and_zero_for_absent_values_and_for_zero() -> None:
    keys = np.array([0, 3, 7, 2**63 + 5], dtype=np.uint64)
    counts = np.array([9, 1, 4, 2], dtype=np.int64)
    values = np.array([7, 8, 3, 0, 2**63 + 5, 2, 2**64 - 1], dtype=np.uint64)
    assert CountMap(keys, counts)(values).tolist() == [4, 0, 1, 0, 2, 0, 0]
    assert CountMap(keys[:0], counts[:0])(values).tolist() == [0] * 7
    rng = np.random.default_rng(5)
    # Random hashes, and consecutive small keys (not uniform: the slots must still spread them).
    for keys in (np.unique(rng.integers(1, 2**63, size=1000, dtype=np.int64)).astype(np.uint64), np.arange(1, 3000, dtype=np.uint64)):
        counts = rng.integers(1, 50, size=len(keys))
        values = np.concatenate([keys[rng.integers(0, len(keys), size=500)], rng.integers(1, 2**63, size=500, dtype=np.int64).astype(np.uint64)])
        at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
        assert CountMap(keys, counts)(values).tolist() == np.where(keys[at] == values, counts[at], 0).tolist()


