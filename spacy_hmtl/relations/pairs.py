"""The pair algorithm of ``hmtl_relations`` (numpy, no torch): argument spans and
candidate pairs of a doc (``PairCandidateBuilder``: at inference from the doc's entity
source, in training from the gold, with sampled wrong arguments), pair enumeration within
sentences, and decoding one relation per unordered pair.

Span-level candidates and gold alignment shared with the other heads live in
``spacy_hmtl.candidates``.
"""
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from spacy.training import Example

from ..annotations import get_relation_records
from ..candidates import align_span_offsets, entity_spans, same_tokens, sentence_ids, sentence_ids_or_zeros

UNKNOWN_TYPE = 0  # type index of entity types not seen at initialize


def candidate_pairs(
    starts: np.ndarray, sent_ids: Optional[np.ndarray], max_pairs: int, allow_cross_sentence: bool
) -> np.ndarray:
    """Ordered candidate pairs ``(n, 2)`` (head, tail) of span indices.

    starts: span start tokens, sorted ascending. sent_ids: the sentence of each span (None:
    one sentence). At most ``max_pairs`` pairs are kept: those with the smallest distance
    between span starts (ties: smaller gap in span order, then earlier head), the two
    directions of a pair next to each other.

    Vectorized over span-order gaps ``g = 1, 2, ...``: pairs ``(i, i + g)``. The smallest
    distance at gap g never decreases with g, so the loop stops as soon as ``max_pairs``
    pairs closer than anything at the next gap were found (or when no pair at gap g is in
    one sentence, or g exceeds the pairs needed): a long doc costs O(n_spans x few gaps),
    never O(n_spans ** 2).
    """
    n = len(starts)
    if n < 2 or max_pairs <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    sents = None if allow_cross_sentence or sent_ids is None else np.asarray(sent_ids, dtype=np.int64)
    need = (max_pairs + 1) // 2  # unordered pairs
    heads: List[np.ndarray] = []
    tails: List[np.ndarray] = []
    dists: List[np.ndarray] = []
    n_found = 0
    for gap in range(1, n):
        if gap > need:
            break  # a kept pair (a, b) is preceded by the b - a - 1 pairs (a, a + 1..b - 1)
        a = np.arange(n - gap, dtype=np.int64)
        b = a + gap
        if sents is not None:
            same = sents[a] == sents[b]
            if not same.any():
                break  # sentences are contiguous in span order: no pair at larger gaps either
            a, b = a[same], b[same]
        d = starts[b] - starts[a]
        if n_found >= need:
            d_min = d.min()
            if sum(int((x < d_min).sum()) for x in dists) >= need:
                break
        heads.append(a)
        tails.append(b)
        dists.append(d)
        n_found += len(a)
    if not heads:
        return np.zeros((0, 2), dtype=np.int64)
    a, b, d = np.concatenate(heads), np.concatenate(tails), np.concatenate(dists)
    order = np.lexsort((a, b - a, d))[:need]
    a, b = a[order], b[order]
    both = np.stack([np.stack([a, b], axis=1), np.stack([b, a], axis=1)], axis=1).reshape(-1, 2)
    return both[:max_pairs]


@dataclass
class Candidates:
    """The argument spans of one doc (sorted by start, end) and its candidate pairs."""

    starts: np.ndarray  # (n_spans,) int64
    ends: np.ndarray  # (n_spans,) int64, exclusive
    types: np.ndarray  # (n_spans,) int64 type index (0 = unknown)
    pairs: np.ndarray  # (n_pairs, 2) int64 indices into the spans

    @property
    def n_pairs(self) -> int:
        return int(self.pairs.shape[0])


def sample_negative_spans(
    sent_ids: np.ndarray, exclude: set, n_samples: int, max_width: int, rng: np.random.RandomState
) -> List[Tuple[int, int]]:
    """Sample ``n_samples`` distinct spans ``(start, end exclusive)`` of at most
    ``max_width`` tokens inside one sentence that are not in ``exclude``.

    sent_ids: sentence index of every token of the doc. Half of the samples are near
    misses of an excluded (gold) span, one boundary moved by one or two tokens (the errors
    an entity tagger makes); the rest are uniform over all in-sentence spans.
    """
    n = len(sent_ids)
    if n == 0 or n_samples <= 0 or max_width < 1:
        return []
    chosen: List[Tuple[int, int]] = []
    seen = set(exclude)

    def take(start: int, end: int) -> None:
        if 0 <= start < end <= n and end - start <= max_width and (start, end) not in seen:
            if sent_ids[start] == sent_ids[end - 1]:
                seen.add((start, end))
                chosen.append((start, end))

    gold = sorted(exclude)
    for _ in range(4 * n_samples):  # bounded tries
        if len(chosen) >= n_samples:
            break
        if gold and len(chosen) < n_samples // 2:
            start, end = gold[rng.randint(len(gold))]
            shift = int(rng.choice([-2, -1, 1, 2]))
            if rng.randint(2):
                take(start + shift, end)
            else:
                take(start, end + shift)
        else:
            start = int(rng.randint(n))
            take(start, start + 1 + int(rng.randint(max_width)))
    return chosen


