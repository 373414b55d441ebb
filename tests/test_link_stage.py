"""link.stage: LSH candidates of both views, prefiltered and verified as found, exact duplicates, clusters, known pairs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import Config
from provenance.ingest import ingest_stage
from provenance.link import lsh
from provenance.link.cluster import grow_clusters
from provenance.link.stage import EXACT_STRENGTH, KnownPairs, Linked, exact_duplicate_pairs, link_stage
from provenance.link.verify import PairRule, hopeful_pairs
from provenance.prepare import minhash
from provenance.prepare.stage import Prepared, prepare_stage
from provenance.link import evidence
from tests.fixtures import make_article, noisy_copy, spin, story_sentences, truncate

#: Stories 0-5, each with a half truncation and a spun copy (rows 3s, 3s+1, 3s+2), then an ALL-CAPS copy
#: of story 0 (an exact duplicate after normalisation), an excerpt of story 2, and a briefing quoting a
#: quarter of stories 1, 3, 4 and 5 each (close to the containment floor of each, passing none).
BRIEFING = "Morning briefing\n\n" + "\n\n".join(" ".join(story_sentences(s)[6:9]) for s in (1, 3, 4, 5)) + "\n"
TEXTS = [t for s in range(6) for t in (make_article(s), truncate(make_article(s), 0.5), spin(make_article(s), 0.3, seed=s))]
TEXTS += [noisy_copy(make_article(0)), make_article(2, 6, start=3, headline=False), BRIEFING]
STORY = [s for s in range(6) for _ in range(3)] + [0, 2, -1]


def prepare(texts: list[str], config: Config) -> Prepared:
    frame = pl.DataFrame({"id": [f"doc{i:02d}" for i in range(len(texts))], "text": texts})
    ingested, _ = ingest_stage(frame, config)
    prepared, _ = prepare_stage(ingested, config)
    return prepared


@pytest.fixture(scope="module")
def default_run() -> tuple[Prepared, Linked, dict]:
    config = Config()
    prepared = prepare(TEXTS, config)
    linked, report = link_stage(prepared, config)
    return prepared, linked, report.stats


def pair_set(frame: pl.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["a"].to_list(), frame["b"].to_list()))


def verified_per_view(prepared: Prepared, config: Config) -> dict[str, int]:
    """Per view: how many of its LSH candidates pass the pair rule (what the stage counts as that view's verified)."""
    rank = -prepared.views["words"].sizes()
    rule = PairRule.of(config.link)
    out = {}
    for name, threshold in (("words", config.link.words_threshold), ("anchors", config.link.anchors_threshold)):
        found = lsh.candidate_pairs(prepared.signatures[name], rank, threshold=threshold, window=config.link.bucket_window)
        out[name] = int(rule.passes(prepared.views, found["a"].to_numpy(), found["b"].to_numpy()).sum())
    return out


def partition(roots: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for row, root in enumerate(roots.tolist()):
        groups.setdefault(root, set()).add(row)
    return {frozenset(g) for g in groups.values()}


# ---------------------------------------------------------------------------- what the stage returns


def test_clusters_are_the_stories(default_run):
    _, linked, stats = default_run
    expected = {frozenset(i for i, s in enumerate(STORY) if s == story) for story in range(-1, 6)}
    assert partition(linked.roots) == expected  # the briefing is a singleton
    assert stats["clusters"] == 7


def test_verified_pairs_are_every_pair_passing_the_rule(default_run):
    prepared, linked, stats = default_run
    rule = PairRule.of(Config().link)
    a, b = np.triu_indices(len(TEXTS), 1)
    passing = rule.passes(prepared.views, a, b)
    assert pair_set(linked.rule_pairs) == set(zip(a[passing].tolist(), b[passing].tolist()))
    assert linked.rule_pairs.columns == ["a", "b", "containment", "jaccard"]
    assert linked.rule_pairs.schema["a"] == pl.UInt32
    rows = linked.rule_pairs.sort("a", "b")
    assert rows.equals(linked.rule_pairs)  # sorted
    c, j = rule.scores(prepared.views, rows["a"].to_numpy(), rows["b"].to_numpy())
    assert rows["containment"].to_list() == c.tolist() and rows["jaccard"].to_list() == j.tolist()
    assert stats["verified"] == linked.rule_pairs.height


def test_copies_are_the_verified_pairs_with_evidence_of_copying(default_run):
    prepared, linked, stats = default_run
    assert linked.pairs.columns == ["a", "b", "containment", "jaccard", "exact", "share", "aligned", "evidence_units", "copy_confidence"]
    assert pair_set(linked.pairs) <= pair_set(linked.rule_pairs)
    assert stats["copies"] == linked.pairs.height
    texts = prepared.documents["text"].to_list()
    options = Config().evidence
    for a, b, exact in linked.rule_pairs.join(linked.pairs.select("a", "b", "exact"), on=["a", "b"], how="left").select("a", "b", "exact").rows():
        assert (exact is not None) == (bool(exact) or evidence.decide_texts(texts[a], texts[b], options)["edge"]), (a, b)
    exact = linked.pairs.filter("exact")
    assert exact.height == 1 and exact["copy_confidence"].to_list() == [1.0]
    assert {name: stats[f"{name}_verified"] for name in ("words", "anchors")} == verified_per_view(prepared, Config())


def test_exact_duplicates_are_paired_with_the_first_copy(default_run):
    prepared, linked, stats = default_run
    assert prepared.documents["content_hash"][18] == prepared.documents["content_hash"][0]
    assert stats["exact_duplicate_pairs"] == 1
    row = linked.pairs.filter((pl.col("a") == 0) & (pl.col("b") == 18))
    assert row.select("containment", "jaccard").row(0) == (1.0, 1.0)


def test_exact_duplicate_pairs_pair_every_copy_with_the_first_row():
    hashes = pl.Series(["x", "y", "x", "z", "x", "y"])
    pairs = exact_duplicate_pairs(hashes)
    assert pairs.schema == lsh.PAIRS_SCHEMA
    assert sorted(pair_set(pairs)) == [(0, 2), (0, 4), (1, 5)]
    assert exact_duplicate_pairs(pl.Series(["a", "b"])).height == 0


def test_exact_duplicates_join_first_even_when_the_rule_would_refuse_them():
    """A duplicate pair (same content hash) is an edge of strength EXACT_STRENGTH whatever its scores."""
    config = Config()
    prepared = prepare(TEXTS, config)
    # Make rows 0 and 18 look unrelated to the pair rule: empty sets, so only the hash can pair them.
    for name in ("words", "anchors"):
        sets = prepared.views[name]
        sizes = sets.sizes().copy()
        keep = np.ones(len(sets.hashes), dtype=bool)
        keep[sets.offsets[18] : sets.offsets[19]] = False
        sizes[18] = 0
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        prepared.views[name] = type(sets)(sets.hashes[keep], offsets)
        prepared.signatures[name][18] = minhash.EMPTY
    linked, _ = link_stage(prepared, config)
    assert (0, 18) in pair_set(linked.pairs)
    assert linked.roots[18] == linked.roots[0]
    assert EXACT_STRENGTH > 1.0  # above any containment: duplicates join before anything else


def test_roots_are_grow_clusters_of_the_verified_pairs(default_run):
    prepared, linked, _ = default_run
    config = Config()
    edges = linked.pairs.with_columns(
        pl.when((pl.col("a") == 0) & (pl.col("b") == 18)).then(EXACT_STRENGTH).otherwise(pl.col("containment")).alias("strength")
    )
    roots = grow_clusters(len(TEXTS), edges, prepared.views, PairRule.of(config.link), config.link.cluster_founders)
    np.testing.assert_array_equal(roots, linked.roots)


# ---------------------------------------------------------------------------- the prefilter


def all_candidates(prepared: Prepared, config: Config) -> np.ndarray:
    """Packed ``a << 32 | b`` candidates of both views, unfiltered."""
    rank = -prepared.views["words"].sizes()
    thresholds = {"words": config.link.words_threshold, "anchors": config.link.anchors_threshold}
    codes = []
    for name, sig in prepared.signatures.items():
        found = lsh.candidate_pairs(sig, rank, threshold=thresholds[name], window=config.link.bucket_window)
        codes.append((found["a"].to_numpy().astype(np.uint64) << np.uint64(32)) | found["b"].to_numpy().astype(np.uint64))
    return np.unique(np.concatenate(codes))


def test_prefilter_drops_candidates_but_never_a_pair_the_rule_passes():
    # 64 permutations: more chance collisions in LSH, and estimates loose enough to keep the true pairs.
    config = Config.from_options({"num_perm": 64})
    prepared = prepare(TEXTS, config)
    codes = all_candidates(prepared, config)
    a, b = lsh.unpack(codes)
    rule = PairRule.of(config.link)
    hopeful = np.zeros(len(a), dtype=bool)
    signed = {
        "words": minhash.signed_sizes(prepared.views["words"], prepared.frequent, min_kept_share=config.prepare.frequent_min_kept_share),
        "anchors": prepared.views["anchors"].sizes(),
    }
    for name in ("words", "anchors"):
        hopeful_pairs(prepared.signatures[name], signed[name], a, b, rule.min_containment, config.link.prefilter_sigmas, hopeful)
    passing = rule.passes(prepared.views, a, b)
    assert (~hopeful).sum() >= 5  # the prefilter has something to drop here (the briefing's chance collisions)...
    assert not (passing & ~hopeful).any()  # ...and none of it is a true pair

    linked, report = link_stage(prepared, config)
    # Candidates can recur in later chunks when rejected, so the counts are at least the distinct figures.
    assert report.stats["candidates"] >= len(codes)
    assert report.stats["candidates"] - report.stats["verified_exactly"] >= (~hopeful).sum()
    unfiltered, full = link_stage(prepared, config.replace(prefilter_sigmas=1e9))
    assert full.stats["verified_exactly"] == full.stats["candidates"]
    assert linked.pairs.equals(unfiltered.pairs)
    np.testing.assert_array_equal(linked.roots, unfiltered.roots)
    assert pair_set(linked.pairs) == set(zip(a[passing].tolist(), b[passing].tolist())) | {(0, 18)}
    # Candidates that survive the prefilter but fail the exact rule are not kept.
    assert (hopeful & ~passing).sum() >= 1
    assert {name: report.stats[f"{name}_verified"] for name in ("words", "anchors")} == verified_per_view(prepared, config)


# ---------------------------------------------------------------------------- known pairs (incremental runs)


def packed(frame: pl.DataFrame) -> np.ndarray:
    return np.sort((frame["a"].to_numpy().astype(np.uint64) << np.uint64(32)) | frame["b"].to_numpy().astype(np.uint64))


def test_known_pairs_are_looked_up_and_only_relinked_rows_verified(default_run):
    prepared, linked, stats = default_run
    config = Config()
    n = len(TEXTS)
    verified = packed(linked.pairs)
    # Nothing to relink: every verdict is looked up, nothing measured, same result.
    looked_up, report = link_stage(prepared, config, KnownPairs(np.zeros(n, dtype=bool), verified))
    assert report.stats["verified_exactly"] == 0
    assert looked_up.pairs.equals(linked.pairs)
    np.testing.assert_array_equal(looked_up.roots, linked.roots)
    # Everything relinked: the same as a fresh run.
    fresh, report = link_stage(prepared, config, KnownPairs(np.ones(n, dtype=bool), np.zeros(0, dtype=np.uint64)))
    assert fresh.pairs.equals(linked.pairs) and report.stats["verified_exactly"] == stats["verified_exactly"]
    # Stored verdicts are trusted for rows not relinked: with none stored only exact duplicates and relinked rows pair.
    relink = np.zeros(n, dtype=bool)
    relink[3] = True  # story 1's source: its pairs with its copies are measured, the copies' own pair is looked up (none)
    partial, _ = link_stage(prepared, config, KnownPairs(relink, np.zeros(0, dtype=np.uint64)))
    assert {(3, 4), (3, 5), (4, 5)} <= pair_set(linked.pairs)
    assert pair_set(partial.pairs) == {(0, 18), (3, 4), (3, 5)}
    assert partition(partial.roots) == {frozenset({0, 18}), frozenset({3, 4, 5})} | {
        frozenset({i}) for i in range(n) if i not in {0, 18, 3, 4, 5}
    }
