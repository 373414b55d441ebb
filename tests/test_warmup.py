"""``provenance warmup``: after it, a run over other corpora compiles no kernel it had not compiled.

Each check runs in a fresh interpreter: in the test process, kernels loaded
by earlier tests would hide one the warm-up missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from provenance.warmup import warm_corpus
from tests.conftest import SEEDS

# Counts every compiled overload of every numba kernel in the library, before and after a second job.
PROBE = r"""
import json, sys, pkgutil, importlib
import numba.core.registry
import provenance

def overloads():
    out = {}
    for info in pkgutil.walk_packages(provenance.__path__, "provenance."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ == info.name:
                out[f"{info.name}.{name}"] = len(value.overloads)
    return out

from provenance.warmup import warmup
from provenance import chain
{before}
start = overloads()
{job}
end = overloads()
print(json.dumps({k: [start.get(k, 0), n] for k, n in end.items() if n != start.get(k, 0)}))
"""


def new_overloads(job: str, before: str = "warmup()") -> dict[str, list[int]]:
    code = PROBE.replace("{before}", before).replace("{job}", job)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_warmup_other_corpora_compile_nothing(tmp_path: Path) -> None:
    from tests.fixtures import light_edits, make_article, near_copy, paste_lines

    docs = {**light_edits(1), "near": near_copy(light_edits(1)["source"]),
            "pasted": paste_lines(make_article(2, 10), ["Other headline here", "Another one"]),
            "alone": make_article(3, 6)}
    frame = pl.DataFrame({"id": list(docs), "text": list(docs.values())})
    frame.write_parquet(tmp_path / "fixtures.parquet")
    job = (f"chain.run([{str(SEEDS)!r}], out_dir={str(tmp_path / 'seeds-out')!r})\n"
           f"chain.run([{str(tmp_path / 'fixtures.parquet')!r}], out_dir={str(tmp_path / 'fixtures-out')!r})")
    assert new_overloads(job) == {}


def test_the_probe_sees_compiling() -> None:
    """Without the warm-up the same probe reports the kernels a run loads (so the check above can fail)."""
    got = new_overloads(f"chain.run([{str(SEEDS)!r}])", before="")
    assert any(k.startswith("provenance.prepare.normalize.") for k in got)
    assert any(k.startswith("provenance.trace.derivation.") for k in got)


def test_warm_corpus_takes_every_path() -> None:
    """The built-in corpus has copies of several kinds, an unrelated text and a reject, with publishers and dates."""
    corpus = warm_corpus()
    assert corpus["id"].n_unique() == corpus.height
    assert {"origin", "copy", "truncated", "spun", "pasted", "reordered", "disguised", "other", "empty"} <= set(corpus["id"])
    assert corpus["published_at"].null_count() == 0


def test_warmup_command(tmp_path: Path) -> None:
    from provenance_cli.main import app

    result = CliRunner().invoke(app, ["warmup"])
    assert result.exit_code == 0, result.output
    assert "kernels" in result.output and "10 documents" in result.output
