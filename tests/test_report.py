"""``report.html``: self-contained, complete, escaped, capped; written by ``run`` and ``report``.

What the page looks like in a browser is ``tests/test_report_browser.py``; these
tests read the file itself.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import provenance
from provenance import report
from provenance.config import Config, ReportOptions
from provenance.errors import ProvenanceError
from provenance.prepare.normalize import normalize_expr
from provenance.report.page import script_json
from tests.fixtures import COMMENT_PAYLOAD, IMG_PAYLOAD, SCRIPT_PAYLOAD, hostile_corpus

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def hostile_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    out = base / "out"
    provenance.run([hostile_corpus(base / "in")], out_dir=out)
    report.write_report(out)
    return out


def blocks(page: str) -> dict[str, str]:
    """The JSON data blocks of a page by id."""
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, flags=re.DOTALL))


def scripts(page: str) -> list[str]:
    """The bodies of the page's executable (inline) scripts."""
    return re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)


def test_a_report_names_the_folder_it_is_shown_as(seeds_out: Path, tmp_path: Path) -> None:
    info = report.write_report(seeds_out, tmp_path / "r.html", shown_as="/data/out")
    page = info.path.read_text(encoding="utf-8")
    assert "<title>provenance report: /data/out</title>" in page and str(seeds_out) not in page.split("</title>")[0]


def test_report_is_written_next_to_the_outputs(seeds_out: Path) -> None:
    path = seeds_out / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert (path.stat().st_mode & 0o777) == 0o644
    assert not list(seeds_out.glob(".report.html.*"))  # no temp file left behind


def test_report_needs_no_network(seeds_out: Path) -> None:
    page = (seeds_out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, flags=re.IGNORECASE)
    assert not re.search(r"\b(src|href)\s*=", page, flags=re.IGNORECASE)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # url(#arrow): a marker in the page
    assert re.findall(r"https?://[^\s'\"]+", page) == ["http://www.w3.org/2000/svg"]  # an XML namespace, not a request
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "connect-src" not in csp
    for body in scripts(page):  # only the page's own scripts may run, by hash
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert len(scripts(page)) == 2 and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_report_embeds_index_trees_and_diffs(seeds_out: Path) -> None:
    page = (seeds_out / "report.html").read_text(encoding="utf-8")
    data = {key: json.loads(value) for key, value in blocks(page).items()}
    index, meta = data["index"], data["meta"]
    assert index["id"] == ["cd53ba18e13706d1f"] and index["size"] == [4] and index["copies"] == [2]
    assert index["depth"] == [2] and index["spun"] == [0.667] and index["diffs"] == [3]
    assert meta["counts"] == {"documents": 5, "edges": 3, "clusters": 2, "multi": 1, "singletons": 1, "rejected": 0}
    assert meta["embedded_diffs"] == 3

    tree = data["t0"]
    assert [d[:3] for d in tree["id"]] == ["001", "000", "002", "003"]  # by depth, then id
    assert tree["p"] == [-1, 0, 0, 1] and tree["k"][0] is None and tree["k"][1:] == ["mixed"] * 3
    assert meta["labels"][tree["s"][0]].endswith("seeds/001_fd0841c764a90927.txt")  # no publisher: the source file

    edges = pl.read_parquet(seeds_out / "edges.parquet")
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    diffs = data["d0"]
    assert sorted(diffs) == ["1", "2", "3"]
    for k, entry in diffs.items():
        child = tree["id"][int(k)]
        edge = edges.filter(pl.col("child_id") == child).row(0, named=True)
        ops = [seg[0] for seg in entry["s"]]
        assert set(ops) <= {"=", "+", "-", "~"} and not entry["cap"]
        child_text = "".join(seg[1] if seg[0] in "=+" else seg[2] if seg[0] == "~" else "" for seg in entry["s"])
        expected = docs.filter(pl.col("doc_id") == child).select(normalize_expr(pl.col("text"))).item()
        assert child_text == expected
        inserted = sum(len(re.findall(r"\w+", seg[1])) for seg in entry["s"] if seg[0] == "+")
        assert inserted == edge["inserted"]
        evidence = pl.read_parquet(seeds_out / "evidence.parquet").filter(pl.col("child_id") == child)
        assert [p[:3] for p in entry["p"]] == [[r["kind"], r["tokens"], round(r["similarity"], 2)] for r in evidence.iter_rows(named=True)]
        child_raw = docs.filter(pl.col("doc_id") == child)["text"].item()
        for p, r in zip(entry["p"], evidence.iter_rows(named=True)):
            assert child_raw[r["child_start"] : r["child_end"]].startswith(p[3].rstrip("\u2026"))


