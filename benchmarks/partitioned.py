"""One process against link and trace partitioned on a Dask LocalCluster: times, peak memory, bytes moved, same tables.

    python -m benchmarks.partitioned --docs 20000 [--workers 2] [--memory-limit 4GiB] [--partitions 0] [--batch-size 0] [--out benchmarks/results]

Generates (or reuses) the synthetic corpus of ``--docs`` documents
(``benchmarks.generate``), then runs it twice, each in a fresh child process:

* ``one``: the library chain in one process (``provenance.chain.run``), its
  peak RSS sampled every 20 ms;
* ``dask``: the Prefect flow with ``--runner dask`` on a ``LocalCluster`` of
  ``--workers`` single-threaded worker processes the child starts itself, so
  that afterwards it can ask every worker for its peak RSS (``ru_maxrss``);
  the client's (the flow process, which also hosts the scheduler) is sampled.
  ``--memory-limit`` is each worker's Dask memory limit (default ``auto``:
  the machine's memory shared out); past 95% of it Dask's nanny restarts the
  worker, so a run that finishes stayed under it.
  An untimed warm-up run of a small corpus goes first on the same cluster.

Both write their tables; the benchmark checks they are the same bytes and
reports wall seconds, each stage's seconds and, from ``run.json``, the
partitions of link and trace with their task seconds (sum and slowest) and
the bytes written for and by their tasks.  Results go to
``partitioned-<docs>.json`` and ``partitioned-<docs>.md`` in ``--out``.

``--batch-size`` sets ``run.batch_size`` for both runs (prepare's batches and
the members one trace task holds): below the largest cluster's size, that
cluster is traced split at the tree level (``trace.viral``), and the results
are named ``partitioned-<docs>-batch<size>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.generate import cached_corpus
from benchmarks.speed import PeakRSS

TABLES = ("documents", "clusters", "edges", "rejects", "evidence")
#: Documents of the untimed warm-up run on the cluster (workers import the library and load its compiled kernels).
WARM_DOCS = 500


def _worker_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_one(corpus: Path, out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    from provenance import chain
    from provenance.config import Config

    with PeakRSS() as peak:
        start = time.perf_counter()
        result = chain.run([corpus], Config.from_options(options), out_dir=out_dir)
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "client_peak_gib": round(peak.gib, 3), "workers_peak_gib": [],
            "stages": result.info["stages"]}


def child_dask(corpus: Path, out_dir: Path, options: dict[str, Any], workers: int, warm: Path | None,
               memory_limit: str = "auto") -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from flows.provenance_flow import flow_on

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=memory_limit) as cluster, \
            Client(cluster) as client:
        if warm is not None:  # the workers' imports and compiled kernels, once, outside the clock
            flow_on("dask", address=cluster.scheduler_address)(inputs=[str(warm)], out=str(out_dir.with_name(out_dir.name + "-warm")),
                                                               options=options, progress=False)
        with PeakRSS() as peak:
            start = time.perf_counter()
            flow_on("dask", address=cluster.scheduler_address)(inputs=[str(corpus)], out=str(out_dir), options=options, progress=False)
            seconds = time.perf_counter() - start
        peaks = client.run(_worker_peak)
    stages = json.loads((out_dir / "run.json").read_text())["stages"]
    return {"seconds": round(seconds, 2), "client_peak_gib": round(peak.gib, 3),
            "workers_peak_gib": [round(v / 2**30, 3) for _, v in sorted(peaks.items())], "stages": stages}


def table_digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / f"{name}.parquet").read_bytes()).hexdigest() for name in TABLES}


def run_child(mode: str, corpus: Path, out_dir: Path, options: dict[str, Any], workers: int, warm: Path | None = None,
              memory_limit: str = "auto") -> dict[str, Any]:
    args = [sys.executable, "-m", "benchmarks.partitioned", "--child", mode, "--corpus", str(corpus), "--out-dir", str(out_dir),
            "--workers", str(workers), "--memory-limit", memory_limit, "--options", json.dumps(options)] + (["--warm", str(warm)] if warm else [])
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(result: dict[str, Any]) -> str:
    one, dask = result["one"], result["dask"]
    lines = [
        f"### {result['docs']:,} documents, one process vs {result['workers']} Dask workers"
        + (f", memory limit {result['memory_limit']} each" if "memory_limit" in result else "") + f" ({result['machine']})",
        "",
        "| run | wall s | prepare s | link s | trace s | write s | client peak GiB | worker peaks GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in (("one process", one), (f"dask, {result['workers']} workers", dask)):
        s = run["stages"]
        workers = ", ".join(str(w) for w in run["workers_peak_gib"]) or "-"
        lines.append(f"| {name} | {run['seconds']} | {s['prepare']['seconds']} | {s['link']['seconds']} | {s['trace']['seconds']} | "
                     f"{s['write']['seconds']} | {run['client_peak_gib']} | {workers} |")
    lines += ["", "| stage | partitions | task s (sum) | slowest task s | bytes in | bytes out |", "|---|---|---|---|---|---|"]
    for name in ("link", "trace"):
        s = dask["stages"][name]
        lines.append(f"| {name} | {s['partitions']} | {s.get('partition_seconds')} | {s.get('partition_seconds_max')} | "
                     f"{s.get('partition_input_bytes', 0):,} | {s.get('partition_output_bytes', 0):,} |")
    trace = dask["stages"]["trace"]
    lines += ["", f"- same table bytes: **{result['same_tables']}** ({', '.join(TABLES)})"]
    if "viral_clusters" in trace:  # results from before trace.viral have no such figures
        lines.append(f"- trace: {trace['cluster_sets']} sets of whole clusters; {trace['viral_clusters']} viral clusters (more than "
                     f"run.batch_size = {result.get('batch_size') or 'the default'} members) split at the tree level in "
                     f"{trace['viral_chunks']} chunk tasks")
    lines += ["- wall seconds of the Dask run include the flow's own start (Prefect's temporary server was started by an "
              f"untimed warm-up run of {WARM_DOCS} documents on the same cluster, which also loaded the workers' compiled kernels)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=0, help="link and trace partitions (0: the Dask default)")
    parser.add_argument("--batch-size", type=int, default=0, help="run.batch_size of both runs (0: the default)")
    parser.add_argument("--memory-limit", default="auto", help="each Dask worker's memory limit, e.g. 4GiB (default: auto)")
    parser.add_argument("--work", type=Path, default=Path("data/bench"), help="folder for the corpus and outputs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the JSON and markdown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("one", "dask"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        options = json.loads(args.options)
        if args.child == "one":
            got = child_one(args.corpus, args.out_dir, options)
        else:
            got = child_dask(args.corpus, args.out_dir, options, args.workers, args.warm, args.memory_limit)
        print(json.dumps(got))
        return 0
    if args.docs < 100 or args.workers < 1:
        print("error: --docs must be at least 100 and --workers at least 1", file=sys.stderr)
        return 2
    corpus = cached_corpus(args.work, args.docs, args.seed)
    shared = {"batch_size": args.batch_size} if args.batch_size else {}
    options = {**shared, **({"partitions": args.partitions} if args.partitions else {})}
    name = f"partitioned-{args.docs}" + (f"-batch{args.batch_size}" if args.batch_size else "")
    outs = {mode: args.work / f"{name}-{mode}" for mode in ("one", "dask")}
    one = run_child("one", corpus, outs["one"], shared, args.workers)
    dask = run_child("dask", corpus, outs["dask"], options, args.workers, cached_corpus(args.work, WARM_DOCS, args.seed + 1),
                     args.memory_limit)
    result = {
        "docs": args.docs, "workers": args.workers, "memory_limit": args.memory_limit, "batch_size": args.batch_size or None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
                   f"Python {platform.python_version()}",
        "one": one, "dask": dask, "same_tables": table_digests(outs["one"]) == table_digests(outs["dask"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["same_tables"] else 1


if __name__ == "__main__":
    sys.exit(main())
