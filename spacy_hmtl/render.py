"""HTML rendering of HMTL's four layers: entities, mentions, relations, coreference.

``render(doc_or_docs)`` returns self-contained HTML (inline styles and SVG; no external
CSS, scripts or fonts), one block per document with a section per layer:

* entities: displaCy's ``ent`` style;
* mentions: displaCy's ``span`` style (nested and overlapping mentions stack);
* relations: an SVG of the tokens with an arrow from the head argument to the tail
  argument of each relation, labelled, the arguments underlined in their entity's colour
  (hover an arrow for its score). A row only breaks between tokens that no relation spans;
* coreference: displaCy's ``span`` style, one colour and label (``C1``, ``C2``, ...) per
  cluster, plus a legend;
* entity graph: the document's entities (canonical name, type) and the relations between
  them as an SVG drawing (``spacy_hmtl.graph``; a record's ``"graph"`` field when it has
  one, else built from its layers); shown when any of the four layers is annotated.

Both ``Doc`` objects and the JSON objects written by ``python -m spacy_hmtl annotate``
(``doc_to_json``) are accepted, so an annotated JSONL file can be rendered without the
model (``render_jsonl``; the ``render`` command is ``spacy_hmtl.render_command``). A layer
the document is not annotated for is left out; an annotated but empty layer says "none".
"""
import html
import json
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .annotations import MENTIONS_KEY
from .batch_annotator import AnnotateError, RecordError, doc_to_json
from .safe_io import xml_safe

LAYERS = ("entities", "mentions", "relations", "coref", "graph")
LAYER_TITLES = {
    "entities": "Entities",
    "mentions": "Mentions",
    "relations": "Relations",
    "coref": "Coreference",
    "graph": "Entity graph",
}

# Relation SVG geometry (px). Monospace text, so token widths are known without a browser.
FONT_SIZE = 15
CHAR_WIDTH = 0.61 * FONT_SIZE  # advance of common monospace fonts (0.60-0.61 em)
LABEL_FONT_SIZE = 11
LABEL_CHAR_WIDTH = 0.62 * LABEL_FONT_SIZE
LEVEL_HEIGHT = 22
MARGIN = 12
MAX_ROW_WIDTH = 1000

PAGE_CSS = """
body { margin: 0; padding: 1.5em; background: #fff; color: #222;
       font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
.hmtl-doc { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1.2em 1em; margin-bottom: 1.5em; }
.hmtl-doc > h2 { font-size: 1.05em; color: #555; margin: 0.6em 0; }
.hmtl-layer > h3 { font-size: 0.85em; text-transform: uppercase; letter-spacing: 0.06em; color: #777;
                   margin: 1em 0 0.3em; }
.hmtl-none { color: #999; font-style: italic; font-size: 0.9em; }
.hmtl-scroll { overflow-x: auto; }
.hmtl-legend { font-size: 0.85em; margin-top: 0.4em; }
.hmtl-legend span.hmtl-swatch { display: inline-block; padding: 0 0.4em; border-radius: 3px; margin-right: 0.3em;
                                font-weight: bold; }
"""

