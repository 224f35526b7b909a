"""The entities section of ``render`` (the ``render`` of ``hmtl_ner``'s task description)."""
import html
from typing import Any, Dict

from ..render_html import displacy_markup, label_color, label_text, none_note
from ..tasks import RenderContext

def render_entities(data: Dict[str, Any], ctx: RenderContext) -> str:
    """The ``entities`` of a line in displaCy's ``ent`` style."""
    colors = ctx.colors
    ents = [
        {"start": e["start_char"], "end": e["end_char"], "label": label_text(e)} for e in data["entities"]
    ]
    labels = {e["label"] for e in ents}
    options = {"colors": {lab: colors.get(html.unescape(lab), label_color(html.unescape(lab))) for lab in labels}}
    markup = displacy_markup({"text": data["text"], "ents": ents, "title": None}, "ent", options)
    return markup if ents else markup + none_note("entities")
