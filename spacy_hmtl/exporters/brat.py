"""Documents' layers (``doc_to_json``'s dicts) -> a brat collection: ``NAME.txt`` and
``NAME.ann`` (standoff) per document and an ``annotation.conf`` declaring the labels, to
correct in brat and read back with ``convert brat``.

The ``.ann`` of a document:

* ``T1<TAB>LABEL START END<TAB>text`` per span (character offsets), each with
  ``A1<TAB>hmtl_layer T1 TAG``, TAG its layers' tag (``tool_layers.LAYER_TAGS``:
  entities, mentions, both, or arguments for a relation argument or coreference mention
  that is neither an entity nor a mention), so that reading it back puts it where it came
  from. A span over a line break is written as brat writes one, in fragments
  (``START END;START END``), which ``convert brat`` drops as discontinuous;
* ``R1<TAB>LABEL Arg1:T1 Arg2:T2`` per relation, and per link of a coreference chain
  (labelled with the coreference label; a singleton cluster links its mention to
  itself).

NAME is the document's id made safe for a file name (unique in the collection).
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..converters.brat import LAYER_ATTRIBUTE
from ..converters.tool_layers import LAYER_TAGS, layer_tag
from .common import DEFAULT_COREF_LABEL, UNLABELLED, ExportError, Json, linked_spans

CONFIG_NAME = "annotation.conf"
# Characters a file name keeps; any other run becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Whitespace a .ann line cannot hold inside a span's text (brat splits spans there).
_LINE_BREAKS = re.compile(r"[^\S ]+")


@dataclass
class BratDocument:
    """One document of a collection: its id (None: none given), text, ``.ann`` text and
    the labels it uses (for ``annotation.conf``)."""

    doc_id: Optional[str]
    text: str
    ann: str
    entity_labels: Set[str]
    relation_labels: Set[str]


def to_brat(data: Json, *, coref_label: str = DEFAULT_COREF_LABEL) -> BratDocument:
    """The brat document of one document's layers.

    data: ``spacy_hmtl.doc_json.doc_to_json``'s dict (an ``annotate`` line).
    coref_label: the relation label of coreference links.
    RAISES ExportError: a relation labelled ``coref_label``, or a label with whitespace
        (brat separates fields with spaces).
    """
    text = data["text"]
    spans, links = linked_spans(data, coref_label)
    lines: List[str] = []
    entity_labels: Set[str] = set()
    for i, span in enumerate(spans, start=1):
        label = _label(span.label or UNLABELLED, "span")
        entity_labels.add(label)
        fragments = _fragments(text, span.start_char, span.end_char)
        offsets = ";".join(f"{start} {end}" for start, end in fragments)
        # brat's text of a fragmented span: the fragments' texts joined by a space.
        span_text = " ".join(text[start:end] for start, end in fragments)
        lines.append(f"T{i}\t{label} {offsets}\t{span_text}")
        lines.append(f"A{i}\t{LAYER_ATTRIBUTE} T{i} {layer_tag(span.layers)}")
    relation_labels: Set[str] = set()
    for j, (head, tail, label) in enumerate(links, start=1):
        relation_labels.add(_label(label, "relation"))
        lines.append(f"R{j}\t{label} Arg1:T{head + 1} Arg2:T{tail + 1}")
    doc_id = None if data.get("id") is None else str(data["id"])
    ann = "".join(line + "\n" for line in lines)
    return BratDocument(doc_id, text, ann, entity_labels, relation_labels)


def brat_collection(docs: Sequence[BratDocument]) -> Dict[str, bytes]:
    """The files of a brat collection: file name -> contents (UTF-8)."""
    files: Dict[str, bytes] = {}
    for stem, doc in zip(file_stems([doc.doc_id for doc in docs]), docs):
        files[f"{stem}.txt"] = doc.text.encode("utf8")
        files[f"{stem}.ann"] = doc.ann.encode("utf8")
    files[CONFIG_NAME] = annotation_conf(
        set().union(*(doc.entity_labels for doc in docs)), set().union(*(doc.relation_labels for doc in docs))
    ).encode("utf8")
    return files


def annotation_conf(entity_labels: Set[str], relation_labels: Set[str]) -> str:
    """brat's ``annotation.conf`` declaring the labels (any relation between any two
    spans) and the layer attribute."""
    lines = ["# Written by `python -m spacy_hmtl export brat`: the labels of the exported documents.", "[entities]"]
    lines += sorted(entity_labels)
    lines.append("[relations]")
    lines += [f"{label} Arg1:<ENTITY>, Arg2:<ENTITY>" for label in sorted(relation_labels)]
    lines += ["[events]", "[attributes]", f"{LAYER_ATTRIBUTE} Arg:<ENTITY>, Value:{'|'.join(LAYER_TAGS)}"]
    return "".join(line + "\n" for line in lines)


def file_stems(doc_ids: Sequence[Optional[str]]) -> List[str]:
    """A file name stem per document, unique in the collection: the id with characters
    other than letters, digits, ``.``, ``_`` and ``-`` replaced (``doc-N`` without an id);
    a stem taken already gets ``-2``, ``-3``... ``convert brat`` keys a document by it."""
    stems: List[str] = []
    taken: Set[str] = set()
    for n, doc_id in enumerate(doc_ids, start=1):
        # A leading dot would hide the file: brat does not list hidden files.
        base = _UNSAFE.sub("_", doc_id).lstrip(".") if doc_id is not None else ""
        base = base or f"doc-{n}"
        stem, k = base, 1
        while stem.lower() in taken:  # case-insensitive file systems
            k += 1
            stem = f"{base}-{k}"
        taken.add(stem.lower())
        stems.append(stem)
    return stems


def _label(label: str, what: str) -> str:
    if not label or any(char.isspace() for char in label):
        raise ExportError(f"{what} label {label!r} cannot be written in brat (a label is one word: no whitespace)")
    return label


def _fragments(text: str, start: int, end: int) -> List[Tuple[int, int]]:
    """The span [start, end) cut at line breaks and tabs (a .ann line cannot hold them),
    each piece without the spaces at its ends."""
    fragments = []
    position = start
    for match in _LINE_BREAKS.finditer(text, start, end):
        fragments.append((position, match.start()))
        position = match.end()
    fragments.append((position, end))
    trimmed = []
    for a, b in fragments:
        while a < b and text[a] == " ":
            a += 1
        while b > a and text[b - 1] == " ":
            b -= 1
        if a < b:
            trimmed.append((a, b))
    return trimmed
