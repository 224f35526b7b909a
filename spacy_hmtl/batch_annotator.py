"""Batch annotation: run a pipeline over a JSONL or plain-text file, write JSONL.

``python -m spacy_hmtl annotate MODEL INPUT OUTPUT`` reads documents, runs them through
``nlp.pipe`` and writes one JSON object per document (see ``doc_to_json``), in input order.

* Input: JSONL (one object per line, text under ``--text-key``, optional id under
  ``--id-key``; the line number when absent) or plain text (one document per line, id =
  line number). ``--format auto`` decides by extension: ``.jsonl``/``.ndjson``/``.json``
  are JSONL, anything else plain text. Blank lines are skipped (ids stay line numbers).
  The whole input is read and checked before anything runs.
* Bad records: a line that cannot be a document (not UTF-8, not JSON, no string text, a
  bad or repeated id, a lone surrogate) and a document the pipeline fails on (longer
  than ``nlp.max_length``, or any error) are reported with file, line, id and reason.
  ``--on-error skip`` (the default) leaves them out and lists them in the errors file
  (``OUTPUT`` with ``.errors.jsonl`` for its extension; ``--errors``), one JSON object
  per record (``file``, ``line``, ``id``, ``error``); every other record is annotated. A
  batch that fails is retried record by record, so only the bad record is lost. The exit
  status is then 3. ``--on-error stop`` stops at the first bad record (a bad line stops
  the run before any work), after writing the documents before it; exit status 1.
* Output: appended one batch at a time and flushed, so an interrupted run keeps every
  document it wrote. Re-running with the same OUTPUT resumes: the existing file is
  validated, a truncated last line (the mark of an interrupted write) is cut off, and the
  documents whose ids are already there are skipped; records that failed are tried
  again, and the errors file is rewritten by every run. Each output line holds its text:
  a line whose text differs from the input's text for the same id means the input was
  edited (for plain text, an inserted or deleted line shifts every later id), and the
  run is refused before any work. Written documents are never duplicated; ``--overwrite``
  starts from scratch. OUTPUT may not be INPUT, and nothing is written (nor an existing
  OUTPUT touched) before the model has loaded. A run holds an exclusive lock on OUTPUT
  (``safe_io.output_lock``): a second run on the same OUTPUT stops at once with an error,
  having read and changed nothing.
* ``--output-format graph`` adds each document's entity graph (``spacy_hmtl.graph``,
  built from the line's layers) under ``"graph"``; ``python -m spacy_hmtl graph`` turns
  such a file into CSV triples and GraphML.

The per-document conversion, ``doc_to_json``, is reusable on its own; ``read_input``,
``pipe_to_lines`` and ``annotate_file`` are what the distributed runner
(``spacy_hmtl.distributed``) shares with this single-process path. This module is the
library; the command's argument parsing and messages are ``spacy_hmtl.annotate_command``'s.
"""
import functools
import hashlib
import json
import os
import sys
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Set, TextIO, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span

from .annotations import (
    ENTS_OVERFLOW_KEY,
    MENTIONS_KEY,
    get_coref_clusters,
    get_relation_records,
    has_mention_annotation,
    has_ner_annotation,
)
from .safe_io import OutputLockedError, children_die_with_parent, dumps_line, output_lock, same_file

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
INPUT_FORMATS = ("auto", "jsonl", "text")
ON_ERROR = ("skip", "stop")
# "doc": the layers (doc_to_json); "graph": the layers plus the entity graph under "graph";
# "prodigy": a Prodigy task per document (spacy_hmtl.exporters).
OUTPUT_FORMATS = ("doc", "graph", "prodigy")
SCORE_DIGITS = 6
# Exit status of a run that skipped records (0: all done, 1: error, 2: usage).
EXIT_SKIPPED = 3
# Bad records printed on stderr; the errors file lists them all.
MAX_PRINTED_ERRORS = 20

DocId = Union[str, int]
# (id, text, line number in the input)
InputRecord = Tuple[DocId, str, int]


class AnnotateError(ValueError):
    """Bad input or an output file that cannot be resumed (message names file and line)."""


class _SourceError(Exception):
    """Reading the records failed (not the pipeline): never retried, re-raised as its cause."""


@dataclass(frozen=True)
class RecordError:
    """A record that could not be annotated: its id (None when unreadable), the reason,
    and its input line (set by ``annotate_file``)."""

    doc_id: Optional[DocId]
    reason: str
    line: Optional[int] = None

    def describe(self, path: Union[str, Path]) -> str:
        """``FILE:LINE: id ID: reason`` (no id when it is not known)."""
        who = "" if self.doc_id is None else f"id {self.doc_id!r}: "
        return f"{path}:{self.line}: {who}{self.reason}"

    def to_json(self, path: Union[str, Path]) -> Dict[str, Any]:
        """The errors file's object: ``file`` (path), ``line``, ``id``, ``error``."""
        return {"file": str(path), "line": self.line, "id": self.doc_id, "error": self.reason}


