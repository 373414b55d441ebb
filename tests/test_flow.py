"""The Prefect flow itself: under one harness for the module, and as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
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
    with get_client(sync_client=True) as client:
        (summary,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["provenance-report"])),
                                           limit=1)
    # What the UI can show: markdown with the counts and the paths as text (a file:// link it cannot open is gone).
    assert summary.type == "markdown" and "file://" not in summary.data
    assert "| documents | 5 |" in summary.data and "| derivation edges | 3 |" in summary.data
    assert f"`{(tmp_path / 'report.html').resolve()}`" in summary.data and (tmp_path / "report.html").is_file()
    assert f"provenance top --out {tmp_path.resolve()}" in summary.data and "clusters.parquet" in summary.data


def test_flow_logs_throttled_progress_lines_unless_told_not_to(harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stage pass ends with one plain progress line for the flow run's logger (prepare's batches counted as
    their tasks finish); ``progress=False`` logs none.  A cached stage tells nothing: the cache is refreshed here."""
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    import flows.provenance_flow as module
    from provenance.stage_report import ProgressLines

    lines: list[str] = []
    loggers: list[object] = []

    def recorded(write, every):
        loggers.append(getattr(write, "__self__", None))
        return ProgressLines(lambda line: (lines.append(line), write(line)), every)

    monkeypatch.setattr(module, "ProgressLines", recorded)
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        module.provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "a"), options={"batch_size": 2})
        ends = [line for line in lines if "%" not in line]
        assert [line.split(":")[0] for line in ends] == [
            "prepare 1/2", "prepare 2/2", "link 1/2", "link 2/2", "trace 1/3", "trace 2/3", "trace 3/3", "write"]
        assert ends[0].startswith("prepare 1/2: 5 documents in ")
        assert loggers[0].name == "prefect.flow_runs"  # the run logger: the lines show in the flow run's log
        lines.clear()
        module.provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "b"), options={"batch_size": 2}, progress=False)
        assert lines == []


def test_summary_markdown_quotes_any_path_as_code() -> None:
    """A path with backticks or spaces stays one code span, and the shell commands quote it."""
    from flows.provenance_flow import summary_markdown
    import provenance

    result = provenance.run([SEEDS])
    text = summary_markdown(result, Path("/data/my `odd` out"))
    assert "`` /data/my `odd` out ``" in text
    assert "provenance top --out '/data/my `odd` out'" in text


def test_flow_rejects_unknown_option_with_one_line(harness, tmp_path: Path) -> None:
    from flows.provenance_flow import provenance_flow
    from provenance.errors import ProvenanceError

    with pytest.raises(ProvenanceError, match="unknown option"):
        provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path), options={"no_such_knob": 1})
    with pytest.raises(ProvenanceError, match=r"min_tokens \(1\) must be at least word_ngram \(2\)"):
        provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path), options={"min_tokens": 1})
    assert not (tmp_path / "documents.parquet").exists()


def test_flow_options_reach_run_json(harness, tmp_path: Path) -> None:
    import json

    from flows.provenance_flow import provenance_flow
    from provenance.config import Config

    result = provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path), options={"cluster_founders": 5, "num_perm": 128})
    info = json.loads((tmp_path / "run.json").read_text())
    expected = Config().replace(cluster_founders=5, num_perm=128)
    assert info["config"] == expected.to_dict() and info["config_fingerprint"] == expected.fingerprint()
    assert result["counts"] == info["counts"]
    assert result["outputs"]["report"] == str(tmp_path / "report.html") and (tmp_path / "report.html").is_file()


