"""spacy_hmtl.candidates: sentence ids, span enumeration, entity sources and the one gold
alignment policy shared by the span heads (hand-computed cases)."""
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_hmtl.candidates import (
    align_span_offsets,
    align_spans,
    entity_spans,
    enumerate_spans,
    has_entity_source,
    padded_sentence_ids,
    same_tokens,
    sentence_ids,
    sentence_ids_or_zeros,
)

NLP = spacy.blank("en")


def _doc(words, sent_starts=None, spaces=None):
    return Doc(NLP.vocab, words=words, spaces=spaces, sent_starts=sent_starts)


def test_sentence_ids_and_padding():
    doc = _doc(["a", "b", "c", "d", "e"], sent_starts=[True, False, True, False, False])
    assert sentence_ids(doc).tolist() == [0, 0, 1, 1, 1]
    assert sentence_ids(_doc(["a", "b"])) is None
    assert sentence_ids_or_zeros(_doc(["a", "b"])).tolist() == [0, 0]
    padded = padded_sentence_ids([doc, _doc(["x", "y"]), _doc(["z"], sent_starts=[True])], 6)
    # numbered from 1; padding and docs without boundaries stay 0 (never in a sentence)
    assert padded.tolist() == [[1, 1, 2, 2, 2, 0], [0] * 6, [0] * 6]
    assert padded_sentence_ids([_doc(["x", "y"])], 2) is None


def test_enumerate_spans_stays_inside_sentences():
    doc = _doc(["a", "b", "c", "d"], sent_starts=[True, False, True, False])
    lengths = torch.tensor([4])
    doc_idx, starts, ends = enumerate_spans(lengths, 3, padded_sentence_ids([doc], 4))
    assert list(zip(starts.tolist(), ends.tolist())) == [(0, 0), (0, 1), (1, 1), (2, 2), (2, 3), (3, 3)]
    _, starts, ends = enumerate_spans(lengths, 3)
    assert len(starts) == 4 + 3 + 2  # widths 1, 2, 3 without sentences


def test_entity_sources():
    doc = _doc(["Ann", "met", "Bob"])
    assert not has_entity_source(doc, "ents") and not has_entity_source(doc, "mentions")
    assert has_entity_source(_doc([]), "ents")  # an empty doc counts as annotated
    doc.set_ents([Span(doc, 0, 1, "PER")], default="outside")
    doc.spans["ents_overlapping"] = [Span(doc, 0, 3, "EVENT")]
    doc.spans["mentions"] = [Span(doc, 2, 3, "PER")]
    assert [(s.start, s.end, s.label_) for s in entity_spans(doc, "ents")] == [(0, 1, "PER"), (0, 3, "EVENT")]
    assert [(s.start, s.end) for s in entity_spans(doc, "mentions")] == [(2, 3)]
    assert entity_spans(doc, "missing") == [] and has_entity_source(doc, "ents")


def test_alignment_policy_identical_and_retokenized():
    ref = _doc(["New", "York", "-", "based", "firm"], spaces=[True, False, False, True, False])
    same = _doc(["New", "York", "-", "based", "firm"], spaces=[True, False, False, True, False])
    eg = Example(same, ref)
    assert same_tokens(same, ref)
    assert align_span_offsets(eg, [(0, 2), (3, 5)]) == [(0, 2), (3, 5)]
    # predicted tokenization merges "York-based": spans map by characters
    merged = _doc(["New", "York-based", "firm"], spaces=[True, True, False])
    eg = Example(merged, ref)
    assert not same_tokens(merged, ref)
    assert align_span_offsets(eg, [(4, 5), (0, 1)]) == [(2, 3), (0, 1)]
    # "New York" ends inside the predicted token "York-based": no counterpart, dropped
    assert align_span_offsets(eg, [(0, 2)]) == [None]
    ref.spans["m"] = [Span(ref, 4, 5, "ORG"), Span(ref, 0, 2, "LOC"), Span(ref, 0, 1, "LOC")]
    assert [(s.label_, o) for s, o in align_spans(eg, ref.spans["m"])] == [("ORG", (2, 3)), ("LOC", (0, 1))]
