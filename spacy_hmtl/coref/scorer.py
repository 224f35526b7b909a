"""The coreference scorer of ``hmtl_coref``: MUC, B³, CEAF-e, LEA and the CoNLL average,
micro-averaged over the documents annotated for coreference.

Mentions are compared by character offsets, so the scores do not depend on the predicted
tokenization matching the gold one.
"""
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..annotations import get_coref_clusters, has_coref_annotation
from .metrics import CorefEvaluator

SCORE_KEYS = ["coref_f", "coref_p", "coref_r"] + [
    f"coref_{metric}_{part}" for metric in ("muc", "b3", "ceafe", "lea") for part in ("p", "r", "f")
]


def _char_clusters(doc: Doc, remove_singletons: bool) -> List[List[Tuple[int, int]]]:
    clusters = get_coref_clusters(doc) or []
    result = []
    for cluster in clusters:
        mentions = [(doc[s:e].start_char, doc[s:e].end_char) for s, e in cluster]
        if remove_singletons and len(set(mentions)) < 2:
            continue
        result.append(mentions)
    return result


def score_coref(
    examples: Iterable[Example], *, remove_singletons: bool = False, **kwargs: Any
) -> Dict[str, Optional[float]]:
    """Score the coreference clusters of ``example.predicted`` against ``example.reference``.

    References not annotated for coreference (see ``annotations.has_coref_annotation``) are
    skipped; a predicted doc without clusters counts as predicting none.

    examples (Iterable[Example]): the examples to score.
    remove_singletons (bool): drop gold (and predicted) clusters of one mention first, as in
        the CoNLL-2012 evaluation (the component never predicts singletons).
    RETURNS (Dict[str, Optional[float]]): ``coref_f`` (CoNLL F1, the average of MUC, B³ and
        CEAF-e F1), ``coref_p``/``coref_r`` (average precision/recall) and
        ``coref_{muc,b3,ceafe,lea}_{p,r,f}``; all None when no document was scored.
    """
    evaluator = CorefEvaluator()
    for eg in examples:
        if not has_coref_annotation(eg.reference):
            continue
        evaluator.add(
            _char_clusters(eg.reference, remove_singletons),
            _char_clusters(eg.predicted, remove_singletons),
        )
    if evaluator.n_docs == 0:
        return {key: None for key in SCORE_KEYS}
    scores: Dict[str, Optional[float]] = {
        "coref_f": evaluator.conll_f,
        "coref_p": evaluator.conll_p,
        "coref_r": evaluator.conll_r,
    }
    for metric in ("muc", "b3", "ceafe", "lea"):
        p, r, f = evaluator.scores(metric)
        scores[f"coref_{metric}_p"] = p
        scores[f"coref_{metric}_r"] = r
        scores[f"coref_{metric}_f"] = f
    return scores


@registry.scorers("spacy_hmtl.coref_scorer.v1")
def make_coref_scorer(remove_singletons: bool = False) -> Callable[..., Dict[str, Optional[float]]]:
    """The scorer of ``hmtl_coref`` (see ``score_coref``)."""
    # A partial of a module-level function, not a closure: pipelines must pickle.
    return partial(score_coref, remove_singletons=remove_singletons)
