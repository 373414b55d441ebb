"""Prefect cache policy of the flow's stage and batch tasks: keyed on what determines their result.

A cached result is valid for the same task, the same library code and the
same inputs.  :class:`StageInputs` keys a task on its name, the digest of the
library's own source (``provenance.digest``: any code change invalidates every
cached result, with no version constant to bump by hand) and a digest of the
inputs that determine its result: a :class:`~provenance.config.Config` by its
``fingerprint()`` (every result-affecting option and constant), an options
section by its values, the prepared corpus by every document's id, source,
text and metadata, texts and arrays by their bytes.  A retried flow run then
skips the stages it already finished.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import xxhash
from prefect.cache_policies import CachePolicy

from provenance import spill
from provenance.config import Config, Section
from provenance.digest import library_digest
from provenance.prepare.stage import Prepared
from provenance.store.plan import fingerprints

#: Documents fingerprinted at a time when the texts wait on disk.
_FINGERPRINT_BATCH = 20_000


def texts_digest(texts: pl.Series) -> str:
    digest = xxhash.xxh3_128()
    for text in texts.to_list():
        digest.update(text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def corpus_digest(prepared: Prepared) -> str:
    """Every document's id, source, text and metadata (a table carries them all), and every reject."""
    docs = prepared.documents
    digest = xxhash.xxh3_128()
    for lo in range(0, docs.height, _FINGERPRINT_BATCH):
        part = docs.slice(lo, _FINGERPRINT_BATCH)
        if prepared.texts is not None:
            part = part.with_columns(prepared.texts.slice(lo, _FINGERPRINT_BATCH).alias("text"))
        rows = zip(part["doc_id"].to_list(), part["source"].cast(pl.String).to_list(), fingerprints(part).to_list())
        for doc_id, source, fingerprint in rows:
            digest.update(f"{doc_id}\x1f{source}\x1f{fingerprint}\x1e".encode())
    for row in prepared.rejects.sort(["source", "doc_id"], nulls_last=True).iter_rows():
        digest.update(("\x1f".join(map(str, row)) + "\x1e").encode())
    return f"{digest.hexdigest()}:{docs.height}"


def value_digest(value: Any) -> str:
    """A stable digest of one task input (see the module docstring)."""
    if isinstance(value, Config):
        return value.fingerprint()
    if isinstance(value, Section):
        return value.model_dump_json()
    if isinstance(value, Prepared):
        return corpus_digest(value)
    if isinstance(value, (pl.Series, spill.TextRows)):
        return texts_digest(spill.texts_of(value))
    if isinstance(value, np.ndarray):
        return f"{value.dtype}:{value.shape}:{xxhash.xxh3_64_hexdigest(np.ascontiguousarray(value).tobytes())}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"no stable digest for a task input of type {type(value).__name__}")


@dataclass
class StageInputs(CachePolicy):
    """Key = task name + library source digest + digests of the inputs named in ``inputs``."""

    inputs: tuple[str, ...] = field(default_factory=tuple)

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        digest = hashlib.sha256(f"{task_ctx.task.name}\x1f{library_digest()}".encode())
        for name in self.inputs:
            digest.update(f"\x1e{name}\x1f{value_digest(inputs.get(name))}".encode())
        return digest.hexdigest()
