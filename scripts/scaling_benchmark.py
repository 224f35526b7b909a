"""Time and peak memory of the full four-head HMTL pipeline as the document grows.

The pipeline is ``configs/scierc.cfg`` (default head sizes), initialized on one small
annotated document (untrained weights: timings do not depend on training, but the number
of predicted entities, and so of relation candidates, does; relation pairs are capped by
``max_pairs``). Documents are synthetic: real SciERC dev sentences repeated up to the
size, once with the sentence boundaries set and once without (one long "sentence": the
worst case for the span-based heads, whose candidates never cross a sentence).

Each (size, mode) runs in a fresh process, so peak RSS (``VmHWM``, reset at exec: see
``spacy_hmtl_dev.benchmarking``) is per run; within it every pipe is timed separately and the
RSS is sampled every 2 ms while it runs.

    python scripts/scaling_benchmark.py --sizes 1000 5000 20000 50000 --threads 1

writes ``benchmarks/scaling.json`` and ``benchmarks/scaling.md`` (``spacy_hmtl_dev.scaling``).
"""
import argparse
import shlex
import sys
from pathlib import Path

from spacy_hmtl_dev.paths import ROOT
from spacy_hmtl_dev.scaling import run_scaling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    parser.add_argument("--modes", nargs="+", choices=["sentences", "nosentences"], default=["sentences", "nosentences"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "scierc.cfg")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per (size, mode) run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--model", type=Path, default=None, help="a trained pipeline instead of untrained weights")
    args = parser.parse_args()
    command = "python scripts/scaling_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run_scaling(
        args.sizes,
        args.modes,
        threads=args.threads,
        config=args.config,
        timeout=args.timeout,
        output=args.output,
        model=args.model,
        command=command,
    )


if __name__ == "__main__":
    main()
