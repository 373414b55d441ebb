"""Accuracy of the pipeline next to the naive datasketch baseline, on one labelled corpus.

    python -m benchmarks.accuracy ../shared/eval/dev [--threshold 0.5 --threshold 0.3] [--json OUT]

A labelled corpus is a folder with ``corpus.jsonl`` (``id``, ``text``) and
``labels.parquet`` (``doc_id, cluster_id, parent_id, is_origin``).  Both
systems write a ``documents.parquet`` and are scored by the corpus's own
``score.py`` (looked up beside the corpus folder, or ``--scorer``), so the
figures are the ones the labels' owners compute.

The baseline is the design card's naive reading: word 5-grams, 128
permutations, ``datasketch.MinHashLSH`` at a Jaccard threshold, connected
components, origin = longest member, parent = most similar longer member.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import networkx as nx
import polars as pl
from datasketch import MinHash, MinHashLSH

import provenance

METRICS = ("bcubed_f1", "pair_p", "pair_r", "origin_acc", "parent_acc")


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
    pl.DataFrame(rows, schema={"doc_id": pl.String, "cluster_id": pl.String, "is_origin": pl.Boolean, "parent_id": pl.String}).write_parquet(out_dir / "documents.parquet")
    return out_dir


def evaluate(folder: Path, thresholds: list[float], scorer: ModuleType) -> list[dict[str, object]]:
    corpus, labels = folder / "corpus.jsonl", pl.read_parquet(folder / "labels.parquet")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = provenance.run([corpus], out_dir=Path(tmp) / "provenance").out_dir
        seconds = time.perf_counter() - start
        scores = scorer.score(labels, pl.read_parquet(out / "documents.parquet"))
        results.append({"system": "provenance (defaults)", "seconds": round(seconds, 2), **scores})
        for threshold in thresholds:
            start = time.perf_counter()
            out = naive_baseline(corpus, Path(tmp) / f"naive_{threshold}", threshold)
            seconds = time.perf_counter() - start
            scores = scorer.score(labels, pl.read_parquet(out / "documents.parquet"))
            results.append({"system": f"naive w5-gram LSH @ {threshold}", "seconds": round(seconds, 2), **scores})
    return results


def markdown(results: list[dict[str, object]]) -> str:
    head = "| system | " + " | ".join(METRICS) + " | seconds |"
    rule = "|---" * (len(METRICS) + 2) + "|"
    rows = [f"| {r['system']} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + f" | {r['seconds']} |" for r in results]
    return "\n".join([head, rule, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder with corpus.jsonl and labels.parquet")
    parser.add_argument("--threshold", type=float, action="append", help="baseline LSH threshold(s); default 0.5 and 0.3")
    parser.add_argument("--scorer", type=Path, help="score.py (default: beside the corpus folder)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    for name in ("corpus.jsonl", "labels.parquet"):
        if not (args.corpus / name).exists():
            print(f"error: {args.corpus} has no {name}", file=sys.stderr)
            return 2
    scorer = load_scorer(args.scorer or args.corpus.parent / "score.py")
    results = evaluate(args.corpus, args.threshold or [0.5, 0.3], scorer)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
