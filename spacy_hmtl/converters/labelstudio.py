"""Label Studio JSON export -> .spacy: one Doc per annotated task, with entities,
mentions, relations and coreference.

The export is a JSON array of tasks (a JSON-lines file of tasks is read too):
``{"id", "data": {"text": ...}, "annotations": [{"result": [...], "was_cancelled"}],
"predictions": [{"result": [...]}]}``. Results of ``type`` "labels" are regions:
``{"id", "from_name", "value": {"start", "end", "text", "labels": [...]}}`` with character
offsets into the text; results of ``type`` "relation" link two regions:
``{"from_id", "to_id", "direction": "right" | "left" | "bi", "labels": [...]}``.

The first annotation of a task that is not cancelled is read; cancelled and further
annotations are counted as dropped, and so are tasks without one (with
``from_predictions``, such a task's first prediction, e.g. a model's pre-annotation, is
read instead).
Regions of a control named after a layer tag of ``tool_layers.LAYER_TAGS`` ("entities",
"mentions", "both", or "arguments": in no layer, only the end of a relation) go to those
layers, the others as ``span_layer`` says; relations labelled with one of ``coref_labels``
are coreference links (see ``tool_layers``). The document key is ``data["doc_id"]`` (what
``spacy_hmtl.exporters.labelstudio`` writes), else the task's ``id``. Label Studio offsets count UTF-16 code units in the browser:
they are mapped back to characters when the region's ``text`` says so.
"""
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .common import (
    ConversionSummary,
    Location,
    PathLike,
    convert_to_file,
    expect_int,
    expect_list,
    expect_str,
    iter_jsonl,
    json_problem,
    note,
    read_text,
)
from .tool_layers import DEFAULT_COREF_LABELS, LAYER_TAGS, Link, ToolDoc, ToolSpan, finish_doc, gold_docs
from .tool_layers import token_offsets

DIRECTIONS = ("right", "left", "bi")
# The key of ``data`` holding the document key (written by spacy_hmtl.exporters.labelstudio):
# Label Studio gives imported tasks ids of its own.
DOC_ID_KEY = "doc_id"


