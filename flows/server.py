"""Prefect's temporary local server, made to die with the run that started it.

With no ``PREFECT_API_URL``, Prefect starts a temporary server (a
``uvicorn`` process of about 200 MB) for the run and stops it at exit.  A run
killed by SIGKILL never reaches its exit, so the server used to live on for
ever with parent pid 1.  :func:`install` makes Prefect start the server on
:func:`create_app`, which serves Prefect's own app and starts a watchdog
thread: when the process that started the server is gone (its parent pid
changes), the server stops itself within :data:`POLL_SECONDS` plus
uvicorn's shutdown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: How often the server checks that its parent is still there.
POLL_SECONDS = 0.5
#: After asking uvicorn to shut down, how long it gets before the process exits regardless.
GRACE_SECONDS = 5.0
#: The watched factory, in the ``module:function`` form uvicorn takes.
FACTORY = "flows.server:create_app"
#: The pid of the run that starts the server, handed over at spawn time: the server may take seconds to import
#: Prefect before its factory runs, and its parent may die in between.
PARENT_ENV = "PROVENANCE_SERVER_PARENT_PID"


def create_app() -> Any:
    """Prefect's server app (``prefect.server.api.server.create_app``), with a watchdog on the parent process."""
    watch_parent(int(os.environ.get(PARENT_ENV) or os.getppid()))
    from prefect.server.api.server import create_app as prefect_app

    return prefect_app()


def watch_parent(parent: int, poll_seconds: float = POLL_SECONDS) -> threading.Thread:
    """A daemon thread that stops this process once ``parent`` is no longer its parent (it died)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        try:  # the run's terminal or log may be gone with it
            print(f"provenance: the run that started this temporary Prefect server (pid {parent}) is gone; "
                  "stopping the server", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        time.sleep(GRACE_SECONDS)
        os._exit(0)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def install() -> None:
    """Make Prefect's temporary server (``SubprocessASGIServer``) run :func:`create_app` instead of its own factory."""
    from prefect.server.api import server

    if getattr(server.SubprocessASGIServer._run_uvicorn_command, "watched", False):
        return
    original = server.SubprocessASGIServer._run_uvicorn_command

    def run_watched_uvicorn(self: Any) -> subprocess.Popen[Any]:
        real_popen = server.subprocess.Popen

        def popen(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
            args = [FACTORY if a == "prefect.server.api.server:create_app" else a for a in args]
            kwargs["env"] = {**(kwargs.get("env") or os.environ), PARENT_ENV: str(os.getpid())}
            return real_popen(args, **kwargs)

        # Prefect builds the command and its environment; only the factory it names changes.
        server.subprocess = _PopenSwap(popen)
        try:
            return original(self)
        finally:
            server.subprocess = subprocess

    run_watched_uvicorn.watched = True  # type: ignore[attr-defined]
    server.SubprocessASGIServer._run_uvicorn_command = run_watched_uvicorn


class _PopenSwap:
    """The ``subprocess`` module as ``prefect.server.api.server`` sees it while the server command starts."""

    def __init__(self, popen: Any) -> None:
        self.Popen = popen

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


def stop_temporary_servers() -> int:
    """Stop every temporary server this process started (on SIGTERM); returns how many were running."""
    from prefect.server.api.server import SubprocessASGIServer

    running = [s for s in list(SubprocessASGIServer._instances.values()) if s.server_process is not None]
    for instance in running:
        instance.stop()
    return len(running)


@contextmanager
def stop_on_sigterm(out_dir: str) -> Iterator[None]:
    """For the ``with`` body: on SIGTERM stop the temporary server, say so in one line, exit 143 (128 + SIGTERM).

    Without this, Python dies at once on SIGTERM and never runs the exit
    handler that stops the server.  Nothing is published by a stopped run:
    ``out_dir`` keeps the previous outputs, and the next run sweeps what this
    one had begun.  (A long compiled step delays the handler until it returns.)
    """

    def handler(signum: int, frame: Any) -> None:
        stopped = stop_temporary_servers()
        server = "stopped the temporary Prefect server" if stopped else "no temporary Prefect server was running"
        sys.stderr.write(f"error: stopped by SIGTERM; {server}; {out_dir} keeps the previous outputs\n")
        sys.stderr.flush()
        os._exit(128 + signal.SIGTERM)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
