"""The ``spacy_hmtl.RelationExtractor.v1`` architecture (thinc glue of ``hmtl_relations``)."""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..head_pipe import build_head_model
from ..layers.torch_bridge import lazy_torch_layer

# Key of the head model's attrs holding the torch module's size hyper-parameters; the
# component adds the sizes only known at initialize (input width, label counts).
SIZES_ATTR = "hmtl_relation_sizes"


@registry.architectures("spacy_hmtl.RelationExtractor.v1")
def build_relation_extractor(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int = 64,
    lstm_depth: int = 1,
    hidden_width: int = 150,
    type_embedding: int = 20,
    dropout: float = 0.2,
) -> Model:
    """Multi-head selection relation extractor on top of a listener.

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener, normally
        ``spacy_hmtl.HMTLListener.v1`` giving ``[embeddings ; level 2]``.
    lstm_width (int): hidden size per direction of the head's own BiLSTM (paper: 64).
    lstm_depth (int): layers of that BiLSTM (paper: 3; 0 disables it).
    hidden_width (int): width of the ``U``/``W`` projections of the pair scorer.
    type_embedding (int): width of the learned entity type embedding added to each
        argument representation (0 disables it).
    dropout (float): dropout inside the torch module.
    """
    # Importing registers the torch module class under "hmtl_multihead_selection".
    from . import torch_module  # noqa: F401

    torch_head = lazy_torch_layer("hmtl_multihead_selection", "hmtl_relations_scorer")
    model = build_head_model("hmtl_relations", tok2vec, torch_head)
    model.attrs[SIZES_ATTR] = {
        "lstm_width": int(lstm_width),
        "lstm_depth": int(lstm_depth),
        "hidden_width": int(hidden_width),
        "type_embedding": int(type_embedding),
        "dropout": float(dropout),
    }
    return model
