"""The benchmark's progress lines (stderr, timestamped): a run takes an hour."""
import sys
import time


def log(msg: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
