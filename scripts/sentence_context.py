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
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from spacy_hmtl.benchmarking import md_table
from spacy_hmtl.safe_io import write_atomic

# (encoder context, relation BiLSTM context)
CONTEXTS = [("doc", "doc"), ("doc", "sentence"), ("sentence", "sentence")]

RelationKey = Tuple[int, int, int, int, int, str]  # sentence, head chars, tail chars, label


def relation_keys(docs, texts: Sequence[str], per_doc: int) -> Set[RelationKey]:
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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True, help=".spacy file whose documents are sentences")
    parser.add_argument("--n-docs", type=int, default=60)
    parser.add_argument("--join", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--output", required=True, help="path without suffix: OUTPUT.json and OUTPUT.md")
    args = parser.parse_args(argv)
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    texts = [doc.text for doc in DocBin().from_disk(args.corpus).get_docs(vocab)][: args.n_docs]
    rows = measure(args.model, texts, args.join)
    report = {
        "command": "python scripts/sentence_context.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "model": args.model,
        "corpus": args.corpus,
        "n_docs": len(texts),
        "rows": rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode("utf8"))
    header = ["encoder", "relation BiLSTM", "one by one: entities / relations / s"]
    header += [f"joined {k}: entities / relations / same / s" for k in args.join]
    table = []
    for row in rows:
        cells = [row["encoder context"], row["relation BiLSTM context"]]
        one = row["one by one"]
        cells.append(f"{one['entities']} / {one['relations']} / {one['seconds']:.2f}")
        for k in args.join:
            j = row[f"joined {k}"]
            cells.append(f"{j['entities']} / {j['relations']} / {j['same as one by one']} / {j['seconds']:.2f}")
        table.append(cells)
    lines = [
        "# A sentence alone or inside a paragraph: entities and relations found",
        "",
        f"Generated by `{report['command']}` on {report['date']} ({report['machine']['platform']}).",
        f"The first {len(texts)} documents of `{args.corpus}`, annotated one by one, then joined K to a",
        "document; \"same\": relations of the joined reading with the same offsets and label as one by one;",
        "s: seconds of that reading in this process (compare as ratios between rows).",
        "",
        md_table(header, table),
        "",
    ]
    write_atomic(out.with_suffix(".md"), "\n".join(lines).encode("utf8"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
