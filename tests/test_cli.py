"""``provenance run`` (``provenance_cli.runs``): flags generated from the config, ``-o NAME=VALUE``, run.json,
exit codes and one-line messages.  Always ``--engine local`` (no Prefect) except where the flow is the point.

A run-level problem (bad path, unknown format, missing column, unwritable
output, impossible or mistyped options) exits with status 2 and ONE readable
line on stderr, never a traceback; per-document problems never fail the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from provenance.config import Config, iter_fields
from provenance.digest import library_digest
from provenance.prepare.minhash import SignatureScheme
from provenance_cli import runs
from provenance_cli.main import app
from tests.fixtures import make_article

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CLI_FIELDS = [(section, name, info) for section, name, info in iter_fields() if (info.json_schema_extra or {}).get("cli")]
OTHER_FIELDS = [(section, name, info) for section, name, info in iter_fields() if not (info.json_schema_extra or {}).get("cli")]


def article(i: int) -> str:
    return make_article(i, 6)


def invoke(*args: str | Path):
    return CliRunner().invoke(app, ["run", "--engine", "local", *map(str, args)])


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 2, one ``error:`` line on stderr, nothing else, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an unhandled exception
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def run_params() -> dict[str, Any]:
    """The click parameters of ``provenance run`` by name."""
    return {p.name: p for p in typer.main.get_command(app).commands["run"].params}


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """``provenance run --engine local`` records its config instead of running the chain."""
    seen: list[Config] = []

    def fake_run_local(paths, out_dir, config, store_dir, wait, **_):
        seen.append(config)
        return {"documents": 0, "rejected": 0, "clusters": 0, "multi_document_clusters": 0, "edges": 0}

    monkeypatch.setattr(runs, "run_local", fake_run_local)
    return seen


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "in"
    (d / "folder" / "sub").mkdir(parents=True)
    (d / "folder" / "a.txt").write_text(article(0))
    (d / "folder" / "sub" / "b.md").write_text(article(1))
    (d / "report.docx").write_bytes(b"PK\x03\x04")
    (d / "plain_file").write_text("not a folder")
    bad = pl.DataFrame({"id": ["a", "b"], "body": [article(0), article(1)]})
    bad.write_csv(d / "no_text.csv")
    bad.write_parquet(d / "no_text.parquet")
    bad.write_ndjson(d / "no_text.jsonl")
    (d / "folder_with_bad_table").mkdir()
    (d / "folder_with_bad_table" / "a.txt").write_text(article(0))
    bad.write_parquet(d / "folder_with_bad_table" / "rows.parquet")
    pl.DataFrame({"key": ["k1", "k2"], "body": [article(0), article(1)], "url": ["u1", "u2"]}).write_csv(d / "renamed.csv")
    return {p.name: p for p in d.iterdir()}


# ---------------------------------------------------------------------------- flags from the config


def test_every_cli_field_is_a_flag_with_the_config_default_and_why() -> None:
    params = run_params()
    assert len(CLI_FIELDS) >= 10
    for section, name, info in CLI_FIELDS:
        assert name in params, f"config field {section}.{name} is marked cli but `run` has no flag for it"
        param = params[name]
        assert param.opts == [f"--{name.replace('_', '-')}"], (name, param.opts)
        assert param.default == info.default and type(param.default) is type(info.default), (name, param.default)
        assert param.help == info.description, name


def test_fields_not_marked_cli_are_not_flags() -> None:
    params = run_params()
    flags = {opt for p in params.values() for opt in p.opts}
    for _, name, _ in OTHER_FIELDS:
        assert name not in params and f"--{name.replace('_', '-')}" not in flags, name
    # ...but they are all reachable through -o (checked below for every one of them)
    assert params["option"].opts == ["--option", "-o"]


def test_no_flag_gives_the_default_config(tmp_path: Path, captured: list[Config]) -> None:
    result = invoke(SEEDS, "--out", tmp_path / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    assert captured == [Config()]


def _other_value(info) -> Any:
    """A valid value different from the field's default."""
    default = info.default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return round(default / 2, 4) if default else 0.5
    if isinstance(default, str):
        return default + "_x"
    if isinstance(default, tuple):
        return [v + 1 for v in default]
    raise AssertionError(f"no probe for {info}")


@pytest.mark.parametrize(("section", "name", "info"), CLI_FIELDS, ids=[n for _, n, _ in CLI_FIELDS])
def test_each_flag_sets_its_field_and_nothing_else(tmp_path: Path, captured: list[Config], section, name, info) -> None:
    value = _other_value(info)
    result = invoke(SEEDS, "--out", tmp_path / "out", f"--{name.replace('_', '-')}", value)
    assert result.exit_code == 0, (result.output, result.exception)
    (config,) = captured
    assert getattr(getattr(config, section), name) == value
    assert config == Config().replace(**{name: value})


