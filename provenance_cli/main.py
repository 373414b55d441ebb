"""Console-script entry point: every command registered on one typer app."""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from provenance.errors import ProvenanceError
from provenance_cli import lookup, queries, runs, warmup  # noqa: F401  (the modules register their commands)
from provenance_cli.console import app, err


def main() -> None:
    """``provenance ...``."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        app()
    except ProvenanceError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
