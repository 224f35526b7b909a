"""Batch annotation: run a pipeline over a JSONL or plain-text file, write JSONL.

``python -m spacy_hmtl annotate MODEL INPUT OUTPUT`` reads documents, runs them through
``nlp.pipe`` and writes one JSON object per document (see ``doc_json.doc_to_json``), in input order.

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
* ``--n-process N`` (on the CPU, where processes can be forked): N forked worker processes
  each annotate a batch and send back its finished lines (``annotate_processes``); this
  process reads the input and writes OUTPUT. Elsewhere ``nlp.pipe(n_process=N)``.
* ``--output-format graph`` adds each document's entity graph (``spacy_hmtl.graph``,
  built from the line's layers) under ``"graph"``; ``python -m spacy_hmtl graph`` turns
  such a file into CSV triples and GraphML.

This module is the run: ``annotate_file`` with its settings in one ``AnnotateOptions``,
``pipe_to_lines`` (the pipeline over ``(id, text)`` pairs, retrying a failed batch record
by record), the lock, the progress bar and the torch threads. Its parts are modules of
their own: the per-document conversion ``doc_json.doc_to_json`` (reusable on its own), the
input ``annotate_input``, resuming OUTPUT and the errors file ``annotate_output``, the
worker processes of ``--n-process`` ``annotate_processes``, the shared ids and errors
``annotate_records``, model loading ``pipeline_loading``; their public names are
importable from here too. ``read_input``, ``pipe_to_lines`` and
``annotate_file`` are what the distributed runner (``spacy_hmtl.distributed``) shares with
this single-process path. The command's argument parsing and messages are
``spacy_hmtl.annotate_command``'s.
"""
import functools
import os
import sys
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language

# The names below were all defined here before the module was split by job: they stay
# importable from here.
from .annotate_input import (  # noqa: F401  (public re-export)
    INPUT_FORMATS,
    JSONL_SUFFIXES,
    InputIndex,
    InputLine,
    InputRecord,
    doc_id_key,
    iter_input,
    pending_records,
    read_input,
    resolve_format,
    text_digest,
    unicode_problem,
    validate_input,
)
from .annotate_output import (  # noqa: F401  (public re-export)
    MAX_PRINTED_ERRORS,
    OUTPUT_FORMATS,
    ErrorReport,
    JsonlAppender,
    OutputState,
    check_output_format,
    default_errors_path,
    open_output,
    read_output_state,
    start_output,
)
from .annotate_options import ON_ERROR, AnnotateOptions, resolve_options  # noqa: F401  (public re-export)
from .annotate_processes import fork_available, process_runner, worker_count
# Result and Runner (what a runner yields, and the runner) were defined here: still importable.
from .annotate_records import EXIT_SKIPPED, AnnotateError, DocId, RecordError, Result, Runner  # noqa: F401
from .annotations import MENTIONS_KEY  # noqa: F401  (public re-export: annotate_command's default)
from .doc_json import SCORE_DIGITS, doc_to_json, round_scores, span_to_json  # noqa: F401  (public re-export)
from .pipeline_loading import load_model, load_pipeline  # noqa: F401  (public re-export)
from .safe_io import OutputLockedError, dumps_line, output_lock, same_file  # noqa: F401  (dumps_line: public re-export)


class _SourceError(Exception):
    """Reading the records failed (not the pipeline): never retried, re-raised as its cause."""


# A record taken from the input whose result is not yielded yet: (id, text, why it is not
# sent to the pipeline, or None).
InFlight = Tuple[DocId, str, Optional[str]]


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
    options: Optional[AnnotateOptions] = None,
    **overrides: Any,
) -> Iterator[Result]:
    """Annotate ``(id, text)`` pairs with ``nlp.pipe``; yield one result per record, in
    input order: its JSONL line, or a ``RecordError`` when it cannot be annotated.

    options: its ``batch_size``, ``n_process`` and the line's settings (``to_line``);
        ``overrides`` replace fields of it (``batch_size=2``).

    A text longer than ``nlp.max_length`` is not sent to the pipeline. When the pipeline
    fails, the records it was working on are annotated again one at a time (so only the
    bad one is lost), and ``nlp.pipe`` restarts after them.
    """
    options = resolve_options(options, overrides)
    records = iter(records)
    while True:
        in_flight: Deque[InFlight] = deque()
        try:
            yield from _pipe_until_error(nlp, records, in_flight, options)
            return
        except _SourceError as err:
            raise err.__cause__ from None
        except Exception:
            pass  # the pipeline failed: every record still in flight is retried alone below
        for doc_id, text, problem in in_flight:
            yield RecordError(doc_id, problem) if problem else _annotate_alone(nlp, doc_id, text, options)


def _pipe_until_error(
    nlp: Language,
    records: Iterator[Tuple[DocId, str]],
    in_flight: Deque[InFlight],
    options: AnnotateOptions,
) -> Iterator[Result]:
    """Run ``nlp.pipe`` over ``records``; ``in_flight`` holds, in order, the records taken
    from ``records`` whose result is not yielded yet (with the problem of those that are
    not sent to the pipeline)."""
    texts = _texts_to_pipe(nlp, records, in_flight)
    docs = nlp.pipe(texts, as_tuples=True, batch_size=options.batch_size, n_process=options.n_process)
    try:
        for doc, doc_id in docs:
            yield from _pop_not_sent(in_flight)
            in_flight.popleft()
            yield options.to_line(doc, doc_id)
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


