"""Prepare: normalise, tokenise, set boilerplate aside, shingle and sign (``stage.prepare_stage``)."""
