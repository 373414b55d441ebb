"""Frequent word shingles: left out of the words signature so LSH stops pairing texts on stock phrases.

Two unrelated articles share a handful of stock bigrams ("according to",
"the government", "percent of"): a Jaccard near 0.015 on word bigrams.  The
words index bands at ``r = 2`` rows (threshold 0.1, for short truncations), so
such a pair collides in a band with probability ``J**2`` and over the 117
bands with about ``117 * J**2``: a few percent of *all* pairs, which grows with
the square of the corpus while true copies grow with it linearly.  Measured on
the generated benchmark corpus, 98% of the words view's candidates were such
pairs (2 to 10 equal slots of 256), costing most of the link stage at a
million documents.

A shingle found in at least ``frequent_min_share`` of the documents says nothing
about who copied whom, so the words *signature* is taken over a document's
other shingles.  On the generated corpus, leaving out the bigrams in at least
0.5% of the sample (12,699 of them at 100k documents, 38% of all bigram occurrences)
cut the words view's candidates from 5.7 to 0.36 million at 100k documents
and from 125 to 17 million at a million, while the candidates inside true
clusters stayed the same (131,764 before, 132,729 after, at 100k).
Verification still measures the whole sets: the leave-out decides which
pairs are looked at, never whether one passes.

Frequency is counted on a bottom-k sample of documents by id hash
(``frequent_sample_docs``), so the cost is fixed whatever the corpus size, the answer
does not depend on input order, and an incremental store draws the same
sample as a fresh run over the same documents.  Guards:

* a shingle must be in at least ``frequent_min_docs`` sampled documents, so small
  corpora (where 0.5% is a couple of texts) leave nothing out;
* a story copied into more than ``frequent_min_share`` of the corpus makes its own
  shingles "frequent"; a document that would keep less than half of its set
  is signed on all of it (``frequent_min_kept_share``), so such a cluster is
  still found.
"""

from __future__ import annotations

import math

import numpy as np

NOTHING = np.zeros(0, dtype=np.uint32)


def sample_rows(keys: np.ndarray, size: int) -> np.ndarray:
    """Rows (ascending) of the ``size`` documents with the smallest id hashes (``keys``, see :func:`kernels.doc_keys`)."""
    if len(keys) <= size:
        return np.arange(len(keys), dtype=np.int64)
    order = np.lexsort((np.arange(len(keys)), keys))  # ties (equal hashes) broken by row: deterministic
    return np.sort(order[:size]).astype(np.int64)


def threshold(n_sampled: int, min_share: float, min_docs: int) -> int:
    """Sampled documents a shingle must be in to count as frequent."""
    return max(int(min_docs), math.ceil(min_share * n_sampled))


def frequent_shingles(hashes: np.ndarray, n_sampled: int, *, min_share: float, min_docs: int) -> np.ndarray:
    """Sorted distinct shingles in at least :func:`threshold` of ``n_sampled`` documents.

    ``hashes`` are the sampled documents' sets laid end to end (each set
    distinct, as ``ShingleSets.hashes`` is), so a shingle's count is its
    document frequency.
    """
    if n_sampled == 0 or len(hashes) == 0:
        return NOTHING
    values = np.sort(np.asarray(hashes, dtype=np.uint32))
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    counts = np.diff(np.append(starts, len(values)))
    return values[starts[counts >= threshold(n_sampled, min_share, min_docs)]]
