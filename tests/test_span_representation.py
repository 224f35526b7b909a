"""The shared span representation (layers/span_representation.py): the three poolings
equal a per-span softmax pooling written out naively, and the first-layer sum equals a
linear layer over the concatenation."""
import torch

from spacy_hmtl.layers.span_representation import (
    first_layer_of_spans,
    pool_all_widths,
    pool_spans_by_offset,
    pool_spans_by_width,
)


def naive_pool(scores, values, start, end):
    weights = torch.softmax(scores[start : end + 1], dim=0)
    return (weights[:, None] * values[start : end + 1]).sum(0)


def test_pool_spans_by_width_matches_naive():
    gen = torch.Generator().manual_seed(0)
    scores, values = torch.randn(2, 7, generator=gen), torch.randn(2, 7, 5, generator=gen)
    spans = [(0, 0, 3), (1, 2, 2), (0, 4, 6), (1, 0, 0), (0, 1, 2)]  # mixed widths, any order
    doc_idx, starts, ends = (torch.tensor(col) for col in zip(*spans))
    pooled = pool_spans_by_width(scores, values, doc_idx, starts, ends)
    for row, (d, s, e) in enumerate(spans):
        assert torch.allclose(pooled[row], naive_pool(scores[d], values[d], s, e), atol=1e-6)
    empty = torch.zeros((0,), dtype=torch.int64)
    assert pool_spans_by_width(scores, values, empty, empty, empty).shape == (0, 5)


def test_pool_all_widths_and_by_offset_match_naive():
    gen = torch.Generator().manual_seed(1)
    n, W = 9, 4
    scores, values = torch.randn(n, generator=gen), torch.randn(n, 3, generator=gen)
    starts = torch.tensor([0, 2, 5])
    grid = pool_all_widths(scores, values, starts, W)
    assert grid.shape == (3, W, 3)
    for i, s in enumerate(starts.tolist()):
        for w in range(W):
            if s + w < n:
                assert torch.allclose(grid[i, w], naive_pool(scores, values, s, s + w), atol=1e-6)
    start = torch.tensor([[0, 5], [2, 8]])
    width = torch.tensor([[3, 0], [1, 0]])  # width index: width - 1
    kept = pool_spans_by_offset(scores, values, start, width, W)
    for b in range(2):
        for k in range(2):
            s, w = int(start[b, k]), int(width[b, k])
            assert torch.allclose(kept[b, k], naive_pool(scores, values, s, s + w), atol=1e-6)
            # the same span through the grid
            assert torch.allclose(kept[b, k], pool_all_widths(scores, values, start[b, k : k + 1], W)[0, w], atol=1e-6)


def test_first_layer_sum_equals_linear_over_concatenation():
    gen = torch.Generator().manual_seed(2)
    x_start, x_end, head, phi = (torch.randn(4, d, generator=gen) for d in (3, 3, 5, 2))
    layer = torch.nn.Linear(13, 6)
    weight, bias = layer.weight, layer.bias
    parts = first_layer_of_spans(
        x_start @ weight[:, :3].t() + bias, x_end @ weight[:, 3:6].t(), head @ weight[:, 6:11].t(), phi @ weight[:, 11:].t()
    )
    assert torch.allclose(parts, layer(torch.cat([x_start, x_end, head, phi], -1)), atol=1e-5)
    no_width = first_layer_of_spans(x_start, x_end, head[:, :3])
    assert torch.equal(no_width, x_start + x_end + head[:, :3])
