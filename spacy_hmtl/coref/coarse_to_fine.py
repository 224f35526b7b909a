"""Coarse-to-fine antecedent scoring at inference for the coreference head (Lee et al. 2018).

With ``coarse_antecedents > 0`` a ``CorefRanker`` ranks each kept span's preceding kept spans
by a cheap score, ``s_m(i) + s_m(j) + s_c(i, j)`` with the bilinear ``s_c(i, j) = (U g_i) .
(V g_j)`` plus a learned prior per distance bucket, and runs its antecedent FFNN on the best ``coarse_antecedents`` of them only. This
is the inference form of that scoring (eval mode, no autograd): per doc, blocks of rows whose
coarse scores over the window are one matrix product, then the FFNN on each row's kept
candidates, whose first layer is one more product (``pair_weights``); the same choices as the
training path
(``CorefRanker._antecedent_scores``), to float noise (``tests/test_inference_paths.py``).
Plain PyTorch, no spaCy.
"""
from typing import Any, Optional, Sequence, Tuple

import torch

from ..layers.distance_buckets import distance_buckets
from .pair_weights import pair_weights
from .span_pruning import NEG_SCORE

# rows per block: the block's coarse scores are (rows x window) floats
_BLOCK_ROWS = 64


def best_coarse_antecedents(
    ranker: Any,
    g: torch.Tensor,
    mention_scores: torch.Tensor,
    counts: Sequence[int],
    window: int,
    match_keys: Optional[Tuple[torch.Tensor, torch.Tensor]],
    link_threshold: float,
    product_dtype: Optional[torch.dtype] = None,
    fine: Optional[int] = None,
) -> torch.Tensor:
    """Each kept span's best antecedent among the ``fine`` best (by the coarse score) of the
    ``window`` kept spans before it in its doc, when its score exceeds ``link_threshold``.

    ranker (CorefRanker): the coreference module, with coarse-to-fine pruning (typed
        ``Any``: ``torch_module`` imports this module, and no import goes back).
    g (torch.Tensor): ``(S, g_dim)`` span embeddings of the kept spans of every doc, doc
        after doc, each doc's in document order.
    mention_scores (torch.Tensor): ``(S,)`` their mention scores.
    counts (Sequence[int]): kept spans per doc (summing to ``S``).
    window (int): preceding kept spans ranked by the coarse score.
    match_keys: ``(S,)`` text ids and last-word keys (``CorefRanker._span_match_keys``), or None.
    link_threshold (float): the score an antecedent must exceed to be linked.
    product_dtype (Optional[torch.dtype]): the dtype of the FFNN's first-layer product, most
        of the work (bfloat16: ``CorefRanker.reduced_dtype``, as ``antecedent_tiles`` runs its
        tiles); None: float32. Its operands are cast and its result comes back to float32
        before anything is added to it. The coarse ranking stays float32: which candidates
        the FFNN sees does not move with the precision.
    fine (Optional[int]): the candidates per span that get the FFNN; None: the ranker's
        ``coarse_antecedents`` (what it trained with).
    RETURNS (torch.Tensor): ``(S,)`` int64, the antecedent's index among its doc's kept
        spans, -1 for none.
    """
    S, device = g.shape[0], g.device
    best = torch.full((S,), -1, dtype=torch.long, device=device)
    fine = ranker.coarse_antecedents if fine is None else int(fine)
    if S < 2 or window < 1:
        return best
    weights = pair_weights(ranker, g, match_keys is not None)
    P, padded = weights.product_width, weights.weight.shape[1]
    low = product_dtype is not None and product_dtype != g.dtype
    # the product's operands, cast once: the stacked weights and the span products' factors
    weight = weights.weight.to(product_dtype) if low else weights.weight
    g_prod = weights.g_prod.to(product_dtype) if low else weights.g_prod
    coarse_i, coarse_j = ranker.coarse_i(g), ranker.coarse_j(g)
    prior = ranker.coarse_distance.weight[:, 0]  # per distance bucket
    doc_start = 0
    for k in counts:
        for r0 in range(doc_start + 1, doc_start + k, _BLOCK_ROWS):
            r1 = min(doc_start + k, r0 + _BLOCK_ROWS)
            c0, c1 = max(doc_start, r0 - window), r1 - 1  # candidate antecedents [c0, c1)
            span = torch.arange(r0, r1, device=device)
            distance = span[:, None] - torch.arange(c0, c1, device=device)[None, :]
            # the coarse ranking: one product for the block
            totals = coarse_i[r0:r1] @ coarse_j[c0:c1].t()
            totals += prior[distance_buckets(distance.clamp(min=1))]
            totals += mention_scores[r0:r1, None]
            totals += mention_scores[None, c0:c1]
            totals.masked_fill_((distance < 1) | (distance > window), NEG_SCORE)
            kept, keep = totals.topk(min(fine, c1 - c0), dim=1)
            n, m = kept.shape
            j_idx = c0 + keep  # (n, m) the candidates
            # the FFNN on the candidates: each pair's feature row times the stacked weights
            features = g_prod.new_zeros((n, m, weights.n_columns))
            torch.mul(g_prod[r0:r1, None, :], g_prod[j_idx], out=features[..., :P])
            pair_distance = (span[:, None] - j_idx).clamp(min=1)
            features.scatter_(-1, (distance_buckets(pair_distance) + weights.distance_column)[..., None], 1.0)
            if match_keys is not None and weights.n_features > weights.match_column:
                text_id, last_key = match_keys
                same_text = text_id[r0:r1, None] == text_id[j_idx]
                same_last = last_key[r0:r1, None] == last_key[j_idx]
                code = same_text.long() * 2 + same_last.long() + weights.match_column
                features.scatter_(-1, code[..., None], 1.0)
            pre = torch.mm(features.view(-1, weights.n_columns), weight).view(n, m, padded)
            if low:
                pre = pre.float()
            pre += weights.proj_i[r0:r1, None, :]
            pre += weights.proj_j[j_idx]
            scores = weights.finish(pre.view(-1, padded)).view(n, m)
            scores += weights.out_bias
            scores += kept  # s_m(i) + s_m(j) + s_c(i, j) + prior(i - j)
            scores.masked_fill_(kept <= NEG_SCORE / 2, NEG_SCORE)
            top, arg = scores.max(-1)
            chosen = j_idx.gather(1, arg[:, None]).squeeze(1) - doc_start
            best[r0:r1] = torch.where(top > link_threshold, chosen, torch.full_like(chosen, -1))
        doc_start += k
    return best
