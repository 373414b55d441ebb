"""provenance: near-duplicate clustering and provenance tracing for text.

A plain library (no Prefect, typer or rich import): typed functions over
polars frames, one module per stage, one :class:`Config`.  In a notebook::

    import polars as pl
    import provenance

    result = provenance.run(pl.DataFrame({"id": [...], "text": [...]}))
    result.documents, result.clusters, result.edges, result.rejects
    result.write("data/output")

    provenance.lookup(text, "data/store")   # is ``text`` a version of something in a store?

``provenance.chain`` is the stage chain every runner shares; the CLI
(``provenance_cli``) and the Prefect flow (``flows``) are thin layers over it.
"""

import os

# polars' allocator (jemalloc) keeps freed pages for jemalloc's default decay
# (10 s), so a stage's temporaries still count against the next stage's
# memory.  Return them after half a second instead (the same speed at 100k
# documents; RSS then follows what is alive).  Only takes effect if polars is
# not imported yet; a user's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")

from provenance.chain import RunResult, run  # noqa: E402
from provenance.config import Config  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402
from provenance.store.lookup import LookupResult, lookup, open_store  # noqa: E402

__all__ = ["Config", "LookupResult", "ProvenanceError", "RunResult", "lookup", "open_store", "run", "__version__"]
__version__ = "0.2.0"
