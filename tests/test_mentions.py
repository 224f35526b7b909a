"""Tests of the ``hmtl_mentions`` head (span-based mention detection) and its scorer.

The stand-in encoder of ``helpers`` (a plain spaCy ``tok2vec`` pipe +
``spacy.Tok2VecListener.v1``) takes the place of the HMTL encoder's listener.
"""
import warnings

import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_hmtl.mentions.scorer import make_mentions_scorer, score_mentions
from spacy_hmtl.layers.torch_head import HeadBatch
from spacy_hmtl.candidates import enumerate_spans
from spacy_hmtl.mentions.torch_module import SpanClassifier

from helpers import STANDIN_WIDTH, factory_meta, make_head_nlp

torch.set_num_threads(1)

# The stand-in tok2vec is one CNN layer deep here (two elsewhere): the trained_nlp_examples
# fixture's expectations below were tuned on that network.
STANDIN_DEPTH = 1

# (text, [(start, end exclusive, label)]): nested mentions and pronouns.
TRAIN_DATA = [
    ("the president of France said he would come", [(0, 4, "PER"), (3, 4, "GPE"), (5, 6, "PER")]),
    ("Marie Curie lived in Paris with her husband", [(0, 2, "PER"), (4, 5, "GPE"), (6, 7, "PER"), (6, 8, "PER")]),
    ("the old king of Spain smiled", [(0, 5, "PER"), (4, 5, "GPE")]),
    ("she visited the capital of Italy", [(0, 1, "PER"), (2, 6, "GPE"), (5, 6, "GPE")]),
]


# the head's model in these tests (over the stand-in encoder)
MENTIONS_MODEL = {
    "@architectures": "spacy_hmtl.SpanMentionDetector.v1",
    "max_width": 8,
    "hidden_width": 64,
    "width_embedding": 16,
    "dropout": 0.0,
}


def make_example(nlp, text, spans, key="mentions"):
    predicted = nlp.make_doc(text)
    reference = predicted.copy()
    if spans is not None:
        reference.spans[key] = [Span(reference, s, e, label=label) for s, e, label in spans]
    return Example(predicted, reference)


def span_tuples(doc, key="mentions"):
    return [(s.start, s.end, s.label_) for s in doc.spans[key]]


@pytest.fixture(scope="module")
def trained_nlp_examples():
    """``(nlp, examples)``: the stand-in + ``hmtl_mentions`` pipeline overfitted on
    TRAIN_DATA and a doc without mention annotation."""
    fix_random_seed(0)
    nlp = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    examples = [make_example(nlp, text, spans) for text, spans in TRAIN_DATA]
    # A doc without mention annotation (no key) in the training data: must be ignored.
    examples.append(make_example(nlp, "the queen of England waved", None))
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(80):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples


# --- candidates and the torch module ------------------------------------------------------


def test_enumerate_spans_counts_and_order():
    doc_idx, starts, ends = enumerate_spans(torch.tensor([5, 0, 2]), max_width=3)
    spans = list(zip(doc_idx.tolist(), starts.tolist(), ends.tolist()))
    expected = [(0, s, s + w) for s in range(5) for w in range(3) if s + w < 5]
    expected += [(2, 0, 0), (2, 0, 1), (2, 1, 1)]
    assert spans == expected
    # n * w - w * (w - 1) / 2 candidates for a doc of n >= w tokens
    assert len([s for s in spans if s[0] == 0]) == 5 * 3 - 3
    empty = enumerate_spans(torch.tensor([0, 0]), max_width=8)
    assert all(t.numel() == 0 for t in empty)
    assert all(t.numel() == 0 for t in enumerate_spans(torch.zeros((0,), dtype=torch.int64), 8))


def test_enumerate_spans_respects_sentences():
    sent_ids = torch.tensor([[1, 1, 1, 2, 2, 0]])  # two sentences, then padding
    doc_idx, starts, ends = enumerate_spans(torch.tensor([5]), max_width=4, sent_ids=sent_ids)
    spans = set(zip(starts.tolist(), ends.tolist()))
    assert (0, 2) in spans and (3, 4) in spans
    assert not any(s <= 2 < e for s, e in spans), "a span crosses the sentence boundary"
    assert len(spans) == 6 + 3


