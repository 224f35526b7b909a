"""The ``PyTorchShim`` that holds every torch module of the package (the encoder's
hierarchy, each head's module), so that ``use_averages = true`` reaches them.

thinc's optimizer keeps the parameter averages of a torch module under the keys
``(shim.id, parameter name)`` (``PyTorchShim.finish_update``), but ``PyTorchShim.use_params``
only looks for keys ``"pytorch_{shim.id}_{name}"``: with thinc's shim,
``nlp.use_params(optimizer.averages)`` (what ``spacy train`` evaluates and saves under) swaps
the averages into the thinc layers and leaves every torch weight as it is. This shim reads
the optimizer's keys too.

It also loads its weights with ``model_files.load_torch_weights`` (``weights_only=True``):
thinc's default loader calls ``torch.load`` without it, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
would let a pickled payload in a model file run.
"""
import contextlib
from typing import Any, Callable, Dict, Iterator, Optional

import torch
from thinc.api import PyTorchShim, xp2torch

from ..model_files import load_torch_weights


class AveragingPyTorchShim(PyTorchShim):
    """A ``PyTorchShim`` whose ``use_params`` also finds the optimizer's averages, and
    whose weights load as tensors only (``load_torch_weights``)."""

    def __init__(
        self, model: Any, *args: Any, deserialize_model: Optional[Callable[..., Any]] = None, **kwargs: Any
    ) -> None:
        super().__init__(model, *args, deserialize_model=deserialize_model or load_torch_weights, **kwargs)  # type: ignore[misc]  # mypy cannot rule out *args filling deserialize_model; thinc's callers pass keywords

    @contextlib.contextmanager
    def use_params(self, params: Dict[Any, Any]) -> Iterator[None]:
        named = dict(self._model.named_parameters())
        averaged = {name: params[(self.id, name)] for name in named if (self.id, name) in params}
        if not averaged:  # thinc's own key format (or no averages): thinc's behaviour
            with super().use_params(params):
                yield
            return
        backup = {name: named[name].detach().clone() for name in averaged}
        with torch.no_grad():
            for name, value in averaged.items():
                param = named[name]
                param.copy_(xp2torch(value, device=param.device).to(param.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in backup.items():
                    named[name].copy_(value)
