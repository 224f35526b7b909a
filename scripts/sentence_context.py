"""Does a sentence get the same entities and relations alone as inside a paragraph?

Reads the first N documents of a corpus (CoNLL04's are single sentences), annotates them one
by one, then joined K to a document, for each combination of the encoder's ``context`` and the
relation head's ``lstm_context`` (set at load time: the weights are the same). Counts the
entities and relations, and how many of the one-by-one relations (same character offsets
within the sentence, same label) the joined reading finds again, and the seconds each reading
took (one process, the same texts for every combination: compare them as ratios).

    python scripts/sentence_context.py --model training/conll04/model-best \
        --corpus corpus/conll04/dev.spacy --n-docs 60 --join 5 20 --output benchmarks/sentence_context

Writes OUTPUT.json and OUTPUT.md with the command, the machine and the figures.
"""
import argparse
import sys
from typing import List, Optional

from spacy_hmtl_dev.sentence_context import run_sentence_context


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True, help=".spacy file whose documents are sentences")
    parser.add_argument("--n-docs", type=int, default=60)
    parser.add_argument("--join", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--output", required=True, help="path without suffix: OUTPUT.json and OUTPUT.md")
    args = parser.parse_args(argv)
    command = "python scripts/sentence_context.py " + " ".join(argv if argv is not None else sys.argv[1:])
    run_sentence_context(args.model, args.corpus, args.n_docs, args.join, args.output, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
