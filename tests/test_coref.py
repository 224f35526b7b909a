"""Tests of the ``hmtl_coref`` head (spacy_hmtl.coref): torch module, component, scorer.

The stand-in encoder of ``helpers`` (a plain spaCy ``tok2vec`` pipe +
``spacy.Tok2VecListener.v1``) takes the place of the HMTL encoder and its listener.
"""
import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_hmtl.annotations import COREF_MARKER, get_coref_clusters, has_coref_annotation, set_coref_clusters
from spacy_hmtl.candidates import lowercase_keys, sentence_ids
from spacy_hmtl.coref.component import HMTLCoref
from spacy_hmtl.coref.scorer import SCORE_KEYS, make_coref_scorer, score_coref
from spacy_hmtl.coref.torch_module import CorefRanker, distance_buckets
from spacy_hmtl.layers.torch_bridge import pad_to_torch
from spacy_hmtl.layers.torch_head import HeadBatch

from helpers import STANDIN_WIDTH, factory_meta, make_head_nlp

TRAIN = [
    ("The parser uses a grammar . It is fast and it is robust .", [[(0, 2), (6, 7), (10, 11)]]),
    ("We propose a new method for tagging . This method outperforms the baseline .", [[(2, 5), (8, 10)]]),
    (
        "The corpus contains abstracts . Annotators labelled it with entities and they checked them .",
        [[(0, 2), (7, 8)], [(3, 4), (13, 14)], [(5, 6), (11, 12)]],
    ),
]


# the head's model in these tests (over the stand-in encoder): the factory's defaults, smaller
COREF_MODEL = {"@architectures": "spacy_hmtl.CorefRanker.v3", "lstm_width": 32, "hidden_width": 64, "dropout": 0.0}


def coref_examples(nlp, data=TRAIN):
    """Examples of ``data``: (text, clusters of (start, end) token offsets)."""
    examples = []
    for text, clusters in data:
        ref = nlp.make_doc(text)
        set_coref_clusters(ref, clusters)
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def unannotated_example(nlp, text="Nothing here is annotated for coreference , it says ."):
    return Example(nlp.make_doc(text), nlp.make_doc(text))


@pytest.fixture(scope="module")
def trained_nlp_examples():
    """``(nlp, examples)``: the stand-in + ``hmtl_coref`` pipeline overfitted on TRAIN."""
    fix_random_seed(0)
    torch.manual_seed(0)
    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    examples = coref_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.005)
    for _ in range(100):
        nlp.update(examples, sgd=optimizer)
    return nlp, examples


def cluster_texts(doc):
    return [[span.text for span in cluster] for cluster in doc._.coref_clusters]


def gold_texts(text, clusters):
    words = text.split()
    return [[" ".join(words[s:e]) for s, e in cluster] for cluster in clusters]


# --- the torch module ---------------------------------------------------------------


