"""What the exporters share: they all start from ``doc_to_json``'s dict of a document
(what ``annotate`` writes per line), so that a pipeline's predictions, a converted corpus
and an annotate output are exported the same way.

The layers an exporter writes:

* spans: the union of ``entities`` and ``mentions``; a span in both layers is written
  once, with the layers it is in (``LayeredSpan.layers``), so that importing it back
  puts it where it came from;
* links: relation records as they are, and each coreference cluster as a chain of
  links (first mention -> second -> ...) labelled with the coreference label; a
  singleton cluster is a link of its mention to itself (the readers turn such a link
  back into a singleton).

Label Studio and brat link two *spans* of the document, not two offsets: ``linked_spans``
gives the spans with the ends of links that are neither an entity nor a mention added
(in no layer), and the links as positions in that list.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..converters.tool_layers import DEFAULT_COREF_LABELS

DEFAULT_COREF_LABEL = DEFAULT_COREF_LABELS[0]
# The label of a span that has none (a coreference mention that is no entity), for the
# tools that require one (Label Studio, brat).
UNLABELLED = "SPAN"
Json = Dict[str, Any]
# (head, tail, label): the positions of a link's spans in ``linked_spans``'s list.
IndexedLink = Tuple[int, int, str]


class ExportError(ValueError):
    """A document that cannot be written in the format (the message says why)."""


@dataclass
class LayeredSpan:
    """A span of ``doc_to_json`` (character and token offsets, ends exclusive) with the
    layers it is in ("entities" and/or "mentions")."""

    start_char: int
    end_char: int
    start_token: int
    end_token: int
    label: str
    text: str
    layers: Tuple[str, ...]

    @property
    def key(self) -> Tuple[int, int, str]:
        return (self.start_token, self.end_token, self.label)


@dataclass
class ExportLink:
    """A labelled link between two spans (``span_to_json`` dicts)."""

    head: Json
    tail: Json
    label: str
    is_coref: bool


def layered_spans(data: Json) -> Optional[List[LayeredSpan]]:
    """Entities and mentions as one list, in document order; None when the document is
    annotated for neither."""
    if data.get("entities") is None and data.get("mentions") is None:
        return None
    spans: Dict[Tuple[int, int, str], LayeredSpan] = {}
    for layer in ("entities", "mentions"):
        for item in data.get(layer) or []:
            label = item.get("label") or ""
            key = (item["start_token"], item["end_token"], label)
            if key in spans:
                if layer not in spans[key].layers:
                    spans[key].layers += (layer,)
                continue
            spans[key] = LayeredSpan(
                item["start_char"], item["end_char"], item["start_token"], item["end_token"], label, item["text"], (layer,)
            )
    return [spans[key] for key in sorted(spans)]


def export_links(data: Json, coref_label: str = DEFAULT_COREF_LABEL) -> Optional[List[ExportLink]]:
    """Relations and coreference chains as links; None when the document is annotated
    for neither.

    RAISES ExportError: a relation labelled ``coref_label`` (it would read back as
    coreference).
    """
    relations, clusters = data.get("relations"), data.get("coref_clusters")
    if relations is None and clusters is None:
        return None
    links = []
    for rel in relations or []:
        if rel["label"] == coref_label:
            raise ExportError(
                f"a relation is labelled {coref_label!r}, the coreference label; choose another coreference label"
            )
        links.append(ExportLink(rel["head"], rel["tail"], rel["label"], False))
    for cluster in clusters or []:
        chain = list(zip(cluster, cluster[1:])) or [(cluster[0], cluster[0])]
        links.extend(ExportLink(a, b, coref_label, True) for a, b in chain)
    return links


def linked_spans(data: Json, coref_label: str = DEFAULT_COREF_LABEL) -> Tuple[List[LayeredSpan], List[IndexedLink]]:
    """The spans and links to write for a tool whose links join spans (Label Studio, brat).

    RETURNS: the spans (``layered_spans``, then each link end that is none of them, with
        no layer: ``layers == ()``) and the links, as positions in that list. A layer the
        document is not annotated for adds nothing.
    RAISES ExportError: a relation labelled ``coref_label``.
    """
    spans = layered_spans(data) or []
    # A link end is the first span with its offsets: the readers link offsets, not labels.
    by_offsets: Dict[Tuple[int, int], int] = {}
    for i, span in enumerate(spans):
        by_offsets.setdefault((span.start_token, span.end_token), i)

    def position(item: Json) -> int:
        offsets = (item["start_token"], item["end_token"])
        if offsets not in by_offsets:
            by_offsets[offsets] = len(spans)
            spans.append(
                LayeredSpan(item["start_char"], item["end_char"], *offsets, item.get("label") or "", item["text"], ())
            )
        return by_offsets[offsets]

    links = [(position(link.head), position(link.tail), link.label) for link in export_links(data, coref_label) or []]
    return spans, links


def token_whitespace(data: Json) -> List[bool]:
    """Whether each token of ``doc_to_json``'s ``tokens`` is followed by a space
    (spaCy's ``whitespace_``: other whitespace is a token of its own)."""
    tokens = data["tokens"]
    ends = [t["start"] for t in tokens[1:]] + [len(data["text"])]
    return [end > token["end"] for token, end in zip(tokens, ends)]
