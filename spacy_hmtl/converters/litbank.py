"""LitBank -> .spacy: one Doc per novel excerpt with nested entities, typed mentions
(with their kind) and coreference, split by one fold of the ten-fold partition.

Per document (file stem ``<doc>``) in the litbank directory:

* ``coref/conll/<doc>.conll``: tokens, sentences and coreference clusters (bracket
  column, singletons included);
* ``coref/tsv/<doc>.ann``: ``MENTION`` lines -> ``doc.spans["mentions"]`` labelled with
  the entity type (PER, LOC, ...) and ``doc.spans["mention_kinds"]`` (PROP/NOM/PRON);
* ``entities/brat/<doc>.{txt,ann}``: nested ACE entities by character offset into the
  .txt, aligned to the conll tokens -> ``doc.ents`` + the overflow key.

COREF/COP/APPOS lines of the .ann are not converted: the conll brackets carry the
clusters, and nothing downstream uses copula/apposition links.
"""
import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ..annotations import MENTIONS_KEY, set_coref_clusters
from .brat import parse_text_bound
from .common import (
    ConversionError,
    ConversionSummary,
    LabeledSpan,
    Location,
    PathLike,
    check_outputs,
    check_span,
    make_doc,
    progress,
    read_text,
    set_entities,
    set_spans,
    split_lines,
    strip_span,
    write_docbins,
)

MENTION_KINDS_KEY = "mention_kinds"
SPLITS = ("train", "dev", "test")
MENTION_KINDS = ("PROP", "NOM", "PRON")
_BRACKET = re.compile(r"^(\()?(\d+)(\))?$")


def read_litbank(
    directory: PathLike,
    doc_ids: Optional[Iterable[str]] = None,
    *,
    vocab: Optional[Vocab] = None,
    summary: Optional[ConversionSummary] = None,
) -> Iterator[Doc]:
    """Yield one Doc per LitBank document (all of coref/conll by default, sorted).

    doc_ids: file stems (``105_persuasion_brat``) or split entries (``...brat.tsv``).
    RAISES ConversionError: malformed or inconsistent input, naming file, line and problem.
    """
    root = Path(directory)
    vocab = vocab if vocab is not None else Vocab()
    if doc_ids is None:
        conll_dir = root / "coref" / "conll"
        if not conll_dir.is_dir():
            raise ConversionError(conll_dir, "not a LitBank directory (coref/conll is missing)")
        doc_ids = sorted(p.stem for p in conll_dir.glob("*.conll"))
    for doc_id in doc_ids:
        yield read_litbank_doc(root, _stem(doc_id), vocab=vocab, summary=summary)


def read_fold(directory: PathLike, fold: int = 0) -> Dict[str, List[str]]:
    """The document stems of each split of one fold of litbank_tenfold_splits."""
    fold_dir = Path(directory) / "litbank_tenfold_splits" / str(fold)
    if not fold_dir.is_dir():
        raise ConversionError(fold_dir, f"fold {fold} not found (expected litbank_tenfold_splits/{fold}/)")
    splits = {}
    for split in SPLITS:
        path = fold_dir / f"{split}.ids"
        stems = [_stem(line.strip()) for line in split_lines(read_text(path)) if line.strip()]
        if len(set(stems)) != len(stems):
            raise ConversionError(path, "a document is listed twice")
        splits[split] = stems
    return splits