# What a runner yields per record: its JSONL line, or why it has none.
Result = Union[str, RecordError]
# Replaces ``nlp.pipe`` in ``annotate_file``: pending (id, text) pairs -> lists of results,
# one per record, in input order.
Runner = Callable[[Iterator[Tuple[DocId, str]]], Iterator[List[Result]]]
# A record taken from the input whose result is not yielded yet: (id, text, why it is not
# sent to the pipeline, or None).
InFlight = Tuple[DocId, str, Optional[str]]


# --- Doc -> JSON --------------------------------------------------------------------


def span_to_json(span: Span, label: Optional[str] = None) -> Dict[str, Any]:
    """A span as character and token offsets (ends exclusive), text and label.

    label: overrides ``span.label_``; an empty label is written as ``null``.
    """
    label = span.label_ if label is None else label
    return {
        "start_char": span.start_char,
        "end_char": span.end_char,
        "start_token": span.start,
        "end_token": span.end,
        "text": span.text,
        "label": label or None,
    }


def round_scores(obj: Any, digits: int = 4) -> Any:
    """``doc_to_json`` output (or lists of it) with every ``score`` rounded to ``digits``.

    For comparing annotations made in different processes or installs: thread counts and
    BLAS builds change float summation order, so scores can differ in the last digits.
    """
    if isinstance(obj, dict):
        return {k: (round(v, digits) if k == "score" else round_scores(v, digits)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_scores(v, digits) for v in obj]
    return obj


def _score(value: Any) -> float:
    return round(float(value), SCORE_DIGITS)


def doc_to_json(doc: Doc, doc_id: Optional[DocId] = None, *, mentions_key: str = MENTIONS_KEY) -> Dict[str, Any]:
    """Convert an annotated Doc to a JSON-serialisable dict.

    Keys: ``id`` (only when ``doc_id`` is given), ``text``, ``tokens`` (``text``,
    ``start``, ``end``: character offsets), ``entities`` (``doc.ents``), ``mentions``
    (``doc.spans[mentions_key]``, with ``score`` when the group has ``attrs["scores"]``),
    ``relations`` (``head``, ``tail``, ``label``, ``score``; argument spans carry the
    label of the entity they are, if any) and ``coref_clusters`` (lists of spans). Every
    span is a ``span_to_json`` dict. A layer the doc is not annotated for is ``null``; an
    annotated layer with nothing in it is ``[]``. Scores are rounded to 6 decimals.
    """
    out: Dict[str, Any] = {}
    if doc_id is not None:
        out["id"] = doc_id
    out["text"] = doc.text
    out["tokens"] = [{"text": t.text, "start": t.idx, "end": t.idx + len(t.text)} for t in doc]
    out["entities"] = [span_to_json(ent) for ent in doc.ents] if has_ner_annotation(doc) else None
    out["mentions"] = _mentions_json(doc, mentions_key)
    out["relations"] = _relations_json(doc)
    out["coref_clusters"] = _coref_clusters_json(doc)
    return out


def _mentions_json(doc: Doc, mentions_key: str) -> Optional[List[Dict[str, Any]]]:
    """The mentions of ``doc.spans[mentions_key]``, each with its score when the group's
    ``attrs["scores"]`` has one per span; None when the doc is not annotated for mentions."""
    if not has_mention_annotation(doc, mentions_key):
        return None
    group = doc.spans[mentions_key]
    scores = group.attrs.get("scores")
    if scores is not None and len(scores) != len(group):
        scores = None
    mentions = []
    for i, span in enumerate(group):
        item = span_to_json(span)
        if scores is not None:
            item["score"] = _score(scores[i])
        mentions.append(item)
    return mentions


def _relations_json(doc: Doc) -> Optional[List[Dict[str, Any]]]:
    """The relation records as head, tail (labelled with the entity each argument is, if
    any), label and score; None when the doc is not annotated for relations."""
    records = get_relation_records(doc)
    if records is None:
        return None
    labels = _entity_labels(doc)
    return [
        {
            "head": span_to_json(doc[hs:he], labels.get((hs, he), "")),
            "tail": span_to_json(doc[ts:te], labels.get((ts, te), "")),
            "label": label,
            "score": _score(score),
        }
        for hs, he, ts, te, label, score in records
    ]


def _coref_clusters_json(doc: Doc) -> Optional[List[List[Dict[str, Any]]]]:
    """The coreference clusters as lists of spans; None when the doc is not annotated for them."""
    clusters = get_coref_clusters(doc)
    return None if clusters is None else [[span_to_json(doc[s:e]) for s, e in cluster] for cluster in clusters]


def _entity_labels(doc: Doc) -> Dict[Tuple[int, int], str]:
    """(start, end) -> label of the entities a relation argument can be."""
    labels: Dict[Tuple[int, int], str] = {}
    overflow = doc.spans[ENTS_OVERFLOW_KEY] if ENTS_OVERFLOW_KEY in doc.spans else []
    for span in list(overflow) + list(doc.ents):  # doc.ents wins
        labels[(span.start, span.end)] = span.label_
    return labels


# --- input --------------------------------------------------------------------------


def resolve_format(path: Union[str, Path], fmt: str = "auto") -> str:
    """The input format of ``path``: "jsonl" or "text".

    fmt: "jsonl", "text", or "auto" (by extension: ``JSONL_SUFFIXES`` are JSONL).
    """
    if fmt not in INPUT_FORMATS:
        raise AnnotateError(f"unknown input format {fmt!r} (expected one of {', '.join(INPUT_FORMATS)})")
    if fmt != "auto":
        return fmt
    return "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "text"


def _id_key(doc_id: DocId) -> str:
    # 1 and "1" are different ids; JSON spells them differently.
    return json.dumps(doc_id)


def text_digest(text: str) -> int:
    """A 64-bit digest of a text: resume compares it with the text an output line holds."""
    data = text.encode("utf8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass
class InputLine:
    """One non-blank input line: a document, or (``problem`` set) why it is not one."""

    lineno: int
    doc_id: Optional[DocId]
    text: Optional[str]
    problem: Optional[str] = None


def read_input(
    path: Union[str, Path], fmt: str = "auto", *, text_key: str = "text", id_key: str = "id"
) -> Iterator[InputLine]:
    """Yield every non-blank line of the input (lazily), parsed and checked.

    A line that is not valid UTF-8, not a JSON object, lacks a string text, has an id
    that is not a string or an integer, holds a lone surrogate, or repeats the id of an
    earlier document comes with its ``problem`` instead of raising.
    """
    path = Path(path)
    fmt = resolve_format(path, fmt)
    first_line: Dict[str, int] = {}
    with path.open("rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            item = _parse_line(raw, lineno, fmt, text_key, id_key)
            if item is None or item.problem is not None:
                if item is not None:
                    yield item
                continue
            key = _id_key(item.doc_id)
            if key in first_line:
                item.problem = f"already used on line {first_line[key]} (ids must be unique to resume)"
            else:
                first_line[key] = lineno
            yield item


def iter_input(
    path: Union[str, Path], fmt: str = "auto", *, text_key: str = "text", id_key: str = "id"
) -> Iterator[InputRecord]:
    """Yield ``(id, text, line_number)`` for each document of the input (lazily).

    Raises AnnotateError, naming the file and line, at the first bad line (see
    ``read_input``).
    """
    for item in read_input(path, fmt, text_key=text_key, id_key=id_key):
        if item.problem is not None:
            raise AnnotateError(RecordError(item.doc_id, item.problem, item.lineno).describe(path))
        yield item.doc_id, item.text, item.lineno


def _parse_line(raw: bytes, lineno: int, fmt: str, text_key: str, id_key: str) -> Optional[InputLine]:
    """One line of the input; None for a blank line."""
    try:
        line = raw.decode("utf8")
    except UnicodeDecodeError as err:
        return InputLine(lineno, None, None, f"not valid UTF-8 ({err.reason} at byte {err.start})")
    line = line.rstrip("\r\n")
    if lineno == 1:
        line = line.lstrip("\ufeff")
    if not line.strip():
        return None
    if fmt == "text":
        return InputLine(lineno, lineno, line)
    return _parse_json_record(line, lineno, text_key, id_key)


def _parse_json_record(line: str, lineno: int, text_key: str, id_key: str) -> InputLine:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return InputLine(lineno, None, None, f"not valid JSON ({err.msg}: column {err.colno})")
    if not isinstance(obj, dict):
        return InputLine(lineno, None, None, f"expected a JSON object, found {type(obj).__name__}")
    doc_id = obj.get(id_key, lineno)
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        return InputLine(lineno, None, None, f"{id_key!r} must be a string or an integer, found {doc_id!r}")
    if text_key not in obj:
        return InputLine(lineno, doc_id, None, f"no {text_key!r} field (see --text-key)")
    text = obj[text_key]
    if not isinstance(text, str):
        return InputLine(lineno, doc_id, None, f"{text_key!r} must be a string, found {type(text).__name__}")
    for name, value in ((id_key, doc_id), (text_key, text)):
        problem = unicode_problem(value) if isinstance(value, str) else None
        if problem is not None:
            return InputLine(lineno, None if name == id_key else doc_id, None, f"{name!r} {problem}")
    return InputLine(lineno, doc_id, text)


def unicode_problem(value: str) -> Optional[str]:
    """Why a string cannot be written as UTF-8 (a lone surrogate, from an escape such as
    ``"\\ud800"`` without its pair), or None."""
    try:
        value.encode("utf8")
    except UnicodeEncodeError as err:
        return (
            f"holds a lone surrogate (U+{ord(value[err.start]):04X} at character {err.start}), "
            "which is not valid Unicode"
        )
    return None


@dataclass
class InputIndex:
    """What reading the whole input found: each document's line and text digest (by id
    key, in input order) and the bad lines."""

    records: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    bad: List[RecordError] = field(default_factory=list)


def validate_input(
    path: Union[str, Path],
    fmt: str = "auto",
    *,
    text_key: str = "text",
    id_key: str = "id",
    on_error: str = "stop",
) -> InputIndex:
    """Read the whole input once, before any work.

    on_error: "stop" raises AnnotateError at the first bad line; "skip" collects the bad
        lines (but raises when no line at all is a document: probably the wrong file or
        format).
    """
    index = InputIndex()
    for item in read_input(path, fmt, text_key=text_key, id_key=id_key):
        if item.problem is None:
            index.records[_id_key(item.doc_id)] = (item.lineno, text_digest(item.text))
            continue
        error = RecordError(item.doc_id, item.problem, item.lineno)
        if on_error == "stop":
            raise AnnotateError(error.describe(path))
        index.bad.append(error)
    if index.bad and not index.records:
        first = index.bad[0]
        raise AnnotateError(
            f"{path}: no line is a document ({len(index.bad)} bad lines; line {first.line}: {first.reason}); "
            "is it the right file, --format and --text-key?"
        )
    return index


# --- output (resume) ----------------------------------------------------------------


@dataclass
class OutputState:
    """What an existing OUTPUT already holds; ``start_output`` repairs it."""

    done: Set[str] = field(default_factory=set)  # id keys already written
    n_lines: int = 0
    repaired_bytes: int = 0  # size of the truncated last line to cut off
    good_end: int = 0  # bytes of whole, valid lines
    exists: bool = False


def read_output_state(
    path: Union[str, Path], index: InputIndex, *, input_path: Union[str, Path] = "INPUT", overwrite: bool = False
) -> OutputState:
    """Check an existing output file (without changing it) so that annotation can append.

    A last line without its newline is what an interrupted write leaves: it will be cut
    off (its document is annotated again). Any other line that is not a JSON object with
    an ``id`` and a ``text``, a repeated id, an id that is not in the input, or a text
    that differs from the input's text for that id (an edited input) raises
    AnnotateError: appending would mix two runs.
    """
    path = Path(path)
    state = OutputState(exists=path.exists())
    if not state.exists or overwrite:
        return state
    if not path.is_file():
        raise AnnotateError(f"{path}: the output exists and is not a file")
    with path.open("rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            if not raw.endswith(b"\n"):
                state.repaired_bytes = len(raw)
                break
            state.done.add(_check_output_line(raw, f"{path}:{lineno}", index, state, input_path))
            state.n_lines += 1
            state.good_end += len(raw)
    return state


def _check_output_line(raw: bytes, where: str, index: InputIndex, state: OutputState, input_path: Any) -> str:
    """Check one complete line of an existing OUTPUT; return its id key."""
    try:
        obj = json.loads(raw.decode("utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AnnotateError(
            f"{where}: not a complete JSON line; not written by annotate? (use --overwrite to start again)"
        ) from None
    if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("text"), str):
        raise AnnotateError(f"{where}: a line without an 'id' and a 'text'; not written by annotate? (use --overwrite)")
    key = _id_key(obj["id"])
    if key in state.done:
        raise AnnotateError(f"{where}: id {obj['id']!r} is written twice (use --overwrite)")
    if key not in index.records:
        raise AnnotateError(
            f"{where}: id {obj['id']!r} is not in the input; was the input edited, or is this another "
            "input's output? (use --overwrite to start again)"
        )
    lineno, digest = index.records[key]
    if text_digest(obj["text"]) != digest:
        raise AnnotateError(
            f"{where}: id {obj['id']!r} was annotated from another text than {input_path}:{lineno} holds now: "
            "the input was edited after OUTPUT was written (plain-text ids are line numbers, so an inserted "
            "or deleted line shifts every later id). Use --overwrite to annotate it all again."
        )
    return key


def start_output(
    path: Union[str, Path], state: OutputState, *, overwrite: bool = False, fsync: bool = False
) -> "JsonlAppender":
    """Create, empty (``overwrite``) or repair OUTPUT as ``state`` says; return an appender."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite or not state.exists:
        path.write_bytes(b"")
    elif state.repaired_bytes:
        with path.open("r+b") as fileh:
            fileh.truncate(state.good_end)
    return JsonlAppender(path, fsync=fsync)


@contextmanager
def _open_output(
    path: Path, state: OutputState, *, overwrite: bool, fsync: bool, guard_workers: bool
) -> Iterator["JsonlAppender"]:
    """OUTPUT ready for appending (``start_output``) for the block; guard_workers: the
    processes forked within the block die with this one (``children_die_with_parent``)."""
    workers_guard = children_die_with_parent() if guard_workers else nullcontext()
    with start_output(path, state, overwrite=overwrite, fsync=fsync) as out, workers_guard:
        yield out


def default_errors_path(output_path: Union[str, Path]) -> Path:
    """Where the bad records of a run are listed: ``out.jsonl`` -> ``out.errors.jsonl``."""
    output_path = Path(output_path)
    return output_path.with_name(output_path.stem + ".errors.jsonl")


class JsonlAppender:
    """Append lines to OUTPUT, one flushed write per batch."""

    def __init__(self, path: Union[str, Path], fsync: bool = False):
        self.fileh = Path(path).open("ab")
        self.fsync = fsync

    def write_batch(self, lines: Sequence[str]) -> None:
        """Append ``lines`` (each ending in a newline) in one flushed write."""
        if not lines:
            return
        self.fileh.write("".join(lines).encode("utf8"))
        self.fileh.flush()
        if self.fsync:
            os.fsync(self.fileh.fileno())

    def close(self) -> None:
        self.fileh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ErrorReport:
    """The bad records of a run: printed on stderr (the first ``MAX_PRINTED_ERRORS``) and
    listed in the errors file, which every run rewrites (it holds the records of the
    last run that are not in OUTPUT; no errors, no file)."""

    def __init__(self, input_path: Path, errors_path: Path, *, stream: Optional[TextIO] = None):
        self.input_path = input_path
        self.errors_path = errors_path
        self.stream = stream
        self.count = 0
        self.fileh: Optional[TextIO] = None
        if errors_path.exists():
            errors_path.unlink()

    def add(self, error: RecordError) -> None:
        """List ``error`` in the errors file (created at the first one) and print it."""
        if self.fileh is None:
            self.errors_path.parent.mkdir(parents=True, exist_ok=True)
            self.fileh = self.errors_path.open("w", encoding="utf8")
        self.fileh.write(json.dumps(error.to_json(self.input_path)) + "\n")
        self.fileh.flush()
        self.count += 1
        if self.stream is not None and self.count <= MAX_PRINTED_ERRORS:
            print(f"skipped {error.describe(self.input_path)}", file=self.stream)

    def close(self) -> None:
        """Close the errors file; say how many records were skipped when not all were printed."""
        if self.fileh is not None:
            self.fileh.close()
        if self.stream is not None and self.count > MAX_PRINTED_ERRORS:
            print(f"... {self.count} records skipped in all; see {self.errors_path}", file=self.stream)


# --- running ------------------------------------------------------------------------


@dataclass
class AnnotateSummary:
    """What a run did: records read, already there, written, failed; whether OUTPUT was repaired."""

    n_input: int
    n_skipped: int
    n_written: int
    repaired: bool
    output: str
    n_failed: int = 0
    errors_path: Optional[str] = None

    def format(self) -> str:
        """The one-line message the command prints at the end."""
        msg = f"{self.n_written} documents annotated -> {self.output}"
        if self.n_skipped:
            msg += f" ({self.n_skipped} already there, skipped)"
        if self.repaired:
            msg += " (cut off a truncated last line left by an interrupted run)"
        if self.n_failed:
            msg += f"; {self.n_failed} records could not be annotated, listed in {self.errors_path}"
        return msg

    @property
    def exit_code(self) -> int:
        """0 when every record is in OUTPUT, ``EXIT_SKIPPED`` when some were skipped."""
        return EXIT_SKIPPED if self.n_failed else 0


def pipe_to_lines(
    nlp: Language,
    records: Iterable[Tuple[DocId, str]],
    *,
    batch_size: int,
    n_process: int = 1,
    mentions_key: str = MENTIONS_KEY,
) -> Iterator[Result]:
    """Annotate ``(id, text)`` pairs with ``nlp.pipe``; yield one result per record, in
    input order: its JSONL line, or a ``RecordError`` when it cannot be annotated.

    A text longer than ``nlp.max_length`` is not sent to the pipeline. When the pipeline
    fails, the records it was working on are annotated again one at a time (so only the
    bad one is lost), and ``nlp.pipe`` restarts after them.
    """
    records = iter(records)
    while True:
        in_flight: Deque[InFlight] = deque()
        try:
            yield from _pipe_until_error(nlp, records, in_flight, batch_size, n_process, mentions_key)
            return
        except _SourceError as err:
            raise err.__cause__ from None
        except Exception:
            pass  # the pipeline failed: every record still in flight is retried alone below
        for doc_id, text, problem in in_flight:
            yield RecordError(doc_id, problem) if problem else _annotate_alone(nlp, doc_id, text, mentions_key)


def _pipe_until_error(
    nlp: Language,
    records: Iterator[Tuple[DocId, str]],
    in_flight: Deque[InFlight],
    batch_size: int,
    n_process: int,
    mentions_key: str,
) -> Iterator[Result]:
    """Run ``nlp.pipe`` over ``records``; ``in_flight`` holds, in order, the records taken
    from ``records`` whose result is not yielded yet (with the problem of those that are
    not sent to the pipeline)."""
    texts = _texts_to_pipe(nlp, records, in_flight)
    docs = nlp.pipe(texts, as_tuples=True, batch_size=batch_size, n_process=n_process)
    try:
        for doc, doc_id in docs:
            yield from _pop_not_sent(in_flight)
            in_flight.popleft()
            yield dumps_line(doc_to_json(doc, doc_id, mentions_key=mentions_key))
        yield from _pop_not_sent(in_flight)
    finally:
        docs.close()  # type: ignore[attr-defined]  # spaCy types Language.pipe as Iterator; it returns a generator


def _texts_to_pipe(
    nlp: Language, records: Iterator[Tuple[DocId, str]], in_flight: Deque[InFlight]
) -> Iterator[Tuple[str, DocId]]:
    """``(text, id)`` of each record the pipeline can take, each record (sent or not)
    appended to ``in_flight`` as it is taken. An error reading ``records`` is raised as a
    ``_SourceError``."""
    while True:
        try:
            doc_id, text = next(records)
        except StopIteration:
            return
        except Exception as err:
            raise _SourceError() from err
        problem = _too_long(nlp, text)
        in_flight.append((doc_id, text, problem))
        if problem is None:
            yield text, doc_id


def _pop_not_sent(in_flight: Deque[InFlight]) -> Iterator[RecordError]:
    """Take the records at the front of ``in_flight`` that were not sent to the pipeline,
    as errors: the records before the next document ``nlp.pipe`` returns."""
    while in_flight and in_flight[0][2] is not None:
        doc_id, _, problem = in_flight.popleft()
        yield RecordError(doc_id, problem)


def _too_long(nlp: Language, text: str) -> Optional[str]:
    if len(text) > nlp.max_length:
        return (
            f"text of {len(text)} characters is longer than the pipeline's max_length ({nlp.max_length}); "
            "split it, or raise nlp.max_length if there is memory for it"
        )
    return None


def _annotate_alone(nlp: Language, doc_id: DocId, text: str, mentions_key: str) -> Result:
    """One record through the pipeline on its own: its line, or why it failed."""
    try:
        return dumps_line(doc_to_json(nlp(text), doc_id, mentions_key=mentions_key))
    except Exception as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return RecordError(doc_id, f"the pipeline failed on it: {type(err).__name__}: {message[:300]}")


def batched(items: Iterable[Any], size: int) -> Iterator[List[Any]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily."""
    batch: List[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _locks_output(annotate: Callable[..., "AnnotateSummary"]) -> Callable[..., "AnnotateSummary"]:
    """``annotate`` run holding the lock of its OUTPUT for the whole run, from reading what
    OUTPUT holds to its last write: two runs appending to one file would write every
    document twice. A second run stops with AnnotateError before reading anything."""

    @functools.wraps(annotate)
    def locked(model: Any, input_path: Union[str, Path], output_path: Union[str, Path], **options: Any) -> Any:
        try:
            with output_lock(output_path):
                return annotate(model, input_path, output_path, **options)
        except OutputLockedError as err:
            raise AnnotateError(str(err)) from None

    return locked


@_locks_output
def annotate_file(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    n_process: int = 1,
    batch_size: int = 32,
    text_key: str = "text",
    id_key: str = "id",
    input_format: str = "auto",
    gpu_id: int = -1,
    overwrite: bool = False,
    on_error: str = "skip",
    errors_path: Optional[Union[str, Path]] = None,
    show_progress: bool = True,
    report_errors: bool = True,
    fsync: bool = False,
    mentions_key: str = MENTIONS_KEY,
    torch_threads: Optional[int] = None,
    runner: Optional[Runner] = None,
    output_format: str = "doc",
) -> AnnotateSummary:
    """Annotate INPUT into OUTPUT (JSONL), resuming an existing OUTPUT.

    model: a pipeline name or path (loaded here) or a loaded ``Language``.
    on_error: "skip" (default): bad records are reported and listed in ``errors_path``
        (default ``default_errors_path(output_path)``), the others annotated; "stop":
        AnnotateError at the first bad record, after writing the documents before it.
    report_errors: print each skipped record on stderr.
    output_format: "doc" (the layers, ``doc_to_json``), "graph" (the layers and the
        document's entity graph under ``"graph"``, see ``spacy_hmtl.graph``) or "prodigy"
        (a Prodigy task, ``spacy_hmtl.exporters``); resuming an OUTPUT written in another
        format is refused.
    torch_threads: torch threads per process while annotating (default: torch's own
        setting, or the CPUs shared out among the processes when ``n_process > 1``; an
        oversubscribed CPU makes torch's thread pool very slow).
    runner: replaces ``nlp.pipe``: a function of the pending ``(id, text)`` pairs that yields
        lists of results (JSONL lines or ``RecordError``), one per record, in input order
        (``spacy_hmtl.distributed`` passes one; the model is then not loaded here).
    RETURNS (AnnotateSummary): counts, for the CLI's message and exit status.
    """
    _check_options(batch_size, n_process, on_error)
    input_path, output_path = Path(input_path), Path(output_path)
    errors_path = default_errors_path(output_path) if errors_path is None else Path(errors_path)
    _check_paths(input_path, output_path, errors_path)
    index = validate_input(input_path, input_format, text_key=text_key, id_key=id_key, on_error=on_error)
    state = read_output_state(output_path, index, input_path=input_path, overwrite=overwrite)
    _check_output_format(output_path, state, output_format)
    n_pending = len(index.records) - len(state.done)
    if not n_pending:
        runner = None  # nothing to annotate: no model is loaded, no runner started
    elif runner is None:
        # Loaded before OUTPUT is touched: an unloadable model leaves everything as it was.
        nlp = model if isinstance(model, Language) else load_model(model, gpu_id)
        runner = _pipe_runner(nlp, batch_size, n_process, mentions_key)
    report = ErrorReport(input_path, errors_path, stream=sys.stderr if report_errors else None)
    run = _Run(input_path, index, report, on_error)
    bar = _progress_bar(len(index.records), len(state.done)) if show_progress and runner is not None else None
    torch_threads = _threads_per_process(n_process) if torch_threads is None else torch_threads
    with _torch_threads(torch_threads if runner is not None else None):
        try:
            guard_workers = n_process != 1
            with _open_output(output_path, state, overwrite=overwrite, fsync=fsync, guard_workers=guard_workers) as out:
                for error in index.bad:
                    report.add(error)
                if runner is not None:
                    batches = runner(_pending_records(input_path, input_format, text_key, id_key, state.done))
                    run.consume(_formatted(batches, output_format), out, bar)
        finally:
            report.close()
            if bar is not None:
                bar.close()
    return AnnotateSummary(
        n_input=len(index.records) + len(index.bad),
        n_skipped=len(state.done),
        n_written=run.n_written,
        repaired=bool(state.repaired_bytes),
        output=str(output_path),
        n_failed=report.count,
        errors_path=str(errors_path),
    )


def _pending_records(
    input_path: Path, input_format: str, text_key: str, id_key: str, done: Set[str]
) -> Iterator[Tuple[DocId, str]]:
    """``(id, text)`` of each document of the input that is not in OUTPUT yet (lazily)."""
    for item in read_input(input_path, input_format, text_key=text_key, id_key=id_key):
        if item.problem is None and _id_key(item.doc_id) not in done:
            yield item.doc_id, item.text


def _check_output_format(output_path: Path, state: OutputState, output_format: str) -> None:
    """Refuse to resume an OUTPUT whose lines are in the other ``--output-format``."""
    if output_format not in OUTPUT_FORMATS:
        raise AnnotateError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    if not state.n_lines:
        return
    from .exporters import written_format

    with output_path.open("rb") as fileh:
        first = json.loads(fileh.readline().decode("utf8"))
    written = "graph" if "graph" in first else written_format(first)
    if written != output_format:
        raise AnnotateError(
            f"{output_path}: written with --output-format {written}, resumed with {output_format}; "
            "use the same format, or --overwrite"
        )


def _formatted(batches: Iterator[List[Result]], output_format: str) -> Iterator[List[Result]]:
    """The runner's batches with each line in ``output_format``: with its document's
    entity graph added ("graph"), or exported (``spacy_hmtl.exporters``)."""
    if output_format == "doc":
        return batches
    convert: Callable[[str], str]
    if output_format == "graph":
        from .graph.export import add_graph_to_line as convert
    else:
        from .exporters import line_exporter

        convert = line_exporter(output_format)
    return _map_lines(batches, convert)


def _map_lines(batches: Iterator[List[Result]], convert: Callable[[str], str]) -> Iterator[List[Result]]:
    """The runner's batches with ``convert`` applied to each line (errors pass as they are)."""
    try:
        for batch in batches:
            yield [convert(r) if isinstance(r, str) else r for r in batch]
    finally:
        _close(batches)


def _close(batches: Iterator[List[Result]]) -> None:
    """Close a runner's batches if they can be closed: stops nlp.pipe's worker processes at once."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _threads_per_process(n_process: int) -> Optional[int]:
    """The CPUs shared out among ``n_process`` processes (None: leave torch's setting)."""
    if n_process == 1:
        return None
    n_procs = (os.cpu_count() or 1) if n_process == -1 else n_process
    return max(1, (os.cpu_count() or 1) // n_procs)


def _check_options(batch_size: int, n_process: int, on_error: str) -> None:
    if batch_size < 1:
        raise AnnotateError("--batch-size must be at least 1")
    if n_process < 1 and n_process != -1:
        raise AnnotateError("--n-process must be at least 1 (or -1 for all CPUs)")
    if on_error not in ON_ERROR:
        raise AnnotateError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")


def _check_paths(input_path: Path, output_path: Path, errors_path: Path) -> None:
    if not input_path.is_file():
        raise AnnotateError(f"{input_path}: no such input file")
    if same_file(input_path, output_path):
        raise AnnotateError(f"{output_path}: OUTPUT is the INPUT file; annotate never writes over its input")
    if same_file(input_path, errors_path) or same_file(output_path, errors_path):
        raise AnnotateError(f"{errors_path}: the errors file would replace INPUT or OUTPUT; choose another --errors")


def _pipe_runner(nlp: Language, batch_size: int, n_process: int, mentions_key: str) -> Runner:
    """``pipe_to_lines`` as a runner: its results in lists of ``batch_size``."""

    def runner(records: Iterator[Tuple[DocId, str]]) -> Iterator[List[Result]]:
        results = pipe_to_lines(nlp, records, batch_size=batch_size, n_process=n_process, mentions_key=mentions_key)
        return batched(results, batch_size)

    return runner


def _progress_bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="doc", file=sys.stderr, desc="annotate")


class _Run:
    """Writes the runner's results: lines to OUTPUT, bad records to the report (or, with
    ``on_error="stop"``, the lines before the first one, then AnnotateError)."""

    def __init__(self, input_path: Path, index: InputIndex, report: ErrorReport, on_error: str):
        self.input_path = input_path
        self.index = index
        self.report = report
        self.on_error = on_error
        self.n_written = 0

    def consume(self, batches: Iterator[List[Result]], out: JsonlAppender, bar: Any) -> None:
        """Write every batch (then close ``batches``); bar: a progress bar to advance, or None."""
        try:
            for batch in batches:
                self._write(batch, out)
                if bar is not None:
                    bar.update(len(batch))
        finally:
            _close(batches)

    def _write(self, batch: List[Result], out: JsonlAppender) -> None:
        lines: List[str] = []
        for result in batch:
            if isinstance(result, str):
                lines.append(result)
                continue
            error = replace(result, line=self.index.records.get(_id_key(result.doc_id), (None, 0))[0])
            if self.on_error == "stop":
                out.write_batch(lines)
                self.n_written += len(lines)
                raise AnnotateError(
                    f"{error.describe(self.input_path)} (stopped by --on-error stop; "
                    "the documents before it are written)"
                )
            self.report.add(error)
        out.write_batch(lines)
        self.n_written += len(lines)


def _set_torch_threads(n: int) -> int:
    """Set torch's intra-op threads (inherited by forked ``nlp.pipe`` workers); return the old value."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    return old


@contextmanager
def _torch_threads(n: Optional[int]) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` for the block, then restored (None or 0:
    left alone)."""
    restore = _set_torch_threads(n) if n else None
    try:
        yield
    finally:
        if restore is not None:
            _set_torch_threads(restore)


def load_pipeline(model: Union[str, Path], *, gpu_id: int = -1) -> Language:
    """``spacy.load`` after selecting the GPU (``gpu_id >= 0``) or the CPU."""
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def load_model(model: Union[str, Path], gpu_id: int = -1) -> Language:
    """``load_pipeline``, its errors turned into AnnotateError naming MODEL."""
    try:
        return load_pipeline(model, gpu_id=gpu_id)
    except Exception as err:
        raise AnnotateError(f"{model}: cannot load the pipeline: {err}") from err
