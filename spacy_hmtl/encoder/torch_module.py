"""HMTL's hierarchy of BiLSTM levels as a plain PyTorch module (no spaCy, no thinc)."""
from typing import List, Optional, Sequence, cast

import torch
from torch import nn

from ..layers.bilstm import BiLSTM
from ..layers.dropout import Dropout
from ..layers.segments import reads_per_sentence, run_per_segment


class HierarchicalBiLSTM(nn.Module):
    """Stacked BiLSTM levels with shortcut connections (Sanh et al. 2018, section 3).

    Level 1 reads the embeddings E; level k > 1 reads ``[E ; level k-1]``. The output is
    ``[E ; level 1 ; ... ; level K]`` concatenated on the last axis, so one tensor carries
    every level and the embeddings receive gradients through both the shortcut and the
    LSTMs from a single ``backward``.

    n_in (int): width of the embeddings.
    widths (Sequence[int]): hidden size per direction of each level.
    depths (Sequence[int]): LSTM layers of each level.
    dropout (float): dropout on every level's input and between a level's LSTM layers.
    context (str): ``"doc"``: the levels read each document whole; ``"sentence"``: each
        sentence on its own (given ``segments``), so that a sentence's states do not depend
        on the sentences around it (``layers/segments.py``).
    """

    def __init__(
        self, n_in: int, widths: Sequence[int], depths: Sequence[int], dropout: float = 0.2, context: str = "doc"
    ):
        super().__init__()
        self.per_sentence = reads_per_sentence(context, "HierarchicalBiLSTM: context")
        if len(widths) != len(depths) or not widths:
            raise ValueError(
                f"HierarchicalBiLSTM needs one depth per level and at least one level, "
                f"got widths={list(widths)}, depths={list(depths)}"
            )
        self.n_in = n_in
        self.dropout = Dropout(dropout)
        levels: List[BiLSTM] = []
        below = 0
        for width, depth in zip(widths, depths):
            levels.append(BiLSTM(n_in + below, width, depth=depth, dropout=dropout))
            below = 2 * width
        self.levels = nn.ModuleList(levels)
        self.n_out = n_in + sum(level.n_out for level in levels)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor, segments: Optional[torch.Tensor] = None) -> torch.Tensor:
        """X (batch, time, n_in), lengths (batch,), optional sentence segments ``(n, 3)``
        (row, first token, length) -> (batch, time, n_out)."""
        inference = X.device.type == "cpu" and not (self.training or torch.is_grad_enabled())
        if self.per_sentence and segments is not None:
            return run_per_segment(self._levels, X, segments, flat_layer=self._levels_flat if inference else None)
        if inference and X.shape[0] and X.shape[1]:
            # the real tokens only (the same states, BiLSTM.forward_flat)
            inside = torch.arange(X.shape[1])[None, :] < lengths[:, None]
            output = X.new_zeros((X.shape[0], X.shape[1], self.n_out))
            output[inside] = self._levels_flat(X[inside], lengths)
            return output
        return self._levels(X, lengths)

    def _levels_flat(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``_levels`` at inference on tokens stored one sequence after the other:
        ``(n_tokens, n_in)`` -> ``(n_tokens, n_out)`` (no dropout)."""
        outputs = [X]
        below = None
        for level in self.levels:
            below = cast(BiLSTM, level).forward_flat(X if below is None else torch.cat([X, below], dim=-1), lengths)
            outputs.append(below)
        return torch.cat(outputs, dim=-1)

    def _levels(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = [X]
        below = None
        for level in self.levels:
            inputs = X if below is None else torch.cat([X, below], dim=-1)
            below = level(self.dropout(inputs), lengths)
            outputs.append(below)
        return torch.cat(outputs, dim=-1)
