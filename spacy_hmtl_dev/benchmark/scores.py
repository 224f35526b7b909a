"""The benchmark's scores: which pipeline is evaluated on which test corpus, the columns of
the measured-scores table and the evaluation itself.

Every pipeline found under the models directory is evaluated with ``nlp.evaluate`` on its
test corpus (``mixed``: CoNLL04 and LitBank tests), read as ``spacy evaluate`` reads it
(raw text re-tokenized and aligned); a multi-corpus pipeline is scored on the tasks each
corpus trains (``read_like_dev``). Missing pipelines are listed as "not trained".
"""
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from spacy_hmtl.tasks import registered_tasks
from spacy_hmtl.training import read_like_dev

from .progress import log

# pipeline directory name -> test corpora it is evaluated on
PIPELINES: Dict[str, List[str]] = {
    "scierc": ["scierc"],
    "scierc_trf": ["scierc"],
    "scierc_ft": ["scierc"],
    "conll04": ["conll04"],
    "conll04_trf": ["conll04"],
    "conll04_ft": ["conll04"],
    "litbank": ["litbank"],
    "litbank_trf": ["litbank"],
    "litbank_ft": ["litbank"],
    "mixed": ["conll04", "litbank"],
    "mixed_trf": ["conll04", "litbank"],
    "mixed_ft": ["conll04", "litbank"],
    "stock_ner_scierc": ["scierc"],
}
PIPELINE_LABELS = {
    "scierc": "spacy-hmtl (SciERC, 4 heads)",
    "scierc_trf": "spacy-hmtl (SciERC, 4 heads, + frozen MiniLM)",
    "scierc_ft": "spacy-hmtl (SciERC, 4 heads, + fine-tuned MiniLM)",
    "conll04": "spacy-hmtl (CoNLL04)",
    "conll04_trf": "spacy-hmtl (CoNLL04, + frozen MiniLM)",
    "conll04_ft": "spacy-hmtl (CoNLL04, + fine-tuned MiniLM)",
    "litbank": "spacy-hmtl (LitBank)",
    "litbank_trf": "spacy-hmtl (LitBank, + frozen MiniLM)",
    "litbank_ft": "spacy-hmtl (LitBank, + fine-tuned MiniLM)",
    "mixed": "spacy-hmtl (mixed CoNLL04 + LitBank)",
    "mixed_trf": "spacy-hmtl (mixed CoNLL04 + LitBank, + frozen MiniLM)",
    "mixed_ft": "spacy-hmtl (mixed CoNLL04 + LitBank, + fine-tuned MiniLM)",
    "stock_ner_scierc": "spaCy stock ner (accuracy + md vectors, `baseline-ner`)",
}

# Columns of the measured-scores table beside every head's F1s (spacy_hmtl.tasks): entity
# P and R (the stock `ner` comparison) and the macro F1 over relation labels (computed
# here from `rel_per_type`: the published CoNLL04 figure is one).
EXTRA_COLUMNS_BEFORE: Dict[str, List[Tuple[str, str]]] = {"ents_f": [("ents_p", "entities P"), ("ents_r", "entities R")]}
EXTRA_COLUMNS_AFTER: Dict[str, List[Tuple[str, str]]] = {"rel_strict_f": [("rel_macro_f", "relations, macro over labels")]}


def score_columns() -> List[Tuple[str, str]]:
    """(score key, column header) of the measured-scores table: the F of every score row of
    every registered task, in task order, with the extra columns beside theirs."""
    columns = []
    for task in registered_tasks():
        for row in task.score_rows:
            columns += EXTRA_COLUMNS_BEFORE.get(row.f_key, [])
            columns.append((row.f_key, row.title))
            columns += EXTRA_COLUMNS_AFTER.get(row.f_key, [])
    return columns


# (score key, column header); values are shown as percentages
SCORE_COLUMNS: List[Tuple[str, str]] = score_columns()


def pct(value: Any) -> Optional[float]:
    """A 0-1 score as a percentage with 2 decimals; None for missing / non-numeric."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(100.0 * value, 2)


def macro_f(per_type: Optional[Dict[str, Dict[str, float]]]) -> Optional[float]:
    """Unweighted mean of the per-label F (0-1); None when there is no label."""
    if not per_type:
        return None
    values = [v.get("f") for v in per_type.values() if isinstance(v, dict)]
    values = [v for v in values if isinstance(v, (int, float))]
    return sum(values) / len(values) if values else None


def summarize_scores(scores: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """``nlp.evaluate`` scores (0-1) -> the report's columns, in percent (None: not scored)."""
    values = dict(scores)
    values["rel_macro_f"] = macro_f(scores.get("rel_per_type")) if scores.get("rel_micro_f") is not None else None
    return {key: pct(values.get(key)) for key, _ in SCORE_COLUMNS}


def evaluate_pipelines(
    models: Path, corpus: Path, max_docs: int, batch_size: int, pipelines: Mapping[str, List[str]] = PIPELINES
) -> Dict[str, Any]:
    """Evaluate ``MODELS/NAME/model-best`` on ``CORPUS/C/test.spacy`` for every pipeline NAME
    and each of its test corpora C (``pipelines``).

    max_docs (int): only the first N docs of each test set (smoke runs); 0: all.
    batch_size (int): ``nlp.evaluate``'s batch size.
    RETURNS (Dict[str, Any]): name -> ``status`` ("trained" or "not trained"), ``path`` and,
        when trained, ``pipeline`` and ``test``: corpus -> ``summary`` (the report's
        columns), ``scores``, ``n_docs``, ``seconds`` (or ``error``).
    """
    import spacy

    evaluation: Dict[str, Any] = {}
    for name, corpora in pipelines.items():
        path = models / name / "model-best"
        if not (path / "config.cfg").exists():
            log(f"{name}: not trained ({path} missing)")
            evaluation[name] = {"status": "not trained", "path": str(path)}
            continue
        log(f"{name}: loading {path}")
        nlp = spacy.load(path)
        entry: Dict[str, Any] = {"status": "trained", "path": str(path), "pipeline": nlp.pipe_names, "test": {}}
        for corpus_name in corpora:
            test_path = corpus / corpus_name / "test.spacy"
            if not test_path.exists():
                entry["test"][corpus_name] = {"error": f"{test_path} missing"}
                log(f"{name}: {test_path} missing")
                continue
            # a multi-corpus pipeline is scored on the tasks each corpus trains (as `python -m
            # spacy_hmtl evaluate`), not on e.g. LitBank's own entity labels; others read all
            examples = read_like_dev(nlp, [test_path])
            if max_docs:
                examples = examples[:max_docs]
            log(f"{name}: evaluating on {test_path} ({len(examples)} docs)")
            start = time.perf_counter()
            scores = nlp.evaluate(examples, batch_size=batch_size)
            summary = summarize_scores(scores)
            entry["test"][corpus_name] = {
                "path": str(test_path),
                "n_docs": len(examples),
                "seconds": round(time.perf_counter() - start, 2),
                "summary": summary,
                "scores": scores,
            }
            shown = ", ".join(f"{k}={v}" for k, v in summary.items() if v is not None)
            log(f"{name} on {corpus_name}: {shown}")
        evaluation[name] = entry
        del nlp
    return evaluation
