"""The ``hmtl_relations`` pipe: end-to-end relation extraction by multi-head selection.

* Arguments: at inference the spans of the pipeline's own entity source
  (``entity_source = "ents"``: ``doc.ents`` + ``doc.spans["ents_overlapping"]``; or a
  ``doc.spans`` key such as ``"mentions"``), never gold. In training, teacher forcing: the
  gold entity spans of the reference (and any gold relation argument missing from them),
  aligned to the predicted doc, with their gold types; with ``negative_spans`` > 0 also
  sampled wrong arguments and the predicted doc's own entity spans.
* Candidates: every ordered pair of distinct spans, within one sentence unless
  ``allow_cross_sentence``; at most ``max_pairs`` per doc, keeping the pairs whose span
  starts are closest (ties: smaller index gap, then position), both directions of a pair
  together. Docs without sentence boundaries count as one sentence.
* Output: ``doc._.hmtl_relations_data`` records ``[head_start, head_end, tail_start,
  tail_end, label, score]``: by default (``decoding = "one_per_pair"``) the most probable
  (direction, label) of each unordered pair if its probability is >= ``threshold``;
  ``[]`` when there is none, ``None`` when the entity source was not annotated;
  ``doc._.relations`` gives Spans.
* Loss: binary cross-entropy summed over (candidate ordered pair, label) and docs (the
  loss scale shared by all heads); docs with records ``None`` are skipped.
"""
import warnings
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..annotations import (
    RELATIONS_ATTR,
    get_relation_records,
    has_relation_annotation,
    set_relation_records,
)
from ..candidates import ENTS_SOURCE, entity_source_name, entity_spans, has_entity_source, sentence_segments
from ..gold_check import UnlearnableGold, some_labels
from ..head_pipe import TorchHeadPipe
from ..layers.torch_head import HeadBatch, LabelSets, label_sets
from .pairs import (
    Candidates,
    PairCandidateBuilder,
    canonical_direction,
    select_one_per_pair,
)
from .scorer import entity_types

__all__ = ["HMTLRelations"]

DEFAULT_RELATIONS_MODEL_CONFIG = """
[model]
@architectures = "spacy_hmtl.RelationExtractor.v1"
lstm_width = 64
lstm_depth = 1
hidden_width = 150
type_embedding = 20
dropout = 0.2
context_pooling = false
distance_embedding = 0
lstm_context = "doc"
pair_product = false

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0
"""
DEFAULT_RELATIONS_MODEL = Config().from_str(DEFAULT_RELATIONS_MODEL_CONFIG)["model"]


# --- the pipe -----------------------------------------------------------------------


@Language.factory(
    "hmtl_relations",
    assigns=[f"doc._.{RELATIONS_ATTR}"],
    # no ``requires``: the argument spans come from ``entity_source`` (doc.ents or a
    # doc.spans key), which the factory's metadata cannot name per instance
    default_config={
        "model": DEFAULT_RELATIONS_MODEL,
        "entity_source": "ents",
        "threshold": 0.5,
        "allow_cross_sentence": False,
        "max_pairs": 2500,
        "decoding": "one_per_pair",
        "symmetric_labels": [],
        "negative_spans": 0.0,
        "loss_weight": 1.0,
        "scorer": {"@scorers": "spacy_hmtl.relation_scorer.v1"},
    },
    default_score_weights={
        "rel_micro_f": 1.0,
        "rel_micro_p": 0.0,
        "rel_micro_r": 0.0,
        "rel_strict_f": 0.0,
        "rel_strict_p": 0.0,
        "rel_strict_r": 0.0,
    },
)
def make_hmtl_relations(
    nlp: Language,
    name: str,
    model: Model,
    entity_source: str,
    threshold: float,
    allow_cross_sentence: bool,
    max_pairs: int,
    decoding: str,
    symmetric_labels: List[str],
    negative_spans: float,
    loss_weight: float,
    scorer: Optional[Callable],
) -> "HMTLRelations":
    """Create an ``hmtl_relations`` component.

    model (Model): ``spacy_hmtl.RelationExtractor.v1`` (or another head model).
    entity_source (str): where argument spans come from at inference: ``"ents"`` or a
        ``doc.spans`` key (e.g. ``"mentions"``). Also used for gold arguments in training
        and for the types of the strict scores.
    threshold (float): decode a label for a pair when its probability is >= threshold.
    allow_cross_sentence (bool): also consider pairs whose arguments start in different
        sentences.
    max_pairs (int): most candidate ordered pairs per doc (the closest are kept).
    decoding (str): ``"one_per_pair"``: at most one label and one direction per unordered
        pair (the most probable, if >= threshold), as the gold data has; ``"multi_label"``:
        every ordered pair and label >= threshold.
    symmetric_labels (List[str]): labels whose direction means nothing (SciERC's
        CONJUNCTION, COMPARE): trained and predicted with the earlier span as head.
    negative_spans (float): in training, add this many sampled non-entity spans per gold
        entity span of a doc as arguments (pairs with them have no relation), plus the
        predicted doc's own entity spans when it has any, so the head learns to reject
        spurious and mis-bounded arguments. 0 (the default) = gold arguments only: on
        SciERC 1.0 cost 4 points of dev relation F1 at 600 steps (docs/TRAINING.md).
    loss_weight (float): multiplies the relation loss in the shared update.
    scorer (Optional[Callable]): the scoring method.
    """
    return HMTLRelations(
        nlp.vocab,
        model,
        name,
        entity_source=entity_source,
        threshold=threshold,
        allow_cross_sentence=allow_cross_sentence,
        max_pairs=max_pairs,
        decoding=decoding,
        symmetric_labels=symmetric_labels,
        negative_spans=negative_spans,
        loss_weight=loss_weight,
        scorer=scorer,
    )


