"""Look-alike letters folded to the Latin letter they imitate, so a disguised copy is still a copy.

Copy disguisers write "Russiа" with a Cyrillic "а" (U+0430) or "Κremlin" with a
Greek "Κ": the text reads the same, but every token holding such a letter
hashes apart and the copy is not found.  The Unicode consortium lists which
characters are confusable with which (``confusables.txt``; the
``confusable_homoglyphs`` package ships it).  Every non-ASCII *letter* listed as
confusable with a single ASCII letter is folded to that letter before tokens
are hashed or compared: both tokenisers read the folded text (the compiled one
through its lower-case table, the Python one through :func:`fold_expr`), the
documents' own text is never changed.

Folding genuine Cyrillic or Greek words is harmless for matching: it is the
same map for every document, so two Russian texts that share words still do.
Only letters fold (a Cyrillic "З" is not folded to the digit "3"); of several
ASCII look-alikes the one of the same case is chosen (Cyrillic "І" is the
capital "I", not "l": the prototype confusables gives both).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import polars as pl
from confusable_homoglyphs import confusables


#: Greek sigma in all its forms stays a sigma: a word-final sigma lower-cases to "ς", which imitates nothing,
#: so folding "σ" (listed as like "o") would read one word two ways depending on where its sigma stands.
SIGMAS = frozenset("\u03a3\u03c3\u03c2")


@lru_cache(maxsize=1)
def letter_folds() -> dict[str, str]:
    """Small non-ASCII letter -> the lower-case ASCII letter it (or its capital) imitates.

    Keyed by small letters only, and read after lower-casing, so a word folds
    the same whatever its case ("МОСКВА" and "Москва" both read "mockba").
    """
    imitates: dict[str, str] = {}
    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii() or not unicodedata.category(char).startswith("L") or char in SIGMAS:
            continue
        latin = sorted({h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalpha()})
        if latin:
            same_case = [c for c in latin if c.isupper() == char.isupper()]
            target = (same_case or latin)[0].lower()
            # Confusables' prototype of a capital I is "l"; a capital imitating "l" imitates "I".
            imitates[char] = "i" if target == "l" and char.isupper() else target
    out: dict[str, str] = {}
    for char, target in sorted(imitates.items()):
        small = char.lower()
        if len(small) == 1 and not small.isascii() and small not in SIGMAS:
            # The small letter's own look-alike wins over its capital's.
            out[small] = imitates.get(small, out.get(small, target))
    return out


def fold_expr(text: pl.Expr) -> pl.Expr:
    """``text`` lower-cased, every look-alike letter replaced by its ASCII letter: how tokens read it."""
    folds = letter_folds()
    return text.str.to_lowercase().str.replace_many(list(folds), list(folds.values()))


def fold_char(char: str) -> str:
    """One character as :func:`fold_expr` reads it (the compiled tokeniser's lower-case table)."""
    low = char.lower()
    return letter_folds().get(low, low) if len(low) == 1 else char
