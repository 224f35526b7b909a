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
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Config, Model
from spacy.vocab import Vocab

from ..annotations import (
    RELATIONS_ATTR,
    get_relation_records,
    has_relation_annotation,
    sentence_ids,
    set_relation_records,
)
from ..head_pipe import TorchHeadPipe
from . import torch_module  # noqa: F401  (registers "hmtl_multihead_selection")
from .candidates import (
    Candidates,
    candidate_pairs,
    canonical_direction,
    sample_negative_spans,
    select_one_per_pair,
    sentence_ids_or_zeros,
)
from .model import SIZES_ATTR
from .scorer import entity_spans, has_entity_source

__all__ = ["RelationExtractor", "candidate_pairs", "sentence_ids_or_zeros"]

UNKNOWN_TYPE = 0  # type index of entity types not seen at initialize

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_hmtl.RelationExtractor.v1"
lstm_width = 64
lstm_depth = 1
hidden_width = 150
type_embedding = 20
dropout = 0.2

[model.tok2vec]
@architectures = "spacy_hmtl.HMTLListener.v1"
upstream = "hmtl_encoder"
level = 2
shortcut = true
width = 0
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


def _same_tokens(a: Doc, b: Doc) -> bool:
    return len(a) == len(b) and bool(np.array_equal(a.to_array("ORTH"), b.to_array("ORTH")))


# --- the pipe -----------------------------------------------------------------------


