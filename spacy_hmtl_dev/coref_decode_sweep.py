"""Coreference decoding settings against accuracy and time (``scripts/coref_decode_sweep.py``).

``hmtl_coref``'s ``decode_max_antecedents`` (the antecedent window at inference) and
``link_threshold`` are decoding-only settings: no retraining, chosen on dev, and so is
``decode_coarse_antecedents`` for a model with coarse-to-fine pruning (the candidates per span
that get the antecedent FFNN). A wider window
finds links further back at the cost of more pairs scored. For each setting this scores the
trained pipeline on a corpus (``nlp.evaluate``, read as its dev set is read) and times the
coreference pipe alone over the same documents (medians of ``rounds``), so that a user can
trade one for the other with the figures in front of them.
"""
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, cast

import torch

from spacy_hmtl.coref.model import CorefRankerSettings
from spacy_hmtl.layers.torch_head import head_settings

from .benchmarking import machine_info

COREF = "hmtl_coref"


def sweep(
    nlp: Any,
    examples: Sequence[Any],
    windows: Sequence[int],
    thresholds: Optional[Sequence[float]] = None,
    rounds: int = 3,
    batch_size: int = 16,
    candidates: Optional[Sequence[int]] = None,
) -> List[Dict[str, Any]]:
    """Score and time ``nlp``'s coreference pipe at every (window, threshold, candidates).

    nlp (Language): a trained pipeline with an ``hmtl_coref`` pipe.
    examples (Sequence[Example]): the evaluation examples (e.g. ``read_like_dev``'s).
    windows (Sequence[int]): ``decode_max_antecedents`` values.
    thresholds (Optional[Sequence[float]]): ``link_threshold`` values; None: the pipe's own.
    rounds (int): timed passes of the coreference pipe per setting (the median is reported).
    batch_size (int): documents per batch.
    candidates (Optional[Sequence[int]]): ``decode_coarse_antecedents`` values (a model with
        coarse-to-fine pruning only); None: the pipe's own.
    RETURNS (List[Dict[str, Any]]): one row per setting: ``window``, ``link_threshold``,
        ``coarse_candidates`` (None: the model's own),
        ``coref_f`` (percent), ``coref_seconds`` (median) and ``mentions_f`` when scored.
    """
    coref = nlp.get_pipe(COREF)
    own_window, own_threshold = coref.decode_max_antecedents, coref.link_threshold
    own_candidates = coref.decode_coarse_antecedents
    if candidates is not None and not cast(CorefRankerSettings, head_settings(coref.model)).coarse_width:
        raise ValueError(f"{COREF}: candidates given, but the model has no coarse-to-fine pruning")
    # the documents as the pipes before coreference leave them (timed: the coref pipe only)
    docs = [eg.predicted for eg in examples]
    before = nlp.pipe_names[: nlp.pipe_names.index(COREF)]
    with nlp.select_pipes(enable=before):
        docs = list(nlp.pipe(docs, batch_size=batch_size))
    rows = []
    try:
        settings = [
            (window, threshold, fine)
            for window in windows
            for threshold in (thresholds if thresholds is not None else [own_threshold])
            for fine in (candidates if candidates is not None else [own_candidates])
        ]
        for window, threshold, fine in settings:
            coref.decode_max_antecedents, coref.link_threshold = int(window), float(threshold)
            coref.decode_coarse_antecedents = None if fine is None else int(fine)
            seconds = []
            for _ in range(rounds):
                start = time.perf_counter()
                list(coref.pipe(docs, batch_size=batch_size))
                seconds.append(time.perf_counter() - start)
            scores = nlp.evaluate(examples, batch_size=batch_size)
            rows.append(
                {
                    "window": int(window),
                    "link_threshold": float(threshold),
                    "coarse_candidates": None if fine is None else int(fine),
                    "coref_f": round(100 * float(scores["coref_f"]), 2),
                    "mentions_f": None if scores.get("mentions_f") is None else round(100 * float(scores["mentions_f"]), 2),
                    "coref_seconds": round(statistics.median(seconds), 3),
                }
            )
    finally:
        coref.decode_max_antecedents, coref.link_threshold = own_window, own_threshold
        coref.decode_coarse_antecedents = own_candidates
    return rows


def report(rows: List[Dict[str, Any]], command: str, model: str, corpus: str, n_words: int, machine: Dict[str, Any]) -> str:
    """The markdown of a sweep: the settings, F1 and time, and the machine."""
    lines = [
        "# Coreference decoding: window and threshold against accuracy and time",
        "",
        f"`{command}`",
        "",
        f"Pipeline `{model}`, scored on `{corpus}` ({n_words:,} words); the coreference pipe timed alone "
        f"(median of its rounds, {machine['torch_threads']} torch thread(s)). Machine: {machine.get('cpu_model') or 'unknown CPU'}, "
        f"{machine.get('usable_cores')} usable cores, load average {machine['load_average']} before the run: other "
        "processes make times noisy; compare the rows with one another.",
        "",
        "| decode_max_antecedents | link_threshold | decode_coarse_antecedents | coref F1 | coref pipe (s) | time vs the first row |",
        "|---|---|---|---|---|---|",
    ]
    base = rows[0]["coref_seconds"] if rows else None
    for r in rows:
        ratio = f"{r['coref_seconds'] / base:.2f}x" if base else "–"
        fine = "model's" if r["coarse_candidates"] is None else r["coarse_candidates"]
        lines.append(f"| {r['window']} | {r['link_threshold']:g} | {fine} | {r['coref_f']:.2f} | {r['coref_seconds']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


def run_sweep(
    model: str,
    corpus: str,
    windows: Sequence[int],
    thresholds: Optional[Sequence[float]],
    rounds: int,
    output: str,
    command: str,
    candidates: Optional[Sequence[int]] = None,
) -> List[Dict[str, Any]]:
    """Load ``model``, sweep it on ``corpus`` and write ``OUTPUT.md`` and ``OUTPUT.json``."""
    import spacy

    from spacy_hmtl.training import read_like_dev

    machine = {**machine_info(import_torch=True), "torch_threads": torch.get_num_threads(),
               "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    nlp = spacy.load(model)
    if COREF not in nlp.pipe_names:
        raise ValueError(f"{model}: no {COREF} pipe (pipes: {', '.join(nlp.pipe_names)})")
    examples = read_like_dev(nlp, [corpus])
    if not examples:
        raise ValueError(f"{corpus}: no documents to score")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = sweep(nlp, examples, windows, thresholds, rounds, candidates=candidates)
    n_words = sum(len(eg.reference) for eg in examples)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{output}.md").write_text(report(rows, command, model, corpus, n_words, machine), encoding="utf8")
    record = {"command": command, "model": model, "corpus": corpus, "words": n_words, "started": started,
              "machine": machine, "rows": rows}  # fmt: skip
    Path(f"{output}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf8")
    return rows
