"""Measuring helpers shared by the measurements of this package (the benchmark, the
training profiler ``throughput``, the scaling benchmark, ...): the machine a figure was
measured on, a process's peak memory, the time of each pipe, and the markdown tables and
learning-curve plots of the reports.

Memory, one measure: ``peak_rss_mb`` is the peak resident set of *this process image*,
``VmHWM`` in ``/proc/self/status``. The kernel resets it at ``exec``, so a fresh process
started to measure one run (the benchmark's ``rss_probe``, the scaling benchmark's runs)
reports its own peak only. ``ru_maxrss`` does not reset: a child started by fork (or
vfork) + exec starts from its parent's RSS, so it reports at least the parent's size. It is
used only where nothing else is available: for a child measured from outside after it has
exited (``timed``: ``RUSAGE_CHILDREN``, the largest child, not a sum) and as the
fallback where there is no ``/proc``. ``RSSSampler`` gives the peak *within a block* (e.g.
one pipe), which the high-water mark cannot.

Importing this module imports neither spaCy nor ``spacy_hmtl`` and does not import torch
itself (``gpu_info`` does, when a GPU driver is present, and ``time_pipes`` is given a
loaded pipeline). A process measuring its children's ``ru_maxrss`` still calls
``machine_info`` only after they exit (see ``timed``).
"""
import os
import platform
import resource
import sys
import threading
import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, Iterable, List, Optional, Sequence, Tuple

# ru_maxrss unit: KiB on Linux, bytes on macOS
_MAXRSS_PER_MB = 2**20 if sys.platform == "darwin" else 2**10


# --- machine ----------------------------------------------------------------------------


def cpu_model() -> Optional[str]:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` where there is none,
    e.g. macOS; None when neither names it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                key, _, value = line.partition(":")
                # x86: "model name"; some ARM boards: "Model"; MIPS: "cpu model"
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` without it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_info(import_torch: bool = True) -> Optional[List[str]]:
    """Names of the CUDA devices torch sees; None without torch or without CUDA.

    import_torch (bool): False: only report when torch is already imported (cheap).
    """
    if not import_torch and "torch" not in sys.modules:
        return None
    if "torch" not in sys.modules and not any(
        os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")
    ):
        return None  # no NVIDIA / ROCm driver: torch could not see a GPU; skip its slow import
    try:
        import torch
    except Exception:
        return None
    try:
        if not torch.cuda.is_available():
            return None
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return None


def machine_info(import_torch: bool = True) -> Dict[str, Any]:
    """The machine of a measurement, as the scripts record it in their JSON.

    import_torch (bool): passed to ``gpu_info``.
    RETURNS (Dict[str, Any]): ``cpu_model``, ``logical_cores``, ``usable_cores``, ``gpu``
        (device names or None), ``hostname``, ``platform``, ``python``.
    """
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpu": gpu_info(import_torch),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def machine_line() -> str:
    """The machine in one line: CPU model, logical cores and Python version."""
    return f"{cpu_model() or ''}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


# --- memory -----------------------------------------------------------------------------


def ru_maxrss_mb(usage: resource.struct_rusage) -> float:
    """``usage.ru_maxrss`` in MB, whatever the platform's unit. See the module docstring for
    why it is only the fallback."""
    return usage.ru_maxrss / _MAXRSS_PER_MB


def peak_rss_mb() -> float:
    """Peak RSS of this process image since its ``exec``, in MB: ``VmHWM`` from
    /proc/self/status (``ru_maxrss`` of this process where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="utf8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mb(resource.getrusage(resource.RUSAGE_SELF))


def current_rss_mb() -> float:
    """The resident set of this process now, in MB (/proc/self/statm; Linux only)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RSSSampler:
    """Peak of the current RSS while the block runs, sampled every 2 ms by a thread.

    ``start``: the RSS when the block began; ``peak``: the largest RSS seen (MB). A spike
    shorter than the interval can be missed.
    """

    def __enter__(self) -> "RSSSampler":
        self.peak = self.start = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb())
            time.sleep(0.002)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mb())


