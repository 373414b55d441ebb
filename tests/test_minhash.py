"""minhash: batch signatures bit-identical to datasketch 2.0 ``affine32``; leave-out; Jaccard estimate; the scheme record."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from provenance import digest
from provenance.prepare.minhash import (
    EMPTY,
    HASHING_SOURCES,
    SCHEME,
    SignatureScheme,
    estimate_jaccard,
    holds_any,
    permutations,
    signatures,
    signed_sizes,
)
from tests.fixtures import datasketch_signature, make_sets


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
    k = round(2 * n * true_j / (1 + true_j))
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


# ---------------------------------------------------------------------------- signing around left-out shingles


def _random(rng, n: int) -> np.ndarray:
    return rng.integers(1, 2**32, size=n, dtype=np.uint64).astype(np.uint32)


def test_signature_around_left_out_shingles_is_the_minhash_of_the_rest(rng):
    common = np.unique(_random(rng, 40))
    mostly_rare = np.concatenate([common[:10], _random(rng, 200)])
    mostly_common = np.concatenate([common[:30], _random(rng, 5)])
    sets = make_sets([mostly_rare, mostly_common, common[:3], np.zeros(0, np.uint32)])
    sig = signatures(sets, 128, 1, common, min_kept_share=0.5)
    sizes = signed_sizes(sets, common, min_kept_share=0.5)
    rest = np.setdiff1d(sets.doc(0), common)
    np.testing.assert_array_equal(sig[0], datasketch_signature(rest, 128, 1))
    assert sizes[0] == len(rest) == 200
    # Fewer than half would remain (or nothing at all): signed on the whole set.
    for i in (1, 2):
        np.testing.assert_array_equal(sig[i], datasketch_signature(sets.doc(i), 128, 1))
        assert sizes[i] == len(sets.doc(i))
    assert (sig[3] == EMPTY).all() and sizes[3] == 0
    # Nothing to leave out: plain signatures and sizes.
    np.testing.assert_array_equal(signatures(sets, 128, 1, None), signatures(sets, 128, 1, np.zeros(0, np.uint32)))
    np.testing.assert_array_equal(signatures(sets, 128, 1, None), signatures(sets, 128, 1))
    np.testing.assert_array_equal(signed_sizes(sets), sets.sizes())


@pytest.mark.parametrize(("share", "signed_on_rest"), [(0.0, True), (0.7, True), (0.75, True), (0.76, False), (1.0, False)])
def test_min_kept_share_decides_when_a_set_is_signed_whole(share, signed_on_rest):
    # 4 of 16 shingles left out: 12 kept, a share of 0.75.
    values = np.arange(100, 116, dtype=np.uint32)
    leave_out = values[:4].copy()
    sets = make_sets([values])
    signed = values[4:] if signed_on_rest else values
    np.testing.assert_array_equal(signatures(sets, 64, 3, leave_out, min_kept_share=share)[0], datasketch_signature(signed, 64, 3))
    assert signed_sizes(sets, leave_out, min_kept_share=share).tolist() == [len(signed)]


def test_leave_out_order_and_repeats_do_not_matter_and_hash_zero_is_never_left_out(rng):
    values = np.concatenate([[0], _random(rng, 50)]).astype(np.uint32)
    sets = make_sets([values])
    leave_out = values[:10]
    a = signatures(sets, 64, 1, leave_out)
    b = signatures(sets, 64, 1, np.concatenate([leave_out[::-1], leave_out]))
    np.testing.assert_array_equal(a, b)
    # 0 cannot be looked up in the table: it stays in the signed set.
    kept = np.setdiff1d(values, leave_out[1:])
    np.testing.assert_array_equal(a[0], datasketch_signature(kept, 64, 1))
    assert signed_sizes(sets, leave_out).tolist() == [len(kept)]


def test_holds_any():
    sets = make_sets([[1, 2, 3], [4, 5], [], [5, 9], [700, 800]])
    np.testing.assert_array_equal(holds_any(sets, np.array([5, 800], np.uint32)), [False, True, False, True, True])
    np.testing.assert_array_equal(holds_any(sets, np.array([3], np.uint32)), [True, False, False, False, False])
    np.testing.assert_array_equal(holds_any(sets, np.zeros(0, np.uint32)), [False] * 5)


def test_signature_scheme_record():
    record = SignatureScheme(128, 7).to_dict()
    assert record == {"num_perm": 128, "seed": 7, "scheme": "affine32", "hashing": digest.source_digest(*HASHING_SOURCES)}
    assert len(record["hashing"]) == 16 and int(record["hashing"], 16) >= 0
    # The record tells schemes apart by every field.
    assert SignatureScheme(256, 7).to_dict() != record and SignatureScheme(128, 8).to_dict() != record


# ---------------------------------------------------------------------------- the hashing digest follows the code


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A copy of the package's sources that ``digest`` reads instead of the real ones, and the real digest."""
    digest.source_digest.cache_clear()
    real = SignatureScheme(256, 1).to_dict()["hashing"]
    root = tmp_path / "provenance"
    shutil.copytree(Path(digest.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(digest, "_ROOT", root)
    digest.source_digest.cache_clear()
    yield root, real
    digest.source_digest.cache_clear()


def hashing() -> str:
    digest.source_digest.cache_clear()
    return SignatureScheme(256, 1).to_dict()["hashing"]


def edit(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\n# edited\n")


@pytest.mark.parametrize("source", HASHING_SOURCES)
def test_hashing_digest_changes_when_a_hashing_source_changes(package_copy: tuple[Path, str], source: str):
    root, real = package_copy
    assert hashing() == real  # the copy is byte-identical: the package's own digest
    edit(root / source)
    assert hashing() != real


@pytest.mark.parametrize("source", ["prepare/words.py", "prepare/stage.py", "link/lsh.py", "config.py"])
def test_hashing_digest_ignores_code_that_does_not_hash(package_copy: tuple[Path, str], source: str):
    root, real = package_copy
    edit(root / source)
    assert hashing() == real


def _provenance_imports(rel: str) -> set[str]:
    """Modules of the package (paths relative to ``provenance/``) that ``rel`` imports."""
    root = Path(digest.__file__).parent
    out: set[str] = set()
    for node in ast.walk(ast.parse((root / rel).read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("provenance"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("provenance")]
        for name in names:
            path = "/".join(name.split(".")[1:]) + ".py"
            if (root / path).is_file():
                out.add(path)
    return out


def test_hashing_sources_are_every_module_signatures_are_computed_with():
    """A module that joins the tokenise -> shingle -> sign chain must join the digest, or old signatures pass as new."""
    seen, todo = set(), ["prepare/minhash.py"]
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        todo.extend(_provenance_imports(rel))
    assert seen - {"digest.py"} == set(HASHING_SOURCES)
