"""What the batch annotator's modules (``annotate_input``, ``annotate_output``,
``annotate_processes``, ``batch_annotator``) and the commands that read its files share: a
document's id, the error of a bad input or output file, the report of one record that could
not be annotated, and what a runner (the part that replaces ``nlp.pipe``) yields."""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

DocId = Union[str, int]
# Exit status of a run that skipped records (0: all done, 1: error, 2: usage).
EXIT_SKIPPED = 3


class AnnotateError(ValueError):
    """Bad input or an output file that cannot be resumed (message names file and line)."""


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
# Replaces ``nlp.pipe`` in ``batch_annotator.annotate_file``: pending (id, text) pairs ->
# lists of results, one per record, in input order.
Runner = Callable[[Iterator[Tuple[DocId, str]]], Iterator[List[Result]]]
