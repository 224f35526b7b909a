"""What every converter shares: the error type, the summary, building gold Docs from
words, placing entities, validating values and writing DocBins atomically (never over
an input, never over an existing output without ``overwrite``)."""
import json
import os
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ..annotations import (
    DOC_KEY_ATTR,
    ENTS_OVERFLOW_KEY,
    MENTIONS_KEY,
    get_coref_clusters,
    get_relation_records,
    has_mention_annotation,
    has_ner_annotation,
)
from ..safe_io import finish_temp, make_temp, output_problem

PathLike = Union[str, Path]
# (start, end, label) in token offsets, end exclusive.
LabeledSpan = Tuple[int, int, str]
T = TypeVar("T")


class ConversionError(ValueError):
    """Malformed input. The message names the file, the line or document, and the problem."""

    def __init__(
        self,
        path: PathLike,
        problem: str,
        *,
        line: Optional[int] = None,
        doc: Optional[str] = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if doc is not None:
            where += f", document {doc!r}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.doc = doc
        self.problem = problem

    def __reduce__(self):
        # Picklable (e.g. across processes) although the constructor has keyword arguments.
        return _rebuild_error, (self.path, self.problem, self.line, self.doc)


def _rebuild_error(path: str, problem: str, line: Optional[int], doc: Optional[str]) -> ConversionError:
    return ConversionError(path, problem, line=line, doc=doc)


class Location:
    """Where a value comes from, so that validation errors can say so."""

    def __init__(self, path: PathLike, *, line: Optional[int] = None, doc: Optional[str] = None):
        self.path = path
        self.line = line
        self.doc = doc

    def error(self, problem: str) -> ConversionError:
        return ConversionError(self.path, problem, line=self.line, doc=self.doc)


# --- summary ------------------------------------------------------------------------


@dataclass
class ConversionSummary:
    """Counts of what a conversion wrote. Layers a corpus is not annotated for print as n/a."""

    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    entities_overflow: int = 0
    mentions: int = 0
    relations: int = 0
    clusters: int = 0
    cluster_mentions: int = 0
    # Layers seen on at least one doc: "entities", "mentions", "relations", "coref".
    layers: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    # Things that were silently repaired (e.g. exact duplicates dropped), with counts.
    notes: Dict[str, int] = field(default_factory=dict)
    # For converters that write several files (litbank): one summary per output name.
    parts: Dict[str, "ConversionSummary"] = field(default_factory=dict)

    def add_doc(self, doc: Doc) -> None:
        """Count the annotation layers of one converted doc."""
        self.documents += 1
        self.tokens += len(doc)
        self.sentences += sum(1 for _ in doc.sents) if len(doc) else 0
        if has_ner_annotation(doc):
            self._layer("entities")
            overflow = len(doc.spans[ENTS_OVERFLOW_KEY]) if ENTS_OVERFLOW_KEY in doc.spans else 0
            self.entities += len(doc.ents) + overflow
            self.entities_overflow += overflow
        if has_mention_annotation(doc):
            self._layer("mentions")
            self.mentions += len(doc.spans[MENTIONS_KEY])
        records = get_relation_records(doc)
        if records is not None:
            self._layer("relations")
            self.relations += len(records)
        clusters = get_coref_clusters(doc)
        if clusters is not None:
            self._layer("coref")
            self.clusters += len(clusters)
            self.cluster_mentions += sum(len(c) for c in clusters)

    def note(self, what: str, count: int = 1) -> None:
        if count:
            self.notes[what] = self.notes.get(what, 0) + count

    def merge(self, other: "ConversionSummary") -> None:
        """Add the counts of another summary to this one."""
        for name in (
            "documents", "sentences", "tokens", "entities", "entities_overflow",
            "mentions", "relations", "clusters", "cluster_mentions",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for layer in other.layers:
            self._layer(layer)
        self.outputs.extend(other.outputs)
        for what, count in other.notes.items():
            self.note(what, count)

    def _layer(self, name: str) -> None:
        if name not in self.layers:
            self.layers.append(name)

    def format(self) -> str:
        """A human-readable multi-line summary."""
        lines: List[str] = []
        for name, part in self.parts.items():
            lines.append(f"[{name}]")
            lines.extend("  " + line for line in part.format().splitlines())
        if self.parts:
            lines.append("[total]")
        lines.extend(self._format_counts())
        return "\n".join(lines)

    def _format_counts(self) -> List[str]:
        def value(layer: str, count: int, extra: str = "") -> str:
            return f"{count}{extra}" if layer in self.layers else "n/a"

        overflow = f" ({self.entities_overflow} overlapping, in doc.spans[{ENTS_OVERFLOW_KEY!r}])"
        rows = [
            ("documents", str(self.documents)),
            ("sentences", str(self.sentences)),
            ("tokens", str(self.tokens)),
            ("entities", value("entities", self.entities, overflow)),
            ("mentions", value("mentions", self.mentions)),
            ("relations", value("relations", self.relations)),
            ("clusters", value("coref", self.clusters, f" ({self.cluster_mentions} mentions)")),
        ]
        rows += [(f"note: {what}", str(count)) for what, count in self.notes.items()]
        if not self.parts:
            rows += [("output", path) for path in self.outputs]
        width = max(len(name) for name, _ in rows)
        return [f"{name.ljust(width)}  {text}" for name, text in rows]


# --- reading ------------------------------------------------------------------------


def read_text(path: PathLike, *, allow_empty: bool = False) -> str:
    """Read a UTF-8 file; missing, non-UTF-8 and (unless allowed) empty files raise
    ConversionError."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(path, "file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConversionError(
            path, f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})", line=line
        ) from None
    if not text.strip() and not allow_empty:
        raise ConversionError(path, "file is empty")
    return text.lstrip("\ufeff")


def split_lines(text: str) -> List[str]:
    """The lines of a file's text, split at "\\n" only (a trailing "\\r" is dropped).

    ``str.splitlines`` also splits at U+2028, U+0085, form feeds..., which may occur
    inside a JSON string or a token: line numbers would then be wrong, and a JSON line cut
    in two.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def json_problem(err: json.JSONDecodeError) -> str:
    """A JSON parse error as "invalid or truncated JSON (<what>: column N)"."""
    return f"invalid or truncated JSON ({err.msg}: column {err.colno})"


def iter_jsonl(path: PathLike) -> Iterator[Tuple[Location, Any]]:
    """Each non-blank line of a JSON-lines file, parsed, with its location.

    RAISES ConversionError: unreadable file, or a line that is not valid JSON.
    """
    for line_no, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        loc = Location(path, line=line_no)
        try:
            yield loc, json.loads(line)
        except json.JSONDecodeError as err:
            raise loc.error(json_problem(err)) from None


def whitespace_problem(word: str) -> Optional[str]:
    """What is wrong with a gold token: empty, or the whitespace character it contains."""
    if not word:
        return "is empty"
    for char in word:
        if char.isspace():
            name = unicodedata.name(char, "a control character")
            return f"contains whitespace (U+{ord(char):04X} {name}); tokens cannot contain whitespace"
    return None


# --- validation ---------------------------------------------------------------------


def expect_int(value: Any, what: str, loc: Location) -> int:
    # bool is an int subclass, but `true` is never a valid offset.
    if isinstance(value, bool) or not isinstance(value, int):
        raise loc.error(f"{what} must be an integer, got {value!r}")
    return value


def expect_str(value: Any, what: str, loc: Location) -> str:
    if not isinstance(value, str):
        raise loc.error(f"{what} must be a string, got {value!r}")
    return value


def expect_list(value: Any, what: str, loc: Location) -> list:
    if not isinstance(value, list):
        raise loc.error(f"{what} must be a list, got {type(value).__name__}")
    return value


def check_span(start: int, end: int, n_tokens: int, what: str, loc: Location) -> None:
    """Validate an end-exclusive token span; `what` names the item as written in the source."""
    if end <= start:
        raise loc.error(f"{what}: end < start (empty or reversed span)")
    if start < 0 or end > n_tokens:
        raise loc.error(f"{what}: offsets out of range (document has {n_tokens} tokens)")


def note(summary: Optional[ConversionSummary], what: str, count: int = 1) -> None:
    """Count something repaired or dropped in the summary, if there is one."""
    if summary is not None:
        summary.note(what, count)


def dedupe(items: Iterable[T]) -> Tuple[List[T], int]:
    """Drop exact duplicates, keeping the first occurrence; also return how many went."""
    seen = set()
    unique: List[T] = []
    dropped = 0
    for item in items:
        key = tuple(item) if isinstance(item, list) else item
        if key in seen:
            dropped += 1
        else:
            seen.add(key)
            unique.append(item)
    return unique, dropped


# --- building docs ------------------------------------------------------------------


def make_doc(
    vocab: Vocab, sentences: Sequence[Sequence[str]], doc_key: str, loc: Location
) -> Doc:
    """A Doc from tokenized sentences, keeping the gold tokenization (no spaces given:
    spaCy's Corpus then keeps these tokens because doc.has_unknown_spaces)."""
    words: List[str] = []
    sent_starts: List[Union[bool, int, None]] = []
    for i, sentence in enumerate(sentences):
        if not sentence:
            raise loc.error(f"sentence {i} has no tokens")
        for j, word in enumerate(sentence):
            problem = whitespace_problem(word)
            if problem is not None:
                raise loc.error(f"sentence {i}, token {j}: token {word!r} {problem}")
            words.append(word)
            sent_starts.append(j == 0)
    if not words:
        raise loc.error("document has no tokens")
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc._.set(DOC_KEY_ATTR, doc_key)
    return doc


def set_entities(doc: Doc, entities: Sequence[LabeledSpan]) -> int:
    """Put entities in doc.ents, the ones that overlap in doc.spans[ENTS_OVERFLOW_KEY].

    Longest (so outermost) first, then leftmost, then input order: deterministic, and the
    flat layer keeps the most text. Every other token is marked O so the doc counts as
    annotated for NER even with no entities. Returns how many went to the overflow key.
    """
    order = sorted(range(len(entities)), key=lambda i: (-(entities[i][1] - entities[i][0]), entities[i][0], i))
    taken = [False] * len(doc)
    flat: List[LabeledSpan] = []
    overflow: List[LabeledSpan] = []
    for i in order:
        start, end, label = entities[i]
        if any(taken[start:end]):
            overflow.append(entities[i])
        else:
            taken[start:end] = [True] * (end - start)
            flat.append(entities[i])
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in sorted(flat)], default="outside")
    doc.spans[ENTS_OVERFLOW_KEY] = [Span(doc, s, e, label=label) for s, e, label in sorted(overflow)]
    return len(overflow)


