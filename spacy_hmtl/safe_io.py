"""File safety shared by the commands (``convert``, ``annotate``, ``render``, ``graph``,
``evaluate``).

* No command writes over one of its inputs (``output_problem``), nor over an existing
  output unless asked to (``--overwrite``).
* Whole files are written to a temporary file next to the target and moved into place
  (``write_atomic``): a failure or a kill never leaves a half-written output. A temporary
  file is removed when the command fails or gets SIGTERM (``sigterm_exits``); one left by
  SIGKILL, which cannot be caught, is removed by the next run that writes the same
  target (``remove_stale_temps``: the name holds the pid of the process that made it).
* Every JSON line is written the same way (``dumps_line``), so the same record gives the
  same bytes on every path (resume, retries, workers, the graph export).
* Worker processes forked while ``children_die_with_parent`` is active are killed by
  the kernel when their parent dies, even by SIGKILL (Linux; elsewhere they poll for it).
* A command that appends to its output (``annotate``, which resumes) holds an exclusive
  lock on it (``output_lock``): a second run on the same output stops at once.
* Exports are safe to open: a CSV cell that a spreadsheet would run as a formula is
  neutralised (``spreadsheet_safe``), and XML never holds a character XML 1.0 forbids
  (``xml_safe``).
"""
import ctypes
import glob
import json
import multiprocessing.util
import os
import re
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Union

try:
    import fcntl
except ImportError:  # pragma: no cover  (not POSIX: outputs are not locked)
    fcntl = None  # type: ignore[assignment]

PathLike = Union[str, Path]


def dumps_line(obj: Dict[str, Any]) -> str:
    """One JSONL line (with its newline); the same bytes on every path."""
    return json.dumps(obj, ensure_ascii=False) + "\n"

TEMP_MARK = ".hmtl-tmp-"
LOCK_MARK = ".hmtl-lock"
_PR_SET_PDEATHSIG = 1
# OWASP's rule for CSV injection: a spreadsheet runs a cell that starts with one of these
# as a formula (TAB and CR too: some applications drop them and read what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Everything XML 1.0's Char production leaves out: C0 controls but TAB, LF and CR, the
# surrogates (only lone ones reach a Python str) and the two BMP non-characters.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --- inputs and outputs ---------------------------------------------------------------


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (also through links, when both exist)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def output_problem(output: PathLike, inputs: Iterable[PathLike], *, overwrite: bool = False) -> Optional[str]:
    """What is wrong with writing ``output`` (None if nothing is).

    output: the file the command would write.
    inputs: the files the command reads.
    overwrite: whether an existing output may be replaced.
    RETURNS (Optional[str]): the problem, phrased to follow the output's path.
    """
    output = Path(output)
    for path in inputs:
        if same_file(output, path):
            return f"is also an input of this command ({path}); write the output to another path"
    if output.is_dir():
        return "is a directory, not a file"
    folder = next((parent for parent in output.parents if parent.exists()), None)
    if folder is not None and not folder.is_dir():
        return f"cannot be created: {folder} is a file, not a directory"
    if output.exists() and not overwrite:
        return "exists already; pass --overwrite to replace it"
    return None


# --- atomic writes ----------------------------------------------------------------------


def make_temp(target: PathLike) -> Tuple[int, str]:
    """A temporary file next to ``target`` (same file system, so ``os.replace`` is
    atomic), named after the target and this process; stale ones are removed first.

    RETURNS (Tuple[int, str]): the open file descriptor and the path.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    prefix = f".{target.name}{TEMP_MARK}{os.getpid()}-"
    return tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")


def remove_stale_temps(target: PathLike) -> int:
    """Remove the temporary files of ``target`` whose process is gone (a killed run).

    RETURNS (int): how many were removed.
    """
    target = Path(target)
    prefix = f".{target.name}{TEMP_MARK}"
    removed = 0
    for name in glob.glob(os.path.join(glob.escape(str(target.parent)), glob.escape(prefix) + "*.tmp")):
        pid = Path(name).name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
            try:
                os.unlink(name)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def finish_temp(fd: int, temp: str, data: bytes) -> None:
    """Write ``data`` to the open temporary file, sync it and give it a plain file's mode."""
    with os.fdopen(fd, "wb") as fileh:
        fileh.write(data)
        fileh.flush()
        os.fsync(fileh.fileno())
    # mkstemp creates the file 0600; give it the mode a plain open() would.
    os.chmod(temp, 0o666 & ~_umask())


