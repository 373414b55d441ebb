"""End-to-end on the seeds, through the library (no Prefect): contract, determinism, atomicity."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from provenance import schemas
from provenance.config import PipelineConfig
from provenance.pipeline import run

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory):
    return run([SEEDS], tmp_path_factory.mktemp("seeds_out"), PipelineConfig())


def _short(doc_id: str) -> str:
    return doc_id.split("_")[0]


def test_seed_versions_form_one_cluster_and_the_other_article_stays_alone(seeds_run) -> None:
    docs = seeds_run.documents
    clusters = {
        frozenset(_short(d) for d in group["doc_id"].to_list())
        for _, group in docs.group_by("cluster_id")
    }
    assert clusters == {frozenset({"000", "001", "002", "003"}), frozenset({"004"})}


def test_seed_origin_is_the_complete_version(seeds_run) -> None:
    docs = seeds_run.documents
    origins = sorted(_short(d) for d in docs.filter(pl.col("is_origin"))["doc_id"].to_list())
    assert origins == ["001", "004"]
    complete = dict(zip(map(_short, docs["doc_id"].to_list()), docs["completeness"].to_list()))
    assert complete["001"] == max(complete[k] for k in ("000", "001", "002", "003"))


def test_every_non_origin_member_has_one_parent_edge_with_statistics(seeds_run) -> None:
    docs, edges = seeds_run.documents, seeds_run.edges
    children = docs.filter(~pl.col("is_origin"))
    assert sorted(edges["child_id"].to_list()) == sorted(children["doc_id"].to_list())
    assert edges["parent_id"].is_in(docs["doc_id"].implode()).all()
    for column in schemas.EDGES.names():
        assert edges[column].null_count() == 0, column
    assert (edges["confidence"].is_between(0, 1)).all()
    assert (edges["kept"] + edges["substituted"] + edges["inserted"] == edges["child_tokens"]).all()
    assert (edges["kept"] + edges["substituted"] + edges["deleted"] == edges["parent_tokens"]).all()
    spun = edges.filter(pl.col("child_id").str.starts_with("002"))
    assert spun["spin_rate"].item() > 0.1
    assert any("->" in example for example in spun["substitution_examples"].item())


def test_depth_follows_parents(seeds_run) -> None:
    docs = seeds_run.documents
    depth = dict(zip(docs["doc_id"].to_list(), docs["depth"].to_list()))
    for row in docs.iter_rows(named=True):
        if row["parent_id"] is None:
            assert row["depth"] == 0 and row["is_origin"]
        else:
            assert row["depth"] == depth[row["parent_id"]] + 1


def test_outputs_follow_the_contract(seeds_run) -> None:
    out = seeds_run.out_dir
    for name, schema in schemas.TABLES.items():
        table = pl.read_parquet(out / f"{name}.parquet")
        assert list(table.schema.items())[: len(schema)] == list(schema.items()), name
    assert (out / "run.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temp files left behind"
    clusters = pl.read_parquet(out / "clusters.parquet")
    assert clusters["size"].sum() == seeds_run.documents.height
    info = seeds_run.info
    assert info["counts"]["documents"] == 5 and info["signature"]["scheme"] == "affine32"
    assert set(info["stages"]) == {"ingest", "prepare", "link", "trace", "write"}


def test_same_input_and_options_give_identical_tables(seeds_run, tmp_path: Path) -> None:
    again = run([SEEDS], tmp_path, PipelineConfig())
    for name in schemas.TABLES:
        first = pl.read_parquet(seeds_run.out_dir / f"{name}.parquet")
        second = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert first.equals(second), name
    assert again.info["input_fingerprint"] == seeds_run.info["input_fingerprint"]


def test_input_order_does_not_change_clusters(tmp_path: Path) -> None:
    """The same documents from a reversed table give the same clusters, origins and parents."""
    texts = sorted(SEEDS.glob("*.txt"))
    rows = [{"id": p.stem, "text": p.read_text(encoding="utf-8")} for p in texts]
    forward, backward = tmp_path / "f.parquet", tmp_path / "b.parquet"
    pl.DataFrame(rows).write_parquet(forward)
    pl.DataFrame(rows[::-1]).write_parquet(backward)
    a = run([forward], tmp_path / "a").documents.select("doc_id", "is_origin", "parent_id").sort("doc_id")
    b = run([backward], tmp_path / "b").documents.select("doc_id", "is_origin", "parent_id").sort("doc_id")
    assert a.equals(b)


def test_batching_does_not_change_any_table(seeds_run, tmp_path: Path) -> None:
    """Batches of 2 documents, mapped on threads, give the same tables as one batch: partitioning is safe."""
    from concurrent.futures import ThreadPoolExecutor

    from provenance import pipeline

    config = PipelineConfig(batch_size=2)
    with ThreadPoolExecutor(2) as pool:
        ingested, _ = pipeline.ingest_stage([SEEDS], config)
        prepared, report = pipeline.prepare_stage(ingested, config, map_fn=lambda fn, *its: list(pool.map(fn, *its)))
    assert report.stats["batches"] == 3
    linked, _ = pipeline.link_stage(prepared, config)
    traced, _ = pipeline.trace_stage(prepared, linked, config)
    assert traced.documents.drop("completeness").equals(seeds_run.documents.drop("completeness"))
    assert traced.documents["completeness"].to_list() == pytest.approx(seeds_run.documents["completeness"].to_list())
    assert traced.edges.equals(seeds_run.edges)


def test_outputs_are_readable_like_ordinary_files(seeds_run) -> None:
    """Atomic writes go through mkstemp (mode 0600); the published files get the umask's mode."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for path in seeds_run.out_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
