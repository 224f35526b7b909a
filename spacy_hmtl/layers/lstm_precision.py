"""bfloat16 BiLSTMs at CPU inference, for loaded pipelines: the part of
``spacy_hmtl.reduced_precision.v1`` that reaches the pipes' own torch modules (the encoder's
hierarchy, the relation and coreference heads' BiLSTMs).

The BiLSTMs are about a third of a vectors pipeline's time on a CPU. On a CPU with native
bfloat16 products (AVX512-BF16 or AMX) their inference calls run about 1.5x faster in
bfloat16, and the pipeline's scores moved by at most a few hundredths of a point on the dev
sets (docs/CONFIGS.md, "Faster inference on the CPU"). Elsewhere torch emulates bfloat16,
slower than float32: "auto" stays float32 there.

The same rules as the transformer's reduced precision:

* only **loaded** weights: a pipe asked for it (``request``, by the config's callback) switches
  when ``from_disk`` / ``from_bytes`` loads it (``apply_requested``); a pipeline that
  ``spacy train`` builds trains and evaluates in float32;
* only **inference** on the **CPU**: ``BiLSTM.forward_flat``, the CPU inference path; a module
  that trains again drops it;
* **saved as float32**: the weights never change dtype (each call casts them).
"""
from typing import Any, Dict, List, Optional

import torch

from .bilstm import BiLSTM
from .cpu_features import cpu_has_native_bf16

# "auto": bfloat16 where the CPU multiplies it natively; "int8" has no LSTM form: float32
LSTM_PRECISIONS = ("auto", "bfloat16", "int8", "float32")
# the attribute a pipe keeps the requested precision in until its weights are loaded
_REQUEST = "_hmtl_lstm_precision"


def resolve_lstm_dtype(precision: str) -> Optional[torch.dtype]:
    """``precision`` -> the dtype of the BiLSTMs' inference calls here (None: float32).

    precision (str): "auto" (bfloat16 where ``cpu_has_native_bf16``), "bfloat16" (also
        where emulated), "int8" or "float32" (both float32 for the LSTMs).
    """
    if precision not in LSTM_PRECISIONS:
        raise ValueError(f"precision must be one of {list(LSTM_PRECISIONS)}, not {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and cpu_has_native_bf16()):
        return torch.bfloat16
    return None


def pipe_lstms(pipe: Any) -> List[BiLSTM]:
    """The BiLSTMs of a pipe's torch modules (those held by its model's shims)."""
    model = getattr(pipe, "model", None)
    if model is None or not hasattr(model, "walk"):
        return []
    found: List[BiLSTM] = []
    for node in model.walk():
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                found += [m for m in module.modules() if isinstance(m, BiLSTM) and m not in found]
    return found


def request(pipe: Any, precision: Optional[str]) -> None:
    """Ask a pipe for ``precision`` once its weights are loaded (None: float32 as it is)."""
    if precision is not None:
        resolve_lstm_dtype(precision)  # a wrong value fails now
    setattr(pipe, _REQUEST, precision)
    if precision is None:
        set_pipe_lstm_dtype(pipe, None)


def apply_requested(pipe: Any) -> None:
    """After a pipe's weights are loaded: switch its BiLSTMs to the requested precision."""
    precision = getattr(pipe, _REQUEST, None)
    if precision is not None:
        set_pipe_lstm_dtype(pipe, resolve_lstm_dtype(precision))


def set_pipe_lstm_dtype(pipe: Any, dtype: Optional[torch.dtype]) -> int:
    """Set the inference dtype of a pipe's BiLSTMs now. RETURNS (int): how many."""
    lstms = pipe_lstms(pipe)
    for lstm in lstms:
        lstm.inference_dtype = dtype
    return len(lstms)


def lstm_precisions(pipes: Dict[str, Any]) -> Dict[str, str]:
    """name -> "bfloat16", "float32" or "mixed": what each pipe's BiLSTMs run at inference,
    for the pipes that have any."""
    out = {}
    for name, pipe in pipes.items():
        found = {str(lstm.inference_dtype or torch.float32).replace("torch.", "") for lstm in pipe_lstms(pipe)}
        if found:
            out[name] = found.pop() if len(found) == 1 else "mixed"
    return out
