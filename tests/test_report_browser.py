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
import time
import subprocess
from pathlib import Path

import polars as pl
import pytest

import provenance
from provenance import report
from provenance.config import ReportOptions
from provenance.prepare.normalize import normalize_expr
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
    assert re.search(r'<svg class="tree( vertical)?"', dom)  # a narrow window (800 px) draws it top to bottom
    assert len(nodes(dom)) == 4 and sum('origin' in n for n in nodes(dom)) == 1
    labels = re.findall(r'<g class="elabel"[^>]*>.*?<text[^>]*>([^<]*)</text>', dom, flags=re.DOTALL)
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


# ---------------------------------------------------------------------------- search, filters, layout, links


def index_rows(dom: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-(?:ci|doc)="[^"]*"[^>]*>.*?</tr>', dom, flags=re.DOTALL)


def count_text(dom: str) -> str:
    return re.search(r'id="count"[^>]*>([^<]*)<', dom).group(1)


def test_search_reads_every_members_text_and_documents_without_copies(browser, seeds_out: Path) -> None:
    """A word only a copy's text holds (002's, none of the other documents') finds the cluster, and a word only the
    document without copies holds finds it once they are included."""
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    words = {d: set(re.findall(r"[a-z]{6,}", t.lower())) for d, t in docs.select("doc_id", "text").iter_rows()}
    own = sorted(words["002_24a27329389551e6"] - set().union(*(w for d, w in words.items() if d != "002_24a27329389551e6")))
    assert own
    dom = browser.load(seeds_out / "report.html", f"#q={own[0]}")
    rows = index_rows(dom)
    assert len(rows) == 1 and "1 of 4 match" in rows[0] and count_text(dom) == "1 of 1 cluster"
    hits = re.findall(r'<g class="node[^"]*hit[^"]*"[^>]*data-k="(\d+)"', dom)
    assert [docs_k for docs_k in hits] == ["2"]  # 002, marked in the tree
    assert "What changed: 001_fd0841c764a90927 → 002_24a27329389551e6" in dom  # the first matching copy opens
    assert re.search(rf'<p class="note match">Search “{own[0]}”: text — …[^<]*<mark class="q">{own[0]}</mark>', dom)

    single = docs.join(pl.read_parquet(seeds_out / "clusters.parquet").filter(pl.col("size") == 1), on="cluster_id")
    word = next(w for w in re.findall(r"[a-z]{7,}", single["text"].item().lower()) if w not in " ".join(docs.filter(
        pl.col("cluster_id") == CLUSTER)["text"].to_list()).lower())
    none = browser.load(seeds_out / "report.html", f"#q={word}")
    assert index_rows(none) == [] and "Nothing matches the filters." in none
    found = browser.load(seeds_out / "report.html", f"#q={word}&single=1")
    rows = index_rows(found)
    assert len(rows) == 1 and f'data-doc="{single["doc_id"].item()}"' in rows[0] and "no copies" in rows[0]


def test_a_document_without_copies_opens_with_its_text(browser, seeds_out: Path) -> None:
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    single = docs.join(pl.read_parquet(seeds_out / "clusters.parquet").filter(pl.col("size") == 1), on="cluster_id").row(0, named=True)
    dom = browser.load(seeds_out / "report.html", f"#d={single['doc_id']}")
    assert "No other document in this run is a version of this one." in dom
    assert html_text(single["title"]) in dom and html_text(single["text"].split("\n")[-1].strip()[:60]) in dom
    assert count_text(dom) == "1 cluster + 1 single"  # opening one lists the documents without copies


def test_edge_filters_select_by_kind_and_confidence(browser, seeds_out: Path) -> None:
    """Every seeds edge is ``mixed`` with copy_confidence 1.0: the kind and ranges keep or drop the cluster."""
    edges = pl.read_parquet(seeds_out / "edges.parquet")
    assert set(edges["change_kind"]) == {"mixed"} and edges["copy_confidence"].min() > 0.9
    page = seeds_out / "report.html"
    assert len(index_rows(browser.load(page, "#kind=mixed&ccmin=0.9"))) == 1
    assert index_rows(browser.load(page, "#kind=copy")) == []
    assert index_rows(browser.load(page, "#ccmax=0.5")) == []
    low = round(float(edges["parent_confidence"].min()), 3)
    kept = browser.load(page, f"#pcmax={low}")
    assert "match" in index_rows(kept)[0] and f"{(edges['parent_confidence'].round(3) <= low).sum()} of 4 match" in index_rows(kept)[0]
    assert re.search(r'<select id="f-kind"', kept) and 'value="mixed"' in kept


