"""The derivation model: origin, parents and parent confidence as one minimum-cost tree.

The model is *parsimony over edit acts* (the Wagner/Fitch principle of
phylogenetics) for the acts copiers perform, with direction where an act's
direction is observable.  ``cost(p -> c)`` counts, in one unit ("one act"),
what a copier must do to turn version ``p`` into version ``c``:

* **delete** a run of ``p`` (truncation, a dropped sentence): 1 act per run,
  whatever its length (one cut removes the rest of a text); a run of whole
  sentences of ``p`` holding no content (a pasted line or boilerplate ``c``
  lacks) costs 2 acts: ``p`` got that text by a paste ``c`` shows no trace of,
  so ``p -> c`` needs the paste undone where ``c -> p`` needs only the paste;
* **insert** a run into ``c``: 1 act (the paste) plus, per *content* token,
  1 act and its description length ``idf(w) = log((N + 1) / (f_w + 1))``
  (``f_w`` clusters using ``w`` of ``N`` counted): a copier who writes new
  content writes it word by word.  A token is not content when the run closes
  no sentence (a *fragment*: a headline or boilerplate line, words glued into
  a sentence) or when it lies in a *foreign* line: a line of at most
  ``short_line`` words that other clusters hold, whole or mostly covered by
  their ``foreign_ngram``-grams, beyond the corpus's background sharing
  (pasted headlines of other stories, furniture recurring across unrelated
  texts);
* **substitute** a word (a replaced run of at most ``max_lemma`` tokens a side
  between kept text on one line): 1 act, the same both ways;
* **move** a block of sentences: ``move_per_break`` acts per breakpoint;
* every edge costs at least 1 act (a re-post with no visible change is a copy),
  plus a sub-act **proximity** term, the share of both sides' tokens not kept
  verbatim (< 1, symmetric): of parents needing equally many acts, the closer
  one wins (a chain of truncations hangs from the nearest longer version).

The **root** pays what its author wrote: ``sum idf(w)`` over its non-foreign
tokens (a writer uses words as often as language does, a spinner picks
thesaurus synonyms uniformly, so of two versions that differ by substitutions
the one with the commoner words is the likelier origin, by exactly the
log-odds ``sum log((f_v + 1) / (f_w + 1))``), plus 1 act per run of
non-content sentences past its first (fragments, mostly foreign sentences): an
original article holds no pasted headline, so each is an unexplained paste.

The **tree** is the minimum-cost arborescence of the cluster's candidate graph
(both directions of every verified pair) with a virtual super-root whose edge
into member ``d`` costs ``BIG + root(d)``; ``BIG`` exceeds the sum of all the
cluster's costs, so exactly one super-root edge is used and the optimum is
``min over r of (root(r) + best tree rooted at r)``: the origin is the version
from which the others derive at least cost, the most complete version
(inserting content is what costs) with pasted text and boilerplate not
counting as content.  Chu-Liu/Edmonds in Tarjan's ``O(E log E)`` form (skew
heaps with lazy offsets, union-find with rollback), compiled: a viral cluster
of thousands of copies traces in time linear in its edges (times a log).

**Stability under added copies.**  Every corpus statistic (word, line and
n-gram counts) counts clusters, so a copy added to a cluster changes none of
them, and ``cost`` depends only on the two texts.  Add an exact copy ``y'`` of
``y``: edges into and out of ``y'`` cost what ``y``'s cost, every edge is at
least 1 act, so in the best tree rooted at any ``r`` the copy hangs at the same
extra cost ``k`` and the argmin (the origin) cannot move to another existing
member (it can only tie with ``y'`` when ``y`` is the origin).

**Dates** decide only where the text gives no direction: with a publication
time, a child ``r`` of the origin ``o`` whose tree rooted at ``r`` (the edge
reversed) costs less than ``date_tie`` acts more than the optimum, and that
was published earlier, becomes the origin.  Text evidence of at least
``date_tie`` acts is never overridden.

**Parent confidence**: softmax over the child's candidate parents outside its
own subtree (any of them could be its parent with the rest of the tree
unchanged), ``P(q) ~ exp(-cost(q -> c) / temperature)``: each act an event of
odds ``e^-1``.

Ties between equally costly trees are broken by a hash of the document ids,
never by row order.  Work per verified pair: one reorder of sentences (a
compiled bit-parallel LCS of each unmatched sentence against the other text),
one ``rapidfuzz`` Levenshtein alignment and one compiled cost pass; memory is
per batch of whole clusters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numba
import numpy as np
import polars as pl
from rapidfuzz.distance import Levenshtein
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from provenance.config import TraceOptions
from provenance.kernels import GOLDEN, CountMap, fmix64
from provenance.prepare import normalize
from provenance.prepare.normalize import decode_utf8

#: Seed of the model's token, line and n-gram hashes (only counted and compared, never stored).
HASH_SEED = 0x5EED
#: Token ids become code points from here, so that a token sequence is a ``str`` for ``rapidfuzz``.
CHAR_BASE = 0x10000


# ---------------------------------------------------------------------------- tokens, lines, facts


@numba.njit(cache=True, nogil=True)
def _is_space(cp):  # pragma: no cover - compiled
    return cp == 32 or 9 <= cp <= 13 or cp == 0xA0 or 0x2000 <= cp <= 0x200A or cp == 0x3000 or cp == 0x2028 or cp == 0x2029


@numba.njit(cache=True, nogil=True)
def _is_closer(cp):  # pragma: no cover - compiled
    return cp == 34 or cp == 39 or cp == 41 or cp == 93 or cp == 0x2019 or cp == 0x201D or cp == 0xBB


@numba.njit(cache=True, nogil=True, parallel=True)
def _token_marks(buf, offsets, cls, t_start, end, at, size):  # pragma: no cover - compiled
    """Per token (as ``prepare.normalize``'s tokeniser cuts them): whether it closes a sentence, its byte span.

    A token closes a sentence when ``.``, ``!`` or ``?`` follows it (after
    other non-word characters), then only closing quotes or brackets, then
    white space or the end of the line: "... said." and "... ended?\u201d" close,
    "U.S" and "3.5" do not.
    """
    for d in numba.prange(len(offsets) - 1):
        i, stop = offsets[d], offsets[d + 1]
        nt = t_start[d]
        cur = -1  # the last token, while its trailing non-word text is read
        in_tok = False
        state = 0  # 1: a terminal mark (and closers) seen since the last token
        while i < stop:
            cp, n_bytes = decode_utf8(buf, i, stop)
            c = cls[cp] if cp < 0x10000 else np.uint8(0)
            if c & 1:
                if not in_tok:
                    in_tok = True
                    cur = nt
                    at[nt] = i - offsets[d]
                    nt += 1
                    state = 0
                size[cur] = i + n_bytes - offsets[d] - at[cur]
            else:
                in_tok = False
                if cur >= 0:
                    if cp == 46 or cp == 33 or cp == 63:
                        state = 1
                    elif state == 1 and _is_closer(cp):
                        pass
                    elif state == 1 and _is_space(cp):
                        end[cur] = True
                        state = 0
                    else:
                        state = 0
                    if cp == 10:
                        cur = -1
            i += n_bytes
        if cur >= 0 and state == 1:
            end[cur] = True


@dataclass
class Scan:
    """Tokens of some texts as flat arrays (no strings), for the model's counts and costs.

    Per token: ``hash`` (uint64, the tokeniser's, seeded :data:`HASH_SEED`),
    ``doc`` (position in the texts), ``line`` (line number over all the texts),
    ``end`` (closes a sentence), ``short`` (its line has at most ``short_line``
    tokens), ``key`` (its short line's hash, 0 otherwise), ``gram`` (hash of the
    ``foreign_ngram`` tokens from it on its short line, 0 otherwise); ``doc_lo``
    (each document's tokens) and, for spelling tokens out, ``at``/``size`` (byte
    span in the document's bytes ``buf[offsets[doc]:]``).
    """

    hash: np.ndarray
    doc: np.ndarray
    line: np.ndarray
    end: np.ndarray
    short: np.ndarray
    key: np.ndarray
    gram: np.ndarray
    doc_lo: np.ndarray
    at: np.ndarray
    size: np.ndarray
    buf: np.ndarray
    offsets: np.ndarray

    def words(self, tokens: np.ndarray) -> list[str]:
        """The lower-cased spelling of the tokens at ``tokens``."""
        out = []
        for t in tokens.tolist():
            lo = int(self.offsets[self.doc[t]] + self.at[t])
            out.append(self.buf[lo : lo + int(self.size[t])].tobytes().decode("utf-8", "replace").lower())
        return out


def scan(texts: pl.Series, options: TraceOptions, max_tokens: int | None = None) -> Scan:
    """:class:`Scan` of ``texts``: the compiled tokeniser's pass plus one for sentence ends, n-grams in numpy.

    ``max_tokens`` keeps each document's first tokens only (what an alignment reads).
    """
    buf, offsets = normalize.token_buffer(texts.fill_null(""))
    tokens = normalize.tokenize_buffer(buf, offsets, HASH_SEED, options.short_line)
    n = len(tokens.hash)
    t_start = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum(tokens.n_tokens, out=t_start[1:])
    end = np.zeros(n, dtype=np.bool_)
    at = np.zeros(n, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    if n:
        _token_marks(buf, offsets, normalize.char_tables()[0], t_start, end, at, size)
    doc, line, tokens_hash, doc_lo = tokens.doc, tokens.line, tokens.hash, t_start
    if max_tokens is not None and n and tokens.n_tokens.max() > max_tokens:
        keep = np.arange(n) - t_start[doc] < max_tokens
        doc, line, end, at, size, tokens_hash = doc[keep], line[keep], end[keep], at[keep], size[keep], tokens_hash[keep]
        doc_lo = np.zeros(len(offsets), dtype=np.int64)
        np.cumsum(np.minimum(tokens.n_tokens, max_tokens), out=doc_lo[1:])
    key = tokens.line_key[line] if len(line) else np.zeros(0, dtype=np.uint64)
    short = key != 0
    gram = np.zeros(len(key), dtype=np.uint64)
    on_short = np.flatnonzero(short)  # a short line's tokens are contiguous: n-grams over them stay inside lines
    gram[on_short] = ngram_hashes(tokens_hash[on_short], line[on_short], options.foreign_ngram)
    return Scan(tokens_hash, doc, line, end, short, key, gram, doc_lo, at, size, buf, offsets)


def ngram_hashes(hashes: np.ndarray, line: np.ndarray, k: int) -> np.ndarray:
    """Per token: a hash of the ``k`` tokens from it on, when they lie on its line (else 0)."""
    n = len(hashes)
    out = np.zeros(n, dtype=np.uint64)
    if n < k:
        return out
    m = n - k + 1
    g = hashes[:m].copy()
    with np.errstate(over="ignore"):
        for j in range(1, k):
            g = fmix64(g * GOLDEN + hashes[j : j + m])
    valid = line[k - 1 :] == line[:m]
    out[:m] = np.where(valid, g | np.uint64(1), 0)  # never 0 for a real n-gram
    return out


def fact_parts(texts: pl.Series, cluster: np.ndarray, options: TraceOptions) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(token, n)``, ``(key, n)`` and ``(gram, n)``: clusters of ``texts`` holding each (whole clusters only).

    Each cluster lies in one batch, so the corpus counts are the sums of the
    batches' (:func:`facts_of`), and only a batch's distinct values are kept.
    """
    got = scan(texts, options)
    owner = cluster.astype(np.int64)[got.doc]
    short = got.short
    has_gram = got.gram != 0

    def per_cluster(values: np.ndarray, name: str, where: np.ndarray | None = None) -> pl.DataFrame:
        frame = pl.DataFrame({"cluster": owner if where is None else owner[where], name: values if where is None else values[where]})
        return frame.group_by(name).agg(pl.col("cluster").n_unique().cast(pl.Int64).alias("n"))  # one hash pass

    return per_cluster(got.hash, "token"), per_cluster(got.key, "key", short), per_cluster(got.gram, "gram", has_gram)


def exceptional(counts: np.ndarray) -> int:
    """Fewest clusters holding a line (or n-gram) for it to be recurring text, not shared content.

    Texts share some lines by chance or by design (quotes, wire paragraphs, a
    corpus recombined from a sentence pool): the typical line's number of *other*
    clusters, ``lam = median(counts - 1)``, is that background.  A line recurs
    when a Poisson(lam) background would reach its count with probability under
    ``1 / len(counts)`` (fewer than one such line expected among them all).  With
    ``lam = 0`` (the usual case) one other cluster is enough.
    """
    if len(counts) == 0:
        return 2
    lam = float(np.median(counts - 1))
    if lam <= 0:
        return 2
    target = 1.0 / len(counts)
    k, term, tail = 0, math.exp(-lam), 1.0  # tail = P(K >= k)
    while tail >= target:
        tail -= term
        k += 1
        term *= lam / k
    return 1 + max(k, 1)


@dataclass
class Counts:
    """Sorted keys and their cluster counts, with the count from which a key recurs (:func:`exceptional`)."""

    keys: np.ndarray
    counts: np.ndarray
    least: int
    #: The keys' counts as a hash table, made on the first lookup (trace looks up every token of every batch).
    _map: CountMap | None = field(default=None, init=False, repr=False, compare=False)

    @staticmethod
    def of(parts: pl.DataFrame, column: str) -> Counts:
        """Counts of ``column, n`` rows from batches of whole clusters (a value's counts summed over the batches).

        Rows may take clusters away (negative ``n``, a store's clusters that are
        gone): a value no cluster holds any more is left out.
        """
        table = parts.group_by(column).agg(pl.col("n").sum()).filter(pl.col("n") > 0).sort(column)
        counts = table["n"].to_numpy().astype(np.int64)
        return Counts(table[column].to_numpy().astype(np.uint64), counts, exceptional(counts))

    def count(self, values: np.ndarray) -> np.ndarray:
        """Clusters holding each value (0: none; the value 0 is never held)."""
        if self._map is None:
            self._map = CountMap(self.keys, self.counts)
        return self._map(np.asarray(values, dtype=np.uint64).reshape(-1))

    def recurring(self, values: np.ndarray) -> np.ndarray:
        """Per value (0: False): held by at least ``least`` clusters."""
        return self.count(values) >= self.least


class WordCounts(Mapping[str, int]):
    """Clusters using each word, looked up by spelling (the tokeniser's hash of it): a read-only mapping."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def counts_of(self, words: list[str]) -> np.ndarray:
        """Clusters using each of ``words`` (each one token; 0 when unseen)."""
        if not words:
            return np.zeros(0, dtype=np.int64)
        tokens = normalize.tokenize(pl.Series(words, dtype=pl.String), HASH_SEED)
        one = tokens.n_tokens == 1  # anything else is no word the model counted
        first = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(tokens.n_tokens, out=first[1:])
        hashes = np.zeros(len(words), dtype=np.uint64)
        hashes[one] = tokens.hash[first[:-1][one]]
        return self.counts.count(hashes)

    def __getitem__(self, word: str) -> int:
        got = int(self.counts_of([word])[0])
        if got == 0:
            raise KeyError(word)
        return got

    def get(self, word: str, default: int | None = None) -> int | None:  # type: ignore[override]
        got = int(self.counts_of([word])[0])
        return got if got else default

    def __iter__(self) -> Iterator[str]:
        raise TypeError("WordCounts holds hashes, not spellings: look words up with counts_of or get")

    def __len__(self) -> int:
        return len(self.counts.keys)


@dataclass
class DerivationFacts:
    """The corpus-wide, cluster-level counts the model reads (copies added to a cluster change none of them)."""

    #: Clusters using each word (by token hash).
    words: Counts
    #: Clusters counted (the ``N`` of ``idf``).
    n_clusters: int
    #: Whole short lines and short-line n-grams, by clusters holding them.
    lines: Counts
    grams: Counts

    @staticmethod
    def empty() -> DerivationFacts:
        none = Counts(np.zeros(0, np.uint64), np.zeros(0, np.int64), 2)
        return DerivationFacts(none, 0, none, none)


def facts_of(parts: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]], n_clusters: int) -> DerivationFacts:
    """Add up :func:`fact_parts` of batches of whole clusters (each cluster in one batch)."""
    if not parts:
        return DerivationFacts.empty()
    return DerivationFacts(
        Counts.of(pl.concat([w for w, _, _ in parts]), "token"), n_clusters,
        Counts.of(pl.concat([k for _, k, _ in parts]), "key"), Counts.of(pl.concat([g for _, _, g in parts]), "gram"),
    )


# ---------------------------------------------------------------------------- one batch as flat arrays


@dataclass
class Batch:
    """Documents of a batch of whole clusters as flat arrays (``doc`` = position in the batch)."""

    tok: np.ndarray  # int32 token id (equal ids, equal words; ids mean nothing across batches)
    doc_lo: np.ndarray  # int64, len docs + 1: each document's tokens
    unit_lo: np.ndarray  # int64, len units + 1: each unit's tokens
    doc_units: np.ndarray  # int64, len docs + 1: each document's units
    unit_term: np.ndarray  # bool: the unit closes a sentence
    unit_line: np.ndarray  # int64: line of each unit
    foreign: np.ndarray  # bool per token
    first: np.ndarray  # int64 per token id: a token holding it (to spell it)
    scan: Scan
    words: Counts  # clusters using each word (the corpus's): what description lengths are priced with
    n_clusters: int  # clusters counted (the ``N`` of ``idf``)

    def spell(self, ids: np.ndarray) -> list[str]:
        """The words of token ids ``ids``."""
        return self.scan.words(self.first[ids])


def batch_arrays(texts: pl.Series, facts: DerivationFacts, options: TraceOptions, max_tokens: int) -> Batch:
    """Tokens, units, foreign marks and description lengths of ``texts`` (one batch)."""
    got = scan(texts, options, max_tokens)
    n = len(got.hash)
    k = options.foreign_ngram
    line_hit = facts.lines.recurring(got.key)
    gram_hit = facts.grams.recurring(got.gram)
    covered = gram_hit.copy()
    for j in range(1, k):  # a token is covered by the n-grams starting up to k-1 tokens before it on its line
        covered[j:] |= gram_hit[:-j] & (got.line[j:] == got.line[:-j])
    starts = np.r_[0, np.flatnonzero(np.diff(got.line)) + 1] if n else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.r_[starts, n])
    share = np.add.reduceat(covered.astype(np.float64), starts) / np.maximum(lengths, 1) if n else np.zeros(0)
    foreign = got.short & (line_hit | np.repeat(share > 0.5, lengths))
    first, tid = distinct_ids(got.hash)
    # A unit starts a line or follows a token that closes a sentence.
    start = np.ones(n, dtype=bool)
    if n:
        start[1:] = (got.line[1:] != got.line[:-1]) | got.end[:-1]
    unit_first = np.flatnonzero(start)
    unit_lo = np.append(unit_first, n).astype(np.int64)
    doc_units = np.searchsorted(unit_first, got.doc_lo).astype(np.int64)
    unit_term = got.end[unit_lo[1:] - 1] if len(unit_first) else np.zeros(0, dtype=bool)
    return Batch(
        tid.astype(np.int32).reshape(-1), got.doc_lo, unit_lo, doc_units, unit_term.astype(bool),
        got.line[unit_first].astype(np.int64), foreign.astype(bool), first.astype(np.int64), got, facts.words, facts.n_clusters,
    )


def distinct_ids(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(hashes, return_index=True, return_inverse=True)[1:]``: each distinct value's first position (in
    value order) and every position's dense id, by a hash group-by and join (a third of the time of a sort)."""
    frame = pl.DataFrame({"h": np.asarray(hashes, dtype=np.uint64).reshape(-1)}).with_row_index("i")
    distinct = frame.group_by("h").agg(pl.col("i").min().alias("first")).sort("h").with_row_index("tid")
    tid = frame.join(distinct.select("h", "tid"), on="h", how="left", maintain_order="left")["tid"]
    return distinct["first"].to_numpy().astype(np.int64), tid.to_numpy().astype(np.int64)


def line_facts(batch: Batch) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(doc, value)`` of the short-line keys, and of the short-line n-grams, of each document (distinct, sorted).

    A token's foreign mark is a function of whether these values recur
    (``DerivationFacts.lines``, ``.grams``); the same values recurring or not
    give the same marks, hence the same acts (:class:`Pricing`).
    """
    got = batch.scan

    def distinct(values: np.ndarray) -> pl.DataFrame:
        held = values != 0
        frame = pl.DataFrame({"doc": got.doc[held].astype(np.int64), "value": values[held].astype(np.uint64)})
        return frame.unique().sort("doc", "value")

    return distinct(got.key), distinct(got.gram)


def description_lengths(counts: np.ndarray, n_clusters: int) -> np.ndarray:
    """``idf(w) = log((N + 1) / (f_w + 1))`` of each word count: one scalar ``math.log`` per distinct count.

    Scalar logs give the same bits wherever a count is priced (a fresh trace,
    or a store pricing a stored cluster again), which vectorised logs do not promise.
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if len(counts) == 0:
        return np.zeros(0, dtype=np.float64)
    top = math.log(n_clusters + 1.0)
    low, high = int(counts.min()), int(counts.max())
    if low >= 0 and high <= 4 * len(counts) + 1024:
        # Counts are cluster counts, mostly small: a table over 0..max, filled only at the counts present, costs
        # O(n + max) where sorting them (np.unique) costs O(n log n).
        values = np.flatnonzero(np.bincount(counts, minlength=high + 1))
        table = np.zeros(high + 1, dtype=np.float64)
        table[values] = [top - math.log(v + 1.0) for v in values.tolist()]
        return table[counts]
    values, inverse = np.unique(counts, return_inverse=True)
    table = np.array([top - math.log(v + 1.0) for v in values.tolist()], dtype=np.float64)
    return table[inverse.reshape(-1)]


@numba.njit(cache=True, nogil=True)
def _add_bags(fixed, lo, values, out):  # pragma: no cover - compiled
    for i in range(len(fixed)):
        total = fixed[i]
        for j in range(lo[i], lo[i + 1]):
            total += values[j]
        out[i] = total


def add_bags(fixed: np.ndarray, lo: np.ndarray, hashes: np.ndarray, words: Counts, n_clusters: int) -> np.ndarray:
    """``fixed[i]`` plus the description lengths of the words ``hashes[lo[i]:lo[i + 1]]``, summed in order."""
    dl = description_lengths(words.count(hashes), n_clusters)
    out = np.zeros(len(fixed), dtype=np.float64)
    _add_bags(np.ascontiguousarray(fixed, dtype=np.float64), np.ascontiguousarray(lo, dtype=np.int64), dl, out)
    return out


@dataclass
class Pricing:
    """The model's costs with the corpus's word counts left out, so they can be priced under any counts.

    Given a cluster's texts and foreign marks, ``cost(p -> c) = max(fixed + sum
    idf(w), 1) + near`` over the content words the insert writes (the *bag*),
    and ``root(d) = fixed + sum idf(w)`` over ``d``'s non-foreign tokens: the
    alignment, the acts and the bags are facts of the two texts alone, the
    counts (``N`` and each ``f_w``) enter only through :func:`add_bags`.  Per
    pair (of ``Derivation.edges``): ``fixed_ab``, ``fixed_ba``, ``near`` and the
    bags ``ab`` (tokens of ``b`` written by ``a -> b``) and ``ba`` as offsets
    into token hashes; per document: ``root_fixed`` and its bag.
    """

    fixed_ab: np.ndarray
    fixed_ba: np.ndarray
    near: np.ndarray
    ab_lo: np.ndarray
    ab: np.ndarray
    ba_lo: np.ndarray
    ba: np.ndarray
    root_fixed: np.ndarray
    root_lo: np.ndarray
    root: np.ndarray

    def costs(self, words: Counts, n_clusters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cost(a -> b), cost(b -> a), root cost)`` under the counts ``words`` of ``n_clusters`` clusters."""
        cost_ab = np.maximum(add_bags(self.fixed_ab, self.ab_lo, self.ab, words, n_clusters), 1.0) + self.near
        cost_ba = np.maximum(add_bags(self.fixed_ba, self.ba_lo, self.ba, words, n_clusters), 1.0) + self.near
        return cost_ab, cost_ba, add_bags(self.root_fixed, self.root_lo, self.root, words, n_clusters)


def bag_offsets(owner: np.ndarray, n: int) -> np.ndarray:
    """Offsets of ``n`` bags from the (ascending) owner of each item."""
    lo = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=lo[1:])
    return lo


# ---------------------------------------------------------------------------- compiled kernels


@numba.njit(cache=True, nogil=True)
def _unit_hash(tok, lo, hi):  # pragma: no cover - compiled
    h = np.uint64(1469598103934665603)
    for i in range(lo, hi):
        h = (h ^ np.uint64(tok[i] + 1)) * np.uint64(1099511628211)
    return h ^ np.uint64(hi - lo)


@numba.njit(cache=True, nogil=True)
def _lcs_units(tok, p_lo, p_hi, unit_lo, cu0, cu1, out):  # pragma: no cover - compiled
    """LCS of tokens ``p_lo:p_hi`` with every unit ``cu0..cu1`` (``out[j - cu0]``); bit-parallel up to 64 tokens."""
    m = p_hi - p_lo
    if m <= 64:
        sorted_tok = np.sort(tok[p_lo:p_hi])
        order = np.argsort(tok[p_lo:p_hi])
        masks = np.zeros(m, dtype=np.uint64)
        for r in range(m):  # masks per distinct token, at the first index of its run in sorted order
            first = r
            while first > 0 and sorted_tok[first - 1] == sorted_tok[r]:
                first -= 1
            masks[first] |= np.uint64(1) << np.uint64(order[r])
        full = ~np.uint64(0) if m == 64 else (np.uint64(1) << np.uint64(m)) - np.uint64(1)
        for j in range(cu0, cu1):
            v = ~np.uint64(0)
            for i in range(unit_lo[j], unit_lo[j + 1]):
                t = tok[i]
                at = np.searchsorted(sorted_tok, t)
                if at < m and sorted_tok[at] == t:
                    u = v & masks[at]
                    v = (v + u) | (v - u)
            x = ~v & full
            c = 0
            while x:
                x &= x - np.uint64(1)
                c += 1
            out[j - cu0] = c
    else:
        for j in range(cu0, cu1):
            n = unit_lo[j + 1] - unit_lo[j]
            prev = np.zeros(n + 1, dtype=np.int32)
            cur = np.zeros(n + 1, dtype=np.int32)
            for a in range(m):
                ta = tok[p_lo + a]
                for b in range(n):
                    if ta == tok[unit_lo[j] + b]:
                        cur[b + 1] = prev[b] + 1
                    else:
                        cur[b + 1] = max(cur[b], prev[b + 1])
                prev, cur = cur, prev
            out[j - cu0] = prev[n]


@numba.njit(cache=True, nogil=True)
def _best_unit(tok, p_lo, p_hi, unit_lo, v0, v1, by_tok, tok_unit, b_lo, b_hi, need, bound, one):  # pragma: no cover - compiled
    """The unit of ``v0..v1`` with the longest LCS with tokens ``p_lo:p_hi`` (first on ties) if it reaches ``need``, else -1.

    The shared-token count ``sum_t min(count in p, count in unit)`` bounds each
    unit's LCS from above, and is counted for all units at once from the other
    document's tokens sorted by id (``by_tok[b_lo:b_hi]``); an LCS is computed
    only for units whose bound can still beat the best so far.  Exactly the
    argmax of :func:`_lcs_units` over every unit, at the cost of the few
    units that share most of the sentence's words.
    """
    n_v = v1 - v0
    for j in range(n_v):
        bound[j] = 0
    mine = np.sort(tok[p_lo:p_hi])
    m = len(mine)
    i = 0
    while i < m:
        t = mine[i]
        c = 1
        while i + c < m and mine[i + c] == t:
            c += 1
        lo, hi = b_lo, b_hi  # first position in by_tok[b_lo:b_hi] with token >= t
        while lo < hi:
            mid = (lo + hi) // 2
            if tok[by_tok[mid]] < t:
                lo = mid + 1
            else:
                hi = mid
        q = lo
        while q < b_hi and tok[by_tok[q]] == t:  # positions ascend inside a token's run: one unit's are together
            j = tok_unit[by_tok[q]] - v0
            run = 0
            while q < b_hi and tok[by_tok[q]] == t and tok_unit[by_tok[q]] - v0 == j:
                run += 1
                q += 1
            bound[j] += min(run, c)
        i += c
    top, best = -1, -1
    for j in range(n_v):
        if bound[j] < need or bound[j] < best or (bound[j] == best and top >= 0):
            continue
        _lcs_units(tok, p_lo, p_hi, unit_lo, v0 + j, v0 + j + 1, one)
        if one[0] > best:
            top, best = j, one[0]
    return top if top >= 0 and best >= need else -1


@numba.njit(cache=True, nogil=True, parallel=True)
def positions_by_token(tok, doc_lo):  # pragma: no cover - compiled
    """Every document's token positions sorted by token id, then position: ``np.lexsort((tok, doc))`` a document at a time.

    Documents sort apart (a few hundred tokens each, on all cores) instead of
    one stable sort of the whole batch by two keys.
    """
    out = np.empty(len(tok), dtype=np.int64)
    for d in numba.prange(len(doc_lo) - 1):
        lo, hi = doc_lo[d], doc_lo[d + 1]
        order = np.argsort(tok[lo:hi], kind="mergesort")  # stable: positions ascend within a token
        for i in range(hi - lo):
            out[lo + i] = lo + order[i]
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _reorder(tok, doc_lo, unit_lo, doc_units, hashes, by_tok, tok_unit, pa, pb, unit_found, pos_lo, p_pos, breaks):  # pragma: no cover - compiled
    """Per pair: ``a``'s token positions with its units in ``b``'s order (``p_pos[pos_lo[k]:]``), and its breakpoints.

    Each unit of ``a`` takes the place of the unit of ``b`` holding most of it in
    order (LCS at least ``unit_found`` of it, :func:`_best_unit`); a unit found
    nowhere stays after its predecessor; a stable sort keeps ``a``'s order
    wherever ``b`` kept it.  ``by_tok``: every document's token positions sorted
    by token id (then position).
    """
    for k in numba.prange(len(pa)):
        a, b = pa[k], pb[k]
        u0, u1 = doc_units[a], doc_units[a + 1]
        v0, v1 = doc_units[b], doc_units[b + 1]
        nu = u1 - u0
        key = np.empty(nu, dtype=np.float64)
        bound = np.zeros(max(v1 - v0, 1), dtype=np.int64)
        one = np.zeros(1, dtype=np.int64)
        last = -1.0
        for i in range(nu):
            u = u0 + i
            size = unit_lo[u + 1] - unit_lo[u]
            best = -1
            for j in range(v0, v1):
                if hashes[j] == hashes[u] and unit_lo[j + 1] - unit_lo[j] == size:
                    best = j - v0
                    break
            if best < 0 and v1 > v0:
                best = _best_unit(tok, unit_lo[u], unit_lo[u + 1], unit_lo, v0, v1, by_tok, tok_unit, doc_lo[b], doc_lo[b + 1],
                                  unit_found * max(size, 1), bound, one)
            if best >= 0:
                last = float(best)
            key[i] = last
        order = np.argsort(key, kind="mergesort")
        at = pos_lo[k]
        nb = 0
        for i in range(nu):
            if i > 0 and order[i] != order[i - 1] + 1:
                nb += 1
            u = u0 + order[i]
            for t in range(unit_lo[u], unit_lo[u + 1]):
                p_pos[at] = t
                at += 1
        breaks[k] = nb


@numba.njit(cache=True, nogil=True)
def _run_cost(pos, n_run, u_base, tok_unit, unit_lo, is_end, foreign, unit_count, mark, base):  # pragma: no cover - compiled
    """``(insert acts, delete acts)`` of a run (token positions ``pos[:n_run]``), the description lengths left out.

    The run's content tokens (what an insert writes word by word, each also
    paying its description length) are marked in ``mark[base + position]``.
    """
    closes = False
    for i in range(n_run):
        if is_end[pos[i]]:
            closes = True
            break
    content = 0
    if closes:
        for i in range(n_run):
            t = pos[i]
            if not foreign[t]:
                content += 1
                mark[base + t] = True
    insert = 1.0 + content
    delete = 1.0
    if content == 0:
        whole = False
        for i in range(n_run):
            unit_count[tok_unit[pos[i]] - u_base] += 1
        for i in range(n_run):
            u = tok_unit[pos[i]]
            if unit_count[u - u_base] == unit_lo[u + 1] - unit_lo[u]:
                whole = True
        for i in range(n_run):
            unit_count[tok_unit[pos[i]] - u_base] = 0
        if whole:
            delete = 2.0
    return insert, delete


@numba.njit(cache=True, nogil=True)
def _side_runs(state, positions, chance, u_base, tok_unit, unit_lo, is_end, foreign, unit_count, buf, mark, base):  # pragma: no cover - compiled
    """``(insert acts, delete acts)`` summed over the runs of ``state == 2`` (merged across <= ``chance`` other tokens); content marked."""
    n = len(state)
    ins, dele = 0.0, 0.0
    i = 0
    while i < n:
        if state[i] != 2:
            i += 1
            continue
        n_run = 0
        last = i
        j = i
        while j < n:
            if state[j] == 2:
                buf[n_run] = positions[j]
                n_run += 1
                last = j
            elif j - last > chance:
                break
            j += 1
        a, d = _run_cost(buf, n_run, u_base, tok_unit, unit_lo, is_end, foreign, unit_count, mark, base)
        ins += a
        dele += d
        i = last + 1
    return ins, dele


@numba.njit(cache=True, nogil=True, parallel=True)
def _costs(tok, doc_lo, doc_units, tok_unit, unit_lo, unit_line, is_end, foreign, pa, pb, pos_lo, p_pos, breaks,
           blk_lo, blocks, max_lemma, chance, move_per_break, fixed_ab, fixed_ba, near_of, n_subs, subs, mark_a, mark_b, posb_lo):  # pragma: no cover - compiled
    """Both directed costs of every pair from its alignment's matching blocks (``a'', ``b``, size; ``a`` in reordered order).

    The description lengths are left out: ``fixed_ab`` counts the acts of
    ``a -> b`` without them, the content tokens whose description lengths it
    also pays are marked in ``mark_b`` (``b``'s tokens, from ``posb_lo[k]``),
    those of ``b -> a`` in ``mark_a`` (``a``'s, from ``pos_lo[k]``);
    ``near_of``: the proximity term.  :func:`price` adds the rest.
    """
    for k in numba.prange(len(pa)):
        a, b = pa[k], pb[k]
        na = doc_lo[a + 1] - doc_lo[a]
        nb = doc_lo[b + 1] - doc_lo[b]
        pp = p_pos[pos_lo[k] : pos_lo[k] + na]
        sa = np.full(na, 2, dtype=np.int8)  # aligned (reordered) order of a
        sb = np.full(nb, 2, dtype=np.int8)
        n_sub = 0
        prev_a, prev_b, prev_size = 0, 0, 0
        for r in range(blk_lo[k], blk_lo[k + 1]):
            x, y, size = blocks[r, 0], blocks[r, 1], blocks[r, 2]
            if size <= 0:
                continue
            ga0, gb0 = prev_a + prev_size, prev_b + prev_size
            ga, gb = x - ga0, y - gb0
            if prev_size > 0 and ga == gb and 0 < ga <= max_lemma:
                # a substitution: kept text right before and after, on one line of both sides
                la = unit_line[tok_unit[pp[ga0 - 1]]]
                lb = unit_line[tok_unit[doc_lo[b] + gb0 - 1]]
                ok = True
                for q in range(ga0, x + 1):
                    if unit_line[tok_unit[pp[q]]] != la:
                        ok = False
                for q in range(gb0, y + 1):
                    if unit_line[tok_unit[doc_lo[b] + q]] != lb:
                        ok = False
                if ok:
                    for q in range(ga):
                        sa[ga0 + q] = 1
                        sb[gb0 + q] = 1
                        subs[pos_lo[k] + n_sub, 0] = tok[pp[ga0 + q]]
                        subs[pos_lo[k] + n_sub, 1] = tok[doc_lo[b] + gb0 + q]
                        n_sub += 1
            for q in range(size):
                sa[x + q] = 0
                sb[y + q] = 0
            prev_a, prev_b, prev_size = x, y, size
        n_subs[k] = n_sub
        touched = 0
        for q in range(na):
            touched += sa[q] != 0
        for q in range(nb):
            touched += sb[q] != 0
        near = touched / (na + nb + 1.0)
        unit_count = np.zeros(max(doc_units[a + 1] - doc_units[a], doc_units[b + 1] - doc_units[b], 1), dtype=np.int32)
        buf = np.empty(max(na, nb, 1), dtype=np.int64)
        b_pos = np.arange(doc_lo[b], doc_lo[b + 1])
        ins_a, del_a = _side_runs(sa, pp, chance, doc_units[a], tok_unit, unit_lo, is_end, foreign, unit_count, buf,
                                  mark_a, pos_lo[k] - doc_lo[a])
        ins_b, del_b = _side_runs(sb, b_pos, chance, doc_units[b], tok_unit, unit_lo, is_end, foreign, unit_count, buf,
                                  mark_b, posb_lo[k] - doc_lo[b])
        move = move_per_break * breaks[k]
        fixed_ab[k] = ins_b + del_a + n_sub + move
        fixed_ba[k] = ins_a + del_b + n_sub + move
        near_of[k] = near


@numba.njit(cache=True, nogil=True)
def _roots(doc_lo, doc_units, unit_lo, unit_term, foreign, out):  # pragma: no cover - compiled
    """Root acts of every document but its description lengths: 1 act per run of non-content units past its first."""
    for d in range(len(doc_lo) - 1):
        total = 0.0
        prev = False
        for u in range(doc_units[d] + 1, doc_units[d + 1]):
            f = 0
            for t in range(unit_lo[u], unit_lo[u + 1]):
                f += foreign[t]
            non = (not unit_term[u]) or f > 0.5 * (unit_lo[u + 1] - unit_lo[u])
            if non and not prev:
                total += 1.0
            prev = non
        out[d] = total


# ---- minimum arborescence (Tarjan; skew heaps with lazy offsets; union-find with rollback)


@numba.njit(cache=True, nogil=True)
def _push(x, key, delta, left, right):  # pragma: no cover - compiled
    d = delta[x]
    if d != 0.0:
        key[x] += d
        if left[x] >= 0:
            delta[left[x]] += d
        if right[x] >= 0:
            delta[right[x]] += d
        delta[x] = 0.0


@numba.njit(cache=True, nogil=True)
def _merge(x, y, key, delta, left, right, path):  # pragma: no cover - compiled
    """Skew-heap merge (iterative): the root of the union of heaps ``x`` and ``y`` (-1: empty); ties to the lower edge id."""
    if x < 0:
        return y
    if y < 0:
        return x
    _push(x, key, delta, left, right)
    _push(y, key, delta, left, right)
    if key[y] < key[x] or (key[y] == key[x] and y < x):
        x, y = y, x
    root = x
    n = 0
    while True:
        path[n] = x
        n += 1
        r = right[x]
        if r < 0:
            right[x] = y
            break
        _push(r, key, delta, left, right)
        if key[y] < key[r] or (key[y] == key[r] and y < r):
            r, y = y, r
        right[x] = r
        x = r
        if y < 0:
            break
    for i in range(n):
        v = path[i]
        left[v], right[v] = right[v], left[v]
    return root


@numba.njit(cache=True, nogil=True)
def _find(uf, x):  # pragma: no cover - compiled
    while uf[x] >= 0:
        x = uf[x]
    return x


@numba.njit(cache=True, nogil=True)
def arborescence(n, root, src, dst, weight):  # pragma: no cover - compiled
    """Parent of every node (``-1`` for ``root`` and unreachable nodes) in the minimum arborescence rooted at ``root``.

    Nodes ``0..n-1``, edges ``src[i] -> dst[i]`` of ``weight[i]``.  Following the
    cheapest incoming edge from each node either reaches the finished part or
    closes a cycle, which is contracted (its heaps merged, each edge's weight
    reduced by the cycle edge it would replace); contractions are unrolled at
    the end.  Each edge is pushed and popped at most once: ``O(E log E)``.
    """
    m = len(src)
    key = weight.astype(np.float64).copy()
    delta = np.zeros(m, dtype=np.float64)
    left = np.full(m, -1, dtype=np.int64)
    right = np.full(m, -1, dtype=np.int64)
    path = np.empty(m + 1, dtype=np.int64)
    heap = np.full(n, -1, dtype=np.int64)
    for i in range(m):
        if src[i] != dst[i]:
            left[i] = -1
            right[i] = -1
            heap[dst[i]] = _merge(heap[dst[i]], i, key, delta, left, right, path)
    uf = np.full(n, -1, dtype=np.int64)
    st_i = np.empty(2 * n, dtype=np.int64)
    st_v = np.empty(2 * n, dtype=np.int64)
    n_st = 0
    seen = np.full(n, -1, dtype=np.int64)
    seen[root] = root
    qpath = np.empty(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    incoming = np.full(n, -1, dtype=np.int64)
    cyc_u = np.empty(n, dtype=np.int64)
    cyc_t = np.empty(n, dtype=np.int64)
    cyc_lo = np.empty(n + 1, dtype=np.int64)
    cyc_edges = np.empty(2 * n + m, dtype=np.int64)
    n_cyc = 0
    n_ce = 0
    for s in range(n):
        u = s
        qi = 0
        while seen[u] < 0:
            e = heap[u]
            if e < 0:
                break  # unreachable: left without a parent
            _push(e, key, delta, left, right)
            if _find(uf, src[e]) == u:  # inside the contracted node: no longer a candidate
                heap[u] = _merge(left[e], right[e], key, delta, left, right, path)
                continue
            w = key[e]
            delta[e] -= w
            _push(e, key, delta, left, right)
            heap[u] = _merge(left[e], right[e], key, delta, left, right, path)
            queue[qi] = e
            qpath[qi] = u
            qi += 1
            seen[u] = s
            u = _find(uf, src[e])
            if seen[u] == s:  # a cycle: contract it
                cyc = -1
                end = qi
                t = n_st
                while True:
                    qi -= 1
                    v = qpath[qi]
                    cyc = _merge(cyc, heap[v], key, delta, left, right, path)
                    ra, rb = _find(uf, u), _find(uf, v)
                    if ra == rb:
                        break
                    if uf[ra] > uf[rb]:
                        ra, rb = rb, ra
                    st_i[n_st], st_v[n_st] = ra, uf[ra]
                    st_i[n_st + 1], st_v[n_st + 1] = rb, uf[rb]
                    n_st += 2
                    uf[ra] += uf[rb]
                    uf[rb] = ra
                u = _find(uf, u)
                heap[u] = cyc
                seen[u] = -1
                cyc_u[n_cyc] = u
                cyc_t[n_cyc] = t
                cyc_lo[n_cyc] = n_ce
                for q in range(qi, end):
                    cyc_edges[n_ce] = queue[q]
                    n_ce += 1
                n_cyc += 1
        for i in range(qi):
            incoming[_find(uf, dst[queue[i]])] = queue[i]
    cyc_lo[n_cyc] = n_ce
    for c in range(n_cyc - 1, -1, -1):  # unroll contractions, the last made first
        u, t = cyc_u[c], cyc_t[c]
        while n_st > t:
            n_st -= 1
            uf[st_i[n_st]] = st_v[n_st]
        in_edge = incoming[u]
        for q in range(cyc_lo[c], cyc_lo[c + 1]):
            e = cyc_edges[q]
            incoming[_find(uf, dst[e])] = e
        if in_edge >= 0:
            incoming[_find(uf, dst[in_edge])] = in_edge
    parent = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if i != root and incoming[i] >= 0:
            parent[i] = src[incoming[i]]
    return parent


@numba.njit(cache=True, nogil=True, parallel=True)
def _trees(node_lo, root_cost, edge_lo, src, dst, weight, parent):  # pragma: no cover - compiled
    """Per cluster (nodes ``node_lo[c]:node_lo[c+1]``, edges ``edge_lo[c]:``, local node ids): parent per node (-1: origin)."""
    for c in numba.prange(len(node_lo) - 1):
        lo, hi = node_lo[c], node_lo[c + 1]
        k = hi - lo
        e0, e1 = edge_lo[c], edge_lo[c + 1]
        big = 1.0
        for e in range(e0, e1):
            big += weight[e]
        for i in range(k):
            big += root_cost[lo + i]
        m = k + e1 - e0
        s = np.empty(m, dtype=np.int64)
        d = np.empty(m, dtype=np.int64)
        w = np.empty(m, dtype=np.float64)
        for i in range(k):  # node 0 is the super-root; member i is node i + 1 (members in hash order)
            s[i], d[i], w[i] = 0, i + 1, big + root_cost[lo + i] + 1e-9 * i
        for e in range(e0, e1):
            j = k + e - e0
            s[j], d[j], w[j] = src[e] + 1, dst[e] + 1, weight[e]
        par = arborescence(k + 1, 0, s, d, w)
        for i in range(k):
            parent[lo + i] = par[i + 1] - 1


def candidate_pairs(a: np.ndarray, b: np.ndarray, similarity: np.ndarray, key: np.ndarray, n: int, k: int) -> np.ndarray:
    """Which pairs are candidate edges of the model: each document's ``k`` most similar versions, and a spanning forest.

    A version's parent is the one it needs fewest edits from, and edits lower
    shingle similarity, so the parent is among a document's most similar
    versions unless ``k`` versions lie closer still (siblings made by the same
    light edit); the maximum spanning forest of the similarities keeps every
    cluster connected whatever ``k``.  Pairs per document stay at most about
    ``2k``: the model's cost grows with a cluster's size, never its square.
    ``key``: per document, the tie order (an id hash).  Returns a mask over the pairs.
    """
    m = len(a)
    if m == 0 or k <= 0:
        return np.ones(m, dtype=bool)
    node = np.concatenate([a, b])
    other = np.concatenate([b, a])
    sim = np.concatenate([similarity, similarity])
    order = np.lexsort((key[other], -sim, node))
    sorted_node = node[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_node)) + 1]
    rank = np.arange(2 * m) - np.repeat(first, np.diff(np.r_[first, 2 * m]))
    near = np.zeros(2 * m, dtype=bool)
    near[order[rank < k]] = True
    keep = near[:m] | near[m:]
    # Maximum spanning forest: minimum over 2 - similarity (positive, so every pair is a graph edge).
    graph = csr_matrix((2.0 - similarity, (a, b)), shape=(n, n))
    tree = minimum_spanning_tree(graph).tocoo()
    lo, hi = np.minimum(tree.row, tree.col).astype(np.int64), np.maximum(tree.row, tree.col).astype(np.int64)
    in_tree = pl.DataFrame({"a": lo, "b": hi, "t": True}).unique(["a", "b"])
    pairs = pl.DataFrame({"a": np.minimum(a, b).astype(np.int64), "b": np.maximum(a, b).astype(np.int64)})
    keep |= pairs.join(in_tree, on=["a", "b"], how="left", maintain_order="left")["t"].fill_null(False).to_numpy()
    return keep


# ---------------------------------------------------------------------------- the model on a batch


@dataclass
class Derivation:
    """The model's decisions for a batch, by position in the batch's members.

    ``parent``: parent position (-1: the origin); ``parent_confidence`` (NaN for
    origins); ``root_cost``; ``edges``: ``a, b, cost_ab, cost_ba`` of every candidate
    pair; ``subs``: ``(pair, token id of a, token id of b)`` substitutions of the pairs (``spell`` turns ids into words).
    """

    parent: np.ndarray
    parent_confidence: np.ndarray
    root_cost: np.ndarray
    edges: pl.DataFrame
    subs: pl.DataFrame
    spell: Callable[[np.ndarray], list[str]]
    #: The costs with the counts left out (what a store keeps to decide again under new counts).
    pricing: Pricing | None = None


def pair_costs(batch: Batch, a: np.ndarray, b: np.ndarray, options: TraceOptions) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """``(cost(a -> b), cost(b -> a), substitutions)`` of every pair of batch documents (the module's cost model)."""
    pricing, subs = pair_acts(batch, a, b, options)
    cost_ab, cost_ba, _ = pricing.costs(batch.words, batch.n_clusters)
    return cost_ab, cost_ba, subs


def pair_acts(batch: Batch, a: np.ndarray, b: np.ndarray, options: TraceOptions) -> tuple[Pricing, pl.DataFrame]:
    """The :class:`Pricing` of every pair of batch documents (and of every document's root), and the substitutions."""
    a = np.ascontiguousarray(a, dtype=np.int64)
    b = np.ascontiguousarray(b, dtype=np.int64)
    n_units = len(batch.unit_lo) - 1
    tok_unit = np.repeat(np.arange(n_units, dtype=np.int64), np.diff(batch.unit_lo))
    is_end = np.zeros(len(batch.tok), dtype=bool)
    if n_units:
        is_end[batch.unit_lo[1:][batch.unit_term] - 1] = True
    hashes = _hashes(batch.tok, batch.unit_lo)
    sizes = batch.doc_lo[a + 1] - batch.doc_lo[a]
    pos_lo = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(sizes, out=pos_lo[1:])
    p_pos = np.empty(int(pos_lo[-1]), dtype=np.int64)
    breaks = np.zeros(len(a), dtype=np.int64)
    if len(a):
        by_tok = positions_by_token(batch.tok, batch.doc_lo)
        _reorder(batch.tok, batch.doc_lo, batch.unit_lo, batch.doc_units, hashes, by_tok, tok_unit, a, b, options.unit_found,
                 pos_lo, p_pos, breaks)
    codes = (batch.tok.astype(np.int64) + CHAR_BASE).astype("<u4")
    p_codes = codes[p_pos]
    doc_str: dict[int, str] = {}
    blocks: list[np.ndarray] = []
    counts = np.zeros(len(a), dtype=np.int64)
    for k in range(len(a)):
        s1 = p_codes[pos_lo[k] : pos_lo[k + 1]].tobytes().decode("utf-32-le")
        bk = int(b[k])
        s2 = doc_str.get(bk)
        if s2 is None:
            s2 = doc_str[bk] = codes[batch.doc_lo[bk] : batch.doc_lo[bk + 1]].tobytes().decode("utf-32-le")
        got = np.array([(m.a, m.b, m.size) for m in Levenshtein.opcodes(s1, s2).as_matching_blocks()], dtype=np.int64).reshape(-1, 3)
        blocks.append(got)
        counts[k] = len(got)
    blk_lo = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(counts, out=blk_lo[1:])
    flat = np.concatenate(blocks) if blocks else np.zeros((0, 3), dtype=np.int64)
    fixed_ab = np.zeros(len(a))
    fixed_ba = np.zeros(len(a))
    near = np.zeros(len(a))
    n_subs = np.zeros(len(a), dtype=np.int64)
    subs = np.zeros((max(int(pos_lo[-1]), 1), 2), dtype=np.int32)
    posb_lo = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(batch.doc_lo[b + 1] - batch.doc_lo[b], out=posb_lo[1:])
    mark_a = np.zeros(int(pos_lo[-1]), dtype=np.bool_)
    mark_b = np.zeros(int(posb_lo[-1]), dtype=np.bool_)
    if len(a):
        _costs(batch.tok, batch.doc_lo, batch.doc_units, tok_unit, batch.unit_lo, batch.unit_line, is_end, batch.foreign, a, b, pos_lo, p_pos,
               breaks, blk_lo, np.ascontiguousarray(flat), options.max_lemma, options.chance_match, options.move_per_break,
               fixed_ab, fixed_ba, near, n_subs, subs, mark_a, mark_b, posb_lo)
    # Bags in token order: a -> b writes b's marked tokens, b -> a writes a's.
    at_b = np.flatnonzero(mark_b)
    pair_b = np.searchsorted(posb_lo, at_b, side="right") - 1
    at_a = np.flatnonzero(mark_a)
    pair_a = np.searchsorted(pos_lo, at_a, side="right") - 1
    hashes_of = batch.scan.hash
    ab = hashes_of[batch.doc_lo[b[pair_b]] + at_b - posb_lo[pair_b]] if len(at_b) else np.zeros(0, dtype=np.uint64)
    ba = hashes_of[batch.doc_lo[a[pair_a]] + at_a - pos_lo[pair_a]] if len(at_a) else np.zeros(0, dtype=np.uint64)
    pricing = Pricing(
        fixed_ab, fixed_ba, near, bag_offsets(pair_b, len(a)), ab.astype(np.uint64), bag_offsets(pair_a, len(a)), ba.astype(np.uint64),
        *root_acts(batch),
    )
    which = np.repeat(np.arange(len(a)), n_subs)
    rows = (pos_lo[:-1][which] + (np.arange(len(which)) - np.repeat(np.cumsum(n_subs) - n_subs, n_subs))).astype(np.int64)
    sub_frame = pl.DataFrame({
        "pair": which.astype(np.int64), "tok_a": subs[rows, 0], "tok_b": subs[rows, 1],
    }, schema={"pair": pl.Int64, "tok_a": pl.Int32, "tok_b": pl.Int32})
    return pricing, sub_frame


@numba.njit(cache=True, nogil=True)
def _hashes(tok, unit_lo):  # pragma: no cover - compiled
    out = np.empty(len(unit_lo) - 1, dtype=np.uint64)
    for u in range(len(out)):
        out[u] = _unit_hash(tok, unit_lo[u], unit_lo[u + 1])
    return out


def root_acts(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fixed acts, bag offsets, bag)`` of every document's root: its non-foreign tokens are the bag (:class:`Pricing`)."""
    n_docs = len(batch.doc_lo) - 1
    root_fixed = np.zeros(n_docs)
    _roots(batch.doc_lo, batch.doc_units, batch.unit_lo, batch.unit_term, batch.foreign, root_fixed)
    own = np.flatnonzero(~batch.foreign)
    owner = np.repeat(np.arange(n_docs), np.diff(batch.doc_lo))[own]
    return root_fixed, bag_offsets(owner, n_docs), batch.scan.hash[own].astype(np.uint64)


def root_costs(batch: Batch) -> np.ndarray:
    """Root cost of every document: description length of its non-foreign tokens + 1 act per run of non-content units past its first."""
    fixed, lo, bag = root_acts(batch)
    return add_bags(fixed, lo, bag, batch.words, batch.n_clusters)


@numba.njit(cache=True, nogil=True)
def _confidence(node_lo, parent, edge_lo, src, dst, weight, temperature, out):  # pragma: no cover - compiled
    """Softmax over the trees one move from the chosen one (``out`` per node; NaN for origins).

    A child x's rivals are every candidate parent q outside its subtree (the tree with x
    hanging from q instead, ``w(q->x) - w(p->x)`` more), and each of its own children q
    whose swap with x keeps a tree (p -> q -> x: the edge's direction is the question).
    ``P(parent) = 1 / sum over rivals of e^(-extra cost / temperature)``.
    """
    for c in range(len(node_lo) - 1):
        lo, hi = node_lo[c], node_lo[c + 1]
        k = hi - lo
        # Euler tour of the cluster's tree: q is below x iff tin[x] <= tin[q] < tout[x].
        child_lo = np.zeros(k + 1, dtype=np.int64)
        for i in range(k):
            p = parent[lo + i]
            if p >= 0:
                child_lo[p + 1] += 1
        for i in range(k):
            child_lo[i + 1] += child_lo[i]
        fill = child_lo[:-1].copy()
        kids = np.empty(max(k, 1), dtype=np.int64)
        for i in range(k):
            p = parent[lo + i]
            if p >= 0:
                kids[fill[p]] = i
                fill[p] += 1
        tin = np.zeros(k, dtype=np.int64)
        tout = np.zeros(k, dtype=np.int64)
        stack = np.empty(max(k, 1), dtype=np.int64)
        nxt = child_lo[:-1].copy()
        clock = 0
        for r in range(k):
            if parent[lo + r] >= 0:
                continue
            top = 0
            stack[0] = r
            tin[r] = clock
            clock += 1
            while top >= 0:
                x = stack[top]
                if nxt[x] < child_lo[x + 1]:
                    y = kids[nxt[x]]
                    nxt[x] += 1
                    tin[y] = clock
                    clock += 1
                    top += 1
                    stack[top] = y
                else:
                    tout[x] = clock
                    top -= 1
        chosen = np.full(k, np.inf)
        for e in range(edge_lo[c], edge_lo[c + 1]):
            if parent[lo + dst[e]] == src[e]:
                chosen[dst[e]] = min(chosen[dst[e]], weight[e])
        # Each node's incoming edges (the cluster's edges are sorted by target): where to look up w(p -> q).
        in_lo = np.zeros(k + 1, dtype=np.int64)
        for e in range(edge_lo[c], edge_lo[c + 1]):
            in_lo[dst[e] + 1] += 1
        for i in range(k):
            in_lo[i + 1] += in_lo[i]
        z = np.zeros(k)
        for e in range(edge_lo[c], edge_lo[c + 1]):
            x, q = dst[e], src[e]
            if parent[lo + x] < 0 or not np.isfinite(chosen[x]):
                continue
            if tin[x] <= tin[q] < tout[x]:
                # Inside x's subtree only x's own child q is a tree-keeping rival: q and x swap places
                # (p -> q -> x), which costs w(q->x) + w(p->q) - w(p->x) - w(x->q) more.
                p = parent[lo + x]
                if parent[lo + q] != x:
                    continue
                w_pq = np.inf
                for f in range(edge_lo[c] + in_lo[q], edge_lo[c] + in_lo[q + 1]):
                    if src[f] == p:
                        w_pq = min(w_pq, weight[f])
                if np.isfinite(w_pq):
                    z[x] += math.exp(-(weight[e] + w_pq - chosen[x] - chosen[q]) / temperature)
                continue
            z[x] += math.exp(-(weight[e] - chosen[x]) / temperature)
        for i in range(k):
            if parent[lo + i] < 0:
                out[lo + i] = np.nan
            elif z[i] > 0:
                out[lo + i] = 1.0 / z[i]
            else:
                out[lo + i] = 1.0


def derive(batch: Batch, cluster: np.ndarray, order_key: np.ndarray, a: np.ndarray, b: np.ndarray, options: TraceOptions,
           published: np.ndarray | None = None) -> Derivation:
    """Origin, parents and parent confidence of every cluster of a batch.

    ``cluster`` (per batch document), ``order_key`` (a hash of each document's id:
    the tie order), ``a, b``: candidate pairs (batch positions, same cluster),
    ``published``: publication time per document (``None``: no dates; NaN: unknown).
    """
    pricing, subs = pair_acts(batch, a, b, options)
    cost_ab, cost_ba, roots = pricing.costs(batch.words, batch.n_clusters)
    par, conf = decide(cluster, order_key, a, b, cost_ab, cost_ba, roots, options, published)
    edges = pl.DataFrame({"a": a, "b": b, "cost_ab": cost_ab, "cost_ba": cost_ba})
    return Derivation(par, conf, roots, edges, subs, batch.spell, pricing)


def decide(cluster: np.ndarray, order_key: np.ndarray, a: np.ndarray, b: np.ndarray, cost_ab: np.ndarray, cost_ba: np.ndarray,
           roots: np.ndarray, options: TraceOptions, published: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(parent position or -1, parent confidence)`` of every document from the costs: the tree, the date rule, the softmax."""
    n = len(cluster)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    # Nodes grouped by cluster, in hash order inside: ties never follow row order.
    order = np.lexsort((np.arange(n), order_key, cluster))
    local = np.empty(n, dtype=np.int64)
    bounds = np.flatnonzero(np.diff(cluster[order], prepend=-1, append=-1) != 0)
    node_lo = bounds.astype(np.int64)
    pos_in = np.arange(n) - np.repeat(node_lo[:-1], np.diff(node_lo))
    local[order] = pos_in
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    weight = np.concatenate([cost_ab, cost_ba])
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[order] = np.arange(n)
    e_order = np.lexsort((rank_of[src], rank_of[dst])) if len(src) else np.zeros(0, dtype=np.int64)
    src, dst, weight = src[e_order], dst[e_order], weight[e_order]
    ec = np.searchsorted(node_lo[1:], rank_of[dst], side="right")
    edge_lo = np.searchsorted(ec, np.arange(len(node_lo)), side="left").astype(np.int64)
    parent_local = np.full(n, -1, dtype=np.int64)
    _trees(node_lo, roots[order], edge_lo, local[src], local[dst], weight, parent_local)
    par = np.full(n, -1, dtype=np.int64)  # in batch positions
    has = parent_local >= 0
    cluster_start = np.repeat(node_lo[:-1], np.diff(node_lo))
    par[order[has]] = order[cluster_start[has] + parent_local[has]]
    par = _single_origin(par, cluster, roots, order_key)
    if published is not None:
        par = date_rule(par, cluster, roots, src, dst, weight, published, options.date_tie)
    # Confidence over the final tree.
    parent_sorted = np.where(par[order] >= 0, local[np.maximum(par[order], 0)], -1).astype(np.int64)
    conf_sorted = np.zeros(n)
    _confidence(node_lo, parent_sorted, edge_lo, local[src], local[dst], weight, options.temperature, conf_sorted)
    conf = np.empty(n)
    conf[order] = conf_sorted
    return par, conf


def _single_origin(par: np.ndarray, cluster: np.ndarray, roots: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """One origin per cluster: a cluster whose candidate graph is not connected hangs its other roots from the cheapest root."""
    root_rows = np.flatnonzero(par < 0)
    if len(np.unique(cluster[root_rows])) == len(root_rows):
        return par
    par = par.copy()
    order = np.lexsort((order_key[root_rows], roots[root_rows], cluster[root_rows]))
    r = root_rows[order]
    first = np.r_[True, cluster[r][1:] != cluster[r][:-1]]
    main = r[np.maximum.accumulate(np.where(first, np.arange(len(r)), 0))]
    par[r[~first]] = main[~first]
    return par


def date_rule(par: np.ndarray, cluster: np.ndarray, roots: np.ndarray, src: np.ndarray, dst: np.ndarray, weight: np.ndarray,
              published: np.ndarray, tie: float) -> np.ndarray:
    """The origin moves to an earlier-published child whose reversed tree costs less than ``tie`` acts more.

    Rooting the tree at a child ``r`` of origin ``o`` (reversing their edge) costs
    ``root(r) - root(o) + cost(r -> o) - cost(o -> r)`` more: within ``tie`` the
    texts give no direction, and the earliest publication among ``o`` and such
    children is the origin (ties keep ``o``; unknown dates never win).
    """
    cost = {(int(s), int(d)): float(w) for s, d, w in zip(src.tolist(), dst.tolist(), weight.tolist())}
    par = par.copy()
    when = np.where(np.isnan(published), np.inf, published)
    for o in np.flatnonzero(par < 0).tolist():
        best, best_key = o, (when[o], 0.0)
        for r in np.flatnonzero(par == o).tolist():
            back = cost.get((r, o))
            if back is None:
                continue
            extra = roots[r] - roots[o] + back - cost[(o, r)]
            if extra < tie and (when[r], extra) < best_key:
                best, best_key = r, (when[r], extra)
        if best != o:
            par[o], par[best] = best, -1
    return par
