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
from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..layers.dropout import Dropout
from ..layers.span_representation import first_layer_of_spans, pool_spans_by_width

NO_MENTION = 0
# attention logits, start / end / pooled projections of the tokens
TokenFeatures = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class SpanClassifier(nn.Module):
    """Classify candidate spans into ``n_labels`` mention types or "no mention" (0).

    The FFNN's first layer over ``[x_start; x_end; pooled; width]`` is linear, so it is
    computed without materializing span vectors: the token vectors are projected once
    (``n_tokens x 3 * hidden_width``), and a span's first hidden layer is
    ``P_start[start] + P_end[end] + attention-pool(P_pool)[start..end] + W_w width_emb``.
    This is the same function as a linear layer over the concatenation (pooling is linear
    in the vectors) at a fraction of the cost: the work per span no longer depends on
    ``n_in``.

    n_in (int): width of the token vectors.
    n_labels (int): number of mention types (0 only for an uninitialized placeholder,
        which predicts nothing).
    max_width (int): widest span the width embedding distinguishes (wider ones share the
        last embedding; the component never proposes them).
    hidden_width (int): width of the FFNN's two hidden layers.
    width_embedding (int): size of the span-width embedding (0: none).
    dropout (float): dropout on the token vectors and the hidden layers.
    """

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
            features = self.token_features(X)
            chunk_size = max(1, int(chunk_size))
            for begin in range(0, n_spans, chunk_size):
                end = min(begin + chunk_size, n_spans)
                logits = self.forward(X, doc_idx[begin:end], starts[begin:end], ends[begin:end], features)
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
