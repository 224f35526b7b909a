"""Reliability of the four-head pipeline: odd input never crashes it, every output obeys
the invariants of ``spacy_hmtl.annotations``, and configuration mistakes fail early with
a message naming the problem.

Policy for gold labels the pipe was not initialized with (checked per head below): they
are *ignored* during training, without error and without growing the label set (labels
are fixed at ``initialize``; ``add_label`` afterwards raises). ``hmtl_ner`` masks the
tokens of such an entity out of the CRF loss (tag -1 = unknown); ``hmtl_mentions`` and
``hmtl_relations`` have no "unknown" target and train the span / pair as "no label"
(like spaCy's ``spancat``); ``hmtl_coref`` has no labels. No head warns.
"""
import copy
import math

import pytest
import spacy
import srsly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span
from thinc.api import Adam

from helpers import (
    PIPE_NAMES,
    TINY_CONFIG,
    build_tiny_nlp,
    make_examples,
    nlp_from_config,
    reference_docs,
    snapshot,
)
from spacy_hmtl.annotations import set_relation_records
from spacy_hmtl.coref import torch_module
from spacy_hmtl.layers.inference_precision import pipe_modules

SENTENCE = "We apply a neural parser to the Penn Treebank . The parser improves accuracy ."



@pytest.fixture(scope="module")
def trained_nlp():
    """The tiny four-head pipeline, trained (``helpers.build_tiny_nlp``); tests that train
    further work on a deep copy."""
    nlp, _ = build_tiny_nlp()
    return nlp


def check_invariants(nlp, doc: Doc) -> None:
    """Everything the four pipes wrote is inside the doc and well-formed."""
    n = len(doc)
    labels = {name: set(nlp.get_pipe(name).labels) for name in PIPE_NAMES[1:4]}
    # entities: inside the doc, sorted, non-overlapping, known labels
    previous_end = 0
    for ent in doc.ents:
        assert previous_end <= ent.start < ent.end <= n
        assert ent.label_ in labels["hmtl_ner"]
        previous_end = ent.end
    # mentions: inside the doc, one score in [0, 1] per span
    group = doc.spans["mentions"]
    scores = group.attrs["scores"]
    assert len(scores) == len(group)
    for span, score in zip(group, scores):
        assert 0 <= span.start < span.end <= n and span.label_ in labels["hmtl_mentions"]
        assert 0.0 <= score <= 1.0 and not math.isnan(score)
    # relations: annotated ([] at least), arguments inside the doc, scores in [0, 1]
    records = doc._.hmtl_relations_data
    assert records is not None
    for hs, he, ts, te, label, score in records:
        assert 0 <= hs < he <= n and 0 <= ts < te <= n
        assert (hs, he) != (ts, te)
        assert label in labels["hmtl_relations"]
        assert 0.0 <= score <= 1.0
    for rel in doc._.relations:
        assert rel.head.doc is doc and rel.tail.doc is doc
    # coreference: disjoint clusters of >= 2 mentions, mentions sorted, clusters sorted by
    # their first mention; the span groups mirror the record
    clusters = doc._.hmtl_coref_data
    assert clusters is not None and "coref_clusters" in doc.spans
    seen = set()
    for cluster in clusters:
        spans = [tuple(m) for m in cluster]
        assert len(spans) >= 2
        assert spans == sorted(spans) and len(set(spans)) == len(spans)
        for start, end in spans:
            assert 0 <= start < end <= n
        assert not seen & set(spans)
        seen |= set(spans)
    firsts = [tuple(c[0]) for c in clusters]
    assert firsts == sorted(firsts)
    for i, cluster in enumerate(clusters):
        assert [(s.start, s.end) for s in doc.spans[f"coref_clusters_{i + 1}"]] == [tuple(m) for m in cluster]
    assert f"coref_clusters_{len(clusters) + 1}" not in doc.spans


ODD_TEXTS = {
    "empty": "",
    "whitespace": "   \t  ",
    "newlines": "\n\n\n",
    "one_token": "parser",
    "one_punct": ".",
    "emoji": "🙂🙂 👩‍👩‍👧‍👦 🎉 parser 🇫🇷 .",
    "cjk": "我们 使用 解析器 。 日本語 の テキスト",
    "rtl": "مرحبا بالعالم . שלום עולם",
    "cyrillic_devanagari": "Привет мир . नमस्ते दुनिया",
    "combining_zero_width": "e\u0301 \u200b \u200d a\u0308\u0308 \ufeff x",
    "control_chars": "a\x00b \x07 \u2028 c",
    "token_1000_chars": "x" * 1000 + " uses " + "é" * 1000 + " .",
    "no_sentence_boundaries": " ".join(["the parser uses a grammar and the model"] * 30),
    "repeated_token": " ".join(["parser"] * 300),
}


