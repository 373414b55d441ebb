"""provenance.chain: the one stage chain, the notebook API, hooks, run.json, plus digest and stage_report.

The seeds (four versions of one article and one other article) go end to
end through ``provenance.run``; hand-made frames (``tests.fixtures``) check
the notebook API's contract: dtypes and column order, equality with the
same documents read from a file, ``.write``, and every hook.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import provenance
from provenance import chain, digest, schemas, stage_report
from provenance.chain import FreshPlan, Hooks, RunResult
from provenance.config import Config
from provenance.prepare.stage import shingle_batch, summarize_batch
from provenance.stage_report import StageReport, timed
from tests.fixtures import make_article, noisy_copy, spin, truncate

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
STAGES = ["ingest", "prepare", "link", "trace", "write"]


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return provenance.run([SEEDS], out_dir=tmp_path_factory.mktemp("seeds_out"))


def _short(doc_id: str) -> str:
    return doc_id.split("_")[0]


def notebook_frame() -> pl.DataFrame:
    """A frame as a notebook user has one: id, text and metadata (two carried columns), some documents to reject."""
    docs = {
        "a-origin": make_article(0),
        "a-spun": spin(make_article(0), 0.3, seed=1),
        "a-head": truncate(make_article(0), 0.6),
        "a-loud": noisy_copy(make_article(0)),  # an exact duplicate after normalisation
        "b-alone": make_article(1),
        "c-origin": make_article(2),
        "c-head": truncate(make_article(2), 0.5),
        "d-short": "Too short to compare with anything.",
        "e-empty": "   ",
    }
    ids = [*docs, "a-origin"]  # the repeated id is rejected
    texts = [*docs.values(), "another text under a taken id"]
    return pl.DataFrame({
        "id": ids,
        "text": texts,
        "lang": ["en"] * len(ids),
        "views": list(range(100, 100 + len(ids))),
    })


def assert_contract(result: RunResult, carried: list[str]) -> None:
    """Exactly the contract's dtypes and column order (documents then carry the input's metadata)."""
    assert list(result.documents.schema.items())[: len(schemas.DOCUMENTS)] == list(schemas.DOCUMENTS.items())
    assert result.documents.columns[len(schemas.DOCUMENTS):] == carried
    assert result.clusters.schema == schemas.CLUSTERS
    assert result.edges.schema == schemas.EDGES
    assert result.rejects.schema == schemas.REJECTS


class Recorder(Hooks):
    """Hooks that record every call, in order, and still run everything."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def begin(self, plan: Any) -> None:
        self.events.append(("begin", type(plan).__name__))

    def stage(self, name: str, fn, *args: Any, **kwargs: Any):
        self.events.append(("stage", name))
        value = fn(*args, **kwargs)
        self.events.append(("done", name))
        return value

    def map_batches(self, fn, *iterables: Any) -> list[Any]:
        self.events.append(("map", fn.__name__, len(iterables[0])))
        return [fn(*args) for args in zip(*iterables)]

    def reported(self, report: StageReport) -> None:
        self.events.append(("reported", report.name))

    def tables_written(self, folder: Path) -> None:
        self.events.append(("written", Path(folder), sorted(p.name for p in Path(folder).iterdir())))


# ---------------------------------------------------------------------------- the seeds end to end


def test_seed_versions_form_one_cluster_and_the_other_article_stays_alone(seeds_run) -> None:
    clusters = {frozenset(_short(d) for d in g["doc_id"].to_list()) for _, g in seeds_run.documents.group_by("cluster_id")}
    assert clusters == {frozenset({"000", "001", "002", "003"}), frozenset({"004"})}


