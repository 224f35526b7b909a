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
from typing import Callable, Optional, Tuple

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
    layer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    X: torch.Tensor,
    segments: torch.Tensor,
    flat_layer: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
) -> torch.Tensor:
    """``layer(X_segments, lengths)`` on each segment of ``X`` on its own, states scattered
    back to ``X``'s layout.

    flat_layer: the same function on tokens stored one sequence after the other
        (``BiLSTM.forward_flat``); used instead on a CPU without autograd, where it saves
        padding every sentence to the longest one (most of such a batch is padding)."""
    if flat_layer is not None and X.device.type == "cpu" and not torch.is_grad_enabled():
        return run_per_segment_flat(flat_layer, X, segments)
    gathered, lengths = gather_segments(X, segments)
    return scatter_segments(layer(gathered, lengths), segments, X.shape[0], X.shape[1])


def run_per_segment_flat(
    flat_layer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], X: torch.Tensor, segments: torch.Tensor
) -> torch.Tensor:
    """``run_per_segment`` through a layer on flat tokens: the tokens of the segments, one
    segment after the other, go through ``flat_layer(tokens, lengths)`` and its states are
    copied back to ``X``'s layout (zeros outside the segments)."""
    batch, time = X.shape[0], X.shape[1]
    segments = segments.to("cpu", torch.int64)
    rows, starts, lengths = segments.unbind(1)
    total = int(lengths.sum())
    # flat position (row * time + token) of each segment token, segment after segment
    first_of_segment = torch.repeat_interleave(rows * time + starts, lengths)
    step = torch.arange(total) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    positions = (first_of_segment + step).to(X.device)
    states = flat_layer(X.reshape(batch * time, X.shape[2]).index_select(0, positions), lengths)
    out = X.new_zeros((batch * time, states.shape[1]))
    out.index_copy_(0, positions, states)
    return out.view(batch, time, states.shape[1])
