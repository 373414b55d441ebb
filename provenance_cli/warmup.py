"""``provenance warmup``: compile the run's kernels once, after installing (see ``provenance.warmup``)."""

from __future__ import annotations

from provenance_cli.console import app, out


@app.command("warmup")
def warmup_command() -> None:
    """Compile every kernel a run uses into numba's on-disk cache, so the first real run does not pay for it.

    Runs the pipeline over a small built-in corpus (a fresh run and a store's
    incremental run) in a temporary folder and throws the outputs away.  The
    README's install command runs it; run it again after upgrading.
    Example: provenance warmup
    """
    from provenance.warmup import warmup

    done = warmup()
    out.print(f"kernels compiled or loaded from the cache: ran {done.documents} documents in {done.seconds:.1f} s")
