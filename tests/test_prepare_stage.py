"""prepare stage: two passes over batches; results independent of batching, spilling and of how batches are run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from provenance import spill
from provenance.config import Config
from provenance.ingest import ingest_stage
from provenance.prepare import minhash, normalize, shingle
from provenance.prepare.frequent import frequent_shingles
from provenance.prepare.stage import (
    Prepared,
    batches,
    hex_hashes,
    prepare_stage,
    shingle_batch,
    summarize_batch,
)
from tests.fixtures import datasketch_signature, make_article, noisy_copy, spin, truncate

FURNITURE = "Leave a Reply"  # in 6 kept documents: boilerplate
RARE_FURNITURE = "Subscribe to our newsletter"  # in 2 kept documents and 1 too-short one: not boilerplate
STOCK = "Officials said further details would follow later this week."  # 4 unrelated texts: frequent shingles

#: Options under which the small corpus has both boilerplate and frequent shingles.
OPTIONS = {"frequent_min_docs": 3, "num_perm": 64}


def corpus() -> dict[str, str]:
    """Doc id -> text.  Ids sort in this order, so rows are as listed."""
    story = make_article(0, headline=False)  # (a headline shared by 3 copies would be boilerplate too)
    origin = story + FURNITURE + "\n"
    docs = {
        "a-origin": origin,
        "b-shouted": noisy_copy(origin),  # an exact duplicate in capitals: no anchors of its own
        "c-head": truncate(story, 0.6) + FURNITURE + "\n",
        "d-spun": spin(story, 0.3, seed=2) + RARE_FURNITURE + "\n",
        "e-caf\u00e9": "Caf\u00e9 owners in M\u00fcnster said \u2014 again \u2014 that " + make_article(4, 3),
        "f-empty": "   ",  # rejected by ingest
        "g-short": "Only a few words here.\n" + RARE_FURNITURE,  # rejected by prepare: too short
        "h-twenty": " ".join(f"word{i}" for i in range(20)),  # exactly min_tokens: kept
        "i-nineteen": " ".join(f"term{i}" for i in range(19)),  # one short
    }
    for s in (1, 2, 3, 5):
        # The stock sentence ends a long paragraph (a short line of its own would be boilerplate).
        docs[f"s{s}"] = make_article(s, 6).rstrip() + " " + STOCK + "\n" + (FURNITURE if s != 5 else RARE_FURNITURE) + "\n"
    return docs


def frame(docs: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"id": list(docs), "text": list(docs.values())})


def prepare(docs: dict[str, str] | None = None, *, map_batches=None, spill_folder: Path | None = None, **options):
    config = Config.from_options({**OPTIONS, **options})
    ingested, _ = ingest_stage(frame(docs or corpus()), config)
    prepared, report = prepare_stage(ingested, config, map_batches=map_batches, spill_folder=spill_folder)
    return prepared, report, ingested, config


def assert_same(p: Prepared, q: Prepared) -> None:
    assert p.documents.equals(q.documents)
    assert p.rejects.sort("doc_id").equals(q.rejects.sort("doc_id"))
    for name in shingle.VIEWS:
        np.testing.assert_array_equal(p.views[name].offsets, q.views[name].offsets)
        np.testing.assert_array_equal(p.views[name].hashes, q.views[name].hashes)
        np.testing.assert_array_equal(p.signatures[name], q.signatures[name])
    assert p.boilerplate.equals(q.boilerplate)
    np.testing.assert_array_equal(p.frequent, q.frequent)


@pytest.fixture(scope="module")
def base():
    return prepare()


def row(prepared: Prepared, doc_id: str) -> int:
    return prepared.documents["doc_id"].to_list().index(doc_id)


# ---------------------------------------------------------------------------- batching


def test_batches_cover_the_rows():
    assert batches(0, 5) == [(0, 0)]
    assert batches(5, 5) == [(0, 5)]
    assert batches(11, 5) == [(0, 5), (5, 10), (10, 11)]
    assert batches(3, 1) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_results_do_not_depend_on_the_batch_size(base, batch_size):
    prepared, report, _, _ = prepare(batch_size=batch_size)
    assert_same(prepared, base[0])
    n = prepared.documents.height
    assert report.stats["batches"] == len(batches(n, batch_size)) > 1
    assert {k: v for k, v in report.stats.items() if k != "batches"} == {k: v for k, v in base[1].stats.items() if k != "batches"}


def test_map_batches_runs_both_passes_and_its_result_order_does_not_matter(base):
    calls = []

    def backwards(fn, *iterables):
        calls.append((fn.__name__, len(iterables[0])))
        return list(map(fn, *iterables))[::-1]  # e.g. tasks finishing out of order

    prepared, _, _, _ = prepare(map_batches=backwards, batch_size=3)
    n_ingested = len(corpus()) - 1  # the empty text never reaches prepare
    assert calls == [("summarize_batch", len(batches(n_ingested, 3))), ("shingle_batch", len(batches(prepared.documents.height, 3)))]
    assert_same(prepared, base[0])


def test_summarize_batch_numbers_lines_by_corpus_row():
    texts = pl.Series(list(corpus().values()))
    options = Config().prepare
    whole = normalize.summarize(texts, options.seed, options.boilerplate_max_tokens)
    part = summarize_batch(texts.slice(4, 5), 4, options)
    assert part.lo == 4
    assert part.n_tokens.tolist() == whole.n_tokens[4:9].tolist()
    assert part.content_hash.tolist() == whole.content_hash[4:9].tolist()
    inside = (whole.line_doc >= 4) & (whole.line_doc < 9)
    assert part.line_doc.tolist() == whole.line_doc[inside].tolist()
    assert part.line_key.tolist() == whole.line_key[inside].tolist()


def test_shingle_batch_offsets_its_boilerplate_rows_and_counts_tokens_itself(base, tmp_path):
    config = base[3]
    options = config.prepare
    texts = pl.Series([make_article(1, 2) + FURNITURE, FURNITURE + "\n" + make_article(2, 2)])
    keys = np.sort(normalize.tokenize(pl.Series([FURNITURE]), options.seed, max_key_tokens=options.boilerplate_max_tokens).line_key)
    counted = shingle_batch(texts, 40, keys, options)
    given = shingle_batch(texts, 40, keys, options, normalize.summarize(texts, options.seed, 20).n_tokens)
    assert counted.lo == 40
    assert counted.boilerplate.rows() == [(40, 2), (41, 0)]  # (corpus row, ordinal among the text's lines)
    assert counted.n_boilerplate == 6
    for name in shingle.VIEWS:
        np.testing.assert_array_equal(counted.views[name].hashes, given.views[name].hashes)
        np.testing.assert_array_equal(counted.signatures[name], given.signatures[name])
    # A batch of spilled rows reads its texts from disk and gives the same.
    spilled = spill.spill_texts(texts, 2, tmp_path)
    from_disk = shingle_batch(spill.TextRows(spilled, np.arange(2)), 40, keys, options)
    np.testing.assert_array_equal(from_disk.signatures["words"], counted.signatures["words"])
    assert from_disk.boilerplate.equals(counted.boilerplate)


# ---------------------------------------------------------------------------- documents and rejects


def test_too_short_documents_are_rejected_with_their_reason(base):
    prepared, report, ingested, _ = base
    ids = prepared.documents["doc_id"].to_list()
    assert "h-twenty" in ids and "g-short" not in ids and "i-nineteen" not in ids
    rejects = prepared.rejects.sort("doc_id")
    assert rejects.rows() == [
        ("dataframe", "f-empty", "empty_text", "text is empty or white space"),
        ("dataframe", "g-short", "too_short", "fewer than 20 tokens"),
        ("dataframe", "i-nineteen", "too_short", "fewer than 20 tokens"),
    ]
    assert report.stats["rejected_too_short"] == 2
    assert report.rows_in == ingested.documents.height == len(corpus()) - 1 and report.rows_out == len(ids) == 10
    # The threshold is the option: at 19 the nineteen-token text is kept.
    lower, *_ = prepare(min_tokens=19)
    assert "i-nineteen" in lower.documents["doc_id"].to_list() and "g-short" not in lower.documents["doc_id"].to_list()
    assert lower.rejects.filter(pl.col("reason") == "too_short")["detail"].to_list() == ["fewer than 19 tokens"]


def test_document_columns(base):
    prepared, report, _, config = base
    docs = prepared.documents
    assert docs.columns == ["doc_id", "text", "title", "source", "content_hash", "n_tokens", "n_chars"]
    assert docs.schema["n_tokens"] == pl.Int32 and docs.schema["n_chars"] == pl.Int32
    summary = normalize.summarize(docs["text"], config.prepare.seed, 20)
    assert docs["content_hash"].to_list() == [f"{h:016x}" for h in summary.content_hash.tolist()]
    assert docs["n_tokens"].to_list() == summary.n_tokens.tolist()
    assert docs["n_chars"].to_list() == [len(t) for t in docs["text"].to_list()]  # characters, not bytes
    cafe = docs.row(row(prepared, "e-caf\u00e9"), named=True)
    assert cafe["n_chars"] < len(cafe["text"].encode())
    assert report.stats["tokens"] == int(summary.n_tokens.sum())
    assert hex_hashes(np.array([1, 2**64 - 1], dtype=np.uint64)) == ["0000000000000001", "ffffffffffffffff"]


def test_views_and_signatures_are_those_of_each_text(base):
    prepared, report, _, config = base
    options = config.prepare
    texts = prepared.documents["text"]
    summary = normalize.summarize(texts, options.seed, options.boilerplate_max_tokens)
    keys = normalize.boilerplate_keys(summary.line_doc, summary.line_key, options.boilerplate_min_docs)
    direct = shingle.text_views(texts, summary.n_tokens, keys, seed=options.seed, word_ngram=options.word_ngram,
                                anchor_ngram=options.anchor_ngram, max_key_tokens=options.boilerplate_max_tokens)
    for name in shingle.VIEWS:
        np.testing.assert_array_equal(prepared.views[name].offsets[:2], direct.views[name].offsets[:2])
    np.testing.assert_array_equal(prepared.views["words"].offsets, direct.views["words"].offsets)
    np.testing.assert_array_equal(prepared.views["words"].hashes, direct.views["words"].hashes)
    copy = row(prepared, "b-shouted")
    for i in range(prepared.documents.height):
        if i != copy:  # the exact duplicate carries its first copy's anchors (below)
            assert prepared.views["anchors"].doc(i).tolist() == direct.views["anchors"].doc(i).tolist()
        anchors = prepared.views["anchors"].doc(i)
        np.testing.assert_array_equal(prepared.signatures["anchors"][i], datasketch_signature(anchors, 64, options.seed))
    assert prepared.signatures["words"].shape == (10, 64) and prepared.signatures["words"].dtype == np.uint32
    assert report.stats["words_shingles"] == len(prepared.views["words"].hashes)
    assert report.stats["anchors_shingles"] == len(prepared.views["anchors"].hashes)


def test_exact_duplicates_share_the_first_copys_anchors(base):
    prepared, _, _, config = base
    options = config.prepare
    first, copy = row(prepared, "a-origin"), row(prepared, "b-shouted")
    docs = prepared.documents
    assert docs["content_hash"][first] == docs["content_hash"][copy]
    anchors = prepared.views["anchors"]
    assert anchors.doc(copy).tolist() == anchors.doc(first).tolist() and len(anchors.doc(first)) > 20
    np.testing.assert_array_equal(prepared.signatures["anchors"][copy], prepared.signatures["anchors"][first])
    # On its own the shouted copy has (almost) no anchors: the sharing is what made them equal.
    furniture = normalize.tokenize(pl.Series([FURNITURE]), options.seed, max_key_tokens=20).line_key
    alone = shingle.text_views(docs["text"].slice(copy, 1), docs["n_tokens"].slice(copy, 1).to_numpy(), furniture,
                               seed=options.seed, word_ngram=2, anchor_ngram=2, max_key_tokens=20)
    assert alone.boilerplate_tokens == 3
    assert alone.views["anchors"].hashes.tolist() != anchors.doc(first).tolist()
    assert 3 * len(alone.views["anchors"].hashes) < len(anchors.doc(first))
    # Their words views are equal without any sharing (lower case), and so are their word signatures.
    assert prepared.views["words"].doc(copy).tolist() == prepared.views["words"].doc(first).tolist()
    np.testing.assert_array_equal(prepared.signatures["words"][copy], prepared.signatures["words"][first])
    # The copy that comes first in doc_id order is the one shared, whichever it is.
    docs_ = corpus()
    swapped = {"0-shouted": docs_["b-shouted"], **{k: v for k, v in docs_.items() if k != "b-shouted"}}
    other, *_ = prepare(swapped)
    a, b = row(other, "0-shouted"), row(other, "a-origin")
    assert other.views["anchors"].doc(b).tolist() == other.views["anchors"].doc(a).tolist()
    assert other.views["anchors"].doc(b).tolist() == alone.views["anchors"].hashes.tolist()


def test_boilerplate_is_what_recurs_in_kept_documents(base):
    prepared, report, _, _ = base
    furniture_rows = sorted(row(prepared, d) for d in ("a-origin", "b-shouted", "c-head", "s1", "s2", "s3"))
    assert sorted(prepared.boilerplate["doc"].to_list()) == furniture_rows
    # Each flagged line is the text's last line with tokens.
    for doc, line in prepared.boilerplate.iter_rows():
        assert line == int(normalize.tokenize(prepared.documents["text"].slice(doc, 1), 1).line.max()) > 0
    assert report.stats["boilerplate_tokens"] == 3 * len(furniture_rows)
    # The rare furniture is in 3 texts, but one of them is too short: it is not boilerplate.
    texts = prepared.documents["text"].to_list()
    assert sum(RARE_FURNITURE in t for t in texts) == 2 and RARE_FURNITURE in corpus()["g-short"]
    leave = shingle_set_of("leave a", prepared)
    subscribe = shingle_set_of("our newsletter", prepared)
    words = prepared.views["words"]
    assert not any(leave in set(words.doc(i).tolist()) for i in range(words.n_docs))
    assert sum(subscribe in set(words.doc(i).tolist()) for i in range(words.n_docs)) == 2


def shingle_set_of(text: str, prepared: Prepared) -> int:
    """The words-view shingle of a two-word text."""
    (h,) = shingle.text_views(pl.Series([text]), np.array([2]), np.zeros(0, np.uint64), seed=1, word_ngram=2, anchor_ngram=2,
                              max_key_tokens=20).views["words"].hashes.tolist()
    return h


# ---------------------------------------------------------------------------- frequent shingles


def test_frequent_shingles_are_left_out_of_the_words_signature_not_of_the_views(base):
    prepared, report, _, config = base
    frequent = prepared.frequent
    words = prepared.views["words"]
    # The sample (5,000 by default) holds all 10 documents: frequent means in 3 of them (the floor).
    expected = frequent_shingles(words.hashes, 10, min_share=config.prepare.frequent_min_share, min_docs=3)
    np.testing.assert_array_equal(frequent, expected)
    assert report.stats["frequent_word_shingles"] == len(frequent)
    sets = [set(words.doc(i).tolist()) for i in range(10)]
    counts = {h: sum(h in one for one in sets) for h in np.unique(words.hashes).tolist()}
    assert sorted(h for h, c in counts.items() if c >= 3) == frequent.tolist()
    held = minhash.holds_any(words, frequent)
    stock_rows = [row(prepared, f"s{s}") for s in (1, 2, 3, 5)]
    assert held[stock_rows].all()
    # The views keep every shingle (verification reads them), frequent ones included.
    stock = shingle_set_of("further details", prepared)
    assert stock in frequent.tolist()
    assert all(stock in set(words.doc(i).tolist()) for i in stock_rows)
    # A text with mostly its own shingles is signed around the frequent ones...
    signed_on_rest = 0
    for i in range(words.n_docs):
        own = np.setdiff1d(words.doc(i), frequent)
        whole = len(own) < config.prepare.frequent_min_kept_share * len(words.doc(i)) or len(own) == 0
        expected = words.doc(i) if whole else own
        np.testing.assert_array_equal(prepared.signatures["words"][i], datasketch_signature(expected, 64, 1))
        signed_on_rest += not whole and len(own) < len(words.doc(i))
    assert signed_on_rest >= 4
    # ...and the copies of story 0, made of shingles in 3+ texts, are signed whole.
    assert minhash.signed_sizes(words, frequent, min_kept_share=0.5)[row(prepared, "a-origin")] == words.sizes()[row(prepared, "a-origin")]
    # With the default floor (20 sampled documents) this small corpus leaves nothing out.
    default, default_report, _, _ = prepare(frequent_min_docs=20)
    assert len(default.frequent) == 0 and default_report.stats["frequent_word_shingles"] == 0
    np.testing.assert_array_equal(default.views["words"].hashes, words.hashes)


# ---------------------------------------------------------------------------- spilling


def test_spilled_texts_give_identical_views_and_signatures(base, tmp_path):
    spilled, report, ingested, _ = prepare(spill_over_mib=0, spill_folder=tmp_path / "spill")
    prepared = base[0]
    try:
        assert report.stats["texts_on_disk"] is True and base[1].stats["texts_on_disk"] is False
        assert "text" not in spilled.documents.columns and "text" not in ingested.documents.columns
        assert spilled.texts.path.is_relative_to(tmp_path / "spill")
        assert spilled.texts.load().to_list() == prepared.documents["text"].to_list()
        assert spilled.documents.equals(prepared.documents.drop("text"))
        for name in shingle.VIEWS:
            np.testing.assert_array_equal(spilled.views[name].offsets, prepared.views[name].offsets)
            np.testing.assert_array_equal(spilled.views[name].hashes, prepared.views[name].hashes)
            np.testing.assert_array_equal(spilled.signatures[name], prepared.signatures[name])
        assert spilled.boilerplate.equals(prepared.boilerplate)
        np.testing.assert_array_equal(spilled.frequent, prepared.frequent)
        assert spilled.rejects.sort("doc_id").equals(prepared.rejects.sort("doc_id"))
    finally:
        spilled.texts.remove()
    assert not (spilled.texts.path.parent).exists()


def test_texts_stay_in_memory_under_the_limit(base):
    prepared, _, ingested, _ = base
    assert prepared.texts is None and "text" in prepared.documents.columns and "text" in ingested.documents.columns
    # The limit is in MiB of UTF-8: this corpus is far below one.
    assert spill.text_bytes(prepared.documents["text"]) < 2**20


def test_a_failing_second_pass_removes_the_spill(tmp_path):
    def failing(fn, *iterables):
        if fn.__name__ == "shingle_batch":
            raise RuntimeError("worker lost")
        return list(map(fn, *iterables))

    with pytest.raises(RuntimeError, match="worker lost"):
        prepare(map_batches=failing, spill_over_mib=0, spill_folder=tmp_path / "spill")
    assert (tmp_path / "spill").is_dir() and not any((tmp_path / "spill").iterdir())


# ---------------------------------------------------------------------------- nothing kept


def test_no_document_kept():
    prepared, report, _, _ = prepare({"a": "too short", "b": "x y z"})
    assert prepared.documents.height == 0 and prepared.rejects["reason"].to_list() == ["too_short", "too_short"]
    for name in shingle.VIEWS:
        assert prepared.views[name].n_docs == 0
        assert prepared.signatures[name].shape == (0, 64)
    assert report.stats["batches"] == 1 and report.rows_out == 0 and report.stats["tokens"] == 0
