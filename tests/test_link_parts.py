"""link.parts: the link stage as band slices over a work folder, whose union is the single-process stage."""

from __future__ import annotations

import mmap
from dataclasses import fields
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from provenance.chain import Hooks
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.link import lsh, parts
from provenance.link.stage import Linked, Verifier, link_stage
from provenance.prepare.shingle import ShingleSets
from provenance.prepare.stage import Prepared

CONFIG = Config()


@pytest.fixture(scope="module")
def generated(generated_linked: tuple[Prepared, Linked]) -> tuple[Prepared, Linked]:
    return generated_linked


def on_parts(tmp_path: Path, count: int) -> parts.Partitions:
    return parts.Partitions.create(count, Hooks().map_batches, under=tmp_path)


def test_band_slices_cover_each_view_once_in_about_count_slices(tmp_path: Path) -> None:
    slices = parts.band_slices(tmp_path, {"words": 117, "anchors": 85}, 8)
    for view, bands in (("words", 117), ("anchors", 85)):
        mine = [(s.first, s.stop) for s in slices if s.view == view]
        assert mine[0][0] == 0 and mine[-1][1] == bands and all(a[1] == b[0] for a, b in zip(mine, mine[1:]))
    assert len(slices) == 9 and sum(len(s) for s in slices) == 202
    assert [(s.view, len(s)) for s in parts.band_slices(tmp_path, {"words": 3, "anchors": 2}, 100)] == [("words", 1)] * 3 + [("anchors", 1)] * 2


def test_evidence_on_parts_in_many_groups_is_the_single_process_evidence(generated, tmp_path: Path) -> None:
    """A budget of 0 bytes makes each batch of units its own group: the pairs are aligned in many blocks of two."""
    prepared, linked = generated
    work = on_parts(tmp_path, 5)
    small = CONFIG.replace(spill_over_mib=0)
    split, report = parts.link_on_parts(prepared, small, work)
    assert report.stats["unit_groups"] == 5 and report.stats["evidence_tasks"] > 5 + 5
    assert split.pairs.equals(linked.pairs) and np.array_equal(split.roots, linked.roots)
    for name in fields(linked.units):
        assert np.array_equal(getattr(split.units, name.name), getattr(linked.units, name.name)), name.name
    assert not list((work.folder / "units").iterdir())  # the units' folder is gone once trace's units are read
    work.remove()


def test_slices_find_the_whole_bandings_candidates_and_pair_partitions_verify_them_once(generated, tmp_path: Path) -> None:
    """Each view's band slices, run from the memory-mapped work folder, find exactly the candidates of one banding;
    the pair partitions verify each distinct pair once and keep exactly what one process keeps."""
    prepared, _ = generated
    work = on_parts(tmp_path, 5)
    work.write_corpus(prepared, CONFIG)
    rank = -prepared.views["words"].sizes()
    slices, whole_verified = [], {}
    for view, threshold in (("words", CONFIG.link.words_threshold), ("anchors", CONFIG.link.anchors_threshold)):
        args = dict(threshold=threshold, window=CONFIG.link.bucket_window)
        everything = lsh.candidate_pairs(prepared.signatures[view], rank, **args)
        whole_verified[view] = lsh.candidate_pairs(prepared.signatures[view], rank, **args, accept=Verifier(prepared, CONFIG, None))
        bands = lsh.band_params(threshold, CONFIG.prepare.num_perm)[0]
        mine = parts.band_slices(work.folder, {view: bands}, 3, buckets=4)
        done = [parts.link_partition(s, CONFIG) for s in mine]
        assert len(done) == 3 and all(0 < d.candidates < everything.height for d in done)  # each slice finds only some
        files = [pl.read_parquet(s.path(k)) for s in mine for k in range(4)]
        assert all(f.height for f in files)  # the pair hash spreads them over every partition
        assert pl.concat(files).unique().sort("a", "b").equals(everything), view
        slices += mine
    buckets = [parts.PairBucket(work.folder, k, tuple(slices)) for k in range(4)]
    verified = pl.concat([pl.read_parquet(parts.verify_partition(b, CONFIG).path) for b in buckets])
    for view, whole in whole_verified.items():
        assert whole.height > 100 and verified.filter(pl.col("view") == view).select("a", "b").sort("a", "b").equals(whole), view


