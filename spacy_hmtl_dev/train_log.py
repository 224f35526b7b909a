"""Dev scores per evaluation from a ``spacy train`` log: the JSONL file of spaCy's
``ConsoleLogger.v3`` or of ``spacy_hmtl.TimedConsoleLogger.v1`` (``output_file``, which the
project's train commands set) or the
console table it prints. Used by the benchmark and the ablation (dev curves) and
``fix_effects``.
"""
import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Union

# the headline F1 of each head, in task order (``ents_f``, ``mentions_f``, ``rel_micro_f``, ...):
# re-exported for the scripts that tabulate a log
from spacy_hmtl.tasks import headline_scores  # noqa: F401  (public re-export)


def read_train_log(path: Union[str, Path]) -> List[Dict[str, Optional[float]]]:
    """One entry per evaluation: ``step``, ``score`` (the weighted score) and every
    component score, all as fractions (both formats print percentages); ``seconds`` (wall
    time since training started) where the log is ``spacy_hmtl.TimedConsoleLogger.v1``'s.

    path: a ``.jsonl`` file written by ``ConsoleLogger.v3``, or a console log.
    RETURNS (List[Dict[str, Optional[float]]]): the evaluations, in order.
    """
    text = Path(path).read_text(encoding="utf8")
    if str(path).endswith(".jsonl"):
        return [_jsonl_entry(json.loads(line)) for line in text.splitlines() if line.strip()]
    return _console_entries(text)


def scores_at(path: Union[str, Path], step: int) -> Dict[str, Optional[float]]:
    """The evaluation at ``step``; a ValueError names the file when there is none."""
    for entry in read_train_log(path):
        if entry["step"] == step:
            return entry
    raise ValueError(f"{path}: no evaluation at step {step}")


def _jsonl_entry(entry: dict) -> Dict[str, Optional[float]]:
    # every score is logged in percent except spaCy's "speed" (words/s)
    scores = {
        key: None if value is None else value if key == "speed" else value / 100
        for key, value in (entry.get("scores") or {}).items()
    }
    out: Dict[str, Optional[float]] = {"step": entry.get("step"), "score": entry.get("score"), **scores}
    if "seconds" in entry:  # spacy_hmtl.TimedConsoleLogger.v1
        out["seconds"] = entry["seconds"]
    return out


def _console_entries(text: str) -> List[Dict[str, Optional[float]]]:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]
    header = next((line for line in lines if line.lstrip().startswith("E    #")), None)
    if header is None:
        return []
    columns = re.split(r"\s{2,}", header.strip())
    entries = []
    for line in lines:
        cells = line.split()
        if len(cells) == len(columns) and cells[1].isdigit():
            row = dict(zip(columns, cells))
            entry: Dict[str, Optional[float]] = {"step": int(cells[1]), "score": float(row["SCORE"])}
            for column, value in row.items():
                if column not in ("E", "#", "SCORE") and not column.startswith("LOSS"):
                    entry[column.lower()] = float(value) / 100
            entries.append(entry)
    return entries
