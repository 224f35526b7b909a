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

RELATION_KEYS = ("rel_micro_p", "rel_micro_r", "rel_micro_f", "rel_strict_p", "rel_strict_r", "rel_strict_f")


def gold_entities_on(doc, reference, index: int) -> list:
    """The reference's entities as spans of ``doc`` (which may be tokenized differently),
    each widened to the tokens it touches; a ValueError names the document and the entity
    that no token of ``doc`` covers."""
    spans = []
    for ent in reference.ents:
        span = doc.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
        if span is None:
            raise ValueError(
                f"document {index}: gold entity {ent.text!r} ({ent.label_}, characters "
                f"{ent.start_char}-{ent.end_char}) covers no token of the predicted document"
            )
        spans.append(span)
    return spans


def relation_scores(nlp, examples, gold_entities: bool) -> Dict[str, Optional[float]]:
    """The relation scorer's figures with predicted (or, if ``gold_entities``, gold) entities."""
    from spacy.training import Example

    predicted = []
    for index, eg in enumerate(examples):
        doc = eg.predicted.copy()
        for name, pipe in nlp.pipeline:
            doc = pipe(doc)
            if gold_entities and name == "hmtl_ner":
                doc.ents = gold_entities_on(doc, eg.reference, index)
        predicted.append(Example(doc, eg.reference))
    scores = nlp.get_pipe("hmtl_relations").score(predicted)
    return {key: scores.get(key) for key in RELATION_KEYS}


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
