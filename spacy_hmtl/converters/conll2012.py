"""CoNLL-2012 (``*_conll`` files: OntoNotes 5.0 named entities and coreference, and other
coreference corpora in that format) -> .spacy: one Doc per document part with
``doc.ents`` (also stored as typed mentions, as the CoNLL NER converter does), the
coreference clusters and the part-of-speech column as token tags.

A file holds parts ``#begin document (<name>); part <NNN>`` ... ``#end document``; a blank
line ends a sentence. Token lines have whitespace-separated columns: document id, part
number, word index (from 0 in its sentence), word, POS, parse bit, predicate lemma,
frameset, word sense, speaker, named entities, one column per predicate's arguments (their
number varies from sentence to sentence) and, last, coreference. Named entities use
brackets: ``(PERSON*`` opens an entity, ``*`` continues it, ``*)`` closes it, ``(PERSON)``
is a one-token entity. Coreference: ``(12`` opens a mention of cluster 12, ``12)`` closes
it, ``(12)`` is a one-token mention, ``|`` joins several, ``-`` is none. The Doc's key is
``<name>_<part>`` (the e2e-coref convention). PTB bracket tokens (``-LRB-`` ...) become
``(`` ``)`` ...; ``/.`` and ``/?`` (slash-escaped punctuation) become ``.`` and ``?``.

INPUT is a ``*_conll`` file or a directory searched recursively for them (e.g. the
``train`` directory of the CoNLL-2012 data); all parts go into one .spacy file.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..annotations import MENTIONS_KEY, set_coref_clusters
from .common import (
    ConversionError,
    ConversionSummary,
    LabeledSpan,
    Location,
    PathLike,
    check_outputs,
    dedupe,
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
from .scierc import PTB_BRACKETS

MIN_COLUMNS = 12
NE_COLUMN = 10
TOKEN_MAP = {**PTB_BRACKETS, "/.": ".", "/?": "?"}
_BEGIN = re.compile(r"^#begin document \(?(.*?)\)?(?:;\s*part\s+(\d+))?\s*$")
_NE_OPEN = re.compile(r"^\(([^()*\s]+)(\*)?(\))?$")
_COREF = re.compile(r"^(\()?(\d+)(\))?$")
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")


@dataclass
class _Part:
    """What has been read of one document part."""

    name: str
    part: Optional[int]
    line: int  # of its '#begin document'
    sentences: List[List[str]] = field(default_factory=lambda: [[]])
    tags: List[str] = field(default_factory=list)
    entities: List[LabeledSpan] = field(default_factory=list)
    open_entity: Optional[Tuple[int, str, int]] = None  # (start, label, line)
    open_mentions: Dict[int, List[Tuple[int, int]]] = field(default_factory=dict)  # cluster -> [(start, line)]
    clusters: Dict[int, List[Tuple[int, int]]] = field(default_factory=dict)
    n_columns: Optional[int] = None  # of the current sentence
    n_tokens: int = 0

    @property
    def key(self) -> str:
        return self.name if self.part is None else f"{self.name}_{self.part}"


def read_conll2012(
    path: PathLike, *, vocab: Optional[Vocab] = None, summary: Optional[ConversionSummary] = None
) -> Iterator[Doc]:
    """Yield one Doc per document part of a ``*_conll`` file, or of every such file under
    a directory (sorted by path).

    summary: receives notes about repaired input (duplicate coreference mentions dropped).
    RAISES ConversionError: malformed input, naming the file, line and problem.
    """
    vocab = vocab if vocab is not None else Vocab()
    seen: Dict[str, str] = {}
    for file_path in conll2012_files(path):
        for doc, where in _read_file(file_path, vocab, summary):
            key = doc._.hmtl_doc_key
            if key in seen:
                raise ConversionError(file_path, f"document {key!r} appears twice (first at {seen[key]})",
                                      line=where)
            seen[key] = f"{file_path}, line {where}"
            yield doc


def conll2012_files(path: PathLike) -> List[Path]:
    """The file itself, or the ``*_conll`` files under a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*_conll") if p.is_file())
        if not files:
            raise ConversionError(path, "no *_conll files in this directory")
        return files
    if not path.is_file():
        raise ConversionError(path, "file not found")
    return [path]


