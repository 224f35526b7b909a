"""Before/after table of the training and decoding fixes (issue 12): SciERC dev F1 of
pipelines trained with the same config, seed and steps, and of decode-time variants of one
trained pipeline (loaded with config overrides, no retraining).

    python scripts/fix_effects.py --dev corpus/scierc/dev.spacy --output benchmarks/fix_effects \
        --trained "before (main @ c0d5af1)=training/base/model-last" \
        --trained "one loss scale=training/lossnorm/model-last" \
        --variant "one loss scale + one relation per pair=training/lossnorm/model-last={...json...}" \
        --log "all fixes=training/new.log@600"

``--trained NAME=PATH`` evaluates a pipeline as saved; ``--variant NAME=PATH=JSON`` loads it
with ``spacy.load(PATH, config=JSON)`` first; ``--log NAME=FILE@STEP`` reads the dev scores
of evaluation STEP from a ``spacy train`` console log or a ``ConsoleLogger.v3`` JSONL file
(``spacy_hmtl_dev.train_log``).
Writes OUTPUT.md and OUTPUT.json with the command, the machine and the figures.
"""
import argparse
import sys
from typing import List, Optional

from spacy_hmtl_dev.fix_effects import run_fix_effects


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--trained", action="append", default=[])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--log", action="append", default=[])
    parser.add_argument("--order", help="comma-separated row names, in table order (default: sorted by name)")
    parser.add_argument("--title", default="Effect of each fix on SciERC dev (F1 %)", help="the report's heading")
    args = parser.parse_args(argv)
    command = "python scripts/fix_effects.py " + " ".join(f"'{a}'" if " " in a else a for a in (argv or sys.argv[1:]))
    run_fix_effects(
        dev=args.dev,
        output=args.output,
        trained=args.trained,
        variants=args.variant,
        logs=args.log,
        order=args.order.split(",") if args.order else None,
        title=args.title,
        command=command,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
