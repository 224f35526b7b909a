"""Run a sequence layer over each segment (sentence) of a padded batch on its own (plain
torch, no spaCy).

A BiLSTM run over a whole document carries state across sentence boundaries. A head trained
on one-sentence documents (CoNLL04) then meets states it never saw when a user passes a
paragraph: the CoNLL04 pipeline found 324 relations in its dev sentences read one by one, 209
when the same sentences were read 40 to a document, and 296 with each sentence read on its
own. Gathering the sentences into rows of their own, running the layer, and scattering the
states back gives every sentence the same states whatever surrounds it.

``segments`` is a ``(n_segments, 3)`` int64 tensor of ``(batch row, first token, length)``;
the segments of a row must not overlap (tokens in no segment get zero states).
"""
from typing import Callable, Tuple

import torch

# what a BiLSTM reads: each document whole, or each sentence on its own
CONTEXTS = ("doc", "sentence")


def reads_per_sentence(context: str, setting: str) -> bool:
    """Whether ``context`` (one of ``CONTEXTS``) reads sentences one by one; a ValueError
    naming ``setting`` for any other value."""
    if context not in CONTEXTS:
        raise ValueError(f"{setting} must be one of {CONTEXTS}, got {context!r}")
    return context == "sentence"


def gather_segments(X: torch.Tensor, segments: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(batch, time, width)`` -> ``(n_segments, longest, width)`` (zero-padded) and the
    segment lengths ``(n_segments,)`` (on the CPU, as the BiLSTM takes them)."""
    segments = segments.to(X.device)
    rows, starts, lengths = segments.unbind(1)
    longest = int(lengths.max()) if len(lengths) else 0
    steps = torch.arange(longest, device=X.device)
    inside = steps[None, :] < lengths[:, None]
    positions = (starts[:, None] + steps[None, :]).clamp(max=max(X.shape[1] - 1, 0))
    gathered = X[rows[:, None], positions] * inside.unsqueeze(-1).to(X.dtype)
    return gathered, lengths.cpu()


def scatter_segments(Y: torch.Tensor, segments: torch.Tensor, batch: int, time: int) -> torch.Tensor:
    """Inverse of ``gather_segments``: ``(n_segments, longest, width)`` ->
    ``(batch, time, width)``, zeros outside the segments."""
    segments = segments.to(Y.device)
    rows, starts, lengths = segments.unbind(1)
    steps = torch.arange(Y.shape[1], device=Y.device)
    inside = steps[None, :] < lengths[:, None]
    row_index = rows[:, None].expand(-1, Y.shape[1])[inside]
    time_index = (starts[:, None] + steps[None, :])[inside]
    out = Y.new_zeros((batch, time, Y.shape[2]))
    return out.index_put((row_index, time_index), Y[inside])


def run_per_segment(
    layer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], X: torch.Tensor, segments: torch.Tensor
) -> torch.Tensor:
    """``layer(X_segments, lengths)`` on each segment of ``X`` on its own, states scattered
    back to ``X``'s layout."""
    gathered, lengths = gather_segments(X, segments)
    return scatter_segments(layer(gathered, lengths), segments, X.shape[0], X.shape[1])
