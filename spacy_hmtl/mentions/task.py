"""The task description of ``hmtl_mentions`` (``spacy_hmtl.tasks``): mentions in
``doc.spans[spans_key]`` (default ``"mentions"``), written by ``annotate`` under
``"mentions"`` with their scores, scored as ``mentions_p/r/f``."""
from typing import Any, List, Mapping, Optional

from spacy.tokens import Doc, Span, SpanGroup

from ..annotations import MENTIONS_KEY, has_mention_annotation
from ..doc_json import json_score, span_to_json
from .render import render_mentions
from ..tasks import ScoreRow, Task

# LitBank's mention kinds (PROP/NOM/PRON; ``converters.litbank``): part of the mention
# annotation, stripped with it.
MENTION_KINDS_KEY = "mention_kinds"


def _is_annotated(doc: Doc, key: Optional[str]) -> bool:
    return has_mention_annotation(doc, key or MENTIONS_KEY)


def _strip(doc: Doc, key: Optional[str]) -> None:
    for name in (key or MENTIONS_KEY, MENTION_KINDS_KEY):
        if name in doc.spans:
            del doc.spans[name]


def _to_json(doc: Doc, key: Optional[str]) -> Optional[List[dict]]:
    """The mentions of ``doc.spans[key]``, each with its score when the group's
    ``attrs["scores"]`` has one per span; None when the doc is not annotated for mentions."""
    key = key or MENTIONS_KEY
    if not has_mention_annotation(doc, key):
        return None
    group = doc.spans[key]
    scores = group.attrs.get("scores")
    if scores is not None and len(scores) != len(group):
        scores = None
    mentions = []
    for i, span in enumerate(group):
        item = span_to_json(span)
        if scores is not None:
            item["score"] = json_score(scores[i])
        mentions.append(item)
    return mentions


def _from_json(doc: Doc, value: Any, key: Optional[str]) -> None:
    key = key or MENTIONS_KEY
    spans = [Span(doc, m["start_token"], m["end_token"], label=m.get("label") or "") for m in value]
    group = SpanGroup(doc, name=key, spans=spans)
    if value and all(m.get("score") is not None for m in value):
        group.attrs["scores"] = [float(m["score"]) for m in value]
    doc.spans[key] = group


def _span_source(block: Mapping[str, Any]) -> str:
    """Another head reads this head's mentions by its ``spans_key``."""
    return str(block.get("spans_key", MENTIONS_KEY))


MENTIONS_TASK = Task(
    name="mentions",
    factory="hmtl_mentions",
    layer="mentions",
    json_key="mentions",
    title="Mentions",
    writes=('doc.spans["mentions"] (the pipe\'s spans_key), with attrs["scores"]',),
    score_prefix="mentions_",
    score_rows=(ScoreRow("mentions", "mentions"),),
    is_annotated=_is_annotated,
    strip=_strip,
    to_json=_to_json,
    from_json=_from_json,
    render=render_mentions,
    provides_spans=_span_source,
    graph_role="mentions",
    doc_key=MENTIONS_KEY,
    order=20,
)
