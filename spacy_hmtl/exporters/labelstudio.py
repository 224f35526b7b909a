"""A document's layers (``doc_to_json``'s dict) -> a Label Studio task with the layers as a
prediction (a pre-annotation), to correct in Label Studio and read back with ``convert
labelstudio`` (``--from-predictions`` for tasks nobody annotated).

The task is ``{"data": {"text", "doc_id"}, "predictions": [{"model_version", "result"}]}``.
Each span is a ``labels`` result whose ``from_name`` is its layers' tag
(``tool_layers.LAYER_TAGS``: "entities", "mentions", "both", or "arguments" for a
relation argument or coreference mention that is neither an entity nor a mention), so
the labeling config needs a ``<Labels>`` control of each name used, and a ``<Relations>``
control with the relation labels and the coreference label. Relations and coreference
chains are ``relation`` results (direction "right": ``from_id`` is the head).

Offsets are UTF-16 code units, as Label Studio counts them in the browser (they differ
from characters after an emoji); ``convert labelstudio`` maps them back.
"""
import json
from typing import List, Sequence

from ..converters.labelstudio import DOC_ID_KEY, utf16_offsets
from ..converters.tool_layers import layer_tag
from .common import DEFAULT_COREF_LABEL, UNLABELLED, Json, linked_spans

# The Text control the regions belong to (``<Text name="text" value="$text"/>``).
TEXT_CONTROL = "text"
MODEL_VERSION = "spacy-hmtl"


def to_labelstudio(data: Json, *, coref_label: str = DEFAULT_COREF_LABEL) -> Json:
    """A Label Studio task of one document, its layers as the task's prediction.

    data: ``spacy_hmtl.doc_json.doc_to_json``'s dict (an ``annotate`` line).
    coref_label: the relation label of coreference links.
    RAISES ExportError: a relation labelled ``coref_label``.
    """
    text = data["text"]
    units = utf16_offsets(text)
    spans, links = linked_spans(data, coref_label)
    result: List[Json] = [
        {
            "id": f"s{i}",
            "from_name": layer_tag(span.layers),
            "to_name": TEXT_CONTROL,
            "type": "labels",
            "value": {
                "start": units[span.start_char],
                "end": units[span.end_char],
                "text": span.text,
                "labels": [span.label or UNLABELLED],
            },
        }
        for i, span in enumerate(spans)
    ]
    result.extend(
        {"id": f"r{j}", "type": "relation", "from_id": f"s{head}", "to_id": f"s{tail}", "direction": "right", "labels": [label]}
        for j, (head, tail, label) in enumerate(links)
    )
    task_data: Json = {TEXT_CONTROL: text}
    if "id" in data:
        task_data[DOC_ID_KEY] = data["id"]
    return {"data": task_data, "predictions": [{"model_version": MODEL_VERSION, "result": result}]}


def labelstudio_json(tasks: Sequence[Json]) -> bytes:
    """Label Studio tasks as the JSON array Label Studio imports, one task per line."""
    lines = [json.dumps(task, ensure_ascii=False) for task in tasks]
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf8")
