"""The ``hmtl_relations`` pipe: end-to-end relation extraction by multi-head selection.

* Arguments: at inference the spans of the pipeline's own entity source
  (``entity_source = "ents"``: ``doc.ents`` + ``doc.spans["ents_overlapping"]``; or a
  ``doc.spans`` key such as ``"mentions"``), never gold. In training, teacher forcing: the
  gold entity spans of the reference (and any gold relation argument missing from them),
  aligned to the predicted doc, with their gold types.
* Candidates: every ordered pair of distinct spans, within one sentence unless
  ``allow_cross_sentence``; at most ``max_pairs`` per doc, keeping the pairs whose span
  starts are closest (ties: smaller index gap, then position), both directions of a pair
  together. Docs without sentence boundaries count as one sentence.
* Output: ``doc._.hmtl_relations_data`` records ``[head_start, head_end, tail_start,
  tail_end, label, score]`` (one per ordered pair and label whose probability is >=
  ``threshold``), ``[]`` when there is none; ``doc._.relations`` gives Spans.
* Loss: binary cross-entropy summed over (candidate ordered pair, label), divided by the
  number of docs of the batch annotated for relations; docs with records ``None`` are
  skipped.
"""
from dataclasses import dataclass
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
from .model import SIZES_ATTR
from .scorer import entity_spans

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


# --- candidates (numpy, no torch) ---------------------------------------------------


def sentence_ids_or_zeros(doc: Doc) -> np.ndarray:
    """Sentence index of every token (all zeros when the doc has no sentence boundaries)."""
    ids = sentence_ids(doc)
    return np.zeros(len(doc), dtype=np.int64) if ids is None else ids


def candidate_pairs(
    starts: np.ndarray, sent_ids: Optional[np.ndarray], max_pairs: int, allow_cross_sentence: bool
) -> np.ndarray:
    """Ordered candidate pairs ``(n, 2)`` (head, tail) of span indices.

    starts: span start tokens, sorted ascending. sent_ids: the sentence of each span (None:
    one sentence). At most ``max_pairs`` pairs are kept: those with the smallest distance
    between span starts (ties: smaller gap in span order, then earlier head), the two
    directions of a pair next to each other.

    Vectorized over span-order gaps ``g = 1, 2, ...``: pairs ``(i, i + g)``. The smallest
    distance at gap g never decreases with g, so the loop stops as soon as ``max_pairs``
    pairs closer than anything at the next gap were found (or when no pair at gap g is in
    one sentence, or g exceeds the pairs needed): a long doc costs O(n_spans x few gaps),
    never O(n_spans ** 2).
    """
    n = len(starts)
    if n < 2 or max_pairs <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    sents = None if allow_cross_sentence or sent_ids is None else np.asarray(sent_ids, dtype=np.int64)
    need = (max_pairs + 1) // 2  # unordered pairs
    heads: List[np.ndarray] = []
    tails: List[np.ndarray] = []
    dists: List[np.ndarray] = []
    n_found = 0
    for gap in range(1, n):
        if gap > need:
            break  # a kept pair (a, b) is preceded by the b - a - 1 pairs (a, a + 1..b - 1)
        a = np.arange(n - gap, dtype=np.int64)
        b = a + gap
        if sents is not None:
            same = sents[a] == sents[b]
            if not same.any():
                break  # sentences are contiguous in span order: no pair at larger gaps either
            a, b = a[same], b[same]
        d = starts[b] - starts[a]
        if n_found >= need:
            d_min = d.min()
            if sum(int((x < d_min).sum()) for x in dists) >= need:
                break
        heads.append(a)
        tails.append(b)
        dists.append(d)
        n_found += len(a)
    if not heads:
        return np.zeros((0, 2), dtype=np.int64)
    a, b, d = np.concatenate(heads), np.concatenate(tails), np.concatenate(dists)
    order = np.lexsort((a, b - a, d))[:need]
    a, b = a[order], b[order]
    both = np.stack([np.stack([a, b], axis=1), np.stack([b, a], axis=1)], axis=1).reshape(-1, 2)
    return both[:max_pairs]


@dataclass
class Candidates:
    """The argument spans of one doc (sorted by start, end) and its candidate pairs."""

    starts: np.ndarray  # (n_spans,) int64
    ends: np.ndarray  # (n_spans,) int64, exclusive
    types: np.ndarray  # (n_spans,) int64 type index (0 = unknown)
    pairs: np.ndarray  # (n_pairs, 2) int64 indices into the spans

    @property
    def n_pairs(self) -> int:
        return int(self.pairs.shape[0])


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
        scorer=scorer,
    )


class RelationExtractor(TorchHeadPipe):
    """Multi-head selection over the spans of an entity source; see the module docstring."""

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
        scorer: Optional[Callable] = None,
    ):
        if max_pairs < 0:
            raise ValueError(f"[{name}] max_pairs must be >= 0, got {max_pairs}")
        super().__init__(
            vocab,
            model,
            name,
            scorer=scorer,
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

    def inference_candidates(self, doc: Doc) -> Candidates:
        """Candidates from the doc's own entity source (predictions, never gold)."""
        type_index = self._type_index()
        sents = sentence_ids_or_zeros(doc)
        spans: Dict[Tuple[int, int], Tuple[int, int]] = {}
        for span in entity_spans(doc, self.cfg["entity_source"]):
            key = (span.start, span.end)
            if key not in spans:
                spans[key] = (type_index.get(span.label_, UNKNOWN_TYPE), int(sents[span.start]))
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
                row = pair_index.get((span_index[head], span_index[tail]))
                if row is not None:  # else: cross-sentence, beyond max_pairs or self-pair
                    targets[row, label_index[label]] = 1.0
        return cands, targets

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
        n_annotated = 0
        for eg in examples:
            if not self.is_annotated(eg.reference):
                cands.append(None)
                continue
            n_annotated += 1
            c, t = self.training_candidates(eg)
            cands.append(c)
            if c.n_pairs:
                targets.append(t)
        rows, _, logits = self._run_module(module, X, lengths, cands)
        if not rows:
            return X.new_zeros(())
        gold = torch.from_numpy(np.concatenate(targets)).to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, gold, reduction="sum")
        return loss / max(n_annotated, 1)

    def decode(self, docs: List[Doc], X: torch.Tensor, lengths: torch.Tensor, module: torch.nn.Module) -> List[Any]:
        cands = [self.inference_candidates(doc) for doc in docs]
        predictions: List[List[list]] = [[] for _ in docs]
        rows, offsets, logits = self._run_module(module, X, lengths, cands)
        if not rows:
            return predictions
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        threshold = self.cfg["threshold"]
        labels = self.labels
        for k, i in enumerate(rows):
            c = cands[i]
            block = probs[offsets[k] : offsets[k + 1]]
            hit_pairs, hit_labels = np.nonzero(block >= threshold)
            heads = c.pairs[hit_pairs, 0]
            tails = c.pairs[hit_pairs, 1]
            predictions[i] = [
                [int(c.starts[h]), int(c.ends[h]), int(c.starts[t]), int(c.ends[t]), labels[l], float(block[p, l])]
                for p, l, h, t in zip(hit_pairs.tolist(), hit_labels.tolist(), heads.tolist(), tails.tolist())
            ]
        return predictions

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[list]]) -> None:
        for doc, records in zip(docs, predictions):
            set_relation_records(doc, records)
