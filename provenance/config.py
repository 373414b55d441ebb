"""The typed options of a run, with the defaults we ship and measure.

Every knob of the pipeline lives here so that the CLI, the Prefect flow and a
library caller share one definition, one set of defaults and one validation.
Defaults are the measured ones (README, "Accuracy"); change them per run, not
per corpus.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from provenance.errors import ProvenanceError

#: Signature scheme identifier stored with every signature and store.  Bump it
#: whenever token hashing, shingling or the permutation family changes: two
#: signatures are only comparable under the same scheme.
SIGNATURE_SCHEME = "provenance-fnv1a-cp-affine32-v3-frequent-out"


@dataclass(frozen=True)
class PipelineConfig:
    """Options of one pipeline run.

    Shingle views (each gets its own MinHash signature and LSH index):

    * ``words``: word ``word_ngram``-grams of the normalised text.  Catches
      copies, truncations, excerpts.
    * ``anchors``: ``anchor_ngram``-grams over the sequence of *anchor* tokens
      (capitalised words and numbers that are not stopwords).  Synonym
      spinners and paraphrasers leave names and numbers alone and keep their
      order, so this view survives where word n-grams die.
    """

    word_ngram: int = 2
    anchor_ngram: int = 2
    num_perm: int = 256
    seed: int = 1
    #: LSH Jaccard threshold per view (datasketch's optimiser picks bands/rows).
    words_threshold: float = 0.1
    anchors_threshold: float = 0.2
    #: How many neighbours each member of an LSH bucket is paired with; bounds
    #: the candidate pairs of a huge cluster to O(n) instead of O(n^2).
    bucket_window: int = 4
    #: A verified edge needs at least this share of the smaller document
    #: explained by the other (combined containment, see ``verify``).
    min_containment: float = 0.36
    #: ...and at least this combined Jaccard.
    min_jaccard: float = 0.05
    #: Documents with fewer tokens cannot be shingled reliably.
    min_tokens: int = 20
    #: Documents larger than this many characters are set aside (a crawl
    #: sometimes yields whole book dumps or binary junk decoded as text).
    max_chars: int = 1_000_000
    #: Documents processed per batch in the signature stage (memory bound).
    batch_size: int = 20_000
    #: Texts larger than this many MiB in all wait on disk while the middle
    #: stages run (``provenance.spill``): the same results in less memory.
    spill_over_mib: int = 1024
    #: Input column names for tabular inputs (.jsonl, .csv, .parquet).
    id_column: str = "id"
    text_column: str = "text"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def validate(self) -> "PipelineConfig":
        """Raise a one-line :class:`ProvenanceError` for impossible options."""
        checks: list[tuple[bool, str]] = [
            (self.word_ngram >= 1, f"--word-ngram must be >= 1, got {self.word_ngram}"),
            (self.anchor_ngram >= 1, f"--anchor-ngram must be >= 1, got {self.anchor_ngram}"),
            (16 <= self.num_perm <= 1024, f"--num-perm must be between 16 and 1024, got {self.num_perm}"),
            (0 <= self.seed < 2**32, f"--seed must be between 0 and 2**32-1, got {self.seed}"),
            (0.0 < self.words_threshold < 1.0, f"--words-threshold must be in (0, 1), got {self.words_threshold}"),
            (0.0 < self.anchors_threshold < 1.0, f"--anchors-threshold must be in (0, 1), got {self.anchors_threshold}"),
            (0.0 <= self.min_containment <= 1.0, f"--min-containment must be in [0, 1], got {self.min_containment}"),
            (0.0 <= self.min_jaccard <= 1.0, f"--min-jaccard must be in [0, 1], got {self.min_jaccard}"),
            (self.bucket_window >= 1, f"--bucket-window must be >= 1, got {self.bucket_window}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.spill_over_mib >= 0, f"--spill-over-mib must be >= 0, got {self.spill_over_mib}"),
            (self.max_chars >= 1, f"--max-chars must be >= 1, got {self.max_chars}"),
            (
                self.min_tokens >= max(self.word_ngram, 1),
                f"--min-tokens ({self.min_tokens}) must be at least --word-ngram ({self.word_ngram}): "
                "shorter documents have no shingle",
            ),
            (bool(self.id_column) and bool(self.text_column), "--id-column and --text-column must not be empty"),
            (self.id_column != self.text_column, "--id-column and --text-column must name different columns"),
        ]
        for ok, message in checks:
            if not ok:
                raise ProvenanceError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-able values, for ``run.json``."""
        out = dataclasses.asdict(self)
        out.pop("extra", None)
        out["signature_scheme"] = SIGNATURE_SCHEME
        return out

    def replace(self, **changes: Any) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)
