"""Titles of documents without a title column: the first line that tells the story, not the page around it.

Scraped pages open with furniture: a date line ("May 31, 2019, 9:52 PM UTC"),
a byline ("By Jessica Levinson, professor at Loyola Law School"), menu words
("Email", "Print"), site widgets ("Enter City and State or Zip Code").  The
title of such a document is the first of its lines (looking at the first
``TITLE_LINES`` lines with words) that is none of these:

* **boilerplate**: a line the prepare stage set aside because it recurs across
  documents (``Prepared.boilerplate``): what many pages share is the site, not
  the story;
* **too short**: a lone word ("Email", "Print", "Advertisement");
* **a date or time line**: most of its words are month or day names, digits,
  AM/PM, time zones or "updated"/"published" ("May 31, 2019", "Updated 9:52 PM ET");
* **a byline**: "By ..." / "Written by ..." / "Reporting by ..." with a few names;
* **page chrome**: a line whose words are mostly share and menu words ("Share on Facebook Share on
  Twitter", "Email Bio Follow", "Purchase: Order Reprint"), a photo credit ("Andrew Burton | Getty
  Images", "Frank Micelotta/Invision/AP"), an address or a "Source:" line, a transcript's speaker
  label ("TERRY GROSS, HOST:"), or script code (``window._taboola = ...;``).

When every line of the head is furniture, the first line with words is the
title, so a document always has one.  A title column in the input (``title_column``)
always wins.  The rules are about the form of a line, not about any corpus;
their vocabulary is English, like the sentence marks of the tokeniser.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from provenance.prepare.stage import Prepared

#: Lines with words looked at for a title (the head of a page holds its headline).
TITLE_LINES = 12
#: Characters of the text read for them (a head of 12 lines fits, and no text is split whole).
HEAD_CHARS = 4_000
#: Characters of the short head read first: a news page's headline is in it almost always (any value gives the same titles).
QUICK_CHARS = 600
#: Characters of a title.
TITLE_CHARS = 300
#: A title has at least this many words: a lone word is a menu item ("Email", "Print", "Advertisement").
MIN_TITLE_WORDS = 2
#: Documents titled per batch (bounds the exploded lines frame).
BATCH = 50_000

_DATE_WORDS = (
    r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?"
    r"|mon(day)?|tue(s(day)?)?|wed(nesday)?|thu(rs(day)?)?|fri(day)?|sat(urday)?|sun(day)?"
    r"|am|pm|a\.m|p\.m|utc|gmt|bst|cet|cest|et|est|edt|ct|cst|cdt|pt|pst|pdt|updated|published|posted|last|modified"
    r"|on|at|ago|min|mins|minutes|hour|hours|read|\d+(st|nd|rd|th)?"
)
#: Share of a line's words that make it a date or time line.
DATE_SHARE = 0.6
_BYLINE = r"^(?i:by|written by|reporting by|words by|from)\s+\S+(\s+\S+){0,7}$"
_CHROME_WORDS = (
    r"share|shares|sharing|facebook|twitter|linkedin|pinterest|google|whatsapp|reddit|email|e|mail|print|follow|bio|subscribe"
    r"|newsletter|newsletters|sign|up|in|log|login|menu|search|comment|comments|reprint|reprints|order|purchase|save|more|close"
    r"|advertisement|ad|skip|content|read|story|continue|continues|below|notifications|emails|breaking|news|alerts|on|to|this|article|image|images|photo|photos|video|gallery|slideshow|of"
)
#: Share of a line's words that make it page chrome.
CHROME_SHARE = 0.8
_CREDIT = r"(?i)getty images|\(ap photo|\bphoto:|/ap\)?$|reuters/|/invision|shutterstock|\(photo|\bimage \d+ ?of"
_ADDRESS = r"(?i)^\W*(source:|https?://|www\.)|\S+@\S+\.\w+"
_SPEAKER = r"^[A-Z][A-Z .'-]+,\s*[A-Z ]+:$"
_CODE = r"\|\||&&|[{}]|;\s*$"  # prose never ends a line with ";" nor holds || or braces


def head_lines(texts: pl.Series, chars: int = HEAD_CHARS, *, whole_lines: bool = False) -> pl.DataFrame:
    """``doc, line, text``: the first ``TITLE_LINES`` lines with words of every text's first ``chars``, stripped.

    ``whole_lines``: leave out a last line the cut may have split (what a longer head would read differently).
    """
    frame = pl.DataFrame({"text": texts}).select(pl.col("text").str.slice(0, chars).str.split("\n"), pl.col("text").str.len_chars().alias("n"))
    if whole_lines:
        frame = frame.select(pl.when(pl.col("n") > chars).then(pl.col("text").list.slice(0, pl.col("text").list.len() - 1)).otherwise("text"))
    return (
        frame.with_row_index("doc")
        .select("doc", pl.col("text").list.eval(pl.element().filter(pl.element().str.contains(r"\w"))).list.head(TITLE_LINES).alias("text"))
        .with_columns(pl.int_ranges(0, pl.col("text").list.len(), dtype=pl.Int32).alias("line"))
        .explode("text", "line")
        .filter(pl.col("text").is_not_null())
        .select("doc", "line", pl.col("text").str.strip_chars())
    )


def is_furniture(text: pl.Expr) -> pl.Expr:
    """Whether a head line is boilerplate or furniture rather than a title (see the module docstring)."""
    words = text.str.count_matches(r"\w+")
    lower = text.str.to_lowercase()
    # ASCII word boundaries: the Unicode ones leave the regex engine's fast path.
    date_words = lower.str.count_matches(rf"(?-u:\b)({_DATE_WORDS})(?-u:\b)")
    chrome_words = lower.str.count_matches(rf"(?-u:\b)({_CHROME_WORDS})(?-u:\b)")
    return (
        (words < MIN_TITLE_WORDS)
        | (date_words >= DATE_SHARE * words)
        | text.str.contains(_BYLINE)
        | (chrome_words >= CHROME_SHARE * words)
        | text.str.contains(_CREDIT)
        | text.str.contains(_ADDRESS)
        | text.str.contains(_SPEAKER)
        | text.str.contains(_CODE)
    )


def first_titles(texts: pl.Series, boilerplate: pl.DataFrame | None) -> pl.Series:
    """The title of every text (see the module docstring); ``boilerplate`` holds ``doc, line`` set aside.

    Line by line: only the documents whose earlier head lines were all furniture look at the next one, so the
    cost is about one line per document.  The whole lines of a short head (:data:`QUICK_CHARS`) are the first
    lines of the full head too, so a title found among them is the title; only the other documents read
    :data:`HEAD_CHARS`.
    """
    quick = _titles_among(head_lines(texts, QUICK_CHARS, whole_lines=True), boilerplate)
    frame = pl.DataFrame({"doc": np.arange(len(texts), dtype=np.uint32)}).join(quick, on="doc", how="left", maintain_order="left")
    rest = frame.filter(pl.col("title").is_null())["doc"]
    if len(rest):
        local = None
        if boilerplate is not None and boilerplate.height:
            index = pl.DataFrame({"doc": rest, "local": np.arange(len(rest), dtype=np.uint32)})
            local = boilerplate.with_columns(pl.col("doc").cast(pl.UInt32)).join(index, on="doc").select(pl.col("local").alias("doc"), "line")
        lines = head_lines(texts.gather(rest))
        found = _titles_among(lines, local, fallback=True)
        found = pl.DataFrame({"doc": rest}).with_row_index("local").join(
            found.rename({"doc": "local"}).with_columns(pl.col("local").cast(pl.UInt32)), on="local", how="left"
        ).select("doc", pl.col("title").alias("late"))
        frame = frame.join(found, on="doc", how="left", maintain_order="left").select("doc", pl.coalesce("title", "late").alias("title"))
    return frame.sort("doc").select(pl.col("title").str.slice(0, TITLE_CHARS))["title"]


def _titles_among(lines: pl.DataFrame, boilerplate: pl.DataFrame | None, *, fallback: bool = False) -> pl.DataFrame:
    """``doc, title`` of the documents whose title is among ``lines`` (with ``fallback``, every document: its first line)."""
    if boilerplate is not None and boilerplate.height:
        drop = boilerplate.select(pl.col("doc").cast(pl.UInt32), pl.col("line").cast(pl.Int32), pl.lit(True).alias("boilerplate"))
        lines = lines.join(drop, on=["doc", "line"], how="left", maintain_order="left")
    else:
        lines = lines.with_columns(pl.lit(None, dtype=pl.Boolean).alias("boilerplate"))
    found = []
    waiting = lines
    for k in range(TITLE_LINES):
        at = waiting.filter(pl.col("line") == k)
        if at.height == 0:
            break
        title = at.filter(pl.col("boilerplate").is_null() & ~is_furniture(pl.col("text"))).select("doc", pl.col("text").alias("title"))
        found.append(title)
        waiting = waiting.filter((pl.col("line") > k) & ~pl.col("doc").is_in(title["doc"].implode()))
    best = pl.concat(found) if found else pl.DataFrame(schema={"doc": pl.UInt32, "title": pl.String})
    if not fallback:
        return best
    first = lines.filter(pl.col("line") == 0).select("doc", pl.col("text").alias("fallback"))
    return first.join(best, on="doc", how="left").select("doc", pl.coalesce("title", "fallback").alias("title"))


def with_titles(prepared: Prepared) -> Prepared:
    """``prepared`` with every missing title filled (texts on disk are read back a batch at a time)."""
    docs = prepared.documents
    missing = docs["title"].is_null()
    if docs.height == 0 or not missing.any():
        return prepared
    parts = []
    for lo in range(0, docs.height, BATCH):
        texts = prepared.texts.slice(lo, BATCH) if prepared.texts is not None else docs["text"].slice(lo, BATCH)
        bp = prepared.boilerplate
        local = None
        if bp is not None:
            doc = bp["doc"].cast(pl.Int64)
            local = bp.filter((doc >= lo) & (doc < lo + BATCH)).with_columns((pl.col("doc").cast(pl.Int64) - lo).cast(pl.UInt32))
        # ``+ ""`` copies the titles out: polars' string slices are views that would keep every batch's texts alive.
        parts.append(first_titles(texts, local) + "")
    found = pl.concat(parts)
    titles = pl.select(pl.when(missing).then(found).otherwise(docs["title"]).alias("title"))["title"]
    return replace(prepared, documents=docs.with_columns(titles))
