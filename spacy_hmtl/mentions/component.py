"""The ``hmtl_mentions`` pipe: typed entity mention detection (HMTL level 2).

Predicts typed mentions (named, nominal and pronominal), nested and overlapping ones
included, into ``doc.spans[spans_key]``; ``doc.spans[spans_key].attrs["scores"]`` holds
one probability per span (like spaCy's ``spancat``).

Every span of at most ``max_width`` tokens that does not cross a sentence boundary (when
the doc has sentence boundaries) is a candidate; gold mentions wider than ``max_width``
can never be predicted (``initialize`` counts them and warns: ``unlearnable_gold``).
"""
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, cast

import numpy
import torch
from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..annotations import MENTIONS_KEY, has_mention_annotation
from ..candidates import align_spans, enumerate_spans, padded_sentence_ids
from ..gold_check import UnlearnableGold
from ..head_pipe import TorchHeadPipe
from ..layers.torch_head import HeadBatch, head_settings
from .model import SpanMentionDetectorSettings
from .torch_module import SpanClassifier

# (start, end exclusive, label, score)
MentionPrediction = Tuple[int, int, str, float]

DEFAULT_MENTIONS_MODEL_CONFIG = """
[model]
@architectures = "spacy_hmtl.SpanMentionDetector.v1"
max_width = 8
hidden_width = 150
width_embedding = 20
dropout = 0.2

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0
"""
DEFAULT_MENTIONS_MODEL = Config().from_str(DEFAULT_MENTIONS_MODEL_CONFIG)["model"]


@Language.factory(
    "hmtl_mentions",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_MENTIONS_MODEL,
        "spans_key": MENTIONS_KEY,
        "threshold": None,
        "loss_weight": 1.0,
        "scorer": {"@scorers": "spacy_hmtl.mentions_scorer.v1"},
    },
    default_score_weights={"mentions_f": 1.0, "mentions_p": 0.0, "mentions_r": 0.0, "mentions_per_type": None},
)
def make_hmtl_mentions(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    threshold: Optional[float],
    loss_weight: float,
    scorer: Optional[Callable],
) -> "HMTLMentions":
    """Create an ``hmtl_mentions`` component.

    model (Model): a ``spacy_hmtl.SpanMentionDetector.v1`` model.
    spans_key (str): the ``doc.spans`` key to read gold from and write predictions to.
    threshold (Optional[float]): None keeps a candidate when "a mention type" is its most
        probable class; a float keeps it when its best mention type has at least this
        probability (lower = more recall).
    loss_weight (float): multiplies the mention loss (cross-entropy summed over candidate
        spans and docs) in the shared update.
    scorer (Optional[Callable]): the scoring function.
    """
    return HMTLMentions(
        nlp.vocab, model, name, spans_key=spans_key, threshold=threshold, loss_weight=loss_weight, scorer=scorer
    )


