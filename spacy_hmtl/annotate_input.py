"""The batch annotator's input: a JSONL or plain-text file of documents, read and checked.

* JSONL: one object per line, the text under ``text_key``, an optional id under ``id_key``
  (the line number when absent). Plain text: one document per line, id = line number.
  ``resolve_format`` decides by extension when the format is "auto": ``JSONL_SUFFIXES``
  are JSONL, anything else plain text. Blank lines are skipped (ids stay line numbers).
* A line that cannot be a document (not UTF-8, not JSON, no string text, a bad or repeated
  id, a lone surrogate) is reported with its problem (``read_input``), never raised on the
  way: the run decides (``--on-error``). ``validate_input`` reads the whole input once,
  before any work: each document's line and text digest (``InputIndex``, which resuming
  checks an existing OUTPUT against) and the bad lines.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple, Union

from .annotate_records import AnnotateError, DocId, RecordError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
INPUT_FORMATS = ("auto", "jsonl", "text")

# (id, text, line number in the input)
InputRecord = Tuple[DocId, str, int]


def resolve_format(path: Union[str, Path], fmt: str = "auto") -> str:
    """The input format of ``path``: "jsonl" or "text".

    fmt: "jsonl", "text", or "auto" (by extension: ``JSONL_SUFFIXES`` are JSONL).
    """
    if fmt not in INPUT_FORMATS:
        raise AnnotateError(f"unknown input format {fmt!r} (expected one of {', '.join(INPUT_FORMATS)})")
    if fmt != "auto":
        return fmt
    return "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "text"


def doc_id_key(doc_id: DocId) -> str:
    """The key an id is looked up by: its JSON (1 and "1" are different ids; JSON spells
    them differently)."""
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
            key = doc_id_key(item.doc_id)
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
            index.records[doc_id_key(item.doc_id)] = (item.lineno, text_digest(item.text))
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


def pending_records(
    input_path: Union[str, Path], input_format: str, text_key: str, id_key: str, done: Set[str]
) -> Iterator[Tuple[DocId, str]]:
    """``(id, text)`` of each document of the input whose id key is not in ``done`` (the
    documents OUTPUT holds), lazily."""
    for item in read_input(input_path, input_format, text_key=text_key, id_key=id_key):
        if item.problem is None and doc_id_key(item.doc_id) not in done:
            yield item.doc_id, item.text
