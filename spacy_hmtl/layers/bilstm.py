"""A bidirectional LSTM over padded batches that respects each sequence's length
(plain PyTorch, no spaCy).

Why not ``nn.LSTM`` on a ``PackedSequence``: on a CPU, PyTorch runs packed sequences through
its generic cell-by-cell implementation, whose backward pass is a long chain of small
autograd nodes; a padded (unpacked) batch goes to the fused oneDNN (CPU) or cuDNN (GPU)
kernel instead, about 4x faster to train on these widths. A plain bidirectional call on a
padded batch would run the backward direction through the padding first, so each direction
runs as its own one-direction call: the forward direction reads the padded batch as it is
(padding comes after every real token, so it never reaches one), the backward direction
reads each sequence reversed *within its length* (padding stays at the end). The outputs are
the packed BiLSTM's to float noise (``tests/test_bilstm.py``), and the parameters stay in one
``nn.LSTM`` so that saved weights keep their names.

Padding costs as much as real tokens (a oneDNN LSTM's time grows with batch x time), and a
padded batch of SciERC abstracts is about a third padding. On a CPU the rows are therefore
sorted by length and each direction runs in time segments (``plan_segments``): a segment
computes only the rows still running, starting from the state the previous segment ended
in, so nearly only real tokens are computed. The arithmetic of every real token is the same.

At inference on a CPU (eval mode, no autograd) ``forward_flat`` makes the same LSTM calls
from and to the real tokens only, without building padded, reversed and sorted copies of
the batch (``tests/test_inference_paths.py``: the same states, bit for bit).

``inference_dtype`` (bfloat16, set on a loaded pipeline by ``spacy_hmtl.reduced_precision.v3``
through ``layers.inference_precision``) runs those inference calls in that dtype: on a CPU with
native bfloat16 products the LSTMs, a third of a vectors pipeline's time, run about 1.5x
faster; the states come back in float32. Training never uses it: a module that trains again
drops it.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .dropout import dropout
from .inference_precision import ReducedPrecisionModule


class BiLSTM(ReducedPrecisionModule):
    """``(batch, time, n_in)`` + lengths -> ``(batch, time, 2 * hidden)``; zeros past each length.

    n_in (int): input width.
    hidden (int): hidden size per direction.
    depth (int): stacked layers; each reads both directions of the layer below.
    dropout (float): dropout between stacked layers (as ``nn.LSTM``'s ``dropout``).
    """

    # its LSTM calls at CPU inference run at ``inference_dtype`` (layers.inference_precision)
    precision_part = "lstms"

    def __init__(self, n_in: int, hidden: int, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        self.n_in = n_in
        self.hidden = hidden
        self.depth = depth
        self.n_out = 2 * hidden
        self.layer_dropout = dropout if depth > 1 else 0.0
        # Holds the parameters only (weight_ih_l0, weight_ih_l0_reverse, ...); forward calls
        # each layer and direction itself.
        self.lstm = nn.LSTM(
            n_in,
            hidden,
            num_layers=depth,
            bidirectional=True,
            batch_first=True,
            dropout=self.layer_dropout,
        )

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, time = X.shape[0], X.shape[1]
        if batch == 0 or time == 0:
            return X.new_zeros((batch, time, self.n_out))
        lengths = lengths.to(X.device)
        self.reduced_dtype(X.device)  # a call in training mode drops the reduced precision for good
        if X.device.type == "cpu" and not (self.training or torch.is_grad_enabled()):
            # inference: the real tokens only (the same states, see forward_flat)
            inside = torch.arange(time)[None, :] < lengths[:, None]
            output = X.new_zeros((batch, time, self.n_out))
            output[inside] = self.forward_flat(X[inside], lengths)
            return output
        if X.device.type != "cpu" or batch == 1:
            # cuDNN is fast on padding; a single row has none
            return self._forward_sorted(X, lengths, [(0, time, batch)])
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order]
        segments = plan_segments(sorted_lengths.tolist(), time)
        output = self._forward_sorted(X[order], sorted_lengths, segments)
        return output[torch.argsort(order)]

    def forward_flat(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Inference on a CPU over sequences stored one after the other: ``(n_tokens,
        n_in)`` + lengths -> ``(n_tokens, 2 * hidden)``, the states ``forward`` gives the
        real tokens of the padded batch, bit for bit (tested).

        The LSTM calls are ``forward``'s (rows sorted by length, the same time segments,
        so the same shapes and arithmetic); what differs is around them: each call's
        input is gathered from the real tokens (one row copy per token and direction,
        reversed within its length for the backward direction) and its states go straight
        to their tokens, where ``forward`` copies, reverses and pads whole padded batches,
        several times per layer (a batch of sentences padded to the longest one is mostly
        padding). Padding inside a segment reads a zero row; what it computes reaches no
        real token.
        """
        n_tokens = X.shape[0]
        if n_tokens == 0 or lengths.numel() == 0:
            return X.new_zeros((n_tokens, self.n_out))
        lengths = lengths.to("cpu", torch.int64)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order]
        longest = int(sorted_lengths[0])
        segments = plan_segments(sorted_lengths.tolist(), longest) if len(lengths) > 1 else [(0, longest, 1)]
        # (rows, longest) token of each sorted row and step, forwards and backwards in its
        # length; padding reads row n_tokens, a zero row appended to the input
        steps = torch.arange(longest)
        inside = steps[None, :] < sorted_lengths[:, None]
        first = (torch.cumsum(lengths, 0) - lengths)[order]
        forward_index = torch.where(inside, first[:, None] + steps[None, :], n_tokens)
        backward_index = torch.where(inside, first[:, None] + sorted_lengths[:, None] - 1 - steps[None, :], n_tokens)
        layer_input = torch.cat([X, X.new_zeros((1, X.shape[1]))])
        dtype = self.reduced_dtype(X.device)
        for layer in range(self.depth):
            states = [
                self._direction_flat(layer_input, layer, suffix, index, segments, dtype)
                for suffix, index in (("", forward_index), ("_reverse", backward_index))
            ]
            layer_input = torch.cat(states, dim=-1)
        return layer_input[:n_tokens]

    def _direction_flat(
        self,
        X: torch.Tensor,
        layer: int,
        suffix: str,
        index: torch.Tensor,
        segments: Sequence[Tuple[int, int, int]],
        dtype: Optional[torch.dtype] = None,
    ) -> torch.Tensor:
        """``_direction`` on token rows: segment ``(start, end, rows)`` reads tokens
        ``index[:rows, start:end]`` of ``X`` (its last row is padding) and writes its
        states to the same rows of the ``(n_tokens + 1, hidden)`` output, whose padding
        row ends as zeros (what a call computes over padding reaches no real token)."""
        params = [
            getattr(self.lstm, f"{name}_l{layer}{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        output = X.new_empty((X.shape[0], self.hidden))
        source = X
        if dtype is not None:
            # cast here, per call: the weights stay float32 (saved, trained, averaged as ever)
            params = [p.to(dtype) for p in params]
            source = X.to(dtype)
        h = c = source.new_zeros((1, segments[0][2], self.hidden))
        for start, end, rows in segments:
            tokens = index[:rows, start:end].reshape(-1)
            segment_input = source.index_select(0, tokens).view(rows, end - start, X.shape[1])
            out, h, c = torch.lstm(
                segment_input, (h[:, :rows], c[:, :rows]), params, True, 1, 0.0, False, False, True
            )
            output.index_copy_(0, tokens, out.reshape(-1, self.hidden).to(output.dtype))
        output[-1] = 0.0
        return output

    def _forward_sorted(
        self, X: torch.Tensor, lengths: torch.Tensor, segments: Sequence[Tuple[int, int, int]]
    ) -> torch.Tensor:
        """The BiLSTM over rows sorted by decreasing length, run in ``segments``."""
        time = X.shape[1]
        steps = torch.arange(time, device=X.device)
        inside = steps[None, :] < lengths[:, None]
        # position of step t when each sequence is read backwards; padding maps to itself
        reverse = torch.where(inside, lengths[:, None] - 1 - steps[None, :], steps[None, :]).unsqueeze(-1)
        layer_input = X
        for layer in range(self.depth):
            if layer > 0 and self.layer_dropout:
                layer_input = dropout(layer_input, self.layer_dropout, self.training)
            forward_states = self._direction(layer_input, layer, "", segments)
            reversed_input = layer_input.gather(1, reverse.expand(-1, -1, layer_input.shape[-1]))
            backward_states = self._direction(reversed_input, layer, "_reverse", segments)
            backward_states = backward_states.gather(1, reverse.expand(-1, -1, self.hidden))
            layer_input = torch.cat([forward_states, backward_states], dim=-1)
        # states past a sequence's end read padding: zero them (never read by real tokens)
        return layer_input * inside.unsqueeze(-1).to(layer_input.dtype)

    def _direction(
        self, X: torch.Tensor, layer: int, suffix: str, segments: Sequence[Tuple[int, int, int]]
    ) -> torch.Tensor:
        """One layer, one direction, over a padded batch (padding at the end), segment by
        segment: ``(start, end, rows)`` runs the first ``rows`` rows over steps
        ``[start, end)`` from the state the previous segment left them in."""
        params = [
            getattr(self.lstm, f"{name}_l{layer}{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        batch = X.shape[0]
        h = c = X.new_zeros((1, batch, self.hidden))
        outputs = []
        for start, end, rows in segments:
            out, h, c = torch.lstm(
                X[:rows, start:end], (h[:, :rows], c[:, :rows]), params, True, 1, 0.0, self.training, False, True
            )
            if rows < batch:  # the finished rows: padding, zero
                out = torch.cat([out, out.new_zeros((batch - rows, end - start, self.hidden))], 0)
            outputs.append(out)
        done = segments[-1][1]
        if done < X.shape[1]:  # steps past the longest row: padding in every row
            outputs.append(X.new_zeros((batch, X.shape[1] - done, self.hidden)))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)


def plan_segments(lengths: Sequence[int], time: int, call_cost: int = 128) -> List[Tuple[int, int, int]]:
    """Time segments that compute (nearly) only real tokens, for rows sorted by decreasing
    length: ``(start, end, rows)``, where the first ``rows`` rows are still running at
    ``start``. A segment boundary may only sit at a row's length; which boundaries to use is
    chosen by dynamic programming on computed steps (rows x steps) plus ``call_cost`` steps
    for each extra LSTM call.

    lengths (Sequence[int]): row lengths, decreasing.
    time (int): padded length (>= lengths[0]).
    call_cost (int): the cost of one more call, in row-steps (oneDNN prepares the weights
        on every call: 64-200 row-steps measured at SciERC's widths; 128 is in that range).
    RETURNS (List[Tuple[int, int, int]]): contiguous segments covering ``[0, end)``, where
        ``end`` is the longest length (steps past it are padding in every row).
    """
    end = max(lengths[0], 1) if lengths else time
    cuts = sorted({n for n in lengths if 0 < n < end})
    points = [0] + cuts + [end]

    # rows with a real token at each point's step, counted once (the loop below is O(points²))
    running_at = [max(1, sum(1 for n in lengths if n > t)) for t in points]

    # best[j]: the cheapest plan of steps [0, points[j]) that ends with a boundary at points[j]
    best = [0.0] + [float("inf")] * (len(points) - 1)
    back = [0] * len(points)
    for j in range(1, len(points)):
        for i in range(j):
            cost = best[i] + running_at[i] * (points[j] - points[i]) + call_cost
            if cost < best[j]:
                best[j], back[j] = cost, i
    segments = []
    j = len(points) - 1
    while j > 0:
        i = back[j]
        segments.append((points[i], points[j], running_at[i]))
        j = i
    segments.reverse()
    return segments
