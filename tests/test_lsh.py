"""link.lsh: datasketch's banding, buckets decided by the full band key, linear pairs per bucket.

The reference is ``datasketch.MinHashLSH`` itself: the same bands over the
same signatures give the same buckets, and ``candidate_pairs`` pairs every
bucket member with the next ``window`` members in (rank, row) order, so a
bucket of at most ``window + 1`` members is paired completely.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import polars as pl
import pytest
from datasketch import MinHash, MinHashLSH

from provenance.config import Config
from provenance.link.lsh import (
    BANDS_PER_CHUNK,
    PAIRS_SCHEMA,
    band_keys,
    band_params,
    candidate_pairs,
    sharing_buckets,
    unpack,
)
from provenance.prepare.minhash import EMPTY, signatures
from tests.fixtures import build_views, make_article, make_sets, noisy_copy, spin, truncate


def pairs_of(df: pl.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["a"].to_list(), df["b"].to_list()))


def random_signatures(rng: np.random.Generator, n: int, num_perm: int) -> np.ndarray:
    return rng.integers(0, 2**32 - 1, size=(n, num_perm), dtype=np.uint64).astype(np.uint32)


# ---------------------------------------------------------------------------- band parameters and keys


@pytest.mark.parametrize("threshold", [0.1, 0.2, 0.5, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 128, 256])
def test_band_params_equal_datasketch_minhashlsh(threshold, num_perm):
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    b, r = band_params(threshold, num_perm)
    assert (b, r) == (lsh.b, lsh.r)
    assert type(b) is int and type(r) is int and b * r <= num_perm


def test_band_keys_equal_iff_band_slots_equal(rng):
    sig = random_signatures(rng, 3, 8)
    sig[1, :4] = sig[0, :4]  # band 0 shared with row 0, band 1 not
    keys = band_keys(sig, 2, 4)
    assert keys.shape == (3, 2) and keys.dtype == np.uint64
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[2, 0] != keys[0, 0]
    # Identical slot values in different bands do not collide (each band has its own seed).
    same = np.tile(sig[:1, :4], (1, 2))
    k = band_keys(same, 2, 4)
    assert k[0, 0] != k[0, 1]
    # A band reads exactly its own slots: changing a slot outside it leaves the key alone.
    changed = sig.copy()
    changed[0, 6] ^= np.uint32(1)
    moved = band_keys(changed, 2, 4)
    assert moved[0, 0] == keys[0, 0] and moved[0, 1] != keys[0, 1]
    # Slots past bands * rows are not read at all.
    tail = sig.copy()
    tail[:, 7] = 0
    assert (band_keys(tail[:, :8], 1, 4) == keys[:, :1]).all()


def high_half_collision(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Two band-0 slot rows whose band keys share the high 32 bits but not the low 32 (birthday search)."""
    rng = np.random.default_rng(20240611)
    for _ in range(8):
        slots = random_signatures(rng, 200_000, rows)
        keys = band_keys(slots, 1, rows)[:, 0]
        high = keys >> np.uint64(32)
        order = np.argsort(high, kind="stable")
        hit = np.flatnonzero(high[order][1:] == high[order][:-1])
        for i in hit:
            x, y = order[i], order[i + 1]
            if keys[x] != keys[y]:
                return slots[x], slots[y]
    raise AssertionError("no collision found")  # pragma: no cover - 8 tries of ~4.7 expected collisions each


def test_keys_equal_in_the_high_half_only_do_not_share_a_bucket(rng):
    threshold, num_perm = 0.5, 64
    bands, rows = band_params(threshold, num_perm)
    x, y = high_half_collision(rows)
    sig = random_signatures(rng, 4, num_perm)
    sig[0, :rows] = x
    sig[1, :rows] = y  # band 0: same high half as row 0, other low half
    sig[2, :rows] = x  # band 0: a real bucket with row 0
    keys = band_keys(sig, bands, rows)
    assert keys[0, 0] >> np.uint64(32) == keys[1, 0] >> np.uint64(32) and keys[0, 0] != keys[1, 0]
    for rank in (np.zeros(4, dtype=np.int64), np.array([0, 1, 2, 3]), np.array([3, 1, 2, 0])):
        out = candidate_pairs(sig, rank, threshold=threshold, window=4)
        assert pairs_of(out) == {(0, 2)}


# ---------------------------------------------------------------------------- against datasketch.MinHashLSH


