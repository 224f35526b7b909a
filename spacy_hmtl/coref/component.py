"""The ``hmtl_coref`` pipeline component: coreference clusters by span ranking.

Writes ``doc.spans["coref_clusters_N"]`` (one group per cluster, numbered from 1) and the
marker group ``doc.spans["coref_clusters"]`` through ``annotations.set_coref_clusters``;
``doc._.coref_clusters`` returns the clusters as lists of ``Span`` s.
"""
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, cast

import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..annotations import get_coref_clusters, has_coref_annotation, set_coref_clusters
from ..candidates import align_span_offsets, lowercase_keys, sentence_ids
from ..gold_check import UnlearnableGold
from ..head_pipe import TorchHeadPipe
from ..layers.torch_head import HeadBatch, LabelSets, head_settings
from .model import CorefRankerSettings
from .torch_module import CorefRanker

DEFAULT_COREF_MODEL_CONFIG = """
[model]
@architectures = "spacy_hmtl.CorefRanker.v3"
lstm_width = 100
max_width = 8
spans_per_word = 0.4
max_antecedents = 50
hidden_width = 150
width_embedding = 20
dropout = 0.3
mention_loss_weight = 1.0
product_width = 0
antecedent_depth = 2
non_crossing = true
match_embedding = 0
coarse_width = 0
coarse_antecedents = 0
coarse_loss_weight = 0.0

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0
"""
DEFAULT_COREF_MODEL = Config().from_str(DEFAULT_COREF_MODEL_CONFIG)["model"]

_SCORE_WEIGHTS: Dict[str, Optional[float]] = {"coref_f": 1.0, "coref_p": 0.0, "coref_r": 0.0}
for _metric in ("muc", "b3", "ceafe", "lea"):
    for _part in ("p", "r", "f"):
        _SCORE_WEIGHTS[f"coref_{_metric}_{_part}"] = None


@Language.factory(
    "hmtl_coref",
    default_config={
        "model": DEFAULT_COREF_MODEL,
        "predict_singletons": False,
        "link_threshold": 0.0,
        "decode_max_antecedents": None,
        "decode_coarse_antecedents": None,
        "loss_weight": 1.0,
        "scorer": {"@scorers": "spacy_hmtl.coref_scorer.v1"},
    },
    assigns=["doc.spans"],
    default_score_weights=_SCORE_WEIGHTS,
)
def make_hmtl_coref(
    nlp: Language,
    name: str,
    model: Model,
    predict_singletons: bool,
    link_threshold: float,
    decode_max_antecedents: Optional[int],
    decode_coarse_antecedents: Optional[int],
    loss_weight: float,
    scorer: Optional[Callable],
) -> "HMTLCoref":
    """Create an ``hmtl_coref`` component (Lee et al. 2017 span ranking, HMTL's coref head).

    predict_singletons (bool): also output kept mentions that link to no antecedent and
        have no anaphor as one-mention clusters (for corpora that annotate and score
        singletons, such as LitBank; OntoNotes and SciERC do not).
    link_threshold (float): a span links to its best antecedent when their score exceeds
        this (the "no antecedent" option scores 0, so 0 is what training optimises; a
        negative value links more, for recall). A decoding setting: change it at load time.
    decode_max_antecedents (Optional[int]): the antecedent window at inference; ``None``
        uses the model's ``max_antecedents`` (the training window). Long documents gain from
        a wider window than training can afford (docs/TRAINING.md).
    decode_coarse_antecedents (Optional[int]): with coarse-to-fine pruning
        (``spacy_hmtl.CorefRanker.v2`` or ``.v3``, ``coarse_width > 0``): the candidates per span
        that get the antecedent FFNN at inference; ``None`` uses the model's
        ``coarse_antecedents`` (what it trained with). Fewer than training is faster: a
        model can train its FFNN on the whole window and decode with the coarse score's
        best few (docs/TRAINING.md). An error for a model without coarse-to-fine pruning.
    loss_weight (float): multiplies the coreference loss in the shared update.
    """
    return HMTLCoref(
        nlp.vocab,
        model,
        name,
        scorer=scorer,
        predict_singletons=predict_singletons,
        link_threshold=link_threshold,
        decode_max_antecedents=decode_max_antecedents,
        decode_coarse_antecedents=decode_coarse_antecedents,
        loss_weight=loss_weight,
    )


