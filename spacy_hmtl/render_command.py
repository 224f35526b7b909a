"""``python -m spacy_hmtl render``: the command line of the HTML renderer.

The rendering is ``spacy_hmtl.render``'s; this module parses the arguments, gets the
documents (annotated here with MODEL, or read from ``--jsonl``) and writes the page.

The command never writes over its ``--jsonl`` input, nor over an existing ``--output``
without ``--overwrite``; the page is written atomically. A ``--jsonl`` record that is
not a document written by ``annotate`` is reported (file:line, id, reason) and, with
``--on-error skip`` (the default), left out of the page (exit status 3); ``--on-error
stop`` stops there (exit status 1) and writes nothing.
"""
import argparse
import sys
from typing import Any, List, Optional, Sequence

from .annotate_input import unicode_problem
from .annotate_records import EXIT_SKIPPED, AnnotateError
from .doc_json import doc_to_json
from .pipeline_loading import load_model
from .render import assemble, render_blocks, render_jsonl, render_layers
from .safe_io import output_problem, write_atomic


def add_render(subparsers: Any) -> None:
    """Add the ``render`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "render",
        help="render entities, mentions, relations and coreference as a standalone HTML page",
        description=(
            "Annotate TEXT (one or more documents) with MODEL, or read documents already "
            "annotated by `annotate` (--jsonl), and write a self-contained HTML page."
        ),
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", default=None, help="pipeline name or path")
    parser.add_argument("texts", metavar="TEXT", nargs="*", help="text(s) to annotate and render")
    parser.add_argument("--jsonl", metavar="PATH", default=None,
                        help="render the output of `annotate` instead (no MODEL needed)")
    parser.add_argument("--limit", type=int, default=None, help="--jsonl: render at most this many documents")
    parser.add_argument("--output", "-o", metavar="FILE", default=None, help="HTML file to write (default stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--on-error", choices=("skip", "stop"), default="skip",
                        help="--jsonl: a record that cannot be rendered is left out (default; exit status 3) "
                             "or stops the command (exit status 1)")
    layers = ",".join(render_layers())
    parser.add_argument("--layers", default=layers, help=f"comma-separated layers to show (default {layers})")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to use (default -1: CPU)")
    parser.set_defaults(handler=run_render, parser=parser)


def run_render(args: argparse.Namespace) -> int:
    """Run the ``render`` command.

    args: the parsed arguments (``add_render``'s parser).
    RETURNS (int): the exit status: 0, 1 (an error, reported on stderr) or
        ``EXIT_SKIPPED`` (some ``--jsonl`` records were left out).
    """
    layers = _parsed_layers(args)
    _check_sources(args)
    try:
        _check_output(args.output, args.jsonl, overwrite=args.overwrite)
        if args.jsonl is not None:
            blocks, n_skipped = render_jsonl(args.jsonl, layers=layers, limit=args.limit, on_error=args.on_error)
        else:
            blocks, n_skipped = _annotate_and_render(args.model, args.texts, layers, gpu_id=args.gpu_id), 0
        _write_page(assemble(blocks), args.output, n_docs=len(blocks))
    except (AnnotateError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return EXIT_SKIPPED if n_skipped else 0


def _parsed_layers(args: argparse.Namespace) -> List[str]:
    """The ``--layers`` to show; an unknown one is a usage error (exit status 2)."""
    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    known = render_layers()
    bad = [layer for layer in layers if layer not in known]
    if bad:
        args.parser.error(f"unknown layers {bad}; choose from {','.join(known)}")
    return layers


def _check_sources(args: argparse.Namespace) -> None:
    """Either ``--jsonl`` or MODEL and TEXTs: anything else is a usage error (exit status 2)."""
    if args.jsonl is not None and (args.model is not None or args.texts):
        args.parser.error("--jsonl renders an annotated file: give no MODEL or TEXT")
    if args.jsonl is None and (args.model is None or not args.texts):
        args.parser.error("give MODEL and at least one TEXT (or --jsonl PATH)")


def _check_output(output: Optional[str], jsonl: Optional[str], *, overwrite: bool) -> None:
    """Refuse an ``--output`` that exists (without ``overwrite``) or is the ``--jsonl`` input."""
    if output is None:
        return
    problem = output_problem(output, [jsonl] if jsonl else [], overwrite=overwrite)
    if problem is not None:
        raise AnnotateError(f"{output}: {problem}")


def _annotate_and_render(model: str, texts: Sequence[str], layers: Sequence[str], *, gpu_id: int) -> List[str]:
    """Load MODEL, annotate the TEXTs and render each as a block."""
    nlp = load_model(model, gpu_id)
    docs = [doc_to_json(doc) for doc in nlp.pipe(_check_texts(texts))]
    return render_blocks(docs, layers=layers)


def _check_texts(texts: Sequence[str]) -> Sequence[str]:
    """``texts``, or AnnotateError naming the first that is not valid Unicode."""
    for i, text in enumerate(texts, start=1):
        problem = unicode_problem(text)
        if problem is not None:
            raise AnnotateError(f"TEXT {i} {problem} (not UTF-8 on the command line?)")
    return texts


def _write_page(markup: str, output: Optional[str], *, n_docs: int) -> None:
    """The page on stdout, or written atomically to ``output`` (and said on stderr)."""
    if output is None:
        sys.stdout.write(markup)
    else:
        write_atomic(output, markup.encode("utf8"))
        print(f"wrote {n_docs} document(s) to {output}", file=sys.stderr)
