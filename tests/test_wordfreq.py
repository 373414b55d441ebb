"""trace.wordfreq: a bottom-k sample of singletons, word counts per cluster."""

from __future__ import annotations

import numpy as np
import polars as pl

from provenance.kernels import doc_keys
from provenance.trace.wordfreq import frequency_sample


def counts(frame: pl.DataFrame) -> dict[str, int]:
    return dict(zip(frame["token"].to_list(), frame["n"].to_list()))


# ---------------------------------------------------------------------------- frequency_sample


def test_sample_is_the_singletons_with_the_smallest_keys():
    cluster = np.array([0, 1, 2, 2, 3, 4, 5, 6])  # rows 2 and 3 share a cluster
    keys = np.array([50, 10, 1, 2, 40, 30, 20, 60], dtype=np.uint64)
    assert frequency_sample(cluster, keys, 3).tolist() == [1, 5, 6]  # keys 10, 30, 20: never the members 2, 3
    assert frequency_sample(cluster, keys, 1).tolist() == [1]
    assert frequency_sample(cluster, keys, 0).tolist() == []
    # No more singletons than asked for: all of them.
    assert frequency_sample(cluster, keys, 6).tolist() == [0, 1, 4, 5, 6, 7]
    assert frequency_sample(cluster, keys, 100).tolist() == [0, 1, 4, 5, 6, 7]


def test_sample_does_not_depend_on_row_order_and_is_stable_as_the_corpus_grows(rng):
    ids = [f"doc-{i}" for i in range(300)]
    keys = doc_keys(pl.Series(ids))
    cluster = np.arange(300)
    chosen = {ids[i] for i in frequency_sample(cluster, keys, 40)}
    assert len(chosen) == 40
    order = rng.permutation(300)
    assert {ids[i] for i in order[frequency_sample(cluster, keys[order], 40)]} == chosen
    # Grown corpus: the sample is the 40 smallest keys again, and only newcomers push old ones out.
    more = ids + [f"new-{i}" for i in range(100)]
    new_keys = dict(zip(more, doc_keys(pl.Series(more)).tolist()))
    grown = {more[i] for i in frequency_sample(np.arange(400), doc_keys(pl.Series(more)), 40)}
    assert grown == set(sorted(more, key=new_keys.get)[:40])
    newcomers = grown - chosen
    assert newcomers and all(m.startswith("new-") for m in newcomers)
    displaced = chosen - grown
    assert displaced == set(sorted(chosen, key=new_keys.get)[40 - len(newcomers) :])  # the largest keys leave


# ---------------------------------------------------------------------------- cluster_frequency


def test_counts_of_reads_word_counts_by_spelling_and_plain_dicts_alike():
    from provenance.config import Config
    from provenance.trace import derivation as dv
    from provenance.trace.wordfreq import counts_of

    texts = pl.Series(["The harbour closed.", "The harbour reopened.", "A ferry sailed."])
    facts = dv.facts_of([dv.fact_parts(texts, np.arange(3), Config().trace)], 3)
    counts = dv.WordCounts(facts.words)
    # Spellings read as the tokeniser reads them (case folded); not one token, or unseen: 0.
    assert counts_of(counts, ["harbour", "THE", "ferry", "two words", "", "unseen"]).tolist() == [2, 2, 1, 0, 0, 0]
    assert counts["harbour"] == 2 and counts.get("unseen") is None
    assert counts_of({"harbour": 2}, ["harbour", "ferry"]).tolist() == [2, 0]