class HMTLCoref(TorchHeadPipe):
    """Coreference resolution over the shared encoder (``doc._.coref_clusters``)."""

    _needs_labels = False

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "hmtl_coref",
        *,
        scorer: Optional[Callable] = None,
        predict_singletons: bool = False,
        link_threshold: float = 0.0,
        decode_max_antecedents: Optional[int] = None,
        decode_coarse_antecedents: Optional[int] = None,
        loss_weight: float = 1.0,
    ):
        super().__init__(vocab, model, name, scorer=scorer, loss_weight=loss_weight)
        # run-time settings, not saved with the model: the config decides
        self.predict_singletons = bool(predict_singletons)
        self.link_threshold = float(link_threshold)
        if decode_max_antecedents is not None and int(decode_max_antecedents) < 1:
            raise ValueError(f"[{name}] decode_max_antecedents must be >= 1 or null, got {decode_max_antecedents}")
        self.decode_max_antecedents = None if decode_max_antecedents is None else int(decode_max_antecedents)
        if decode_coarse_antecedents is not None:
            if int(decode_coarse_antecedents) < 1:
                raise ValueError(
                    f"[{name}] decode_coarse_antecedents must be >= 1 or null, got {decode_coarse_antecedents}"
                )
            if not cast(CorefRankerSettings, head_settings(model)).coarse_width:
                raise ValueError(
                    f"[{name}] decode_coarse_antecedents is set ({decode_coarse_antecedents}) but the model has no "
                    "coarse-to-fine pruning (spacy_hmtl.CorefRanker.v3 with coarse_width > 0): set it to null"
                )
        self.decode_coarse_antecedents = None if decode_coarse_antecedents is None else int(decode_coarse_antecedents)

    # --- labels: none ---------------------------------------------------------------

    def add_label(self, label: str) -> int:
        raise ValueError(f"[{self.name}] the coreference head has no labels (got {label!r})")

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        return set()

    def label_sets(self) -> LabelSets:
        return {}

    # --- training -------------------------------------------------------------------

    def is_annotated(self, doc: Doc) -> bool:
        return has_coref_annotation(doc)

    def unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> Iterator[UnlearnableGold]:
        """Gold coreference mentions wider than the model's ``max_width``: never
        candidates, so never predicted (their links are lost)."""
        max_width = cast(CorefRankerSettings, head_settings(self.model)).max_width
        wide = (
            f"gold coreference mentions wider than max_width={max_width} tokens, never candidates "
            "(raise the model's max_width to cover them; their links are lost)"
        )
        for eg in examples:
            for cluster in get_coref_clusters(eg.reference) or []:
                for start, end in cluster:
                    if end - start > max_width:
                        yield wide, None

    def gold_clusters(self, eg: Example) -> List[List[Tuple[int, int]]]:
        """Gold clusters of ``eg.reference`` in the token offsets of ``eg.predicted``."""
        clusters = get_coref_clusters(eg.reference) or []
        aligned = [align_span_offsets(eg, cluster) for cluster in clusters]
        return [[offsets for offsets in cluster if offsets is not None] for cluster in aligned]

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        """Marginal log-likelihood loss over the docs annotated for coreference only."""
        X, lengths, module = batch.X, batch.lengths, cast(CorefRanker, batch.module)
        keep = [i for i, eg in enumerate(examples) if self.is_annotated(eg.reference)]
        if not keep:
            return X.new_zeros(())
        index = torch.tensor(keep, dtype=torch.long, device=X.device)
        return module.loss(
            X.index_select(0, index),
            lengths[keep],
            [self.gold_clusters(examples[i]) for i in keep],
            [sentence_ids(examples[i].predicted) for i in keep],
            [lowercase_keys(examples[i].predicted) for i in keep],
        )

    # --- inference ------------------------------------------------------------------

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[Any]:
        return cast(CorefRanker, batch.module).predict(
            batch.X,
            batch.lengths,
            [sentence_ids(doc) for doc in docs],
            singletons=self.predict_singletons,
            link_threshold=self.link_threshold,
            max_antecedents=self.decode_max_antecedents,
            token_keys=[lowercase_keys(doc) for doc in docs],
            coarse_antecedents=self.decode_coarse_antecedents,
        )

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Any]) -> None:
        for doc, clusters in zip(docs, predictions):
            # the module returns one-mention clusters only when asked (predict_singletons)
            set_coref_clusters(doc, clusters)