def test_hostile_text_is_escaped_in_the_page(hostile_out: Path) -> None:
    page = (hostile_out / "report.html").read_text(encoding="utf-8")
    # Every `<script` in the page is one of ours: 2 inline scripts and one JSON block per data kind.
    assert page.count("<script") == len(scripts(page)) + len(blocks(page))
    assert page.count("</script>") == page.count("<script")
    for payload in (SCRIPT_PAYLOAD, IMG_PAYLOAD, COMMENT_PAYLOAD, "<b>bold</b>", "<img"):
        assert payload not in page
    assert "<!--" not in page
    # ... and the data still carries the payloads verbatim once parsed.
    data = {key: json.loads(value) for key, value in blocks(page).items()}
    tree = data["t0"]
    assert any(SCRIPT_PAYLOAD in title and IMG_PAYLOAD in title for title in tree["t"])
    assert f"Daily {IMG_PAYLOAD}" in data["meta"]["labels"] and "</script>" in data["meta"]["labels"]
    assert any("<b>bold</b>" in seg[-1] for entry in data["d0"].values() for seg in entry["s"])
    assert data["index"]["date"] == ["2024-03-01 08:00"]


def test_script_json_escapes_html_breakers() -> None:
    text = script_json({"t": "</script><!-- & \u2028 >"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028 >"}


def test_caps_on_embedded_diffs(seeds_out: Path, tmp_path: Path) -> None:
    capped = report.write_report(seeds_out, tmp_path / "capped.html", ReportOptions(diff_edges=2, diff_edges_per_cluster=1))
    data = blocks(capped.path.read_text(encoding="utf-8"))
    assert capped.diff_edges == 1 and list(json.loads(data["d0"])) == ["1"]  # the edge nearest the origin
    none = report.write_report(seeds_out, tmp_path / "none.html", ReportOptions(diff_edges=0))
    assert none.diff_edges == 0 and "d0" not in blocks(none.path.read_text(encoding="utf-8"))
    assert none.bytes < capped.bytes


def test_report_is_deterministic(seeds_out: Path, tmp_path: Path) -> None:
    first = report.write_report(seeds_out, tmp_path / "a.html").path.read_bytes()
    second = report.write_report(seeds_out, tmp_path / "b.html").path.read_bytes()
    assert first == second


def test_report_of_a_run_without_copies(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "only.txt").write_text(" ".join(f"Word{i} stands alone in this single document." for i in range(10)))
    out = tmp_path / "out"
    provenance.run([folder], out_dir=out)
    info = report.write_report(out)
    data = {key: json.loads(value) for key, value in blocks(info.path.read_text(encoding="utf-8")).items()}
    assert info.clusters == 0 and data["index"]["id"] == [] and data["meta"]["counts"]["singletons"] == 1


def test_report_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="does not exist"):
        report.write_report(tmp_path / "missing")


def test_cli_run_and_report_write_the_page(tmp_path: Path) -> None:
    from provenance_cli.main import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(ROOT / "seeds"), "--out", str(out), "--engine", "local"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and "report" in result.stdout
    (out / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--diffs", "1"])
    assert result.exit_code == 0, result.output
    assert "aligned texts for 1 of 3 edges" in result.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert html.escape(str(out)) in page


def test_report_options_default_to_the_runs_and_the_command_overrides_them(tmp_path: Path) -> None:
    """``-o diff_edges_per_cluster=1 -o title_chars=12`` at run time shape the page the run writes and
    every later ``provenance report``; ``--diffs`` and ``--diffs-per-cluster`` override them."""
    from provenance_cli.main import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(SEEDS), "--out", str(out), "--engine", "local",
                                      "-o", "diff_edges_per_cluster=1", "-o", "title_chars=12"])
    assert result.exit_code == 0, result.output

    def page_data() -> dict:
        return {key: json.loads(value) for key, value in blocks((out / "report.html").read_text(encoding="utf-8")).items()}

    data = page_data()
    assert data["meta"]["embedded_diffs"] == 1 and list(data["d0"]) == ["1"]
    assert data["meta"]["caps"] == {"edges": 1_000, "per_cluster": 1, "chars": 20_000_000}
    assert data["index"]["title"] == ["Russia stres"] and all(len(t) <= 12 for t in data["t0"]["t"])
    assert data["meta"]["inputs"] == [str(SEEDS)] and data["meta"]["version"] == provenance.__version__

    again = CliRunner().invoke(app, ["report", "--out", str(out)])
    assert again.exit_code == 0 and "aligned texts for 1 of 3 edges" in again.stdout, again.output
    wider = CliRunner().invoke(app, ["report", "--out", str(out), "--diffs-per-cluster", "2"])
    assert "aligned texts for 2 of 3 edges" in wider.stdout, wider.output
    assert page_data()["index"]["title"] == ["Russia stres"]  # the run's other report options still hold
    none = CliRunner().invoke(app, ["report", "--out", str(out), "--diffs", "0"])
    assert "aligned texts for 0 of 3 edges" in none.stdout and "d0" not in page_data()
    elsewhere = tmp_path / "elsewhere.html"
    CliRunner().invoke(app, ["report", "--out", str(out), "--file", str(elsewhere)])
    assert elsewhere.is_file() and blocks(elsewhere.read_text(encoding="utf-8")).keys() >= {"meta", "index", "t0", "d0"}


