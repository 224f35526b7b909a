"""What an entity graph is built from: one document's tokens and annotation layers as
plain data, read from a ``Doc`` or from the JSON that ``annotate`` writes
(``spacy_hmtl.doc_json.doc_to_json``), plus the two word-level judgements the graph makes
on a span: its *kind* (proper name, nominal or pronoun) and its *head token*.

Both judgements use the doc's part-of-speech tags or dependency parse when it has them
(a pipeline with a tagger/parser; CoNLL-2012 corpora carry PTB tags) and simple
heuristics otherwise (capitalisation, a pronoun list, a list of linking words): HMTL
pipelines have no tagger, and the JSON of ``annotate`` keeps no tags.
"""
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..annotations import (
    ENTS_OVERFLOW_KEY,
    MENTIONS_KEY,
    get_coref_clusters,
    get_relation_records,
    has_mention_annotation,
    has_ner_annotation,
)

TokenSpan = Tuple[int, int]  # (start, end) token offsets, end exclusive
LabeledSpan = Tuple[int, int, str]
RelationTuple = Tuple[int, int, int, int, str, float]

PROPER, NOMINAL, PRONOUN = "proper", "nominal", "pronoun"
# How informative a mention's kind is, for choosing a node's canonical name.
KIND_RANK = {PROPER: 2, NOMINAL: 1, PRONOUN: 0}

PRONOUNS = frozenset(
    """i me my mine myself we us our ours ourselves you your yours yourself yourselves he him
    his himself she her hers herself it its itself they them their theirs themselves one oneself
    this that these those who whom whose which""".split()
)
# Possessive forms: resolved text writes "<name>'s" for them. "her" is left out (object or
# possessive: only a PRP$ tag or a poss dependency says which).
POSSESSIVE_PRONOUNS = frozenset("my our your his its their whose".split())
# Relative and demonstrative pronouns: replaced in resolved text never (the result would
# not read as a sentence: "the parser, the parser works").
UNRESOLVED_PRONOUNS = frozenset("who whom whose which that this these those".split())
PRONOUN_TAGS = frozenset(["PRP", "PRP$", "WP", "WP$"])
PROPER_TAGS = frozenset(["NNP", "NNPS"])
# A span's head (without a parse) is its last word before the first of these (after its
# first token): "the president of France" -> "president".
LINKING_WORDS = frozenset(
    """of in on at for with by from to into onto about as over under between through during
    without within against among via per than and or but nor that which who whom whose where
    when , ; : ( ) [ ] { } - -- " ' `` ''""".split()
)
LINKING_POS = frozenset(["ADP", "CCONJ", "SCONJ", "PUNCT"])
LINKING_TAGS = frozenset(["IN", "CC", "TO", "WDT", "WP", "WP$", ",", ":", "-LRB-", "-RRB-", "``", "''", "HYPH"])
SENTENCE_END = frozenset([".", "!", "?"])


@dataclass(frozen=True)
class TokenInfo:
    """One token: text, character offsets, and what the doc knows about it."""

    text: str
    start_char: int
    end_char: int
    sent_start: bool
    pos: str = ""  # universal POS ("" when the doc has none)
    tag: str = ""  # fine-grained tag, e.g. PTB ("" when the doc has none)
    head: Optional[int] = None  # index of the syntactic head (None without a parse)
    name_like: bool = False  # capitalised as a name (set by ``mark_names``)


@dataclass
class DocLayers:
    """A document's text, tokens and annotation layers (None = not annotated)."""

    text: str
    tokens: List[TokenInfo]
    entities: Optional[List[LabeledSpan]]
    mentions: Optional[List[LabeledSpan]]
    relations: Optional[List[RelationTuple]]
    clusters: Optional[List[List[TokenSpan]]]

    @property
    def annotated(self) -> Dict[str, bool]:
        """Which of the four layers the document is annotated for."""
        return {
            "entities": self.entities is not None,
            "mentions": self.mentions is not None,
            "relations": self.relations is not None,
            "coref": self.clusters is not None,
        }


# --- reading ------------------------------------------------------------------------


def layers_from_doc(doc: Doc, *, mentions_key: str = MENTIONS_KEY) -> DocLayers:
    """The layers of a Doc. Entities are ``doc.ents`` plus ``doc.spans["ents_overlapping"]``.

    doc (Doc): the annotated doc.
    mentions_key (str): the ``doc.spans`` key of the mentions.
    RETURNS (DocLayers): plain data.
    """
    has_sents = len(doc) > 0 and doc.has_annotation("SENT_START")
    has_pos, has_tag, has_dep = (doc.has_annotation(a) for a in ("POS", "TAG", "DEP"))
    tokens = []
    for token in doc:
        sent_start = bool(token.is_sent_start) if has_sents else _after_sentence_end(doc, token.i)
        tokens.append(
            TokenInfo(
                token.text,
                token.idx,
                token.idx + len(token.text),
                sent_start or token.i == 0,
                token.pos_ if has_pos else "",
                token.tag_ if has_tag else "",
                token.head.i if has_dep else None,
            )
        )
    entities = None
    if has_ner_annotation(doc):
        overflow = list(doc.spans[ENTS_OVERFLOW_KEY]) if ENTS_OVERFLOW_KEY in doc.spans else []
        entities = sorted((s.start, s.end, s.label_) for s in list(doc.ents) + overflow)
    mentions = None
    if has_mention_annotation(doc, mentions_key):
        mentions = sorted((s.start, s.end, s.label_) for s in doc.spans[mentions_key])
    records = get_relation_records(doc)
    relations = None if records is None else [_relation_tuple(r) for r in records]
    return DocLayers(doc.text, mark_names(tokens), entities, mentions, relations, get_coref_clusters(doc))


