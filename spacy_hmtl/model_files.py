"""The files a component saves: checksums, safe torch weights, and errors that name the file.

* **Checksums.** Every component's ``to_disk`` (``hmtl_encoder`` and each head) lists the
  SHA-256 of the files it wrote in ``checksums.sha256`` beside them (``sha256sum``'s
  format: ``cd MODEL/hmtl_ner && sha256sum -c checksums.sha256`` checks them by hand).
  ``from_disk`` checks each file against its checksum before reading it
  (``read_verified``): a truncated, corrupted or replaced file is an error naming it,
  never weights that load and predict garbage. A component saved before checksums
  existed has no such file and loads as before.
* **Weights load as data, never as code.** ``load_torch_weights`` reads a torch state
  dict with ``torch.load(..., weights_only=True)``, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
  says (an explicit ``weights_only`` wins over it), so a pickled payload planted in a model
  file cannot run; ``layers.torch_shim.AveragingPyTorchShim`` deserializes every torch
  module of the package with it.
* **Errors that tell the cause.** ``model_load_error`` tells a file that is not complete
  msgpack (truncated or corrupted) from weights that do not fit the component (saved
  with another configuration), and names the file.

Checksums guard against accidents (a copy cut short, a flipped block, an edited file),
not against an attacker who can rewrite the checksum file too: that is what
``weights_only`` is for.
"""
import hashlib
import pickle
import re
from io import BytesIO
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import srsly

from .safe_io import write_atomic

CHECKSUMS_FILE = "checksums.sha256"
_CHUNK = 1 << 20

PathLike = Union[str, Path]


class ModelFileError(ValueError):
    """A model file that is missing, truncated, corrupted or unsafe (the message names it)."""


class UnsafeWeightsError(ModelFileError):
    """Saved weights that hold Python objects other than tensors (refused unread)."""


# --- checksums ----------------------------------------------------------------------------


