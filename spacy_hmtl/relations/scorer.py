"""Relation extraction scores (``spacy_hmtl.relation_scorer.v1``), end to end.

A predicted relation is compared with the gold ones by the character offsets of its two
argument spans (so the predicted and the reference tokenization may differ) and its label:

* ``rel_micro_p/r/f`` ("boundaries"): both argument spans and the label right;
* ``rel_strict_p/r/f``: also both entity types right. The type of an argument is the label
  of the span with the same boundaries in the doc's entity source (the predicted doc for a
  prediction, the reference for gold); an argument found in no source has type ``None``;
* ``rel_per_type``: ``{label: {"p", "r", "f"}}`` on boundaries.

Unlike the original HMTL evaluation, sentences and documents without gold relations are
kept: their predictions count as false positives. A gold relation whose arguments were
never predicted is a miss. Documents whose reference is not annotated for relations
(records ``None``) are skipped; when no document was scored, every score is ``None``.
Otherwise spaCy's convention applies: a ratio with a zero denominator is 0.0.
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..annotations import MENTIONS_KEY, get_relation_records
from ..candidates import ENTS_SOURCE, entity_spans

# Where the scorer looks for argument types when no entity source is given.
DEFAULT_TYPE_SOURCES = (ENTS_SOURCE, MENTIONS_KEY)


def entity_types(doc: Doc, entity_source: Optional[str] = None) -> Dict[Tuple[int, int], str]:
    """``{(start, end): label}`` of the spans in the entity source (the first label wins);
    with no source, ``doc.ents`` first, then ``doc.spans["mentions"]``."""
    sources = [entity_source] if entity_source else list(DEFAULT_TYPE_SOURCES)
    types: Dict[Tuple[int, int], str] = {}
    for source in sources:
        for span in entity_spans(doc, source):
            types.setdefault((span.start, span.end), span.label_)
    return types


def _char_offsets(doc: Doc, start: int, end: int) -> Tuple[int, int]:
    return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])


def _relation_keys(doc: Doc, records: List[list], types: Dict[Tuple[int, int], str]):
    boundaries, strict = set(), set()
    for hs, he, ts, te, label, *_ in records:
        head, tail = _char_offsets(doc, hs, he), _char_offsets(doc, ts, te)
        boundaries.add((head, tail, label))
        strict.add((head, types.get((hs, he)), tail, types.get((ts, te)), label))
    return boundaries, strict


class _Counts:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, pred: set, gold: set) -> None:
        tp = len(pred & gold)
        self.tp += tp
        self.fp += len(pred) - tp
        self.fn += len(gold) - tp

    def prf(self) -> Tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def score_relations(
    examples: Iterable[Example], *, entity_source: Optional[str] = None, **kwargs: Any
) -> Dict[str, Any]:
    """Score predicted relations (``doc._.hmtl_relations_data``) against the reference.

    examples (Iterable[Example]): predicted docs in ``example.predicted``; a predicted doc
        without records counts as predicting no relation.
    entity_source (Optional[str]): where argument types are read for the strict scores:
        ``"ents"`` or a ``doc.spans`` key; by default ``doc.ents`` then
        ``doc.spans["mentions"]``. The component passes its own ``entity_source``.
    RETURNS (Dict[str, Any]): ``rel_micro_p/r/f``, ``rel_strict_p/r/f`` (None when no
        document was annotated for relations) and ``rel_per_type``.
    """
    micro, strict = _Counts(), _Counts()
    per_label: Dict[str, _Counts] = {}
    n_scored = 0
    for eg in examples:
        gold_records = get_relation_records(eg.reference)
        if gold_records is None:
            continue
        n_scored += 1
        pred_records = get_relation_records(eg.predicted) or []
        gold_b, gold_s = _relation_keys(eg.reference, gold_records, entity_types(eg.reference, entity_source))
        pred_b, pred_s = _relation_keys(eg.predicted, pred_records, entity_types(eg.predicted, entity_source))
        micro.add(pred_b, gold_b)
        strict.add(pred_s, gold_s)
        for label in {key[-1] for key in pred_b | gold_b}:
            per_label.setdefault(label, _Counts()).add(
                {k for k in pred_b if k[-1] == label}, {k for k in gold_b if k[-1] == label}
            )
    if not n_scored:
        return {
            **{f"rel_{kind}_{m}": None for kind in ("micro", "strict") for m in "prf"},
            "rel_per_type": None,
        }
    scores: Dict[str, Any] = {}
    for kind, counts in (("micro", micro), ("strict", strict)):
        p, r, f = counts.prf()
        scores.update({f"rel_{kind}_p": p, f"rel_{kind}_r": r, f"rel_{kind}_f": f})
    scores["rel_per_type"] = {
        label: dict(zip("prf", per_label[label].prf())) for label in sorted(per_label)
    }
    return scores


@registry.scorers("spacy_hmtl.relation_scorer.v1")
def make_relation_scorer():
    """The scorer of ``hmtl_relations``: returns ``score_relations``."""
    return score_relations
