"""The task description of ``hmtl_relations`` (``spacy_hmtl.tasks``): relation records in
``doc._.hmtl_relations_data`` (``doc._.relations``), written by ``annotate`` under
``"relations"``, scored as ``rel_micro_p/r/f`` (argument boundaries and label) and
``rel_strict_p/r/f`` (also both entity types)."""
from typing import Any, Dict, List, Optional, Tuple

from spacy.tokens import Doc

from ..annotations import (
    ENTS_OVERFLOW_KEY,
    RELATION_EXTENSIONS,
    get_relation_records,
    has_relation_annotation,
    set_relation_records,
)
from ..doc_json import json_score, span_to_json
from .render import render_relations
from ..tasks import ScoreRow, SpanInput, Task


def _is_annotated(doc: Doc, key: Optional[str]) -> bool:
    return has_relation_annotation(doc)


def _strip(doc: Doc, key: Optional[str]) -> None:
    if has_relation_annotation(doc):
        set_relation_records(doc, None)


def _to_json(doc: Doc, key: Optional[str]) -> Optional[List[dict]]:
    """The relation records as head, tail (labelled with the entity each argument is, if
    any), label and score; None when the doc is not annotated for relations."""
    records = get_relation_records(doc)
    if records is None:
        return None
    labels = _entity_labels(doc)
    return [
        {
            "head": span_to_json(doc[hs:he], labels.get((hs, he), "")),
            "tail": span_to_json(doc[ts:te], labels.get((ts, te), "")),
            "label": label,
            "score": json_score(score),
        }
        for hs, he, ts, te, label, score in records
    ]


def _entity_labels(doc: Doc) -> Dict[Tuple[int, int], str]:
    """(start, end) -> label of the entities a relation argument can be."""
    labels: Dict[Tuple[int, int], str] = {}
    overflow = doc.spans[ENTS_OVERFLOW_KEY] if ENTS_OVERFLOW_KEY in doc.spans else []
    for span in list(overflow) + list(doc.ents):  # doc.ents wins
        labels[(span.start, span.end)] = span.label_
    return labels


def _from_json(doc: Doc, value: Any, key: Optional[str]) -> None:
    set_relation_records(
        doc,
        [
            [r["head"]["start_token"], r["head"]["end_token"], r["tail"]["start_token"], r["tail"]["end_token"],
             r["label"], r.get("score", 1.0)]
            for r in value
        ],
    )


RELATIONS_TASK = Task(
    name="relations",
    factory="hmtl_relations",
    layer="relations",
    json_key="relations",
    title="Relations",
    writes=("doc._.hmtl_relations_data (read as doc._.relations)",),
    score_prefix="rel_",
    score_rows=(ScoreRow("rel_micro", "relations, boundaries"), ScoreRow("rel_strict", "relations, strict")),
    is_annotated=_is_annotated,
    strip=_strip,
    to_json=_to_json,
    from_json=_from_json,
    render=render_relations,
    graph_role="relations",
    # its arguments: doc.ents ("ents", the NER head's) or a span group (a mentions head's spans_key)
    span_input=SpanInput("entity_source", "ents"),
    extensions=RELATION_EXTENSIONS,
    order=30,
)
