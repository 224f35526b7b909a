"""The document-level entity graph: which entities a document talks about and how they
are related, joining the four HMTL layers (``docs/GRAPH.md`` has the rules in full).

* **Nodes**: one per coreference cluster, plus one per entity (``doc.ents`` and the
  overlapping ones), mention (``doc.spans["mentions"]``) or relation argument that does
  not fall into an existing node. A span *falls into* a node when it is one of the node's
  mentions, or has the same head token as one (``source.head_token``): "parser" falls
  into the node of "the parser". Spans are placed in document order, longest first.
* **Canonical name**: the text of the most informative mention: a proper name over a
  nominal over a pronoun, then a mention labelled by NER or the mention detector, then
  the longest, then the first.
* **Type**: the label most of the node's mentions carry (each mention's distinct
  entity and mention labels count once); ties go to the canonical mention's label, then
  to the label seen first. None when no mention is labelled.
* **Edges**: one per (head node, label, tail node), over every relation whose arguments
  fall into those nodes (a relation whose argument is a pronoun attaches to the pronoun's
  cluster, so to its antecedent). ``support`` lists the relations; ``score`` is their
  noisy-or ``1 - prod(1 - s_i)`` (more evidence, more confidence), ``max_score`` the best.

The graph is plain data underneath (``EntityGraph.data``: dicts, lists, ints, floats and
strings; ``to_dict``/``from_dict``), so it pickles and goes into JSON as it is; the
dataclasses (``GraphNode``, ``GraphEdge``, ``GraphMention``) are read-only views. It is a
function of the doc's layers, so it survives every round trip they survive.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

from spacy.tokens import Doc, Span

from ..annotations import MENTIONS_KEY
from .source import KIND_RANK, DocLayers, TokenSpan, head_token, layers_from_doc, layers_from_json, span_kind

GRAPH_VERSION = 1
SCORE_DIGITS = 6
# Where a span came from, in the order they are placed.
SOURCES = ("coref", "entities", "mentions", "relations")


@dataclass(frozen=True)
class GraphMention:
    """A mention of a node: token and character offsets (ends exclusive), text, kind
    (``proper``/``nominal``/``pronoun``), the labels it carries and the layers it comes from."""

    start: int
    end: int
    start_char: int
    end_char: int
    text: str
    kind: str
    labels: Tuple[str, ...]
    sources: Tuple[str, ...]

    def span(self, doc: Doc) -> Span:
        """The mention as a Span of ``doc`` (the doc the graph was built from)."""
        return doc[self.start:self.end]


@dataclass(frozen=True)
class GraphNode:
    """An entity: canonical name, type, kind, its cluster's index in
    ``doc._.coref_clusters`` (None for a stand-alone span) and all its mentions."""

    id: int
    name: str
    type: Optional[str]
    kind: str
    cluster: Optional[int]
    canonical: int  # index of the canonical mention in ``mentions``
    mentions: Tuple[GraphMention, ...]
    type_votes: Dict[str, int]

    @property
    def canonical_mention(self) -> GraphMention:
        return self.mentions[self.canonical]


@dataclass(frozen=True)
class RelationSupport:
    """One relation mention behind an edge: its argument spans (``start``, ``end``,
    ``start_char``, ``end_char``, ``text``) and score."""

    head: Dict[str, Any]
    tail: Dict[str, Any]
    score: float


@dataclass(frozen=True)
class GraphEdge:
    """A relation between two nodes (ids), aggregated over its supporting relations."""

    head: int
    tail: int
    label: str
    score: float
    max_score: float
    support: Tuple[RelationSupport, ...]


class EntityGraph:
    """A document's entity graph over plain data (see the module docstring).

    data (dict): ``{"version", "annotated", "nodes", "edges"}`` as ``to_dict`` returns it.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        if not isinstance(data, dict) or not {"nodes", "edges", "annotated"} <= set(data):
            raise ValueError("an entity graph is a dict with 'nodes', 'edges' and 'annotated'")
        self.data = data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "EntityGraph":
        return cls(data)

    def to_dict(self) -> Dict[str, Any]:
        """The plain data (the object itself: copy it before changing it)."""
        return self.data

    @property
    def annotated(self) -> Dict[str, bool]:
        """Which layers the doc was annotated for (``entities``, ``mentions``,
        ``relations``, ``coref``); a graph of a doc annotated for nothing is empty."""
        return dict(self.data["annotated"])

    @property
    def nodes(self) -> List[GraphNode]:
        return [_node_view(n) for n in self.data["nodes"]]

    @property
    def edges(self) -> List[GraphEdge]:
        return [_edge_view(e) for e in self.data["edges"]]

    def node(self, node_id: int) -> GraphNode:
        return _node_view(self.data["nodes"][node_id])

    def triples(self) -> Iterator[Tuple[str, str, str]]:
        """(head name, label, tail name) per edge."""
        names = [n["name"] for n in self.data["nodes"]]
        for edge in self.data["edges"]:
            yield names[edge["head"]], edge["label"], names[edge["tail"]]

    def __len__(self) -> int:
        return len(self.data["nodes"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntityGraph) and self.data == other.data

    def __repr__(self) -> str:
        return f"EntityGraph({len(self.data['nodes'])} nodes, {len(self.data['edges'])} edges)"


def _node_view(node: Dict[str, Any]) -> GraphNode:
    mentions = tuple(
        GraphMention(
            m["start"], m["end"], m["start_char"], m["end_char"], m["text"], m["kind"],
            tuple(m["labels"]), tuple(m["sources"]),
        )
        for m in node["mentions"]
    )
    return GraphNode(
        node["id"], node["name"], node["type"], node["kind"], node["cluster"], node["canonical"],
        mentions, dict(node["type_votes"]),
    )


def _edge_view(edge: Dict[str, Any]) -> GraphEdge:
    support = tuple(RelationSupport(dict(s["head"]), dict(s["tail"]), s["score"]) for s in edge["support"])
    return GraphEdge(edge["head"], edge["tail"], edge["label"], edge["score"], edge["max_score"], support)


# --- building -----------------------------------------------------------------------


def entity_graph(doc_or_data: Union[Doc, Dict[str, Any]], *, mentions_key: str = MENTIONS_KEY) -> EntityGraph:
    """The entity graph of a Doc, or of a document written by ``annotate`` (a
    ``doc_to_json`` dict; when it has a ``"graph"`` field, that graph is returned).

    doc_or_data (Union[Doc, dict]): the annotated document.
    mentions_key (str): the ``doc.spans`` key of the mentions (Doc input).
    RETURNS (EntityGraph): the graph; layers the doc is not annotated for add nothing.
    """
    if isinstance(doc_or_data, Doc):
        return build_entity_graph(layers_from_doc(doc_or_data, mentions_key=mentions_key))
    if isinstance(doc_or_data.get("graph"), dict):
        return EntityGraph(doc_or_data["graph"])
    return build_entity_graph(layers_from_json(doc_or_data))


def build_entity_graph(layers: DocLayers) -> EntityGraph:
    """The graph of a document's layers (see the module docstring for the rules)."""
    builder = _Builder(layers)
    for index, cluster in enumerate(layers.clusters or []):
        builder.add_cluster(index, cluster)
    labelled = [(s, e, label, "entities") for s, e, label in layers.entities or []]
    labelled += [(s, e, label, "mentions") for s, e, label in layers.mentions or []]
    for start, end, label, source in sorted(labelled, key=lambda x: (x[0], -x[1], SOURCES.index(x[3]))):
        builder.add_span((start, end), label, source)
    for hs, he, ts, te, label, score in layers.relations or []:
        head = builder.add_span((hs, he), "", "relations")
        tail = builder.add_span((ts, te), "", "relations")
        builder.add_relation(head, tail, label, (hs, he), (ts, te), score)
    return EntityGraph(builder.finish())


class _Builder:
    """Nodes as groups of spans, found by exact span or head token; edges by key."""

    def __init__(self, layers: DocLayers) -> None:
        self.layers = layers
        self.node_spans: List[List[TokenSpan]] = []
        self.clusters: List[Optional[int]] = []
        self.owner: Dict[TokenSpan, int] = {}  # mention span -> node
        self.by_head: Dict[int, List[TokenSpan]] = {}  # head token -> mention spans
        self.labels: Dict[TokenSpan, List[str]] = {}
        self.sources: Dict[TokenSpan, List[str]] = {}
        self.alias: Dict[TokenSpan, TokenSpan] = {}  # a span that fell into a mention -> that mention
        self.edges: Dict[Tuple[int, str, int], List[Dict[str, Any]]] = {}

    def add_cluster(self, index: int, cluster: Sequence[TokenSpan]) -> None:
        # Clusters are disjoint; data from elsewhere may not be: a span stays in its first.
        spans = [tuple(span) for span in cluster if tuple(span) not in self.owner]
        if not spans:
            return
        node = self._new_node(index)
        for span in dict.fromkeys(spans):
            self._add_mention(node, cast(Tuple[int, int], span), "coref")

    def add_span(self, span: TokenSpan, label: str, source: str) -> int:
        """Place a labelled span (label "" for none); return its node."""
        mention = self._find(span)
        if mention is None:
            node = self._new_node(None)
            self._add_mention(node, span, source)
            mention = span
        elif mention != span:
            self.alias[span] = mention
        if label and label not in self.labels[mention]:
            self.labels[mention].append(label)
        if source not in self.sources[mention]:
            self.sources[mention].append(source)
        return self.owner[mention]

    def add_relation(self, head: int, tail: int, label: str, head_span: TokenSpan, tail_span: TokenSpan,
                     score: float) -> None:
        support = {"head": self._span_json(head_span), "tail": self._span_json(tail_span),
                   "score": round(float(score), SCORE_DIGITS)}
        self.edges.setdefault((head, label, tail), []).append(support)

    def _find(self, span: TokenSpan) -> Optional[TokenSpan]:
        """The mention a span falls into: itself, an earlier alias, or the mention with
        the same head token that overlaps it most (then the earliest)."""
        if span in self.owner:
            return span
        if span in self.alias:
            return self.alias[span]
        head = head_token(self.layers.tokens, *span)
        candidates = self.by_head.get(head, [])
        if not candidates:
            return None
        return max(candidates, key=lambda m: (min(m[1], span[1]) - max(m[0], span[0]), -m[0], -m[1]))

    def _new_node(self, cluster: Optional[int]) -> int:
        self.node_spans.append([])
        self.clusters.append(cluster)
        return len(self.node_spans) - 1

    def _add_mention(self, node: int, span: TokenSpan, source: str) -> None:
        self.node_spans[node].append(span)
        self.owner[span] = node
        self.labels[span] = []
        self.sources[span] = [source]
        self.by_head.setdefault(head_token(self.layers.tokens, *span), []).append(span)

    def _span_json(self, span: TokenSpan) -> Dict[str, Any]:
        tokens = self.layers.tokens
        start_char, end_char = tokens[span[0]].start_char, tokens[span[1] - 1].end_char
        return {"start": span[0], "end": span[1], "start_char": start_char, "end_char": end_char,
                "text": self.layers.text[start_char:end_char]}

    def finish(self) -> Dict[str, Any]:
        """The plain graph: nodes in order of their first mention, ids 0, 1, ..."""
        order = sorted(range(len(self.node_spans)), key=lambda n: min(self.node_spans[n]))
        new_id = {old: new for new, old in enumerate(order)}
        nodes = [self._node_json(new_id[old], old) for old in order]
        edges = [self._edge_json(new_id[h], label, new_id[t], sup) for (h, label, t), sup in self.edges.items()]
        edges.sort(key=lambda e: (_first_support(e), e["label"], e["head"], e["tail"]))
        return {"version": GRAPH_VERSION, "annotated": self.layers.annotated, "nodes": nodes, "edges": edges}

    def _node_json(self, node_id: int, old: int) -> Dict[str, Any]:
        mentions = []
        for span in sorted(self.node_spans[old]):
            item = self._span_json(span)
            item["kind"] = span_kind(self.layers.tokens, *span)
            item["labels"] = list(self.labels[span])
            item["sources"] = sorted(self.sources[span], key=SOURCES.index)
            mentions.append(item)
        canonical = choose_canonical(mentions)
        votes = Counter(label for m in mentions for label in m["labels"])
        return {
            "id": node_id,
            "name": mentions[canonical]["text"],
            "type": choose_type(mentions, canonical, votes),
            "kind": mentions[canonical]["kind"],
            "cluster": self.clusters[old],
            "canonical": canonical,
            "type_votes": dict(votes),
            "mentions": mentions,
        }

    @staticmethod
    def _edge_json(head: int, label: str, tail: int, support: List[Dict[str, Any]]) -> Dict[str, Any]:
        support = sorted(support, key=lambda s: (s["head"]["start"], s["tail"]["start"], s["head"]["end"]))
        scores = [s["score"] for s in support]
        return {"head": head, "tail": tail, "label": label, "score": round(noisy_or(scores), SCORE_DIGITS),
                "max_score": max(scores), "support": support}


def _first_support(edge: Dict[str, Any]) -> Tuple[int, int]:
    first = edge["support"][0]
    return min(first["head"]["start"], first["tail"]["start"]), max(first["head"]["start"], first["tail"]["start"])


def choose_canonical(mentions: Sequence[Dict[str, Any]]) -> int:
    """Index of the most informative mention: kind (proper > nominal > pronoun), then
    labelled, then longest (tokens), then first."""
    return max(
        range(len(mentions)),
        key=lambda i: (KIND_RANK[mentions[i]["kind"]], bool(mentions[i]["labels"]),
                       mentions[i]["end"] - mentions[i]["start"], -i),
    )


def choose_type(mentions: Sequence[Dict[str, Any]], canonical: int, votes: Counter) -> Optional[str]:
    """The majority label; ties: the canonical mention's label, then the first seen."""
    if not votes:
        return None
    best = max(votes.values())
    tied = [label for label, count in votes.items() if count == best]  # in order of first appearance
    for label in mentions[canonical]["labels"]:
        if label in tied:
            return label
    return tied[0]


def noisy_or(scores: Sequence[float]) -> float:
    """``1 - prod(1 - s)``: the probability that at least one of independent pieces of
    evidence holds."""
    missing = 1.0
    for score in scores:
        missing *= 1.0 - min(max(float(score), 0.0), 1.0)
    return 1.0 - missing