def set_spans(doc: Doc, key: str, spans: Sequence[LabeledSpan]) -> None:
    """Store labelled spans (nesting allowed) under a span key, sorted by position."""
    doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in sorted(spans)]


def strip_span(
    text: str,
    start: int,
    end: int,
    loc: Location,
    what: str,
    summary: Optional[ConversionSummary],
    kind: str = "entities",
) -> Tuple[int, int]:
    """Character offsets without the whitespace the span starts or ends with (tokens
    never contain whitespace, so the span's ends must fall on tokens).

    kind: what the summary note calls the spans ("<kind> trimmed of surrounding whitespace").
    RAISES ConversionError: the span covers only whitespace.
    """
    new_start, new_end = start, end
    while new_start < new_end and text[new_start].isspace():
        new_start += 1
    while new_end > new_start and text[new_end - 1].isspace():
        new_end -= 1
    if new_start == new_end:
        raise loc.error(f"{what}: the span covers only whitespace")
    if (new_start, new_end) != (start, end) and summary is not None:
        summary.note(f"{kind} trimmed of surrounding whitespace")
    return new_start, new_end


# --- writing ------------------------------------------------------------------------


def progress(items: Iterable[T], desc: str, show: bool, total: Optional[int] = None) -> Iterator[T]:
    """Yield from items, with a tqdm bar on stderr when asked (closed even on errors)."""
    if not show:
        yield from items
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=total, unit="doc", file=sys.stderr, leave=False)
    try:
        for item in items:
            yield item
            bar.update()
    finally:
        bar.close()


