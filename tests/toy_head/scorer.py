"""The scorer of ``toy_topic``: ``topic_p/r/f`` over the documents annotated with a topic."""
from typing import Any, Dict, Iterable, Optional

from spacy.training import Example
from spacy.util import registry

from .task import TOPIC_ATTR


def score_topics(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Optional[float]]:
    """Precision (right topics / documents given one), recall (right topics / annotated
    documents) and F, over the references with a topic; None when there are none."""
    n_gold = n_predicted = n_right = 0
    for eg in examples:
        gold = eg.reference._.get(TOPIC_ATTR)
        if gold is None:
            continue
        predicted = eg.predicted._.get(TOPIC_ATTR)
        n_gold += 1
        n_predicted += predicted is not None
        n_right += predicted == gold
    if not n_gold:
        return {"topic_p": None, "topic_r": None, "topic_f": None}
    p = n_right / n_predicted if n_predicted else 0.0
    r = n_right / n_gold
    return {"topic_p": p, "topic_r": r, "topic_f": 2 * p * r / (p + r) if p + r else 0.0}


@registry.scorers("spacy_hmtl_toy.topic_scorer.v1")
def make_topic_scorer():
    return score_topics
