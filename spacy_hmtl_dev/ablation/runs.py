"""Training and scoring the ablation's runs, resumably.

Every (variant, seed) run lives in ``WORKDIR/<variant>/seed<k>/``: ``config.cfg``,
``train_time.json`` (``scripts/timed.py``: wall time, peak memory; summed over the segments of
a resumed run), ``train_log.jsonl`` (dev scores and wall time per evaluation), ``model-best``
and ``test_scores.json``. A run whose ``test_scores.json`` exists is not trained again (stop
the ablation any time, run the same command again). Runs train with the resumable trainer
(``python -m spacy_hmtl train``, a checkpoint at every evaluation): a run stopped half-way
goes on from its last evaluation, with the weights, optimizer state, batch order and random
state it had, so a plateau-length ablation can span several sessions; the checkpoint is
deleted once the run is scored. ``jobs`` runs train at once, each with ``threads`` torch
threads. The primary rows (full, flat, each head alone) of every seed run before the "- task"
rows, which may train fewer steps (``minus_max_steps``). The report is rewritten after every
run, so it can be read while the ablation runs.
"""
import copy
import json
import shutil
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from thinc.api import Config

from spacy_hmtl.training.resumable import CHECKPOINT, ResumeError, load_training_config, read_state
from spacy_hmtl.variants import is_minus_variant

from ..paths import SCRIPTS
from ..train_log import read_train_log

LOGGER = "spacy_hmtl.TimedConsoleLogger.v1"
# a finished run's record, as test_scores.json holds it
FINISHED = "trained and evaluated"


@dataclass(frozen=True)
class AblationSettings:
    """What one ablation runs and where it writes (``scripts/ablation.py``'s options).

    config (str): the training config every variant is derived from, as given.
    workdir (str): where the runs live (``WORKDIR/<variant>/seed<k>/``).
    output (str): the report's path stem (``OUTPUT.md``, ``OUTPUT.json``, ``OUTPUT_dev_*.png``).
    command (str): the command line, as the report shows it.
    max_steps (int): training steps of every run (but the "- task" rows').
    seeds (Tuple[int, ...]): the seeds of every variant.
    tests (Tuple[str, ...]): the test corpus/corpora, read like the config's dev set.
    gpu_id (int): ``spacy train --gpu-id``.
    jobs (int): runs trained at once.
    threads (int): torch threads per run (``OMP_NUM_THREADS``); 0: the default.
    eval_batch_size (int): ``nlp.evaluate``'s batch size.
    overrides (Tuple[str, ...]): dotted ``spacy train`` overrides passed to every run.
    minus_max_steps (int): training steps of the "- task" rows; 0: ``max_steps``. Their
        comparison with ``full`` is then made on dev at that step (``summary.dev_at_step``).
    """

    config: str
    workdir: str
    output: str
    command: str
    max_steps: int
    seeds: Tuple[int, ...]
    tests: Tuple[str, ...]
    gpu_id: int = -1
    jobs: int = 1
    threads: int = 1
    eval_batch_size: int = 16
    overrides: Tuple[str, ...] = field(default_factory=tuple)
    minus_max_steps: int = 0

    def minus_steps(self) -> int:
        """The training steps of the "- task" rows' runs."""
        return self.minus_max_steps or self.max_steps

    def steps(self, variant: str) -> int:
        """The training steps of ``variant``'s runs."""
        return self.minus_steps() if is_minus_variant(variant) else self.max_steps

    def child_env(self) -> Dict[str, str]:
        """The environment of a run's processes: torch's intra-op pool (OpenMP/MKL) sized."""
        env = dict(os.environ)
        if self.threads > 0:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        return env


