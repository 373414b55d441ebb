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

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from provenance import spill
from provenance.config import Config
from provenance.kernels import sorted_member, sorted_unique
from provenance.link import cluster, evidence, lsh, unit_groups, units, verify
from provenance.prepare import minhash
from provenance.prepare.stage import Prepared, batches
from provenance.stage_report import Progress, StageReport, no_progress, timed

#: ``strength`` of an exact-duplicate pair: above any containment, so copies join first.
EXACT_STRENGTH = 2.0


#: Columns of the evidence each linked pair carries (``evidence.PAIR_COLUMNS``, 1.0 share for exact duplicates).
EVIDENCE_COLUMNS = ("share", "aligned", "evidence_units", "copy_confidence")


@dataclass
class Linked:
    """Pairs with evidence of copying and the cluster root (row index) of every document.

    ``pairs``: ``a, b, containment, jaccard, exact`` and the :data:`EVIDENCE_COLUMNS`
    of every pair that is a copy (what clusters and trees are made of);
    ``rule_pairs``: ``a, b, containment, jaccard`` of every pair the shingle rule
    verified, copy or not (what the store keeps, so an incremental run
    re-decides the evidence of each against the whole corpus's floating lines);
    ``floating``: the corpus's floating lines (``link.units``).
    """

    pairs: pl.DataFrame
    roots: np.ndarray
    rule_pairs: pl.DataFrame | None = None
    floating: units.Floating | None = None
    #: Units of the rows ``unit_rows`` (ascending): every row of a copied pair, so trace aligns its edges on them.
    units: units.Units | None = None
    unit_rows: np.ndarray | None = None


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


class Verifier:
    """The ``accept`` callback of ``lsh.candidate_pairs``: prefilter, then the exact pair rule (or a stored verdict).

    Called with packed ``a << 32 | b`` row pairs of ``prepared``, it returns
    those that pass.  ``provenance.store.lookup`` calls it on a small corpus of
    a query and its candidates: the same prefilter and rule as a run.
    """

    def __init__(self, prepared: Prepared, config: Config, known: KnownPairs | None, signed: dict[str, np.ndarray] | None = None) -> None:
        self.views, self.signatures = prepared.views, prepared.signatures
        self.rule = verify.PairRule.of(config.link)
        self.sigmas = config.link.prefilter_sigmas
        self.known = known
        # What each view's signatures were taken over: the prefilter's estimates refer to these sets
        # (``signed`` gives them when already known: a link partition reads them from the work folder).
        self.signed = signed if signed is not None else signed_sizes(prepared, config)
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


def signed_sizes(prepared: Prepared, config: Config) -> dict[str, np.ndarray]:
    """Per view, the size of the set each signature was taken over (the words view leaves frequent shingles out)."""
    return {
        "words": minhash.signed_sizes(prepared.views["words"], prepared.frequent, min_kept_share=config.prepare.frequent_min_kept_share),
        "anchors": prepared.views["anchors"].sizes(),
    }


def text_batches(prepared: Prepared, size: int):
    """``(first row, texts)`` of the corpus in batches of ``size`` rows, from memory or from the spill."""
    n = prepared.documents.height
    for lo, hi in batches(n, size):
        if prepared.texts is None:
            yield lo, prepared.documents["text"].slice(lo, hi - lo)
        else:
            yield lo, prepared.texts.slice(lo, hi - lo)


def texts_of_rows(prepared: Prepared, rows: np.ndarray) -> pl.Series:
    """Texts of ``rows`` (ascending), from memory or from the spill."""
    if prepared.texts is None:
        return prepared.documents["text"].gather(rows)
    return prepared.texts.gather(rows)


def threads() -> int:
    """Threads for batch passes (link's evidence, trace's parts): polars, the kernels and rapidfuzz release the GIL, so batches overlap."""
    return max(1, min(8, os.cpu_count() or 1))


#: Fewer rows than this are one batch on the calling thread: a pool costs more than their work (a lookup's few texts).
SMALL = 256


