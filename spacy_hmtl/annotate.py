"""Batch annotation: run a pipeline over a JSONL or plain-text file, write JSONL.

``python -m spacy_hmtl annotate MODEL INPUT OUTPUT`` reads documents, runs them through
``nlp.pipe`` and writes one JSON object per document (see ``doc_to_json``), in input order.

* Input: JSONL (one object per line, text under ``--text-key``, optional id under
  ``--id-key``; the line number when absent) or plain text (one document per line, id =
  line number). ``--format auto`` decides by extension: ``.jsonl``/``.ndjson``/``.json``
  are JSONL, anything else plain text. Blank lines are skipped (ids stay line numbers).
  The whole input is validated before anything runs, so a malformed line is reported
  (``file:line: ...``) before any work is lost.
* Output: appended one batch at a time and flushed, so an interrupted run keeps every
  document it wrote. Re-running with the same OUTPUT resumes: the existing file is
  validated, a truncated last line (the mark of an interrupted write) is cut off, and the
  documents whose ids are already there are skipped. Written documents are never
  duplicated; ``--overwrite`` starts from scratch.

The per-document conversion, ``doc_to_json``, is reusable on its own; ``iter_input``,
``OutputState`` and ``annotate_file`` are what the distributed runner
(``spacy_hmtl.distributed``) shares with this single-process path.
"""
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

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

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
INPUT_FORMATS = ("auto", "jsonl", "text")
SCORE_DIGITS = 6

DocId = Union[str, int]
# (id, text, line number in the input)
InputRecord = Tuple[DocId, str, int]


class AnnotateError(ValueError):
    """Bad input or an output file that cannot be resumed (message names file and line)."""


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
    if has_mention_annotation(doc, mentions_key):
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
        out["mentions"] = mentions
    else:
        out["mentions"] = None
    records = get_relation_records(doc)
    if records is None:
        out["relations"] = None
    else:
        labels = _entity_labels(doc)
        out["relations"] = [
            {
                "head": span_to_json(doc[hs:he], labels.get((hs, he), "")),
                "tail": span_to_json(doc[ts:te], labels.get((ts, te), "")),
                "label": label,
                "score": _score(score),
            }
            for hs, he, ts, te, label, score in records
        ]
    clusters = get_coref_clusters(doc)
    out["coref_clusters"] = (
        None if clusters is None else [[span_to_json(doc[s:e]) for s, e in cluster] for cluster in clusters]
    )
    return out


def _entity_labels(doc: Doc) -> Dict[Tuple[int, int], str]:
    """(start, end) -> label of the entities a relation argument can be."""
    labels: Dict[Tuple[int, int], str] = {}
    overflow = doc.spans[ENTS_OVERFLOW_KEY] if ENTS_OVERFLOW_KEY in doc.spans else []
    for span in list(overflow) + list(doc.ents):  # doc.ents wins
        labels[(span.start, span.end)] = span.label_
    return labels


def dumps_line(obj: Dict[str, Any]) -> str:
    """One JSONL line (with its newline); the same bytes on every path."""
    return json.dumps(obj, ensure_ascii=False) + "\n"


# --- input --------------------------------------------------------------------------


def resolve_format(path: Union[str, Path], fmt: str = "auto") -> str:
    if fmt not in INPUT_FORMATS:
        raise AnnotateError(f"unknown input format {fmt!r} (expected one of {', '.join(INPUT_FORMATS)})")
    if fmt != "auto":
        return fmt
    return "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "text"


def _id_key(doc_id: DocId) -> str:
    # 1 and "1" are different ids; JSON spells them differently.
    return json.dumps(doc_id)


