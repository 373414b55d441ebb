"""Progress of a run: what the stages tell ``Hooks.progress``, and how the CLI shows it (bars, lines, nothing).

Progress only informs: the tables are the same bytes with or without it.  No
timing is asserted; throttling runs on a fake clock.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from provenance import chain, schemas
from provenance.config import Config
from provenance.prepare.stage import BatchProgress
from provenance.stage_report import ProgressLines
from provenance_cli import console
from provenance_cli.main import app
from tests.fixtures import light_edits, make_article

#: Every progress label of a fresh run, in the order they first report.
LABELS = ["prepare 1/2", "prepare 2/2", "link 1/2", "link 2/2", "trace 1/3", "trace 2/3", "trace 3/3", "write"]


class Recording(chain.Hooks):
    """Every progress call, in order, with the thread it came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, str]] = []
        self.lock = threading.Lock()

    def progress(self, stage: str, done: int, total: int, unit: str) -> None:
        with self.lock:
            self.calls.append((stage, done, total, unit))


def corpus(folder: Path) -> Path:
    """Two stories with light edits of each and three unrelated articles: 13 documents, two clusters with copies."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = {f"a_{k}": v for k, v in light_edits(0).items()} | {f"b_{k}": v for k, v in light_edits(1).items()}
    docs |= {f"solo_{i}": make_article(i, 8) for i in (2, 3, 4)}
    for name, text in docs.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def assert_monotone_to_total(calls: list[tuple[str, int, int, str]]) -> dict[str, list[tuple[int, int, str]]]:
    """Per label: ``done`` never goes down, never passes ``total``, the total and unit stay, the last call is done."""
    by: dict[str, list[tuple[int, int, str]]] = {}
    for stage, done, total, unit in calls:
        by.setdefault(stage, []).append((done, total, unit))
    for stage, seq in by.items():
        dones = [d for d, _, _ in seq]
        assert dones == sorted(dones), (stage, seq)
        assert len({(t, u) for _, t, u in seq}) == 1, (stage, seq)
        assert all(0 <= d <= t for d, t, _ in seq), (stage, seq)
        assert seq[-1][0] == seq[-1][1], (stage, seq)
    return by


def test_every_stage_reports_monotone_counts_ending_at_its_total(tmp_path: Path) -> None:
    """Batches of 3 documents: prepare's passes count documents batch by batch; every pass ends at its total."""
    hooks = Recording()
    result = chain.run([corpus(tmp_path / "in")], Config().replace(batch_size=3), out_dir=tmp_path / "out", hooks=hooks)
    by = assert_monotone_to_total(hooks.calls)
    assert list(by) == LABELS
    assert by["prepare 1/2"] == [(d, 13, "documents") for d in (0, 3, 6, 9, 12, 13)]
    assert by["prepare 2/2"][-1] == (13, 13, "documents") and len(by["prepare 2/2"]) == 6
    assert by["link 1/2"][-1][2] == "bands" and len(by["link 1/2"]) > 2
    members = int(result.documents.filter(result.documents["cluster_id"].is_in(
        result.clusters.filter(result.clusters["size"] > 1)["cluster_id"].implode()))["doc_id"].len())
    assert by["trace 2/3"][-1] == (members, members, "documents")
    assert by["trace 3/3"][-1] == (result.edges.height, result.edges.height, "edges")
    assert by["write"][-1] == (len(result.frames()), len(result.frames()), "tables")


def test_trace_in_parts_on_threads_reports_one_count_per_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clusters traced in parts on threads: each pass still counts up once, to the whole corpus's total."""
    from provenance.trace import stage as trace_stage

    monkeypatch.setattr(trace_stage, "PARALLEL_MIN_MEMBERS", 0)
    monkeypatch.setattr(trace_stage, "threads", lambda: 2)
    hooks = Recording()
    result = chain.run([corpus(tmp_path / "in")], Config().replace(batch_size=3), hooks=hooks)
    by = assert_monotone_to_total(hooks.calls)
    assert by["trace 3/3"][-1] == (result.edges.height, result.edges.height, "edges")
    assert by["trace 2/3"][-1][0] == int((result.clusters["size"].filter(result.clusters["size"] > 1)).sum())


def test_a_store_run_reports_progress_too(tmp_path: Path) -> None:
    """The incremental path passes the hooks' progress down: its stages end at their totals as well."""
    from provenance.store.run import run_with_store

    hooks = Recording()
    run_with_store([corpus(tmp_path / "in")], tmp_path / "out", tmp_path / "store", Config(), hooks=hooks)
    by = assert_monotone_to_total(hooks.calls)
    assert {"prepare 1/2", "prepare 2/2", "link 1/2", "link 2/2", "trace 1/3", "trace 2/3", "trace 3/3", "write"} <= set(by)


