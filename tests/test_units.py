"""Units and floating lines (``link.units``): kinds, spans, neighbours, packed arrays."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from provenance.config import EvidenceOptions
from provenance.link import units

OPTIONS = EvidenceOptions()

TEXT = (
    "Storm closes the harbour\n"
    "\n"
    "A storm closed the harbour on Monday. Ferries stayed in port all day! Officials said it would reopen soon.\n"
    "Email\n"
    '"We have never seen waves like these in forty years," the harbour master said.\n'
    "He left. The end of the story is this sentence with enough words."
)


def one(text: str) -> units.Units:
    texts = pl.Series([text])
    return units.build_units(texts, units.Floating.nothing(), OPTIONS)


def test_units_are_sentences_and_headings_with_spans_into_the_text() -> None:
    u = one(TEXT)
    spans = [TEXT[s:e] for s, e in zip(u.start.tolist(), u.end.tolist())]
    assert spans == [
        "Storm closes the harbour",
        "A storm closed the harbour on Monday.",
        "Ferries stayed in port all day!",
        "Officials said it would reopen soon.",
        "Email",
        '"We have never seen waves like these in forty years," the harbour master said.',
        "The end of the story is this sentence with enough words.",  # "He left." is too short to count
    ]
    kinds = [units.KIND_NAMES[k] for k in u.kind.tolist()]
    assert kinds == ["heading", "countable", "countable", "countable", "heading", "quote", "countable"]
    assert u.weight.tolist() == [0, 7, 6, 6, 0, 0, 11]
    assert u.doc_weight.tolist() == [30] and u.doc_lo.tolist() == [0, 7]
    # Half-sentence positions: headings and quotes sit between the sentences around them.
    assert u.pos2.tolist() == [-1, 0, 2, 4, 5, 5, 6]
    assert u.line.tolist() == [0, 2, 2, 2, 3, 4, 5]


def test_tokens_stems_and_the_inverted_index_agree() -> None:
    u = one(TEXT)
    assert np.diff(u.tok_lo).tolist() == [4, 7, 6, 6, 1, 14, 11]
    inv = list(zip(u.inv_stem.tolist(), u.inv_unit.tolist()))
    assert inv == sorted(inv) and len(set(inv)) == len(inv)  # by stem, then unit; a stem once per unit
    stems = [sorted(s for s, k in inv if k == unit) for unit in range(len(u.key))]
    assert [len(run) for run in stems] == np.diff(u.stem_lo).tolist()
    assert u.n_stop[1] == 3  # a, the, on
    # "harbour" in units 0, 1 and 5: one stem, three postings.
    shared = set(stems[0]) & set(stems[1]) & set(stems[5])
    assert len(shared) == 1 and sum(1 for s, _ in inv if s in shared) == 3


def test_a_quote_open_at_the_end_of_a_sentence_continues_into_the_next() -> None:
    text = '\u201cWe will rebuild every house that was lost. It will take years of work from all of us,\u201d she said in the town.'
    u = one(text)
    assert [units.KIND_NAMES[k] for k in u.kind.tolist()] == ["quote", "quote"]


def test_quotes_are_read_per_line_whatever_stands_in_the_lines_before() -> None:
    # Line 2's quote opens in its first sentence and closes in its second; a stray control character in line 1
    # (the marker the quote reader uses inside) must not leak into line 2's reading.
    text = (
        "A stray \x02 mark and a \u201cquoted\u201d word sit in this first line here.\n"
        "\u201cWe will rebuild every house. It will take years,\u201d she said. Then the crowd went home again."
    )
    lines = units._lines(pl.Series([text]), OPTIONS)
    pieces = units._pieces(lines.filter(pl.col("heading") | pl.col("sentence")))
    assert pieces.select("line", "index", "quoted").rows() == [(0, 0, 1), (1, 0, 5), (1, 1, 4), (1, 2, 0)]
    text = lines["text"][1]
    second = pieces.row(2, named=True)
    assert text[second["start"] - lines["start"][1] : second["end"] - lines["start"][1]] == "It will take years,\u201d she said."


#: Texts across Unicode's word characters: combining marks, joiners, other numbers, letters beyond the BMP,
#: digits of other scripts, the connector "_", look-alike Cyrillic, apostrophes, CJK, emoji.
TOKEN_TEXTS = [
    "The harbour reopened on Monday, the officials said.",
    "Cafe\u0301 na\u00efve \u0928\u092e\u0938\u094d\u0924\u0947 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 snake_case x\u00b2 \u2167 km\u00b3",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 a\u200db \U0001d400\U0001d401 \U00020000x \u0661\u0662 \U0001f600 end",
    "ru\u0455\u0455ia's \u201cquote\u201d \u4e2d\u6587\u5b57 don't THE the The",
    "",
    "... !!! ???",
    "the harbour master said",
    "the harbourmaster said",
    "because the harbour closed before dawn, ourselves included",
]


def test_piece_tokens_are_the_regex_tokens_hashed() -> None:
    texts = pl.Series(TOKEN_TEXTS * 2)
    got = units.piece_tokens(texts, OPTIONS.stem_chars)
    regex = texts.str.extract_all(units.TOKEN)
    assert got.n_tokens.tolist() == regex.list.len().to_list()
    words = regex.explode().drop_nulls().to_list()
    assert len(got.tok) == len(words)

    def same_classes(strings: list, hashes: np.ndarray) -> bool:
        """Equal hashes exactly where the strings are equal."""
        first: dict = {}
        return all(first.setdefault(x, h) == h for x, h in zip(strings, hashes.tolist())) and len(set(first.values())) == len(first)

    assert same_classes(words, got.tok)
    assert same_classes([w[: OPTIONS.stem_chars] for w in words], got.stem)
    assert same_classes([" ".join(t) for t in regex.to_list()], got.key)
    assert got.stop.tolist() == [w in units.STOPWORDS for w in words]


def test_word_characters_are_the_regex_word_characters() -> None:
    points = np.r_[0:0xD800:7, 0xE000:0x110000:101]
    chars = pl.Series([chr(c) for c in points.tolist()])
    assert (units.word_chars()[points] == chars.str.contains(f"^{units.TOKEN}$").to_numpy()).all()


def test_line_table_neighbours_skip_headings() -> None:
    table = units.line_table(pl.Series([TEXT, "Only a heading"]), OPTIONS)
    assert table["line"].to_list() == [0, 2, 3, 4, 5, 0]
    assert table["sentence"].to_list() == [False, True, False, True, True, False]
    keys = dict(zip(zip(table["doc"].to_list(), table["line"].to_list()), table["key"].to_list()))
    rows = {(d, l): (p, n) for d, l, p, n in table.select("doc", "line", "prev", "next").rows()}
    assert rows[(0, 0)] == (None, keys[(0, 2)])
    assert rows[(0, 3)] == (keys[(0, 2)], keys[(0, 4)])  # "Email" sits between two sentence lines
    assert rows[(0, 4)] == (keys[(0, 2)], keys[(0, 5)])  # the heading is no neighbour
    assert rows[(0, 5)] == (keys[(0, 4)], None)
    assert rows[(1, 0)] == (None, None)  # neighbours never cross documents
    assert units.line_table(pl.Series([TEXT]), OPTIONS, first_doc=7)["doc"].unique().to_list() == [7]


def test_a_line_floats_only_in_enough_documents_with_varying_neighbours_on_both_sides() -> None:
    stock = "Prices shown are correct at the time of publication and may change."
    bodies = [f"Story number {k} begins with its own opening sentence here.\n{stock}\nStory {k} ends with its own closing line." for k in range(4)]
    floating = units.floating_keys(units.line_table(pl.Series(bodies), OPTIONS), OPTIONS)
    key = units.line_table(pl.Series([stock]), OPTIONS)["key"].item()
    assert floating.lines.tolist() == [key]
    few = units.floating_keys(units.line_table(pl.Series(bodies[:2]), OPTIONS), OPTIONS)
    assert len(few.lines) == 0  # two documents sharing a line is what a copy looks like
    anchored = [f"Story number {k} begins with its own opening sentence here.\n{stock}\nThe same closing line follows it." for k in range(4)]
    assert len(units.floating_keys(units.line_table(pl.Series(anchored), OPTIONS), OPTIONS).lines) == 0


def test_a_line_twice_in_a_document_is_judged_by_its_first_neighbours() -> None:
    stock = "Prices shown are correct at the time of publication and may change."
    bodies = [
        f"Story number {k} begins with its own opening sentence here.\n{stock}\nThe same sentence always follows the first one.\n"
        f"In the middle of story {k} there is a line.\n{stock}\nStory {k} ends with its own closing line."
        for k in range(4)
    ]
    # First occurrences keep their next neighbour everywhere: part of one recurring text, not furniture.
    assert len(units.floating_keys(units.line_table(pl.Series(bodies), OPTIONS), OPTIONS).lines) == 0
    later = [body.replace("The same sentence always follows the first one.", f"Sentence {k} follows it here.") for k, body in enumerate(bodies)]
    assert len(units.floating_keys(units.line_table(pl.Series(later), OPTIONS), OPTIONS).lines) == 1


def test_floating_keys_counted_in_parts_of_the_key_space_are_the_keys_counted_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stocks = [f"Stock line {name} is printed under every story on the site today." for name in ("one", "two", "three", "four", "five")]
    pair = ["Subscribe to our newsletter for the latest stories every morning.", "Follow us on social media for more news and updates."]
    bodies = [
        f"Story number {k} begins with its own opening sentence here.\n{stocks[k % 5]}\nIn the middle of story {k} a line.\n"
        f"{stocks[(k + 2) % 5]}\nFurther down story {k} another line.\n{pair[0]}\n{pair[1]}\nStory {k} ends with its own closing line."
        for k in range(12)
    ]
    at_once = units.floating_keys(units.line_table(pl.Series(bodies), OPTIONS), OPTIONS)
    assert len(at_once.lines) >= 5 and len(at_once.links) >= 1
    monkeypatch.setattr(units, "FLOAT_PART_ROWS", 3)  # every count on a part of the key space
    in_parts = units.floating_keys(lambda: units.line_table(pl.Series(bodies), OPTIONS), OPTIONS)
    assert np.array_equal(at_once.lines, in_parts.lines) and np.array_equal(at_once.links, in_parts.links)


def test_units_built_in_batches_equal_units_built_at_once() -> None:
    from tests.fixtures import make_article

    texts = [TEXT, make_article(0), make_article(1, 4), "Only a heading"]
    whole = one_of(texts)
    batches = [one_of(texts[:1]), one_of(texts[1:3]), one_of(texts[3:])]
    parts = units.concat_units(batches)
    for name in whole.__dataclass_fields__:
        assert np.array_equal(getattr(whole, name), getattr(parts, name)), name
    # The batches are consumed as they are joined: memory holds the result, not every batch twice.
    assert all(getattr(batch, name) is None for batch in batches for name in whole.__dataclass_fields__)


def one_of(texts: list[str]) -> units.Units:
    series = pl.Series(texts)
    return units.build_units(series, units.Floating.nothing(), OPTIONS)


def test_the_units_of_some_documents_are_those_built_on_their_texts_alone() -> None:
    from tests.fixtures import make_article

    texts = [TEXT, make_article(0), "Only a heading", make_article(1, 4), make_article(2), TEXT]
    for keep in ([1, 3], [0, 2, 5], [4], [], [0, 1, 2, 3, 4, 5]):
        alone = one_of([texts[k] for k in keep]) if keep else one_of([])
        whole = one_of(texts)
        got = units.subset_units(whole, np.array(keep, dtype=np.int64))
        for name in whole.__dataclass_fields__:
            assert np.array_equal(getattr(alone, name), getattr(got, name)), (keep, name)
            assert getattr(got, name).dtype == getattr(alone, name).dtype, (keep, name)
        # The whole is consumed as the selection is made: memory holds the selection, not both.
        assert all(getattr(whole, name) is None for name in whole.__dataclass_fields__)


def test_a_subset_takes_distinct_ascending_documents() -> None:
    with pytest.raises(ValueError, match="ascending, distinct"):
        units.subset_units(one_of([TEXT, TEXT]), np.array([1, 0], dtype=np.int64))
