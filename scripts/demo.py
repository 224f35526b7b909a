"""Print what a trained spacy-hmtl pipeline finds in a sample text.

Usage: python scripts/demo.py MODEL ["text"]
"""
import sys

import spacy

SAMPLE = (
    "We present a statistical parser that uses a maximum entropy model . "
    "The parser is evaluated on the Penn Treebank , and it outperforms previous approaches "
    "in accuracy and speed ."
)


def main(model: str, text: str = SAMPLE) -> None:
    nlp = spacy.load(model)
    doc = nlp(text)
    print(f"Pipeline: {nlp.pipe_names}\nText: {doc.text}\n")
    print("Entities:", [(ent.text, ent.label_) for ent in doc.ents])
    if "mentions" in doc.spans:
        print("Mentions:", [(span.text, span.label_) for span in doc.spans["mentions"]])
    if doc._.relations is not None:
        print("Relations:", [(r.head.text, r.label, r.tail.text, round(r.score, 2)) for r in doc._.relations])
    if doc._.coref_clusters is not None:
        print("Coreference:", [[span.text for span in cluster] for cluster in doc._.coref_clusters])


if __name__ == "__main__":
    main(*sys.argv[1:])
