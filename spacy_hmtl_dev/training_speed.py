"""Training words/s of configs, beside stock spaCy ``ner`` and an earlier commit, measured in
the same run; and a profile of training steps (and of inference) by pipe, torch module and
operator (``scripts/training_speed.py``).

Every measurement runs in a fresh process (``throughput.py`` run by its path): the config's
own corpus, batcher, dropout and optimizer, ``warmup`` untimed steps, then ``steps`` timed
ones. ``rounds`` rounds measure every config once each (order reversed every other round);
the median is reported. With a ``baseline_commit``, each HMTL config is also measured on that
commit's code *and config* (a ``git worktree`` in a temporary directory, put first on
``PYTHONPATH``), interleaved in the same rounds, so the ratio compares code on the same
machine at the same time; the machines are shared, so absolute figures drift, ratios less.
A config whose inputs are missing (e.g. ``scierc_trf.cfg`` without ``training/minilm``) is
listed as skipped with the reason.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .benchmarking import machine_info, md_table
from .paths import ROOT

# run by its path, not with -m: -m would put the working directory (this checkout) on
# sys.path before PYTHONPATH, so a baseline checkout's package would not be the one measured
THROUGHPUT = Path(__file__).resolve().with_name("throughput.py")


@dataclass(frozen=True)
class TrainingSpeedSettings:
    """The options of a run (``scripts/training_speed.py``'s; the report records all but
    ``configs`` as its ``settings``). Paths are relative to the checkout's root.

    configs (Tuple[Path, ...]): the configs measured (the stock config among them).
    output (str): the path stem of ``OUTPUT.md`` and ``OUTPUT.json``.
    stock_config (Path): the reference every other config is compared with.
    baseline_commit (Optional[str]): the earlier commit measured beside this checkout.
    rounds (int): rounds of measurements.
    steps (int): timed steps per measurement.
    warmup (int): untimed steps before them.
    threads (int): torch threads of each measurement.
    profile_steps (int): training steps profiled per config; 0: no profile.
    warm_epoch (Tuple[Path, ...]): configs run one whole epoch before timing (their
        frozen-feature cache then holds every document); that epoch's time is reported.
    inference_model (Optional[Path]): a trained pipeline whose inference is profiled.
    inference_corpus (Path): the corpus of the inference profile.
    inference_docs (int): its first N documents; 0: all.
    """

    configs: Tuple[Path, ...]
    output: str = "benchmarks/training_speed"
    stock_config: Path = Path("configs/stock_ner_scierc.cfg")
    baseline_commit: Optional[str] = None
    rounds: int = 2
    steps: int = 20
    warmup: int = 3
    threads: int = 1
    profile_steps: int = 3
    warm_epoch: Tuple[Path, ...] = field(default_factory=tuple)
    inference_model: Optional[Path] = None
    inference_corpus: Path = Path("corpus/scierc/test.spacy")
    inference_docs: int = 0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(
    config: Path,
    settings: TrainingSpeedSettings,
    *,
    pythonpath: Optional[Path] = None,
    profile_steps: int = 0,
    steps: Optional[int] = None,
    warmup_epochs: int = 0,
) -> Dict[str, Any]:
    """One measurement in a fresh process; ``pythonpath`` selects the code measured."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(THROUGHPUT),
            str(config),
            "--output",
            str(out),
            "--warmup",
            str(settings.warmup),
            "--steps",
            str(settings.steps if steps is None else steps),
            "--profile-steps",
            str(profile_steps),
            "--warmup-epochs",
            str(warmup_epochs),
            "--threads",
            str(settings.threads),
        ]
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(settings.threads)
        env["HF_HUB_OFFLINE"] = "1"
        # the measured package comes first; the script's own directory must not shadow it
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [pythonpath or ROOT] + [env.get("PYTHONPATH", "")] if p)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"measuring {config} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text(encoding="utf8"))


def missing_inputs(config: Path) -> Optional[str]:
    """Why a config cannot be measured here (None if it can)."""
    if not config.exists():
        return f"{config} not found"
    text = config.read_text(encoding="utf8")
    if "training/minilm" in text and not (ROOT / "training" / "minilm").exists():
        return "needs the assembled MiniLM pipeline training/minilm (spacy project run init-transformer)"
    return None


