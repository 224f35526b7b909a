"""Fine-tuning the transformer: its own learning rate, length-sorted batches, the shipped config.

* ``spacy_hmtl.component_learn_rates.v1`` scales one component's Adam steps and no other's.
* ``spacy_hmtl.batch_by_length.v1`` yields every example once per epoch, in batches of similar
  lengths, reproducibly.
* Every shipped ``configs/*_ft.cfg`` fine-tunes: the transformer trains (not frozen, not
  annotating, no feature cache) at its own small learning rate, which warms up and decays to 0
  at ``max_steps``, with length-sorted batches and no weight averaging.
* ``configs/conll04_ft.cfg`` on real CoNLL04 sentences: the heads' gradient reaches every
  layer of MiniLM and moves it; at factor 0 MiniLM stays as it was while the rest trains;
  with ``spacy_hmtl.fine_tuning.v1``'s ``top_layers`` only the top layers move.
"""
import itertools
import random
from pathlib import Path

import numpy
import pytest
import spacy
from thinc.api import Adam, fix_random_seed

from helpers import ROOT, build_tiny_nlp, make_examples, nlp_from_config, write_docbin
from spacy.util import load_config

from spacy_hmtl.cli import main
from spacy_hmtl.training.length_batcher import configure_batch_by_length
from spacy_hmtl.training.learn_rates import ScaledOptimizer, make_component_learn_rates


def torch_parameters(component) -> dict:
    """Every torch parameter of a component, by shim and name, copied."""
    params = {}
    for node in component.model.walk():
        for shim in node.shims:
            for name, value in shim._model.named_parameters():
                params[(shim.id, name)] = value.detach().cpu().numpy().copy()
    return params


def one_step(scale: float) -> tuple:
    """The tiny pipeline's encoder and NER weights before and after one step, the encoder at ``scale``."""
    fix_random_seed(0)
    nlp = nlp_from_config()
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    make_component_learn_rates({"hmtl_encoder": scale})(nlp, {"step": 0, "epoch": 0})
    before = {name: torch_parameters(nlp.get_pipe(name)) for name in ("hmtl_encoder", "hmtl_ner")}
    nlp.update(examples, sgd=False)
    optimizer = Adam(0.01)
    for _, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    after = {name: torch_parameters(nlp.get_pipe(name)) for name in ("hmtl_encoder", "hmtl_ner")}
    return before, after


def step_sizes(before: dict, after: dict) -> numpy.ndarray:
    return numpy.concatenate([numpy.abs(after[key] - before[key]).ravel() for key in before])


FT_CONFIGS = sorted((ROOT / "configs").glob("*_ft.cfg"))


def test_the_fine_tuning_configs_are_shipped():
    assert {p.stem for p in FT_CONFIGS} >= {"conll04_ft", "scierc_ft", "litbank_ft", "mixed_ft"}


@pytest.mark.parametrize("path", FT_CONFIGS, ids=lambda p: p.stem)
def test_each_fine_tuning_config_trains_the_transformer_at_its_own_decaying_rate(path):
    config = load_config(path, interpolate=False)
    training = config["training"]
    assert "transformer" in config["nlp"]["pipeline"]
    assert "transformer" not in training["frozen_components"]
    assert "transformer" not in training["annotating_components"]
    callback = training["before_update"]
    assert callback["@callbacks"] in ("spacy_hmtl.component_learn_rates.v1", "spacy_hmtl.fine_tuning.v1")
    assert 0 < callback["scales"]["transformer"] <= 0.1  # 1e-3 x scale: fine-tuning rates are 1e-5 to 1e-4
    schedule = training["optimizer"]["learn_rate"]
    assert schedule["@schedules"] == "warmup_linear.v1"
    assert schedule["total_steps"] == "${training.max_steps}" and 0 < schedule["warmup_steps"] < training["max_steps"]
    assert training["optimizer"]["use_averages"] is False
    # length-sorted batches (one corpus: batch_by_length; several: the task batcher's pools)
    batcher = training["batcher"]
    assert batcher["@batchers"] in ("spacy_hmtl.batch_by_length.v1", "spacy_hmtl.task_batcher.v2")
    assert batcher["pool_size"] >= 100
    assert training["patience"] == 0  # the schedule, not early stopping, ends the run
    assert training["logger"]["@loggers"] == "spacy_hmtl.TimedConsoleLogger.v1"


