"""``python -m spacy_hmtl export``'s library: an ``annotate`` output (JSON lines, the
default ``--output-format doc``, or ``graph``) -> the import file of an annotation tool.

* prodigy: a JSONL file of tasks; labelstudio: a JSON array of tasks (written
  atomically, as every output of the commands, ``safe_io.write_atomic``);
* brat: a directory of ``.txt`` + ``.ann`` pairs and an ``annotation.conf``, built in a
  hidden sibling directory and renamed into place, so that a failure or a kill never
  leaves half a collection. An existing directory is replaced only with ``overwrite``,
  and only when it holds nothing but a brat collection's files (a mistyped path must not
  delete a folder of other files).

Every line is checked before anything is written; a malformed one stops the export with
``FILE, line N, document 'ID': reason``.
"""
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Union

from ..converters.common import ConversionError, Location, PathLike, expect_int, expect_list, expect_str, iter_jsonl
from ..safe_io import TEMP_MARK, process_exists, finish_temp, output_problem, same_file, write_atomic
from .brat import brat_collection, to_brat
from .common import DEFAULT_COREF_LABEL, ExportError, Json, export_links, layered_spans
from .labelstudio import labelstudio_json, to_labelstudio
from .prodigy import is_prodigy_line, prodigy_jsonl, to_prodigy

# FORMAT -> (one annotate record -> the format's document, the documents -> the output:
# a file's bytes, or a directory's files by name).
Output = Union[bytes, Dict[str, bytes]]
EXPORT_FORMATS: Dict[str, Tuple[Callable[..., Any], Callable[[List[Any]], Output]]] = {
    "prodigy": (to_prodigy, prodigy_jsonl),
    "labelstudio": (to_labelstudio, labelstudio_json),
    "brat": (to_brat, brat_collection),
}
# The files a brat collection directory may hold (brat adds .stats_cache); an existing
# directory with anything else is not replaced.
BRAT_SUFFIXES = (".txt", ".ann", ".conf")
BRAT_EXTRA_FILES = (".stats_cache",)
TEMP_DIR_SUFFIX = ".tmpdir"
LAYER_KEYS = ("entities", "mentions", "relations", "coref_clusters")


@dataclass
class ExportSummary:
    """What an export wrote, for the command's message."""

    documents: int = 0
    spans: int = 0
    links: int = 0
    output: str = ""
    files: List[str] = field(default_factory=list)

    def format(self) -> str:
        rows: List[Tuple[str, Union[int, str]]] = [("documents", self.documents), ("spans", self.spans), ("links", self.links)]
        if self.files:
            rows.append(("files", len(self.files)))
        rows.append(("output", self.output))
        return "\n".join(f"{name.ljust(9)}  {value}" for name, value in rows)


def export_file(
    output_format: str,
    input_path: PathLike,
    output_path: PathLike,
    *,
    coref_label: str = DEFAULT_COREF_LABEL,
    overwrite: bool = False,
) -> ExportSummary:
    """Export an ``annotate`` output to an annotation tool's import format.

    output_format: "prodigy", "labelstudio" or "brat" (``EXPORT_FORMATS``).
    input_path: ``annotate``'s JSONL output (``--output-format doc`` or ``graph``).
    output_path: the file (prodigy, labelstudio) or directory (brat) to write.
    coref_label: the link label of coreference (what ``convert --coref-labels`` reads).
    overwrite: replace an existing output (else ConversionError, before any work).
    RAISES ConversionError: a malformed input line (file, line, document, reason), a
        document the format cannot hold, or an output that may not be written.
    """
    if output_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {output_format!r}: choose from {', '.join(EXPORT_FORMATS)}")
    convert, assemble = EXPORT_FORMATS[output_format]
    input_path, output_path = Path(input_path), Path(output_path)
    is_directory = output_format == "brat"
    problem = (directory_problem if is_directory else output_problem)(output_path, [input_path], overwrite=overwrite)
    if problem is not None:
        raise ConversionError(output_path, problem)
    summary = ExportSummary(output=str(output_path))
    documents = []
    for loc, data in read_annotate_output(input_path):
        try:
            documents.append(convert(data, coref_label=coref_label))
        except ExportError as err:
            raise loc.error(str(err)) from None
        summary.documents += 1
        summary.spans += len(layered_spans(data) or [])
        summary.links += len(export_links(data, coref_label) or [])
    output = assemble(documents)
    if isinstance(output, dict):
        write_directory_atomic(output_path, output)
        summary.files = sorted(output)
    else:
        write_atomic(output_path, output)
    return summary


# --- reading annotate's output ------------------------------------------------------------


def read_annotate_output(path: PathLike) -> List[Tuple[Location, Json]]:
    """Every line of an ``annotate`` output (``doc_to_json``'s dicts), checked.

    RAISES ConversionError: the file is missing, empty or not UTF-8, or a line is not
        JSON or not a document's layers (naming the line and the problem).
    """
    records = []
    for loc, data in iter_jsonl(path):
        check_record(data, loc)
        records.append((loc, data))
    return records