def test_seed_origin_is_the_complete_version_and_depth_follows_parents(seeds_run) -> None:
    docs = seeds_run.documents
    assert sorted(_short(d) for d in docs.filter(pl.col("is_origin"))["doc_id"].to_list()) == ["001", "004"]
    complete = dict(zip(map(_short, docs["doc_id"].to_list()), docs["completeness"].to_list()))
    assert complete["001"] == max(complete[k] for k in ("000", "001", "002", "003"))
    depth = dict(zip(docs["doc_id"].to_list(), docs["depth"].to_list()))
    for row in docs.iter_rows(named=True):
        if row["parent_id"] is None:
            assert row["depth"] == 0 and row["is_origin"]
        else:
            assert row["depth"] == depth[row["parent_id"]] + 1 and not row["is_origin"]
    # Documents come out by cluster, then depth, then id.
    assert docs.select("cluster_id", "depth", "doc_id").equals(docs.select("cluster_id", "depth", "doc_id").sort(pl.all()))


def test_every_non_origin_member_has_one_parent_edge_with_statistics(seeds_run) -> None:
    docs, edges = seeds_run.documents, seeds_run.edges
    assert sorted(edges["child_id"].to_list()) == sorted(docs.filter(~pl.col("is_origin"))["doc_id"].to_list())
    assert edges.select("child_id", "parent_id").rows() == [
        (c, p) for c, p in docs.filter(~pl.col("is_origin")).sort("cluster_id", "parent_id", "doc_id").select("doc_id", "parent_id").rows()
    ]
    for column in schemas.EDGES.names():
        assert edges[column].null_count() == 0, column
    assert (edges["kept"] + edges["substituted"] + edges["inserted"] == edges["child_tokens"]).all()
    assert (edges["kept"] + edges["substituted"] + edges["deleted"] == edges["parent_tokens"]).all()
    spun = edges.filter(pl.col("child_id").str.starts_with("002"))
    assert spun["spin_rate"].item() > 0.1
    assert any("->" in example for example in spun["substitution_examples"].item())


def test_outputs_follow_the_contract_and_run_json_records_the_run(seeds_run) -> None:
    out = seeds_run.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["clusters.parquet", "documents.parquet", "edges.parquet", "evidence.parquet", "rejects.parquet", "run.json"]
    for name, schema in schemas.TABLES.items():
        table = pl.read_parquet(out / f"{name}.parquet")
        assert list(table.schema.items())[: len(schema)] == list(schema.items()), name
        assert table.equals(seeds_run.frames()[name]), name
    info = json.loads((out / "run.json").read_text())
    assert info == json.loads(json.dumps(seeds_run.info, default=str))
    assert info["inputs"] == [str(SEEDS)]
    assert info["config"] == Config().to_dict() and info["config_fingerprint"] == Config().fingerprint()
    assert info["signature"]["scheme"] == "affine32" and info["signature"]["num_perm"] == 256
    assert info["counts"] == {
        "documents": 5, "rejected": 0, "rejects_by_reason": {}, "clusters": 2, "multi_document_clusters": 1, "edges": 3,
    }
    assert list(seeds_run.info["stages"]) == STAGES and sorted(info["stages"]) == sorted(STAGES)
    assert info["stages"]["prepare"]["rows_in"] == 5 and info["stages"]["trace"]["rows_out"] == 3
    assert info["outputs"] == {name: str(out / f"{name}.parquet") for name in schemas.TABLES}
    assert info["versions"]["provenance_source"] == digest.library_digest()
    assert pl.read_parquet(out / "clusters.parquet")["size"].sum() == seeds_run.documents.height


def test_same_input_and_options_give_identical_tables(seeds_run, tmp_path: Path) -> None:
    again = provenance.run([SEEDS], out_dir=tmp_path)
    for name in schemas.TABLES:
        assert (seeds_run.out_dir / f"{name}.parquet").read_bytes() == (tmp_path / f"{name}.parquet").read_bytes(), name
    assert again.info["input_fingerprint"] == seeds_run.info["input_fingerprint"]


def test_input_order_does_not_change_any_table(tmp_path: Path) -> None:
    rows = [{"id": p.stem, "text": p.read_text(encoding="utf-8")} for p in sorted(SEEDS.glob("*.txt"))]
    forward = provenance.run(pl.DataFrame(rows))
    backward = provenance.run(pl.DataFrame(rows[::-1]))
    for name, frame in forward.frames().items():
        assert frame.equals(backward.frames()[name]), name
    assert forward.info["input_fingerprint"] == backward.info["input_fingerprint"]