def test_link_on_parts_gives_the_single_process_link(generated, tmp_path: Path) -> None:
    prepared, linked = generated
    _, one = link_stage(prepared, CONFIG)
    work = on_parts(tmp_path, 6)
    split, report = parts.link_on_parts(prepared, CONFIG, work)
    assert split.pairs.equals(linked.pairs) and split.rule_pairs.equals(linked.rule_pairs)
    assert np.array_equal(split.roots, linked.roots) and np.array_equal(split.unit_rows, linked.unit_rows)
    for name in fields(linked.units):  # the units trace aligns, read back from the workers' batches
        assert np.array_equal(getattr(split.units, name.name), getattr(linked.units, name.name)), name.name
    # The units are built in batches and the pairs aligned in blocks, as tasks too.
    tasks = report.stats["evidence_tasks"]
    assert tasks >= 2 and report.stats["unit_groups"] >= 1
    assert (report.runner, report.partitions) == ("process", 7 + 6 + tasks) and report.stats["partition_output_bytes"] > 0
    assert (report.stats["band_slices"], report.stats["pair_partitions"]) == (7, 6)
    assert len(list((work.folder / "link").glob("candidates-*.parquet"))) == 7 * 6
    assert len(list((work.folder / "link").glob("verified-*.parquet"))) == 6
    # Each distinct pair is checked once: no more candidates than the single-process stage met.
    assert report.stats["candidates"] <= one.stats["candidates"]
    work.remove()
    assert not work.folder.exists()


def test_the_work_folder_holds_the_sets_in_the_lookup_index_format(generated, tmp_path: Path) -> None:
    prepared, _ = generated
    parts.write_views(tmp_path, prepared.views)
    parts.write_signatures(tmp_path, prepared.signatures)
    views, signatures = parts.open_views(tmp_path), parts.open_signatures(tmp_path)
    for view in parts.VIEWS:
        assert isinstance(views[view].hashes, np.memmap)
        assert np.array_equal(views[view].offsets, prepared.views[view].offsets)
        assert np.array_equal(views[view].hashes, prepared.views[view].hashes)
        assert np.array_equal(signatures[view], prepared.signatures[view])


def test_a_worker_that_cannot_see_the_work_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="PROVENANCE_SPILL_DIR"):
        parts.link_partition(parts.BandSlice(tmp_path / "gone", "words", 0, 4), CONFIG)
    with pytest.raises(ProvenanceError, match="PROVENANCE_SPILL_DIR"):
        parts.verify_partition(parts.PairBucket(tmp_path / "gone", 0, ()), CONFIG)


def test_take_mapped_reads_the_rows_a_chunk_at_a_time_and_gives_take(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 9, size=50)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    sets = ShingleSets(rng.integers(0, 2**32, size=int(offsets[-1]), dtype=np.uint64).astype(np.uint32), offsets)
    parts.write_views(tmp_path, {"words": sets, "anchors": sets})
    mapped = parts.open_views(tmp_path)["words"]
    rows = rng.integers(0, 50, size=23)  # unsorted, with repeats
    want = sets.take(rows)
    for every in (1, 3, 100):
        got = parts.take_mapped(mapped, rows, every=every)
        assert np.array_equal(got.offsets, want.offsets) and np.array_equal(got.hashes, want.hashes)
    empty = parts.take_mapped(mapped, np.zeros(0, dtype=np.int64))
    assert empty.offsets.tolist() == [0] and len(empty.hashes) == 0


def _resident_file_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile line")


@pytest.mark.skipif(not Path("/proc/self/status").exists() or not hasattr(mmap, "MADV_DONTNEED"), reason="Linux resident-set accounting")
def test_release_pages_drops_a_mapped_files_pages_from_the_resident_set(tmp_path: Path) -> None:
    parts.save_array(tmp_path / "big.npy", np.ones(64 * 2**20 // 8, dtype=np.int64))
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert int(mapped[:: 512].sum()) == len(mapped[:: 512])  # one read per page: all 64 MiB resident
    before = _resident_file_bytes()
    parts.release_pages(mapped[10:20])  # a view of the mapping finds its file
    assert before - _resident_file_bytes() > 48 * 2**20
    assert int(mapped[:: 512].sum()) == len(mapped[:: 512])  # still readable: the pages come back from the cache
    parts.release_pages(np.ones(3))  # not mapped: nothing to do
