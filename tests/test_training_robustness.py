"""Training robustness of the four-head pipeline under ``spacy train``.

* A run with a fixed seed is reproducible on CPU: two runs give identical scores and weights.
* A run killed with SIGKILL leaves a loadable ``model-last``.
* Resuming: spaCy 3.8's ``train`` CLI has no optimizer-state resume (no checkpoint of the
  Adam moments or of the step counter). What it offers is continuing from the *weights*:
  source every component from ``model-last`` in a new config
  (``[components.hmtl_ner] source = "training/model-last"``, the same for the encoder and
  every head; spaCy then calls ``nlp.resume_training`` for the sourced components instead
  of re-initializing them), or ``[initialize] init_tok2vec`` for pretrained embeddings. The
  optimizer restarts from zero moments and the learning-rate schedule from step 0.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train
from spacy.training.initialize import init_nlp
from thinc.api import Config

from helpers import PIPE_NAMES, TINY_CONFIG, reference_docs, snapshot, write_docbin

TEXTS = [
    "We apply a neural parser to the Penn Treebank . The parser improves accuracy .",
    "Our tagger uses a CRF . It beats the baseline on WSJ .",
    "We evaluate BLEU on Europarl",
]



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """train/dev DocBins of the reference docs and the tiny config on disk."""
    root = tmp_path_factory.mktemp("robustness")
    docs = reference_docs(spacy.blank("en").vocab)
    write_docbin(root / "train.spacy", docs)
    write_docbin(root / "dev.spacy", docs)
    (root / "tiny.cfg").write_text(TINY_CONFIG, encoding="utf8")
    return root


def overrides(corpus: Path, **extra) -> dict:
    return {"paths.train": str(corpus / "train.spacy"), "paths.dev": str(corpus / "dev.spacy"), **extra}


def performance(model_dir: Path) -> dict:
    return json.loads((model_dir / "meta.json").read_text(encoding="utf8"))["performance"]


def test_fixed_seed_training_is_reproducible(corpus, tmp_path):
    for run in ("a", "b"):
        train(corpus / "tiny.cfg", tmp_path / run, overrides=overrides(corpus, **{"training.max_steps": 4}))
    perf_a, perf_b = performance(tmp_path / "a" / "model-last"), performance(tmp_path / "b" / "model-last")
    assert perf_a == perf_b
    assert {"ents_f", "mentions_f", "rel_micro_f", "coref_f"} <= set(perf_a)
    nlp_a = spacy.load(tmp_path / "a" / "model-last")
    nlp_b = spacy.load(tmp_path / "b" / "model-last")
    for name in PIPE_NAMES:
        assert nlp_a.get_pipe(name).to_bytes() == nlp_b.get_pipe(name).to_bytes(), name
    assert [snapshot(d) for d in nlp_a.pipe(TEXTS)] == [snapshot(d) for d in nlp_b.pipe(TEXTS)]


def _is_eval_row(line: str) -> bool:
    # ConsoleLogger rows start with the epoch and step: "  0       4    ..."
    parts = line.split()
    return len(parts) > 3 and parts[0].isdigit() and parts[1].isdigit()


def test_killed_run_leaves_loadable_model_last(corpus, tmp_path):
    output = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "spacy", "train", str(corpus / "tiny.cfg"),
        "--output", str(output),
        "--paths.train", str(corpus / "train.spacy"),
        "--paths.dev", str(corpus / "dev.spacy"),
        "--training.max_steps", "0",  # no limit: the run only ends when killed
        "--training.eval_frequency", "3",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    rows = 0
    log = []
    deadline = time.monotonic() + 120
    try:
        # model-last is saved right *before* each evaluation row is printed: kill just
        # after the second row, i.e. after model-last was overwritten once, between saves.
        for line in proc.stdout:
            log.append(line)
            rows += _is_eval_row(line)
            if rows >= 2 or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "".join(log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stdout.close()
    assert rows >= 2, "".join(log)
    assert proc.returncode == -signal.SIGKILL
    model_last = output / "model-last"
    nlp = spacy.load(model_last)
    assert nlp.pipe_names == PIPE_NAMES
    docs = list(nlp.pipe(TEXTS))
    for doc in docs:
        assert doc._.hmtl_relations_data is not None and doc._.hmtl_coref_data is not None
        assert "mentions" in doc.spans


def test_sourcing_model_last_continues_training(corpus, tmp_path):
    train(corpus / "tiny.cfg", tmp_path / "first", overrides=overrides(corpus, **{"training.max_steps": 4}))
    model_last = tmp_path / "first" / "model-last"
    config = Config().from_str(TINY_CONFIG, interpolate=False)
    for name in PIPE_NAMES:
        config["components"][name] = {"source": str(model_last)}
    resume_cfg = tmp_path / "resume.cfg"
    config.to_disk(resume_cfg)
    # The sourced pipeline starts from model-last's weights (not re-initialized) ...
    filled = spacy.util.load_config(resume_cfg, overrides=overrides(corpus), interpolate=False)
    resumed = init_nlp(filled)
    original = spacy.load(model_last)
    assert [snapshot(d) for d in resumed.pipe(TEXTS)] == [snapshot(d) for d in original.pipe(TEXTS)]
    for name in PIPE_NAMES[1:]:
        assert resumed.get_pipe(name).labels == original.get_pipe(name).labels
    # ... and trains on without error.
    train(resume_cfg, tmp_path / "second", overrides=overrides(corpus, **{"training.max_steps": 4}))
    continued = spacy.load(tmp_path / "second" / "model-last")
    assert continued.pipe_names == PIPE_NAMES
    assert list(continued.pipe(TEXTS))
    assert continued.get_pipe("hmtl_ner").to_bytes() != original.get_pipe("hmtl_ner").to_bytes()
