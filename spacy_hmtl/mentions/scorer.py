"""Scoring of entity mentions (``doc.spans[spans_key]``): exact-match labelled P/R/F."""
from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..annotations import MENTIONS_KEY, has_mention_annotation

SCORE_PREFIX = "mentions"


def score_mentions(examples: Iterable[Example], *, spans_key: str = MENTIONS_KEY, **kwargs: Any) -> Dict[str, Any]:
    """Labelled span P/R/F of mentions, nested and overlapping spans allowed.

    A span counts as correct when its boundaries and its label match a gold span.
    Documents whose reference has no ``doc.spans[spans_key]`` are not annotated for
    mentions and are skipped; predictions are read from ``doc.spans[spans_key]`` of the
    predicted doc (none if the key is absent).

    examples (Iterable[Example]): the examples to score.
    spans_key (str): the ``doc.spans`` key holding the mentions.
    RETURNS (Dict[str, Any]): ``mentions_p``, ``mentions_r``, ``mentions_f`` (None when
        there was nothing to score: no annotated doc, or no gold and no predicted span)
        and ``mentions_per_type`` (``{label: {"p", "r", "f"}}`` or None). The names are
        fixed, whatever the key.
    """

    def getter(doc: Doc, attr: str):
        return doc.spans[attr] if attr in doc.spans else []

    scores = Scorer.score_spans(
        examples,
        spans_key,
        getter=getter,
        has_annotation=lambda doc: has_mention_annotation(doc, spans_key),
        labeled=True,
        allow_overlap=True,
    )
    return {
        f"{SCORE_PREFIX}_{suffix}": scores[f"{spans_key}_{suffix}"] for suffix in ("p", "r", "f", "per_type")
    }


@registry.scorers("spacy_hmtl.mentions_scorer.v1")
def make_mentions_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of ``hmtl_mentions``: returns ``score_mentions``."""
    return score_mentions
