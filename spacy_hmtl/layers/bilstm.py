"""A packed bidirectional LSTM over padded batches (plain PyTorch, no spaCy).

thinc's ``PyTorchLSTM`` runs padding through the backward direction; packing with
``enforce_sorted=False`` avoids that. Zero-length sequences (empty docs) cannot be packed,
so they are left out of the LSTM call and get all-zero outputs.
"""
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class PackedBiLSTM(nn.Module):
    """``(batch, time, n_in)`` + lengths -> ``(batch, time, 2 * hidden)``."""

    def __init__(self, n_in: int, hidden: int, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        self.n_in = n_in
        self.hidden = hidden
        self.n_out = 2 * hidden
        self.lstm = nn.LSTM(
            n_in,
            hidden,
            num_layers=depth,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if depth > 1 else 0.0,
        )

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, time = X.shape[0], X.shape[1]
        out = X.new_zeros((batch, time, self.n_out))
        lengths = lengths.to("cpu")
        keep = (lengths > 0).nonzero(as_tuple=True)[0]
        if keep.numel() == 0 or time == 0:
            return out
        self.lstm.flatten_parameters()
        sub_lengths = lengths[keep]
        packed = pack_padded_sequence(
            X[keep.to(X.device)], sub_lengths, batch_first=True, enforce_sorted=False
        )
        packed_out, _ = self.lstm(packed)
        sub_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=time)
        if keep.numel() == batch:
            return sub_out
        return out.index_copy(0, keep.to(X.device), sub_out)
