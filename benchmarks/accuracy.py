"""Accuracy of the pipeline next to the naive datasketch baseline, on every visible labelled corpus at once.

    python -m benchmarks.accuracy                                  # every corpus under ../shared/eval
    python -m benchmarks.accuracy ../shared/eval/dev ../shared/eval/real_news speed100k.jsonl
    python -m benchmarks.accuracy --json OUT.json --threshold 0.5 --threshold 0.3

A corpus is one of:

* a folder with ``corpus.jsonl`` and ``labels.parquet`` (``doc_id, cluster_id,
  parent_id, is_origin``), scored by the ``score.py`` beside the folder:
  B-cubed and pair precision/recall of the clusters, origin and parent accuracy;
* a folder with ``corpus.jsonl`` and ``pairs.parquet`` (silver pairs ``a, b,
  same``), scored by the ``score_pairs.py`` beside it: ``pos_recall`` and
  ``neg_merge``;
* a ``.jsonl`` file with ``FILE.labels.parquet`` beside it (what
  ``make_speed_corpus.py`` writes), scored by the ``score.py`` of
  ``--scorer`` or of ``../shared/eval``.

Both systems write a ``documents.parquet`` and are scored by the corpus's own
scorer, so the figures are the ones the labels' owners compute.  The table has
one row per corpus and system.  Over our own output it also prints the
reliability of ``copy_confidence`` and ``parent_confidence`` where the edges
table has them: per bin of stated probability, the edges in it and the share
that is right (the child is in its parent's true cluster; the parent is the
true parent).

The baseline is the design card's naive reading: word 5-grams, 128
permutations, ``datasketch.MinHashLSH`` at a Jaccard threshold, connected
components, origin = longest member, parent = most similar longer member.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import networkx as nx
import numpy as np
import polars as pl
from datasketch import MinHash, MinHashLSH

import provenance

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
LABEL_METRICS = ("bcubed_f1", "pair_p", "pair_r", "origin_acc", "parent_acc")
PAIR_METRICS = ("pos_recall", "neg_merge")
METRICS = LABEL_METRICS + PAIR_METRICS
#: Bins of stated probability for the reliability tables.
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0000001)


@dataclass(frozen=True)
class Corpus:
    """One labelled corpus: its texts, its labels and how they are scored."""

    name: str
    texts: Path
    labels: Path
    scorer: Path
    kind: str  # "labels" or "pairs"


def find_corpus(path: Path, scorer: Path | None = None) -> Corpus:
    """The corpus at ``path`` (a folder or a labelled .jsonl), or SystemExit naming what is missing."""
    if path.is_file() and path.suffix == ".jsonl":
        labels = path.with_name(path.name + ".labels.parquet")
        if not labels.exists():
            raise SystemExit(f"error: {path} has no {labels.name} beside it")
        return Corpus(path.stem, path, labels, scorer or EVAL / "score.py", "labels")
    if not (path / "corpus.jsonl").exists():
        raise SystemExit(f"error: {path} has no corpus.jsonl")
    if (path / "labels.parquet").exists():
        return Corpus(path.name, path / "corpus.jsonl", path / "labels.parquet", scorer or path.parent / "score.py", "labels")
    if (path / "pairs.parquet").exists():
        return Corpus(path.name, path / "corpus.jsonl", path / "pairs.parquet", path.parent / "score_pairs.py", "pairs")
    raise SystemExit(f"error: {path} has no labels.parquet")


def visible_corpora() -> list[Path]:
    """Every labelled corpus under ``../shared/eval``, smallest first."""
    names = ("seeds", "dev", "dev_deep", "real_news")
    return [EVAL / n for n in names if (EVAL / n / "corpus.jsonl").exists()]


def load_scorer(path: Path) -> ModuleType:
    if not path.exists():
        raise SystemExit(f"no scorer at {path}: pass --scorer PATH/TO/score.py")
    spec = importlib.util.spec_from_file_location("corpus_score", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def naive_baseline(corpus: Path, out_dir: Path, threshold: float, num_perm: int = 128) -> Path:
    """The naive pipeline (Python shingles, datasketch MinHash + LSH, components); writes documents.parquet."""
    docs = pl.read_ndjson(corpus).select(pl.col("id").cast(pl.String), "text")
    ids, texts = docs["id"].to_list(), docs["text"].to_list()
    shingles = []
    for text in texts:
        words = re.findall(r"\w+", text.lower())
        shingles.append({" ".join(words[i : i + 5]).encode() for i in range(max(0, len(words) - 4))})
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes = []
    for doc_id, grams in zip(ids, shingles):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(grams)
        hashes.append(m)
        lsh.insert(doc_id, m)
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    for doc_id, m in zip(ids, hashes):
        graph.add_edges_from((doc_id, other) for other in lsh.query(m) if other != doc_id)
    length = {d: len(t) for d, t in zip(ids, texts)}
    index = {d: i for i, d in enumerate(ids)}
    rows = []
    for number, members in enumerate(sorted(nx.connected_components(graph), key=lambda c: min(c))):
        origin = max(members, key=lambda d: (length[d], d))
        for d in members:
            parent = None
            if d != origin:
                longer = [o for o in members if (length[o], o) > (length[d], d)]
                parent = max(longer, key=lambda o: hashes[index[o]].jaccard(hashes[index[d]]))
            rows.append({"doc_id": d, "cluster_id": f"n{number}", "is_origin": d == origin, "parent_id": parent})
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = {"doc_id": pl.String, "cluster_id": pl.String, "is_origin": pl.Boolean, "parent_id": pl.String}
    pl.DataFrame(rows, schema=schema).write_parquet(out_dir / "documents.parquet")
    return out_dir


def score(corpus: Corpus, out: Path) -> dict[str, float]:
    """The corpus's own scorer on ``out``: a module call for labels, the script's JSON for silver pairs."""
    if corpus.kind == "labels":
        return load_scorer(corpus.scorer).score(pl.read_parquet(corpus.labels), pl.read_parquet(out / "documents.parquet"))
    proc = subprocess.run([sys.executable, str(corpus.scorer), str(corpus.labels), str(out)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reliability(corpus: Corpus, out: Path) -> dict[str, list[dict[str, object]]]:
    """Per confidence column of our edges: edges per bin of stated probability and the share that is right."""
    edges = pl.read_parquet(out / "edges.parquet")
    if corpus.kind == "labels":
        labels = pl.read_parquet(corpus.labels).select(pl.col("doc_id").cast(pl.String), "cluster_id", "parent_id")
        truth = (
            edges.join(labels.rename({"doc_id": "child_id", "cluster_id": "child_cluster", "parent_id": "true_parent"}), on="child_id")
            .join(labels.select(pl.col("doc_id").alias("parent_id"), pl.col("cluster_id").alias("parent_cluster")), on="parent_id")
            .with_columns(
                (pl.col("child_cluster") == pl.col("parent_cluster")).alias("copy_right"),
                (pl.col("true_parent") == pl.col("parent_id")).fill_null(False).alias("parent_right"),
            )
        )
        if labels["parent_id"].null_count() == labels.height:  # the labels say nothing of parents
            truth = truth.with_columns(pl.lit(None, pl.Boolean).alias("parent_right"))
    else:
        pairs = pl.read_parquet(corpus.labels)
        pairs = pl.concat([pairs, pairs.select(pl.col("b").alias("a"), pl.col("a").alias("b"), "same")])
        truth = edges.join(pairs.rename({"a": "parent_id", "b": "child_id", "same": "copy_right"}), on=["parent_id", "child_id"])
        truth = truth.with_columns(pl.lit(None, pl.Boolean).alias("parent_right"))
    out_tables = {}
    for column, right in (("copy_confidence", "copy_right"), ("parent_confidence", "parent_right"), ("confidence", "parent_right")):
        if column not in truth.columns or truth[right].null_count() == truth.height:
            continue
        index = np.searchsorted(np.array(BINS), truth[column].fill_null(0.0).to_numpy(), side="right") - 1
        labels = [f"[{lo:g}, {min(hi, 1.0):g}{']' if hi > 1 else ')'}" for lo, hi in zip(BINS[:-1], BINS[1:])]
        binned = truth.with_columns(pl.Series("bin", [labels[i] for i in index], dtype=pl.String))
        table = binned.group_by("bin").agg(
            pl.len().alias("edges"), pl.col(column).mean().round(3).alias("stated"), pl.col(right).mean().round(3).alias("observed"),
        ).sort("stated")
        out_tables[column] = table.to_dicts()
    return out_tables


def evaluate(corpus: Corpus, thresholds: list[float]) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Rows (ours first, then the baseline at each threshold) and our reliability tables."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = provenance.run([corpus.texts], out_dir=Path(tmp) / "provenance").out_dir
        seconds = time.perf_counter() - start
        results.append({"corpus": corpus.name, "system": "provenance (defaults)", "seconds": round(seconds, 2), **score(corpus, out)})
        reliable = reliability(corpus, out)
        for threshold in thresholds:
            start = time.perf_counter()
            naive = naive_baseline(corpus.texts, Path(tmp) / f"naive_{threshold}", threshold)
            seconds = time.perf_counter() - start
            results.append({"corpus": corpus.name, "system": f"naive w5-gram LSH @ {threshold}", "seconds": round(seconds, 2),
                            **score(corpus, naive)})
    return results, reliable


def markdown(results: list[dict[str, object]]) -> str:
    head = "| corpus | system | " + " | ".join(METRICS) + " | seconds |"
    rule = "|---" * (len(METRICS) + 3) + "|"
    cell = lambda r, m: f"{r[m]:.4f}" if isinstance(r.get(m), (int, float)) else ""  # noqa: E731
    rows = [f"| {r['corpus']} | {r['system']} | " + " | ".join(cell(r, m) for m in METRICS) + f" | {r['seconds']} |" for r in results]
    return "\n".join([head, rule, *rows])


def reliability_markdown(name: str, tables: dict[str, list[dict[str, object]]]) -> str:
    parts = []
    for column, rows in tables.items():
        parts.append(f"{name}, `{column}`:\n\n| stated | edges | observed |\n|---|---|---|")
        parts += [f"| {r['stated']} | {r['edges']} | {r['observed']} |" for r in rows]
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, nargs="*", help="corpus folders or labelled .jsonl files (default: every one in ../shared/eval)")
    parser.add_argument("--threshold", type=float, action="append", help="baseline LSH threshold(s); default 0.5 and 0.3")
    parser.add_argument("--scorer", type=Path, help="score.py for labelled .jsonl files (default: ../shared/eval/score.py)")
    parser.add_argument("--json", type=Path, help="also write the results and reliability tables as JSON here")
    parser.add_argument("--reliability", action="store_true", help="print the reliability tables after the figures")
    args = parser.parse_args(argv)
    try:
        corpora = [find_corpus(p, args.scorer) for p in (args.corpora or visible_corpora())]
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    results: list[dict[str, object]] = []
    reliable: dict[str, object] = {}
    for corpus in corpora:
        rows, tables = evaluate(corpus, args.threshold or [0.5, 0.3])
        results += rows
        reliable[corpus.name] = tables
    print(markdown(results))
    if args.reliability:
        for name, tables in reliable.items():
            print("\n" + reliability_markdown(name, tables))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "reliability": reliable}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
