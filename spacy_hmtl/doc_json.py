"""A Doc's layers as JSON and back: the lines ``python -m spacy_hmtl annotate`` writes.

``doc_to_json`` writes ``id`` (when given), ``text``, ``tokens`` and one field per registered
task (``spacy_hmtl.tasks``: ``entities``, ``mentions``, ``relations``, ``coref_clusters``,
and the field of any head registered beside them), each the task's ``to_json``: ``null``
when the doc is not annotated for the task, ``[]`` when it is and the layer is empty.
``doc_from_json`` reads such a line back into a Doc (the tasks that have a ``from_json``).
The render, graph and exporters read these lines; ``span_to_json`` is the shape of every span.
"""
from typing import Any, Dict, Mapping, Optional

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from .annotate_records import DocId
from .annotations import MENTIONS_KEY
from .tasks import registered_tasks

SCORE_DIGITS = 6


def span_to_json(span: Span, label: Optional[str] = None) -> Dict[str, Any]:
    """A span as character and token offsets (ends exclusive), text and label.

    label: overrides ``span.label_``; an empty label is written as ``null``.
    """
    label = span.label_ if label is None else label
    return {
        "start_char": span.start_char,
        "end_char": span.end_char,
        "start_token": span.start,
        "end_token": span.end,
        "text": span.text,
        "label": label or None,
    }


def json_score(value: Any) -> float:
    """A score as ``doc_to_json`` writes it: a float rounded to ``SCORE_DIGITS`` decimals."""
    return round(float(value), SCORE_DIGITS)


def round_scores(obj: Any, digits: int = 4) -> Any:
    """``doc_to_json`` output (or lists of it) with every ``score`` rounded to ``digits``.

    For comparing annotations made in different processes or installs: thread counts and
    BLAS builds change float summation order, so scores can differ in the last digits.
    """
    if isinstance(obj, dict):
        return {k: (round(v, digits) if k == "score" else round_scores(v, digits)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_scores(v, digits) for v in obj]
    return obj


def doc_keys(mentions_key: str = MENTIONS_KEY) -> Dict[str, str]:
    """Default Doc keys -> the keys a pipeline chose (``Task.key``): the one layer whose key
    the commands let you choose is the mentions' span group (``--mentions-key``)."""
    return {MENTIONS_KEY: mentions_key}


def doc_to_json(doc: Doc, doc_id: Optional[DocId] = None, *, mentions_key: str = MENTIONS_KEY) -> Dict[str, Any]:
    """Convert an annotated Doc to a JSON-serialisable dict.

    Keys: ``id`` (only when ``doc_id`` is given), ``text``, ``tokens`` (``text``,
    ``start``, ``end``: character offsets), then each registered task's field, in task
    order: ``entities`` (``doc.ents``), ``mentions`` (``doc.spans[mentions_key]``, with
    ``score`` when the group has ``attrs["scores"]``), ``relations`` (``head``, ``tail``,
    ``label``, ``score``; argument spans carry the label of the entity they are, if any)
    and ``coref_clusters`` (lists of spans). Every span is a ``span_to_json`` dict. A layer
    the doc is not annotated for is ``null``; an annotated layer with nothing in it is
    ``[]``. Scores are rounded to 6 decimals.
    """
    out: Dict[str, Any] = {}
    if doc_id is not None:
        out["id"] = doc_id
    out["text"] = doc.text
    out["tokens"] = [{"text": t.text, "start": t.idx, "end": t.idx + len(t.text)} for t in doc]
    keys = doc_keys(mentions_key)
    for task in registered_tasks():
        out[task.json_key] = task.to_json(doc, task.key(keys))
    return out


def doc_from_json(data: Mapping[str, Any], vocab: Vocab, *, mentions_key: str = MENTIONS_KEY) -> Doc:
    """A Doc of a ``doc_to_json`` dict: its tokens, and the layer of each registered task
    that has a ``from_json`` and a non-null field in ``data`` (the others read as missing).

    RAISES (ValueError): the tokens do not spell the text.
    """
    tokens = data["tokens"]
    words = [str(t["text"]) for t in tokens]
    # A token's trailing space: what separates it from the next (spaCy keeps longer
    # whitespace as tokens of its own, so one space at most).
    spaces = [i + 1 < len(tokens) and tokens[i + 1]["start"] > tok["end"] for i, tok in enumerate(tokens)]
    if tokens and len(data["text"]) > tokens[-1]["end"]:
        spaces[-1] = True
    doc = Doc(vocab, words=words, spaces=spaces)
    if doc.text != data["text"]:
        raise ValueError("the tokens of the record do not spell its text: not a line written by annotate?")
    keys = doc_keys(mentions_key)
    for task in registered_tasks():
        value = data.get(task.json_key)
        if task.from_json is not None and value is not None:
            task.from_json(doc, value, task.key(keys))
    return doc
