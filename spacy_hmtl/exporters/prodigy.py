"""A document's layers (``doc_to_json``'s dict) -> a Prodigy task, for correction with
Prodigy's manual recipes (``spans.manual``, ``rel.manual``, ``coref.manual``) and back
with ``convert prodigy``.

The task has ``text``, ``tokens`` (with ``ws``), ``spans`` (entities and mentions, each
with its layers under ``"hmtl_layers"``), ``relations`` (relations, and coreference
chains labelled with the coreference label), ``meta.id`` and, for ``annotate``'s resume,
``id``. A layer the document is not annotated for is left out (no ``spans`` key when
neither entities nor mentions are annotated, no ``relations`` key when neither relations
nor coreference are), so that converting the task back keeps "not annotated" apart
from "nothing found". No ``answer`` is written: the task is a suggestion.
"""
import json
from typing import Any, Dict, Optional, Sequence

from ..converters.prodigy import LAYERS_KEY
from ..safe_io import dumps_line
from .common import DEFAULT_COREF_LABEL, Json, export_links, layered_spans, token_whitespace


def to_prodigy(data: Json, *, coref_label: str = DEFAULT_COREF_LABEL) -> Json:
    """A Prodigy task of one document.

    data: ``spacy_hmtl.doc_json.doc_to_json``'s dict (an ``annotate`` line).
    coref_label: the relation label of coreference links.
    RAISES ExportError: a relation labelled ``coref_label``.
    """
    task: Json = {}
    if "id" in data:
        task["id"] = data["id"]
    task["text"] = data["text"]
    task["tokens"] = [
        {"text": t["text"], "start": t["start"], "end": t["end"], "id": i, "ws": ws}
        for i, (t, ws) in enumerate(zip(data["tokens"], token_whitespace(data)))
    ]
    spans = layered_spans(data)
    if spans is not None:
        task["spans"] = [
            dict(_span(s.start_char, s.end_char, s.start_token, s.end_token, s.label), **{LAYERS_KEY: list(s.layers)})
            for s in spans
        ]
    links = export_links(data, coref_label)
    if links is not None:
        task["relations"] = [
            {
                # Prodigy's relations UI points at the last token of each span.
                "head": link.head["end_token"] - 1,
                "child": link.tail["end_token"] - 1,
                "head_span": _span_of(link.head),
                "child_span": _span_of(link.tail),
                "label": link.label,
            }
            for link in links
        ]
    if "id" in data:
        task["meta"] = {"id": data["id"]}
    return task


def prodigy_line(line: str, *, coref_label: str = DEFAULT_COREF_LABEL) -> str:
    """An ``annotate`` JSONL line (``--output-format doc``) as a Prodigy JSONL line."""
    return dumps_line(to_prodigy(json.loads(line), coref_label=coref_label))


def prodigy_jsonl(tasks: Sequence[Json]) -> bytes:
    """Prodigy tasks as a JSONL file (what ``prodigy db-in`` and the recipes' source read)."""
    return "".join(dumps_line(task) for task in tasks).encode("utf8")


def is_prodigy_line(obj: Dict[str, Any]) -> bool:
    """Whether an output line was written by ``to_prodigy`` (its tokens have ``ws``)."""
    tokens = obj.get("tokens")
    return bool(tokens) and isinstance(tokens[0], dict) and "ws" in tokens[0]


def _span(start: int, end: int, token_start: int, token_end: int, label: Optional[str]) -> Json:
    # Prodigy's token_end is inclusive.
    return {"start": start, "end": end, "token_start": token_start, "token_end": token_end - 1, "label": label or ""}


def _span_of(item: Json) -> Json:
    return _span(item["start_char"], item["end_char"], item["start_token"], item["end_token"], item.get("label"))
