"""The report as a person sees it: rendered by headless Chromium.

Each test loads ``report.html`` with ``chromium --headless --dump-dom`` (the
DOM after the page's scripts ran) and reads Chromium's console log
(``--enable-logging=stderr``): a script error, a blocked request or a
Content-Security-Policy violation all show up there.  The page also records
its own uncaught errors on ``<html data-js-errors>`` and marks
``<html data-ready>`` when it has drawn.

Chromium is the Debian ``chromium`` package (``.ci/run`` installs it).
Without it the tests skip, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

import provenance
from provenance import report
from provenance.config import ReportOptions
from tests.fixtures import IMG_PAYLOAD, SCRIPT_PAYLOAD, hostile_corpus

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "cd53ba18e13706d1f"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--enable-logging=stderr", "--v=0",
]


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("headless Chromium is required under CI: .ci/run installs the Debian 'chromium' package")
    pytest.skip("the report's browser tests need Chromium: apt-get install -y chromium (or set CHROMIUM=/path)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    binary = find_chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(url: str, *extra: str) -> tuple[str, list[str]]:
        proc = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        return proc.stdout, console

    def load(path: Path, fragment: str = "") -> str:
        dom, console = run(path.resolve().as_uri() + fragment, "--dump-dom")
        assert console == [], "\n".join(console)  # no script error, no CSP violation, no blocked request
        html_tag = re.match(r"(?:<!DOCTYPE html>\s*)?(<html[^>]*>)", dom).group(1)
        assert "data-js-errors" not in html_tag, html_tag  # the page's own record of uncaught errors
        assert re.search(r' data-ready="\d+"', html_tag), "the page never finished drawing"
        return dom

    run.load = load  # type: ignore[attr-defined]
    return run




def nodes(dom: str) -> list[str]:
    return re.findall(r'<g class="node[^"]*"[^>]*>', dom)


def test_seeds_report_shows_the_tree_and_the_highlighted_diff(browser, seeds_out: Path) -> None:
    dom = browser.load(seeds_out / "report.html")

    # The index: the one cluster with copies, selected.
    rows = re.findall(r'<tr[^>]*data-ci="\d+"[^>]*>.*?</tr>', dom, flags=re.DOTALL)
    assert len(rows) == 1 and 'class="sel"' in rows[0] and "Russia stresses China" in rows[0]
    # The tree: an SVG with the four versions, the origin marked, every arrow labelled with its kind and confidence.
    assert '<svg class="tree"' in dom
    assert len(nodes(dom)) == 4 and sum('origin' in n for n in nodes(dom)) == 1
    labels = re.findall(r'<g class="elabel">.*?<text[^>]*>([^<]*)</text>', dom, flags=re.DOTALL)
    edges = pl.read_parquet(seeds_out / "edges.parquet")
    expected = [f"{kind} · {conf:.2f}" for kind, conf in zip(edges["change_kind"].to_list(), edges["confidence"].to_list())]
    assert sorted(labels) == sorted(expected)
    assert "seeds/002_24a27329389551e6.txt" in dom  # node labels carry the source
    # The diff of the first copy (001 -> 000), side by side, with all three kinds of change highlighted.
    assert "What changed: 001_fd0841c764a90927 → 000_e899f24a2be5ae4a" in dom
    diff = re.search(r'<table class="diff">.*?</table>', dom, flags=re.DOTALL).group(0)
    assert re.search(r"<ins>[^<]*\w", diff) and re.search(r"<del>[^<]*\w", diff)
    assert re.search(r'<mark class="sub old">reclaimed\s*</mark>', diff)  # a word swap; "stresses -> plays up" is rewritten text
    assert len(re.findall(r"<tr>", diff)) > 10


def test_a_link_opens_one_copy(browser, seeds_out: Path) -> None:
    dom = browser.load(seeds_out / "report.html", f"#c={CLUSTER}&e=002_24a27329389551e6")

    selected = [n for n in nodes(dom) if " sel" in n]
    assert len(selected) == 1 and 'data-k="2"' in selected[0]
    assert "What changed: 001_fd0841c764a90927 → 002_24a27329389551e6" in dom
    assert re.search(r'<mark class="sub old">war\s*</mark>', dom) and re.search(r'<mark class="sub">conflict\s*</mark>', dom)
    assert "war -&gt; conflict" in dom  # substitution examples


def test_an_edge_beyond_the_cap_shows_the_command(browser, seeds_out: Path, tmp_path: Path) -> None:
    capped = report.write_report(seeds_out, tmp_path / "capped.html", ReportOptions(diff_edges=1)).path
    dom = browser.load(capped, f"#c={CLUSTER}&e=003_3d0ebdbd1c5cc7ca")

    assert '<table class="diff">' not in dom
    assert f"provenance diff 000_e899f24a2be5ae4a 003_3d0ebdbd1c5cc7ca --out {seeds_out}" in dom


def test_hostile_text_renders_as_text(browser, tmp_path: Path) -> None:
    out = tmp_path / "out"
    provenance.run([hostile_corpus(tmp_path / "in")], out_dir=out)
    report.write_report(out)

    dom = browser.load(out / "report.html", "#c=&e=hostile-b")
    head = dom.split("<body", 1)
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, flags=re.DOTALL).group(1)
    assert not re.search(r"<img\b", head[1], flags=re.IGNORECASE) and "<b>bold" not in head[1]  # no element made from text
    # ... all of it shown as text: in the tree, the node labels and the diff.
    assert html_text(SCRIPT_PAYLOAD) in head[1] and html_text(IMG_PAYLOAD) in head[1]
    assert re.search(r"<ins>[^<]*&lt;b&gt;bold&lt;/b&gt;", head[1])
    assert "2024-03-01 08:00" in dom  # published_at labels the nodes


def html_text(text: str) -> str:
    """``text`` as Chromium serialises it inside an element."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_a_run_without_copies_says_so(browser, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "only.txt").write_text(" ".join(f"Word{i} stands alone in this single document." for i in range(10)))
    out = tmp_path / "out"
    provenance.run([folder], out_dir=out)
    report.write_report(out)

    dom = browser.load(out / "report.html")
    assert "No document has a copy in this run" in dom


def test_screenshot_paints_the_page(browser, seeds_out: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _, console = browser(
        (seeds_out / "report.html").resolve().as_uri(), f"--screenshot={shot}", "--window-size=1400,900", "--hide-scrollbars",
    )
    assert console == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page is a few kB
