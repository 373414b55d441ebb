"""``provenance.query`` and the commands over it (origin, cluster, top, find, diff), on the seeds' outputs.

Also runs every DuckDB SQL example and every query command shown in the README
against the seeds' outputs, so the documentation cannot drift from the tool.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import provenance
from provenance import query
from provenance.config import ChangesOptions
from provenance.config import Config
from provenance.errors import ProvenanceError
from provenance.prepare.normalize import normalize_expr
from provenance.prepare.words import doc_words

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SPUN = "002_24a27329389551e6"  # a spun copy of the origin 001 (its opening spun from 000)
DEEP = "003_3d0ebdbd1c5cc7ca"  # copied from 000, which was copied from the origin 001
COPY = "000_e899f24a2be5ae4a"
ORIGIN = "001_fd0841c764a90927"
ALONE = "004_168d10991dd40f8a"


@pytest.fixture(scope="module")
def outputs(seeds_out: Path) -> query.Outputs:
    return query.open_outputs(seeds_out)


MAX_TOKENS = Config().changes.max_align_tokens


@pytest.fixture(scope="module")
def capped_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds run with alignments capped at 30 tokens a side (``-o max_align_tokens=30``)."""
    out = tmp_path_factory.mktemp("capped_out")
    provenance.run([ROOT / "seeds"], Config().replace(max_align_tokens=30), out_dir=out)
    return out


def cli(*args: str | Path):
    from provenance_cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------------------- the library


def test_origin_walks_the_path_to_the_origin(outputs: query.Outputs) -> None:
    result = query.origin(outputs, DEEP)

    assert [step["doc_id"] for step in result["path"]] == [DEEP, COPY, ORIGIN]
    assert result["origin_id"] == ORIGIN and not result["is_origin"]
    assert result["cluster_size"] == 4
    edges = pl.read_parquet(outputs.out_dir / "edges.parquet")
    by_child = {row["child_id"]: row for row in edges.iter_rows(named=True)}
    for step in result["path"][:-1]:
        assert step["parent_id"] == by_child[step["doc_id"]]["parent_id"]
        assert step["confidence"] == by_child[step["doc_id"]]["confidence"]
        assert step["change_kind"] == by_child[step["doc_id"]]["change_kind"]
    assert result["path"][-1]["change_kind"] is None  # the origin has no incoming edge
    expected = by_child[DEEP]["confidence"] * by_child[COPY]["confidence"]
    assert result["path_confidence"] == pytest.approx(expected, abs=1e-6)


def test_origin_of_an_origin_and_of_a_singleton(outputs: query.Outputs) -> None:
    for doc in (ORIGIN, ALONE):
        result = query.origin(outputs, doc)
        assert result["is_origin"] and result["origin_id"] == doc and len(result["path"]) == 1
        assert result["path_confidence"] == 1.0


def test_unknown_ids_and_missing_folders_are_user_errors(outputs: query.Outputs, tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="unknown document 'nope'"):
        query.origin(outputs, "nope")
    with pytest.raises(ProvenanceError, match="no cluster or document 'cnope'"):
        query.cluster(outputs, "cnope")
    with pytest.raises(ProvenanceError, match="does not exist"):
        query.open_outputs(tmp_path / "missing")
    with pytest.raises(ProvenanceError, match="documents.parquet"):
        query.open_outputs(tmp_path)
    with pytest.raises(ProvenanceError, match="--by must be one of"):
        query.top(outputs, "nope")


def test_cluster_from_a_cluster_id_or_a_member_id_is_the_same_tree(outputs: query.Outputs) -> None:
    by_doc = query.cluster(outputs, SPUN)
    by_id = query.cluster(outputs, by_doc["cluster"]["cluster_id"])

    assert by_doc == by_id
    members = by_doc["members"]
    assert [(m["guide"], m["doc_id"][:3]) for m in members] == [
        ("", "001"), ("├─ ", "000"), ("│  └─ ", "003"), ("└─ ", "002"),
    ]
    assert [m["level"] for m in members] == [m["depth"] for m in members] == [0, 1, 2, 1]
    assert members[0]["change_kind"] is None and all(m["change_kind"] for m in members[1:])
    assert by_doc["cluster"]["size"] == 4


def test_tree_order_survives_cycles_and_orphans() -> None:
    order = query.tree_order(["a", "b", "c", "d"], [None, "a", "d", "c"])  # c <-> d: corrupt data
    assert sorted(row for row, _, _ in order) == [0, 1, 2, 3]
    assert order[0] == (0, 0, "") and order[1] == (1, 1, "└─ ")


