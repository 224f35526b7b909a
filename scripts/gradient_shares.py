"""Print (and optionally save) each head's share of the shared encoder's gradient.

    python scripts/gradient_shares.py configs/scierc.cfg corpus/scierc/train.spacy \
        [--model training/scierc/model-best] [--batches 5] [--output metrics/shares.json]

Without ``--model`` the pipeline is built from the config and initialized on the corpus
(the shares at initialization); with it, a trained pipeline is measured. Batches are the
config's batcher over the corpus, in order (no shuffling), so the figures repeat.
"""
import argparse
import json
import sys
from pathlib import Path

from spacy_hmtl_dev.gradient_shares import measure_gradient_shares


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("corpus", help=".spacy file of training docs")
    parser.add_argument("--model", help="a trained pipeline directory instead of a fresh one")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    shares = measure_gradient_shares(args.config, args.corpus, model=args.model, batches=args.batches, seed=args.seed)
    result = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        "model": args.model or f"{args.config} (initialized)",
        "batches": args.batches,
        "shares": shares,
    }
    for head, s in result["shares"].items():
        print(f"{head:16s} share of the encoder gradient: mean {s['mean']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
