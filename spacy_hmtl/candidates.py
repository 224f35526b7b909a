"""Candidate spans and gold alignment, shared by the span heads.

One home for what ``hmtl_mentions``, ``hmtl_relations`` and ``hmtl_coref`` each need
before their torch modules run:

* sentence ids of a doc's tokens (candidates never cross a sentence boundary);
* the enumeration of every span up to a width inside one sentence, for a padded batch;
* the argument spans of an entity source (``doc.ents`` or a ``doc.spans`` key);
* the alignment of gold spans of ``eg.reference`` to ``eg.predicted``, with one policy:
  identical tokenizations map spans to themselves; otherwise spaCy's character alignment
  (``Example.get_aligned_spans_y2x``) maps each span, and a span with no counterpart is
  dropped.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example

from .annotations import ENTS_OVERFLOW_KEY

ENTS_SOURCE = "ents"


# --- sentences ------------------------------------------------------------------------


def sentence_ids(doc: Doc) -> Optional[numpy.ndarray]:
    """The sentence index (from 0) of every token, or None when the doc has no sentence
    boundaries (an empty doc has none).

    doc (Doc): the doc.
    RETURNS (Optional[numpy.ndarray]): int64 array of length ``len(doc)``, or None.
    """
    if len(doc) == 0 or not doc.has_annotation("SENT_START"):
        return None
    starts = doc.to_array("SENT_START") == 1
    starts[0] = True
    return numpy.cumsum(starts).astype(numpy.int64) - 1


def lowercase_keys(doc: Doc) -> numpy.ndarray:
    """The hash of every token's lowercased text, as int64 (spaCy's uint64 hashes, same
    bits), for comparing words across a doc without the vocab.

    doc (Doc): the doc.
    RETURNS (numpy.ndarray): int64 array of length ``len(doc)``.
    """
    if len(doc) == 0:
        return numpy.zeros(0, dtype=numpy.int64)
    return numpy.ascontiguousarray(doc.to_array("LOWER"), dtype=numpy.uint64).view(numpy.int64)


def sentence_ids_or_zeros(doc: Doc) -> numpy.ndarray:
    """Sentence index of every token (all zeros when the doc has no sentence boundaries)."""
    ids = sentence_ids(doc)
    return numpy.zeros(len(doc), dtype=numpy.int64) if ids is None else ids


def sentence_segments(docs: Sequence[Doc]) -> numpy.ndarray:
    """``(n_segments, 3)`` int64 ``(doc index, first token, length)`` of every sentence of
    ``docs`` (a doc without sentence boundaries is one segment; empty docs have none).

    docs (Sequence[Doc]): the docs of a batch, in batch order.
    RETURNS (numpy.ndarray): the segments, in doc then token order.
    """
    blocks = []
    for i, doc in enumerate(docs):
        if not len(doc):
            continue
        ids = sentence_ids_or_zeros(doc)
        starts = numpy.flatnonzero(numpy.diff(ids, prepend=-1))
        lengths = numpy.diff(numpy.append(starts, len(doc)))
        blocks.append(numpy.stack([numpy.full_like(starts, i), starts, lengths], axis=1))
    if not blocks:
        return numpy.zeros((0, 3), dtype=numpy.int64)
    return numpy.concatenate(blocks).astype(numpy.int64)


def padded_sentence_ids(docs: Sequence[Doc], max_len: int) -> Optional[torch.Tensor]:
    """``(batch, max_len)`` sentence ids of a padded batch, numbered from 1 so that padding
    (0) is never in a doc's sentence; None when no doc (of 2+ tokens) has boundaries."""
    per_doc = [sentence_ids(doc) if len(doc) > 1 else None for doc in docs]
    if all(ids is None for ids in per_doc):
        return None
    padded = torch.zeros((len(docs), max_len), dtype=torch.int64)
    for i, ids in enumerate(per_doc):
        if ids is not None:
            padded[i, : len(ids)] = torch.from_numpy(ids + 1)
    return padded


# --- span enumeration -----------------------------------------------------------------