def read_labelstudio(
    path: PathLike,
    *,
    lang: str = "en",
    text_key: str = "text",
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    from_predictions: bool = False,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per annotated task of a Label Studio JSON export.

    lang: the spaCy language whose tokenizer splits the texts (use the pipeline's).
    text_key: the key of ``data`` holding the text (``$text`` in the labeling config).
    span_layer, layers, coref_labels: as for ``read_prodigy``.
    from_predictions: read a task's first prediction when it has no annotation.
    RAISES ConversionError: malformed input, naming the file, task and problem.
    """
    nlp = spacy.blank(lang)
    tool_docs: List[ToolDoc] = []
    for loc, task in _tasks(path):
        tool_doc = _task_to_tool_doc(task, nlp.tokenizer, nlp.vocab, text_key, from_predictions, loc, summary)
        if tool_doc is not None:
            tool_docs.append(tool_doc)
    if not tool_docs:
        raise Location(path).error("no annotated task (nothing to convert)")
    yield from gold_docs(tool_docs, layers, span_layer, coref_labels, summary)


def convert_labelstudio(
    input_path: PathLike,
    output_path: PathLike,
    *,
    lang: str = "en",
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    from_predictions: bool = False,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert a Label Studio JSON export to a .spacy file (written atomically); the
    options are ``read_labelstudio``'s."""
    return convert_to_file(
        lambda summary: read_labelstudio(
            input_path,
            lang=lang,
            span_layer=span_layer,
            layers=layers,
            coref_labels=coref_labels,
            from_predictions=from_predictions,
            summary=summary,
        ),
        input_path,
        output_path,
        desc=f"labelstudio {Path(input_path).name}",
        show_progress=show_progress,
        overwrite=overwrite,
    )


def _tasks(path: PathLike) -> Iterator[Tuple[Location, Any]]:
    """Each task with its location: of a JSON array (or one task), or of JSON lines."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":
            raise Location(path, line=err.lineno).error(json_problem(err)) from None
        # More than one JSON value: a JSON-lines file of tasks.
        for index, (loc, task) in enumerate(iter_jsonl(path)):
            loc.doc = f"task {index}"
            yield loc, task
        return
    tasks = data if isinstance(data, list) else [data]
    for index, task in enumerate(tasks):
        yield Location(path, doc=f"task {index}"), task


def _task_to_tool_doc(
    task: Any,
    tokenizer: Any,
    vocab: Vocab,
    text_key: str,
    from_predictions: bool,
    loc: Location,
    summary: Optional[ConversionSummary],
) -> Optional[ToolDoc]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise loc.error("a task must be an object with a 'data' object")
    task_id = task.get("id", loc.doc.split()[-1])
    loc.doc = f"{loc.doc} (id {task_id})" if "id" in task else loc.doc
    doc_id = task["data"].get(DOC_ID_KEY)
    if isinstance(doc_id, (str, int)) and not isinstance(doc_id, bool):
        task_id = doc_id
    text = expect_str(task["data"].get(text_key), f"data[{text_key!r}]", loc)
    result = _chosen_result(task, from_predictions, loc, summary)
    if result is None:
        return None
    doc = tokenizer(text)
    if not len(doc):
        raise loc.error("the text is empty")
    finish_doc(doc, str(task_id))
    tool_doc = ToolDoc(doc, loc, spans=[], links=[])
    regions: Dict[str, List[ToolSpan]] = {}
    relations = []
    for i, item in enumerate(result):
        if not isinstance(item, dict):
            raise loc.error(f"result {i} must be an object")
        kind = item.get("type")
        if kind == "labels":
            region_id = expect_str(item.get("id"), f"result {i}: id", loc)
            regions[region_id] = _region(item, f"result {i} (id {region_id!r})", doc, loc, summary)
            tool_doc.spans.extend(regions[region_id])
        elif kind == "relation":
            relations.append((i, item))
        else:
            note(summary, f"results of type {kind!r} skipped")
    for i, item in relations:
        tool_doc.links.extend(_relation(item, f"result {i} (relation)", regions, loc, summary))
    return tool_doc


def _chosen_result(
    task: Dict[str, Any], from_predictions: bool, loc: Location, summary: Optional[ConversionSummary]
) -> Optional[list]:
    """The result list of the task's first annotation that is not cancelled (or, with
    ``from_predictions`` and no such annotation, of its first prediction)."""
    annotations = expect_list(task.get("annotations", []), "'annotations'", loc)
    usable = []
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise loc.error(f"annotation {i} must be an object")
        if annotation.get("was_cancelled"):
            note(summary, "annotations cancelled (dropped)")
        else:
            usable.append(annotation)
    if len(usable) > 1:
        note(summary, "further annotations of a task (dropped; the first is read)", len(usable) - 1)
    if not usable and from_predictions:
        usable = [p for p in expect_list(task.get("predictions", []), "'predictions'", loc) if isinstance(p, dict)]
    if not usable:
        note(summary, "tasks without an annotation (dropped)")
        return None
    return expect_list(usable[0].get("result"), "'result'", loc)


def _region(
    item: Dict[str, Any], what: str, doc: Doc, loc: Location, summary: Optional[ConversionSummary]
) -> List[ToolSpan]:
    """A labelled text region: one span per label, in token offsets."""
    value = item.get("value")
    if not isinstance(value, dict):
        raise loc.error(f"{what}: 'value' must be an object")
    start = expect_int(value.get("start"), f"{what}: start", loc)
    end = expect_int(value.get("end"), f"{what}: end", loc)
    start, end = _characters(doc.text, start, end, value.get("text"), what, loc, summary)
    labels = expect_list(value.get("labels"), f"{what}: labels", loc)
    if not labels:
        raise loc.error(f"{what}: the region has no label")
    token_start, token_end = token_offsets(doc, start, end, loc, what, summary, kind="regions")
    control = item.get("from_name")
    layers = LAYER_TAGS.get(control) if isinstance(control, str) else None
    return [ToolSpan(token_start, token_end, expect_str(label, f"{what}: label", loc), layers) for label in labels]


def _characters(
    text: str, start: int, end: int, region_text: Any, what: str, loc: Location, summary: Optional[ConversionSummary]
) -> Tuple[int, int]:
    """Label Studio's offsets as character offsets: they are UTF-16 code units, which
    differ after a character outside the Basic Multilingual Plane (an emoji)."""
    if region_text is None or text[start:end] == region_text:
        return start, end
    index = {unit: i for i, unit in enumerate(utf16_offsets(text))}
    if start in index and end in index and text[index[start] : index[end]] == region_text:
        note(summary, "regions with UTF-16 offsets (mapped to characters)")
        return index[start], index[end]
    raise loc.error(f"{what}: text {region_text!r} does not match the task's text at [{start}, {end}) ({text[start:end]!r})")


def utf16_offsets(text: str) -> List[int]:
    """The UTF-16 offset of each character offset of ``text`` (0 to ``len(text)``), as
    Label Studio counts them."""
    units = [0]
    for char in text:
        # A character outside the Basic Multilingual Plane is a surrogate pair.
        units.append(units[-1] + (2 if ord(char) > 0xFFFF else 1))
    return units


def _relation(
    item: Dict[str, Any],
    what: str,
    regions: Dict[str, List[ToolSpan]],
    loc: Location,
    summary: Optional[ConversionSummary],
) -> List[Link]:
    """The links of a relation result: one per label, both ways for direction "bi"."""
    args = []
    for key in ("from_id", "to_id"):
        region_id = expect_str(item.get(key), f"{what}: {key}", loc)
        if region_id not in regions:
            raise loc.error(f"{what}: {key} {region_id!r} is not a labelled region of the annotation")
        args.append((regions[region_id][0].start, regions[region_id][0].end))
    direction = item.get("direction", "right")
    if direction not in DIRECTIONS:
        raise loc.error(f"{what}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    labels = expect_list(item.get("labels", []), f"{what}: labels", loc)
    if not labels:
        note(summary, "relations without a label (dropped)")
        return []
    head, tail = args if direction != "left" else args[::-1]
    pairs = [(head, tail), (tail, head)] if direction == "bi" else [(head, tail)]
    return [(h[0], h[1], t[0], t[1], expect_str(label, f"{what}: label", loc)) for label in labels for h, t in pairs]

