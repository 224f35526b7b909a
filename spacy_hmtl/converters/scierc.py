"""SciERC (DyGIE JSON lines) -> .spacy: one Doc per abstract with entities, mentions,
relations and coreference clusters.

Each line is ``{"doc_key", "sentences", "ner", "relations", "clusters"}``; offsets are
document-level token indices with an *inclusive* end. ``ner``/``relations`` hold one list
per sentence. A missing ``ner``/``relations``/``clusters`` key means the layer is not
annotated (other DyGIE corpora lack some), an empty list that it is annotated and empty.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..annotations import MENTIONS_KEY, set_coref_clusters, set_relation_records
from .common import (
    ConversionSummary,
    LabeledSpan,
    Location,
    PathLike,
    check_span,
    convert_to_file,
    dedupe,
    expect_int,
    expect_list,
    expect_str,
    iter_jsonl,
    make_doc,
    set_entities,
    set_spans,
)

# PTB escapes for brackets, mapped back so the text reads like what a user feeds the pipeline.
PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def read_scierc(
    path: PathLike,
    *,
    vocab: Optional[Vocab] = None,
    keep_ptb_brackets: bool = False,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per line of a DyGIE JSON-lines file.

    path: the .json(l) file.
    vocab: the vocab for the Docs (a fresh one by default).
    keep_ptb_brackets: keep -LRB- etc. instead of mapping them to ( ) [ ] { }.
    summary: receives notes about repaired input (exact duplicates dropped).
    RAISES ConversionError: malformed input, naming the file, line and problem.
    """
    vocab = vocab if vocab is not None else Vocab()
    seen_keys: Set[str] = set()
    for loc, record in iter_jsonl(path):
        doc = _record_to_doc(record, vocab, keep_ptb_brackets, loc, summary)
        key = doc._.hmtl_doc_key
        if key in seen_keys:
            raise loc.error(f"doc_key {key!r} appears twice")
        seen_keys.add(key)
        yield doc