def _naive_logits(module, X, doc_idx, starts, ends):
    """The span classifier written plainly, one span at a time: an FFNN over the
    concatenation [x_start; x_end; attention-pooled x; width embedding]."""
    h = module.hidden_width
    weight, bias = module.project.weight, module.project.bias
    w_start, w_end, w_pool = weight[:h], weight[h : 2 * h], weight[2 * h :]
    b_start, b_end, b_pool = bias[:h], bias[h : 2 * h], bias[2 * h :]
    w_first = torch.cat([w_start, w_end, w_pool, module.width_project.weight], dim=1)
    b_first = b_start + b_end + b_pool
    rows = []
    for d, s, e in zip(doc_idx.tolist(), starts.tolist(), ends.tolist()):
        tokens = X[d, s : e + 1]
        alpha = torch.softmax(module.attention(tokens).squeeze(-1), dim=0)
        pooled = (alpha.unsqueeze(-1) * tokens).sum(0)
        width = module.width_embed(torch.tensor(min(e - s, module.max_width - 1)))
        rows.append(torch.cat([X[d, s], X[d, e], pooled, width]) @ w_first.T + b_first)
    return module.ffnn(torch.stack(rows))


def test_span_classifier_matches_naive_and_chunking_is_exact():
    torch.manual_seed(0)
    module = SpanClassifier(n_in=6, n_labels=3, max_width=4, hidden_width=8, width_embedding=5, dropout=0.0)
    module.eval()
    X = torch.randn(2, 7, 6)
    lengths = torch.tensor([7, 4])
    doc_idx, starts, ends = enumerate_spans(lengths, 4)
    with torch.no_grad():
        logits = module(X, doc_idx, starts, ends)
        assert logits.shape == (doc_idx.shape[0], 4)
        assert torch.allclose(logits, _naive_logits(module, X, doc_idx, starts, ends), atol=1e-5)
        # Changing tokens outside a span (or padding) does not change its logits.
        X2 = X.clone()
        X2[0, 5:] += 10.0
        X2[1] += 3.0
        X2[1, :4] = X[1, :4]
        inside = ends < 5
        assert torch.allclose(logits[inside], module(X2, doc_idx, starts, ends)[inside], atol=1e-6)
    full = module.decode(X, doc_idx, starts, ends, threshold=0.2, chunk_size=10**6)
    chunked = module.decode(X, doc_idx, starts, ends, threshold=0.2, chunk_size=3)
    for a, b in zip(full, chunked):
        assert torch.allclose(a.float(), b.float())
    everything = module.decode(X, doc_idx, starts, ends, threshold=0.0, chunk_size=5)
    assert everything[0].tolist() == list(range(doc_idx.shape[0]))
    assert module.loss(X, doc_idx[:0], starts[:0], ends[:0], doc_idx[:0]).item() == 0.0
    # Gradients reach only the tokens of the candidate spans' docs.
    Xg = X.clone().requires_grad_(True)
    module.loss(Xg, doc_idx[doc_idx == 1], starts[doc_idx == 1], ends[doc_idx == 1],
                torch.ones_like(doc_idx[doc_idx == 1])).backward()
    assert Xg.grad[0].abs().sum().item() == 0.0 and Xg.grad[1, 4:].abs().sum().item() == 0.0
    assert Xg.grad[1, :4].abs().sum().item() > 0.0


# --- training and prediction --------------------------------------------------------------------


