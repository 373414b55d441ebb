"""Per-edge change statistics from a token alignment of parent and child.

Each tree edge is explained by aligning the two token sequences with
``rapidfuzz``'s Levenshtein opcodes (bit-parallel, C++): equal runs are kept
text, equal-length replace runs are word substitutions (the signature of a
synonym spinner), the rest are insertions and deletions.  From those runs:

* ``is_truncation``: the child follows the parent from the start and stops
  early (aligned content ends before 90% of the parent);
* ``spin_rate``: substituted words / words the child carries over;
* ``boilerplate_lines_added``: child lines made entirely of inserted tokens;
* ``sentences_reordered``: inserted runs of 6+ tokens found verbatim in the
  parent, i.e. text that moved;
* ``change_kind``: ``copy``, ``truncation``, ``excerpt``, ``spin``,
  ``paraphrase``, ``insertion``, or ``mixed`` when several apply.

This is the only per-edge Python loop of the pipeline; its cost grows with the
number of tree edges, and each alignment is capped at :data:`MAX_ALIGN_TOKENS`
tokens per side to bound time and memory on giant documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.normalize import _TOKEN_PATTERN, normalize_expr

MAX_ALIGN_TOKENS = 20_000
MAX_EXAMPLES = 5
MOVED_RUN = 6


@dataclass(frozen=True)
class Tokens:
    """A document's lower-case tokens and the line each one is on."""

    words: list[str]
    lines: list[int]


def doc_tokens(texts: pl.Series) -> list[Tokens]:
    """Tokenise ``texts`` (one :class:`Tokens` per text), lines kept."""
    frame = pl.DataFrame({"text": texts}).select(
        normalize_expr(pl.col("text")).str.to_lowercase().str.split("\n").alias("lines")
    ).with_row_index("doc").explode("lines").with_columns(
        pl.int_range(pl.len()).over("doc").alias("line"),
        pl.col("lines").str.extract_all(_TOKEN_PATTERN).alias("tokens"),
    ).explode("tokens").drop_nulls("tokens")
    grouped = frame.group_by("doc", maintain_order=True).agg("tokens", "line")
    out = [Tokens([], []) for _ in range(len(texts))]
    for doc, words, lines in grouped.iter_rows():
        out[doc] = Tokens(words[:MAX_ALIGN_TOKENS], lines[:MAX_ALIGN_TOKENS])
    return out


def align_stats(parent: Tokens, child: Tokens) -> dict[str, object]:
    """Counts and flags of one edge (see module docstring)."""
    p, c = parent.words, child.words
    kept = inserted = deleted = substituted = 0
    examples: list[str] = []
    inserted_pos: list[tuple[int, int]] = []
    deleted_pos: list[tuple[int, int]] = []
    last_parent = 0
    for op in Levenshtein.opcodes(p, c):
        src = op.src_end - op.src_start
        dst = op.dest_end - op.dest_start
        if op.tag == "equal":
            kept += src
            last_parent = op.src_end
        elif op.tag == "replace":
            sub = min(src, dst)
            substituted += sub
            deleted += src - sub
            inserted += dst - sub
            last_parent = op.src_start + sub
            if src > sub:
                deleted_pos.append((op.src_start + sub, op.src_end))
            if dst > sub:
                inserted_pos.append((op.dest_start + sub, op.dest_end))
            if src == dst and len(examples) < MAX_EXAMPLES:
                example = f"{' '.join(p[op.src_start:op.src_end])} -> {' '.join(c[op.dest_start:op.dest_end])}"
                if src <= 3 and example not in examples:
                    examples.append(example)
        elif op.tag == "delete":
            deleted += src
            deleted_pos.append((op.src_start, op.src_end))
        else:
            inserted += dst
            inserted_pos.append((op.dest_start, op.dest_end))

    # Lines of the child made only of inserted tokens: added boilerplate / headlines.
    is_inserted = [False] * len(c)
    for start, end in inserted_pos:
        for i in range(start, end):
            is_inserted[i] = True
    line_all_inserted: dict[int, bool] = {}
    for i, line in enumerate(child.lines):
        line_all_inserted[line] = line_all_inserted.get(line, True) and is_inserted[i]
    boilerplate_lines = sum(1 for v in line_all_inserted.values() if v)

    # Moved text: an inserted run that stands verbatim in a deleted run of the parent.
    deleted_text = " | ".join(" ".join(p[s:e]) for s, e in deleted_pos if e - s >= MOVED_RUN)
    moved = sum(
        1 for s, e in inserted_pos if e - s >= MOVED_RUN and " ".join(c[s : s + MOVED_RUN]) in deleted_text
    )

    carried = kept + substituted
    n_p, n_c = len(p), len(c)
    covers_prefix = last_parent > 0 and carried / last_parent >= 0.6
    is_truncation = bool(n_p and covers_prefix and last_parent / n_p <= 0.9)
    spin_rate = substituted / carried if carried else 0.0
    parent_share = carried / n_p if n_p else 0.0
    flags = []
    if is_truncation:
        flags.append("truncation")
    elif parent_share < 0.8 and n_c < n_p:
        flags.append("excerpt")
    if n_c and kept / n_c < 0.5 and spin_rate < 0.25:
        flags.append("paraphrase")
    elif spin_rate >= 0.08:
        flags.append("spin")
    if n_c and (inserted / n_c >= 0.05 or boilerplate_lines > 0):
        flags.append("insertion")
    kind = "copy" if not flags else flags[0] if len(flags) == 1 else "mixed"
    return {
        "parent_tokens": n_p,
        "child_tokens": n_c,
        "kept": kept,
        "inserted": inserted,
        "deleted": deleted,
        "substituted": substituted,
        "is_truncation": is_truncation,
        "spin_rate": round(spin_rate, 6),
        "boilerplate_lines_added": boilerplate_lines,
        "sentences_reordered": moved,
        "substitution_examples": examples,
        "change_kind": kind,
    }


def edge_changes(edges: pl.DataFrame, texts: pl.Series) -> pl.DataFrame:
    """Change statistics for every edge (``parent``, ``child`` row indices into ``texts``)."""
    rows = sorted(set(edges["parent"].to_list()) | set(edges["child"].to_list()))
    tokens = dict(zip(rows, doc_tokens(texts.gather(rows)) if rows else []))
    stats = [align_stats(tokens[p], tokens[c]) for p, c in zip(edges["parent"].to_list(), edges["child"].to_list())]
    schema = {
        "parent_tokens": pl.Int32, "child_tokens": pl.Int32, "kept": pl.Int32, "inserted": pl.Int32,
        "deleted": pl.Int32, "substituted": pl.Int32, "is_truncation": pl.Boolean, "spin_rate": pl.Float64,
        "boilerplate_lines_added": pl.Int32, "sentences_reordered": pl.Int32,
        "substitution_examples": pl.List(pl.String), "change_kind": pl.String,
    }
    return pl.DataFrame(stats, schema=schema) if stats else pl.DataFrame(schema=schema)