def resolve_output_file(output_path: PathLike, input_path: PathLike) -> Path:
    """OUTPUT may be a file name or an existing directory (then <input stem>.spacy)."""
    output = Path(output_path)
    if output.is_dir():
        return output / (Path(input_path).stem + ".spacy")
    return output


def check_outputs(outputs: Iterable[Path], inputs: Iterable[PathLike], *, overwrite: bool = False) -> None:
    """Refuse, before any work, to write over an input or (without ``overwrite``) over an
    existing file.

    RAISES ConversionError: naming the output and the problem.
    """
    inputs = list(inputs)
    for output in outputs:
        problem = output_problem(output, inputs, overwrite=overwrite)
        if problem is not None:
            raise ConversionError(output, problem)


def convert_to_file(
    read: Callable[[ConversionSummary], Iterable[Doc]],
    input_path: PathLike,
    output_path: PathLike,
    *,
    desc: str,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """The body of a one-input, one-output ``convert_<format>``: check the output, read
    every doc (``read(summary)``, which may add notes), write them atomically, count.

    output_path: a .spacy file, or an existing directory (then <input stem>.spacy in it).
    overwrite: replace an existing output file (else ConversionError, before any work).
    """
    output = resolve_output_file(output_path, input_path)
    check_outputs([output], [input_path], overwrite=overwrite)
    summary = ConversionSummary()
    docs = list(progress(read(summary), desc=desc, show=show_progress))
    write_docbins({output: docs}, show_progress=show_progress)
    for doc in docs:
        summary.add_doc(doc)
    summary.outputs.append(str(output))
    return summary


def write_docbins(outputs: Dict[Path, Sequence[Doc]], *, show_progress: bool = False) -> None:
    """Write several DocBins so that either all of them are replaced or none is.

    Each goes to a temporary file in its target directory first (same file system, so
    os.replace is atomic); the targets are only replaced once every file is written. The
    temporary files are removed on any error (a killed run's are removed by the next).
    """
    temps: Dict[Path, str] = {}
    try:
        for path, docs in outputs.items():
            docbin = DocBin(store_user_data=True)
            # Serializing span groups dominates the time for coreference corpora.
            for doc in progress(docs, desc=f"writing {path.name}", show=show_progress, total=len(docs)):
                docbin.add(doc)
            fd, temp = make_temp(path)
            temps[path] = temp
            finish_temp(fd, temp, docbin.to_bytes())
        for path, temp in temps.items():
            os.replace(temp, path)
    finally:
        for temp in temps.values():
            if os.path.exists(temp):
                os.unlink(temp)