def test_a_component_learn_rate_factor_scales_only_that_components_steps():
    before_1, after_1 = one_step(1.0)
    before_q, after_q = one_step(0.25)
    encoder_1 = step_sizes(before_1["hmtl_encoder"], after_1["hmtl_encoder"])
    encoder_q = step_sizes(before_q["hmtl_encoder"], after_q["hmtl_encoder"])
    moved = encoder_1 > 1e-6
    assert moved.mean() > 0.5
    # Adam's first step is lr x g / |g| per weight: a quarter of the rate, a quarter of the step
    numpy.testing.assert_allclose(encoder_q[moved] / encoder_1[moved], 0.25, rtol=1e-3)
    # the NER head trains at the full rate in both runs, from the same gradient
    numpy.testing.assert_allclose(
        step_sizes(before_q["hmtl_ner"], after_q["hmtl_ner"]), step_sizes(before_1["hmtl_ner"], after_1["hmtl_ner"]), rtol=1e-4, atol=1e-7
    )


def test_scaled_optimizer_passes_the_factor_and_keeps_the_optimizers_state():
    optimizer = Adam(0.1)
    scaled = ScaledOptimizer(optimizer, 0.5)
    weights, gradient = numpy.ones(3, dtype="f"), numpy.ones(3, dtype="f")
    new_weights, _ = scaled((1, "W"), weights.copy(), gradient.copy())
    numpy.testing.assert_allclose(1.0 - new_weights, 0.05, rtol=1e-3)
    assert (1, "W") in optimizer.mom1 and scaled.learn_rate == optimizer.learn_rate


def test_learn_rate_factors_name_a_missing_component_or_a_negative_factor():
    nlp, _ = build_tiny_nlp(steps=0)
    with pytest.raises(ValueError, match="no component 'transformer'"):
        make_component_learn_rates({"transformer": 0.05})(nlp, {})
    with pytest.raises(ValueError, match=">= 0"):
        make_component_learn_rates({"hmtl_encoder": -1})


def test_length_batches_hold_every_example_once_and_similar_lengths():
    random.seed(0)
    lengths = [random.randint(1, 80) for _ in range(300)]
    items = [list(range(n)) for n in lengths]
    batcher = configure_batch_by_length(size=200, tolerance=0.2, pool_size=100)
    batches = list(batcher(items))
    yielded = sorted(len(item) for item in itertools.chain.from_iterable(batches))
    assert yielded == sorted(lengths)
    for batch in batches:
        sizes = [len(item) for item in batch]
        assert sum(sizes) <= 240 or len(batch) == 1
    # sorted pools: within a batch the longest example is close to the shortest, far closer
    # than in batches of the same examples in their given order
    spread = numpy.mean([max(map(len, b)) - min(map(len, b)) for b in batches if len(b) > 1])
    given_order = [items[i : i + 5] for i in range(0, 300, 5)]
    assert spread < 0.25 * numpy.mean([max(map(len, b)) - min(map(len, b)) for b in given_order])
    # the batch order is drawn from the seeded `random`: the same seed, the same batches
    random.seed(1)
    first = [[len(i) for i in b] for b in batcher(items)]
    random.seed(1)
    assert first == [[len(i) for i in b] for b in batcher(items)]


@pytest.fixture(scope="module")
def conll04_subset(tmp_path_factory) -> Path:
    """The first 16 sentences of the shipped CoNLL04 train set, as train and dev DocBins."""
    from spacy_hmtl.converters.conll04 import read_conll04

    root = tmp_path_factory.mktemp("conll04_ft")
    vocab = spacy.blank("en").vocab
    docs = list(itertools.islice(read_conll04(ROOT / "assets" / "conll04" / "conll04_train.json", vocab=vocab), 16))
    write_docbin(root / "train.spacy", docs)
    write_docbin(root / "dev.spacy", docs[:4])
    return root


def minilm_layers(model_dir: Path) -> dict:
    """MiniLM's weights in a saved pipeline, grouped by layer (embeddings, layer 0 ... 5)."""
    nlp = spacy.load(model_dir)
    groups: dict = {}
    for key, value in torch_parameters(nlp.get_pipe("transformer")).items():
        name = key[1]
        group = "embeddings" if "embeddings" in name else ".".join(name.split(".")[:3]) if ".layer." in name else None
        if group is not None:
            groups.setdefault(group, []).append(value.ravel())
    return {group: numpy.concatenate(values) for group, values in groups.items()}


