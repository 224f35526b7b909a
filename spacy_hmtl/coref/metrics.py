"""Coreference evaluation metrics: MUC, B³, CEAF-e, LEA and the CoNLL average.

Pure Python + numpy/scipy (no spaCy), so the metrics can be tested against the published
test cases of the CoNLL-2012 reference scorer (Pradhan et al. 2014) and coval's LEA
cases (Moosavi & Strube 2016).

A *clustering* is a sequence of clusters; a cluster is a collection of hashable mentions,
e.g. ``(start, end)`` token or character offsets. Every metric returns the four counts
``(recall_num, recall_den, precision_num, precision_den)`` of one document, so scores can
be micro-averaged over a corpus by summing the counts (as the reference scorer does).

Conventions:

* duplicate mentions inside a cluster are counted once; a mention that occurs in several
  clusters of the same clustering is kept in the first of them (the reference scorer
  removes such duplicates too);
* empty clusters are ignored;
* a score with a zero denominator is 0 (e.g. precision of an empty prediction), never a
  division error.
"""
from typing import Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

Mention = Hashable
Cluster = Sequence[Mention]
Counts = Tuple[float, float, float, float]  # recall num/den, precision num/den

METRICS = ("muc", "b3", "ceafe", "lea")


def normalize_clusters(clusters: Iterable[Iterable[Mention]]) -> List[List[Mention]]:
    """Deduplicate mentions (first occurrence wins) and drop empty clusters.

    clusters (Iterable[Iterable[Mention]]): the clustering.
    RETURNS (List[List[Mention]]): clusters as lists of distinct mentions.
    """
    seen = set()
    result = []
    for cluster in clusters:
        clean = []
        for mention in cluster:
            if mention not in seen:
                seen.add(mention)
                clean.append(mention)
        if clean:
            result.append(clean)
    return result


def _mention_to_cluster(clusters: Sequence[Cluster]) -> Dict[Mention, int]:
    return {m: i for i, cluster in enumerate(clusters) for m in cluster}


