"""Scheduled runs on a real, local Prefect server: ``provenance serve`` and ``prefect.yaml``.

Each backend gets its own ``prefect server start`` on a free 127.0.0.1 port, with a temporary
PREFECT_HOME:

* ``sqlite``: the default local server (always run);
* ``postgres``: the same server on a fresh PostgreSQL database (created and dropped here) in the
  cluster named by ``PROVENANCE_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` starts one and prints
  it).  Skipped when that variable is absent, except under ``CI=true``, where that is an error.

Every test gets its own PREFECT_HOME for the processes it starts.  Every wait is a poll loop
with a deadline, and every process started here is stopped (SIGTERM, then SIGKILL) with its
whole process tree; the tests fail if anything is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
PG_ENV = "PROVENANCE_TEST_POSTGRES_URL"
CRON = "0 * * * *"
# Generous limits for a loaded 2-core machine; the usual times are a fraction of these.
START_TIMEOUT = 180.0  # a server, a serve process or a worker getting ready
RUN_TIMEOUT = 240.0  # a triggered run reaching a final state
STOP_TIMEOUT = 30.0  # a process tree exiting after SIGTERM

# --------------------------------------------------------------------------- processes


def _base_env(prefect_home: Path) -> dict[str, str]:
    """This environment without any PREFECT_* setting, offline, with its own PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    prefect_home.mkdir(parents=True, exist_ok=True)
    env.update(
        PREFECT_HOME=str(prefect_home),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


class Proc:
    """A child process in its own session, output to a log file, stopped with its whole tree."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.args, self.log = args, log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.ps = psutil.Process(self.popen.pid)
        self.seen: dict[int, psutil.Process] = {self.popen.pid: self.ps}

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- {self.log.name} ({' '.join(self.args[:6])} ...) ---\n" + "\n".join(lines[-n:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"process exited with {self.popen.returncode}\n{self.tail()}")

    def remember_children(self) -> None:
        try:
            for child in self.ps.children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def stop(self, sig: int = signal.SIGTERM) -> list[str]:
        """Signal the process, wait for its tree to exit (SIGKILL after STOP_TIMEOUT); the leftovers."""
        self.remember_children()
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.remember_children()
        procs = [p for p in self.seen.values() if p.is_running()]
        _, alive = psutil.wait_procs(procs, timeout=STOP_TIMEOUT if self.popen.poll() is None else 5)
        leftovers = [_describe(p) for p in alive]
        for p in alive:  # never leave anything behind, even when the test fails
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        psutil.wait_procs(alive, timeout=10)
        if self.popen.poll() is None:
            self.popen.wait(10)
        self._log_file.close()
        return leftovers


def _describe(p: psutil.Process) -> str:
    try:
        return f"{p.pid} {' '.join(p.cmdline()[:4])}"
    except psutil.Error:
        return f"{p.pid} (gone)"


def wait_for(what: str, probe: Callable[[], Any], timeout: float, *procs: Proc, every: float = 0.5) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` (or if a process dies)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        for proc in procs:
            proc.check_alive()
            proc.remember_children()
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - transient API errors while things start up
            last_error = exc
        if time.monotonic() > deadline:
            logs = "\n".join(p.tail() for p in procs)
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})\n{logs}")
        time.sleep(every)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = START_TIMEOUT) -> str:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} -> {proc.returncode}\n{output}"
    return output


# --------------------------------------------------------------------------- PostgreSQL


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh database in the cluster of PROVENANCE_TEST_POSTGRES_URL, dropped afterwards."""
    url = os.environ.get(PG_ENV)
    if not url:
        reason = f"{PG_ENV} is not set: run `eval \"$(bash .ci/postgres.sh)\"` for a local PostgreSQL"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    parts = urlsplit(url)
    name = f"prefect_test_{uuid.uuid4().hex[:10]}"
    fresh = urlunsplit(parts._replace(path=f"/{name}"))
    _pg_execute(url, f'CREATE DATABASE "{name}"')
    try:
        yield fresh
    finally:
        _pg_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    backend: str
    url: str  # PREFECT_API_URL
    proc: Proc

    def env(self, prefect_home: Path, **extra: str) -> dict[str, str]:
        env = _base_env(prefect_home)
        env["PREFECT_API_URL"] = self.url
        env.update(extra)
        return env

    def client(self):
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    """``prefect server start`` on 127.0.0.1 and a free port, with a temporary PREFECT_HOME."""
    import httpx

    backend = request.param
    home = tmp_path_factory.mktemp(f"prefect-server-{backend}")
    env = _base_env(home / "home")
    env.update(
        PREFECT_SERVER_UI_ENABLED="false",
        # the scheduler creates the upcoming runs of a schedule within seconds, not a minute
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
    )
    if backend == "postgres":
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = request.getfixturevalue("postgres_url")
    port = _free_port()
    started = time.monotonic()
    proc = Proc(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env, home / "server.log", cwd=home,
    )
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200

    try:
        wait_for(f"the {backend} Prefect server", healthy, START_TIMEOUT, proc)
        print(f"\n{backend} server ready in {time.monotonic() - started:.1f} s")
        yield Server(backend, url, proc)
    finally:
        leftovers = proc.stop()
        locked = "database is locked" in proc.log.read_text(errors="replace")
    assert not leftovers, f"processes left behind by the server: {leftovers}"
    if locked:
        print(f"note: the {backend} server logged 'database is locked'")


def _deployment(client, name: str):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def _final_run(client, run_id, timeout: float, *procs: Proc):
    def final():
        run = client.read_flow_run(run_id)
        return run if run.state is not None and run.state.is_final() else None

    return wait_for(f"flow run {run_id} to finish", final, timeout, *procs, every=1.0)


def _assert_outputs(out: Path) -> None:
    docs = pl.read_parquet(out / "documents.parquet")
    assert docs.height == 5
    assert docs.filter(pl.col("is_origin"))["doc_id"].str.slice(0, 3).sort().to_list() == ["001", "004"]


# --------------------------------------------------------------------------- tests


def test_serve_registers_cron_deployment_and_runs_it(server: Server, tmp_path: Path) -> None:
    """``provenance serve --cron``: listed with its schedule, upcoming runs planned, a triggered
    run completes, bad parameters are refused or fail the run naming them, and stopping the
    process pauses the schedule and leaves nothing behind."""
    started, started_at = time.monotonic(), datetime.now(UTC)
    name = f"cron-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "out"
    serve = Proc(
        [sys.executable, "-m", "provenance_cli.main", "serve", "--cron", CRON, "--input", str(SEEDS),
         "--out", str(out), "--name", name],
        # poll for due runs every 2 s instead of 10 s: shorter waits, the same path
        server.env(tmp_path / "prefect_home", PREFECT_RUNNER_POLL_FREQUENCY="2"), tmp_path / "serve.log", cwd=tmp_path,
    )
    try:
        with server.client() as client:
            deployment = wait_for("the served deployment", lambda: _deployment(client, f"provenance/{name}"),
                                  START_TIMEOUT, serve)
            registered = time.monotonic()
            # listed, with its schedule and its (absolute) default parameters
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

            listed = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
            assert [d.id for d in listed] == [deployment.id]
            assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [(CRON, "UTC", True)]
            assert deployment.parameters == {"inputs": [str(SEEDS)], "out": str(out)}
            assert deployment.enforce_parameter_schema
            assert not deployment.paused

            # the server's scheduler plans the next runs on the hour
            def upcoming():
                from prefect.client.schemas.filters import (
                    DeploymentFilterId,
                    FlowRunFilter,
                    FlowRunFilterState,
                    FlowRunFilterStateName,
                )

                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled"]))),
                )
                return [r for r in runs if r.auto_scheduled]

            planned = wait_for("runs planned by the scheduler", upcoming, 60.0, serve)
            marks = {"registered": registered - started, "planned": time.monotonic() - started}
            for run in planned:
                t = run.expected_start_time
                assert (t.minute, t.second, t.microsecond) == (0, 0, 0) and started_at < t, t

            # a triggered run (with an option of its own) is executed by the serving process
            run = client.create_flow_run_from_deployment(deployment.id, parameters={"options": {"cluster_founders": 5}})
            final = _final_run(client, run.id, RUN_TIMEOUT, serve)
            assert final.state.is_completed(), f"{final.state.message}\n{serve.tail()}"
            _assert_outputs(out)
            import json

            assert json.loads((out / "run.json").read_text())["config"]["link"]["cluster_founders"] == 5
            marks["run completed"] = time.monotonic() - started

            # a value the parameter schema rules out is refused when the run is created...
            from prefect.exceptions import PrefectHTTPStatusError

            with pytest.raises(PrefectHTTPStatusError) as refused:
                client.create_flow_run_from_deployment(deployment.id, parameters={"options": {"num_perm": 3}})
            assert "options.num_perm" in str(refused.value) and "minimum of 16" in str(refused.value)
            with pytest.raises(PrefectHTTPStatusError, match="no_such_knob"):
                client.create_flow_run_from_deployment(deployment.id, parameters={"options": {"no_such_knob": 1}})

            # ...and one only the run can judge fails it, with one readable line naming it
            bad = client.create_flow_run_from_deployment(deployment.id, parameters={"options": {"min_tokens": 1}})
            failed = _final_run(client, bad.id, RUN_TIMEOUT, serve)
            message = failed.state.message or ""
            assert failed.state.is_failed(), failed.state
            assert "min_tokens (1) must be at least word_ngram (2)" in message, message
            assert "Traceback" not in message and "\n" not in message and len(message) < 300, message
            marks["bad run failed"] = time.monotonic() - started
    finally:
        leftovers = serve.stop()
    marks["stopped"] = time.monotonic() - started
    assert serve.popen.returncode == 0, serve.tail()
    assert not leftovers, f"processes left behind by provenance serve: {leftovers}"
    with server.client() as client:  # stopping the serve process pauses the schedule
        assert client.read_deployment(deployment.id).paused
    print(f"\n[{server.backend}] serve, seconds since start: " + ", ".join(f"{k} {v:.1f}" for k, v in marks.items()))


