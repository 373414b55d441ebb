"""The link stage: LSH candidates from every view, verified as they are found, then clustering.

Each chunk of bands' new candidates is first cut on the signatures (pairs
whose estimated containment is more than ``prefilter_sigmas`` standard errors
below the floor in every view are dropped), then verified on the exact sets
with the :class:`~provenance.link.verify.PairRule`; only verified pairs are
kept, so memory holds edges, not the far larger crowd of chance collisions.
Exact duplicates are paired directly.  Clusters grow from the verified pairs
without chaining (``link.cluster``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from provenance.config import Config
from provenance.kernels import sorted_member, sorted_unique
from provenance.link import cluster, lsh, verify
from provenance.prepare import minhash
from provenance.prepare.stage import Prepared
from provenance.stage_report import StageReport, timed

#: ``strength`` of an exact-duplicate pair: above any containment, so copies join first.
EXACT_STRENGTH = 2.0


@dataclass
class Linked:
    """Verified pairs (``a, b, containment, jaccard``) and the cluster root (row index) of every document."""

    pairs: pl.DataFrame
    roots: np.ndarray


@dataclass
class KnownPairs:
    """What an earlier run already verified, so an incremental run re-verifies only what may differ.

    A candidate pair between two rows not flagged in ``relink`` was a
    candidate in the earlier run too (see ``provenance.store``), on the very
    same shingle sets, so it passes exactly when it is in ``verified`` (sorted
    ``a << 32 | b`` codes).
    """

    relink: np.ndarray
    verified: np.ndarray


def exact_duplicate_pairs(content_hash: pl.Series) -> pl.DataFrame:
    """Every member of a group of exact duplicates paired with the group's first row."""
    frame = pl.DataFrame({"h": content_hash}).with_row_index("row")
    grouped = frame.with_columns(pl.col("row").min().over("h").alias("first")).filter(pl.col("row") != pl.col("first"))
    return pl.DataFrame({"a": grouped["first"].to_numpy(), "b": grouped["row"].to_numpy()}, schema=lsh.PAIRS_SCHEMA)


class _Verifier:
    """The ``accept`` callback of ``lsh.candidate_pairs``: prefilter, then the exact pair rule (or a stored verdict)."""

    def __init__(self, prepared: Prepared, config: Config, known: KnownPairs | None) -> None:
        self.views, self.signatures = prepared.views, prepared.signatures
        self.rule = verify.PairRule.of(config.link)
        self.sigmas = config.link.prefilter_sigmas
        self.known = known
        # What each view's signatures were taken over: the prefilter's estimates refer to these sets.
        self.signed = {
            "words": minhash.signed_sizes(self.views["words"], prepared.frequent, min_kept_share=config.prepare.frequent_min_kept_share),
            "anchors": self.views["anchors"].sizes(),
        }
        self.candidates = 0
        self.verified_exactly = 0

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        self.candidates += len(packed)
        if self.known is None:
            return self.fresh(packed)
        a, b = lsh.unpack(packed)
        fresh = self.known.relink[a] | self.known.relink[b]
        looked_up = packed[~fresh & sorted_member(packed, self.known.verified)]
        return np.sort(np.concatenate([looked_up, self.fresh(packed[fresh])]))

    def fresh(self, packed: np.ndarray) -> np.ndarray:
        a, b = lsh.unpack(packed)
        hopeful = np.zeros(len(a), dtype=bool)
        for name in ("words", "anchors"):
            verify.hopeful_pairs(self.signatures[name], self.signed[name], a, b, self.rule.min_containment, self.sigmas, hopeful)
        self.verified_exactly += int(hopeful.sum())
        kept = np.flatnonzero(hopeful)
        return packed[kept[self.rule.passes(self.views, a[kept], b[kept])]]


def link_stage(prepared: Prepared, config: Config, known: KnownPairs | None = None) -> tuple[Linked, StageReport]:
    """Candidates, verification and clusters (see the module docstring).

    With ``known`` pairs, only candidates touching a ``relink`` row are verified; the others are looked up.
    """
    options = config.link
    report = StageReport("link", rows_in=prepared.documents.height)
    with timed(report):
        views = prepared.views
        rank = -views["words"].sizes()
        thresholds = {"words": options.words_threshold, "anchors": options.anchors_threshold}
        accept = _Verifier(prepared, config, known)
        found = []
        for name, sig in prepared.signatures.items():
            pairs = lsh.candidate_pairs(sig, rank, threshold=thresholds[name], window=options.bucket_window, accept=accept)
            report.stats[f"{name}_verified"] = pairs.height
            found.append(pairs)
        duplicates = exact_duplicate_pairs(prepared.documents["content_hash"])
        pairs = pl.concat([*found, duplicates]).unique().sort("a", "b")
        contained, jaccard = accept.rule.scores(views, pairs["a"].to_numpy(), pairs["b"].to_numpy())
        scored = pairs.with_columns(pl.Series("containment", contained), pl.Series("jaccard", jaccard))
        exact = scored.join(duplicates.with_columns(pl.lit(True).alias("exact")), on=["a", "b"], how="left")
        is_exact = pl.col("exact").fill_null(False)
        verified = exact.filter(is_exact | accept.rule.clears(pl.col("containment"), pl.col("jaccard"))).with_columns(
            pl.when(is_exact).then(EXACT_STRENGTH).otherwise(pl.col("containment")).alias("strength")
        )
        roots = cluster.grow_clusters(prepared.documents.height, verified, views, accept.rule, options.cluster_founders)
        report.rows_out = int(len(sorted_unique(roots))) if len(roots) else 0
        report.stats.update(
            candidates=accept.candidates,
            verified_exactly=accept.verified_exactly,
            exact_duplicate_pairs=duplicates.height,
            verified=verified.height,
            clusters=report.rows_out,
        )
    return Linked(verified.select("a", "b", "containment", "jaccard"), roots), report