@pytest.mark.parametrize("key", sorted(ODD_TEXTS))
def test_odd_input_does_not_crash(trained_nlp, key):
    doc = trained_nlp(ODD_TEXTS[key])
    check_invariants(trained_nlp, doc)


def test_odd_inputs_in_one_batch(trained_nlp):
    docs = list(trained_nlp.pipe(list(ODD_TEXTS.values()) + [SENTENCE], batch_size=64))
    for doc in docs:
        check_invariants(trained_nlp, doc)


def test_odd_inputs_at_reduced_precision(trained_nlp, monkeypatch):
    """The bfloat16 inference paths a package runs (BiLSTMs, pair scoring, span scoring:
    spacy_hmtl.reduced_precision.v3) on the odd inputs in one batch and on a 20,500-token
    document; a spy checks that the span scoring's bfloat16 products ran."""
    import torch

    from spacy_hmtl.mentions import torch_module as mentions_module
    from spacy_hmtl.reduced_precision import inference_precision_of, set_inference_precision

    nlp = copy.deepcopy(trained_nlp)
    set_inference_precision(nlp, "bfloat16")
    assert set(inference_precision_of(nlp, ["lstms", "pair_scoring", "span_scoring"]).values()) == {"bfloat16"}
    dtypes = []
    real = mentions_module.linear_at
    monkeypatch.setattr(mentions_module, "linear_at", lambda layer, x, dtype: dtypes.append(dtype) or real(layer, x, dtype))
    for doc in nlp.pipe(list(ODD_TEXTS.values()) + [SENTENCE], batch_size=64):
        check_invariants(nlp, doc)
    words = (SENTENCE.split() * 1400)[:20500]
    check_invariants(nlp, nlp(Doc(nlp.vocab, words=words, sent_starts=[w in ("We", "The") for w in words])))
    assert dtypes and set(dtypes) == {torch.bfloat16}


# the coreference head with coarse-to-fine pruning (spacy_hmtl.CorefRanker.v2): a window of 4
# kept spans ranked by the coarse score, the FFNN on the best 2 of them
C2F_CONFIG = TINY_CONFIG.replace("mention_loss_weight = 1.0\n", "mention_loss_weight = 1.0\ncoarse_width = 4\ncoarse_antecedents = 2\n")


@pytest.fixture(scope="module")
def trained_c2f_nlp():
    assert C2F_CONFIG != TINY_CONFIG
    nlp, _ = build_tiny_nlp(C2F_CONFIG)
    return nlp


def test_odd_input_with_coarse_to_fine_pruning(trained_c2f_nlp, monkeypatch):
    """The coarse-to-fine inference path (coref/coarse_to_fine.py) on the odd inputs, in one
    batch and one by one, and on a 20,500-token document (its blocks of rows)."""
    nlp = trained_c2f_nlp
    [ranker] = pipe_modules(nlp.get_pipe("hmtl_coref"), ["pair_scoring"])
    assert ranker.coarse_i is not None and ranker.coarse_i.out_features == 4 and ranker.coarse_antecedents == 2
    calls = []
    real = torch_module.best_coarse_antecedents
    monkeypatch.setattr(torch_module, "best_coarse_antecedents", lambda *a, **k: calls.append(1) or real(*a, **k))
    for doc in nlp.pipe(list(ODD_TEXTS.values()) + [SENTENCE], batch_size=64):
        check_invariants(nlp, doc)
    for text in ODD_TEXTS.values():
        check_invariants(nlp, nlp(text))
    words = (SENTENCE.split() * 1400)[:20500]
    doc = nlp(Doc(nlp.vocab, words=words, sent_starts=[w in ("We", "The") for w in words]))
    check_invariants(nlp, doc)
    assert calls  # the coarse path ran


@pytest.mark.parametrize("sentences", ["none", "every_10", "every_token"])
def test_doc_with_given_sentence_boundaries(trained_nlp, sentences):
    words = (SENTENCE.split() * 20)[:290]
    sent_starts = {
        "none": None,
        "every_10": [i % 10 == 0 for i in range(len(words))],
        "every_token": [True] * len(words),
    }[sentences]
    doc = trained_nlp(Doc(trained_nlp.vocab, words=words, sent_starts=sent_starts))
    check_invariants(trained_nlp, doc)
    if sentences == "every_token":
        # mentions and relations never cross sentence boundaries: all single tokens here
        assert all(len(span) == 1 for span in doc.spans["mentions"])
        assert not doc._.hmtl_relations_data