def test_batches_on_threads_give_the_tables_of_one_batch(seeds_run) -> None:
    """Batches of 2 documents, mapped on threads through the hooks, give the same tables: partitioning is safe."""

    class Threads(Hooks):
        def map_batches(self, fn, *iterables):
            with ThreadPoolExecutor(2) as pool:
                return list(pool.map(fn, *iterables))

    result = provenance.run([SEEDS], Config.from_options({"batch_size": 2}), hooks=Threads())
    assert result.info["stages"]["prepare"]["batches"] == 3
    for name, frame in result.frames().items():
        assert frame.equals(seeds_run.frames()[name]), name
    assert result.info["config_fingerprint"] == seeds_run.info["config_fingerprint"]


def test_outputs_are_readable_like_ordinary_files(seeds_run) -> None:
    """Atomic writes go through mkstemp (mode 0600); the written files get the umask's mode, no temp file stays."""
    umask = os.umask(0)
    os.umask(umask)
    for path in seeds_run.out_dir.iterdir():
        assert not path.name.startswith("."), path.name
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


# ---------------------------------------------------------------------------- the notebook API


@pytest.fixture(scope="module")
def frame_run() -> RunResult:
    return provenance.run(notebook_frame())


def test_a_frame_gives_tables_with_exactly_the_contract_dtypes_and_order(frame_run) -> None:
    assert_contract(frame_run, ["lang", "views"])
    docs = frame_run.documents
    assert docs["views"].dtype == pl.Int64 and docs["lang"].to_list() == ["en"] * docs.height
    assert (docs["source"] == "dataframe").all() and frame_run.info["inputs"] == ["<DataFrame>"]
    # The corpus does what the test is about: clusters with edges, an exact duplicate, and rejects of three kinds.
    assert frame_run.clusters.filter(pl.col("size") > 1)["size"].sort().to_list() == [2, 4]
    assert frame_run.clusters["n_exact_duplicates"].sum() == 1
    assert frame_run.rejects.select("doc_id", "reason").rows() == [
        ("a-origin", "duplicate_id"), ("d-short", "too_short"), ("e-empty", "empty_text"),
    ]
    assert frame_run.out_dir is None  # nothing written without out_dir


