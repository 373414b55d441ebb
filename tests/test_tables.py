"""provenance.tables (cluster ids, stable ids and their history, the output tables) and provenance.schemas (the contract)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xxhash

from provenance import schemas, tables
from provenance.trace import passages
from provenance.errors import ProvenanceError
from provenance.tables import cluster_id_of, dense_clusters, fresh_cluster_ids, stable_ids

# ---------------------------------------------------------------------------- cluster ids


def test_cluster_id_is_c_and_the_xxh3_of_the_origin_id() -> None:
    assert cluster_id_of("a") == "ce6c632b61e964e1f"  # the id scheme is public: users keep these ids
    assert cluster_id_of("doc/42") == "c" + xxhash.xxh3_64_hexdigest(b"doc/42")
    assert cluster_id_of("a", 1) == "c" + xxhash.xxh3_64_hexdigest(b"a#1") == "c148be4e168a1bf8c"
    assert cluster_id_of("a", 2) not in (cluster_id_of("a"), cluster_id_of("a", 1))
    assert len(cluster_id_of("\u00e9t\u00e9")) == 17


def test_dense_clusters_number_clusters_by_first_appearance() -> None:
    assert dense_clusters(np.array([7, 7, 3, 9, 3, 7])).tolist() == [0, 0, 1, 2, 1, 0]
    assert dense_clusters(np.array([5, 1, 5, 0])).tolist() == [0, 1, 0, 2]
    assert dense_clusters(np.array([], dtype=np.int64)).tolist() == []


def test_fresh_cluster_ids_name_every_row_after_its_cluster_origin() -> None:
    ids = fresh_cluster_ids(pl.Series(["a", "b", "c", "d"]), np.array([0, 1, 0, 1]), np.array([False, True, True, False]))
    assert ids.tolist() == [cluster_id_of("c"), cluster_id_of("b"), cluster_id_of("c"), cluster_id_of("b")]


# ---------------------------------------------------------------------------- stable ids and cluster_history


def stable(rows: list[tuple[str, int, bool, str | None]], old: list[tuple[str, str, bool]], generation: int = 7):
    """``stable_ids`` of new rows ``(doc_id, cluster, is_origin, stored cluster id)`` against stored ``(doc_id, cluster_id, is_origin)``."""
    doc_ids = pl.Series("doc_id", [r[0] for r in rows], dtype=pl.String)
    cluster = np.array([r[1] for r in rows], dtype=np.int64)
    is_origin = np.array([r[2] for r in rows], dtype=bool)
    old_cid = pl.Series("cluster_id", [r[3] for r in rows], dtype=pl.String)
    old_docs = pl.DataFrame(old, schema={"doc_id": pl.String, "cluster_id": pl.String, "is_origin": pl.Boolean}, orient="row")
    ids, history = stable_ids(doc_ids, cluster, is_origin, old_cid, old_docs, generation)
    assert history.schema == schemas.CLUSTER_HISTORY
    return dict(zip(doc_ids.to_list(), ids.tolist())), history.rows()


def test_a_first_run_creates_every_cluster_under_its_fresh_id() -> None:
    ids, events = stable([("a", 0, True, None), ("b", 0, False, None), ("c", 1, True, None)], [], generation=1)
    assert ids == {"a": cluster_id_of("a"), "b": cluster_id_of("a"), "c": cluster_id_of("c")}
    assert sorted(events) == sorted([(1, "created", cluster_id_of("a"), None, "a", 2), (1, "created", cluster_id_of("c"), None, "c", 1)])


def test_an_unchanged_cluster_keeps_its_id_and_has_no_event() -> None:
    ids, events = stable([("a", 0, True, "cA"), ("b", 0, False, "cA")], [("a", "cA", True), ("b", "cA", False)])
    assert ids == {"a": "cA", "b": "cA"} and events == []


def test_a_cluster_that_grows_keeps_its_id_and_has_no_event() -> None:
    ids, events = stable([("a", 0, True, "cA"), ("b", 0, False, "cA"), ("n", 0, False, None)], [("a", "cA", True), ("b", "cA", False)])
    assert set(ids.values()) == {"cA"} and events == []


def test_a_merge_keeps_the_id_of_the_larger_stored_cluster() -> None:
    rows = [("a1", 0, True, "cA"), ("a2", 0, False, "cA"), ("a3", 0, False, "cA"), ("b1", 0, False, "cB"), ("b2", 0, False, "cB")]
    old = [("a1", "cA", True), ("a2", "cA", False), ("a3", "cA", False), ("b1", "cB", True), ("b2", "cB", False)]
    ids, events = stable(rows, old)
    assert set(ids.values()) == {"cA"}
    assert events == [(7, "merged", "cA", "cB", "a1", 5)]
    # The smaller stored cluster keeps its id no matter which rows come first.
    ids, events = stable(rows[::-1], old)
    assert set(ids.values()) == {"cA"} and events == [(7, "merged", "cA", "cB", "a1", 5)]


def test_a_merge_of_equal_stored_clusters_keeps_the_smaller_id() -> None:
    rows = [("x1", 0, True, "c2"), ("x2", 0, False, "c2"), ("y1", 0, False, "c1"), ("y2", 0, False, "c1")]
    old = [("x1", "c2", True), ("x2", "c2", False), ("y1", "c1", True), ("y2", "c1", False)]
    ids, events = stable(rows, old)
    assert set(ids.values()) == {"c1"}
    # c1's origin was y1, the merged cluster's is x1: the kept id's origin changed too.
    assert events == [(7, "merged", "c1", "c2", "x1", 4), (7, "origin_changed", "c1", None, "x1", 4)]


def test_a_split_leaves_the_id_with_the_larger_part_and_names_the_other_afresh() -> None:
    old = [("a1", "cA", True), ("a2", "cA", False), ("a3", "cA", False), ("a4", "cA", False)]
    ids, events = stable([("a1", 0, True, "cA"), ("a2", 0, False, "cA"), ("a3", 0, False, "cA"), ("a4", 1, True, "cA")], old)
    assert ids == {"a1": "cA", "a2": "cA", "a3": "cA", "a4": cluster_id_of("a4")}
    assert events == [(7, "split", cluster_id_of("a4"), "cA", "a4", 1)]


def test_a_split_whose_larger_part_lost_the_origin_keeps_the_id_with_a_new_origin() -> None:
    old = [("a1", "cA", True), ("a2", "cA", False), ("a3", "cA", False), ("a4", "cA", False)]
    ids, events = stable([("a1", 0, True, "cA"), ("a2", 1, True, "cA"), ("a3", 1, False, "cA"), ("a4", 1, False, "cA")], old)
    assert ids == {"a1": cluster_id_of("a1"), "a2": "cA", "a3": "cA", "a4": "cA"}
    assert sorted(events) == sorted([(7, "split", cluster_id_of("a1"), "cA", "a1", 1), (7, "origin_changed", "cA", None, "a2", 3)])


def test_a_new_origin_of_a_kept_cluster_is_an_origin_changed_event() -> None:
    ids, events = stable([("a", 0, False, "cA"), ("b", 0, False, "cA"), ("n", 0, True, None)], [("a", "cA", True), ("b", "cA", False)])
    assert set(ids.values()) == {"cA"}
    assert events == [(7, "origin_changed", "cA", None, "n", 3)]


def test_a_new_cluster_beside_stored_ones_is_created() -> None:
    ids, events = stable([("a", 0, True, "cA"), ("n", 1, True, None), ("m", 1, False, None)], [("a", "cA", True)])
    assert ids == {"a": "cA", "n": cluster_id_of("n"), "m": cluster_id_of("n")}
    assert events == [(7, "created", cluster_id_of("n"), None, "n", 2)]


def test_a_taken_fresh_id_is_hashed_again() -> None:
    """d1 was the origin of a stored cluster (so its id is d1's); d1 came back as another text, alone."""
    taken = cluster_id_of("d1")
    ids, events = stable([("d1", 0, True, None), ("d2", 1, True, taken)], [("d1", taken, True), ("d2", taken, False)])
    assert ids == {"d1": cluster_id_of("d1", 1), "d2": taken}
    assert sorted(events) == sorted([(7, "created", cluster_id_of("d1", 1), None, "d1", 1), (7, "origin_changed", taken, None, "d2", 1)])


def test_an_id_merged_away_in_this_run_is_not_given_to_a_new_cluster() -> None:
    """X (named after d1) merges into A while d1, as another text, starts a cluster of its own: it gets d1's id re-hashed."""
    merged_away = cluster_id_of("d1")
    old = [("a1", "cA", True), ("a2", "cA", False), ("a3", "cA", False), ("d1", merged_away, True), ("d2", merged_away, False)]
    rows = [("a1", 0, True, "cA"), ("a2", 0, False, "cA"), ("a3", 0, False, "cA"), ("d2", 0, False, merged_away), ("d1", 1, True, None)]
    ids, events = stable(rows, old)
    assert ids == {"a1": "cA", "a2": "cA", "a3": "cA", "d2": "cA", "d1": cluster_id_of("d1", 1)}
    assert sorted(events) == sorted([(7, "merged", "cA", merged_away, "a1", 4), (7, "created", cluster_id_of("d1", 1), None, "d1", 1)])


def test_a_merge_and_a_split_at_once() -> None:
    """A = {a1..a3}, B = {b1, b2}: now {a1, a2, b1, b2} and {a3}.  A's id goes to the bigger piece; B merged in; a3 split off."""
    old = [("a1", "cA", True), ("a2", "cA", False), ("a3", "cA", False), ("b1", "cB", True), ("b2", "cB", False)]
    rows = [("a1", 0, True, "cA"), ("a2", 0, False, "cA"), ("b1", 0, False, "cB"), ("b2", 0, False, "cB"), ("a3", 1, True, "cA")]
    ids, events = stable(rows, old)
    assert ids == {"a1": "cA", "a2": "cA", "b1": "cA", "b2": "cA", "a3": cluster_id_of("a3")}
    assert sorted(events) == sorted([(7, "merged", "cA", "cB", "a1", 4), (7, "split", cluster_id_of("a3"), "cA", "a3", 1)])


def test_stable_ids_on_random_histories_give_each_stored_id_to_at_most_one_cluster() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(2, 25))
        doc_ids = [f"d{i:02d}" for i in range(n)]
        old_cluster = rng.integers(0, 5, n)
        present = rng.random(n) < 0.8  # the others are new documents (or new versions)
        old = []
        for c in np.unique(old_cluster[present]):
            members = [doc_ids[i] for i in np.flatnonzero(present & (old_cluster == c))]
            old += [(d, f"old{c}", k == 0) for k, d in enumerate(members)]
        old_of = {d: c for d, c, _ in old}
        cluster = dense_clusters(rng.integers(0, 6, n))
        is_origin = np.zeros(n, dtype=bool)
        for c in np.unique(cluster):
            is_origin[np.flatnonzero(cluster == c)[0]] = True
        ids, events = stable([(d, int(cluster[i]), bool(is_origin[i]), old_of.get(d)) for i, d in enumerate(doc_ids)], old)
        per_cluster = {int(c): {ids[doc_ids[i]] for i in np.flatnonzero(cluster == c)} for c in np.unique(cluster)}
        assert all(len(v) == 1 for v in per_cluster.values())
        names = [next(iter(v)) for v in per_cluster.values()]
        assert len(set(names)) == len(names)  # no two clusters share an id
        for c, (name,) in ((c, tuple(v)) for c, v in per_cluster.items()):
            stored_here = {old_of[doc_ids[i]] for i in np.flatnonzero(cluster == c) if doc_ids[i] in old_of}
            if name.startswith("old"):
                assert name in stored_here  # a kept id comes from a stored member
            else:
                assert name == cluster_id_of(doc_ids[int(np.flatnonzero((cluster == c) & is_origin)[0])])
            kinds = {e[1] for e in events if e[2] == name}
            assert ("created" in kinds) == (not stored_here)
        assert len(events) == len(set(events))


