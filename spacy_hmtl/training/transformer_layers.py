"""Fine-tuning only the top layers of a transformer: the layers below get no gradient.

A transformer's lower layers hold its most general features; fine-tuning systems often train
only the top few. On a CPU the point is also speed: autograd stops at the lowest parameter
that requires a gradient, so with the top k of n layers trainable the backward pass runs
through k layers instead of n, and the optimizer updates k layers' weights instead of all
of them and the embedding table.

The layers are found by parameter name: a parameter named ``...layer.<i>....`` (BERT, RoBERTa,
MiniLM: ``encoder.layer.3.attention...``; DistilBERT: ``transformer.layer.3...``) belongs to
layer i. The embeddings (names containing ``embeddings``) sit below every layer and train only
when every layer does. Parameters in neither (a pooler, a final norm) keep their setting.
Thinc's ``PyTorchShim.finish_update`` skips parameters without a gradient, so a frozen
parameter is never updated, and a saved pipeline stores it unchanged.
"""
import re
from typing import Any, Iterator, List, Optional, Tuple

import torch

_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def torch_modules(component: Any) -> Iterator[torch.nn.Module]:
    """The PyTorch modules inside a pipe's Thinc model (a spacy-transformers pipe has one)."""
    for node in component.model.walk():
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                yield module


def layer_index(name: str) -> Optional[int]:
    """The layer a parameter name belongs to, or None (embeddings, pooler, ...)."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def train_top_layers(module: torch.nn.Module, top: int) -> Tuple[int, List[str]]:
    """Let only the top ``top`` layers of ``module`` (and what is above them) get a gradient.

    module (torch.nn.Module): a transformer whose layers are named ``...layer.<i>...``.
    top (int): how many of the highest layers train; at least the number of layers trains
        every layer and the embeddings.
    RETURNS (Tuple[int, List[str]]): the number of layers, and the frozen parameters' names.
    RAISES (ValueError): ``top`` < 1, or no parameter name has a layer index.
    """
    if top < 1:
        raise ValueError(f"the number of trainable top layers must be at least 1, not {top}")
    named = list(module.named_parameters())
    indices = [layer_index(name) for name, _ in named]
    layers = [i for i in indices if i is not None]
    if not layers:
        raise ValueError(f"no parameter of {type(module).__name__} is named after a layer ('...layer.<i>...')")
    n_layers = max(layers) + 1
    lowest_trained = max(n_layers - top, 0)
    frozen = []
    for (name, param), index in zip(named, indices):
        if index is not None:
            trains = index >= lowest_trained
        elif "embeddings" in name:
            trains = lowest_trained == 0
        else:
            continue
        param.requires_grad_(trains)
        if not trains:
            frozen.append(name)
    return n_layers, frozen