def test_a_frame_gives_the_tables_of_the_same_documents_in_a_jsonl_file(frame_run, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    notebook_frame().write_ndjson(path)
    from_file = provenance.run(path)
    assert_contract(from_file, ["lang", "views"])
    assert (from_file.documents["source"] == str(path)).all()
    assert from_file.documents.drop("source").equals(frame_run.documents.drop("source"))
    assert from_file.clusters.equals(frame_run.clusters)
    assert from_file.edges.equals(frame_run.edges)
    assert from_file.rejects.drop("source").equals(frame_run.rejects.drop("source"))


def copy_of(result: RunResult) -> RunResult:
    """A result to write (writing records the outputs in ``info`` and sets ``out_dir``)."""
    return RunResult(result.documents, result.clusters, result.edges, result.rejects, json.loads(json.dumps(result.info)), evidence=result.evidence)


def test_write_gives_parquet_that_reads_back_equal(frame_run, tmp_path: Path) -> None:
    frame_run = copy_of(frame_run)
    paths = frame_run.write(tmp_path / "out")
    assert paths == {**{n: str(tmp_path / "out" / f"{n}.parquet") for n in schemas.TABLES}, "run": str(tmp_path / "out" / "run.json")}
    for name, frame in frame_run.frames().items():
        back = pl.read_parquet(paths[name])
        assert back.schema == frame.schema and back.equals(frame), name
    info = json.loads(Path(paths["run"]).read_text())
    assert info["counts"]["rejects_by_reason"] == {"duplicate_id": 1, "empty_text": 1, "too_short": 1}
    assert sorted(info["stages"]) == sorted(STAGES) and frame_run.out_dir == tmp_path / "out"


def test_the_result_with_out_dir_equals_the_result_written_later(frame_run, tmp_path: Path) -> None:
    direct = provenance.run(notebook_frame(), out_dir=tmp_path / "direct")
    copy_of(frame_run).write(tmp_path / "later")
    for name in schemas.TABLES:
        assert pl.read_parquet(tmp_path / "direct" / f"{name}.parquet").equals(pl.read_parquet(tmp_path / "later" / f"{name}.parquet"))
    assert direct.out_dir == tmp_path / "direct"


def test_every_hook_is_called_for_every_stage_in_order(tmp_path: Path) -> None:
    hooks = Recorder()
    out = tmp_path / "out"
    result = provenance.run(notebook_frame(), Config.from_options({"batch_size": 3}), out_dir=out, hooks=hooks)
    # 10 rows ingested, 8 accepted after ingest (duplicate id, empty text), 7 after prepare (too short).
    assert result.documents.height == 7
    expected: list[tuple[Any, ...]] = [("begin", "FreshPlan")]
    for name in STAGES:
        expected.append(("stage", name))
        if name == "prepare":
            expected += [("map", summarize_batch.__name__, 3), ("map", shingle_batch.__name__, 3)]
        if name == "write":
            expected.append(("written", out, ["clusters.parquet", "documents.parquet", "edges.parquet", "evidence.parquet", "rejects.parquet", "run.json"]))
        expected += [("done", name), ("reported", name)]
    assert hooks.events == expected


def test_without_out_dir_there_is_no_write_stage_and_no_tables_written() -> None:
    hooks = Recorder()
    provenance.run(notebook_frame(), hooks=hooks)
    assert [e for e in hooks.events if e[0] in ("stage", "written")] == [("stage", n) for n in STAGES[:-1]]


def test_a_hook_runs_the_stage_it_is_given(tmp_path: Path) -> None:
    """Hooks.stage is what runs a stage: whatever it returns is what the chain goes on with."""

    class NoEdges(Hooks):
        def stage(self, name, fn, *args, **kwargs):
            value, report = fn(*args, **kwargs)
            if name == "trace":
                value.edges = value.edges.clear()
                report.stats = {"replaced": True}
            return value, report

    result = provenance.run(notebook_frame(), hooks=NoEdges())
    assert result.edges.height == 0 and result.info["stages"]["trace"] == {**result.info["stages"]["trace"], "replaced": True}
    assert result.documents.filter(~pl.col("is_origin")).height == 4  # the placements are the stage's own


def test_a_corpus_with_nothing_left_gives_empty_tables_in_the_contract(tmp_path: Path) -> None:
    hooks = Recorder()
    frame = pl.DataFrame({"id": ["x", "y"], "text": ["Too short.", "Also far too short to keep."], "lang": ["en", "fr"]})
    result = provenance.run(frame, out_dir=tmp_path / "out", hooks=hooks)
    assert_contract(result, ["lang"])
    assert result.documents.height == result.clusters.height == result.edges.height == 0
    assert result.rejects.select("doc_id", "reason").rows() == [("x", "too_short"), ("y", "too_short")]
    assert [e[1] for e in hooks.events if e[0] == "reported"] == ["ingest", "prepare", "write"]
    assert pl.read_parquet(tmp_path / "out" / "documents.parquet").columns == result.documents.columns
    assert result.info["counts"]["documents"] == 0 and result.info["counts"]["rejected"] == 2


def test_a_plan_with_an_unchanged_result_skips_link_and_trace(frame_run) -> None:
    class Published(FreshPlan):
        def unchanged(self, prepared):
            return frame_run

    hooks = Recorder()
    assert chain.execute(notebook_frame(), Config(), Published(), hooks) is frame_run
    assert [e[1] for e in hooks.events if e[0] == "reported"] == ["ingest", "prepare"]


def test_spilled_texts_give_the_same_tables_and_are_removed(frame_run, tmp_path: Path, monkeypatch) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", str(spill_dir))
    seen: list[list[str]] = []

    class Watch(Hooks):
        def reported(self, report):
            seen.append(sorted(p.name for p in spill_dir.rglob("*") if p.is_file()))

    result = provenance.run(notebook_frame(), Config.from_options({"spill_over_mib": 0}), hooks=Watch())
    assert result.info["stages"]["prepare"]["texts_on_disk"] is True
    assert seen[1] and seen[2]  # the texts waited on disk during link and trace...
    assert list(spill_dir.rglob("*.parquet")) == []  # ...and are gone once the run is over
    for name, frame in result.frames().items():
        assert frame.equals(frame_run.frames()[name]), name


def test_spilled_texts_are_removed_when_a_stage_fails(tmp_path: Path, monkeypatch) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", str(spill_dir))

    class Boom(Hooks):
        def stage(self, name, fn, *args, **kwargs):
            if name == "trace":
                assert list(spill_dir.rglob("*.parquet"))  # the spill exists when trace would run
                raise RuntimeError("trace failed")
            return fn(*args, **kwargs)

    with pytest.raises(RuntimeError, match="trace failed"):
        provenance.run(notebook_frame(), Config.from_options({"spill_over_mib": 0}), hooks=Boom())
    assert list(spill_dir.rglob("*.parquet")) == []


def test_input_fingerprint_follows_ids_contents_and_rejects() -> None:
    base = notebook_frame()
    fp = provenance.run(base).info["input_fingerprint"]
    assert provenance.run(base.reverse()).info["input_fingerprint"] != fp  # the other copy of "a-origin" is kept now
    assert provenance.run(base.slice(0, 9).reverse()).info["input_fingerprint"] == provenance.run(base.slice(0, 9)).info["input_fingerprint"]
    longer = pl.col("text") + " One more sentence here."
    edited = base.with_columns(pl.when(pl.col("id") == "b-alone").then(longer).otherwise(pl.col("text")).alias("text"))
    assert provenance.run(edited).info["input_fingerprint"] != fp
    # Metadata is not part of the input fingerprint of a fresh run (ids and contents are).
    assert provenance.run(base.with_columns(pl.lit("de").alias("lang"))).info["input_fingerprint"] == fp


def test_the_config_given_is_the_config_used() -> None:
    strict = provenance.run(notebook_frame(), Config.from_options({"min_containment": 0.99, "min_jaccard": 0.99}))
    assert strict.info["config"]["link"]["min_containment"] == 0.99
    assert strict.clusters.filter(pl.col("size") > 1)["size"].to_list() == [2]  # only the exact duplicate is left together


# ---------------------------------------------------------------------------- digest and stage_report


def test_source_digest_changes_with_any_byte_and_with_names(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "page.css").write_text("body {}\n")
    (tmp_path / "notes.txt").write_text("not code\n")
    monkeypatch.setattr(digest, "_ROOT", tmp_path)

    def fresh(*paths: str) -> str:
        digest.source_digest.cache_clear()
        digest.library_digest.cache_clear()
        return digest.source_digest(*paths) if paths else digest.library_digest()

    try:
        ab, lib = fresh("a.py", "b.py"), fresh()
        assert len(ab) == 16 and int(ab, 16) >= 0
        assert fresh("b.py", "a.py") != ab and fresh("a.py") != ab
        (tmp_path / "e.py").write_text("x = 1\n")
        assert fresh("e.py") != fresh("a.py")  # the same bytes under another name are another source
        (tmp_path / "e.py").unlink()
        (tmp_path / "b.py").write_text("y = 3\n")
        assert fresh("a.py", "b.py") != ab and fresh() != lib
        lib = fresh()
        (tmp_path / "assets" / "page.css").write_text("body { color: red }\n")
        assert fresh() != lib  # packaged assets count
        lib = fresh()
        (tmp_path / "notes.txt").write_text("still not code\n")
        assert fresh() == lib  # other files do not
        (tmp_path / "c.py").write_text("")
        assert fresh() != lib  # a new module does
        (tmp_path / "b.py").rename(tmp_path / "d.py")
        assert fresh("a.py", "d.py") != fresh("a.py", "c.py")
    finally:
        digest.source_digest.cache_clear()
        digest.library_digest.cache_clear()


def test_timed_records_seconds_also_when_the_body_raises(monkeypatch) -> None:
    clock = iter([10.0, 12.5, 20.0, 20.25])
    monkeypatch.setattr(stage_report.time, "perf_counter", lambda: next(clock))
    report = StageReport("link", rows_in=4)
    with timed(report) as same:
        assert same is report
    assert report.seconds == 2.5
    failing = StageReport("trace")
    with pytest.raises(ValueError), timed(failing):
        raise ValueError("boom")
    assert failing.seconds == 0.25


def test_stage_report_dict_and_line() -> None:
    report = StageReport("link", seconds=1.23456, rows_in=10, rows_out=3, stats={"candidates": 12, "clusters": 2})
    assert report.to_dict() == {"seconds": 1.2346, "rows_in": 10, "rows_out": 3, "runner": "process", "partitions": 1,
                                "candidates": 12, "clusters": 2}
    assert report.line() == "link: 10 -> 3 rows in 1.23 s {'candidates': 12, 'clusters': 2}"
    assert StageReport("write").to_dict() == {"seconds": 0.0, "rows_in": 0, "rows_out": 0, "runner": "process", "partitions": 1}


def test_versions_name_the_packages_and_the_library_source() -> None:
    found = chain.versions()
    assert found["provenance_source"] == digest.library_digest()
    assert found["provenance"] == provenance.__version__
    assert {"python", "polars", "numpy", "numba", "datasketch"} <= set(found)


def test_run_result_frames_are_the_four_tables_in_order(frame_run) -> None:
    assert list(frame_run.frames()) == list(schemas.TABLES)
    assert all(frame_run.frames()[n] is getattr(frame_run, n) for n in schemas.TABLES)
    assert np.array_equal(frame_run.documents["n_chars"].to_numpy(), frame_run.documents["text"].str.len_chars().to_numpy())


def test_a_library_run_refuses_an_out_dir_inside_its_input_folder(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(make_article(0), encoding="utf-8")
    with pytest.raises(provenance.ProvenanceError, match="inside the input folder"):
        provenance.run(folder, out_dir=folder / "out")
    assert not (folder / "out").exists()
    provenance.run(folder, out_dir=folder / ".out")  # a hidden folder is never walked


def test_partitions_run_link_and_trace_as_tasks_on_the_hooks_map_and_leave_no_work_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``partitions`` > 1: link's band slices and trace's cluster parts go through ``Hooks.map_batches`` (inline
    here), meet in a work folder under PROVENANCE_SPILL_DIR that is gone after the run, and change no table."""
    monkeypatch.setenv("PROVENANCE_SPILL_DIR", str(tmp_path / "spill"))
    mapped: list[str] = []

    class Counting(Hooks):
        def map_batches(self, fn, *iterables):
            mapped.append(fn.__name__)
            return super().map_batches(fn, *iterables)

    one = chain.run([SEEDS], Config())
    split = chain.run([SEEDS], Config().replace(partitions=3), hooks=Counting())
    for name, frame in one.frames().items():
        assert split.frames()[name].equals(frame), name
    assert mapped == ["summarize_batch", "shingle_batch", "link_partition", "verify_partition", "units_partition",
                      "evidence_partition", "count_partition", "trace_partition"]
    stages = split.info["stages"]
    # 3 asked: 2 slices of each view's bands and 3 pair partitions; the units of the four paired seeds in 2
    # batches, one group, so one block of pairs; the seeds' one cluster with copies is one set, counted (with the
    # singletons' sample) and traced.
    assert (stages["link"]["runner"], stages["link"]["partitions"], stages["trace"]["partitions"]) == ("process", 4 + 3 + 2 + 1, 2 + 1)
    assert (one.info["stages"]["link"]["partitions"], one.info["stages"]["trace"]["partitions"]) == (1, 1)
    assert list((tmp_path / "spill").iterdir()) == []
