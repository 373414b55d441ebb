"""Lookup latency against a store of generated documents.

    python -m benchmarks.lookup --docs 100000 [--queries 200] [--work data/bench] [--out benchmarks/results]

Generates ``--docs`` documents (``benchmarks.generate``), holds ``--queries`` of them out (three quarters
copies that belong to a generated tree, one quarter documents without copies, chosen by id hash), builds a
store of the rest with one store run (timed, with the size of its lookup index), then looks every held-out
text up alone: in a fresh process, the library's import and the store's open plus the first query (what a
one-off ``provenance lookup`` pays); then, with the store open, each query's seconds (median, p95, max) and
the statuses.  The generator's labels only pick the mix of queries; nothing is
scored against them.  Writes ``lookup-<docs>.json`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import psutil
import xxhash

from benchmarks.generate import cached_corpus
from provenance.store.lookup import open_store
from provenance.store.run import run_with_store

LABELS = ("true_cluster", "true_parent", "edit")


def pick_queries(docs: pl.DataFrame, n: int) -> pl.Series:
    """Ids of ``n`` documents: 3/4 copies inside a generated tree, 1/4 without copies, lowest id hashes first."""
    hashed = docs.select("id", "true_parent", pl.Series("h", [xxhash.xxh3_64_intdigest(i.encode()) for i in docs["id"].to_list()], dtype=pl.UInt64))
    copies = hashed.filter(pl.col("true_parent").is_not_null()).sort("h").head(n - n // 4)
    alone = hashed.filter(pl.col("true_parent").is_null()).sort("h").head(n // 4)
    return pl.concat([copies["id"], alone["id"]])


COLD = """
import json, sys, time
start = time.perf_counter()
import provenance
imported = time.perf_counter()
provenance.open_store(sys.argv[1]).lookup_text(open(sys.argv[2], encoding="utf-8").read(), sys.argv[3])
print(json.dumps({"import_seconds": round(imported - start, 3), "open_and_first_query_seconds": round(time.perf_counter() - imported, 3)}))
"""


def fresh_process(work: Path, qid: str, text: str) -> dict[str, float]:
    """What a one-off call pays in a new process: the library's import, then opening the store and one query."""
    path = work / "cold-query.txt"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", COLD, str(work / "store"), str(path), qid], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("data/bench"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.docs < 100 or not 4 <= args.queries < args.docs // 2:
        print("error: --docs must be at least 100 and --queries between 4 and half of --docs", file=sys.stderr)
        return 2
    corpus = cached_corpus(args.work, args.docs, args.seed)
    work = args.work / f"lookup-{args.docs}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # Only the ids and labels are read here: at 1M the corpus itself would hold 11 GiB before the store run starts.
    held = pick_queries(pl.read_parquet(corpus, columns=["id", "true_parent"]), args.queries)
    queries = pl.scan_parquet(corpus).filter(pl.col("id").is_in(held.implode())).sort("id").collect()
    pl.scan_parquet(corpus).filter(~pl.col("id").is_in(held.implode())).drop(*LABELS).sink_parquet(work / "stored.parquet")

    start = time.perf_counter()
    run_with_store([work / "stored.parquet"], work / "out", work / "store")
    build = time.perf_counter() - start
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB; the store run is this process's peak
    index_bytes = sum(folder_bytes(p) for p in (work / "store").glob("gen-*/index"))

    rows = list(queries.select("id", "text", "true_parent").iter_rows())
    cold = fresh_process(work, rows[0][0], rows[0][1])
    opened = open_store(work / "store")
    first = opened.lookup_text(rows[0][1], rows[0][0])  # warms what a long-lived process has loaded
    seconds, statuses, copies_matched = [], Counter(), 0
    rss = psutil.Process().memory_info().rss
    for qid, text, parent in rows:
        t = time.perf_counter()
        got = opened.lookup_text(text, qid)
        seconds.append(time.perf_counter() - t)
        statuses[got.status] += 1
        copies_matched += parent is not None and got.status in ("matched", "stored")
    del first
    times = np.array(seconds)
    n_copies = sum(1 for _, _, parent in rows if parent is not None)
    report = {
        "docs_in_store": args.docs - len(rows),
        "queries": len(rows),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "store_run_seconds": round(build, 1),
        "store_run_peak_rss_gib": round(build_peak / 2**30, 2),
        "index_mib": round(index_bytes / 2**20, 1),
        "fresh_process": cold,
        "query_seconds": {"median": round(float(np.median(times)), 4), "p95": round(float(np.quantile(times, 0.95)), 4),
                          "max": round(float(times.max()), 4), "mean": round(float(times.mean()), 4)},
        "statuses": dict(statuses),
        "copy_queries_matched": f"{copies_matched}/{n_copies}",
        "rss_gib_after_queries": round(max(rss, psutil.Process().memory_info().rss) / 2**30, 2),
    }
    q = report["query_seconds"]
    lines = [
        f"Lookup: {len(rows)} queries against a store of {report['docs_in_store']:,} generated documents ({report['machine']})", "",
        "| figure | value |", "|---|---|",
        f"| store run (writes the index) | {report['store_run_seconds']} s, peak RSS {report['store_run_peak_rss_gib']} GiB |",
        f"| lookup index on disk | {report['index_mib']} MiB |",
        f"| fresh process: import / open + first query | {cold['import_seconds']} / {cold['open_and_first_query_seconds']} s |",
        f"| per query, store open: median / p95 / max | {q['median']} / {q['p95']} / {q['max']} s |",
        f"| statuses | {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))} |",
        f"| held-out copies matched | {report['copy_queries_matched']} |",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"lookup-{args.docs}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"lookup-{args.docs}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
