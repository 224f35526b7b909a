"""Time and peak memory of the full four-head HMTL pipeline as the document grows
(``scripts/scaling_benchmark.py``, which says what is measured and how).

Each (size, mode) runs in a fresh process (``python -m spacy_hmtl_dev.scaling``, this
module), so peak RSS (``VmHWM``, reset at exec: see ``benchmarking``) is per run; within it
every pipe is timed separately and the RSS is sampled every 2 ms while it runs.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from spacy_hmtl.doc_json import doc_keys
from spacy_hmtl.tasks import registered_tasks

from .benchmarking import RSSSampler, cpu_model, current_rss_mb, md_table, peak_rss_mb, time_pipes
from .paths import ROOT

# The encoder and every registered head: configs/scierc.cfg names each pipe after its factory.
PIPES = ["hmtl_encoder"] + [task.factory for task in registered_tasks()]
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
    """A document of ``n_tokens`` tokens of real sentences, with or without its sentence
    boundaries."""
    from spacy.tokens import Doc

    words: List[str] = []
    starts: List[Any] = []  # sentence starts: bool per token
    pool = real_sentences(vocab)
    i = 0
    while len(words) < n_tokens:
        sent = pool[i % len(pool)]
        words.extend(sent)
        starts.extend([True] + [False] * (len(sent) - 1))
        i += 1
    return Doc(vocab, words=words[:n_tokens], sent_starts=starts[:n_tokens] if sentences else None)


def build_nlp(config_path: Path):
    """The pipeline of ``config_path`` with untrained weights, initialized on one small
    annotated document (seed 0: the same weights, so the same output counts, in every run)."""
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
    """One (size, mode) run, in this process (a fresh one: ``run_scaling`` starts it): the
    time and extra RSS of each pipe on one document, the process's peak RSS, the counts."""
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
        "outputs": layer_counts(doc),
    }


def layer_counts(doc) -> Dict[str, Optional[int]]:
    """Each registered task's layer -> how many items the pipeline predicted (spans,
    relations, clusters; a layer that is not a list counts 1), None when it wrote none."""
    counts: Dict[str, Optional[int]] = {}
    for task in registered_tasks():
        value = task.to_json(doc, task.key(doc_keys()))
        counts[task.layer] = None if value is None else len(value) if isinstance(value, list) else 1
    return counts


def outputs_cell(outputs: Dict[str, Any]) -> str:
    """The counts of ``layer_counts``, in task order ("–" for a layer without a count)."""
    return " / ".join("–" if outputs.get(task.layer) is None else str(outputs[task.layer]) for task in registered_tasks())


def pipe_cell(timing: Optional[Dict[str, Any]]) -> str:
    """``seconds (+extra MB)`` of one pipe; "–" for a pipe the pipeline does not have (e.g. the
    LitBank pipeline has no relation head)."""
    return "–" if timing is None else f"{timing['seconds']:.2f} (+{timing['extra_rss_mb']})"


def write_report(results: list, info: dict, command: str, out_dir: Path, model: Optional[Path] = None) -> None:
    """``OUT_DIR/scaling.json`` and ``OUT_DIR/scaling.md`` of the runs so far."""
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
        + [" / ".join(task.layer for task in registered_tasks())]
    )
    rows = []
    for r in results:
        # cells as strings: md_table would put thousands separators into ints
        sentences = "yes" if r["sentences"] else "no"
        if "error" in r:
            rows.append([str(r["tokens"]), sentences, r["error"]] + [""] * (len(headers) - 3))
            continue
        rows.append(
            [str(r["tokens"]), sentences, f"{r['total_seconds']:.2f}", str(r["tokens_per_second"]), str(r["peak_rss_mb"])]
            + [pipe_cell(r["per_pipe"].get(p)) for p in PIPES]
            + [outputs_cell(r["outputs"])]
        )
    lines.append(md_table(headers, rows))
    (out_dir / "scaling.md").write_text("\n".join(lines) + "\n", encoding="utf8")


def run_scaling(
    sizes: Sequence[int],
    modes: Sequence[str],
    *,
    threads: int,
    config: Path,
    timeout: int,
    output: Path,
    model: Optional[Path],
    command: str,
) -> List[Dict[str, Any]]:
    """Every (size, mode) run, each in a fresh process, the report rewritten after each (so
    that a run that times out keeps the results before it).

    sizes (Sequence[int]): document sizes in tokens.
    modes (Sequence[str]): "sentences" (boundaries set) and/or "nosentences" (one long one).
    threads (int): torch threads of the runs.
    config (Path): the config of the untrained pipeline.
    timeout (int): seconds per run.
    output (Path): the directory of ``scaling.json`` and ``scaling.md``.
    model (Optional[Path]): a trained pipeline instead of untrained weights.
    command (str): the command line, as the report shows it.
    RETURNS (List[Dict[str, Any]]): the runs' results (or errors), in order.
    """
    info = machine_record(threads)
    results = []
    for n in sizes:
        for mode in modes:
            cmd = [sys.executable, "-m", "spacy_hmtl_dev.scaling", str(n), "--threads", str(threads), "--config", str(config)]
            if mode == "sentences":
                cmd.append("--sentences")
            if model:
                cmd += ["--model", str(model)]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    result = {"tokens": n, "sentences": mode == "sentences", "error": f"exit {proc.returncode}: {tail[:200]}"}
                else:
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                result = {"tokens": n, "sentences": mode == "sentences", "error": f"timeout after {timeout} s"}
            results.append(result)
            print(json.dumps(result), flush=True)
            write_report(results, info, command, output, model)  # keep partial results
    return results


def main(argv: Optional[List[str]] = None) -> int:
    """One run (``run_scaling``'s child): prints its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tokens", type=int, help="the document's size")
    parser.add_argument("--sentences", action="store_true", help="set the sentence boundaries")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "scierc.cfg")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(run_single(args.tokens, args.sentences, args.threads, args.config, args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
