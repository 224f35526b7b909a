"""The heads' typed settings (``layers/torch_head.HeadSettings``).

A setting is written twice: as an argument of the registered architecture (spaCy validates a
config block against the signature) and as a documented field of its settings dataclass,
whose names are the torch module's keyword arguments. These tests keep the two, the factory's
default config and the torch module in step, so that nothing needs a third list.
"""
import inspect
from dataclasses import asdict, fields

import pytest
import spacy
from thinc.api import noop

from spacy_hmtl.coref.model import CorefRankerSettings
from spacy_hmtl.coref.torch_module import CorefRanker
from spacy_hmtl.layers.torch_head import head_settings
from spacy_hmtl.mentions.model import SpanMentionDetectorSettings
from spacy_hmtl.mentions.torch_module import SpanClassifier
from spacy_hmtl.ner.model import CRFTaggerSettings
from spacy_hmtl.ner.torch_module import CRFTagger
from spacy_hmtl.relations.model import RelationExtractorSettings
from spacy_hmtl.relations.torch_module import MultiHeadSelection

from helpers import factory_meta

# (factory, architecture, settings, torch module)
HEADS = [
    ("hmtl_ner", "spacy_hmtl.CRFTagger.v1", CRFTaggerSettings, CRFTagger),
    ("hmtl_mentions", "spacy_hmtl.SpanMentionDetector.v1", SpanMentionDetectorSettings, SpanClassifier),
    ("hmtl_relations", "spacy_hmtl.RelationExtractor.v1", RelationExtractorSettings, MultiHeadSelection),
    ("hmtl_coref", "spacy_hmtl.CorefRanker.v3", CorefRankerSettings, CorefRanker),
]


def build(architecture: str, **arguments):
    """The head model of ``architecture`` (a listener stand-in: thinc's ``noop``)."""
    return spacy.registry.architectures.get(architecture)(tok2vec=noop(), **arguments)


@pytest.mark.parametrize("factory,architecture,settings_class,module_class", HEADS)
def test_settings_match_the_signature_the_default_config_and_the_torch_module(
    factory, architecture, settings_class, module_class
):
    names = [field.name for field in fields(settings_class)]
    signature = inspect.signature(spacy.registry.architectures.get(architecture))
    assert list(signature.parameters) == ["tok2vec"] + names
    default_model = factory_meta(factory).default_config["model"]
    assert default_model["@architectures"] == architecture
    assert set(default_model) == {"@architectures", "tok2vec", *names}
    keywords = inspect.signature(module_class).parameters
    assert all(keywords[name].kind is inspect.Parameter.KEYWORD_ONLY for name in names)
    # documented once, on the dataclass
    for name in names:
        assert f"\n    {name} (" in settings_class.__doc__


@pytest.mark.parametrize("factory,architecture,settings_class,module_class", HEADS)
def test_the_architecture_keeps_the_default_configs_values(factory, architecture, settings_class, module_class):
    model_config = {k: v for k, v in factory_meta(factory).default_config["model"].items() if k not in ("@architectures", "tok2vec")}
    settings = head_settings(build(architecture, **model_config))
    assert type(settings) is settings_class
    assert asdict(settings) == model_config


def test_settings_take_their_declared_types():
    settings = head_settings(build("spacy_hmtl.SpanMentionDetector.v1", max_width=4.0, hidden_width=8, width_embedding=0, dropout=0))
    assert settings == SpanMentionDetectorSettings(max_width=4, hidden_width=8, width_embedding=0, dropout=0.0)
    assert type(settings.max_width) is int and type(settings.dropout) is float


def test_settings_the_module_cannot_be_built_with_fail_early():
    with pytest.raises(ValueError, match="max_width must be >= 1"):
        build("spacy_hmtl.SpanMentionDetector.v1", max_width=0, hidden_width=8, width_embedding=0, dropout=0.0)
    with pytest.raises(ValueError, match="lstm_context"):
        build(
            "spacy_hmtl.RelationExtractor.v1",
            lstm_width=4, lstm_depth=1, hidden_width=4, type_embedding=0, dropout=0.0, lstm_context="paragraph",
        )  # fmt: skip


def test_settings_added_after_pipelines_were_saved_keep_their_old_default():
    relations = head_settings(build("spacy_hmtl.RelationExtractor.v1", lstm_width=4, lstm_depth=1, hidden_width=4, type_embedding=0, dropout=0.0))
    assert (relations.context_pooling, relations.distance_embedding, relations.lstm_context, relations.pair_product) == (
        False, 0, "doc", False,
    )  # fmt: skip
    coref_arguments = {
        "lstm_width": 4, "max_width": 3, "spans_per_word": 0.4, "max_antecedents": 5, "hidden_width": 4,
        "width_embedding": 2, "dropout": 0.0, "mention_loss_weight": 1.0, "product_width": 0, "antecedent_depth": 1,
    }  # fmt: skip
    coref = head_settings(build("spacy_hmtl.CorefRanker.v1", **coref_arguments))
    assert coref.non_crossing is True and coref.match_embedding == 0
    assert (coref.coarse_width, coref.coarse_antecedents) == (0, 0)  # .v1: no coarse-to-fine pruning
