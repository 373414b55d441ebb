"""Units on disk in groups (``link.unit_groups``): the evidence and the units they give are those of all units at once."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import EvidenceOptions
from provenance.link import evidence, unit_groups, units
from tests.fixtures import make_article, spin, truncate

OPTIONS = EvidenceOptions()


def _texts() -> list[str]:
    texts = []
    for story in range(5):
        base = make_article(story)
        texts += [base, truncate(base, 0.6), spin(base, 0.3, seed=story)]
    return texts + ["Only a heading", make_article(9, 3)]


def _built(texts: list[str]) -> units.Units:
    return units.build_units(pl.Series(texts), units.Floating.nothing(), OPTIONS)


def _grouped(texts: list[str], batch: int, budget: int, folder) -> unit_groups.UnitGroups:
    groups = unit_groups.UnitGroups(budget, folder)
    for lo in range(0, len(texts), batch):
        groups.add(_built(texts[lo : lo + batch]))
    return groups


def _evidence(u: units.Units, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return evidence.pair_evidence(u, x, y, OPTIONS)


@pytest.mark.parametrize("batch, budget", [(2, 0), (3, 40_000), (4, 10**9)], ids=["a-batch-a-group", "a-few-batches", "one-group"])
def test_the_evidence_of_pairs_read_two_groups_at_a_time_is_the_evidence_of_all_units_at_once(tmp_path, batch, budget) -> None:
    texts = _texts()
    whole = _built(texts)
    n = len(texts)
    a, b = np.triu_indices(n, 1)
    a, b = np.concatenate([a, b[:7]]), np.concatenate([b, a[:7]])  # every pair, and a few the other way round
    expected = _evidence(whole, a, b)
    assert (expected[:, 3] >= 1).sum() >= 10  # the copies' passages are there to compare
    with _grouped(texts, batch, budget, tmp_path) as groups:
        assert sum(len(g) for g in groups.groups()) == len(groups.batches)
        got = groups.blocks(a, b, len(evidence.PAIR_COLUMNS), _evidence)
        order = np.random.default_rng(0).permutation(len(a))
        shuffled = groups.blocks(a[order], b[order], len(evidence.PAIR_COLUMNS), _evidence)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(shuffled, expected[order])


def test_groups_are_consecutive_batches_within_the_budget(tmp_path) -> None:
    texts = _texts()
    with _grouped(texts, 2, 0, tmp_path) as alone, _grouped(texts, 2, 10**9, tmp_path) as together:
        assert [list(g) for g in alone.groups()] == [[k] for k in range(len(alone.batches))]
        assert [list(g) for g in together.groups()] == [list(range(len(together.batches)))]
    with _grouped(texts, 2, 0, tmp_path) as groups:
        groups.budget = 2 * max(batch.nbytes for batch in groups.batches)
        cut = groups.groups()
        assert [k for g in cut for k in g] == list(range(len(groups.batches)))
        assert all(len(g) == 1 or sum(groups.batches[k].nbytes for k in g) <= groups.budget for g in cut)
        assert 1 < len(cut) < len(groups.batches)


def test_a_subset_read_from_the_groups_is_the_subset_of_all_units(tmp_path) -> None:
    texts = _texts()
    for keep in ([0, 1, 2], [3, 9, 16], [16], [], list(range(len(texts)))):
        whole = _built(texts)
        with _grouped(texts, 3, 0, tmp_path) as groups:
            got = groups.subset(np.array(keep, dtype=np.int64))
        expected = units.subset_units(whole, np.array(keep, dtype=np.int64))
        for name in unit_groups.FIELDS:
            assert np.array_equal(getattr(got, name), getattr(expected, name)), (keep, name)
            assert getattr(got, name).dtype == getattr(expected, name).dtype, (keep, name)


def test_the_folder_is_removed_and_added_batches_are_dropped(tmp_path) -> None:
    part = _built(_texts()[:3])
    groups = unit_groups.UnitGroups(0, tmp_path)
    groups.add(part)
    assert groups.folder.exists() and all(getattr(part, name) is None for name in unit_groups.FIELDS)
    groups.remove()
    assert not groups.folder.exists()