def test_top_ranks_by_each_key(outputs: query.Outputs) -> None:
    for by in query.TOP_KEYS:
        ranked = query.top(outputs, by)
        assert ranked.height == 1  # only multi-document clusters are ranked
        row = ranked.row(0, named=True)
        assert (row["size"], row["copies"], row["spun"], row["max_depth"]) == (4, 2, 2, 2)  # 003 is rewritten more than spun
        assert row["origin_id"] == ORIGIN


def test_top_orders_many_clusters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    clusters = pl.DataFrame({
        "cluster_id": ["ca", "cb", "cc", "cd", "ce"], "size": [3, 5, 3, 1, 4], "origin_id": ["a0", "b0", "c0", "d0", "e0"],
        "origin_title": ["A", "B", "C", "D", "E"], "max_depth": [2, 1, 1, 0, 3], "n_exact_duplicates": [0] * 5,
        "mean_confidence": [0.9, 0.8, 0.7, 0.0, 0.6], "share_spun": [1.0, 0.25, 0.0, 0.0, 0.0], "share_truncated": [0.0] * 5,
    }, schema_overrides={"size": pl.Int32, "max_depth": pl.Int32, "n_exact_duplicates": pl.Int32})
    edges = pl.DataFrame({
        "cluster_id": ["ca", "ca", "cb", "cb", "cb", "cb", "cc", "cc", "ce", "ce", "ce"],
        "parent_id": ["a0", "a1", "b0", "b0", "b0", "b1", "c0", "c0", "e0", "e1", "e2"],
        "child_id": ["a1", "a2", "b1", "b2", "b3", "b4", "c1", "c2", "e1", "e2", "e3"],
        "spin_rate": [0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    })
    clusters.write_parquet(out / "clusters.parquet")
    edges.write_parquet(out / "edges.parquet")
    pl.DataFrame({"doc_id": ["x"]}).write_parquet(out / "documents.parquet")
    outputs = query.open_outputs(out)

    assert query.top(outputs, "size")["cluster_id"].to_list() == ["cb", "ce", "ca", "cc"]  # ties by id
    assert query.top(outputs, "copies")["cluster_id"].to_list() == ["cb", "cc", "ce", "ca"]  # 3, 2, then 1 by size
    assert query.top(outputs, "spin")["cluster_id"].to_list() == ["ca", "cb", "ce", "cc"]  # 2 spun, 1, then 0 by size
    assert query.top(outputs, "depth")["cluster_id"].to_list() == ["ce", "ca", "cb", "cc"]  # 3, 2, then 1 by size
    assert query.top(outputs, "size", limit=2)["cluster_id"].to_list() == ["cb", "ce"]
    row = query.top(outputs, "size", limit=None).row(0, named=True)
    assert (row["copies"], row["spun"], row["mean_spin_rate"]) == (3, 1, 0.025)


@pytest.mark.parametrize("phrase", ["china's support", "CHINA’S   SUPPORT", "China\u2019s\nsupport", "  china's support  "])
def test_find_ignores_case_white_space_and_quote_style(outputs: query.Outputs, phrase: str) -> None:
    found, total = query.find(outputs, phrase)
    assert total == 1
    row = found.row(0, named=True)
    assert row["size"] == 4 and row["matches"] == 3 and row["origin_id"] == ORIGIN
    assert re.search(r"(?i)china.s support", row["snippet"])


def test_find_regex_characters_are_literal(outputs: query.Outputs) -> None:
    assert query.find(outputs, "support.*Ukraine")[1] == 0
    assert query.find(outputs, "(Xi")[1] == 0 and query.find(outputs, "[Putin]")[1] == 0
    assert query.find(outputs, "Putin and Xi")[1] >= 1
    with pytest.raises(ProvenanceError, match="empty"):
        query.find(outputs, "   ")


def test_diff_counts_are_the_edges_counts(outputs: query.Outputs) -> None:
    edges = pl.read_parquet(outputs.out_dir / "edges.parquet")
    for edge in edges.iter_rows(named=True):
        result = query.diff(outputs, edge["parent_id"], edge["child_id"])
        counts = result["alignment"].counts
        for key in ("kept", "inserted", "deleted", "substituted", "parent_tokens", "child_tokens"):
            assert counts[key] == edge[key], (edge["child_id"], key)
        assert result["edge"]["change_kind"] == edge["change_kind"]


def test_diff_segments_rebuild_both_texts(outputs: query.Outputs) -> None:
    docs = pl.read_parquet(outputs.out_dir / "documents.parquet")
    texts = dict(zip(docs["doc_id"], docs.select(normalize_expr(pl.col("text")))["text"]))
    alignment = query.diff(outputs, COPY, SPUN)["alignment"]
    child = "".join(s.child for s in alignment.segments)
    parent = "".join(s.parent for s in alignment.segments)
    assert child == texts[SPUN] and parent == texts[COPY]
    assert {s.op for s in alignment.segments} == {query.EQUAL, query.INSERT, query.DELETE, query.SUBSTITUTE}
    for seg in alignment.segments:  # never across a line of the side it is shown on
        shown = seg.parent if seg.op == query.DELETE else seg.child
        assert "\n" not in shown.rstrip("\n")
    assert sum(s.tokens for s in alignment.segments if s.op == query.SUBSTITUTE) == alignment.counts["substituted"]


def test_diff_of_any_two_documents_and_unknown_ids(outputs: query.Outputs) -> None:
    result = query.diff(outputs, ORIGIN, ALONE)  # not a tree edge: aligned anyway
    assert result["edge"] is None and result["alignment"].counts["parent_tokens"] > 0
    with pytest.raises(ProvenanceError, match="unknown document 'nope'"):
        query.diff(outputs, ORIGIN, "nope")


def test_outputs_config_is_the_runs_or_the_defaults(seeds_out: Path, capped_out: Path, tmp_path: Path) -> None:
    assert query.open_outputs(seeds_out).config() == Config()
    assert query.open_outputs(capped_out).config() == Config().replace(max_align_tokens=30)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("documents", "clusters", "edges"):
        (bare / f"{name}.parquet").write_bytes((seeds_out / f"{name}.parquet").read_bytes())
    assert query.open_outputs(bare).config() == Config()  # no run.json
    (bare / "run.json").write_text('{"parameters": {"num_perm": 64}}')  # an older run.json
    assert query.open_outputs(bare).config() == Config()
    (bare / "run.json").write_text("{not json")
    assert query.open_outputs(bare).config() == Config()


def test_diff_aligns_as_far_as_the_run_did(capped_out: Path) -> None:
    """``diff`` caps the alignment at the run's ``max_align_tokens``: its counts stay the edges' counts."""
    outputs = query.open_outputs(capped_out)
    edges = pl.read_parquet(capped_out / "edges.parquet")
    for edge in edges.iter_rows(named=True):
        result = query.diff(outputs, edge["parent_id"], edge["child_id"])
        alignment = result["alignment"]
        assert result["max_tokens"] == 30 and alignment.capped
        assert alignment.counts["parent_tokens"] == alignment.counts["child_tokens"] == 30
        for key in ("kept", "inserted", "deleted", "substituted"):
            assert alignment.counts[key] == edge[key], (edge["child_id"], key)
    shown = cli("diff", COPY, SPUN, "--out", capped_out)
    assert shown.exit_code == 0, shown.output
    assert "(aligned the first 30 tokens of each text)" in shown.stdout


def test_align_texts_caps_each_side() -> None:
    parent = " ".join(f"word{i}" for i in range(50))
    child = " ".join(f"word{i}" for i in range(40))
    (capped,) = query.align_texts([(parent, child)], ChangesOptions(max_align_tokens=45))
    assert capped.capped and capped.counts["parent_tokens"] == 45 and capped.counts["child_tokens"] == 40
    (whole,) = query.align_texts([(parent, child)], ChangesOptions(max_align_tokens=50))
    assert not whole.capped and whole.counts == {"kept": 40, "inserted": 0, "deleted": 10, "substituted": 0,
                                                 "parent_tokens": 50, "child_tokens": 40}
    assert query.align_texts([], ChangesOptions(max_align_tokens=10)) == []


def test_align_texts_uses_the_changes_tokens() -> None:
    parent = "Mayor Elena Marquez closed the bridge.\nDrivers were told to use Kellan Road."
    child = "“Mayor” Elena MARQUEZ shut the bridge!\nDrivers were told to use Kellan Road.\nLeave a reply"
    (alignment,) = query.align_texts([(parent, child)], ChangesOptions(max_align_tokens=MAX_TOKENS))
    assert doc_words(pl.Series([child]), MAX_TOKENS)[0].tokens == [
        w.lower() for w in re.findall(r"\w+", "".join(s.child for s in alignment.segments))
    ]
    assert alignment.counts == {"kept": 12, "inserted": 3, "deleted": 0, "substituted": 1, "parent_tokens": 13,
                                "child_tokens": 16}
    ops = [(s.op, s.parent.strip(), s.child.strip()) for s in alignment.segments]
    assert (query.SUBSTITUTE, "closed", "shut") in ops and (query.INSERT, "", "Leave a reply") in ops
    assert ops[0] == (query.EQUAL, 'Mayor Elena Marquez', '"Mayor" Elena MARQUEZ')  # case and quotes as each text has them


# ---------------------------------------------------------------------------- the commands


def test_origin_command_table_json_csv(seeds_out: Path) -> None:
    table = cli("origin", DEEP, "--out", seeds_out)
    assert table.exit_code == 0, table.output
    assert f"{DEEP}  ←  {COPY}  ←  {ORIGIN}" in table.stdout and "path confidence" in table.stdout

    as_json = cli("origin", DEEP, "--out", seeds_out, "--format", "json")
    data = json.loads(as_json.stdout)
    assert data["origin_id"] == ORIGIN and [s["doc_id"] for s in data["path"]] == [DEEP, COPY, ORIGIN]

    as_csv = cli("origin", DEEP, "--out", seeds_out, "-f", "csv")
    rows = pl.read_csv(as_csv.stdout.encode())
    assert rows["doc_id"].to_list() == [DEEP, COPY, ORIGIN] and "confidence" in rows.columns


def test_cluster_command_draws_the_tree(seeds_out: Path) -> None:
    result = cli("cluster", SPUN, "--out", seeds_out)
    assert result.exit_code == 0, result.output
    assert "├─ 000_e899f24a2be5ae4a" in result.stdout and "└─ 002_24a27329389551e6" in result.stdout
    data = json.loads(cli("cluster", SPUN, "--out", seeds_out, "--format", "json").stdout)
    assert [m["doc_id"] for m in data["members"]][:2] == [ORIGIN, COPY]
    limited = cli("cluster", SPUN, "--out", seeds_out, "--limit", "2")
    assert "showing 2 of 4" in limited.stdout


def test_top_command(seeds_out: Path) -> None:
    for by in query.TOP_KEYS:
        result = cli("top", "--by", by, "--out", seeds_out)
        assert result.exit_code == 0, result.output
        assert f"Top clusters by {by}" in result.stdout and "Russia stresses" in result.stdout
    rows = json.loads(cli("top", "--out", seeds_out, "--format", "json").stdout)
    assert rows[0]["size"] == 4
    assert_one_line_error(cli("top", "--by", "fame", "--out", seeds_out), "--by must be one of")


def test_find_command_and_its_exit_status(seeds_out: Path) -> None:
    found = cli("find", "china's SUPPORT", "--out", seeds_out)
    assert found.exit_code == 0, found.output
    assert "Clusters with" in found.stdout and "cd53ba18e13706d1f" in found.stdout
    nothing = cli("find", "giant pandas", "--out", seeds_out)
    assert nothing.exit_code == 1 and "no document contains" in nothing.stderr
    as_json = cli("find", "giant pandas", "--out", seeds_out, "--format", "json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["total"] == 0


def test_diff_command(seeds_out: Path) -> None:
    result = cli("diff", COPY, SPUN, "--out", seeds_out)
    assert result.exit_code == 0, result.output
    assert "[-plays-]{+hypes+}" in result.stdout  # a substitution
    assert "{+" in result.stdout and "[-" in result.stdout
    short = cli("diff", ORIGIN, COPY, "--out", seeds_out, "--context", "3")
    assert "unchanged words]" in short.stdout  # long unchanged runs are shortened...
    full = cli("diff", ORIGIN, COPY, "--out", seeds_out, "--context", "-1")
    assert "unchanged words]" not in full.stdout and len(full.stdout) > len(short.stdout)  # ...unless asked for all
    data = json.loads(cli("diff", ORIGIN, SPUN, "--out", seeds_out, "--format", "json").stdout)
    assert data["counts"]["substituted"] == data["edge"]["substituted"]
    assert data["passages"] and {p["kind"] for p in data["passages"]} <= {"verbatim", "spun", "rewritten"}
    assert "evidence of copying" in cli("diff", ORIGIN, SPUN, "--out", seeds_out).stdout
    csv_rows = pl.read_csv(cli("diff", COPY, SPUN, "--out", seeds_out, "--format", "csv").stdout.encode())
    assert set(csv_rows["op"]) == {"equal", "insert", "delete", "substitute"}


def test_diff_context_keeps_the_words_next_to_the_changes() -> None:
    """An unchanged run keeps ``--context`` words on each side that touches a change, and says how many it hid."""
    from provenance_cli.queries import _collapse

    run = " ".join(f"w{i}" for i in range(20)) + " "
    hidden = "dim italic"
    assert _collapse(run, 3, head=False, tail=True) == [("", ""), ("…[17 unchanged words] ", hidden), ("w17 w18 w19 ", "")]
    assert _collapse(run, 3, head=True, tail=False) == [("w0 w1 w2 ", ""), ("…[17 unchanged words]", hidden), ("", "")]
    assert _collapse(run, 3, head=True, tail=True) == [("w0 w1 w2 ", ""), (" … [14 unchanged words] ", hidden),
                                                       ("w17 w18 w19 ", "")]
    assert _collapse("a b c d e f g h\n", 2, head=True, tail=False)[-1] == ("\n", "")  # the line break stays
    assert _collapse(run, -1, head=True, tail=True) == [(run, "")]
    short = " ".join(f"w{i}" for i in range(9)) + " "
    assert _collapse(short, 3, head=True, tail=True) == [(short, "")]  # hiding 3 words or fewer is not worth it


def test_user_errors_are_one_line_exit_2(seeds_out: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for args in (["origin", "x"], ["cluster", "x"], ["top"], ["find", "x"], ["diff", "a", "b"], ["report"]):
        assert_one_line_error(cli(*args, "--out", missing), "does not exist")
    assert_one_line_error(cli("origin", "nope", "--out", seeds_out), "unknown document 'nope'")
    assert_one_line_error(cli("cluster", "nope", "--out", seeds_out), "no cluster or document 'nope'")
    assert_one_line_error(cli("diff", ORIGIN, "nope", "--out", seeds_out), "unknown document 'nope'")
    assert_one_line_error(cli("find", "  ", "--out", seeds_out), "empty")
    assert_one_line_error(cli("top", "--out", seeds_out, "--format", "xml"), "--format must be one of")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("documents", "clusters", "edges"):
        (broken / f"{name}.parquet").write_bytes(b"not parquet")
    assert_one_line_error(cli("top", "--out", broken), "cannot read the outputs")


def test_document_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    sentences = " ".join(f"Sentence {i} about the harbour authority in Port Elric and its ferries." for i in range(8))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        json.dumps({"id": "a", "text": "[bold red]Markup[/] \x1b[2J\x1b]0;owned\x07 title\n\n" + sentences}) + "\n"
        + json.dumps({"id": "b", "text": "[/oops] second \x1b[31m title\n\n" + sentences + " One more line."}) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    provenance.run([folder], out_dir=out)
    for args in (["cluster", "a"], ["origin", "b"], ["top"], ["find", "harbour authority"], ["diff", "a", "b"]):
        result = cli(*args, "--out", out)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, args
    assert "[bold red]Markup[/]" in cli("cluster", "a", "--out", out).stdout  # shown as text, not applied


# ---------------------------------------------------------------------------- the README


def _readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_every_sql_example_in_the_readme_runs(seeds_out: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    statements = [
        s.strip() for block in _readme_blocks("sql") for s in re.sub(r"--[^\n]*", "", block).split(";") if s.strip()
    ]
    assert len(statements) >= 6, statements
    con = duckdb.connect()
    for sql in statements:
        rows = con.sql(sql.replace("'data/output/", f"'{seeds_out.as_posix()}/")).fetchall()
        assert rows, f"no rows from README example:\n{sql}"


def test_every_query_command_in_the_readme_runs(seeds_out: Path) -> None:
    commands = [
        line.split("#")[0].strip() for block in _readme_blocks("bash") for line in block.splitlines()
        if re.match(r"provenance (origin|cluster|top|find|diff|report)\b", line.strip())
    ]
    assert len(commands) >= 7, commands
    for command in commands:
        args = shlex.split(command)[1:]
        result = cli(*args, "--out", seeds_out) if "--out" not in args else cli(*args)
        assert result.exit_code == 0, (command, result.output, result.exception)


def test_outputs_read_every_table_from_the_generation_the_link_named_when_opened(tmp_path: Path) -> None:
    import os

    first, second = tmp_path / "gen1", tmp_path / "gen2"
    for folder, n in ((first, 1), (second, 2)):
        folder.mkdir()
        for name in ("documents", "clusters", "edges"):
            pl.DataFrame({"n": [n]}).write_parquet(folder / f"{name}.parquet")
    link = tmp_path / "out"
    link.symlink_to(first)
    out = query.open_outputs(link)
    (tmp_path / "tmp-link").symlink_to(second)
    os.replace(tmp_path / "tmp-link", link)  # a run publishes the next generation while the reader holds `out`
    assert [out.scan(t).collect()["n"].item() for t in ("documents", "clusters", "edges")] == [1, 1, 1]
    assert out.out_dir == link and query.open_outputs(link).documents.collect()["n"].item() == 2