TPL_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{content}
</body>
</html>
"""

DocLike = Union[Doc, Dict[str, Any]]


# --- colours ------------------------------------------------------------------------


def label_color(label: str, lightness: int = 78) -> str:
    """A stable colour per label (the same in every section and every run)."""
    hue = zlib.crc32(label.encode("utf8")) % 360
    return f"hsl({hue}, 70%, {lightness}%)"


def cluster_color(index: int, lightness: int = 75) -> str:
    """Well separated colours for clusters 0, 1, 2, ... (golden-angle hues)."""
    hue = (index * 137.508 + 200) % 360
    return f"hsl({hue:.0f}, 75%, {lightness}%)"


# --- entry points ---------------------------------------------------------------------


def render(
    doc_or_docs: Union[DocLike, Iterable[DocLike]],
    *,
    page: bool = True,
    layers: Sequence[str] = LAYERS,
    colors: Optional[Dict[str, str]] = None,
    mentions_key: str = MENTIONS_KEY,
    titles: Optional[Sequence[Optional[str]]] = None,
    title: str = "spacy-hmtl",
    max_row_width: int = MAX_ROW_WIDTH,
) -> str:
    """Render documents' entities, mentions, relations and coreference clusters as HTML.

    doc_or_docs: a Doc, a ``doc_to_json`` dict, or an iterable of them.
    page: a complete HTML page (else a fragment to embed; the fragment relies on no CSS
        but the page's own, so it looks plainer).
    layers: which of "entities", "mentions", "relations", "coref", "graph" to show.
    colors: label -> CSS colour, overriding the generated colours of entity/mention types.
    mentions_key: the ``doc.spans`` key of the mentions (Doc input).
    titles: a heading per document (default: the ``id`` of JSON input, else "Document N").
    title: the page title.
    max_row_width: width (px) at which the relation SVG starts a new row, where it can.
    RETURNS (str): the HTML.
    """
    _check_layers(layers)
    blocks = render_blocks(
        _as_json_docs(doc_or_docs, mentions_key), layers=layers, colors=colors, titles=titles,
        max_row_width=max_row_width,
    )
    return assemble(blocks, page=page, title=title)


def render_blocks(
    docs: Sequence[Dict[str, Any]],
    *,
    layers: Sequence[str] = LAYERS,
    colors: Optional[Dict[str, str]] = None,
    titles: Optional[Sequence[Optional[str]]] = None,
    max_row_width: int = MAX_ROW_WIDTH,
) -> List[str]:
    """One block per document (``render_doc_json``), headed by its title.

    docs: ``doc_to_json`` dicts.
    titles: a heading per document (default, or when empty: the ``id`` of the document,
        else "Document N").
    RETURNS (List[str]): the blocks, for ``assemble``.
    """
    blocks = []
    for i, data in enumerate(docs):
        heading = titles[i] if titles is not None and i < len(titles) else None
        blocks.append(
            render_doc_json(
                data, layers=layers, colors=colors or {}, heading=heading or _heading(data, i),
                max_row_width=max_row_width,
            )
        )
    return blocks


def _check_layers(layers: Sequence[str]) -> None:
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; expected some of {list(LAYERS)}")


def _as_json_docs(doc_or_docs: Union[DocLike, Iterable[DocLike]], mentions_key: str) -> List[Dict[str, Any]]:
    """A Doc, a ``doc_to_json`` dict, or an iterable of them, as a list of dicts."""
    if isinstance(doc_or_docs, (Doc, dict)):
        doc_or_docs = [doc_or_docs]
    return [doc_to_json(d, mentions_key=mentions_key) if isinstance(d, Doc) else d for d in doc_or_docs]


def assemble(blocks: Sequence[str], *, page: bool = True, title: str = "spacy-hmtl") -> str:
    """Document blocks (``render_doc_json``) as a complete page or an embeddable fragment.
    Characters that XML 1.0 forbids are replaced (``safe_io.xml_safe``): the inline SVG
    stays well-formed XML, whatever control characters the documents hold."""
    content = "\n".join(blocks)
    if not page:
        return xml_safe(f'<div class="hmtl-render">{content}</div>')
    return xml_safe(TPL_PAGE.format(title=html.escape(title), css=PAGE_CSS, content=content))


def _heading(data: Dict[str, Any], index: int) -> str:
    return f"Document {data['id']}" if data.get("id") is not None else f"Document {index + 1}"


def render_doc_json(
    data: Dict[str, Any],
    *,
    layers: Sequence[str] = LAYERS,
    colors: Optional[Dict[str, str]] = None,
    heading: Optional[str] = None,
    max_row_width: int = MAX_ROW_WIDTH,
) -> str:
    """One document's block: a heading and a section per annotated layer.

    data: a document as written by ``doc_to_json``.
    layers: which layers to show, in this order (see ``render``).
    colors: label -> CSS colour, overriding the generated ones.
    heading: the block's heading (none when empty).
    max_row_width: width (px) at which the relation SVG starts a new row, where it can.
    RETURNS (str): the block's HTML.
    """
    colors = colors or {}
    sections = []
    for layer in layers:
        body = _layer_body(layer, data, colors, max_row_width)
        if body is None:
            continue
        sections.append(
            f'<section class="hmtl-layer hmtl-{layer}"><h3>{LAYER_TITLES[layer]}</h3>\n{body}\n</section>'
        )
    if not sections:
        sections.append(f'<p>{html.escape(data.get("text", ""))}</p><p class="hmtl-none">no annotation</p>')
    head = f"<h2>{html.escape(heading)}</h2>\n" if heading else ""
    return f'<div class="hmtl-doc">\n{head}' + "\n".join(sections) + "\n</div>"


def _layer_body(layer: str, data: Dict[str, Any], colors: Dict[str, str], max_row_width: int) -> Optional[str]:
    """The HTML of one layer's section, or None when the document is not annotated for it."""
    if layer == "entities" and data.get("entities") is not None:
        return _render_entities(data, colors)
    if layer == "mentions" and data.get("mentions") is not None:
        return _render_mentions(data, colors)
    if layer == "relations" and data.get("relations") is not None:
        return render_relations_svg(data, colors=colors, max_row_width=max_row_width)
    if layer == "coref" and data.get("coref_clusters") is not None:
        return _render_coref(data)
    if layer == "graph" and _has_graph(data):
        return _render_graph(data, colors)
    return None


# --- displaCy sections ----------------------------------------------------------------


def _displacy(parsed: Dict[str, Any], style: str, options: Dict[str, Any]) -> str:
    from spacy import displacy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no entities/spans to visualise"
        return displacy.render(parsed, style=style, manual=True, page=False, jupyter=False, options=options)


def _label(span: Dict[str, Any]) -> str:
    # displaCy writes labels into the markup as they are.
    return html.escape(span.get("label") or "")


def _none(what: str) -> str:
    return f'<p class="hmtl-none">no {what}</p>'


def _render_entities(data: Dict[str, Any], colors: Dict[str, str]) -> str:
    ents = [
        {"start": e["start_char"], "end": e["end_char"], "label": _label(e)} for e in data["entities"]
    ]
    labels = {e["label"] for e in ents}
    options = {"colors": {lab: colors.get(html.unescape(lab), label_color(html.unescape(lab))) for lab in labels}}
    markup = _displacy({"text": data["text"], "ents": ents, "title": None}, "ent", options)
    return markup if ents else markup + _none("entities")


def _render_mentions(data: Dict[str, Any], colors: Dict[str, str]) -> str:
    spans = []
    for m in data["mentions"]:
        label = _label(m) or "MENTION"
        if m.get("score") is not None:
            label += f"&nbsp;{m['score']:.2f}"  # one line: the label box is as wide as its token
        color = colors.get(m.get("label") or "", label_color(m.get("label") or "MENTION"))
        spans.append({"start_token": m["start_token"], "end_token": m["end_token"], "label": label, "color": color})
    options = {"colors": {s["label"]: s["color"] for s in spans}}
    tokens = [t["text"] for t in data["tokens"]]
    markup = _displacy({"text": data["text"], "tokens": tokens, "spans": spans}, "span", options)
    return markup if spans else markup + _none("mentions")


def _has_graph(data: Dict[str, Any]) -> bool:
    keys = ("entities", "mentions", "relations", "coref_clusters", "graph")
    return any(data.get(key) is not None for key in keys)


def _render_graph(data: Dict[str, Any], colors: Dict[str, str]) -> str:
    from .graph.draw import render_graph_svg
    from .graph.entity_graph import entity_graph

    try:
        return render_graph_svg(entity_graph(data).to_dict(), label_color=label_color, colors=colors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        # The other sections may still render a record the graph cannot be built from.
        return f'<p class="hmtl-none">no graph: malformed annotation ({html.escape(type(err).__name__)})</p>'


def _render_coref(data: Dict[str, Any]) -> str:
    clusters = data["coref_clusters"]
    spans, colors, legend = [], {}, []
    for i, cluster in enumerate(clusters):
        label = f"C{i + 1}"
        colors[label] = cluster_color(i)
        for m in cluster:
            spans.append({"start_token": m["start_token"], "end_token": m["end_token"], "label": label})
        texts = ", ".join(html.escape(m["text"]) for m in cluster)
        legend.append(
            f'<div><span class="hmtl-swatch" style="background: {colors[label]}">{label}</span>{texts}</div>'
        )
    tokens = [t["text"] for t in data["tokens"]]
    markup = _displacy({"text": data["text"], "tokens": tokens, "spans": spans}, "span", {"colors": colors})
    if not clusters:
        return markup + _none("coreference clusters")
    return markup + '<div class="hmtl-legend">' + "".join(legend) + "</div>"


# --- relation SVG -----------------------------------------------------------------------


def _assign_levels(intervals: Sequence[Tuple[float, float]]) -> List[int]:
    """Greedy stacking: shorter intervals low, no two overlapping intervals on one level."""
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i][1] - intervals[i][0], intervals[i][0]))
    placed: List[Tuple[float, float, int]] = []
    levels = [0] * len(intervals)
    for i in order:
        lo, hi = intervals[i]
        used = {lvl for plo, phi, lvl in placed if plo <= hi and lo <= phi}
        level = 1
        while level in used:
            level += 1
        levels[i] = level
        placed.append((lo, hi, level))
    return levels


