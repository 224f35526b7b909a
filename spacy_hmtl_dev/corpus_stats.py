"""Statistics of a converted corpus that bear on the heads' settings and scores
(``scripts/corpus_stats.py``).
"""
import json
import statistics
from pathlib import Path
from typing import Any, Dict, Optional, Sequence


def corpus_stats(path: Path, nlp: Any) -> Dict[str, Any]:
    """The statistics of one ``.spacy`` file: documents, tokens per document (mean, max),
    entities, the share of entity tokens that have a static vector (None without vectors),
    coreference clusters per document, mentions per cluster, gold mentions per token and the
    share of mentions wider than 8 tokens (the heads' default ``max_width``).

    path (Path): the ``.spacy`` file.
    nlp (Language): provides the vocab (and its vectors).
    RETURNS (Dict[str, Any]): the figures, rounded; ``docs`` 0 and no more for an empty file.
    """
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


def write_corpus_stats(corpus: Sequence[Path], vectors: Optional[str], output: Path, command: str) -> Dict[str, Any]:
    """The statistics of every ``.spacy`` file, written to the JSON file ``output``
    (atomically) and printed one line per file.

    vectors (Optional[str]): a spaCy pipeline (package name or path) whose vectors are
        looked up; None: no vectors.
    command (str): the command line, as the report shows it.
    RETURNS (Dict[str, Any]): the report, as written.
    RAISES (FileNotFoundError): a corpus file does not exist (nothing is written).
    """
    import spacy

    import spacy_hmtl  # noqa: F401  (registers the Doc extensions the corpora carry)
    from spacy_hmtl.safe_io import write_atomic

    missing = [str(p) for p in corpus if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"no such corpus file: {', '.join(missing)}")
    nlp = spacy.load(vectors, exclude=["tagger", "parser", "ner", "lemmatizer", "attribute_ruler", "senter"]) if vectors else spacy.blank("en")
    rows = [corpus_stats(Path(path), nlp) for path in corpus]
    report = {"command": command, "vectors": vectors, "corpora": rows}
    write_atomic(output, (json.dumps(report, indent=2) + "\n").encode("utf8"))
    for row in rows:
        print(json.dumps(row))
    return report
