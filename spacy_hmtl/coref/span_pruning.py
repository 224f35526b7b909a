"""Lee et al.'s span pruning for the coreference head: the top-scoring spans of each doc, no
two of them crossing. Plain PyTorch (and Python lists, whose builtin ``max``/``min`` over a
slice run at C speed), no spaCy.
"""
from typing import List, Sequence, Tuple

import torch

# the score of what is no candidate (a span, an antecedent): the coreference module's one constant
NEG_SCORE = -1e30


def non_crossing_top_spans(
    flat_scores: torch.Tensor, ks: Sequence[int], K: int, W: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Lee et al.'s pruning: per doc, take spans in order of decreasing score, skipping a
    span that crosses one already taken (``s1 < s2 <= e1 < e2``), until ``ks[b]`` spans.

    flat_scores: ``(B, T * W)`` scores of span (start, width index) at ``start * W + width``
    (-1e30 = not a candidate), on the CPU. RETURNS: ``(B, K)`` flat indices and a
    validity mask (a doc with fewer candidates than ``K`` is padded with index 0).
    """
    B, TW = flat_scores.shape
    T = TW // W
    top_idx = torch.zeros((B, K), dtype=torch.int64)
    valid = torch.zeros((B, K), dtype=torch.bool)
    for b in range(B):
        if not ks[b]:
            continue
        row = flat_scores[b]
        order = torch.argsort(row, descending=True, stable=True)
        order = order[row[order] > NEG_SCORE / 2].tolist()  # type: ignore[assignment]  # re-bound to its list form on purpose
        max_end_from = [-1] * T  # per start: the largest end of a kept span starting there
        min_start_to = [T] * T  # per end: the smallest start of a kept span ending there
        chosen: List[int] = []
        for idx in order:
            start = idx // W
            end = start + idx % W  # inclusive
            # a one-token span crosses nothing; else the builtin max / min of a list
            # slice (C speed) is what the checks "any kept span starting inside this one
            # ends after it" and "any kept span ending inside it starts before it" need
            if end > start and (max(max_end_from[start + 1 : end + 1]) > end or min(min_start_to[start:end]) < start):
                continue
            chosen.append(idx)
            max_end_from[start] = max(max_end_from[start], end)
            min_start_to[end] = min(min_start_to[end], start)
            if len(chosen) == ks[b]:
                break
        top_idx[b, : len(chosen)] = torch.tensor(chosen, dtype=torch.int64)
        valid[b, : len(chosen)] = True
    return top_idx, valid
