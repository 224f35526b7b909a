"""spacy_hmtl.variants: the ablation's layouts derived from one config (which heads, which
level each listens to, what goes with a dropped head)."""
import copy
from pathlib import Path

import pytest
from spacy.util import load_config

from spacy_hmtl.variants import (
    derive_variant_config,
    describe_layout,
    encoder_levels,
    heads_and_levels,
    is_minus_variant,
    variant_names,
    variant_tasks,
)

ROOT = Path(__file__).resolve().parent.parent
HEADS = ["hmtl_ner", "hmtl_mentions", "hmtl_relations", "hmtl_coref"]
PREFIXES = {"hmtl_ner": "ents_", "hmtl_mentions": "mentions_", "hmtl_relations": "rel_", "hmtl_coref": "coref_"}
TASK_OF = {"hmtl_ner": "ner", "hmtl_mentions": "mentions", "hmtl_relations": "relations", "hmtl_coref": "coref"}


@pytest.fixture(scope="module")
def full():
    return load_config(ROOT / "configs" / "scierc.cfg", interpolate=False)


@pytest.fixture(scope="module")
def configs(full):
    return {variant: derive_variant_config(full, variant) for variant in variant_names()}


def levels(config):
    return {factory: level for factory, (_, level) in heads_and_levels(config).items()}


def test_variant_names_follow_the_registered_tasks():
    tasks = list(TASK_OF.values())
    assert variant_names() == ["full", "flat"] + tasks + [f"no-{t}" for t in tasks]
    assert [v for v in variant_names() if is_minus_variant(v)] == [f"no-{t}" for t in tasks]
    # the tasks each variant reports
    assert variant_tasks("full") == variant_tasks("flat") == tasks
    assert variant_tasks("relations") == ["relations"]
    assert variant_tasks("no-ner") == ["mentions", "relations", "coref"]


def test_full_is_the_config_and_the_input_is_never_changed(full, configs):
    before = copy.deepcopy(full)
    for variant in variant_names():
        derive_variant_config(full, variant)
    assert full == before
    assert configs["full"] == full and configs["full"] is not full
    # the hierarchy of the shipped config: NER at level 1, the others at level 2
    assert levels(full) == {"hmtl_ner": 1, "hmtl_mentions": 2, "hmtl_relations": 2, "hmtl_coref": 2}
    assert describe_layout(full).endswith(
        "heads (encoder:level) ner@hmtl_encoder:L1, mentions@hmtl_encoder:L2, relations@hmtl_encoder:L2, coref@hmtl_encoder:L2"
    )


def test_flat_makes_every_head_listen_to_the_top_level_with_the_shortcut(full, configs):
    flat = configs["flat"]
    assert flat["nlp"]["pipeline"] == full["nlp"]["pipeline"]
    assert encoder_levels(full, "hmtl_encoder") == 2
    assert levels(flat) == dict.fromkeys(HEADS, 2)
    assert all(flat["components"][head]["model"]["tok2vec"]["shortcut"] is True for head in HEADS)
    # the same encoder and score weights: only the listeners change
    assert flat["components"]["hmtl_encoder"] == full["components"]["hmtl_encoder"]
    assert flat["training"] == full["training"]
    # the top level is the encoder's: three levels, level 3
    deeper = copy.deepcopy(full)
    deeper["components"]["hmtl_encoder"]["model"]["level_widths"] = [64, 64, 64]
    assert levels(derive_variant_config(deeper, "flat")) == dict.fromkeys(HEADS, 3)


def test_each_head_alone_on_its_own_encoder(full, configs):
    for head in ("hmtl_ner", "hmtl_mentions", "hmtl_coref"):
        cfg = configs[TASK_OF[head]]
        assert cfg["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", head]
        assert set(cfg["components"]) == {"sentencizer", "hmtl_encoder", head}
        assert levels(cfg) == {head: levels(full)[head]}
        weights = cfg["training"]["score_weights"]
        for other, prefix in PREFIXES.items():
            assert any(k.startswith(prefix) for k in weights) == (other == head), (head, prefix)
        assert cfg["training"]["annotating_components"] == ["sentencizer"]


def test_relations_alone_keeps_its_argument_provider_on_another_encoder(full, configs):
    rel = configs["relations"]
    assert rel["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_ner", "hmtl_encoder_relations", "hmtl_relations"]
    assert rel["components"]["hmtl_encoder_relations"] == full["components"]["hmtl_encoder"]
    assert heads_and_levels(rel) == {"hmtl_ner": ("hmtl_encoder", 1), "hmtl_relations": ("hmtl_encoder_relations", 2)}
    # model-best is picked on the relation scores: the provider's weights are 0
    weights = rel["training"]["score_weights"]
    assert weights["rel_micro_f"] == full["training"]["score_weights"]["rel_micro_f"]
    assert weights["ents_f"] == weights["ents_p"] == weights["ents_r"] == 0.0
    assert not any(k.startswith(("mentions_", "coref_")) for k in weights)


def test_minus_a_task_drops_the_pipe_and_its_score_weights(full, configs):
    for head in HEADS:
        cfg = configs[f"no-{TASK_OF[head]}"]
        assert cfg["nlp"]["pipeline"] == [n for n in full["nlp"]["pipeline"] if n != head]
        assert head not in cfg["components"]
        assert levels(cfg) == {f: lvl for f, lvl in levels(full).items() if f != head}
        weights = cfg["training"]["score_weights"]
        assert not any(k.startswith(PREFIXES[head]) for k in weights)
        assert {k: v for k, v in full["training"]["score_weights"].items() if not k.startswith(PREFIXES[head])} == weights
    # "- relations": the pipe and every rel_ weight gone, the other heads where they were
    no_rel = configs["no-relations"]
    assert no_rel["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_ner", "hmtl_mentions", "hmtl_coref"]
    # without NER, relations read the mentions head's spans; otherwise their source is kept
    assert configs["no-ner"]["components"]["hmtl_relations"]["entity_source"] == "mentions"
    assert configs["no-mentions"]["components"]["hmtl_relations"]["entity_source"] == "ents"


def test_without_the_mentions_provider_relations_read_the_entities(full):
    # the provider rule comes from the tasks (provides_spans, span_input), not from head names
    reads_mentions = copy.deepcopy(full)
    reads_mentions["components"]["hmtl_relations"]["entity_source"] = "mentions"
    assert derive_variant_config(reads_mentions, "no-mentions")["components"]["hmtl_relations"]["entity_source"] == "ents"
    alone = derive_variant_config(reads_mentions, "relations")
    assert alone["nlp"]["pipeline"] == ["sentencizer", "hmtl_encoder", "hmtl_mentions", "hmtl_encoder_relations", "hmtl_relations"]


def test_without_a_provider_or_a_head_there_is_no_variant(full):
    with pytest.raises(ValueError, match="unknown variant"):
        derive_variant_config(full, "no-such")
    # no mentions head to take over from NER
    no_mentions = derive_variant_config(full, "no-mentions")
    with pytest.raises(ValueError, match="'hmtl_relations' has no source of argument spans"):
        derive_variant_config(no_mentions, "no-ner")
    with pytest.raises(ValueError, match="0 'hmtl_mentions' components"):
        derive_variant_config(no_mentions, "mentions")


def test_every_variant_is_a_valid_config(configs):
    mixed = load_config(ROOT / "configs" / "mixed.cfg", interpolate=False)
    for variant in variant_names():
        for cfg in (configs[variant], derive_variant_config(mixed, variant)):
            assert cfg.interpolate()["nlp"]["pipeline"] == cfg["nlp"]["pipeline"]
