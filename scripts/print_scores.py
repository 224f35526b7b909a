"""Print every head's scores from a ``spacy evaluate --output`` JSON file.

    python scripts/print_scores.py metrics/scierc_test.json
"""
import json
import sys

from spacy_hmtl.scores_table import format_scores

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf8") as file:
        print(format_scores(json.load(file)))