def test_main_parses_inputs_out_store_and_options(harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from flows.provenance_flow import main

    out, store = tmp_path / "out", tmp_path / "store"
    assert main([str(SEEDS), "--out", str(out), "--store", str(store), "-o", "cluster_founders=4",
                 "--option", "min-containment=0.4"]) == 0
    printed = capsys.readouterr().out
    assert "'documents': 5" in printed and "'edges': 3" in printed
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["link"]["cluster_founders"] == 4 and config["link"]["min_containment"] == 0.4
    assert out.is_symlink() and json.loads((store / "MANIFEST.json").read_text())["generation"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "no_such_knob=1"], "error: unknown option(s) no_such_knob"),
        (["-o", "num_perm"], "error: --option takes NAME=VALUE"),
        (["-o", "num_perm=3"], "error: option num_perm: input should be greater than or equal to 16"),
        (["-o", "min_tokens=1"], "error: min_tokens (1) must be at least word_ngram (2)"),
        (["--store", "SEEDS/000_e899f24a2be5ae4a.txt"], "exists and is not a folder"),
        (["MISSING", "SEEDS"], "does not exist"),
    ],
)
def test_main_reports_a_mistake_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, message) -> None:
    """Checked before the flow starts: one line on stderr, status 2, no Prefect server (no harness here)."""
    from flows.provenance_flow import main

    inputs = [a for a in args if a in ("SEEDS", "MISSING")] or ["SEEDS"]
    options = [a for a in args if a not in ("SEEDS", "MISSING")]
    argv = [*inputs, "--out", str(tmp_path / "out"), *options]
    argv = [a.replace("SEEDS", str(SEEDS)).replace("MISSING", str(tmp_path / "missing")) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert captured.out == ""
    assert not (tmp_path / "out" / "documents.parquet").exists()


def test_module_entry_point_runs_offline_and_quietly(tmp_path: Path) -> None:
    """``python -m flows.provenance_flow`` on the seeds: exit 0, no warning, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    proc = subprocess.run(
        [sys.executable, "-m", "flows.provenance_flow", str(SEEDS), "--out", str(tmp_path / "out"), "-o", "num_perm=64"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "WARNING" not in output and "Warning" not in output, output
    assert pl.read_parquet(tmp_path / "out" / "documents.parquet").height == 5
    import json

    assert json.loads((tmp_path / "out" / "run.json").read_text())["config"]["prepare"]["num_perm"] == 64


def test_flow_on_a_two_worker_dask_cluster_matches_the_single_process_run(harness, tmp_path: Path) -> None:
    """Batches of 2 documents on a 2-worker LocalCluster, texts read from disk by the workers, give exactly
    the library's in-memory tables."""
    from flows.provenance_flow import flow_on
    from provenance import chain, schemas
    from provenance.config import Config

    chain.run([SEEDS], Config().replace(batch_size=2), out_dir=tmp_path / "local")
    options = {"batch_size": 2, "spill_over_mib": 0}
    flow_on("dask", workers=2)(inputs=[str(SEEDS)], out=str(tmp_path / "dask"), options=options)
    for name in schemas.TABLES:
        local = pl.read_parquet(tmp_path / "local" / f"{name}.parquet")
        dask = pl.read_parquet(tmp_path / "dask" / f"{name}.parquet")
        assert local.equals(dask), name
    # The seeds' five versions are past a trace task's 2 members: split at the tree level, in chunks on the workers.
    import json

    trace = json.loads((tmp_path / "dask" / "run.json").read_text())["stages"]["trace"]
    assert (trace["viral_clusters"], trace["cluster_sets"]) == (1, 0) and trace["viral_chunks"] > 3


def test_link_and_trace_partitioned_on_a_two_worker_dask_cluster_give_the_same_table_bytes(harness, tmp_path: Path) -> None:
    """A few thousand generated documents: link as band slices and trace as sets of whole clusters, tasks on a
    2-worker LocalCluster meeting as Parquet files, write the very Parquet bytes of one process (run.json says how)."""
    import hashlib
    import json

    from benchmarks.generate import generate_corpus
    from flows.provenance_flow import flow_on
    from provenance import chain, schemas
    from provenance.config import Config

    corpus = tmp_path / "corpus.parquet"
    generate_corpus(2_500, corpus, seed=3)
    chain.run([corpus], Config().replace(batch_size=1_000), out_dir=tmp_path / "local")
    flow_on("dask", workers=2)(inputs=[str(corpus)], out=str(tmp_path / "dask"), options={"batch_size": 1_000}, progress=False)
    for name in schemas.TABLES:
        local, dask = (hashlib.sha256((tmp_path / run / f"{name}.parquet").read_bytes()).hexdigest() for run in ("local", "dask"))
        assert local == dask, name
    assert pl.read_parquet(tmp_path / "local" / "edges.parquet").height > 100
    stages = json.loads((tmp_path / "dask" / "run.json").read_text())["stages"]
    assert {name: (stages[name]["runner"], stages[name]["partitions"]) for name in ("prepare", "link", "trace")} == {
        "prepare": ("dask", 3), "link": ("dask", 9 + 8 + stages["link"]["evidence_tasks"]), "trace": ("dask", 9 + 8)}
    assert stages["link"]["evidence_tasks"] > 2  # units built in batches and pairs aligned in blocks on the workers
    one = json.loads((tmp_path / "local" / "run.json").read_text())["stages"]
    assert (one["link"]["runner"], one["link"]["partitions"], one["trace"]["partitions"]) == ("process", 1, 1)
    assert all(stages[name]["partition_input_bytes"] > 0 and stages[name]["partition_output_bytes"] > 0 for name in ("link", "trace"))


def test_a_partition_that_fails_transiently_is_retried_alone(harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partitions asked for on the threads runner: one band slice meets an I/O error once and is tried again by
    itself (the other slices run once), and the tables are the single-process run's."""
    import errno

    import flows.provenance_flow as module
    from provenance import chain, schemas
    from provenance.config import Config

    calls: list[tuple[str, int]] = []
    real = module.link_partition

    def flaky(part, config):
        calls.append((part.view, part.first))
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real(part, config)

    monkeypatch.setattr(module, "link_partition", flaky)
    chain.run([SEEDS], Config(), out_dir=tmp_path / "local")
    module.provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "flow"), options={"partitions": 3}, progress=False)
    first = calls[0]
    assert calls.count(first) == 2 and len(calls) == len(set(calls)) + 1 == 5  # 4 slices, the failed one twice
    for name in schemas.TABLES:
        assert pl.read_parquet(tmp_path / "local" / f"{name}.parquet").equals(pl.read_parquet(tmp_path / "flow" / f"{name}.parquet"))