def layers_from_json(data: Dict[str, Any]) -> DocLayers:
    """The layers of a document as ``doc_to_json`` writes it (``annotate``'s JSONL lines).

    Sentence starts are guessed (the first token and tokens after ". ! ?"); there are no
    tags. RAISES (KeyError, TypeError, ValueError): a malformed record.
    """
    raw_tokens = data["tokens"]
    tokens = []
    for i, tok in enumerate(raw_tokens):
        previous = raw_tokens[i - 1]["text"] if i else ""
        tokens.append(
            TokenInfo(str(tok["text"]), int(tok["start"]), int(tok["end"]), i == 0 or previous in SENTENCE_END)
        )
    n = len(tokens)

    def spans(key: str) -> Optional[List[LabeledSpan]]:
        if data.get(key) is None:
            return None
        return sorted((*_token_span(s, n), s.get("label") or "") for s in data[key])

    relations = None
    if data.get("relations") is not None:
        relations = [
            (*_token_span(r["head"], n), *_token_span(r["tail"], n), str(r["label"]), float(r.get("score", 1.0)))
            for r in data["relations"]
        ]
    clusters = None
    if data.get("coref_clusters") is not None:
        clusters = [[_token_span(m, n) for m in cluster] for cluster in data["coref_clusters"]]
    return DocLayers(str(data["text"]), mark_names(tokens), spans("entities"), spans("mentions"), relations, clusters)


def mark_names(tokens: List[TokenInfo]) -> List[TokenInfo]:
    """Set ``name_like`` on tokens capitalised as names: an upper-case first letter inside
    a sentence, an upper-case letter after the first ("BERT", "McCarthy"), or, at the start
    of a sentence, a word the document also capitalises inside a sentence ("Smith")."""
    inside = {t.text for t in tokens if not t.sent_start and t.text[:1].isupper()}
    marked = []
    for token in tokens:
        text = token.text
        name_like = text[:1].isupper() and text.lower() not in PRONOUNS and (
            not token.sent_start or any(c.isupper() for c in text[1:]) or text in inside
        )
        marked.append(replace(token, name_like=name_like))
    return marked


def _token_span(span: Dict[str, Any], n_tokens: int) -> TokenSpan:
    start, end = int(span["start_token"]), int(span["end_token"])
    if not 0 <= start < end <= n_tokens:
        raise ValueError(f"span [{start}, {end}) is outside the document ({n_tokens} tokens)")
    return start, end


def _relation_tuple(record: Sequence[Any]) -> RelationTuple:
    hs, he, ts, te, label, score = record
    return int(hs), int(he), int(ts), int(te), str(label), float(score)


def _after_sentence_end(doc: Doc, i: int) -> bool:
    return i == 0 or doc[i - 1].text in SENTENCE_END


# --- kinds and heads ------------------------------------------------------------------


def token_is_pronoun(token: TokenInfo) -> bool:
    if token.pos:
        return token.pos == "PRON"
    if token.tag:
        return token.tag in PRONOUN_TAGS
    return token.text.lower() in PRONOUNS


def token_is_proper(token: TokenInfo) -> bool:
    """PROPN / NNP(S) when tagged; else capitalised as a name (``mark_names``)."""
    if token.pos:
        return token.pos == "PROPN"
    if token.tag:
        return token.tag in PROPER_TAGS
    return token.name_like


def span_kind(tokens: Sequence[TokenInfo], start: int, end: int) -> str:
    """``"pronoun"`` when every token is a pronoun, ``"proper"`` when a token is a proper
    name, else ``"nominal"``."""
    words = tokens[start:end]
    if all(token_is_pronoun(t) for t in words):
        return PRONOUN
    if any(token_is_proper(t) for t in words):
        return PROPER
    return NOMINAL


def is_possessive(tokens: Sequence[TokenInfo], start: int, end: int) -> bool:
    """A one-token possessive pronoun (PRP$/WP$ when tagged, else "his", "its", ...)."""
    if end - start != 1:
        return False
    token = tokens[start]
    if token.tag:
        return token.tag in ("PRP$", "WP$")
    return token.text.lower() in POSSESSIVE_PRONOUNS


def is_resolvable_pronoun(tokens: Sequence[TokenInfo], start: int, end: int) -> bool:
    """A pronoun mention that resolved text replaces (not relative or demonstrative)."""
    if span_kind(tokens, start, end) != PRONOUN:
        return False
    return not any(t.text.lower() in UNRESOLVED_PRONOUNS for t in tokens[start:end])


def head_token(tokens: Sequence[TokenInfo], start: int, end: int) -> int:
    """The head token of a span: its dependency root when the doc is parsed; else the
    last word before the first linking word (preposition, conjunction, relative pronoun,
    punctuation) after the span's first token, or the last word of the span."""
    if tokens[start].head is not None:
        return _dependency_root(tokens, start, end)
    head = start
    for i in range(start, end):
        if i > start and _is_linking(tokens[i]):
            break
        if not _is_punct(tokens[i]):
            head = i
    return head


def _dependency_root(tokens: Sequence[TokenInfo], start: int, end: int) -> int:
    for i in range(start, end):
        head = tokens[i].head
        if head is None or head == i or not start <= head < end:
            return i
    return end - 1


def _is_linking(token: TokenInfo) -> bool:
    if token.pos:
        return token.pos in LINKING_POS
    if token.tag:
        return token.tag in LINKING_TAGS
    return token.text.lower() in LINKING_WORDS


def _is_punct(token: TokenInfo) -> bool:
    if token.pos:
        return token.pos == "PUNCT"
    return not any(c.isalnum() for c in token.text)
