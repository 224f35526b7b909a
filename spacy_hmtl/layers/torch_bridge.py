"""Glue between thinc's arrays and PyTorch modules used by every head.

Heads compute their losses inside torch (CRF likelihood, marginal antecedent likelihood,
...), so a head's thinc model holds its torch module in a ``PyTorchWrapper_v2`` layer:
thinc then owns device placement, serialization and the optimizer step
(``finish_update`` reads the torch ``.grad`` s), while the component calls the module
directly with padded tensors and runs ``loss.backward()`` itself.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from thinc.api import Model, PyTorchShim, get_torch_default_device, torch2xp, xp2torch
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
    return [full[i, : int(n)] for i, n in enumerate(lengths.tolist())]


# Torch module classes by name: the name (a string) is what a layer's attrs hold, so the
# layer stays serializable and picklable.
TORCH_MODULES: Dict[str, Callable[..., torch.nn.Module]] = {}


def register_torch_module(name: str) -> Callable:
    """Class decorator: make a torch module buildable by ``lazy_torch_layer``."""

    def register(cls):
        TORCH_MODULES[name] = cls
        return cls

    return register


def lazy_torch_layer(module_name: str, name: str) -> Model:
    """A thinc layer whose torch module is built once its sizes are known.

    Heads know their label set only at ``initialize`` (or when loading), so the component
    puts the module's keyword arguments in ``layer.attrs["module_kwargs"]`` and calls
    ``ensure_torch_module`` before training or deserializing. The layer is never called as
    a thinc layer: the component calls the torch module itself, with padded tensors.
    """

    return Model(
        name, _lazy_forward, init=_lazy_init, attrs={"module_name": module_name, "module_kwargs": {}}
    )


# Module-level (not closures) so that pipelines can be pickled.
def _lazy_forward(model: Model, X, is_train: bool):
    raise NotImplementedError(f"{model.name}: call the torch module through its component")


def _lazy_init(model: Model, X=None, Y=None) -> None:
    ensure_torch_module(model)


def ensure_torch_module(layer: Model) -> torch.nn.Module:
    """Build the layer's torch module from its attrs if it has none yet; return it."""
    if not layer.shims:
        cls = TORCH_MODULES[layer.attrs["module_name"]]
        layer.shims.append(PyTorchShim(cls(**layer.attrs["module_kwargs"])))
    return layer.shims[0]._model
