"""The ``spacy_hmtl.RelationExtractor.v1`` architecture of ``hmtl_relations``: a listener
+ the multi-head selection torch module."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.segments import reads_per_sentence
from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import MultiHeadSelection


@dataclass(frozen=True)
class RelationExtractorSettings(HeadSettings):
    """Hyper-parameters of the relation head: the settings of
    ``spacy_hmtl.RelationExtractor.v1`` and the keyword arguments of
    ``MultiHeadSelection``. Its label sets: ``labels`` (relation labels) and
    ``entity_labels`` (argument types).

    lstm_width (int): hidden size per direction of the head's own BiLSTM (paper: 64).
    lstm_depth (int): layers of that BiLSTM (paper: 3; 0 disables it: the input is used
        directly).
    hidden_width (int): width of the ``U``/``W`` projections of the pair scorer.
    type_embedding (int): width of the learned entity type embedding added to each
        argument representation (0 disables it).
    dropout (float): dropout on the BiLSTM input and on the argument representations.
    context_pooling (bool): add the projected mean of the head's token states between the
        two arguments to each pair's hidden layer (zero when they touch or overlap).
    distance_embedding (int): width of an embedding of the bucketed token gap between
        the arguments (0 disables it).
    lstm_context (str): what the head's BiLSTM reads: ``"doc"`` (each document whole) or
        ``"sentence"`` (each sentence on its own, ``layers/segments.py``: a
        sentence-level corpus such as CoNLL04 then gives the same relations for a
        sentence alone or in a paragraph).
    pair_product (bool): add the projected element-wise product of the two argument
        representations to each pair's hidden layer.
    """

    lstm_width: int
    lstm_depth: int
    hidden_width: int
    type_embedding: int
    dropout: float
    context_pooling: bool
    distance_embedding: int
    lstm_context: str
    pair_product: bool

    def check(self) -> None:
        reads_per_sentence(self.lstm_context, "spacy_hmtl.RelationExtractor.v1: lstm_context")

    def build_module(self, input_width: int, labels: LabelSets) -> MultiHeadSelection:
        return MultiHeadSelection(
            input_width, len(labels["labels"]), len(labels.get("entity_labels", ())), **asdict(self)
        )


@registry.architectures("spacy_hmtl.RelationExtractor.v1")
def build_relation_extractor(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int,
    lstm_depth: int,
    hidden_width: int,
    type_embedding: int,
    dropout: float,
    context_pooling: bool = False,
    distance_embedding: int = 0,
    lstm_context: str = "doc",
    pair_product: bool = False,
) -> Model[List[Doc], HeadBatch]:
    """Multi-head selection relation extractor (Bekoulis et al. 2018, as in HMTL) on top
    of a listener.

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener, normally
        ``spacy_hmtl.HMTLListener.v1`` giving ``[embeddings ; level 2]``.
    The other arguments: the fields of ``RelationExtractorSettings``, documented there;
    their defaults: the ``hmtl_relations`` factory's config. The four defaults in this
    signature are settings added after pipelines had been saved: a config written before
    them still loads, with the old behaviour.
    """
    return build_torch_head("hmtl_relations", tok2vec, RelationExtractorSettings.from_arguments(locals()))
