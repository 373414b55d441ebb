"""The synthetic benchmark corpus keeps the promises benchmarks and evaluations rely on."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from benchmarks.generate import EDITS, MAX_WORDS, MIN_WORDS, SCHEMA, generate_corpus, iter_batches, main
from provenance.prepare.normalize import canonical_expr

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


def test_iter_batches_yields_the_corpus_the_file_holds(corpus: tuple[pl.DataFrame, dict]) -> None:
    df, _ = corpus
    parts = list(iter_batches(N, seed=SEED, clustered_share=SHARE, batch_size=BATCH))
    assert [p.height for p in parts] == [1000, 1000, 500]
    assert pl.concat(parts).equals(df)


def test_batch_size_is_part_of_the_recipe_and_clusters_stay_in_their_batch(corpus: tuple[pl.DataFrame, dict], tmp_path: Path) -> None:
    df, _ = corpus
    other = tmp_path / "other.parquet"
    generate_corpus(N, other, seed=SEED, clustered_share=SHARE, batch_size=BATCH // 2)
    assert not pl.read_parquet(other)["text"].equals(df["text"])
    number = lambda c: pl.col(c).str.slice(1).cast(pl.Int64) // BATCH
    members = df.filter(pl.col("edit") != "singleton")
    assert (members.select(number("id") == number("true_cluster"))["id"]).all()
    children = members.filter(pl.col("true_parent").is_not_null())
    assert (children.select(number("id") == number("true_parent"))["id"]).all()


def _edges(df: pl.DataFrame) -> pl.DataFrame:
    """Every child with its parent's token sequence (lower case, as the pipeline reads it)."""
    tokens = df.select("id", "edit", "true_parent", canonical_expr(pl.col("text")).str.split(" ").alias("tokens"))
    parents = tokens.select(pl.col("id").alias("true_parent"), pl.col("tokens").alias("parent_tokens"))
    return tokens.join(parents, on="true_parent")


def _subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(token in it for token in short)


def test_each_edit_label_describes_what_was_done_to_the_parent(corpus: tuple[pl.DataFrame, dict]) -> None:
    edges = _edges(corpus[0])
    seen, spin_rates = set(), []
    for edit, child, parent in edges.select("edit", "tokens", "parent_tokens").iter_rows():
        seen.add(edit)
        if edit == "copy":  # punctuation only: the same tokens
            assert child == parent
        elif edit == "truncation":  # a proper prefix
            assert len(child) < len(parent) and parent[: len(child)] == child
        elif edit == "drop_sentences":  # sentences left out, the rest in order
            assert len(child) < len(parent) and _subsequence(child, parent)
        elif edit in ("boilerplate", "headline_paste"):  # lines added, the parent kept in order
            assert len(child) > len(parent) and _subsequence(parent, child)
        elif edit == "spin":  # word for word, some replaced
            changed = sum(a != b for a, b in zip(child, parent))
            assert len(child) == len(parent) and 1 <= changed <= 0.22 * len(parent)
            spin_rates.append(changed / len(parent))
    assert seen == set(EDITS) - {"root", "singleton"}
    # 20-40% of the content words (about 40% of all words) are replaced: 8-16% of the words on average.
    assert 0.08 <= sum(spin_rates) / len(spin_rates) <= 0.16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_docs": -1}, "n_docs"), ({"seed": -1}, "seed"), ({"clustered_share": 1.5}, "clustered_share"), ({"batch_size": 0}, "batch_size")],
)
def test_impossible_arguments_fail_before_any_work(kwargs: dict, message: str, tmp_path: Path) -> None:
    args = {"n_docs": 10, "seed": 0, "clustered_share": 0.2, "batch_size": 5} | kwargs
    n_docs = args.pop("n_docs")
    with pytest.raises(ValueError, match=message):
        generate_corpus(n_docs, tmp_path / "x.parquet", **args)
    with pytest.raises(ValueError, match=message):
        iter_batches(n_docs, **args)
    assert not (tmp_path / "x.parquet").exists()


def test_no_clustered_share_gives_only_singletons(tmp_path: Path) -> None:
    summary = generate_corpus(30, tmp_path / "s.parquet", seed=1, clustered_share=0.0)
    df = pl.read_parquet(tmp_path / "s.parquet")
    assert summary["clusters"] == summary["clustered_docs"] == 0
    assert set(df["edit"].to_list()) == {"singleton"} and df["true_parent"].null_count() == 30


def test_cli_refuses_impossible_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--docs", "10", "--out", str(tmp_path / "x.parquet"), "--clustered-share", "2"])
    assert caught.value.code == 2
    assert "clustered_share must be in [0, 1]" in capsys.readouterr().err
