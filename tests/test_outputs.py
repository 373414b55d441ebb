"""provenance.outputs: a run's outputs published as one unit (a generation and one link switch), swept, locked,
and the one-line refusals of an --out a run must not write.

Runs use a two-document frame (one accepted, one rejected) so that every test also checks that each input
document is in exactly one of documents and rejects.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest

import provenance
from provenance import outputs, schemas
from provenance.errors import ProvenanceError
from tests.fixtures import make_article

ROOT = Path(__file__).resolve().parents[1]


def frame(story: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"doc-{story}", "short"], "text": [make_article(story, 6), "Too short."]})


def published(out: Path) -> dict[str, bytes]:
    """Every file a reader finds in ``out`` (through the link)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def assert_accounted(out: Path, n_in: int) -> None:
    docs, rejects = pl.read_parquet(out / "documents.parquet"), pl.read_parquet(out / "rejects.parquet")
    assert docs.height + rejects.height == n_in
    info = json.loads((out / "run.json").read_text())
    assert (info["counts"]["documents"], info["counts"]["rejected"]) == (docs.height, rejects.height)


def generations(out: Path) -> list[str]:
    return sorted(p.name for p in outputs.control_dir(out).iterdir() if p.name.startswith("run-"))


# ---------------------------------------------------------------------------- one unit, swept


def test_a_run_is_published_as_a_link_to_its_own_generation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = provenance.run(frame(), out_dir=out)
    assert out.is_symlink() and os.readlink(out) == ".out.provenance/run-000001"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.parquet" for n in schemas.TABLES] + ["run.json"])
    # run.json and the result name the files where readers find them, not the generation folder
    info = json.loads((out / "run.json").read_text())
    assert info["outputs"] == {name: str(out / f"{name}.parquet") for name in schemas.TABLES}
    assert result.out_dir == out
    assert_accounted(out, 2)


def test_the_next_run_keeps_the_previous_generation_and_sweeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    provenance.run(frame(0), out_dir=out)
    first = published(out)
    provenance.run(frame(1), out_dir=out)
    # a reader holding the old link still reads the whole old set
    assert published(outputs.control_dir(out) / "run-000001") == first
    control = outputs.control_dir(out)
    (control / "run-000009").mkdir()  # a killed run's generation, never published
    (control / "run-000009" / "documents.parquet").write_bytes(b"half")
    (control / ".stray.tmp").write_text("x")
    (tmp_path / ".out.link.tmp").symlink_to("nowhere")
    provenance.run(frame(2), out_dir=out)
    assert generations(out) == ["run-000002", "run-000003"] and os.readlink(out).endswith("run-000003")
    assert sorted(p.name for p in control.iterdir()) == ["LOCK", "run-000002", "run-000003"]
    assert not (tmp_path / ".out.link.tmp").is_symlink()
    assert pl.read_parquet(out / "documents.parquet")["doc_id"].to_list() == ["doc-2"]
    assert_accounted(out, 2)


def test_a_folder_of_older_outputs_becomes_the_link_and_stays_readable_as_the_previous_generation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = provenance.run(frame(0))
    for name, table in old.frames().items():
        table.write_parquet(out / f"{name}.parquet")
    (out / "run.json").write_text("{}")
    (out / ".run.json.k2j4.tmp").write_text("{")  # left by a run killed inside an atomic write
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    provenance.run(frame(1), out_dir=out)
    assert out.is_symlink()
    moved = [g for g in generations(out) if not os.readlink(out).endswith(g)]
    assert len(moved) == 1
    assert {n: b for n, b in published(outputs.control_dir(out) / moved[0]).items() if not n.startswith(".")} == before
    provenance.run(frame(2), out_dir=out)  # the next run sweeps them, temp file and all
    assert not (outputs.control_dir(out) / moved[0]).exists()


def test_a_failed_write_publishes_nothing_and_leaves_no_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    provenance.run(frame(0), out_dir=out)
    before = published(out)
    real = schemas.write_parquet_atomic
    written: list[Path] = []

    def full_disk(table: pl.DataFrame, path: Path, **kwargs) -> None:
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        real(table, path, **kwargs)

    monkeypatch.setattr(schemas, "write_parquet_atomic", full_disk)
    with pytest.raises(ProvenanceError) as caught:
        provenance.run(frame(1), out_dir=out)
    message = str(caught.value)
    assert message == f"cannot write the outputs to {out}: No space left on device; {outputs.INTACT}"
    assert "\n" not in message
    assert published(out) == before and generations(out) == ["run-000001"]
    assert_accounted(out, 2)


def test_a_failing_body_removes_its_generation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with outputs.staged(out) as folder:
            (folder / "documents.parquet").write_bytes(b"x")
            raise RuntimeError("a bug")
    assert not out.exists() and generations(out) == []


def test_write_into_a_staged_folder_publishes_only_when_the_stage_ends(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = provenance.run(frame(0))
    with outputs.staged(out) as folder:
        paths, _ = outputs.write_tables(result, folder)
        (folder / "report.html").write_text("<html></html>")
        assert not out.exists()  # nothing is visible before the stage ends
    assert paths["documents"] == str(out / "documents.parquet") and result.out_dir == out
    assert (out / "report.html").read_text() == "<html></html>"
    assert_accounted(out, 2)


# ---------------------------------------------------------------------------- refusals


def test_an_out_of_other_files_is_refused_untouched(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    with pytest.raises(ProvenanceError, match=r"^output folder .*mine holds files provenance did not write \(thesis.tex\)"):
        provenance.run(frame(), out_dir=mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"] and not outputs.control_dir(mine).exists()


def test_a_plain_run_through_a_stores_link_or_into_a_store_is_refused(tmp_path: Path) -> None:
    from provenance.store.run import run_with_store

    out, store = tmp_path / "out", tmp_path / "store"
    run_with_store(frame(), out, store)
    before = published(out)
    with pytest.raises(ProvenanceError, match=rf"^--out {out} is the published link of the store {store}: .*pass --store {store}"):
        provenance.run(frame(1), out_dir=out)
    inside = store / "gen-000001" / "out"
    with pytest.raises(ProvenanceError, match=rf"^--out {inside} is a folder of the store {store}"):
        provenance.run(frame(1), out_dir=inside)
    assert published(out) == before
    with pytest.raises(ProvenanceError, match=r"is inside --store"):
        run_with_store(frame(1), store / "out", store)


def test_a_link_provenance_did_not_make_and_a_root_are_refused(tmp_path: Path) -> None:
    (tmp_path / "big-disk").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "big-disk")
    with pytest.raises(ProvenanceError, match="is a link provenance did not make"):
        provenance.run(frame(), out_dir=tmp_path / "out")
    with pytest.raises(ProvenanceError, match="is a file system root"):
        outputs.check_out(Path("/"))


# ---------------------------------------------------------------------------- the lock

_HOLDER = """
import sys, time
from pathlib import Path
from provenance import outputs
with outputs.claimed(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_run_on_a_held_out_is_told_who_holds_it_or_waits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProvenanceError, match=rf"^output folder {out} is in use by pid {holder.pid} on host .* pass --wait SECONDS$"):
            provenance.run(frame(), out_dir=out)
        assert not out.exists()
        threading.Timer(1.0, lambda: (holder.stdin.write("\n"), holder.stdin.flush())).start()
        with outputs.claimed(out, wait_seconds=60):
            provenance.run(frame(), out_dir=out)  # the write re-enters the run's own claim
    finally:
        holder.kill()
        holder.wait()
    assert_accounted(out, 2)
    assert (outputs.control_dir(out) / outputs.LOCK).read_text() == ""  # released