def baseline_checkout(commit: str, workdir: Path) -> Path:
    """A ``git worktree`` of ``commit`` under ``workdir``: the baseline's code and configs."""
    path = workdir / f"baseline-{commit}"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True, capture_output=True)
    return path


def remove_checkout(path: Path) -> None:
    """Remove a worktree that ``baseline_checkout`` added."""
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)


def profile_inference(model: Path, corpus: Path, max_docs: int, threads: int) -> Dict[str, Any]:
    """A profile of one ``nlp.pipe`` pass of a trained pipeline over a corpus's texts (in
    this process: the inference profile compares no code)."""
    import spacy
    import torch
    from spacy.tokens import DocBin

    from .throughput import profile_inference as run_profile

    torch.set_num_threads(threads)
    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))[: max_docs or None]
    texts = [doc.text for doc in docs]
    list(nlp.pipe(texts[:5]))  # warm-up
    result = run_profile(nlp, texts)
    result["model"] = str(model)
    result["corpus"] = str(corpus)
    return result


def profile_tables(profile: Dict[str, Any], limit: int = 12) -> str:
    """A profile's tables (by pipe, torch module, operator family; the top operators)."""
    parts = []
    for key, title in [("by_pipe", "by pipe"), ("by_module", "by torch module (forward)"), ("by_family", "by operator family (self time)")]:
        rows = [[r["name"], f"{r['s_per_step']:.4f}", f"{100 * r['share']:.1f}%"] for r in profile[key][:limit]]
        parts.append(f"*{title}*\n\n" + md_table(["part", "s per step", "share of wall"], rows))
    rows = [[f"`{r['op']}`", f"{r['s_per_step']:.4f}", f"{100 * r['share']:.1f}%", r["calls"]] for r in profile["top_ops"][:limit]]
    parts.append("*top operators (self time)*\n\n" + md_table(["operator", "s per step", "share", "calls"], rows))
    return "\n\n".join(parts)


def render(report: Dict[str, Any]) -> str:
    """``OUTPUT.md`` from the report's JSON."""
    lines = [
        "# Training throughput",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {report['machine'].get('cpu_model', '?')}, {report['machine'].get('usable_cores', '?')} usable cores; "
        f"torch threads: {report['settings']['threads']}",
        "",
        f"Training words/s: median of {report['settings']['rounds']} rounds, each {report['settings']['steps']} "
        f"steps after {report['settings']['warmup']} warm-up steps, one fresh process per measurement.",
        "",
    ]
    rows = []
    for item in report["configs"]:
        if item.get("skipped"):
            rows.append([f"`{item['config']}`", "skipped: " + item["skipped"], None, None, None, None])
            continue
        rows.append(
            [
                f"`{item['config']}`",
                "this commit",
                item["words_per_second"],
                item["seconds_per_step"],
                item.get("ratio_to_baseline"),
                item.get("ratio_to_stock_ner"),
            ]
        )
        if item.get("baseline"):
            base = item["baseline"]
            rows.append([f"`{item['config']}`", f"baseline {report['settings']['baseline_commit']}", base["words_per_second"], base["seconds_per_step"], 1.0, base.get("ratio_to_stock_ner")])
    # the reference every config is compared with (stock spaCy NER by default; --stock-config)
    reference = Path(str(report["settings"]["stock_config"])).stem
    lines.append(md_table(["config", "code", "training words/s", "s per step", "x baseline", f"x {reference}"], rows, digits=(1, 1, 1, 4, 2, 3)))
    firsts = [(i["config"], i.get("first_epoch_seconds")) for i in report["configs"] if i.get("first_epoch_seconds")]
    if firsts:
        lines += ["", "Configs run one whole epoch before timing (their frozen features are then cached), and that first epoch's time: "
                  + "; ".join(f"`{c}` {s:.0f} s" for c, s in firsts) + "."]
    for item in report["configs"]:
        if item.get("profile"):
            lines += ["", f"## Profile of {item['profile']['steps']} training steps: `{item['config']}`", "", profile_tables(item["profile"])]
    if report.get("inference_profile"):
        prof = report["inference_profile"]
        lines += [
            "",
            f"## Profile of inference: `{prof['model']}` on `{prof['corpus']}` ({prof['words']} words, {prof['wall_s']} s)",
            "",
            profile_tables(prof),
        ]
    return "\n".join(lines) + "\n"


