"""The one configuration of a run: every option, and every constant that can change a result.

A :class:`Config` is frozen and nested by stage (``ingest``, ``prepare``,
``link``, ``trace``, ``changes``, ``run``, ``report``).  It is the only source
of the CLI's options (``provenance run --num-perm``, ``--set NAME=VALUE``), of
the Prefect flow's parameters and their schema, of ``provenance serve``, of
``run.json``, of the store's guard and of the cache keys.  Each field carries
its default and a one-line *why*: the reason the default holds beyond the
corpora it was measured on.

Field names are unique across sections, so options are addressed by their
flat name everywhere (``num_perm``, ``min_containment``).  Fields marked
``results=False`` (batch sizes, memory limits, report caps) never change a
table; :meth:`Config.fingerprint` covers every other field, so two runs with
equal fingerprints and equal inputs give identical tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from provenance.errors import ProvenanceError


def option(default: Any, why: str, *, cli: bool = False, results: bool = True, **constraints: Any) -> Any:
    """A config field: its default, why that default holds, whether the CLI shows it, whether it changes results."""
    return Field(default, description=why, json_schema_extra={"cli": cli, "results": results}, **constraints)


class Section(BaseModel):
    """Options of one stage: frozen, unknown names refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class IngestOptions(Section):
    id_column: str = option("id", "Id column of tabular inputs.", cli=True, min_length=1)
    text_column: str = option("text", "Text column of tabular inputs.", cli=True, min_length=1)
    max_chars: int = option(
        1_000_000, "Longer documents are rejected (too_large): a crawl yields book dumps and binary junk, never an article this long."
        " A text file over 4 bytes a character of it is rejected unread (UTF-8 takes at most 4).",
        cli=True, ge=1,
    )
    title_column: str = option(
        "title", "Column of tabular inputs holding titles; without one a title is the text's first line that is not furniture.",
        cli=True, min_length=1,
    )
    date_column: str = option(
        "published_at", "Column holding each document's date (e.g. scraped_at), read as published_at.", cli=True, min_length=1,
    )
    publisher_column: str = option("publisher", "Column naming each document's publisher, read as publisher.", cli=True, min_length=1)
    url_column: str = option("url", "Column holding each document's address, read as url (a link in the report).", cli=True, min_length=1)


class PrepareOptions(Section):
    min_tokens: int = option(20, "Shorter documents are rejected (too_short): a few words hold no shingle to compare.", cli=True, ge=1)
    word_ngram: int = option(2, "Word n-gram size of the words view: bigrams survive spin that breaks longer n-grams.", cli=True, ge=1)
    anchor_ngram: int = option(2, "n-gram size over anchors (names, numbers), which spinners leave in order.", cli=True, ge=1)
    num_perm: int = option(
        256, "MinHash permutations per view: a short excerpt with Jaccard 0.1 is found 72% of the time per view (47% with 128).",
        cli=True, ge=16, le=1024,
    )
    seed: int = option(1, "Seed of token hashing and of the MinHash permutations.", cli=True, ge=0, le=2**32 - 1)
    boilerplate_max_tokens: int = option(20, "Only lines this short can be boilerplate: site furniture is short, paragraphs are not.", ge=1)
    boilerplate_min_docs: int = option(3, "A short line in this many documents recurs across the corpus: furniture, not the story.", ge=2)
    frequent_sample_docs: int = option(5_000, "Documents sampled (bottom-k by id hash) to count shingle frequencies: a fixed cost at any size.", ge=1)
    frequent_min_share: float = option(
        0.005, "A word shingle in this share of documents is a stock phrase, left out of the words signature.", gt=0, le=1,
    )
    frequent_min_docs: int = option(20, "...and in at least this many sampled documents, so a small corpus leaves nothing out.", ge=1)
    frequent_min_kept_share: float = option(
        0.5, "A document keeping less than this share of its set without frequent shingles is signed on all of it.", ge=0, le=1,
    )


class LinkOptions(Section):
    words_threshold: float = option(0.1, "LSH Jaccard threshold of the words view (low: truncated copies have low Jaccard).", cli=True, gt=0, lt=1)
    anchors_threshold: float = option(0.2, "LSH Jaccard threshold of the anchors view.", cli=True, gt=0, lt=1)
    bucket_window: int = option(
        4, "Neighbours paired per LSH bucket member: a story copied 5,000 times yields O(n) pairs, not O(n^2).", cli=True, ge=1,
    )
    min_containment: float = option(0.36, "Verified pair: share of the smaller document found in the other, best view.", cli=True, ge=0, le=1)
    min_jaccard: float = option(0.05, "Verified pair: Jaccard of the best view.", cli=True, ge=0, le=1)
    min_anchor_set: int = option(8, "Anchor sets smaller than this are too thin to vouch for a pair on their own.", ge=0)
    prefilter_sigmas: float = option(
        4.0, "Candidates this many MinHash standard errors below the containment floor skip exact checks (3e-5 of true pairs).", ge=0,
    )
    cluster_founders: int = option(3, "Founding members two multi-member clusters are checked against before they merge.", ge=1)


