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
number of tree edges, and each alignment is capped at ``max_align_tokens``
tokens per side to bound time and memory on giant documents.
"""

from __future__ import annotations

import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.config import ChangesOptions
from provenance.prepare.words import Words, doc_words

#: Columns :func:`edge_changes` adds, with their types.
SCHEMA = pl.Schema({
    "parent_tokens": pl.Int32, "child_tokens": pl.Int32, "kept": pl.Int32, "inserted": pl.Int32,
    "deleted": pl.Int32, "substituted": pl.Int32, "is_truncation": pl.Boolean, "spin_rate": pl.Float64,
    "boilerplate_lines_added": pl.Int32, "sentences_reordered": pl.Int32,
    "substitution_examples": pl.List(pl.String), "change_kind": pl.String,
})


def align_stats(parent: Words, child: Words, options: ChangesOptions) -> dict[str, object]:
    """Counts and flags of one edge (see module docstring)."""
    p, c = parent.tokens, child.tokens
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
            if src == dst and len(examples) < options.max_examples:
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
    deleted_text = " | ".join(" ".join(p[s:e]) for s, e in deleted_pos if e - s >= options.moved_run)
    moved = sum(
        1 for s, e in inserted_pos if e - s >= options.moved_run and " ".join(c[s : s + options.moved_run]) in deleted_text
    )

    carried = kept + substituted
    n_p, n_c = len(p), len(c)
    covers_prefix = last_parent > 0 and carried / last_parent >= options.truncation_prefix_share
    is_truncation = bool(n_p and covers_prefix and last_parent / n_p <= options.truncation_end_share)
    spin_rate = substituted / carried if carried else 0.0
    parent_share = carried / n_p if n_p else 0.0
    flags = []
    if is_truncation:
        flags.append("truncation")
    elif parent_share < options.excerpt_parent_share and n_c < n_p:
        flags.append("excerpt")
    if n_c and kept / n_c < options.paraphrase_kept_share and spin_rate < options.paraphrase_max_spin:
        flags.append("paraphrase")
    elif spin_rate >= options.spin_min_rate:
        flags.append("spin")
    if n_c and (inserted / n_c >= options.insertion_min_share or boilerplate_lines > 0):
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


def edge_changes(edges: pl.DataFrame, texts: pl.Series, options: ChangesOptions) -> pl.DataFrame:
    """Change statistics for every edge (``parent``, ``child`` row indices into ``texts``)."""
    rows = sorted(set(edges["parent"].to_list()) | set(edges["child"].to_list()))
    words = dict(zip(rows, doc_words(texts.gather(rows), options.max_align_tokens) if rows else []))
    stats = [align_stats(words[p], words[c], options) for p, c in zip(edges["parent"].to_list(), edges["child"].to_list())]
    return pl.DataFrame(stats, schema=SCHEMA) if stats else pl.DataFrame(schema=SCHEMA)
