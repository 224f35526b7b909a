"""The label-set check of the heads at ``initialize``: gold annotation a head drops is
reported, with counts, instead of vanishing from training.

A head meets gold it cannot use when its label set was given (``[initialize.components.
NAME] labels``, ``spacy init labels``, a sourced pipe) and the data has other labels, when a
relation's argument is typed with a label its entity source never predicts, or when a
span is wider than the head's candidates (``max_width``). Each head
(``TorchHeadPipe.unlearnable_gold``) names what it drops; ``initialize`` counts it in one
pass over the training examples and issues one ``GoldLabelWarning`` per head.

This module imports no torch: ``warnings.filterwarnings("ignore",
category=spacy_hmtl.GoldLabelWarning)`` costs nothing.
"""
from collections import Counter
from typing import Dict, Iterable, Optional, Tuple

# Labels named in a message, at most (a corpus can have hundreds).
MAX_LABELS_SHOWN = 8

# One kind of dropped gold annotation (a noun phrase in the plural, e.g. "gold mentions
# wider than max_width=8 tokens, never candidates") and the label of one dropped item
# (None: the head has no labels to count by).
UnlearnableGold = Tuple[str, Optional[str]]


class GoldLabelWarning(UserWarning):
    """Gold annotation in a head's training data that the head ignores in training or can
    never predict (a label outside its label set, a relation argument typed with a label
    its entity source never predicts, a span wider than its candidates). Issued once per
    head at ``initialize``, with counts."""


def some_labels(labels: Iterable[str]) -> str:
    """The sorted labels, comma-separated, at most ``MAX_LABELS_SHOWN`` of them (then how
    many there are in all)."""
    labels = sorted(labels)
    shown = ", ".join(labels[:MAX_LABELS_SHOWN])
    return shown + (f", ... {len(labels)} in all" if len(labels) > MAX_LABELS_SHOWN else "")


def count_unlearnable(items: Iterable[UnlearnableGold]) -> Dict[str, Counter]:
    """``{problem: Counter(label -> number of items)}`` of the items, in first-seen order."""
    counts: Dict[str, Counter] = {}
    for problem, label in items:
        counts.setdefault(problem, Counter())[label] += 1
    return counts


def unlearnable_message(name: str, counts: Dict[str, Counter]) -> str:
    """The warning of head ``name``: one line per problem, led by its count and, when the
    items have labels, the count per label (most frequent first).

    name (str): the head's pipe name.
    counts (Dict[str, Counter]): ``count_unlearnable``'s result (not empty).
    RETURNS (str): the message.
    """
    total = sum(sum(counter.values()) for counter in counts.values())
    lines = [
        f"[{name}] {total} gold annotation{'s' if total != 1 else ''} of the training data "
        "cannot be learnt or predicted by this head (filter: spacy_hmtl.GoldLabelWarning):"
    ]
    for problem, counter in counts.items():
        by_label = sorted(((n, label) for label, n in counter.items() if label is not None), key=lambda x: (-x[0], x[1]))
        detail = ", ".join(f"{label}: {n}" for n, label in by_label[:MAX_LABELS_SHOWN])
        if len(by_label) > MAX_LABELS_SHOWN:
            detail += f", ... {len(by_label)} labels"
        lines.append(f"  - {sum(counter.values())}" + (f" ({detail})" if detail else "") + f": {problem}")
    return "\n".join(lines)
