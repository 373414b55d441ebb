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
