"""Speed and memory of the pipeline, stage by stage, next to the naive datasketch anchor.

    python -m benchmarks.speed --docs 100000 [--naive-docs 20000] [--out benchmarks/results]

Generates (or reuses) a synthetic corpus of ``--docs`` news-length documents
(``benchmarks.generate``: 20% in near-duplicate clusters), runs every stage of
the pipeline in-process (no Prefect) and reports per stage wall seconds,
docs/s and peak RSS (sampled every 20 ms), then runs the naive anchor on the
first ``--naive-docs`` documents of the same corpus: Python word shingles,
``datasketch.MinHash.update_batch``, ``MinHashLSH`` insert and query, and
union-find, timed over the same stages it has.  The ratio compares docs/s of
"text to clusters" (ingest, prepare, link), which both sides do.  Results go
to ``speed-<docs>.json`` and ``speed-<docs>.md`` in ``--out`` (``speed-LABEL-<docs>``
for a given ``--corpus``).  The anchor takes long at a million documents:
``--naive-from`` takes its figures from an earlier result on the same corpus
(same fingerprint, same documents) instead of running it again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import psutil
import xxhash
from datasketch import MinHash, MinHashLSH

from benchmarks.generate import cached_corpus
from provenance import chain
from provenance.config import Config

TEXT_TO_CLUSTERS = ("ingest", "prepare", "link")


class PeakRSS:
    """Peak resident memory of this process, sampled by a background thread."""

    def __init__(self, every: float = 0.02) -> None:
        self._process = psutil.Process()
        self._every = every
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self._every)

    def __enter__(self) -> "PeakRSS":
        self._peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)

    @property
    def gib(self) -> float:
        return self._peak / 2**30


@contextmanager
def stage(rows: list[dict[str, Any]], system: str, name: str, docs: int) -> Iterator[None]:
    with PeakRSS() as peak:
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
    rows.append(
        {"system": system, "stage": name, "seconds": round(seconds, 3), "docs_per_s": round(docs / seconds, 1) if seconds else None,
         "peak_rss_gib": round(peak.gib, 3)}
    )


class TimedHooks(chain.Hooks):
    """The chain's stages timed, with their peak RSS, as benchmark rows."""

    def __init__(self, docs: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.docs = docs
        self.reports: dict[str, Any] = {}

    def stage(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with stage(self.rows, "provenance", name, self.docs):
            return fn(*args, **kwargs)

    def reported(self, report: Any) -> None:
        self.reports[report.name] = report


def run_provenance(corpus: Path, out_dir: Path, config: Config) -> tuple[list[dict[str, Any]], int, bool]:
    """The whole chain (``provenance.chain.run``, the tables written), each stage timed."""
    n = pl.scan_parquet(corpus).select(pl.len()).collect().item()
    hooks = TimedHooks(n)
    result = chain.run([corpus], config, out_dir=out_dir, hooks=hooks)
    return hooks.rows, result.edges.height, bool(hooks.reports["prepare"].stats.get("texts_on_disk"))


def run_naive(corpus: Path, n_docs: int, num_perm: int = 128, threshold: float = 0.5) -> list[dict[str, Any]]:
    """The anchor: what a plain datasketch pipeline does, one Python call per document."""
    rows: list[dict[str, Any]] = []
    with stage(rows, "naive", "ingest", n_docs):
        frame = pl.scan_parquet(corpus).head(n_docs).select("id", "text").collect()
        ids, texts = frame["id"].to_list(), frame["text"].to_list()
    with stage(rows, "naive", "prepare", n_docs):
        signatures = []
        for text in texts:  # each document's shingles are dropped once signed: a million of them fit in memory
            words = re.findall(r"\w+", text.lower())
            m = MinHash(num_perm=num_perm, seed=1)
            m.update_batch({" ".join(words[i : i + 5]).encode() for i in range(max(0, len(words) - 4))})
            signatures.append(m)
    with stage(rows, "naive", "link", n_docs):
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        for doc_id, m in zip(ids, signatures):
            lsh.insert(doc_id, m)
        parent = {d: d for d in ids}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for doc_id, m in zip(ids, signatures):
            for other in lsh.query(m):
                a, b = find(doc_id), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        len({find(d) for d in ids})
    return rows


def summarize(rows: list[dict[str, Any]], system: str, docs: int) -> dict[str, Any]:
    mine = [r for r in rows if r["system"] == system]
    text_to_clusters = sum(r["seconds"] for r in mine if r["stage"] in TEXT_TO_CLUSTERS)
    total = sum(r["seconds"] for r in mine)
    return {
        "system": system, "docs": docs,
        "text_to_clusters_seconds": round(text_to_clusters, 2),
        "text_to_clusters_docs_per_s": round(docs / text_to_clusters, 1),
        "total_seconds": round(total, 2),
        "peak_rss_gib": max(r["peak_rss_gib"] for r in mine),
    }


def _measured_where(earlier: dict[str, Any] | None, path: Path | None) -> str:
    """Where the naive figures were measured: this run, or the run that first measured the reused ones."""
    if earlier is None:
        return "in this run"
    first = earlier.get("naive_measured", "in this run")
    return str(path) if first == "in this run" else first


def fingerprint(corpus: Path) -> str:
    """xxh64 of the corpus's row hashes (ids and texts, in order): which corpus a figure was measured on."""
    rows = pl.scan_parquet(corpus).select(pl.struct("id", "text").hash(7).alias("h")).collect()["h"].to_numpy()
    return xxhash.xxh64_hexdigest(rows.tobytes())


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['docs']:,} documents ({result['machine']})",
        "",
        "| system | stage | seconds | docs/s | peak RSS GiB |",
        "|---|---|---|---|---|",
    ]
    for r in result["stages"]:
        lines.append(f"| {r['system']} | {r['stage']} | {r['seconds']} | {r['docs_per_s']:,} | {r['peak_rss_gib']} |")
    ours, naive = result["provenance"], result["naive"]
    lines += [
        "",
        f"- provenance, whole pipeline: {ours['total_seconds']} s, peak RSS {ours['peak_rss_gib']} GiB, "
        f"{result['edges']:,} tree edges, texts {'on disk' if result.get('texts_on_disk') else 'in memory'} "
        "mid-run",
        f"- text to clusters: provenance {ours['text_to_clusters_docs_per_s']:,} docs/s "
        f"(over {ours['docs']:,} docs); naive {naive['text_to_clusters_docs_per_s']:,} docs/s "
        f"(over {naive['docs']:,} docs); **ratio {result['ratio']}x**",
        f"- whole process: provenance {ours['docs'] / ours['total_seconds']:,.1f} docs/s, naive "
        f"{naive['docs'] / naive['total_seconds']:,.1f} docs/s: **ratio {result['whole_ratio']}x**",
        f"- corpus: `{result['corpus']}`, fingerprint `{result['corpus_fingerprint']}`; naive figures measured "
        f"{result.get('naive_measured', 'in this run')}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--naive-docs", type=int, default=20_000, help="documents the naive anchor runs on (it is slow)")
    parser.add_argument("--corpus", type=Path, help="an existing corpus Parquet (id, text); default: generate one")
    parser.add_argument("--work", type=Path, default=Path("data/bench"), help="folder for the corpus and outputs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the JSON and markdown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-from", type=Path, help="an earlier result JSON on the same corpus: its naive figures are reused")
    parser.add_argument("--label", help="results are named speed-LABEL-DOCS (default: the --corpus file's stem; none for a generated corpus)")
    args = parser.parse_args(argv)
    if args.docs < 100:
        print("error: --docs must be at least 100", file=sys.stderr)
        return 2
    if args.corpus is not None and not args.corpus.is_file():
        print(f"error: --corpus {args.corpus} is no file: pass an existing Parquet of id and text", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or cached_corpus(args.work, args.docs, args.seed)
    corpus_fingerprint = fingerprint(corpus)
    earlier = None
    if args.naive_from is not None:
        if not args.naive_from.is_file():
            print(f"error: --naive-from {args.naive_from} is no file: pass a speed-*.json written by this benchmark", file=sys.stderr)
            return 2
        earlier = json.loads(args.naive_from.read_text())
        if earlier.get("corpus_fingerprint") != corpus_fingerprint or earlier["naive"]["docs"] != min(args.naive_docs, args.docs):
            print(f"error: --naive-from {args.naive_from} was measured on another corpus or number of documents: "
                  f"run the anchor again (drop --naive-from)", file=sys.stderr)
            return 2
    config = Config()
    rows, edges, spilled = run_provenance(corpus, args.work / f"out-{args.docs}", config)
    for r in rows:
        print(r, flush=True)
    naive_docs = min(args.naive_docs, args.docs)
    rows += [r for r in earlier["stages"] if r["system"] == "naive"] if earlier else run_naive(corpus, naive_docs)
    ours, naive = summarize(rows, "provenance", args.docs), summarize(rows, "naive", naive_docs)
    result = {
        "docs": args.docs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
        "config": config.to_dict(),
        "stages": rows,
        "edges": edges,
        "texts_on_disk": spilled,
        "provenance": ours,
        "naive": naive,
        "ratio": round(ours["text_to_clusters_docs_per_s"] / naive["text_to_clusters_docs_per_s"], 1),
        "whole_ratio": round((ours["docs"] / ours["total_seconds"]) / (naive["docs"] / naive["total_seconds"]), 1),
        "corpus": corpus.name if args.corpus is not None else f"benchmarks.generate --docs {args.docs} --seed {args.seed}",
        "corpus_fingerprint": corpus_fingerprint,
        "naive_measured": _measured_where(earlier, args.naive_from),
    }
    label = args.label or (args.corpus.stem if args.corpus is not None else None)
    name = f"speed-{label}-{args.docs}" if label else f"speed-{args.docs}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
