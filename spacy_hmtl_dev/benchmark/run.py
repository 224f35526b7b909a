"""One benchmark run: every measurement in order, then ``OUTPUT.md`` and ``OUTPUT.json``."""
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping

from ..benchmarking import machine_info
from .progress import log
from .published import PUBLISHED, QUOTED_MEASURED, QUOTED_STOCK_WPS
from .records import read_dev_curves, read_gradient_shares, read_training_metrics, read_training_speed, write_dev_plots, write_gradient_shares
from .report import package_versions, render_markdown, to_jsonable
from .scores import PIPELINES, evaluate_pipelines
from .parallel import ParallelSettings, measure_parallel
from .speed import SPEED_PIPELINES, STOCK, load_texts, measure_speed, set_threads, speed_targets


@dataclass(frozen=True)
class BenchmarkSettings:
    """The options of a run (``scripts/benchmark.py``'s, under the same names; the report
    records them as its ``settings``).

    output (str): the path stem of ``OUTPUT.md`` and ``OUTPUT.json``.
    models (str): the directory of the trained pipelines (``NAME/model-best``).
    corpus (str): the directory of the corpora (``NAME/{train,test}.spacy``).
    metrics (str): where the training records and logs are (and the gradient shares go).
    speed_rounds (int): alternating rounds of the speed measurements (each a ratio per
        round: HMTL / stock, N processes / one).
    batch_size (int): ``nlp.pipe``'s batch size in the speed runs.
    eval_batch_size (int): ``nlp.evaluate``'s batch size.
    warmup_docs (int): docs piped once before the speed is timed.
    threads (int): torch (and BLAS) threads; 0: leave the default.
    gpu_id (int): the GPU; -1: CPU.
    max_docs (int): smoke runs: the first N docs of each test set; 0: all.
    training_speed (str): ``scripts/training_speed.py``'s JSON, reported if present.
    configs (str): the configs the pipelines were trained from (gradient shares at
        initialization).
    gradient_batches (int): training batches of each head's gradient share; 0: only read
        the shares written before.
    no_eval (bool): skip the evaluation.
    no_speed (bool): skip the speed measurements (also the processes one).
    parallel_processes (int): N of the processes measurement (``annotate --n-process N``
        and ``nlp.pipe(n_process=N)`` against one process, ``parallel``; CPU runs only); 0:
        skip it.
    parallel_pipelines (str): comma-separated names (of ``speed.SPEED_PIPELINES``, and
        ``stock``) measured with N processes; empty: every HMTL pipeline timed, and the
        stock pipeline (``nlp.pipe`` only).
    speed_precision (str): "package" (the speed table's HMTL pipelines run as their packages
        do: ``spacy_hmtl.reduced_precision.v3``, "auto") or "float32" (as trained).
    speed_extra (str): comma-separated ``NAME=PATH``: trained pipelines timed beside the
        others as ``hmtl_NAME`` (a probe that is no shipped config, against the shipped one
        in the same rounds); empty: none.
    no_length_buckets (str): comma-separated names (``NAME`` of ``hmtl_NAME``) whose
        transformer runs each batch whole instead of in length buckets (timed against the
        same pipeline with them, given twice through ``speed_extra``); empty: none.
    """

    output: str = "benchmarks/results"
    models: str = "training"
    corpus: str = "corpus"
    metrics: str = "metrics"
    speed_rounds: int = 5
    batch_size: int = 64
    eval_batch_size: int = 16
    warmup_docs: int = 10
    threads: int = 1
    gpu_id: int = -1
    max_docs: int = 0
    training_speed: str = "benchmarks/training_speed.json"
    configs: str = "configs"
    gradient_batches: int = 5
    no_eval: bool = False
    no_speed: bool = False
    parallel_processes: int = 2
    parallel_pipelines: str = ""
    speed_precision: str = "package"
    speed_extra: str = ""
    no_length_buckets: str = ""


def extra_speed_targets(spec: str) -> Dict[str, str]:
    """``--speed-extra``'s ``NAME=PATH,...`` -> ``{"hmtl_NAME": PATH}``."""
    targets: Dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--speed-extra: expected NAME=PATH, got {item!r}")
        targets[f"hmtl_{name}"] = path
    return targets


