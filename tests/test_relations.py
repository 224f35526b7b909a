"""Tests of the ``hmtl_relations`` head (multi-head selection) and its scorer.

The stand-in encoder of ``helpers`` (a plain spaCy ``tok2vec`` pipe +
``spacy.Tok2VecListener.v1``) takes the place of the HMTL encoder and its listener.
"""
import itertools

import numpy as np
import pytest
import spacy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from thinc.api import Adam

from spacy_hmtl.annotations import Relation, get_relation_records, set_relation_records
from spacy_hmtl.candidates import sentence_ids_or_zeros
from spacy_hmtl.relations.pairs import candidate_pairs
from spacy_hmtl.relations.scorer import score_relations
from spacy_hmtl.layers.distance_buckets import distance_buckets
from spacy_hmtl.relations.torch_module import MultiHeadSelection

from helpers import STANDIN_WIDTH, factory_meta, make_head_nlp

# the head's model in these tests (over the stand-in encoder)
REL_MODEL = {
    "@architectures": "spacy_hmtl.RelationExtractor.v1",
    "lstm_width": 32,
    "hidden_width": 64,
    "type_embedding": 8,
}

# (words, sentence starts or None, ents, relation records or None)
DOCS = [
    (
        "John Smith works for Acme Corp in Boston .".split(),
        None,
        [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC")],
        [[0, 2, 4, 6, "Work_For"], [4, 6, 7, 8, "OrgBased_In"]],
    ),
    ("Mary Jones lives in Paris .".split(), None, [(0, 2, "PER"), (4, 5, "LOC")], [[0, 2, 4, 5, "Live_In"]]),
    # the head comes after the tail in the text
    ("Acme Corp hired Mary Jones .".split(), None, [(0, 2, "ORG"), (3, 5, "PER")], [[3, 5, 0, 2, "Work_For"]]),
    # annotated with no relation
    ("Paris and Boston are cities .".split(), None, [(0, 1, "LOC"), (2, 3, "LOC")], []),
    # SciERC-like, two sentences
    (
        "We apply a neural parser to the Penn Treebank . The parser improves accuracy .".split(),
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        [(3, 5, "Method"), (7, 9, "Material"), (11, 12, "Method"), (13, 14, "Metric")],
        [[3, 5, 7, 9, "USED-FOR"], [13, 14, 11, 12, "EVALUATE-FOR"]],
    ),
    # not annotated for relations: skipped by the loss and the scorer
    ("Bob Brown works for Initech .".split(), None, [(0, 2, "PER"), (4, 5, "ORG")], None),
]



def make_doc(vocab, words, sent_starts=None, ents=(), records=None) -> Doc:
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    set_relation_records(doc, None if records is None else [list(r) + [1.0] for r in records])
    return doc


def copy_with_gold_ents(ref: Doc) -> Doc:
    """A predicted doc holding the reference's entities and sentences, no relations."""
    sent_starts = [bool(t.is_sent_start) for t in ref] if len(ref) > 1 and ref.has_annotation("SENT_START") else None
    words, spaces = [t.text for t in ref], [bool(t.whitespace_) for t in ref]
    doc = Doc(ref.vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    doc.ents = [Span(doc, e.start, e.end, label=e.label_) for e in ref.ents]
    return doc


def as_lists(records):
    return None if records is None else [list(r) for r in records]


def gold_examples(nlp):
    refs = [make_doc(nlp.vocab, *d) for d in DOCS]
    return [Example(Doc(nlp.vocab, words=[t.text for t in r]), r) for r in refs]


@pytest.fixture(scope="module")
def trained_nlp_examples_losses():
    """``(nlp, examples, losses)``: a tok2vec + hmtl_relations pipeline overfitted on DOCS
    (teacher forcing), its examples and the losses of its last update."""
    spacy.util.fix_random_seed(0)
    nlp = make_head_nlp("hmtl_relations", REL_MODEL)
    examples = gold_examples(nlp)
    optimizer = Adam(5e-3)
    nlp.initialize(lambda: examples, sgd=optimizer)
    for _ in range(100):
        losses = nlp.update(examples, sgd=optimizer)
    return nlp, examples, losses


# --- the architecture, factory and scorer are registered ----------------------------


def test_registered_names():
    assert spacy.registry.scorers.get("spacy_hmtl.relation_scorer.v1")() is score_relations
    assert spacy.registry.architectures.get("spacy_hmtl.RelationExtractor.v1")
    meta = factory_meta("hmtl_relations")
    assert meta.assigns == ["doc._.hmtl_relations_data"]
    assert sum(meta.default_score_weights.values()) == pytest.approx(1.0)
    assert meta.default_config["entity_source"] == "ents"
    assert meta.default_config["model"]["tok2vec"]["@architectures"] == "spacy_hmtl.HMTLListener.v1"


# --- candidate pairs ------------------------------------------------------------------


def brute_force_pairs(starts, sents, max_pairs, allow_cross):
    cand = [
        (starts[b] - starts[a], b - a, a, b)
        for a, b in itertools.combinations(range(len(starts)), 2)
        if allow_cross or sents is None or sents[a] == sents[b]
    ]
    cand.sort()
    out = []
    for _, _, a, b in cand[: (max_pairs + 1) // 2]:
        out += [(a, b), (b, a)]
    return out[:max_pairs]


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 6), min_size=0, max_size=25),
    sent_breaks=st.lists(st.booleans(), min_size=25, max_size=25),
    max_pairs=st.integers(0, 60),
    allow_cross=st.booleans(),
)
def test_candidate_pairs_match_brute_force(gaps, sent_breaks, max_pairs, allow_cross):
    starts = np.cumsum(gaps).astype(np.int64)
    sents = np.cumsum(sent_breaks[: len(starts)]).astype(np.int64)
    got = [tuple(p) for p in candidate_pairs(starts, sents, max_pairs, allow_cross).tolist()]
    assert got == brute_force_pairs(starts.tolist(), sents.tolist(), max_pairs, allow_cross)