def summarize_runs(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The medians over the rounds of one config's measurements (on one code)."""
    return {
        "first_epoch_seconds": statistics.median(r["warmup_seconds"] for r in runs) if runs[0].get("warmup_epochs") else None,
        "words_per_second": round(statistics.median(r["words_per_second"] for r in runs), 1),
        "seconds_per_step": round(statistics.median(r["seconds_per_step"] for r in runs), 4),
        "words_per_round": runs[0]["words"],
    }


def run_training_speed(settings: TrainingSpeedSettings, command: str) -> Dict[str, Any]:
    """Measure every config, then write ``OUTPUT.md`` and ``OUTPUT.json`` (under the root).

    settings (TrainingSpeedSettings): the run's options.
    command (str): the command line, as the report shows it.
    RETURNS (Dict[str, Any]): the report, as written to ``OUTPUT.json``.
    """
    report: Dict[str, Any] = {
        "command": command,
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {k: v for k, v in asdict(settings).items() if k != "configs"},
        "configs": [],
    }
    items: List[Dict[str, Any]] = []
    for config in settings.configs:
        reason = missing_inputs(ROOT / config)
        items.append({"config": str(config), "skipped": reason, "runs": [], "baseline_runs": []})
    workdir = Path(tempfile.mkdtemp(prefix="hmtl-speed-"))
    baseline = baseline_checkout(settings.baseline_commit, workdir) if settings.baseline_commit else None
    try:
        for round_i in range(settings.rounds):
            order = items if round_i % 2 == 0 else items[::-1]
            for item in order:
                if item["skipped"]:
                    continue
                config = Path(item["config"])
                log(f"round {round_i + 1}/{settings.rounds}: {config}")
                warm = 1 if config in settings.warm_epoch else 0
                item["runs"].append(measure(config, settings, warmup_epochs=warm))
                if baseline is not None and Path(config) != settings.stock_config and (baseline / config).exists():
                    log(f"round {round_i + 1}/{settings.rounds}: {config} at {settings.baseline_commit}")
                    item["baseline_runs"].append(measure(baseline / config, settings, pythonpath=baseline))
    finally:
        if baseline is not None:
            remove_checkout(baseline)
    stock_wps = None
    for item in items:
        if item["runs"]:
            item.update(summarize_runs(item["runs"]))
        if item["baseline_runs"]:
            item["baseline"] = summarize_runs(item["baseline_runs"])
        if Path(item["config"]) == settings.stock_config and item.get("words_per_second"):
            stock_wps = item["words_per_second"]
    for item in items:
        if item.get("baseline"):
            item["ratio_to_baseline"] = round(item["words_per_second"] / item["baseline"]["words_per_second"], 2)
        if stock_wps:
            if item.get("words_per_second"):
                item["ratio_to_stock_ner"] = round(item["words_per_second"] / stock_wps, 3)
            if item.get("baseline"):
                item["baseline"]["ratio_to_stock_ner"] = round(item["baseline"]["words_per_second"] / stock_wps, 3)
        if settings.profile_steps and not item["skipped"] and Path(item["config"]) != settings.stock_config:
            log(f"profiling {settings.profile_steps} training steps of {item['config']}")
            warm = 1 if Path(item["config"]) in settings.warm_epoch else 0
            item["profile"] = measure(Path(item["config"]), settings, profile_steps=settings.profile_steps, steps=1, warmup_epochs=warm)["profile"]
    report["configs"] = items
    if settings.inference_model is not None:
        log(f"profiling inference of {settings.inference_model}")
        report["inference_profile"] = profile_inference(settings.inference_model, settings.inference_corpus, settings.inference_docs, settings.threads)
    out = ROOT / settings.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf8")
    out.with_name(out.name + ".md").write_text(render(report), encoding="utf8")
    log(f"wrote {out}.md and {out}.json")
    return report
