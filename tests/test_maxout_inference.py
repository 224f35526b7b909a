"""layers/maxout_inference.py: the embeddings' Maxout computed by torch at inference equals
thinc's own forward to float noise, and training runs thinc's forward, bit for bit."""
import numpy
import pytest
import spacy
from thinc.layers import maxout as thinc_maxout

from spacy_hmtl.layers.maxout_inference import maxout_forward, use_torch_maxout_inference

TEXTS = [
    "We apply a neural parser to the Penn Treebank . The parser improves accuracy .",
    "Émile Zola wrote Germinal in 1885 ; it is set in northern France .",
    "x",
]


def embed_and_docs():
    nlp = spacy.blank("en")
    embed = spacy.registry.resolve({"m": {"@architectures": "spacy_hmtl.HMTLEmbed.v1", "width": 32}})["m"]
    docs = [nlp.make_doc(t) for t in TEXTS]
    embed.initialize(X=docs)
    return embed, docs


def maxout_node(model):
    nodes = [node for node in model.walk() if node.name == "maxout"]
    assert len(nodes) == 1  # MultiHashEmbed mixes its embeddings with one Maxout
    return nodes[0]


def test_hmtl_embed_predicts_with_the_torch_maxout_equal_to_thinc():
    embed, docs = embed_and_docs()
    node = maxout_node(embed)
    assert node._func is maxout_forward
    # random weights with a real spread (thinc initialises b to zero)
    rng = numpy.random.RandomState(0)
    node.set_param("b", rng.randn(*node.get_param("b").shape).astype("float32"))
    fast = embed.predict(docs)
    node._func = thinc_maxout.forward
    reference = embed.predict(docs)
    node._func = maxout_forward
    assert [a.shape for a in fast] == [b.shape for b in reference]
    for a, b in zip(fast, reference):
        assert a.dtype == numpy.float32
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_maxout_inference_by_hand_and_training_is_thinc_bit_for_bit():
    embed, docs = embed_and_docs()
    node = maxout_node(embed)
    nO, nP, nI = node.get_dim("nO"), node.get_dim("nP"), node.get_dim("nI")
    rng = numpy.random.RandomState(1)
    X = rng.randn(7, nI).astype("float32")
    W, b = node.get_param("W"), rng.randn(nO, nP).astype("float32")
    node.set_param("b", b)
    by_hand = (X @ W.reshape(nO * nP, nI).T + b.reshape(-1)).reshape(7, nO, nP).max(-1)
    Y, backprop = maxout_forward(node, X, is_train=False)
    numpy.testing.assert_allclose(Y, by_hand, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no backward pass"):
        backprop(Y)
    # training: thinc's forward itself, so the outputs and the gradients are thinc's
    Y_train, backprop_train = maxout_forward(node, X, is_train=True)
    Y_thinc, backprop_thinc = thinc_maxout.forward(node, X, is_train=True)
    numpy.testing.assert_array_equal(Y_train, Y_thinc)
    dY = rng.randn(*Y_train.shape).astype("float32")
    numpy.testing.assert_array_equal(backprop_train(dY), backprop_thinc(dY))
    # no tokens
    empty, _ = maxout_forward(node, numpy.zeros((0, nI), dtype="float32"), is_train=False)
    assert empty.shape == (0, nO)


def test_use_torch_maxout_inference_is_idempotent_and_survives_a_round_trip():
    embed, docs = embed_and_docs()
    assert use_torch_maxout_inference(embed) == 1  # already on: counted, not stacked
    assert maxout_node(embed)._func is maxout_forward
    before = embed.predict(docs)
    copy = embed.copy()
    copy.from_bytes(embed.to_bytes())
    assert maxout_node(copy)._func is maxout_forward
    for a, b in zip(before, copy.predict(docs)):
        numpy.testing.assert_array_equal(a, b)