def _muc_side(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    """MUC recall counts of ``key`` against ``response`` (swap for precision)."""
    resp_of = _mention_to_cluster(response)
    num = den = 0
    for cluster in key:
        # Partition of the key cluster by the response; mentions missing from the
        # response each form a part of their own.
        parts = set()
        n_missing = 0
        for m in cluster:
            if m in resp_of:
                parts.add(resp_of[m])
            else:
                n_missing += 1
        num += len(cluster) - (len(parts) + n_missing)
        den += len(cluster) - 1
    return float(num), float(den)


def muc(key: Iterable[Iterable[Mention]], response: Iterable[Iterable[Mention]]) -> Counts:
    """MUC (Vilain et al. 1995): link-based. Singletons contribute nothing.

    RETURNS (Counts): recall numerator/denominator, precision numerator/denominator.
    """
    key, response = normalize_clusters(key), normalize_clusters(response)
    r_num, r_den = _muc_side(key, response)
    p_num, p_den = _muc_side(response, key)
    return r_num, r_den, p_num, p_den


def _b3_side(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    resp_of = _mention_to_cluster(response)
    num = 0.0
    den = 0
    for cluster in key:
        overlap: Dict[int, int] = {}
        for m in cluster:
            if m in resp_of:
                overlap[resp_of[m]] = overlap.get(resp_of[m], 0) + 1
        num += sum(n * n for n in overlap.values()) / len(cluster)
        den += len(cluster)
    return num, float(den)


def b_cubed(key: Iterable[Iterable[Mention]], response: Iterable[Iterable[Mention]]) -> Counts:
    """B³ (Bagga & Baldwin 1998): mention-based.

    RETURNS (Counts): recall numerator/denominator, precision numerator/denominator.
    """
    key, response = normalize_clusters(key), normalize_clusters(response)
    r_num, r_den = _b3_side(key, response)
    p_num, p_den = _b3_side(response, key)
    return r_num, r_den, p_num, p_den


def ceafe(key: Iterable[Iterable[Mention]], response: Iterable[Iterable[Mention]]) -> Counts:
    """Entity-based CEAF (Luo 2005) with phi4 similarity and the optimal one-to-one
    alignment of key and response clusters (Hungarian algorithm).

    RETURNS (Counts): recall numerator/denominator, precision numerator/denominator.
    """
    from scipy.optimize import linear_sum_assignment

    key, response = normalize_clusters(key), normalize_clusters(response)
    total = 0.0
    if key and response:
        resp_of = _mention_to_cluster(response)
        sim = np.zeros((len(key), len(response)), dtype=np.float64)
        for i, cluster in enumerate(key):
            for m in cluster:
                if m in resp_of:
                    sim[i, resp_of[m]] += 1.0
        sizes_k = np.array([len(c) for c in key], dtype=np.float64)
        sizes_r = np.array([len(c) for c in response], dtype=np.float64)
        sim = 2.0 * sim / (sizes_k[:, None] + sizes_r[None, :])
        rows, cols = linear_sum_assignment(sim, maximize=True)
        total = float(sim[rows, cols].sum())
    return total, float(len(key)), total, float(len(response))


def _lea_side(key: Sequence[Cluster], response: Sequence[Cluster]) -> Tuple[float, float]:
    resp_of = _mention_to_cluster(response)
    num = 0.0
    den = 0
    for cluster in key:
        size = len(cluster)
        if size == 1:
            # A singleton's only "link" is to itself: resolved iff it is a singleton
            # in the other clustering too.
            m = cluster[0]
            resolved = 1.0 if m in resp_of and len(response[resp_of[m]]) == 1 else 0.0
        else:
            overlap: Dict[int, int] = {}
            for m in cluster:
                if m in resp_of:
                    overlap[resp_of[m]] = overlap.get(resp_of[m], 0) + 1
            common = sum(n * (n - 1) / 2.0 for n in overlap.values())
            resolved = common / (size * (size - 1) / 2.0)
        num += size * resolved
        den += size
    return num, float(den)


def lea(key: Iterable[Iterable[Mention]], response: Iterable[Iterable[Mention]]) -> Counts:
    """LEA, the link-based entity-aware metric (Moosavi & Strube 2016): each entity's
    share of resolved links, weighted by its size.

    RETURNS (Counts): recall numerator/denominator, precision numerator/denominator.
    """
    key, response = normalize_clusters(key), normalize_clusters(response)
    r_num, r_den = _lea_side(key, response)
    p_num, p_den = _lea_side(response, key)
    return r_num, r_den, p_num, p_den


METRIC_FUNCTIONS = {"muc": muc, "b3": b_cubed, "ceafe": ceafe, "lea": lea}


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def prf(counts: Sequence[float]) -> Tuple[float, float, float]:
    """(precision, recall, f1) from summed counts; 0 where a denominator is 0."""
    r_num, r_den, p_num, p_den = counts
    r = _ratio(r_num, r_den)
    p = _ratio(p_num, p_den)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


class CorefEvaluator:
    """Accumulates documents and micro-averages MUC, B³, CEAF-e and LEA over them.

    >>> ev = CorefEvaluator()
    >>> ev.add([[(0, 1), (5, 6)]], [[(0, 1), (5, 6)]])
    >>> ev.conll_f
    1.0
    """

    def __init__(self, metrics: Sequence[str] = METRICS):
        for name in metrics:
            if name not in METRIC_FUNCTIONS:
                raise ValueError(f"Unknown coreference metric {name!r}; choose from {sorted(METRIC_FUNCTIONS)}")
        self.metrics = tuple(metrics)
        self.counts: Dict[str, List[float]] = {m: [0.0, 0.0, 0.0, 0.0] for m in self.metrics}
        self.n_docs = 0

    def add(self, key: Iterable[Iterable[Mention]], response: Iterable[Iterable[Mention]]) -> None:
        """Score one document: ``key`` (gold) and ``response`` (predicted) clusterings."""
        key = normalize_clusters(key)
        response = normalize_clusters(response)
        for name in self.metrics:
            doc_counts = METRIC_FUNCTIONS[name](key, response)
            acc = self.counts[name]
            for i in range(4):
                acc[i] += doc_counts[i]
        self.n_docs += 1

    def precision(self, metric: str) -> float:
        return prf(tuple(self.counts[metric]))[0]

    def recall(self, metric: str) -> float:
        return prf(tuple(self.counts[metric]))[1]

    def f1(self, metric: str) -> float:
        return prf(tuple(self.counts[metric]))[2]

    def scores(self, metric: str) -> Tuple[float, float, float]:
        """(precision, recall, f1) of one metric."""
        return prf(tuple(self.counts[metric]))

    def _conll(self, index: int) -> Optional[float]:
        needed = ("muc", "b3", "ceafe")
        if not all(m in self.counts for m in needed):
            return None
        return sum(self.scores(m)[index] for m in needed) / 3.0

    @property
    def conll_p(self) -> Optional[float]:
        """Average precision of MUC, B³ and CEAF-e."""
        return self._conll(0)

    @property
    def conll_r(self) -> Optional[float]:
        """Average recall of MUC, B³ and CEAF-e."""
        return self._conll(1)

    @property
    def conll_f(self) -> Optional[float]:
        """The CoNLL-2012 score: average F1 of MUC, B³ and CEAF-e."""
        return self._conll(2)
