"""The Prefect flow itself: under one harness for the module, and as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import flows  # noqa: F401  (offline/quiet Prefect defaults)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_writes_outputs_and_artifacts(harness, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.provenance_flow import provenance_flow

    result = provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path))
    assert result["counts"]["documents"] == 5
    docs = pl.read_parquet(tmp_path / "documents.parquet")
    assert docs.filter(pl.col("is_origin"))["doc_id"].str.slice(0, 3).sort().to_list() == ["001", "004"]
    with get_client(sync_client=True) as client:
        keys = {
            a.key
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["provenance-clusters", "provenance-trees"]))
            )
        }
    assert keys == {"provenance-clusters", "provenance-trees"}


def test_flow_rejects_unknown_option_with_one_line(harness, tmp_path: Path) -> None:
    from flows.provenance_flow import provenance_flow
    from provenance.errors import ProvenanceError

    with pytest.raises(ProvenanceError, match="unknown option"):
        provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path), options={"no_such_knob": 1})


def test_module_entry_point_runs_offline_and_quietly(tmp_path: Path) -> None:
    """``python -m flows.provenance_flow`` on the seeds: exit 0, no warning, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    proc = subprocess.run(
        [sys.executable, "-m", "flows.provenance_flow", str(SEEDS), "--out", str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "WARNING" not in output and "Warning" not in output, output
    assert (tmp_path / "out" / "documents.parquet").exists()


def test_flow_on_a_two_worker_dask_cluster_matches_the_single_process_run(harness, tmp_path: Path) -> None:
    """Batches of 2 documents on a 2-worker LocalCluster, texts read from disk by the workers, give exactly
    the library's in-memory tables."""
    from flows.provenance_flow import flow_on
    from provenance import schemas
    from provenance.config import PipelineConfig
    from provenance.pipeline import run

    run([SEEDS], tmp_path / "local", PipelineConfig(batch_size=2))
    options = {"batch_size": 2, "spill_over_mib": 0}
    flow_on("dask", workers=2)(inputs=[str(SEEDS)], out=str(tmp_path / "dask"), options=options)
    for name in schemas.TABLES:
        local = pl.read_parquet(tmp_path / "local" / f"{name}.parquet")
        dask = pl.read_parquet(tmp_path / "dask" / f"{name}.parquet")
        assert local.equals(dask), name


def test_second_flow_run_on_the_same_input_takes_stages_from_the_cache(harness, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.provenance_flow import provenance_flow

    # An option value of this test run only, so results cached by an earlier session cannot answer.
    options = {"max_chars": 1_000_000 + time.time_ns() % 1_000_000}

    def task_states(out: Path, source: Path = SEEDS) -> dict[str, set[str]]:
        state = provenance_flow(inputs=[str(source)], out=str(out), options=options, return_state=True)
        assert state.is_completed()
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        states: dict[str, set[str]] = {}
        for run in runs:
            states.setdefault(run.name.rsplit("-", 1)[0], set()).add(run.state.name)
        return states

    first = task_states(tmp_path / "first")
    second = task_states(tmp_path / "second")
    assert first["link"] == {"Completed"} and first["trace"] == {"Completed"}
    for name in ("summarize-batch", "shingle-batch", "link", "trace"):
        assert second[name] == {"Cached"}, (name, second)
    assert second["write"] == {"Completed"}  # I/O is not cached: the second folder gets its tables
    assert pl.read_parquet(tmp_path / "second" / "edges.parquet").equals(pl.read_parquet(tmp_path / "first" / "edges.parquet"))
    # The same texts from another folder: batches come from the cache, but the tables carry the new sources.
    import shutil

    copy = shutil.copytree(SEEDS, tmp_path / "seeds-copy")
    third = task_states(tmp_path / "third", copy)
    assert third["shingle-batch"] == {"Cached"} and third["trace"] == {"Completed"}
    sources = pl.read_parquet(tmp_path / "third" / "documents.parquet")["source"]
    assert sources.str.starts_with(str(copy)).all()


def test_flow_with_a_store_runs_incrementally(harness, tmp_path: Path) -> None:
    import json

    from flows.provenance_flow import provenance_flow

    out, store_dir = tmp_path / "out", tmp_path / "store"
    first = provenance_flow(inputs=[str(SEEDS)], out=str(out), store=str(store_dir))
    again = provenance_flow(inputs=[str(SEEDS)], out=str(out), store=str(store_dir))
    assert first["counts"] == again["counts"] and first["counts"]["documents"] == 5
    assert json.loads((store_dir / "MANIFEST.json").read_text())["generation"] == 1
    assert out.is_symlink() and (out / "report.html").exists() and (out / "cluster_history.parquet").exists()
