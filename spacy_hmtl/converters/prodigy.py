"""Prodigy JSONL -> .spacy: one Doc per accepted record, with entities, mentions,
relations and coreference (``ner.manual``, ``spans.manual``, ``rel.manual``,
``coref.manual`` and ``db-out`` output).

Each line is a task: ``text``; ``tokens`` (``text``, ``start``, ``end``, ``id``, ``ws``);
``spans`` (``start``/``end`` character offsets, ``token_start``/``token_end`` inclusive
token indices, ``label``); ``relations`` (``head``/``child`` token indices, ``head_span``/
``child_span`` span objects, ``label``); ``answer`` (accept, reject or ignore). Only
accepted records are converted (a record without ``answer``, e.g. a pre-annotated input
file, counts as accepted); rejected and ignored ones are counted in the summary.

Layers (see ``tool_layers``): spans go to entities and/or mentions (``span_layer``, or the
span's own ``"hmtl_layers"``); relations labelled with one of ``coref_labels`` (default
COREF, what ``coref.manual`` writes) form coreference clusters, the others are relation
records. A task without a ``spans`` key is not annotated for entities and mentions, one
without ``relations`` not for relations and coreference.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from .common import (
    ConversionSummary,
    Location,
    PathLike,
    check_span,
    convert_to_file,
    expect_int,
    expect_list,
    expect_str,
    iter_jsonl,
    note,
)
from .tool_layers import DEFAULT_COREF_LABELS, LAYERS, Link, ToolDoc, ToolSpan, finish_doc, gold_docs

ANSWERS = ("accept", "reject", "ignore")
# The key of a span's own layers, written by spacy_hmtl.exporters.prodigy.
LAYERS_KEY = "hmtl_layers"


def read_prodigy(
    path: PathLike,
    *,
    vocab: Optional[Vocab] = None,
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per accepted record of a Prodigy JSONL file.

    path: the .jsonl file (``prodigy db-out`` output, or a pre-annotated input file).
    span_layer: where spans go: "both" (entities and mentions), "entities" or "mentions".
    layers: the layers to read (names out of ``tool_layers.LAYERS``, or a comma-separated
        string); None or "auto": the layers some accepted record annotates.
    coref_labels: relation labels that are coreference links.
    summary: receives the counts of dropped records and items.
    RAISES ConversionError: malformed input, naming the file, line (and id) and problem.
    """
    vocab = vocab if vocab is not None else Vocab()
    tool_docs: List[ToolDoc] = []
    seen_keys: Set[str] = set()
    for loc, record in iter_jsonl(path):
        if not isinstance(record, dict):
            raise loc.error(f"expected a JSON object per line, got {type(record).__name__}")
        answer = record.get("answer")
        if answer is None:
            note(summary, "records without 'answer' (read as accepted)")
        elif answer not in ANSWERS:
            raise loc.error(f"'answer' must be one of {', '.join(ANSWERS)}, got {answer!r}")
        elif answer != "accept":
            note(summary, f"records answered {answer!r} (dropped)")
            continue
        tool_docs.append(_record_to_tool_doc(record, vocab, loc, seen_keys, Path(path).stem))
    if not tool_docs:
        raise Location(path).error("no accepted record (nothing to convert)")
    yield from gold_docs(tool_docs, layers, span_layer, coref_labels, summary)


