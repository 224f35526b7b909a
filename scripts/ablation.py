"""HMTL's central ablation: each head trained alone vs the full hierarchy, same data and budget.

    python scripts/ablation.py --config configs/scierc.cfg --max-steps 600 \\
        --output benchmarks/ablation [--workdir training/ablation] [--gpu-id -1] \\
        [--test corpus/scierc/test.spacy] [--variants ner mentions relations coref full] \\
        [--threads N] [--skip-existing] [any `spacy train` override, e.g. --paths.train X --paths.dev Y]

From the full config, one config per head is derived by removing the other heads (their
``[components.*]`` blocks, ``nlp.pipeline`` entries, frozen/annotating entries and score
weights) and keeping the encoder, so every head is trained with its own encoder and no
other task's loss. Each variant is trained with ``spacy train`` (through
``scripts/timed.py``, for its wall time) on the same corpus with the same step budget and
seed, then its ``model-best`` is evaluated on the test set with ``nlp.evaluate``. Written:
``OUTPUT.md`` and ``OUTPUT.json`` (per-task test scores of each head alone and of the full
hierarchy, and the difference the hierarchy makes: full minus single), and under
``--workdir``: ``configs/<variant>.cfg``, ``<variant>/model-best``, ``<variant>/train_time.json``.

Relations alone: ``hmtl_relations`` scores pairs of the spans of its ``entity_source``
(``doc.ents`` by default), which another head predicts; without it there is no candidate at
inference and relation F1 is 0 by construction. So by default (``--relations-alone
separate-provider``) the relations-alone pipeline keeps that provider (``hmtl_ner``) on the
original encoder and gives ``hmtl_relations`` its own copy of the encoder
(``<encoder>_relations``): no parameter is shared between the two tasks, and model-best is
picked on the relation scores only (the provider's score weights are set to 0). The
provider's NER is therefore trained alongside (it is the NER-alone setting). ``--relations-
alone bare`` keeps only encoder + relations (relation F1 0 unless the docs carry entities).
"""
import argparse
import copy
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.util import load_config
from thinc.api import Config

