"""What this CPU runs fast: native bfloat16 products, int8 products summed in int32. Asked of
torch's own probes, once per process. Used to choose the precision of inference: the
transformer's (``encoder.quantized_shim``), the BiLSTMs' and the coreference pair scorer's
(``layers.inference_precision``).
"""
import functools
from typing import Optional

import torch


@functools.lru_cache(maxsize=None)
def _cpu_flag(probe_name: str) -> Optional[bool]:
    """A CPU feature from torch's probe ``torch.cpu.<probe_name>``, asked once per process
    (``predict`` resolves its precision on every call); None where torch has no such probe
    or it fails."""
    probe = getattr(torch.cpu, probe_name, None)
    if probe is None:
        return None  # pragma: no cover - older torch
    try:
        return bool(probe())
    except Exception:  # pragma: no cover - a torch whose probe fails
        return None


def cpu_has_int32_int8_dot() -> Optional[bool]:
    """Whether this CPU's int8 matmul kernels accumulate in int32 (x86 with AVX512-VNNI;
    ARM's qnnpack engine), where 8-bit inputs are safe.

    RETURNS (Optional[bool]): None where torch cannot tell.
    """
    if torch.backends.quantized.engine == "qnnpack":
        return True
    return _cpu_flag("_is_vnni_supported")  # AVX512-VNNI (fbgemm's int32 path)


def cpu_has_native_bf16() -> Optional[bool]:
    """Whether this CPU multiplies bfloat16 natively (x86 AVX512-BF16 or AMX), where
    bfloat16 inference is fast; elsewhere torch emulates it, slower than float32.

    RETURNS (Optional[bool]): None where torch cannot tell.
    """
    flags = [_cpu_flag(name) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(flag is None for flag in flags):
        return None  # pragma: no cover - older torch
    return any(bool(flag) for flag in flags)
