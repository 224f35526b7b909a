"""The ``spacy_hmtl.SpanMentionDetector.v1`` architecture: a listener + a span classifier."""
from dataclasses import dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import SpanClassifier


@dataclass(frozen=True)
class SpanClassifierSettings(HeadSettings):
    """Hyper-parameters of the mentions head (see ``build_span_mention_detector``);
    the pipe enumerates candidates up to ``max_width`` too."""

    max_width: int
    hidden_width: int
    width_embedding: int
    dropout: float

    def build_module(self, input_width: int, labels: LabelSets) -> SpanClassifier:
        return SpanClassifier(
            input_width,
            len(labels["labels"]),
            max_width=self.max_width,
            hidden_width=self.hidden_width,
            width_embedding=self.width_embedding,
            dropout=self.dropout,
        )


@registry.architectures("spacy_hmtl.SpanMentionDetector.v1")
def build_span_mention_detector(
    tok2vec: Model[List[Doc], List[Floats2d]],
    max_width: int,
    hidden_width: int,
    width_embedding: int,
    dropout: float,
) -> Model[List[Doc], HeadBatch]:
    """Span-based entity mention detector (HMTL level 2). Defaults: the
    ``hmtl_mentions`` factory's config.

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener giving the token vectors
        (HMTL: level 2 of ``hmtl_encoder`` with the embedding shortcut).
    max_width (int): widest candidate span in tokens; wider gold mentions cannot be found.
    hidden_width (int): width of the FFNN's two hidden layers.
    width_embedding (int): size of the span-width embedding.
    dropout (float): dropout inside the span classifier.
    """
    if max_width < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")
    settings = SpanClassifierSettings(
        max_width=int(max_width),
        hidden_width=int(hidden_width),
        width_embedding=int(width_embedding),
        dropout=float(dropout),
    )
    return build_torch_head("hmtl_mentions", tok2vec, settings)
