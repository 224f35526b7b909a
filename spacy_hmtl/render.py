"""HTML rendering of annotated documents: a section per layer, and the entity graph.

``render(doc_or_docs)`` returns self-contained HTML (inline styles and SVG; no external
CSS, scripts or fonts), one block per document with a section per layer. The layers are
those of the registered tasks (``spacy_hmtl.tasks``: each task's ``render``), in task
order, then the entity graph:

* the layers of the heads, each drawn by its head's ``render.py`` (entities and mentions
  in displaCy's ``ent`` and ``span`` styles, relations as an SVG of arrows between their
  arguments, coreference clusters one colour each, with a legend), and the section of any
  head registered beside them;
* entity graph: the document's entities (canonical name, type) and the relations between
  them as an SVG drawing (``spacy_hmtl.graph``; a record's ``"graph"`` field when it has
  one, else built from its layers); shown when any layer the graph reads is annotated.

Both ``Doc`` objects and the JSON objects written by ``python -m spacy_hmtl annotate``
(``doc_to_json``) are accepted, so an annotated JSONL file can be rendered without the
model (``render_jsonl``; the ``render`` command is ``spacy_hmtl.render_command``). A layer
the document is not annotated for is left out; an annotated but empty layer says "none".
"""
import html
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .annotate_records import AnnotateError, RecordError
from .annotations import MENTIONS_KEY
from .doc_json import doc_to_json
from .render_html import MAX_ROW_WIDTH, cluster_color, label_color  # noqa: F401  (public re-export)
from .safe_io import xml_safe
from .tasks import GRAPH_LAYER, RenderContext, Task, registered_tasks

GRAPH_TITLE = "Entity graph"

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


def render_layers() -> Tuple[str, ...]:
    """The layers ``render`` can show, in order: each registered task's that has a
    renderer, then the entity graph ("graph")."""
    return tuple(task.layer for task in registered_tasks() if task.render is not None) + (GRAPH_LAYER,)


# --- entry points ---------------------------------------------------------------------


def render(
    doc_or_docs: Union[DocLike, Iterable[DocLike]],
    *,
    page: bool = True,
    layers: Optional[Sequence[str]] = None,
    colors: Optional[Dict[str, str]] = None,
    mentions_key: str = MENTIONS_KEY,
    titles: Optional[Sequence[Optional[str]]] = None,
    title: str = "spacy-hmtl",
    max_row_width: int = MAX_ROW_WIDTH,
) -> str:
    """Render documents' layers (entities, mentions, relations, coreference clusters, ...)
    and entity graphs as HTML.

    doc_or_docs: a Doc, a ``doc_to_json`` dict, or an iterable of them.
    page: a complete HTML page (else a fragment to embed; the fragment relies on no CSS
        but the page's own, so it looks plainer).
    layers: which of ``render_layers()`` to show ("entities", "mentions", "relations",
        "coref", ..., "graph"); default all.
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
    layers: Optional[Sequence[str]] = None,
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


def _check_layers(layers: Optional[Sequence[str]]) -> None:
    known = render_layers()
    unknown = [layer for layer in layers or () if layer not in known]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; expected some of {list(known)}")


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
    layers: Optional[Sequence[str]] = None,
    colors: Optional[Dict[str, str]] = None,
    heading: Optional[str] = None,
    max_row_width: int = MAX_ROW_WIDTH,
) -> str:
    """One document's block: a heading and a section per annotated layer.

    data: a document as written by ``doc_to_json``.
    layers: which layers to show, in this order (default ``render_layers()``; see ``render``).
    colors: label -> CSS colour, overriding the generated ones.
    heading: the block's heading (none when empty).
    max_row_width: width (px) at which the relation SVG starts a new row, where it can.
    RETURNS (str): the block's HTML.
    """
    context = RenderContext(colors or {}, max_row_width)
    tasks = {task.layer: task for task in registered_tasks()}
    sections = []
    for layer in render_layers() if layers is None else layers:
        section = _layer_section(layer, tasks.get(layer), data, context)
        if section is None:
            continue
        title, body = section
        sections.append(f'<section class="hmtl-layer hmtl-{layer}"><h3>{title}</h3>\n{body}\n</section>')
    if not sections:
        sections.append(f'<p>{html.escape(data.get("text", ""))}</p><p class="hmtl-none">no annotation</p>')
    head = f"<h2>{html.escape(heading)}</h2>\n" if heading else ""
    return f'<div class="hmtl-doc">\n{head}' + "\n".join(sections) + "\n</div>"


def _layer_section(
    layer: str, task: Optional[Task], data: Dict[str, Any], context: RenderContext
) -> Optional[Tuple[str, str]]:
    """The title and HTML of one layer's section (``task``: the task whose layer it is),
    or None when the document is not annotated for it (or nothing renders the layer)."""
    if layer == GRAPH_LAYER:
        return (GRAPH_TITLE, _render_graph(data, dict(context.colors))) if _has_graph(data) else None
    if task is None or task.render is None or data.get(task.json_key) is None:
        return None
    return task.title, task.render(data, context)


# --- the entity graph section ----------------------------------------------------------


def _has_graph(data: Dict[str, Any]) -> bool:
    """Whether the line has a graph, or a layer the graph is built from."""
    keys = [task.json_key for task in registered_tasks() if task.graph_role is not None] + [GRAPH_LAYER]
    return any(data.get(key) is not None for key in keys)


def _render_graph(data: Dict[str, Any], colors: Dict[str, str]) -> str:
    from .graph.draw import render_graph_svg
    from .graph.entity_graph import entity_graph

    try:
        return render_graph_svg(entity_graph(data).to_dict(), label_color=label_color, colors=colors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        # The other sections may still render a record the graph cannot be built from.
        return f'<p class="hmtl-none">no graph: malformed annotation ({html.escape(type(err).__name__)})</p>'


# --- annotated JSONL ---------------------------------------------------------------------


def render_jsonl(
    path: Union[str, Path], *, layers: Optional[Sequence[str]] = None, limit: Optional[int] = None, on_error: str = "skip"
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


def _render_record(data: Any, layers: Optional[Sequence[str]], index: int) -> Tuple[Optional[str], Optional[str]]:
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