HEAD_FACTORIES = ["hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
ENCODER_FACTORY = "hmtl_encoder"
LISTENER_ARCH = "spacy_hmtl.HMTLListener.v1"
# head factory -> (variant name, score-weight prefix)
HEAD_INFO = {
    "hmtl_ner": ("ner", "ents_"),
    "hmtl_mentions": ("mentions", "mentions_"),
    "hmtl_relations": ("relations", "rel_"),
    "hmtl_coref": ("coref", "coref_"),
}
VARIANTS = ["ner", "mentions", "relations", "coref", "full"]
# task -> (score key, label) rows of the table
TASK_METRICS: Dict[str, List[Tuple[str, str]]] = {
    "ner": [("ents_p", "entities P"), ("ents_r", "entities R"), ("ents_f", "entities F1")],
    "mentions": [("mentions_p", "mentions P"), ("mentions_r", "mentions R"), ("mentions_f", "mentions F1")],
    "relations": [("rel_micro_f", "relations F1 (boundaries)"), ("rel_strict_f", "relations F1 (strict)")],
    "coref": [
        ("coref_muc_f", "coref MUC F1"),
        ("coref_b3_f", "coref B³ F1"),
        ("coref_ceafe_f", "coref CEAF-e F1"),
        ("coref_f", "coref CoNLL avg F1"),
        ("coref_lea_f", "coref LEA F1"),
    ],
}


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


def derive_single_head_config(config: Config, head: str, relations_alone: str = "separate-provider") -> Config:
    """The full config minus every head but ``head`` (a component name).

    Keeps the encoder(s) and every other non-head pipe (sentencizer, transformer); removes
    the other heads' components, pipeline entries,
    frozen/annotating entries, ``[initialize.components]`` entries and score weights. For a
    relation head whose entity source another head provides (``relations_alone =
    "separate-provider"``), the provider stays, the relation head gets its own copy of the
    encoder, and the provider's score weights are set to 0.
    """
    config = copy.deepcopy(config)
    pipeline = list(config["nlp"]["pipeline"])
    factories = {name: config["components"][name].get("factory", name) for name in pipeline}
    if head not in pipeline or factories[head] not in HEAD_FACTORIES:
        raise ValueError(f"'{head}' is not a head of the pipeline {pipeline}")
    encoders = [n for n in pipeline if factories[n] == ENCODER_FACTORY]
    keep = {n for n in pipeline if factories[n] not in HEAD_FACTORIES} | {head}
    provider = None
    if factories[head] == "hmtl_relations" and relations_alone == "separate-provider":
        provider = _entity_provider(config, head)
        if provider is not None:
            keep.add(provider)
    elif relations_alone not in ("separate-provider", "bare"):
        raise ValueError(f"relations_alone: 'separate-provider' or 'bare', not {relations_alone!r}")
    removed = [n for n in pipeline if n not in keep]
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

    weights = dict(training.get("score_weights", {}))
    removed_prefixes = [HEAD_INFO[factories[n]][1] for n in removed if factories[n] in HEAD_INFO]
    weights = {k: v for k, v in weights.items() if not any(k.startswith(p) for p in removed_prefixes)}
    if provider is not None:
        prefix = HEAD_INFO[factories[provider]][1]
        for key in list(weights) + [f"{prefix}f", f"{prefix}p", f"{prefix}r"]:
            if key.startswith(prefix) and not key.endswith("_per_type"):
                weights[key] = 0.0
    training["score_weights"] = weights
    return config


def variant_configs(config: Config, variants: Sequence[str], relations_alone: str) -> Dict[str, Config]:
    """variant name -> config: one per head present (by factory), and "full" (unchanged)."""
    by_factory = components_by_factory(config)
    out: Dict[str, Config] = {}
    for factory in HEAD_FACTORIES:
        variant = HEAD_INFO[factory][0]
        if variant not in variants:
            continue
        names = by_factory.get(factory, [])
        if len(names) != 1:
            log(f"{variant}: {len(names)} '{factory}' components in the pipeline, skipped")
            continue
        out[variant] = derive_single_head_config(config, names[0], relations_alone)
    if "full" in variants:
        out["full"] = copy.deepcopy(config)
    return out


def pct(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(100.0 * value, 2)


def delta(full: Optional[float], single: Optional[float]) -> Optional[float]:
    if full is None or single is None:
        return None
    return round(full - single, 2)


def table_rows(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per-task rows: the task's head alone vs the full hierarchy (percent), full - single."""
    full = (results.get("full") or {}).get("scores") or {}
    rows = []
    for task, metrics in TASK_METRICS.items():
        single = (results.get(task) or {}).get("scores")
        if single is None and task not in results:
            continue
        single = single or {}
        for key, label in metrics:
            s, f = pct(single.get(key)), pct(full.get(key))
            rows.append({"task": task, "metric": key, "label": label, "single": s, "full": f, "delta": delta(f, s)})
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def fmt_delta(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:+.2f}"


def render_markdown(report: Dict[str, Any]) -> str:
    out = [
        "# HMTL ablation: each head alone vs the full hierarchy",
        "",
        f"Generated by `{report['command']}` on {report['date']}.",
        "",
        f"Config `{report['config']}`, {report['max_steps']} training steps per variant, seed "
        f"{report['seed']}, test set `{report['test']}`. Scores in % on the test set "
        "(`nlp.evaluate`, model-best of each run). Δ = full hierarchy minus the head alone.",
        "",
        "| task | metric | head alone | full hierarchy | Δ (full − alone) |",
        "|---|---|---|---|---|",
    ]
    for row in report["table"]:
        out.append(f"| {row['task']} | {row['label']} | {fmt(row['single'])} | {fmt(row['full'])} | {fmt_delta(row['delta'])} |")
    out += [
        "",
        "| variant | pipeline | training wall time (s) | status |",
        "|---|---|---|---|",
    ]
    for variant, r in report["results"].items():
        wall = r.get("train_wall_s")
        out.append(
            f"| {variant} | {', '.join(r.get('pipeline', []))} | {fmt(wall)} | {r.get('status')} |"
        )
    out += ["", report["relations_note"], ""]
    return "\n".join(out)


# --- running --------------------------------------------------------------------------


def default_test_path(config: Config) -> Optional[str]:
    dev = config.get("paths", {}).get("dev")
    if isinstance(dev, str) and dev.endswith("dev.spacy"):
        return dev[: -len("dev.spacy")] + "test.spacy"
    return None


def train_variant(variant: str, cfg_path: Path, workdir: Path, args, extra: List[str]) -> Dict[str, Any]:
    out_dir = workdir / variant
    timing = out_dir / "train_time.json"
    if args.skip_existing and (out_dir / "model-best" / "config.cfg").exists() and timing.exists():
        record = json.loads(timing.read_text(encoding="utf8"))
        if record.get("returncode") == 0:
            log(f"{variant}: trained before ({timing}), not retrained (--skip-existing)")
            return record
    cmd = [
        sys.executable, str(Path(__file__).resolve().parent / "timed.py"), str(timing), "--",
        sys.executable, "-m", "spacy", "train", str(cfg_path), "--output", str(out_dir),
        "--gpu-id", str(args.gpu_id), "--training.max_steps", str(args.max_steps),
    ] + extra  # fmt: skip
    env = dict(os.environ)
    if args.threads > 0:  # torch's intra-op pool (OpenMP/MKL) in the training process
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    log(f"{variant}: {shlex.join(cmd)}")
    proc = subprocess.run(cmd, env=env)
    record = json.loads(timing.read_text(encoding="utf8")) if timing.exists() else {}
    record.setdefault("returncode", proc.returncode)
    return record


def evaluate_variant(model: Path, test: str, batch_size: int) -> Dict[str, Any]:
    import spacy
    from spacy.training import Corpus

    nlp = spacy.load(model)
    examples = list(Corpus(test, max_length=0)(nlp))
    scores = nlp.evaluate(examples, batch_size=batch_size)
    return {"pipeline": nlp.pipe_names, "n_docs": len(examples), "scores": scores}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/scierc.cfg")
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--output", default="benchmarks/ablation", help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--workdir", default="training/ablation", help="derived configs and trained variants")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--test", default=None, help="test corpus (default: the config's dev path, dev -> test)")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--relations-alone", default="separate-provider", choices=["separate-provider", "bare"])
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch threads of the trainings and the evaluation (OMP_NUM_THREADS); 0: leave the default",
    )  # fmt: skip
    parser.add_argument("--skip-existing", action="store_true", help="reuse variants whose training finished (exit 0 in train_time.json)")
    args, extra = parser.parse_known_args(argv)
    for item in extra:
        if item.startswith("--") and "." not in item:
            parser.error(f"unknown option {item} (only dotted `spacy train` overrides are passed through)")

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    config = load_config(Path(args.config), interpolate=False)
    test = args.test or default_test_path(config)
    if not test or not Path(test).exists():
        parser.error(f"no test corpus: {test!r} (set --test)")
    workdir = Path(args.workdir)
    (workdir / "configs").mkdir(parents=True, exist_ok=True)
    configs = variant_configs(config, args.variants, args.relations_alone)
    results: Dict[str, Dict[str, Any]] = {}
    for variant, cfg in configs.items():
        cfg_path = workdir / "configs" / f"{variant}.cfg"
        cfg.to_disk(cfg_path)
        log(f"{variant}: pipeline {cfg['nlp']['pipeline']} -> {cfg_path}")
        record = train_variant(variant, cfg_path, workdir, args, extra)
        entry: Dict[str, Any] = {
            "config": str(cfg_path),
            "pipeline": list(cfg["nlp"]["pipeline"]),
            "train_wall_s": record.get("wall_s"),
            "train_peak_rss_mb": record.get("peak_rss_mb"),
        }
        model = workdir / variant / "model-best"
        if record.get("returncode", 0) != 0 or not (model / "config.cfg").exists():
            entry.update(status=f"training failed (exit {record.get('returncode')})", scores=None)
            log(f"{variant}: {entry['status']}")
        else:
            log(f"{variant}: evaluating {model} on {test}")
            evaluated = evaluate_variant(model, test, args.eval_batch_size)
            entry.update(status="trained and evaluated", n_test_docs=evaluated["n_docs"], scores=evaluated["scores"])
        results[variant] = entry

    argv_shown = list(sys.argv[1:] if argv is None else argv)
    report = {
        "command": "python " + shlex.join(["scripts/ablation.py"] + argv_shown),
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "config": args.config,
        "max_steps": args.max_steps,
        "seed": config["system"].get("seed") if "system" in config else None,
        "test": test,
        "overrides": extra,
        "threads": args.threads,
        "relations_alone": args.relations_alone,
        "relations_note": (
            "Relations alone: `hmtl_relations` on its own copy of the encoder, with its entity "
            "source (`hmtl_ner`) trained alongside on the original encoder (no shared parameters); "
            "model-best picked on the relation scores."
            if args.relations_alone == "separate-provider"
            else "Relations alone: encoder + `hmtl_relations` only (no entity provider)."
        ),
        "table": table_rows(results),
        "results": results,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf8")
    out.with_name(out.name + ".md").write_text(render_markdown(report), encoding="utf8")
    log(f"wrote {out}.md and {out}.json")
    return 0 if all(r["scores"] is not None for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
