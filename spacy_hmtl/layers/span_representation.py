"""Lee et al. (2017)'s span representation, shared by the mentions and coref heads.

Plain PyTorch, no spaCy. A span ``[start, end]`` is represented by
``[x_start ; x_end ; head ; phi(width)]`` where ``head`` is the attention-weighted average
of the span's token vectors (the "head-finding attention": one logit per token, softmax
inside the span). Both heads feed it to an FFNN whose first layer is linear, so they never
build the concatenation for every candidate: they project the tokens once and add the
projected parts (``first_layer_of_spans``); the pooled part is the attention pooling of
the projected vectors, since pooling is linear in the vectors.

The pooling is needed over three sets of spans, each with its own cost profile; all three
compute the same function (tested against a per-span reference):

* ``pool_token_spans``: a list of candidates over flat tokens (mentions head), in one
  batched product per distinct width (``pool_spans_by_width``: the same for ``(doc, start,
  end)`` candidates of a padded batch, in training);
* ``pool_all_widths``: every width ``1..max_width`` from each of a range of starts (coref
  mention scoring, in chunks of starts);
* ``pool_spans_by_offset``: padded kept spans ``(batch, k)`` (coref span embeddings).
"""
from typing import Optional

import torch


def pool_spans_by_width(
    token_scores: torch.Tensor,
    values: torch.Tensor,
    doc_idx: torch.Tensor,
    starts: torch.Tensor,
    ends: torch.Tensor,
) -> torch.Tensor:
    """Attention pooling of a list of spans of a padded batch: ``pool_token_spans`` over
    the batch's rows laid end to end (a span never crosses its row, so the pooling is the
    same; the flat index gathers faster than (doc, position) pairs, in training too).

    token_scores (torch.Tensor): ``(batch, time)`` attention logits.
    values (torch.Tensor): ``(batch, time, d)`` vectors to pool.
    doc_idx, starts, ends (torch.Tensor): ``(n_spans,)`` int64, ``ends`` inclusive.
    RETURNS (torch.Tensor): ``(n_spans, d)``, in the order of the spans.
    """
    row_start = doc_idx * token_scores.shape[1]
    return pool_token_spans(
        token_scores.reshape(-1), values.reshape(-1, values.shape[-1]), row_start + starts, row_start + ends
    )


def pool_token_spans(
    token_scores: torch.Tensor, values: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor
) -> torch.Tensor:
    """Attention pooling of a list of spans of flat tokens, in one batched product per
    distinct width (one index per token: several times faster than (doc, position) pairs).

    token_scores (torch.Tensor): ``(n_tokens,)`` attention logits.
    values (torch.Tensor): ``(n_tokens, d)`` vectors to pool.
    starts, ends (torch.Tensor): ``(n_spans,)`` int64 flat token indices, ``ends`` inclusive.
    RETURNS (torch.Tensor): ``(n_spans, d)``, in the order of the spans.
    """
    widths = ends - starts + 1
    order = torch.argsort(widths, stable=True)
    unique_widths, counts = torch.unique_consecutive(widths[order], return_counts=True)
    pooled_groups = []
    offset = 0
    for k, count in zip(unique_widths.tolist(), counts.tolist()):
        sel = order[offset : offset + count]
        offset += count
        positions = (starts[sel].unsqueeze(1) + torch.arange(k, device=starts.device).unsqueeze(0)).reshape(-1)
        weights = torch.softmax(token_scores.index_select(0, positions).view(count, k), dim=1)
        group_values = values.index_select(0, positions).view(count, k, values.shape[-1])
        pooled_groups.append(torch.bmm(weights.unsqueeze(1), group_values).squeeze(1))
    if not pooled_groups:
        return values.new_zeros((0, values.shape[-1]))
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.shape[0], device=order.device)
    return torch.cat(pooled_groups, dim=0)[inverse]


def pool_all_widths(token_scores: torch.Tensor, values: torch.Tensor, starts: torch.Tensor, max_width: int) -> torch.Tensor:
    """Attention pooling of the spans of every width ``1..max_width`` from each start, in
    flattened tokens (positions past the last token are clamped to it; mask them out).

    token_scores (torch.Tensor): ``(n_tokens,)`` attention logits.
    values (torch.Tensor): ``(n_tokens, d)`` vectors to pool.
    starts (torch.Tensor): ``(n,)`` int64 start tokens.
    RETURNS (torch.Tensor): ``(n, max_width, d)``: ``[i, w]`` pools tokens
        ``starts[i] .. starts[i] + w``.
    """
    n_tokens, W = values.shape[0], max_width
    offsets = torch.arange(W, device=values.device)
    inside = offsets[None, :] <= offsets[:, None]  # [w, o]: offset o is inside width index w
    idx = (starts[:, None] + offsets[None, :]).clamp(max=n_tokens - 1)  # (n, W)
    logits = token_scores[idx][:, None, :].expand(-1, W, -1).masked_fill(~inside, float("-inf"))
    weights = torch.softmax(logits, dim=-1)  # (n, W, W)
    return torch.bmm(weights, values[idx])


def pool_spans_by_offset(
    token_scores: torch.Tensor, values: torch.Tensor, start: torch.Tensor, width: torch.Tensor, max_width: int
) -> torch.Tensor:
    """Attention pooling of padded spans in flattened tokens.

    token_scores (torch.Tensor): ``(n_tokens,)`` attention logits.
    values (torch.Tensor): ``(n_tokens, d)`` vectors to pool.
    start, width (torch.Tensor): ``(batch, k)`` int64 flat start token and width index
        (width - 1) of each span.
    RETURNS (torch.Tensor): ``(batch, k, d)``.
    """
    n_tokens, W = values.shape[0], max_width
    toks = [(start + o).clamp(max=n_tokens - 1) for o in range(W)]
    logits = torch.stack([token_scores[t] for t in toks], -1)  # (batch, k, W)
    inside = torch.arange(W, device=start.device)[None, None, :] <= width[..., None]
    weights = torch.softmax(logits.masked_fill(~inside, float("-inf")), dim=-1)
    pooled: Optional[torch.Tensor] = None
    if not torch.is_grad_enabled() and start.numel():
        # inference, bit for bit: offsets past the widest span add exact zeros (skipped),
        # rows are gathered with one index each, the sum runs in place
        for o in range(int(width.max()) + 1):
            rows = values.index_select(0, toks[o].reshape(-1)).view(*start.shape, values.shape[-1])
            term = rows.mul_(weights[..., o, None])
            pooled = term if pooled is None else pooled.add_(term)
        return pooled  # type: ignore[return-value]
    for o in range(W):
        term = weights[..., o, None] * values[toks[o]]
        pooled = term if pooled is None else pooled + term
    return pooled  # type: ignore[return-value]


def first_layer_of_spans(
    start_part: torch.Tensor,
    end_part: torch.Tensor,
    pooled_part: torch.Tensor,
    width_part: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The first FFNN layer over ``[x_start ; x_end ; head ; phi(width)]`` from its
    projected parts (the weight blocks applied to each part, the bias in one of them):
    their sum, in this order (the order fixes the float rounding the heads were trained
    with). ``width_part`` None: no width feature."""
    hidden = start_part + end_part + pooled_part
    return hidden if width_part is None else hidden + width_part
