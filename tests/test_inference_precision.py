"""bfloat16 BiLSTMs, coreference pair scoring and mention span scoring at CPU inference
(``spacy_hmtl.reduced_precision.v3``, ``spacy_hmtl.layers.inference_precision``): close to
float32 and returned as float32, only for loaded weights, only at inference (training drops
it), saved as float32, "auto" following the CPU, off by the config switches or the
environment; ``.v2`` leaves the span scoring in float32, ``.v1`` the pair scoring too.
"""
import pytest
import spacy
import torch
from thinc.api import Adam

from helpers import TINY_CONFIG, make_examples, nlp_from_config, reference_texts, save_tiny_pipeline
from spacy_hmtl.annotations import get_coref_clusters
from spacy_hmtl.layers import inference_precision
from spacy_hmtl.layers.bilstm import BiLSTM
from spacy_hmtl.mentions.torch_module import SpanClassifier
from spacy_hmtl.reduced_precision import (
    CALLBACK,
    CALLBACK_V1,
    CALLBACK_V2,
    REDUCED_PRECISION_OVERRIDES,
    inference_precision_of,
    make_reduced_precision,
    set_inference_precision,
)

BF16 = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK, "precision": "bfloat16"}}}
PAIRS = ["pair_scoring"]
SPANS = ["span_scoring"]
ALL = inference_precision.PARTS


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("inference_precision") / "tiny")


def tensors(nlp):
    return [torch.tensor(doc.tensor) for doc in nlp.pipe(reference_texts())]


def test_a_bfloat16_bilstm_is_close_to_float32_returns_float32_and_training_drops_it():
    torch.manual_seed(0)
    lstm = BiLSTM(16, 8, depth=2).eval()
    X, lengths = torch.randn(3, 7, 16), torch.tensor([7, 4, 1])
    with torch.no_grad():
        reference = lstm(X, lengths)
        lstm.inference_dtype = torch.bfloat16
        reduced = lstm(X, lengths)
    assert reduced.dtype == torch.float32
    assert torch.allclose(reduced, reference, atol=0.05) and not torch.equal(reduced, reference)
    assert torch.equal(reduced[1, 4:], torch.zeros(3, 16))  # still nothing past a length
    # a training step (grad on, train mode) drops it: float32 inference from then on
    lstm.train()
    lstm(X, lengths).sum().backward()
    assert lstm.inference_dtype is None
    with torch.no_grad():
        assert torch.equal(lstm.eval()(X, lengths), reference)


def test_a_loaded_pipeline_runs_its_bilstms_in_bfloat16_close_to_float32(tiny_path):
    exact = spacy.load(tiny_path)
    reduced = spacy.load(tiny_path, config=BF16)
    assert set(inference_precision_of(exact).values()) == {"float32"}
    state = inference_precision_of(reduced)
    assert "hmtl_encoder" in state and set(state.values()) == {"bfloat16"}
    assert "hmtl_ner" not in state  # a head without a BiLSTM is not listed
    before, after = tensors(exact), tensors(reduced)
    assert all(torch.allclose(a, b, atol=0.05) for a, b in zip(before, after))
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # it did run in bfloat16
    # back to float32 on the loaded pipeline: the exact outputs again
    assert set(set_inference_precision(reduced, None)) == set(state) | {"hmtl_mentions"}  # every part
    assert all(torch.equal(a, b) for a, b in zip(before, tensors(reduced)))