def test_batches_finishing_on_many_threads_count_up_in_order() -> None:
    """The flow's batches end on other threads in any order: the callback still sees done rise to the total."""
    seen: list[int] = []
    batches = [(list(range(size)),) for size in [5, 1, 7, 3] * 25]

    def fn(texts: list[int]) -> None: ...

    done = BatchProgress(lambda stage, d, total, unit: seen.append(d), fn, batches)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(done.finished, reversed(range(len(batches)))))
    assert seen[0] == 0 and seen == sorted(seen) and seen[-1] == done.total == 400 and len(seen) == 101


def test_progress_lines_are_throttled_per_stage_and_end_once() -> None:
    """At most one line per stage every ``every`` seconds of the (fake) clock, then its end, once."""
    now = [0.0]
    lines: list[str] = []
    tell = ProgressLines(lines.append, every=5.0, clock=lambda: now[0])
    tell("prepare 1/2", 0, 100, "documents")
    for step in range(1, 10):  # one batch a second
        now[0] = float(step)
        tell("prepare 1/2", step * 10, 100, "documents")
        tell("link 1/2", step, 50, "bands")
    now[0] = 10.0
    tell("prepare 1/2", 100, 100, "documents")
    tell("prepare 1/2", 100, 100, "documents")  # a repeated end prints nothing
    assert lines == [
        "prepare 1/2: 50/100 documents (50%), 10 documents/s, about 5 s left",
        "link 1/2: 6/50 bands (12%), 1.2 bands/s, about 37 s left",
        "prepare 1/2: 100 documents in 10.0 s (10 documents/s)",
    ]


# ---------------------------------------------------------------------------- the CLI


def run_cli(*args: str | Path):
    return CliRunner().invoke(app, ["run", "--engine", "local", *map(str, args)])


def test_cli_prints_progress_lines_when_not_a_terminal_and_nothing_with_quiet(tmp_path: Path) -> None:
    """Piped (CliRunner is no terminal): one end line per stage pass on stderr; ``--quiet``: no progress at all;
    the Parquet tables are the same bytes either way."""
    folder = corpus(tmp_path / "in")
    loud = run_cli(folder, "--out", tmp_path / "loud", "--batch-size", "4")
    assert loud.exit_code == 0, loud.output
    lines = loud.stderr.strip().splitlines()
    ends = [line for line in lines if "%" not in line]  # a slow pass (a first compile) may add a line on the way
    assert [line.split(":")[0] for line in ends] == LABELS, lines
    assert all(line.split(":")[0] in LABELS for line in lines), lines
    assert ends[0].startswith("prepare 1/2: 13 documents in ") and "documents/s" in ends[0]
    assert "Traceback" not in loud.output
    quiet = run_cli(folder, "--out", tmp_path / "quiet", "--batch-size", "4", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert "documents" in quiet.stdout  # the summary still prints
    for name in schemas.TABLES:
        loud_bytes = (tmp_path / "loud" / f"{name}.parquet").read_bytes()
        assert loud_bytes == (tmp_path / "quiet" / f"{name}.parquet").read_bytes(), name


def test_cli_draws_bars_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With stdout a terminal the run draws one rich bar per stage pass (here a fake terminal), no plain lines."""
    screen = io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=screen, force_terminal=True, width=120))
    result = run_cli(corpus(tmp_path / "in"), "--out", tmp_path / "out", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    drawn = screen.getvalue()
    for label in LABELS:
        assert label in drawn
    assert "━" in drawn and "13/13 documents" in drawn and "documents/s" in drawn
    assert result.stderr == ""


def test_bars_show_count_rate_and_time_left() -> None:
    """The bar's columns: description, bar, done/total units, units/s, time left."""
    screen = io.StringIO()
    bars = console.ProgressBars(Console(file=screen, force_terminal=True, width=120))
    bars.update("trace 2/3", 0, 400, "documents")
    bars.update("trace 2/3", 100, 400, "documents")
    bars.update("trace 2/3", 200, 400, "documents")
    bars.finish("trace")
    bars.close()
    drawn = screen.getvalue()
    assert "trace 2/3" in drawn and "400/400 documents" in drawn and "━" in drawn


def test_a_failure_mid_run_ends_with_its_one_error_line_after_the_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress lines do not hide or split an error: it is the last line on stderr, one line, no traceback."""
    import errno
    import os

    def full_disk(frame, path, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(schemas, "write_parquet_atomic", full_disk)
    result = run_cli(corpus(tmp_path / "in"), "--out", tmp_path / "out")
    assert result.exit_code == 2 and "Traceback" not in result.output
    *progress, last = result.stderr.strip().splitlines()
    assert last.startswith("error: cannot write the outputs") and "No space left on device" in last
    assert [line.split(":")[0] for line in progress if "%" not in line] == LABELS[:-1]
