"""Resolved text: a document's text with mentions replaced by their entity's canonical
name, and a mapping between the two texts' character offsets.

``resolve_text(doc)`` replaces each resolvable pronoun ("he", "it", "their"; not "which",
"that", "this": the result would not read) of a node whose canonical mention is not a
pronoun; ``mode="all"`` replaces every mention whose text differs from its node's name.
A possessive pronoun becomes ``<name>'s``. The replacement takes the case of the text it
replaces at its first letter ("It" -> "The parser", "it" -> "the parser"; proper names are
left as written). Where candidate mentions overlap, the one that starts first (then the
longest) is replaced and the others are left as they are.
"""
import bisect
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from spacy.tokens import Doc

from .entity_graph import EntityGraph, entity_graph
from .source import (
    PRONOUN,
    PROPER,
    DocLayers,
    TokenInfo,
    is_possessive,
    is_resolvable_pronoun,
    layers_from_doc,
    layers_from_json,
)

MODES = ("pronouns", "all")


@dataclass(frozen=True)
class Replacement:
    """One replaced mention: its offsets in the original and in the resolved text, the
    original text, what replaced it, and the node (id) it refers to."""

    start_char: int
    end_char: int
    resolved_start: int
    resolved_end: int
    text: str
    replacement: str
    node: int


@dataclass
class ResolvedText:
    """The resolved text with its replacements (in order) and the offset mapping."""

    text: str
    original: str
    replacements: List[Replacement]

    def to_original(self, start: int, end: Optional[int] = None) -> Tuple[int, int]:
        """Original character offsets of resolved offsets ``[start, end)`` (``end``
        defaults to ``start``). An offset inside a replacement maps to the whole mention
        it replaced."""
        end = start if end is None else end
        self._check(start, end, len(self.text))
        return self._map(start, end, from_resolved=True)

    def to_resolved(self, start: int, end: Optional[int] = None) -> Tuple[int, int]:
        """Resolved character offsets of original offsets ``[start, end)``; inside a
        replaced mention, the whole replacement."""
        end = start if end is None else end
        self._check(start, end, len(self.original))
        return self._map(start, end, from_resolved=False)

    def to_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "original": self.original, "replacements": [asdict(r) for r in self.replacements]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ResolvedText":
        return cls(data["text"], data["original"], [Replacement(**r) for r in data["replacements"]])

    @staticmethod
    def _check(start: int, end: int, length: int) -> None:
        if not 0 <= start <= end <= length:
            raise ValueError(f"offsets [{start}, {end}) are outside the text ({length} characters)")

    def _map(self, start: int, end: int, from_resolved: bool) -> Tuple[int, int]:
        # (source start, source end, target start, target end) of each replacement
        if from_resolved:
            spans = [(r.resolved_start, r.resolved_end, r.start_char, r.end_char) for r in self.replacements]
        else:
            spans = [(r.start_char, r.end_char, r.resolved_start, r.resolved_end) for r in self.replacements]
        return _map_offset(spans, start, is_end=False), _map_offset(spans, end, is_end=True)


def _map_offset(spans: List[Tuple[int, int, int, int]], pos: int, is_end: bool) -> int:
    """Map one offset through the replacements (sorted, non-overlapping)."""
    starts = [s[0] for s in spans]
    # the last replacement that starts before pos (at pos, for a start offset)
    i = bisect.bisect_left(starts, pos) - 1 if is_end else bisect.bisect_right(starts, pos) - 1
    if i < 0:
        return pos
    src_start, src_end, dst_start, dst_end = spans[i]
    if pos < src_end or (is_end and pos == src_end):
        return dst_end if is_end else dst_start
    return dst_end + (pos - src_end)


def resolve_text(
    doc_or_data: Union[Doc, Dict[str, Any]],
    graph: Optional[EntityGraph] = None,
    *,
    mode: str = "pronouns",
) -> ResolvedText:
    """The document's text with mentions replaced by their entity's canonical name.

    doc_or_data (Union[Doc, dict]): a Doc, or a document written by ``annotate``.
    graph (Optional[EntityGraph]): its graph (built here when not given).
    mode (str): "pronouns" (default) or "all" (every mention unlike the name).
    RETURNS (ResolvedText): the text, the replacements and the offset mapping. Only
        coreference gives a node several mentions: a doc without it comes back unchanged.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    layers = layers_from_doc(doc_or_data) if isinstance(doc_or_data, Doc) else layers_from_json(doc_or_data)
    graph = entity_graph(doc_or_data) if graph is None else graph
    chosen = _choose(_candidates(layers, graph, mode))
    parts: List[str] = []
    replacements: List[Replacement] = []
    pos = 0
    length = 0
    for start_char, end_char, replacement, node in chosen:
        copied = layers.text[pos:start_char]
        parts += [copied, replacement]
        length += len(copied)
        replacements.append(
            Replacement(start_char, end_char, length, length + len(replacement), layers.text[start_char:end_char],
                        replacement, node)
        )
        length += len(replacement)
        pos = end_char
    parts.append(layers.text[pos:])
    return ResolvedText("".join(parts), layers.text, replacements)


def _candidates(layers: DocLayers, graph: EntityGraph, mode: str) -> List[Tuple[int, int, str, int]]:
    """(start_char, end_char, replacement, node) of every mention the mode replaces."""
    tokens = layers.tokens
    found = []
    for node in graph.nodes:
        if len(node.mentions) < 2 or node.kind == PRONOUN:
            continue
        canonical = node.canonical_mention
        for i, m in enumerate(node.mentions):
            if i == node.canonical or m.text == node.name or _overlaps(m, canonical):
                continue
            if mode == "pronouns" and not is_resolvable_pronoun(tokens, m.start, m.end):
                continue
            if m.kind == PRONOUN and not is_resolvable_pronoun(tokens, m.start, m.end):
                continue
            name = _fit_case(node.name, m.text, node.kind == PROPER, tokens[canonical.start])
            if is_possessive(tokens, m.start, m.end):
                name += "'s"
            found.append((m.start_char, m.end_char, name, node.id))
    return found


def _overlaps(a: Any, b: Any) -> bool:
    return a.start < b.end and b.start < a.end


def _choose(candidates: List[Tuple[int, int, str, int]]) -> List[Tuple[int, int, str, int]]:
    """Non-overlapping candidates: the first to start (then the longest) wins."""
    chosen: List[Tuple[int, int, str, int]] = []
    for cand in sorted(candidates, key=lambda c: (c[0], -c[1])):
        if not chosen or cand[0] >= chosen[-1][1]:
            chosen.append(cand)
    return chosen


def _fit_case(name: str, replaced: str, proper: bool, name_first_token: TokenInfo) -> str:
    """The name with the case of the replaced text's first letter (proper names, and
    names whose first word is capitalised inside a sentence, stay as written)."""
    if not name:
        return name
    if replaced[:1].isupper():
        return name[0].upper() + name[1:]
    if proper or (name[:1].isupper() and not name_first_token.sent_start):
        return name
    return name[0].lower() + name[1:]