def test_the_coreference_pair_scoring_runs_in_bfloat16_and_v1_leaves_it_float32(tiny_path):
    exact = spacy.load(tiny_path)
    reduced = spacy.load(tiny_path, config=BF16)
    assert inference_precision_of(exact, PAIRS) == {"hmtl_coref": "float32"}
    assert inference_precision_of(reduced, PAIRS) == {"hmtl_coref": "bfloat16"}
    # the old callback: BiLSTMs reduced, pair scoring as it was measured then
    v1 = spacy.load(tiny_path, config={"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK_V1, "precision": "bfloat16"}}})
    assert set(inference_precision_of(v1).values()) == {"bfloat16"}
    assert inference_precision_of(v1, PAIRS) == {"hmtl_coref": "float32"}
    # the same clusters (the tiny pipeline's links are far from ties), and back to float32
    clusters = [get_coref_clusters(doc) for doc in exact.pipe(reference_texts())]
    assert any(clusters) and [get_coref_clusters(doc) for doc in reduced.pipe(reference_texts())] == clusters
    assert "hmtl_coref" in set_inference_precision(reduced, None, PAIRS)
    assert inference_precision_of(reduced, PAIRS) == {"hmtl_coref": "float32"}
    assert set(inference_precision_of(reduced).values()) == {"bfloat16"}  # the BiLSTMs untouched


def test_bfloat16_span_scoring_is_close_to_float32_and_training_drops_it():
    torch.manual_seed(0)
    spans = SpanClassifier(16, 3, max_width=3, hidden_width=12, width_embedding=4, dropout=0.2).eval()
    X = torch.randn(2, 6, 16)
    doc_idx = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    starts, ends = torch.tensor([0, 1, 2, 0, 2, 3, 3]), torch.tensor([0, 3, 2, 1, 4, 3, 5])
    with torch.no_grad():
        reference = spans._inference_logits(X, doc_idx, starts, ends)(0, 7)
        assert torch.allclose(reference, spans(X, doc_idx, starts, ends), atol=1e-6)  # float32: forward's
        spans.inference_dtype = torch.bfloat16
        reduced = spans._inference_logits(X, doc_idx, starts, ends)(2, 7)
    assert reduced.dtype == torch.float32 and reduced.shape == (5, 4)
    assert torch.allclose(reduced, reference[2:], atol=0.05) and not torch.equal(reduced, reference[2:])
    # the loss (a training call) drops it: float32 from then on
    spans.train()
    spans.loss(X, doc_idx, starts, ends, torch.tensor([0, 1, 0, 2, 0, 3, 0])).backward()
    assert spans.inference_dtype is None
    with torch.no_grad():
        assert torch.equal(spans.eval()._inference_logits(X, doc_idx, starts, ends)(0, 7), reference)


def test_the_mention_span_scoring_runs_in_bfloat16_and_v2_leaves_it_float32(tiny_path):
    exact = spacy.load(tiny_path)
    reduced = spacy.load(tiny_path, config=BF16)
    assert inference_precision_of(exact, SPANS) == {"hmtl_mentions": "float32"}
    assert inference_precision_of(reduced, SPANS) == {"hmtl_mentions": "bfloat16"}
    # the previous callback: BiLSTMs and pair scoring reduced, span scoring as it was measured then
    v2 = spacy.load(tiny_path, config={"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK_V2, "precision": "bfloat16"}}})
    assert inference_precision_of(v2, SPANS) == {"hmtl_mentions": "float32"}
    assert inference_precision_of(v2, PAIRS) == {"hmtl_coref": "bfloat16"}
    # the same mentions (the tiny pipeline's are far from ties), and back to float32
    def mentions(nlp):
        return [[(s.start, s.end, s.label_) for s in doc.spans["mentions"]] for doc in nlp.pipe(reference_texts())]

    found = mentions(exact)
    assert any(found) and mentions(reduced) == found
    assert "hmtl_mentions" in set_inference_precision(reduced, None, SPANS)
    assert inference_precision_of(reduced, SPANS) == {"hmtl_mentions": "float32"}


def test_a_pipeline_built_for_training_stays_float32_and_a_trained_one_drops_it(tiny_path):
    callback = f'\n[nlp.after_pipeline_creation]\n@callbacks = "{CALLBACK}"\nprecision = "bfloat16"\n'
    built = nlp_from_config(TINY_CONFIG.replace("\n[components]\n", callback + "\n[components]\n", 1))
    examples = make_examples(built)
    built.initialize(lambda: examples)
    assert set(inference_precision_of(built, ALL).values()) == {"float32"}  # never loaded: spacy train's case
    loaded = spacy.load(tiny_path, config=BF16)
    assert set(inference_precision_of(loaded, ALL).values()) == {"bfloat16"}
    optimizer = Adam(0.001)
    loaded.update(make_examples(loaded), sgd=optimizer)
    assert set(inference_precision_of(loaded, ALL).values()) == {"float32"}


def test_saved_weights_stay_float32_and_load_back_at_reduced_precision(tiny_path, tmp_path):
    reduced = spacy.load(tiny_path, config=BF16)
    reduced.to_disk(tmp_path / "saved")
    again = spacy.load(tmp_path / "saved", config={"nlp": {"after_pipeline_creation": {"enabled": False}}})
    assert all(torch.equal(a, b) for a, b in zip(tensors(spacy.load(tiny_path)), tensors(again)))
    assert set(inference_precision_of(spacy.load(tmp_path / "saved"), ALL).values()) == {"bfloat16"}


def test_auto_follows_the_cpu_and_the_switches_turn_it_off(tiny_path, monkeypatch):
    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: False)
    assert set(inference_precision_of(spacy.load(tiny_path, config=REDUCED_PRECISION_OVERRIDES), ALL).values()) == {"float32"}
    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: True)
    assert set(inference_precision_of(spacy.load(tiny_path, config=REDUCED_PRECISION_OVERRIDES), ALL).values()) == {"bfloat16"}
    for off, parts in (({"enabled": False}, ALL), ({"lstms": False}, ["lstms"]), ({"pair_scoring": False}, PAIRS),
                       ({"span_scoring": False}, SPANS), ({"precision": "float32"}, ALL), ({"precision": "int8"}, ALL)):
        config = {"nlp": {"after_pipeline_creation": {"@callbacks": CALLBACK, **off}}}
        nlp = spacy.load(tiny_path, config=config)
        assert set(inference_precision_of(nlp, parts).values()) == {"float32"}, off
        others = [part for part in ALL if part not in parts]
        assert set(inference_precision_of(nlp, others).values()) <= {"bfloat16"}, off  # one switch each
    monkeypatch.setenv("SPACY_HMTL_QUANTIZE", "0")
    assert set(inference_precision_of(spacy.load(tiny_path, config=BF16), ALL).values()) == {"float32"}


def test_a_wrong_precision_or_part_names_the_choices():
    with pytest.raises(ValueError, match="auto.*bfloat16.*int8.*float32.*'half'"):
        make_reduced_precision(precision="half")
    with pytest.raises(ValueError, match="lstms.*pair_scoring.*'attention'"):
        inference_precision.pipe_modules(object(), ["attention"])


def test_the_package_step_writes_the_callback_for_a_vectors_pipeline(tiny_path, tmp_path):
    import shutil

    from spacy_hmtl.package_command import QUANTIZE_BLOCK, enable_quantization

    shutil.copytree(tiny_path, tmp_path / "staged")
    assert enable_quantization(tmp_path / "staged" / "config.cfg") == "enabled"
    assert spacy.util.load_config(tmp_path / "staged" / "config.cfg")["nlp"]["after_pipeline_creation"] == QUANTIZE_BLOCK
    assert QUANTIZE_BLOCK["@callbacks"] == CALLBACK and QUANTIZE_BLOCK["precision"] == "auto"
    assert spacy.util.load_config(tiny_path / "config.cfg")["nlp"]["after_pipeline_creation"] is None


def test_the_precision_check_switches_the_modules_with_the_transformer(tiny_path):
    from spacy_hmtl_dev.quantization_check import set_variant

    nlp = spacy.load(tiny_path)
    applied, _ = set_variant(nlp, "bfloat16", "auto", modules=True)
    assert applied and set(inference_precision_of(nlp, ALL).values()) == {"bfloat16"}
    applied, _ = set_variant(nlp, "float32", "auto", modules=True)
    assert applied and set(inference_precision_of(nlp, ALL).values()) == {"float32"}
    # without --modules a pipeline without a transformer has nothing to switch
    assert set_variant(nlp, "bfloat16", "auto", modules=False)[0] is False


def test_the_benchmark_times_hmtl_pipelines_as_their_packages_run(tiny_path, monkeypatch):
    from spacy_hmtl_dev.benchmark.speed import load_for_timing

    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: True)
    assert set(inference_precision_of(load_for_timing("hmtl_scierc", str(tiny_path), "package"), ALL).values()) == {"bfloat16"}
    assert set(inference_precision_of(load_for_timing("hmtl_scierc", str(tiny_path), "float32"), ALL).values()) == {"float32"}


def test_the_benchmark_times_a_pipeline_with_its_own_callback_as_it_asks(tiny_path, tmp_path, monkeypatch):
    import shutil

    from spacy_hmtl.package_command import QUANTIZE_BLOCK
    from spacy_hmtl_dev.benchmark.speed import load_for_timing

    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: True)
    shutil.copytree(tiny_path, tmp_path / "own")
    config = spacy.util.load_config(tmp_path / "own" / "config.cfg", interpolate=False)
    config["nlp"]["after_pipeline_creation"] = {**QUANTIZE_BLOCK, "span_scoring": False}  # a package's block, one part off
    config.to_disk(tmp_path / "own" / "config.cfg")
    packaged = load_for_timing("hmtl_own", str(tmp_path / "own"), "package")
    assert inference_precision_of(packaged, SPANS) == {"hmtl_mentions": "float32"}
    assert set(inference_precision_of(packaged, ["lstms", "pair_scoring"]).values()) == {"bfloat16"}
    # as trained: float32 whatever the config asks
    assert set(inference_precision_of(load_for_timing("hmtl_own", str(tmp_path / "own"), "float32"), ALL).values()) == {"float32"}