def convert_prodigy(
    input_path: PathLike,
    output_path: PathLike,
    *,
    span_layer: str = "both",
    layers: Union[None, str, Sequence[str]] = None,
    coref_labels: Sequence[str] = DEFAULT_COREF_LABELS,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert a Prodigy JSONL file to a .spacy file (written atomically); the options
    are ``read_prodigy``'s.

    output_path: a .spacy file, or an existing directory (then <input stem>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    return convert_to_file(
        lambda summary: read_prodigy(
            input_path, span_layer=span_layer, layers=layers, coref_labels=coref_labels, summary=summary
        ),
        input_path,
        output_path,
        desc=f"prodigy {Path(input_path).name}",
        show_progress=show_progress,
        overwrite=overwrite,
    )


def _record_to_tool_doc(record: Dict[str, Any], vocab: Vocab, loc: Location, seen_keys: Set[str], stem: str) -> ToolDoc:
    doc_key = _doc_key(record, loc, stem)
    if doc_key in seen_keys:
        # Several annotators (or sessions) may have answered the same input: keep each.
        doc_key = f"{doc_key}#{loc.line}"
    seen_keys.add(doc_key)
    loc.doc = doc_key
    doc = finish_doc(_tokens_to_doc(record, vocab, loc), doc_key)
    tool_doc = ToolDoc(doc, loc)
    if "spans" in record:
        tool_doc.spans = [
            _span(item, f"span {i}", doc, loc) for i, item in enumerate(expect_list(record["spans"], "'spans'", loc))
        ]
    if "relations" in record:
        tool_doc.links = [
            _relation(item, f"relation {i}", tool_doc.spans or [], doc, loc)
            for i, item in enumerate(expect_list(record["relations"], "'relations'", loc))
        ]
    return tool_doc


def _doc_key(record: Dict[str, Any], loc: Location, stem: str) -> str:
    """The record's id: ``id`` (annotate's exports), ``meta.id``, the input hash, or the line."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    for value in (record.get("id"), meta.get("id"), record.get("_input_hash")):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return f"{stem}-{loc.line}"


def _tokens_to_doc(record: Dict[str, Any], vocab: Vocab, loc: Location) -> Doc:
    """The Doc of Prodigy's tokens (their ``ws`` gives the spaces), checked against ``text``."""
    text = expect_str(record.get("text"), "'text'", loc)
    if "tokens" not in record:
        raise loc.error("missing key 'tokens' (annotate with a manual recipe, or add tokens with Prodigy's add_tokens)")
    words: List[str] = []
    spaces: List[bool] = []
    for i, token in enumerate(expect_list(record["tokens"], "'tokens'", loc)):
        if not isinstance(token, dict):
            raise loc.error(f"token {i} must be an object with 'text' and 'ws'")
        word = expect_str(token.get("text"), f"token {i}: text", loc)
        if not word:
            raise loc.error(f"token {i} is empty")
        ws = token.get("ws")
        if not isinstance(ws, bool):
            raise loc.error(f"token {i}: 'ws' must be true or false, got {ws!r}")
        if token.get("id", i) != i:
            raise loc.error(f"token {i}: 'id' is {token.get('id')!r}, tokens must be in order")
        words.append(word)
        spaces.append(ws)
    if not words:
        raise loc.error("the record has no tokens")
    doc = Doc(vocab, words=words, spaces=spaces)
    if doc.text != text:
        raise loc.error("the tokens (with their 'ws') do not spell the record's 'text'")
    for token, item in zip(doc, record["tokens"]):
        if "start" in item and item["start"] != token.idx:
            raise loc.error(f"token {token.i}: 'start' {item['start']!r} is not its offset in the text ({token.idx})")
    return doc


def _span(item: Any, what: str, doc: Doc, loc: Location) -> ToolSpan:
    """A Prodigy span: token indices (``token_end`` inclusive), checked against the
    character offsets when both are given; character offsets alone must fall on tokens."""
    if not isinstance(item, dict):
        raise loc.error(f"{what} must be an object, got {type(item).__name__}")
    what = f"{what} {_describe(item)}"
    label = expect_str(item.get("label"), f"{what}: label", loc)
    if "token_start" in item or "token_end" in item:
        start = expect_int(item.get("token_start"), f"{what}: token_start", loc)
        end = expect_int(item.get("token_end"), f"{what}: token_end", loc) + 1
        check_span(start, end, len(doc), what, loc)
        span = doc[start:end]
        for key, value in (("start", span.start_char), ("end", span.end_char)):
            if key in item and item[key] != value:
                raise loc.error(f"{what}: '{key}' {item[key]!r} does not match its tokens (character {value})")
    else:
        start_char = expect_int(item.get("start"), f"{what}: start", loc)
        end_char = expect_int(item.get("end"), f"{what}: end", loc)
        char_span = doc.char_span(start_char, end_char)
        if char_span is None:
            raise loc.error(f"{what}: character offsets do not fall on token boundaries")
        start, end = char_span.start, char_span.end
    layers = item.get(LAYERS_KEY)
    if layers is not None:
        if not isinstance(layers, list) or not layers or not set(layers) <= {"entities", "mentions"}:
            raise loc.error(f"{what}: {LAYERS_KEY!r} must list 'entities' and/or 'mentions', got {layers!r}")
        layers = tuple(name for name in LAYERS if name in layers)
    return ToolSpan(start, end, label, layers)


def _relation(item: Any, what: str, spans: List[ToolSpan], doc: Doc, loc: Location) -> Link:
    """A relation between the spans ``head_span``/``child_span`` (or, without them, the
    spans whose last token is ``head``/``child``, as Prodigy's relations UI links them)."""
    if not isinstance(item, dict):
        raise loc.error(f"{what} must be an object, got {type(item).__name__}")
    label = expect_str(item.get("label"), f"{what}: label", loc)
    args = []
    for name in ("head", "child"):
        if f"{name}_span" in item:
            arg = _span(item[f"{name}_span"], f"{what}: {name}_span", doc, loc)
            args.append((arg.start, arg.end))
            continue
        index = expect_int(item.get(name), f"{what}: {name}", loc)
        check_span(index, index + 1, len(doc), f"{what}: {name}", loc)
        ends_here = [(s.start, s.end) for s in spans if s.end - 1 == index]
        args.append(min(ends_here, key=lambda se: se[0]) if ends_here else (index, index + 1))
    (hs, he), (ts, te) = args
    return hs, he, ts, te, label


def _describe(item: Dict[str, Any]) -> str:
    keys = ("token_start", "token_end", "label") if "token_start" in item else ("start", "end", "label")
    return "(" + ", ".join(f"{k}={item.get(k)!r}" for k in keys) + ")"



__all__ = ["ANSWERS", "LAYERS_KEY", "convert_prodigy", "read_prodigy"]
