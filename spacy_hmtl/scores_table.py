"""A console table of every head's scores from ``spacy evaluate``'s JSON output
(``spacy evaluate`` itself prints only the NER and sentence scores of these pipes)."""
from typing import Any, Dict, List, Optional, Tuple

# (title, key prefix) of each head's P / R / F triple, in pipeline order
SCORE_ROWS: List[Tuple[str, str]] = [
    ("entities (hmtl_ner)", "ents"),
    ("mentions (hmtl_mentions)", "mentions"),
    ("relations, boundaries (hmtl_relations)", "rel_micro"),
    ("relations, strict (hmtl_relations)", "rel_strict"),
    ("coreference, CoNLL avg (hmtl_coref)", "coref"),
    ("  MUC", "coref_muc"),
    ("  B3", "coref_b3"),
    ("  CEAFe", "coref_ceafe"),
    ("  LEA", "coref_lea"),
]


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}"


def format_scores(scores: Dict[str, Any]) -> str:
    """Format the P / R / F of every head found in ``scores`` (the keys that
    ``nlp.evaluate`` returns) as a fixed-width table, in percent. Heads absent from
    ``scores`` (or scored None: no annotated document) are left out.

    scores (Dict[str, Any]): the scores, e.g. ``json.load(open("metrics/x.json"))``.
    RETURNS (str): the table.
    """
    lines = [f"{'task':42s} {'P':>6s} {'R':>6s} {'F':>6s}"]
    for title, prefix in SCORE_ROWS:
        p, r, f = (scores.get(f"{prefix}_{part}") for part in ("p", "r", "f"))
        if f is None:
            continue
        lines.append(f"{title:42s} {_percent(p):>6s} {_percent(r):>6s} {_percent(f):>6s}")
    for key in ("speed",):
        if scores.get(key):
            lines.append(f"{'words per second':42s} {scores[key]:>20.0f}")
    return "\n".join(lines)
