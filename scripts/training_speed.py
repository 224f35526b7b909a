"""Training words/s of the shipped configs, beside stock spaCy ``ner`` and an earlier commit,
measured in the same run; and a profile of training steps (and of inference) by pipe,
torch module and operator.

    python scripts/training_speed.py --output benchmarks/training_speed \
        --config configs/scierc.cfg --config configs/stock_ner_scierc.cfg \
        [--baseline-commit cd479c9] [--rounds 2] [--steps 20] [--warmup 3] [--threads 1] \
        [--profile-steps 3] [--warm-epoch configs/scierc_trf.cfg] [--inference-model training/scierc/model-best]

writes ``OUTPUT.md`` and ``OUTPUT.json``. Every measurement runs in a fresh process
(``spacy_hmtl/training/throughput.py``): the config's own corpus, batcher, dropout and
optimizer, ``--warmup`` untimed steps, then ``--steps`` timed ones. ``--rounds`` rounds
measure every config once each (order reversed every other round); the median is
reported. With ``--baseline-commit``, each HMTL config is also measured on that commit's
code *and config* (a ``git worktree`` in a temporary directory, put first on
``PYTHONPATH``), interleaved in the same rounds, so the ratio compares code on the same
machine at the same time; the machines are shared, so absolute figures drift, ratios less.
A config whose inputs are missing (e.g. ``scierc_trf.cfg`` without ``training/minilm``) is
listed as skipped with the reason.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

from spacy_hmtl.benchmarking import machine_info, md_table

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT = ROOT / "spacy_hmtl" / "training" / "throughput.py"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(
    config: Path,
    args,
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
            str(args.warmup),
            "--steps",
            str(args.steps if steps is None else steps),
            "--profile-steps",
            str(profile_steps),
            "--warmup-epochs",
            str(warmup_epochs),
            "--threads",
            str(args.threads),
        ]
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
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
    path = workdir / f"baseline-{commit}"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True, capture_output=True)
    return path


def remove_checkout(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)


def profile_inference(model: Path, corpus: Path, max_docs: int, threads: int) -> Dict[str, Any]:
    import spacy
    import torch
    from spacy.tokens import DocBin

    from spacy_hmtl.training.throughput import profile_inference as run_profile

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
    parts = []
    for key, title in [("by_pipe", "by pipe"), ("by_module", "by torch module (forward)"), ("by_family", "by operator family (self time)")]:
        rows = [[r["name"], f"{r['s_per_step']:.4f}", f"{100 * r['share']:.1f}%"] for r in profile[key][:limit]]
        parts.append(f"*{title}*\n\n" + md_table(["part", "s per step", "share of wall"], rows))
    rows = [[f"`{r['op']}`", f"{r['s_per_step']:.4f}", f"{100 * r['share']:.1f}%", r["calls"]] for r in profile["top_ops"][:limit]]
    parts.append("*top operators (self time)*\n\n" + md_table(["operator", "s per step", "share", "calls"], rows))
    return "\n\n".join(parts)


def render(report: Dict[str, Any]) -> str:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/training_speed")
    parser.add_argument("--config", action="append", type=Path, help="repeatable; default: scierc.cfg and stock_ner_scierc.cfg")
    parser.add_argument("--stock-config", type=Path, default=Path("configs/stock_ner_scierc.cfg"),
                        help="the reference config every other is compared with, in the same run (default: stock spaCy NER)")
    parser.add_argument("--baseline-commit", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument(
        "--warm-epoch",
        action="append",
        type=Path,
        default=[],
        help="repeatable: run this config one whole epoch before timing (a frozen-feature cache then holds every "
        "document); the first epoch's time is reported",
    )
    parser.add_argument("--inference-model", type=Path, default=None)
    parser.add_argument("--inference-corpus", type=Path, default=Path("corpus/scierc/test.spacy"))
    parser.add_argument("--inference-docs", type=int, default=0)
    args = parser.parse_args(argv)
    configs = args.config or [Path("configs/scierc.cfg"), args.stock_config]
    report: Dict[str, Any] = {
        "command": "python " + shlex.join([os.path.relpath(__file__, ROOT)] + list(sys.argv[1:] if argv is None else argv)),
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k != "config"},
        "configs": [],
    }
    items = []
    for config in configs:
        reason = missing_inputs(ROOT / config)
        items.append({"config": str(config), "skipped": reason, "runs": [], "baseline_runs": []})
    workdir = Path(tempfile.mkdtemp(prefix="hmtl-speed-"))
    baseline = baseline_checkout(args.baseline_commit, workdir) if args.baseline_commit else None
    try:
        for round_i in range(args.rounds):
            order = items if round_i % 2 == 0 else items[::-1]
            for item in order:
                if item["skipped"]:
                    continue
                config = Path(item["config"])
                log(f"round {round_i + 1}/{args.rounds}: {config}")
                warm = 1 if config in args.warm_epoch else 0
                item["runs"].append(measure(config, args, warmup_epochs=warm))
                if baseline is not None and Path(config) != args.stock_config and (baseline / config).exists():
                    log(f"round {round_i + 1}/{args.rounds}: {config} at {args.baseline_commit}")
                    item["baseline_runs"].append(measure(baseline / config, args, pythonpath=baseline))
    finally:
        if baseline is not None:
            remove_checkout(baseline)
    stock_wps = None
    for item in items:
        for key in ("runs", "baseline_runs"):
            runs = item[key]
            if runs:
                summary = {
                    "first_epoch_seconds": statistics.median(r["warmup_seconds"] for r in runs) if runs[0].get("warmup_epochs") else None,
                    "words_per_second": round(statistics.median(r["words_per_second"] for r in runs), 1),
                    "seconds_per_step": round(statistics.median(r["seconds_per_step"] for r in runs), 4),
                    "words_per_round": runs[0]["words"],
                }
                if key == "runs":
                    item.update(summary)
                else:
                    item["baseline"] = summary
        if Path(item["config"]) == args.stock_config and item.get("words_per_second"):
            stock_wps = item["words_per_second"]
    for item in items:
        if item.get("baseline"):
            item["ratio_to_baseline"] = round(item["words_per_second"] / item["baseline"]["words_per_second"], 2)
        if stock_wps:
            if item.get("words_per_second"):
                item["ratio_to_stock_ner"] = round(item["words_per_second"] / stock_wps, 3)
            if item.get("baseline"):
                item["baseline"]["ratio_to_stock_ner"] = round(item["baseline"]["words_per_second"] / stock_wps, 3)
        if args.profile_steps and not item["skipped"] and Path(item["config"]) != args.stock_config:
            log(f"profiling {args.profile_steps} training steps of {item['config']}")
            warm = 1 if Path(item["config"]) in args.warm_epoch else 0
            item["profile"] = measure(Path(item["config"]), args, profile_steps=args.profile_steps, steps=1, warmup_epochs=warm)["profile"]
    report["configs"] = items
    if args.inference_model is not None:
        log(f"profiling inference of {args.inference_model}")
        report["inference_profile"] = profile_inference(args.inference_model, args.inference_corpus, args.inference_docs, args.threads)
    out = ROOT / args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf8")
    out.with_name(out.name + ".md").write_text(render(report), encoding="utf8")
    log(f"wrote {out}.md and {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
