"""Corpus-wide word frequencies: the evidence of spin direction.

A synonym spinner swaps a word for a rarer one ("climate" -> "clime"), so on
a one-for-one substitution the side whose word occurs in more *clusters* is
the older.  Clusters, not documents: a story copied a thousand times must not
make its own spun words common.  Counting every document would cost a pass
over the corpus's words; instead every member of a multi-document cluster is
counted (they are the ones whose substitutions are compared) plus a bottom-k
sample of singletons by id hash (the corpus's ordinary word use), so the cost
is bounded and an incremental run samples what a full run would.

An origin chosen under one corpus's frequencies records the comparisons it
made (``consulted``); :func:`decisions_hold` tells a later run whether they
still come out the same.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from provenance.prepare.words import words_expr


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


def cluster_frequency(cluster: np.ndarray, texts: pl.Series, rows: np.ndarray) -> pl.DataFrame:
    """``token, n``: in how many clusters the documents of ``rows`` use each token (a copy tree counts once).

    Callers count whole clusters per call (or singletons), so counts of
    several calls add up; ``rows`` are the members of multi-document clusters
    plus :func:`frequency_sample`'s singletons: enough to tell a common word
    from a spinner's rare synonym, at a bounded cost at any corpus size.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return pl.DataFrame(schema={"token": pl.String, "n": pl.UInt32})
    return (
        pl.DataFrame({"cluster": cluster[rows], "text": texts.gather(rows)})
        .select("cluster", words_expr(pl.col("text")).alias("token"))
        .explode("token")
        .drop_nulls()
        .unique()
        .group_by("token")
        .agg(pl.len().alias("n"))
    )


def decisions_hold(consulted: pl.DataFrame, frequency: dict[str, int]) -> pl.DataFrame:
    """Per ``key`` of ``consulted`` (``key, word_a, word_b, sign``): whether every sign is unchanged under ``frequency``.

    An origin chosen under an older corpus's frequencies still stands if no
    frequency comparison it consulted would come out differently now.
    """
    table = pl.DataFrame({"word": list(frequency), "n": list(frequency.values())}, schema={"word": pl.String, "n": pl.Int64})
    return (
        consulted.join(table.rename({"word": "word_a", "n": "n_a"}), on="word_a", how="left")
        .join(table.rename({"word": "word_b", "n": "n_b"}), on="word_b", how="left")
        .with_columns((pl.col("n_a").fill_null(0) - pl.col("n_b").fill_null(0)).sign().cast(pl.Int8).alias("now"))
        .group_by("key")
        .agg((pl.col("now") == pl.col("sign")).all().alias("holds"))
    )
