"""trace.tree: depths of every member from its origin (parents come from ``trace.derivation``)."""

from __future__ import annotations

import numpy as np

from provenance.trace.tree import depths


def test_depths_of_a_hand_made_forest():
    parent_of = np.array([-1, 0, 1, 2, 0, 4, -1, 6, 3])
    assert depths(parent_of).tolist() == [0, 1, 2, 3, 1, 2, 0, 1, 4]
    assert depths(parent_of).dtype == np.int32


def test_depths_of_a_long_chain_and_of_roots_only():
    n = 1000
    chain = np.arange(-1, n - 1, dtype=np.int64)  # node i's parent is i-1
    assert depths(chain).tolist() == list(range(n))
    shuffled = np.random.default_rng(0).permutation(n)
    parent_of = np.full(n, -1, dtype=np.int64)
    parent_of[shuffled[1:]] = shuffled[:-1]
    assert depths(parent_of)[shuffled].tolist() == list(range(n))
    assert depths(np.full(5, -1, dtype=np.int64)).tolist() == [0] * 5
    assert depths(np.zeros(0, dtype=np.int64)).tolist() == []


# ---------------------------------------------------------------------------- choose_parents on hand-made sets