def check_record(data: Any, loc: Location) -> None:
    """Check that ``data`` is ``doc_to_json``'s dict of a document: its spans inside the
    text and on its tokens, so that every format can write it.

    RAISES ConversionError: what is wrong, at ``loc``.
    """
    if not isinstance(data, dict):
        raise loc.error(f"expected a JSON object (a line of `annotate`'s output), got {type(data).__name__}")
    if isinstance(data.get("id"), (str, int)):
        loc.doc = str(data["id"])
    if is_prodigy_line(data):
        raise loc.error(
            "this is a Prodigy task (annotate --output-format prodigy); export reads annotate's default output "
            "(--output-format doc): annotate again without --output-format, or use the file as it is"
        )
    text = expect_str(data.get("text"), "'text'", loc)
    missing = [key for key in ("tokens",) + LAYER_KEYS if key not in data]
    if missing:
        raise loc.error(f"missing key(s) {', '.join(map(repr, missing))}: not a line of `annotate`'s output")
    tokens = expect_list(data["tokens"], "'tokens'", loc)
    for i, token in enumerate(tokens):
        if not isinstance(token, dict):
            raise loc.error(f"token {i} must be an object with 'start' and 'end'")
        _check_offsets(token.get("start"), token.get("end"), len(text), f"token {i}", loc)
    for key in ("entities", "mentions"):
        for i, span in enumerate(_layer(data, key, loc)):
            _check_span(span, text, len(tokens), f"{key}[{i}]", loc)
    for i, relation in enumerate(_layer(data, "relations", loc)):
        what = f"relations[{i}]"
        if not isinstance(relation, dict):
            raise loc.error(f"{what} must be an object with 'head', 'tail' and 'label'")
        if not expect_str(relation.get("label"), f"{what}: label", loc):
            raise loc.error(f"{what}: the label is empty")
        for arg in ("head", "tail"):
            _check_span(relation.get(arg), text, len(tokens), f"{what}: {arg}", loc)
    for i, cluster in enumerate(_layer(data, "coref_clusters", loc)):
        if not expect_list(cluster, f"coref_clusters[{i}]", loc):
            raise loc.error(f"coref_clusters[{i}] is empty")
        for j, mention in enumerate(cluster):
            _check_span(mention, text, len(tokens), f"coref_clusters[{i}][{j}]", loc)


def _layer(data: Json, key: str, loc: Location) -> list:
    """A layer's list; [] when the document is not annotated for it (``null``)."""
    return [] if data[key] is None else expect_list(data[key], repr(key), loc)


def _check_offsets(start: Any, end: Any, length: int, what: str, loc: Location) -> None:
    start = expect_int(start, f"{what}: start", loc)
    end = expect_int(end, f"{what}: end", loc)
    if not 0 <= start < end <= length:
        raise loc.error(f"{what}: offsets [{start}, {end}) out of range or end <= start (length {length})")


def _check_span(span: Any, text: str, n_tokens: int, what: str, loc: Location) -> None:
    if not isinstance(span, dict):
        raise loc.error(f"{what} must be a span object (start_char, end_char, start_token, end_token, text, label)")
    _check_offsets(span.get("start_char"), span.get("end_char"), len(text), f"{what} characters", loc)
    _check_offsets(span.get("start_token"), span.get("end_token"), n_tokens, f"{what} tokens", loc)
    if span.get("text") != text[span["start_char"] : span["end_char"]]:
        raise loc.error(f"{what}: 'text' {span.get('text')!r} is not the text at its offsets")
    if span.get("label") is not None:
        expect_str(span["label"], f"{what}: label", loc)


# --- writing a directory atomically -------------------------------------------------------


def directory_problem(output: Path, inputs: List[Path], *, overwrite: bool = False) -> Union[str, None]:
    """What is wrong with writing the directory ``output`` (None if nothing is): as
    ``safe_io.output_problem`` for a file, and a directory is only replaced when it holds
    a brat collection (no subdirectory, no other file) and none of the inputs."""
    if not output.exists():
        return output_problem(output, inputs, overwrite=overwrite)
    for path in inputs:
        if same_file(output, path):
            return f"is also an input of this command ({path}); write the output to another path"
        if output.resolve() in Path(path).resolve().parents:
            return f"holds an input of this command ({path}); write the output to another directory"
    if not output.is_dir():
        return "exists and is not a directory (brat's output is a directory of .txt and .ann files)"
    if not overwrite:
        return "exists already; pass --overwrite to replace it"
    for child in sorted(output.iterdir()):
        if child.is_dir() or not (child.suffix in BRAT_SUFFIXES or child.name in BRAT_EXTRA_FILES):
            return (
                f"holds {child.name}, which is not a file of a brat collection ({', '.join(BRAT_SUFFIXES)}); "
                "only a brat collection is replaced: write to another directory"
            )
    return None


def write_directory_atomic(target: PathLike, files: Dict[str, bytes]) -> None:
    """Make ``target`` a directory of ``files`` (name -> contents) at once: the files are
    written to a hidden sibling directory, which is then renamed to ``target``; an
    existing ``target`` is moved aside first and deleted after, or moved back if the
    rename fails. Temporary directories of killed runs are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(target)
    temp = _temp_dir_name(target)
    old = _temp_dir_name(target)
    try:
        os.mkdir(temp)
        for name, data in files.items():
            path = temp / name
            finish_temp(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(path), data)
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(temp, target)
        except OSError:
            if old.exists():
                os.rename(old, target)
            raise
    finally:
        for leftover in (temp, old):
            if leftover.exists():
                shutil.rmtree(leftover)


def remove_stale_temp_dirs(target: PathLike) -> int:
    """Remove the temporary directories of ``target`` whose process is gone (a run
    killed by SIGKILL, which no ``finally`` survives). RETURNS (int): how many."""
    target = Path(target)
    prefix = f".{target.name}{TEMP_MARK}"
    removed = 0
    for path in target.parent.iterdir():
        if not (path.name.startswith(prefix) and path.name.endswith(TEMP_DIR_SUFFIX)):
            continue
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _temp_dir_name(target: Path) -> Path:
    """A new hidden sibling of ``target`` named after it and this process (as
    ``safe_io.make_temp`` names temporary files, with its own suffix)."""
    return target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_DIR_SUFFIX}")
