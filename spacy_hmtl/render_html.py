"""The HTML pieces every render section shares: stable colours, the "no ..." note and
displaCy's markup of a manually parsed document.

The sections themselves belong to the heads (``<head>/render.py``): each takes one
``annotate`` line (``doc_json.doc_to_json``) whose layer is not null and a
``tasks.RenderContext``, and is the ``render`` of its head's task description. A section
with nothing in it says "no ...".
"""
import html
import warnings
import zlib
from typing import Any, Dict

# Width (px) at which a drawing that grows with the text (the relation SVG) starts a new
# row: ``RenderContext.max_row_width``'s default.
MAX_ROW_WIDTH = 1000



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


def label_text(span: Dict[str, Any]) -> str:
    # displaCy writes labels into the markup as they are.
    return html.escape(span.get("label") or "")
