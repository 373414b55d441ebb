"""The ``provenance`` command line.

``provenance run`` runs the pipeline as a Prefect flow (Prefect's temporary
local API, nothing to start by hand) or, with ``--engine local``, in-process
without Prefect.  A user's mistake (a missing path, an unknown format, a bad
option) prints one line and exits with status 2; never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provenance import pipeline
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError
from provenance.ingest import preflight

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Near-duplicate clustering and provenance tracing for text.")
err = Console(stderr=True)
out = Console()
_D = PipelineConfig()


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.callback()
def _main() -> None:
    """Near-duplicate clustering and provenance tracing for text."""


@app.command()
def run(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Folders (.txt/.md, recursive) or .jsonl/.csv/.parquet tables. Default: seeds/")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder for the Parquet tables and run.json.")] = Path("data/output"),
    engine: Annotated[str, typer.Option(help="'prefect' (a Prefect flow run) or 'local' (no Prefect).")] = "prefect",
    word_ngram: Annotated[int, typer.Option(help="Word n-gram size of the words view.")] = _D.word_ngram,
    anchor_ngram: Annotated[int, typer.Option(help="n-gram size over anchor tokens (names, numbers).")] = _D.anchor_ngram,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations per view.")] = _D.num_perm,
    seed: Annotated[int, typer.Option(help="Seed of token hashing and MinHash permutations.")] = _D.seed,
    words_threshold: Annotated[float, typer.Option(help="LSH Jaccard threshold of the words view.")] = _D.words_threshold,
    anchors_threshold: Annotated[float, typer.Option(help="LSH Jaccard threshold of the anchors view.")] = _D.anchors_threshold,
    min_containment: Annotated[float, typer.Option(help="Verified pair: share of the smaller document found in the other.")] = _D.min_containment,
    min_jaccard: Annotated[float, typer.Option(help="Verified pair: minimum Jaccard of the best view.")] = _D.min_jaccard,
    bucket_window: Annotated[int, typer.Option(help="Neighbours paired per LSH bucket member.")] = _D.bucket_window,
    min_tokens: Annotated[int, typer.Option(help="Shorter documents are rejected as too_short.")] = _D.min_tokens,
    max_chars: Annotated[int, typer.Option(help="Longer documents are rejected as too_large.")] = _D.max_chars,
    id_column: Annotated[str, typer.Option(help="Id column of tabular inputs.")] = _D.id_column,
    text_column: Annotated[str, typer.Option(help="Text column of tabular inputs.")] = _D.text_column,
) -> None:
    """Cluster documents, find each cluster's origin and derivation tree, write Parquet."""
    options: dict[str, Any] = {
        "word_ngram": word_ngram, "anchor_ngram": anchor_ngram, "num_perm": num_perm, "seed": seed,
        "words_threshold": words_threshold, "anchors_threshold": anchors_threshold,
        "min_containment": min_containment, "min_jaccard": min_jaccard, "bucket_window": bucket_window,
        "min_tokens": min_tokens, "max_chars": max_chars, "id_column": id_column, "text_column": text_column,
    }
    paths = list(inputs) if inputs else [Path("seeds")]
    try:
        config = pipeline.make_config(options)
        if engine not in ("prefect", "local"):
            raise ProvenanceError(f"--engine must be 'prefect' or 'local', got {engine!r}")
        preflight(paths, out_dir, config)
        if engine == "local":
            result = pipeline.run(paths, out_dir, config)
            counts = result.info["counts"]
        else:
            from flows.provenance_flow import provenance_flow

            counts = provenance_flow(inputs=[str(p) for p in paths], out=str(out_dir), options=options)["counts"]
    except ProvenanceError as exc:
        fail(str(exc))
        return
    table = Table(title=f"provenance run -> {out_dir}", show_header=False)
    for key in ("documents", "rejected", "clusters", "multi_document_clusters", "edges"):
        table.add_row(key.replace("_", " "), str(counts[key]))
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except ProvenanceError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
