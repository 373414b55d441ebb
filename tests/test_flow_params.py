"""The flow's typed parameters and the ``provenance serve`` checks, without a Prefect server.

The end-to-end behaviour (a served deployment refusing or failing bad parameters) is in
``tests/test_schedule.py``; here are the pieces, fast: the parameter schema the server enforces,
pydantic's messages, the model kept in step with ``PipelineConfig``, and serve's one-line errors.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows  # noqa: F401  (offline/quiet Prefect defaults)
from flows.params import PipelineOptions, options_dict
from provenance.cli import app
from provenance.config import PipelineConfig
from provenance.errors import ProvenanceError

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def _flow():
    from flows.provenance_flow import provenance_flow

    return provenance_flow


# --------------------------------------------------------------------------- the model


def test_options_mirror_pipeline_config_fields_and_defaults() -> None:
    config_fields = {f.name: f.default for f in dataclasses.fields(PipelineConfig) if f.name != "extra"}
    model_fields = {name: info.default for name, info in PipelineOptions.model_fields.items()}
    assert model_fields == config_fields


INT_PROBES = [-1, 0, 1, 2, 15, 16, 17, 1024, 1025, 2**32 - 1, 2**32]
FLOAT_PROBES = [-0.5, 0.0, 0.05, 0.5, 0.99, 1.0, 1.5]


@pytest.mark.parametrize("name", [n for n in PipelineOptions.model_fields if n not in ("id_column", "text_column")])
def test_options_ranges_agree_with_config_validate(name: str) -> None:
    """A value alone is accepted by the model exactly when ``PipelineConfig.validate`` accepts it."""
    from pydantic import ValidationError

    # keep the one cross-field rule (min_tokens >= word_ngram) out of the way
    context = {"word_ngram": 1} if name == "min_tokens" else {"min_tokens": 2**40}
    probes = FLOAT_PROBES if isinstance(getattr(PipelineConfig(), name), float) else INT_PROBES
    for value in probes:
        try:
            PipelineConfig(**{**context, name: value}).validate()
            config_ok = True
        except ProvenanceError:
            config_ok = False
        try:
            PipelineOptions(**{name: value})
            model_ok = True
        except ValidationError:
            model_ok = False
        assert model_ok == config_ok, (name, value, model_ok, config_ok)


def test_options_dict_passes_only_what_was_set() -> None:
    assert options_dict(None) == {}
    assert options_dict({"num_perm": 64}) == {"num_perm": 64}
    assert options_dict(PipelineOptions(num_perm=64)) == {"num_perm": 64}
    # unknown names go through, for make_config to refuse them in one line
    assert options_dict(PipelineOptions.model_validate({"no_such_knob": 1})) == {"no_such_knob": 1}


# --------------------------------------------------------------------------- the flow's schema


def test_parameter_schema_carries_types_ranges_and_closed_options() -> None:
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(_flow().fn).model_dump()
    props = schema["properties"]
    assert props["inputs"]["type"] == "array" and props["inputs"]["minItems"] == 1
    assert props["inputs"]["items"] == {"type": "string", "minLength": 1}
    assert props["out"]["minLength"] == 1
    options = schema["definitions"]["PipelineOptions"]
    assert options["additionalProperties"] is False
    assert {"type": "integer", "minimum": 16, "maximum": 1024}.items() <= options["properties"]["num_perm"].items()
    assert options["properties"]["words_threshold"]["exclusiveMinimum"] == 0
    assert options["properties"]["words_threshold"]["exclusiveMaximum"] == 1


def test_server_side_schema_validation_names_the_field() -> None:
    """The check the Prefect server runs on a new run of an enforced deployment."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    schema = parameter_schema(_flow().fn).model_dump_for_openapi()
    validate({"inputs": ["seeds"], "options": {"num_perm": 64}}, schema, raise_on_error=True)
    for params, words in [
        ({"options": {"num_perm": 3}}, ["num_perm", "16"]),
        ({"options": {"no_such_knob": 1}}, ["no_such_knob"]),
        ({"inputs": []}, ["inputs"]),
        ({"options": {"min_jaccard": "high"}}, ["min_jaccard"]),
    ]:
        with pytest.raises(ValidationError) as info:
            validate(params, schema, raise_on_error=True)
        assert all(w in str(info.value) for w in words), (params, str(info.value))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"options": {"num_perm": 3}}, "options.num_perm: Input should be greater than or equal to 16"),
        ({"options": {"num_perm": "many"}}, "options.num_perm: Input should be a valid integer"),
        ({"options": {"words_threshold": 1.0}}, "options.words_threshold: Input should be less than 1"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": ["seeds", ""]}, "inputs.1: String should have at least 1 character"),
        ({"out": ""}, "out: String should have at least 1 character"),
    ],
)
def test_flow_run_parameter_validation_message_names_the_parameter(params: dict, expected: str) -> None:
    """What a run's Failed state says when it gets a bad value (no server needed to check it)."""
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError) as info:
        _flow().validate_parameters(params)
    message = str(info.value)
    assert message.startswith("Flow run received invalid parameters:")
    assert expected in message, message
    assert "Traceback" not in message and len(message) < 300


