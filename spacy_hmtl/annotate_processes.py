"""``annotate --n-process N`` on one machine: the pipeline in N forked worker processes,
each turning a chunk of records into finished JSONL lines, so that the parent process only
reads the input and appends to OUTPUT.

Why not ``nlp.pipe(n_process=N)``, what the command ran before: spaCy's workers send every
annotated ``Doc`` back as ``Doc.to_bytes()``, and the parent rebuilds it
(``Doc.from_bytes``) and turns it into JSON, one document after the other. An HMTL doc
carries the encoder's states in ``doc.tensor`` (a row of several hundred floats per token:
about 400 kB for a SciERC abstract with the mixed pipeline), so each worker spent about a
fifth of the pipeline's own time serialising, and the parent, a third process on the same
cores, about as much again rebuilding (CPU time, measured on one SciERC batch): with two
processes on two cores, well under the 2x there is to gain. Here a worker sends back its
lines (a few kB a document, no tensor) and the parent only reads and writes text.

How it runs:

* The workers are forked: they share the parent's loaded pipeline copy-on-write (nothing
  is loaded again, the vectors are not copied), and the function they run is handed over
  at the fork, never pickled. Each forked process runs torch with one thread (the fork
  hook of ``spacy_hmtl.layers``): N single-threaded processes on N cores, no
  oversubscription, and no inherited OpenMP pool to deadlock on.
* ``pipe_chunks`` cuts the records into chunks holding ``batch_size`` texts the pipeline
  takes (a too-long one rides along, to be reported in its place), so that every chunk is
  one ``nlp.pipe`` batch and the batches are those of the one-process run (the same
  output; tested byte for byte).
* At most ``4 * N`` chunks are in flight (bounded memory on any input, and enough queued
  work that a slow chunk does not leave the other workers idle); the results come back in
  input order.
* A worker that dies (killed, out of memory) ends the run with an ``AnnotateError``;
  what was written before it stays, to resume from. (``concurrent.futures`` notices a dead
  worker; ``multiprocessing.Pool`` would wait for its result for ever.)

``batch_annotator`` uses this runner where ``fork_available()`` and the pipeline is on the
CPU (a CUDA context does not survive a fork); elsewhere it keeps ``nlp.pipe(n_process=N)``.
This module knows nothing of spaCy: the work of a chunk is the function it is given.
"""
import multiprocessing
import os
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Deque, Iterable, Iterator, List, Optional, Tuple

from .annotate_records import AnnotateError, DocId, Result, Runner

Record = Tuple[DocId, str]
# The work of one chunk, run in a worker: the records -> one result per record, in order.
ChunkTask = Callable[[List[Record]], List[Result]]

# Chunks in flight per worker: one running, the rest queued behind it.
IN_FLIGHT_PER_WORKER = 4

# The task of this worker process, set when it starts (``_start_worker``).
_WORKER_TASK: Optional[ChunkTask] = None


def fork_available() -> bool:
    """Whether worker processes can be forked here: Linux and the other POSIX systems, not
    macOS (where forking a process that has loaded system frameworks is unsafe, and
    Python's default start method is spawn)."""
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def worker_count(n_process: int) -> int:
    """The worker processes of ``--n-process``: -1 is one per CPU."""
    return (os.cpu_count() or 1) if n_process == -1 else n_process


def pipe_chunks(records: Iterable[Record], size: int, max_length: int) -> Iterator[List[Record]]:
    """``records`` in lists holding ``size`` texts the pipeline takes (at most
    ``max_length`` characters), lazily; a longer text stays in its place in the list it
    falls in, without counting (the pipeline never sees it: it is reported). The last list
    may hold fewer.

    records (Iterable[Record]): ``(id, text)`` pairs.
    size (int): the pipeline's batch size.
    max_length (int): ``nlp.max_length``.
    YIELDS (List[Record]): the chunks, in order.
    """
    chunk: List[Record] = []
    n_piped = 0
    for record in records:
        chunk.append(record)
        if len(record[1]) <= max_length:
            n_piped += 1
            if n_piped >= size:
                yield chunk
                chunk, n_piped = [], 0
    if chunk:
        yield chunk


def process_runner(
    task: ChunkTask,
    n_workers: int,
    *,
    chunk_size: int,
    max_length: int,
    max_in_flight: Optional[int] = None,
) -> Runner:
    """A runner for ``batch_annotator.annotate_file``: pending ``(id, text)`` pairs ->
    lists of results (one list per chunk, in input order), computed by ``n_workers``
    forked processes.

    task (ChunkTask): the work of one chunk (a function of the loaded pipeline: it reaches
        the workers by the fork, never pickled).
    n_workers (int): the worker processes, started when the first chunk is sent.
    chunk_size (int): texts the pipeline takes per chunk (``pipe_chunks``).
    max_length (int): the pipeline's ``max_length`` (``pipe_chunks``).
    max_in_flight (Optional[int]): chunks sent and not yet yielded, at most (default
        ``IN_FLIGHT_PER_WORKER * n_workers``).
    RETURNS (Runner): the runner.
    """
    limit = max_in_flight if max_in_flight is not None else IN_FLIGHT_PER_WORKER * n_workers

    def run(records: Iterator[Record]) -> Iterator[List[Result]]:
        executor = ProcessPoolExecutor(
            max_workers=n_workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(task,),
        )
        futures: Deque["Future[List[Result]]"] = deque()
        try:
            for chunk in pipe_chunks(records, chunk_size, max_length):
                futures.append(executor.submit(_run_task, chunk))
                if len(futures) >= limit:
                    yield _result(futures.popleft())
            while futures:
                yield _result(futures.popleft())
        finally:
            # An error, an interrupt or a consumer that stopped (--on-error stop): drop what is
            # queued, let the running chunks end, and the workers with them.
            executor.shutdown(wait=True, cancel_futures=True)

    return run


def _result(future: "Future[List[Result]]") -> List[Result]:
    """The results of a chunk; a dead worker as an AnnotateError."""
    try:
        return future.result()
    except BrokenProcessPool as err:
        raise AnnotateError(
            f"a worker process died ({err}); the documents before it are written: run the "
            "command again to resume (fewer --n-process if memory ran out)"
        ) from None


def _start_worker(task: ChunkTask) -> None:
    """Run in each worker when it starts: keep its task (inherited by the fork)."""
    global _WORKER_TASK
    _WORKER_TASK = task
    # Ctrl-C reaches the whole process group. The parent stops the run (and waits for the
    # running chunks); a worker dying of it mid-chunk would only turn that into a
    # "worker died" error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_task(records: List[Record]) -> List[Result]:
    """A chunk's work, in a worker (what ``submit`` sends: a module function and the records)."""
    if _WORKER_TASK is None:  # pragma: no cover  (only reached in a process that was not started here)
        raise RuntimeError("annotate_processes: this process is not a worker of process_runner")
    return _WORKER_TASK(records)