def run_benchmark(settings: BenchmarkSettings, command: str, pipelines: Mapping[str, List[str]] = PIPELINES) -> Dict[str, Any]:
    """Measure, then write ``OUTPUT.md`` and ``OUTPUT.json``.

    settings (BenchmarkSettings): the run's options.
    command (str): the command line, as the report shows it.
    pipelines (Mapping[str, List[str]]): pipeline name -> its test corpora (``scores.PIPELINES``).
    RETURNS (Dict[str, Any]): the report, as written to ``OUTPUT.json``.
    """
    parallel_targets({}, settings.parallel_pipelines)  # a bad name fails now, not after the evaluation
    extra_speed_targets(settings.speed_extra)
    set_threads(settings.threads)
    import spacy
    import torch

    if settings.gpu_id >= 0:
        spacy.require_gpu(settings.gpu_id)
    machine = machine_info()
    machine["torch_threads"] = torch.get_num_threads()
    report: Dict[str, Any] = {
        "command": command,
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": machine,
        "versions": package_versions(),
        "settings": asdict(settings),
        "published": PUBLISHED,
        "quoted_measured": QUOTED_MEASURED,
        "quoted_stock_words_per_s": QUOTED_STOCK_WPS,
    }
    models, corpus, metrics = Path(settings.models), Path(settings.corpus), Path(settings.metrics)
    report["training"] = read_training_metrics(metrics)
    if settings.gradient_batches > 0:
        write_gradient_shares(models, corpus, Path(settings.configs), metrics, settings.gradient_batches, pipelines)
    report["gradient_shares"] = read_gradient_shares(metrics)
    report["training_speed"] = read_training_speed(Path(settings.training_speed))
    report["dev_curves"] = read_dev_curves(metrics)
    if not settings.no_eval:
        report["evaluation"] = evaluate_pipelines(models, corpus, settings.max_docs, settings.eval_batch_size, pipelines)
    if not settings.no_speed:
        texts = load_texts(corpus, settings.max_docs)
        report["speed"] = measure_speed(
            models,
            texts,
            batch_size=settings.batch_size,
            rounds=settings.speed_rounds,
            warmup_docs=settings.warmup_docs,
            threads=settings.threads,
            gpu_id=settings.gpu_id,
            precision=settings.speed_precision,
            extra_targets=extra_speed_targets(settings.speed_extra),
            whole_batches=[f"hmtl_{name.strip()}" for name in settings.no_length_buckets.split(",") if name.strip()],
        )
        if settings.parallel_processes > 1 and settings.gpu_id < 0:
            report["parallel"] = measure_parallel(
                parallel_targets(speed_targets(models), settings.parallel_pipelines),
                texts,
                ParallelSettings(
                    processes=settings.parallel_processes,
                    rounds=settings.speed_rounds,
                    batch_size=settings.batch_size,
                    warmup_docs=settings.warmup_docs,
                    threads=settings.threads,
                ),
                pipe_only=[STOCK],
            )

    out = Path(settings.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report["plots"] = write_dev_plots(report["dev_curves"], out)
    md_path, json_path = out.with_name(out.name + ".md"), out.with_name(out.name + ".json")
    json_path.write_text(json.dumps(to_jsonable(report), indent=2) + "\n", encoding="utf8")
    md_path.write_text(render_markdown(report), encoding="utf8")
    log(f"wrote {md_path} and {json_path}")
    return report


def parallel_targets(targets: Dict[str, str], names: str) -> Dict[str, str]:
    """The pipelines of the processes measurement: ``targets`` (``speed.speed_targets``),
    only those ``names`` lists (comma-separated: ``scierc``, ``mixed``, ..., ``stock``)
    unless it is empty.

    RAISES ValueError: a name that is neither a speed pipeline nor ``stock``.
    """
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n != "stock" and n not in SPEED_PIPELINES]
    if unknown:
        raise ValueError(f"--parallel-pipelines: unknown {unknown}; known: {', '.join(SPEED_PIPELINES + ['stock'])}")
    if not wanted:
        return dict(targets)
    keys = {STOCK if n == "stock" else f"hmtl_{n}" for n in wanted}
    return {k: v for k, v in targets.items() if k in keys}
