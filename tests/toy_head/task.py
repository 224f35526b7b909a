"""The task description of ``toy_topic``: the topic in ``doc._.hmtl_topic`` (None: not
annotated) and its score in ``doc._.hmtl_topic_score``; ``annotate`` writes
``"topic": {"label", "score"}``; scored as ``topic_p/r/f``."""
import html
from typing import Any, Dict, Optional

from spacy.tokens import Doc

from spacy_hmtl.doc_json import json_score
from spacy_hmtl.tasks import DocExtension, RenderContext, ScoreRow, Task

TOPIC_ATTR = "hmtl_topic"
TOPIC_SCORE_ATTR = "hmtl_topic_score"


def _is_annotated(doc: Doc, key: Optional[str]) -> bool:
    return doc._.get(TOPIC_ATTR) is not None


def _strip(doc: Doc, key: Optional[str]) -> None:
    doc._.set(TOPIC_ATTR, None)
    doc._.set(TOPIC_SCORE_ATTR, None)


def _to_json(doc: Doc, key: Optional[str]) -> Optional[Dict[str, Any]]:
    label = doc._.get(TOPIC_ATTR)
    if label is None:
        return None
    score = doc._.get(TOPIC_SCORE_ATTR)
    return {"label": label, "score": None if score is None else json_score(score)}


def _from_json(doc: Doc, value: Any, key: Optional[str]) -> None:
    doc._.set(TOPIC_ATTR, value["label"])
    doc._.set(TOPIC_SCORE_ATTR, value.get("score"))


def _render(data: Dict[str, Any], ctx: RenderContext) -> str:
    topic = data["topic"]
    score = "" if topic.get("score") is None else f" (score {topic['score']:.2f})"
    return f'<p class="hmtl-topic-label">{html.escape(topic["label"])}{score}</p>'


TOPIC_TASK = Task(
    name="topic",
    factory="toy_topic",
    layer="topic",
    json_key="topic",
    title="Topic",
    writes=("doc._.hmtl_topic", "doc._.hmtl_topic_score"),
    score_prefix="topic_",
    score_rows=(ScoreRow("topic", "topic"),),
    is_annotated=_is_annotated,
    strip=_strip,
    to_json=_to_json,
    from_json=_from_json,
    render=_render,
    extensions=(DocExtension(TOPIC_ATTR), DocExtension(TOPIC_SCORE_ATTR)),
    order=50,
)
