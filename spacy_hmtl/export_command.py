"""``python -m spacy_hmtl export``: an ``annotate`` output -> an annotation tool's import
file (``spacy_hmtl.exporters.export_file`` does the work; this module parses the
arguments and reports)."""
import sys
from typing import Any

from .converters import ConversionError
from .exporters import EXPORT_FORMATS, export_file


def add_export(subparsers: Any) -> None:
    """Add the ``export`` command's parser to ``subparsers``.

    subparsers: what ``argparse.ArgumentParser.add_subparsers`` returned.
    """
    parser = subparsers.add_parser(
        "export",
        help="turn an annotate output into Prodigy, Label Studio or brat input, to correct predictions",
        description=(
            "Read INPUT, the JSONL output of `annotate` (its default --output-format), and write "
            "the documents with their predicted layers as an annotation tool imports them: "
            "prodigy: JSONL tasks; labelstudio: a JSON array of tasks with the layers as "
            "predictions; brat: a directory of .txt + .ann files and an annotation.conf. "
            "`convert FORMAT` reads the corrected export back (docs/OWN_DATA.md). OUTPUT is "
            "written whole or not at all; an existing one is only replaced with --overwrite "
            "(a directory only when it holds a brat collection), and OUTPUT may never be INPUT."
        ),
    )
    parser.add_argument("format", choices=list(EXPORT_FORMATS), metavar="FORMAT", help=" | ".join(EXPORT_FORMATS))
    parser.add_argument("input", metavar="INPUT", help="annotate's JSONL output")
    parser.add_argument("output", metavar="OUTPUT", help="file (prodigy, labelstudio) or directory (brat)")
    parser.add_argument("--coref-label", default="COREF",
                        help="label of the coreference links (default COREF, what convert --coref-labels reads)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    parser.set_defaults(handler=run_export, parser=parser)


def run_export(args: Any) -> int:
    """Run the ``export`` command. RETURNS (int): 0, or 1 after an error reported on stderr."""
    if not args.coref_label or any(char.isspace() for char in args.coref_label):
        args.parser.error("--coref-label must be one word")
    try:
        summary = export_file(args.format, args.input, args.output, coref_label=args.coref_label, overwrite=args.overwrite)
    except (ConversionError, OSError) as err:
        # A malformed line or an output that may not be written: a message, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0
