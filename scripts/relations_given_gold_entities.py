"""Relation F1 of a trained pipeline when its relation head is given the gold entities.

    python scripts/relations_given_gold_entities.py training/conll04/model-best \
        corpus/conll04/dev.spacy --output benchmarks/relations_gold_entities_conll04.json

Runs every pipe as ``nlp.pipe`` would, except that right after ``hmtl_ner`` the predicted
entities are replaced by the gold ones, so ``hmtl_relations`` (entity source ``ents``) scores
pairs of gold arguments. Beside the end-to-end scores of the same pipeline on the same documents,
this separates what the relation head gets wrong from what it inherits from the entity head.
Writes a JSON file with the command, both sets of relation scores and the document count.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy_hmtl_dev.gold_entities import relation_scores


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a trained pipeline with hmtl_ner and hmtl_relations")
    parser.add_argument("corpus", nargs="+", help=".spacy file(s), read like the pipeline's dev set")
    parser.add_argument("--output", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    import spacy

    from spacy_hmtl.safe_io import write_atomic
    from spacy_hmtl.training import read_like_dev

    nlp = spacy.load(args.model)
    missing = [name for name in ("hmtl_ner", "hmtl_relations") if name not in nlp.pipe_names]
    if missing:
        print(f"{args.model}: no {', '.join(missing)} pipe; this comparison needs both", file=sys.stderr)
        return 1
    examples = read_like_dev(nlp, args.corpus)
    report: Dict[str, Any] = {
        "command": "python scripts/relations_given_gold_entities.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model,
        "corpus": args.corpus,
        "n_docs": len(examples),
        "predicted_entities": relation_scores(nlp, examples, gold_entities=False),
        "gold_entities": relation_scores(nlp, examples, gold_entities=True),
    }
    write_atomic(Path(args.output), (json.dumps(report, indent=2) + "\n").encode("utf8"))
    for name in ("predicted_entities", "gold_entities"):
        figures = report[name]
        print(f"{name:20s} boundaries F1 {100 * (figures['rel_micro_f'] or 0):.1f}  strict F1 {100 * (figures['rel_strict_f'] or 0):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
