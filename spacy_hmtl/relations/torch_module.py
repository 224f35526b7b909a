"""Multi-head selection relation scorer (Bekoulis et al. 2018, as used by HMTL).

Plain PyTorch, no spaCy. The module reads ``[embeddings ; level 2]`` of the shared encoder
(padded, ``(batch, time, n_in)``), runs its own BiLSTM and scores every candidate ordered
pair of argument spans ``(head i, tail j)`` for every relation label ``r``:

    logit(i, j, r) = V_r · relu(U · a_i + W · a_j + b)

with a sigmoid per label (several labels may hold for one pair). Two optional pair features
add terms inside the relu: ``C · mean(h_k for k strictly between the two spans)`` (the words
between the arguments, e.g. "president of", carry most relational evidence; SpERT pools
the same context) and ``D · e(bucket(gap))``, an embedding of the number of tokens between
them in Lee et al.'s distance buckets (``layers/distance_buckets.py``, as the coref head). A third,
``P · (a_i ⊙ a_j)``, lets the score depend on how the two arguments interact, which the
additive ``U · a_i + W · a_j`` can only approximate through the relu. The argument
representation ``a`` of a span is ``[h_last ; h_first ; type embedding]``: the BiLSTM state
of its last token (the paper's choice: the argument of a relation is the span's last
token), enriched with the state of its first token and a learned embedding of its entity
type (the multi-head-selection paper feeds the entity label embedding too). Type index 0
is reserved for "unknown".

All documents of a batch are scored in one call: the BiLSTM runs over the padded batch,
then the spans of all docs are gathered into one flat list (``(batch_row, start, last,
type)``) and the pairs index into it, so no ``(batch, n_spans, n_spans)`` padding is
needed.
"""
from typing import Optional

import torch
from torch import nn

from ..layers.bilstm import BiLSTM
from ..layers.distance_buckets import N_DISTANCE_BUCKETS, distance_buckets
from ..layers.dropout import Dropout
from ..layers.segments import reads_per_sentence, run_per_segment