def _row_breaks(
    n_tokens: int, widths: List[float], relations: List[Dict[str, Any]], max_width: float
) -> List[Tuple[int, int]]:
    """Token ranges of the rows: a row may end only where no relation crosses."""
    crossing = [False] * (n_tokens + 1)  # crossing[i]: a relation covers both i-1 and i
    for rel in relations:
        lo = min(rel["head"]["start_token"], rel["tail"]["start_token"])
        hi = max(rel["head"]["end_token"], rel["tail"]["end_token"])
        for i in range(lo + 1, hi):
            crossing[i] = True
    rows, start, width = [], 0, 0.0
    for i in range(n_tokens):
        if i > start and not crossing[i] and width + widths[i] > max_width:
            rows.append((start, i))
            start, width = i, 0.0
        width += widths[i] + CHAR_WIDTH
    if n_tokens:
        rows.append((start, n_tokens))
    return rows


def render_relations_svg(
    data: Dict[str, Any], *, colors: Optional[Dict[str, str]] = None, max_row_width: int = MAX_ROW_WIDTH
) -> str:
    """The relations of one document (``doc_to_json`` dict) as inline SVG rows.

    Each relation is an arrow from its head argument up, across and down to its tail
    argument (the arrowhead marks the tail), with the label on top; the argument spans are
    underlined in their entity colour, their entity label below.

    colors: label -> CSS colour, overriding the generated colours.
    max_row_width: width (px) at which a new row starts, where no relation crosses.
    RETURNS (str): the HTML (the text and "no relations" when there are none).
    """
    colors = colors or {}
    tokens = data["tokens"]
    relations = data["relations"]
    if not relations:
        return f'<p>{html.escape(data["text"])}</p>' + _none("relations")
    widths = [max(1, len(t["text"])) * CHAR_WIDTH for t in tokens]
    rows = []
    for row_start, row_end in _row_breaks(len(tokens), widths, relations, max_row_width):
        row_rels = [rel for rel in relations if row_start <= _first_token(rel) < row_end]
        rows.append(_relation_row(tokens, widths, row_start, row_end, row_rels, colors))
    return '<div class="hmtl-scroll">' + "\n".join(rows) + "</div>"


