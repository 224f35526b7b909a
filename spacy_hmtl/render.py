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
model: ``python -m spacy_hmtl render --jsonl OUTPUT.jsonl --output page.html``. A layer the
document is not annotated for is left out; an annotated but empty layer says "none".

The command never writes over its ``--jsonl`` input, nor over an existing ``--output``
without ``--overwrite``; the page is written atomically. A ``--jsonl`` record that is
not a document written by ``annotate`` is reported (file:line, id, reason) and, with
``--on-error skip`` (the default), left out of the page (exit status 3); ``--on-error
stop`` stops there (exit status 1) and writes nothing.
"""
import html
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .annotate import doc_to_json
from .annotations import MENTIONS_KEY
from .safe_io import output_problem, write_atomic

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
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; expected some of {list(LAYERS)}")
    if isinstance(doc_or_docs, (Doc, dict)):
        doc_or_docs = [doc_or_docs]
    docs = [doc_to_json(d, mentions_key=mentions_key) if isinstance(d, Doc) else d for d in doc_or_docs]
    blocks = []
    for i, data in enumerate(docs):
        heading = titles[i] if titles is not None and i < len(titles) else None
        blocks.append(
            render_doc_json(
                data, layers=layers, colors=colors or {}, heading=heading or _heading(data, i),
                max_row_width=max_row_width,
            )
        )
    return assemble(blocks, page=page, title=title)


def assemble(blocks: Sequence[str], *, page: bool = True, title: str = "spacy-hmtl") -> str:
    """Document blocks (``render_doc_json``) as a complete page or an embeddable fragment."""
    content = "\n".join(blocks)
    if not page:
        return f'<div class="hmtl-render">{content}</div>'
    return TPL_PAGE.format(title=html.escape(title), css=PAGE_CSS, content=content)


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
    """One document's block (``data`` as written by ``doc_to_json``)."""
    colors = colors or {}
    sections = []
    for layer in layers:
        body = None
        if layer == "entities" and data.get("entities") is not None:
            body = _render_entities(data, colors)
        elif layer == "mentions" and data.get("mentions") is not None:
            body = _render_mentions(data, colors)
        elif layer == "relations" and data.get("relations") is not None:
            body = render_relations_svg(data, colors=colors, max_row_width=max_row_width)
        elif layer == "coref" and data.get("coref_clusters") is not None:
            body = _render_coref(data)
        elif layer == "graph" and _has_graph(data):
            body = _render_graph(data, colors)
        if body is None:
            continue
        sections.append(
            f'<section class="hmtl-layer hmtl-{layer}"><h3>{LAYER_TITLES[layer]}</h3>\n{body}\n</section>'
        )
    if not sections:
        sections.append(f'<p>{html.escape(data.get("text", ""))}</p><p class="hmtl-none">no annotation</p>')
    head = f"<h2>{html.escape(heading)}</h2>\n" if heading else ""
    return f'<div class="hmtl-doc">\n{head}' + "\n".join(sections) + "\n</div>"


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


