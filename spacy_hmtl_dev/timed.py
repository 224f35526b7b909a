"""Running a command timed: wall time, peak memory and exit status of a child process,
recorded in a JSON file (``scripts/timed.py``, which documents the record).

``peak_rss_mb`` is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest peak
resident set of the child or of any of its descendants that were waited for (not the sum
over processes; ``benchmarking`` says what it measures). This module imports nothing but the
standard library until the child has exited, so that the child does not start from a big
process.
"""
import importlib.util
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

# .benchmarking is imported in run_timed once the child has exited: nothing may grow this
# process before (a child started from a big process inherits that size into its ru_maxrss)

USAGE = "usage: python scripts/timed.py OUT.json [--fresh PATH ...] -- CMD [ARG ...]"


def now_iso() -> str:
    """The local time now, ISO 8601 to the second."""
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
    """Run ``cmd``, wait for it (through Ctrl-C, which reaches it too) and write its record
    to ``out_path``. RETURNS (int): its shell-style exit status."""
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
    from .benchmarking import machine_info, ru_maxrss_mb  # after the child: see the imports

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
    """``OUT.json [--fresh PATH ...] -- CMD ...``: check the install, delete the ``--fresh``
    paths, run the command timed. RETURNS (int): the exit status (2: usage or install)."""
    try:
        out_path, fresh, cmd = parse_options(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    # The record needs this package after the child has exited (see the imports), and the
    # commands it wraps need spacy_hmtl; find them now without importing them, so a broken
    # install fails before an hour of training, not after.
    for package in ("spacy_hmtl", "spacy_hmtl_dev"):
        if importlib.util.find_spec(package) is None:
            print(
                f"scripts/timed.py: {package} is not importable here (install the checkout: "
                "pip install -e .); nothing was run",
                file=sys.stderr,
            )
            return 2
    for path in fresh:
        Path(path).unlink(missing_ok=True)
    return run_timed(out_path, cmd)