def file_sha256(path: PathLike) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fileh:
        for chunk in iter(lambda: fileh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(directory: PathLike, names: Iterable[str]) -> None:
    """Write ``checksums.sha256`` in ``directory``: the SHA-256 of each named file (of
    every file below a named directory), by path relative to ``directory``.

    names: the files and directories ``to_disk`` wrote; names that do not exist are skipped.
    """
    directory = Path(directory)
    files = [path for name in names for path in _files(directory / name)]
    lines = [f"{file_sha256(path)}  {path.relative_to(directory).as_posix()}\n" for path in files]
    write_atomic(directory / CHECKSUMS_FILE, "".join(lines).encode("utf8"))


def _files(path: Path) -> List[Path]:
    """``path`` if it is a file, the files below it if it is a directory, else nothing."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def read_checksums(directory: PathLike) -> Optional[Dict[str, str]]:
    """The checksums saved in ``directory`` (relative path -> hex digest), or None when
    there are none (a component saved before checksums existed).

    RAISES ModelFileError: the checksum file is not in ``sha256sum`` format.
    """
    path = Path(directory) / CHECKSUMS_FILE
    if not path.exists():
        return None
    checksums: Dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: cannot read the checksums ({err}); restore the file") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise ModelFileError(f"{path}:{lineno}: not a 'SHA256  FILE' line; the checksum file is corrupted")
        checksums[name] = digest.lower()
    return checksums


def read_verified(path: PathLike, checksums: Optional[Dict[str, str]], directory: PathLike) -> bytes:
    """The bytes of a component's file, checked against its saved checksum.

    path: the file, inside ``directory``.
    checksums: ``read_checksums(directory)``; None: nothing to check against.
    RAISES ModelFileError: the file does not match its checksum, or has none.
    """
    path = Path(path)
    data = path.read_bytes()
    if checksums is not None:
        check_digest(path, hashlib.sha256(data).hexdigest(), checksums, directory)
    return data


def read_cfg(path: PathLike, checksums: Optional[Dict[str, str]], directory: PathLike) -> Dict[str, Any]:
    """A component's saved settings (a JSON object), checked against its checksum.

    RAISES ModelFileError: a file that is missing, does not match its checksum or is not
        a JSON object (the message names it).
    """
    try:
        cfg = srsly.json_loads(read_verified(path, checksums, directory))
    except (ValueError, OSError) as err:
        raise ModelFileError(
            f"{path}: cannot read the saved settings ({err}): the file is missing, truncated or corrupted. "
            "Save the pipeline again, or restore the file."
        ) from err
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{path}: expected a JSON object, found {type(cfg).__name__}; corrupted file?")
    return cfg


def verify_files(directory: PathLike, name: str, checksums: Optional[Dict[str, str]]) -> None:
    """Check every file of ``directory / name`` (a file or a directory) against its checksum.

    RAISES ModelFileError: a file that does not match, or has no checksum.
    """
    if checksums is None:
        return
    for file in _files(Path(directory) / name):
        check_digest(file, file_sha256(file), checksums, directory)


def check_digest(path: Path, digest: str, checksums: Dict[str, str], directory: PathLike) -> None:
    """Compare a file's digest with its saved checksum.

    RAISES ModelFileError: they differ, or the file has no checksum.
    """
    name = path.relative_to(directory).as_posix()
    expected = checksums.get(name)
    if expected is None:
        raise ModelFileError(
            f"{path} is not listed in {CHECKSUMS_FILE}: it was not written by the component's to_disk, "
            "or the checksum file was edited. Save the pipeline again, or restore the files."
        )
    if digest != expected:
        raise ModelFileError(
            f"{path} is truncated or corrupted, or was replaced: its SHA-256 ({digest[:12]}...) is not the one "
            f"recorded when the pipeline was saved ({expected[:12]}..., in {CHECKSUMS_FILE}). Restore the file, "
            "or save the pipeline again."
        )


# --- torch weights --------------------------------------------------------------------------


def load_torch_weights(model: Any, state_bytes: bytes, device: Any) -> Any:
    """Load a torch state dict saved by ``PyTorchShim.to_bytes`` into ``model`` (the
    ``deserialize_model`` of ``AveragingPyTorchShim``): thinc's own loader calls
    ``torch.load`` without ``weights_only``, which environment variables can turn into an
    unrestricted unpickler.

    RAISES UnsafeWeightsError: the bytes hold something other than tensors and plain
        containers (a pickled object that would run code).
    """
    import torch

    try:
        state = torch.load(BytesIO(state_bytes), map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeWeightsError(
            "the saved weights hold Python objects other than tensors, which could run code when "
            f"loaded; refused ({_unpickler_reason(err)}). Use model files from a source you trust."
        ) from None
    model.load_state_dict(state)
    model.to(device)
    return model


def _unpickler_reason(err: Exception) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    match = re.search(r"WeightsUnpickler error: ([^\n]*?)(?:\. |\n|$)", str(err))
    return match.group(1)[:200] if match else type(err).__name__


# --- errors -------------------------------------------------------------------------------


def model_load_error(name: str, data: Optional[bytes], source: str, err: Exception, hint: str) -> ValueError:
    """The error of a component whose saved model did not load, naming ``source``.

    name: the component.
    data: the bytes that did not load (None: not known).
    source: where they came from (a file path, or "the saved bytes").
    err: what loading raised.
    hint: what to do when the file is complete but does not fit this component.
    """
    if isinstance(err, ModelFileError):
        return ValueError(f"[{name}] {source}: {err}")
    if data is not None:
        try:
            srsly.msgpack_loads(data)
        except Exception as decode_err:  # msgpack's errors share no base class
            return ValueError(
                f"[{name}] {source} is truncated or corrupted (not complete msgpack: {decode_err}). "
                "Save the pipeline again, or restore the file."
            )
    return ValueError(f"[{name}] cannot load the saved model into this component ({source}): {err}. {hint}")
