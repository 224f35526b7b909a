"""Argument spans and candidate pairs of ``hmtl_relations`` (numpy, no spaCy models, no
torch): pair enumeration, negative argument sampling for training, and decoding one
relation per unordered pair."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc

from ..annotations import sentence_ids


def sentence_ids_or_zeros(doc: Doc) -> np.ndarray:
    """Sentence index of every token (all zeros when the doc has no sentence boundaries)."""
    ids = sentence_ids(doc)
    return np.zeros(len(doc), dtype=np.int64) if ids is None else ids


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