def log(msg: str) -> None:
    print(f"[ablation {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_config(variant_config: Config, seed: int, max_steps: int, log_path: Path) -> Config:
    """The variant's config for one run: seed, steps, and the timed JSONL logger."""
    config = copy.deepcopy(variant_config)
    config["system"]["seed"] = seed
    config["training"]["seed"] = "${system.seed}"
    config["training"]["max_steps"] = max_steps
    config["training"]["logger"] = {
        "@loggers": LOGGER,
        "progress_bar": None,
        "console_output": True,
        "output_file": str(log_path),
    }
    return config


def default_test_paths(config: Config) -> List[str]:
    """The test set(s) beside the config's dev path(s) (``.../dev.spacy`` ->
    ``.../test.spacy``), for ``[paths] dev`` or every ``*_dev`` path (mixed.cfg)."""
    paths = config.get("paths", {})
    devs = [v for k, v in paths.items() if (k == "dev" or k.endswith("_dev")) and isinstance(v, str)]
    return [d[: -len("dev.spacy")] + "test.spacy" for d in devs if d.endswith("dev.spacy")]


def run_order(variants: Sequence[str], seeds: Sequence[int]) -> List[Tuple[str, int]]:
    """The primary rows of every seed first, then the "- task" rows."""
    primary = [v for v in variants if not is_minus_variant(v)]
    minus = [v for v in variants if is_minus_variant(v)]
    return [(v, s) for group in (primary, minus) for s in seeds for v in group]


def run_dir(workdir: str, variant: str, seed: int) -> Path:
    return Path(workdir) / variant / f"seed{seed}"


def is_finished(workdir: str, variant: str, seed: int) -> bool:
    """A run is finished once its test scores are written (it is never trained again)."""
    return (run_dir(workdir, variant, seed) / "test_scores.json").exists()


def run_one(variant: str, seed: int, cfg: Config, settings: AblationSettings) -> Dict[str, Any]:
    """Train (unless done; resuming a stopped run) and evaluate one run; its record, also in
    test_scores.json."""
    out_dir = run_dir(settings.workdir, variant, seed)
    result_path = out_dir / "test_scores.json"
    if is_finished(settings.workdir, variant, seed):
        return json.loads(result_path.read_text(encoding="utf8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.cfg"
    train_log = out_dir / "train_log.jsonl"
    run_config(cfg, seed, settings.steps(variant), train_log).to_disk(cfg_path)
    timing = out_dir / "train_time.json"
    model = out_dir / "model-best"
    record = read_timing(timing)
    if record.get("returncode") != 0 or not (model / "config.cfg").exists():
        resume = can_resume(out_dir, cfg_path, settings.overrides)
        earlier = record.get("segments", [record] if record else []) if resume else []
        if not resume:
            # a fresh run: the logger would keep a stopped run's evaluations
            train_log.unlink(missing_ok=True)
            timing.unlink(missing_ok=True)
        cmd = [
            sys.executable, str(SCRIPTS / "timed.py"), str(timing), "--",
            sys.executable, "-m", "spacy_hmtl", "train", str(cfg_path), "--output", str(out_dir),
            "--gpu-id", str(settings.gpu_id), "--resume", "yes" if resume else "no",
        ] + list(settings.overrides)  # fmt: skip
        what = f"resuming from {out_dir / CHECKPOINT}" if resume else "training"
        log(f"{variant} seed {seed}: {what} ({settings.steps(variant)} steps; {out_dir}/train.log)")
        with (out_dir / "train.log").open("a" if resume else "w", encoding="utf8") as console:
            subprocess.run(cmd, env=settings.child_env(), stdout=console, stderr=subprocess.STDOUT)
        record = merge_segments(earlier, read_timing(timing))
        timing.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf8")
    if record.get("returncode") != 0 or not (model / "config.cfg").exists():
        log(f"{variant} seed {seed}: training failed (exit {record.get('returncode')}), see {out_dir}/train.log")
        return {"variant": variant, "seed": seed, "status": f"training failed (exit {record.get('returncode')})"}
    result = evaluate_run(variant, seed, out_dir, record, settings)
    if result.get("status") == FINISHED:
        shutil.rmtree(out_dir / CHECKPOINT, ignore_errors=True)  # model-best is what is kept
        log(f"{variant} seed {seed}: done in {result.get('train_wall_s')} s of training")
    return result


def training_seconds(out_dir: Path, record: Dict[str, Any]) -> Optional[float]:
    """A run's training time: the last wall time of its dev log, which the resumable trainer
    continues across segments (so a segment stopped before ``scripts/timed.py`` could write
    its record still counts), else the timing record's ``wall_s``."""
    log_path = out_dir / "train_log.jsonl"
    seconds = [e["seconds"] for e in read_train_log(log_path) if e.get("seconds") is not None] if log_path.exists() else []
    return round(max(seconds), 2) if seconds else record.get("wall_s")


def read_timing(path: Path) -> Dict[str, Any]:
    """A run's timing record (``scripts/timed.py``'s JSON), {} when there is none."""
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else {}


def can_resume(out_dir: Path, cfg_path: Path, overrides: Sequence[str] = ()) -> bool:
    """Whether a stopped run in ``out_dir`` can go on: a checkpoint written from this config
    and overrides, but for a step budget that ends after the checkpoint's step (the trainer
    extends a run as the longer run would have gone; another override, or a budget that ends
    before the checkpoint, starts the run afresh), checked as the trainer checks it
    (``resumable.read_state``, which also recovers a checkpoint whose swap was interrupted)."""
    config_text = load_training_config(cfg_path, list(overrides)).to_str()
    try:
        read_state(out_dir / CHECKPOINT, config_text)
    except (ResumeError, OSError, ValueError):  # none, another config's, or unreadable
        return False
    return True


def merge_segments(earlier: List[Dict[str, Any]], last: Dict[str, Any]) -> Dict[str, Any]:
    """One timing record for a run trained in segments: the last segment's record with the
    wall time summed and the peak memory maxed over all of them, and the segments kept."""
    if not earlier:
        return last
    segments = earlier + [last]
    walls = [s.get("wall_s") for s in segments]
    peaks = [s.get("peak_rss_mb") for s in segments if s.get("peak_rss_mb") is not None]
    return {
        **last,
        "wall_s": None if any(w is None for w in walls) else round(sum(walls), 2),
        "peak_rss_mb": max(peaks) if peaks else None,
        "segments": segments,
    }


def evaluate_run(variant: str, seed: int, out_dir: Path, record: Dict[str, Any], settings: AblationSettings) -> Dict[str, Any]:
    """Score a trained run's model-best on the test set(s) in a child process and write
    test_scores.json (atomically: the run counts as finished only once it is complete)."""
    log(f"{variant} seed {seed}: evaluating on {list(settings.tests)}")
    scores_tmp = out_dir / "test_scores.tmp.json"
    model = out_dir / "model-best"
    cmd = [
        sys.executable, "-m", "spacy_hmtl_dev.ablation.evaluate", str(model), str(scores_tmp),
        "--test", *settings.tests, "--batch-size", str(settings.eval_batch_size), "--threads", str(settings.threads),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=settings.child_env())
    if proc.returncode != 0 or not scores_tmp.exists():
        return {"variant": variant, "seed": seed, "status": f"evaluation failed (exit {proc.returncode})"}
    evaluated = json.loads(scores_tmp.read_text(encoding="utf8"))
    result = {
        "variant": variant,
        "seed": seed,
        "status": FINISHED,
        "pipeline": evaluated["pipeline"],
        "n_test_docs": evaluated["n_docs"],
        "train_wall_s": training_seconds(out_dir, record),
        "train_peak_rss_mb": record.get("peak_rss_mb"),
        "scores": evaluated["scores"],
    }
    result_path = out_dir / "test_scores.json"
    tmp = out_dir / "test_scores.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf8")
    os.replace(tmp, result_path)
    scores_tmp.unlink()
    return result


def reevaluate(settings: AblationSettings, order: Sequence[Tuple[str, int]]) -> None:
    """Score every finished run's model-best again (after a change to the evaluation);
    the training record is kept, nothing is trained."""
    done = [(v, s) for v, s in order if is_finished(settings.workdir, v, s)]
    log(f"re-evaluating {len(done)} finished runs on {list(settings.tests)}")
    for variant, seed in done:
        out_dir = run_dir(settings.workdir, variant, seed)
        timing = out_dir / "train_time.json"
        record = json.loads(timing.read_text(encoding="utf8")) if timing.exists() else {}
        result = evaluate_run(variant, seed, out_dir, record, settings)
        if result.get("status") != FINISHED:
            log(f"{variant} seed {seed}: {result['status']}")


def collect(workdir: Path, variants: Sequence[str], seeds: Sequence[int]) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """variant -> seed -> finished run (test scores, wall time, dev log), from disk."""
    runs: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for variant in variants:
        for seed in seeds:
            out_dir = run_dir(str(workdir), variant, seed)
            path = out_dir / "test_scores.json"
            if not is_finished(str(workdir), variant, seed):
                continue
            record = json.loads(path.read_text(encoding="utf8"))
            dev_log = out_dir / "train_log.jsonl"
            record["dev_log"] = read_train_log(dev_log) if dev_log.exists() else []
            runs.setdefault(variant, {})[seed] = record
    return runs


def train_all(settings: AblationSettings, configs: Dict[str, Config], on_run_done: Callable[[], Any]) -> List[Dict[str, Any]]:
    """Train and score every unfinished run, ``settings.jobs`` at a time, in ``run_order``;
    ``on_run_done()`` is called after each run (one at a time: it writes the report).
    RETURNS (List[Dict[str, Any]]): the records of the runs trained now."""
    order = run_order(list(configs), settings.seeds)
    todo = [(v, s) for v, s in order if not is_finished(settings.workdir, v, s)]
    log(f"{len(order) - len(todo)} of {len(order)} runs finished before; training {len(todo)} with {settings.jobs} at a time")
    report_lock = threading.Lock()

    def work(item: Tuple[str, int]) -> Dict[str, Any]:
        result = run_one(item[0], item[1], configs[item[0]], settings)
        with report_lock:  # the report after every run, so it can be read meanwhile
            on_run_done()
        return result

    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        results = list(pool.map(work, todo))
    for r in results:
        if r.get("status") != FINISHED:
            log(f"{r['variant']} seed {r['seed']}: {r['status']}")
    return results