def enumerate_spans(
    lengths: torch.Tensor, max_width: int, sent_ids: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All candidate spans of a padded batch, vectorized.

    lengths (torch.Tensor): ``(batch,)`` number of tokens per doc.
    max_width (int): the widest candidate span, in tokens.
    sent_ids (Optional[torch.Tensor]): ``(batch, >= max_len)`` sentence index of each token
        (``padded_sentence_ids``); spans crossing a sentence boundary are left out. None:
        no sentence constraint.
    RETURNS (Tuple[torch.Tensor, torch.Tensor, torch.Tensor]): ``doc_idx``, ``starts`` and
        ``ends`` (inclusive), int64, ordered by doc, start, then width.
    """
    lengths = lengths.to("cpu", torch.int64)
    batch = int(lengths.shape[0])
    time = int(lengths.max()) if batch else 0
    if batch == 0 or time == 0 or max_width < 1:
        empty = torch.zeros((0,), dtype=torch.int64)
        return empty, empty.clone(), empty.clone()
    starts = torch.arange(time).view(1, time, 1)
    ends = starts + torch.arange(max_width).view(1, 1, max_width)
    valid = ends < lengths.view(batch, 1, 1)  # (batch, time, max_width)
    if sent_ids is not None:
        sent_ids = sent_ids.to("cpu", torch.int64)[:, :time]
        if sent_ids.shape != (batch, time):
            raise ValueError(f"sent_ids must be (batch, >= max length), got {tuple(sent_ids.shape)}")
        clamped = ends.clamp(max=time - 1).expand(batch, time, max_width)
        sent_end = torch.gather(sent_ids, 1, clamped.reshape(batch, -1)).view(batch, time, max_width)
        valid &= sent_ids.view(batch, time, 1) == sent_end
    doc_idx, start, width = valid.nonzero(as_tuple=True)
    return doc_idx, start, start + width


# --- entity sources -------------------------------------------------------------------


def entity_spans(doc: Doc, source: str) -> List[Span]:
    """The argument candidates of a doc from an entity source.

    source (str): ``"ents"`` for ``doc.ents`` (plus ``doc.spans["ents_overlapping"]``, the
        entities that overlap others, when present), or a ``doc.spans`` key. A missing key
        gives no spans.
    """
    if source == ENTS_SOURCE:
        spans = list(doc.ents)
        if ENTS_OVERFLOW_KEY in doc.spans:
            spans.extend(doc.spans[ENTS_OVERFLOW_KEY])
        return spans
    if source in doc.spans:
        return list(doc.spans[source])
    return []


def entity_source_name(source: str) -> str:
    """Where an entity source lives, for messages: ``doc.ents`` or ``doc.spans["KEY"]``."""
    return "doc.ents" if source == ENTS_SOURCE else f'doc.spans["{source}"]'


def has_entity_source(doc: Doc, source: str) -> bool:
    """Whether an entity pipe annotated the doc's entity source (an empty doc always
    counts as annotated): ``doc.ents`` set (even to nothing) for ``"ents"``, the key
    present in ``doc.spans`` otherwise."""
    if not len(doc):
        return True
    if source == ENTS_SOURCE:
        return doc.has_annotation("ENT_IOB")
    return source in doc.spans


# --- gold alignment -------------------------------------------------------------------


def same_tokens(predicted: Doc, reference: Doc) -> bool:
    """Whether two docs have the same tokens (same character offsets and lengths): then a
    reference span is the predicted span with the same token offsets."""
    return len(predicted) == len(reference) and all(
        a.idx == b.idx and len(a) == len(b) for a, b in zip(predicted, reference)
    )


def align_span_offsets(eg: Example, offsets: Iterable[Tuple[int, int]]) -> List[Optional[Tuple[int, int]]]:
    """The ``(start, end)`` in ``eg.predicted`` of each ``(start, end)`` token span of
    ``eg.reference``; None for a span with no counterpart (see the module docstring)."""
    offsets = list(offsets)
    if same_tokens(eg.predicted, eg.reference):
        return [(int(s), int(e)) for s, e in offsets]
    aligned: List[Optional[Tuple[int, int]]] = []
    for start, end in offsets:
        spans = eg.get_aligned_spans_y2x([eg.reference[start:end]], allow_overlap=True)
        aligned.append((spans[0].start, spans[0].end) if spans else None)
    return aligned


def align_spans(eg: Example, spans: Iterable[Span]) -> List[Tuple[Span, Tuple[int, int]]]:
    """Each reference span that has a counterpart in ``eg.predicted``, with its
    ``(start, end)`` there (spans without one are dropped)."""
    spans = list(spans)
    aligned = align_span_offsets(eg, [(span.start, span.end) for span in spans])
    return [(span, offsets) for span, offsets in zip(spans, aligned) if offsets is not None]
