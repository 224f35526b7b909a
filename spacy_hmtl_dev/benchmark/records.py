"""What other commands measured, as the benchmark reports it: training wall time and memory
(``metrics/train_*.json``, ``scripts/timed.py``), each head's share of the shared encoder's
gradient (``metrics/gradient_shares_*.json``, ``scripts/gradient_shares.py``: measured here
unless asked not to), training throughput (``scripts/training_speed.py``'s JSON) and the dev
learning curves of the training logs (``metrics/train_*_log.jsonl``).
"""
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from ..benchmarking import plot_dev_curves
from ..paths import SCRIPTS
from .progress import log
from .scores import PIPELINES

# the panels of the dev learning-curve plots: (score key, title)
DEV_PANELS = [
    ("ents_f", "entities F1"),
    ("mentions_f", "mentions F1"),
    ("rel_micro_f", "relations F1 (boundaries)"),
    ("coref_f", "coref CoNLL avg F1"),
]


def read_training_metrics(metrics: Path) -> Dict[str, Any]:
    """run name -> wall time, peak RSS, exit status, machine of ``METRICS/train_NAME.json``."""
    out = {}
    for path in sorted(metrics.glob("train_*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError) as e:
            out[path.stem[len("train_") :]] = {"error": str(e), "path": str(path)}
            continue
        out[path.stem[len("train_") :]] = {
            "path": str(path),
            "wall_s": data.get("wall_s"),
            "peak_rss_mb": data.get("peak_rss_mb"),
            "returncode": data.get("returncode"),
            "command_line": data.get("command_line"),
            "finished": data.get("finished"),
            "cpu_model": (data.get("machine") or {}).get("cpu_model"),
            "gpu": (data.get("machine") or {}).get("gpu"),
        }
    return out


def write_gradient_shares(
    models: Path, corpus: Path, configs: Path, metrics: Path, batches: int, pipelines: Mapping[str, List[str]] = PIPELINES
) -> None:
    """Write ``metrics/gradient_shares_{name}_{init,trained}.json`` for every trained pipeline.

    Runs ``scripts/gradient_shares.py`` (one process per measurement, so a failure is recorded
    instead of stopping the benchmark) on the first ``batches`` training batches of the pipeline's
    corpus: once for the pipeline built from its config (``CONFIGS/NAME.cfg``) and initialized
    (the balance the heads start from), once for the trained pipeline. A pipeline trained on
    several corpora, and one without the shared encoder, is skipped.
    """
    from spacy.util import load_config

    script = SCRIPTS / "gradient_shares.py"
    for name, corpora in pipelines.items():
        model, config = models / name / "model-best", configs / f"{name}.cfg"
        train = corpus / corpora[0] / "train.spacy"
        if len(corpora) != 1 or not (model / "config.cfg").exists() or not config.exists() or not train.exists():
            continue
        if "hmtl_encoder" not in load_config(model / "config.cfg")["nlp"]["pipeline"]:
            continue  # a baseline without the shared encoder
        for kind, extra in (("init", []), ("trained", ["--model", str(model)])):
            output = metrics / f"gradient_shares_{name}_{kind}.json"
            cmd = [sys.executable, str(script), str(config), str(train), "--batches", str(batches),
                   "--output", str(output)] + extra  # fmt: skip
            log(f"{name}: gradient shares ({kind})")
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                output.parent.mkdir(parents=True, exist_ok=True)
                error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                output.write_text(json.dumps({"command": shlex.join(cmd), "error": error}, indent=2), encoding="utf8")
                log(f"{name}: gradient shares ({kind}) failed: {error}")


def read_gradient_shares(metrics: Path) -> Dict[str, Any]:
    """``metrics/gradient_shares_*.json`` written by ``scripts/gradient_shares.py``."""
    out = {}
    for path in sorted(metrics.glob("gradient_shares_*.json")):
        try:
            out[path.stem[len("gradient_shares_") :]] = json.loads(path.read_text(encoding="utf8"))
        except (OSError, ValueError) as e:
            out[path.stem[len("gradient_shares_") :]] = {"error": str(e)}
    return out


def read_training_speed(path: Path) -> Optional[Dict[str, Any]]:
    """``benchmarks/training_speed.json`` written by ``scripts/training_speed.py`` (without
    its per-run figures and profiles)."""
    if not path.exists():
        return None
    report = json.loads(path.read_text(encoding="utf8"))
    for item in report.get("configs", []):
        item.pop("runs", None)
        item.pop("baseline_runs", None)
        item.pop("profile", None)
    report.pop("inference_profile", None)
    report["path"] = str(path)
    return report


def read_dev_curves(metrics: Path) -> Dict[str, List[Dict[str, Any]]]:
    """Dev scores per evaluation from ``metrics/train_*_log.jsonl`` (spaCy's
    ``ConsoleLogger.v3`` output file, set by the project's train commands)."""
    from ..train_log import read_train_log  # after set_threads: imports torch

    return {
        path.name[len("train_") : -len("_log.jsonl")]: read_train_log(path)
        for path in sorted(metrics.glob("train_*_log.jsonl"))
    }


def write_dev_plots(curves: Dict[str, List[Dict[str, Any]]], output: Path) -> List[str]:
    """``OUTPUT_dev_steps.png`` and ``OUTPUT_dev_time.png``: each trained pipeline's dev
    scores against steps and wall time (time only from logs that record it); [] without
    matplotlib or without training logs."""
    points = {
        name: {key: [(r["step"], r.get("seconds"), 100 * r[key]) for r in rows if r.get(key) is not None] for key, _ in DEV_PANELS}
        for name, rows in curves.items()
    }
    return plot_dev_curves(points, DEV_PANELS, output) if points else []
