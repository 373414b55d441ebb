"""Per-edge change statistics from a token alignment of parent and child.

Each tree edge is explained by aligning the two token sequences with
``rapidfuzz``'s Levenshtein opcodes (bit-parallel, C++).  Equal runs are kept
text.  A replace run is a **swap** only when it is what a synonym spinner does:
as many words for as many (at most ``max_swap_tokens``; never a number:
spinners leave figures alone), inside an **aligned sentence** of the child (one whose words are mostly kept or
swapped in place: ``aligned_sentence_share`` of them, ``aligned_sentence_kept``
kept verbatim: "leader -> pioneer" in a spun sentence, never "its -> spotify"
where two different sentences happen to line up).  Every other replace run is **rewritten** text: the parent's
words deleted and the child's inserted, and the child's counted apart in
``rewritten``.  So ``kept + substituted + inserted = child_tokens``,
``kept + substituted + deleted = parent_tokens``, and ``spin_rate`` says how
much of what the child carries over was spun word for word, not how much was
rewritten.  From those runs:

* ``is_truncation``: the child follows the parent from the start and stops
  early (aligned content ends before ``truncation_end_share`` of the parent);
* ``spin_rate``: substituted words / words the child carries over (kept + substituted);
* ``boilerplate_lines_added``: child lines made entirely of inserted tokens;
* ``sentences_reordered``: inserted runs of ``moved_run``+ tokens found verbatim
  among the parent's deletions, i.e. text that moved;
* ``change_kind``: ``copy``, ``truncation``, ``excerpt``, ``spin``,
  ``paraphrase``, ``insertion``, or ``mixed`` when several apply.

:func:`segments` is the classified alignment itself; ``provenance diff`` shows
it, so a diff's counts are its edge's.  The cost grows with the number of tree
edges; each alignment is capped at ``max_align_tokens`` tokens per side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from rapidfuzz.distance import Levenshtein

from provenance.config import ChangesOptions
from provenance.prepare.words import Words, doc_words

#: Columns :func:`edge_changes` adds, with their types.
SCHEMA = pl.Schema({
    "parent_tokens": pl.Int32, "child_tokens": pl.Int32, "kept": pl.Int32, "inserted": pl.Int32,
    "deleted": pl.Int32, "substituted": pl.Int32, "is_truncation": pl.Boolean, "spin_rate": pl.Float64,
    "boilerplate_lines_added": pl.Int32, "sentences_reordered": pl.Int32,
    "substitution_examples": pl.List(pl.String), "change_kind": pl.String, "rewritten": pl.Int32,
})
EQUAL, SUBSTITUTE, DELETE, INSERT = "equal", "substitute", "delete", "insert"


@dataclass(frozen=True)
class Segment:
    """A run of the classified alignment: ``op`` over parent tokens ``ps:pe`` and child tokens ``cs:ce``.

    ``rewritten`` marks the deletion and insertion halves of a replace run that is not a swap.
    """

    op: str
    ps: int
    pe: int
    cs: int
    ce: int
    rewritten: bool = False


def _same_kind(a: list[str], b: list[str]) -> bool:
    """Words for words: a spinner swaps synonyms and leaves figures alone, so a changed figure is an edit."""
    return not any(x.isdigit() or y.isdigit() for x, y in zip(a, b))


def _aligned_sentences(child: Words, carried: np.ndarray, kept: np.ndarray, options: ChangesOptions) -> np.ndarray:
    """Per child token: whether its sentence is aligned (mostly kept or swapped in place, enough of it verbatim)."""
    n = len(child.tokens)
    if n == 0:
        return np.zeros(0, dtype=bool)
    sentence = np.cumsum(child.start[:n]) - 1 if len(child.start) >= n else np.zeros(n, dtype=np.int64)
    sentence = np.maximum(sentence, 0)
    size = np.bincount(sentence)
    ok = (np.bincount(sentence, weights=carried) >= options.aligned_sentence_share * size) & (
        np.bincount(sentence, weights=kept) >= options.aligned_sentence_kept * size
    )
    return ok[sentence]


def segments(parent: Words, child: Words, options: ChangesOptions) -> list[Segment]:
    """The classified alignment of ``parent`` and ``child`` (see the module docstring), in child order."""
    p, c = parent.tokens, child.tokens
    ops = Levenshtein.opcodes(p, c).as_list()  # (tag, ps, pe, cs, ce) tuples: no per-op object access
    carried = np.zeros(len(c))
    kept = np.zeros(len(c))
    for tag, ps, pe, cs, ce in ops:
        if tag == "equal":
            carried[cs:ce] = kept[cs:ce] = 1
        elif tag == "replace" and pe - ps == ce - cs <= options.max_swap_tokens:
            carried[cs:ce] = 1
    aligned = _aligned_sentences(child, carried, kept, options)
    out: list[Segment] = []
    for tag, ps, pe, cs, ce in ops:
        if tag == "equal":
            out.append(Segment(EQUAL, ps, pe, cs, ce))
        elif tag == "delete":
            out.append(Segment(DELETE, ps, pe, cs, cs))
        elif tag == "insert":
            out.append(Segment(INSERT, ps, ps, cs, ce))
        elif pe - ps == ce - cs <= options.max_swap_tokens and aligned[cs:ce].all() and _same_kind(p[ps:pe], c[cs:ce]):
            out.append(Segment(SUBSTITUTE, ps, pe, cs, ce))
        else:
            out.append(Segment(DELETE, ps, pe, cs, cs, rewritten=True))
            out.append(Segment(INSERT, pe, pe, cs, ce, rewritten=True))
    return out


def _lines_all_inserted(child: Words, inserted: np.ndarray) -> int:
    """Child lines made only of inserted tokens: added boilerplate, pasted headlines."""
    if len(child.lines) == 0:
        return 0
    lines = np.asarray(child.lines)
    # Tokens come in text order, so each line is one run of equal ordinals: no sort needed.
    starts = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]])
    per_line = np.add.reduceat(np.asarray(inserted[: len(lines)], dtype=np.int64), starts)
    return int((per_line == np.diff(np.r_[starts, len(lines)])).sum())


def _moved(p: list[str], c: list[str], segs: list[Segment], run: int) -> int:
    """Inserted runs that stand verbatim among the parent's deletions: text that moved."""
    deleted_text = " | ".join(" ".join(p[s.ps:s.pe]) for s in segs if s.op == DELETE and s.pe - s.ps >= run)
    return sum(1 for s in segs if s.op == INSERT and s.ce - s.cs >= run and " ".join(c[s.cs : s.cs + run]) in deleted_text)


