"""A console table of every head's scores from ``spacy evaluate``'s JSON output
(``spacy evaluate`` itself prints only the NER and sentence scores of these pipes)."""
from typing import Any, Dict, List, Optional, Tuple

from .tasks import registered_tasks


def score_rows() -> List[Tuple[str, str]]:
    """(title, key prefix) of each P / R / F triple of the registered tasks, in task order:
    a headline row is titled with its head's factory, a detail row indented under it."""
    rows = []
    for task in registered_tasks():
        for row in task.score_rows:
            title = f"{row.title} ({task.factory})" if row.headline else f"  {row.title}"
            rows.append((title, row.prefix))
    return rows


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
    for title, prefix in score_rows():
        p, r, f = (scores.get(f"{prefix}_{part}") for part in ("p", "r", "f"))
        if f is None:
            continue
        lines.append(f"{title:42s} {_percent(p):>6s} {_percent(r):>6s} {_percent(f):>6s}")
    for key in ("speed",):
        if scores.get(key):
            lines.append(f"{'words per second':42s} {scores[key]:>20.0f}")
    return "\n".join(lines)
