"""Reliability of whole runs: kill -9 at random instants, SIGTERM, concurrent runs, full disks, all-rejected inputs.

What is checked after every case:

* a reader of ``OUT`` sees one consistent set: every table, ``run.json`` and ``report.html`` of one and the same
  run (the tables equal that run's reference tables, ``run.json`` names its input fingerprint);
* every input document is in exactly one of ``documents`` and ``rejects`` ("documents in = documents + rejects");
* the next run succeeds and sweeps what the killed one left (a generation, temp files): at most the current and
  the previous generation remain.

Kills land at random instants (fixed seeds) inside a write stage slowed down by a helper that sleeps after each
file, so they fall between any two files of the unit.  The Prefect engine is tried once for SIGKILL (the temporary
server must stop by itself) and once for SIGTERM (it is stopped, with one line).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from provenance import outputs, schemas
from provenance_cli.main import app
from tests.fixtures import make_article, spin, truncate

ROOT = Path(__file__).resolve().parents[1]
TABLES = list(schemas.TABLES)


def corpus(folder: Path, variant: int) -> Path:
    """Six documents, two of them rejected; ``variant`` changes which stories and copies."""
    folder.mkdir(parents=True)
    origin = make_article(variant, 8)
    docs = {
        "origin": origin, "spun": spin(origin, 0.3, seed=variant), "head": truncate(origin, 0.6),
        "other": make_article(variant + 2, 6), "empty": "  ", "short": "Only a few words here.",
    }
    for name, text in docs.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


N_IN = 6

#: Runs the CLI with every output file's write followed by a pause, and says when the write stage begins.
_SLOW_WRITER = """
import sys, time
from provenance import schemas
from provenance.report import page
pause = float(sys.argv[1])
started = []
def slowed(write):
    def slow(*args, **kwargs):
        if not started:
            started.append(1)
            print("WRITING", flush=True)
        write(*args, **kwargs)
        time.sleep(pause)
    return slow
schemas.write_parquet_atomic = slowed(schemas.write_parquet_atomic)
schemas.write_json_atomic = slowed(schemas.write_json_atomic)
page._write_atomic = slowed(page._write_atomic)
from provenance_cli.main import main
sys.argv = ["provenance", "run", *sys.argv[2:]]
main()
"""


def cli(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "provenance_cli.main", "run", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert not check or proc.returncode == 0, proc.stderr[-3000:]
    return proc


def reader_sees(out: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    """What a reader opening ``OUT/<file>`` finds: run.json and every table (each must exist)."""
    info = json.loads((out / "run.json").read_text())
    assert (out / "report.html").is_file() and info["counts"]["documents"] >= 0
    return info, {name: pl.read_parquet(out / f"{name}.parquet") for name in TABLES}


def same_tables(x: dict[str, pl.DataFrame], y: dict[str, pl.DataFrame]) -> bool:
    return all(x[name].equals(y[name]) for name in TABLES)


def assert_one_run(out: Path, references: dict[str, tuple[dict, dict[str, pl.DataFrame]]]) -> str:
    """The set in ``out`` is wholly one reference run's; every input document accounted for. Returns which run."""
    info, tables = reader_sees(out)
    (which,) = [k for k, (ref_info, _) in references.items() if ref_info["input_fingerprint"] == info["input_fingerprint"]]
    assert same_tables(tables, references[which][1]), f"tables of another run beside {which}'s run.json"
    assert tables["documents"].height + tables["rejects"].height == N_IN
    assert (info["counts"]["documents"], info["counts"]["rejected"]) == (tables["documents"].height, tables["rejects"].height)
    return which