def test_the_character_cap_keeps_whole_clusters_largest_first(tmp_path: Path) -> None:
    from tests.fixtures import make_article, spin, truncate

    folder = tmp_path / "in"
    folder.mkdir()
    docs = {"a0": make_article(0), "a1": spin(make_article(0), 0.3, seed=2), "a2": truncate(make_article(0), 0.7),
            "b0": make_article(1), "b1": truncate(make_article(1), 0.6)}
    for name, text in docs.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    provenance.run([folder], out_dir=out)
    full = report.write_report(out, tmp_path / "full.html")
    data = blocks(full.path.read_text(encoding="utf-8"))
    assert json.loads(data["index"])["size"] == [3, 2] and full.diff_edges == 3
    both = len(data["d0"]) + len(data["d1"])
    for chars, diffs in ((1, [2, 0]), (both - 1, [2, 0]), (both, [2, 1])):  # the first cluster is never cut
        capped = report.write_report(out, tmp_path / "capped.html", ReportOptions(diff_chars=chars))
        kept = blocks(capped.path.read_text(encoding="utf-8"))
        assert json.loads(kept["index"])["diffs"] == diffs and capped.diff_edges == sum(diffs), chars
        assert kept["d0"] == data["d0"] and ("d1" in kept) == (diffs[1] > 0)
    # the page is made from the outputs alone: the config of the run changes nothing but through run.json
    assert report.write_report(out, tmp_path / "again.html", Config().report).path.read_bytes() == full.path.read_bytes()


# ---------------------------------------------------------------------------- search texts, singletons, urls, evidence


def page_blocks(path: Path) -> dict:
    return {key: json.loads(value) for key, value in blocks(path.read_text(encoding="utf-8")).items()}


def side_text(entry: dict, side: str) -> str:
    """One side of an embedded diff, rebuilt from its segments (what the page's script does)."""
    if side == "child":
        return "".join(seg[1] if seg[0] in "=+" else seg[2] if seg[0] == "~" else "" for seg in entry["s"])
    return "".join((seg[2] if len(seg) > 2 else seg[1]) if seg[0] == "=" else seg[1] if seg[0] in "-~" else "" for seg in entry["s"])


def normalised(docs: pl.DataFrame) -> dict[str, str]:
    return dict(docs.select("doc_id", normalize_expr(pl.col("text"))).iter_rows())


SINGLE = "004_168d10991dd40f8a"  # the seeds' document without copies


def test_every_document_text_is_in_the_page_once(seeds_out: Path, tmp_path: Path) -> None:
    """Search reads every member's text: from an embedded diff when one holds it whole, else from ``x{ci}``
    (never both), and the document without copies has its own; with no diffs all texts sit in ``x``."""
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    texts = normalised(docs)
    data = page_blocks(seeds_out / "report.html")
    tree, x, diffs = data["t0"], data["x0"]["x"], data["d0"]
    from_diffs: dict[str, str] = {}
    for k, entry in diffs.items():
        from_diffs[tree["id"][int(k)]] = side_text(entry, "child")
        from_diffs[tree["id"][tree["p"][int(k)]]] = side_text(entry, "parent")
    for k, doc in enumerate(tree["id"]):
        assert (x[k] is None) == (doc in from_diffs)  # once
        assert (x[k] if x[k] is not None else from_diffs[doc]) == texts[doc]
    assert data["singles"]["id"] == [SINGLE] and data["xs"]["x"] == [texts[SINGLE]]
    assert data["meta"]["with_text"] == 5 and data["meta"]["in_page"] == 5

    bare = page_blocks(report.write_report(seeds_out, tmp_path / "bare.html", ReportOptions(diff_edges=0)).path)
    assert bare["x0"]["x"] == [texts[d] for d in bare["t0"]["id"]] and "d0" not in bare


