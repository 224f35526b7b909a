"""Running a transformer's inference batch in buckets of similar length.

spacy-transformers tokenizes every window of a batch of docs into one tensor, padded to the
longest window. Most windows are full (``strided_spans``' ``window`` tokens), but each doc's
last one is as short as what is left of it: on SciERC's abstracts 28% of the positions the
fine-tuned MiniLM ran were padding, 11% in buckets (the benchmark's per-component section
counts them, ``spacy_hmtl_dev.benchmark.speed.transformer_positions``). With the rows
sorted by length and cut into buckets whose rows are nearly as long as the bucket's longest,
each bucket runs trimmed to its own length. The attention mask already kept padding out of
every real position's result, so the real positions' outputs are the same up to float
rounding (the products' shapes change); padded positions come back as zeros (spacy-transformers'
alignment never reads them).

Inference only: ``QuantizingHFShim.predict`` calls :func:`run_in_length_buckets`; training keeps
the one padded batch (its backward pass would need the scatter undone).
"""
from typing import Any, Callable, Dict, List, Optional

import torch

# A bucket takes the next (shorter) row while the row is at least this share of the bucket's
# longest row, so at most 1 - MIN_FILL of a bucket's positions are padding.
MIN_FILL = 0.8
# Buckets are used only where they save at least this share of the padded batch's positions:
# each bucket is one more call, and on long documents (every window full but the last) there is
# little padding to save.
MIN_SAVING = 0.1
# Outputs scattered back along the rows and the sequence axis (axis 1) / the rows only.
_SEQUENCE_OUTPUTS = ("last_hidden_state", "hidden_states")
_ROW_OUTPUTS = ("pooler_output",)


def length_buckets(lengths: torch.Tensor, min_fill: float = MIN_FILL) -> List[torch.Tensor]:
    """Rows grouped into buckets of similar length, longest first.

    lengths (torch.Tensor): (B,) each row's number of real positions.
    min_fill (float): each row of a bucket is at least ``min_fill`` times as long as its
        longest row.
    RETURNS (List[torch.Tensor]): the row indices of each bucket (together, every row once).
    """
    if not 0.0 < min_fill <= 1.0:
        raise ValueError(f"min_fill must be in (0, 1], not {min_fill}")
    order = torch.argsort(lengths, descending=True, stable=True)
    buckets: List[torch.Tensor] = []
    start = 0
    sorted_lengths = lengths[order].tolist()
    for i in range(1, len(sorted_lengths) + 1):
        if i == len(sorted_lengths) or sorted_lengths[i] < min_fill * sorted_lengths[start]:
            buckets.append(order[start:i])
            start = i
    return buckets


def run_in_length_buckets(
    model: Callable[..., Any], kwargs: Dict[str, Any], min_fill: float = MIN_FILL
) -> Optional[Any]:
    """A Hugging Face encoder's outputs for one padded batch, run bucket by bucket.

    model (Callable[..., Any]): the Hugging Face model (called with keyword tensors).
    kwargs (Dict[str, Any]): its inputs: ``input_ids`` and ``attention_mask`` (B, L) and any
        other (B, L) tensors (``token_type_ids``).
    min_fill (float): see :func:`length_buckets`.
    RETURNS (Optional[Any]): the outputs as one call would give them (same type, (B, L, ...)
        tensors, zeros at padded positions), or None where bucketing does not apply: buckets
        that would save under ``MIN_SAVING`` of the positions, no attention mask, an input that is not (B, L), or an output this function
        does not know how to scatter back (the caller then runs the batch whole).
    """
    mask = kwargs.get("attention_mask")
    if not torch.is_tensor(mask) or mask.dim() != 2:
        return None
    batch, width = mask.shape
    if any(torch.is_tensor(v) and tuple(v.shape[:2]) != (batch, width) for v in kwargs.values()):
        return None
    if any(not torch.is_tensor(v) and v is not None for v in kwargs.values()):
        return None
    lengths = mask.sum(dim=1)
    buckets = length_buckets(lengths, min_fill)
    kept = sum(len(rows) * int(lengths[rows].max()) for rows in buckets)
    if len(buckets) < 2 or kept > (1.0 - MIN_SAVING) * batch * width:
        return None
    results = []
    for rows in buckets:
        trimmed = max(int(lengths[rows].max()), 1)
        bucket_kwargs = {k: (v[rows, :trimmed] if torch.is_tensor(v) else v) for k, v in kwargs.items()}
        results.append((rows, trimmed, model(**bucket_kwargs)))
    return _scatter_back(results, batch, width)


def _scatter_back(results: List[Any], batch: int, width: int) -> Optional[Any]:
    first = results[0][2]
    if not hasattr(first, "keys"):
        return None
    keys = [k for k in first.keys() if first[k] is not None]
    if any(k not in _SEQUENCE_OUTPUTS + _ROW_OUTPUTS for k in keys):
        return None
    fields: Dict[str, Any] = {}
    for key in keys:
        values = [out[key] for _, _, out in results]
        if isinstance(values[0], tuple):  # hidden_states: one tensor per layer
            fields[key] = tuple(
                _scatter([(rows, trimmed, v[layer]) for (rows, trimmed, _), v in zip(results, values)], batch, width, key)
                for layer in range(len(values[0]))
            )
        else:
            fields[key] = _scatter([(rows, trimmed, v) for (rows, trimmed, _), v in zip(results, values)], batch, width, key)
    return type(first)(**fields)


def _scatter(parts: List[Any], batch: int, width: int, key: str) -> torch.Tensor:
    sample = parts[0][2]
    if key in _ROW_OUTPUTS:
        full = sample.new_zeros((batch,) + tuple(sample.shape[1:]))
        for rows, _, value in parts:
            full[rows] = value
        return full
    full = sample.new_zeros((batch, width) + tuple(sample.shape[2:]))
    for rows, trimmed, value in parts:
        full[rows, :trimmed] = value
    return full