def test_candidate_pairs_small_and_bounded():
    assert candidate_pairs(np.array([], dtype=np.int64), None, 10, False).shape == (0, 2)
    assert candidate_pairs(np.array([3]), None, 10, False).shape == (0, 2)
    # all ordered pairs of 3 spans
    pairs = candidate_pairs(np.array([0, 2, 5]), np.array([0, 0, 0]), 2500, False)
    assert sorted(map(tuple, pairs.tolist())) == [(a, b) for a in range(3) for b in range(3) if a != b]
    # no pair across sentences unless allowed
    assert candidate_pairs(np.array([0, 5]), np.array([0, 1]), 2500, False).shape == (0, 2)
    assert candidate_pairs(np.array([0, 5]), np.array([0, 1]), 2500, True).shape == (2, 2)
    # 20,000 spans, cross-sentence allowed: bounded and fast (no n^2 matrix)
    starts = np.arange(20000, dtype=np.int64) * 2
    pairs = candidate_pairs(starts, None, 2500, True)
    assert pairs.shape == (2500, 2)
    assert np.abs(starts[pairs[:, 0]] - starts[pairs[:, 1]]).max() <= 4


def test_sentence_ids():
    vocab = spacy.blank("en").vocab
    assert sentence_ids_or_zeros(Doc(vocab, words=["a", "b"])).tolist() == [0, 0]
    doc = Doc(vocab, words="a b c d".split(), sent_starts=[1, 0, 1, 0])
    assert sentence_ids_or_zeros(doc).tolist() == [0, 0, 1, 1]
    assert sentence_ids_or_zeros(Doc(vocab, words=[])).tolist() == []


# --- training, inference, scores --------------------------------------------------------


def test_overfit_reaches_perfect_scores(trained_nlp_examples_losses):
    nlp, examples, losses = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")
    assert rel.labels == ("EVALUATE-FOR", "Live_In", "OrgBased_In", "USED-FOR", "Work_For")
    assert rel.entity_labels == ("LOC", "Material", "Method", "Metric", "ORG", "PER")
    assert rel.model.get_dim("nI") == STANDIN_WIDTH == rel.torch_module.n_in
    # summed over the docs; sampled non-entity arguments are redrawn every step
    assert losses["hmtl_relations"] < 0.5 * len(examples)
    eval_examples = [Example(copy_with_gold_ents(eg.reference), eg.reference) for eg in examples]
    scores = nlp.evaluate(eval_examples)
    assert scores["rel_micro_f"] == 1.0
    assert scores["rel_strict_f"] == 1.0
    assert scores["rel_per_type"]["Work_For"]["f"] == 1.0
    # every doc gets records, the one not annotated in the reference too (it is not scored)
    docs = list(nlp.pipe(eg.predicted for eg in eval_examples))
    predicted = [get_relation_records(doc) for doc in docs]
    assert all(p is not None for p in predicted)
    assert predicted[3] == []
    rels = docs[2]._.relations
    assert [(r.head.text, r.tail.text, r.label) for r in rels] == [("Mary Jones", "Acme Corp", "Work_For")]
    assert isinstance(rels[0].head, Span) and 0.5 <= rels[0].score <= 1.0


