"""Span-based mention classifier (plain PyTorch, no spaCy).

Every candidate span ``(doc, start, end)`` (end inclusive) of width <= ``max_width`` is
represented as ``[x_start; x_end; attention-pooled x; width embedding]`` (Lee et al.
2017, as used by HMTL's mention and coreference heads) and classified by an FFNN into
``n_labels + 1`` classes, class 0 meaning "not a mention". Spans are classified
independently, so nested and overlapping mentions are predicted naturally.

Cost: a doc of ``n`` tokens has at most ``n * max_width`` candidates (linear in ``n``).
The first FFNN layer is applied to the tokens before pooling (see ``SpanClassifier``), so
a span costs ``O(width * hidden_width)`` whatever the input width; inference scores the
candidates in chunks so a very long doc runs in bounded memory.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..layers.dropout import Dropout
from ..layers.inference_precision import ReducedPrecisionModule, linear_at
from ..layers.span_representation import first_layer_of_spans, pool_spans_by_width, pool_token_spans

NO_MENTION = 0
# candidates scored at a time at inference: their hidden rows (x hidden_width floats) stay
# in a CPU core's cache
_INFERENCE_CHUNK_SPANS = 4096
# attention logits, start / end / pooled projections of the tokens
TokenFeatures = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class SpanClassifier(ReducedPrecisionModule):
    """Classify candidate spans into ``n_labels`` mention types or "no mention" (0).

    The FFNN's first layer over ``[x_start; x_end; pooled; width]`` is linear, so it is
    computed without materializing span vectors: the token vectors are projected once
    (``n_tokens x 3 * hidden_width``), and a span's first hidden layer is
    ``P_start[start] + P_end[end] + attention-pool(P_pool)[start..end] + W_w width_emb``.
    This is the same function as a linear layer over the concatenation (pooling is linear
    in the vectors) at a fraction of the cost: the work per span no longer depends on
    ``n_in``.

    Spans wider than ``max_width`` share the last width embedding (the pipe never
    proposes them).

    At CPU inference on a loaded pipeline the token projection and the span FFNN's layers
    can run in bfloat16 (``precision_part = "span_scoring"``, set by
    ``spacy_hmtl.reduced_precision.v3``); the sums of the first layer, the attention and the
    softmax stay float32.

    n_in (int): width of the token vectors.
    n_labels (int): number of mention types (0 only for an uninitialized placeholder,
        which predicts nothing).
    The keyword arguments are the fields of ``SpanMentionDetectorSettings``
    (``mentions/model.py``), documented there.
    """

    precision_part = "span_scoring"

    def __init__(
        self,
        n_in: int,
        n_labels: int,
        *,
        max_width: int,
        hidden_width: int,
        width_embedding: int,
        dropout: float,
    ):
        super().__init__()
        if n_in < 1 or n_labels < 0 or max_width < 1 or hidden_width < 1:
            raise ValueError(
                "SpanClassifier needs n_in, max_width and hidden_width >= 1 and n_labels >= 0 "
                f"(got {n_in}, {max_width}, {hidden_width}, {n_labels})"
            )
        self.n_in = n_in
        self.n_labels = n_labels
        self.max_width = max_width
        self.hidden_width = hidden_width
        self.dropout = Dropout(dropout)
        # attention logit of each token (Lee et al. 2017's head-finding attention)
        self.attention = nn.Linear(n_in, 1)
        # first FFNN layer, split into its start / end / pooled blocks
        self.project = nn.Linear(n_in, 3 * hidden_width)
        if width_embedding > 0:
            self.width_embed = nn.Embedding(max_width, width_embedding)
            self.width_project = nn.Linear(width_embedding, hidden_width, bias=False)
        else:
            self.width_embed = None
            self.width_project = None
        self.ffnn = nn.Sequential(
            nn.ReLU(),
            Dropout(dropout),
            nn.Linear(hidden_width, hidden_width),
            nn.ReLU(),
            Dropout(dropout),
            nn.Linear(hidden_width, n_labels + 1),
        )

    def token_features(self, X: torch.Tensor) -> TokenFeatures:
        """Per-token attention logits ``(batch, time)`` and the start / end / pooled
        projections, each ``(batch, time, hidden_width)``; computed once per batch."""
        if X.shape[-1] != self.n_in:
            raise ValueError(f"SpanClassifier expects token vectors of width {self.n_in}, got {X.shape[-1]}")
        # the training path runs in float32; a call in training mode also drops a reduced
        # inference precision for good (ReducedPrecisionModule's per-call rule)
        self.reduced_dtype(X.device)
        X = self.dropout(X)
        p_start, p_end, p_pool = (part.contiguous() for part in self.project(X).split(self.hidden_width, dim=-1))
        return self.attention(X).squeeze(-1), p_start, p_end, p_pool

    def span_hidden(
        self,
        features: TokenFeatures,
        doc_idx: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
    ) -> torch.Tensor:
        """``(n_spans, hidden_width)`` first hidden layer (before its activation) of the
        FFNN over ``[x_start; x_end; attention-pooled x; width embedding]``.

        features: ``token_features(X)``.
        doc_idx, starts, ends (torch.Tensor): ``(n_spans,)`` int64, ``ends`` inclusive.
        """
        token_scores, p_start, p_end, pool_part = features
        pooled = pool_spans_by_width(token_scores, pool_part, doc_idx, starts, ends)
        width_part = None
        if self.width_embed is not None:
            width_part = self.width_project(self.width_embed((ends - starts).clamp(0, self.max_width - 1)))
        return first_layer_of_spans(p_start[doc_idx, starts], p_end[doc_idx, ends], pooled, width_part)

    def forward(
        self,
        X: torch.Tensor,
        doc_idx: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        features: Optional[TokenFeatures] = None,
    ) -> torch.Tensor:
        """``(n_spans, n_labels + 1)`` logits; column 0 is "no mention".

        features: ``token_features(X)`` if already computed (chunked inference).
        """
        if features is None:
            features = self.token_features(X)
        return self.ffnn(self.span_hidden(features, doc_idx, starts, ends))

    def loss(
        self,
        X: torch.Tensor,
        doc_idx: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Softmax cross-entropy summed over the given candidates (targets: 0 = no
        mention, ``i + 1`` = label ``i``). Zero (no gradient) when there are none."""
        if doc_idx.numel() == 0:
            return X.new_zeros(())
        logits = self.forward(X, doc_idx, starts, ends)
        return F.cross_entropy(logits, targets, reduction="sum")

    def _inference_logits(
        self, X: torch.Tensor, doc_idx: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
    ) -> Callable[[int, int], torch.Tensor]:
        """Eval mode: a function giving the logits of candidates ``[begin, end)``, those of
        ``forward`` bit for bit (tested), computed from the real tokens only: the
        projections skip the padding (half of a SciERC batch), the spans' rows are
        gathered from flat tokens with one index each, and the width term is a lookup in
        a table of ``max_width`` rows. With an ``inference_dtype`` (bfloat16) the token
        projection and the FFNN's layers run at it: close to ``forward``, not equal."""
        # a doc's tokens past its last candidate are padding (every token starts a span)
        lengths = torch.zeros(X.shape[0], dtype=torch.int64, device=X.device)
        lengths.scatter_reduce_(0, doc_idx, ends + 1, reduce="amax")
        inside = torch.arange(X.shape[1], device=X.device)[None, :] < lengths[:, None]
        tokens = X[inside]
        first_token = torch.cumsum(lengths, 0) - lengths
        flat_starts, flat_ends = first_token[doc_idx] + starts, first_token[doc_idx] + ends
        dtype = self.reduced_dtype(X.device)
        token_scores = self.attention(tokens).squeeze(-1)
        projected = linear_at(self.project, tokens, dtype)
        p_start, p_end, p_pool = (p.contiguous() for p in projected.split(self.hidden_width, dim=-1))
        width_table = None
        if self.width_embed is not None and self.width_project is not None:
            width_table = self.width_project(self.width_embed.weight)

        def logits(begin: int, end: int) -> torch.Tensor:
            span_starts, span_ends = flat_starts[begin:end], flat_ends[begin:end]
            # first_layer_of_spans' sum, ((start + end) + pooled) + width, in place
            hidden = p_start.index_select(0, span_starts)
            hidden += p_end.index_select(0, span_ends)
            hidden += pool_token_spans(token_scores, p_pool, span_starts, span_ends)
            if width_table is not None:
                hidden += width_table[(ends[begin:end] - starts[begin:end]).clamp(0, self.max_width - 1)]
            # the FFNN layer by layer (self.ffnn's order), its products at the reduced dtype if any
            for layer in self.ffnn:
                hidden = linear_at(layer, hidden, dtype) if isinstance(layer, nn.Linear) else layer(hidden)
            return hidden

        return logits

    @torch.no_grad()
    def decode(
        self,
        X: torch.Tensor,
        doc_idx: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        threshold: Optional[float] = None,
        chunk_size: int = 20000,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep the candidates predicted as mentions, scoring ``chunk_size`` at a time.

        threshold (Optional[float]): None keeps a span when its most probable class is a
            mention type; a float keeps it when its most probable mention type has at
            least that probability (even if "no mention" is more probable).
        RETURNS (Tuple[torch.Tensor, torch.Tensor, torch.Tensor]): indices of the kept
            candidates, their label indices (0-based over the mention types) and their
            probabilities.
        """
        n_spans = int(doc_idx.shape[0])
        kept, labels, scores = [], [], []
        if n_spans and self.n_labels:
            span_logits: Callable[[int, int], torch.Tensor]
            if self.training:  # dropout: the training forward
                features = self.token_features(X)
                chunk_size = max(1, int(chunk_size))

                def training_logits(a: int, b: int) -> torch.Tensor:
                    return self.forward(X, doc_idx[a:b], starts[a:b], ends[a:b], features)

                span_logits = training_logits
            else:
                span_logits = self._inference_logits(X, doc_idx, starts, ends)
                chunk_size = max(1, min(int(chunk_size), _INFERENCE_CHUNK_SPANS))
            for begin in range(0, n_spans, chunk_size):
                end = min(begin + chunk_size, n_spans)
                logits = span_logits(begin, end)
                probs = torch.softmax(logits.float(), dim=-1)
                best_prob, best = probs[:, 1:].max(dim=-1)
                if threshold is None:
                    keep = probs.argmax(dim=-1) != NO_MENTION
                else:
                    keep = best_prob >= threshold
                idx = keep.nonzero(as_tuple=True)[0]
                kept.append(idx + begin)
                labels.append(best[idx])
                scores.append(best_prob[idx])
        if not kept:
            empty = torch.zeros((0,), dtype=torch.int64)
            return empty, empty.clone(), torch.zeros((0,), dtype=torch.float32)
        return torch.cat(kept).cpu(), torch.cat(labels).cpu(), torch.cat(scores).cpu()
