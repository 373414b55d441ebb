"""Corpus-wide word frequencies: the evidence of spin direction, and the sample they are counted on.

A synonym spinner swaps a word for a rarer one ("climate" -> "clime"), so of
two versions differing by substitutions the one with words found in more
*clusters* is the likelier origin (``trace.derivation``, the root's description
length).  Clusters, not documents: a story copied a thousand times must not
make its own spun words common.  Counting every document would cost a pass
over the corpus's words; instead every member of a multi-document cluster is
counted plus a bottom-k sample of singletons by id hash (the corpus's ordinary
word use), so the cost is bounded and an incremental run samples what a full
run would.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def frequency_sample(cluster: np.ndarray, doc_keys: np.ndarray, size: int) -> np.ndarray:
    """Rows of the ``size`` singletons with the smallest ``doc_keys`` (hashes of their ids).

    A bottom-k sample by id hash: deterministic, independent of row order, and
    stable as a corpus grows (a new singleton enters only if its hash is among
    the k smallest), so an incremental run samples what a full run would.
    """
    singles = np.flatnonzero(np.bincount(cluster, minlength=len(cluster))[cluster] == 1)
    if len(singles) <= size:
        return singles
    keys = doc_keys[singles]
    chosen = np.argpartition(keys, size - 1)[:size]
    return np.sort(singles[chosen])


def counts_of(frequency: Mapping[str, int], words: list[str]) -> np.ndarray:
    """``frequency`` of each word (0 when unseen), in one lookup when it can (``trace.derivation.WordCounts``)."""
    if hasattr(frequency, "counts_of"):
        return frequency.counts_of(words)
    return np.array([frequency.get(w, 0) for w in words], dtype=np.int64)