def _first_token(rel: Dict[str, Any]) -> int:
    """The first token of a relation's arguments: the row it is drawn in."""
    return min(rel["head"]["start_token"], rel["tail"]["start_token"])


class _RowLayout(NamedTuple):
    """Where a relation row's parts go: token x positions and the heights (px)."""

    x_of: Dict[int, float]  # token index -> left edge; the row's end index -> right edge (+ a space)
    width: float
    base_y: float  # where the arrows meet the text
    text_y: float
    under_y: float  # the first line of argument underlines
    height: float


def _relation_row(
    tokens: List[Dict[str, Any]],
    widths: List[float],
    row_start: int,
    row_end: int,
    relations: List[Dict[str, Any]],
    colors: Dict[str, str],
) -> str:
    """One row of the relation SVG: tokens ``row_start:row_end`` and the relations that
    start in it, each argument underlined, each relation an arrow at its own level."""
    x_of = _token_xs(widths, row_start, row_end)
    args = _argument_spans(relations)
    arg_keys = sorted(args)
    arg_levels = _assign_levels([_span_box(args[k], x_of) for k in arg_keys])
    arc_levels = _assign_levels([_arc_interval(rel, x_of) for rel in relations])
    end_x = _arrow_ends(relations, args, arc_levels, x_of)
    layout = _row_layout(x_of, row_end, max(arc_levels, default=0), max(arg_levels, default=0))
    parts = [_svg_open(layout)]
    parts.extend(_token_texts(tokens, row_start, row_end, layout))
    for key, level in zip(arg_keys, arg_levels):
        parts.extend(_argument_underline(args[key], level, layout, colors))
    for idx, (rel, level) in enumerate(zip(relations, arc_levels)):
        parts.extend(_relation_arrow(rel, level, end_x[(idx, 0)], end_x[(idx, 1)], layout, colors))
    parts.append("</svg>")
    return "\n".join(parts)


