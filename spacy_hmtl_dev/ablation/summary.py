"""The ablation's numbers: test scores summarised over seeds, each variant against
``full`` with a verdict, and the dev learning curves averaged over seeds.

Verdict: a difference between a variant and ``full`` counts only when it is larger than the
sum of the two rows' standard deviations over seeds (their mean ± 1 sd intervals do not
overlap); otherwise it is reported as "no difference".
"""
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy_hmtl.tasks import Task, registered_tasks
from spacy_hmtl.variants import is_minus_variant, variant_names, variant_tasks

# (step, mean wall seconds or None, mean dev score in %) of one evaluation
CurvePoint = Tuple[float, Optional[float], float]


def task_metrics(task: Task) -> List[Tuple[str, str]]:
    """(score key, label) rows of a task's table: its main score's F, P and R, then the F of
    its other score rows; the first is the task's headline."""
    main, *others = task.score_rows
    p, r, f = main.keys()
    rows = [(f, f"{main.title} F1"), (p, f"{main.title} P"), (r, f"{main.title} R")]
    return rows + [(row.f_key, f"{row.title} F1" if row.headline else f"{task.layer} {row.title} F1") for row in others]


def all_task_metrics() -> Dict[str, List[Tuple[str, str]]]:
    """task -> (score key, label) rows of its table (``task_metrics``), in task order."""
    return {task.name: task_metrics(task) for task in registered_tasks()}


def headline(task: str) -> Tuple[str, str]:
    """(score key, label) of a task's headline: the F of its main score."""
    return all_task_metrics()[task][0]


def pct(value: Any) -> Optional[float]:
    """A 0-1 score in percent; None for a missing or non-numeric one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return 100.0 * value


def summarize(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """mean, sample standard deviation (0 for one value), n and the values (percent)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": round(statistics.fmean(vals), 2), "sd": round(sd, 2), "n": len(vals), "values": [round(v, 2) for v in vals]}


def aggregate(runs: Dict[str, Dict[int, Dict[str, Any]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """variant -> metric -> summary over the seeds, for the tasks the variant has.

    runs (Dict[str, Dict[int, Dict[str, Any]]]): variant -> seed -> finished run (its
        ``scores``: ``nlp.evaluate``'s, 0-1).
    """
    metrics = all_task_metrics()
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for variant, by_seed in runs.items():
        finished = [r["scores"] for _, r in sorted(by_seed.items()) if r.get("scores") is not None]
        if not finished:
            continue
        out[variant] = {}
        for task in variant_tasks(variant):
            for key, _ in metrics[task]:
                out[variant][key] = summarize([pct(s.get(key)) for s in finished])
    return out


def compare(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    """a - b of two summaries, and the verdict: a difference only when |a - b| exceeds
    the sum of their standard deviations, and only with 2+ seeds on each side."""
    if a.get("mean") is None or b.get("mean") is None:
        return {"delta": None, "verdict": "–"}
    delta = round(a["mean"] - b["mean"], 2)
    if min(a["n"], b["n"]) < 2:
        return {"delta": delta, "verdict": "one seed: no verdict"}
    spread = a["sd"] + b["sd"]
    if abs(delta) <= spread:
        return {"delta": delta, "verdict": "no difference"}
    return {"delta": delta, "verdict": "better" if delta > 0 else "worse"}


def comparisons(
    summary: Dict[str, Dict[str, Dict[str, Any]]],
    minus_dev: Optional[Dict[str, Dict[str, Dict[str, Any]]]] = None,
    minus_step: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Each task's headline: every other variant against ``full`` (variant - full).

    summary: variant -> metric -> test-score summary (``aggregate``).
    minus_dev: when the "- task" rows trained fewer steps than ``full``: variant -> metric ->
        dev-score summary at ``minus_step`` (``dev_at_step``), for ``full`` and the "- task"
        rows, which are then compared there (``basis``: "dev, step N") rather than on test.
    """
    rows = []
    for task in all_task_metrics():
        key, label = headline(task)
        for variant in variant_names():
            if variant == "full":
                continue
            if minus_dev is not None and is_minus_variant(variant):
                table, basis = minus_dev, f"dev, step {minus_step}"
            else:
                table, basis = summary, "test"
            if key not in table.get(variant, {}) or key not in table.get("full", {}):
                continue
            rows.append({"task": task, "metric": key, "label": label, "variant": variant, "basis": basis, **compare(table[variant][key], table["full"][key])})
    return rows


def dev_at_step(by_seed: Dict[int, Dict[str, Any]], variant: str, step: int) -> Dict[str, Dict[str, Any]]:
    """metric -> summary over the seeds of the headline dev scores ``variant``'s runs logged
    at ``step`` (from each run's ``dev_log``); a seed without an evaluation there is left out."""
    out: Dict[str, Dict[str, Any]] = {}
    for task in variant_tasks(variant):
        key = headline(task)[0]
        values = []
        for _, run in sorted(by_seed.items()):
            entries = [e for e in run.get("dev_log") or [] if e.get("step") == step]
            values.append(pct(entries[-1].get(key)) if entries else None)
        out[key] = summarize(values)
    return out


def mean_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    """The mean of ``values``, or None when any is missing."""
    return None if any(v is None for v in values) else statistics.fmean(values)


def dev_curves(runs: Dict[str, Dict[int, Dict[str, Any]]]) -> Dict[str, Dict[str, List[CurvePoint]]]:
    """variant -> task -> [(step, mean seconds, mean dev score %)] over the seeds that
    logged that step (from each run's ``dev_log``: ``train_log.read_train_log``'s entries)."""
    out: Dict[str, Dict[str, List[CurvePoint]]] = {}
    for variant, by_seed in runs.items():
        logs = [r["dev_log"] for r in by_seed.values() if r.get("dev_log")]
        if not logs:
            continue
        out[variant] = {}
        for task in variant_tasks(variant):
            key = headline(task)[0]
            points: Dict[int, List[Tuple[Optional[float], float]]] = {}
            for entries in logs:
                for e in entries:
                    if e.get(key) is not None:
                        points.setdefault(e["step"], []).append((e.get("seconds"), 100 * e[key]))
            # a step without a wall time in every seed's log has none: it is left off the
            # time axis rather than drawn at 0 s
            out[variant][task] = [
                (step, mean_or_none([p[0] for p in pts]), statistics.fmean(p[1] for p in pts))
                for step, pts in sorted(points.items())
            ]
    return out
