"""Run a command and record how long it took and how much memory it used.

    python scripts/timed.py metrics/train_scierc.json -- python -m spacy train configs/scierc.cfg ...

writes ``metrics/train_scierc.json``::

    {"command": [...], "command_line": "...", "returncode": 0, "wall_s": 1234.5,
     "peak_rss_mb": 812.3, "started": "...", "finished": "...", "machine": {...}}

* ``wall_s``: wall-clock seconds from starting the child to its exit.
* ``peak_rss_mb``: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest peak
  resident set of the child or of any of its descendants that were waited for (not the
  sum over processes; ``spacy_hmtl.benchmarking`` says what it measures).
* ``command``: as run; a leading ``python``/``python3`` is replaced by this interpreter,
  as ``spacy project run`` does for the script line itself.
* ``machine``: ``spacy_hmtl.benchmarking.machine_info()``: CPU model (``/proc/cpuinfo``),
  logical cores, cores this process may use, GPU (when torch sees CUDA), Python and platform.

``--fresh PATH`` (repeatable, before ``--``) deletes PATH before the command starts: ``spacy
train`` does not overwrite an existing ``--training.logger.output_file`` but trains on with
logging disabled, so a re-run would keep the previous run's dev curve.

The JSON is written whatever the outcome (also when the command fails or cannot be
started; only when ``spacy_hmtl`` is not importable is nothing run, exit status 2), and the script exits with the child's exit status (128 + N when the child was
killed by signal N, 127 when the command was not found), so ``spacy project run`` stops
on a failed training as it would without the wrapper. Ctrl-C reaches the child through
the terminal's process group; the wrapper waits for it and still writes the record.
"""
import importlib.util
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

# spacy_hmtl.benchmarking is imported in run_timed once the child has exited: it imports spaCy
# (and so torch), and a child started from a big process inherits that size into its ru_maxrss

USAGE = "usage: python scripts/timed.py OUT.json [--fresh PATH ...] -- CMD [ARG ...]"


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def parse_options(argv: Sequence[str]) -> Tuple[str, List[str], List[str]]:
    """``OUT.json [--fresh PATH ...] -- CMD ...`` -> (OUT.json, [PATH, ...], CMD)."""
    argv = list(argv)
    if "--" not in argv:
        raise ValueError(USAGE)
    sep = argv.index("--")
    head, cmd = argv[:sep], argv[sep + 1 :]
    if not head or not cmd:
        raise ValueError(USAGE)
    out_path, options = head[0], head[1:]
    if len(options) % 2 or any(flag != "--fresh" for flag in options[::2]):
        raise ValueError(USAGE)
    return out_path, options[1::2], cmd


def exit_status(returncode: int) -> int:
    """subprocess returncode -> shell-style exit status."""
    return 128 - returncode if returncode < 0 else returncode


def resolve_python(cmd: List[str]) -> List[str]:
    """``python``/``python3`` -> this interpreter, as ``spacy project run`` does for the
    first word of a script line (so the wrapped command runs in the same environment)."""
    if cmd and cmd[0] in ("python", "python3"):
        return [sys.executable] + cmd[1:]
    return cmd


def run_timed(out_path: str, cmd: List[str]) -> int:
    cmd = resolve_python(cmd)
    record: Dict[str, Any] = {
        "command": cmd,
        "command_line": shlex.join(cmd),
        "cwd": os.getcwd(),
        "started": now_iso(),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    error = None
    try:
        proc = subprocess.Popen(cmd)
    except OSError as e:  # not found / not executable
        returncode, error = 127, f"{type(e).__name__}: {e}"
    else:
        while True:
            try:
                returncode = proc.wait()
                break
            except KeyboardInterrupt:
                # The child got the same SIGINT from the terminal: let it shut down.
                continue
        returncode = exit_status(returncode)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = now_iso()  # before the import below, which takes seconds
    from spacy_hmtl.benchmarking import machine_info, ru_maxrss_mb  # after the child: see the imports

    record.update(
        {
            "finished": finished,
            "returncode": returncode,
            "wall_s": round(wall, 3),
            "peak_rss_mb": round(ru_maxrss_mb(after), 1),
            "user_cpu_s": round(after.ru_utime - before.ru_utime, 3),
            "system_cpu_s": round(after.ru_stime - before.ru_stime, 3),
            "machine": machine_info(),
        }
    )
    if error:
        record["error"] = error
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf8")
    print(
        f"[timed] {record['command_line']}: exit {returncode}, {wall:.1f} s wall, "
        f"peak RSS {record['peak_rss_mb']} MB -> {out}",
        file=sys.stderr,
    )
    return returncode


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        out_path, fresh, cmd = parse_options(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    # The record needs spacy_hmtl after the child has exited (see the imports); find it now
    # without importing it, so a broken install fails before an hour of training, not after.
    if importlib.util.find_spec("spacy_hmtl") is None:
        print(
            "scripts/timed.py: spacy_hmtl is not importable here (install the checkout: "
            "pip install -e .); nothing was run",
            file=sys.stderr,
        )
        return 2
    for path in fresh:
        Path(path).unlink(missing_ok=True)
    return run_timed(out_path, cmd)


if __name__ == "__main__":
    # SIGINT is handled in run_timed (wait for the child); keep default SIGTERM behaviour.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