def _mapped(fn, slices: list[tuple[int, int]]) -> list:
    """``fn`` over ``slices`` on threads, or inline when there is little to do (same results either way)."""
    if len(slices) <= 1 or slices[-1][1] < SMALL:
        return [fn(bounds) for bounds in slices]
    with ThreadPoolExecutor(threads()) as pool:
        return list(pool.map(fn, slices))


def _slices(n: int, size: int, parts: int) -> list[tuple[int, int]]:
    """Row ranges of at most ``size`` rows, and at least ``parts`` of them when there are enough rows."""
    step = max(1, min(size, -(-n // parts)))
    return batches(n, step)


def corpus_lines(prepared: Prepared, config: Config) -> pl.DataFrame:
    """The :func:`units.line_table` of every document (``doc`` = corpus row), batch by batch on threads (same result)."""
    n = prepared.documents.height
    if n == 0:
        return units.line_table(pl.Series([], dtype=pl.String), config.evidence)

    def table(bounds: tuple[int, int]) -> pl.DataFrame:
        lo, hi = bounds
        texts = prepared.documents["text"].slice(lo, hi - lo) if prepared.texts is None else prepared.texts.slice(lo, hi - lo)
        return units.line_table(texts, config.evidence, first_doc=lo)

    return pl.concat(_mapped(table, _slices(n, config.run.batch_size, threads())))


def units_of_rows(prepared: Prepared, floating: units.Floating, rows: np.ndarray, config: Config) -> units.Units:
    """:class:`units.Units` of ``rows`` (ascending corpus rows; unit document ``k`` is ``rows[k]``)."""
    def build(bounds: tuple[int, int]) -> units.Units:  # polars' intermediates are per token: bound them per batch
        return units.build_units(texts_of_rows(prepared, rows[bounds[0] : bounds[1]]), floating, config.evidence)

    return units.concat_units(_mapped(build, _slices(len(rows), config.run.batch_size, threads())))


def units_on_disk(prepared: Prepared, floating: units.Floating, rows: np.ndarray, config: Config) -> unit_groups.UnitGroups:
    """:func:`units_of_rows` written batch by batch to a :class:`~provenance.link.unit_groups.UnitGroups` (groups of
    about ``spill_over_mib``), at most a batch per thread and one more held at once.

    They go in the texts' spill folder, so whatever removes the spill removes them too.
    """
    where = prepared.texts.path.parent if prepared.texts is not None else spill.default_folder()
    groups = unit_groups.UnitGroups(config.run.spill_over_mib * 2**20, where)
    try:
        slices = _slices(len(rows), config.run.batch_size, threads())
        with ThreadPoolExecutor(threads()) as pool:
            waiting: deque = deque()
            for lo, hi in slices:
                waiting.append(pool.submit(
                    lambda lo, hi: units.build_units(texts_of_rows(prepared, rows[lo:hi]), floating, config.evidence), lo, hi))
                while len(waiting) > threads():
                    groups.add(waiting.popleft().result())
            while waiting:
                groups.add(waiting.popleft().result())
    except BaseException:
        groups.remove()
        raise
    return groups


class EvidenceTasks(Protocol):
    """Where units are built and pairs aligned when not in this process (``link.parts.EvidenceOnParts``)."""

    def build(self, prepared: Prepared, floating: units.Floating, rows: np.ndarray, config: Config) -> unit_groups.UnitGroups: ...

    def evidence(self, groups: unit_groups.UnitGroups, a: np.ndarray, b: np.ndarray, config: Config) -> np.ndarray: ...


def copy_evidence(
    prepared: Prepared, pairs: pl.DataFrame, config: Config, floating: units.Floating | None = None,
    stats: dict | None = None, tasks: EvidenceTasks | None = None,
) -> tuple[pl.DataFrame, units.Floating, units.Units, np.ndarray]:
    """``pairs`` with the :data:`EVIDENCE_COLUMNS` and ``copied`` (the evidence rule; exact duplicates always).

    Also the units of the rows it returns (ascending): the rows of the copied
    pairs, what trace aligns (a document paired only by chance, through a shared
    sentence, is not held through trace).  The floating lines are those of ``prepared`` unless ``floating``
    gives the ones of a larger corpus (a lookup's few documents against a
    store's).  ``stats`` gets ``unit_groups``: how many groups of units were on
    disk (0: all in memory).  With ``tasks``, the units are built and the pairs
    aligned there (always on disk).
    """
    if floating is None:
        # Every document's lines, for the corpus-wide count of what floats; dropped before any units exist.
        floating = units.floating_keys(lambda: corpus_lines(prepared, config), config.evidence)
    a, b = pairs["a"].to_numpy().astype(np.int64), pairs["b"].to_numpy().astype(np.int64)
    rows = np.unique(np.concatenate([a, b]))
    exact = pairs["exact"].to_numpy()
    if stats is not None:
        stats["unit_groups"] = 0
    if len(rows) == 0 or (prepared.texts is None and tasks is None):
        found = units_of_rows(prepared, floating, rows, config)  # only paired documents get units
        rows_ev = evidence.pair_evidence(found, np.searchsorted(rows, a), np.searchsorted(rows, b), config.evidence)
        copied = exact | evidence.is_edge(rows_ev, config.evidence)
        kept = np.unique(np.concatenate([a[copied], b[copied]]))
        if len(kept) < len(rows):
            found, rows = units.subset_units(found, np.searchsorted(rows, kept)), kept
    else:  # a corpus too big to hold its texts: its pairs' units wait on disk too (``link.unit_groups``)
        build = tasks.build if tasks is not None else units_on_disk
        with build(prepared, floating, rows, config) as groups:
            if stats is not None:
                stats["unit_groups"] = len(groups.groups())
            pa, pb = np.searchsorted(rows, a), np.searchsorted(rows, b)
            if tasks is not None:
                rows_ev = tasks.evidence(groups, pa, pb, config)
            else:
                rows_ev = groups.blocks(pa, pb, len(evidence.PAIR_COLUMNS), lambda u, x, y: evidence.pair_evidence(u, x, y, config.evidence))
            copied = exact | evidence.is_edge(rows_ev, config.evidence)
            kept = np.unique(np.concatenate([a[copied], b[copied]]))
            found, rows = groups.subset(np.searchsorted(rows, kept)), kept  # only what trace aligns leaves the disk
    columns = dict(zip(evidence.PAIR_COLUMNS, rows_ev.T))
    columns["share"] = np.where(exact, 1.0, columns["share"])
    columns["copy_confidence"] = np.where(
        exact, 1.0, evidence.copy_confidence(rows_ev, config.evidence.chance_unit_match, config.evidence.max_gap)
    )
    return pairs.with_columns(
        *(pl.Series(name, columns[name]) for name in EVIDENCE_COLUMNS), pl.Series("copied", copied)
    ), floating, found, rows


class _BandProgress:
    """``link 1/2`` in bands: each view's bands, a chunk at a time as they are verified."""

    def __init__(self, progress: Progress, bands: list[int]) -> None:
        self.progress, self.bands = progress, bands
        self.total = sum(bands)
        self.done = self.limit = 0
        progress("link 1/2", 0, self.total, "bands")

    def view(self, i: int) -> None:
        """View number ``i``'s bands begin."""
        self.limit = sum(self.bands[: i + 1])
        self.to(sum(self.bands[:i]))

    def chunk(self) -> None:
        """A chunk of the current view's bands is verified."""
        self.to(min(self.limit, self.done + lsh.BANDS_PER_CHUNK))

    def to(self, done: int) -> None:
        if done > self.done:
            self.done = done
            self.progress("link 1/2", done, self.total, "bands")


def link_stage(
    prepared: Prepared, config: Config, known: KnownPairs | None = None, *, progress: Progress = no_progress,
    release_signatures: bool = False,
) -> tuple[Linked, StageReport]:
    """Candidates, verification and clusters (see the module docstring).

    With ``known`` pairs, only candidates touching a ``relink`` row are verified; the others are looked up.
    With ``release_signatures``, ``prepared.signatures`` is emptied once the candidates are found (a fresh run
    reads them nowhere else), so the evidence of copying does not hold them too: 4 bytes x 512 per document.
    ``progress`` hears of each chunk of bands verified (``link 1/2``), then of the evidence and the clusters (``link 2/2``).
    """
    options = config.link
    report = StageReport("link", rows_in=prepared.documents.height)
    with timed(report):
        rank = -prepared.views["words"].sizes()
        thresholds = view_thresholds(config)
        names = list(prepared.signatures)
        told = _BandProgress(progress, [lsh.band_params(thresholds[n], prepared.signatures[n].shape[1])[0] for n in names])
        accept = Verifier(prepared, config, known)

        def verified(packed: np.ndarray) -> np.ndarray:
            kept = accept(packed)
            told.chunk()
            return kept

        found = {}
        for i, (name, sig) in enumerate(prepared.signatures.items()):
            told.view(i)
            found[name] = lsh.candidate_pairs(sig, rank, threshold=thresholds[name], window=options.bucket_window, accept=verified)
        sig = None  # the loop's last view: let release free it
        if release_signatures:
            prepared.signatures.clear()
        told.to(told.total)
        counted = {"candidates": accept.candidates, "verified_exactly": accept.verified_exactly}
        linked = linked_from_verified(prepared, config, found, counted, report, progress=progress)
    return linked, report


def view_thresholds(config: Config) -> dict[str, float]:
    """The LSH threshold of each view."""
    return {"words": config.link.words_threshold, "anchors": config.link.anchors_threshold}


def linked_from_verified(
    prepared: Prepared, config: Config, found: dict[str, pl.DataFrame], counted: dict[str, int], report: StageReport,
    *, progress: Progress = no_progress, tasks: EvidenceTasks | None = None,
) -> Linked:
    """The rest of the link stage once each view's verified candidate pairs are ``found`` (unique ``a < b``, sorted).

    Exact duplicates join them, then scores, the evidence of copying and the
    clusters; ``report`` gets the figures.  Whether the pairs were found in
    this process or in band partitions on workers (``link.parts``), the same
    pairs give the same result.  ``counted``: the candidates and exact checks it took (``report``'s figures);
    ``tasks``: where the evidence of copying runs (:func:`copy_evidence`).
    """
    views = prepared.views
    rule = verify.PairRule.of(config.link)
    for name, pairs in found.items():
        report.stats[f"{name}_verified"] = pairs.height
    report.stats.update(counted)
    progress("link 2/2", 0, 3, "steps")  # scores, the evidence of copying, the clusters
    duplicates = exact_duplicate_pairs(prepared.documents["content_hash"])
    pairs = pl.concat([*found.values(), duplicates]).unique().sort("a", "b")
    contained, jaccard = rule.scores(views, pairs["a"].to_numpy(), pairs["b"].to_numpy())
    scored = pairs.with_columns(pl.Series("containment", contained), pl.Series("jaccard", jaccard))
    exact = scored.join(duplicates.with_columns(pl.lit(True).alias("exact")), on=["a", "b"], how="left")
    is_exact = pl.col("exact").fill_null(False)
    verified = exact.filter(is_exact | rule.clears(pl.col("containment"), pl.col("jaccard"))).with_columns(
        pl.when(is_exact).then(EXACT_STRENGTH).otherwise(pl.col("containment")).alias("strength")
    )
    rule_pairs = verified.select("a", "b", "containment", "jaccard")
    progress("link 2/2", 1, 3, "steps")
    scored, floating, found_units, unit_rows = copy_evidence(
        prepared, verified.with_columns(is_exact.alias("exact")).drop("strength", strict=False), config, stats=report.stats, tasks=tasks)
    progress("link 2/2", 2, 3, "steps")
    copies = scored.filter("copied").with_columns(pl.when(pl.col("exact")).then(EXACT_STRENGTH).otherwise(pl.col("containment")).alias("strength"))
    roots = cluster.grow_clusters(prepared.documents.height, copies, views, rule, config.link.cluster_founders)
    report.rows_out = len(sorted_unique(roots)) if len(roots) else 0
    progress("link 2/2", 3, 3, "steps")
    report.stats.update(
        exact_duplicate_pairs=duplicates.height,
        verified=verified.height,
        copies=copies.height,
        floating_lines=len(floating.lines),
        clusters=report.rows_out,
    )
    pairs = copies.select("a", "b", "containment", "jaccard", "exact", *EVIDENCE_COLUMNS)
    return Linked(pairs, roots, rule_pairs, floating, found_units, unit_rows)
