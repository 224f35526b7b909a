"""Plain CoNLL NER (CoNLL-2003, WNUT-17, ...) -> .spacy: doc.ents + mentions.

One token per line, whitespace-separated columns, the token in column 0 and the tag in
``tag_column`` (default: the last). Blank lines end sentences; ``-DOCSTART-`` lines start
documents; without them every ``n_sents`` sentences form a document. Tags follow IOB1,
IOB2 or BIOES (BILOU's L-/U- read as E-/S-); ``scheme="auto"`` detects which.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..annotations import MENTIONS_KEY
from .common import (
    ConversionSummary,
    LabeledSpan,
    Location,
    PathLike,
    check_outputs,
    make_doc,
    progress,
    read_text,
    resolve_output_file,
    set_entities,
    set_spans,
    split_lines,
    whitespace_problem,
    write_docbins,
)

SCHEMES = ("auto", "iob1", "iob2", "bioes")
DOCSTART = "-DOCSTART-"
_PREFIX_ALIASES = {"L": "E", "U": "S"}
# Columns are separated by spaces or tabs; other whitespace (U+00A0...) belongs to a column.
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")


@dataclass
class _Token:
    text: str
    prefix: str  # "O", "B", "I", "E" or "S"
    label: str
    line: int


Sentence = List[_Token]


def read_conll_ner(
    path: PathLike,
    *,
    tag_column: int = -1,
    scheme: str = "auto",
    n_sents: int = 10,
    vocab: Optional[Vocab] = None,
) -> Iterator[Doc]:
    """Yield Docs from a CoNLL NER file.

    tag_column: the column holding the tag (negative counts from the end).
    scheme: "iob1", "iob2", "bioes" or "auto" (detected from the tags).
    n_sents: sentences per doc when the file has no -DOCSTART- lines.
    RAISES ConversionError: ragged columns, bad tags or illegal transitions (file + line).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
    vocab = vocab if vocab is not None else Vocab()
    documents, has_docstart = _read_documents(path, tag_column)
    if scheme == "auto":
        scheme = detect_scheme([s for doc in documents for s in doc])
    if not has_docstart:
        sentences = [s for doc in documents for s in doc]
        documents = [sentences[i : i + n_sents] for i in range(0, len(sentences), n_sents)]
    stem = Path(path).stem
    for index, sentences in enumerate(d for d in documents if d):
        doc_key = f"{stem}-{index}"
        loc = Location(path, line=sentences[0][0].line, doc=doc_key)
        doc = make_doc(vocab, [[t.text for t in sent] for sent in sentences], doc_key, loc)
        entities: List[LabeledSpan] = []
        offset = 0
        for sentence in sentences:
            entities.extend((s + offset, e + offset, label) for s, e, label in _decode(sentence, scheme, path))
            offset += len(sentence)
        set_entities(doc, entities)
        set_spans(doc, MENTIONS_KEY, entities)
        yield doc


