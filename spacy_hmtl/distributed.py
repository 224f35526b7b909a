"""Distributed batch annotation on Dask (``pip install spacy-hmtl[distributed]``).

``python -m spacy_hmtl annotate MODEL INPUT OUTPUT --dask-scheduler tcp://host:8786`` (an
existing cluster) or ``--dask-local-workers 4`` (a local cluster of worker processes)
writes the same JSONL as the single-process path, in the same order, with the same
resume rules: this module only replaces ``nlp.pipe`` by tasks; reading, validating,
resuming and writing are ``spacy_hmtl.batch_annotator``'s.

Why Dask rather than Ray: ``dask[distributed]`` is a small pure-Python install that runs
on any scheduler people already have (a laptop, SSH hosts, Slurm/PBS through
dask-jobqueue, Kubernetes), starts a local cluster in seconds (cheap to test), and needs
nothing but futures here. Ray brings large platform-specific wheels and its own object
store and runtime, none of which a stateless map over documents needs.

How it works:

* The pipeline is loaded once per worker process and cached (``get_pipeline``); a worker
  plugin loads it when the worker joins, so the first tasks do not all wait for it.
  MODEL must be loadable on every worker (a package installed there, or a path on a
  shared filesystem; a local directory is passed as an absolute path).
* The pending documents are cut into partitions of ``partition_size`` documents (a
  multiple of the batch size, so every ``nlp.pipe`` batch holds the same documents as in
  the single-process run), each a task returning its JSONL lines. At most
  ``max_in_flight`` partitions are submitted at once (bounded memory), and the results are
  written in submission order, one flushed write per partition.
* A record the pipeline fails on comes back as a ``RecordError`` (``pipe_to_lines``
  retries a failing batch record by record on the worker), so bad records follow
  ``--on-error`` exactly as in the single-process run.
"""
import logging
import math
import os
import threading
from collections import deque
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple, Union

from spacy.language import Language

from .annotate_options import AnnotateOptions, resolve_options
from .annotate_records import AnnotateError, DocId
from .batch_annotator import AnnotateSummary, Result, Runner, annotate_file, batched, pipe_to_lines
from .pipeline_loading import load_pipeline

try:  # the plugin must subclass dask's WorkerPlugin; this module imports without dask
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover
    _WorkerPlugin = object  # type: ignore[misc,assignment]

PLUGIN_NAME = "spacy-hmtl-pipeline"

_PIPELINES: Dict[Tuple[str, int], Language] = {}
_PIPELINE_LOCKS: Dict[Tuple[str, int], threading.Lock] = {}
_CACHE_LOCK = threading.Lock()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "distributed annotation needs dask.distributed: pip install 'spacy-hmtl[distributed]'"
        ) from None
    return distributed


def get_pipeline(model: str, gpu_id: int = -1) -> Tuple[Language, threading.Lock]:
    """The pipeline for ``model``, loaded at most once per process, and its lock.

    Tasks of one worker running in several threads share the pipeline and take turns
    (the lock): run workers with one thread each and let torch use the cores.
    """
    key = (model, gpu_id)
    with _CACHE_LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = load_pipeline(model, gpu_id=gpu_id)
            _PIPELINE_LOCKS[key] = threading.Lock()
        return _PIPELINES[key], _PIPELINE_LOCKS[key]


class PipelinePlugin(_WorkerPlugin):
    """Dask worker plugin: loads the pipeline when a worker starts (and sets torch threads)."""

    name = PLUGIN_NAME

    def __init__(self, model: str, gpu_id: int = -1, torch_threads: Optional[int] = None):
        self.model = model
        self.gpu_id = gpu_id
        self.torch_threads = torch_threads

    def setup(self, worker: Any = None) -> None:
        """Set torch's threads and load the pipeline (dask calls it when a worker joins)."""
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        get_pipeline(self.model, self.gpu_id)

    def teardown(self, worker: Any = None) -> None:
        pass


def annotate_partition(model: str, records: List[Tuple[DocId, str]], options: AnnotateOptions) -> List[Result]:
    """The task: annotate ``(id, text)`` pairs on a worker (``options``: the run's, its
    ``gpu_id``, ``batch_size`` and line settings), return one result per record (its JSONL
    line, or a ``RecordError``)."""
    nlp, lock = get_pipeline(model, options.gpu_id)
    with lock:
        return list(pipe_to_lines(nlp, records, options, n_process=1))


def _model_ref(model: Union[str, Path]) -> str:
    """MODEL as the workers load it: a local path made absolute, a name as it is."""
    if isinstance(model, Language):
        raise AnnotateError("distributed annotation loads the pipeline on the workers: pass a name or a path")
    path = Path(model)
    # A directory here is most likely the same path on the workers (local cluster, shared FS).
    return str(path.resolve()) if path.exists() else str(model)


