"""``AnnotateOptions``: every setting of a batch annotation run in one frozen object, the
one thing ``annotate_file``, ``pipe_to_lines`` and the distributed runner pass along (the
command builds it from its arguments; a dask task gets it pickled)."""
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional, Union

from spacy.tokens import Doc

from .annotate_records import AnnotateError, DocId
from .annotations import MENTIONS_KEY
from .doc_json import doc_to_json
from .safe_io import dumps_line

ON_ERROR = ("skip", "stop")


@dataclass(frozen=True)
class AnnotateOptions:
    """How ``annotate_file`` runs: every setting of the ``annotate`` command but its paths
    and the dask ones (``distributed.annotate_file_dask`` takes those itself).

    n_process (int): worker processes (-1: one per CPU; ``annotate_processes``, or
        ``nlp.pipe``'s where processes cannot be forked).
    batch_size (int): documents per batch and per flushed write.
    text_key (str): JSONL field holding the text.
    id_key (str): JSONL field holding the id (the line number when absent).
    input_format (str): "auto", "jsonl" or "text" (``annotate_input.resolve_format``).
    gpu_id (int): GPU to load the pipeline on (-1: CPU).
    overwrite (bool): start again instead of resuming OUTPUT.
    on_error (str): "skip": bad records are reported and listed in ``errors_path``, the
        others annotated; "stop": AnnotateError at the first bad record, after writing the
        documents before it.
    errors_path (Optional[Union[str, Path]]): the errors file (default
        ``default_errors_path(OUTPUT)``).
    show_progress (bool): a progress bar on stderr.
    report_errors (bool): print each skipped record on stderr.
    fsync (bool): fsync OUTPUT after every batch.
    mentions_key (str): the ``doc.spans`` key of the mentions (``doc_to_json``).
    torch_threads (Optional[int]): torch threads of this process while annotating
        (default: torch's own setting, or the CPUs shared out among the processes when
        ``n_process > 1``; an oversubscribed CPU makes torch's thread pool very slow). A
        forked worker always runs one (``spacy_hmtl.layers``).
    output_format (str): "doc" (the layers, ``doc_to_json``), "graph" (the layers and the
        document's entity graph under ``"graph"``, see ``spacy_hmtl.graph``) or "prodigy"
        (a Prodigy task, ``spacy_hmtl.exporters``); resuming an OUTPUT written in another
        format is refused.
    """

    n_process: int = 1
    batch_size: int = 32
    text_key: str = "text"
    id_key: str = "id"
    input_format: str = "auto"
    gpu_id: int = -1
    overwrite: bool = False
    on_error: str = "skip"
    errors_path: Optional[Union[str, Path]] = None
    show_progress: bool = True
    report_errors: bool = True
    fsync: bool = False
    mentions_key: str = MENTIONS_KEY
    torch_threads: Optional[int] = None
    output_format: str = "doc"

    def check(self) -> None:
        """Raise AnnotateError for settings no run can have (named as the command's options)."""
        if self.batch_size < 1:
            raise AnnotateError("--batch-size must be at least 1")
        if self.n_process < 1 and self.n_process != -1:
            raise AnnotateError("--n-process must be at least 1 (or -1 for all CPUs)")
        if self.on_error not in ON_ERROR:
            raise AnnotateError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {self.on_error!r}")

    def to_line(self, doc: Doc, doc_id: DocId) -> str:
        """An annotated document as its OUTPUT line (``doc_to_json``, then ``dumps_line``)."""
        return dumps_line(doc_to_json(doc, doc_id, mentions_key=self.mentions_key))


def resolve_options(options: Optional[AnnotateOptions], overrides: Dict[str, Any]) -> AnnotateOptions:
    """``options`` (default ``AnnotateOptions()``) with the fields in ``overrides`` replaced;
    a TypeError names a key that is not an option."""
    base = AnnotateOptions() if options is None else options
    return replace(base, **overrides) if overrides else base