DECODING_MODES = ("one_per_pair", "multi_label")


class HMTLRelations(TorchHeadPipe):
    """Multi-head selection over the spans of an entity source; see the module docstring."""

    legacy_cfg_keys = ("entity_source", "threshold", "allow_cross_sentence", "max_pairs")

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "hmtl_relations",
        *,
        entity_source: str = "ents",
        threshold: float = 0.5,
        allow_cross_sentence: bool = False,
        max_pairs: int = 2500,
        decoding: str = "one_per_pair",
        symmetric_labels: Iterable[str] = (),
        negative_spans: float = 0.0,
        loss_weight: float = 1.0,
        scorer: Optional[Callable] = None,
    ):
        if max_pairs < 0:
            raise ValueError(f"[{name}] max_pairs must be >= 0, got {max_pairs}")
        if decoding not in DECODING_MODES:
            raise ValueError(f"[{name}] decoding must be one of {DECODING_MODES}, got {decoding!r}")
        if negative_spans < 0:
            raise ValueError(f"[{name}] negative_spans must be >= 0, got {negative_spans}")
        super().__init__(vocab, model, name, scorer=scorer, loss_weight=loss_weight, entity_labels=[], input_width=0)
        # run-time settings: attributes from the config (a loaded pipeline follows its
        # config), not saved with the weights; ``cfg`` holds the label sets and sizes
        self.entity_source = entity_source
        self.threshold = float(threshold)
        self.allow_cross_sentence = bool(allow_cross_sentence)
        self.max_pairs = int(max_pairs)
        self.decoding = decoding
        self.symmetric_labels = frozenset(symmetric_labels)
        self.negative_spans = float(negative_spans)

    # --- configuration --------------------------------------------------------------

    @property
    def entity_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["entity_labels"])

    def label_sets(self) -> LabelSets:
        return label_sets(self.labels, entity_labels=self.entity_labels)

    def is_annotated(self, doc: Doc) -> bool:
        return has_relation_annotation(doc)

    def gold_labels(self, examples: Iterable[Example]) -> Set[str]:
        return {str(record[4]) for eg in examples for record in get_relation_records(eg.reference) or []}

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        entity_labels: Optional[List[str]] = None,
    ) -> None:
        """Collect the relation labels (unless given) and the entity types of the entity
        source (unless given or already known), read the listener's width, build the
        torch module.

        entity_labels (Optional[List[str]]): the entity types; by default collected from
            the references' entity source.
        """
        if entity_labels is not None:
            self.cfg["entity_labels"] = sorted(set(entity_labels))
        elif not self.cfg["entity_labels"]:
            types: Set[str] = set()
            for eg in get_examples():
                types.update(span.label_ for span in entity_spans(eg.reference, self.entity_source))
            self.cfg["entity_labels"] = sorted(types)
        super().initialize(get_examples, nlp=nlp, labels=labels)

    # --- the label-set check at initialize -----------------------------------------

    def unlearnable_gold(self, examples: Iterable[Example], nlp: Optional[Language]) -> Iterator[UnlearnableGold]:
        """Gold relations labelled outside the head's labels (their pair's target is "no
        relation"), and, in documents whose entity source is annotated, gold relations
        with an argument the entity source never gives the head: a span that is not in it
        (the arguments at inference are its spans), or one typed with a label that the
        pipes writing it never predict (``argument_type_problem``). One problem per
        relation, the first found."""
        known = set(self.labels)
        unknown = self.labelled_outside("relations", 'trained as "no relation"')
        where = entity_source_name(self.entity_source)
        not_in_source = f"gold relations with an argument that is not a span of {where} (the arguments at inference)"
        type_problem = self.argument_type_problem(nlp)
        for eg in examples:
            records = get_relation_records(eg.reference)
            if not records:
                continue
            types = None
            if has_entity_source(eg.reference, self.entity_source):
                types = entity_types(eg.reference, self.entity_source)
            for record in records:
                label = str(record[4])
                if label not in known:
                    yield unknown, label
                    continue
                if types is None:  # the entity source is not annotated: nothing to compare
                    continue
                arg_types = (types.get((int(record[0]), int(record[1]))), types.get((int(record[2]), int(record[3]))))
                if None in arg_types:
                    yield not_in_source, label
                    continue
                problem = next(filter(None, map(type_problem, arg_types)), None)
                if problem is not None:
                    yield problem, label

    def argument_type_problem(self, nlp: Optional[Language]) -> Callable[[str], Optional[str]]:
        """A function that says what is wrong with an argument type (None: nothing). A
        type is wrong when the pipes before this one that write the entity source (e.g.
        ``hmtl_ner`` for ``doc.ents``) never predict it, or, when no such pipe has a label
        set to read, when it is not among the head's ``entity_labels`` (given at
        initialize: it is then read as an unknown type)."""
        writers, predicted = self._entity_source_writers(nlp)
        if predicted is not None:
            known = predicted
            verb = "predicts" if len(writers) == 1 else "predict"
            why = (
                f"which {' and '.join(writers)} never {verb} into {entity_source_name(self.entity_source)} "
                f"(labels: {some_labels(predicted)})"
            )
        else:
            known = set(self.entity_labels)
            why = f"outside the head's entity_labels ({some_labels(known)}): read as an unknown type"

        def problem(entity_type: str) -> Optional[str]:
            return None if entity_type in known else f"gold relations with an argument typed {entity_type!r}, {why}"

        return problem

    def _entity_source_writers(self, nlp: Optional[Language]) -> Tuple[List[str], Optional[Set[str]]]:
        """The pipes before this one that write the entity source (``doc.ents``: those
        that assign it; a ``doc.spans`` key: those whose ``spans_key`` it is), and the
        union of their labels: None when there is no such pipe, or one of them has no
        labels to read."""
        names: List[str] = []
        labels: Set[str] = set()
        for name, pipe in nlp.pipeline if nlp is not None else []:
            if pipe is self:
                break
            if self.entity_source == ENTS_SOURCE:
                writes = "doc.ents" in nlp.get_pipe_meta(name).assigns
            else:
                writes = getattr(pipe, "spans_key", None) == self.entity_source
            if writes:
                names.append(name)
                pipe_labels = getattr(pipe, "labels", None)
                if not pipe_labels:
                    return names, None
                labels.update(pipe_labels)
        return names, labels if names else None

    # --- candidates (the pair algorithm: relations/pairs.py) ------------------------

    def pair_builder(self) -> PairCandidateBuilder:
        """The builder of argument spans, pairs and targets, with this pipe's settings."""
        return PairCandidateBuilder(
            entity_source=self.entity_source,
            labels=self.labels,
            entity_labels=self.entity_labels,
            max_pairs=self.max_pairs,
            allow_cross_sentence=self.allow_cross_sentence,
            symmetric_labels=self.symmetric_labels,
            negative_spans=self.negative_spans,
        )

    def training_candidates(self, eg: Example) -> Tuple[Candidates, np.ndarray]:
        """Teacher forcing (see ``PairCandidateBuilder.training_candidates``)."""
        return self.pair_builder().training_candidates(eg)

    # --- torch ------------------------------------------------------------------------

    @staticmethod
    def _run_module(
        module: torch.nn.Module,
        X: torch.Tensor,
        lengths: torch.Tensor,
        cands: List[Optional[Candidates]],
        docs: Sequence[Doc],
    ) -> Tuple[List[int], List[int], torch.Tensor]:
        """Score the pairs of all docs in one padded call (``docs`` give the sentences the
        module's BiLSTM may read one by one). Returns the batch rows that had pairs, the
        offsets of their pairs in the logits, and the logits."""
        rows = [i for i, c in enumerate(cands) if c is not None and c.n_pairs]
        if not rows:
            return [], [0], X.new_zeros((0, 0))
        span_blocks, pair_blocks, offsets = [], [], [0]
        n_spans = 0
        for r, i in enumerate(rows):
            c = cands[i]
            span_blocks.append(np.stack([np.full_like(c.starts, r), c.starts, c.ends - 1, c.types], axis=1))
            pair_blocks.append(c.pairs + n_spans)
            n_spans += len(c.starts)
            offsets.append(offsets[-1] + c.n_pairs)
        device = X.device
        spans = torch.from_numpy(np.concatenate(span_blocks)).to(device)
        pairs = torch.from_numpy(np.concatenate(pair_blocks)).to(device)
        row_index = torch.tensor(rows, dtype=torch.int64)
        sub_lengths = lengths[row_index]
        sub_X = X.index_select(0, row_index.to(device))[:, : int(sub_lengths.max())]
        segments = torch.from_numpy(sentence_segments([docs[i] for i in rows])) if module.per_sentence else None
        return rows, offsets, module(sub_X, sub_lengths, spans, pairs, segments)

    def compute_loss(self, examples: List[Example], batch: HeadBatch) -> torch.Tensor:
        X, lengths, module = batch.X, batch.lengths, batch.module
        cands: List[Optional[Candidates]] = []
        targets: List[np.ndarray] = []
        builder = self.pair_builder()
        for eg in examples:
            if not self.is_annotated(eg.reference):
                cands.append(None)
                continue
            c, t = builder.training_candidates(eg)
            cands.append(c)
            if c.n_pairs:
                targets.append(t)
        rows, _, logits = self._run_module(module, X, lengths, cands, [eg.predicted for eg in examples])
        if not rows:
            return X.new_zeros(())
        gold = torch.from_numpy(np.concatenate(targets)).to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, gold, reduction="sum")

    def decode(self, docs: List[Doc], batch: HeadBatch) -> List[Any]:
        """Records per doc; ``None`` (not annotated) for a doc whose entity source no pipe
        annotated: "no arguments were given" is not "no relation was found"."""
        annotated = [has_entity_source(doc, self.entity_source) for doc in docs]
        if not all(annotated):
            self._warn_missing_entity_source()
        builder = self.pair_builder()
        cands = [builder.inference_candidates(doc) if ok else None for doc, ok in zip(docs, annotated)]
        predictions: List[Optional[List[list]]] = [[] if ok else None for ok in annotated]
        rows, offsets, logits = self._run_module(batch.module, batch.X, batch.lengths, cands, docs)
        if not rows:
            return predictions
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        for k, i in enumerate(rows):
            predictions[i] = self._decode_doc(cands[i], probs[offsets[k] : offsets[k + 1]])
        return predictions

    def _warn_missing_entity_source(self) -> None:
        if getattr(self, "_warned_missing_source", False):
            return
        self._warned_missing_source = True
        where = entity_source_name(self.entity_source)
        warnings.warn(
            f"[{self.name}] {where} is not set on some documents (is the entity pipe, e.g. "
            f"hmtl_ner or hmtl_mentions, missing, disabled or after {self.name}?): their "
            f"relations are left unannotated (doc._.relations is None), not empty",
            UserWarning,
            stacklevel=1,  # the default, stated
        )

    def _decode_doc(self, cands: Candidates, probs: np.ndarray) -> List[list]:
        """Relation records of one doc from the probabilities of its candidate pairs."""
        threshold = self.threshold
        if self.decoding == "one_per_pair":
            hit_pairs, hit_labels = select_one_per_pair(cands.pairs, probs, threshold)
        else:
            hit_pairs, hit_labels = np.nonzero(probs >= threshold)
        records = []
        for p, lab in zip(hit_pairs.tolist(), hit_labels.tolist()):
            h, t = int(cands.pairs[p, 0]), int(cands.pairs[p, 1])
            head = (int(cands.starts[h]), int(cands.ends[h]))
            tail = (int(cands.starts[t]), int(cands.ends[t]))
            label = self.labels[lab]
            if label in self.symmetric_labels:
                head, tail = canonical_direction(head, tail)
            records.append([head[0], head[1], tail[0], tail[1], label, float(probs[p, lab])])
        return records

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[list]]) -> None:
        for doc, records in zip(docs, predictions):
            set_relation_records(doc, records)