class EvidenceOptions(Section):
    """When two texts are versions of one text: aligned passages, not shared names, quotes or a sentence or two.

    Every value below is a property of news prose or of copying, not of a corpus: see each reason, and the
    README's list of constants with the corpora each was measured on.
    """

    unit_min_tokens: int = option(4, "A unit with fewer tokens carries no information when matched: three words recur between any two texts.", ge=1)
    heading_max_tokens: int = option(20, "An unpunctuated line up to this long is a heading, menu or byline; longer, a paragraph that lost its stop.", ge=1)
    float_min_docs: int = option(3, "A line floats only once in this many documents: two sharing a line is what a copy looks like.", ge=2)
    anchor_min_share: float = option(0.5, "A recurring line is part of one text when most of its occurrences keep the same neighbour.", gt=0, le=1)
    min_evidence_share: float = option(0.5, "Versions of one text: aligned passages cover a majority of the smaller text's content.", gt=0, le=1)
    stem_chars: int = option(5, "Content words are compared by their first letters: 5 conflates English inflections about as a stemmer does.", ge=1)
    spun_min_agreement: float = option(
        0.5, "Spun sentence: half the longer one's words agree in order (chance between unrelated sentences: 0.11 median, 0.27 at p99).", gt=0, le=1,
    )
    spun_min_tokens: int = option(5, "...and at least this many words in order: short sentences agree on 'the ... of the ... in' by chance.", ge=1)
    rewrite_min_dice: float = option(
        0.4, "Rewritten sentence: content-word Dice at least this, above unrelated same-event sentences (0.15 median, 0.36 at p99).", gt=0, le=1,
    )
    rewrite_min_stems: int = option(3, "...sharing at least this many content words: two shared names are what same-event articles share.", ge=1)
    max_gap: int = option(2, "Matches at most this many sentences apart in both texts chain into one passage (a dropped sentence, swapped neighbours).", ge=0)
    min_passage_units: int = option(2, "A passage is a run, not a shared sentence: at least this many evidence units.", ge=1)
    min_passage_tokens: int = option(20, "...and this many evidence words: about one full news sentence, so two stock-length lines do not qualify.", ge=1)
    few_units: int = option(3, "Evidence of fewer units than this (two sentences) is what unrelated texts share by chance...", ge=1)
    min_share_few: float = option(0.8, "...so it proves copying only when it covers this share of the smaller text: a truncation.", gt=0, le=1)
    chance_unit_match: float = option(
        0.01, "copy_confidence null model: a sentence matches a given unrelated one by chance this often (same-event p99 is below both floors).",
        gt=0, lt=1,
    )


class TraceOptions(Section):
    completeness_anchor_weight: float = option(
        0.5, "Weight of the anchors view in completeness (the words view has the rest): story told and wording agreed, equally.", ge=0, le=1,
    )
    date_tie: float = option(
        1.0, "Publication date picks the origin only among versions whose derivation costs differ by less than this many edit acts "
        "(less than one act: the texts give no direction).", ge=0,
    )
    frequency_sample: int = option(
        20_000, "Singletons (bottom-k by id hash) counted for word and line frequencies: enough to tell a common word from a rare synonym.", ge=0,
    )
    lineage_ngram: int = option(3, "Word n-gram size of the edge similarity shingles (every token, boilerplate kept).", ge=1)
    move_per_break: float = option(
        0.5, "Acts per breakpoint of reordered sentences: moving a block cuts its old and its new place, one act in all.", ge=0,
    )
    max_lemma: int = option(
        3, "A replaced run is a word substitution only with at most this many tokens a side (a thesaurus lemma has 1-3 words).", ge=1,
    )
    chance_match: int = option(
        2, "Equal runs this short between two changed runs are chance matches of function words: the changes are one edit.", ge=0,
    )
    unit_found: float = option(
        0.5, "A sentence is found in another version when this share of its tokens is there in order (a majority).", gt=0, le=1,
    )
    short_line: int = option(
        20, "Lines of at most this many words may be pasted or boilerplate (foreign) when other clusters hold them.", ge=1,
    )
    foreign_ngram: int = option(
        4, "Word n-gram length that finds a short line's text in other clusters (a chance shared 4-gram covers few words).", ge=2,
    )
    candidate_parents: int = option(
        10, "Each version's most similar versions the model weighs as its parent or child (plus a spanning forest): edits lower "
        "similarity, so a parent is among the nearest; bounds the cost to linear in a cluster's size (0: every verified pair).", ge=0,
    )
    temperature: float = option(
        1.0, "Softmax temperature of parent_confidence in acts: each act is an event of odds e^-1 (not fitted on eval corpora).", gt=0,
    )


