"""From mentions to facts: a document's entity graph, its resolved text, and exports.

* ``entity_graph(doc)`` -> ``EntityGraph``: one node per coreference cluster or
  stand-alone entity/mention (canonical name, type, mentions), one edge per (head entity,
  relation, tail entity) with its supporting relation mentions and an aggregated score.
* ``resolve_text(doc)`` -> ``ResolvedText``: pronouns (or every mention) replaced by their
  entity's canonical name, with offsets mapped back to the original text.
* ``spacy_hmtl.graph.export``: JSON lines, CSV triples, GraphML (networkx).

See ``docs/GRAPH.md``.
"""
from .entity_graph import (  # noqa: F401  (public re-export)
    EntityGraph,
    GraphEdge,
    GraphMention,
    GraphNode,
    RelationSupport,
    build_entity_graph,
    entity_graph,
    noisy_or,
)
from .resolve import Replacement, ResolvedText, resolve_text  # noqa: F401  (public re-export)
from .source import DocLayers, layers_from_doc, layers_from_json  # noqa: F401  (public re-export)

__all__ = [
    "DocLayers",
    "EntityGraph",
    "GraphEdge",
    "GraphMention",
    "GraphNode",
    "RelationSupport",
    "Replacement",
    "ResolvedText",
    "build_entity_graph",
    "entity_graph",
    "layers_from_doc",
    "layers_from_json",
    "noisy_or",
    "resolve_text",
]