def overlapping_sets(rng: np.random.Generator) -> list[np.ndarray]:
    """Families of near-identical sets (big buckets), pairs at various overlaps, and loners."""
    parts: list[np.ndarray] = []
    for family in range(6):
        base = rng.choice(2**32 - 1, size=120, replace=False).astype(np.uint32)
        size = [12, 7, 3, 2, 2, 1][family]
        for _ in range(size):
            keep = rng.random(len(base)) < rng.uniform(0.55, 1.0)
            extra = rng.choice(2**32 - 1, size=int(rng.integers(0, 30)), replace=False).astype(np.uint32)
            parts.append(np.unique(np.concatenate([base[keep], extra])))
    for _ in range(10):
        parts.append(np.unique(rng.choice(2**32 - 1, size=int(rng.integers(20, 150)), replace=False).astype(np.uint32)))
    order = rng.permutation(len(parts))
    return [parts[i] for i in order]


def minhashlsh_buckets(parts: list[np.ndarray], threshold: float, num_perm: int, seed: int) -> list[list[int]]:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for i, values in enumerate(parts):
        m = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=lambda v: int(v))
        m.update_batch(values.tolist())
        lsh.insert(i, m)
    return [sorted(table.get(key)) for table in lsh.hashtables for key in table.keys()]  # noqa: SIM118 (a storage, not a dict)


@pytest.mark.parametrize(("threshold", "num_perm", "window"), [(0.5, 64, 4), (0.3, 128, 2), (0.1, 128, 4), (0.2, 256, 3)])
def test_candidate_pairs_are_minhashlsh_buckets_paired_through_the_window(threshold, num_perm, window):
    rng = np.random.default_rng(int(threshold * 1000) + num_perm)
    parts = overlapping_sets(rng)
    seed = 1
    sig = signatures(make_sets(parts), num_perm, seed)
    rank = rng.integers(0, 5, size=len(parts))
    buckets = minhashlsh_buckets(parts, threshold, num_perm, seed)
    found = pairs_of(candidate_pairs(sig, rank, threshold=threshold, window=window))

    small = {(x, y) for b in buckets if len(b) <= window + 1 for i, x in enumerate(b) for y in b[i + 1 :]}
    shared = {(x, y) for b in buckets for i, x in enumerate(b) for y in b[i + 1 :]}
    assert small <= found  # the window only caps large buckets
    assert found <= shared  # never a pair MinHashLSH does not bucket together
    # Large buckets: each member with the next `window` members in (rank, row) order.
    expected = set()
    for b in buckets:
        ordered = sorted(b, key=lambda r: (rank[r], r))
        for i, x in enumerate(ordered):
            for y in ordered[i + 1 : i + 1 + window]:
                expected.add((min(x, y), max(x, y)))
    assert found == expected
    assert any(len(b) > window + 1 for b in buckets) and len(small) > 0  # both regimes are exercised


def test_candidate_pairs_of_texts_agree_with_minhashlsh_queries():
    config = Config()
    a = make_article(0)
    texts = [a, noisy_copy(a), truncate(a, 0.9), *[make_article(s) for s in (1, 2, 3, 4, 5)]]
    views = build_views(texts)
    sig = signatures(views["words"], config.prepare.num_perm, config.prepare.seed)
    lsh = MinHashLSH(threshold=config.link.words_threshold, num_perm=config.prepare.num_perm)
    hashes = []
    for i in range(len(texts)):
        m = MinHash(num_perm=config.prepare.num_perm, seed=config.prepare.seed, scheme="affine32", hashfunc=lambda v: int(v))
        m.update_batch(views["words"].doc(i).tolist())
        np.testing.assert_array_equal(m.hashvalues, sig[i])
        hashes.append(m)
        lsh.insert(i, m)
    expected = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if i != j}
    found = pairs_of(candidate_pairs(sig, -views["words"].sizes(), threshold=config.link.words_threshold, window=8))
    assert found == expected
    assert {(0, 1), (0, 2), (1, 2)} <= found
    assert not any(j >= 3 for _, j in found)  # unrelated stories never share a bucket


def test_spun_copy_is_a_candidate_in_the_anchor_view():
    config = Config()
    a = make_article(1)
    texts = [a, spin(a, 0.3, seed=5), make_article(2), make_article(3)]
    views = build_views(texts)
    sig = signatures(views["anchors"], config.prepare.num_perm, config.prepare.seed)
    found = candidate_pairs(sig, -views["words"].sizes(), threshold=config.link.anchors_threshold, window=config.link.bucket_window)
    assert pairs_of(found) == {(0, 1)}


# ---------------------------------------------------------------------------- the window


def test_pairs_are_unique_sorted_and_typed(rng):
    sig = np.tile(random_signatures(rng, 1, 128), (6, 1))
    out = candidate_pairs(sig, np.zeros(6, dtype=np.int64), threshold=0.5, window=2)
    assert out.schema == PAIRS_SCHEMA
    rows = list(zip(out["a"].to_list(), out["b"].to_list()))
    assert rows == sorted(set(rows))
    assert all(a < b for a, b in rows)
    # Six members, window 2: 2 + 2 + 2 + 2 + 1 pairs.
    assert len(rows) == 9