def process_tree(root: int) -> List[int]:
    """``root`` and its live descendants, from /proc (Linux; ``[root]`` elsewhere)."""
    parents: Dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [root]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        if fields[0] not in ("Z", "X"):
            parents[int(entry)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def process_memory_mb(pid: int) -> Tuple[float, Optional[float]]:
    """The resident set of process ``pid`` now and its proportional set size (PSS: each
    page shared by k processes counted 1/k; None where ``smaps_rollup`` is missing), in MB;
    (0, 0) for a process that is gone.

    Forked workers share their parent's pages (the loaded pipeline, the vectors) until
    they write them: the sum of the RSS of a process tree counts those pages once per
    process, the sum of the PSS once in all.
    """
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0, 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf8") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return rss, int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, None


def tree_memory_mb(root: Optional[int] = None) -> Dict[str, Any]:
    """The summed memory of ``root`` (default: this process) and its descendants now:
    ``rss_mb``, ``pss_mb`` (None where PSS cannot be read) and ``processes``."""
    pids = process_tree(os.getpid() if root is None else root)
    sizes = [process_memory_mb(pid) for pid in pids]
    pss = [p for _, p in sizes]
    return {
        "rss_mb": sum(r for r, _ in sizes),
        "pss_mb": None if any(p is None for p in pss) else sum(p for p in pss if p is not None),
        "processes": len(pids),
    }


class TreeMemorySampler:
    """Peaks of the summed memory of a process tree (``tree_memory_mb``) while the block
    runs, sampled every ``interval`` seconds by a thread: ``peak_rss_mb``, ``peak_pss_mb``
    (None without PSS), ``max_processes``; ``start_rss_mb`` when the block began. Each
    sample reads /proc for every process: keep it out of timed runs.
    """

    def __init__(self, root: Optional[int] = None, interval: float = 0.02):
        self.root = os.getpid() if root is None else root
        self.interval = interval

    def __enter__(self) -> "TreeMemorySampler":
        first = tree_memory_mb(self.root)
        self.start_rss_mb = self.peak_rss_mb = first["rss_mb"]
        self.peak_pss_mb = first["pss_mb"]
        self.max_processes = first["processes"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        now = tree_memory_mb(self.root)
        self.peak_rss_mb = max(self.peak_rss_mb, now["rss_mb"])
        if now["pss_mb"] is not None and self.peak_pss_mb is not None:
            self.peak_pss_mb = max(self.peak_pss_mb, now["pss_mb"])
        self.max_processes = max(self.max_processes, now["processes"])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --- time -------------------------------------------------------------------------------


def time_pipes(
    nlp: Any,
    docs: List[Any],
    *,
    batch_size: Optional[int] = None,
    around: Optional[Callable[[str], ContextManager[Any]]] = None,
) -> Tuple[List[Any], Dict[str, float]]:
    """Run the docs through the pipeline one pipe after the other, timing each pipe over
    all of them (the tokenizer is not run: pass tokenized docs).

    nlp (Language): the pipeline.
    docs (List[Doc]): the docs, already tokenized.
    batch_size (Optional[int]): through each pipe's ``pipe`` in batches of this size; None
        (or a pipe without ``pipe``, e.g. a function component): one ``pipe(doc)`` call per doc.
    around (Optional[Callable[[str], ContextManager]]): called with each pipe's name; the
        context it returns encloses that pipe's timed run (e.g. an ``RSSSampler``).
    RETURNS (Tuple[List[Doc], Dict[str, float]]): the annotated docs, and seconds per pipe
        name in pipeline order.
    """
    seconds: Dict[str, float] = {}
    for name, proc in nlp.pipeline:
        with around(name) if around is not None else nullcontext():
            start = time.perf_counter()
            if batch_size is not None and hasattr(proc, "pipe"):
                docs = list(proc.pipe(docs, batch_size=batch_size))
            else:
                docs = [proc(doc) for doc in docs]
            seconds[name] = time.perf_counter() - start
    return docs, seconds


# --- markdown ---------------------------------------------------------------------------


def format_cell(value: Any, digits: int = 1) -> str:
    """A table cell: ``–`` for None, floats with ``digits`` decimals and ints with thousands
    separators, anything else as ``str``."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: Any = 1) -> str:
    """A markdown table (no trailing newline); cells as ``format_cell`` writes them.

    digits (Union[int, Sequence[int]]): decimals of the floats, one for every column or one
        per column.
    """
    per_column = list(digits) if isinstance(digits, (list, tuple)) else [digits] * len(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(c, d) for c, d in zip(row, per_column)) + " |")
    return "\n".join(lines)


# --- learning-curve plots -------------------------------------------------------------

# (step, wall seconds or None, dev score in %) of one evaluation
CurvePoint = Tuple[float, Optional[float], float]


def plot_dev_curves(
    curves: Dict[str, Dict[str, List[CurvePoint]]],
    panels: Sequence[Tuple[str, str]],
    output: Any,
    *,
    line_order: Optional[Sequence[str]] = None,
    line_style: Callable[[str], str] = lambda name: "-",
) -> List[str]:
    """Write ``OUTPUT_dev_steps.png`` and ``OUTPUT_dev_time.png``: one panel per task, dev
    score against training steps and against wall time, one line per configuration.

    curves (Dict[str, Dict[str, List[CurvePoint]]]): line name -> panel key -> points.
    panels (Sequence[Tuple[str, str]]): (panel key, title) in panel order; panels without
        any points are left out.
    output (Path): the path stem of the two files.
    line_order (Optional[Sequence[str]]): every possible line name, so that a line keeps
        its colour when others are missing (default: the order of ``curves``).
    line_style (Callable[[str], str]): matplotlib line style of a line name.
    RETURNS (List[str]): the files written; [] without matplotlib (the ``plots`` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install spacy-hmtl[plots]): no plots", file=sys.stderr)
        return []
    order = list(line_order) if line_order is not None else list(curves)
    names = [name for name in order if name in curves]
    shown = [(key, title) for key, title in panels if any(curves[n].get(key) for n in names)]
    if not shown:
        return []
    written = []
    for axis, index, xlabel in (("steps", 0, "training step"), ("time", 1, "wall time (s)")):
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
        handles: Dict[str, Any] = {}
        for ax, (key, title) in zip(axes[0], shown):
            for name in names:
                points = [p for p in curves[name].get(key, []) if p[index] is not None]
                if points:
                    color = plt.get_cmap("tab10")(order.index(name) % 10)
                    (line,) = ax.plot([p[index] for p in points], [p[2] for p in points], line_style(name),
                                      color=color, label=name, linewidth=1.4)
                    handles.setdefault(name, line)
            ax.set_title(f"{title} (dev)")
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("F1 (%)")
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 10) or 1, frameon=False)
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        path = f"{output}_dev_{axis}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
