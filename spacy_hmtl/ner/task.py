"""The task description of ``hmtl_ner`` (``spacy_hmtl.tasks``): entities in ``doc.ents``,
written by ``annotate`` under ``"entities"``, scored as ``ents_p/r/f``."""
from typing import Any, List, Mapping, Optional

from spacy.tokens import Doc, Span

from ..annotations import ENTS_OVERFLOW_KEY, has_ner_annotation
from ..doc_json import span_to_json
from .render import render_entities
from ..tasks import ScoreRow, Task


def _span_source(block: Mapping[str, Any]) -> str:
    """Another head reads this head's entities as ``"ents"`` (``doc.ents``)."""
    return "ents"


def _is_annotated(doc: Doc, key: Optional[str]) -> bool:
    return has_ner_annotation(doc)


def _strip(doc: Doc, key: Optional[str]) -> None:
    """Every token's entity IOB set to missing, and the entities that overlap others
    (``doc.spans["ents_overlapping"]``, a converter's) removed with them."""
    doc.set_ents([], default="missing")
    if ENTS_OVERFLOW_KEY in doc.spans:
        del doc.spans[ENTS_OVERFLOW_KEY]


def _to_json(doc: Doc, key: Optional[str]) -> Optional[List[dict]]:
    return [span_to_json(ent) for ent in doc.ents] if has_ner_annotation(doc) else None


def _from_json(doc: Doc, value: Any, key: Optional[str]) -> None:
    # "outside" for the other tokens: the line says the doc is annotated for entities
    ents = [Span(doc, e["start_token"], e["end_token"], label=e.get("label") or "") for e in value]
    doc.set_ents(ents, default="outside")


NER_TASK = Task(
    name="ner",
    factory="hmtl_ner",
    layer="entities",
    json_key="entities",
    title="Entities",
    writes=("doc.ents",),
    score_prefix="ents_",
    score_rows=(ScoreRow("ents", "entities"),),
    is_annotated=_is_annotated,
    strip=_strip,
    to_json=_to_json,
    from_json=_from_json,
    render=render_entities,
    provides_spans=_span_source,
    graph_role="entities",
    order=10,
)