def test_huge_bucket_gives_window_times_n_pairs_and_stays_connected(rng):
    n, window = 500, Config().link.bucket_window
    sig = np.tile(random_signatures(rng, 1, 128), (n, 1))
    rank = rng.permutation(n)
    out = candidate_pairs(sig, rank, threshold=0.1, window=window)
    assert out.height == sum(min(window, n - 1 - i) for i in range(n))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(pairs_of(out))
    assert nx.is_connected(graph)


def test_bucket_members_pair_with_next_ones_in_rank_order(rng):
    sig = np.tile(random_signatures(rng, 1, 64), (5, 1))
    rank = np.array([2, 0, 4, 1, 3])  # bucket order: docs 1, 3, 0, 4, 2
    assert pairs_of(candidate_pairs(sig, rank, threshold=0.5, window=1)) == {(1, 3), (0, 3), (0, 4), (2, 4)}
    # Equal ranks: row order; negative ranks (the stage passes minus set sizes) work the same.
    assert pairs_of(candidate_pairs(sig, np.zeros(5, dtype=np.int64), threshold=0.5, window=1)) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert pairs_of(candidate_pairs(sig, -rank, threshold=0.5, window=1)) == {(2, 4), (0, 4), (0, 3), (1, 3)}


def test_a_bucket_of_window_plus_one_members_is_paired_completely(rng):
    sig = np.tile(random_signatures(rng, 1, 64), (5, 1))
    out = candidate_pairs(sig, np.arange(5), threshold=0.5, window=4)
    assert pairs_of(out) == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    six = np.tile(sig[:1], (6, 1))
    assert (0, 5) not in pairs_of(candidate_pairs(six, np.arange(6), threshold=0.5, window=4))


def test_empty_signatures_are_never_candidates(rng):
    sig = np.full((4, 64), EMPTY, dtype=np.uint32)
    base = random_signatures(rng, 1, 64)[0]
    sig[2] = base
    out = candidate_pairs(sig, np.zeros(4, dtype=np.int64), threshold=0.5, window=4)
    assert out.height == 0 and out.schema == PAIRS_SCHEMA
    sig[3] = base
    assert pairs_of(candidate_pairs(sig, np.zeros(4, dtype=np.int64), threshold=0.5, window=4)) == {(2, 3)}
    # Empty rows do not take window slots from real members either.
    rows = np.full((8, 64), EMPTY, dtype=np.uint32)
    rows[[1, 4, 7]] = base
    assert pairs_of(candidate_pairs(rows, np.zeros(8, dtype=np.int64), threshold=0.5, window=1)) == {(1, 4), (4, 7)}


def test_no_shared_band_no_pair(rng):
    sig = random_signatures(rng, 50, 128)
    assert candidate_pairs(sig, np.arange(50), threshold=0.1, window=4).height == 0


def test_one_shared_band_is_enough(rng):
    bands, rows = band_params(0.1, 128)
    sig = random_signatures(rng, 3, 128)
    last = bands - 1  # in the last chunk of bands
    sig[2, last * rows : (last + 1) * rows] = sig[0, last * rows : (last + 1) * rows]
    assert pairs_of(candidate_pairs(sig, np.arange(3), threshold=0.1, window=4)) == {(0, 2)}


# ---------------------------------------------------------------------------- accept


def test_accept_filters_the_result_and_never_sees_an_accepted_pair_again(rng):
    bands, _ = band_params(0.1, 128)
    assert bands > 2 * BANDS_PER_CHUNK  # several chunks, so pairs recur across calls
    parts = overlapping_sets(rng)
    sig = signatures(make_sets(parts), 128, 1)
    rank = np.zeros(len(parts), dtype=np.int64)
    everything = candidate_pairs(sig, rank, threshold=0.1, window=4)
    seen: list[np.ndarray] = []
    accepted: set[int] = set()

    def keep_even(packed: np.ndarray) -> np.ndarray:
        assert packed.dtype == np.uint64 and (packed[1:] > packed[:-1]).all()  # sorted, distinct
        assert not accepted & set(packed.tolist())  # what was accepted once stays accepted
        seen.append(packed.copy())
        a, b = unpack(packed)
        kept = packed[(a + b) % 2 == 0]
        accepted.update(kept.tolist())
        return kept

    kept = candidate_pairs(sig, rank, threshold=0.1, window=4, accept=keep_even)
    offered = {tuple(int(v) for v in pair) for pair in zip(*unpack(np.concatenate(seen)))}
    assert offered == pairs_of(everything)
    assert len(seen) > 1
    assert pairs_of(kept) == {(a, b) for a, b in pairs_of(everything) if (a + b) % 2 == 0}
    assert 0 < kept.height < everything.height
    assert candidate_pairs(sig, rank, threshold=0.1, window=4, accept=lambda p: p[:0]).height == 0
    assert pairs_of(candidate_pairs(sig, rank, threshold=0.1, window=4, accept=lambda p: p)) == pairs_of(everything)


