"""The ``spacy_hmtl.RelationExtractor.v1`` architecture (thinc glue of ``hmtl_relations``)."""
from dataclasses import dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from ..layers.segments import reads_per_sentence
from .torch_module import MultiHeadSelection


@dataclass(frozen=True)
class RelationScorerSettings(HeadSettings):
    """Hyper-parameters of the relation head (see ``build_relation_extractor``). Its
    label sets: ``labels`` (relation labels) and ``entity_labels`` (argument types)."""

    lstm_width: int
    lstm_depth: int
    hidden_width: int
    type_embedding: int
    dropout: float
    context_pooling: bool = False
    distance_embedding: int = 0
    lstm_context: str = "doc"
    pair_product: bool = False

    def build_module(self, input_width: int, labels: LabelSets) -> MultiHeadSelection:
        return MultiHeadSelection(
            input_width,
            len(labels["labels"]),
            len(labels.get("entity_labels", ())),
            lstm_width=self.lstm_width,
            lstm_depth=self.lstm_depth,
            hidden_width=self.hidden_width,
            type_embedding=self.type_embedding,
            dropout=self.dropout,
            context_pooling=self.context_pooling,
            distance_embedding=self.distance_embedding,
            lstm_context=self.lstm_context,
            pair_product=self.pair_product,
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
    """Multi-head selection relation extractor on top of a listener. Defaults: the
    ``hmtl_relations`` factory's config.

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener, normally
        ``spacy_hmtl.HMTLListener.v1`` giving ``[embeddings ; level 2]``.
    lstm_width (int): hidden size per direction of the head's own BiLSTM (paper: 64).
    lstm_depth (int): layers of that BiLSTM (paper: 3; 0 disables it).
    hidden_width (int): width of the ``U``/``W`` projections of the pair scorer.
    type_embedding (int): width of the learned entity type embedding added to each
        argument representation (0 disables it).
    dropout (float): dropout inside the torch module.
    context_pooling (bool): add the mean of the head's token states between the two
        arguments to each pair's hidden layer (off by default: pipelines trained before
        it load unchanged).
    distance_embedding (int): width of an embedding of the bucketed token gap between
        the arguments (0 disables it).
    lstm_context (str): what the head's BiLSTM reads: ``"doc"`` (each document whole, the
        default) or ``"sentence"`` (each sentence on its own: a sentence-level corpus such
        as CoNLL04 then gives the same relations for a sentence alone or in a paragraph).
    pair_product (bool): add the projected element-wise product of the two argument
        representations to each pair's hidden layer (off by default).
    """
    # checked here: the module is only built at initialize
    reads_per_sentence(lstm_context, "spacy_hmtl.RelationExtractor.v1: lstm_context")
    settings = RelationScorerSettings(
        lstm_width=int(lstm_width),
        lstm_depth=int(lstm_depth),
        hidden_width=int(hidden_width),
        type_embedding=int(type_embedding),
        dropout=float(dropout),
        context_pooling=bool(context_pooling),
        distance_embedding=int(distance_embedding),
        lstm_context=str(lstm_context),
        pair_product=bool(pair_product),
    )
    return build_torch_head("hmtl_relations", tok2vec, settings)
