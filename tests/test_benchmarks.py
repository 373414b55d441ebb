"""The benchmark commands run end to end at a small size (speed belongs in benchmarks/, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_EVAL = ROOT.parent / "shared" / "eval"


def test_speed_benchmark_writes_its_tables(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", "--docs", "400", "--naive-docs", "200",
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "speed-400.json").read_text())
    stages = {(r["system"], r["stage"]) for r in result["stages"]}
    assert {("provenance", s) for s in ("ingest", "prepare", "link", "trace", "write")} <= stages
    assert {("naive", s) for s in ("ingest", "prepare", "link")} <= stages
    assert result["provenance"]["text_to_clusters_docs_per_s"] > 0 and result["naive"]["text_to_clusters_docs_per_s"] > 0
    assert result["ratio"] >= 0 and result["provenance"]["peak_rss_gib"] > 0
    assert "ratio" in (tmp_path / "out" / "speed-400.md").read_text()


def test_incremental_benchmark_matches_the_full_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.incremental", "--docs", "600", "--new-share", "0.2",
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    result = json.loads((tmp_path / "out" / "incremental-600.json").read_text())
    assert result["equal_to_full_run"] is True and 0 < result["new"] < 600
    assert set(result["seconds"]) == {
        "full run, no store", "first run into an empty store", "incremental run of the new documents", "the same input again"
    }


@pytest.mark.skipif(not (SHARED_EVAL / "seeds" / "labels.parquet").exists(), reason="../shared/eval is not beside the repo")
def test_accuracy_benchmark_prints_both_systems() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.accuracy", str(SHARED_EVAL / "seeds")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "provenance (defaults)" in proc.stdout and "naive w5-gram LSH @ 0.5" in proc.stdout