@pytest.mark.parametrize("with_sentences", [False, True])
def test_document_of_20000_tokens(trained_nlp, with_sentences):
    words = (SENTENCE.split() * 1400)[:20500]
    sent_starts = [w == "We" or w == "The" for w in words] if with_sentences else None
    doc = trained_nlp(Doc(trained_nlp.vocab, words=words, sent_starts=sent_starts))
    assert len(doc) == 20500
    check_invariants(trained_nlp, doc)
    assert len(doc.ents) > 0
    # relations stay within the max_pairs budget of the config
    assert len(doc._.hmtl_relations_data) <= 200 * len(trained_nlp.get_pipe("hmtl_relations").labels)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=120))
def test_random_unicode_text_keeps_invariants(trained_nlp, text):
    check_invariants(trained_nlp, trained_nlp(text))


@settings(max_examples=10, deadline=None)
@given(
    words=st.lists(st.text(min_size=1, max_size=12).filter(lambda w: not w.isspace()), min_size=1, max_size=40),
    data=st.data(),
)
def test_random_words_and_sentences_keep_invariants(trained_nlp, words, data):
    sent_starts = data.draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    doc = Doc(trained_nlp.vocab, words=words, sent_starts=[True] + sent_starts[1:])
    check_invariants(trained_nlp, trained_nlp(doc))


def test_training_on_odd_docs_does_not_crash(trained_nlp):
    nlp = copy.deepcopy(trained_nlp)
    examples = make_examples(nlp)
    odd = [nlp.make_doc(t) for t in ("", "   ", "x" * 1000, "🙂")]
    odd_examples = make_examples(nlp, odd)  # references carry no annotation at all
    empty_gold = Doc(nlp.vocab, words=["parser"])
    empty_gold.ents = []
    empty_gold.spans["mentions"] = []
    set_relation_records(empty_gold, [])
    optimizer = Adam(0.001)
    for batch in (odd_examples, odd_examples[:1], examples + odd_examples, make_examples(nlp, [empty_gold])):
        losses = nlp.update(batch, sgd=optimizer)
        assert all(math.isfinite(v) for v in losses.values()), losses
    check_invariants(nlp, nlp(SENTENCE))


# --- clear errors at initialization or load time ---------------------------------------


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def listener_section(head: str, upstream: str = "hmtl_encoder") -> str:
    return f'[components.{head}.model.tok2vec]\n@architectures = "spacy_hmtl.HMTLListener.v1"\nupstream = "{upstream}"'


def test_listener_level_the_encoder_lacks():
    config = replace_once(
        TINY_CONFIG, listener_section("hmtl_relations") + "\nlevel = 2", listener_section("hmtl_relations") + "\nlevel = 3"
    )
    with pytest.raises(ValueError, match=r"\[hmtl_relations\].*levels 0 \(embeddings\) to 2.*level 3"):
        nlp_from_config(config)


def test_listener_width_that_does_not_fit_the_level():
    config = replace_once(
        TINY_CONFIG, listener_section("hmtl_ner") + "\nlevel = 1\nshortcut = false\nwidth = 0",
        listener_section("hmtl_ner") + "\nlevel = 1\nshortcut = false\nwidth = 10",
    )
    with pytest.raises(ValueError, match=r"\[hmtl_ner\].*32 wide.*width is 10"):
        nlp_from_config(config)


@pytest.mark.parametrize("head", PIPE_NAMES[1:])
def test_listener_whose_upstream_is_missing(head):
    config = replace_once(TINY_CONFIG, listener_section(head), listener_section(head, "hmtl_encoder_2"))
    nlp = nlp_from_config(config)  # spaCy links listeners at initialize
    with pytest.raises(ValueError) as err:
        nlp.initialize(lambda: make_examples(nlp))
    # the head (or its listener, for heads that initialize the listener first) names
    # the missing upstream
    assert "'hmtl_encoder_2'" in str(err.value)


def test_disabled_encoder_at_inference(trained_nlp):
    with pytest.raises(ValueError, match="no encoder states.*'hmtl_encoder'"):
        trained_nlp(SENTENCE, disable=["hmtl_encoder"])


@pytest.mark.parametrize("head", PIPE_NAMES[1:])
def test_add_label_after_initialize_is_refused(trained_nlp, head):
    with pytest.raises(ValueError, match=rf"\[{head}\].*'NEW_LABEL'"):
        trained_nlp.get_pipe(head).add_label("NEW_LABEL")