def test_flow_validation_survives_cloudpickle() -> None:
    """``flow.serve`` ships the flow to its run process with cloudpickle; the annotations must go along."""
    import cloudpickle

    flow = cloudpickle.loads(cloudpickle.dumps(_flow()))
    validated = flow.validate_parameters({"inputs": ["seeds"], "options": {"num_perm": "64"}})
    assert validated["options"].num_perm == 64


# --------------------------------------------------------------------------- provenance serve


def test_parse_options() -> None:
    from flows.serve import parse_options

    assert parse_options(["num_perm=256", "id_column=doc", "min-jaccard=0.1"]) == {
        "num_perm": 256, "id_column": "doc", "min_jaccard": 0.1,
    }
    assert parse_options(None) == {}
    with pytest.raises(ProvenanceError, match="NAME=VALUE"):
        parse_options(["num_perm"])


def test_schedule_of() -> None:
    from flows.serve import schedule_of

    cron = schedule_of("0 * * * *", None, "Europe/Paris")
    assert (cron.cron, cron.timezone) == ("0 * * * *", "Europe/Paris")
    assert schedule_of(None, 90.0).interval == timedelta(seconds=90)
    for cron_, interval, tz, message in [
        (None, None, "UTC", "exactly one of --cron"),
        ("0 * * * *", 60.0, "UTC", "exactly one of --cron"),
        ("every hour", None, "UTC", "--cron must be a cron expression"),
        ("61 * * * *", None, "UTC", "--cron must be a cron expression"),
        ("0 * * * *", None, "Mars/Olympus", "--timezone must be an IANA time zone"),
        (None, 0.0, "UTC", "--interval must be a positive"),
    ]:
        with pytest.raises(ProvenanceError, match=message):
            schedule_of(cron_, interval, tz)


def test_deployment_parameters_are_absolute_and_checked(tmp_path: Path, monkeypatch) -> None:
    from flows.serve import deployment_parameters

    monkeypatch.chdir(ROOT)
    params = deployment_parameters([Path("seeds")], tmp_path / "out", {"num_perm": 64})
    assert params == {"inputs": [str(SEEDS)], "out": str(tmp_path / "out"), "options": {"num_perm": 64}}
    assert "options" not in deployment_parameters([SEEDS], tmp_path / "out", {})
    with pytest.raises(ProvenanceError, match="unknown option"):
        deployment_parameters([SEEDS], tmp_path / "out", {"no_such_knob": 1})
    with pytest.raises(ProvenanceError, match="--num-perm must be between 16 and 1024"):
        deployment_parameters([SEEDS], tmp_path / "out", {"num_perm": 3})
    with pytest.raises(ProvenanceError, match="does not exist"):
        deployment_parameters([tmp_path / "missing"], tmp_path / "out", {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --cron"),
        (["--cron", "61 * * * *"], "--cron must be a cron expression"),
        (["--interval", "60", "-o", "num_perm=3"], "--num-perm must be between 16 and 1024"),
        (["--interval", "60", "-o", "nope=1"], "unknown option(s) nope"),
        (["--interval", "60", "--input", "no/such/folder"], "does not exist"),
        (["--interval", "60", "--name", "a/b"], "--name must be"),
    ],
)
def test_serve_cli_mistakes_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    proc = subprocess.run(
        [sys.executable, "-m", "provenance.cli", "serve", "--cron", "0 * * * *", "--input", str(SEEDS),
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "prefect server start" in proc.stderr and "PREFECT_API_URL" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_cli_and_library_do_not_import_prefect() -> None:
    code = "import sys, provenance.cli, provenance.pipeline; print(sorted(m for m in sys.modules if m.startswith('prefect')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