def train_ft(conll04_subset: Path, minilm: Path, output: Path, *extra: str) -> None:
    assert main([
        "train", str(ROOT / "configs" / "conll04_ft.cfg"), "--output", str(output),
        "--paths.transformer", str(minilm), "--paths.train", str(conll04_subset / "train.spacy"),
        "--paths.dev", str(conll04_subset / "dev.spacy"), "--paths.vectors", "null",
        "--components.hmtl_encoder.model.embed.*.lexical.include_static_vectors", "false",
        "--training.max_steps", "3", "--training.eval_frequency", "3",
        "--training.optimizer.learn_rate.warmup_steps", "1", "--training.batcher.size", "200",
        *extra,
    ]) == 0


def test_the_fine_tuning_config_moves_every_minilm_layer_and_factor_0_none(conll04_subset, minilm_pipeline_path, tmp_path):
    initial = minilm_layers(minilm_pipeline_path)
    assert len(initial) == 7  # embeddings + 6 layers
    train_ft(conll04_subset, minilm_pipeline_path, tmp_path / "ft")
    tuned = minilm_layers(tmp_path / "ft" / "model-last")
    for group, values in initial.items():
        moved = numpy.abs(tuned[group] - values)
        assert moved.max() > 1e-6, f"MiniLM's {group} did not move: the gradient does not reach it"
        # 5e-5 x a few steps: fine-tuning nudges the weights, it does not overwrite them
        assert moved.max() < 1e-2
    train_ft(conll04_subset, minilm_pipeline_path, tmp_path / "frozen", "--training.before_update.scales", '{"transformer": 0.0}')
    kept = minilm_layers(tmp_path / "frozen" / "model-last")
    for group, values in initial.items():
        numpy.testing.assert_array_equal(kept[group], values)


def test_only_the_top_layers_train_when_the_fine_tuning_callback_says_so(conll04_subset, minilm_pipeline_path, tmp_path):
    initial = minilm_layers(minilm_pipeline_path)
    train_ft(
        conll04_subset, minilm_pipeline_path, tmp_path / "top2",
        "--training.before_update.@callbacks", "spacy_hmtl.fine_tuning.v1",
        "--training.before_update.top_layers", '{"transformer": 2}',
    )
    tuned = minilm_layers(tmp_path / "top2" / "model-last")
    top = {"encoder.layer.4", "encoder.layer.5"}
    assert top < set(initial)
    for group, values in initial.items():
        if group in top:
            assert numpy.abs(tuned[group] - values).max() > 1e-6, f"{group} is one of the top 2 layers: it must train"
        else:
            numpy.testing.assert_array_equal(tuned[group], values, err_msg=f"{group} is below the top 2 layers")


def test_top_layers_freeze_by_parameter_name_and_refuse_what_they_cannot_place():
    import torch

    from spacy_hmtl.training.fine_tuning import make_fine_tuning
    from spacy_hmtl.training.transformer_layers import train_top_layers

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = torch.nn.Linear(2, 2)
            self.encoder = torch.nn.Module()
            self.encoder.layer = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(3))
            self.pooler = torch.nn.Linear(2, 2)

    tiny = Tiny()
    n_layers, frozen = train_top_layers(tiny, 1)
    assert n_layers == 3
    assert sorted(frozen) == sorted(
        f"{prefix}.{p}" for prefix in ("embeddings", "encoder.layer.0", "encoder.layer.1") for p in ("weight", "bias")
    )
    assert tiny.encoder.layer[2].weight.requires_grad and tiny.pooler.weight.requires_grad
    # as many layers as it has (or more): everything trains again, the embeddings too
    assert train_top_layers(tiny, 3)[1] == [] and train_top_layers(tiny, 10)[1] == []
    assert all(p.requires_grad for p in tiny.parameters())
    with pytest.raises(ValueError, match="at least 1"):
        train_top_layers(tiny, 0)
    with pytest.raises(ValueError, match="named after a layer"):
        train_top_layers(torch.nn.Linear(2, 2), 1)
    with pytest.raises(ValueError, match="integer >= 1"):
        make_fine_tuning({"transformer": 0.05}, {"transformer": 0})
