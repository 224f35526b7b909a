"""spacy_hmtl.cache_frozen_features.v1: a frozen, annotating upstream runs once per document,
and training with the cache gives the same weights as without it."""

import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_hmtl.training.feature_cache import FrozenFeatureCache, doc_key, make_frozen_feature_cache

from test_transformer_features import build_trf_pipeline, ner_examples

TEXTS = ["A first document here .", "The second one , a bit longer than the first .", "Third ."]


def tok2vec_pipeline(frozen: bool = True):
    """A frozen, annotating spaCy tok2vec (it writes doc.tensor), as a cheap upstream."""
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    nlp.initialize()
    training = nlp.config["training"]
    training["frozen_components"] = ["tok2vec"] if frozen else []
    training["annotating_components"] = ["tok2vec"]
    return nlp


def count_predictions(pipe) -> list:
    """Record the docs of every real forward pass of ``pipe``."""
    seen = []
    predict = pipe.predict

    def counted(docs):
        docs = list(docs)
        seen.append(len(docs))
        return predict(docs)

    pipe.predict = counted
    return seen


def annotate(nlp, texts, name="tok2vec"):
    docs = [nlp.make_doc(t) for t in texts]
    return list(nlp.get_pipe(name).pipe(docs, batch_size=2))


def test_callback_is_registered_and_validates():
    callback = spacy.registry.callbacks.get("spacy_hmtl.cache_frozen_features.v1")
    assert isinstance(callback(max_mb=10), FrozenFeatureCache)
    with pytest.raises(ValueError, match="max_mb"):
        make_frozen_feature_cache(max_mb=0)


def test_seen_documents_are_not_run_again_and_get_identical_features():
    nlp = tok2vec_pipeline()
    seen = count_predictions(nlp.get_pipe("tok2vec"))
    fresh = [doc.tensor.copy() for doc in annotate(nlp, TEXTS)]
    cache = FrozenFeatureCache()
    cache(nlp, {"step": 0, "epoch": 0})
    first = annotate(nlp, TEXTS)
    calls = sum(seen)
    second = annotate(nlp, TEXTS)
    assert sum(seen) == calls  # no forward pass for documents seen before
    for a, b, f in zip(first, second, fresh):
        numpy.testing.assert_array_equal(a.tensor, b.tensor)
        numpy.testing.assert_array_equal(b.tensor, f)
    assert cache.stats()["tok2vec"] == {"hits": 3, "misses": 3, "memory_mb": pytest.approx(cache.caches[0].bytes / 2**20), "on_disk": 0}
    # a changed text, or the same text tokenized differently, is a new document
    annotate(nlp, ["A first document here !"])
    assert sum(seen) == calls + 1
    same_text = nlp.make_doc("Third .")
    split = spacy.tokens.Doc(nlp.vocab, words=["Thi", "rd", "."], spaces=[False, True, False])
    assert same_text.text == split.text and doc_key(same_text) != doc_key(split)


def test_weights_that_change_drop_the_stored_features_at_the_next_epoch():
    nlp = tok2vec_pipeline()
    seen = count_predictions(nlp.get_pipe("tok2vec"))
    cache = FrozenFeatureCache()
    cache(nlp, {"step": 0, "epoch": 0})
    before = [d.tensor.copy() for d in annotate(nlp, TEXTS)]
    model = nlp.get_pipe("tok2vec").model
    for node in model.walk():
        for name in node.param_names:
            if node.has_param(name):
                node.set_param(name, node.get_param(name) + 0.5)
    cache(nlp, {"step": 1, "epoch": 1})
    calls = sum(seen)
    after = annotate(nlp, TEXTS)
    assert sum(seen) == calls + len(TEXTS)
    assert not numpy.allclose(before[0], after[0].tensor)


def test_only_frozen_annotating_components_are_cached():
    nlp = tok2vec_pipeline(frozen=False)
    cache = FrozenFeatureCache()
    cache(nlp, {"step": 0, "epoch": 0})
    assert cache.caches == []
    assert "pipe" not in nlp.get_pipe("tok2vec").__dict__


@pytest.mark.parametrize("with_store", [True, False])
def test_bounded_memory_spills_to_disk_or_drops(tmp_path, with_store):
    nlp = tok2vec_pipeline()
    seen = count_predictions(nlp.get_pipe("tok2vec"))
    fresh = [d.tensor.copy() for d in annotate(nlp, TEXTS)]
    # room for about one document's features
    cache = FrozenFeatureCache(max_mb=fresh[1].nbytes / 2**20, store_dir=str(tmp_path) if with_store else None)
    cache(nlp, {"step": 0, "epoch": 0})
    annotate(nlp, TEXTS)
    stats = cache.stats()["tok2vec"]
    assert cache.caches[0].bytes <= cache.max_bytes
    calls = sum(seen)
    again = annotate(nlp, TEXTS)
    for doc, expected in zip(again, fresh):
        numpy.testing.assert_array_equal(doc.tensor, expected)
    if with_store:
        assert stats["on_disk"] >= 1
        assert sum(seen) == calls  # every document came back from memory or disk
    else:
        assert sum(seen) > calls  # evicted documents are recomputed
    cache.close()
    assert "pipe" not in nlp.get_pipe("tok2vec").__dict__
    assert not any(tmp_path.glob("hmtl-features-*"))


def test_training_with_the_cache_equals_training_without_it(minilm_pipeline_path):
    """The real use: configs/scierc_trf.cfg's frozen MiniLM, two epochs of a tiny corpus."""

    def train(with_cache: bool):
        fix_random_seed(0)
        nlp = build_trf_pipeline(minilm_pipeline_path)
        nlp.config["training"]["frozen_components"] = ["transformer"]
        nlp.config["training"]["annotating_components"] = ["transformer"]
        examples = ner_examples(nlp)
        with nlp.select_pipes(disable=["transformer"]):
            nlp.initialize(lambda: examples)
        seen = count_predictions(nlp.get_pipe("transformer"))
        callback = FrozenFeatureCache() if with_cache else None
        optimizer = Adam(0.01)
        losses = {}
        per_epoch = []
        for epoch in range(3):
            if callback is not None:
                callback(nlp, {"step": epoch, "epoch": epoch})
            # fresh Example objects each epoch, as spaCy's corpus reader makes them
            batch = [Example(eg.predicted.copy(), eg.reference) for eg in examples]
            nlp.update(batch, sgd=optimizer, losses=losses, exclude=["transformer"], annotates=["transformer"])
            per_epoch.append(sum(seen))
        weights = nlp.get_pipe("hmtl_encoder").model.get_ref("embed").layers[0].to_bytes()
        return losses, per_epoch, weights, nlp.evaluate(examples)["ents_f"]

    plain_losses, plain_calls, plain_weights, plain_f = train(False)
    cached_losses, cached_calls, cached_weights, cached_f = train(True)
    assert cached_losses == plain_losses
    assert cached_weights == plain_weights
    assert cached_f == plain_f
    # MiniLM ran in the first epoch only (evaluate's docs are the same texts: no new run)
    assert plain_calls[2] > plain_calls[0] and cached_calls[2] == cached_calls[0]
