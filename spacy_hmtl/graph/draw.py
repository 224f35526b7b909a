"""The entity graph of one document as inline SVG, for ``spacy_hmtl.render``.

Nodes that take part in a relation are boxes on an ellipse (widened until no two boxes
overlap), in document order from the top, clockwise: the canonical name, the type and the
number of mentions (hover for the mentions). Each edge is an arrow from the head entity to
the tail entity, labelled with the relation (hover for the score and the supporting
relations); several edges between the same two entities bend apart, and a label goes where
along (or beside) its edge it covers the least of the boxes and earlier labels. Entities
without relations follow as a list. No script, no external resource: plain SVG.
"""
import html
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

FONT_SIZE = 13
CHAR_WIDTH = 0.61 * FONT_SIZE  # monospace advance: widths are known without a browser
LABEL_FONT_SIZE = 11
LABEL_CHAR_WIDTH = 0.62 * LABEL_FONT_SIZE
MAX_NAME_CHARS = 26
BOX_HEIGHT = 38
MARGIN = 16
LOOP_HEIGHT = 34
EDGE_SPREAD = 30  # px between parallel edges of one pair of nodes

Point = Tuple[float, float]


def render_graph_svg(
    graph: Dict[str, Any], *, label_color: Callable[..., str], colors: Optional[Dict[str, str]] = None
) -> str:
    """The graph (``EntityGraph.to_dict()``) as HTML: an SVG plus the unrelated entities.

    label_color: ``label_color(label, lightness=...)`` -> CSS colour, the page's colour of
        a label (``render.label_color``), so the graph matches the other sections.
    colors: label -> CSS colour, overriding the generated colours of types and relations.
    RETURNS (str): the markup (a "no entities" note for an empty graph).
    """
    colors = colors or {}
    nodes, edges = graph["nodes"], graph["edges"]
    if not nodes:
        return '<p class="hmtl-none">no entities</p>'
    linked = sorted({e["head"] for e in edges} | {e["tail"] for e in edges})
    parts = []
    if linked:
        parts.append(_svg(nodes, edges, linked, colors, label_color))
    else:
        parts.append('<p class="hmtl-none">no relations between entities</p>')
    others = [n for n in nodes if n["id"] not in set(linked)]
    if others:
        chips = "".join(_chip(n, colors, label_color) for n in others)
        title = "Other entities" if linked else "Entities"
        parts.append(f'<div class="hmtl-legend"><b>{title}:</b> {chips}</div>')
    return "\n".join(parts)


def _name(node: Dict[str, Any]) -> str:
    name = " ".join(node["name"].split())
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "\u2026"


def _subtitle(node: Dict[str, Any]) -> str:
    count = len(node["mentions"])
    return f"{node['type'] or '-'} \u00d7{count}" if count > 1 else (node["type"] or "-")


def _tooltip(node: Dict[str, Any]) -> str:
    mentions = "; ".join(f"{m['text']} [{m['start_char']}:{m['end_char']}]" for m in node["mentions"])
    return f"{node['name']} ({node['type'] or 'no type'}): {mentions}"


def _node_color(node: Dict[str, Any], colors: Dict[str, str], label_color: Any, lightness: int) -> str:
    label = node["type"] or "ENTITY"
    return colors.get(label, label_color(label, lightness=lightness))


def _chip(node: Dict[str, Any], colors: Dict[str, str], label_color: Any) -> str:
    esc = html.escape
    color = _node_color(node, colors, label_color, 85)
    return (
        f'<span class="hmtl-swatch" style="background: {color}; font-weight: normal" '
        f'title="{esc(_tooltip(node))}">{esc(_name(node))} <small>{esc(_subtitle(node))}</small></span> '
    )


def _box_width(node: Dict[str, Any]) -> float:
    return max(len(_name(node)), len(_subtitle(node))) * CHAR_WIDTH + 16


def _layout(nodes: List[Dict[str, Any]], linked: List[int]) -> Tuple[Dict[int, Point], float, float]:
    """Node centres on an ellipse, widened until no two boxes overlap; the SVG's size."""
    n = len(linked)
    widths = [_box_width(nodes[i]) for i in linked]
    widest = max(widths)
    if n == 1:
        rx, ry = 0.0, 0.0
    elif n == 2:
        rx, ry = max(150.0, widest * 0.8), 0.0
    else:
        rx, ry = max(150.0, 40.0 + n * 30.0), max(80.0, 20.0 + n * 16.0)
        for _ in range(40):
            if not _boxes_overlap(_ellipse(n, rx, ry), widths):
                break
            rx, ry = rx * 1.12, ry * 1.12
    offsets = _ellipse(n, rx, ry)
    cx = MARGIN + widest / 2 + rx
    cy = MARGIN + LOOP_HEIGHT + BOX_HEIGHT / 2 + ry
    centres = {node_id: (cx + dx, cy + dy) for node_id, (dx, dy) in zip(linked, offsets)}
    return centres, 2 * cx, 2 * cy - LOOP_HEIGHT + MARGIN


