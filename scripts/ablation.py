"""HMTL's ablation: does the hierarchy help? Each configuration trained with the same steps and seeds.

    python scripts/ablation.py --config configs/scierc.cfg --max-steps 600 --seeds 0 1 2 \\
        --output benchmarks/ablation [--workdir training/ablation/scierc] [--jobs 2] \\
        [--variants full flat ner mentions relations coref no-ner ...] [--test PATH ...] \\
        [--gpu-id -1] [--threads 1] [any dotted `spacy train` override, e.g. --paths.train X]

Variants, all derived from the one config (``derive_variant_config``; unit tested):

* ``full``: the config as shipped (the hierarchy: NER at level 1, the others at level 2).
* ``flat``: the same heads and encoder, every head reading the top level (with the embedding
  shortcut, as the top heads do): multi-task without the hierarchy.
* ``ner`` / ``mentions`` / ``relations`` / ``coref``: one head alone on its own encoder.
  ``hmtl_relations`` needs argument spans from another head (its ``entity_source``), so
  relations-alone keeps that provider on the original encoder and gives the relation head
  its own copy of the encoder: no parameter is shared, and model-best is picked on the
  relation scores only.
* ``no-ner`` / ``no-mentions`` / ``no-relations`` / ``no-coref``: the hierarchy without one
  task (the paper's "- task" rows). Without NER, relations take their arguments from the
  mentions head (``entity_source`` = its spans key).

Every (variant, seed) run lives in ``WORKDIR/<variant>/seed<k>/``: ``config.cfg``,
``train_time.json`` (``scripts/timed.py``: wall time, peak memory), ``train_log.jsonl`` (dev
scores and wall time per evaluation), ``model-best`` and ``test_scores.json``. A run whose
``test_scores.json`` exists is not trained again (resumable: stop it any time, rerun the
same command); ``--jobs N`` trains N runs at once (each with ``--threads`` torch threads).
The primary rows (full, flat, each head alone) of every seed run before the "- task" rows.
The test sets are read as the config reads its dev set (``read_like_dev``): with
``configs/mixed.cfg`` each test set keeps only the tasks its corpus declares, so LitBank's
entity annotation is not scored against the CoNLL04-trained NER head. ``--reevaluate``
scores every finished run's ``model-best`` again (after a change to the evaluation) and
rewrites the report, training nothing.

Written: ``OUTPUT.md`` and ``OUTPUT.json`` (test scores per variant: mean, standard
deviation and every seed; the difference each variant makes against ``full`` with its
verdict) and ``OUTPUT_dev_steps.png`` / ``OUTPUT_dev_time.png`` (dev score per task against
steps and against wall time, one line per variant, mean over seeds; needs the ``plots``
extra: matplotlib). The report is rewritten from whatever runs have finished, so it can be
read while the ablation runs (``--report-only`` writes it without training).

Verdict: a difference between a variant and ``full`` counts only when it is larger than the
sum of the two rows' standard deviations over seeds (their mean ± 1 sd intervals do not
overlap); otherwise it is reported as "no difference".
"""
import argparse
import copy
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.util import load_config
from thinc.api import Config

