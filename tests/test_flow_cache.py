"""``flows.cache``: the ``StageInputs`` cache policy of the flow's stage and batch tasks.

A cached result may only answer for the same task, the same library code and
inputs that give the same result.  ``value_digest`` is pinned on every input
kind (equal inputs give equal digests; any change that can change a result
changes it; a ``results=False`` option does not), ``StageInputs.compute_key``
on what goes into a key, and two flow runs on what Prefect does with them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

import flows  # noqa: F401  (offline/quiet Prefect defaults)
from flows import cache
from flows.cache import StageInputs, value_digest
from provenance import spill
from provenance.config import Config, PrepareOptions, iter_fields
from provenance.ingest import ingest_stage
from provenance.prepare.stage import prepare_stage
from tests.fixtures import make_article, spin, truncate

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


# ---------------------------------------------------------------------------- value_digest: options


def test_config_digest_is_its_fingerprint() -> None:
    config = Config().replace(num_perm=128)
    assert value_digest(config) == config.fingerprint()
    assert value_digest(Config().replace(num_perm=128)) == value_digest(config)  # equal configs, equal keys
    assert value_digest(Config()) != value_digest(config)


@pytest.mark.parametrize(("section", "name", "info"), list(iter_fields()), ids=[n for _, n, _ in iter_fields()])
def test_config_digest_changes_with_exactly_the_result_affecting_options(section, name, info) -> None:
    default = info.default
    value = (
        [v + 0.5 for v in default] if isinstance(default, tuple)
        else default + "_x" if isinstance(default, str)
        else default + 1 if isinstance(default, int)
        else default / 2
    )
    if name == "frequent_min_share":
        value = 0.01
    changed = Config().replace(**{name: value})
    results = (info.json_schema_extra or {}).get("results", True)
    assert (value_digest(changed) != value_digest(Config())) is results, (name, results)


def test_section_digest_covers_every_value() -> None:
    options = PrepareOptions()
    assert value_digest(options) == value_digest(PrepareOptions())
    assert value_digest(options.model_copy(update={"num_perm": 128})) != value_digest(options)
    assert value_digest(options.model_copy(update={"frequent_min_share": 0.01})) != value_digest(options)
    # a section is not a config: the same values in another section never share a key by accident
    assert value_digest(Config().prepare) == value_digest(options) != value_digest(Config())


# ---------------------------------------------------------------------------- value_digest: scalars, texts, arrays


def test_scalar_digests_tell_types_apart() -> None:
    values = [None, True, False, 0, 1, 1.0, "1", "", "None"]
    assert len({value_digest(v) for v in values}) == len(values)
    assert value_digest(20_000) == value_digest(20_000)


def test_texts_digest_changes_with_any_text_and_the_boundaries() -> None:
    texts = pl.Series("text", [make_article(0), make_article(1)])
    assert value_digest(texts) == value_digest(pl.Series("other_name", texts.to_list()))
    assert value_digest(texts) != value_digest(pl.Series([texts[0], texts[1] + " "]))  # one character
    assert value_digest(texts) != value_digest(texts.reverse())  # order is part of a batch
    assert value_digest(pl.Series(["ab", "c"])) != value_digest(pl.Series(["a", "bc"]))  # where texts end


def test_text_rows_on_disk_digest_like_the_texts_they_point_at(tmp_path: Path) -> None:
    texts = pl.Series("text", [make_article(i) for i in range(6)])
    spilled = spill.spill_texts(texts, 2, tmp_path)
    rows = spill.TextRows(spilled, np.arange(2, 5, dtype=np.int64))
    assert value_digest(rows) == value_digest(texts.slice(2, 3))
    assert value_digest(rows) != value_digest(spill.TextRows(spilled, np.arange(1, 4, dtype=np.int64)))


def test_array_digest_reads_bytes_dtype_and_shape() -> None:
    a = np.arange(12, dtype=np.int64)
    assert value_digest(a) == value_digest(a.copy())
    flipped = a.copy()
    flipped.view(np.uint8)[17] ^= 1  # one bit of one byte
    assert value_digest(flipped) != value_digest(a)
    assert value_digest(a.view(np.uint64)) != value_digest(a)  # same bytes, another dtype
    assert value_digest(a.reshape(3, 4)) != value_digest(a)  # same bytes, another shape
    strided = np.arange(24, dtype=np.int64)[::2]
    assert value_digest(strided) == value_digest(np.ascontiguousarray(strided))  # a view digests as its values


def test_an_input_without_a_stable_digest_is_refused() -> None:
    with pytest.raises(TypeError, match="dict"):
        value_digest({"a": 1})
    with pytest.raises(TypeError, match="list"):
        value_digest([1, 2])


# ---------------------------------------------------------------------------- value_digest: the prepared corpus


def _rows(**changes) -> list[dict]:
    rows = [
        {"id": "a", "text": make_article(0), "publisher": "Daily Portvale"},
        {"id": "b", "text": spin(make_article(0), 0.3, seed=1), "publisher": "The Herald"},
        {"id": "c", "text": truncate(make_article(2), 0.6), "publisher": "Wire"},
        {"id": "d", "text": "Far too short to keep.", "publisher": "Wire"},
    ]
    for doc_id, update in changes.items():
        next(r for r in rows if r["id"] == doc_id).update(update)
    return rows


def _prepared(folder: Path, rows: list[dict], config: Config | None = None):
    config = config or Config()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingested, _ = ingest_stage([folder / "docs.jsonl"], config)
    prepared, _ = prepare_stage(ingested, config)
    return prepared


def _digest(folder: Path, rows: list[dict], config: Config | None = None) -> str:
    prepared = _prepared(folder, rows, config)
    try:
        return value_digest(prepared)
    finally:
        if prepared.texts is not None:
            prepared.texts.remove()


def test_prepared_digest_is_stable_and_reads_every_input(tmp_path: Path) -> None:
    folder = tmp_path / "base"  # every case is written to the same file: only what the case changes differs
    base = _digest(folder, _rows())
    assert base.endswith(":3")  # three accepted documents ("d" is a too_short reject)
    assert _digest(folder, _rows()) == base  # the same input again
    changed = {
        "a text": _digest(folder, _rows(a={"text": make_article(0).replace("Tuesday", "Monday")})),
        "a metadata value": _digest(folder, _rows(b={"publisher": "The Herald "})),
        "an id": _digest(folder, _rows(c={"id": "c2"})),
        "a reject": _digest(folder, _rows(d={"id": "d2"})),
    }
    for what, digest in changed.items():
        assert digest != base, what
    assert len(set(changed.values())) == len(changed)


def test_prepared_digest_reads_the_sources(tmp_path: Path) -> None:
    """The same documents read from another file: the tables will carry the new sources, so the key differs."""
    accepted = [r for r in _rows() if r["id"] != "d"]  # no reject, whose row names its source too
    here, there = _digest(tmp_path / "here", accepted), _digest(tmp_path / "there", accepted)
    assert here != there and here.endswith(":3")
    assert _digest(tmp_path / "here", accepted) == here


def test_prepared_digest_is_the_same_with_texts_on_disk(tmp_path: Path) -> None:
    on_disk = _prepared(tmp_path / "base", _rows(), Config().replace(spill_over_mib=0))
    try:
        assert on_disk.texts is not None and "text" not in on_disk.documents.columns
        assert value_digest(on_disk) == _digest(tmp_path / "base", _rows())
    finally:
        on_disk.texts.remove()


# ---------------------------------------------------------------------------- StageInputs.compute_key


def _key(policy: StageInputs, inputs: dict, task: str = "link") -> str:
    return policy.compute_key(SimpleNamespace(task=SimpleNamespace(name=task)), inputs, {})


def test_key_is_task_code_and_the_named_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = StageInputs(inputs=("options", "lo"))
    inputs = {"options": PrepareOptions(), "lo": 0, "fn": object()}
    key = _key(policy, inputs)
    assert _key(policy, {**inputs, "fn": object()}) == key  # inputs not named are not in the key
    assert _key(policy, {**inputs, "lo": 20_000}) != key
    assert _key(policy, {**inputs, "options": PrepareOptions(num_perm=128)}) != key
    assert _key(policy, inputs, task="trace") != key
    assert _key(StageInputs(inputs=("options",)), inputs) != key
    assert _key(policy, {"options": PrepareOptions()}) != key  # a missing input is None, not skipped
    monkeypatch.setattr(cache, "library_digest", lambda: "0" * 16)  # other library code
    assert _key(policy, inputs) != key


# ---------------------------------------------------------------------------- flow runs


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _task_states(state) -> dict[str, set[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    assert state.is_completed(), state
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    states: dict[str, set[str]] = {}
    for run in runs:
        states.setdefault(run.name.rsplit("-", 1)[0], set()).add(run.state.name)
    return states


def _fresh_seeds(folder: Path) -> Path:
    """The seeds and one document no other test run has: every batch of a first run is computed."""
    import shutil

    shutil.copytree(SEEDS, folder)
    (folder / "unique.txt").write_text(make_article(3) + f"\nRun {time.time_ns()} of the cache test.\n", encoding="utf-8")
    return folder


def test_a_second_run_is_served_from_the_cache_and_a_changed_option_is_not(harness, tmp_path: Path) -> None:
    from flows.provenance_flow import provenance_flow

    # A document of this test run only, so results cached by an earlier session cannot answer.
    source = _fresh_seeds(tmp_path / "in")
    options = {"max_chars": 1_000_000 + time.time_ns() % 1_000_000}

    def states(out: str, **changes) -> dict[str, set[str]]:
        state = provenance_flow(inputs=[str(source)], out=str(tmp_path / out), options={**options, **changes},
                                return_state=True)
        return _task_states(state)

    first = states("first")
    assert first["link"] == first["trace"] == first["summarize-batch"] == first["shingle-batch"] == {"Completed"}

    second = states("second")
    for name in ("summarize-batch", "shingle-batch", "link", "trace"):
        assert second[name] == {"Cached"}, (name, second)
    assert second["ingest"] == second["write"] == second["report"] == {"Completed"}  # I/O is never cached
    for table in ("documents", "edges", "clusters"):
        assert pl.read_parquet(tmp_path / "second" / f"{table}.parquet").equals(
            pl.read_parquet(tmp_path / "first" / f"{table}.parquet")), table

    stricter = states("stricter", min_containment=0.5)
    assert stricter["link"] == stricter["trace"] == {"Completed"}, stricter  # the config's fingerprint changed
    assert stricter["summarize-batch"] == stricter["shingle-batch"] == {"Cached"}  # prepare's options did not

    on_disk = states("on_disk", spill_over_mib=0)  # results=False: the same results, from the cache
    assert on_disk["link"] == on_disk["trace"] == {"Cached"}, on_disk
    assert pl.read_parquet(tmp_path / "on_disk" / "edges.parquet").equals(pl.read_parquet(tmp_path / "first" / "edges.parquet"))


def test_the_same_texts_elsewhere_reuse_batches_but_trace_anew(harness, tmp_path: Path) -> None:
    import shutil

    from flows.provenance_flow import provenance_flow

    options = {"max_chars": 2_000_000 + time.time_ns() % 1_000_000}
    provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "first"), options=options)
    copy = shutil.copytree(SEEDS, tmp_path / "seeds-copy")
    third = _task_states(provenance_flow(inputs=[str(copy)], out=str(tmp_path / "third"), options=options, return_state=True))
    assert third["shingle-batch"] == {"Cached"} and third["trace"] == {"Completed"}
    sources = pl.read_parquet(tmp_path / "third" / "documents.parquet")["source"]
    assert sources.str.starts_with(str(copy)).all()


def test_a_store_run_is_never_answered_from_the_cache(harness, tmp_path: Path) -> None:
    """A store's stages reuse what the store holds: their results must not come from (or go to) the cache."""
    from flows.provenance_flow import provenance_flow

    options = {"max_chars": 3_000_000 + time.time_ns() % 1_000_000}
    provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "fresh"), options=options)  # fills the cache
    state = provenance_flow(inputs=[str(SEEDS)], out=str(tmp_path / "out"), store=str(tmp_path / "store"),
                            options=options, return_state=True)
    stored = _task_states(state)
    assert stored["link"] == stored["trace"] == {"Completed"}, stored