def convert_scierc(
    input_path: PathLike,
    output_path: PathLike,
    *,
    keep_ptb_brackets: bool = False,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert a SciERC/DyGIE JSON-lines file to a .spacy file (written atomically).

    output_path: a .spacy file, or an existing directory (then <input stem>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    return convert_to_file(
        lambda summary: read_scierc(input_path, keep_ptb_brackets=keep_ptb_brackets, summary=summary),
        input_path,
        output_path,
        desc=f"scierc {Path(input_path).name}",
        show_progress=show_progress,
        overwrite=overwrite,
    )


def _record_to_doc(
    record: Any,
    vocab: Vocab,
    keep_ptb_brackets: bool,
    loc: Location,
    summary: Optional[ConversionSummary],
) -> Doc:
    if not isinstance(record, dict):
        raise loc.error(f"expected a JSON object per line, got {type(record).__name__}")
    if "doc_key" not in record:
        raise loc.error("missing key 'doc_key'")
    doc_key = record["doc_key"]
    if isinstance(doc_key, int) and not isinstance(doc_key, bool):
        doc_key = str(doc_key)
    loc.doc = expect_str(doc_key, "doc_key", loc)
    if "sentences" not in record:
        raise loc.error("missing key 'sentences'")
    sentences = expect_list(record["sentences"], "'sentences'", loc)
    for i, sentence in enumerate(sentences):
        for word in expect_list(sentence, f"sentence {i}", loc):
            expect_str(word, f"a token of sentence {i}", loc)
    if not keep_ptb_brackets:
        sentences = [[PTB_BRACKETS.get(word, word) for word in sent] for sent in sentences]
    doc = make_doc(vocab, sentences, loc.doc, loc)
    bounds = _sentence_bounds(sentences)

    entities: Optional[List[LabeledSpan]] = None
    if "ner" in record:
        entities = []
        for i, sent_ents in enumerate(_per_sentence(record, "ner", len(sentences), loc)):
            for ent in expect_list(sent_ents, f"ner[{i}]", loc):
                start, end, label = _labeled_span(ent, f"entity {ent!r} (ner[{i}])", len(doc), loc)
                if not bounds[i][0] <= start < end <= bounds[i][1]:
                    raise loc.error(
                        f"entity {ent!r} (ner[{i}]) lies outside sentence {i} (tokens "
                        f"{bounds[i][0]}-{bounds[i][1] - 1}); offsets must be document-level"
                    )
                entities.append((start, end, label))
        entities, dropped = dedupe(entities)
        _note(summary, "duplicate entities dropped", dropped)
        set_entities(doc, entities)
        set_spans(doc, MENTIONS_KEY, entities)

    if "relations" in record:
        # Without a 'ner' layer there is nothing to check the arguments against.
        entity_spans = None if entities is None else {(s, e) for s, e, _ in entities}
        relations = []
        for i, sent_rels in enumerate(_per_sentence(record, "relations", len(sentences), loc)):
            for rel in expect_list(sent_rels, f"relations[{i}]", loc):
                relations.append(_relation(rel, f"relation {rel!r} (relations[{i}])", entity_spans, len(doc), loc))
        relations, dropped = dedupe(relations)
        _note(summary, "duplicate relations dropped", dropped)
        set_relation_records(doc, relations)

    if "clusters" in record:
        set_coref_clusters(doc, _clusters(record["clusters"], len(doc), loc, summary), span_groups=False)
    return doc


def _clusters(value: Any, n_tokens: int, loc: Location, summary: Optional[ConversionSummary]) -> List[list]:
    """Coreference clusters as lists of (start, end); a mention may be in one cluster only."""
    clusters = []
    owner: Dict[Tuple[int, int], int] = {}  # mention -> the cluster it is in
    for i, cluster in enumerate(expect_list(value, "'clusters'", loc)):
        mentions = []
        if not expect_list(cluster, f"cluster {i}", loc):
            raise loc.error(f"cluster {i} is empty")
        for mention in cluster:
            what = f"coreference mention {mention!r} (cluster {i})"
            if not isinstance(mention, list) or len(mention) != 2:
                raise loc.error(f"{what} must be a [start, end] pair")
            start = expect_int(mention[0], f"{what}: start", loc)
            end = expect_int(mention[1], f"{what}: end", loc) + 1
            check_span(start, end, n_tokens, what, loc)
            if owner.get((start, end), i) != i:
                raise loc.error(f"{what} is also in cluster {owner[(start, end)]}: clusters must be disjoint")
            owner[(start, end)] = i
            mentions.append((start, end))
        mentions, dropped = dedupe(mentions)
        _note(summary, "duplicate coreference mentions dropped", dropped)
        clusters.append(mentions)
    return clusters


def _per_sentence(record: dict, key: str, n_sents: int, loc: Location) -> list:
    values = expect_list(record[key], repr(key), loc)
    if len(values) != n_sents:
        raise loc.error(f"{key!r} has {len(values)} lists but there are {n_sents} sentences")
    return values


def _labeled_span(item: Any, what: str, n_tokens: int, loc: Location) -> LabeledSpan:
    if not isinstance(item, list) or len(item) != 3:
        raise loc.error(f"{what} must be [start, end, label]")
    start = expect_int(item[0], f"{what}: start", loc)
    end = expect_int(item[1], f"{what}: end", loc) + 1  # inclusive -> exclusive
    label = expect_str(item[2], f"{what}: label", loc)
    check_span(start, end, n_tokens, what, loc)
    return start, end, label


def _relation(item: Any, what: str, entity_spans: Optional[Set[Tuple[int, int]]], n_tokens: int, loc: Location) -> list:
    if not isinstance(item, list) or len(item) != 5:
        raise loc.error(f"{what} must be [head_start, head_end, tail_start, tail_end, label]")
    hs, he, ts, te = (expect_int(v, f"{what}: offset", loc) for v in item[:4])
    label = expect_str(item[4], f"{what}: label", loc)
    for name, (start, end) in (("head", (hs, he + 1)), ("tail", (ts, te + 1))):
        check_span(start, end, n_tokens, f"{what}: {name}", loc)
        if entity_spans is not None and (start, end) not in entity_spans:
            raise loc.error(f"{what}: {name} [{start}, {end - 1}] is not one of the document's entities")
    if (hs, he) == (ts, te):
        raise loc.error(f"{what}: head and tail are the same span (a relation links two different spans)")
    return [hs, he + 1, ts, te + 1, label, 1.0]


def _sentence_bounds(sentences: List[List[str]]) -> List[Tuple[int, int]]:
    bounds = []
    start = 0
    for sentence in sentences:
        bounds.append((start, start + len(sentence)))
        start += len(sentence)
    return bounds


def _note(summary: Optional[ConversionSummary], what: str, count: int) -> None:
    if summary is not None:
        summary.note(what, count)