def test_arguments_come_from_the_entity_source(trained_nlp_examples_losses):
    nlp, examples, _ = trained_nlp_examples_losses
    ref = examples[0].reference
    # no entity pipe ran: not annotated (None, with a warning), not "no relation"
    with pytest.warns(UserWarning, match="doc.ents is not set"):
        doc = nlp(ref.text)
    assert doc._.hmtl_relations_data is None and doc._.relations is None
    # entities annotated, none found: annotated, no relation, even though the gold has some
    doc = nlp.make_doc(ref.text)
    doc.ents = []
    assert nlp.get_pipe("hmtl_relations")(nlp.get_pipe("tok2vec")(doc))._.hmtl_relations_data == []
    # the spans key source reads doc.spans
    rel = nlp.get_pipe("hmtl_relations")
    doc = copy_with_gold_ents(ref)
    doc.spans["mentions"] = list(doc.ents)
    doc.ents = []
    rel.entity_source = "mentions"
    try:
        doc = nlp.get_pipe("hmtl_relations")(nlp.get_pipe("tok2vec")(doc))
    finally:
        rel.entity_source = "ents"
    got = {(r[0], r[1], r[2], r[3], r[4]) for r in doc._.hmtl_relations_data}
    assert got == {tuple(r[:5]) for r in get_relation_records(ref)}


def test_empty_tiny_and_entity_free_docs(trained_nlp_examples_losses):
    nlp, _, _ = trained_nlp_examples_losses
    docs = [nlp.make_doc(""), nlp.make_doc("Paris"), nlp.make_doc("nothing here at all")]
    docs[1].ents = [Span(docs[1], 0, 1, label="LOC")]
    docs[2].ents = []  # an entity pipe ran and found nothing
    docs = list(nlp.pipe(docs))
    assert [d._.hmtl_relations_data for d in docs] == [[], [], []]
    assert [d._.relations for d in docs] == [[], [], []]


def test_unannotated_batch_leaves_weights_unchanged(trained_nlp_examples_losses):
    nlp, examples, _ = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")
    before = [p.detach().clone() for p in rel.torch_module.parameters()]
    losses = rel.update([examples[-1]], sgd=Adam(0.01))
    assert losses["hmtl_relations"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, rel.torch_module.parameters()))


def test_teacher_forcing_with_different_tokenization(trained_nlp_examples_losses):
    nlp, _, _ = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")
    # "Dr. Ann lives in Paris." tokenized two ways: gold spans must be re-indexed
    ref = Doc(
        nlp.vocab,
        words=["Dr", ".", "Ann", "lives", "in", "Paris", "."],
        spaces=[False, True, True, True, True, False, False],
    )
    ref.ents = [Span(ref, 2, 3, label="PER"), Span(ref, 5, 6, label="LOC")]
    set_relation_records(ref, [[2, 3, 5, 6, "Live_In", 1.0]])
    pred = Doc(
        nlp.vocab, words=["Dr.", "Ann", "lives", "in", "Paris", "."], spaces=[True, True, True, True, False, False]
    )
    cands, targets = rel.training_candidates(Example(pred, ref))
    assert cands.starts.tolist() == [1, 4] and cands.ends.tolist() == [2, 5]
    live_in = rel.labels.index("Live_In")
    rows = {tuple(p): i for i, p in enumerate(cands.pairs.tolist())}
    assert targets[rows[(0, 1)], live_in] == 1.0
    assert targets.sum() == 1.0


