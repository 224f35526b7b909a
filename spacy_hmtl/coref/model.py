"""The architecture of ``hmtl_coref``: a listener + the span-ranking torch module."""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..head_pipe import build_head_model
from ..layers.torch_bridge import lazy_torch_layer
from . import torch_module  # noqa: F401  (registers "hmtl_coref_ranker")


@registry.architectures("spacy_hmtl.CorefRanker.v1")
def build_coref_ranker(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int = 100,
    max_width: int = 8,
    spans_per_word: float = 0.4,
    max_antecedents: int = 50,
    hidden_width: int = 150,
    width_embedding: int = 20,
    dropout: float = 0.3,
    mention_loss_weight: float = 1.0,
    product_width: int = 0,
    antecedent_depth: int = 2,
    non_crossing: bool = True,
) -> Model:
    """Lee et al. (2017) span ranking over the listener's output (HMTL's coref head).

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener (HMTL: level 2 + shortcut).
    lstm_width (int): hidden size per direction of the head's own BiLSTM (paper: 200).
    max_width (int): longest candidate span in tokens (paper: 8; spans never cross
        sentence boundaries when the doc has them).
    spans_per_word (float): candidate spans kept per token after mention scoring (0.4).
    max_antecedents (int): preceding kept spans scored as antecedents (paper: 50-70).
    hidden_width (int): hidden size of the mention and antecedent FFNNs (2 layers each).
    width_embedding (int): size of the span-width embedding.
    dropout (float): torch dropout of the head (inputs, BiLSTM output, FFNN hidden layers).
    mention_loss_weight (float): weight of an auxiliary mention-detection loss (not in
        Lee et al. 2017; it keeps top-k pruning from collapsing on small data; 0 = off).
    product_width (int): 0 = Lee et al.'s ``g_i * g_j`` pair term; > 0 = a product of
        learned projections that wide (several times cheaper; the CPU configs use 64).
    antecedent_depth (int): hidden layers of the antecedent FFNN (paper: 2; 1 is cheaper).
    non_crossing (bool): Lee et al.'s pruning: never keep a span that crosses a kept span
        with a higher mention score.
    """
    torch_head = lazy_torch_layer("hmtl_coref_ranker", "hmtl_coref_scorer")
    torch_head.attrs["hparams"] = {
        "lstm_width": int(lstm_width),
        "max_width": int(max_width),
        "spans_per_word": float(spans_per_word),
        "max_antecedents": int(max_antecedents),
        "hidden_width": int(hidden_width),
        "width_embedding": int(width_embedding),
        "dropout": float(dropout),
        "mention_loss_weight": float(mention_loss_weight),
        "product_width": int(product_width),
        "antecedent_depth": int(antecedent_depth),
        "non_crossing": bool(non_crossing),
    }
    return build_head_model("hmtl_coref", tok2vec, torch_head)
