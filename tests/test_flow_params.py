"""The flow's typed parameters and the ``provenance serve`` checks, without a Prefect server.

The end-to-end behaviour (a served deployment refusing or failing bad parameters) is in
``tests/test_schedule.py``; here are the pieces, fast: the parameter schema the server enforces,
pydantic's messages, the model generated from ``Config`` (so the two cannot drift), and serve's one-line errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import flows  # noqa: F401  (offline/quiet Prefect defaults)
from flows.params import PipelineOptions, options_dict
from provenance.config import Config, iter_fields
from provenance.errors import ProvenanceError
from provenance_cli.main import app

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIELDS = list(iter_fields())


def _flow():
    from flows.provenance_flow import provenance_flow

    return provenance_flow


# --------------------------------------------------------------------------- the model


def test_options_have_exactly_the_config_fields() -> None:
    assert list(PipelineOptions.model_fields) == [name for _, name, _ in FIELDS]


@pytest.mark.parametrize(("section", "name", "info"), FIELDS, ids=[n for _, n, _ in FIELDS])
def test_each_option_has_the_config_fields_type_default_constraints_and_why(section, name, info) -> None:
    field = PipelineOptions.model_fields[name]
    assert field.annotation == info.annotation, name
    assert field.default == info.default == getattr(getattr(Config(), section), name), name
    assert field.metadata == info.metadata, name  # ge/le/gt/lt/min_length: the same constraint objects
    assert field.description == info.description, name
    assert not field.is_required()


INT_PROBES = [-1, 0, 1, 2, 15, 16, 17, 1024, 1025, 2**32 - 1, 2**32, 2.5, 3.0, "64", "many", None]
FLOAT_PROBES = [-0.5, 0.0, 0.05, 0.5, 0.99, 1.0, 1.5, 7, "0.3", "high", None]
STR_PROBES = ["", "a", "doc", 5, None]
TUPLE_PROBES = [[1, 2, 3], [1.5, -2, 0], [1, 2], [1, 2, 3, 4], ["a", 1, 2], "1,2,3", None]
#: Keeps the cross-field rules (min_tokens >= word_ngram, id_column != text_column) out of a probe's way.
CONTEXT = {"min_tokens": {"word_ngram": 1}, "word_ngram": {"min_tokens": 2**40}, "id_column": {"text_column": "zz"},
           "text_column": {"id_column": "zz"}}


def _probes(info) -> list:
    return {int: INT_PROBES, float: FLOAT_PROBES, str: STR_PROBES}.get(info.annotation, TUPLE_PROBES)


@pytest.mark.parametrize(("section", "name", "info"), FIELDS, ids=[n for _, n, _ in FIELDS])
def test_a_value_passes_the_model_exactly_when_it_passes_the_config(section, name, info) -> None:
    """What the flow run's pydantic check lets through is what ``Config.from_options`` accepts, value by value."""
    verdicts = set()
    for value in _probes(info):
        try:
            Config.from_options({**CONTEXT.get(name, {}), name: value})
            config_ok = True
        except ProvenanceError:
            config_ok = False
        try:
            PipelineOptions(**{name: value})
            model_ok = True
        except ValidationError:
            model_ok = False
        assert model_ok == config_ok, (name, value, model_ok, config_ok)
        verdicts.add(config_ok)
    assert verdicts == {True, False}, name  # the probes test both sides of the field's constraints


def test_options_dict_passes_only_what_was_set() -> None:
    assert options_dict(None) == {}
    assert options_dict({"num_perm": 64}) == {"num_perm": 64}
    assert options_dict(PipelineOptions(num_perm=64)) == {"num_perm": 64}
    assert options_dict(PipelineOptions(num_perm=256)) == {"num_perm": 256}  # set to the default: still set
    # unknown names go through, for Config.from_options to refuse them in one line
    assert options_dict(PipelineOptions.model_validate({"no_such_knob": 1})) == {"no_such_knob": 1}
    with pytest.raises(ProvenanceError, match="unknown option"):
        Config.from_options(options_dict(PipelineOptions.model_validate({"no_such_knob": 1})))


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


