"""pytest fixtures of the suite; shared data and helpers live in ``tests/fixtures.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import (
    SAME_EVENT_AS_0, STORIES, SYNONYMS, build_views, cluster_of, make_article, n_tokens, noisy_copy, punctuation_copy,
    spin, spun_share, story_sentences, truncate,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture
def factory():
    """The text factory as one namespace (``factory.make_article(0)``, ``factory.spin(...)``...)."""
    import types

    return types.SimpleNamespace(
        STORIES=STORIES,
        SAME_EVENT_AS_0=SAME_EVENT_AS_0,
        SYNONYMS=SYNONYMS,
        make_article=make_article,
        story_sentences=story_sentences,
        spin=spin,
        spun_share=spun_share,
        truncate=truncate,
        noisy_copy=noisy_copy,
        punctuation_copy=punctuation_copy,
        build_views=build_views,
        n_tokens=n_tokens,
        cluster_of=cluster_of,
    )


@pytest.fixture
def write_docs(tmp_path: Path):
    """``write_docs({"name": text, ...}) -> folder`` of ``name.txt`` files."""

    def _write(docs: dict[str, str]) -> Path:
        folder = tmp_path / "in"
        folder.mkdir(exist_ok=True)
        for name, text in docs.items():
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        return folder

    return _write


@pytest.fixture
def run_pipeline(tmp_path: Path, write_docs):
    """``run_pipeline(docs) -> RunResult``: the default :class:`Config` (or the one given), tmp folders."""
    import provenance

    def _run(docs: dict[str, str], config=None):
        folder = write_docs(docs)
        return provenance.run([folder], config, out_dir=tmp_path / "out")

    return _run


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def seeds_out(tmp_path_factory: pytest.TempPathFactory):
    """The seeds' outputs (tables and report.html), written once per test module."""
    import provenance
    from provenance import report

    out = tmp_path_factory.mktemp("seeds_out")
    provenance.run([SEEDS], out_dir=out)
    report.write_report(out)
    return out


@pytest.fixture(scope="session")
def generated_linked(tmp_path_factory: pytest.TempPathFactory):
    """2,000 generated documents (seed 5), prepared and linked in one process: what the partitioned stages are checked against."""
    from benchmarks.generate import generate_corpus
    from provenance.config import Config
    from provenance.ingest import ingest_stage
    from provenance.link.stage import link_stage
    from provenance.prepare.stage import prepare_stage

    path = tmp_path_factory.mktemp("generated") / "corpus.parquet"
    generate_corpus(2_000, path, seed=5)
    config = Config()
    ingested, _ = ingest_stage([path], config)
    prepared, _ = prepare_stage(ingested, config)
    linked, _ = link_stage(prepared, config)
    return prepared, linked