def dask_runner(
    client: Any,
    model: str,
    options: AnnotateOptions,
    *,
    partition_size: int,
    max_in_flight: Optional[int] = None,
) -> Runner:
    """A runner for ``annotate_file``: pending ``(id, text)`` pairs -> lists of results
    (one list per partition, in order), computed by ``client``'s workers.

    client: a ``distributed.Client`` whose workers have the ``PipelinePlugin``.
    model: the pipeline name or path, as the workers load it.
    options: the run's options, sent with each task (``batch_size``: documents per
        ``nlp.pipe`` batch on a worker).
    partition_size: documents per task.
    max_in_flight: tasks submitted at once (default: twice the number of workers).
    """
    if max_in_flight is None:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        max_in_flight = 2 * n_workers

    def run(records: Iterator[Tuple[DocId, str]]) -> Iterator[List[Result]]:
        futures: Deque[Any] = deque()
        try:
            for part in batched(records, partition_size):
                futures.append(client.submit(annotate_partition, model, part, options, pure=False))
                if len(futures) >= max_in_flight:
                    yield futures.popleft().result()
            while futures:
                yield futures.popleft().result()
        finally:
            # Stop what is still queued (an error, an interrupt, or a consumer that quit).
            for future in futures:
                future.cancel()

    return run


def annotate_file_dask(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    options: Optional[AnnotateOptions] = None,
    *,
    client: Any = None,
    scheduler: Optional[str] = None,
    local_workers: Optional[int] = None,
    partition_size: Optional[int] = None,
    max_in_flight: Optional[int] = None,
    **overrides: Any,
) -> AnnotateSummary:
    """``annotate_file`` on Dask: same output file, same order, same resume rules.

    options: the run's ``AnnotateOptions`` (not ``n_process``: dask runs the processes);
        its ``torch_threads`` are each worker's (default: the CPUs shared out among local
        workers; left alone on a remote cluster); ``overrides`` replace fields of it.
    client: an existing ``distributed.Client``; else ``scheduler`` (an address) is
        connected to, or a ``LocalCluster`` of ``local_workers`` processes (1 thread each)
        is started and closed at the end.
    partition_size: documents per task, rounded up to a multiple of ``batch_size``
        (default ``4 * batch_size``).
    """
    options = resolve_options(options, overrides)
    distributed = _import_distributed()
    partition_size = _partition_size(options.batch_size, partition_size)
    model_ref = _model_ref(model)
    torch_threads = options.torch_threads
    with ExitStack() as owned:  # what this call starts, closed at the end
        if client is None:
            if scheduler is None and torch_threads is None:
                torch_threads = max(1, (os.cpu_count() or 1) // (local_workers or 1))
            client = _open_client(distributed, scheduler, local_workers, owned)
        _register_plugin(client, PipelinePlugin(model_ref, options.gpu_id, torch_threads))
        runner = dask_runner(client, model_ref, options, partition_size=partition_size, max_in_flight=max_in_flight)
        # The torch threads are the workers': this process only writes.
        return annotate_file(model_ref, input_path, output_path, replace(options, torch_threads=None), runner=runner)


def _partition_size(batch_size: int, partition_size: Optional[int]) -> int:
    """Documents per task: ``partition_size`` rounded up to a multiple of ``batch_size``
    (default ``4 * batch_size``), so each task's ``nlp.pipe`` batches are whole."""
    if batch_size < 1:
        raise AnnotateError("--batch-size must be at least 1")
    if partition_size is not None and partition_size < 1:
        raise AnnotateError("--dask-partition-size must be at least 1")
    return batch_size * (4 if partition_size is None else math.ceil(partition_size / batch_size))


def _open_client(distributed: Any, scheduler: Optional[str], local_workers: Optional[int], owned: ExitStack) -> Any:
    """A client of ``scheduler``, or of a new ``LocalCluster`` of ``local_workers`` processes
    (1 thread each; default 1). The client, and the cluster, are closed with ``owned``."""
    if scheduler is not None:
        client = distributed.Client(scheduler)
    else:
        cluster = distributed.LocalCluster(
            n_workers=local_workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # random port: never collides with a running dashboard
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        )
        owned.callback(cluster.close)
        client = distributed.Client(cluster)
    owned.callback(client.close)
    return client


def _register_plugin(client: Any, plugin: PipelinePlugin) -> None:
    """Register the pipeline plugin on every worker of ``client``, present and future."""
    if hasattr(client, "register_plugin"):
        client.register_plugin(plugin, name=PLUGIN_NAME)
    else:  # distributed < 2023.9
        client.register_worker_plugin(plugin, name=PLUGIN_NAME)