@pytest.mark.parametrize(("section", "name", "info"), OTHER_FIELDS, ids=[n for _, n, _ in OTHER_FIELDS])
def test_option_sets_any_other_field(tmp_path: Path, captured: list[Config], section, name, info) -> None:
    value = _other_value(info)
    result = invoke(SEEDS, "--out", tmp_path / "out", "-o", f"{name}={json.dumps(value)}")
    assert result.exit_code == 0, (result.output, result.exception)
    (config,) = captured
    got = getattr(getattr(config, section), name)
    assert (list(got) if isinstance(got, tuple) else got) == value
    assert config == Config().replace(**{name: value})


def test_option_is_applied_over_the_flags_and_takes_dashes(tmp_path: Path, captured: list[Config]) -> None:
    result = invoke(SEEDS, "--out", tmp_path / "out", "--num-perm", "128", "--option", "num-perm=64",
                    "-o", "min_containment=0.5", "-o", "id_column=doc")
    assert result.exit_code == 0, (result.output, result.exception)
    assert captured == [Config().replace(num_perm=64, min_containment=0.5, id_column="doc")]


# ---------------------------------------------------------------------------- run.json


def test_run_json_records_the_config_it_ran_with(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(SEEDS, "--out", out, "-o", "cluster_founders=5", "--min-containment", "0.4", "--batch-size", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    info = json.loads((out / "run.json").read_text())
    expected = Config().replace(cluster_founders=5, min_containment=0.4, batch_size=2)
    assert "parameters" not in info
    assert info["config"] == expected.to_dict()
    assert info["config"]["link"]["cluster_founders"] == 5 and info["config"]["run"]["batch_size"] == 2
    assert info["config_fingerprint"] == expected.fingerprint() != Config().fingerprint()
    assert info["signature"] == SignatureScheme(256, 1).to_dict()
    assert info["versions"]["provenance_source"] == library_digest()
    assert info["inputs"] == [str(SEEDS)]
    assert info["counts"]["documents"] == 5 and info["counts"]["edges"] == 3
    assert (out / "report.html").is_file()  # the local engine writes the report too


def test_results_false_flags_leave_the_fingerprint(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke(SEEDS, "--out", out, "--batch-size", "2", "--spill-over-mib", "0").exit_code == 0
    info = json.loads((out / "run.json").read_text())
    assert info["config_fingerprint"] == Config().fingerprint()
    assert info["config"]["run"]["spill_over_mib"] == 0


# ---------------------------------------------------------------------------- run-level errors


def test_missing_input_path(tmp_path: Path) -> None:
    missing = tmp_path / "does" / "not" / "exist"
    assert_one_line_error(invoke(missing, "--out", tmp_path / "out"), str(missing), "does not exist")


def test_unknown_format_given_directly(tmp_path: Path, inputs: dict[str, Path]) -> None:
    result = invoke(inputs["folder"], inputs["report.docx"], "--out", tmp_path / "out")
    assert_one_line_error(result, "unknown input format '.docx'", str(inputs["report.docx"]))
    assert not (tmp_path / "out" / "documents.parquet").exists()


@pytest.mark.parametrize("name", ["no_text.csv", "no_text.parquet", "no_text.jsonl", "folder_with_bad_table"])
def test_table_without_text_column(tmp_path: Path, inputs: dict[str, Path], name: str) -> None:
    line = assert_one_line_error(invoke(inputs[name], "--out", tmp_path / "out"), "no 'text' column", "--text-column")
    assert "body" in line  # the message lists the columns that are there


def test_table_without_id_column(tmp_path: Path, inputs: dict[str, Path]) -> None:
    result = invoke(inputs["renamed.csv"], "--text-column", "body", "--out", tmp_path / "out")
    assert_one_line_error(result, "no 'id' column", "--id-column")


def test_out_is_an_existing_file(tmp_path: Path, inputs: dict[str, Path]) -> None:
    target = inputs["plain_file"]
    assert_one_line_error(invoke(inputs["folder"], "--out", target), str(target))
    assert target.read_text() == "not a folder"  # untouched


def test_out_is_under_an_existing_file(tmp_path: Path, inputs: dict[str, Path]) -> None:
    target = inputs["plain_file"] / "out"
    assert_one_line_error(invoke(inputs["folder"], "--out", target), str(target))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--min-tokens", "1", "--word-ngram", "3"], "min_tokens (1) must be at least word_ngram (3)"),
        (["--num-perm", "5"], "option num_perm: input should be greater than or equal to 16, got 5"),
        (["-o", "num_perm=2000"], "option num_perm: input should be less than or equal to 1024"),
        (["--id-column", "text", "--text-column", "text"], "must name different columns"),
        (["--id-column", ""], "option id_column: string should have at least 1 character"),
        (["--words-threshold", "1.5"], "option words_threshold: input should be less than 1"),
        (["--max-chars", "0"], "option max_chars"),
        (["-o", "cluster_founders=0"], "option cluster_founders: input should be greater than or equal to 1"),
        (["-o", "no_such_knob=1"], "unknown option(s) no_such_knob; known: "),
        (["-o", "num_perm"], "--option takes NAME=VALUE"),
        (["--engine", "spark"], "--engine must be 'prefect' or 'local'"),
        (["--runner", "dask"], "--runner, --dask-address and --dask-workers need --engine prefect"),
        (["--wait", "-1"], "--wait must be >= 0 seconds"),
    ],
)
def test_invalid_or_contradictory_options(tmp_path: Path, inputs: dict[str, Path], options: list[str], fragment: str) -> None:
    out = tmp_path / "out"
    assert_one_line_error(invoke(inputs["folder"], "--out", out, *options), fragment)
    assert not (out / "run.json").exists()


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--num-perm", "256.7"], "Invalid value for '--num-perm'"),
        (["--min-containment", "most"], "Invalid value for '--min-containment'"),
        (["--no-such-flag"], "No such option: --no-such-flag"),
    ],
)
def test_mistyped_flags_are_one_line_too(tmp_path: Path, captured: list[Config], options: list[str], fragment: str) -> None:
    """Values typer itself refuses (not a number, an unknown flag) get the same one line, not a usage box."""
    assert_one_line_error(invoke(SEEDS, "--out", tmp_path / "out", *options), fragment)
    assert captured == []