def convert_conll(
    input_path: PathLike,
    output_path: PathLike,
    *,
    tag_column: int = -1,
    scheme: str = "auto",
    n_sents: int = 10,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert a CoNLL NER file to a .spacy file (written atomically).

    output_path: a .spacy file, or an existing directory (then <input stem>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    output = resolve_output_file(output_path, input_path)
    check_outputs([output], [input_path], overwrite=overwrite)
    reader = read_conll_ner(input_path, tag_column=tag_column, scheme=scheme, n_sents=n_sents)
    docs = list(progress(reader, desc=f"conll {Path(input_path).name}", show=show_progress))
    write_docbins({output: docs}, show_progress=show_progress)
    summary = ConversionSummary(outputs=[str(output)])
    for doc in docs:
        summary.add_doc(doc)
    return summary


def detect_scheme(sentences: List[Sentence]) -> str:
    """BIOES if any E-/S- tag occurs; IOB1 if an I- tag ever starts an entity (after O
    or at a sentence start, which IOB2 forbids); else IOB2."""
    if any(t.prefix in ("E", "S") for sent in sentences for t in sent):
        return "bioes"
    for sentence in sentences:
        previous = "O"
        for token in sentence:
            if token.prefix == "I" and previous == "O":
                return "iob1"
            previous = token.prefix
    return "iob2"


def _read_documents(path: PathLike, tag_column: int) -> Tuple[List[List[Sentence]], bool]:
    """Parse the file into documents of sentences of tokens, checking the columns."""
    documents: List[List[Sentence]] = [[[]]]
    n_columns: Optional[int] = None
    has_docstart = False
    for line_no, line in enumerate(split_lines(read_text(path)), start=1):
        loc = Location(path, line=line_no)
        columns = _COLUMN_SEPARATOR.split(line.strip(" \t")) if line.strip() else []
        if not columns:
            if documents[-1][-1]:
                documents[-1].append([])
            continue
        if columns[0] == DOCSTART:
            has_docstart = True
            documents.append([[]])
            continue
        if n_columns is None:
            n_columns = len(columns)
            if n_columns < 2:
                raise loc.error("expected at least 2 columns (token and tag), found 1")
            if not -n_columns <= tag_column < n_columns:
                raise loc.error(f"tag column {tag_column} does not exist (the file has {n_columns} columns)")
        elif len(columns) != n_columns:
            raise loc.error(f"ragged columns: {len(columns)} columns where the file has {n_columns}")
        problem = whitespace_problem(columns[0])
        if problem is not None:
            raise loc.error(f"token {columns[0]!r} {problem}")
        prefix, label = _parse_tag(columns[tag_column], loc)
        documents[-1][-1].append(_Token(columns[0], prefix, label, line_no))
    for doc in documents:
        if doc and not doc[-1]:
            doc.pop()
    if n_columns is None:
        raise Location(path).error("file has no tokens")
    return documents, has_docstart


def _parse_tag(tag: str, loc: Location) -> Tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    prefix = _PREFIX_ALIASES.get(prefix, prefix)
    if not sep or not label or prefix not in ("B", "I", "E", "S"):
        raise loc.error(f"malformed tag {tag!r} (expected O or B-/I-/E-/S-/L-/U- + label)")
    return prefix, label


def _decode(sentence: Sentence, scheme: str, path: PathLike) -> List[LabeledSpan]:
    """Entity spans (sentence offsets) of one sentence; illegal transitions raise."""
    entities: List[LabeledSpan] = []
    start: Optional[int] = None  # start of the open entity
    label = ""
    for i, token in enumerate(sentence):
        loc = Location(path, line=token.line)
        tag = _tag_name(token)
        after = "sentence start" if i == 0 else _tag_name(sentence[i - 1])
        if scheme != "bioes" and token.prefix in ("E", "S"):
            raise loc.error(f"tag {tag} is not allowed in {scheme.upper()} (use --scheme bioes)")
        continues = start is not None and token.label == label
        if scheme == "bioes":
            if token.prefix in ("I", "E") and not continues:
                raise loc.error(f"illegal transition in BIOES: {tag} after {after} (no open {token.label} entity)")
            if token.prefix in ("B", "S", "O") and start is not None:
                raise loc.error(f"illegal transition in BIOES: {tag} after {after} (the entity was not closed with E-)")
        elif scheme == "iob2" and token.prefix == "I" and not continues:
            raise loc.error(
                f"illegal transition in IOB2: {tag} after {after} (I- must continue a {token.label} entity)"
            )
        # Close the open entity unless this token continues it.
        if start is not None and not (token.prefix in ("I", "E") and continues):
            entities.append((start, i, label))
            start = None
        if token.prefix in ("B", "S") or (token.prefix == "I" and start is None):
            start, label = i, token.label
        if token.prefix in ("E", "S"):
            entities.append((start, i + 1, label))
            start = None
    if start is not None:
        if scheme == "bioes":
            raise Location(path, line=sentence[-1].line).error(
                f"illegal transition in BIOES: the sentence ends inside a {label} entity (not closed with E-)"
            )
        entities.append((start, len(sentence), label))
    return entities


def _tag_name(token: _Token) -> str:
    return "O" if token.prefix == "O" else f"{token.prefix}-{token.label}"