def test_overfit_nested_mentions(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    scores = nlp.evaluate(examples)
    assert scores["mentions_f"] == 1.0
    assert scores["mentions_p"] == 1.0 and scores["mentions_r"] == 1.0
    assert set(scores["mentions_per_type"]) == {"PER", "GPE"}
    doc = nlp(TRAIN_DATA[0][0])
    assert span_tuples(doc) == [(0, 4, "PER"), (3, 4, "GPE"), (5, 6, "PER")]  # nested + pronoun
    scores_attr = doc.spans["mentions"].attrs["scores"]
    assert isinstance(scores_attr, list) and len(scores_attr) == 3
    assert all(isinstance(s, float) and 0.5 < s <= 1.0 for s in scores_attr)
    assert nlp.get_pipe("hmtl_mentions").labels == ("GPE", "PER")


def test_unannotated_docs_add_no_loss_and_no_gradient(trained_nlp_examples):
    # A fresh (untrained) model: the trained one's loss is at float32 resolution.
    fix_random_seed(0)
    nlp = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    examples = [make_example(nlp, text, spans) for text, spans in TRAIN_DATA]
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("hmtl_mentions")
    module = pipe.torch_module
    module.train()
    annotated = examples[:2]
    unannotated = make_example(nlp, "a completely different and rather long sentence here", None)
    torch.manual_seed(0)
    X = torch.randn(3, 9, STANDIN_WIDTH, requires_grad=True)
    lengths = torch.tensor([len(eg.predicted) for eg in [annotated[0], unannotated, annotated[1]]])
    loss_mixed = pipe.compute_loss([annotated[0], unannotated, annotated[1]], HeadBatch(X, lengths, module))
    loss_mixed.backward()
    assert X.grad[1].abs().sum().item() == 0.0
    assert X.grad[0].abs().sum().item() > 0.0
    X_plain = X.detach()[[0, 2]].clone().requires_grad_(True)
    loss_plain = pipe.compute_loss(annotated, HeadBatch(X_plain, lengths[[0, 2]], module))
    assert loss_mixed.item() == pytest.approx(loss_plain.item(), rel=1e-6)
    only_missing = pipe.compute_loss([unannotated], HeadBatch(X[1:2], lengths[1:2], module))
    assert only_missing.item() == 0.0 and not only_missing.requires_grad
    # Through nlp.update (sgd=False: no optimizer step): same loss with and without the doc.
    losses_a = nlp.update(annotated, sgd=False, losses={})
    losses_b = nlp.update(annotated + [unannotated], sgd=False, losses={})
    assert losses_a["hmtl_mentions"] == pytest.approx(losses_b["hmtl_mentions"], rel=1e-6)
    assert nlp.update([unannotated], sgd=False, losses={})["hmtl_mentions"] == 0.0
    # ... and unannotated docs do not change the scores.
    nlp, examples = trained_nlp_examples
    predicted_extra = make_example(nlp, "the queen of England waved", None)
    keys = ("mentions_p", "mentions_r", "mentions_f", "mentions_per_type")
    before, after = nlp.evaluate(examples), nlp.evaluate(examples + [predicted_extra])
    assert {k: before[k] for k in keys} == {k: after[k] for k in keys}


def test_serialization_roundtrips(trained_nlp_examples, tmp_path):
    nlp, _ = trained_nlp_examples
    texts = [text for text, _ in TRAIN_DATA] + ["", "he", "The president of Spain met the queen . She smiled ."]
    expected = [(span_tuples(d), d.spans["mentions"].attrs["scores"]) for d in nlp.pipe(texts)]
    # Doc serialization keeps spans and scores.
    doc = nlp(texts[0])
    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert span_tuples(restored) == expected[0][0]
    assert restored.spans["mentions"].attrs["scores"] == expected[0][1]
    # nlp.to_bytes / from_bytes
    nlp2 = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    nlp2.from_bytes(nlp.to_bytes())
    assert [(span_tuples(d), d.spans["mentions"].attrs["scores"]) for d in nlp2.pipe(texts)] == expected
    assert nlp2.get_pipe("hmtl_mentions").labels == ("GPE", "PER")
    # nlp.to_disk / spacy.load
    nlp.to_disk(tmp_path / "model")
    nlp3 = spacy.load(tmp_path / "model")
    assert [(span_tuples(d), d.spans["mentions"].attrs["scores"]) for d in nlp3.pipe(texts)] == expected
    # multiprocessing: same spans; other batches pad differently, so scores agree to
    # float32 rounding (BLAS kernels depend on the matrix shapes)
    got = [(span_tuples(d), d.spans["mentions"].attrs["scores"]) for d in nlp3.pipe(texts, n_process=2, batch_size=2)]
    assert [g[0] for g in got] == [e[0] for e in expected]
    for (_, got_scores), (_, expected_scores) in zip(got, expected):
        assert got_scores == pytest.approx(expected_scores, rel=1e-5)
    # ... and exactly the same as one process with the same batches
    same_batches = [(span_tuples(d), d.spans["mentions"].attrs["scores"]) for d in nlp3.pipe(texts, batch_size=2)]
    assert got == same_batches


def test_uninitialized_pipeline_serializes():
    nlp = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    nlp2 = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    nlp2.from_bytes(nlp.to_bytes())
    assert nlp2.get_pipe("hmtl_mentions").labels == ()


def test_label_robustness(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    data = nlp.get_pipe("hmtl_mentions").to_bytes()
    # A component initialized with another label set takes the saved labels on loading.
    other = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    other.initialize(lambda: [make_example(other, "Bob ran", [(0, 1, "X"), (1, 2, "Y"), (0, 2, "Z")])])
    pipe = other.get_pipe("hmtl_mentions")
    assert pipe.labels == ("X", "Y", "Z")
    pipe.from_bytes(data)
    assert pipe.labels == ("GPE", "PER")
    # A model of another shape cannot be loaded: clear error.
    bigger = make_head_nlp("hmtl_mentions", {**MENTIONS_MODEL, "hidden_width": 32}, standin_depth=STANDIN_DEPTH)
    with pytest.raises(ValueError, match="cannot load the saved model"):
        bigger.get_pipe("hmtl_mentions").from_bytes(data)
    # Labels given explicitly (spacy init labels) win over the data.
    given = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    given.config["initialize"]["components"]["hmtl_mentions"] = {"labels": ["PER", "LOC", "GPE"]}
    given.initialize(lambda: examples)
    assert given.get_pipe("hmtl_mentions").labels == ("PER", "LOC", "GPE")
    assert given.get_pipe("hmtl_mentions").label_data == ["PER", "LOC", "GPE"]
    # No annotated doc at all: clear error.
    none = make_head_nlp("hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH)
    with pytest.raises(ValueError, match="found no labels"):
        none.initialize(lambda: [make_example(none, "nothing here", None)])


def test_wide_gold_mentions_warn():
    nlp = make_head_nlp("hmtl_mentions", {**MENTIONS_MODEL, "max_width": 2}, standin_depth=STANDIN_DEPTH)
    eg = make_example(nlp, "the very old king of Spain", [(0, 6, "PER"), (5, 6, "GPE"), (1, 3, "X")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp.initialize(lambda: [eg])
    messages = [str(w.message) for w in caught if "max_width" in str(w.message)]
    # the label-set check at initialize (spacy_hmtl.gold_check): counted, by label
    assert len(messages) == 1 and "1 (PER: 1): gold mentions wider than max_width=2 tokens" in messages[0]


def test_edge_case_docs(trained_nlp_examples):
    nlp, _ = trained_nlp_examples
    assert len(nlp("").spans["mentions"]) == 0
    assert nlp("").spans["mentions"].attrs["scores"] == []
    one = nlp("he")
    assert "mentions" in one.spans
    long_token = nlp("the king of " + "x" * 1000 + " said he would come")
    assert len(long_token) == 8 and len(long_token[3]) == 1000
    assert len(long_token.spans["mentions"].attrs["scores"]) == len(long_token.spans["mentions"])
    long_doc = nlp(" ".join(["the king of France said he"] * 834))  # 5,004 tokens, no sentences
    assert len(long_doc) == 5004 and not long_doc.has_annotation("SENT_START")
    spans = long_doc.spans["mentions"]
    assert len(spans.attrs["scores"]) == len(spans) > 0
    assert all(len(s) <= 8 for s in spans)
    # Chunked scoring gives the same result as scoring everything at once.
    pipe = nlp.get_pipe("hmtl_mentions")
    text = " ".join(["the king of France said he"] * 30)
    default = span_tuples(nlp(text))
    pipe.chunk_size = 7
    try:
        assert span_tuples(nlp(text)) == default
    finally:
        pipe.chunk_size = type(pipe).chunk_size


def test_threshold_and_sentence_boundaries(trained_nlp_examples):
    nlp, _ = trained_nlp_examples
    pipe = nlp.get_pipe("hmtl_mentions")
    doc = nlp.make_doc("the king of France said he would come . she smiled")
    for i, token in enumerate(doc):
        token.is_sent_start = i in (0, 9)
    try:
        pipe.threshold = 0.0  # keeps every candidate
        out = pipe(nlp.get_pipe("tok2vec")(doc))
        # sentence 1: 9 tokens -> 9 * 8 - 28 candidates; sentence 2: 2 tokens -> 3
        assert len(out.spans["mentions"]) == (9 * 8 - 28) + 3
        assert not any(s.start < 9 < s.end for s in out.spans["mentions"])
        pipe.threshold = 1.01
        assert len(pipe(nlp.get_pipe("tok2vec")(nlp.make_doc("he smiled"))).spans["mentions"]) == 0
    finally:
        pipe.threshold = None


def test_custom_spans_key():
    fix_random_seed(1)
    nlp = make_head_nlp(
        "hmtl_mentions", MENTIONS_MODEL, standin_depth=STANDIN_DEPTH, spans_key="litbank", threshold=0.0
    )
    eg = make_example(nlp, "she saw him", [(0, 1, "PER"), (2, 3, "PER")], key="litbank")
    nlp.initialize(lambda: [eg])
    doc = nlp("she saw him")
    assert "mentions" not in doc.spans and len(doc.spans["litbank"]) == 6
    scores = nlp.evaluate([eg])
    assert scores["mentions_r"] == 1.0 and scores["mentions_p"] == pytest.approx(2 / 6)


def test_default_config():
    meta = factory_meta("hmtl_mentions")
    tok2vec = meta.default_config["model"]["tok2vec"]
    assert tok2vec["@architectures"] == "spacy_hmtl.HMTLListener.v1"
    assert tok2vec["level"] == 2 and tok2vec["shortcut"] is True
    assert meta.default_config["spans_key"] == "mentions"
    assert meta.default_config["scorer"] == {"@scorers": "spacy_hmtl.mentions_scorer.v1"}
    weights = {k: v for k, v in meta.default_score_weights.items() if v is not None}
    assert sum(weights.values()) == 1.0
    assert "doc.spans" in meta.assigns


# --- scorer --------------------------------------------------------------------------------------


def _scored_example(vocab_nlp, words, gold, pred):
    predicted = Doc(vocab_nlp.vocab, words=words)
    reference = Doc(vocab_nlp.vocab, words=words)
    if gold is not None:
        reference.spans["mentions"] = [Span(reference, s, e, label=lab) for s, e, lab in gold]
    if pred is not None:
        predicted.spans["mentions"] = [Span(predicted, s, e, label=lab) for s, e, lab in pred]
    return Example(predicted, reference)


def test_scorer_hand_computed():
    nlp = spacy.blank("en")
    words = ["a", "b", "c", "d", "e"]
    examples = [
        # tp: (0,2,PER), (3,4,PER); fp: (1,2,PER) (wrong label), (4,5,GPE); fn: (1,2,GPE)
        _scored_example(nlp, words, [(0, 2, "PER"), (1, 2, "GPE"), (3, 4, "PER")],
                        [(0, 2, "PER"), (1, 2, "PER"), (3, 4, "PER"), (4, 5, "GPE")]),
        # not annotated (no key in the reference): skipped, whatever was predicted
        _scored_example(nlp, words, None, [(0, 1, "PER"), (2, 3, "GPE")]),
        # annotated with no mentions: a prediction is a false positive
        _scored_example(nlp, words, [], [(0, 1, "PER")]),
        # annotated, nothing predicted (key absent in the prediction): a false negative
        _scored_example(nlp, words, [(2, 5, "GPE")], None),
    ]
    scores = score_mentions(examples)
    tp, fp, fn = 2, 3, 2
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert scores["mentions_p"] == pytest.approx(p)
    assert scores["mentions_r"] == pytest.approx(r)
    assert scores["mentions_f"] == pytest.approx(2 * p * r / (p + r))
    per_type = scores["mentions_per_type"]
    assert per_type["PER"] == pytest.approx({"p": 2 / 4, "r": 1.0, "f": 2 * 0.5 / 1.5})
    assert per_type["GPE"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})
    # The unannotated doc does not change anything.
    assert score_mentions(examples[:1] + examples[2:]) == scores
    assert make_mentions_scorer()(examples) == scores
    assert spacy.registry.scorers.get("spacy_hmtl.mentions_scorer.v1")()(examples) == scores


def test_scorer_none_when_nothing_scored():
    nlp = spacy.blank("en")
    words = ["a", "b"]
    expected = {"mentions_p": None, "mentions_r": None, "mentions_f": None, "mentions_per_type": None}
    assert score_mentions([]) == expected
    assert score_mentions([_scored_example(nlp, words, None, [(0, 1, "PER")])]) == expected
    # another key: the default key is not annotated
    eg = _scored_example(nlp, words, [(0, 1, "PER")], [(0, 1, "PER")])
    assert score_mentions([eg], spans_key="other") == expected
    assert score_mentions([eg])["mentions_f"] == 1.0