def assert_swept(out: Path) -> None:
    control = outputs.control_dir(out)
    names = sorted(p.name for p in control.iterdir())
    gens = [n for n in names if n.startswith("run-")]
    assert names == ["LOCK", *gens] and 1 <= len(gens) <= 2, names
    assert os.path.realpath(out) == str(control / gens[-1])
    leftovers = [p for p in [*control.rglob(".*.tmp"), *out.parent.glob(".*.tmp")]]
    assert leftovers == []


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two inputs and the reference outputs of an uninterrupted run on each (local engine)."""
    base = tmp_path_factory.mktemp("runs")
    a, b = corpus(base / "a", 0), corpus(base / "b", 1)
    references = {}
    for name, folder in (("a", a), ("b", b)):
        cli(folder, "--out", base / f"ref-{name}", "--engine", "local")
        references[name] = reader_sees(base / f"ref-{name}")
    assert not same_tables(references["a"][1], references["b"][1])
    return {"a": a, "b": b, "refs": references}


def kill_during_write(command: list[str], seed: int, window: float, sig: int = signal.SIGKILL) -> int:
    """Start ``command`` (the slow writer), wait for its write stage, kill it at a random instant of ``window`` s."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WRITING", line
        time.sleep(random.Random(seed).uniform(0.0, window))
        proc.send_signal(sig)
        return proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------- kill -9, local engine


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_instant_leaves_one_runs_outputs_and_the_next_run_sweeps(tmp_path: Path, runs, seed: int) -> None:
    out = tmp_path / "out"
    cli(runs["a"], "--out", out, "--engine", "local")
    assert assert_one_run(out, runs["refs"]) == "a"
    pause = 0.25  # 5 tables, run.json and report.html: a write stage of about 1.75 s
    returncode = kill_during_write([sys.executable, "-c", _SLOW_WRITER, str(pause), str(runs["b"]), "--out", str(out),
                                    "--engine", "local"], seed, 7 * pause)
    assert returncode in (-signal.SIGKILL, 0)
    seen = assert_one_run(out, runs["refs"])  # a's whole set, or b's once its link was switched
    assert seen == "b" or returncode == -signal.SIGKILL
    cli(runs["b"], "--out", out, "--engine", "local")
    assert assert_one_run(out, runs["refs"]) == "b"
    assert_swept(out)


@pytest.mark.parametrize("seed", [4, 5])
def test_kill_9_of_a_store_run_at_a_random_instant(tmp_path: Path, runs, seed: int) -> None:
    out, store = tmp_path / "out", tmp_path / "store"
    cli(runs["a"], "--out", out, "--store", store, "--engine", "local")
    assert store_holds_one_run(out, runs["refs"]) == "a"
    pause = 0.15  # segment, derived tables, history, outputs and report of the new generation
    kill_during_write([sys.executable, "-c", _SLOW_WRITER, str(pause), str(runs["b"]), "--out", str(out), "--store",
                       str(store), "--engine", "local"], seed, 25 * pause)
    assert store_holds_one_run(out, runs["refs"]) in ("a", "b")
    again = cli(runs["b"], "--out", out, "--store", store, "--engine", "local")
    assert "rejected 1 as empty_text" in again.stdout and "rejected 1 as too_short" in again.stdout
    assert store_holds_one_run(out, runs["refs"]) == "b"  # b's files are new versions of a's: they replace them all
    generation = json.loads((out / "run.json").read_text())["store"]["generation"]
    assert sorted(p.name for p in store.glob("gen-*"))[-1] == f"gen-{generation:06d}"
    assert [p for p in store.rglob(".*.tmp")] == [] and [p for p in out.parent.glob(".*.tmp")] == []


def store_holds_one_run(out: Path, references: dict[str, tuple[dict, dict[str, pl.DataFrame]]]) -> str:
    """A store's published set is one generation's: the corpus of one reference run (cluster ids may differ)."""
    info, tables = reader_sees(out)
    (which,) = [k for k, (ref_info, _) in references.items() if ref_info["input_fingerprint"] == info["input_fingerprint"]]
    ref = references[which][1]
    key = ["doc_id", "content_hash"]
    assert tables["documents"].select(key).sort(key).equals(ref["documents"].select(key).sort(key))
    assert tables["rejects"].equals(ref["rejects"]) and tables["edges"].height == ref["edges"].height
    assert tables["documents"].height + tables["rejects"].height == N_IN
    assert (info["counts"]["documents"], info["counts"]["rejected"]) == (tables["documents"].height, tables["rejects"].height)
    return which


