"""Typed, validated parameters of the ``provenance`` flow (pydantic).

Prefect turns the flow's annotations into the deployment's parameter schema:

* the **server** checks every new run of a deployment against it (``enforce_parameter_schema``,
  on for ``provenance serve`` and in ``prefect.yaml``), so a wrong type, an out-of-range value or
  an unknown option name is refused when the run is created, with a message naming the field;
* the **flow run** validates its parameters again with pydantic before it starts, and a bad value
  ends the run ``Failed`` with ``Flow run received invalid parameters: - options.num_perm: ...``;
* checks across fields (``min_tokens >= word_ngram``) are made by
  :meth:`provenance.config.PipelineConfig.validate` at run start, in one line.

The ranges mirror ``PipelineConfig.validate`` and the defaults are ``PipelineConfig``'s own
(``tests/test_flow_params.py`` keeps the two in step).  Unknown option names are refused by the
schema (``additionalProperties: false``) but let through by pydantic, so that a direct call of the
flow reports them as the library does (``ProvenanceError: unknown option(s) ...``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from provenance.config import PipelineConfig

_D = PipelineConfig()

#: Input folders or tables: at least one, none empty.
Inputs = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    Field(min_length=1, description="Folders (.txt/.md, recursive) or .jsonl/.csv/.parquet tables."),
]
#: Output folder of the Parquet tables and run.json.
OutDir = Annotated[str, Field(min_length=1, description="Output folder for the Parquet tables and run.json.")]


#: Incremental store folder (README, "Incremental runs"); none: a from-scratch run.
StoreDir = Annotated[str, Field(min_length=1, description="Incremental store folder: each run adds what is new.")]
#: Seconds to wait for another run holding the store.
WaitSeconds = Annotated[float, Field(ge=0, description="Seconds to wait for another run holding the store.")]


class PipelineOptions(BaseModel):
    """Options of a run (``provenance.config.PipelineConfig`` fields); omitted ones keep their defaults."""

    model_config = ConfigDict(
        extra="allow",  # unknown names reach make_config, which names them in one line
        json_schema_extra={"additionalProperties": False},  # ...and the server refuses them up front
    )

    word_ngram: int = Field(_D.word_ngram, ge=1, description="Word n-gram size of the words view.")
    anchor_ngram: int = Field(_D.anchor_ngram, ge=1, description="n-gram size over anchor tokens.")
    num_perm: int = Field(_D.num_perm, ge=16, le=1024, description="MinHash permutations per view.")
    seed: int = Field(_D.seed, ge=0, le=2**32 - 1, description="Seed of token hashing and permutations.")
    words_threshold: float = Field(_D.words_threshold, gt=0, lt=1, description="LSH threshold, words view.")
    anchors_threshold: float = Field(_D.anchors_threshold, gt=0, lt=1, description="LSH threshold, anchors view.")
    bucket_window: int = Field(_D.bucket_window, ge=1, description="Neighbours paired per LSH bucket member.")
    min_containment: float = Field(_D.min_containment, ge=0, le=1, description="Verified pair: containment.")
    min_jaccard: float = Field(_D.min_jaccard, ge=0, le=1, description="Verified pair: Jaccard of the best view.")
    min_tokens: int = Field(_D.min_tokens, ge=1, description="Shorter documents are rejected (too_short).")
    max_chars: int = Field(_D.max_chars, ge=1, description="Longer documents are rejected (too_large).")
    batch_size: int = Field(_D.batch_size, ge=1, description="Documents per batch in the signature stage.")
    spill_over_mib: int = Field(_D.spill_over_mib, ge=0, description="Texts over this many MiB wait on disk mid-run.")
    id_column: str = Field(_D.id_column, min_length=1, description="Id column of tabular inputs.")
    text_column: str = Field(_D.text_column, min_length=1, description="Text column of tabular inputs.")


def options_dict(options: PipelineOptions | dict | None) -> dict:
    """The options a caller set (plus unknown names, for ``make_config`` to refuse), as a plain dict."""
    if options is None:
        return {}
    if isinstance(options, PipelineOptions):
        return options.model_dump(exclude_unset=True)
    return dict(options)