def _token_xs(widths: List[float], row_start: int, row_end: int) -> Dict[int, float]:
    """Token index -> x of its left edge in the row; ``row_end`` -> the x after the last
    token and its trailing space."""
    x_of: Dict[int, float] = {}
    x: float = MARGIN
    for i in range(row_start, row_end):
        x_of[i] = x
        x += widths[i] + CHAR_WIDTH
    x_of[row_end] = x
    return x_of


def _span_box(span: Dict[str, Any], x_of: Dict[int, float]) -> Tuple[float, float]:
    """The x extent of a span's text (without its trailing space)."""
    return x_of[span["start_token"]], x_of[span["end_token"]] - CHAR_WIDTH


def _span_key(span: Dict[str, Any]) -> Tuple[int, int]:
    return span["start_token"], span["end_token"]


def _argument_spans(relations: List[Dict[str, Any]]) -> Dict[Tuple[int, int], Dict[str, Any]]:
    """(start, end) -> the span, for each argument of the relations (first occurrence)."""
    args: Dict[Tuple[int, int], Dict[str, Any]] = {}
    for rel in relations:
        for span in (rel["head"], rel["tail"]):
            args.setdefault(_span_key(span), span)
    return args


def _arc_interval(rel: Dict[str, Any], x_of: Dict[int, float]) -> Tuple[float, float]:
    """The x interval an arrow spans: between the centres of its two arguments."""
    head_mid = sum(_span_box(rel["head"], x_of)) / 2
    tail_mid = sum(_span_box(rel["tail"], x_of)) / 2
    return min(head_mid, tail_mid), max(head_mid, tail_mid)


