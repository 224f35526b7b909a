"""The ``spacy_hmtl.SpanMentionDetector.v1`` architecture of ``hmtl_mentions``: a listener
+ the span classifier torch module."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import SpanClassifier


@dataclass(frozen=True)
class SpanMentionDetectorSettings(HeadSettings):
    """Hyper-parameters of the mentions head: the settings of
    ``spacy_hmtl.SpanMentionDetector.v1`` and the keyword arguments of ``SpanClassifier``.
    Its label set: ``labels`` (mention types).

    max_width (int): widest candidate span in tokens (>= 1); the pipe enumerates the
        candidates up to it, so wider gold mentions cannot be found. Cost grows linearly
        with it.
    hidden_width (int): width of the span FFNN's two hidden layers.
    width_embedding (int): size of the span-width embedding (0: none).
    dropout (float): dropout on the token vectors and the FFNN's hidden layers.
    """

    max_width: int
    hidden_width: int
    width_embedding: int
    dropout: float

    def check(self) -> None:
        if self.max_width < 1:
            raise ValueError(f"max_width must be >= 1, got {self.max_width}")

    def build_module(self, input_width: int, labels: LabelSets) -> SpanClassifier:
        return SpanClassifier(input_width, len(labels["labels"]), **asdict(self))


@registry.architectures("spacy_hmtl.SpanMentionDetector.v1")
def build_span_mention_detector(
    tok2vec: Model[List[Doc], List[Floats2d]],
    max_width: int,
    hidden_width: int,
    width_embedding: int,
    dropout: float,
) -> Model[List[Doc], HeadBatch]:
    """Span-based entity mention detector (HMTL level 2): every span up to ``max_width``
    tokens classified into a mention type or "no mention".

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener giving the token vectors
        (HMTL: level 2 of ``hmtl_encoder`` with the embedding shortcut).
    The other arguments: the fields of ``SpanMentionDetectorSettings``, documented there;
    their defaults: the ``hmtl_mentions`` factory's config.
    """
    return build_torch_head("hmtl_mentions", tok2vec, SpanMentionDetectorSettings.from_arguments(locals()))
