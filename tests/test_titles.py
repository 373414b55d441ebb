"""Titles: the first line that tells the story, not the page furniture around it."""

from __future__ import annotations

import polars as pl

import provenance
from provenance.titles import first_titles
from tests.fixtures import make_article


def titles(*texts: str, boilerplate=None) -> list[str]:
    return first_titles(pl.Series(list(texts), dtype=pl.String), boilerplate).to_list()


def test_dates_bylines_menus_credits_and_code_are_not_titles() -> None:
    story = "Mayor closes the Halden Bridge after engineers find cracks\nThe bridge carries 42,000 vehicles a day."
    heads = [
        "May 31, 2019, 9:52 PM UTC",
        "Updated 10:14 AM ET, Fri May 31, 2019",
        "By Jessica Levinson, professor at Loyola Law School",
        "Email",
        "e-mail",
        "Share on Facebook Share on Twitter",
        "Email Bio Follow",
        "Purchase: Order Reprint",
        "Andrew Burton | Getty Images",
        "The mayor at the bridge on Tuesday (AP Photo/Eric Risberg)",
        "/ Source: Associated Press",
        "jo.reporter@example.com",
        "TERRY GROSS, HOST:",
        "window._taboola = window._taboola || [];",
    ]
    for head in heads:
        assert titles(f"{head}\n\n{story}") == ["Mayor closes the Halden Bridge after engineers find cracks"], head


def test_a_headline_that_mentions_a_day_is_still_a_title() -> None:
    assert titles("Trump meets Kim at the border on Sunday\nText follows here.") == ["Trump meets Kim at the border on Sunday"]


def test_boilerplate_lines_are_skipped_and_an_all_furniture_head_falls_back_to_its_first_line() -> None:
    text = "Leave a Reply\nSenate passes the budget after a long night\nMore text."
    boiler = pl.DataFrame({"doc": [0], "line": [0]}, schema={"doc": pl.UInt32, "line": pl.Int32})
    assert titles(text, boilerplate=boiler) == ["Senate passes the budget after a long night"]
    assert titles(text) == ["Leave a Reply"]  # a three-word line is a title unless the corpus says it recurs
    assert titles("Email\nPrint") == ["Email"]
    assert titles("Brexit chaos\nBreaking News") == ["Brexit chaos"]


def test_titles_are_cut_and_every_text_gets_one() -> None:
    assert [len(t) for t in titles("word " * 200)] == [300]
    assert titles("first story line here", "   \n  second story line here  ") == ["first story line here", "second story line here"]


def test_a_run_titles_documents_from_the_text_or_the_title_column(tmp_path) -> None:
    text = "Advertisement\n" + make_article(0)
    other = make_article(1)
    frame = pl.DataFrame({"id": ["a", "b"], "text": [text, other], "headline": [None, "Given title"]})
    docs = provenance.run(frame, provenance.Config().replace(title_column="headline")).documents.sort("doc_id")
    assert docs["title"].to_list() == ["Portvale closes Halden Bridge after engineers find cracks", "Given title"]
    assert "headline" not in docs.columns
