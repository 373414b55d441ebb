"""provenance: near-duplicate clustering and provenance tracing for text.

A plain library (no Prefect import): typed functions over polars frames, one
module per stage.  ``provenance.pipeline.run`` runs them all; ``flows/`` wraps
the same stages as a Prefect flow.
"""

import os

# polars' allocator (jemalloc) keeps freed pages for jemalloc's default decay
# (10 s), so a stage's temporaries still count against the next stage's
# memory.  Return them after half a second instead (the same speed at 100k
# documents; RSS then follows what is alive).  Only takes effect if polars is
# not imported yet; a user's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")

from provenance.config import PipelineConfig  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402

__all__ = ["PipelineConfig", "ProvenanceError", "__version__"]
__version__ = "0.1.0"
