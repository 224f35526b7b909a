"""Does a sentence get the same entities and relations alone as inside a paragraph?
(``scripts/sentence_context.py``, which says what is measured.)
"""
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

from spacy_hmtl.safe_io import write_atomic

from .benchmarking import md_table

# (encoder context, relation BiLSTM context)
CONTEXTS = [("doc", "doc"), ("doc", "sentence"), ("sentence", "sentence")]

RelationKey = Tuple[int, int, int, int, int, str]  # sentence, head chars, tail chars, label


def relation_keys(docs: Sequence[Any], texts: Sequence[str], per_doc: int) -> Set[RelationKey]:
    """Relations as (sentence index, character offsets inside that sentence, label)."""
    keys: Set[RelationKey] = set()
    for d, doc in enumerate(docs):
        starts, offset = [], 0
        for text in texts[d * per_doc : (d + 1) * per_doc]:
            starts.append(offset)
            offset += len(text) + 1  # joined with one space
        for rel in doc._.relations or []:
            s = max(i for i, start in enumerate(starts) if start <= rel.head.start_char)
            base = starts[s]
            keys.add(
                (
                    d * per_doc + s,
                    rel.head.start_char - base,
                    rel.head.end_char - base,
                    rel.tail.start_char - base,
                    rel.tail.end_char - base,
                    rel.label,
                )
            )
    return keys


def measure(model: str, texts: List[str], joins: Sequence[int]) -> List[Dict]:
    """For each of ``CONTEXTS``: entities, relations and seconds of the texts one by one,
    and joined K to a document for each K in ``joins`` (with the relations found again)."""
    import spacy

    rows = []
    for encoder_context, relation_context in CONTEXTS:
        overrides = {
            "components": {
                "hmtl_encoder": {"model": {"context": encoder_context}},
                "hmtl_relations": {"model": {"lstm_context": relation_context}},
            }
        }
        nlp = spacy.load(model, config=overrides)
        list(nlp.pipe(texts[:2]))  # warm-up
        started = time.perf_counter()
        alone = list(nlp.pipe(texts))
        alone_s = time.perf_counter() - started
        reference = relation_keys(alone, texts, 1)
        row = {
            "encoder context": encoder_context,
            "relation BiLSTM context": relation_context,
            "one by one": {
                "entities": sum(len(d.ents) for d in alone),
                "relations": len(reference),
                "seconds": round(alone_s, 3),
            },
        }
        for k in joins:
            joined_texts = [" ".join(texts[i : i + k]) for i in range(0, len(texts), k)]
            started = time.perf_counter()
            docs = list(nlp.pipe(joined_texts))
            seconds = time.perf_counter() - started
            keys = relation_keys(docs, texts, k)
            row[f"joined {k}"] = {
                "entities": sum(len(d.ents) for d in docs),
                "relations": len(keys),
                "same as one by one": len(keys & reference),
                "seconds": round(seconds, 3),
            }
        rows.append(row)
    return rows


def run_sentence_context(model: str, corpus: str, n_docs: int, joins: Sequence[int], output: str, command: str) -> Dict[str, Any]:
    """Measure the first ``n_docs`` documents of ``corpus`` with ``model`` and write
    ``OUTPUT.json`` and ``OUTPUT.md`` (``output`` without suffix).

    command (str): the command line, as the report shows it.
    RETURNS (Dict[str, Any]): the report, as written to ``OUTPUT.json``.
    """
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    texts = [doc.text for doc in DocBin().from_disk(corpus).get_docs(vocab)][:n_docs]
    rows = measure(model, texts, joins)
    report: Dict[str, Any] = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "model": model,
        "corpus": corpus,
        "n_docs": len(texts),
        "rows": rows,
    }
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode("utf8"))
    header = ["encoder", "relation BiLSTM", "one by one: entities / relations / s"]
    header += [f"joined {k}: entities / relations / same / s" for k in joins]
    table = []
    for row in rows:
        cells = [row["encoder context"], row["relation BiLSTM context"]]
        one = row["one by one"]
        cells.append(f"{one['entities']} / {one['relations']} / {one['seconds']:.2f}")
        for k in joins:
            j = row[f"joined {k}"]
            cells.append(f"{j['entities']} / {j['relations']} / {j['same as one by one']} / {j['seconds']:.2f}")
        table.append(cells)
    lines = [
        "# A sentence alone or inside a paragraph: entities and relations found",
        "",
        f"Generated by `{report['command']}` on {report['date']} ({report['machine']['platform']}).",
        f"The first {len(texts)} documents of `{corpus}`, annotated one by one, then joined K to a",
        "document; \"same\": relations of the joined reading with the same offsets and label as one by one;",
        "s: seconds of that reading in this process (compare as ratios between rows).",
        "",
        md_table(header, table),
        "",
    ]
    write_atomic(out.with_suffix(".md"), "\n".join(lines).encode("utf8"))
    print("\n".join(lines))
    return report