class MultiHeadSelection(nn.Module):
    """Score ordered span pairs for each relation label.

    n_in (int): width of the input (the listener's output).
    n_labels (int): number of relation labels.
    n_entity_types (int): number of known entity types; index 0 is "unknown", so the type
        embedding table has ``n_entity_types + 1`` rows.
    The keyword arguments are the fields of ``RelationExtractorSettings``
    (``relations/model.py``), documented there; with ``lstm_context = "sentence"`` the
    BiLSTM reads the ``segments`` given to ``encode`` one by one.
    """

    def __init__(
        self,
        n_in: int,
        n_labels: int,
        n_entity_types: int,
        *,
        lstm_width: int,
        lstm_depth: int,
        hidden_width: int,
        type_embedding: int,
        dropout: float,
        context_pooling: bool = False,
        distance_embedding: int = 0,
        lstm_context: str = "doc",
        pair_product: bool = False,
    ):
        super().__init__()
        self.per_sentence = reads_per_sentence(lstm_context, "MultiHeadSelection: lstm_context")
        if n_in <= 0:
            raise ValueError(f"MultiHeadSelection needs a positive input width, got {n_in}")
        if n_labels <= 0:
            raise ValueError("MultiHeadSelection needs at least one relation label")
        self.n_in = n_in
        self.n_labels = n_labels
        self.drop = Dropout(dropout)
        if lstm_depth > 0:
            self.lstm = BiLSTM(n_in, lstm_width, depth=lstm_depth, dropout=dropout)
            n_token = self.lstm.n_out
        else:
            self.lstm = None
            n_token = n_in
        if type_embedding > 0:
            self.type_embed = nn.Embedding(n_entity_types + 1, type_embedding)
        else:
            self.type_embed = None
        n_arg = 2 * n_token + max(type_embedding, 0)
        self.head_proj = nn.Linear(n_arg, hidden_width)  # U (+ b)
        self.tail_proj = nn.Linear(n_arg, hidden_width, bias=False)  # W
        self.label_out = nn.Linear(hidden_width, n_labels)  # V, one output per label
        self.context_proj = nn.Linear(n_token, hidden_width, bias=False) if context_pooling else None  # C
        if distance_embedding > 0:
            self.gap_embed = nn.Embedding(N_DISTANCE_BUCKETS, distance_embedding)
            self.gap_proj = nn.Linear(distance_embedding, hidden_width, bias=False)  # D
        else:
            self.gap_embed = None
        self.product_proj = nn.Linear(n_arg, hidden_width, bias=False) if pair_product else None  # P

    def encode(self, X: torch.Tensor, lengths: torch.Tensor, segments: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(batch, time, n_in)`` -> ``(batch, time, n_token)`` contextual token states;
        ``segments`` ``(n, 3)`` (row, first token, length): the sentences, read one by one
        when ``lstm_context == "sentence"``."""
        X = self.drop(X)
        if self.lstm is None:
            return X
        if self.per_sentence and segments is not None:
            flat = None if self.training else self.lstm.forward_flat  # inference: no padded sentences
            return run_per_segment(self.lstm, X, segments, flat_layer=flat)
        return self.lstm(X, lengths)

    def arguments(self, H: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """Argument representations of spans ``(n_spans, 4)``: ``(row, start, last, type)``."""
        rows, first, last, types = spans.unbind(1)
        parts = [H[rows, last], H[rows, first]]
        if self.type_embed is not None:
            parts.append(self.type_embed(types))
        return self.drop(torch.cat(parts, dim=1))

    def score_pairs(self, H: torch.Tensor, spans: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits ``(n_pairs, n_labels)`` for ordered pairs ``(n_pairs, 2)`` = (head, tail)
        indexing into ``spans``."""
        if pairs.shape[0] == 0:
            return H.new_zeros((0, self.n_labels))
        A = self.arguments(H, spans)
        # Project every span once, then combine per pair: O(n_spans + n_pairs) matmuls.
        head = self.head_proj(A)
        tail = self.tail_proj(A)
        hidden = head[pairs[:, 0]] + tail[pairs[:, 1]]
        if self.product_proj is not None:
            hidden = hidden + self.product_proj(A[pairs[:, 0]] * A[pairs[:, 1]])
        if self.context_proj is not None or self.gap_embed is not None:
            left, right = spans[pairs[:, 0]], spans[pairs[:, 1]]
            rows = left[:, 0]
            # [lo, hi): the tokens strictly between the two spans, empty if they touch
            lo = torch.minimum(left[:, 2], right[:, 2]) + 1
            hi = torch.maximum(torch.maximum(left[:, 1], right[:, 1]), lo)
            if self.context_proj is not None:
                hidden = hidden + self.context_proj(self.drop(self.between_mean(H, rows, lo, hi)))
            if self.gap_embed is not None:
                hidden = hidden + self.gap_proj(self.gap_embed(distance_buckets(hi - lo)))
        return self.label_out(torch.relu(hidden))

    @staticmethod
    def between_mean(H: torch.Tensor, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Mean of ``H[row, lo:hi]`` per pair (zeros where ``hi == lo``), from prefix sums so
        that the cost is O(pairs x width), not O(pairs x tokens x width)."""
        prefix = torch.cat([H.new_zeros((H.shape[0], 1, H.shape[2])), H.cumsum(dim=1)], dim=1)
        total = prefix[rows, hi] - prefix[rows, lo]
        count = (hi - lo).clamp(min=1).unsqueeze(1).to(H.dtype)
        return total / count

    def forward(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        spans: torch.Tensor,
        pairs: torch.Tensor,
        segments: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """X ``(batch, time, n_in)``, lengths ``(batch,)``, spans ``(n_spans, 4)`` long
        ``(row, start, last, type)``, pairs ``(n_pairs, 2)`` long, optional sentence
        ``segments`` ``(n, 3)`` long -> logits ``(n_pairs, n_labels)``."""
        return self.score_pairs(self.encode(X, lengths, segments), spans, pairs)