def _arrow_ends(
    relations: List[Dict[str, Any]],
    args: Dict[Tuple[int, int], Dict[str, Any]],
    arc_levels: List[int],
    x_of: Dict[int, float],
) -> Dict[Tuple[int, int], float]:
    """(relation index, 0 head / 1 tail) -> x where its arrow meets the argument: the
    arrows touching one span are spread evenly across its width, lower arrows first."""
    touching: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for idx, rel in enumerate(relations):
        for end, span in enumerate((rel["head"], rel["tail"])):
            touching.setdefault(_span_key(span), []).append((idx, end))
    end_x: Dict[Tuple[int, int], float] = {}
    for key, ends in touching.items():
        lo, hi = _span_box(args[key], x_of)
        ends.sort(key=lambda e: (arc_levels[e[0]], e[1]))
        for k, e in enumerate(ends):
            end_x[e] = lo + (hi - lo) * (k + 1) / (len(ends) + 1)
    return end_x


def _row_layout(x_of: Dict[int, float], row_end: int, n_arc_levels: int, n_arg_levels: int) -> _RowLayout:
    """The row's size and lines: arrow levels above the text, underline levels below."""
    base_y = MARGIN + 8 + n_arc_levels * LEVEL_HEIGHT
    text_y = base_y + FONT_SIZE + 2
    under_y = text_y + 6
    height = under_y + n_arg_levels * (LABEL_FONT_SIZE + 8) + MARGIN
    return _RowLayout(x_of, x_of[row_end] + MARGIN, base_y, text_y, under_y, height)


def _svg_open(layout: _RowLayout) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hmtl-relations-svg" width="{layout.width:.0f}" '
        f'height="{layout.height:.0f}" viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" role="img" '
        f'style="display: block; margin-bottom: 0.5em; font-family: monospace;">'
    )


def _token_texts(tokens: List[Dict[str, Any]], row_start: int, row_end: int, layout: _RowLayout) -> List[str]:
    return [
        f'<text x="{layout.x_of[i]:.1f}" y="{layout.text_y:.1f}" font-size="{FONT_SIZE}" fill="#222" '
        f'font-family="monospace">{html.escape(tokens[i]["text"])}</text>'
        for i in range(row_start, row_end)
    ]


def _argument_underline(span: Dict[str, Any], level: int, layout: _RowLayout, colors: Dict[str, str]) -> List[str]:
    """A relation argument underlined in its entity's colour, at its level, its entity label below."""
    lo, hi = _span_box(span, layout.x_of)
    label = span.get("label") or ""
    color = colors.get(label, label_color(label or "ARG", lightness=55))
    y = layout.under_y + (level - 1) * (LABEL_FONT_SIZE + 8)
    parts = [f'<rect x="{lo:.1f}" y="{y:.1f}" width="{max(hi - lo, 2):.1f}" height="3" fill="{color}"/>']
    if label:
        parts.append(
            f'<text x="{lo:.1f}" y="{y + 3 + LABEL_FONT_SIZE:.1f}" font-size="{LABEL_FONT_SIZE}" '
            f'fill="#444" font-family="monospace">{html.escape(label)}</text>'
        )
    return parts


