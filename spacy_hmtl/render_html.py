"""The HTML pieces of ``spacy_hmtl.render``: stable colours, and the displaCy sections of
the span layers (entities, mentions, coreference clusters).

Each section renderer takes one ``annotate`` line (``doc_json.doc_to_json``) whose layer is
not null and a ``tasks.RenderContext``; it is the ``render`` of its head's task
description. A section with nothing in it says "no ...".
"""
import html
import warnings
import zlib
from typing import Any, Dict

from .tasks import RenderContext


def label_color(label: str, lightness: int = 78) -> str:
    """A stable colour per label (the same in every section and every run)."""
    hue = zlib.crc32(label.encode("utf8")) % 360
    return f"hsl({hue}, 70%, {lightness}%)"


def cluster_color(index: int, lightness: int = 75) -> str:
    """Well separated colours for clusters 0, 1, 2, ... (golden-angle hues)."""
    hue = (index * 137.508 + 200) % 360
    return f"hsl({hue:.0f}, 75%, {lightness}%)"


def none_note(what: str) -> str:
    """The note of a layer that is annotated and empty: "no WHAT"."""
    return f'<p class="hmtl-none">no {what}</p>'


def displacy_markup(parsed: Dict[str, Any], style: str, options: Dict[str, Any]) -> str:
    """displaCy's markup of a manually parsed document (a fragment, never a page)."""
    from spacy import displacy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no entities/spans to visualise"
        return displacy.render(parsed, style=style, manual=True, page=False, jupyter=False, options=options)


def _label(span: Dict[str, Any]) -> str:
    # displaCy writes labels into the markup as they are.
    return html.escape(span.get("label") or "")


def render_entities(data: Dict[str, Any], ctx: RenderContext) -> str:
    """The ``entities`` of a line in displaCy's ``ent`` style."""
    colors = ctx.colors
    ents = [
        {"start": e["start_char"], "end": e["end_char"], "label": _label(e)} for e in data["entities"]
    ]
    labels = {e["label"] for e in ents}
    options = {"colors": {lab: colors.get(html.unescape(lab), label_color(html.unescape(lab))) for lab in labels}}
    markup = displacy_markup({"text": data["text"], "ents": ents, "title": None}, "ent", options)
    return markup if ents else markup + none_note("entities")


def render_mentions(data: Dict[str, Any], ctx: RenderContext) -> str:
    """The ``mentions`` of a line in displaCy's ``span`` style (nested and overlapping
    mentions stack), each with its score when it has one."""
    spans = []
    for m in data["mentions"]:
        label = _label(m) or "MENTION"
        if m.get("score") is not None:
            label += f"&nbsp;{m['score']:.2f}"  # one line: the label box is as wide as its token
        color = ctx.colors.get(m.get("label") or "", label_color(m.get("label") or "MENTION"))
        spans.append({"start_token": m["start_token"], "end_token": m["end_token"], "label": label, "color": color})
    options = {"colors": {s["label"]: s["color"] for s in spans}}
    tokens = [t["text"] for t in data["tokens"]]
    markup = displacy_markup({"text": data["text"], "tokens": tokens, "spans": spans}, "span", options)
    return markup if spans else markup + none_note("mentions")


def render_coref(data: Dict[str, Any], ctx: RenderContext) -> str:
    """The ``coref_clusters`` of a line in displaCy's ``span`` style, one colour and label
    (``C1``, ``C2``, ...) per cluster, and a legend."""
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
    markup = displacy_markup({"text": data["text"], "tokens": tokens, "spans": spans}, "span", {"colors": colors})
    if not clusters:
        return markup + none_note("coreference clusters")
    return markup + '<div class="hmtl-legend">' + "".join(legend) + "</div>"