def _ellipse(n: int, rx: float, ry: float) -> List[Point]:
    """n points on an ellipse around (0, 0), clockwise from the top (left to right for 2)."""
    if n <= 2:
        return [(rx * math.cos(math.pi * (k + 1)), 0.0) for k in range(n)]
    return [(rx * math.cos(-math.pi / 2 + 2 * math.pi * k / n), ry * math.sin(-math.pi / 2 + 2 * math.pi * k / n))
            for k in range(n)]


def _boxes_overlap(centres: List[Point], widths: List[float], gap: float = 36.0) -> bool:
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            if (abs(centres[i][0] - centres[j][0]) < (widths[i] + widths[j]) / 2 + gap
                    and abs(centres[i][1] - centres[j][1]) < BOX_HEIGHT + gap):
                return True
    return False


def _clip(centre: Point, toward: Point, half_w: float, half_h: float) -> Point:
    """Where the segment from a box's centre toward a point leaves the box."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    if dx == 0 and dy == 0:
        return centre
    scale = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return centre[0] + dx * min(scale, 1.0), centre[1] + dy * min(scale, 1.0)


def _edge_offsets(edges: List[Dict[str, Any]]) -> List[float]:
    """Sideways offset of each edge: parallel edges of one pair of nodes bend apart."""
    groups: Dict[Tuple[int, int], List[int]] = {}
    for i, edge in enumerate(edges):
        groups.setdefault(tuple(sorted((edge["head"], edge["tail"]))), []).append(i)
    offsets = [0.0] * len(edges)
    for members in groups.values():
        for j, i in enumerate(members):
            offsets[i] = (j - (len(members) - 1) / 2) * EDGE_SPREAD
    return offsets


def _svg(nodes: List[Dict[str, Any]], edges: List[Dict[str, Any]], linked: List[int],
         colors: Dict[str, str], label_color: Any) -> str:
    centres, width, height = _layout(nodes, linked)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hmtl-graph-svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" style="display: block; font-family: monospace;">'
    ]
    taken = [_rect(centres[i], _box_width(nodes[i]), BOX_HEIGHT) for i in linked]
    labels = []
    for edge, offset in zip(edges, _edge_offsets(edges)):
        color = colors.get(edge["label"], label_color(edge["label"], lightness=38))
        path, curve = _edge_path(edge, offset, centres, nodes)
        tip = (
            f"{nodes[edge['head']]['name']} \u2192 {edge['label']} \u2192 {nodes[edge['tail']]['name']} "
            f"(score {edge['score']:.3f}, {len(edge['support'])} relation mention(s))"
        )
        parts.append(f'<g class="hmtl-graph-edge"><title>{html.escape(tip)}</title>{path.format(color=color)}</g>')
        w = len(edge["label"]) * LABEL_CHAR_WIDTH + 6
        at = _label_position(curve, w, taken)
        taken.append(_rect(at, w, LABEL_FONT_SIZE + 4))
        labels.append((edge["label"], at, w, color, tip))
    for node_id in linked:
        parts.append(_node_box(nodes[node_id], centres[node_id], colors, label_color))
    for text, (x, y), w, color, tip in labels:  # placed off the boxes where there is room
        parts.append(
            f'<g class="hmtl-graph-label"><title>{html.escape(tip)}</title>'
            f'<rect x="{x - w / 2:.1f}" y="{y - LABEL_FONT_SIZE / 2 - 2:.1f}" width="{w:.1f}" '
            f'height="{LABEL_FONT_SIZE + 4}" rx="3" fill="#fff" fill-opacity="0.9"/>'
            f'<text x="{x:.1f}" y="{y + LABEL_FONT_SIZE / 2 - 1:.1f}" font-size="{LABEL_FONT_SIZE}" '
            f'text-anchor="middle" fill="{color}" font-weight="bold">{html.escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


Rect = Tuple[float, float, float, float]  # x0, y0, x1, y1


def _rect(centre: Point, width: float, height: float) -> Rect:
    return centre[0] - width / 2, centre[1] - height / 2, centre[0] + width / 2, centre[1] + height / 2


def _overlap(a: Rect, b: Rect) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _label_position(curve: Tuple[Point, Point, Point], width: float, taken: List[Rect]) -> Point:
    """The point along the edge (from its middle outwards, then beside it) where its
    label covers the least of the boxes and labels already placed."""
    start, ctrl, end = curve
    length = math.hypot(end[0] - start[0], end[1] - start[1]) or 1.0
    normal = (-(end[1] - start[1]) / length, (end[0] - start[0]) / length)
    best, best_cost = start, math.inf
    for side in (0.0, 1.0, -1.0):
        for t in (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74):
            u = 1 - t
            shift = side * (LABEL_FONT_SIZE + 4)
            point = (u * u * start[0] + 2 * u * t * ctrl[0] + t * t * end[0] + normal[0] * shift,
                     u * u * start[1] + 2 * u * t * ctrl[1] + t * t * end[1] + normal[1] * shift)
            cost = sum(_overlap(_rect(point, width, LABEL_FONT_SIZE + 4), other) for other in taken)
            if cost == 0:
                return point
            if cost < best_cost:
                best, best_cost = point, cost
    return best


def _node_box(node: Dict[str, Any], centre: Point, colors: Dict[str, str], label_color: Any) -> str:
    esc = html.escape
    w = _box_width(node)
    x, y = centre[0] - w / 2, centre[1] - BOX_HEIGHT / 2
    fill = _node_color(node, colors, label_color, 88)
    stroke = _node_color(node, colors, label_color, 45)
    return (
        f'<g class="hmtl-graph-node"><title>{esc(_tooltip(node))}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_HEIGHT}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.5"/>'
        f'<text x="{centre[0]:.1f}" y="{y + 16:.1f}" font-size="{FONT_SIZE}" text-anchor="middle" fill="#222" '
        f'font-weight="bold">{esc(_name(node))}</text>'
        f'<text x="{centre[0]:.1f}" y="{y + 31:.1f}" font-size="{LABEL_FONT_SIZE}" text-anchor="middle" '
        f'fill="#555">{esc(_subtitle(node))}</text></g>'
    )


def _edge_path(edge: Dict[str, Any], offset: float, centres: Dict[int, Point],
               nodes: List[Dict[str, Any]]) -> Tuple[str, Tuple[Point, Point, Point]]:
    """SVG elements of one edge ("{color}" left to fill in) and its curve (start,
    control point, end), along which its label goes."""
    head, tail = edge["head"], edge["tail"]
    if head == tail:
        return _loop(centres[head], _box_width(nodes[head]), offset)
    (x1, y1), (x2, y2) = centres[head], centres[tail]
    # the bend's normal is taken from the ordered pair, so reverse edges bend apart too
    a, b = (centres[min(head, tail)], centres[max(head, tail)])
    length = math.hypot(b[0] - a[0], b[1] - a[1]) or 1.0
    nx, ny = -(b[1] - a[1]) / length, (b[0] - a[0]) / length
    ctrl = ((x1 + x2) / 2 + nx * offset * 2, (y1 + y2) / 2 + ny * offset * 2)
    start = _clip((x1, y1), ctrl, _box_width(nodes[head]) / 2 + 2, BOX_HEIGHT / 2 + 2)
    end = _clip((x2, y2), ctrl, _box_width(nodes[tail]) / 2 + 4, BOX_HEIGHT / 2 + 4)
    path = (
        f'<path d="M{start[0]:.1f},{start[1]:.1f} Q{ctrl[0]:.1f},{ctrl[1]:.1f} {end[0]:.1f},{end[1]:.1f}" '
        f'fill="none" stroke="{{color}}" stroke-width="1.6"/>' + _arrowhead(ctrl, end)
    )
    return path, (start, ctrl, end)


def _arrowhead(source: Point, tip: Point, size: float = 8.0) -> str:
    dx, dy = tip[0] - source[0], tip[1] - source[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    bx, by = tip[0] - ux * size, tip[1] - uy * size
    left = (bx - uy * size / 2, by + ux * size / 2)
    right = (bx + uy * size / 2, by - ux * size / 2)
    return (
        f'<path d="M{tip[0]:.1f},{tip[1]:.1f} L{left[0]:.1f},{left[1]:.1f} L{right[0]:.1f},{right[1]:.1f} Z" '
        f'fill="{{color}}"/>'
    )


def _loop(centre: Point, box_width: float, offset: float) -> Tuple[str, Tuple[Point, Point, Point]]:
    """A relation from an entity to itself: a loop over its box."""
    x, top = centre[0] + offset, centre[1] - BOX_HEIGHT / 2
    x1, x2 = x - min(18.0, box_width / 4), x + min(18.0, box_width / 4)
    peak = top - LOOP_HEIGHT
    path = (
        f'<path d="M{x1:.1f},{top:.1f} C{x1 - 10:.1f},{peak:.1f} {x2 + 10:.1f},{peak:.1f} {x2:.1f},{top - 4:.1f}" '
        f'fill="none" stroke="{{color}}" stroke-width="1.6"/>' + _arrowhead((x2 + 6, top - 20), (x2, top - 1))
    )
    label_at = (x, peak + 8)
    return path, (label_at, label_at, label_at)
