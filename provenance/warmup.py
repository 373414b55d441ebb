"""Compile every kernel a run uses, once, after installing: ``provenance warmup``.

The pipeline's inner loops are numba kernels compiled on first use and cached
on disk (``cache=True``: in ``__pycache__`` beside the sources, or in
``NUMBA_CACHE_DIR``).  Compiling them all takes a minute or two, which a
user would otherwise pay inside their first run.  :func:`warmup` pays it at
install time instead: it runs the whole chain, a fresh run and a store's
incremental run, over a small built-in corpus whose documents take every
path a corpus takes (an origin, an exact copy, a truncated copy, a spun copy,
a copy with pasted lines and boilerplate, a reordered copy, a disguised copy
in look-alike letters, a text sharing one sentence, a reject), so that every
kernel meets the argument types a real run gives it.  Later runs load the
compiled kernels from the cache.  The outputs are thrown away.

Why a run and not a list of signatures: the types a kernel is compiled for
are whatever the stages pass it; a run is the one place that knows them, so
a new kernel or a changed call is warmed without anyone keeping a list.
``tests/test_warmup.py`` checks that, after a warm-up, a run over other
corpora compiles nothing more.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from provenance.config import Config

_STORY = [
    "The river authority said on Tuesday that the northern dam would stay closed for repairs until the spring.",
    "Engineers found cracks in two of the spillway gates during an inspection last month, officials said.",
    "Farmers downstream have asked for compensation after the reservoir was lowered to ease pressure on the wall.",
    "The regional governor told reporters the closure was a precaution and that nobody was in danger.",
    "Water for the three towns below the dam will be pumped from wells while the work goes on.",
    "The authority expects the repairs to cost about forty million, to be shared with the national government.",
    "A similar crack closed the southern dam for eight months in 2019, and the repairs ran over budget.",
    "Environmental groups said the lower water level had already stranded fish in the shallow bays.",
    "The authority said it would publish the inspection report once the insurers had read it.",
    "Boat owners at the marina were told to move their vessels before the level falls further next week.",
    "The next inspection is planned for the end of the year, when the gates will be tested again.",
    "Local councils will meet on Friday to decide how the pumping costs are shared between the towns.",
]
_OTHER = [
    "A new library opened in the old railway station on Saturday after six years of building work.",
    "The regional governor told reporters the closure was a precaution and that nobody was in danger.",
    "Its reading rooms fill the former ticket hall, and the platforms have become a garden with benches.",
    "The architects kept the station clock, which had stopped in 1987 and now runs again.",
    "Children's books are on the ground floor, with a room for homework clubs after school.",
    "The city paid for most of the work, with help from a charity founded by a former station master.",
    "Opening hours will be longer in the winter, when the heated rooms are expected to draw more visitors.",
    "Volunteers will run guided tours of the building on the first Sunday of every month.",
]
_SWAPS = {"river": "stream", "said": "stated", "repairs": "fixes", "closed": "shut", "officials": "authorities",
          "Farmers": "Growers", "reporters": "journalists", "towns": "villages", "expects": "anticipates"}
_LOOKALIKE = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441"})


def warm_corpus() -> pl.DataFrame:
    """The built-in corpus (``id``, ``title``, ``publisher``, ``published_at``, ``text``) the warm-up runs."""
    title = "Northern dam to stay closed for repairs"
    body = "\n\n".join(_STORY)
    spun = " ".join(_SWAPS.get(word, word) for word in body.split(" "))
    pasted = "\n\n".join(["Sign up for our newsletter", "Trending: markets close higher", *_STORY[:9],
                          "Share this article", "Copyright 2026 Regional Wire"])
    reordered = "\n\n".join(_STORY[6:] + _STORY[:6])
    texts = {
        "origin": f"{title}\n\n{body}",
        "copy": f"{title}\n\n{body}",
        "truncated": "\n\n".join([title, *_STORY[:6]]),
        "spun": f"{title}\n\n{spun}",
        "pasted": pasted,
        "reordered": f"{title}\n\n{reordered}",
        "disguised": f"{title}\n\n{body}".translate(_LOOKALIKE),
        "other": "\n\n".join(["Old station becomes a library", *_OTHER]),
        "other-copy": "\n\n".join(["Station library opens", *_OTHER[:7], "Share this article"]),
        "empty": "   ",
    }
    n = len(texts)
    return pl.DataFrame({
        "id": list(texts),
        "title": [None] * n,
        "publisher": [f"site-{i % 4}.example" for i in range(n)],
        "published_at": [f"2026-03-{1 + i:02d}T08:00:00Z" for i in range(n)],
        "text": list(texts.values()),
    }, schema={"id": pl.String, "title": pl.String, "publisher": pl.String, "published_at": pl.String, "text": pl.String})


@dataclass(frozen=True)
class Warmed:
    """What :func:`warmup` did: documents run, and the seconds it took (compiling, or loading the cache)."""

    documents: int
    seconds: float


def warmup(config: Config | None = None) -> Warmed:
    """Run a fresh run and a store's incremental run over :func:`warm_corpus` in a temporary folder."""
    from provenance import chain  # the run's modules (numba, datasketch) load here, not at import
    from provenance.store.run import run_with_store

    config = config or Config()
    corpus = warm_corpus()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provenance-warmup-") as tmp:
        folder = Path(tmp)
        first, rest = folder / "first.jsonl", folder / "rest.parquet"
        corpus.head(6).write_ndjson(first)
        corpus.slice(6).write_parquet(rest)
        chain.run([first, rest], config, out_dir=folder / "out")
        run_with_store([first], folder / "store-out", folder / "store", config)
        run_with_store([rest], folder / "store-out", folder / "store", config)
    return Warmed(corpus.height, time.perf_counter() - started)
