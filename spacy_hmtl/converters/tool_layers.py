"""What the readers of annotation-tool exports (Prodigy, Label Studio, brat) share: the
layers a corpus is read into, spans from character offsets, coreference clusters from
links, and putting a document's spans and links on the heads' gold layers.

A tool has two kinds of annotation: labelled spans and labelled links between two spans.
They map to the four layers of ``spacy_hmtl.annotations``:

* spans -> entities (``doc.ents``, the overlapping ones in the overflow key) and/or
  mentions (``doc.spans["mentions"]``, nesting allowed), as ``span_layer`` says
  ("both", "entities" or "mentions"); a span may name its own layers (the exporters of
  ``spacy_hmtl.exporters`` write them), which overrides ``span_layer``.
* links whose label is one of ``coref_labels`` -> coreference clusters: the connected
  components of those links (a link from a span to itself is a singleton cluster);
* every other link -> a relation record (head -> tail).

A document that has no spans (no links) at all *in the source format's sense of
missing* (Prodigy: no ``spans``/``relations`` key) is not annotated for those layers;
an empty list is annotated with nothing found. Which layers a corpus has is given by
``layers``, or (``None``) found from the corpus: a layer is on when one accepted
document has an annotation of it, so a ``rel.manual`` export does not claim to be
annotated for coreference, nor a ``coref.manual`` export for relations.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from spacy.pipeline import Sentencizer
from spacy.tokens import Doc

from ..annotations import DOC_KEY_ATTR, MENTIONS_KEY, set_coref_clusters, set_relation_records
from .common import ConversionSummary, LabeledSpan, Location, dedupe, note, set_entities, set_spans, strip_span

LAYERS = ("entities", "mentions", "relations", "coref")
SPAN_LAYERS: Dict[str, Tuple[str, ...]] = {
    "both": ("entities", "mentions"),
    "entities": ("entities",),
    "mentions": ("mentions",),
}
# A span's own layers, by name (Label Studio: the name of the region's control; brat: the
# value of the ``hmtl_layer`` attribute): the values of ``span_layer``, and "arguments" for
# a span in no layer, which only ends links (an exporter writes a relation argument or a
# coreference mention that is neither an entity nor a mention so).
LAYER_TAGS: Dict[str, Tuple[str, ...]] = dict(SPAN_LAYERS, arguments=())
DEFAULT_COREF_LABELS = ("COREF",)
# (head_start, head_end, tail_start, tail_end, label), token offsets, ends exclusive.
Link = Tuple[int, int, int, int, str]


@dataclass
class ToolSpan:
    """A labelled span in token offsets (end exclusive); ``layers``: the layers the span
    names itself (None: the reader's ``span_layer``)."""

    start: int
    end: int
    label: str
    layers: Optional[Tuple[str, ...]] = None


@dataclass
class ToolDoc:
    """One document read from a tool: the Doc (tokens only) and its spans and links
    (None: the source does not annotate them for this document)."""

    doc: Doc
    loc: Location
    spans: Optional[List[ToolSpan]] = None
    links: Optional[List[Link]] = None
    # Filled by the reader when a record is read, for the summary (e.g. dropped items).
    notes: Dict[str, int] = field(default_factory=dict)


def parse_layers(value: Union[None, str, Sequence[str]]) -> Optional[Tuple[str, ...]]:
    """The ``layers`` option: None or "auto" (found from the corpus), or layer names
    (a comma-separated string or a sequence) out of ``LAYERS``.

    RAISES ValueError: an unknown layer name.
    """
    if value is None or value == "auto":
        return None
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [name for name in names if name not in LAYERS]
    if unknown or not names:
        raise ValueError(f"unknown layer(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(LAYERS)}")
    return tuple(name for name in LAYERS if name in names)


def layer_tag(layers: Sequence[str]) -> str:
    """The name in ``LAYER_TAGS`` of a set of span layers (the inverse of ``LAYER_TAGS``).

    RAISES KeyError: a layer other than "entities" and "mentions".
    """
    wanted = set(layers)
    for tag, names in LAYER_TAGS.items():
        if set(names) == wanted:
            return tag
    raise KeyError(f"no layer tag for {sorted(wanted)}")


def check_span_layer(span_layer: str) -> Tuple[str, ...]:
    """The layers a span without its own goes to. RAISES ValueError: unknown value."""
    if span_layer not in SPAN_LAYERS:
        raise ValueError(f"span_layer must be one of {', '.join(SPAN_LAYERS)}, got {span_layer!r}")
    return SPAN_LAYERS[span_layer]


def detect_layers(docs: Iterable[ToolDoc], span_layer: str, coref_labels: Sequence[str]) -> Tuple[str, ...]:
    """The layers a corpus is annotated for: those one of its documents has an
    annotation of (a span, a relation link, a coreference link)."""
    default = check_span_layer(span_layer)
    found: Set[str] = set()
    for tool_doc in docs:
        for span in tool_doc.spans or ():
            found.update(span.layers if span.layers is not None else default)
        for link in tool_doc.links or ():
            found.add("coref" if link[4] in coref_labels else "relations")
    return tuple(name for name in LAYERS if name in found)


def resolve_layers(
    docs: Sequence[ToolDoc],
    layers: Union[None, str, Sequence[str]],
    span_layer: str,
    coref_labels: Sequence[str],
    summary: Optional[ConversionSummary],
) -> Tuple[str, ...]:
    """``layers`` as given, or found from the corpus (then noted in the summary, so
    that a user sees which layers were read, and which not)."""
    chosen = parse_layers(layers)
    check_span_layer(span_layer)
    if chosen is not None:
        return chosen
    chosen = detect_layers(docs, span_layer, coref_labels)
    if summary is not None:
        for name in LAYERS:
            if name not in chosen:
                summary.note(f"layer {name!r} not read (no document annotates it; see --layers)")
    return chosen


def link_clusters(links: Iterable[Tuple[Tuple[int, int], Tuple[int, int]]]) -> List[List[Tuple[int, int]]]:
    """Coreference clusters: the connected components of mention-to-mention links."""
    parent: Dict[Tuple[int, int], Tuple[int, int]] = {}

    def find(mention: Tuple[int, int]) -> Tuple[int, int]:
        parent.setdefault(mention, mention)
        while parent[mention] != mention:
            parent[mention] = parent[parent[mention]]  # path halving keeps chains short
            mention = parent[mention]
        return mention

    for a, b in links:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            # The earlier mention is the root: the result does not depend on link order.
            parent[max(root_a, root_b)] = min(root_a, root_b)
    clusters: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for mention in sorted(parent):
        clusters.setdefault(find(mention), []).append(mention)
    return sorted(clusters.values())


def gold_docs(
    tool_docs: Sequence[ToolDoc],
    layers: Union[None, str, Sequence[str]],
    span_layer: str,
    coref_labels: Sequence[str],
    summary: Optional[ConversionSummary],
) -> Iterator[Doc]:
    """The documents of a whole export with their gold layers: the layers are chosen over all
    documents (``resolve_layers``), then put on each (``apply_layers``)."""
    chosen = resolve_layers(tool_docs, layers, span_layer, coref_labels, summary)
    for tool_doc in tool_docs:
        yield apply_layers(tool_doc, chosen, span_layer, coref_labels, summary)


def apply_layers(
    tool_doc: ToolDoc,
    layers: Sequence[str],
    span_layer: str,
    coref_labels: Sequence[str],
    summary: Optional[ConversionSummary],
) -> Doc:
    """Put a document's spans and links on the gold layers in ``layers``; the others
    stay not annotated. Exact duplicates and links of a span to itself (relations
    only) are dropped and counted in the summary."""
    doc = tool_doc.doc
    default = check_span_layer(span_layer)
    if tool_doc.spans is not None:
        by_layer: Dict[str, List[LabeledSpan]] = {"entities": [], "mentions": []}
        for span in tool_doc.spans:
            for name in span.layers if span.layers is not None else default:
                by_layer[name].append((span.start, span.end, span.label))
        if "entities" in layers:
            entities, dropped = dedupe(by_layer["entities"])
            note(summary, "duplicate entities dropped", dropped)
            set_entities(doc, entities)
        if "mentions" in layers:
            mentions, dropped = dedupe(by_layer["mentions"])
            note(summary, "duplicate mentions dropped", dropped)
            set_spans(doc, MENTIONS_KEY, mentions)
    if tool_doc.links is not None:
        relations = [link for link in tool_doc.links if link[4] not in coref_labels]
        if "relations" in layers:
            kept = [list(link) + [1.0] for link in relations if link[:2] != link[2:4]]
            note(summary, "relations from a span to itself dropped", len(relations) - len(kept))
            kept, dropped = dedupe(kept)
            note(summary, "duplicate relations dropped", dropped)
            set_relation_records(doc, kept)
        if "coref" in layers:
            coref = [((hs, he), (ts, te)) for hs, he, ts, te, label in tool_doc.links if label in coref_labels]
            set_coref_clusters(doc, link_clusters(coref), span_groups=False)
    for what, count in tool_doc.notes.items():
        note(summary, what, count)
    return doc


def finish_doc(doc: Doc, doc_key: str) -> Doc:
    """Give a tool's doc its key and sentence boundaries.

    Tools do not mark sentences; the rule-based sentencizer gives the summary its
    sentence counts and the doc the boundaries the other converters' docs have.
    Relations and coreference links across sentences are kept as they are.
    """
    doc._.set(DOC_KEY_ATTR, doc_key)
    if len(doc):
        Sentencizer()(doc)
    return doc


def token_offsets(
    doc: Doc,
    start_char: int,
    end_char: int,
    loc: Location,
    what: str,
    summary: Optional[ConversionSummary],
    kind: str,
) -> Tuple[int, int]:
    """Character offsets of a span (end exclusive) -> token offsets in ``doc``.

    Whitespace around the span is trimmed and a span that ends inside a token is
    expanded to whole tokens (both counted in the summary as "<kind> ..."): the heads
    predict whole tokens.
    RAISES ConversionError: offsets out of range or reversed, or only whitespace.
    """
    text = doc.text
    if not 0 <= start_char < end_char <= len(text):
        raise loc.error(f"{what}: character offsets out of range or end <= start (the text has {len(text)} characters)")
    start_char, end_char = strip_span(text, start_char, end_char, loc, what, summary, kind=kind)
    span = doc.char_span(start_char, end_char)
    if span is None:
        span = doc.char_span(start_char, end_char, alignment_mode="expand")
        note(summary, f"{kind} expanded to token boundaries", 1)
    return span.start, span.end