class ChangesOptions(Section):
    max_align_tokens: int = option(20_000, "Tokens per side a token alignment reads: bounds time and memory on giant documents.", ge=1)
    max_examples: int = option(5, "Substitution examples kept per edge.", ge=0)
    moved_run: int = option(6, "Inserted runs of this many tokens found verbatim among the parent's deletions are moved text.", ge=1)
    truncation_prefix_share: float = option(0.6, "Truncation: the child carries at least this share of the parent's prefix it covers.", ge=0, le=1)
    truncation_end_share: float = option(0.9, "Truncation: aligned content ends before this share of the parent.", ge=0, le=1)
    excerpt_parent_share: float = option(0.8, "Excerpt: a shorter child carrying less than this share of the parent.", ge=0, le=1)
    paraphrase_kept_share: float = option(0.5, "Paraphrase: less than this share of the child kept verbatim...", ge=0, le=1)
    paraphrase_max_spin: float = option(0.25, "...with a spin rate under this (word swaps would make it spin).", ge=0, le=1)
    spin_min_rate: float = option(0.08, "Spin: at least this share of carried words substituted (also what counts an edge as spun).", ge=0, le=1)
    insertion_min_share: float = option(0.05, "Insertion: at least this share of the child inserted (or an added line).", ge=0, le=1)
    max_swap_tokens: int = option(
        3, "A word swap replaces at most this many words by as many: a spinner's synonym, or a short phrase for one.", ge=1,
    )
    aligned_sentence_share: float = option(
        0.8, "A child sentence is aligned when this share of its words are kept or swapped in place: a spun sentence keeps its shape.",
        gt=0, le=1,
    )
    aligned_sentence_kept: float = option(
        0.25, "...and at least this share kept verbatim: unrelated text lines up word for word only by chance.", ge=0, le=1,
    )


#: Link and trace partitions on a Dask runner when ``partitions`` is 0: a few per worker of a small cluster.
DASK_PARTITIONS = 8


class RunOptions(Section):
    batch_size: int = option(20_000, "Documents per batch of the prepare stage and members per part of trace (bounds memory).", cli=True, results=False, ge=1)
    spill_over_mib: int = option(
        1024, "Texts over this many MiB in all wait on disk while the middle stages run, and link's sentence units with them,"
        " read back in groups of about this size (same results, less memory).",
        cli=True, results=False, ge=0,
    )
    words_batch: int = option(
        5_000, "Documents per batch of trace's word-object steps (~60 KiB each, so a batch stays near 300 MiB).", results=False, ge=1,
    )
    partitions: int = option(
        0, "Link (band slices) and trace (sets of whole clusters) as about this many tasks each on the run's task runner, meeting"
        " as Parquet files (same tables); 0: 8 on a Dask runner, else 1 (in process).",
        cli=True, results=False, ge=0,
    )

    def partitions_on(self, runner: str) -> int:
        """Partitions of link and trace on ``runner`` (``process``, ``threads``, ``dask``): :attr:`partitions`, or its default."""
        if self.partitions:
            return self.partitions
        return DASK_PARTITIONS if runner == "dask" else 1


class ReportOptions(Section):
    diff_edges: int = option(1_000, "Edges whose aligned texts report.html embeds, at most.", results=False, ge=0)
    diff_edges_per_cluster: int = option(25, "...at most this many per cluster (those nearest the origin).", results=False, ge=0)
    diff_chars: int = option(20_000_000, "...and at most this many characters of aligned text in all.", results=False, ge=0)
    title_chars: int = option(160, "Characters of a title shown in the report.", results=False, ge=1)
    text_chars: int = option(12_000_000, "Characters of document text report.html embeds for search and reading, at most (largest clusters first).", results=False, ge=0)
    singleton_limit: int = option(50_000, "Documents without copies report.html lists, at most (by doc_id; the header counts them all).", results=False, ge=0)


SECTIONS: dict[str, type[Section]] = {
    "ingest": IngestOptions,
    "prepare": PrepareOptions,
    "link": LinkOptions,
    "evidence": EvidenceOptions,
    "trace": TraceOptions,
    "changes": ChangesOptions,
    "run": RunOptions,
    "report": ReportOptions,
}


