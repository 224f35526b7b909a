"""bfloat16 inference for the pipes' own torch modules, on loaded pipelines: the part of
``spacy_hmtl.reduced_precision`` that reaches past the transformer.

Three parts of a vectors pipeline can run at reduced precision, each a module class that
declares which part it is (``precision_part``) and reads its ``inference_dtype`` on its CPU
inference path:

* ``"lstms"``: ``layers.bilstm.BiLSTM`` (the encoder's hierarchy, the relation and
  coreference heads' BiLSTMs), about a third of a vectors pipeline's time; its inference
  calls run about 1.5x faster in bfloat16;
* ``"pair_scoring"``: ``coref.torch_module.CorefRanker``'s antecedent scorer, whose tiled
  matrix products (``coref.antecedent_tiles``) are most of the coreference head's time on
  long documents; about 1.8x faster in bfloat16 (with coarse-to-fine pruning,
  ``coref.coarse_to_fine``, its FFNN's first-layer product);
* ``"span_scoring"``: ``mentions.torch_module.SpanClassifier``'s token projection and span
  FFNN (every span up to ``max_width`` tokens: 8 per token), a fifth of a vectors pipeline's
  time on LitBank's chapters once coreference prunes coarse-to-fine; about 1.5x faster in
  bfloat16 (``linear_at``).

Both need a CPU with native bfloat16 products (AVX512-BF16 or AMX); elsewhere torch emulates
bfloat16, slower than float32, and "auto" stays float32. Measured on the dev sets:
docs/CONFIGS.md, "Faster inference on the CPU".

The same rules as the transformer's reduced precision:

* only **loaded** weights: a pipe asked for it (``request``, by the config's callback) switches
  when ``from_disk`` / ``from_bytes`` loads it (``apply_requested``); a pipeline that
  ``spacy train`` builds trains and evaluates in float32;
* only **inference** on the **CPU**; a module that trains again drops it;
* **saved as float32**: the weights never change dtype (each call casts them).
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from .cpu_features import cpu_has_native_bf16

# "auto": bfloat16 where the CPU multiplies it natively; "int8" has no form here: float32
PRECISIONS = ("auto", "bfloat16", "int8", "float32")
# the parts a module class can declare as its ``precision_part``
PARTS = ("lstms", "pair_scoring", "span_scoring")
# the attribute a pipe keeps the requested precisions in until its weights are loaded
_REQUEST = "_hmtl_inference_precision"


class ReducedPrecisionModule(torch.nn.Module):
    """A torch module whose CPU inference can run at a reduced dtype: it declares its part
    (``precision_part``, one of ``PARTS``), is given ``inference_dtype`` (None: float32) by
    ``set_pipe_dtype``, and asks ``reduced_dtype`` on each call; the weights stay float32.
    """

    inference_dtype: Optional[torch.dtype] = None
    precision_part: str = ""

    def reduced_dtype(self, device: torch.device) -> Optional[torch.dtype]:
        """The dtype of this call's reduced-precision products (None: float32):
        ``inference_dtype`` at inference on the CPU.

        A call in training mode drops it for good: a module that trains again predicts in
        float32 from then on. The check is per call, not in ``train()``: thinc's
        ``PyTorchShim.predict`` puts the module back in training mode after every prediction.

        device (torch.device): where the call's tensors are.
        RETURNS (Optional[torch.dtype]): the dtype, or None.
        """
        if self.training:
            self.inference_dtype = None
            return None
        return self.inference_dtype if device.type == "cpu" else None


def linear_at(layer: torch.nn.Linear, x: torch.Tensor, dtype: Optional[torch.dtype]) -> torch.Tensor:
    """``layer(x)`` with its product at ``dtype`` (None: as it is), returned as float32: the
    operands cast for this call (the weights stay float32), the bias added at ``dtype`` too.

    layer (torch.nn.Linear): the layer.
    x (torch.Tensor): its float32 input.
    dtype (Optional[torch.dtype]): e.g. ``ReducedPrecisionModule.reduced_dtype(device)``.
    RETURNS (torch.Tensor): float32, ``x``'s shape but the last dimension ``out_features``.
    """
    if dtype is None or dtype == x.dtype:
        return layer(x)
    bias = None if layer.bias is None else layer.bias.to(dtype)
    return torch.nn.functional.linear(x.to(dtype), layer.weight.to(dtype), bias).float()


def resolve_dtype(precision: str) -> Optional[torch.dtype]:
    """``precision`` -> the dtype of the modules' inference calls here (None: float32).

    precision (str): "auto" (bfloat16 where ``cpu_has_native_bf16``), "bfloat16" (also
        where emulated), "int8" or "float32" (both float32 here).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and cpu_has_native_bf16()):
        return torch.bfloat16
    return None


def _check_parts(parts: Sequence[str]) -> None:
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ValueError(f"reduced-precision parts must be among {list(PARTS)}, not {unknown}")


def pipe_modules(pipe: Any, parts: Sequence[str] = PARTS) -> List[torch.nn.Module]:
    """The modules of a pipe's torch models (those its model's shims hold) whose
    ``precision_part`` is one of ``parts``."""
    _check_parts(parts)
    model = getattr(pipe, "model", None)
    if model is None or not hasattr(model, "walk"):
        return []
    found: List[torch.nn.Module] = []
    for node in model.walk():
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                found += [
                    m
                    for m in module.modules()
                    if isinstance(m, ReducedPrecisionModule) and m.precision_part in parts and m not in found
                ]
    return found


def request(pipe: Any, precisions: Mapping[str, Optional[str]]) -> None:
    """Ask a pipe for a precision per part once its weights are loaded (None: float32).

    precisions (Mapping[str, Optional[str]]): part (``PARTS``) -> precision or None.
    """
    _check_parts(list(precisions))
    for precision in precisions.values():
        if precision is not None:
            resolve_dtype(precision)  # a wrong value fails now
    setattr(pipe, _REQUEST, dict(precisions))
    for part, precision in precisions.items():
        if precision is None:
            set_pipe_dtype(pipe, None, [part])


def apply_requested(pipe: Any) -> None:
    """After a pipe's weights are loaded: switch its modules to the requested precisions."""
    for part, precision in getattr(pipe, _REQUEST, {}).items():
        if precision is not None:
            set_pipe_dtype(pipe, resolve_dtype(precision), [part])


def set_pipe_dtype(pipe: Any, dtype: Optional[torch.dtype], parts: Sequence[str] = PARTS) -> int:
    """Set the inference dtype of a pipe's modules of ``parts`` now. RETURNS (int): how many."""
    modules = pipe_modules(pipe, parts)
    for module in modules:
        module.inference_dtype = dtype  # type: ignore[assignment]  # declared by each part's class
    return len(modules)


def precisions(pipes: Dict[str, Any], parts: Sequence[str] = PARTS) -> Dict[str, str]:
    """name -> "bfloat16", "float32" or "mixed": what each pipe's modules of ``parts`` run at
    inference, for the pipes that have any."""
    out = {}
    for name, pipe in pipes.items():
        found = {
            str(getattr(module, "inference_dtype", None) or torch.float32).replace("torch.", "")
            for module in pipe_modules(pipe, parts)
        }
        if found:
            out[name] = found.pop() if len(found) == 1 else "mixed"
    return out