def test_serve_interval_schedule(server: Server, tmp_path: Path) -> None:
    """``provenance serve --interval SECONDS`` registers an interval schedule."""
    name = f"interval-{uuid.uuid4().hex[:6]}"
    serve = Proc(
        [sys.executable, "-m", "provenance_cli.main", "serve", "--interval", "5400", "--input", str(SEEDS),
         "--out", str(tmp_path / "out"), "--name", name, "-o", "num_perm=128", "-o", "min-containment=0.4"],
        server.env(tmp_path / "prefect_home"), tmp_path / "serve.log", cwd=tmp_path,
    )
    try:
        with server.client() as client:
            deployment = wait_for("the served deployment", lambda: _deployment(client, f"provenance/{name}"),
                                  START_TIMEOUT, serve)
        assert [s.schedule.interval for s in deployment.schedules] == [timedelta(seconds=5400)]
        assert deployment.parameters == {"inputs": [str(SEEDS)], "out": str(tmp_path / "out"),
                                         "options": {"num_perm": 128, "min_containment": 0.4}}
    finally:
        leftovers = serve.stop()
    assert not leftovers, f"processes left behind by provenance serve: {leftovers}"


def test_prefect_yaml_deployment_runs_on_a_process_worker(server: Server, tmp_path: Path) -> None:
    """The README's work-pool path: ``prefect work-pool create``, ``prefect deploy`` (prefect.yaml),
    ``prefect worker start``; the deployment carries the yaml's schedule and a run completes."""
    started = time.monotonic()
    out = tmp_path / "out"
    env = server.env(tmp_path / "prefect_home", PREFECT_WORKER_QUERY_SECONDS="2")
    prefect = [sys.executable, "-m", "prefect"]
    _run_cli([*prefect, "work-pool", "create", "provenance", "--type", "process", "--overwrite"], env, ROOT)
    _run_cli([*prefect, "deploy", "--no-prompt", "--name", "hourly", "--param", f"out={out}"], env, ROOT)
    with server.client() as client:
        deployment = client.read_deployment_by_name("provenance/hourly")
        assert deployment.work_pool_name == "provenance"
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [(CRON, "UTC", True)]
        assert deployment.parameters == {"inputs": ["seeds"], "out": str(out)}
        assert deployment.enforce_parameter_schema
        deployed = time.monotonic() - started
        worker = Proc([*prefect, "worker", "start", "--pool", "provenance"], env, tmp_path / "worker.log", cwd=tmp_path)
        try:
            run = client.create_flow_run_from_deployment(deployment.id)
            final = _final_run(client, run.id, RUN_TIMEOUT, worker)
            assert final.state.is_completed(), f"{final.state.message}\n{worker.tail()}"
            completed = time.monotonic() - started
        finally:
            leftovers = worker.stop()
    assert not leftovers, f"processes left behind by the worker: {leftovers}"
    _assert_outputs(out)
    print(f"\n[{server.backend}] prefect.yaml, seconds since start: deployed {deployed:.1f}, "
          f"run completed {completed:.1f}, worker stopped {time.monotonic() - started:.1f}")