class Config(BaseModel):
    """Every option of a run, by stage.  Build one with :meth:`from_options` from flat names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ingest: IngestOptions = IngestOptions()
    prepare: PrepareOptions = PrepareOptions()
    link: LinkOptions = LinkOptions()
    evidence: EvidenceOptions = EvidenceOptions()
    trace: TraceOptions = TraceOptions()
    changes: ChangesOptions = ChangesOptions()
    run: RunOptions = RunOptions()
    report: ReportOptions = ReportOptions()

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.prepare.min_tokens < self.prepare.word_ngram:
            raise ValueError(
                f"min_tokens ({self.prepare.min_tokens}) must be at least word_ngram ({self.prepare.word_ngram}): "
                "shorter documents have no shingle"
            )
        if self.ingest.id_column == self.ingest.text_column:
            raise ValueError("id_column and text_column must name different columns")
        return self

    # ------------------------------------------------------------------ flat names

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, base: "Config | None" = None) -> "Config":
        """A validated config from flat option names (``{"num_perm": 128}``); one-line errors for mistakes."""
        nested = (base or cls()).model_dump()
        index = field_index()
        unknown = sorted(set(options or {}) - set(index))
        if unknown:
            raise ProvenanceError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(index))}")
        for name, value in (options or {}).items():
            if isinstance(value, bool):  # pydantic would read True as 1 for a number: no option is a flag
                raise ProvenanceError(f"option {name}: input should be a {_kind(name)}, got {value!r}")
            nested[index[name]][name] = value
        try:
            return cls.model_validate(nested)
        except ValidationError as exc:
            raise ProvenanceError(_one_line(exc)) from None

    def replace(self, **options: Any) -> "Config":
        """This config with some flat options changed (validated)."""
        return Config.from_options(options, base=self)

    def options(self, *, results_only: bool = False) -> dict[str, Any]:
        """Every field by its flat name (``results_only``: only those that can change a table)."""
        out: dict[str, Any] = {}
        for section, name, info in iter_fields():
            if results_only and not affects_results(info):
                continue
            value = getattr(getattr(self, section), name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def fingerprint(self) -> str:
        """SHA-256 of every result-affecting field: equal fingerprints and inputs give identical tables."""
        text = json.dumps(self.options(results_only=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The nested options as plain JSON values, for ``run.json``."""
        return self.model_dump(mode="json")


def parse_assignments(pairs: list[str] | None) -> dict[str, Any]:
    """``["num_perm=256", "id_column=doc"]`` -> ``{"num_perm": 256, "id_column": "doc"}`` (``--option NAME=VALUE``).

    Values are read as JSON when they parse (numbers, booleans, lists), else kept as strings;
    dashes in names are underscores.  Names and values are checked by :meth:`Config.from_options`.
    """
    options: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ProvenanceError(f"--option takes NAME=VALUE (e.g. num_perm=256), got {pair!r}")
        try:
            options[name] = json.loads(raw)
        except ValueError:
            options[name] = raw
    return options


def options_markdown() -> str:
    """Every field as a markdown table (section, option, default, changes results, why): the README's list."""
    rows = ["| section | option | default | changes tables | why |", "|---|---|---|---|---|"]
    for section, name, info in iter_fields():
        flag = f"`--{name.replace('_', '-')}`" if (info.json_schema_extra or {}).get("cli") else f"`-o {name}=...`"
        default = list(info.default) if isinstance(info.default, tuple) else info.default
        rows.append(f"| {section} | {flag} | `{json.dumps(default)}` | {'yes' if affects_results(info) else 'no'} | {info.description} |")
    return "\n".join(rows) + "\n"


def iter_fields() -> Iterator[tuple[str, str, Any]]:
    """``(section, name, FieldInfo)`` of every field, in declaration order."""
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            yield section, name, info


def affects_results(info: Any) -> bool:
    return bool((info.json_schema_extra or {}).get("results", True))


def field_index() -> dict[str, str]:
    """Flat option name -> its section."""
    return {name: section for section, name, _ in iter_fields()}


def _kind(name: str) -> str:
    """What option ``name`` takes, in words (``valid integer``...)."""
    annotation = SECTIONS[field_index()[name]].model_fields[name].annotation
    return {int: "valid integer", float: "valid number", str: "valid string"}.get(annotation, f"valid {annotation}")


def _one_line(exc: ValidationError) -> str:
    """The first problem of a pydantic error as one line that names the option and what to pass."""
    error = exc.errors()[0]
    # The option is the last name in the location (a tuple option's location ends with the item's index).
    name = next((str(part) for part in reversed(error.get("loc") or ()) if isinstance(part, str)), "")
    given = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if not name:
        return message
    return f"option {name}: {message[0].lower() + message[1:]}, got {given!r}"


_names = [name for _, name, _ in iter_fields()]
assert len(_names) == len(set(_names)), "config field names must be unique across sections"
del _names
