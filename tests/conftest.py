"""Pytest fixtures and hooks only: each fixture is a thin wrapper around ``helpers.py``, the
one home of the test-fixture world (import what you need from ``helpers``, never from here).

``tiny_pipeline_path`` (session scope) is the tiny four-head pipeline of ``helpers``
(``TINY_CONFIG`` trained by ``build_tiny_nlp`` on the reference docs) saved to disk;
``tiny_nlp`` is that pipeline loaded back and ``tiny_texts`` the reference texts it predicts
every layer on. Tests that run the pipeline in other processes (``n_process``, dask
workers, the CLI, ``spacy package``) load it from the path. ``scierc_pipeline`` (session
scope, minutes: trained once) is configs/scierc.cfg trained on real SciERC documents.
"""
from pathlib import Path
from typing import List

import pytest

# helpers (spaCy, torch) is imported inside the fixtures, not here: conftest loads before
# pytest_configure, which must set the thread environment before torch starts.


@pytest.fixture(scope="session")
def tiny_pipeline_path(tmp_path_factory) -> Path:
    """Directory of the trained tiny four-head pipeline (``spacy.load`` it)."""
    from helpers import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny_hmtl") / "model")


@pytest.fixture(scope="session")
def tiny_nlp(tiny_pipeline_path):
    """The tiny pipeline, loaded back from ``tiny_pipeline_path``."""
    import spacy

    return spacy.load(tiny_pipeline_path)


@pytest.fixture(scope="session")
def tiny_texts() -> List[str]:
    """The reference texts, on which the tiny pipeline predicts every layer."""
    from helpers import reference_texts

    return reference_texts()


@pytest.fixture(scope="session")
def scierc_pipeline(tmp_path_factory):
    """``helpers.train_scierc_pipeline()``: a ``TrainedPipeline`` (``model``: the trained
    SciERC pipeline's directory, ``train``: its training corpus)."""
    from helpers import train_scierc_pipeline

    return train_scierc_pipeline(tmp_path_factory.mktemp("scierc"))


@pytest.fixture(scope="session")
def minilm_pipeline_path(tmp_path_factory) -> Path:
    """``helpers.build_minilm_pipeline()`` saved to disk (what `spacy project run
    init-transformer` saves to training/minilm)."""
    from helpers import build_minilm_pipeline

    path = tmp_path_factory.mktemp("minilm") / "pipeline"
    build_minilm_pipeline().to_disk(path)
    return path


@pytest.fixture(scope="session")
def assert_same_jsonl():
    """``helpers.assert_same_jsonl``: two annotate outputs hold the same documents, in the
    same order, with the same annotations (scores to 4 decimals)."""
    from helpers import assert_same_jsonl as check

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
