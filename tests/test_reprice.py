"""``trace.reprice``: a store's kept pricings concatenate and select without losing an owner or the bag order."""

from __future__ import annotations

import numpy as np
import polars as pl

from provenance.trace import reprice


def part(ids: list[str], pairs: list[tuple[str, str]], bags: list[tuple[int, int, int]]) -> reprice.Priced:
    """A pricing of documents ``ids`` and ``pairs``; ``bags`` as ``(kind, owner, value)`` rows, sorted here."""
    kind, owner, value = (list(c) for c in zip(*sorted(bags, key=lambda r: (r[0], r[1])))) if bags else ([], [], [])
    return reprice.Priced(
        pl.DataFrame({"doc_id": ids, "root_fixed": [float(i) for i in range(len(ids))]}, schema=reprice.DOCS),
        pl.DataFrame({"a_id": [a for a, _ in pairs], "b_id": [b for _, b in pairs], "fixed_ab": [1.0] * len(pairs),
                      "fixed_ba": [2.0] * len(pairs), "near": [0.5] * len(pairs)}, schema=reprice.PAIRS),
        pl.DataFrame({"kind": kind, "owner": owner, "value": value, "flag": [False] * len(kind)}, schema=reprice.BAGS),
    )


def by_owner(priced: reprice.Priced) -> dict[tuple[int, str], list[int]]:
    """Bag values per (kind, owning document id or pair ids), in bag order: what pricing sums."""
    out: dict[tuple[int, str], list[int]] = {}
    docs, pairs = priced.docs["doc_id"].to_list(), [f"{a}-{b}" for a, b in priced.pairs.select("a_id", "b_id").iter_rows()]
    for kind, owner, value in priced.bags.select("kind", "owner", "value").iter_rows():
        name = docs[owner] if kind in reprice.DOC_KINDS else pairs[owner]
        out.setdefault((kind, name), []).append(value)
    return out


FIRST = part(["a", "b"], [("a", "b")], [(reprice.ROOT, 0, 11), (reprice.ROOT, 0, 12), (reprice.ROOT, 1, 13), (reprice.KEY, 1, 14),
                                         (reprice.AB, 0, 15), (reprice.BA, 0, 16)])
SECOND = part(["c", "d", "e"], [("c", "d"), ("d", "e")], [(reprice.ROOT, 2, 21), (reprice.ROOT, 0, 22), (reprice.GRAM, 1, 23),
                                                          (reprice.AB, 1, 24), (reprice.AB, 1, 25), (reprice.BA, 0, 26)])


def test_concat_keeps_every_bag_with_its_owner_in_order() -> None:
    both = reprice.Priced.concat([FIRST, reprice.Priced.empty(), SECOND])
    assert both.docs["doc_id"].to_list() == ["a", "b", "c", "d", "e"]
    assert by_owner(both) == {**by_owner(FIRST), **by_owner(SECOND)}
    # Sorted by kind, then owner, as the pricing's offsets need.
    kind, owner = both.bags["kind"].to_numpy(), both.bags["owner"].to_numpy()
    assert (np.lexsort((owner, kind)) == np.arange(len(kind))).all()


def test_concat_of_one_part_is_that_part_and_of_none_is_empty() -> None:
    assert reprice.Priced.concat([reprice.Priced.empty(), FIRST]) is FIRST
    assert reprice.Priced.concat([]).docs.height == 0


def test_concat_then_select_gives_back_a_part() -> None:
    both = reprice.Priced.concat([FIRST, SECOND])
    again = both.select(pl.Series(["c", "d", "e"]))
    assert by_owner(again) == by_owner(SECOND)
    assert again.pairs.equals(SECOND.pairs)
