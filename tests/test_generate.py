"""The synthetic benchmark corpus keeps the promises benchmarks and evaluations rely on."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from benchmarks.generate import EDITS, MAX_WORDS, MIN_WORDS, SCHEMA, generate_corpus, main

N = 2500
SHARE = 0.3
BATCH = 1000  # three batches, the last one partial
SEED = 7


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, dict]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.parquet"
    summary = generate_corpus(N, path, seed=SEED, clustered_share=SHARE, batch_size=BATCH)
    return pl.read_parquet(path), summary


def test_same_arguments_give_identical_corpus(corpus: tuple[pl.DataFrame, dict], tmp_path: Path) -> None:
    df, _ = corpus
    again = tmp_path / "again.parquet"
    generate_corpus(N, again, seed=SEED, clustered_share=SHARE, batch_size=BATCH)
    assert pl.read_parquet(again).equals(df)


def test_other_seed_gives_other_corpus(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    generate_corpus(50, a, seed=1)
    generate_corpus(50, b, seed=2)
    assert not pl.read_parquet(a)["text"].equals(pl.read_parquet(b)["text"])


def test_rows_schema_and_ids(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, summary = corpus
    assert df.height == N == summary["docs"]
    assert df.schema == pl.Schema(SCHEMA)
    assert df["id"].to_list() == [f"d{i:010d}" for i in range(N)]
    assert df.drop("true_parent").null_count().sum_horizontal().item() == 0


def test_clustered_share_and_summary(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, summary = corpus
    clustered = df.filter(pl.col("edit") != "singleton")
    assert abs(clustered.height / N - SHARE) < 0.01
    assert clustered.height == summary["clustered_docs"]
    sizes = clustered.group_by("true_cluster").len()["len"]
    assert sizes.len() == summary["clusters"] == df.filter(pl.col("edit") == "root").height
    assert sizes.min() >= 2


def test_trees_are_consistent(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, _ = corpus
    roots = df.filter(pl.col("edit").is_in(["root", "singleton"]))
    assert roots["true_parent"].is_null().all()
    assert (roots["true_cluster"] == roots["id"]).all()

    children = df.filter(~pl.col("edit").is_in(["root", "singleton"]))
    parents = df.select(
        pl.col("id").alias("true_parent"),
        pl.col("true_cluster").alias("parent_cluster"),
        pl.col("text").alias("parent_text"),
        pl.col("published_at").alias("parent_at"),
    )
    edges = children.join(parents, on="true_parent", how="left")
    assert edges.height == children.height
    assert (edges["parent_cluster"] == edges["true_cluster"]).all()
    assert (edges["parent_text"] != edges["text"]).all()  # every edge changes the text
    assert (edges["parent_at"] < edges["published_at"]).all()

    parent_of = dict(zip(df["id"], df["true_parent"]))
    for doc in children["id"]:
        depth = 0
        while parent_of[doc] is not None:
            doc = parent_of[doc]
            depth += 1
        assert depth <= 3


def test_edit_labels(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, _ = corpus
    assert set(df["edit"].unique()) == set(EDITS)


def test_texts_are_news_length_with_title(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, _ = corpus
    words = df["text"].str.count_matches(r"\S+")
    assert words.min() >= MIN_WORDS
    assert words.max() <= MAX_WORDS
    text = df["text"]
    assert text.str.contains("\n\n").all()
    assert (text.str.strip_chars() == text).all()
    assert (text.str.split("\n\n").list.first().str.count_matches(r"\S+") <= 16).all()  # a title line first


def test_cli_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.parquet"
    assert main(["--docs", "40", "--out", str(out), "--seed", "3", "--clustered-share", "0.5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["docs"] == 40 and summary["clustered_docs"] in (19, 20)
    assert pl.read_parquet(out).height == 40
