"""The ``spacy_hmtl.CRFTagger.v1`` architecture of ``hmtl_ner``."""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..head_pipe import build_head_model
from ..layers.torch_bridge import lazy_torch_layer
from . import crf  # noqa: F401  (registers the torch module)


@registry.architectures("spacy_hmtl.CRFTagger.v1")
def build_crf_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 0,
    dropout: float = 0.2,
) -> Model:
    """HMTL's NER head: per-token emission scores from ``tok2vec`` (level 1 of the
    encoder) and a BIOUL-constrained CRF, decoded with Viterbi.

    tok2vec (Model[List[Doc], List[Floats2d]]): the token vectors (a listener).
    hidden_width (int): hidden layer before the emission scores (0 = linear, as in HMTL).
    dropout (float): dropout on the token vectors.
    """
    torch_head = lazy_torch_layer("hmtl_crf_tagger", "hmtl_ner_crf")
    model = build_head_model("hmtl_ner", tok2vec, torch_head)
    model.attrs["hidden_width"] = hidden_width
    model.attrs["dropout"] = dropout
    return model
