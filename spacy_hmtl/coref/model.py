"""The ``spacy_hmtl.CorefRanker.v3`` architecture of ``hmtl_coref`` (a listener + the
span-ranking torch module); ``.v2``, the same without the coarse loss, and ``.v1``, without
coarse-to-fine pruning."""
from dataclasses import asdict, dataclass
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..layers.torch_head import HeadBatch, HeadSettings, LabelSets, build_torch_head
from .torch_module import CorefRanker, check_coarse_settings


@dataclass(frozen=True)
class CorefRankerSettings(HeadSettings):
    """Hyper-parameters of the coreference head: the settings of
    ``spacy_hmtl.CorefRanker.v3`` and the keyword arguments of ``CorefRanker``. It has no
    labels.

    lstm_width (int): hidden size per direction of the head's own BiLSTM (paper: 200).
    max_width (int): longest candidate span in tokens (paper: 8; spans never cross
        sentence boundaries when the doc has them).
    spans_per_word (float): candidate spans kept per token after mention scoring (0.4).
    max_antecedents (int): kept spans preceding a span that are scored as its
        antecedents (paper: 50-70).
    hidden_width (int): hidden size of the mention and antecedent FFNNs.
    width_embedding (int): size of the span-width embedding.
    dropout (float): dropout on the inputs, the BiLSTM output and the FFNN hidden layers.
    mention_loss_weight (float): weight of an auxiliary mention-detection loss (binary
        cross-entropy of the mention scores of all candidate spans against "is a gold
        mention"). Not in Lee et al. 2017: without it, top-k pruning can settle in the
        degenerate optimum where no gold pair survives pruning and every kept span's gold
        antecedent is the dummy (observed on small data). 0 disables it.
    product_width (int): 0 = Lee et al.'s ``g_i * g_j`` pair term; > 0 = the product of
        learned ``product_width``-wide projections of ``g_i`` and ``g_j`` instead. The
        pairwise term dominates the cost (pairs x g_dim x hidden); a 64-wide product makes
        training several times cheaper on a CPU (the CPU configs use 64).
    antecedent_depth (int): hidden layers of the antecedent FFNN (paper: 2). Its layers
        after the first run once per span pair, so 1 halves the cost of antecedent scoring.
    non_crossing (bool): Lee et al.'s pruning constraint: spans are kept in order of
        mention score, skipping a span that crosses (overlaps without nesting) one already
        kept.
    match_embedding (int): > 0 = an antecedent-pair feature of that size saying whether
        the two spans have the same lowercased words and the same last word (not in Lee et
        al.; it helps small corpora, see docs/TRAINING.md); 0 = off.
    coarse_width (int): > 0 = Lee et al. (2018)'s coarse-to-fine pruning, with a bilinear
        coarse score of that rank: ``s_c(i, j) = (U g_i) . (V g_j)``; 0 = off (every
        candidate in the window gets the antecedent FFNN).
    coarse_antecedents (int): with ``coarse_width``: the candidates of each span, the best
        by ``s_m(i) + s_m(j) + s_c(i, j)`` among its ``max_antecedents`` (at decoding: the
        component's ``decode_max_antecedents``) preceding kept spans, that get the FFNN
        (paper: 50). The FFNN's cost then no longer grows with the window. Equal to
        ``max_antecedents``: the FFNN trains on every candidate, as without pruning, and
        only decoding prunes (the component's ``decode_coarse_antecedents``).
    coarse_loss_weight (float): with ``coarse_width``: weight of a second marginal
        log-likelihood loss on the coarse scores alone, over every candidate in the window
        (not in Lee et al. 2018, whose coarse score learns only through the kept pairs'
        scores). It trains the coarse score to rank the gold antecedents first, which is
        what pruning at decoding needs when the FFNN trains on every candidate. 0 = off.
    """

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
    coarse_width: int = 0
    coarse_antecedents: int = 0
    coarse_loss_weight: float = 0.0

    def check(self) -> None:
        check_coarse_settings(self.coarse_width, self.coarse_antecedents, self.coarse_loss_weight)

    def build_module(self, input_width: int, labels: LabelSets) -> CorefRanker:
        return CorefRanker(input_width, **asdict(self))


@registry.architectures("spacy_hmtl.CorefRanker.v3")
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
    non_crossing: bool,
    match_embedding: int,
    coarse_width: int,
    coarse_antecedents: int,
    coarse_loss_weight: float,
) -> Model[List[Doc], HeadBatch]:
    """Lee et al. (2017) span ranking over the listener's output (HMTL's coref head), with
    Lee et al. (2018)'s coarse-to-fine antecedent pruning when ``coarse_width > 0``, and a
    loss of the coarse scores of its own when ``coarse_loss_weight > 0``.

    tok2vec (Model[List[Doc], List[Floats2d]]): the listener (HMTL: level 2 + shortcut).
    The other arguments: the fields of ``CorefRankerSettings``, documented there.
    """
    return build_torch_head("hmtl_coref", tok2vec, CorefRankerSettings.from_arguments(locals()))


@registry.architectures("spacy_hmtl.CorefRanker.v2")
def build_coref_ranker_v2(
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
    non_crossing: bool,
    match_embedding: int,
    coarse_width: int,
    coarse_antecedents: int,
) -> Model[List[Doc], HeadBatch]:
    """``spacy_hmtl.CorefRanker.v3`` without the coarse loss (``coarse_loss_weight = 0``)."""
    return build_torch_head("hmtl_coref", tok2vec, CorefRankerSettings.from_arguments({**locals(), "coarse_loss_weight": 0.0}))


@registry.architectures("spacy_hmtl.CorefRanker.v1")
def build_coref_ranker_v1(
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
    """``spacy_hmtl.CorefRanker.v3`` without coarse-to-fine pruning (the shipped configs and
    the pipelines saved before ``.v2``). The two defaults in this signature are settings
    added after pipelines had been saved: a config written before them still loads, with
    the old behaviour (``non_crossing = True``, ``match_embedding = 0``).
    """
    return build_torch_head(
        "hmtl_coref",
        tok2vec,
        CorefRankerSettings.from_arguments({**locals(), "coarse_width": 0, "coarse_antecedents": 0, "coarse_loss_weight": 0.0}),
    )
