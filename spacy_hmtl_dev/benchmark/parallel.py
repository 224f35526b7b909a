"""The benchmark's two-process measurement: ``annotate --n-process N`` and
``nlp.pipe(texts, n_process=N)`` against one process, words/s and the memory of the
whole process tree.

``measure_parallel`` starts, for each pipeline, a fresh process of this module
(``python -m spacy_hmtl_dev.benchmark.parallel MODEL TEXTS.json``) that loads the pipeline
once and, on each text set (the speed texts), for each way of running it:

* ``annotate``: ``batch_annotator.annotate_file`` on the loaded pipeline, from a JSONL
  file of the texts to a JSONL output, ``n_process`` 1 or N (what ``python -m spacy_hmtl
  annotate ... --n-process N`` runs once its model is loaded: reading, the pipeline,
  the JSON, writing; the workers are forked anew in every run, as in the command);
* ``pipe``: ``sum(len(doc) for doc in nlp.pipe(texts, batch_size=B, n_process=P))``;

times ``rounds`` rounds, each running one process and N processes back to back (one
process first in even rounds, N first in odd ones): per round the ratio N-process words/s /
one-process words/s (``rounds.ratio_summary``: median, min–max, interquartile range), and
the CPU seconds of each run, this process's and its reaped workers' (a figure that other
work on the machine disturbs far less than the wall time: N processes that add no work
spend the CPU time of one). The timed runs are not sampled; one more run of each is, every
20 ms, for the peak summed RSS and PSS of the process and its workers (each forked worker
shares the loaded pipeline with its parent until it writes to it: the RSS sum counts shared
pages once per process, the PSS sum once). The annotate outputs of one and N processes are
compared byte for byte.

The batch size of a text set is ``run_batch_size``: the benchmark's, made smaller where the
texts would make fewer than ``CHUNKS_PER_PROCESS`` batches per process (10 LitBank
documents are one batch of 64: one worker would do it all). Both runs of a round use it.
Batches are the unit of work a worker takes, so an input of only a few batches cannot keep
N processes busy, whatever runs them; the benchmark measures the throughput of a long
input, as a corpus to annotate is.

The child prints one JSON line. Torch threads: ``--threads`` in the one-process runs (the
benchmark's 1: one process on one core against N processes on N cores); a forked worker
always runs one (``spacy_hmtl.layers``).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..benchmarking import TreeMemorySampler
from .progress import log
from .rounds import ratio_summary, round_order
from .speed import set_threads

MODES = ("annotate", "pipe")
# Batches per process a text set is cut into at least (when it has the documents).
CHUNKS_PER_PROCESS = 4
MODE_LABELS = {"annotate": "annotate --n-process {n}", "pipe": "nlp.pipe(n_process={n})"}


@dataclass(frozen=True)
class ParallelSettings:
    """How each pipeline is measured (the child's options, under the same names).

    processes (int): N, the processes measured against one.
    rounds (int): alternating rounds.
    batch_size (int): ``nlp.pipe``'s and ``annotate``'s batch size, at most
        (``run_batch_size``).
    warmup_docs (int): docs piped once (one process) before timing.
    threads (int): torch (and BLAS) threads of the one-process runs; 0: leave the default.
    modes (str): comma-separated, of ``MODES``.
    """

    processes: int = 2
    rounds: int = 5
    batch_size: int = 64
    warmup_docs: int = 10
    threads: int = 1
    modes: str = "annotate,pipe"

    def mode_list(self) -> List[str]:
        """The modes, checked against ``MODES``."""
        modes = [m.strip() for m in self.modes.split(",") if m.strip()]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown modes {unknown}; known: {', '.join(MODES)}")
        return modes


def alternating_rounds(rounds: int, processes: int, run: Callable[[int, int], float]) -> Dict[int, List[float]]:
    """Seconds of one process and of ``processes`` processes in each round, timed back to
    back (``rounds.round_order``: one process first in even rounds).

    run (Callable[[int, int], float]): runs once with that many processes (the round's
    index second) and returns the seconds.
    RETURNS (Dict[int, List[float]]): processes -> seconds per round.
    """
    seconds: Dict[int, List[float]] = {1: [], processes: []}
    for r in range(rounds):
        for n in round_order(r, 1, processes):
            seconds[n].append(run(n, r))
    return seconds


def run_batch_size(n_docs: int, batch_size: int, processes: int) -> int:
    """The batch size of a text set of ``n_docs`` documents: ``batch_size``, or less, so
    that there are at least ``CHUNKS_PER_PROCESS`` batches per process where there are the
    documents for it (at least 1)."""
    return max(1, min(batch_size, n_docs // (CHUNKS_PER_PROCESS * processes)))


def cpu_seconds() -> Tuple[float, float]:
    """User + system CPU seconds so far of this process, and of its children that have
    exited and been waited for (``nlp.pipe`` and ``annotate`` join their workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def parallel_entry(
    seconds: Dict[int, List[float]], processes: int, n_words: int, cpu: Optional[Dict[int, List[Tuple[float, float]]]] = None
) -> Dict[str, Any]:
    """The report's entry of one (pipeline, text set, mode) from ``alternating_rounds``.

    seconds (Dict[int, List[float]]): processes (1 and N) -> wall seconds per round.
    processes (int): N.
    n_words (int): the words of one run.
    cpu (Optional[Dict[int, List[Tuple[float, float]]]]): processes -> (this process's, the
        workers') CPU seconds per round.
    RETURNS (Dict[str, Any]): for one process (``"1"``) and for N (``str(N)``): ``seconds``
        and ``words_per_s`` per round, ``median_wps`` and (with ``cpu``) ``cpu_parent_s``,
        ``cpu_workers_s`` per round and ``median_cpu_s_per_1k_words`` (both together);
        ``ratio``: ``rounds.ratio_summary`` of N-process / one-process words/s per round.
    """
    entry: Dict[str, Any] = {"n_words": n_words, "processes": processes}
    wps = {}
    for n in (1, processes):
        wps[n] = [n_words / s for s in seconds[n]]
        entry[str(n)] = {
            "seconds": [round(s, 4) for s in seconds[n]],
            "words_per_s": [round(w, 1) for w in wps[n]],
            "median_wps": round(statistics.median(wps[n]), 1),
        }
        if cpu is not None:
            entry[str(n)]["cpu_parent_s"] = [round(own, 3) for own, _ in cpu[n]]
            entry[str(n)]["cpu_workers_s"] = [round(workers, 3) for _, workers in cpu[n]]
            per_1k = [1000 * (own + workers) / n_words for own, workers in cpu[n]]
            entry[str(n)]["median_cpu_s_per_1k_words"] = round(statistics.median(per_1k), 4)
    entry["ratio"] = ratio_summary(wps[processes], wps[1])
    return entry


def write_jsonl_input(texts: List[str], path: Path) -> Path:
    """The texts as ``annotate``'s JSONL input (ids 0, 1, ...)."""
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8")
    return path


def measure_model(model: str, texts: Dict[str, Dict[str, Any]], settings: ParallelSettings, workdir: Path) -> Dict[str, Any]:
    """The child's measurement of one pipeline (see the module docstring).

    model (str): the pipeline (package name or directory).
    texts (Dict[str, Dict[str, Any]]): text set -> ``texts`` and ``n_words`` (``speed.load_texts``).
    settings (ParallelSettings): the measurement's options.
    workdir (Path): where the JSONL inputs and outputs go.
    RETURNS (Dict[str, Any]): ``texts``: text set -> mode -> ``parallel_entry`` with
        ``memory`` (processes -> peak summed RSS / PSS in MB) and, for annotate,
        ``same_output``.
    """
    set_threads(settings.threads)
    import spacy

    load_start = time.perf_counter()
    nlp = spacy.load(model)
    result: Dict[str, Any] = {"model": model, "load_s": round(time.perf_counter() - load_start, 2), "texts": {}}
    for text_set, info in texts.items():
        source = write_jsonl_input(info["texts"], workdir / f"{text_set}.jsonl")
        for _ in nlp.pipe(info["texts"][: settings.warmup_docs], batch_size=settings.batch_size):
            pass
        result["texts"][text_set] = {
            mode: measure_mode(nlp, mode, text_set, info, source, settings, workdir) for mode in settings.mode_list()
        }
    return result


def measure_mode(
    nlp: Any, mode: str, text_set: str, info: Dict[str, Any], source: Path, settings: ParallelSettings, workdir: Path
) -> Dict[str, Any]:
    """One way of running the pipeline (``MODES``) on one text set: the timed rounds, the
    memory runs and (annotate) whether one and N processes wrote the same.

    nlp (Language): the loaded pipeline.
    info (Dict[str, Any]): the text set's ``texts`` and ``n_words``.
    source (Path): the texts as ``annotate``'s JSONL input (``write_jsonl_input``).
    RETURNS (Dict[str, Any]): ``parallel_entry`` with ``memory`` (and ``same_output``).
    """
    from spacy_hmtl.annotate_options import AnnotateOptions
    from spacy_hmtl.batch_annotator import annotate_file

    n = settings.processes
    batch_size = run_batch_size(len(info["texts"]), settings.batch_size, n)
    cpu: Dict[int, List[Tuple[float, float]]] = {1: [], n: []}

    def run_once(processes: int, round_index: int = -1) -> float:
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        if mode == "annotate":
            options = AnnotateOptions(
                n_process=processes, batch_size=batch_size, overwrite=True, show_progress=False, report_errors=False
            )
            annotate_file(nlp, source, workdir / f"{text_set}_{processes}.jsonl", options)
        else:
            for _ in nlp.pipe(info["texts"], batch_size=batch_size, n_process=processes):
                pass
        seconds = time.perf_counter() - start
        if round_index >= 0:  # a timed run (not a memory run: its sampler thread costs CPU time)
            cpu_end = cpu_seconds()
            cpu[processes].append((cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]))
            log(f"parallel: {text_set} {mode} round {round_index + 1}/{settings.rounds}, "
                f"{processes} process(es): {info['n_words'] / seconds:,.0f} words/s")  # fmt: skip
        return seconds

    entry = parallel_entry(alternating_rounds(settings.rounds, n, run_once), n, info["n_words"], cpu)
    entry["batch_size"] = batch_size
    entry["memory"] = {}
    for processes in (1, n):
        with TreeMemorySampler() as sampler:
            run_once(processes)
        entry["memory"][str(processes)] = {
            "peak_rss_sum_mb": round(sampler.peak_rss_mb, 1),
            "peak_pss_sum_mb": None if sampler.peak_pss_mb is None else round(sampler.peak_pss_mb, 1),
            "max_processes": sampler.max_processes,
            "before_rss_mb": round(sampler.start_rss_mb, 1),
        }
    if mode == "annotate":
        one, many = (workdir / f"{text_set}_{p}.jsonl" for p in (1, n))
        entry["same_output"] = one.read_bytes() == many.read_bytes()
    ratio = entry["ratio"]
    log(f"parallel: {text_set} {mode}: x{ratio['median']} ({ratio['min']}–{ratio['max']}) with {n} processes")
    return entry


def measure_parallel(
    targets: Dict[str, str],
    texts: Dict[str, Dict[str, Any]],
    settings: ParallelSettings,
    *,
    pipe_only: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """The benchmark's "two processes" section: one fresh process of this module per
    pipeline (a process tree of its own, the vectors loaded once in it).

    targets (Dict[str, str]): key -> pipeline (package name or directory).
    texts (Dict[str, Dict[str, Any]]): ``speed.load_texts``'s.
    settings (ParallelSettings): the measurement's options.
    pipe_only (Optional[List[str]]): keys measured with ``nlp.pipe`` only (the stock
        pipeline: ``annotate`` is for HMTL pipelines).
    RETURNS (Dict[str, Any]): ``settings`` and ``pipelines``: key -> ``measure_model``'s
        result, or ``{"error": ...}``.
    """
    out: Dict[str, Any] = {"settings": asdict(settings), "pipelines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf8")
        for key, target in targets.items():
            modes = "pipe" if key in (pipe_only or []) else settings.modes
            log(f"parallel: fresh process for {key} ({modes}, {settings.processes} processes against 1)")
            cmd = [sys.executable, "-m", "spacy_hmtl_dev.benchmark.parallel", target, str(texts_file)]
            for name, value in asdict(settings).items():
                cmd += [f"--{name.replace('_', '-')}", str(modes if name == "modes" else value)]
            # stderr (the progress) passes through; stdout ends with the JSON line
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            lines = proc.stdout.strip().splitlines()
            if proc.returncode != 0 or not lines:
                out["pipelines"][key] = {"error": f"exit status {proc.returncode}"}
                continue
            out["pipelines"][key] = json.loads(lines[-1])
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a pipeline: package name or directory")
    parser.add_argument("texts_file", help="JSON: text set -> {texts, n_words} (speed.load_texts)")
    defaults = ParallelSettings()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    settings = ParallelSettings(**{name: getattr(args, name) for name in asdict(defaults)})
    texts = json.loads(Path(args.texts_file).read_text(encoding="utf8"))
    with tempfile.TemporaryDirectory() as workdir:
        result = measure_model(args.model, texts, settings, Path(workdir))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
