"""The batch annotator's output: resuming an existing OUTPUT, and the errors file.

* ``read_output_state`` checks what an existing OUTPUT holds against the input (without
  changing it): a truncated last line (the mark of an interrupted write) is to be cut off,
  and the documents whose ids are there are skipped; any other problem (a line not
  written by annotate, a repeated id, an id not in the input, a text that differs from the
  input's text for that id: an edited input) refuses the run before any work.
  ``check_output_format`` refuses to resume an OUTPUT written in another ``--output-format``.
* ``start_output`` creates, empties (``overwrite``) or repairs OUTPUT; ``JsonlAppender``
  appends one flushed write per batch, so an interrupted run keeps every document it wrote.
* ``ErrorReport``: the records a run skipped, printed on stderr and listed in the errors
  file (``default_errors_path``), which every run rewrites.
"""
import json
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Set, TextIO, Union

from .annotate_input import InputIndex, doc_id_key, text_digest
from .annotate_records import AnnotateError, RecordError
from .safe_io import children_die_with_parent

# "doc": the layers (doc_json.doc_to_json); "graph": the layers plus the entity graph under
# "graph"; "prodigy": a Prodigy task per document (spacy_hmtl.exporters).
OUTPUT_FORMATS = ("doc", "graph", "prodigy")
# Bad records printed on stderr; the errors file lists them all.
MAX_PRINTED_ERRORS = 20


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
    key = doc_id_key(obj["id"])
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
def open_output(
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


def check_output_format(output_path: Path, state: OutputState, output_format: str) -> None:
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
