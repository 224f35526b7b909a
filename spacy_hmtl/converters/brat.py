"""brat standoff -> .spacy: one Doc per ``<name>.txt`` + ``<name>.ann`` pair of a
directory, with entities, mentions, relations and coreference.

``.ann`` lines (tab-separated; brat's standoff format):

* ``T1<TAB>Label START END<TAB>text``: a text-bound annotation (a span, character
  offsets into the .txt, end exclusive). A discontinuous one (``START END;START END``)
  cannot be a span of the heads: it is dropped and counted, with every link to it.
* ``R1<TAB>Label Arg1:T1 Arg2:T2``: a relation (Arg1 -> Arg2), or a coreference link
  when its label is one of ``coref_labels``.
* ``*<TAB>Label T1 T2 ...``: an equivalence; a coreference cluster when its label is one
  of ``coref_labels``, else skipped and counted.
* ``COREF<TAB>T1<TAB>cluster-id`` (LitBank's coreference lines, the label being one of
  ``coref_labels``): T1 is a mention of the cluster named cluster-id.
* ``A1<TAB>hmtl_layer T1 VALUE``: the layers of span T1, VALUE a layer tag of
  ``tool_layers.LAYER_TAGS`` (entities, mentions, both, or arguments: in no layer, only
  the end of a relation); what ``spacy_hmtl.exporters.brat`` writes. A span without it
  goes to the layers ``span_layer`` says.
* E (events), other A/M (attributes), N (normalizations) and ``#`` (notes) lines are
  skipped and counted.

The text is tokenized with spaCy's tokenizer for ``lang``; spans that end inside a token
are expanded to whole tokens (counted). Spans and relations go to the layers as in
``tool_layers`` (``span_layer``, ``layers``).
"""
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.tokens import Doc

from .common import (
    ConversionError,
    ConversionSummary,
    Location,
    PathLike,
    convert_to_file,
    note,
    read_text,
    split_lines,
)
from .tool_layers import DEFAULT_COREF_LABELS, LAYER_TAGS, Link, ToolDoc, ToolSpan, finish_doc, gold_docs
from .tool_layers import token_offsets

# Line kinds that carry nothing the heads learn from: skipped, counted by name.
SKIPPED_KINDS = {"E": "events", "A": "attributes", "M": "attributes", "N": "normalizations", "#": "notes"}
# The attribute that gives a span its layers (``A1<TAB>hmtl_layer T1 mentions``).
LAYER_ATTRIBUTE = "hmtl_layer"

# (id, label, fragments as (start, end) character offsets, text)
TextBound = Tuple[str, str, List[Tuple[int, int]], str]


def parse_text_bound(line: str, loc: Location, text: str) -> TextBound:
    """One ``T`` line, its offsets checked against the .txt (also used by the LitBank
    reader for its entity files).

    RAISES ConversionError: malformed line, offsets out of range, or a span text that is
    not the .txt's.
    """
    fields = line.split("\t")
    if len(fields) != 3:
        raise loc.error(f"a brat entity line has 3 tab-separated fields, found {len(fields)}")
    tid, type_and_offsets, span_text = fields
    label, _, offsets = type_and_offsets.partition(" ")
    fragments = []
    for fragment in offsets.split(";"):
        parts = fragment.split(" ")
        try:
            start, end = (int(v) for v in parts)
        except ValueError:
            raise loc.error(f"{tid}: expected 'TYPE START END[;START END...]', got {type_and_offsets!r}") from None
        if not 0 <= start < end <= len(text):
            raise loc.error(
                f"entity {tid} [{start}, {end}): character offsets out of range or end < start "
                f"(text has {len(text)} characters)"
            )
        fragments.append((start, end))
    # brat writes the fragments' texts joined by a space.
    expected = " ".join(text[s:e] for s, e in fragments)
    if expected != span_text:
        raise loc.error(f"entity {tid} {offsets}: span text {span_text!r} does not match the .txt ({expected!r})")
    return tid, label, fragments, span_text


