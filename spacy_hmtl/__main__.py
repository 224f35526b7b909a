"""``python -m spacy_hmtl <command> ...``: see spacy_hmtl/cli.py."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
