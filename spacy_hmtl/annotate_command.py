"""``python -m spacy_hmtl annotate``: the command line of the batch annotator.

The work is done by ``spacy_hmtl.batch_annotator.annotate_file`` (one machine) and
``spacy_hmtl.distributed.annotate_file_dask`` (a dask cluster); this module only parses the
arguments and picks one, so neither library module imports the other's command line.
"""
import sys
from typing import Any

from .annotate_input import INPUT_FORMATS
from .annotate_options import ON_ERROR, AnnotateOptions
from .annotate_output import OUTPUT_FORMATS
from .annotate_records import AnnotateError
from .annotations import MENTIONS_KEY
from .batch_annotator import annotate_file
from .tasks import registered_tasks


def add_annotate(subparsers: Any) -> None:
    """Add the ``annotate`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "annotate",
        help="annotate a JSONL or text file with a pipeline, writing JSONL (resumable)",
        description=(
            "Run MODEL over INPUT (JSONL with a text field and an optional id, or plain text "
            "with one document per line) and write one JSON object per document to OUTPUT: "
            f"{', '.join(['id', 'text', 'tokens'] + [task.json_key for task in registered_tasks()])}. Re-running with "
            "an existing OUTPUT resumes: documents already written are skipped and a "
            "truncated last line is repaired; an input edited since is refused. Records that "
            "cannot be annotated are reported (file:line, id, reason) and, with --on-error "
            "skip, listed in the errors file. Exit status: 0 all annotated, 1 error, 2 usage, "
            "3 some records skipped."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="pipeline name or path")
    parser.add_argument("input", metavar="INPUT")
    parser.add_argument("output", metavar="OUTPUT")
    parser.add_argument("--format", dest="input_format", choices=INPUT_FORMATS, default="auto",
                        help="input format (auto: .jsonl/.ndjson/.json are JSONL, anything else text)")
    parser.add_argument("--text-key", default="text", help="JSONL field holding the text (default text)")
    parser.add_argument("--id-key", default="id", help="JSONL field holding the id (default id; line number if absent)")
    parser.add_argument("--on-error", choices=ON_ERROR, default="skip",
                        help="a record that cannot be annotated: skip it (default; listed in the errors "
                             "file, exit status 3) or stop there (exit status 1)")
    parser.add_argument("--errors", metavar="PATH", default=None,
                        help="errors file for --on-error skip (default: OUTPUT with .errors.jsonl for its extension)")
    parser.add_argument("--n-process", type=int, default=1,
                        help="worker processes (default 1; -1: one per CPU), each taking a batch at a time "
                             "and running one torch thread")
    parser.add_argument("--batch-size", type=int, default=32, help="documents per batch and per flushed write")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads of a one-process run (default: torch's; with --n-process, "
                             "each worker runs one)")
    parser.add_argument("--overwrite", action="store_true", help="start again instead of resuming OUTPUT")
    parser.add_argument("--fsync", action="store_true", help="fsync OUTPUT after every batch")
    parser.add_argument("--mentions-key", default=MENTIONS_KEY, help="doc.spans key of the mentions")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default="doc",
                        help="doc: the layers (default); graph: the layers plus each document's entity "
                             "graph under 'graph' (docs/GRAPH.md); prodigy: one Prodigy task per document, "
                             "to correct and read back with `convert prodigy` (docs/OWN_DATA.md)")
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
    """Run the ``annotate`` command.

    args: the parsed arguments (``add_annotate``'s parser).
    RETURNS (int): the exit status: 0, 1 (an error, reported on stderr) or
        ``EXIT_SKIPPED`` (some records could not be annotated).
    """
    use_dask = _check_args(args)
    options = _annotate_options(args)
    try:
        if use_dask:
            from .distributed import annotate_file_dask

            summary = annotate_file_dask(
                args.model,
                args.input,
                args.output,
                options,
                scheduler=args.dask_scheduler,
                local_workers=args.dask_local_workers,
                partition_size=args.dask_partition_size,
            )
        else:
            summary = annotate_file(args.model, args.input, args.output, options)
    except (AnnotateError, OSError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return summary.exit_code


def _check_args(args: Any) -> bool:
    """Whether to run on dask; options that do not combine are a usage error (exit status 2)."""
    use_dask = args.dask_scheduler is not None or args.dask_local_workers is not None
    if use_dask and args.n_process != 1:
        args.parser.error("--n-process does not combine with --dask-*: dask runs the processes")
    if args.dask_partition_size is not None and not use_dask:
        args.parser.error("--dask-partition-size needs --dask-scheduler or --dask-local-workers")
    if args.threads is not None and args.threads < 1:
        args.parser.error("--threads must be at least 1")
    if args.dask_local_workers is not None and args.dask_local_workers < 1:
        args.parser.error("--dask-local-workers must be at least 1")
    return use_dask


def _annotate_options(args: Any) -> AnnotateOptions:
    """The options of the run (``annotate_file`` and ``annotate_file_dask`` take the same;
    ``n_process`` is 1 with dask, ``_check_args`` saw to it)."""
    return AnnotateOptions(
        n_process=args.n_process,
        batch_size=args.batch_size,
        text_key=args.text_key,
        id_key=args.id_key,
        input_format=args.input_format,
        gpu_id=args.gpu_id,
        overwrite=args.overwrite,
        on_error=args.on_error,
        errors_path=args.errors,
        show_progress=not args.no_progress,
        fsync=args.fsync,
        mentions_key=args.mentions_key,
        torch_threads=args.threads,
        output_format=args.output_format,
    )