def read_brat(
    directory: PathLike,
    *,
    lang: str = "en",
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per .txt file of a brat directory (its .ann beside it), sorted by name.

    lang: the spaCy language whose tokenizer splits the texts (use the pipeline's).
    span_layer, layers, coref_labels: as for ``read_prodigy``.
    RAISES ConversionError: malformed input, naming the file, line and problem.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ConversionError(root, "not a directory (brat keeps a .txt and a .ann per document)")
    texts = sorted(root.glob("*.txt"))
    if not texts:
        raise ConversionError(root, "no .txt files (brat keeps a .txt and a .ann per document)")
    nlp = spacy.blank(lang)
    tool_docs = [_read_pair(path, path.with_suffix(".ann"), nlp.tokenizer, coref_labels, summary) for path in texts]
    yield from gold_docs(tool_docs, layers, span_layer, coref_labels, summary)


def convert_brat(
    input_path: PathLike,
    output_path: PathLike,
    *,
    lang: str = "en",
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert a brat directory to a .spacy file (written atomically); the options are
    ``read_brat``'s. output_path: a .spacy file, or an existing directory (then
    <input directory name>.spacy in it)."""
    return convert_to_file(
        lambda summary: read_brat(
            input_path, lang=lang, span_layer=span_layer, layers=layers, coref_labels=coref_labels, summary=summary
        ),
        input_path,
        output_path,
        desc=f"brat {Path(input_path).name}",
        show_progress=show_progress,
        overwrite=overwrite,
    )


def _read_pair(
    txt_path: Path, ann_path: Path, tokenizer, coref_labels: Sequence[str], summary: Optional[ConversionSummary]
) -> ToolDoc:
    text = read_text(txt_path)
    doc = tokenizer(text)
    finish_doc(doc, txt_path.stem)
    tool_doc = ToolDoc(doc, Location(ann_path, doc=txt_path.stem), spans=[], links=[])
    spans: Dict[str, Tuple[int, int]] = {}
    tool_spans: Dict[str, ToolSpan] = {}
    discontinuous = set()
    lines = []
    # An empty .ann is a document annotated with nothing; a missing one is an error
    # (brat creates the .ann with the .txt).
    for line_no, line in enumerate(split_lines(read_text(ann_path, allow_empty=True)), start=1):
        loc = Location(ann_path, line=line_no, doc=txt_path.stem)
        if not line.strip():
            continue
        if line.startswith("T"):
            tid, label, fragments, _ = parse_text_bound(line, loc, text)
            if tid in spans or tid in discontinuous:
                raise loc.error(f"{tid} is defined twice")
            if len(fragments) > 1:
                discontinuous.add(tid)
                note(summary, "discontinuous spans dropped")
                continue
            what = f"entity {tid}"
            start, end = token_offsets(doc, fragments[0][0], fragments[0][1], loc, what, summary, kind="spans")
            spans[tid] = (start, end)
            tool_spans[tid] = ToolSpan(start, end, label)
            tool_doc.spans.append(tool_spans[tid])
        else:
            lines.append((loc, line))
    clusters: Dict[str, List[Tuple[int, int]]] = {}
    for loc, line in lines:
        kind = line[0]
        fields = line.split("\t")
        if kind in "AM" and len(fields) >= 2 and fields[1].startswith(LAYER_ATTRIBUTE + " "):
            _set_layers(fields[1], tool_spans, discontinuous, loc)
        elif kind in SKIPPED_KINDS:
            note(summary, f"{SKIPPED_KINDS[kind]} ({kind} lines) skipped")
        elif kind == "R":
            tool_doc.links.extend(_relation(fields, spans, discontinuous, loc, summary))
        elif kind == "*":
            tool_doc.links.extend(_equivalence(fields, spans, discontinuous, coref_labels, loc, summary))
        elif fields[0] in coref_labels and len(fields) == 3:
            mention = _argument(fields[1], spans, discontinuous, loc, summary)
            if mention is not None:
                clusters.setdefault(fields[2], []).append(mention)
        else:
            raise loc.error(f"unknown annotation line {line[:40]!r} (expected T, R, E, A, M, N, * or # lines)")
    for mentions in clusters.values():
        chain = list(zip(mentions, mentions[1:])) or [(mentions[0], mentions[0])]
        tool_doc.links.extend((a[0], a[1], b[0], b[1], coref_labels[0]) for a, b in chain)
    return tool_doc


def _relation(
    fields: List[str],
    spans: Dict[str, Tuple[int, int]],
    discontinuous: set,
    loc: Location,
    summary: Optional[ConversionSummary],
) -> List[Link]:
    """``R1<TAB>Label Arg1:T1 Arg2:T2`` as a link (none when an argument was dropped)."""
    parts = fields[1].split(" ") if len(fields) >= 2 else []
    if len(parts) != 3 or not all(":" in p for p in parts[1:]):
        raise loc.error(f"a relation line is 'R<id><TAB>Label Arg1:T<id> Arg2:T<id>', got {fields[1:2]!r}")
    label = parts[0]
    args = [_argument(part.split(":", 1)[1], spans, discontinuous, loc, summary) for part in parts[1:]]
    if None in args:
        return []
    (hs, he), (ts, te) = args
    return [(hs, he, ts, te, label)]


def _set_layers(field: str, tool_spans: Dict[str, ToolSpan], discontinuous: set, loc: Location) -> None:
    """``hmtl_layer T1 VALUE``: give span T1 the layers of the tag VALUE."""
    parts = field.split(" ")
    if len(parts) != 3 or parts[2] not in LAYER_TAGS:
        raise loc.error(
            f"a layer attribute is 'A<id><TAB>{LAYER_ATTRIBUTE} T<id> VALUE', VALUE one of "
            f"{', '.join(LAYER_TAGS)}; got {field!r}"
        )
    tid = parts[1]
    if tid in discontinuous:
        return  # the span is dropped (and counted) already
    if tid not in tool_spans:
        raise loc.error(f"{tid} is not a text-bound annotation (T line) of this file")
    tool_spans[tid].layers = LAYER_TAGS[parts[2]]


def _equivalence(
    fields: List[str],
    spans: Dict[str, Tuple[int, int]],
    discontinuous: set,
    coref_labels: Sequence[str],
    loc: Location,
    summary: Optional[ConversionSummary],
) -> List[Link]:
    """``*<TAB>Label T1 T2 ...``: a chain of coreference links, if the label says so."""
    parts = fields[1].split(" ") if len(fields) >= 2 else []
    if len(parts) < 3:
        raise loc.error(f"an equivalence line is '*<TAB>Label T<id> T<id> ...', got {fields[1:2]!r}")
    if parts[0] not in coref_labels:
        note(summary, f"equivalences labelled {parts[0]!r} skipped (not a coreference label)")
        return []
    mentions = [m for m in (_argument(tid, spans, discontinuous, loc, summary) for tid in parts[1:]) if m is not None]
    return [(a[0], a[1], b[0], b[1], parts[0]) for a, b in zip(mentions, mentions[1:])]


def _argument(
    tid: str, spans: Dict[str, Tuple[int, int]], discontinuous: set, loc: Location, summary: Optional[ConversionSummary]
) -> Optional[Tuple[int, int]]:
    if tid in discontinuous:
        note(summary, "links to a discontinuous span dropped")
        return None
    if tid not in spans:
        raise loc.error(f"{tid} is not a text-bound annotation (T line) of this file")
    return spans[tid]