def test_the_legend_explains_colours_and_confidences(browser, seeds_out: Path) -> None:
    dom = browser.load(seeds_out / "report.html")
    legend = re.search(r'<aside class="tree-legend".*?</aside>', dom, flags=re.DOTALL).group(0)
    for kind in ("copy", "truncation", "excerpt", "spin", "paraphrase", "insertion", "mixed"):
        assert f'<b>{kind}</b>' in legend
    assert "copy_confidence × parent_confidence" in legend and "not yet calibrated" in legend
    assert "probability that the child is a version of the parent’s text" in legend


def test_evidence_passages_are_marked_in_the_diff(browser, seeds_out: Path) -> None:
    dom = browser.load(seeds_out / "report.html", f"#c={CLUSTER}&e=002_24a27329389551e6")
    evidence = pl.read_parquet(seeds_out / "evidence.parquet").filter(pl.col("child_id") == "002_24a27329389551e6")
    diff = re.search(r'<table class="diff">.*?</table>', dom, flags=re.DOTALL).group(0)
    marked = re.findall(r'<span class="ev ev-(\w+)" data-p="(\d+)"', diff)
    assert {int(p) for _, p in marked} == set(range(evidence.height))
    assert {k for k, _ in marked} == set(evidence["kind"])
    # the copy's side of a passage holds the passage's own words (in the right cell of the diff rows)
    child_cells = re.findall(r"<tr><td>.*?</td><td>(.*?)</td></tr>", diff, flags=re.DOTALL)
    marked_text = re.sub(r"<[^>]+>", "", "".join(re.findall(r'<span class="ev[^"]*" data-p="0"[^>]*>(.*?)</span>(?=[^<]|<span|<ins|<mark|<del|$)',
                                                             "".join(child_cells))))
    docs = pl.read_parquet(seeds_out / "documents.parquet")
    first = evidence.row(0, named=True)
    raw = docs.filter(pl.col("doc_id") == first["child_id"]).select(
        normalize_expr(pl.col("text").str.slice(first["child_start"], first["child_end"] - first["child_start"]))).item()
    assert " ".join(raw.split()[:4]) in " ".join(marked_text.split())


def test_a_deep_tree_fits_the_window(browser, tmp_path: Path) -> None:
    """A chain of 7 versions (depth 6) drawn left to right is 2,352 px wide: at 1400 px it is laid out top to bottom."""
    from tests.fixtures import make_article, spin

    folder = tmp_path / "in"
    folder.mkdir()
    text = make_article(0, 16)
    for i in range(7):
        (folder / f"v{i}.txt").write_text(text, encoding="utf-8")
        text = spin(text + f"\n\nAdded paragraph number {i} says the council in Port Elric met again on day {i} to talk "
                    "about the ferry and the harbour works.", 0.06, seed=i)
    out = tmp_path / "out"
    provenance.run([folder], out_dir=out)
    assert pl.read_parquet(out / "documents.parquet")["depth"].max() >= 5
    report.write_report(out)
    dom, console = browser((out / "report.html").resolve().as_uri(), "--dump-dom", "--window-size=1400,1000")
    assert console == []
    svg = re.search(r'<svg class="tree vertical"[^>]*>', dom).group(0)
    assert int(re.search(r' width="(\d+)"', svg).group(1)) < 700 and "top to bottom" in dom
    wide = browser.load(out / "report.html")  # the default window is narrower still: same layout
    assert '<svg class="tree vertical"' in wide


def test_dates_draw_a_timeline_and_filter(browser, tmp_path: Path) -> None:
    out = tmp_path / "out"
    provenance.run([hostile_corpus(tmp_path / "in")], out_dir=out)
    report.write_report(out)
    dom = browser.load(out / "report.html")
    timeline = re.search(r'<svg class="timeline".*?</svg>', dom, flags=re.DOTALL).group(0)
    assert len(re.findall(r'<g class="tl', timeline)) == 2 and "Timeline (26 hours from first to last)" in dom
    assert "1 of 2 match" in index_rows(browser.load(out / "report.html", "#from=2024-03-02"))[0]
    assert index_rows(browser.load(out / "report.html", "#from=2024-03-03")) == []
    assert "2 of 2 match" in index_rows(browser.load(out / "report.html", "#to=2024-03-02"))[0]


HOSTILE_URLS = {
    "hostile-a": 'https://news.example/a?x="><img src=x onerror=alert(1)>',
    "hostile-b": "javascript:document.title='pwned'",
}