# ---------------------------------------------------------------------------- assembling and summarising


def documents(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """Prepared documents ``(doc_id, title, content_hash)`` with the other columns a run has."""
    return pl.DataFrame(
        {
            "doc_id": [r[0] for r in rows], "text": [f"text of {r[0]}" for r in rows], "title": [r[1] for r in rows],
            "source": ["t"] * len(rows), "n_tokens": [30] * len(rows), "n_chars": [9] * len(rows),
            "content_hash": [r[2] for r in rows],
        },
        schema_overrides={"n_tokens": pl.Int32, "n_chars": pl.Int32},
    )


def edge(parent: int, child: int, confidence: float, kind: str, spin_rate: float, truncation: bool) -> dict:
    return {
        "parent": parent, "child": child, "confidence": confidence, "similarity": 0.5, "change_kind": kind,
        "parent_tokens": 40, "child_tokens": 30, "kept": 25, "inserted": 2, "deleted": 12, "substituted": 3,
        "jaccard": 0.4, "containment_child_in_parent": 0.8, "containment_parent_in_child": 0.6, "is_truncation": truncation,
        "spin_rate": spin_rate, "boilerplate_lines_added": 0, "sentences_reordered": 0, "substitution_examples": ["a -> b"],
    }


@pytest.fixture
def assembled() -> tables.Traced:
    """Cluster X: x0 (origin) <- x1 (its exact copy) <- x2, and x0 <- x3; y0 alone.  Placement rows given out of order."""
    docs = documents([("x0", "X story", "h1"), ("y0", "Y story", "h9"), ("x1", "X copy", "h1"), ("x2", "X spun", "h2"), ("x3", "X head", "h3")])
    placement = pl.DataFrame({
        "row": [3, 0, 4, 1, 2], "is_origin": [False, True, False, True, False], "parent_row": [2, -1, 0, -1, 0],
        "depth": [2, 0, 1, 0, 1], "completeness": [0.5, 1.0, 0.6, 1.0, 0.9],
    }, schema_overrides={"depth": pl.Int32})
    edges = pl.DataFrame([edge(0, 2, 0.9, "spin", 0.10, False), edge(2, 3, 0.6, "mixed", 0.05, True), edge(0, 4, 0.3, "truncation", 0.5, True)])
    cluster = np.array([0, 1, 0, 0, 0])
    ids = np.array(["cX", "cY"], dtype=object)[cluster]
    return tables.assemble_tables(docs, placement, edges, ids, 0.08)


def test_assemble_tables_places_rows_and_names_edge_ends(assembled) -> None:
    docs = assembled.documents
    assert docs.select("doc_id", "cluster_id", "is_origin", "parent_id", "depth", "completeness").rows() == [
        ("x0", "cX", True, None, 0, 1.0), ("x1", "cX", False, "x0", 1, 0.9), ("x3", "cX", False, "x0", 1, 0.6),
        ("x2", "cX", False, "x1", 2, 0.5), ("y0", "cY", True, None, 0, 1.0),
    ]
    assert docs.columns[:7] == ["doc_id", "text", "title", "source", "n_tokens", "n_chars", "content_hash"]
    assert schemas.conform(docs, schemas.DOCUMENTS).schema == schemas.DOCUMENTS
    edges = assembled.edges
    assert edges.select("cluster_id", "parent_id", "child_id", "confidence").rows() == [
        ("cX", "x0", "x1", 0.9), ("cX", "x0", "x3", 0.3), ("cX", "x1", "x2", 0.6),
    ]
    assert "parent" not in edges.columns and "child" not in edges.columns
    trace_columns = [name for name in schemas.EDGES.names() if name not in passages.EDGE_COLUMNS and name != "rewritten"]
    assert schemas.conform(edges, pl.Schema({n: schemas.EDGES[n] for n in trace_columns})).columns == trace_columns  # the rest: trace.passages


def test_summarize_clusters_counts_sizes_duplicates_and_shares(assembled) -> None:
    clusters = schemas.conform(assembled.clusters, schemas.CLUSTERS)
    assert clusters.rows() == [
        ("cX", 4, "x0", "X story", 2, 1, 0.6, 0.333333, 0.666667),
        ("cY", 1, "y0", "Y story", 0, 0, 0.0, 0.0, 0.0),
    ]
    # "spun" is spin or mixed at the spin rate given: at 0.05 the mixed edge counts too, a truncation never does.
    looser = tables.summarize_clusters(assembled.documents, assembled.edges, 0.05).filter(pl.col("cluster_id") == "cX")
    assert looser["share_spun"].item() == 0.666667
    stricter = tables.summarize_clusters(assembled.documents, assembled.edges, 0.2).filter(pl.col("cluster_id") == "cX")
    assert stricter["share_spun"].item() == 0.0


def test_clusters_are_sorted_by_size_then_id() -> None:
    docs = documents([("b", "B", "1"), ("a", "A", "2"), ("c", "C", "3"), ("d", "D", "4")]).with_columns(
        pl.Series("cluster_id", ["c2", "c3", "c1", "c1"]), pl.Series("is_origin", [True, True, True, False]),
        pl.Series("depth", [0, 0, 0, 1], dtype=pl.Int32),
    )
    edges = pl.DataFrame([edge(0, 0, 0.5, "spin", 0.3, False)]).drop("parent", "child").with_columns(
        pl.lit("c1").alias("cluster_id"), pl.lit("c").alias("parent_id"), pl.lit("d").alias("child_id"),
    )
    assert tables.summarize_clusters(docs, edges, 0.08)["cluster_id"].to_list() == ["c1", "c2", "c3"]


def test_empty_tables_have_the_contract_columns() -> None:
    base = {"doc_id": pl.String, "text": pl.String, "title": pl.String, "source": pl.String, "lang": pl.String}
    empty = tables.empty_tables(pl.DataFrame(schema=base))
    assert schemas.conform(empty.documents, schemas.DOCUMENTS, keep_extra=True).columns == [*schemas.DOCUMENTS.names(), "lang"]
    assert empty.edges.schema == schemas.EDGES and empty.clusters.schema == schemas.CLUSTERS
    assert empty.documents.height == 0


def test_cluster_table_lists_the_largest_multi_document_clusters(assembled) -> None:
    rows = tables.cluster_table(assembled.clusters)
    assert rows == [{
        "cluster_id": "cX", "size": 4, "origin_id": "x0", "origin_title": "X story", "max_depth": 2,
        "mean_confidence": 0.6, "share_spun": 0.333, "share_truncated": 0.667,
    }]
    assert tables.cluster_table(assembled.clusters, limit=0) == []


def test_tree_lines_draw_the_derivation_tree_origin_first(assembled) -> None:
    assert tables.tree_lines(assembled.documents, assembled.edges, "cX") == [
        "x0  [origin]  X story",
        "    └─ x1  [spin, conf 0.90, kept 25/40]  X copy",
        "        └─ x2  [mixed, conf 0.60, kept 25/40]  X spun",
        "    └─ x3  [truncation, conf 0.30, kept 25/40]  X head",
    ]
    assert tables.tree_lines(assembled.documents, assembled.edges, "cY") == ["y0  [origin]  Y story"]


def test_largest_trees_markdown(assembled) -> None:
    text = tables.largest_trees_markdown(assembled.documents, assembled.clusters, assembled.edges)
    assert text.splitlines()[:4] == ["# Largest derivation trees", "", "## cX (4 documents)", "```"]
    assert "└─ x2" in text and "cY" not in text
    lonely = assembled.clusters.filter(pl.col("size") == 1)
    assert tables.largest_trees_markdown(assembled.documents, lonely, assembled.edges) == (
        "# Largest derivation trees\n\nNo document has a copy in this run."
    )


# ---------------------------------------------------------------------------- the Parquet contract (schemas)


def test_the_contract_columns_are_pinned() -> None:
    """Users join on these names and types: adding at the end is fine, renaming or retyping is not."""
    assert list(schemas.DOCUMENTS.items()) == [
        ("doc_id", pl.String), ("cluster_id", pl.String), ("is_origin", pl.Boolean), ("parent_id", pl.String),
        ("depth", pl.Int32), ("completeness", pl.Float64), ("title", pl.String), ("source", pl.String),
        ("n_tokens", pl.Int32), ("n_chars", pl.Int32), ("content_hash", pl.String), ("text", pl.String),
    ]
    assert list(schemas.CLUSTERS.items()) == [
        ("cluster_id", pl.String), ("size", pl.Int32), ("origin_id", pl.String), ("origin_title", pl.String),
        ("max_depth", pl.Int32), ("n_exact_duplicates", pl.Int32), ("mean_confidence", pl.Float64),
        ("share_spun", pl.Float64), ("share_truncated", pl.Float64),
    ]
    assert list(schemas.EDGES.items())[:6] == [
        ("cluster_id", pl.String), ("parent_id", pl.String), ("child_id", pl.String), ("confidence", pl.Float64),
        ("similarity", pl.Float64), ("change_kind", pl.String),
    ]
    assert schemas.EDGES.names()[6:] == [
        "parent_tokens", "child_tokens", "kept", "inserted", "deleted", "substituted", "jaccard",
        "containment_child_in_parent", "containment_parent_in_child", "is_truncation", "spin_rate",
        "boilerplate_lines_added", "sentences_reordered", "substitution_examples",
        "copy_confidence", "parent_confidence", "rewritten", "evidence_tokens", "passages",
    ]
    assert list(schemas.EVIDENCE.items()) == [
        ("cluster_id", pl.String), ("parent_id", pl.String), ("child_id", pl.String), ("parent_start", pl.Int32),
        ("parent_end", pl.Int32), ("child_start", pl.Int32), ("child_end", pl.Int32), ("tokens", pl.Int32),
        ("similarity", pl.Float64), ("kind", pl.String),
    ]
    assert schemas.EDGES["substitution_examples"] == pl.List(pl.String) and schemas.EDGES["is_truncation"] == pl.Boolean
    assert list(schemas.REJECTS.items()) == [("source", pl.String), ("doc_id", pl.String), ("reason", pl.String), ("detail", pl.String)]
    assert schemas.CLUSTER_HISTORY.names() == ["generation", "event", "cluster_id", "other_cluster_id", "origin_id", "size"]
    assert schemas.DOCUMENT_VERSIONS.names() == [
        "doc_id", "version", "content_hash", "fingerprint", "first_generation", "superseded_generation", "cluster_id", "text",
    ]
    assert list(schemas.TABLES) == ["documents", "clusters", "edges", "rejects", "evidence"]
    assert list(schemas.STORE_TABLES) == ["cluster_history", "document_versions"]
    assert set(schemas.REJECT_REASONS) == {
        "empty_text", "undecodable_bytes", "binary_file", "duplicate_id", "missing_id", "too_short", "too_large",
        "unreadable_record", "unsupported_file", "text_not_string", "id_not_scalar", "not_a_regular_file", "dangling_symlink",
        "unreadable_file",
    }


def test_conform_orders_and_casts_and_keeps_extras_only_when_asked() -> None:
    frame = pl.DataFrame({"lang": ["en"], "detail": ["d"], "reason": ["too_short"], "doc_id": [7], "source": ["s"], "extra": [1]})
    out = schemas.conform(frame, schemas.REJECTS)
    assert out.schema == schemas.REJECTS and out.row(0) == ("s", "7", "too_short", "d")
    kept = schemas.conform(frame, schemas.REJECTS, keep_extra=True)
    assert kept.columns == ["source", "doc_id", "reason", "detail", "lang", "extra"]
    with pytest.raises(KeyError, match=r"\['source'\]"):
        schemas.conform(frame.drop("source"), schemas.REJECTS)
    assert schemas.empty(schemas.EDGES).schema == schemas.EDGES and schemas.empty(schemas.EDGES).height == 0


def test_write_table_conforms_and_writes_atomically(tmp_path: Path) -> None:
    frame = pl.DataFrame({"doc_id": ["a"], "reason": ["too_short"], "detail": ["d"], "source": ["s"], "lang": ["en"]})
    path = schemas.write_table(frame, "rejects", tmp_path / "new" / "out")
    assert path == tmp_path / "new" / "out" / "rejects.parquet"
    assert pl.read_parquet(path).schema == schemas.REJECTS  # only documents carry extra columns
    assert sorted(p.name for p in path.parent.iterdir()) == ["rejects.parquet"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(KeyError):
        schemas.write_table(frame, "no_such_table", tmp_path)


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.parquet"
    schemas.write_parquet_atomic(pl.DataFrame({"v": [1, 2]}), path)

    def half_then_fail(self, file, **kwargs):
        Path(file).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        schemas.write_parquet_atomic(pl.DataFrame({"v": [3]}), path)
    monkeypatch.undo()
    assert pl.read_parquet(path)["v"].to_list() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_tables_are_written_in_row_groups_of_16k_rows(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "big.parquet"
    schemas.write_parquet_atomic(pl.DataFrame({"v": np.arange(40_000)}), path)
    groups = duckdb.sql(f"select row_group_num_rows from parquet_metadata('{path}') order by row_group_id").fetchall()
    assert [g[0] for g in groups] == [16_384, 16_384, 40_000 - 2 * 16_384]


def test_json_is_written_sorted_and_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    schemas.write_json_atomic({"b": 1, "a": {"path": Path("/x")}}, path)
    text = path.read_text()
    assert text == '{\n  "a": {\n    "path": "/x"\n  },\n  "b": 1\n}\n'
    assert schemas.read_json(path) == {"a": {"path": "/x"}, "b": 1}
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        schemas.write_json_atomic(circular, path)
    assert schemas.read_json(path) == {"a": {"path": "/x"}, "b": 1}  # the previous file stays
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_check_output_dir_creates_folders_and_refuses_files(tmp_path: Path) -> None:
    schemas.check_output_dir(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProvenanceError, match=r"output path .*file exists and is not a folder"):
        schemas.check_output_dir(tmp_path / "file")
    with pytest.raises(ProvenanceError, match=r"^cannot create output folder .*under"):
        schemas.check_output_dir(tmp_path / "file" / "under")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_output_dir_refuses_a_folder_it_cannot_write(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ProvenanceError, match="is not writable"):
            schemas.check_output_dir(locked)
    finally:
        locked.chmod(0o700)
