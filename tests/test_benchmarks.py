"""The benchmark commands end to end at a small size, and the bookkeeping behind their figures.

Speed itself belongs in ``benchmarks/results``, never in a test: nothing here
asserts a time.  What is pinned is that the figures are made from the right
rows (the chain's stages, the tables' edge count, the ratio of the two systems'
own docs/s) and that the accuracy benchmark scores what each system wrote with
the corpus's own scorer (a hand-made corpus here, never the eval corpora).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import xxhash

from benchmarks import accuracy, speed
from provenance.config import Config
from tests.fixtures import make_article, spin, truncate

ROOT = Path(__file__).resolve().parent.parent
CHAIN_STAGES = ["ingest", "prepare", "link", "trace", "write"]


def _run(module: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


# ---------------------------------------------------------------------------- speed


def test_summarize_adds_the_text_to_clusters_stages_only() -> None:
    rows = [
        {"system": "provenance", "stage": "ingest", "seconds": 1.0, "peak_rss_gib": 0.5},
        {"system": "provenance", "stage": "prepare", "seconds": 2.0, "peak_rss_gib": 1.5},
        {"system": "provenance", "stage": "link", "seconds": 1.0, "peak_rss_gib": 1.0},
        {"system": "provenance", "stage": "trace", "seconds": 4.0, "peak_rss_gib": 2.5},
        {"system": "provenance", "stage": "write", "seconds": 0.5, "peak_rss_gib": 0.1},
        {"system": "naive", "stage": "prepare", "seconds": 10.0, "peak_rss_gib": 9.0},
    ]
    assert speed.summarize(rows, "provenance", 800) == {
        "system": "provenance", "docs": 800, "text_to_clusters_seconds": 4.0, "text_to_clusters_docs_per_s": 200.0,
        "total_seconds": 8.5, "peak_rss_gib": 2.5,
    }
    assert speed.summarize(rows, "naive", 100)["text_to_clusters_docs_per_s"] == 10.0


def test_timed_hooks_time_each_stage_of_the_chain(tmp_path: Path) -> None:
    from provenance import chain

    hooks = speed.TimedHooks(5)
    result = chain.run([ROOT / "seeds"], Config(), out_dir=tmp_path, hooks=hooks)
    assert [r["stage"] for r in hooks.rows] == CHAIN_STAGES
    assert {r["system"] for r in hooks.rows} == {"provenance"}
    assert sorted(hooks.reports) == sorted(CHAIN_STAGES)
    assert result.edges.height == 3 and pl.read_parquet(tmp_path / "edges.parquet").height == 3


def test_speed_benchmark_writes_its_tables(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    proc = _run("benchmarks.speed", "--docs", "400", "--naive-docs", "200", "--work", work, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "speed-400.json").read_text())
    ours = [r for r in result["stages"] if r["system"] == "provenance"]
    naive = [r for r in result["stages"] if r["system"] == "naive"]
    assert [r["stage"] for r in ours] == CHAIN_STAGES
    assert [r["stage"] for r in naive] == ["ingest", "prepare", "link"]
    assert len(result["stages"]) == len(ours) + len(naive)
    tables = work / "out-400"
    assert result["edges"] == pl.read_parquet(tables / "edges.parquet").height
    assert result["edges"] == json.loads((tables / "run.json").read_text())["counts"]["edges"]
    assert pl.read_parquet(tables / "documents.parquet").height == pl.read_parquet(work / "corpus-400-0.parquet").height
    assert result["config"] == Config().to_dict() and result["texts_on_disk"] is False
    assert result["provenance"] == speed.summarize(result["stages"], "provenance", 400)
    assert result["naive"] == speed.summarize(result["stages"], "naive", 200)
    assert result["ratio"] == round(result["provenance"]["text_to_clusters_docs_per_s"]
                                    / result["naive"]["text_to_clusters_docs_per_s"], 1)
    markdown = (out / "speed-400.md").read_text()
    assert markdown == speed.markdown(result)
    assert f"{result['edges']:,} tree edges" in markdown and f"**ratio {result['ratio']}x**" in markdown
    assert markdown.count("\n| provenance |") == 5 and markdown.count("\n| naive |") == 3
    whole = (400 / result["provenance"]["total_seconds"]) / (200 / result["naive"]["total_seconds"])
    assert result["whole_ratio"] == round(whole, 1) and f"**ratio {result['whole_ratio']}x**" in markdown
    assert result["corpus_fingerprint"] == speed.fingerprint(work / "corpus-400-0.parquet")
    # A given corpus names its results after its file, so they never overwrite the generator corpus's.
    proc = _run("benchmarks.speed", "--docs", "400", "--naive-docs", "100", "--corpus", work / "corpus-400-0.parquet",
                "--work", work, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((out / "speed-corpus-400-0-400.json").read_text())
    assert again["corpus_fingerprint"] == result["corpus_fingerprint"] and again["corpus"] == "corpus-400-0.parquet"
    assert json.loads((out / "speed-400.json").read_text()) == result
    # The anchor's figures of an earlier run on the same corpus are reused, never those of another corpus.
    reuse = _run("benchmarks.speed", "--docs", "400", "--naive-docs", "200", "--naive-from", out / "speed-400.json",
                 "--work", work, "--out", tmp_path / "reused")
    assert reuse.returncode == 0, reuse.stderr[-2000:]
    reused = json.loads((tmp_path / "reused" / "speed-400.json").read_text())
    assert [r for r in reused["stages"] if r["system"] == "naive"] == naive and reused["naive"] == result["naive"]
    assert reused["naive_measured"] == str(out / "speed-400.json")
    other = _run("benchmarks.speed", "--docs", "400", "--naive-docs", "100", "--naive-from", out / "speed-400.json",
                 "--work", work, "--out", tmp_path / "reused")
    assert other.returncode == 2 and "another corpus or number of documents" in other.stderr


def test_a_corpus_fingerprint_follows_its_rows(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": ["a", "b"], "text": ["one text", "another text"]})
    frame.write_parquet(tmp_path / "x.parquet")
    frame.reverse().write_parquet(tmp_path / "y.parquet")
    frame.with_columns(pl.lit("changed").alias("text")).write_parquet(tmp_path / "z.parquet")
    x, y, z = (speed.fingerprint(tmp_path / f"{n}.parquet") for n in "xyz")
    assert len({x, y, z}) == 3 and x == speed.fingerprint(tmp_path / "x.parquet")


def test_speed_benchmark_refuses_a_tiny_corpus(tmp_path: Path) -> None:
    proc = _run("benchmarks.speed", "--docs", "50", "--work", tmp_path, "--out", tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --docs must be at least 100"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- incremental


def test_incremental_benchmark_matches_the_full_run(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    proc = _run("benchmarks.incremental", "--docs", "600", "--new-share", "0.2", "--work", work, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    result = json.loads((out / "incremental-600.json").read_text())
    ids = pl.read_parquet(work / "corpus-600-0.parquet")["id"].to_list()
    new = sum(xxhash.xxh3_64_intdigest(i.encode()) % 10_000 < 2_000 for i in ids)
    assert result["new"] == new == pl.read_parquet(work / "incremental-600" / "new.parquet").height
    assert result["docs"] == 600 and result["equal_to_full_run"] is True
    assert list(result["seconds"]) == [
        "full run, no store", "first run into an empty store", "incremental run of the new documents", "the same input again"
    ]
    assert sorted(result["incremental_stages"]) == sorted(CHAIN_STAGES)
    full = pl.read_parquet(work / "incremental-600" / "full" / "edges.parquet")
    incremental = pl.read_parquet(work / "incremental-600" / "out" / "edges.parquet")
    assert full.height == incremental.height  # the check compares these very tables
    markdown = (out / "incremental-600.md").read_text()
    assert f"Incremental run: {new:,} new documents against a store of {600 - new:,}" in markdown
    assert "Tables equal to the full run's: True" in markdown


@pytest.mark.parametrize("args", [["--docs", "50"], ["--new-share", "0"], ["--new-share", "1"]])
def test_incremental_benchmark_refuses_bad_sizes(tmp_path: Path, args: list[str]) -> None:
    proc = _run("benchmarks.incremental", *args, "--work", tmp_path, "--out", tmp_path)
    assert proc.returncode == 2 and "--new-share in (0, 1)" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- accuracy

SCORER = '''
"""A small scorer with the labels' interface: score(labels, documents) -> metrics."""
import itertools