def test_num_perm_with_a_fraction_through_option_is_refused(tmp_path: Path, captured: list[Config]) -> None:
    assert_one_line_error(invoke(SEEDS, "--out", tmp_path / "out", "-o", "num_perm=256.7"),
                          "option num_perm: input should be a valid integer", "256.7")
    assert captured == []


@pytest.mark.parametrize("column", ["[/]", "[bold]body", "[red]"])
def test_error_message_is_not_read_as_markup(tmp_path: Path, inputs: dict[str, Path], column: str) -> None:
    # Regression: the message was printed as Rich markup, so "[/]" crashed with
    # a MarkupError traceback and "[bold]..." vanished from the message.
    result = invoke(inputs["no_text.csv"], "--text-column", column, "--out", tmp_path / "out")
    assert_one_line_error(result, f"no '{column}' column")


def test_error_line_of_the_console_script_has_no_traceback(tmp_path: Path) -> None:
    """The real process: status 2, one stderr line, no Prefect started."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    missing = tmp_path / "missing"
    for extra in ([str(missing)], [str(SEEDS), "--num-perm", "256.7"]):
        proc = subprocess.run(
            [sys.executable, "-m", "provenance_cli.main", "run", "--out", str(tmp_path / "out"), *extra],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert (str(missing) if extra[0] == str(missing) else "--num-perm") in lines[0]


# ---------------------------------------------------------------------------- successful runs


def test_local_run_with_column_overrides(tmp_path: Path, inputs: dict[str, Path]) -> None:
    out = tmp_path / "out"
    result = invoke(inputs["folder"], inputs["renamed.csv"], "--id-column", "key", "--text-column", "body", "--out", out, "--quiet")

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr == ""  # --quiet: no progress lines (tests/test_progress.py)
    documents = pl.read_parquet(out / "documents.parquet")
    assert sorted(documents["doc_id"].to_list()) == ["a", "k1", "k2", "sub/b"]
    assert dict(documents.select("doc_id", "url").iter_rows())["k2"] == "u2"
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["ingest"] == {**Config().ingest.model_dump(), "id_column": "key", "text_column": "body"}
    summary = dict(line.split("│")[1:3] for line in result.stdout.splitlines() if line.count("│") == 3)
    assert {k.strip(): v.strip() for k, v in summary.items()} == {
        "documents": "4", "rejected": "0", "clusters": str(info["counts"]["clusters"]),
        "multi document clusters": str(info["counts"]["multi_document_clusters"]), "edges": str(info["counts"]["edges"]),
        "report": summary_report(result.stdout),
    }
    assert str(out / "report.html").startswith(summary_report(result.stdout).rstrip("…"))


def summary_report(stdout: str) -> str:
    return next(line.split("│")[2].strip() for line in stdout.splitlines() if line.count("│") == 3 and "report" in line)


def test_per_document_problems_do_not_fail_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(article(0))
    (folder / "empty.txt").write_text("   ")
    (folder / "bad.txt").write_bytes(b"\xff\xfe\xfa" + article(1).encode())
    (folder / "nul.txt").write_bytes(b"\x00" + article(1).encode())
    (folder / "short.md").write_text("Only four words here.")
    (folder / "notes.docx").write_bytes(b"PK")
    (folder / "t.jsonl").write_text('{"id": "j1", "text": "cut\n' + json.dumps({"id": "good", "text": article(1)}) + "\n")
    out = tmp_path / "out"

    result = invoke(folder, "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    assert pl.read_parquet(out / "documents.parquet")["doc_id"].to_list() == ["good"]
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert sorted(rejects["reason"].to_list()) == sorted(
        ["empty_text", "undecodable_bytes", "binary_file", "too_short", "unsupported_file", "unreadable_record", "duplicate_id"]
    )
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["rejected"] == 7 and info["counts"]["documents"] == 1


def test_run_prints_rejects_by_reason_most_frequent_first(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(article(0))
    (folder / "blank.txt").write_text(" ")
    for name in ("s1", "s2", "s3"):
        (folder / f"{name}.txt").write_text("Only four words here.")
    (folder / "notes.docx").write_bytes(b"PK")
    result = invoke(folder, "--out", tmp_path / "out")
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [line for line in result.stdout.splitlines() if line.startswith("rejected ")]
    assert lines == ["rejected 3 as too_short", "rejected 1 as empty_text", "rejected 1 as unsupported_file"]
    assert runs.rejects_by_reason({"rejects_by_reason": {}}) == []


def test_a_plain_run_on_an_out_held_by_another_run_is_one_line(tmp_path: Path) -> None:
    from provenance import outputs

    out = tmp_path / "out"
    with outputs.locked(outputs.control_dir(out), what=f"output folder {out}"):
        assert_one_line_error(invoke(SEEDS, "--out", out), f"output folder {out} is in use by pid {os.getpid()}")
    assert not out.exists() or not (out / "documents.parquet").exists()


def test_all_documents_rejected_exits_zero(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    (folder / "short.txt").write_text("Too short.")
    out = tmp_path / "out"

    result = invoke(folder, "--out", out)

    assert result.exit_code == 0, (result.output, result.exception)
    assert pl.read_parquet(out / "documents.parquet").height == 0
    assert pl.read_parquet(out / "rejects.parquet").height == 2


def test_local_run_into_a_store(tmp_path: Path) -> None:
    out, store = tmp_path / "out", tmp_path / "store"
    first = invoke(SEEDS, "--out", out, "--store", store)
    assert first.exit_code == 0, (first.output, first.exception)
    assert out.is_symlink() and (out / "report.html").is_file()
    assert json.loads((store / "MANIFEST.json").read_text())["generation"] == 1
    again = invoke(SEEDS, "--out", out, "--store", store)
    assert again.exit_code == 0, (again.output, again.exception)
    assert json.loads((store / "MANIFEST.json").read_text())["generation"] == 1  # nothing new: nothing published
    # A store made with other result-affecting options refuses the run, in one line.
    assert_one_line_error(invoke(SEEDS, "--out", out, "--store", store, "--num-perm", "128"), "num_perm")


def test_prefect_engine_calls_the_flow_with_the_config_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--engine prefect`` hands the flow every option by flat name, and the store and wait as given."""
    import flows.provenance_flow as flow_module

    calls: list[dict[str, Any]] = []

    def fake_flow_on(runner, address, workers):
        calls.append({"runner": (runner, address, workers)})

        def flow(**params):
            calls[-1].update(params)
            return {"counts": {"documents": 5, "rejected": 0, "clusters": 2, "multi_document_clusters": 1, "edges": 3}}

        return flow

    monkeypatch.setattr(flow_module, "flow_on", fake_flow_on)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(SEEDS), "--out", str(out), "--num-perm", "64", "-o", "cluster_founders=4",
                                      "--runner", "threads", "--store", str(tmp_path / "store"), "--wait", "1.5"])
    assert result.exit_code == 0, (result.output, result.exception)
    (call,) = calls
    assert call == {
        "runner": ("threads", None, None), "inputs": [str(SEEDS)], "out": str(out),
        "options": Config().replace(num_perm=64, cluster_founders=4).options(), "store": str(tmp_path / "store"), "wait": 1.5,
    }


def test_options_command_lists_every_field_with_its_default() -> None:
    result = CliRunner().invoke(app, ["options"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| section")]
    assert len(rows) == len(list(iter_fields()))
    for (section, name, info), row in zip(iter_fields(), rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        flag = f"`--{name.replace('_', '-')}`" if (info.json_schema_extra or {}).get("cli") else f"`-o {name}=...`"
        default = list(info.default) if isinstance(info.default, tuple) else info.default
        assert cells[:3] == [section, flag, f"`{json.dumps(default)}`"], row