def _relation_arrow(
    rel: Dict[str, Any], level: int, x1: float, x2: float, layout: _RowLayout, colors: Dict[str, str]
) -> List[str]:
    """A relation as an arrow from ``x1`` (head) up to its level, across and down to ``x2``
    (tail), its label boxed on top and its score in the hover title."""
    esc = html.escape
    base_y = layout.base_y
    top = base_y - level * LEVEL_HEIGHT
    color = colors.get(rel["label"], label_color(rel["label"], lightness=38))
    tip = f'{rel["head"]["text"]} \u2192 {rel["label"]} \u2192 {rel["tail"]["text"]} (score {rel["score"]:.3f})'
    label_w = len(rel["label"]) * LABEL_CHAR_WIDTH + 6
    mid = (x1 + x2) / 2
    return [
        f'<g class="hmtl-relation"><title>{esc(tip)}</title>',
        f'<path d="M{x1:.1f},{base_y - 2:.1f} V{top:.1f} H{x2:.1f} V{base_y - 7:.1f}" fill="none" '
        f'stroke="{color}" stroke-width="1.6" stroke-linejoin="round"/>',
        # the arrowhead, at the tail
        f'<path d="M{x2 - 4:.1f},{base_y - 8:.1f} L{x2 + 4:.1f},{base_y - 8:.1f} L{x2:.1f},{base_y - 1:.1f} Z" '
        f'fill="{color}"/>',
        f'<circle cx="{x1:.1f}" cy="{base_y - 2:.1f}" r="2" fill="{color}"/>',  # the head end
        f'<rect x="{mid - label_w / 2:.1f}" y="{top - LABEL_FONT_SIZE / 2 - 2:.1f}" width="{label_w:.1f}" '
        f'height="{LABEL_FONT_SIZE + 4}" rx="3" fill="#fff"/>',
        f'<text x="{mid:.1f}" y="{top + LABEL_FONT_SIZE / 2 - 1:.1f}" font-size="{LABEL_FONT_SIZE}" '
        f'text-anchor="middle" fill="{color}" font-family="monospace" font-weight="bold">'
        f"{esc(rel['label'])}</text></g>",
    ]


# --- annotated JSONL ---------------------------------------------------------------------


def render_jsonl(
    path: Union[str, Path], *, layers: Sequence[str] = LAYERS, limit: Optional[int] = None, on_error: str = "skip"
) -> Tuple[List[str], int]:
    """Render the documents of an ``annotate`` output file, one block each.

    A line that is not such a document is reported on stderr (``FILE:LINE``, id, reason)
    and left out (``on_error="skip"``), or raises AnnotateError (``"stop"``, and when
    no document at all can be rendered).
    limit: render at most this many documents.
    RETURNS (Tuple[List[str], int]): the blocks and how many records were skipped.
    """
    blocks: List[str] = []
    skipped: List[RecordError] = []
    for lineno, data, problem in _read_annotated(path):
        if limit is not None and len(blocks) >= limit:
            break
        if problem is None:
            block, problem = _render_record(data, layers, len(blocks))
        if problem is None:
            blocks.append(block)
            continue
        doc_id = data.get("id") if isinstance(data, dict) else None
        error = RecordError(doc_id if isinstance(doc_id, (str, int)) else None, problem, lineno)
        if on_error == "stop":
            raise AnnotateError(f"{error.describe(path)} (stopped by --on-error stop)")
        print(f"skipped {error.describe(path)}", file=sys.stderr)
        skipped.append(error)
    if skipped and not blocks:
        raise AnnotateError(f"{path}: no record could be rendered ({len(skipped)} bad); is it the output of annotate?")
    return blocks, len(skipped)


def _read_annotated(path: Union[str, Path]) -> Iterable[Tuple[int, Any, Optional[str]]]:
    """(line number, parsed JSON or None, problem) for each non-blank line."""
    with open(path, "rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                yield lineno, None, f"not valid UTF-8 ({err.reason} at byte {err.start})"
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as err:
                yield lineno, None, f"not valid JSON ({err.msg}: column {err.colno})"


def _render_record(data: Any, layers: Sequence[str], index: int) -> Tuple[Optional[str], Optional[str]]:
    """(the block, None), or (None, why the record cannot be rendered)."""
    if not isinstance(data, dict):
        return None, f"expected a JSON object written by annotate, found {type(data).__name__}"
    for key, kind in (("text", str), ("tokens", list)):
        if not isinstance(data.get(key), kind):
            return None, f"no {kind.__name__} {key!r}: not a document written by annotate"
    try:
        return render_doc_json(data, layers=layers, heading=_heading(data, index)), None
    except KeyError as err:
        return None, f"malformed annotation: a span or relation lacks the field {err.args[0]!r}"
    except (TypeError, ValueError, IndexError, AttributeError) as err:
        return None, f"malformed annotation: {type(err).__name__}: {err}"
