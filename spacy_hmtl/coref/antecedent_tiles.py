"""Antecedent scoring at inference for the coreference head, in cache-sized tiles.

``CorefRanker`` scores antecedents one way for training (``_antecedent_scores``: a padded
``(batch, spans, antecedents)`` grid, through autograd) and this way at inference: the same
scores, to float noise, for every kept span of every doc, computed tile by tile with one
matrix product each (``tests/test_inference_paths.py`` holds the two to each other). Plain
PyTorch, no spaCy.
"""
from typing import Any, Optional, Sequence, Tuple

import torch

from ..layers.distance_buckets import N_DISTANCE_BUCKETS, distance_buckets
from .pair_weights import pair_weights
from .span_pruning import NEG_SCORE

# The rows and antecedent columns of each tile (x hidden floats): the tile's float32 buffers
# stay in a CPU core's cache (about 1 MB).
_TILE_ROWS = 32
_TILE_COLUMNS = 128


def best_antecedents(
    ranker: Any,
    g: torch.Tensor,
    mention_scores: torch.Tensor,
    counts: Sequence[int],
    window: int,
    match_keys: Optional[Tuple[torch.Tensor, torch.Tensor]],
    link_threshold: float,
    product_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Inference (eval mode, no autograd) of ``ranker``: each kept span's best antecedent
    among the ``window`` kept spans before it in its doc, when its score exceeds
    ``link_threshold``; the scores of ``CorefRanker._antecedent_scores``, to float noise.

    ranker (CorefRanker): the coreference module whose weights score the pairs (typed
        ``Any``: ``torch_module`` imports this module, and no import goes back).
    g (torch.Tensor): ``(S, g_dim)`` span embeddings of the kept spans of every doc,
        doc after doc, each doc's in document order.
    mention_scores (torch.Tensor): ``(S,)`` their mention scores.
    counts (Sequence[int]): kept spans per doc (summing to ``S``).
    window (int): antecedents scored per span.
    match_keys: ``(S,)`` text ids and last-word keys (``CorefRanker._span_match_keys``), or None.
    link_threshold (float): the score an antecedent must exceed to be linked.
    product_dtype (Optional[torch.dtype]): the dtype of the tiles' matrix products
        (bfloat16: ``CorefRanker.inference_dtype``, which ``spacy_hmtl.reduced_precision.v3``
        sets on loaded pipelines); None: float32, the scores above to float noise. The
        products' operands are cast and their outputs come back to float32 before
        anything is added to them (oneDNN sums the bfloat16 products in float32), so
        only the operands and each product's result are rounded.
    RETURNS (torch.Tensor): ``(S,)`` int64, the antecedent's index among its doc's
        kept spans, -1 for none.

    Why it is fast: the pairs of a doc are scored in tiles of ``_TILE_ROWS`` spans x
    ``_TILE_COLUMNS`` antecedents whose buffers stay in the CPU cache, and one matrix
    product per tile computes nearly the whole first layer, instead of gathering and
    adding ``hidden``-wide rows per pair. Near the diagonal it multiplies the pairs' products and one-hot columns of
    their distance bucket and match value by the stacked weights; further away, where
    every pair is in the last distance bucket, it multiplies the antecedents' product
    projections by each span's ``diag(g_prod_i) W_prod``, with the span's own terms in
    one more column, and only the matching pairs get a correction (the stacked weights
    and padded widths: ``pair_weights``). The training scorer's ``(batch, spans,
    antecedents)`` grid, mostly padding when docs differ in length, is never built.
    """
    S, device = g.shape[0], g.device
    best = torch.full((S,), -1, dtype=torch.long, device=device)
    if S < 2 or window < 1:
        return best
    weights = pair_weights(ranker, g, match_keys is not None)
    proj_i, proj_j, g_prod, weight = weights.proj_i, weights.proj_j, weights.g_prod, weights.weight
    P, n_features, n_columns = weights.product_width, weights.n_features, weights.n_columns
    padded = weight.shape[1]
    # Far tiles: where every pair is at least far_distance apart, the distance term is
    # one row for all (the last bucket); the match term is its value for "no match"
    # plus a correction at the (few) matching pairs. The product term then needs no
    # per-pair input: row i's ``diag(g_prod_i) W_prod`` times the antecedents' g_prod,
    # in one batched product whose extra input column adds the row's own terms.
    buckets = distance_buckets(torch.arange(1, 2 ** N_DISTANCE_BUCKETS + 1, device=device))
    far_distance = int((buckets == N_DISTANCE_BUCKETS - 1).nonzero()[0]) + 1
    far_row = weight[P + N_DISTANCE_BUCKETS - 1].clone()
    match_delta = None
    if match_keys is not None:
        far_row += weight[P + N_DISTANCE_BUCKETS]
        match_delta = weight[P + N_DISTANCE_BUCKETS : n_features] - weight[P + N_DISTANCE_BUCKETS]
    g_prod_one = torch.cat([g_prod, g_prod.new_ones((S, 1))], 1)
    low = product_dtype is not None and product_dtype != g.dtype
    g_prod_tile, weight_tile = g_prod, weight
    if low:
        # the products' operands, cast once; each product lands in product_buffer and is
        # copied to the float32 pre_buffer
        g_prod_one, g_prod_tile, weight_tile = (t.to(product_dtype) for t in (g_prod_one, g_prod, weight))
    product_buffer = g.new_empty(_TILE_ROWS * _TILE_COLUMNS * padded, dtype=product_dtype) if low else None
    tile_buffer = g.new_empty(_TILE_ROWS * _TILE_COLUMNS * n_columns, dtype=g_prod_tile.dtype)
    pre_buffer = g.new_empty(_TILE_ROWS * _TILE_COLUMNS * padded)
    doc_start = 0
    for k in counts:
        # a doc's first span has no antecedent
        for r0 in range(doc_start + 1, doc_start + k, _TILE_ROWS):
            r1 = min(doc_start + k, r0 + _TILE_ROWS)
            c0, c1 = max(doc_start, r0 - window), r1 - 1  # candidate antecedents [c0, c1)
            n, C = r1 - r0, c1 - c0
            distance = torch.arange(r0, r1, device=device)[:, None] - torch.arange(c0, c1, device=device)[None, :]
            ok = (distance >= 1) & (distance <= window)
            feature_columns = [distance_buckets(distance.clamp(min=1)) + P]
            match_code = None
            if match_keys is not None:
                text_id, last_key = match_keys
                same_text = text_id[r0:r1, None] == text_id[None, c0:c1]
                same_last = last_key[r0:r1, None] == last_key[None, c0:c1]
                match_code = same_text.long() * 2 + same_last.long()
                feature_columns.append(match_code + P + N_DISTANCE_BUCKETS)
            # columns [c0, c0 + n_far) are far from every row of the block
            n_far = max(0, min(C, r0 - far_distance + 1 - c0))
            row_weights = None
            if n_far:
                row_weights = g.new_empty((n, P + 1, padded))
                torch.mul(g_prod[r0:r1, :, None], weight[None, :P], out=row_weights[:, :P])
                torch.add(proj_i[r0:r1], far_row, out=row_weights[:, P])
                if low:
                    row_weights = row_weights.to(product_dtype)
            scores = g.new_empty((n, C))
            tiles = [(a, min(n_far, a + _TILE_COLUMNS)) for a in range(0, n_far, _TILE_COLUMNS)]
            tiles += [(a, min(C, a + _TILE_COLUMNS)) for a in range(n_far, C, _TILE_COLUMNS)]
            for a, e in tiles:
                pre = pre_buffer[: n * (e - a) * padded].view(n, e - a, padded)
                if a < n_far:
                    antecedents = g_prod_one[None, c0 + a : c0 + e].expand(n, -1, -1)
                    if product_buffer is not None:
                        product = product_buffer[: pre.numel()].view(pre.shape)
                        torch.bmm(antecedents, row_weights, out=product)
                        pre.copy_(product)
                        pre += proj_j[None, c0 + a : c0 + e]
                    else:
                        torch.baddbmm(proj_j[None, c0 + a : c0 + e], antecedents, row_weights, out=pre)
                    if match_code is not None and match_delta is not None:
                        rows, cols = match_code[:, a:e].nonzero(as_tuple=True)
                        if rows.numel():
                            pre.index_put_((rows, cols), match_delta[match_code[rows, cols + a]], accumulate=True)
                else:
                    tile = tile_buffer[: n * (e - a) * n_columns].view(n, e - a, n_columns)
                    torch.mul(g_prod_tile[r0:r1, None, :], g_prod_tile[None, c0 + a : c0 + e], out=tile[..., :P])
                    tile[..., P:].zero_()
                    for columns in feature_columns:
                        tile.scatter_(-1, columns[:, a:e, None], 1.0)
                    if product_buffer is not None:
                        product = product_buffer[: pre.numel()].view(-1, padded)
                        torch.mm(tile.view(-1, n_columns), weight_tile, out=product)
                        pre.view(-1, padded).copy_(product)
                    else:
                        torch.mm(tile.view(-1, n_columns), weight_tile, out=pre.view(-1, padded))
                    pre += proj_i[r0:r1, None, :]
                    pre += proj_j[None, c0 + a : c0 + e]
                scores[:, a:e] = weights.finish(pre.view(-1, padded)).view(n, e - a)
            scores += weights.out_bias
            scores += mention_scores[r0:r1, None]
            scores += mention_scores[None, c0:c1]
            scores.masked_fill_(~ok, NEG_SCORE)
            # nearest antecedent first, as _antecedent_scores orders them (ties: the nearer)
            top, arg = scores.flip(-1).max(-1)
            chosen = (c1 - 1 - doc_start) - arg
            best[r0:r1] = torch.where(top > link_threshold, chosen, torch.full_like(chosen, -1))
        doc_start += k
    return best
