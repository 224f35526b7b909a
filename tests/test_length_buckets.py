"""Transformer inference in length buckets (spacy_hmtl.encoder.length_buckets): the buckets by
hand, a bucketed batch against the padded batch on a small random BERT, and the MiniLM pipe's
features with the buckets on and off."""
from typing import List

import numpy
import pytest
import spacy
import torch
from transformers import BertConfig, BertModel

from spacy_hmtl.encoder import length_buckets as buckets_module
from spacy_hmtl.encoder.length_buckets import length_buckets, run_in_length_buckets

FLOAT32 = {"nlp": {"after_pipeline_creation": {"@callbacks": "spacy_hmtl.quantize_transformer.v2", "precision": "float32"}}}
# a long text (three 128-token windows, the last one short) with short ones: the padded batch
# is mostly padding
LONG = " ".join(f"Sentence {i} says that the model of group {i % 7} was trained on corpus {i % 5}." for i in range(30))
MIXED_TEXTS = [LONG, "A short one.", "Another short text about Lincoln and Booth.", LONG[:300]]


def test_buckets_by_hand():
    lengths = torch.tensor([10, 3, 9, 8, 2, 5])
    # sorted: 10 9 8 | 5 | 3 | 2  (each row >= 0.8 x its bucket's longest)
    assert [b.tolist() for b in length_buckets(lengths, 0.8)] == [[0, 2, 3], [5], [1], [4]]
    assert [b.tolist() for b in length_buckets(lengths, 0.2)] == [[0, 2, 3, 5, 1, 4]]
    assert [b.tolist() for b in length_buckets(torch.tensor([4, 4, 4]), 1.0)] == [[0, 1, 2]]
    with pytest.raises(ValueError, match="min_fill"):
        length_buckets(lengths, 0.0)


def small_bert(**config) -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, **config)
    return BertModel(cfg, add_pooling_layer=True).eval()


def padded_batch(lengths: List[int]):
    width = max(lengths)
    ids = torch.zeros((len(lengths), width), dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1, 40, (n,))
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def test_a_bucketed_batch_equals_the_padded_batch_at_every_real_position():
    model = small_bert(output_hidden_states=True)
    lengths = [12, 3, 11, 5, 2]
    kwargs = padded_batch(lengths)
    calls = []
    model.register_forward_pre_hook(lambda mod, args, kw: calls.append(kw["input_ids"].shape), with_kwargs=True)
    with torch.no_grad():
        whole = model(**kwargs)
        calls.clear()
        bucketed = run_in_length_buckets(model, kwargs)
    assert bucketed is not None and type(bucketed) is type(whole)
    # four buckets, each trimmed to its longest row: (12, 11), (5), (3), (2)
    assert calls == [torch.Size([2, 12]), torch.Size([1, 5]), torch.Size([1, 3]), torch.Size([1, 2])]
    bucket_width = [12, 3, 12, 5, 2]
    for row, n in enumerate(lengths):
        torch.testing.assert_close(bucketed.last_hidden_state[row, :n], whole.last_hidden_state[row, :n], atol=1e-5, rtol=1e-5)
        # beyond its bucket's width a row is zeros (inside it, padding the model ran)
        assert not bucketed.last_hidden_state[row, bucket_width[row] :].any()
        assert bucketed.last_hidden_state[row, n - 1].any()
        for layer_b, layer_w in zip(bucketed.hidden_states, whole.hidden_states):
            torch.testing.assert_close(layer_b[row, :n], layer_w[row, :n], atol=1e-5, rtol=1e-5)
    assert len(bucketed.hidden_states) == len(whole.hidden_states) == 3
    assert bucketed.last_hidden_state.shape == whole.last_hidden_state.shape
    torch.testing.assert_close(bucketed.pooler_output, whole.pooler_output, atol=1e-5, rtol=1e-5)


