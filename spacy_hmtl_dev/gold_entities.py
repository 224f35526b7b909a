"""The relation head given the gold entities: how much of its error it inherits from the
entity head (``scripts/relations_given_gold_entities.py``).

Every pipe runs as ``nlp.pipe`` would, except that right after ``hmtl_ner`` the predicted
entities are replaced by the gold ones, so ``hmtl_relations`` (entity source ``ents``)
scores pairs of gold arguments.
"""
from typing import Any, Dict, List, Optional, Sequence

RELATION_KEYS = ("rel_micro_p", "rel_micro_r", "rel_micro_f", "rel_strict_p", "rel_strict_r", "rel_strict_f")


def gold_entities_on(doc: Any, reference: Any, index: int) -> List[Any]:
    """The reference's entities as spans of ``doc`` (which may be tokenized differently),
    each widened to the tokens it touches; a ValueError names the document and the entity
    that no token of ``doc`` covers."""
    spans = []
    for ent in reference.ents:
        span = doc.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
        if span is None:
            raise ValueError(
                f"document {index}: gold entity {ent.text!r} ({ent.label_}, characters "
                f"{ent.start_char}-{ent.end_char}) covers no token of the predicted document"
            )
        spans.append(span)
    return spans


def relation_scores(nlp: Any, examples: Sequence[Any], gold_entities: bool) -> Dict[str, Optional[float]]:
    """The relation scorer's figures with predicted (or, if ``gold_entities``, gold) entities."""
    from spacy.training import Example

    predicted = []
    for index, eg in enumerate(examples):
        doc = eg.predicted.copy()
        for name, pipe in nlp.pipeline:
            doc = pipe(doc)
            if gold_entities and name == "hmtl_ner":
                doc.ents = gold_entities_on(doc, eg.reference, index)
        predicted.append(Example(doc, eg.reference))
    scores = nlp.get_pipe("hmtl_relations").score(predicted)
    return {key: scores.get(key) for key in RELATION_KEYS}