def test_unseen_gold_labels_are_ignored_in_training(trained_nlp):
    nlp = copy.deepcopy(trained_nlp)
    before = {name: nlp.get_pipe(name).labels for name in PIPE_NAMES[1:]}
    refs = reference_docs(nlp.vocab)
    ref = refs[0]
    ref.ents = [Span(ref, 3, 5, label="UNSEEN_ENT")] + list(ref.ents[1:])
    ref.spans["mentions"] = [Span(ref, 0, 1, label="UNSEEN_MENTION"), Span(ref, 3, 5, label="NOM")]
    set_relation_records(ref, [[3, 5, 7, 9, "UNSEEN_REL", 1.0], [13, 14, 11, 12, "EVALUATE-FOR", 1.0]])
    examples = make_examples(nlp, refs)
    # hmtl_ner: the unseen entity's tokens are masked out of the loss (tag -1 = unknown)
    tags = nlp.get_pipe("hmtl_ner")._gold_tags(examples[:1], len(ref))
    assert tags[0, 3:5].tolist() == [-1, -1] and (tags[0, 5:] >= 0).all()
    # hmtl_mentions: no target of its own; the span is trained as "no mention"
    grid = nlp.get_pipe("hmtl_mentions")._gold_grid(examples[0])
    assert grid[0, 0] == 0 and grid[3, 1] > 0
    optimizer = Adam(0.001)
    for _ in range(2):
        losses = nlp.update(examples, sgd=optimizer)
        assert all(math.isfinite(v) for v in losses.values()), losses
    assert {name: nlp.get_pipe(name).labels for name in PIPE_NAMES[1:]} == before
    doc = nlp(SENTENCE)
    check_invariants(nlp, doc)  # which also checks that only known labels are predicted


def test_loading_a_pipeline_saved_with_another_label_set(trained_nlp):
    """The saved labels win: a pipe initialized with other labels takes the saved label
    set with the saved weights, and predicts exactly what the saved pipeline did."""
    other = nlp_from_config()
    refs = reference_docs(other.vocab)
    for ref in refs:
        ref.ents = [Span(ref, e.start, e.end, label="OTHER_" + e.label_) for e in ref.ents]
    other.initialize(lambda: make_examples(other, refs))
    assert other.get_pipe("hmtl_ner").labels != trained_nlp.get_pipe("hmtl_ner").labels
    other.from_bytes(trained_nlp.to_bytes())
    assert other.get_pipe("hmtl_ner").labels == trained_nlp.get_pipe("hmtl_ner").labels
    assert snapshot(other(SENTENCE)) == snapshot(trained_nlp(SENTENCE))


def test_saved_labels_that_do_not_fit_the_weights(trained_nlp, tmp_path):
    """A saved label list that does not match the saved weights (edited or mixed-up
    files) fails at load time, naming the component and the label set."""
    trained_nlp.to_disk(tmp_path / "pipeline")
    cfg_path = tmp_path / "pipeline" / "hmtl_ner" / "cfg"
    cfg = srsly.read_json(cfg_path)
    cfg["labels"] = cfg["labels"] + ["EXTRA"]
    srsly.write_json(cfg_path, cfg)
    # the checksum saved with the file catches the edit first ...
    with pytest.raises(ValueError, match=r"\[hmtl_ner\] .*cfg.*truncated or corrupted, or was replaced"):
        spacy.load(tmp_path / "pipeline")
    # ... and without one (a pipeline saved before checksums), the weights do not fit
    (cfg_path.parent / "checksums.sha256").unlink()
    with pytest.raises(ValueError, match=r"(?s)\[hmtl_ner\] cannot load the saved model.*label set"):
        spacy.load(tmp_path / "pipeline")


@pytest.mark.parametrize(
    "name,old,new",
    [
        ("hmtl_encoder", "level_widths = [16, 16]", "level_widths = [16, 8]"),
        ("hmtl_coref", "lstm_width = 16\nmax_width = 4", "lstm_width = 8\nmax_width = 4"),
        ("hmtl_relations", "lstm_width = 16\nlstm_depth = 1", "lstm_width = 8\nlstm_depth = 1"),
        ("hmtl_ner", "hidden_width = 0\ndropout = 0.0", "hidden_width = 8\ndropout = 0.0"),
    ],
)
def test_loading_weights_saved_with_another_config(trained_nlp, name, old, new):
    config = replace_once(TINY_CONFIG, old, new)
    with pytest.raises(ValueError, match=rf"(?s)\[{name}\] cannot load the saved .*another configuration"):
        nlp_from_config(config).from_bytes(trained_nlp.to_bytes())