def test_text_and_singleton_caps(seeds_out: Path, tmp_path: Path) -> None:
    """Past ``text_chars`` a text is left out (search then reads its title, publisher and id); past
    ``singleton_limit`` documents without copies are counted, not listed."""
    capped = ReportOptions(diff_edges=0, text_chars=0, singleton_limit=0)
    data = page_blocks(report.write_report(seeds_out, tmp_path / "capped.html", capped).path)
    assert data["x0"]["x"] == [None] * 4 and data["singles"]["id"] == [] and data["xs"]["x"] == []
    assert data["meta"]["with_text"] == 0 and data["meta"]["singles_listed"] == 0 and data["meta"]["singles_total"] == 1
    roomy = ReportOptions(diff_edges=0, text_chars=10**9, singleton_limit=10)
    data = page_blocks(report.write_report(seeds_out, tmp_path / "full.html", roomy).path)
    assert None not in data["x0"]["x"] and data["meta"]["with_text"] == 5 and data["singles"]["id"] == [SINGLE]


def test_evidence_offsets_point_into_the_normalised_texts(seeds_out: Path) -> None:
    """Each passage's offsets (``parent_start`` ... ``child_end`` of evidence.parquet, raw text) are carried over to
    the normalised texts the diff shows: slicing those gives the normalised passage."""
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    raw = dict(docs.select("doc_id", "text").iter_rows())
    evidence = pl.read_parquet(seeds_out / "evidence.parquet")
    data = page_blocks(seeds_out / "report.html")
    tree, checked = data["t0"], 0
    for k, entry in data["d0"].items():
        child, parent = tree["id"][int(k)], tree["id"][tree["p"][int(k)]]
        rows = evidence.filter(pl.col("child_id") == child, pl.col("parent_id") == parent).iter_rows(named=True)
        for p, row in zip(entry["p"], rows):
            for side, doc, start, end in (("parent", parent, 4, 5), ("child", child, 6, 7)):
                want = pl.select(normalize_expr(pl.lit(raw[doc][row[f"{side}_start"]: row[f"{side}_end"]]))).item()
                assert side_text(entry, side)[p[start]: p[end]] == want, (side, doc)
                checked += 1
    assert checked == 2 * evidence.height


def test_members_carry_urls_and_both_confidences(tmp_path: Path) -> None:
    """``url`` (any text: the page links only http(s)), ``copy_confidence`` and ``parent_confidence`` per member;
    the page source holds the hostile address only inside escaped JSON."""
    from tests.test_report_browser import HOSTILE_URLS, hostile_with_urls

    out = tmp_path / "out"
    provenance.run([hostile_with_urls(tmp_path / "in")], out_dir=out)
    info = report.write_report(out)
    page = info.path.read_text(encoding="utf-8")
    tree = page_blocks(info.path)["t0"]
    assert dict(zip(tree["id"], tree["u"])) == HOSTILE_URLS
    edges = pl.read_parquet(out / "edges.parquet")
    k = tree["id"].index(edges["child_id"].item())
    assert tree["cc"][k] == round(edges["copy_confidence"].item(), 3) and tree["pc"][k] == round(edges["parent_confidence"].item(), 3)
    assert tree["cc"][tree["p"].index(-1)] is None
    assert "<img" not in page and "javascript:" in page.split('id="t0">')[1]  # data, in an escaped JSON block


def test_document_without_copies_rows(seeds_out: Path) -> None:
    data = page_blocks(seeds_out / "report.html")
    single = pl.read_parquet(seeds_out / "documents.parquet").filter(pl.col("doc_id") == SINGLE).row(0, named=True)
    sg = data["singles"]
    assert sg["t"] == [single["title"]] and sg["n"] == [single["n_tokens"]] and sg["u"] == [None] and sg["d"] == [None]
    assert data["meta"]["labels"][sg["s"][0]] == single["source"]
