"""Time and peak memory of the full four-head HMTL pipeline as the document grows.

The pipeline is ``configs/scierc.cfg`` (default head sizes), initialized on one small
annotated document (untrained weights: timings do not depend on training, but the number
of predicted entities, and so of relation candidates, does; relation pairs are capped by
``max_pairs``). Documents are synthetic: real SciERC dev sentences repeated up to the
size, once with the sentence boundaries set and once without (one long "sentence": the
worst case for the span-based heads, whose candidates never cross a sentence).

Each (size, mode) runs in a fresh process, so peak RSS (``VmHWM``, reset at exec: see
``spacy_hmtl.benchmarking``) is per run; within it every pipe is timed separately and the
RSS is sampled every 2 ms while it runs.

    python scripts/scaling_benchmark.py --sizes 1000 5000 20000 50000 --threads 1

writes ``benchmarks/scaling.json`` and ``benchmarks/scaling.md``.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

from spacy_hmtl.benchmarking import RSSSampler, cpu_model, current_rss_mb, md_table, peak_rss_mb, time_pipes

ROOT = Path(__file__).resolve().parent.parent
PIPES = ["hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
FALLBACK_SENTENCES = [
    "We apply a neural parser to the Penn Treebank .",
    "The parser improves accuracy on long sentences .",
    "It outperforms the baseline by a large margin .",
]


def machine_record(threads: int) -> dict:
    """The machine and versions of the run, as ``scaling.json`` records them."""
    import spacy
    import torch

    return {
        "cpu": cpu_model() or "unknown",
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "spacy": spacy.__version__,
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def real_sentences(vocab):
    """Token lists of real sentences (SciERC dev), or a few built-in ones."""
    from spacy.tokens import DocBin

    path = ROOT / "corpus" / "scierc" / "dev.spacy"
    sentences = []
    if path.exists():
        for doc in DocBin().from_disk(path).get_docs(vocab):
            if doc.has_annotation("SENT_START"):
                sentences.extend([t.text for t in sent] for sent in doc.sents)
            if len(sentences) >= 200:
                break
    return sentences or [s.split() for s in FALLBACK_SENTENCES]


def make_doc(vocab, n_tokens: int, sentences: bool):
    from spacy.tokens import Doc

    words, starts = [], []
    pool = real_sentences(vocab)
    i = 0
    while len(words) < n_tokens:
        sent = pool[i % len(pool)]
        words.extend(sent)
        starts.extend([True] + [False] * (len(sent) - 1))
        i += 1
    return Doc(vocab, words=words[:n_tokens], sent_starts=starts[:n_tokens] if sentences else None)


def build_nlp(config_path: Path):
    import spacy
    from spacy.tokens import Doc, Span
    from spacy.training import Example

    from spacy_hmtl.annotations import set_coref_clusters, set_relation_records

    spacy.util.fix_random_seed(0)  # same untrained weights, so same output counts, in every run
    config = spacy.util.load_config(config_path)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    words = "We apply a neural parser to the Penn Treebank . The parser improves accuracy .".split()
    ref = Doc(nlp.vocab, words=words, sent_starts=[1] + [0] * 9 + [1] + [0] * 4)
    ref.ents = [Span(ref, 3, 5, "Method"), Span(ref, 7, 9, "Material"), Span(ref, 13, 14, "Metric")]
    ref.spans["mentions"] = [Span(ref, 0, 1, "PRON"), Span(ref, 3, 5, "NOM"), Span(ref, 7, 9, "PROP")]
    set_relation_records(ref, [[3, 5, 7, 9, "USED-FOR", 1.0], [13, 14, 3, 5, "EVALUATE-FOR", 1.0]])
    set_coref_clusters(ref, [[(2, 5), (10, 12)]], span_groups=False)
    pred = Doc(nlp.vocab, words=words)
    nlp.initialize(lambda: [Example(pred, ref)])
    return nlp


def run_single(n_tokens: int, sentences: bool, threads: int, config_path: Path, model: Optional[Path] = None) -> dict:
    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.load(model) if model else build_nlp(config_path)
    doc = make_doc(nlp.vocab, n_tokens, sentences)
    nlp(make_doc(nlp.vocab, 50, sentences))  # warm-up (lazy allocations, first torch calls)
    rss_before = current_rss_mb()
    samplers: Dict[str, RSSSampler] = {}

    def sample(name: str) -> RSSSampler:
        samplers[name] = RSSSampler()
        return samplers[name]

    total_start = time.perf_counter()
    (doc,), seconds = time_pipes(nlp, [doc], around=sample)  # one doc, one call per pipe
    total = time.perf_counter() - total_start
    per_pipe = {
        name: {"seconds": round(t, 3), "peak_rss_mb": round(samplers[name].peak), "extra_rss_mb": round(samplers[name].peak - samplers[name].start)}
        for name, t in seconds.items()
    }
    return {
        "tokens": len(doc),
        "sentences": sentences,
        "n_sentences": len(list(doc.sents)) if sentences else 1,
        "total_seconds": round(total, 3),
        "tokens_per_second": round(len(doc) / total),
        "rss_before_mb": round(rss_before),
        "peak_rss_mb": round(peak_rss_mb()),
        "per_pipe": per_pipe,
        "outputs": {
            "ents": len(doc.ents),
            "mentions": len(doc.spans["mentions"]),
            "relations": len(doc._.hmtl_relations_data or []),
            "coref_clusters": len(doc._.coref_clusters or []),
        },
    }


def pipe_cell(timing: Optional[Dict[str, Any]]) -> str:
    """``seconds (+extra MB)`` of one pipe; "–" for a pipe the pipeline does not have (e.g. the
    LitBank pipeline has no relation head)."""
    return "–" if timing is None else f"{timing['seconds']:.2f} (+{timing['extra_rss_mb']})"


def write_report(results: list, info: dict, command: str, out_dir: Path, model: Optional[Path] = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scaling.json").write_text(
        json.dumps({"command": command, "machine": info, "results": results}, indent=2) + "\n", encoding="utf8"
    )
    lines = [
        "# Scaling of the four-head pipeline (inference, one document)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared with other jobs; load average at start "
        f"{info['load_average_at_start']}), torch {info['torch']} with {info['torch_threads']} thread(s), "
        f"spaCy {info['spacy']}, Python {info['python']}.",
        "",
        (f"Pipeline: the trained pipeline `{model}` (its vectors included). " if model else
         "Pipeline: `configs/scierc.cfg` (default sizes), untrained weights (initialized on one doc). ")
        +
        "Text: SciERC dev sentences repeated. Each row is a fresh process; peak RSS is the process "
        "maximum (`VmHWM`), per-pipe extra RSS is sampled every 2 ms above the RSS at the pipe's start.",
        "",
    ]
    headers = (
        ["tokens", "sentences", "total s", "tok/s", "peak RSS MB"]
        + [f"{p.replace('hmtl_', '')} s (+MB)" for p in PIPES]
        + ["ents / mentions / rels / clusters"]
    )
    rows = []
    for r in results:
        # cells as strings: md_table would put thousands separators into ints
        sentences = "yes" if r["sentences"] else "no"
        if "error" in r:
            rows.append([str(r["tokens"]), sentences, r["error"]] + [""] * (len(headers) - 3))
            continue
        o = r["outputs"]
        rows.append(
            [str(r["tokens"]), sentences, f"{r['total_seconds']:.2f}", str(r["tokens_per_second"]), str(r["peak_rss_mb"])]
            + [pipe_cell(r["per_pipe"].get(p)) for p in PIPES]
            + [f"{o['ents']} / {o['mentions']} / {o['relations']} / {o['coref_clusters']}"]
        )
    lines.append(md_table(headers, rows))
    (out_dir / "scaling.md").write_text("\n".join(lines) + "\n", encoding="utf8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    parser.add_argument("--modes", nargs="+", choices=["sentences", "nosentences"], default=["sentences", "nosentences"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "scierc.cfg")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per (size, mode) run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--model", type=Path, default=None, help="a trained pipeline instead of untrained weights")
    parser.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sentences", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single is not None:
        print(json.dumps(run_single(args.single, args.sentences, args.threads, args.config, args.model)))
        return
    command = "python scripts/scaling_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = machine_record(args.threads)
    results = []
    for n in args.sizes:
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--single", str(n), "--threads", str(args.threads), "--config", str(args.config)]
            if mode == "sentences":
                cmd.append("--sentences")
            if args.model:
                cmd += ["--model", str(args.model)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    result = {"tokens": n, "sentences": mode == "sentences", "error": f"exit {proc.returncode}: {tail[:200]}"}
                else:
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                result = {"tokens": n, "sentences": mode == "sentences", "error": f"timeout after {args.timeout} s"}
            results.append(result)
            print(json.dumps(result), flush=True)
            write_report(results, info, command, args.output, args.model)  # keep partial results


if __name__ == "__main__":
    main()
