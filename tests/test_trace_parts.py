"""trace.parts: whole clusters traced by tasks from files give the single-process trace's tables."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from provenance.chain import Hooks
from provenance.config import Config
from provenance.kernels import doc_keys
from provenance.link.parts import Partitions
from provenance.link.stage import Linked
from provenance.prepare.stage import Prepared
from provenance.tables import dense_clusters
from provenance.trace import parts as tp
from provenance.trace import stage as ts

CONFIG = Config()


@pytest.fixture(scope="module")
def generated(generated_linked: tuple[Prepared, Linked]) -> tuple[Prepared, Linked]:
    return generated_linked


@pytest.mark.parametrize("count", [1, 4])
def test_clusters_traced_by_parts_from_files_equal_one_trace(generated, tmp_path: Path, count: int) -> None:
    prepared, linked = generated
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    assert facts.published is not None  # the generated corpus is dated: dates travel in the parts' files
    one = ts.trace_clusters(prepared, linked.pairs, cluster, facts, CONFIG)
    work = Partitions.create(count, Hooks().map_batches, under=tmp_path)
    report = ts.StageReport("trace")
    keys = doc_keys(prepared.documents["doc_id"])
    split = tp.trace_on_parts(prepared, linked.pairs, cluster, keys, CONFIG, parts=work, report=report)
    assert split.placement.equals(one.placement)
    key = ["parent", "child"]
    assert one.edges.height > 100 and split.edges.sort(key).equals(one.edges.sort(key))
    assert split.consulted.equals(one.consulted)
    # The facts counted by the parts (and the sample) are the single-process ones, the first wave's output.
    counted, dated = tp.read_facts(work.folder / "trace")
    assert dated and counted.derivation.n_clusters == facts.derivation.n_clusters
    for name in tp.COUNTS:
        mine, theirs = getattr(counted.derivation, name), getattr(facts.derivation, name)
        assert np.array_equal(mine.keys, theirs.keys) and np.array_equal(mine.counts, theirs.counts) and mine.least == theirs.least
    assert (report.stats["count_partitions"], report.stats["cluster_sets"]) == (count + 1, count)
    assert report.partitions == 2 * count + 1 and report.stats["partition_output_bytes"] > 0
    inputs = sorted((work.folder / "trace").glob("part-*-in.parquet"))
    assert len(inputs) == count
    sizes = [pl.read_parquet(p).height for p in inputs]
    assert sum(sizes) == len(ts.multi_members(cluster))
    # Whole clusters: no cluster is in two parts.
    owners = [set(cluster[pl.read_parquet(p)["row"].to_numpy()].tolist()) for p in inputs]
    assert sum(len(o) for o in owners) == len(set().union(*owners))


def test_the_corpus_facts_come_back_from_their_files(generated, tmp_path: Path) -> None:
    prepared, linked = generated
    cluster = dense_clusters(linked.roots)
    facts = ts.corpus_facts(prepared.documents, cluster, CONFIG)
    tp.write_facts(tmp_path, facts)
    back, dated = tp.read_facts(tmp_path)
    assert dated and back.derivation.n_clusters == facts.derivation.n_clusters
    for name in tp.COUNTS:
        mine, theirs = getattr(back.derivation, name), getattr(facts.derivation, name)
        assert np.array_equal(mine.keys, theirs.keys) and np.array_equal(mine.counts, theirs.counts) and mine.least == theirs.least
    words = list(prepared.documents["text"][0].split()[:20])
    assert np.array_equal(back.frequency.counts_of(words), facts.frequency.counts_of(words))


def test_trace_stage_on_parts_gives_the_same_tables(generated, tmp_path: Path) -> None:
    prepared, linked = generated
    out_one, _ = ts.trace_stage(prepared, linked, CONFIG)
    work = Partitions.create(3, Hooks().map_batches, under=tmp_path)
    out_split, report = ts.trace_stage(prepared, linked, CONFIG, trace_all=functools.partial(tp.trace_on_parts, parts=work))
    for name in ("documents", "clusters", "edges"):
        assert getattr(out_split, name).equals(getattr(out_one, name)), name
    assert (report.partitions, report.stats["edges"]) == (3 + 1 + 3, out_one.edges.height)


@pytest.mark.parametrize("budget", [2, 4])
def test_viral_clusters_split_at_the_tree_level_give_the_same_tables(generated, tmp_path: Path, budget: int) -> None:
    """Clusters past a task's budget are counted, priced and measured in chunks of tasks: one process's tables."""
    prepared, linked = generated
    config = CONFIG.replace(batch_size=budget)
    cluster = dense_clusters(linked.roots)
    sizes = np.bincount(cluster)
    assert (sizes > budget).sum() >= 1 and sizes.max() > 2 * budget  # at least one cluster in several chunks
    facts = ts.corpus_facts(prepared.documents, cluster, config)
    one = ts.trace_clusters(prepared, linked.pairs, cluster, facts, config)
    work = Partitions.create(3, Hooks().map_batches, under=tmp_path)
    report = ts.StageReport("trace")
    split = tp.trace_on_parts(prepared, linked.pairs, cluster, doc_keys(prepared.documents["doc_id"]), config, parts=work, report=report)
    assert split.placement.equals(one.placement)
    key = ["parent", "child"]
    assert split.edges.sort(key).equals(one.edges.sort(key))
    assert split.consulted.equals(one.consulted)
    assert report.stats["viral_clusters"] == int((sizes > budget).sum())
    # No part holds a viral cluster; every viral member was priced by a chunk of at most ``budget`` texts.
    inputs = [pl.read_parquet(p)["row"].to_numpy() for p in (work.folder / "trace").glob("part-*-in.parquet")]
    held = np.concatenate(inputs) if inputs else np.zeros(0, dtype=np.int64)
    assert not (sizes[cluster[held]] > budget).any()
    for path in (work.folder / "trace").glob("viral-*-price-*-pairs.parquet"):
        pairs = pl.read_parquet(path)
        assert pairs.height <= budget // 2 and len(np.unique(pairs.to_numpy())) <= budget
