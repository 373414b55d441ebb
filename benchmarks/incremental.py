"""Incremental run against a store vs a full run, on the generated corpus.

    python -m benchmarks.incremental --docs 100000 [--new-share 0.01] [--out benchmarks/results]

Splits the corpus by a hash of the id into "stored" and "new" (``--new-share``), then times: a full run
on everything with no store; a first run of the stored part into an empty store; the incremental run of
the new part; and the same input again (nothing to do).  Checks that the incremental tables equal the full
run's (clusters by origin, parents, edges) and writes JSON and markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import xxhash

from benchmarks.generate import cached_corpus
import provenance
from provenance.store.run import run_with_store


def _canonical(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    docs = pl.read_parquet(out / "documents.parquet")
    origin = docs.filter("is_origin").select("cluster_id", pl.col("doc_id").alias("origin"))
    docs = docs.join(origin, on="cluster_id").select("doc_id", "origin", "parent_id", "depth", "completeness").sort("doc_id")
    return docs, pl.read_parquet(out / "edges.parquet").drop("cluster_id").sort("child_id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--work", type=Path, default=Path("data/bench"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.docs < 100 or not 0 < args.new_share < 1:
        print("error: --docs must be at least 100 and --new-share in (0, 1)", file=sys.stderr)
        return 2
    corpus = cached_corpus(args.work, args.docs, args.seed)
    work = args.work / f"incremental-{args.docs}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    docs = pl.read_parquet(corpus)
    cut = int(args.new_share * 10_000)
    is_new = pl.Series([xxhash.xxh3_64_intdigest(i.encode()) % 10_000 < cut for i in docs["id"].to_list()])
    docs.filter(~is_new).write_parquet(work / "stored.parquet")
    docs.filter(is_new).write_parquet(work / "new.parquet")
    n_new = int(is_new.sum())
    del docs

    timings: dict[str, float] = {}
    start = time.perf_counter()
    provenance.run([corpus], out_dir=work / "full")
    timings["full run, no store"] = time.perf_counter() - start
    start = time.perf_counter()
    run_with_store([work / "stored.parquet"], work / "out", work / "store")
    timings["first run into an empty store"] = time.perf_counter() - start
    start = time.perf_counter()
    result = run_with_store([work / "new.parquet"], work / "out", work / "store")
    timings["incremental run of the new documents"] = time.perf_counter() - start
    stages = result.info["stages"]
    start = time.perf_counter()
    run_with_store([work / "new.parquet"], work / "out", work / "store")
    timings["the same input again"] = time.perf_counter() - start

    full_docs, full_edges = _canonical(work / "full")
    inc_docs, inc_edges = _canonical(work / "out")
    equal = full_docs.equals(inc_docs) and full_edges.equals(inc_edges.select(full_edges.columns))
    report = {
        "docs": args.docs,
        "new": n_new,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "incremental_stages": stages,
        "equal_to_full_run": equal,
    }
    lines = [f"Incremental run: {n_new:,} new documents against a store of {args.docs - n_new:,} ({report['machine']})", "",
             "| run | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["seconds"].items()]
    lines += ["", f"Tables equal to the full run's: {equal}"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"incremental-{args.docs}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / f"incremental-{args.docs}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