def iter_input(
    path: Union[str, Path], fmt: str = "auto", *, text_key: str = "text", id_key: str = "id"
) -> Iterator[InputRecord]:
    """Yield ``(id, text, line_number)`` for each document of the input (lazily).

    Raises AnnotateError, naming the file and line, for a line that is not valid UTF-8,
    not a JSON object, lacks a string text, has an id that is not a string or an
    integer, or repeats an id.
    """
    path = Path(path)
    fmt = resolve_format(path, fmt)
    seen: Set[str] = set()
    with path.open("rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                raise AnnotateError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            line = line.rstrip("\r\n")
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            if fmt == "text":
                doc_id: DocId = lineno
                text = line
            else:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise AnnotateError(f"{where}: not valid JSON ({err.msg}, column {err.colno})") from None
                if not isinstance(obj, dict):
                    raise AnnotateError(f"{where}: expected a JSON object, found {type(obj).__name__}")
                if text_key not in obj:
                    raise AnnotateError(f"{where}: no {text_key!r} field (see --text-key)")
                text = obj[text_key]
                if not isinstance(text, str):
                    raise AnnotateError(f"{where}: {text_key!r} must be a string, found {type(text).__name__}")
                doc_id = obj.get(id_key, lineno)
                if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
                    raise AnnotateError(f"{where}: {id_key!r} must be a string or an integer, found {doc_id!r}")
            key = _id_key(doc_id)
            if key in seen:
                raise AnnotateError(f"{where}: duplicate id {doc_id!r} (ids must be unique to resume)")
            seen.add(key)
            yield doc_id, text, lineno


def validate_input(path: Union[str, Path], fmt: str = "auto", *, text_key: str = "text", id_key: str = "id") -> List[str]:
    """Read the whole input once (raising on the first bad line); return the id keys."""
    return [_id_key(doc_id) for doc_id, _, _ in iter_input(path, fmt, text_key=text_key, id_key=id_key)]


# --- output (resume) ----------------------------------------------------------------


@dataclass
class OutputState:
    """What an existing OUTPUT already holds, after repairing an interrupted write."""

    done: Set[str] = field(default_factory=set)  # id keys already written
    n_lines: int = 0
    repaired_bytes: int = 0  # size of the truncated last line that was cut off


def prepare_output(path: Union[str, Path], input_ids: Sequence[str], *, overwrite: bool = False) -> OutputState:
    """Validate (and repair) an existing output file so that annotation can append to it.

    A last line without its newline is what an interrupted write leaves: it is cut off
    (its document is annotated again). Any other line that is not a JSON object with an
    ``id``, a repeated id, or an id that is not in the input raises AnnotateError: the file
    is probably not this input's output, and appending would mix two runs.
    """
    path = Path(path)
    state = OutputState()
    if overwrite or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return state
    if not path.is_file():
        raise AnnotateError(f"{path}: the output exists and is not a file")
    wanted = set(input_ids)
    good_end = 0
    with path.open("rb") as fileh:
        for lineno, raw in enumerate(fileh, start=1):
            if not raw.endswith(b"\n"):
                state.repaired_bytes = len(raw)
                break
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(raw.decode("utf8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise AnnotateError(
                    f"{where}: not a complete JSON line; not written by annotate? (use --overwrite to start again)"
                ) from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise AnnotateError(f"{where}: a line without an 'id'; not written by annotate? (use --overwrite)")
            key = _id_key(obj["id"])
            if key in state.done:
                raise AnnotateError(f"{where}: id {obj['id']!r} is written twice (use --overwrite)")
            if key not in wanted:
                raise AnnotateError(
                    f"{where}: id {obj['id']!r} is not in the input; is this another input's output? (use --overwrite)"
                )
            state.done.add(key)
            state.n_lines += 1
            good_end += len(raw)
    if state.repaired_bytes:
        with path.open("r+b") as fileh:
            fileh.truncate(good_end)
    return state


class JsonlAppender:
    """Append lines to OUTPUT, one flushed write per batch."""

    def __init__(self, path: Union[str, Path], fsync: bool = False):
        self.fileh = Path(path).open("ab")
        self.fsync = fsync

    def write_batch(self, lines: Sequence[str]) -> None:
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


# --- running ------------------------------------------------------------------------


@dataclass
class AnnotateSummary:
    n_input: int
    n_skipped: int
    n_written: int
    repaired: bool
    output: str

    def format(self) -> str:
        msg = f"{self.n_written} documents annotated -> {self.output}"
        if self.n_skipped:
            msg += f" ({self.n_skipped} already there, skipped)"
        if self.repaired:
            msg += " (cut off a truncated last line left by an interrupted run)"
        return msg


def pipe_to_lines(
    nlp: Language,
    records: Iterable[Tuple[DocId, str]],
    *,
    batch_size: int,
    n_process: int = 1,
    mentions_key: str = MENTIONS_KEY,
) -> Iterator[str]:
    """Annotate ``(id, text)`` pairs with ``nlp.pipe``; yield JSONL lines in input order."""
    pairs = ((text, doc_id) for doc_id, text in records)
    for doc, doc_id in nlp.pipe(pairs, as_tuples=True, batch_size=batch_size, n_process=n_process):
        yield dumps_line(doc_to_json(doc, doc_id, mentions_key=mentions_key))


def batched(items: Iterable[Any], size: int) -> Iterator[List[Any]]:
    batch: List[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    show_progress: bool = True,
    fsync: bool = False,
    mentions_key: str = MENTIONS_KEY,
    torch_threads: Optional[int] = None,
    runner: Optional[Callable[[Iterator[Tuple[DocId, str]]], Iterator[List[str]]]] = None,
) -> AnnotateSummary:
    """Annotate INPUT into OUTPUT (JSONL), resuming an existing OUTPUT.

    model: a pipeline name or path (loaded here) or a loaded ``Language``.
    torch_threads: torch threads per process while annotating (default: torch's own
        setting, or the CPUs shared out among the processes when ``n_process > 1``; an
        oversubscribed CPU makes torch's thread pool very slow).
    runner: replaces ``nlp.pipe``: a function of the pending ``(id, text)`` pairs that yields
        lists of JSONL lines, in input order (``spacy_hmtl.distributed`` passes one; the
        model is then not loaded here).
    RETURNS (AnnotateSummary): counts, for the CLI's message.
    """
    if batch_size < 1:
        raise AnnotateError("--batch-size must be at least 1")
    if n_process < 1 and n_process != -1:
        raise AnnotateError("--n-process must be at least 1 (or -1 for all CPUs)")
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise AnnotateError(f"{input_path}: no such input file")
    if input_path.resolve() == output_path.resolve():
        raise AnnotateError("INPUT and OUTPUT are the same file")
    ids = validate_input(input_path, input_format, text_key=text_key, id_key=id_key)
    state = prepare_output(output_path, ids, overwrite=overwrite)
    pending = (
        (doc_id, text)
        for doc_id, text, _ in iter_input(input_path, input_format, text_key=text_key, id_key=id_key)
        if _id_key(doc_id) not in state.done
    )
    n_pending = len(ids) - len(state.done)
    if runner is None and n_pending:
        nlp = model if isinstance(model, Language) else load_pipeline(model, gpu_id=gpu_id)

        def runner(records: Iterator[Tuple[DocId, str]]) -> Iterator[List[str]]:
            lines = pipe_to_lines(nlp, records, batch_size=batch_size, n_process=n_process, mentions_key=mentions_key)
            return batched(lines, batch_size)

    n_written = 0
    bar = None
    if show_progress and n_pending:
        from tqdm import tqdm

        bar = tqdm(total=len(ids), initial=len(state.done), unit="doc", file=sys.stderr, desc="annotate")
    if torch_threads is None and n_process != 1:
        n_procs = (os.cpu_count() or 1) if n_process == -1 else n_process
        torch_threads = max(1, (os.cpu_count() or 1) // n_procs)
    restore_threads = _set_torch_threads(torch_threads) if torch_threads and n_pending else None
    try:
        with JsonlAppender(output_path, fsync=fsync) as out:
            if n_pending:
                for lines in runner(pending):
                    out.write_batch(lines)
                    n_written += len(lines)
                    if bar is not None:
                        bar.update(len(lines))
    finally:
        if bar is not None:
            bar.close()
        if restore_threads is not None:
            _set_torch_threads(restore_threads)
    return AnnotateSummary(
        n_input=len(ids),
        n_skipped=len(state.done),
        n_written=n_written,
        repaired=bool(state.repaired_bytes),
        output=str(output_path),
    )


def _set_torch_threads(n: int) -> int:
    """Set torch's intra-op threads (inherited by forked ``nlp.pipe`` workers); return the old value."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    return old


def load_pipeline(model: Union[str, Path], *, gpu_id: int = -1) -> Language:
    """``spacy.load`` after selecting the GPU (``gpu_id >= 0``) or the CPU."""
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


# --- command line -------------------------------------------------------------------


def add_annotate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "annotate",
        help="annotate a JSONL or text file with a pipeline, writing JSONL (resumable)",
        description=(
            "Run MODEL over INPUT (JSONL with a text field and an optional id, or plain text "
            "with one document per line) and write one JSON object per document to OUTPUT: "
            "id, text, tokens, entities, mentions, relations, coref_clusters. Re-running with "
            "an existing OUTPUT resumes: documents already written are skipped and a "
            "truncated last line is repaired."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="pipeline name or path")
    parser.add_argument("input", metavar="INPUT")
    parser.add_argument("output", metavar="OUTPUT")
    parser.add_argument("--format", dest="input_format", choices=INPUT_FORMATS, default="auto",
                        help="input format (auto: .jsonl/.ndjson/.json are JSONL, anything else text)")
    parser.add_argument("--text-key", default="text", help="JSONL field holding the text (default text)")
    parser.add_argument("--id-key", default="id", help="JSONL field holding the id (default id; line number if absent)")
    parser.add_argument("--n-process", type=int, default=1, help="processes for nlp.pipe (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="documents per batch and per flushed write")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads per process (default: torch's, or CPUs / processes)")
    parser.add_argument("--overwrite", action="store_true", help="start again instead of resuming OUTPUT")
    parser.add_argument("--fsync", action="store_true", help="fsync OUTPUT after every batch")
    parser.add_argument("--mentions-key", default=MENTIONS_KEY, help="doc.spans key of the mentions")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--dask-scheduler", metavar="ADDRESS", default=None,
                      help="run on this dask.distributed scheduler (needs the 'distributed' extra; "
                           "MODEL must be loadable on every worker)")
    dask.add_argument("--dask-local-workers", type=int, metavar="N", default=None,
                      help="start a local dask cluster of N worker processes (1 thread each)")
    parser.add_argument("--dask-partition-size", type=int, default=None, metavar="DOCS",
                        help="documents per dask task (default 4 x batch size)")
    parser.set_defaults(handler=run_annotate, parser=parser)


def run_annotate(args: Any) -> int:
    use_dask = args.dask_scheduler is not None or args.dask_local_workers is not None
    if use_dask and args.n_process != 1:
        args.parser.error("--n-process does not combine with --dask-*: dask runs the processes")
    if args.dask_partition_size is not None and not use_dask:
        args.parser.error("--dask-partition-size needs --dask-scheduler or --dask-local-workers")
    if args.threads is not None and args.threads < 1:
        args.parser.error("--threads must be at least 1")
    if args.dask_local_workers is not None and args.dask_local_workers < 1:
        args.parser.error("--dask-local-workers must be at least 1")
    options = dict(
        batch_size=args.batch_size,
        text_key=args.text_key,
        id_key=args.id_key,
        input_format=args.input_format,
        gpu_id=args.gpu_id,
        overwrite=args.overwrite,
        show_progress=not args.no_progress,
        fsync=args.fsync,
        mentions_key=args.mentions_key,
        torch_threads=args.threads,
    )
    try:
        if use_dask:
            from .distributed import annotate_file_dask

            summary = annotate_file_dask(
                args.model,
                args.input,
                args.output,
                scheduler=args.dask_scheduler,
                local_workers=args.dask_local_workers,
                partition_size=args.dask_partition_size,
                **options,
            )
        else:
            summary = annotate_file(args.model, args.input, args.output, n_process=args.n_process, **options)
    except (AnnotateError, OSError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0
