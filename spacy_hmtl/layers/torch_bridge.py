"""Glue between thinc's arrays and the torch modules held by thinc layers: padding
per-doc arrays into one tensor and back, and the module and device of a layer whose
``PyTorchShim`` holds one (the encoder's hierarchy, each head's module; see
``torch_head``)."""
from typing import List, Sequence, Tuple

import torch
from thinc.api import Model, get_torch_default_device, torch2xp, xp2torch
from thinc.types import Floats2d


def get_torch_module(layer: Model) -> torch.nn.Module:
    """The torch module held by a thinc layer that wraps one (its first shim)."""
    return layer.shims[0]._model


def torch_device(layer: Model) -> torch.device:
    try:
        return next(get_torch_module(layer).parameters()).device
    except StopIteration:
        return get_torch_default_device()


def pad_to_torch(
    arrays: Sequence[Floats2d], device: torch.device, requires_grad: bool = False
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack per-doc ``(n_tokens, width)`` arrays into a zero-padded float32 tensor
    ``(batch, max_tokens, width)`` plus a CPU ``int64`` tensor of lengths."""
    lengths = [int(a.shape[0]) for a in arrays]
    width = int(arrays[0].shape[1]) if arrays else 0
    batch = torch.zeros((len(arrays), max(lengths, default=0), width), dtype=torch.float32, device=device)
    for i, a in enumerate(arrays):
        if lengths[i]:
            batch[i, : lengths[i]] = xp2torch(a, device=device).float()
    if requires_grad:
        batch.requires_grad_(True)
    return batch, torch.tensor(lengths, dtype=torch.int64)


def unpad_from_torch(batch: torch.Tensor, lengths: torch.Tensor) -> List[Floats2d]:
    """Inverse of ``pad_to_torch``: one ``(n_tokens, width)`` float32 array per doc."""
    full = torch2xp(batch.detach().float())
    return [full[i, : int(n)] for i, n in enumerate(lengths.tolist())]  # type: ignore[call-overload, misc]  # thinc's array stubs do not type 2-d indexing of a padded batch
