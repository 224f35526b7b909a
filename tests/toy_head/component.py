"""The ``toy_topic`` pipe: one topic per document, from level 1 of the shared encoder,
following the head contract (``spacy_hmtl.head_pipe.TorchHeadPipe``)."""
from typing import Callable, Iterable, List, Optional, Set, Tuple, cast

import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Config, Model

from spacy_hmtl.head_pipe import TorchHeadPipe
from spacy_hmtl.layers.torch_head import HeadBatch

from .task import TOPIC_ATTR, TOPIC_SCORE_ATTR
from .torch_module import TopicModule

DEFAULT_MODEL = Config().from_str(
    """
[model]
@architectures = "spacy_hmtl_toy.TopicClassifier.v1"
hidden_width = 0
dropout = 0.0

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 1
shortcut = false
width = 0
"""
)["model"]


@Language.factory(
    "toy_topic",
    assigns=[f"doc._.{TOPIC_ATTR}", f"doc._.{TOPIC_SCORE_ATTR}"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss_weight": 1.0,
        "scorer": {"@scorers": "spacy_hmtl_toy.topic_scorer.v1"},
    },
    default_score_weights={"topic_f": 1.0, "topic_p": 0.0, "topic_r": 0.0},
)
def make_toy_topic(
    nlp: Language, name: str, model: Model, loss_weight: float, scorer: Optional[Callable]
) -> "TopicClassifier":
    return TopicClassifier(nlp.vocab, model, name, scorer=scorer, loss_weight=loss_weight)


class TopicClassifier(TorchHeadPipe):
    """A document's topic: the softmax over the topic labels of its mean token vector."""

    def is_annotated(self, doc: Doc) -> bool:
        return doc._.get(TOPIC_ATTR) is not None

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        return {eg.reference._.get(TOPIC_ATTR) for eg in examples if self.is_annotated(eg.reference)}

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        logits = cast(TopicModule, batch.module)(batch.X, batch.lengths)
        index = {label: i for i, label in enumerate(self.labels)}
        rows, targets = [], []
        for i, eg in enumerate(examples):
            label = eg.reference._.get(TOPIC_ATTR)
            if label in index and len(eg.predicted):
                rows.append(i)
                targets.append(index[label])
        if not rows:
            return logits.sum() * 0.0
        target = torch.tensor(targets, dtype=torch.int64, device=logits.device)
        return torch.nn.functional.cross_entropy(logits[rows], target, reduction="sum")

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[Optional[Tuple[str, float]]]:
        probs = torch.softmax(cast(TopicModule, batch.module)(batch.X, batch.lengths), dim=-1)
        best = probs.max(dim=-1)
        return [
            (self.labels[int(i)], float(p)) if len(doc) else None
            for doc, p, i in zip(docs, best.values, best.indices)
        ]

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Optional[Tuple[str, float]]]) -> None:
        for doc, prediction in zip(docs, predictions):
            label, score = prediction if prediction is not None else (None, None)
            doc._.set(TOPIC_ATTR, label)
            doc._.set(TOPIC_SCORE_ATTR, score)
