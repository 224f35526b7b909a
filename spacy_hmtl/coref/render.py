"""The coreference section of ``render`` (the ``render`` of ``hmtl_coref``'s task description)."""
import html
from typing import Any, Dict

from ..render_html import cluster_color, displacy_markup, none_note
from ..tasks import RenderContext

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
