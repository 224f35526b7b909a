"""``python -m spacy_hmtl graph INPUT --jsonl G.jsonl --csv T.csv --graphml G.graphml``:
the entity graphs of an annotated corpus, per document (JSON lines) and merged (CSV
triples, GraphML).

INPUT is what ``annotate`` wrote (JSONL; a line's ``"graph"`` field is used when it has
one, as ``annotate --output-format graph`` writes, else the graph is built from its
layers) or a ``.spacy`` file (a DocBin with user data, e.g. a converted corpus: gold
graphs). A line that is not a document stops the command with ``FILE:LINE: problem``
(exit status 1) before anything is written. Outputs are written atomically, never over
INPUT, and over an existing file only with ``--overwrite``; they are safe to open
(``spacy_hmtl.graph.export``: no formula in a CSV cell, no character XML forbids).
"""
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ..annotate_input import unicode_problem
from ..safe_io import output_problem, same_file
from .entity_graph import EntityGraph, entity_graph

DocId = Union[str, int]


class GraphCommandError(ValueError):
    """Bad input or output (the message names the file, and the line for JSONL)."""


def read_graphs(path: Union[str, Path]) -> Tuple[List[Tuple[DocId, EntityGraph]], Dict[DocId, str]]:
    """The ``(doc_id, graph)`` pairs of an annotated JSONL file or a ``.spacy`` file, and
    each document's text.

    RAISES GraphCommandError: a missing file, or a line that is not a document.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphCommandError(f"{path}: no such input file")
    pairs = list(_read_docbin(path) if path.suffix == ".spacy" else _read_jsonl(path))
    return [(doc_id, graph) for doc_id, graph, _ in pairs], {doc_id: text for doc_id, _, text in pairs}


def _read_docbin(path: Path) -> Iterator[Tuple[DocId, EntityGraph, str]]:
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    try:
        docs = list(DocBin(store_user_data=True).from_disk(path).get_docs(Vocab()))
    except Exception as err:
        raise GraphCommandError(f"{path}: not a readable .spacy file ({type(err).__name__}: {err})") from None
    for index, doc in enumerate(docs):
        key = doc._.get("hmtl_doc_key")
        yield (key if key is not None else index), entity_graph(doc), doc.text


def _read_jsonl(path: Path) -> Iterator[Tuple[DocId, EntityGraph, str]]:
    seen = set()
    with path.open("rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            data = _parse(raw, where)
            doc_id = data.get("id", lineno)
            if json.dumps(doc_id) in seen:
                raise GraphCommandError(f"{where}: id {doc_id!r} appears twice")
            seen.add(json.dumps(doc_id))
            try:
                graph = entity_graph(data)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                raise GraphCommandError(f"{where}: malformed annotation ({type(err).__name__}: {err})") from None
            yield doc_id, graph, data["text"]


def _parse(raw: bytes, where: str) -> Dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf8"))
    except UnicodeDecodeError as err:
        raise GraphCommandError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise GraphCommandError(f"{where}: not valid JSON ({err.msg}: column {err.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not isinstance(data.get("tokens"), list):
        raise GraphCommandError(f"{where}: not a document written by annotate (no 'text' and 'tokens')")
    if data.get("id") is not None and (isinstance(data["id"], bool) or not isinstance(data["id"], (str, int))):
        raise GraphCommandError(f"{where}: 'id' must be a string or an integer")
    # An escaped lone surrogate ("\\ud800") decodes, but no output file can hold it.
    problem = unicode_problem(json.dumps(data, ensure_ascii=False))
    if problem is not None:
        raise GraphCommandError(f"{where}: the record {problem}")
    return data


def export_graphs(
    input_path: Union[str, Path],
    *,
    jsonl: Optional[Union[str, Path]] = None,
    csv: Optional[Union[str, Path]] = None,
    graphml: Optional[Union[str, Path]] = None,
    merge_names: bool = False,
    overwrite: bool = False,
) -> Dict[str, int]:
    """Read INPUT and write the asked outputs; return counts (documents, nodes, edges).

    RAISES GraphCommandError: bad input, or an output that may not be written (checked
        before any work).
    """
    from .export import write_graph_jsonl, write_graphml, write_triples_csv

    outputs = [p for p in (jsonl, csv, graphml) if p is not None]
    if not outputs:
        raise GraphCommandError("nothing to write: give --jsonl, --csv and/or --graphml")
    _check_outputs([Path(p) for p in outputs], Path(input_path), overwrite)
    if graphml is not None:
        from .export import _networkx

        _networkx()  # fail before the work when networkx is missing
    items, texts = read_graphs(input_path)
    if jsonl is not None:
        write_graph_jsonl(jsonl, items, texts)
    if csv is not None:
        write_triples_csv(csv, items)
    if graphml is not None:
        write_graphml(graphml, items, merge_names=merge_names)
    return {
        "documents": len(items),
        "nodes": sum(len(g.data["nodes"]) for _, g in items),
        "edges": sum(len(g.data["edges"]) for _, g in items),
    }


def _check_outputs(outputs: List[Path], input_path: Path, overwrite: bool) -> None:
    for i, output in enumerate(outputs):
        problem = output_problem(output, [input_path], overwrite=overwrite)
        if problem is not None:
            raise GraphCommandError(f"{output}: {problem}")
        if any(same_file(output, other) for other in outputs[:i]):
            raise GraphCommandError(f"{output}: given for two outputs")


def add_graph(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="export the entity graphs of annotated documents (JSONL, CSV triples, GraphML)",
        description=(
            "Read what `annotate` wrote (JSONL) or a .spacy file and write each document's "
            "entity graph (nodes: entities with canonical name, type and mentions; edges: "
            "relations between entities) as JSON lines, and every document's edges as CSV "
            "triples and as one GraphML graph (needs networkx: the 'graph' extra). See docs/GRAPH.md."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help="annotate output (.jsonl) or a .spacy file")
    parser.add_argument("--jsonl", metavar="PATH", default=None, help="one graph per document, JSON lines")
    parser.add_argument("--csv", metavar="PATH", default=None, help="CSV triples, one row per edge")
    parser.add_argument("--graphml", metavar="PATH", default=None, help="GraphML of all documents")
    parser.add_argument("--merge-names", action="store_true",
                        help="GraphML: one node per (type, name) across documents")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(handler=run_graph, parser=parser)


def run_graph(args: Any) -> int:
    if args.jsonl is None and args.csv is None and args.graphml is None:
        args.parser.error("give at least one of --jsonl, --csv, --graphml")
    try:
        counts = export_graphs(
            args.input, jsonl=args.jsonl, csv=args.csv, graphml=args.graphml,
            merge_names=args.merge_names, overwrite=args.overwrite,
        )
    except (GraphCommandError, OSError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    written = ", ".join(str(p) for p in (args.jsonl, args.csv, args.graphml) if p is not None)
    print(f"{counts['documents']} documents, {counts['nodes']} entities, {counts['edges']} relations -> {written}")
    return 0