def hostile_with_urls(folder: Path) -> Path:
    """The hostile corpus with a ``url`` column: a real address with a payload in its query, and a ``javascript:`` one."""
    import json

    hostile_corpus(folder)
    path = folder / "docs.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row["url"] = HOSTILE_URLS[row["id"]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_urls_link_only_http_and_stay_inert(browser, tmp_path: Path) -> None:
    out = tmp_path / "out"
    provenance.run([hostile_with_urls(tmp_path / "in")], out_dir=out)
    report.write_report(out)
    dom = browser.load(out / "report.html", "#c=&e=hostile-b")
    body = dom.split("<body", 1)[1]
    links = re.findall(r"<a [^>]*>", body)
    assert links and all('rel="noopener noreferrer"' in a and 'href="https://news.example/a?x=%22%3E%3Cimg' in a for a in links)
    assert "javascript:" not in "".join(links) and not re.search(r"<img\b", body, flags=re.IGNORECASE)
    assert html_text("javascript:document.title='pwned'") in body  # shown, as text
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, flags=re.DOTALL).group(1)


# ---------------------------------------------------------------------------- interaction (DevTools protocol)


class Page:
    """One headless Chromium page driven over the DevTools protocol: typing, clicks, a real CSV download."""

    def __init__(self, binary: str, profile: Path, url: str, downloads: Path) -> None:
        import json
        import threading
        import urllib.request

        from websockets.sync.client import connect

        self._json = json
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,1000", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own process group
        )
        ready = threading.Event()
        self.browser_ws = ""

        def drain() -> None:  # Chromium's log: the DevTools address first, console messages later
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                if found:
                    self.browser_ws = found.group(1)
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        assert ready.wait(60), "\n".join(self.log[-20:])
        port = re.search(r":(\d+)/", self.browser_ws).group(1)
        for _ in range(100):
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            pages = [t for t in targets if t.get("type") == "page" and t.get("url", "").startswith("file:")]
            if pages:
                break
            time.sleep(0.1)
        self.page = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self.browser = connect(self.browser_ws, max_size=None)
        self._id = 0
        self.call(self.browser, "Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        self.until("location.protocol === 'file:' && document.readyState === 'complete' && "
                   "document.documentElement.hasAttribute('data-ready')")

    def call(self, ws, method: str, **params):
        self._id += 1
        ws.send(self._json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = self._json.loads(ws.recv(timeout=60))
            if msg.get("id") == self._id:
                assert "error" not in msg, msg
                return msg["result"]

    def js(self, expression: str):
        result = self.call(self.page, "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def until(self, expression: str, timeout: float = 30) -> None:
        """Wait for ``expression`` to hold (an exception counts as not yet: the page may still be navigating)."""
        end = time.monotonic() + timeout
        while True:
            result = self.call(self.page, "Runtime.evaluate", expression=f"!!({expression})", returnByValue=True)
            if "exceptionDetails" not in result and result["result"].get("value"):
                return
            assert time.monotonic() < end, f"timed out waiting for {expression}: {result}"
            time.sleep(0.05)

    def close(self) -> list[str]:
        import signal

        for ws in (self.page, self.browser):
            ws.close()
        try:  # the browser and every helper process it started (renderers, GPU, network): its process group
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
            time.sleep(0.5)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return [line for line in self.log if ":CONSOLE" in line or "Uncaught" in line]


def test_an_analyst_searches_filters_zooms_and_downloads_csv(seeds_out: Path, tmp_path: Path) -> None:
    """Typing, the kind filter, the tree buttons, a click on a node and the CSV button, in a real page: the
    downloaded file holds exactly the documents the filters show."""
    pytest.importorskip("websockets")
    import csv as csvlib

    docs = pl.read_parquet(seeds_out / "documents.parquet")
    words = {d: set(re.findall(r"[a-z]{6,}", t.lower())) for d, t in docs.select("doc_id", "text").iter_rows()}
    own = sorted(words["002_24a27329389551e6"] - set().union(*(w for d, w in words.items() if d != "002_24a27329389551e6")))[0]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page = Page(find_chromium(), tmp_path / "profile", (seeds_out / "report.html").resolve().as_uri(), downloads)
    try:
        count = "document.getElementById('count').textContent"
        assert page.js(count) == "1 cluster"
        page.js(f"var f = document.getElementById('filter'); f.value = {own!r}; f.dispatchEvent(new Event('input'))")
        page.until(f"{count} === '1 of 1 cluster'")  # once typing pauses
        assert f"q={own}" in page.js("location.hash")
        assert page.js("Array.from(document.querySelectorAll('#tree .node.hit')).map(n => n.getAttribute('data-k'))") == ["2"]

        page.js("document.getElementById('csv-docs').click()")
        target = downloads / "provenance-documents.csv"
        end = time.monotonic() + 30
        while not target.is_file() and time.monotonic() < end:
            time.sleep(0.1)
        rows = list(csvlib.DictReader(target.read_text(encoding="utf-8-sig").splitlines()))
        assert [(r["cluster_id"], r["doc_id"], r["parent_id"]) for r in rows] == [(CLUSTER, "002_24a27329389551e6", "001_fd0841c764a90927")]
        edge = pl.read_parquet(seeds_out / "edges.parquet").filter(pl.col("child_id") == "002_24a27329389551e6").row(0, named=True)
        assert float(rows[0]["copy_confidence"]) == round(edge["copy_confidence"], 3) and rows[0]["change_kind"] == "mixed"

        page.js("var k = document.getElementById('f-kind'); k.value = 'copy'; k.dispatchEvent(new Event('change'))")
        assert page.js(count) == "0 of 1 cluster"
        assert page.js("window.__report.documentsCsv().trim().split('\\r\\n').length") == 1  # the header alone
        page.js("document.getElementById('f-reset').click()")
        assert page.js(count) == "1 cluster" and page.js("document.getElementById('filter').value") == ""
        assert page.js("window.__report.documentsCsv().trim().split('\\r\\n').length") == 5  # header + 4 members

        zoom = "+document.querySelector('#tree svg').getAttribute('data-zoom')"
        page.js("document.querySelector('[data-act=one]').click()")
        assert page.js(zoom) == 1
        page.js("document.querySelector('[data-act=in]').click()")
        assert page.js(zoom) == 1.25
        page.js("document.querySelector('[data-act=fit]').click()")
        assert page.js("document.querySelector('#tree svg').getBoundingClientRect().width <= document.getElementById('tree').clientWidth")
        page.js("document.querySelector('[data-act=vertical]').click()")
        assert page.js("document.querySelector('#tree svg').classList.contains('vertical')")

        page.js("document.querySelector('#tree .node[data-k=\"3\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))")
        page.until("document.querySelector('#edge h3').textContent.indexOf('003_3d0ebdbd1c5cc7ca') >= 0")
        assert "e=003_3d0ebdbd1c5cc7ca" in page.js("location.hash")
        assert page.js("document.documentElement.getAttribute('data-js-errors')") is None
    finally:
        console = page.close()
    assert console == [], "\n".join(console)


def test_hostile_text_stays_inert_in_search_filters_timeline_and_csv(browser, tmp_path: Path) -> None:
    """The payloads reach the new parts of the page too (the match note, the publisher list, the timeline, the
    CSV) and stay text there; the CSV round-trips them exactly."""
    import csv as csvlib

    out = tmp_path / "out"
    provenance.run([hostile_with_urls(tmp_path / "in")], out_dir=out)
    report.write_report(out)
    dom = browser.load(out / "report.html", "#q=pwned&e=hostile-b")
    body = dom.split("<body", 1)[1]
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, flags=re.DOTALL).group(1)
    assert not re.search(r"<img\b", body, flags=re.IGNORECASE) and "<b>bold" not in body
    assert len(re.findall(r"<script\b", body)) == len(re.findall(r'<script type="application/json"', body)) + 1  # ours only
    assert re.search(r'<p class="note match">Search “pwned”: [^<]*<mark class="q">pwned</mark>', body)
    assert f'<option value="Daily {html_text(IMG_PAYLOAD).replace(chr(34), "&quot;")}"' in body  # the publisher list
    assert html_text(SCRIPT_PAYLOAD)[:30] in re.search(r'<svg class="timeline".*?</svg>', body, flags=re.DOTALL).group(0)

    page = Page(find_chromium(), tmp_path / "profile", (out / "report.html").resolve().as_uri(), tmp_path)
    try:
        text = page.js("window.__report.documentsCsv()")
    finally:
        console = page.close()
    assert console == []
    rows = list(csvlib.DictReader(text.splitlines(keepends=True)))
    docs = pl.read_parquet(out / "documents.parquet")
    expected = {d: (t[:160], p) for d, t, p in docs.select("doc_id", "title", "publisher").iter_rows()}
    assert {r["doc_id"]: (r["title"], r["publisher"]) for r in rows} == expected
    assert {r["doc_id"]: r["url"] for r in rows} == HOSTILE_URLS