@Language.factory(
    "hmtl_relations",
    assigns=[f"doc._.{RELATIONS_ATTR}"],
    requires=["doc.ents"],
    default_config={
        "model": DEFAULT_MODEL,
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
def make_relation_extractor(
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
) -> "RelationExtractor":
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
    return RelationExtractor(
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


class RelationExtractor(TorchHeadPipe):
    """Multi-head selection over the spans of an entity source; see the module docstring."""

    # a loaded pipeline follows its config for these (e.g. spacy.load(path, config=...))
    runtime_settings = ("entity_source", "threshold", "allow_cross_sentence", "max_pairs")

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
        # run-time settings: attributes from the config, not saved in cfg
        self.decoding = decoding
        self.symmetric_labels = frozenset(symmetric_labels)
        self.negative_spans = float(negative_spans)
        super().__init__(
            vocab,
            model,
            name,
            scorer=scorer,
            loss_weight=loss_weight,
            entity_source=entity_source,
            threshold=float(threshold),
            allow_cross_sentence=bool(allow_cross_sentence),
            max_pairs=int(max_pairs),
            entity_labels=[],
            input_width=0,
        )

    # --- configuration --------------------------------------------------------------

    @property
    def entity_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["entity_labels"])

    def module_kwargs(self) -> Dict[str, Any]:
        return {
            "n_in": self.input_width(),
            "n_labels": len(self.labels),
            "n_entity_types": len(self.entity_labels),
            **self.model.attrs.get(SIZES_ATTR, {}),
        }

    def is_annotated(self, doc: Doc) -> bool:
        return has_relation_annotation(doc)

    def initialize_labels(self, examples: Iterable[Example]) -> None:
        labels = set()
        for eg in examples:
            for record in get_relation_records(eg.reference) or []:
                labels.add(str(record[4]))
        for label in sorted(labels):
            self.add_label(label)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
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
            types = set()
            for eg in get_examples():
                types.update(span.label_ for span in entity_spans(eg.reference, self.cfg["entity_source"]))
            self.cfg["entity_labels"] = sorted(types)
        super().initialize(get_examples, nlp=nlp, labels=labels)

    # --- candidates -------------------------------------------------------------------

    def _type_index(self) -> Dict[str, int]:
        return {label: i + 1 for i, label in enumerate(self.cfg["entity_labels"])}

    def _make_candidates(self, spans: Dict[Tuple[int, int], Tuple[int, int]]) -> Candidates:
        """spans: ``{(start, end): (type index, sentence id)}`` in predicted-doc tokens."""
        keys = sorted(spans)
        starts = np.array([k[0] for k in keys], dtype=np.int64)
        ends = np.array([k[1] for k in keys], dtype=np.int64)
        types = np.array([spans[k][0] for k in keys], dtype=np.int64)
        sents = np.array([spans[k][1] for k in keys], dtype=np.int64)
        pairs = candidate_pairs(starts, sents, self.cfg["max_pairs"], self.cfg["allow_cross_sentence"])
        return Candidates(starts, ends, types, pairs)

    def _add_source_spans(
        self, doc: Doc, sents: np.ndarray, spans: Dict[Tuple[int, int], Tuple[int, int]]
    ) -> None:
        """Add the spans of the doc's own entity source to ``spans`` (``{(start, end):
        (type index, sentence id)}``; a span already there keeps its entry)."""
        type_index = self._type_index()
        for span in entity_spans(doc, self.cfg["entity_source"]):
            entry = (type_index.get(span.label_, UNKNOWN_TYPE), int(sents[span.start]))
            spans.setdefault((span.start, span.end), entry)

    def inference_candidates(self, doc: Doc) -> Candidates:
        """Candidates from the doc's own entity source (predictions, never gold)."""
        spans: Dict[Tuple[int, int], Tuple[int, int]] = {}
        self._add_source_spans(doc, sentence_ids_or_zeros(doc), spans)
        return self._make_candidates(spans)

    def training_candidates(self, eg: Example) -> Tuple[Candidates, np.ndarray]:
        """Teacher forcing: gold entity spans (+ gold relation arguments) of the reference,
        aligned to the predicted doc, and the multi-hot targets ``(n_pairs, n_labels)``."""
        ref, pred = eg.reference, eg.predicted
        records = get_relation_records(ref) or []
        type_index = self._type_index()
        gold: Dict[Tuple[int, int], Optional[str]] = {}
        for span in entity_spans(ref, self.cfg["entity_source"]):
            gold.setdefault((span.start, span.end), span.label_)
        for record in records:
            gold.setdefault((int(record[0]), int(record[1])), None)
            gold.setdefault((int(record[2]), int(record[3])), None)
        identity = _same_tokens(pred, ref)
        ref_sents = sentence_ids(ref)
        if ref_sents is not None:
            sent_doc, sents = ref, ref_sents
        else:
            sent_doc, sents = pred, sentence_ids_or_zeros(pred)
        ref2pred: Dict[Tuple[int, int], Tuple[int, int]] = {}
        spans: Dict[Tuple[int, int], Tuple[int, int]] = {}
        for (start, end), label in sorted(gold.items()):
            if identity:
                key = (start, end)
            else:
                aligned = eg.get_aligned_spans_y2x([ref[start:end]], allow_overlap=True)
                if not aligned:
                    continue
                key = (aligned[0].start, aligned[0].end)
            ref2pred[(start, end)] = key
            if key not in spans:
                sent = sents[start] if sent_doc is ref else sents[key[0]]
                spans[key] = (type_index.get(label, UNKNOWN_TYPE), int(sent))
        if self.negative_spans > 0:
            self._add_negative_arguments(pred, spans, sents if sent_doc is pred or identity else None)
        cands = self._make_candidates(spans)
        targets = np.zeros((cands.n_pairs, len(self.labels)), dtype=np.float32)
        if cands.n_pairs and records:
            span_index = {(int(s), int(e)): i for i, (s, e) in enumerate(zip(cands.starts, cands.ends))}
            pair_index = {(int(h), int(t)): i for i, (h, t) in enumerate(cands.pairs)}
            label_index = {label: i for i, label in enumerate(self.labels)}
            for hs, he, ts, te, label, *_ in records:
                head = ref2pred.get((int(hs), int(he)))
                tail = ref2pred.get((int(ts), int(te)))
                if head is None or tail is None or label not in label_index:
                    continue
                if label in self.symmetric_labels:
                    head, tail = canonical_direction(head, tail)
                row = pair_index.get((span_index[head], span_index[tail]))
                if row is not None:  # else: cross-sentence, beyond max_pairs or self-pair
                    targets[row, label_index[label]] = 1.0
        return cands, targets

    def _add_negative_arguments(
        self, pred: Doc, spans: Dict[Tuple[int, int], Tuple[int, int]], sents: Optional[np.ndarray]
    ) -> None:
        """Add arguments that are not gold entities to a training doc's ``spans``: the
        predicted doc's own entity spans (when an annotating entity pipe set them) and
        ``negative_spans`` sampled spans per gold span, with a random entity type (as a
        tagger would assign one). Pairs with them have no relation, so the head learns to
        reject the wrong arguments it meets at inference."""
        if sents is None:
            sents = sentence_ids_or_zeros(pred)
        self._add_source_spans(pred, sents, spans)
        n_gold = len(spans)
        if not n_gold:
            return
        max_width = min(10, max(end - start for start, end in spans))
        n_samples = int(round(self.negative_spans * n_gold))
        n_types = len(self.cfg["entity_labels"])
        # numpy's global generator: spaCy's fixed seed makes the sample reproducible
        for start, end in sample_negative_spans(sents, set(spans), n_samples, max_width, np.random):
            type_id = int(np.random.randint(n_types)) + 1 if n_types else UNKNOWN_TYPE
            spans[(start, end)] = (type_id, int(sents[start]))

    # --- torch ------------------------------------------------------------------------

    @staticmethod
    def _run_module(
        module: torch.nn.Module, X: torch.Tensor, lengths: torch.Tensor, cands: List[Optional[Candidates]]
    ) -> Tuple[List[int], List[int], torch.Tensor]:
        """Score the pairs of all docs in one padded call. Returns the batch rows that had
        pairs, the offsets of their pairs in the logits, and the logits."""
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
        return rows, offsets, module(sub_X, sub_lengths, spans, pairs)

    def compute_loss(
        self, examples: List[Example], X: torch.Tensor, lengths: torch.Tensor, module: torch.nn.Module
    ) -> torch.Tensor:
        cands: List[Optional[Candidates]] = []
        targets: List[np.ndarray] = []
        for eg in examples:
            if not self.is_annotated(eg.reference):
                cands.append(None)
                continue
            c, t = self.training_candidates(eg)
            cands.append(c)
            if c.n_pairs:
                targets.append(t)
        rows, _, logits = self._run_module(module, X, lengths, cands)
        if not rows:
            return X.new_zeros(())
        gold = torch.from_numpy(np.concatenate(targets)).to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, gold, reduction="sum")

    def decode(self, docs: List[Doc], X: torch.Tensor, lengths: torch.Tensor, module: torch.nn.Module) -> List[Any]:
        """Records per doc; ``None`` (not annotated) for a doc whose entity source no pipe
        annotated: "no arguments were given" is not "no relation was found"."""
        annotated = [has_entity_source(doc, self.cfg["entity_source"]) for doc in docs]
        if not all(annotated):
            self._warn_missing_entity_source()
        cands = [self.inference_candidates(doc) if ok else None for doc, ok in zip(docs, annotated)]
        predictions: List[Optional[List[list]]] = [[] if ok else None for ok in annotated]
        rows, offsets, logits = self._run_module(module, X, lengths, cands)
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
        source = self.cfg["entity_source"]
        where = "doc.ents" if source == "ents" else f'doc.spans["{source}"]'
        warnings.warn(
            f"[{self.name}] {where} is not set on some documents (is the entity pipe, e.g. "
            f"hmtl_ner or hmtl_mentions, missing, disabled or after {self.name}?): their "
            f"relations are left unannotated (doc._.relations is None), not empty",
            UserWarning,
        )

    def _decode_doc(self, cands: Candidates, probs: np.ndarray) -> List[list]:
        """Relation records of one doc from the probabilities of its candidate pairs."""
        threshold = self.cfg["threshold"]
        if self.decoding == "one_per_pair":
            hit_pairs, hit_labels = select_one_per_pair(cands.pairs, probs, threshold)
        else:
            hit_pairs, hit_labels = np.nonzero(probs >= threshold)
        records = []
        for p, l in zip(hit_pairs.tolist(), hit_labels.tolist()):
            h, t = int(cands.pairs[p, 0]), int(cands.pairs[p, 1])
            head = (int(cands.starts[h]), int(cands.ends[h]))
            tail = (int(cands.starts[t]), int(cands.ends[t]))
            label = self.labels[l]
            if label in self.symmetric_labels:
                head, tail = canonical_direction(head, tail)
            records.append([head[0], head[1], tail[0], tail[1], label, float(probs[p, l])])
        return records

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[list]]) -> None:
        for doc, records in zip(docs, predictions):
            set_relation_records(doc, records)
