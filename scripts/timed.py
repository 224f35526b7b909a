"""Run a command and record how long it took and how much memory it used.

    python scripts/timed.py metrics/train_scierc.json -- python -m spacy train configs/scierc.cfg ...

writes ``metrics/train_scierc.json``::

    {"command": [...], "command_line": "...", "returncode": 0, "wall_s": 1234.5,
     "peak_rss_mb": 812.3, "started": "...", "finished": "...", "machine": {...}}

* ``wall_s``: wall-clock seconds from starting the child to its exit.
* ``peak_rss_mb``: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest peak
  resident set of the child or of any of its descendants that were waited for (not the
  sum over processes; ``spacy_hmtl_dev.benchmarking`` says what it measures).
* ``command``: as run; a leading ``python``/``python3`` is replaced by this interpreter,
  as ``spacy project run`` does for the script line itself.
* ``machine``: ``spacy_hmtl_dev.benchmarking.machine_info()``: CPU model (``/proc/cpuinfo``),
  logical cores, cores this process may use, GPU (when torch sees CUDA), Python and platform.

``--fresh PATH`` (repeatable, before ``--``) deletes PATH before the command starts: ``spacy
train`` does not overwrite an existing ``--training.logger.output_file`` but trains on with
logging disabled, so a re-run would keep the previous run's dev curve.

The JSON is written whatever the outcome (also when the command fails or cannot be
started; only when ``spacy_hmtl`` or ``spacy_hmtl_dev`` is not importable is nothing run,
exit status 2), and the script exits with the child's exit status (128 + N when the child
was killed by signal N, 127 when the command was not found), so ``spacy project run`` stops
on a failed training as it would without the wrapper. Ctrl-C reaches the child through
the terminal's process group; the wrapper waits for it and still writes the record. The
code is ``spacy_hmtl_dev.timed``.
"""
import signal
import sys

# imports nothing but the standard library before the child exits (see spacy_hmtl_dev.timed)
from spacy_hmtl_dev.timed import main

if __name__ == "__main__":
    # SIGINT is handled in run_timed (wait for the child); keep default SIGTERM behaviour.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