def test_cross_sentence_pairs_excluded_unless_enabled(trained_nlp_examples_losses):
    nlp, _, _ = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")

    def run(sent_starts):
        doc = make_doc(nlp.vocab, "Alice sleeps . Paris is big .".split(), sent_starts, [(0, 1, "PER"), (3, 4, "LOC")])
        return nlp.get_pipe("hmtl_relations")(nlp.get_pipe("tok2vec")(doc))._.hmtl_relations_data

    rel.threshold = 0.0  # decode every candidate (pair, label)
    rel.decoding = "multi_label"
    try:
        assert run([1, 0, 0, 1, 0, 0, 0]) == []
        # without sentence boundaries the doc is one sentence
        assert len(run(None)) == 2 * len(rel.labels)
        rel.allow_cross_sentence = True
        assert len(run([1, 0, 0, 1, 0, 0, 0])) == 2 * len(rel.labels)
    finally:
        rel.threshold = 0.5
        rel.allow_cross_sentence = False
        rel.decoding = "one_per_pair"


def test_long_doc_stays_within_max_pairs(trained_nlp_examples_losses):
    nlp, _, _ = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")
    n_tokens = 5000
    words = [("Paris" if i % 5 == 0 else "word") if i % 50 != 49 else "." for i in range(n_tokens)]
    sent_starts = [1 if i % 50 == 0 else 0 for i in range(n_tokens)]
    doc = Doc(nlp.vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, i, i + 1, label="LOC" if i % 10 else "UNSEEN_TYPE") for i in range(0, n_tokens, 5)]
    assert len(doc.ents) == 1000  # 10 per sentence: 9,000 same-sentence ordered pairs
    rel.threshold = 0.0
    rel.decoding = "multi_label"
    try:
        doc = nlp.get_pipe("hmtl_relations")(nlp.get_pipe("tok2vec")(doc))
    finally:
        rel.threshold = 0.5
        rel.decoding = "one_per_pair"
    records = doc._.hmtl_relations_data
    pairs = {(r[0], r[2]) for r in records}
    assert len(pairs) == rel.max_pairs == 2500
    assert len(records) == 2500 * len(rel.labels)
    assert all(h // 50 == t // 50 for h, t in pairs)  # same sentence
    assert max(abs(h - t) for h, t in pairs) <= 15  # the closest pairs were kept


# --- serialization ---------------------------------------------------------------------


def test_records_round_trip(trained_nlp_examples_losses):
    nlp, examples, _ = trained_nlp_examples_losses
    docs = list(nlp.pipe(copy_with_gold_ents(eg.reference) for eg in examples))
    expected = [d._.hmtl_relations_data for d in docs]
    assert any(expected)
    unannotated = nlp.make_doc("No annotation here .")
    assert unannotated._.hmtl_relations_data is None
    docs.append(unannotated)
    expected.append(None)
    restored = [Doc(nlp.vocab).from_bytes(d.to_bytes()) for d in docs]
    assert [d._.hmtl_relations_data for d in restored] == expected
    doc_bin = DocBin(store_user_data=True, docs=docs)
    restored = list(DocBin().from_bytes(doc_bin.to_bytes()).get_docs(nlp.vocab))
    # DocBin unpacks user data with use_list=False: the records come back as tuples
    assert [as_lists(d._.hmtl_relations_data) for d in restored] == expected
    rel = restored[0]._.relations[0]
    assert isinstance(rel, Relation) and isinstance(rel.head, Span) and rel.head.doc is restored[0]


def assert_same_records(got, expected) -> None:
    """Same relations (arguments, labels) per doc; scores equal to float noise."""
    assert [[r[:5] for r in recs] for recs in got] == [[r[:5] for r in recs] for recs in expected]
    for a, b in zip(got, expected):
        assert [r[5] for r in a] == pytest.approx([r[5] for r in b], abs=1e-5)


def test_pipeline_serialization_and_multiprocessing(trained_nlp_examples_losses, tmp_path):
    nlp, examples, _ = trained_nlp_examples_losses
    ruler = nlp.add_pipe("entity_ruler", before="hmtl_relations")
    try:
        ruler.add_patterns(
            [
                {"label": e.label_, "pattern": [{"ORTH": t.text} for t in e]}
                for eg in examples
                for e in eg.reference.ents
            ]
        )
        texts = [eg.reference.text for eg in examples]
        expected = [d._.hmtl_relations_data for d in nlp.pipe(texts)]
        assert any(expected)
        # other batch sizes pad differently: scores may differ in the last float digits
        assert_same_records([d._.hmtl_relations_data for d in nlp.pipe(texts, n_process=2, batch_size=2)], expected)
        nlp.to_disk(tmp_path / "pipeline")
        loaded = spacy.load(tmp_path / "pipeline")
        entity_labels = list(nlp.get_pipe("hmtl_relations").entity_labels)
        assert loaded.get_pipe("hmtl_relations").cfg["entity_labels"] == entity_labels
        got = [d._.hmtl_relations_data for d in loaded.pipe(texts)]
        assert_same_records(got, expected)
        from_bytes = make_head_nlp("hmtl_relations", REL_MODEL)
        from_bytes.add_pipe("entity_ruler", before="hmtl_relations")
        from_bytes.from_bytes(nlp.to_bytes())
        assert [d._.hmtl_relations_data for d in from_bytes.pipe(texts)] == got
    finally:
        nlp.remove_pipe("entity_ruler")


# --- the scorer -------------------------------------------------------------------------


def test_scorer_hand_computed():
    vocab = spacy.blank("en").vocab
    # A: one relation found with a wrong argument type; one missed (its argument was never predicted)
    words_a = "Alice works for Acme in Paris .".split()
    gold_a = make_doc(vocab, words_a, None, [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")],
                      [[0, 1, 3, 4, "Work_For"], [3, 4, 5, 6, "OrgBased_In"]])
    pred_a = make_doc(vocab, words_a, None, [(0, 1, "PER"), (3, 4, "LOC")], [[0, 1, 3, 4, "Work_For"]])
    # B: a relation-free doc with a false positive
    words_b = "Bob ate . Carol slept .".split()
    gold_b = make_doc(vocab, words_b, [1, 0, 0, 1, 0, 0], [(0, 1, "PER"), (3, 4, "PER")], [])
    pred_b = make_doc(vocab, words_b, [1, 0, 0, 1, 0, 0], [(0, 1, "PER"), (3, 4, "PER")], [[0, 1, 3, 4, "Kill"]])
    # C: not annotated for relations: skipped, even with a prediction
    words_c = "Eve met Dan .".split()
    gold_c = make_doc(vocab, words_c, None, [(0, 1, "PER"), (2, 3, "PER")], None)
    pred_c = make_doc(vocab, words_c, None, [(0, 1, "PER"), (2, 3, "PER")], [[0, 1, 2, 3, "Kill"]])
    # D: fully right; E: predicted doc without records counts as predicting nothing
    words_d = "Dan lives in Rome .".split()
    gold_d = make_doc(vocab, words_d, None, [(0, 1, "PER"), (3, 4, "LOC")], [[0, 1, 3, 4, "Live_In"]])
    pred_d = make_doc(vocab, words_d, None, [(0, 1, "PER"), (3, 4, "LOC")], [[0, 1, 3, 4, "Live_In"]])
    gold_e = make_doc(vocab, words_d, None, [(0, 1, "PER"), (3, 4, "LOC")], [[3, 4, 0, 1, "Live_In"]])
    pred_e = make_doc(vocab, words_d, None, [], None)
    pairs = [(pred_a, gold_a), (pred_b, gold_b), (pred_c, gold_c), (pred_d, gold_d), (pred_e, gold_e)]
    examples = [Example(p, g) for p, g in pairs]
    scores = score_relations(examples)
    # boundaries: tp = 2 (A Work_For, D), fp = 1 (B), fn = 2 (A OrgBased_In, E)
    assert scores["rel_micro_p"] == pytest.approx(2 / 3)
    assert scores["rel_micro_r"] == pytest.approx(2 / 4)
    assert scores["rel_micro_f"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    # strict: tp = 1 (D), fp = 2 (A wrong type, B), fn = 3
    assert scores["rel_strict_p"] == pytest.approx(1 / 3)
    assert scores["rel_strict_r"] == pytest.approx(1 / 4)
    assert scores["rel_strict_f"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    per_type = scores["rel_per_type"]
    assert per_type["Work_For"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert per_type["OrgBased_In"] == {"p": 0.0, "r": 0.0, "f": 0.0}
    assert per_type["Kill"] == {"p": 0.0, "r": 0.0, "f": 0.0}
    assert per_type["Live_In"]["p"] == 1.0 and per_type["Live_In"]["r"] == 0.5
    # types from a spans key instead of doc.ents
    for doc in (pred_a, gold_a):
        doc.spans["mentions"] = [Span(doc, 0, 1, label="PER"), Span(doc, 3, 4, label="ORG")]
    strict = score_relations([examples[0]], entity_source="mentions")
    assert strict["rel_strict_p"] == 1.0 and strict["rel_strict_r"] == 0.5
    # default: doc.ents first, then doc.spans["mentions"]
    assert score_relations([examples[0]])["rel_strict_p"] == 0.0


def test_scorer_nothing_scored():
    vocab = spacy.blank("en").vocab
    words = "Eve met Dan .".split()
    eg = Example(make_doc(vocab, words, None, [], [[0, 1, 2, 3, "Kill"]]), make_doc(vocab, words))
    scores = score_relations([eg])
    assert all(scores[f"rel_{k}_{m}"] is None for k in ("micro", "strict") for m in "prf")
    assert score_relations([])["rel_micro_f"] is None


# --- decoding one relation per pair, symmetric labels, negative arguments ---------------


def test_select_one_per_pair_hand_computed():
    from spacy_hmtl.relations.pairs import select_one_per_pair

    # spans 0, 1, 2; both directions of (0, 1) and (1, 2), one direction of (0, 2)
    pairs = np.array([[0, 1], [1, 0], [1, 2], [2, 1], [0, 2]])
    probs = np.array(
        [
            [0.6, 0.7],  # (0, 1): label 1 at 0.7 ...
            [0.9, 0.1],  # ... but the reverse direction has label 0 at 0.9: it wins
            [0.2, 0.3],  # (1, 2): nothing reaches the threshold
            [0.4, 0.1],
            [0.1, 0.5],  # (0, 2): label 1 at exactly the threshold
        ]
    )
    rows, labels = select_one_per_pair(pairs, probs, threshold=0.5)
    assert rows.tolist() == [1, 4]
    assert labels.tolist() == [0, 1]
    empty_rows, _ = select_one_per_pair(np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2)), 0.5)
    assert empty_rows.size == 0


def test_decoding_modes_and_symmetric_labels(trained_nlp_examples_losses):
    from spacy_hmtl.relations.pairs import Candidates

    nlp, _, _ = trained_nlp_examples_losses
    rel = nlp.get_pipe("hmtl_relations")
    labels = rel.labels  # EVALUATE-FOR, Live_In, OrgBased_In, USED-FOR, Work_For
    cands = Candidates(
        starts=np.array([0, 3]), ends=np.array([2, 5]), types=np.array([0, 0]), pairs=np.array([[0, 1], [1, 0]])
    )
    probs = np.zeros((2, len(labels)), dtype=np.float32)
    probs[0, labels.index("Work_For")] = 0.8
    probs[1, labels.index("Live_In")] = 0.9
    probs[1, labels.index("Work_For")] = 0.6
    assert rel._decode_doc(cands, probs) == [[3, 5, 0, 2, "Live_In", pytest.approx(0.9)]]
    rel.decoding = "multi_label"
    try:
        assert len(rel._decode_doc(cands, probs)) == 3
    finally:
        rel.decoding = "one_per_pair"
    rel.symmetric_labels = frozenset({"Live_In"})
    try:
        # a symmetric label is written earlier span first, whichever direction scored
        assert rel._decode_doc(cands, probs) == [[0, 2, 3, 5, "Live_In", pytest.approx(0.9)]]
    finally:
        rel.symmetric_labels = frozenset()


def test_scorer_counts_a_reversed_relation_wrong(trained_nlp_examples_losses):
    nlp, _, _ = trained_nlp_examples_losses
    ref = make_doc(nlp.vocab, *DOCS[1][:3], DOCS[1][3])  # Mary Jones -Live_In-> Paris
    pred = make_doc(nlp.vocab, *DOCS[1][:3], [[4, 5, 0, 2, "Live_In"]])
    scores = score_relations([Example(pred, ref)])
    assert scores["rel_micro_p"] == 0.0 and scores["rel_micro_r"] == 0.0
    assert scores["rel_strict_f"] == 0.0
    same = make_doc(nlp.vocab, *DOCS[1][:3], [[0, 2, 4, 5, "Live_In"]])
    assert score_relations([Example(same, ref)])["rel_micro_f"] == 1.0


def test_sample_negative_spans_respects_sentences_width_and_gold():
    from spacy_hmtl.relations.pairs import sample_negative_spans

    sents = np.array([0] * 6 + [1] * 6)
    gold = {(0, 2), (7, 9)}
    rng = np.random.RandomState(0)
    spans = sample_negative_spans(sents, gold, n_samples=10, max_width=3, rng=rng)
    assert len(spans) == 10 == len(set(spans))
    for start, end in spans:
        assert (start, end) not in gold
        assert 1 <= end - start <= 3 and sents[start] == sents[end - 1]
    # near misses of the gold spans are among them
    assert any(s == 0 or e == 2 or s == 7 or e == 9 for s, e in spans)
    assert sample_negative_spans(sents[:0], set(), 5, 3, rng) == []


def test_training_candidates_include_negative_arguments():
    spacy.util.fix_random_seed(0)
    nlp = make_head_nlp("hmtl_relations", REL_MODEL, negative_spans=1.0)
    examples = gold_examples(nlp)
    nlp.initialize(lambda: examples)
    rel = nlp.get_pipe("hmtl_relations")
    eg = examples[0]  # 3 gold entity spans, 2 relations
    cands, targets = rel.training_candidates(eg)
    spans = set(zip(cands.starts.tolist(), cands.ends.tolist()))
    assert {(0, 2), (4, 6), (7, 8)} <= spans and len(spans) == 6
    assert targets.sum() == 2.0  # pairs with a sampled argument have no relation
    negatives = spans - {(0, 2), (4, 6), (7, 8)}
    index = {span: i for i, span in enumerate(zip(cands.starts.tolist(), cands.ends.tolist()))}
    rows = [r for r, (h, t) in enumerate(cands.pairs.tolist()) if {h, t} & {index[n] for n in negatives}]
    assert rows and targets[rows].sum() == 0.0
    # the predicted doc's own entities are arguments too
    eg.predicted.ents = [Span(eg.predicted, 1, 3, label="PER")]
    cands, _ = rel.training_candidates(eg)
    assert (1, 3) in set(zip(cands.starts.tolist(), cands.ends.tolist()))
    eg.predicted.ents = []
    rel.negative_spans = 0.0
    cands, _ = rel.training_candidates(eg)
    assert set(zip(cands.starts.tolist(), cands.ends.tolist())) == {(0, 2), (4, 6), (7, 8)}


def test_a_load_time_config_override_wins_over_the_saved_settings(trained_nlp_examples_losses, tmp_path):
    nlp, _, _ = trained_nlp_examples_losses
    nlp.to_disk(tmp_path / "pipeline")
    saved = spacy.load(tmp_path / "pipeline")
    assert saved.get_pipe("hmtl_relations").threshold == 0.5
    overrides = {"components": {"hmtl_relations": {"threshold": 0.9, "entity_source": "mentions", "decoding": "multi_label"}}}
    loaded = spacy.load(tmp_path / "pipeline", config=overrides)
    rel = loaded.get_pipe("hmtl_relations")
    assert rel.threshold == 0.9 and rel.entity_source == "mentions"
    assert rel.decoding == "multi_label"
    assert rel.entity_labels == nlp.get_pipe("hmtl_relations").entity_labels  # learned, kept


# --- optional pair features: words between the arguments, and their distance ---------


def test_gap_buckets_hand_computed():
    # the relation head buckets token gaps with the coref head's function
    gaps = torch.tensor([0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 5000])
    expected = [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
    assert distance_buckets(gaps).tolist() == expected


def test_between_mean_hand_computed():
    H = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)
    rows, lo, hi = torch.tensor([0, 1, 1]), torch.tensor([1, 2, 4]), torch.tensor([4, 3, 4])
    means = MultiHeadSelection.between_mean(H, rows, lo, hi)
    assert torch.allclose(means[0], H[0, 1:4].mean(0))
    assert torch.allclose(means[1], H[1, 2])
    assert torch.equal(means[2], torch.zeros(2))  # empty range: the spans touch


@pytest.mark.parametrize("context_pooling", [False, True])
def test_only_context_pooling_reads_the_words_between_the_arguments(context_pooling):
    # without a BiLSTM a token's state reaches a pair only through its features, so the
    # token strictly between the two spans changes the logits iff context pooling is on
    torch.manual_seed(0)
    module = MultiHeadSelection(
        4, 2, 1, lstm_width=0, lstm_depth=0, hidden_width=8, type_embedding=0, dropout=0.0,
        context_pooling=context_pooling, distance_embedding=3,
    )
    module.eval()
    X = torch.randn(1, 6, 4)
    lengths = torch.tensor([6])
    spans = torch.tensor([[0, 0, 1, 0], [0, 4, 4, 0]])  # tokens 0-1 and 4; 2-3 between
    pairs = torch.tensor([[0, 1], [1, 0]])
    changed = X.clone()
    changed[0, 2] += 1.0
    outside = X.clone()
    outside[0, 5] += 1.0
    with torch.no_grad():
        base, between, after = (module(x, lengths, spans, pairs) for x in (X, changed, outside))
    assert torch.equal(base, after)
    assert torch.equal(base, between) != context_pooling


def test_pair_product_scores_the_product_of_the_two_arguments_by_hand():
    # no BiLSTM, no types: an argument is [x_last ; x_first]; with U = W = 0, P = identity and
    # V = ones the logit of (i, j) is sum(relu(a_i * a_j)), which no additive term can give
    module = MultiHeadSelection(
        2, 1, 1, lstm_width=0, lstm_depth=0, hidden_width=4, type_embedding=0, dropout=0.0, pair_product=True,
    )
    module.eval()
    with torch.no_grad():
        for layer in (module.head_proj, module.tail_proj):
            layer.weight.zero_()
        module.head_proj.bias.zero_()
        module.product_proj.weight.copy_(torch.eye(4))
        module.label_out.weight.fill_(1.0)
        module.label_out.bias.zero_()
        X = torch.tensor([[[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]]])
        spans = torch.tensor([[0, 0, 1, 0], [0, 2, 2, 0]])  # tokens 0-1, token 2
        logits = module(X, torch.tensor([3]), spans, torch.tensor([[0, 1], [1, 0]]))
    a0 = torch.cat([X[0, 1], X[0, 0]])  # [last ; first]
    a1 = torch.cat([X[0, 2], X[0, 2]])
    expected = torch.relu(a0 * a1).sum()  # 0 + 2 + 0 + 0: only 0.5 * 4.0 is positive
    assert expected.item() == 2.0
    assert torch.allclose(logits, torch.stack([expected, expected]).unsqueeze(1))


def test_pair_product_off_keeps_the_module_as_before():
    kwargs = dict(lstm_width=3, lstm_depth=1, hidden_width=5, type_embedding=2, dropout=0.0)
    torch.manual_seed(0)
    old = MultiHeadSelection(4, 2, 1, **kwargs)
    torch.manual_seed(0)
    off = MultiHeadSelection(4, 2, 1, pair_product=False, **kwargs)
    assert off.product_proj is None
    assert {k: v.shape for k, v in old.state_dict().items()} == {k: v.shape for k, v in off.state_dict().items()}
    assert all(torch.equal(v, off.state_dict()[k]) for k, v in old.state_dict().items())
    on = MultiHeadSelection(4, 2, 1, pair_product=True, **kwargs)
    assert set(on.state_dict()) - set(off.state_dict()) == {"product_proj.weight"}


def test_pair_features_overfit_and_round_trip(tmp_path):
    spacy.util.fix_random_seed(0)
    pair_features = {"context_pooling": True, "distance_embedding": 8, "pair_product": True}
    nlp = make_head_nlp("hmtl_relations", {**REL_MODEL, **pair_features})
    examples = gold_examples(nlp)
    optimizer = Adam(5e-3)
    nlp.initialize(lambda: examples, sgd=optimizer)
    module = nlp.get_pipe("hmtl_relations").torch_module
    assert module.context_proj is not None and module.gap_embed.embedding_dim == 8
    assert module.product_proj is not None
    for _ in range(100):
        nlp.update(examples, sgd=optimizer)
    eval_examples = [Example(copy_with_gold_ents(eg.reference), eg.reference) for eg in examples]
    assert nlp.evaluate(eval_examples)["rel_strict_f"] == 1.0
    expected = [get_relation_records(d) for d in nlp.pipe(eg.predicted for eg in eval_examples)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("hmtl_relations").torch_module.context_proj is not None
    assert loaded.get_pipe("hmtl_relations").torch_module.product_proj is not None
    assert [get_relation_records(d) for d in loaded.pipe(eg.predicted for eg in eval_examples)] == expected
