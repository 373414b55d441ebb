"""provenance.config: one frozen Config, flat option names, one-line errors, and a fingerprint of what changes results."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from provenance.config import (
    SECTIONS,
    ChangesOptions,
    Config,
    LinkOptions,
    PrepareOptions,
    affects_results,
    field_index,
    iter_fields,
    parse_assignments,
)
from provenance.errors import ProvenanceError

#: The fields that never change a table (batch sizes, memory limits, report caps): pinned, so that marking a
#: result-affecting constant ``results=False`` (it would then escape the fingerprint and the store's guard) fails here.
NOT_RESULTS = {"batch_size", "spill_over_mib", "words_batch", "partitions", "diff_edges", "diff_edges_per_cluster", "diff_chars", "title_chars", "text_chars", "singleton_limit"}

#: Former module constants that change results: each must be a config field that the fingerprint covers.
FORMER_CONSTANTS = {
    "prepare": ["boilerplate_max_tokens", "boilerplate_min_docs", "frequent_sample_docs", "frequent_min_share", "frequent_min_docs",
                "frequent_min_kept_share"],
    "link": ["min_anchor_set", "prefilter_sigmas", "cluster_founders"],
    "trace": ["completeness_anchor_weight", "date_tie", "frequency_sample", "lineage_ngram", "move_per_break", "max_lemma",
              "chance_match", "unit_found", "short_line", "foreign_ngram", "temperature"],
    "evidence": ["unit_min_tokens", "heading_max_tokens", "float_min_docs", "anchor_min_share", "min_evidence_share", "stem_chars",
                 "spun_min_agreement", "spun_min_tokens", "rewrite_min_dice", "rewrite_min_stems", "max_gap", "min_passage_units",
                 "min_passage_tokens", "few_units", "min_share_few", "chance_unit_match"],
    "changes": ["max_align_tokens", "max_examples", "moved_run", "truncation_prefix_share", "truncation_end_share",
                "excerpt_parent_share", "paraphrase_kept_share", "paraphrase_max_spin", "spin_min_rate", "insertion_min_share"],
}


def other_value(name: str, default: Any) -> Any:
    """Another value of option ``name`` that the default config accepts (the first candidate that validates)."""
    if isinstance(default, tuple):
        candidates: list[Any] = [(default[0] + 0.5, *default[1:])]
    elif isinstance(default, str):
        candidates = [default + "_x"]
    elif isinstance(default, int):
        candidates = [default + 1, default - 1]
    else:
        candidates = [round(default + 0.01, 6), round(default - 0.01, 6), default * 2, default / 2]
    for value in candidates:
        try:
            config = Config.from_options({name: value})
        except ProvenanceError:
            continue
        if config.options()[name] != Config().options()[name]:
            return value
    raise AssertionError(f"no other valid value found for {name} (default {default!r})")


def test_field_names_are_unique_and_each_has_a_reason() -> None:
    fields = list(iter_fields())
    assert len(field_index()) == len(fields)
    assert set(SECTIONS) == {"ingest", "prepare", "link", "evidence", "trace", "changes", "run", "report"}
    for section, name, info in fields:
        assert info.description and len(info.description) > 15, f"{section}.{name} has no why"
        assert field_index()[name] == section


def test_exactly_the_declared_fields_leave_results_alone() -> None:
    assert {name for _, name, info in iter_fields() if not affects_results(info)} == NOT_RESULTS
    assert all(not affects_results(info) for section, _, info in iter_fields() if section == "report")
    results = set(Config().options(results_only=True))
    assert results == set(field_index()) - NOT_RESULTS
    for section, names in FORMER_CONSTANTS.items():
        for name in names:
            assert field_index()[name] == section and name in results, name


@pytest.mark.parametrize(
    "name", [name for _, name, info in iter_fields() if affects_results(info)],
)
def test_every_result_affecting_field_changes_the_fingerprint(name: str) -> None:
    default = Config().options()[name]
    default = tuple(default) if isinstance(default, list) else default
    value = other_value(name, default)
    changed = Config.from_options({name: value})
    assert changed.fingerprint() != Config().fingerprint(), name
    # ...and only that field changed.
    differ = {k for k, v in changed.options().items() if Config().options()[k] != v}
    assert differ == {name}


@pytest.mark.parametrize("name", sorted(NOT_RESULTS))
def test_fields_that_do_not_change_results_leave_the_fingerprint_alone(name: str) -> None:
    value = other_value(name, Config().options()[name])
    changed = Config.from_options({name: value})
    assert changed.options()[name] == value != Config().options()[name]
    assert changed.to_dict() != Config().to_dict()
    assert changed.fingerprint() == Config().fingerprint()


def test_fingerprint_is_sha256_hex_and_does_not_depend_on_how_the_config_was_built() -> None:
    fp = Config().fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    nested = Config(link=LinkOptions(min_containment=0.5, cluster_founders=4), prepare=PrepareOptions(num_perm=128))
    flat = Config.from_options({"num_perm": 128, "cluster_founders": 4, "min_containment": 0.5})
    step_by_step = Config().replace(cluster_founders=4).replace(min_containment=0.5).replace(num_perm=128)
    assert nested == flat == step_by_step
    assert nested.fingerprint() == flat.fingerprint() == step_by_step.fingerprint() != fp
    # A float option given as an integer is the same option.
    assert Config.from_options({"temperature": 1}).fingerprint() == fp
    # Two fields swapping values is another config (the fingerprint is of names and values, not of values alone).
    a = Config.from_options({"min_containment": 0.4, "min_jaccard": 0.1})
    b = Config.from_options({"min_containment": 0.1, "min_jaccard": 0.4})
    assert a.fingerprint() != b.fingerprint()


def test_from_options_refuses_unknown_names_in_one_line() -> None:
    with pytest.raises(ProvenanceError) as err:
        Config.from_options({"num_perms": 128, "bogus": 1})
    message = str(err.value)
    assert message.startswith("unknown option(s) bogus, num_perms; known: ")
    assert "num_perm," in message and "\n" not in message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"num_perm": 256.7}, "option num_perm: input should be a valid integer"),  # it used to become 256
        ({"num_perm": "many"}, "option num_perm: input should be a valid integer"),
        ({"num_perm": True}, "option num_perm: input should be a valid integer"),  # not silently 1
        ({"seed": False}, "option seed: input should be a valid integer"),
        ({"min_containment": "high"}, "option min_containment: input should be a valid number"),
        ({"min_containment": None}, "option min_containment: input should be a valid number"),
        ({"min_jaccard": True}, "option min_jaccard: input should be a valid number"),
        ({"id_column": 5}, "option id_column: input should be a valid string"),
        ({"temperature": "x"}, "option temperature: input should be a valid number"),
        ({"temperature": 0}, "option temperature: input should be greater than 0"),
        ({"num_perm": 8}, "option num_perm: input should be greater than or equal to 16, got 8"),
        ({"words_threshold": 1.0}, "option words_threshold: input should be less than 1, got 1.0"),
        ({"seed": -1}, "option seed: input should be greater than or equal to 0"),
        ({"id_column": ""}, "option id_column: "),
        ({"min_tokens": 1}, "min_tokens (1) must be at least word_ngram (2)"),
        ({"text_column": "id"}, "id_column and text_column must name different columns"),
    ],
)
def test_from_options_refuses_wrong_values_in_one_line_naming_the_option(options: dict, expected: str) -> None:
    with pytest.raises(ProvenanceError) as err:
        Config.from_options(options)
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message and "validation error" not in message
    assert err.value.__cause__ is None  # no pydantic traceback chained to the user's line


def test_exact_numbers_of_another_type_are_read_as_the_option_type() -> None:
    config = Config.from_options({"num_perm": 128.0, "min_containment": 1})
    assert config.prepare.num_perm == 128 and isinstance(config.prepare.num_perm, int)
    assert config.link.min_containment == 1.0 and isinstance(config.link.min_containment, float)


def test_replace_changes_only_the_given_options_and_validates() -> None:
    base = Config.from_options({"num_perm": 128, "min_tokens": 30})
    changed = base.replace(min_containment=0.5)
    assert changed.prepare.num_perm == 128 and changed.prepare.min_tokens == 30 and changed.link.min_containment == 0.5
    assert base.link.min_containment == 0.36  # frozen: the base is untouched
    with pytest.raises(ProvenanceError, match="min_tokens"):
        base.replace(min_tokens=1)
    with pytest.raises(ProvenanceError, match="unknown option"):
        base.replace(numperm=64)


def test_config_is_frozen_and_refuses_unknown_sections() -> None:
    config = Config()
    with pytest.raises(ValidationError):
        config.prepare.num_perm = 64  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.link = LinkOptions()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Config.model_validate({"linking": {}})
    with pytest.raises(ValidationError):
        ChangesOptions(spin_min_rate=0.1, bogus=1)  # type: ignore[call-arg]


def test_options_are_flat_plain_values_and_round_trip() -> None:
    config = Config.from_options({"num_perm": 64, "temperature": 2.0, "batch_size": 7})
    options = config.options()
    assert list(options) == [name for _, name, _ in iter_fields()]
    assert options["temperature"] == 2.0
    json.dumps(options)  # plain JSON values
    assert Config.from_options(options) == config
    assert Config.model_validate(config.to_dict()) == config
    assert config.to_dict()["prepare"]["num_perm"] == 64 and config.to_dict()["run"]["batch_size"] == 7
    assert "batch_size" not in config.options(results_only=True)
    assert config.options(results_only=True)["num_perm"] == 64


def test_defaults_are_the_measured_ones() -> None:
    """The defaults the README and the stored benchmarks state (a changed default is a changed result)."""
    c = Config()
    assert (c.prepare.num_perm, c.prepare.seed, c.prepare.min_tokens, c.prepare.word_ngram, c.prepare.anchor_ngram) == (256, 1, 20, 2, 2)
    assert (c.link.words_threshold, c.link.anchors_threshold, c.link.min_containment, c.link.min_jaccard) == (0.1, 0.2, 0.36, 0.05)
    assert (c.link.bucket_window, c.link.cluster_founders, c.link.min_anchor_set) == (4, 3, 8)
    assert (c.trace.date_tie, c.trace.temperature, c.trace.max_lemma) == (1.0, 1.0, 3)
    assert (c.evidence.min_evidence_share, c.evidence.rewrite_min_dice, c.evidence.min_passage_tokens, c.evidence.chance_unit_match) == (
        0.5, 0.4, 20, 0.01)
    assert (c.prepare.boilerplate_min_docs, c.changes.max_align_tokens, c.changes.spin_min_rate) == (3, 20_000, 0.08)


def test_parse_assignments_reads_json_values_and_keeps_other_text() -> None:
    parsed = parse_assignments([
        "num_perm=128", "min-containment=0.5", "id_column=doc", "temperature=2", "text_column=body=main",
        " seed =7",
    ])
    assert parsed == {
        "num_perm": 128, "min_containment": 0.5, "id_column": "doc", "temperature": 2, "text_column": "body=main",
        "seed": 7,
    }
    assert isinstance(parsed["num_perm"], int) and isinstance(parsed["min_containment"], float)
    assert parse_assignments(None) == {} and parse_assignments([]) == {}
    config = Config.from_options(parsed)
    assert config.trace.temperature == 2.0 and config.ingest.text_column == "body=main"
    assert parse_assignments(["weights=[1, 2, 3]"]) == {"weights": [1, 2, 3]}  # JSON values, lists too


@pytest.mark.parametrize("pair", ["num_perm", "=5", "", "  =1"])
def test_parse_assignments_refuses_what_is_not_name_equals_value(pair: str) -> None:
    with pytest.raises(ProvenanceError, match=r"--option takes NAME=VALUE") as err:
        parse_assignments([pair])
    assert "\n" not in str(err.value)


def test_a_fractional_option_from_the_command_line_is_refused_not_truncated() -> None:
    with pytest.raises(ProvenanceError, match=r"^option num_perm: .*got 256\.7$"):
        Config.from_options(parse_assignments(["num_perm=256.7"]))
    assert math.isclose(Config.from_options(parse_assignments(["min_containment=0.25"])).link.min_containment, 0.25)
