"""A traced cluster's derivation kept with the corpus counts left out, so a later run can decide it again cheaply.

The derivation model (``trace.derivation``) reads two kinds of corpus facts:
which short lines and n-grams recur (the *foreign* marks, discrete), and how
many clusters use each word (``N`` and every ``f_w``, continuous: each run's
new documents move them all a little).  Given the foreign marks, every cost
is a count of acts plus the description lengths of a bag of words
(:class:`derivation.Pricing`), and the acts and bags are facts of the two
texts alone.  :class:`Priced` keeps them by document id; a later run checks
that every line value it read still recurs (or not) as it did
(:meth:`Priced.lines_hold`), prices the bags under today's counts
(:meth:`Priced.costs`) and runs the tree, the date rule and the confidence
again (``derivation.decide``): the decisions of a fresh trace under today's
counts, without aligning a text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from provenance.trace import derivation

#: What a bag row belongs to: a document's root (its non-foreign tokens), its short-line keys and n-grams
#: (``flag``: whether the value recurred, what its foreign marks rest on), or a pair's insert in either direction.
ROOT, KEY, GRAM, AB, BA = 0, 1, 2, 3, 4
DOCS = pl.Schema({"doc_id": pl.String, "root_fixed": pl.Float64})
PAIRS = pl.Schema({"a_id": pl.String, "b_id": pl.String, "fixed_ab": pl.Float64, "fixed_ba": pl.Float64, "near": pl.Float64})
BAGS = pl.Schema({"kind": pl.UInt8, "owner": pl.Int64, "value": pl.UInt64, "flag": pl.Boolean})
DOC_KINDS = (ROOT, KEY, GRAM)


def _bag_rows(kind: int, lo: np.ndarray, values: np.ndarray, flags: np.ndarray | None = None) -> pl.DataFrame:
    owner = np.repeat(np.arange(len(lo) - 1, dtype=np.int64), np.diff(lo))
    return pl.DataFrame({
        "kind": np.full(len(values), kind, dtype=np.uint8), "owner": owner, "value": values.astype(np.uint64),
        "flag": flags if flags is not None else np.zeros(len(values), dtype=bool),
    }, schema=BAGS)


@dataclass
class Priced:
    """Pricings of traced clusters: ``docs`` (members), ``pairs`` (candidate pairs by id) and their ``bags``.

    ``bags.owner`` indexes ``docs`` for the document kinds and ``pairs`` for the
    pair kinds; rows are sorted by kind and owner, in bag order within an owner
    (the order description lengths are summed in).
    """

    docs: pl.DataFrame
    pairs: pl.DataFrame
    bags: pl.DataFrame

    @staticmethod
    def empty() -> Priced:
        return Priced(pl.DataFrame(schema=DOCS), pl.DataFrame(schema=PAIRS), pl.DataFrame(schema=BAGS))

    @staticmethod
    def of(pricing: derivation.Pricing, batch: derivation.Batch, facts: derivation.DerivationFacts, ids: pl.Series,
           a: np.ndarray, b: np.ndarray) -> Priced:
        """The pricing of a batch (documents ``ids``, pairs ``a, b`` by batch position) and the line values it read."""
        keys, grams = derivation.line_facts(batch)
        n = ids.len()
        bags = pl.concat([
            _bag_rows(ROOT, pricing.root_lo, pricing.root),
            _bag_rows(KEY, derivation.bag_offsets(keys["doc"].to_numpy(), n), keys["value"].to_numpy(), facts.lines.recurring(keys["value"].to_numpy())),
            _bag_rows(GRAM, derivation.bag_offsets(grams["doc"].to_numpy(), n), grams["value"].to_numpy(), facts.grams.recurring(grams["value"].to_numpy())),
            _bag_rows(AB, pricing.ab_lo, pricing.ab),
            _bag_rows(BA, pricing.ba_lo, pricing.ba),
        ])
        docs = pl.DataFrame({"doc_id": ids, "root_fixed": pricing.root_fixed}, schema=DOCS)
        pairs = pl.DataFrame({
            "a_id": ids.gather(a), "b_id": ids.gather(b), "fixed_ab": pricing.fixed_ab, "fixed_ba": pricing.fixed_ba, "near": pricing.near,
        }, schema=PAIRS)
        return Priced(docs, pairs, bags)

    @staticmethod
    def concat(parts: list[Priced]) -> Priced:
        """One :class:`Priced` of parts holding different documents.

        Each part's bags are sorted by kind and owner, so the result is each
        kind's slices one part after the other, owners shifted: no sort, and a
        single part is returned as it is (a store's first run keeps one).
        """
        parts = [p for p in parts if p.docs.height]
        if not parts:
            return Priced.empty()
        if len(parts) == 1:
            return parts[0]
        kinds = np.arange(BA + 2)
        bounds = [np.searchsorted(p.bags["kind"].to_numpy(), kinds) for p in parts]
        n_docs = np.cumsum([0] + [p.docs.height for p in parts])
        n_pairs = np.cumsum([0] + [p.pairs.height for p in parts])
        bags = [
            p.bags.slice(int(lo[k]), int(lo[k + 1] - lo[k])).with_columns(pl.col("owner") + int((n_docs if k in DOC_KINDS else n_pairs)[i]))
            for k in kinds[:-1].tolist() for i, (p, lo) in enumerate(zip(parts, bounds))
        ]
        return Priced(pl.concat([p.docs for p in parts]), pl.concat([p.pairs for p in parts]), pl.concat(bags, rechunk=True))

    def select(self, doc_ids: pl.Series) -> Priced:
        """The documents ``doc_ids`` (those it holds) and the pairs between them."""
        keep_doc = self.docs["doc_id"].is_in(doc_ids.implode()).to_numpy()
        keep_pair = (self.pairs["a_id"].is_in(doc_ids.implode()) & self.pairs["b_id"].is_in(doc_ids.implode())).to_numpy()
        new_doc = np.cumsum(keep_doc) - 1
        new_pair = np.cumsum(keep_pair) - 1
        kind = self.bags["kind"].to_numpy()
        owner = self.bags["owner"].to_numpy()
        is_doc = np.isin(kind, DOC_KINDS)
        keep = np.where(is_doc, keep_doc[np.where(is_doc, owner, 0)] if len(keep_doc) else False,
                        keep_pair[np.where(is_doc, 0, owner)] if len(keep_pair) else False)
        mapped = np.where(is_doc, new_doc[np.where(is_doc, owner, 0)] if len(new_doc) else 0,
                          new_pair[np.where(is_doc, 0, owner)] if len(new_pair) else 0)
        bags = self.bags.with_columns(pl.Series("owner", mapped, dtype=pl.Int64)).filter(pl.Series(keep))
        return Priced(self.docs.filter(pl.Series(keep_doc)), self.pairs.filter(pl.Series(keep_pair)), bags)

    def _ragged(self, kind: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.bags.filter(pl.col("kind") == kind)
        return derivation.bag_offsets(rows["owner"].to_numpy(), n), rows["value"].to_numpy()

    def lines_hold(self, facts: derivation.DerivationFacts) -> np.ndarray:
        """Per document of ``docs``: whether each short-line key and n-gram it holds recurs now as it did (same foreign marks)."""
        rows = self.bags.filter(pl.col("kind").is_in([KEY, GRAM]))
        value = rows["value"].to_numpy()
        now = np.where(rows["kind"].to_numpy() == KEY, facts.lines.recurring(value), facts.grams.recurring(value))
        broken = rows["owner"].to_numpy()[now != rows["flag"].to_numpy()]
        holds = np.ones(self.docs.height, dtype=bool)
        holds[broken] = False
        return holds

    def costs(self, facts: derivation.DerivationFacts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cost(a -> b), cost(b -> a))`` of ``pairs`` and the root cost of ``docs`` under ``facts``' counts."""
        root_lo, root = self._ragged(ROOT, self.docs.height)
        ab_lo, ab = self._ragged(AB, self.pairs.height)
        ba_lo, ba = self._ragged(BA, self.pairs.height)
        pricing = derivation.Pricing(
            self.pairs["fixed_ab"].to_numpy(), self.pairs["fixed_ba"].to_numpy(), self.pairs["near"].to_numpy(), ab_lo, ab, ba_lo, ba,
            self.docs["root_fixed"].to_numpy(), root_lo, root,
        )
        return pricing.costs(facts.words, facts.n_clusters)