def convert_litbank(
    input_path: PathLike,
    output_path: PathLike,
    *,
    fold: int = 0,
    show_progress: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Convert the LitBank directory to OUTPUT/{train,dev,test}.spacy for one fold.

    All three files are written, or (on any error) none is touched.
    overwrite: replace existing output files (else ConversionError, before any work).
    """
    check_outputs([Path(output_path) / f"{split}.spacy" for split in SPLITS], [], overwrite=overwrite)
    splits = read_fold(input_path, fold)
    vocab = Vocab()
    parts: Dict[str, ConversionSummary] = {}
    outputs: Dict[Path, Sequence[Doc]] = {}
    for split, stems in splits.items():
        parts[split] = ConversionSummary()
        reader = read_litbank(input_path, stems, vocab=vocab, summary=parts[split])
        docs = progress(reader, desc=f"litbank {split}", show=show_progress, total=len(stems))
        outputs[Path(output_path) / f"{split}.spacy"] = list(docs)
    write_docbins(outputs, show_progress=show_progress)
    summary = ConversionSummary()
    for (path, split_docs), (split, part) in zip(outputs.items(), parts.items()):
        for doc in split_docs:
            part.add_doc(doc)
        part.outputs.append(str(path))
        summary.parts[split] = part
        summary.merge(part)
    return summary


def read_litbank_doc(
    directory: PathLike,
    stem: str,
    *,
    vocab: Optional[Vocab] = None,
    summary: Optional[ConversionSummary] = None,
) -> Doc:
    """Read the three annotation layers of one LitBank document into a Doc.

    summary: receives notes about repaired input (entities expanded to whole tokens).
    """
    root = Path(directory)
    vocab = vocab if vocab is not None else Vocab()
    conll_path = root / "coref" / "conll" / f"{stem}.conll"
    sentences, clusters = _read_conll(conll_path, stem)
    doc = make_doc(vocab, sentences, stem, Location(conll_path, doc=stem))
    set_coref_clusters(doc, clusters, span_groups=False)

    mentions, kinds = _read_mentions(root / "coref" / "tsv" / f"{stem}.ann", sentences, stem)
    set_spans(doc, MENTIONS_KEY, mentions)
    set_spans(doc, MENTION_KINDS_KEY, kinds)

    brat = root / "entities" / "brat"
    set_entities(doc, _read_brat(brat / f"{stem}.ann", brat / f"{stem}.txt", doc, stem, summary))
    return doc


def _stem(doc_id: str) -> str:
    # Split files list "<doc>.tsv"; the other layers share the stem.
    return doc_id[: -len(".tsv")] if doc_id.endswith(".tsv") else doc_id


def _read_conll(path: Path, stem: str) -> Tuple[List[List[str]], List[List[Tuple[int, int]]]]:
    """Tokens per sentence and clusters (document token offsets, end exclusive)."""
    sentences: List[List[str]] = [[]]
    n_columns: Optional[int] = None
    open_mentions: Dict[int, List[Tuple[int, int]]] = {}  # cluster id -> stack of (start, line)
    clusters: Dict[int, List[Tuple[int, int]]] = {}
    n_tokens = 0
    in_doc = False
    for line_no, line in enumerate(split_lines(read_text(path)), start=1):
        loc = Location(path, line=line_no, doc=stem)
        if line.startswith("#begin document"):
            if in_doc or n_tokens:
                raise loc.error("only one document per file is supported")
            in_doc = True
            continue
        if line.startswith("#end document"):
            in_doc = False
            continue
        if not line.strip():
            if sentences[-1]:
                sentences.append([])
            continue
        if not in_doc:
            raise loc.error("token line outside '#begin document' ... '#end document'")
        columns = line.split("\t")
        if n_columns is None:
            n_columns = len(columns)
            if n_columns < 5:
                raise loc.error(f"expected at least 5 tab-separated columns, found {n_columns}")
        elif len(columns) != n_columns:
            raise loc.error(f"ragged columns: {len(columns)} columns where the file has {n_columns}")
        if columns[2] != str(len(sentences[-1])):
            raise loc.error(f"token index {columns[2]!r} should be {len(sentences[-1])} (sentence position)")
        token = columns[3]
        for part in _coref_parts(columns[-1]):
            match = _BRACKET.match(part)
            if match is None or not (match.group(1) or match.group(3)):
                raise loc.error(f"malformed coreference field {columns[-1]!r}")
            cluster_id = int(match.group(2))
            if match.group(1):
                open_mentions.setdefault(cluster_id, []).append((n_tokens, line_no))
            if match.group(3):
                if not open_mentions.get(cluster_id):
                    raise loc.error(f"coreference mention of cluster {cluster_id} closes but was never opened")
                start, _ = open_mentions[cluster_id].pop()
                clusters.setdefault(cluster_id, []).append((start, n_tokens + 1))
        sentences[-1].append(token)
        n_tokens += 1
    if in_doc:
        raise Location(path, doc=stem).error("missing '#end document' (truncated file?)")
    for cluster_id, stack in open_mentions.items():
        if stack:
            raise Location(path, line=stack[-1][1], doc=stem).error(
                f"coreference mention of cluster {cluster_id} is never closed"
            )
    if not sentences[-1]:
        sentences.pop()
    return sentences, [clusters[k] for k in sorted(clusters)]


def _coref_parts(field: str) -> List[str]:
    field = field.strip()
    if field in ("", "_", "-"):
        return []
    return field.split("|")


def _read_mentions(
    path: Path, sentences: Sequence[Sequence[str]], stem: str
) -> Tuple[List[LabeledSpan], List[LabeledSpan]]:
    """MENTION lines -> (spans labelled by entity type, the same spans labelled by kind)."""
    offsets = [0]
    for sentence in sentences:
        offsets.append(offsets[-1] + len(sentence))
    words = [w for sentence in sentences for w in sentence]
    typed: List[LabeledSpan] = []
    kinds: List[LabeledSpan] = []
    # A document without mentions has an empty .ann file.
    for line_no, line in enumerate(split_lines(read_text(path, allow_empty=True)), start=1):
        if not line.startswith("MENTION\t"):
            continue
        loc = Location(path, line=line_no, doc=stem)
        fields = line.split("\t")
        if len(fields) != 9:
            raise loc.error(f"a MENTION line has 9 tab-separated fields, found {len(fields)}")
        _, tid, s_sent, s_tok, e_sent, e_tok, text, ent_type, kind = fields
        try:
            s_sent_i, s_tok_i, e_sent_i, e_tok_i = (int(v) for v in (s_sent, s_tok, e_sent, e_tok))
        except ValueError:
            raise loc.error(f"mention {tid}: sentence/token offsets must be integers") from None
        what = f"mention {tid} ({s_sent}:{s_tok}-{e_sent}:{e_tok})"
        for sent_i, tok_i in ((s_sent_i, s_tok_i), (e_sent_i, e_tok_i)):
            if not 0 <= sent_i < len(sentences) or not 0 <= tok_i < len(sentences[sent_i]):
                raise loc.error(f"{what}: offsets out of range (sentence {sent_i}, token {tok_i})")
        start = offsets[s_sent_i] + s_tok_i
        end = offsets[e_sent_i] + e_tok_i + 1  # inclusive -> exclusive
        check_span(start, end, len(words), what, loc)
        if " ".join(words[start:end]) != text:
            raise loc.error(f"{what}: text {text!r} does not match the tokens {' '.join(words[start:end])!r}")
        if kind not in MENTION_KINDS:
            raise loc.error(f"{what}: mention kind {kind!r} is not one of {', '.join(MENTION_KINDS)}")
        if not ent_type:
            raise loc.error(f"{what}: empty entity type")
        typed.append((start, end, ent_type))
        kinds.append((start, end, kind))
    return typed, kinds


def _read_brat(
    ann_path: Path, txt_path: Path, doc: Doc, stem: str, summary: Optional[ConversionSummary] = None
) -> List[LabeledSpan]:
    """Brat text-bound annotations, mapped from characters to the doc's tokens."""
    text = read_text(txt_path)
    starts, ends = _align_tokens(text, [t.text for t in doc], txt_path, stem)
    entities: List[LabeledSpan] = []
    for line_no, line in enumerate(split_lines(read_text(ann_path, allow_empty=True)), start=1):
        if not line.startswith("T"):
            continue  # relations, notes, ...: not part of the entity layer
        loc = Location(ann_path, line=line_no, doc=stem)
        tid, label, fragments, _ = parse_text_bound(line, loc, text)
        if len(fragments) != 1:
            raise loc.error(f"{tid}: discontinuous spans are not supported")
        (cs, ce), what = fragments[0], f"entity {tid} {fragments[0]}"
        cs, ce = strip_span(text, cs, ce, loc, what, summary)
        # 21 LitBank entities end inside a word ("a desolate coas") or cover part of a
        # hyphenated token ("home" in "home-ceremonies"): expand them to whole tokens.
        first = _token_at(starts, cs)
        last = _token_at(ends, ce, inclusive_end=True)
        if (cs not in starts or ce not in ends) and summary is not None:
            summary.note("entities expanded to token boundaries")
        entities.append((first, last + 1, label))
    return entities


def _token_at(boundaries: Dict[int, int], char: int, inclusive_end: bool = False) -> int:
    """The token that contains a character offset (boundaries: offset -> token index)."""
    if char in boundaries:
        return boundaries[char]
    if inclusive_end:
        # The token whose end is the first one after `char`.
        return boundaries[min(b for b in boundaries if b > char)]
    # The token whose start is the last one before `char`.
    return boundaries[max(b for b in boundaries if b < char)]


def _align_tokens(text: str, words: Sequence[str], path: Path, stem: str) -> Tuple[Dict[int, int], Dict[int, int]]:
    """Character start -> token index and character end -> token index of each token,
    found by walking the text (tokens in order, separated by whitespace)."""
    starts: Dict[int, int] = {}
    ends: Dict[int, int] = {}
    pos = 0
    for i, word in enumerate(words):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text[pos : pos + len(word)] != word:
            line = text.count("\n", 0, pos) + 1
            raise ConversionError(
                path,
                f"the text does not match the conll tokens: expected token {i} {word!r}, "
                f"found {text[pos:pos + len(word)]!r}",
                line=line,
                doc=stem,
            )
        starts[pos] = i
        ends[pos + len(word)] = i
        pos += len(word)
    if text[pos:].strip():
        raise ConversionError(path, "the text has more tokens than the conll file", doc=stem)
    return starts, ends