class HMTLMentions(TorchHeadPipe):
    """Span-based typed entity mention detector; nested and overlapping mentions allowed.

    ``cfg`` holds the labels and the input width (saved with the model); ``spans_key``
    and ``threshold`` come from the config.
    """

    #: candidates scored at a time at inference (bounds memory on very long docs)
    chunk_size: int = 20000

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "hmtl_mentions",
        *,
        spans_key: str = MENTIONS_KEY,
        threshold: Optional[float] = None,
        loss_weight: float = 1.0,
        scorer: Optional[Callable] = None,
    ):
        super().__init__(vocab, model, name, scorer=scorer, loss_weight=loss_weight)
        self.spans_key = spans_key
        self.threshold = threshold

    # --- sizes -----------------------------------------------------------------------

    @property
    def settings(self) -> SpanMentionDetectorSettings:
        return head_settings(self.model)  # type: ignore[return-value]

    @property
    def max_width(self) -> int:
        """The widest candidate span (the architecture's ``max_width``)."""
        return self.settings.max_width

    # --- labels and initialization ---------------------------------------------------

    def is_annotated(self, doc: Doc) -> bool:
        return has_mention_annotation(doc, self.spans_key)

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        labels: Set[str] = set()
        for eg in examples:
            if self.is_annotated(eg.reference):
                labels.update(span.label_ for span in eg.reference.spans[self.spans_key])
        return labels

    def unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> Iterator[UnlearnableGold]:
        """Gold mentions labelled outside the head's labels (their span's target is "no
        mention", ``_gold_grid``) and gold mentions wider than ``max_width`` (never a
        candidate)."""
        label_ids = set(self.labels)
        unknown = self.labelled_outside("mentions", 'trained as "no mention"')
        wide = (
            f"gold mentions wider than max_width={self.max_width} tokens, never candidates "
            "(raise max_width to cover them; cost grows linearly with it)"
        )
        for eg in examples:
            if self.is_annotated(eg.reference):
                for span in eg.reference.spans[self.spans_key]:
                    if span.label_ not in label_ids:
                        yield unknown, span.label_
                    elif len(span) > self.max_width:
                        yield wide, span.label_

    # --- candidates and gold ------------------------------------------------------------

    def _candidates(self, docs: Sequence[Doc], lengths: torch.Tensor):
        """Candidate spans of a batch: doc index, start, end (inclusive)."""
        sent_ids = padded_sentence_ids(docs, int(lengths.max())) if len(docs) else None
        return enumerate_spans(lengths, self.max_width, sent_ids)

    def _gold_grid(self, eg: Example) -> numpy.ndarray:
        """``(n_tokens, max_width)`` targets of the predicted doc's spans: 0 = no
        mention, ``i + 1`` = label ``i``; gold mentions wider than max_width are missed."""
        doc = eg.predicted
        grid = numpy.zeros((len(doc), self.max_width), dtype="int64")
        label_ids = {label: i + 1 for i, label in enumerate(self.labels)}
        gold = align_spans(eg, eg.reference.spans[self.spans_key])
        # sorted as (start, end, label): of two labels for one span, the last one wins
        for (start, end), label in sorted((offsets, span.label_) for span, offsets in gold):
            width = end - start
            if 0 < width <= self.max_width and label in label_ids:
                grid[start, width - 1] = label_ids[label]
        return grid

    # --- training and prediction -----------------------------------------------------------

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        X, lengths, module = batch.X, batch.lengths, cast(SpanClassifier, batch.module)
        annotated = [i for i, eg in enumerate(examples) if self.is_annotated(eg.reference)]
        if not annotated:
            return X.new_zeros(())
        sub_docs = [examples[i].predicted for i in annotated]
        doc_idx, starts, ends = self._candidates(sub_docs, lengths[annotated])
        if doc_idx.numel() == 0:
            return X.new_zeros(())
        grids = [self._gold_grid(examples[i]) for i in annotated]
        targets = numpy.concatenate(
            [grids[d][s, e - s] for d, s, e in _split_by_doc(doc_idx, starts, ends, len(grids))]
        )
        device = X.device
        batch_idx = torch.tensor(annotated, dtype=torch.int64)[doc_idx]
        return module.loss(
            X,
            batch_idx.to(device),
            starts.to(device),
            ends.to(device),
            torch.from_numpy(targets).to(device),
        )

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[List[MentionPrediction]]:
        X, lengths, module = batch.X, batch.lengths, cast(SpanClassifier, batch.module)
        predictions: List[List[MentionPrediction]] = [[] for _ in docs]
        doc_idx, starts, ends = self._candidates(docs, lengths)
        if doc_idx.numel() == 0:
            return predictions
        device = X.device
        kept, label_idx, scores = module.decode(
            X,
            doc_idx.to(device),
            starts.to(device),
            ends.to(device),
            threshold=self.threshold,
            chunk_size=self.chunk_size,
        )
        labels = self.labels
        for d, start, end, lab, score in zip(
            doc_idx[kept].tolist(), starts[kept].tolist(), ends[kept].tolist(), label_idx.tolist(), scores.tolist()
        ):
            predictions[d].append((start, end + 1, labels[lab], float(score)))
        for preds in predictions:
            preds.sort()
        return predictions

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[MentionPrediction]]) -> None:
        """Write ``doc.spans[spans_key]`` (sorted by start, end, label) with
        ``attrs["scores"]``: one float per span."""
        for doc, preds in zip(docs, predictions):
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in preds]
            doc.spans[self.spans_key] = SpanGroup(
                doc, name=self.spans_key, spans=spans, attrs={"scores": [float(p[3]) for p in preds]}
            )

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, **{"spans_key": self.spans_key, **kwargs})


def _split_by_doc(doc_idx: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, n_docs: int):
    """Yield ``(doc, starts, ends)`` numpy arrays per doc (candidates are ordered by doc)."""
    counts = torch.bincount(doc_idx, minlength=n_docs).tolist()
    starts_np, ends_np = starts.numpy(), ends.numpy()
    offset = 0
    for d, count in enumerate(counts):
        yield d, starts_np[offset : offset + count], ends_np[offset : offset + count]
        offset += count