def _annotate_alone(nlp: Language, doc_id: DocId, text: str, options: AnnotateOptions) -> Result:
    """One record through the pipeline on its own: its line, or why it failed."""
    try:
        return options.to_line(nlp(text), doc_id)
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
    def locked(model: Any, input_path: Union[str, Path], output_path: Union[str, Path], *args: Any, **kwargs: Any) -> Any:
        try:
            with output_lock(output_path):
                return annotate(model, input_path, output_path, *args, **kwargs)
        except OutputLockedError as err:
            raise AnnotateError(str(err)) from None

    return locked


@_locks_output
def annotate_file(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    options: Optional[AnnotateOptions] = None,
    *,
    runner: Optional[Runner] = None,
    **overrides: Any,
) -> AnnotateSummary:
    """Annotate INPUT into OUTPUT (JSONL), resuming an existing OUTPUT.

    model: a pipeline name or path (loaded here) or a loaded ``Language``.
    options: how to run (``AnnotateOptions``; default its defaults).
    runner: replaces ``nlp.pipe``: a function of the pending ``(id, text)`` pairs that yields
        lists of results (JSONL lines or ``RecordError``), one per record, in input order
        (``spacy_hmtl.distributed`` passes one; the model is then not loaded here).
    overrides: fields of ``options`` to replace, by name (``batch_size=2``); a TypeError
        names one that is not an option.
    RETURNS (AnnotateSummary): counts, for the CLI's message and exit status.
    """
    options = resolve_options(options, overrides)
    options.check()
    input_path, output_path = Path(input_path), Path(output_path)
    errors_path = default_errors_path(output_path) if options.errors_path is None else Path(options.errors_path)
    _check_paths(input_path, output_path, errors_path)
    index = validate_input(
        input_path, options.input_format, text_key=options.text_key, id_key=options.id_key, on_error=options.on_error
    )
    state = read_output_state(output_path, index, input_path=input_path, overwrite=options.overwrite)
    check_output_format(output_path, state, options.output_format)
    n_pending = len(index.records) - len(state.done)
    if not n_pending:
        runner = None  # nothing to annotate: no model is loaded, no runner started
    elif runner is None:
        # Loaded before OUTPUT is touched: an unloadable model leaves everything as it was.
        nlp = model if isinstance(model, Language) else load_model(model, options.gpu_id)
        runner = _pipe_runner(nlp, options)
    report = ErrorReport(input_path, errors_path, stream=sys.stderr if options.report_errors else None)
    run = _Run(input_path, index, report, options.on_error)
    show_bar = options.show_progress and runner is not None
    bar = _progress_bar(len(index.records), len(state.done)) if show_bar else None
    threads = _threads_per_process(options.n_process) if options.torch_threads is None else options.torch_threads
    with _torch_threads(threads if runner is not None else None):
        try:
            guard_workers = options.n_process != 1
            with open_output(
                output_path, state, overwrite=options.overwrite, fsync=options.fsync, guard_workers=guard_workers
            ) as out:
                for error in index.bad:
                    report.add(error)
                if runner is not None:
                    pending = pending_records(
                        input_path, options.input_format, options.text_key, options.id_key, state.done
                    )
                    run.consume(_formatted(runner(pending), options.output_format), out, bar)
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


def _check_paths(input_path: Path, output_path: Path, errors_path: Path) -> None:
    if not input_path.is_file():
        raise AnnotateError(f"{input_path}: no such input file")
    if same_file(input_path, output_path):
        raise AnnotateError(f"{output_path}: OUTPUT is the INPUT file; annotate never writes over its input")
    if same_file(input_path, errors_path) or same_file(output_path, errors_path):
        raise AnnotateError(f"{errors_path}: the errors file would replace INPUT or OUTPUT; choose another --errors")


def _pipe_runner(nlp: Language, options: AnnotateOptions) -> Runner:
    """``pipe_to_lines`` as a runner: its results in lists of ``options.batch_size``. With
    more than one process on the CPU, in forked workers that return finished lines
    (``annotate_processes``: spaCy's ``n_process`` ships every Doc, ``doc.tensor`` and
    all, back to this process, which rebuilds and converts them one by one)."""
    n_workers = worker_count(options.n_process)
    if n_workers > 1 and options.gpu_id < 0 and not _on_gpu(nlp) and fork_available():
        return process_runner(
            functools.partial(_annotate_chunk, nlp, options),
            n_workers,
            chunk_size=options.batch_size,
            max_length=nlp.max_length,
        )

    def runner(records: Iterator[Tuple[DocId, str]]) -> Iterator[List[Result]]:
        return batched(pipe_to_lines(nlp, records, options), options.batch_size)

    return runner


def _annotate_chunk(nlp: Language, options: AnnotateOptions, records: List[Tuple[DocId, str]]) -> List[Result]:
    """A worker's task (``annotate_processes``): one chunk of records through the pipeline
    in this process, as lines (or why not)."""
    return list(pipe_to_lines(nlp, records, options, n_process=1))


def _on_gpu(nlp: Language) -> bool:
    """Whether a pipe of ``nlp`` runs on a GPU (its worker processes could not be forked)."""
    from thinc.api import CupyOps

    return any(isinstance(getattr(getattr(proc, "model", None), "ops", None), CupyOps) for _, proc in nlp.pipeline)


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
            error = replace(result, line=self.index.records.get(doc_id_key(result.doc_id), (None, 0))[0])
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