def test_schema_properties_are_the_config_fields() -> None:
    from prefect.utilities.callables import parameter_schema

    options = parameter_schema(_flow().fn).model_dump()["definitions"]["PipelineOptions"]
    assert list(options["properties"]) == [name for _, name, _ in FIELDS]
    assert options.get("required", []) == []
    for _, name, info in FIELDS:
        prop = options["properties"][name]
        default = list(info.default) if isinstance(info.default, tuple) else info.default
        assert prop["default"] == default and prop["description"] == info.description, name


def test_server_side_schema_validation_names_the_field() -> None:
    """The check the Prefect server runs on a new run of an enforced deployment."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    schema = parameter_schema(_flow().fn).model_dump_for_openapi()
    validate({"inputs": ["seeds"], "options": {"num_perm": 64}}, schema, raise_on_error=True)
    validate({"inputs": ["seeds"], "options": Config().options()}, schema, raise_on_error=True)  # every default passes
    for params, words in [
        ({"options": {"num_perm": 3}}, ["num_perm", "16"]),
        ({"options": {"no_such_knob": 1}}, ["no_such_knob"]),
        ({"options": {"num_perm": 64, "Num_Perm": 64}}, ["Num_Perm"]),
        ({"options": {"num_perm": 256.7}}, ["num_perm"]),
        ({"options": {"temperature": "warm"}}, ["temperature"]),
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
    with pytest.raises(ProvenanceError, match="option num_perm: input should be greater than or equal to 16"):
        deployment_parameters([SEEDS], tmp_path / "out", {"num_perm": 3})
    with pytest.raises(ProvenanceError, match=r"min_tokens \(1\) must be at least word_ngram \(2\)"):
        deployment_parameters([SEEDS], tmp_path / "out", {"min_tokens": 1})
    with pytest.raises(ProvenanceError, match="does not exist"):
        deployment_parameters([tmp_path / "missing"], tmp_path / "out", {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --cron"),
        (["--cron", "61 * * * *"], "--cron must be a cron expression"),
        (["--interval", "60", "-o", "num_perm=3"], "option num_perm: input should be greater than or equal to 16"),
        (["--interval", "60", "-o", "num_perm"], "--option takes NAME=VALUE"),
        (["--interval", "sixty"], "Invalid value for '--interval'"),
        (["--interval", "60", "-o", "nope=1"], "unknown option(s) nope"),
        (["--interval", "60", "--input", "no/such/folder"], "does not exist"),
        (["--interval", "60", "--name", "a/b"], "--name must be"),
    ],
)
def test_serve_cli_mistakes_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    proc = subprocess.run(
        [sys.executable, "-m", "provenance_cli.main", "serve", "--cron", "0 * * * *", "--input", str(SEEDS),
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "prefect server start" in proc.stderr and "PREFECT_API_URL" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


# --------------------------------------------------------------------------- task runners


def test_task_runner_by_option_or_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.runners import task_runner

    for name in ("PROVENANCE_TASK_RUNNER", "PROVENANCE_DASK_ADDRESS", "PROVENANCE_DASK_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(task_runner(), ThreadPoolTaskRunner)
    local = task_runner("dask", workers=3)
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs == {"n_workers": 3, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    assert task_runner("dask", "tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("PROVENANCE_TASK_RUNNER", "dask")
    monkeypatch.setenv("PROVENANCE_DASK_WORKERS", "5")
    assert task_runner().cluster_kwargs["n_workers"] == 5
    assert isinstance(task_runner("threads"), ThreadPoolTaskRunner)  # the option wins over the setting
    for args, message in [
        (("spark",), "--runner must be one of threads, dask"),
        (("threads", "tcp://10.0.0.5:8786"), "--dask-address needs --runner dask"),
        (("dask", None, 0), "--dask-workers must be at least 1, got 0"),  # not the setting's 5
    ]:
        with pytest.raises(ProvenanceError, match=message):
            task_runner(*args)
    monkeypatch.setenv("PROVENANCE_DASK_WORKERS", "0")
    with pytest.raises(ProvenanceError, match="--dask-workers must be at least 1, got 0"):
        task_runner("dask")
