"""The architecture of ``toy_topic``: a listener and the topic module, built by the head
contract (``spacy_hmtl.layers.torch_head``)."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from spacy_hmtl.layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head

from .torch_module import TopicModule


@dataclass(frozen=True)
class TopicSettings(HeadSettings):
    """Hyper-parameters of the topic head; its label set: ``labels`` (topics).

    hidden_width (int): hidden layer over the pooled vector (0: linear).
    dropout (float): dropout on the pooled vector.
    """

    hidden_width: int
    dropout: float

    def build_module(self, input_width: int, labels: LabelSets) -> TopicModule:
        return TopicModule(input_width, len(labels["labels"]), **asdict(self))


@registry.architectures("spacy_hmtl_toy.TopicClassifier.v1")
def build_topic_classifier(
    tok2vec: Model[List[Doc], List[Floats2d]], hidden_width: int, dropout: float
) -> Model[List[Doc], HeadBatch]:
    """The topic head's model: ``tok2vec`` (a listener of the encoder) and ``TopicModule``."""
    return build_torch_head("toy_topic", tok2vec, TopicSettings(hidden_width=hidden_width, dropout=dropout))
