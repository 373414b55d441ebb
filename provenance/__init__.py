"""provenance: near-duplicate clustering and provenance tracing for text.

A plain library (no Prefect import): typed functions over polars frames, one
module per stage.  ``provenance.pipeline.run`` runs them all; ``flows/`` wraps
the same stages as a Prefect flow.
"""

from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError

__all__ = ["PipelineConfig", "ProvenanceError", "__version__"]
__version__ = "0.1.0"