def test_distance_buckets():
    d = torch.tensor([1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 1000])
    assert distance_buckets(d).tolist() == [1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def _random_batch(lengths, n_in=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.zeros(len(lengths), max(lengths), n_in)
    for i, n in enumerate(lengths):
        X[i, :n] = torch.randn(n, n_in, generator=gen)
    return X, torch.tensor(lengths)


def _module(**kw):
    torch.manual_seed(1)
    cfg = dict(
        n_in=12, lstm_width=8, hidden_width=16, width_embedding=5, dropout=0.0, max_width=4,
        spans_per_word=0.4, max_antecedents=50, mention_loss_weight=1.0, product_width=0,
        antecedent_depth=2, non_crossing=True,
    )  # fmt: skip
    cfg.update(kw)
    return CorefRanker(**cfg).eval()


def _kept_spans(module, X, lengths):
    """The kept spans' embeddings ``(B, K, g_dim)``, mention scores and validity."""
    mask, offsets, x_flat, h_flat, sent = module._encode(X, lengths, None)
    scores = module._mention_scores(x_flat, h_flat, sent)
    start, width, m_scores, valid, _ = module._prune(scores, mask, lengths)
    return module._span_embeddings(x_flat, h_flat, start, width), m_scores, valid


def test_first_layer_decomposition_is_exact():
    """The summed per-token projections equal the FFNNs applied to explicit inputs."""
    module = _module()
    with torch.no_grad():
        g, m_scores, valid = _kept_spans(module, *_random_batch([9, 6]))
        explicit = module.mention_ffnn(g)
        assert torch.allclose(explicit[valid], m_scores[valid], atol=1e-5)
        for rows, pair_scores, ant, ok in module._antecedent_scores(g, m_scores, valid):
            for b, i, a in zip(*[t.tolist() for t in ok.nonzero(as_tuple=True)]):
                j = int(ant[b, i - rows.start, a])
                phi = module.distance_embedding(distance_buckets(torch.tensor(i - j)))
                pair = torch.cat([g[b, i], g[b, j], g[b, i] * g[b, j], phi])
                expected = module.antecedent_ffnn(pair) + m_scores[b, i] + m_scores[b, j]
                assert torch.allclose(expected, pair_scores[b, i - rows.start, a], atol=1e-4)


def test_spans_respect_sentences_and_docs():
    module = _module()
    X, lengths = _random_batch([6, 3])
    with torch.no_grad():
        mask, offsets, x_flat, h_flat, sent = module._encode(X, lengths, [[0, 0, 0, 1, 1, 1], None])
        valid = module._mention_scores(x_flat, h_flat, sent) > -1e29
    assert sent.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    ends = torch.arange(9)[:, None] + torch.arange(4)[None, :]
    expected = (ends < 9) & (sent[ends.clamp(max=8)] == sent[:, None])
    assert torch.equal(valid, expected)
    assert not valid[1, 2] and valid[0, 2] and not valid[5, 1]


def test_batch_equals_single_docs_and_chunking_is_invariant():
    module = _module()
    lengths = [11, 0, 7, 1, 15]
    X, L = _random_batch(lengths)
    gold = [[[(0, 2), (5, 6), (9, 10)]], [], [[(1, 2), (4, 6)]], [], [[(0, 1), (3, 4)], [(6, 8), (12, 13)]]]
    with torch.no_grad():
        batch_loss = module.loss(X, L, gold)
        single = sum(module.loss(X[i : i + 1, : max(n, 1)], L[i : i + 1], [gold[i]]) for i, n in enumerate(lengths))
        batch_pred = module.predict(X, L)
        single_pred = [module.predict(X[i : i + 1, : max(n, 1)], L[i : i + 1])[0] for i, n in enumerate(lengths)]
        module.chunk_tokens, module.chunk_pairs = 3, 5
        chunked_loss = module.loss(X, L, gold)
        chunked_pred = module.predict(X, L)
    assert float(batch_loss) == pytest.approx(float(single), rel=1e-4)
    assert float(chunked_loss) == pytest.approx(float(batch_loss), rel=1e-4)
    assert batch_pred == single_pred == chunked_pred
    assert batch_pred[1] == [] and batch_pred[3] == []


def test_loss_gradient_reaches_input_and_masks_padding():
    module = _module().train()
    X, L = _random_batch([8, 5])
    X.requires_grad_(True)
    loss = module.loss(X, L, [[[(0, 1), (4, 6)]], [[(0, 2), (3, 4)]]])
    loss.backward()
    assert loss.item() > 0
    assert X.grad[0, :8].abs().sum() > 0 and X.grad[1, :5].abs().sum() > 0
    assert X.grad[1, 5:].abs().sum() == 0


def test_settings_reach_the_torch_module():
    # the config's values travel as typed settings to the module the model builds
    from spacy_hmtl.coref.model import CorefRankerSettings
    from spacy_hmtl.layers.torch_head import head_settings

    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    nlp.initialize(lambda: coref_examples(nlp))
    coref = nlp.get_pipe("hmtl_coref")
    settings = head_settings(coref.model)
    assert isinstance(settings, CorefRankerSettings)
    assert settings.max_width == 8 and settings.max_antecedents == 50
    module = coref.torch_module
    assert module.n_in == STANDIN_WIDTH == coref.model.get_dim("nI")
    assert module.max_width == settings.max_width and module.max_antecedents == settings.max_antecedents


# --- the component ------------------------------------------------------------------


def test_factory_defaults():
    from spacy_hmtl.coref.component import DEFAULT_COREF_MODEL

    meta = factory_meta("hmtl_coref")
    assert meta.assigns == ["doc.spans"]
    assert meta.default_score_weights["coref_f"] == 1.0
    assert sum(w or 0 for w in meta.default_score_weights.values()) == 1.0
    assert DEFAULT_COREF_MODEL["@architectures"] == "spacy_hmtl.CorefRanker.v3"
    assert DEFAULT_COREF_MODEL["tok2vec"] == {
        "@architectures": "spacy_hmtl.HMTLListener.v1",
        "upstream": "hmtl_encoder",
        "level": 2,
        "shortcut": True,
        "width": 0,
    }
    assert meta.default_config["scorer"] == {"@scorers": "spacy_hmtl.coref_scorer.v1"}


def test_no_labels():
    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    coref = nlp.get_pipe("hmtl_coref")
    assert isinstance(coref, HMTLCoref) and coref.labels == () and coref.label_data == []
    with pytest.raises(ValueError):
        coref.add_label("X")
    # initialize works with no labels at all
    nlp.initialize(lambda: coref_examples(nlp))


def test_overfit_reaches_perfect_score(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    scores = nlp.evaluate(examples)
    assert scores["coref_f"] == 1.0
    assert scores["coref_lea_f"] == 1.0
    for (text, clusters), doc in zip(TRAIN, nlp.pipe([t for t, _ in TRAIN])):
        assert cluster_texts(doc) == gold_texts(text, clusters)
        assert COREF_MARKER in doc.spans and "coref_clusters_1" in doc.spans


def test_round_trips(trained_nlp_examples):
    nlp, _ = trained_nlp_examples
    texts = [t for t, _ in TRAIN]
    docs = list(nlp.pipe(texts))
    expected = [cluster_texts(d) for d in docs]
    assert all(expected)
    # Doc.to_bytes
    restored = [Doc(nlp.vocab).from_bytes(d.to_bytes()) for d in docs]
    assert [cluster_texts(d) for d in restored] == expected
    # DocBin(store_user_data=True)
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    assert [cluster_texts(d) for d in restored] == expected
    assert [get_coref_clusters(d) for d in restored] == [get_coref_clusters(d) for d in docs]
    # nlp.pipe with two processes
    multi = list(nlp.pipe(texts, n_process=2, batch_size=1))
    assert [cluster_texts(d) for d in multi] == expected


def test_pipeline_serialization(trained_nlp_examples, tmp_path):
    nlp, _ = trained_nlp_examples
    texts = [t for t, _ in TRAIN]
    expected = [cluster_texts(d) for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert [cluster_texts(d) for d in loaded.pipe(texts)] == expected
    nlp2 = make_head_nlp("hmtl_coref", COREF_MODEL)
    nlp2.from_bytes(nlp.to_bytes())
    assert [cluster_texts(d) for d in nlp2.pipe(texts)] == expected


def test_a_saved_pipeline_decodes_with_another_antecedent_window(trained_nlp_examples, tmp_path):
    # max_antecedents holds no weights: a config override at load time changes the window
    # (how a pipeline trained on short documents is decoded on long ones)
    nlp, _ = trained_nlp_examples
    texts = [t for t, _ in TRAIN]
    nlp.to_disk(tmp_path / "model")
    override = {"components.hmtl_coref.model.max_antecedents": 1000}
    wide = spacy.load(tmp_path / "model", config=override)
    module = wide.get_pipe("hmtl_coref").torch_module
    assert module.max_antecedents == 1000
    for p, q in zip(nlp.get_pipe("hmtl_coref").torch_module.parameters(), module.parameters()):
        assert torch.equal(p, q)
    # these documents have fewer kept spans than 50: a wider window finds the same clusters
    assert [cluster_texts(d) for d in wide.pipe(texts)] == [cluster_texts(d) for d in nlp.pipe(texts)]
    # one antecedent: each span may only link to the kept span right before it, so the
    # clusters the full window finds are not all reachable (the override reaches decoding)
    narrow = spacy.load(tmp_path / "model", config={"components.hmtl_coref.model.max_antecedents": 1})
    assert narrow.get_pipe("hmtl_coref").torch_module.max_antecedents == 1
    assert [cluster_texts(d) for d in narrow.pipe(texts)] != [cluster_texts(d) for d in nlp.pipe(texts)]
    # the pipe's decode_max_antecedents does the same without touching the model's window
    decode_narrow = spacy.load(tmp_path / "model", config={"components.hmtl_coref.decode_max_antecedents": 1})
    assert decode_narrow.get_pipe("hmtl_coref").torch_module.max_antecedents == 50
    assert [cluster_texts(d) for d in decode_narrow.pipe(texts)] == [cluster_texts(d) for d in narrow.pipe(texts)]


def test_decode_max_antecedents_must_be_positive():
    with pytest.raises(ValueError, match="decode_max_antecedents"):
        make_head_nlp("hmtl_coref", {"@architectures": "spacy_hmtl.CorefRanker.v3"}, decode_max_antecedents=0)


def test_link_threshold_trades_precision_for_recall(trained_nlp_examples, tmp_path):
    nlp, _ = trained_nlp_examples
    texts = [t for t, _ in TRAIN]
    nlp.to_disk(tmp_path / "model")

    def linked_spans(threshold):
        loaded = spacy.load(tmp_path / "model", config={"components.hmtl_coref.link_threshold": threshold})
        assert loaded.get_pipe("hmtl_coref").link_threshold == threshold
        return sum(len(cluster) for doc in loaded.pipe(texts) for cluster in doc._.coref_clusters)

    default = sum(len(cluster) for doc in nlp.pipe(texts) for cluster in doc._.coref_clusters)
    assert linked_spans(0.0) == default > 0
    # no antecedent score beats +1e9: no cluster; every kept span beats -1e9: more links
    assert linked_spans(1e9) == 0
    assert linked_spans(-1e9) > default


def test_unannotated_batch_adds_no_loss_and_no_gradient():
    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    examples = coref_examples(nlp)
    nlp.initialize(lambda: examples)
    coref = nlp.get_pipe("hmtl_coref")
    before = [p.detach().clone() for p in coref.torch_module.parameters()]
    losses = {}
    unannotated = [unannotated_example(nlp), unannotated_example(nlp, "It is short .")]
    assert not any(has_coref_annotation(eg.reference) for eg in unannotated)
    coref.update(unannotated, sgd=Adam(0.01), losses=losses)
    assert losses["hmtl_coref"] == 0.0
    for p, q in zip(before, coref.torch_module.parameters()):
        assert torch.equal(p, q) and (q.grad is None or q.grad.abs().sum() == 0)


def test_unannotated_docs_do_not_change_the_loss():
    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    examples = coref_examples(nlp)
    nlp.initialize(lambda: examples)
    coref = nlp.get_pipe("hmtl_coref")
    module = coref.torch_module.eval()
    extra = [unannotated_example(nlp, " ".join(["word"] * 40)), unannotated_example(nlp)]
    mixed = [extra[0], examples[0], examples[1], extra[1], examples[2]]

    def loss_of(batch):
        docs = [eg.predicted for eg in batch]
        tokvecs = coref.model.get_ref("tok2vec").predict(docs)
        X, lengths = pad_to_torch(tokvecs, torch.device("cpu"), requires_grad=True)
        loss = coref.compute_loss(batch, HeadBatch(X, lengths, module))
        loss.backward()
        return float(loss.detach()), X.grad

    # the listener reads doc.tensor at inference: set it from the tok2vec pipe
    tok2vec = nlp.get_pipe("tok2vec")
    all_docs = [eg.predicted for eg in mixed]
    tok2vec.set_annotations(all_docs, tok2vec.predict(all_docs))
    alone, _ = loss_of(examples)
    with_extra, grad = loss_of(mixed)
    assert alone > 0
    assert with_extra == pytest.approx(alone, rel=1e-5)
    assert grad[0].abs().sum() == 0 and grad[3].abs().sum() == 0
    assert grad[1].abs().sum() > 0


def test_unannotated_docs_do_not_change_the_score(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    base = score_coref(examples)
    extra = unannotated_example(nlp, "The parser is fast . It works .")
    set_coref_clusters(extra.predicted, [[(0, 2), (5, 6)]])
    assert score_coref(examples + [extra]) == base
    nothing = score_coref([extra])
    assert set(nothing) == set(SCORE_KEYS) and all(v is None for v in nothing.values())


def test_scorer_values_and_registry():
    nlp = spacy.blank("en")
    ref = nlp.make_doc("The parser works and it is fast . The grammar helps it .")
    pred = nlp.make_doc(ref.text)
    set_coref_clusters(ref, [[(0, 2), (4, 5), (11, 12)], [(8, 10)]])
    set_coref_clusters(pred, [[(0, 2), (4, 5)], [(8, 10), (11, 12)]])
    scorer = spacy.registry.scorers.get("spacy_hmtl.coref_scorer.v1")()
    scores = scorer([Example(pred, ref)])
    assert set(scores) == set(SCORE_KEYS)
    assert scores["coref_muc_r"] == pytest.approx(0.5) and scores["coref_muc_p"] == pytest.approx(0.5)
    avg = (scores["coref_muc_f"] + scores["coref_b3_f"] + scores["coref_ceafe_f"]) / 3
    assert scores["coref_f"] == pytest.approx(avg)
    # gold singleton: counted by default, dropped on request
    no_single = make_coref_scorer(remove_singletons=True)([Example(pred, ref)])
    assert scores["coref_b3_r"] == pytest.approx((5 / 3 + 1) / 4)
    assert no_single["coref_b3_r"] == pytest.approx((5 / 3) / 3)
    # empty prediction: zeros, no division error
    empty = nlp.make_doc(ref.text)
    zero = score_coref([Example(empty, ref)])
    assert zero["coref_f"] == 0.0 and zero["coref_lea_p"] == 0.0


def test_gold_mapped_to_a_different_tokenization():
    nlp = make_head_nlp("hmtl_coref", COREF_MODEL)
    words = ["The", "parser", "'s", "grammar", "is", "big", ".", "It", "works", "."]
    spaces = [True, False, True, True, True, False, True, True, False, False]
    ref = Doc(nlp.vocab, words=words, spaces=spaces)
    set_coref_clusters(ref, [[(0, 2), (7, 8)]])
    pred = nlp.make_doc(ref.text)
    eg = Example(pred, ref)
    mapped = nlp.get_pipe("hmtl_coref").gold_clusters(eg)
    assert [[pred[s:e].text for s, e in c] for c in mapped] == [["The parser", "It"]]


def test_sentence_ids():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp("One two . Three four five . Six")
    assert sentence_ids(doc).tolist() == [0, 0, 0, 1, 1, 1, 1, 2]
    assert sentence_ids(spacy.blank("en")("no sentences here")) is None


def test_edge_case_docs(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    long_text = " ".join(["The parser uses a grammar and it is fast ."] * 2000)
    docs = list(nlp.pipe(["", "Parser", long_text]))
    assert docs[0]._.coref_clusters == [] and docs[1]._.coref_clusters == []
    assert len(docs[2]) == 20000
    assert isinstance(docs[2]._.coref_clusters, list)
    for cluster in docs[2]._.coref_clusters:
        assert len(cluster) >= 2 and all(len(span) <= 8 for span in cluster)
    # updates with empty / one-token annotated docs work
    fresh = make_head_nlp("hmtl_coref", COREF_MODEL)
    data = [("", []), ("Parser", []), ("The parser works . It is fast .", [[(0, 2), (4, 5)]])]
    egs = coref_examples(fresh, data)
    fresh.initialize(lambda: egs)
    losses = {}
    fresh.update(egs[:1], sgd=Adam(0.01), losses=losses)  # an empty doc: nothing to learn
    assert losses["hmtl_coref"] == 0.0
    # a one-token doc without clusters still teaches "no mention here" (mention loss)
    fresh.update(egs[:2], sgd=Adam(0.01), losses=losses)
    fresh.update(egs, sgd=Adam(0.01), losses=losses)
    assert numpy.isfinite(losses["hmtl_coref"]) and losses["hmtl_coref"] > 0


# --- pruning without crossing spans, singletons -------------------------------------------


def _crosses(a, b):
    (s1, e1), (s2, e2) = a, b
    return s1 < s2 <= e1 < e2 or s2 < s1 <= e2 < e1


def test_non_crossing_pruning_matches_the_greedy_definition():
    from spacy_hmtl.coref.span_pruning import non_crossing_top_spans

    rng = numpy.random.RandomState(0)
    T, W = 12, 4
    for _trial in range(20):
        scores = torch.from_numpy(rng.randn(1, T * W).astype("float32"))
        scores[0, rng.rand(T * W) < 0.2] = -1e30  # some non-candidates
        ends = numpy.arange(T * W) // W + numpy.arange(T * W) % W
        scores[0, torch.from_numpy(ends >= T)] = -1e30  # past the doc's end
        k = 6
        idx, valid = non_crossing_top_spans(scores, [k], k, W)
        got = sorted(int(i) for i, v in zip(idx[0], valid[0]) if v)
        # brute-force greedy: highest score first, skip spans crossing a kept one
        kept = []
        for i in sorted(range(T * W), key=lambda i: -float(scores[0, i])):
            if float(scores[0, i]) < -1e29:
                break
            span = (i // W, i // W + i % W)
            if not any(_crosses(span, (j // W, j // W + j % W)) for j in kept):
                kept.append(i)
            if len(kept) == k:
                break
        assert got == sorted(kept)
        spans = [(i // W, i // W + i % W) for i in got]
        assert not any(_crosses(a, b) for a in spans for b in spans)


def test_pruning_keeps_no_crossing_spans_and_the_option_can_turn_it_off():
    X, lengths = _random_batch([15, 9])
    crossing = {}
    for non_crossing in (True, False):
        module = _module(non_crossing=non_crossing, spans_per_word=0.8)
        module.eval()
        with torch.no_grad():
            mask, offsets, x_flat, h_flat, sent = module._encode(X, lengths, None)
            scores = module._mention_scores(x_flat, h_flat, sent)
            start, width, _, valid, local = module._prune(scores, mask, lengths)
        for b in range(2):
            spans = [(int(s), int(s) + int(w)) for s, w, v in zip(local[b], width[b], valid[b]) if v]
            assert len(spans) == int(0.8 * int(lengths[b]))
            assert spans == sorted(spans)
            crossing[non_crossing, b] = any(_crosses(a, c) for a in spans for c in spans)
    assert not crossing[True, 0] and not crossing[True, 1]
    # plain top-k keeps crossing spans on the same scores: the constraint is what removed them
    assert crossing[False, 0]


def test_singletons_are_predicted_only_when_asked():
    X, lengths = _random_batch([10])
    module = _module()
    module.eval()
    with torch.no_grad():
        # every span is a confident mention, no antecedent link scores above the dummy
        module.mention_ffnn.out.bias.fill_(50.0)
        module.antecedent_ffnn.out.bias.fill_(-1e4)
        plain = module.predict(X, lengths)
        with_singletons = module.predict(X, lengths, singletons=True)
    assert plain == [[]]
    clusters = with_singletons[0]
    assert clusters and all(len(c) == 1 for c in clusters)
    assert len(clusters) == int(0.4 * 10)


# --- the string-match pair feature (match_embedding > 0) ------------------------------


def test_lowercase_keys():
    doc = spacy.blank("en")("The method and the METHOD differ from it")
    keys = lowercase_keys(doc)
    assert keys.dtype == numpy.int64 and len(keys) == len(doc)
    assert keys[0] == keys[3] and keys[1] == keys[4] and keys[1] != keys[2]
    assert keys[4].astype(numpy.uint64) == doc.vocab.strings["method"]
    assert len(lowercase_keys(spacy.blank("en")(""))) == 0


def test_span_match_keys_by_hand():
    module = _module(match_embedding=3)
    # doc 0 words: a b a b c ; doc 1: b a
    keys = [[1, 2, 1, 2, 3], [2, 1]]
    lengths = torch.tensor([5, 2])
    # flat (batch-wide) starts and widths (width index 0 = one token)
    start = torch.tensor([[0, 2, 1, 0], [5, 6, 5, 5]])
    width = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    text_id, last = module._span_match_keys(keys, lengths, start, width)
    # "a b" (0-2), "a b" (2-4) and "b a" (doc 1) vs "b" (1) and "a" (0)
    assert text_id[0, 0] == text_id[0, 1]
    assert text_id[1, 0] != text_id[0, 0]  # "b a" is not "a b"
    assert text_id[0, 2] == text_id[1, 2]  # "b" in doc 0 and "b" (flat 5) in doc 1
    assert text_id[0, 3] != text_id[0, 2]
    assert text_id[1, 1] == text_id[0, 3]  # "a" (flat 6, doc 1) and "a" (0)
    assert last.tolist() == [[2, 2, 2, 1], [1, 1, 2, 2]]
    with pytest.raises(ValueError, match="token keys"):
        module._span_match_keys(None, lengths, start, width)
    with pytest.raises(ValueError, match="4 token keys for a doc of 5"):
        module._span_match_keys([[1, 2, 3, 4], [1, 2]], lengths, start, width)
    assert _module()._span_match_keys(None, lengths, start, width) is None


def test_match_feature_links_spans_with_the_same_words():
    """With every other input of the antecedent scorer zeroed, only same-word spans link,
    and the words decide, not the vectors."""
    module = _module(match_embedding=2, max_width=1, spans_per_word=1.0, antecedent_depth=1)
    X, lengths = _random_batch([5])
    with torch.no_grad():
        module.mention_ffnn.out.weight.zero_()
        module.mention_ffnn.out.bias.fill_(-1.0)  # every span: mention score -1
        first = module.antecedent_ffnn.first
        first.weight.zero_()
        first.bias.zero_()
        first.weight[:, -2:] = 1.0  # only the match embedding reaches the hidden layer
        module.match_embedding.weight.zero_()
        module.match_embedding.weight[3] = 5.0  # same words and same last word
        module.antecedent_ffnn.out.weight.fill_(1.0 / first.weight.shape[0] / 2)
        module.antecedent_ffnn.out.bias.zero_()
        # pair score = -1 - 1 + 5 for the same words, -2 otherwise (the dummy scores 0)
        same = module.predict(X, lengths, token_keys=[[7, 8, 7, 9, 8]])
        none = module.predict(X, lengths, token_keys=[[1, 2, 3, 4, 5]])
    assert same == [[[(0, 1), (2, 3)], [(1, 2), (4, 5)]]]
    assert none == [[]]


def test_match_feature_off_keeps_the_old_module_and_config():
    from spacy_hmtl.coref.component import DEFAULT_COREF_MODEL

    assert DEFAULT_COREF_MODEL["match_embedding"] == 0
    plain = _module()
    assert plain.match_embedding is None
    assert not any("match" in name for name in plain.state_dict())
    with_match = _module(match_embedding=4)
    assert with_match.antecedent_ffnn.first.in_features == plain.antecedent_ffnn.first.in_features + 4


def test_match_feature_trains_in_a_pipeline_and_round_trips(tmp_path):
    fix_random_seed(0)
    torch.manual_seed(0)
    nlp = make_head_nlp("hmtl_coref", {**COREF_MODEL, "match_embedding": 8})
    examples = coref_examples(nlp)
    nlp.initialize(lambda: examples)
    module = nlp.get_pipe("hmtl_coref").torch_module
    before = module.match_embedding.weight.detach().clone()
    optimizer = Adam(0.005)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    assert not torch.equal(before, module.match_embedding.weight.detach())
    assert nlp.evaluate(examples)["coref_f"] == 1.0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    texts = [t for t, _ in TRAIN]
    assert [cluster_texts(d) for d in loaded.pipe(texts)] == [cluster_texts(d) for d in nlp.pipe(texts)]


def test_kept_spans_hold_every_predicted_mention(trained_nlp_examples):
    nlp, examples = trained_nlp_examples
    coref = nlp.get_pipe("hmtl_coref")
    docs = list(nlp.pipe([eg.predicted.text for eg in examples], disable=["hmtl_coref"]))
    batch = coref.model.predict(docs)
    kept = batch.module.kept_spans(batch.X, batch.lengths, [sentence_ids(doc) for doc in docs])
    clusters = coref.decode(docs, batch)
    for doc, spans, found in zip(docs, kept, clusters):
        assert len(spans) == int(0.4 * len(doc)) and spans == sorted(spans)
        assert {m for cluster in found for m in cluster} <= set(spans)


def test_coref_diagnostics_pruning_recall_of_an_overfit_head(trained_nlp_examples):
    from spacy_hmtl_dev.coref_diagnostics import pruning_recall

    nlp, examples = trained_nlp_examples
    recall = pruning_recall(nlp, [eg.reference for eg in examples])
    n_mentions = sum(len(c) for _, clusters in TRAIN for c in clusters)
    assert recall == {"gold_mentions": n_mentions, "kept_mentions": 1.0, "gold_links": n_mentions - 5, "kept_links": 1.0}


# --- coarse-to-fine pruning (Lee et al. 2018, spacy_hmtl.CorefRanker.v2) ---------------------


def test_coarse_to_fine_scores_the_best_coarse_candidates_by_hand():
    module = _module(coarse_width=6, coarse_antecedents=3)
    with torch.no_grad():
        module.coarse_distance.weight.normal_()  # a trained prior (it starts at zero)
        g, m_scores, valid = _kept_spans(module, *_random_batch([30, 20]))
        seen = 0
        for rows, pair_scores, ant, ok in module._antecedent_scores(g, m_scores, valid):
            assert ant.shape[-1] <= 3  # the FFNN ran on at most 3 candidates per span
            for b, r in zip(*[t.tolist() for t in valid[:, rows].nonzero(as_tuple=True)]):
                i = rows.start + r
                earlier = [j for j in range(max(0, i - 50), i) if valid[b, j]]
                prior = {j: float(module.coarse_distance(distance_buckets(torch.tensor(i - j)))) for j in earlier}
                coarse = {j: float(module.coarse_i(g[b, i]) @ module.coarse_j(g[b, j]) + m_scores[b, i] + m_scores[b, j]) + prior[j] for j in earlier}
                best3 = sorted(coarse, key=coarse.get, reverse=True)[:3]
                chosen = [int(j) for j, keep in zip(ant[b, r], ok[b, r]) if keep]
                assert sorted(chosen) == sorted(best3)
                for j, score in zip(ant[b, r].tolist(), pair_scores[b, r].tolist()):
                    if j < 0:
                        continue
                    phi = module.distance_embedding(distance_buckets(torch.tensor(i - j)))
                    pair = torch.cat([g[b, i], g[b, j], g[b, i] * g[b, j], phi])
                    assert abs(float(module.antecedent_ffnn(pair)) + coarse[j] - score) < 1e-4
                    seen += 1
        assert seen > 40


def test_coarse_to_fine_gradient_reaches_the_coarse_scorer():
    module = _module(coarse_width=6, coarse_antecedents=2).train()
    X, L = _random_batch([8, 5])
    loss = module.loss(X, L, [[[(0, 1), (4, 6)]], [[(0, 2), (3, 4)]]])
    loss.backward()
    assert module.coarse_i.weight.grad.abs().sum() > 0 and module.coarse_j.weight.grad.abs().sum() > 0
    assert module.coarse_distance.weight.grad.abs().sum() > 0


def test_coarse_loss_is_the_marginal_likelihood_of_the_coarse_scores_by_hand():
    """coarse_loss_weight (CorefRanker.v3): the loss grows by the weight times the negative
    marginal log-likelihood of the gold antecedents under the coarse scores alone, over every
    candidate of the window (here 50, while the FFNN sees the coarse best 3)."""
    X, L = _random_batch([30, 20])
    clusters = [[[(0, 1), (4, 6), (10, 12)], [(2, 3), (20, 21)]], [[(0, 2), (3, 4), (15, 17)]]]
    # every span kept (4 per word, no crossing rule), so the gold mentions are among them
    keep_all = dict(coarse_width=6, coarse_antecedents=3, spans_per_word=4.0, non_crossing=False)
    plain = _module(**keep_all)
    weighted = _module(**keep_all, coarse_loss_weight=0.5)
    with torch.no_grad():
        for module in (plain, weighted):
            module.coarse_distance.weight.copy_(torch.linspace(-1, 1, module.coarse_distance.weight.shape[0])[:, None])
        gained = float(weighted.loss(X, L, clusters) - plain.loss(X, L, clusters))
        mask, offsets, x_flat, h_flat, sent = plain._encode(X, L, None)
        start, width, m_scores, valid, local_start = plain._prune(plain._mention_scores(x_flat, h_flat, sent), mask, L)
        g = plain._span_embeddings(x_flat, h_flat, start, width)
        expected, linked = 0.0, 0
        for b in range(len(clusters)):
            span_of = {k: (int(local_start[b, k]), int(local_start[b, k] + width[b, k] + 1)) for k in range(valid.shape[1]) if valid[b, k]}
            cluster_of = {span: c for c, cluster in enumerate(clusters[b]) for span in cluster}
            for i in span_of:
                earlier = [j for j in span_of if max(0, i - 50) <= j < i]
                coarse = {
                    j: float(plain.coarse_i(g[b, i]) @ plain.coarse_j(g[b, j]) + m_scores[b, i] + m_scores[b, j])
                    + float(plain.coarse_distance(distance_buckets(torch.tensor(i - j))))
                    for j in earlier
                }
                mine = cluster_of.get(span_of[i])
                gold = [coarse[j] for j in earlier if mine is not None and cluster_of.get(span_of[j]) == mine]
                linked += bool(gold)
                everything = torch.tensor([0.0] + list(coarse.values()))
                expected += float(torch.logsumexp(everything, 0) - torch.logsumexp(torch.tensor(gold or [0.0]), 0))
    assert linked >= 3  # some kept spans have a gold antecedent among their candidates
    assert abs(gained - 0.5 * expected) < 1e-3 * max(1.0, abs(expected))
    # it trains the coarse scorer and the mention scores it adds
    weighted.train()
    weighted.loss(X, L, clusters).backward()
    assert weighted.coarse_i.weight.grad.abs().sum() > 0 and weighted.coarse_distance.weight.grad.abs().sum() > 0


def test_coarse_to_fine_settings_go_together():
    with pytest.raises(ValueError, match="coarse_width and coarse_antecedents go together"):
        _module(coarse_width=6)
    with pytest.raises(ValueError, match="coarse_width and coarse_antecedents go together"):
        make_head_nlp("hmtl_coref", {**COREF_MODEL, "coarse_antecedents": 5})
    assert not any("coarse" in name for name in _module().state_dict())  # off: the old weights
    with pytest.raises(ValueError, match="coarse_loss_weight must be >= 0, and > 0 only with coarse-to-fine"):
        _module(coarse_loss_weight=1.0)
    with pytest.raises(ValueError, match="coarse_loss_weight must be >= 0"):
        _module(coarse_width=6, coarse_antecedents=5, coarse_loss_weight=-1.0)
    with pytest.raises(ValueError, match="decode_coarse_antecedents is set .* no coarse-to-fine"):
        make_head_nlp("hmtl_coref", COREF_MODEL, decode_coarse_antecedents=10)
    with pytest.raises(ValueError, match="decode_coarse_antecedents must be >= 1"):
        make_head_nlp("hmtl_coref", {**COREF_MODEL, "coarse_width": 6, "coarse_antecedents": 5}, decode_coarse_antecedents=0)


@pytest.mark.parametrize("coarse_loss_weight", [0.0, 1.0])
def test_coarse_to_fine_trains_in_a_pipeline_and_round_trips(tmp_path, monkeypatch, coarse_loss_weight):
    fix_random_seed(0)
    torch.manual_seed(0)
    settings = {"coarse_width": 16, "coarse_antecedents": 3, "coarse_loss_weight": coarse_loss_weight}
    nlp = make_head_nlp("hmtl_coref", {**COREF_MODEL, **settings})
    examples = coref_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.005)
    for _ in range(100):
        nlp.update(examples, sgd=optimizer)
    assert nlp.evaluate(examples)["coref_f"] == 1.0
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("hmtl_coref").torch_module.coarse_antecedents == 3
    assert loaded.get_pipe("hmtl_coref").torch_module.coarse_loss_weight == coarse_loss_weight
    texts = [t for t, _ in TRAIN]
    assert [cluster_texts(d) for d in loaded.pipe(texts)] == [cluster_texts(d) for d in nlp.pipe(texts)]
    # decode_coarse_antecedents: the candidates per span that reach the FFNN at inference
    import spacy_hmtl.coref.torch_module as coref_torch

    seen = []
    decode = coref_torch.best_coarse_antecedents

    def spy(*args, **kwargs):
        seen.append(kwargs["fine"])
        return decode(*args, **kwargs)

    monkeypatch.setattr(coref_torch, "best_coarse_antecedents", spy)
    same = spacy.load(tmp_path / "p", config={"components.hmtl_coref.decode_coarse_antecedents": 3})
    assert [cluster_texts(d) for d in same.pipe(texts)] == [cluster_texts(d) for d in nlp.pipe(texts)]
    one = spacy.load(tmp_path / "p", config={"components.hmtl_coref.decode_coarse_antecedents": 1})
    seen.clear()
    list(one.pipe(texts))
    assert seen and set(seen) == {1}