def test_flow_with_a_store_runs_incrementally(harness, tmp_path: Path) -> None:
    import json

    from flows.provenance_flow import provenance_flow

    out, store_dir = tmp_path / "out", tmp_path / "store"
    first = provenance_flow(inputs=[str(SEEDS)], out=str(out), store=str(store_dir))
    again = provenance_flow(inputs=[str(SEEDS)], out=str(out), store=str(store_dir))
    assert first["counts"] == again["counts"] and first["counts"]["documents"] == 5
    assert json.loads((store_dir / "MANIFEST.json").read_text())["generation"] == 1
    assert out.is_symlink() and (out / "report.html").exists() and (out / "cluster_history.parquet").exists()


# ---------------------------------------------------------------------------- retries, log lines, the temporary server


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (None, False),
        ("user", False),
        (FileNotFoundError(2, "No such file or directory"), False),
        (PermissionError(13, "Permission denied"), False),
        (OSError(28, "No space left on device"), False),
        (OSError(30, "Read-only file system"), False),
        (ValueError("a bug"), False),
        (OSError(5, "Input/output error"), True),
        (TimeoutError("slow disk"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
    ],
)
def test_tasks_retry_only_transient_errors(exc, retried: bool) -> None:
    """A user's mistake, a full or read-only disk or a bug fails at once; an I/O hiccup is tried again."""
    from prefect.states import Failed

    from flows.provenance_flow import not_a_user_error
    from provenance.errors import ProvenanceError

    if exc == "user":
        exc = ProvenanceError("/data/in does not exist")
    assert not_a_user_error(None, None, Failed(data=exc)) is retried


def test_a_user_error_is_logged_as_one_line_and_a_bug_keeps_its_traceback() -> None:
    import logging
    import sys

    from flows.provenance_flow import OneLineUserErrors
    from provenance.errors import ProvenanceError

    def record_of(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "Encountered exception: %r", (exc,), info)
        assert OneLineUserErrors().filter(record)
        return record

    formatter = logging.Formatter("%(message)s")
    assert formatter.format(record_of(ProvenanceError("cannot write the outputs"))).count("\n") == 0
    assert "Traceback" in formatter.format(record_of(KeyError("bug")))


_ORPHAN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import os, time; from flows.server import watch_parent; watch_parent(os.getppid(), 0.1); time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_watched_server_process_exits_once_its_parent_is_killed() -> None:
    import signal
    import time

    import psutil

    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        time.sleep(1.0)
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.1)
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait()


def test_the_temporary_server_is_started_on_the_watched_factory_with_its_parent_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess as real_subprocess

    import flows.provenance_flow  # noqa: F401  (installs the watched server)
    from flows import server
    from prefect.server.api.server import SubprocessASGIServer

    started: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(real_subprocess, "Popen", lambda args, **kwargs: started.append((args, kwargs)) or "process")
    assert SubprocessASGIServer(port=8123)._run_uvicorn_command() == "process"
    SubprocessASGIServer._instances.pop(8123, None)
    ((args, kwargs),) = started
    assert args[args.index("--factory") + 1] == server.FACTORY == "flows.server:create_app"
    assert kwargs["env"][server.PARENT_ENV] == str(os.getpid()) and kwargs["env"]["PREFECT__SERVER_EPHEMERAL"] == "1"
