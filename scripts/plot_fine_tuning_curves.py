"""Dev curves of each fine-tuned config beside its frozen-MiniLM config, from committed logs.

    python scripts/plot_fine_tuning_curves.py [--logs benchmarks/logs] [--output docs/images/ft]

writes ``OUTPUT_{conll04,scierc,litbank}_dev_steps.png``: one panel per head, dev F1 against
training steps, the frozen config dashed and the fine-tuned one solid, seed 0 both; and
``_dev_time.png``, the same against wall time, for the logs that record it (the fine-tuned
runs' ``spacy_hmtl.TimedConsoleLogger.v1`` logs; the frozen runs' older logs do not). The pairs are those of ``docs/ACCURACY.md``'s
before/after tables ("Eighth accuracy round", "Ninth round", "Tenth round"). A missing log is
named and its corpus skipped. Needs the ``plots`` extra (matplotlib).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from spacy_hmtl_dev.fine_tuning_curves import write_plots


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", default="benchmarks/logs")
    parser.add_argument("--output", default="docs/images/ft", help="path stem of the PNG files")
    args = parser.parse_args(argv)
    written = write_plots(Path(args.logs), args.output)
    for path in written:
        print(path)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
