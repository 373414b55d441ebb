"""Typed, validated parameters of the ``provenance`` flow, made from the one :class:`~provenance.config.Config`.

Prefect turns the flow's annotations into the deployment's parameter schema:

* the **server** checks every new run of a deployment against it (``enforce_parameter_schema``,
  on for ``provenance serve`` and in ``prefect.yaml``), so a wrong type, an out-of-range value or
  an unknown option name is refused when the run is created, with a message naming the field;
* the **flow run** validates its parameters again with pydantic before it starts, and a bad value
  ends the run ``Failed`` with ``Flow run received invalid parameters: - options.num_perm: ...``;
* checks across fields (``min_tokens >= word_ngram``) are made by :class:`Config` at run start, in one line.

:class:`PipelineOptions` has one optional field per config field, by its flat name, with the
config's own type, constraints, default and description: it is generated from ``Config``, so the
two cannot drift apart.  Unknown option names are refused by the schema
(``additionalProperties: false``) but let through by pydantic, so that a direct call of the flow
reports them as the library does (``ProvenanceError: unknown option(s) ...``).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from provenance.config import iter_fields

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


class _OptionsBase(BaseModel):
    model_config = ConfigDict(
        extra="allow",  # unknown names reach Config.from_options, which names them in one line
        json_schema_extra={"additionalProperties": False},  # ...and the server refuses them up front
    )


def _options_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for _, name, info in iter_fields():
        fields[name] = (info.annotation, copy.copy(info))
    model = create_model("PipelineOptions", __base__=_OptionsBase, __module__=__name__, **fields)
    model.__doc__ = "Options of a run (``provenance.config.Config`` fields by flat name); omitted ones keep their defaults."
    return model


PipelineOptions = _options_model()


def options_dict(options: BaseModel | dict | None) -> dict:
    """The options a caller set (plus unknown names, for ``Config.from_options`` to refuse), as a plain dict."""
    if options is None:
        return {}
    if isinstance(options, BaseModel):
        return options.model_dump(exclude_unset=True)
    return dict(options)