def _pairs(frame):
    groups = {}
    for doc, cluster in zip(frame["doc_id"].to_list(), frame["cluster_id"].to_list()):
        groups.setdefault(cluster, []).append(doc)
    return {tuple(sorted(p)) for members in groups.values() for p in itertools.combinations(members, 2)}, groups

def score(labels, documents):
    documents = documents.filter(documents["doc_id"].is_in(labels["doc_id"].implode()))
    true_pairs, true_groups = _pairs(labels)
    pred_pairs, pred_groups = _pairs(documents)
    both = true_pairs & pred_pairs
    true_of = {d: set(m) for m in true_groups.values() for d in m}
    pred_of = {d: set(m) for m in pred_groups.values() for d in m}
    p = sum(len(true_of[d] & pred_of[d]) / len(pred_of[d]) for d in true_of) / len(true_of)
    r = sum(len(true_of[d] & pred_of[d]) / len(true_of[d]) for d in true_of) / len(true_of)
    origins = set(documents.filter(documents["is_origin"])["doc_id"].to_list())
    multi = [m for m in true_groups.values() if len(m) > 1]
    true_origin = dict(zip(labels["doc_id"].to_list(), labels["is_origin"].to_list()))
    parent = dict(zip(documents["doc_id"].to_list(), documents["parent_id"].to_list()))
    with_parent = labels.filter(labels["parent_id"].is_not_null())
    return {
        "bcubed_f1": round(2 * p * r / (p + r), 6),
        "pair_p": round(len(both) / len(pred_pairs), 6) if pred_pairs else 1.0,
        "pair_r": round(len(both) / len(true_pairs), 6) if true_pairs else 1.0,
        "origin_acc": sum(any(true_origin[d] and d in origins for d in m) for m in multi) / len(multi),
        "parent_acc": sum(parent.get(d) == q for d, q in with_parent.select("doc_id", "parent_id").iter_rows())
        / with_parent.height,
    }
