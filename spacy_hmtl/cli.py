"""Command line: ``python -m spacy_hmtl <command> ...``.

Each command is a function ``add_<command>(subparsers)`` that adds its parser and sets
``handler`` (a function of the parsed args returning an exit code); add new commands
(e.g. ``annotate``) to COMMANDS.

Exit status: 0 done; 1 error (a message names the file and the problem); 2 bad usage;
3 (``annotate``, ``render``) done, but some records could not be processed and were
skipped (``--on-error skip``; each is reported). SIGTERM ends a command as Ctrl-C does:
its temporary files are removed.
"""
import argparse
import sys
from typing import Callable, List, Optional

from .annotate_command import add_annotate
from .evaluate_command import add_evaluate
from .export_command import add_export
from .package_command import add_package
from .graph.command import add_graph
from .render_command import add_render
from .safe_io import sigterm_exits
from .split_command import add_split
from .train_command import add_train, check_overrides

FORMATS = ("scierc", "conll04", "litbank", "conll", "conll2012", "prodigy", "labelstudio", "brat")
TOOL_FORMATS = ("prodigy", "labelstudio", "brat")
# Options that only make sense for some formats: name -> format(s).
FORMAT_OPTIONS = {
    "keep_ptb_brackets": "scierc",
    "fold": "litbank",
    "tag_column": "conll",
    "scheme": "conll",
    "n_sents": "conll",
    "span_layer": TOOL_FORMATS,
    "layers": TOOL_FORMATS,
    "coref_labels": TOOL_FORMATS,
    "lang": ("labelstudio", "brat"),
    "from_predictions": "labelstudio",
}


def add_convert(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a corpus to spaCy's .spacy format",
        description=(
            "Convert a corpus to .spacy (DocBin with user data), keeping entities, mentions, "
            "relations and coreference. scierc/conll04/conll: INPUT is a file, OUTPUT a .spacy "
            "file or an existing directory. conll2012: INPUT is a *_conll file or a directory "
            "searched for them, OUTPUT one .spacy file. litbank: INPUT is the litbank directory, OUTPUT a "
            "directory that receives train.spacy, dev.spacy and test.spacy. An existing "
            "output is only replaced with --overwrite; OUTPUT may never be INPUT."
        ),
    )
    parser.add_argument("format", choices=FORMATS, metavar="FORMAT", help=" | ".join(FORMATS))
    parser.add_argument("input", metavar="INPUT")
    parser.add_argument("output", metavar="OUTPUT")
    parser.add_argument("--keep-ptb-brackets", action="store_true", default=None,
                        help="scierc: keep -LRB- -RRB- ... instead of ( ) ...")
    parser.add_argument("--fold", type=int, default=None, help="litbank: fold of the ten-fold split (default 0)")
    parser.add_argument("--tag-column", type=int, default=None,
                        help="conll: column of the NER tag, negative from the end (default -1)")
    parser.add_argument("--scheme", choices=("auto", "iob1", "iob2", "bioes"), default=None,
                        help="conll: tagging scheme (default auto)")
    parser.add_argument("--n-sents", type=int, default=None,
                        help="conll: sentences per doc when there is no -DOCSTART- (default 10)")
    _add_tool_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.set_defaults(handler=run_convert, parser=parser)


def _add_tool_options(parser: argparse.ArgumentParser) -> None:
    """The options of the annotation-tool formats (docs/OWN_DATA.md)."""
    parser.add_argument("--span-layer", choices=("both", "entities", "mentions"), default=None,
                        help="prodigy/labelstudio/brat: spans become entities and mentions (both, default), "
                             "entities only, or mentions only (nested/overlapping allowed)")
    parser.add_argument("--layers", default=None, metavar="LIST",
                        help="prodigy/labelstudio/brat: layers to read, comma-separated out of entities,mentions,"
                             "relations,coref (default auto: those some document annotates)")
    parser.add_argument("--coref-labels", type=lambda v: tuple(x for x in v.split(",") if x), default=None,
                        metavar="LIST", help="prodigy/labelstudio/brat: relation labels that are coreference "
                                             "links (default COREF)")
    parser.add_argument("--lang", default=None, help="labelstudio/brat: spaCy language of the tokenizer (default en)")
    parser.add_argument("--from-predictions", action="store_true", default=None,
                        help="labelstudio: read a task's prediction when it has no annotation")


def run_convert(args: argparse.Namespace) -> int:
    # Imported here so that `--help` and other commands stay fast.
    from .converters import CONVERTERS, ConversionError

    options = {}
    for name, fmt in FORMAT_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        formats = (fmt,) if isinstance(fmt, str) else fmt
        if args.format not in formats:
            args.parser.error(f"--{name.replace('_', '-')} only applies to the {'/'.join(formats)} format")
        options[name] = value
    if options.get("n_sents", 1) < 1:
        args.parser.error("--n-sents must be at least 1")
    try:
        summary = CONVERTERS[args.format](
            args.input, args.output, show_progress=not args.no_progress, overwrite=args.overwrite, **options
        )
    except (ConversionError, OSError, ValueError) as err:
        # Bad input or an unwritable output: a message, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


COMMANDS: List[Callable[[argparse._SubParsersAction], None]] = [
    add_convert, add_split, add_train, add_evaluate, add_annotate, add_export, add_render, add_graph, add_package,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spacy_hmtl", description="spacy-hmtl commands")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run a command; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `train` takes spaCy's config overrides (--paths.train PATH ...), as `spacy train` does
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.overrides = check_overrides(extra)
    except ValueError as err:
        args.parser.error(str(err))
    with sigterm_exits():
        return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