HEAD_FACTORIES = ["hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
ENCODER_FACTORY = "hmtl_encoder"
LISTENER_ARCH = "spacy_hmtl.HMTLListener.v1"
LOGGER = "spacy_hmtl.TimedConsoleLogger.v1"
# head factory -> (task name, score-weight prefix)
HEAD_INFO = {
    "hmtl_ner": ("ner", "ents_"),
    "hmtl_mentions": ("mentions", "mentions_"),
    "hmtl_relations": ("relations", "rel_"),
    "hmtl_coref": ("coref", "coref_"),
}
TASKS = [HEAD_INFO[f][0] for f in HEAD_FACTORIES]
PRIMARY_VARIANTS = ["full", "flat"] + TASKS
MINUS_VARIANTS = [f"no-{task}" for task in TASKS]
VARIANTS = PRIMARY_VARIANTS + MINUS_VARIANTS
# task -> (score key, label) rows of the per-task table; the first is the task's headline
TASK_METRICS: Dict[str, List[Tuple[str, str]]] = {
    "ner": [("ents_f", "entities F1"), ("ents_p", "entities P"), ("ents_r", "entities R")],
    "mentions": [("mentions_f", "mentions F1"), ("mentions_p", "mentions P"), ("mentions_r", "mentions R")],
    "relations": [("rel_micro_f", "relations F1 (boundaries)"), ("rel_strict_f", "relations F1 (strict)")],
    "coref": [
        ("coref_f", "coref CoNLL avg F1"),
        ("coref_muc_f", "coref MUC F1"),
        ("coref_b3_f", "coref B³ F1"),
        ("coref_ceafe_f", "coref CEAF-e F1"),
        ("coref_lea_f", "coref LEA F1"),
    ],
}
HEADLINE = {task: metrics[0] for task, metrics in TASK_METRICS.items()}


def log(msg: str) -> None:
    print(f"[ablation {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- config derivation (unit tested) ----------------------------------------------------


def components_by_factory(config: Config) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for name in config["nlp"]["pipeline"]:
        factory = config["components"].get(name, {}).get("factory", name)
        out.setdefault(factory, []).append(name)
    return out


def _listener_blocks(block: Any):
    """Every HMTLListener block nested in a component's config."""
    if isinstance(block, dict):
        if block.get("@architectures") == LISTENER_ARCH:
            yield block
        for value in block.values():
            yield from _listener_blocks(value)


def _entity_provider(config: Config, relations_name: str) -> Optional[str]:
    """The component whose output is the relation head's ``entity_source``."""
    source = config["components"][relations_name].get("entity_source", "ents")
    for name in config["nlp"]["pipeline"]:
        block = config["components"].get(name, {})
        factory = block.get("factory")
        if source == "ents" and factory == "hmtl_ner":
            return name
        if factory == "hmtl_mentions" and block.get("spans_key", "mentions") == source:
            return name
    return None


def _remove_components(config: Config, removed: Sequence[str], new_pipeline: List[str]) -> None:
    """Drop components: their blocks, pipeline/frozen/annotating/disabled entries,
    ``[initialize.components]`` entries and score weights (in place)."""
    factories = {name: config["components"][name].get("factory", name) for name in removed}
    config["nlp"]["pipeline"] = new_pipeline
    for name in removed:
        config["components"].pop(name, None)
        config.get("initialize", {}).get("components", {}).pop(name, None)
    training = config["training"]
    for key in ("frozen_components", "annotating_components"):
        if key in training:
            training[key] = [n for n in training[key] if n in new_pipeline]
    if "disabled" in config["nlp"]:
        config["nlp"]["disabled"] = [n for n in config["nlp"]["disabled"] if n in new_pipeline]
    prefixes = [HEAD_INFO[f][1] for f in factories.values() if f in HEAD_INFO]
    weights = dict(training.get("score_weights", {}))
    training["score_weights"] = {k: v for k, v in weights.items() if not any(k.startswith(p) for p in prefixes)}


def derive_single_head_config(config: Config, head: str) -> Config:
    """The config minus every head but ``head`` (a component name), on its own encoder.

    Keeps the encoder(s) and every non-head pipe (sentencizer, transformer). For a relation
    head whose entity source another head provides, the provider stays on the original
    encoder, the relation head gets its own copy of the encoder, and the provider's score
    weights are set to 0 (model-best is picked on the relation scores).
    """
    config = copy.deepcopy(config)
    pipeline = list(config["nlp"]["pipeline"])
    factories = {name: config["components"][name].get("factory", name) for name in pipeline}
    if head not in pipeline or factories[head] not in HEAD_FACTORIES:
        raise ValueError(f"'{head}' is not a head of the pipeline {pipeline}")
    encoders = [n for n in pipeline if factories[n] == ENCODER_FACTORY]
    keep = {n for n in pipeline if factories[n] not in HEAD_FACTORIES} | {head}
    provider = _entity_provider(config, head) if factories[head] == "hmtl_relations" else None
    if provider is not None:
        keep.add(provider)
    new_pipeline = [n for n in pipeline if n in keep]
    if provider is not None:
        if len(encoders) != 1:
            raise ValueError(f"expected one encoder to copy for the relation head, found {encoders}")
        encoder = encoders[0]
        own = f"{encoder}_{HEAD_INFO['hmtl_relations'][0]}"
        config["components"][own] = copy.deepcopy(dict(config["components"][encoder]))
        for block in _listener_blocks(config["components"][provider]):
            block["upstream"] = encoder
        for block in _listener_blocks(config["components"][head]):
            block["upstream"] = own
        new_pipeline.insert(new_pipeline.index(head), own)
    _remove_components(config, [n for n in pipeline if n not in keep], new_pipeline)
    if provider is not None:
        prefix = HEAD_INFO[factories[provider]][1]
        weights = config["training"]["score_weights"]
        for key in list(weights) + [f"{prefix}f", f"{prefix}p", f"{prefix}r"]:
            if key.startswith(prefix) and not key.endswith("_per_type"):
                weights[key] = 0.0
    return config


def derive_without_head_config(config: Config, head: str) -> Config:
    """The hierarchy without ``head`` (a component name). When ``head`` provides the
    relation head's arguments, relations take them from the mentions head instead; a
    ValueError when there is none."""
    config = copy.deepcopy(config)
    pipeline = list(config["nlp"]["pipeline"])
    if head not in pipeline or config["components"][head].get("factory") not in HEAD_FACTORIES:
        raise ValueError(f"'{head}' is not a head of the pipeline {pipeline}")
    by_factory = components_by_factory(config)
    for relations in by_factory.get("hmtl_relations", []):
        if _entity_provider(config, relations) == head:
            mentions = [n for n in by_factory.get("hmtl_mentions", []) if n != head]
            if not mentions:
                raise ValueError(f"without '{head}', '{relations}' has no entity source")
            key = config["components"][mentions[0]].get("spans_key", "mentions")
            config["components"][relations]["entity_source"] = key
    _remove_components(config, [head], [n for n in pipeline if n != head])
    return config


def encoder_levels(config: Config, encoder: str) -> int:
    widths = config["components"][encoder]["model"].get("level_widths")
    if not isinstance(widths, list) or not widths:
        raise ValueError(f"'{encoder}': no level_widths in its model block")
    return len(widths)


def derive_flat_config(config: Config) -> Config:
    """Every head reads the top level of its encoder, with the embedding shortcut as the
    top-level heads have it: the same heads and encoder without the hierarchy."""
    config = copy.deepcopy(config)
    for name in config["nlp"]["pipeline"]:
        block = config["components"][name]
        if block.get("factory") not in HEAD_FACTORIES:
            continue
        for listener in _listener_blocks(block):
            listener["level"] = encoder_levels(config, listener["upstream"])
            listener["shortcut"] = True
    return config


def derive_variant_config(config: Config, variant: str) -> Config:
    """The config of one variant (see the module docstring); a ValueError when the
    pipeline has not exactly one head for the task the variant names."""
    if variant == "full":
        return copy.deepcopy(config)
    if variant == "flat":
        return derive_flat_config(config)
    task = variant[3:] if variant.startswith("no-") else variant
    factory = {info[0]: f for f, info in HEAD_INFO.items()}.get(task)
    if factory is None:
        raise ValueError(f"unknown variant {variant!r} (one of {VARIANTS})")
    names = components_by_factory(config).get(factory, [])
    if len(names) != 1:
        raise ValueError(f"{variant}: {len(names)} '{factory}' components in the pipeline")
    if variant.startswith("no-"):
        return derive_without_head_config(config, names[0])
    return derive_single_head_config(config, names[0])


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


def heads_and_levels(config: Config) -> Dict[str, Tuple[str, int]]:
    """head factory -> (upstream encoder, level) of each head in the pipeline."""
    out = {}
    for name in config["nlp"]["pipeline"]:
        block = config["components"][name]
        if block.get("factory") in HEAD_FACTORIES:
            listener = next(_listener_blocks(block))
            out[block["factory"]] = (listener["upstream"], listener["level"])
    return out


# --- aggregation (unit tested) ---------------------------------------------------------


def pct(value: Any) -> Optional[float]:
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


def variant_tasks(variant: str) -> List[str]:
    """The tasks whose scores a variant reports (relations-alone also trains its provider,
    whose scores are not the single-task ones)."""
    if variant in TASKS:
        return [variant]
    if variant.startswith("no-"):
        return [t for t in TASKS if t != variant[3:]]
    return list(TASKS)


def aggregate(runs: Dict[str, Dict[int, Dict[str, Any]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """variant -> metric -> summary over the seeds, for the tasks the variant has."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for variant, by_seed in runs.items():
        finished = [r["scores"] for _, r in sorted(by_seed.items()) if r.get("scores") is not None]
        if not finished:
            continue
        out[variant] = {}
        for task in variant_tasks(variant):
            for key, _ in TASK_METRICS[task]:
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


def comparisons(summary: Dict[str, Dict[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Each task's headline: every other variant against ``full`` (variant - full)."""
    rows = []
    full = summary.get("full", {})
    for task in TASKS:
        key, label = HEADLINE[task]
        for variant in VARIANTS:
            if variant == "full" or key not in summary.get(variant, {}) or key not in full:
                continue
            rows.append({"task": task, "metric": key, "label": label, "variant": variant, **compare(summary[variant][key], full[key])})
    return rows


def fmt_summary(s: Optional[Dict[str, Any]]) -> str:
    if not s or s.get("mean") is None:
        return "–"
    return f"{s['mean']:.1f} ± {s['sd']:.1f} ({s['n']})"


def render_markdown(report: Dict[str, Any]) -> str:
    summary = report["summary"]
    variants = [v for v in VARIANTS if v in summary]
    out = [
        "# HMTL ablation: does the hierarchy help?",
        "",
        f"Generated by `{report['command']}` on {report['date']} ({report['machine']}).",
        "",
        f"Config `{report['config']}`, {report['max_steps']} training steps per run, seeds "
        f"{report['seeds']}, test set(s) {', '.join(f'`{t}`' for t in report['test'])}. Scores: % on "
        "the test set (`nlp.evaluate` of each run's model-best, chosen on dev), mean ± sample "
        "standard deviation over seeds (number of seeds).",
        "",
        "| variant | " + " | ".join(HEADLINE[t][1] for t in TASKS) + " | training wall time (s, mean) |",
        "|---|" + "---|" * (len(TASKS) + 1),
    ]
    for variant in variants:
        cells = [fmt_summary(summary[variant].get(HEADLINE[t][0])) for t in TASKS]
        wall = report["wall_s"].get(variant)
        out.append(f"| {variant} | " + " | ".join(cells) + f" | {'–' if wall is None else f'{wall:.0f}'} |")
    out += [
        "",
        "## Against the full hierarchy",
        "",
        "Δ = variant − full (points). A difference counts only when it exceeds the sum of the two "
        "rows' standard deviations; otherwise \"no difference\".",
        "",
        "| task | variant | Δ | verdict |",
        "|---|---|---|---|",
    ]
    for row in report["comparisons"]:
        delta = "–" if row["delta"] is None else f"{row['delta']:+.1f}"
        out.append(f"| {row['label']} | {row['variant']} | {delta} | {row['verdict']} |")
    out += ["", "## All metrics", "", "| variant | metric | mean ± sd (n) | per seed |", "|---|---|---|---|"]
    for variant in variants:
        for task in TASKS:
            for key, label in TASK_METRICS[task]:
                s = summary[variant].get(key)
                if s and s["n"]:
                    out.append(f"| {variant} | {label} | {fmt_summary(s)} | {', '.join(f'{v:.1f}' for v in s['values'])} |")
    out += ["", "## Variants", ""]
    for variant in variants:
        out.append(f"- `{variant}`: {report['descriptions'].get(variant, '')}")
    pending = report.get("pending") or []
    if pending:
        out += ["", f"Not finished yet ({len(pending)} runs): " + ", ".join(pending) + "."]
    plots = report.get("plots") or []
    if plots:
        out += ["", "## Dev learning curves", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(out) + "\n"


def describe(config: Config) -> str:
    levels = heads_and_levels(config)
    heads = ", ".join(f"{HEAD_INFO[f][0]}@{enc}:L{lvl}" for f, (enc, lvl) in levels.items())
    return f"pipeline {', '.join(config['nlp']['pipeline'])}; heads (encoder:level) {heads}"


# --- plots -----------------------------------------------------------------------------


def mean_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    """The mean of ``values``, or None when any is missing."""
    return None if any(v is None for v in values) else statistics.fmean(values)


def dev_curves(runs: Dict[str, Dict[int, Dict[str, Any]]]) -> Dict[str, Dict[str, List[Tuple[float, Optional[float], float]]]]:
    """variant -> task -> [(step, mean seconds, mean dev score %)] over the seeds that
    logged that step."""
    out: Dict[str, Dict[str, List[Tuple[float, Optional[float], float]]]] = {}
    for variant, by_seed in runs.items():
        logs = [r["dev_log"] for r in by_seed.values() if r.get("dev_log")]
        if not logs:
            continue
        out[variant] = {}
        for task in variant_tasks(variant):
            key = HEADLINE[task][0]
            points: Dict[int, List[Tuple[float, float]]] = {}
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


def write_plots(curves: Dict[str, Dict[str, List[Tuple[float, Optional[float], float]]]], output: Path) -> List[str]:
    """Two PNGs (dev score per task against steps and against wall time); [] without
    matplotlib (the ``plots`` extra)."""
    from spacy_hmtl.benchmarking import plot_dev_curves

    def style(variant: str) -> str:  # line style by kind of variant, colour by variant
        return "-" if variant in ("full", "flat") else (":" if variant.startswith("no-") else "--")

    panels = [(task, HEADLINE[task][1]) for task in TASKS]
    return plot_dev_curves(curves, panels, output, line_order=VARIANTS, line_style=style)


# --- running --------------------------------------------------------------------------


def default_test_paths(config: Config) -> List[str]:
    """The test set(s) beside the config's dev path(s) (``.../dev.spacy`` ->
    ``.../test.spacy``), for ``[paths] dev`` or every ``*_dev`` path (mixed.cfg)."""
    paths = config.get("paths", {})
    devs = [v for k, v in paths.items() if (k == "dev" or k.endswith("_dev")) and isinstance(v, str)]
    return [d[: -len("dev.spacy")] + "test.spacy" for d in devs if d.endswith("dev.spacy")]


def evaluate(model: Path, tests: Sequence[str], batch_size: int) -> Dict[str, Any]:
    """Scores of a trained pipeline on the test set(s), read as one corpus like its dev set
    (each scorer skips the documents not annotated for its task)."""
    import spacy

    from spacy_hmtl.training import read_like_dev

    nlp = spacy.load(model)
    # as the dev set is read: a multi-task config's test sets keep only the tasks their
    # corpus declares (LitBank's entities are not scored against a CoNLL04 NER head)
    examples = read_like_dev(nlp, tests)
    scores = nlp.evaluate(examples, batch_size=batch_size)
    return {"pipeline": nlp.pipe_names, "n_docs": len(examples), "scores": scores}


def run_dir(workdir: str, variant: str, seed: int) -> Path:
    return Path(workdir) / variant / f"seed{seed}"


def is_finished(workdir: str, variant: str, seed: int) -> bool:
    """A run is finished once its test scores are written (it is never trained again)."""
    return (run_dir(workdir, variant, seed) / "test_scores.json").exists()


def run_one(variant: str, seed: int, cfg: Config, args, extra: List[str], tests: List[str]) -> Dict[str, Any]:
    """Train (unless done) and evaluate one run; its record, also in test_scores.json."""
    out_dir = run_dir(args.workdir, variant, seed)
    result_path = out_dir / "test_scores.json"
    if is_finished(args.workdir, variant, seed):
        return json.loads(result_path.read_text(encoding="utf8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.cfg"
    run_config(cfg, seed, args.max_steps, out_dir / "train_log.jsonl").to_disk(cfg_path)
    timing = out_dir / "train_time.json"
    env = dict(os.environ)
    if args.threads > 0:  # torch's intra-op pool (OpenMP/MKL) in the child processes
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    model = out_dir / "model-best"
    record = json.loads(timing.read_text(encoding="utf8")) if timing.exists() else {}
    if record.get("returncode") != 0 or not (model / "config.cfg").exists():
        cmd = [
            sys.executable, str(Path(__file__).resolve().parent / "timed.py"), str(timing), "--",
            sys.executable, "-m", "spacy", "train", str(cfg_path), "--output", str(out_dir),
            "--gpu-id", str(args.gpu_id),
        ] + extra  # fmt: skip
        log(f"{variant} seed {seed}: training ({out_dir}/train.log)")
        with (out_dir / "train.log").open("w", encoding="utf8") as console:
            subprocess.run(cmd, env=env, stdout=console, stderr=subprocess.STDOUT)
        record = json.loads(timing.read_text(encoding="utf8")) if timing.exists() else {}
    if record.get("returncode") != 0 or not (model / "config.cfg").exists():
        log(f"{variant} seed {seed}: training failed (exit {record.get('returncode')}), see {out_dir}/train.log")
        return {"variant": variant, "seed": seed, "status": f"training failed (exit {record.get('returncode')})"}
    result = evaluate_run(variant, seed, out_dir, record, tests, env)
    if result.get("status") == "trained and evaluated":
        log(f"{variant} seed {seed}: done in {record.get('wall_s')} s")
    return result


def evaluate_run(
    variant: str, seed: int, out_dir: Path, record: Dict[str, Any], tests: List[str], env: Dict[str, str]
) -> Dict[str, Any]:
    """Score a trained run's model-best on the test set(s) in a child process and write
    test_scores.json (atomically: the run counts as finished only once it is complete)."""
    log(f"{variant} seed {seed}: evaluating on {tests}")
    scores_tmp = out_dir / "test_scores.tmp.json"
    model = out_dir / "model-best"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--evaluate-model", str(model), "--evaluate-output", str(scores_tmp), "--test", *tests]
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0 or not scores_tmp.exists():
        return {"variant": variant, "seed": seed, "status": f"evaluation failed (exit {proc.returncode})"}
    evaluated = json.loads(scores_tmp.read_text(encoding="utf8"))
    result = {
        "variant": variant,
        "seed": seed,
        "status": "trained and evaluated",
        "pipeline": evaluated["pipeline"],
        "n_test_docs": evaluated["n_docs"],
        "train_wall_s": record.get("wall_s"),
        "train_peak_rss_mb": record.get("peak_rss_mb"),
        "scores": evaluated["scores"],
    }
    result_path = out_dir / "test_scores.json"
    tmp = out_dir / "test_scores.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf8")
    os.replace(tmp, result_path)
    scores_tmp.unlink()
    return result


def reevaluate(args, order: Sequence[Tuple[str, int]], tests: List[str]) -> None:
    """Score every finished run's model-best again (after a change to the evaluation);
    the training record is kept, nothing is trained."""
    env = dict(os.environ)
    if args.threads > 0:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    done = [(v, s) for v, s in order if is_finished(args.workdir, v, s)]
    log(f"re-evaluating {len(done)} finished runs on {tests}")
    for variant, seed in done:
        out_dir = run_dir(args.workdir, variant, seed)
        timing = out_dir / "train_time.json"
        record = json.loads(timing.read_text(encoding="utf8")) if timing.exists() else {}
        result = evaluate_run(variant, seed, out_dir, record, tests, env)
        if result.get("status") != "trained and evaluated":
            log(f"{variant} seed {seed}: {result['status']}")


def collect(workdir: Path, variants: Sequence[str], seeds: Sequence[int]) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """variant -> seed -> finished run (test scores, wall time, dev log), from disk."""
    from spacy_hmtl.training.train_log import read_train_log

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


def machine() -> str:
    from spacy_hmtl.benchmarking import machine_line

    return machine_line()


def write_report(args, argv_shown, config: Config, configs: Dict[str, Config], seeds, tests) -> Path:
    workdir = Path(args.workdir)
    runs = collect(workdir, list(configs), seeds)
    summary = aggregate(runs)
    wall = {
        v: statistics.fmean(r["train_wall_s"] for r in by_seed.values() if r.get("train_wall_s"))
        for v, by_seed in runs.items()
        if any(r.get("train_wall_s") for r in by_seed.values())
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "python " + shlex.join(["scripts/ablation.py"] + list(argv_shown)),
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": args.config,
        "max_steps": args.max_steps,
        "seeds": list(seeds),
        "test": list(tests),
        "overrides": args.extra,
        "threads": args.threads,
        "descriptions": {v: describe(c) for v, c in configs.items()},
        "summary": summary,
        "comparisons": comparisons(summary),
        "wall_s": wall,
        "pending": [f"{v}/seed{s}" for v in configs for s in seeds if s not in runs.get(v, {})],
        "runs": {v: {str(s): {k: r.get(k) for k in ("status", "train_wall_s", "scores")} for s, r in by_seed.items()} for v, by_seed in runs.items()},
    }
    report["plots"] = write_plots(dev_curves(runs), out)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf8")
    out.with_name(out.name + ".md").write_text(render_markdown(report), encoding="utf8")
    return out


def run_order(variants: Sequence[str], seeds: Sequence[int]) -> List[Tuple[str, int]]:
    """The primary rows of every seed first, then the "- task" rows."""
    primary = [v for v in variants if v not in MINUS_VARIANTS]
    minus = [v for v in variants if v in MINUS_VARIANTS]
    return [(v, s) for group in (primary, minus) for s in seeds for v in group]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/scierc.cfg")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default="benchmarks/ablation", help="writes OUTPUT.md, OUTPUT.json and OUTPUT_dev_*.png")
    parser.add_argument("--workdir", default=None, help="runs (default: training/ablation/<config name>)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--test", nargs="+", default=None, help="test corpus/corpora (default: beside the dev path(s))")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (OMP_NUM_THREADS); 0: the default")
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished runs, train nothing")
    parser.add_argument("--reevaluate", action="store_true", help="score the finished runs' model-best on the test set(s) again, then write the report; trains nothing")
    parser.add_argument("--evaluate-model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--evaluate-output", default=None, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    for item in extra:
        if item.startswith("--") and "." not in item:
            parser.error(f"unknown option {item} (only dotted `spacy train` overrides are passed through)")
    args.extra = extra

    if args.evaluate_model:  # the child process that scores one run
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        result = evaluate(Path(args.evaluate_model), args.test, args.eval_batch_size)
        Path(args.evaluate_output).write_text(json.dumps(result, default=str), encoding="utf8")
        return 0

    config = load_config(Path(args.config), interpolate=False)
    args.workdir = args.workdir or str(Path("training") / "ablation" / Path(args.config).stem)
    tests = args.test or default_test_paths(config)
    missing = [t for t in tests if not Path(t).exists()]
    if not tests or missing:
        parser.error(f"no test corpus: {missing or tests!r} (set --test)")
    configs = {}
    for variant in args.variants:
        try:
            configs[variant] = derive_variant_config(config, variant)
        except ValueError as err:
            log(f"{variant}: skipped ({err})")
    argv_shown = list(sys.argv[1:] if argv is None else argv)
    order = run_order(list(configs), args.seeds)
    if args.reevaluate:
        reevaluate(args, order, tests)
    elif not args.report_only:
        todo = [(v, s) for v, s in order if not is_finished(args.workdir, v, s)]
        log(f"{len(order) - len(todo)} of {len(order)} runs finished before; training {len(todo)} with {args.jobs} at a time")

        report_lock = threading.Lock()

        def work(item: Tuple[str, int]) -> Dict[str, Any]:
            result = run_one(item[0], item[1], configs[item[0]], args, extra, tests)
            with report_lock:  # the report after every run, so it can be read meanwhile
                write_report(args, argv_shown, config, configs, args.seeds, tests)
            return result

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(work, todo))
        failed = [r for r in results if r.get("status") != "trained and evaluated"]
        for r in failed:
            log(f"{r['variant']} seed {r['seed']}: {r['status']}")
    out = write_report(args, argv_shown, config, configs, args.seeds, tests)
    log(f"wrote {out}.md, {out}.json and the plots")
    return 0 if all(is_finished(args.workdir, v, s) for v, s in order) else 1


if __name__ == "__main__":
    sys.exit(main())