'''


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Three stories with copies (an exact copy, a truncation, a spin) and two singletons, labelled by hand."""
    docs = {
        "s0": (make_article(0), "c0", None), "s0-copy": (make_article(0) + "Read more at our site.\n", "c0", "s0"),
        "s0-cut": (truncate(make_article(0), 0.7), "c0", "s0"),
        "s1": (make_article(1), "c1", None), "s1-spun": (spin(make_article(1), 0.3, seed=3), "c1", "s1"),
        "s2": (make_article(2), "c2", None), "s2-cut": (truncate(make_article(2), 0.5), "c2", "s2"),
        "s3": (make_article(3), "c3", None), "s4": (make_article(4), "c4", None),
    }
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"id": d, "text": t}) + "\n" for d, (t, _, _) in docs.items()))
    pl.DataFrame({
        "doc_id": list(docs), "cluster_id": [c for _, c, _ in docs.values()], "parent_id": [p for _, _, p in docs.values()],
        "is_origin": [p is None for _, _, p in docs.values()],
    }, schema_overrides={"parent_id": pl.String}).write_parquet(folder / "labels.parquet")
    (tmp_path / "score.py").write_text(SCORER)
    return folder


def test_naive_baseline_is_the_design_cards_reading(labelled: Path, tmp_path: Path) -> None:
    out = accuracy.naive_baseline(labelled / "corpus.jsonl", tmp_path / "naive", threshold=0.5)
    docs = pl.read_parquet(out / "documents.parquet")
    assert docs.columns == ["doc_id", "cluster_id", "is_origin", "parent_id"]
    cluster = dict(docs.select("doc_id", "cluster_id").iter_rows())
    assert cluster["s0"] == cluster["s0-copy"] and cluster["s0"] != cluster["s1"]  # a near-exact copy is found
    assert cluster["s1-spun"] != cluster["s1"]  # 5-grams do not survive spin at 0.5
    origin = docs.filter(pl.col("cluster_id") == cluster["s0"]).filter("is_origin")["doc_id"].to_list()
    assert origin == ["s0-copy"]  # origin = the longest member
    assert dict(docs.select("doc_id", "parent_id").iter_rows())["s0"] == "s0-copy"


def test_accuracy_benchmark_scores_both_systems_with_the_corpus_scorer(labelled: Path, tmp_path: Path) -> None:
    import provenance

    results_path = tmp_path / "results.json"
    proc = _run("benchmarks.accuracy", labelled, "--threshold", "0.5", "--json", results_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(results_path.read_text())["results"]
    assert [(r["corpus"], r["system"]) for r in results] == [(labelled.name, "provenance (defaults)"), (labelled.name, "naive w5-gram LSH @ 0.5")]
    scorer = accuracy.load_scorer(tmp_path / "score.py")
    labels = pl.read_parquet(labelled / "labels.parquet")
    ours = scorer.score(labels, provenance.run([labelled / "corpus.jsonl"]).documents)
    naive = scorer.score(labels, pl.read_parquet(accuracy.naive_baseline(labelled / "corpus.jsonl", tmp_path / "n", 0.5)
                                                 / "documents.parquet"))
    assert {m: results[0][m] for m in accuracy.LABEL_METRICS} == {m: ours[m] for m in accuracy.LABEL_METRICS}
    assert {m: results[1][m] for m in accuracy.LABEL_METRICS} == {m: naive[m] for m in accuracy.LABEL_METRICS}
    assert ours["pair_r"] == 1.0 and naive["pair_r"] < 1.0  # the spun copy is what the naive reading misses
    assert proc.stdout.strip() == accuracy.markdown(results)


def test_accuracy_benchmark_refuses_a_folder_without_labels(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text("")
    proc = _run("benchmarks.accuracy", tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path} has no labels.parquet"


# ---------------------------------------------------------------------------- partitioned


def test_partitioned_benchmark_refuses_bad_sizes(tmp_path: Path) -> None:
    for args in (["--docs", "50"], ["--docs", "1000", "--workers", "0"]):
        proc = _run("benchmarks.partitioned", *args, "--work", tmp_path, "--out", tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip() == "error: --docs must be at least 100 and --workers at least 1"
    assert list(tmp_path.iterdir()) == []


def test_partitioned_benchmark_markdown_is_made_from_its_json() -> None:
    """The committed figures: the markdown is the JSON's, with both runs' stages and the partitioned stages' bytes."""
    from benchmarks import partitioned

    result = json.loads((ROOT / "benchmarks/results/partitioned-20000.json").read_text())
    assert (ROOT / "benchmarks/results/partitioned-20000.md").read_text() == partitioned.markdown(result)
    assert result["same_tables"] and result["dask"]["stages"]["link"]["runner"] == "dask"
    assert len(result["dask"]["workers_peak_gib"]) == result["workers"] == 2
    # The viral-cluster check: clusters past a small --batch-size traced at the tree level, the same bytes.
    viral = json.loads((ROOT / "benchmarks/results/partitioned-100000-batch100.json").read_text())
    assert (ROOT / "benchmarks/results/partitioned-100000-batch100.md").read_text() == partitioned.markdown(viral)
    assert viral["same_tables"] and viral["batch_size"] == 100 and viral["dask"]["stages"]["trace"]["viral_clusters"] > 0


def test_partitioned_benchmark_one_process_child_reports_its_stages(tmp_path: Path) -> None:
    from benchmarks import partitioned

    got = partitioned.child_one(ROOT / "seeds", tmp_path / "out", {})
    assert list(got["stages"]) == CHAIN_STAGES and got["client_peak_gib"] > 0 and got["workers_peak_gib"] == []
    assert set(partitioned.table_digests(tmp_path / "out")) == set(partitioned.TABLES)