def canonical_direction(head: Tuple[int, int], tail: Tuple[int, int]) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """The (head, tail) order a symmetric relation is trained and predicted in: the
    earlier span first."""
    return (head, tail) if head <= tail else (tail, head)


def select_one_per_pair(pairs: np.ndarray, probs: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """At most one (direction, label) per unordered pair: the most probable, kept when
    its probability is >= threshold.

    pairs: ``(n, 2)`` ordered (head, tail) span indices. probs: ``(n, n_labels)``.
    RETURNS: the rows of ``pairs`` and their label indices, sorted by row.
    """
    if pairs.shape[0] == 0 or probs.shape[1] == 0:
        empty = np.zeros((0,), dtype=np.int64)
        return empty, empty.copy()
    best_label = probs.argmax(axis=1)
    best = probs[np.arange(len(probs)), best_label]
    lo, hi = pairs.min(axis=1), pairs.max(axis=1)
    key = lo * (int(pairs.max()) + 1) + hi
    # per unordered pair: highest probability first, ties to the lower row
    order = np.lexsort((np.arange(len(key)), -best, key))
    _, first = np.unique(key[order], return_index=True)
    rows = order[first]
    rows = np.sort(rows[best[rows] >= threshold])
    return rows, best_label[rows]


# {(start, end): (type index, sentence id)} of a doc's argument spans
ArgumentSpans = Dict[Tuple[int, int], Tuple[int, int]]


@dataclass(frozen=True)
class PairCandidateBuilder:
    """Builds the argument spans, candidate pairs and (in training) targets of a doc.

    entity_source (str): ``"ents"`` or a ``doc.spans`` key: the arguments at inference
        (and the gold arguments in training).
    labels (Tuple[str, ...]): the relation labels (target columns).
    entity_labels (Tuple[str, ...]): the argument types; index ``i + 1`` (0 = unknown).
    max_pairs (int): most candidate ordered pairs per doc (the closest are kept).
    allow_cross_sentence (bool): also pair spans of different sentences.
    symmetric_labels (FrozenSet[str]): labels trained with the earlier span as head.
    negative_spans (float): sampled wrong arguments per gold argument in training.
    """

    entity_source: str
    labels: Tuple[str, ...]
    entity_labels: Tuple[str, ...]
    max_pairs: int
    allow_cross_sentence: bool
    symmetric_labels: FrozenSet[str] = frozenset()
    negative_spans: float = 0.0

    def type_index(self) -> Dict[str, int]:
        return {label: i + 1 for i, label in enumerate(self.entity_labels)}

    def make_candidates(self, spans: ArgumentSpans) -> Candidates:
        """Candidates of ``spans`` (in predicted-doc tokens), sorted by (start, end)."""
        keys = sorted(spans)
        starts = np.array([k[0] for k in keys], dtype=np.int64)
        ends = np.array([k[1] for k in keys], dtype=np.int64)
        types = np.array([spans[k][0] for k in keys], dtype=np.int64)
        sents = np.array([spans[k][1] for k in keys], dtype=np.int64)
        pairs = candidate_pairs(starts, sents, self.max_pairs, self.allow_cross_sentence)
        return Candidates(starts, ends, types, pairs)

    def add_source_spans(self, doc: Doc, sents: np.ndarray, spans: ArgumentSpans) -> None:
        """Add the spans of the doc's own entity source to ``spans`` (a span already there
        keeps its entry)."""
        type_index = self.type_index()
        for span in entity_spans(doc, self.entity_source):
            entry = (type_index.get(span.label_, UNKNOWN_TYPE), int(sents[span.start]))
            spans.setdefault((span.start, span.end), entry)

    def inference_candidates(self, doc: Doc) -> Candidates:
        """Candidates from the doc's own entity source (predictions, never gold)."""
        spans: ArgumentSpans = {}
        self.add_source_spans(doc, sentence_ids_or_zeros(doc), spans)
        return self.make_candidates(spans)

    def training_candidates(self, eg: Example) -> Tuple[Candidates, np.ndarray]:
        """Teacher forcing: gold entity spans (+ gold relation arguments) of the reference,
        aligned to the predicted doc, and the multi-hot targets ``(n_pairs, n_labels)``."""
        ref, pred = eg.reference, eg.predicted
        records = get_relation_records(ref) or []
        type_index = self.type_index()
        gold: Dict[Tuple[int, int], Optional[str]] = {}
        for span in entity_spans(ref, self.entity_source):
            gold.setdefault((span.start, span.end), span.label_)
        for record in records:
            gold.setdefault((int(record[0]), int(record[1])), None)
            gold.setdefault((int(record[2]), int(record[3])), None)
        identity = same_tokens(pred, ref)
        ref_sents = sentence_ids(ref)
        if ref_sents is not None:
            sent_doc, sents = ref, ref_sents
        else:
            sent_doc, sents = pred, sentence_ids_or_zeros(pred)
        ref2pred: Dict[Tuple[int, int], Tuple[int, int]] = {}
        spans: ArgumentSpans = {}
        gold_items = sorted(gold.items())
        aligned = align_span_offsets(eg, [offsets for offsets, _ in gold_items])
        for ((start, end), label), key in zip(gold_items, aligned):
            if key is None:
                continue
            ref2pred[(start, end)] = key
            if key not in spans:
                sent = sents[start] if sent_doc is ref else sents[key[0]]
                spans[key] = (type_index.get(label, UNKNOWN_TYPE), int(sent))
        if self.negative_spans > 0:
            self.add_negative_arguments(pred, spans, sents if sent_doc is pred or identity else None)
        cands = self.make_candidates(spans)
        return cands, self.targets(cands, records, ref2pred)

    def targets(
        self, cands: Candidates, records: Sequence[list], ref2pred: Dict[Tuple[int, int], Tuple[int, int]]
    ) -> np.ndarray:
        """Multi-hot ``(n_pairs, n_labels)`` targets of the gold relation records."""
        targets = np.zeros((cands.n_pairs, len(self.labels)), dtype=np.float32)
        if not cands.n_pairs or not records:
            return targets
        span_index = {(int(s), int(e)): i for i, (s, e) in enumerate(zip(cands.starts, cands.ends))}
        pair_index = {(int(h), int(t)): i for i, (h, t) in enumerate(cands.pairs)}
        label_index = {label: i for i, label in enumerate(self.labels)}
        for hs, he, ts, te, label, *_ in records:
            head = ref2pred.get((int(hs), int(he)))
            tail = ref2pred.get((int(ts), int(te)))
            if head is None or tail is None or label not in label_index:
                continue
            if label in self.symmetric_labels:
                head, tail = canonical_direction(head, tail)
            row = pair_index.get((span_index[head], span_index[tail]))
            if row is not None:  # else: cross-sentence, beyond max_pairs or self-pair
                targets[row, label_index[label]] = 1.0
        return targets

    def add_negative_arguments(self, pred: Doc, spans: ArgumentSpans, sents: Optional[np.ndarray]) -> None:
        """Add arguments that are not gold entities to a training doc's ``spans``: the
        predicted doc's own entity spans (when an annotating entity pipe set them) and
        ``negative_spans`` sampled spans per gold span, with a random entity type (as a
        tagger would assign one). Pairs with them have no relation, so the head learns to
        reject the wrong arguments it meets at inference."""
        if sents is None:
            sents = sentence_ids_or_zeros(pred)
        self.add_source_spans(pred, sents, spans)
        n_gold = len(spans)
        if not n_gold:
            return
        max_width = min(10, max(end - start for start, end in spans))
        n_samples = int(round(self.negative_spans * n_gold))
        n_types = len(self.entity_labels)
        # numpy's global generator: spaCy's fixed seed makes the sample reproducible
        for start, end in sample_negative_spans(sents, set(spans), n_samples, max_width, np.random):  # type: ignore[arg-type]  # numpy's global generator module has RandomState's interface
            type_id = int(np.random.randint(n_types)) + 1 if n_types else UNKNOWN_TYPE
            spans[(start, end)] = (type_id, int(sents[start]))
