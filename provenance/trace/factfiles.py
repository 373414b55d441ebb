"""The derivation model's corpus counts as files in a run's work folder, so trace tasks on any worker read the same facts.

Written by the client once the first wave's counts are summed (``trace.parts``)
and read by every trace task (``trace.parts``, ``trace.viral``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provenance.trace import derivation
from provenance.trace.stage import CorpusFacts

COUNTS = ("words", "lines", "grams")


def write_facts(folder: Path, facts: CorpusFacts) -> None:
    """The derivation model's counts as ``facts.npz`` and ``facts.json`` (whether the corpus has dates rides along)."""
    dfacts = facts.derivation if facts.derivation is not None else derivation.DerivationFacts.empty()
    arrays = {}
    for name in COUNTS:
        counts: derivation.Counts = getattr(dfacts, name)
        arrays[f"{name}_keys"], arrays[f"{name}_counts"] = counts.keys, counts.counts
    with open(folder / "facts.npz", "wb") as fh:
        np.savez(fh, **arrays)
    meta = {"n_clusters": int(dfacts.n_clusters), "least": {name: int(getattr(dfacts, name).least) for name in COUNTS},
            "dated": facts.published is not None}
    (folder / "facts.json").write_text(json.dumps(meta))


def read_facts(folder: Path) -> tuple[CorpusFacts, bool]:
    """:func:`write_facts`'s counts as :class:`CorpusFacts` (dates come per part), and whether the corpus is dated."""
    meta = json.loads((folder / "facts.json").read_text())
    with np.load(folder / "facts.npz") as data:
        counts = {name: derivation.Counts(data[f"{name}_keys"], data[f"{name}_counts"], int(meta["least"][name])) for name in COUNTS}
    dfacts = derivation.DerivationFacts(counts["words"], int(meta["n_clusters"]), counts["lines"], counts["grams"])
    return CorpusFacts(derivation.WordCounts(dfacts.words), None, dfacts), bool(meta["dated"])
