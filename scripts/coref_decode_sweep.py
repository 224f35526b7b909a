"""Coreference decoding settings against accuracy and time.

    python scripts/coref_decode_sweep.py MODEL CORPUS --windows 800 400 250 [--thresholds -1 0] \
        [--candidates 50 100] [--rounds 3] [--threads 1] --output benchmarks/coref_decode_litbank

writes OUTPUT.md and OUTPUT.json with the command and the machine: for every
``decode_max_antecedents`` (``--windows``) and ``link_threshold`` (``--thresholds``; default the
pipeline's own) and, for a model with coarse-to-fine pruning, ``decode_coarse_antecedents``
(``--candidates``; default the pipeline's own), the coreference F1 on CORPUS (read as the pipeline's dev set is read) and the
median time of the coreference pipe alone. Tune on a dev set; both settings are decoding only.
"""
import argparse
import shlex
import sys
from typing import List, Optional

import torch

from spacy_hmtl_dev.coref_decode_sweep import run_sweep


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a trained pipeline with hmtl_coref")
    parser.add_argument("corpus", help="a .spacy file (a dev set)")
    parser.add_argument("--windows", type=int, nargs="+", required=True, help="decode_max_antecedents values")
    parser.add_argument("--thresholds", type=float, nargs="+", default=None, help="link_threshold values (default: the pipeline's)")
    parser.add_argument(
        "--candidates", type=int, nargs="+", default=None,
        help="decode_coarse_antecedents values (coarse-to-fine models; default: the pipeline's)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of the coreference pipe per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output", required=True, help="OUTPUT.md and OUTPUT.json are written")
    args = parser.parse_args(argv)
    if min(args.windows) < 1 or args.rounds < 1 or args.threads < 1 or min(args.candidates or [1]) < 1:
        parser.error("--windows, --candidates, --rounds and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "scripts/coref_decode_sweep.py"] + list(sys.argv[1:] if argv is None else argv))
    try:
        rows = run_sweep(args.model, args.corpus, args.windows, args.thresholds, args.rounds, args.output, command, args.candidates)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
