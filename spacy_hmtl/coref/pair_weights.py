"""The antecedent FFNN of a ``CorefRanker`` rearranged for inference on a CPU: per-span
terms and stacked weights that score a block of span pairs with one matrix product.

The FFNN's first layer over ``[g_i, g_j, g_i * g_j, phi(distance), psi(match)]`` is a sum:
``A g_i + bias`` and ``B g_j`` are computed once per span; the rest is one product of a
pair's feature row (its ``g_prod_i * g_prod_j`` columns, a one-hot column for its distance
bucket and one for its match value) with the stacked weights ``[W_prod; phi W_dist; psi
W_match]``. ``hidden`` is padded with zeros to a multiple of 16 floats (150-float rows run the
products at 80% of the speed). Used by both inference scorers: ``antecedent_tiles`` (every
pair of a window) and ``coarse_to_fine`` (each span's best few by the coarse score). Plain
PyTorch, no spaCy.
"""
from typing import Any, List, NamedTuple, Sequence, Tuple, cast

import torch
from torch import nn

from ..layers.distance_buckets import N_DISTANCE_BUCKETS


class PairWeights(NamedTuple):
    """What scoring pairs of the spans ``g`` needs, ``hidden`` padded to ``padded``.

    proj_i, proj_j: ``(S, padded)`` the first layer's per-span terms (``proj_i`` with the bias).
    g_prod: ``(S, P)`` the spans' product projections (``g`` itself without one).
    weight: ``(n_columns, padded)`` the stacked weights of a feature row: ``P`` product
        columns, ``N_DISTANCE_BUCKETS`` distance columns, then (with the match feature) 4
        match columns, zero-padded to ``n_columns``.
    product_width: ``P``.
    n_features: the feature columns in use (the rest of ``n_columns`` stays zero).
    rest: the FFNN's later layers, padded: ``(weight, bias)`` each.
    out_weight, out_bias: the output layer.
    """

    proj_i: torch.Tensor
    proj_j: torch.Tensor
    g_prod: torch.Tensor
    weight: torch.Tensor
    product_width: int
    n_features: int
    rest: List[Tuple[torch.Tensor, torch.Tensor]]
    out_weight: torch.Tensor
    out_bias: float

    @property
    def n_columns(self) -> int:
        return self.weight.shape[0]

    @property
    def distance_column(self) -> int:
        """The first distance column (bucket 0); the match columns follow the last bucket."""
        return self.product_width

    @property
    def match_column(self) -> int:
        return self.product_width + N_DISTANCE_BUCKETS

    def finish(self, pre: torch.Tensor) -> torch.Tensor:
        """The FFNN from its first layer's pre-activations ``(m, padded)`` (changed in
        place): ``(m,)`` scores, the output bias not added."""
        out = pre.relu_()
        for layer_weight, layer_bias in self.rest:
            out = nn.functional.linear(out, layer_weight, layer_bias).relu_()
        return torch.mv(out, self.out_weight)


def pair_weights(ranker: Any, g: torch.Tensor, with_match: bool) -> PairWeights:
    """``ranker``'s antecedent FFNN for the spans ``g`` ``(S, g_dim)``, rearranged
    (``ranker``: a ``CorefRanker``; typed ``Any``, no import goes back to it)."""
    first = ranker.antecedent_ffnn.first
    G, P, D = ranker.g_dim, ranker.product_width, ranker.distance_embedding.embedding_dim
    hidden = first.weight.shape[0]
    padded = -(-hidden // 16) * 16

    def pad(t: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(t, (0, padded - hidden))

    proj_i = pad(g @ first.weight[:, :G].t() + first.bias)
    proj_j = pad(g @ first.weight[:, G : 2 * G].t())
    g_prod = g if ranker.product_projection is None else ranker.product_projection(g)
    match = with_match and ranker.match_embedding is not None
    n_features = P + N_DISTANCE_BUCKETS + (4 if match else 0)
    weight = g.new_zeros((-(-n_features // 16) * 16, padded))
    weight[:P, :hidden] = first.weight[:, 2 * G : 2 * G + P].t()
    w_dist = first.weight[:, 2 * G + P : 2 * G + P + D]
    weight[P : P + N_DISTANCE_BUCKETS, :hidden] = ranker.distance_embedding.weight @ w_dist.t()
    if match:
        w_match = first.weight[:, 2 * G + P + D :]
        weight[P + N_DISTANCE_BUCKETS : n_features, :hidden] = ranker.match_embedding.weight @ w_match.t()
    rest = [
        (nn.functional.pad(layer.weight, (0, padded - hidden, 0, padded - hidden)), pad(layer.bias))
        for layer in cast(Sequence[nn.Linear], ranker.antecedent_ffnn.rest)
    ]
    return PairWeights(
        proj_i, proj_j, g_prod, weight, P, n_features, rest,
        pad(ranker.antecedent_ffnn.out.weight)[0], float(ranker.antecedent_ffnn.out.bias),
    )  # fmt: skip