# ---------------------------------------------------------------------------- concurrent runs

_PAUSED = """
import sys
from provenance import schemas
real = schemas.write_parquet_atomic
def paused(*args, **kwargs):
    real(*args, **kwargs)
    print("FIRST-TABLE-WRITTEN", flush=True)
    sys.stdin.readline()
    schemas.write_parquet_atomic = real
schemas.write_parquet_atomic = paused
from provenance_cli.main import main
sys.argv = ["provenance", "run", *sys.argv[1:]]
main()
"""


def test_a_second_run_on_the_same_out_is_refused_while_the_first_writes_and_the_first_wins_whole(tmp_path: Path, runs) -> None:
    out = tmp_path / "out"
    cli(runs["a"], "--out", out, "--engine", "local")
    first = subprocess.Popen([sys.executable, "-c", _PAUSED, str(runs["b"]), "--out", str(out), "--engine", "local"],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "FIRST-TABLE-WRITTEN"
        assert assert_one_run(out, runs["refs"]) == "a"  # paused after one table: readers still see a whole
        second = cli(runs["a"], "--out", out, "--engine", "local", check=False)
        assert second.returncode == 2 and second.stdout == ""
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: output folder {out} is in use by pid {first.pid} on host ")
        assert lines[0].endswith("wait for it to finish or pass --wait SECONDS")
        stdout, _ = first.communicate("\n", timeout=300)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0
    assert assert_one_run(out, runs["refs"]) == "b"
    assert_swept(out)


def test_two_runs_started_together_with_wait_both_finish_one_after_the_other(tmp_path: Path, runs) -> None:
    out = tmp_path / "out"
    procs = [
        subprocess.Popen([sys.executable, "-m", "provenance_cli.main", "run", str(runs[name]), "--out", str(out),
                          "--engine", "local", "--wait", "300"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    assert assert_one_run(out, runs["refs"]) in ("a", "b")
    assert_swept(out)


# ---------------------------------------------------------------------------- full or unwritable disks


def test_a_full_disk_mid_write_is_one_line_and_the_old_outputs_stay(tmp_path: Path, runs, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["run", str(runs["a"]), "--out", str(out), "--engine", "local"]).exit_code == 0
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    real, written = schemas.write_parquet_atomic, []

    def fills_up(frame: pl.DataFrame, path: Path, **kwargs) -> None:
        if len(written) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        real(frame, path, **kwargs)

    monkeypatch.setattr(schemas, "write_parquet_atomic", fills_up)
    result = CliRunner().invoke(app, ["run", str(runs["b"]), "--out", str(out), "--engine", "local", "--quiet"])  # no progress lines
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: cannot write the outputs to {out}: No space left on device; {outputs.INTACT}"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert assert_one_run(out, runs["refs"]) == "a"
    assert len([p for p in outputs.control_dir(out).iterdir() if p.name.startswith("run-")]) == 1


def _mount_tmpfs(where: Path, size: str, *, read_only: bool = False) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode == 0


def test_a_real_full_disk_and_a_read_only_one_when_this_machine_can_mount_them(tmp_path: Path, runs) -> None:
    """A 96 KiB tmpfs holds the first run's outputs but not a second set; a read-only tmpfs holds nothing new."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "96k"):
        pytest.skip("mount -t tmpfs needs root here")
    try:
        out = disk / "out"
        first = cli(runs["a"], "--out", out, "--engine", "local", "-o", "diff_edges=0", check=False)
        if first.returncode != 0:
            pytest.skip("the tmpfs is too small for one run here")
        old = {p.name: p.read_bytes() for p in out.iterdir()}
        full = cli(runs["b"], "--out", out, "--engine", "local", "--quiet", check=False)  # --quiet: no progress lines
        assert full.returncode == 2 and "Traceback" not in full.stderr
        (line,) = full.stderr.strip().splitlines()
        assert line.startswith("error: ") and "No space left on device" in line and outputs.INTACT in line
        assert {p.name: p.read_bytes() for p in out.iterdir()} == old
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for extra in ([], ["--store", str(disk / "store")]):
            refused = cli(runs["b"], "--out", out, "--engine", "local", "--quiet", *extra, check=False)
            assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
        assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("out", ["/sys/kernel", "/proc/provenance-out"])
def test_an_out_no_run_can_write_is_one_line(tmp_path: Path, runs, out: str) -> None:
    if not Path(out).parent.exists():
        pytest.skip(f"no {Path(out).parent} here")
    for extra in ([], ["--store", str(tmp_path / "store")]):
        proc = cli(runs["a"], "--out", out, "--engine", "local", *extra, check=False)
        assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and out in line


# ---------------------------------------------------------------------------- a store's edge cases


def test_a_store_run_where_every_document_is_rejected_records_them(tmp_path: Path, runs) -> None:
    rejected = tmp_path / "rejected"
    rejected.mkdir()
    (rejected / "empty.txt").write_text("")
    (rejected / "short.txt").write_text("Too short to keep.")
    out, store = tmp_path / "out", tmp_path / "store"
    fresh = cli(rejected, "--out", out, "--store", store, "--engine", "local")  # into a new store: a valid, empty generation
    assert "rejected 1 as empty_text" in fresh.stdout and "rejected 1 as too_short" in fresh.stdout
    info, tables = reader_sees(out)
    assert (tables["documents"].height, tables["rejects"].height, info["counts"]["rejected"]) == (0, 2, 2)
    cli(runs["a"], "--out", out, "--store", store, "--engine", "local")
    again = cli(rejected, "--out", out, "--store", store, "--engine", "local")  # into a store that holds documents
    info, tables = reader_sees(out)
    assert sorted(tables["rejects"]["reason"].to_list()) == ["empty_text", "too_short"] and info["counts"]["rejected"] == 2
    assert tables["documents"].height == 4  # the stored documents stay
    assert "rejected 1 as too_short" in again.stdout
    generation = info["store"]["generation"]
    cli(rejected, "--out", out, "--store", store, "--engine", "local")  # the same input again: nothing new to publish
    assert json.loads((out / "run.json").read_text())["store"]["generation"] == generation


def test_an_empty_input_into_a_new_store_gives_an_empty_generation(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out, store = tmp_path / "out", tmp_path / "store"
    cli(tmp_path / "empty", "--out", out, "--store", store, "--engine", "local")
    info, tables = reader_sees(out)
    assert all(tables[name].height == 0 for name in TABLES) and info["store"]["generation"] == 1


# ---------------------------------------------------------------------------- the Prefect engine: no orphans


def _prefect_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    return env


def _temporary_server(parent: int, timeout: float = 180.0):
    """The uvicorn process of Prefect's temporary server under ``parent``, once it is up."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = psutil.Process(parent).children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            try:
                if "uvicorn" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("no temporary Prefect server started")


def _gone(process, timeout: float) -> bool:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_killed_prefect_run_leaves_no_server_and_no_mixed_outputs(tmp_path: Path, runs, sig: int) -> None:
    out = tmp_path / "out"
    cli(runs["a"], "--out", out, "--engine", "local")
    proc = subprocess.Popen([sys.executable, "-m", "provenance_cli.main", "run", str(runs["b"]), "--out", str(out)],
                            cwd=ROOT, env=_prefect_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        server = _temporary_server(proc.pid)
        time.sleep(random.Random(7).uniform(0.0, 2.0))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if sig == signal.SIGTERM:
            assert proc.returncode == 143
            assert err.strip().splitlines()[-1] == (
                f"error: stopped by SIGTERM; stopped the temporary Prefect server; {out} keeps the previous outputs"
            )
            assert "Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL
        assert _gone(server, 20.0), "the temporary Prefect server outlived its run"
    finally:
        proc.kill()
        proc.wait()
    assert assert_one_run(out, runs["refs"]) == "a"
    cli(runs["b"], "--out", out, "--engine", "local")
    assert assert_one_run(out, runs["refs"]) == "b"
    assert_swept(out)