def convert_conll2012(
    input_path: PathLike,
    output_path: PathLike,
    *,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert CoNLL-2012 ``*_conll`` file(s) to one .spacy file (written atomically).

    input_path: a ``*_conll`` file or a directory holding them.
    output_path: a .spacy file, or an existing directory (then <input name>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    output = resolve_output_file(output_path, input_path)
    inputs = [input_path] + (conll2012_files(input_path) if Path(input_path).is_dir() else [])
    check_outputs([output], inputs, overwrite=overwrite)
    summary = ConversionSummary()
    reader = read_conll2012(input_path, summary=summary)
    docs = list(progress(reader, desc=f"conll2012 {Path(input_path).name}", show=show_progress))
    write_docbins({output: docs}, show_progress=show_progress)
    for doc in docs:
        summary.add_doc(doc)
    summary.outputs.append(str(output))
    return summary


def _read_file(path: Path, vocab: Vocab, summary: Optional[ConversionSummary]) -> Iterator[Tuple[Doc, int]]:
    """(Doc, line of its '#begin document') for each part of one file."""
    current: Optional[_Part] = None
    for line_no, line in enumerate(split_lines(read_text(path)), start=1):
        loc = Location(path, line=line_no, doc=current.key if current else None)
        if line.startswith("#begin document"):
            if current is not None:
                raise loc.error(f"'#begin document' inside document {current.key!r} (its '#end document' is missing)")
            current = _begin(line, loc)
        elif line.startswith("#end document"):
            if current is None:
                raise loc.error("'#end document' without '#begin document'")
            yield _finish(current, path, vocab, summary), current.line
            current = None
        elif not line.strip():
            if current is not None:
                _end_sentence(current, path)
        elif current is None:
            raise loc.error("token line outside '#begin document' ... '#end document'")
        else:
            _read_token(current, line, loc)
    if current is not None:
        raise Location(path, line=current.line, doc=current.key).error(
            "document is not closed by '#end document' (truncated file?)"
        )


def _begin(line: str, loc: Location) -> _Part:
    match = _BEGIN.match(line.strip())
    if match is None or not match.group(1).strip():
        raise loc.error(f"malformed '#begin document' line {line!r} (expected '#begin document (NAME); part NNN')")
    part = int(match.group(2)) if match.group(2) is not None else None
    return _Part(match.group(1).strip(), part, loc.line)


def _read_token(doc: _Part, line: str, loc: Location) -> None:
    columns = _COLUMN_SEPARATOR.split(line.strip(" \t"))
    sentence = doc.sentences[-1]
    if len(columns) < MIN_COLUMNS:
        raise loc.error(f"expected at least {MIN_COLUMNS} columns (CoNLL-2012), found {len(columns)}")
    if doc.n_columns is not None and len(columns) != doc.n_columns:
        raise loc.error(f"ragged columns: {len(columns)} columns where this sentence has {doc.n_columns}")
    doc.n_columns = len(columns)
    if columns[0] != doc.name:
        raise loc.error(f"document id {columns[0]!r} differs from the '#begin document' name {doc.name!r}")
    if doc.part is not None and (not columns[1].isdigit() or int(columns[1]) != doc.part):
        raise loc.error(f"part number {columns[1]!r} differs from the '#begin document' part {doc.part}")
    if columns[2] != str(len(sentence)):
        raise loc.error(f"word index {columns[2]!r} should be {len(sentence)} (position in the sentence)")
    word = columns[3]
    problem = whitespace_problem(word)
    if problem is not None:
        raise loc.error(f"token {word!r} {problem}")
    _read_entity(doc, columns[NE_COLUMN], loc)
    _read_coref(doc, columns[-1], loc)
    sentence.append(TOKEN_MAP.get(word, word))
    doc.tags.append(columns[4])
    doc.n_tokens += 1


def _read_entity(doc: _Part, value: str, loc: Location) -> None:
    """One named-entity field: ``*``, ``(LABEL*``, ``*)``, ``(LABEL)`` or ``(LABEL*)``."""
    i = doc.n_tokens
    if value == "*":
        return
    if value == "*)":
        if doc.open_entity is None:
            raise loc.error("named entity closes ('*)') but none is open")
        start, label, _ = doc.open_entity
        doc.entities.append((start, i + 1, label))
        doc.open_entity = None
        return
    match = _NE_OPEN.match(value)
    if match is None:
        raise loc.error(f"malformed named-entity field {value!r} (expected *, (LABEL*, *) or (LABEL))")
    if doc.open_entity is not None:
        raise loc.error(
            f"named entity {match.group(1)} opens inside {doc.open_entity[1]} (opened on line "
            f"{doc.open_entity[2]}); entities do not nest in CoNLL-2012"
        )
    if match.group(3):
        doc.entities.append((i, i + 1, match.group(1)))
    else:
        doc.open_entity = (i, match.group(1), loc.line)


def _read_coref(doc: _Part, value: str, loc: Location) -> None:
    """One coreference field: ``-`` or ``|``-joined ``(N``, ``N)``, ``(N)``."""
    value = value.strip()
    if value in ("-", "_", ""):
        return
    i = doc.n_tokens
    for part in value.split("|"):
        match = _COREF.match(part)
        if match is None or not (match.group(1) or match.group(3)):
            raise loc.error(f"malformed coreference field {value!r} (expected -, (N, N) or (N), joined by |)")
        cluster = int(match.group(2))
        if match.group(1):
            doc.open_mentions.setdefault(cluster, []).append((i, loc.line))
        if match.group(3):
            if not doc.open_mentions.get(cluster):
                raise loc.error(f"coreference mention of cluster {cluster} closes but was never opened")
            start, _ = doc.open_mentions[cluster].pop()
            doc.clusters.setdefault(cluster, []).append((start, i + 1))


def _end_sentence(doc: _Part, path: Path) -> None:
    if not doc.sentences[-1]:
        return
    if doc.open_entity is not None:
        start, label, line = doc.open_entity
        raise Location(path, line=line, doc=doc.key).error(
            f"named entity {label} is not closed by the end of its sentence"
        )
    doc.sentences.append([])
    doc.n_columns = None


def _finish(doc: _Part, path: Path, vocab: Vocab, summary: Optional[ConversionSummary]) -> Doc:
    _end_sentence(doc, path)
    for cluster, stack in doc.open_mentions.items():
        if stack:
            raise Location(path, line=stack[-1][1], doc=doc.key).error(
                f"coreference mention of cluster {cluster} is never closed"
            )
    sentences = [s for s in doc.sentences if s]
    loc = Location(path, line=doc.line, doc=doc.key)
    spacy_doc = make_doc(vocab, sentences, doc.key, loc)
    for token, tag in zip(spacy_doc, doc.tags):
        token.tag_ = tag
    set_entities(spacy_doc, doc.entities)
    set_spans(spacy_doc, MENTIONS_KEY, doc.entities)
    set_coref_clusters(spacy_doc, _clusters(doc, loc, summary), span_groups=False)
    return spacy_doc


def _clusters(doc: _Part, loc: Location, summary: Optional[ConversionSummary]) -> List[List[Tuple[int, int]]]:
    """The clusters in order of their ids; a mention may be in one cluster only."""
    owner: Dict[Tuple[int, int], int] = {}
    clusters = []
    for cluster_id in sorted(doc.clusters):
        mentions, dropped = dedupe(doc.clusters[cluster_id])
        if summary is not None:
            summary.note("duplicate coreference mentions dropped", dropped)
        for span in mentions:
            if span in owner:
                raise loc.error(
                    f"coreference mention [{span[0]}, {span[1]}) is in clusters {owner[span]} and {cluster_id}: "
                    "clusters must be disjoint"
                )
            owner[span] = cluster_id
        clusters.append(mentions)
    return clusters
