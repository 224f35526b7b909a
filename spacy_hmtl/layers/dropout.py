"""Dropout with a cheap mask on CPU: ``torch.nn.Dropout``'s behaviour at about a third of its cost.

On a CPU, torch draws a dropout mask through ``bernoulli_``, one double-precision uniform per
element, and that was 15-18% of a SciERC training step (``spacy project run
training-speed``): the coreference and mention scorers drop units of hidden layers with one
row per candidate span (about 10,000 x 150 per batch). Here one 64-bit draw of torch's
generator gives four 16-bit integers, and an element is dropped when its integer is below
``round(p * 2**16)`` (counted from the lowest value): every element is dropped independently
with probability ``round(p * 2**16) / 2**16`` (within 2**-17 of ``p``), and the kept ones are
scaled so that the expectation is unchanged. The draws come from torch's default generator,
so ``torch.manual_seed`` (and so ``spacy train``'s seed) makes them reproducible. On other
devices, torch's fused dropout is already fast and is used as is.
"""
import torch
from torch import nn

_LEVELS = 1 << 16  # values of a 16-bit integer
_INT64_RANGE = (-(1 << 63), (1 << 63) - 1)  # random_(from, to): every bit of the word random


def dropout(X: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout of ``X`` (identity unless ``training`` and ``p > 0``).

    X (torch.Tensor): any shape, floating point.
    p (float): the probability of dropping an element, in [0, 1].
    training (bool): whether to drop at all (``module.training``).
    RETURNS (torch.Tensor): ``X`` with the dropped elements zeroed and the rest scaled by
        ``1 / (1 - p)``.
    """
    if not training or p <= 0.0 or X.numel() == 0:
        return X
    if X.device.type != "cpu":
        return torch.nn.functional.dropout(X, p, True)
    threshold = round(p * _LEVELS)
    if threshold >= _LEVELS:
        return X * 0.0
    n = X.numel()
    words = torch.empty(((n + 3) // 4,), dtype=torch.int64).random_(*_INT64_RANGE)
    # int16 values are uniform on [-2**15, 2**15): drop the lowest `threshold` of them
    keep = words.view(torch.int16)[:n].view(X.shape) >= threshold - _LEVELS // 2
    # the multiply's backward is grad * mask: the same gradient as torch's dropout
    return X * keep.to(X.dtype).mul_(_LEVELS / (_LEVELS - threshold))


class Dropout(nn.Module):
    """``torch.nn.Dropout`` with the cheaper CPU mask of :func:`dropout` (no parameters, so
    state dicts written with ``nn.Dropout`` load unchanged)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return dropout(X, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
