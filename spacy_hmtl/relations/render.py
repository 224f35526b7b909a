"""The relations section of ``render`` (the ``render`` of ``hmtl_relations``' task description):
the tokens of a document as SVG rows, an arrow from the head argument to the tail argument of each relation, labelled, the
arguments underlined in their entity's colour (hover an arrow for its score).

Layout: a row only breaks between tokens that no relation spans (``_row_breaks``); in a
row, arrows and argument underlines are stacked on levels so that none overlaps another
on its level (``_assign_levels``: shorter ones low), and the arrows touching one argument
meet it spread across its width (``_arrow_ends``). Monospace text, so every width is known
without a browser.
"""
import html
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..render_html import MAX_ROW_WIDTH, label_color, none_note
from ..tasks import RenderContext

# Geometry (px).
FONT_SIZE = 15
CHAR_WIDTH = 0.61 * FONT_SIZE  # advance of common monospace fonts (0.60-0.61 em)
LABEL_FONT_SIZE = 11
LABEL_CHAR_WIDTH = 0.62 * LABEL_FONT_SIZE
LEVEL_HEIGHT = 22
MARGIN = 12


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
        return f'<p>{html.escape(data["text"])}</p>' + none_note("relations")
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


def render_relations(data: Dict[str, Any], ctx: RenderContext) -> str:
    """``render_relations_svg`` as the relation task's section renderer."""
    return render_relations_svg(data, colors=dict(ctx.colors), max_row_width=ctx.max_row_width)
