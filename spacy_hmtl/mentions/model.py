"""The ``spacy_hmtl.SpanMentionDetector.v1`` architecture: a listener + a span classifier."""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..head_pipe import build_head_model
from ..layers.torch_bridge import lazy_torch_layer
from . import torch_module  # noqa: F401  (registers "hmtl_span_classifier")

HEAD_CONFIG_ATTR = "span_classifier"


@registry.architectures("spacy_hmtl.SpanMentionDetector.v1")
def build_span_mention_detector(
    tok2vec: Model[List[Doc], List[Floats2d]],
    max_width: int = 8,
    hidden_width: int = 150,
    width_embedding: int = 20,
    dropout: float = 0.2,
) -> Model:
    """Span-based entity mention detector (HMTL level 2).

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener giving the token vectors
        (HMTL: level 2 of ``hmtl_encoder`` with the embedding shortcut).
    max_width (int): widest candidate span in tokens; wider gold mentions cannot be found.
    hidden_width (int): width of the FFNN's two hidden layers.
    width_embedding (int): size of the span-width embedding.
    dropout (float): dropout inside the span classifier.
    RETURNS (Model): the head model; the component builds the torch module
        (``hmtl_span_classifier``) once the labels and the input width are known.
    """
    if max_width < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")
    torch_head = lazy_torch_layer("hmtl_span_classifier", "hmtl_mentions_scorer")
    model = build_head_model("hmtl_mentions", tok2vec, torch_head)
    model.attrs[HEAD_CONFIG_ATTR] = {
        "max_width": int(max_width),
        "hidden_width": int(hidden_width),
        "width_embedding": int(width_embedding),
        "dropout": float(dropout),
    }
    return model
