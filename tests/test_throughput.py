"""The training-throughput profiler (spacy_hmtl_dev.throughput): what it measures adds up."""
import time
from pathlib import Path

import pytest
from spacy.tokens import DocBin

from spacy_hmtl_dev.throughput import _Regions, build_training, measure_training, op_family, run_steps, training_batches

from helpers import write_scierc_subset

ROOT = Path(__file__).resolve().parent.parent
N_DOCS = 6
# no static vectors: nothing to load, the same code paths
OVERRIDES = {
    "paths.vectors": None,
    "components.hmtl_encoder.model.embed.include_static_vectors": False,
    "training.batcher.size": 400,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_scierc_subset("dev", N_DOCS, tmp_path_factory.mktemp("speed") / "train.spacy")


def test_op_families():
    assert op_family("aten::mkldnn_rnn_layer_backward") == op_family("aten::lstm") == "LSTM (forward + backward)"
    assert op_family("aten::addmm") == "matmul / linear"
    assert op_family("aten::bernoulli_") == "dropout"
    assert op_family("aten::index_put_") == "indexing / gather"
    assert op_family("aten::something_new") == "other"


def test_regions_report_exclusive_time():
    regions = _Regions()
    with regions.region("outer"):
        time.sleep(0.02)
        with regions.region("inner"):
            time.sleep(0.05)
    assert regions.totals["inner"] >= 0.05
    assert 0.02 <= regions.totals["outer"] < 0.05  # the inner region's time is not counted twice


def test_one_epoch_of_batches_is_every_training_word(corpus):
    overrides = {**OVERRIDES, "paths.train": str(corpus), "paths.dev": str(corpus)}
    nlp, training = build_training(ROOT / "configs" / "scierc.cfg", overrides)
    total = sum(len(doc) for doc in DocBin().from_disk(corpus).get_docs(nlp.vocab))
    batches = training_batches(nlp, training)
    _, words = run_steps(nlp, training, batches, 0, until_epoch=1)
    assert words == total and batches.epoch == 1


def test_measure_training_profiles_every_pipe(corpus):
    overrides = {**OVERRIDES, "paths.train": str(corpus), "paths.dev": str(corpus)}
    result = measure_training(ROOT / "configs" / "scierc.cfg", overrides, warmup=1, steps=2, profile_steps=1)
    assert result["words"] > 0 and result["words_per_second"] > 0
    profile = result["profile"]
    pipes = {row["name"] for row in profile["by_pipe"]}
    for name in ("hmtl_ner.update", "hmtl_mentions.update", "hmtl_relations.update", "hmtl_coref.update", "hmtl_encoder backward"):
        assert name in pipes
    # exclusive regions partition the step's wall time
    assert sum(row["share"] for row in profile["by_pipe"]) == pytest.approx(1.0, abs=0.02)
    modules = {row["name"] for row in profile["by_module"]}
    for prefix in ("hmtl_encoder: HierarchicalBiLSTM", "hmtl_ner: CRFTagger", "hmtl_coref: CorefRanker.lstm"):
        assert any(name.startswith(prefix) for name in modules), prefix
    families = {row["name"] for row in profile["by_family"]}
    assert "LSTM (forward + backward)" in families
    assert profile["top_ops"] and all(row["calls"] > 0 for row in profile["top_ops"])
