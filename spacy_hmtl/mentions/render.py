"""The mentions section of ``render`` (the ``render`` of ``hmtl_mentions``' task description)."""
from typing import Any, Dict

from ..render_html import displacy_markup, label_color, label_text, none_note
from ..tasks import RenderContext

def render_mentions(data: Dict[str, Any], ctx: RenderContext) -> str:
    """The ``mentions`` of a line in displaCy's ``span`` style (nested and overlapping
    mentions stack), each with its score when it has one."""
    spans = []
    for m in data["mentions"]:
        label = label_text(m) or "MENTION"
        if m.get("score") is not None:
            label += f"&nbsp;{m['score']:.2f}"  # one line: the label box is as wide as its token
        color = ctx.colors.get(m.get("label") or "", label_color(m.get("label") or "MENTION"))
        spans.append({"start_token": m["start_token"], "end_token": m["end_token"], "label": label, "color": color})
    options = {"colors": {s["label"]: s["color"] for s in spans}}
    tokens = [t["text"] for t in data["tokens"]]
    markup = displacy_markup({"text": data["text"], "tokens": tokens, "spans": spans}, "span", options)
    return markup if spans else markup + none_note("mentions")
