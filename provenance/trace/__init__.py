"""Trace: completeness and origins, derivation trees, change statistics (``stage.trace_stage``)."""
