"""The ``hmtl_ner`` pipe: named entities from level 1 of the shared encoder."""
from typing import Callable, Iterable, Iterator, List, Optional, Set, Tuple, cast

import torch
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Config, Model

from ..annotations import has_ner_annotation
from ..gold_check import UnlearnableGold
from ..head_pipe import TorchHeadPipe
from ..layers.torch_head import HeadBatch
from .torch_module import CRFTagger, bioul_tag_names

DEFAULT_NER_MODEL_CONFIG = """
[model]
@architectures = "spacy_hmtl.CRFTagger.v1"
hidden_width = 0
dropout = 0.2

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 1
shortcut = false
width = 0
"""
DEFAULT_NER_MODEL = Config().from_str(DEFAULT_NER_MODEL_CONFIG)["model"]


@Language.factory(
    "hmtl_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_NER_MODEL,
        "loss_weight": 1.0,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_hmtl_ner(
    nlp: Language, name: str, model: Model, loss_weight: float, scorer: Optional[Callable]
) -> "HMTLNer":
    """HMTL's named entity recognizer: a BIOUL CRF on level 1 of ``hmtl_encoder``.

    Writes ``doc.ents``; scores ``ents_p/r/f`` and ``ents_per_type`` on the documents that
    carry entity annotation.

    loss_weight (float): multiplies the CRF loss (summed over docs) in the shared update.
    """
    return HMTLNer(nlp.vocab, model, name, scorer=scorer, loss_weight=loss_weight)


class HMTLNer(TorchHeadPipe):
    """Named entities with a BIOUL-constrained CRF (Viterbi decoding)."""

    def is_annotated(self, doc: Doc) -> bool:
        return has_ner_annotation(doc)

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        return {ent.label_ for eg in examples for ent in eg.reference.ents}

    def unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> Iterator[UnlearnableGold]:
        """Gold entities labelled outside the head's labels: their tokens are left out of
        the loss (``_gold_tags``), so the head never learns them."""
        known = set(self.labels)
        problem = self.labelled_outside("entities", "left out of the loss, never predicted")
        for eg in examples:
            for ent in eg.reference.ents:
                if ent.label_ not in known:
                    yield problem, ent.label_

    def _gold_tags(self, examples: List[Example], max_len: int) -> torch.Tensor:
        """Gold tag indices (batch x time), -1 where unknown (missing or unseen label)."""
        index = {name: i for i, name in enumerate(bioul_tag_names(self.labels))}
        tags = torch.full((len(examples), max_len), -1, dtype=torch.int64)
        for i, eg in enumerate(examples):
            if not has_ner_annotation(eg.reference):
                continue
            row = [index.get(tag, -1) if tag is not None else -1 for tag in eg.get_aligned_ner()]
            # one copy per document: per-token tensor writes were 3% of a training step
            tags[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
        return tags

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        crf = cast(CRFTagger, batch.module)
        emissions = crf.emissions(batch.X)
        tags = self._gold_tags(examples, batch.X.shape[1]).to(batch.X.device)
        return crf.neg_log_likelihood(emissions, batch.lengths, tags)

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[List[Tuple[int, int, str]]]:
        crf = cast(CRFTagger, batch.module)
        paths = crf.viterbi(crf.emissions(batch.X), batch.lengths)
        names = bioul_tag_names(self.labels)
        return [tags_to_spans([names[t] for t in path]) for path in paths]

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[Tuple[int, int, str]]]) -> None:
        for doc, spans in zip(docs, predictions):
            doc.set_ents([Span(doc, s, e, label=label) for s, e, label in spans], default="outside")


def tags_to_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) of the entities in a BIOUL tag sequence. Robust to invalid
    sequences: an entity is closed at L/U and only opened at B/U."""
    spans = []
    start = None
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "U":
            spans.append((i, i + 1, label))
            start = None
        elif prefix == "B":
            start = i
        elif prefix == "L" and start is not None:
            spans.append((start, i + 1, label))
            start = None
        elif prefix == "O":
            start = None
    return spans