def write_atomic(target: PathLike, data: bytes) -> None:
    """Replace ``target`` by ``data`` at once: readers see the old file or the new one."""
    fd, temp = make_temp(target)
    try:
        finish_temp(fd, temp, data)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- signals and child processes ------------------------------------------------------


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Run the block with SIGTERM raising ``SystemExit(143)``, so that ``finally``
    clauses (temporary files, worker processes) run as they do for Ctrl-C. Only the main
    thread can set signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _ParentWatch:
    """Registered with ``multiprocessing.util.register_after_fork``: runs in every
    process forked by ``multiprocessing`` while it is alive, and ties it to its parent."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def arm(self) -> None:
        if os.getpid() == self.parent:
            return
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        else:
            threading.Thread(target=self._poll, daemon=True).start()
        if os.getppid() != self.parent:  # the parent died before we were armed
            os._exit(1)

    def _poll(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(1.0)
        os._exit(1)


@contextmanager
def children_die_with_parent() -> Iterator[None]:
    """Within the block, processes that ``multiprocessing`` forks (``nlp.pipe``'s
    workers) are killed when this process dies, whatever kills it. Works with the
    ``fork`` start method (the Linux default before Python 3.14)."""
    watch = _ParentWatch()
    multiprocessing.util.register_after_fork(watch, _ParentWatch.arm)
    try:
        yield
    finally:
        # The registry holds a weak reference: the hook goes when ``watch`` does.
        del watch


# --- locking an output ------------------------------------------------------------------


class OutputLockedError(RuntimeError):
    """Another process holds the lock of an output (the message names the output)."""


def lock_path(output: PathLike) -> Path:
    """The lock file of ``output``: a hidden file next to it (``.NAME.hmtl-lock``)."""
    output = Path(output)
    return output.with_name(f".{output.name}{LOCK_MARK}")


@contextmanager
def output_lock(output: PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``output`` for the block (``flock`` on its lock file,
    never waiting), so that two runs cannot append to one file. The lock file holds the
    pid of its owner and is removed when the block ends; a lock left by a killed
    process is released by the kernel. Where ``fcntl`` is missing, nothing is locked.

    output: the file the command writes (it need not exist).
    RETURNS (Iterator[Path]): the lock file's path.
    RAISES OutputLockedError: another process holds the lock.
    """
    path = lock_path(output)
    if fcntl is None:  # pragma: no cover
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire_lock(path, output)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        # Unlinked while still locked: a run that opens the name later gets a new file,
        # and one that opened the old file sees it is gone (``_acquire_lock``).
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)


def _acquire_lock(path: Path, output: PathLike) -> int:
    """Open and lock ``path``; the open file descriptor. Retries when the file was
    removed (by the owner that just finished) between opening and locking it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(fd)
            os.close(fd)
            raise OutputLockedError(
                f"{output}: another run is writing this output{owner} (lock file {path}); "
                "wait for it to finish, or write to another path"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, path):
            return fd
        os.close(fd)


def _is_current(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file named ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _lock_owner(fd: int) -> str:
    """`` (process PID)`` from a held lock file, or "" when it holds no pid yet."""
    pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f" (process {pid})" if pid.isdigit() else ""


# --- exports that are safe to open -----------------------------------------------------------


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text instead of running it as a formula.

    A string that starts with ``FORMULA_STARTS`` (``=cmd|'/C calc'!A0``, ``@SUM(1)``,
    ``-2+3``) gets a single quote in front (OWASP's rule for CSV injection); other
    strings and the numbers a writer computes itself are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def xml_safe(text: str, replacement: str = "\ufffd") -> str:
    """``text`` with every character that XML 1.0 forbids (control characters other than
    TAB, LF and CR, lone surrogates, U+FFFE, U+FFFF) replaced by ``replacement``: no XML
    parser accepts them, not even as character references."""
    return _XML_FORBIDDEN.sub(replacement, text)