def test_no_buckets_where_they_would_save_little_or_cannot_be_scattered_back():
    model = small_bert()
    with torch.no_grad():
        # equal lengths: one bucket
        assert run_in_length_buckets(model, padded_batch([6, 6, 6])) is None
        # two buckets (four 10s, one 7) would save 3 of 50 positions, under MIN_SAVING
        assert run_in_length_buckets(model, padded_batch([10, 10, 10, 10, 7])) is None
        # attention maps are an output it does not scatter back: the caller runs the batch whole
        assert run_in_length_buckets(small_bert(output_attentions=True), padded_batch([12, 2, 2])) is None
        # no attention mask
        kwargs = padded_batch([12, 2, 2])
        del kwargs["attention_mask"]
        assert run_in_length_buckets(model, kwargs) is None
        assert run_in_length_buckets(model, padded_batch([12, 2, 2])) is not None


def test_the_minilm_pipe_gives_the_same_features_with_and_without_buckets(minilm_pipeline_path, monkeypatch):
    nlp = spacy.load(minilm_pipeline_path, config=FLOAT32)
    shim = [s for node in nlp.get_pipe("transformer").model.walk() for s in node.shims][0]
    seen = []
    real = buckets_module.run_in_length_buckets
    monkeypatch.setattr(
        "spacy_hmtl.encoder.quantized_shim.run_in_length_buckets",
        lambda model, kwargs, *a: seen.append(real(model, kwargs, *a)) or seen[-1],
    )
    shim._hmtl_length_buckets = False
    whole = [doc._.trf_data for doc in nlp.pipe(MIXED_TEXTS)]
    assert not seen
    shim._hmtl_length_buckets = True
    bucketed = [doc._.trf_data for doc in nlp.pipe(MIXED_TEXTS)]
    assert len(seen) == 1 and seen[0] is not None  # the batch did run in buckets
    for w, b in zip(whole, bucketed):
        real_positions = numpy.asarray(w.align.dataXd).ravel()
        assert len(real_positions) > 0
        x = w.tensors[0].reshape(-1, w.tensors[0].shape[-1])[real_positions]
        y = b.tensors[0].reshape(-1, b.tensors[0].shape[-1])[real_positions]
        numpy.testing.assert_allclose(y, x, atol=1e-4, rtol=1e-4)


def test_set_length_buckets_and_the_benchmark_count_of_positions(minilm_pipeline_path):
    """``set_length_buckets`` on a pipeline loaded without the callback (its plain HFShim gets
    the shim, at float32) and the benchmark's ``transformer_positions`` with them on and off:
    the same wordpieces, fewer positions, more calls."""
    from spacy_hmtl.encoder.quantization import set_length_buckets
    from spacy_hmtl_dev.benchmark.speed import transformer_positions

    nlp = spacy.load(minilm_pipeline_path)
    plain = [doc._.trf_data for doc in nlp.pipe(MIXED_TEXTS)]
    whole = transformer_positions(nlp, MIXED_TEXTS, 64)
    assert set_length_buckets(nlp, True) == ["transformer"]
    bucketed = transformer_positions(nlp, MIXED_TEXTS, 64)
    assert whole is not None and bucketed is not None
    assert whole["calls"] == 1 and bucketed["calls"] > 1
    assert bucketed["real"] == whole["real"] and bucketed["positions"] < 0.9 * whole["positions"]
    for w, b in zip(plain, (doc._.trf_data for doc in nlp.pipe(MIXED_TEXTS))):
        real_positions = numpy.asarray(w.align.dataXd).ravel()
        x = w.tensors[0].reshape(-1, w.tensors[0].shape[-1])[real_positions]
        y = b.tensors[0].reshape(-1, b.tensors[0].shape[-1])[real_positions]
        numpy.testing.assert_allclose(y, x, atol=1e-4, rtol=1e-4)
    assert set_length_buckets(nlp, False) == ["transformer"]
    assert transformer_positions(nlp, MIXED_TEXTS, 64) == whole
    assert transformer_positions(spacy.blank("en"), MIXED_TEXTS, 64) is None


def test_the_benchmark_refuses_whole_batches_for_a_pipeline_it_does_not_time(tmp_path):
    from spacy_hmtl_dev.benchmark.speed import measure_speed

    with pytest.raises(ValueError, match="hmtl_nope"):
        measure_speed(
            tmp_path, {}, batch_size=8, rounds=1, warmup_docs=0, threads=1, gpu_id=-1,
            extra_targets={"hmtl_probe": str(tmp_path)}, whole_batches=["hmtl_nope"],
        )  # fmt: skip
