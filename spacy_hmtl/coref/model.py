"""The ``spacy_hmtl.CorefRanker.v1`` architecture of ``hmtl_coref``: a listener + the
span-ranking torch module."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import CorefRanker


@dataclass(frozen=True)
class CorefRankerSettings(HeadSettings):
    """Hyper-parameters of the coreference head (see ``build_coref_ranker``); it has no
    labels."""

    lstm_width: int
    max_width: int
    spans_per_word: float
    max_antecedents: int
    hidden_width: int
    width_embedding: int
    dropout: float
    mention_loss_weight: float
    product_width: int
    antecedent_depth: int
    non_crossing: bool
    match_embedding: int

    def build_module(self, input_width: int, labels: LabelSets) -> CorefRanker:
        return CorefRanker(input_width, **asdict(self))


@registry.architectures("spacy_hmtl.CorefRanker.v1")
def build_coref_ranker(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int,
    max_width: int,
    spans_per_word: float,
    max_antecedents: int,
    hidden_width: int,
    width_embedding: int,
    dropout: float,
    mention_loss_weight: float,
    product_width: int,
    antecedent_depth: int,
    non_crossing: bool = True,
    match_embedding: int = 0,
) -> Model[List[Doc], HeadBatch]:
    """Lee et al. (2017) span ranking over the listener's output (HMTL's coref head).
    Defaults: the ``hmtl_coref`` factory's config.

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
        with a higher mention score. Its default (True) stays in the signature so that
        configs written before the setting existed keep loading.
    match_embedding (int): > 0 = an antecedent-pair feature of that size saying whether
        the two spans have the same lowercased words and the same last word (not in Lee et
        al.; it helps small corpora, see docs/TRAINING.md); 0 (the default, and every
        pipeline saved before it existed) = off.
    """
    settings = CorefRankerSettings(
        lstm_width=int(lstm_width),
        max_width=int(max_width),
        spans_per_word=float(spans_per_word),
        max_antecedents=int(max_antecedents),
        hidden_width=int(hidden_width),
        width_embedding=int(width_embedding),
        dropout=float(dropout),
        mention_loss_weight=float(mention_loss_weight),
        product_width=int(product_width),
        antecedent_depth=int(antecedent_depth),
        non_crossing=bool(non_crossing),
        match_embedding=int(match_embedding),
    )
    return build_torch_head("hmtl_coref", tok2vec, settings)
