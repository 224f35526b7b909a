"""CoNLL04 (SpERT JSON) -> .spacy: one Doc per sentence with entities, mentions and
relations.

The file is one JSON array of ``{"tokens", "entities": [{"type", "start", "end"}],
"relations": [{"type", "head", "tail"}], "orig_id"}``; entity ``end`` is exclusive and a
relation's ``head``/``tail`` index the sentence's ``entities`` list.
"""
import json
from pathlib import Path
from typing import Any, Iterator, List, Optional, Set

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..annotations import MENTIONS_KEY, set_relation_records
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
    json_problem,
    make_doc,
    read_text,
    set_entities,
    set_spans,
)


def read_conll04(
    path: PathLike,
    *,
    vocab: Optional[Vocab] = None,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per sentence of a SpERT-format JSON file.

    The doc key is ``conll04-<orig_id>`` (``<file stem>-<index>`` without an orig_id).
    RAISES ConversionError: malformed input, naming the file, sentence and problem.
    """
    vocab = vocab if vocab is not None else Vocab()
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise Location(path, line=err.lineno).error(json_problem(err)) from None
    if not isinstance(data, list):
        raise Location(path).error(f"expected a JSON array of sentences, got {type(data).__name__}")
    if not data:
        raise Location(path).error("file is empty (no sentences)")
    seen_keys: Set[str] = set()
    for index, record in enumerate(data):
        loc = Location(path, doc=f"sentence {index}")
        doc = _record_to_doc(record, index, Path(path).stem, vocab, loc, summary)
        if doc._.hmtl_doc_key in seen_keys:
            raise loc.error(f"orig_id {record.get('orig_id')!r} appears twice")
        seen_keys.add(doc._.hmtl_doc_key)
        yield doc


def convert_conll04(
    input_path: PathLike, output_path: PathLike, *, show_progress: bool = False, overwrite: bool = False
) -> ConversionSummary:
    """Convert a CoNLL04 SpERT JSON file to a .spacy file (written atomically).

    output_path: a .spacy file, or an existing directory (then <input stem>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    return convert_to_file(
        lambda summary: read_conll04(input_path, summary=summary),
        input_path,
        output_path,
        desc=f"conll04 {Path(input_path).name}",
        show_progress=show_progress,
        overwrite=overwrite,
    )


def _record_to_doc(
    record: Any,
    index: int,
    stem: str,
    vocab: Vocab,
    loc: Location,
    summary: Optional[ConversionSummary],
) -> Doc:
    if not isinstance(record, dict):
        raise loc.error(f"expected a JSON object, got {type(record).__name__}")
    for key in ("tokens", "entities", "relations"):
        if key not in record:
            raise loc.error(f"missing key {key!r}")
    orig_id = record.get("orig_id")
    if orig_id is not None:
        loc.doc = f"sentence {index} (orig_id {orig_id})"
        doc_key = f"conll04-{orig_id}"
    else:
        doc_key = f"{stem}-{index}"
    tokens = expect_list(record["tokens"], "'tokens'", loc)
    for token in tokens:
        expect_str(token, "a token", loc)
    doc = make_doc(vocab, [tokens], doc_key, loc)

    entities: List[LabeledSpan] = []
    for i, ent in enumerate(expect_list(record["entities"], "'entities'", loc)):
        what = f"entity {i} {ent!r}"
        if not isinstance(ent, dict) or not {"type", "start", "end"} <= set(ent):
            raise loc.error(f"{what} must be an object with 'type', 'start' and 'end'")
        start = expect_int(ent["start"], f"{what}: start", loc)
        end = expect_int(ent["end"], f"{what}: end", loc)
        check_span(start, end, len(doc), what, loc)
        entities.append((start, end, expect_str(ent["type"], f"{what}: type", loc)))
    unique, dropped = dedupe(entities)
    if summary is not None:
        summary.note("duplicate entities dropped", dropped)
    set_entities(doc, unique)
    set_spans(doc, MENTIONS_KEY, unique)

    relations = []
    for i, rel in enumerate(expect_list(record["relations"], "'relations'", loc)):
        what = f"relation {i} {rel!r}"
        if not isinstance(rel, dict) or not {"type", "head", "tail"} <= set(rel):
            raise loc.error(f"{what} must be an object with 'type', 'head' and 'tail'")
        args: List[Any] = []
        for name in ("head", "tail"):
            ent_index = expect_int(rel[name], f"{what}: {name}", loc)
            if not 0 <= ent_index < len(entities):
                raise loc.error(
                    f"{what}: {name} {ent_index} points at a missing entity (the sentence has {len(entities)})"
                )
            args.extend(entities[ent_index][:2])
        if args[:2] == args[2:]:
            raise loc.error(f"{what}: head and tail are the same entity (a relation links two different entities)")
        relations.append(args + [expect_str(rel["type"], f"{what}: type", loc), 1.0])
    relations, dropped = dedupe(relations)
    if summary is not None:
        summary.note("duplicate relations dropped", dropped)
    set_relation_records(doc, relations)
    return doc
