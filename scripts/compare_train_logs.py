"""Are two trainings the same? Compare the dev scores and losses of two `spacy train` JSONL logs.

    python scripts/compare_train_logs.py BEFORE.jsonl AFTER.jsonl --output benchmarks/NAME \\
        [--before-label TEXT] [--after-label TEXT] [--command TEXT]

For a refactor that must not change results: two runs of the same config, seed and steps,
one per version of the code. Every evaluation of both logs (``spacy.ConsoleLogger.v3`` or
``spacy_hmtl.TimedConsoleLogger.v1`` ``output_file``) is compared: each pipe's training loss
and each numeric dev score. Writes ``NAME.md`` and ``NAME.json`` (every value, the largest
difference, the verdict "identical" when every value is equal, bit for bit as logged).
Exits 1 when the runs differ.
"""
import argparse
import shlex
import sys
from pathlib import Path

from spacy_hmtl_dev.train_log_comparison import write_comparison


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--output", required=True, help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--before-label", default="before")
    parser.add_argument("--after-label", default="after")
    parser.add_argument("--command", default="", help="the training command both logs come from (for the report)")
    args = parser.parse_args(argv)
    command = "python " + shlex.join(["scripts/compare_train_logs.py"] + list(sys.argv[1:] if argv is None else argv))
    report = write_comparison(
        args.before,
        args.after,
        Path(args.output),
        before_label=args.before_label,
        after_label=args.after_label,
        training_command=args.command,
        command=command,
    )
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
