"""Input formats and per-document rejects, through the library (``provenance.run``) and ``ingest`` itself.

Every test builds its inputs in ``tmp_path`` from a fixed list of sentences and
reads the written tables back with polars: what is pinned is the output
contract (``documents.parquet``, ``rejects.parquet``, ``run.json``), not the
in-memory frames.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl

from provenance.titles import first_titles
import pytest

from provenance import run
from provenance.config import Config, IngestOptions
from provenance.errors import ProvenanceError
from provenance.ingest import FRAME_SOURCE, ingest, ingest_stage, table_columns
from provenance.schemas import DOCUMENTS, REJECTS

# Four topics of six sentences: article(i) for i in 0..3 share no sentence.
SENTENCES = [
    "The harbour authority in Port Elric approved a new ferry schedule on Tuesday after months of debate.",
    "Residents of the northern islands had complained that the old timetable left them stranded overnight.",
    "Minister Dana Okafor said the change would cost four million euros over the next three years.",
    "Critics argued that the money would be better spent on repairing the crumbling pier at Westhaven.",
    "The first ferries under the new schedule are expected to sail from the harbour in early March.",
    "Local shop owners welcomed the decision and said tourists would finally be able to stay longer.",
    "Scientists at the Kellner Institute reported a sharp decline in the number of alpine bees this spring.",
    "The team counted insects on forty meadows between Grauberg and the Swiss border over six weeks.",
    "Professor Ines Hartmann blamed a cold April and the spread of a fungus that attacks young colonies.",
    "Farmers in the valley said their orchards produced far less fruit than in any year they remember.",
    "The institute plans to publish its full data next winter together with a set of recommendations.",
    "Beekeepers have been asked to report unusual losses to a new hotline run by the regional council.",
    "Voters in Marlow County will decide in November whether to fund a new public library downtown.",
    "The proposal would raise the property tax slightly for twenty years to pay for the building.",
    "Supporters say the current library is too small and lacks rooms for children and study groups.",
    "Opponents point out that the county already struggles to maintain its roads and its schools.",
    "Mayor Alan Prescott has not taken a position but promised to hold two public hearings in October.",
    "Architects from the firm Lund and Berry have presented three designs for the proposed site.",
    "A storm brought heavy rain and strong winds to the coast of Brenmoor late on Saturday night.",
    "Several roads were closed after trees fell across them and power lines were brought down.",
    "The weather service said gusts of more than one hundred kilometres an hour were measured at Kessing.",
    "Emergency crews worked through Sunday to clear the debris and restore electricity to most homes.",
    "No serious injuries were reported, although two people were treated for minor cuts in hospital.",
    "Officials warned that a second storm could reach the region by the middle of next week.",
]


def article(i: int, n: int = 6) -> str:
    """A realistic text of ``n`` sentences (about 15 words each); article(0..3) are disjoint."""
    return " ".join(SENTENCES[(i * n + j) % len(SENTENCES)] for j in range(n))


SHORT = "Too short to shingle reliably."  # 5 tokens < default min_tokens (20)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_jsonl(path: Path, lines: list[dict | str]) -> Path:
    """Records as JSON lines; a ``str`` is written verbatim (for malformed lines)."""
    return write(path, "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")


def write_table(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix == ".jsonl":
        frame.write_ndjson(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def outputs(out: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """documents.parquet, rejects.parquet and run.json of a finished run."""
    documents = pl.read_parquet(out / "documents.parquet")
    rejects = pl.read_parquet(out / "rejects.parquet")
    info = json.loads((out / "run.json").read_text())
    assert documents.columns[: len(DOCUMENTS)] == DOCUMENTS.names()
    assert rejects.schema == REJECTS
    assert info["counts"]["documents"] == documents.height
    assert info["counts"]["rejected"] == rejects.height
    assert info["counts"]["rejects_by_reason"] == dict(Counter(rejects["reason"].to_list()))
    return documents, rejects, info


def run_and_read(inputs: list[Path], out: Path, **options) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    run(inputs, Config.from_options(options), out_dir=out)
    return outputs(out)


# ---------------------------------------------------------------------------- input formats


def test_folder_is_searched_recursively_for_txt_and_md(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "a.txt", "Ferry schedule approved\n" + article(0))
    write(corpus / "sub" / "b.md", "\n\n   Alpine bees in decline  \n\n" + article(1))
    write(corpus / "sub" / "deeper" / "c.txt", article(2))
    write(corpus / ".hidden.txt", article(3))  # hidden files are ignored, not rejected
    write(corpus / ".cache" / "d.txt", article(3))

    documents, rejects, info = run_and_read([corpus], tmp_path / "out")

    assert rejects.height == 0
    by_id = {row["doc_id"]: row for row in documents.iter_rows(named=True)}
    assert set(by_id) == {"a", "sub/b", "sub/deeper/c"}
    assert by_id["a"]["title"] == "Ferry schedule approved"
    assert by_id["sub/b"]["title"] == "Alpine bees in decline"
    assert by_id["sub/deeper/c"]["title"] == article(2)[:300]  # one-line text: its first 300 characters
    assert Path(by_id["sub/b"]["source"]) == corpus / "sub" / "b.md"
    assert by_id["sub/deeper/c"]["text"] == article(2)
    assert info["stages"]["ingest"]["files"] == 3


def test_single_text_file_doc_id_is_its_name(tmp_path: Path) -> None:
    path = write(tmp_path / "in" / "story.md", "# Storm on the coast\n" + article(3))

    documents, rejects, _ = run_and_read([path], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["story"]
    assert documents["title"].to_list() == ["# Storm on the coast"]
    assert rejects.height == 0


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_table_extra_columns_are_carried_to_documents(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame(
        {
            "id": ["n1", "n2", "n3"],
            "text": [article(0), article(1), article(2)],
            "url": ["https://a.example/1", "https://b.example/2", "https://c.example/3"],
            "published_at": ["2024-03-01T10:00:00", "2024-03-02T11:30:00", "2024-03-03T08:15:00"],
            "publisher": ["Harbour Gazette", "Valley Times", "County Courier"],
        }
    )
    path = write_table(tmp_path / f"news{suffix}", frame)

    documents, rejects, _ = run_and_read([path], tmp_path / "out")

    assert rejects.height == 0
    assert {"url", "published_at", "publisher"} <= set(documents.columns)
    got = documents.select("doc_id", "text", "url", "published_at", "publisher").sort("doc_id")
    expected = frame.rename({"id": "doc_id"}).select("doc_id", "text", "url", "published_at", "publisher")
    assert got.rows() == expected.rows()
    assert set(documents["source"].to_list()) == {str(path)}
    # Title of a table row without a title column: the text's first line.
    assert documents.filter(pl.col("doc_id") == "n1")["title"].item() == article(0)[:300]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_table_column_names_can_be_overridden(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame({"key": ["k1", "k2"], "body": [article(0), article(1)], "publisher": ["A", "B"]})
    path = write_table(tmp_path / f"t{suffix}", frame)

    documents, rejects, info = run_and_read([path], tmp_path / "out", id_column="key", text_column="body")

    assert rejects.height == 0
    assert sorted(documents["doc_id"].to_list()) == ["k1", "k2"]
    assert documents.sort("doc_id")["text"].to_list() == [article(0), article(1)]
    assert documents.sort("doc_id")["publisher"].to_list() == ["A", "B"]
    # The id and text columns become doc_id and text; they are not carried again.
    assert "key" not in documents.columns and "body" not in documents.columns
    assert info["config"]["ingest"]["id_column"] == "key" and info["config"]["ingest"]["text_column"] == "body"


def test_table_id_column_of_integers_becomes_string_ids(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.parquet", pl.DataFrame({"id": [7, 8], "text": [article(0), article(1)]}))

    documents, _, _ = run_and_read([path], tmp_path / "out")

    assert sorted(documents["doc_id"].to_list()) == ["7", "8"]


def test_several_inputs_in_one_run(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    write(folder / "f1.txt", article(0))
    write(folder / "nested" / "f2.md", article(1))
    jsonl = write_jsonl(tmp_path / "j.jsonl", [{"id": "j1", "text": article(2), "url": "https://j.example/1"}])
    csv = write_table(tmp_path / "c.csv", pl.DataFrame({"id": ["c1"], "text": [article(3)], "publisher": ["Courier"]}))
    parquet = write_table(tmp_path / "p.parquet", pl.DataFrame({"id": ["p1"], "text": [article(0) + " " + SENTENCES[7]]}))
    single = write(tmp_path / "single.txt", article(1) + " " + SENTENCES[20])

    documents, rejects, info = run_and_read([folder, jsonl, csv, parquet, single], tmp_path / "out")

    assert rejects.height == 0
    assert sorted(documents["doc_id"].to_list()) == sorted(["f1", "nested/f2", "j1", "c1", "p1", "single"])
    sources = dict(documents.select("doc_id", "source").iter_rows())
    assert Path(sources["nested/f2"]) == folder / "nested" / "f2.md"
    assert sources["j1"] == str(jsonl) and sources["c1"] == str(csv) and sources["p1"] == str(parquet)
    # Metadata of one input is null for the others.
    carried = {r["doc_id"]: (r["url"], r["publisher"]) for r in documents.iter_rows(named=True)}
    assert carried["j1"] == ("https://j.example/1", None)
    assert carried["c1"] == (None, "Courier")
    assert carried["f1"] == (None, None)
    assert info["inputs"] == [str(p) for p in (folder, jsonl, csv, parquet, single)]


def test_tables_inside_a_folder_are_read_as_tables(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    write(folder / "a.txt", article(0))
    write_jsonl(folder / "more" / "rows.jsonl", [{"id": "r1", "text": article(1)}, {"id": "r2", "text": article(2)}])

    documents, rejects, _ = run_and_read([folder], tmp_path / "out")

    assert rejects.height == 0
    assert sorted(documents["doc_id"].to_list()) == ["a", "r1", "r2"]


# ---------------------------------------------------------------------------- per-document rejects


def rejects_of(rejects: pl.DataFrame, reason: str) -> list[dict]:
    return rejects.filter(pl.col("reason") == reason).select("source", "doc_id", "reason").to_dicts()


def test_empty_and_whitespace_text_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    write(folder / "empty.txt", "")
    write(folder / "blank.md", "  \n\t\n   \n")
    table = write_jsonl(tmp_path / "t.jsonl", [{"id": "j1", "text": "   "}, {"id": "j2", "text": None}, {"id": "j3", "text": article(1)}])

    documents, rejects, info = run_and_read([folder, table], tmp_path / "out")

    assert sorted(documents["doc_id"].to_list()) == ["good", "j3"]
    assert sorted((Path(r["source"]).name, r["doc_id"]) for r in rejects_of(rejects, "empty_text")) == [
        ("blank.md", "blank"), ("empty.txt", "empty"), ("t.jsonl", "j1"), ("t.jsonl", "j2"),
    ]
    assert info["counts"]["rejects_by_reason"] == {"empty_text": 4}


def test_undecodable_bytes_are_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    bad = write(folder / "latin.txt", article(1).encode()[:80] + b"\xff\xfe\xfa" + article(1).encode()[80:])

    documents, rejects, info = run_and_read([folder], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["good"]
    assert rejects_of(rejects, "undecodable_bytes") == [{"source": str(bad), "doc_id": "latin", "reason": "undecodable_bytes"}]
    assert info["counts"]["rejects_by_reason"] == {"undecodable_bytes": 1}


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    bad = write(folder / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + article(1).encode())

    documents, rejects, info = run_and_read([folder], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["good"]
    assert rejects_of(rejects, "binary_file") == [{"source": str(bad), "doc_id": "image", "reason": "binary_file"}]
    assert info["counts"]["rejects_by_reason"] == {"binary_file": 1}


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "story.md", article(0))  # sorted before story.txt: kept
    write(folder / "story.txt", article(1))
    table = write_jsonl(
        tmp_path / "t.jsonl",
        [{"id": "x", "text": article(2)}, {"id": "x", "text": article(3)}, {"id": "story", "text": article(3)}],
    )

    documents, rejects, info = run_and_read([folder, table], tmp_path / "out")

    texts = dict(documents.select("doc_id", "text").iter_rows())
    assert texts == {"story": article(0), "x": article(2)}
    assert sorted((Path(r["source"]).name, r["doc_id"]) for r in rejects_of(rejects, "duplicate_id")) == [
        ("story.txt", "story"), ("t.jsonl", "story"), ("t.jsonl", "x"),
    ]
    assert info["counts"]["rejects_by_reason"] == {"duplicate_id": 3}


def test_too_short_text_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    write(folder / "short.txt", SHORT)
    nineteen = " ".join(SENTENCES[0].split()[:17]) + " two words"  # 19 tokens
    write(folder / "nineteen.txt", nineteen)

    documents, rejects, info = run_and_read([folder], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["good"]
    assert sorted(r["doc_id"] for r in rejects_of(rejects, "too_short")) == ["nineteen", "short"]
    assert info["counts"]["rejects_by_reason"] == {"too_short": 2}

    # The threshold is the config's min_tokens.
    documents, rejects, _ = run_and_read([folder], tmp_path / "out2", min_tokens=5)
    assert sorted(documents["doc_id"].to_list()) == ["good", "nineteen", "short"]
    assert rejects.height == 0


def test_too_large_text_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    big = write(folder / "dump.txt", " ".join(article(i) for i in range(4)))
    assert len(article(0)) < 1000 < len(big.read_text())

    documents, rejects, info = run_and_read([folder], tmp_path / "out", max_chars=1000)

    assert documents["doc_id"].to_list() == ["good"]
    assert rejects_of(rejects, "too_large") == [{"source": str(big), "doc_id": "dump", "reason": "too_large"}]
    assert info["counts"]["rejects_by_reason"] == {"too_large": 1}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_table_row_without_id_is_rejected(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame({"id": ["r1", None, "  ", "r4"], "text": [article(0), article(1), article(2), article(3)]})
    path = write_table(tmp_path / f"t{suffix}", frame)

    documents, rejects, info = run_and_read([path], tmp_path / "out")

    assert sorted(documents["doc_id"].to_list()) == ["r1", "r4"]
    missing = rejects_of(rejects, "missing_id")
    assert len(missing) == 2
    assert all(r["doc_id"] is None and r["source"].startswith(f"{path}:") for r in missing)
    assert len({r["source"] for r in missing}) == 2  # each names its own row
    assert info["counts"]["rejects_by_reason"] == {"missing_id": 2}


def test_jsonl_record_without_id_key_is_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"id": "r1", "text": article(0)}, {"text": article(1)}])

    documents, rejects, _ = run_and_read([path], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["r1"]
    assert rejects_of(rejects, "missing_id") == [{"source": f"{path}:2", "doc_id": None, "reason": "missing_id"}]


def test_malformed_json_line_is_rejected_and_the_rest_is_read(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"id": "r1", "text": article(0), "url": "https://a.example/1"},
            '{"id": "r2", "text": "cut off in the midd',
            "[1, 2, 3]",
            {"id": "r4", "text": article(1), "url": "https://a.example/4"},
        ],
    )

    documents, rejects, info = run_and_read([path], tmp_path / "out")

    assert dict(documents.select("doc_id", "url").iter_rows()) == {"r1": "https://a.example/1", "r4": "https://a.example/4"}
    assert sorted(r["source"] for r in rejects_of(rejects, "unreadable_record")) == [f"{path}:2", f"{path}:3"]
    assert info["counts"]["rejects_by_reason"] == {"unreadable_record": 2}


def test_missing_id_after_a_malformed_line_names_its_own_line(tmp_path: Path) -> None:
    # Regression: the line-by-line fallback numbered rows after dropping bad
    # lines, so a missing_id reject pointed at the malformed line instead.
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [{"id": "r1", "text": article(0)}, "{not json", {"id": "r3", "text": article(1)}, {"id": None, "text": article(2)}],
    )

    documents, rejects, _ = run_and_read([path], tmp_path / "out")

    assert sorted(documents["doc_id"].to_list()) == ["r1", "r3"]
    assert "__provenance_line" not in documents.columns
    assert dict(rejects.select("source", "reason").iter_rows()) == {f"{path}:2": "unreadable_record", f"{path}:4": "missing_id"}


def test_unsupported_file_in_folder_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", article(0))
    docx = write(folder / "report.docx", b"PK\x03\x04 not really a document")
    noext = write(folder / "sub" / "README", article(1))

    documents, rejects, info = run_and_read([folder], tmp_path / "out")

    assert documents["doc_id"].to_list() == ["good"]
    assert sorted(r["source"] for r in rejects_of(rejects, "unsupported_file")) == sorted([str(docx), str(noext)])
    assert info["counts"]["rejects_by_reason"] == {"unsupported_file": 2}


def test_exact_duplicates_are_documents_in_one_cluster(tmp_path: Path) -> None:
    text = article(1)
    shouted = "  " + text.upper().replace(" ", "   \n ") + "\n\n"
    repunctuated = text.replace(". ", "! ").replace(" the ", ' "the" ')
    folder = tmp_path / "in"
    write(folder / "original.txt", text)
    write(folder / "shouted.txt", shouted)
    write(folder / "repunctuated.md", repunctuated)
    write(folder / "other.txt", article(3))

    documents, rejects, _ = run_and_read([folder], tmp_path / "out")

    assert rejects.height == 0
    assert documents.height == 4
    copies = documents.filter(pl.col("doc_id").is_in(["original", "shouted", "repunctuated"]))
    assert copies["content_hash"].n_unique() == 1
    assert copies["cluster_id"].n_unique() == 1
    cluster_id = copies["cluster_id"][0]
    assert documents.filter(pl.col("doc_id") == "other")["cluster_id"].item() != cluster_id
    clusters = pl.read_parquet(tmp_path / "out" / "clusters.parquet")
    row = clusters.filter(pl.col("cluster_id") == cluster_id)
    assert row["size"].item() == 3
    assert row["n_exact_duplicates"].item() == 2


# ---------------------------------------------------------------------------- the invariant


def test_every_input_document_ends_up_in_exactly_one_table(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    expected: Counter[str] = Counter()  # reason (or "document") -> count

    def add(kind: str, n: int = 1) -> None:
        expected[kind] += n

    # Text files: doc_id = relative path.
    write(corpus / "good" / "a.txt", article(0)); add("document")
    write(corpus / "good" / "sub" / "b.md", "Bees\n" + article(1)); add("document")
    write(corpus / "good" / "copy_of_a.txt", article(0).upper()); add("document")  # exact duplicate: kept
    write(corpus / "dup" / "x.md", article(2)); add("document")
    write(corpus / "dup" / "x.txt", article(3)); add("duplicate_id")
    write(corpus / "empty.txt", ""); add("empty_text")
    write(corpus / "blank.md", " \n\t \n"); add("empty_text")
    write(corpus / "latin1.txt", "Caf\xe9 cr\xe8me ".encode("latin-1") + article(1).encode()); add("undecodable_bytes")
    write(corpus / "bad_bytes.md", b"\xff\xfe\xfa" + article(2).encode()); add("undecodable_bytes")
    write(corpus / "nul.txt", article(3).encode() + b"\x00\x00"); add("binary_file")
    write(corpus / "short.txt", SHORT); add("too_short")
    write(corpus / "huge.txt", " ".join([article(0)] * 6)); add("too_large")
    write(corpus / "notes.docx", b"PK\x03\x04"); add("unsupported_file")
    write(corpus / "photo.png", b"\x89PNG\r\n"); add("unsupported_file")
    write(corpus / ".hidden.txt", article(0))  # ignored: not an input document
    # A .jsonl table inside the folder.
    write_jsonl(
        corpus / "tables" / "feed.jsonl",
        [
            {"id": "j1", "text": article(1) + " " + SENTENCES[20], "url": "https://j.example/1"},
            {"id": "j2", "text": article(2) + " " + SENTENCES[3]},
            '{"id": "j3", "text": "broken',
            {"id": None, "text": article(3)},
            {"id": "j5", "text": "  "},
            {"id": "j1", "text": article(0)},
            {"id": "j7", "text": SHORT},
            {"id": "good/a", "text": article(3)},  # same id as a folder document read earlier
            {"id": "j9", "text": article(3) + " " + SENTENCES[0], "publisher": "Courier"},
        ],
    )
    add("document", 3); add("unreadable_record"); add("missing_id"); add("empty_text")
    add("duplicate_id", 2); add("too_short")
    # A .csv and a .parquet given directly.
    csv = write_table(
        tmp_path / "rows.csv",
        pl.DataFrame({"id": ["c1", None, "c3", "c4"], "text": [article(0) + " Extra.", article(1), "   ", article(2) + " More."]}),
    )
    add("document", 2); add("missing_id"); add("empty_text")
    parquet = write_table(
        tmp_path / "rows.parquet",
        pl.DataFrame({"id": ["p1", "p2", "c1", None], "text": [article(3) + " End.", " ".join([article(1)] * 6), article(0), None]}),
    )
    add("document"); add("too_large"); add("duplicate_id"); add("missing_id")
    single = write(tmp_path / "single.md", article(2).lower()); add("document")  # exact duplicate of dup/x

    n_inputs = sum(expected.values())
    documents, rejects, info = run_and_read([corpus, csv, parquet, single], tmp_path / "out", max_chars=3000)

    assert documents.height + rejects.height == n_inputs
    assert documents.height == expected["document"]
    assert dict(Counter(rejects["reason"].to_list())) == {k: v for k, v in expected.items() if k != "document"}
    assert info["counts"]["rejected"] == n_inputs - expected["document"]
    # Accepted ids are unique, and no rejected document (other than a
    # duplicate of a kept id) shares an id with an accepted one.
    assert documents["doc_id"].is_unique().all()
    accepted = set(documents["doc_id"].to_list())
    others = rejects.filter((pl.col("reason") != "duplicate_id") & pl.col("doc_id").is_not_null())
    assert accepted.isdisjoint(others["doc_id"].to_list())
    assert set(rejects.filter(pl.col("reason") == "duplicate_id")["doc_id"].to_list()) <= accepted
    assert accepted == {"good/a", "good/sub/b", "good/copy_of_a", "dup/x", "j1", "j2", "j9", "c1", "c4", "p1", "single"}
    # Rejects without a known id still name where they came from.
    assert rejects["source"].null_count() == 0
    assert rejects.filter(pl.col("doc_id").is_null())["reason"].to_list().count("missing_id") == 3
    # Exact duplicates were clustered, not rejected.
    cluster_of = dict(documents.select("doc_id", "cluster_id").iter_rows())
    assert cluster_of["good/a"] == cluster_of["good/copy_of_a"]
    assert cluster_of["dup/x"] == cluster_of["single"]


# ---------------------------------------------------------------------------- everything rejected


def test_all_documents_rejected_still_writes_every_table(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "empty.txt", "")
    write(folder / "short.md", SHORT)
    write(folder / "nul.txt", b"\x00" + article(0).encode())
    write(folder / "notes.docx", b"PK")
    write_jsonl(folder / "t.jsonl", [{"id": "j1", "text": "", "url": "https://x.example"}, {"id": None, "text": article(1)}])
    out = tmp_path / "out"

    result = run([folder], Config(), out_dir=out)

    documents, rejects, info = outputs(out)
    assert documents.height == 0
    assert documents.columns[: len(DOCUMENTS)] == DOCUMENTS.names()
    assert rejects.height == 6
    assert info["counts"]["documents"] == 0 and info["counts"]["clusters"] == 0 and info["counts"]["edges"] == 0
    assert pl.read_parquet(out / "clusters.parquet").height == 0
    assert pl.read_parquet(out / "edges.parquet").height == 0
    assert result.documents.height == 0 and result.rejects.height == 6


def test_all_documents_too_short_still_writes_every_table(tmp_path: Path) -> None:
    # Rejected only after ingest (in the prepare stage), with carried metadata.
    path = write_table(
        tmp_path / "t.csv", pl.DataFrame({"id": ["a", "b"], "text": [SHORT, SENTENCES[0]], "url": ["u1", "u2"]})
    )

    documents, rejects, info = run_and_read([path], tmp_path / "out")

    assert documents.height == 0
    assert sorted(rejects["doc_id"].to_list()) == ["a", "b"]
    assert info["counts"]["rejects_by_reason"] == {"too_short": 2}


# ---------------------------------------------------------------------------- run-level errors (library)


def test_run_level_problems_raise_provenance_error(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", article(0))
    docx = write(tmp_path / "report.docx", b"PK")
    no_text = write_table(tmp_path / "t.csv", pl.DataFrame({"id": ["a"], "body": [article(1)]}))
    folder = tmp_path / "folder"
    write(folder / "a.txt", article(2))
    write_table(folder / "inner.parquet", pl.DataFrame({"id": ["a"], "body": [article(1)]}))

    for inputs, message in (
        ([tmp_path / "missing"], "does not exist"),
        ([good, docx], "unknown input format '.docx'"),
        ([no_text], "no 'text' column"),
        ([folder], "no 'text' column"),
    ):
        with pytest.raises(ProvenanceError, match=message) as caught:
            run(inputs, Config(), out_dir=tmp_path / "out")
        assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------- ingest itself (no pipeline)


OPTIONS = IngestOptions()


def test_a_dataframe_is_read_like_a_table() -> None:
    frame = pl.DataFrame(
        {
            "id": [3, 1, None, 2],
            "text": [article(0), article(1), article(2), "  "],
            "url": ["u3", "u1", "u-none", "u2"],
        }
    )

    got = ingest(frame, OPTIONS)

    assert got.files == []
    assert got.documents.columns == ["doc_id", "text", "title", "source", "url"]
    assert got.documents.rows() == [("1", article(1), None, FRAME_SOURCE, "u1"), ("3", article(0), None, FRAME_SOURCE, "u3")]
    assert got.rejects.rows() == [
        (f"{FRAME_SOURCE}:3", None, "missing_id", "empty 'id'"),
        (FRAME_SOURCE, "2", "empty_text", "text is empty or white space"),
    ]
    assert got.rejects.schema == REJECTS


def test_a_dataframe_run_records_its_input(tmp_path: Path) -> None:
    result = run(pl.DataFrame({"id": ["a", "b"], "text": [article(0), article(1)]}), out_dir=tmp_path / "out")
    assert result.info["inputs"] == ["<DataFrame>"]
    assert set(result.documents["source"].to_list()) == {FRAME_SOURCE}


def test_documents_come_out_sorted_by_id_whatever_the_input_order(tmp_path: Path) -> None:
    later = write_jsonl(tmp_path / "z.jsonl", [{"id": "b", "text": article(0)}, {"id": "a", "text": article(1)}])
    earlier = write_jsonl(tmp_path / "y.jsonl", [{"id": "c", "text": article(2)}, {"id": "a", "text": article(3)}])

    got = ingest([later, earlier], OPTIONS)

    assert got.documents["doc_id"].to_list() == ["a", "b", "c"]
    # Of two documents with one id, the first read wins: inputs in the order given.
    assert got.documents.filter(pl.col("doc_id") == "a")["text"].item() == article(1)
    assert got.rejects.select("source", "doc_id", "reason").rows() == [(str(earlier), "a", "duplicate_id")]
    assert got.files == [str(later), str(earlier)]


def test_reserved_columns_are_carried_under_another_name() -> None:
    frame = pl.DataFrame(
        {"id": ["a"], "text": [article(0)], "cluster_id": ["theirs"], "source": ["wire"], "depth": [7], "keep": ["x"]}
    )

    got = ingest(frame, OPTIONS).documents

    assert got.columns == ["doc_id", "text", "title", "source", "input_cluster_id", "input_source", "input_depth", "keep"]
    assert got.row(0, named=True) | {"text": None, "title": None} == {
        "doc_id": "a", "text": None, "title": None, "source": FRAME_SOURCE, "input_cluster_id": "theirs",
        "input_source": "wire", "input_depth": 7, "keep": "x",
    }
    # A reserved name can still be the id column.
    renamed = ingest(frame.rename({"id": "n_tokens"}), IngestOptions(id_column="n_tokens")).documents
    assert renamed["doc_id"].to_list() == ["a"] and "input_n_tokens" not in renamed.columns


def test_a_title_column_is_used_and_blank_first_lines_are_skipped() -> None:
    long_line = "word " * 100
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "text": ["\n \n  Harbour news  \nbody " + article(0), long_line + "\n" + article(1), article(2)],
            "title": [None, None, "Given title"],
        }
    )

    got = ingest(frame, OPTIONS).documents

    assert got["title"].to_list() == [None, None, "Given title"]  # the text gives the others theirs (provenance.titles)
    assert first_titles(got["text"], None).to_list()[:2] == ["Harbour news", long_line.strip()[:300]]
    # A title column that is not text is carried as it is (input_title), and the title comes from the text.
    numeric = ingest(frame.with_columns(pl.Series("title", [1, 2, 3])), OPTIONS).documents
    assert numeric["title"].to_list() == [None, None, None] and numeric["input_title"].to_list() == [1, 2, 3]


def test_ids_are_strings_stripped_of_white_space(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", pl.DataFrame({"id": ["  a  ", "b\t"], "text": [article(0), article(1)]}))
    assert ingest([path], OPTIONS).documents["doc_id"].to_list() == ["a", "b"]


def test_text_files_lose_their_byte_order_mark_and_ndjson_is_a_table(tmp_path: Path) -> None:
    bom = write(tmp_path / "in" / "bom.txt", b"\xef\xbb\xbfTitle line\n" + article(0).encode())
    feed = write_jsonl(tmp_path / "in" / "feed.ndjson", [{"id": "n1", "text": article(1)}])

    got = ingest([tmp_path / "in"], OPTIONS)

    docs = {r["doc_id"]: r for r in got.documents.iter_rows(named=True)}
    assert set(docs) == {"bom", "n1"} and got.rejects.height == 0
    assert docs["bom"]["text"].startswith("Title line") and docs["bom"]["title"] is None
    assert first_titles(pl.Series([docs["bom"]["text"]]), None).to_list() == ["Title line"]
    assert docs["n1"]["source"] == str(feed) and docs["bom"]["source"] == str(bom)


def test_no_input_and_a_missing_text_column_are_run_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="no input given"):
        ingest([], OPTIONS)
    with pytest.raises(ProvenanceError, match="has no 'body' column .* --text-column"):
        ingest(pl.DataFrame({"id": ["a"], "text": ["x"]}), IngestOptions(text_column="body"))
    with pytest.raises(ProvenanceError, match="has no 'key' column .* --id-column"):
        ingest(pl.DataFrame({"id": ["a"], "text": ["x"]}), IngestOptions(id_column="key"))
    bad = write(tmp_path / "bad.parquet", b"not parquet at all")
    with pytest.raises(ProvenanceError, match=f"cannot read {bad}"):
        ingest([bad], OPTIONS)


def test_an_empty_input_gives_empty_frames(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.jsonl", "")
    folder = tmp_path / "nothing"
    folder.mkdir()
    for source in ([empty], [folder], pl.DataFrame()):
        got = ingest(source, OPTIONS)
        assert got.documents.height == 0 and got.rejects.height == 0
        assert got.documents.columns[:4] == ["doc_id", "text", "title", "source"]


def test_ingest_stage_reports_what_it_read(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "a.txt", article(0))
    write(folder / "b.txt", "")
    write(folder / "c.docx", b"PK")

    got, report = ingest_stage([folder], Config())

    assert report.name == "ingest"
    assert (report.rows_in, report.rows_out) == (3, 1)
    assert report.stats == {"files": 3, "rejected": 2}
    assert got.documents["doc_id"].to_list() == ["a"]


def test_max_chars_counts_characters(tmp_path: Path) -> None:
    text = "\u00e9" * 60 + " " + article(0)  # 2 bytes a character
    frame = pl.DataFrame({"id": ["a"], "text": [text]})
    assert ingest(frame, IngestOptions(max_chars=len(text))).documents.height == 1
    assert ingest(frame, IngestOptions(max_chars=len(text) - 1)).rejects["reason"].to_list() == ["too_large"]


def test_table_columns_reads_only_the_header(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": ["a"], "body": ["x"], "url": ["u"]})
    for suffix in (".parquet", ".csv", ".jsonl"):
        assert table_columns(write_table(tmp_path / f"t{suffix}", frame)) == ["id", "body", "url"]
    assert table_columns(write(tmp_path / "blank.jsonl", "\n\n")) == []
    assert table_columns(write(tmp_path / "list.jsonl", "[1, 2]\n")) is None
    assert table_columns(write(tmp_path / "broken.parquet", b"nope")) is None


def test_date_publisher_and_url_columns_are_read_by_role() -> None:
    from provenance.config import Config
    from provenance.ingest import ingest

    frame = pl.DataFrame({
        "id": ["a", "b"], "text": ["one two three", "four five six"], "scraped_at": ["2019-05-31", "2019-06-01"],
        "published_at": ["x", "y"], "site": ["slate.com", "nbc.com"], "link": ["https://a", "https://b"],
    })
    options = Config.from_options({"date_column": "scraped_at", "publisher_column": "site", "url_column": "link"}).ingest
    docs = ingest(frame, options).documents
    assert docs["published_at"].to_list() == ["2019-05-31", "2019-06-01"]
    assert docs["input_published_at"].to_list() == ["x", "y"]  # the column the role displaced is carried, not dropped
    assert docs["publisher"].to_list() == ["slate.com", "nbc.com"] and docs["url"].to_list() == ["https://a", "https://b"]
    assert not {"scraped_at", "site", "link"} & set(docs.columns)
    plain = ingest(frame, Config().ingest).documents
    assert plain["published_at"].to_list() == ["x", "y"] and "scraped_at" in plain.columns


def test_a_title_column_is_read_and_missing_titles_wait_for_the_text() -> None:
    from provenance.config import Config
    from provenance.ingest import ingest

    frame = pl.DataFrame({"id": ["a", "b", "c"], "text": ["x y z"] * 3, "title": ["Given", "", None], "headline": ["h1", "h2", "h3"]})
    assert ingest(frame, Config().ingest).documents["title"].to_list() == ["Given", None, None]
    by_headline = ingest(frame, Config().replace(title_column="headline").ingest).documents
    assert by_headline["title"].to_list() == ["h1", "h2", "h3"] and by_headline["input_title"].to_list() == ["Given", "", None]


# ---------------------------------------------------------------------------- values of the wrong type, bytes, special files


def test_utf8_rows_agrees_with_python_strict_decoding() -> None:
    from provenance.ingest import utf8_rows

    samples = [
        b"", b"plain", "\u00e9t\u00e9".encode(), "\u20ac".encode(), "\U0001f600".encode(), "\U0010ffff".encode(),
        b"caf\xe9", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\x9f\xbf",
        b"\xf0\x80\x80\xaf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
        b"\xe2\x82", b"\xe2\x82\xac\xe2", b"\x80", b"ok\xc3", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x9f\x98",
    ]

    def strict(b: bytes) -> bool:
        try:
            b.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    got = utf8_rows(pl.Series("b", samples + [None], dtype=pl.Binary), batch_rows=7).to_list()
    assert got == [strict(b) for b in samples] + [True]


def test_a_dataframe_text_of_lists_or_numbers_is_rejected_not_cast() -> None:
    lists = ingest(pl.DataFrame({"id": ["a", "b"], "text": [["x"], None]}), OPTIONS)
    assert lists.documents.height == 0
    assert lists.rejects.select("doc_id", "reason").rows() == [("a", "text_not_string"), ("b", "empty_text")]
    numbers = ingest(pl.DataFrame({"id": ["a"], "text": [42]}), OPTIONS)
    assert numbers.rejects.select("doc_id", "reason", "detail").rows() == [("a", "text_not_string", "'text' is a number, not a string")]
    # An id may be a number or a date (its text is the id), never a list.
    dated = ingest(pl.DataFrame({"id": [date(2026, 1, 2)], "text": [article(0)]}), OPTIONS)
    assert dated.documents["doc_id"].to_list() == ["2026-01-02"]
    listed = ingest(pl.DataFrame({"id": [[1], [2]], "text": [article(0), article(1)]}), OPTIONS)
    assert listed.rejects.select("doc_id", "reason", "detail").rows() == [(None, "id_not_scalar", "'id' is a list, not a string or number")] * 2


def test_a_binary_id_that_is_not_utf8_rejects_its_row_without_an_id() -> None:
    frame = pl.DataFrame({"id": [b"a", b"\xff"], "text": [article(0), article(1)]}, schema={"id": pl.Binary, "text": pl.String})
    got = ingest(frame, OPTIONS)
    assert got.documents["doc_id"].to_list() == ["a"]
    assert got.rejects.rows() == [(f"{FRAME_SOURCE}:2", None, "undecodable_bytes", "not UTF-8 in column 'id'")]


def test_a_csv_text_column_of_figures_stays_text(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "id,text\na,42\nb,7\n")
    assert ingest([path], OPTIONS).documents["text"].to_list() == ["42", "7"]


def test_the_line_by_line_parse_skips_a_giant_line_unread(tmp_path: Path) -> None:
    from provenance import ingest as module

    limit = module.MAX_LINE_BYTES_PER_CHAR * 10 + module.MAX_LINE_SLACK
    giant = json.dumps({"id": "g", "text": "x" * (limit + 10)})
    path = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "text": "short"}, "{broken", giant, {"id": "b", "text": "tiny"}])

    got = ingest([path], IngestOptions(max_chars=10))

    assert got.documents["doc_id"].to_list() == ["a", "b"]
    assert got.rejects.select("source", "reason").rows() == [(f"{path}:2", "unreadable_record"), (f"{path}:3", "too_large")]
    assert got.rejects["detail"][1] == f"a line of {len(giant) + 1} bytes: more than {limit} (from --max-chars)"


def test_file_problem_names_what_is_not_a_readable_file(tmp_path: Path) -> None:
    import os
    import socket

    from provenance.ingest import file_problem

    regular = write(tmp_path / "a.txt", article(0))
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    os.symlink(tmp_path, tmp_path / "folder_link")
    os.symlink(regular, tmp_path / "file_link")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()

    assert file_problem(regular) is None and file_problem(tmp_path / "file_link") is None
    assert file_problem(tmp_path / "pipe") == ("not_a_regular_file", "a FIFO (named pipe)")
    assert file_problem(tmp_path / "sock") == ("not_a_regular_file", "a socket")
    assert file_problem(tmp_path / "folder_link")[0] == "not_a_regular_file"
    assert file_problem(tmp_path / "dangling") == ("dangling_symlink", f"links to {tmp_path / 'gone'}, which does not exist")
    assert file_problem(Path("/dev/null")) == ("not_a_regular_file", "a device")


def test_the_fast_jsonl_read_and_the_line_parse_agree(tmp_path: Path) -> None:
    records = [
        {"id": "a", "text": article(0)}, {"id": "b", "text": ["x"]}, {"id": "c", "text": {}}, {"id": "d", "text": -1.5e3},
        {"id": "e", "text": False}, {"id": "f", "text": "{}"}, {"id": [], "text": article(1)}, {"id": 3, "text": article(2)},
        {"id": "g", "text": None}, {"id": "h", "note": {"text": [1]}, "text": "42"},
    ]
    fast = ingest([write_jsonl(tmp_path / "fast.jsonl", records)], OPTIONS)
    slow = ingest([write_jsonl(tmp_path / "slow.jsonl", records + ["{broken"])], OPTIONS)

    def outcome(got):
        return (got.documents.select("doc_id", "text").rows(),
                got.rejects.filter(pl.col("reason") != "unreadable_record").select("doc_id", "reason", "detail").rows())

    assert outcome(fast) == outcome(slow)
    assert outcome(fast)[0] == [("3", article(2)), ("a", article(0)), ("f", "{}"), ("h", "42")]
    assert [r[1] for r in outcome(fast)[1]] == ["text_not_string"] * 4 + ["id_not_scalar", "empty_text"]
