"""Where coreference links are lost: string overlap of the gold clusters, and how many gold
mentions and links survive a trained pipeline's mention pruning
(``scripts/coref_diagnostics.py``, which says what each figure is).
"""
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

import spacy_hmtl  # noqa: F401  (registers the Doc extensions; the pipes come through entry points)
from spacy_hmtl.candidates import align_span_offsets, sentence_ids

from .benchmarking import machine_info, md_table


def string_overlap(docs: Sequence[Doc]) -> Dict[str, Any]:
    """Shares of anaphoric gold mentions with the same words / last word as an earlier one."""
    anaphoric = same_words = same_last = 0
    for doc in docs:
        for cluster in doc._.coref_clusters or []:
            spans = sorted(cluster, key=lambda span: (span.start, span.end))
            for i, span in enumerate(spans[1:], start=1):
                anaphoric += 1
                same_words += any(span.text.lower() == prev.text.lower() for prev in spans[:i])
                same_last += any(span[-1].lower == prev[-1].lower for prev in spans[:i])
    return {
        "anaphoric_mentions": anaphoric,
        "same_words": same_words / anaphoric if anaphoric else None,
        "same_last_word": same_last / anaphoric if anaphoric else None,
    }


def pruning_recall(nlp: Language, docs: Sequence[Doc], batch_size: int = 16) -> Dict[str, Any]:
    """Gold mentions and links left among the coreference head's kept spans."""
    coref: Any = nlp.get_pipe("hmtl_coref")  # an HMTLCoref; spaCy types pipes as Callable[[Doc], Doc]
    # the pipes from hmtl_coref on stay off: the head's listener reads the encoder's output
    later = nlp.pipe_names[nlp.pipe_names.index("hmtl_coref") :]
    mentions = kept = links = kept_links = 0
    for i in range(0, len(docs), batch_size):
        gold = docs[i : i + batch_size]
        predicted = list(nlp.pipe([doc.text for doc in gold], disable=later))
        batch = coref.model.predict(predicted)
        spans = batch.module.kept_spans(batch.X, batch.lengths, [sentence_ids(doc) for doc in predicted])
        for doc, pred, keep in zip(gold, predicted, spans):
            keep = set(keep)
            example = Example(pred, doc)
            for cluster in doc._.coref_clusters or []:
                aligned = align_span_offsets(example, [(span.start, span.end) for span in cluster])
                found = sum(offsets is not None and offsets in keep for offsets in aligned)
                mentions += len(cluster)
                kept += found
                links += len(cluster) - 1
                kept_links += max(0, found - 1)
    return {
        "gold_mentions": mentions,
        "kept_mentions": kept / mentions if mentions else None,
        "gold_links": links,
        "kept_links": kept_links / links if links else None,
    }


def percent(value: Optional[float]) -> str:
    """A share in percent with one decimal; "–" for None."""
    return "–" if value is None else f"{100 * value:.1f}"


def load_pipeline(model: Optional[str]) -> Language:
    """The trained pipeline ``model`` (a blank English one for the string overlap alone).
    RAISES (ValueError): ``model`` has no ``hmtl_coref`` pipe."""
    nlp = spacy.load(model) if model else spacy.blank("en")
    if model and "hmtl_coref" not in nlp.pipe_names:
        raise ValueError(f"{model} has no hmtl_coref pipe")
    return nlp


def run_coref_diagnostics(
    nlp: Language, corpus: str, splits: Sequence[str], output: str, command: str, model: Optional[str] = None
) -> Dict[str, Any]:
    """The figures of ``CORPUS/SPLIT.spacy`` for each split (with ``model``, the pruning
    recall of ``nlp``'s ``hmtl_coref`` too), written to ``OUTPUT.json`` and ``OUTPUT.md``.

    nlp (Language): ``load_pipeline(model)``.
    command (str): the command line, as the report shows it.
    model (Optional[str]): the trained pipeline's path, as the report names it; None: the
        string overlap only.
    RETURNS (Dict[str, Any]): the report, as written to ``OUTPUT.json``.
    """
    rows: Dict[str, Dict[str, Any]] = {}
    for split in splits:
        path = Path(corpus) / f"{split}.spacy"
        print(f"[coref_diagnostics] {path}", file=sys.stderr)
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        rows[split] = {"docs": len(docs), **string_overlap(docs)}
        if model:
            rows[split].update(pruning_recall(nlp, docs))
    report = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "corpus": corpus,
        "model": model,
        "splits": rows,
    }
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    header = ["split", "docs", "anaphoric mentions", "same words %", "same last word %"]
    if model:
        header += ["gold mentions", "kept by pruning %", "gold links", "links among kept spans %"]
    table = []
    for split, row in rows.items():
        line = [split, row["docs"], row["anaphoric_mentions"], percent(row["same_words"]), percent(row["same_last_word"])]
        if model:
            line += [row["gold_mentions"], percent(row["kept_mentions"]), row["gold_links"], percent(row["kept_links"])]
        table.append([str(cell) for cell in line])
    md = [
        "# Coreference diagnostics",
        "",
        f"Generated by `{command}` on {report['date']}.",
        "",
        "Anaphoric mentions: gold mentions with an earlier mention in their cluster; *same words* / "
        "*same last word*: as an earlier mention of their cluster (lowercased). Kept by pruning: gold "
        "mentions among the spans the coreference head keeps (raw text re-tokenized, as `spacy evaluate` "
        "reads it); links among kept spans: k - 1 per cluster with k kept mentions, over all gold links.",
        "",
        md_table(header, table),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md), encoding="utf8")
    print("\n".join(md))
    return report
