"""layers/segments.py and the sentence contexts built on it (encoder levels, relation
BiLSTM): a sentence's states and relations must not depend on the sentences around it."""
import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc

from spacy_hmtl.candidates import sentence_segments
from spacy_hmtl.layers.bilstm import BiLSTM
from spacy_hmtl.layers.segments import gather_segments, run_per_segment, scatter_segments

from helpers import DOC_SPECS, TINY_CONFIG, build_tiny_nlp


def test_gather_and_scatter_hand_computed():
    X = torch.arange(10, dtype=torch.float32).reshape(2, 5, 1)  # row 0: 0..4, row 1: 5..9
    segments = torch.tensor([[0, 0, 2], [0, 2, 3], [1, 0, 4]])
    gathered, lengths = gather_segments(X, segments)
    assert lengths.tolist() == [2, 3, 4]
    assert gathered[..., 0].tolist() == [[0, 1, 0, 0], [2, 3, 4, 0], [5, 6, 7, 8]]
    back = scatter_segments(gathered, segments, 2, 5)
    # row 1 token 4 is in no segment: zero
    assert back[..., 0].tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 0]]


def test_sentence_segments_of_docs():
    vocab = spacy.blank("en").vocab
    two = Doc(vocab, words="A b . C d e".split(), sent_starts=[True, False, False, True, False, False])
    plain = Doc(vocab, words="x y".split())  # no boundaries: one segment
    empty = Doc(vocab, words=[])
    assert sentence_segments([two, empty, plain]).tolist() == [[0, 0, 3], [0, 3, 3], [2, 0, 2]]
    assert sentence_segments([empty]).shape == (0, 3)


def test_run_per_segment_equals_each_sentence_alone_and_passes_gradients():
    torch.manual_seed(0)
    lstm = BiLSTM(3, 4).eval()
    X = torch.randn(2, 7, 3, requires_grad=True)
    segments = torch.tensor([[0, 0, 3], [0, 3, 4], [1, 0, 4]])
    Y = run_per_segment(lstm, X, segments)
    for row, start, length in segments.tolist():
        alone = lstm(X[row : row + 1, start : start + length], torch.tensor([length]))
        torch.testing.assert_close(Y[row, start : start + length], alone[0], rtol=1e-5, atol=1e-6)
    whole = lstm(X[:1], torch.tensor([7]))
    assert not torch.allclose(Y[0, 3:7], whole[0, 3:7], atol=1e-4)  # the doc context differs
    Y.sum().backward()
    assert X.grad[0].abs().sum(dim=1).gt(0).all() and X.grad[1, :4].abs().sum() > 0
    assert X.grad[1, 4:].abs().sum() == 0  # padding: in no segment


def _with_contexts(context: str) -> str:
    config = TINY_CONFIG.replace("level_depths = [1, 1]\n", f'level_depths = [1, 1]\ncontext = "{context}"\n', 1)
    marker = "[components.hmtl_relations.model]\n"
    return config.replace(marker, f'{marker}lstm_context = "{context}"\n', 1)


@pytest.mark.parametrize("context", ["doc", "sentence"])
def test_a_sentence_gets_the_same_annotations_alone_or_after_another(context):
    nlp, _ = build_tiny_nlp(_with_contexts(context))
    first, second = DOC_SPECS[1][0][:6], DOC_SPECS[0][0]  # "Our tagger uses a CRF ." + doc 0
    alone = nlp(Doc(nlp.vocab, words=second, sent_starts=DOC_SPECS[0][1]))
    joined = nlp(Doc(nlp.vocab, words=first + second, sent_starts=[1, 0, 0, 0, 0, 0] + DOC_SPECS[0][1]))
    shift = len(first)
    assert alone._.hmtl_relations_data, "the tiny pipeline should find relations here"
    states = nlp.get_pipe("hmtl_encoder").model.predict
    states_alone, states_joined = states([alone])[0], states([joined])[0][shift:]
    later = [r for r in joined._.hmtl_relations_data if r[0] >= shift]
    if context == "sentence":
        np.testing.assert_allclose(states_joined, states_alone, rtol=1e-4, atol=1e-5)
        assert [(e.start - shift, e.end - shift, e.label_) for e in joined.ents if e.start >= shift] == [
            (e.start, e.end, e.label_) for e in alone.ents
        ]
        assert [r[:5] for r in later] == [[r[0] + shift, r[1] + shift, r[2] + shift, r[3] + shift, r[4]] for r in alone._.hmtl_relations_data]
        np.testing.assert_allclose([r[5] for r in later], [r[5] for r in alone._.hmtl_relations_data], rtol=1e-4)
    else:  # the whole doc is read: the first sentence changes the second one's states
        assert not np.allclose(states_joined, states_alone, atol=1e-4)


def test_an_unknown_context_is_a_clear_error():
    from helpers import nlp_from_config

    with pytest.raises(Exception, match="context must be one of"):
        nlp_from_config(_with_contexts("paragraph"))


def test_sentence_context_on_empty_tiny_and_unsegmented_docs():
    nlp, _ = build_tiny_nlp(_with_contexts("sentence"), steps=2)
    vocab = nlp.vocab
    docs = [
        Doc(vocab, words=[]),
        Doc(vocab, words=["Word"]),
        Doc(vocab, words="no sentence boundaries here at all".split()),  # one segment
        Doc(vocab, words=["A", ".", "B", "."], sent_starts=[1, 0, 1, 0]),
    ]
    for batch in ([docs[0]], docs):  # a batch of only empty docs, and a mixed one
        out = list(nlp.pipe([d.copy() for d in batch]))
        assert [len(d) for d in out] == [len(d) for d in batch]
        for doc in out:
            assert doc._.hmtl_relations_data is not None