def _row_breaks(n_tokens: int, widths: List[float], relations: List[Dict[str, Any]], max_width: float) -> List[Tuple[int, int]]:
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
    """
    colors = colors or {}
    tokens = data["tokens"]
    relations = data["relations"]
    if not relations:
        return f'<p>{html.escape(data["text"])}</p>' + _none("relations")
    widths = [max(1, len(t["text"])) * CHAR_WIDTH for t in tokens]
    rows = []
    for row_start, row_end in _row_breaks(len(tokens), widths, relations, max_row_width):
        row_rels = [r for r in relations if row_start <= min(r["head"]["start_token"], r["tail"]["start_token"]) < row_end]
        rows.append(_relation_row(tokens, widths, row_start, row_end, row_rels, colors))
    return '<div class="hmtl-scroll">' + "\n".join(rows) + "</div>"


def _relation_row(
    tokens: List[Dict[str, Any]],
    widths: List[float],
    row_start: int,
    row_end: int,
    relations: List[Dict[str, Any]],
    colors: Dict[str, str],
) -> str:
    esc = html.escape
    x_of: Dict[int, float] = {}
    x = MARGIN
    for i in range(row_start, row_end):
        x_of[i] = x
        x += widths[i] + CHAR_WIDTH
    x_of[row_end] = x
    total_width = x + MARGIN

    def span_box(span: Dict[str, Any]) -> Tuple[float, float]:
        return x_of[span["start_token"]], x_of[span["end_token"]] - CHAR_WIDTH

    # Argument spans, underlined (stacked where they overlap).
    args: Dict[Tuple[int, int], Dict[str, Any]] = {}
    for rel in relations:
        for span in (rel["head"], rel["tail"]):
            args.setdefault((span["start_token"], span["end_token"]), span)
    arg_keys = sorted(args)
    arg_levels = _assign_levels([span_box(args[k]) for k in arg_keys])
    n_arg_levels = max(arg_levels, default=0)

    # Endpoints: spread the arrows that touch one span across its width.
    arc_levels = _assign_levels(
        [
            (min(sum(span_box(r["head"])) / 2, sum(span_box(r["tail"])) / 2),
             max(sum(span_box(r["head"])) / 2, sum(span_box(r["tail"])) / 2))
            for r in relations
        ]
    )
    touching: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for idx, rel in enumerate(relations):
        for end, span in enumerate((rel["head"], rel["tail"])):
            touching.setdefault((span["start_token"], span["end_token"]), []).append((idx, end))
    end_x: Dict[Tuple[int, int], float] = {}
    for key, ends in touching.items():
        lo, hi = span_box(args[key])
        ends.sort(key=lambda e: (arc_levels[e[0]], e[1]))
        for k, e in enumerate(ends):
            end_x[e] = lo + (hi - lo) * (k + 1) / (len(ends) + 1)

    max_level = max(arc_levels, default=0)
    base_y = MARGIN + 8 + max_level * LEVEL_HEIGHT  # where arrows meet the text
    text_y = base_y + FONT_SIZE + 2
    under_y = text_y + 6
    height = under_y + n_arg_levels * (LABEL_FONT_SIZE + 8) + MARGIN

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hmtl-relations-svg" width="{total_width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {total_width:.0f} {height:.0f}" role="img" '
        f'style="display: block; margin-bottom: 0.5em; font-family: monospace;">'
    ]
    for i in range(row_start, row_end):
        parts.append(
            f'<text x="{x_of[i]:.1f}" y="{text_y:.1f}" font-size="{FONT_SIZE}" fill="#222" '
            f'font-family="monospace">{esc(tokens[i]["text"])}</text>'
        )
    for key, level in zip(arg_keys, arg_levels):
        span = args[key]
        lo, hi = span_box(span)
        label = span.get("label") or ""
        color = colors.get(label, label_color(label or "ARG", lightness=55))
        y = under_y + (level - 1) * (LABEL_FONT_SIZE + 8)
        parts.append(f'<rect x="{lo:.1f}" y="{y:.1f}" width="{max(hi - lo, 2):.1f}" height="3" fill="{color}"/>')
        if label:
            parts.append(
                f'<text x="{lo:.1f}" y="{y + 3 + LABEL_FONT_SIZE:.1f}" font-size="{LABEL_FONT_SIZE}" '
                f'fill="#444" font-family="monospace">{esc(label)}</text>'
            )
    for idx, (rel, level) in enumerate(zip(relations, arc_levels)):
        x1, x2 = end_x[(idx, 0)], end_x[(idx, 1)]
        top = base_y - level * LEVEL_HEIGHT
        color = colors.get(rel["label"], label_color(rel["label"], lightness=38))
        tip = f'{rel["head"]["text"]} \u2192 {rel["label"]} \u2192 {rel["tail"]["text"]} (score {rel["score"]:.3f})'
        label_w = len(rel["label"]) * LABEL_CHAR_WIDTH + 6
        mid = (x1 + x2) / 2
        parts.append(f'<g class="hmtl-relation"><title>{esc(tip)}</title>')
        parts.append(
            f'<path d="M{x1:.1f},{base_y - 2:.1f} V{top:.1f} H{x2:.1f} V{base_y - 7:.1f}" fill="none" '
            f'stroke="{color}" stroke-width="1.6" stroke-linejoin="round"/>'
        )
        parts.append(  # the arrowhead, at the tail
            f'<path d="M{x2 - 4:.1f},{base_y - 8:.1f} L{x2 + 4:.1f},{base_y - 8:.1f} L{x2:.1f},{base_y - 1:.1f} Z" '
            f'fill="{color}"/>'
        )
        parts.append(f'<circle cx="{x1:.1f}" cy="{base_y - 2:.1f}" r="2" fill="{color}"/>')  # the head end
        parts.append(
            f'<rect x="{mid - label_w / 2:.1f}" y="{top - LABEL_FONT_SIZE / 2 - 2:.1f}" width="{label_w:.1f}" '
            f'height="{LABEL_FONT_SIZE + 4}" rx="3" fill="#fff"/>'
        )
        parts.append(
            f'<text x="{mid:.1f}" y="{top + LABEL_FONT_SIZE / 2 - 1:.1f}" font-size="{LABEL_FONT_SIZE}" '
            f'text-anchor="middle" fill="{color}" font-family="monospace" font-weight="bold">'
            f"{esc(rel['label'])}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


# --- command line -----------------------------------------------------------------------


def add_render(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render entities, mentions, relations and coreference as a standalone HTML page",
        description=(
            "Annotate TEXT (one or more documents) with MODEL, or read documents already "
            "annotated by `annotate` (--jsonl), and write a self-contained HTML page."
        ),
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", default=None, help="pipeline name or path")
    parser.add_argument("texts", metavar="TEXT", nargs="*", help="text(s) to annotate and render")
    parser.add_argument("--jsonl", metavar="PATH", default=None,
                        help="render the output of `annotate` instead (no MODEL needed)")
    parser.add_argument("--limit", type=int, default=None, help="--jsonl: render at most this many documents")
    parser.add_argument("--output", "-o", metavar="FILE", default=None, help="HTML file to write (default stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--on-error", choices=("skip", "stop"), default="skip",
                        help="--jsonl: a record that cannot be rendered is left out (default; exit status 3) "
                             "or stops the command (exit status 1)")
    parser.add_argument("--layers", default=",".join(LAYERS),
                        help=f"comma-separated layers to show (default {','.join(LAYERS)})")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.set_defaults(handler=run_render, parser=parser)


def run_render(args: Any) -> int:
    from .annotate import EXIT_SKIPPED, AnnotateError, load_model

    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    bad = [layer for layer in layers if layer not in LAYERS]
    if bad:
        args.parser.error(f"unknown layers {bad}; choose from {','.join(LAYERS)}")
    if args.jsonl is not None and (args.model is not None or args.texts):
        args.parser.error("--jsonl renders an annotated file: give no MODEL or TEXT")
    if args.jsonl is None and (args.model is None or not args.texts):
        args.parser.error("give MODEL and at least one TEXT (or --jsonl PATH)")
    try:
        if args.output is not None:
            problem = output_problem(args.output, [args.jsonl] if args.jsonl else [], overwrite=args.overwrite)
            if problem is not None:
                raise AnnotateError(f"{args.output}: {problem}")
        if args.jsonl is not None:
            blocks, n_skipped = render_jsonl(args.jsonl, layers=layers, limit=args.limit, on_error=args.on_error)
        else:
            nlp = load_model(args.model, args.gpu_id)
            docs = [doc_to_json(doc) for doc in nlp.pipe(_check_texts(args.texts))]
            blocks = [render_doc_json(data, layers=layers, heading=_heading(data, i)) for i, data in enumerate(docs)]
            n_skipped = 0
        markup = assemble(blocks)
        if args.output is None:
            sys.stdout.write(markup)
        else:
            write_atomic(args.output, markup.encode("utf8"))
            print(f"wrote {len(blocks)} document(s) to {args.output}", file=sys.stderr)
    except (AnnotateError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return EXIT_SKIPPED if n_skipped else 0


def _check_texts(texts: Sequence[str]) -> Sequence[str]:
    from .annotate import AnnotateError, unicode_problem

    for i, text in enumerate(texts, start=1):
        problem = unicode_problem(text)
        if problem is not None:
            raise AnnotateError(f"TEXT {i} {problem} (not UTF-8 on the command line?)")
    return texts


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
    from .annotate import AnnotateError, RecordError

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
    import json

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