def _kind(n_p: int, n_c: int, kept: int, inserted: int, spin_rate: float, carried: int, is_truncation: bool,
          boilerplate_lines: int, options: ChangesOptions) -> str:
    flags = []
    if is_truncation:
        flags.append("truncation")
    elif n_p and carried / n_p < options.excerpt_parent_share and n_c < n_p:
        flags.append("excerpt")
    if n_c and kept / n_c < options.paraphrase_kept_share and spin_rate < options.paraphrase_max_spin:
        flags.append("paraphrase")
    elif spin_rate >= options.spin_min_rate:
        flags.append("spin")
    if n_c and (inserted / n_c >= options.insertion_min_share or boilerplate_lines > 0):
        flags.append("insertion")
    return "copy" if not flags else flags[0] if len(flags) == 1 else "mixed"


def align_stats(parent: Words, child: Words, options: ChangesOptions) -> dict[str, object]:
    """Counts and flags of one edge (see the module docstring)."""
    p, c = parent.tokens, child.tokens
    segs = segments(parent, child, options)
    count = {op: 0 for op in (EQUAL, SUBSTITUTE, DELETE, INSERT)}
    inserted_mask = np.zeros(len(c))
    rewritten = 0
    last_parent = 0
    examples: list[str] = []
    for s in segs:
        count[s.op] += max(s.pe - s.ps, s.ce - s.cs)
        if s.op == INSERT:
            inserted_mask[s.cs:s.ce] = 1
            rewritten += (s.ce - s.cs) if s.rewritten else 0
        elif s.op in (EQUAL, SUBSTITUTE):
            last_parent = s.pe
        if s.op == SUBSTITUTE and len(examples) < options.max_examples:
            example = f"{' '.join(p[s.ps:s.pe])} -> {' '.join(c[s.cs:s.ce])}"
            if example not in examples:
                examples.append(example)
    kept, substituted = count[EQUAL], count[SUBSTITUTE]
    carried = kept + substituted
    n_p, n_c = len(p), len(c)
    covers_prefix = last_parent > 0 and carried / last_parent >= options.truncation_prefix_share
    is_truncation = bool(n_p and covers_prefix and last_parent / n_p <= options.truncation_end_share)
    spin_rate = substituted / carried if carried else 0.0
    boilerplate_lines = _lines_all_inserted(child, inserted_mask)
    return {
        "parent_tokens": n_p,
        "child_tokens": n_c,
        "kept": kept,
        "inserted": count[INSERT],
        "deleted": count[DELETE],
        "substituted": substituted,
        "is_truncation": is_truncation,
        "spin_rate": round(spin_rate, 6),
        "boilerplate_lines_added": boilerplate_lines,
        "sentences_reordered": _moved(p, c, segs, options.moved_run),
        "substitution_examples": examples,
        "change_kind": _kind(n_p, n_c, kept, count[INSERT], spin_rate, carried, is_truncation, boilerplate_lines, options),
        "rewritten": rewritten,
    }


def edge_changes(edges: pl.DataFrame, texts: pl.Series, options: ChangesOptions) -> pl.DataFrame:
    """Change statistics for every edge (``parent``, ``child`` row indices into ``texts``)."""
    rows = sorted(set(edges["parent"].to_list()) | set(edges["child"].to_list()))
    words = dict(zip(rows, doc_words(texts.gather(rows), options.max_align_tokens) if rows else []))
    stats = [align_stats(words[p], words[c], options) for p, c in zip(edges["parent"].to_list(), edges["child"].to_list())]
    return pl.DataFrame(stats, schema=SCHEMA) if stats else pl.DataFrame(schema=SCHEMA)
