"""Writing entity graphs: JSON lines (one document's graph per line), CSV triples (one
row per edge, every document in one file) and GraphML (every document in one graph,
written by networkx: ``pip install "spacy-hmtl[graph]"``).

Every writer takes ``(doc_id, graph)`` pairs (``graph``: an ``EntityGraph`` or its plain
dict) and writes its file atomically (a temporary file moved into place). The files are
safe to open: a CSV cell taken from the documents that a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@``, TAB, CR first) starts with a single quote, and the
GraphML holds no character that XML 1.0 forbids (each is replaced by U+FFFD); see
``spacy_hmtl.safe_io``.
"""
import csv
import io
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ..safe_io import dumps_line, spreadsheet_safe, write_atomic, xml_safe
from .entity_graph import EntityGraph

DocId = Union[str, int]
GraphLike = Union[EntityGraph, Dict[str, Any]]
TRIPLE_FIELDS = (
    "doc_id", "head_id", "head", "head_type", "relation", "tail_id", "tail", "tail_type",
    "score", "max_score", "support",
)


def _data(graph: GraphLike) -> Dict[str, Any]:
    return graph.to_dict() if isinstance(graph, EntityGraph) else graph


def graph_record(doc_id: Optional[DocId], graph: GraphLike, text: Optional[str] = None) -> Dict[str, Any]:
    """One JSON line: ``{"id", "text" (when given), "graph"}``."""
    record: Dict[str, Any] = {"id": doc_id}
    if text is not None:
        record["text"] = text
    record["graph"] = _data(graph)
    return record


def graphs_to_jsonl(items: Iterable[Tuple[DocId, GraphLike]], texts: Optional[Dict[Any, str]] = None) -> str:
    """JSON lines, one ``graph_record`` per document."""
    texts = texts or {}
    return "".join(
        json.dumps(graph_record(doc_id, graph, texts.get(doc_id)), ensure_ascii=False) + "\n"
        for doc_id, graph in items
    )


def triple_rows(doc_id: DocId, graph: GraphLike) -> List[Dict[str, Any]]:
    """One row per edge: ``TRIPLE_FIELDS`` (node ids are the graph's; ``support`` is the
    number of relation mentions behind the edge)."""
    data = _data(graph)
    nodes = data["nodes"]
    rows = []
    for edge in data["edges"]:
        head, tail = nodes[edge["head"]], nodes[edge["tail"]]
        rows.append({
            "doc_id": doc_id, "head_id": head["id"], "head": head["name"], "head_type": head["type"] or "",
            "relation": edge["label"], "tail_id": tail["id"], "tail": tail["name"], "tail_type": tail["type"] or "",
            "score": edge["score"], "max_score": edge["max_score"], "support": len(edge["support"]),
        })
    return rows


def triples_to_csv(items: Iterable[Tuple[DocId, GraphLike]]) -> str:
    """CSV text (header + one row per edge of every document). Every text cell goes
    through ``spreadsheet_safe``: names, types, labels and ids come from the documents,
    and a cell such as ``=HYPERLINK(...)`` would run when the file is opened. The numbers
    (node ids, scores, support) are the graph's own and stay numbers."""
    buffer = io.StringIO(newline="")
    # CRLF (RFC 4180, the csv module's default): the writer quotes a cell holding either
    # character of its line terminator, so only then is a CR inside a name quoted.
    writer = csv.DictWriter(buffer, fieldnames=TRIPLE_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for doc_id, graph in items:
        for row in triple_rows(doc_id, graph):
            writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    return buffer.getvalue()


def _networkx() -> Any:
    try:
        import networkx
    except ImportError:
        raise ImportError(
            'GraphML export needs networkx: pip install "spacy-hmtl[graph]" (or networkx>=3)'
        ) from None
    return networkx


def to_networkx(items: Iterable[Tuple[DocId, GraphLike]], *, merge_names: bool = False) -> Any:
    """All documents' graphs as one ``networkx.MultiDiGraph``.

    Node keys are ``"<doc_id>:<node id>"``; with ``merge_names``, entities of the same
    type and name (case-insensitive) are one node across documents
    (``"<type>:<lower-cased name>"``). Node attributes: ``name``, ``type``, ``kind``,
    ``docs`` and ``mentions`` (how many); edge attributes: ``label``, ``score``,
    ``max_score``, ``support`` (how many), ``doc``. GraphML has no null: a missing type
    is "". Every string (keys included) goes through ``xml_safe``: a document's text may
    hold control characters that no XML file can carry.
    """
    nx = _networkx()
    out = nx.MultiDiGraph()
    for doc_id, graph in items:
        data = _data(graph)
        doc = xml_safe(str(doc_id))
        keys = [_node_key(doc, node, merge_names) for node in data["nodes"]]
        for key, node in zip(keys, data["nodes"]):
            _add_node(out, key, node, doc)
        for edge in data["edges"]:
            out.add_edge(
                keys[edge["head"]], keys[edge["tail"]], label=xml_safe(edge["label"]), score=float(edge["score"]),
                max_score=float(edge["max_score"]), support=len(edge["support"]), doc=doc,
            )
    return out


def _node_key(doc: str, node: Dict[str, Any], merge_names: bool) -> str:
    if merge_names:
        return xml_safe(f"{node['type'] or ''}:{' '.join(node['name'].lower().split())}")
    return f"{doc}:{node['id']}"


def _add_node(out: Any, key: str, node: Dict[str, Any], doc: str) -> None:
    if key in out:
        attrs = out.nodes[key]
        attrs["mentions"] += len(node["mentions"])
        if doc not in attrs["docs"].split(" "):
            attrs["docs"] += " " + doc
        return
    out.add_node(key, name=xml_safe(node["name"]), type=xml_safe(node["type"] or ""), kind=node["kind"], docs=doc,
                 mentions=len(node["mentions"]))


def graphml_text(items: Iterable[Tuple[DocId, GraphLike]], *, merge_names: bool = False) -> str:
    """GraphML (networkx's writer) of ``to_networkx(items)``."""
    nx = _networkx()
    return "\n".join(nx.generate_graphml(to_networkx(items, merge_names=merge_names))) + "\n"


def write_graph_jsonl(path: Union[str, Path], items: Iterable[Tuple[DocId, GraphLike]],
                      texts: Optional[Dict[Any, str]] = None) -> None:
    write_atomic(path, graphs_to_jsonl(items, texts).encode("utf8"))


def write_triples_csv(path: Union[str, Path], items: Iterable[Tuple[DocId, GraphLike]]) -> None:
    write_atomic(path, triples_to_csv(items).encode("utf8"))


def write_graphml(path: Union[str, Path], items: Iterable[Tuple[DocId, GraphLike]], *,
                  merge_names: bool = False) -> None:
    write_atomic(path, graphml_text(items, merge_names=merge_names).encode("utf8"))


def add_graph_to_line(line: str) -> str:
    """An ``annotate`` JSONL line with its document's graph added under ``"graph"``."""
    from .entity_graph import entity_graph

    data = json.loads(line)
    data.pop("graph", None)
    data["graph"] = entity_graph(data).to_dict()
    return dumps_line(data)