def test_unpack_inverts_the_packing():
    a = np.array([0, 1, 7, 2**32 - 2], dtype=np.uint64)
    b = np.array([1, 9, 8, 2**32 - 1], dtype=np.uint64)
    x, y = unpack((a << np.uint64(32)) | b)
    assert x.tolist() == a.tolist() and y.tolist() == b.tolist()


# ---------------------------------------------------------------------------- sharing_buckets


def test_sharing_buckets_flags_only_members_of_crowded_buckets_with_a_probe(rng):
    window = 4
    base = random_signatures(rng, 1, 64)
    other = random_signatures(rng, 1, 64)
    crowded = np.tile(base, (window + 1, 1))  # with the departed probe: window + 2 members
    small = np.tile(other, (window - 1, 1))  # with its probe: window members, paired completely anyway
    loners = random_signatures(rng, 3, 64)
    sig = np.vstack([crowded, small, loners, np.full((1, 64), EMPTY, dtype=np.uint32)])
    probes = np.vstack([base, other, np.full((1, 64), EMPTY, dtype=np.uint32)])
    got = sharing_buckets(sig, probes, threshold=0.5, window=window)
    assert got.tolist() == [True] * (window + 1) + [False] * (window - 1) + [False] * 3 + [False]
    # Exactly window + 1 members with the probe: still paired completely.
    assert not sharing_buckets(crowded[:window], base, threshold=0.5, window=window).any()
    assert sharing_buckets(crowded, base, threshold=0.5, window=window).all()
    # No (non-empty) probe: nothing to re-examine.
    assert not sharing_buckets(sig, probes[2:], threshold=0.5, window=window).any()
    assert sharing_buckets(sig[:0], probes, threshold=0.5, window=window).tolist() == []


def test_sharing_buckets_needs_one_band_only(rng):
    bands, rows = band_params(0.5, 64)
    sig = random_signatures(rng, 6, 64)
    probe = random_signatures(rng, 1, 64)
    sig[:, (bands - 1) * rows : bands * rows] = probe[0, (bands - 1) * rows : bands * rows]
    assert sharing_buckets(sig, probe, threshold=0.5, window=4).all()
    assert not sharing_buckets(sig, probe, threshold=0.5, window=6).any()


def test_sharing_buckets_skips_the_bands_a_document_signed_anew_kept(rng):
    bands, rows = band_params(0.5, 64)
    window = 2
    base = random_signatures(rng, 1, 64)
    crowded = np.tile(base, (window + 2, 1))
    # The probe is row 0's old signature: row 0 is still there, in every bucket it was in.
    assert sharing_buckets(crowded, base, threshold=0.5, window=window).all()
    assert not sharing_buckets(crowded, base, threshold=0.5, window=window, probe_rows=np.array([0])).any()
    # Signed anew, row 0 changed its first band only: it left that band's bucket, which still holds 3 + 1 departed.
    moved = crowded.copy()
    moved[0, :rows] = random_signatures(rng, 1, 64)[0, :rows]
    got = sharing_buckets(moved, base, threshold=0.5, window=window, probe_rows=np.array([0]))
    assert got.tolist() == [False, True, True, True]
    # A probe that is gone (-1) counts in every band, as without probe_rows.
    assert sharing_buckets(moved, base, threshold=0.5, window=window, probe_rows=np.array([-1])).all()


def test_sharing_buckets_counts_every_band_as_a_bucket_table_would(rng):
    """Against a plain dict of buckets per band: the same rows, over shared and unshared keys alike."""
    bands, rows = band_params(0.5, 32)
    pool = random_signatures(rng, 6, 32)
    pick = rng.integers(0, len(pool), size=(300, bands))
    sig = np.hstack([pool[pick[:, k], k * rows : (k + 1) * rows] for k in range(bands)])
    sig[::17] = random_signatures(rng, len(sig[::17]), 32)  # loners
    sig[5] = EMPTY
    probes = sig[rng.choice(len(sig), size=12, replace=False)].copy()
    window = 30
    filled = [i for i in range(len(sig)) if not (sig[i] == EMPTY).all()]
    gone = [p for p in probes if not (p == EMPTY).all()]
    want = np.zeros(len(sig), dtype=bool)
    for k in range(bands):
        band = slice(k * rows, (k + 1) * rows)
        members = [tuple(sig[i, band]) for i in filled]
        departed = [tuple(p[band]) for p in gone]
        for i, key in zip(filled, members):
            if key in departed and members.count(key) + departed.count(key) > window + 1:
                want[i] = True
    assert want.any() and not want.all()
    assert np.array_equal(sharing_buckets(sig, probes, threshold=0.5, window=window), want)
